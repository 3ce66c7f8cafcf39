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
from sim.loader import load_data, named_path
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples" / "actuals"


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
    # 20 h left from the as-of time (2026-01-01 20:00): 2026-01-02 16:00, on the deadline day (not late)
    assert block["finish_date"]["p50"] == "2026-01-02" and block["p_late"] == 0.0
    assert block["as_of"] == "2026-01-01" and block["as_of_time"] == "2026-01-01T20:00"
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
                         EXAMPLES / "example_llm_project.csv", "--ledger",
                         EXAMPLES / "example_llm_project_ledger.csv", "--reps", "20", "--workers", "1",
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
    page = (folder / "report.html").read_text().replace(' class="text"', "")  # cells as written, not their alignment
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
                         EXAMPLES / "example_llm_project.csv", "--ledger",
                         EXAMPLES / "example_llm_project_ledger.csv", "--reps", "8", "--workers", "1",
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
                          EXAMPLES / "example_llm_project.csv", "--baseline", tmp_path / "empty",
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
    sd_obs = rf.MIN_OBS_LOG_SD  # two runs of a fixed run length: the least spread
    mu, sd = rf.normal_update(mu0, sd0, [y, y], sd_obs)
    assert post["runs_seen"] == 2 and post["posterior_median"] == pytest.approx(math.exp(mu))
    assert rem.raw["workloads"][0]["mfu"] == {"dist": "lognormal", "median": pytest.approx(math.exp(mu)),
                                              "sigma": pytest.approx(sd), "clip": True}
    assert math.exp(mu) < median  # the runs were slower than the prior's median
    # closed form of the update: precision-weighted mean
    prec = 1 / sd0**2 + 2 / sd_obs**2
    assert mu == pytest.approx((mu0 / sd0**2 + 2 * y / sd_obs**2) / prec) and sd == pytest.approx(prec**-0.5)
    assert "workloads[a].run_length.sigma" in rem.posterior  # two identical runs: the spread stays 0
    assert rem.raw["workloads"][0]["run_length"] == {"kind": "fixed"}


def test_checkpoint_writes_in_a_runs_hours_are_not_read_as_slowness():
    # the estimate says 10 compute hours at the median MFU, a checkpoint every 3 compute hours taking 0.5 h:
    # a run at that MFU holds 10 + 3 x 0.5 = 11.5 h (sim.reliability.wall_time); the simulation of the work
    # left adds the writes itself, so its realised MFU is the median, not median x 10 / 11.5
    loaded = project(workloads=[{"name": "a", "runs": 4, "params": "1B", "tokens": "20B", "accelerators": 8,
                                 "mfu": {"dist": "lognormal", "p5": 0.3, "p95": 0.5}}])
    median = math.sqrt(0.3 * 0.5)
    runs = [Run("a", str(i), "completed", 8 * 11.5, 184, interruptions=0, start=datetime(2026, 1, 1)) for i in (1, 2)]
    rem = rf.remaining(loaded, Acts(runs, as_of=datetime(2026, 1, 3)), {"a": 80.0}, {"a": (10.0, "g", 3.0, 0.5)})
    assert rem.posterior["workloads[a].mfu"]["seen_median"] == pytest.approx(median)
    # a running run 5.75 h in (3 h of compute, a write of 0.5 h, 2.25 h of compute) has done 5.25 h of 10
    running = Run("a", "3", "running", 8 * 5.75, 92, progress=0.525, interruptions=0, start=datetime(2026, 1, 2))
    assert rf.realised_mfu([running], 10.0, median, "g", ckpt=(3.0, 0.5)) == [pytest.approx(median)]
    # the sizes the re-forecast reads carry the nominal plan's checkpoint pattern
    from sim.api import nominal_sizes
    from sim.plan import build_plan
    from sim.schema import nominal_scenario

    w = build_plan(nominal_scenario(loaded.scenario), loaded.catalog).workloads[0]
    hours, pool, tau, write = nominal_sizes(loaded)[1]["a"]
    assert (pool, tau, write) == ("g", w.ckpt_interval_h_on[0], w.write_h) and hours == pytest.approx(w.length_h_on[0])


def test_run_length_spread_is_the_scaled_inverse_chi_squared_update():
    # prior sigma 0.2 worth 4 runs; three clean runs taking 10, 12.5 and 8 h where the estimate says 10 h
    assert rf.variance_update(0.2, 4, [0.0, 0.0]) == (pytest.approx(math.sqrt(4 * 0.04 / 5)), 5)
    loaded = project(workloads=[{"name": "a", "runs": 6, "params": "1B", "tokens": "20B", "accelerators": 8,
                                 "mfu": {"dist": "lognormal", "p5": 0.3, "p95": 0.5},
                                 "run_length": {"kind": "lognormal", "sigma": 0.2}}])
    runs = [Run("a", str(i), "completed", 8 * h, 16 * h, interruptions=0, start=datetime(2026, 1, 1))
            for i, h in enumerate((10.0, 12.5, 8.0))]
    rem = rf.remaining(loaded, Acts(runs, as_of=datetime(2026, 1, 3)), {"a": 80.0}, {"a": (10.0, "g")})
    ys = [math.log(10 / h) for h in (10.0, 12.5, 8.0)]  # log speed against the estimate (+ log MFU: no spread)
    ss = sum((y - sum(ys) / 3) ** 2 for y in ys)
    sigma = math.sqrt((4 * 0.2**2 + ss) / (4 + 3 - 1))
    post = rem.posterior["workloads[a].run_length.sigma"]
    assert post["posterior_sigma"] == pytest.approx(sigma) and post["posterior_dof"] == 6
    assert post["prior_sigma"] == 0.2 and post["runs_seen"] == 3
    assert rem.raw["workloads"][0]["run_length"] == {"kind": "lognormal", "sigma": pytest.approx(sigma)}
    # three runs: the MFU update reads their own spread
    assert rem.posterior["workloads[a].mfu"]["runs_seen"] == 3


