import textwrap
from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"

MINIMAL = """\
project:
  name: tiny
  start: 2026-01-01
pools:
  - name: gpus
    accelerator: h100
    count: 16
    price_usd_per_gpu_h: 2.0
workloads:
  - name: train
    runs: 2
    params: 1B
    tokens: 20B
    accelerators: 8
    mfu: 0.4
"""


@pytest.fixture
def write(tmp_path):
    """write(text) -> path of a scenario file holding the dedented text."""

    def _write(text: str, name: str = "s.yaml") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text))
        return p

    return _write


@pytest.fixture
def cli(capsys):
    """cli(*args) -> (exit code, stdout, stderr) through the real entry point."""

    def _run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run
