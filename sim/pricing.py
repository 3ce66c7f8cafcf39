"""Prices over calendar time, and their exact integrals.

Time is in hours since the project's start (t = 0 at 00:00 of project.start). A curve gives the
price of one accelerator-hour at time t; the cost of holding n accelerators from t0 to t1 is
n x integral(t0, t1), computed in closed form, never by sampling the price at the start.
"""

from __future__ import annotations

import bisect
import math
import zlib
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import numpy as np

from sim.billing import TIERS
from sim.rng import STREAMS
from sim.units import HOURS_PER_YEAR, hours_between


@dataclass(frozen=True)
class ConstantPrice:
    price: float

    def at(self, t: float) -> float:
        return self.price

    def integral(self, t0: float, t1: float) -> float:
        return self.price * (t1 - t0)

    def breakpoints(self) -> tuple[float, ...]:
        return ()


@dataclass(frozen=True)
class ExponentialPrice:
    """price(t) = price_ref x (1 - annual_decline) ** ((t - t_ref) / 8760 h)."""

    price_ref: float
    annual_decline: float
    t_ref: float = 0.0

    @property
    def rate_per_h(self) -> float:
        return -math.log1p(-self.annual_decline) / HOURS_PER_YEAR

    def at(self, t: float) -> float:
        return self.price_ref * math.exp(-self.rate_per_h * (t - self.t_ref))

    def integral(self, t0: float, t1: float) -> float:
        r = self.rate_per_h
        if r == 0.0:
            return self.price_ref * (t1 - t0)
        # p_ref/r * (e^{-r(t0-tr)} - e^{-r(t1-tr)}), written with expm1 for accuracy on short spans
        return self.price_ref * math.exp(-r * (t0 - self.t_ref)) * (-math.expm1(-r * (t1 - t0))) / r

    def breakpoints(self) -> tuple[float, ...]:
        return ()


@dataclass(frozen=True)
class PiecewisePrice:
    """Linear between (t_i, p_i), flat before the first point and after the last."""

    times: tuple[float, ...]
    prices: tuple[float, ...]

    def at(self, t: float) -> float:
        return float(np.interp(t, self.times, self.prices))

    def _cumulative(self, t: float) -> float:
        """Integral of the price from times[0] to t (negative for t before times[0])."""
        ts, ps = self.times, self.prices
        if t <= ts[0]:
            return ps[0] * (t - ts[0])
        total = 0.0
        for i in range(1, len(ts)):
            if t <= ts[i]:
                p_t = ps[i - 1] + (ps[i] - ps[i - 1]) * (t - ts[i - 1]) / (ts[i] - ts[i - 1])
                return total + 0.5 * (ps[i - 1] + p_t) * (t - ts[i - 1])
            total += 0.5 * (ps[i - 1] + ps[i]) * (ts[i] - ts[i - 1])
        return total + ps[-1] * (t - ts[-1])

    def integral(self, t0: float, t1: float) -> float:
        return self._cumulative(t1) - self._cumulative(t0)

    def breakpoints(self) -> tuple[float, ...]:
        return self.times


def _grow(mu: float, u: float) -> float:
    """Integral of exp(mu s) for s from 0 to u."""
    return u if mu == 0.0 else math.expm1(mu * u) / mu


