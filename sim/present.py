"""What the CLI shows: plain-text tables and summaries of results, and a progress bar. Every
function returns text (or a callback); the CLI decides where to print it."""

from __future__ import annotations

import logging
import sys
import time

from sim import tables
from sim.billing import TIERS
from sim.outputs import HEADLINE_HEAD, NOMINAL_NOTE, headline_rows
from sim.units import format_count, format_hours, format_kg, format_kwh, format_pct, format_usd

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
    if est.commitments:
        lines += _commitment_lines(est)
    return "\n".join(lines)


def _commitment_lines(est) -> list[str]:
    """Usage, each commitment and the floor (their sum), under the estimate's table."""
    t = est.total
    lines = ["(a run's cost on a reserved or owned pool is its hours at the pool's rate; the pool itself is billed "
             "as a commitment below)",
             f"usage, billed by the hour (on-demand, spot): {format_usd(t['usage_usd'])}",
             "commitments, billed whatever the runs do:"]
    for c in est.commitments:
        span = f"{c.start} to {c.end} ({format_hours(c.billed_hours)})"
        held = c.busy_gpu_hours + c.idle_gpu_hours
        line = f"  {c.pool}: {c.accelerators} x {c.accelerator} {c.pricing}, "
        if TIERS[c.pricing].bills_usage:  # hot spares of a pool billed by the hour
            lines.append(f"  {c.pool}: {c.accelerators} x {c.accelerator} hot spares ({c.pricing}), {span}, the "
                         f"project's floor length, at ${c.price_usd_per_gpu_h:.2f}/GPU-h: {format_usd(c.cost_usd)}")
            continue
        if c.pricing == "owned":
            line += (f"{span}, the project's floor length: {format_usd(c.cost_usd)} (purchase amortized "
                     f"{format_usd(c.cost_usd - c.electricity_usd)}, electricity busy and idle "
                     f"{format_usd(c.electricity_usd)})")
        else:
            line += f"{span} at ${c.price_usd_per_gpu_h:.2f}/GPU-h: {format_usd(c.cost_usd)}"
        line += f"; the runs above use {c.busy_gpu_hours:,.0f} of its {held:,.0f} GPU-h"
        if c.sunk_hours > 0:
            line += f"; the {format_hours(c.sunk_hours)} of the term before {est.start} are sunk, not counted"
        lines.append(line)
    lines.append(f"floor (usage + commitments): {format_usd(t['cost_usd'])}; energy {format_kwh(t['energy_kwh'])}, "
                 f"CO2 {format_kg(t['co2_kg'])} (idle reserved or owned capacity included); the runs could all "
                 f"end after {format_hours(est.project_hours)}")
    return lines


def spread_text(band: dict, priors: list[dict]) -> str:
    """The one-liner's quick forecast: P5 / P50 / P95 with failures and the MFU spread, and what
    it includes (so a user who gave only size, tokens, accelerator and count is told)."""
    from sim.priors import format_value

    def trio(m: str, f) -> str:
        b = band[m]
        return f"{f(b['p5'])} / {f(b['p50'])} / {f(b['p95'])}"

    if "skipped" in band:
        return f"Forecast with failures and MFU spread: skipped ({band['skipped']})."
    if "cost_usd" not in band:
        return (f"Forecast: every one of {band['failed_replications']} replications failed "
                f"({band.get('first_error', 'no detail')}); only the point estimate above stands.")
    keys = {p["key"].split(".", 1)[-1].split("].")[-1]: p for p in priors}
    mfu = keys.get("mfu")
    fails = "failure_rate_per_gpu_h" in keys
    lines = [f"Forecast, P5 / P50 / P95 of {band['replications']} replications (seed {band['seed']}):",
             f"  cost {trio('cost_usd', format_usd)}; GPU-hours {trio('gpu_hours', format_count)}; "
             f"wall time {trio('makespan_days', lambda v: f'{v:,.1f} d')}; interruptions "
             f"{trio('interruptions', lambda v: f'{v:,.0f}')} (mean {band['interruptions']['mean']:.1f})"]
    has = []
    if fails:
        has.append("failures and restarts drawn from the reliability priors (rate, detection, restart, work "
                   "lost since the last checkpoint)")
    if mfu:
        has.append(f"MFU drawn from its prior ({format_value(mfu['value'])})")
    if has:
        lines.append("  It includes " + "; ".join(has) + ", one draw per replication. "
                     "Write a scenario file and `sim run` it for the report, dates and risk.")
    else:
        lines.append("  No failures or MFU spread: priors are off; the spread is only what the inputs give.")
    return "\n".join(lines)


