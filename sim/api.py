"""The Python API: everything `sim` does, for notebooks and scripts, with the same files and numbers
as the command line (the CLI only parses arguments and prints what these functions return).

    import sim
    r = sim.run("scenarios/uncertain_pretrain.yaml", reps=100, seed=1)
    r.replications          # one row per replication (replications.parquet)
    r.runs                  # one row per run per replication (runs.parquet)
    r.summary               # summary.json as a dict
    r.report("my-report")   # report.html, report.md and plots

`scenario` arguments take a path (str or Path) or a scenario already loaded with `load`.

Output folders: with `out=FOLDER` a function writes its files there, as the CLI does (a non-empty
folder is refused unless `overwrite=True`). With `out=None` (the default) it runs in a temporary
folder that is removed afterwards: the results are returned in memory (replications and runs as
DataFrames, summary and manifest as dicts) and no report is drawn (call `Result.report(path)`).
`out=DEFAULT` picks the CLI's default, `outputs/<project>/<timestamp>/` (`-compare` or
`-sensitivity` after the project's name for those).
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sim import __version__, outputs, runner
from sim import comparison as comparing
from sim import sensitivity_analysis as sens
from sim.distributions import nominal
from sim.engine import SimulationError
from sim.loader import Issue, Loaded, ScenarioError, load_data
from sim.loader import load as _load_file
from sim.montecarlo import SampleError
from sim.plan import build_plan, progress_problem
from sim.runner import RunError, Settings
from sim.schema import nominal_scenario, runs_kept, uncertain_inputs

if TYPE_CHECKING:
    from sim.backtesting import BacktestResult

log = logging.getLogger("sim.api")

ScenarioLike = str | Path | Loaded
Progress = Callable[[int | None, int | None], None]  # (done, total); (None, None) when a run ends

__all__ = ["DEFAULT", "Comparison", "Result", "RunError", "RunInterrupted", "ScenarioError", "SensitivityResult",
           "SettingsError", "SweepResult", "analyse", "backtest", "calibrate", "compare", "default_out", "estimate",
           "load", "resume", "run", "sensitivity", "sweep"]


REPORT_RUNS = 1_000_000  # runs read from runs.parquet for the report's plot of interruptions by run size


class SettingsError(RunError):
    """A setting out of range, or settings that do not go together. `option` is the CLI flag it
    comes from (e.g. "--precision"), or None."""

    def __init__(self, option: str | None, message: str):
        self.option, self.message = option, message
        super().__init__(f"{option}: {message}" if option else message)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: its finished chunks are kept in `out` for `resume(out)`."""

    def __init__(self, out: Path):
        self.out = out
        super().__init__(str(out))


# --------------------------------------------------------------------------------------------
# Scenarios and the deterministic estimate


def load(path: str | Path, variant: str | None = None, sets: Sequence[str] = ()) -> Loaded:
    """Read and check a scenario file; `variant` applies one of its `variants:`, `sets` overrides
    keys ("workloads[pretrain].mfu=0.35")."""
    return feasible(_load_file(path, variant=variant, sets=list(sets)))


def feasible(loaded: Loaded) -> Loaded:
    """The loaded scenario, if its runs can make progress at their nominal inputs; a located
    ScenarioError if some are interrupted so often that they could never finish."""
    plan = build_plan(nominal_scenario(loaded.scenario), loaded.catalog)
    problem = progress_problem(plan)
    if problem:
        w, p, why = problem
        path = ("workloads", w.idx) if p is None else ("pools", p.idx, "preemption") if (
            p.preempt_rate_per_node_h > 0) else ("reliability",)
        raise ScenarioError(loaded.file, [Issue(path, why)])
    return loaded


def _loaded(scenario: ScenarioLike, variant: str | None = None, sets: Sequence[str] = ()) -> Loaded:
    """A loaded scenario; a Loaded given with a variant or sets has them applied on top."""
    if isinstance(scenario, Loaded):
        if variant is None and not sets:
            return scenario
        return feasible(load_data(scenario.raw, scenario.file, variant=variant, sets=[*scenario.sets, *sets]))
    return load(scenario, variant, sets)


def estimate(scenario: ScenarioLike) -> pd.DataFrame:
    """The deterministic estimate (no queueing, failures or preemption), one row per workload;
    the totals are in `.attrs["total"]`: `cost_usd` (the floor) = `usage_usd` (busy hours on
    on-demand and spot pools) + `commitment_usd` (reserved terms, owned capacity and its
    electricity, whatever the runs do); each commitment is a dict in `.attrs["commitments"]`."""
    from sim.deterministic import estimate as _estimate

    est = _estimate(_loaded(scenario))
    df = pd.DataFrame([asdict(w) for w in est.workloads])
    df.attrs["total"] = est.total
    df.attrs["commitments"] = [asdict(c) for c in est.commitments]
    return df


# --------------------------------------------------------------------------------------------
# Output folders