def test_rerun_rate_is_the_beta_binomial_update_written_as_a_pert():
    # a point probability 0.1 is held as worth 10 attempts: Beta(1, 9); seen: 2 diverged (failed), 5 completed
    # and 1 running past the divergence point (0.3), 1 running before it (not an attempt yet)
    loaded = project(workloads=[{"name": "a", "runs": 8, "hours_per_run": 10, "accelerators": 8,
                                 "divergence": {"probability": 0.1, "at": 0.3, "rerun": True}}])
    runs = [Run("a", f"f{i}", "failed", 24, 48) for i in range(2)]
    runs += [Run("a", f"c{i}", "completed", 80, 160) for i in range(5)]
    runs += [Run("a", "r1", "running", 40, 80, progress=0.5), Run("a", "r2", "running", 8, 16, progress=0.1)]
    rem = rf.remaining(loaded, Acts(runs, as_of=datetime(2026, 1, 3)), {"a": 80.0})
    post = rem.posterior["workloads[a].divergence.probability"]
    assert (post["prior_a"], post["prior_b"]) == (pytest.approx(1.0), pytest.approx(9.0))
    assert (post["diverged"], post["attempts"]) == (2, 8)
    assert (post["posterior_a"], post["posterior_b"]) == (pytest.approx(3.0), pytest.approx(15.0))
    assert post["posterior_mean"] == pytest.approx(3 / 18)
    prob = rem.raw["workloads"][-1]["divergence"]["probability"]
    assert prob == {"dist": "pert", "min": 0.0, "mode": pytest.approx(2 / 16), "max": 1.0, "lambda": pytest.approx(16)}
    dist = load_data(rem.raw, "t").scenario.workloads[-1].divergence.probability
    assert float(dist.frozen().mean()) == pytest.approx(3 / 18)  # the PERT is that beta
    assert float(dist.frozen().var()) == pytest.approx(3 * 15 / (18**2 * 19))
    # a PERT prior on [0, 1] is a beta: its a and b are recovered
    pert = load_data({**rem.raw, "correlations": [], "workloads": [{**rem.raw["workloads"][-1], "divergence": {
        "probability": {"dist": "pert", "min": 0, "mode": 0.25, "max": 1, "lambda": 8}, "rerun": True}}]}, "t")
    a0, b0 = rf.beta_prior(pert.scenario.workloads[0].divergence.probability)
    assert (a0, b0) == (pytest.approx(3.0), pytest.approx(7.0))


def test_a_running_run_shares_its_workloads_uncertain_inputs():
    loaded = project(workloads=[{"name": "a", "runs": 3, "params": "1B", "tokens": "20B", "accelerators": 8,
                                 "mfu": {"dist": "lognormal", "p5": 0.3, "p95": 0.5}}],
                     correlations=[{"between": ["workloads[a].mfu", "reliability.failure_rate_per_gpu_h"],
                                    "rank": 0.5}],
                     reliability={"failure_rate_per_gpu_h": {"dist": "lognormal", "p5": 1e-5, "p95": 1e-4}})
    runs = [Run("a", "1", "running", 8, 16, progress=0.3, interruptions=1, start=datetime(2026, 1, 1))]
    rem = rf.remaining(loaded, Acts(runs, as_of=datetime(2026, 1, 1, 2)), {"a": 80.0}, {"a": (10.0, "g")})
    assert {"between": ["workloads[a.running.1].mfu", "workloads[a].mfu"], "rank": rf.TIE_RANK} in \
        rem.raw["correlations"]
    assert {"between": ["workloads[a.running.1].mfu", "reliability.failure_rate_per_gpu_h"], "rank": 0.5} in \
        rem.raw["correlations"]
    from sim.api import feasible

    feasible(load_data(rem.raw, "t"))  # a valid scenario, its correlation matrix positive definite


def test_several_running_runs_share_their_workloads_inputs_with_a_valid_correlation_matrix():
    # two runs running and one still to do: three copies of the workload's MFU, each pair tied (tying only
    # each to the first leaves the other two uncorrelated: [[1, r, r], [r, 1, 0], [r, 0, 1]] has determinant
    # 1 - 2 r^2 < 0 at r = 0.99, and the work left was refused)
    loaded = project(workloads=[{"name": "a", "runs": 3, "params": "1B", "tokens": "20B", "accelerators": 8,
                                 "mfu": {"dist": "lognormal", "p5": 0.3, "p95": 0.5}}])
    runs = [Run("a", str(i), "running", 8, 16, progress=0.3, interruptions=0, start=datetime(2026, 1, 1))
            for i in (1, 2)]
    rem = rf.remaining(loaded, Acts(runs, as_of=datetime(2026, 1, 1, 2)), {"a": 80.0})
    keys = ["workloads[a.running.1].mfu", "workloads[a.running.2].mfu", "workloads[a].mfu"]
    ties = {frozenset(c["between"]) for c in rem.raw["correlations"] if c["rank"] == rf.TIE_RANK}
    assert ties == {frozenset((x, y)) for i, x in enumerate(keys) for y in keys[i + 1:]}
    from sim.api import feasible

    feasible(load_data(rem.raw, "t"))  # accepted: the matrix is positive definite


TINY = """\
project: {name: tiny, start: 2026-01-01, budget_usd: 700, deadline: 2026-01-02}
pools: [{name: g, accelerator: h100, count: 8, price_usd_per_gpu_h: 2.0}]
workloads:
  - {name: a, runs: 4, hours_per_run: 10, accelerators: 8}
  - {name: b, runs: 1, hours_per_run: 5, accelerators: 8, after: [a]}
simulation: {priors: off}
"""
TINY_ACTUALS = ("workload,run_id,pool,accelerators,start,end,state,gpu_hours,cost_usd,progress\n"
                "a,1,g,8,2026-01-01T00:00,2026-01-01T10:00,completed,80,160,\n"
                "a,2,g,8,2026-01-01T10:00,,running,40,80,0.5\n")


