"""Checkpoint maths (pure), the failure model and the scheduler plug-ins."""

from __future__ import annotations

import math
from types import SimpleNamespace as NS

import numpy as np
import pytest

from sim.policies import FAILURE_MODELS, MIXED, SCHEDULERS
from sim.reliability import SegmentEnd, progress, saved, wall_time

INF = math.inf


@pytest.mark.parametrize(("work", "tau", "delta", "expect"), [
    (10.0, 3.0, 0.5, 10.0 + 3 * 0.5),  # writes after 3, 6, 9; none after the last piece
    (9.0, 3.0, 0.5, 9.0 + 2 * 0.5),  # a whole number of intervals: no write at the very end
    (2.0, 3.0, 0.5, 2.0),  # shorter than one interval
    (10.0, INF, 0.5, 10.0),  # no checkpoints
    (10.0, 0.0, 0.5, 10.0),  # continuous (free) checkpoints
    (10.0, 3.0, 0.0, 10.0),  # free writes
])
def test_wall_time_closed_form(work, tau, delta, expect):
    assert wall_time(work, tau, delta) == pytest.approx(expect)


def test_progress_stops_during_writes_and_inverts_wall_time():
    tau, delta = 3.0, 0.5
    assert progress(3.0, tau, delta) == 3.0
    assert progress(3.25, tau, delta) == 3.0  # writing
    assert progress(3.5, tau, delta) == 3.0
    assert progress(4.5, tau, delta) == pytest.approx(4.0)
    for work in np.linspace(0.1, 20.0, 37):
        assert progress(wall_time(work, tau, delta), tau, delta) == pytest.approx(work)


def test_saved_is_the_last_completed_write_or_what_a_notice_saves():
    tau, delta = 3.0, 0.5
    x = 5.0  # one write done (at 3.0..3.5), 1.5 h of progress since
    done = progress(x, tau, delta)
    assert done == pytest.approx(4.5)
    assert saved(x, done, tau, delta) == 3.0
    assert saved(x, done, INF, delta) == 0.0  # no checkpoints: all lost
    assert saved(x, done, 0.0, delta) == done  # continuous: nothing lost
    # a 1 h notice lets a write start at 4.0 and save the progress made by then (3.5 h)
    assert saved(x, done, tau, delta, notice=1.0) == pytest.approx(progress(4.0, tau, delta))
    # a notice shorter than a write saves nothing more
    assert saved(x, done, tau, delta, notice=0.25) == 3.0


def _run(n=16, fail=0.0, job=0.0, planned=0.0, spikes=0.0, mult=1.0, domain=0.0):
    w = NS(fail_rate_per_h=fail, job_fail_rate_per_h=job, planned_rate_per_h=planned, spike_rate_per_h=spikes,
           domain_nodes=4 if domain else 0, domain_rate_per_h_on={0: domain})
    return NS(n=n, rate_mult=mult, wl=NS(w=w))


def _drawn(model, r, pool):
    """The next interruption with its kind settled (as the engine asks when it comes)."""
    t, kind = model.next_interruption(r, pool)
    return t, (model.kind(r, pool) if kind == MIXED else kind)


def _pool(rate=0.0, node=8):
    return NS(p=NS(preempt_rate_per_node_h=rate, node_size=node, idx=0))


def test_exponential_interruptions_have_the_summed_rate_and_split_by_rate():
    model = FAILURE_MODELS["exponential"](seed=3, replication=0)
    fail, pre, nodes = 0.02, 0.005, 2
    draws = [_drawn(model, _run(16, fail), _pool(pre, 8)) for _ in range(20000)]
    t = np.array([d[0] for d in draws])
    rate = fail + pre * nodes
    se = t.std(ddof=1) / math.sqrt(t.size)
    assert abs(t.mean() - 1 / rate) < 4 * se
    share = np.mean([d[1] == SegmentEnd.FAILURE for d in draws])
    p = fail / rate
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / len(draws))


def test_four_sources_split_by_their_rates():
    """Kokolis et al.: job-level failures come on top of hardware ones whatever the run's size."""
    model = FAILURE_MODELS["exponential"](seed=4, replication=1)
    fail, job, pre, dom = 0.01, 0.03, 0.005, 0.008
    draws = [_drawn(model, _run(8, fail, job, domain=dom), _pool(pre, 8)) for _ in range(20000)]
    total = fail + job + pre + dom
    t = np.array([d[0] for d in draws])
    assert abs(t.mean() - 1 / total) < 4 * t.std(ddof=1) / math.sqrt(t.size)
    for kind, rate in ((SegmentEnd.FAILURE, fail), (SegmentEnd.JOB_FAILURE, job), (SegmentEnd.PREEMPTION, pre),
                       (SegmentEnd.DOMAIN, dom)):
        share, p = np.mean([d[1] == kind for d in draws]), rate / total
        assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / len(draws)), kind


def test_no_interruption_without_rates_and_streams_untouched():
    model = FAILURE_MODELS["none"](seed=3, replication=0)
    assert model.next_interruption(_run(), _pool()) == (INF, SegmentEnd.DONE)
    assert model.failures._i == model.kinds._i == 0  # nothing drawn


def test_the_kind_says_nothing_of_the_time():
    """Competing exponentials: the earliest's time is exponential at the sum of the rates whatever
    its kind. Drawn as their superposition (one time, one uniform for the kind), the mean time given
    each kind must still be 1 / total."""
    model = FAILURE_MODELS["exponential"](seed=9, replication=2)
    fail, job, pre = 0.02, 0.05, 0.01
    draws = [_drawn(model, _run(8, fail, job), _pool(pre, 8)) for _ in range(30000)]
    total = fail + job + pre
    for kind in (SegmentEnd.FAILURE, SegmentEnd.JOB_FAILURE, SegmentEnd.PREEMPTION):
        t = np.array([d[0] for d in draws if d[1] == kind])
        assert abs(t.mean() - 1 / total) < 4 * (1 / total) / math.sqrt(t.size), kind  # exponential: sd = mean