def default_out(name: str) -> Path:
    """outputs/<name>/<timestamp>/, the CLI's default result folder. It is created here, atomically,
    so that two runs started in the same second each get a folder of their own (the later one with
    a short random suffix)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("outputs") / name
    try:
        base.mkdir(parents=True, exist_ok=True)
        for i in range(50):
            path = base / (stamp if i == 0 else f"{stamp}-{secrets.token_hex(3)}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise SettingsError("--out", outputs.os_problem(base, e)) from None
    raise SettingsError("--out", f"{base}: no free folder name for this run; give one with --out")  # pragma: no cover


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()  # out=DEFAULT: the CLI's default folder, outputs/<project>[-what]/<timestamp>/


def _out(out: str | Path | None | _Default, loaded: Loaded, suffix: str = "") -> str | Path | None:
    return default_out(loaded.scenario.project.name + suffix) if out is DEFAULT else out


def prepare_out(out: str | Path, overwrite: bool = False, lock: outputs.FolderLock | None = None) -> Path:
    try:
        return outputs.prepare_dir(Path(out), overwrite, lock)
    except outputs.OutputError as e:
        raise SettingsError("--out", str(e)) from None


@contextmanager
def _folder(out: str | Path | None, overwrite: bool) -> Iterator[tuple[Path, bool]]:
    """(folder, kept): `out` prepared and locked for this process until the end, or a temporary
    folder removed at the end."""
    if out is not None:
        with outputs.FolderLock() as lock:
            yield prepare_out(out, overwrite, lock), True
        return
    tmp = Path(tempfile.mkdtemp(prefix="trainsim-"))
    try:
        yield tmp, False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# sim run


@dataclass
class Result:
    """A finished `run`: the replications and per-run records, summary.json and manifest.json."""

    loaded: Loaded
    replications: pd.DataFrame
    summary: dict
    manifest: dict
    errors: list[dict]  # failed replications (also in manifest.json)
    runtime_s: float
    out: Path | None  # the result folder, None when run with out=None
    _runs: pd.DataFrame | None = field(default=None, repr=False)
    _reforecast: dict | None = field(default=None, repr=False)  # a re-forecast's: what its report adds

    @property
    def runs(self) -> pd.DataFrame:
        """One row per run per replication (read from runs.parquet when the folder is kept); those
        of the replications kept (`runs` of `run`)."""
        if self._runs is None:
            if self.out is None or not (self.out / "runs.parquet").exists():
                raise ValueError("this run kept no per-run records (runs: none)")
            self._runs = pd.read_parquet(self.out / "runs.parquet")
        return self._runs

    def report(self, path: str | Path) -> Path:
        """Write report.html, report.md and the PNG plots into `path`."""
        from sim import report

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self._reforecast is not None:
            report.reforecast_report(path, self.loaded, self.summary, self.replications, self._report_runs(),
                                     **self._reforecast)
        else:
            report.run_report(path, self.loaded, self.summary, self.replications, self._report_runs(),
                              runtime_s=self.runtime_s)
        return path

    def _report_runs(self) -> pd.DataFrame | None:
        """The runs table's columns the report plots (at most REPORT_RUNS runs, the first
        replications'), or None when no per-run records are at hand."""
        from sim.stats import RATE_COLUMNS

        if self._runs is not None:
            return self._runs.head(REPORT_RUNS)
        path = self.out / "runs.parquet" if self.out is not None else None
        if path is None or not path.exists():
            return None
        import pyarrow.parquet as pq

        f = pq.ParquetFile(path, read_dictionary=["workload"])  # names as categories: small in memory
        names = [c for c in ("accelerators", *RATE_COLUMNS) if c in f.schema_arrow.names]
        if "workload" not in names or "gpu_hours" not in names:
            return None
        parts, n = [], 0
        for batch in f.iter_batches(batch_size=1 << 16, columns=names):
            parts.append(batch.to_pandas())
            n += batch.num_rows
            if n >= REPORT_RUNS:
                break
        return pd.concat(parts, ignore_index=True).head(REPORT_RUNS) if parts else None


def run_settings(scn, reps: int | None = None, seed: int | None = None, workers: int | None = None,
                 backend: str = "process", scheduler: str | None = None, sampling: str | None = None,
                 precision: float | None = None, strict: bool = False, runs: str | None = None) -> Settings:
    """Settings of a run, defaults from the scenario's `simulation:`, checked."""
    seed = seed if seed is not None else scn.simulation.seed
    workers = workers if workers is not None else runner.default_workers()
    reps = reps if reps is not None else (100_000 if precision else scn.simulation.replications)
    method = sampling or scn.simulation.sampling
    if scheduler and backend != "dask":
        raise SettingsError("--scheduler", "goes with --backend dask")
    if precision is not None and method != "random":
        raise SettingsError("--precision", "needs random sampling: an LHS or Sobol design cut short is not "
                            "stratified, and its points are not independent (use --sampling random)")
    check_counts(reps if reps >= 1 else None)  # above the cap: its own message
    if reps < 1 or seed < 0 or workers < 1 or (precision is not None and not 0 < precision < 1):
        raise SettingsError(None, "--reps and --workers must be >= 1, --seed >= 0, --precision between 0 and 1 "
                            "(e.g. 0.01)")
    per_rep = sum(int(round(nominal(w.runs))) for w in scn.workloads)
    return Settings(seed=seed, reps=reps, method=method, workers=workers, backend=backend, scheduler=scheduler,
                    strict=strict, precision=precision, runs_per_rep=per_rep,
                    runs=_runs_flag(runs) if runs is not None else scn.simulation.runs)


def _runs_flag(value: str | None) -> str | None:
    """--runs checked and normalised (None: not given)."""
    if value is None:
        return None
    try:
        return runs_kept(value)
    except ValueError as e:
        raise SettingsError("--runs", str(e)) from None


def _manifest(loaded: Loaded, settings: Settings, outcome: runner.Outcome) -> dict:
    return {
        "scenario_file": str(loaded.file), "variant": loaded.variant, "set": loaded.sets,
        "scenario_sha256": loaded.sha256, "seed": settings.seed, "replications_asked": settings.reps,
        "replications": len(outcome.reps) + len(outcome.errors), "sampling": settings.method,
        "workers": settings.workers, "backend": settings.backend, "chunk_size": settings.chunk_size(),
        "precision": settings.precision, "stopped_by": outcome.stop_reason, "resumed_chunks": outcome.resumed_chunks,
        "package": "trainsim", "version": __version__, "python": sys.version.split()[0],
        "runtime_s": round(outcome.runtime_s, 3), "created": datetime.now().isoformat(timespec="seconds"),
        "runs": settings.runs, "runs_kept_replications": settings.keep_runs(),
        "failed_replications": outcome.errors, "checkpoint_interval_h": checkpoint_intervals(loaded),
        "priors": loaded.priors, "resolved_scenario": loaded.resolved,
    }


