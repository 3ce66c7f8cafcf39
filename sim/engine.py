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
from collections import defaultdict, deque
from heapq import heapify, heappop, heappush

import simpy

from sim import rng as rngmod
from sim.billing import bill_by_month
from sim.capacity import PoolEvents
from sim.lemons import LemonNodes
from sim.lifecycle import RunLife
from sim.plan import Plan, PoolPlan, drawn_prices, no_progress, not_finishing, progress_problem
from sim.policies import FAILURE_MODELS, SCHEDULERS
from sim.records import ReplicationRecord, RunRecord, replication_record, run_records
from sim.runstate import PoolState, RunState, WorkloadState, length_factors, straggler_slowdowns

INF = math.inf
QUEUE_KINDS = 1000  # a queue longer than this is kept by kind (see Replication._enqueue)


class SimulationError(Exception):
    """A replication that cannot finish (horizon passed, or capacity that never comes)."""


class Replication(RunLife, PoolEvents, LemonNodes):
    """One replication: its clock (a SimPy Environment), pools changing size, workloads becoming
    ready, the queue, and the results. `simulate()` runs it to the end."""

    def __init__(self, plan: Plan, seed: int, replication: int, trace: bool = False):
        if plan.random_prices:  # each replication its own price path (sim.pricing.RandomWalkPrice)
            plan = drawn_prices(plan, seed, replication)
        self.plan = plan
        # (time, pool index, accelerators taken (+) or given back (-), workload, run) when tracing
        self.trace: list | None = [] if trace else None
        self.outages: list | None = [] if trace else None  # (pool index, start, end) of availability outages
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
        self.lemon_u = rngmod.UniformStream(g(seed, replication, "lemon_picks"))
        self.unrec_stream = rngmod.UniformStream(g(seed, replication, "unrecoverable"))
        self.repair_rng = g(seed, replication, "repairs")
        self.co_stream = rngmod.UniformStream(g(seed, replication, "co_interruption"))
        self.outage_stream = rngmod.ExpStream(g(seed, replication, "outages"))
        self.obtain_stream = rngmod.ExpStream(g(seed, replication, "obtain")) if any(
            p.obtain_mean_h for p in plan.pools) else None
        self.pools = [PoolState(p) for p in plan.pools]
        self.wls = [WorkloadState(w) for w in plan.workloads]
        for wl in self.wls:
            for d in set(wl.w.after):
                self.wls[d].dependents.append(wl)
        self.queue: list = []  # a short queue: (key, run) in the scheduler's order
        self.kinds: dict | None = None  # a long one: (workload, fallback pool) -> (heap queued again, deque new)
        self.queued = 0  # runs in `kinds`
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
        self._capacity_start()
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

    def _endless_outages(self, pool: PoolState):
        raise SimulationError(f"more than {self.plan.max_events:,} events in one replication (simulation.max_events) "
                              f"at {self.env.now / 24:.1f} days with {self.left} runs unfinished: the availability "
                              f"outages of pool {pool.p.name} go on while the runs cannot finish")

    def _stuck(self, t: float):
        raise SimulationError(not_finishing(self.plan, self.env.now, self.left, stalled=t == INF))

    def _make_runs(self, wl: WorkloadState) -> list[RunState]:
        w = wl.w
        factors = length_factors(w.length_kind, w.length_sigma, w.runs, self.len_rng)
        runs = [RunState(wl, i, factors[i], w.early_at if i < w.early_k else 1.0) for i in range(w.runs)]
        if w.done_at_start:  # a run already under way (a re-forecast's): its first attempt goes on from there
            runs[0].done = w.done_at_start
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
        q = self.queue
        if len(q) > QUEUE_KINDS:  # the queue grew long: keep it by kind from now on, until it is empty again
            self.kinds, self.queue = {}, []
            for key, r in q:
                self._enqueue_kind(key, r)
        if dispatch:
            self._dispatch()

    def _enqueue(self, r: RunState, now: float):
        """Queue a run. A short queue is one list in the scheduler's order; past QUEUE_KINDS runs
        the queue is kept by kind instead (same workload, same fallback pool first: same size,
        pools and limits, so a run that cannot start stands for all of its kind behind it), which
        keeps the work of a dispatch proportional to the kinds, not the queue. Both give the same
        order, so the same allocations."""
        r.queued_t = now
        if r.n < self._qmin:
            self._qmin = r.n
        if self.kinds is None:
            bisect.insort(self.queue, (self._queue_key(r), r))
        else:
            self._enqueue_kind(self._queue_key(r), r)

    def _enqueue_kind(self, key: tuple, r: RunState):
        """Each kind keeps its runs in key order: new submissions (keys rising) in a deque, runs
        queued again (preempted, moved) in a heap."""
        kind = (r.wl.w.idx, r.fallback_next)
        k = self.kinds.get(kind)
        if k is None:
            k = self.kinds[kind] = ([], deque())
        again, fresh = k
        if not fresh or fresh[-1][0] < key:
            fresh.append((key, r))
        else:
            heappush(again, (key, r))
        self.queued += 1

    def _dispatch(self):
        """Start queued runs, in the scheduler's order, wherever it finds room. `_qmin` is a lower
        bound on the smallest queued run: when no pool has that much free, nothing is looked at."""
        q = self.queue
        if not q:
            if self.queued:
                self._dispatch_kinds()
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

    def _dispatch_kinds(self):
        """A long queue: the heads of the kinds in key order; a head that cannot start blocks its
        kind for this pass (the runs behind it could not start either)."""
        pools = self.pools
        one = pools[0] if len(pools) == 1 else None
        maxfree = one.free if one else max([p.free for p in pools])
        if maxfree < self._qmin:
            return
        choose, strict = self.scheduler.choose_pool, self.scheduler.strict
        kinds = self.kinds
        # each kind's first key: the smaller of its heap's and its deque's (every kind here has runs)
        heads = [(_first(k)[0], kind) for kind, k in kinds.items()]
        if len(heads) > 1:
            heapify(heads)
        smallest = INF
        while heads:
            kind = heappop(heads)[1]
            k = kinds[kind]
            r = _first(k)[1]
            n = r.n
            if n <= maxfree and r.wl.running < r.wl.w.max_concurrent:
                pool = choose(r, pools)
                if pool is not None:
                    if _take_first(k):
                        del kinds[kind]
                    self.queued -= 1
                    self._allocate(r, pool)
                    maxfree = one.free if one else max([p.free for p in pools])
                    if maxfree <= 0:
                        break
                    if kind in kinds:
                        heappush(heads, (_first(k)[0], kind))
                    continue
            if strict:
                break
            if n < smallest:
                smallest = n
        else:
            self._qmin = smallest  # every kind was seen: the exact smallest
        if not self.queued:
            self.kinds = None  # short queues again as one list

    # -- results --------------------------------------------------------------------------------
    def makespan_h(self) -> float:
        return max((r.end for r in self.finished), default=0.0)

    def record(self, columns: list[tuple] | None = None) -> ReplicationRecord:
        """Its totals; `columns`: its run columns (sim.records.run_columns) when already made."""
        return replication_record(self, columns)

    def run_records(self) -> list[RunRecord]:
        return run_records(self.finished)

    def summary(self) -> dict:
        """The replication's totals as flat columns (see ReplicationRecord.row)."""
        return self.record().row()


def _first(k: tuple) -> tuple:
    """The first (key, run) of a kind: the smaller of its heap's and its deque's first."""
    again, fresh = k
    return again[0] if again and (not fresh or again[0][0] < fresh[0][0]) else fresh[0]


def _take_first(k: tuple) -> bool:
    """Take the first run of a kind off it; True when the kind is then empty."""
    again, fresh = k
    if again and (not fresh or again[0][0] < fresh[0][0]):
        heappop(again)
    else:
        fresh.popleft()
    return not again and not fresh


def simulate(plan: Plan, seed: int, replication: int, trace: bool = False) -> Replication:
    return Replication(plan, seed, replication, trace).simulate()
