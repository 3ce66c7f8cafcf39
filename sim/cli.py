"""The `sim` command. The CLI owns the terminal; the library only logs.

Exit codes: 0 success, 2 a mistake in the input (located message, no traceback), 1 an internal
error (a bug: set TRAINSIM_DEBUG=1 to see the traceback).
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import math
import os
import sys
import traceback
import warnings
from datetime import date, datetime

from sim import __version__, outputs, present
from sim.api import SettingsError
from sim.loader import Issue, ScenarioError, load, load_data
from sim.plan import assumptions
from sim.runner import RunError

log = logging.getLogger("sim")


# --- commands ----------------------------------------------------------------------------------
def cmd_validate(a) -> int:
    from sim import api

    loaded = api.load(a.file, variant=a.variant, sets=a.set)
    scn = loaded.scenario
    from sim.distributions import nominal

    runs = sum(int(round(nominal(w.runs))) for w in scn.workloads)
    extra = f", {len(scn.variants)} variants" if scn.variants else ""
    print(f"{a.file}: OK: {scn.project.name}: {len(scn.pools)} pools, {len(scn.workloads)} workloads "
          f"({runs} runs{extra}), sha256 {loaded.sha256[:12]}")
    return 0


ONE_LINER_FLAGS = {
    ("workloads", 0, "params"): "--params", ("workloads", 0, "tokens"): "--tokens",
    ("workloads", 0, "flop_per_run"): "--flop", ("workloads", 0, "gpu_hours_per_run"): "--gpu-hours",
    ("workloads", 0, "mfu"): "--mfu", ("workloads", 0, "runs"): "--runs", ("workloads", 0, "method"): "--method",
    ("workloads", 0, "accelerators"): "--count", ("pools", 0, "count"): "--count",
    ("pools", 0, "accelerator"): "--accelerator", ("pools", 0, "pricing"): "--pricing",
    ("pools", 0, "provider"): "--provider", ("pools", 0, "price_usd_per_gpu_h"): "--price",
    ("project", "start"): "--start", ("workloads", 0): "--params/--tokens/--flop/--gpu-hours",
}


ONE_LINER_RUNS = 200_000  # runs simulated at most by the one-liner's quick forecast (about 3 s)


def _one_liner(a):
    if a.accelerator is None or a.count is None:
        raise ScenarioError("command line", [Issue((), "without a FILE, sim estimate needs --accelerator and "
                                                   "--count (and --params with --tokens, or --flop, or --gpu-hours)")])
    pool = {"name": "pool", "accelerator": a.accelerator, "count": a.count, "pricing": a.pricing}
    if a.provider:
        pool["provider"] = a.provider
    if a.price is not None:
        pool["price_usd_per_gpu_h"] = a.price
    if a.pricing == "owned":
        raise ScenarioError("command line", [Issue((), "--pricing owned needs a scenario file (purchase price, "
                                                   "lifetime, electricity price)")])
    work = {"name": "run", "runs": a.runs, "accelerators": a.count, "method": a.method}
    for key, val in (("params", a.params), ("tokens", a.tokens), ("flop_per_run", a.flop),
                     ("gpu_hours_per_run", a.gpu_hours)):
        if val is not None:
            work[key] = val
    if a.gpu_hours is None and a.mfu is not None:
        work["mfu"] = a.mfu
    elif a.gpu_hours is None and a.no_priors:
        raise ScenarioError("command line", [Issue(("--mfu",), "needed with --no-priors (or leave --no-priors out "
                                                   "to take the built-in MFU prior)")])
    raw = {"project": {"name": "estimate", "start": a.start or date.today().isoformat()},
           "pools": [pool], "workloads": [work]}
    if a.no_priors:
        raw["simulation"] = {"priors": "off"}
    try:
        return load_data(raw, "command line")
    except ScenarioError as e:
        issues: dict[tuple, Issue] = {}  # one flag can set two keys (--count): each message once
        for i in e.issues:
            flag = ONE_LINER_FLAGS.get(tuple(i.path)) or ONE_LINER_FLAGS.get(tuple(i.path[:2]))
            issue = Issue((flag,) if flag else i.path, i.message)
            issues.setdefault((tuple(issue.path), issue.message), issue)
        raise ScenarioError("command line", list(issues.values())) from None


def cmd_estimate(a) -> int:
    from sim.deterministic import estimate

    if a.file:
        flags = [f for f in ("params", "tokens", "accelerator", "count", "flop", "gpu_hours") if getattr(a, f)]
        if flags:
            raise ScenarioError(a.file, [Issue((), f"--{flags[0].replace('_', '-')} is for the one-line form "
                                               "without a FILE; with a file use --set KEY=VALUE")])
        loaded = load(a.file, variant=a.variant, sets=a.set)
    else:
        loaded = _one_liner(a)
    est = estimate(loaded)
    data = est.to_json()
    _refuse_non_finite(str(loaded.file), data)
    band = _one_liner_spread(a, loaded)
    if band is not None:
        data["forecast"] = band
    if a.json:
        print(json.dumps(data, indent=2, default=str, allow_nan=False))
        return 0
    print(present.estimate_text(loaded.scenario.project.name, est))
    assumed = present.priors_text(loaded.priors)
    if assumed:
        print(assumed)
    if band is not None:
        print(present.spread_text(band, loaded.priors))
    for line in present.assumption_lines(assumptions(loaded.scenario, loaded.catalog)):
        print(line)
    return 0


def _one_liner_spread(a, loaded):
    """The one-line form (no FILE) with priors on also simulates: a distribution with failures
    and the MFU spread, not only the point (issue 11)."""
    if a.file or a.no_priors:
        return None
    from sim.backtesting import REPS, spread
    from sim.schema import nominal_scenario

    runs = sum(w.runs for w in nominal_scenario(loaded.scenario).workloads)
    reps = min(REPS, int(ONE_LINER_RUNS // max(runs, 1)))  # a few seconds at most
    if reps < 20:
        return {"skipped": f"{runs:,} runs: too many for the quick forecast; `sim run` a scenario file"}
    return spread(loaded, reps=reps)


def _refuse_non_finite(file: str, est: dict) -> None:
    """A located ScenarioError when a number of the estimate overflowed (inf or NaN from extreme
    inputs): never published, nor printed as JSON's non-standard Infinity."""
    for i, (name, w) in enumerate(est["workloads"].items()):
        for key, v in w.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise ScenarioError(file, [Issue(("workloads", i), f"{name}: {key} is {v}, not a finite number: an "
                                                 "input is too large for the arithmetic (params, tokens, FLOP, "
                                                 "accelerator-hours or price near the limits of floating point)")])
    for key, v in est["total"].items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ScenarioError(file, [Issue(("pools",), f"the estimate's {key} is {v}, not a finite number: a "
                                             "commitment (count, term, lifetime or price) is too large for the "
                                             "arithmetic")])


