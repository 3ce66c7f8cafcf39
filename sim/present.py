"""What the CLI shows: plain-text tables and summaries of results, and a progress bar. Every
function returns text (or a callback); the CLI decides where to print it."""

from __future__ import annotations

import logging
import math
import sys
import time

from sim.outputs import HEADLINE_HEAD, headline_rows
from sim.units import format_count, format_hours, format_kg, format_kwh, format_usd

log = logging.getLogger("sim")


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right if right is not None else set(range(1, len(headers)))
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]

    def fmt(row):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    line = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), line, *(fmt(r) for r in rows)])


# --- sim estimate ------------------------------------------------------------------------------
def estimate_text(name: str, est) -> str:
    rows = []
    for w in est.workloads:
        runs = f"{w.runs}" if w.effective_runs == w.runs else f"{w.runs} ({w.effective_runs:.3g} eff.)"
        rows.append([
            w.name, runs, f"{w.accelerators} x {w.accelerator} {w.pricing}",
            format_count(w.flop_per_run) if w.flop_per_run else "-",
            f"{w.gpu_hours_per_run:,.0f}", format_hours(w.hours_per_run), f"${w.price_usd_per_gpu_h:.2f}",
            format_usd(w.cost_usd_per_run), format_usd(w.cost_usd), format_kwh(w.energy_kwh), format_kg(w.co2_kg),
        ])
    t = est.total
    rows.append(["total", "", "", "", f"{t['gpu_hours']:,.0f}", "", "", "", format_usd(t["cost_usd"]),
                 format_kwh(t["energy_kwh"]), format_kg(t["co2_kg"])])
    lines = [f"Deterministic estimate: {name} (start {est.start}; no queueing, failures or preemption)",
             table(["workload", "runs", "per run on", "FLOP/run", "GPU-h/run", "wall/run", "$/GPU-h", "cost/run",
                    "cost", "energy", "CO2"], rows, right=set(range(3, 11)))]
    lines += [f"  {w.name}: price from {w.price_source}" for w in est.workloads]
    return "\n".join(lines)


# --- sim run -----------------------------------------------------------------------------------
def _risk_lines(r: dict) -> list[str]:
    conf = r["budget_for_confidence"]
    line = "budget needed for 50/80/90/95% confidence: " + " / ".join(format_usd(conf[k]) for k in conf)
    if "p_over_budget" in r:
        lo, hi = r["p_over_budget_ci95"]
        line += (f"; P(cost > budget {format_usd(r['budget_usd'])}) = {r['p_over_budget']:.1%}"
                 f" (95% CI {lo:.1%}..{hi:.1%})")
    dates = r["finish_date_at_confidence"]
    line2 = "finish date at 50/80/90/95% confidence: " + " / ".join(dates.values())
    if "p_late" in r:
        lo, hi = r["p_late_ci95"]
        line2 += f"; P(finish after {r['deadline']}) = {r['p_late']:.1%} (95% CI {lo:.1%}..{hi:.1%})"
    return [line, line2]


def relative(value: float, ref: float) -> str:
    """How far `value` is from `ref`, in percent ("+4.2%"); in USD when a percentage has no meaning
    (a reference of zero, or a number that is not finite)."""
    if not (math.isfinite(value) and math.isfinite(ref)):
        return "n/a"
    if ref == 0 or not math.isfinite(value / ref):
        diff = value - ref
        return f"{'+' if diff >= 0 else '-'}{format_usd(abs(diff))}" if math.isfinite(diff) else "n/a"
    return f"{(value / ref - 1) * 100:+.1f}%"


def priors_text(priors: list[dict]) -> str | None:
    """The keys taken from priors, one a line with its value and source (None when none were)."""
    if not priors:
        return None
    from sim.priors import format_value, short_source

    lines = [f"Assumed from priors ({len(priors)} keys the scenario leaves out; give them, or --no-priors):"]
    for p in priors:
        origin = "" if p["from"] == "built-in" else f" [from {p['from']}]"
        lines.append(f"  {p['key']} ({p['basis']}): {format_value(p['value'])}  [{short_source(p['source'])}, "
                     f"{p['date']}{'' if p['checked'] else '; not checked against a stored copy'}]{origin}")
    return "\n".join(lines)


