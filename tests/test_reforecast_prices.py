"""A random-walk price in a re-forecast (issue 14): the walk restarts at the as-of date, with the
same drift and volatility, from the price last paid on the pool, else from the given price carried
along the expected path (the decline compounded to the as-of date, and the jumps passed at their
expected effect). With zero volatility the path is the drift itself, so the remaining cost has a
closed form."""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import pytest

import sim
from sim import reforecasting as rf
from sim.loader import load_data
from tests.test_reforecast import Acts, Run

DECLINE = 0.2
AS_OF = datetime(2026, 7, 2)  # 182 days after the start
YEARS = (AS_OF.date() - date(2026, 1, 1)).days / 365.25


def walk(**curve):
    return {"project": {"name": "w", "start": "2026-01-01"},
            "pools": [{"name": "g", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0,
                       "price_curve": {"kind": "random_walk", "annual_decline": DECLINE, "volatility": 0, **curve}}],
            "workloads": [{"name": "a", "runs": 4, "hours_per_run": 10, "accelerators": 8}],
            "simulation": {"priors": "off"}}


def remaining_cost(price0: float, hours: float = 20.0) -> float:
    """8 accelerators for `hours` from the as-of date at price0 x exp(mu t), mu = ln(1 - decline) / 1 y."""
    mu = math.log1p(-DECLINE) / 8760
    return 8 * price0 * math.expm1(mu * hours) / mu


def two_done(cost=None):
    return Acts([Run("a", "1", "completed", 80, cost, start=datetime(2026, 1, 1), end=datetime(2026, 1, 1, 10)),
                 Run("a", "2", "completed", 80, cost, start=datetime(2026, 3, 1), end=datetime(2026, 3, 1, 10))],
                as_of=AS_OF)


def test_without_a_price_paid_the_walk_restarts_from_the_given_price_carried_by_the_drift():
    r = sim.reforecast(load_data(walk(), "w"), two_done(), reps=2, workers=1)
    carried = 2.0 * (1 - DECLINE) ** YEARS
    b = r.summary["reforecast"]
    assert b["actual_to_date_usd"] == pytest.approx(2 * 80 * 2.0)  # runs without a cost: the pool's price
    # the two runs left, one after the other from the as-of date, on the path from the carried price
    assert list(r.replications["cost_usd"]) == pytest.approx([remaining_cost(carried)] * 2, rel=1e-9)
    assert b["eac_usd"]["p50"] == pytest.approx(320 + remaining_cost(carried), rel=1e-9)
    assert any("price carried to 2026-07-02 (the price walk restarts there)" in n for n in b["notes"])


def test_the_walk_restarts_from_the_price_last_paid():
    # run 2 (the latest) paid $150 for 80 accelerator-hours: $1.875 an hour
    acts = two_done(cost=None)
    acts.runs[0].cost_usd, acts.runs[1].cost_usd = 200.0, 150.0
    r = sim.reforecast(load_data(walk(), "w"), acts, reps=2, workers=1)
    assert list(r.replications["cost_usd"]) == pytest.approx([remaining_cost(1.875)] * 2, rel=1e-9)
    assert any("from the price last paid, $1.88/h (run 2)" in n for n in r.summary["reforecast"]["notes"])


def test_jumps_passed_count_at_their_expected_effect_and_those_to_come_keep_their_dates():
    jumps = [{"date": "2026-04-01", "change": -0.4, "probability": 0.5},
             {"date": "2026-09-01", "change": -0.3}]
    loaded = load_data(walk(jumps=jumps), "w")
    rem = rf.remaining(loaded, two_done(), {"a": 80.0})
    (pool,) = rem.raw["pools"]
    assert pool["price_usd_per_gpu_h"] == pytest.approx(2.0 * (1 - DECLINE) ** YEARS * (1 - 0.5 * 0.4))
    assert [j["date"] for j in pool["price_curve"]["jumps"]][-1] == "2026-09-01"
    assert rem.raw["project"]["start"] == "2026-07-02"  # the jump to come is 61 days into the work left


def test_cli_reforecast_prices_the_work_left_from_the_as_of_date(cli, tmp_path):
    import yaml

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(walk()))
    (tmp_path / "a.csv").write_text("workload,run_id,pool,accelerators,start,end,state,gpu_hours,cost_usd\n"
                                    "a,1,g,8,2026-01-01T00:00,2026-01-01T10:00,completed,80,\n"
                                    "a,2,g,8,2026-03-01T00:00,2026-03-01T10:00,completed,80,\n")
    code, _out, err = cli("reforecast", tmp_path / "s.yaml", "--actuals", tmp_path / "a.csv", "--as-of", "2026-07-02T00:00",
                          "--reps", "2", "--workers", "1", "--out", tmp_path / "rf")
    assert code == 0, err
    b = json.loads((tmp_path / "rf" / "summary.json").read_text())["reforecast"]
    assert b["eac_usd"]["p95"] == pytest.approx(320 + remaining_cost(2.0 * (1 - DECLINE) ** YEARS), rel=1e-9)
