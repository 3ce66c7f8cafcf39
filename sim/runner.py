"""Running many replications: chunks, serial / process / Dask backends, streaming to part files,
resume, stopping on precision, and the final result files.

Replications are cut into chunks of consecutive indices. Each finished chunk is written at once
to `<out>/.parts/` (atomically), so memory holds one chunk of per-run records at a time and an
interrupted run can be resumed; finished results are then assembled in replication order, so the
files are identical whatever the backend or worker count.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import math
import os
import secrets
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from sim.loader import Loaded
from sim.montecarlo import ChunkResult, Replicator
from sim.outputs import file_sha256, write_bytes, write_json, write_parquet
from sim.plan import assumptions
from sim.records import RUN_COLUMNS, RunColumns
from sim.stats import precision_met, spend_columns
from sim.stats import summarize as summarize_stats

log = logging.getLogger("sim.runner")
PARTS = ".parts"
RUN_ROWS_PER_CHUNK = 100_000  # run rows a chunk may hold in memory (about 25 MB) before it is written
AUTO_RUN_ROWS = 5_000_000  # run rows `--runs auto` keeps (runs.parquet of a few hundred MB); above, a sample


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
    runs_per_rep: int = 0  # runs in one replication at nominal inputs (0: unknown)
    runs: str = "auto"  # per-run records kept: all | none | auto | sample:N (sim.schema.runs_kept)

    def keep_runs(self) -> int | None:
        """The per-run records kept: those of replications below this number (None: all, 0: none)."""
        kind, _, n = self.runs.partition(":")
        if kind == "sample":
            return min(int(n), self.reps)
        if kind == "none":
            return 0
        if kind == "auto" and self.runs_per_rep and self.reps * self.runs_per_rep > AUTO_RUN_ROWS:
            return max(1, AUTO_RUN_ROWS // self.runs_per_rep)
        return None

    def chunk_size(self) -> int:
        if self.chunk:
            return self.chunk
        if self.precision:
            return 50
        w = max(self.workers, 1)
        size = max(5, min(500, math.ceil(self.reps / (w * 8))))
        if self.runs_per_rep and self.keep_runs() != 0:  # a chunk's run rows wait in memory: bound them
            size = max(1, min(size, RUN_ROWS_PER_CHUNK // self.runs_per_rep))
        # as many chunks for each worker (none waits for another's last chunk), unless they get too small
        even = math.ceil(self.reps / (math.ceil(math.ceil(self.reps / size) / w) * w))
        return even if even >= min(size, 5) else size


# --------------------------------------------------------------------------------------------
# Workers: one Replicator per process, built once


_WORKER: dict = {}


def _init_worker(loaded: Loaded, seed: int, method: str, size: int, parent: int | None = None) -> None:
    """Remember what this process works on; its Replicator is built when first needed. A worker
    started by a run (`parent`) watches that process and exits when it is gone."""
    _WORKER["args"] = (loaded, seed, method, size)
    _WORKER["rep"] = None
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(parent, os.getppid() == parent), daemon=True,
                         name="sim-watch-parent").start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process took the pid
        return False
    return True


def _watch_parent(parent: int, is_ppid: bool, every_s: float = 0.2) -> None:
    """Exit this worker as soon as the run that started it is gone (killed, even by kill -9), so
    that no worker is left running and writing part files. A forked worker is re-parented when its
    parent dies; one started by a fork server asks whether the parent pid still lives."""
    while True:
        time.sleep(every_s)
        if (os.getppid() != parent) if is_ppid else not _alive(parent):
            os._exit(1)


def worker_loaded() -> Loaded:
    """The scenario this worker process was started with (for task functions other than chunks)."""
    return _WORKER["args"][0]


def _replicator() -> Replicator:
    if _WORKER["rep"] is None:
        _WORKER["rep"] = Replicator(*_WORKER["args"])
    return _WORKER["rep"]


def _run_chunk(args: tuple) -> ChunkResult:
    """Run one chunk; with a parts folder (worker processes on this machine), write its files here,
    in the worker, and send back only the replication rows."""
    index, start, stop, strict, parts, keep = args
    res = _replicator().chunk(index, range(start, stop), strict, keep)
    if parts is not None:
        write_chunk(Path(parts), res)
        res.runs = RunColumns()
        res.written = True
    return res


def _import_all(names: tuple[str, ...]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # pragma: no cover - imported again, and the error raised, where it is used
            log.debug("preloading %s: %s", name, e)


def _dask_call(fn: Callable, loaded, seed, method, size, args):
    key = (loaded.sha256, seed, method, size)
    if _WORKER.get("key") != key:
        _init_worker(loaded, seed, method, size)
        _WORKER["key"] = key
    return fn(args)


def _chunks(settings: Settings, todo: list[int], parts: Path | None = None, serial: bool = False) -> list[tuple]:
    """Tasks: (chunk index, first replication, end, strict, parts folder or None, runs kept below).
    Worker processes on this machine write their own part files; Dask workers, maybe elsewhere, and
    a serial run (this process, which then assembles from memory) send results back."""
    c = settings.chunk_size()
    local = settings.backend != "dask" or not settings.scheduler  # a local Dask cluster shares our disk
    where = str(parts) if parts is not None and local and not serial else None
    keep = settings.keep_runs()
    return [(i, i * c, min((i + 1) * c, settings.reps), settings.strict, where, keep) for i in todo]


def pool_size(settings: Settings, tasks: int | None = None) -> int:
    """Worker processes to start: --workers, but no more than the chunks to run nor (on this
    machine) than its cores; a cap is logged."""
    n = max(settings.workers, 1)
    if settings.backend == "dask" and settings.scheduler:
        return n
    cores = default_workers()
    if n > cores:
        log.warning("--workers %d is more than this machine's %d cores: using %d", n, cores, cores)
        n = cores
    if tasks is not None and n > max(tasks, 1):
        log.info("%d chunks to run: using %d worker processes, not %d", tasks, max(tasks, 1), n)
        n = max(tasks, 1)
    return n


class Backend:
    """Where chunks run: in this process, in a pool of processes, or on a Dask cluster. `map`
    yields results in task order."""

    def __init__(self, loaded: Loaded, settings: Settings, tasks: int | None = None, preload: tuple[str, ...] = ()):
        self.loaded = loaded
        self.s = settings
        self.n = pool_size(settings, tasks)
        self.preload = preload  # modules wanted after the run, imported while other processes run it
        self.ex = None
        self.froze = False  # whether this backend froze the heap before forking its workers
        self.client = None
        self.cluster = None
        self.remote = None

    @property
    def serial(self) -> bool:
        """Chunks run in this process (no pool, no Dask)."""
        return self.ex is None and self.client is None

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
                    self.cluster = LocalCluster(n_workers=self.n, threads_per_worker=1, processes=True,
                                                dashboard_address=None, silence_logs=logging.ERROR)
                    self.client = Client(self.cluster)
            except (OSError, ValueError, TimeoutError) as e:
                raise RunError(f"--scheduler {s.scheduler}: cannot reach the Dask scheduler: {e}") from None
            self.remote = self.client.scatter(self.loaded, broadcast=True)
        elif self.n > 1:
            self.ex = ProcessPoolExecutor(max_workers=self.n, initializer=_init_worker,
                                          initargs=(self.loaded, s.seed, s.method, s.reps, os.getpid()))
        else:
            _init_worker(self.loaded, s.seed, s.method, s.reps)
        return self

    def map(self, tasks: list, fn: Callable = _run_chunk) -> Iterator:
        """fn(task) for each task, in task order; `fn` must be a module-level function (it is sent
        to other processes), and may read this run's scenario with worker_loaded()."""
        if self.client is not None:
            self._start_preload()
            yield from self._dask_map(tasks, fn)
        elif self.ex is not None:
            if gc.get_freeze_count() == 0:  # (neither a caller's own freeze nor this run's already made)
                gc.freeze()  # the objects the workers inherit: never scanned by their collector (see __exit__)
                self.froze = True
            results = self.ex.map(fn, tasks)  # every task submitted: the worker processes are forked
            self._start_preload()
            yield from results
        else:
            for t in tasks:
                yield fn(t)

    def _start_preload(self) -> None:
        """Import the modules wanted after the run (the report's plotting library, scipy for the
        summary) in a thread of this process while the workers run the chunks: this process mostly
        waits for them, and these imports, about a second, would otherwise run alone once the last
        chunk is in, with the other cores idle. Started after the workers are forked (none inherits a
        half-imported module); in a serial run they would only take turns with the simulation."""
        if self.preload:
            names, self.preload = self.preload, ()
            threading.Thread(target=_import_all, args=(names,), daemon=True, name="sim-preload").start()

    def _dask_map(self, tasks: list, fn: Callable) -> Iterator:
        """A bounded window of tasks in flight; a result is dropped as soon as it is used."""
        s = self.s
        window = max(2 * max(s.workers, 1), 4)
        pending: deque = deque()
        todo = iter(tasks)

        def submit(t):
            pending.append(self.client.submit(_dask_call, fn, self.remote, s.seed, s.method, s.reps, t, pure=False))

        for t in todo:
            submit(t)
            if len(pending) >= window:
                break
        while pending:
            f = pending.popleft()
            res = f.result()
            f.release()
            nxt = next(todo, None)
            if nxt is not None:
                submit(nxt)
            yield res

    def __exit__(self, *exc) -> None:
        if self.ex is not None:
            try:
                self.ex.shutdown(cancel_futures=True)
            finally:  # (a second Ctrl-C in the shutdown must not leave the caller's objects frozen)
                if self.froze:
                    gc.unfreeze()
                    self.froze = False
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# --------------------------------------------------------------------------------------------
# Part files, resume, assembly