def _number(value: str | None, kind: type = int, flag: str | None = None):
    """A number given on the command line as `flag` (None stays None); a message naming the flag
    when it is not one."""
    try:
        return kind(value) if value is not None else None
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ScenarioError("command line", [Issue((flag,) if flag else (), f"expected {what}, got {value!r}")]
                            ) from None


def _resume_hint(e) -> None:
    print(f"interrupted; finished chunks are kept: complete the run with  sim run --resume {e.out}", file=sys.stderr)


def cmd_run(a) -> int:
    from sim import api
    from sim.deterministic import estimate

    _check_export(a.export)
    seed, workers = _number(a.seed, flag="--seed"), _number(a.workers, flag="--workers")
    precision, reps = _number(a.precision, float, "--precision"), _number(a.reps, flag="--reps")
    common = {"workers": workers, "backend": a.backend, "scheduler": a.scheduler, "strict": a.strict,
              "progress": present.Progress()}
    try:
        if a.resume:
            if a.out or a.overwrite:
                raise api.SettingsError("--out" if a.out else "--overwrite", "does not go with --resume: the run "
                                        "is completed in the folder given to --resume")
            result = api.resume(a.resume, scenario=a.file, variant=a.variant, sets=a.set, reps=reps, seed=seed,
                                sampling=a.sampling, precision=precision, runs=a.runs, **common)
        elif not a.file:
            raise ScenarioError("command line", [Issue((), "sim run needs a scenario FILE (or --resume DIR)")])
        else:
            result = api.run(a.file, reps=reps, seed=seed, out=a.out or api.DEFAULT, sampling=a.sampling,
                             precision=precision, overwrite=a.overwrite, variant=a.variant, sets=a.set, runs=a.runs,
                             **common)
    except api.RunInterrupted as e:
        _resume_hint(e)
        return 130
    total = estimate(result.loaded).total
    print(present.run_text(result.summary, result.runtime_s, result.out, total))
    if a.export:
        _export(result.out, outputs.run_tables(result.summary, total), a.export)
    warning = present.failed_text(result.errors)
    if warning:
        print(warning, file=sys.stderr)
    return 0


