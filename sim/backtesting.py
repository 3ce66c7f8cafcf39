"""Backtest: trainsim's forecasts against published figures of finished projects.

A case file is a normal scenario written only with what its team knew before training (sizes,
tokens, accelerators, dates, prices if published), the built-in priors filling the rest, plus two
blocks this module pops before loading it:

    case:     {name, kind: pretrain|finetune|reliability|arithmetic, description, in_sample, reps}
    expected: [{metric, value, workload, statistic, tolerance, precision, source, date, checked, note}, ...]

Each case is simulated `reps` times (the runner's chunks, so the numbers are the same whatever the
worker count), or `case.reps` times when the case asks for fewer (an expensive case). For each
expected figure the P5, P50 and P95 of the metric are compared with the published value: inside
[P5, P95] or not, P50 error = P50 / published - 1, and P95 / P5. A figure with
`statistic: mean` is a mean published by another simulator with the half-width of its interval as
`tolerance`: it is inside when trainsim's mean +- 3 standard errors meets the published mean +- its
interval, and its error is the mean's (mean / published - 1). The summary gives the coverage
(share of figures inside), the median |P50 error| and the median P95 / P5, overall, for large
pre-training runs, and for the cases whose figures no prior was fitted on.

The module is named apart from the API function `sim.backtest` (as sim.comparison is from
sim.compare), so that neither hides the other. `python -m sim.backtesting --write-docs` refreshes
the table in docs/validation.md.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.loader import Issue, Loaded, ScenarioError, load_data, read_text, read_yaml
from sim.outputs import write_bytes, write_json
from sim.records import ReplicationRecord
from sim.units import format_count, format_usd, parse_count, parse_usd

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "validation"  # the shipped cases
DOCS = ROOT / "docs" / "validation.md"
BEGIN, END = "<!-- BACKTEST -->", "<!-- /BACKTEST -->"
REPS = 200
SEED = 0
KINDS = ("pretrain", "finetune", "reliability", "arithmetic")
CASE_KEYS = ("name", "kind", "description", "in_sample", "reps")
EXPECTED_KEYS = ("metric", "value", "workload", "statistic", "tolerance", "precision", "source", "date", "checked",
                 "note")
STATISTICS = ("band", "mean")  # inside [P5, P95], or trainsim's mean +- SE_MULT standard errors
SE_MULT = 3.0
LARGE_RUN = 1000  # accelerators in one run from which a pre-training case counts as large
# metrics that exist per workload (gpu_hours_wl_<name>, ...); `_per_run` divides by the runs
WORKLOAD_METRICS = ("gpu_hours", "cost_usd", "runs")
PER_RUN = ("gpu_hours_per_run", "cost_usd_per_run")
METRICS = tuple(m for m in ReplicationRecord.METRICS if m != "finish_date")


@dataclass
class Case:
    file: str
    name: str
    kind: str
    description: str
    loaded: Loaded
    expected: list[dict]
    in_sample: str = ""
    large: bool = False
    reps: int | None = None  # at most this many replications (case.reps), None: the run's

    def replications(self, reps: int) -> int:
        return reps if self.reps is None else min(self.reps, reps)

    @property
    def has_mean(self) -> bool:
        """Whether a figure is a published mean (its standard error needs two replications)."""
        return any(e["statistic"] == "mean" for e in self.expected)


@dataclass
class BacktestResult:
    """Per figure `rows` (case, metric, p5, p50, p95, published, inside, p50_error, p95_p5 ...),
    the `summary`, the settings, and the folder written (None when not written)."""

    rows: list[dict]
    summary: dict
    cases: list[dict]
    reps: int
    seed: int
    runtime_s: float = 0.0
    out: Path | None = None
    failed: dict = field(default_factory=dict)  # case -> failed replications

    @property
    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def as_dict(self) -> dict:
        return {"reps": self.reps, "seed": self.seed, "runtime_s": round(self.runtime_s, 3),
                "summary": self.summary, "cases": self.cases, "rows": self.rows, "failed_replications": self.failed}


# --------------------------------------------------------------------------------------------
# Case files


def _problem(file: str, path: tuple, message: str, lines: dict) -> ScenarioError:
    return ScenarioError(file, [Issue(path, message, lines.get(path))])


def _case_block(raw: dict, file: str, lines: dict) -> dict:
    case = raw.get("case")
    if not isinstance(case, dict):
        raise _problem(file, ("case",), "a backtest case needs a `case:` mapping (name, kind, description)", lines)
    for k in case:
        if k not in CASE_KEYS:
            raise _problem(file, ("case", k), f"unknown key; a case has {', '.join(CASE_KEYS)}", lines)
    if not isinstance(case.get("name"), str) or not case["name"].strip():
        raise _problem(file, ("case", "name"), "needs a name (text)", lines)
    if case.get("kind") not in KINDS:
        raise _problem(file, ("case", "kind"), f"must be one of {', '.join(KINDS)}, got {case.get('kind')!r}", lines)
    n = case.get("reps")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
        raise _problem(file, ("case", "reps"), f"the replications this case runs at most, a whole number >= 2, "
                       f"got {n!r}", lines)
    return case


def _metric_problem(e: dict, workloads: set[str]) -> tuple[str, str] | None:
    """(key, message) when an expected figure's metric or workload cannot be read."""
    m, wl = e.get("metric"), e.get("workload")
    if not isinstance(m, str):
        return "metric", "needs a metric (text)"
    names = [p.strip().removesuffix("_wl") for p in m.split("+")]
    if wl is not None and wl not in workloads:
        return "workload", f"no workload named {wl!r} (workloads: {', '.join(sorted(workloads))})"
    for n in names:
        if n in PER_RUN and wl is None:
            return "metric", f"{n} needs a `workload`"
        if wl is not None and n not in WORKLOAD_METRICS + PER_RUN:
            return "metric", f"{n} is not known per workload; use one of {', '.join(WORKLOAD_METRICS + PER_RUN)}"
        if wl is None and n not in METRICS:
            return "metric", f"unknown metric {n!r}; use one of {', '.join(METRICS)} (sums with +)"
    return None


