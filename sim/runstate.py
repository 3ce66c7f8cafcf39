"""The mutable state of one replication: pools, workloads and runs as the engine moves them.
Plain slotted classes, no behaviour (the engine, sim/engine.py, owns every change)."""

from __future__ import annotations

from typing import NamedTuple

from sim.plan import PoolPlan, WorkloadPlan
from sim.reliability import SegmentEnd


class PoolState:
    __slots__ = ("p", "capacity", "free", "busy_gpu_h", "usage_cost", "running")

    def __init__(self, p: PoolPlan):
        self.p = p
        self.running: dict = {}  # runs holding accelerators here, in start order
        self.capacity = p.capacity0
        self.free = p.capacity0
        self.busy_gpu_h = 0.0
        self.usage_cost = 0.0


class WorkloadState:
    __slots__ = ("w", "running", "remaining", "deps_left", "dependents", "end", "cost", "gpu_h")

    def __init__(self, w: WorkloadPlan):
        self.w = w
        self.running = 0
        self.remaining = w.runs
        self.deps_left = len(set(w.after))
        self.dependents: list = []
        self.end = 0.0
        self.cost = 0.0
        self.gpu_h = 0.0


class Segment(NamedTuple):
    """A stretch of a run on its pool: an optional restart, then work until it ends."""

    restart_h: float  # restart before the work (accelerators held, no progress)
    run_h: float  # wall hours after the restart until the segment ends
    end: SegmentEnd
    work_h: float  # compute hours the segment was to do
    length_h: float  # compute hours of the whole run on this pool
    tau_h: float  # checkpoint interval
    write_h: float  # checkpoint write
    t0: float  # when the segment started


class RunState:
    __slots__ = ("wl", "idx", "seq", "n", "factor", "target", "diverging", "done", "pool", "alloc_t", "queued_t",
                 "submit_t", "first_start", "end", "wait_h", "attempts", "failures", "preemptions", "reruns",
                 "alloc_gpu_h", "productive", "lost", "overhead", "attempt_productive", "cost", "pending_restart",
                 "fallback_next", "seg", "abandoned", "token")

    def __init__(self, wl: WorkloadState, idx: int, factor: float, target: float):
        self.wl, self.idx, self.seq, self.n = wl, idx, 0, wl.w.n
        self.factor, self.target = factor, target  # run length multiplier; share of the run to do
        self.diverging = self.abandoned = False
        self.pool: PoolState | None = None
        self.seg: Segment | None = None
        self.done = self.alloc_t = self.queued_t = self.submit_t = self.end = self.wait_h = 0.0
        self.first_start = -1.0
        self.attempts = self.failures = self.preemptions = self.reruns = self.token = 0
        self.alloc_gpu_h = self.productive = self.lost = self.overhead = self.attempt_productive = 0.0
        self.cost = self.pending_restart = 0.0
        self.fallback_next = -1
