"""Interchangeable pieces of the engine, chosen by name in the scenario: the queue policy
(`simulation.scheduler`) and the failure model (`reliability.model`).

The engine asks a scheduler which queued run comes first (`key`), whether a run that cannot start
blocks the ones behind it (`strict`), and on which pool a run starts (`choose_pool`). It asks a
failure model when the next interruption of a run segment comes and of what kind
(`next_interruption`; a kind of MIXED is settled by `kind`, asked only when the interruption comes
before the segment ends). Neither knows anything of SimPy.

To add a scheduler or a failure model: a class here, an entry in SCHEDULERS or FAILURE_MODELS,
and the name in the schema's Literal (sim/schema.py).
"""

from __future__ import annotations

import math

from sim import rng as rngmod
from sim.reliability import DOMAIN, DONE, FAILURE, JOB_FAILURE, LOSS_SPIKE, PLANNED, PREEMPTION

INF = math.inf
MIXED = -1  # next_interruption's kind when `kind` must be asked (not a SegmentEnd)


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
    pool: independent Poisson processes.

    Drawn as their superposition: the time to the next interruption of any kind is exponential at
    the sum of the rates, and its kind is each source with probability rate / sum (the same joint
    distribution as the earliest of one exponential per source, for one draw and one uniform
    instead of one draw per source at every segment). A run with hardware failures as its only
    source draws exactly as a single Poisson process (no uniform). Common random numbers still
    pair variants: the same exponential and uniform, so a rate changed in a variant moves every
    interruption time by the ratio of the sums and shifts the kinds' thresholds, monotonically.

    The time to the next interruption is drawn afresh at the start of every segment (after each
    restart, preemption or eviction). That is exact only because the exponential distribution is
    memoryless: the time already spent without a failure says nothing about the time still to
    come. A model with a non-constant hazard (Weibull, wear-out, infant mortality) must keep
    each run's (or node's) age and draw conditionally on it instead.
    """

    name = "exponential"

    def __init__(self, seed: int, replication: int):
        self.failures = rngmod.ExpStream((seed, replication, "failures"))  # each made at its first draw
        self.kinds = rngmod.UniformStream((seed, replication, "interruption_kinds"))

    def next_interruption(self, r, pool, others: tuple | None = None) -> tuple[float, int]:
        """Hours from now (the segment's start) to the next interruption of run `r` on `pool`, and
        its kind: a SegmentEnd value, or MIXED when the run has sources besides hardware failures
        (then `kind` says which, asked only when the interruption comes before the segment ends:
        the kind of the earliest of competing exponentials is independent of its time). (inf, DONE)
        when nothing can interrupt it. `others`: `sources(r.wl.w, pool.p, r.n)`, when the caller
        keeps it (the engine does, per workload and pool: it is read at every segment)."""
        rate = r.wl.w.fail_rate_per_h * r.rate_mult  # lemon nodes in the run's gang raise it
        if others is None:
            others = self.sources(r.wl.w, pool.p, r.n)
        draw = self.failures.next  # (a slot: read it, then call it; `x.next()` is read slowly)
        if others:
            return draw() / (others[0] + rate), MIXED
        if rate > 0.0:
            return draw() / rate, FAILURE
        return INF, DONE

    def kind(self, r, pool, others: tuple | None = None) -> int:
        """The kind of an interruption `next_interruption` gave as MIXED: each source with
        probability its rate / the sum of the rates (asked at once, the run's lemons unchanged)."""
        rate = r.wl.w.fail_rate_per_h * r.rate_mult
        total, cumulative = self.sources(r.wl.w, pool.p, r.n) if others is None else others
        u = self.kinds.next() * (total + rate) - rate
        if u < 0.0:
            return FAILURE
        for c, kind in cumulative:
            if u < c:
                return kind
        return kind  # (u at the very top of the last: rounding)

    def sources(self, w, p, n: int) -> tuple:
        """The sources other than hardware failures (whose rate depends on the run's lemons) of a
        run of `n` accelerators of workload `w` on pool `p`: () when none has a rate above zero,
        else (sum of their rates per hour, ((cumulative rate, kind), ...)) in a fixed order."""
        rd = w.domain_rate_per_h_on[p.idx] if w.domain_nodes else 0.0
        candidates = ((w.job_fail_rate_per_h, JOB_FAILURE), (w.planned_rate_per_h, PLANNED),
                      (w.spike_rate_per_h, LOSS_SPIKE), (rd, DOMAIN),
                      (p.preempt_rate_per_node_h * -(-n // p.node_size), PREEMPTION))
        cumulative, total = [], 0.0
        for rate, kind in candidates:
            if rate > 0.0:
                total += rate
                cumulative.append((total, kind))
        return (total, tuple(cumulative)) if cumulative else ()


class NoFailures(ExponentialInterruptions):
    """No hardware failures (the plan's failure rate is 0); spot preemption still applies."""

    name = "none"


FAILURE_MODELS = {m.name: m for m in (ExponentialInterruptions, NoFailures)}
