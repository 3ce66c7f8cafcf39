"""Reports people read: PNG plots and a self-contained report.html (plots embedded, nothing
fetched) plus a short report.md, written next to the data of `sim run`, `sim compare` and
`sim sensitivity`.

Plot functions take data (a DataFrame or a summary dict) and an optional matplotlib Axes and
return the Axes.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import re
import warnings
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from sim import tables  # noqa: E402
from sim.outputs import HEADLINE_HEAD, NOMINAL_NOTE, atomic_write, headline_rows  # noqa: E402
from sim.reforecasting import posterior_rows  # noqa: E402
from sim.stats import interruption_rates, interruption_rates_by_size  # noqa: E402
from sim.units import format_usd  # noqa: E402

log = logging.getLogger("sim.report")
USD = FuncFormatter(lambda x, _p: format_usd(x))
LIMIT = 1e300  # plotted values are clipped to +-LIMIT: spans and tick positions stay finite
FLAT = 1e-9  # data whose spread is below this fraction of its size is drawn as one value


def _axes(ax, size=(7, 4)):
    if ax is None:
        _fig, ax = plt.subplots(figsize=size)
    return ax


def finite(values) -> np.ndarray:
    """The finite values of `values` as floats, clipped to +-LIMIT (what a plot can draw)."""
    a = np.asarray(values, dtype=float).ravel()
    return np.clip(a[np.isfinite(a)], -LIMIT, LIMIT)


def span(a: np.ndarray) -> tuple[float, float]:
    """A finite range (lo < hi) that holds the finite values `a`: their own range, or, for
    constant, nearly constant or no data, a range around their centre wide enough for bins."""
    if a.size == 0:
        return 0.0, 1.0
    lo, hi = float(a.min()), float(a.max())
    if hi - lo > FLAT * max(abs(lo), abs(hi), 1.0):
        return lo, hi
    centre = lo / 2 + hi / 2
    pad = max(abs(centre) * 0.01, 1.0)
    return centre - pad, centre + pad


def _tidy(ax) -> None:
    """tight_layout, which may only warn (long tick labels): never a reason to fail a plot."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ax.figure.tight_layout()


