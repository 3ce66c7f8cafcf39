"""What a replication produced, as typed records, and their columns in the result files.

`RunRecord` is one finished run; `ReplicationRecord` is one replication's totals. The engine makes
them (in one place, `Replication.record()` / `Replication.run_records()`); the runner turns them
into columns (`RunColumns`, `ReplicationRecord.row`) for Parquet.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple, get_type_hints

import numpy as np

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
    domain_failures: int  # correlated: a failure domain (rack, switch) lost together
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


def run_rows(finished: list) -> list[tuple]:
    """The rows of runs.parquet of a finished replication (sim.runstate.RunState objects), less
    the replication column: plain tuples in RunRecord's order. Written out attribute by attribute:
    the interpreter reads a slot it has seen before several times faster than operator.attrgetter,
    which looks each name up afresh. `run_records` gives the same as typed records."""
    return [(r.wl.w.name, r.idx, r.pool.p.name, r.submit_t, r.first_start, r.end, r.wait_h, r.attempts, r.failures,
             r.job_failures, r.planned, r.loss_spikes, r.unrecoverable, r.domain_failures, r.preemptions, r.reruns,
             r.abandoned, r.alloc_gpu_h, r.productive, r.lost, r.overhead, r.down_gpu_h, r.restart_gpu_h,
             r.write_gpu_h, r.straggler_gpu_h, r.repair_wait_gpu_h, r.ettr, r.ckpt_interval_h, r.cost)
            for r in finished]


def run_columns(finished: list) -> list[tuple]:
    """The columns of runs.parquet of a finished replication (sim.runstate.RunState objects), less
    the replication column: one tuple per column in RunRecord's order (empty when no run finished)."""
    rows = run_rows(finished)
    return list(zip(*rows, strict=True)) if rows else [()] * len(RUN_COLUMNS)


def _dtype(name: str) -> type:
    """A run column's numpy type: RunRecord's annotation, names as Python objects (a fixed-width
    unicode array is six times slower to make and, for Arrow, ten times slower to convert). The
    clock readings are float64 even when they are whole hours (a run submitted or started at 0):
    a column typed by its values was int64 in one chunk and float64 in another, and runs.parquet,
    whose type the first chunk set, could not take the second."""
    kind = get_type_hints(RunRecord)[name]
    return {int: np.int64, float: np.float64, bool: np.bool_, str: object}[kind]


RUN_DTYPES = tuple(_dtype(c) for c in RUN_COLUMNS)


class RunColumns:
    """The per-run records of some replications as columns (numpy arrays), filled one finished
    replication at a time: no Python object per run is kept once its replication is added, and
    the arrays pickle compactly between processes."""

    def __init__(self) -> None:
        self.parts: list[list[np.ndarray]] = []  # one list of arrays (replication first) per replication
        self.rows = 0

    def add(self, replication: int, columns: list[tuple]) -> None:
        """Add a replication's columns (from `run_columns`)."""
        n = len(columns[0])
        if n:
            # (numpy.fromiter: a tenth quicker than numpy.array)
            cols = (np.fromiter(c, d, n) for c, d in zip(columns, RUN_DTYPES, strict=True))
            self.parts.append([np.full(n, replication, dtype=np.int64), *cols])
            self.rows += n

    def __len__(self) -> int:
        return self.rows

    def columns(self) -> dict[str, np.ndarray]:
        """The columns of runs.parquet (replication first), concatenated; empty when no run was added."""
        if not self.parts:
            return {}
        if len(self.parts) > 1:
            self.parts = [[np.concatenate(col) for col in zip(*self.parts, strict=True)]]
        return dict(zip(("replication", *RUN_COLUMNS), self.parts[0], strict=True))


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
    domain_failures: int
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
    spend_usd_by_week: dict[str, float] = field(default_factory=dict)  # YYYY-MM-DD (the week's first day) -> USD

    METRICS = ("cost_usd", "gpu_hours", "productive_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours",
               "idle_gpu_hours", "makespan_days", "finish_date", "energy_kwh", "co2_kg", "failures", "job_failures",
               "planned", "loss_spikes", "domain_failures", "preemptions", "reruns", "down_gpu_hours",
               "restart_gpu_hours", "write_gpu_hours", "straggler_gpu_hours", "repair_wait_gpu_hours", "ettr",
               "mean_queue_wait_h", "events")

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
        for week, c in self.spend_usd_by_week.items():
            out[f"spend_week_usd_{week}"] = c
        if inputs:
            out.update(inputs)
        for name, w in self.workloads.items():
            out[f"gpu_hours_wl_{name}"] = w.gpu_hours
            out[f"runs_wl_{name}"] = w.runs
        return out