def run_text(summary: dict, runtime_s: float, out, estimate_total: dict) -> str:
    """The terminal summary of `sim run`: headline table, the deterministic estimate, risk and
    precision."""
    m = summary["metrics"]
    n = summary["replications"]
    est = estimate_total
    lines = [f"{summary['scenario']}: {n} replications ({summary['sampling']}), seed {summary['seed']}, "
             f"{runtime_s:.1f} s -> {out}", table(HEADLINE_HEAD, headline_rows(summary)),
             f"deterministic estimate (no queueing, failures or preemption): {format_usd(est['cost_usd'])}, "
             f"{est['gpu_hours']:,.0f} GPU-h.\nThe simulated mean is "
             f"{relative(m['cost_usd']['mean'], est['cost_usd'])}"
             " from it: queueing, failures, preemption, restarts, reruns, run-to-run spread and idle"
             " reserved or owned capacity."]
    if summary.get("risk"):
        lines += _risk_lines(summary["risk"])
    assumed = priors_text(summary.get("priors", []))
    if assumed:
        lines.append(assumed)
    if "precision" in summary:
        p = summary["precision"]
        how = "met" if p["met"] else "NOT met (cap reached)"
        lines.append(f"precision target {p['target']:.2%}: {how} after {n} replications "
                     f"(mean +-{_share(p.get('mean_half_width_rel'))}, P95 +-{_share(p.get('p95_half_width_rel'))})")
    return "\n".join(lines)


def _share(x: float | None) -> str:
    """A relative half-width as a percentage; n/a when there is none (too few replications, or a
    mean of zero)."""
    return f"{x:.2%}" if x is not None and math.isfinite(x) else "n/a"


def failed_text(errors: list[dict]) -> str | None:
    if not errors:
        return None
    return (f"WARNING: {len(errors)} replications failed and are left out; the first: {errors[0]['error']} "
            "(all in manifest.json)")


# --- sim compare -------------------------------------------------------------------------------
def compare_text(report: dict) -> str:
    sbs = report["side_by_side"]
    risks = report.get("risk", {})
    extra = [k for k in ("p_over_budget", "p_late") if any(k in r for r in risks.values())]
    rows = []
    for name, m in sbs.items():
        rows.append([name, format_usd(m["cost_usd"]["mean"]), format_usd(m["cost_usd"]["p5"]),
                     format_usd(m["cost_usd"]["p95"]), f"{m['makespan_days']['mean']:.1f} d",
                     f"{m['makespan_days']['p95']:.1f} d", format_kg(m["co2_kg"]["mean"]),
                     *(f"{risks[name][k]:.1%}" if k in risks.get(name, {}) else "-" for k in extra)])
    labels = {"p_over_budget": "P(over budget)", "p_late": "P(late)"}
    lines = [f"{report['scenario']}: {report['replications']} replications each, seed {report['seed']} "
             "(common random numbers)",
             table(["strategy", "mean cost", "P5", "P95", "mean time", "P95 time", "mean CO2",
                    *(labels[k] for k in extra)], rows)]
    rows = [[f"{p['a']} vs {p['b']}", f"{p['p_a_lower']:.1%}", format_usd(p["diff_mean"]),
             f"{format_usd(p['diff_mean_ci95'][0])}..{format_usd(p['diff_mean_ci95'][1])}",
             format_usd(p["diff_p5"]), format_usd(p["diff_p50"]), format_usd(p["diff_p95"])]
            for p in report["pairs"] if p["metric"] == "cost_usd"]
    lines.append(table(["pair (A vs B)", "P(A cheaper)", "mean A-B", "95% CI", "P5 A-B", "P50 A-B", "P95 A-B"],
                       rows))
    return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "none in range" if x is None else f"{x:.3g}"