def _number(v: Any) -> float | None:
    """A figure as a number: 9.5, 2.788M, 3e9, $5.6M; None if it is none."""
    if isinstance(v, bool):
        return None
    for parse in (parse_count, parse_usd):
        try:
            x = float(parse(v))
        except (TypeError, ValueError):
            continue
        return x if math.isfinite(x) else None
    return None


def rounding_tolerance(value: float, digits: int) -> float:
    """Half a unit of the last of `digits` significant figures: a figure published as $2.5k (2
    figures) stands for any amount in [$2.45k, $2.55k), so it is matched within $50."""
    return 0.5 * 10 ** (math.floor(math.log10(value)) - digits + 1)


def _precision_tolerance(e: dict, i: int, file: str, lines: dict) -> float:
    d = e["precision"]
    if "tolerance" in e and e["tolerance"]:
        raise _problem(file, ("expected", i, "precision"), "give precision or tolerance, not both", lines)
    if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 15:
        raise _problem(file, ("expected", i, "precision"), "the significant figures the source printed, a whole "
                       f"number from 1 to 15 (2 for '$2.5k'), got {d!r}", lines)
    return rounding_tolerance(float(e["value"]), d)


def _expected_block(raw: dict, file: str, lines: dict, workloads: set[str]) -> list[dict]:
    exp = raw.get("expected")
    if not isinstance(exp, list) or not exp:
        raise _problem(file, ("expected",), "a backtest case needs an `expected:` list of published figures", lines)
    for i, e in enumerate(exp):
        if not isinstance(e, dict):
            raise _problem(file, ("expected", i), "expected a mapping {metric, value, source, ...}", lines)
        unknown = [k for k in e if k not in EXPECTED_KEYS]
        if unknown:
            raise _problem(file, ("expected", i, unknown[0]), f"unknown key; use {', '.join(EXPECTED_KEYS)}", lines)
        bad = _metric_problem(e, workloads)
        if bad:
            raise _problem(file, ("expected", i, bad[0]), bad[1], lines)
        for k in ("value", "tolerance"):
            v = _number(e.get(k, 0.0))
            if v is None or v < 0 or (k == "value" and v <= 0):
                raise _problem(file, ("expected", i, k), f"must be a number {'> 0' if k == 'value' else '>= 0'} "
                               f"(2.788M, $5.6M, 9.5), got {e.get(k)!r}", lines)
            e[k] = v
        if "precision" in e:
            e["tolerance"] = _precision_tolerance(e, i, file, lines)
        if e.setdefault("statistic", "band") not in STATISTICS:
            raise _problem(file, ("expected", i, "statistic"), f"must be one of {', '.join(STATISTICS)} (mean: a "
                           f"simulator's published mean, ± its interval as tolerance), got {e['statistic']!r}", lines)
        if not e.get("source"):
            raise _problem(file, ("expected", i, "source"), "name the source of the figure", lines)
        if not isinstance(e.get("checked", False), bool):
            raise _problem(file, ("expected", i, "checked"), "must be true or false", lines)
    return exp


