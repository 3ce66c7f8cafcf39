"""Reliability at scale against field figures (docs/validation.md): Kokolis et al. (HPCA 2025)
job mean time to failure with hardware and job-level failures. The inputs are the paper's own
field rates; the check is the engine against the closed form it should follow, and the figure
the closed form gives beside the paper's (printed in docs/validation.md, not forced to match)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import simulate
from sim.plan import interruption_rate_per_h
from tests.test_engine import plan_of, pool, scenario, sem

NODE_DAY = 6.50e-3  # failures per node-day, RSC-1 (Kokolis et al. 2025)
PER_GPU_H = NODE_DAY / 24 / 8  # 8 GPUs a node
JOB_1024_MTTF_H = 7.9  # measured job MTTF at 1,024 GPUs (same paper)


def job_rate() -> float:
    """Job-level failures per run-hour, from the 1,024-GPU measurement less the hardware part."""
    return 1 / JOB_1024_MTTF_H - 1024 * PER_GPU_H


def mttf_plan(gpus: int, job: float):
    return plan_of(scenario([pool(count=gpus)], [{"name": "w", "hours_per_run": 1000, "accelerators": gpus}],
                            {"failure_rate_per_gpu_h": PER_GPU_H, "job_failure_rate_per_h": job,
                             "checkpoint": {"interval": "auto", "write": 0}}))


def test_hardware_alone_predicts_the_papers_28_8_hours_at_1024_gpus():
    p = mttf_plan(1024, 0.0)
    assert 1 / interruption_rate_per_h(p.workloads[0], p.pools[0]) == pytest.approx(28.8, abs=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("gpus", [1024, 16384, 131072])
def test_engine_job_mttf_matches_the_two_source_closed_form(gpus):
    p = mttf_plan(gpus, job_rate())
    expect = 1 / interruption_rate_per_h(p.workloads[0], p.pools[0])
    # continuous free checkpoints, no restart: interruptions over 1000 h of work are Poisson
    n = np.array([sum(simulate(p, 11, k).summary()[c] for c in ("failures", "job_failures")) for k in range(60)],
                 dtype=float)
    assert abs(n.mean() - 1000 / expect) < 3 * sem(n)
    if gpus == 1024:
        assert expect == pytest.approx(JOB_1024_MTTF_H)
