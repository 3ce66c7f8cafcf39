"""The deterministic estimate against hand calculations, through the CLI and the library."""

import json
from datetime import date

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.deterministic import estimate
from sim.loader import load
from tests.conftest import MINIMAL
from tests.test_engine_properties import run, run_fixed, scenarios


def run_json(cli, *args):
    code, out, err = cli("estimate", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_json_shape_matches_the_documented_keys(cli, write):
    est = run_json(cli, write(MINIMAL))
    assert set(est) >= {"workloads", "total"}
    w = est["workloads"]["train"]
    assert {"runs", "flop_per_run", "gpu_hours_per_run", "hours_per_run", "cost_usd_per_run", "cost_usd",
            "energy_kwh", "co2_kg"} <= set(w)
    assert set(est["total"]) == {"cost_usd", "usage_usd", "commitment_usd", "gpu_hours", "energy_kwh", "co2_kg",
                                 "project_days"}
    assert est["commitments"] == {}  # on-demand only: the floor is the usage


def test_minimal_by_hand(cli, write):
    # 6 x 1e9 x 20e9 = 1.2e20 FLOP; 8 H100 x 989e12 x 0.4 = 3.1648e15 FLOP/s
    # -> 37,917.1 s = 10.5325 h; 84.26 GPU-h x $2 = $168.52 per run; 2 runs.
    est = run_json(cli, write(MINIMAL))
    w = est["workloads"]["train"]
    hours = 1.2e20 / (8 * 989e12 * 0.4) / 3600
    assert w["flop_per_run"] == pytest.approx(1.2e20)
    assert w["hours_per_run"] == pytest.approx(hours)
    assert w["gpu_hours_per_run"] == pytest.approx(8 * hours)
    assert w["cost_usd_per_run"] == pytest.approx(8 * hours * 2.0)
    assert w["cost_usd"] == pytest.approx(2 * 8 * hours * 2.0)
    # energy: GPU-h x 700 W x power factor 1.0 x PUE 1.10; CO2 at 480 g/kWh (sim/data/carbon.yaml)
    kwh = 2 * 8 * hours * 0.7 * 1.10
    assert w["energy_kwh"] == pytest.approx(kwh)
    assert w["co2_kg"] == pytest.approx(kwh * 0.480)
    assert est["total"]["cost_usd"] == pytest.approx(w["cost_usd"])


def test_one_liner_from_the_issue(cli):
    est = run_json(cli, "--params", "7B", "--tokens", "2T", "--accelerator", "h100", "--count", "512",
                   "--pricing", "on_demand", "--price", "3.00", "--start", "2026-01-01", "--mfu", "0.4")
    w = est["workloads"]["run"]
    hours = 6 * 7e9 * 2e12 / (512 * 989e12 * 0.4) / 3600  # 115.2 h
    assert w["hours_per_run"] == pytest.approx(hours)
    assert w["cost_usd"] == pytest.approx(512 * hours * 3.00)


def test_one_liner_uses_the_catalog_price_in_force(cli):
    old = run_json(cli, "--gpu-hours", "100", "--accelerator", "v100", "--count", "8", "--provider", "gcp",
                   "--start", "2020-01-01")
    assert old["workloads"]["run"]["price_usd_per_gpu_h"] == pytest.approx(2.48)
    assert old["workloads"]["run"]["cost_usd"] == pytest.approx(248.0)


def test_human_table(cli, write):
    code, out, _ = cli("estimate", write(MINIMAL))
    assert code == 0
    assert "train" in out and "total" in out and "$337.04" in out  # 2 x 84.26 GPU-h x $2


def test_method_and_k(write):
    base = MINIMAL.replace("    mfu: 0.4", "    mfu: 0.4\n    method: {m}")
    flops = {m: estimate(load(write(base.format(m=m)))).workloads[0].flop_per_run
             for m in ("full", "full_recompute", "lora")}
    assert flops == pytest.approx({"full": 1.2e20, "full_recompute": 1.6e20, "lora": 0.8e20})
    k = MINIMAL.replace("    mfu: 0.4", "    mfu: 0.4\n    flop_per_param_token: 7")
    assert estimate(load(write(k))).workloads[0].flop_per_run == pytest.approx(1.4e20)


def test_scaling_per_doubling(write):
    # 8 GPUs is the reference: 16 GPUs is one doubling -> efficiency 0.9 -> time x 1/(2 x 0.9)
    text = MINIMAL.replace("accelerators: 8", "accelerators: 16").replace(
        "    mfu: 0.4", "    mfu: 0.4\n    scaling: {kind: per_doubling, efficiency: 0.9, reference: 8}")
    w = estimate(load(write(text))).workloads[0]
    assert w.hours_per_run == pytest.approx(1.2e20 / (16 * 989e12 * 0.4 * 0.9) / 3600)


def test_gpu_hours_and_hours_per_run(write):
    g = MINIMAL.replace("    params: 1B\n    tokens: 20B\n", "    gpu_hours_per_run: 4 d\n")
    w = estimate(load(write(g))).workloads[0]
    assert (w.gpu_hours_per_run, w.hours_per_run) == pytest.approx((96.0, 12.0))
    h = MINIMAL.replace("    params: 1B\n    tokens: 20B\n", "    hours_per_run: 90 min\n")
    w = estimate(load(write(h))).workloads[0]
    assert (w.gpu_hours_per_run, w.hours_per_run) == pytest.approx((12.0, 1.5))


def test_exponential_price_decline_is_integrated(write):
    # $2 falling 50%/year; a run starting one year in pays $1/h at its start, and the exact
    # integral over its 12 h: 2 x 0.5^(t/8760 h) integrated from 8760 h to 8772 h.
    import math

    text = MINIMAL.replace("    price_usd_per_gpu_h: 2.0", "    price_usd_per_gpu_h: 2.0\n"
                           "    price_curve: {kind: exponential, annual_decline: 0.5}").replace(
        "    params: 1B\n    tokens: 20B\n", "    hours_per_run: 12\n    earliest_start: 2027-01-01\n")
    w = estimate(load(write(text))).workloads[0]
    r = math.log(2) / 8760
    exact = 2.0 * (math.exp(-r * 8760) - math.exp(-r * 8772)) / r
    assert w.price_usd_per_gpu_h == pytest.approx(1.0)
    assert w.cost_usd_per_run == pytest.approx(8 * exact, rel=1e-12)
    assert w.cost_usd_per_run < 8 * 12 * 1.0


def test_early_stop_reduces_effective_runs(write):
    text = MINIMAL.replace("runs: 2", "runs: 100").replace(
        "    mfu: 0.4", "    mfu: 0.4\n    early_stop: {fraction_of_runs: 0.5, at: 0.2}")
    w = estimate(load(write(text))).workloads[0]
    assert w.effective_runs == pytest.approx(100 * (1 - 0.5 * 0.8))
    assert w.cost_usd == pytest.approx(w.cost_usd_per_run * 60)


def test_owned_pool_amortized_plus_energy(write):
    text = MINIMAL.replace("    price_usd_per_gpu_h: 2.0", "    pricing: owned\n    purchase_usd_per_gpu: 35040\n"
                           "    lifetime: 4 y\n    energy_usd_per_kwh: 0.10").replace(
        "    params: 1B\n    tokens: 20B\n", "    gpu_hours_per_run: 100\n")
    w = estimate(load(write(text))).workloads[0]
    # $35,040 over 35,040 h = $1/GPU-h; energy 100 GPU-h x 0.7 kW x PUE 1.1 = 77 kWh x $0.10
    assert w.cost_usd_per_run == pytest.approx(100 * 1.0 + 77 * 0.10)


def test_distribution_inputs_use_their_median(write):
    text = MINIMAL.replace("tokens: 20B", "tokens: {dist: lognormal, p5: 10B, p95: 40B}").replace(
        "runs: 2", "runs: {dist: uniform, min: 1, max: 5}")
    w = estimate(load(write(text))).workloads[0]
    assert w.flop_per_run == pytest.approx(6 * 1e9 * 20e9)  # sqrt(10B x 40B) = 20B
    assert w.runs == 3


def test_first_pool_that_fits_is_used(write):
    text = MINIMAL.replace("pools:\n", "pools:\n  - {name: small, accelerator: a100-80gb, count: 4, "
                           "price_usd_per_gpu_h: 1.0}\n") + "    pools: [small, gpus]\n"
    w = estimate(load(write(text))).workloads[0]
    assert (w.pool, w.accelerator) == ("gpus", "h100")


def test_set_override_changes_result(write):
    p = write(MINIMAL)
    a = estimate(load(p)).total["cost_usd"]
    b = estimate(load(p, sets=["workloads[train].mfu=0.2"])).total["cost_usd"]
    assert b == pytest.approx(2 * a)


def test_catalog_price_date_selection(write):
    text = MINIMAL.replace("    price_usd_per_gpu_h: 2.0", "    provider: gcp").replace(
        "accelerator: h100", "accelerator: v100").replace("start: 2026-01-01", "start: 2020-06-01")
    loaded = load(write(text))
    assert loaded.prices["gpus"].usd_per_gpu_h == pytest.approx(2.48)
    assert estimate(loaded).start == date(2020, 6, 1)


# --- commitments: the estimate is the floor of every run ----------------------------------------
RESERVED = """\
project: {{name: res, start: 2026-01-01}}
pools:
  - {{name: block, accelerator: h100, count: 256, node_size: 8, pricing: reserved, term: 1 y,
     price_usd_per_gpu_h: 3.00{extra}}}
workloads:
  - {{name: train, runs: {runs}, gpu_hours_per_run: 800, accelerators: 8}}
reliability: {{failure_rate_per_gpu_h: 1e-3, restart: 1 h, checkpoint: {{interval: 2 h}}}}
"""
TERM_USD = 256 * 8760 * 3.00  # $6,727,680: the issue's one-year reservation


def test_a_reservation_costs_its_term_in_the_estimate_and_the_run_whatever_the_runs_do(cli, write, tmp_path):
    path = write(RESERVED.format(extra="", runs=3))
    est = run_json(cli, path)
    assert est["total"]["cost_usd"] == pytest.approx(TERM_USD, rel=1e-12)
    assert est["total"]["commitment_usd"] == pytest.approx(TERM_USD, rel=1e-12)
    assert est["total"]["usage_usd"] == 0.0
    c = est["commitments"]["block"]
    assert (c["start"], c["end"], c["billed_hours"], c["sunk_hours"]) == ("2026-01-01", "2027-01-01", 8760.0, 0.0)
    assert c["busy_gpu_hours"] + c["idle_gpu_hours"] == pytest.approx(256 * 8760)
    code, out, err = cli("run", path, "--reps", "3", "--out", tmp_path / "o", "--workers", "1")
    assert code == 0, err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["metrics"]["cost_usd"]["min"] == s["metrics"]["cost_usd"]["max"] == pytest.approx(TERM_USD, rel=1e-9)
    assert s["metrics"]["failures"]["mean"] > 0  # the runs were interrupted, the bill did not move
    assert s["spend_period"] == "month" and len(s["spend_by_period"]) == 12  # a year: by month
    assert "$6.73M (usage $0.00 + commitments $6.73M)" in out and "The simulated mean is +0.0% from it" in out
    text = cli("estimate", path)[1]
    assert "commitments, billed whatever the runs do:" in text and "floor (usage + commitments): $6.73M" in text


def test_a_term_begun_before_the_project_is_billed_from_the_project_start_in_both(cli, write, tmp_path):
    # Was a bug: the engine billed the whole term, and booked the 184 days before the start into the
    # last month of the horizon (2075-12). The part before the start is sunk, as in a re-forecast.
    path = write(RESERVED.format(extra=", commitment_start: 2025-07-01", runs=1))
    left = 256 * (8760 - 184 * 24) * 3.00
    est = run_json(cli, path)
    assert est["total"]["cost_usd"] == pytest.approx(left, rel=1e-12)
    assert est["commitments"]["block"]["sunk_hours"] == 184 * 24
    code, _, err = cli("run", path, "--reps", "2", "--out", tmp_path / "o", "--workers", "1")
    assert code == 0, err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["metrics"]["cost_usd"]["mean"] == pytest.approx(left, rel=1e-9)
    months = [m["month"] for m in s["spend_by_month"]]
    assert months == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    assert sum(m["mean"] for m in s["spend_by_month"]) == pytest.approx(left, rel=1e-9)
    assert "the 184.0 d of the term before 2026-01-01 are sunk" in cli("estimate", path)[1]


OWNED = """\
project: {name: own, start: 2026-01-01}
pools:
  - {name: cluster, accelerator: h100, count: 64, node_size: 8, pricing: owned, purchase_usd_per_gpu: 35040,
     lifetime: 4 y, energy_usd_per_kwh: 0.10, pue: 1.25}
  - {name: cloud, accelerator: h100, count: 16, node_size: 8, price_usd_per_gpu_h: 2.0}
workloads:
  - {name: big, runs: 1, hours_per_run: 100, accelerators: 64}
  - {name: small, runs: 2, hours_per_run: 10, accelerators: 16, pools: [cloud], after: [big]}
reliability: {model: none}
carbon: {power_factor: 0.8, idle_power_factor: 0.25}
"""


def test_owned_capital_and_idle_electricity_over_the_project_match_the_engine(cli, write, tmp_path):
    # The 64 owned GPUs are held for the whole project: 100 h busy, then 20 h idle while the two
    # small runs go one after the other on the cloud pool (16 GPUs: one at a time).
    path = write(OWNED)
    capital = 64 * 120 * 35040 / 35040  # purchase / lifetime = $1 per GPU-hour
    kwh = (64 * 100 * 0.8 + 64 * 20 * 0.25) * 0.7 * 1.25
    usage = 2 * 16 * 10 * 2.0
    est = run_json(cli, path)
    t = est["total"]
    assert t["project_days"] * 24 == pytest.approx(120)
    assert t["commitment_usd"] == pytest.approx(capital + kwh * 0.10, rel=1e-12)
    assert est["commitments"]["cluster"]["electricity_usd"] == pytest.approx(kwh * 0.10, rel=1e-12)
    assert t["usage_usd"] == pytest.approx(usage, rel=1e-12)
    code, _, err = cli("run", path, "--reps", "1", "--out", tmp_path / "o", "--workers", "1")
    assert code == 0, err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["metrics"]["cost_usd"]["mean"] == pytest.approx(t["cost_usd"], rel=1e-12)
    assert s["metrics"]["energy_kwh"]["mean"] == pytest.approx(t["energy_kwh"], rel=1e-12)


def test_the_python_api_gives_usage_and_commitments(write):
    import sim

    df = sim.estimate(write(OWNED))
    t = df.attrs["total"]
    assert t["cost_usd"] == pytest.approx(t["usage_usd"] + t["commitment_usd"])
    [c] = df.attrs["commitments"]
    assert (c["pool"], c["pricing"], c["accelerators"]) == ("cluster", "owned", 64)
    assert c["cost_usd"] == pytest.approx(t["commitment_usd"])


def test_hot_spares_are_billed_with_the_reservation_in_both_and_for_the_project_on_demand(cli, write, tmp_path):
    # 2 spare nodes of 8 held beside a 256-GPU reservation: the term bills 272 accelerators
    path = write(RESERVED.format(extra=", spares: 2", runs=3))
    est = run_json(cli, path)
    assert est["total"]["commitment_usd"] == pytest.approx(272 * 8760 * 3.00, rel=1e-12)
    code, _out, err = cli("run", path, "--reps", "2", "--out", tmp_path / "r", "--workers", "1")
    assert code == 0, err
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["metrics"]["cost_usd"]["max"] == pytest.approx(272 * 8760 * 3.00, rel=1e-9)
    # on demand: the runs' hours plus one spare node held from the start to the end of the project
    od = write("project: {name: od, start: 2026-01-01}\n"
               "pools: [{name: gpus, accelerator: h100, count: 16, node_size: 8, price_usd_per_gpu_h: 2.0,"
               " spares: 1}]\n"
               "workloads: [{name: train, runs: 1, hours_per_run: 10 h, accelerators: 8}]\n", name="od.yaml")
    code, _out, err = cli("run", od, "--reps", "1", "--out", tmp_path / "o", "--workers", "1", "--no-priors")
    assert code == 0, err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    hours = s["metrics"]["makespan_days"]["mean"] * 24
    assert hours == pytest.approx(10.0)
    assert s["metrics"]["cost_usd"]["mean"] == pytest.approx(8 * 10 * 2.0 + 8 * hours * 2.0, rel=1e-9)
    assert s["metrics"]["idle_gpu_hours"]["mean"] == pytest.approx(8 * hours, rel=1e-9)


# --- the floor is a lower bound of a simulation with nothing random ------------------------------
SPARES_OD = """\
project: {name: od, start: 2026-01-01}
pools: [{name: gpus, accelerator: h100, count: 16, node_size: 8, price_usd_per_gpu_h: 2.0, spares: 1}]
workloads: [{name: train, runs: 3, hours_per_run: 10 h, accelerators: 8}]
reliability: {model: none}
"""


def test_hot_spares_on_demand_are_billed_over_the_floor_length_in_the_estimate_as_in_the_run(cli, write):
    # 3 runs of 8 GPUs on 16: two at once, then one: the floor length is max(10, 3 x 10 / 2) = 15 h
    # (the simulation: 20 h, whole runs). One spare node (8 GPUs) is held from the start to the end.
    path = write(SPARES_OD)
    est = run_json(cli, path)
    t = est["total"]
    assert t["project_days"] * 24 == pytest.approx(15.0)
    assert t["usage_usd"] == pytest.approx(3 * 8 * 10 * 2.0)
    c = est["commitments"]["gpus"]
    assert (c["pricing"], c["accelerators"], c["billed_hours"], c["busy_gpu_hours"]) == ("on_demand", 8, 15.0, 0.0)
    assert c["cost_usd"] == pytest.approx(8 * 15.0 * 2.0) == t["commitment_usd"]
    assert c["idle_gpu_hours"] == pytest.approx(8 * 15.0)
    assert t["cost_usd"] == pytest.approx(480.0 + 240.0)
    assert "gpus: 8 x h100 hot spares (on_demand), 2026-01-01 to 2026-01-01 (15.0 h)" in cli("estimate", path)[1]
    s = run_fixed(yaml.safe_load(SPARES_OD))[2].summary()  # the engine, nothing random
    hours = s["makespan_days"] * 24
    assert hours == pytest.approx(20.0)
    assert s["cost_usd"] == pytest.approx(480.0 + 8 * hours * 2.0, rel=1e-9)
    assert s["cost_usd"] >= t["cost_usd"]
    # the spares draw idle power: the same per spare GPU-hour in both (the runs' energy is the same)
    busy_kwh = t["energy_kwh"] - c["energy_kwh"]
    assert c["energy_kwh"] > 0
    assert c["energy_kwh"] / (8 * 15.0) == pytest.approx((s["energy_kwh"] - busy_kwh) / (8 * hours), rel=1e-9)


OVERFLOW = """\
project: {{name: overflow, start: 2026-01-01}}
pools:
  - {{name: first, accelerator: h100, count: 8, node_size: 8, price_usd_per_gpu_h: 4.0}}
  - {{name: cheap, accelerator: h100, count: 64, node_size: 8, {cheap}}}
workloads: [{{name: train, runs: 4, hours_per_run: 10 h, accelerators: 8, pools: [first, cheap]}}]
reliability: {{model: none}}
"""


@pytest.mark.parametrize("cheap, floor", [
    ("price_usd_per_gpu_h: 1.0", 4 * 80 * 1.0),  # the runs' cheapest pool
    ("pricing: reserved, term: 1 y, price_usd_per_gpu_h: 1.0", 64 * 8760 * 1.0),  # the term, nothing more
])
def test_runs_that_overflow_to_a_cheaper_pool_never_cost_less_than_the_floor(cli, write, cheap, floor):
    # Was not a floor: the estimate priced all 4 runs on the first pool that fits ($1,280); the
    # simulation runs one there and three on the cheaper pool at once ($320 + $240 = $560).
    path = write(OVERFLOW.format(cheap=cheap))
    est = run_json(cli, path)
    assert est["total"]["cost_usd"] == pytest.approx(floor, rel=1e-12)
    assert est["workloads"]["train"]["pool"] == "cheap"
    assert est["total"]["project_days"] * 24 == pytest.approx(10.0)  # 9 runs fit at once
    cost = run_fixed(yaml.safe_load(OVERFLOW.format(cheap=cheap)))[2].summary()["cost_usd"]
    assert cost == pytest.approx(80 * 4.0 + floor * (3 / 4 if "reserved" not in cheap else 1.0), rel=1e-9)
    assert cost >= est["total"]["cost_usd"]


def test_the_api_floor_prices_a_run_where_it_adds_least_and_keeps_the_preference_among_equals(write):
    import sim

    df = sim.estimate(write(OVERFLOW.format(cheap="price_usd_per_gpu_h: 1.0")))
    assert list(df["pool"]) == ["cheap"] and df.attrs["total"]["cost_usd"] == pytest.approx(320.0)
    same = sim.estimate(write(OVERFLOW.format(cheap="price_usd_per_gpu_h: 4.0"), name="same.yaml"))
    assert list(same["pool"]) == ["first"]  # equal cost: the first in the workload's list
    spares = sim.estimate(write(SPARES_OD, name="spares.yaml"))
    [c] = spares.attrs["commitments"]
    assert (c["pool"], c["pricing"], c["cost_usd"]) == ("gpus", "on_demand", pytest.approx(240.0))


def _nothing_random(raw: dict, spares: list[int]) -> dict:
    """The generated scenario without spot preemption (its only random part here), with hot spares."""
    for p, s in zip(raw["pools"], spares, strict=False):
        p.pop("preemption", None)
        p.pop("fallback", None)
        p["spares"] = s
    return raw


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=scenarios(randomness=False), spares=st.lists(st.integers(0, 2), min_size=3, max_size=3),
       seed=st.integers(0, 2**16))
