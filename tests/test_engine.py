"""The engine against closed forms, exact traces and the queueing and checkpoint/restart theory.

Statistical checks use tolerances from the standard error of the simulated quantity (3 SE for a
mean), never from taste.
"""

import math

import numpy as np
import pytest

from sim.deterministic import estimate
from sim.engine import SimulationError, simulate
from sim.loader import load_data
from sim.plan import build_plan
from sim.reliability import daly_interval, expected_wall_time, young_interval
from sim.schema import nominal_scenario


def scenario(pools, workloads, reliability=None, priors: bool = False, **extra):
    """A loaded scenario; without the built-in priors unless asked (the closed forms of these
    tests are for the inputs written, nothing assumed)."""
    raw = {"project": {"name": "t", "start": "2026-01-01"}, "pools": pools, "workloads": workloads}
    if reliability:
        raw["reliability"] = reliability
    raw.update(extra)
    if not priors:
        raw.setdefault("simulation", {}).setdefault("priors", "off")
    return load_data(raw, "test")


def plan_of(loaded):
    return build_plan(nominal_scenario(loaded.scenario), loaded.catalog)


def pool(name="p", count=16, price=2.0, **kw):
    return {"name": name, "accelerator": "h100", "count": count, "node_size": 8, "price_usd_per_gpu_h": price, **kw}


def sem(x):
    x = np.asarray(x, dtype=float)
    return x.std(ddof=1) / math.sqrt(len(x))


# --- deterministic ------------------------------------------------------------------------------
def test_one_run_no_failures_matches_the_estimate_exactly():
    loaded = scenario([pool(count=512)], [{"name": "w", "params": "7B", "tokens": "2T", "accelerators": 512,
                                            "mfu": 0.4}])
    rep = simulate(plan_of(loaded), 0, 0)
    s = rep.summary()
    est = estimate(loaded)
    hours = 6 * 7e9 * 2e12 / (512 * 989e12 * 0.4) / 3600
    assert s["makespan_days"] * 24 == pytest.approx(hours, rel=1e-12)
    assert s["gpu_hours"] == pytest.approx(est.total["gpu_hours"], rel=1e-12)
    assert s["cost_usd"] == pytest.approx(est.total["cost_usd"], rel=1e-12)
    assert s["productive_gpu_hours"] == pytest.approx(s["gpu_hours"], rel=1e-12)
    assert s["lost_gpu_hours"] == s["overhead_gpu_hours"] == 0.0
    assert s["energy_kwh"] == pytest.approx(est.total["energy_kwh"], rel=1e-12)


def test_exact_trace_gang_allocation_and_backfill():
    # 16 GPUs. Queue order: a0 (16 GPUs, 10 h), b0, b1, b2 (8 GPUs, 5 h each).
    # t=0 a0 takes all 16; t=10 b0 and b1 start; t=15 b2; makespan 20 h.
    loaded = scenario([pool()], [{"name": "a", "hours_per_run": 10, "accelerators": 16},
                                 {"name": "b", "runs": 3, "hours_per_run": 5, "accelerators": 8}])
    rep = simulate(plan_of(loaded), 0, 0, trace=True)
    assert rep.trace == [
        (0.0, 0, 16, "a", 0), (10.0, 0, -16, "a", 0), (10.0, 0, 8, "b", 0), (10.0, 0, 8, "b", 1),
        (15.0, 0, -8, "b", 0), (15.0, 0, 8, "b", 2), (15.0, 0, -8, "b", 1), (20.0, 0, -8, "b", 2),
    ]
    s = rep.summary()
    assert s["makespan_days"] * 24 == 20.0
    assert s["mean_queue_wait_h"] == pytest.approx((0 + 10 + 10 + 15) / 4)
    assert s["cost_usd"] == pytest.approx(2.0 * (16 * 10 + 3 * 8 * 5))


def test_backfill_versus_strict_fifo():
    # 16 GPUs: a (8 GPUs, 10 h) runs; big (16 GPUs) waits; small (8 GPUs, 2 h) may backfill.
    work = [{"name": "a", "hours_per_run": 10, "accelerators": 8},
            {"name": "big", "hours_per_run": 1, "accelerators": 16},
            {"name": "small", "hours_per_run": 2, "accelerators": 8}]
    ends = {}
    for policy in ("fifo_backfill", "fifo"):
        rep = simulate(plan_of(scenario([pool()], work, simulation={"scheduler": policy})), 0, 0)
        ends[policy] = {r.wl.w.name: r.end for r in rep.finished}
    assert ends["fifo_backfill"] == {"a": 10.0, "small": 2.0, "big": 11.0}
    assert ends["fifo"] == {"a": 10.0, "big": 11.0, "small": 13.0}