def test_cli_as_of_a_time_within_the_day(cli, tmp_path):
    import json

    (tmp_path / "s.yaml").write_text(TINY)
    (tmp_path / "a.csv").write_text(TINY_ACTUALS)
    code, out, err = cli("reforecast", tmp_path / "s.yaml", "--actuals", tmp_path / "a.csv", "--as-of",
                         "2026-01-01T15:00", "--reps", "2", "--workers", "1", "--out", tmp_path / "rf")
    assert code == 0, err
    b = json.loads((tmp_path / "rf" / "summary.json").read_text())["reforecast"]
    assert b["as_of"] == "2026-01-01" and b["as_of_time"] == "2026-01-01T15:00"
    assert "re-forecast at 2026-01-01 15:00" in out
    # 5 h of run 2, 2 x 10 h of a, 5 h of b, one at a time from 15:00: 2026-01-02 11:00, on the deadline day
    assert b["finish_date"]["p50"] == "2026-01-02" and b["p_late"] == 0.0
    assert b["eac_usd"]["p50"] == pytest.approx(240 + 8 * 30 * 2.0)
    code, _out, err = cli("reforecast", tmp_path / "s.yaml", "--actuals", tmp_path / "a.csv", "--as-of",
                          "2026-01-01T09:00")  # before run 2 started: in the future of as_of
    assert code == 2 and "row 3" in err and "after as_of" in err, err
    code, _out, err = cli("reforecast", tmp_path / "s.yaml", "--actuals", tmp_path / "a.csv", "--as-of", "15:00")
    assert code == 2 and "--as-of" in err and "2026-06-30T12:00" in err


def test_run_resume_of_a_reforecast_folder_says_to_run_sim_reforecast_again(cli, tmp_path):
    import json

    (tmp_path / "s.yaml").write_text(TINY)
    (tmp_path / "a.csv").write_text(TINY_ACTUALS)
    code, _out, err = cli("reforecast", tmp_path / "s.yaml", "--actuals", tmp_path / "a.csv", "--reps", "2",
                          "--workers", "1", "--out", tmp_path / "rf")
    assert code == 0, err
    (tmp_path / "rf" / "report.html").unlink()  # killed while its report was drawn
    code, _out, err = cli("run", "--resume", tmp_path / "rf")
    assert code == 2 and "interrupted re-forecast" in err and "Traceback" not in err, err
    assert f"sim reforecast {tmp_path / 's.yaml'} --actuals {tmp_path / 'a.csv'}" in err
    assert f"--out {tmp_path / 'rf'} --overwrite" in err
    # killed while simulating: its state says it is a re-forecast
    parts = tmp_path / "rf2" / ".parts"
    parts.mkdir(parents=True)
    (parts / "state.json").write_text(json.dumps({
        "seed": 0, "reps": 2, "method": "random", "chunk": 1, "precision": None, "file": "x",
        "reforecast": {"scenario": "s.yaml", "actuals": "a.csv", "as_of": "2026-01-01T15:00", "ledger": None}}))
    code, _out, err = cli("run", "--resume", tmp_path / "rf2")
    assert code == 2 and "sim reforecast s.yaml --actuals a.csv --as-of 2026-01-01T15:00 --out" in err, err


def test_the_sacct_example_is_the_csv_examples_runs():
    from sim.actuals import read_actuals
    from tests.conftest import SCENARIOS

    loaded = sim.load(SCENARIOS / "example_llm_project.yaml")
    csv = read_actuals(EXAMPLES / "example_llm_project.csv", loaded, ledger=EXAMPLES / "example_llm_project_ledger.csv")
    sacct = read_actuals(EXAMPLES / "example_llm_project.sacct.txt", loaded, as_of="2027-01-25T00:00")
    assert sacct.as_of == csv.as_of == datetime(2027, 1, 25)  # the CSV's: the end of the ledger's last day
    assert [(r.workload, r.state, r.pool, r.accelerators, r.start) for r in sacct.runs] == \
        [(r.workload, r.state, r.pool, r.accelerators, r.start) for r in csv.runs]  # steps and PENDING left out
    assert sacct.gpu_hours == pytest.approx(csv.gpu_hours, rel=1e-3)
    assert all(r.cost_usd is None and r.progress is None for r in sacct.runs)


UNCERTAIN = {"project": {"name": "u", "start": "2026-01-01", "budget_usd": 3000},
             "pools": [{"name": "g", "accelerator": "h100", "count": 16, "price_usd_per_gpu_h": 2.0}],
             "workloads": [{"name": "a", "runs": 6, "params": "1B", "tokens": "20B", "accelerators": 8,
                            "mfu": {"dist": "lognormal", "p5": 0.3, "p95": 0.5},
                            "run_length": {"kind": "lognormal", "sigma": 0.2}},
                           {"name": "b", "runs": 2, "params": "1B", "tokens": "40B", "accelerators": 16, "after": ["a"],
                            "mfu": 0.4}],
             "reliability": {"failure_rate_per_gpu_h": {"dist": "lognormal", "p5": 1e-4, "p95": 1e-3}},
             "simulation": {"priors": "off"}}


