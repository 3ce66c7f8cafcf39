"""Energy as measured: power per accelerator, pool and workload, host power, accelerators that
inherit from the scenario's own, grid carbon intensity that varies over the calendar (shipped
profiles and a user's CSV) and the choice of a start date for the lowest expected CO2."""

from __future__ import annotations

import json
from datetime import date

import pytest

from sim import grid
from sim.catalog import builtin
from sim.engine import simulate
from sim.loader import load
from sim.plan import build_plan
from sim.schema import nominal_scenario

TINY = """\
project: {name: e, start: 2026-01-01}
pools:
  - {name: p, accelerator: h100, count: 8, price_usd_per_gpu_h: 2.0}
workloads:
  - {name: w, hours_per_run: 10, accelerators: 8, runs: 2}
reliability: {model: none}
carbon: {pue: 1.0, power_factor: 1.0}
"""


def csv_text(rows: list[tuple], header: str = "hour,gco2_per_kwh") -> str:
    return header + "\n" + "".join(",".join(str(x) for x in r) + "\n" for r in rows)


def estimate(cli, path, *args) -> dict:
    code, out, err = cli("estimate", path, "--json", *args)
    assert code == 0, err
    return json.loads(out)


# --------------------------------------------------------------------------------------------
# grid intensity over the calendar


def test_intensity_integral_follows_months_and_hours_across_a_month_end_and_a_leap_day():
    table = [[float(100 * m + h) for h in range(24)] for m in range(1, 13)]
    prof = grid.Profile.of("t", table=table)
    it = grid.Intensity(prof, date(2024, 2, 28))  # 2024 is a leap year: Feb 28, Feb 29, then March
    hours = [(2, h) for h in range(24)] * 2 + [(3, h) for h in range(24)]
    want = sum(100 * m + h for m, h in hours) / 1000.0
    assert it.integral(0.0, 72.0) == pytest.approx(want, rel=1e-12)
    assert it.integral(47.5, 48.5) == pytest.approx((0.5 * 223 + 0.5 * 300) / 1000.0, rel=1e-12)
    far = 24 * 366 * 3 + 5.25  # beyond the first table: it grows
    assert it.integral(far, far + 1.0) > 0.0


def test_monthly_and_hourly_profiles_combine_by_shape():
    p = grid.Profile.of("mh", monthly=[100.0] * 6 + [200.0] * 6, hourly=[1.0] * 12 + [3.0] * 12)
    assert p.table[0][0] == pytest.approx(50.0) and p.table[0][23] == pytest.approx(150.0)
    assert p.table[11][12] == pytest.approx(300.0)
    assert sum(p.table[7]) / 24 == pytest.approx(200.0)  # each month keeps its mean


def test_csv_rows_from_a_spreadsheet_with_a_byte_order_mark():
    rows = [["\ufeffHour", "GCO2_per_kWh"], *([str(h), "7"] for h in range(24))]
    prof, bad = grid.from_csv_rows("x", rows)
    assert bad is None and prof.table[5][3] == 7.0


def test_the_shipped_profile_is_sourced_and_its_annual_mean_is_the_files():
    gb = builtin().profiles["gb-2024"]
    assert "Electricity Maps" in gb.source
    assert gb.mean() == pytest.approx(111.5, abs=0.6)  # the rounded table against the hourly file's mean


# --------------------------------------------------------------------------------------------
# CO2 weighted by the intensity when the energy is used