class PricePath:
    """One price path: between knots the price grows as exp(mu (t - t_k)); at each move (every
    `step_h`) it is multiplied by exp(sd Z - sd^2 / 2) with Z from `normals`, and at each jump by its
    factor. Built block by block as later times are asked for (a replication that ends early draws
    no more of it); the draws of the first blocks never depend on how far it goes."""

    BLOCK = 24  # moves drawn at a time

    __slots__ = ("knots", "levels", "cum", "mu_per_h", "_step", "_sd", "_jumps", "_normals", "_steps", "_covered",
                 "_t", "_p")

    def __init__(self, price0: float, mu_per_h: float, step_h: float | None, sd: float, jumps, normals):
        """`jumps`: (t_h, factor) of the jumps that happen; `normals(n)`: the next n standard normal
        moves; `step_h` None: no moves (the path is then the drift and the jumps only)."""
        self.knots, self.levels, self.cum = [0.0], [price0], [0.0]
        self.mu_per_h, self._step, self._sd = mu_per_h, step_h, sd
        self._jumps = sorted(jumps)
        self._normals = normals
        self._steps = 0
        self._covered = 0.0  # the path is built up to here
        self._t, self._p = 0.0, price0  # the last knot and its price

    def _extend(self):
        lo = self._covered
        if self._step is None:
            moves, self._covered = [], math.inf
        else:
            sd, step, first = self._sd, self._step, self._steps + 1
            z = self._normals(self.BLOCK)
            moves = [((first + i) * step, math.exp(sd * zi - sd * sd / 2.0)) for i, zi in enumerate(z)]
            self._steps += self.BLOCK
            self._covered = self._steps * step
        moves += [(t, f) for t, f in self._jumps if lo < t <= self._covered]
        mu, knots, levels, cum = self.mu_per_h, self.knots, self.levels, self.cum
        for tm, factor in sorted(moves):
            if tm > knots[-1]:
                cum.append(cum[-1] + levels[-1] * _grow(mu, tm - knots[-1]))
                knots.append(tm)
                levels.append(0.0)
            self._p *= math.exp(mu * (tm - self._t)) * factor
            self._t = tm
            levels[-1] = self._p

    def _k(self, t: float) -> int:
        while t > self._covered:
            self._extend()
        return max(bisect.bisect_right(self.knots, t) - 1, 0)

    def at(self, t: float) -> float:
        k = self._k(t)
        return self.levels[k] * math.exp(self.mu_per_h * (t - self.knots[k]))

    def _cumulative(self, t: float) -> float:
        k = self._k(t)
        return self.cum[k] + self.levels[k] * _grow(self.mu_per_h, t - self.knots[k])

    def integral(self, t0: float, t1: float) -> float:
        return self._cumulative(t1) - self._cumulative(t0)

    def breakpoints(self) -> tuple[float, ...]:
        return tuple(self.knots)


@dataclass(frozen=True)
class RandomWalkPrice:
    """A random price path before it is drawn: geometric Brownian motion of the log price with
    moves every `step_h` and dated jumps. The expected price is E[P_t] = P_0 exp(mu t) x the
    product of (1 + probability x change) of the jumps up to t, exactly, at every t: between moves
    the price grows as exp(mu t), and each move multiplies it by exp(sigma sqrt(step) Z - sigma^2
    step / 2), whose mean is 1. As a curve (`at`, `integral`) it is that expected price, used where
    no path is drawn (the deterministic estimate, the loader's checks); `draw` gives one path."""

    price0: float
    mu_per_h: float
    sigma_per_sqrt_h: float
    step_h: float
    jumps: tuple[tuple[float, float, float], ...]  # (t_h > 0, change, probability) in time order
    market: str

    @classmethod
    def of(cls, spec, price0: float, start: date, market: str) -> RandomWalkPrice:
        jumps = sorted((hours_between(start, j.date), float(j.change), float(j.probability)) for j in spec.jumps)
        return cls(price0, math.log1p(-float(spec.annual_decline)) / HOURS_PER_YEAR,
                   float(spec.volatility) / math.sqrt(HOURS_PER_YEAR), float(spec.step),
                   tuple(j for j in jumps if j[0] > 0), market)

    @cached_property
    def _expected(self) -> PricePath:
        return PricePath(self.price0, self.mu_per_h, None, 0.0, [(t, 1.0 + p * c) for t, c, p in self.jumps], None)

    def at(self, t: float) -> float:
        return self._expected.at(t)

    def integral(self, t0: float, t1: float) -> float:
        return self._expected.integral(t0, t1)

    def breakpoints(self) -> tuple[float, ...]:
        return tuple(j[0] for j in self.jumps)

    def path(self, normals, happen) -> PricePath:
        """The path with standard normal moves from `normals(n)` and `happen[i]` saying whether
        jump i happens."""
        sd = self.sigma_per_sqrt_h * math.sqrt(self.step_h)
        jumps = [(t, 1.0 + c) for (t, c, _p), h in zip(self.jumps, happen, strict=True) if h]
        return PricePath(self.price0, self.mu_per_h, self.step_h, sd, jumps, normals)

    def draw(self, seed: int, replication: int) -> PricePath:
        """Replication `replication`'s path: its moves from the market's own stream (so pools and
        variants naming the same market share them, and no other stream changes), its jumps from
        another."""
        moves = price_stream(seed, replication, self.market, 0)
        u = price_stream(seed, replication, self.market, 1).random(len(self.jumps)).tolist()
        return self.path(lambda n: moves.standard_normal(n).tolist(),
                         [ui < p for ui, (_t, _c, p) in zip(u, self.jumps, strict=True)])

    def median(self) -> PricePath:
        """The median path: every move at its median, the jumps that are at least as likely as not."""
        return self.path(lambda n: [0.0] * n, [p >= 0.5 for _t, _c, p in self.jumps])


