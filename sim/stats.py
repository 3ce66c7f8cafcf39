"""Statistics of replication results, in one place: descriptive statistics and 95% intervals,
budget and schedule risk (with Wilson intervals), spend by calendar month, the cost breakdown,
the precision stopping rule, and the summary.json they make up.

Pure functions of arrays and DataFrames: no files, no simulation.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from sim.outputs import HEADLINE

STAT_KEYS = ("mean", "std", "min", "p5", "p10", "p50", "p90", "p95", "max")
CONFIDENCES = (50, 80, 90, 95)
Z95 = 1.959963984540054


SCALE_ABOVE = 1e150  # beyond this, squares (std) and sums (mean) of values overflow: scale them first


def moments(a: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation (ddof=1; 0 for one value) of finite values however large: values
    beyond SCALE_ABOVE are divided by the largest before summing or squaring, so a mean of values
    near 1e307 is not inf."""
    top = float(np.abs(a).max()) if a.size else 0.0
    scale = top if top > SCALE_ABOVE else 1.0
    with np.errstate(all="ignore"):  # non-finite input: non-finite output, no warning
        s = a / scale
        mean, std = float(s.mean()) * scale, float(s.std(ddof=1)) * scale if a.size > 1 else 0.0
    return mean, std


def describe(x) -> dict[str, float]:
    a = np.asarray(x, dtype=float)
    if a.size == 0:
        return dict.fromkeys(STAT_KEYS, float("nan"))
    q = np.percentile(a, [5, 10, 50, 90, 95])
    mean, std = moments(a)
    return {
        "mean": mean, "std": std, "min": float(a.min()),
        "p5": float(q[0]), "p10": float(q[1]), "p50": float(q[2]), "p90": float(q[3]), "p95": float(q[4]),
        "max": float(a.max()),
    }


def binom_ppf(p: float, n: int, q: float) -> int:
    """The p-quantile of Binomial(n, q), the smallest k with P(X <= k) >= p (scipy.stats.binom.ppf),
    from scipy.special: the continuous inverse gives the neighbourhood, the CDF the exact step."""
    from scipy import special

    guess = float(special.bdtrik(p, n, q)) if 0.0 < q < 1.0 else 0.0
    k = max(int(math.floor(guess)) - 2, 0) if math.isfinite(guess) else 0  # (no guess: the search from 0)
    while k < n and special.bdtr(k, n, q) < p:
        k += 1
    while k > 0 and special.bdtr(k - 1, n, q) >= p:
        k -= 1
    return k


def ci95(x) -> dict[str, list[float]]:
    """95% confidence intervals: Student t for the mean; distribution-free order-statistic
    intervals (binomial) for the quantiles."""
    from scipy import special  # imported when needed (scipy.stats would take three times longer)

    a = np.sort(np.asarray(x, dtype=float))
    n = a.size
    out: dict[str, list[float]] = {}
    if n < 2:
        return {"mean": [None, None], "p50": [None, None], "p90": [None, None], "p95": [None, None]}
    mean, std = moments(a)
    half = float(special.stdtrit(n - 1, 0.975)) * std / math.sqrt(n)
    out["mean"] = [float(mean - half), float(mean + half)]
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95)):
        lo = binom_ppf(0.025, n, q)  # 1-based rank of the lower bound
        hi = binom_ppf(0.975, n, q) + 1
        # a bound whose rank falls outside the sample cannot be had from n replications: None
        out[name] = [float(a[lo - 1]) if lo >= 1 else None, float(a[hi - 1]) if hi <= n else None]
    return out


def wilson(k: int, n: int) -> list[float]:
    """95% Wilson interval for a proportion k/n."""
    if n == 0:
        return [float("nan"), float("nan")]
    z = Z95
    if k == 0:
        return [0.0, min(1.0, z * z / (n + z * z))]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _relative(half: float, ref: float) -> float:
    """A half-width relative to `ref`: 0 when there is no spread at all (even around 0), inf when
    `ref` is 0 or a number is not finite."""
    if half == 0:
        return 0.0
    if not ref or not math.isfinite(half / ref):
        return math.inf
    return float(abs(half / ref))


def precision_met(cost: pd.Series, target: float) -> tuple[bool, dict]:
    """Whether the 95% intervals of mean and P95 cost are both within `target` (relative
    half-width), and those half-widths."""
    a = cost.to_numpy(dtype=float)
    if a.size < 2:
        return False, {}
    c = ci95(a)
    mean, p95 = moments(a)[0], float(pd.Series(a).quantile(0.95))
    rel_mean = _relative((c["mean"][1] - c["mean"][0]) / 2, mean)
    lo, hi = c["p95"]  # None: a bound that too few replications cannot give (not met yet)
    rel_p95 = _relative(max(hi - p95, p95 - lo), p95) if lo is not None and hi is not None else math.inf
    info = {"mean_half_width_rel": rel_mean, "p95_half_width_rel": rel_p95}
    return bool(rel_mean <= target and rel_p95 <= target), info