def test_a_two_level_profile_gives_the_hand_computed_co2(cli, write, tmp_path):
    # 100 g/kWh from 00:00 to 05:00, 300 g/kWh after; two 10 h runs of 8 H100 (0.7 kW) one after the other:
    # run 1 holds hours 0-10: 5.6 kW x (5 h x 0.1 + 5 h x 0.3) kg/kWh = 11.2 kg; run 2 hours 10-20: 5.6 x 10 x 0.3
    (tmp_path / "two.csv").write_text(csv_text([(h, 100 if h < 5 else 300) for h in range(24)]))
    path = write(TINY.replace("carbon: {", "carbon: {profile: two.csv, "))
    code, _, err = cli("run", path, "--reps", "2", "--workers", "1", "--out", tmp_path / "o")
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "summary.json").read_text())["metrics"]
    assert m["energy_kwh"]["mean"] == pytest.approx(2 * 5.6 * 10)
    assert m["co2_kg"]["mean"] == pytest.approx(11.2 + 16.8, rel=1e-12)
    est = estimate(cli, path)  # the estimate weighs each run by the intensity over the first run's hours
    assert est["total"]["co2_kg"] == pytest.approx(2 * 5.6 * (5 * 0.1 + 5 * 0.3), rel=1e-12)


def _summary(path, sets=()) -> dict:
    loaded = load(path, sets=list(sets))
    plan = build_plan(nominal_scenario(loaded.scenario), loaded.catalog)
    return simulate(plan, 7, 3).summary()


def test_a_constant_profile_reproduces_the_flat_result(write, tmp_path):
    # owned and reserved pools (idle energy) and failures (many segments), once on a flat 480 g/kWh grid and
    # once on a CSV profile of 480 everywhere: the same kWh, the same CO2 to rounding
    (tmp_path / "flat.csv").write_text(csv_text([(m, h, 480) for m in range(1, 13) for h in range(24)],
                                                "month,hour,gco2_per_kwh"))
    text = """\
    project: {name: f, start: 2026-03-30}
    pools:
      - {name: own, accelerator: a100-80gb, count: 16, pricing: owned, purchase_usd_per_gpu: 10000,
         energy_usd_per_kwh: 0.1}
      - {name: res, accelerator: h100, count: 8, pricing: reserved, term: 300 h, price_usd_per_gpu_h: 2.0}
    workloads:
      - {name: w, hours_per_run: 30, accelerators: 8, runs: 6}
    reliability: {failure_rate_per_gpu_h: 0.002, restart: 20 min, checkpoint: {interval: 2 h}}
    carbon: {grid_gco2_per_kwh: 480, idle_power_factor: 0.3}
    """
    flat = _summary(write(text))
    prof = _summary(write(text.replace("grid_gco2_per_kwh: 480", "profile: flat.csv")))
    assert flat["failures"] > 0 and flat["idle_gpu_hours"] > 0
    assert prof["energy_kwh"] == flat["energy_kwh"]
    assert prof["co2_kg"] == pytest.approx(flat["co2_kg"], rel=1e-12)
    assert flat["co2_kg"] == pytest.approx(flat["energy_kwh"] * 0.48, rel=1e-12)


# --------------------------------------------------------------------------------------------
# power: measured, per pool and workload, hosts; accelerators that inherit


def test_power_precedence_and_host_power_through_the_cli(cli, write):
    base = TINY.replace("runs: 2}", "runs: 1}")
    kwh = lambda text, *a: estimate(cli, write(text), *a)["total"]["energy_kwh"]  # noqa: E731
    assert kwh(base) == pytest.approx(80 * 0.7)  # TDP x power_factor 1
    measured = base.replace("pools:", "accelerators:\n  h100-lab: {base: h100, power_w: 500}\npools:").replace(
        "accelerator: h100", "accelerator: h100-lab")
    assert kwh(measured) == pytest.approx(80 * 0.5)  # the measured draw wins over carbon.power_factor
    pool_pf = measured.replace("count: 8,", "count: 8, power_factor: 0.6,")
    assert kwh(pool_pf) == pytest.approx(80 * 0.7 * 0.6)  # a pool's factor wins over power_w
    wl_pf = pool_pf.replace("runs: 1}", "runs: 1, power_factor: 0.9}")
    assert kwh(wl_pf) == pytest.approx(80 * 0.7 * 0.9)  # a workload's factor wins over the pool's
    hosts = base.replace("count: 8,", "count: 8, host_w_per_node: 2000,")
    assert kwh(hosts) == pytest.approx(80 * (0.7 + 2.0 / 8))  # one node of 8 shares 2 kW of host
    assert kwh(base, "--set", "carbon.host_power=catalog") == pytest.approx(80 * (0.7 + 0.575))  # DGX H100