def sweep_text(report: dict) -> str:
    key = report["sweep"]["key"]
    rows = [[str(r["value"]), r["strategy"], format_usd(r["cost_usd_mean"]), format_usd(r["cost_usd_p5"]),
             format_usd(r["cost_usd_p95"])] for r in report["costs"]]
    lines = [table([key, "strategy", "mean cost", "P5", "P95"], rows, right={0, 2, 3, 4})]
    for b in report["break_even"]:
        if b["break_even_mean"] is None and b["band_crossing_p5"] is None and b["band_crossing_p95"] is None:
            lines.append(f"{b['a']} vs {b['b']}: no break-even for {key} in the range swept")
            continue
        lines.append(f"{b['a']} vs {b['b']}: break-even at {key} = {_fmt(b['break_even_mean'])} (mean cost "
                     f"difference crosses zero; median at {_fmt(b['break_even_p50'])}); the 90% band of the paired "
                     f"difference crosses zero between {_fmt(b['band_crossing_p5'])} and "
                     f"{_fmt(b['band_crossing_p95'])}")
    return "\n".join(lines)


# --- sim sensitivity ---------------------------------------------------------------------------
def sensitivity_text(rows: list[dict], indices: dict, reps: int, n: int, seed: int, name: str, out) -> str:
    head = ["input", "P10 value", "P90 value", "mean cost at P10", "at P90", "swing"]
    body = [[r["input"], f"{r['low_value']:.4g}", f"{r['high_value']:.4g}", format_usd(r["cost_mean_at_low"]),
             format_usd(r["cost_mean_at_high"]), format_usd(r["cost_mean_swing"])] for r in rows]
    if indices:
        head += ["Sobol S1 (mean cost)", "ST"]
        per = indices["indices"]["cost_mean"]
        for b, r in zip(body, rows, strict=True):
            i = per[r["input"]]
            b += [f"{i['S1']:.2f} +-{i['S1_conf']:.2f}", f"{i['ST']:.2f} +-{i['ST_conf']:.2f}"]
    lines = [f"{name}: what drives the cost ({reps} replications per point, seed {seed}) -> {out}",
             table(head, body, right=set(range(1, len(head))))]
    if indices:
        lines.append(f"Sobol indices from {indices['points']} points (Saltelli, N={n}) x {reps} replications; "
                     "inputs treated as independent (correlations are not used here)")
    return "\n".join(lines)


# --- progress ----------------------------------------------------------------------------------
class Progress:
    """A progress bar with rate and ETA on a terminal; a few quiet log lines otherwise. Called
    (done, total) as replications finish and (None, None) when a run ends; the next call starts a
    new bar (compare runs one per strategy)."""

    def __init__(self) -> None:
        self.bar = None
        self.t0: float | None = None
        self.last = -1

    def __call__(self, done: int | None, total: int | None) -> None:
        if done is None:
            if self.bar is not None:
                self.bar.close()
            self.bar, self.t0, self.last = None, None, -1
            return
        if self.t0 is None:
            self._start(total)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            return
        step = done * 10 // max(total, 1)
        if step != self.last and done:
            self.last = step
            dt = time.perf_counter() - self.t0
            log.info("%d/%d replications (%.0f/s)", done, total, done / dt if dt > 0 else 0.0)

    def _start(self, total: int) -> None:
        from sim.runner import is_tty

        self.t0 = time.perf_counter()
        if is_tty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="rep", dynamic_ncols=True, file=sys.stderr, leave=False)


# --- sim backtest ------------------------------------------------------------------------------
def backtest_text(result) -> str:
    """Per case the figures (case, metric, P5, P50, P95, published, inside?, P50 error, P95/P5),
    then the summary lines."""
    from sim import backtesting

    head = (f"backtest: {len({r['case'] for r in result.rows})} cases, {len(result.rows)} published figures, "
            f"{result.reps} replications each, seed {result.seed}, {result.runtime_s:.1f} s")
    if result.out is not None:
        head += f" -> {result.out}"
    lines = [head, table(backtesting.HEAD, backtesting.table_rows(result), right=set(range(2, 9))),
             "* a built-in prior was fitted on this case's figures (in-sample)",
             *backtesting.summary_lines(result.summary)]
    if result.failed:
        lines.append("failed replications (left out): " + ", ".join(f"{k} {v}" for k, v in result.failed.items()))
    return "\n".join(lines)


