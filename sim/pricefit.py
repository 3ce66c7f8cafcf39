"""The default price path of `price_curve: {kind: random_walk}`: the drift and volatility of the log
price, fitted to the catalog's dated price history (sim/data/prices.yaml).

    python -m sim.pricefit            # the price changes used and the fit
    python -m sim.pricefit --write    # also writes sim/data/price_paths.yaml (the shipped defaults)

The model is geometric Brownian motion: over an interval of `dt` years the log price changes by a
normal amount with mean (mu - sigma^2/2) dt and variance sigma^2 dt, so that the expected price
grows as exp(mu t) (`annual_decline` = 1 - exp(mu)) and `volatility` = sigma (per square-root year).

The data: every series of one accelerator, provider and tier (on_demand, spot) with two or more
dated prices; prices of one series on the same date are merged (geometric mean), and a price less
than MIN_GAP_DAYS after the series' last kept one is skipped (two list entries days apart are two
regions or products, not a market move). Each pair of consecutive kept prices is one change.

The estimator: maximum likelihood for independent normal changes with variance proportional to
their length: the log drift a = sum(r) / sum(dt); sigma^2 = sum((r - a dt)^2 / dt) / (n - 1) (n - 1
for the estimated drift); mu = a + sigma^2 / 2. Standard errors: se(a) = sigma / sqrt(sum(dt)),
se(sigma) = sigma / sqrt(2 (n - 1)).

The catalog is being extended: re-run with --write after it changes (tests/test_pricepath.py fails
while the shipped defaults differ from the fit).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from sim.catalog import Catalog, builtin

TIERS = ("on_demand", "spot")
MIN_GAP_DAYS = 30
DAYS_PER_YEAR = 365.25
DATA_FILE = "data/price_paths.yaml"


@dataclass(frozen=True)
class Change:
    series: str  # accelerator/provider/tier
    d0: date
    d1: date
    p0: float
    p1: float

    @property
    def years(self) -> float:
        return (self.d1 - self.d0).days / DAYS_PER_YEAR

    @property
    def log_return(self) -> float:
        return math.log(self.p1 / self.p0)


@dataclass(frozen=True)
class Fit:
    changes: tuple[Change, ...]
    log_drift: float  # a: the median price grows as exp(a t)
    volatility: float  # sigma per square-root year
    se_log_drift: float
    se_volatility: float

    @property
    def mu(self) -> float:
        """Drift of the expected price: E[P_t] = P_0 exp(mu t)."""
        return self.log_drift + self.volatility ** 2 / 2.0

    @property
    def annual_decline(self) -> float:
        """Fraction the expected price falls per year (negative: it rises)."""
        return -math.expm1(self.mu)

    def defaults(self) -> dict:
        """The shipped defaults (rounded as they are written)."""
        return {"annual_decline": round(self.annual_decline, 4), "volatility": round(self.volatility, 4)}


def price_changes(catalog: Catalog, tiers=TIERS, min_gap_days: int = MIN_GAP_DAYS) -> list[Change]:
    """The consecutive price changes of every series in the catalog (see the module's docstring)."""
    series: dict[tuple, dict[date, list[float]]] = {}
    for p in catalog.prices:
        if p.tier in tiers and p.usd_per_gpu_h > 0:
            series.setdefault((p.accelerator, p.provider, p.tier), {}).setdefault(p.date, []).append(p.usd_per_gpu_h)
    out = []
    for key in sorted(series):
        pts = sorted((d, math.exp(sum(math.log(x) for x in v) / len(v))) for d, v in series[key].items())
        kept = pts[:1]
        for d, price in pts[1:]:
            if (d - kept[-1][0]).days >= min_gap_days:
                kept.append((d, price))
        out += [Change("/".join(key), a[0], b[0], a[1], b[1]) for a, b in zip(kept, kept[1:], strict=False)]
    return out


def fit(changes: list[Change]) -> Fit:
    """Maximum-likelihood drift and volatility of the log price from dated changes."""
    n = len(changes)
    if n < 2:
        raise ValueError(f"the catalog has {n} dated price change(s); at least 2 are needed to fit a drift and a "
                         "volatility")
    total = sum(c.years for c in changes)
    a = sum(c.log_return for c in changes) / total
    var = sum((c.log_return - a * c.years) ** 2 / c.years for c in changes) / (n - 1)
    sigma = math.sqrt(var)
    return Fit(tuple(changes), a, sigma, sigma / math.sqrt(total), sigma / math.sqrt(2 * (n - 1)))


def fit_catalog(catalog: Catalog | None = None) -> Fit:
    return fit(price_changes(catalog or builtin()))


def report(f: Fit) -> str:
    lines = [f"{len(f.changes)} price changes ({', '.join(TIERS)}; prices at least {MIN_GAP_DAYS} days apart):"]
    lines += [f"  {c.series:<40} {c.d0} ${c.p0:<8.4g} -> {c.d1} ${c.p1:<8.4g} {c.log_return:+.3f} over "
              f"{c.years:.2f} y" for c in f.changes]
    lines += [f"log drift a = {f.log_drift:+.4f}/y (se {f.se_log_drift:.4f}): the median price changes by "
              f"{math.expm1(f.log_drift):+.1%} a year",
              f"volatility sigma = {f.volatility:.4f}/sqrt(y) (se {f.se_volatility:.4f})",
              f"mu = a + sigma^2/2 = {f.mu:+.4f}/y: the expected price changes by {-f.annual_decline:+.1%} a year "
              f"(annual_decline {f.annual_decline:.4f})"]
    return "\n".join(lines)


def file_text(f: Fit) -> str:
    head = ("# Default drift and volatility of price_curve {kind: random_walk}, written by\n"
            "# `python -m sim.pricefit --write` from the dated prices of sim/data/prices.yaml (see\n"
            "# sim/pricefit.py for the data kept and the estimator). Do not edit by hand: re-run it after the\n"
            "# catalog changes (tests/test_pricepath.py fails while these differ from the fit).\n"
            "# Context, not used in the fit: Epoch AI, 'Machine Learning Hardware' (https://epoch.ai/data/\n"
            "# machine-learning-hardware, 2024-10-23, updated 2025-01-16; checked against a stored copy): hardware of\n"
            "# a fixed performance gets about 30% cheaper a year (price per FLOP/s of new chips, not the rental\n"
            "# price of one accelerator model, which is what this fit follows).\n")
    body = {**f.defaults(), "log_drift": round(f.log_drift, 4), "se_log_drift": round(f.se_log_drift, 4),
            "se_volatility": round(f.se_volatility, 4), "changes": len(f.changes),
            "years": round(sum(c.years for c in f.changes), 3),
            "data": [f"{c.series} {c.d0} {c.p0:g} -> {c.d1} {c.p1:g}" for c in f.changes]}
    return head + yaml.safe_dump(body, sort_keys=False, width=120)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.pricefit", description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help=f"write sim/{DATA_FILE}")
    a = ap.parse_args(argv)
    f = fit_catalog()
    print(report(f))
    if a.write:
        path = Path(__file__).parent / DATA_FILE
        path.write_text(file_text(f))
        print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
