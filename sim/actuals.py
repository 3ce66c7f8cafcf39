"""What a running project has done so far (its actuals), read as data for a re-forecast.

Two sources (docs/actuals.md): a generic table, one row per run or run attempt (CSV or Parquet,
by extension), and Slurm's `sacct --parsable2` output, recognised by its header and mapped to
workloads by the scenario's `actuals.map`. A spend ledger (date, amount_usd, pool) may come
beside either, for costs not tied to runs.

Every bad row becomes an Issue at ("row N", column) of the file it is in (the header is row 1),
up to MAX_ISSUES at once, raised as sim.loader.ScenarioError (exit code 2 through the CLI).

Times are naive datetimes; a time-zone-aware value is converted to UTC. A value given as a date
alone stands for midnight at its start (for a run's start and end) or for the whole day (a
ledger entry, and `as_of`).
"""

from __future__ import annotations

import csv
import difflib
import fnmatch
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sim import units
from sim.loader import Issue, Loaded, ScenarioError

STATES = ("completed", "running", "failed", "cancelled")
RUN_COLUMNS = ("workload", "run_id", "pool", "accelerators", "start", "end", "state", "gpu_hours", "cost_usd")
RUN_OPTIONAL = ("progress", "tokens_done", "interruptions")
LEDGER_COLUMNS = ("date", "amount_usd")
LEDGER_OPTIONAL = ("pool",)
SACCT_COLUMNS = ("JobID", "JobName", "Partition", "Start", "End", "Elapsed", "AllocTRES", "State")
SACCT_STATES = {  # Slurm job state -> state here; None: not started, skipped
    "COMPLETED": "completed", "RUNNING": "running", "SUSPENDED": "running", "PENDING": None,
    "FAILED": "failed", "TIMEOUT": "failed", "NODE_FAIL": "failed", "OUT_OF_MEMORY": "failed",
    "PREEMPTED": "failed", "BOOT_FAIL": "failed", "DEADLINE": "failed", "REQUEUED": "failed",
    "CANCELLED": "cancelled",
}
PARQUET = (".parquet", ".pq")
MAX_ISSUES = 20  # problems reported at once
MAX_BYTES = 200_000_000  # size of an actuals or ledger file


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class RunActual:
    """One run (or run attempt) as far as it has got."""

    workload: str  # a workload name of the scenario
    run_id: str
    pool: str | None  # a pool name of the scenario (None if unknown)
    accelerators: int
    start: datetime | None  # None for a run cancelled or failed before it started
    end: datetime | None  # None while running
    state: str  # completed | running | failed | cancelled
    gpu_hours: float  # accelerator-hours used so far
    cost_usd: float | None  # None when the source has no cost (then the re-forecast prices it)
    progress: float | None  # fraction of the run's work done (0..1), from `progress` or `tokens_done`
    interruptions: int | None
    row: int  # source row number (1-based, header = row 1), for messages
    tokens_done: float | None = None  # as given (progress is tokens_done / the workload's median tokens)


@dataclass(frozen=True)
class LedgerEntry:
    """Spend not tied to a run (storage, support, a reservation's bill)."""

    date: date
    amount_usd: float  # negative for a credit or refund
    pool: str | None
    row: int


@dataclass(frozen=True)
class Actuals:
    runs: tuple[RunActual, ...]
    ledger: tuple[LedgerEntry, ...]
    source: str  # the actuals file as given
    as_of: datetime  # nothing in the data is later than this

    def by_workload(self) -> dict[str, list[RunActual]]:
        """The runs of each workload that has any, in source order."""
        out: dict[str, list[RunActual]] = {}
        for r in self.runs:
            out.setdefault(r.workload, []).append(r)
        return out

    def in_state(self, state: str, workload: str | None = None) -> list[RunActual]:
        """Runs in one state (of one workload, if given)."""
        return [r for r in self.runs if r.state == state and (workload is None or r.workload == workload)]

    @property
    def gpu_hours(self) -> float:
        """Accelerator-hours used so far by every run, whatever its state."""
        return math.fsum(r.gpu_hours for r in self.runs)

    @property
    def run_cost_usd(self) -> float:
        """Cost of the runs the source gives a cost for."""
        return math.fsum(r.cost_usd for r in self.runs if r.cost_usd is not None)

    @property
    def ledger_usd(self) -> float:
        return math.fsum(e.amount_usd for e in self.ledger)

    @property
    def cost_usd(self) -> float:
        """Known spend: runs with a cost plus the ledger (runs without a cost are not priced here)."""
        return self.run_cost_usd + self.ledger_usd

    @property
    def unpriced(self) -> list[RunActual]:
        """Runs the source gives no cost for (the re-forecast prices them)."""
        return [r for r in self.runs if r.cost_usd is None]

    @property
    def failures(self) -> int:
        """Runs (attempts) that failed."""
        return len(self.in_state("failed"))

    @property
    def interruptions(self) -> int:
        """Interruptions seen within runs, where the source counts them."""
        return sum(r.interruptions for r in self.runs if r.interruptions is not None)


