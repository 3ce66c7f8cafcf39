"""The plan: a scenario with concrete numbers (no distributions left) turned into the plain
numbers one replication needs (sizes, prices, rates, times). Pure: no randomness, no SimPy.

Times are hours since 00:00 of the project's start date; rates are per hour. Names carry units.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from datetime import date, timedelta

from sim import power
from sim.billing import TIERS, Tier
from sim.catalog import Catalog, preemption_bands
from sim.compute import early_stopped_runs, run_size
from sim.pricing import PriceCurveFn, RandomWalkPrice, make_curve, pool_price
from sim.priors import short_source
from sim.reliability import (
    band_rate_per_node_h,
    daly_interval,
    domains_spanned,
    expected_interruptions,
    restart_h,
)
from sim.schema import Scenario, carbon_default_entries
from sim.units import hours_between

INF = math.inf
MAX_EVENTS = 2_000_000  # default guard on run segments per replication (about 10 s of simulation)


@dataclass(slots=True)
class PoolPlan:
    idx: int
    name: str
    tier: Tier
    capacity0: int  # accelerators at t = 0
    steps: list[tuple[float, int]]  # (t_h, capacity) changes after t = 0, in time order
    node_size: int
    curve: PriceCurveFn  # USD per accelerator-hour over time
    preempt_rate_per_node_h: float
    notice_h: float  # preemption warning
    co_interruption: float  # chance a preemption takes every node of the pool in use
    fallback: int  # pool index a preempted run moves to, -1 for none
    idle_kw: float  # one idle accelerator and its host's share (before PUE)
    pue: float
    intensity: object  # the grid's kg CO2/kWh over time (sim.grid.Flat or sim.grid.Intensity)
    usd_per_kwh: float  # electricity bought by the project (owned)
    commit: tuple[float, float] | None  # (t0_h, t1_h) of a commitment (reserved), else None
    spares: int = 0  # hot spare nodes
    repair_h: float = 0.0  # median repair of a failed node (0: swapped at once, no repair modelled)
    repair_sigma: float = 0.0  # lognormal spread of a repair
    repair_crews: int = 0  # repairs at once (0: no limit)
    lemon_fraction: float = 0.0  # share of its nodes (and spares) that are lemons
    lemon_multiplier: float = 1.0
    lemon_cures: float = 0.0  # chance a repair cures a lemon
    available: float = 1.0  # share of the time its capacity can be obtained (outages the rest)
    outage_h: float = 0.0  # mean outage
    obtain_mean_h: float = 0.0  # mean wait to obtain a request of `obtain_ref` accelerators (0: at once)
    obtain_ref: int = 1
    obtain_growth: float = 1.0  # the mean wait grows as (n / obtain_ref) ** obtain_growth


@dataclass(slots=True)
class WorkloadPlan:
    idx: int
    name: str
    runs: int
    n: int  # accelerators per run
    pools: list[int]  # pool indices in preference order
    length_h_on: dict[int, float]  # pool index -> hours of one uninterrupted run there
    ckpt_interval_h_on: dict[int, float]  # pool index -> compute hours between checkpoints; inf none, 0 continuous
    write_h: float  # checkpoint write
    restart_h_on: dict[int, float]  # pool index -> restart after an interruption (grows with the nodes)
    detect_h: float  # from a failure to noticing it (no progress, accelerators held)
    on_node_loss: str  # move | wait | best
    fail_rate_per_h: float  # hardware failures per run-hour (per accelerator-hour x accelerators)
    job_fail_rate_per_h: float  # job-level failures per run-hour, whatever the size
    planned_rate_per_h: float  # planned interruptions per run-hour
    planned_down_h: float  # downtime of a planned interruption
    spike_rate_per_h: float  # loss spikes per run-hour
    spike_rollback_h: float  # work rolled back beyond the last checkpoint by a loss spike
    unrecoverable_p: float  # share of hardware failures that also spoil the last checkpoint
    lemon_fraction: float  # share of nodes that are lemons
    lemon_multiplier: float  # their failure rate as a multiple of the base
    domain_nodes: int  # nodes in a failure domain (0: no correlated failures)
    domain_rate_per_h_on: dict[int, float]  # pool index -> failures of the domains a run spans, per run-hour
    straggle_p: float  # share of runs that straggle
    straggle_slowdown: float  # median slowdown of a straggling run
    straggle_sigma: float  # lognormal spread of the slowdown
    priority: int
    max_concurrent: float  # inf for no limit
    earliest_h: float
    after: list[int]  # workload indices
    div_p: float  # probability that an attempt diverges
    div_at: float  # share of the run done when divergence shows
    div_rerun: bool
    early_k: int  # runs stopped early
    early_at: float  # share of the run done when they stop
    length_kind: str  # fixed | lognormal | exponential
    length_sigma: float
    arrival_interval_h: float  # mean time between submissions; 0 = all at once
    busy_kw_on: dict[int, float]  # pool index -> kW one busy accelerator and its host's share draw (before PUE)
    done_at_start: float = 0.0  # share of its first run done before the start (a re-forecast's running run)


@dataclass(slots=True)
class Plan:
    start: date
    horizon_h: float
    scheduler: str  # a policy name (sim.policies.SCHEDULERS)
    failure_model: str  # a model name (sim.policies.FAILURE_MODELS)
    pools: list[PoolPlan]
    workloads: list[WorkloadPlan]
    power_factor: float
    idle_power_factor: float
    months: tuple[float, ...] = ()  # hours at which each calendar month or week starts (0 = project start)
    month_labels: tuple[str, ...] = ()  # the month (YYYY-MM) of each of those periods
    week_labels: tuple[str, ...] = ()  # the week (the date it begins) of each of those periods
    max_events: int = MAX_EVENTS  # run segments one replication may take before it is given up
    random_prices: bool = False  # a pool's price is a random path, drawn per replication (drawn_prices)


@functools.lru_cache(maxsize=64)
def month_starts(start: date, horizon_h: float) -> tuple[tuple[float, ...], tuple[str, ...], tuple[str, ...]]:
    """The hours since `start` at which a calendar month or a week (Monday) begins, up to the
    horizon (the first is the start itself), with, for each, the label of its month (YYYY-MM) and
    of its week (the date the week begins in the project: the start, then Mondays). Spend is
    billed into these periods, so that it can be summed exactly by month and by week."""
    times, months, weeks = [0.0], [f"{start.year:04d}-{start.month:02d}"], [start.isoformat()]
    day, week = start, start.isoformat()
    while True:
        day += timedelta(days=1)
        t = hours_between(start, day)
        if t > horizon_h:
            break
        if day.weekday() == 0:
            week = day.isoformat()
        elif day.day != 1:
            continue
        times.append(t)
        months.append(f"{day.year:04d}-{day.month:02d}")
        weeks.append(week)
    return tuple(times), tuple(months), tuple(weeks)


def preemption_rate_per_node_h(p) -> float:
    if p.preemption is None:
        return 0.0
    if p.preemption.rate_per_node_h is not None:
        return float(p.preemption.rate_per_node_h)
    return band_rate_per_node_h(preemption_bands()[p.preemption.band])


def failure_rate_per_gpu_h(rel) -> float:
    if rel.model == "none":
        return 0.0
    if rel.mtbf_per_gpu is not None:
        return 1.0 / float(rel.mtbf_per_gpu)
    return float(rel.failure_rate_per_gpu_h or 0.0)


def _pool_plan(i: int, p, scn: Scenario, catalog: Catalog, names: dict[str, int]) -> PoolPlan:
    start = scn.project.start
    acc = catalog.accelerators[p.accelerator]
    tier = TIERS[p.pricing]
    price = pool_price(p, catalog, start)
    commit = tier.commitment(p, start)
    steps = sorted((hours_between(start, c.date), int(c.count)) for c in p.capacity_changes)
    cap0, steps = tier.schedule(p.count, steps, commit)
    ob = p.obtain
    if ob is not None and ob.quota is not None:  # the provider's quota caps the pool's capacity
        cap0, steps = min(cap0, int(ob.quota)), [(t, min(c, int(ob.quota))) for t, c in steps]
    return PoolPlan(
        idx=i, name=p.name, tier=tier, capacity0=cap0, steps=steps, node_size=p.nodes_of,
        curve=make_curve(p.price_curve, float(price.usd_per_gpu_h), start, p.accelerator),
        preempt_rate_per_node_h=preemption_rate_per_node_h(p),
        notice_h=float(p.preemption.notice) if p.preemption else 0.0,
        co_interruption=float(p.preemption.co_interruption) if p.preemption else 0.0,
        fallback=names[p.fallback] if p.fallback else -1, idle_kw=power.idle_w(acc, p, scn.carbon) / 1000.0,
        pue=float(p.pue if p.pue is not None else scn.carbon.pue),
        intensity=power.intensity(p, scn.carbon, catalog.profiles, start),
        usd_per_kwh=float(p.energy_usd_per_kwh or 0.0), commit=commit, spares=int(p.spares),
        repair_h=float(scn.reliability.repair), repair_sigma=float(scn.reliability.repair_sigma),
        repair_crews=int(scn.reliability.repair_crews),
        **_lemons(scn.reliability),
        available=float(p.availability.fraction) if p.availability else 1.0,
        outage_h=float(p.availability.mean_outage) if p.availability else 0.0,
        **_obtain(ob, p.count),
    )


def _obtain(ob, count: int) -> dict:
    """A pool's obtain model as plan fields: the mean wait of a request of the reference size, from
    the chance that it is filled within the wait given (exponential: P(W <= w) = 1 - exp(-w / mean))."""
    if ob is None or ob.wait is None:
        return {}
    return {"obtain_mean_h": float(ob.wait) / -math.log1p(-float(ob.p_within)),
            "obtain_ref": int(ob.accelerators or count), "obtain_growth": float(ob.growth)}


def _lemons(rel) -> dict:
    lm = rel.lemons if rel.model != "none" else None
    if lm is None or float(lm.fraction) <= 0.0:
        return {}
    return {"lemon_fraction": float(lm.fraction), "lemon_multiplier": float(lm.multiplier),
            "lemon_cures": float(lm.repair_cures)}


def _disruptions(w, rel) -> dict:
    """The workload's planned interruptions, loss spikes, stragglers and the reliability model's
    unrecoverable failures and lemon nodes, as plan fields (all off when not given)."""
    pl, ls, st, lm = rel.planned, w.loss_spike, w.stragglers, rel.lemons
    off = rel.model == "none"
    return {
        "planned_rate_per_h": float(pl.rate_per_h) if pl and not off else 0.0,
        "planned_down_h": float(pl.downtime) if pl else 0.0,
        "spike_rate_per_h": float(ls.rate_per_h) if ls else 0.0,
        "spike_rollback_h": float(ls.rollback) if ls else 0.0,
        "unrecoverable_p": float(rel.unrecoverable_fraction),
        "lemon_fraction": float(lm.fraction) if lm else 0.0,
        "lemon_multiplier": float(lm.multiplier) if lm else 1.0,
        "straggle_p": float(st.fraction) if st else 0.0,
        "straggle_slowdown": float(st.slowdown) if st else 1.0,
        "straggle_sigma": float(st.sigma) if st else 0.0,
    }


def checkpoint_interval_h(ck, interruptions_per_h: float) -> float:
    """Compute hours between checkpoints under a checkpoint policy: none (inf), a fixed interval,
    or `auto` (Daly's optimum for the run's interruption rate on that pool)."""
    if ck.interval == "none":
        return INF
    if ck.interval == "auto":
        return daly_interval(float(ck.write), 1.0 / interruptions_per_h if interruptions_per_h > 0 else INF)
    return float(ck.interval)


def _workload_plan(i: int, w, scn: Scenario, catalog: Catalog, pools: list[PoolPlan], names: dict[str, int],
                   wnames: dict[str, int]) -> WorkloadPlan:
    rel = scn.reliability

    def fits(j: int) -> bool:
        return scn.pools[j].max_count >= w.accelerators

    usable = [names[n] for n in (w.pools if w.pools is not None else list(names)) if fits(names[n])]
    ck = w.checkpoint or rel.checkpoint
    fail = failure_rate_per_gpu_h(rel) * w.accelerators
    on = rel.model != "none"
    job = float(rel.job_failure_rate_per_h or 0.0) if on else 0.0
    dom = rel.failure_domains if on else None
    length_on, restart_on, domain_on = {}, {}, {}
    for j in (j for j in range(len(scn.pools)) if fits(j)):  # fallbacks may be outside `usable`
        length_on[j] = run_size(w, catalog.accelerators[scn.pools[j].accelerator])[1]
        nodes = math.ceil(w.accelerators / pools[j].node_size)
        restart_on[j] = restart_h(float(rel.restart), float(rel.restart_per_node), float(rel.restart_per_doubling),
                                  nodes)
        domain_on[j] = domains_spanned(nodes, int(dom.nodes)) * float(dom.rate_per_h) if dom else 0.0
    div, es = w.divergence, w.early_stop
    wp = WorkloadPlan(**_disruptions(w, rel),
        idx=i, name=w.name, runs=int(w.runs), n=w.accelerators, pools=usable, length_h_on=length_on,
        ckpt_interval_h_on={}, domain_nodes=int(dom.nodes) if dom else 0, domain_rate_per_h_on=domain_on,
        write_h=float(ck.write), restart_h_on=restart_on, detect_h=float(rel.detect),
        on_node_loss=w.on_node_loss, fail_rate_per_h=fail, job_fail_rate_per_h=job, priority=w.priority,
        max_concurrent=float(w.max_concurrent) if w.max_concurrent else INF,
        earliest_h=scn.project.begin_h(w.earliest_start),
        after=[wnames[a] for a in w.after],
        div_p=float(div.probability) if div else 0.0, div_at=float(div.at) if div else 1.0,
        div_rerun=bool(div.rerun) if div else True,
        early_k=early_stopped_runs(float(es.fraction_of_runs), int(w.runs)) if es else 0,
        early_at=float(es.at) if es else 1.0, done_at_start=float(w.done_at_start or 0.0),
        length_kind=w.run_length.kind, length_sigma=float(w.run_length.sigma),
        arrival_interval_h=float(w.arrivals.mean_interval or 0.0),
        busy_kw_on={j: power.busy_w(catalog.accelerators[scn.pools[j].accelerator], scn.pools[j], w, scn.carbon)
                    / 1000.0 for j in length_on},
    )
    for j in length_on:  # `auto` checkpoints follow every interruption the run can meet on that pool
        wp.ckpt_interval_h_on[j] = checkpoint_interval_h(ck, interruption_rate_per_h(wp, pools[j]))
    return wp


def build_plan(scn: Scenario, catalog: Catalog) -> Plan:
    """Turn a scenario with concrete numbers (no distributions left) into a Plan."""
    names = {p.name: i for i, p in enumerate(scn.pools)}
    wnames = {w.name: i for i, w in enumerate(scn.workloads)}
    pools = [_pool_plan(i, p, scn, catalog, names) for i, p in enumerate(scn.pools)]
    workloads = [_workload_plan(i, w, scn, catalog, pools, names, wnames) for i, w in enumerate(scn.workloads)]
    horizon = float(scn.simulation.horizon)
    months, labels, weeks = month_starts(scn.project.start, horizon)
    return Plan(start=scn.project.start, horizon_h=horizon, scheduler=scn.simulation.scheduler,
                failure_model=scn.reliability.model, pools=pools, workloads=workloads,
                power_factor=float(scn.carbon.power_factor), idle_power_factor=float(scn.carbon.idle_power_factor),
                months=months, month_labels=labels, week_labels=weeks,
                random_prices=any(isinstance(p.curve, RandomWalkPrice) for p in pools))


def drawn_prices(plan: Plan, seed: int, replication: int, median: bool = False) -> Plan:
    """The plan with each random price path drawn for one replication (the median path with
    `median`); the plan itself is left alone (it may serve every replication)."""
    def drawn(c):
        if not isinstance(c, RandomWalkPrice):
            return c
        return c.median() if median else c.draw(seed, replication)

    return replace(plan, pools=[replace(p, curve=drawn(p.curve)) for p in plan.pools], random_prices=False)


def interruption_rate_per_h(w: WorkloadPlan, p: PoolPlan) -> float:
    """Interruptions per hour of one run of `w` on pool `p`: hardware failures (at the mean lemon
    share), failure domains, job-level failures, planned interruptions, loss spikes and preemptions."""
    hw = w.fail_rate_per_h * (1.0 + w.lemon_fraction * (w.lemon_multiplier - 1.0))
    return (hw + w.domain_rate_per_h_on.get(p.idx, 0.0) + w.job_fail_rate_per_h + w.planned_rate_per_h
            + w.spike_rate_per_h + p.preempt_rate_per_node_h * math.ceil(w.n / p.node_size))


def _span(h: float) -> str:
    if h < 1.0 / 60.0:
        return f"{h * 3600.0:.2g} s"
    return f"{h * 60.0:.0f} min" if h < 1.0 else f"{h:.1f} h"


def no_progress(w: WorkloadPlan, p: PoolPlan) -> str:
    """Why runs of `w` on `p` cannot finish (for messages)."""
    rate = interruption_rate_per_h(w, p)
    if rate <= 0.0:
        return f"runs of workload {w.name} keep starting again (divergence reruns)"
    return (f"runs of workload {w.name} on pool {p.name} are interrupted every {_span(1.0 / rate)} on average "
            "(failures and preemptions) and make too little progress; add checkpoints, lower the rates or use "
            "another pool")


def not_finishing(plan: Plan, now_h: float, left: int, stalled: bool) -> str:
    """Why a replication stopped with `left` runs unfinished at `now_h` (for messages)."""
    if stalled:
        return (f"the simulation stalled at {now_h / 24:.1f} days with {left} runs unfinished: they can never get "
                "capacity (a reserved commitment that ended, or a pool that shrank for good)")
    return (f"the simulation passed its horizon ({plan.horizon_h / 8760:g} years) with {left} runs unfinished; the "
            "project as described cannot finish (raise simulation.horizon if it really takes that long)")


def progress_problem(plan: Plan) -> tuple[WorkloadPlan, PoolPlan | None, str] | None:
    """(workload, pool, why) for runs that could not finish within the plan's event guard
    (expected restarts per run above `max_events`), or None. Seen before simulating, so an
    impossible project fails at once instead of after millions of events."""
    for w in plan.workloads:
        if not w.pools:
            return w, None, (f"no pool can hold a run of workload {w.name} ({w.n} accelerators): the obtain.quota "
                             "drawn for this replication is below it")
        for j in w.pools:
            p = plan.pools[j]
            rate = interruption_rate_per_h(w, p)
            expect = expected_interruptions(w.length_h_on[j], w.ckpt_interval_h_on[j], w.write_h, rate,
                                            w.restart_h_on[j])
            if expect > plan.max_events:
                many = f"about {expect:.3g}" if math.isfinite(expect) else "an unbounded number of"
                return w, p, f"{no_progress(w, p)} ({many} restarts a run)"
    return None


def assumptions(scn: Scenario, catalog: Catalog) -> list[str]:
    """What the results take for granted that the scenario does not say (capacity, then carbon),
    shown beside them: the terminal's `assumption:` lines, summary.json's `assumptions`, the
    report's "Assumed, not given" section."""
    return capacity_assumptions(scn) + carbon_assumptions(scn, catalog)


