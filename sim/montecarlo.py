"""Replications: each replication's inputs (sampled in percentile space, optionally correlated
through a Gaussian copula, mapped through each distribution's inverse CDF), its plan, its
simulation, and its rows.

Everything a replication draws comes from its own named streams (sim.rng) or from a design fixed
by the root seed (LHS, Sobol), so replication k gives the same numbers whichever process, worker
count or backend runs it.
"""

from __future__ import annotations

import gc
import math
import traceback
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from sim import rng as rngmod
from sim.distributions import rank_to_pearson
from sim.engine import SimulationError, simulate
from sim.loader import Loaded, correlation_pairs, path_str
from sim.plan import Plan, build_plan, drawn_prices
from sim.records import RunColumns, run_columns
from sim.schema import Scenario, map_dists, nominal_scenario, uncertain_inputs

NOMINAL = 2**31 - 1  # the replication index of the nominal case (every input at its median)
DESIGN_STREAM = 2**31 - 2  # spawn key of the LHS/Sobol design


class SampleError(ValueError):
    """A sampled input outside its key's limits (and the distribution does not say clip)."""


@dataclass
class RepResult:
    replication: int
    row: dict | None
    runs: list[tuple]  # its columns of runs.parquet, less the replication (sim.records.run_columns)
    error: dict | None = None


@dataclass
class ChunkResult:
    index: int
    rows: list = field(default_factory=list)
    runs: RunColumns = field(default_factory=RunColumns)  # the runs kept for runs.parquet, as columns
    errors: list = field(default_factory=list)
    written: bool = False  # its part files were written by the worker


def input_label(scn: Scenario, path: tuple) -> str:
    """An input's key path with list items by name where they have one: workloads[pretrain].mfu.
    The one place inputs are named in outputs (replication columns, errors, sensitivity); the random
    stream of an input stays keyed by its index path (Design.keys)."""
    text = ""
    for i, el in enumerate(path):
        if isinstance(el, int) and i > 0 and path[i - 1] in ("workloads", "pools"):
            text += f"[{getattr(scn, path[i - 1])[el].name}]"
        elif isinstance(el, int):
            text += f"[{el}]"
        else:
            text += f".{el}" if text else el
    return text