def test_nothing_random_any_tiers_and_prices_the_simulation_costs_at_least_the_floor(raw, spares, seed):
    # Several pools of every tier (on demand, spot, reserved for a short or late term, owned), other
    # prices and accelerators, capacity that grows or shrinks (runs evicted), `after`,
    # `max_concurrent`, early stops, hot spares; constant prices. The floor prices each run where it
    # adds least, holds commitments and spares over a length no simulation can beat: the simulation
    # never costs less.
    loaded, _, rep = run(_nothing_random(raw, spares), seed)
    s = rep.summary()
    est = estimate(loaded)
    assert s["cost_usd"] >= est.total["cost_usd"] * (1 - 1e-9) - 1e-9
    assert s["makespan_days"] >= est.total["project_days"] * (1 - 1e-9)


def test_a_falling_price_is_the_documented_exception_a_run_that_waits_pays_less_than_its_floor(write):
    # Two half-year runs one after the other on 8 GPUs at $2 falling 50% a year. The estimate prices
    # both from their earliest start (t = 0); the simulation runs the second from t = 4,380 h, when
    # the price has fallen: it costs less than the estimate. README, 'sim estimate', says so.
    import math

    raw = {"project": {"name": "fall", "start": "2026-01-01"},
           "pools": [{"name": "p", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0,
                      "price_curve": {"kind": "exponential", "annual_decline": 0.5}}],
           "workloads": [{"name": "w", "runs": 2, "hours_per_run": 4380, "accelerators": 8}],
           "reliability": {"model": "none"}}
    r = math.log(2) / 8760

    def paid(a, b):  # 8 GPUs x the integral of 2 x 0.5^(t / 8760 h) from a to b
        return 8 * 2.0 * (math.exp(-r * a) - math.exp(-r * b)) / r

    loaded, _, rep = run_fixed(raw)
    est = estimate(loaded).total["cost_usd"]
    assert est == pytest.approx(2 * paid(0, 4380), rel=1e-12)
    assert rep.summary()["cost_usd"] == pytest.approx(paid(0, 4380) + paid(4380, 8760), rel=1e-9)
    assert rep.summary()["cost_usd"] < est


def test_a_run_under_way_has_only_its_remainder_in_the_floor_length(write):
    # Was not a floor: a one-run workload half done (a re-forecast's running run, done_at_start 0.5)
    # had the whole run's 10 h as the floor length, so the on-demand spare held over it cost 8 x 10 x $2
    # while the simulation, with 5 h left, holds it 5 h: floor $240 above the simulation's $160.
    raw = yaml.safe_load(SPARES_OD)
    raw["workloads"][0].update(runs=1, done_at_start=0.5)
    est = estimate(load(write(yaml.safe_dump(raw))))
    assert est.total["project_days"] * 24 == pytest.approx(5.0)
    assert est.total["cost_usd"] == pytest.approx(8 * 5 * 2.0 + 8 * 5 * 2.0)
    s = run_fixed(raw)[2].summary()
    assert s["makespan_days"] * 24 == pytest.approx(5.0)
    assert s["cost_usd"] >= est.total["cost_usd"] - 1e-9
