#!/usr/bin/env python3
"""Speed benchmark: trainsim's engine against two plain implementations of the same model.

Measures replications per second, in one run on one machine, of
  engine   sim.montecarlo.replicate() on scenarios/bench_reference.yaml, consumed fully (records, no files)
  full     the same on the same project with every reliability option on (ALL_RELIABILITY below: job
           failures, detection, per-node and per-doubling restarts, lemons, unrecoverable failures,
           planned interruptions, loss spikes, stragglers, spares, repairs with crews, spot
           preemption with co-interruption, every on_node_loss policy)
  quiet    the full model with every interruption rate (hardware failures too) scaled by one factor
           until it interrupts as often per replication as `engine` (calibrated on --reps replications):
           every option on, at the reference project's own budget of interruptions
  busy     the simple model with its hardware failure rate raised until it has as many interruptions
           per replication as `full` (calibrated on --reps replications, twice): the cost of the
           options' machinery, apart from the extra interruptions the options' rates bring
  cli      `sim run scenarios/bench_reference.yaml --reps N --seed S --out TMP --overwrite` through
           sim.cli.main (loading, simulation, tables, Parquet and JSON writing), wall time
  naive    naive(seed) from the shared reference script (one SimPy process per run)
  heapq    heapq_limit(seed) from the shared reference script (hand-rolled event loop)
The reference script lives outside the repository (default ../shared/bench/reference_project.py from
the repo root) and is imported from that path, never copied. Its functions are timed over
np.random.SeedSequence(seed).spawn(reps), exactly as its main() does.

The measurements are interleaved: --repeat rounds, the order reversed every other round, after
one small untimed warm-up of each (imports, caches). Reported: best and median reps/s per
implementation, the engine's speed ratios within this run (full/engine: the cost of every
reliability option, as time per replication), events and interruptions per replication of the
simple and the full model, and, from the same replications, the
engine's and the naive reference's mean makespan and GPU-hours with standard errors and their
difference in units of the combined standard error (independent implementations with different
random streams: expect |z| < ~3).

This is a benchmark, not a test: it asserts nothing and is not collected by pytest.

Usage: python benchmarks/bench_engine.py [--reps 200] [--seed 1] [--repeat 3] [--json] [--options] [--reference PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import io
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "bench_reference.yaml"
DEFAULT_REFERENCE = REPO.parent / "shared" / "bench" / "reference_project.py"
IMPLS = ("engine", "full", "quiet", "busy", "cli", "naive", "heapq")
KINDS = ("failures", "job_failures", "planned", "loss_spikes", "domain_failures", "preemptions")
WARMUP_REPS = 2

# Every reliability option of trainsim turned on, over the reference project (merged into its YAML):
# a benchmark of what they cost, not a calibrated scenario. The values are plausible, not sourced.
# Where the shipped priors (sim/data/priors.yaml) give a sourced rate it is not lower, so a "sourced"
# configuration would interrupt more, not less: job-level failures 0.03-0.2 per run-hour there
# (median 0.077, against 0.01 here), detection 1 min-1 h for runs under 1,024 accelerators (median
# 7.7 min, against 5 min); loss spikes are sourced as none for this project (under 10B parameters and
# 1,024 accelerators) and are on here only to measure what they cost. The rest have no prior.
ALL_RELIABILITY = {
    "reliability": {
        "job_failure_rate_per_h": 0.01, "detect": "5 min", "restart_per_node": "5 s", "restart_per_doubling": "1 min",
        "repair": "12 h", "repair_sigma": 0.5, "repair_crews": 2, "unrecoverable_fraction": 0.05,
        "lemons": {"fraction": 0.05, "multiplier": 4, "repair_cures": 0.7},
        "planned": {"rate_per_h": 0.002, "downtime": "20 min"},
        "failure_domains": {"nodes": 4, "rate_per_h": 0.0005},
    },
    "pools": {"gpus": {"spares": 2, "pricing": "spot",
                       "preemption": {"rate_per_node_h": 1e-4, "notice": "2 min", "co_interruption": 0.1},
                       "availability": {"fraction": 0.99, "mean_outage": "1 h"}}},
    "workloads": {name: {"loss_spike": {"rate_per_h": 0.002, "rollback": "2 h"},
                         "stragglers": {"fraction": 0.1, "slowdown": 1.2, "sigma": 0.1}, "on_node_loss": policy}
                  for name, policy in (("small", "move"), ("medium", "best"), ("large", "wait"))},
}
# reliability keys that need not be changed: the base model and the checkpoint policy, on already
NOT_OPTIONS = {"model", "failure_rate_per_gpu_h", "mtbf_per_gpu", "checkpoint"}


# the options whose cost --options measures one by one: each a group of ALL_RELIABILITY keys left out
OPTION_GROUPS = {
    "job failures": ["reliability.job_failure_rate_per_h"], "detection": ["reliability.detect"],
    "size-dependent restarts": ["reliability.restart_per_node", "reliability.restart_per_doubling"],
    "repairs and crews": ["reliability.repair", "reliability.repair_sigma", "reliability.repair_crews"],
    "unrecoverable failures": ["reliability.unrecoverable_fraction"], "lemons": ["reliability.lemons"],
    "planned interruptions": ["reliability.planned"], "failure domains": ["reliability.failure_domains"],
    "spares": ["pools.spares"], "spot preemption": ["pools.preemption", "pools.pricing"],
    "availability outages": ["pools.availability"], "loss spikes": ["workloads.loss_spike"],
    "stragglers": ["workloads.stragglers"],
}


def load_full(leave_out: tuple[str, ...] = (), scale: float = 1.0):
    """The reference project with ALL_RELIABILITY merged in (pools and workloads by name), less the
    keys in `leave_out` ("section.key"); with `scale`, every interruption rate (the project's own
    hardware failures included) multiplied by it."""
    import copy

    import yaml

    from sim.loader import load_data

    raw = yaml.safe_load(SCENARIO.read_text())
    options = copy.deepcopy(ALL_RELIABILITY)
    if scale != 1.0:
        rel = options["reliability"]
        rel["job_failure_rate_per_h"] *= scale
        rel["planned"]["rate_per_h"] *= scale
        rel["failure_domains"]["rate_per_h"] *= scale
        options["pools"]["gpus"]["preemption"]["rate_per_node_h"] *= scale
        for w in options["workloads"].values():
            w["loss_spike"]["rate_per_h"] *= scale
        raw["reliability"]["mtbf_per_gpu"] = f"{hours(raw['reliability']['mtbf_per_gpu']) / scale} h"

    def kept(section: str, d: dict) -> dict:
        return {k: v for k, v in d.items() if f"{section}.{k}" not in leave_out}

    raw["reliability"] = {**raw.get("reliability", {}), **kept("reliability", options["reliability"])}
    for section in ("pools", "workloads"):
        for item in raw[section]:
            item.update(kept(section, options[section].get(item["name"], {})))
    return load_data(raw, f"{SCENARIO} + ALL_RELIABILITY" + (f" less {', '.join(leave_out)}" if leave_out else "")
                     + (f", rates x {scale:.4g}" if scale != 1.0 else ""))


def hours(text) -> float:
    from sim.units import parse_duration_h

    return parse_duration_h(text)


def load_quiet(simple, reps: int, seed: int):
    """The full model with every interruption rate scaled by one factor until it interrupts as
    often per replication as the simple model (three secant steps): every option on, at the
    reference project's own budget of interruptions. Returns the scenario and the factor."""
    return scaled_to(interruptions(simple, seed, reps), lambda f: load_full(scale=f), 3, reps, seed)


