"""A run's life on its capacity, as SimPy events: it starts as a gang on a pool, works in
segments (one timeout each, whatever their length), is interrupted (hardware, failure-domain or job-level
failure, planned interruption, loss spike, preemption, eviction), sits out the failure's detection,
restarts, and ends. `RunLife` is the half of a replication that books where every held
accelerator-hour went; `sim.engine.Replication` adds the clock, the capacity and the queue.

Accounting, in accelerator-hours (GPU-h) of allocated capacity:
  allocated = productive (progress kept, at the run's nominal speed) + lost (progress thrown away
  by an interruption, a rollback or an abandoned run) + overhead (failure detection, restarts,
  checkpoint writes, planned downtime, straggler slowdown).
"""

from __future__ import annotations

import math

import simpy

from sim.plan import Plan
from sim.reliability import (
    DOMAIN,
    DONE,
    FAILURE,
    JOB_FAILURE,
    NODE_WAIT,
    PLANNED,
    PREEMPTION,
    SegmentEnd,
    progress,
    saved,
    wall_time,
)
from sim.runstate import PoolState, RunState, Segment

INF = math.inf
_new = tuple.__new__  # makes a NamedTuple from a tuple without a Python-level __new__ (hot path)


class RunLife:
    """Start, segments of work until done or interrupted, interruptions, release and finish.
    Subclasses provide `env`, `plan`, `pools`, the random streams and `_dispatch`, `_enqueue`,
    `_nodes_failed`, `_room_elsewhere`, `_co_interrupt`, `_request`, `_no_progress` and `_bill`."""

    env: simpy.Environment
    plan: Plan

    def _allocate(self, r: RunState, pool: PoolState, obtained: bool = False):
        p = pool.p
        if p.obtain_mean_h and not obtained:  # the accelerators come after a wait (sim.capacity)
            self._request(r, pool)
            return
        now = self.env.now
        pool.free -= r.n
        pool.running[r] = None
        r.pool = pool
        r.alloc_t = now
        if self.trace is not None:
            self.trace.append((now, p.idx, r.n, r.wl.w.name, r.idx))
        r.fallback_next = -1
        wl = r.wl
        wl.running += 1
        if r.first_start < 0:
            r.first_start = now
        r.wait_h += now - r.queued_t
        w = wl.w
        r.ckpt_interval_h = w.ckpt_interval_h_on[p.idx]
        if p.lemon_fraction > 0.0 and pool.lemons_free > 0:  # how many of the nodes it got are lemons
            self._take_lemons(r, pool, pool.free + r.n)  # (none free: none, and its rate as _release left it)
        if r.attempts == 0:  # first start: decide whether this attempt will go wrong
            r.attempts = 1
            r.diverging = w.div_p > 0.0 and r.done < w.div_at < r.target and self.div_stream.next() < w.div_p
        self._segment(r)

    def _segment(self, r: RunState, dead: float = 0.0):
        """The run's next segment: `dead` hours held idle (detection of the last interruption, or planned
        downtime), a restart if due, then work until done or interrupted (after `dead`, restart included)."""
        wl = r.wl
        w = wl.w
        pool = r.pool
        pi = pool.p.idx
        length = w.length_h_on[pi] * r.factor  # the factor includes a straggler's slowdown
        work = ((w.div_at if r.diverging else r.target) - r.done) * length
        tau = r.ckpt_interval_h  # on this pool (set by _allocate)
        restart = w.restart_h_on[pi] if r.restart_due else 0.0
        r.restart_due = False
        write = w.write_h
        live = restart + (work if write <= 0.0 else wall_time(work, tau, write))  # (free writes: as wall_time)
        interruption = self._next_interruption  # (an attribute, not a method: read, then call)
        t, kind = interruption(r, pool, wl.sources[pi])  # it may strike during the restart too (Daly 2006)
        if t < live:
            live = t
            if kind < 0:  # MIXED: which source it is, asked only now (sim.policies)
                kind = self._interruption_kind(r, pool, wl.sources[pi])
        else:
            kind = DONE
        token = r.token = r.token + 1
        r.seg = _new(Segment, (dead, restart, live, kind, work, length, tau, write, self.env.now))
        self.env.call(dead + live, self._segment_end, (r, token))
        self.events += 1
        if self.events > self.max_events:
            self._no_progress(r)

    def _segment_end(self, value):
        r, token = value
        if token != r.token:  # the run was evicted before this segment ended
            return
        seg = r.seg
        dead, _, live, end = seg[:4]
        self._account(r, seg, dead + live, r.pool.p.notice_h if end == PREEMPTION else 0.0)
        if end == DONE:
            self._completed(r)
        elif end == PREEMPTION:
            self._preempted(r)
            self._co_interrupt(r.pool)
            self._dispatch()
        else:
            self._interrupted(r, end)

    def _account(self, r: RunState, seg: Segment, held: float, notice: float):
        """Book `held` hours of the segment (detection, restart, then work): the progress made and
        what of it is kept (all of it when the segment is done or stopped by a planned
        interruption; what the checkpoints saved when interrupted; nothing during a restart)."""
        n = r.n
        dead, rs, _, end, work, length, tau, write, _ = seg  # (unpacked at once: faster than by name)
        if dead:  # failure detection, planned downtime or waiting for a repair
            dead = dead if held > dead else held
            if end == NODE_WAIT:
                r.repair_wait_gpu_h += n * dead
            else:
                r.down_gpu_h += n * dead
        if rs:
            if rs > held - dead:
                rs = held - dead
            r.restart_gpu_h += n * rs
        e = held - dead - rs
        if end == DONE:
            prog = keep = work
        else:
            prog = min(e if write <= 0.0 else progress(e, tau, write), work)
            keep = prog if end == PLANNED else saved(e, prog, tau, write, notice)
            if prog != keep:
                r.lost += n * (prog - keep)
        if e > prog:
            r.write_gpu_h += n * (e - prog)
        slow = r.slow
        nominal = keep if slow == 1.0 else keep / slow  # a straggler's extra time is overhead, not progress
        if slow != 1.0:
            r.straggler_gpu_h += n * (keep - nominal)
        r.productive += n * nominal
        r.attempt_productive += n * nominal
        r.overhead += n * (held - prog + keep - nominal)
        r.alloc_gpu_h += n * held
        r.done += keep / length

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

    def _interrupted(self, r: RunState, kind: SegmentEnd):
        """A failure, planned interruption or loss spike: count it, roll back what it spoils, sit
        out its detection or downtime (the run holds its accelerators, makes no progress), go on."""
        w = r.wl.w
        r.attempts += 1
        r.restart_due = True
        dead = w.detect_h
        if kind == FAILURE:
            r.failures += 1
            if w.unrecoverable_p > 0.0 and self.unrec_stream.next() < w.unrecoverable_p:
                r.unrecoverable += 1
                _roll_back(r, r.seg.tau_h)  # the last checkpoint is spoilt too
        elif kind == DOMAIN:
            r.domain_failures += 1
        elif kind == JOB_FAILURE:
            r.job_failures += 1
        elif kind == PLANNED:
            r.planned += 1
            dead = w.planned_down_h
        else:
            r.loss_spikes += 1
            _roll_back(r, w.spike_rollback_h)
            dead = 0.0
        if dead > 0.0 and (kind == FAILURE or kind == DOMAIN) and r.pool.p.repair_h > 0.0:
            r.token += 1  # a segment of its own (an eviction may end it); at its end the nodes go for repair
            r.seg = _new(Segment, (dead, 0.0, 0.0, kind, 0.0, r.seg.length_h, INF, 0.0, self.env.now))
            self.env.call(dead, self._detected, (r, r.token))
            return
        self._recover(r, kind, dead)  # else the detection (or downtime) opens the next segment

    def _detected(self, value):
        """The detection (or planned downtime) ran out: book it, then recover."""
        r, token = value
        if token == r.token:
            seg = r.seg
            self._account(r, seg, seg.dead_h, 0.0)
            self._recover(r, seg.end)

    def _recover(self, r: RunState, kind: SegmentEnd, dead: float = 0.0):
        """After an interruption is dealt with, the run restarts (after `dead` hours of detection or
        downtime still to sit out); but when a hardware failure took a node (a failure domain: all
        the domain's nodes the run uses) that no spare and no free node replace, it moves or waits
        (`on_node_loss`)."""
        pool = r.pool
        lost = 1 if kind == FAILURE else (min(r.wl.w.domain_nodes, -(-r.n // pool.p.node_size)) if kind == DOMAIN
                                          else 0)
        if lost and not self._nodes_failed(pool, lost, r, kind == FAILURE) and pool.free < 0:
            w = r.wl.w
            if w.on_node_loss == "move" or (w.on_node_loss == "best" and self._room_elsewhere(r)):
                self._release(r)
                self._enqueue(r, self.env.now)
                self._dispatch()
                return
            r.token += 1  # waits, holding its other nodes, until the pool has a node for it again
            r.seg = _new(Segment, (INF, 0.0, 0.0, NODE_WAIT, 0.0, r.seg.length_h, INF, 0.0, self.env.now))
            pool.waiting.append(r)
            return
        self._segment(r, dead)

    def _preempted(self, r: RunState):
        """Give the run's accelerators back and queue it again (its fallback pool first)."""
        r.preemptions += 1
        r.attempts += 1
        pool = r.pool
        self._release(r)
        r.restart_due = True
        r.fallback_next = pool.p.fallback
        self._enqueue(r, self.env.now)

    def _release(self, r: RunState):
        now = self.env.now
        pool = r.pool
        n = r.n
        pool.free += n
        if r.lemons:  # its lemon nodes are free again (sim.lemons)
            pool.lemons_free += r.lemons
            r.lemons = 0
            r.rate_mult = 1.0
        del pool.running[r]
        if self.trace is not None:
            self.trace.append((now, pool.p.idx, -n, r.wl.w.name, r.idx))
        # the accelerator-hours it held and what they drew (with the span when the grid varies: sim.records)
        a = r.alloc_t
        held = n * (now - a)
        pool.busy_gpu_h += held
        kw = r.wl.w.busy_kw_on[pool.p.idx]
        pool.busy_kwh += held * kw
        if pool.spans is not None:
            pool.spans.append((a, now, n, kw))
        c = self._bill(pool, n, a, now)
        pool.usage_cost += c
        r.cost += c
        r.wl.running -= 1
        if pool.waiting:
            self._node_back(pool)

    def _finish(self, r: RunState):
        now = self.env.now
        self._release(r)
        r.seg = None  # freed now rather than with the replication
        r.end = now
        r.ettr = r.productive / r.alloc_gpu_h if r.alloc_gpu_h > 0 else 1.0
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


def _roll_back(r: RunState, hours: float):
    """Throw away `hours` of the run's kept work (to an earlier checkpoint): from productive to lost."""
    seg = r.seg
    share = min(hours / seg.length_h, r.done) if hours < INF else r.done
    r.done -= share
    g = r.n * share * seg.length_h / r.slow
    r.productive -= g
    r.attempt_productive = max(r.attempt_productive - g, 0.0)
    r.lost += g
