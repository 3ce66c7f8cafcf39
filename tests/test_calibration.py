"""`sim calibrate` (sim/calibration.py): a team's own priors fitted on its finished projects; the
effective MFU and the failure-rate posterior in closed form; the written file read by sim.priors and
used by a scenario ahead of the built-in rows; bad inputs exit 2 naming the file."""

import math

import pytest
import yaml

import sim
from sim import calibration
from sim.loader import ScenarioError, load
from sim.priors import builtin, read_file

Z95 = 1.6448536269514722
PEAK = 989e12  # h100 dense BF16, sim/data/accelerators.yaml
# 6 x 1B x 56,966,400,000 tokens = 8 x 989e12 x 0.3 x 40 h: effective MFU 0.3 in 40 h, 0.4 in 30 h
SCENARIO = """\
project: {name: past-a, start: 2026-01-01}
pools:
  - {name: gpus, accelerator: h100, count: 64, price_usd_per_gpu_h: 2.0}
  - {name: a100, accelerator: a100-80gb, count: 64, price_usd_per_gpu_h: 1.5}
workloads:
  - {name: train, runs: 3, params: 1B, tokens: 56966400000, accelerators: 8, mfu: 0.4, pools: [gpus]}
  - {name: big, runs: 1, flop_per_run: 1e21, accelerators: 8, mfu: 0.4, pools: [a100]}
  - {name: tune, runs: 1, gpu_hours_per_run: 10, accelerators: 8, pools: [gpus]}
"""
HEADER = "workload,run_id,pool,accelerators,start,end,state,gpu_hours,cost_usd,interruptions\n"
ACTUALS = HEADER + (
    "train,r1,gpus,8,2026-01-02T00:00,2026-01-03T16:00,completed,320,640,3\n"  # 40 h: MFU 0.3
    "train,r2,gpus,8,2026-01-05T00:00,2026-01-06T06:00,completed,240,480,1\n"  # 30 h: MFU 0.4
    "train,r3,gpus,8,2026-01-07T00:00,2026-01-07T05:00,failed,40,80,1\n"
    "tune,t1,gpus,8,2026-01-08T00:00,2026-01-08T02:00,completed,16,32,\n"  # no FLOP: not used for MFU
)


@pytest.fixture
def past(tmp_path):
    def make(actuals: str = ACTUALS, scenario: str = SCENARIO, name: str = "past") -> str:
        d = tmp_path / name
        d.mkdir()
        (d / "scenario.yaml").write_text(scenario)
        (d / "actuals.csv").write_text(actuals)
        return str(d)

    return make


def fitted(result: dict, key: str) -> list[dict]:
    return [f for f in result["fitted"] if f["key"] == key]


def builtin_sigma(ctx: dict) -> float:
    v = builtin().find("workloads.mfu", ctx).value
    return math.log(v["p95"] / v["p5"]) / (2 * Z95)


def test_mfu_row_is_the_lognormal_of_the_runs_effective_mfu(past):
    result = sim.calibrate([past()])
    [row] = fitted(result, "workloads.mfu")
    assert row["n"] == 2
    assert row["when"] == {"accelerator": ["h100"], "params": [10**9, 10**15], "run_accelerators": [0, 4096]}
    assert row["median"] == pytest.approx(math.sqrt(0.3 * 0.4), rel=1e-9)  # the geometric mean
    assert row["log_sd"] == pytest.approx(math.log(4 / 3) / math.sqrt(2), rel=1e-9)
    # two runs: widened to at least the built-in row's spread
    sigma = max(row["log_sd"], builtin_sigma({"accelerator": "h100", "params": 1e9, "run_accelerators": 8}))
    assert row["sigma"] == pytest.approx(sigma)
    v = row["value"]
    assert v["dist"] == "lognormal" and v["clip"] is True
    assert math.sqrt(v["p5"] * v["p95"]) == pytest.approx(math.sqrt(0.12), rel=1e-3)
    assert v["p95"] == pytest.approx(math.sqrt(0.12) * math.exp(Z95 * sigma), rel=1e-3)
    assert row["source"] == "calibrated from 2 completed runs of past-a"
    assert row["date"] == "2026-01-06"  # the latest run's end
    assert "N = 2" in row["note"] and "effective mfu" in row["note"].lower()
    assert any(n.startswith("past-a: 1 completed run(s) not used for MFU") for n in result["notes"])  # tune


