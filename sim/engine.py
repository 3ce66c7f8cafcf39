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
import weakref
from collections import defaultdict, deque
from functools import cached_property
from heapq import heapify, heappop, heappush

import simpy
from simpy.events import NORMAL

from sim import rng as rngmod
from sim.billing import bill_by_month
from sim.capacity import PoolEvents
from sim.lemons import LemonNodes
from sim.lifecycle import RunLife
from sim.plan import Plan, drawn_prices, no_progress, not_finishing, progress_problem
from sim.policies import FAILURE_MODELS, SCHEDULERS
from sim.records import ReplicationRecord, RunRecord, replication_record, run_records
from sim.runstate import PoolState, RunState, WorkloadState, length_factors, straggler_slowdowns

INF = math.inf
QUEUE_KINDS = 1000  # a queue longer than this is kept by kind (see Replication._enqueue)


def _generator(stream: str) -> cached_property:
    """A replication's generator of `stream`, made at its first use (making one costs several
    microseconds, and most replications draw from few of their streams)."""
    return cached_property(lambda self: rngmod.generator(self.seed, self.replication, stream))


class SimulationError(Exception):
    """A replication that cannot finish (horizon passed, or capacity that never comes)."""


class Clock(simpy.Environment):
    """SimPy's environment with a lean path for the engine's own events: `call(delay, fn, value)`
    schedules `fn(value)` in SimPy's queue, with SimPy's ordering (time, priority, then the order
    they were scheduled in), as a plain tuple instead of a Timeout with a callback list. Ordinary
    SimPy events (a `timeout` with callbacks, a process) mix with them as usual. `now` is a slot
    here, kept equal to SimPy's `_now` wherever the clock moves (the engine reads it at every
    event; a slot is read fast, SimPy's property is not)."""

    __slots__ = ("now",)

    def __init__(self):
        super().__init__()
        self.now = self._now

    def call(self, delay: float, fn, value) -> None:
        heappush(self._queue, (self._now + delay, NORMAL, next(self._eid), fn, value))

    def step(self) -> None:
        q = self._queue
        if q and len(q[0]) == 5:  # one of `call`'s: (time, priority, id, fn, value)
            self.now = self._now = q[0][0]
            _, _, _, fn, value = heappop(q)
            fn(value)
            return
        if q:
            self.now = q[0][0]  # the time SimPy's step moves to, before the callbacks run
        super().step()


class RunQueue:
    """The queue half of a replication: runs queued in the scheduler's order and started where
    it finds room. Needs `queue`, `kinds`, `queued`, `_qmin`, `_queue_key`, `_choose`, `_strict`,
    `_one`, `pools` and `_allocate`."""

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
            q, key = self.queue, self._queue_key(r)
            if not q or q[-1][0] < key:  # keys are unique: where insort would put it
                q.append((key, r))
            else:
                bisect.insort(q, (key, r))
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
        one = self._one
        maxfree = one.free if one else max([p.free for p in self.pools])
        if maxfree < self._qmin:
            return
        pools = self.pools
        choose, strict = self._choose, self._strict
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
        choose, strict = self._choose, self._strict
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


