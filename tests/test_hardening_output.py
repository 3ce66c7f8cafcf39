"""Issue 9, the output side: plots that cope with any data, a terminal summary that never divides
by zero, non-finite results refused with the metric or input named, argument checks that give
exit 2 (not 1), and messages that say what to do."""

import json
import logging
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from sim import api, present, report
from sim import sensitivity_analysis as sens
from sim.montecarlo import Replicator, non_finite
from tests.conftest import MINIMAL

SPOT = MINIMAL.replace("    price_usd_per_gpu_h: 2.0\n",
                       "    price_usd_per_gpu_h: 2.0\n    pricing: spot\n    preemption: {rate_per_node_h: 0.1}\n")
VARIANTS = MINIMAL + "variants:\n  v1:\n    set:\n      workloads[train].mfu: 0.5\n"

# data a plot must draw (or say it cannot) without raising
DATA = {
    "constant": [337.04] * 10,
    "nearly constant": [337.04 + k * 6e-14 for k in range(10)],  # the issue's example
    "huge nearly constant": [1e300 * (1 + k * 1e-15) for k in range(10)],
    "single": [5.0],
    "empty": [],
    "infinite": [math.inf, -math.inf, math.inf],
    "some infinite": [1.0, 2.0, math.inf, 3.0],
    "nan": [math.nan, 1.0, math.nan],
    "huge": [1e300, -1e300, 3e299],
    "max float": [1.7e308, -1.7e308],
    "zeros": [0.0] * 5,
}


def _renders(ax) -> None:
    assert isinstance(ax, Axes)
    assert report._png(ax)[:4] == b"\x89PNG"  # drawn to the end, as the report does


SLOW_DATA = {"huge", "max float", "huge nearly constant"}  # a second each: the slow tier


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW_DATA else k for k in DATA])
def test_cost_plots_cope_with_any_data(kind):
    reps = pd.DataFrame({"cost_usd": np.array(DATA[kind], dtype=float)})
    for budget in (None, 300.0, math.inf):
        _renders(report.plot_cost_histogram(reps, budget=budget))
        _renders(report.plot_cost_cdf(reps, budget=budget))


@pytest.mark.parametrize("kind", list(DATA))
def test_spend_fan_and_compare_cope_with_any_data(kind):
    values = DATA[kind]
    months = [{"month": f"2026-{i + 1:02d}", **{f"{p}{q}": v for p in ("", "cumulative_") for q in
                                                ("p10", "p50", "p90")}} for i, v in enumerate(values)]
    _renders(report.plot_spend_fan({"spend_by_month": months}))
    df = pd.DataFrame({"cost_usd": np.array(values, dtype=float), "makespan_days": np.array(values, dtype=float)})
    _renders(report.plot_compare({"base": df, "v1": df}))
    _renders(report.plot_compare({"base": df}, metric="makespan_days"))
    _renders(report.plot_compare({"base": df.rename(columns={"cost_usd": "co2_kg"})}, metric="co2_kg"))


@pytest.mark.parametrize("kind", list(DATA))
def test_interruptions_by_size_copes_with_any_data(kind):
    values = np.array(DATA[kind], dtype=float)
    sizes = 8 * 2 ** np.arange(len(values))
    with np.errstate(over="ignore"):  # max float x 2: inf, which the plot must cope with too
        by = pd.DataFrame({"accelerators": sizes, "mean": values, "p5": values / 2, "p95": values * 2})
    _renders(report.plot_interruptions_by_size(by))


@pytest.mark.parametrize("kind", list(DATA))
def test_tornado_copes_with_any_data(kind):
    rows = []
    for i, v in enumerate(DATA[kind]):
        rows.append({"input": f"x{i}", **{f"cost_mean_{s}": v for s in ("base", "at_low", "at_high")}})
    _renders(sens.plot_tornado(rows))


def test_plots_with_no_data_at_all():
    _renders(report.plot_spend_fan({}))
    _renders(report.plot_compare({}))
    _renders(sens.plot_tornado([]))


def test_issue_example_spot_pool_with_equal_costs_writes_the_report(cli, write, tmp_path):
    code, out, err = cli("run", write(SPOT), "--reps", "10", "--workers", "1", "--out", tmp_path / "r")
    assert code == 0, err
    # cost, CDF, spend, ETTR and the preemptions per day held by run size
    assert (tmp_path / "r" / "report.html").read_text().count("data:image/png") == 6
    assert "Too many bins" not in err