def test_hardware_failures_alone_draw_one_number_per_segment():
    """A run whose only source is hardware failures draws one exponential per segment and no kind
    (the simple model's random numbers do not depend on the other sources' machinery)."""
    model = FAILURE_MODELS["exponential"](seed=5, replication=0)
    ref = FAILURE_MODELS["exponential"](seed=5, replication=0).failures
    for _ in range(300):
        t, kind = model.next_interruption(_run(16, 0.01), _pool())
        assert kind == SegmentEnd.FAILURE and t == ref.next() / 0.01
    assert model.kinds._i == 0


def test_scheduler_keys_and_pool_choice():
    w_hi = NS(priority=5, pools=[0, 1], length_h_on={0: 1.0, 1: 1.0, 2: 1.0})
    w_lo = NS(priority=0, pools=[0, 1], length_h_on={0: 1.0, 1: 1.0})
    a = NS(seq=1, n=8, wl=NS(w=w_lo), fallback_next=-1)
    b = NS(seq=2, n=8, wl=NS(w=w_hi), fallback_next=-1)
    assert sorted([b, a], key=SCHEDULERS["fifo_backfill"].key) == [a, b]
    assert sorted([a, b], key=SCHEDULERS["priority"].key) == [b, a]
    assert SCHEDULERS["fifo"].strict and not SCHEDULERS["fifo_backfill"].strict
    pools = [NS(free=4), NS(free=8), NS(free=64)]
    choose = SCHEDULERS["fifo_backfill"].choose_pool
    assert choose(a, pools) is pools[1]  # first pool in preference order with room
    b.fallback_next = 2
    assert choose(b, pools) is pools[2]  # after a preemption, its fallback first
    a.fallback_next = 2
    assert choose(a, pools) is pools[1]  # a fallback the run cannot use is ignored
    assert choose(NS(n=128, wl=NS(w=w_lo), fallback_next=-1), pools) is None


def test_expected_interruptions_closed_form():
    from sim.reliability import expected_interruptions

    assert expected_interruptions(10.0, INF, 0.1, 0.2) == pytest.approx(math.expm1(2.0))
    assert expected_interruptions(10.0, 2.0, 0.1, 0.2) == pytest.approx(5 * math.expm1(0.2 * 2.1))
    assert expected_interruptions(10.0, 0.0, 0.1, 0.2) == pytest.approx(2.0)  # continuous: rate x work
    assert expected_interruptions(10.0, 2.0, 0.1, 0.0) == 0.0
    assert expected_interruptions(100.0, INF, 0.0, 1e6) == INF  # overflows: no progress possible


def test_engine_failure_count_matches_expected_interruptions(write):
    """No checkpoints, no restart time: a run of L hours at rate lam fails e^{lam L} - 1 times on
    average (each attempt starts over)."""
    from sim.engine import simulate
    from sim.loader import load
    from sim.plan import build_plan
    from sim.reliability import expected_interruptions
    from sim.schema import nominal_scenario

    text = """\
    project: {name: t, start: 2026-01-01}
    pools: [{name: g, accelerator: h100, count: 8, price_usd_per_gpu_h: 1.0}]
    workloads: [{name: w, runs: 1, hours_per_run: 10 h, accelerators: 8}]
    reliability: {failure_rate_per_gpu_h: 0.01, checkpoint: {interval: none}}
    simulation: {priors: off}
    """
    loaded = load(write(text))
    plan = build_plan(nominal_scenario(loaded.scenario), loaded.catalog)
    fails = np.array([simulate(plan, 5, k).summary()["failures"] for k in range(3000)], dtype=float)
    expect = expected_interruptions(10.0, INF, 0.0, 0.08)
    se = fails.std(ddof=1) / math.sqrt(fails.size)
    assert abs(fails.mean() - expect) < 4 * se, (fails.mean(), expect, se)


def test_a_project_that_cannot_progress_is_refused_at_once(cli, write, tmp_path):
    spot = """\
    project: {name: t, start: 2026-01-01}
    pools:
      - {name: spot, accelerator: h100, count: 64, pricing: spot, price_usd_per_gpu_h: 2,
         preemption: {rate_per_node_h: 1000000}}
    workloads: [{name: train, runs: 2, params: 1B, tokens: 20B, accelerators: 8, mfu: 0.4}]
    """
    code, _out, err = cli("validate", write(spot))
    assert code == 2 and "pools[0].preemption" in err and "interrupted every 0.0036 s" in err, err
    hot = """\
    project: {name: t, start: 2026-01-01}
    pools: [{name: g, accelerator: h100, count: 8, price_usd_per_gpu_h: 2}]
    workloads: [{name: train, runs: 2, params: 1B, tokens: 20B, accelerators: 8, mfu: 0.4}]
    reliability: {failure_rate_per_gpu_h: 10, checkpoint: {interval: none}}
    """
    code, _out, err = cli("run", write(hot, "hot.yaml"), "--reps", "2", "--workers", "1", "--out", tmp_path / "o")
    assert code == 2 and ": reliability: runs of workload train on pool g are interrupted every 45 s" in err, err
    assert "an unbounded number of restarts" in err and not (tmp_path / "o" / "summary.json").exists()