def risk(reps: pd.DataFrame, scn) -> dict:
    """Budget and schedule risk: the chance of going over budget or past the deadline, and the
    budget and finish date needed for a given confidence."""
    cost = reps["cost_usd"].to_numpy(dtype=float)
    days = reps["makespan_days"].to_numpy(dtype=float)
    n = len(cost)
    start = scn.project.start
    out: dict = {
        "budget_for_confidence": {f"p{c}": float(np.percentile(cost, c)) for c in CONFIDENCES},
        "finish_date_at_confidence": {
            f"p{c}": (start + timedelta(days=float(np.percentile(days, c)))).isoformat() for c in CONFIDENCES},
    }
    if scn.project.budget_usd is not None:
        over = int((cost > scn.project.budget_usd).sum())
        out["budget_usd"] = scn.project.budget_usd
        out["p_over_budget"] = over / n
        out["p_over_budget_ci95"] = wilson(over, n)
    if scn.project.deadline is not None:
        limit_days = (scn.project.deadline - start).days + 1  # finished by the end of the deadline day
        late = int((days > limit_days).sum())
        out["deadline"] = scn.project.deadline.isoformat()
        out["p_late"] = late / n
        out["p_late_ci95"] = wilson(late, n)
    return out


PERIOD_PREFIX = {"month": "spend_usd_", "week": "spend_week_usd_"}  # replications.parquet's spend columns
WEEKLY_UP_TO = 17  # spend shown by week when it spans at most this many weeks (about four months)


def spend_columns(reps: pd.DataFrame, period: str = "month") -> list[str]:
    prefix = PERIOD_PREFIX[period]
    return sorted(c for c in reps.columns if c.startswith(prefix))


def spend_period(reps: pd.DataFrame) -> str:
    """week when the spend spans at most WEEKLY_UP_TO weeks (a short project would be one or two
    points by month), month otherwise."""
    weeks = spend_columns(reps, "week")
    return "week" if weeks and len(weeks) <= WEEKLY_UP_TO else "month"


def spend_by_month(reps: pd.DataFrame, period: str = "month") -> list[dict]:
    """Per calendar month (or week: its first day): P10/P50/P90 and mean of the spend, and of the
    cumulative spend."""
    cols = spend_columns(reps, period)
    if not cols:
        return []
    m = reps[cols].fillna(0.0).to_numpy(dtype=float)
    cum = np.cumsum(m, axis=1)
    out = []
    for j, c in enumerate(cols):
        q = np.percentile(m[:, j], [10, 50, 90])
        qc = np.percentile(cum[:, j], [10, 50, 90])
        out.append({period: c.removeprefix(PERIOD_PREFIX[period]), "mean": moments(m[:, j])[0], "p10": float(q[0]),
                    "p50": float(q[1]), "p90": float(q[2]), "cumulative_p10": float(qc[0]),
                    "cumulative_p50": float(qc[1]), "cumulative_p90": float(qc[2])})
    return out


def cumulative_spend_fan(reps: pd.DataFrame, start: date | datetime, offset: float = 0.0,
                         quantiles: tuple[float, ...] = (5, 50, 95)) -> pd.DataFrame:
    """Quantiles over replications of the cumulative spend at `start` and at the end of each
    calendar month of the spend columns (the first of the next month), plus `offset` (the actual
    spend before `start`, for a re-forecast): columns time (datetime) and p5, p50, p95 (one per
    quantile). `start`: the day the replications' spend is counted from (the project's start)."""
    cols = spend_columns(reps)
    names = [f"p{q:g}" for q in quantiles]
    t0 = start if isinstance(start, datetime) else datetime.combine(start, time())
    if not cols or reps.empty:
        return pd.DataFrame({"time": [t0], **{n: [offset] for n in names}})
    m = reps[cols].fillna(0.0).to_numpy(dtype=float)
    cum = np.hstack([np.zeros((len(m), 1)), np.cumsum(m, axis=1)]) + offset
    times = [t0]
    for c in cols:
        y, mo = (int(x) for x in c.removeprefix("spend_usd_").split("-"))
        times.append(datetime(y + (mo == 12), mo % 12 + 1, 1))
    q = np.percentile(cum, quantiles, axis=0)
    return pd.DataFrame({"time": times, **{n: q[i] for i, n in enumerate(names)}})