def test_zero_price_run_summary_and_report(cli, write, tmp_path):
    """Item 5 (and costs all exactly 0 for the histogram): no ZeroDivisionError after the files."""
    text = MINIMAL.replace("price_usd_per_gpu_h: 2.0", "price_usd_per_gpu_h: 0")
    code, out, err = cli("run", write(text), "--reps", "5", "--workers", "1", "--out", tmp_path / "r")
    assert code == 0, err
    assert "The simulated mean is +$0.00 from it" in out
    assert (tmp_path / "r" / "report.html").exists()


def test_relative_never_divides_by_zero():
    assert present.relative(105.0, 100.0) == "+5.0%"
    assert present.relative(5.0, 0.0) == "+$5.00"
    assert present.relative(0.0, 0.0) == "+$0.00"
    assert present.relative(math.inf, 1.0) == "n/a"
    assert present.relative(1.0, math.nan) == "n/a"
    assert present.relative(1e308, 1e-308).startswith("+$")  # the ratio overflows: a difference


def test_a_plot_that_fails_is_left_out_not_the_run(cli, write, tmp_path, monkeypatch, caplog):
    def broken(*_a, **_k):
        raise RuntimeError("unforeseen")

    monkeypatch.setattr(report, "plot_cost_cdf", broken)
    with caplog.at_level(logging.WARNING, logger="sim.report"):
        code, _out, err = cli("run", write(MINIMAL), "--reps", "5", "--workers", "1", "--out", tmp_path / "r",
                              "--no-priors")
    assert code == 0, err
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.count("data:image/png") == 4 and not (tmp_path / "r" / "cost_cdf.png").exists()
    assert "plot cost_cdf.png left out of the report: RuntimeError: unforeseen" in caplog.text


# --- non-finite results (item 12) ------------------------------------------------------------
def test_overflowing_cost_is_refused_with_the_metric_named(cli, write, tmp_path):
    text = MINIMAL.replace("price_usd_per_gpu_h: 2.0", "price_usd_per_gpu_h: 1e307")
    code, _out, err = cli("run", write(text), "--reps", "3", "--workers", "1", "--out", tmp_path / "r")
    assert code == 2  # refused at validation, located (the loader's overflow checks)
    assert "pools[0].price_curve" in err and "too large to compute with" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "summary.json").exists()


def test_some_overflowing_replications_fail_the_others_go_on(write):
    # sampled values that get past validation (given here directly) and overflow are recorded as
    # failed replications naming the metric; the others go on
    text = MINIMAL.replace("price_usd_per_gpu_h: 2.0", "price_usd_per_gpu_h: {dist: uniform, min: 1, max: 2}")
    text += "simulation: {priors: off}\n"  # the price is the only uncertain input
    rep = Replicator(api.load(write(text)), seed=1)
    path = ("pools", 0, "price_usd_per_gpu_h")
    results = [rep.one(k, values={path: 1.7e306 if k % 3 else 1.5}) for k in range(20)]
    failed = [r for r in results if r.error]
    assert 0 < len(failed) < 20
    assert all("cost_usd is inf" in r.error["error"] for r in failed)
    assert all(math.isfinite(r.row["cost_usd"]) for r in results if not r.error)


def test_estimate_json_never_prints_infinity(cli, write):
    text = MINIMAL.replace("price_usd_per_gpu_h: 2.0", "price_usd_per_gpu_h: 1e307")
    code, out, err = cli("estimate", write(text), "--json")
    assert code == 2 and "Infinity" not in out and "too large to compute with" in err
    code, out, err = cli("estimate", "--accelerator", "h100", "--count", "8", "--params", "1e300", "--tokens",
                         "1e300", "--json")
    assert code == 2 and "Infinity" not in out and "--params" in err or "--tokens" in err, err


def test_non_finite_row_names_the_metric():
    assert non_finite({"cost_usd": 1.0, "gpu_hours": math.nan}).startswith("gpu_hours is nan")
    assert non_finite({"cost_usd": 1.0, "runs": 3}) is None


def test_runtime_warnings_become_one_line_without_paths(cli, monkeypatch, caplog):
    from sim import cli as climod

    def noisy(_a):
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            np.array([1e308]) * 10
        return 0

    monkeypatch.setattr(climod, "cmd_catalog", noisy)
    monkeypatch.delenv("TRAINSIM_DEBUG", raising=False)
    with caplog.at_level(logging.WARNING, logger="sim"):
        code, _out, err = cli("catalog")
    assert code == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("RuntimeWarning: overflow encountered in multiply" in m for m in messages)
    assert ".py:" not in err and not any(".py" in m for m in messages)