def scaled_to(target: float, make, steps: int, reps: int, seed: int):
    """`make(factor)` (a scenario with its interruption rates x factor) at the factor that gives
    `target` interruptions per replication: secant steps from factor 1 (the count is about
    proportional to the rates). Returns the scenario and the factor."""
    factor, loaded = 1.0, make(1.0)
    for _ in range(steps):
        factor *= target / interruptions(loaded, seed, reps)
        loaded = make(factor)
    return loaded, factor


def interruptions(loaded, seed: int, reps: int) -> float:
    """Mean interruptions of every kind per replication."""
    from sim.montecarlo import replicate

    return statistics.fmean(sum(res.row[k] for k in KINDS) for res in replicate(loaded, seed, range(reps)))


def load_busy(simple, full, reps: int, seed: int):
    """The simple model (hardware failures only) with its failure rate raised until it interrupts as
    often per replication as the full model (two secant steps on its mean time between failures per
    GPU). Returns the scenario and its MTBF (h)."""
    import yaml

    from sim.loader import load_data

    base = hours(yaml.safe_load(SCENARIO.read_text())["reliability"]["mtbf_per_gpu"])

    def make(factor: float):
        if factor == 1.0:
            return simple
        raw = yaml.safe_load(SCENARIO.read_text())
        raw["reliability"]["mtbf_per_gpu"] = f"{base / factor} h"
        return load_data(raw, f"{SCENARIO} with mtbf_per_gpu {base / factor:.0f} h")

    loaded, factor = scaled_to(interruptions(full, seed, reps), make, 2, reps, seed)
    return loaded, base / factor