def read_case(path: str | Path) -> Case:
    """One case file: the scenario loaded (priors filled), its case and expected blocks checked.
    Problems raise a ScenarioError naming the file and the key."""
    file = str(path)
    raw, lines = read_yaml(read_text(path, file), file)
    if not isinstance(raw, dict):
        raise ScenarioError(file, [Issue((), "expected a mapping with case, expected, project, pools and workloads")])
    rest = {k: v for k, v in raw.items() if k not in ("case", "expected")}
    case = _case_block(raw, file, lines)
    loaded = load_data(rest, file, lines)
    names = {w.name for w in loaded.scenario.workloads}
    expected = _expected_block(raw, file, lines, names)
    biggest = max(w.accelerators for w in loaded.scenario.workloads)
    return Case(file, case["name"], case["kind"], str(case.get("description", "")), loaded, expected,
                str(case.get("in_sample") or ""), case["kind"] == "pretrain" and biggest >= LARGE_RUN,
                case.get("reps"))


def read_cases(folder: str | Path) -> list[Case]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(str(folder), [Issue((), "no such folder of backtest cases")])
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise ScenarioError(str(folder), [Issue((), "no case files (*.yaml) in this folder")])
    cases = [read_case(f) for f in files]
    seen: dict[str, str] = {}
    for c in cases:
        if c.name in seen:
            raise ScenarioError(c.file, [Issue(("case", "name"), f"{c.name!r} is also the name in {seen[c.name]}")])
        seen[c.name] = c.file
    return cases


# --------------------------------------------------------------------------------------------
# Simulating and scoring


def replications(loaded: Loaded, reps: int, seed: int, workers: int = 1) -> tuple[pd.DataFrame, list[dict]]:
    """`reps` replications of a scenario in memory (the runner's chunks and backends: the same
    rows whatever `workers`), and the failed ones."""
    from sim.runner import Backend, Settings, _run_chunk

    settings = Settings(seed=seed, reps=reps, workers=workers)
    size = settings.chunk_size()
    # (chunk, first, end, strict, no part files, no per-run records kept): see sim.runner._chunks
    tasks = [(i, start, min(start + size, reps), False, None, 0) for i, start in enumerate(range(0, reps, size))]
    rows, errors = [], []
    with Backend(loaded, settings, len(tasks)) as backend:
        for res in backend.map(tasks, _run_chunk):
            rows += res.rows
            errors += res.errors
    return pd.DataFrame(rows), errors


SPREAD_METRICS = ("cost_usd", "gpu_hours", "makespan_days", "interruptions", "ettr")


