"""Edge cases found in review: each would have been a silent wrong answer or a traceback."""

import json

import pytest

from sim.engine import simulate
from sim.loader import load_data
from sim.plan import build_plan
from sim.schema import nominal_scenario
from sim.stats import ci95
from tests.conftest import MINIMAL

UNC = MINIMAL.replace("mfu: 0.4", "mfu: {dist: uniform, min: 0.3, max: 0.5}").replace(
    "tokens: 20B", "tokens: {dist: uniform, min: 10B, max: 30B}")


def bad(cli, *args):
    code, _out, err = cli(*args)
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_an_input_correlated_with_itself_or_twice_is_refused(cli, write):
    same = UNC + "correlations:\n  - {between: ['workloads[0].mfu', 'workloads[train].mfu'], rank: 0.2}\n"
    assert "cannot be correlated with itself" in bad(cli, "validate", write(same, "a.yaml"))
    twice = UNC + ("correlations:\n  - {between: ['workloads[0].mfu', 'workloads[0].tokens'], rank: 0.2}\n"
                   "  - {between: ['workloads[0].tokens', 'workloads[0].mfu'], rank: 0.5}\n")
    assert "already correlated (correlations[0])" in bad(cli, "validate", write(twice, "b.yaml"))


def test_inconsistent_correlations_fail_validation_not_the_workers(cli, write):
    text = UNC.replace("runs: 2", "runs: {dist: uniform, min: 1, max: 4}") + """\
correlations:
  - {between: ['workloads[0].mfu', 'workloads[0].tokens'], rank: 0.9}
  - {between: ['workloads[0].tokens', 'workloads[0].runs'], rank: 0.9}
  - {between: ['workloads[0].mfu', 'workloads[0].runs'], rank: -0.9}
"""
    p = write(text)
    assert "not consistent with one another" in bad(cli, "validate", p)
    assert "not consistent" in bad(cli, "run", p, "--workers", "2", "--reps", "4", "--out", p.parent / "o")


def test_empty_pool_list_is_refused(cli, write):
    assert "workloads[0].pools" in bad(cli, "validate", write(MINIMAL + "    pools: []\n"))


def test_reserved_pool_cannot_change_size(cli, write):
    text = MINIMAL.replace("    price_usd_per_gpu_h: 2.0", "    price_usd_per_gpu_h: 2.0\n    pricing: reserved\n"
                           "    capacity_changes: [{date: 2026-02-01, count: 8}]")
    assert "reserved pool's size is its commitment" in bad(cli, "validate", write(text))


def test_a_node_under_repair_delays_the_run_when_there_is_no_spare():
    def makespan(repair):
        raw = {"project": {"name": "t", "start": "2026-01-01"},
               "pools": [{"name": "p", "accelerator": "h100", "count": 8, "node_size": 8,
                          "price_usd_per_gpu_h": 1.0}],
               "workloads": [{"name": "w", "hours_per_run": 100, "accelerators": 8}],
               "reliability": {"failure_rate_per_gpu_h": 0.00125, "repair": repair,
                               "checkpoint": {"interval": "auto", "write": 0}}}
        loaded = load_data(raw, "t")
        plan = build_plan(nominal_scenario(loaded.scenario), loaded.catalog)
        return [simulate(plan, 1, k) for k in range(20)]

    fast, slow = makespan(0), makespan("50 h")
    for a, b in zip(fast, slow, strict=True):
        fails = b.finished[0].failures
        assert fails == a.finished[0].failures
        # each failure keeps the only node out for 50 h, and the run waits for it
        assert b.makespan_h() == pytest.approx(a.makespan_h() + 50.0 * fails)


def test_strict_with_a_replication_that_cannot_finish_is_a_user_error(cli, write, tmp_path):
    text = MINIMAL + "simulation:\n  horizon: 5 h\n"
    err = bad(cli, "run", write(text), "--strict", "--reps", "3", "--workers", "1", "--out", tmp_path / "s")
    assert "passed its horizon" in err


def test_scheduler_and_precision_settings_are_checked(cli, write, tmp_path):
    p = write(UNC)
    assert "goes with --backend dask" in bad(cli, "run", p, "--scheduler", "tcp://x:1", "--out", tmp_path / "a")
    assert "needs random sampling" in bad(cli, "run", p, "--precision", "0.05", "--sampling", "lhs",
                                          "--out", tmp_path / "b")


def test_an_unreachable_dask_scheduler_is_a_user_error(cli, write, tmp_path):
    pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'trainsim[dask]'")
    assert "cannot reach the Dask scheduler" in bad(cli, "run", write(UNC), "--backend", "dask", "--scheduler",
                                                    "notanaddress", "--reps", "2", "--out", tmp_path / "c")


def test_quantile_intervals_are_none_when_n_is_too_small_and_json_is_strict(cli, write, tmp_path):
    c = ci95(list(range(20)))
    assert c["p95"][1] is None and c["p50"][0] is not None
    assert ci95([1.0])["mean"] == [None, None]
    out = tmp_path / "one"
    code, _o, err = cli("run", write(MINIMAL), "--reps", "1", "--workers", "1", "--out", out)
    assert code == 0, err
    text = (out / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)


def test_overwrite_leaves_nothing_of_the_old_run(cli, write, tmp_path):
    out = tmp_path / "o"
    assert cli("compare", write(MINIMAL + "variants:\n  v:\n    set:\n      workloads[0].runs: 3\n"),
               "--reps", "2", "--workers", "1", "--out", out)[0] == 0
    assert (out / "compare.json").exists()
    assert cli("run", write(MINIMAL, "m.yaml"), "--reps", "2", "--workers", "1", "--out", out,
               "--overwrite")[0] == 0
    assert not (out / "compare.json").exists() and (out / "summary.json").exists()


def test_binomial_quantile_matches_scipy_stats():
    """ci95's order-statistic ranks come from scipy.special (scipy.stats takes a third of a second to
    import); they must be scipy.stats.binom.ppf's, step for step, small and large samples."""
    from scipy import stats as sps

    from sim.stats import binom_ppf

    for n in [*range(2, 400), 999, 1000, 4000, 10_007, 100_000, 1_000_000]:
        for q in (0.5, 0.9, 0.95):
            for p in (0.025, 0.975):
                assert binom_ppf(p, n, q) == int(sps.binom.ppf(p, n, q)), (n, q, p)
    assert binom_ppf(0.5, 10, 0.0) == 0 and binom_ppf(0.5, 10, 1.0) == 10