class Design:
    """Uniform points (one row per replication, one column per uncertain input) and the values they
    map to. `random` draws each replication's row from its own stream (so any number of
    replications extends the same sequence); `lhs` and `sobol` fix a design of `size` rows from the
    root seed (scipy.stats.qmc)."""

    def __init__(self, loaded: Loaded, seed: int, method: str, size: int):
        self.seed = int(seed)
        self.method = method
        self.dists = uncertain_inputs(loaded.scenario)
        self.paths = list(self.dists)
        # an input's stream follows its index path (workloads[0].mfu), kept so that sampled numbers do
        # not change; outputs name it by workload or pool name (workloads[pretrain].mfu)
        self.keys = [zlib.crc32(path_str(p).encode()) for p in self.paths]
        self.names = [input_label(loaded.scenario, p) for p in self.paths]
        self.label = dict(zip(self.paths, self.names, strict=True))
        d = len(self.paths)
        self.chol = None
        pairs = correlation_pairs(loaded.scenario)
        if pairs and d:
            c = np.eye(d)
            index = {p: i for i, p in enumerate(self.paths)}
            for a, b, rank in pairs:
                c[index[a], index[b]] = c[index[b], index[a]] = rank_to_pearson(rank)
            try:
                self.chol = np.linalg.cholesky(c)
            except np.linalg.LinAlgError:
                raise SampleError(
                    "correlations: the rank correlations given are not consistent with one another (their "
                    "matrix is not positive definite); weaken some of them"
                ) from None
        self.points = None
        if d and method in ("lhs", "sobol"):
            from scipy.stats import qmc  # imported when needed: a third of a second

            g = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(DESIGN_STREAM,)))
            if method == "lhs":
                self.points = qmc.LatinHypercube(d, seed=g).random(size)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # balance needs 2^m points; fine here
                    self.points = qmc.Sobol(d, scramble=True, seed=g).random(size)

    def uniforms(self, ks) -> np.ndarray:
        """Points of replications `ks` (an int gives one row), in percentile space."""
        one = isinstance(ks, (int, np.integer))
        ks = [int(ks)] if one else list(ks)
        d = len(self.paths)
        if self.points is not None:
            u = self.points[ks]
        else:  # one stream per (replication, input): variants that add or drop inputs keep the others'
            u = np.array([[np.random.default_rng(np.random.SeedSequence(
                self.seed, spawn_key=(k, rngmod.STREAMS["inputs"], key))).random() for key in self.keys]
                for k in ks]).reshape(len(ks), d)
        if self.chol is not None:
            from scipy import stats

            u = stats.norm.cdf(stats.norm.ppf(np.clip(u, 1e-12, 1 - 1e-12)) @ self.chol.T)
        return u[0] if one else u

    def values_many(self, ks) -> list[dict[tuple, float] | SampleError]:
        """Sampled value per input path for each replication in `ks` (one vectorised inverse CDF per
        input); a value outside its key's limits gives a SampleError naming the key, unless the
        distribution says `clip: true`."""
        ks = list(ks)
        u = self.uniforms(ks)
        out: list = [{} for _ in ks]
        for j, (path, name) in enumerate(zip(self.paths, self.names, strict=True)):
            d = self.dists[path]
            col = np.asarray(d.ppf(u[:, j]), dtype=float)
            for i, v in enumerate(col.tolist()):
                if isinstance(out[i], SampleError):
                    continue
                out[i] = _sampled(v, d, name, out[i], path)
        return out

    def values(self, k: int) -> dict[tuple, float]:
        v = self.values_many([k])[0]
        if isinstance(v, SampleError):
            raise v
        return v


MAX_WHOLE = 2.0**53  # beyond this a float no longer holds every whole number


def _unusable(v: float, b) -> str | None:
    """Why a sampled value cannot be used whatever the key's limits: not a finite number, or a whole
    number too large to be one exactly."""
    if not math.isfinite(v):
        return "is not a finite number"
    if b.integer and abs(v) >= MAX_WHOLE:
        return f"is too large for a whole number (at most {MAX_WHOLE:.0f})"
    return None


def non_finite(row: dict) -> str | None:
    """The first metric of a replication's row that is not a finite number, as a message; None
    when all are."""
    for name, v in row.items():
        if isinstance(v, float) and not math.isfinite(v):
            return (f"{name} is {v}, not a finite number: an input is too large or too small for the "
                    "arithmetic (a price, size or rate near the limits of floating point)")
    return None