def price_stream(seed: int, replication: int, market: str, part: int) -> np.random.Generator:
    """The generator of a market's price moves (part 0) or jumps (part 1) in one replication."""
    key = zlib.crc32(market.encode())
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(
        int(replication), STREAMS["price_paths"], key, part)))


PriceCurveFn = ConstantPrice | ExponentialPrice | PiecewisePrice | RandomWalkPrice | PricePath


def make_curve(spec, base_price: float, start: date, market: str = "") -> PriceCurveFn:
    """Turn a pool's `price_curve` spec (already at nominal/sampled values) into a curve; `market`
    names the random stream of a random walk that does not name its own (the accelerator id)."""
    if spec.kind == "constant":
        return ConstantPrice(base_price)
    if spec.kind == "random_walk":
        return RandomWalkPrice.of(spec, base_price, start, spec.market or market)
    if spec.kind == "exponential":
        t_ref = hours_between(start, spec.reference) if spec.reference else 0.0
        return ExponentialPrice(base_price, float(spec.annual_decline), t_ref)
    times = tuple(hours_between(start, p.date) for p in spec.points)
    return PiecewisePrice(times, tuple(float(p.price_usd_per_gpu_h) for p in spec.points))


@dataclass(frozen=True)
class PoolPrice:
    """A pool's base price per accelerator-hour (before its curve) and where it comes from."""

    usd_per_gpu_h: object  # a number, or a distribution (sim.distributions.Dist) until sampled
    source: str


def pool_price(pool, catalog, start) -> PoolPrice | str:
    """The pool's base price (from the scenario, the purchase of owned capacity, or the catalog's
    price for its tier in force at the start), or a sentence saying why there is none."""
    if pool.price_usd_per_gpu_h is not None:
        return PoolPrice(pool.price_usd_per_gpu_h, "given in the scenario")
    if pool.purchase_usd_per_gpu is not None:
        return PoolPrice(pool.purchase_usd_per_gpu / pool.lifetime,
                         f"purchase ${pool.purchase_usd_per_gpu:,.0f} over {pool.lifetime / 8760:g} y")
    tier = TIERS[pool.pricing].catalog_tier_of(pool)
    if tier.startswith("no "):
        return tier
    on = pool.commitment_start or start
    p = catalog.price(pool.accelerator, tier, pool.provider, on)
    if p is None:
        prov = f" from provider {pool.provider!r}" if pool.provider else ""
        return (f"not given, and the catalog has no {tier} price for {pool.accelerator}{prov}; "
                "give price_usd_per_gpu_h")
    return PoolPrice(p.usd_per_gpu_h, f"catalog: {p.label()}")
