"""Calibrate a team's own priors from its finished projects (`sim calibrate`).

Each past project is a scenario and its actuals (sim.actuals), given as `SCENARIO.yaml:ACTUALS`
or as a folder holding `scenario.yaml` and one of `actuals.csv`, `actuals.parquet`, `sacct.txt`.
From them this module fits rows in the format of sim/data/priors.yaml (docs/priors.md,
"Calibrating to your own projects"):

- workloads.mfu, per accelerator and size band (the bands of the built-in mfu rows for that
  accelerator): the effective MFU of each completed run, its FLOP (k x N x D of its workload, or
  flop_per_run; tokens_done or progress when the row gives them) over accelerators x peak x wall
  time (end - start). The wall time includes failures and restarts, so the figure is an effective
  MFU, below a running one. Lognormal: median exp(log-mean), sigma the sample log-sd (n - 1);
  with fewer than MIN_RUNS runs sigma is at least the built-in row's, never under MIN_SIGMA.
- reliability.failure_rate_per_gpu_h, per accelerator family (the built-in failure-rate row an
  accelerator falls in): every interruption counted in the actuals over the accelerator-hours of
  the runs that count them, a gamma posterior from a weak prior (shape PRIOR_SHAPE = 1, i.e. worth
  one interruption, at the built-in row's mean), written as the lognormal of the same mean and
  coefficient of variation.
- The rerun rate and the project multiplier are measured (`team_figures`) and shown. The project
  multiplier is also written as the `workloads.experiments` row (multiplier - 1: `fit_experiments`),
  the rerun rate as the `workloads.divergence` row (`fit_divergence`: the probability that an
  attempt fails and is started again, and how far failed attempts got).
  - rerun rate: failed attempts over attempts (failed + completed) of every project, a beta
    posterior from a uniform prior: (failed + 1) / (attempts + 2). Needs each failed attempt as its
    own row (state failed); it counts every failed attempt as a rerun from scratch, so a job that
    stopped on a hardware failure and went on from its checkpoint belongs in `interruptions`.
  - project multiplier: all the accelerator-hours of a project (every run, in any state) over those
    of its largest completed runs (the runs with the most accelerators): how much the final runs
    cost the project in all. Needs the project's every run, and a completed largest run. Over
    several projects: the geometric mean, with the range.

The module is named apart from the API function `sim.calibrate`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from sim import priors as priorsmod
from sim import schema, units
from sim.actuals import Actuals, read_actuals
from sim.compute import training_flop
from sim.deterministic import first_fit_pool
from sim.distributions import Z95  # P5/P95 = exp(mu -/+ Z95 sigma)
from sim.loader import Issue, Loaded, ScenarioError, load
from sim.reforecasting import beta_as_pert, gamma_update, prior_mean_cv

MIN_RUNS = 3  # below this, the MFU spread is widened to the built-in row's
MIN_SIGMA = 0.05  # floor of a fitted MFU log-sd (identical runs would give a point, not a prior)
PRIOR_SHAPE = 1.0  # the weak gamma prior of the failure rate: worth one interruption
FOLDER_SCENARIO = ("scenario.yaml", "scenario.yml")
FOLDER_ACTUALS = ("actuals.csv", "actuals.parquet", "sacct.txt")
TOP = {"params": 1.0e15, "run_accelerators": 1.0e9}  # upper ends of the built-in rows' bands
PAIR = re.compile(r"^(.+\.ya?ml):(.+)$", re.IGNORECASE)
USAGE = ("expected SCENARIO.yaml:ACTUALS (a CSV, Parquet or sacct file), or a folder holding scenario.yaml and one "
         f"of {', '.join(FOLDER_ACTUALS)}")


# --------------------------------------------------------------------------------------------
# Past projects


@dataclass(frozen=True)
class Past:
    """One finished project: its scenario and its actuals."""

    label: str  # as given on the command line
    loaded: Loaded
    actuals: Actuals

    @property
    def project(self) -> str:
        return self.loaded.scenario.project.name


def pair(arg: Any) -> tuple[Path, Path]:
    """(scenario, actuals) of one PAST argument: a (scenario, actuals) pair, `SCENARIO.yaml:ACTUALS`,
    or a folder holding scenario.yaml and exactly one of actuals.csv, actuals.parquet, sacct.txt."""
    if isinstance(arg, (tuple, list)) and len(arg) == 2:
        return Path(arg[0]), Path(arg[1])
    text = str(arg)
    folder = Path(text)
    if folder.is_dir():
        scen = [folder / n for n in FOLDER_SCENARIO if (folder / n).is_file()]
        acts = [folder / n for n in FOLDER_ACTUALS if (folder / n).is_file()]
        if not scen:
            raise ScenarioError(text, [Issue((), f"folder holds no scenario.yaml; {USAGE}")])
        if len(acts) != 1:
            found = f"both {' and '.join(a.name for a in acts)}" if acts else "none of them"
            raise ScenarioError(text, [Issue((), f"a past project's folder holds exactly one of "
                                             f"{', '.join(FOLDER_ACTUALS)}; found {found}")])
        return scen[0], acts[0]
    m = PAIR.match(text)
    if not m:
        raise ScenarioError(text, [Issue((), USAGE)])
    return Path(m.group(1)), Path(m.group(2))


def read_past(arg: Any) -> Past:
    scenario, actuals = pair(arg)
    loaded = load(scenario)
    label = arg if isinstance(arg, str) else f"{scenario}:{actuals}"
    return Past(str(label), loaded, read_actuals(actuals, loaded))


# --------------------------------------------------------------------------------------------
# Effective MFU of completed runs


@dataclass(frozen=True)
class Observation:
    project: str
    workload: str
    run_id: str
    accelerator: str  # as the priors match it (a scenario's own id with `base:` gives the base)
    params: float | None
    run_accelerators: int
    mfu: float
    end: datetime


def _run_flop(w: schema.Workload, run) -> float | None:
    """The FLOP of one completed run: tokens_done or progress when given, else the workload's."""
    if w.tokens is not None:
        tokens = run.tokens_done if run.tokens_done is not None else float(w.tokens)
        flop = training_flop(float(w.params), tokens, w.k)
        return flop if run.tokens_done is not None or run.progress is None else flop * run.progress
    if w.flop_per_run is not None:
        return float(w.flop_per_run) * (run.progress if run.progress is not None else 1.0)
    return None