def cmd_reforecast(a) -> int:
    from sim import api

    seed, workers, reps = (_number(x, flag=f) for x, f in ((a.seed, "--seed"), (a.workers, "--workers"),
                                                            (a.reps, "--reps")))
    as_of = _instant(a.as_of, "--as-of")
    try:
        result = api.reforecast(a.file, a.actuals, as_of=as_of, ledger=a.ledger, reps=reps, seed=seed,
                                out=a.out or api.DEFAULT, workers=workers, backend=a.backend, scheduler=a.scheduler,
                                overwrite=a.overwrite, variant=a.variant, sets=a.set, progress=present.Progress(),
                                baseline=a.baseline)
    except api.RunInterrupted as e:
        again = {"scenario": a.file, "actuals": a.actuals, "as_of": a.as_of, "ledger": a.ledger}
        print(f"interrupted: {api.reforecast_again(e.out, again)}", file=sys.stderr)
        return 130
    print(present.reforecast_text(result.summary, result.out))
    return 0


def _instant(value: str | None, flag: str):
    """A date (the end of that day) or a date-time such as 2027-01-15T12:00 (that moment)."""
    if value is None or len(value.strip()) == 10:
        return _date(value, flag)
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ScenarioError("command line", [Issue((flag,), f"expected a date such as 2026-06-30 or a date-time "
                                                   f"such as 2026-06-30T12:00, got {value!r}")]) from None


def _date(value: str | None, flag: str):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ScenarioError("command line", [Issue((flag,), f"expected a date such as 2026-06-30, got {value!r}")]
                            ) from None


def cmd_compare(a) -> int:
    from sim import api
    from sim import comparison as compare

    _check_export(a.export)
    only = [n.strip() for n in a.only.split(",") if n.strip()] if a.only else None
    reps, seed, workers = (_number(x, flag=f) for x, f in ((a.reps, "--reps"), (a.seed, "--seed"),
                                                             (a.workers, "--workers")))
    try:
        sweep = compare.sweep_values(a.sweep) if a.sweep else None
    except ValueError as e:
        raise ScenarioError("command line", [Issue((), str(e))]) from None
    options = {"only": only, "reps": reps, "seed": seed, "out": a.out or api.DEFAULT, "workers": workers,
               "backend": a.backend, "scheduler": a.scheduler, "sampling": a.sampling, "overwrite": a.overwrite,
               "sets": a.set, "progress": present.Progress()}
    if a.starts and sweep is not None:
        raise SettingsError("--starts", "give --starts or --sweep, not both")
    try:
        if a.starts:
            result = api.compare_starts(a.file, a.starts, key=a.start_key, **options)
            print(present.compare_text(result.report))
            print(present.starts_text(result.report))
        elif sweep is None:
            result = api.compare(a.file, **options)
            print(present.compare_text(result.report))
        else:
            result = api.sweep(a.file, *sweep, **options)
            print(present.sweep_text(result.report))
    except api.RunInterrupted as e:
        _resume_hint(e)
        raise KeyboardInterrupt from None
    if a.export:
        _export(result.out, outputs.compare_tables(result.report), a.export, "compare")
    print(f"results in {result.out}")
    return 0


