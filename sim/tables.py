"""The tables and lines that the terminal and the reports both show, built once so that every figure
the terminal prints is in the report too: strategies compared side by side with their risks, the
pairs, a sweep's costs and break-even points, the tornado with its Sobol indices.

Each function takes the result dicts (compare.json, sensitivity.json) and returns (head, rows) of
strings, or lines of text.
"""

from __future__ import annotations

import math
import re
import typing

from sim.units import format_kg, format_pct, format_usd, format_value

RISK_LABELS = {"p_over_budget": "P(over budget)", "p_late": "P(late)"}


# --- sim run -----------------------------------------------------------------------------------
def run_title(summary: dict, runtime_s: float | None) -> str:
    took = f", {runtime_s:.1f} s" if runtime_s is not None else ""
    return f"{summary['replications']} replications ({summary['sampling']}), seed {summary['seed']}{took}"


def relative(value: float, ref: float) -> str:
    """How far `value` is from `ref`, in percent ("+4.2%"); in USD when a percentage has no meaning
    (a reference of zero, or a number that is not finite)."""
    if not (math.isfinite(value) and math.isfinite(ref)):
        return "n/a"
    if ref == 0 or not math.isfinite(value / ref):
        diff = value - ref
        return f"{'+' if diff >= 0 else '-'}{format_usd(abs(diff))}" if math.isfinite(diff) else "n/a"
    return f"{(value / ref - 1) * 100:+.1f}%"


def floor_parts(total: dict) -> str:
    """" (usage $X + commitments $Y)" when the estimate has commitments."""
    if not total.get("commitment_usd"):
        return ""
    return f" (usage {format_usd(total['usage_usd'])} + commitments {format_usd(total['commitment_usd'])})"


def estimate_lines(summary: dict, est: dict) -> list[str]:
    """The deterministic estimate (`est`: its total, the floor) and how far the simulated mean is from it."""
    return [f"deterministic estimate (no queueing, failures or preemption): {format_usd(est['cost_usd'])}"
            f"{floor_parts(est)}, {est['gpu_hours']:,.0f} GPU-h.",
            f"The simulated mean is {relative(summary['metrics']['cost_usd']['mean'], est['cost_usd'])} from it: "
            "queueing, failures, preemption, restarts, reruns and run-to-run spread (and owned capacity held for "
            "longer than the floor's project length)."]


def risk_lines(r: dict) -> list[str]:
    """The budget and finish date needed for 50/80/90/95% confidence, P(over budget) and P(late)
    with their 95% intervals."""
    conf = r["budget_for_confidence"]
    line = "budget needed for 50/80/90/95% confidence: " + " / ".join(format_usd(conf[k]) for k in conf)
    if "p_over_budget" in r:
        lo, hi = r["p_over_budget_ci95"]
        line += (f"; P(cost > budget {format_usd(r['budget_usd'])}) = {format_pct(r['p_over_budget'])}"
                 f" (95% CI {format_pct(lo)}..{format_pct(hi)})")
    dates = r["finish_date_at_confidence"]
    line2 = "finish date at 50/80/90/95% confidence: " + " / ".join(dates.values())
    if "p_late" in r:
        lo, hi = r["p_late_ci95"]
        line2 += (f"; P(finish after {r['deadline']}) = {format_pct(r['p_late'])} (95% CI {format_pct(lo)}.."
                  f"{format_pct(hi)})")
    return [line, line2]


def _share(x: float | None) -> str:
    """A relative half-width as a percentage; n/a when there is none (too few replications, or a
    mean of zero)."""
    return f"{x:.2%}" if x is not None and math.isfinite(x) else "n/a"


def precision_line(summary: dict) -> str:
    p = summary["precision"]
    how = "met" if p["met"] else "NOT met (cap reached)"
    return (f"precision target {p['target']:.2%}: {how} after {summary['replications']} replications "
            f"(mean +-{_share(p.get('mean_half_width_rel'))}, P95 +-{_share(p.get('p95_half_width_rel'))})")


SPEND_ROWS = 24  # more periods than this are left to summary.json and --format csv/xlsx


def spend_head_rows(summary: dict):
    """Spend by week or month (sim.stats.spend_period): P50 and P10..P90 in the period and the
    cumulative P50, as (head, rows); a line instead when there are too many periods; None when
    there is none."""
    period = summary.get("spend_period", "month")
    rows = summary.get("spend_by_period", summary.get("spend_by_month")) or []
    if not rows:
        return None
    what = "week (its first day)" if period == "week" else "month"
    if len(rows) > SPEND_ROWS:
        return (f"spend by {what}: {len(rows)} {period}s, from {rows[0][period]} to {rows[-1][period]} "
                "(summary.json spend_by_period, or --format csv)")
    body = [[r[period], format_usd(r["p50"]), f"{format_usd(r['p10'])}..{format_usd(r['p90'])}",
             format_usd(r["cumulative_p50"])] for r in rows]
    return [f"spend by {what}", "P50", "P10..P90", "cumulative P50"], body