def test_accelerators_inherit_from_the_scenarios_own_and_a_cycle_exits_2(cli, write):
    chain = "accelerators:\n  lab: {base: h100, power_w: 520}\n  lab-slow: {base: lab, peak_flop_per_s: 500T}\n"
    text = TINY.replace("pools:", chain + "pools:").replace("accelerator: h100", "accelerator: lab-slow")
    est = estimate(cli, write(text))
    assert est["total"]["energy_kwh"] == pytest.approx(2 * 80 * 0.52)  # power_w from `lab`, TDP from h100
    cyc = TINY.replace("pools:", "accelerators:\n  a: {base: b}\n  b: {base: c}\n  c: {base: a}\npools:")
    code, _, err = cli("validate", write(cyc))
    assert code == 2
    assert "accelerators.c.base" in err and "cycle (a -> b -> c -> a)" in err and "Traceback" not in err
    code, _, err = cli("validate", write(TINY.replace("pools:", "accelerators:\n  a: {base: nope}\npools:")))
    assert code == 2 and "accelerators.a.base: unknown accelerator 'nope'" in err


def test_older_accelerators_are_in_the_catalog_with_sources():
    acc = builtin().accelerators
    for key, tflops, watts in [("p100", 21.2, 300), ("v100-16gb", 125, 300), ("v100-pcie", 112, 250),
                               ("t4", 65, 70), ("l4", 121, 72), ("a10g", 70, 300), ("mi250x", 383, 560),
                               ("mi300x", 1307.4, 750), ("gaudi2", 432, 600), ("gaudi3", 1835, 900)]:
        a = acc[key]
        assert (a.peak_flop_per_s, a.tdp_w) == (tflops * 1e12, watts), key
        assert a.source and a.date and "check" in a.note.lower(), key


# --------------------------------------------------------------------------------------------
# bad grid profiles: the file, the row, the column, exit 2


@pytest.mark.parametrize("body, where", [
    (csv_text([(0, 100), (1, "abc")]), ":3: row 3, column gco2_per_kwh: expected a number >= 0"),
    ("hour,g\n0,1\n", ":1: row 1, column g: expected the columns month and/or hour, and gco2_per_kwh"),
    (csv_text([(0, 100), (24, 100)]), ":3: row 3, column hour: expected a whole number from 0 to 23, got '24'"),
    (csv_text([(h, 100) for h in range(23)]), "column hour: 1 of the 24 rows are missing, the first: hour 23"),
    (csv_text([(0, 100), (0, 90)]), ":3: row 3, column hour: hour 0 given twice"),
    (csv_text([(0, 1, 2)]), ":2: row 2: expected 2 values, got 3"),
])
def test_bad_csv_profile_names_the_file_row_and_column(cli, write, tmp_path, body, where):
    (tmp_path / "g.csv").write_text(body)
    code, _, err = cli("validate", write(TINY.replace("carbon: {", "carbon: {profile: g.csv, ")))
    assert code == 2 and "Traceback" not in err
    assert f"{tmp_path / 'g.csv'}{where}" in err if where.startswith(":") else where in err
    assert "carbon.profile" in err


def test_profile_names_a_missing_file_or_an_unknown_profile(cli, write):
    code, _, err = cli("validate", write(TINY.replace("carbon: {", "carbon: {profile: nowhere.csv, ")))
    assert code == 2 and "carbon.profile: grid profile nowhere.csv: no such file" in err
    path = write(TINY.replace("count: 8,", "count: 8, carbon_profile: gb-2042,"))
    code, _, err = cli("validate", path)
    assert code == 2 and "pools[0].carbon_profile: unknown grid profile 'gb-2042'; did you mean 'gb-2024'?" in err
    both = TINY.replace("carbon: {", "carbon: {profile: gb-2024, grid_gco2_per_kwh: 9, ")
    code, _, err = cli("validate", write(both))
    assert code == 2 and "give grid_gco2_per_kwh or profile, not both" in err


