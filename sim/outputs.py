"""Result files: replications.parquet, runs.parquet, summary.json, manifest.json.

Writes are atomic (a temporary file in the same folder, then a rename), and an existing
non-empty result folder is never overwritten unless asked.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import pandas as pd

HEADLINE = ["cost_usd", "gpu_hours", "productive_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours",
            "idle_gpu_hours", "makespan_days", "energy_kwh", "co2_kg", "failures", "preemptions", "reruns",
            "mean_queue_wait_h"]


class OutputError(Exception):
    """A problem with the output folder (exit code 2)."""


def prepare_dir(path: Path, overwrite: bool) -> Path:
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise OutputError(f"{path}: folder exists and is not empty; choose another --out or add --overwrite")
        # --overwrite: drop an earlier run's files, so that nothing of it is left beside the new one
        import shutil

        for name in ("replications.parquet", "runs.parquet", "summary.json", "manifest.json", "compare.json",
                     "sweep.parquet"):
            (path / name).unlink(missing_ok=True)
        shutil.rmtree(path / ".parts", ignore_errors=True)
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


def _finite(x):
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def write_json(path: Path, data: dict) -> None:
    def w(tmp):
        with open(tmp, "w") as f:
            json.dump(_finite(data), f, indent=2, default=str, allow_nan=False)
            f.write("\n")

    _atomic(path, w)


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    _atomic(path, lambda tmp: df.to_parquet(tmp, index=False))
