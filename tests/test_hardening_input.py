"""Hardening of the scenario-loading layer (issue 9): hostile, extreme and subtly wrong input is
refused with exit code 2 and a located message (file and YAML key), never exit 1, never a hang,
never a silently wrong number."""

import os
import string
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import loader
from sim.loader import correlation_pairs, load
from tests.conftest import MINIMAL


def bad(cli, path, *args):
    code, out, err = cli("validate", path, *args)
    assert code == 2, (out, err)
    assert "Traceback" not in err and "internal error" not in err
    assert str(path) in err
    return err


def ok(cli, path, *args):
    code, out, err = cli("validate", path, *args)
    assert code == 0, (out, err)
    return out


TWO_WORKLOADS = MINIMAL.replace("    mfu: 0.4\n", """\
    mfu: 0.4
    scaling: &s {kind: per_doubling, efficiency: 0.9}
  - name: second
    runs: 1
    params: 1B
    tokens: 20B
    accelerators: 8
    mfu: 0.4
    scaling: *s
""")


def with_pool_keys(text: str) -> str:
    return MINIMAL.replace("    price_usd_per_gpu_h: 2.0\n", "    price_usd_per_gpu_h: 2.0\n" + text)


# --- item 2: YAML anchors and aliases never share one block between two places -------------------


def test_set_on_an_aliased_block_changes_only_its_target(write):
    p = write(TWO_WORKLOADS)
    scn = load(p, sets=["workloads[0].scaling.efficiency=0.5"]).scenario
    assert [w.scaling.efficiency for w in scn.workloads] == [0.5, 0.9]
    scn = load(p, sets=["workloads[second].scaling.efficiency=0.7"]).scenario
    assert [w.scaling.efficiency for w in scn.workloads] == [0.9, 0.7]


def test_variant_set_on_an_aliased_block_changes_only_its_target(write):
    p = write(TWO_WORKLOADS + "variants:\n  slow:\n    set:\n      workloads[0].scaling.efficiency: 0.5\n")
    scn = load(p, variant="slow").scenario
    assert [w.scaling.efficiency for w in scn.workloads] == [0.5, 0.9]


def test_merge_key_blocks_are_not_shared(write):
    text = MINIMAL.replace("workloads:\n  - name: train\n", """\
workloads:
  - &base
    name: train
    scaling: {kind: per_doubling, efficiency: 0.9}
""").replace("    mfu: 0.4\n", "    mfu: 0.4\n  - <<: *base\n    name: other\n")
    p = write(text)
    scn = load(p, sets=["workloads[other].scaling.efficiency=0.6"]).scenario
    assert [w.scaling.efficiency for w in scn.workloads] == [0.9, 0.6]
    assert load(p).raw["workloads"][0]["scaling"] is not load(p).raw["workloads"][1]["scaling"]


def test_one_variant_does_not_leak_into_another(cli, write):
    """A variant's `set:` used to change the loaded data in place, so the next variant saw it too."""
    p = write(MINIMAL + """\
variants:
  broken:
    set:
      workloads[0].mfu: 1.5
  fine:
    set:
      workloads[0].runs: 3
""")
    err = bad(cli, p)
    assert "(in variant broken)" in err and "(in variant fine)" not in err
    assert load(p, variant="fine").scenario.workloads[0].mfu == 0.4


def test_python_data_with_shared_blocks_is_unshared():
    raw = yaml.safe_load(MINIMAL)
    shared = {"kind": "per_doubling", "efficiency": 0.9}
    second = dict(raw["workloads"][0], name="second", scaling=shared)
    raw["workloads"][0]["scaling"] = shared
    raw["workloads"].append(second)
    scn = loader.load_data(raw, "api", sets=["workloads[0].scaling.efficiency=0.5"]).scenario
    assert [w.scaling.efficiency for w in scn.workloads] == [0.5, 0.9]
    assert shared["efficiency"] == 0.9  # the caller's data is not changed either


def test_line_of_an_error_under_an_alias_is_where_the_alias_is_used(cli, write):
    text = TWO_WORKLOADS.replace("efficiency: 0.9", "efficiency: 2")
    p = write(text)
    err = bad(cli, p)
    lines = text.splitlines()
    alias_line = next(i for i, s in enumerate(lines, 1) if "scaling: *s" in s)
    assert f"{p}:{alias_line}: workloads[1].scaling.efficiency" in err


