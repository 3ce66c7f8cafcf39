"""The `sim` command. The CLI owns the terminal; the library only logs.

Exit codes: 0 success, 2 a mistake in the input (located message, no traceback), 1 an internal
error (a bug: set TRAINSIM_DEBUG=1 to see the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from datetime import date, datetime
from pathlib import Path

from sim import __version__
from sim.loader import Issue, ScenarioError, load, load_data
from sim.units import format_count, format_hours, format_kg, format_kwh, format_usd

log = logging.getLogger("sim")


# --- table printing ----------------------------------------------------------------------------
def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right if right is not None else set(range(1, len(headers)))
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]

    def fmt(row):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                                        strict=True)))

    line = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), line, *(fmt(r) for r in rows)])


# --- commands ----------------------------------------------------------------------------------
def cmd_validate(a) -> int:
    loaded = load(a.file, variant=a.variant, sets=a.set)
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
    if a.gpu_hours is None:
        work["mfu"] = a.mfu
    raw = {"project": {"name": "estimate", "start": a.start or date.today().isoformat()},
           "pools": [pool], "workloads": [work]}
    try:
        return load_data(raw, "command line")
    except ScenarioError as e:
        issues = []
        for i in e.issues:
            flag = ONE_LINER_FLAGS.get(tuple(i.path)) or ONE_LINER_FLAGS.get(tuple(i.path[:2]))
            issues.append(Issue((flag,) if flag else i.path, i.message))
        raise ScenarioError("command line", issues) from None


def cmd_estimate(a) -> int:
    from sim.estimate import estimate

    if a.file:
        flags = [f for f in ("params", "tokens", "accelerator", "count", "flop", "gpu_hours") if getattr(a, f)]
        if flags:
            raise ScenarioError(a.file, [Issue((), f"--{flags[0].replace('_', '-')} is for the one-line form "
                                               "without a FILE; with a file use --set KEY=VALUE")])
        loaded = load(a.file, variant=a.variant, sets=a.set)
    else:
        loaded = _one_liner(a)
    est = estimate(loaded)
    if a.json:
        print(json.dumps(est.to_json(), indent=2, default=str))
        return 0
    scn = loaded.scenario
    print(f"Deterministic estimate: {scn.project.name} (start {est.start}; no queueing, failures or preemption)")
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
    print(table(["workload", "runs", "per run on", "FLOP/run", "GPU-h/run", "wall/run", "$/GPU-h", "cost/run",
                 "cost", "energy", "CO2"], rows, right=set(range(3, 11))))
    for w in est.workloads:
        print(f"  {w.name}: price from {w.price_source}")
    return 0


def _default_out(name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("outputs") / name / stamp


def cmd_run(a) -> int:
    from sim import outputs, runner
    from sim.estimate import estimate

    state = None
    if a.resume:
        state_file = Path(a.resume) / runner.PARTS / "state.json"
        if not state_file.exists():
            raise ScenarioError("command line", [Issue(("--resume",), f"{a.resume}: no interrupted run to resume "
                                                       f"(no {runner.PARTS}/state.json)")])
        state = json.loads(state_file.read_text())
        a.file = a.file or state.get("file")
        a.variant = a.variant or state.get("variant")
        a.set = a.set or state.get("set") or []
    if not a.file:
        raise ScenarioError("command line", [Issue((), "sim run needs a scenario FILE (or --resume DIR)")])
    loaded = load(a.file, variant=a.variant, sets=a.set)
    scn = loaded.scenario
    try:
        seed = int(a.seed) if a.seed is not None else scn.simulation.seed
        workers = int(a.workers) if a.workers is not None else runner.default_workers()
        precision = float(a.precision) if a.precision is not None else None
        reps = int(a.reps) if a.reps is not None else (100_000 if precision else scn.simulation.replications)
    except ValueError as e:
        raise ScenarioError("command line", [Issue((), f"expected a number: {e}")]) from None
    if state is not None:
        seed, reps, precision = state["seed"], state["reps"], state["precision"]
    if a.scheduler and a.backend != "dask":
        raise ScenarioError("command line", [Issue(("--scheduler",), "goes with --backend dask")])
    if precision is not None and (a.sampling or scn.simulation.sampling) != "random":
        raise ScenarioError("command line", [Issue(("--precision",), "needs random sampling: an LHS or Sobol design "
                                                   "cut short is not stratified, and its points are not independent "
                                                   "(use --sampling random)")])
    if reps < 1 or seed < 0 or workers < 1 or (precision is not None and not 0 < precision < 1):
        raise ScenarioError("command line", [Issue((), "--reps and --workers must be >= 1, --seed >= 0, "
                                                   "--precision between 0 and 1 (e.g. 0.01)")])
    settings = runner.Settings(seed=seed, reps=reps, method=a.sampling or scn.simulation.sampling, workers=workers,
                               backend=a.backend, scheduler=a.scheduler, strict=a.strict, precision=precision)
    if state is not None:
        settings.method, settings.chunk = state["method"], state["chunk"]
    out = Path(a.resume) if a.resume else (Path(a.out) if a.out else _default_out(scn.project.name))
    if not a.resume:
        try:
            outputs.prepare_dir(out, a.overwrite)
        except outputs.OutputError as e:
            raise ScenarioError("command line", [Issue(("--out",), str(e))]) from None
    result, summary = _simulate(loaded, settings, out, a.file, a.variant, a.set, resume=bool(a.resume))
    if result is None:
        return 130
    _print_run(scn, loaded, summary, result, out, estimate)
    return 0


def _simulate(loaded, settings, out: Path, file, variant, sets, resume: bool = False):
    """Run the replications into `out` and write summary.json and manifest.json. Returns (None,
    None) when interrupted (the finished chunks are kept for --resume)."""
    from sim import outputs, runner
    from sim.engine import SimulationError
    from sim.montecarlo import SampleError

    bar = _progress(settings.reps)
    try:
        result = runner.execute(loaded, settings, out, progress=bar, resume=resume,
                                extra_state={"file": str(file), "variant": variant, "set": sets})
    except (runner.RunError, SampleError, SimulationError) as e:  # SimulationError: with --strict
        raise ScenarioError(str(file), [Issue((), str(e))]) from None
    except KeyboardInterrupt:
        bar(None, None)
        print(f"interrupted; finished chunks are kept: complete the run with  sim run --resume {out}",
              file=sys.stderr)
        return None, None
    finally:
        bar(None, None)
    if result.reps.empty:
        first = result.errors[0]["error"] if result.errors else "no replication ran"
        raise ScenarioError(str(file), [Issue((), f"every replication failed; the first: {first} "
                                         f"(details in {out / runner.PARTS})")])
    summary = runner.summarize(result, loaded, settings)
    staged = out / runner.PARTS
    outputs.write_json(staged / "summary.json", summary)
    outputs.write_json(staged / "manifest.json", {
        "scenario_file": str(file), "variant": variant, "set": sets, "scenario_sha256": loaded.sha256,
        "seed": settings.seed, "replications_asked": settings.reps,
        "replications": len(result.reps) + len(result.errors), "sampling": settings.method,
        "workers": settings.workers, "backend": settings.backend, "chunk_size": settings.chunk_size(),
        "precision": settings.precision, "stopped_by": result.stop_reason, "resumed_chunks": result.resumed_chunks,
        "package": "trainsim", "version": __version__, "python": sys.version.split()[0],
        "runtime_s": round(result.runtime_s, 3), "created": datetime.now().isoformat(timespec="seconds"),
        "failed_replications": result.errors, "resolved_scenario": loaded.resolved,
    })
    runner.finish(out)
    from sim import report

    report.run_report(out, loaded, summary, result.reps)
    return result, summary


def cmd_compare(a) -> int:
    import pandas as pd

    from sim import compare, outputs, runner

    base = load(a.file, sets=a.set)
    names = ["base", *base.scenario.variants]
    if a.only:
        wanted = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise ScenarioError(a.file, [Issue(("variants",), f"no variant named {unknown[0]!r} "
                                               f"(base and variants: {', '.join(names)})")])
        names = wanted
    if len(names) < 2 and not a.sweep:
        raise ScenarioError(a.file, [Issue(("variants",), "nothing to compare: the file defines no `variants:` "
                                           "(add some, or use --sweep)")])
    scn = base.scenario
    try:
        seed = int(a.seed) if a.seed is not None else scn.simulation.seed
        reps = int(a.reps) if a.reps is not None else scn.simulation.replications
        workers = int(a.workers) if a.workers is not None else runner.default_workers()
        sweep = compare.sweep_values(a.sweep) if a.sweep else None
    except ValueError as e:
        raise ScenarioError("command line", [Issue((), str(e))]) from None
    out = Path(a.out) if a.out else _default_out(f"{scn.project.name}-compare")
    try:
        outputs.prepare_dir(out, a.overwrite)
    except outputs.OutputError as e:
        raise ScenarioError("command line", [Issue(("--out",), str(e))]) from None

    def run(name: str, extra_sets: list[str], folder: Path):
        loaded = load(a.file, variant=None if name == "base" else name, sets=[*a.set, *extra_sets])
        settings = runner.Settings(seed=seed, reps=reps, method=a.sampling or loaded.scenario.simulation.sampling,
                                   workers=workers, backend=a.backend, scheduler=a.scheduler)
        folder.mkdir(parents=True, exist_ok=True)
        result, summary = _simulate(loaded, settings, folder, a.file, None if name == "base" else name,
                                    [*a.set, *extra_sets])
        if result is None:
            raise KeyboardInterrupt
        risks[name] = summary["risk"]
        return result.reps

    risks: dict = {}

    if sweep is None:
        results = {n: run(n, [], out / n) for n in names}
        report = {"scenario": scn.project.name, "seed": seed, "replications": reps,
                  "side_by_side": compare.side_by_side(results), "risk": risks, "pairs": compare.pairwise(results)}
        outputs.write_json(out / "compare.json", report)
        from sim import report as reporting

        reporting.compare_report(out, report, results, {"base": base.resolved, "variants": base.raw.get("variants")})
        _print_compare(report)
    else:
        key, values = sweep
        rows, pairs = [], []
        for v in values:
            results = {n: run(n, [f"{key}={v}"], out / f"{key}={v}" / n) for n in names}
            for n, df in results.items():
                rows.append({"value": v, "strategy": n, **{f"cost_usd_{k}": x for k, x in
                                                          compare.describe(df["cost_usd"]).items()}})
            for p in compare.pairwise(results):
                if p["metric"] == "cost_usd":
                    pairs.append({"value": v, **p})
        by_pair: dict = {}
        for p in pairs:
            by_pair.setdefault((p["a"], p["b"]), []).append(p)
        found = []
        for (pa, pb), ps in by_pair.items():
            xs = [p["value"] for p in ps]
            found.append({"a": pa, "b": pb, "key": key,
                          "break_even_mean": compare.break_even(xs, [p["diff_mean"] for p in ps]),
                          "break_even_p50": compare.break_even(xs, [p["diff_p50"] for p in ps]),
                          "band_crossing_p5": compare.break_even(xs, [p["diff_p5"] for p in ps]),
                          "band_crossing_p95": compare.break_even(xs, [p["diff_p95"] for p in ps])})
        outputs.write_parquet(out / "sweep.parquet", pd.DataFrame(rows))
        report = {"scenario": scn.project.name, "seed": seed, "replications": reps, "sweep": {"key": key,
                  "values": values}, "costs": rows, "pairs": pairs, "break_even": found}
        outputs.write_json(out / "compare.json", report)
        _print_sweep(report)
    print(f"results in {out}")
    return 0


def cmd_sensitivity(a) -> int:
    import pandas as pd

    from sim import outputs, sensitivity
    from sim.schema import uncertain_inputs

    loaded = load(a.file, variant=a.variant, sets=a.set)
    scn = loaded.scenario
    if not uncertain_inputs(scn):
        raise ScenarioError(a.file, [Issue((), "no uncertain inputs: give some keys as distributions "
                                           "(e.g. mfu: {dist: pert, min: 0.3, mode: 0.4, max: 0.5})")])
    try:
        seed = int(a.seed) if a.seed is not None else scn.simulation.seed
        reps, n = int(a.reps), int(a.n)
    except ValueError as e:
        raise ScenarioError("command line", [Issue((), f"expected a number: {e}")]) from None
    if reps < 1 or n < 2 or n & (n - 1):
        raise ScenarioError("command line", [Issue((), "--reps must be >= 1 and --n a power of two >= 2")])
    out = Path(a.out) if a.out else _default_out(f"{scn.project.name}-sensitivity")
    try:
        outputs.prepare_dir(out, a.overwrite)
    except outputs.OutputError as e:
        raise ScenarioError("command line", [Issue(("--out",), str(e))]) from None
    rows = sensitivity.tornado(loaded, seed, reps)
    indices = {} if a.no_sobol else sensitivity.sobol_indices(loaded, seed, reps, n)
    table_rows = []
    for r in rows:
        row = dict(r)
        for o, per in indices.get("indices", {}).items():
            for k, v in per.get(r["input"], {}).items():
                row[f"{o}_{k}"] = v
        table_rows.append(row)
    df = pd.DataFrame(table_rows)
    outputs.atomic_write(out / "sensitivity.csv", lambda tmp: df.to_csv(tmp, index=False))
    outputs.write_json(out / "sensitivity.json", {"scenario": scn.project.name, "seed": seed,
                                                  "replications_per_point": reps, "tornado": rows, "sobol": indices})
    from sim import report

    report.sensitivity_report(out, scn.project.name, rows, sensitivity.plot_tornado(rows), loaded.resolved)
    print(f"{scn.project.name}: what drives the cost ({reps} replications per point, seed {seed}) -> {out}")
    head = ["input", "P10 value", "P90 value", "mean cost at P10", "at P90", "swing"]
    body = [[r["input"], f"{r['low_value']:.4g}", f"{r['high_value']:.4g}", format_usd(r["cost_mean_at_low"]),
             format_usd(r["cost_mean_at_high"]), format_usd(r["cost_mean_swing"])] for r in rows]
    if indices:
        head += ["Sobol S1 (mean cost)", "ST"]
        per = indices["indices"]["cost_mean"]
        for b, r in zip(body, rows, strict=True):
            i = per[r["input"]]
            b += [f"{i['S1']:.2f} +-{i['S1_conf']:.2f}", f"{i['ST']:.2f} +-{i['ST_conf']:.2f}"]
    print(table(head, body, right=set(range(1, len(head)))))
    if indices:
        print(f"Sobol indices from {indices['points']} points (Saltelli, N={n}) x {reps} replications; inputs "
              "treated as independent (correlations are not used here)")
    return 0


def _print_compare(report: dict) -> None:
    sbs = report["side_by_side"]
    risks = report.get("risk", {})
    extra = [k for k in ("p_over_budget", "p_late") if any(k in r for r in risks.values())]
    rows = []
    for name, m in sbs.items():
        rows.append([name, format_usd(m["cost_usd"]["mean"]), format_usd(m["cost_usd"]["p5"]),
                     format_usd(m["cost_usd"]["p95"]), f"{m['makespan_days']['mean']:.1f} d",
                     f"{m['makespan_days']['p95']:.1f} d", format_kg(m["co2_kg"]["mean"]),
                     *(f"{risks[name][k]:.1%}" if k in risks.get(name, {}) else "-" for k in extra)])
    print(f"{report['scenario']}: {report['replications']} replications each, seed {report['seed']} "
          "(common random numbers)")
    labels = {"p_over_budget": "P(over budget)", "p_late": "P(late)"}
    print(table(["strategy", "mean cost", "P5", "P95", "mean time", "P95 time", "mean CO2",
                 *(labels[k] for k in extra)], rows))
    rows = []
    for p in report["pairs"]:
        if p["metric"] != "cost_usd":
            continue
        rows.append([f"{p['a']} vs {p['b']}", f"{p['p_a_lower']:.1%}", format_usd(p["diff_mean"]),
                     f"{format_usd(p['diff_mean_ci95'][0])}..{format_usd(p['diff_mean_ci95'][1])}",
                     format_usd(p["diff_p5"]), format_usd(p["diff_p50"]), format_usd(p["diff_p95"])])
    print(table(["pair (A vs B)", "P(A cheaper)", "mean A-B", "95% CI", "P5 A-B", "P50 A-B", "P95 A-B"], rows))


def _print_sweep(report: dict) -> None:
    key = report["sweep"]["key"]
    rows = [[str(r["value"]), r["strategy"], format_usd(r["cost_usd_mean"]), format_usd(r["cost_usd_p5"]),
             format_usd(r["cost_usd_p95"])] for r in report["costs"]]
    print(table([key, "strategy", "mean cost", "P5", "P95"], rows, right={0, 2, 3, 4}))
    for b in report["break_even"]:
        def fmt(x):
            return "none in range" if x is None else f"{x:.3g}"

        if b["break_even_mean"] is None and b["band_crossing_p5"] is None and b["band_crossing_p95"] is None:
            print(f"{b['a']} vs {b['b']}: no break-even for {key} in the range swept")
            continue
        print(f"{b['a']} vs {b['b']}: break-even at {key} = {fmt(b['break_even_mean'])} (mean cost difference "
              f"crosses zero; median at {fmt(b['break_even_p50'])}); the 90% band of the paired difference "
              f"crosses zero between {fmt(b['band_crossing_p5'])} and {fmt(b['band_crossing_p95'])}")


def _progress(total: int):
    """A progress bar with rate and ETA on a terminal; a few quiet log lines otherwise."""
    from sim.runner import is_tty

    if is_tty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit="rep", dynamic_ncols=True, file=sys.stderr, leave=False)

        def update(done, _total):
            if done is None:
                bar.close()
            else:
                bar.update(done - bar.n)

        return update
    t0 = time.perf_counter()
    last = [-1]

    def quiet(done, total_):
        if done is None:
            return
        step = done * 10 // max(total_, 1)
        if step != last[0] and done:
            last[0] = step
            dt = time.perf_counter() - t0
            log.info("%d/%d replications (%.0f/s)", done, total_, done / dt if dt > 0 else 0.0)

    return quiet


def _print_run(scn, loaded, summary, result, out, estimate) -> None:
    m = summary["metrics"]
    n = summary["replications"]
    print(f"{scn.project.name}: {n} replications ({summary['sampling']}), seed {summary['seed']}, "
          f"{result.runtime_s:.1f} s -> {out}")
    from sim.outputs import HEADLINE_HEAD, headline_rows

    print(table(HEADLINE_HEAD, headline_rows(summary)))
    est = estimate(loaded).total
    print(f"deterministic estimate (no queueing, failures or preemption): {format_usd(est['cost_usd'])}, "
          f"{est['gpu_hours']:,.0f} GPU-h.\nThe simulated mean is "
          f"{(m['cost_usd']['mean'] / est['cost_usd'] - 1) * 100:+.1f}%"
          " from it: queueing, failures, preemption, restarts, reruns, run-to-run spread and idle"
          " reserved or owned capacity.")
    r = summary.get("risk") or {}
    if r:
        conf = r["budget_for_confidence"]
        line = "budget needed for 50/80/90/95% confidence: " + " / ".join(format_usd(conf[k]) for k in conf)
        if "p_over_budget" in r:
            lo, hi = r["p_over_budget_ci95"]
            line += (f"; P(cost > budget {format_usd(r['budget_usd'])}) = {r['p_over_budget']:.1%}"
                     f" (95% CI {lo:.1%}..{hi:.1%})")
        print(line)
        dates = r["finish_date_at_confidence"]
        line = "finish date at 50/80/90/95% confidence: " + " / ".join(dates.values())
        if "p_late" in r:
            lo, hi = r["p_late_ci95"]
            line += f"; P(finish after {r['deadline']}) = {r['p_late']:.1%} (95% CI {lo:.1%}..{hi:.1%})"
        print(line)
    if "precision" in summary:
        p = summary["precision"]
        how = "met" if p["met"] else "NOT met (cap reached)"
        print(f"precision target {p['target']:.2%}: {how} after {n} replications "
              f"(mean +-{p.get('mean_half_width_rel', float('nan')):.2%}, "
              f"P95 +-{p.get('p95_half_width_rel', float('nan')):.2%})")
    if result.errors:
        print(f"WARNING: {len(result.errors)} replications failed and are left out; the first: "
              f"{result.errors[0]['error']} (all in manifest.json)", file=sys.stderr)


def cmd_catalog(a) -> int:
    from sim.catalog import builtin

    cat = builtin()
    accs = [x for x in cat.accelerators.values() if not a.accelerator or x.id in a.accelerator]
    if a.accelerator:
        unknown = sorted(set(a.accelerator) - set(cat.accelerators))
        if unknown:
            raise ScenarioError("command line", [Issue((), f"unknown accelerator {unknown[0]!r}; known: "
                                                       f"{', '.join(sorted(cat.accelerators))}")])
    prices = [p for p in cat.prices if p.accelerator in {x.id for x in accs}]
    if a.json:
        from dataclasses import asdict

        print(json.dumps({"accelerators": [asdict(x) for x in accs], "prices": [asdict(p) for p in prices]},
                         indent=2, default=str))
        return 0
    print(table(["id", "name", "dense BF16/FP16", "TDP", "memory", "source date"],
                [[x.id, x.name, f"{x.peak_flop_per_s / 1e12:,.0f} TFLOP/s", f"{x.tdp_w:.0f} W",
                  f"{x.memory_gb:.0f} GB" if x.memory_gb else "-", str(x.date)] for x in accs], right={2, 3, 4}))
    print()
    print(table(["accelerator", "provider", "tier", "USD/accel-h", "in force from", "region"],
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
    return 0


# --- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sim", description="Forecast the cost and duration of a deep-learning "
                                 "training project from a YAML scenario.")
    ap.add_argument("--version", action="version", version=f"trainsim {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def scenario_args(p, required=True):
        p.add_argument("file", nargs=None if required else "?", metavar="FILE", help="scenario YAML file")
        p.add_argument("--variant", help="apply the named variant from the file's `variants:`")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a key, e.g. --set workloads[pretrain].mfu=0.35 (repeatable)")

    p = sub.add_parser("validate", help="check a scenario file")
    scenario_args(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("estimate", help="deterministic cost estimate (no queueing, failures or preemption)",
                       description="Deterministic estimate per workload and in total. Give a FILE, or describe "
                       "one run on the command line: sim estimate --params 7B --tokens 2T --accelerator h100 "
                       "--count 512 --pricing on_demand")
    scenario_args(p, required=False)
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
    g.add_argument("--mfu", default="0.4", help="model FLOP utilisation (default 0.4)")
    g.add_argument("--method", default="full", help="full (k=6) | full_recompute (k=8) | lora (k=4)")
    g.add_argument("--runs", default="1", help="number of runs (default 1)")
    g.add_argument("--start", help="date the run starts, prices in force then (default today)")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("run", help="simulate the project: many replications with queueing, failures, "
                       "preemption, checkpoints and moving prices")
    scenario_args(p, required=False)
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
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="run the base scenario and its variants with common random numbers "
                       "and compare them; or sweep one key to find break-even points")
    p.add_argument("file", metavar="FILE", help="scenario YAML file with `variants:`")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key in all")
    p.add_argument("--only", help="comma-separated strategies to run (base and variant names)")
    p.add_argument("--sweep", metavar="KEY=START:STOP:STEP", help="run every strategy at each value of KEY")
    p.add_argument("--reps", help="replications per strategy (default: simulation.replications)")
    p.add_argument("--seed", help="root seed, shared by all strategies (default: simulation.seed)")
    p.add_argument("--out", help="result folder (default outputs/<project>-compare/<timestamp>/)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out folder")
    p.add_argument("--workers", help="processes (default: the machine's cores)")
    p.add_argument("--backend", choices=["process", "dask"], default="process")
    p.add_argument("--scheduler", help="Dask scheduler address")
    p.add_argument("--sampling", choices=["random", "lhs", "sobol"])
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("sensitivity", help="which uncertain inputs drive cost and time: tornado and Sobol "
                       "indices")
    scenario_args(p)
    p.add_argument("--reps", default="20", help="replications per evaluation point (default 20)")
    p.add_argument("--n", default="64", help="Saltelli base sample size, a power of two (default 64)")
    p.add_argument("--seed", help="root seed (default: simulation.seed)")
    p.add_argument("--out", help="result folder (default outputs/<project>-sensitivity/<timestamp>/)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out folder")
    p.add_argument("--no-sobol", action="store_true", help="the tornado only")
    p.set_defaults(func=cmd_sensitivity)

    p = sub.add_parser("catalog", help="list built-in accelerators and prices")
    p.add_argument("accelerator", nargs="*", help="only these accelerator ids")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--sources", action="store_true", help="print the source of every figure")
    p.set_defaults(func=cmd_catalog)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return a.func(a)
    except ScenarioError as e:
        print(e.format(), file=sys.stderr)
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
