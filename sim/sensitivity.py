"""What drives the cost: a tornado (one input at a time, the others at their medians) and global
variance-based Sobol indices (SALib's Saltelli sampling and Sobol analysis).

Every evaluation point runs the same replication indices with the same seed, so the engine's own
randomness (failures, preemptions, reruns) is common to all points and does not pollute the bars.
"""

from __future__ import annotations

import numpy as np

from sim.engine import build_plan, simulate
from sim.loader import Loaded
from sim.montecarlo import input_label
from sim.schema import map_dists, uncertain_inputs

OUTPUTS = ("cost_mean", "cost_p90", "makespan_days_mean")


def _evaluate(loaded: Loaded, values: dict, seed: int, reps: int) -> dict[str, float]:
    """Outputs at one point: every uncertain input fixed at `values`, `reps` replications."""
    scn = map_dists(loaded.scenario, lambda d, path: int(round(values[path])) if d.bounds.integer else values[path])
    plan = build_plan(scn, loaded.catalog)
    rows = [simulate(plan, seed, k).summary() for k in range(reps)]
    cost = np.array([r["cost_usd"] for r in rows])
    return {"cost_mean": float(cost.mean()), "cost_p90": float(np.percentile(cost, 90)),
            "makespan_days_mean": float(np.mean([r["makespan_days"] for r in rows]))}


def _value(d, q: float) -> float:
    v = float(d.ppf(q))
    rule = d.bounds.check(v)
    if rule:  # a tail outside the key's limits: use the limit itself for the bar
        b = d.bounds
        v = min(max(v, b.lo if b.lo is not None else v), b.hi if b.hi is not None else v)
    return v


def tornado(loaded: Loaded, seed: int, reps: int, low: float = 0.1, high: float = 0.9) -> list[dict]:
    dists = uncertain_inputs(loaded.scenario)
    medians = {p: _value(d, 0.5) for p, d in dists.items()}
    base = _evaluate(loaded, medians, seed, reps)
    rows = []
    for path, d in dists.items():
        lo_v, hi_v = _value(d, low), _value(d, high)
        lo = _evaluate(loaded, {**medians, path: lo_v}, seed, reps)
        hi = _evaluate(loaded, {**medians, path: hi_v}, seed, reps)
        row = {"input": input_label(loaded.scenario, path), "low_value": lo_v, "high_value": hi_v}
        for o in OUTPUTS:
            row[f"{o}_base"] = base[o]
            row[f"{o}_at_low"] = lo[o]
            row[f"{o}_at_high"] = hi[o]
            row[f"{o}_swing"] = abs(hi[o] - lo[o])
        rows.append(row)
    rows.sort(key=lambda r: -r["cost_mean_swing"])
    return rows


def sobol_indices(loaded: Loaded, seed: int, reps: int, n: int) -> dict:
    """First- and total-order Sobol indices with 95% confidence half-widths, from SALib."""
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    dists = uncertain_inputs(loaded.scenario)
    paths = list(dists)
    names = [input_label(loaded.scenario, p) for p in paths]
    if len(paths) < 2:
        return {}
    problem = {"num_vars": len(paths), "names": names, "bounds": [[0.0, 1.0]] * len(paths)}
    u = sobol_sample.sample(problem, n, calc_second_order=False, seed=seed)
    u = np.clip(u, 1e-9, 1 - 1e-9)
    ys = {o: [] for o in OUTPUTS}
    for row in u:
        values = {p: _value(dists[p], q) for p, q in zip(paths, row, strict=True)}
        out = _evaluate(loaded, values, seed, reps)
        for o in OUTPUTS:
            ys[o].append(out[o])
    result = {}
    for o in OUTPUTS:
        y = np.asarray(ys[o])
        if np.ptp(y) == 0:
            result[o] = {nm: {"S1": 0.0, "S1_conf": 0.0, "ST": 0.0, "ST_conf": 0.0} for nm in names}
            continue
        si = sobol_analyze.analyze(problem, y, calc_second_order=False, seed=seed, print_to_console=False)
        result[o] = {nm: {"S1": float(si["S1"][i]), "S1_conf": float(si["S1_conf"][i]), "ST": float(si["ST"][i]),
                          "ST_conf": float(si["ST_conf"][i])} for i, nm in enumerate(names)}
    return {"points": int(len(u)), "replications_per_point": reps, "indices": result}


def plot_tornado(rows: list[dict], ax=None, output: str = "cost_mean"):
    """Horizontal bars from the output at each input's low value to its high value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    from sim.units import format_usd

    if ax is None:
        _fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    shown = list(reversed(rows))
    base = rows[0][f"{output}_base"] if rows else 0.0
    for i, r in enumerate(shown):
        lo, hi = r[f"{output}_at_low"], r[f"{output}_at_high"]
        ax.barh(i, hi - base, left=base, color="#c0504d", label="input at P90" if i == 0 else None)
        ax.barh(i, lo - base, left=base, color="#4f81bd", label="input at P10" if i == 0 else None)
    ax.axvline(base, color="black", linewidth=1)
    ax.set_yticks(range(len(shown)), [r["input"] for r in shown])
    money = output.startswith("cost")
    if money:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: format_usd(x)))
    ax.set_xlabel({"cost_mean": "mean cost (USD)", "cost_p90": "P90 cost (USD)",
                   "makespan_days_mean": "mean makespan (days)"}[output])
    ax.set_title("Each input at its P10 and P90, the others at their medians", fontsize=10)
    ax.legend(loc="lower right")
    ax.figure.tight_layout()
    return ax
