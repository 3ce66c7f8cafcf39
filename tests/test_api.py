"""The Python API (sim.api, re-exported from sim): the same numbers and files as the CLI."""

import importlib
import json

import pandas as pd
import pytest

import sim
from sim import sensitivity_analysis as sens
from sim.loader import load_data
from tests.conftest import MINIMAL, SCENARIOS
from tests.test_sensitivity import DETERMINISTIC


def test_run_gives_the_numbers_the_cli_wrote(cli, tmp_path):
    scenario = SCENARIOS / "uncertain_pretrain.yaml"
    code, _out, err = cli("run", scenario, "--reps", "100", "--seed", "1", "--out", tmp_path / "cli")
    assert code == 0, err
    r = sim.run(str(scenario), reps=100, seed=1)
    assert r.out is None  # out=None: results in memory, no folder left behind
    pd.testing.assert_frame_equal(r.replications, pd.read_parquet(tmp_path / "cli" / "replications.parquet"))
    pd.testing.assert_frame_equal(r.runs, pd.read_parquet(tmp_path / "cli" / "runs.parquet"))
    written = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert json.loads(json.dumps(r.summary)) == written
    assert "input:workloads[pretrain-70b].mfu" in r.replications


def test_run_into_a_folder_writes_the_cli_files_and_a_report(tmp_path):
    loaded = sim.load(SCENARIOS / "bench_reference.yaml")
    r = sim.run(loaded, reps=10, workers=1, out=tmp_path / "r")
    for name in ("replications.parquet", "runs.parquet", "summary.json", "manifest.json", "report.html"):
        assert (r.out / name).exists()
    assert len(r.runs) == len(pd.read_parquet(tmp_path / "r" / "runs.parquet"))
    assert r.report(tmp_path / "again").joinpath("report.md").exists()
    with pytest.raises(sim.SettingsError, match="--out: .*not empty"):
        sim.run(loaded, reps=10, out=tmp_path / "r")
    with pytest.raises(sim.SettingsError, match="--precision: needs random sampling"):
        sim.run(loaded, precision=0.01, sampling="lhs")


def test_estimate_gives_a_dataframe_with_its_total(write):
    df = sim.estimate(write(MINIMAL))
    assert list(df["name"]) == ["train"] and df.attrs["total"]["cost_usd"] == pytest.approx(df["cost_usd"].sum())
    importlib.import_module("sim.deterministic")  # no module shadows an API function
    assert callable(sim.estimate) and sim.estimate is sim.api.estimate


def test_sensitivity_points_are_stored_and_reanalysed(tmp_path):
    loaded = load_data(DETERMINISTIC, "t")
    first = sim.sensitivity(loaded, reps=1, n=8, workers=1, out=tmp_path / "s")
    assert (tmp_path / "s" / "points.parquet").exists() and not first.failed
    again = sim.analyse(tmp_path / "s", report=False)
    assert again.tornado == first.tornado and again.sobol == first.sobol
    assert [r["input"] for r in first.tornado] == ["workloads[w].tokens", "workloads[w].mfu"]


def test_a_failing_point_is_recorded_not_fatal(monkeypatch):
    loaded = load_data(DETERMINISTIC, "t")
    real = sens._evaluate

    def flaky(loaded, values, seed, reps):
        if min(values.values()) < 0.395:  # the low MFU point
            raise RuntimeError("boom")
        return real(loaded, values, seed, reps)

    monkeypatch.setattr(sens, "_evaluate", flaky)
    r = sim.sensitivity(loaded, reps=1, n=8, workers=1)
    assert r.failed and r.failed[0]["error"] == "RuntimeError: boom"
    assert r.points["error"].notna().sum() == len(r.failed)


def test_compare_in_memory():
    c = sim.compare(SCENARIOS / "reserve_vs_rent.yaml", reps=5, workers=1)
    assert c.out is None and set(c.results) == set(c.report["side_by_side"])
