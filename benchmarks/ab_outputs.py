#!/usr/bin/env python3
"""Two source trees (say the code before a change, from `git archive REV | tar -x -C /tmp/base`, and
this checkout) on the same scenarios: the mean of each output over --reps replications, the
difference in units of its combined standard error (a change that keeps the model and changes the
random numbers should give |z| below about 3), and the engine's time per replication of the simple
and the full model of benchmarks/bench_engine.py (best of --rounds, the trees in alternating
processes). The full model is built by this checkout's bench_engine.py, with the tree's `sim`.

Usage: python benchmarks/ab_outputs.py --reps 5000 --seed 11 base=/tmp/base new=.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ("makespan_days", "gpu_hours", "failures", "job_failures", "planned", "loss_spikes", "domain_failures",
           "preemptions", "ettr", "down_gpu_hours", "restart_gpu_hours", "repair_wait_gpu_hours", "lost_gpu_hours")

# run in the child, with the tree's `sim` first on the path: outputs or timings as JSON on stdout
CHILD = """import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
from bench_engine import SCENARIO, load_full
from sim.loader import load
from sim.montecarlo import replicate
what, reps, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if what == "time":
    out = {}
    for name, loaded in (("simple", load(SCENARIO)), ("full", load_full())):
        list(replicate(loaded, seed, range(3)))
        gc.collect()
        t = time.process_time()
        list(replicate(loaded, seed, range(reps)))
        out[name] = (time.process_time() - t) / reps * 1000
else:
    loaded = load_full() if what == "full" else load(what)
    rows = [r.row for r in replicate(loaded, seed, range(reps))]
    out = {k: [r[k] for r in rows] for k in sys.argv[5].split(",") if k in rows[0]}
print(json.dumps(out))
"""


def child(tree: Path, *args: str) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, str(HERE), *args], env={**os.environ, "PYTHONPATH": str(tree)},
                       cwd=tree, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(p.stdout)


def mean_se(x: list[float]) -> tuple[float, float]:
    m = sum(x) / len(x)
    return m, math.sqrt(sum((v - m) ** 2 for v in x) / (len(x) - 1) / len(x))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--scenarios", default="full,scenarios/example_llm_project.yaml",
                    help="comma-separated: `full` (bench_engine's full model) or scenario paths (default: both)")
    ap.add_argument("--rounds", type=int, default=2, help="timing rounds, 200 replications each (0: none)")
    ap.add_argument("trees", nargs=2, help="NAME=PATH of a source tree holding sim/ and scenarios/")
    a = ap.parse_args()
    (na, ta), (nb, tb) = ((n, Path(p).resolve()) for n, p in (t.split("=", 1) for t in a.trees))
    for scn in a.scenarios.split(","):
        x, y = (child(t, scn, str(a.reps), str(a.seed), ",".join(COLUMNS)) for t in (ta, tb))
        print(f"{scn}: {a.reps} replications each, seed {a.seed}")
        for k in x:
            (mx, sx), (my, sy) = mean_se(x[k]), mean_se(y[k])
            se = math.hypot(sx, sy)
            z = (my - mx) / se if se > 0 else 0.0
            print(f"  {k:22s} {na} {mx:14.4f}  {nb} {my:14.4f}  z {z:+.2f}")
    best: dict[str, dict[str, float]] = {}
    for r in range(a.rounds):
        for name, tree in ((na, ta), (nb, tb)) if r % 2 == 0 else ((nb, tb), (na, ta)):
            for model, ms in child(tree, "time", "200", "1").items():
                best.setdefault(name, {})[model] = min(ms, best.get(name, {}).get(model, math.inf))
    for name, t in best.items():
        print(f"{name}: ms per replication (best of {a.rounds}): simple {t['simple']:.3f}, full {t['full']:.3f}, "
              f"load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
