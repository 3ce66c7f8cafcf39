"""Monte Carlo: sampling designs, correlations, sampled-value checks, confidence intervals,
reproducibility across workers and backends (through the real `sim run`), failing replications,
precision stopping and resume."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.loader import load_data
from sim.montecarlo import Design, Replicator, rank_to_pearson
from sim.stats import ci95
from tests.conftest import MINIMAL, SCENARIOS

UNCERTAIN = MINIMAL.replace("mfu: 0.4", "mfu: {dist: pert, min: 0.3, mode: 0.4, max: 0.5}").replace(
    "tokens: 20B", "tokens: {dist: lognormal, p5: 10B, p95: 40B}") + """\
reliability:
  failure_rate_per_gpu_h: 2e-3
  restart: 10 min
  checkpoint: {interval: 1 h, write: 1 min}
"""


def two_inputs(rank=None, extra=""):
    raw = {
        "project": {"name": "t", "start": "2026-01-01"},
        "pools": [{"name": "p", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0}],
        "workloads": [{"name": "w", "params": "1B", "tokens": {"dist": "uniform", "min": "10B", "max": "30B"},
                       "accelerators": 8, "mfu": {"dist": "triangular", "min": 0.3, "mode": 0.4, "max": 0.5}}],
    }
    if rank is not None:
        raw["correlations"] = [{"between": ["workloads[w].tokens", "workloads[w].mfu"], "rank": rank}]
    return load_data(raw, "t")


# --- designs -------------------------------------------------------------------------------------
def test_lhs_puts_one_point_in_every_stratum():
    n = 64
    d = Design(two_inputs(), 3, "lhs", n)
    u = d.uniforms(range(n))
    for j in range(u.shape[1]):
        assert sorted(np.floor(u[:, j] * n).astype(int)) == list(range(n))


@pytest.mark.slow
def test_sobol_is_more_uniform_than_random():
    from scipy.stats import qmc

    n = 256
    sobol, random = Design(two_inputs(), 3, "sobol", n), Design(two_inputs(), 3, "random", n)
    sob = np.array([sobol.uniforms(k) for k in range(n)])
    rnd = np.array([random.uniforms(k) for k in range(n)])
    assert qmc.discrepancy(sob) < qmc.discrepancy(rnd) / 3


def test_random_design_does_not_depend_on_size():
    a = Design(two_inputs(), 9, "random", 10)
    b = Design(two_inputs(), 9, "random", 1000)
    assert np.array_equal(a.uniforms(7), b.uniforms(7))


def test_values_follow_the_distributions():
    n = 4000
    d = Design(two_inputs(), 1, "random", n)
    vals = np.array([list(v.values()) for v in d.values_many(range(n))])
    tokens, mfu = vals[:, 0], vals[:, 1]
    # uniform(10B, 30B): mean 20B, sd 20B/sqrt(12); triangular(0.3, 0.4, 0.5): mean 0.4
    assert abs(tokens.mean() - 20e9) < 3 * (20e9 / math.sqrt(12)) / math.sqrt(n)
    sd_tri = math.sqrt((0.3**2 + 0.4**2 + 0.5**2 - 0.3 * 0.4 - 0.3 * 0.5 - 0.4 * 0.5) / 18)
    assert abs(mfu.mean() - 0.4) < 3 * sd_tri / math.sqrt(n)
    assert stats.kstest(tokens, stats.uniform(10e9, 20e9).cdf).pvalue > 0.001


@pytest.mark.parametrize("rank", [0.7, -0.5])
@pytest.mark.parametrize("method", ["random", "lhs"])
def test_realized_rank_correlation(rank, method):
    n = 3000
    d = Design(two_inputs(rank), 5, method, n)
    vals = np.array([list(v.values()) for v in d.values_many(range(n))])
    rho = stats.spearmanr(vals[:, 0], vals[:, 1]).statistic
    # SE of Spearman's rho ~ (1 - rho^2) / sqrt(n) (large n); 4 SE of slack for the copula approximation
    assert abs(rho - rank) < 4 * (1 - rank**2) / math.sqrt(n) + 0.01
    assert rank_to_pearson(1.0) == pytest.approx(1.0)


def test_inconsistent_correlations_are_refused(cli, write):
    text = MINIMAL.replace("mfu: 0.4", "mfu: {dist: uniform, min: 0.3, max: 0.5}").replace(
        "tokens: 20B", "tokens: {dist: uniform, min: 10B, max: 30B}").replace(
        "runs: 2", "runs: {dist: uniform, min: 1, max: 4}") + """\
