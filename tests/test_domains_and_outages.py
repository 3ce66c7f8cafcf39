"""Correlated failures (failure domains: a rack or switch of several nodes failing together) and
availability outages (capacity that cannot be had for a while), each against a closed form or an
exact trace."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import Replication, SimulationError, simulate
from sim.plan import interruption_rate_per_h
from tests.test_engine import plan_of, pool, scenario, sem

DOMAINS = {"nodes": 4, "rate_per_h": 0.01}


def domain_plan(gpus: int = 64, count: int = 64, hours: float = 100.0, **rel):
    return plan_of(scenario([pool(count=count, **rel.pop("pool_kw", {}))],
                            [{"name": "w", "hours_per_run": hours, "accelerators": gpus,
                              "on_node_loss": rel.pop("on_node_loss", "wait")}],
                            {"failure_domains": DOMAINS, "checkpoint": {"interval": "auto", "write": 0}, **rel}))


def test_a_run_spans_its_packed_domains_and_their_rate_shapes_auto_checkpoints():
    # 64 GPUs = 8 nodes of 8 = 2 domains of 4 nodes; 8 GPUs = 1 node, still in one domain
    for gpus, spanned in ((64, 2), (8, 1), (40, 2)):
        p = domain_plan(gpus=gpus)
        w = p.workloads[0]
        assert w.domain_rate_per_h_on[0] == pytest.approx(spanned * 0.01)
        assert interruption_rate_per_h(w, p.pools[0]) == pytest.approx(spanned * 0.01)
    # `auto` checkpoints see the domain failures as they see any other interruption
    with_domains = plan_of(scenario([pool(count=64)], [{"name": "w", "hours_per_run": 100, "accelerators": 64}],
                                    {"failure_domains": DOMAINS, "checkpoint": {"interval": "auto", "write": 0.1}}))
    same_rate = plan_of(scenario([pool(count=64)], [{"name": "w", "hours_per_run": 100, "accelerators": 64}],
                                 {"job_failure_rate_per_h": 0.02, "checkpoint": {"interval": "auto", "write": 0.1}}))
    tau = same_rate.workloads[0].ckpt_interval_h_on[0]
    assert with_domains.workloads[0].ckpt_interval_h_on[0] == pytest.approx(tau)
    # reliability.model none turns them off with every other failure
    off = plan_of(scenario([pool(count=64)], [{"name": "w", "hours_per_run": 1, "accelerators": 64}],
                           {"model": "none", "failure_domains": DOMAINS}))
    assert off.workloads[0].domain_nodes == 0 and off.workloads[0].domain_rate_per_h_on[0] == 0.0


@pytest.mark.slow
def test_domain_failures_are_counted_apart_at_their_poisson_rate():
    # continuous free checkpoints, no restart or repair: 100 h of work, 2 domains at 0.01 an hour
    p = domain_plan()
    rows = [simulate(p, 4, k).run_records()[0] for k in range(2000)]
    n = np.array([r.domain_failures for r in rows], dtype=float)
    assert abs(n.mean() - 2.0) < 3 * sem(n)
    assert all(r.failures == 0 and r.job_failures == 0 for r in rows)


def test_a_domain_failure_takes_its_nodes_together_spares_first():
    rep = Replication(domain_plan(repair="10 h", pool_kw={"spares": 1}), 0, 0)
    p = rep.pools[0]
    assert rep._nodes_failed(p, 4) is False  # one spare for four nodes
    assert p.spares_free == 0 and p.free == 64 - 3 * 8 and list(p.repair_queue) == []
    assert p.repairing == 1  # the domain is one repair
    rep.env.run(until=10.5)
    assert p.free == 64 and p.spares_free == 1 and p.repairing == 0
    assert rep._nodes_failed(p, 1) is True and p.spares_free == 0 and p.free == 64  # a spare covers one


def test_a_domain_failure_under_a_one_node_run_waits_for_that_node_only():
    # an 8-GPU run on an 8-GPU pool: a domain failure takes its one node; it waits the 50 h repair
    p = domain_plan(gpus=8, count=8, repair="50 h")
    seen = 0
    for k in range(60):
        s = simulate(p, 1, k).summary()
        if s["domain_failures"] == 1:
            seen += 1
            assert s["repair_wait_gpu_hours"] == pytest.approx(8 * 50)
            assert s["makespan_days"] * 24 == pytest.approx(100 + 50)
        assert s["gpu_hours"] == pytest.approx(s["productive_gpu_hours"] + s["lost_gpu_hours"]
                                               + s["overhead_gpu_hours"])
    assert seen > 10


# --------------------------------------------------------------------------------------------
# availability outages


def outage_plan(fraction=0.8, outage="2 h", runs=400, hours=0.25, fallback=False):
    pools = [pool(name="spot", count=8, pricing="spot", availability={"fraction": fraction, "mean_outage": outage})]
    use = ["spot"]
    if fallback:
        pools.append(pool(name="od", count=8))
        use.append("od")
    return plan_of(scenario(pools, [{"name": "w", "runs": runs, "hours_per_run": hours, "accelerators": 8,
                                     "pools": use, "max_concurrent": 1}]))


def outage_windows(rep, pool: int = 0) -> list[tuple[float, float]]:
    return [(a, b) for i, a, b in rep.outages if i == pool]


def test_nothing_starts_on_a_pool_in_an_outage_and_runs_on_it_go_on():
    p = outage_plan()
    for k in range(5):
        rep = simulate(p, 2, k, trace=True)
        wins = outage_windows(rep)
        assert wins  # 100 h of work at 80% availability: outages happen
        takes = [t for t, i, n, *_ in rep.trace if n > 0 and i == 0]
        assert not [t for t in takes for a, b in wins if a < t < b]
        # every run finished once; one that was running when an outage began ran through it
        assert len(rep.finished) == 400 and all(r.preemptions == 0 for r in rep.finished)


@pytest.mark.slow
def test_the_pool_is_out_for_its_share_of_the_time_and_the_work_waits():
    # 100 h of work in 0.25 h runs, one at a time: the pool is up 80% of the time; runs start only
    # while it is up, and one started just before an outage runs on (at most 0.25 h into it)
    p = outage_plan()
    out_share, spill, span = [], [], []
    for k in range(300):
        rep = simulate(p, 3, k, trace=True)
        mk = rep.makespan_h()
        wins = [(a, min(b, mk)) for a, b in outage_windows(rep) if a < mk]
        down = sum(b - a for a, b in wins)
        out_share.append(down / mk)
        spill.append(len(wins))
        span.append(mk)
    share = np.array(out_share)
    # the share of time out, weighted by the span, estimates 1 - a (renewal-reward); runs that
    # started before an outage keep working in it, so the span is at most W / a + 0.25 h per outage
    assert abs(np.sum(share * span) / np.sum(span) - 0.2) < 3 * sem(share) + 0.01
    assert np.mean(span) <= 100 / 0.8 + 0.25 * np.mean(spill) + 3 * sem(span)
    assert np.mean(span) >= 100 + 3 * sem(span)


def test_queued_runs_fall_back_to_another_pool_during_an_outage():
    p = outage_plan(fallback=True, runs=400)
    on_od = []
    for k in range(20):
        rep = simulate(p, 5, k, trace=True)
        wins = outage_windows(rep)
        for t, i, n, *_ in rep.trace:
            if n > 0 and i == 1:  # a start on the on-demand pool happens only while the spot pool is out
                assert any(a <= t <= b for a, b in wins)
        on_od.append(sum(r.pool.p.name == "od" for r in rep.finished) / 400)
    assert 0.05 < np.mean(on_od) < 0.4  # about the 20% of the time the spot pool is out


def test_endless_outages_stop_at_the_event_guard_with_a_clear_message():
    # the only usable pool's capacity goes for good; the spot pool's outages would go on forever
    loaded = scenario([pool(name="od", count=8, capacity_changes=[{"date": "2026-01-01", "count": 0}]),
                       pool(name="spot", count=8, pricing="spot",
                            availability={"fraction": 0.5, "mean_outage": "1 min"})],
                      [{"name": "w", "hours_per_run": 1, "accelerators": 8, "pools": ["od"]}])
    p = plan_of(loaded)
    p.max_events = 20_000
    with pytest.raises(SimulationError, match="availability outages of pool spot"):
        simulate(p, 0, 0)


def test_availability_is_for_rented_capacity_only(cli, write):
    path = write("""\
        project: {name: t, start: 2026-01-01}
        pools:
          - {name: r, accelerator: h100, count: 8, pricing: reserved, price_usd_per_gpu_h: 2,
             availability: {fraction: 0.9, mean_outage: 6 h}}
        workloads:
          - {name: w, hours_per_run: 1, accelerators: 8}
        """)
    code, out, err = cli("validate", path)
    assert code == 2, err
    assert f"{path}:3: pools[0]: availability applies to on_demand and spot pools only" in err
    assert "Traceback" not in err
