"""Loader structure: long `after` chains validate without hitting Python's recursion limit, and
dependency cycles are still found (and reported the same way) at the end of a long chain."""

import random

import pytest

from sim.loader import ScenarioError, _find_cycle, load_data

N = 1500


def chain(n: int = N) -> dict:
    """n workloads, workload i waiting for w{i+1} (reverse order), the last waiting for none."""
    workloads = [{"name": f"w{i}", "params": "1B", "tokens": "20B", "accelerators": 8, "mfu": 0.4,
                  "after": [f"w{i + 1}"] if i + 1 < n else []} for i in range(n)]
    return {
        "project": {"name": "chain", "start": "2026-01-01"},
        "pools": [{"name": "gpus", "accelerator": "h100", "count": 16, "price_usd_per_gpu_h": 2.0}],
        "workloads": workloads,
    }


def test_long_reverse_chain_validates():
    loaded = load_data(chain(), "test.yaml")
    assert len(loaded.scenario.workloads) == N
    assert loaded.scenario.workloads[0].after == ["w1"]
    assert loaded.scenario.workloads[-1].after == []


def test_cycle_at_the_end_of_a_long_chain_is_reported():
    raw = chain()
    raw["workloads"][-1]["after"] = [f"w{N - 3}"]  # w1497 -> w1498 -> w1499 -> w1497
    with pytest.raises(ScenarioError) as e:
        load_data(raw, "test.yaml")
    issues = [i for i in e.value.issues if "dependency cycle:" in i.message]
    assert len(issues) == 1
    a, b, c = (f"w{N - 3}", f"w{N - 2}", f"w{N - 1}")
    assert issues[0].path == ("workloads", N - 3, "after")
    assert f"dependency cycle: {a} -> {b} -> {c} -> {a} (no workload in it could ever start)" in issues[0].message
    assert f"test.yaml: workloads[{N - 3}].after: dependency cycle: {a} -> {b} -> {c} -> {a}" in str(e.value)


def _find_cycle_recursive(graph):
    """The former recursive search: the iterative one must return exactly what it did."""
    color, stack = {}, []

    def visit(n):
        color[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if color.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if color.get(m) is None:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        color[n] = 2
        return None

    for n in graph:
        if color.get(n) is None:
            found = visit(n)
            if found:
                return found
    return None


def test_iterative_cycle_search_matches_the_recursive_one():
    rng = random.Random(7)
    for _ in range(2000):
        n = rng.randint(1, 8)
        nodes = [f"n{k}" for k in range(n)]
        rng.shuffle(nodes)
        p = rng.random() * 0.4
        graph = {a: [b for b in nodes if b != a and rng.random() < p] for a in nodes}
        assert _find_cycle(graph) == _find_cycle_recursive(graph), graph
    assert _find_cycle({}) is None
    assert _find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert _find_cycle({"x": [], "a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
