"""`sim compare`: strategies side by side with common random numbers, paired differences, and
sweeps that find break-even points."""

import json

import pandas as pd
import pytest

from sim.comparison import break_even, sweep_values
from tests.conftest import MINIMAL, SCENARIOS

DECISION = """\
project: {name: d, start: 2026-01-01}
pools:
  - {name: gpus, accelerator: h100, count: 64, price_usd_per_gpu_h: 2.0}
workloads:
  - {name: pretrain, hours_per_run: 100, accelerators: 8}
  - {name: finetune, runs: 10, hours_per_run: 1, accelerators: 8, after: [pretrain]}
simulation: {priors: off}
variants:
  public:
    workloads:
      - {name: finetune, runs: 10, hours_per_run: 5, accelerators: 8}
"""


def test_common_random_numbers_make_a_price_change_exact(cli, write, tmp_path):
    text = MINIMAL + """\
reliability: {failure_rate_per_gpu_h: 5e-3, restart: 10 min, checkpoint: {interval: 1 h, write: 1 min}}
variants:
  cheaper:
    set:
      pools[gpus].price_usd_per_gpu_h: 1.5
"""
    code, out, err = cli("compare", write(text), "--reps", "40", "--workers", "1", "--out", tmp_path / "c")
    assert code == 0, err
    report = json.loads((tmp_path / "c" / "compare.json").read_text())
    base = pd.read_parquet(tmp_path / "c" / "base" / "replications.parquet")
    cheap = pd.read_parquet(tmp_path / "c" / "cheaper" / "replications.parquet")
    assert base.failures.sum() > 0
    assert list(cheap.cost_usd) == pytest.approx(list(base.cost_usd * 0.75))  # same failures and schedule
    pair = next(p for p in report["pairs"] if p["metric"] == "cost_usd")
    assert (pair["a"], pair["b"], pair["p_a_lower"]) == ("base", "cheaper", 0.0)
    assert pair["diff_mean"] == pytest.approx((base.cost_usd - cheap.cost_usd).mean())
    assert "base vs cheaper" in out and "P(A cheaper)" in out


@pytest.mark.slow
def test_sweep_finds_the_closed_form_break_even(cli, write, tmp_path):
    # own: 800 GPU-h of pretraining + x x 8 GPU-h; public: x x 40 GPU-h -> equal at x = 25
    code, out, err = cli("compare", write(DECISION), "--sweep", "workloads[finetune].runs=10:40:10",
                         "--reps", "3", "--workers", "1", "--out", tmp_path / "s")
    assert code == 0, err
    report = json.loads((tmp_path / "s" / "compare.json").read_text())
    (b,) = report["break_even"]
    assert b["break_even_mean"] == pytest.approx(25.0)
    assert b["band_crossing_p5"] == pytest.approx(25.0) and b["band_crossing_p95"] == pytest.approx(25.0)
    sweep = pd.read_parquet(tmp_path / "s" / "sweep.parquet")
    assert sorted(sweep.value.unique()) == [10, 20, 30, 40]  # the break-even (25) lies between two of them
    row = sweep[(sweep.value == 10) & (sweep.strategy == "public")].iloc[0]
    assert row.cost_usd_mean == pytest.approx(10 * 40 * 2.0)
    assert "break-even at workloads[finetune].runs = 25" in out


@pytest.mark.slow
def test_shipped_decision_scenario_runs(cli, tmp_path):
    code, out, err = cli("compare", SCENARIOS / "pretrain_vs_finetune.yaml", "--reps", "20", "--workers", "1",
                         "--out", tmp_path / "p")
    assert code == 0, err
    assert "public-8b-lora" in out


def test_bad_compare_input(cli, write, tmp_path):
    code, _o, err = cli("compare", write(MINIMAL), "--out", tmp_path / "a")
    assert code == 2 and "nothing to compare" in err
    code, _o, err = cli("compare", write(DECISION), "--sweep", "workloads[finetune].runs=1:x:1",
                        "--out", tmp_path / "b")
    assert code == 2 and "START, STOP and STEP must be numbers" in err
    code, _o, err = cli("compare", write(DECISION), "--only", "base,nope", "--out", tmp_path / "c")
    assert code == 2 and "no variant named 'nope'" in err