def spread(loaded: Loaded, reps: int = REPS, seed: int = SEED) -> dict:
    """P5 / P50 / P95 (and mean) of the headline metrics over `reps` replications in memory: the
    quick forecast the one-line `sim estimate` adds to its point estimate."""
    t0 = time.perf_counter()
    df, errors = replications(loaded, min(reps, 10), seed)  # a scenario that cannot run fails fast
    if not df.empty and reps > 10:
        df, errors = replications(loaded, reps, seed)
    out: dict[str, Any] = {"replications": len(df), "failed_replications": len(errors), "seed": seed}
    if errors:
        out["first_error"] = str(errors[0].get("error", ""))
    if df.empty:
        return out
    df["interruptions"] = df["failures"] + df.get("job_failures", 0)
    for m in SPREAD_METRICS:
        if m in df:
            x = df[m].to_numpy(float)
            p5, p50, p95 = (float(v) for v in np.percentile(x, [5, 50, 95]))
            out[m] = {"p5": p5, "p50": p50, "p95": p95, "mean": float(x.mean())}
    out["runtime_s"] = round(time.perf_counter() - t0, 3)
    return out


def metric_values(reps: pd.DataFrame, metric: str, workload: str | None = None) -> np.ndarray:
    """The metric (a sum of metrics with +) in each replication; per workload when `workload`."""
    total = np.zeros(len(reps))
    for part in (p.strip().removesuffix("_wl") for p in metric.split("+")):
        if part in PER_RUN:
            base = part.removesuffix("_per_run")
            total += (reps[f"{base}_wl_{workload}"] / reps[f"runs_wl_{workload}"]).to_numpy(float)
        elif workload is not None:
            total += reps[f"{part}_wl_{workload}"].to_numpy(float)
        else:
            total += reps[part].to_numpy(float)
    return total


def compared(x: np.ndarray, quantiles: tuple[float, float, float], statistic: str, value: float,
             tol: float) -> tuple[bool, float, float | None]:
    """(inside, error, half-width of trainsim's interval) for one figure, `quantiles` its P5, P50
    and P95. `band`: the published value (+- tol) meets [P5, P95], error of the P50. `mean`:
    trainsim's mean +- 3 standard errors meets the published mean +- tol (its interval), error of
    the mean."""
    if statistic == "mean":
        mean, half = float(x.mean()), SE_MULT * float(x.std(ddof=1)) / math.sqrt(len(x))
        return abs(mean - value) <= tol + half, mean / value - 1.0, half
    p5, p50, p95 = quantiles
    return bool(p5 - tol <= value <= p95 + tol), p50 / value - 1.0, None


def score(case: Case, reps: pd.DataFrame) -> list[dict]:
    """One row per expected figure of a case."""
    out = []
    for e in case.expected:
        x = metric_values(reps, e["metric"], e.get("workload"))
        p5, p50, p95 = (float(v) for v in np.percentile(x, [5, 50, 95]))
        value, tol = float(e["value"]), float(e.get("tolerance", 0.0))
        inside, error, half = compared(x, (p5, p50, p95), e["statistic"], value, tol)
        out.append({
            "case": case.name, "kind": case.kind, "file": Path(case.file).name, "large": case.large,
            "in_sample": bool(case.in_sample), "metric": e["metric"], "workload": e.get("workload"),
            "statistic": e["statistic"], "reps": len(x), "p5": p5, "p50": p50, "p95": p95,
            "mean": float(x.mean()), "mean_half_width": half,
            "published": value, "tolerance": tol, "inside": bool(inside), "p50_error": error,
            "p95_p5": p95 / p5 if p5 > 0 else math.inf, "source": e["source"], "date": str(e.get("date", "")),
            "checked": bool(e.get("checked", False)), "note": str(e.get("note", "")).strip(),
        })
    return out


def _block(rows: list[dict]) -> dict:
    if not rows:
        return {"figures": 0, "inside": 0, "coverage": None, "median_abs_p50_error": None, "median_p95_p5": None}
    inside = sum(r["inside"] for r in rows)
    return {"figures": len(rows), "inside": inside, "coverage": inside / len(rows),
            "median_abs_p50_error": float(np.median([abs(r["p50_error"]) for r in rows])),
            "median_p95_p5": float(np.median([r["p95_p5"] for r in rows]))}