def _check_export(fmt: str | None) -> None:
    """Before any simulation: a clear exit-2 message when --format xlsx cannot be written."""
    problem = outputs.xlsx_missing() if fmt == "xlsx" else None
    if problem:
        raise SettingsError("--format", problem)


def _export(folder, tables: dict, fmt: str, stem: str = "summary") -> None:
    paths = outputs.export_tables(folder, tables, fmt, stem)
    print(f"{fmt}: " + ", ".join(str(p) for p in paths))


def cmd_sensitivity(a) -> int:
    from sim import api

    if a.analyse:
        if a.file:
            raise ScenarioError("command line", [Issue(("--analyse",), "re-analyses a stored run; give no FILE")])
        result = api.analyse(a.analyse)
        m = result.meta
        print(present.sensitivity_text(result.tornado, result.sobol, m["reps"], m["n"],
                                       m["seed"], m["scenario"], result.out))
        return 0
    if not a.file:
        raise ScenarioError("command line", [Issue((), "sim sensitivity needs a scenario FILE (or --analyse DIR)")])
    seed, reps, n, workers = (_number(x, flag=f) for x, f in ((a.seed, "--seed"), (a.reps, "--reps"), (a.n, "--n"),
                                                              (a.workers, "--workers")))
    result = api.sensitivity(a.file, reps=reps, n=n, seed=seed, sobol=not a.no_sobol, out=a.out or api.DEFAULT,
                             overwrite=a.overwrite, workers=workers, backend=a.backend, scheduler=a.scheduler,
                             variant=a.variant, sets=a.set)
    print(present.sensitivity_text(result.tornado, result.sobol, reps, n, result.meta["seed"],
                                   result.meta["scenario"], result.out))
    return 0


def cmd_backtest(a) -> int:
    from sim import api, backtesting

    reps, seed, workers = (_number(x, flag=f) for x, f in ((a.reps, "--reps"), (a.seed, "--seed"),
                                                             (a.workers, "--workers")))
    reps, seed, workers = (backtesting.REPS if reps is None else reps, backtesting.SEED if seed is None else seed,
                           workers or 1)
    if a.write_docs and (a.dir or reps != backtesting.REPS or seed != backtesting.SEED):
        raise api.SettingsError("--write-docs", f"refreshes the table of the shipped cases in docs/validation.md: "
                                f"give no DIR and the default --reps {backtesting.REPS} and --seed {backtesting.SEED}")
    result = api.backtest(a.dir, reps=reps, seed=seed, workers=workers, out=a.out or api.DEFAULT,
                          overwrite=a.overwrite, progress=present.case_progress())
    if a.json:
        print((result.out / "backtest.json").read_text(), end="")
    else:
        print(present.backtest_text(result))
    if a.write_docs:
        print(f"table written to {backtesting.write_docs(result)}", file=sys.stderr)
    return 0


def cmd_calibrate(a) -> int:
    from sim import api

    result = api.calibrate(a.past, out=a.out, overwrite=a.overwrite)
    print(present.calibrate_text(result))
    return 0