def option_costs(reps: int, seed: int, repeat: int, log) -> dict:
    """Each option's share of the full model's time per replication: the full model against the
    full model without that option (OPTION_GROUPS), interleaved, as a multiple of the simple
    model's time (median of the rounds). Options interact (lemons add hardware failures, repairs
    follow them), so the shares need not add up to the whole."""
    from sim.loader import load
    from sim.montecarlo import replicate

    variants = {"simple": load(SCENARIO), "full": load_full(), **{
        f"without {name}": load_full(tuple(keys)) for name, keys in OPTION_GROUPS.items()}}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    events: dict[str, float] = {}
    for loaded in variants.values():  # warm-up
        list(replicate(loaded, seed, range(WARMUP_REPS)))
    for rnd in range(repeat):
        for name in (list(variants) if rnd % 2 == 0 else list(variants)[::-1]):
            gc.collect()
            c0 = time.process_time()
            rows = [res.row for res in replicate(variants[name], seed, range(reps))]
            cpu[name].append(time.process_time() - c0)
            events[name] = sum(r["events"] for r in rows) / reps
        print(f"  options round {rnd + 1}/{repeat} done", file=log, flush=True)
    med = {k: statistics.median(v) for k, v in cpu.items()}
    return {"reps": reps, "repeat": repeat, "cpu_s_median": med, "events_per_rep": events,
            "full_over_simple": med["full"] / med["simple"],
            "share_of_simple": {k.removeprefix("without "): (med["full"] - v) / med["simple"]
                                for k, v in med.items() if k.startswith("without ")}}


def options_left_off(loaded) -> list[str]:
    """Reliability options of the schema that the full scenario leaves at their defaults (should be
    none: a new option added to trainsim and not to ALL_RELIABILITY shows up here)."""
    from sim.schema import Reliability

    rel = loaded.scenario.reliability
    off = [f"reliability.{k}" for k, f in Reliability.model_fields.items()
           if k not in NOT_OPTIONS and getattr(rel, k) == f.get_default(call_default_factory=True)]
    for pool in loaded.scenario.pools:
        if not pool.spares or pool.preemption is None or not pool.preemption.co_interruption or not pool.availability:
            off.append(f"pools[{pool.name}]: spares / preemption.co_interruption / availability")
    for w in loaded.scenario.workloads:
        if w.loss_spike is None or w.stragglers is None:
            off.append(f"workloads[{w.name}]: loss_spike / stragglers")
    if {w.on_node_loss for w in loaded.scenario.workloads} != {"move", "wait", "best"}:
        off.append("on_node_loss: not every policy")
    return off


