"""What a replication produced, as typed records, and their columns in the result files.

`RunRecord` is one finished run; `ReplicationRecord` is one replication's totals. The engine makes
them (in one place, `Replication.record()` / `Replication.run_records()`); the runner turns them
into columns (`append_runs`, `ReplicationRecord.row`) for Parquet.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

from sim.billing import PoolUse


class RunRecord(NamedTuple):
    """One run of a workload, from submission to its end (finished or abandoned). A NamedTuple
    rather than a dataclass: a replication makes hundreds, and a tuple is several times cheaper to
    make and to send between processes."""

    workload: str
    run: int
    pool: str  # the pool it ended on
    submit_h: float
    start_h: float  # first start
    end_h: float
    queue_wait_h: float  # all waits, first and after interruptions
    attempts: int
    failures: int  # hardware
    job_failures: int
    planned: int  # planned interruptions
    loss_spikes: int
    unrecoverable: int  # hardware failures that spoilt the last checkpoint too
    preemptions: int
    reruns: int
    abandoned: bool
    gpu_hours: float  # allocated accelerator-hours
    productive_gpu_hours: float
    lost_gpu_hours: float
    overhead_gpu_hours: float  # = down + restart + write + straggler + repair wait
    down_gpu_hours: float  # failure detection and planned downtime
    restart_gpu_hours: float
    write_gpu_hours: float  # checkpoint writes
    straggler_gpu_hours: float  # extra compute time of a straggling run
    repair_wait_gpu_hours: float  # holding its other nodes while a failed one is repaired
    ettr: float  # effective training time ratio: productive / allocated
    ckpt_interval_h: float  # checkpoint interval used on the pool it ended on (inf: none; 0: continuous)
    cost_usd: float  # usage billed to the run (on-demand and spot; 0 on reserved or owned capacity)


RUN_COLUMNS: tuple[str, ...] = RunRecord._fields


def empty_run_columns() -> dict[str, list]:
    return {"replication": [], **{c: [] for c in RUN_COLUMNS}}


def append_runs(columns: dict[str, list], replication: int, records: list[RunRecord]) -> None:
    """Add a replication's runs to column lists (the form part files are written from)."""
    if not records:
        return
    columns["replication"].extend([replication] * len(records))
    for c, values in zip(RUN_COLUMNS, zip(*records, strict=True), strict=True):
        columns[c].extend(values)


@dataclass(slots=True)
class WorkloadTotals:
    runs: int
    cost_usd: float
    gpu_hours: float


@dataclass(slots=True)
class ReplicationRecord:
    """One replication's totals. `row()` flattens it into the columns of replications.parquet."""

    cost_usd: float
    gpu_hours: float
    productive_gpu_hours: float
    lost_gpu_hours: float
    overhead_gpu_hours: float
    idle_gpu_hours: float
    makespan_days: float
    finish_date: str
    energy_kwh: float
    co2_kg: float
    failures: int  # hardware
    job_failures: int
    planned: int
    loss_spikes: int
    preemptions: int
    reruns: int
    down_gpu_hours: float
    restart_gpu_hours: float
    write_gpu_hours: float
    straggler_gpu_hours: float
    repair_wait_gpu_hours: float
    ettr: float  # productive / allocated accelerator-hours over all runs
    mean_queue_wait_h: float
    events: int
    workloads: dict[str, WorkloadTotals] = field(default_factory=dict)
    cost_usd_by_pool: dict[str, float] = field(default_factory=dict)
    cost_usd_by_tier: dict[str, float] = field(default_factory=dict)
    spend_usd_by_month: dict[str, float] = field(default_factory=dict)  # YYYY-MM -> USD

    METRICS = ("cost_usd", "gpu_hours", "productive_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours",
               "idle_gpu_hours", "makespan_days", "finish_date", "energy_kwh", "co2_kg", "failures", "job_failures",
               "planned", "loss_spikes", "preemptions", "reruns", "down_gpu_hours", "restart_gpu_hours",
               "write_gpu_hours", "straggler_gpu_hours", "repair_wait_gpu_hours", "ettr", "mean_queue_wait_h",
               "events")

    def row(self, inputs: dict | None = None) -> dict:
        """Flat columns: metrics, cost by workload / pool / tier, spend by month, then the sampled
        inputs, then accelerator-hours and runs by workload."""
        out = {m: getattr(self, m) for m in self.METRICS}
        for name, w in self.workloads.items():
            out[f"cost_usd_wl_{name}"] = w.cost_usd
        for name, c in self.cost_usd_by_pool.items():
            out[f"cost_usd_pool_{name}"] = c
        for tier, c in self.cost_usd_by_tier.items():
            out[f"cost_usd_tier_{tier}"] = c
        for month, c in self.spend_usd_by_month.items():
            out[f"spend_usd_{month}"] = c
        if inputs:
            out.update(inputs)
        for name, w in self.workloads.items():
            out[f"gpu_hours_wl_{name}"] = w.gpu_hours
            out[f"runs_wl_{name}"] = w.runs
        return out


