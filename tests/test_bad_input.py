"""Every kind of bad input: exit code 2, a message naming the file, the YAML path (and line where
known), what was expected and what was found; never a traceback."""

import subprocess
import sys

import pytest

from tests.conftest import MINIMAL


def bad(cli, path):
    code, out, err = cli("validate", path)
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert str(path) in err
    return err


def test_missing_file(cli, tmp_path):
    err = bad(cli, tmp_path / "nope.yaml")
    assert "no such file" in err


def test_folder_instead_of_file(cli, tmp_path):
    assert "is a folder" in bad(cli, tmp_path)


def test_invalid_yaml_gives_line(cli, write):
    p = write("project:\n  name: [unclosed\npools: []\n")
    err = bad(cli, p)
    assert "invalid YAML" in err and f"{p}:3" in err


def test_empty_file(cli, write):
    assert "the file is empty" in bad(cli, write(""))


def test_top_level_not_a_mapping(cli, write):
    assert "expected a mapping with project, pools and workloads" in bad(cli, write("- 1\n- 2\n"))


def test_duplicate_key(cli, write):
    p = write(MINIMAL.replace("    runs: 2\n", "    runs: 2\n    runs: 3\n"))
    err = bad(cli, p)
    assert "duplicate key 'runs' (first given on line 11)" in err and f"{p}:12" in err


def test_unknown_key_with_suggestion(cli, write):
    p = write(MINIMAL.replace("    mfu: 0.4", "    mfuu: 0.4"))
    err = bad(cli, p)
    assert f"{p}:15: workloads[0].mfuu: unknown key 'mfuu'; did you mean 'mfu'?" in err


def test_wrong_type(cli, write):
    p = write(MINIMAL.replace("    accelerators: 8", "    accelerators: [8]"))
    err = bad(cli, p)
    assert "workloads[0].accelerators: expected a number such as 110M" in err and "got [8]" in err


def test_zero_count(cli, write):
    err = bad(cli, write(MINIMAL.replace("count: 16", "count: 0")))
    assert "pools[0].count: must be >= 1, got 0" in err


def test_negative_runs(cli, write):
    err = bad(cli, write(MINIMAL.replace("runs: 2", "runs: -3")))
    assert "workloads[0].runs: must be >= 1, got -3" in err


def test_fractional_accelerators(cli, write):
    err = bad(cli, write(MINIMAL.replace("accelerators: 8", "accelerators: 2.5")))
    assert "workloads[0].accelerators: must be a whole number, got 2.5" in err


def test_mfu_above_one(cli, write):
    err = bad(cli, write(MINIMAL.replace("mfu: 0.4", "mfu: 1.4")))
    assert "workloads[0].mfu: must be <= 1, got 1.4" in err


def test_unknown_accelerator(cli, write):
    p = write(MINIMAL.replace("accelerator: h100", "accelerator: h1000"))
    err = bad(cli, p)
    assert f"{p}:6: pools[0].accelerator: unknown accelerator 'h1000'; did you mean 'h100'?" in err


def test_run_larger_than_any_pool(cli, write):
    p = write(MINIMAL.replace("accelerators: 8", "accelerators: 2048"))
    err = bad(cli, p)
    assert "workloads[0].accelerators: must be <= 16 (largest pool it may use: gpus), got 2048" in err


def test_dependency_on_missing_workload(cli, write):
    err = bad(cli, write(MINIMAL + "    after: [pretrain]\n"))
    assert "workloads[0].after[0]: no workload named 'pretrain' (workloads: train)" in err


def test_dependency_cycle(cli, write):
    text = MINIMAL + "    after: [b]\n" + """\
  - name: b
    gpu_hours_per_run: 10
    accelerators: 8
    after: [c]
  - name: c
    gpu_hours_per_run: 10
    accelerators: 8
    after: [train]
"""
    err = bad(cli, write(text))
    assert "dependency cycle: train -> b -> c -> train" in err


def test_unparseable_number(cli, write):
    err = bad(cli, write(MINIMAL.replace("params: 1B", "params: 1.5 billion")))
    assert "workloads[0].params: expected a number such as 110M, 1.5B, 2T or 3e9, got '1.5 billion'" in err


def test_unparseable_duration(cli, write):
    err = bad(cli, write(MINIMAL + "reliability:\n  restart: 3 fortnights\n"))
    assert "reliability.restart:" in err and "unknown unit 'fortnights'" in err


def test_bad_date(cli, write):
    err = bad(cli, write(MINIMAL.replace("start: 2026-01-01", "start: 2026-13-01")))
    assert "project.start: expected a date as YYYY-MM-DD, got '2026-13-01'" in err


def test_missing_required_key(cli, write):
    p = write(MINIMAL.replace("    accelerators: 8\n", ""))
    err = bad(cli, p)
    assert f"{p}:10: workloads[0].accelerators: required key is missing" in err


