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

from sim import units

HEADLINE = ["cost_usd", "gpu_hours", "productive_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours",
            "idle_gpu_hours", "makespan_days", "energy_kwh", "co2_kg", "failures", "preemptions", "reruns",
            "mean_queue_wait_h"]


def _whole(v: float) -> str:
    return f"{v:,.0f}"


def _tenths(v: float) -> str:
    return f"{v:,.1f}"


METRIC_FORMAT = {
    "cost_usd": units.format_usd, "gpu_hours": _whole, "lost_gpu_hours": _whole, "idle_gpu_hours": _whole,
    "makespan_days": lambda v: f"{v:,.1f} d", "energy_kwh": units.format_kwh, "co2_kg": units.format_kg,
    "failures": _tenths, "preemptions": _tenths, "mean_queue_wait_h": units.format_hours,
}
HEADLINE_HEAD = ["metric", "mean", "95% CI of mean", "P5", "P50", "P95", "nominal"]


def headline_rows(summary: dict, metrics=tuple(METRIC_FORMAT)) -> list[list[str]]:
    """Rows of the headline table (terminal and report): mean with its 95% interval, P5/P50/P95,
    and the nominal case."""
    m = summary["metrics"]
    nominal = summary.get("nominal") or {}
    rows = []
    for k in metrics:
        f = METRIC_FORMAT[k]
        ci = m[k]["ci95"]["mean"]
        rows.append([k, f(m[k]["mean"]), f"{f(ci[0])}..{f(ci[1])}" if None not in ci else "-",
                     *(f(m[k][s]) for s in ("p5", "p50", "p95")), f(nominal[k]) if k in nominal else "-"])
    return rows


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


def atomic_write(path: Path, write) -> None:
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

    atomic_write(path, w)


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))
