"""Property tests of the discrete-event engine on small random scenarios.

Scenarios are generated as plain dicts (the YAML a user would write), validated by the loader,
turned into a plan at their nominal values and simulated once with the allocation trace on. Each
test checks one invariant that must hold whatever the scenario:

1. accelerators in use never exceed a pool's capacity at that time;
2. allocated GPU-h = productive + lost + overhead, per run and in total, and = the trace's GPU-h;
3. every run finishes exactly once; `after`, `max_concurrent`, `earliest_start` (and strict fifo
   order) are obeyed;
4. with nothing random, the simulation costs what the deterministic estimate says;
5. a reserved pool pays count x price x term, used or not (and every pool bills by its tier, from
   the trace);
6. a replication is a pure function of (plan, seed, replication);
7. a run's productive GPU-h = accelerators x uninterrupted length x target fraction.

Engine bugs found while writing these are pinned by small deterministic reproducers (regression tests).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sim.deterministic import estimate
from sim.engine import simulate
from sim.loader import load_data
from sim.plan import build_plan
from sim.schema import nominal_scenario

START = date(2026, 1, 1)
TIERS = ("on_demand", "spot", "reserved", "owned")
REL = 1e-9

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def day(n: int) -> str:
    return (START + timedelta(days=n)).isoformat()


def hours_of(d: str) -> float:
    return (date.fromisoformat(d) - START).days * 24.0


# --------------------------------------------------------------------------------------------
# Scenario generation


def _money(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 3))


def _preemption(draw) -> dict:
    rate = draw(st.one_of(st.sampled_from([0.001, 0.005, 0.02]), st.floats(0.0, 0.02)))
    pre: dict = {"rate_per_node_h": round(rate, 5)}
    if draw(st.booleans()):
        pre["notice"] = draw(st.sampled_from([0.0, 0.05, 0.25]))
    if draw(st.booleans()):
        pre["co_interruption"] = draw(st.sampled_from([0.0, 0.5, 1.0]))
    return pre


@st.composite
def pool_dicts(draw, i: int, n_pools: int, tiers=TIERS, accelerator: str | None = None, drops: bool = True,
               price=None, permanent: bool = False) -> dict:
    """One pool. A `permanent` pool is never reserved and never shrinks, so a workload that may
    use one always finishes; the others may be reserved for a short or late commitment, or lose
    capacity on a date (runs on them are then evicted and queue again)."""
    node = draw(st.sampled_from([4, 8]))
    count = node * draw(st.integers(8 // node, 64 // node))
    tier = draw(st.sampled_from([t for t in tiers if t != "reserved"] if permanent else list(tiers)))
    p: dict = {
        "name": f"p{i}",
        "accelerator": accelerator or draw(st.sampled_from(["h100", "a100-80gb"])),
        "count": count,
        "node_size": node,
        "pricing": tier,
        "price_usd_per_gpu_h": price if price is not None else draw(_money(0.5, 5.0)),
    }
    if tier == "owned":
        if draw(st.booleans()):
            p["purchase_usd_per_gpu"] = draw(_money(5_000, 40_000))
        p["energy_usd_per_kwh"] = draw(_money(0.0, 0.3))
    if tier == "spot":
        if draw(st.booleans()):
            p["preemption"] = _preemption(draw)
        others = [f"p{j}" for j in range(n_pools) if j != i]
        if others and draw(st.booleans()):
            p["fallback"] = draw(st.sampled_from(others))
    if tier == "reserved":
        p["term"] = draw(st.sampled_from([24.0, 30.5, 100.0, 500.0, 8760.0]))
        if draw(st.booleans()):
            p["commitment_start"] = day(draw(st.integers(0, 4)))
    elif draw(st.integers(0, 2)) == 0:
        steps, cap, d = [], count, 0
        for _ in range(draw(st.integers(1, 3))):
            d += draw(st.integers(1, 5))
            if drops and not permanent and draw(st.booleans()):
                cap = node * draw(st.integers(0, cap // node))
            else:
                cap = min(64, cap + node * draw(st.integers(0, 2)))
            steps.append({"date": day(d), "count": cap})
        p["capacity_changes"] = steps
    return p


def final_capacity(p: dict) -> int:
    if p["pricing"] == "reserved":
        return 0
    changes = p.get("capacity_changes", [])
    return changes[-1]["count"] if changes else p["count"]


def _checkpoint(draw) -> dict:
    ck: dict = {"interval": draw(st.sampled_from(["auto", "none", "2 h"]))}
    ck["write"] = draw(st.sampled_from([0.0, 0.02, 0.1, 0.2]))
    return ck


@st.composite
def workload_dicts(draw, i: int, pools: list[dict], *, randomness: bool = True, one_pool: bool = False) -> dict:
    usable, w_pools = _usable_pools(draw, pools, one_pool)
    # a run must fit, for good, in a pool it may use: then every generated project can finish
    biggest = max(final_capacity(p) for p in pools if p["name"] in usable)
    w: dict = {
        "name": f"w{i}",
        "runs": draw(st.integers(1, 20)),
        "hours_per_run": draw(st.floats(0.5, 50.0).map(lambda x: round(x, 3))),
        "accelerators": draw(st.one_of(st.sampled_from([4, 8, 16, 32, 64]).filter(lambda n: n <= biggest),
                                       st.integers(1, biggest))),
    }
    if w_pools is not None:
        w["pools"] = w_pools
    if i > 0 and draw(st.booleans()):
        w["after"] = draw(st.lists(st.sampled_from([f"w{j}" for j in range(i)]), min_size=1, max_size=i,
                                   unique=True))
    if draw(st.booleans()):
        w["max_concurrent"] = draw(st.integers(1, 4))
    if draw(st.integers(0, 3)) == 0:
        w["earliest_start"] = day(draw(st.integers(0, 5)))
    if draw(st.booleans()):
        w["priority"] = draw(st.integers(-2, 2))
    if draw(st.integers(0, 2)) == 0:
        w["early_stop"] = {"fraction_of_runs": draw(st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 1.0])),
                           "at": draw(st.sampled_from([0.1, 0.3, 0.5, 0.9, 1.0]))}
    if randomness:
        _random_parts(draw, w)
    return w


def _usable_pools(draw, pools: list[dict], one_pool: bool) -> tuple[list, list | None]:
    """(pools a workload may use, its `pools:` key or None for all)."""
    names = [p["name"] for p in pools]
    lasting = [p["name"] for p in pools if final_capacity(p) > 0]  # p0 at least
    if one_pool:
        usable = [draw(st.sampled_from(lasting))]
        return usable, usable
    if draw(st.booleans()):
        return names, None
    usable = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    if not any(n in lasting for n in usable):
        usable.append(draw(st.sampled_from(lasting)))
    return usable, usable


def _field_reliability(draw) -> dict:
    """Sometimes: job-level failures, detection, size-dependent restarts, unrecoverable failures,
    lemon nodes and planned interruptions."""
    out: dict = {}
    if draw(st.booleans()):
        out["job_failure_rate_per_h"] = draw(st.sampled_from([0.0, 0.01, 0.05]))
        out["detect"] = draw(st.sampled_from([0.0, 0.05, 0.3]))
        out["restart_per_doubling"] = draw(st.sampled_from([0.0, 0.02]))
    if draw(st.booleans()):
        out["repair_sigma"] = draw(st.sampled_from([0.0, 0.5]))
        out["repair_crews"] = draw(st.sampled_from([0, 1, 2]))
    if draw(st.booleans()):
        out["unrecoverable_fraction"] = draw(st.sampled_from([0.0, 0.2, 1.0]))
        out["lemons"] = {"fraction": draw(st.sampled_from([0.0, 0.1, 0.5])), "multiplier": 5}
        out["planned"] = {"rate_per_h": draw(st.sampled_from([0.0, 0.02])), "downtime": 0.2}
    if draw(st.integers(0, 2)) == 0:
        out["failure_domains"] = {"nodes": draw(st.sampled_from([1, 2, 4])),
                                  "rate_per_h": draw(st.sampled_from([0.0, 0.005, 0.02]))}
    return out


def _random_parts(draw, w: dict) -> None:
    """Divergence, run-length spread and a checkpoint policy of the workload's own, sometimes."""
    if draw(st.integers(0, 2)) == 0:
        rerun = draw(st.booleans())
        w["divergence"] = {"probability": draw(st.floats(0.0, 0.6 if rerun else 1.0).map(lambda x: round(x, 3))),
                           "at": draw(st.sampled_from([0.1, 0.5, 0.8])), "rerun": rerun}
    if draw(st.integers(0, 2)) == 0:
        w["run_length"] = {"kind": "lognormal", "sigma": 0.3}
    if draw(st.integers(0, 3)) == 0:
        w["checkpoint"] = _checkpoint(draw)
    if draw(st.booleans()):
        w["on_node_loss"] = draw(st.sampled_from(["move", "wait", "best"]))
    if draw(st.integers(0, 3)) == 0:
        w["stragglers"] = {"fraction": draw(st.sampled_from([0.3, 1.0])), "slowdown": 1.4, "sigma": 0.2}
    if draw(st.integers(0, 3)) == 0:
        w["loss_spike"] = {"rate_per_h": 0.03, "rollback": draw(st.sampled_from([0.5, 3.0]))}