# --- item 4: alias bombs, FIFOs, devices, huge files ---------------------------------------------

BOMB = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))


def test_alias_bomb_is_refused_at_once(cli, write):
    assert len(BOMB) < 800
    t0 = time.monotonic()
    err = bad(cli, write(BOMB))
    assert time.monotonic() - t0 < 5
    assert "too many aliases/nodes" in err


def test_alias_bomb_of_mappings_and_in_a_set_value(cli, write):
    bomb = "m0: &m0 {k: v}\n" + "".join(
        f"m{i}: &m{i} {{{', '.join(f'k{j}: *m{i - 1}' for j in range(12))}}}\n" for i in range(1, 9))
    assert "too many aliases/nodes" in bad(cli, write(bomb))
    flow = "{" + ", ".join(BOMB.strip().splitlines()) + "}"
    err = bad(cli, write(MINIMAL), "--set", "project.description=" + flow)
    assert "--set" in err and "too many aliases/nodes" in err


def test_alias_inside_its_own_block_is_refused(cli, write):
    assert "infinite" in bad(cli, write("a: &a [1, *a]\n"))


def test_line_map_does_not_walk_aliases_again():
    text = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 6))
    t0 = time.monotonic()
    data, lines = loader.read_yaml(text, "f.yaml")  # 9**5 = 59,049 values once expanded
    assert time.monotonic() - t0 < 5
    assert len(lines) < 100 and lines[("a5", 3)] == 6
    assert data["a5"][0] is not data["a5"][1]


def test_too_many_nodes(cli, write, monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 50)
    assert "too many nodes" in bad(cli, write(MINIMAL + "x: [" + ", ".join(["1"] * 60) + "]\n"))