def test_three_runs_use_their_own_log_sd(past):
    # a third run at MFU 0.35: 6ND / (8 x 989e12 x 0.35) seconds
    secs = 6e9 * 56966400000 / (8 * PEAK * 0.35)
    from datetime import datetime, timedelta

    end = (datetime(2026, 1, 10) + timedelta(seconds=secs)).isoformat()
    text = ACTUALS + f"train,r4,gpus,8,2026-01-10T00:00,{end},completed,280,560,0\n"
    [row] = fitted(sim.calibrate([past(text)]), "workloads.mfu")
    logs = [math.log(x) for x in (0.3, 0.4, 0.35)]
    mu = sum(logs) / 3
    sd = math.sqrt(sum((x - mu) ** 2 for x in logs) / 2)
    assert row["n"] == 3
    assert row["median"] == pytest.approx(math.exp(mu), rel=1e-6)
    assert row["sigma"] == pytest.approx(sd, rel=1e-6)
    assert row["value"]["p5"] == pytest.approx(math.exp(mu - Z95 * sd), rel=1e-3)
    assert row["value"]["p95"] == pytest.approx(math.exp(mu + Z95 * sd), rel=1e-3)


def test_failure_rate_is_the_gamma_posterior_from_a_weak_prior(past):
    [row] = fitted(sim.calibrate([past()]), "reliability.failure_rate_per_gpu_h")
    # the built-in h100 row: lognormal P5 7e-06 / P95 3.5e-05 -> its mean is the prior's
    s0 = math.log(3.5e-5 / 7e-6) / (2 * Z95)
    m0 = math.sqrt(7e-6 * 3.5e-5) * math.exp(s0**2 / 2)
    events, exposure = 3 + 1 + 1, 320 + 240 + 40  # runs with an interruptions count
    shape, rate = 1 + events, 1 / m0 + exposure
    assert row["n"] == 3 and row["when"] == {"accelerator": ["h100"]}
    assert row["posterior_mean"] == pytest.approx(shape / rate, rel=1e-12)
    assert row["posterior_cv"] == pytest.approx(1 / math.sqrt(shape), rel=1e-12)
    sigma = math.sqrt(math.log1p(1 / shape))
    median = shape / rate / math.exp(sigma**2 / 2)
    assert row["value"]["p5"] == pytest.approx(median * math.exp(-Z95 * sigma), rel=1e-3)
    assert row["value"]["p95"] == pytest.approx(median * math.exp(Z95 * sigma), rel=1e-3)
    assert "5 interruptions over 600 accelerator-hours" in row["note"]


def test_flop_per_run_workload_on_an_unbanded_accelerator(past):
    # a100 rows are not banded by size, so a run without params still has a band
    secs = 1e21 / (8 * 312e12 * 0.5)
    from datetime import datetime, timedelta

    end = (datetime(2026, 2, 1) + timedelta(seconds=secs)).isoformat()
    result = sim.calibrate([past(HEADER + f"big,b1,a100,8,2026-02-01T00:00,{end},completed,1,1,\n")])
    [row] = fitted(result, "workloads.mfu")
    assert row["when"] == {"accelerator": ["a100-80gb"]}
    assert row["median"] == pytest.approx(0.5, rel=1e-6)
    assert not fitted(result, "reliability.failure_rate_per_gpu_h")  # no interruptions counted


def test_written_file_is_read_by_priors_and_used_ahead_of_the_builtin_rows(past, tmp_path, cli):
    out = tmp_path / "priors.yaml"
    code, stdout, _err = cli("calibrate", past(), "--out", out)
    assert code == 0
    assert "workloads.mfu" in stdout and "reliability.failure_rate_per_gpu_h" in stdout
    text = out.read_text()
    assert "# h100, params 1B-1e+15, 0-4,096 accelerators: N = 2" in text
    assert "# h100: N = 3" in text
    pri = read_file(out)
    [mfu] = pri.rows["workloads.mfu"]
    assert mfu.checked and mfu.source == "calibrated from 2 completed runs of past-a" and "N = 2" in mfu.note
    assert len(pri.rows["reliability.failure_rate_per_gpu_h"]) == 1

    new = tmp_path / "new.yaml"
    new.write_text("project: {name: next, start: 2026-06-01}\n"
                   "pools: [{name: gpus, accelerator: h100, count: 16384, price_usd_per_gpu_h: 2.0}]\n"
                   "workloads:\n"
                   "  - {name: pretrain, params: 7B, tokens: 1T, accelerators: 256}\n"
                   "  - {name: huge, params: 70B, tokens: 1T, accelerators: 8192}\n"
                   f"simulation: {{priors_file: {out.name}}}\n")
    used = {p["key"]: p for p in load(new).priors}
    assert used["workloads[pretrain].mfu"]["from"] == str(out)
    assert used["workloads[pretrain].mfu"]["value"] == mfu.value
    assert used["workloads[huge].mfu"]["from"] == "built-in"  # 8,192 accelerators: outside the fitted band
    assert used["reliability.failure_rate_per_gpu_h"]["from"] == str(out)
    code, stdout, _err = cli("estimate", new)
    assert code == 0
    line = next(x for x in stdout.splitlines() if "workloads[pretrain].mfu" in x)
    assert "calibrated from 2 completed runs of past-a" in line and line.endswith(f"[from {out}]")


