"""Replications: each replication's inputs (sampled in percentile space, optionally correlated
through a Gaussian copula, mapped through each distribution's inverse CDF), its plan, its
simulation, and its rows.

Everything a replication draws comes from its own named streams (sim.rng) or from a design fixed
by the root seed (LHS, Sobol), so replication k gives the same numbers whichever process, worker
count or backend runs it.
"""

from __future__ import annotations

import math
import traceback
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.stats import qmc

from sim import rng as rngmod
from sim.distributions import rank_to_pearson
from sim.engine import SimulationError, simulate
from sim.loader import Loaded, correlation_pairs, path_str
from sim.plan import Plan, build_plan
from sim.schema import map_dists, nominal_scenario, uncertain_inputs

NOMINAL = 2**31 - 1  # the replication index of the nominal case (every input at its median)
DESIGN_STREAM = 2**31 - 2  # spawn key of the LHS/Sobol design


class SampleError(ValueError):
    """A sampled input outside its key's limits (and the distribution does not say clip)."""


@dataclass
class RepResult:
    replication: int
    row: dict | None
    runs: list
    error: dict | None = None


@dataclass
class ChunkResult:
    index: int
    rows: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    written: bool = False  # its part files were written by the worker


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
        self.names = [path_str(p) for p in self.paths]
        self.keys = [zlib.crc32(n.encode()) for n in self.names]  # an input's stream follows its key path
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
                rule = d.bounds.check(v)
                if rule:
                    if not d.clip:
                        out[i] = SampleError(f"{name}: sampled {v:g}, which {rule.replace('must be', 'is not')}"
                                             " (add `clip: true` to its distribution to clip samples instead)")
                        continue
                    v = _clip(v, d.bounds)
                out[i][path] = int(round(v)) if d.bounds.integer else v
        return out

    def values(self, k: int) -> dict[tuple, float]:
        v = self.values_many([k])[0]
        if isinstance(v, SampleError):
            raise v
        return v


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
        return build_plan(scn, self.loaded.catalog), {f"input:{path_str(p)}": v for p, v in values.items()}

    def nominal(self) -> dict:
        plan = build_plan(nominal_scenario(self.loaded.scenario), self.loaded.catalog)
        return simulate(plan, self.seed, NOMINAL).summary()

    def one(self, k: int, strict: bool = False, values=None) -> RepResult:
        inputs: dict = {}
        try:
            plan, inputs = self.plan(k, values)
            rep = simulate(plan, self.seed, k)
        except Exception as e:  # recorded with the inputs that caused it; --strict re-raises
            if strict:
                raise
            kind = "input" if isinstance(e, SampleError) else "simulation" if isinstance(e, SimulationError) else (
                "internal")
            err = {"replication": k, "kind": kind, "error": f"{type(e).__name__}: {e}", "inputs": inputs}
            if kind == "internal":
                err["traceback"] = traceback.format_exc(limit=8)
            return RepResult(k, None, [], err)
        row = {"replication": k, **rep.record().row(inputs)}
        return RepResult(k, row, [(k, *r) for r in rep.run_records()])

    def chunk(self, index: int, reps: range, strict: bool = False) -> ChunkResult:
        out = ChunkResult(index)
        values = self.design.values_many(reps) if self._fixed is None else [None] * len(reps)
        for k, v in zip(reps, values, strict=True):
            r = self.one(k, strict, v)
            if r.error is not None:
                out.errors.append(r.error)
            else:
                out.rows.append(r.row)
                out.runs.extend(r.runs)
        return out


def replicate(loaded: Loaded, seed: int, replications: range, method: str = "random"):
    """Replications one by one (serial; used by tests and the benchmark)."""
    rep = Replicator(loaded, seed, method, max(replications, default=-1) + 1)
    for k in replications:
        r = rep.one(k, strict=True)
        yield r


STAT_KEYS = ("mean", "std", "min", "p5", "p10", "p50", "p90", "p95", "max")


def describe(x) -> dict[str, float]:
    a = np.asarray(x, dtype=float)
    if a.size == 0:
        return dict.fromkeys(STAT_KEYS, float("nan"))
    q = np.percentile(a, [5, 10, 50, 90, 95])
    return {
        "mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "min": float(a.min()),
        "p5": float(q[0]), "p10": float(q[1]), "p50": float(q[2]), "p90": float(q[3]), "p95": float(q[4]),
        "max": float(a.max()),
    }


def ci95(x) -> dict[str, list[float]]:
    """95% confidence intervals: Student t for the mean; distribution-free order-statistic
    intervals (binomial) for the quantiles."""
    a = np.sort(np.asarray(x, dtype=float))
    n = a.size
    out: dict[str, list[float]] = {}
    if n < 2:
        return {"mean": [None, None], "p50": [None, None], "p90": [None, None], "p95": [None, None]}
    half = stats.t.ppf(0.975, n - 1) * a.std(ddof=1) / math.sqrt(n)
    out["mean"] = [float(a.mean() - half), float(a.mean() + half)]
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95)):
        lo = int(stats.binom.ppf(0.025, n, q))  # 1-based rank of the lower bound
        hi = int(stats.binom.ppf(0.975, n, q)) + 1
        # a bound whose rank falls outside the sample cannot be had from n replications: None
        out[name] = [float(a[lo - 1]) if lo >= 1 else None, float(a[hi - 1]) if hi <= n else None]
    return out
