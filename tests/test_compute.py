"""Tests for sim.compute: training FLOP, throughput, time, scaling, energy and CO2.

Every expected number is worked out by hand in the comment next to it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.compute import (
    co2_kg,
    effective_flop_per_s,
    energy_kwh,
    hours_for_flop,
    scaling_efficiency,
    training_flop,
)


# --------------------------------------------------------------------------- training FLOP
def test_training_flop_7b_2t():
    # 6 x 7e9 x 2e12 = 84e21 = 8.4e22
    assert training_flop(7e9, 2e12) == pytest.approx(8.4e22, rel=1e-15)


def test_training_flop_k():
    # activation recomputation: 8 x 1e9 x 1e11 = 8e20; LoRA-style: 4 x 1e9 x 1e11 = 4e20
    assert training_flop(1e9, 1e11, k=8) == pytest.approx(8e20, rel=1e-15)
    assert training_flop(1e9, 1e11, k=4.0) == pytest.approx(4e20, rel=1e-15)


def test_training_flop_broadcasts():
    params = np.array([1e9, 7e9, 70e9])
    out = training_flop(params, 1e12)
    # 6e21, 4.2e22, 4.2e23
    assert out.shape == (3,)
    assert out == pytest.approx([6e21, 4.2e22, 4.2e23], rel=1e-15)
    grid = training_flop(params[:, None], np.array([1e12, 2e12])[None, :])
    assert grid.shape == (3, 2)
    assert grid[2, 1] == pytest.approx(8.4e23, rel=1e-15)  # 6 x 70e9 x 2e12


# --------------------------------------------------------------------------- throughput and time
def test_effective_flop_per_s():
    # 512 x 989e12 x 0.4 = 202547.2e12 = 2.025472e17 FLOP/s; with 0.9 scaling: 1.8229248e17
    assert effective_flop_per_s(512, 989e12, 0.4) == pytest.approx(2.025472e17, rel=1e-15)
    assert effective_flop_per_s(512, 989e12, 0.4, 0.9) == pytest.approx(1.8229248e17, rel=1e-15)


def test_hours_for_flop_7b_on_512_h100():
    # 8.4e22 / 2.025472e17 FLOP/s = 414 718.3 s = 115.1995 h
    assert hours_for_flop(8.4e22, 512, 989e12, 0.4) == pytest.approx(115.1995, rel=1e-6)


def test_hours_for_flop_round_numbers():
    # 3.6e21 FLOP on 100 x 1e15 FLOP/s x 0.5 = 5e16 FLOP/s -> 7.2e4 s = 20 h
    assert hours_for_flop(3.6e21, 100, 1e15, 0.5) == pytest.approx(20.0, rel=1e-15)
    # 80% scaling efficiency: 20 / 0.8 = 25 h
    assert hours_for_flop(3.6e21, 100, 1e15, 0.5, 0.8) == pytest.approx(25.0, rel=1e-15)


def test_hours_for_flop_broadcasts_over_accelerators():
    n = np.array([50, 100, 200])
    # 3.6e21 / (n x 5e14) / 3600 = 40, 20, 10 h
    assert hours_for_flop(3.6e21, n, 1e15, 0.5) == pytest.approx([40.0, 20.0, 10.0], rel=1e-15)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(1e15, 1e26),
    st.integers(1, 100_000),
    st.floats(1e12, 1e16),
    st.floats(0.01, 1.0),
    st.floats(0.1, 1.0),
)
def test_hours_for_flop_inverse_of_throughput(flop, n, peak, mfu, eff):
    h = hours_for_flop(flop, n, peak, mfu, eff)
    # delivering effective FLOP/s for h hours does exactly `flop` of work
    assert effective_flop_per_s(n, peak, mfu, eff) * h * 3600 == pytest.approx(flop, rel=1e-12)
    # doubling the accelerators halves the time (without scaling losses)
    assert hours_for_flop(flop, 2 * n, peak, mfu, eff) == pytest.approx(h / 2, rel=1e-12)


# --------------------------------------------------------------------------- scaling efficiency
def test_scaling_constant_ignores_size():
    assert scaling_efficiency("constant", 0.9, 8) == 0.9
    assert scaling_efficiency("constant", 0.9, 4096) == 0.9


@pytest.mark.parametrize(
    "n, expected",
    [
        (1, 1.0),  # below the reference: no loss
        (8, 1.0),  # at the reference
        (16, 0.9),  # one doubling
        (64, 0.729),  # 3 doublings: 0.9^3
        (1024, 0.9**7),  # 1024/8 = 128 = 2^7 -> 0.4782969
        (24, 0.9**1.5849625007211563),  # log2(3) doublings
    ],
)
def test_scaling_per_doubling(n, expected):
    assert scaling_efficiency("per_doubling", 0.9, n) == pytest.approx(expected, rel=1e-12)


def test_scaling_per_doubling_custom_reference():
    # reference 64: 512 = 64 x 2^3 -> 0.95^3 = 0.857375
    assert scaling_efficiency("per_doubling", 0.95, 512, reference=64) == pytest.approx(0.857375, rel=1e-12)
    assert scaling_efficiency("per_doubling", 0.95, 32, reference=64) == 1.0


def test_scaling_per_doubling_broadcasts():
    out = scaling_efficiency("per_doubling", 0.8, np.array([4, 8, 16, 32, 64]))
    assert out == pytest.approx([1.0, 1.0, 0.8, 0.64, 0.512], rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.5, 1.0), st.integers(0, 20), st.sampled_from([1, 8, 64, 1000]))
def test_scaling_per_doubling_property(eff, k, reference):
    # at reference x 2^k the multiplier is eff^k, and it never exceeds 1
    out = scaling_efficiency("per_doubling", eff, reference * 2**k, reference=reference)
    assert out == pytest.approx(eff**k, rel=1e-12)
    assert out <= 1.0
    # adding accelerators never raises the per-accelerator efficiency
    assert scaling_efficiency("per_doubling", eff, reference * 2**k + 1, reference=reference) <= out


# --------------------------------------------------------------------------- energy and CO2
def test_energy_kwh():
    # 1000 GPU-h x 700 W = 700 kWh; x 0.8 of TDP x PUE 1.2 = 672 kWh
    assert energy_kwh(1000, 700) == pytest.approx(700.0, rel=1e-15)
    assert energy_kwh(1000, 700, power_factor=0.8, pue=1.2) == pytest.approx(672.0, rel=1e-15)


def test_co2_kg():
    # 672 kWh x 400 g/kWh = 268 800 g = 268.8 kg
    assert co2_kg(672.0, 400) == pytest.approx(268.8, rel=1e-15)
    assert co2_kg(0.0, 400) == 0.0


def test_energy_and_co2_broadcast():
    hours = np.array([10.0, 100.0])
    kwh = energy_kwh(hours, np.array([[400.0], [700.0]]))
    # [[4, 40], [7, 70]] kWh
    assert kwh.shape == (2, 2)
    assert kwh == pytest.approx(np.array([[4.0, 40.0], [7.0, 70.0]]), rel=1e-15)
    assert co2_kg(kwh, 500) == pytest.approx(np.array([[2.0, 20.0], [3.5, 35.0]]), rel=1e-15)


def test_end_to_end_7b_run():
    # 7B x 2T: 8.4e22 FLOP on 512 accelerators of 989 TFLOP/s at 40% MFU, 0.9 per doubling from 8
    # 512 = 8 x 2^6 -> efficiency 0.9^6 = 0.531441; time = 115.1995 / 0.531441 = 216.769 h
    flop = training_flop(7e9, 2e12)
    eff = scaling_efficiency("per_doubling", 0.9, 512)
    h = hours_for_flop(flop, 512, 989e12, 0.4, eff)
    assert eff == pytest.approx(0.531441, rel=1e-12)
    assert h == pytest.approx(216.769, rel=1e-5)
    # GPU-hours 512 x 216.769 = 110 986 h; at 700 W, PUE 1.1: 110 986 x 0.7 x 1.1 = 85 459 kWh
    kwh = energy_kwh(512 * h, 700, pue=1.1)
    assert kwh == pytest.approx(85_459, rel=1e-4)
