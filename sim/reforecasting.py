"""A living forecast: re-forecast a running project from its actuals.

From the scenario and what has happened by the as-of date (sim.actuals), build the scenario of
the work that is left, starting at the as-of date:
- completed runs are history: they leave the workload's run count, their cost is actual spend;
- running runs go on from their progress, each a one-run workload of the work it has left, on its
  pool first (the work since its last checkpoint is at risk as usual);
- failed and cancelled runs are spent (their hours and cost count as actuals) and the run itself
  is still to do;
- workloads whose every run is done are gone, and so are the dependencies on them;
- dated capacity changes and earliest starts already passed are applied; reserved commitments
  keep their dates, and only what is still to be paid from the as-of date on is simulated (what
  was paid before is sunk, in the actuals if the ledger has it);
- prices are those from the as-of date on (catalog prices in force then; a declining price curve
  is carried to the as-of date);
and update the uncertain failure rate from what was observed (gamma-Poisson: the prior's mean
and spread as a gamma, plus the interruptions seen over the accelerator-hours run).

Estimate at completion = actual to date + the simulated remaining cost, per replication.
"""

from __future__ import annotations

import copy
import math
import re
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sim import units
from sim.distributions import Z95

SIZE_KEYS = (("tokens", units.parse_count), ("flop_per_run", units.parse_flop),
             ("gpu_hours_per_run", units.parse_duration_h), ("hours_per_run", units.parse_duration_h))
SCALED = ("p5", "p95", "median", "min", "mode", "max", "low", "high", "mean", "sd", "value")


@dataclass
class Remaining:
    """The scenario of the work left, and what the actuals say happened."""

    raw: dict
    as_of: date
    actual_usd: float
    actual_gpu_hours: float
    done_fraction: float  # of the project's nominal accelerator-hours, completed runs and progress
    runs_done: dict[str, int] = field(default_factory=dict)
    runs_running: dict[str, int] = field(default_factory=dict)
    runs_left: dict[str, int] = field(default_factory=dict)
    posterior: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def scaled(value: Any, factor: float, parse) -> Any:
    """A size (a number, a readable string or a distribution) times `factor`."""
    if isinstance(value, dict) and "dist" in value:
        out = dict(value)
        for k in SCALED:
            if k in out and not (k == "sd" and out.get("dist") == "lognormal"):
                out[k] = parse(out[k]) * factor
        return out
    return parse(value) * factor


def _size_key(w: dict):
    return next(((k, p) for k, p in SIZE_KEYS if k in w), (None, None))


def gamma_update(prior_mean: float, prior_cv: float, events: float, exposure: float) -> tuple[float, float]:
    """Posterior mean and coefficient of variation of a Poisson rate: the prior as a gamma of that
    mean and coefficient of variation (shape 1/cv^2, rate shape/mean), `events` seen over
    `exposure` (conjugate update: shape + events, rate + exposure)."""
    shape = 1.0 / prior_cv**2
    rate = shape / prior_mean
    shape, rate = shape + events, rate + exposure
    return shape / rate, 1.0 / math.sqrt(shape)


def prior_mean_cv(value: Any) -> tuple[float, float] | None:
    """Mean and coefficient of variation of a rate written as a number or a lognormal (else None)."""
    if isinstance(value, (int, float)) and value > 0:
        return float(value), 1.0  # a point guess: held loosely (cv 1), so the field data can move it
    if isinstance(value, dict) and value.get("dist") == "lognormal":
        if "p5" in value and "p95" in value:
            lo, hi = float(value["p5"]), float(value["p95"])
            median, sigma = math.sqrt(lo * hi), math.log(hi / lo) / (2 * Z95)
        elif "median" in value and "sigma" in value:
            median, sigma = float(value["median"]), float(value["sigma"])
        else:
            return None
        return median * math.exp(sigma**2 / 2), math.sqrt(math.expm1(sigma**2))
    return None


