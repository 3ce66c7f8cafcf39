"""Re-forecasting a running project from its actuals (sim.reforecasting, sim.reforecast): the work
left as a scenario, estimate at completion = actual + remaining in closed form on a deterministic
project, the failure-rate update, earned value."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

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


@dataclass
class Ledger:
    date: date
    amount_usd: float
    pool: str | None = None
    row: int = 0


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


def test_the_work_left_has_what_is_left_of_the_budget():
    rem = rf.remaining(project(), acts(), {"a": 80.0, "b": 40.0})
    assert rem.raw["project"]["budget_usd"] == pytest.approx(700 - 400)  # P(remaining > 300) = P(EAC > 700)
    spent = Acts([Run("a", "1", "completed", 80, 900)], as_of=datetime(2026, 1, 1, 20))
    assert rf.remaining(project(), spent, {"a": 80.0, "b": 40.0}).raw["project"]["budget_usd"] == 0.0


def test_a_passed_deadline_leaves_the_work_left_without_one():
    late = Acts([Run("a", "1", "completed", 80, 160)], as_of=datetime(2026, 1, 5))
    rem = rf.remaining(project(), late, {"a": 80.0, "b": 40.0})
    assert "deadline" not in rem.raw["project"] and "the deadline has passed" in rem.notes
    load_data(rem.raw, "t")  # a valid scenario (a deadline must be after the start)


def test_cumulative_actual_spend_in_closed_form():
    t = lambda h: datetime(2026, 1, 1) + timedelta(hours=h)  # noqa: E731
    a = Acts([Run("a", "1", "completed", 80, 160, start=t(0), end=t(10)),
              Run("a", "2", "failed", 30, 60, start=t(2), end=t(5)),
              Run("a", "3", "running", 40, 80, progress=0.5, start=t(10)),  # $80 spread over 10 h: $8/h
              Run("a", "4", "completed", 10, None, start=t(11), end=t(12)),  # no cost: counts 0
              Run("a", "5", "cancelled", 0, 0.0)],  # never started: at the as-of time
             as_of=t(20), ledger=[Ledger(date(2025, 12, 31), 50.0),  # at the end of its day
                                  Ledger(date(2026, 1, 1), 10.0)])  # its day ends after as_of: at as_of
    assert rf.actual_spend(a) == [
        (t(0), 0.0), (t(0), 50.0), (t(5), 50.0), (t(5), 110.0), (t(10), 110.0), (t(10), 270.0),
        (t(12), pytest.approx(286.0)), (t(20), pytest.approx(350.0)), (t(20), pytest.approx(360.0))]
    assert rf.actual_spend(a)[-1][1] == pytest.approx(160 + 60 + 80 + 50 + 10)  # the actual to date
    assert rf.actual_spend(Acts([], as_of=t(3))) == [(t(3), 0.0)]


def test_cumulative_spend_fan_by_month_from_the_start_plus_the_actual():
    import pandas as pd

    from sim.stats import cumulative_spend_fan

    reps = pd.DataFrame({"cost_usd": [11.0, 22.0, 33.0], "spend_usd_2026-12": [10.0, 20.0, 30.0],
                         "spend_usd_2027-01": [1.0, 2.0, None]})
    fan = cumulative_spend_fan(reps, date(2026, 12, 15), offset=100.0, quantiles=(0, 50, 100))
    assert list(fan["time"]) == [datetime(2026, 12, 15), datetime(2027, 1, 1), datetime(2027, 2, 1)]
    assert list(fan["p0"]) == [100.0, 110.0, 111.0] and list(fan["p50"]) == [100.0, 120.0, 122.0]
    assert list(fan["p100"]) == [100.0, 130.0, 130.0]  # a missing month spends nothing
    empty = cumulative_spend_fan(reps[["cost_usd"]], date(2026, 12, 15), offset=5.0)
    assert list(empty.columns) == ["time", "p5", "p50", "p95"] and list(empty["p50"]) == [5.0]


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
    assert b["baseline"] == {"source": "simulated", "replications": 20, "seed": 0}
    assert "baseline forecast: the original scenario simulated, 20 replications" in out
    check_reforecast_report(tmp_path / "rf")


def check_reforecast_report(folder):
    """The re-forecast's sections come first, then the work left's; every plot is a PNG, embedded."""
    page = (folder / "report.html").read_text()
    headings = re.findall(r"<h2>([^<]*)</h2>", page)
    assert headings[:4] == ["Re-forecast", "Re-forecast: earned value", "Re-forecast: runs",
                            "Re-forecast: updated from what was seen"]
    assert "The work left: headline numbers" in headings
    for name in ("reforecast_spend.png", "eac_histogram.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
        assert f"]({name})" in (folder / "report.md").read_text()
    pngs = sorted(folder.glob("*.png"))
    assert page.count('src="data:image/png;base64,') == len(pngs) >= 6
    for cell in ("<td>BAC</td>", "<td>PV</td>", "<td>EV</td>", "<td>AC</td>", "<td>CPI</td>", "<td>SPI</td>",
                 "<td>VAC</td>", "<th>runs done</th>", "<td>pretrain-30b</td>"):
        assert cell in page, cell
    assert ("<th>key</th><th>prior</th><th>prior spread</th><th>seen</th><th>posterior</th>"
            "<th>posterior spread</th>") in page
    assert "<td>reliability.failure_rate_per_gpu_h</td><td>mean 1.97e-05</td>" in page
    assert "24 interruptions in 486,899 accelerator-hours" in page
    assert "<td>workloads[ablations].mfu</td><td>median 0.391</td>" in page and "39 clean runs" in page


def test_cli_reforecast_draws_the_baseline_of_a_given_run_folder(cli, tmp_path, monkeypatch):
    import json

    from sim import api
    from tests.conftest import SCENARIOS

    code, _out, err = cli("run", SCENARIOS / "example_llm_project.yaml", "--reps", "12", "--workers", "1", "--out",
                          tmp_path / "base")
    assert code == 0, err

    def no_simulation(*_a, **_k):
        raise AssertionError("the baseline is read from --baseline, not simulated")

    monkeypatch.setattr(api, "_simulate_baseline", no_simulation)
    code, out, err = cli("reforecast", SCENARIOS / "example_llm_project.yaml", "--actuals",
                         SCENARIOS / "actuals" / "example_llm_project.csv", "--ledger",
                         SCENARIOS / "actuals" / "example_llm_project_ledger.csv", "--reps", "8", "--workers", "1",
                         "--baseline", tmp_path / "base", "--out", tmp_path / "rf")
    assert code == 0, err
    b = json.loads((tmp_path / "rf" / "summary.json").read_text())["reforecast"]
    assert b["baseline"] == {"source": str(tmp_path / "base"), "replications": 12, "same_scenario": True}
    assert f"12 replications read from {tmp_path / 'base'}" in out
    check_reforecast_report(tmp_path / "rf")


def test_cli_reforecast_refuses_a_baseline_folder_without_replications(cli, tmp_path):
    from tests.conftest import SCENARIOS

    (tmp_path / "empty").mkdir()
    code, _out, err = cli("reforecast", SCENARIOS / "example_llm_project.yaml", "--actuals",
                          SCENARIOS / "actuals" / "example_llm_project.csv", "--baseline", tmp_path / "empty",
                          "--out", tmp_path / "rf")
    assert code != 0 and "--baseline" in err and "replications" in err, err
    assert "Traceback" not in err and not (tmp_path / "rf").exists()


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
