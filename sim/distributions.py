"""Uncertain inputs: the YAML distribution syntax, its validation, and its scipy form.

Any numeric scenario field may be given as a mapping with a `dist` key instead of a number:

    mfu: {dist: pert, min: 0.3, mode: 0.4, max: 0.5}
    tokens: {dist: lognormal, p5: 1T, p95: 3T}
    restart: {dist: uniform, min: 5 min, max: 30 min}

Parameters are read with the field's own unit parser, so readable numbers work inside them.
This module parses and checks the syntax and maps each spec to a frozen scipy.stats
distribution (`frozen()`); sampling policy (random, LHS, Sobol, correlations) lives elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# scipy.stats.norm.ppf(0.95): p5/p95 are +-Z95 sigmas from the median (written out: importing scipy.stats
# takes a third of a second, which a run without uncertain inputs need not wait for; a test checks it)
Z95 = 1.6448536269514722

# kind -> (required numeric parameters, optional numeric parameters)
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "lognormal": ((), ("p5", "p95", "median", "sigma")),
    "pert": (("min", "mode", "max"), ("lambda",)),
    "triangular": (("min", "mode", "max"), ()),
    "uniform": (("min", "max"), ()),
    "normal": (("mean", "sd"), ("min", "max")),
    "choice": ((), ()),  # values (+ weights), checked separately
    "poisson": (("mean",), ()),
}
FLAGS = ("clip", "round")
UNITLESS = {"sigma", "lambda"}


@dataclass(frozen=True)
class Bounds:
    """What a field allows: lower/upper limits, strict or not, and whether it is an integer."""

    lo: float | None = None
    hi: float | None = None
    lo_strict: bool = False
    hi_strict: bool = False
    integer: bool = False

    def check(self, x: float) -> str | None:
        """None when x is allowed, else the rule broken ('must be > 0')."""
        if self.lo is not None and (x <= self.lo if self.lo_strict else x < self.lo):
            return f"must be {'>' if self.lo_strict else '>='} {self.lo:g}"
        if self.hi is not None and (x >= self.hi if self.hi_strict else x > self.hi):
            return f"must be {'<' if self.hi_strict else '<='} {self.hi:g}"
        if self.integer and float(x) != math.floor(x):
            return "must be a whole number"
        return None


@dataclass(frozen=True)
class Dist:
    """A validated distribution spec, parameters already in internal units."""

    kind: str
    params: dict[str, float]
    values: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    clip: bool = False
    round: bool = False
    bounds: Bounds = field(default_factory=Bounds)

    # -- scipy form -------------------------------------------------------------------
    def frozen(self):
        """The scipy.stats frozen distribution (before clipping/rounding to the field)."""
        from scipy import stats

        p = self.params
        if self.kind == "lognormal":
            if "p5" in p:
                mu = 0.5 * (math.log(p["p5"]) + math.log(p["p95"]))
                sigma = (math.log(p["p95"]) - math.log(p["p5"])) / (2 * Z95)
            else:
                mu, sigma = math.log(p["median"]), p["sigma"]
            return stats.lognorm(s=sigma, scale=math.exp(mu))
        if self.kind == "pert":
            lo, mode, hi, lam = p["min"], p["mode"], p["max"], p.get("lambda", 4.0)
            a = 1 + lam * (mode - lo) / (hi - lo)
            b = 1 + lam * (hi - mode) / (hi - lo)
            return stats.beta(a, b, loc=lo, scale=hi - lo)
        if self.kind == "triangular":
            lo, mode, hi = p["min"], p["mode"], p["max"]
            return stats.triang((mode - lo) / (hi - lo), loc=lo, scale=hi - lo)
        if self.kind == "uniform":
            return stats.uniform(loc=p["min"], scale=p["max"] - p["min"])
        if self.kind == "normal":
            lo = max(p.get("min", -math.inf), self.bounds.lo if self.bounds.lo is not None else -math.inf)
            hi = min(p.get("max", math.inf), self.bounds.hi if self.bounds.hi is not None else math.inf)
            mean, sd = p["mean"], p["sd"]
            if math.isinf(lo) and math.isinf(hi):
                return stats.norm(mean, sd)
            return stats.truncnorm((lo - mean) / sd, (hi - mean) / sd, loc=mean, scale=sd)
        if self.kind == "poisson":
            return stats.poisson(p["mean"])
        if self.kind == "choice":
            w = np.asarray(self.weights, dtype=float)
            return stats.rv_discrete(values=(np.arange(len(self.values)), w / w.sum()))
        raise ValueError(self.kind)  # pragma: no cover - kinds are checked at parse time

    def ppf(self, q):
        """Inverse CDF in the field's units (choice maps indices back to its values)."""
        frozen = self.frozen()
        x = frozen.ppf(q)
        if self.kind == "poisson":  # scipy's ppf(0) is -1, just below the support
            x = np.maximum(x, 0.0)
        elif self.kind in ("normal", "lognormal"):  # truncation round-off: stay inside the support
            lo, hi = frozen.support()
            x = np.clip(x, lo, hi)
        if self.kind == "choice":  # scipy's ppf(0) is -1 (below the support): clip to the first value
            idx = np.clip(np.asarray(x, dtype=int), 0, len(self.values) - 1)
            x = np.asarray(self.values)[idx]
        if self.round or self.bounds.integer:
            x = np.rint(x)
        return x

    def median(self) -> float:
        return float(self.ppf(0.5))

    def describe(self) -> str:
        if self.kind == "choice":
            return f"choice{list(self.values)}"
        inner = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.kind}({inner})"