class Replication(RunQueue, RunLife, PoolEvents, LemonNodes):
    """One replication: its clock (a SimPy Environment), pools changing size, workloads becoming
    ready, the queue, and the results. `simulate()` runs it to the end."""

    def __init__(self, plan: Plan, seed: int, replication: int, trace: bool = False):
        if plan.random_prices:  # each replication its own price path (sim.pricing.RandomWalkPrice)
            plan = drawn_prices(plan, seed, replication)
        self.plan = plan
        # (time, pool index, accelerators taken (+) or given back (-), workload, run) when tracing
        self.trace: list | None = [] if trace else None
        self.outages: list | None = [] if trace else None  # (pool index, start, end) of availability outages
        self.env = Clock()
        self.seed, self.replication = seed, replication
        self.interruptions = FAILURE_MODELS[plan.failure_model](seed, replication)
        self._next_interruption = self.interruptions.next_interruption
        self._interruption_kind = self.interruptions.kind
        self.scheduler = SCHEDULERS[plan.scheduler]
        self._queue_key = self.scheduler.key
        self._choose, self._strict = self.scheduler.choose_pool, self.scheduler.strict
        # block streams, each made at its first draw; the plain generators likewise (below)
        exp, uni = rngmod.ExpStream, rngmod.UniformStream
        self.div_stream = uni((seed, replication, "divergence"))
        self.arr_stream = exp((seed, replication, "arrivals"))
        self.lemon_u = uni((seed, replication, "lemon_picks"))
        self.unrec_stream = uni((seed, replication, "unrecoverable"))
        self.co_stream = uni((seed, replication, "co_interruption"))
        self.outage_stream = exp((seed, replication, "outages"))
        self.obtain_stream = exp((seed, replication, "obtain"))
        self.repair_z = rngmod.NormalStream((seed, replication, "repairs"))
        self.pools = [PoolState(p) for p in plan.pools]
        self._one = self.pools[0] if len(self.pools) == 1 else None  # the only pool, if only one
        self.wls = [WorkloadState(w) for w in plan.workloads]
        sources = self.interruptions.sources  # per workload and pool, kept for every segment (sim.lifecycle)
        for wl in self.wls:
            for d in set(wl.w.after):
                self.wls[d].dependents.append(wl)
            wl.sources = [sources(wl.w, p, wl.w.n) if p.idx in wl.w.length_h_on else () for p in plan.pools]
        self.queue: list = []  # a short queue: (key, run) in the scheduler's order
        self.kinds: dict | None = None  # a long one: (workload, fallback pool) -> (heap queued again, deque new)
        self.queued = 0  # runs in `kinds`
        self._qmin = INF  # a lower bound on the accelerators of the smallest queued run
        self.spend: dict[int, float] = defaultdict(float)  # month index -> USD of usage
        self._month = (INF, INF, 0)  # (start, end, index) of the month of the last span billed
        self.seq = 0
        self.left = sum(w.runs for w in plan.workloads)
        self.finished: list[RunState] = []
        self.events = 0
        self.max_events = plan.max_events

    # the plain random generators, each made when first asked for
    len_rng = _generator("lengths")
    strag_rng = _generator("stragglers")
    lemon_rng = _generator("lemons")

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
        q = env._queue
        while self.left > 0:  # Clock.step, inlined
            if not q:
                self._stuck(INF)
            e = q[0]
            t = e[0]
            if t > horizon:
                self._stuck(t)
            if len(e) == 5:
                env.now = env._now = t
                heappop(q)
                e[3](e[4])
            else:
                env.step()
        if q:
            self._hold_weakly(q)
        return self

    def _hold_weakly(self, q: list):
        """Events still due when the last run ends (outages, repairs) hold the replication through
        their bound methods: a cycle that only Python's cyclic collector frees, walking every run
        (a fifth of the time of a replication with outages). They hold it weakly instead: dropped,
        the replication is freed at once; kept, `env.run()` still runs them."""
        q[:] = [(*e[:3], _weakly(e[3]), e[4]) if len(e) == 5 and getattr(e[3], "__self__", None) is self else e
                for e in q]

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
                if s != 1.0:  # (most runs: as they are)
                    r.slow = s
                    r.factor *= s  # its compute takes that much longer
        return runs

    def _bill(self, pool: PoolState, n: int, a: float, b: float) -> float:
        """Usage of n accelerators of `pool` over [a, b]: billed by month when its tier bills
        usage. Most spans lie within the month of the last one billed: that month is kept at hand."""
        p = pool.p
        if pool.bills_usage:
            lo, hi, i = self._month
            if lo <= a < hi and b <= hi:  # what bill_by_month does in that case
                c = n * p.curve.integral(a, b)
                self.spend[i] += c
                return c
            months = self.plan.months
            i = bisect.bisect_right(months, a) - 1
            if i >= 0:
                self._month = (months[i], months[i + 1] if i + 1 < len(months) else INF, i)
            return bill_by_month(p.curve, n, a, b, months, self.spend)
        return n * p.curve.integral(a, b)

    def _ready(self, wl: WorkloadState, dispatch: bool = True):
        runs = self._make_runs(wl)
        env = self.env
        t0 = max(env.now, wl.w.earliest_h)
        if wl.w.arrival_interval_h > 0:
            t = t0
            for r in runs:
                t += self.arr_stream.next() * wl.w.arrival_interval_h
                env.call(t - env.now, self._submit_runs, [r])
        elif t0 > env.now:
            env.call(t0 - env.now, self._submit_runs, runs)
        else:
            self._submit_runs(runs, dispatch)

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


def _weakly(method):
    """`method` (bound) called through a weak reference to its object."""
    ref = weakref.WeakMethod(method)
    return lambda value: ref()(value)


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