def checkpoint_intervals(loaded: Loaded) -> dict[str, dict[str, float | None]]:
    """The checkpoint interval each workload uses on each pool it can run on, at nominal inputs
    (what `auto` chose; None for no checkpoints, 0 for continuous). Each run's own is in
    runs.parquet (`ckpt_interval_h`)."""
    plan = build_plan(nominal_scenario(loaded.scenario), loaded.catalog)
    names = [p.name for p in plan.pools]
    return {w.name: {names[j]: (None if tau == float("inf") else tau) for j, tau in w.ckpt_interval_h_on.items()}
            for w in plan.workloads}


def _execute(loaded: Loaded, settings: Settings, out: Path, resume: bool, progress: Progress | None,
             extra: dict | None = None, report: bool = False) -> runner.Outcome:
    state = {"file": str(loaded.file), "variant": loaded.variant, "set": loaded.sets, **(extra or {})}
    preload = ("scipy.special", "sim.report") if report else ("scipy.special",)  # needed once the chunks are in
    try:
        return runner.execute(loaded, settings, out, progress=progress, resume=resume, extra_state=state,
                              preload=preload)
    except (RunError, SampleError, SimulationError) as e:  # SimulationError: with strict
        raise ScenarioError(str(loaded.file), [Issue((), str(e))]) from None
    except KeyboardInterrupt:
        raise RunInterrupted(out) from None
    finally:
        if progress:
            progress(None, None)


def simulate_into(loaded: Loaded, settings: Settings, out: Path, resume: bool = False,
                  progress: Progress | None = None, keep: bool = True, report: bool = True,
                  state: dict | None = None) -> Result:
    """Run the replications into the folder `out` and publish replications.parquet, runs.parquet,
    summary.json, manifest.json and (when `keep` and `report`) the report. Ctrl-C raises
    RunInterrupted, the finished chunks kept for resume; a write that fails (disk full, read-only)
    raises RunError saying what to do, the finished chunks kept as well."""
    then = f", then complete the run with  sim run --resume {out}" if keep else ""
    try:
        outcome = _execute(loaded, settings, out, resume, progress, state, keep and report)
        if outcome.reps.empty:
            first = outcome.errors[0]["error"] if outcome.errors else "no replication ran"
            raise ScenarioError(str(loaded.file), [Issue((), f"every replication failed; the first: {first} "
                                                         f"(details in {out / runner.PARTS})")])
        summary = runner.summarize(outcome, loaded, settings)
        manifest = _manifest(loaded, settings, outcome)
        outputs.write_json(out / runner.PARTS / "summary.json", summary)
        outputs.write_json(out / runner.PARTS / "manifest.json", manifest)
        runner.finish(out)
    except OSError as e:
        raise RunError(outputs.os_problem(out, e, then)) from None
    result = Result(loaded, outcome.reps, summary, manifest, outcome.errors, outcome.runtime_s, out if keep else None)
    if keep and report:
        _write_report(result)
    elif not keep and (out / "runs.parquet").exists():
        result._runs = pd.read_parquet(out / "runs.parquet")
    return result


def _write_report(result: Result) -> None:
    try:
        result.report(result.out)
    except OSError as e:
        then = f", then write the report with  sim run --resume {result.out}"
        raise RunError(f"the results are written but not the report: {outputs.os_problem(result.out, e, then)}") \
            from None


def run(scenario: ScenarioLike, reps: int | None = None, seed: int | None = None,
        out: str | Path | _Default | None = None, workers: int | None = None, backend: str = "process",
        scheduler: str | None = None, sampling: str | None = None, precision: float | None = None,
        strict: bool = False, overwrite: bool = False, variant: str | None = None, sets: Sequence[str] = (),
        progress: Progress | None = None, runs: str | None = None) -> Result:
    """Simulate the project `reps` times (default `simulation.replications`; with `precision`, the
    cap, default 100,000) and return the results; with `out`, also write the result files there.
    `runs`: the per-run records kept (all, none, auto, sample:N; default `simulation.runs`).
    Defaults as in `sim run`, except `out` (see the module's docstring)."""
    loaded = _loaded(scenario, variant, sets)
    settings = run_settings(loaded.scenario, reps, seed, workers, backend, scheduler, sampling, precision, strict,
                            runs)
    with _folder(_out(out, loaded), overwrite) as (folder, keep):
        return simulate_into(loaded, settings, folder, progress=progress, keep=keep)


