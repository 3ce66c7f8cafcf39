"""The shipped grid carbon-intensity profiles (sim/data/grid_profiles.yaml): each one loads, is
sourced and reproduces its source's annual figure; cloud region ids stand for their grid's profile;
a scenario on a shipped region gives CO2 = energy x intensity through the CLI; `sim grid` lists them."""

from __future__ import annotations

import json

import pytest

from sim.catalog import builtin
from tests.test_energy import TINY as ENERGY_TINY

CAT = builtin()
OWN = {k: p for k, p in CAT.profiles.items() if k == p.name}  # the profiles, not the region ids naming them

# one 24 h run of 8 H100 from 00:00 UTC on 1 July 2026 (test_energy's tiny scenario, one run a day long)
TINY = ENERGY_TINY.replace("2026-01-01", "2026-07-01").replace("hours_per_run: 10", "hours_per_run: 24").replace(
    "runs: 2", "runs: 1")


@pytest.mark.parametrize("name", sorted(OWN))
def test_each_shipped_profile_is_sourced_and_reproduces_its_annual_figure(name):
    p = OWN[name]
    assert len(p.table) == 12 and all(len(r) == 24 for r in p.table)
    assert "https://" in p.source and p.checked.startswith("yes") and p.basis == "direct"
    assert f"{p.annual_mean:g}" in p.checked  # the figure read from the stored copy
    year = int(p.date[:4])
    if p.flat():  # an annual figure and nothing else: the profile is that figure at every hour
        assert p.table[0][0] == p.annual_mean
    else:  # the table is rounded to whole grams: its mean over the year is within half a gram of the file's
        assert abs(p.year_mean(year) - p.annual_mean) <= 0.5


def test_the_new_regions_are_shipped():
    # the US, European and Asian grids users train on: a month x hour profile or a named annual figure
    hourly = ["us-pjm-2024", "us-ercot-2024", "us-caiso-2024", "us-nyiso-2024", "de-2024", "jp-tokyo-2024",
              "sg-2024", "kr-2024", "in-west-2024"]
    assert all(not OWN[n].flat() for n in hourly)
    for region in ("us-west1", "us-central1", "europe-west9", "europe-west4", "europe-north1", "europe-north2"):
        assert CAT.profiles[region].flat() and CAT.profiles[region].name == f"gcp-{region}-2024"


def test_a_cloud_region_names_its_grids_profile():
    regions = CAT.grid_regions
    for aws_or_azure in ("us-east-1", "us-east-2", "eastus"):  # Northern Virginia and Ohio are in PJM
        assert CAT.profiles[aws_or_azure] is OWN["us-pjm-2024"]
    for r in regions.values():
        assert CAT.profiles[r.id] is OWN[r.profile]
        if r.provider == "gcp" and r.profile != f"gcp-{r.id}-2024":
            # a Google region on a zone's hourly profile: Google's own figure agrees with the zone's mean
            google, zone = OWN[f"gcp-{r.id}-2024"].annual_mean, OWN[r.profile].annual_mean
            assert abs(zone - google) <= 0.015 * google, r


def test_co2_on_a_shipped_region_is_energy_times_its_intensity_through_the_cli(cli, write, tmp_path):
    # one 24 h run of 8 H100 at full TDP (0.7 kW each, PUE 1) from 00:00 UTC on 1 July
    kwh = 8 * 0.7 * 24
    flat = write(TINY.replace("carbon: {", "carbon: {profile: us-west1, "))  # Google's 2024 Oregon figure
    code, out, err = cli("estimate", flat, "--json")
    assert code == 0, err
    total = json.loads(out)["total"]
    assert total["energy_kwh"] == pytest.approx(kwh, rel=1e-12)
    assert total["co2_kg"] == pytest.approx(kwh * 79.23 / 1000, rel=1e-12)  # 79.23 g/kWh at every hour
    # N. Virginia on PJM's 2024 profile, simulated: each hour's kWh (kwh / 24) at July's value for that UTC hour
    path = write(TINY.replace("carbon: {", "carbon: {profile: us-east-1, "))
    code, _, err = cli("run", path, "--reps", "2", "--workers", "1", "--out", tmp_path / "o")
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "summary.json").read_text())["metrics"]
    july = OWN["us-pjm-2024"].table[6]
    assert m["energy_kwh"]["mean"] == pytest.approx(kwh, rel=1e-12)
    assert m["co2_kg"]["mean"] == pytest.approx(kwh / 24 * sum(july) / 1000, rel=1e-12)
    assert m["co2_kg"]["mean"] != pytest.approx(kwh * OWN["us-pjm-2024"].annual_mean / 1000, rel=1e-3)


def test_sim_grid_lists_profiles_and_regions_and_names_an_unknown_one(cli):
    code, out, _ = cli("grid")
    assert code == 0 and all(n in out for n in OWN) and "us-east-1" in out and "eastus" in out
    code, out, _ = cli("grid", "us-east-1", "--json")
    got = json.loads(out)
    assert code == 0 and got["profiles"]["us-pjm-2024"]["gco2_per_kwh"][6] == list(OWN["us-pjm-2024"].table[6])
    code, out, _ = cli("grid", "eastus")
    assert code == 0 and "us-pjm-2024" in out and "Jul 366" in out
    code, _, err = cli("grid", "us-est-1")
    assert code == 2 and "unknown grid profile or region 'us-est-1'; did you mean 'us-east-1'?" in err


def test_an_unknown_profile_in_a_scenario_points_to_sim_grid(cli, write):
    code, _, err = cli("validate", write(TINY.replace("carbon: {", "carbon: {profile: us-east-9, ")))
    assert code == 2 and "carbon.profile: unknown grid profile 'us-east-9'" in err and "sim grid" in err
