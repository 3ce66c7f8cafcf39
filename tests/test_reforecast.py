"""Re-forecasting a running project from its actuals (sim.reforecasting, sim.reforecast): the work
left as a scenario, estimate at completion = actual + remaining in closed form on a deterministic
project, the failure-rate update, earned value."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

import pytest

import sim
from sim import reforecasting as rf
from sim.loader import load_data


@dataclass
class Run:
    workload: str
    run_id: str
    state: str
    gpu_hours: float
    cost_usd: float | None
    progress: float | None = None
    pool: str | None = "g"
    accelerators: int = 8
    start: datetime | None = None
    end: datetime | None = None
    interruptions: int | None = None
    row: int = 0


@dataclass
class Acts:
    runs: list
    as_of: datetime
    ledger: list = field(default_factory=list)

    def by_workload(self):
        out: dict = {}
        for r in self.runs:
            out.setdefault(r.workload, []).append(r)
        return out


def project(**extra):
    raw = {"project": {"name": "p", "start": "2026-01-01", "budget_usd": 700, "deadline": "2026-01-02"},
           "pools": [{"name": "g", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0}],
           "workloads": [{"name": "a", "runs": 4, "hours_per_run": 10, "accelerators": 8},
                         {"name": "b", "runs": 1, "hours_per_run": 5, "accelerators": 8, "after": ["a"]}],
           "simulation": {"priors": "off"}}
    raw.update(extra)
    return load_data(raw, "t")


def acts(progress=0.5):
    # two runs of a done (10 h each), one half done (5 h so far), all on the 8-GPU pool at $2
    return Acts([Run("a", "1", "completed", 80, 160), Run("a", "2", "completed", 80, 160),
                 Run("a", "3", "running", 80 * progress, 160 * progress, progress=progress)],
                as_of=datetime(2026, 1, 1, 20))


def test_the_work_left_is_the_rest_of_the_running_run_and_the_runs_not_started():
    loaded = project()
    rem = rf.remaining(loaded, acts(), {"a": 80.0, "b": 40.0})
    names = {w["name"]: w for w in rem.raw["workloads"]}
    assert set(names) == {"a.running.3", "a", "b"}
    assert names["a.running.3"]["hours_per_run"] == pytest.approx(5.0) and names["a.running.3"]["runs"] == 1
    assert names["a.running.3"]["pools"] == ["g"] and names["a.running.3"].get("after", []) == []
    assert names["a"]["runs"] == 1 and names["b"]["after"] == ["a.running.3", "a"]  # b waits for all of a
    assert rem.raw["project"]["start"] == "2026-01-01"
    assert rem.actual_usd == pytest.approx(400.0) and rem.actual_gpu_hours == pytest.approx(200.0)
    assert rem.done_fraction == pytest.approx((2 * 80 + 0.5 * 80) / (4 * 80 + 40))
    assert (rem.runs_done, rem.runs_running, rem.runs_left) == ({"a": 2, "b": 0}, {"a": 1, "b": 0}, {"a": 1, "b": 1})


def test_estimate_at_completion_is_actual_plus_remaining_in_closed_form():
    # nothing random: the remaining cost is 8 x (5 + 10 + 5) h x $2 = 320, on top of 400 spent
    r = sim.reforecast(project(), acts(), reps=3, workers=1)
    block = r.summary["reforecast"]
    assert block["eac_usd"]["p5"] == pytest.approx(720.0) and block["eac_usd"]["p95"] == pytest.approx(720.0)
    assert block["actual_to_date_usd"] == pytest.approx(400.0)
    assert block["p_over_budget"] == 1.0  # budget 700
    # 20 h left from the as-of date (2026-01-01, the re-forecast's day 0): on 2026-01-01 still
    assert block["finish_date"]["p50"] == "2026-01-01" and block["p_late"] == 0.0
    ev = block["earned_value"]
    assert ev["budget_at_completion_usd"] == pytest.approx(4 * 160 + 80)
    assert ev["earned_value_usd"] == pytest.approx(720 * (200 / 360))
    assert ev["actual_cost_usd"] == pytest.approx(400.0)
    assert ev["cpi"] == pytest.approx(ev["earned_value_usd"] / 400.0)
    assert ev["variance_at_completion_usd"] == pytest.approx(720 - 720)


def test_a_workload_done_is_gone_and_so_is_waiting_for_it():
    done = Acts([Run("a", str(i), "completed", 80, 160) for i in range(4)], as_of=datetime(2026, 1, 2, 16))
    rem = rf.remaining(project(), done, {"a": 80.0, "b": 40.0})
    assert [w["name"] for w in rem.raw["workloads"]] == ["b"] and rem.raw["workloads"][0]["after"] == []
    assert rem.raw["project"]["start"] == "2026-01-02"


def test_failed_runs_are_spent_and_still_to_do():
    a = Acts([Run("a", "1", "failed", 30, 60), Run("a", "2", "completed", 80, 160)], as_of=datetime(2026, 1, 2))
    rem = rf.remaining(project(), a, {"a": 80.0, "b": 40.0})
    assert rem.runs_left["a"] == 3 and rem.actual_usd == pytest.approx(220.0)


def test_passed_capacity_changes_apply_and_reserved_commitments_keep_their_dates():
    loaded = project(pools=[
        {"name": "g", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0,
         "capacity_changes": [{"date": "2026-01-05", "count": 16}, {"date": "2026-03-01", "count": 32}]},
        {"name": "r", "accelerator": "h100", "count": 8, "pricing": "reserved", "price_usd_per_gpu_h": 1.0,
         "term": "1 y"}])
    rem = rf.remaining(loaded, Acts([], as_of=datetime(2026, 2, 1)), {"a": 80.0, "b": 40.0})
    g, r = rem.raw["pools"]
    assert g["count"] == 16 and g["capacity_changes"] == [{"date": "2026-03-01", "count": 32}]
    # only what is left of the reserved commitment is simulated (what was paid before is sunk)
    assert r["commitment_start"] == "2026-02-01" and r["term"] == pytest.approx(8760 - 31 * 24)
    assert rem.raw["project"]["start"] == "2026-02-01"


def test_failure_rate_posterior_is_the_gamma_poisson_update():
    # prior: mean 1e-4 per GPU-h, cv 0.5 -> shape 4, rate 40,000; seen: 10 interruptions in 50,000 GPU-h
    mean, cv = rf.gamma_update(1e-4, 0.5, 10, 50_000)
    assert mean == pytest.approx(14 / 90_000) and cv == pytest.approx(1 / math.sqrt(14))
    lo = rf.lognormal_of(mean, cv)
    assert lo["median"] * math.exp(lo["sigma"] ** 2 / 2) == pytest.approx(mean)
    loaded = project(reliability={"failure_rate_per_gpu_h": 1e-4})
    seen = Acts([Run("a", "1", "completed", 50_000, 1e5, interruptions=10)], as_of=datetime(2026, 1, 2))
    rem = rf.remaining(loaded, seen, {"a": 80.0, "b": 40.0})
    post = rem.posterior["reliability.failure_rate_per_gpu_h"]
    assert post["posterior_mean"] == pytest.approx(11 / 60_000)  # a point prior held with cv 1: shape 1
    assert rem.raw["reliability"]["failure_rate_per_gpu_h"]["dist"] == "lognormal"


def test_cumulative_spend_at_a_date_counts_the_month_in_proportion():
    spend = {"2026-01": 310.0, "2026-02": 280.0}
    assert rf.cumulative_at(spend, date(2026, 1, 1), date(2026, 2, 15)) == pytest.approx(310 + 280 * 14 / 28)
    assert rf.cumulative_at(spend, date(2026, 1, 1), date(2026, 1, 1)) == 0.0


def test_cli_reforecasts_the_example_project_from_its_actuals(cli, tmp_path):
    import json

    from tests.conftest import SCENARIOS

    code, out, err = cli("reforecast", SCENARIOS / "example_llm_project.yaml", "--actuals",
                         SCENARIOS / "actuals" / "example_llm_project.csv", "--ledger",
                         SCENARIOS / "actuals" / "example_llm_project_ledger.csv", "--reps", "20", "--workers", "1",
                         "--out", tmp_path / "rf")
    assert code == 0, err
    summary = json.loads((tmp_path / "rf" / "summary.json").read_text())
    b = summary["reforecast"]
    assert b["as_of"] == "2027-01-25" and b["runs"]["done"]["sweeps"] == 400
    assert b["runs"]["running"]["pretrain-30b"] == 2
    assert b["actual_to_date_usd"] > 2e6 and b["eac_usd"]["p5"] > b["actual_to_date_usd"]
    assert "estimate at completion: P5" in out and "earned value: BAC" in out
    assert (tmp_path / "rf" / "replications.parquet").exists() and (tmp_path / "rf" / "report.html").exists()


def test_cli_bad_actuals_exit_2_with_file_row_and_column(cli, tmp_path):
    from tests.conftest import SCENARIOS

    bad = tmp_path / "a.csv"
    bad.write_text("workload,run_id,pool,accelerators,start,end,state,gpu_hours,cost_usd\n"
                   "sweep,1,spot,8,2027-01-04,2027-01-05,completed,10,25\n")
    code, _out, err = cli("reforecast", SCENARIOS / "example_llm_project.yaml", "--actuals", bad, "--out",
                          tmp_path / "rf")
    assert code == 2 and "row 2" in err and "workload" in err and "did you mean 'sweeps'" in err, err
    assert "Traceback" not in err and not (tmp_path / "rf").exists()
    code, _out, err = cli("reforecast", SCENARIOS / "example_llm_project.yaml", "--actuals", bad, "--as-of", "soon")
    assert code == 2 and "--as-of" in err


def test_mfu_is_updated_on_the_log_scale_from_clean_runs():
    # prior: lognormal P5 0.3 / P95 0.5; the estimate says 10 h at the median MFU; two clean runs took
    # 12.5 h (MFU = median x 10/12.5) and one with an interruption is left out
    loaded = project(workloads=[{"name": "a", "runs": 4, "params": "1B", "tokens": "20B", "accelerators": 8,
                                 "mfu": {"dist": "lognormal", "p5": 0.3, "p95": 0.5}}])
    median = math.sqrt(0.3 * 0.5)
    runs = [Run("a", str(i), "completed", 8 * 12.5, 200, interruptions=0, start=datetime(2026, 1, 1)) for i in (1, 2)]
    runs.append(Run("a", "3", "completed", 8 * 40, 640, interruptions=2, start=datetime(2026, 1, 1)))
    rem = rf.remaining(loaded, Acts(runs, as_of=datetime(2026, 1, 3)), {"a": 80.0}, {"a": (10.0, "g")})
    post = rem.posterior["workloads[a].mfu"]
    mu0, sd0 = math.log(median), math.log(0.5 / 0.3) / (2 * 1.6448536269514722)
    y = math.log(median * 10 / 12.5)
    mu, sd = rf.normal_update(mu0, sd0, [y, y], rf.OBS_LOG_SD)
    assert post["runs_seen"] == 2 and post["posterior_median"] == pytest.approx(math.exp(mu))
    assert rem.raw["workloads"][0]["mfu"] == {"dist": "lognormal", "median": pytest.approx(math.exp(mu)),
                                              "sigma": pytest.approx(sd), "clip": True}
    assert math.exp(mu) < median  # the runs were slower than the prior's median
    # closed form of the update: precision-weighted mean
    prec = 1 / sd0**2 + 2 / rf.OBS_LOG_SD**2
    assert mu == pytest.approx((mu0 / sd0**2 + 2 * y / rf.OBS_LOG_SD**2) / prec) and sd == pytest.approx(prec**-0.5)
