"""The deterministic estimate: each workload's runs at nominal inputs, on its first-choice pool
that can hold a run, started at the workload's earliest start, with no queueing, failures,
preemption or restarts. Prices follow the pool's curve (integrated exactly over each run).

It answers "what does this training cost, roughly?" and is the floor every simulation is
checked against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from sim import power, schema
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
class Estimate:
    scenario: str
    start: date
    workloads: list[WorkloadEstimate]

    @property
    def total(self) -> dict[str, float]:
        return {
            "cost_usd": sum(w.cost_usd for w in self.workloads),
            "gpu_hours": sum(w.gpu_hours for w in self.workloads),
            "energy_kwh": sum(w.energy_kwh for w in self.workloads),
            "co2_kg": sum(w.co2_kg for w in self.workloads),
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
        return {"scenario": self.scenario, "workloads": out, "total": self.total}


def first_fit_pool(w: schema.Workload, scn: schema.Scenario) -> schema.Pool:
    names = w.pools if w.pools is not None else [p.name for p in scn.pools]
    for n in names:
        p = scn.pool(n)
        if p.max_count >= w.accelerators:
            return p
    raise AssertionError("checked by the loader")  # pragma: no cover


def estimate(loaded: Loaded) -> Estimate:
    scn = schema.nominal_scenario(loaded.scenario)
    start = scn.project.start
    out = []
    for w in scn.workloads:
        pool = first_fit_pool(w, scn)
        acc = loaded.catalog.accelerators[pool.accelerator]
        price: PoolPrice = loaded.prices[pool.name]
        base = float(nominal(price.usd_per_gpu_h))
        curve = make_curve(pool.price_curve, base, start)
        flop, hours, gpu_h = run_size(w, acc)
        t0 = hours_between(start, w.earliest_start) if w.earliest_start else 0.0
        n = w.accelerators
        cost_run = n * curve.integral(t0, t0 + hours)
        pue = pool.pue if pool.pue is not None else scn.carbon.pue
        kwh_run = gpu_h * power.busy_w(acc, pool, w, scn.carbon) / 1000.0 * pue
        grid_kg = power.intensity(pool, scn.carbon, loaded.catalog.profiles, start).mean(t0, t0 + hours)
        if pool.pricing == "owned":
            cost_run += kwh_run * pool.energy_usd_per_kwh
        eff_runs = float(w.runs)
        if w.early_stop is not None:  # the same whole number of runs the engine stops early
            stopped = early_stopped_runs(w.early_stop.fraction_of_runs, int(w.runs))
            eff_runs = w.runs - stopped * (1.0 - w.early_stop.at)
        out.append(WorkloadEstimate(
            name=w.name, runs=int(w.runs), effective_runs=eff_runs, pool=pool.name, accelerator=acc.id,
            accelerators=n, pricing=pool.pricing, price_usd_per_gpu_h=curve.at(t0), price_source=price.source,
            flop_per_run=flop, gpu_hours_per_run=gpu_h, hours_per_run=hours, cost_usd_per_run=cost_run,
            cost_usd=cost_run * eff_runs, gpu_hours=gpu_h * eff_runs, energy_kwh=kwh_run * eff_runs,
            co2_kg=kwh_run * grid_kg * eff_runs,
        ))
    return Estimate(scn.project.name, start, out)