def resume(folder: str | Path, workers: int | None = None, backend: str = "process", scheduler: str | None = None,
           strict: bool = False, progress: Progress | None = None, scenario: ScenarioLike | None = None,
           variant: str | None = None, sets: Sequence[str] = (), reps: int | None = None, seed: int | None = None,
           sampling: str | None = None, precision: float | None = None, runs: str | None = None) -> Result:
    """Complete an interrupted run in `folder`, computing only its missing replications; the
    scenario, seed, replications and sampling are the interrupted run's (`reps`, `seed`,
    `sampling` or `precision` given and different are refused). A run whose results were published
    but whose report was not gets its report."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SettingsError("--resume", f"{folder}: no such folder")
    with outputs.FolderLock() as lock:
        try:
            lock.acquire(folder)
        except outputs.OutputError as e:
            raise SettingsError("--resume", str(e)) from None
        except OSError as e:
            raise SettingsError("--resume", outputs.os_problem(folder, e)) from None
        if not (folder / runner.PARTS / "state.json").exists():
            return _report_only(folder)
        state = runner.read_state(folder)
        if "reforecast" in state:
            raise SettingsError("--resume", reforecast_again(folder, state["reforecast"]))
        state = {"runs": "all", **state}  # a run started before --runs kept every run
        _same_as_state(state, {"--reps": reps, "--seed": seed, "--sampling": sampling, "--precision": precision,
                               "--runs": _runs_flag(runs)})
        loaded = _loaded(scenario or state.get("file"), variant or state.get("variant"),
                         sets or state.get("set") or [])
        settings = run_settings(loaded.scenario, state["reps"], state["seed"], workers, backend, scheduler,
                                state["method"], state["precision"], strict, state["runs"])
        settings.chunk = state["chunk"]
        return simulate_into(loaded, settings, folder, resume=True, progress=progress)


def reforecast_again(folder: Path, again: dict | None) -> str:
    """What to do with an interrupted re-forecast's folder: run `sim reforecast` again into it (the
    work left is rebuilt from the actuals, so `sim run --resume` cannot complete it)."""
    again = again or {}
    words = ["sim reforecast", again.get("scenario", "FILE"), "--actuals", again.get("actuals", "PATH")]
    for flag, key in (("--as-of", "as_of"), ("--ledger", "ledger")):
        if again.get(key):
            words += [flag, again[key]]
    return (f"{folder} holds an interrupted re-forecast, which `sim run --resume` does not complete (the work left "
            f"is rebuilt from the actuals); run it again into the same folder:  {' '.join(words)} --out {folder} "
            "--overwrite (with the same --reps and --seed)")


def _same_as_state(state: dict, given: dict) -> None:
    keys = {"--reps": "reps", "--seed": "seed", "--sampling": "method", "--precision": "precision", "--runs": "runs"}
    for flag, value in given.items():
        old = state[keys[flag]]
        if value is not None and value != old:
            raise SettingsError(flag, f"{value} differs from the interrupted run's {old}: --resume completes that "
                                "run as it was started (leave the option out, or start a new run with another --out)")


def _report_only(folder: Path) -> Result:
    """A run killed while its report was written: its published results, with the report drawn."""
    names = [*runner.RESULTS]
    if not all((folder / n).exists() for n in names) or (folder / "report.html").exists():
        raise SettingsError("--resume", f"{folder}: no interrupted run to resume (no {runner.PARTS}/state.json)")
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        summary = json.loads((folder / "summary.json").read_text())
        reps = pd.read_parquet(folder / "replications.parquet")
    except (OSError, ValueError) as e:
        raise SettingsError("--resume", f"{folder}: its result files cannot be read ({e}); run it again with "
                            "--overwrite") from None
    if "reforecast" in summary:  # its report needs the actuals and the baseline: run it again
        raise SettingsError("--resume", reforecast_again(folder, summary["reforecast"].get("again")))
    loaded = feasible(load_data(manifest["resolved_scenario"], manifest["scenario_file"]))
    loaded = replace(loaded, variant=manifest.get("variant"), sets=manifest.get("set") or [])  # for its title
    result = Result(loaded, reps, summary, manifest, manifest.get("failed_replications", []),
                    manifest.get("runtime_s", 0.0), folder)
    _write_report(result)
    shutil.rmtree(folder / runner.PARTS, ignore_errors=True)  # killed while dropping its parts
    return result


# --------------------------------------------------------------------------------------------
# sim compare


@dataclass
class Comparison:
    """compare.json as `report`, and each strategy's replications."""

    report: dict
    results: dict[str, pd.DataFrame]
    out: Path | None


@dataclass
class SweepResult:
    """compare.json of a sweep as `report` (costs, pairs and break-even points), and sweep.parquet
    as `table`."""

    report: dict
    table: pd.DataFrame
    out: Path | None


@dataclass
class _Strategies:
    """The base scenario and its variants, each run with the same seed (common random numbers)."""

    scenario: ScenarioLike
    base: Loaded
    names: list[str]
    sets: list[str]
    options: dict
    progress: Progress | None
    risks: dict = field(default_factory=dict)
    starts: dict = field(default_factory=dict)

    def load(self, name: str, extra_sets: Sequence[str] = ()) -> Loaded:
        variant = None if name == "base" else name
        if isinstance(self.scenario, Loaded):
            return _loaded(self.scenario, variant, list(extra_sets))
        return load(self.scenario, variant, [*self.sets, *extra_sets])

    def run(self, name: str, extra_sets: list[str], folder: Path, report: bool = True) -> pd.DataFrame:
        loaded = self.load(name, extra_sets)
        o = self.options
        settings = Settings(seed=o["seed"], reps=o["reps"], method=o["sampling"] or loaded.scenario.simulation.sampling,
                            workers=o["workers"], backend=o["backend"], scheduler=o["scheduler"])
        folder.mkdir(parents=True, exist_ok=True)
        result = simulate_into(loaded, settings, folder, progress=self.progress, report=report)
        self.risks[name] = result.summary["risk"]
        self.starts[name] = loaded.scenario.project.start.isoformat()
        return result.replications

    def run_all(self, folder: Path, extra_sets: Sequence[str] = ()) -> dict[str, pd.DataFrame]:
        return {n: self.run(n, list(extra_sets), folder / n) for n in self.names}


MAX_REPS = 100_000_000  # replications of one run (or per strategy, or per sensitivity point)
MAX_SENSITIVITY_N = 2**16  # Saltelli base samples
MAX_EVALUATIONS = 10_000_000  # sensitivity points x replications per point
MAX_SENSITIVITY_SEED = 2**32 - 1  # SALib seeds NumPy's legacy generator


def check_counts(reps: int | None = None, seed: int | None = None, workers: int | None = None) -> None:
    """--reps, --seed and --workers in range (None: not given); a SettingsError naming the flag."""
    if reps is not None and not 1 <= reps <= MAX_REPS:
        raise SettingsError("--reps", f"must be a whole number from 1 to {MAX_REPS:,}, got {reps}")
    if seed is not None and seed < 0:
        raise SettingsError("--seed", f"must be a whole number >= 0, got {seed}")
    if workers is not None and workers < 1:
        raise SettingsError("--workers", f"must be a whole number >= 1, got {workers}")


def _chosen(names: list[str], only: Sequence[str] | None, file: str, need_two: bool) -> list[str]:
    """The strategies to run: all (base and variants), or those in `only` (each once)."""
    if only is None:
        chosen = names
    else:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ScenarioError(file, [Issue(("variants",), f"no variant named {unknown[0]!r} "
                                             f"(base and variants: {', '.join(names)})")])
        chosen = list(dict.fromkeys(only))
    if len(names) < 2 and need_two:
        raise ScenarioError(file, [Issue(("variants",), "nothing to compare: the file defines no "
                                         "`variants:` (add some, or use --sweep)")])
    if only is not None and (not chosen or (len(chosen) < 2 and need_two)):
        given = ",".join(only) or "(empty)"
        raise SettingsError("--only", f"{given}: nothing to compare with; name at least two of: {', '.join(names)}")
    return chosen


