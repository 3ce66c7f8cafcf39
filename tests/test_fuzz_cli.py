"""Fuzzing the command line (issue 9, "done means"): hypothesis builds argument lists for every
command (validate, estimate with a FILE or in its one-line form, run, compare with and without
--sweep, sensitivity, catalog) from extreme numbers (0, negative, huge, inf, nan, non-numbers),
random flags and a few scenario files, runs them through the real entry point with the working
folder in a temporary folder, and checks that

- the exit code is 0 or 2 (never 1, the code of a bug) and stderr holds no traceback,
- every example finishes within a time bound,
- what --json prints is JSON (no Infinity or NaN),
- nothing is written outside the temporary folder (the repository's outputs/ and scenarios/).

Replications and the Saltelli size are kept small (valid --reps at most 3, --n at most 4, sweeps of
a few values) so that an example takes well under a second. `benchmarks/fuzz_campaign.py` runs the
same strategies for minutes."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import MINIMAL, SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT_S = 60  # one example, however extreme its arguments

UNCERTAIN = MINIMAL.replace("mfu: 0.4", "mfu: {dist: uniform, min: 0.3, max: 0.5}").replace(
    "tokens: 20B", "tokens: {dist: uniform, min: 10B, max: 30B}")
VARIANTS = UNCERTAIN + "variants:\n  v1:\n    set:\n      workloads[train].mfu: 0.5\n"
FILES = {  # name in the tmp folder -> text; "shipped:" names a file of scenarios/
    "min.yaml": MINIMAL, "uncertain.yaml": UNCERTAIN, "variants.yaml": VARIANTS,
    "spot.yaml": MINIMAL.replace("    price_usd_per_gpu_h: 2.0\n", "    price_usd_per_gpu_h: 2.0\n    pricing: spot\n"
                                 "    preemption: {rate_per_node_h: 0.1}\n"),
    "empty.yaml": "", "list.yaml": "- 1\n- 2\n", "bad.yaml": "project: [\n",
}
SHIPPED = ["reserve_vs_rent.yaml", "start_now_or_wait.yaml", "uncertain_pretrain.yaml"]

EXTREME = ["0", "-1", "-5", "1e308", "1e309", "-1e308", "inf", "-inf", "nan", "NaN", "x", "", "1e", "0x10",
           "99999999999999999999999", str(2**63), "1.5", "-0", "1e-320", "5e-324"]
COUNTS = ["1", "2", "3", *EXTREME]  # --reps: valid ones small
SEEDS = ["0", "1", "7", "4294967295", "4294967296", "123456789012345678901234567890", *EXTREME]
WORKERS = ["1", "0", "-1", "x", "inf", "1.5", ""]
NS = ["2", "4", "0", "1", "3", "-2", "6", str(2**17), str(2**40), "1e3", "x", "inf"]
QUANTITIES = ["1B", "7B", "20B", "2T", "1e300", "1e308", "1e309", "0", "-1B", "inf", "nan", "x", "1 ZB", ""]
NUMBERS = ["0.4", "1", "2.5", *EXTREME]
DATES = ["2026-01-01", "9999-12-31", "0001-01-01", "2026-02-30", "x", ""]
SETS = ["workloads[train].mfu=1e308", "workloads[train].mfu=0", "workloads[train].runs=0",
        "workloads[train].runs=1e300", "pools[gpus].price_usd_per_gpu_h=inf", "pools[gpus].price_usd_per_gpu_h=0",
        "pools[gpus].price_usd_per_gpu_h=1e307", "pools[gpus].count=-1", "project.budget_usd=nan",
        "workloads[train].params=1e300", "nope=1", "x", "=", "workloads[9].mfu=0.3"]
SWEEP_KEYS = ["workloads[train].mfu", "workloads[train].runs", "pools[gpus].price_usd_per_gpu_h", "nope", ""]
SWEEP_NUMS = ["0.3", "0.4", "1", "2", "0", "-1", "inf", "-inf", "nan", "1e308", "1e-300", "x"]


@dataclass
class Outcome:
    argv: list[str]
    code: int
    out: str
    err: str
    seconds: float


class Overtime(BaseException):  # a BaseException: the CLI's `except Exception` must not swallow it
    pass


# --- strategies ------------------------------------------------------------------------------
def _flags(pairs: dict[str, list[str]]):
    """A few of these flags, each with one of its values (a flag with no values is a switch)."""
    def one(n: str):
        return st.sampled_from(pairs[n]).map(lambda v: [n, v]) if pairs[n] else st.just([n])

    return st.lists(st.sampled_from(sorted(pairs)), max_size=4, unique=True).flatmap(
        lambda names: st.tuples(*(one(n) for n in names)).map(lambda pairs_: [x for p in pairs_ for x in p]))


def _file(variants: bool = False):
    names = ["variants.yaml"] * 3 if variants else ["min.yaml", "uncertain.yaml", "spot.yaml"]
    return st.sampled_from([*names, *FILES, *(f"shipped:{s}" for s in SHIPPED), "missing.yaml", ".", "/dev/null"])


SCENARIO_FLAGS = {"--set": SETS, "--variant": ["v1", "nope", ""]}
RUN_FLAGS = {"--reps": COUNTS, "--seed": SEEDS, "--workers": WORKERS, "--sampling": ["random", "lhs", "sobol", "x"],
             "--precision": ["0.5", "0", "1", "-1", "inf", "nan", "x"], "--out": ["o", "a/b", "."]}
SWEEP = st.tuples(st.sampled_from(SWEEP_KEYS), st.sampled_from(["0.3", "1", "-1", "inf", "nan", "x"]),
                  st.sampled_from(SWEEP_NUMS), st.sampled_from(["0.1", "1", "2", "0", "-1", "1e-300", "inf", "nan"])
                  ).map(lambda t: f"{t[0]}={t[1]}:{t[2]}:{t[3]}")
ONE_LINE = {"--params": QUANTITIES, "--tokens": QUANTITIES, "--flop": ["1e21", *QUANTITIES],
            "--gpu-hours": ["100", *NUMBERS], "--price": NUMBERS, "--mfu": NUMBERS, "--runs": COUNTS,
            "--method": ["full", "lora", "x"], "--pricing": ["on_demand", "spot", "reserved", "owned", "x"],
            "--provider": ["gcp", "aws", "nope"], "--start": DATES}
SWEEP_FLAGS = {"--reps": ["1", "2", "0", "-1", "x"], "--seed": SEEDS, "--only": ["base", "base,v1"]}
RANDOM_FLAGS = {"--json": [], "--overwrite": [], "--strict": [], "--no-sobol": [], "--sources": [], "--bogus": [],
                "-v": [], "--help": []}


def _with(command: str, *parts):
    return st.tuples(*parts).map(lambda t: [command, *(x for p in t for x in (p if isinstance(p, list) else [p]))])


def _switches():
    return st.lists(st.sampled_from(sorted(RANDOM_FLAGS)), max_size=2, unique=True).map(
        lambda names: [n for n in names if n != "--help"] if len(names) > 1 else names)


def command_lines():
    """Argument lists for every command (without the leading `sim`)."""
    estimate_one_line = _with("estimate", st.sampled_from(["h100", "a100_80gb", "x", ""]).map(
        lambda a: ["--accelerator", a]), st.sampled_from(COUNTS).map(lambda c: ["--count", c]), _flags(ONE_LINE))
    return st.one_of(
        _with("validate", _file(), _flags(SCENARIO_FLAGS), _switches()),
        _with("estimate", _file(), _flags({**SCENARIO_FLAGS, "--params": QUANTITIES}),
              st.sampled_from([[], ["--json"]])),
        estimate_one_line.flatmap(lambda a: st.sampled_from([a, [*a, "--json"]])),
        _with("estimate", _flags(ONE_LINE), _switches()),
        _with("run", _file(), _flags({**RUN_FLAGS, **SCENARIO_FLAGS}), _switches()).map(_small),
        _with("compare", _file(variants=True), _flags({**RUN_FLAGS, "--only": ["base,v1", "base", "v1,v1", ",",
                                                                               "nope"], "--set": SETS})).map(_small),
        _with("compare", _file(variants=True), SWEEP.map(lambda s: ["--sweep", s]),
              _flags(SWEEP_FLAGS)).map(_small),
        _with("sensitivity", _file(), _flags({"--reps": COUNTS, "--n": NS, "--seed": SEEDS, "--workers": WORKERS,
                                               "--no-sobol": [], "--out": ["s"]} | SCENARIO_FLAGS)).map(_small),
        _with("catalog", st.lists(st.sampled_from(["h100", "a100_80gb", "nope", ""]), max_size=2),
              st.sampled_from([[], ["--json"], ["--sources"], ["--json", "--sources"]])),
    )


def _small(argv: list[str]) -> list[str]:
    """A run without --reps would run the scenario's replications (1,000 by default), a sensitivity
    without --n 261 points: one example must stay quick, so they are given (small) when the draw
    left them out."""
    extra = [] if "--reps" in argv else ["--reps", "2"]
    if argv[0] == "sensitivity" and "--n" not in argv:
        extra += ["--n", "2"]
    return [*argv, *extra]


# --- running and checking ------------------------------------------------------------------------
def materialise(argv: list[str], folder: Path) -> list[str]:
    """Scenario names replaced by files in `folder` (written there) or shipped files."""
    out = []
    for a in argv:
        if a in FILES:
            (folder / a).write_text(textwrap.dedent(FILES[a]))
        out.append(str(SCENARIOS / a.removeprefix("shipped:")) if a.startswith("shipped:") else a)
    return out


def _on_alarm(_signum, _frame):
    raise Overtime


def run_cli(argv: list[str], folder: Path, limit_s: float = TIME_LIMIT_S) -> Outcome:
    """`sim ARGV` in process with `folder` as the working folder; its exit code and output."""
    from sim.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(int(limit_s))
    t0 = time.perf_counter()
    try:
        os.chdir(folder)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as e:  # argparse: --help, --version (0) or a usage error (2)
                code = e.code if isinstance(e.code, int) else 2
    except Overtime:
        code = -1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(here)
    return Outcome(list(argv), code, out.getvalue(), err.getvalue(), time.perf_counter() - t0)


def problems(r: Outcome) -> list[str]:
    """What is wrong with an outcome (empty when all is well)."""
    found = []
    if r.code == -1:
        found.append(f"did not finish within {TIME_LIMIT_S} s")
    elif r.code not in (0, 2):
        found.append(f"exit code {r.code}")
    if "Traceback" in r.err or "internal error" in r.err:
        found.append("a traceback or internal error in stderr")
    if r.code == 0 and "--json" in r.argv and "--help" not in r.argv:
        try:
            json.loads(r.out, parse_constant=_not_json)
        except ValueError as e:
            found.append(f"--json printed no JSON: {e}")
    return found


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


def snapshot() -> dict[str, float]:
    """Files of the repository a run could wrongly write to (outputs/, scenarios/, the top level)."""
    files = {p: p.stat().st_mtime for d in ("outputs", "scenarios") if (ROOT / d).exists()
             for p in (ROOT / d).rglob("*")}
    files.update({p: p.stat().st_mtime for p in ROOT.iterdir()})
    return {str(k): v for k, v in files.items()}


def check(argv: list[str]) -> Outcome:
    """Run one argument list in a fresh temporary folder; assert the properties above."""
    before = snapshot()
    with tempfile.TemporaryDirectory(prefix="trainsim-fuzz-") as tmp:
        r = run_cli(materialise(argv, Path(tmp)), Path(tmp))
    assert not problems(r), (problems(r), r.argv, r.err[-2000:])
    assert snapshot() == before, f"{r.argv} wrote outside its folder"
    return r


class _ToStderr:
    """A stream for the log handler that writes to whatever sys.stderr is at the time."""

    def write(self, s: str) -> int:
        return sys.stderr.write(s)

    def flush(self) -> None:
        sys.stderr.flush()


def route_logs() -> logging.Handler:
    """The CLI's log lines to the current sys.stderr (so that the checks see them)."""
    h = logging.StreamHandler(_ToStderr())
    h.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.getLogger().addHandler(h)
    return h


FUZZ = {"deadline": None, "database": None, "derandomize": False,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


@settings(max_examples=20, **FUZZ)
@given(argv=command_lines())
def test_cli_fuzz(argv):
    check(argv)


@pytest.mark.slow
@settings(max_examples=30, **FUZZ)
@given(argv=command_lines())
def test_cli_fuzz_more(argv):
    """The same with more examples, in the slow tier (the long campaign: benchmarks/fuzz_campaign.py)."""
    check(argv)


def test_fuzz_checks_catch_a_bad_outcome():
    """The checks themselves: exit 1, a traceback, Infinity in JSON and overtime are found."""
    assert problems(Outcome(["run"], 1, "", "internal error: X", 0.1))
    assert problems(Outcome(["catalog", "--json"], 0, '{"a": Infinity}', "", 0.1))
    assert problems(Outcome(["run"], 2, "", "Traceback (most recent call last):", 0.1))
    assert problems(Outcome(["run"], -1, "", "", 60))
    assert not problems(Outcome(["catalog", "--json"], 0, '{"a": 1}', "", 0.1))
