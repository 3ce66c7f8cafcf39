"""What a re-forecast carries to its as-of instant.

Time (issue 12): with an as-of time within the day, the work left begins at that instant
(project.start_time) on a clock that counts from 00:00 of the as-of day, so its finish dates, its
spend by period and the dated events still to come (capacity changes) fall on their real instants.

Prices: a random-walk price in a re-forecast (issue 14): the walk restarts at the as-of date, with the
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
YEARS = (AS_OF.date() - date(2026, 1, 1)).days / 365  # a year of 8,760 h, as the engine's price curves


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


MONTH_END = {"project": {"name": "m", "start": "2026-01-01"},
             "pools": [{"name": "g", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0,
                        "capacity_changes": [{"date": "2026-02-01", "count": 16}]}],
             "workloads": [{"name": "a", "runs": 4, "hours_per_run": 10, "accelerators": 8}],
             "simulation": {"priors": "off"}}


def month_end_actuals():
    # run 1 done in January; run 2 half done at the as-of instant, 2026-01-31 20:00
    return Acts([Run("a", "1", "completed", 80, 160, start=datetime(2026, 1, 1), end=datetime(2026, 1, 1, 10)),
                 Run("a", "2", "running", 40, 80, progress=0.5, start=datetime(2026, 1, 31, 15))],
                as_of=datetime(2026, 1, 31, 20))


def test_the_work_left_begins_at_the_as_of_instant_and_dated_events_keep_their_instants():
    r = sim.reforecast(load_data(MONTH_END, "m"), month_end_actuals(), reps=2, workers=1)
    reps = r.replications
    # hours from 00:00 of 2026-01-31: run 2's 5 h left from 20:00 to 25:00 on the 8 GPUs; 16 GPUs from
    # 2026-02-01 00:00 (hour 24): run 3 at 24-34 beside it, run 4 at 25-35
    assert list(reps["makespan_days"]) == pytest.approx([35 / 24] * 2)
    # spend by month: 20:00-24:00 of January 31 (4 h of 8 GPUs at $2), the rest in February
    assert list(reps["spend_usd_2026-01"]) == pytest.approx([4 * 8 * 2.0] * 2)
    assert list(reps["spend_usd_2026-02"]) == pytest.approx([(1 + 10 + 10) * 8 * 2.0] * 2)
    assert list(reps["finish_date"]) == ["2026-02-01"] * 2
    b = r.summary["reforecast"]
    assert b["as_of_time"] == "2026-01-31T20:00" and b["finish_date"]["p50"] == "2026-02-01"
    assert b["eac_usd"]["p50"] == pytest.approx(240 + 25 * 8 * 2.0)
    assert r.summary["risk"]["finish_date_at_confidence"]["p50"] == "2026-02-01"
    assert any("project.start_time 20:00" in n for n in b["notes"])


def test_start_time_holds_every_workload_until_then():
    raw = {**MONTH_END, "project": {"name": "m", "start": "2026-01-31", "start_time": "20:00"}}
    raw["pools"] = [{**MONTH_END["pools"][0]}]
    r = sim.run(load_data(raw, "m"), reps=1, workers=1)
    # runs 1 at 20-30 h, run 2 at 24-34 h (16 GPUs from midnight), runs 3 and 4 at 30-40 and 34-44
    assert r.replications["makespan_days"][0] == pytest.approx(44 / 24)
    assert r.replications["spend_usd_2026-01"][0] == pytest.approx(4 * 8 * 2.0)
    # the estimate's floor too: from 20:00, 40 h of runs on up to 2 slots of 8 GPUs
    assert sim.estimate(load_data(raw, "m")).attrs["total"]["project_days"] == pytest.approx((20 + 20) / 24)


def test_cli_as_of_time_dates_the_work_lefts_sections_and_prices_them_from_the_as_of_date(cli, tmp_path, monkeypatch):
    import pandas as pd
    import yaml

    from sim import report

    drawn = {}
    plot = report.plot_reforecast_spend
    monkeypatch.setattr(report, "plot_reforecast_spend", lambda actual, fan, *a, **k: (
        drawn.update(actual=actual, fan=fan), plot(actual, fan, *a, **k))[1])

    raw = {**MONTH_END, "pools": [{**MONTH_END["pools"][0], "price_curve": walk()["pools"][0]["price_curve"]}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "a.csv").write_text("workload,run_id,pool,accelerators,start,end,state,gpu_hours,cost_usd,progress\n"
                                    "a,1,g,8,2026-01-01T00:00,2026-01-01T10:00,completed,80,,\n"
                                    "a,2,g,8,2026-01-31T15:00,,running,40,,0.5\n")
    code, _out, err = cli("reforecast", tmp_path / "s.yaml", "--actuals", tmp_path / "a.csv", "--as-of",
                          "2026-01-31T20:00", "--reps", "2", "--workers", "1", "--out", tmp_path / "rf")
    assert code == 0, err
    # no price paid: the walk restarts on 2026-01-31 from $2 carried 30 days along the drift, and with
    # volatility 0 follows price0 x exp(mu t) (t in hours from 00:00 of the as-of day)
    price0, mu = 2.0 * (1 - DECLINE) ** (30 / 365), math.log1p(-DECLINE) / 8760

    def usd(t0, t1):
        return 8 * price0 * (math.exp(mu * t1) - math.exp(mu * t0)) / mu

    reps = pd.read_parquet(tmp_path / "rf" / "replications.parquet")
    assert list(reps["makespan_days"]) == pytest.approx([35 / 24] * 2)
    assert list(reps["spend_usd_2026-01"]) == pytest.approx([usd(20, 24)] * 2, rel=1e-9)
    assert list(reps["cost_usd"]) == pytest.approx([usd(20, 25) + usd(24, 34) + usd(25, 35)] * 2, rel=1e-9)
    b = json.loads((tmp_path / "rf" / "summary.json").read_text())["reforecast"]
    assert b["finish_date"]["p50"] == "2026-02-01" and b["as_of_time"] == "2026-01-31T20:00"
    # the report's spend chart: the forecast fan goes on from the actual line's end, the as-of instant
    assert drawn["actual"][-1] == (datetime(2026, 1, 31, 20), 240.0)
    assert list(drawn["fan"]["time"])[:2] == [datetime(2026, 1, 31, 20), datetime(2026, 2, 1)]
    assert drawn["fan"]["p50"][1] == pytest.approx(240.0 + usd(20, 24), rel=1e-9)


@pytest.mark.parametrize(("given", "says"), [("25:00", "must be < 24"), ("7:75", "a time of day such as '14:30'")])
def test_a_bad_start_time_exits_2_naming_the_file_and_key(cli, tmp_path, given, says):
    import yaml

    raw = {**MONTH_END, "project": {"name": "m", "start": "2026-01-31", "start_time": given}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    code, _out, err = cli("estimate", tmp_path / "s.yaml")
    assert code == 2 and "s.yaml" in err and "project.start_time" in err and says in err, err
    assert "Traceback" not in err


def test_start_time_written_unquoted_is_a_time_of_day(cli, tmp_path):
    # YAML 1.1 reads an unquoted 20:00 as the base-60 integer 1200: the documented form `start_time: 14:30`
    # was refused ("must be < 24, got 870"). Written by hand, unquoted, it is the same as quoted.
    import yaml

    raw = {**MONTH_END, "project": {"name": "m", "start": "2026-01-31", "start_time": "20:00"}}
    quoted = yaml.safe_dump(raw)
    (tmp_path / "q.yaml").write_text(quoted)
    (tmp_path / "u.yaml").write_text(quoted.replace("'20:00'", "20:00"))
    assert "start_time: 20:00\n" in (tmp_path / "u.yaml").read_text()
    outs = [cli("estimate", tmp_path / f, "--json") for f in ("q.yaml", "u.yaml")]
    assert [o[0] for o in outs] == [0, 0], outs[1][2]
    assert json.loads(outs[1][1])["total"] == json.loads(outs[0][1])["total"]


@pytest.mark.parametrize(("as_of", "begin"), [(datetime(2026, 1, 5), None), (datetime(2026, 1, 1), 9.0),
                                              (datetime(2026, 1, 1, 11), 11.0)])
def test_the_original_start_time_holds_on_its_own_start_day_only(as_of, begin):
    # The original scenario's start_time (09:00 of 2026-01-01) was kept as the work left's: a re-forecast as of
    # midnight of 2026-01-05 held the work left until 09:00 that day (makespan 34 h, not 25 h). On the start day
    # itself it still holds, unless the as-of instant is later.
    from tests.test_reforecast import project

    loaded = project(project={"name": "p", "start": "2026-01-01", "start_time": "09:00"})
    acts = Acts([Run("a", "1", "completed", 80, 160), Run("a", "2", "completed", 80, 160)], as_of=as_of)
    rem = rf.remaining(loaded, acts, {"a": 80.0, "b": 40.0})
    assert rem.raw["project"].get("start_time") == begin
    r = sim.run(load_data(rem.raw, "rem"), reps=1, workers=1)
    assert r.replications["makespan_days"][0] * 24 == pytest.approx((begin or 0.0) + 2 * 10 + 5)
