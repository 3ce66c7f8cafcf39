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