def test_fifo_is_refused_without_blocking(cli, tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert "named pipe" in bad(cli, fifo)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_device_is_refused(cli):
    assert "not a regular file" in bad(cli, "/dev/zero")


def test_huge_file_is_refused(cli, tmp_path):
    p = tmp_path / "big.yaml"
    with open(p, "wb") as f:
        f.truncate(loader.MAX_FILE_BYTES + 1)  # sparse: costs nothing on disk
    assert "at most 10 MB" in bad(cli, p)


# --- item 7: a reservation that ended before the project -----------------------------------------

RESERVED = "    pricing: reserved\n    term: 1 y\n    commitment_start: {}\n"


def test_commitment_ended_before_start_is_refused(cli, write):
    p = write(with_pool_keys(RESERVED.format("2024-01-01")))
    err = bad(cli, p)
    assert f"{p}:11: pools[0].commitment_start" in err and "ends on or before project.start" in err
    code, out, err = cli("run", p, "--reps", 3, "--workers", 1, "--out", p.parent / "out")
    assert code == 2 and "commitment_start" in err


def test_commitment_ending_exactly_at_start_and_in_a_variant(cli, write):
    assert "commitment_start" in bad(cli, write(with_pool_keys(RESERVED.format("2025-01-01"))))  # + 365 d
    ok(cli, write(with_pool_keys(RESERVED.format("2025-01-02"))))
    p = write(with_pool_keys(RESERVED.format("2025-06-01")) + "variants:\n  late:\n    project: {start: 2027-01-01}\n")
    assert "(in variant late)" in bad(cli, p)


# --- item 8: two capacity changes on one date ----------------------------------------------------


def test_duplicate_capacity_change_dates(cli, write):
    p = write(with_pool_keys("    capacity_changes:\n      - {date: 2026-02-01, count: 32}\n"
                             "      - {date: 2026-02-01, count: 8}\n"))
    err = bad(cli, p)
    assert f"{p}:11: pools[0].capacity_changes[1].date: same date as capacity_changes[0]" in err


def test_duplicate_capacity_change_dates_not_adjacent(cli, write):
    p = write(with_pool_keys("    capacity_changes:\n      - {date: 2026-03-01, count: 32}\n"
                             "      - {date: 2026-02-01, count: 8}\n      - {date: 2026-03-01, count: 24}\n"))
    err = bad(cli, p)
    assert "capacity_changes[2].date: same date as capacity_changes[0]" in err
    assert "capacity_changes[1]" not in err


# --- item 9: exit 1 for user input ---------------------------------------------------------------


@pytest.mark.parametrize("nest", ["[" * 10_000 + "]" * 10_000, "{a: " * 10_000 + "1" + "}" * 10_000],
                         ids=["lists", "mappings"])
def test_very_deep_nesting(cli, write, nest):
    assert "nested more than" in bad(cli, write(MINIMAL + "x: " + nest + "\n"))


def test_deep_block_nesting_and_deep_set_value(cli, write):
    block = "".join(" " * (2 * i) + f"k{i}:\n" for i in range(200)) + " " * 400 + "v\n"
    assert "nested more than" in bad(cli, write(block))
    p = write(MINIMAL)
    assert "nested more than" in bad(cli, p, "--set", "project.description=" + "[" * 5000 + "]" * 5000)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b"])
def test_control_characters(cli, tmp_path, char):
    p = tmp_path / "s.yaml"
    p.write_text(MINIMAL.replace("name: tiny", f'name: tiny\n  description: "a{char}b"'))
    err = bad(cli, p)
    assert f"{p}:3:" in err and "is not allowed in a YAML file" in err


@pytest.mark.parametrize("data", [MINIMAL.replace("tiny", "ti\xff").encode("latin-1"),
                                  MINIMAL.encode("utf-16")], ids=["latin-1", "utf-16"])
def test_not_utf8(cli, tmp_path, data):
    p = tmp_path / "s.yaml"
    p.write_bytes(data)
    assert "is not UTF-8 text" in bad(cli, p)


def test_year_9999_with_the_default_horizon(cli, write):
    p = write(MINIMAL.replace("2026-01-01", "9999-06-01"))
    assert f"{p}:3: project.start: with the default simulation.horizon" in bad(cli, p)


def test_year_9999_with_a_given_horizon(cli, write, tmp_path):
    p = write(MINIMAL.replace("2026-01-01", "9999-06-01") + "simulation:\n  horizon: 1 y\n")
    assert "simulation.horizon: project.start" in bad(cli, p)
    p = write(MINIMAL.replace("2026-01-01", "9999-06-01") + "simulation:\n  horizon: 0.4 y\n")
    code, out, err = cli("run", p, "--reps", 3, "--workers", 1, "--out", tmp_path / "out")
    assert code == 0, err


def test_dangling_symlink_and_symlink_loop(cli, tmp_path):
    link = tmp_path / "s.yaml"
    link.symlink_to(tmp_path / "gone.yaml")
    assert "symbolic link" in bad(cli, link)
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.symlink_to(b)
    b.symlink_to(a)
    assert "cannot read the file" in bad(cli, a)


def test_a_tag_that_cannot_read_its_value(cli, write):
    for text in ("x: !!int abc\n", "x: !!bool maybe\n", "x: !!timestamp soon\n", "x: !!float 1.2.3\n"):
        err = bad(cli, write(MINIMAL + text))
        assert "invalid YAML" in err or "unknown key" in err


UNCERTAIN = MINIMAL.replace("    tokens: 20B\n", "    tokens: {dist: uniform, min: 10B, max: 30B}\n").replace(
    "    mfu: 0.4\n", "    mfu: {dist: uniform, min: 0.3, max: 0.5}\n")


def test_negative_index_in_correlations(cli, write):
    p = write(UNCERTAIN + "correlations:\n  - between: ['workloads[-1].tokens', 'workloads[0].mfu']\n    rank: 0.5\n")
    ok(cli, p)
    pairs = correlation_pairs(load(p).scenario)
    assert pairs == [(("workloads", 0, "tokens"), ("workloads", 0, "mfu"), 0.5)]


def test_negative_index_same_input_and_out_of_range(cli, write):
    p = write(UNCERTAIN + "correlations:\n  - between: ['workloads[-1].tokens', 'workloads[0].tokens']\n"
                          "    rank: 0.5\n")
    assert "cannot be correlated with itself" in bad(cli, p)
    p = write(UNCERTAIN + "correlations:\n  - between: ['workloads[-2].tokens', 'workloads[0].mfu']\n"
                          "    rank: 0.5\n")
    assert "correlations[0].between[0]: workloads[-2].tokens: index [-2] is out of range" in bad(cli, p)
    scn = load(write(UNCERTAIN), sets=["workloads[-1].mfu=0.3"]).scenario
    assert scn.workloads[0].mfu == 0.3


# --- item 10: size limits ------------------------------------------------------------------------


def test_a_billion_runs(cli, write):
    p = write(MINIMAL.replace("runs: 2", "runs: 1e9"))
    err = bad(cli, p)
    assert f"{p}:11: workloads[0].runs" in err and "at most 1,000,000" in err


def test_runs_summed_over_workloads_and_distribution_upper_bound(cli, write):
    two = TWO_WORKLOADS.replace("runs: 2", "runs: 600000").replace("runs: 1", "runs: 600k")
    assert "1,200,000 runs in all" in bad(cli, write(two))
    dist = MINIMAL.replace("runs: 2", "runs: {dist: uniform, min: 1, max: 2M}")
    assert "(at its P99.9)" in bad(cli, write(dist))
    ok(cli, write(MINIMAL.replace("runs: 2", "runs: 1M")))


# --- item 12: numbers that overflow --------------------------------------------------------------


def test_params_1e308(cli, write):
    p = write(MINIMAL.replace("params: 1B", "params: 1e308"))
    err = bad(cli, p)
    assert f"{p}:12: workloads[0].params" in err and "too large to compute with" in err


@pytest.mark.parametrize("old,new,key", [
    ("params: 1B", "params: .inf", "workloads[0].params"),
    ("params: 1B", "params: .nan", "workloads[0].params"),
    ("tokens: 20B", "tokens: 1e400", "workloads[0].tokens"),
    ("    params: 1B\n    tokens: 20B\n", "    hours_per_run: 1e299\n", "workloads[0].hours_per_run"),
    ("tokens: 20B", "tokens: {dist: lognormal, median: 20B, sigma: 400}", "workloads[0].tokens"),
], ids=["inf", "nan", "1e400", "hours", "lognormal"])
def test_other_overflowing_numbers(cli, write, old, new, key):
    assert key in bad(cli, write(MINIMAL.replace(old, new)))


def test_price_curve_that_overflows_and_a_huge_restart(cli, write):
    curve = with_pool_keys("    price_curve: {kind: exponential, annual_decline: 0.99, reference: 9000-01-01}\n")
    assert "pools[0].price_curve" in bad(cli, write(curve))
    restart = MINIMAL + "reliability:\n  restart: {dist: lognormal, median: 1, sigma: 400}\n"
    assert "reliability.restart: this distribution cannot be computed with" in bad(cli, write(restart))


def test_run_length_spread_that_overflows(cli, write):
    p = write(MINIMAL + "    run_length: {kind: lognormal, sigma: 250}\n")
    assert "workloads[0].run_length.sigma: the longest runs" in bad(cli, p)
    ok(cli, write(MINIMAL + "    run_length: {kind: lognormal, sigma: 1}\n"))


def test_huge_whole_numbers_for_any_numeric_key(cli, write):
    huge = "1" + "0" * 400  # an int too large for a float
    for old, new in (("runs: 2", f"runs: {huge}"), ("count: 16", f"count: {huge}"),
                     ("mfu: 0.4", f"mfu: 0.4\nsimulation:\n  horizon: {huge}")):
        assert "too large" in bad(cli, write(MINIMAL.replace(old, new)))


def test_shipped_scenarios_still_validate(cli):
    from tests.conftest import SCENARIOS

    for f in sorted(SCENARIOS.glob("*.yaml")):
        ok(cli, f)


# --- fuzz: mutated scenarios are exit 0 or 2, never 1 --------------------------------------------

_BASE = yaml.safe_load(MINIMAL)

numbers = st.one_of(
    st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 8, 0.4, 1e308, -1e308, 5e-324, 2**63, 10**400]),
)
readable = st.sampled_from(["110M", "2T", "1e9", "20 min", "3 d", "1 y", "$2.5k", "40%", "auto", "none", ".inf",
                            "-.nan", "1e999", "-5", "0", "~", "", "9999-12-31", "0001-01-01", "2026-13-01",
                            "workloads[-1].tokens", "h100", "reserved", "spot", "per_doubling", "poisson"])
