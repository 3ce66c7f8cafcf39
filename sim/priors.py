"""Built-in priors: what a scenario key that is left out (or written `prior`) is assumed to be.

The priors live in `sim/data/priors.yaml`, every row with its source and date. A user's own
priors file (`simulation.priors_file`) is layered over it: its rows for a key are tried first.
`simulation.priors: off` (the CLI's `--no-priors`) turns them off, for closed-form work.

A key's rows are tried in order; the first whose `when` matches the context wins. A workload's
context is the accelerator of the first pool it may use, its parameters and its accelerators per
run; the scenario-wide keys (reliability) use the context of the project's largest run.

Priors fill the raw scenario (plain YAML data) before it is validated, so a prior is checked,
sampled and reported exactly as if it had been written in the file; `apply` returns which keys it
filled, with their sources, for the terminal, summary.json and the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sim import units
from sim.compute import METHOD_K

PRIOR = "prior"  # the word that asks for a key's prior explicitly

# key -> where it sits: "workload" keys are filled per workload, "reliability" ones once
WORKLOAD_KEYS = ("workloads.mfu", "workloads.loss_spike", "checkpoint.write", "workloads.divergence")
RELIABILITY_KEYS = ("reliability.failure_rate_per_gpu_h", "reliability.job_failure_rate_per_h",
                    "reliability.detect", "reliability.restart", "reliability.restart_per_doubling")
EXPERIMENTS_KEY = "workloads.experiments"  # filled only when written (`experiments: prior`), never by default
KEYS = WORKLOAD_KEYS + RELIABILITY_KEYS + (EXPERIMENTS_KEY,)
WHEN = ("accelerator", "params", "run_accelerators")


class PriorsError(ValueError):
    """A priors file that cannot be used (user file: located by the loader; built-in: a bug)."""


@dataclass(frozen=True)
class Row:
    key: str
    when: dict
    value: Any
    source: str
    date: str
    checked: bool
    note: str = ""
    origin: str = "built-in"  # built-in, or the user's file

    def matches(self, ctx: dict) -> bool:
        for k, cond in self.when.items():
            v = ctx.get(k)
            if v is None:
                return False
            if k == "accelerator":
                if v not in cond:
                    return False
            elif not (float(cond[0]) <= v < float(cond[1])):
                return False
        return True


@dataclass
class Priors:
    rows: dict[str, list[Row]] = field(default_factory=dict)

    def layered(self, over: Priors) -> Priors:
        """These priors with `over`'s rows tried first."""
        keys = set(self.rows) | set(over.rows)
        return Priors({k: [*over.rows.get(k, []), *self.rows.get(k, [])] for k in keys})

    def find(self, key: str, ctx: dict) -> Row | None:
        return next((r for r in self.rows.get(key, []) if r.matches(ctx)), None)


def _rows(data: Any, origin: str) -> Priors:
    if not isinstance(data, dict) or not isinstance(data.get("priors"), dict):
        raise PriorsError("expected a mapping with a `priors:` mapping of key -> list of rows")
    out: dict[str, list[Row]] = {}
    for key, rows in data["priors"].items():
        if key not in KEYS:
            raise PriorsError(f"priors.{key}: unknown key; priors exist for {', '.join(KEYS)}")
        if not isinstance(rows, list):
            raise PriorsError(f"priors.{key}: expected a list of rows")
        for i, r in enumerate(rows):
            where = f"priors.{key}[{i}]"
            if not isinstance(r, dict) or "value" not in r or not r.get("source"):
                raise PriorsError(f"{where}: a row needs `value` and `source` (and `date`)")
            when = r.get("when") or {}
            bad = set(when) - set(WHEN)
            if bad:
                raise PriorsError(f"{where}.when: unknown condition {sorted(bad)[0]!r}; use {', '.join(WHEN)}")
            for k in ("params", "run_accelerators"):
                if k in when and not (isinstance(when[k], list) and len(when[k]) == 2):
                    raise PriorsError(f"{where}.when.{k}: expected [low, high)")
            if "accelerator" in when and isinstance(when["accelerator"], str):
                when = {**when, "accelerator": [when["accelerator"]]}
            out.setdefault(key, []).append(Row(key, when, r["value"], str(r["source"]), str(r.get("date", "")),
                                               bool(r.get("checked", False)), str(r.get("note", "")), origin))
    return Priors(out)


