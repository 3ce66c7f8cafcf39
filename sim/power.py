"""What a pool's accelerators draw and how clean the grid is when they draw it.

Busy draw of one accelerator of pool p running workload w, in watts (before PUE):

    accelerator: tdp_w x w.power_factor, else tdp_w x p.power_factor, else the accelerator's measured
                 power_w, else tdp_w x carbon.power_factor
    host share:  p.host_w_per_node / node_size, else the accelerator's host_w when carbon.host_power
                 is `catalog`, else 0

Idle draw (idle owned or reserved capacity): carbon.idle_power_factor x (tdp_w + host share).
The grid's intensity is a pool's carbon_profile or grid_gco2_per_kwh, else carbon.profile, else
carbon.grid_gco2_per_kwh (sim.grid: Flat, or a profile laid on the calendar).

Takes scenario objects with concrete numbers (duck-typed) and catalog entries; pure.
"""

from __future__ import annotations

from datetime import date

from sim import grid
from sim.catalog import Accelerator


def host_w(acc: Accelerator, pool, carbon) -> float:
    """The host's share of one accelerator of the pool while busy, watts."""
    if pool.host_w_per_node is not None:
        return float(pool.host_w_per_node) / pool.nodes_of
    if carbon.host_power == "catalog" and acc.host_w is not None:
        return float(acc.host_w)
    return 0.0


def busy_w(acc: Accelerator, pool, workload, carbon) -> float:
    """Watts one busy accelerator of `pool` draws running `workload`, its host's share included."""
    if workload.power_factor is not None:
        own = acc.tdp_w * float(workload.power_factor)
    elif pool.power_factor is not None:
        own = acc.tdp_w * float(pool.power_factor)
    elif acc.power_w is not None:
        own = float(acc.power_w)
    else:
        own = acc.tdp_w * float(carbon.power_factor)
    return own + host_w(acc, pool, carbon)


def idle_w(acc: Accelerator, pool, carbon) -> float:
    """Watts one idle accelerator of an owned or reserved pool draws, its host's share included."""
    return float(carbon.idle_power_factor) * (acc.tdp_w + host_w(acc, pool, carbon))


def intensity(pool, carbon, profiles: dict[str, grid.Profile], start: date) -> grid.Flat | grid.Intensity:
    """The pool's grid carbon intensity over hours since `start` (kg CO2 per kWh)."""
    if pool.carbon_profile is not None:
        return grid.intensity(profiles[pool.carbon_profile], start)
    if pool.grid_gco2_per_kwh is not None:
        return grid.Flat(float(pool.grid_gco2_per_kwh) / 1000.0)
    if carbon.profile is not None:
        return grid.intensity(profiles[carbon.profile], start)
    return grid.Flat(float(carbon.grid_gco2_per_kwh) / 1000.0)


def profile_names(scn) -> list[tuple[tuple, str]]:
    """(key path, profile name) of every grid profile a scenario names."""
    out = [(("carbon", "profile"), scn.carbon.profile)] if scn.carbon.profile is not None else []
    out += [(("pools", i, "carbon_profile"), p.carbon_profile) for i, p in enumerate(scn.pools)
            if p.carbon_profile is not None]
    return out