def replication_record(rep, columns: list[tuple] | None = None) -> ReplicationRecord:
    """A finished replication's totals (`rep`: a sim.engine.Replication; `columns`: its
    run_columns, if already made): each pool billed by its tier, energy and CO2, the usage and
    commitments split by calendar month, and the runs' hours and interruptions summed."""
    plan = rep.plan
    mk = rep.makespan_h()
    spend = defaultdict(float, rep.spend)  # usage billed so far, plus commitments below
    by_pool: dict[str, float] = {}
    by_tier: dict[str, float] = {}
    energy = co2 = idle = 0.0
    for pool in rep.pools:
        p = pool.p
        use = PoolUse(p.curve, p.capacity0, p.steps, p.commit, pool.busy_gpu_h, pool.usage_cost, mk, pool.busy_kwh,
                      p.idle_kw, p.pue, p.usd_per_kwh, p.intensity, *_weighed(pool),
                      p.spares * p.node_size)
        bill = p.tier.bill(use, plan.months, spend)
        by_pool[p.name] = bill.cost_usd
        by_tier[p.tier.name] = by_tier.get(p.tier.name, 0.0) + bill.cost_usd
        energy += bill.kwh
        co2 += bill.co2_kg
        idle += bill.idle_gpu_h
    col = dict(zip(RUN_COLUMNS, run_columns(rep.finished) if columns is None else columns, strict=True))
    n = len(col["run"])
    alloc, productive = sum(col["gpu_hours"]), sum(col["productive_gpu_hours"])
    return ReplicationRecord(
        cost_usd=sum(by_pool.values()), gpu_hours=alloc,
        productive_gpu_hours=productive, lost_gpu_hours=sum(col["lost_gpu_hours"]),
        overhead_gpu_hours=sum(col["overhead_gpu_hours"]), idle_gpu_hours=idle, makespan_days=mk / 24.0,
        finish_date=(plan.start + timedelta(hours=mk)).isoformat(), energy_kwh=energy, co2_kg=co2,
        **{k: sum(col[k]) for k in SUMMED}, ettr=productive / alloc if alloc > 0 else 1.0,
        mean_queue_wait_h=(sum(col["queue_wait_h"]) / n) if n else 0.0, events=rep.events,
        workloads={wl.w.name: WorkloadTotals(wl.w.runs, wl.cost, wl.gpu_h) for wl in rep.wls},
        cost_usd_by_pool=by_pool, cost_usd_by_tier=by_tier,
        spend_usd_by_month=_by_label(spend, plan.month_labels), spend_usd_by_week=_by_label(spend, plan.week_labels),
    )


def _weighed(pool) -> tuple[float, float | None]:
    """(busy accelerator-hours x the grid's intensity then, busy kWh x the intensity then) of a pool
    on a grid whose intensity varies: its busy spans integrated at once; (0, None) on a flat grid."""
    if pool.spans is None:
        return 0.0, None
    if not pool.spans:
        return 0.0, 0.0
    a, b, n, kw = np.array(pool.spans, dtype=float).T
    ih = n * pool.p.intensity.integrals(a, b)
    return float(ih.sum()), float((ih * kw).sum())


def _by_label(spend: dict[int, float], labels: tuple[str, ...]) -> dict[str, float]:
    """Spend by period index summed by the periods' labels (month or week), in time order."""
    out: dict[str, float] = {}
    for i in sorted(spend):
        out[labels[i]] = out.get(labels[i], 0.0) + spend[i]
    return out


# run columns summed into the replication's totals of the same name
SUMMED = ("failures", "job_failures", "planned", "loss_spikes", "domain_failures", "preemptions", "reruns",
          "down_gpu_hours", "restart_gpu_hours", "write_gpu_hours", "straggler_gpu_hours", "repair_wait_gpu_hours")


def run_records(finished: list) -> list[RunRecord]:
    """The runs of a finished replication (sim.runstate.RunState objects) as typed records."""
    new = tuple.__new__  # a NamedTuple from a tuple without its Python-level __new__
    return [new(RunRecord, row) for row in run_rows(finished)]