@lru_cache(maxsize=1)
def builtin() -> Priors:
    return _rows(yaml.safe_load(resources.files("sim").joinpath("data/priors.yaml").read_text()), "built-in")


def read_file(path: Path) -> Priors:
    """A user's priors file (same format as sim/data/priors.yaml)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise PriorsError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    return _rows(data, str(path))


# --------------------------------------------------------------------------------------------
# Filling a raw scenario


@dataclass(frozen=True)
class Used:
    """One key filled from a prior."""

    path: tuple  # where in the scenario, e.g. ("workloads", 0, "mfu")
    label: str  # the same, by name: workloads[pretrain].mfu
    basis: str  # what it was matched on: "h100, 7B params, 512 accelerators"
    value: Any
    row: Row

    def as_dict(self) -> dict:
        return {"key": self.label, "basis": self.basis, "value": self.value, "source": self.row.source,
                "date": self.row.date, "checked": self.row.checked, "from": self.row.origin}


def _num(v: Any, parse=units.parse_count) -> float | None:
    """A plain number from a raw value, or None (a distribution, or something validation will reject)."""
    try:
        return float(parse(v))
    except (TypeError, ValueError):
        if isinstance(v, dict) and "dist" in v:  # a distribution: its median-ish middle for matching
            for k in ("median", "mode", "p50"):
                if k in v:
                    return _num(v[k], parse)
            lo, hi = v.get("p5", v.get("min", v.get("low"))), v.get("p95", v.get("max", v.get("high")))
            a, b = _num(lo, parse), _num(hi, parse)
            if a and b and a > 0 and b > 0:
                return math.sqrt(a * b)
        return None


def _accelerator_of(raw: dict, pool_name: Any) -> str | None:
    pools = raw.get("pools") if isinstance(raw.get("pools"), list) else []
    pool = next((p for p in pools if isinstance(p, dict) and p.get("name") == pool_name), None)
    if pool is None and pools and isinstance(pools[0], dict):
        pool = pools[0]
    if not isinstance(pool, dict):
        return None
    acc = pool.get("accelerator")
    specs = raw.get("accelerators") if isinstance(raw.get("accelerators"), dict) else {}
    spec = specs.get(acc) if isinstance(specs.get(acc), dict) else None
    return str(spec["base"]) if spec and spec.get("base") else (str(acc) if acc is not None else None)


def workload_context(raw: dict, w: dict) -> dict:
    pools = w.get("pools")
    first = pools[0] if isinstance(pools, list) and pools else None
    return {"accelerator": _accelerator_of(raw, first), "params": _num(w.get("params")),
            "run_accelerators": _num(w.get("accelerators"))}


def describe_context(ctx: dict) -> str:
    parts = [ctx["accelerator"]] if ctx.get("accelerator") else []
    if ctx.get("params"):
        parts.append(f"{units.format_count(ctx['params'])} params")
    if ctx.get("run_accelerators"):
        parts.append(f"{ctx['run_accelerators']:,.0f} accelerators")
    return ", ".join(parts) or "any run"


def _wants(container: dict, key: str) -> bool:
    return key not in container or container[key] == PRIOR


def write_hours(value: Any, params: float | None) -> Any:
    """A checkpoint-write prior as hours: a duration as given, or the full checkpoint's bytes
    (params x bytes_per_param) over a write bandwidth (a number, or a lognormal p5/p95 in GB/s).
    None when it needs the parameters and the run has none."""
    if not isinstance(value, dict) or "bytes_per_param" not in value:
        return value
    if not params:
        return None
    gb = params * float(value["bytes_per_param"]) / 1e9
    bw = value["write_gb_per_s"]
    if not math.isfinite(gb) or gb > 1e12:  # absurd parameters: left for validation to report
        return None
    if isinstance(bw, dict):  # lognormal in bandwidth -> lognormal in write time, ends swapped
        return {"dist": "lognormal", "p5": f"{gb / float(bw['p95']):.3g} s", "p95": f"{gb / float(bw['p5']):.3g} s"}
    return f"{gb / float(bw):.3g} s"


def apply(raw: dict, priors: Priors) -> tuple[dict, list[Used], list[tuple[tuple, str]]]:
    """Fill the keys of `raw` that are left out or written `prior`; returns the filled copy, what
    was filled, and (path, message) problems (a key written `prior` that no row matches)."""
    import copy

    out = copy.deepcopy(raw)
    used: list[Used] = []
    problems: list[tuple[tuple, str]] = []
    workloads = [w for w in out.get("workloads", []) if isinstance(w, dict)] if isinstance(
        out.get("workloads"), list) else []
    for i, w in enumerate(workloads):
        _fill_workload(out, i, w, priors, used, problems)
    for i, w in enumerate(list(workloads)):
        added = _expand_experiments(out, i, w, priors, used, problems)
        if added is not None:
            out["workloads"].append(added)
            workloads.append(added)
            _fill_workload(out, len(out["workloads"]) - 1, added, priors, used, problems, reruns=False)
    if workloads:
        _fill_reliability(out, workloads, priors, used, problems)
    return out, used, problems


def _label(w: dict, i: int) -> str:
    return f"workloads[{w.get('name', i)}]"


def _fill_workload(raw: dict, i: int, w: dict, priors: Priors, used: list, problems: list,
                   reruns: bool = True) -> None:
    """Fill a workload's keys from the priors (`reruns` False: not its divergence, for the
    experiments around a final run, whose compute ratio counts their reruns already)."""
    ctx = workload_context(raw, w)
    basis = describe_context(ctx)
    if reruns:
        _fill_optional(w, "divergence", priors.find("workloads.divergence", ctx), ("workloads", i, "divergence"),
                       f"{_label(w, i)}.divergence", basis, used, problems)
    needs_mfu = any(k in w for k in ("tokens", "flop_per_run"))
    if ("mfu" not in w and needs_mfu) or w.get("mfu") == PRIOR:
        _put(w, "mfu", priors.find("workloads.mfu", ctx), ("workloads", i, "mfu"), f"{_label(w, i)}.mfu", basis,
             used, problems)
    if w.get("loss_spike") == PRIOR or ("loss_spike" not in w and _failures_on(raw)):
        _fill_optional(w, "loss_spike", priors.find("workloads.loss_spike", ctx), ("workloads", i, "loss_spike"),
                       f"{_label(w, i)}.loss_spike", basis, used, problems)
    rel = raw.get("reliability") if isinstance(raw.get("reliability"), dict) else {}
    ck = w.get("checkpoint")
    if _failures_on(raw) and "checkpoint" not in rel and (ck is None or (isinstance(ck, dict) and _wants(ck, "write"))):
        row = priors.find("checkpoint.write", ctx)
        hours = write_hours(row.value, ctx["params"]) if row else None
        if row is not None and hours is not None:
            ck = dict(ck) if isinstance(ck, dict) else {"interval": "auto"}
            ck["write"] = hours
            w["checkpoint"] = ck
            used.append(Used(("workloads", i, "checkpoint", "write"), f"{_label(w, i)}.checkpoint.write", basis, hours,
                             row))


def _fill_optional(w: dict, name: str, row: Row | None, path: tuple, label: str, basis: str, used: list,
                   problems: list) -> None:
    """A workload key whose prior may be `none` (loss spikes, divergence): left out or `prior`, it
    takes the row's value; a `none` row leaves it out."""
    if not _wants(w, name):
        return
    if row is not None and row.value not in (None, "none"):
        _put(w, name, row, path, label, basis, used, problems)
    elif w.get(name) == PRIOR:
        del w[name]