# --- sim compare -------------------------------------------------------------------------------


def compare_head_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Each strategy's cost, time and CO2, and its P(over budget) and P(late) when the scenario has
    a budget or a deadline."""
    risks = report.get("risk", {})
    extra = [k for k in RISK_LABELS if any(k in r for r in risks.values())]
    rows = []
    for name, m in report["side_by_side"].items():
        rows.append([name, format_usd(m["cost_usd"]["mean"]), format_usd(m["cost_usd"]["p5"]),
                     format_usd(m["cost_usd"]["p95"]), f"{m['makespan_days']['mean']:.1f} d",
                     f"{m['makespan_days']['p95']:.1f} d", format_kg(m["co2_kg"]["mean"]),
                     *(format_pct(risks[name][k]) if k in risks.get(name, {}) else "-" for k in extra)])
    head = ["strategy", "mean cost", "P5", "P95", "mean time", "P95 time", "mean CO2", *(RISK_LABELS[k] for k in extra)]
    return head, rows


def pair_head_rows(pairs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Each pair's paired cost difference A - B: P(A cheaper), its mean with a 95% interval, P5/P50/P95."""
    rows = [[f"{p['a']} vs {p['b']}", format_pct(p["p_a_lower"]), format_usd(p["diff_mean"]),
             f"{format_usd(p['diff_mean_ci95'][0])}..{format_usd(p['diff_mean_ci95'][1])}",
             format_usd(p["diff_p5"]), format_usd(p["diff_p50"]), format_usd(p["diff_p95"])]
            for p in pairs if p["metric"] == "cost_usd"]
    return ["pair (A vs B)", "P(A cheaper)", "mean A-B", "95% CI", "P5 A-B", "P50 A-B", "P95 A-B"], rows


def compare_title(report: dict) -> str:
    return (f"{report['scenario']}: {report['replications']} replications each, seed {report['seed']} "
            "(common random numbers)")


def budget_deadline(report: dict) -> str | None:
    """'budget $X; deadline D' from the strategies' risks (the first that has them), or None."""
    parts = []
    for key, label, fmt in (("budget_usd", "budget", format_usd), ("deadline", "deadline", str)):
        given = [r[key] for r in report.get("risk", {}).values() if key in r]
        if given:
            parts.append(f"{label} {fmt(given[0])}" if len(set(map(str, given))) == 1
                         else f"{label} " + " / ".join(fmt(g) for g in given))
    return "; ".join(parts) or None


def starts_lines(report: dict) -> list[str]:
    """`sim compare --starts`: the start with the lowest expected CO2 and the one with the lowest
    expected cost, each with the next best start and P(lower than it in the same replication)."""
    st = report["starts"]
    lines = []
    for metric, what, fmt in (("co2_kg", "CO2", format_kg), ("cost_usd", "cost", format_usd)):
        b = st["best"][metric]
        line = f"lowest expected {what}: {b['option']} ({st['key']}), mean {fmt(b['mean'])}"
        if "runner_up" in b and b["runner_up_mean"] == b["mean"]:
            line += f"; the same as {b['runner_up']} (no start is lower)"
        elif "runner_up" in b:
            line += (f"; next {b['runner_up']}, mean {fmt(b['runner_up_mean'])}; P(lower than it in the same "
                     f"replication) {format_pct(b['p_lower_than_runner_up'])}")
        lines.append(line)
    return lines


# --- sweeps ------------------------------------------------------------------------------------
def sweep_value(v, unit: str | None = None) -> str:
    """A swept value in its key's unit (7.6 h, 34.9%), plain when the key has none."""
    if isinstance(v, int | float) and not isinstance(v, bool) and unit:
        return format_value(v, unit)
    return f"{v:g}" if isinstance(v, float) else str(v)


def swept(report: dict) -> str:
    """The key swept, as given: 'KEY', or 'VARIANT:KEY' when swept in one strategy only."""
    sw = report["sweep"]
    return f"{sw['strategy']}:{sw['key']}" if sw.get("strategy") else sw["key"]


def sweep_head_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    unit = report["sweep"].get("unit")
    rows = [[sweep_value(r["value"], unit), r["strategy"], format_usd(r["cost_usd_mean"]), format_usd(r["cost_usd_p5"]),
             format_usd(r["cost_usd_p95"])] for r in report["costs"]]
    return [swept(report), "strategy", "mean cost", "P5", "P95"], rows