def cmd_catalog(a) -> int:
    from sim.catalog import builtin

    cat = builtin()
    if a.coverage:
        from sim.catalog import coverage_markdown

        print(coverage_markdown(cat))
        return 0
    accs = [x for x in cat.accelerators.values() if not a.accelerator or x.id in a.accelerator]
    if a.accelerator:
        unknown = sorted(set(a.accelerator) - set(cat.accelerators))
        if unknown:
            raise ScenarioError("command line", [Issue((), f"unknown accelerator {unknown[0]!r}; known: "
                                                       f"{', '.join(sorted(cat.accelerators))}")])
    prices = [p for p in _catalog_rows(cat, a) if p.accelerator in {x.id for x in accs}]
    if a.json:
        from dataclasses import asdict

        print(json.dumps({"accelerators": [asdict(x) for x in accs], "prices": [asdict(p) for p in prices]},
                         indent=2, default=str))
        return 0
    print(present.table(["id", "name", "dense BF16/FP16", "TDP", "memory", "source date"],
                [[x.id, x.name, f"{x.peak_flop_per_s / 1e12:,.0f} TFLOP/s", f"{x.tdp_w:.0f} W",
                  f"{x.memory_gb:.0f} GB" if x.memory_gb else "-", str(x.date)] for x in accs], right={2, 3, 4}))
    print()
    print(present.table(["accelerator", "provider", "tier", "USD/accel-h", "in force from", "region"],
                [[p.accelerator, p.provider, p.tier, f"{p.usd_per_gpu_h:.3f}", str(p.date), p.region]
                 for p in sorted(prices, key=lambda p: (p.accelerator, p.provider, p.tier, p.date))], right={3}))
    if a.sources:
        print()
        for x in accs:
            print(f"{x.id}: {x.source}" + (f" ({x.note})" if x.note else ""))
        for p in prices:
            print(f"{p.accelerator} {p.label()}: {p.source}" + (f" ({p.note})" if p.note else ""))
    else:
        print("\n(sources and notes: sim catalog --sources)")
    if a.stale:
        print(f"\n{len(prices)} price(s) in force on {a.as_of or date.today()} are more than a year old")
    return 0


def _catalog_rows(cat, a) -> list:
    """The price rows `sim catalog` shows: one provider's (--provider, any case), and with --stale
    only the prices in force (on --as-of, default today) that are more than a year old."""
    rows = list(cat.prices)
    if a.provider is not None:
        unknown = cat.unknown_provider(a.provider)
        if unknown:
            raise ScenarioError("command line", [Issue(("--provider",), unknown)])
        rows = [p for p in rows if p.provider == cat.provider_id(a.provider)]
    if a.stale:
        stale = set(cat.stale(_date(a.as_of, "--as-of") or date.today()))
        rows = [p for p in rows if p in stale]
    elif a.as_of is not None:
        raise ScenarioError("command line", [Issue(("--as-of",), "only used with --stale")])
    return rows