def test_at_the_start_with_no_actuals_the_reforecast_is_the_run():
    import numpy as np

    loaded = load_data(UNCERTAIN, "u")
    run = sim.run(loaded, reps=6, seed=3, workers=1)
    rf_result = sim.reforecast(loaded, Acts([], as_of=datetime(2026, 1, 1)), reps=6, seed=3, workers=1)
    assert list(rf_result.replications["cost_usd"]) == list(run.replications["cost_usd"])
    assert list(rf_result.replications["makespan_days"]) == list(run.replications["makespan_days"])
    b = rf_result.summary["reforecast"]
    assert b["actual_to_date_usd"] == 0.0 and b["done_fraction"] == 0.0
    q = np.percentile(run.replications["cost_usd"], [5, 50, 95], method="weibull")
    assert [b["eac_usd"][k] for k in ("p5", "p50", "p95")] == pytest.approx(list(q), rel=1e-12)
    assert b["posterior"] == {}


def test_with_every_run_completed_the_reforecast_is_the_actual_cost_and_date(cli, tmp_path):
    import json

    (tmp_path / "s.yaml").write_text(TINY)
    done = TINY_ACTUALS.splitlines()[:2] + [
        "a,2,g,8,2026-01-01T10:00,2026-01-01T20:00,completed,80,160,",
        "a,3,g,8,2026-01-01T20:00,2026-01-02T06:00,completed,80,160,",
        "a,4,g,8,2026-01-02T06:00,2026-01-02T16:00,completed,80,170,",
        "b,1,g,8,2026-01-02T16:00,2026-01-02T21:00,completed,40,80,"]
    (tmp_path / "a.csv").write_text("\n".join(done) + "\n")
    code, out, err = cli("reforecast", tmp_path / "s.yaml", "--actuals", tmp_path / "a.csv", "--as-of", "2026-01-05",
                         "--out", tmp_path / "rf")
    assert code == 0, err
    b = json.loads((tmp_path / "rf" / "summary.json").read_text())["reforecast"]
    assert b["eac_usd"] == {"mean": 730.0, "p5": 730.0, "p50": 730.0, "p95": 730.0}
    assert b["finish_date"] == {"p5": "2026-01-02", "p50": "2026-01-02", "p95": "2026-01-02"}
    assert b["p_over_budget"] == 1.0 and b["p_late"] == 0.0 and b["done_fraction"] == 1.0
    assert "every run is done" in out


def test_a_running_attempt_before_the_divergence_point_may_still_go_wrong():
    # at 0.3: run r2 (10% done) may still diverge, and a rerun starts from nothing: it is the whole run under way
    # (done_at_start 0.1) with the workload's divergence; r1 (50% done) can no longer: the half run it has left
    loaded = project(workloads=[{"name": "a", "runs": 4, "hours_per_run": 10, "accelerators": 8,
                                 "divergence": {"probability": {"dist": "uniform", "min": 0.1, "max": 0.3},
                                                "at": 0.3, "rerun": True}}])
    runs = [Run("a", "r1", "running", 40, 80, progress=0.5), Run("a", "r2", "running", 8, 16, progress=0.1)]
    rem = rf.remaining(loaded, Acts(runs, as_of=datetime(2026, 1, 1, 5)), {"a": 80.0})
    by = {w["name"]: w for w in rem.raw["workloads"]}
    assert "divergence" not in by["a.running.r1"] and by["a.running.r1"]["hours_per_run"] == pytest.approx(5.0)
    assert by["a.running.r2"]["done_at_start"] == pytest.approx(0.1) and by["a.running.r2"]["hours_per_run"] == 10
    assert by["a.running.r2"]["divergence"]["at"] == pytest.approx(0.3)
    # one probability per workload: the posterior (1 passed of 1 attempt) in both, the two tied
    assert by["a.running.r2"]["divergence"]["probability"] == by["a"]["divergence"]["probability"]
    assert by["a"]["divergence"]["probability"]["dist"] == "pert"
    assert {"between": ["workloads[a.running.r2].divergence.probability", "workloads[a].divergence.probability"],
            "rank": rf.TIE_RANK} in rem.raw["correlations"]
    from sim.api import feasible

    feasible(load_data(rem.raw, "t"))


@pytest.mark.parametrize(("done", "hours"), [(0.1, 2.0), (0.5, 5.0), (0.0, 3.0)])
def test_a_run_under_way_goes_on_from_its_share_done(done, hours):
    # a 10 h run that always goes wrong at 30% and is abandoned: from 10% done it stops 2 h later; from 50% it is
    # past that point and finishes its 5 h left; from nothing, 3 h
    w = {"name": "a", "runs": 1, "hours_per_run": 10, "accelerators": 8,
         "divergence": {"probability": 1, "at": 0.3, "rerun": False}}
    if done:
        w["done_at_start"] = done
    r = sim.run(project(workloads=[w]), reps=1, workers=1)
    assert r.replications["makespan_days"][0] * 24 == pytest.approx(hours)
    assert r.replications["cost_usd"][0] == pytest.approx(hours * 8 * 2.0)


def test_an_uncertain_divergence_point_leaves_the_engine_to_decide_whether_a_running_run_may_still_go_wrong():
    # Crashed (float() of a distribution): `at` uniform on [0.2, 0.6]. Both running runs become the whole run
    # under way with the divergence (the engine draws `at` and diverges only a run not past it); a running run
    # counts as passed in the rerun update when past the median, 0.4 (r1 at 0.5: 1 passed, r2 at 0.1: not).
    at = {"dist": "uniform", "min": 0.2, "max": 0.6}
    loaded = project(workloads=[{"name": "a", "runs": 4, "hours_per_run": 10, "accelerators": 8,
                                 "divergence": {"probability": 0.2, "at": at, "rerun": True}}])
    runs = [Run("a", "r1", "running", 40, 80, progress=0.5), Run("a", "r2", "running", 8, 16, progress=0.1)]
    rem = rf.remaining(loaded, Acts(runs, as_of=datetime(2026, 1, 1, 5)), {"a": 80.0})
    by = {w["name"]: w for w in rem.raw["workloads"]}
    for name, done in (("a.running.r1", 0.5), ("a.running.r2", 0.1)):
        assert by[name]["done_at_start"] == pytest.approx(done) and by[name]["hours_per_run"] == 10
        assert by[name]["divergence"]["at"]["dist"] == "uniform"
    assert rem.posterior["workloads[a].divergence.probability"]["attempts"] == 1