def parse_dist(raw: dict, parser: Callable[[Any], float], bounds: Bounds) -> Dist:
    """Check a `{dist: ...}` mapping and return a Dist. Raises ValueError naming the sub-key."""
    kind = _check_keys(raw)
    params = _convert_params(raw, kind, parser)
    flags = _read_flags(raw)
    values: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    if kind == "choice":
        values, weights = _parse_choice(raw, parser, bounds)
    else:
        _CHECKS[kind](kind, params)
    _check_limits(params, bounds)
    d = Dist(kind, params, values, weights, flags.get("clip", False), flags.get("round", False), bounds)
    med = d.median()
    rule = bounds.check(med)
    if rule:
        raise ValueError(f"the median of this distribution {rule}, got {med:g}")
    return d


def _check_keys(raw: dict) -> str:
    """The distribution kind, after checking `dist` and that no key is unknown or missing."""
    kind = raw.get("dist")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"dist: expected one of {', '.join(KINDS)}, got {kind!r}")
    required, optional = KINDS[kind]
    allowed = set(required) | set(optional) | set(FLAGS) | {"dist"}
    if kind == "choice":
        allowed |= {"values", "weights"}
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} for dist {kind} (expected {', '.join(sorted(allowed - {'dist'}))})"
        )
    missing = [k for k in required if k not in raw]
    if missing:
        raise ValueError(f"dist {kind} needs {', '.join(required)}; missing {', '.join(missing)}")
    return kind


def _convert_params(raw: dict, kind: str, parser: Callable[[Any], float]) -> dict[str, float]:
    """The numeric parameters given, in internal units (unitless ones as plain numbers)."""
    required, optional = KINDS[kind]
    params: dict[str, float] = {}
    for k in (*required, *optional):
        if k in raw:
            conv = (lambda v: _plain(v)) if k in UNITLESS else parser
            try:
                params[k] = float(conv(raw[k]))
            except ValueError as e:
                raise ValueError(f"{k}: {e}") from None
    return params


def _read_flags(raw: dict) -> dict[str, bool]:
    flags = {}
    for k in FLAGS:
        if k in raw:
            if not isinstance(raw[k], bool):
                raise ValueError(f"{k}: expected true or false, got {raw[k]!r}")
            flags[k] = raw[k]
    return flags


# -- one parameter check per kind (choice is parsed by _parse_choice) -------------------------