ROW_GROUP = 1 << 17  # rows per row group of runs.parquet, whatever the chunk size or worker count


def runs_part(i: int) -> str:
    """The part file of chunk i's runs."""
    return f"runs-{i:06d}.arrow"


def _parquet_bytes(table: pa.Table) -> memoryview:
    """A table as Parquet, in Arrow's buffer (not copied into a new bytes object)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return memoryview(sink.getvalue())


def _arrow_bytes(table: pa.Table) -> memoryview:
    """A chunk's runs as an Arrow IPC file compressed with LZ4, in Arrow's buffer: written once and
    read once (by the process that assembles runs.parquet), so made for speed, not size: against
    Parquet without dictionaries, the same size, written in half the time and read in a quarter
    (a chunk of 250 replications of bench_reference: 6 and 2.5 ms against 14 and 12)."""
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema, options=ipc.IpcWriteOptions(compression="lz4")) as w:
        w.write_table(table)
    return memoryview(sink.getvalue())


def chunk_tables(res: ChunkResult) -> dict[str, pa.Table]:
    """The tables of a finished chunk's part files: its replications and, when any run is kept, its
    runs (the last)."""
    i = res.index
    reps = pd.DataFrame(res.rows) if res.rows else pd.DataFrame({"replication": pd.Series([], dtype="int64")})
    tables = {f"reps-{i:06d}.parquet": pa.Table.from_pandas(reps, preserve_index=False)}
    if len(res.runs):
        tables[runs_part(i)] = pa.table(res.runs.columns())
    return tables


def chunk_record(i: int) -> str:
    """The record of chunk i's part files. Named for the parts' format (`.v2`: runs as Arrow IPC): a
    trainsim that wrote Parquet parts and looks for `chunk-<i>.json` sees such a chunk as unfinished
    and runs it again, rather than assembling it without its runs."""
    return f"chunk-{i:06d}.v2.json"


def write_parts(parts: Path, res: ChunkResult, tables: dict[str, pa.Table]) -> None:
    """The part files of a finished chunk, then its record, `chunk_record(i)` (written last: its presence marks
    the chunk complete), which records each part's rows, size and SHA-256 so that a resume can
    check them. Mostly encoding, hashing and writing, which let other threads run."""
    i = res.index
    files = {}
    for name, table in tables.items():
        data = _arrow_bytes(table) if name == runs_part(i) else _parquet_bytes(table)
        write_bytes(parts / name, data)
        files[name] = {"rows": table.num_rows, "bytes": len(data), "sha256": file_sha256(data)}
    if res.errors:
        data = json.dumps(res.errors, default=str).encode()
        write_bytes(parts / f"errors-{i:06d}.json", data)
        files[f"errors-{i:06d}.json"] = {"rows": len(res.errors), "bytes": len(data), "sha256": file_sha256(data)}
    write_json(parts / chunk_record(i), {"chunk": i, "replications": len(res.rows) + len(res.errors), "files": files})


def write_chunk(parts: Path, res: ChunkResult) -> None:
    """The part files of a finished chunk (nothing if its worker wrote them)."""
    if not res.written:
        write_parts(parts, res, chunk_tables(res))


def chunk_problem(parts: Path, i: int, expected_reps: int) -> str | None:
    """Why the part files of chunk i cannot be used (missing, truncated, changed), or None."""
    record = parts / chunk_record(i)
    if not record.exists():
        if (parts / f"chunk-{i:06d}.json").exists():
            return "was written by an earlier version of trainsim (runs as Parquet)"
        return "was interrupted while its files were written"
    try:
        meta = json.loads(record.read_text())
        files = meta["files"]
        if meta["replications"] != expected_reps:
            return f"holds {meta['replications']} replications, not {expected_reps}"
        if f"reps-{i:06d}.parquet" not in files:
            return "lists no replication file"
        for name, info in files.items():
            path = parts / name
            if not path.is_file():
                return f"{name} is missing"
            data = path.read_bytes()
            if len(data) != info["bytes"] or file_sha256(data) != info["sha256"]:
                return f"{name} is truncated or changed ({len(data)} bytes, {info['bytes']} written)"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"its record {chunk_record(i)} is unreadable ({e})"
    return None


def done_chunks(parts: Path, settings: Settings) -> set[int]:
    """The chunks whose part files are all there and intact; any other is run again (logged)."""
    c = settings.chunk_size()
    n_chunks = math.ceil(settings.reps / c)
    found = {int(p.stem.split("-")[1]) for p in parts.glob("*-*.*") if p.stem.split("-")[0] in ("chunk", "reps")
             and p.stem.split("-")[1].isdigit()}
    good = set()
    for i in sorted(x for x in found if x < n_chunks):
        why = chunk_problem(parts, i, min((i + 1) * c, settings.reps) - i * c)
        if why is None:
            good.add(i)
        else:
            log.warning("chunk %d of the interrupted run: %s; it is run again", i, why)
    return good


def _runs_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """The writer of runs.parquet: dictionary encoding for the columns that repeat (names, counts,
    flags, replication and run numbers), not for the floating-point ones, whose values rarely
    repeat: trying a dictionary on them cost three quarters of the writing and made the file larger
    (4,000 replications of bench_reference: 1.21 s and 115 MB against 0.30 s and 100 MB)."""
    return pq.ParquetWriter(path, schema, use_dictionary=[f.name for f in schema if not pa.types.is_floating(f.type)])


class Assembler:
    """Builds the final files from finished chunks, in chunk order, while later chunks still run:
    runs.parquet is streamed to a temporary file of this process (renamed at the end) in row groups
    of ROW_GROUP rows, so that its bytes do not depend on the chunk size; replication rows and
    errors are small and kept. With `runs` False (no per-run record kept), no runs.parquet."""

    def __init__(self, out: Path, parts: Path, runs: bool = True):
        self.out, self.parts, self.runs = out, parts, runs
        self.frames: list[pd.DataFrame] = []
        self.errors: list[dict] = []
        self.writer = None
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.tmp = parts / f".runs.parquet.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        self.next = 0

    def add(self, i: int, rows: list | None = None, errors: list | None = None) -> pd.DataFrame:
        """Chunk i from its part files; with `errors` (a chunk whose parts this process writes) its
        rows and errors as given, its runs being added by the writer (`_add_runs`)."""
        assert i == self.next, "chunks are assembled in order"
        self.next += 1
        df = pd.DataFrame(rows) if rows is not None else pd.read_parquet(self.parts / f"reps-{i:06d}.parquet")
        if len(df):
            self.frames.append(df)
        if errors is not None:
            self.errors.extend(json.loads(json.dumps(errors, default=str)))  # as if read back from its part file
            return df
        e = self.parts / f"errors-{i:06d}.json"
        if e.exists():
            self.errors.extend(json.loads(e.read_text()))
        r = self.parts / runs_part(i)
        if r.exists():
            with pa.OSFile(str(r)) as f:  # not memory-mapped: a buffer left uncompressed would point into the map
                self._add_runs(ipc.open_file(f).read_all())
        return df

    def _add_runs(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = _runs_writer(self.tmp, table.schema)
        self.pending.append(table if table.schema.equals(self.writer.schema) else table.cast(self.writer.schema))
        self.pending_rows += table.num_rows
        while self.pending_rows >= ROW_GROUP:
            self._flush(ROW_GROUP)

    def _flush(self, n: int) -> None:
        table = pa.concat_tables(self.pending).combine_chunks()
        self.writer.write_table(table.slice(0, n), row_group_size=n)
        rest = table.slice(n)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows

    def close(self) -> tuple[pd.DataFrame, list[dict]]:
        if self.writer is None and self.runs:
            self.writer = _runs_writer(self.tmp, pa.schema([(c, pa.string()) for c in ["replication", *RUN_COLUMNS]]))
        if self.writer is not None:
            if self.pending_rows:
                self._flush(self.pending_rows)
            self.writer.close()
            self.writer = None
            os.replace(self.tmp, self.parts / "runs.parquet")
        reps = pd.concat(self.frames, ignore_index=True) if self.frames else pd.DataFrame({"replication": []})
        reps = reps.sort_values("replication", kind="stable").reset_index(drop=True)
        months = spend_columns(reps) + spend_columns(reps, "week")  # a period with no spend in a replication
        # spent nothing
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


class PrecisionStop:
    """The precision stopping rule, applied chunk by chunk: stop at the first chunk boundary where
    the 95% intervals of mean and P95 cost are within the target (and at least `min_reps` ran)."""

    def __init__(self, settings: Settings):
        self.target = settings.precision
        self.min_reps = settings.min_reps
        self.costs: list[pd.Series] = []

    def reached(self, df: pd.DataFrame, done_reps: int) -> bool:
        if not self.target:
            return False
        if len(df):
            self.costs.append(df["cost_usd"])
        return bool(self.costs) and done_reps >= self.min_reps and precision_met(pd.concat(self.costs),
                                                                                  self.target)[0]


@dataclass
class _Pass:
    """What one pass over the chunks needs: where part files go, what is already done, and where
    finished chunks are assembled."""

    settings: Settings
    parts: Path
    have: set[int]
    asm: Assembler
    progress: Callable[[int, int], None] | None
    stop: PrecisionStop
    writer: ThreadPoolExecutor | None = None  # writes a chunk's parts and runs while the next one runs
    pending: Future | None = None

    def take(self, i: int, fresh: Iterator[ChunkResult]) -> bool:
        """Assemble chunk i (from disk if an earlier attempt or a worker process wrote it, else the
        next fresh result, whose files are then written); True when the precision target is met."""
        res = None if i in self.have else next(fresh)
        if res is None or res.written:
            self.flush()  # runs are assembled in chunk order
            df = self.asm.add(i, res.rows if res else None)
        else:
            df = self.asm.add(i, res.rows, res.errors)
            self.flush()  # one chunk written at a time: memory holds at most two chunks' runs
            job = _ChunkWrite(self.parts, res, self.asm)
            self.pending = self.writer.submit(job) if self.writer else job()
        s = self.settings
        done_reps = min((i + 1) * s.chunk_size(), s.reps)  # chunks are taken in order
        if self.progress:
            self.progress(done_reps, s.reps)
        return self.stop.reached(df, done_reps)

    def flush(self) -> None:
        """Wait for the chunk being written (its error, if any, is raised here)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()


