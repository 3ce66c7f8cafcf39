"""Random price paths (price_curve kind random_walk: geometric Brownian motion with jumps), the fit
of their defaults to the catalog (sim.pricefit), and on-demand capacity that is not infinite (a
pool's `obtain:` quota and wait)."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from sim import api, pricefit
from sim import rng as rngmod
from sim.catalog import Catalog, Price
from sim.engine import simulate
from sim.montecarlo import Replicator
from sim.plan import build_plan, capacity_assumptions, drawn_prices
from sim.pricing import ExponentialPrice, RandomWalkPrice, make_curve
from sim.schema import RandomWalkCurve, nominal_scenario, price_path_defaults
from sim.units import HOURS_PER_YEAR
from tests.test_engine import plan_of, pool, scenario

START = date(2026, 1, 1)


def walk(decline=0.3, vol=0.5, step=730.0, jumps=(), market="h100") -> RandomWalkPrice:
    spec = RandomWalkCurve(kind="random_walk", annual_decline=decline, volatility=vol, step=step,
                           jumps=[{"date": d, "change": c, "probability": p} for d, c, p in jumps])
    return make_curve(spec, 2.0, START, market)


# --- the price path ------------------------------------------------------------------------------
def test_expected_price_is_the_closed_form_within_3_standard_errors():
    # E[P_t] = P0 (1 - d)^(t / 1 y) x (1 + p c) for a jump before t; t on a move and between two
    c = walk(jumps=[(date(2026, 6, 1), -0.4, 0.5)])
    for t in (HOURS_PER_YEAR, 5000.0):
        x = np.array([c.draw(3, k).at(t) for k in range(4000)])
        expect = 2.0 * 0.7 ** (t / HOURS_PER_YEAR) * (1 - 0.5 * 0.4)
        assert abs(x.mean() - expect) < 3 * x.std(ddof=1) / math.sqrt(len(x))
        assert c.at(t) == pytest.approx(expect, rel=1e-12)  # the curve itself is the expected price
    # the log price's spread after a year is the volatility (no jump here)
    logs = np.log([walk().draw(4, k).at(HOURS_PER_YEAR) for k in range(4000)])
    assert logs.std(ddof=1) == pytest.approx(0.5, rel=0.05)


def test_zero_volatility_is_the_exponential_decline_exactly():
    path = walk(vol=0.0).draw(1, 7)
    exp = ExponentialPrice(2.0, 0.3)
    for t0, t1 in ((0.0, 10.0), (100.0, 8000.0), (729.0, 731.0), (0.0, 3 * HOURS_PER_YEAR)):
        assert path.at(t1) == pytest.approx(exp.at(t1), rel=1e-12)
        assert path.integral(t0, t1) == pytest.approx(exp.integral(t0, t1), rel=1e-12)
    # and through the engine: a project billed on the walk costs what it costs on the exponential curve
    costs = []
    for curve in ({"kind": "random_walk", "annual_decline": 0.3, "volatility": 0},
                  {"kind": "exponential", "annual_decline": 0.3}):
        loaded = scenario([pool(count=8, price_curve=curve)], [{"name": "w", "hours_per_run": 500, "runs": 4,
                                                                 "accelerators": 8}])
        costs.append(simulate(plan_of(loaded), 0, 2).summary()["cost_usd"])
    assert costs[0] == pytest.approx(costs[1], rel=1e-12)


def test_a_replication_path_is_reproducible_by_seed_and_shared_by_its_market():
    c = walk()
    t = np.linspace(0, 3 * HOURS_PER_YEAR, 50)
    a, b = c.draw(5, 11), c.draw(5, 11)
    assert [a.at(x) for x in t] == [b.at(x) for x in t]
    assert [a.at(x) for x in t] != [c.draw(5, 12).at(x) for x in t] != [c.draw(6, 11).at(x) for x in t]
    # asked in another order, or further first, the path is the same (built block by block)
    late = c.draw(5, 11)
    late.at(10 * HOURS_PER_YEAR)
    assert [late.at(x) for x in t] == [a.at(x) for x in t]
    # another pool of the same market, with another volatility: the same moves, scaled
    twin = walk(vol=0.25).draw(5, 11)
    z_a = np.diff(np.log([a.at(730.0 * k) for k in range(1, 13)]))
    z_t = np.diff(np.log([twin.at(730.0 * k) for k in range(1, 13)]))
    mu = math.log(0.7) / 12
    assert np.allclose((z_a - mu + 0.5 ** 2 / 24) / 0.5, (z_t - mu + 0.25 ** 2 / 24) / 0.25)
    # the stream is its own: nothing else the replication draws changes
    assert "price_paths" in rngmod.STREAMS


def rw_scenario(vol, failures=True, **curve):
    return scenario([pool(count=16, price_curve={"kind": "random_walk", "volatility": vol, **curve})],
                    [{"name": "w", "hours_per_run": 300, "runs": 12, "accelerators": 8}],
                    {"failure_rate_per_gpu_h": 2e-4, "checkpoint": {"interval": "1 h", "write": 0}}
                    if failures else None)


def test_cost_spread_grows_with_volatility_and_the_other_draws_do_not_move():
    def run(loaded):
        plan = plan_of(loaded)
        return [simulate(plan, 9, k).summary() for k in range(150)]

    flat = run(scenario([pool(count=16)], [{"name": "w", "hours_per_run": 300, "runs": 12, "accelerators": 8}],
                        {"failure_rate_per_gpu_h": 2e-4, "checkpoint": {"interval": "1 h", "write": 0}}))
    sds = []
    for vol in (0.1, 0.4, 0.8):
        rows = run(rw_scenario(vol))
        # prices do not move the schedule: failures and makespans are those of the constant price
        assert [r["failures"] for r in rows] == [r["failures"] for r in flat]
        assert [r["makespan_days"] for r in rows] == [r["makespan_days"] for r in flat]
        sds.append(np.std([r["cost_usd"] for r in rows], ddof=1))
    assert sds[0] < sds[1] < sds[2]


def test_nominal_case_takes_the_median_path():
    loaded = rw_scenario(0.5, failures=False, annual_decline=0.2)
    plan = drawn_prices(build_plan(nominal_scenario(loaded.scenario), loaded.catalog), 0, 0, median=True)
    t = 5 * 730.0  # after 5 monthly moves, each at its median exp(-sigma^2 step / 2)
    sd2 = 0.5 ** 2 / 12
    assert plan.pools[0].curve.at(t) == pytest.approx(2.0 * 0.8 ** (t / HOURS_PER_YEAR) * math.exp(-5 * sd2 / 2))
    assert not plan.random_prices and plan_of(loaded).random_prices


def test_sensitivity_lists_the_price_drift_and_volatility(cli, write, tmp_path):
    f = write("""\
        project: {name: rw, start: 2026-01-01}
        pools:
          - name: od
            accelerator: h100
            count: 16
            price_usd_per_gpu_h: 2.0
            price_curve: {kind: random_walk, annual_decline: {dist: uniform, min: 0, max: 0.5},
                          volatility: {dist: uniform, min: 0.1, max: 1.0}}
        workloads:
          - {name: w, runs: 6, accelerators: 8, hours_per_run: 2000}
        """)
    code, printed, err = cli("sensitivity", f, "--reps", "2", "--n", "4", "--workers", "1", "--no-priors",
                             "--out", tmp_path / "s")
    assert code == 0, err
    assert "pools[od].price_curve.annual_decline" in printed and "pools[od].price_curve.volatility" in printed
    df = pd.read_csv(tmp_path / "s" / "sensitivity.csv").set_index("input")
    # the drift moves the mean cost; it is the first input of the tornado
    assert df.index[0] == "pools[od].price_curve.annual_decline"


def test_bad_price_path_keys_are_located(cli, write):
    f = write("""\
        project: {name: rw, start: 2026-01-01}
        pools:
          - {name: od, accelerator: h100, count: 8, price_usd_per_gpu_h: 2,
             price_curve: {kind: random_walk, jumps: [{date: 2026-06-01, change: -1.5}]}}
        workloads:
          - {name: w, runs: 1, accelerators: 8, hours_per_run: 10}
        """)
    code, _o, err = cli("estimate", f, "--no-priors")
    assert code == 2 and "pools[0].price_curve" in err and "change" in err and "Traceback" not in err


# --- the fit of the defaults ----------------------------------------------------------------------
def price(acc, d, usd, provider="x", tier="on_demand"):
    return Price(acc, provider, tier, usd, "", d, "test")


def test_fit_is_maximum_likelihood_on_the_dated_changes():
    cat = Catalog({}, (
        price("a", date(2020, 1, 1), 1.0), price("a", date(2021, 1, 1), math.exp(0.1)),
        price("a", date(2021, 1, 10), 9.0),  # 9 days after: skipped (another region, not a market move)
        price("b", date(2020, 1, 1), 1.0), price("b", date(2021, 1, 1), math.exp(-0.3)),
        price("b", date(2021, 1, 1), math.exp(-0.3)), price("c", date(2020, 1, 1), 5.0, tier="reserved_1y"),
        price("c", date(2022, 1, 1), 1.0, tier="reserved_1y")))  # reserved: not a market price path
    changes = pricefit.price_changes(cat)
    assert [c.series for c in changes] == ["a/x/on_demand", "b/x/on_demand"]
    f = pricefit.fit(changes)
    years = (date(2021, 1, 1) - date(2020, 1, 1)).days / 365.25
    a = -0.2 / (2 * years)
    assert f.log_drift == pytest.approx(a)
    assert f.volatility == pytest.approx(math.sqrt(((0.1 - a * years) ** 2 + (-0.3 - a * years) ** 2) / years))
    assert f.annual_decline == pytest.approx(-math.expm1(a + f.volatility ** 2 / 2))
    with pytest.raises(ValueError, match="at least 2"):
        pricefit.fit(changes[:1])


def test_shipped_defaults_are_the_fit_of_the_catalog_as_it_is():
    """Fails when sim/data/prices.yaml changed and the defaults were not fitted again: run
    `python -m sim.pricefit --write`."""
    shipped = price_path_defaults()
    assert {k: shipped[k] for k in ("annual_decline", "volatility")} == pricefit.fit_catalog().defaults(), (
        "sim/data/price_paths.yaml is stale: run python -m sim.pricefit --write")
    assert RandomWalkCurve(kind="random_walk").volatility == shipped["volatility"]


# --- on-demand capacity that is not infinite --------------------------------------------------------
def test_an_obtain_wait_delays_the_start_and_the_bill_exactly():
    # one run of 16 accelerators on a pool whose requests of 8 are filled within 10 h half the time:
    # mean wait 10 / ln 2 h for 8, twice that for 16 (growth 1); billed from when they come
    loaded = scenario([pool(count=16, obtain={"p_within": 0.5, "wait": "10 h", "accelerators": 8})],
                      [{"name": "w", "hours_per_run": 100, "runs": 1, "accelerators": 16}])
    rep = simulate(plan_of(loaded), 3, 0, trace=True)
    wait = rngmod.generator(3, 0, "obtain").standard_exponential(256)[0] * 10 / math.log(2) * 2
    assert rep.trace == [(pytest.approx(wait, rel=1e-12), 0, 16, "w", 0),
                         (pytest.approx(wait + 100, rel=1e-12), 0, -16, "w", 0)]
    s = rep.summary()
    assert s["cost_usd"] == pytest.approx(16 * 2.0 * 100, rel=1e-12)
    assert s["mean_queue_wait_h"] == pytest.approx(wait, rel=1e-12)


def test_quota_caps_the_pool_and_unmodelled_pools_are_an_assumption_shown(cli, write, tmp_path):
    text = """\
        project: {{name: ob, start: 2026-01-01}}
        pools:
          - {{name: od, accelerator: h100, count: 32, price_usd_per_gpu_h: 2{obtain}}}
        workloads:
          - {{name: w, runs: 4, accelerators: 8, hours_per_run: 24}}
        """
    code, printed, err = cli("run", write(text.format(obtain=""), "none.yaml"), "--reps", "2", "--workers", "1",
                             "--no-priors", "--out", tmp_path / "none")
    assert code == 0, err
    assert "assumption: pool od: 32 h100 on demand assumed obtainable at once" in printed
    assert "Assumed, not given" in (tmp_path / "none" / "report.md").read_text()
    days = {}
    for name, obtain in (("none", ""), ("quota", ", obtain: {quota: 16}")):
        loaded = api.load(write(text.format(obtain=obtain), f"{name}.yaml"), sets=["simulation.priors=off"])
        days[name] = simulate(plan_of(loaded), 0, 0).summary()["makespan_days"]
        assert bool(capacity_assumptions(loaded.scenario)) == (name == "none")
    assert days == {"none": 1.0, "quota": 2.0}  # 4 runs of 8 at once, or two by two
    code, printed, _e = cli("estimate", write(text.format(obtain=""), "e.yaml"), "--no-priors")
    assert code == 0 and "assumption: pool od" in printed
    # a fixed quota below a run: refused at load, located; p_within without a wait: refused too
    code, _o, err = cli("estimate", write(text.format(obtain=", obtain: {quota: 4}"), "q.yaml"), "--no-priors")
    assert code == 2 and "workloads[0].accelerators: must be <= 4" in err and "Traceback" not in err
    code, _o, err = cli("estimate", write(text.format(obtain=", obtain: {p_within: 0.9}"), "p.yaml"), "--no-priors")
    assert code == 2 and "pools[0].obtain" in err and "p_within and wait together" in err
    code, _o, err = cli("estimate", write(text.format(obtain=", pricing: reserved, obtain: {quota: 8}"), "r.yaml"),
                        "--no-priors")
    assert code == 2 and "obtain applies to on_demand and spot pools only" in err


def test_compared_variants_share_the_price_path(write):
    # a variant at twice the price, same market: every replication costs exactly twice as much
    # (common random numbers); a variant with another market draws another path
    f = write("""\
        project: {name: crn, start: 2026-01-01}
        pools:
          - {name: od, accelerator: h100, count: 8, price_usd_per_gpu_h: 2,
             price_curve: {kind: random_walk, volatility: 0.5}}
        workloads:
          - {name: w, runs: 3, accelerators: 8, hours_per_run: 2000}
        variants:
          double: {pools: [{name: od, accelerator: h100, count: 8, price_usd_per_gpu_h: 4,
                            price_curve: {kind: random_walk, volatility: 0.5}}]}
          other: {pools: [{name: od, accelerator: h100, count: 8, price_usd_per_gpu_h: 2,
                           price_curve: {kind: random_walk, volatility: 0.5, market: elsewhere}}]}
        """)
    cost = {}
    for v in ("base", "double", "other"):  # as sim compare runs them: one seed, replication by replication
        rep = Replicator(api.load(f, variant=None if v == "base" else v, sets=["simulation.priors=off"]), 5)
        cost[v] = np.array([rep.one(k, strict=True).row["cost_usd"] for k in range(6)])
    assert np.allclose(cost["double"], 2 * cost["base"], rtol=1e-12)
    assert not np.allclose(cost["other"], cost["base"], rtol=1e-3)