def test_priority_policy_runs_higher_priority_first():
    work = [{"name": "low", "runs": 2, "hours_per_run": 1, "accelerators": 16},
            {"name": "high", "runs": 1, "hours_per_run": 1, "accelerators": 16, "priority": 5}]
    rep = simulate(plan_of(scenario([pool()], work, simulation={"scheduler": "priority"})), 0, 0)
    assert {(r.wl.w.name, r.idx): r.first_start for r in rep.finished} == {
        ("high", 0): 0.0, ("low", 0): 1.0, ("low", 1): 2.0}


def test_dependencies_earliest_start_and_max_concurrent():
    work = [{"name": "sweep", "runs": 4, "hours_per_run": 3, "accelerators": 8, "max_concurrent": 1},
            {"name": "final", "hours_per_run": 2, "accelerators": 16, "after": ["sweep"]},
            {"name": "late", "hours_per_run": 1, "accelerators": 8, "earliest_start": "2026-01-03"}]
    rep = simulate(plan_of(scenario([pool()], work)), 0, 0)
    start = {(r.wl.w.name, r.idx): r.first_start for r in rep.finished}
    assert [start[("sweep", i)] for i in range(4)] == [0.0, 3.0, 6.0, 9.0]
    assert start[("final", 0)] == 12.0
    assert start[("late", 0)] == 48.0


def test_exponential_price_decline_is_integrated_exactly():
    loaded = scenario([pool(count=8, price_curve={"kind": "exponential", "annual_decline": 0.5})],
                      [{"name": "w", "hours_per_run": "1 y", "accelerators": 8}])
    s = simulate(plan_of(loaded), 0, 0).summary()
    # 8 GPUs x integral of 2 x 0.5^(t / 1 y) over one year = 8 x 2 x 8760 x 0.5 / ln 2
    assert s["cost_usd"] == pytest.approx(8 * 2 * 8760 * 0.5 / math.log(2), rel=1e-12)


def test_reserved_pays_whole_term_even_when_idle():
    loaded = scenario([pool("res", count=8, pricing="reserved", term="1 y")],
                      [{"name": "w", "hours_per_run": 100, "accelerators": 8}])
    s = simulate(plan_of(loaded), 0, 0).summary()
    assert s["cost_usd"] == pytest.approx(8 * 8760 * 2.0)
    assert s["idle_gpu_hours"] == pytest.approx(8 * (8760 - 100))


def test_owned_pays_capital_over_the_project_plus_energy():
    loaded = scenario([{"name": "own", "accelerator": "h100", "count": 16, "node_size": 8, "pricing": "owned",
                        "purchase_usd_per_gpu": 35040, "lifetime": "4 y", "energy_usd_per_kwh": 0.1}],
                      [{"name": "w", "hours_per_run": 10, "accelerators": 8}],
                      carbon={"pue": 1.0, "power_factor": 1.0, "idle_power_factor": 0.25})
    s = simulate(plan_of(loaded), 0, 0).summary()
    busy_kwh, idle_kwh = 80 * 0.7, 80 * 0.7 * 0.25  # 8 GPUs busy, 8 idle, for 10 h, H100 700 W
    assert s["energy_kwh"] == pytest.approx(busy_kwh + idle_kwh)
    assert s["cost_usd"] == pytest.approx(16 * 10 * 1.0 + (busy_kwh + idle_kwh) * 0.1)
    assert s["idle_gpu_hours"] == pytest.approx(80)


def test_capacity_arriving_later():
    loaded = scenario([pool(count=8, capacity_changes=[{"date": "2026-01-02", "count": 16}])],
                      [{"name": "w", "hours_per_run": 1, "accelerators": 16}])
    rep = simulate(plan_of(loaded), 0, 0)
    assert rep.finished[0].first_start == 24.0


def test_early_stop_and_abandoned_runs():
    loaded = scenario([pool()], [
        {"name": "sweep", "runs": 10, "hours_per_run": 10, "accelerators": 8,
         "early_stop": {"fraction_of_runs": 0.5, "at": 0.2}},
        {"name": "doomed", "hours_per_run": 10, "accelerators": 8,
         "divergence": {"probability": 1, "at": 0.3, "rerun": False}}])
    rep = simulate(plan_of(loaded), 0, 0)
    s = rep.summary()
    sweep = sorted((r for r in rep.finished if r.wl.w.name == "sweep"), key=lambda r: r.idx)
    assert [r.alloc_gpu_h for r in sweep] == pytest.approx([16.0] * 5 + [80.0] * 5)
    doomed = next(r for r in rep.finished if r.wl.w.name == "doomed")
    assert doomed.abandoned and doomed.lost == pytest.approx(8 * 3) and doomed.productive == 0
    assert s["lost_gpu_hours"] == pytest.approx(24)


