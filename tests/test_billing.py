"""Pricing tiers and billing as pure functions, against closed forms."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import pytest

from sim.billing import TIERS, PoolUse, bill_by_month, capacity_hours, over_capacity
from sim.grid import Flat, Profile, intensity
from sim.pricing import ConstantPrice, ExponentialPrice

MONTHS = (0.0, 100.0, 250.0, 400.0)  # month starts, hours since the project start


def test_bill_by_month_splits_a_constant_price_by_overlap():
    spend: dict = defaultdict(float)
    total = bill_by_month(ConstantPrice(2.0), 8, 50.0, 300.0, MONTHS, spend)
    assert total == pytest.approx(8 * 2.0 * 250.0)
    assert dict(spend) == pytest.approx({0: 8 * 2.0 * 50.0, 1: 8 * 2.0 * 150.0, 2: 8 * 2.0 * 50.0})


def test_bill_by_month_past_the_last_month_start_and_with_a_moving_price():
    curve = ExponentialPrice(3.0, 0.3)
    spend: dict = defaultdict(float)
    total = bill_by_month(curve, 4, 380.0, 900.0, MONTHS, spend)
    assert total == pytest.approx(4 * curve.integral(380.0, 900.0), rel=1e-12)
    assert spend[2] == pytest.approx(4 * curve.integral(380.0, 400.0), rel=1e-12)
    assert spend[3] == pytest.approx(4 * curve.integral(400.0, 900.0), rel=1e-12)
    assert sum(spend.values()) == pytest.approx(total, rel=1e-12)


def test_capacity_hours_follow_the_steps_up_to_the_end():
    steps = [(10.0, 16), (30.0, 4)]
    assert capacity_hours(8, steps, 50.0) == 8 * 10 + 16 * 20 + 4 * 20
    assert capacity_hours(8, steps, 20.0) == 8 * 10 + 16 * 10
    assert capacity_hours(0, [(5.0, 2)], 5.0) == 0
    seen = []
    over_capacity(8, steps, 35.0, lambda cap, a, b: seen.append((cap, a, b)) or 0.0)
    assert seen == [(8, 0.0, 10.0), (16, 10.0, 30.0), (4, 30.0, 35.0)]


def use(**kw) -> PoolUse:
    # 300 busy accelerator-hours at 0.7 kW x 0.8; idle ones at 0.7 kW x 0.3; a flat 0.4 kg/kWh grid
    base = {"curve": ConstantPrice(2.0), "capacity0": 16, "steps": [], "commit": None, "busy_gpu_h": 300.0,
            "usage_usd": 600.0, "makespan_h": 120.0, "busy_kwh": 300.0 * 0.7 * 0.8, "idle_kw": 0.7 * 0.3,
            "pue": 1.2, "usd_per_kwh": 0.1, "intensity": Flat(0.4)}
    base.update(kw)
    return PoolUse(**base)


@pytest.mark.parametrize("tier", ["on_demand", "spot"])
def test_usage_tiers_bill_what_the_runs_used_and_nothing_idle(tier):
    spend: dict = defaultdict(float)
    bill = TIERS[tier].bill(use(), MONTHS, spend)
    assert bill.cost_usd == 600.0 and bill.idle_gpu_h == 0.0
    assert bill.kwh == pytest.approx(300.0 * 0.7 * 0.8 * 1.2)
    assert bill.co2_kg == pytest.approx(bill.kwh * 0.4)
    assert not spend  # usage is billed by month as the runs release capacity, not here
    assert TIERS[tier].bills_usage


def test_reserved_bills_the_whole_term_and_idle_draws_idle_power():
    tier = TIERS["reserved"]
    cap0, steps = tier.schedule(16, [], (24.0, 24.0 + 8760.0))
    assert (cap0, steps) == (0, [(24.0, 16), (8784.0, 0)])
    spend: dict = defaultdict(float)
    months = (0.0, 744.0, 1416.0)
    bill = tier.bill(use(capacity0=cap0, steps=steps, commit=(24.0, 8784.0)), months, spend)
    assert bill.cost_usd == pytest.approx(16 * 2.0 * 8760.0)
    idle = 16 * 8760.0 - 300.0
    assert bill.idle_gpu_h == pytest.approx(idle)
    assert bill.kwh == pytest.approx(300.0 * 0.7 * 0.8 * 1.2 + idle * 0.7 * 0.3 * 1.2)
    assert spend[0] == pytest.approx(16 * 2.0 * (744.0 - 24.0))
    assert sum(spend.values()) == pytest.approx(bill.cost_usd)
    assert not tier.bills_usage


def test_owned_bills_capacity_until_the_end_plus_electricity_spread_like_the_capacity():
    tier = TIERS["owned"]
    spend: dict = defaultdict(float)
    steps = [(60.0, 32)]
    bill = tier.bill(use(steps=steps), MONTHS, spend)
    cap_h = 16 * 60.0 + 32 * 60.0
    kwh = 300.0 * 0.7 * 0.8 * 1.2 + (cap_h - 300.0) * 0.7 * 0.3 * 1.2
    assert bill.kwh == pytest.approx(kwh)
    assert bill.co2_kg == pytest.approx(kwh * 0.4)
    assert bill.idle_gpu_h == pytest.approx(cap_h - 300.0)
    assert bill.cost_usd == pytest.approx(2.0 * cap_h + kwh * 0.1)
    # month 0 holds hours 0..100: 16 x 60 + 32 x 40 accelerator-hours; month 1 the other 32 x 20
    share0 = (16 * 60.0 + 32 * 40.0) / cap_h
    assert spend[0] == pytest.approx(bill.cost_usd * share0)
    assert spend[1] == pytest.approx(bill.cost_usd * (1 - share0))


def test_tier_keys_and_rules():
    assert TIERS["spot"].keys == ("preemption",)
    assert TIERS["reserved"].catalog_tier_of(type("P", (), {"term": 3 * 8760.0})()) == "reserved_3y"
    assert TIERS["reserved"].catalog_tier_of(type("P", (), {"term": 2 * 8760.0})()).startswith("no ")
    assert TIERS["on_demand"].catalog_tier_of(None) == "on_demand"
    p = type("P", (), {"term": None, "commitment_start": date(2026, 2, 1)})()
    assert TIERS["reserved"].commitment(p, date(2026, 1, 1)) == (31 * 24.0, 31 * 24.0 + 8760.0)
    assert TIERS["on_demand"].commitment(p, date(2026, 1, 1)) is None


def test_a_varying_grid_weighs_idle_owned_capacity_by_the_intensity_when_it_is_idle():
    # a grid at 100 g/kWh from 00:00 to 12:00 and 300 g/kWh from 12:00 to 24:00; 16 owned accelerators
    # for 24 h, busy 8 of them from 0 to 12 h (96 accelerator-hours, at 0.1 kg/kWh)
    prof = Profile.of("two", table=[[100.0] * 12 + [300.0] * 12] * 12)
    grid = intensity(prof, date(2026, 1, 1))
    assert grid.integral(0.0, 24.0) == pytest.approx(12 * 0.1 + 12 * 0.3)
    assert grid.integral(11.5, 12.5) == pytest.approx(0.5 * 0.1 + 0.5 * 0.3)
    busy_ih = 8 * grid.integral(0.0, 12.0)
    u = use(busy_gpu_h=96.0, makespan_h=24.0, busy_kwh=96.0 * 0.56, busy_ih=busy_ih,
            busy_co2_kg=busy_ih * 0.56, intensity=grid, pue=1.0)
    bill = TIERS["owned"].bill(u, MONTHS, defaultdict(float))
    idle_ih = 16 * (12 * 0.1 + 12 * 0.3) - busy_ih  # 8 idle x 12 h x 0.1 + 16 idle x 12 h x 0.3
    assert idle_ih == pytest.approx(8 * 12 * 0.1 + 16 * 12 * 0.3)
    assert bill.co2_kg == pytest.approx(96.0 * 0.56 * 0.1 + idle_ih * 0.21)
    assert bill.kwh == pytest.approx(96.0 * 0.56 + (16 * 24 - 96) * 0.21)