def load_reference(path: Path):
    if not path.is_file():
        sys.exit(f"bench_engine: reference script not found: {path} (give --reference PATH)")
    spec = importlib.util.spec_from_file_location("trainsim_bench_reference_project", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name in ("naive", "heapq_limit"):
        if not callable(getattr(mod, name, None)):
            sys.exit(f"bench_engine: {path} has no function {name}()")
    return mod


def machine() -> dict:
    import simpy

    import sim

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "trainsim": getattr(sim, "__version__", None),
        "simpy": simpy.__version__,
        "numpy": np.__version__,
    }


def mean_sem(x) -> tuple[float, float]:
    a = np.asarray(x, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else float("nan")


class Bench:
    def __init__(self, reps: int, seed: int, ref, out_dir: Path):
        from sim.loader import load

        self.reps, self.seed, self.ref, self.out_dir = reps, seed, ref, out_dir
        self.loaded = load(SCENARIO)
        self.loaded_full = load_full()
        self.loaded_busy, self.busy_mtbf_h = load_busy(self.loaded, self.loaded_full, reps, seed)
        self.loaded_quiet, self.quiet_scale = load_quiet(self.loaded, reps, seed)
        self.results: dict[str, list] = {}  # the outputs of the last timed call of each implementation
        self.cpu: dict[str, float] = {}  # CPU seconds of the last timed call of each implementation

    def engine(self, reps: int) -> list[dict]:
        from sim.montecarlo import replicate

        return [res.row for res in replicate(self.loaded, self.seed, range(reps))]

    def full(self, reps: int) -> list[dict]:
        from sim.montecarlo import replicate

        return [res.row for res in replicate(self.loaded_full, self.seed, range(reps))]

    def quiet(self, reps: int) -> list[dict]:
        from sim.montecarlo import replicate

        return [res.row for res in replicate(self.loaded_quiet, self.seed, range(reps))]

    def busy(self, reps: int) -> list[dict]:
        from sim.montecarlo import replicate

        return [res.row for res in replicate(self.loaded_busy, self.seed, range(reps))]

    def cli(self, reps: int) -> int:
        from sim.cli import main

        argv = ["run", str(SCENARIO), "--reps", str(reps), "--seed", str(self.seed), "--out", str(self.out_dir),
                "--overwrite"]
        with contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
        if rc != 0:
            raise RuntimeError(f"sim {' '.join(argv)} exited with {rc}")
        return rc

    def naive(self, reps: int) -> list[tuple[float, float]]:
        return [self.ref.naive(s) for s in np.random.SeedSequence(self.seed).spawn(reps)]

    def heapq(self, reps: int) -> list[tuple[float, float]]:
        return [self.ref.heapq_limit(s) for s in np.random.SeedSequence(self.seed).spawn(reps)]

    def time(self, impl: str) -> float:
        fn = getattr(self, impl)
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn(self.reps)
        dt = time.perf_counter() - t0
        self.cpu[impl] = time.process_time() - c0  # this process's CPU time (the cli's workers not counted)
        self.results[impl] = out
        return dt


def run(args) -> dict:
    log = sys.stderr if args.json else sys.stdout
    ref_path = Path(args.reference).resolve()
    ref = load_reference(ref_path)
    info = machine()
    print(f"machine: {info['platform']}, {info['machine']}, python {info['python']} ({info['implementation']}), "
          f"cpu_count {info['cpu_count']} (usable {info['cpus_usable']})", file=log)
    print(f"versions: trainsim {info['trainsim']}, simpy {info['simpy']}, numpy {info['numpy']}", file=log)
    print(f"scenario: {SCENARIO.relative_to(REPO)}; reference: {ref_path}", file=log)
    print(f"reps {args.reps}, seed {args.seed}, {args.repeat} interleaved rounds", file=log, flush=True)

    times: dict[str, list[float]] = {k: [] for k in IMPLS}
    cpu: dict[str, list[float]] = {k: [] for k in IMPLS}
    with tempfile.TemporaryDirectory(prefix="trainsim-bench-") as tmp:
        b = Bench(args.reps, args.seed, ref, Path(tmp) / "out")
        for impl in IMPLS:  # untimed warm-up: imports, first-call caches
            getattr(b, impl)(WARMUP_REPS)
        engine_rows_first = None
        t_start = time.perf_counter()
        for rnd in range(args.repeat):
            order = IMPLS if rnd % 2 == 0 else IMPLS[::-1]
            for impl in order:
                dt = b.time(impl)
                times[impl].append(dt)
                cpu[impl].append(b.cpu[impl])
                print(f"  round {rnd + 1}/{args.repeat} {impl:<6} {dt:7.3f} s  {args.reps / dt:8.1f} reps/s",
                      file=log, flush=True)
            if engine_rows_first is None:
                engine_rows_first = b.results["engine"]
        total_s = time.perf_counter() - t_start
        # the CLI wrote the same replications; read its table back as a consistency check
        import pandas as pd

        cli_df = pd.read_parquet(Path(tmp) / "out" / "replications.parquet")

    rows = b.results["engine"]
    naive_out, heapq_out = b.results["naive"], b.results["heapq"]
    speed = {}
    for impl in IMPLS:
        rates = [args.reps / t for t in times[impl]]
        speed[impl] = {"best_reps_per_s": max(rates), "median_reps_per_s": statistics.median(rates),
                       "seconds": times[impl]}
    ratios = {}
    for other in ("naive", "heapq"):
        ratios[f"engine/{other}"] = {
            "best": speed["engine"]["best_reps_per_s"] / speed[other]["best_reps_per_s"],
            "median": speed["engine"]["median_reps_per_s"] / speed[other]["median_reps_per_s"],
            "per_round": [t_o / t_e for t_e, t_o in zip(times["engine"], times[other], strict=True)],
        }
        # the same by CPU time: on a loaded machine a timed call's wall time includes the time it
        # waited for a core, which falls on one implementation or another by chance
        ratios[f"engine/{other} cpu"] = {
            "best": min(cpu[other]) / min(cpu["engine"]),
            "median": statistics.median(cpu[other]) / statistics.median(cpu["engine"]),
            "per_round": [c_o / c_e for c_e, c_o in zip(cpu["engine"], cpu[other], strict=True)],
        }
    ratios["full/engine"] = {  # > 1: every reliability option on costs that much more time per replication
        "best": speed["engine"]["best_reps_per_s"] / speed["full"]["best_reps_per_s"],
        "median": speed["engine"]["median_reps_per_s"] / speed["full"]["median_reps_per_s"],
        "per_round": [t_f / t_e for t_e, t_f in zip(times["engine"], times["full"], strict=True)],
    }
    # the same by CPU time of this process: less sensitive to other load on the machine than wall time
    per_round_cpu = [c_f / c_e for c_e, c_f in zip(cpu["engine"], cpu["full"], strict=True)]
    ratios["full/engine cpu"] = {"best": min(cpu["full"]) / min(cpu["engine"]),
                                 "median": statistics.median(cpu["full"]) / statistics.median(cpu["engine"]),
                                 "per_round": per_round_cpu}
    ratios["quiet/engine"] = {  # every option on, interrupted as often as the simple model
        "best": speed["engine"]["best_reps_per_s"] / speed["quiet"]["best_reps_per_s"],
        "median": speed["engine"]["median_reps_per_s"] / speed["quiet"]["median_reps_per_s"],
        "per_round": [t_q / t_e for t_e, t_q in zip(times["engine"], times["quiet"], strict=True)],
    }
    ratios["quiet/engine cpu"] = {"best": min(cpu["quiet"]) / min(cpu["engine"]),
                                  "median": statistics.median(cpu["quiet"]) / statistics.median(cpu["engine"]),
                                  "per_round": [c_q / c_e for c_e, c_q in zip(cpu["engine"], cpu["quiet"],
                                                                              strict=True)]}
    ratios["full/busy"] = {  # the options' machinery: against the simple model interrupted as often
        "best": speed["busy"]["best_reps_per_s"] / speed["full"]["best_reps_per_s"],
        "median": speed["busy"]["median_reps_per_s"] / speed["full"]["median_reps_per_s"],
        "per_round": [t_f / t_b for t_b, t_f in zip(times["busy"], times["full"], strict=True)],
    }
    ratios["full/busy cpu"] = {"best": min(cpu["full"]) / min(cpu["busy"]),
                               "median": statistics.median(cpu["full"]) / statistics.median(cpu["busy"]),
                               "per_round": [c_f / c_b for c_b, c_f in zip(cpu["busy"], cpu["full"], strict=True)]}
    ratios["cli/engine"] = {
        "best": speed["cli"]["best_reps_per_s"] / speed["engine"]["best_reps_per_s"],
        "median": speed["cli"]["median_reps_per_s"] / speed["engine"]["median_reps_per_s"],
        "per_round": [t_e / t_c for t_e, t_c in zip(times["engine"], times["cli"], strict=True)],
    }

    e_mk = [r["makespan_days"] * 24.0 for r in rows]
    e_gh = [r["gpu_hours"] for r in rows]
    n_mk = [o[0] for o in naive_out]
    n_gh = [o[1] for o in naive_out]
    agreement = {}
    for key, e, n in (("makespan_h", e_mk, n_mk), ("gpu_hours", e_gh, n_gh)):
        (em, es), (nm, ns) = mean_sem(e), mean_sem(n)
        se = math.hypot(es, ns)
        agreement[key] = {"engine_mean": em, "engine_sem": es, "naive_mean": nm, "naive_sem": ns,
                          "diff": em - nm, "combined_se": se, "z": (em - nm) / se if se > 0 else float("nan")}
    ev_mean, ev_sem = mean_sem([r["events"] for r in rows])
    f_mean, f_sem = mean_sem([r["failures"] for r in rows])
    full_rows = b.results["full"]
    kinds = KINDS
    busy_rows = b.results["busy"]
    busy = {"mtbf_per_gpu_h": b.busy_mtbf_h,
            "interruptions_mean": mean_sem([sum(r[k] for k in kinds) for r in busy_rows])[0],
            "events_per_rep_mean": mean_sem([r["events"] for r in busy_rows])[0]}
    quiet_rows = b.results["quiet"]
    quiet = {"rate_scale": b.quiet_scale,
             "interruptions_mean": {k: mean_sem([r[k] for r in quiet_rows])[0] for k in kinds},
             "events_per_rep_mean": mean_sem([r["events"] for r in quiet_rows])[0],
             "simple_interruptions_mean": mean_sem([sum(r[k] for k in kinds) for r in rows])[0]}
    full = {"events_per_rep_mean": mean_sem([r["events"] for r in full_rows])[0],
            "events_per_rep_sem": mean_sem([r["events"] for r in full_rows])[1],
            "interruptions_mean": {k: mean_sem([r[k] for r in full_rows])[0] for k in kinds},
            "ettr_mean": mean_sem([r["ettr"] for r in full_rows])[0],
            "makespan_h_mean": mean_sem([r["makespan_days"] * 24.0 for r in full_rows])[0],
            "simple_ettr_mean": mean_sem([r["ettr"] for r in rows])[0],
            "options_left_off": options_left_off(b.loaded_full)}
    full["seconds_per_event_ratio"] = ratios["full/engine"]["median"] * ev_mean / full["events_per_rep_mean"]
    checks = {
        "engine_repeatable": engine_rows_first == rows,
        # same draws in the same order; GPU-hours are summed in a different order, so compare to 1e-12
        "naive_equals_heapq": bool(np.allclose(np.asarray(naive_out), np.asarray(heapq_out), rtol=1e-12, atol=0)),
        "cli_equals_engine": bool(len(cli_df) == len(rows)
                                  and np.allclose(cli_df.sort_values("replication")["gpu_hours"].to_numpy(), e_gh,
                                                  rtol=1e-12, atol=0)),
    }
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/bench_engine.py", *sys.argv[1:]]),
        "machine": info, "scenario": str(SCENARIO.relative_to(REPO)), "reference": str(ref_path),
        "reps": args.reps, "seed": args.seed, "repeat": args.repeat, "total_timed_s": total_s,
        "speed": speed, "ratios": ratios, "agreement": agreement,
        "engine": {"events_per_rep_mean": ev_mean, "events_per_rep_sem": ev_sem,
                   "events_per_rep_min": min(r["events"] for r in rows),
                   "events_per_rep_max": max(r["events"] for r in rows),
                   "failures_mean": f_mean, "failures_sem": f_sem},
        "checks": checks, "full": full, "busy": busy, "quiet": quiet,
    }


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]

    def fmt(row):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                                        strict=True)))

    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def report(res: dict) -> str:
    n = res["reps"]
    label = {"engine": "engine (replicate, records)", "full": "engine, every reliability option",
             "busy": "engine, simple model interrupted as often as full",
             "quiet": "engine, every option, interrupted as often as simple",
             "cli": "sim run end to end (+files)",
             "naive": "reference naive (SimPy)", "heapq": "reference heapq loop"}
    out = [f"\n{n} replications x {res['repeat']} interleaved rounds, seed {res['seed']} "
           f"({res['total_timed_s']:.1f} s timed)\n"]
    out.append(table(["implementation", "best reps/s", "median reps/s", "per round (s)"], [
        [label[k], f"{s['best_reps_per_s']:.1f}", f"{s['median_reps_per_s']:.1f}",
         " ".join(f"{t:.2f}" for t in s["seconds"])] for k, s in res["speed"].items()]))
    out.append("")
    out.append(table(["ratio", "best", "median", "per round"], [
        [f"{k} ({'time' if k.startswith(('full/', 'quiet/')) else 'speed'})", f"{r['best']:.2f}", f"{r['median']:.2f}",
         " ".join(f"{x:.2f}" for x in r["per_round"])] for k, r in res["ratios"].items()]))
    out.append("")
    a = res["agreement"]
    out.append(table(["metric (mean +- SE)", "engine", "reference naive", "difference", "diff / SE"], [
        ["makespan (h)", f"{a['makespan_h']['engine_mean']:,.1f} +- {a['makespan_h']['engine_sem']:.1f}",
         f"{a['makespan_h']['naive_mean']:,.1f} +- {a['makespan_h']['naive_sem']:.1f}",
         f"{a['makespan_h']['diff']:+,.1f}", f"{a['makespan_h']['z']:+.2f}"],
        ["GPU-hours", f"{a['gpu_hours']['engine_mean']:,.0f} +- {a['gpu_hours']['engine_sem']:,.0f}",
         f"{a['gpu_hours']['naive_mean']:,.0f} +- {a['gpu_hours']['naive_sem']:,.0f}",
         f"{a['gpu_hours']['diff']:+,.0f}", f"{a['gpu_hours']['z']:+.2f}"],
    ]))
    e = res["engine"]
    out.append(f"\nengine: {e['events_per_rep_mean']:.1f} +- {e['events_per_rep_sem']:.1f} events per replication "
               f"(min {e['events_per_rep_min']}, max {e['events_per_rep_max']}); "
               f"{e['failures_mean']:.2f} +- {e['failures_sem']:.2f} failures per replication")
    f = res["full"]
    fr = res["ratios"]["full/engine"]
    out.append(f"every reliability option on: {fr['median']:.2f}x the simple model's time per replication "
               f"(median; best {fr['best']:.2f}x; by CPU time {res['ratios']['full/engine cpu']['median']:.2f}x); "
               f"{f['events_per_rep_mean']:.1f} +- {f['events_per_rep_sem']:.1f} "
               f"events per replication against {e['events_per_rep_mean']:.1f} (time per event "
               f"{f['seconds_per_event_ratio']:.2f}x); interruptions per replication "
               + ", ".join(f"{k} {v:.1f}" for k, v in f["interruptions_mean"].items())
               + f"; ETTR {f['ettr_mean']:.1%} (simple {f['simple_ettr_mean']:.1%}), makespan "
               f"{f['makespan_h_mean']:,.0f} h")
    qz, qe = res["quiet"], res["ratios"]["quiet/engine"]
    out.append(f"every reliability option on at the simple model's count of interruptions (every rate x "
               f"{qz['rate_scale']:.4f}: {sum(qz['interruptions_mean'].values()):.1f} interruptions per replication "
               f"against {qz['simple_interruptions_mean']:.1f}; "
               + ", ".join(f"{k} {v:.1f}" for k, v in qz["interruptions_mean"].items())
               + f"; {qz['events_per_rep_mean']:.1f} events): {qe['median']:.2f}x the simple model's time per "
               f"replication (median; best {qe['best']:.2f}x; by CPU time "
               f"{res['ratios']['quiet/engine cpu']['median']:.2f}x)")
    bz, fb = res["busy"], res["ratios"]["full/busy"]
    out.append(f"against the simple model interrupted as often (mtbf_per_gpu {bz['mtbf_per_gpu_h']:,.0f} h: "
               f"{bz['interruptions_mean']:.1f} interruptions and {bz['events_per_rep_mean']:.1f} events per "
               f"replication, against the full model's {sum(f['interruptions_mean'].values()):.1f} and "
               f"{f['events_per_rep_mean']:.1f}): {fb['median']:.2f}x (median; best {fb['best']:.2f}x; by CPU time "
               f"{res['ratios']['full/busy cpu']['median']:.2f}x)")
    if f["options_left_off"]:
        out.append("NOTE: the full model leaves these options off: " + "; ".join(f["options_left_off"]))
    if "options" in res:
        o = res["options"]
        out.append(f"\neach option's share of the full model's time (CPU, median of {o['repeat']} interleaved "
                   f"rounds of {o['reps']} replications; in units of the simple model's time; the full model "
                   f"{o['full_over_simple']:.2f}x):")
        out.append(table(["option", "share", "events per replication without it"], [
            [k, f"{v:+.2f}", f"{o['events_per_rep'][f'without {k}']:.1f}"] for k, v in o["share_of_simple"].items()]))
    c = res["checks"]
    out.append(f"checks: engine repeatable across rounds: {c['engine_repeatable']}; "
               f"naive == heapq (same streams, to 1e-12): {c['naive_equals_heapq']}; "
               f"sim run wrote the engine's replications: {c['cli_equals_engine']}")
    bad = [k for k in ("makespan_h", "gpu_hours") if not abs(a[k]["z"]) <= 3]
    if bad:
        out.append(f"NOTE: engine and reference differ by more than 3 combined SE in: {', '.join(bad)}")
    if res["ratios"]["engine/naive"]["median"] < 1:
        out.append("NOTE: the engine is slower than the naive SimPy reference (median ratio < 1)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=200, help="replications per timed call (default 200)")
    ap.add_argument("--seed", type=int, default=1, help="root seed (default 1)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout (progress goes to stderr)")
    ap.add_argument("--options", action="store_true",
                    help="also measure each reliability option's share of the full model's time (CPU time)")
    ap.add_argument("--reference", default=str(DEFAULT_REFERENCE),
                    help="path of the reference script (default ../shared/bench/reference_project.py from the repo)")
    args = ap.parse_args(argv)
    if args.reps < 2 or args.repeat < 1 or args.seed < 0:
        ap.error("--reps must be >= 2, --repeat >= 1 and --seed >= 0")
    res = run(args)
    if args.options:
        res["options"] = option_costs(args.reps, args.seed, args.repeat, sys.stderr if args.json else sys.stdout)
    text = report(res)
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(res))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