# --- sampled inputs (item 9) -------------------------------------------------------------------
def test_huge_sample_is_a_failed_replication_naming_the_input(cli, write, tmp_path):
    # refused at validation, where the distribution is given (the loader's overflow checks); the
    # replication-side check for values that get past it is the next test
    text = MINIMAL.replace("runs: 2", "runs: {dist: poisson, mean: 1e300}")
    code, _out, err = cli("run", write(text), "--reps", "3", "--workers", "1", "--out", tmp_path / "r")
    assert code == 2 and "internal error" not in err
    assert "workloads[0].runs: this distribution cannot be computed with" in err


@pytest.mark.parametrize("v, says", [(math.nan, "not a finite number"), (math.inf, "not a finite number"),
                                     (1e17, "too large for a whole number"), (-math.inf, "not a finite number")])
def test_unusable_samples_are_refused_even_with_clip(v, says):
    from sim.distributions import Bounds
    from sim.montecarlo import SampleError, _sampled

    class D:
        bounds, clip = Bounds(lo=1, integer=True), True

    got = _sampled(v, D(), "workloads[train].runs", {}, ("workloads", 0, "runs"))
    assert isinstance(got, SampleError) and says in str(got) and "workloads[train].runs" in str(got)
    assert _sampled(3.0, D(), "x", {}, ("p",)) == {("p",): 3}


# --- arguments (items 9 and 17) --------------------------------------------------------------
@pytest.mark.parametrize("args, says", [
    (["compare", "{v}", "--reps", "-5"], "--reps: must be a whole number from 1"),
    (["compare", "{v}", "--reps", "0"], "--reps: must be a whole number from 1"),
    (["compare", "{v}", "--seed", "-5"], "--seed: must be a whole number >= 0"),
    (["compare", "{v}", "--workers", "0"], "--workers: must be a whole number >= 1"),
    (["compare", "{v}", "--sweep", "workloads[train].mfu=0:inf:1"], "must be finite numbers"),
    (["compare", "{v}", "--sweep", "workloads[train].mfu=nan:1:1"], "must be finite numbers"),
    (["compare", "{v}", "--sweep", "workloads[train].mfu=0:1e308:1e-300"], "at most 200"),
    (["compare", "{v}", "--sweep", "workloads[train].mfu=0.3:0.5:0.1", "--seed", "-1"], "--seed"),
    (["compare", "{v}", "--only", "base"], "--only: base: nothing to compare with; name at least two of: base, v1"),
    (["compare", "{v}", "--only", "v1,v1"], "nothing to compare with"),
    (["compare", "{v}", "--only", ",", "--sweep", "workloads[train].mfu=0.3:0.5:0.1"], "--only"),
    (["run", "{m}", "--reps", "0"], "--reps"),
    (["run", "{m}", "--reps", "1000000000000"], "--reps: must be a whole number from 1 to 100,000,000"),
    (["run", "{m}", "--workers", "0"], "--workers"),
    (["run", "{m}", "--seed", "-1"], "--seed"),
    (["sensitivity", "{u}", "--reps", "0"], "--reps"),
    (["sensitivity", "{u}", "--n", "1099511627776"], "--n: at most 65,536 (2^16) base samples"),
    (["sensitivity", "{u}", "--n", "65536", "--reps", "1000"], "lower --n or --reps"),
    (["sensitivity", "{u}", "--workers", "0"], "--workers"),
    (["sensitivity", "{u}", "--seed", "-3"], "--seed"),
    (["compare", "{v}", "--reps", "x"], "--reps: expected a whole number, got 'x'"),
    (["sensitivity", "{u}", "--n", "2.5"], "--n: expected a whole number, got '2.5'"),
    (["run", "{m}", "--precision", "x"], "--precision: expected a number, got 'x'"),
    (["sensitivity", "{u}", "--seed", str(2**63)], "--seed: at most 4,294,967,295 (2^32 - 1) for sensitivity"),
])
def test_bad_arguments_exit_2_with_a_message(cli, write, tmp_path, args, says):
    files = {"{v}": write(VARIANTS, "v.yaml"), "{m}": write(MINIMAL, "m.yaml"),
             "{u}": write(MINIMAL.replace("mfu: 0.4", "mfu: {dist: uniform, min: 0.3, max: 0.5}").replace(
                 "tokens: 20B", "tokens: {dist: uniform, min: 10B, max: 30B}"), "u.yaml")}
    argv = [files.get(a, a) for a in args] + ["--out", tmp_path / "o"]
    code, _out, err = cli(*argv)
    assert code == 2, err
    assert says in err and "internal error" not in err
    assert not (tmp_path / "o").exists()  # refused before any folder is made