def cmd_grid(a) -> int:
    from sim.catalog import builtin

    cat = builtin()
    for n in a.name:
        if n not in cat.profiles:
            close = difflib.get_close_matches(n, list(cat.profiles), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "; `sim grid` lists them"
            raise ScenarioError("command line", [Issue((), f"unknown grid profile or region {n!r}{hint}")])
    if a.json:
        own = {k: p for k, p in cat.profiles.items() if k == p.name and (not a.name or k in a.name)}
        own |= {cat.profiles[n].name: cat.profiles[n] for n in a.name}
        print(json.dumps({"profiles": {k: {"title": p.title, "basis": p.basis, "date": p.date,
                                           "annual_mean": p.annual_mean, "source": p.source, "checked": p.checked,
                                           "gco2_per_kwh": p.table} for k, p in own.items()},
                          "regions": {k: vars(r) for k, r in cat.grid_regions.items()}}, indent=2))
        return 0
    print(present.grid_text(cat.profiles, cat.grid_regions, a.name, a.sources))
    return 0


# --- parser ------------------------------------------------------------------------------------
def _scenario_args(p, required: bool = True) -> None:
    p.add_argument("file", nargs=None if required else "?", metavar="FILE", help="scenario YAML file")
    p.add_argument("--variant", help="apply the named variant from the file's `variants:`")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key, e.g. --set workloads[pretrain].mfu=0.35 (repeatable)")
    _no_priors(p)


def _no_priors(p) -> None:
    p.add_argument("--no-priors", dest="no_priors", action="store_true",
                   help="leave out what the scenario does not give (no failures, no checkpoint cost; MFU must be "
                   "given) instead of taking the built-in priors: the same as simulation.priors: off")


def _add_validate(sub) -> None:
    p = sub.add_parser("validate", help="check a scenario file")
    _scenario_args(p)
    p.set_defaults(func=cmd_validate)


def _add_estimate(sub) -> None:
    p = sub.add_parser("estimate", help="deterministic cost estimate (no queueing, failures or preemption)",
                       description="Deterministic estimate per workload and in total. Give a FILE, or describe "
                       "one run on the command line: sim estimate --params 7B --tokens 2T --accelerator h100 "
                       "--count 512 --pricing on_demand")
    _scenario_args(p, required=False)
    p.add_argument("--json", action="store_true", help="print JSON")
    g = p.add_argument_group("one-line form (no FILE)")
    g.add_argument("--params", help="model parameters, e.g. 7B")
    g.add_argument("--tokens", help="training tokens, e.g. 2T")
    g.add_argument("--flop", help="training FLOP per run, instead of params x tokens")
    g.add_argument("--gpu-hours", dest="gpu_hours", help="accelerator-hours per run, instead of FLOP")
    g.add_argument("--accelerator", help="catalog id (see sim catalog)")
    g.add_argument("--count", help="accelerators per run")
    g.add_argument("--pricing", default="on_demand", help="on_demand | spot | reserved (default on_demand)")
    g.add_argument("--provider", help="catalog provider, e.g. gcp, aws (default: median of providers)")
    g.add_argument("--price", help="USD per accelerator-hour, instead of the catalog's")
    g.add_argument("--mfu", help="model FLOP utilisation (default: the built-in prior for the accelerator and size)")
    g.add_argument("--method", default="full", help="full (k=6) | full_recompute (k=8) | lora (k=4)")
    g.add_argument("--runs", default="1", help="number of runs (default 1)")
    g.add_argument("--start", help="date the run starts, prices in force then (default today)")
    p.set_defaults(func=cmd_estimate)


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="simulate the project: many replications with queueing, failures, "
                       "preemption, checkpoints and moving prices")
    _scenario_args(p, required=False)
    p.add_argument("--reps", help="replications (default: simulation.replications; with --precision, the cap, "
                   "default 100,000)")
    p.add_argument("--seed", help="root seed (default: simulation.seed)")
    p.add_argument("--out", help="result folder (default outputs/<project name>/<timestamp>/)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out folder")
    p.add_argument("--workers", help="processes (default: the machine's cores)")
    p.add_argument("--backend", choices=["process", "dask"], default="process",
                   help="process (default) or dask (a Dask cluster: --scheduler, or a local one)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--sampling", choices=["random", "lhs", "sobol"], help="overrides simulation.sampling")
    p.add_argument("--precision", help="add replications until the 95%% CI of mean and P95 cost are within this "
                   "relative half-width (e.g. 0.01), or --reps is reached")
    p.add_argument("--strict", action="store_true", help="stop at the first failing replication")
    p.add_argument("--resume", metavar="DIR", help="complete an interrupted run in DIR")
    _format_arg(p)
    p.add_argument("--runs", help="per-run records kept in runs.parquet: all | none | sample:N (the first N "
                   "replications') | auto (all up to 5,000,000 rows; default: simulation.runs)")
    p.set_defaults(func=cmd_run)


def _format_arg(p) -> None:
    p.add_argument("--format", choices=["csv", "xlsx"], dest="export",
                   help="also write the headline table, the risk figures and the spend by period for a spreadsheet: "
                   "CSV files, or one .xlsx workbook (needs openpyxl)")


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="run the base scenario and its variants with common random numbers "
                       "and compare them; or sweep one key to find break-even points")
    p.add_argument("file", metavar="FILE", help="scenario YAML file with `variants:`")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key in all")
    _no_priors(p)
    p.add_argument("--only", help="comma-separated strategies to run (base and variant names)")
    p.add_argument("--sweep", metavar="KEY=START:STOP:STEP", help="run every strategy at each value of KEY")
    p.add_argument("--starts", metavar="DATE,DATE,...", help="run the scenario (or the --only strategies) once per "
                   "start date and name the start with the lowest expected CO2 and the one with the lowest cost")
    p.add_argument("--start-key", default="project.start", metavar="KEY",
                   help="the date --starts sets (default project.start; e.g. workloads[pretrain].earliest_start)")
    p.add_argument("--reps", help="replications per strategy (default: simulation.replications)")
    p.add_argument("--seed", help="root seed, shared by all strategies (default: simulation.seed)")
    _out_and_backend(p, "-compare")
    p.add_argument("--sampling", choices=["random", "lhs", "sobol"])
    _format_arg(p)
    p.set_defaults(func=cmd_compare)