def _strategies(scenario: ScenarioLike, only: Sequence[str] | None, sets: Sequence[str], need_two: bool,
                options: dict, progress: Progress | None) -> _Strategies:
    check_counts(options["reps"], options["seed"], options["workers"])
    base = _loaded(scenario, None, sets)
    names = _chosen(["base", *base.scenario.variants], only, str(base.file), need_two)
    scn = base.scenario
    options = {**options, "seed": options["seed"] if options["seed"] is not None else scn.simulation.seed,
               "reps": options["reps"] if options["reps"] is not None else scn.simulation.replications,
               "workers": options["workers"] if options["workers"] is not None else runner.default_workers()}
    return _Strategies(scenario, base, names, list(sets), options, progress)


def _compare_options(reps, seed, workers, backend, scheduler, sampling) -> dict:
    return {"reps": reps, "seed": seed, "workers": workers, "backend": backend, "scheduler": scheduler,
            "sampling": sampling}


def compare(scenario: ScenarioLike, only: Sequence[str] | None = None, reps: int | None = None,
            seed: int | None = None, out: str | Path | _Default | None = None, workers: int | None = None,
            backend: str = "process", scheduler: str | None = None, sampling: str | None = None,
            overwrite: bool = False, sets: Sequence[str] = (), progress: Progress | None = None) -> Comparison:
    """Run the base scenario and its variants (or the strategies in `only`) with the same seed and
    compare them side by side and pair by pair. Each strategy's result folder is kept under `out`,
    with compare.json and a report."""
    s = _strategies(scenario, only, sets, True, _compare_options(reps, seed, workers, backend, scheduler, sampling),
                    progress)
    with _folder(_out(out, s.base, "-compare"), overwrite) as (folder, keep):
        results = s.run_all(folder)
        report = {"scenario": s.base.scenario.project.name, "seed": s.options["seed"],
                  "replications": s.options["reps"], "side_by_side": comparing.side_by_side(results), "risk": s.risks,
                  "start": s.starts, "pairs": comparing.pairwise(results)}
        outputs.write_json(folder / "compare.json", report)
        from sim import report as reporting

        reporting.compare_report(folder, report, results, {"base": s.base.resolved,
                                                            "variants": s.base.raw.get("variants")})
        return Comparison(report, results, folder if keep else None)


def sweep(scenario: ScenarioLike, key: str, values: Sequence[float] | str, only: Sequence[str] | None = None,
          reps: int | None = None, seed: int | None = None, out: str | Path | _Default | None = None,
          workers: int | None = None, backend: str = "process", scheduler: str | None = None,
          sampling: str | None = None, overwrite: bool = False, sets: Sequence[str] = (),
          progress: Progress | None = None) -> SweepResult:
    """Run every strategy at each value of `key` (a list, or "START:STOP:STEP") and find the
    break-even points of each pair: where the mean paired cost difference crosses zero, and where
    the band between its 5th and 95th percentiles does. Each strategy's variant is applied first,
    then the key. `key` as "VARIANT:KEY" sweeps the key in that strategy only (a key that only the
    variant has): the other strategies run once, as given, and are compared with it at each value.
    Each value's results go to a folder named after it (e.g. `finetune-runs-100/`), without a run
    report of their own (the sweep's report is the one to read; `sim run --resume FOLDER` draws a
    point's)."""
    if isinstance(values, str):
        try:
            key, values = comparing.sweep_values(f"{key}={values}")
        except ValueError as e:
            raise SettingsError(None, str(e)) from None
    target, key = comparing.sweep_target(key)
    s = _strategies(scenario, only, sets, False, _compare_options(reps, seed, workers, backend, scheduler, sampling),
                    progress)
    swept = _swept(s, target, key, values)
    with _folder(_out(out, s.base, "-compare"), overwrite) as (folder, keep):
        fixed = {n: s.run(n, [], folder / n) for n in s.names if n not in swept}
        rows, pairs = [], []
        for v in values:
            sub = folder / comparing.sweep_folder(key, v)
            results = {n: fixed[n] if n in fixed else s.run(n, [f"{key}={v}"], sub / n, report=False)
                       for n in s.names}
            r, p = comparing.sweep_point(v, results)
            rows += r
            pairs += p
        table = pd.DataFrame(rows)
        outputs.write_parquet(folder / "sweep.parquet", table)
        report = {"scenario": s.base.scenario.project.name, "seed": s.options["seed"],
                  "replications": s.options["reps"],
                  "sweep": {"key": key, "values": list(values), "strategy": target, "unit": comparing.key_unit(key)},
                  "costs": rows, "pairs": pairs, "break_even": comparing.break_evens(key, pairs)}
        outputs.write_json(folder / "compare.json", report)
        from sim import report as reporting

        reporting.sweep_report(folder, report, {"base": s.base.resolved, "variants": s.base.raw.get("variants")})
        return SweepResult(report, table, folder if keep else None)


