"""The mutable state of one replication: pools, workloads and runs as the engine moves them.
Plain slotted classes, no behaviour (the engine, sim/engine.py, owns every change)."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np

from sim.grid import Flat
from sim.plan import PoolPlan, WorkloadPlan


class PoolState:
    __slots__ = ("p", "capacity", "free", "busy_gpu_h", "busy_kwh", "spans", "usage_cost", "running",
                 "spares_free", "repairing", "repair_queue", "waiting", "out", "out_since", "hidden", "lemons_free",
                 "lemons_spare", "bills_usage")

    def __init__(self, p: PoolPlan):
        self.p = p
        self.running: dict = {}  # runs holding accelerators here, in start order
        self.capacity = p.capacity0
        self.free = p.capacity0
        self.busy_gpu_h = 0.0
        self.busy_kwh = 0.0  # drawn by its busy accelerators and their hosts (before PUE)
        # (start, end, accelerators, kW each) of every busy span when the grid's intensity varies, else None
        self.spans: list | None = None if isinstance(p.intensity, Flat) else []
        self.usage_cost = 0.0
        self.spares_free = p.spares  # hot spare nodes on hand
        self.repairing = 0  # repairs under way
        self.repair_queue: deque = deque()  # failures waiting for a crew: (nodes back to the spares, to the pool)
        self.waiting: list = []  # runs holding their other nodes until a node comes back
        self.lemons_free = 0  # lemon nodes among the free ones and the ones in use by no run (sim.lemons)
        self.lemons_spare = 0  # lemon nodes among the free spares
        self.out = False  # in an availability outage
        self.out_since = 0.0
        self.hidden = 0  # capacity kept out of `free` by the outage
        self.bills_usage = p.tier.bills_usage  # its tier bills busy hours to the runs (sim.billing)


class WorkloadState:
    __slots__ = ("w", "running", "remaining", "deps_left", "dependents", "end", "cost", "gpu_h", "sources")

    def __init__(self, w: WorkloadPlan):
        self.w = w
        self.running = 0
        self.remaining = w.runs
        self.deps_left = len(set(w.after))
        self.dependents: list = []
        self.end = 0.0
        self.cost = 0.0
        self.gpu_h = 0.0
        self.sources: list = []  # per pool index: its runs' interruption sources there (the failure model's)


class Segment(NamedTuple):
    """A stretch of a run on its pool: detecting the failure that ended the last one, an optional
    restart, then work until it ends (done, or interrupted at any moment after the detection,
    during the restart included)."""

    dead_h: float  # failure detection before the restart (accelerators held, nothing can happen)
    restart_h: float  # restart before the work (accelerators held, no progress)
    live_h: float  # wall hours after the detection (restart included) until the segment ends
    end: int  # a SegmentEnd value
    work_h: float  # compute hours the segment was to do
    length_h: float  # compute hours of the whole run on this pool
    tau_h: float  # checkpoint interval
    write_h: float  # checkpoint write
    t0: float  # when the segment started


class RunState:
    __slots__ = ("wl", "idx", "seq", "n", "factor", "target", "diverging", "done", "pool", "alloc_t", "queued_t",
                 "submit_t", "first_start", "end", "wait_h", "attempts", "failures", "preemptions", "reruns",
                 "alloc_gpu_h", "productive", "lost", "overhead", "attempt_productive", "cost", "restart_due",
                 "job_failures", "planned", "loss_spikes", "unrecoverable", "domain_failures", "lemons", "slow",
                 "rate_mult", "down_gpu_h",
                 "restart_gpu_h", "write_gpu_h", "straggler_gpu_h", "repair_wait_gpu_h", "ettr",
                 "ckpt_interval_h",
                 "fallback_next", "seg", "abandoned", "token")

    def __init__(self, wl: WorkloadState, idx: int, factor: float, target: float):
        # one attribute a line: a tuple assignment builds a tuple first (this runs once per run)
        self.wl = wl
        self.idx = idx
        self.seq = 0  # submission order
        self.n = wl.w.n
        self.factor = factor  # run length multiplier
        self.target = target  # share of the run to do (early stopping)
        self.diverging = False
        self.done = 0.0  # share of the run kept so far
        self.pool: PoolState | None = None
        self.alloc_t = 0.0
        self.queued_t = 0.0
        self.submit_t = 0.0
        self.first_start = -1.0
        self.end = 0.0
        self.wait_h = 0.0
        self.attempts = 0
        self.failures = 0
        self.preemptions = 0
        self.reruns = 0
        self.alloc_gpu_h = 0.0
        self.productive = 0.0
        self.lost = 0.0
        self.overhead = 0.0
        self.attempt_productive = 0.0
        self.cost = 0.0
        self.restart_due = False  # the next segment starts with a restart
        self.job_failures = 0
        self.planned = 0
        self.loss_spikes = 0
        self.unrecoverable = 0
        self.domain_failures = 0
        self.slow = 1.0  # straggler slowdown of its compute
        self.rate_mult = 1.0  # its failure rate against the base (lemon nodes in its gang)
        self.lemons = 0  # lemon nodes in its gang
        self.down_gpu_h = 0.0  # failure detection and planned downtime
        self.restart_gpu_h = 0.0
        self.write_gpu_h = 0.0
        self.straggler_gpu_h = 0.0
        self.repair_wait_gpu_h = 0.0  # holding its other nodes while a failed one is repaired
        self.ettr = 1.0  # productive / allocated, set when it finishes
        self.ckpt_interval_h = 0.0  # on the pool it last started on
        self.fallback_next = -1
        self.seg: Segment | None = None
        self.abandoned = False
        self.token = 0


def length_factors(kind: str, sigma: float, runs: int, rng: np.random.Generator) -> list[float]:
    """Each run's length as a multiple of the workload's (run-to-run spread): fixed (1),
    lognormal with median 1, or exponential with mean 1."""
    if kind == "lognormal" and sigma > 0:
        return np.exp(sigma * rng.standard_normal(runs)).tolist()
    if kind == "exponential":
        return rng.standard_exponential(runs).tolist()
    return [1.0] * runs


def straggler_slowdowns(w, rng: np.random.Generator) -> list[float]:
    """Each run's slowdown: 1 for most; for a share `straggle_p` of runs, lognormal around the
    median slowdown (never below 1)."""
    hit = rng.random(w.runs) < w.straggle_p
    factor = w.straggle_slowdown * np.exp(w.straggle_sigma * rng.standard_normal(w.runs))
    return np.where(hit, np.maximum(factor, 1.0), 1.0).tolist()