@st.composite
def scenarios(draw, *, tiers=TIERS, randomness: bool = True, one_pool: bool = False,
              same_accelerator: bool = False, same_price: bool = False, drops: bool = True) -> dict:
    n_pools = draw(st.integers(1, 3))
    acc = "h100" if same_accelerator else None
    price = draw(_money(0.5, 5.0)) if same_price else None
    pools = [draw(pool_dicts(i, n_pools, tiers, acc, drops, price, permanent=i == 0)) for i in range(n_pools)]
    if randomness:
        for p in pools:
            if draw(st.booleans()):
                p["spares"] = draw(st.integers(0, 2))
            if p["pricing"] in ("on_demand", "spot") and draw(st.integers(0, 3)) == 0:
                p["availability"] = {"fraction": draw(st.sampled_from([0.5, 0.9])),
                                     "mean_outage": draw(st.sampled_from([0.3, 3.0]))}
    workloads = [draw(workload_dicts(i, pools, randomness=randomness, one_pool=one_pool))
                 for i in range(draw(st.integers(1, 4)))]
    raw: dict = {
        "project": {"name": "prop", "start": START.isoformat()},
        "pools": pools,
        "workloads": workloads,
        "simulation": {"scheduler": draw(st.sampled_from(["fifo_backfill", "fifo", "priority"])), "priors": "off"},
    }
    if randomness:
        rel: dict = {
            "failure_rate_per_gpu_h": draw(st.one_of(st.sampled_from([0.0, 1e-5, 1e-4, 3e-4, 1e-3]),
                                                     st.floats(0.0, 1e-3))),
            "restart": draw(st.sampled_from([0.0, 0.1, 0.5])),
            "repair": draw(st.sampled_from([0.0, 0.5, 4.0])),
            "checkpoint": _checkpoint(draw),
        }
        rel.update(_field_reliability(draw))
    else:
        rel = {"model": "none"}
    raw["reliability"] = rel
    return raw