# --------------------------------------------------------------------------------------------
# Problems and cells


class _Problems:
    """Issues of one file, at most MAX_ISSUES of them kept."""

    def __init__(self, file: str):
        self.file = file
        self.issues: list[Issue] = []
        self.more = 0

    def add(self, row: int, column: str | None, message: str) -> None:
        if len(self.issues) >= MAX_ISSUES:
            self.more += 1
            return
        self.issues.append(Issue((f"row {row}",) if column is None else (f"row {row}", column), message))

    def raise_any(self) -> None:
        if not self.issues:
            return
        issues = list(self.issues)
        if self.more:
            issues.append(Issue((), f"... and {self.more} more problems (the first {MAX_ISSUES} are shown)"))
        raise ScenarioError(self.file, issues)


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v))


class _Row:
    """One row's cells; reading a cell records its problem and marks the row bad."""

    def __init__(self, n: int, cells: dict[str, Any], problems: _Problems):
        self.n, self.cells, self.problems, self.ok = n, cells, problems, True

    def fail(self, column: str | None, message: str) -> None:
        self.ok = False
        self.problems.add(self.n, column, message)

    def get(self, column: str, parse: Callable[[Any], Any], required: bool = False) -> Any:
        v = self.cells.get(column)
        if _blank(v):
            if required:
                self.fail(column, "is empty; a value is needed")
            return None
        try:
            return parse(v)
        except ValueError as e:
            self.fail(column, str(e))
            return None


def _text(v: Any) -> str:
    return str(v).strip()


def _datetime(v: Any) -> datetime:
    """An ISO date or date-time (a date alone is midnight at its start), naive (aware -> UTC)."""
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v.strip())
        except ValueError:
            raise ValueError(f"expected an ISO date or date-time such as 2026-01-05 or 2026-01-05T14:30, "
                             f"got {v.strip()!r}") from None
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v
    if isinstance(v, date):
        return datetime.combine(v, time())
    raise ValueError(f"expected an ISO date or date-time such as 2026-01-05, got {v!r}")


def _day(v: Any) -> date:
    """A calendar day: an ISO date (a date-time gives its day)."""
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    return _datetime(v).date()


def _at_least_0(parse: Callable[[Any], float]) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        x = parse(v)
        if x < 0:
            raise ValueError(f"must be >= 0, got {x:g}")
        return x

    return check


def _whole(v: Any) -> int:
    x = units.parse_count(v, "a whole number such as 8")
    if x < 0 or x != int(x):
        raise ValueError(f"must be a whole number >= 0, got {x:g}")
    return int(x)


def _fraction01(v: Any) -> float:
    x = units.parse_fraction(v)
    if not 0 <= x <= 1:
        raise ValueError(f"must be between 0 and 1 (a fraction of the run's work), got {x:g}")
    return x


def _state(v: Any) -> str:
    s = _text(v).lower()
    if s not in STATES:
        raise ValueError(_unknown("state", _text(v), STATES))
    return s


def _unknown(kind: str, name: str, names) -> str:
    names = list(names)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
    return f"unknown {kind} {name!r}{hint} ({kind}s: {shown})"


# --------------------------------------------------------------------------------------------
# Files


@dataclass
class _Table:
    kind: str  # csv | parquet | sacct
    columns: list[str]
    rows: list[tuple[int, dict[str, Any]]]  # (row number, cells)


