"""Interchangeable pieces of the engine, chosen by name in the scenario: the queue policy
(`simulation.scheduler`) and the failure model (`reliability.model`).

The engine asks a scheduler which queued run comes first (`key`), whether a run that cannot start
blocks the ones behind it (`strict`), and on which pool a run starts (`choose_pool`). It asks a
failure model when the next interruption of a run segment comes and of what kind
(`next_interruption`). Neither knows anything of SimPy.

To add a scheduler or a failure model: a class here, an entry in SCHEDULERS or FAILURE_MODELS,
and the name in the schema's Literal (sim/schema.py).
"""

from __future__ import annotations

import math

from sim import rng as rngmod
from sim.reliability import DOMAIN, DONE, FAILURE, JOB_FAILURE, LOSS_SPIKE, PLANNED, PREEMPTION

INF = math.inf


# --------------------------------------------------------------------------------------------
# Schedulers. A run (`r`) has .seq (submission order), .n (accelerators), .wl.w (its WorkloadPlan)
# and .fallback_next (a pool index to try first after a preemption, -1 for none); a pool has
# .free and .p (its PoolPlan).


class FifoBackfill:
    """First come, first served; a run that does not fit lets later, smaller runs start
    (greedy backfill). Each run starts on the first pool in its workload's preference list with
    room, or on its pool's fallback first after a preemption."""

    name = "fifo_backfill"
    strict = False

    @staticmethod
    def key(r) -> tuple:
        return (r.seq,)

    @staticmethod
    def choose_pool(r, pools: list):
        fb = r.fallback_next
        w = r.wl.w
        if fb >= 0 and pools[fb].free >= r.n and fb in w.length_h_on:
            return pools[fb]
        for j in w.pools:
            if pools[j].free >= r.n:
                return pools[j]
        return None


class Fifo(FifoBackfill):
    """Strict first come, first served: nothing starts ahead of a run that is waiting."""

    name = "fifo"
    strict = True


class Priority(FifoBackfill):
    """Higher `priority` first, then submission order; with backfill."""

    name = "priority"

    @staticmethod
    def key(r) -> tuple:
        return (-r.wl.w.priority, r.seq)


SCHEDULERS = {s.name: s for s in (FifoBackfill(), Fifo(), Priority())}


# --------------------------------------------------------------------------------------------
# Failure models


class ExponentialInterruptions:
    """Hardware failures at a constant rate per run-hour (the workload's rate per accelerator-hour
    x its accelerators, x the run's lemon multiplier), failures of the failure domains it spans
    (per domain-hour), job-level failures, planned interruptions and loss spikes at constant rates
    per run-hour whatever the size, and spot preemptions at a constant rate per node-hour of the
    pool: independent Poisson processes, each with its own random stream.

    The time to the next interruption is drawn afresh at the start of every segment (after each
    restart, preemption or eviction). That is exact only because the exponential distribution is
    memoryless: the time already spent without a failure says nothing about the time still to
    come. A model with a non-constant hazard (Weibull, wear-out, infant mortality) must keep
    each run's (or node's) age and draw conditionally on it instead.
    """

    name = "exponential"

    def __init__(self, seed: int, replication: int):
        exp = rngmod.ExpStream  # each made at its first draw
        self.failures = exp((seed, replication, "failures"))
        self.preemptions = exp((seed, replication, "preemptions"))
        self.job_failures = exp((seed, replication, "job_failures"))
        self.planned = exp((seed, replication, "planned"))
        self.spikes = exp((seed, replication, "loss_spikes"))
        self.domains = exp((seed, replication, "domain_failures"))

    def next_interruption(self, r, pool) -> tuple[float, int]:
        """Hours from now (the segment's start) to the next interruption of run `r` on `pool`, and
        its kind (a SegmentEnd value); (inf, DONE) when nothing can interrupt it. Ties go to hardware
        failures, then job-level failures, then the rarer kinds, then preemptions. A source with a
        zero rate draws nothing, so adding one leaves the others' random numbers as they were."""
        t, kind = INF, DONE
        w = r.wl.w
        rate = w.fail_rate_per_h * r.rate_mult  # lemon nodes in the run's gang raise it
        if rate > 0.0:
            draw = self.failures.next  # (a slot: read it, then call it; `x.next()` is read slowly)
            t, kind = draw() / rate, FAILURE
        if w.job_fail_rate_per_h > 0.0:
            draw = self.job_failures.next
            tj = draw() / w.job_fail_rate_per_h
            if tj < t:
                t, kind = tj, JOB_FAILURE
        if w.planned_rate_per_h > 0.0 or w.spike_rate_per_h > 0.0 or w.domain_nodes:
            t, kind = self._rare(w, pool.p.idx, t, kind)
        p = pool.p
        pr = p.preempt_rate_per_node_h
        if pr > 0.0:
            draw = self.preemptions.next
            tp = draw() / (pr * -(-r.n // p.node_size))
            if tp < t:
                t, kind = tp, PREEMPTION
        return t, kind

    def _rare(self, w, j: int, t: float, kind: int) -> tuple[float, int]:
        """Planned interruptions, loss spikes and failure domains (on pool `j`), when the workload
        has them."""
        if w.planned_rate_per_h > 0.0:
            draw = self.planned.next
            tp = draw() / w.planned_rate_per_h
            if tp < t:
                t, kind = tp, PLANNED
        if w.spike_rate_per_h > 0.0:
            draw = self.spikes.next
            ts = draw() / w.spike_rate_per_h
            if ts < t:
                t, kind = ts, LOSS_SPIKE
        rd = w.domain_rate_per_h_on[j] if w.domain_nodes else 0.0
        if rd > 0.0:
            draw = self.domains.next
            td = draw() / rd
            if td < t:
                t, kind = td, DOMAIN
        return t, kind


class NoFailures(ExponentialInterruptions):
    """No hardware failures (the plan's failure rate is 0); spot preemption still applies."""

    name = "none"


FAILURE_MODELS = {m.name: m for m in (ExponentialInterruptions, NoFailures)}