def _failures_on(raw: dict) -> bool:
    rel = raw.get("reliability")
    return not (isinstance(rel, dict) and rel.get("model") == "none")


def _fill_reliability(raw: dict, workloads: list, priors: Priors, used: list, problems: list) -> None:
    if not _failures_on(raw):
        return
    rel = raw.setdefault("reliability", {})
    if not isinstance(rel, dict):
        return
    big = max(workloads, key=lambda w: _num(w.get("accelerators")) or 0.0)
    ctx = workload_context(raw, big)
    basis = f"largest run: {describe_context(ctx)}"
    for key in RELIABILITY_KEYS:
        name = key.split(".", 1)[1]
        if name == "failure_rate_per_gpu_h" and "mtbf_per_gpu" in rel:
            continue
        if _wants(rel, name):
            _put(rel, name, priors.find(key, ctx), ("reliability", name), key, basis, used, problems)


def _put(container: dict, name: str, row: Row | None, path: tuple, label: str, basis: str, used: list,
         problems: list) -> None:
    if row is None:
        if container.get(name) == PRIOR:
            problems.append((path, f"no prior matches this key ({basis}); give a value"))
        return
    container[name] = row.value
    used.append(Used(path, label, basis, row.value, row))


def short_source(source: str, width: int = 70) -> str:
    """A source's first reference, cut to `width` characters (the terminal's; files keep it whole)."""
    first = source.split(";")[0].strip()
    return first if len(first) <= width else first[: width - 1].rstrip() + "…"