def test_no_size_given(cli, write):
    err = bad(cli, write(MINIMAL.replace("    tokens: 20B\n", "")))
    assert "workloads[0]: give the size of a run as exactly one of tokens (with params)" in err
    assert "found none" in err


def test_bad_pricing_tier(cli, write):
    err = bad(cli, write(MINIMAL.replace("    price_usd_per_gpu_h: 2.0", "    pricing: cheap")))
    assert "pools[0].pricing: expected one of 'on_demand', 'spot', 'reserved' or 'owned', got 'cheap'" in err


def test_unknown_pool_in_workload(cli, write):
    err = bad(cli, write(MINIMAL + "    pools: [gpu]\n"))
    assert "workloads[0].pools[0]: no pool named 'gpu' (pools: gpus)" in err


def test_bad_distribution(cli, write):
    err = bad(cli, write(MINIMAL.replace("mfu: 0.4", "mfu: {dist: pert, min: 0.5, mode: 0.4, max: 0.6}")))
    assert "workloads[0].mfu: pert needs min <= mode <= max" in err


def test_distribution_outside_field_limits(cli, write):
    err = bad(cli, write(MINIMAL.replace("mfu: 0.4", "mfu: {dist: uniform, min: 0.5, max: 1.5}")))
    assert "workloads[0].mfu: max: must be <= 1, got 1.5" in err


def test_unknown_distribution(cli, write):
    err = bad(cli, write(MINIMAL.replace("mfu: 0.4", "mfu: {dist: gamma, a: 2}")))
    assert "workloads[0].mfu: dist: expected one of lognormal, pert" in err


def test_no_catalog_price(cli, write):
    err = bad(cli, write(MINIMAL.replace("    price_usd_per_gpu_h: 2.0", "    pricing: spot\n    provider: lambda")))
    assert "pools[0].price_usd_per_gpu_h: not given, and the catalog has no spot price for h100 from provider" in err
    err = bad(cli, write(MINIMAL.replace("    price_usd_per_gpu_h: 2.0", "    pricing: spot\n    provider: nowhere")))
    assert "pools[0].provider: unknown provider 'nowhere'" in err


def test_preemption_on_on_demand_pool(cli, write):
    err = bad(cli, write(MINIMAL.replace("    price_usd_per_gpu_h: 2.0",
                                         "    price_usd_per_gpu_h: 2.0\n    preemption: {band: '<5%'}")))
    assert "pools[0]: preemption applies to spot pools only (pricing is on_demand)" in err


def test_several_errors_reported_at_once(cli, write):
    err = bad(cli, write(MINIMAL.replace("count: 16", "count: 0").replace("mfu: 0.4", "mfu: 2")))
    assert "pools[0].count" in err and "workloads[0].mfu" in err


def test_bad_variant(cli, write):
    text = MINIMAL + "variants:\n  cheap:\n    set:\n      pools[gpus].count: -1\n"
    err = bad(cli, write(text))
    assert "(in variant cheap) must be >= 1, got -1" in err


def test_unknown_variant_name(cli, write):
    code, _out, err = cli("validate", write(MINIMAL), "--variant", "nope")
    assert code == 2 and "no variant named 'nope' (variants: none defined)" in err


def test_bad_set_override(cli, write):
    code, _out, err = cli("estimate", write(MINIMAL), "--set", "workloads[nope].mfu=0.3")
    assert code == 2 and "no item named 'nope' (names: train)" in err


def test_correlation_of_fixed_input(cli, write):
    text = MINIMAL + "correlations:\n  - between: ['workloads[train].mfu', 'workloads[train].tokens']\n    rank: 0.5\n"
    err = bad(cli, write(text))
    assert "workloads[train].mfu is not uncertain" in err


def test_python_tags_are_refused(cli, write):
    """Safe loading only: a YAML python tag is an error, never executed."""
    err = bad(cli, write("!!python/object/apply:os.system ['echo hacked']\n"))
    assert "invalid YAML" in err


@pytest.mark.parametrize("args, message", [
    (["--params", "7X", "--tokens", "2T", "--accelerator", "h100", "--count", "8"],
     "command line: --params: expected a number"),
    (["--params", "7B", "--tokens", "2T", "--accelerator", "h999", "--count", "8"],
     "command line: --accelerator: unknown accelerator 'h999'"),
    (["--params", "7B", "--tokens", "2T"], "needs --accelerator and --count"),
])
def test_one_liner_errors(cli, args, message):
    code, _out, err = cli("estimate", *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_real_process_exit_code_and_no_traceback(write):
    p = write(MINIMAL.replace("count: 16", "count: many"))
    r = subprocess.run([sys.executable, "-m", "sim", "validate", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert f"{p}:7: pools[0].count: expected a number such as 110M, 1.5B, 2T or 3e9, got 'many'" in r.stderr
