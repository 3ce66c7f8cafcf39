"""Validation hints through the CLI: a range written as one string gets the distribution to write; a
top-level correlation that names what a variant drops gets `correlations: []`; a deadline may be a
duration after the start."""

from __future__ import annotations

import json

import pytest

from tests.conftest import MINIMAL


@pytest.mark.parametrize(("text", "written"), [
    ("mfu: 30-50%", "{dist: uniform, min: 30%, max: 50%}"),
    ("mfu: 0.3 to 0.5", "{dist: uniform, min: 0.3, max: 0.5}"),
    ("tokens: 10B-30B", "{dist: uniform, min: 10B, max: 30B}"),
])
def test_a_range_in_one_string_gets_the_distribution_to_write(cli, write, text, written):
    key = text.split(":")[0]
    path = write(MINIMAL.replace(f"{key}: {'0.4' if key == 'mfu' else '20B'}", text))
    code, _o, err = cli("validate", path)
    assert code == 2 and "Traceback" not in err
    assert f"workloads[0].{key}: " in err and f"for a range, write {written}" in err, err
    fixed = write(MINIMAL.replace(f"{key}: {'0.4' if key == 'mfu' else '20B'}", f"{key}: {written}"), "fixed.yaml")
    assert cli("validate", fixed)[0] == 0  # the hint is valid as written


def test_a_range_is_not_suggested_where_there_is_none(cli, write):
    code, _o, err = cli("validate", write(MINIMAL.replace("mfu: 0.4", "mfu: -5")))
    assert code == 2 and "for a range" not in err


DROPPING = MINIMAL.replace("tokens: 20B", "tokens: {dist: uniform, min: 10B, max: 30B}").replace(
    "    mfu: 0.4\n", "    mfu: {dist: uniform, min: 0.3, max: 0.5}\n") + """\
  - {name: extra, runs: 1, params: 1B, tokens: {dist: uniform, min: 10B, max: 30B}, accelerators: 8, mfu: 0.4}
correlations:
  - {between: ["workloads[extra].tokens", "workloads[train].tokens"], rank: 0.5}
variants:
  lean:
    workloads:
      - {name: train, runs: 2, params: 1B, tokens: 20B, accelerators: 8, mfu: 0.4}
"""


def test_a_correlation_naming_what_a_variant_drops_gets_a_hint(cli, write, tmp_path):
    path = write(DROPPING)
    hint = "set `correlations: []` in variant lean"
    code, _o, err = cli("validate", path)
    assert code == 2 and "variants.lean.correlations[0].between[0]" in err and hint in err, err
    code, _o, err = cli("run", path, "--variant", "lean", "--reps", "2", "--out", tmp_path / "r")
    assert code == 2 and "correlations[0].between[0]: workloads[extra].tokens" in err and hint in err, err
    fixed = write(DROPPING + "    correlations: []\n", "fixed.yaml")
    assert cli("validate", fixed)[0] == 0


def test_a_deadline_may_be_a_duration_after_the_start(cli, write, tmp_path):
    path = write(MINIMAL.replace("  start: 2026-01-01\n", "  start: 2026-01-01\n  deadline: 4 mo\n"))
    code, _o, err = cli("run", path, "--reps", "2", "--workers", "1", "--out", tmp_path / "r", "--no-priors")
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["risk"]["deadline"] == "2026-05-01"
    assert "P(finish after 2026-05-01)" in (tmp_path / "r" / "report.md").read_text()


@pytest.mark.parametrize(("start", "given", "deadline"), [
    ("2026-01-31", "1 mo", "2026-02-28"),  # calendar months: the same day, or the month's last
    ("2026-01-01", "1 y", "2027-01-01"), ("2026-01-01", "2 w", "2026-01-15"), ("2026-01-01", "36 h", "2026-01-02"),
    ("2026-01-01", "2026-03-01", "2026-03-01")])
def test_relative_deadlines_end_on_the_day_the_duration_does(start, given, deadline):
    import yaml

    from sim.loader import load_data

    raw = yaml.safe_load(MINIMAL.replace("  start: 2026-01-01\n", f"  start: {start}\n  deadline: {given}\n"))
    assert load_data(raw, "t").scenario.project.deadline.isoformat() == deadline


def test_a_deadline_that_is_neither_says_both_forms(cli, write):
    code, _o, err = cli("validate", write(MINIMAL.replace("  start: 2026-01-01\n",
                                                          "  start: 2026-01-01\n  deadline: soon\n")))
    assert code == 2 and "project.deadline: expected a date as YYYY-MM-DD or a duration after project.start" in err