def lognormal_of(mean: float, cv: float) -> dict:
    """A lognormal with this mean and coefficient of variation, in the scenario's syntax."""
    sigma = math.sqrt(math.log1p(cv**2))
    return {"dist": "lognormal", "median": mean / math.exp(sigma**2 / 2), "sigma": sigma}


def _when(t: datetime | date | None) -> date | None:
    return t.date() if isinstance(t, datetime) else t


def remaining(loaded, actuals, nominal_gpu_hours: dict[str, float],
              predicted: dict[str, tuple[float, str]] | None = None) -> Remaining:
    """The scenario of the work left at `actuals.as_of` (see the module's docstring).
    `nominal_gpu_hours`: each workload's accelerator-hours per run at its nominal inputs (to weigh
    the work done); `predicted`: each workload's wall hours per run at its nominal MFU and the pool
    that is for (to update MFU from the runs seen; None: no MFU update)."""
    scn = loaded.scenario
    raw = copy.deepcopy(loaded.scenario.model_dump(mode="json", exclude_none=True))
    raw.pop("variants", None)
    as_of = _when(actuals.as_of)
    rem = Remaining(raw, as_of, 0.0, 0.0, 0.0)
    by = actuals.by_workload()
    _workloads_left(rem, raw, by, nominal_gpu_hours, {w.name: w for w in scn.workloads})
    _calendar(rem, raw, scn, as_of)
    _update_failures(rem, raw, actuals)
    if predicted:
        _update_mfu(rem, raw, actuals, predicted, {w.name: w for w in scn.workloads})
    raw.setdefault("simulation", {})["priors"] = "off"  # resolved already: nothing is left to a prior
    rem.actual_usd = sum(r.cost_usd or 0.0 for r in actuals.runs) + sum(e.amount_usd for e in actuals.ledger)
    rem.actual_gpu_hours = sum(r.gpu_hours for r in actuals.runs)
    budget = raw["project"].get("budget_usd")
    if budget is not None:  # the work left's budget is what is left: P(remaining > it) = P(EAC > budget)
        left = raw["project"]["budget_usd"] = max(float(budget) - rem.actual_usd, 0.0)
        rem.notes.append(f"the work left's budget is what is left of it: {units.format_usd(left)} of "
                         f"{units.format_usd(float(budget))}")
    return rem


def _workloads_left(rem: Remaining, raw: dict, by: dict, nominal: dict[str, float], spec: dict) -> None:
    total = sum(nominal[w["name"]] * int(spec[w["name"]].runs) for w in raw["workloads"]) or 1.0
    done_h, out, now_as = 0.0, [], {}  # now_as: a workload's name -> the workloads its work is now in
    for w in raw["workloads"]:
        name = w["name"]
        runs = int(spec[name].runs)
        mine = by.get(name, [])
        completed = sum(r.state == "completed" for r in mine)
        running = [r for r in mine if r.state == "running"]
        left = max(runs - completed - len(running), 0)
        rem.runs_done[name], rem.runs_running[name], rem.runs_left[name] = completed, len(running), left
        done_h += nominal[name] * (min(completed, runs) + sum(r.progress or 0.0 for r in running))
        now_as[name] = []
        for r in running:
            out.append(_running_remainder(w, r))
            now_as[name].append(out[-1]["name"])
        if left:
            out.append({**w, "runs": left})
            now_as[name].append(name)
    for w in out:  # wait for what is left of the workloads waited for (nothing, when they are done)
        w["after"] = [n for a in w.get("after", []) for n in now_as.get(a, []) if n != w["name"]]
    raw["workloads"] = out
    rem.done_fraction = done_h / total


