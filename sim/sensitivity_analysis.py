"""What drives the cost: a tornado (one input at a time, the others at their medians) and global
variance-based Sobol indices (SALib's Saltelli sampling and Sobol analysis).

As in SALib, evaluating and analysing are separate steps. `design` lists the points (the tornado's
and the Saltelli sample); `evaluate` runs them, in parallel through the runner's backends, a failing
point recorded with its error rather than stopping the rest; `save` keeps the points and their
outputs (points.parquet, points.json) in the sensitivity folder; and `analyse` recomputes the
tornado and the Sobol indices from them, so a stored run can be re-analysed without simulating.

Every evaluation point runs the same replication indices (0..reps-1) with the same seed, so the
engine's own randomness (failures, preemptions, reruns) is common to all points and does not
pollute the bars.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim.engine import simulate
from sim.loader import Loaded
from sim.montecarlo import NonFiniteResult, input_label, non_finite
from sim.outputs import write_json, write_parquet
from sim.plan import build_plan
from sim.schema import map_dists, uncertain_inputs

log = logging.getLogger("sim.sensitivity_analysis")
OUTPUTS = ("cost_mean", "cost_p90", "makespan_days_mean")
POINTS, DESIGN = "points.parquet", "points.json"
LOW, HIGH = 0.1, 0.9


def _evaluate(loaded: Loaded, values: dict, seed: int, reps: int) -> dict[str, float]:
    """Outputs at one point: every uncertain input fixed at `values`, `reps` replications."""
    scn = map_dists(loaded.scenario, lambda d, path: int(round(values[path])) if d.bounds.integer else values[path])
    plan = build_plan(scn, loaded.catalog)
    with np.errstate(all="ignore"):  # overflow shows as a non-finite output, refused below
        recs = [simulate(plan, seed, k).record() for k in range(reps)]
        cost = np.array([r.cost_usd for r in recs])
        out = {"cost_mean": float(cost.mean()), "cost_p90": float(np.percentile(cost, 90)),
               "makespan_days_mean": float(np.mean([r.makespan_days for r in recs]))}
    problem = non_finite(out)
    if problem:
        raise NonFiniteResult(problem)
    return out


def _value(d, q: float) -> float:
    v = float(d.ppf(q))
    rule = d.bounds.check(v)
    if rule:  # a tail outside the key's limits: use the limit itself for the bar
        b = d.bounds
        v = min(max(v, b.lo if b.lo is not None else v), b.hi if b.hi is not None else v)
    return v


# --------------------------------------------------------------------------------------------
# The points


def _saltelli(names: list[str], n: int, seed: int) -> tuple[dict, np.ndarray]:
    from SALib.sample import sobol as sobol_sample

    problem = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
    u = sobol_sample.sample(problem, n, calc_second_order=False, seed=seed)
    return problem, np.clip(u, 1e-9, 1 - 1e-9)


def design(loaded: Loaded, seed: int, n: int = 64, tornado: bool = True, sobol: bool = True) -> pd.DataFrame:
    """The points to evaluate, one row each: `kind` (base, low, high or sobol), `input` (the input
    a tornado point moves) and one column per uncertain input with its value. Sobol points (from
    SALib's Saltelli sample, base size n) come in the sample's order, which the analysis needs."""
    dists = uncertain_inputs(loaded.scenario)
    names = [input_label(loaded.scenario, p) for p in dists]
    rows: list[tuple[str, str | None, list[float]]] = []
    if tornado:
        medians = [_value(d, 0.5) for d in dists.values()]
        rows.append(("base", None, medians))
        for j, (name, d) in enumerate(zip(names, dists.values(), strict=True)):
            rows.append(("low", name, [*medians[:j], _value(d, LOW), *medians[j + 1:]]))
            rows.append(("high", name, [*medians[:j], _value(d, HIGH), *medians[j + 1:]]))
    if sobol and len(names) >= 2:
        _problem, u = _saltelli(names, n, seed)
        rows += [("sobol", None, [_value(d, q) for d, q in zip(dists.values(), row, strict=True)]) for row in u]
    df = pd.DataFrame([v for _k, _i, v in rows], columns=names, dtype=float)
    df.insert(0, "input", pd.Series([i for _k, i, _v in rows], dtype=object))
    df.insert(0, "kind", [k for k, _i, _v in rows])
    df.insert(0, "point", np.arange(len(rows)))
    return df


# --------------------------------------------------------------------------------------------
# Evaluation (parallel, failing points recorded)


def _evaluate_task(task: tuple) -> list[dict]:
    """A worker's share of the points: outputs per point, or the error that stopped it."""
    from sim.runner import worker_loaded

    seed, reps, points = task
    loaded = worker_loaded()
    paths = list(uncertain_inputs(loaded.scenario))
    out = []
    for point, values in points:
        try:
            res = _evaluate(loaded, dict(zip(paths, values, strict=True)), seed, reps)
            out.append({"point": point, **res, "error": None})
        except Exception as e:  # recorded with the point; the others go on
            out.append({"point": point, **dict.fromkeys(OUTPUTS, math.nan), "error": f"{type(e).__name__}: {e}"})
    return out


def evaluate(loaded: Loaded, points: pd.DataFrame, seed: int, reps: int, workers: int = 1,
             backend: str = "process", scheduler: str | None = None) -> pd.DataFrame:
    """The points with their outputs (cost_mean, cost_p90, makespan_days_mean) and `error` (None,
    or why the point failed: its outputs are then NaN). Numbers do not depend on the workers."""
    from sim.runner import Backend, Settings

    names = [input_label(loaded.scenario, p) for p in uncertain_inputs(loaded.scenario)]
    values = points[names].to_numpy(dtype=float).tolist()
    items = list(zip(points["point"].tolist(), values, strict=True))
    size = max(1, math.ceil(len(items) / (max(workers, 1) * 4)))
    tasks = [(seed, reps, items[i:i + size]) for i in range(0, len(items), size)]
    settings = Settings(seed=seed, reps=reps, workers=workers, backend=backend, scheduler=scheduler)
    with Backend(loaded, settings) as b:
        results = [r for chunk in b.map(tasks, fn=_evaluate_task) for r in chunk]
    failed = [r for r in results if r["error"]]
    if failed:
        log.warning("%d of %d sensitivity points failed; the first: %s", len(failed), len(results), failed[0]["error"])
    return points.merge(pd.DataFrame(results, columns=["point", *OUTPUTS, "error"]), on="point", how="left")


def save(folder: Path, evaluated: pd.DataFrame, meta: dict) -> None:
    """Keep the evaluated points (points.parquet) and what the analysis needs (points.json)."""
    write_parquet(folder / POINTS, evaluated)
    write_json(folder / DESIGN, meta)


# --------------------------------------------------------------------------------------------
# Analysis (of stored outputs)


@dataclass
class Analysis:
    tornado: list[dict]
    sobol: dict  # {} when not asked for, or with fewer than two inputs
    meta: dict
    failed: list[dict] = field(default_factory=list)  # points whose evaluation failed


def tornado_rows(points: pd.DataFrame) -> list[dict]:
    """The tornado from evaluated points: each input at its low and high value, the others at their
    medians; largest swing in mean cost first."""
    t = points[points["kind"] != "sobol"]
    if t.empty:
        return []
    base = t[t["kind"] == "base"].iloc[0]
    rows = []
    for name in t.loc[t["kind"] == "low", "input"]:
        lo = t[(t["kind"] == "low") & (t["input"] == name)].iloc[0]
        hi = t[(t["kind"] == "high") & (t["input"] == name)].iloc[0]
        row = {"input": name, "low_value": float(lo[name]), "high_value": float(hi[name])}
        for o in OUTPUTS:
            row[f"{o}_base"] = float(base[o])
            row[f"{o}_at_low"] = float(lo[o])
            row[f"{o}_at_high"] = float(hi[o])
            row[f"{o}_swing"] = abs(float(hi[o]) - float(lo[o]))
        rows.append(row)
    rows.sort(key=lambda r: -r["cost_mean_swing"])
    return rows


def sobol_from_points(points: pd.DataFrame, names: list[str], seed: int, reps: int) -> dict:
    """First- and total-order Sobol indices with 95% confidence half-widths, from SALib, for each
    output; the Sobol points must be in the Saltelli sample's order."""
    s = points[points["kind"] == "sobol"]
    if s.empty or len(names) < 2:
        return {}
    if s["error"].notna().any():
        log.warning("Sobol indices left out: %d of their points failed", int(s["error"].notna().sum()))
        return {}
    problem = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
    result = {}
    for o in OUTPUTS:
        y = s[o].to_numpy(dtype=float)
        if np.ptp(y) == 0:
            result[o] = {nm: {"S1": 0.0, "S1_conf": 0.0, "ST": 0.0, "ST_conf": 0.0} for nm in names}
            continue
        si = _analyze(problem, y, seed)
        result[o] = {nm: {"S1": float(si["S1"][i]), "S1_conf": float(si["S1_conf"][i]), "ST": float(si["ST"][i]),
                          "ST_conf": float(si["ST_conf"][i])} for i, nm in enumerate(names)}
    return {"points": int(len(s)), "replications_per_point": reps, "indices": result}


def _analyze(problem: dict, y: np.ndarray, seed: int) -> dict:
    """SALib's Sobol analysis; its bootstrap intervals follow `seed`. (SALib ignores a seed of 0 and
    draws from NumPy's global generator: that generator is seeded with 0 here, and restored after,
    so that a stored run re-analysed gives the same intervals.)"""
    from SALib.analyze import sobol as sobol_analyze

    state = np.random.get_state()
    try:
        np.random.seed(seed)
        return sobol_analyze.analyze(problem, y, calc_second_order=False, seed=seed, print_to_console=False)
    finally:
        np.random.set_state(state)


def analyse_points(points: pd.DataFrame, meta: dict) -> Analysis:
    failed = points[points["error"].notna()]
    return Analysis(tornado_rows(points), sobol_from_points(points, meta["inputs"], meta["seed"], meta["reps"]),
                    meta, failed[["point", "kind", "input", "error"]].to_dict("records"))


def analyse(folder: str | Path) -> Analysis:
    """Recompute the tornado and the Sobol indices from a sensitivity folder's stored points."""
    folder = Path(folder)
    if not (folder / POINTS).exists() or not (folder / DESIGN).exists():
        from sim.runner import RunError

        raise RunError(f"{folder}: no stored sensitivity points ({POINTS} and {DESIGN})")
    return analyse_points(pd.read_parquet(folder / POINTS), json.loads((folder / DESIGN).read_text()))


def table(analysis: Analysis) -> pd.DataFrame:
    """sensitivity.csv: the tornado rows with each input's Sobol indices beside them."""
    rows = []
    for r in analysis.tornado:
        row = dict(r)
        for o, per in analysis.sobol.get("indices", {}).items():
            for k, v in per.get(r["input"], {}).items():
                row[f"{o}_{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# One call each (serial by default)


def run_points(loaded: Loaded, seed: int, reps: int, n: int = 64, tornado: bool = True, sobol: bool = True,
               workers: int = 1, backend: str = "process", scheduler: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Design and evaluate: (evaluated points, the meta the analysis needs)."""
    dists = uncertain_inputs(loaded.scenario)
    meta = {"scenario": loaded.scenario.project.name, "seed": seed, "reps": reps, "n": n, "sobol": sobol,
            "inputs": [input_label(loaded.scenario, p) for p in dists], "low": LOW, "high": HIGH}
    points = evaluate(loaded, design(loaded, seed, n, tornado, sobol), seed, reps, workers, backend, scheduler)
    return points, meta


def tornado(loaded: Loaded, seed: int, reps: int, workers: int = 1) -> list[dict]:
    return tornado_rows(run_points(loaded, seed, reps, sobol=False, workers=workers)[0])


def sobol_indices(loaded: Loaded, seed: int, reps: int, n: int, workers: int = 1) -> dict:
    """First- and total-order Sobol indices with 95% confidence half-widths, from SALib."""
    points, meta = run_points(loaded, seed, reps, n, tornado=False, workers=workers)
    return sobol_from_points(points, meta["inputs"], seed, reps)


def _bar_value(x, limit: float = 1e300) -> float:
    """A bar end that can be drawn: NaN (a failed point) stays NaN, the rest clipped to +-limit."""
    x = float(x) if x is not None else math.nan
    return x if math.isnan(x) else min(max(x, -limit), limit)


def plot_tornado(rows: list[dict], ax=None, output: str = "cost_mean"):
    """Horizontal bars from the output at each input's low value to its high value (a bar whose
    output is not finite is left out; no rows give an empty plot that says so)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    from sim.units import format_usd

    if ax is None:
        _fig, ax = plt.subplots(figsize=(8, 0.5 * min(len(rows), 200) + 1.5))
    shown = list(reversed(rows))
    base = _bar_value(rows[0][f"{output}_base"]) if rows else 0.0
    base = 0.0 if math.isnan(base) else base
    for i, r in enumerate(shown):
        lo, hi = _bar_value(r[f"{output}_at_low"]), _bar_value(r[f"{output}_at_high"])
        ax.barh(i, 0.0 if math.isnan(hi) else hi - base, left=base, color="#c0504d",
                label="input at P90" if i == 0 else None)
        ax.barh(i, 0.0 if math.isnan(lo) else lo - base, left=base, color="#4f81bd",
                label="input at P10" if i == 0 else None)
    ax.axvline(base, color="black", linewidth=1)
    ax.set_yticks(range(len(shown)), [r["input"] for r in shown])
    if output.startswith("cost"):
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: format_usd(x)))
    ax.set_xlabel({"cost_mean": "mean cost (USD)", "cost_p90": "P90 cost (USD)",
                   "makespan_days_mean": "mean makespan (days)"}[output])
    ax.set_title("Each input at its P10 and P90, the others at their medians", fontsize=10)
    return _legend_or_empty(ax, bool(rows), "no inputs to plot")


