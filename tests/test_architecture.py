"""The floors of docs/architecture.md hold: every module of sim/ is on a floor and imports only
from lower floors; the engine is event logic only; no function or class outgrows its room."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

SIM = ROOT / "sim"


def floors() -> dict[str, int]:
    """module -> floor, read from the table in docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    out = {}
    for m in re.finditer(r"^\| (\d+) \| ([^|]+) \|", text, re.M):
        for name in re.findall(r"`(\w+)`", m.group(2)):
            out[name] = int(m.group(1))
    return out


def imports(path: Path) -> set[str]:
    """sim modules imported by a file (at any depth: lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sim":
            if node.module == "sim":
                found |= {a.name for a in node.names}
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("sim.")}
    return found


MODULES = sorted(p.stem for p in SIM.glob("*.py") if p.stem not in ("__init__", "__main__"))


def test_every_module_is_on_a_floor():
    assert set(MODULES) <= set(floors()), set(MODULES) - set(floors())
    assert set(floors()) <= set(MODULES), set(floors()) - set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_imports_only_from_lower_floors(module):
    fl = floors()
    for dep in imports(SIM / f"{module}.py") - {"__version__"}:
        assert dep in fl, f"{module} imports {dep}, which is on no floor"
        assert fl[dep] < fl[module], f"{module} (floor {fl[module]}) imports {dep} (floor {fl[dep]})"


def test_engine_is_event_logic_only():
    deps = imports(SIM / "engine.py")
    assert not deps & {"loader", "estimate", "schema", "catalog", "pricing"}, deps
    assert len((SIM / "engine.py").read_text().splitlines()) < 400


def test_no_class_over_250_lines_and_no_function_over_60():
    big = []
    for path in SIM.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            size = node.end_lineno - node.lineno + 1
            if isinstance(node, ast.ClassDef) and size > 250:
                big.append(f"{path.name}: class {node.name} ({size} lines)")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > 60:
                big.append(f"{path.name}: {node.name} ({size} lines)")
    assert not big, big