def summarize(rows: list[dict]) -> dict:
    """Coverage, median |P50 error| and median P95/P5: overall, large pre-training, the figures no
    prior was fitted on, and the non-arithmetic (forecast) figures."""
    return {"overall": _block(rows), "large_pretrain": _block([r for r in rows if r["large"]]),
            "out_of_sample": _block([r for r in rows if not r["in_sample"]]),
            "forecasts": _block([r for r in rows if r["kind"] != "arithmetic"])}


def _too_few_for_a_mean(case, reps: int, ran: int) -> ScenarioError:
    """A mean figure's standard error needs two replications: blame `--reps` when it asked for fewer,
    else the case (its replications failed)."""
    if reps < 2:
        return ScenarioError("command line", [Issue(("--reps",), (
            f"{Path(case.file).name} has a mean figure, whose standard error needs at least 2 replications; "
            f"give --reps 2 or more (got {reps})"))])
    return ScenarioError(case.file, [Issue(("case", "reps"), "a mean figure needs at least 2 replications for its "
                                           f"standard error; {ran} ran (the others failed)")])


def run(folder: str | Path | None = None, reps: int = REPS, seed: int = SEED, workers: int = 1,
        progress=None) -> BacktestResult:
    """Every case of `folder` (default: the shipped validation/ folder), simulated and scored.
    `progress(i, n, case_name)` is called before each case."""
    t0 = time.perf_counter()
    cases = read_cases(folder if folder is not None else FOLDER)
    rows, failed, info = [], {}, []
    for case in cases:  # refused before anything runs
        if reps < 2 and case.has_mean:
            raise _too_few_for_a_mean(case, reps, 0)
    for i, case in enumerate(cases):
        if progress:
            progress(i, len(cases), case.name)
        n = case.replications(reps)
        reps_df, errors = replications(case.loaded, n, seed, workers)
        if reps_df.empty:
            first = errors[0]["error"] if errors else "no replication ran"
            raise ScenarioError(case.file, [Issue((), f"every replication failed; the first: {first}")])
        if errors:
            failed[case.name] = len(errors)
        if len(reps_df) < 2 and case.has_mean:
            raise _too_few_for_a_mean(case, reps, len(reps_df))
        rows += score(case, reps_df)
        info.append({"name": case.name, "kind": case.kind, "file": Path(case.file).name, "large": case.large,
                     "reps": n, "description": case.description.strip(),
                     "in_sample": case.in_sample.strip(),
                     "priors": [u["key"] for u in case.loaded.priors]})
    return BacktestResult(rows, summarize(rows), info, reps, seed, time.perf_counter() - t0, None, failed)


# --------------------------------------------------------------------------------------------
# Formats and files


def fmt(metric: str, v: float) -> str:
    """A metric's value for people."""
    if not math.isfinite(v):
        return str(v)
    if "cost" in metric:
        return format_usd(v)
    if metric.startswith("makespan"):
        return f"{v:,.1f} d"
    if metric == "ettr":
        return f"{v:.1%}"
    if "hours" in metric:
        return format_count(v)
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:+.1%}"


def _published(r: dict) -> str:
    pub = fmt(r["metric"], r["published"]) + (f" ± {fmt(r['metric'], r['tolerance'])}" if r["tolerance"] else "")
    return ("mean " + pub) if r["statistic"] == "mean" else pub


def table_rows(result: BacktestResult) -> list[list[str]]:
    """case, metric, P5, P50, P95, published, inside?, P50 error (the mean's for a mean figure),
    P95/P5, replications."""
    out = []
    for r in result.rows:
        m = r["metric"] + (f" [{r['workload']}]" if r["workload"] else "")
        star = "*" if r["in_sample"] else ""
        err = _pct(r["p50_error"]) + (" (mean)" if r["statistic"] == "mean" else "")
        out.append([r["case"] + star, m, fmt(r["metric"], r["p5"]), fmt(r["metric"], r["p50"]),
                    fmt(r["metric"], r["p95"]), _published(r), "yes" if r["inside"] else "NO", err,
                    f"{r['p95_p5']:.2f}", str(r["reps"])])
    return out