dates = st.dates().map(lambda d: d.isoformat())
dists = st.fixed_dictionaries({"dist": st.sampled_from(["uniform", "lognormal", "pert", "poisson", "normal", "x"])},
                              optional={"min": numbers, "max": numbers, "mode": numbers, "mean": numbers,
                                        "sd": numbers, "median": numbers, "sigma": numbers, "p5": numbers,
                                        "p95": numbers})
anything = st.recursive(st.one_of(numbers, readable, st.text(string.printable, max_size=8), st.booleans(),
                                  st.none()),
                        lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                st.dictionaries(st.sampled_from(["kind", "date", "count", "x"]),
                                                                inner, max_size=3)),
                        max_leaves=6)
values = st.one_of(numbers, readable, dates, dists, anything)
KEYS = ["project", "pools", "workloads", "project.start", "project.deadline", "project.budget_usd",
        "pools[0].count", "pools[0].node_size", "pools[0].price_usd_per_gpu_h", "pools[0].pricing",
        "pools[0].capacity_changes", "pools[0].commitment_start", "pools[0].term", "pools[0].price_curve",
        "pools[0].preemption", "workloads[0].runs", "workloads[0].params", "workloads[0].tokens", "workloads[0].mfu",
        "workloads[0].accelerators", "workloads[0].scaling", "workloads[0].after", "workloads[0].earliest_start",
        "workloads[0].run_length", "workloads[0].arrivals", "workloads[0].divergence", "simulation.horizon",
        "simulation.replications", "correlations", "variants", "reliability.restart", "reliability.checkpoint",
        "accelerators"]