# --------------------------------------------------------------------------------------------
# Running one


def load(raw: dict):
    return load_data(raw, "generated")


def plan_of(loaded):
    return build_plan(nominal_scenario(loaded.scenario), loaded.catalog)


def _bounded(plan) -> bool:
    """Reject the few scenarios whose interruptions would make a run take very many events (a
    long run with no checkpoints on a busy spot pool): they test nothing more, only slowly."""
    for w in plan.workloads:
        slow = w.straggle_slowdown * 2.0 if w.straggle_p > 0 else 1.0
        longest = max(w.length_h_on.values()) * (2.5 if w.length_kind == "lognormal" else 1.0) * slow
        for j in w.pools:
            p = plan.pools[j]
            # a co-interrupting pool takes every run on it with any run's preemption: count the pool's nodes
            exposed = math.ceil(w.n / p.node_size) + p.co_interruption * max(p.capacity0, 1) / p.node_size
            lam = (w.fail_rate_per_h * w.lemon_multiplier + w.job_fail_rate_per_h + w.planned_rate_per_h
                   + w.spike_rate_per_h + w.domain_rate_per_h_on.get(j, 0.0) + p.preempt_rate_per_node_h * exposed)
            tau = w.ckpt_interval_h_on[j]
            if tau == math.inf:
                seg = longest  # no checkpoints: an interruption restarts the run
            elif tau <= 0.0:
                seg = 0.0  # continuous checkpoints: nothing is ever lost
            else:
                seg = min(tau + w.write_h, longest)
            if lam * seg > 3.0 or w.runs * lam * longest * math.exp(lam * seg) > 2000:
                return False
    return True


def run(raw: dict, seed: int = 0, replication: int = 0, generated: bool = True):
    loaded = load(raw)
    plan = plan_of(loaded)
    if generated:
        assume(_bounded(plan))
    rep = simulate(plan, seed, replication, trace=True)
    return loaded, plan, rep


def run_fixed(raw: dict, seed: int = 0, replication: int = 0):
    return run(raw, seed, replication, generated=False)


def ordered(trace):
    """The trace in time order, releases before takes at equal times (stable otherwise)."""
    return sorted(trace, key=lambda e: (e[0], 0 if e[2] < 0 else 1))


def capacity_steps(raw_pool: dict) -> list[tuple[float, int]]:
    """[(t, capacity from t on)], from the scenario itself (not from the engine's plan)."""
    if raw_pool.get("pricing") == "reserved":
        t0 = hours_of(raw_pool["commitment_start"]) if raw_pool.get("commitment_start") else 0.0
        t1 = t0 + float(raw_pool.get("term", 8760.0))
        return [(0.0, 0), (t0, raw_pool["count"]), (t1, 0)]
    steps = [(0.0, raw_pool["count"])]
    steps += sorted((hours_of(c["date"]), c["count"]) for c in raw_pool.get("capacity_changes", []))
    return steps


def capacity_at(steps, t: float) -> int:
    cap = 0
    for ts, c in steps:
        if ts <= t:
            cap = c
    return cap