def _running_remainder(w: dict, r) -> dict:
    """A running run as a one-run workload of the work it has left, on its pool first, ahead of
    the queue, with nothing to wait for."""
    left = 1.0 - (r.progress or 0.0)
    key, parse = _size_key(w)
    new = {k: v for k, v in w.items() if k not in ("divergence", "early_stop", "after", "earliest_start",
                                                    "max_concurrent", "arrivals", "runs")}
    rid = re.sub(r"[^A-Za-z0-9_.-]", "-", str(r.run_id))
    new.update(name=f"{w['name']}.running.{rid}", runs=1, priority=int(w.get("priority", 0)) + 1000)
    if key:
        new[key] = scaled(w[key], max(left, 1e-9), parse)
    if r.pool and w.get("pools"):
        new["pools"] = [r.pool, *[p for p in w["pools"] if p != r.pool]]
    elif r.pool:
        new["pools"] = [r.pool]
    return new


def _calendar(rem: Remaining, raw: dict, scn, as_of: date) -> None:
    """The project starts at the as-of date: passed capacity changes and earliest starts applied,
    reserved commitments kept on their dates, prices carried to the as-of date."""
    start = scn.project.start
    raw["project"]["start"] = as_of.isoformat()
    for p, spec in zip(raw["pools"], scn.pools, strict=True):
        changes = sorted(spec.capacity_changes, key=lambda c: c.date)
        passed = [c for c in changes if c.date <= as_of]
        if passed:
            p["count"] = int(passed[-1].count)
            p["capacity_changes"] = [{"date": c.date.isoformat(), "count": int(c.count)} for c in changes
                                     if c.date > as_of]
        if spec.pricing == "reserved":  # only what is left of the commitment is still to pay
            c0 = spec.commitment_start or start
            end_h = units.hours_between(c0, as_of) if c0 <= as_of else 0.0
            term = float(spec.term) if spec.term is not None else 8760.0
            if c0 <= as_of:
                p["commitment_start"], p["term"] = as_of.isoformat(), max(term - end_h, 1e-6)
                rem.notes.append(f"pool {p['name']}: the commitment paid before {as_of} is sunk; "
                                 f"{max(term - end_h, 0.0) / 24:,.0f} days of it are left")
        curve = p.get("price_curve", {})
        if curve.get("kind") == "exponential" and "price_usd_per_gpu_h" in p and isinstance(
                p["price_usd_per_gpu_h"], (int, float)):
            years = (as_of - start).days / 365.25
            p["price_usd_per_gpu_h"] = p["price_usd_per_gpu_h"] * (1 - float(curve["annual_decline"])) ** years
            rem.notes.append(f"pool {p['name']}: price carried to {as_of} along its decline")
    for w in raw["workloads"]:
        if w.get("earliest_start") and date.fromisoformat(str(w["earliest_start"])) <= as_of:
            del w["earliest_start"]
    if scn.project.deadline and scn.project.deadline <= as_of:  # the work left has none (P(late) is 1)
        raw["project"].pop("deadline", None)
        rem.notes.append("the deadline has passed")


def _update_failures(rem: Remaining, raw: dict, actuals) -> None:
    """The hardware failure rate per accelerator-hour, updated from the interruptions seen."""
    rel = raw.get("reliability", {})
    if rel.get("model") == "none":
        return
    prior = prior_mean_cv(rel.get("failure_rate_per_gpu_h"))
    seen = [r for r in actuals.runs if r.interruptions is not None]
    if prior is None or not seen:
        return
    events, exposure = sum(r.interruptions for r in seen), sum(r.gpu_hours for r in seen)
    mean, cv = gamma_update(*prior, events, exposure)
    rel["failure_rate_per_gpu_h"] = lognormal_of(mean, cv)
    rem.posterior["reliability.failure_rate_per_gpu_h"] = {
        "prior_mean": prior[0], "prior_cv": prior[1], "interruptions_seen": events,
        "gpu_hours_seen": exposure, "posterior_mean": mean, "posterior_cv": cv}


