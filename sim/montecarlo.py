"""Replications: sample each replication's inputs, build its plan, simulate, and hand back rows.

Every replication draws from its own named streams (sim.rng), so replication k gives the same
numbers whichever order or process runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sim import rng as rngmod
from sim.engine import Plan, build_plan, simulate
from sim.loader import Loaded, path_str
from sim.schema import map_dists, nominal_scenario, uncertain_inputs


@dataclass
class RepResult:
    replication: int
    row: dict
    runs: list


class Sampler:
    """Draws one value per uncertain input per replication (plain random sampling through each
    distribution's inverse CDF); a scenario with no uncertain input builds its plan once."""

    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        self.dists = uncertain_inputs(loaded.scenario)
        self.paths = list(self.dists)
        self._fixed: Plan | None = None
        if not self.dists:
            self._fixed = build_plan(nominal_scenario(loaded.scenario), loaded.catalog)

    def plan(self, seed: int, replication: int) -> tuple[Plan, dict]:
        if self._fixed is not None:
            return self._fixed, {}
        u = rngmod.generator(seed, replication, "inputs").random(len(self.paths))
        values = {p: float(self.dists[p].ppf(q)) for p, q in zip(self.paths, u, strict=True)}

        def pick(d, path):
            v = values[path]
            return int(round(v)) if d.bounds.integer else v

        scn = map_dists(self.loaded.scenario, pick)
        return build_plan(scn, self.loaded.catalog), {f"input:{path_str(p)}": v for p, v in values.items()}


def replicate(loaded: Loaded, seed: int, replications: range) -> Iterator[RepResult]:
    sampler = Sampler(loaded)
    for k in replications:
        plan, inputs = sampler.plan(seed, k)
        rep = simulate(plan, seed, k)
        row = {"replication": k, **rep.summary(), **inputs}
        for wl in rep.wls:
            row[f"gpu_hours_wl_{wl.w.name}"] = wl.gpu_h
            row[f"runs_wl_{wl.w.name}"] = wl.w.runs
        yield RepResult(k, row, [(k, *r) for r in rep.run_rows()])


STAT_KEYS = ("mean", "std", "min", "p5", "p10", "p50", "p90", "p95", "max")


def describe(x) -> dict[str, float]:
    a = np.asarray(x, dtype=float)
    if a.size == 0:
        return dict.fromkeys(STAT_KEYS, float("nan"))
    q = np.percentile(a, [5, 10, 50, 90, 95])
    return {
        "mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "min": float(a.min()),
        "p5": float(q[0]), "p10": float(q[1]), "p50": float(q[2]), "p90": float(q[3]), "p95": float(q[4]),
        "max": float(a.max()),
    }
