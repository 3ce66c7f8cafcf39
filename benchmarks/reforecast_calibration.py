"""Whole-loop calibration of `sim reforecast` (issue 12, "Done means"): is the re-forecast's P5-P95
band of the final cost right 90% of the time?

For each of N projects, trainsim itself plays the project: replication k of a small scenario
(three workloads, 24 runs on one on-demand pool; the sweep and the main runs diverge now and then
and are started again) draws the hidden "true" inputs from the scenario's distributions (each
workload's MFU and divergence probability, the failure rate) and simulates the whole project: its
final cost is the truth. The same replication is simulated again and stopped at 25%, 50% and 75%
of the project's planned duration (the median makespan of the scenario, from replications under
another seed: the same hours for every project); what it has done by then becomes actuals
(sim.actuals.Actuals: each attempt that went wrong as a failed run with its hours, cost and
interruptions; completed runs with theirs; running runs with their hours, cost and interruptions
so far and their progress, the share of their current attempt done). Each cut is re-forecast as
`sim reforecast` does it (sim.api.work_left: the work left, the failure rate, each workload's MFU,
run-length spread and divergence probability updated), with R replications under another seed,
and the truth is checked against the estimate at completion's P5-P95 (as summary.json's
`reforecast.eac_usd` gives them). A project already finished at a cut has no case there (`cases` per cut says how many).

The cut is at a fraction of the planned duration, not of the project's own final duration: that
one is known only at the end, and a cut placed by it sees the future (a main run that will diverge
after the cut makes the project longer and so moves the cut past the divergence: cut at 75% of
their own duration, 199 of 200 projects had a main run before its divergence point whose own
divergence probability averaged 0.21, yet they had 0.015 reruns each after the cut; the
re-forecast, which cannot know, charged 0.27, and the truth fell below P5 in 8% of cases and never
above P95). A cut at a time fixed in advance is what a re-forecast meets: only the past decides what it sees.

    PYTHONPATH=. python benchmarks/reforecast_calibration.py              # 200 projects, 39 replications
    PYTHONPATH=. python benchmarks/reforecast_calibration.py --projects 400 --reps 99

A calibrated re-forecast puts the truth inside P5-P95 in 90% of cases (the binomial standard error
over n cases is sqrt(0.9 x 0.1 / n): 1.2% for 600), and its band narrows as the project advances.
tests/test_reforecast_loop.py runs a smaller campaign in the slow tier.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import datetime, timedelta
from datetime import time as dtime

import numpy as np

from sim.actuals import Actuals, RunActual
from sim.api import feasible, nominal_sizes, work_left
from sim.engine import Replication
from sim.loader import load_data
from sim.montecarlo import Replicator
from sim.reforecasting import block
from sim.reliability import progress as segment_progress

CUTS = (0.25, 0.5, 0.75)

SCENARIO = {
    "project": {"name": "loop", "start": "2027-01-04"},
    "pools": [{"name": "gpus", "accelerator": "h100", "count": 96, "node_size": 8, "price_usd_per_gpu_h": 3.0}],
    "workloads": [
        {"name": "sweep", "runs": 16, "params": "350M", "tokens": "7B", "accelerators": 8,
         "mfu": {"dist": "lognormal", "p5": 0.25, "p95": 0.45}, "run_length": {"kind": "lognormal", "sigma": 0.2},
         "divergence": {"probability": {"dist": "uniform", "min": 0.0, "max": 0.3}, "at": 0.4}},
        {"name": "main", "runs": 2, "params": "7B", "tokens": "140B", "accelerators": 64, "after": ["sweep"],
         "mfu": {"dist": "lognormal", "p5": 0.3, "p95": 0.5},
         "divergence": {"probability": {"dist": "uniform", "min": 0.05, "max": 0.35}, "at": 0.6}},
        {"name": "ft", "runs": 6, "params": "7B", "tokens": "2B", "accelerators": 16, "after": ["main"],
         "mfu": {"dist": "lognormal", "p5": 0.25, "p95": 0.45}},
    ],
    "reliability": {"failure_rate_per_gpu_h": {"dist": "lognormal", "p5": 2e-5, "p95": 4e-4}, "restart": "20 min",
                    "checkpoint": {"interval": "auto", "write": "2 min"}},
    "simulation": {"priors": "off"},
}


class _Stop(Exception):
    """Raised by the event at the cut: the replication stops there, in the state it has then."""


def _stop(_event) -> None:
    raise _Stop


def _so_far(r, t: float) -> tuple[float, float, int]:
    """(accelerator-hours, cost, interruptions) of run r up to hour t (its allocation still open
    billed to t)."""
    held, cost = r.alloc_gpu_h, r.cost
    if r.pool is not None and r in r.pool.running:
        seg = r.seg
        held += r.n * (t - seg.t0)
        cost += r.n * r.pool.p.curve.integral(r.alloc_t, t)
    return held, cost, r.failures


class _Kept(Replication):
    """A replication that keeps every run it makes (to read them at the cut), and each attempt of a
    run that went wrong and was started again (a divergence): the engine counts a run's reruns but
    keeps its hours and cost as one total, so the attempt's are read here, when it goes wrong (the
    run's totals then, less those when the attempt began). The restart the engine puts before a
    rerun is the failed attempt's (its teardown and the new job's setup): the next attempt's hours
    are then all work, as the re-forecast's MFU update reads a running run's (the engine starts a
    first attempt with no restart). Only this subclass does it: the engine itself is unchanged."""

    def __init__(self, *args):
        super().__init__(*args)
        self.made: list = []
        self.failed: list = []  # (run, start h, end h, accelerator-hours, cost, interruptions)
        self.began: dict[int, tuple] = {}  # id(run) -> (hour, hours, cost, interruptions) when its attempt began

    def _make_runs(self, wl):
        runs = super()._make_runs(wl)
        self.made.extend(runs)
        return runs

    def _completed(self, r):
        wrong = r.diverging and r.wl.w.div_rerun
        super()._completed(r)
        if wrong:  # this attempt went wrong: it ends once the restart that follows is done, the next begins
            now = self.env.now
            t1 = now + r.seg.restart_h  # the rerun's first segment, just begun, starts with a restart
            t0, *base = self.began.get(id(r), (r.first_start, 0.0, 0.0, 0))
            # the segment that ended is booked already (its hours are in alloc_gpu_h, its cost not yet)
            totals = (r.alloc_gpu_h + r.n * (t1 - now), r.cost + r.n * r.pool.p.curve.integral(r.alloc_t, t1),
                      r.failures)
            self.failed.append((r, t0, t1, *(x - b for x, b in zip(totals, base, strict=True))))
            self.began[id(r)] = (t1, *totals)


def cut(plan, seed: int, k: int, t: float) -> _Kept:
    """Replication k of `plan`, stopped at hour t (the same events up to t as the whole replication)."""
    rep = _Kept(plan, seed, k)
    rep.env.timeout(t).callbacks.append(_stop)
    try:
        rep.simulate()
    except _Stop:
        pass
    return rep


def _running(r, t: float) -> tuple[float, float, float]:
    """(accelerator-hours, cost, share of its work done) of a run still going at hour t (the share
    is its current attempt's: a rerun starts from nothing)."""
    held, cost, _n = _so_far(r, t)
    share = r.done
    if r.pool is not None and r in r.pool.running:
        seg = r.seg
        worked = t - seg.t0 - seg.dead_h - seg.restart_h
        if worked > 0:
            share += min(segment_progress(worked, seg.tau_h, seg.write_h), seg.work_h) / seg.length_h
    return held, cost, min(share, 1.0)


def actuals_at(rep: _Kept, t: float, start: datetime) -> Actuals:
    """What the project had done by hour t, as actuals: each attempt that went wrong as a failed
    run with its hours, cost and interruptions; completed runs (their last attempt) with theirs;
    running ones with those so far and their progress."""
    done = {id(r) for r in rep.finished}
    runs = []
    for k, (r, t0, t1, held, cost, fails) in enumerate(rep.failed):
        if t1 > t:  # cut during the restart after it: the attempt so far
            held, cost, t1 = held - r.n * (t1 - t), cost - r.n * r.pool.p.curve.integral(t, t1), t
        runs.append(RunActual(r.wl.w.name, f"{r.wl.w.name}-{r.idx}-failed-{k}", r.pool.p.name, r.n,
                              start + timedelta(hours=t0), start + timedelta(hours=t1), "failed", held, cost, None,
                              fails, 0))
    for r in rep.made:
        t0, *base = rep.began.get(id(r), (r.first_start, 0.0, 0.0, 0))
        if r.first_start < 0 or t0 >= t:  # not begun (a rerun not begun: a run still to do, as in actuals)
            continue
        common = {"workload": r.wl.w.name, "run_id": f"{r.wl.w.name}-{r.idx}", "pool": r.pool.p.name,
                  "accelerators": r.n, "start": start + timedelta(hours=t0), "interruptions": r.failures - base[2],
                  "row": 0}
        if id(r) in done:
            runs.append(RunActual(**common, end=start + timedelta(hours=r.end), state="completed",
                                  gpu_hours=r.alloc_gpu_h - base[0], cost_usd=r.cost - base[1], progress=None))
        else:
            held, cost, share = _running(r, t)
            runs.append(RunActual(**common, end=None, state="running", gpu_hours=held - base[0],
                                  cost_usd=cost - base[1], progress=share))
    return Actuals(tuple(runs), (), "truth", start + timedelta(hours=t))


PILOT = 99  # replications behind the planned duration
PILOT_SEED = 10**6  # added to the campaign's seed: other draws than the projects' and the re-forecasts'


def planned_hours(loaded, seed: int = 0, n: int = PILOT) -> float:
    """The project's planned duration: the median makespan of `n` replications of the scenario
    under a seed of their own (the plan's P50; the cuts are fractions of it, the same hours for
    every project; the single run at nominal inputs would do, but its failures are random draws and
    move it with the seed by a third)."""
    rep = Replicator(loaded, seed + PILOT_SEED)
    return float(np.median([rep.one(k, strict=True).row["makespan_days"] for k in range(n)])) * 24


def project(loaded, nominal, k: int, reps: int, seed: int = 0, cuts=CUTS, planned: float | None = None) -> dict:
    """Project k: its true final cost, and the re-forecast at each cut (P5, P50, P95 of the
    estimate at completion, and the truth's rank among the re-forecast's replications); a cut at
    or after the project's end is left out (`planned`: the planned hours, see `planned_hours`)."""
    planned = planned_hours(loaded, seed) if planned is None else planned
    truth = Replicator(loaded, seed)
    plan, _inputs = truth.plan(k)
    whole = truth.one(k, strict=True).row
    cost, hours = whole["cost_usd"], whole["makespan_days"] * 24
    start = datetime.combine(loaded.scenario.project.start, dtime())
    out = {"k": k, "truth_usd": cost, "cuts": []}
    for f in cuts:
        if f * planned >= hours:  # finished by then: nothing left to forecast
            continue
        acts = actuals_at(cut(plan, seed, k, f * planned), f * planned, start)
        rem, left = work_left(loaded, acts, nominal)
        rep = Replicator(left, seed + 1 + k)
        rows = [rep.one(j, strict=True).row for j in range(reps)]
        eac = np.array([rem.actual_usd + row["cost_usd"] for row in rows])
        q = block(rem, eac, [row["makespan_days"] for row in rows], loaded.scenario, None)["eac_usd"]
        p5, p50, p95 = q["p5"], q["p50"], q["p95"]
        out["cuts"].append({"at": f, "hours": f * planned, "actual_usd": rem.actual_usd, "p5": p5, "p50": p50,
                            "p95": p95, "inside": p5 <= cost <= p95, "rank": int(np.sum(eac < cost))})
    return out


def campaign(projects: int = 200, reps: int = 39, seed: int = 0, cuts=CUTS, scenario: dict | None = None) -> dict:
    """Coverage of P5-P95 and the band's width (P95 - P5 over the truth) at each cut, over `projects`."""
    loaded = feasible(load_data(scenario or SCENARIO, "reforecast loop"))
    nominal = nominal_sizes(loaded)
    planned = planned_hours(loaded, seed)
    rows = [project(loaded, nominal, k, reps, seed, cuts, planned) for k in range(projects)]
    by_cut = {}
    for f in cuts:
        pairs = [(c, r) for r in rows for c in r["cuts"] if c["at"] == f]
        cs, truths = [c for c, _ in pairs], [r["truth_usd"] for _, r in pairs]
        width = [(c["p95"] - c["p5"]) / t for c, t in zip(cs, truths, strict=True)]
        by_cut[f"{f:.0%}"] = {"cases": len(cs), "coverage": float(np.mean([c["inside"] for c in cs])),
                              "below_p5": float(np.mean([t < c["p5"] for c, t in zip(cs, truths, strict=True)])),
                              "above_p95": float(np.mean([t > c["p95"] for c, t in zip(cs, truths, strict=True)])),
                              "median_width": float(np.median(width))}
    n = sum(len(r["cuts"]) for r in rows)
    coverage = float(np.mean([c["inside"] for r in rows for c in r["cuts"]]))
    return {"projects": projects, "reps": reps, "planned_hours": planned, "cases": n, "coverage": coverage,
            "binomial_se": math.sqrt(0.9 * 0.1 / n), "by_cut": by_cut, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--projects", type=int, default=200)
    ap.add_argument("--reps", type=int, default=39, help="replications per re-forecast")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.perf_counter()
    res = campaign(a.projects, a.reps, a.seed)
    res.pop("rows")
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