def test_helpers():
    assert sweep_values("a=1:2:0.5") == ("a", [1, 1.5, 2])
    assert sweep_values("k=10:40:10") == ("k", [10, 20, 30, 40])
    assert break_even([0, 1, 2], [2.0, 1.0, -1.0]) == pytest.approx(1.5)
    assert break_even([0, 1], [1.0, 2.0]) is None


# A key only a variant has: `reserve` adds an 8-GPU reserved block for 20 h. Base: 4 runs x 10 h x 8
# GPUs at $4 = $1,280. Reserve: one run on the block (8 x 20 h x price p, billed whatever the runs
# do), three on demand ($960): the same cost at p = $2.
VARIANT_ONLY = """\
project: {name: v, start: 2026-01-01}
pools:
  - {name: od, accelerator: h100, count: 64, price_usd_per_gpu_h: 4.0}
workloads:
  - {name: train, runs: 4, hours_per_run: 10, accelerators: 8, pools: [od]}
simulation: {priors: off}
variants:
  reserve:
    pools:
      - {name: od, accelerator: h100, count: 64, price_usd_per_gpu_h: 4.0}
      - {name: block, accelerator: h100, count: 8, pricing: reserved, price_usd_per_gpu_h: 2.0, term: 20 h}
    workloads:
      - {name: train, runs: 4, hours_per_run: 10, accelerators: 8, pools: [block, od]}
"""


def test_a_key_only_a_variant_has_is_swept_in_that_variant(cli, write, tmp_path):
    path = write(VARIANT_ONLY)
    code, _o, err = cli("compare", path, "--sweep", "pools[block].price_usd_per_gpu_h=1:4:1", "--out", tmp_path / "a")
    assert code == 2 and "Traceback" not in err
    assert ("pools[block].price_usd_per_gpu_h is in reserve only: sweep it there alone with --sweep "
            "reserve:pools[block].price_usd_per_gpu_h=START:STOP:STEP") in err, err
    assert not (tmp_path / "a").exists()
    code, out, err = cli("compare", path, "--sweep", "reserve:pools[block].price_usd_per_gpu_h=1:4:1", "--reps", "2",
                         "--workers", "1", "--out", tmp_path / "s")
    assert code == 0, err
    report = json.loads((tmp_path / "s" / "compare.json").read_text())
    assert report["sweep"]["strategy"] == "reserve"
    base = [r["cost_usd_mean"] for r in report["costs"] if r["strategy"] == "base"]
    assert base == pytest.approx([1280.0] * 4)  # run once, as given, and compared at every value
    reserve = [r["cost_usd_mean"] for r in report["costs"] if r["strategy"] == "reserve"]
    assert reserve == pytest.approx([960.0 + 160.0 * p for p in (1, 2, 3, 4)])
    assert report["break_even"][0]["break_even_mean"] == pytest.approx(2.0)
    assert "break-even at reserve:pools[block].price_usd_per_gpu_h = $2.00 " in out
    folders = sorted(p.name for p in (tmp_path / "s").iterdir() if p.is_dir())
    assert folders == ["base", "block-price_usd_per_gpu_h-1", "block-price_usd_per_gpu_h-2",
                       "block-price_usd_per_gpu_h-3", "block-price_usd_per_gpu_h-4"]
    code, _o, err = cli("compare", path, "--sweep", "nope:pools[block].count=8:16:8", "--out", tmp_path / "n")
    assert code == 2 and "'nope' is not one of the strategies run (base, reserve)" in err


def test_sweep_values_are_round_and_folder_names_readable():
    from sim.comparison import sweep_folder, sweep_target

    assert sweep_values("k=0.1:0.5:0.1")[1] == [0.1, 0.2, 0.3, 0.4, 0.5]  # not 0.30000000000000004
    assert sweep_folder("workloads[finetune].runs", 100) == "finetune-runs-100"
    assert sweep_folder("workloads[0].mfu", 0.35) == "workloads-0-mfu-0.35"
    assert sweep_folder("project.budget_usd", 2e6) == "project-budget_usd-2e+06"
    assert sweep_target("reserve:pools[block].count") == ("reserve", "pools[block].count")
    assert sweep_target("pools[block].count") == (None, "pools[block].count")


def test_swept_values_and_break_evens_print_plainly():
    from sim.tables import number

    assert [number(x) for x in (1680.3, 25.13, 25.0, 0.3512, 999.7, -1400.0)] == [
        "1,680", "25.1", "25", "0.351", "1,000", "-1,400"]
    assert [number(x) for x in (1.23e-05, 2e9, 0.0)] == ["1.23e-05", "2e+09", "0"]