def case_progress():
    """A callback (i, n, case) that names each case on stderr when it is a terminal; None otherwise."""
    if not sys.stderr.isatty():
        return None

    def show(i: int, n: int, name: str) -> None:
        print(f"[{i + 1}/{n}] {name}", file=sys.stderr, flush=True)

    return show


def reforecast_text(summary: dict, out) -> str:
    """The terminal summary of `sim reforecast`."""
    from sim.reforecasting import posterior_rows

    b = summary["reforecast"]
    e, f = b["eac_usd"], b["finish_date"]
    when = b.get("as_of_time", b["as_of"]).removesuffix("T00:00").replace("T", " ")
    lines = [f"{summary['scenario']}: re-forecast at {when} from its actuals, {summary['replications']} "
             f"replications -> {out}",
             f"actual to date: {format_usd(b['actual_to_date_usd'])}, {b['actual_gpu_hours']:,.0f} GPU-h; "
             f"{b['done_fraction']:.1%} of the work done",
             f"estimate at completion: P5 {format_usd(e['p5'])} / P50 {format_usd(e['p50'])} / P95 "
             f"{format_usd(e['p95'])} (mean {format_usd(e['mean'])})",
             f"finish date: P5 {f['p5']} / P50 {f['p50']} / P95 {f['p95']}"]
    risk = [f"P(over budget) = {b['p_over_budget']:.1%}" if "p_over_budget" in b else "",
            f"P(late) = {b['p_late']:.1%}" if "p_late" in b else ""]
    if any(risk):
        lines.append("; ".join(x for x in risk if x))
    ev = b.get("earned_value")
    if ev:
        cpi = f"{ev['cpi']:.2f}" if ev["cpi"] is not None else "n/a"
        spi = f"{ev['spi']:.2f}" if ev["spi"] is not None else "n/a"
        lines.append(f"earned value: BAC {format_usd(ev['budget_at_completion_usd'])}, PV "
                     f"{format_usd(ev['planned_value_usd'])}, EV {format_usd(ev['earned_value_usd'])}, AC "
                     f"{format_usd(ev['actual_cost_usd'])}; CPI {cpi}, SPI {spi}, VAC "
                     f"{format_usd(ev['variance_at_completion_usd'])}")
    for key, prior, prior_sd, seen, post, post_sd in posterior_rows(b.get("posterior", {})):
        lines.append(f"updated from what was seen: {key}: prior {prior} ({prior_sd}) -> posterior {post} ({post_sd}); "
                     f"seen: {seen}")
    lines += [f"note: {n}" for n in b.get("notes", [])]
    base = b.get("baseline") or {}
    if base.get("source") == "simulated":
        lines.append(f"baseline forecast: the original scenario simulated, {base['replications']:,} replications")
    elif base.get("source") not in (None, "none"):
        lines.append(f"baseline forecast: {base['replications']:,} replications read from {base['source']}"
                     + ("" if base.get("same_scenario") else " (run from another scenario: its hash differs)"))
    return "\n".join(lines)


# --- sim calibrate -----------------------------------------------------------------------------
def calibrate_text(result: dict) -> str:
    """The terminal summary of `sim calibrate`: the projects, a table of the fitted rows, the notes."""
    from sim.calibration import describe_team, describe_when
    from sim.priors import format_value

    projects = "; ".join(f"{p['project']} ({p['completed']} of {p['runs']} runs completed)" for p in result["projects"])
    rows = [[f["key"], describe_when(f["when"]), format_value(f["value"]), str(f["n"]), f["date"]]
            for f in result["fitted"]]
    lines = [f"calibrated from {len(result['projects'])} past project(s): {projects}",
             table(["key", "when", "value", "N", "latest run"], rows, right={3})]
    lines += [f"note: {n}" for n in result["notes"]]
    lines += describe_team(result.get("team") or {})
    lines.append(f"priors written to {result['out']} (use it with simulation.priors_file)" if result.get("out")
                 else "nothing written (no --out)")
    return "\n".join(lines)
