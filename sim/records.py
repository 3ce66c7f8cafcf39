"""What a replication produced, as typed records, and their columns in the result files.

`RunRecord` is one finished run; `ReplicationRecord` is one replication's totals. The engine makes
them (in one place, `Replication.record()` / `Replication.run_records()`); the runner turns them
into columns (`append_runs`, `ReplicationRecord.row`) for Parquet.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(slots=True, frozen=True)
class RunRecord:
    """One run of a workload, from submission to its end (finished or abandoned)."""

    workload: str
    run: int
    pool: str  # the pool it ended on
    submit_h: float
    start_h: float  # first start
    end_h: float
    queue_wait_h: float  # all waits, first and after interruptions
    attempts: int
    failures: int
    preemptions: int
    reruns: int
    abandoned: bool
    gpu_hours: float  # allocated accelerator-hours
    productive_gpu_hours: float
    lost_gpu_hours: float
    overhead_gpu_hours: float
    cost_usd: float  # usage billed to the run (on-demand and spot; 0 on reserved or owned capacity)


RUN_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RunRecord))


def empty_run_columns() -> dict[str, list]:
    return {"replication": [], **{c: [] for c in RUN_COLUMNS}}


def append_runs(columns: dict[str, list], replication: int, records: list[RunRecord]) -> None:
    """Add a replication's runs to column lists (the form part files are written from)."""
    columns["replication"].extend([replication] * len(records))
    for c in RUN_COLUMNS:
        columns[c].extend([getattr(r, c) for r in records])


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
    failures: int
    preemptions: int
    reruns: int
    mean_queue_wait_h: float
    events: int
    workloads: dict[str, WorkloadTotals] = field(default_factory=dict)
    cost_usd_by_pool: dict[str, float] = field(default_factory=dict)
    cost_usd_by_tier: dict[str, float] = field(default_factory=dict)
    spend_usd_by_month: dict[str, float] = field(default_factory=dict)  # YYYY-MM -> USD

    METRICS = ("cost_usd", "gpu_hours", "productive_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours",
               "idle_gpu_hours", "makespan_days", "finish_date", "energy_kwh", "co2_kg", "failures", "preemptions",
               "reruns", "mean_queue_wait_h", "events")

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