def _check_lognormal(kind: str, params: dict[str, float]) -> None:
    has_q = "p5" in params or "p95" in params
    has_m = "median" in params or "sigma" in params
    if has_q == has_m or (has_q and len({"p5", "p95"} & params.keys()) != 2) or (
        has_m and len({"median", "sigma"} & params.keys()) != 2
    ):
        raise ValueError("dist lognormal needs either p5 and p95, or median and sigma")
    if has_q:
        if not 0 < params["p5"] < params["p95"]:
            raise ValueError(f"lognormal needs 0 < p5 < p95, got p5={params['p5']:g}, p95={params['p95']:g}")
    elif params["median"] <= 0 or params["sigma"] <= 0:
        raise ValueError(f"lognormal needs median > 0 and sigma > 0, got median={params['median']:g}, "
                         f"sigma={params['sigma']:g}")


def _check_three_point(kind: str, params: dict[str, float]) -> None:
    """pert and triangular."""
    lo, mode, hi = params["min"], params["mode"], params["max"]
    if not (lo <= mode <= hi and lo < hi):
        raise ValueError(f"{kind} needs min <= mode <= max and min < max, got {lo:g}, {mode:g}, {hi:g}")
    if params.get("lambda", 4.0) <= 0:
        raise ValueError(f"pert lambda must be > 0, got {params['lambda']:g}")


def _check_uniform(kind: str, params: dict[str, float]) -> None:
    if not params["min"] < params["max"]:
        raise ValueError(f"uniform needs min < max, got min={params['min']:g}, max={params['max']:g}")


def _check_normal(kind: str, params: dict[str, float]) -> None:
    if params["sd"] <= 0:
        raise ValueError(f"normal needs sd > 0, got {params['sd']:g}")
    if "min" in params and "max" in params and not params["min"] < params["max"]:
        raise ValueError(f"normal needs min < max, got min={params['min']:g}, max={params['max']:g}")


def _check_poisson(kind: str, params: dict[str, float]) -> None:
    if params["mean"] <= 0:
        raise ValueError(f"poisson needs mean > 0, got {params['mean']:g}")


_CHECKS: dict[str, Callable[[str, dict[str, float]], None]] = {
    "lognormal": _check_lognormal,
    "pert": _check_three_point,
    "triangular": _check_three_point,
    "uniform": _check_uniform,
    "normal": _check_normal,
    "poisson": _check_poisson,
}


def _parse_choice(
    raw: dict, parser: Callable[[Any], float], bounds: Bounds
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The `values` and `weights` of a choice, sorted by value (ppf must rise with q)."""
    vals = raw.get("values")
    if not isinstance(vals, list) or not vals:
        raise ValueError("dist choice needs a non-empty list `values`")
    try:
        values = tuple(float(parser(v)) for v in vals)
    except ValueError as e:
        raise ValueError(f"values: {e}") from None
    w = raw.get("weights", [1.0] * len(vals))
    if not isinstance(w, list) or len(w) != len(vals):
        raise ValueError(f"weights: expected a list of {len(vals)} numbers (one per value), got {w!r}")
    try:
        weights = tuple(_plain(x) for x in w)
    except ValueError as e:
        raise ValueError(f"weights: {e}") from None
    order = sorted(range(len(values)), key=lambda i: values[i])  # ppf must rise with q
    values = tuple(values[i] for i in order)
    weights = tuple(weights[i] for i in order)
    if any(x < 0 for x in weights) or sum(weights) <= 0:
        raise ValueError(f"weights: must be >= 0 and not all zero, got {list(weights)}")
    for v in values:
        rule = bounds.check(v)
        if rule:
            raise ValueError(f"values: {rule}, got {v:g}")
    return values, weights


def _check_limits(params: dict[str, float], bounds: Bounds) -> None:
    """Explicit limits of bounded distributions must respect the field's own limits."""
    for k in ("min", "max"):
        if k in params:
            rule = bounds.check(params[k])
            if rule:
                raise ValueError(f"{k}: {rule}, got {params[k]:g}")


def _plain(v: Any) -> float:
    from sim.units import parse_plain

    return parse_plain(v)


def nominal(x: float | Dist) -> float:
    """The nominal (median) value of a field: numbers pass through, distributions give their median."""
    return x.median() if isinstance(x, Dist) else x


def rank_to_pearson(rho_s: float) -> float:
    """The Gaussian-copula correlation that gives Spearman rank correlation rho_s: 2 sin(pi rho_s / 6)."""
    return 2.0 * math.sin(math.pi * rho_s / 6.0)
