"""What capacity costs: pricing tiers, and billing and energy accounting as pure functions.

A pricing tier says what a pool bills for busy time, for idle time and for its commitment, what
its idle accelerators draw, and how its bill is split across calendar months. Each tier is one
small class in `TIERS`; the engine and the estimate ask the tier, never compare tier names.

Time is in hours since the project start; a price curve is anything with `integral(a, b)` (USD per
accelerator over [a, b], see sim.pricing). A capacity schedule is (capacity at t=0, [(t, capacity)
changes in time order]).

To add a tier (a capacity block, a committed-use discount with a floor): write one class here,
register it in `TIERS`, and add its name to `Pool.pricing` in sim/schema.py.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import date

from sim.units import hours_between

INF = math.inf

Steps = list[tuple[float, int]]


# --------------------------------------------------------------------------------------------
# Pure pieces


class Flat:
    """A price of 1 per hour (spreads an amount over months in proportion to time)."""

    @staticmethod
    def integral(a: float, b: float) -> float:
        return b - a


FLAT = Flat()


def bill_by_month(curve, n: float, a: float, b: float, months: tuple[float, ...], into: dict[int, float]) -> float:
    """n x the price integral over [a, b]; each calendar month's share is added to `into` (month
    index -> USD; `months` are the hours at which months start, months[0] = 0). Returns the total."""
    i = bisect.bisect_right(months, a) - 1
    total = 0.0
    while True:
        end = months[i + 1] if i + 1 < len(months) else INF
        if b <= end:
            c = n * curve.integral(a, b)
            into[i] += c
            return total + c
        c = n * curve.integral(a, end)
        into[i] += c
        total += c
        a, i = end, i + 1


def over_capacity(capacity0: int, steps: Steps, until: float, per_step) -> float:
    """Sum over the capacity schedule's steps within [0, until] of per_step(capacity, a, b)."""
    sched = [(0.0, capacity0), *steps]
    total = 0.0
    for (t, cap), nxt in zip(sched, [*sched[1:], (INF, 0)], strict=True):
        a, b = max(t, 0.0), min(nxt[0], until)
        if b > a:
            total += per_step(cap, a, b)
    return total


def capacity_hours(capacity0: int, steps: Steps, until: float) -> float:
    """Accelerator-hours of capacity held over [0, until]."""
    return over_capacity(capacity0, steps, until, lambda cap, a, b: cap * (b - a))


def energy(use: PoolUse, idle_gpu_h: float, idle_ih: float) -> tuple[float, float]:
    """(kWh, kg CO2) of a pool: what its busy accelerators drew (booked by the runs) and its idle
    ones, at the facility (x PUE). `idle_ih` is the idle accelerator-hours weighted by the grid's
    intensity (kg/kWh x h), used when the intensity varies over time."""
    kwh = (use.busy_kwh + idle_gpu_h * use.idle_kw) * use.pue
    if use.busy_co2_kg is None:  # a flat grid
        return kwh, kwh * use.intensity.kg_per_kwh
    return kwh, (use.busy_co2_kg + max(idle_ih, 0.0) * use.idle_kw) * use.pue


# --------------------------------------------------------------------------------------------
# What a pool's tier is billed, given how it was used


@dataclass(frozen=True, slots=True)
class PoolUse:
    """A pool over one replication: its plan numbers and what the runs did on it."""

    curve: object  # price per accelerator-hour over time (integral(a, b))
    capacity0: int
    steps: Steps
    commit: tuple[float, float] | None  # reserved: (t0, t1) of the commitment
    busy_gpu_h: float
    usage_usd: float  # busy time already billed to runs (on-demand, spot)
    makespan_h: float
    busy_kwh: float  # drawn by busy accelerators and their hosts (before PUE)
    idle_kw: float  # drawn by one idle accelerator and its host's share
    pue: float
    usd_per_kwh: float  # electricity bought by the project (owned)
    intensity: object  # grid kg CO2/kWh over time: kg_per_kwh (flat) or integral(a, b) (sim.grid)
    busy_ih: float = 0.0  # busy accelerator-hours x the grid's intensity then (a varying grid only)
    busy_co2_kg: float | None = None  # busy kWh x the grid's intensity then (before PUE); None: flat grid
    spare_gpus: int = 0  # hot spares' accelerators: held, billed and idle like capacity (never busy)


def with_spares(use: PoolUse) -> tuple[int, Steps]:
    """The capacity schedule with the pool's hot spares held wherever it holds capacity."""
    s = use.spare_gpus
    if not s:
        return use.capacity0, use.steps
    return (use.capacity0 + s if use.capacity0 > 0 else 0), [(t, c + s if c > 0 else c) for t, c in use.steps]


@dataclass(slots=True)
class PoolBill:
    cost_usd: float
    idle_gpu_h: float
    kwh: float
    co2_kg: float