@dataclass
class _ChunkWrite:
    """A fresh chunk's part files, then its runs into runs.parquet: the tables are made at once (by
    the thread that holds the interpreter), the encoding and writing later (by the writer thread,
    while the next chunk runs)."""

    parts: Path
    res: ChunkResult
    asm: Assembler

    def __post_init__(self) -> None:
        self.tables = chunk_tables(self.res)
        self.res.runs = RunColumns()  # the table holds them now

    def __call__(self) -> None:
        write_parts(self.parts, self.res, self.tables)
        runs = self.tables.get(runs_part(self.res.index))
        if runs is not None:
            self.asm._add_runs(runs)


def read_state(out: Path) -> dict:
    """The state an interrupted run left in `out/.parts/state.json`; RunError when there is none or
    it cannot be read."""
    state_file = out / PARTS / "state.json"
    if not state_file.exists():
        raise RunError(f"{out}: nothing to resume (no {PARTS}/state.json)")
    try:
        state = json.loads(state_file.read_text())
        for k in ("seed", "reps", "method", "chunk", "precision"):
            state[k]  # noqa: B018 - every key a resume needs must be there
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunError(f"{out}: cannot resume: {PARTS}/state.json is unreadable or incomplete ({e}); start the run "
                       "again with the same FILE and --out, adding --overwrite") from None
    return state


