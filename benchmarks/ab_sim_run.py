#!/usr/bin/env python3
"""`sim run` on scenarios/bench_reference.yaml under two source trees (say the code before a change,
from `git archive REV sim scenarios | tar -x -C /tmp/base`, and this checkout), interleaved, with
1 and/or 2 workers: the wall time, the replication phase (manifest.json runtime_s), and the CPU
time of the run's own process (user and kernel) and of its worker processes (getrusage). CPU
times say where the work went even when other work on the machine spoils the wall times.

Usage: python benchmarks/ab_sim_run.py --reps 4000 --rounds 2 --workers 1,2 base=/tmp/base new=.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# run in the child: sim run, then its own and its children's CPU times on stderr's last line
CHILD = """import resource, sys
import sim.cli
sim.cli.main(sys.argv[1:])
s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{s.ru_utime:.2f} {s.ru_stime:.2f} {c.ru_utime + c.ru_stime:.2f}", file=sys.stderr)
"""


def one(tree: Path, reps: int, workers: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:  # run from there: `python -c` puts the working folder first
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", CHILD, "run", str(tree / "scenarios" / "bench_reference.yaml"),
                            "--reps", str(reps), "--seed", "1", "--workers", workers, "--out", f"{tmp}/o"],
                           env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tmp, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, check=True)
        wall = time.perf_counter() - t0
        phase = json.loads(Path(f"{tmp}/o/manifest.json").read_text())["runtime_s"]
    user, kernel, workers_cpu = map(float, p.stderr.strip().splitlines()[-1].split())
    return {"wall_s": wall, "phase_s": phase, "user_s": user, "kernel_s": kernel, "workers_cpu_s": workers_cpu,
            "load": os.getloadavg()[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("trees", nargs="+", help="NAME=PATH of a source tree holding sim/ and scenarios/")
    a = ap.parse_args()
    trees = {name: Path(path).resolve() for name, path in (t.split("=", 1) for t in a.trees)}
    runs = [(n, w) for n in trees for w in a.workers.split(",")]
    out: dict[str, list[dict]] = {}
    for r in range(a.rounds):
        for name, w in runs if r % 2 == 0 else runs[::-1]:
            m = one(trees[name], a.reps, w)
            out.setdefault(f"{name}, {w} worker(s)", []).append(m)
            print(f"  round {r + 1}: {name} {w} worker(s): wall {m['wall_s']:6.2f} s, phase {m['phase_s']:6.2f} s, "
                  f"own CPU {m['user_s']:.2f} s user + {m['kernel_s']:.2f} s kernel, "
                  f"workers {m['workers_cpu_s']:.2f} s, "
                  f"load average {m['load']:.1f}", file=sys.stderr)
    print(json.dumps({"best_wall_s": {k: min(m["wall_s"] for m in v) for k, v in out.items()}, "runs": out,
                      "args": vars(a)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