class Tier:
    """A pricing tier. Subclasses set the flags and override what differs."""

    name = ""
    bills_usage = True  # busy accelerator-hours are billed to the runs, by month
    keys: tuple[str, ...] = ()  # pool keys only this tier takes

    def catalog_tier_of(self, pool) -> str:
        """The catalog tier of this pool's base price, or a sentence starting "no " saying why the
        catalog cannot have one."""
        return self.name

    def schedule(self, count: int, steps: Steps, t_commit: tuple[float, float] | None) -> tuple[int, Steps]:
        """The pool's capacity schedule (capacity at t=0, changes)."""
        return count, steps

    def commitment(self, pool, start: date) -> tuple[float, float] | None:
        """(t0, t1) of the pool's commitment in hours since the project `start`; None if none."""
        return None

    def billed_span(self, commit: tuple[float, float] | None, project_h: float) -> tuple[float, float] | None:
        """The hours [a, b] since the project start that the tier bills whatever the runs do (a
        reserved term from the project start on, owned capacity over the project), or None. The
        engine and the deterministic estimate both bill this span, so they agree on a commitment."""
        return None

    def bill(self, use: PoolUse, months: tuple[float, ...], spend: dict[int, float]) -> PoolBill:
        """The pool's cost over the replication, its idle accelerator-hours, energy and CO2; what is
        not already billed to runs (usage) is added to `spend` by calendar month. Hot spares are
        held (billed, idle) from the start to the end of the project."""
        s, mk = use.spare_gpus, use.makespan_h
        if not s or mk <= 0:
            return PoolBill(use.usage_usd, 0.0, *energy(use, 0.0, 0.0))
        cost = use.usage_usd + bill_by_month(use.curve, s, 0.0, mk, months, spend)
        idle_ih = s * use.intensity.integral(0.0, mk) if use.busy_co2_kg is not None else 0.0
        return PoolBill(cost, s * mk, *energy(use, s * mk, idle_ih))

    def check(self, pool) -> tuple[str, str] | None:
        """(key, message) for a rule of this tier that the pool breaks, or None."""
        return None


class OnDemand(Tier):
    name = "on_demand"


class Spot(OnDemand):
    name = "spot"
    keys = ("preemption",)


class Reserved(Tier):
    """A commitment for a term: the term is billed whatever the runs do; the capacity exists only
    within the term; idle reserved accelerators draw idle power (the project's footprint). The part
    of a term that began before the project start is sunk (paid before the project, as a
    re-forecast treats the part before its as-of date): the project is billed from its start to the
    end of the term, however long after the runs that is."""

    name = "reserved"
    bills_usage = False
    keys = ("term", "commitment_start")

    def catalog_tier_of(self, pool) -> str:
        term_y = (pool.term or 8760.0) / 8760.0
        if abs(term_y - round(term_y)) > 1e-9 or round(term_y) not in (1, 3):
            return f"no catalog price for a {term_y:g}-year term (catalog has 1 y and 3 y); give price_usd_per_gpu_h"
        return f"reserved_{round(term_y)}y"

    def commitment(self, pool, start: date) -> tuple[float, float]:
        t0 = hours_between(start, pool.commitment_start) if pool.commitment_start else 0.0
        return t0, t0 + (pool.term or 8760.0)

    def schedule(self, count, steps, t_commit):
        t0, t1 = t_commit
        cap0 = count
        steps = list(steps)
        if t0 > 0:
            cap0 = 0
            steps.append((t0, count))
        steps.append((t1, 0))
        steps.sort()
        return cap0, steps

    def billed_span(self, commit, project_h):
        return max(commit[0], 0.0), commit[1]

    def bill(self, use, months, spend):
        t0, t1 = self.billed_span(use.commit, use.makespan_h)
        capacity = max([use.capacity0, *(c for _, c in use.steps)]) + use.spare_gpus
        cost = bill_by_month(use.curve, capacity, t0, t1, months, spend)
        idle = max(capacity * (t1 - t0) - use.busy_gpu_h, 0.0)
        idle_ih = capacity * use.intensity.integral(t0, t1) - use.busy_ih if use.busy_co2_kg is not None else 0.0
        return PoolBill(cost, idle, *energy(use, idle, idle_ih))

    def check(self, pool):
        if pool.capacity_changes:
            return ("capacity_changes", "a reserved pool's size is its commitment; use another pool (or a second "
                    "reservation) for capacity that changes")
        return None


class Owned(Tier):
    """Bought hardware: its purchase is amortized over its lifetime (the pool's price per
    accelerator-hour) for the capacity held until the project ends, plus the electricity it uses
    (busy and idle), both spread over months like the capacity."""

    name = "owned"
    bills_usage = False
    keys = ("purchase_usd_per_gpu", "energy_usd_per_kwh")

    def billed_span(self, commit, project_h):
        return 0.0, project_h

    def bill(self, use, months, spend):
        mk = self.billed_span(use.commit, use.makespan_h)[1]
        cap0, steps = with_spares(use)
        cost = over_capacity(cap0, steps, mk,
                             lambda cap, a, b: bill_by_month(use.curve, cap, a, b, months, spend))
        cap_h = capacity_hours(cap0, steps, mk)
        idle = max(cap_h - use.busy_gpu_h, 0.0)
        idle_ih = 0.0
        if use.busy_co2_kg is not None:
            idle_ih = over_capacity(cap0, steps, mk,
                                    lambda cap, a, b: cap * use.intensity.integral(a, b)) - use.busy_ih
        kwh, co2 = energy(use, idle, idle_ih)
        if kwh > 0:
            energy_cost = kwh * use.usd_per_kwh
            rate = energy_cost / cap_h if cap_h > 0 else 0.0
            over_capacity(cap0, steps, mk,
                          lambda cap, a, b: bill_by_month(FLAT, cap * rate, a, b, months, spend))
            cost += energy_cost
        return PoolBill(cost, idle, kwh, co2)

    def catalog_tier_of(self, pool) -> str:
        return "no catalog price for owned capacity; give purchase_usd_per_gpu or price_usd_per_gpu_h"

    def check(self, pool):
        if pool.price_usd_per_gpu_h is None and pool.purchase_usd_per_gpu is None:
            return ("purchase_usd_per_gpu", "an owned pool needs purchase_usd_per_gpu (or price_usd_per_gpu_h)")
        if pool.energy_usd_per_kwh is None:
            return ("energy_usd_per_kwh", "an owned pool needs energy_usd_per_kwh (its electricity price)")
        return None


TIERS: dict[str, Tier] = {t.name: t for t in (OnDemand(), Spot(), Reserved(), Owned())}