def _legend_or_empty(ax, any_data: bool, empty: str):
    """The legend, or a note that there is nothing to plot; then a tight layout."""
    if any_data:
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tight_layout may only warn about long labels
        ax.figure.tight_layout()
    return ax


def plot_sobol(indices: dict, ax=None, output: str = "cost_mean"):
    """The first-order (S1) and total (ST) Sobol index of each input for `output`, as bars side by
    side with their 95% bootstrap half-widths, largest ST at the top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per = indices.get("indices", {}).get(output, {}) if indices else {}
    names = sorted(per, key=lambda k: per[k]["ST"])
    if ax is None:
        _fig, ax = plt.subplots(figsize=(8, 0.5 * min(len(names), 200) + 1.5))
    y = np.arange(len(names))
    for shift, k, colour, label in ((-0.2, "S1", "#4f81bd", "S1: alone"), (0.2, "ST", "#c0504d",
                                                                             "ST: with interactions")):
        ax.barh(y + shift, [_bar_value(per[n][k]) for n in names], height=0.4, color=colour, label=label,
                xerr=[_bar_value(per[n][f"{k}_conf"]) for n in names], capsize=3)
    ax.set_yticks(y, names)
    ax.axvline(0.0, color="black", linewidth=1)
    ax.set_xlabel("share of the variance of the mean cost")
    ax.set_title("Sobol indices (bars: 95% bootstrap half-widths)", fontsize=10)
    _legend_or_empty(ax, bool(names), "no Sobol indices to plot")
    return ax