correlations:
  - {between: ['workloads[0].mfu', 'workloads[0].tokens'], rank: 0.95}
  - {between: ['workloads[0].mfu', 'workloads[0].runs'], rank: 0.95}
  - {between: ['workloads[0].tokens', 'workloads[0].runs'], rank: -0.95}
"""
    p = write(text)
    code, _out, err = cli("run", p, "--reps", "5", "--workers", "1", "--out", p.parent / "o")
    assert code == 2 and "not positive definite" in err


# --- confidence intervals -------------------------------------------------------------------------
def test_ci95_coverage():
    rng = np.random.default_rng(0)
    trials, n = 600, 200
    true = {"mean": 1.0, "p50": 1.0, "p90": 1.0 + stats.norm.ppf(0.9), "p95": 1.0 + stats.norm.ppf(0.95)}
    hits = dict.fromkeys(true, 0)
    for _ in range(trials):
        c = ci95(rng.normal(1.0, 1.0, n))
        for k, v in true.items():
            hits[k] += c[k][0] <= v <= c[k][1]
    for k in true:  # nominal 95% (order-statistic intervals are conservative: >= 95%)
        assert hits[k] / trials > 0.95 - 3 * math.sqrt(0.95 * 0.05 / trials), (k, hits[k] / trials)


# --- through the real command ----------------------------------------------------------------------
def run_cmd(cli, *args):
    code, out, err = cli("run", *args)
    assert code == 0, err
    return out


def frames(folder):
    return (pd.read_parquet(folder / "replications.parquet"), pd.read_parquet(folder / "runs.parquet"))


COMMON = ["--reps", "60", "--seed", "4", "--sampling", "lhs"]


def test_same_numbers_with_1_and_2_workers(cli, write, tmp_path):
    p = write(UNCERTAIN)
    run_cmd(cli, p, *COMMON, "--workers", "1", "--out", tmp_path / "w1")
    run_cmd(cli, p, *COMMON, "--workers", "2", "--out", tmp_path / "w2")
    base_reps, base_runs = frames(tmp_path / "w1")
    assert len(base_reps) == 60 and base_reps["failures"].sum() > 0
    reps, runs = frames(tmp_path / "w2")
    pd.testing.assert_frame_equal(base_reps, reps)
    pd.testing.assert_frame_equal(base_runs, runs)
    assert not (tmp_path / "w1" / ".parts").exists()


@pytest.mark.slow
def test_same_numbers_with_dask_as_serial(cli, write, tmp_path):
    pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'trainsim[dask]'")
    p = write(UNCERTAIN)
    run_cmd(cli, p, *COMMON, "--workers", "1", "--out", tmp_path / "w1")
    run_cmd(cli, p, *COMMON, "--workers", "2", "--backend", "dask", "--out", tmp_path / "dask")
    base_reps, base_runs = frames(tmp_path / "w1")
    reps, runs = frames(tmp_path / "dask")
    pd.testing.assert_frame_equal(base_reps, reps)
    pd.testing.assert_frame_equal(base_runs, runs)
    s1 = json.loads((tmp_path / "w1" / "summary.json").read_text())
    s2 = json.loads((tmp_path / "dask" / "summary.json").read_text())
    assert s1["metrics"] == s2["metrics"] and s1["nominal"] == s2["nominal"]


def test_nominal_case_is_reported_on_its_own(cli, write, tmp_path):
    run_cmd(cli, write(UNCERTAIN), "--reps", "10", "--workers", "1", "--out", tmp_path / "n")
    s = json.loads((tmp_path / "n" / "summary.json").read_text())
    # the nominal case: tokens at their median sqrt(10B x 40B) = 20B, mfu at its median 0.4
    rep = Replicator(load_data(__import__("yaml").safe_load(UNCERTAIN), "t"), 0)
    assert s["nominal"]["cost_usd"] == pytest.approx(rep.nominal()["cost_usd"])
    assert s["nominal"]["cost_usd"] >= 2 * 8 * 2.0 * 1.2e20 / (8 * 989e12 * 0.4) / 3600 * (1 - 1e-9)


def test_out_of_range_samples_are_recorded_and_the_rest_go_on(cli, write, tmp_path):
    text = MINIMAL.replace("mfu: 0.4", "mfu: {dist: lognormal, p5: 0.5, p95: 0.99}")
    run_cmd(cli, write(text), "--reps", "200", "--workers", "1", "--out", tmp_path / "a")
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    failed = manifest["failed_replications"]
    assert 5 < len(failed) < 50  # P(lognormal > 1) here is about 4.6%... 10%
    assert all("workloads[train].mfu: sampled" in f["error"] and "is not <= 1" in f["error"] for f in failed)
    reps = pd.read_parquet(tmp_path / "a" / "replications.parquet")
    assert len(reps) + len(failed) == 200
    assert set(reps.replication).isdisjoint(f["replication"] for f in failed)
    clipped = text.replace("p95: 0.99}", "p95: 0.99, clip: true}")
    run_cmd(cli, write(clipped, "c.yaml"), "--reps", "200", "--workers", "1", "--out", tmp_path / "c")
    reps = pd.read_parquet(tmp_path / "c" / "replications.parquet")
    assert len(reps) == 200 and reps["input:workloads[train].mfu"].max() == 1.0
    code, _out, err = cli("run", write(text, "s.yaml"), "--reps", "200", "--workers", "1", "--strict",
                          "--out", tmp_path / "s")
    assert code == 2 and "workloads[train].mfu: sampled" in err


@pytest.mark.slow
def test_precision_stops_when_met_and_does_not_depend_on_workers(cli, write, tmp_path):
    p = write(UNCERTAIN.replace("tokens: {dist: lognormal, p5: 10B, p95: 40B}",
                                "tokens: {dist: uniform, min: 18B, max: 22B}"))
    out1 = run_cmd(cli, p, "--precision", "0.02", "--reps", "5000", "--workers", "1", "--out", tmp_path / "p1")
    run_cmd(cli, p, "--precision", "0.02", "--reps", "5000", "--workers", "2", "--out", tmp_path / "p2")
    s = json.loads((tmp_path / "p1" / "summary.json").read_text())
    assert s["stopped_by"] == "precision" and s["precision"]["met"]
    assert 100 <= s["replications"] < 5000 and "precision target 2.00%: met" in out1
    assert s["precision"]["mean_half_width_rel"] <= 0.02 and s["precision"]["p95_half_width_rel"] <= 0.02
    pd.testing.assert_frame_equal(frames(tmp_path / "p1")[0], frames(tmp_path / "p2")[0])
    run_cmd(cli, p, "--precision", "0.0001", "--reps", "150", "--workers", "1", "--out", tmp_path / "cap")
    s = json.loads((tmp_path / "cap" / "summary.json").read_text())
    assert s["stopped_by"] == "cap" and not s["precision"]["met"] and s["replications"] == 150


@pytest.mark.slow
def test_resume_after_a_kill_gives_the_same_files(cli, tmp_path):
    scenario = SCENARIOS / "bench_reference.yaml"
    args = ["--reps", "400", "--seed", "8", "--workers", "1"]
    run_cmd(cli, scenario, *args, "--out", tmp_path / "whole")
    target = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "run", str(scenario), *args, "--out", str(target)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((target / ".parts").glob("chunk-*.json"))) < 2:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((target / ".parts").glob("chunk-*.json")))  # written last: the chunk is complete
    assert 2 <= done < 8, "the run should have been killed part-way"
    assert not (target / "summary.json").exists()
    out = run_cmd(cli, "--resume", target)
    assert "400 replications" in out
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["resumed_chunks"] == done
    for a, b in zip(frames(tmp_path / "whole"), frames(target), strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_resume_refuses_a_changed_scenario(cli, write, tmp_path):
    p = write(UNCERTAIN)
    out = tmp_path / "r"
    run_cmd(cli, p, "--reps", "20", "--workers", "1", "--out", out)
    code, _o, err = cli("run", "--resume", out)
    assert code == 2 and "no interrupted run to resume" in err


def test_variants_share_random_numbers(write):
    """Common random numbers: a variant that changes only a price sees the same inputs, failures and
    schedule; one that adds an uncertain input keeps the other inputs' values."""
    from sim.loader import load

    text = UNCERTAIN + """\
variants:
  cheaper:
    set:
      pools[gpus].price_usd_per_gpu_h: 1.5
  more-uncertain:
    set:
      pools[gpus].price_usd_per_gpu_h: {dist: uniform, min: 1.5, max: 2.5}
"""
    p = write(text)
    rows = {}
    for v in (None, "cheaper", "more-uncertain"):
        rep = Replicator(load(p, variant=v), 12)
        rows[v] = rep.chunk(0, range(30)).rows
    for a, b, c in zip(rows[None], rows["cheaper"], rows["more-uncertain"], strict=True):
        assert a["input:workloads[train].mfu"] == b["input:workloads[train].mfu"] == c["input:workloads[train].mfu"]
        assert a["input:workloads[train].tokens"] == c["input:workloads[train].tokens"]
        assert a["makespan_days"] == b["makespan_days"] and a["failures"] == b["failures"]
        assert b["cost_usd"] == pytest.approx(a["cost_usd"] * 0.75)