def _resume_state(loaded: Loaded, settings: Settings, out: Path, resume: bool, extra_state: dict | None) -> set[int]:
    """Check an interrupted run's state against these settings and return its finished chunks, each
    checked against what was recorded when it was written; or, for a fresh run, write the state a
    later --resume checks against."""
    parts = out / PARTS
    state = {"scenario_sha256": loaded.sha256, "seed": settings.seed, "reps": settings.reps,
             "method": settings.method, "chunk": settings.chunk_size(), "precision": settings.precision,
             "runs": settings.runs}
    if not resume:
        write_json(parts / "state.json", {**state, **(extra_state or {})})
        return set()
    old = {"runs": "all", **read_state(out)}  # a run started before --runs kept every run
    diff = [k for k in state if old.get(k) != state[k]]
    if diff:
        raise RunError(f"{out}: cannot resume: {', '.join(diff)} differ from the interrupted run "
                       f"({', '.join(f'{k}={old.get(k)!r}' for k in diff)})")
    for tmp in parts.glob(".*.tmp"):  # left by a writer that was killed
        tmp.unlink(missing_ok=True)
    return done_chunks(parts, settings)


def _run_batch(backend: Backend, run: _Pass, ids: list[int]) -> int | None:
    """Chunks `ids` in order; the chunk at which the precision target is met, or None. The whole
    batch is let finish before returning, so that nothing is left running in the backend."""
    todo = [i for i in ids if i not in run.have]
    fresh = iter(backend.map(_chunks(run.settings, todo, run.parts, backend.serial)))
    met = None
    for i in ids:
        if run.take(i, fresh):
            met = i
            break
    for _ in fresh:
        pass
    return met


