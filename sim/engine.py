"""One replication of a whole project: a SimPy discrete-event simulation.

The engine decides only when and where things happen; what a segment of work takes under
checkpoints (sim.reliability), when it is interrupted and which run starts where (sim.policies),
and what capacity costs (sim.billing) are asked of other modules. Events per replication grow with
runs + failures + preemptions (+ capacity changes and repairs): a run segment is one timeout,
whatever its length; checkpoints and price changes are integrated, never ticked.

Accounting, in accelerator-hours (GPU-h) of allocated capacity:
  allocated = productive (progress kept) + lost (progress thrown away by an interruption or an
  abandoned run) + overhead (restarts, checkpoint writes, preemption notice).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict

import simpy

from sim import rng as rngmod
from sim.billing import bill_by_month
from sim.plan import Plan, no_progress, not_finishing, progress_problem
from sim.policies import FAILURE_MODELS, SCHEDULERS
from sim.records import ReplicationRecord, RunRecord, replication_record, run_records
from sim.reliability import SegmentEnd, progress, saved, wall_time
from sim.runstate import PoolState, RunState, Segment, WorkloadState, length_factors

INF = math.inf
DONE, FAILURE, PREEMPTION = SegmentEnd.DONE, SegmentEnd.FAILURE, SegmentEnd.PREEMPTION
_new = tuple.__new__  # makes a NamedTuple from a tuple without a Python-level __new__ (hot path)


class SimulationError(Exception):
    """A replication that cannot finish (horizon passed, or capacity that never comes)."""


class _RunLife:
    """A run's life on its capacity: start, segments of work until done, failed or preempted,
    and release. Replication (below) adds the clock, the capacity and the queue."""

    env: simpy.Environment
    plan: Plan

    def _allocate(self, r: RunState, pool: PoolState):
        now = self.env.now
        pool.free -= r.n
        pool.running[r] = None
        r.pool = pool
        r.alloc_t = now
        if self.trace is not None:
            self.trace.append((now, pool.p.idx, r.n, r.wl.w.name, r.idx))
        r.fallback_next = -1
        r.wl.running += 1
        if r.first_start < 0:
            r.first_start = now
        r.wait_h += now - r.queued_t
        if r.attempts == 0:  # first start: decide whether this attempt will go wrong
            w = r.wl.w
            r.attempts = 1
            r.diverging = w.div_p > 0.0 and w.div_at < r.target and self.div_stream.next() < w.div_p
        self._segment(r)

    def _segment(self, r: RunState):
        w = r.wl.w
        pool = r.pool
        pi = pool.p.idx
        length = w.length_h_on[pi] * r.factor
        work = ((w.div_at if r.diverging else r.target) - r.done) * length
        tau = w.ckpt_interval_h_on[pi]
        restart = w.restart_h_on[pi] if r.restart_due else 0.0
        r.restart_due = False
        live = restart + wall_time(work, tau, w.write_h)
        t, kind = self._next_interruption(r, pool)  # it may strike during the restart too (Daly 2006)
        if t < live:
            live = t
        else:
            kind = DONE
        r.token += 1
        r.seg = _new(Segment, (0.0, restart, live, kind, work, length, tau, w.write_h, self.env.now))
        self.env.timeout(live, value=(r, r.token)).callbacks.append(self._segment_end)
        self.events += 1
        if self.events > self.plan.max_events:
            self._no_progress(r)

    def _segment_end(self, ev):
        r, token = ev.value
        if token != r.token:  # the run was evicted before this segment ended
            return
        seg = r.seg
        end = seg.end
        self._account(r, seg, seg.live_h, r.pool.p.notice_h if end == PREEMPTION else 0.0)
        if end == DONE:
            self._completed(r)
        elif end == PREEMPTION:
            self._preempted(r)
            self._dispatch()
        else:
            self._failed(r, end)

    def _account(self, r: RunState, seg: Segment, held: float, notice: float):
        """Book `held` hours of the segment (detection, restart, then work): the progress made,
        and what of it is kept (all of it when the segment is done; what the checkpoints saved
        when interrupted; nothing when it is interrupted during its restart)."""
        if seg.end == DONE:
            prog = keep = seg.work_h
        else:
            e = max(held - seg.dead_h - seg.restart_h, 0.0)
            prog = min(progress(e, seg.tau_h, seg.write_h), seg.work_h)
            keep = saved(e, prog, seg.tau_h, seg.write_h, notice)
        n = r.n
        r.productive += n * keep
        r.attempt_productive += n * keep
        r.lost += n * (prog - keep)
        r.overhead += n * (held - prog)
        r.alloc_gpu_h += n * held
        r.done += keep / seg.length_h

    def _completed(self, r: RunState):
        w = r.wl.w
        if r.diverging:  # the attempt went wrong: everything it kept is thrown away
            r.productive -= r.attempt_productive
            r.lost += r.attempt_productive
            r.attempt_productive = 0.0
            r.done = 0.0
            if w.div_rerun:
                r.reruns += 1
                r.attempts += 1
                r.diverging = w.div_at < r.target and self.div_stream.next() < w.div_p
                r.restart_due = True
                self._segment(r)
                return
            r.abandoned = True
        self._finish(r)

    def _failed(self, r: RunState, kind: SegmentEnd):
        """A failure: detect it (the run holds its accelerators, makes no progress), then go on."""
        w = r.wl.w
        if kind == FAILURE:
            r.failures += 1
        else:
            r.job_failures += 1
        r.attempts += 1
        r.restart_due = True
        if w.detect_h > 0.0:
            r.token += 1  # a detection is a segment of its own (an eviction may end it)
            r.seg = _new(Segment, (w.detect_h, 0.0, 0.0, kind, 0.0, 1.0, INF, 0.0, self.env.now))
            self.env.timeout(w.detect_h, value=(r, r.token)).callbacks.append(self._detected)
            return
        self._recover(r, kind)

    def _detected(self, ev):
        r, token = ev.value
        if token == r.token:
            self._account(r, r.seg, r.seg.dead_h, 0.0)
            self._recover(r, r.seg.end)

    def _recover(self, r: RunState, kind: SegmentEnd):
        """After a failure is noticed: a hardware failure takes its node out for repair (the run
        waits for capacity when no spare is free); then the run restarts."""
        w = r.wl.w
        if kind == FAILURE and w.repair_h > 0.0:
            pool = r.pool
            pool.free -= pool.p.node_size  # the failed node leaves the pool for its repair
            self.env.timeout(w.repair_h, value=pool).callbacks.append(self._repaired)
            if pool.free < 0:  # no spare node to replace it: the run waits for capacity
                self._release(r)
                self._enqueue(r, self.env.now)
                self._dispatch()
                return
        self._segment(r)

    def _preempted(self, r: RunState):
        """Give the run's accelerators back and queue it again (its fallback pool first)."""
        r.preemptions += 1
        r.attempts += 1
        pool = r.pool
        self._release(r)
        r.restart_due = True
        r.fallback_next = pool.p.fallback
        self._enqueue(r, self.env.now)

    def _evict(self, r: RunState):
        """Capacity taken away under a running run (a reservation ending, a pool shrinking): the
        run stops now, keeps what its checkpoints saved, and queues again."""
        seg = r.seg._replace(end=PREEMPTION)
        r.token += 1
        self._account(r, seg, self.env.now - seg.t0, 0.0)
        self._preempted(r)

    def _release(self, r: RunState):
        now = self.env.now
        pool = r.pool
        pool.free += r.n
        del pool.running[r]
        if self.trace is not None:
            self.trace.append((now, pool.p.idx, -r.n, r.wl.w.name, r.idx))
        pool.busy_gpu_h += r.n * (now - r.alloc_t)
        p = pool.p
        if p.tier.bills_usage:
            c = bill_by_month(p.curve, r.n, r.alloc_t, now, self.plan.months, self.spend)
        else:
            c = r.n * p.curve.integral(r.alloc_t, now)
        pool.usage_cost += c
        r.cost += c
        r.wl.running -= 1

    def _finish(self, r: RunState):
        now = self.env.now
        self._release(r)
        r.end = now
        wl = r.wl
        wl.remaining -= 1
        wl.cost += r.cost
        wl.gpu_h += r.alloc_gpu_h
        self.finished.append(r)
        self.left -= 1
        if wl.remaining == 0:
            wl.end = now
            for d in wl.dependents:
                d.deps_left -= 1
                if d.deps_left == 0:
                    self._ready(d, dispatch=False)
        if self.left == 0:
            return
        self._dispatch()