def test_chunks_are_shared_evenly_among_workers():
    """Issue 13: a multiple of the worker count of chunks (no worker waits alone for the last one),
    unless that makes chunks of fewer than 5 replications; one worker keeps equal chunks too."""
    from sim.runner import Settings

    for reps, workers, per_rep, size in ((4000, 2, 503, 182), (4000, 1, 503, 191), (1000, 3, 0, 42),
                                         (1000, 2, 0, 63), (12, 2, 0, 5), (7, 2, 0, 5)):
        s = Settings(seed=0, reps=reps, workers=workers, runs_per_rep=per_rep)
        assert s.chunk_size() == size, (reps, workers)
        n = math.ceil(reps / size)
        assert n % workers == 0 or size == 5
        assert size * per_rep <= 100_000  # still bounded by the run rows a chunk may hold


def test_chunks_hold_a_bounded_number_of_run_rows():
    """Item 10 of issue 9: a chunk's run rows stay in memory until written, so a scenario with many
    runs a replication gets small chunks (streamed), whatever --reps asks."""
    from sim.api import run_settings
    from sim.loader import load_data
    from sim.runner import RUN_ROWS_PER_CHUNK, Settings

    assert Settings(seed=0, reps=1000, workers=2).chunk_size() == 63
    assert Settings(seed=0, reps=1000, workers=2, runs_per_rep=503).chunk_size() == 63
    big = Settings(seed=0, reps=1000, workers=2, runs_per_rep=400_000)
    assert big.chunk_size() == 1 and big.chunk_size() * big.runs_per_rep > RUN_ROWS_PER_CHUNK  # one rep at least
    raw = {"project": {"name": "t", "start": "2026-01-01"},
           "pools": [{"name": "g", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 1}],
           "workloads": [{"name": "w", "runs": 50_000, "hours_per_run": 1, "accelerators": 8}]}
    s = run_settings(load_data(raw, "t.yaml").scenario, reps=1000, workers=2)
    assert s.runs_per_rep == 50_000 and s.chunk_size() == RUN_ROWS_PER_CHUNK // 50_000
