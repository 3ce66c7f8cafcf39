"""`--format csv|xlsx`: the headline table, the risk figures and the spend by period of `sim run`,
and the comparison's tables of `sim compare`, for a spreadsheet; the same numbers as summary.json."""

import json
import sys

import pandas as pd
import pytest

from tests.conftest import MINIMAL
from tests.test_compare import DECISION

RISKY = MINIMAL.replace("  start: 2026-01-01", "  start: 2026-01-01\n  budget_usd: 300\n  deadline: 2026-01-02")


def test_csv_holds_the_numbers_of_summary_json(cli, write, tmp_path):
    code, out, err = cli("run", write(RISKY), "--reps", "3", "--workers", "1", "--out", tmp_path / "r", "--format",
                         "csv", "--no-priors")
    assert code == 0, err
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    head = pd.read_csv(tmp_path / "r" / "summary_headline.csv").set_index("metric")
    assert head.loc["cost_usd", "p95"] == pytest.approx(s["metrics"]["cost_usd"]["p95"], rel=1e-12)
    assert head.loc["cost_usd", "ci95_mean_high"] == pytest.approx(s["metrics"]["cost_usd"]["ci95"]["mean"][1])
    assert head.loc["cost_usd", "nominal"] == pytest.approx(s["nominal"]["cost_usd"])
    risk = pd.read_csv(tmp_path / "r" / "summary_risk.csv").set_index("figure")
    row = risk.loc["P(cost > budget), budget_usd 300.0"]
    assert float(row["value"]) == s["risk"]["p_over_budget"] and row["ci95_high"] == s["risk"]["p_over_budget_ci95"][1]
    assert float(risk.loc["deterministic estimate (floor): cost_usd", "value"]) == pytest.approx(337.04, abs=0.01)
    spend = pd.read_csv(tmp_path / "r" / "summary_spend.csv")
    assert list(spend["period_kind"].unique()) == [s["spend_period"]]
    assert spend["mean"].sum() == pytest.approx(s["metrics"]["cost_usd"]["mean"])
    assert "csv: " in out and "summary_spend.csv" in out
    # the same tables as a workbook, a sheet each (the CLI's --format xlsx writes it with this function;
    # its refusal without openpyxl is tested below)
    pytest.importorskip("openpyxl")
    from sim.outputs import export_tables, run_tables

    [path] = export_tables(tmp_path, run_tables(s), "xlsx")
    book = pd.read_excel(path, sheet_name=None)
    assert list(book) == ["headline", "risk", "spend"]
    assert book["headline"].set_index("metric").loc["gpu_hours", "mean"] == pytest.approx(
        s["metrics"]["gpu_hours"]["mean"])


def test_xlsx_without_its_library_is_refused_before_running(cli, write, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # import openpyxl now raises ImportError
    code, out, err = cli("run", write(MINIMAL), "--reps", "2", "--out", tmp_path / "r", "--format", "xlsx")
    assert code == 2 and "--format" in err and "pip install openpyxl" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # nothing was simulated
    code, _, err = cli("compare", write(DECISION), "--reps", "2", "--out", tmp_path / "c", "--format", "xlsx")
    assert code == 2 and "openpyxl" in err


def test_compare_exports_the_strategies_and_the_pairs(cli, write, tmp_path):
    code, out, err = cli("compare", write(DECISION), "--reps", "3", "--workers", "1", "--out", tmp_path / "c",
                         "--format", "csv")
    assert code == 0, err
    report = json.loads((tmp_path / "c" / "compare.json").read_text())
    strat = pd.read_csv(tmp_path / "c" / "compare_strategies.csv").set_index("strategy")
    assert list(strat.index) == ["base", "public"]
    assert strat.loc["public", "cost_usd_mean"] == pytest.approx(report["side_by_side"]["public"]["cost_usd"]["mean"])
    pairs = pd.read_csv(tmp_path / "c" / "compare_pairs.csv")
    cost = pairs[pairs.metric == "cost_usd"].iloc[0]
    p = next(p for p in report["pairs"] if p["metric"] == "cost_usd")
    assert cost["diff_mean"] == pytest.approx(p["diff_mean"]) and cost["diff_mean_ci95_low"] == pytest.approx(
        p["diff_mean_ci95"][0])
