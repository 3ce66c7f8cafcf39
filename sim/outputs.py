"""Result files: replications.parquet, runs.parquet, summary.json, manifest.json.

Writes are atomic (a temporary file in the same folder, then a rename), and an existing
non-empty result folder is never overwritten unless asked.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from sim.engine import RUN_COLUMNS
from sim.montecarlo import describe

HEADLINE = ["cost_usd", "gpu_hours", "productive_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours",
            "idle_gpu_hours", "makespan_days", "energy_kwh", "co2_kg", "failures", "preemptions", "reruns",
            "mean_queue_wait_h"]


class OutputError(Exception):
    """A problem with the output folder (exit code 2)."""


def prepare_dir(path: Path, overwrite: bool) -> Path:
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise OutputError(f"{path}: folder exists and is not empty; choose another --out or add --overwrite")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    def w(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, default=str)
            f.write("\n")

    _atomic(path, w)


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    _atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


def tables(rows: list[dict], runs: list[tuple]) -> tuple[pd.DataFrame, pd.DataFrame]:
    reps = pd.DataFrame(rows).sort_values("replication", kind="stable").reset_index(drop=True)
    run_df = pd.DataFrame(runs, columns=["replication", *RUN_COLUMNS])
    run_df = run_df.sort_values(["replication", "workload", "run"], kind="stable").reset_index(drop=True)
    return reps, run_df


def summarize(reps: pd.DataFrame, scenario_name: str, sha: str, seed: int, workloads: list[str]) -> dict:
    out = {
        "scenario": scenario_name,
        "scenario_sha256": sha,
        "seed": seed,
        "replications": int(len(reps)),
        "metrics": {m: describe(reps[m]) for m in HEADLINE if m in reps},
        "workloads": {},
    }
    for name in workloads:
        cost = reps[f"cost_usd_wl_{name}"]
        runs = reps[f"runs_wl_{name}"]
        out["workloads"][name] = {
            "runs": describe(runs)["mean"],
            "cost_usd": describe(cost),
            "cost_usd_per_run": describe(cost / runs),
            "gpu_hours": describe(reps[f"gpu_hours_wl_{name}"]),
        }
    return out
