"""Comparing strategies: the base scenario and its variants, run with the same seed so that they
share random numbers (common random numbers), side by side and pair by pair; and sweeps of one
key to find break-even points.
"""

from __future__ import annotations

import math
import re
from itertools import combinations

import numpy as np
import pandas as pd

from sim.stats import ci95, describe, moments
from sim.tables import key_unit

__all__ = ["break_even", "break_evens", "describe", "key_unit", "pairwise", "side_by_side", "sweep_folder",
           "sweep_point", "sweep_target", "sweep_values"]

METRICS = ("cost_usd", "makespan_days", "co2_kg", "gpu_hours")


def side_by_side(results: dict[str, pd.DataFrame]) -> dict:
    return {name: {m: describe(df[m]) for m in METRICS if m in df} for name, df in results.items()}


def paired(a: pd.DataFrame, b: pd.DataFrame, metric: str = "cost_usd") -> dict:
    """Replication-by-replication comparison of A and B (same seed, so replication k of both saw
    the same random numbers where their models agree): P(A < B) and the quantiles of A - B."""
    m = a[["replication", metric]].merge(b[["replication", metric]], on="replication", suffixes=("_a", "_b"))
    d = (m[f"{metric}_a"] - m[f"{metric}_b"]).to_numpy(dtype=float)
    n = len(d)
    if n == 0:
        return {"n": 0}
    p = float((d < 0).mean())
    q = np.percentile(d, [5, 50, 95])
    return {"n": n, "p_a_lower": p, "p_a_lower_se": math.sqrt(p * (1 - p) / n), "diff_mean": moments(d)[0],
            "diff_mean_ci95": ci95(d)["mean"], "diff_p5": float(q[0]), "diff_p50": float(q[1]),
            "diff_p95": float(q[2])}


def pairwise(results: dict[str, pd.DataFrame]) -> list[dict]:
    out = []
    for a, b in combinations(results, 2):
        for metric in ("cost_usd", "makespan_days", "co2_kg"):
            if metric in results[a] and metric in results[b]:
                out.append({"a": a, "b": b, "metric": metric, **paired(results[a], results[b], metric)})
    return out


def sweep_values(spec: str) -> tuple[str, list[float]]:
    """'KEY=START:STOP:STEP' -> (KEY, [START, START+STEP, ... <= STOP])."""
    key, eq, rng = spec.partition("=")
    parts = rng.split(":")
    if not eq or len(parts) != 3:
        raise ValueError(f"--sweep {spec!r}: expected KEY=START:STOP:STEP, e.g. workloads[finetune].runs=1:20:1")
    try:
        start, stop, step = (float(x) for x in parts)
    except ValueError:
        raise ValueError(f"--sweep {spec!r}: START, STOP and STEP must be numbers") from None
    if not all(math.isfinite(x) for x in (start, stop, step)):
        raise ValueError(f"--sweep {spec!r}: START, STOP and STEP must be finite numbers")
    if step <= 0 or stop < start:
        raise ValueError(f"--sweep {spec!r}: needs STEP > 0 and STOP >= START")
    count = (stop - start) / step  # may overflow to inf for huge ranges or tiny steps
    n = int(math.floor(count + 1e-9)) + 1 if count < 1e6 else math.inf
    if n > 200:
        raise ValueError(f"--sweep {spec!r}: {n if n < math.inf else 'too many'} values; at most 200")
    vals = [float(f"{start + i * step:.12g}") for i in range(n)]  # 0.1 + 2 x 0.1 is 0.3, not 0.30000000000000004
    if all(float(v).is_integer() for v in vals):
        vals = [int(v) for v in vals]
    return key.strip(), vals


def sweep_target(spec: str) -> tuple[str | None, str]:
    """'VARIANT:KEY' -> (VARIANT, KEY): the key swept in that strategy only; 'KEY' -> (None, KEY)."""
    target, colon, key = spec.partition(":")
    return (target.strip(), key.strip()) if colon else (None, spec.strip())


