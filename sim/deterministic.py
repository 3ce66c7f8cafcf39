"""The deterministic estimate: each workload's runs at nominal inputs, on its first-choice pool
that can hold a run, started at the workload's earliest start, with no queueing, failures,
preemption or restarts. Prices follow the pool's curve (integrated exactly over each run).

Its total is usage plus commitments. Usage is what pools billed by the hour (on-demand, spot)
charge for those runs. Commitments are what a pool costs whatever the runs do, billed by the
same tier code (`billing.TIERS`) the engine bills with: a reserved term from the project start
to its end (the part before the project start is sunk), owned capacity amortized over the
project's floor length, with its electricity, busy and idle. The floor length is the earliest
the runs could all end: each workload from its earliest start (or the end of the workloads it
comes after), its runs as many at once as its pools and `max_concurrent` allow, Poisson arrivals
at their mean interval.

It answers "what does this training cost, at least?" and is the floor every simulation is
checked against.
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


def first_fit_pool(w: schema.Workload, scn: schema.Scenario) -> schema.Pool:
    names = w.pools if w.pools is not None else [p.name for p in scn.pools]
    for n in names:
        p = scn.pool(n)
        if p.max_count >= w.accelerators:
            return p
    raise AssertionError("checked by the loader")  # pragma: no cover


def _workload(w: schema.Workload, scn: schema.Scenario, loaded: Loaded) -> tuple[WorkloadEstimate, float]:
    """The workload's runs at nominal inputs on its first-fit pool; and its floor end (hours)."""
    start = scn.project.start
    pool = first_fit_pool(w, scn)
    acc = loaded.catalog.accelerators[pool.accelerator]
    price: PoolPrice = loaded.prices[pool.name]
    curve = make_curve(pool.price_curve, float(nominal(price.usd_per_gpu_h)), start)
    flop, hours, gpu_h = run_size(w, acc)
    t0 = scn.project.begin_h(w.earliest_start)
    n = w.accelerators
    cost_run = n * curve.integral(t0, t0 + hours)
    pue = pool.pue if pool.pue is not None else scn.carbon.pue
    kwh_run = gpu_h * power.busy_w(acc, pool, w, scn.carbon) / 1000.0 * pue
    grid_kg = power.intensity(pool, scn.carbon, loaded.catalog.profiles, start).mean(t0, t0 + hours)
    if pool.pricing == "owned":
        cost_run += kwh_run * pool.energy_usd_per_kwh
    eff_runs = float(w.runs) - float(w.done_at_start or 0.0)  # a run under way has that much less to do
    if w.early_stop is not None:  # the same whole number of runs the engine stops early
        stopped = early_stopped_runs(w.early_stop.fraction_of_runs, int(w.runs))
        eff_runs = w.runs - stopped * (1.0 - w.early_stop.at)
    est = WorkloadEstimate(
        name=w.name, runs=int(w.runs), effective_runs=eff_runs, pool=pool.name, accelerator=acc.id,
        accelerators=n, pricing=pool.pricing, price_usd_per_gpu_h=curve.at(t0), price_source=price.source,
        flop_per_run=flop, gpu_hours_per_run=gpu_h, hours_per_run=hours, cost_usd_per_run=cost_run,
        cost_usd=cost_run * eff_runs, gpu_hours=gpu_h * eff_runs, energy_kwh=kwh_run * eff_runs,
        co2_kg=kwh_run * grid_kg * eff_runs,
    )
    names = w.pools if w.pools is not None else [p.name for p in scn.pools]
    slots = max(1, min(w.max_concurrent or math.inf, sum(scn.pool(p).max_count // n for p in names)))
    span = max(hours, eff_runs * hours / slots) if eff_runs > 0 else 0.0
    if w.arrivals.mean_interval is not None:  # the last run arrives after runs - 1 mean intervals
        span = max(span, (int(w.runs) - 1) * float(w.arrivals.mean_interval) + hours)
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
    """The pool's commitment billed by its tier exactly as the engine bills it, its busy part from
    the workloads `busy` that run on it; None for a tier billed by the hour."""
    tier = TIERS[pool.pricing]
    if tier.bills_usage:
        return None
    start = scn.project.start
    acc = loaded.catalog.accelerators[pool.accelerator]
    curve = make_curve(pool.price_curve, float(nominal(loaded.prices[pool.name].usd_per_gpu_h)), start)
    commit = tier.commitment(pool, start)
    steps = sorted((hours_between(start, c.date), int(c.count)) for c in pool.capacity_changes)
    cap0, steps = tier.schedule(int(pool.count), steps, commit)
    pue = float(pool.pue if pool.pue is not None else scn.carbon.pue)
    intensity = power.intensity(pool, scn.carbon, loaded.catalog.profiles, start)
    busy_gpu_h = sum(w.gpu_hours for w in busy)
    weighed = (0.0, None)  # a flat grid; else busy accelerator-hours and kWh x the intensity then
    if not isinstance(intensity, grid.Flat):
        weighed = (sum(w.gpu_hours * w.co2_kg / w.energy_kwh for w in busy if w.energy_kwh > 0),
                   sum(w.co2_kg for w in busy) / pue)
    use = PoolUse(curve, cap0, steps, commit, busy_gpu_h, 0.0, project_h, sum(w.energy_kwh for w in busy) / pue,
                  power.idle_w(acc, pool, scn.carbon) / 1000.0, pue, float(pool.energy_usd_per_kwh or 0.0),
                  intensity, *weighed, int(pool.spares) * pool.nodes_of)
    bill = tier.bill(use, (0.0,), defaultdict(float))
    a, b = tier.billed_span(commit, project_h)
    electricity = bill.kwh * use.usd_per_kwh if pool.pricing == "owned" else 0.0
    return Commitment(
        pool=pool.name, pricing=pool.pricing, accelerator=acc.id, accelerators=int(pool.count),
        start=start + timedelta(hours=a), end=start + timedelta(hours=b), billed_hours=b - a,
        sunk_hours=max(0.0, -commit[0]) if commit else 0.0, price_usd_per_gpu_h=curve.at(a),
        cost_usd=bill.cost_usd, electricity_usd=electricity, busy_gpu_hours=busy_gpu_h,
        idle_gpu_hours=bill.idle_gpu_h, energy_kwh=bill.kwh, co2_kg=bill.co2_kg)


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