def _workload(name: str) -> str:
    return (f"      - {{name: {name}, runs: 1, params: 1B, tokens: 20B, accelerators: 8, "
            "mfu: {dist: uniform, min: 0.2, max: 0.5}}\n")


BY_POSITION = ("""\
project: {name: order, start: 2026-01-01}
pools:
  - {name: gpus, accelerator: h100, count: 64, price_usd_per_gpu_h: 2.0}
simulation: {priors: off}
correlations:
  - {between: ["workloads[0].mfu", "workloads[1].mfu"], rank: 0.9}
workloads:
""" + "".join(_workload(n)[4:] for n in "abc") + """\
variants:
  reversed:
    workloads:
""" + "".join(_workload(n) for n in "cba"))


def _rank_corr(df: pd.DataFrame, x: str, y: str) -> float:
    return float(df[f"input:workloads[{x}].mfu"].corr(df[f"input:workloads[{y}].mfu"], method="spearman"))


def _correlates_a_with_b(df: pd.DataFrame) -> None:
    assert _rank_corr(df, "a", "b") > 0.7
    assert abs(_rank_corr(df, "b", "c")) < 0.5 and abs(_rank_corr(df, "a", "c")) < 0.5


def test_a_base_correlation_by_position_follows_its_workloads_into_a_variant(cli, write, tmp_path):
    """`workloads[0].mfu ~ workloads[1].mfu` in the base means a ~ b; a variant that gives the
    workloads in another order (c, b, a) correlates a and b still, not whatever is now at 0 and 1."""
    import sim

    path = write(BY_POSITION)
    result = sim.run(path, variant="reversed", reps=64, workers=1, out=None)
    assert result.manifest["resolved_scenario"]["correlations"] == [
        {"between": ["workloads[a].mfu", "workloads[b].mfu"], "rank": 0.9}]
    _correlates_a_with_b(result.replications)
    both = sim.compare(path, reps=64, workers=1, out=None)
    for df in both.results.values():
        _correlates_a_with_b(df)
    code, _o, err = cli("compare", path, "--reps", "64", "--workers", "1", "--out", tmp_path / "c")
    assert code == 0, err
    for name in ("base", "reversed"):
        _correlates_a_with_b(pd.read_parquet(tmp_path / "c" / name / "replications.parquet"))
    manifest = json.loads((tmp_path / "c" / "reversed" / "manifest.json").read_text())
    assert manifest["resolved_scenario"]["correlations"][0]["between"] == ["workloads[a].mfu", "workloads[b].mfu"]


def test_a_base_correlation_by_position_to_a_workload_a_variant_drops_is_refused(cli, write, tmp_path):
    """As one written by name: the variant has no workload b, so the correlation cannot be kept (it
    is not read against whatever the variant has at position 1)."""
    path = write(BY_POSITION.replace("  reversed:\n", "  lean:\n").replace(_workload("b"), ""))
    hint = "set `correlations: []` in variant lean"
    code, _o, err = cli("validate", path)
    assert code == 2 and str(path) in err and "variants.lean.correlations[0].between[1]" in err, err
    assert "no item named 'b'" in err and hint in err, err
    code, _o, err = cli("run", path, "--variant", "lean", "--reps", "2", "--out", tmp_path / "r")
    assert code == 2 and str(path) in err and "correlations[0].between[1]" in err and hint in err, err
    assert cli("validate", write(BY_POSITION.replace("  reversed:\n", "  lean:\n").replace(_workload("b"), "")
                                 + "    correlations: []\n", "fixed.yaml"))[0] == 0


def test_a_variant_reads_its_own_correlations_against_its_own_workloads(write):
    """A correlation the variant writes is read against the variant's lists, positions included;
    an item whose name would read as a position keeps its position."""
    from sim.loader import load, named_path

    text = BY_POSITION + '    correlations:\n      - {between: ["workloads[0].mfu", "workloads[2].mfu"], rank: 0.5}\n'
    assert load(write(text), variant="reversed").scenario.correlations[0].between == [
        "workloads[0].mfu", "workloads[2].mfu"]  # c ~ a, as the variant wrote them
    names = {"workloads": ["7", "b"], "pools": ["gpus"]}
    assert named_path("workloads[0].mfu", names) == "workloads[0].mfu"
    assert named_path("pools[-1].price_usd_per_gpu_h", names) == "pools[gpus].price_usd_per_gpu_h"