def _add_sensitivity(sub) -> None:
    p = sub.add_parser("sensitivity", help="which uncertain inputs drive cost and time: tornado and Sobol "
                       "indices")
    _scenario_args(p, required=False)
    p.add_argument("--analyse", metavar="DIR", help="re-analyse a stored sensitivity run in DIR (no simulation)")
    p.add_argument("--reps", default="20", help="replications per evaluation point (default 20)")
    p.add_argument("--n", default="64", help="Saltelli base sample size, a power of two (default 64)")
    p.add_argument("--seed", help="root seed (default: simulation.seed)")
    p.add_argument("--out", help="result folder (default outputs/<project>-sensitivity/<timestamp>/)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out folder")
    p.add_argument("--no-sobol", action="store_true", help="the tornado only")
    p.add_argument("--workers", help="processes evaluating points (default: the machine's cores)")
    p.add_argument("--backend", choices=["process", "dask"], default="process")
    p.add_argument("--scheduler", help="Dask scheduler address")
    p.set_defaults(func=cmd_sensitivity)


def _add_backtest(sub) -> None:
    p = sub.add_parser("backtest", help="forecast published projects from what their teams knew before training and "
                       "compare with the published figures")
    p.add_argument("dir", metavar="DIR", nargs="?", help="folder of case files (default: the shipped validation/)")
    p.add_argument("--reps", help="replications per case (default 200; a case's `case: {reps: N}` caps its own)")
    p.add_argument("--seed", help="root seed (default 0)")
    p.add_argument("--workers", help="processes (default 1; the results do not depend on it)")
    p.add_argument("--out", help="folder for backtest.json and backtest.md (default outputs/backtest/<timestamp>/)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out folder")
    p.add_argument("--json", action="store_true", help="print backtest.json instead of the table")
    p.add_argument("--write-docs", action="store_true", help="refresh the table in docs/validation.md")
    p.set_defaults(func=cmd_backtest)


def _add_catalog(sub) -> None:
    p = sub.add_parser("catalog", help="list built-in accelerators and prices")
    p.add_argument("accelerator", nargs="*", help="only these accelerator ids")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--sources", action="store_true", help="print the source of every figure")
    p.add_argument("--provider", help="only this provider's prices (any case, e.g. aws, GCP)")
    p.add_argument("--stale", action="store_true", help="only prices in force that are more than a year old")
    p.add_argument("--as-of", dest="as_of", metavar="DATE", help="with --stale: the day to judge from (default: today)")
    p.add_argument("--coverage", action="store_true", help="print the coverage table of docs/catalog.md (markdown)")
    p.set_defaults(func=cmd_catalog)


def _add_grid(sub) -> None:
    p = sub.add_parser("grid", help="list the shipped grid carbon-intensity profiles and the cloud regions that "
                       "name them")
    p.add_argument("name", nargs="*", help="show these profiles or regions in detail (by month and hour)")
    p.add_argument("--json", action="store_true", help="print JSON (with the 12 x 24 tables)")
    p.add_argument("--sources", action="store_true", help="print the source of every profile")
    p.set_defaults(func=cmd_grid)


def _add_reforecast(sub) -> None:
    p = sub.add_parser("reforecast", help="re-forecast a running project from its actuals: estimate at "
                       "completion, finish date, risks, earned value")
    _scenario_args(p)
    p.add_argument("--actuals", required=True, metavar="PATH", help="actuals: CSV or Parquet (one row per run), "
                   "or Slurm sacct --parsable2 output (docs/actuals.md)")
    p.add_argument("--ledger", metavar="PATH", help="spend ledger CSV (date, amount_usd, pool) for costs not tied "
                   "to runs")
    p.add_argument("--as-of", dest="as_of", metavar="DATE", help="the moment the actuals describe: a date (the "
                   "end of that day) or a date-time such as 2027-01-15T12:00 (default: the latest time in them)")
    p.add_argument("--baseline", metavar="DIR", help="a `sim run` folder of the original scenario: its replications "
                   "are the baseline forecast drawn in the report (default: simulate it, at most 200 replications)")
    p.add_argument("--reps", help="replications (default: simulation.replications)")
    p.add_argument("--seed", help="root seed (default: simulation.seed)")
    _out_and_backend(p, "-reforecast")
    p.set_defaults(func=cmd_reforecast)


