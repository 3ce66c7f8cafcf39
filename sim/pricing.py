"""Prices over calendar time, and their exact integrals.

Time is in hours since the project's start (t = 0 at 00:00 of project.start). A curve gives the
price of one accelerator-hour at time t; the cost of holding n accelerators from t0 to t1 is
n x integral(t0, t1), computed in closed form, never by sampling the price at the start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from sim.billing import TIERS
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


PriceCurveFn = ConstantPrice | ExponentialPrice | PiecewisePrice


def make_curve(spec, base_price: float, start: date) -> PriceCurveFn:
    """Turn a pool's `price_curve` spec (already at nominal/sampled values) into a curve."""
    if spec.kind == "constant":
        return ConstantPrice(base_price)
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