def _ties(rem, key: str) -> set:
    return {frozenset(c["between"]) for c in rem.raw["correlations"]
            if c["rank"] == rf.TIE_RANK and all(b.endswith(f"].{key}") for b in c["between"])}


def _all_pairs(names, key: str) -> set:
    keys = [f"workloads[{n}].{key}" for n in names]
    return {frozenset((x, y)) for i, x in enumerate(keys) for y in keys[i + 1:]}


def _spearman(x, y) -> float:
    import numpy as np

    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def test_running_runs_share_their_workloads_one_draw_of_an_uncertain_divergence_point():
    # `at` uniform on [0.2, 0.6]: both running runs keep the workload's divergence (the engine draws `at`); each
    # drew its own `at` (only divergence.probability was tied), where the original scenario has one per workload
    # in a replication. The three copies of `at` (r1, r2 and the runs still to do) are tied pairwise, and the
    # scenario's correlation of `at` with the probability is given to every copy (the matrix stays valid).
    at = {"dist": "uniform", "min": 0.2, "max": 0.6}
    loaded = project(workloads=[{"name": "a", "runs": 4, "hours_per_run": 10, "accelerators": 8,
                                 "divergence": {"probability": {"dist": "uniform", "min": 0.1, "max": 0.3},
                                                "at": at, "rerun": True}}],
                     correlations=[{"between": ["workloads[a].divergence.at", "workloads[a].divergence.probability"],
                                    "rank": 0.5}])
    runs = [Run("a", "r1", "running", 40, 80, progress=0.5), Run("a", "r2", "running", 8, 16, progress=0.1)]
    rem = rf.remaining(loaded, Acts(runs, as_of=datetime(2026, 1, 1, 5)), {"a": 80.0})
    names = ["a.running.r1", "a.running.r2", "a"]
    assert _ties(rem, "divergence.at") == _all_pairs(names, "divergence.at")
    assert _ties(rem, "divergence.probability") == _all_pairs(names, "divergence.probability")
    assert {"between": ["workloads[a].divergence.at", "workloads[a.running.r2].divergence.probability"],
            "rank": 0.5} in rem.raw["correlations"]
    # through the engine: per replication the three `at` drawn are one draw (rank correlation 0.99, so nearly
    # equal), as the original scenario's one `at` per workload; independent draws differ by 0.13 on average
    r = sim.run(load_data(rem.raw, "t"), reps=60, workers=1)
    cols = [r.replications[f"input:workloads[{n}].divergence.at"] for n in names]
    for c in cols[1:]:
        assert _spearman(cols[0], c) > 0.95
        assert (abs(cols[0] - c)).mean() < 0.02


def test_running_runs_share_every_uncertain_nested_input_they_keep():
    # stragglers, loss spikes, scaling and checkpoint writes are kept by a running remainder: each uncertain one
    # is the workload's one draw, tied across r1, r2 and the runs still to do; a point (stragglers.sigma) is not
    dist = {"dist": "uniform", "min": 0.1, "max": 0.3}
    w = {"name": "a", "runs": 4, "hours_per_run": 10, "accelerators": 8,
         "stragglers": {"fraction": dist, "slowdown": {"dist": "uniform", "min": 1.1, "max": 1.5}, "sigma": 0.1},
         "loss_spike": {"rate_per_h": {"dist": "uniform", "min": 0.01, "max": 0.05},
                        "rollback": {"dist": "uniform", "min": 0.5, "max": 2}},
         "scaling": {"kind": "per_doubling", "efficiency": {"dist": "uniform", "min": 0.8, "max": 1.0}},
         "checkpoint": {"interval": 1, "write": {"dist": "uniform", "min": 0.01, "max": 0.05}}}
    keys = ["stragglers.fraction", "stragglers.slowdown", "loss_spike.rate_per_h", "loss_spike.rollback",
            "scaling.efficiency", "checkpoint.write"]
    runs = [Run("a", "r1", "running", 40, 80, progress=0.5), Run("a", "r2", "running", 8, 16, progress=0.1)]
    rem = rf.remaining(project(workloads=[w]), Acts(runs, as_of=datetime(2026, 1, 1, 5)), {"a": 80.0})
    names = ["a.running.r1", "a.running.r2", "a"]
    assert {frozenset(c["between"]) for c in rem.raw["correlations"]} == set().union(
        *(_all_pairs(names, k) for k in keys))
    r = sim.run(load_data(rem.raw, "t"), reps=40, workers=1)
    for k in keys:
        cols = [r.replications[f"input:workloads[{n}].{k}"] for n in names]
        assert all(_spearman(cols[0], c) > 0.95 for c in cols[1:]), k


def _two_mfus(first: str, second: str, runs: int = 3, b_runs: int = 2):
    mfu = {"dist": "lognormal", "p5": 0.3, "p95": 0.5}
    return project(workloads=[{"name": "a", "runs": runs, "params": "1B", "tokens": "20B", "accelerators": 8,
                               "mfu": mfu},
                              {"name": "b", "runs": b_runs, "params": "1B", "tokens": "20B", "accelerators": 8,
                               "mfu": dict(mfu), "after": ["a"]}],
                   correlations=[{"between": [f"workloads[{first}].mfu", f"workloads[{second}].mfu"], "rank": 0.5}])