def zero_length_holds(trace) -> set[int]:
    """Indices of take/release pairs of one run at one instant (the engine once placed a run on a pool
    losing its capacity that very instant and evicted it at once; see the regression test at the end)."""
    open_: dict = {}
    out: set[int] = set()
    for k, (t, i, n, name, idx) in enumerate(trace):
        if n > 0:
            open_[(name, idx)] = (k, t, i)
        else:
            k0, t0, i0 = open_.pop((name, idx))
            if t0 == t and i0 == i:
                out |= {k0, k}
    return out


def capacity_violations(raw: dict, trace, skip_zero_length: bool = True) -> list[str]:
    """Replay the trace with the pools' capacity steps: at equal times releases first, then
    capacity changes, then takes (then the releases of holds taken that same instant). Returns
    every moment in-use > capacity (or < 0)."""
    events = []
    zero = zero_length_holds(trace)
    for k, e in enumerate(trace):
        if k in zero and skip_zero_length:
            continue
        order = 2 if e[2] > 0 else (3 if k in zero else 0)
        events.append((e[0], order, k, "run", e))
    for i, p in enumerate(raw["pools"]):
        for t, c in capacity_steps(p):
            events.append((t, 1, -1, "cap", (i, c)))
    events.sort(key=lambda x: (x[0], x[1], x[2]))
    caps = [capacity_at(capacity_steps(p), 0.0) for p in raw["pools"]]
    used = [0] * len(raw["pools"])
    bad = []
    for t, _, _, kind, e in events:
        if kind == "cap":
            i, c = e
            caps[i] = c
        else:
            _, i, n, name, idx = e
            used[i] += n
        for i in range(len(used)):
            if used[i] < 0 or used[i] > caps[i]:
                bad.append(f"t={t:g} h pool {raw['pools'][i]['name']}: {used[i]} in use, capacity {caps[i]}")
    return bad


def held_intervals(trace):
    """{(workload, run): [(pool, n, t_take, t_release)]} from the trace."""
    open_: dict = {}
    out: dict = defaultdict(list)
    for t, i, n, name, idx in trace:  # the trace is appended in event order
        key = (name, idx)
        if n > 0:
            assert key not in open_, f"{key} taken twice without a release at t={t}"
            open_[key] = (i, n, t)
        else:
            assert key in open_, f"{key} released at t={t} without holding anything"
            i0, n0, t0 = open_.pop(key)
            assert (i0, n0) == (i, -n), f"{key} released {-n} on pool {i}, but took {n0} on pool {i0}"
            assert t >= t0
            out[key].append((i, n0, t0, t))
    assert not open_, f"runs still holding accelerators at the end: {sorted(open_)}"
    return out


# --------------------------------------------------------------------------------------------
# 1. capacity


@SETTINGS
@given(raw=scenarios(), seed=st.integers(0, 2**16))
def test_in_use_never_exceeds_capacity(raw, seed):
    _, _, rep = run(raw, seed)
    bad = capacity_violations(raw, rep.trace)
    assert not bad, bad[:5]
    # and nothing starts on a pool while it is in an availability outage
    takes = [(t, i) for t, i, n, *_ in rep.trace if n > 0]
    inside = [(t, i) for t, i in takes for j, a, b in rep.outages if i == j and a < t < b]
    assert not inside, inside[:5]


# --------------------------------------------------------------------------------------------
# 2. accounting


@SETTINGS
@given(raw=scenarios(), seed=st.integers(0, 2**16))
def test_gpu_hours_add_up_per_run_in_total_and_in_the_trace(raw, seed):
    _, _, rep = run(raw, seed)
    s = rep.summary()
    held = held_intervals(rep.trace)
    for record in rep.run_records():
        r = record._asdict()
        parts = (r["productive_gpu_hours"], r["lost_gpu_hours"], r["overhead_gpu_hours"])
        for x in parts:
            assert x >= -1e-9 * max(1.0, r["gpu_hours"]), r
        assert r["gpu_hours"] >= 0.0
        assert sum(parts) == pytest.approx(r["gpu_hours"], rel=REL, abs=1e-9), r
        traced = sum(n * (t1 - t0) for _, n, t0, t1 in held[(r["workload"], r["run"])])
        assert traced == pytest.approx(r["gpu_hours"], rel=REL, abs=1e-9), r
    total = s["productive_gpu_hours"] + s["lost_gpu_hours"] + s["overhead_gpu_hours"]
    assert total == pytest.approx(s["gpu_hours"], rel=REL)
    for k in ("gpu_hours", "productive_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours", "idle_gpu_hours",
              "cost_usd", "energy_kwh", "co2_kg"):
        assert s[k] >= -1e-9, (k, s[k])
    traced_total = sum(n * (t1 - t0) for spans in held.values() for _, n, t0, t1 in spans)
    assert traced_total == pytest.approx(s["gpu_hours"], rel=REL)
    assert s["gpu_hours"] == pytest.approx(sum(r.gpu_hours for r in rep.run_records()), rel=REL)


