"""The plan: a scenario with concrete numbers (no distributions left) turned into plain numbers
(sizes, prices, rates) that one replication needs. Pure; no randomness, no SimPy."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.catalog import Catalog
from sim.compute import early_stopped_runs
from sim.estimate import run_size
from sim.loader import pool_price
from sim.pricing import make_curve
from sim.reliability import band_rate_per_node_h, daly_interval
from sim.schema import Scenario
from sim.units import hours_between

INF = math.inf




@dataclass(slots=True)
class PoolPlan:
    idx: int
    name: str
    tier: str
    capacity0: int
    steps: list  # [(t_h, capacity)] changes after t=0, in time order
    node_size: int
    curve: object
    preempt_rate_node: float
    notice: float
    fallback: int
    tdp_kw: float
    pue: float
    grid_kg_per_kwh: float
    usd_per_kwh: float
    commit: tuple  # (t0, t1) for reserved, else ()


@dataclass(slots=True)
class WorkloadPlan:
    idx: int
    name: str
    runs: int
    n: int
    pools: list  # pool indices in preference order
    length_on: dict  # pool idx -> hours of one run on that pool (uninterrupted)
    tau_on: dict  # pool idx -> checkpoint interval (compute hours); inf = none; 0 = continuous
    delta: float
    restart: float
    repair: float
    fail_rate: float  # per run-hour (rate per GPU-h x accelerators)
    priority: int
    max_concurrent: float
    earliest_h: float
    after: list  # workload indices
    div_p: float
    div_at: float
    div_rerun: bool
    early_k: int
    early_at: float
    length_kind: str
    length_sigma: float
    arrival_interval: float  # 0 = at once


@dataclass(slots=True)
class Plan:
    start: object
    horizon_h: float
    policy: str
    pools: list
    workloads: list
    power_factor: float
    idle_power_factor: float
    months: tuple = ()  # hours at which each calendar month starts (month 0 = project start)
    month_labels: tuple = ()


def month_starts(start, horizon_h: float) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """Hours since `start` at which each calendar month begins (the first is the start itself,
    perhaps mid-month), up to the horizon, and their labels (YYYY-MM)."""
    times, labels = [0.0], [f"{start.year:04d}-{start.month:02d}"]
    y, m = start.year, start.month
    while True:
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        t = hours_between(start, type(start)(y, m, 1))
        if t > horizon_h:
            break
        times.append(t)
        labels.append(f"{y:04d}-{m:02d}")
    return tuple(times), tuple(labels)


def _pool_rate(p) -> float:
    if p.preemption is None:
        return 0.0
    if p.preemption.rate_per_node_h is not None:
        return float(p.preemption.rate_per_node_h)
    from sim.catalog import preemption_bands

    return band_rate_per_node_h(preemption_bands()[p.preemption.band])


def build_plan(scn: Scenario, catalog: Catalog) -> Plan:
    """Turn a scenario with concrete numbers (no distributions left) into a Plan."""
    start = scn.project.start
    pools = []
    names = {p.name: i for i, p in enumerate(scn.pools)}
    for i, p in enumerate(scn.pools):
        acc = catalog.accelerators[p.accelerator]
        price = pool_price(p, catalog, start)
        curve = make_curve(p.price_curve, float(price.usd_per_gpu_h), start)
        steps = sorted((hours_between(start, c.date), int(c.count)) for c in p.capacity_changes)
        commit = ()
        cap0 = p.count
        if p.pricing == "reserved":
            t0 = hours_between(start, p.commitment_start) if p.commitment_start else 0.0
            t1 = t0 + (p.term or 8760.0)
            commit = (t0, t1)
            if t0 > 0:
                cap0 = 0
                steps.append((t0, p.count))
            steps.append((t1, 0))
            steps.sort()
        pools.append(PoolPlan(
            idx=i, name=p.name, tier=p.pricing, capacity0=cap0, steps=steps, node_size=p.nodes_of,
            curve=curve, preempt_rate_node=_pool_rate(p),
            notice=float(p.preemption.notice) if p.preemption else 0.0,
            fallback=names[p.fallback] if p.fallback else -1, tdp_kw=acc.tdp_w / 1000.0,
            pue=float(p.pue if p.pue is not None else scn.carbon.pue),
            grid_kg_per_kwh=float(p.grid_gco2_per_kwh if p.grid_gco2_per_kwh is not None
                                  else scn.carbon.grid_gco2_per_kwh) / 1000.0,
            usd_per_kwh=float(p.energy_usd_per_kwh or 0.0), commit=commit,
        ))
    rel = scn.reliability
    if rel.model == "none":
        rate_gpu = 0.0
    elif rel.mtbf_per_gpu is not None:
        rate_gpu = 1.0 / float(rel.mtbf_per_gpu)
    else:
        rate_gpu = float(rel.failure_rate_per_gpu_h or 0.0)
    wnames = {w.name: i for i, w in enumerate(scn.workloads)}
    workloads = []
    for i, w in enumerate(scn.workloads):
        def fits(j, n=w.accelerators):
            return scn.pools[j].max_count >= n

        usable = [names[n] for n in (w.pools if w.pools is not None else list(names)) if fits(names[n])]
        length_on = {}
        tau_on = {}
        ck = w.checkpoint or rel.checkpoint
        fail = rate_gpu * w.accelerators
        for j in (j for j in range(len(scn.pools)) if fits(j)):  # fallbacks may be outside `usable`
            acc = catalog.accelerators[scn.pools[j].accelerator]
            length_on[j] = run_size(w, acc)[1]
            pl = pools[j]
            nodes = math.ceil(w.accelerators / pl.node_size)
            lam = fail + pl.preempt_rate_node * nodes
            if ck.interval == "none":
                tau_on[j] = INF
            elif ck.interval == "auto":
                tau_on[j] = daly_interval(float(ck.write), 1.0 / lam if lam > 0 else INF)
            else:
                tau_on[j] = float(ck.interval)
        div = w.divergence
        es = w.early_stop
        workloads.append(WorkloadPlan(
            idx=i, name=w.name, runs=int(w.runs), n=w.accelerators, pools=usable, length_on=length_on,
            tau_on=tau_on, delta=float(ck.write), restart=float(rel.restart), repair=float(rel.repair),
            fail_rate=fail, priority=w.priority,
            max_concurrent=float(w.max_concurrent) if w.max_concurrent else INF,
            earliest_h=hours_between(start, w.earliest_start) if w.earliest_start else 0.0,
            after=[wnames[a] for a in w.after],
            div_p=float(div.probability) if div else 0.0, div_at=float(div.at) if div else 1.0,
            div_rerun=bool(div.rerun) if div else True,
            early_k=early_stopped_runs(float(es.fraction_of_runs), int(w.runs)) if es else 0,
            early_at=float(es.at) if es else 1.0,
            length_kind=w.run_length.kind, length_sigma=float(w.run_length.sigma),
            arrival_interval=float(w.arrivals.mean_interval or 0.0),
        ))
    months, labels = month_starts(start, float(scn.simulation.horizon))
    return Plan(start=start, horizon_h=float(scn.simulation.horizon), policy=scn.simulation.scheduler,
                pools=pools, workloads=workloads, power_factor=float(scn.carbon.power_factor),
                idle_power_factor=float(scn.carbon.idle_power_factor), months=months, month_labels=labels)