def _context(past: Past, w: schema.Workload, run) -> tuple[str, str, dict]:
    """(pool name, catalog id, priors context) of a run: its pool, else its workload's first pool
    that holds it."""
    scn = past.loaded.scenario
    pool = run.pool or first_fit_pool(w, scn).name
    raw_w = next((x for x in past.loaded.raw.get("workloads", []) if isinstance(x, dict) and x.get("name") == w.name),
                 {})
    ctx = priorsmod.workload_context(past.loaded.raw, {**raw_w, "pools": [pool]})
    ctx["run_accelerators"] = run.accelerators
    return pool, scn.pool(pool).accelerator, ctx


def observations(past: Past, notes: list[str]) -> list[Observation]:
    """The effective MFU of each completed run of `past` (runs it cannot use are counted in `notes`)."""
    nominal = {w.name: w for w in schema.nominal_scenario(past.loaded.scenario).workloads}
    out, issues, unsized = [], [], 0
    for run in past.actuals.in_state("completed"):
        w = nominal[run.workload]
        flop = _run_flop(w, run)
        if flop is None or run.start is None or run.end is None or not run.accelerators:
            unsized += 1
            continue
        _pool, acc_id, ctx = _context(past, w, run)
        wall_s = (run.end - run.start).total_seconds()
        peak = past.loaded.catalog.accelerators[acc_id].peak_flop_per_s
        mfu = flop / (run.accelerators * peak * wall_s) if wall_s > 0 else math.inf
        if not 0 < mfu <= 1:
            issues.append(Issue((f"row {run.row}",), _bad_mfu(mfu, run, flop, peak, acc_id)))
            continue
        out.append(Observation(past.project, run.workload, run.run_id, ctx["accelerator"], ctx["params"],
                               run.accelerators, mfu, run.end))
    if issues:
        raise ScenarioError(past.actuals.source, issues)
    if unsized:
        notes.append(f"{past.project}: {unsized} completed run(s) not used for MFU (no FLOP to divide: a workload "
                     "sized in hours or accelerator-hours; or no accelerators)")
    return out