# --------------------------------------------------------------------------------------------
# 3. scheduling rules


@SETTINGS
@given(raw=scenarios(), seed=st.integers(0, 2**16))
def test_every_run_once_dependencies_concurrency_and_earliest_start(raw, seed):
    _, plan, rep = run(raw, seed)
    wls = {w["name"]: w for w in raw["workloads"]}
    keys = [(r.wl.w.name, r.idx) for r in rep.finished]
    assert len(keys) == len(set(keys)), "a run finished twice"
    assert set(keys) == {(w["name"], i) for w in raw["workloads"] for i in range(w["runs"])}
    held = held_intervals(rep.trace)
    assert set(held) == set(keys)
    first_take = {k: min(t0 for _, _, t0, _ in spans) for k, spans in held.items()}
    last_release = {k: max(t1 for _, _, _, t1 in spans) for k, spans in held.items()}
    ends = {(r.wl.w.name, r.idx): r.end for r in rep.finished}
    for k, end in ends.items():
        assert end == pytest.approx(last_release[k], abs=1e-9)
    for r in rep.finished:
        k = (r.wl.w.name, r.idx)
        assert r.submit_t <= r.first_start <= r.end
        assert r.first_start == first_take[k]
        assert r.submit_t >= r.wl.w.earliest_h
        assert r.wait_h >= -1e-9
    if raw["simulation"]["scheduler"] == "fifo":  # strict: nobody overtakes an earlier submission
        starts = [r.first_start for r in sorted(rep.finished, key=lambda r: r.seq)]
        assert starts == sorted(starts)
    for name, w in wls.items():
        mine = [k for k in keys if k[0] == name]
        start = min(first_take[k] for k in mine)
        for dep in w.get("after", []):
            dep_end = max(ends[k] for k in keys if k[0] == dep)
            assert start >= dep_end - 1e-9, f"{name} started at {start} before {dep} ended at {dep_end}"
        if "earliest_start" in w:
            assert start >= hours_of(w["earliest_start"]) - 1e-9, (name, start, w["earliest_start"])
        # max_concurrent from the trace: at equal times releases first
        cap = w.get("max_concurrent", math.inf)
        running = 0
        for t, _, n, wname, _ in ordered(rep.trace):
            if wname != name:
                continue
            running += 1 if n > 0 else -1
            assert running <= cap, f"{name}: {running} runs at t={t} > max_concurrent {cap}"


# --------------------------------------------------------------------------------------------
# 4. against the deterministic estimate


@SETTINGS
@given(raw=scenarios(tiers=("on_demand",), randomness=False, one_pool=True, drops=False), seed=st.integers(0, 2**16))
def test_nothing_random_one_pool_each_costs_the_estimate(raw, seed):
    loaded, _, rep = run(raw, seed)
    s = rep.summary()
    est = estimate(loaded).total
    assert s["cost_usd"] == pytest.approx(est["cost_usd"], rel=1e-9)
    assert s["productive_gpu_hours"] == pytest.approx(est["gpu_hours"], rel=1e-9)
    assert s["gpu_hours"] == pytest.approx(s["productive_gpu_hours"], rel=1e-9)
    assert s["lost_gpu_hours"] == s["overhead_gpu_hours"] == 0.0
    assert s["energy_kwh"] == pytest.approx(est["energy_kwh"], rel=1e-9)
    assert sum(v for k, v in s.items() if k.startswith("cost_usd_wl_")) == pytest.approx(s["cost_usd"], rel=1e-9)


@SETTINGS
@given(raw=scenarios(tiers=("on_demand",), randomness=False, same_price=True, drops=False), seed=st.integers(0, 2**16))
def test_nothing_random_same_price_everywhere_costs_at_least_the_estimate(raw, seed):
    loaded, _, rep = run(raw, seed)
    s = rep.summary()
    est = estimate(loaded).total
    assert s["cost_usd"] >= est["cost_usd"] * (1 - 1e-6)
    assert s["productive_gpu_hours"] == pytest.approx(est["gpu_hours"], rel=1e-9)


def test_early_stop_of_a_fraction_of_runs_matches_the_estimate_in_whole_runs():
    # 4 runs, half stopped at 50%: 2 runs + 2 half runs = 3 runs of work, in both.
    raw = {"project": {"name": "t", "start": "2026-01-01"},
           "pools": [{"name": "p", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0}],
           "workloads": [{"name": "w", "runs": 4, "hours_per_run": 10, "accelerators": 8,
                          "early_stop": {"fraction_of_runs": 0.5, "at": 0.5}}],
           "reliability": {"model": "none"}}
    loaded, _, rep = run_fixed(raw)
    assert rep.summary()["productive_gpu_hours"] == pytest.approx(3 * 80.0)
    assert estimate(loaded).total["gpu_hours"] == pytest.approx(3 * 80.0)


