"""Docs stay in step with the schema; every shipped scenario validates and estimates."""

import re

import pytest

from sim import docgen
from sim.deterministic import estimate
from sim.loader import load
from tests.conftest import ROOT, SCENARIOS

DOC = ROOT / "docs" / "scenario-format.md"


def test_generated_key_reference_is_up_to_date():
    current = DOC.read_text()
    assert docgen.render(current) == current, "run `python -m sim.docgen` and commit docs/scenario-format.md"


def test_every_schema_key_is_documented():
    text = DOC.read_text()
    for path in docgen.key_paths():
        leaf = path.rsplit(".", 1)[-1]
        assert f"| `{leaf}` |" in text, path


def test_doc_example_validates(write):
    first = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)[0]
    est = estimate(load(write(first)))
    assert {w.name for w in est.workloads} == {"sweeps", "pretrain"}


SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def test_scenarios_exist():
    assert len(SHIPPED) >= 4


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_scenario_validates_and_estimates(cli, path):
    code, out, err = cli("validate", path)
    assert code == 0 and "OK" in out, err
    loaded = load(path)
    for variant in [None, *loaded.scenario.variants]:
        est = estimate(load(path, variant=variant))
        assert est.total["cost_usd"] > 0


def test_scenario_hash_is_stable_and_sensitive(write):
    from tests.conftest import MINIMAL

    a = load(write(MINIMAL, "a.yaml")).sha256
    b = load(write("# a comment\n" + MINIMAL, "b.yaml")).sha256
    c = load(write(MINIMAL.replace("runs: 2", "runs: 3"), "c.yaml")).sha256
    assert a == b != c
