#!/usr/bin/env python3
"""Monte Carlo benchmarks (figures for the README; nothing here is a test).

  parallel  replications per second of `sim run` on scenarios/bench_reference.yaml with 1 and 2
            workers (and Dask on a local cluster), interleaved, and the speed-up
  memory    peak resident memory of `sim run` (largest single process) for many replications of
            scenarios/bench_reference.yaml, with the sizes of the files it wrote (--runs none: no
            per-run records)
  ceiling   the bare engine's replications per second in one process and split between two (no
            files, no start-up): what two cores give at best, the ceiling of `parallel`'s speed-up
  lean      the bare engine's replications per second against serial `sim run` (whole command,
            and its replication phase: simulation, part files, assembly)
  sampling  how many replications random, LHS and Sobol sampling need for the same 95% interval on
            mean cost of an uncertain scenario: the variance of the mean over independent seeds,
            per method, turned into "replications needed relative to random"

Usage: python benchmarks/bench_montecarlo.py parallel [--reps 2000]
       python benchmarks/bench_montecarlo.py memory [--reps 100000] [--runs none]
       python benchmarks/bench_montecarlo.py ceiling [--reps 4000 --repeat 2]
       python benchmarks/bench_montecarlo.py lean [--reps 4000 --repeat 2]
       python benchmarks/bench_montecarlo.py sampling [--reps 128 --seeds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "scenarios" / "bench_reference.yaml"


def sim_run(args: list[str], out: str) -> tuple[float, float]:
    """Wall time of the whole command, and the replication phase's own time from manifest.json
    (simulation, part files, assembly; not Python's start-up, loading or the final summary)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sim", "run", *args, "--out", out], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    return wall, json.loads((Path(out) / "manifest.json").read_text())["runtime_s"]


def parallel(a) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        configs = {"1 worker": ["--workers", "1"], "2 workers": ["--workers", "2"]}
        if a.dask:
            configs["dask, 2 workers"] = ["--workers", "2", "--backend", "dask"]
        walls: dict[str, list[float]] = {k: [] for k in configs}
        phases: dict[str, list[float]] = {k: [] for k in configs}
        for r in range(a.repeat):
            order = list(configs) if r % 2 == 0 else list(reversed(configs))
            for name in order:
                wall, phase = sim_run([str(BENCH), "--reps", str(a.reps), "--seed", "1", *configs[name]],
                                      f"{tmp}/{r}-{name}")
                walls[name].append(wall)
                phases[name].append(phase)
                print(f"  round {r + 1}: {name:16s} wall {wall:6.2f} s ({a.reps / wall:6.1f} reps/s), replication "
                      f"phase {phase:6.2f} s ({a.reps / phase:6.1f} reps/s), load average {os.getloadavg()[0]:.1f}",
                      file=sys.stderr)
        for name in configs:
            out[name] = {
                "wall_best_s": min(walls[name]), "wall_reps_per_s": a.reps / min(walls[name]),
                "wall_speedup": min(walls["1 worker"]) / min(walls[name]),
                "phase_best_s": min(phases[name]), "phase_reps_per_s": a.reps / min(phases[name]),
                "phase_speedup": min(phases["1 worker"]) / min(phases[name]),
            }
    return out


def _bare_share(args: tuple[int, int]) -> float:
    """Replications [start, stop) of bench_reference with the bare engine in this process; seconds."""
    from sim.loader import load
    from sim.montecarlo import replicate

    loaded = load(BENCH)
    t0 = time.perf_counter()
    for _ in replicate(loaded, 1, range(*args)):
        pass
    return time.perf_counter() - t0


def ceiling(a) -> dict:
    """What two cores give the bare engine alone (no files, no start-up): the replications in one
    process, then split between two processes started beforehand, interleaved rounds. The ceiling of
    the `parallel` speed-up on this machine, as load from other work lowers it."""
    import multiprocessing

    sys.path.insert(0, str(ROOT))
    one, two = [], []
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_bare_share, [(0, 5), (5, 10)])  # imports and warm-up in both
        half = a.reps // 2
        for r in range(a.repeat):
            for which in ((1, 2) if r % 2 == 0 else (2, 1)):
                t0 = time.perf_counter()
                if which == 1:
                    pool.apply(_bare_share, ((0, a.reps),))
                    one.append(time.perf_counter() - t0)
                else:
                    pool.map(_bare_share, [(0, half), (half, a.reps)], chunksize=1)
                    two.append(time.perf_counter() - t0)
                print(f"  round {r + 1}: {which} process(es) {a.reps / (time.perf_counter() - t0):6.1f} reps/s "
                      f"(load average {os.getloadavg()[0]:.1f})", file=sys.stderr)
    return {"one_process_reps_per_s": [a.reps / t for t in one], "two_processes_reps_per_s": [a.reps / t for t in two],
            "speedup_best": min(one) / min(two)}