def replication_record(rep) -> ReplicationRecord:
    """A finished replication's totals (`rep`: a sim.engine.Replication): each pool billed by its
    tier, energy and CO2, and the usage and commitments split by calendar month."""
    plan = rep.plan
    mk = rep.makespan_h()
    spend = defaultdict(float, rep.spend)  # usage billed so far, plus commitments below
    by_pool: dict[str, float] = {}
    by_tier: dict[str, float] = {}
    energy = co2 = idle = 0.0
    for pool in rep.pools:
        p = pool.p
        use = PoolUse(p.curve, p.capacity0, p.steps, p.commit, pool.busy_gpu_h, pool.usage_cost, mk, p.tdp_kw, p.pue,
                      p.usd_per_kwh)
        bill = p.tier.bill(use, plan.months, plan.power_factor, plan.idle_power_factor, spend)
        by_pool[p.name] = bill.cost_usd
        by_tier[p.tier.name] = by_tier.get(p.tier.name, 0.0) + bill.cost_usd
        energy += bill.kwh
        co2 += bill.kwh * p.grid_kg_per_kwh
        idle += bill.idle_gpu_h
    runs = rep.finished
    alloc, productive = sum(r.alloc_gpu_h for r in runs), sum(r.productive for r in runs)
    return ReplicationRecord(
        cost_usd=sum(by_pool.values()), gpu_hours=alloc,
        productive_gpu_hours=productive, lost_gpu_hours=sum(r.lost for r in runs),
        overhead_gpu_hours=sum(r.overhead for r in runs), idle_gpu_hours=idle, makespan_days=mk / 24.0,
        finish_date=(plan.start + timedelta(hours=mk)).isoformat(), energy_kwh=energy, co2_kg=co2,
        **_counts(runs), ettr=productive / alloc if alloc > 0 else 1.0,
        mean_queue_wait_h=(sum(r.wait_h for r in runs) / len(runs)) if runs else 0.0, events=rep.events,
        workloads={wl.w.name: WorkloadTotals(wl.w.runs, wl.cost, wl.gpu_h) for wl in rep.wls},
        cost_usd_by_pool=by_pool, cost_usd_by_tier=by_tier,
        spend_usd_by_month={plan.month_labels[i]: spend[i] for i in sorted(spend)},
    )


def _counts(runs: list) -> dict:
    """Interruptions by kind and where the overhead went, summed over a replication's runs."""
    out = {k: sum(getattr(r, k) for r in runs) for k in ("failures", "job_failures", "planned", "loss_spikes",
                                                          "preemptions", "reruns")}
    for col, attr in (("down_gpu_hours", "down_gpu_h"), ("restart_gpu_hours", "restart_gpu_h"),
                      ("write_gpu_hours", "write_gpu_h"), ("straggler_gpu_hours", "straggler_gpu_h"),
                      ("repair_wait_gpu_hours", "repair_wait_gpu_h")):
        out[col] = sum(getattr(r, attr) for r in runs)
    return out


def run_records(finished: list) -> list[RunRecord]:
    """The runs of a finished replication (sim.runstate.RunState objects) as records."""
    new = tuple.__new__  # a NamedTuple from a tuple without its Python-level __new__ (hundreds a replication)
    return [new(RunRecord, (r.wl.w.name, r.idx, r.pool.p.name, r.submit_t, r.first_start, r.end, r.wait_h, r.attempts,
                            r.failures, r.job_failures, r.planned, r.loss_spikes, r.unrecoverable, r.preemptions,
                            r.reruns, r.abandoned, r.alloc_gpu_h, r.productive, r.lost, r.overhead, r.down_gpu_h,
                            r.restart_gpu_h, r.write_gpu_h, r.straggler_gpu_h, r.repair_wait_gpu_h,
                            r.productive / r.alloc_gpu_h if r.alloc_gpu_h > 0 else 1.0,
                            r.wl.w.ckpt_interval_h_on[r.pool.p.idx], r.cost)) for r in finished]