def test_pair_forms(past, tmp_path):
    d = past()
    a = sim.calibrate([f"{d}/scenario.yaml:{d}/actuals.csv"])
    b = sim.calibrate([(f"{d}/scenario.yaml", f"{d}/actuals.csv")])
    assert a["fitted"] == b["fitted"] == sim.calibrate(d)["fitted"]


def test_sacct_folder(past, tmp_path):
    d = past(name="slurm")
    (tmp_path / "slurm" / "actuals.csv").unlink()
    (tmp_path / "slurm" / "sacct.txt").write_text(
        "JobID|JobName|Partition|Start|End|Elapsed|AllocTRES|State\n"
        "7|train|gpus|2026-01-02T00:00:00|2026-01-03T16:00:00|1-16:00:00|gres/gpu=8|COMPLETED\n")
    [row] = fitted(sim.calibrate([d]), "workloads.mfu")
    assert row["n"] == 1 and row["median"] == pytest.approx(0.3, rel=1e-9)
    # one run: the spread is the built-in row's
    assert row["sigma"] == pytest.approx(builtin_sigma({"accelerator": "h100", "params": 1e9, "run_accelerators": 8}))


def test_two_projects_pool_their_runs(past):
    other = SCENARIO.replace("past-a", "past-b")
    [row] = fitted(sim.calibrate([past(), past(scenario=other, name="b")]), "workloads.mfu")
    assert row["n"] == 4 and row["source"] == "calibrated from 4 completed runs of past-a, past-b"


def test_out_is_not_replaced_without_overwrite(past, tmp_path):
    out = tmp_path / "priors.yaml"
    out.write_text("mine\n")
    with pytest.raises(sim.SettingsError):
        sim.calibrate([past()], out=out)
    assert out.read_text() == "mine\n"
    assert sim.calibrate([past(name="p2")], out=out, overwrite=True)["out"] == str(out)
    assert read_file(out).rows


@pytest.mark.parametrize("case", ["no colon", "missing actuals", "two actuals", "no scenario", "mfu above 1",
                                  "nothing to fit", "bad row"])
def test_bad_pasts_exit_2_naming_the_file(case, past, tmp_path, cli):
    d = past()
    arg, named = d, d
    if case == "no colon":
        arg = named = f"{d}/scenario.yaml"
    elif case == "missing actuals":
        arg, named = f"{d}/scenario.yaml:{d}/nope.csv", f"{d}/nope.csv"
    elif case == "two actuals":
        (tmp_path / "past" / "sacct.txt").write_text("x")
    elif case == "no scenario":
        (tmp_path / "past" / "scenario.yaml").unlink()
    elif case == "mfu above 1":  # 1 h for 40 h of work at MFU 0.3
        (tmp_path / "past" / "actuals.csv").write_text(
            HEADER + "train,r1,gpus,8,2026-01-02T00:00,2026-01-02T01:00,completed,8,16,\n")
        named = f"{d}/actuals.csv: row 2"
    elif case == "nothing to fit":
        (tmp_path / "past" / "actuals.csv").write_text(HEADER + "tune,t1,gpus,8,2026-01-08,2026-01-08T02:00,"
                                                       "completed,16,32,\n")
    elif case == "bad row":
        (tmp_path / "past" / "actuals.csv").write_text(HEADER + "trian,r1,gpus,8,2026-01-02,2026-01-03,"
                                                       "completed,8,16,\n")
        named = f"{d}/actuals.csv: row 2.workload"
    code, _out, err = cli("calibrate", arg, "--out", tmp_path / "p.yaml")
    assert code == 2, err
    assert named in err
    assert not (tmp_path / "p.yaml").exists()
    with pytest.raises(ScenarioError):
        calibration.calibrate([arg])