def _bad_mfu(mfu: float, run, flop: float, peak: float, acc: str) -> str:
    if not math.isfinite(mfu):
        return "a completed run that ends when it starts: its effective MFU cannot be computed"
    return (f"run {run.run_id}: effective MFU {mfu:.3g} = {flop:.3g} FLOP / ({run.accelerators} x {acc} "
            f"{peak:.3g} FLOP/s x {(run.end - run.start).total_seconds():,.0f} s) is above 1; check its accelerators, "
            "start and end, or the workload's size")


# --------------------------------------------------------------------------------------------
# Bands


def _cuts(accelerator: str, key: str) -> list[float]:
    """The band edges of `key` in the built-in mfu rows that can apply to `accelerator`."""
    out: set[float] = set()
    for row in priorsmod.builtin().rows["workloads.mfu"]:
        if key in row.when and accelerator in row.when.get("accelerator", [accelerator]):
            out.update(float(x) for x in row.when[key])
    return sorted(out)


def _interval(v: float, cuts: list[float], top: float) -> list[float | int]:
    lo = max([0.0, *(c for c in cuts if c <= v)])
    hi = min([*(c for c in cuts if c > v)] or [max(top, v * 2)])
    return [int(x) if x == int(x) and abs(x) < 2**63 else x for x in (lo, hi)]


def band(ob: Observation) -> dict | None:
    """The `when` of an observation's band: its accelerator, and the built-in rows' params and
    run_accelerators intervals that hold it (None: params unknown where the bands need them)."""
    when: dict[str, Any] = {"accelerator": [ob.accelerator]}
    for key, v in (("params", ob.params), ("run_accelerators", ob.run_accelerators)):
        cuts = _cuts(ob.accelerator, key)
        if not cuts:
            continue
        if v is None:
            return None
        when[key] = _interval(float(v), cuts, TOP[key])
    return when


# --------------------------------------------------------------------------------------------
# Fits


@dataclass
class Fitted:
    """One calibrated row, and what it rests on."""

    key: str
    when: dict
    value: dict
    n: int  # observations (runs) behind it
    source: str
    date: date
    note: str
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        return {"when": self.when, "value": self.value, "source": self.source, "date": self.date,
                "checked": True, "note": self.note}


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _lognormal(median: float, sigma: float, clip: bool = False) -> dict:
    out = {"dist": "lognormal", "p5": _sig(median * math.exp(-Z95 * sigma)),
           "p95": _sig(median * math.exp(Z95 * sigma))}
    return {**out, "clip": True} if clip else out


def _builtin_sigma(key: str, ctx: dict) -> float | None:
    row = priorsmod.builtin().find(key, ctx)
    v = row.value if row is not None else None
    if isinstance(v, dict) and v.get("dist") == "lognormal" and "p5" in v and "p95" in v:
        return math.log(float(v["p95"]) / float(v["p5"])) / (2 * Z95)
    return None


def _projects(names) -> str:
    names = sorted(set(names))
    return ", ".join(names)


def fit_mfu(obs: list[Observation], notes: list[str]) -> list[Fitted]:
    groups: dict[str, tuple[dict, list[Observation]]] = {}
    unplaced = 0
    for ob in obs:
        when = band(ob)
        if when is None:
            unplaced += 1
            continue
        groups.setdefault(repr(when), (when, []))[1].append(ob)
    if unplaced:
        notes.append(f"{unplaced} completed run(s) not used for MFU: their workload gives no params, and the "
                     "built-in mfu rows of their accelerator are banded by model size")
    return [_fit_mfu_group(when, g) for when, g in groups.values()]