def actual_spend(actuals) -> list[tuple[datetime, float]]:
    """Cumulative actual spend over time up to the as-of time, as (time, USD) points of a line: a
    completed, failed or cancelled run's cost at its end (else its start, else the as-of time), a
    running run's cost spread evenly from its start to the as-of time, a ledger entry at the end of
    its day (none later than the as-of time); a run without a cost counts 0. A jump is two points
    at the same time (before and after it); the last point is at the as-of time, with the whole
    actual to date."""
    as_of = actuals.as_of if isinstance(actuals.as_of, datetime) else datetime.combine(actuals.as_of, time())
    steps: dict[datetime, float] = {}
    ramps: list[tuple[datetime, float]] = []  # (start, cost) of running runs, spread to as_of
    for r in actuals.runs:
        cost = r.cost_usd or 0.0
        if r.state == "running" and r.start is not None and r.start < as_of:
            ramps.append((r.start, cost))
        else:
            t = min(r.end or r.start or as_of, as_of)
            steps[t] = steps.get(t, 0.0) + cost
    for e in actuals.ledger:
        t = min(datetime.combine(e.date, time()) + timedelta(days=1), as_of)
        steps[t] = steps.get(t, 0.0) + e.amount_usd
    times = sorted({*steps, *(u for u, _ in ramps), as_of})
    ramps.sort()
    points: list[tuple[datetime, float]] = []
    done = slope = intercept = 0.0  # steps booked so far; ramps begun: slope * seconds - intercept
    k = 0
    for t in times:  # seconds counted from as_of (<= 0)
        while k < len(ramps) and ramps[k][0] <= t:
            u, c = ramps[k]
            rate = c / (as_of - u).total_seconds()
            slope, intercept, k = slope + rate, intercept + rate * (u - as_of).total_seconds(), k + 1
        ramp = slope * (t - as_of).total_seconds() - intercept
        for v in (done + ramp, done + steps.get(t, 0.0) + ramp):
            if not points or points[-1] != (t, v):
                points.append((t, v))
        done += steps.get(t, 0.0)
    return points


def cumulative_at(spend_by_month: dict[str, float], start: date, as_of: date) -> float:
    """Spend up to `as_of` from a spend by calendar month (YYYY-MM -> USD), the month of `as_of`
    counted in proportion of its days passed (and the first month from `start`)."""
    total = 0.0
    for label, usd in spend_by_month.items():
        y, m = (int(x) for x in label.split("-"))
        first = max(date(y, m, 1), start)
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        if as_of >= nxt:
            total += usd
        elif as_of > first:
            total += usd * (as_of - first).days / max((nxt - first).days, 1)
    return total


def block(rem: Remaining, eac, finish_days, scn, baseline: dict | None) -> dict:
    """The `reforecast` block of summary.json: estimate at completion (actual + remaining) and
    finish date as distributions, the risks, earned value against the baseline (the original
    scenario at its nominal inputs), the posterior updates and how many runs are done."""
    import numpy as np

    eac = np.asarray(eac, dtype=float)
    finish = [rem.as_of.toordinal() + d for d in np.asarray(finish_days, dtype=float)]
    q = np.percentile(eac, [5, 50, 95])
    fq = [date.fromordinal(int(math.floor(x))).isoformat() for x in np.percentile(finish, [5, 50, 95])]
    out = {"as_of": rem.as_of.isoformat(), "actual_to_date_usd": rem.actual_usd,
           "actual_gpu_hours": rem.actual_gpu_hours, "done_fraction": rem.done_fraction,
           "eac_usd": {"mean": float(eac.mean()), "p5": float(q[0]), "p50": float(q[1]), "p95": float(q[2])},
           "finish_date": {"p5": fq[0], "p50": fq[1], "p95": fq[2]},
           "runs": {"done": rem.runs_done, "running": rem.runs_running, "left": rem.runs_left},
           "posterior": rem.posterior, "notes": rem.notes}
    if scn.project.budget_usd:
        out["p_over_budget"] = float(np.mean(eac > float(scn.project.budget_usd)))
    if scn.project.deadline:
        out["p_late"] = float(np.mean(np.floor(finish) > scn.project.deadline.toordinal()))
    if baseline:
        bac = float(baseline["cost_usd"])
        pv = cumulative_at({k[len("spend_usd_"):]: v for k, v in baseline.items() if k.startswith("spend_usd_")},
                           scn.project.start, rem.as_of)
        ev, ac = bac * rem.done_fraction, rem.actual_usd
        out["earned_value"] = {"budget_at_completion_usd": bac, "planned_value_usd": pv, "earned_value_usd": ev,
                               "actual_cost_usd": ac, "cpi": ev / ac if ac > 0 else None,
                               "spi": ev / pv if pv > 0 else None,
                               "variance_at_completion_usd": bac - float(eac.mean())}
    return out