def lean(a) -> dict:
    """The bare engine (sim.montecarlo.replicate in this process: sampling, plan, simulation and
    records, no files) against serial `sim run --workers 1` (a fresh process: start-up, loading,
    the replications with part files and assembly, summary, report), interleaved rounds. Two
    ratios of replications per second: the whole command's, and its replication phase's
    (manifest.json runtime_s: simulation, part files, assembly)."""
    sys.path.insert(0, str(ROOT))
    from sim.loader import load
    from sim.montecarlo import replicate

    loaded = load(BENCH)
    list(replicate(loaded, 1, range(10)))  # warm-up
    bare, walls, phases = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeat):
            t0 = time.perf_counter()
            for _ in replicate(loaded, 1, range(a.reps)):
                pass
            bare.append(time.perf_counter() - t0)
            wall, phase = sim_run([str(BENCH), "--reps", str(a.reps), "--seed", "1", "--workers", "1"],
                                  f"{tmp}/{r}")
            walls.append(wall)
            phases.append(phase)
            print(f"  round {r + 1}: bare engine {a.reps / bare[-1]:6.1f} reps/s; sim run {a.reps / wall:6.1f} reps/s "
                  f"({bare[-1] / wall:.2f}), replication phase {a.reps / phase:6.1f} reps/s ({bare[-1] / phase:.2f}), "
                  f"load average {os.getloadavg()[0]:.1f}",
                  file=sys.stderr)
    return {"bare_reps_per_s": [a.reps / b for b in bare], "sim_run_reps_per_s": [a.reps / w for w in walls],
            "phase_reps_per_s": [a.reps / p for p in phases],
            "ratio_whole_command": [b / w for b, w in zip(bare, walls, strict=True)],
            "ratio_replication_phase": [b / p for b, p in zip(bare, phases, strict=True)]}


def memory(a) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sim", "run", str(BENCH), "--reps", str(a.reps), "--seed", "1",
                        "--workers", str(a.workers), "--runs", a.runs, "--out", f"{tmp}/out"], check=True,
                       stdout=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        sizes = {p.name: p.stat().st_size for p in Path(f"{tmp}/out").iterdir()}
        import pyarrow.parquet as pq

        runs = Path(f"{tmp}/out/runs.parquet")
        rows = pq.ParquetFile(runs).metadata.num_rows if runs.exists() else 0
        reps = pq.ParquetFile(f"{tmp}/out/replications.parquet").metadata.num_rows
    return {"replications": a.reps, "workers": a.workers, "runs": a.runs, "seconds": dt,
            "peak_rss_mib_largest_process": peak_kib / 1024, "replication_rows": reps, "run_rows": rows,
            "file_mib": {k: v / 2**20 for k, v in sizes.items()}}


def sampling(a) -> dict:
    sys.path.insert(0, str(ROOT))
    from sim.loader import load
    from sim.montecarlo import Replicator

    loaded = load(ROOT / a.scenario)
    out = {}
    for method in ("random", "lhs", "sobol"):
        means = []
        t0 = time.perf_counter()
        for s in range(a.seeds):
            rep = Replicator(loaded, 1000 + s, method, a.reps)
            res = rep.chunk(0, range(a.reps))
            means.append(np.mean([r["cost_usd"] for r in res.rows]))
        out[method] = {"var_of_mean": float(np.var(means, ddof=1)), "seconds": time.perf_counter() - t0}
        print(f"  {method:6s} sd of the mean over {a.seeds} seeds: {np.std(means, ddof=1):,.0f}", file=sys.stderr)
    for method in out:
        # replications for the same CI half-width scale with the variance of the mean
        out[method]["reps_needed_vs_random"] = out[method]["var_of_mean"] / out["random"]["var_of_mean"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("parallel")
    p.add_argument("--reps", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--dask", action="store_true")
    p = sub.add_parser("memory")
    p.add_argument("--reps", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--runs", default="auto", help="per-run records kept (sim run --runs)")
    p = sub.add_parser("ceiling")
    p.add_argument("--reps", type=int, default=4000)
    p.add_argument("--repeat", type=int, default=2)
    p = sub.add_parser("lean")
    p.add_argument("--reps", type=int, default=4000)
    p.add_argument("--repeat", type=int, default=2)
    p = sub.add_parser("sampling")
    p.add_argument("--scenario", default="scenarios/example_llm_project.yaml")
    p.add_argument("--reps", type=int, default=128)
    p.add_argument("--seeds", type=int, default=20)
    a = ap.parse_args()
    print(f"machine: {platform.platform()}, python {platform.python_version()}, cpus {os.cpu_count()}",
          file=sys.stderr)
    result = {"parallel": parallel, "memory": memory, "sampling": sampling, "lean": lean,
              "ceiling": ceiling}[a.what](a)
    print(json.dumps({a.what: result, "args": vars(a)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
