"""One replication of a whole project: a SimPy discrete-event simulation.

SimPy decides only when and where things happen; the maths of a run segment (checkpoints, lost
work, price integrals) is closed-form. Events per replication grow with runs + failures +
preemptions (+ capacity changes and repairs): a run segment is one timeout, whatever its length;
checkpoints and price changes are integrated, never ticked.

Accounting, in accelerator-hours (GPU-h) of allocated capacity:
  allocated = productive (progress kept) + lost (progress thrown away by an interruption or an
  abandoned run) + overhead (restarts, checkpoint writes, preemption notice).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from datetime import timedelta

import numpy as np
import simpy

from sim import rng as rngmod
from sim.plan import Plan, PoolPlan, WorkloadPlan, build_plan  # noqa: F401  (build_plan: re-exported)
from sim.records import ReplicationRecord, RunRecord, WorkloadTotals

INF = math.inf


class SimulationError(Exception):
    """A replication that cannot finish (horizon passed, or capacity that never comes)."""


# --------------------------------------------------------------------------------------------
# The simulation


class _Pool:
    __slots__ = ("p", "capacity", "free", "busy_gpu_h", "usage_cost", "running")

    def __init__(self, p: PoolPlan):
        self.p = p
        self.running: dict = {}  # runs holding accelerators here, in start order
        self.capacity = p.capacity0
        self.free = p.capacity0
        self.busy_gpu_h = 0.0
        self.usage_cost = 0.0


class _Workload:
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


class _Run:
    __slots__ = ("wl", "idx", "seq", "n", "factor", "target", "diverging", "done", "pool", "alloc_t", "queued_t",
                 "submit_t", "first_start", "end", "wait_h", "attempts", "failures", "preemptions", "reruns",
                 "alloc_gpu_h", "productive", "lost", "overhead", "attempt_productive", "cost", "pending_restart",
                 "fallback_next", "seg", "abandoned", "token")

    def __init__(self, wl: _Workload, idx: int, seq: int, factor: float, target: float):
        self.wl = wl
        self.idx = idx
        self.seq = seq
        self.n = wl.w.n
        self.factor = factor
        self.target = target
        self.diverging = False
        self.done = 0.0
        self.pool = None
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
        self.pending_restart = 0.0
        self.fallback_next = -1
        self.seg = None
        self.abandoned = False
        self.token = 0


RUN_COLUMNS = ["workload", "run", "pool", "submit_h", "start_h", "end_h", "queue_wait_h", "attempts", "failures",
               "preemptions", "reruns", "abandoned", "gpu_hours", "productive_gpu_hours", "lost_gpu_hours",
               "overhead_gpu_hours", "cost_usd"]


class Replication:
    def __init__(self, plan: Plan, seed: int, replication: int, trace: bool = False):
        self.plan = plan
        # (time, pool index, accelerators taken (+) or given back (-), workload, run) when tracing
        self.trace: list | None = [] if trace else None
        self.env = simpy.Environment()
        g = rngmod.generator
        self.fail_stream = rngmod.ExpStream(g(seed, replication, "failures"))
        self.pre_stream = rngmod.ExpStream(g(seed, replication, "preemptions"))
        self.div_stream = rngmod.UniformStream(g(seed, replication, "divergence"))
        self.arr_stream = rngmod.ExpStream(g(seed, replication, "arrivals"))
        self.len_rng = g(seed, replication, "lengths")
        self.pools = [_Pool(p) for p in plan.pools]
        self.wls = [_Workload(w) for w in plan.workloads]
        for wl in self.wls:
            for d in set(wl.w.after):
                self.wls[d].dependents.append(wl)
        self.queue: list = []
        self.spend: dict[int, float] = defaultdict(float)  # month index -> USD
        self.strict = plan.policy == "fifo"
        self.by_priority = plan.policy == "priority"
        self.seq = 0
        self.left = sum(w.runs for w in plan.workloads)
        self.finished: list[_Run] = []
        self.events = 0

    # -- set-up -------------------------------------------------------------------------------
    def _make_runs(self, wl: _Workload) -> list[_Run]:
        w = wl.w
        if w.length_kind == "lognormal" and w.length_sigma > 0:
            factors = np.exp(w.length_sigma * self.len_rng.standard_normal(w.runs)).tolist()
        elif w.length_kind == "exponential":
            factors = self.len_rng.standard_exponential(w.runs).tolist()
        else:
            factors = [1.0] * w.runs
        runs = []
        for i in range(w.runs):
            target = w.early_at if i < w.early_k else 1.0
            runs.append(_Run(wl, i, 0, factors[i], target))
        return runs

    def simulate(self) -> Replication:
        env = self.env
        if self.left == 0:
            return self
        steps: dict[float, list] = {}
        for pool in self.pools:
            for t, cap in pool.p.steps:
                steps.setdefault(t, []).append((pool, cap))
        for t, changes in sorted(steps.items()):
            ev = env.timeout(t, value=changes)
            ev.callbacks.append(self._capacity_due)
        for wl in self.wls:
            if wl.deps_left == 0:
                self._ready(wl, dispatch=False)
        self._dispatch()
        horizon = self.plan.horizon_h
        step, peek = env.step, env.peek
        while self.left > 0:
            t = peek()
            if t > horizon:
                if t == INF:
                    raise SimulationError(
                        f"the simulation stalled at {env.now / 24:.1f} days with {self.left} runs unfinished: they "
                        "can never get capacity (a reserved commitment that ended, or a pool that shrank for good)"
                    )
                raise SimulationError(
                    f"the simulation passed its horizon ({horizon / 8760:g} years) with {self.left} runs "
                    "unfinished; the project as described cannot finish (raise simulation.horizon if it really "
                    "takes that long)"
                )
            step()
        return self

    def _capacity_due(self, ev):
        """Pools change size: the new capacity counts at once (nothing new starts on capacity
        that is going), but evictions wait until every other event due at this instant has run,
        so that a run ending exactly as its capacity goes finishes first."""
        for pool, cap in ev.value:
            pool.free += cap - pool.capacity
            pool.capacity = cap
        later = self.env.timeout(0.0, value=ev.value)
        later.callbacks.append(self._capacity_enforce)

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

    def _ready(self, wl: _Workload, dispatch: bool = True):
        runs = self._make_runs(wl)
        t0 = max(self.env.now, wl.w.earliest_h)
        if wl.w.arrival_interval > 0:
            t = t0
            for r in runs:
                t += self.arr_stream.next() * wl.w.arrival_interval
                ev = self.env.timeout(t - self.env.now, value=[r])
                ev.callbacks.append(self._submit)
        elif t0 > self.env.now:
            ev = self.env.timeout(t0 - self.env.now, value=runs)
            ev.callbacks.append(self._submit)
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

    def _enqueue(self, r: _Run, now: float):
        r.queued_t = now
        key = (-r.wl.w.priority, r.seq) if self.by_priority else (r.seq,)
        bisect.insort(self.queue, (key, r))

    # -- scheduling ---------------------------------------------------------------------------
    def _dispatch(self):
        q = self.queue
        if not q:
            return
        pools = self.pools
        maxfree = max(p.free for p in pools)
        i = 0
        while i < len(q):
            r = q[i][1]
            wl = r.wl
            if r.n <= maxfree and wl.running < wl.w.max_concurrent:
                pool = None
                fb = r.fallback_next
                if fb >= 0 and pools[fb].free >= r.n and fb in wl.w.length_on:
                    pool = pools[fb]
                else:
                    for j in wl.w.pools:
                        if pools[j].free >= r.n:
                            pool = pools[j]
                            break
                if pool is not None:
                    del q[i]
                    self._allocate(r, pool)
                    maxfree = max(p.free for p in pools)
                    if maxfree <= 0:
                        return
                    continue
            if self.strict:
                return
            i += 1

    def _allocate(self, r: _Run, pool: _Pool):
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

    def _segment(self, r: _Run):
        w = r.wl.w
        pool = r.pool
        pi = pool.p.idx
        length = w.length_on[pi] * r.factor
        goal = w.div_at if r.diverging else r.target
        rem = (goal - r.done) * length
        tau = w.tau_on[pi]
        delta = w.delta
        if tau == INF or tau <= 0.0 or delta <= 0.0 or rem <= tau:
            wall = rem
        else:
            wall = rem + (math.ceil(rem / tau) - 1) * delta
        restart = r.pending_restart
        r.pending_restart = 0.0
        e = wall
        kind = 0  # 0 done, 1 failure, 2 preemption
        if w.fail_rate > 0.0:
            tf = self.fail_stream.next() / w.fail_rate
            if tf < e:
                e, kind = tf, 1
        pr = pool.p.preempt_rate_node
        if pr > 0.0:
            tp = self.pre_stream.next() / (pr * -(-r.n // pool.p.node_size))
            if tp < e:
                e, kind = tp, 2
        r.token += 1
        r.seg = (restart, e, kind, rem, length, tau, delta, self.env.now)
        ev = self.env.timeout(restart + e, value=(r, r.token))
        ev.callbacks.append(self._segment_end)
        self.events += 1

    @staticmethod
    def _progress(x: float, tau: float, delta: float) -> float:
        if tau == INF or tau <= 0.0 or delta <= 0.0:
            return x
        k = math.floor(x / (tau + delta))
        return k * tau + min(x - k * (tau + delta), tau)

    def _segment_end(self, ev):
        r, token = ev.value
        if token != r.token:  # the run was evicted before this segment ended
            return
        restart, e, kind, rem, length, tau, delta, _t0 = r.seg
        self._account(r, restart, e, kind, rem, length, tau, delta, r.pool.p.notice if kind == 2 else 0.0)
        w = r.wl.w
        if kind == 0:
            if r.diverging:  # the attempt went wrong: everything it kept is thrown away
                r.productive -= r.attempt_productive
                r.lost += r.attempt_productive
                r.attempt_productive = 0.0
                r.done = 0.0
                if w.div_rerun:
                    r.reruns += 1
                    r.attempts += 1
                    r.diverging = w.div_at < r.target and self.div_stream.next() < w.div_p
                    r.pending_restart = w.restart
                    self._segment(r)
                    return
                r.abandoned = True
            self._finish(r)
        elif kind == 1:
            r.failures += 1
            r.attempts += 1
            r.pending_restart = w.restart
            if w.repair > 0.0:
                pool = r.pool
                pool.free -= pool.p.node_size  # the failed node leaves the pool for its repair
                rep = self.env.timeout(w.repair, value=pool)
                rep.callbacks.append(self._repaired)
                if pool.free < 0:  # no spare node to replace it: the run waits for capacity
                    self._release(r)
                    self._enqueue(r, self.env.now)
                    self._dispatch()
                    return
            self._segment(r)
        else:
            self._preempted(r)
            self._dispatch()

    def _account(self, r: _Run, restart, e, kind, rem, length, tau, delta, notice):
        """Book a segment that ran for `restart` + `e` hours and ended by completion (kind 0),
        failure (1) or preemption (2): what progress was made, and what of it is kept."""
        if kind == 0:
            progress = saved = rem
        else:
            progress = min(self._progress(e, tau, delta), rem)
            if tau == INF:
                saved = 0.0
            elif tau <= 0.0:
                saved = progress  # continuous checkpoints (free writes, `auto`): nothing is lost
            else:
                saved = math.floor(e / (tau + delta)) * tau
                if notice >= delta > 0.0 and e > notice:
                    saved = max(saved, self._progress(e - notice, tau, delta))
                saved = min(saved, progress)
        n = r.n
        keep = n * saved
        r.productive += keep
        r.attempt_productive += keep
        r.lost += n * (progress - saved)
        r.overhead += n * (restart + e - progress)
        r.alloc_gpu_h += n * (restart + e)
        r.done += saved / length

    def _preempted(self, r: _Run):
        """Give the run's accelerators back and queue it again (its fallback pool first)."""
        r.preemptions += 1
        r.attempts += 1
        pool = r.pool
        self._release(r)
        r.pending_restart = r.wl.w.restart
        r.fallback_next = pool.p.fallback
        self._enqueue(r, self.env.now)

    def _evict(self, r: _Run):
        """Capacity taken away under a running run (a reservation ending, a pool shrinking): the
        run stops now, keeps what its checkpoints saved, and queues again."""
        restart, _e, _kind, rem, length, tau, delta, t0 = r.seg
        elapsed = self.env.now - t0
        r.token += 1
        self._account(r, min(elapsed, restart), max(elapsed - restart, 0.0), 2, rem, length, tau, delta, 0.0)
        self._preempted(r)

    def _repaired(self, ev):
        ev.value.free += ev.value.p.node_size
        self._dispatch()

    def _release(self, r: _Run):
        now = self.env.now
        pool = r.pool
        pool.free += r.n
        del pool.running[r]
        if self.trace is not None:
            self.trace.append((now, pool.p.idx, -r.n, r.wl.w.name, r.idx))
        pool.busy_gpu_h += r.n * (now - r.alloc_t)
        c = self._bill(pool.p.curve, r.n, r.alloc_t, now, pool.p.tier in ("on_demand", "spot"))
        pool.usage_cost += c
        r.cost += c
        r.wl.running -= 1

    def _bill(self, curve, n: float, a: float, b: float, spend: bool = True, into: dict | None = None) -> float:
        """n x the price integral over [a, b], split by calendar month into `into` (default
        self.spend) when this usage is what the project pays for (on-demand and spot)."""
        if not spend:
            return n * curve.integral(a, b)
        into = self.spend if into is None else into
        months = self.plan.months
        i = bisect.bisect_right(months, a) - 1
        total = 0.0
        while True:
            end = months[i + 1] if i + 1 < len(months) else INF
            if b <= end:
                c = n * curve.integral(a, b)
                into[i] += c
                return total + c
            c = n * curve.integral(a, end)
            into[i] += c
            total += c
            a, i = end, i + 1

    def _finish(self, r: _Run):
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

    # -- results ------------------------------------------------------------------------------
    def makespan_h(self) -> float:
        return max((r.end for r in self.finished), default=0.0)

    def summary(self) -> dict:
        plan = self.plan
        mk = self.makespan_h()
        row: dict = {}
        total_cost = 0.0
        energy = co2 = idle_total = 0.0
        tiers: dict[str, float] = {}
        spend = defaultdict(float, self.spend)  # usage billed so far, plus reserved and owned below
        for pool in self.pools:
            p = pool.p
            busy = pool.busy_gpu_h
            if p.tier == "reserved":
                t0, t1 = p.commit
                capacity = max([p.capacity0, *(c for _, c in p.steps)])
                cost = self._bill(p.curve, capacity, t0, t1, into=spend)
                idle = max(capacity * (t1 - t0) - busy, 0.0)
                idle_draws = True  # dedicated capacity: its idle draw is the project's footprint
            elif p.tier == "owned":
                cap_h = _capacity_hours(p, mk)
                cost = _over_capacity(p, mk, lambda cap, a, b, p=p: self._bill(p.curve, cap, a, b, into=spend))
                idle = max(cap_h - busy, 0.0)
                idle_draws = True
            else:
                cost = pool.usage_cost
                idle = 0.0
                idle_draws = False
            kwh = busy * p.tdp_kw * plan.power_factor * p.pue
            if idle_draws:
                kwh += idle * p.tdp_kw * plan.idle_power_factor * p.pue
            if p.tier == "owned" and kwh > 0:  # electricity, spread over months like the capacity
                energy_cost = kwh * p.usd_per_kwh
                rate = energy_cost / cap_h if cap_h > 0 else 0.0
                _over_capacity(p, mk, lambda cap, a, b, rate=rate: self._bill(_FLAT, cap * rate, a, b, into=spend))
                cost += energy_cost
            row[f"cost_usd_pool_{p.name}"] = cost
            tiers[p.tier] = tiers.get(p.tier, 0.0) + cost
            total_cost += cost
            energy += kwh
            co2 += kwh * p.grid_kg_per_kwh
            idle_total += idle
        runs = self.finished
        alloc = sum(r.alloc_gpu_h for r in runs)
        out = {
            "cost_usd": total_cost,
            "gpu_hours": alloc,
            "productive_gpu_hours": sum(r.productive for r in runs),
            "lost_gpu_hours": sum(r.lost for r in runs),
            "overhead_gpu_hours": sum(r.overhead for r in runs),
            "idle_gpu_hours": idle_total,
            "makespan_days": mk / 24.0,
            "finish_date": (plan.start + timedelta(hours=mk)).isoformat(),
            "energy_kwh": energy,
            "co2_kg": co2,
            "failures": sum(r.failures for r in runs),
            "preemptions": sum(r.preemptions for r in runs),
            "reruns": sum(r.reruns for r in runs),
            "mean_queue_wait_h": (sum(r.wait_h for r in runs) / len(runs)) if runs else 0.0,
            "events": self.events,
        }
        for wl in self.wls:
            out[f"cost_usd_wl_{wl.w.name}"] = wl.cost
        out.update(row)
        for tier, cost in tiers.items():
            out[f"cost_usd_tier_{tier}"] = cost
        for i in sorted(spend):
            out[f"spend_usd_{plan.month_labels[i]}"] = spend[i]
        return out

    def record(self) -> ReplicationRecord:
        s = self.summary()
        rec = ReplicationRecord(**{m: s[m] for m in ReplicationRecord.METRICS})
        for wl in self.wls:
            rec.workloads[wl.w.name] = WorkloadTotals(wl.w.runs, wl.cost, wl.gpu_h)
        for k, v in s.items():
            for prefix, into in (("cost_usd_pool_", rec.cost_usd_by_pool), ("cost_usd_tier_", rec.cost_usd_by_tier),
                                 ("spend_usd_", rec.spend_usd_by_month)):
                if k.startswith(prefix):
                    into[k.removeprefix(prefix)] = v
        return rec

    def run_records(self) -> list[RunRecord]:
        return [RunRecord(*row) for row in self.run_rows()]

    def run_rows(self) -> list[tuple]:
        return [
            (r.wl.w.name, r.idx, r.pool.p.name, r.submit_t, r.first_start, r.end, r.wait_h, r.attempts, r.failures,
             r.preemptions, r.reruns, r.abandoned, r.alloc_gpu_h, r.productive, r.lost, r.overhead, r.cost)
            for r in self.finished
        ]


def _over_capacity(p: PoolPlan, until: float, per_step) -> float:
    """Sum over the pool's capacity steps within [0, until] of per_step(capacity, a, b)."""
    steps = [(0.0, p.capacity0), *p.steps]
    total = 0.0
    for (t, cap), nxt in zip(steps, [*steps[1:], (INF, 0)], strict=True):
        a, b = max(t, 0.0), min(nxt[0], until)
        if b > a:
            total += per_step(cap, a, b)
    return total


class _Flat:
    """A price of 1 per hour (used to spread an amount over months)."""

    @staticmethod
    def integral(a: float, b: float) -> float:
        return b - a


_FLAT = _Flat()


def _capacity_hours(p: PoolPlan, until: float) -> float:
    return _over_capacity(p, until, lambda cap, a, b: cap * (b - a))


def simulate(plan: Plan, seed: int, replication: int, trace: bool = False) -> Replication:
    return Replication(plan, seed, replication, trace).simulate()