def sweep_pair_head_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """The paired cost difference of each pair at each swept value (the report's table)."""
    unit = report["sweep"].get("unit")
    rows = [[sweep_value(p["value"], unit), f"{p['a']} vs {p['b']}", format_pct(p["p_a_lower"]),
             format_usd(p["diff_mean"]),
             format_usd(p["diff_p5"]), format_usd(p["diff_p50"]), format_usd(p["diff_p95"])]
            for p in report["pairs"]]
    return [swept(report), "pair (A vs B)", "P(A cheaper)", "mean A-B", "P5 A-B", "P50 A-B", "P95 A-B"], rows


def number(x: float) -> str:
    """About three significant figures, in plain notation from 0.001 to a billion (1,680 not
    1.68e+03; 25 not 25.0), scientific outside."""
    if x == 0 or not 1e-3 <= abs(x) < 1e9:
        return f"{x:.3g}"
    digits = max(0, 2 - math.floor(math.log10(abs(x))))
    text = f"{round(x, digits):,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fmt(x: float | None, unit: str | None = None) -> str:
    if x is None:
        return "none in range"
    return format_value(x, unit) if unit else number(x)


def break_even_lines(report: dict) -> list[str]:
    key = swept(report)
    unit = report["sweep"].get("unit")
    lines = []
    for b in report["break_even"]:
        if b["break_even_mean"] is None and b["band_crossing_p5"] is None and b["band_crossing_p95"] is None:
            lines.append(f"{b['a']} vs {b['b']}: no break-even for {key} in the range swept")
            continue
        lines.append(f"{b['a']} vs {b['b']}: break-even at {key} = {_fmt(b['break_even_mean'], unit)} (mean cost "
                     f"difference crosses zero; median at {_fmt(b['break_even_p50'], unit)}); the 90% band of the "
                     "paired "
                     f"difference crosses zero between {_fmt(b['band_crossing_p5'], unit)} and "
                     f"{_fmt(b['band_crossing_p95'], unit)}")
    return lines


# --- sensitivity -------------------------------------------------------------------------------
def sensitivity_head_rows(rows: list[dict], indices: dict) -> tuple[list[str], list[list[str]]]:
    """The tornado (each input at its P10 and P90) with the Sobol indices of the mean cost beside it."""
    head = ["input", "P10 value", "P90 value", "mean cost at P10", "at P90", "swing"]
    unit = {r["input"]: key_unit(r["input"]) for r in rows}
    body = [[r["input"], format_value(r["low_value"], unit[r["input"]]),
             format_value(r["high_value"], unit[r["input"]]), format_usd(r["cost_mean_at_low"]),
             format_usd(r["cost_mean_at_high"]), format_usd(r["cost_mean_swing"])] for r in rows]
    if indices:
        head += ["Sobol S1 (mean cost)", "ST"]
        per = indices["indices"]["cost_mean"]
        for b, r in zip(body, rows, strict=True):
            i = per[r["input"]]
            b += [f"{i['S1']:.2f} +-{i['S1_conf']:.2f}", f"{i['ST']:.2f} +-{i['ST_conf']:.2f}"]
    return head, body


def sensitivity_title(name: str, reps: int, seed: int) -> str:
    return f"{name}: what drives the cost ({reps} replications per point, seed {seed})"


def sobol_note(indices: dict, n: int, reps: int) -> str:
    return (f"Sobol indices from {indices['points']} points (Saltelli, N={n}) x {reps} replications; "
            "inputs treated as independent (correlations are not used here)")


# --- units of keys ------------------------------------------------------------------------------
def _parts(ann, units: list, models: list) -> None:
    """The Units and pydantic models found inside an annotation (through Optional, unions, lists)."""
    from pydantic import BaseModel

    from sim.schema import Unit

    if isinstance(ann, Unit):
        units.append(ann.name)
    elif isinstance(ann, type) and issubclass(ann, BaseModel):
        models.append(ann)
    for a in typing.get_args(ann):
        if not isinstance(a, (str, int, float)):
            _parts(a, units, models)
    for m in getattr(ann, "__metadata__", ()):
        _parts(m, units, models)


def key_unit(key: str) -> str | None:
    """The unit of a scenario key ("workloads[x].hours_per_run" -> "duration (hours)"), as the
    key reference names it; None when the key has none or is not found."""
    from sim.schema import Scenario, Unit

    models: list = [Scenario]
    units: list = []
    for name in re.sub(r"\[[^\]]*\]", "", key).split("."):
        fields = [m.model_fields[name] for m in models if name in m.model_fields]
        if not fields:
            return None
        units, models = [u.name for u in fields[0].metadata if isinstance(u, Unit)], []
        _parts(fields[0].annotation, units, models)
    return units[0] if units else None
