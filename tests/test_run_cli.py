"""`sim run` end to end: files, their columns, reproducibility, refusing to clobber results."""

import importlib.util
import json
import math

import numpy as np
import pandas as pd
import pytest

from sim.loader import load
from sim.montecarlo import replicate
from tests.conftest import MINIMAL, ROOT, SCENARIOS

REFERENCE = ROOT.parent / "shared" / "bench" / "reference_project.py"


def run(cli, *args):
    code, out, err = cli("run", *args)
    assert code == 0, err
    return out


def test_outputs_and_their_contents(cli, write, tmp_path):
    out_dir = tmp_path / "out"
    text = MINIMAL + "reliability:\n  failure_rate_per_gpu_h: 1e-3\n  restart: 10 min\n"
    printed = run(cli, write(text), "--reps", "20", "--seed", "3", "--out", out_dir)
    assert "20 replications (random), seed 3" in printed and "cost_usd" in printed
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "cost_cdf.png", "cost_histogram.png", "ettr_histogram.png", "finish_cdf.png", "interruptions_by_size.png",
        "manifest.json", "replications.parquet", "report.html", "report.md", "runs.parquet", "spend_fan.png",
        "summary.json"]
    reps = pd.read_parquet(out_dir / "replications.parquet")
    assert len(reps) == 20 and list(reps["replication"]) == list(range(20))
    for col in ["cost_usd", "gpu_hours", "productive_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours",
                "idle_gpu_hours", "makespan_days", "finish_date", "energy_kwh", "co2_kg", "failures", "preemptions",
                "reruns", "mean_queue_wait_h", "cost_usd_wl_train", "cost_usd_pool_gpus"]:
        assert col in reps, col
    assert np.allclose(reps.gpu_hours, reps.productive_gpu_hours + reps.lost_gpu_hours + reps.overhead_gpu_hours)
    runs = pd.read_parquet(out_dir / "runs.parquet")
    assert len(runs) == 40 and set(runs.workload) == {"train"}
    assert np.allclose(runs.groupby("replication").cost_usd.sum(), reps.cost_usd)
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["replications"] == 20 and summary["seed"] == 3
    for metric in ["cost_usd", "gpu_hours", "makespan_days", "energy_kwh", "co2_kg", "lost_gpu_hours"]:
        assert set(summary["metrics"][metric]) == {"mean", "std", "min", "p5", "p10", "p50", "p90", "p95", "max",
                                                   "ci95"}
        assert set(summary["metrics"][metric]["ci95"]) == {"mean", "p50", "p90", "p95"}
    assert summary["metrics"]["cost_usd"]["mean"] == pytest.approx(reps.cost_usd.mean())
    assert summary["metrics"]["cost_usd"]["p95"] == pytest.approx(np.percentile(reps.cost_usd, 95))
    wl = summary["workloads"]["train"]
    assert wl["runs"] == 2 and wl["cost_usd_per_run"]["mean"] == pytest.approx(reps.cost_usd_wl_train.mean() / 2)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["scenario_sha256"] == summary["scenario_sha256"] and manifest["seed"] == 3
    assert manifest["resolved_scenario"]["workloads"][0]["name"] == "train"
    assert manifest["version"] and manifest["runtime_s"] >= 0


def test_same_seed_same_numbers_and_existing_folder_refused(cli, write, tmp_path):
    p = write(MINIMAL + "reliability:\n  failure_rate_per_gpu_h: 1e-2\n  restart: 10 min\n"
              "  checkpoint: {interval: 1 h, write: 1 min}\n")
    run(cli, p, "--reps", "10", "--seed", "5", "--out", tmp_path / "a")
    run(cli, p, "--reps", "10", "--seed", "5", "--out", tmp_path / "b")
    run(cli, p, "--reps", "10", "--seed", "6", "--out", tmp_path / "c")
    a, b, c = (pd.read_parquet(tmp_path / x / "replications.parquet") for x in "abc")
    pd.testing.assert_frame_equal(a, b)
    assert not a.cost_usd.equals(c.cost_usd)
    code, _out, err = cli("run", p, "--reps", "10", "--out", tmp_path / "a")
    assert code == 2 and "folder exists and is not empty" in err
    before = (tmp_path / "a" / "summary.json").read_text()
    assert (tmp_path / "a" / "summary.json").read_text() == before  # nothing lost
    code, _out, _err = cli("run", p, "--reps", "10", "--out", tmp_path / "a", "--overwrite")
    assert code == 0


def test_a_project_that_cannot_finish_exits_2(cli, write, tmp_path):
    p = write(MINIMAL.replace("tokens: 20B", "tokens: 20B\n    earliest_start: 2090-01-01"))
    code, _out, err = cli("run", p, "--reps", "2", "--out", tmp_path / "x")
    assert code == 2 and "passed its horizon (50 years)" in err and "Traceback" not in err


def test_uncertain_inputs_are_sampled_and_recorded(cli, write, tmp_path):
    p = write(MINIMAL.replace("mfu: 0.4", "mfu: {dist: uniform, min: 0.3, max: 0.5}"))
    run(cli, p, "--reps", "50", "--out", tmp_path / "u")
    reps = pd.read_parquet(tmp_path / "u" / "replications.parquet")
    mfu = reps["input:workloads[train].mfu"]
    assert mfu.between(0.3, 0.5).all() and mfu.nunique() == 50
    assert np.corrcoef(mfu, reps.cost_usd)[0, 1] < -0.9  # higher MFU, cheaper


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared/bench/reference_project.py not beside the repo")
@pytest.mark.slow
def test_bench_reference_twin_agrees_with_the_reference_script():
    """scenarios/bench_reference.yaml against the independent plain-SimPy model it mirrors: mean
    makespan and mean GPU-hours within 3 combined standard errors over 300 replications each."""
    spec = importlib.util.spec_from_file_location("reference_project", REFERENCE)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    seeds = np.random.SeedSequence(2024).spawn(300)
    theirs = np.array([ref.naive(s) for s in seeds])
    ours = [r.row for r in replicate(load(SCENARIOS / "bench_reference.yaml"), 2024, range(300))]
    ours_mk = np.array([r["makespan_days"] * 24 for r in ours])
    ours_gh = np.array([r["gpu_hours"] for r in ours])
    for mine, other in ((ours_mk, theirs[:, 0]), (ours_gh, theirs[:, 1])):
        se = math.sqrt(mine.var(ddof=1) / len(mine) + other.var(ddof=1) / len(other))
        assert abs(mine.mean() - other.mean()) < 3 * se, (mine.mean(), other.mean(), se)
