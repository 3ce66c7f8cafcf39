"""Failures as they happen at scale: job-level failures beside hardware ones, detection time, and
restarts that grow with the run's size; each against a closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.engine import simulate
from sim.plan import build_plan, interruption_rate_per_h
from sim.reliability import restart_h
from sim.schema import nominal_scenario
from tests.test_engine import plan_of, pool, scenario, sem


def run_with(reliability: dict, n: int = 8, hours: float = 100.0, count: int = 16):
    loaded = scenario([pool(count=count)], [{"name": "w", "hours_per_run": hours, "accelerators": n}],
                      {"checkpoint": {"interval": "auto", "write": 0}, **reliability})
    return plan_of(loaded)


@pytest.mark.slow
def test_job_and_hardware_failures_add_and_are_counted_apart():
    # continuous free checkpoints, no restart: exposure is the 100 h of work; hardware 8 x 0.005,
    # job-level 0.03 per run-hour, whatever the size
    plan = run_with({"failure_rate_per_gpu_h": 0.005, "job_failure_rate_per_h": 0.03})
    rows = [simulate(plan, 2, k).summary() for k in range(2000)]
    hw = np.array([r["failures"] for r in rows], dtype=float)
    job = np.array([r["job_failures"] for r in rows], dtype=float)
    assert abs(hw.mean() - 4.0) < 3 * sem(hw)
    assert abs(job.mean() - 3.0) < 3 * sem(job)


def test_job_level_rate_does_not_grow_with_size():
    small = run_with({"failure_rate_per_gpu_h": 1e-4, "job_failure_rate_per_h": 0.1}, n=8, count=2048)
    big = run_with({"failure_rate_per_gpu_h": 1e-4, "job_failure_rate_per_h": 0.1}, n=1024, count=2048)
    for plan, n in ((small, 8), (big, 1024)):
        w, p = plan.workloads[0], plan.pools[0]
        assert interruption_rate_per_h(w, p) == pytest.approx(1e-4 * n + 0.1)
    # so the job's mean time to failure falls far slower than hardware alone predicts
    assert 1 / interruption_rate_per_h(small.workloads[0], small.pools[0]) < 10.0


@pytest.mark.slow
def test_detection_time_adds_d_per_failure_to_the_wall_time():
    # continuous checkpoints, no restart: wall = W + D x N with N ~ Poisson(lambda W): E = W (1 + lambda D)
    plan = run_with({"failure_rate_per_gpu_h": 0.005, "detect": "30 min"})
    wall = np.array([simulate(plan, 9, k).makespan_h() for k in range(3000)])
    expect = 100.0 * (1 + 0.04 * 0.5)
    assert abs(wall.mean() - expect) < 3 * sem(wall), (wall.mean(), expect)
    s = simulate(plan, 9, 0).summary()
    assert s["overhead_gpu_hours"] == pytest.approx(8 * 0.5 * s["failures"])
    assert s["gpu_hours"] == pytest.approx(s["productive_gpu_hours"] + s["lost_gpu_hours"] + s["overhead_gpu_hours"])


def test_restart_grows_with_nodes():
    assert restart_h(0.1, 0.0, 0.05, 1) == pytest.approx(0.1)
    assert restart_h(0.1, 0.0, 0.05, 2048) == pytest.approx(0.1 + 0.05 * 11)
    assert restart_h(0.1, 0.001, 0.0, 2048) == pytest.approx(0.1 + 2.048)
    loaded = scenario([pool(count=16384)],
                      [{"name": "small", "hours_per_run": 10, "accelerators": 8},
                       {"name": "big", "hours_per_run": 10, "accelerators": 16384}],
                      {"restart": "6 min", "restart_per_doubling": "3 min"})
    plan = build_plan(nominal_scenario(loaded.scenario), loaded.catalog)
    small, big = plan.workloads
    assert small.restart_h_on[0] == pytest.approx(0.1)
    assert big.restart_h_on[0] == pytest.approx(0.1 + 0.05 * math.log2(2048))


def test_stragglers_slow_the_compute_and_the_extra_time_is_overhead():
    loaded = scenario([pool(count=16)], [{"name": "w", "hours_per_run": 10, "accelerators": 8, "runs": 4,
                                          "stragglers": {"fraction": 1.0, "slowdown": 1.25}}])
    s = simulate(plan_of(loaded), 0, 0).summary()
    assert s["productive_gpu_hours"] == pytest.approx(4 * 8 * 10)  # the work, at nominal speed
    assert s["straggler_gpu_hours"] == pytest.approx(4 * 8 * 10 * 0.25)
    assert s["gpu_hours"] == pytest.approx(4 * 8 * 12.5)
    assert s["ettr"] == pytest.approx(1 / 1.25)
    # a share of runs: the expected slowdown is 1 + share x 0.25
    share = scenario([pool(count=4096)], [{"name": "w", "hours_per_run": 10, "accelerators": 8, "runs": 400,
                                           "stragglers": {"fraction": 0.4, "slowdown": 1.25}}])
    s = simulate(plan_of(share), 1, 0).summary()
    k = s["straggler_gpu_hours"] / (8 * 10 * 0.25)  # how many straggled: Binomial(400, 0.4)
    assert k == pytest.approx(round(k)) and abs(k - 160) < 4 * math.sqrt(400 * 0.4 * 0.6)


@pytest.mark.slow
def test_planned_interruptions_lose_no_work_and_hold_their_downtime():
    plan = run_with({"planned": {"rate_per_h": 0.05, "downtime": "1 h"}}, hours=100)
    rows = [simulate(plan, 3, k).summary() for k in range(1500)]
    planned = np.array([r["planned"] for r in rows], dtype=float)
    wall = np.array([r["makespan_days"] * 24 for r in rows])
    assert all(r["lost_gpu_hours"] == pytest.approx(0.0, abs=1e-9) for r in rows)
    assert abs(planned.mean() - 5.0) < 3 * sem(planned)  # Poisson(0.05 x 100)
    assert abs(wall.mean() - 100 * (1 + 0.05 * 1.0)) < 3 * sem(wall)
    assert rows[0]["failures"] == 0 and rows[0]["down_gpu_hours"] == pytest.approx(8 * rows[0]["planned"])


@pytest.mark.slow
def test_loss_spikes_roll_back_and_match_the_closed_form():
    # continuous free checkpoints: a spike at rate s throws away `rollback` hours of kept work (or
    # all of it, early on); with rollback b small against the run, E[wall] ~ W / (1 - s b)
    loaded = scenario([pool(count=16)], [{"name": "w", "hours_per_run": 50, "accelerators": 8,
                                          "loss_spike": {"rate_per_h": 0.02, "rollback": "2 h"}}],
                      {"checkpoint": {"interval": "auto", "write": 0}})
    plan = plan_of(loaded)
    rows = [simulate(plan, 4, k).summary() for k in range(2000)]
    wall = np.array([r["makespan_days"] * 24 for r in rows])
    lost = np.array([r["lost_gpu_hours"] for r in rows])
    spikes = np.array([r["loss_spikes"] for r in rows], dtype=float)
    assert abs(wall.mean() - 50 / (1 - 0.02 * 2)) < 3 * sem(wall) + 0.05  # early spikes lose less
    assert np.all(lost <= 16 * spikes + 1e-6)  # a spike loses at most its rollback (8 GPUs x 2 h)
    assert lost.mean() > 0.9 * 16 * spikes.mean()  # and all of it unless it comes in the first 2 h
    assert all(r["gpu_hours"] == pytest.approx(r["productive_gpu_hours"] + r["lost_gpu_hours"]
                                               + r["overhead_gpu_hours"]) for r in rows)


@pytest.mark.slow
def test_lemons_raise_the_mean_failure_rate_by_their_share():
    # every node of a 1-node run is a lemon with probability 0.2, failing 6x as often:
    # mean rate multiplier 1 + 0.2 x 5 = 2
    plan = run_with({"failure_rate_per_gpu_h": 0.002, "lemons": {"fraction": 0.2, "multiplier": 6}}, n=8)
    fails = np.array([simulate(plan, 6, k).summary()["failures"] for k in range(3000)], dtype=float)
    # each start draws its gang afresh; with continuous checkpoints the exposure is the 100 h of work
    assert abs(fails.mean() - 0.016 * 100 * 2.0) < 4 * sem(fails)


@pytest.mark.slow
def test_unrecoverable_failures_roll_back_one_more_checkpoint():
    loaded = scenario([pool(count=16)], [{"name": "w", "hours_per_run": 100, "accelerators": 8}],
                      {"failure_rate_per_gpu_h": 0.002, "unrecoverable_fraction": 1.0,
                       "checkpoint": {"interval": "5 h", "write": 0}})
    plan = plan_of(loaded)
    base = scenario([pool(count=16)], [{"name": "w", "hours_per_run": 100, "accelerators": 8}],
                    {"failure_rate_per_gpu_h": 0.002, "checkpoint": {"interval": "5 h", "write": 0}})
    a = np.array([simulate(plan, 8, k).summary()["lost_gpu_hours"] for k in range(1500)])
    b = np.array([simulate(plan_of(base), 8, k).summary()["lost_gpu_hours"] for k in range(1500)])
    assert a.mean() > b.mean() + 3 * math.hypot(sem(a), sem(b))
    runs = simulate(plan, 8, 3).run_records()
    assert runs[0].unrecoverable == runs[0].failures


def _node_loss(policy: str, spares: int = 0, pools=None, repair="5 h"):
    pools = pools or [pool(count=8, spares=spares)]
    return plan_of(scenario(pools, [{"name": "w", "hours_per_run": 100, "accelerators": 8, "on_node_loss": policy}],
                            {"failure_rate_per_gpu_h": 0.001, "repair": repair,
                             "checkpoint": {"interval": "auto", "write": 0}}))


@pytest.mark.slow
def test_waiting_for_a_repair_holds_the_other_nodes_for_the_repair():
    # one 8-GPU node, no spare: every failure waits 5 h for its repair: E[wall] = W (1 + lambda x 5 h)
    plan = _node_loss("wait")
    rows = [simulate(plan, 5, k).summary() for k in range(2000)]
    wall = np.array([r["makespan_days"] * 24 for r in rows])
    assert abs(wall.mean() - 100 * (1 + 0.008 * 5)) < 3 * sem(wall)
    for r in rows[:50]:
        assert r["repair_wait_gpu_hours"] == pytest.approx(8 * 5 * r["failures"])
        assert r["gpu_hours"] == pytest.approx(r["productive_gpu_hours"] + r["lost_gpu_hours"]
                                               + r["overhead_gpu_hours"])


def test_a_hot_spare_replaces_a_failed_node_at_once():
    plan = _node_loss("wait", spares=1, repair="1 h")
    rows = [simulate(plan, 5, k).summary() for k in range(500)]
    # one spare, 1 h repairs, a failure every 125 h on average: a second failure within the hour
    # of the first is rare; waits happen only then
    waited = sum(r["repair_wait_gpu_hours"] > 0 for r in rows)
    failed = sum(r["failures"] > 0 for r in rows)
    assert failed > 200 and waited < 0.05 * failed
    assert all(r["repair_wait_gpu_hours"] == 0 for r in rows if r["failures"] <= 1)


def test_move_and_best_go_to_a_pool_with_room():
    two = [pool(name="a", count=8), pool(name="b", count=8)]
    for policy in ("move", "best"):
        plan = _node_loss(policy, pools=two, repair="50 h")
        for k in range(40):
            rep = simulate(plan, 2, k)
            s = rep.summary()
            if policy == "move":
                assert s["repair_wait_gpu_hours"] == 0.0  # never holds nodes for a repair
            if s["failures"] == 1:  # moved to the other pool at once, no 50 h wait
                assert s["repair_wait_gpu_hours"] == 0.0
                assert rep.run_records()[0].pool == "b" and s["makespan_days"] * 24 < 100 + 1e-6


def test_repair_crews_serve_one_node_at_a_time():
    from sim.engine import Replication

    loaded = scenario([pool(count=32)], [{"name": "w", "hours_per_run": 1, "accelerators": 8}],
                      {"repair": "10 h", "repair_crews": 1})
    rep = Replication(plan_of(loaded), 0, 0)
    p = rep.pools[0]
    assert rep._nodes_failed(p, 1) is False and rep._nodes_failed(p, 1) is False
    assert p.free == 16 and p.repairing == 1 and len(p.repair_queue) == 1
    rep.env.run(until=10.5)
    assert p.free == 24 and p.repairing == 1  # the first is back; the second started at 10 h
    rep.env.run(until=20.5)
    assert p.free == 32 and p.repairing == 0


@pytest.mark.slow
def test_co_interruption_takes_every_run_on_the_pool_at_once():
    """Four 8-GPU runs on a 32-GPU spot pool: with co-interruption 1 every preemption takes all
    the runs then on the pool, so preemptions come in groups and there are far more of them."""
    def plan(co):
        spot = pool(count=32, pricing="spot", preemption={"rate_per_node_h": 0.002, "co_interruption": co})
        return plan_of(scenario([spot], [{"name": "w", "hours_per_run": 50, "accelerators": 8, "runs": 4}],
                                {"checkpoint": {"interval": "auto", "write": 0}}))
    alone, together = plan(0.0), plan(1.0)
    a = np.array([simulate(alone, 3, k).summary()["preemptions"] for k in range(1500)], dtype=float)
    b = np.array([simulate(together, 3, k).summary()["preemptions"] for k in range(1500)], dtype=float)
    # independent: each run ~ Poisson(0.002 x 50) = 0.1, so 0.4 in all
    assert abs(a.mean() - 0.4) < 3 * sem(a)
    assert b.mean() > 3 * a.mean()
    # the four start, are taken, restart and end together: preemptions come in fours
    assert b.max() >= 4 and np.all(b % 4 == 0)


def test_checkpoint_interval_used_is_recorded_per_run_and_in_the_manifest(cli, write, tmp_path):
    import json

    import pandas as pd

    from sim.reliability import daly_interval

    text = """\
    project: {name: t, start: 2026-01-01}
    pools: [{name: g, accelerator: h100, count: 8, price_usd_per_gpu_h: 1.0}]
    workloads: [{name: w, runs: 2, hours_per_run: 20 h, accelerators: 8}]
    reliability: {failure_rate_per_gpu_h: 0.001, checkpoint: {interval: auto, write: 6 min}}
    simulation: {priors: off}
    """
    code, _o, err = cli("run", write(text), "--reps", "3", "--workers", "1", "--out", tmp_path / "r")
    assert code == 0, err
    tau = daly_interval(0.1, 1 / (8 * 0.001))
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["checkpoint_interval_h"]["w"]["g"] == pytest.approx(tau)
    runs = pd.read_parquet(tmp_path / "r" / "runs.parquet")
    assert runs["ckpt_interval_h"].to_numpy() == pytest.approx(tau)


def test_lemon_nodes_are_a_population_kept_through_runs_failures_and_repairs():
    """Each node and spare a lemon with the lemon share, drawn once; runs take and give back their
    lemons; a failed lemon goes to repair and comes back a lemon (cures 0) or a good node (cures 1):
    when everything is done the pool holds every lemon it started with, less the cured ones."""
    from sim import rng as rngmod
    from sim.engine import Replication

    def plan(cures):
        return plan_of(scenario([pool(count=64, spares=2)], [{"name": "w", "runs": 6, "hours_per_run": 50,
                                                              "accelerators": 16}],
                                {"failure_rate_per_gpu_h": 0.002, "repair": "3 h", "failure_domains":
                                 {"nodes": 2, "rate_per_h": 0.002},
                                 "lemons": {"fraction": 0.3, "multiplier": 10, "repair_cures": cures},
                                 "checkpoint": {"interval": "auto", "write": 0}}))
    for cures in (0.0, 1.0):
        p = plan(cures)
        for k in range(20):
            start = int(rngmod.generator(0, k, "lemons").binomial(8 + 2, 0.3))  # 8 nodes and 2 spares
            rep = Replication(p, 0, k)
            rep.simulate()
            rep.env.run()  # the last repairs come back
            pool_ = rep.pools[0]
            left = pool_.lemons_free + pool_.lemons_spare
            assert pool_.spares_free == 2 and pool_.free == 64
            if cures == 0.0:
                assert left == start
            else:
                assert left <= start and (left < start or start == 0 or rep.summary()["failures"] == 0)
            assert all(r.lemons == 0 for r in rep.finished)


@pytest.mark.slow
def test_a_failure_falls_on_a_lemon_in_proportion_to_its_rate():
    """All nodes lemons (fraction 1): every failure is a lemon's, the rate is the multiplier times
    the base; with cures 1 and a repair, the failed lemons come back good and the rate falls."""
    def plan(cures):
        return plan_of(scenario([pool(count=16, spares=2)], [{"name": "w", "hours_per_run": 100,
                                                              "accelerators": 16}],
                                {"failure_rate_per_gpu_h": 0.0005, "repair": "1 h",
                                 "lemons": {"fraction": 1.0, "multiplier": 4, "repair_cures": cures},
                                 "checkpoint": {"interval": "auto", "write": 0}}))
    kept = np.array([simulate(plan(0.0), 3, k).summary()["failures"] for k in range(400)], dtype=float)
    assert abs(kept.mean() - 16 * 0.0005 * 4 * 100) < 3 * sem(kept)  # 3.2: every node a lemon throughout
    cured = np.array([simulate(plan(1.0), 3, k).summary()["failures"] for k in range(400)], dtype=float)
    assert cured.mean() < kept.mean() - 3 * sem(cured)


def _scripted(plan, draws):
    """A replication whose interruptions come from `draws` ((hours after the segment's start, kind),
    one per segment), for exact traces."""
    from sim.engine import Replication

    rep = Replication(plan, 0, 0)
    it = iter(draws)
    rep._next_interruption = lambda r, pool, others=None: next(it)
    return rep.simulate()


@pytest.mark.parametrize("kind", ["job", "planned"])
def test_exact_trace_detection_or_downtime_then_a_restart_that_fails(kind):
    """10 h of work, continuous free checkpoints, restart 15 min, detection (or planned downtime)
    30 min. Interrupted at 2 h; nothing strikes during the detection; the next draw (0.1 h) counts
    from its end, so it strikes during the restart, at 2.6 h; detection again, a whole restart,
    then the 8 h left: 2 + 0.5 + 0.1 + 0.5 + 0.25 + 8 = 11.35 h."""
    from sim.reliability import DONE, JOB_FAILURE, PLANNED

    rel = {"failure_rate_per_gpu_h": 0.0, "restart": "15 min", "checkpoint": {"interval": "auto", "write": 0}}
    if kind == "job":
        rel.update({"detect": "30 min", "job_failure_rate_per_h": 1e-9})
    else:
        rel["planned"] = {"rate_per_h": 1e-9, "downtime": "30 min"}
    plan = plan_of(scenario([pool(count=8)], [{"name": "w", "hours_per_run": 10, "accelerators": 8}], rel))
    k = JOB_FAILURE if kind == "job" else PLANNED
    s = _scripted(plan, [(2.0, k), (0.1, k), (math.inf, DONE)]).summary()
    assert s["makespan_days"] * 24 == pytest.approx(11.35, rel=1e-12)
    assert s["down_gpu_hours"] == pytest.approx(8 * 1.0, rel=1e-12)
    assert s["restart_gpu_hours"] == pytest.approx(8 * 0.35, rel=1e-12)
    assert s["productive_gpu_hours"] == pytest.approx(8 * 10, rel=1e-12)
    assert s["lost_gpu_hours"] == 0.0
    assert s["job_failures" if kind == "job" else "planned"] == 2
    assert s["gpu_hours"] == pytest.approx(8 * 11.35, rel=1e-12)


def test_exact_trace_an_eviction_during_the_detection():
    """Interrupted (job-level) at 23.8 h; pool a goes at 24 h, 0.2 h into the 30-minute detection: the
    run keeps its 23.8 h of work (continuous checkpoints), books 0.2 h of detection, moves to pool b
    and restarts there (15 min) for the 6.2 h left: ends at 24 + 0.25 + 6.2 = 30.45 h."""
    from sim.reliability import DONE, JOB_FAILURE

    rel = {"failure_rate_per_gpu_h": 0.0, "job_failure_rate_per_h": 1e-9, "detect": "30 min", "restart": "15 min",
           "checkpoint": {"interval": "auto", "write": 0}}
    pools = [pool("a", count=8, capacity_changes=[{"date": "2026-01-02", "count": 0}]), pool("b", count=8)]
    plan = plan_of(scenario(pools, [{"name": "w", "hours_per_run": 30, "accelerators": 8}], rel))
    rep = _scripted(plan, [(23.8, JOB_FAILURE), (math.inf, DONE), (math.inf, DONE)])  # (a segment drawn, then evicted)
    s = rep.summary()
    assert s["makespan_days"] * 24 == pytest.approx(30.45, rel=1e-12)
    assert s["down_gpu_hours"] == pytest.approx(8 * 0.2, rel=1e-9)
    assert s["restart_gpu_hours"] == pytest.approx(8 * 0.25, rel=1e-12)
    assert s["productive_gpu_hours"] == pytest.approx(8 * 30, rel=1e-12)
    assert s["lost_gpu_hours"] == 0.0 and s["job_failures"] == 1 and s["preemptions"] == 1
    assert s["events"] == 2  # run segments: before the failure, and on pool b (none in the detection cut short)
    assert s["gpu_hours"] == pytest.approx(8 * 30.45, rel=1e-12)