def _fine(r: dict) -> str:
    """trainsim's mean +- its half-width against the published mean +- its interval, with as many
    decimals as show the smaller half-width to two figures (62.37% ± 0.21%, not 62.4% ± 0.2%)."""
    scale, unit = (100.0, "%") if r["metric"] == "ettr" else (1.0, " d" if r["metric"].startswith("makespan") else "")
    halves = [h * scale for h in (r["mean_half_width"], r["tolerance"]) if h and h > 0]
    dec = max(0, 1 - math.floor(math.log10(min(halves)))) if halves else 0

    def num(v: float) -> str:
        return f"{v * scale:,.{dec}f}{unit}"

    return (f"trainsim mean {num(r['mean'])} ± {num(r['mean_half_width'])} ({SE_MULT:g} standard errors, "
            f"{r['reps']} replications) against {num(r['published'])} ± {num(r['tolerance'])}")


def mean_lines(result: BacktestResult) -> list[str]:
    """For each mean figure: trainsim's mean +- 3 standard errors beside the published interval."""
    return [f"{r['case']} {r['metric']} (mean): {_fine(r)}" for r in result.rows if r["statistic"] == "mean"]


HEAD = ["case", "metric", "P5", "P50", "P95", "published", "inside", "P50 error", "P95/P5", "reps"]
LABELS = {"overall": "all figures", "large_pretrain": f"large pre-training (runs of >= {LARGE_RUN:,} accelerators)",
          "out_of_sample": "figures no prior was fitted on (cases without *)",
          "forecasts": "forecasts (arithmetic cases left out)"}


def summary_lines(summary: dict) -> list[str]:
    lines = []
    for key, label in LABELS.items():
        b = summary[key]
        if not b["figures"]:
            lines.append(f"{label}: no figures")
            continue
        lines.append(f"{label}: coverage {b['inside']}/{b['figures']} = {b['coverage']:.0%}, median |P50 error| "
                     f"{b['median_abs_p50_error']:.1%}, median P95/P5 {b['median_p95_p5']:.2f}")
    return lines


def markdown(result: BacktestResult) -> str:
    """The table and the summary as markdown (no timings: the same seed and reps give the same text)."""
    esc = [[c.replace("|", "\\|") for c in row] for row in table_rows(result)]
    lines = [f"{result.reps} replications per case (fewer where a case sets `case.reps`: the reps column), seed "
             f"{result.seed}. * = in-sample: a built-in prior was fitted on this case's figures, or the model was "
             "changed after it missed them (the case's `in_sample` says which). (mean) = a mean "
             f"published by another simulator: inside when trainsim's mean ± {SE_MULT:g} standard errors meets the "
             "published mean ± its interval; the error is the mean's.", "", "| " + " | ".join(HEAD) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(HEAD) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    lines += [""] + [f"- {s}" for s in mean_lines(result) + summary_lines(result.summary)]
    return "\n".join(lines) + "\n"


def write(result: BacktestResult, folder: Path) -> None:
    """backtest.json and backtest.md into `folder`."""
    write_json(folder / "backtest.json", result.as_dict())
    write_bytes(folder / "backtest.md", ("# Backtest\n\n" + markdown(result)).encode())


def docs_text(text: str, md: str) -> str:
    """`text` (docs/validation.md) with the block between the markers replaced by `md`."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    block = f"{BEGIN}\n{md}{END}"
    if not pattern.search(text):
        raise ValueError(f"{DOCS}: no {BEGIN} ... {END} markers")
    return pattern.sub(lambda _m: block, text, count=1)


def docs_block(text: str) -> str:
    """The markdown now between the markers."""
    m = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    return m.group(1) if m else ""


def write_docs(result: BacktestResult, path: Path = DOCS) -> Path:
    text = path.read_text()
    write_bytes(path, docs_text(text, markdown(result)).encode())
    return path


def _main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m sim.backtesting", description="backtest the shipped cases")
    ap.add_argument("--write-docs", action="store_true", help="refresh the table in docs/validation.md")
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args(argv)
    result = run(workers=a.workers)
    print(markdown(result), end="")
    if a.write_docs:
        print(f"wrote {write_docs(result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