def test_estimate_count_zero_says_it_once(cli):
    code, _out, err = cli("estimate", "--count", "0", "--accelerator", "h100", "--params", "1B", "--tokens", "1B")
    assert code == 2
    assert err.count("--count: must be >= 1") == 1


def test_compare_no_variants_still_says_so(cli, write, tmp_path):
    code, _out, err = cli("compare", write(MINIMAL), "--only", "base", "--out", tmp_path / "o")
    assert code == 2 and "defines no `variants:`" in err


@pytest.mark.slow
def test_local_dask_cluster_is_quiet(cli, write, tmp_path):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    code, _out, err = cli("run", write(MINIMAL), "--reps", "2", "--workers", "1", "--backend", "dask",
                          "--out", tmp_path / "d")
    assert code == 0, err
    assert "INFO" not in err, err


def test_compare_json_is_strict_json(cli, write, tmp_path):
    code, _out, err = cli("compare", write(VARIANTS), "--reps", "3", "--workers", "1", "--out", tmp_path / "c")
    assert code == 0, err
    json.loads((tmp_path / "c" / "compare.json").read_text(), parse_constant=pytest.fail)


def test_api_checks_counts():
    with pytest.raises(api.SettingsError, match="--reps"):
        api.check_counts(reps=0)
    with pytest.raises(api.SettingsError, match="--seed"):
        api.check_counts(seed=-1)
    api.check_counts(reps=1, seed=0, workers=1)


# --- found while fuzzing: precision with too few replications for a P95 interval ---------------
def test_precision_with_few_replications_is_not_met_and_says_n_a(cli, write, tmp_path):
    text = MINIMAL.replace("mfu: 0.4", "mfu: {dist: uniform, min: 0.3, max: 0.5}")
    code, out, err = cli("run", write(text), "--precision", "0.5", "--reps", "3", "--workers", "1",
                         "--out", tmp_path / "r")
    assert code == 0, err
    assert "NOT met (cap reached) after 3 replications" in out and "P95 +-n/a" in out


def test_precision_of_a_zero_cost_is_met_not_run_to_the_cap(cli, write, tmp_path):
    text = MINIMAL.replace("price_usd_per_gpu_h: 2.0", "price_usd_per_gpu_h: 0")
    code, out, err = cli("run", write(text), "--precision", "0.01", "--reps", "500", "--workers", "1",
                         "--out", tmp_path / "r")
    assert code == 0, err
    assert "precision target 1.00%: met after" in out and "500 replications" not in out
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["precision"]["met"] is True


# --- found while exploring: statistics of finite but huge costs -------------------------------
def test_statistics_of_huge_finite_values_stay_finite_and_quiet():
    from sim.stats import ci95, describe

    a = np.array([1.5e307, 1.6e307, 1.7e307, 1.2e307])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        d, c = describe(a), ci95(a)
    assert d["mean"] == pytest.approx(1.5e307) and math.isfinite(d["std"]) and d["std"] > 0
    assert all(math.isfinite(x) for x in c["mean"])
    small = np.array([1.0, 2.0, 3.0])
    assert describe(small)["mean"] == 2.0 and describe(small)["std"] == pytest.approx(1.0)
    assert describe([1e200, 1e200])["std"] == 0.0  # squares of 1e200 would overflow


def test_some_huge_replications_give_a_finite_summary(cli, write, tmp_path):
    from sim.montecarlo import non_finite

    assert "cost_usd is inf, not a finite number" in non_finite({"cost_usd": math.inf, "gpu_hours": 1.0})
    assert non_finite({"cost_usd": 1e307}) is None
    # the largest prices validation lets through give huge but finite costs and a finite summary
    text = MINIMAL.replace("price_usd_per_gpu_h: 2.0", "price_usd_per_gpu_h: {dist: uniform, min: 1e290, "
                           "max: 1e291}")
    code, out, err = cli("run", write(text), "--reps", "20", "--workers", "1", "--out", tmp_path / "r")
    assert code == 0, err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text(), parse_constant=pytest.fail)
    assert summary["metrics"]["cost_usd"]["mean"] > 1e290
    assert "RuntimeWarning" not in err
