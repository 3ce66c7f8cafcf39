"""One replication of a whole project: a SimPy discrete-event simulation.

The engine decides only when and where things happen: this module holds the clock, the pools
changing size, workloads becoming ready, the queue and the results; a run's life on its capacity
(segments, interruptions, accounting) is sim.lifecycle. What a segment of work takes under
checkpoints (sim.reliability), when it is interrupted and which run starts where (sim.policies),
and what capacity costs (sim.billing) are asked of other modules. Events per replication grow with
runs + interruptions (+ capacity changes and repairs): a run segment is one timeout, whatever its
length; checkpoints and price changes are integrated, never ticked.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict

import simpy

from sim import rng as rngmod
from sim.billing import bill_by_month
from sim.lifecycle import RunLife
from sim.plan import Plan, PoolPlan, no_progress, not_finishing, progress_problem
from sim.policies import FAILURE_MODELS, SCHEDULERS
from sim.records import ReplicationRecord, RunRecord, replication_record, run_records
from sim.runstate import PoolState, RunState, WorkloadState, length_factors, straggler_slowdowns

INF = math.inf


class SimulationError(Exception):
    """A replication that cannot finish (horizon passed, or capacity that never comes)."""


class Replication(RunLife):
    """One replication: its clock (a SimPy Environment), pools changing size, workloads becoming
    ready, the queue, and the results. `simulate()` runs it to the end."""

    def __init__(self, plan: Plan, seed: int, replication: int, trace: bool = False):
        self.plan = plan
        # (time, pool index, accelerators taken (+) or given back (-), workload, run) when tracing
        self.trace: list | None = [] if trace else None
        self.env = simpy.Environment()
        g = rngmod.generator
        self.interruptions = FAILURE_MODELS[plan.failure_model](seed, replication)
        self._next_interruption = self.interruptions.next_interruption
        self.scheduler = SCHEDULERS[plan.scheduler]
        self._queue_key = self.scheduler.key
        self.div_stream = rngmod.UniformStream(g(seed, replication, "divergence"))
        self.arr_stream = rngmod.ExpStream(g(seed, replication, "arrivals"))
        self.len_rng = g(seed, replication, "lengths")
        self.strag_rng = g(seed, replication, "stragglers")
        self.lemon_rng = g(seed, replication, "lemons")
        self.unrec_stream = rngmod.UniformStream(g(seed, replication, "unrecoverable"))
        self.repair_rng = g(seed, replication, "repairs")
        self.co_stream = rngmod.UniformStream(g(seed, replication, "co_interruption"))
        self.pools = [PoolState(p) for p in plan.pools]
        self.wls = [WorkloadState(w) for w in plan.workloads]
        for wl in self.wls:
            for d in set(wl.w.after):
                self.wls[d].dependents.append(wl)
        self.queue: list = []
        self._qmin = INF  # a lower bound on the accelerators of the smallest queued run
        self.spend: dict[int, float] = defaultdict(float)  # month index -> USD of usage
        self.seq = 0
        self.left = sum(w.runs for w in plan.workloads)
        self.finished: list[RunState] = []
        self.events = 0
        self.max_events = plan.max_events

    # -- the event loop -----------------------------------------------------------------------
    def simulate(self) -> Replication:
        env = self.env
        if self.left == 0:
            return self
        problem = progress_problem(self.plan)
        if problem:
            raise SimulationError(problem[2])
        steps: dict[float, list] = {}
        for pool in self.pools:
            for t, cap in pool.p.steps:
                steps.setdefault(t, []).append((pool, cap))
        for t, changes in sorted(steps.items()):
            env.timeout(t, value=changes).callbacks.append(self._capacity_due)
        for wl in self.wls:
            if wl.deps_left == 0:
                self._ready(wl, dispatch=False)
        self._dispatch()
        horizon = self.plan.horizon_h
        step, peek = env.step, env.peek
        while self.left > 0:
            t = peek()
            if t > horizon:
                self._stuck(t)
            step()
        return self

    def _no_progress(self, r: RunState):
        raise SimulationError(f"more than {self.plan.max_events:,} run segments in one replication "
                              f"(simulation.max_events) at {self.env.now / 24:.1f} days with {self.left} runs "
                              f"unfinished: {no_progress(r.wl.w, r.pool.p)}")

    def _stuck(self, t: float):
        raise SimulationError(not_finishing(self.plan, self.env.now, self.left, stalled=t == INF))

    # -- capacity -----------------------------------------------------------------------------
    def _capacity_due(self, ev):
        """Pools change size: the new capacity counts at once (nothing new starts on capacity
        that is going), but evictions wait until every other event due at this instant has run,
        so that a run ending exactly as its capacity goes finishes first."""
        for pool, cap in ev.value:
            pool.free += cap - pool.capacity
            pool.capacity = cap
        self.env.timeout(0.0, value=ev.value).callbacks.append(self._capacity_enforce)

    def _capacity_enforce(self, ev):
        """Evict from every pool that changed at this instant, then serve the queue once (a run
        evicted from one pool must not land on another that is going at the same moment)."""
        for pool, _cap in ev.value:
            in_use = sum(r.n for r in pool.running)
            while in_use > pool.capacity:  # evict the most recently started runs first
                r = next(reversed(pool.running))
                in_use -= r.n
                self._evict(r)
        self._dispatch()

    def _node_failed(self, pool: PoolState) -> bool:
        """A node of `pool` failed: swap in a free spare (True), else the node leaves the pool
        (False). Either way it goes for repair, if repairs are modelled, and comes back."""
        p = pool.p
        if p.repair_h <= 0.0:
            return True  # replaced at once: no repair modelled
        spare = pool.spares_free > 0
        if spare:
            pool.spares_free -= 1
        else:
            pool.free -= p.node_size
        pool.repair_queue.append(spare)
        self._start_repairs(pool)
        return spare

    def _co_interrupt(self, pool: PoolState):
        """After a preemption on `pool`: with its co-interruption chance, every other run on it is
        preempted too (the provider reclaims the pool's capacity in use at once)."""
        co = pool.p.co_interruption
        if co > 0.0 and pool.running and self.co_stream.next() < co:
            for other in list(pool.running):
                self._evict(other)

    def _room_elsewhere(self, r: RunState) -> bool:
        """Whether another pool the run may use has room for it now."""
        return any(j != r.pool.p.idx and self.pools[j].free >= r.n for j in r.wl.w.pools)

    def _start_repairs(self, pool: PoolState):
        p = pool.p
        while pool.repair_queue and (p.repair_crews == 0 or pool.repairing < p.repair_crews):
            to_spares = pool.repair_queue.popleft()
            pool.repairing += 1
            d = p.repair_h * (math.exp(p.repair_sigma * self.repair_rng.standard_normal()) if p.repair_sigma else 1.0)
            self.env.timeout(d, value=(pool, to_spares)).callbacks.append(self._repaired)

    def _repaired(self, ev):
        pool, to_spares = ev.value
        pool.repairing -= 1
        if to_spares:
            pool.spares_free += 1
        else:
            pool.free += pool.p.node_size
            if pool.waiting:
                self._node_back(pool)
        self._start_repairs(pool)
        self._dispatch()

    def _make_runs(self, wl: WorkloadState) -> list[RunState]:
        w = wl.w
        factors = length_factors(w.length_kind, w.length_sigma, w.runs, self.len_rng)
        runs = [RunState(wl, i, factors[i], w.early_at if i < w.early_k else 1.0) for i in range(w.runs)]
        if w.straggle_p > 0.0:
            for r, s in zip(runs, straggler_slowdowns(w, self.strag_rng), strict=True):
                r.slow = s
                r.factor *= s  # its compute takes that much longer
        return runs

    def _bill(self, p: PoolPlan, n: int, a: float, b: float) -> float:
        """Usage of n accelerators over [a, b]: billed by month when the tier bills usage."""
        if p.tier.bills_usage:
            return bill_by_month(p.curve, n, a, b, self.plan.months, self.spend)
        return n * p.curve.integral(a, b)

    def _ready(self, wl: WorkloadState, dispatch: bool = True):
        runs = self._make_runs(wl)
        env = self.env
        t0 = max(env.now, wl.w.earliest_h)
        if wl.w.arrival_interval_h > 0:
            t = t0
            for r in runs:
                t += self.arr_stream.next() * wl.w.arrival_interval_h
                env.timeout(t - env.now, value=[r]).callbacks.append(self._submit)
        elif t0 > env.now:
            env.timeout(t0 - env.now, value=runs).callbacks.append(self._submit)
        else:
            self._submit_runs(runs, dispatch)

    def _submit(self, ev):
        self._submit_runs(ev.value)

    def _submit_runs(self, runs, dispatch: bool = True):
        now = self.env.now
        for r in runs:
            self.seq += 1
            r.seq = self.seq
            r.submit_t = now
            self._enqueue(r, now)
        if dispatch:
            self._dispatch()

    def _enqueue(self, r: RunState, now: float):
        r.queued_t = now
        bisect.insort(self.queue, (self._queue_key(r), r))
        if r.n < self._qmin:
            self._qmin = r.n

    def _dispatch(self):
        """Start queued runs, in the scheduler's order, wherever it finds room. `_qmin` is a lower
        bound on the smallest queued run: when no pool has that much free, nothing is scanned."""
        q = self.queue
        if not q:
            return
        pools = self.pools
        one = pools[0] if len(pools) == 1 else None
        choose, strict = self.scheduler.choose_pool, self.scheduler.strict
        maxfree = one.free if one else max([p.free for p in pools])
        if maxfree < self._qmin:
            return
        i, smallest = 0, INF
        while i < len(q):
            r = q[i][1]
            n = r.n
            if n <= maxfree and r.wl.running < r.wl.w.max_concurrent:
                pool = choose(r, pools)
                if pool is not None:
                    del q[i]
                    self._allocate(r, pool)
                    maxfree = one.free if one else max([p.free for p in pools])
                    if maxfree <= 0:
                        return
                    continue
            if strict:
                return
            if n < smallest:
                smallest = n
            i += 1
        self._qmin = smallest  # the whole queue was seen: the exact smallest

    # -- results --------------------------------------------------------------------------------
    def makespan_h(self) -> float:
        return max((r.end for r in self.finished), default=0.0)

    def record(self, rows: list[tuple] | None = None) -> ReplicationRecord:
        """Its totals; `rows`: its run rows (sim.records.run_rows) when already made."""
        return replication_record(self, rows)

    def run_records(self) -> list[RunRecord]:
        return run_records(self.finished)

    def summary(self) -> dict:
        """The replication's totals as flat columns (see ReplicationRecord.row)."""
        return self.record().row()


def simulate(plan: Plan, seed: int, replication: int, trace: bool = False) -> Replication:
    return Replication(plan, seed, replication, trace).simulate()
