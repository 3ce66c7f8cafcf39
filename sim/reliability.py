"""Failure, preemption and checkpoint maths (pure functions).

Interruptions (hardware failures and spot preemptions) arrive as a Poisson process with rate
lambda = 1/M per hour while a run holds its accelerators: computing, writing a checkpoint or
restarting (Daly's complete model). A run checkpoints after every `tau` hours of progress; writing
one takes `delta` hours (the run is paused; interruptions can still strike). An interruption loses
the progress since the last completed checkpoint; a restart it interrupts starts over.
"""

from __future__ import annotations

import math
from enum import IntEnum

HOURS_PER_MONTH = 730.0
INF = math.inf


def band_rate_per_node_h(monthly_fraction: float) -> float:
    """An interruption frequency per month (share of nodes interrupted) as a rate per node-hour."""
    return -math.log1p(-monthly_fraction) / HOURS_PER_MONTH


def young_interval(delta: float, mtti: float) -> float:
    """Young (1974): tau = sqrt(2 delta M)."""
    return math.sqrt(2.0 * delta * mtti)


def daly_interval(delta: float, mtti: float) -> float:
    """Daly (2006), higher-order optimum checkpoint interval (compute time between checkpoints):
    tau = sqrt(2 delta M) [1 + sqrt(delta/2M)/3 + (delta/2M)/9] - delta for delta < 2M, else M."""
    if math.isinf(mtti):
        return math.inf
    if delta <= 0.0:
        return 0.0
    if delta >= 2.0 * mtti:
        return mtti
    x = delta / (2.0 * mtti)
    return math.sqrt(2.0 * delta * mtti) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - delta


def expected_segment_time(length: float, mtti: float, restart: float = 0.0) -> float:
    """Expected wall time to get through `length` hours (compute plus the checkpoint write that
    ends it), started fresh, when an interruption throws the piece away and each interruption is
    followed by a restart of `restart` hours that interruptions can strike as well (Daly 2006,
    the complete model): M e^{R/M} (e^{L/M} - 1). With R = 0 this is M (e^{L/M} - 1)."""
    if math.isinf(mtti):
        return length
    return mtti * math.exp(restart / mtti) * math.expm1(length / mtti)


def expected_wall_time(work: float, tau: float, delta: float, mtti: float, restart: float = 0.0) -> float:
    """Expected wall time of `work` hours of compute checkpointed every `tau` hours (writes of
    `delta`), as trainsim's engine runs it: full pieces of tau + delta, then a last piece with no
    checkpoint after it; each piece as in `expected_segment_time` (Daly's complete model, with
    tau + delta written out for the last, partial piece)."""
    if math.isinf(tau) or tau >= work:
        return expected_segment_time(work, mtti, restart)
    full = math.ceil(work / tau) - 1
    last = work - full * tau
    return full * expected_segment_time(tau + delta, mtti, restart) + expected_segment_time(last, mtti, restart)


# --------------------------------------------------------------------------------------------
# A segment of a run under a checkpoint pattern: `tau` hours of compute, then a write of `delta`
# hours, repeated. tau = inf: no checkpoints; tau <= 0: continuous checkpoints (nothing done is
# ever lost); delta <= 0: free writes every tau hours.


class SegmentEnd(IntEnum):
    """How a run segment ends."""

    DONE = 0  # the work asked of it is complete
    FAILURE = 1  # hardware failure: a node is lost (repair), restart on the same capacity
    PREEMPTION = 2  # capacity taken away (spot preemption, a pool shrinking): queue again
    JOB_FAILURE = 3  # a job-level failure (software, data loader, hang): restart, no node lost
    PLANNED = 4  # a planned interruption (maintenance, upgrade): checkpoint first, downtime, restart
    LOSS_SPIKE = 5  # a loss spike: roll back to an earlier checkpoint, restart
    NODE_WAIT = 6  # (not an interruption) holding the other nodes while a failed one is repaired
    DOMAIN = 7  # a failure domain (rack, switch) fails: all its nodes the run uses are lost together


# The same as plain ints, for the engine's hot path: a tuple of plain numbers is left alone by the
# garbage collector, one holding an enum member is not.
DONE, FAILURE, PREEMPTION, JOB_FAILURE, PLANNED, LOSS_SPIKE, NODE_WAIT, DOMAIN = (int(e) for e in SegmentEnd)


def wall_time(work: float, tau: float, delta: float) -> float:
    """Wall hours to do `work` compute hours with a checkpoint write after each full `tau`
    (none after the last piece)."""
    if tau == INF or tau <= 0.0 or delta <= 0.0 or work <= tau:
        return work
    return work + (math.ceil(work / tau) - 1) * delta


def progress(x: float, tau: float, delta: float) -> float:
    """Compute hours done after `x` wall hours of the write pattern (writes make no progress)."""
    if tau == INF or tau <= 0.0 or delta <= 0.0:
        return x
    k = math.floor(x / (tau + delta))
    return k * tau + min(x - k * (tau + delta), tau)


def saved(x: float, done: float, tau: float, delta: float, notice: float = 0.0) -> float:
    """Compute hours kept by checkpoints when a segment that had made `done` hours of progress is
    interrupted after `x` wall hours: what the last completed write saved; with a warning of
    `notice` >= delta hours (a preemption notice), a write started at the warning saves the
    progress made until then. Continuous checkpoints (tau <= 0) keep everything."""
    if tau == INF:
        return 0.0
    if tau <= 0.0:
        return done
    kept = math.floor(x / (tau + delta)) * tau
    if notice >= delta > 0.0 and x > notice:
        kept = max(kept, progress(x - notice, tau, delta))
    return min(kept, done)


def expected_interruptions(work: float, tau: float, delta: float, rate: float, restart: float = 0.0) -> float:
    """Expected interruptions before `work` compute hours are done, checkpointed every `tau` (writes
    of `delta`), at `rate` interruptions per hour: each piece of tau + delta hours is retried until
    it runs through, after a restart of `restart` hours that can be interrupted too, which takes
    about e^{rate x (restart + piece)} - 1 interruptions (rate x work with continuous checkpoints,
    tau <= 0). inf when that overflows: the run cannot make progress."""
    if rate <= 0.0 or work <= 0.0:
        return 0.0
    if tau <= 0.0:  # continuous checkpoints: nothing is lost, interruptions arrive over the work
        return rate * work * (math.exp(min(rate * restart, 700.0)) if restart > 0.0 else 1.0)
    if math.isinf(tau) or tau >= work:
        pieces, piece = 1.0, work
    else:
        pieces, piece = math.ceil(work / tau), tau + delta
    try:
        return pieces * math.expm1(rate * (piece + restart))
    except OverflowError:
        return INF


def domains_spanned(nodes: int, domain_nodes: int) -> int:
    """Failure domains of `domain_nodes` nodes that a run on `nodes` nodes spans, packed (placement
    is not modelled): ceil(nodes / domain_nodes), at least one."""
    return max(-(-nodes // domain_nodes), 1)


def restart_h(fixed: float, per_node: float, per_doubling: float, nodes: int) -> float:
    """Restart time of a run on `nodes` nodes: a fixed part, a part per node and a part per
    doubling of nodes (log2), so a 2,000-node restart can take longer than a one-node one."""
    return fixed + per_node * nodes + per_doubling * math.log2(max(nodes, 1))