OBS_LOG_SD = 0.1  # run-to-run spread of a run's throughput (log scale) when too few runs show their own
POINT_LOG_SD = 0.15  # how loosely a point MFU is held as a prior


def _log_prior(mfu) -> tuple[float, float]:
    """Log-mean and log-sd of an MFU given as a number or a distribution (from its P5 and P95)."""
    from sim.distributions import Dist

    if isinstance(mfu, Dist):
        f = mfu.frozen()
        lo, hi = math.log(f.ppf(0.05)), math.log(f.ppf(0.95))
        return (lo + hi) / 2, max((hi - lo) / (2 * Z95), 1e-3)
    return math.log(float(mfu)), POINT_LOG_SD


def realised_mfu(runs, hours_per_run: float, nominal_mfu: float, pool: str, whole: bool = True) -> list[float]:
    """The MFU each clean run achieved (no interruption recorded, on the pool the prediction is for):
    the nominal MFU x predicted hours x the share of its work done / hours held. A completed run did
    all its work unless its progress says otherwise; with `whole` False (a workload with runs stopped
    early) only runs that give their progress count."""
    out = []
    for r in runs:
        if r.interruptions != 0 or r.pool != pool or r.start is None or r.accelerators <= 0:
            continue
        held = r.gpu_hours / r.accelerators
        if r.progress is not None:
            share = r.progress
        else:
            share = 1.0 if r.state == "completed" and whole else 0.0
        if share > 0 and held > 0:
            out.append(nominal_mfu * hours_per_run * share / held)
    return out


def normal_update(mu0: float, sd0: float, ys: list[float], sd_obs: float) -> tuple[float, float]:
    """Normal-normal conjugate update of a mean from observations `ys` of known spread."""
    prec = 1 / sd0**2 + len(ys) / sd_obs**2
    mean = (mu0 / sd0**2 + sum(ys) / sd_obs**2) / prec
    return mean, math.sqrt(1 / prec)


def _update_mfu(rem: Remaining, raw: dict, actuals, predicted: dict, spec: dict) -> None:
    """Each workload's MFU (in FLOP terms) updated on the log scale from its clean runs: the prior's
    log-mean and log-sd, the runs' log MFU with their own spread (or OBS_LOG_SD with fewer than 3)."""
    from sim.distributions import nominal

    for name, runs in actuals.by_workload().items():
        w = spec.get(name)
        if w is None or w.mfu is None or name not in predicted:
            continue
        hours, pool = predicted[name]
        seen = realised_mfu(runs, hours, nominal(w.mfu), pool, whole=w.early_stop is None)
        if not seen:
            continue
        ys = [math.log(x) for x in seen]
        sd_obs = OBS_LOG_SD if len(ys) < 3 else max(statistics.stdev(ys), 0.02)
        mu0, sd0 = _log_prior(w.mfu)
        mu, sd = normal_update(mu0, sd0, ys, sd_obs)
        value = {"dist": "lognormal", "median": math.exp(mu), "sigma": sd, "clip": True}
        for x in raw["workloads"]:
            if x["name"] == name or x["name"].startswith(name + ".running."):
                x["mfu"] = value
        rem.posterior[f"workloads[{name}].mfu"] = {
            "prior_median": math.exp(mu0), "prior_log_sd": sd0, "runs_seen": len(ys),
            "seen_median": math.exp(sum(ys) / len(ys)), "posterior_median": math.exp(mu), "posterior_log_sd": sd}
