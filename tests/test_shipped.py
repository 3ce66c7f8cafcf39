"""Every shipped scenario (and each of its variants) simulates through `sim run`; the README's
quick start is exactly two commands, the first runs as written, the second is what CI runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from sim.loader import load
from tests.conftest import ROOT, SCENARIOS

SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def _cases():
    for path in SHIPPED:
        for variant in [None, *load(path).scenario.variants]:
            marks = [pytest.mark.slow] if variant else []  # the base scenarios in the quick loop, variants in all
            yield pytest.param(path, variant, id=f"{path.stem}" + (f"[{variant}]" if variant else ""), marks=marks)


@pytest.mark.parametrize(("path", "variant"), list(_cases()))
def test_shipped_scenario_simulates(cli, tmp_path, path, variant):
    args = ["run", path, "--reps", "3", "--workers", "1", "--out", tmp_path / "r"]
    if variant:
        args += ["--variant", variant]
    code, out, err = cli(*args)
    assert code == 0, err
    reps = pd.read_parquet(tmp_path / "r" / "replications.parquet")
    assert len(reps) == 3 and (reps["cost_usd"] > 0).all()
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["replications"] == 3 and summary["failed_replications"] == 0
    assert (tmp_path / "r" / "report.html").exists()


def quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_readme_quick_start_is_two_commands_and_ci_runs_the_second():
    cmds = quick_start()
    assert len(cmds) == 2, cmds
    install, tests = cmds
    assert install.startswith("pip install . && sim run scenarios/")
    assert tests in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_readme_main_command_runs_as_written(tmp_path):
    """The part after `pip install . &&` runs in a fresh folder holding the scenarios (the package
    is installed already), with the console script when it is on PATH."""
    run = quick_start()[0].split("&&", 1)[1].split()
    assert run[:2] == ["sim", "run"]
    shutil.copytree(SCENARIOS, tmp_path / "scenarios")
    exe = [shutil.which("sim")] if shutil.which("sim") else [sys.executable, "-m", "sim"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([*exe, *run[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    outs = list((tmp_path / "outputs").glob("*/*/summary.json"))
    assert len(outs) == 1
    assert "replications" in p.stdout and "cost_usd" in p.stdout
