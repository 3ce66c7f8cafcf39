import subprocess
import sys

from sim import __version__
from tests.conftest import MINIMAL


def test_validate_one_line(cli, write):
    p = write(MINIMAL)
    code, out, err = cli("validate", p)
    assert code == 0 and err == ""
    assert out.count("\n") == 1 and out.startswith(f"{p}: OK: tiny: 1 pools, 1 workloads (2 runs)")


def test_python_dash_m_and_version():
    r = subprocess.run([sys.executable, "-m", "sim", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and __version__ in r.stdout


def test_usage_error_exit_2(cli, capsys):
    import pytest

    with pytest.raises(SystemExit) as e:
        cli("frobnicate")
    assert e.value.code == 2


def test_internal_error_exit_1(cli, write, monkeypatch):
    import sim.deterministic

    def boom(_loaded):
        raise RuntimeError("kaput")

    monkeypatch.setattr(sim.deterministic, "estimate", boom)
    code, _out, err = cli("estimate", write(MINIMAL))
    assert code == 1 and "internal error: RuntimeError: kaput" in err and "Traceback" not in err


def test_file_and_one_liner_flags_are_exclusive(cli, write):
    code, _out, err = cli("estimate", write(MINIMAL), "--params", "7B")
    assert code == 2 and "--params is for the one-line form" in err