def format_value(v: Any) -> str:
    """A prior's value for people: `lognormal P5 0.31 / P95 0.47`, `30 s`, `1.97e-05`."""
    if isinstance(v, dict) and "dist" in v:
        d = {k: x for k, x in v.items() if k not in ("clip", "round")}
        kind = d.pop("dist")
        names = {"p5": "P5", "p95": "P95", "median": "median", "sigma": "sigma", "min": "min", "mode": "mode",
                 "max": "max", "low": "low", "high": "high", "mean": "mean", "sd": "sd"}
        return f"{kind} " + " / ".join(f"{names.get(k, k)} {val}" for k, val in d.items())
    if isinstance(v, dict):
        return ", ".join(f"{k} {format_value(x)}" for k, x in v.items())
    return f"{v:.3g}" if isinstance(v, float) else str(v)


# --------------------------------------------------------------------------------------------
# Project shape: the experiments, ablations and reruns around a final run

EXPERIMENT_KEYS = ("compute", "runs", "accelerators", "schedule")
EXPERIMENT_RUNS = 20  # default number of experiment runs (AI21's 2 configurations x 10 runs)
EXPERIMENT_SHARE = 8  # default: each experiment run on 1/8 of the final run's accelerators
SCALED = ("p5", "p95", "median", "min", "max", "mode", "mean", "sd", "low", "high")


def expand_experiments(raw: dict) -> tuple[dict, list[tuple[tuple, str]]]:
    """With priors off: `experiments:` given as numbers become their workloads (a copy of `raw`)."""
    import copy

    out = copy.deepcopy(raw)
    problems: list[tuple[tuple, str]] = []
    workloads = out.get("workloads") if isinstance(out.get("workloads"), list) else []
    for i, w in enumerate(list(workloads)):
        if isinstance(w, dict):
            added = _expand_experiments(out, i, w, None, [], problems)
            if added is not None:
                workloads.append(added)
    return out, problems


def scaled(value: Any, factor: float) -> Any:
    """A number, or a distribution's location and scale parameters, times `factor`."""
    if isinstance(value, dict):
        out = {k: (float(units.parse_plain(v)) * factor if k in SCALED else v) for k, v in value.items()}
        if isinstance(value.get("values"), list):
            out["values"] = [float(units.parse_plain(v)) * factor for v in value["values"]]
        return out
    return float(units.parse_plain(value)) * factor