def _run_chunks(backend: Backend, run: _Pass) -> tuple[int, str]:
    """Every chunk, in order: (chunks assembled, why the run stopped). With a precision target,
    fresh chunks are asked for one batch (a chunk per worker) at a time, so the stopping point does
    not depend on the worker count."""
    s = run.settings
    n_chunks = math.ceil(s.reps / s.chunk_size())
    batch = max(s.workers, 1) if s.precision else n_chunks
    for b0 in range(0, n_chunks, batch):
        met = _run_batch(backend, run, list(range(b0, min(b0 + batch, n_chunks))))
        if met is not None:
            return met + 1, "precision"
    return n_chunks, "cap" if s.precision else "replications"


def _nominal(loaded: Loaded, settings: Settings) -> dict | None:
    try:
        return Replicator(loaded, settings.seed, settings.method, settings.reps).nominal()
    except Exception as e:  # the nominal case is reported, never fatal
        log.warning("the nominal case failed: %s", e)
        return None


@contextmanager
def _writer_turns(interval_s: float = 0.0005):
    """Let the writer thread have the interpreter soon when it asks (after 0.5 ms rather than 5 ms):
    between its long encoding and writing calls, which run beside the simulation, it needs the
    interpreter for a moment, and at the default interval those moments, queued behind the
    simulation, take longer than the chunk it writes. A thread that does not ask costs nothing."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(min(old, interval_s))
    try:
        yield
    finally:
        sys.setswitchinterval(old)


@contextmanager
def system_allocator():
    """Arrow's buffers from the C library's allocator while a run writes its files: Arrow's default
    (mimalloc) hands the tens of megabytes a chunk's tables take back to the system when they are
    freed, and getting them again costs a page fault and the zeroing of each page, chunk after chunk
    (measured: about a third of the CPU time of a 2-worker run's own process). The default comes
    back after."""
    old = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(old)


def execute(loaded: Loaded, settings: Settings, out: Path, progress: Callable[[int, int], None] | None = None,
            resume: bool = False, extra_state: dict | None = None, preload: tuple[str, ...] = ()) -> Outcome:
    """Run (or complete, with `resume`) every replication into `out/.parts`, streaming each
    finished chunk to its part files, and assemble replications.parquet and runs.parquet there.
    `preload`: modules the caller needs after the run (see Backend._start_preload)."""
    parts = out / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    have = _resume_state(loaded, settings, out, resume, extra_state)
    t0 = time.perf_counter()
    c = settings.chunk_size()
    if progress:
        progress(sum(min((i + 1) * c, settings.reps) - i * c for i in have), settings.reps)
    keep = settings.keep_runs()
    if keep is not None and settings.runs == "auto":
        log.warning("per-run records: keeping those of the first %s of %s replications in runs.parquet (%s "
                    "replications x %s runs is more than %s rows); --runs all keeps every one, --runs none none",
                    f"{keep:,}", f"{settings.reps:,}", f"{settings.reps:,}", f"{settings.runs_per_rep:,}",
                    f"{AUTO_RUN_ROWS:,}")
    asm = Assembler(out, parts, runs=keep != 0)
    try:
        with system_allocator():
            with (Backend(loaded, settings, math.ceil(settings.reps / c) - len(have), preload) as backend,
                  ThreadPoolExecutor(1, thread_name_prefix="sim-writer") as writer, _writer_turns()):
                run = _Pass(settings, parts, have, asm, progress, PrecisionStop(settings), writer)
                upto, stop_reason = _run_chunks(backend, run)
                run.flush()
            runtime = time.perf_counter() - t0
            reps, errors = asm.close()
    except BaseException:
        asm.abort()
        raise
    if settings.strict and errors:  # pragma: no cover - strict raises inside the chunk
        raise RunError(errors[0]["error"])
    return Outcome(reps, errors, _nominal(loaded, settings), stop_reason, runtime, upto, len(have))


def summarize(outcome: Outcome, loaded: Loaded, settings: Settings) -> dict:
    """summary.json of a finished run (the statistics are sim.stats.summarize)."""
    head = {"scenario": loaded.scenario.project.name, "scenario_sha256": loaded.sha256, "seed": settings.seed,
            "replications": int(len(outcome.reps)), "failed_replications": len(outcome.errors),
            "sampling": settings.method, "stopped_by": outcome.stop_reason, "priors": loaded.priors,
            "assumptions": assumptions(loaded.scenario, loaded.catalog)}
    return summarize_stats(outcome.reps, loaded.scenario, head, outcome.nominal, settings.precision)


RESULTS = ("replications.parquet", "runs.parquet", "summary.json", "manifest.json")  # published in this order


def finish(out: Path) -> None:
    """Publish the finished files (written beside the parts) into the result folder, the manifest
    last, then drop the parts: until then an interrupted run shows no final file at all."""
    for name in RESULTS:
        if name != "runs.parquet" or (out / PARTS / name).exists():  # none with --runs none
            os.replace(out / PARTS / name, out / name)
    shutil.rmtree(out / PARTS, ignore_errors=True)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def is_tty() -> bool:
    return sys.stderr.isatty()
