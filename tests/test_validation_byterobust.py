"""ByteRobust (Wan et al., SOSP 2025) against trainsim (docs/validation.md): a 9,600-GPU job of
about three months with fast failure detection and recovery reported an ETTR of about 97%.

The failure rates are field data known before that paper, never solved back from the 97%:
Kokolis et al. (HPCA 2025) hardware failures, 6.50 per 1,000 node-days at 8 GPUs a node, and the
job-level rate of tests/test_validation_reliability.py (its 1,024-GPU calibration). Recovery is
what "fast" means here: detection 30 s, a 5-minute restart, and checkpoints at Daly's optimum for
an in-memory write of 0.04 s. The checks: the engine's mean wall time and ETTR against Daly's
complete model (detection added: no failure can strike during it), the ETTR in the mid-90s band,
and a 10-minute detection lowering it by far more than the noise of the paired difference.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import simulate
from sim.reliability import expected_wall_time
from tests.test_engine import plan_of, pool, scenario, sem
from tests.test_validation_reliability import PER_GPU_H, job_rate

GPUS = 9600
WORK = "90 d"  # failure-free compute of the run: about three months
FAST = {"detect": "30 s", "restart": "5 min", "checkpoint": {"interval": "auto", "write": "0.04 s"}}
# What "mid-90s" is taken to mean, and why this width: at the field failure rates above, restarts of
# 2 to 8 minutes (detection 30 s) give 98.0% to 94.0% in the closed form; the paper's 97% is inside.
BAND = (0.94, 0.98)


def byterobust_plan(detect: str = "30 s", job: float | None = None, restart: str = "5 min"):
    rel = {**FAST, "detect": detect, "restart": restart, "failure_rate_per_gpu_h": PER_GPU_H,
           "job_failure_rate_per_h": job_rate() if job is None else job}
    return plan_of(scenario([pool(count=GPUS)], [{"name": "pretrain", "hours_per_run": WORK, "accelerators": GPUS}],
                            rel))


def closed_form(plan) -> tuple[float, float, float]:
    """(expected wall hours, expected interruptions, ETTR = work / expected wall) of the one run:
    Daly's complete model for the work, restarts and checkpoint writes (interruptions strike
    through all of them, so the exposed time is M x the interruptions), plus a detection of D
    after each interruption, during which nothing strikes: wall = T (1 + D / M)."""
    w = plan.workloads[0]
    m = 1.0 / (w.fail_rate_per_h + w.job_fail_rate_per_h)
    work = w.length_h_on[0]
    exposed = expected_wall_time(work, w.ckpt_interval_h_on[0], w.write_h, m, w.restart_h_on[0])
    return exposed * (1.0 + w.detect_h / m), exposed / m, work / (exposed * (1.0 + w.detect_h / m))


def simulated(plan, reps: int, seed: int = 2025) -> dict[str, np.ndarray]:
    out = {"wall": [], "ettr": [], "interruptions": []}
    for k in range(reps):
        rep = simulate(plan, seed, k)
        s = rep.summary()
        out["wall"].append(rep.makespan_h())
        out["ettr"].append(s["ettr"])
        out["interruptions"].append(s["failures"] + s["job_failures"])
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def test_inputs_are_the_field_rates_and_fast_recovery():
    w = byterobust_plan().workloads[0]
    assert w.fail_rate_per_h == pytest.approx(GPUS * 6.50e-3 / 24 / 8)  # 0.325 per hour
    assert w.job_fail_rate_per_h == pytest.approx(1 / 7.9 - 1024 * 6.50e-3 / 24 / 8)  # 0.092 per hour
    assert 1 / (w.fail_rate_per_h + w.job_fail_rate_per_h) == pytest.approx(2.40, abs=0.01)  # hours between
    assert w.detect_h * 3600 == pytest.approx(30) and w.restart_h_on[0] * 60 == pytest.approx(5)
    assert 20 < w.ckpt_interval_h_on[0] * 3600 < 30  # Daly's interval for a 0.04 s write: about 26 s


def test_ettr_lands_in_the_mid_90s_and_follows_the_closed_form():
    plan = byterobust_plan()
    wall_cf, n_cf, ettr_cf = closed_form(plan)
    assert BAND[0] < ettr_cf < BAND[1]
    sim = simulated(plan, 40)
    assert BAND[0] < sim["ettr"].mean() < BAND[1]
    assert abs(sim["ettr"].mean() - ettr_cf) < 3 * sem(sim["ettr"])
    assert abs(sim["wall"].mean() - wall_cf) < 3 * sem(sim["wall"])
    assert abs(sim["interruptions"].mean() - n_cf) < 3 * sem(sim["interruptions"])


def test_a_ten_minute_detection_lowers_ettr_measurably():
    fast, slow = simulated(byterobust_plan("30 s"), 40), simulated(byterobust_plan("10 min"), 40)
    diff = fast["ettr"] - slow["ettr"]  # paired: the same seeds and replications
    assert diff.mean() > 3 * sem(diff)
    expect = closed_form(byterobust_plan("30 s"))[2] - closed_form(byterobust_plan("10 min"))[2]
    assert abs(diff.mean() - expect) < 3 * sem(diff)
    assert expect == pytest.approx(0.059, abs=0.002)  # about six points of ETTR


@pytest.mark.slow
@pytest.mark.parametrize("detect, job, restart", [("30 s", None, "5 min"), ("10 min", None, "5 min"),
                                                  ("30 s", None, "8 min")])
def test_engine_matches_the_closed_form_closely(detect, job, restart):
    """500 replications: the mean ETTR, wall time and interruption count within 3 standard errors
    of the closed form (a standard error of ETTR near 0.008 points)."""
    plan = byterobust_plan(detect, job, restart)
    wall_cf, n_cf, ettr_cf = closed_form(plan)
    sim = simulated(plan, 500, seed=7)
    assert abs(sim["ettr"].mean() - ettr_cf) < 3 * sem(sim["ettr"])
    assert abs(sim["wall"].mean() - wall_cf) < 3 * sem(sim["wall"])
    assert abs(sim["interruptions"].mean() - n_cf) < 3 * sem(sim["interruptions"])


CASES = (("30 s", None, "5 min"), ("10 min", None, "5 min"), ("30 s", 0.0, "5 min"), ("30 s", None, "2 min"),
         ("30 s", None, "8 min"))


def main(reps: int = 1000, seed: int = 7) -> None:
    """The figures of docs/validation.md: PYTHONPATH=. python -m tests.test_validation_byterobust"""
    ettr = {}
    for detect, job, restart in CASES:
        plan = byterobust_plan(detect, job, restart)
        wall_cf, n_cf, ettr_cf = closed_form(plan)
        s = simulated(plan, reps, seed)
        ettr[detect, job, restart] = s["ettr"]
        p5, p95 = np.percentile(s["ettr"], [5, 95])
        print(f"detect {detect}, restart {restart}, job-level {'off' if job == 0.0 else 'on'}: "
              f"ETTR {s['ettr'].mean():.3%} +- {sem(s['ettr']):.3%} (closed form {ettr_cf:.3%}; P5-P95 "
              f"{p5:.2%}-{p95:.2%}), wall {s['wall'].mean() / 24:.2f} d +- {sem(s['wall']) / 24:.3f} "
              f"({wall_cf / 24:.2f}), interruptions {s['interruptions'].mean():.1f} +- "
              f"{sem(s['interruptions']):.1f} ({n_cf:.1f})")
    d = ettr[CASES[0]] - ettr[CASES[1]]
    cf = closed_form(byterobust_plan(*CASES[0]))[2] - closed_form(byterobust_plan(*CASES[1]))[2]
    print(f"10-minute detection, paired drop: {d.mean():.3%} +- {sem(d):.3%} ({d.mean() / sem(d):,.0f} SE; "
          f"closed form {cf:.3%}); closed form at a 3-minute restart: "
          f"{closed_form(byterobust_plan(restart='3 min'))[2]:.3%}")


if __name__ == "__main__":
    main()
