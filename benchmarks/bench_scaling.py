"""One replication of a hyperscale project at growing numbers of experiment runs: wall time, time
per run, events per second and peak memory (this process's maximum resident set).

The project: one 16,384-GPU run of 54 days (failures at 1.97e-5 per GPU-hour, `auto` checkpoints
with a 1-minute write) beside N eight-GPU experiments of about 4 h (lognormal spread 0.3) that use
a 512-GPU spot pool first and fall back to an experiments pool of N/12 GPUs (at least 1,024).

    python benchmarks/bench_scaling.py                 # 1k, 10k, 100k
    python benchmarks/bench_scaling.py 1000 10000 100000 999999   # any sizes (at most 999,999 experiments)

Each size runs in a fresh process, so the peak memory is that size's own. The wall time and the
time per run against the runs go to a log-log plot (`--png PATH`, default benchmarks/scaling.png).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def scenario(n: int) -> dict:
    pool = max(1024, (n // 12) // 8 * 8)
    return {"project": {"name": "scale", "start": "2026-01-01"},
            "pools": [{"name": "big", "accelerator": "h100", "count": 16384, "price_usd_per_gpu_h": 2.0},
                      {"name": "exp", "accelerator": "h100", "count": pool, "price_usd_per_gpu_h": 2.0},
                      {"name": "spot", "accelerator": "h100", "count": 512, "pricing": "spot",
                       "price_usd_per_gpu_h": 1.0, "preemption": {"rate_per_node_h": 0.01}, "fallback": "exp"}],
            "workloads": [{"name": "main", "hours_per_run": "54 d", "accelerators": 16384, "pools": ["big"]},
                          {"name": "exps", "runs": n, "hours_per_run": "4 h", "accelerators": 8,
                           "pools": ["spot", "exp"], "run_length": {"kind": "lognormal", "sigma": 0.3}}],
            "reliability": {"failure_rate_per_gpu_h": 1.97e-5, "checkpoint": {"interval": "auto", "write": "1 min"}},
            "simulation": {"priors": "off"}}


def one(n: int) -> dict:
    sys.path.insert(0, str(REPO))
    from sim.loader import load_data
    from sim.montecarlo import replicate

    loaded = load_data(scenario(n), f"bench_scaling {n}")
    t = time.perf_counter()
    (res,) = list(replicate(loaded, 0, range(1)))
    dt = time.perf_counter() - t
    events = res.row["events"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"runs": n + 1, "seconds": dt, "us_per_run": dt / (n + 1) * 1e6, "events": events,
            "events_per_s": events / dt, "peak_mb": peak_mb}


def plot(rows: list[dict], path: Path) -> None:
    """Wall time and time per run against runs, log-log, with the line of linear growth through
    the 10k point: a measured point above it grows faster than linearly."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r["runs"] for r in rows]
    base = next((r for r in rows if r["runs"] >= 10_000), rows[0])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.loglog(runs, [r["seconds"] for r in rows], "o-", label="measured")
    a.loglog(runs, [base["seconds"] * n / base["runs"] for n in runs], "--", color="grey",
             label=f"linear from {base['runs']:,} runs")
    a.set(xlabel="runs in the replication", ylabel="wall time of one replication (s)", title="Time")
    b.semilogx(runs, [r["us_per_run"] for r in rows], "o-")
    b.axhline(base["us_per_run"] * 1.5, ls=":", color="grey", label=f"1.5 x the time per run at {base['runs']:,}")
    top = max(base["us_per_run"] * 1.5, *(r["us_per_run"] for r in rows)) * 1.2
    b.set(xlabel="runs in the replication", ylabel="microseconds per run", title="Time per run", ylim=(0, top))
    for ax in (a, b):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("One replication: a 16,384-GPU run beside N eight-GPU experiments")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(sizes: list[int], png: Path | None) -> None:
    rows = []
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout))
        r = rows[-1]
        print(f"{r['runs']:>9,} runs  {r['seconds']:8.2f} s  {r['us_per_run']:6.1f} us/run  "
              f"{r['events_per_s']:>10,.0f} events/s  peak {r['peak_mb']:,.0f} MB", flush=True)
    base = next((r for r in rows if r["runs"] >= 10_000), rows[0])
    print(f"time per run at the largest size / at {base['runs']:,}: {rows[-1]['us_per_run'] / base['us_per_run']:.2f}")
    if png is not None and len(rows) > 1:
        plot(rows, png)
        print(f"plot: {png}")
    print(json.dumps(rows), file=sys.stderr)  # the figures, to plot again or to quote


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(one(int(sys.argv[2]))))
    else:
        import argparse

        ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument("sizes", nargs="*", type=int, help="experiment runs per size (default 1k 10k 100k)")
        ap.add_argument("--png", type=Path, default=REPO / "benchmarks" / "scaling.png",
                        help="where the log-log plot goes (default benchmarks/scaling.png)")
        ap.add_argument("--no-png", action="store_true", help="no plot")
        a = ap.parse_args()
        main(a.sizes or [1_000, 10_000, 100_000], None if a.no_png else a.png)