def test_rerun_rate_and_project_multiplier_in_closed_form(past, tmp_path, cli):
    # past-a: 1 failed of 4 attempts (3 completed); past-b the same and a 64-GPU run of 640 GPU-h
    big = ACTUALS + "tune,t2,gpus,64,2026-01-09T00:00,2026-01-09T10:00,completed,640,1280,0\n"
    res = sim.calibrate([past(), past(actuals=big, scenario=SCENARIO.replace("past-a", "past-b"), name="b")])
    team = res["team"]
    rr = team["rerun_rate"]
    assert (rr["failed"], rr["attempts"]) == (2, 9)  # 3 + 4 completed, 1 + 1 failed
    assert rr["posterior_mean"] == pytest.approx(3 / 11)  # (failed + 1) / (attempts + 2): Beta(3, 8)
    assert rr["posterior_sd"] == pytest.approx(math.sqrt(3 * 8 / (11**2 * 12)))
    m = team["project_multiplier"]
    # past-a: all 8-GPU runs, the largest completed are r1, r2, t1: (320 + 240 + 40 + 16) / (320 + 240 + 16)
    a, b = 616 / 576, (616 + 640) / 640
    assert m["projects"] == {"past-a": pytest.approx(a), "past-b": pytest.approx(b)}
    assert m["geometric_mean"] == pytest.approx(math.sqrt(a * b)) and m["n"] == 2
    # the multiplier as a usable prior row: experiments = multiplier - 1, lognormal over the two projects
    (row,) = [f for f in res["fitted"] if f["key"] == "workloads.experiments"]
    logs = [math.log(a - 1), math.log(b - 1)]
    mu, sd = sum(logs) / 2, abs(logs[0] - logs[1]) / math.sqrt(2)
    assert row["value"]["dist"] == "lognormal" and row["n"] == 2
    assert row["value"]["p5"] == pytest.approx(math.exp(mu - 1.6448536 * sd), rel=1e-3)
    assert row["value"]["p95"] == pytest.approx(math.exp(mu + 1.6448536 * sd), rel=1e-3)
    code, out, err = cli("calibrate", past(name="c"), "--out", tmp_path / "p.yaml")
    assert code == 0, err
    assert "rerun rate 0.333 (sd" in out and "1 failed of 4 attempts" in out
    assert f"project multiplier {a:.2f}" in out
    assert "#   rerun rate 0.333" in (tmp_path / "p.yaml").read_text()
    written = yaml.safe_load((tmp_path / "p.yaml").read_text())["priors"]["workloads.experiments"]
    assert written[0]["value"] == pytest.approx(a - 1, rel=1e-3)  # one project: the ratio itself
    new = tmp_path / "next.yaml"  # a scenario that knows only its final run takes the team's ratio
    new.write_text("project: {name: next, start: 2026-06-01}\n"
                   "pools: [{name: gpus, accelerator: h100, count: 64, price_usd_per_gpu_h: 2.0}]\n"
                   "workloads: [{name: final, params: 1B, tokens: 10B, accelerators: 8, experiments: prior}]\n"
                   f"simulation: {{priors_file: {tmp_path / 'p.yaml'}}}\n")
    used = {q["key"]: q for q in load(new).priors}
    assert used["workloads[final].experiments"]["from"] == str(tmp_path / "p.yaml")



def test_a_project_still_running_gives_no_project_multiplier(past, cli, tmp_path):
    # a 64-GPU run under way: the largest completed runs are not its final run, so no ratio is taken
    running = ACTUALS + "tune,t2,gpus,64,2026-01-09T00:00,,running,320,640,0\n"
    res = sim.calibrate([past(actuals=running)])
    assert res["team"]["project_multiplier"] is None
    assert not [f for f in res["fitted"] if f["key"] == "workloads.experiments"]
    code, out, err = cli("calibrate", past(actuals=running, name="r"), "--out", tmp_path / "p.yaml")
    assert code == 0, err
    assert "project multiplier: not measured (no finished project" in out
    assert "no workloads.experiments row" in out
    # the same project once finished counts, and the row is dated by its last run, not by today
    done = ACTUALS + "tune,t2,gpus,64,2026-01-09T00:00,2026-01-09T05:00,completed,320,640,0\n"
    (row,) = [f for f in sim.calibrate([past(actuals=done, name="d")])["fitted"] if f["key"] == "workloads.experiments"]
    assert row["date"] == "2026-01-09" and row["value"] == pytest.approx((616 + 320) / 320 - 1, rel=1e-3)

