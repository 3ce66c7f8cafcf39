"""The whole loop, calibrated (issue 12): trainsim plays projects (hidden true inputs drawn from the
scenario's distributions, reruns of diverged runs included: each failed attempt is a failed row of
the actuals), each is cut at 25%, 50% and 75% of its planned duration (the scenario's median
makespan, the same hours for every project: a share of its own final duration would see its future)
into actuals and re-forecast; the true final cost must fall inside the re-forecast's P5-P95 90% of the time, and the
band must narrow as the project advances.

The full campaign (200 projects, about 600 re-forecasts of 39 replications, about a minute) is
benchmarks/reforecast_calibration.py; its figures are in the README ("A living forecast"). Here a
smaller one: 40 projects, 19 replications per re-forecast (with 19, P5 and P95 at the Weibull
positions are the least and the largest value: a calibrated forecast holds the truth between them
in 18 of 20 cases exactly), so 120 cases and a binomial standard error of 2.7%."""

import math
from datetime import datetime

import pytest

from benchmarks.reforecast_calibration import PILOT_SEED, SCENARIO, actuals_at, campaign, cut, planned_hours, project
from sim.api import feasible, nominal_sizes
from sim.loader import load_data
from sim.montecarlo import Replicator
from sim.records import RUN_COLUMNS

PROJECTS, REPS = 40, 19


@pytest.mark.slow
def test_the_truth_falls_in_the_p5_p95_band_90_percent_of_the_time_and_the_band_narrows():
    res = campaign(PROJECTS, REPS)
    n = res["cases"]
    se = math.sqrt(0.9 * 0.1 / n)
    assert abs(res["coverage"] - 0.9) <= 3 * se, res["by_cut"]
    widths = [res["by_cut"][c]["median_width"] for c in ("25%", "50%", "75%")]
    assert widths[0] > widths[1] > widths[2], widths
    # at each cut, the actual to date is what the truth had spent then (it grows) and below the final cost
    for row in res["rows"]:
        spent = [c["actual_usd"] for c in row["cuts"]]
        assert spent == sorted(spent) and spent[-1] < row["truth_usd"]


def test_a_cut_replication_is_the_whole_one_up_to_the_cut():
    loaded = feasible(load_data(SCENARIO, "loop"))
    rep = Replicator(loaded, 0)
    plan, _ = rep.plan(3)
    whole = rep.one(3, strict=True)
    hours = whole.row["makespan_days"] * 24
    end = cut(plan, 0, 3, hours * 2)  # past the end: the whole replication, the same runs
    acts = actuals_at(end, hours * 2, datetime(2027, 1, 4))
    col = {c: whole.runs[RUN_COLUMNS.index(c)] for c in ("workload", "run", "gpu_hours", "cost_usd", "reruns",
                                                         "failures")}
    # every attempt that went wrong is a failed row; every run's last attempt a completed one
    assert len(acts.in_state("completed")) == 24 and len(acts.runs) == 24 + sum(col["reruns"])
    assert sum(col["reruns"]) > 0  # replication 3 has reruns (the test reads them)
    assert acts.cost_usd == pytest.approx(whole.row["cost_usd"])
    # a run's attempts add up to its totals
    for w, i, gpu_h, usd, fails in zip(col["workload"], col["run"], col["gpu_hours"], col["cost_usd"],
                                       col["failures"], strict=True):
        mine = [r for r in acts.runs if r.run_id == f"{w}-{i}" or r.run_id.startswith(f"{w}-{i}-failed-")]
        assert sum(r.gpu_hours for r in mine) == pytest.approx(gpu_h)
        assert sum(r.cost_usd for r in mine) == pytest.approx(usd)
        assert sum(r.interruptions for r in mine) == fails
        assert all(a.end <= b.start for a, b in zip(mine[:-1], mine[1:], strict=True))  # one after another
    half = actuals_at(cut(plan, 0, 3, hours / 2), hours / 2, datetime(2027, 1, 4))
    running = [r for r in half.runs if r.state == "running"]
    assert running and all(0 < r.progress < 1 for r in running)
    assert half.cost_usd < whole.row["cost_usd"]


def test_the_cuts_are_at_the_planned_duration_the_same_for_every_project_not_at_its_own():
    # a cut at a share of the project's own final duration sees its future (a rerun after the cut would
    # have made the project longer and moved the cut past it): the cuts are shares of the planned duration
    # (the scenario's median makespan, from replications under a seed of their own), fixed before any
    # project is played; a project finished by then has no case at that cut
    loaded = feasible(load_data(SCENARIO, "loop"))
    planned = planned_hours(loaded, 0, 5)
    pilot = sorted(Replicator(loaded, PILOT_SEED).one(k, strict=True).row["makespan_days"] * 24 for k in range(5))
    assert planned == pytest.approx(pilot[2])
    nominal = nominal_sizes(loaded)
    own = [Replicator(loaded, 0).one(k, strict=True).row["makespan_days"] * 24 for k in (0, 1)]
    assert own[0] != pytest.approx(own[1])
    for k, hours in zip((0, 1), own, strict=True):
        late = hours / planned + 0.01  # just after this project's end
        res = project(loaded, nominal, k, 1, cuts=(0.25, late), planned=planned)
        assert [c["hours"] for c in res["cuts"]] == [pytest.approx(0.25 * planned)]