def _fit_mfu_group(when: dict, g: list[Observation]) -> Fitted:
    logs = [math.log(o.mfu) for o in g]
    n = len(logs)
    mu = math.fsum(logs) / n
    sd = math.sqrt(math.fsum((x - mu) ** 2 for x in logs) / (n - 1)) if n > 1 else None
    ctx = {"accelerator": g[0].accelerator, "params": g[0].params, "run_accelerators": g[0].run_accelerators}
    prior_sigma = _builtin_sigma("workloads.mfu", ctx)
    if n < MIN_RUNS:
        sigma = max(sd or 0.0, prior_sigma or 0.0, MIN_SIGMA)
        why = f"fewer than {MIN_RUNS} runs: sigma widened to at least the built-in row's ({prior_sigma or 0:.3f})"
    else:
        sigma = max(sd, MIN_SIGMA)
        why = f"sigma = the sample log-sd (floored at {MIN_SIGMA})"
    runs = ", ".join(f"{o.project}/{o.run_id} {o.mfu:.3f}" for o in g[:10]) + (", ..." if n > 10 else "")
    sd_text = "n/a (one run)" if sd is None else f"{sd:.4f}"
    note = (f"N = {n} completed runs; log-mean {mu:.4f} (median {math.exp(mu):.4f}), log-sd {sd_text}; {why}; "
            f"sigma used {sigma:.4f}. Effective MFU = k x N x D (or flop_per_run) / (accelerators x peak x wall "
            f"time): the wall time (end - start) includes failures, restarts, checkpoint stalls and other "
            f"interruptions, so this is lower than the running MFU of the built-in rows, and a forecast that "
            f"also simulates failures counts them twice (pessimistic). Scaling efficiency is not divided out. "
            f"Runs: {runs}.")
    projects = _projects(o.project for o in g)
    return Fitted("workloads.mfu", when, _lognormal(math.exp(mu), sigma, clip=True), n,
                  f"calibrated from {n} completed runs of {projects}", max(o.end for o in g).date(), note,
                  {"log_mean": mu, "log_sd": sd, "sigma": sigma, "median": math.exp(mu)})


def _family(accelerator: str) -> tuple[int, list[str] | None]:
    """The built-in failure-rate row an accelerator falls in (its index) and that row's list of
    accelerators (None for the catch-all, which makes each accelerator its own family)."""
    rows = priorsmod.builtin().rows["reliability.failure_rate_per_gpu_h"]
    for i, row in enumerate(rows):
        if row.matches({"accelerator": accelerator}):
            return (i, row.when.get("accelerator"))
    return (len(rows), None)  # pragma: no cover - the built-in rows end with a catch-all


def fit_failures(pasts: list[Past]) -> list[Fitted]:
    groups: dict[tuple, list] = {}
    for past in pasts:
        nominal = {w.name: w for w in schema.nominal_scenario(past.loaded.scenario).workloads}
        for run in past.actuals.runs:
            if run.interruptions is None:
                continue
            _pool, _id, ctx = _context(past, nominal[run.workload], run)
            i, members = _family(ctx["accelerator"])
            groups.setdefault((i, ctx["accelerator"]) if members is None else (i,), []).append(
                (past.project, ctx["accelerator"], run))
    return [_fit_failure_group(g) for g in groups.values()]


def _fit_failure_group(g: list) -> Fitted:
    accs = sorted({a for _p, a, _r in g})
    events = sum(r.interruptions for _p, _a, r in g)
    exposure = math.fsum(r.gpu_hours for _p, _a, r in g)
    prior = prior_mean_cv(priorsmod.builtin().find("reliability.failure_rate_per_gpu_h",
                                                   {"accelerator": accs[0]}).value)
    m0 = prior[0]
    mean, cv = gamma_update(m0, 1.0 / math.sqrt(PRIOR_SHAPE), events, exposure)
    shape, rate = PRIOR_SHAPE + events, PRIOR_SHAPE / m0 + exposure
    sigma = math.sqrt(math.log1p(cv**2))
    median = mean / math.exp(sigma**2 / 2)
    n = len(g)
    note = (f"N = {n} runs with an interruptions count: {events} interruptions over {exposure:,.0f} "
            f"accelerator-hours (raw rate {events / exposure if exposure else math.nan:.3g}). Weak prior: gamma of "
            f"shape {PRIOR_SHAPE:g} (worth one interruption) at the built-in row's mean {m0:.3g}; posterior gamma "
            f"shape {shape:g}, rate {rate:.4g} accelerator-hours: mean {mean:.4g}, cv {cv:.3f}; written as the "
            f"lognormal of that mean and cv (median {median:.4g}, sigma {sigma:.3f}). Every interruption in the "
            f"actuals is counted as a hardware failure: if they include preemptions or job-level failures, this "
            f"overstates the hardware rate (reliability.job_failure_rate_per_h is added on top in a forecast).")
    ends = [r.end or r.start for _p, _a, r in g if (r.end or r.start) is not None]
    return Fitted("reliability.failure_rate_per_gpu_h", {"accelerator": accs}, _lognormal(median, sigma), n,
                  f"calibrated from {n} runs of {_projects(p for p, _a, _r in g)}",
                  _dated(ends), note,
                  {"interruptions": events, "gpu_hours": exposure, "prior_mean": m0, "posterior_shape": shape,
                   "posterior_rate": rate, "posterior_mean": mean, "posterior_cv": cv})


