"""Built-in priors: a key a scenario leaves out (or writes `prior`) takes its prior; the user is told
which, with the source; `simulation.priors: off` / `--no-priors` leaves them out; a user's own
priors file is tried first."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from sim import priors as pri
from sim.loader import load_data
from sim.plan import build_plan
from sim.schema import nominal_scenario


def raw(params="7B", acc="h100", count=512, **w):
    return {"project": {"name": "p", "start": "2026-01-01"},
            "pools": [{"name": "g", "accelerator": acc, "count": count, "price_usd_per_gpu_h": 2.0}],
            "workloads": [{"name": "w", "params": params, "tokens": "200B", "accelerators": count, **w}]}


def test_every_built_in_row_has_a_source_a_date_and_validates():
    b = pri.builtin()
    assert set(b.rows) == set(pri.KEYS)
    for key, rows in b.rows.items():
        assert rows[-1].when == {}, f"{key} needs a catch-all last row"
        for r in rows:
            assert r.source and r.date, (key, r)
    # each MFU row, filled into a scenario, validates (its distribution is within the key's limits)
    for r in b.rows["workloads.mfu"]:
        loaded = load_data(raw(mfu=r.value), "t")
        assert 0 < nominal_scenario(loaded.scenario).workloads[0].mfu <= 1


def test_left_out_keys_take_their_prior_and_are_reported():
    loaded = load_data(raw(), "t")
    used = {u["key"]: u for u in loaded.priors}
    assert {"workloads[w].mfu", "workloads[w].checkpoint.write", "reliability.failure_rate_per_gpu_h",
            "reliability.job_failure_rate_per_h", "reliability.detect", "reliability.restart",
            "reliability.restart_per_doubling"} <= set(used)
    ctx = {"accelerator": "h100", "params": 7e9, "run_accelerators": 512.0}
    row = pri.builtin().find("workloads.mfu", ctx)
    assert used["workloads[w].mfu"]["value"] == row.value and used["workloads[w].mfu"]["source"] == row.source
    assert used["workloads[w].mfu"]["basis"] == "h100, 7B params, 512 accelerators"
    # the scenario holds the prior exactly as if it had been written there
    assert loaded.scenario.workloads[0].mfu is not None
    rel = loaded.scenario.reliability
    assert rel.failure_rate_per_gpu_h is not None and rel.detect is not None


def test_given_keys_are_kept_and_model_none_takes_no_failure_priors():
    loaded = load_data({**raw(mfu=0.4), "reliability": {"failure_rate_per_gpu_h": 1e-5, "detect": "1 min"}}, "t")
    keys = {u["key"] for u in loaded.priors}
    assert "workloads[w].mfu" not in keys and "reliability.failure_rate_per_gpu_h" not in keys
    assert "reliability.detect" not in keys and loaded.scenario.reliability.detect == pytest.approx(1 / 60)
    off = load_data({**raw(mfu=0.4), "reliability": {"model": "none"}}, "t")
    assert off.priors == []  # no failures: no reliability priors, no checkpoint cost


def test_priors_off_leaves_them_out_and_an_explicit_prior_is_then_an_error():
    loaded = load_data({**raw(mfu=0.4), "simulation": {"priors": "off"}}, "t")
    assert loaded.priors == [] and loaded.scenario.reliability.failure_rate_per_gpu_h is None
    from sim.loader import ScenarioError

    with pytest.raises(ScenarioError, match="priors are off"):
        load_data({**raw(mfu="prior"), "simulation": {"priors": False}}, "t")  # YAML's bare `off` is False


def test_explicit_prior_fills_a_key():
    loaded = load_data({**raw(mfu="prior"), "reliability": {"model": "none"}}, "t")
    assert [u["key"] for u in loaded.priors] == ["workloads[w].mfu"]


def test_rows_match_on_accelerator_params_and_run_size():
    b = pri.builtin()
    big = b.find("workloads.mfu", {"accelerator": "h100", "params": 4e11, "run_accelerators": 16384.0})
    small = b.find("workloads.mfu", {"accelerator": "h100", "params": 1e8, "run_accelerators": 8.0})
    v100 = b.find("workloads.mfu", {"accelerator": "v100", "params": 3.4e8, "run_accelerators": 16.0})
    assert len({id(big), id(small), id(v100)}) == 3
    assert "v100" in v100.when.get("accelerator", [])
    # a row that names params does not match a run without them
    row = pri.Row("workloads.mfu", {"params": [0, 1e20]}, 0.3, "s", "d", False)
    assert not row.matches({"accelerator": "h100", "params": None, "run_accelerators": 8.0})


def test_checkpoint_write_from_bytes_per_parameter_and_bandwidth():
    v = {"bytes_per_param": 14, "write_gb_per_s": {"p5": 10, "p95": 100}}
    out = pri.write_hours(v, 7e9)  # 98 GB at 100 and 10 GB/s: 0.98 s and 9.8 s
    assert out == {"dist": "lognormal", "p5": "0.98 s", "p95": "9.8 s"}
    assert pri.write_hours({"bytes_per_param": 14, "write_gb_per_s": 49}, 7e9) == "2 s"
    assert pri.write_hours(v, None) is None  # no parameters: no write prior from bytes
    assert pri.write_hours("5 min", None) == "5 min"


def test_a_users_priors_file_is_tried_first(cli, write, tmp_path):
    own = {"version": 1, "priors": {"workloads.mfu": [
        {"when": {"accelerator": ["h100"]}, "value": 0.33, "source": "our cluster, 2026 runs", "date": "2026-10-01"}]}}
    (tmp_path / "ours.yaml").write_text(yaml.safe_dump(own))
    path = write(yaml.safe_dump({**raw(), "simulation": {"priors_file": "ours.yaml"}}))
    code, out, err = cli("estimate", path, "--json")
    assert code == 0, err
    hours = 6 * 7e9 * 200e9 / (512 * 989e12 * 0.33) / 3600
    assert json.loads(out)["workloads"]["w"]["hours_per_run"] == pytest.approx(hours)
    code, out, err = cli("estimate", path)
    assert "workloads[w].mfu (h100, 7B params, 512 accelerators): 0.33  [our cluster, 2026 runs" in out
    assert f"[from {tmp_path / 'ours.yaml'}]" in out


@pytest.mark.parametrize("text, message", [
    ("priors: {workloads.nonsense: []}", "unknown key"),
    ("priors: {workloads.mfu: [{value: 0.3}]}", "needs `value` and `source`"),
    ("priors: {workloads.mfu: [{when: {gpu: h100}, value: 0.3, source: x}]}", "unknown condition 'gpu'"),
    ("[1, 2", "cannot read"),
])
def test_a_bad_priors_file_is_exit_2_naming_the_key(cli, write, tmp_path, text, message):
    (tmp_path / "ours.yaml").write_text(text)
    path = write(yaml.safe_dump({**raw(), "simulation": {"priors_file": "ours.yaml"}}))
    code, _out, err = cli("validate", path)
    assert code == 2 and "simulation.priors_file" in err and message in err and "Traceback" not in err, err


def test_one_liner_takes_the_mfu_prior_median_and_says_so(cli):
    code, out, err = cli("estimate", "--params", "7B", "--tokens", "2T", "--accelerator", "h100", "--count", "512",
                         "--price", "3", "--start", "2026-01-01", "--json")
    assert code == 0, err
    row = pri.builtin().find("workloads.mfu", {"accelerator": "h100", "params": 7e9, "run_accelerators": 512.0})
    median = math.sqrt(row.value["p5"] * row.value["p95"])
    hours = 6 * 7e9 * 2e12 / (512 * 989e12 * median) / 3600
    assert json.loads(out)["workloads"]["run"]["hours_per_run"] == pytest.approx(hours, rel=1e-9)
    code, out, _ = cli("estimate", "--params", "7B", "--tokens", "2T", "--accelerator", "h100", "--count", "512",
                       "--price", "3")
    assert "Assumed from priors" in out and "workloads[run].mfu (h100, 7B params, 512 accelerators)" in out
    code, _out, err = cli("estimate", "--params", "7B", "--tokens", "2T", "--accelerator", "h100", "--count", "512",
                          "--no-priors")
    assert code == 2 and "--mfu" in err


def test_a_new_users_run_includes_failures_and_says_which_priors(cli, write, tmp_path):
    path = write(yaml.safe_dump(raw(params="1B", count=64)))
    code, out, err = cli("run", path, "--reps", "20", "--workers", "1", "--out", tmp_path / "r")
    assert code == 0, err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    keys = [p["key"] for p in summary["priors"]]
    assert "workloads[w].mfu" in keys and "reliability.failure_rate_per_gpu_h" in keys
    assert manifest["priors"] == summary["priors"]
    assert summary["metrics"]["job_failures"]["mean"] > 0  # failures now happen: the prior rates are on
    assert "Assumed from priors" in out
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Assumed from priors" in html and "reliability.failure_rate_per_gpu_h" in html


def test_priors_keep_the_plan_consistent():
    loaded = load_data(raw(), "t")
    plan = build_plan(nominal_scenario(loaded.scenario), loaded.catalog)
    w = plan.workloads[0]
    assert w.fail_rate_per_h > 0 and w.job_fail_rate_per_h > 0 and w.detect_h > 0 and w.write_h > 0
    assert 0 < w.ckpt_interval_h_on[0] < math.inf  # auto checkpoints against the prior's rates


# --- project shape: experiments around a final run ---------------------------------------------
def test_experiments_prior_adds_a_workload_of_small_runs_sized_from_the_ratio():
    loaded = load_data(raw(count=512, experiments="prior"), "t")
    scn = loaded.scenario
    final, exp = scn.workloads
    assert exp.name == "w-experiments" and exp.runs == 20 and exp.accelerators == 64  # 512 / 8
    assert final.after == ["w-experiments"] and exp.pools == final.pools and exp.mfu == final.mfu
    row = pri.builtin().find("workloads.experiments", {"params": 7e9})
    flop = 6 * 7e9 * 200e9
    assert exp.flop_per_run.params["p5"] == pytest.approx(row.value["p5"] * flop / 20)
    assert exp.flop_per_run.params["p95"] == pytest.approx(row.value["p95"] * flop / 20)
    used = {u["key"]: u for u in loaded.priors}
    assert used["workloads[w].experiments"]["value"] == row.value and used["workloads[w].experiments"]["source"]
    # nominal: the experiments use the median ratio of the final run's compute, at the same MFU
    from sim import estimate
    est = estimate(loaded).set_index("name")
    median = math.sqrt(row.value["p5"] * row.value["p95"])
    assert est.loc["w-experiments", "gpu_hours"] == pytest.approx(median * est.loc["w", "gpu_hours"], rel=1e-9)


def test_experiments_are_drawn_once_per_replication_for_all_their_runs():
    from sim.backtesting import replications

    r = raw(params="1B", count=8, mfu=0.4, experiments={"compute": {"dist": "choice", "values": [0.5, 2]},
                                                        "runs": 4, "accelerators": 2})
    r["simulation"] = {"priors": "off"}  # no failures: each replication's GPU-hours are exact
    df, errors = replications(load_data(r, "t"), 40, 1)
    ratio = df["gpu_hours_wl_w-experiments"] / df["gpu_hours_wl_w"]
    assert not errors and set(ratio.round(9)) == {0.5, 2.0}  # one draw for the 4 runs, both values drawn


@pytest.mark.parametrize("final, expected_gpu_h", [
    ({"gpu_hours_per_run": "1000"}, 500.0), ({"hours_per_run": "10 h"}, 0.5 * 10 * 8),
    ({"gpu_hours_per_run": "1000", "runs": 3}, 1500.0)])  # a final workload of 3 runs: 0.5 x all three
def test_experiments_of_a_final_run_sized_in_hours(final, expected_gpu_h):
    r = raw(count=8, experiments={"compute": 0.5, "schedule": "alongside"})
    w = r["workloads"][0]
    del w["params"], w["tokens"]
    w.update(final)
    r["simulation"] = {"priors": "off"}
    scn = load_data(r, "t").scenario
    exp = scn.workloads[1]
    assert exp.gpu_hours_per_run * exp.runs == pytest.approx(expected_gpu_h) and scn.workloads[0].after == []


def test_experiments_through_the_cli_and_bad_keys_are_located(cli, write, tmp_path):
    r = raw(count=64, mfu=0.4, experiments={"compute": 0.6, "runs": 6, "accelerators": 8})
    r["simulation"] = {"priors": "off"}
    code, out, err = cli("estimate", write(yaml.safe_dump(r)), "--json")
    assert code == 0, err
    wl = json.loads(out)["workloads"]
    assert wl["w-experiments"]["gpu_hours"] == pytest.approx(0.6 * wl["w"]["gpu_hours"])
    assert wl["w-experiments"]["runs"] == 6
    for exp, key, msg in [({"compute": 0.6, "runs": 0}, "workloads[0].experiments.runs", "whole number"),
                          ({"compute": 0.6, "accelerators": 65}, "experiments.accelerators", "up to"),
                          ({"compute": 0.6, "every": 2}, "workloads[0].experiments.every", "unknown key"),
                          ({"compute": "lots"}, "workloads[0].experiments.compute", "multiple of the final"),
                          ({"schedule": "after"}, "experiments.schedule", "before or alongside")]:
        code, _out, err = cli("validate", write(yaml.safe_dump(raw(count=64, mfu=0.4, experiments=exp)), "b.yaml"))
        assert code == 2 and key in err and msg in err and "Traceback" not in err, (exp, err)
    off = {**raw(experiments="prior"), "simulation": {"priors": "off"}}
    code, _out, err = cli("validate", write(yaml.safe_dump(off), "c.yaml"))
    assert code == 2 and "experiments" in err and "priors are off" in err


def test_a_one_liner_gets_a_distribution_with_failures_and_mfu_spread_and_is_told(cli):
    args = ("estimate", "--params", "1B", "--tokens", "20B", "--accelerator", "h100", "--count", "8", "--price", "2",
            "--start", "2026-01-01")
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    data = json.loads(out)
    band, point = data["forecast"], data["total"]["cost_usd"]
    assert band["replications"] == 200 and band["failed_replications"] == 0
    assert band["cost_usd"]["p5"] < point < band["cost_usd"]["p95"]  # the point is the MFU prior's median
    row = pri.builtin().find("workloads.mfu", {"accelerator": "h100", "params": 1e9, "run_accelerators": 8.0})
    # cost ~ 1 / MFU: the band is at least the MFU prior's P95 / P5 wide (failures only widen it), within sampling
    assert band["cost_usd"]["p95"] / band["cost_usd"]["p5"] > 0.8 * row.value["p95"] / row.value["p5"]
    assert band["interruptions"]["mean"] > 0  # the job-level failure prior is on
    code, out, _ = cli(*args)
    assert "Forecast, P5 / P50 / P95 of 200 replications" in out
    assert "failures and restarts drawn from the reliability priors" in out and "MFU drawn from its prior" in out
    code, out, _ = cli(*args, "--no-priors", "--mfu", "0.4", "--json")
    assert code == 0 and "forecast" not in json.loads(out)
    code, out, _ = cli(*args, "--runs", "100000", "--json")  # too many runs to simulate quickly: said, not hung
    assert code == 0 and "too many" in json.loads(out)["forecast"]["skipped"]