def capacity_assumptions(scn: Scenario) -> list[str]:
    """What the scenario takes for granted about capacity it does not own: on-demand pools with no
    `obtain:` model are assumed to give their whole count at once, whenever asked (shown to the user
    beside the results, so that it is a visible assumption)."""
    return [f"pool {p.name}: {p.count} {p.accelerator} on demand assumed obtainable at once, whenever asked (no "
            "obtain: quota or wait given; docs/scenario-format.md, 'Obtaining on-demand capacity')"
            for p in scn.pools if p.pricing == "on_demand" and p.obtain is None]


PROVIDERS = {"gcp": "Google Cloud", "aws": "AWS", "azure": "Azure"}


def carbon_assumptions(scn, catalog) -> list[str]:
    """What the energy and CO2 figures take that the scenario does not say: the default grid
    intensity and PUE (sim/data/carbon.yaml, with their sources) where a pool uses them, and how
    a cloud region's id given as a grid profile was read (us-east1 is Google's South Carolina,
    us-east-1 AWS's Virginia: the line says which, with the figure it stands for)."""
    c = scn.carbon
    given = c.model_fields_set
    out = []
    defaults = carbon_default_entries()
    on_default_grid = [p.name for p in scn.pools if p.carbon_profile is None and p.grid_gco2_per_kwh is None]
    if on_default_grid and c.profile is None and "grid_gco2_per_kwh" not in given:
        d = defaults["grid_gco2_per_kwh"]
        out.append(f"carbon: no grid intensity given for pool(s) {', '.join(on_default_grid)}: "
                   f"{float(c.grid_gco2_per_kwh):g} gCO2/kWh taken ({short_source(d['source'])}, {d['date']}); give "
                   "carbon.grid_gco2_per_kwh, or carbon.profile (`sim grid` lists the shipped grids and cloud regions)")
    on_default_pue = [p.name for p in scn.pools if p.pue is None]
    if on_default_pue and "pue" not in given:
        d = defaults["pue"]
        out.append(f"carbon: no PUE given for pool(s) {', '.join(on_default_pue)}: {float(c.pue):g} taken "
                   f"({short_source(d['source'])}, {d['date']}: the fleet average of a very efficient operator); give "
                   "carbon.pue")
    names = [n for path, n in power.profile_names(scn) if path[0] == "pools" or on_default_grid]  # (carbon.profile:
    # only when a pool uses it)
    for name in dict.fromkeys(names):
        region = catalog.grid_regions.get(name)
        if region is None:
            continue
        prof = catalog.profiles[name]
        mean = prof.annual_mean if prof.annual_mean is not None else prof.mean()
        out.append(f"carbon: grid profile {name!r} read as the {PROVIDERS.get(region.provider, region.provider)} "
                   f"region {name} ({region.location}): {prof.title or prof.name}, {mean:,.0f} gCO2/kWh on average")
    return out