def test_early_stop_with_a_fractional_number_of_runs_matches_the_estimate():
    # fraction x runs = 1.5: both must stop the same whole number of runs early. Was a bug: the
    # engine stopped round(1.5) = 2 runs (160 GPU-h of work), the estimate counted 1.5 (180 GPU-h),
    # so the simulation cost less than the estimate that is meant to be its floor.
    raw = {"project": {"name": "t", "start": "2026-01-01"},
           "pools": [{"name": "p", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0}],
           "workloads": [{"name": "w", "runs": 3, "hours_per_run": 10, "accelerators": 8,
                          "early_stop": {"fraction_of_runs": 0.5, "at": 0.5}}],
           "reliability": {"model": "none"}}
    loaded, _, rep = run_fixed(raw)
    s = rep.summary()
    est = estimate(loaded).total
    assert s["productive_gpu_hours"] == pytest.approx(est["gpu_hours"], rel=1e-9)
    assert s["productive_gpu_hours"] / 80.0 in (2.0, 2.5)  # 2 or 1 runs stopped at half: whole runs
    assert s["cost_usd"] >= est["cost_usd"] * (1 - 1e-6)


# --------------------------------------------------------------------------------------------
# 5. reserved pools


def _reserved_cost(p: dict, spare: int = 0) -> float:
    """The term of the reserved accelerators and of the pool's hot spares (`spare` accelerators)."""
    return (p["count"] + spare) * p["price_usd_per_gpu_h"] * float(p.get("term", 8760.0))


def _spare(plan, i: int) -> int:
    """Accelerators in pool i's hot spares."""
    return plan.pools[i].spares * plan.pools[i].node_size


@SETTINGS
@given(raw=scenarios(), seed=st.integers(0, 2**16))
def test_reserved_pools_pay_the_whole_commitment_whatever_the_use(raw, seed):
    _, plan, rep = run(raw, seed)
    s = rep.summary()
    assert s["idle_gpu_hours"] >= 0.0
    for i, p in enumerate(raw["pools"]):
        if p["pricing"] == "reserved":
            assert s[f"cost_usd_pool_{p['name']}"] == pytest.approx(_reserved_cost(p, _spare(plan, i)), rel=1e-9)


@SMALL
@given(raw=scenarios(), reserved=pool_dicts(9, 1, ("reserved",)), seed=st.integers(0, 2**16))
def test_an_unused_reserved_pool_is_paid_in_full(raw, reserved, seed):
    reserved["name"] = "unused"
    names = [p["name"] for p in raw["pools"]]
    for w in raw["workloads"]:
        w.setdefault("pools", names)
    raw["pools"].append(reserved)
    _, plan, rep = run(raw, seed)
    s = rep.summary()
    assert all(e[1] != len(raw["pools"]) - 1 for e in rep.trace), "a run used the pool no workload may use"
    spare = _spare(plan, len(raw["pools"]) - 1)
    assert s["cost_usd_pool_unused"] == pytest.approx(_reserved_cost(reserved, spare), rel=1e-9)
    assert s["idle_gpu_hours"] >= reserved["count"] * float(reserved["term"]) * (1 - 1e-12)


def capacity_hours(steps, until: float) -> float:
    total = 0.0
    for (t, cap), (t_next, _) in zip(steps, [*steps[1:], (math.inf, 0)], strict=True):
        a, b = max(t, 0.0), min(t_next, until)
        if b > a:
            total += cap * (b - a)
    return total


@SETTINGS
@given(raw=scenarios(), seed=st.integers(0, 2**16))
def test_each_pool_bills_by_its_tier_from_the_trace(raw, seed):
    # on_demand and spot: price x traced busy GPU-h; reserved: the commitment; owned: price x
    # capacity-hours until the makespan, plus electricity for busy and idle accelerators.
    loaded, plan, rep = run(raw, seed)
    s = rep.summary()
    busy = [0.0] * len(raw["pools"])
    for spans in held_intervals(rep.trace).values():
        for i, n, t0, t1 in spans:
            busy[i] += n * (t1 - t0)
    mk = s["makespan_days"] * 24.0
    pf, ipf = plan.power_factor, plan.idle_power_factor
    total = energy = 0.0
    for i, p in enumerate(raw["pools"]):
        cost = s[f"cost_usd_pool_{p['name']}"]
        price = p["price_usd_per_gpu_h"]
        kw = loaded.catalog.accelerators[p["accelerator"]].tdp_w / 1000.0 * loaded.scenario.carbon.pue
        energy += busy[i] * kw * pf
        spare = _spare(plan, i)  # hot spares: held like capacity, never busy
        if p["pricing"] in ("on_demand", "spot"):
            assert cost == pytest.approx(price * (busy[i] + spare * mk), rel=1e-9, abs=1e-9), p["name"]
            energy += spare * mk * kw * ipf
        elif p["pricing"] == "reserved":
            assert cost == pytest.approx(_reserved_cost(p, spare), rel=1e-9), p["name"]
        else:
            cap_h = capacity_hours([(t, c + spare if c > 0 else c) for t, c in capacity_steps(p)], mk)
            assert busy[i] <= cap_h * (1 + 1e-9) + 1e-9
            kwh = busy[i] * kw * pf + max(cap_h - busy[i], 0.0) * kw * ipf
            energy += max(cap_h - busy[i], 0.0) * kw * ipf
            assert cost == pytest.approx(price * cap_h + kwh * p["energy_usd_per_kwh"], rel=1e-9, abs=1e-9)
        total += cost
    assert s["cost_usd"] == pytest.approx(total, rel=1e-12)
    # busy accelerators everywhere, idle owned ones (idle reserved ones: see test_idle_reserved_...)
    if any(p["pricing"] == "reserved" for p in raw["pools"]):
        assert s["energy_kwh"] >= energy * (1 - 1e-9)
    else:
        assert s["energy_kwh"] == pytest.approx(energy, rel=1e-9, abs=1e-9)
    assert sum(r.cost for r in rep.finished) == pytest.approx(
        sum(v for k, v in s.items() if k.startswith("cost_usd_wl_")), rel=1e-9, abs=1e-9)