def _out_and_backend(p, suffix: str) -> None:
    """--out, --overwrite and where the replications run (--workers, --backend, --scheduler)."""
    p.add_argument("--out", help=f"result folder (default outputs/<project>{suffix}/<timestamp>/)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out folder")
    p.add_argument("--workers", help="processes (default: the machine's cores)")
    p.add_argument("--backend", choices=["process", "dask"], default="process")
    p.add_argument("--scheduler", help="Dask scheduler address")


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="fit your own priors (MFU, failure rate) from finished projects' scenarios "
                       "and actuals", description="Fit priors from finished projects: each PAST is "
                       "SCENARIO.yaml:ACTUALS (CSV, Parquet or sacct --parsable2 output) or a folder holding "
                       "scenario.yaml and one of actuals.csv, actuals.parquet, sacct.txt. Writes a priors file for "
                       "simulation.priors_file (docs/priors.md, 'Calibrating to your own projects').")
    p.add_argument("past", nargs="+", metavar="PAST", help="SCENARIO.yaml:ACTUALS, or a folder")
    p.add_argument("--out", required=True, metavar="FILE", help="the priors file to write, e.g. priors.yaml")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_calibrate)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sim", description="Forecast the cost and duration of a deep-learning "
                                 "training project from a YAML scenario.")
    ap.add_argument("--version", action="version", version=f"trainsim {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_validate(sub)
    _add_estimate(sub)
    _add_run(sub)
    _add_compare(sub)
    _add_sensitivity(sub)
    _add_backtest(sub)
    _add_reforecast(sub)
    _add_calibrate(sub)
    _add_catalog(sub)
    _add_grid(sub)
    return ap


NOISY = ("distributed", "tornado", "bokeh")  # a local Dask cluster's loggers: INFO lines only with -v


class _Quiet(logging.Filter):
    """Drops the INFO lines of a local Dask cluster (scheduler, nanny, worker) unless -v."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith(NOISY)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A Python warning (numpy's overflow or invalid value...) as one log line, without the file
    paths and source lines Python would print (TRAINSIM_DEBUG=1 shows them)."""
    log.warning("%s: %s (a number in this run may be inaccurate)", category.__name__, message)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        for f in [f for f in handler.filters if isinstance(f, _Quiet)]:
            handler.removeFilter(f)
        if not verbose:
            handler.addFilter(_Quiet())


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    if getattr(a, "no_priors", False) and isinstance(getattr(a, "set", None), list):
        a.set.append("simulation.priors=off")
    _logging(a.verbose)
    shown = warnings.showwarning
    if not os.environ.get("TRAINSIM_DEBUG"):
        warnings.showwarning = _show_warning
    try:
        return _dispatch(a)
    finally:
        warnings.showwarning = shown


def _dispatch(a) -> int:
    """Runs the command; its exit code (errors printed here)."""
    try:
        return a.func(a)
    except ScenarioError as e:
        print(e.format(), file=sys.stderr)
        return 2
    except SettingsError as e:  # a setting out of range, named by its flag
        print(ScenarioError("command line", [Issue((e.option,) if e.option else (), e.message)]).format(),
              file=sys.stderr)
        return 2
    except RunError as e:  # a run that cannot go on
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # an internal error: a bug, not the user's mistake
        if os.environ.get("TRAINSIM_DEBUG"):
            traceback.print_exc()
        print(f"internal error: {type(e).__name__}: {e} (a bug in trainsim; set TRAINSIM_DEBUG=1 for the "
              "traceback and please report it)", file=sys.stderr)
        return 1