def compare_starts(scenario: ScenarioLike, starts: Sequence[str] | str, key: str = "project.start",
                   only: Sequence[str] | None = None, reps: int | None = None, seed: int | None = None,
                   out: str | Path | _Default | None = None, workers: int | None = None, backend: str = "process",
                   scheduler: str | None = None, sampling: str | None = None, overwrite: bool = False,
                   sets: Sequence[str] = (), progress: Progress | None = None) -> Comparison:
    """Run the base scenario (or the strategies in `only`) once per start date, `key` (a date key:
    project.start, or a workload's earliest_start) set to each, with the same seed (common random
    numbers); compare them side by side and name the start with the lowest expected CO2 and the
    one with the lowest expected cost (`report["starts"]`)."""
    if isinstance(starts, str):
        try:
            starts = comparing.start_dates(starts)
        except ValueError as e:
            raise SettingsError("--starts", str(e).removeprefix("--starts: ")) from None
    s = _strategies(scenario, only or ["base"], sets, False,
                    _compare_options(reps, seed, workers, backend, scheduler, sampling), progress)
    with _folder(_out(out, s.base, "-starts"), overwrite) as (folder, keep):
        results, risks = {}, {}
        for d in starts:
            for n in s.names:
                label = f"start {d}" if len(s.names) == 1 else f"{n} start {d}"
                results[label] = s.run(n, [f"{key}={d}"], folder / label.replace(" ", "-"))
                risks[label] = s.risks[n]
        sbs, pairs = comparing.side_by_side(results), comparing.pairwise(results)
        report = {"scenario": s.base.scenario.project.name, "seed": s.options["seed"],
                  "replications": s.options["reps"], "side_by_side": sbs, "risk": risks, "pairs": pairs,
                  "starts": {"key": key, "dates": list(starts), "best": comparing.best_starts(sbs, pairs)}}
        outputs.write_json(folder / "compare.json", report)
        from sim import report as reporting

        reporting.compare_report(folder, report, results, {"base": s.base.resolved,
                                                            "variants": s.base.raw.get("variants")})
        return Comparison(report, results, folder if keep else None)


def _swept(s: _Strategies, target: str | None, key: str, values: Sequence[float]) -> list[str]:
    """The strategies the key is swept in, each checked to take it (before anything runs); when
    some do not, the message says which strategies have the key and how to sweep it there alone."""
    if target is not None and target not in s.names:
        raise SettingsError("--sweep", f"{target}:{key}: {target!r} is not one of the strategies run "
                            f"({', '.join(s.names)})")
    swept = [target] if target is not None else s.names
    setting = f"{key}={values[0]}"
    failed = {n: e for n in swept if (e := _refusal(s, n, setting)) is not None}
    if not failed:
        return swept
    first = next(iter(failed.values()))
    have = [n for n in ["base", *s.base.scenario.variants] if n not in failed and _refusal(s, n, setting) is None]
    if target is not None or not have:
        raise first
    issue = first.issues[0]
    hint = (f"{issue.message}; {key} is in {', '.join(have)} only: sweep it there alone with --sweep "
            f"{have[0]}:{key}=START:STOP:STEP (the other strategies then run once, as given)")
    raise ScenarioError(str(s.base.file), [Issue(issue.path, hint, issue.line)]) from None


def _refusal(s: _Strategies, name: str, setting: str) -> ScenarioError | None:
    """Why strategy `name` does not take `setting` (KEY=VALUE), or None when it does."""
    try:
        s.load(name, [setting])
    except ScenarioError as e:
        return e
    return None


# --------------------------------------------------------------------------------------------
# sim sensitivity


@dataclass
class SensitivityResult:
    """The tornado rows, the Sobol indices (or {}), sensitivity.csv as `table`, and the evaluated
    points (points.parquet) they were computed from."""

    tornado: list[dict]
    sobol: dict
    table: pd.DataFrame
    points: pd.DataFrame
    meta: dict
    failed: list[dict]
    out: Path | None


def _write_sensitivity(folder: Path, analysis: sens.Analysis, points: pd.DataFrame, resolved: dict | None,
                       report: bool) -> SensitivityResult:
    meta = analysis.meta
    df = sens.table(analysis)
    outputs.atomic_write(folder / "sensitivity.csv", lambda tmp: df.to_csv(tmp, index=False))
    data = {"scenario": meta["scenario"], "seed": meta["seed"], "replications_per_point": meta["reps"],
            "tornado": analysis.tornado, "sobol": analysis.sobol}
    if analysis.failed:
        data["failed_points"] = analysis.failed
    outputs.write_json(folder / "sensitivity.json", data)
    if report:
        from sim import report as reporting

        reporting.sensitivity_report(folder, meta["scenario"], analysis.tornado,
                                     lambda: sens.plot_tornado(analysis.tornado), resolved, sobol=analysis.sobol,
                                     meta=meta, sobol_plot=lambda: sens.plot_sobol(analysis.sobol))
    return SensitivityResult(analysis.tornado, analysis.sobol, df, points, meta, analysis.failed, folder)


def check_sensitivity(inputs: int, reps: int, n: int, seed: int, workers: int | None, sobol: bool) -> None:
    """The settings of `sensitivity` in range, and the work they ask for (points x replications)
    within MAX_EVALUATIONS."""
    if reps < 1 or n < 2 or n & (n - 1):
        raise SettingsError(None, "--reps must be >= 1 and --n a power of two >= 2")
    if n > MAX_SENSITIVITY_N:
        raise SettingsError("--n", f"at most {MAX_SENSITIVITY_N:,} (2^16) base samples, got {n:,}")
    check_counts(None, seed, workers)
    if seed > MAX_SENSITIVITY_SEED:
        raise SettingsError("--seed", f"at most {MAX_SENSITIVITY_SEED:,} (2^32 - 1) for sensitivity: SALib's "
                            f"sample and bootstrap take 32-bit seeds; got {seed}")
    points = 1 + 2 * inputs + ((inputs + 2) * n if sobol and inputs >= 2 else 0)
    if points * reps > MAX_EVALUATIONS:
        raise SettingsError(None, f"{points:,} points x {reps:,} replications = {points * reps:,} replications; at "
                            f"most {MAX_EVALUATIONS:,}: lower --n or --reps (or use --no-sobol)")


