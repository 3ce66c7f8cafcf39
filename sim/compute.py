"""Deterministic training maths: FLOP, throughput, time, accelerator-hours, energy, CO2.

Pure functions of numbers (numpy arrays work too); no scenario objects, no randomness.
"""

from __future__ import annotations

import math

import numpy as np

SECONDS_PER_HOUR = 3600.0
METHOD_K = {"full": 6.0, "full_recompute": 8.0, "lora": 4.0}  # FLOP per parameter-token by training method


def training_flop(params, tokens, k=6.0):
    """FLOP of one training run: k x parameters x tokens (k = 6 forward+backward, 8 with
    activation recomputation, about 4 for LoRA-style fine-tuning)."""
    return k * params * tokens


def scaling_efficiency(kind: str, efficiency, accelerators, reference=8):
    """Throughput multiplier for a run's size.

    constant: `efficiency` whatever the size;
    per_doubling: 1 up to `reference` accelerators, then x `efficiency` for each doubling beyond.
    """
    if kind == "constant":
        return efficiency
    doublings = np.maximum(0.0, np.log2(np.asarray(accelerators, dtype=float) / reference))
    return efficiency ** doublings


def effective_flop_per_s(accelerators, peak_flop_per_s, mfu, efficiency=1.0):
    """What a run really delivers: accelerators x peak x MFU x scaling efficiency."""
    return accelerators * peak_flop_per_s * mfu * efficiency


def hours_for_flop(flop, accelerators, peak_flop_per_s, mfu, efficiency=1.0):
    """Wall-clock hours to do `flop` of work on `accelerators` without interruptions."""
    return flop / effective_flop_per_s(accelerators, peak_flop_per_s, mfu, efficiency) / SECONDS_PER_HOUR


def energy_kwh(gpu_hours, tdp_w, power_factor=1.0, pue=1.0):
    """Facility energy: accelerator-hours x TDP x share of TDP drawn x PUE."""
    return gpu_hours * tdp_w / 1000.0 * power_factor * pue


def co2_kg(kwh, grid_gco2_per_kwh):
    return kwh * grid_gco2_per_kwh / 1000.0


def early_stopped_runs(fraction: float, runs: int) -> int:
    """How many of a workload's runs are stopped early: fraction x runs, rounded half up (the
    estimate and the engine use the same whole number)."""
    return int(math.floor(fraction * runs + 0.5))


def run_size(w, acc) -> tuple[float | None, float, float]:
    """(FLOP, wall hours, accelerator-hours) of one uninterrupted run of a workload with concrete
    numbers (a schema.Workload) on an accelerator (a catalog.Accelerator)."""
    n = w.accelerators
    eff = scaling_efficiency(
        w.scaling.kind, w.scaling.efficiency, n, getattr(w.scaling, "reference", 8)
    )
    if w.tokens is not None or w.flop_per_run is not None:
        flop = w.flop_per_run if w.flop_per_run is not None else training_flop(w.params, w.tokens, w.k)
        hours = float(hours_for_flop(flop, n, acc.peak_flop_per_s, w.mfu, eff))
        return flop, hours, hours * n
    if w.gpu_hours_per_run is not None:
        gpu_h = w.gpu_hours_per_run
        hours = gpu_h / n
    else:
        hours = w.hours_per_run
        gpu_h = hours * n
    flop = gpu_h * SECONDS_PER_HOUR * acc.peak_flop_per_s * w.mfu * eff if w.mfu is not None else None
    return flop, hours, gpu_h