UNDER_WAY = {  # runs under way at the as-of time (and one case where a is done: it is gone from the work left)
    "one": [Run("a", "1", "running", 24, 48, progress=0.3)],
    "two": [Run("a", "1", "running", 24, 48, progress=0.3), Run("a", "2", "running", 8, 16, progress=0.1)],
    "a done": [*(Run("a", str(i), "completed", 80, 160) for i in (1, 2, 3)),
               Run("b", "4", "running", 16, 32, progress=0.2)],
}


@pytest.mark.parametrize("under_way", list(UNDER_WAY))
def test_a_correlation_naming_workloads_by_position_is_read_as_the_same_one_by_name(under_way):
    # `workloads[0]` is the workload first in the scenario; in the work left the running remainders come first
    # and done workloads are gone, so a position would name another workload (here a remainder and its own
    # workload, whose pair the tie correlates already: the work left was refused). It is the one written so
    # by name: the same correlations in the work left, the same re-forecast.
    acts_ = Acts(UNDER_WAY[under_way], as_of=datetime(2026, 1, 1, 3))
    nominal_h = {"a": 80.0, "b": 80.0}
    by_position = rf.remaining(_two_mfus("0", "1"), acts_, nominal_h).raw["correlations"]
    assert by_position == rf.remaining(_two_mfus("a", "b"), acts_, nominal_h).raw["correlations"]
    assert not any(re.search(r"workloads\[-?\d+\]", b) for c in by_position for b in c["between"])
    if under_way != "a done":  # a's remainders are correlated with b, as a is
        assert {"between": ["workloads[a.running.1].mfu", "workloads[b].mfu"], "rank": 0.5} in by_position
    results = [sim.reforecast(_two_mfus(*refs), acts_, reps=4, workers=1) for refs in (("0", "1"), ("a", "b"))]
    left = [r.manifest["resolved_scenario"]["correlations"] for r in results]
    assert left[0] == left[1]
    assert list(results[0].replications["cost_usd"]) == list(results[1].replications["cost_usd"])


def test_positions_are_named_however_the_key_goes_on():
    names = {"workloads": ["a", "b", "c"]}
    assert named_path("workloads[-1].divergence.at", names) == "workloads[c].divergence.at"
    assert named_path("workloads[ 1 ].mfu", names) == "workloads[b].mfu"
    for as_written in ("workloads[a].mfu", "pools[0].price_usd_per_gpu_h", "reliability.failure_rate_per_gpu_h",
                       "pools[g].price_curve.jumps[0].change"):
        assert named_path(as_written, names) == as_written


POSITIONS = """\
project: {name: positions, start: 2026-01-01}
pools: [{name: g, accelerator: h100, count: 16, price_usd_per_gpu_h: 2.0}]
workloads:
  - {name: a, runs: 3, params: 1B, tokens: 20B, accelerators: 8, mfu: {dist: lognormal, p5: 0.3, p95: 0.5}}
  - {name: b, runs: 2, params: 1B, tokens: 20B, accelerators: 8, mfu: {dist: lognormal, p5: 0.3, p95: 0.5},
     after: [a]}
correlations:
  - {between: ["workloads[FIRST].mfu", "workloads[SECOND].mfu"], rank: 0.5}
simulation: {priors: off}
"""
POSITIONS_ACTUALS = {
    "one": "a,1,g,8,2026-01-01T00:00,,running,24,48,0.3\n",
    "two": "a,1,g,8,2026-01-01T00:00,,running,24,48,0.3\na,2,g,8,2026-01-01T02:00,,running,8,16,0.1\n",
}


@pytest.mark.parametrize("under_way", list(POSITIONS_ACTUALS))
def test_cli_reforecasts_a_scenario_correlating_workloads_by_position(cli, tmp_path, under_way):
    import json

    (tmp_path / "a.csv").write_text("workload,run_id,pool,accelerators,start,end,state,gpu_hours,cost_usd,progress\n"
                                    + POSITIONS_ACTUALS[under_way])
    left = []
    for refs in (("0", "1"), ("a", "b")):
        scenario = tmp_path / f"s-{refs[0]}.yaml"
        scenario.write_text(POSITIONS.replace("FIRST", refs[0]).replace("SECOND", refs[1]))
        out = tmp_path / f"rf-{refs[0]}"
        code, _out, err = cli("reforecast", scenario, "--actuals", tmp_path / "a.csv", "--as-of", "2026-01-01T03:00",
                              "--reps", "4", "--workers", "1", "--out", out)
        assert code == 0, err
        manifest = json.loads((out / "manifest.json").read_text())
        left.append((manifest["resolved_scenario"]["correlations"],
                     json.loads((out / "summary.json").read_text())["reforecast"]["eac_usd"]))
    assert left[0] == left[1]
    assert {"between": ["workloads[a.running.1].mfu", "workloads[b].mfu"], "rank": 0.5} in left[0][0]


ONLY_UNDER_WAY = {  # workloads whose only work left is their one run, under way: (a's runs, b's runs), runs, the pair
    "a": ((1, 2), [Run("a", "1", "running", 24, 48, progress=0.3)], ("a.running.1", "b")),
    "a and b": ((1, 1), [Run("a", "1", "running", 24, 48, progress=0.3), Run("b", "2", "running", 8, 16, progress=0.1)],
                ("a.running.1", "b.running.2")),
}