def _experiment_spec(w: dict, where: tuple, problems: list) -> dict | None:
    spec = w.pop("experiments")
    if spec is None or spec is False:
        return None
    spec = dict(spec) if isinstance(spec, dict) else {"compute": spec}
    bad = [k for k in spec if k not in EXPERIMENT_KEYS]
    if bad:
        problems.append(((*where, bad[0]), f"unknown key; experiments has {', '.join(EXPERIMENT_KEYS)}"))
        return None
    accel = _num(w.get("accelerators")) or 1.0
    spec.setdefault("compute", PRIOR)
    spec.setdefault("runs", EXPERIMENT_RUNS)
    spec.setdefault("accelerators", max(1, int(accel) // EXPERIMENT_SHARE))
    spec.setdefault("schedule", "before")
    for k in ("runs", "accelerators"):
        n = _num(spec[k])
        if n is None or n < 1 or n != int(n) or (k == "accelerators" and n > accel):
            limit = f" up to the final run's {accel:,.0f}" if k == "accelerators" else ""
            problems.append(((*where, k), f"expected a whole number >= 1{limit}, got {spec[k]!r}"))
            return None
        spec[k] = int(n)
    if spec["schedule"] not in ("before", "alongside"):
        problems.append(((*where, "schedule"), f"expected before or alongside, got {spec['schedule']!r}"))
        return None
    return spec


def _final_size(w: dict) -> tuple[str, float] | None:
    """The final run's size as (key for the experiments, amount per final run): FLOP or accelerator-hours."""
    if w.get("tokens") is not None and w.get("params") is not None:
        k = _num(w.get("flop_per_param_token"), units.parse_plain) or METHOD_K.get(w.get("method", "full"), 6.0)
        p, t = _num(w["params"]), _num(w["tokens"])
        return ("flop_per_run", k * p * t) if p and t else None
    if w.get("flop_per_run") is not None:
        f = _num(w["flop_per_run"], units.parse_flop)
        return ("flop_per_run", f) if f else None
    if w.get("gpu_hours_per_run") is not None:
        g = _num(w["gpu_hours_per_run"], units.parse_duration_h)
        return ("gpu_hours_per_run", g) if g else None
    h, a = _num(w.get("hours_per_run"), units.parse_duration_h), _num(w.get("accelerators"))
    return ("gpu_hours_per_run", h * a) if h and a else None


def _expand_experiments(raw: dict, i: int, w: dict, priors: Priors | None, used: list,
                        problems: list) -> dict | None:
    """The workload of experiment runs around final run `w` (its `experiments:` key popped), or
    None. Their compute is `compute` x the final workload's (all its runs; FLOP or accelerator-hours,
    at its MFU), split into `runs` runs of `accelerators` each, before the final run or alongside."""
    if "experiments" not in w:
        return None
    where = ("workloads", i, "experiments")
    spec = _experiment_spec(w, where, problems)
    size = _final_size(w)
    if spec is None or size is None:  # no size: validation reports the workload's own problem
        return None
    ratio = spec["compute"]
    if ratio == PRIOR:
        ctx = workload_context(raw, w)
        row = priors.find(EXPERIMENTS_KEY, ctx) if priors else None
        if row is None:
            problems.append((where, f"no prior matches this key ({describe_context(ctx)}); give a value"))
            return None
        ratio = row.value
        basis = f"{describe_context(ctx)}; extra compute as a multiple of the final run's"
        used.append(Used((*where, "compute"), f"{_label(w, i)}.experiments", basis, ratio, row))
    try:
        amount = scaled(ratio, size[1] * (_num(w.get("runs", 1)) or 1.0) / spec["runs"])
    except (TypeError, ValueError):
        problems.append(((*where, "compute"), "expected the experiments' compute as a multiple of the final "
                         f"run's (0.6, or a distribution), got {ratio!r}"))
        return None
    if amount == 0:
        return None
    name = f"{w.get('name', i)}-experiments"
    if any(isinstance(o, dict) and o.get("name") == name for o in raw["workloads"]):
        problems.append((where, f"a workload is already named {name!r}"))
        return None
    exp = {"name": name, "description": f"experiments, ablations and reruns around {w.get('name', i)} "
           "(experiments:)", "runs": spec["runs"], "accelerators": spec["accelerators"], size[0]: amount,
           "after": list(w.get("after") or [])}
    for k in ("pools", "mfu", "method", "flop_per_param_token", "earliest_start", "priority", "on_node_loss"):
        if k in w and not (size[0] == "gpu_hours_per_run" and k in ("mfu", "method", "flop_per_param_token")):
            exp[k] = w[k]
    if spec["schedule"] == "before":
        w["after"] = [*exp["after"], name]
    return exp