def test_idle_reserved_accelerators_draw_idle_power():
    raw = {"project": {"name": "t", "start": "2026-01-01"},
           "pools": [{"name": "r", "accelerator": "h100", "count": 8, "pricing": "reserved", "term": 100,
                      "price_usd_per_gpu_h": 1.0}],
           "workloads": [{"name": "w", "hours_per_run": 10, "accelerators": 8}],
           "reliability": {"model": "none"},
           "carbon": {"pue": 1.0, "power_factor": 1.0, "idle_power_factor": 0.25}}
    _, _, rep = run_fixed(raw)
    s = rep.summary()
    assert s["idle_gpu_hours"] == pytest.approx(8 * 90.0)
    # busy 80 GPU-h x 0.7 kW, idle 720 GPU-h x 0.7 kW x 0.25
    assert s["energy_kwh"] == pytest.approx(80 * 0.7 + 720 * 0.7 * 0.25)


# --------------------------------------------------------------------------------------------
# 6. determinism


@SMALL
@given(raw=scenarios(), seed=st.integers(0, 2**16), replication=st.integers(0, 50))
def test_same_plan_seed_and_replication_give_identical_results(raw, seed, replication):
    _, plan, a = run(raw, seed, replication)
    b = simulate(plan, seed, replication, trace=True)
    assert a.summary() == b.summary()
    assert a.run_records() == b.run_records()
    assert a.trace == b.trace
    # a fresh plan from the same dict is just as good
    c = simulate(plan_of(load(raw)), seed, replication)
    assert c.summary() == a.summary()


def test_replications_differ_when_failures_are_on():
    raw = {"project": {"name": "t", "start": "2026-01-01"},
           "pools": [{"name": "p", "accelerator": "h100", "count": 16, "price_usd_per_gpu_h": 2.0}],
           "workloads": [{"name": "w", "runs": 10, "hours_per_run": 40, "accelerators": 8}],
           "reliability": {"failure_rate_per_gpu_h": 1e-3, "restart": 0.25,
                           "checkpoint": {"interval": "2 h", "write": 0.05}}}
    plan = plan_of(load(raw))
    sums = [simulate(plan, 7, k).summary() for k in range(4)]
    assert sums[0] == simulate(plan, 7, 0).summary()
    assert len({s["gpu_hours"] for s in sums}) > 1
    assert simulate(plan, 8, 0).summary() != sums[0]


# --------------------------------------------------------------------------------------------
# 7. productive work


@SETTINGS
@given(raw=scenarios(), seed=st.integers(0, 2**16))
def test_productive_gpu_hours_of_a_run_is_its_work(raw, seed):
    _, plan, rep = run(raw, seed)
    for r in rep.finished:
        w = plan.workloads[r.wl.w.idx]
        if r.abandoned:
            assert w.div_p > 0 and not w.div_rerun
            assert r.productive == pytest.approx(0.0, abs=1e-9)
            continue
        target = w.early_at if r.idx < w.early_k else 1.0
        expect = w.n * w.length_h_on[r.pool.p.idx] * r.factor / r.slow * target  # nominal speed
        assert r.productive == pytest.approx(expect, rel=1e-9), (w.name, r.idx)


# --------------------------------------------------------------------------------------------
# Capacity taken away under running runs


def _straddling(pool_extra: dict, hours: float = 48.0, checkpoint: str = "none") -> dict:
    return {"project": {"name": "t", "start": "2026-01-01"},
            "pools": [{"name": "p", "accelerator": "h100", "count": 8, "node_size": 8,
                       "price_usd_per_gpu_h": 1.0, **pool_extra},
                      {"name": "od", "accelerator": "h100", "count": 8, "node_size": 8, "price_usd_per_gpu_h": 2.0}],
            "workloads": [{"name": "w", "runs": 1, "hours_per_run": hours, "accelerators": 8}],
            "reliability": {"model": "none", "checkpoint": {"interval": checkpoint}}}