def sensitivity(scenario: ScenarioLike, reps: int = 20, n: int = 64, seed: int | None = None, sobol: bool = True,
                out: str | Path | _Default | None = None, overwrite: bool = False, workers: int | None = None,
                backend: str = "process", scheduler: str | None = None, variant: str | None = None,
                sets: Sequence[str] = ()) -> SensitivityResult:
    """Which uncertain inputs drive cost and time: the tornado (each input at its P10 and P90, the
    others at their medians) and Sobol indices (Saltelli sample of base size `n`), every point
    `reps` replications with the same seed. The evaluated points are kept (points.parquet,
    points.json) so that `analyse(out)` can recompute the indices without simulating."""
    loaded = _loaded(scenario, variant, sets)
    if not uncertain_inputs(loaded.scenario):
        raise ScenarioError(str(loaded.file), [Issue((), "no uncertain inputs: give some keys as distributions "
                                                     "(e.g. mfu: {dist: pert, min: 0.3, mode: 0.4, max: 0.5})")])
    seed = seed if seed is not None else loaded.scenario.simulation.seed
    check_sensitivity(len(uncertain_inputs(loaded.scenario)), reps, n, seed, workers, sobol)
    workers = workers if workers is not None else runner.default_workers()
    with _folder(_out(out, loaded, "-sensitivity"), overwrite) as (folder, keep):
        points, meta = sens.run_points(loaded, seed, reps, n, sobol=sobol, workers=workers, backend=backend,
                                       scheduler=scheduler)
        meta["resolved_scenario"] = loaded.resolved
        sens.save(folder, points, meta)
        result = _write_sensitivity(folder, sens.analyse_points(points, meta), points, loaded.resolved, keep)
        result.out = folder if keep else None
        return result


def analyse(folder: str | Path, report: bool = True) -> SensitivityResult:
    """Re-analyse a stored sensitivity run (its points.parquet and points.json): recompute the
    tornado and Sobol indices and rewrite sensitivity.csv, sensitivity.json and the report."""
    folder = Path(folder)
    analysis = sens.analyse(folder)
    points = pd.read_parquet(folder / sens.POINTS)
    return _write_sensitivity(folder, analysis, points, analysis.meta.get("resolved_scenario"), report)


# --------------------------------------------------------------------------------------------
# sim backtest


def backtest(folder: str | Path | None = None, reps: int = 200, seed: int = 0, workers: int = 1,
             out: str | Path | _Default | None = None, overwrite: bool = False,
             progress: Callable[[int, int, str], None] | None = None) -> BacktestResult:
    """Simulate every case file of `folder` (default: the shipped validation/ cases; see
    sim.backtesting for the format) `reps` times (at most its own `case.reps`) and score it against
    its published figures: P5/P50/P95, inside [P5, P95] or not (a simulator's published mean: its
    interval against trainsim's mean +- 3 standard errors), P50 error, P95/P5, and the coverage
    summary. With `out`,
    backtest.json and backtest.md are written there (`DEFAULT`: outputs/backtest/<timestamp>/)."""
    from sim import backtesting

    check_counts(reps, seed, workers)
    result = backtesting.run(folder, reps, seed, workers, progress)
    if out is not None:
        with _folder(default_out("backtest") if out is DEFAULT else out, overwrite) as (path, _keep):
            backtesting.write(result, path)
            result.out = path
    return result


# --------------------------------------------------------------------------------------------
# Re-forecast from actuals


def reforecast(scenario: ScenarioLike, actuals, as_of=None, ledger: str | Path | None = None,
               reps: int | None = None, seed: int | None = None, out: str | Path | _Default | None = None,
               workers: int | None = None, backend: str = "process", scheduler: str | None = None,
               overwrite: bool = False, variant: str | None = None, sets: Sequence[str] = (),
               progress: Progress | None = None, baseline: str | Path | None = None) -> Result:
    """Re-forecast a running project from its actuals (`actuals`: a path read by
    sim.actuals.read_actuals, or an Actuals already read) at `as_of` (default: the latest date in
    the actuals): the work left is simulated from the as-of date (sim.reforecasting), the failure
    rate updated from what was seen, and the result's summary (and summary.json) carries a
    `reforecast` block: estimate at completion = actual to date + remaining, finish date, P(over
    budget), P(late), earned value against the baseline, the posterior updates. The report draws
    the actual spend followed by the forecast fan over the baseline forecast's fan: the
    replications of `baseline` (a `sim run` folder of the original scenario), or else the original
    scenario simulated with `reps` (at most BASELINE_REPS) replications and the same seed."""
    from sim import reforecasting as rf

    loaded = _loaded(scenario, variant, sets)
    if isinstance(actuals, (str, Path)):
        from sim.actuals import read_actuals

        actuals = read_actuals(actuals, loaded, as_of=as_of, ledger=ledger)
    rem, left = work_left(loaded, actuals)
    if left is None:
        return _all_done(loaded, actuals, rem, out, overwrite)
    settings = run_settings(left.scenario, reps, seed, workers, backend, scheduler)
    base = _read_baseline(Path(baseline), loaded) if baseline is not None else None
    with _folder(_out(out, loaded, "-reforecast"), overwrite) as (folder, keep):
        base = base or _simulate_baseline(loaded, settings)
        again = {"scenario": str(loaded.file), "actuals": str(getattr(actuals, "source", "PATH")),
                 "as_of": rem.as_of_time.isoformat(timespec="minutes") if rem.as_of_time else None,
                 "ledger": str(ledger) if ledger is not None else None}
        result = simulate_into(left, settings, folder, progress=progress, keep=keep, report=False,
                               state={"reforecast": again})
        reps_df = result.replications
        block = rf.block(rem, rem.actual_usd + reps_df["cost_usd"], reps_df["makespan_days"], loaded.scenario,
                         _nominal(loaded))
        block.update(priors_of_the_scenario=loaded.priors, baseline=base[1], again=again)
        result.summary["reforecast"] = block
        result._reforecast = {"scenario": loaded.scenario, "actuals": actuals, "baseline": base[0],
                              "costs": rem.run_costs}
        if keep:
            outputs.write_json(folder / "summary.json", result.summary)
            _write_report(result)
    return result