def _no_data(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no finite {what} to plot", ha="center", va="center", transform=ax.transAxes)


def _budget_line(ax, budget: float | None, loc: str) -> None:
    if budget is not None and np.isfinite(budget):
        ax.axvline(min(max(budget, -LIMIT), LIMIT), color="#c0504d", linewidth=2,
                   label=f"budget {format_usd(budget)}")
        ax.legend(loc=loc)


def plot_cost_histogram(reps, ax=None, budget: float | None = None):
    ax = _axes(ax)
    a = finite(reps["cost_usd"])
    if a.size:
        ax.hist(a, bins=min(40, max(10, len(a) // 10)), range=span(a), color="#4f81bd", edgecolor="white")
    else:
        _no_data(ax, "costs")
    _budget_line(ax, budget, "best")
    ax.xaxis.set_major_formatter(USD)
    ax.set_xlabel("project cost (USD)")
    ax.set_ylabel("replications")
    ax.set_title("Distribution of project cost")
    _tidy(ax)
    return ax


def plot_ettr_histogram(reps, ax=None):
    """The effective training time ratio of each replication (productive / allocated
    accelerator-hours): how much of the held time trained the model."""
    ax = _axes(ax)
    a = finite(reps["ettr"]) if "ettr" in reps else np.array([])
    if a.size:
        ax.hist(a * 100.0, bins=min(40, max(10, len(a) // 10)), range=span(a * 100.0), color="#9bbb59",
                edgecolor="white")
    else:
        _no_data(ax, "ETTR values")
    ax.set_xlabel("effective training time ratio (%)")
    ax.set_ylabel("replications")
    ax.set_title("Share of held accelerator-hours that trained")
    _tidy(ax)
    return ax


def plot_interruptions_by_size(by_size, ax=None):
    """Interruptions of every kind per day of wall time held, against accelerators per run (log
    scale): the mean over runs of each size, with a bar from P5 to P95 of the runs
    (`sim.stats.interruption_rates_by_size`)."""
    ax = _axes(ax)
    if len(by_size):
        x = by_size["accelerators"].to_numpy(dtype=float)
        lo, hi = _drawable(by_size["p5"]), _drawable(by_size["p95"])
        ax.vlines(x, lo, hi, color="#c0504d", linewidth=2, label="P5 to P95 of runs")
        ax.plot(x, _drawable(by_size["mean"]), "o", color="#1f3f6e", label="mean")
        ax.set_xscale("log", base=2)
        ax.set_xlim(x.min() / 1.6, x.max() * 1.6)
        ax.set_xticks(x, [f"{int(v):,}" for v in x])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
    else:
        _no_data(ax, "interruptions")
    ax.set_xlabel("accelerators per run")
    ax.set_ylabel("interruptions per day held")
    ax.set_title("Interruptions per day of wall time held, by run size")
    _tidy(ax)
    return ax


def plot_cost_cdf(reps, ax=None, budget: float | None = None):
    ax = _axes(ax)
    x = np.sort(finite(reps["cost_usd"]))
    if x.size:
        ax.plot(x, np.arange(1, len(x) + 1) / len(x), color="#4f81bd")
        if span(x) != (x[0], x[-1]):  # one value: a range around it
            ax.set_xlim(*span(x))
    else:
        _no_data(ax, "costs")
    _budget_line(ax, budget, "lower right")
    ax.xaxis.set_major_formatter(USD)
    return _cdf_labels(ax, "project cost (USD)", "probability cost <= x", "Cumulative distribution of project cost")


def _cdf_labels(ax, xlabel: str, ylabel: str, title: str):
    """The labels, the 0..1 probability axis and the title of a cumulative distribution plot."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    _tidy(ax)
    return ax


def plot_finish_cdf(reps, start: date, ax=None, deadline: date | None = None):
    """The cumulative distribution of the finish date (start + makespan of each replication), with
    the deadline as a vertical line (finished by the end of its day)."""
    from datetime import timedelta

    ax = _axes(ax)
    days = np.sort(finite(reps["makespan_days"]))
    days = days[np.abs(days) < 3e6]  # within the calendar (year 9999 is 2.9M days from year 1)
    if days.size:
        base = mdates.date2num(start)
        ax.step(base + days, np.arange(1, len(days) + 1) / len(days), where="post", color="#4f81bd")
        lo, hi = base + days[0], base + days[-1]
        if deadline is not None:  # the deadline in view, however far from the finish dates
            end = mdates.date2num(deadline + timedelta(days=1))
            lo, hi = min(lo, end), max(hi, end)
        pad = max((hi - lo) * 0.05, 0.5)
        ax.set_xlim(lo - pad, hi + pad)
    else:
        _no_data(ax, "finish dates")
    if deadline is not None:
        ax.axvline(mdates.date2num(deadline + timedelta(days=1)), color="#c0504d", linewidth=2,
                   label=f"deadline {deadline} (end of day)")
        ax.legend(loc="lower right")
    _dates(ax)
    return _cdf_labels(ax, "finish date", "probability finished by x", "Cumulative distribution of the finish date")


def plot_spend_fan(summary: dict, ax=None, cumulative: bool = True):
    ax = _axes(ax)
    period = summary.get("spend_period", "month")  # week for a short project (sim.stats.spend_period)
    months = (summary.get("spend_by_period") if "spend_by_period" in summary else summary.get("spend_by_month")) or []
    labels = [m.get(period, m.get("period", "")) for m in months]
    pre = "cumulative_" if cumulative else ""
    x = np.arange(len(labels))
    p10, p50, p90 = (_drawable([m.get(f"{pre}{q}") for m in months]) for q in ("p10", "p50", "p90"))
    if not np.isfinite(np.concatenate([p10, p50, p90])).any():
        _no_data(ax, "spend")
    ax.fill_between(x, p10, p90, color="#4f81bd", alpha=0.3, label="P10 to P90")
    ax.plot(x, p50, color="#1f3f6e", marker="o", label="P50")
    ax.set_xticks(x, labels, rotation=45, ha="right")
    ax.yaxis.set_major_formatter(USD)
    ax.set_xlabel("week (its first day)" if period == "week" else "month")
    ax.set_ylabel("cumulative spend (USD)" if cumulative else f"spend in the {period} (USD)")
    ax.set_title("Spend over calendar time")
    ax.legend(loc="upper left")
    _tidy(ax)
    return ax


def _drawable(values) -> np.ndarray:
    """Values as floats for a line: missing or non-finite ones are gaps (NaN), the others clipped."""
    a = np.array([np.nan if v is None else v for v in values], dtype=float)
    a[~np.isfinite(a)] = np.nan
    return np.clip(a, -LIMIT, LIMIT)


def plot_compare(results: dict, ax=None, metric: str = "cost_usd", limit: float | None = None,
                 limit_label: str = ""):
    """Each strategy's `metric` as a box (P25-P75, whiskers P5-P95); `limit` (the budget, or the
    deadline in days from the start) a horizontal line labelled `limit_label`."""
    ax = _axes(ax)
    names = list(results)
    data = [finite(results[n][metric]) if metric in results[n] else finite([]) for n in names]
    tonnes = metric == "co2_kg" and max((float(d.max()) for d in data if d.size), default=0.0) >= 1000
    if tonnes:  # as the tables print it
        data = [d / 1000 for d in data]
    if names:
        ax.boxplot(data, whis=(5, 95), showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=15)
    if not any(d.size for d in data):
        _no_data(ax, "results")
    if limit is not None and np.isfinite(limit):
        ax.axhline(min(max(limit, -LIMIT), LIMIT), color="#c0504d", linewidth=2, label=limit_label)
        ax.legend(loc="best")
    if metric == "cost_usd":
        ax.yaxis.set_major_formatter(USD)
        ax.set_ylabel("project cost (USD)")
    else:
        ax.set_ylabel({"makespan_days": "time to finish (days)",
                       "co2_kg": "CO2 (t)" if tonnes else "CO2 (kg)"}.get(metric, metric))
    what = {"cost_usd": "Cost", "makespan_days": "Time to finish", "co2_kg": "CO2"}.get(metric, metric)
    ax.set_title(f"{what} by strategy (box: P25-P75, whiskers: P5-P95)")
    _tidy(ax)
    return ax


def _png(ax) -> bytes:
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # zlib level 1, not 6: PNGs 10% larger, a report drawn in three quarters of the time
            ax.figure.savefig(buf, format="png", dpi=110, pil_kwargs={"compress_level": 1})
    finally:
        plt.close(ax.figure)
    return buf.getvalue()


Plot = Callable[[], object]  # draws a plot and returns its Axes


def _drawn(name: str, plot) -> bytes | None:
    """The PNG of a plot (an Axes, or a function that draws one); None, with a warning, when
    drawing fails: a report without that plot rather than a failed run."""
    try:
        return _png(plot() if callable(plot) else plot)
    except Exception as e:  # an unforeseen failure of matplotlib or of the data: skip that plot
        log.warning("plot %s left out of the report: %s: %s", name, type(e).__name__, e)
        plt.close("all")
        return None


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }}
th:first-child, td:first-child, th.text, td.text {{ text-align: left; }}
img {{ max-width: 100%; display: block; margin: 1rem 0; }}
pre {{ background: #f6f6f6; padding: 1rem; overflow-x: auto; font-size: 0.8rem; }}
</style></head>
<body>
<h1>{title}</h1>
{body}
<script>
  // marks the page for checks: every image decoded and drawn?
  window.addEventListener("load", function () {{
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }}).length;
    document.body.setAttribute("data-images", String(imgs.length));
    document.body.setAttribute("data-images-ok", String(ok));
  }});
</script>
</body></html>
"""


_NUMERIC = re.compile(r"^[-+~<>$]*[0-9]")


def _text_columns(rows: list[list[str]]) -> set[int]:
    """Columns after the first (left-aligned already) no cell of which reads as a figure: left-aligned
    like prose, not like numbers."""
    width = max((len(r) for r in rows), default=0)
    return {j for j in range(1, width) if not any(j < len(r) and _NUMERIC.match(str(r[j]).strip()) for r in rows)}


def table_html(head: list[str], rows: list[list[str]]) -> str:
    text = _text_columns(rows)

    def cell(tag: str, j: int, x) -> str:
        attr = ' class="text"' if j in text else ""
        return f"<{tag}{attr}>{html.escape(str(x))}</{tag}>"
    h = "".join(cell("th", j, x) for j, x in enumerate(head))
    b = "".join("<tr>" + "".join(cell("td", j, x) for j, x in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"


def table_md(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


def write(out: Path, title: str, sections: list[tuple[str, list[str], list[tuple[str, object]]]],
          appendix: str | None = None) -> None:
    """sections: (heading, [paragraph or table as (html, md) pairs...], [(png name, Axes or a
    function that draws one), ...]). Writes every plot as PNG, report.html with them embedded, and
    report.md linking them; a plot that cannot be drawn is left out with a warning."""
    body, md = [], [f"# {title}", ""]
    for heading, blocks, plots in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        md += [f"## {heading}", ""]
        for h, m in blocks:
            body.append(h)
            md += [m, ""]
        for name, plot in plots:
            data = _drawn(name, plot)
            if data is None:
                continue
            atomic_write(out / name, lambda tmp, data=data: Path(tmp).write_bytes(data))
            b64 = base64.b64encode(data).decode()
            alt = html.escape(name.removesuffix(".png").replace("_", " "))
            body.append(f'<img alt="{alt}" src="data:image/png;base64,{b64}">')
            md += [f"![{alt}]({name})", ""]
    if appendix:
        body.append("<h2>Assumptions: the resolved scenario</h2><pre>" + html.escape(appendix) + "</pre>")
        md += ["## Assumptions: the resolved scenario", "", "```yaml", appendix.rstrip(), "```", ""]
    page = PAGE.format(title=html.escape(title), body="\n".join(body))
    atomic_write(out / "report.html", lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    atomic_write(out / "report.md", lambda tmp: Path(tmp).write_text("\n".join(md), encoding="utf-8"))


def reliability_section(summary: dict, reps, runs, accelerators: dict[str, int]):
    """The run report's Reliability section: interruptions and hours per replication, the ETTR
    histogram and, when the runs table is at hand and some run was interrupted, interruptions per
    day held by run size (a table and a plot)."""
    kinds = ("ettr", "failures", "job_failures", "domain_failures", "planned", "loss_spikes", "preemptions",
             "down_gpu_hours", "restart_gpu_hours", "write_gpu_hours", "straggler_gpu_hours", "repair_wait_gpu_hours")
    m = summary.get("metrics", {})
    rel = [[k, *(f"{m[k][s]:.1%}" if k == "ettr" else f"{m[k][s]:,.1f}" for s in ("mean", "p5", "p95"))]
           for k in kinds if k in m]
    head = ["per replication", "mean", "P5", "P95"]
    blocks = [(table_html(head, rel), table_md(head, rel))]
    plots: list[tuple[str, object]] = [("ettr_histogram.png", lambda: plot_ettr_histogram(reps))]
    by_size = interruption_rates_by_size(interruption_rates(runs, accelerators)) if runs is not None else None
    if by_size is not None and by_size["interruptions"].sum() > 0:
        head = ["accelerators per run", "runs", "interruptions per day held: mean", "P5", "P95"]
        rows = [[f"{r.accelerators:,}", f"{r.runs:,}", f"{r.mean:.3g}", f"{r.p5:.3g}", f"{r.p95:.3g}"]
                for r in by_size.itertuples()]
        blocks.append((table_html(head, rows), table_md(head, rows)))
        plots.append(("interruptions_by_size.png", lambda: plot_interruptions_by_size(by_size)))
    return "Reliability", blocks, plots


def run_report(out: Path, loaded, summary: dict, reps, runs=None, runtime_s: float | None = None) -> None:
    """`runs`: the runs table (runs.parquet, at least `stats.RATE_COLUMNS`), or None when the
    per-run records are not at hand: then the plot of interruptions by run size is left out, as it
    is when no run was interrupted. `runtime_s`: how long the replications took (None: not said)."""
    import yaml

    write(out, f"trainsim: {scenario_title(loaded)}", run_sections(loaded, summary, reps, runs, runtime_s),
          yaml.safe_dump(loaded.resolved, sort_keys=False))


def scenario_title(loaded) -> str:
    """The project's name, and the variant and --set overrides it was run with."""
    title = loaded.scenario.project.name
    if loaded.variant:
        title += f", variant {loaded.variant}"
    sets = [x for x in loaded.sets if x != "simulation.priors=off"]
    return title + (f" (--set {', '.join(sets)})" if sets else "")


def _spend_table(summary: dict) -> list:
    """The spend by period the terminal prints (sim.tables.spend_head_rows), as html and markdown."""
    spend = tables.spend_head_rows(summary)
    if spend is None:
        return []
    if isinstance(spend, str):
        return [(f"<p>{html.escape(spend)}</p>", spend)]
    return [(table_html(*spend), table_md(*spend))]


def run_sections(loaded, summary: dict, reps, runs=None, runtime_s: float | None = None) -> list:
    """The sections of a run's report (see `run_report`)."""
    scn = loaded.scenario
    head = HEADLINE_HEAD
    rows = headline_rows(summary)
    text = _headline_text(loaded, summary, runtime_s)
    b = summary.get("breakdown", {})
    brows = [[f"workload {k}", format_usd(v)] for k, v in b.get("cost_usd_by_workload", {}).items()]
    brows += [[f"pool {k}", format_usd(v)] for k, v in b.get("cost_usd_by_pool", {}).items()]
    brows += [[f"tier {k}", format_usd(v)] for k, v in b.get("cost_usd_by_tier", {}).items()]
    srows = [[k, f"{v:.1%}"] for k, v in b.get("gpu_hours_shares", {}).items()]
    budget, deadline = scn.project.budget_usd, scn.project.deadline
    sections = [
        ("Headline numbers", [_lines(text), (table_html(head, rows), table_md(head, rows)),
                              (f"<p>{html.escape(NOMINAL_NOTE)}.</p>", NOMINAL_NOTE + ".")], []),
        ("Cost", [], [("cost_histogram.png", lambda: plot_cost_histogram(reps, budget=budget)),
                      ("cost_cdf.png", lambda: plot_cost_cdf(reps, budget=budget))]),
        ("Finish date", [], [("finish_cdf.png", lambda: plot_finish_cdf(reps, scn.project.start, deadline=deadline))]),
        ("Spend over time", _spend_table(summary), [("spend_fan.png", lambda: plot_spend_fan(summary))]),
        ("Where the money and the hours go",
         [(table_html(["mean cost by", "USD"], brows), table_md(["mean cost by", "USD"], brows)),
          (table_html(["accelerator-hours", "share"], srows), table_md(["accelerator-hours", "share"], srows))], []),
        reliability_section(summary, reps, runs, {w.name: int(w.accelerators) for w in scn.workloads}),
    ]
    assumed = priors_section(summary.get("priors", []))
    if assumed:
        sections.insert(1, assumed)
    if summary.get("assumptions"):
        sections.insert(1, ("Assumed, not given", [_notes(summary["assumptions"])], []))
    return sections


def _lines(lines: list[str]) -> tuple[str, str]:
    """Lines of text as a list (html, md)."""
    return ("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>",
            "\n".join(f"- {x}" for x in lines))


def _headline_text(loaded, summary: dict, runtime_s: float | None = None) -> list[str]:
    """What the terminal says of a run beside its table: replications, the deterministic estimate,
    the risks, the precision reached."""
    from sim.deterministic import estimate

    lines = [f"{tables.run_title(summary, runtime_s)}; {summary.get('failed_replications', 0)} failed",
             " ".join(tables.estimate_lines(summary, estimate(loaded).total))]
    if summary.get("risk"):
        lines += tables.risk_lines(summary["risk"])
    if "precision" in summary:
        lines.append(tables.precision_line(summary))
    return [x[0].upper() + x[1:] + ("" if x.endswith(".") else ".") for x in lines]


def priors_section(priors: list[dict]):
    """The keys the scenario left out and took from priors, with value and source (None if none)."""
    if not priors:
        return None
    from sim.priors import format_value

    head = ["key", "matched on", "assumed", "source", "date", "checked"]
    def cite(p: dict) -> str:  # addresses as plain text (the report links nothing outside itself)
        text = re.sub(r"https?://", "", p["source"])
        return text if p["from"] == "built-in" else f"{text} (from {p['from']})"

    rows = [[p["key"], p["basis"], format_value(p["value"]), cite(p), p["date"], "yes" if p["checked"] else "no"]
            for p in priors]
    text = (f"{len(priors)} inputs were not given in the scenario and were taken from priors (the built-in "
            "sim/data/priors.yaml, see docs/priors.md, or simulation.priors_file). Give them in the scenario to "
            "replace them, or run with --no-priors to leave them out.")
    return ("Assumed from priors", [(f"<p>{html.escape(text)}</p>", text),
                                    (table_html(head, rows), table_md(head, rows))], [])


def compare_report(out: Path, report: dict, results: dict, resolved: dict | None = None) -> None:
    """The report of `sim compare`: the strategies side by side with P(over budget) and P(late),
    their costs against the budget line and their times against the deadline, and the pairs."""
    import yaml

    head, rows = tables.compare_head_rows(report)
    phead, prows = tables.pair_head_rows(report["pairs"])
    limits = tables.budget_deadline(report)
    text = tables.compare_title(report) + "." + (f" Limits: {limits}." if limits else "")
    budget, deadline = _limits(report)
    sections = [
        ("Strategies side by side", [_paragraph(text), _table(head, rows)],
         [("compare_cost.png", lambda: plot_compare(results, limit=budget, limit_label=f"budget {format_usd(budget)}"
                                                    if budget is not None else "")),
          ("compare_time.png", lambda: plot_compare(results, metric="makespan_days", limit=deadline,
                                                    limit_label=f"deadline: end of day {deadline:g}" if deadline
                                                    else ""))]),
        ("Pairs (common random numbers)", [_paragraph(PAIRS_TEXT), _table(phead, prows)], []),
    ]
    if "starts" in report:  # sim compare --starts: the start with the lowest expected CO2 and cost
        sections.append(_starts_section(report, results))
    write(out, f"trainsim comparison: {report['scenario']}", sections,
          yaml.safe_dump(resolved, sort_keys=False) if resolved else None)


def _starts_section(report: dict, results: dict) -> tuple:
    """`sim compare --starts`: the lowest expected CO2 and cost, as the terminal prints them, and
    each start's CO2."""
    return (f"Start dates ({report['starts']['key']})", [_lines(tables.starts_lines(report))],
            [("compare_co2.png", lambda: plot_compare(results, metric="co2_kg"))])


PAIRS_TEXT = ("Each pair ran with the same seed, so replication k of both saw the same random numbers where their "
              "models agree: A - B is the paired difference of cost, P(A cheaper) the share of replications where "
              "A cost less.")


def _limits(report: dict) -> tuple[float | None, float | None]:
    """The budget the strategies share, and the deadline as days after the start they share (the
    last day counts: finished by its end); None when there is none or they differ."""
    risks, starts = report.get("risk", {}), report.get("start", {})
    budgets = {r.get("budget_usd") for r in risks.values()}
    days = {(date.fromisoformat(str(r["deadline"])) - date.fromisoformat(starts[n])).days + 1
            if "deadline" in r and n in starts else None for n, r in risks.items()}
    return (budgets.pop() if len(budgets) == 1 else None), (days.pop() if len(days) == 1 else None)


def sensitivity_report(out: Path, name: str, rows: list[dict], tornado, resolved: dict | None = None,
                       sobol: dict | None = None, meta: dict | None = None, sobol_plot=None) -> None:
    """`tornado` (and `sobol_plot`): its Axes, or a function that draws it; `sobol`: the Sobol
    indices ({} or None when not computed); `meta`: the run's reps, n and seed."""
    import yaml

    head, body = tables.sensitivity_head_rows(rows, sobol or {})
    meta = meta or {}
    blocks = [_table(head, body)]
    if "reps" in meta:
        blocks.insert(0, _paragraph(tables.sensitivity_title(name, meta["reps"], meta["seed"]) + "."))
    sections = [("What drives the cost", blocks, [("tornado.png", tornado)])]
    if sobol:
        shead = ["input", "S1", "S1 95% half-width", "ST", "ST 95% half-width"]
        srows = [[k, f"{i['S1']:.2f}", f"{i['S1_conf']:.2f}", f"{i['ST']:.2f}", f"{i['ST_conf']:.2f}"]
                 for k, i in sobol["indices"]["cost_mean"].items()]
        text = (tables.sobol_note(sobol, meta.get("n", "?"), meta.get("reps", "?")) + ". S1: the share of the "
                "variance of the mean cost that the input explains alone; ST: with all its interactions.")
        sections.append(("Sobol indices of the mean cost", [_paragraph(text), _table(shead, srows)],
                         [("sobol.png", sobol_plot)] if sobol_plot is not None else []))
    write(out, f"trainsim sensitivity: {name}", sections, yaml.safe_dump(resolved, sort_keys=False) if resolved
          else None)


# --------------------------------------------------------------------------------------------
# The break-even sweep's report

COLOURS = ("#1f3f6e", "#c0504d", "#9bbb59", "#8064a2", "#f79646", "#4bacc6")


def plot_sweep_difference(report: dict, ax=None):
    """Each pair's paired cost difference A - B against the swept value: its mean (line) and the
    band from its 5th to its 95th percentile (the 90% band), zero as a black line, the break-even
    point (where the mean crosses zero) marked with its value, and where the band's edges cross."""
    ax = _axes(ax, size=(8, 4.5))
    key = tables.swept(report)
    by_pair: dict = {}
    for p in report["pairs"]:
        by_pair.setdefault((p["a"], p["b"]), []).append(p)
    breaks = {(b["a"], b["b"]): b for b in report["break_even"]}
    for i, ((a, b), ps) in enumerate(by_pair.items()):
        colour = COLOURS[i % len(COLOURS)]
        x = np.array([float(p["value"]) for p in ps])
        ax.fill_between(x, _drawable([p["diff_p5"] for p in ps]), _drawable([p["diff_p95"] for p in ps]),
                        color=colour, alpha=0.2, linewidth=0, label=f"{a} - {b}: 90% band (P5 to P95)")
        ax.plot(x, _drawable([p["diff_mean"] for p in ps]), color=colour, marker="o", label=f"{a} - {b}: mean")
        _mark_break_even(ax, breaks.get((a, b)), colour)
    if not by_pair:
        _no_data(ax, "pairs (one strategy only)")
    ax.axhline(0.0, color="black", linewidth=1)
    ax.yaxis.set_major_formatter(USD)
    ax.set_xlabel(key)
    ax.set_ylabel("paired cost difference A - B (USD)")
    ax.set_title("Break-even: below zero, A is cheaper")
    ax.legend(loc="best", fontsize="small")
    _tidy(ax)
    return ax


def _mark_break_even(ax, b: dict | None, colour: str) -> None:
    if b is None:
        return
    if b["break_even_mean"] is not None:
        x = b["break_even_mean"]
        ax.axvline(x, color=colour, linestyle="--", linewidth=1.5)
        ax.plot([x], [0.0], marker="D", color=colour, markersize=8, zorder=5)
        ax.annotate(f"break-even {tables.number(x)}", (x, 0.0), textcoords="offset points", xytext=(6, 8), color=colour)
    edges = [b[e] for e in ("band_crossing_p5", "band_crossing_p95") if b[e] is not None]
    if edges:
        ax.plot(edges, [0.0] * len(edges), linestyle="none", marker="|", color=colour, markersize=14,
                markeredgewidth=2, zorder=5, label="90% band crosses zero")


def plot_sweep_costs(report: dict, ax=None):
    """Each strategy's mean cost (line) and P5 to P95 (band) against the swept value."""
    ax = _axes(ax, size=(8, 4.5))
    by_strategy: dict = {}
    for r in report["costs"]:
        by_strategy.setdefault(r["strategy"], []).append(r)
    for i, (name, rs) in enumerate(by_strategy.items()):
        colour = COLOURS[i % len(COLOURS)]
        x = np.array([float(r["value"]) for r in rs])
        if len(x) > 1:
            ax.fill_between(x, _drawable([r["cost_usd_p5"] for r in rs]), _drawable([r["cost_usd_p95"] for r in rs]),
                            color=colour, alpha=0.15, linewidth=0)
        ax.plot(x, _drawable([r["cost_usd_mean"] for r in rs]), color=colour, marker="o", label=f"{name} (mean)")
    ax.yaxis.set_major_formatter(USD)
    ax.set_xlabel(tables.swept(report))
    ax.set_ylabel("project cost (USD)")
    ax.set_title("Cost of each strategy (mean; band P5 to P95)")
    ax.legend(loc="best", fontsize="small")
    _tidy(ax)
    return ax


def sweep_report(out: Path, report: dict, resolved: dict | None = None) -> None:
    """The report of `sim compare --sweep`: the paired difference with its 90% band against the
    swept value, the break-even points, each strategy's cost, and the tables the terminal shows."""
    import yaml

    sw = report["sweep"]
    where = (f" in strategy {sw['strategy']} only (the others as given)" if sw.get("strategy") else
             " in every strategy")
    text = (f"{report['scenario']}: {sw['key']} swept over {', '.join(tables.sweep_value(v) for v in sw['values'])}"
            f"{where}; {report['replications']} replications each, seed {report['seed']} (common random numbers).")
    lines = tables.break_even_lines(report)
    sections = [("Break-even", [_paragraph(text), *(_paragraph(x) for x in lines)],
                 [("sweep_difference.png", lambda: plot_sweep_difference(report))]),
                ("Paired cost difference at each value", [_table(*tables.sweep_pair_head_rows(report))], []),
                ("Cost of each strategy", [_table(*tables.sweep_head_rows(report))],
                 [("sweep_costs.png", lambda: plot_sweep_costs(report))])]
    write(out, f"trainsim sweep: {report['scenario']}, {tables.swept(report)}", sections,
          yaml.safe_dump(resolved, sort_keys=False) if resolved else None)


# --------------------------------------------------------------------------------------------
# The re-forecast's report


def _dates(ax) -> None:
    loc = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _fan(ax, fan, fill: str, line: str, label: str, z: int) -> bool:
    if fan is None or not len(fan):
        return False
    t = list(fan["time"])
    ax.fill_between(t, _drawable(fan["p5"]), _drawable(fan["p95"]), color=fill, alpha=0.6, linewidth=0,
                    label=f"{label}: P5 to P95", zorder=z)
    ax.plot(t, _drawable(fan["p50"]), color=line, marker=".", label=f"{label}: P50", zorder=z + 0.5)
    return True


def plot_reforecast_spend(actual, fan, baseline=None, ax=None, budget: float | None = None, deadline=None,
                          as_of=None):
    """Cumulative spend over calendar time: the actual spend (`actual`: (time, USD) points, from
    `sim.reforecasting.actual_spend`) up to the as-of date, then the re-forecast's fan (`fan`:
    time, p5, p50, p95 from `sim.stats.cumulative_spend_fan`), with the baseline forecast's fan
    behind it in a lighter colour; the budget a horizontal line, the deadline a vertical one."""
    ax = _axes(ax, size=(10, 4.5))
    drawn = _fan(ax, baseline, "#dddddd", "#a0a0a0", "baseline forecast", 1)
    drawn = _fan(ax, fan, "#9dbbe0", "#1f3f6e", "re-forecast", 2) or drawn
    if actual:
        t, v = zip(*actual, strict=True)
        ax.plot(list(t), _drawable(v), color="black", linewidth=2, label="actual", zorder=3)
        drawn = True
    if not drawn:
        _no_data(ax, "spend")
    if as_of is not None:
        ax.axvline(as_of, color="#555555", linestyle=":", linewidth=1, label=f"as of {as_of:%Y-%m-%d}")
    if budget is not None and np.isfinite(budget):
        ax.axhline(min(max(budget, -LIMIT), LIMIT), color="#c0504d", linewidth=1.5,
                   label=f"budget {format_usd(budget)}")
    if deadline is not None:
        ax.axvline(deadline, color="#c0504d", linestyle="--", linewidth=1.5, label=f"deadline {deadline}")
    _dates(ax)
    ax.yaxis.set_major_formatter(USD)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("cumulative spend (USD)")
    ax.set_title("Cumulative spend: actual to date, then the re-forecast")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")  # beside: the data stay clear
    _tidy(ax)
    return ax


def plot_eac_histogram(eac, ax=None, budget: float | None = None, baseline=None):
    """The estimate at completion of each replication (actual + remaining), over the baseline
    forecast's project cost (lighter, behind) when given; each as a share of its replications."""
    ax = _axes(ax)
    a = finite(eac)
    b = finite(baseline) if baseline is not None else np.array([])
    if a.size or b.size:
        bins, rng = min(40, max(20, max(a.size, b.size) // 5)), span(np.concatenate([a, b]))
        for x, colour, label in ((b, "#cccccc", "baseline forecast"), (a, "#4f81bd", "re-forecast")):
            if x.size:
                ax.hist(x, bins=bins, range=rng, weights=np.full(x.size, 1.0 / x.size), color=colour,
                        alpha=0.85, edgecolor="white", label=label)
        ax.legend(loc="best")
    else:
        _no_data(ax, "estimates at completion")
    _budget_line(ax, budget, "best")
    ax.xaxis.set_major_formatter(USD)
    ax.set_xlabel("estimate at completion (USD)")
    ax.set_ylabel("share of replications")
    ax.set_title("Estimate at completion: actual to date + the work left")
    _tidy(ax)
    return ax


def _paragraph(text: str) -> tuple[str, str]:
    return f"<p>{html.escape(text)}</p>", text


def _table(head: list[str], rows: list[list[str]]) -> tuple[str, str]:
    return table_html(head, rows), table_md(head, rows)


def _baseline_text(b: dict) -> str:
    base = b.get("baseline") or {}
    if base.get("source") in (None, "none"):
        return "No baseline forecast is drawn" + (f" ({base['error']})." if base.get("error") else ".")
    where = ("simulated now" if base.get("source") == "simulated"
             else f"read from {base.get('source')}" + ("" if base.get("same_scenario") else
                                                       " (run from another scenario: its hash differs)"))
    return (f"The baseline forecast (grey) is the original scenario from its start, {base.get('replications', 0):,} "
            f"replications, {where}.")


def _reforecast_text(b: dict) -> str:
    text = (f"Re-forecast at {b['as_of']} from the actuals: {format_usd(b['actual_to_date_usd'])} spent and "
            f"{b['actual_gpu_hours']:,.0f} accelerator-hours used to date; {b['done_fraction']:.1%} of the work "
            "done. The work left was simulated from the as-of date; the estimate at completion is the actual to "
            "date plus the cost of the work left.")
    risk = []
    if "p_over_budget" in b:
        risk.append(f"P(over budget) = {b['p_over_budget']:.1%}")
    if "p_late" in b:
        risk.append(f"P(late) = {b['p_late']:.1%}")
    return text + (" " + "; ".join(risk) + "." if risk else "") + " " + _baseline_text(b)


def _estimate_rows(b: dict) -> list[list[str]]:
    e, f = b["eac_usd"], b["finish_date"]
    return [["estimate at completion", *(format_usd(e[k]) for k in ("p5", "p50", "p95", "mean"))],
            ["finish date", f["p5"], f["p50"], f["p95"], ""]]


EV_ROWS = (("BAC", "budget_at_completion_usd", "budget at completion: the original scenario's cost at nominal inputs"),
           ("PV", "planned_value_usd", "planned value: what the baseline planned to spend by the as-of date"),
           ("EV", "earned_value_usd", "earned value: BAC times the share of the work done"),
           ("AC", "actual_cost_usd", "actual cost to date"),
           ("CPI", "cpi", "cost performance index, EV / AC (below 1: over cost)"),
           ("SPI", "spi", "schedule performance index, EV / PV (below 1: behind schedule)"),
           ("VAC", "variance_at_completion_usd", "variance at completion, BAC - mean estimate at completion "
                                                 "(negative: over)"))


def _ev_rows(ev: dict) -> list[list[str]]:
    def fmt(key: str) -> str:
        v = ev.get(key)
        return "n/a" if v is None else (format_usd(v) if key.endswith("_usd") else f"{v:.2f}")

    return [[name, fmt(key), meaning] for name, key, meaning in EV_ROWS]


def _notes(notes: list[str]) -> tuple[str, str]:
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"<p>Notes:</p><ul>{items}</ul>", "Notes:\n\n" + "\n".join(f"- {n}" for n in notes)


def reforecast_sections(b: dict, plots: list[tuple[str, object]]) -> list:
    """The re-forecast's own sections from its `reforecast` block (summary.json), with `plots`."""
    sections = [("Re-forecast", [_paragraph(_reforecast_text(b)),
                                 _table(["", "P5", "P50", "P95", "mean"], _estimate_rows(b))], plots)]
    if b.get("earned_value"):
        sections.append(("Re-forecast: earned value", [_table(["figure", "value", "what it is"],
                                                              _ev_rows(b["earned_value"]))], []))
    runs = b.get("runs", {})
    rows = [[w, f"{n:,}", f"{runs['running'].get(w, 0):,}", f"{runs['left'].get(w, 0):,}"]
            for w, n in runs.get("done", {}).items()]
    blocks = [_table(["workload", "runs done", "running", "left"], rows)]
    if b.get("notes"):
        blocks.append(_notes(b["notes"]))
    sections.append(("Re-forecast: runs", blocks, []))
    post = b.get("posterior") or {}
    blocks = ([_table(["key", "prior", "prior spread", "seen", "posterior", "posterior spread"],
                      posterior_rows(post))] if post
              else [_paragraph("No input was updated from the actuals (no interruption counts, or no uncertain "
                               "failure rate to update).")])
    sections.append(("Re-forecast: updated from what was seen", blocks, []))
    assumed = priors_section(b.get("priors_of_the_scenario") or [])  # what the original scenario took
    if assumed:
        sections.append(assumed)
    return sections


def reforecast_report(out: Path, loaded, summary: dict, reps, runs=None, *, scenario, actuals,
                      baseline=None, costs=None) -> None:
    """The report of `sim reforecast`: the re-forecast's sections (summary.json's `reforecast`
    block, the chart of cumulative actual spend followed by the forecast fan over the baseline's,
    the histogram of the estimate at completion), then the run sections of the work left.
    `loaded`, `summary`, `reps`, `runs`: the run of the work left; `scenario`: the original
    scenario; `actuals`: what sim.reforecasting.remaining read (sim.actuals.Actuals);
    `baseline`: the original scenario's replications (None: no baseline drawn); `costs`: each
    actuals run's cost to date, priced where the actuals give none (sim.reforecasting.Remaining)."""
    import yaml

    from sim.reforecasting import actual_spend
    from sim.stats import cumulative_spend_fan

    b = summary["reforecast"]
    budget, deadline = scenario.project.budget_usd, scenario.project.deadline
    actual = actual_spend(actuals, costs)
    fan = cumulative_spend_fan(reps, datetime.fromisoformat(b.get("as_of_time") or b["as_of"]),  # from the instant
                               offset=b["actual_to_date_usd"])
    base_fan = cumulative_spend_fan(baseline, scenario.project.start) if baseline is not None else None
    eac = b["actual_to_date_usd"] + finite(reps["cost_usd"])
    base_cost = baseline["cost_usd"] if baseline is not None else None
    plots = [("reforecast_spend.png", lambda: plot_reforecast_spend(actual, fan, base_fan, budget=budget,
                                                                    deadline=deadline, as_of=actuals.as_of)),
             ("eac_histogram.png", lambda: plot_eac_histogram(eac, budget=budget, baseline=base_cost))]
    sections = reforecast_sections(b, plots)
    sections += [(f"The work left: {h.lower()}" if not h.startswith("Assumed") else h, blocks, p)
                 for h, blocks, p in run_sections(loaded, summary, reps, runs)]
    write(out, f"trainsim re-forecast: {scenario.project.name} at {b['as_of']}", sections,
          yaml.safe_dump(loaded.resolved, sort_keys=False))
