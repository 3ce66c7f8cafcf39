"""Budget and schedule risk, spend by calendar month, and the cost breakdown in summary.json."""

import json

import numpy as np
import pandas as pd
import pytest

from sim.engine import simulate
from sim.loader import load_data
from sim.plan import build_plan
from sim.schema import nominal_scenario
from tests.conftest import MINIMAL


def rep_of(raw):
    loaded = load_data(raw, "t")
    return simulate(build_plan(nominal_scenario(loaded.scenario), loaded.catalog), 0, 0).summary()


def base(pools, workloads, **extra):
    return {"project": {"name": "t", "start": "2026-01-01"}, "pools": pools, "workloads": workloads,
            "simulation": {"priors": "off"}, **extra}


def test_a_run_across_a_month_boundary_is_split_exactly():
    s = rep_of(base([{"name": "p", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0}],
                    [{"name": "w", "hours_per_run": 48, "accelerators": 8, "earliest_start": "2026-01-31"}]))
    assert s["spend_usd_2026-01"] == pytest.approx(8 * 24 * 2.0)
    assert s["spend_usd_2026-02"] == pytest.approx(8 * 24 * 2.0)
    assert s["cost_usd"] == pytest.approx(8 * 48 * 2.0)


def test_reserved_and_owned_spend_by_month():
    s = rep_of(base([{"name": "r", "accelerator": "h100", "count": 8, "pricing": "reserved", "term": "1 y",
                      "price_usd_per_gpu_h": 1.0},
                     {"name": "o", "accelerator": "h100", "count": 8, "pricing": "owned",
                      "price_usd_per_gpu_h": 0.5, "energy_usd_per_kwh": 0.1}],
                    [{"name": "w", "runs": 2, "hours_per_run": "40 d", "accelerators": 8}]))
    days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    for month, d in zip(range(1, 13), days, strict=True):
        assert s[f"spend_usd_2026-{month:02d}"] >= 8 * d * 24 * 1.0 - 1e-6  # the reservation, every month
    assert s["spend_usd_2026-03"] == pytest.approx(8 * 31 * 24 * 1.0)  # owned pool was done by 2026-02-10
    months = sum(v for k, v in s.items() if k.startswith("spend_usd_"))
    assert months == pytest.approx(s["cost_usd"], rel=1e-12)
    assert s["cost_usd_tier_reserved"] == pytest.approx(8 * 8760 * 1.0)


def test_risk_budget_deadline_and_breakdown(cli, write, tmp_path):
    text = MINIMAL.replace("tokens: 20B", "tokens: {dist: uniform, min: 10B, max: 30B}").replace(
        "  start: 2026-01-01", "  start: 2026-01-01\n  budget_usd: 1350\n  deadline: 2026-01-02\n").replace(
        "runs: 2", "runs: 8")
    code, out, err = cli("run", write(text), "--reps", "200", "--workers", "1", "--out", tmp_path / "r", "--no-priors")
    assert code == 0, err
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    reps = pd.read_parquet(tmp_path / "r" / "replications.parquet")
    r = s["risk"]
    assert r["p_over_budget"] == pytest.approx((reps.cost_usd > 1350).mean())
    assert 0.2 < r["p_over_budget"] < 0.8
    lo, hi = r["p_over_budget_ci95"]
    assert lo < r["p_over_budget"] < hi
    assert r["budget_for_confidence"]["p90"] == pytest.approx(np.percentile(reps.cost_usd, 90))
    # 4 waves of two 5-16 h runs: some finish by the end of the deadline day (48 h), some after
    assert r["p_late"] == pytest.approx((reps.makespan_days > 2).mean()) and 0 < r["p_late"] < 1
    assert "P(cost > budget $1.35k)" in out and "P(finish after 2026-01-02)" in out
    months = [m["month"] for m in s["spend_by_month"]]
    assert months == ["2026-01"]
    assert s["spend_by_month"][0]["p50"] == pytest.approx(np.percentile(reps["spend_usd_2026-01"], 50))
    b = s["breakdown"]
    assert b["cost_usd_by_workload"]["train"] == pytest.approx(reps.cost_usd.mean())
    assert sum(b["gpu_hours_shares"].values()) == pytest.approx(1.0)


def test_a_run_across_a_week_boundary_is_split_exactly_by_week():
    # 2026-01-01 is a Thursday: the first week is the project's 4 days to Monday 2026-01-05.
    s = rep_of(base([{"name": "p", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0}],
                    [{"name": "w", "hours_per_run": 48, "accelerators": 8, "earliest_start": "2026-01-04"}]))
    assert s["spend_week_usd_2026-01-01"] == pytest.approx(8 * 24 * 2.0)
    assert s["spend_week_usd_2026-01-05"] == pytest.approx(8 * 24 * 2.0)
    assert s["spend_usd_2026-01"] == pytest.approx(s["cost_usd"])


def test_a_two_week_project_shows_its_spend_by_week(cli, write, tmp_path):
    from sim.outputs import NOMINAL_NOTE
    from sim.report import plot_spend_fan

    text = MINIMAL.replace("runs: 2", "runs: 6").replace("count: 16", "count: 8").replace("tokens: 20B", "tokens: 200B")
    code, out, err = cli("run", write(text), "--reps", "3", "--workers", "1", "--out", tmp_path / "w", "--no-priors")
    assert code == 0, err
    s = json.loads((tmp_path / "w" / "summary.json").read_text())
    # six 105-hour runs one after the other: 26 days from Thursday 2026-01-01, five weeks
    assert s["spend_period"] == "week"
    weeks = [r["week"] for r in s["spend_by_period"]]
    assert weeks == ["2026-01-01", "2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26"]
    assert sum(r["mean"] for r in s["spend_by_period"]) == pytest.approx(s["metrics"]["cost_usd"]["mean"])
    assert len(s["spend_by_month"]) == 1  # by month: the single dot of the issue
    assert "spend by week (its first day)" in out and "2026-01-26" in out
    assert NOMINAL_NOTE in out and NOMINAL_NOTE in (tmp_path / "w" / "report.md").read_text()  # item 7's column
    ax = plot_spend_fan(s)
    assert ax.get_xlabel() == "week (its first day)" and len(ax.get_xticks()) == 5
    # a year-long reservation is shown by month: tests/test_estimate.py (the reservation's test)