# --------------------------------------------------------------------------------------------
# choosing a start date for the lowest expected CO2


def test_compare_starts_names_the_start_with_the_lowest_co2(cli, write, tmp_path):
    # a fixed 100 h job on the GB 2024 profile: January's grid is the dirtiest month, August the cleanest
    text = TINY.replace("hours_per_run: 10", "hours_per_run: 100").replace("carbon: {", "carbon: {profile: gb-2024, ")
    out = tmp_path / "c"
    code, printed, err = cli("compare", write(text), "--starts", "2026-01-05,2026-08-03", "--reps", "2",
                             "--workers", "1", "--out", out)
    assert code == 0, err
    assert "lowest expected CO2: start 2026-08-03 (project.start)" in printed
    report = json.loads((out / "compare.json").read_text())
    sbs = report["side_by_side"]
    jan, aug = sbs["start 2026-01-05"]["co2_kg"]["mean"], sbs["start 2026-08-03"]["co2_kg"]["mean"]
    assert aug < 0.6 * jan  # August's mean 74 g/kWh against January's 152
    assert report["starts"]["best"]["co2_kg"]["option"] == "start 2026-08-03"
    assert sbs["start 2026-01-05"]["cost_usd"]["mean"] == sbs["start 2026-08-03"]["cost_usd"]["mean"]
    code, _, err = cli("compare", write(text), "--starts", "2026-13-01", "--out", tmp_path / "x")
    assert code == 2 and "--starts" in err and "not a date" in err


def test_a_pools_monthly_profile_overrides_the_scenarios_grid(cli, write, tmp_path):
    (tmp_path / "m.csv").write_text(csv_text([(m, 200 if m == 1 else 20) for m in range(1, 13)], "month,gco2_per_kwh"))
    text = TINY.replace("count: 8,", "count: 8, carbon_profile: m.csv,")
    text = text.replace("carbon: {", "carbon: {grid_gco2_per_kwh: 900, ")
    est = estimate(cli, write(text))["total"]
    assert est["co2_kg"] == pytest.approx(est["energy_kwh"] * 0.2, rel=1e-12)  # January, not the flat 900
    feb = estimate(cli, write(text), "--set", "project.start=2026-02-01")["total"]
    assert feb["co2_kg"] == pytest.approx(feb["energy_kwh"] * 0.02, rel=1e-12)


def test_an_owned_pools_commitment_on_a_varying_grid_matches_the_engine(cli, write):
    # owned capacity half idle for one 100 h run, hosts drawing power, on the GB 2024 profile: the
    # estimate bills the commitment with the engine's tier code, so kWh, CO2 and cost agree exactly
    text = """\
    project: {name: o, start: 2026-01-30}
    pools:
      - {name: own, accelerator: h100, count: 16, node_size: 8, pricing: owned, purchase_usd_per_gpu: 30000,
         energy_usd_per_kwh: 0.1, host_w_per_node: 2000}
    workloads:
      - {name: w, hours_per_run: 100, accelerators: 8, runs: 1}
    reliability: {model: none}
    carbon: {profile: gb-2024, idle_power_factor: 0.3, pue: 1.2}
    """
    path = write(text)
    est = estimate(cli, path)
    c, t = est["commitments"]["own"], est["total"]
    assert c["idle_gpu_hours"] == pytest.approx(800) and t["project_days"] * 24 == pytest.approx(100)
    ran = _summary(path)
    for key in ("energy_kwh", "co2_kg", "cost_usd"):
        assert t[key] == pytest.approx(ran[key], rel=1e-9), key
    assert t["co2_kg"] != pytest.approx(t["energy_kwh"] * builtin().profiles["gb-2024"].mean(), rel=1e-3)