@contextmanager
def fewer_collections(gen0: int = 10_000):
    """Run a replication with Python's cyclic garbage collector waking less often: a replication
    makes thousands of short-lived objects that reference counting frees anyway, and the default
    threshold (700) spends about a sixth of the time scanning them. The old thresholds come back
    after."""
    old = gc.get_threshold()
    gc.set_threshold(max(gen0, old[0]), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


@contextmanager
def paused_collections():
    """Run one replication with the cyclic garbage collector off: its runs live until it ends, so
    every collection in between scans them all again, and the time per run grew with the project
    (a replication of a million runs spent about a third of its time there). A replication leaves
    a few hundred cycles at most, collected once the collector is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class NonFiniteResult(SimulationError):
    """A replication whose result is not a finite number (overflow from extreme inputs)."""


def _sampled(v: float, d, name: str, values: dict, path: tuple) -> dict | SampleError:
    """`values` with the sampled `v` of input `name` added (clipped or rounded as its key says), or
    a SampleError naming the input when the value cannot be used."""
    problem = _unusable(v, d.bounds)
    if problem:
        return SampleError(f"{name}: sampled {v:g}, which {problem} (check its distribution's parameters)")
    rule = d.bounds.check(v)
    if rule:
        if not d.clip:
            return SampleError(f"{name}: sampled {v:g}, which {rule.replace('must be', 'is not')}"
                               " (add `clip: true` to its distribution to clip samples instead)")
        v = _clip(v, d.bounds)
    values[path] = int(round(v)) if d.bounds.integer else v
    return values


def _clip(v: float, b) -> float:
    if b.lo is not None and (v <= b.lo if b.lo_strict else v < b.lo):
        v = math.nextafter(b.lo, math.inf) if b.lo_strict else b.lo
    if b.hi is not None and (v >= b.hi if b.hi_strict else v > b.hi):
        v = math.nextafter(b.hi, -math.inf) if b.hi_strict else b.hi
    return v


class Replicator:
    """Runs replications of one scenario; a scenario with no uncertain input builds its plan once."""

    def __init__(self, loaded: Loaded, seed: int, method: str = "random", size: int = 0):
        self.loaded = loaded
        self.seed = int(seed)
        self.design = Design(loaded, seed, method, size)
        self._fixed: Plan | None = None
        if not self.design.paths:
            self._fixed = build_plan(nominal_scenario(loaded.scenario), loaded.catalog)

    def plan(self, k: int, values: dict | SampleError | None = None) -> tuple[Plan, dict]:
        if self._fixed is not None:
            return self._fixed, {}
        values = self.design.values_many([k])[0] if values is None else values
        if isinstance(values, SampleError):
            raise values
        scn = map_dists(self.loaded.scenario, lambda _d, path: values[path])
        return build_plan(scn, self.loaded.catalog), {f"input:{self.design.label[p]}": v for p, v in values.items()}

    def nominal(self) -> dict:
        plan = drawn_prices(build_plan(nominal_scenario(self.loaded.scenario), self.loaded.catalog), self.seed,
                            NOMINAL, median=True)  # a random price path at its median too
        with np.errstate(all="ignore"), paused_collections():
            row = simulate(plan, self.seed, NOMINAL).record().row()
        problem = non_finite(row)
        if problem:
            raise NonFiniteResult(problem)
        return row

    def one(self, k: int, strict: bool = False, values=None) -> RepResult:
        inputs: dict = {}
        try:
            plan, inputs = self.plan(k, values)
            with np.errstate(all="ignore"), paused_collections():  # overflow: a non-finite metric, refused below
                rep = simulate(plan, self.seed, k)
                runs = run_columns(rep.finished)
                row = rep.record(runs).row(inputs)
            problem = non_finite(row)
            if problem:
                raise NonFiniteResult(problem)
        except Exception as e:  # recorded with the inputs that caused it; --strict re-raises
            if strict:
                raise
            kind = "input" if isinstance(e, SampleError) else "simulation" if isinstance(e, SimulationError) else (
                "internal")
            err = {"replication": k, "kind": kind, "error": f"{type(e).__name__}: {e}", "inputs": inputs}
            if kind == "internal":
                err["traceback"] = traceback.format_exc(limit=8)
            return RepResult(k, None, [], err)
        return RepResult(k, {"replication": k, **row}, runs)

    def chunk(self, index: int, reps: range, strict: bool = False, keep: int | None = None) -> ChunkResult:
        """Replications `reps`; the per-run records of those below `keep` are kept (None: all)."""
        out = ChunkResult(index)
        values = self.design.values_many(reps) if self._fixed is None else [None] * len(reps)
        with fewer_collections():
            for k, v in zip(reps, values, strict=True):
                r = self.one(k, strict, v)
                if r.error is not None:
                    out.errors.append(r.error)
                else:
                    out.rows.append(r.row)
                    if keep is None or k < keep:
                        out.runs.add(k, r.runs)
        return out


def replicate(loaded: Loaded, seed: int, replications: range, method: str = "random"):
    """Replications one by one (serial; used by tests and the benchmark)."""
    rep = Replicator(loaded, seed, method, max(replications, default=-1) + 1)
    with fewer_collections():  # for the whole loop (restored when the generator ends or is closed)
        for k in replications:
            yield rep.one(k, strict=True)
