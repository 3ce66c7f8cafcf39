"""Capacity as events: pools changing size (and the evictions that follow), availability
outages, requests for on-demand capacity that take a while to be filled, node failures taking nodes
out for repair, spares, repairs with a limited number of crews, and spot co-interruption. A mixin of
`sim.engine.Replication` (beside `sim.lifecycle.RunLife`, which it calls back for `_account`,
`_segment`, `_preempted`, `_allocate` and `_dispatch`); evictions (capacity taken from under a
running run) are here.

Capacity bookkeeping of a pool: free = capacity - accelerators held by runs - nodes out for repair
(x node size) - requests under way - capacity hidden by an outage. `free` may go below zero: a run
that lost a node with no replacement, or an outage, keeps new runs off until it is back above their
size.
"""

from __future__ import annotations

import math

import simpy

from sim.plan import Plan
from sim.reliability import NODE_WAIT, PREEMPTION
from sim.runstate import PoolState, RunState


class PoolEvents:
    """The capacity half of a replication. Needs `env`, `plan`, `pools`, `outage_stream`,
    `obtain_stream`, `repair_z`, `co_stream`, `events`, `max_events`, `_endless_outages` and the
    RunLife methods named above."""

    env: simpy.Environment
    plan: Plan

    def _capacity_start(self):
        """At t = 0: the pools' dated size changes, their first outages and their lemon nodes."""
        steps: dict[float, list] = {}
        for pool in self.pools:
            for t, cap in pool.p.steps:
                steps.setdefault(t, []).append((pool, cap))
        for t, changes in sorted(steps.items()):
            self.env.call(t, self._capacity_due, changes)
        for pool in self.pools:
            if pool.p.available < 1.0:
                self._outage_after_uptime(pool)
            if pool.p.lemon_fraction > 0.0:
                self._lemons_start(pool)

    def _capacity_due(self, changes):
        """Pools change size: the new capacity counts at once (nothing new starts on capacity
        that is going), but evictions wait until every other event due at this instant has run,
        so that a run ending exactly as its capacity goes finishes first."""
        for pool, cap in changes:
            if pool.p.lemon_fraction > 0.0:
                self._lemons_resized(pool, cap)
            if pool.out:  # in an outage: the change shows when it ends
                pool.hidden += cap - pool.capacity
            else:
                pool.free += cap - pool.capacity
            pool.capacity = cap
        self.env.call(0.0, self._capacity_enforce, changes)

    def _capacity_enforce(self, changes):
        """Evict from every pool that changed at this instant, then serve the queue once (a run
        evicted from one pool must not land on another that is going at the same moment)."""
        for pool, _cap in changes:
            in_use = sum(r.n for r in pool.running)
            while in_use > pool.capacity:  # evict the most recently started runs first
                r = next(reversed(pool.running))
                in_use -= r.n
                self._evict(r)
        self._dispatch()

    def _outage_after_uptime(self, pool: PoolState):
        """The pool's next availability outage, after an exponential time up whose mean makes the
        share of time up `available` (mean up = mean outage x a / (1 - a))."""
        p = pool.p
        up = self.outage_stream.next() * p.outage_h * p.available / (1.0 - p.available)
        self.env.call(up, self._outage, pool)

    def _outage(self, pool):
        """No capacity can be obtained on the pool for a while: what is not in use is kept out of
        `free`, and what runs give back during the outage stays out, until it ends."""
        self.events += 1  # outages go on while runs wait: the event guard covers them too
        if self.events > self.max_events:
            self._endless_outages(pool)
        pool.out = True
        pool.out_since = self.env.now
        pool.hidden = pool.capacity
        pool.free -= pool.hidden
        self.env.call(self.outage_stream.next() * pool.p.outage_h, self._outage_end, pool)

    def _outage_end(self, pool):
        if self.outages is not None:
            self.outages.append((pool.p.idx, pool.out_since, self.env.now))
        pool.free += pool.hidden
        pool.out = False
        pool.hidden = 0
        if pool.waiting:
            self._node_back(pool)
        self._outage_after_uptime(pool)
        self._dispatch()

    def _request(self, r: RunState, pool: PoolState):
        """A run asks an on-demand or spot pool with an obtain model for its accelerators: they are
        set aside at once (no other run takes them; the run counts as running for max_concurrent)
        and come after a wait, exponential with a mean that grows with the request's size. Nothing
        is billed before they come; the wait counts as queue wait."""
        p = pool.p
        pool.free -= r.n
        r.wl.running += 1
        wait = self.obtain_stream.next() * p.obtain_mean_h * (r.n / p.obtain_ref) ** p.obtain_growth
        self.env.call(wait, self._obtained, (r, pool))

    def _obtained(self, value):
        r, pool = value
        pool.free += r.n
        r.wl.running -= 1
        self._allocate(r, pool, obtained=True)

    def _nodes_failed(self, pool: PoolState, k: int, r: RunState | None = None, hardware: bool = True) -> bool:
        """`k` nodes of `pool` (under run `r`) failed: free spares are swapped in for them, and the
        rest leave the pool. True when spares replaced them all. They go for repair together (one
        repair, if repairs are modelled) and come back where they came from; lemon nodes among them
        are followed (sim.lemons)."""
        p = pool.p
        lemons = r is not None and p.lemon_fraction > 0.0
        if p.repair_h <= 0.0:  # no repair modelled: the same nodes are back at once
            if lemons:
                self._lemons_back_at_once(r, k, hardware)
            return True
        spares = min(pool.spares_free, k)
        pool.spares_free -= spares
        pool.free -= (k - spares) * p.node_size
        back = self._lemons_lost(r, k, spares, hardware) if lemons else (0, 0)
        pool.repair_queue.append((spares, k - spares, *back))
        self._start_repairs(pool)
        return spares == k

    def _co_interrupt(self, pool: PoolState):
        """After a preemption on `pool`: with its co-interruption chance, every other run on it is
        preempted too (the provider reclaims the pool's capacity in use at once)."""
        co = pool.p.co_interruption
        if co > 0.0 and pool.running and self.co_stream.next() < co:
            for other in list(pool.running):
                self._evict(other)

    def _evict(self, r: RunState):
        """Capacity taken away under a running run (a reservation ending, a pool shrinking): the
        run stops now, keeps what its checkpoints saved, and queues again."""
        seg = r.seg
        if seg.end == NODE_WAIT:
            r.pool.waiting.remove(r)
            self._account(r, seg, self.env.now - seg.t0, 0.0)
        else:
            held = self.env.now - seg.t0
            if held < seg.dead_h and seg.work_h:  # cut short in the detection that opened it: no segment ran
                self.events -= 1  # (as when the detection was an event of its own, sim.lifecycle)
            self._account(r, seg._replace(end=PREEMPTION), held, 0.0)
        r.token += 1
        self._preempted(r)

    def _room_elsewhere(self, r: RunState) -> bool:
        """Whether another pool the run may use has room for it now."""
        return any(j != r.pool.p.idx and self.pools[j].free >= r.n for j in r.wl.w.pools)

    def _start_repairs(self, pool: PoolState):
        p = pool.p
        while pool.repair_queue and (p.repair_crews == 0 or pool.repairing < p.repair_crews):
            back = pool.repair_queue.popleft()
            pool.repairing += 1
            d = p.repair_h * (math.exp(p.repair_sigma * self.repair_z.next()) if p.repair_sigma else 1.0)
            self.env.call(d, self._repaired, (pool, back))

    def _repaired(self, value):
        pool, (spares, nodes, lemons_to_spares, lemons_to_pool) = value
        pool.repairing -= 1
        pool.spares_free += spares
        if lemons_to_spares or lemons_to_pool:
            self._lemons_cured(pool, lemons_to_spares, lemons_to_pool)
        if nodes:
            pool.free += nodes * pool.p.node_size
            if pool.waiting:
                self._node_back(pool)
        self._start_repairs(pool)
        if nodes:  # (spares back alone free nothing: no run can start that could not before)
            self._dispatch()

    def _node_back(self, pool: PoolState):
        """A node came back to the pool (repaired, or freed): the first run waiting for one goes on."""
        while pool.waiting and pool.free >= 0:
            r = pool.waiting.pop(0)
            if pool.p.lemon_fraction > 0.0:  # the node it gets back: one of the free ones
                ns = pool.p.node_size
                got = self._draw(pool.lemons_free, pool.free // ns + 1, 1)
                pool.lemons_free -= got
                r.lemons += got
                self._rate_of(r, -(-r.n // ns))
            self._account(r, r.seg, self.env.now - r.seg.t0, 0.0)
            self._segment(r)