def _read_bytes(path: Path, file: str) -> bytes:
    if not path.exists():
        raise ScenarioError(file, [Issue((), "no such file")])
    if not path.is_file():
        raise ScenarioError(file, [Issue((), "is not a regular file; give a CSV, Parquet or sacct file")])
    if path.stat().st_size > MAX_BYTES:
        raise ScenarioError(file, [Issue((), f"is larger than {MAX_BYTES // 1_000_000} MB, the most an actuals "
                                         "file may be")])
    try:
        return path.read_bytes()
    except OSError as e:
        raise ScenarioError(file, [Issue((), f"cannot read the file: {e.strerror or e}")]) from None


def _read_table(path: str | Path, file: str) -> _Table:
    p = Path(path)
    data = _read_bytes(p, file)
    if p.suffix.lower() in PARQUET:
        return _read_parquet(data, file)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        row = data.count(b"\n", 0, e.start) + 1
        raise ScenarioError(file, [Issue((f"row {row}",), f"is not UTF-8 text (byte 0x{data[e.start]:02x}); save "
                                         "the file as UTF-8")]) from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise ScenarioError(file, [Issue((), "the file is empty; expected a header row (generic actuals: "
                                         f"{', '.join(RUN_COLUMNS)}; or sacct --parsable2 output)")])
    first = lines[0].split("|")
    if "JobID" in first:
        return _split_sacct(lines, file)
    rows = list(csv.reader(io.StringIO(text, newline="")))  # a row number counts records, as spreadsheets do
    header = [c.strip() for c in rows[0]]
    return _Table("csv", header, _cells(header, rows[1:], file))


def _cells(header: list[str], rows: list[list[Any]], file: str, start: int = 2) -> list[tuple[int, dict]]:
    """(row number, {column: value}) of each non-blank row; a row of the wrong width is an error."""
    out = []
    problems = _Problems(file)
    for n, values in enumerate(rows, start=start):
        if not any(not _blank(v) for v in values):
            continue
        if len(values) != len(header):
            problems.add(n, None, f"has {len(values)} values, but the header has {len(header)} columns")
            continue
        out.append((n, dict(zip(header, values, strict=True))))
    problems.raise_any()
    return out


def _split_sacct(lines: list[str], file: str) -> _Table:
    """`sacct --parsable2` (or --parsable, whose lines end in '|')."""
    header = lines[0].split("|")
    trailing = header[-1] == ""
    if trailing:
        header = header[:-1]
    missing = [c for c in SACCT_COLUMNS if c not in header]
    if missing:
        raise ScenarioError(file, [Issue(("row 1",), f"looks like sacct output, but lacks the column(s) "
                                         f"{', '.join(missing)}; export with sacct --parsable2 "
                                         f"--format={','.join(SACCT_COLUMNS)}")])
    rows = [line.split("|") for line in lines[1:]]
    if trailing:
        rows = [r[:-1] if r and r[-1] == "" else r for r in rows]
    return _Table("sacct", header, _cells(header, rows, file))


def _plain(v: Any) -> Any:
    """A Parquet cell as a plain Python value (None for missing, datetime for timestamps)."""
    if v is None:
        return None
    if hasattr(v, "to_pydatetime"):
        return None if v != v else v.to_pydatetime()  # NaT != NaT
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    return None if isinstance(v, float) and math.isnan(v) else v


def _read_parquet(data: bytes, file: str) -> _Table:
    import pandas as pd

    try:
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as e:  # pyarrow raises several kinds for a file that is not Parquet
        raise ScenarioError(file, [Issue((), f"cannot read the file as Parquet: {e}")]) from None
    header = [str(c).strip() for c in df.columns]
    values = [[_plain(v) for v in rec] for rec in df.itertuples(index=False, name=None)]
    return _Table("parquet", header, _cells(header, values, file))