@pytest.mark.parametrize("case", list(ONLY_UNDER_WAY))
def test_a_workload_whose_only_work_left_is_a_run_under_way_passes_its_correlations_to_it(case):
    # Were dropped (`correlations: []`): a workload with one run, under way, has no runs still to do, so it was
    # taken for done and every correlation naming it went. Its remainder is the workload now: the correlation
    # names it, and the re-forecast's draws of the two MFUs keep their rank correlation 0.5.
    (a_runs, b_runs), runs, (x, y) = ONLY_UNDER_WAY[case]
    loaded, acts_ = _two_mfus("a", "b", runs=a_runs, b_runs=b_runs), Acts(runs, as_of=datetime(2026, 1, 1, 3))
    rem = rf.remaining(loaded, acts_, {"a": 80.0, "b": 80.0})
    assert rem.raw["correlations"] == [{"between": [f"workloads[{x}].mfu", f"workloads[{y}].mfu"], "rank": 0.5}]
    r = sim.reforecast(loaded, acts_, reps=200, workers=1)
    assert r.manifest["resolved_scenario"]["correlations"] == rem.raw["correlations"]
    rho = _spearman(r.replications[f"input:workloads[{x}].mfu"], r.replications[f"input:workloads[{y}].mfu"])
    assert 0.35 < rho < 0.65  # (independent: about 0, sd 0.07 at 200 replications)


ONLY_UNDER_WAY_CSV = {  # (a's runs, b's runs), the actuals' rows, the pair the correlation is now between
    "a": ((1, 2), "a,1,g,8,2026-01-01T00:00,,running,24,48,0.3\n", ("a.running.1", "b")),
    "a and b": ((1, 1), "a,1,g,8,2026-01-01T00:00,,running,24,48,0.3\nb,2,g,8,2026-01-01T02:00,,running,8,16,0.1\n",
                ("a.running.1", "b.running.2")),
}


@pytest.mark.parametrize("case", list(ONLY_UNDER_WAY_CSV))
def test_cli_reforecasts_a_correlation_of_workloads_whose_only_work_left_is_a_run_under_way(cli, tmp_path, case):
    import json

    import pandas as pd

    (a_runs, b_runs), rows, (x, y) = ONLY_UNDER_WAY_CSV[case]
    (tmp_path / "a.csv").write_text("workload,run_id,pool,accelerators,start,end,state,gpu_hours,cost_usd,progress\n"
                                    + rows)
    scenario = POSITIONS.replace("FIRST", "a").replace("SECOND", "b").replace("runs: 3", f"runs: {a_runs}")
    (tmp_path / "s.yaml").write_text(scenario.replace("runs: 2", f"runs: {b_runs}"))
    code, _out, err = cli("reforecast", tmp_path / "s.yaml", "--actuals", tmp_path / "a.csv", "--as-of",
                          "2026-01-01T03:00", "--reps", "200", "--workers", "1", "--out", tmp_path / "rf")
    assert code == 0, err
    manifest = json.loads((tmp_path / "rf" / "manifest.json").read_text())
    assert manifest["resolved_scenario"]["correlations"] == [
        {"between": [f"workloads[{x}].mfu", f"workloads[{y}].mfu"], "rank": 0.5}]
    reps = pd.read_parquet(tmp_path / "rf" / "replications.parquet")
    assert 0.35 < _spearman(reps[f"input:workloads[{x}].mfu"], reps[f"input:workloads[{y}].mfu"]) < 0.65


@pytest.mark.parametrize("under_way", ["one", "two", "a's only run"])
def test_a_correlation_with_spaces_in_its_brackets_is_read_as_the_workload_it_names(under_way):
    # `workloads[ a ].mfu` is a's MFU to the loader; was not recognised as a's: its remainders got none of the
    # correlation, and tied to a at 0.99 with a correlated with b at 0.5 and they not, the work left was refused
    # (not positive definite). It is now read as written without the spaces: the same work left, which loads,
    # and its draws hold both the ties and the correlation.
    runs = UNDER_WAY["one"] if under_way == "a's only run" else UNDER_WAY[under_way]
    a_runs = 1 if under_way == "a's only run" else 3
    acts_ = Acts(runs, as_of=datetime(2026, 1, 1, 3))
    nominal_h = {"a": 80.0, "b": 80.0}
    spaced = rf.remaining(_two_mfus(" a ", "b ", runs=a_runs), acts_, nominal_h).raw
    plain = rf.remaining(_two_mfus("a", "b", runs=a_runs), acts_, nominal_h).raw
    assert spaced["correlations"] == plain["correlations"]
    copies = [w["name"] for w in spaced["workloads"] if rf._of_workload(w["name"], "a")]
    assert {frozenset(c["between"]) for c in spaced["correlations"] if c["rank"] == 0.5} == {
        frozenset((f"workloads[{n}].mfu", "workloads[b].mfu")) for n in copies}
    r = sim.run(load_data(spaced, "t"), reps=200, workers=1)
    b = r.replications["input:workloads[b].mfu"]
    for n in copies:
        assert 0.35 < _spearman(r.replications[f"input:workloads[{n}].mfu"], b) < 0.65, n
        assert _spearman(r.replications[f"input:workloads[{copies[0]}].mfu"],
                         r.replications[f"input:workloads[{n}].mfu"]) > 0.95


