"""`sim sensitivity`: the tornado against closed forms, Sobol indices against a case with a known
answer, and rankings that do not depend on the seed."""

import json

import pandas as pd
import pytest

from sim.loader import load, load_data
from sim.sensitivity_analysis import sobol_indices, tornado
from tests.conftest import SCENARIOS

# cost = 8 GPUs x hours x $2, hours = 6 N D / (8 x 989e12 x mfu) / 3600: no failures, so exact
DETERMINISTIC = {
    "project": {"name": "t", "start": "2026-01-01"},
    "pools": [{"name": "p", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0}],
    "workloads": [{"name": "w", "params": "1B", "tokens": {"dist": "uniform", "min": "10B", "max": "30B"},
                   "accelerators": 8, "mfu": {"dist": "uniform", "min": 0.39, "max": 0.41}}],
    "simulation": {"priors": "off"},  # tokens and mfu are the only uncertain inputs
}


def cost(tokens, mfu):
    return 8 * (6 * 1e9 * tokens / (8 * 989e12 * mfu) / 3600) * 2.0


def test_tornado_closed_form():
    rows = tornado(load_data(DETERMINISTIC, "t"), 0, 2)
    assert [r["input"] for r in rows] == ["workloads[w].tokens", "workloads[w].mfu"]
    t = rows[0]
    assert (t["low_value"], t["high_value"]) == pytest.approx((12e9, 28e9))
    assert t["cost_mean_at_low"] == pytest.approx(cost(12e9, 0.4))
    assert t["cost_mean_at_high"] == pytest.approx(cost(28e9, 0.4))
    assert t["cost_mean_base"] == pytest.approx(cost(20e9, 0.4))


@pytest.mark.slow
def test_sobol_indices_find_the_dominant_input():
    s = sobol_indices(load_data(DETERMINISTIC, "t"), 0, 1, 256)["indices"]["cost_mean"]
    # cost ~ tokens / mfu: tokens spread +-50%, mfu +-2.5%: tokens carries almost all the variance
    assert s["workloads[w].tokens"]["S1"] > 0.9 and s["workloads[w].mfu"]["ST"] < 0.05
    assert abs(s["workloads[w].tokens"]["ST"] - s["workloads[w].tokens"]["S1"]) < 0.1


def test_ranking_is_stable_when_the_seed_changes():
    loaded = load(SCENARIOS / "uncertain_pretrain.yaml", sets=["simulation.priors=off"])
    top = [[r["input"] for r in tornado(loaded, seed, 10)][:3] for seed in (0, 1)]
    assert top[0] == top[1] == ["workloads[pretrain-70b].tokens", "workloads[pretrain-70b].mfu",
                                "reliability.failure_rate_per_gpu_h"]


def test_command_writes_table_json_and_plot(cli, tmp_path):
    out = tmp_path / "s"
    code, printed, err = cli("sensitivity", SCENARIOS / "uncertain_pretrain.yaml", "--reps", "3", "--n", "8",
                             "--out", out, "--no-priors")
    assert code == 0, err
    df = pd.read_csv(out / "sensitivity.csv")
    assert df.input.iloc[0] == "workloads[pretrain-70b].tokens"
    assert {"cost_mean_S1", "cost_mean_ST", "cost_p90_S1", "makespan_days_mean_ST"} <= set(df.columns)
    data = json.loads((out / "sensitivity.json").read_text())
    assert data["sobol"]["points"] == 8 * (6 + 2)
    assert (out / "tornado.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Sobol S1" in printed
    row = next(x for x in printed.splitlines() if x.startswith("workloads[pretrain-70b].mfu "))
    assert row.split()[1].endswith("%") and row.split()[2].endswith("%"), row  # values in their key's unit
    # a stored run re-analysed from its points gives the same table, without simulating
    before = (out / "sensitivity.csv").read_text()
    (out / "sensitivity.csv").unlink()
    code, again, err = cli("sensitivity", "--analyse", out)
    assert code == 0, err
    assert again == printed and (out / "sensitivity.csv").read_text() == before
    code, _o, err = cli("sensitivity", SCENARIOS / "uncertain_pretrain.yaml", "--analyse", out)
    assert code == 2 and "give no FILE" in err


def test_no_uncertain_inputs_is_a_clear_error(cli, tmp_path):
    code, _o, err = cli("sensitivity", SCENARIOS / "ai21_bert_base.yaml", "--no-priors", "--out", tmp_path / "x")
    assert code == 2 and "no uncertain inputs" in err