def _dated(ends: list) -> date:
    """A calibrated row's date: that of the last run it was fitted from (today when none has one)."""
    return max(ends).date() if ends else date.today()


def _beta(failed: int, attempts: int) -> tuple[float, float]:
    """The beta posterior of a rate from `failed` of `attempts`, from a uniform prior."""
    return failed + 1.0, attempts - failed + 1.0


def rerun_rate(pasts: list[Past]) -> dict | None:
    """Failed attempts over attempts (failed + completed), pooled over the projects: the beta
    posterior mean from a uniform prior, (failed + 1) / (attempts + 2), with its sd."""
    failed = sum(len(p.actuals.in_state("failed")) for p in pasts)
    attempts = failed + sum(len(p.actuals.in_state("completed")) for p in pasts)
    if attempts == 0:
        return None
    a, b = _beta(failed, attempts)
    return {"failed": failed, "attempts": attempts, "raw": failed / attempts, "posterior_mean": a / (a + b),
            "posterior_sd": math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))), "n": attempts}


def multiplier(past: Past) -> float | None:
    """All the accelerator-hours of a project over those of its largest completed runs (None: no
    completed run, or none with hours, or a run still running: a project under way has not shown
    its final run's hours yet, and its ratio would be over the wrong runs)."""
    done = past.actuals.in_state("completed")
    if not done or past.actuals.in_state("running"):
        return None
    size = max(r.accelerators for r in done)
    final = math.fsum(r.gpu_hours for r in done if r.accelerators == size)
    return past.actuals.gpu_hours / final if final > 0 else None


def project_multiplier(pasts: list[Past]) -> dict | None:
    """Each project's multiplier, and over them the geometric mean and the range."""
    each = {p.project: m for p in pasts if (m := multiplier(p)) is not None}
    if not each:
        return None
    logs = [math.log(m) for m in each.values()]
    return {"projects": each, "geometric_mean": math.exp(math.fsum(logs) / len(logs)), "min": min(each.values()),
            "max": max(each.values()), "n": len(each)}


def fit_experiments(pasts: list[Past]) -> list[Fitted]:
    """The project multiplier as a `workloads.experiments` row (the compute around the final run as a
    multiple of it: multiplier - 1), when some project used more than its largest completed runs: a
    fixed ratio from one project; from several, the lognormal of their log-ratios' mean and spread
    (spread at least 0.1)."""
    m = project_multiplier(pasts)
    extra = [v - 1.0 for v in (m or {}).get("projects", {}).values() if v > 1.0]
    if not extra:
        return []
    logs = [math.log(x) for x in extra]
    mu = math.fsum(logs) / len(logs)
    if len(logs) == 1:
        value: dict | float = _sig(extra[0])
    else:
        sd = math.sqrt(math.fsum((x - mu) ** 2 for x in logs) / (len(logs) - 1))
        value = _lognormal(math.exp(mu), max(sd, 0.1))
    note = (f"N = {len(extra)} project(s) whose accelerator-hours exceed their largest completed runs': "
            f"experiments = multiplier - 1 = {', '.join(f'{x:.3g}' for x in extra)}; "
            + ("one project: the ratio itself." if len(extra) == 1 else
               f"lognormal at their geometric mean {math.exp(mu):.3g} and log-sd max({sd:.3f}, 0.1)."))
    counted = [p for p in pasts if p.project in m["projects"]]
    ends = [x.end for p in counted for x in p.actuals.runs if x.end is not None]
    return [Fitted("workloads.experiments", {}, value, len(extra), "sim calibrate (the team's finished projects)",
                   _dated(ends), note)]


AT_MAX = 0.99  # a failed attempt's share of a run is kept below 1 (at 1 a run never diverges)