def sweep_folder(key: str, value: float) -> str:
    """A readable folder name for one swept value: 'workloads[finetune].runs' at 100 ->
    'finetune-runs-100', 'pools[reserved].count' at 256 -> 'reserved-count-256',
    'project.budget_usd' at 1e6 -> 'project-budget_usd-1e+06'."""
    parts = []
    for m in re.finditer(r"([^.\[\]]+)(?:\[([^\]]*)\])?", key):
        section, item = m.group(1), m.group(2)
        if item is None:
            parts.append(section)
        else:  # a named item stands for its section ('workloads[finetune]' -> 'finetune'); an index does not
            parts += [section, item] if item.strip().lstrip("-").isdigit() else [item]
    text = "-".join(parts + [f"{value:g}" if isinstance(value, float) else str(value)])
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-.") or "value"


def break_even(values: list[float], diffs: list[float]) -> float | None:
    """The first value at which the mean difference A - B changes sign (linear interpolation)."""
    for (x0, d0), (x1, d1) in zip(zip(values, diffs, strict=True), zip(values[1:], diffs[1:], strict=True),
                                  strict=False):
        if d0 == 0:
            return float(x0)
        if (d0 < 0) != (d1 < 0):
            return float(x0 + (x1 - x0) * d0 / (d0 - d1))
    return None


def sweep_point(value: float, results: dict[str, pd.DataFrame]) -> tuple[list[dict], list[dict]]:
    """At one swept value: each strategy's cost statistics, and each pair's paired cost difference."""
    rows = [{"value": value, "strategy": n, **{f"cost_usd_{k}": x for k, x in describe(df["cost_usd"]).items()}}
            for n, df in results.items()]
    pairs = [{"value": value, **p} for p in pairwise(results) if p["metric"] == "cost_usd"]
    return rows, pairs


def break_evens(key: str, pairs: list[dict]) -> list[dict]:
    """Per pair of strategies, where over the swept values the mean, the median, the 5th and the
    95th percentile of the paired cost difference cross zero."""
    by_pair: dict = {}
    for p in pairs:
        by_pair.setdefault((p["a"], p["b"]), []).append(p)
    found = []
    for (a, b), ps in by_pair.items():
        xs = [p["value"] for p in ps]
        found.append({"a": a, "b": b, "key": key,
                      "break_even_mean": break_even(xs, [p["diff_mean"] for p in ps]),
                      "break_even_p50": break_even(xs, [p["diff_p50"] for p in ps]),
                      "band_crossing_p5": break_even(xs, [p["diff_p5"] for p in ps]),
                      "band_crossing_p95": break_even(xs, [p["diff_p95"] for p in ps])})
    return found


# --------------------------------------------------------------------------------------------
# Start dates: when to start (a project, or one workload's earliest_start), for the lowest
# expected CO2 or cost

MAX_STARTS = 60


def start_dates(spec: str) -> list[str]:
    """'2027-01-01,2027-04-01' -> the dates (ISO text), each once, in the order given."""
    from datetime import date

    dates = [s.strip() for s in spec.split(",") if s.strip()]
    if not dates:
        raise ValueError("--starts: expected dates such as 2027-01-01,2027-04-01")
    for d in dates:
        try:
            date.fromisoformat(d)
        except ValueError:
            raise ValueError(f"--starts: {d!r} is not a date such as 2027-01-01") from None
    if len(dates) > MAX_STARTS:
        raise ValueError(f"--starts: {len(dates)} dates; at most {MAX_STARTS}")
    return list(dict.fromkeys(dates))


def best_starts(sbs: dict, pairs: list[dict]) -> dict:
    """For CO2 and for cost: the option with the lowest mean, its mean, the runner-up and the
    chance (paired, common random numbers) that the best is below the runner-up."""
    out = {}
    for metric in ("co2_kg", "cost_usd"):
        ranked = sorted(sbs, key=lambda n: sbs[n][metric]["mean"])
        best = {"option": ranked[0], "mean": sbs[ranked[0]][metric]["mean"]}
        if len(ranked) > 1:
            second = ranked[1]
            p = next(q for q in pairs if q["metric"] == metric and {q["a"], q["b"]} == {ranked[0], second})
            lower = p["p_a_lower"] if p["a"] == ranked[0] else 1.0 - p["p_a_lower"]
            best.update({"runner_up": second, "runner_up_mean": sbs[second][metric]["mean"],
                         "p_lower_than_runner_up": lower})
        out[metric] = best
    return out