def _check_columns(table: _Table, file: str, required: tuple, optional: tuple) -> None:
    """Every column known, none twice, none required missing."""
    allowed = [*required, *optional]
    issues = []
    for c in sorted({c for c in table.columns if table.columns.count(c) > 1}):
        issues.append(Issue(("row 1", c), "column given twice"))
    for c in table.columns:
        if c not in allowed:
            close = difflib.get_close_matches(c, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            sacct = " (sacct output needs --parsable2)" if "JobID" in c else ""
            issues.append(Issue(("row 1", c), f"unknown column {c!r}{hint}{sacct} (columns: {', '.join(allowed)})"))
    missing = [c for c in required if c not in table.columns]
    if missing:
        issues.append(Issue(("row 1",), f"missing column(s) {', '.join(missing)} (required: {', '.join(required)}; "
                            f"optional: {', '.join(optional)})"))
    if issues:
        raise ScenarioError(file, issues[:MAX_ISSUES])


# --------------------------------------------------------------------------------------------
# Rows -> records


class _Scenario:
    """What the rows are checked against: the scenario's workloads, pools and actuals.map."""

    def __init__(self, loaded: Loaded):
        scn = loaded.scenario
        self.workloads = {w.name: w for w in scn.workloads}
        self.pools = {p.name: p for p in scn.pools}
        self.patterns = list(scn.actuals.map.items())

    def workload(self, v: Any) -> str:
        name = _text(v)
        if name not in self.workloads:
            raise ValueError(_unknown("workload", name, self.workloads))
        return name

    def pool(self, v: Any) -> str:
        name = _text(v)
        if name not in self.pools:
            raise ValueError(_unknown("pool", name, self.pools))
        return name

    def job_workload(self, v: Any) -> str:
        """A Slurm JobName's workload: the first pattern of actuals.map that matches, or its own name."""
        name = _text(v)
        for pattern, target in self.patterns:
            if fnmatch.fnmatchcase(name, pattern):
                return target
        if name in self.workloads:
            return name
        if not self.patterns:
            raise ValueError(f"job name {name!r} is no workload's name and the scenario has no actuals.map; add "
                             "`actuals: {map: {PATTERN: WORKLOAD}}` (e.g. 'pretrain-*': pretrain)")
        shown = ", ".join(f"{p!r} -> {t}" for p, t in self.patterns)
        raise ValueError(f"no pattern of actuals.map matches job name {name!r}, nor is it a workload's name "
                         f"(patterns, tried in order: {shown})")

    def tokens(self, workload: str) -> tuple[float | None, bool]:
        """A workload's tokens per run (the median if uncertain) and whether they are fixed."""
        t = self.workloads[workload].tokens
        if t is None:
            return None, True
        fixed = isinstance(t, (int, float))
        return (float(t) if fixed else float(t.median())), fixed


def _progress(row: _Row, scn: _Scenario, workload: str | None) -> tuple[float | None, float | None]:
    """(progress, tokens_done) of a generic row."""
    progress = row.get("progress", _fraction01)
    done = row.get("tokens_done", _at_least_0(units.parse_count))
    if progress is not None and done is not None:
        row.fail("tokens_done", "give progress or tokens_done, not both")
        return None, None
    if done is None or workload is None:
        return progress, done
    total, fixed = scn.tokens(workload)
    if total is None:
        row.fail("tokens_done", f"workload {workload} gives no tokens (its size is given another way), so "
                 "tokens_done cannot give its progress; give progress (0..1) instead")
        return None, None
    if fixed and done > total * (1 + 1e-9):
        row.fail("tokens_done", f"{done:g} is more than a run of workload {workload} has ({total:g} tokens); "
                 "progress would be above 1")
        return None, None
    return min(1.0, done / total), done


def _generic_run(row: _Row, scn: _Scenario) -> RunActual | None:
    workload = row.get("workload", scn.workload, required=True)
    run = dict(
        workload=workload,
        run_id=row.get("run_id", _text, required=True),
        pool=row.get("pool", scn.pool),
        accelerators=row.get("accelerators", _whole, required=True),
        start=row.get("start", _datetime),
        end=row.get("end", _datetime),
        state=row.get("state", _state, required=True),
        gpu_hours=row.get("gpu_hours", _at_least_0(units.parse_plain), required=True),
        cost_usd=row.get("cost_usd", _at_least_0(units.parse_usd)),
        interruptions=row.get("interruptions", _whole),
        row=row.n,
    )
    run["progress"], run["tokens_done"] = _progress(row, scn, workload)
    if not row.ok:
        return None
    out = RunActual(**run)
    _check_run(row, out, scn, GENERIC_NAMES)
    return out if row.ok else None


GENERIC_NAMES = {"start": "start", "end": "end", "accelerators": "accelerators"}
SACCT_NAMES = {"start": "Start", "end": "End", "accelerators": "AllocTRES"}


def _check_run(row: _Row, run: RunActual, scn: _Scenario, names: dict[str, str]) -> None:
    """What one run's cells say together: its pool holds it, its end follows its start, its state
    agrees with its dates."""
    pool = scn.pools.get(run.pool) if run.pool else None
    if pool is not None and run.accelerators > pool.max_count:
        row.fail(names["accelerators"], f"{run.accelerators} accelerators, more than pool {pool.name} ever has "
                 f"({pool.max_count})")
    if run.start is not None and run.end is not None and run.end < run.start:
        row.fail(names["end"], f"{run.end.isoformat(' ')} is before the start ({run.start.isoformat(' ')})")
    if run.state == "running" and run.end is not None:
        row.fail(names["end"], "a running run has no end yet; leave it empty, or give the state the run ended in")
    if run.state != "running" and run.end is None and run.start is not None:
        row.fail(names["end"], f"a {run.state} run needs its end (empty only while running)")
    if run.state in ("completed", "running") and run.start is None:
        row.fail(names["start"], f"a {run.state} run needs its start")


# -- sacct -------------------------------------------------------------------------------------

_ELAPSED = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
_GPU_TRES = re.compile(r"^gres/gpu(?::[^=]+)?$")


def _sacct_time(v: Any) -> datetime | None:
    s = _text(v)
    return None if s in ("Unknown", "None", "N/A") else _datetime(s)


def _elapsed_h(v: Any) -> float:
    """Slurm's Elapsed: [D-]HH:MM:SS (or MM:SS) -> hours."""
    m = _ELAPSED.match(_text(v))
    if not m:
        raise ValueError(f"expected an elapsed time such as 02:03:04 or 1-02:03:04, got {_text(v)!r}")
    d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
    return d * 24 + h + mi / 60 + s / 3600


def _gpus(v: Any) -> int:
    """GPUs in AllocTRES: gres/gpu=N, or the sum of gres/gpu:TYPE=N when no untyped count is given."""
    untyped, typed = None, 0
    for item in _text(v).split(","):
        key, eq, value = item.strip().partition("=")
        if not eq or not _GPU_TRES.match(key):
            continue
        n = _whole(value)
        if key == "gres/gpu":
            untyped = n
        else:
            typed += n
    return untyped if untyped is not None else typed


def _sacct_state(v: Any) -> str | None:
    """'' for PENDING (skipped); else the state here."""
    word = _text(v).split()[0].rstrip("+").upper() if _text(v) else ""
    if word not in SACCT_STATES:
        raise ValueError(f"unknown Slurm state {_text(v)!r} (known: {', '.join(SACCT_STATES)})")
    return SACCT_STATES[word] or ""


def _sacct_run(row: _Row, scn: _Scenario) -> RunActual | None:
    """One sacct line as a run; None for a job step (JobID with '.'), a pending job or a bad row."""
    job = _text(row.cells.get("JobID") or "")
    state = row.get("State", _sacct_state, required=True)
    if "." in job or state == "":
        return None
    partition = _text(row.cells.get("Partition") or "")
    run = dict(
        workload=row.get("JobName", scn.job_workload, required=True), run_id=job,
        pool=partition if partition in scn.pools else None,
        start=row.get("Start", _sacct_time), end=row.get("End", _sacct_time), state=state,
        cost_usd=None, progress=None, interruptions=None, row=row.n,
    )
    elapsed = row.get("Elapsed", _elapsed_h, required=True)
    gpus = row.get("AllocTRES", _gpus)
    if not job:
        row.fail("JobID", "is empty; a value is needed")
    if not row.ok:
        return None
    if not gpus and run["start"] is not None and elapsed:
        row.fail("AllocTRES", f"no GPUs in {_text(row.cells.get('AllocTRES') or '')!r} (expected gres/gpu=N); a "
                 "job without GPUs cannot be a run: leave it out, or narrow the actuals.map pattern")
        return None
    out = RunActual(accelerators=gpus or 0, gpu_hours=(gpus or 0) * elapsed, **run)
    _check_run(row, out, scn, SACCT_NAMES)
    return out if row.ok else None


# -- ledger ------------------------------------------------------------------------------------


def _ledger_entry(row: _Row, scn: _Scenario) -> LedgerEntry | None:
    entry = dict(date=row.get("date", _day, required=True),
                 amount_usd=row.get("amount_usd", units.parse_usd, required=True),
                 pool=row.get("pool", scn.pool), row=row.n)
    return LedgerEntry(**entry) if row.ok else None


def _records(table: _Table, file: str, build: Callable[[_Row, _Scenario], Any], scn: _Scenario) -> list:
    problems = _Problems(file)
    out = [build(_Row(n, cells, problems), scn) for n, cells in table.rows]
    problems.raise_any()
    return [r for r in out if r is not None]


# --------------------------------------------------------------------------------------------
# Entry point


def _as_of(given: date | datetime | str | None, runs: list[RunActual], ledger: list[LedgerEntry],
           file: str) -> datetime:
    """as_of as given (a date: the end of that day), else the latest time in the data."""
    if isinstance(given, str):
        try:
            given = date.fromisoformat(given.strip()) if len(given.strip()) == 10 else _datetime(given)
        except ValueError:
            raise ScenarioError(file, [Issue((), f"as_of: expected an ISO date or date-time such as 2026-03-01 or "
                                             f"2026-03-01T12:00, got {given!r}")]) from None
    if isinstance(given, datetime):
        return _datetime(given)
    if isinstance(given, date):
        return datetime.combine(given, time()) + timedelta(days=1)
    if given is not None:
        raise TypeError(f"as_of must be a date or datetime, got {given!r}")
    times = [t for r in runs for t in (r.start, r.end) if t is not None]
    times += [datetime.combine(e.date, time()) + timedelta(days=1) for e in ledger]
    if not times:
        raise ScenarioError(file, [Issue((), "no start or end time in the data to take as_of from; give as_of")])
    return max(times)


def _check_future(runs: list[RunActual], names: dict[str, str], as_of: datetime, file: str) -> None:
    problems = _Problems(file)
    for r in runs:
        for key, t in (("start", r.start), ("end", r.end)):
            if t is not None and t > as_of:
                problems.add(r.row, names[key], f"{t.isoformat(' ')} is after as_of ({as_of.isoformat(' ')}): "
                             "actuals cannot be in the future")
    problems.raise_any()


def _check_future_ledger(ledger: list[LedgerEntry], as_of: datetime, file: str) -> None:
    problems = _Problems(file)
    for e in ledger:
        if datetime.combine(e.date, time()) >= as_of:
            problems.add(e.row, "date", f"{e.date} is after as_of ({as_of.isoformat(' ')}): spend cannot be in "
                         "the future")
    problems.raise_any()


def read_ledger(path: str | Path, loaded: Loaded) -> list[LedgerEntry]:
    """A spend ledger (CSV or Parquet: date, amount_usd, optional pool), checked row by row."""
    file = str(path)
    table = _read_table(path, file)
    if table.kind == "sacct":
        raise ScenarioError(file, [Issue(("row 1",), "is sacct output; a ledger has the columns date, amount_usd "
                                         "and pool")])
    _check_columns(table, file, LEDGER_COLUMNS, LEDGER_OPTIONAL)
    return _records(table, file, _ledger_entry, _Scenario(loaded))


def read_actuals(path: str | Path, loaded: Loaded, as_of: date | datetime | str | None = None,
                 ledger: str | Path | None = None) -> Actuals:
    """The actuals in `path` (generic CSV or Parquet by extension, or sacct --parsable2 output,
    recognised by its header), checked against the scenario `loaded`, with an optional spend
    ledger.

    `as_of` is the moment the actuals describe: a datetime, or a date meaning the end of that day
    (an ISO string is read as either, for `--as-of`).
    By default it is the latest start or end of any run (or the end of the latest ledger day), so
    nothing is in its future; a start, end or ledger date after a given `as_of` is an error.

    Raises ScenarioError naming the file, row and column of every problem (up to MAX_ISSUES).
    """
    file = str(path)
    scn = _Scenario(loaded)
    table = _read_table(path, file)
    if table.kind == "sacct":
        runs, names = _records(table, file, _sacct_run, scn), SACCT_NAMES
    else:
        _check_columns(table, file, RUN_COLUMNS, RUN_OPTIONAL)
        runs, names = _records(table, file, _generic_run, scn), GENERIC_NAMES
    entries = read_ledger(ledger, loaded) if ledger is not None else []
    when = _as_of(as_of, runs, entries, file)
    _check_future(runs, names, when, file)
    if ledger is not None:
        _check_future_ledger(entries, when, str(ledger))
    return Actuals(tuple(runs), tuple(entries), file, when)
