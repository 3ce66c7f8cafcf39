"""Running many replications: chunks, serial / process / Dask backends, streaming to part files,
resume, stopping on precision, and the final result files.

Replications are cut into chunks of consecutive indices. Each finished chunk is written at once
to `<out>/.parts/` (atomically), so memory holds one chunk of per-run records at a time and an
interrupted run can be resumed; finished results are then assembled in replication order, so the
files are identical whatever the backend or worker count.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.loader import Loaded
from sim.montecarlo import ChunkResult, Replicator, ci95, describe
from sim.outputs import HEADLINE, atomic_write, write_json, write_parquet
from sim.records import RUN_COLUMNS

log = logging.getLogger("sim.runner")
PARTS = ".parts"


class RunError(Exception):
    """A run that cannot go on (bad settings, mismatched resume, every replication failed)."""


@dataclass
class Settings:
    seed: int
    reps: int  # replications wanted (the cap when precision is set)
    method: str = "random"
    workers: int = 1
    backend: str = "process"  # process | dask
    scheduler: str | None = None
    chunk: int = 0  # 0: chosen from reps and workers
    strict: bool = False
    precision: float | None = None  # relative half-width of the 95% CI of mean and P95 cost
    min_reps: int = 100

    def chunk_size(self) -> int:
        if self.chunk:
            return self.chunk
        if self.precision:
            return 50
        return max(5, min(500, math.ceil(self.reps / (max(self.workers, 1) * 8))))


# --------------------------------------------------------------------------------------------
# Workers: one Replicator per process, built once


_WORKER: dict = {}


def _init_worker(loaded: Loaded, seed: int, method: str, size: int) -> None:
    _WORKER["rep"] = Replicator(loaded, seed, method, size)


def _run_chunk(args: tuple) -> ChunkResult:
    """Run one chunk; with a parts folder (workers on this machine), write its files here, in the
    worker, and send back only the replication rows."""
    index, start, stop, strict, parts = args
    res = _WORKER["rep"].chunk(index, range(start, stop), strict)
    if parts is not None:
        write_chunk(Path(parts), res)
        res.runs = []
        res.written = True
    return res


def _dask_chunk(loaded, seed, method, size, args):
    key = (loaded.sha256, seed, method, size)
    if _WORKER.get("key") != key:
        _init_worker(loaded, seed, method, size)
        _WORKER["key"] = key
    return _run_chunk(args)


def _chunks(settings: Settings, todo: list[int], parts: Path | None = None) -> list[tuple]:
    """Tasks: (chunk index, first replication, end, strict, parts folder or None). Workers on this
    machine write their own part files; Dask workers, maybe elsewhere, send results back."""
    c = settings.chunk_size()
    local = settings.backend != "dask" or not settings.scheduler  # a local Dask cluster shares our disk
    where = str(parts) if parts is not None and local else None
    return [(i, i * c, min((i + 1) * c, settings.reps), settings.strict, where) for i in todo]


class Backend:
    """Where chunks run: in this process, in a pool of processes, or on a Dask cluster. `map`
    yields results in task order."""

    def __init__(self, loaded: Loaded, settings: Settings):
        self.loaded = loaded
        self.s = settings
        self.ex = None
        self.client = None
        self.cluster = None
        self.remote = None

    def __enter__(self) -> Backend:
        s = self.s
        if s.backend == "dask":
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise RunError("--backend dask needs Dask: pip install 'trainsim[dask]'") from None
            try:
                if s.scheduler:
                    self.client = Client(s.scheduler, timeout="20s")
                else:
                    self.cluster = LocalCluster(n_workers=max(s.workers, 1), threads_per_worker=1, processes=True,
                                                dashboard_address=None, silence_logs=logging.ERROR)
                    self.client = Client(self.cluster)
            except (OSError, ValueError, TimeoutError) as e:
                raise RunError(f"--scheduler {s.scheduler}: cannot reach the Dask scheduler: {e}") from None
            self.remote = self.client.scatter(self.loaded, broadcast=True)
        elif s.workers > 1:
            self.ex = ProcessPoolExecutor(max_workers=s.workers, initializer=_init_worker,
                                          initargs=(self.loaded, s.seed, s.method, s.reps))
        else:
            _init_worker(self.loaded, s.seed, s.method, s.reps)
        return self

    def map(self, tasks: list) -> Iterator[ChunkResult]:
        s = self.s
        if self.client is not None:
            # a bounded window of chunks in flight; a result is dropped as soon as it is used
            window = max(2 * max(s.workers, 1), 4)
            pending: deque = deque()
            todo = iter(tasks)
            for t in todo:
                pending.append(self.client.submit(_dask_chunk, self.remote, s.seed, s.method, s.reps, t, pure=False))
                if len(pending) >= window:
                    break
            while pending:
                f = pending.popleft()
                res = f.result()
                f.release()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(self.client.submit(_dask_chunk, self.remote, s.seed, s.method, s.reps, nxt,
                                                      pure=False))
                yield res
        elif self.ex is not None:
            yield from self.ex.map(_run_chunk, tasks)
        else:
            for t in tasks:
                yield _run_chunk(t)

    def __exit__(self, *exc) -> None:
        if self.ex is not None:
            self.ex.shutdown(cancel_futures=True)
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# --------------------------------------------------------------------------------------------
# Part files, resume, assembly


def write_chunk(parts: Path, res: ChunkResult) -> None:
    if getattr(res, "written", False):
        return
    i = res.index
    if res.runs:
        columns = list(zip(*res.runs, strict=True))
        table = pa.table(dict(zip(["replication", *RUN_COLUMNS], columns, strict=True)))
        atomic_write(parts / f"runs-{i:06d}.parquet", lambda tmp: pq.write_table(table, tmp))
    if res.errors:
        write_json(parts / f"errors-{i:06d}.json", res.errors)
    # written last: its presence marks the chunk complete
    write_parquet(parts / f"reps-{i:06d}.parquet", pd.DataFrame(res.rows) if res.rows else
                  pd.DataFrame({"replication": pd.Series([], dtype="int64")}))


def done_chunks(parts: Path) -> set[int]:
    return {int(p.stem.split("-")[1]) for p in parts.glob("reps-*.parquet")}


class Assembler:
    """Builds the final files from finished chunks, in chunk order, while later chunks still run:
    runs.parquet is streamed to a temporary file (renamed at the end); replication rows and errors
    are small and kept."""

    def __init__(self, out: Path, parts: Path):
        self.out, self.parts = out, parts
        self.frames: list[pd.DataFrame] = []
        self.errors: list[dict] = []
        self.writer = None
        self.tmp = parts / ".runs.parquet.tmp"
        self.next = 0

    def add(self, i: int, rows: list | None = None) -> pd.DataFrame:
        assert i == self.next, "chunks are assembled in order"
        self.next += 1
        df = pd.DataFrame(rows) if rows is not None else pd.read_parquet(self.parts / f"reps-{i:06d}.parquet")
        if len(df):
            self.frames.append(df)
        e = self.parts / f"errors-{i:06d}.json"
        if e.exists():
            self.errors.extend(json.loads(e.read_text()))
        r = self.parts / f"runs-{i:06d}.parquet"
        if r.exists():
            table = pq.read_table(r)
            if self.writer is None:
                self.writer = pq.ParquetWriter(self.tmp, table.schema)
            self.writer.write_table(table.cast(self.writer.schema))
        return df

    def close(self) -> tuple[pd.DataFrame, list[dict]]:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, pa.schema([(c, pa.string()) for c in ["replication",
                                                                                          *RUN_COLUMNS]]))
        self.writer.close()
        self.writer = None
        os.replace(self.tmp, self.parts / "runs.parquet")
        reps = pd.concat(self.frames, ignore_index=True) if self.frames else pd.DataFrame({"replication": []})
        reps = reps.sort_values("replication", kind="stable").reset_index(drop=True)
        months = spend_columns(reps)  # a month with no spend in a replication spent nothing
        reps = reps[[c for c in reps.columns if c not in months] + months]
        reps[months] = reps[months].fillna(0.0)
        write_parquet(self.parts / "replications.parquet", reps)
        return reps, sorted(self.errors, key=lambda e: e["replication"])

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# The whole run


@dataclass
class Outcome:
    reps: pd.DataFrame
    errors: list
    nominal: dict | None
    stop_reason: str
    runtime_s: float
    chunks: int
    resumed_chunks: int = 0
    extra: dict = field(default_factory=dict)


def precision_met(cost: pd.Series, target: float) -> tuple[bool, dict]:
    a = cost.to_numpy(dtype=float)
    if a.size < 2:
        return False, {}
    c = ci95(a)
    mean, p95 = float(a.mean()), float(pd.Series(a).quantile(0.95))
    rel_mean = (c["mean"][1] - c["mean"][0]) / 2 / abs(mean) if mean else math.inf
    rel_p95 = max(c["p95"][1] - p95, p95 - c["p95"][0]) / abs(p95) if p95 else math.inf
    info = {"mean_half_width_rel": rel_mean, "p95_half_width_rel": rel_p95}
    return rel_mean <= target and rel_p95 <= target, info


def execute(loaded: Loaded, settings: Settings, out: Path, progress: Callable[[int, int], None] | None = None,
            resume: bool = False, extra_state: dict | None = None) -> Outcome:
    parts = out / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    c = settings.chunk_size()
    n_chunks = math.ceil(settings.reps / c)
    state = {"scenario_sha256": loaded.sha256, "seed": settings.seed, "reps": settings.reps,
             "method": settings.method, "chunk": c, "precision": settings.precision}
    state_file = parts / "state.json"
    have: set[int] = set()
    if resume:
        if not state_file.exists():
            raise RunError(f"{out}: nothing to resume (no {PARTS}/state.json)")
        old = json.loads(state_file.read_text())
        diff = [k for k in state if old.get(k) != state[k]]
        if diff:
            raise RunError(f"{out}: cannot resume: {', '.join(diff)} differ from the interrupted run "
                           f"({', '.join(f'{k}={old.get(k)!r}' for k in diff)})")
        have = {i for i in done_chunks(parts) if i < n_chunks}
    else:
        write_json(state_file, {**state, **(extra_state or {})})
    t0 = time.perf_counter()
    done_reps = sum(min((i + 1) * c, settings.reps) - i * c for i in have)
    if progress:
        progress(done_reps, settings.reps)
    stop_reason = "replications"
    upto = n_chunks
    asm = Assembler(out, parts)
    try:
        with Backend(loaded, settings) as backend:
            # Chunks are taken in order (finished ones from an earlier attempt, fresh ones as they
            # come back) and assembled at once. With a precision target the run stops at the first
            # chunk boundary where it is met; fresh chunks are asked for one batch (a chunk per
            # worker) at a time, so the stopping point does not depend on the worker count.
            batch = max(settings.workers, 1) if settings.precision else n_chunks
            costs: list = []
            if settings.precision:
                stop_reason = "cap"
            met = False
            for b0 in range(0, n_chunks, batch):
                ids = list(range(b0, min(b0 + batch, n_chunks)))
                fresh = iter(backend.map(_chunks(settings, [i for i in ids if i not in have], parts)))
                for i in ids:
                    if i in have:
                        df = asm.add(i)
                    else:
                        res = next(fresh)
                        write_chunk(parts, res)
                        df = asm.add(i, res.rows)
                    done_reps = min((i + 1) * c, settings.reps)  # chunks are taken in order
                    if progress:
                        progress(done_reps, settings.reps)
                    if settings.precision:
                        if len(df):
                            costs.append(df["cost_usd"])
                        if costs and done_reps >= settings.min_reps and precision_met(
                                pd.concat(costs), settings.precision)[0]:
                            upto, stop_reason, met = i + 1, "precision", True
                            break
                for _ in fresh:  # let the rest of the batch finish before leaving the backend
                    pass
                if met:
                    break
        runtime = time.perf_counter() - t0
        reps, errors = asm.close()
    except BaseException:
        asm.abort()
        raise
    if settings.strict and errors:  # pragma: no cover - strict raises inside the chunk
        raise RunError(errors[0]["error"])
    nominal = None
    try:
        nominal = Replicator(loaded, settings.seed, settings.method, settings.reps).nominal()
    except Exception as e:  # the nominal case is reported, never fatal
        log.warning("the nominal case failed: %s", e)
    return Outcome(reps, errors, nominal, stop_reason, runtime, upto, len(have))


def summarize(outcome: Outcome, loaded: Loaded, settings: Settings) -> dict:
    reps = outcome.reps
    scn = loaded.scenario
    out = {
        "scenario": scn.project.name,
        "scenario_sha256": loaded.sha256,
        "seed": settings.seed,
        "replications": int(len(reps)),
        "failed_replications": len(outcome.errors),
        "sampling": settings.method,
        "stopped_by": outcome.stop_reason,
        "metrics": {},
        "workloads": {},
        "nominal": outcome.nominal and {m: outcome.nominal[m] for m in HEADLINE if m in outcome.nominal},
    }
    for m in HEADLINE:
        if m in reps:
            out["metrics"][m] = {**describe(reps[m]), "ci95": ci95(reps[m])}
    for w in scn.workloads:
        name = w.name
        if f"cost_usd_wl_{name}" not in reps:
            continue
        cost, runs = reps[f"cost_usd_wl_{name}"], reps[f"runs_wl_{name}"]
        out["workloads"][name] = {
            "runs": describe(runs)["mean"],
            "cost_usd": describe(cost),
            "cost_usd_per_run": describe(cost / runs),
            "gpu_hours": describe(reps[f"gpu_hours_wl_{name}"]),
        }
    if settings.precision:
        ok, info = precision_met(reps["cost_usd"], settings.precision) if len(reps) else (False, {})
        out["precision"] = {"target": settings.precision, "met": ok, **info}
    out["risk"] = risk(reps, scn)
    out["spend_by_month"] = spend_by_month(reps)
    out["breakdown"] = breakdown(reps)
    return out


CONFIDENCES = (50, 80, 90, 95)


def _wilson(k: int, n: int) -> list[float]:
    """95% Wilson interval for a proportion k/n."""
    if n == 0:
        return [float("nan"), float("nan")]
    z = 1.959963984540054
    if k == 0:
        return [0.0, min(1.0, z * z / (n + z * z))]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def risk(reps: pd.DataFrame, scn) -> dict:
    """Budget and schedule risk: the chance of going over budget or past the deadline, and the
    budget and finish date needed for a given confidence."""
    from datetime import timedelta

    cost = reps["cost_usd"].to_numpy(dtype=float)
    days = reps["makespan_days"].to_numpy(dtype=float)
    n = len(cost)
    start = scn.project.start
    out: dict = {
        "budget_for_confidence": {f"p{c}": float(np.percentile(cost, c)) for c in CONFIDENCES},
        "finish_date_at_confidence": {
            f"p{c}": (start + timedelta(days=float(np.percentile(days, c)))).isoformat() for c in CONFIDENCES},
    }
    if scn.project.budget_usd is not None:
        over = int((cost > scn.project.budget_usd).sum())
        out["budget_usd"] = scn.project.budget_usd
        out["p_over_budget"] = over / n
        out["p_over_budget_ci95"] = _wilson(over, n)
    if scn.project.deadline is not None:
        limit_days = (scn.project.deadline - start).days + 1  # finished by the end of the deadline day
        late = int((days > limit_days).sum())
        out["deadline"] = scn.project.deadline.isoformat()
        out["p_late"] = late / n
        out["p_late_ci95"] = _wilson(late, n)
    return out


def spend_columns(reps: pd.DataFrame) -> list[str]:
    return sorted(c for c in reps.columns if c.startswith("spend_usd_"))


def spend_by_month(reps: pd.DataFrame) -> list[dict]:
    """Per calendar month: P10/P50/P90 and mean of the spend, and of the cumulative spend."""
    cols = spend_columns(reps)
    if not cols:
        return []
    m = reps[cols].fillna(0.0).to_numpy(dtype=float)
    cum = np.cumsum(m, axis=1)
    out = []
    for j, c in enumerate(cols):
        q = np.percentile(m[:, j], [10, 50, 90])
        qc = np.percentile(cum[:, j], [10, 50, 90])
        out.append({"month": c.removeprefix("spend_usd_"), "mean": float(m[:, j].mean()), "p10": float(q[0]),
                    "p50": float(q[1]), "p90": float(q[2]), "cumulative_p10": float(qc[0]),
                    "cumulative_p50": float(qc[1]), "cumulative_p90": float(qc[2])})
    return out


def breakdown(reps: pd.DataFrame) -> dict:
    """Mean cost by workload, pool and pricing tier; shares of accelerator-hours by what they did."""
    def means(prefix: str) -> dict:
        return {c.removeprefix(prefix): float(reps[c].mean()) for c in reps.columns if c.startswith(prefix)}

    held = float((reps["gpu_hours"] + reps["idle_gpu_hours"]).sum())
    shares = {k: (float(reps[f"{k}_gpu_hours"].sum()) / held if held else 0.0)
              for k in ("productive", "lost", "overhead", "idle")}
    return {"cost_usd_by_workload": means("cost_usd_wl_"), "cost_usd_by_pool": means("cost_usd_pool_"),
            "cost_usd_by_tier": means("cost_usd_tier_"), "gpu_hours_shares": shares}


RESULTS = ("replications.parquet", "runs.parquet", "summary.json", "manifest.json")  # published in this order


def finish(out: Path) -> None:
    """Publish the finished files (written beside the parts) into the result folder, the manifest
    last, then drop the parts: until then an interrupted run shows no final file at all."""
    for name in RESULTS:
        os.replace(out / PARTS / name, out / name)
    shutil.rmtree(out / PARTS, ignore_errors=True)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def is_tty() -> bool:
    return sys.stderr.isatty()