def failed_shares(pasts: list[Past]) -> list[float]:
    """How far each failed attempt got, as a share of a run: its progress when given, else its
    accelerator-hours over the mean of its workload's completed runs of as many accelerators (at
    most AT_MAX; an attempt with neither is left out)."""
    out = []
    for past in pasts:
        done = past.actuals.in_state("completed")
        for r in past.actuals.in_state("failed"):
            if r.progress is not None:
                share = r.progress
            else:
                peers = [c.gpu_hours for c in done if c.workload == r.workload and c.accelerators == r.accelerators]
                share = r.gpu_hours / (math.fsum(peers) / len(peers)) if peers and sum(peers) > 0 else None
            if share is not None and share > 0:
                out.append(min(share, AT_MAX))
    return out


def fit_divergence(pasts: list[Past]) -> list[Fitted]:
    """The rerun rate as a `workloads.divergence` row (a run's attempt that fails is started again
    from scratch): probability the beta posterior of `rerun_rate` (uniform prior), written as the
    PERT on [0, 1] that is that beta; `at` the mean share of a run the failed attempts got to
    (`failed_shares`; the schema's 0.5 when none can be measured). Written when at least one failed
    attempt was seen (without one, nothing says the actuals record failed attempts)."""
    r = rerun_rate(pasts)
    if r is None or r["failed"] == 0:
        return []
    a, b = _beta(r["failed"], r["attempts"])
    shares = failed_shares(pasts)
    value: dict[str, Any] = {"probability": {k: (_sig(v) if isinstance(v, float) else v)
                                             for k, v in beta_as_pert(a, b).items()}}
    if shares:
        value["at"] = _sig(math.fsum(shares) / len(shares), 3)
    value["rerun"] = True
    at_text = (f"at = the mean share of a run the failed attempts got to ({len(shares)} measured: progress, else "
               "accelerator-hours over the mean of the workload's completed runs of as many accelerators)"
               if shares else "at: not measured (no failed attempt with progress or a completed peer): the "
               "schema's 0.5")
    note = (f"N = {r['attempts']} attempts, {r['failed']} failed: probability Beta({a:g}, {b:g}) (uniform prior; "
            f"mean {a / (a + b):.3f}, sd {r['posterior_sd']:.3f}) written as the PERT on [0, 1] that is that beta; "
            f"{at_text}. Every failed attempt is counted as a rerun from scratch (a divergence, a bug, a bad "
            "configuration): a job that stopped on a hardware failure and went on from its checkpoint belongs in "
            "`interruptions`. The workloads.experiments row (if any) counts the failed attempts' hours too: a "
            "final-run workload taking both counts its own reruns twice.")
    ends = [x.end or x.start for p in pasts for x in p.actuals.runs
            if x.state in ("failed", "completed") and (x.end or x.start) is not None]
    return [Fitted("workloads.divergence", {}, value, r["attempts"],
                   f"calibrated from {r['attempts']} attempts of {_projects(p.project for p in pasts)}",
                   _dated(ends), note,
                   {"failed": r["failed"], "attempts": r["attempts"], "posterior_a": a, "posterior_b": b,
                    "posterior_mean": a / (a + b), "at_measured": len(shares)})]


def team_figures(pasts: list[Past]) -> dict:
    """The rerun rate and the project multiplier (None where the actuals do not allow them)."""
    return {"rerun_rate": rerun_rate(pasts), "project_multiplier": project_multiplier(pasts)}


def describe_team(team: dict) -> list[str]:
    """The team figures as lines of text (for the terminal and the priors file's comments)."""
    out = []
    r = team.get("rerun_rate")
    out.append(f"rerun rate {r['posterior_mean']:.3f} (sd {r['posterior_sd']:.3f}; {r['failed']} failed of "
               f"{r['attempts']} attempts; (failed + 1) / (attempts + 2))" if r else
               "rerun rate: not measured (no completed or failed attempt)")
    m = team.get("project_multiplier")
    if m:
        each = ", ".join(f"{k} {v:.2f}" for k, v in m["projects"].items())
        out.append(f"project multiplier {m['geometric_mean']:.2f} (all accelerator-hours over the largest completed "
                   f"runs'; {m['n']} project(s): {each})")
    else:
        out.append("project multiplier: not measured (no finished project: each has a run still running, or no "
                   "completed run)")
    return out


# --------------------------------------------------------------------------------------------
# The file