def breakdown(reps: pd.DataFrame) -> dict:
    """Mean cost by workload, pool and pricing tier; shares of accelerator-hours by what they did."""
    def means(prefix: str) -> dict:
        return {c.removeprefix(prefix): moments(reps[c].to_numpy(dtype=float))[0] for c in reps.columns
                if c.startswith(prefix)}

    held = float((reps["gpu_hours"] + reps["idle_gpu_hours"]).sum())
    parts = ("productive", "lost", "overhead", "idle", "down", "restart", "write", "straggler", "repair_wait")
    shares = {k: (float(reps[f"{k}_gpu_hours"].sum()) / held if held else 0.0)
              for k in parts if f"{k}_gpu_hours" in reps}  # overhead = down + restart + write + straggler + ...
    return {"cost_usd_by_workload": means("cost_usd_wl_"), "cost_usd_by_pool": means("cost_usd_pool_"),
            "cost_usd_by_tier": means("cost_usd_tier_"), "gpu_hours_shares": shares}


def workload_stats(reps: pd.DataFrame, names: list[str]) -> dict[str, dict]:
    """Per workload: runs, cost, cost per run and accelerator-hours."""
    out = {}
    for name in names:
        if f"cost_usd_wl_{name}" not in reps:
            continue
        cost, runs = reps[f"cost_usd_wl_{name}"], reps[f"runs_wl_{name}"]
        out[name] = {
            "runs": describe(runs)["mean"],
            "cost_usd": describe(cost),
            "cost_usd_per_run": describe(cost / runs),
            "gpu_hours": describe(reps[f"gpu_hours_wl_{name}"]),
        }
    return out


INTERRUPTION_KINDS = ("failures", "job_failures", "planned", "loss_spikes", "preemptions")  # run columns
RATE_COLUMNS = ("workload", "gpu_hours", *INTERRUPTION_KINDS)  # what interruption_rates reads of runs.parquet


def interruption_rates(runs: pd.DataFrame, accelerators: dict[str, int]) -> pd.DataFrame:
    """Each run's interruptions of every kind per day of wall time it held its accelerators
    (allocated accelerator-hours / accelerators, so queue waits do not count), with its size:
    columns accelerators, interruptions, days_held, per_day. `accelerators` maps a workload to its
    run size (used when `runs` has no accelerators column); runs that held nothing, or of a
    workload not in it, are left out."""
    if runs is None or runs.empty:
        return pd.DataFrame({"accelerators": [], "interruptions": [], "days_held": [], "per_day": []})
    if "accelerators" in runs:
        n = runs["accelerators"].to_numpy(dtype=float)
    else:
        n = runs["workload"].map(accelerators).to_numpy(dtype=float)
    count = sum(runs[k].to_numpy(dtype=float) for k in INTERRUPTION_KINDS if k in runs)
    with np.errstate(divide="ignore", invalid="ignore"):
        days = runs["gpu_hours"].to_numpy(dtype=float) / n / 24.0
        per_day = count / days
    keep = np.isfinite(n) & (n > 0) & np.isfinite(days) & (days > 0)
    return pd.DataFrame({"accelerators": n[keep].astype(int), "interruptions": np.broadcast_to(count, n.shape)[keep],
                         "days_held": days[keep], "per_day": per_day[keep]})


def interruption_rates_by_size(rates: pd.DataFrame) -> pd.DataFrame:
    """Per run size (accelerators per run, ascending): runs, interruptions, days held, and the mean,
    P5 and P95 over runs of interruptions per day held (from `interruption_rates`)."""
    rows = []
    for size, g in rates.groupby("accelerators", sort=True):
        r = g["per_day"].to_numpy(dtype=float)
        p5, p95 = np.percentile(r, [5, 95])
        rows.append({"accelerators": int(size), "runs": len(r), "interruptions": float(g["interruptions"].sum()),
                     "days_held": float(g["days_held"].sum()), "mean": float(r.mean()), "p5": float(p5),
                     "p95": float(p95)})
    return pd.DataFrame(rows, columns=["accelerators", "runs", "interruptions", "days_held", "mean", "p5", "p95"])


def summarize(reps: pd.DataFrame, scn, head: dict[str, Any], nominal: dict | None,
              precision: float | None = None) -> dict:
    """summary.json: `head` (scenario, seed, counts...), then the statistics of every headline
    metric, per workload, the nominal case, precision, risk, spend by month and breakdown."""
    out = {**head, "metrics": {}, "workloads": {},
           "nominal": nominal and {m: nominal[m] for m in HEADLINE if m in nominal}}
    for m in HEADLINE:
        if m in reps:
            out["metrics"][m] = {**describe(reps[m]), "ci95": ci95(reps[m])}
    out["workloads"] = workload_stats(reps, [w.name for w in scn.workloads])
    if precision:
        ok, info = precision_met(reps["cost_usd"], precision) if len(reps) else (False, {})
        out["precision"] = {"target": precision, "met": ok, **info}
    out["risk"] = risk(reps, scn)
    out["spend_by_month"] = spend_by_month(reps)
    out["spend_period"] = spend_period(reps)  # the period of spend_by_period: week for a short project
    out["spend_by_period"] = (spend_by_month(reps, "week") if out["spend_period"] == "week"
                              else out["spend_by_month"])
    out["breakdown"] = breakdown(reps)
    return out