# --- sim run -----------------------------------------------------------------------------------
relative = tables.relative  # kept here too: how far a figure is from another


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


def assumption_lines(assumptions: list[str]) -> list[str]:
    """Assumptions the scenario makes without saying so (on-demand capacity always there), one a line."""
    return [f"assumption: {a}" for a in assumptions]


def run_text(summary: dict, runtime_s: float, out, estimate_total: dict) -> str:
    """The terminal summary of `sim run`: headline table, the deterministic estimate, risk and
    precision."""
    lines = [f"{summary['scenario']}: {tables.run_title(summary, runtime_s)} -> {out}",
             table(HEADLINE_HEAD, headline_rows(summary)), *tables.estimate_lines(summary, estimate_total)]
    if summary.get("nominal"):
        lines.append(NOMINAL_NOTE + ".")
    if summary.get("risk"):
        lines += tables.risk_lines(summary["risk"])
    spend = spend_text(summary)
    if spend:
        lines.append(spend)
    assumed = priors_text(summary.get("priors", []))
    if assumed:
        lines.append(assumed)
    lines += assumption_lines(summary.get("assumptions", []))
    if "precision" in summary:
        lines.append(tables.precision_line(summary))
    return "\n".join(lines)


def spend_text(summary: dict) -> str | None:
    """Spend by week or month (sim.stats.spend_period), as the report shows it; None when there is none."""
    spend = tables.spend_head_rows(summary)
    if spend is None:
        return None
    if isinstance(spend, str):
        return spend
    return table(*spend)


def failed_text(errors: list[dict]) -> str | None:
    if not errors:
        return None
    return (f"WARNING: {len(errors)} replications failed and are left out; the first: {errors[0]['error']} "
            "(all in manifest.json)")


# --- sim compare -------------------------------------------------------------------------------
def compare_text(report: dict) -> str:
    lines = [tables.compare_title(report), table(*tables.compare_head_rows(report))]
    limits = tables.budget_deadline(report)
    if limits:
        lines.append(f"({limits})")
    lines.append(table(*tables.pair_head_rows(report["pairs"])))
    return "\n".join(lines)


def starts_text(report: dict) -> str:
    """The start with the lowest expected CO2 and the one with the lowest expected cost."""
    return "\n".join(tables.starts_lines(report))


def sweep_text(report: dict) -> str:
    lines = [table(*tables.sweep_head_rows(report), right={0, 2, 3, 4}), *tables.break_even_lines(report)]
    return "\n".join(lines)


