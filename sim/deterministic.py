"""The deterministic estimate: each workload's runs at nominal inputs, started at the workload's
earliest start, with no queueing, failures, preemption or restarts, each priced on the pool of its
list (among those that can hold it) where it adds least to the bill: its hours at the price on a
pool billed by the hour, nothing on a reservation (the term is billed anyway), the electricity it
draws beyond the idle draw on owned capacity; the first in the list among equals. Prices follow
the pool's curve (integrated exactly over each run).

Its total is usage plus commitments. Usage is what pools billed by the hour (on-demand, spot)
charge for those runs. Commitments are what a pool costs whatever the runs do, billed by the
same tier code (`billing.TIERS`) the engine bills with: a reserved term from the project start
to its end (the part before the project start is sunk), owned capacity amortized over the
project's floor length, with its electricity, busy and idle, and hot spares (held like the
capacity of a reservation or owned pool; on a pool billed by the hour, from the start to the end
of the project). The floor length is the earliest the runs could all end: each workload from its
earliest start (or the end of the workloads it comes after), its runs as many at once as its
pools and `max_concurrent` allow, each as short as on its fastest pool, Poisson arrivals at their
mean interval.

It answers "what does this training cost, at least?". With nothing random (values, no failures
or preemption, runs submitted at once) and prices that do not fall, no simulation costs less
(tests/test_estimate.py checks it on random scenarios): a run the simulation overflows to another
pool adds at least what it is priced at here, and the simulation holds commitments and spares at
least as long. Not a bound: a price curve that falls (a run that starts later than its earliest
start pays less than it is priced at here) and Poisson arrivals (random arrivals can come sooner
than the mean interval).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from sim import grid, power, schema
from sim.billing import TIERS, PoolUse
from sim.compute import early_stopped_runs, run_size
from sim.distributions import nominal
from sim.loader import Loaded
from sim.pricing import PoolPrice, make_curve
from sim.units import hours_between


@dataclass(frozen=True)
class WorkloadEstimate:
    name: str
    runs: int
    effective_runs: float  # runs, less the work saved by planned early stopping
    pool: str
    accelerator: str
    accelerators: int
    pricing: str
    price_usd_per_gpu_h: float  # at the run's start
    price_source: str
    flop_per_run: float | None
    gpu_hours_per_run: float
    hours_per_run: float
    cost_usd_per_run: float
    cost_usd: float
    gpu_hours: float
    energy_kwh: float
    co2_kg: float


@dataclass(frozen=True)
class Commitment:
    """A reserved or owned pool: what it costs whatever the runs do, over the hours it is billed."""

    pool: str
    pricing: str
    accelerator: str
    accelerators: int
    start: date  # first day billed (the project start for owned capacity, or a term begun before it)
    end: date  # the end of the term, or of the project's floor length (owned)
    billed_hours: float
    sunk_hours: float  # reserved: the part of the term before the project start, not billed
    price_usd_per_gpu_h: float  # at the start billed
    cost_usd: float  # term, or amortized purchase plus electricity (busy and idle)
    electricity_usd: float  # owned: the part of cost_usd that is electricity
    busy_gpu_hours: float  # the estimate's runs on the pool
    idle_gpu_hours: float
    energy_kwh: float  # busy and idle
    co2_kg: float


@dataclass(frozen=True)
class Estimate:
    scenario: str
    start: date
    workloads: list[WorkloadEstimate]
    commitments: list[Commitment]
    usage_usd: float  # busy hours on pools billed by the hour (on-demand, spot)
    project_hours: float  # the floor length: the earliest every run could end

    @property
    def total(self) -> dict[str, float]:
        """cost_usd = usage_usd + commitment_usd; energy and CO2 include idle reserved or owned
        capacity."""
        on_use = [w for w in self.workloads if TIERS[w.pricing].bills_usage]
        commit = sum(c.cost_usd for c in self.commitments)
        return {
            "cost_usd": self.usage_usd + commit,
            "usage_usd": self.usage_usd,
            "commitment_usd": commit,
            "gpu_hours": sum(w.gpu_hours for w in self.workloads),
            "energy_kwh": sum(w.energy_kwh for w in on_use) + sum(c.energy_kwh for c in self.commitments),
            "co2_kg": sum(w.co2_kg for w in on_use) + sum(c.co2_kg for c in self.commitments),
            "project_days": self.project_hours / 24.0,
        }

    def to_json(self) -> dict:
        keys = ("runs", "flop_per_run", "gpu_hours_per_run", "hours_per_run", "cost_usd_per_run", "cost_usd",
                "energy_kwh", "co2_kg")
        extra = ("effective_runs", "gpu_hours", "pool", "accelerator", "accelerators", "pricing",
                 "price_usd_per_gpu_h", "price_source")
        out = {}
        for w in self.workloads:
            d = asdict(w)
            out[w.name] = {k: d[k] for k in (*keys, *extra)}
        commitments = {c.pool: {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(c).items()
                                if k != "pool"} for c in self.commitments}
        return {"scenario": self.scenario, "workloads": out, "commitments": commitments, "total": self.total}


def _fitting_pools(w: schema.Workload, scn: schema.Scenario) -> list[schema.Pool]:
    """The pools a run of `w` may start on (its preference list, those that can ever hold it)."""
    names = w.pools if w.pools is not None else [p.name for p in scn.pools]
    return [scn.pool(n) for n in names if scn.pool(n).max_count >= w.accelerators]


def first_fit_pool(w: schema.Workload, scn: schema.Scenario) -> schema.Pool:
    pools = _fitting_pools(w, scn)
    assert pools, "checked by the loader"
    return pools[0]


@dataclass(frozen=True)
class _RunOn:
    """One nominal run of a workload on one pool, from its earliest start."""

    pool: schema.Pool
    acc: object
    curve: object
    flop: float | None
    hours: float
    gpu_h: float
    cost: float  # the run's hours at the pool's rate (owned: and its electricity), for reference
    marginal: float  # what the run adds to the project's bill on this pool (see `_run_on`)
    kwh: float
    grid_kg: float


def _run_on(w: schema.Workload, pool: schema.Pool, scn: schema.Scenario, loaded: Loaded, t0: float) -> _RunOn:
    """The run on `pool`. Its marginal cost is its price integral on a pool billed by the hour,
    nothing on a reservation (the term is billed whatever the runs do), and on owned capacity the
    electricity it draws beyond what the same accelerators draw idle."""
    acc = loaded.catalog.accelerators[pool.accelerator]
    curve = make_curve(pool.price_curve, float(nominal(loaded.prices[pool.name].usd_per_gpu_h)), scn.project.start)
    flop, hours, gpu_h = run_size(w, acc)
    cost = w.accelerators * curve.integral(t0, t0 + hours)
    pue = pool.pue if pool.pue is not None else scn.carbon.pue
    kwh = gpu_h * power.busy_w(acc, pool, w, scn.carbon) / 1000.0 * pue
    grid_kg = power.intensity(pool, scn.carbon, loaded.catalog.profiles, scn.project.start).mean(t0, t0 + hours)
    usd_per_kwh = float(pool.energy_usd_per_kwh or 0.0)
    marginal = cost if TIERS[pool.pricing].bills_usage else 0.0
    if usd_per_kwh:  # owned: its electricity is bought by the project
        cost += kwh * usd_per_kwh
        marginal = (kwh - gpu_h * power.idle_w(acc, pool, scn.carbon) / 1000.0 * pue) * usd_per_kwh
    return _RunOn(pool, acc, curve, flop, hours, gpu_h, cost, marginal, kwh, grid_kg)


def _workload(w: schema.Workload, scn: schema.Scenario, loaded: Loaded) -> tuple[WorkloadEstimate, float]:
    """The workload's runs at nominal inputs, priced on the pool where a run adds least to the bill
    (the first in its preference list among equals): a run the simulation overflows to another pool
    costs at least that. And its floor span (hours): its runs as many at once as its pools and
    `max_concurrent` allow, each as short as on its fastest pool."""
    t0 = scn.project.begin_h(w.earliest_start)
    pools = _fitting_pools(w, scn)
    options = [_run_on(w, p, scn, loaded, t0) for p in pools]
    best = min(options, key=lambda o: o.marginal)
    n = w.accelerators
    done = float(w.done_at_start or 0.0)  # a run under way has that much less to do
    eff_runs, stopped = float(w.runs) - done, 0
    if w.early_stop is not None:  # the same whole number of runs the engine stops early
        stopped = early_stopped_runs(w.early_stop.fraction_of_runs, int(w.runs))
        eff_runs = w.runs - stopped * (1.0 - w.early_stop.at) - done
    price: PoolPrice = loaded.prices[best.pool.name]
    est = WorkloadEstimate(
        name=w.name, runs=int(w.runs), effective_runs=eff_runs, pool=best.pool.name, accelerator=best.acc.id,
        accelerators=n, pricing=best.pool.pricing, price_usd_per_gpu_h=best.curve.at(t0), price_source=price.source,
        flop_per_run=best.flop, gpu_hours_per_run=best.gpu_h, hours_per_run=best.hours, cost_usd_per_run=best.cost,
        cost_usd=best.cost * eff_runs, gpu_hours=best.gpu_h * eff_runs, energy_kwh=best.kwh * eff_runs,
        co2_kg=best.kwh * best.grid_kg * eff_runs,
    )
    hours = min(o.hours for o in options)
    slots = max(1, min(w.max_concurrent or math.inf, sum(p.max_count // n for p in pools)))
    shortest = hours * w.early_stop.at if stopped else hours
    longest = hours if stopped < int(w.runs) else shortest
    if int(w.runs) == 1:  # its only run, maybe under way (done_at_start): what it has left
        longest = eff_runs * hours
    span = max(longest, eff_runs * hours / slots) if eff_runs > 0 else 0.0
    if w.arrivals.mean_interval is not None:  # the last run arrives after runs - 1 mean intervals
        span = max(span, (int(w.runs) - 1) * float(w.arrivals.mean_interval) + shortest)
    return est, span


def _floor_ends(scn: schema.Scenario, spans: dict[str, float]) -> dict[str, float]:
    """Each workload's earliest end (hours since the start): from its earliest start or the end
    of the workloads it comes after, whichever is later, plus its span."""
    ends: dict[str, float] = {}
    todo = list(scn.workloads)
    while todo:  # the loader refuses cycles in `after`
        w = next(w for w in todo if all(a in ends for a in w.after))
        t0 = scn.project.begin_h(w.earliest_start)
        ends[w.name] = max([t0, *(ends[a] for a in w.after)]) + spans[w.name]
        todo.remove(w)
    return ends


def _commitment(pool: schema.Pool, scn: schema.Scenario, loaded: Loaded, busy: list[WorkloadEstimate],
                project_h: float) -> Commitment | None:
    """What the pool costs whatever the runs do, billed by its tier as the engine bills it: a
    reservation's term, owned capacity over the floor length, and hot spares (on a pool billed by
    the hour: from the start to the end of the project). None for a pool billed by the hour
    without spares. The runs `busy` on a reserved or owned pool add their energy (and, owned, its
    electricity) beyond the idle draw: linear in their hours, so that runs priced here beyond the
    pool's capacity over the floor length lower the floor rather than raise it."""
    tier = TIERS[pool.pricing]
    spares = int(pool.spares) * pool.nodes_of
    if tier.bills_usage and not spares:
        return None
    start = scn.project.start
    acc = loaded.catalog.accelerators[pool.accelerator]
    curve = make_curve(pool.price_curve, float(nominal(loaded.prices[pool.name].usd_per_gpu_h)), start)
    commit = tier.commitment(pool, start)
    steps = sorted((hours_between(start, c.date), int(c.count)) for c in pool.capacity_changes)
    cap0, steps = tier.schedule(int(pool.count), steps, commit) if not tier.bills_usage else (0, [])
    pue = float(pool.pue if pool.pue is not None else scn.carbon.pue)
    intensity = power.intensity(pool, scn.carbon, loaded.catalog.profiles, start)
    idle_kw = power.idle_w(acc, pool, scn.carbon) / 1000.0
    flat = isinstance(intensity, grid.Flat)
    use = PoolUse(curve, cap0, steps, commit, 0.0, 0.0, project_h, 0.0, idle_kw, pue,
                  float(pool.energy_usd_per_kwh or 0.0), intensity, 0.0, None if flat else 0.0, spares)
    bill = tier.bill(use, (0.0,), defaultdict(float))  # every accelerator idle
    busy = [] if tier.bills_usage else busy  # runs on a pool billed by the hour are usage, not this
    busy_gpu_h = sum(w.gpu_hours for w in busy)
    busy_ih = sum(w.gpu_hours * (w.co2_kg / w.energy_kwh if w.energy_kwh > 0 else 0.0) for w in busy)
    extra_kwh = sum(w.energy_kwh for w in busy) - busy_gpu_h * idle_kw * pue  # busy beyond idle
    extra_kg = (extra_kwh * intensity.kg_per_kwh if flat
                else sum(w.co2_kg for w in busy) - busy_ih * idle_kw * pue)
    a, b = (0.0, project_h) if tier.bills_usage else tier.billed_span(commit, project_h)
    kwh = bill.kwh + extra_kwh
    return Commitment(
        pool=pool.name, pricing=pool.pricing, accelerator=acc.id,
        accelerators=spares if tier.bills_usage else int(pool.count),
        start=start + timedelta(hours=a), end=start + timedelta(hours=b), billed_hours=b - a,
        sunk_hours=max(0.0, -commit[0]) if commit else 0.0, price_usd_per_gpu_h=curve.at(a),
        cost_usd=bill.cost_usd + extra_kwh * use.usd_per_kwh, electricity_usd=kwh * use.usd_per_kwh,
        busy_gpu_hours=busy_gpu_h, idle_gpu_hours=max(bill.idle_gpu_h - busy_gpu_h, 0.0), energy_kwh=kwh,
        co2_kg=bill.co2_kg + extra_kg)


def estimate(loaded: Loaded) -> Estimate:
    scn = schema.nominal_scenario(loaded.scenario)
    pairs = [_workload(w, scn, loaded) for w in scn.workloads]
    out = [e for e, _ in pairs]
    ends = _floor_ends(scn, {e.name: span for e, span in pairs})
    project_h = max(ends.values(), default=0.0)
    commitments = []
    for pool in scn.pools:
        c = _commitment(pool, scn, loaded, [w for w in out if w.pool == pool.name], project_h)
        if c is not None:
            commitments.append(c)
    usage = sum((w.cost_usd for w in out if TIERS[w.pricing].bills_usage), 0.0)
    return Estimate(scn.project.name, scn.project.start, out, commitments, usage, project_h)