def _mutate(data, path, draw) -> None:
    parent = data
    try:
        for seg in path[:-1]:
            parent = parent.setdefault(seg, {}) if isinstance(parent, dict) else parent[seg]
        if draw(st.integers(0, 3)) == 0 and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(values)
    except (KeyError, IndexError, TypeError, AttributeError):
        pass


@st.composite
def documents(draw):
    """MINIMAL with a few keys deleted or replaced by random values, maybe with blocks shared through
    anchors and aliases, deep nesting or stray characters."""
    data = yaml.safe_load(MINIMAL)
    if draw(st.booleans()):  # a second workload sharing blocks with the first: yaml.dump writes &id/*id
        shared = {"kind": "per_doubling", "efficiency": draw(values)}
        data["workloads"][0]["scaling"] = shared
        data["workloads"].append(dict(data["workloads"][0], name="second", scaling=shared))
    for _ in range(draw(st.integers(0, 4))):
        _mutate(data, loader.parse_path(draw(st.sampled_from(KEYS))), draw)
    text = yaml.safe_dump(data, default_flow_style=draw(st.sampled_from([False, None])), allow_unicode=True)
    kind = draw(st.sampled_from(["plain", "plain", "alias", "nest", "bytes"]))
    if kind == "alias" and "\nworkloads:" in text:
        if draw(st.booleans()):
            text = text.replace("\nworkloads:", "\nx: &a [1, *a]\nworkloads:", 1)
        else:
            text = text.replace("\nworkloads:", "\nworkloads: &w", 1) + "variants: {v: {workloads: *w}}\n"
    elif kind == "nest":
        depth = draw(st.integers(1, 400))
        text = text.replace("name: tiny", "name: tiny\n  description: " + "[" * depth + "]" * depth, 1)
    elif kind == "bytes":
        pos = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from(["\x00", "\t", "&", "*", "!!int ", "<<: ", "\ufeff", "%", "\x85"]))
        text = text[:pos] + junk + text[pos:]
    return text


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=documents())
def test_fuzz_validate_never_exits_1(cli, tmp_path, doc):
    p = tmp_path / "fuzz.yaml"
    p.write_text(doc, encoding="utf-8")
    code, out, err = cli("validate", p)
    assert code in (0, 2), (doc, out, err)
    assert "Traceback" not in err and "internal error" not in err
    if code == 2:
        assert str(p) in err
