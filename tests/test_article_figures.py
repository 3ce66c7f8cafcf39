"""The shipped scenarios reproduce the figures of the article that started the project
(AI21 Labs, Sharir, Peleg & Shoham 2020) through the real `sim estimate --json` command."""

import json

import pytest

from tests.conftest import SCENARIOS

# (file, article's cost of one run, article's cost of the 2 x 10-run project)
AI21 = [
    ("ai21_bert_base.yaml", 2.5e3, 50e3),
    ("ai21_bert_large.yaml", 10e3, 200e3),
    ("ai21_gpt2_xl.yaml", 80e3, 1.6e6),
]


def estimate_json(cli, path):
    code, out, err = cli("estimate", path, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("name, per_run, project", AI21)
def test_ai21_rows_within_25_percent(cli, name, per_run, project):
    est = estimate_json(cli, SCENARIOS / name)
    runs = est["workloads"]
    assert sum(w["runs"] for w in runs.values()) == 20  # 2 configurations x 10 runs
    for w in runs.values():
        assert w["cost_usd_per_run"] == pytest.approx(per_run, rel=0.25)
    assert est["total"]["cost_usd"] == pytest.approx(project, rel=0.25)


def test_t5_one_large_run_above_1_3m_and_project_near_10m(cli):
    est = estimate_json(cli, SCENARIOS / "t5_11b_project.yaml")
    large = est["workloads"]["t5-11b"]
    assert 2 <= large["runs"] <= 3
    assert large["cost_usd_per_run"] > 1.3e6
    assert large["flop_per_run"] == pytest.approx(6 * 11e9 * 1.07e12)  # ~1T tokens
    small = [w for name, w in est["workloads"].items() if name != "t5-11b"]
    assert sum(w["runs"] for w in small) >= 100  # hundreds of small runs
    assert est["total"]["cost_usd"] == pytest.approx(10e6, rel=0.30)


def test_t5_measured_variant_is_cheaper(cli):
    """The variant pricing Patterson et al.'s measured run shows the spread an assumption makes."""
    base = estimate_json(cli, SCENARIOS / "t5_11b_project.yaml")
    code, out, err = cli("estimate", SCENARIOS / "t5_11b_project.yaml", "--variant", "patterson-measured", "--json")
    assert code == 0, err
    measured = json.loads(out)["workloads"]["t5-11b"]
    assert measured["cost_usd_per_run"] == pytest.approx(512 * 20 * 24 * 2.00)
    assert measured["cost_usd_per_run"] < base["workloads"]["t5-11b"]["cost_usd_per_run"]