NEXT = """\
project: {{name: next, start: 2026-06-01}}
pools: [{{name: gpus, accelerator: h100, count: 64, price_usd_per_gpu_h: 2.0}}]
workloads: [{{name: final, runs: 2, params: 1B, tokens: 10B, accelerators: 8, mfu: 0.4}}]
reliability: {{model: none}}
simulation: {{priors_file: {priors}}}
"""


def test_rerun_rate_is_written_as_a_divergence_prior_a_scenario_takes(past, tmp_path, cli):
    # past-a: 1 failed attempt (r3, 40 GPU-h) of 4; train's completed 8-GPU runs average (320 + 240) / 2 = 280
    res = sim.calibrate([past()], out=tmp_path / "api.yaml")
    (row,) = fitted(res, "workloads.divergence")
    assert (row["failed"], row["attempts"], row["n"]) == (1, 4, 4)
    assert (row["posterior_a"], row["posterior_b"]) == (2.0, 4.0)  # Beta(failed + 1, completed + 1)
    # the PERT on [0, 1] that is Beta(2, 4): lambda = a + b - 2, mode = (a - 1) / lambda
    assert row["value"] == {"probability": {"dist": "pert", "min": 0.0, "mode": 0.25, "max": 1.0, "lambda": 4.0},
                            "at": pytest.approx(40 / 280, abs=5e-4), "rerun": True}
    code, out, err = cli("calibrate", past(name="c"), "--out", tmp_path / "p.yaml")
    assert code == 0, err
    assert "workloads.divergence" in out and "#   workloads.divergence any accelerator: N = 4" in (
        tmp_path / "p.yaml").read_text()
    for priors in (tmp_path / "api.yaml", tmp_path / "p.yaml"):  # written by the API and by the CLI
        new = tmp_path / f"next-{priors.stem}.yaml"
        new.write_text(NEXT.format(priors=priors))
        loaded = load(new)
        used = {q["key"]: q for q in loaded.priors}
        assert used["workloads[final].divergence"]["from"] == str(priors)
        div = loaded.scenario.workloads[0].divergence
        assert div.rerun and div.at == pytest.approx(0.143)
        assert div.probability.frozen().mean() == pytest.approx(2 / 6)  # Beta(2, 4)'s mean
    # without the file, the built-in row is `none`: no reruns
    (tmp_path / "plain.yaml").write_text(NEXT.replace("simulation: {{priors_file: {priors}}}\n", "").format())
    assert load(tmp_path / "plain.yaml").scenario.workloads[0].divergence is None
    code, out, err = cli("estimate", new)
    assert code == 0, err
    line = next(x for x in out.splitlines() if "workloads[final].divergence" in x)
    assert "calibrated from 4 attempts of past-a" in line and line.endswith(f"[from {tmp_path / 'p.yaml'}]")
    # reruns per run: p / (1 - p) on average over Beta(2, 4), a / (b - 1) = 2/3 (within 4 standard errors)
    reruns = sim.run(loaded, reps=120, workers=1).replications["reruns"] / 2
    assert abs(reruns.mean() - 2 / 3) < 4 * reruns.std() / math.sqrt(len(reruns)), reruns.describe()
    # a re-forecast of that scenario starts from the team's rate and says where it came from
    from datetime import datetime

    from sim.present import reforecast_text
    from tests.test_reforecast import Acts, Run

    seen = Acts([Run("final", "1", "failed", 16, 32, pool="gpus", start=datetime(2026, 6, 1))], datetime(2026, 6, 1, 2))
    r = sim.reforecast(loaded, seen, reps=4, workers=1)
    post = r.summary["reforecast"]["posterior"]["workloads[final].divergence.probability"]
    assert (post["prior_a"], post["prior_b"]) == (pytest.approx(2.0), pytest.approx(4.0))  # the file's Beta(2, 4)
    assert (post["posterior_a"], post["posterior_b"]) == (pytest.approx(3.0), pytest.approx(4.0))
    text = reforecast_text(r.summary, "out")
    assert "Assumed from priors" in text and f"[from {tmp_path / 'p.yaml'}]" in text
    from sim.report import reforecast_sections

    (assumed,) = [x for x in reforecast_sections(r.summary["reforecast"], []) if x[0] == "Assumed from priors"]
    assert "workloads[final].divergence" in assumed[1][1][1]  # the table (markdown)