class Replication(_RunLife):
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
        self.pools = [PoolState(p) for p in plan.pools]
        self.wls = [WorkloadState(w) for w in plan.workloads]
        for wl in self.wls:
            for d in set(wl.w.after):
                self.wls[d].dependents.append(wl)
        self.queue: list = []
        self.spend: dict[int, float] = defaultdict(float)  # month index -> USD of usage
        self.seq = 0
        self.left = sum(w.runs for w in plan.workloads)
        self.finished: list[RunState] = []
        self.events = 0

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

    def _repaired(self, ev):
        ev.value.free += ev.value.p.node_size
        self._dispatch()

    # -- submission and the queue ---------------------------------------------------------------
    def _make_runs(self, wl: WorkloadState) -> list[RunState]:
        w = wl.w
        factors = length_factors(w.length_kind, w.length_sigma, w.runs, self.len_rng)
        return [RunState(wl, i, factors[i], w.early_at if i < w.early_k else 1.0) for i in range(w.runs)]

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

    def _dispatch(self):
        q = self.queue
        if not q:
            return
        pools = self.pools
        one = pools[0] if len(pools) == 1 else None
        choose, strict = self.scheduler.choose_pool, self.scheduler.strict
        maxfree = one.free if one else max([p.free for p in pools])
        i = 0
        while i < len(q):
            r = q[i][1]
            if r.n <= maxfree and r.wl.running < r.wl.w.max_concurrent:
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
            i += 1

    # -- results --------------------------------------------------------------------------------
    def makespan_h(self) -> float:
        return max((r.end for r in self.finished), default=0.0)

    def record(self) -> ReplicationRecord:
        return replication_record(self)

    def run_records(self) -> list[RunRecord]:
        return run_records(self.finished)

    def summary(self) -> dict:
        """The replication's totals as flat columns (see ReplicationRecord.row)."""
        return self.record().row()


def simulate(plan: Plan, seed: int, replication: int, trace: bool = False) -> Replication:
    return Replication(plan, seed, replication, trace).simulate()