def test_a_project_that_cannot_finish_is_stopped_with_a_message():
    loaded = scenario([pool()], [{"name": "w", "hours_per_run": "60 y", "accelerators": 8}])
    with pytest.raises(SimulationError, match="passed its horizon"):
        simulate(plan_of(loaded), 0, 0)
    ended = scenario([pool("r", count=8, pricing="reserved", term="1 y")],
                     [{"name": "w", "runs": 2, "hours_per_run": "200 d", "accelerators": 8}])
    with pytest.raises(SimulationError, match="stalled"):
        simulate(plan_of(ended), 0, 0)


# --- failures and checkpoints ------------------------------------------------------------------
def one_run(rate, work, interval, write, restart=0.0, n=8):
    return scenario([pool(count=n)], [{"name": "w", "hours_per_run": work, "accelerators": n}],
                    {"failure_rate_per_gpu_h": rate, "restart": restart,
                     "checkpoint": {"interval": interval, "write": write}})


def test_failure_counts_are_poisson_with_the_right_mean():
    # continuous free checkpoints (auto, write 0) and no restart time: nothing is lost, so the
    # exposure is exactly the 100 h of work and failures ~ Poisson(8 GPUs x 0.01 /GPU-h x 100 h = 8)
    plan = plan_of(one_run(0.01, 100, "auto", 0, restart=0.0))
    counts = np.array([simulate(plan, 7, k).finished[0].failures for k in range(2000)])
    assert abs(counts.mean() - 8.0) < 3 * math.sqrt(8.0 / len(counts))
    assert counts.var(ddof=1) == pytest.approx(8.0, rel=0.15)  # Poisson: variance = mean
    mk = np.array([simulate(plan, 7, k).makespan_h() for k in range(200)])
    assert np.all(mk >= 100.0 * (1 - 1e-12))


def test_failures_strike_during_restarts():
    # with a 0.5 h restart that failures can interrupt, each failure while computing brings
    # e^{lam R} - 1 more on average: 8 x e^{0.08 x 0.5} in all
    plan = plan_of(one_run(0.01, 100, "auto", 0, restart=0.5))
    counts = np.array([simulate(plan, 7, k).finished[0].failures for k in range(3000)], dtype=float)
    assert abs(counts.mean() - 8.0 * math.exp(0.04)) < 3 * sem(counts)
    assert abs(counts.mean() - 8.0) > 3 * sem(counts)


@pytest.mark.parametrize("interval, write, restart", [
    (2.0, 0.25, 0.0), (2.0, 0.25, 0.25), (2.0, 0.25, 2.5),
    *(pytest.param(*case, marks=pytest.mark.slow)
      for case in ((5.0, 0.0, 12.5), (2.0, 0.25, 25.0), ("none", 0.0, 25.0)))])
def test_mean_wall_time_matches_dalys_complete_model(interval, write, restart):
    """M = 1 / (8 x 0.005) = 25 h between failures, 50 h of work, R/M from 0 to 1: failures strike
    during checkpoint writes and restarts as well (Daly 2006, the complete model)."""
    m = 1 / (8 * 0.005)
    plan = plan_of(one_run(0.005, 50, interval, write, restart))
    wall = np.array([simulate(plan, 3, k).makespan_h() for k in range(3000)])
    tau = math.inf if interval == "none" else interval
    expected = expected_wall_time(50, tau, write, m, restart)
    assert abs(wall.mean() - expected) < 3 * sem(wall), (wall.mean(), expected)
    # the simpler model (no failure during a restart) is told apart where R/M is large
    if restart / m >= 0.5:
        simple = (m + restart) / (m * math.exp(restart / m)) * expected
        assert abs(wall.mean() - simple) > 3 * sem(wall)


