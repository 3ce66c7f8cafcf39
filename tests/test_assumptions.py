"""What the results take that the scenario does not say is shown beside them: on-demand capacity,
the carbon defaults a pool falls back on (grid intensity and PUE, with their sources), and how a
cloud region's id given as a grid profile was read (us-east1 is Google's South Carolina, us-east-1
AWS's Virginia)."""

from __future__ import annotations

import json

from sim import api
from sim.catalog import builtin
from sim.plan import assumptions
from sim.schema import carbon_default_entries

BASE = """
project: {{name: a, start: 2026-01-01}}
pools:
  - {{name: p1, accelerator: h100, count: 16, pricing: reserved, price_usd_per_gpu_h: 2.0{p1}}}
  - {{name: p2, accelerator: h100, count: 16, pricing: reserved, price_usd_per_gpu_h: 2.0}}
workloads:
  - {{name: w, runs: 2, accelerators: 8, hours_per_run: 10 h, mfu: 0.4}}
{carbon}
simulation: {{priors: off}}
"""


def carbon_lines(write, carbon: str = "", p1: str = "") -> list[str]:
    loaded = api.load(write(BASE.format(carbon=carbon, p1=p1)))
    return [a for a in assumptions(loaded.scenario, loaded.catalog) if a.startswith("carbon:")]


def test_the_default_grid_and_pue_are_named_with_their_values_and_sources(write):
    lines = carbon_lines(write)
    d = carbon_default_entries()
    grid = next(x for x in lines if "grid intensity" in x)
    pue = next(x for x in lines if "PUE" in x)
    assert f"{float(d['grid_gco2_per_kwh']['value']):g} gCO2/kWh" in grid and "p1, p2" in grid
    assert str(d["grid_gco2_per_kwh"]["date"]) in grid and d["grid_gco2_per_kwh"]["source"].split(":")[0] in grid
    assert f": {float(d['pue']['value']):g} taken" in pue and str(d["pue"]["date"]) in pue


def test_nothing_is_said_of_what_the_scenario_gives(write):
    assert carbon_lines(write, "carbon: {grid_gco2_per_kwh: 300, pue: 1.3}") == []
    # a pool's own figures: only the other pool falls back on the defaults
    lines = carbon_lines(write, p1=", grid_gco2_per_kwh: 100, pue: 1.2")
    assert len(lines) == 2 and all("pool(s) p2:" in x for x in lines)


def test_a_cloud_region_id_says_which_cloud_and_place_it_was_read_as(write):
    cat = builtin()
    for name, where, cloud in (("us-east1", "South Carolina", "Google Cloud"), ("us-east-1", "Virginia", "AWS")):
        (line,) = carbon_lines(write, f"carbon: {{profile: {name}, pue: 1.2}}")
        prof = cat.profiles[name]
        mean = prof.annual_mean if prof.annual_mean is not None else prof.mean()
        assert f"'{name}' read as the {cloud} region {name}" in line and where in line
        assert f"{mean:,.0f} gCO2/kWh on average" in line
    # a shipped profile named as such is not an interpretation: nothing to say
    assert carbon_lines(write, "carbon: {profile: de-2024, pue: 1.2}") == []


def test_the_lines_reach_the_terminal_the_summary_and_the_report(write, cli, tmp_path):
    path = write(BASE.format(carbon="carbon: {profile: us-east1}", p1=""))
    code, out, err = cli("estimate", path)
    assert code == 0, err
    assert "assumption: carbon: grid profile 'us-east1' read as the Google Cloud region" in out
    assert "assumption: carbon: no PUE given" in out
    code, out, err = cli("run", path, "--reps", "3", "--workers", "1", "--out", tmp_path / "o")
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert any("South Carolina" in a for a in summary["assumptions"])
    report = (tmp_path / "o" / "report.md").read_text()
    assert "## Assumed, not given" in report and "South Carolina" in report


def test_each_region_said_once_and_only_when_a_pool_uses_it(write):
    """Found in review: two pools naming the same region gave two lines, and carbon.profile was
    spelt out though every pool had its own."""
    lines = carbon_lines(write, "carbon: {profile: us-east-1, pue: 1.2}", p1=", carbon_profile: us-east1")
    assert [x for x in lines if "us-east1" in x] and [x for x in lines if "'us-east-1'" in x]  # p2 uses it
    text = BASE.format(carbon="carbon: {profile: us-east-1, pue: 1.2}", p1=", carbon_profile: us-east1").replace(
        "price_usd_per_gpu_h: 2.0}\n", "price_usd_per_gpu_h: 2.0, carbon_profile: us-east1}\n")
    loaded = api.load(write(text, "both.yaml"))
    lines = [a for a in assumptions(loaded.scenario, loaded.catalog) if a.startswith("carbon:")]
    assert len(lines) == 1 and "'us-east1'" in lines[0]
