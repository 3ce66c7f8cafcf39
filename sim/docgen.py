"""Generate the key reference in docs/scenario-format.md from the schema itself, so the document
and the code cannot drift apart: `python -m sim.docgen` rewrites the generated part, and a test
fails when the file is out of date.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sim import schema

BEGIN = "<!-- BEGIN GENERATED KEY REFERENCE: edit sim/schema.py, then run `python -m sim.docgen` -->"
END = "<!-- END GENERATED KEY REFERENCE -->"
DOC = Path(__file__).resolve().parent.parent / "docs" / "scenario-format.md"


def _meta(ann) -> list:
    return list(typing.get_args(ann)[1:]) if typing.get_origin(ann) is typing.Annotated else []


def _models(ann) -> list[type[BaseModel]]:
    """Models reachable directly inside an annotation (through Optional, list, dict, unions)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    out: list = []
    for a in typing.get_args(ann):
        if not isinstance(a, (str, int, float, schema.Unit)) and a is not type(None):
            out.extend(_models(a))
    return out


def describe_type(ann) -> str:
    for m in _meta(ann):
        if isinstance(m, schema.Unit):
            return f"{m.name}" + (" or distribution" if m.uncertain else "")
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Annotated:
        return describe_type(args[0])
    if origin is typing.Literal:
        return "one of " + " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [describe_type(a) for a in args if a is not type(None)]
        models = _models(ann)
        if len(models) > 1 and len(models) == len(parts):
            return "mapping, by `kind`"
        return " or ".join(parts)
    if origin is list:
        return f"list of {describe_type(args[0])}"
    if origin is dict and typing.get_origin(args[1]) is dict:
        return "mapping of name to overrides"
    if origin is dict:
        return f"mapping of name to {describe_type(args[1])}"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "mapping"
    names = {str: "text", int: "integer", float: "number", bool: "true/false"}
    return names.get(ann, getattr(ann, "__name__", str(ann)))


def field_type(field) -> str:
    """Pydantic moves a plain Annotated field's metadata onto the field: look there first."""
    for m in field.metadata:
        if isinstance(m, schema.Unit):
            return m.name + (" or distribution" if m.uncertain else "")
    return describe_type(field.annotation)


def describe_default(field) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        try:
            v = field.default_factory()
        except TypeError:  # pragma: no cover
            return "see text"
        if isinstance(v, BaseModel):
            kind = getattr(v, "kind", None)
            return f"`{{kind: {kind}}}`" if kind else "(defaults below)"
        if isinstance(v, (list, dict)) and not v:
            return "none"
        return f"`{v:g}`" if isinstance(v, float) else f"`{v}`"
    v = field.default
    if v is None or v is PydanticUndefined:
        return "none"
    if isinstance(v, float):
        return f"`{v:g}`"
    if v == "":
        return '`""`'
    return f"`{v}`"


def sections() -> list[tuple[str, type[BaseModel]]]:
    """(YAML path, model) for every mapping in the format, depth first, each once."""
    out: list[tuple[str, type[BaseModel]]] = []
    seen: set = set()

    def visit(path: str, model: type[BaseModel]):
        if (path, model) in seen:
            return
        seen.add((path, model))
        out.append((path, model))
        for name, f in model.model_fields.items():
            ann = f.annotation
            sub = _models(ann)
            origin = typing.get_origin(ann)
            if typing.get_origin(ann) is typing.Annotated:
                origin = typing.get_origin(typing.get_args(ann)[0])
            suffix = "[]" if origin is list else ("{}" if origin is dict else "")
            for m in sub:
                kind = m.model_fields.get("kind")
                tag = ""
                if kind is not None and len(sub) > 1:
                    tag = f" (kind: {typing.get_args(kind.annotation)[0]})"
                visit(f"{path}.{name}{suffix}{tag}" if path else f"{name}{suffix}{tag}", m)

    visit("", schema.Scenario)
    return out


def key_paths() -> list[str]:
    """Every key of the format as `section.key`."""
    out = []
    for path, model in sections():
        for name in model.model_fields:
            out.append(f"{re.sub(r' [(]kind: [a-z_]+[)]', '', path)}.{name}" if path else name)
    return out


def generate() -> str:
    lines = [BEGIN, ""]
    for path, model in sections():
        title = path or "top level"
        lines.append(f"### `{title}`")
        lines.append("")
        doc = (model.__doc__ or "").strip()
        if doc and path:
            lines.extend([doc.splitlines()[0], ""])
        lines.append("| key | type / unit | default | meaning |")
        lines.append("|---|---|---|---|")
        for name, f in model.model_fields.items():
            desc = (f.description or "").replace("|", "\\|")
            lines.append(f"| `{name}` | {field_type(f)} | {describe_default(f)} | {desc} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def render(current: str) -> str:
    if BEGIN not in current or END not in current:
        raise ValueError(f"{DOC} has no generated section markers")
    head = current[: current.index(BEGIN)]
    tail = current[current.index(END) + len(END):]
    return head + generate() + tail


def main() -> int:
    DOC.write_text(render(DOC.read_text()))
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