@pytest.mark.parametrize("ratio", [0.0004, 0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0])
def test_daly_interval_against_a_numerical_minimum_of_the_complete_model(ratio):
    """Daly's higher-order interval against scipy's minimum of the complete model's time per unit
    of work, M e^{R/M} (e^{(tau+delta)/M} - 1) / tau (R only scales it): the interval within 0.5%
    while delta/M <= 0.2, the expected time within 0.5% for every delta/M up to 1."""
    from scipy.optimize import minimize_scalar

    m = 25.0
    delta = ratio * m

    def per_work(tau):
        return m * math.exp(3.0 / m) * math.expm1((tau + delta) / m) / tau

    best = minimize_scalar(per_work, bounds=(1e-6, 50 * m), method="bounded", options={"xatol": 1e-10}).x
    tau = daly_interval(delta, m)
    if ratio <= 0.2:
        assert tau == pytest.approx(best, rel=0.005)
    assert per_work(tau) == pytest.approx(per_work(best), rel=0.005)
    assert per_work(tau) >= per_work(best) * (1 - 1e-12)


def test_auto_interval_is_the_daly_optimum():
    m, delta = 25.0, 0.25
    tau = daly_interval(delta, m)
    grid = np.linspace(0.2, 10, 2000)
    best = grid[np.argmin([expected_wall_time(500, t, delta, m) for t in grid])]
    assert expected_wall_time(500, tau, delta, m) <= 1.001 * expected_wall_time(500, best, delta, m)
    assert young_interval(delta, m) == pytest.approx(math.sqrt(2 * delta * m))
    # and the engine uses it: simulated mean at `auto` matches the formula at Daly's interval
    plan = plan_of(one_run(0.005, 50, "auto", delta))
    assert plan.workloads[0].ckpt_interval_h_on[0] == pytest.approx(tau)
    wall = np.array([simulate(plan, 5, k).makespan_h() for k in range(3000)])
    assert abs(wall.mean() - expected_wall_time(50, tau, delta, m)) < 3 * sem(wall)


# --- queueing ------------------------------------------------------------------------------------
def erlang_c_wait(lam, mu, c):
    a = lam / mu
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - lam)


@pytest.mark.slow
def test_mm_c_queue_waits():
    # c = 4 one-GPU servers, arrivals every 0.3125 h on average (lambda 3.2/h), exponential runs of
    # mean 1 h (mu 1/h): rho = 0.8, Erlang-C mean wait 0.7455 h
    lam, mu, c = 3.2, 1.0, 4
    loaded = scenario([{"name": "p", "accelerator": "h100", "count": c, "node_size": 1,
                        "price_usd_per_gpu_h": 1.0}],
                      [{"name": "jobs", "runs": 4000, "hours_per_run": 1 / mu, "accelerators": 1,
                        "run_length": {"kind": "exponential"},
                        "arrivals": {"kind": "poisson", "mean_interval": 1 / lam}}])
    plan = plan_of(loaded)
    means = []
    for k in range(12):
        rep = simulate(plan, 11, k)
        waits = sorted(rep.finished, key=lambda r: r.submit_t)[500:]  # drop the warm-up
        means.append(np.mean([r.wait_h for r in waits]))
    expected = erlang_c_wait(lam, mu, c)
    assert abs(np.mean(means) - expected) < 3 * sem(means), (np.mean(means), expected)


# --- spot -----------------------------------------------------------------------------------------
def test_preemption_moves_runs_to_the_fallback_pool():
    loaded = scenario(
        [pool("spot", count=8, pricing="spot", price=1.0, preemption={"rate_per_node_h": 0.05, "notice": "2 min"},
              fallback="ondemand"),
         pool("ondemand", count=8, price=3.0)],
        [{"name": "w", "runs": 2, "hours_per_run": 40, "accelerators": 8, "pools": ["spot"]}],
        {"checkpoint": {"interval": "1 h", "write": "1 min"}, "restart": "10 min"})
    plan = plan_of(loaded)
    reps = [simulate(plan, 1, k) for k in range(300)]
    pre = np.array([sum(r.preemptions for r in rep.finished) for rep in reps])
    assert pre.mean() > 0.5
    moved = sum(1 for rep in reps for r in rep.finished if r.preemptions and r.pool.p.name == "ondemand")
    assert moved > 0
    for rep in reps:
        for r in rep.finished:
            assert r.alloc_gpu_h == pytest.approx(r.productive + r.lost + r.overhead)
            assert r.productive == pytest.approx(8 * 40)


def test_band_is_turned_into_a_rate():
    from sim.reliability import band_rate_per_node_h

    loaded = scenario([pool("s", count=8, pricing="spot", price=1.0, preemption={"band": "5-10%"})],
                      [{"name": "w", "hours_per_run": 1, "accelerators": 8}])
    assert plan_of(loaded).pools[0].preempt_rate_per_node_h == pytest.approx(band_rate_per_node_h(0.075))
    assert band_rate_per_node_h(0.075) == pytest.approx(-math.log(0.925) / 730)