@pytest.mark.parametrize("extra", [{"pricing": "reserved", "term": 24},
                                   {"capacity_changes": [{"date": "2026-01-02", "count": 0}]}],
                         ids=["commitment-ends", "capacity-drops"])
def test_a_run_loses_its_accelerators_when_the_capacity_goes(extra):
    # 48 h run on p from t=0; p's capacity goes at t=24 h; no checkpoints: it starts again on od.
    raw = _straddling(extra)
    _, _, rep = run_fixed(raw)
    assert not capacity_violations(raw, rep.trace)
    assert rep.trace == [(0, 0, 8, "w", 0), (24.0, 0, -8, "w", 0), (24.0, 1, 8, "w", 0), (72.0, 1, -8, "w", 0)]
    (r,) = rep.finished
    assert (r.productive, r.lost, r.alloc_gpu_h) == (8 * 48.0, 8 * 24.0, 8 * 72.0)


@pytest.mark.parametrize("extra", [{"pricing": "reserved", "term": 24},
                                   {"capacity_changes": [{"date": "2026-01-02", "count": 0}]}],
                         ids=["commitment-ends", "capacity-drops"])
def test_a_run_that_ends_as_the_capacity_goes_is_not_evicted(extra):
    # was a bug: the capacity step fired first and threw the finished 24 h away
    raw = _straddling(extra, hours=24.0)
    _, _, rep = run_fixed(raw)
    (r,) = rep.finished
    assert rep.trace == [(0, 0, 8, "w", 0), (24.0, 0, -8, "w", 0)]
    assert r.end == 24.0 and r.preemptions == 0 and r.lost == 0.0


def test_pools_that_lose_capacity_together_do_not_bounce_a_run():
    # was a bug: evicted from r1, the run was placed on r2 (going at the same instant) and evicted again
    raw = {"project": {"name": "t", "start": "2026-01-01"},
           "pools": [{"name": "od", "accelerator": "h100", "count": 8, "price_usd_per_gpu_h": 2.0},
                     {"name": "r1", "accelerator": "h100", "count": 8, "pricing": "reserved", "term": 10,
                      "price_usd_per_gpu_h": 1.0},
                     {"name": "r2", "accelerator": "h100", "count": 8, "pricing": "reserved", "term": 10,
                      "price_usd_per_gpu_h": 1.0}],
           "workloads": [{"name": "w", "hours_per_run": 16, "accelerators": 8, "pools": ["r1", "r2", "od"]}],
           "reliability": {"model": "none"}}
    _, _, rep = run_fixed(raw)
    # wanted: r1 for [0, 10), evicted at 10 (no checkpoints), again on od for [10, 26)
    assert not zero_length_holds(rep.trace), rep.trace
    assert not capacity_violations(raw, rep.trace, skip_zero_length=False)
    (r,) = rep.finished
    assert r.preemptions == 1 and r.attempts == 2


@pytest.mark.parametrize("extra", [{"pricing": "reserved", "term": 24},
                                   {"capacity_changes": [{"date": "2026-01-02", "count": 0}]}],
                         ids=["commitment-ends", "capacity-drops"])
def test_no_run_is_placed_on_a_pool_at_the_instant_its_capacity_goes(extra):
    # p (8, gone at t=24 h) and od (8); three 24 h runs of 8: two run at once from t=0, the
    # third must wait and run on od from t=24 h to t=48 h
    raw = _straddling(extra, hours=24.0)
    raw["workloads"][0]["runs"] = 3
    raw["reliability"]["restart"] = 0.5
    _, _, rep = run_fixed(raw)
    assert not capacity_violations(raw, rep.trace, skip_zero_length=False)
    last = max(rep.finished, key=lambda r: r.idx)
    assert (last.pool.p.name, last.first_start, last.end, last.preemptions) == ("od", 24.0, 48.0, 0)


@SETTINGS
@given(raw=scenarios(), seed=st.integers(0, 2**16))
def test_a_queue_kept_by_kind_gives_the_same_allocations_as_one_list(raw, seed):
    """Long queues are kept by kind (workload and fallback pool); forcing that from the first run
    must change nothing: the same trace, event for event."""
    from sim import engine

    loaded, plan, rep = run(raw, seed)
    saved, engine.QUEUE_KINDS = engine.QUEUE_KINDS, 0
    try:
        by_kind = simulate(plan, seed, 0, trace=True)
    finally:
        engine.QUEUE_KINDS = saved
    assert by_kind.trace == rep.trace
    assert by_kind.summary() == rep.summary()