# --- sim sensitivity ---------------------------------------------------------------------------
def sensitivity_text(rows: list[dict], indices: dict, reps: int, n: int, seed: int, name: str, out) -> str:
    head, body = tables.sensitivity_head_rows(rows, indices)
    lines = [f"{tables.sensitivity_title(name, reps, seed)} -> {out}",
             table(head, body, right=set(range(1, len(head))))]
    if indices:
        lines.append(tables.sobol_note(indices, n, reps))
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
    """Per case the figures (case, metric, P5, P50, P95, published, inside?, P50 error, P95/P5, reps),
    the mean figures' comparison, then the summary lines."""
    from sim import backtesting

    head = (f"backtest: {len({r['case'] for r in result.rows})} cases, {len(result.rows)} published figures, "
            f"{result.reps} replications each (fewer where a case sets case.reps), seed {result.seed}, "
            f"{result.runtime_s:.1f} s")
    if result.out is not None:
        head += f" -> {result.out}"
    lines = [head, table(backtesting.HEAD, backtesting.table_rows(result), right=set(range(2, len(backtesting.HEAD)))),
             "* in-sample (a built-in prior was fitted on this case's figures, or the model changed after them); "
             f"(mean): a simulator's published mean, inside when trainsim's mean ± {backtesting.SE_MULT:g} standard "
             "errors meets its interval",
             *backtesting.mean_lines(result), *backtesting.summary_lines(result.summary)]
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
    risk = [f"P(over budget) = {format_pct(b['p_over_budget'])}" if "p_over_budget" in b else "",
            f"P(late) = {format_pct(b['p_late'])}" if "p_late" in b else ""]
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
    assumed = priors_text(b.get("priors_of_the_scenario") or [])  # the priors the original scenario took
    if assumed:
        lines.append(assumed)
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


# --- sim grid ----------------------------------------------------------------------------------
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def grid_text(profiles: dict, regions: dict, names: list[str], sources: bool = False) -> str:
    """The shipped grid profiles and the cloud regions that name them (`sim grid`), or with
    `names` each named profile (or region) in detail: its months, its hours, its source."""
    if names:
        return "\n\n".join(_grid_detail(n, profiles[n], regions) for n in names)
    own = {k: p for k, p in profiles.items() if k == p.name}
    rows = []
    for k, p in own.items():
        monthly = [sum(r) / len(r) for r in p.table]
        lo, hi = min(range(12), key=monthly.__getitem__), max(range(12), key=monthly.__getitem__)
        rows.append([k, "flat" if p.flat() else "month x hour", p.basis or "-", f"{p.year_mean(int(p.date[:4])):.1f}",
                     "-" if p.flat() else f"{_MONTHS[lo]} {monthly[lo]:.0f}",
                     "-" if p.flat() else f"{_MONTHS[hi]} {monthly[hi]:.0f}", p.date,
                     "yes" if p.checked.startswith("yes") else "no"])
    out = [table(["profile", "shape", "basis", "gCO2/kWh (year)", "cleanest month", "dirtiest month", "data to",
                  "stored copy"], rows, right={3})]
    out.append("")
    out.append(table(["region", "provider", "location", "profile"],
                     [[r.id, r.provider, r.location, r.profile] for r in regions.values()], right=set()))
    if sources:
        out += ["", *(f"{k}: {p.source} Checked: {p.checked}" for k, p in own.items())]
    else:
        out.append("\n(a profile or region in detail: sim grid NAME; sources: sim grid --sources; use one with "
                   "carbon.profile or pools[].carbon_profile)")
    return "\n".join(out)


def _grid_detail(name: str, p, regions: dict) -> str:
    monthly = [sum(r) / len(r) for r in p.table]
    hourly = [sum(r[h] for r in p.table) / 12 for h in range(24)]
    via = f" (region {name}: {regions[name].location}, {regions[name].provider})" if name in regions else ""
    lines = [f"{p.name}{via}: {p.title}", f"  basis: {p.basis or '-'}; data to {p.date}; mean over that year "
             f"{p.year_mean(int(p.date[:4])):.1f} gCO2/kWh (the source's figure: {p.annual_mean})"]
    if p.flat():
        lines.append("  flat: the source gives one figure for the year, so no month or hour varies")
    else:
        by_month = ", ".join(f"{m} {v:.0f}" for m, v in zip(_MONTHS, monthly, strict=True))
        by_hour = ", ".join(f"{h:02d} {v:.0f}" for h, v in enumerate(hourly))
        lines += [f"  by month (gCO2/kWh): {by_month}", f"  by UTC hour, mean of the months: {by_hour}"]
    named_by = sorted(r.id for r in regions.values() if r.profile == p.name)
    if named_by:
        lines.append("  cloud regions on this grid: " + ", ".join(named_by))
    lines += [f"  source: {p.source}", f"  checked: {p.checked}"]
    return "\n".join(lines)
