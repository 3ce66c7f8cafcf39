"""Result files: replications.parquet, runs.parquet, summary.json, manifest.json.

Writes are atomic (a temporary file in the same folder, then a rename), and an existing
non-empty result folder is never overwritten unless asked.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from sim import units

HEADLINE = ["cost_usd", "gpu_hours", "productive_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours",
            "idle_gpu_hours", "makespan_days", "energy_kwh", "co2_kg", "failures", "preemptions", "reruns",
            "mean_queue_wait_h", "ettr", "job_failures", "planned", "loss_spikes", "domain_failures", "down_gpu_hours",
            "restart_gpu_hours", "write_gpu_hours", "straggler_gpu_hours", "repair_wait_gpu_hours"]


def _whole(v: float) -> str:
    return f"{v:,.0f}"


def _tenths(v: float) -> str:
    return f"{v:,.1f}"


METRIC_FORMAT = {
    "cost_usd": units.format_usd, "gpu_hours": _whole, "lost_gpu_hours": _whole, "idle_gpu_hours": _whole,
    "makespan_days": lambda v: f"{v:,.1f} d", "energy_kwh": units.format_kwh, "co2_kg": units.format_kg,
    "failures": _tenths, "preemptions": _tenths, "mean_queue_wait_h": units.format_hours,
    "ettr": units.format_pct,
}
HEADLINE_HEAD = ["metric", "mean", "95% CI of mean", "P5", "P50", "P95", "nominal"]
NOMINAL_NOTE = ("nominal: one replication with every uncertain input at its median; its failures, preemptions and "
                "other random events are drawn as in any replication, so it can lie above or below the P50")


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


RESULT_FILES = ("replications.parquet", "runs.parquet", "summary.json", "manifest.json", "compare.json",
                "sweep.parquet", "backtest.json", "backtest.md")
LOCK = ".lock"


def os_problem(path: Path | str, e: OSError, then: str = "") -> str:
    """What went wrong writing under `path` and what to do about it (for an exit-2 message);
    `then` follows the fix (e.g. how to complete the run afterwards)."""
    what = e.strerror or str(e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{path}: the disk is full ({what}); free some space{then or ' and try again'}"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make it writable" if then else "choose a folder you can write to with --out"
        return f"{path}: cannot write there ({what}); {fix}{then}"
    if e.errno == errno.ENAMETOOLONG:
        return f"{path}: a name in the path is too long ({what}); choose a shorter --out"
    if e.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"{path}: a part of the path is a file, not a folder ({what}); choose another --out"
    return f"{path}: {what}; {'fix that' + then if then else 'choose another --out'}"


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_path(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{path}: is a symbolic link to {os.readlink(path)}, which does not exist; create its "
                          "target or choose another --out")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder; choose another --out")
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise OutputError(f"{str(path)!r}: the folder name is not valid UTF-8; choose another --out") from None


def prepare_dir(path: Path, overwrite: bool, lock: FolderLock | None = None) -> Path:
    """Make `path` a result folder to write into: created if needed, refused if it holds files
    (unless `overwrite`, which drops an earlier run's result files). With `lock`, the folder is
    locked for this process before anything in it is looked at or removed."""
    try:
        _check_path(path)
        path.mkdir(parents=True, exist_ok=True)
        if lock is not None:
            lock.acquire(path)
        if any(p.name != LOCK for p in path.iterdir()):
            if not overwrite:
                raise OutputError(f"{path}: folder exists and is not empty; choose another --out or add --overwrite")
            # --overwrite: drop an earlier run's files, so that nothing of it is left beside the new one
            for name in RESULT_FILES:
                (path / name).unlink(missing_ok=True)
            shutil.rmtree(path / ".parts", ignore_errors=True)
        probe = tempfile.TemporaryFile(dir=path)  # a read-only folder is refused now, not after the run
        probe.close()
    except OSError as e:
        if lock is not None:
            lock.release()
        raise OutputError(os_problem(path, e)) from None
    except OutputError:
        if lock is not None:
            lock.release()
        raise
    return path


class FolderLock:
    """One writer per result folder: a POSIX lock on `<folder>/.lock`, which holds the owner's
    pid, kept for the whole run. The kernel drops the lock when its owner dies (even by kill -9), so
    the lock of a killed run is taken over; worker processes do not inherit it."""

    _held: set[str] = set()  # folders locked by this process (a POSIX lock does not exclude its owner)

    def __init__(self) -> None:
        self.fd: int | None = None
        self.path: Path | None = None

    def acquire(self, folder: Path) -> FolderLock:
        import fcntl

        path = Path(folder) / LOCK
        key = os.path.realpath(path)
        for _ in range(20):
            if key in FolderLock._held:
                raise OutputError(f"{folder}: this process is already writing this folder; choose another --out")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise OutputError(f"{folder}: another sim (pid {owner}) is writing this folder; wait for it to "
                                  "finish, or choose another --out") from None
            if _same_file(fd, path):  # not a lock file its owner removed while we waited for it
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self.fd, self.path = fd, path
                FolderLock._held.add(key)
                return self
            os.close(fd)
        raise OutputError(f"{folder}: could not lock the folder; try again")  # pragma: no cover

    def release(self) -> None:
        if self.fd is None:
            return
        FolderLock._held.discard(os.path.realpath(self.path))
        self.path.unlink(missing_ok=True)  # before unlocking: a process waiting on it sees it replaced
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


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


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


# --- tables for a spreadsheet (--format csv / xlsx) ---------------------------------------------
EXPORT_FORMATS = ("csv", "xlsx")


def xlsx_missing() -> str | None:
    """Why an .xlsx workbook cannot be written here (its library, openpyxl, is missing), or None."""
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        return 'xlsx needs openpyxl, which is not installed: pip install openpyxl (or pip install "trainsim[xlsx]")'
    return None


def run_tables(summary: dict, estimate_total: dict | None = None) -> dict[str, pd.DataFrame]:
    """The headline table, the risk figures and the spend by period of a run, as numbers (not the
    terminal's text): {"headline": ..., "risk": ..., "spend": ...}."""
    m, nominal = summary["metrics"], summary.get("nominal") or {}
    head = [{"metric": k, "mean": v["mean"], "ci95_mean_low": v["ci95"]["mean"][0],
             "ci95_mean_high": v["ci95"]["mean"][1], "p5": v["p5"], "p50": v["p50"], "p95": v["p95"],
             "nominal": nominal.get(k)} for k, v in m.items()]
    r = summary.get("risk") or {}
    risk = [{"figure": f"budget for {k.removeprefix('p')}% confidence (USD)", "value": v, "ci95_low": None,
             "ci95_high": None} for k, v in r.get("budget_for_confidence", {}).items()]
    risk += [{"figure": f"finish date at {k.removeprefix('p')}% confidence", "value": v, "ci95_low": None,
              "ci95_high": None} for k, v in r.get("finish_date_at_confidence", {}).items()]
    for key, label, limit in (("p_over_budget", "P(cost > budget)", "budget_usd"), ("p_late", "P(late)", "deadline")):
        if key in r:
            lo, hi = r[f"{key}_ci95"]
            risk.append({"figure": f"{label}, {limit} {r[limit]}", "value": r[key], "ci95_low": lo, "ci95_high": hi})
    if estimate_total:
        for k in ("cost_usd", "usage_usd", "commitment_usd"):
            if k in estimate_total:
                risk.append({"figure": f"deterministic estimate (floor): {k}", "value": estimate_total[k],
                             "ci95_low": None, "ci95_high": None})
    period = summary.get("spend_period", "month")
    spend = pd.DataFrame(summary.get("spend_by_period", summary.get("spend_by_month")) or [])
    return {"headline": pd.DataFrame(head), "risk": pd.DataFrame(risk, columns=["figure", "value", "ci95_low",
                                                                                "ci95_high"]),
            "spend": spend.rename(columns={"month": "period", "week": "period"}).assign(period_kind=period)
            if not spend.empty else pd.DataFrame(columns=["period", "period_kind"])}


def compare_tables(report: dict) -> dict[str, pd.DataFrame]:
    """A comparison's side-by-side table (with P(over budget) and P(late) where set) and its pairs,
    as numbers; a sweep's table of costs and its break-even points."""
    if "sweep" in report:
        return {"sweep": pd.DataFrame(report["costs"]), "break_even": pd.DataFrame(report["break_even"])}
    risks = report.get("risk", {})
    rows = []
    for name, metrics in report["side_by_side"].items():
        row = {"strategy": name}
        for metric, d in metrics.items():
            row.update({f"{metric}_{s}": d[s] for s in ("mean", "p5", "p50", "p95") if s in d})
        row.update({k: risks.get(name, {}).get(k) for k in ("p_over_budget", "p_late")})
        rows.append(row)
    pairs = [{k: (v if not isinstance(v, (list, tuple)) else None) for k, v in p.items()}
             | {"diff_mean_ci95_low": p.get("diff_mean_ci95", [None, None])[0],
                "diff_mean_ci95_high": p.get("diff_mean_ci95", [None, None])[1]} for p in report["pairs"]]
    return {"strategies": pd.DataFrame(rows), "pairs": pd.DataFrame(pairs)}


def export_tables(folder: Path, tables: dict[str, pd.DataFrame], fmt: str, stem: str = "summary") -> list[Path]:
    """Write the tables: one CSV file each (`<stem>_<table>.csv`), or one workbook with a sheet each
    (`<stem>.xlsx`). Returns the paths written."""
    folder = Path(folder)
    if fmt == "csv":
        paths = []
        for name, df in tables.items():
            path = folder / f"{stem}_{name}.csv"
            atomic_write(path, lambda tmp, df=df: df.to_csv(tmp, index=False))
            paths.append(path)
        return paths
    problem = xlsx_missing()
    if problem:
        raise OutputError(problem)
    path = folder / f"{stem}.xlsx"
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xl:
        for name, df in tables.items():
            df.to_excel(xl, sheet_name=name[:31], index=False)
    write_bytes(path, buf.getvalue())
    return [path]