@pytest.mark.parametrize(("progress", "kept"), [(0.1, True), (0.5, False)])
def test_a_correlation_of_a_key_goes_to_the_remainder_that_keeps_it_and_not_to_one_that_drops_it(progress, kept):
    # a's one run is under way: before the divergence point (0.3) it may still diverge and keeps the divergence,
    # whose probability's correlation with b's MFU is its now; past it the remainder has no divergence, and the
    # correlation goes (the MFUs' stays). The work left loads either way.
    mfu = {"dist": "lognormal", "p5": 0.3, "p95": 0.5}
    loaded = project(workloads=[{"name": "a", "runs": 1, "params": "1B", "tokens": "20B", "accelerators": 8, "mfu": mfu,
                                 "divergence": {"probability": {"dist": "uniform", "min": 0.1, "max": 0.3},
                                                "at": 0.3, "rerun": True}},
                                {"name": "b", "runs": 2, "params": "1B", "tokens": "20B", "accelerators": 8,
                                 "mfu": dict(mfu)}],
                     correlations=[
                         {"between": ["workloads[a].divergence.probability", "workloads[b].mfu"], "rank": 0.4},
                         {"between": ["workloads[a].mfu", "workloads[b].mfu"], "rank": 0.5}])
    acts_ = Acts([Run("a", "1", "running", 80 * progress, 160 * progress, progress=progress)],
                 as_of=datetime(2026, 1, 1, 3))
    rem = rf.remaining(loaded, acts_, {"a": 80.0, "b": 80.0})
    assert ("divergence" in rem.raw["workloads"][0]) == kept
    expected = [{"between": ["workloads[a.running.1].mfu", "workloads[b].mfu"], "rank": 0.5}]
    if kept:
        expected.insert(0, {"between": ["workloads[a.running.1].divergence.probability", "workloads[b].mfu"],
                            "rank": 0.4})
    assert rem.raw["correlations"] == expected
    dropped = [n for n in rem.notes if n.startswith("correlation ")]  # a note says which went, and why
    assert dropped == ([] if kept else [
        "correlation workloads[a].divergence.probability ~ workloads[b].mfu (rank 0.4) dropped: the work left of a "
        "no longer has divergence: it is its run(s) under way, past its divergence point (at 0.3)"])
    load_data(rem.raw, "t")


def test_a_correlation_with_a_price_the_work_left_knows_goes():
    # the price walk restarts from the price last paid, a number: a correlation naming the uncertain price it was
    # made the work left refused ("not uncertain"); it goes, and the workloads' ties stay
    mfu = {"dist": "lognormal", "p5": 0.3, "p95": 0.5}
    loaded = project(pools=[{"name": "g", "accelerator": "h100", "count": 8,
                             "price_usd_per_gpu_h": {"dist": "uniform", "min": 1.5, "max": 2.5},
                             "price_curve": {"kind": "random_walk", "annual_decline": 0.1, "volatility": 0.2}}],
                     workloads=[{"name": "a", "runs": 3, "params": "1B", "tokens": "20B", "accelerators": 8,
                                 "mfu": mfu}],
                     correlations=[{"between": ["pools[g].price_usd_per_gpu_h", "workloads[a].mfu"], "rank": 0.5}])
    acts_ = Acts([Run("a", "1", "running", 24, 48, progress=0.3)], as_of=datetime(2026, 1, 1, 3))
    rem = rf.remaining(loaded, acts_, {"a": 80.0})
    assert rem.raw["pools"][0]["price_usd_per_gpu_h"] == 2.0
    assert rem.raw["correlations"] == [{"between": ["workloads[a.running.1].mfu", "workloads[a].mfu"],
                                        "rank": rf.TIE_RANK}]
    assert "correlation pools[g].price_usd_per_gpu_h ~ workloads[a].mfu (rank 0.5) dropped: price of pool g is no " \
        "longer uncertain (its price walk restarts from the price last paid)" in rem.notes
    load_data(rem.raw, "t")


DROPPED = "correlation workloads[{}].mfu ~ workloads[{}].mfu (rank 0.5) dropped: workload a has no work left " \
    "(every run completed)"


@pytest.mark.parametrize("refs", [("a", "b"), ("0", "1")])
@pytest.mark.parametrize("under_way", ["a done", "one"])
def test_a_correlation_of_a_done_workload_goes_with_a_note_naming_it(refs, under_way):
    # a's runs are all done: the correlation of its MFU with b's has nothing to go to in the work left, and went
    # silently. A note names it as written (by position too) and says why; through the API the notes are the
    # reforecast block's. With a run of a under way it is kept (given to the remainder), and no note.
    loaded, acts_ = _two_mfus(*refs), Acts(UNDER_WAY[under_way], as_of=datetime(2026, 1, 1, 3))
    rem = rf.remaining(loaded, acts_, {"a": 80.0, "b": 80.0})
    expected = [DROPPED.format(*refs)] if under_way == "a done" else []
    assert [n for n in rem.notes if n.startswith("correlation ")] == expected
    r = sim.reforecast(loaded, acts_, reps=4, workers=1)
    assert [n for n in r.summary["reforecast"]["notes"] if n.startswith("correlation ")] == expected
    assert not any(n.startswith("correlation ") and "running" in n for n in rem.notes)  # none for the ties made


DONE_CSV = {  # the actuals' rows: a's three runs done (its correlation goes), or one under way (it is kept)
    "a done": "".join(f"a,{i},g,8,2026-01-01T00:00,2026-01-01T01:00,completed,8,16,1\n" for i in (1, 2, 3))
              + "b,4,g,8,2026-01-01T01:00,,running,16,32,0.2\n",
    "one": "a,1,g,8,2026-01-01T00:00,,running,24,48,0.3\n",
}


@pytest.mark.parametrize("under_way", list(DONE_CSV))
def test_cli_notes_a_correlation_dropped_with_its_done_workload(cli, tmp_path, under_way):
    import json

    (tmp_path / "a.csv").write_text("workload,run_id,pool,accelerators,start,end,state,gpu_hours,cost_usd,progress\n"
                                    + DONE_CSV[under_way])
    (tmp_path / "s.yaml").write_text(POSITIONS.replace("FIRST", "a").replace("SECOND", "b"))
    code, out, err = cli("reforecast", tmp_path / "s.yaml", "--actuals", tmp_path / "a.csv", "--as-of",
                         "2026-01-01T03:00", "--reps", "4", "--workers", "1", "--out", tmp_path / "rf")
    assert code == 0, err
    notes = json.loads((tmp_path / "rf" / "summary.json").read_text())["reforecast"]["notes"]
    if under_way == "a done":
        assert f"note: {DROPPED.format('a', 'b')}" in out.splitlines()
        assert DROPPED.format("a", "b") in notes
    else:
        assert "note: correlation" not in out
        assert not any(n.startswith("correlation ") for n in notes)