def work_left(loaded: Loaded, actuals, nominal: tuple[dict, dict] | None = None):
    """(sim.reforecasting.Remaining, the scenario of the work left, loaded and checked; None when
    every run is done) at the actuals' as-of time. `nominal`: each workload's accelerator-hours
    and (wall hours, pool) per run from the deterministic estimate, when already computed (the
    calibration loop reuses them)."""
    from sim import reforecasting as rf

    if nominal is None:
        nominal = nominal_sizes(loaded)
    rem = rf.remaining(loaded, actuals, *nominal)
    if not rem.raw["workloads"]:
        return rem, None
    return rem, feasible(load_data(rem.raw, f"{loaded.file} (the work left at {rem.as_of})"))


def _all_done(loaded: Loaded, actuals, rem, out, overwrite: bool) -> Result:
    """Every run is done: the estimate at completion is the actual cost and the finish the last
    run's end, with no spread; summary.json holds the `reforecast` block (nothing to simulate)."""
    from sim import reforecasting as rf

    ends = [r.end for r in actuals.runs if r.end is not None]
    last = max(ends) if ends else rem.as_of_time
    days = (last - datetime.combine(rem.as_of, time())).total_seconds() / 86400  # from 00:00 of the as-of day
    block = rf.block(rem, [rem.actual_usd], [days], loaded.scenario, _nominal(loaded))
    block["notes"].append("every run is done: the estimate at completion is the actual cost, the finish the last "
                          "run's end")
    summary = {"scenario": loaded.scenario.project.name, "replications": 0, "reforecast": block}
    with _folder(_out(out, loaded, "-reforecast"), overwrite) as (folder, keep):
        if keep:
            outputs.write_json(folder / "summary.json", summary)
    return Result(loaded, pd.DataFrame(), summary, {}, [], 0.0, folder if keep else None)


def nominal_sizes(loaded: Loaded) -> tuple[dict, dict]:
    """Each workload's accelerator-hours per run, and (compute hours per run, pool, compute hours
    between checkpoints there, hours a write takes) of the workloads sized in FLOP, at nominal
    inputs (sim.deterministic; the checkpoint pattern from the nominal plan)."""
    from sim.deterministic import estimate as _estimate

    est = _estimate(loaded).workloads
    plan = build_plan(nominal_scenario(loaded.scenario), loaded.catalog)
    pools = {p.name: p.idx for p in plan.pools}
    ckpt = {w.name: (w.ckpt_interval_h_on, w.write_h) for w in plan.workloads}
    return ({w.name: w.gpu_hours_per_run for w in est},
            {w.name: (w.hours_per_run, w.pool, ckpt[w.name][0].get(pools.get(w.pool), 0.0), ckpt[w.name][1])
             for w in est if w.flop_per_run})


BASELINE_REPS = 200  # replications of the baseline forecast a re-forecast simulates (at most)


def _nominal(loaded: Loaded) -> dict | None:
    """The original scenario at its nominal inputs (earned value's baseline), None if it cannot run."""
    try:
        from sim.montecarlo import Replicator

        return Replicator(loaded, 0).nominal()
    except Exception:  # the baseline is reported when it can be computed, never fatal
        return None


def _read_baseline(folder: Path, loaded: Loaded) -> tuple[pd.DataFrame, dict]:
    """The replications of a `sim run` folder, as the re-forecast's baseline, and where they came from."""
    path = folder / "replications.parquet"
    if not path.is_file():
        raise SettingsError("--baseline", f"{folder}: no replications.parquet (give the folder of a `sim run` of the "
                            "original scenario)")
    try:
        reps = pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise SettingsError("--baseline", f"{path}: cannot be read ({e})") from None
    if "cost_usd" not in reps or reps.empty:
        raise SettingsError("--baseline", f"{path}: no cost_usd column or no rows")
    try:
        sha = json.loads((folder / "manifest.json").read_text()).get("scenario_sha256")
    except (OSError, ValueError):
        sha = None
    return reps, {"source": str(folder), "replications": len(reps), "same_scenario": sha == loaded.sha256}


def _simulate_baseline(loaded: Loaded, settings: Settings) -> tuple[pd.DataFrame | None, dict]:
    """The original scenario simulated from its start (at most BASELINE_REPS replications, the same
    seed), as the re-forecast's baseline; None when it cannot be simulated."""
    n = min(settings.reps, BASELINE_REPS)
    try:
        r = run(loaded, reps=n, seed=settings.seed, workers=settings.workers, backend=settings.backend,
                scheduler=settings.scheduler)
    except ScenarioError as e:
        log.warning("the baseline forecast is left out: %s", e)
        return None, {"source": "none", "error": str(e)}
    except RunInterrupted:  # its temporary folder is gone: nothing to resume
        raise KeyboardInterrupt from None
    return r.replications, {"source": "simulated", "replications": len(r.replications), "seed": settings.seed}


# --------------------------------------------------------------------------------------------
# Calibrate priors on finished projects


def calibrate(pasts, out: str | Path | None = None, overwrite: bool = False) -> dict:
    """Fit a team's own priors from its finished projects (sim.calibration): `pasts` is a list of
    `SCENARIO.yaml:ACTUALS` strings, (scenario, actuals) pairs, or folders holding scenario.yaml and
    one of actuals.csv, actuals.parquet, sacct.txt. Returns the fitted rows (`fitted`: key, when,
    value, n, ...), `notes`, the priors file's `text`, and `out`; with `out` the file is written
    there (an existing file is replaced only with `overwrite=True`), ready for
    `simulation.priors_file`."""
    from sim import calibration

    result = calibration.calibrate(pasts)
    if out is not None:
        path = Path(out)
        if path.is_dir():
            raise SettingsError("--out", f"{path} is a folder; give the priors file to write, e.g. {path}/priors.yaml")
        if path.exists() and not overwrite:
            raise SettingsError("--out", f"{path} exists; give --overwrite (overwrite=True) to replace it")
        if not path.parent.is_dir():
            raise SettingsError("--out", f"no folder {path.parent} to write {path.name} in")
        try:
            outputs.write_bytes(path, result["text"].encode())
        except OSError as e:
            raise SettingsError("--out", outputs.os_problem(path, e)) from None
        result["out"] = str(path)
    return result