def _header(pasts: list[Past], fitted: list[Fitted]) -> list[str]:
    lines = ["# Priors calibrated by `sim calibrate` from the team's own finished projects (format:",
             "# sim/data/priors.yaml, docs/priors.md). Use it with `simulation.priors_file: <this file>`;",
             "# its rows are tried before the built-in ones.", "#", "# Projects:"]
    for p in pasts:
        done = len(p.actuals.in_state("completed"))
        lines.append(f"#   {p.project}: {p.label} ({len(p.actuals.runs)} runs, {done} completed)")
    lines.append("# Measured (the project multiplier is also written as the workloads.experiments row, as")
    lines.append("# multiplier - 1; the rerun rate as the workloads.divergence row):")
    lines += [f"#   {line}" for line in describe_team(team_figures(pasts))]
    lines.append("# Rows (observations behind each):")
    for f in fitted:
        lines.append(f"#   {f.key} {describe_when(f.when)}: N = {f.n}")
    return lines


def describe_when(when: dict) -> str:
    """A row's `when` for people: `h100, params 1B-1000T, 0-4,096 accelerators`."""
    parts = [",".join(when.get("accelerator", [])) or "any accelerator"]
    if "params" in when:
        lo, hi = when["params"]
        parts.append(f"params {units.format_count(lo) if lo else '0'}-{units.format_count(hi)}")
    if "run_accelerators" in when:
        lo, hi = when["run_accelerators"]
        parts.append(f"{lo:,.0f}-{hi:,.0f} accelerators")
    return ", ".join(parts)


def render(pasts: list[Past], fitted: list[Fitted]) -> str:
    """The priors file: a commented header, then each key's rows, each after a comment with its N."""
    lines = [*_header(pasts, fitted), "version: 1", "priors:"]
    for key in priorsmod.KEYS:
        rows = [f for f in fitted if f.key == key]
        if not rows:
            continue
        lines.append(f"  {key}:")
        for f in rows:
            lines.append(f"    # {describe_when(f.when)}: N = {f.n}")
            text = yaml.safe_dump([f.row()], default_flow_style=None, sort_keys=False, width=100)
            lines.extend("    " + line for line in text.splitlines())
    return "\n".join(lines) + "\n"


def calibrate(args: list) -> dict:
    """Fit priors from the past projects `args` (see `pair`); the rows, the file's text and notes."""
    if isinstance(args, (str, Path)):
        args = [args]
    if not args:
        raise ScenarioError("command line", [Issue((), f"no past project given; {USAGE}")])
    pasts = [read_past(a) for a in args]
    notes: list[str] = []
    obs = [o for p in pasts for o in observations(p, notes)]
    fitted = fit_mfu(obs, notes) + fit_failures(pasts) + fit_experiments(pasts) + fit_divergence(pasts)
    if not fitted:
        raise ScenarioError(", ".join(p.label for p in pasts), [Issue((), (
            "nothing to calibrate: no completed run with a start, an end and a workload sized in FLOP (params and "
            "tokens, or flop_per_run), and no run with an interruptions count"))])
    team = team_figures(pasts)
    keys = {f.key for f in fitted}
    notes.append(("project multiplier: written as the workloads.experiments row (multiplier - 1, for `experiments: "
                  "prior` on a final-run workload)" if "workloads.experiments" in keys else
                  "project multiplier: no workloads.experiments row (no finished project used more than its largest "
                  "completed runs)") + "; " +
                 ("rerun rate: written as the workloads.divergence row (taken by every workload that leaves "
                  "`divergence` out)" if "workloads.divergence" in keys else
                  "rerun rate: no failed attempt seen, so no workloads.divergence row (the built-in: none)"))
    if fitted[0].key == "workloads.mfu":
        notes.append("MFU rows are effective MFU (wall time includes failures and restarts): see each row's note")
    return {"projects": [{"project": p.project, "past": p.label, "runs": len(p.actuals.runs),
                          "completed": len(p.actuals.in_state("completed"))} for p in pasts],
            "fitted": [{"key": f.key, "when": f.when, "value": f.value, "n": f.n, "date": f.date.isoformat(),
                        "source": f.source, "note": f.note, **f.extra} for f in fitted],
            "team": team, "notes": notes, "text": render(pasts, fitted), "out": None}
