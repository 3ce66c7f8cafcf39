"""Read a scenario file: safe YAML with line numbers, variants and --set overrides, schema
validation, cross-reference checks against the catalog, and the scenario hash.

Every problem becomes an Issue with the YAML path (`workloads[2].accelerators`), the line where
known, and a sentence saying what was expected and what was found. `load()` raises
ScenarioError carrying all of them at once.
"""

from __future__ import annotations

import copy
import csv
import difflib
import hashlib
import io
import json
import math
import os
import re
import stat
import types
import typing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ValidationError

from sim import grid, power, schema
from sim import priors as priorsmod
from sim.billing import TIERS
from sim.catalog import Catalog, builtin
from sim.compute import run_size
from sim.distributions import Dist, rank_to_pearson
from sim.pricing import PoolPrice, make_curve, pool_price
from sim.units import hours_between

# Limits on what a scenario file may ask for: generous for any real project, small enough that a
# hostile or mistaken file is refused at once instead of hanging or exhausting memory.
MAX_FILE_BYTES = 10_000_000  # size of a scenario file
MAX_DEPTH = 64  # nesting of mappings and lists
MAX_NODES = 500_000  # values in the file once every alias (*name) is expanded
MAX_RUNS = 1_000_000  # runs summed over workloads (at the P99.9 of a distribution)
MAX_MAGNITUDE = 1e300  # FLOP, hours or USD beyond this overflow in the simulation's arithmetic
LAST_MONTH = date(9999, 12, 1)  # the simulation must end before this month (dates stop at year 9999)

# --------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class Issue:
    path: tuple
    message: str
    line: int | None = None


class ScenarioError(Exception):
    """A user's mistake in a scenario (exit code 2)."""

    def __init__(self, file: str, issues: list[Issue]):
        self.file = file
        self.issues = issues
        super().__init__(self.format())

    def format(self) -> str:
        out = []
        for i in self.issues:
            where = f"{self.file}:{i.line}" if i.line else self.file
            out.append(f"{where}: {path_str(i.path)}: {i.message}" if i.path else f"{where}: {i.message}")
        return "\n".join(out)


def path_str(path: tuple) -> str:
    """A key path written out: `workloads[0].mfu`; `parse_path`'s [name] selectors as `workloads[pretrain]`."""
    s = ""
    for el in path:
        if isinstance(el, int):
            s += f"[{el}]"
        elif isinstance(el, tuple):
            s += f"[{el[1]}]"
        else:
            s += f".{el}" if s else str(el)
    return s


def _found(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------
# YAML with line numbers and no duplicate keys


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (YAML would keep the last silently).
    Keys brought in by a merge key (`<<: *anchor`) may be overridden, as YAML intends.

    Composing counts nodes and nesting (so a hostile file fails fast instead of exhausting the
    stack or memory) and notes the line where each alias is used, for the line map."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0
        self.nodes = 0
        self.alias_lines: dict[tuple, int] = {}

    def compose_node(self, parent, index):
        event = self.peek_event()
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise yaml.composer.ComposerError(None, None, f"too many nodes: more than {MAX_NODES:,} values in "
                                              "one file", event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            if isinstance(index, int):  # a list item; a mapping value's line is its key's
                self.alias_lines[(id(parent), index)] = event.start_mark.line + 1
            return super().compose_node(parent, index)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                                  event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node, deep=False):
        """A value its tag cannot read (`!!int abc`, `!!bool maybe`) is a located YAML error."""
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {_found(node.value)} as {node.tag}", node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first given on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        """An impossible date such as 2026-13-01 stays text, so validation can say where it is."""
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, AttributeError, OverflowError):
            return self.construct_scalar(node)


    def construct_yaml_int(self, node):
        """`14:30` stays text (a time of day, as project.start_time takes it), not YAML 1.1's base-60
        integer 870."""
        if ":" in str(node.value):
            return self.construct_scalar(node)
        return super().construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _expanded_size(root) -> int | None:
    """Nodes in the document once every alias is expanded (an alias repeats its anchored block),
    counted without expanding (each distinct node once); None when an alias sits inside the block
    it refers to (the document would be infinite)."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            on_path.discard(id(node))
            size[id(node)] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        if id(node) in size:
            continue
        on_path.add(id(node))
        stack.append((node, True))
        for c in _children(node):
            if id(c) in on_path:
                return None
            if id(c) not in size:
                stack.append((c, False))
    return size[id(root)]


def _check_expansion(node, file: str) -> None:
    n = _expanded_size(node)
    if n is None:
        raise ScenarioError(file, [Issue((), "invalid YAML: an alias (*name) is used inside the block it refers "
                                         "to, which would make the document infinite")])
    if n > MAX_NODES:
        raise ScenarioError(file, [Issue((), f"too many aliases/nodes: expanding the aliases (*name) gives {n:,} "
                                         f"values, more than the {MAX_NODES:,} a scenario may hold; write the "
                                         "shared blocks out or use fewer aliases")])


def _line_map(root, alias_lines: dict | None = None) -> dict[tuple, int]:
    """Line of every key path. A block reached again through an alias is not walked again: the
    alias's own line stands for everything under it (`_line` falls back to it)."""
    alias_lines = alias_lines or {}
    out = {(): root.start_mark.line + 1}
    walked: set[int] = set()
    stack = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in walked:
            continue
        walked.add(id(node))
        items: list = []
        if isinstance(node, yaml.MappingNode):
            items = [((*path, k.value), k.start_mark.line + 1, v) for k, v in node.value
                     if isinstance(k, yaml.ScalarNode)]
        elif isinstance(node, yaml.SequenceNode):
            items = [((*path, i), alias_lines.get((id(node), i), v.start_mark.line + 1), v)
                     for i, v in enumerate(node.value)]
        for p, line, _ in items:
            out.setdefault(p, line)
        stack.extend((child, p) for p, _, child in reversed(items))
    return out


def _unshare(data: Any, file: str) -> Any:
    """A copy of `data` in which no mapping or list appears twice. YAML aliases (`*s`) and merge keys
    (`<<: *s`) share one object between several places, so a change aimed at one (`--set`, a
    variant's `set:`) would silently change the others."""
    root = [data]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    count = 0
    while stack:
        parent, key = stack.pop()
        value = parent[key]
        if isinstance(value, dict):
            parent[key] = new = dict(value)
            stack.extend((new, k) for k in new)
        elif isinstance(value, list):
            parent[key] = new = list(value)
            stack.extend((new, i) for i in range(len(new)))
        else:
            continue
        count += 1
        if count > MAX_NODES:
            raise ScenarioError(file, [Issue((), f"too many aliases/nodes: more than {MAX_NODES:,} mappings and "
                                             "lists (or a structure that contains itself)")])
    return root[0]


def _yaml_issue(e: yaml.YAMLError, text: str) -> Issue:
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        what = " ".join(x for x in (e.context, e.problem) if x)
        return Issue((), f"invalid YAML: {what}", mark.line + 1 if mark else None)
    if isinstance(e, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(e.position, 0)) + 1
        ch = e.character if isinstance(e.character, int) else ord(str(e.character)[:1] or "?")
        return Issue((), f"invalid YAML: the character U+{ch:04X} is not allowed in a YAML file (is it a text "
                     "file? remove the character)", line)
    return Issue((), f"invalid YAML: {e}")


def _parse(text: str, file: str) -> tuple[Any, dict[tuple, int]] | None:
    """Parse one YAML document: (data with no shared mappings or lists, line of each key path);
    None when the text holds no document."""
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, file)
        data = loader.construct_document(node)
        lines = _line_map(node, loader.alias_lines)
    except yaml.YAMLError as e:
        raise ScenarioError(file, [_yaml_issue(e, text)]) from None
    except RecursionError:
        msg = f"invalid YAML: nested too deeply (at most {MAX_DEPTH} levels)"
        raise ScenarioError(file, [Issue((), msg)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return _unshare(data, file), lines


def read_yaml(text: str, file: str) -> tuple[Any, dict[tuple, int]]:
    parsed = _parse(text, file)
    if parsed is None:
        raise ScenarioError(file, [Issue((), "the file is empty; expected a mapping with project, pools "
                                           "and workloads")])
    return parsed


def read_value(text: str, file: str, what: str) -> Any:
    """One YAML value given on the command line (`--set KEY=VALUE`), with the file's limits."""
    try:
        parsed = _parse(text, file)
    except ScenarioError as e:
        raise ScenarioError(file, [Issue((), f"{what}: {i.message}") for i in e.issues]) from None
    return None if parsed is None else parsed[0]


# --------------------------------------------------------------------------------------------
# Key paths: `workloads[pretrain].mfu`, `pools[0].count`, `project.budget_usd`

_SEG = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")


def parse_path(text: str) -> tuple:
    segs: list = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
            continue
        m = _SEG.match(text, pos)
        if not m:
            raise ValueError(f"cannot read key path {text!r} (use e.g. workloads[pretrain].mfu)")
        if m.group(1) is not None:
            segs.append(m.group(1))
        else:
            inner = m.group(2).strip()
            segs.append(int(inner) if inner.lstrip("-").isdigit() else ("name", inner))
        pos = m.end()
    if not segs:
        raise ValueError("empty key path")
    return tuple(segs)


def _step(container: Any, seg: Any, text: str) -> Any:
    if isinstance(seg, tuple):  # [name] selector on a list of named items
        if not isinstance(container, list):
            raise ValueError(f"{text}: [{seg[1]}] selects from a list, but here there is {_found(container)}")
        for i, item in enumerate(container):
            if isinstance(item, dict) and item.get("name") == seg[1]:
                return i
        names = [it.get("name") for it in container if isinstance(it, dict)]
        raise ValueError(f"{text}: no item named {seg[1]!r} (names: {', '.join(map(str, names))})")
    if isinstance(seg, int):
        if not isinstance(container, list) or not -len(container) <= seg < len(container):
            raise ValueError(f"{text}: index [{seg}] is out of range")
        return seg % len(container)  # [-1] is the last item: the concrete path uses its index
    if not isinstance(container, dict):
        raise ValueError(f"{text}: {seg!r} is a key, but here there is {_found(container)}")
    return seg


def resolve_path(data: Any, path: tuple, text: str) -> tuple:
    """Concrete path (names -> indices) of `path` in `data`; the last key may not exist yet."""
    out: list = []
    cur = data
    for n, seg in enumerate(path):
        key = _step(cur, seg, text)
        out.append(key)
        if n < len(path) - 1:
            if isinstance(cur, dict) and key not in cur:
                cur[key] = {}
            cur = cur[key]
    return tuple(out)


def set_path(data: Any, text: str, value: Any) -> tuple:
    path = resolve_path(data, parse_path(text), text)
    cur = data
    for key in path[:-1]:
        cur = cur[key]
    cur[path[-1]] = value
    return path


def get_path(data: Any, path: tuple) -> Any:
    for key in path:
        data = data[key]
    return data


NAMED_LISTS = ("pools", "workloads")  # the scenario's lists whose items all have a name


def named_path(text: str, names: dict[str, list]) -> str:
    """`text` (a key path) with the position of an item of a list in `names` (its first selector,
    `workloads[0]`, `workloads[-1]`) replaced by that item's name (`workloads[pretrain]`), so that it
    still means that item once the list is reordered or replaced. As written when it names no such
    item by position, or the item has no name that reads back as one (`[123]` is a position)."""
    try:
        path = parse_path(text)
    except ValueError:
        return text
    if len(path) < 2 or path[0] not in names or not isinstance(path[1], int):
        return text
    items = names[path[0]]
    if not -len(items) <= path[1] < len(items):
        return text
    name = items[path[1]]  # (a negative position counts from the end, as when it is read)
    named = (path[0], ("name", name), *path[2:])
    try:
        reads_back = isinstance(name, str) and parse_path(path_str(named)) == named
    except ValueError:
        reads_back = False
    return path_str(named) if reads_back else text


def list_names(raw: dict, sections: tuple[str, ...] = NAMED_LISTS) -> dict[str, list]:
    """Each of `sections` of a scenario (as read) -> its items' names, in order (None for an item
    without one)."""
    out: dict[str, list] = {}
    for section in sections:
        items = raw.get(section)
        if isinstance(items, list):
            out[section] = [it.get("name") if isinstance(it, dict) else None for it in items]
    return out


def name_positions(correlations: Any, names: dict[str, list]) -> Any:
    """A copy of a scenario's `correlations:` with each side's position in a list of `names` written
    as that item's name (`named_path`); anything not in the expected form is left as it is (for
    validation to report)."""
    if not isinstance(correlations, list):
        return correlations
    out = []
    for c in correlations:
        if isinstance(c, dict) and isinstance(c.get("between"), list):
            c = {**c, "between": [named_path(t, names) if isinstance(t, str) else t for t in c["between"]]}
        out.append(c)
    return out


# --------------------------------------------------------------------------------------------
# Pydantic errors -> Issues


def _unwrap(ann: Any) -> Any:
    while True:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            ann = typing.get_args(ann)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if len(args) == 1:
                ann = args[0]
            elif models and len(models) == len(args):
                return tuple(models)
            else:
                return ann
        else:
            return ann


def _walk_loc(loc: tuple) -> tuple[tuple, type | None]:
    """Clean a pydantic loc (drop union tags and validator names); also the model owning the
    last key, for suggestions."""
    ann: Any = schema.Scenario
    clean: list = []
    owner: type | None = None
    for el in loc:
        ann = _unwrap(ann)
        if isinstance(ann, tuple):  # discriminated union: el is the tag
            pick = [m for m in ann if el in typing.get_args(m.model_fields["kind"].annotation)]
            ann = pick[0] if pick else None
            continue
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            owner = ann
            clean.append(el)
            ann = ann.model_fields[el].annotation if el in ann.model_fields else None
            continue
        origin = typing.get_origin(ann)
        if origin is list and isinstance(el, int):
            clean.append(el)
            ann = typing.get_args(ann)[0]
        elif origin is dict and isinstance(el, str):
            clean.append(el)
            ann = typing.get_args(ann)[1]
        else:
            ann = None  # a validator name or union branch label: not part of the YAML path
    return tuple(clean), owner


_TYPE_MSG = {
    "int_type": "expected a whole number", "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number", "float_type": "expected a number",
    "float_parsing": "expected a number", "bool_type": "expected true or false",
    "bool_parsing": "expected true or false", "string_type": "expected text",
    "list_type": "expected a list", "dict_type": "expected a mapping of keys to values",
    "model_type": "expected a mapping of keys to values", "model_attributes_type": "expected a mapping",
    "date_type": "expected a date as YYYY-MM-DD", "date_from_datetime_parsing": "expected a date as YYYY-MM-DD",
}


def _message(err: dict, owner: type | None) -> str:
    t = err["type"]
    inp = err.get("input")
    ctx = err.get("ctx") or {}
    if t == "extra_forbidden":
        key = err["loc"][-1]
        allowed = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown key {key!r}{hint} (allowed here: {', '.join(allowed)})"
    if t == "missing":
        return "required key is missing"
    if t == "value_error":
        msg = str(ctx.get("error", err["msg"]))
        return msg.removeprefix("Value error, ")
    if t == "literal_error":
        return f"expected one of {ctx.get('expected')}, got {_found(inp)}"
    if t in ("union_tag_invalid", "union_tag_not_found"):
        tags = ctx.get("expected_tags", "")
        tag = ctx.get("tag", inp.get("kind") if isinstance(inp, dict) else inp)
        return f"kind: expected one of {tags}, got {_found(tag)}"
    if t in ("too_short", "too_long"):
        return f"{err['msg'].lower()}, got {_found(inp)}"
    if t == "string_pattern_mismatch":
        return f"expected a name of letters, digits, '-', '_' or '.', got {_found(inp)}"
    if t in _TYPE_MSG:
        return f"{_TYPE_MSG[t]}, got {_found(inp)}"
    return f"{err['msg']}, got {_found(inp)}"


def _issues_from_validation(e: ValidationError, lines: dict, prefix: tuple = ()) -> list[Issue]:
    out = []
    seen = set()
    for err in e.errors():
        path, owner = _walk_loc(err["loc"])
        msg = _message(err, owner)
        if (path, msg) in seen:
            continue
        seen.add((path, msg))
        out.append(Issue((*prefix, *path), msg, _line(lines, path)))
    return out


def _line(lines: dict, path: tuple) -> int | None:
    p = tuple(path)
    while p not in lines and p:
        p = p[:-1]
    return lines.get(p)


# --------------------------------------------------------------------------------------------
# Cross-reference checks (need the whole scenario and the catalog)


Problems = list[tuple[tuple, str]]


def check(scn: schema.Scenario, catalog: Catalog) -> tuple[list[tuple[tuple, str]], dict[str, PoolPrice]]:
    problems: Problems = []
    prices: dict[str, PoolPrice] = {}
    _check_dupes(scn.pools, "pools", problems)
    _check_dupes(scn.workloads, "workloads", problems)
    pools = {p.name: p for p in scn.pools}
    for i, p in enumerate(scn.pools):
        _check_pool(scn, catalog, i, p, pools, problems, prices)
    names = {w.name: i for i, w in enumerate(scn.workloads)}
    for i, w in enumerate(scn.workloads):
        _check_workload(scn, i, w, pools, names, problems)
    _check_cycle(scn, names, problems)
    _check_correlations(scn, problems)
    _check_deadline(scn, problems)
    _check_calendar(scn, problems)
    _check_run_count(scn, problems)
    _check_dist_ranges(scn, problems)
    _check_actuals_map(scn, names, problems)
    if not problems:  # the sizes need a consistent scenario (known accelerators, prices)
        _check_magnitudes(scn, catalog, prices, problems)
    return problems, prices


def _check_dupes(items, section: str, problems: Problems) -> None:
    seen: dict[str, int] = {}
    for i, it in enumerate(items):
        if it.name in seen:
            problems.append(((section, i, "name"), f"duplicate name {it.name!r} (also {section}[{seen[it.name]}])"))
        seen.setdefault(it.name, i)


# -- pools -------------------------------------------------------------------------------------


def _check_pool(scn: schema.Scenario, catalog: Catalog, i: int, p, pools: dict, problems: Problems,
                prices: dict[str, PoolPrice]) -> None:
    """Pool i: its accelerator, pricing tier and price, fallback, and capacity changes."""
    if p.accelerator not in catalog.accelerators:
        known = sorted(catalog.accelerators)
        close = difflib.get_close_matches(p.accelerator, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append((("pools", i, "accelerator"),
                         f"unknown accelerator {p.accelerator!r}{hint} (catalog: {', '.join(known)}; "
                         "or define it under `accelerators:`)"))
    _check_pool_price(scn, catalog, i, p, problems, prices)
    if p.fallback is not None:
        if p.fallback not in pools:
            problems.append((("pools", i, "fallback"), f"no pool named {p.fallback!r} (pools: {', '.join(pools)})"))
        elif p.fallback == p.name:
            problems.append((("pools", i, "fallback"), "a pool cannot fall back to itself"))
    _check_capacity_changes(scn, i, p, problems)
    commit = TIERS[p.pricing].commitment(p, scn.project.start)
    if commit is not None and commit[1] <= 0:
        problems.append((("pools", i, "commitment_start"),
                         f"the commitment ({p.commitment_start} for {(p.term or 8760.0) / 8760:g} y) ends on or "
                         f"before project.start ({scn.project.start}), so this pool would never have capacity; "
                         "move commitment_start or drop the pool"))


def _check_capacity_changes(scn: schema.Scenario, i: int, p, problems: Problems) -> None:
    """Each change on or after the start, and no two on one date (which count would hold?)."""
    first: dict[date, int] = {}
    for j, c in enumerate(p.capacity_changes):
        where = ("pools", i, "capacity_changes", j, "date")
        if c.date < scn.project.start:
            problems.append((where, f"must be on or after project.start ({scn.project.start}), got {c.date}"))
        if c.date in first:
            problems.append((where, f"same date as capacity_changes[{first[c.date]}] ({c.date}); give one change "
                                    "per date"))
        first.setdefault(c.date, j)


def _check_pool_price(scn: schema.Scenario, catalog: Catalog, i: int, p, problems: Problems,
                      prices: dict[str, PoolPrice]) -> None:
    """The pricing tier's own rule, then (for a known accelerator) the price, kept in `prices`."""
    tier_rule = TIERS[p.pricing].check(p)
    if tier_rule:
        problems.append((("pools", i, tier_rule[0]), tier_rule[1]))
    elif p.accelerator in catalog.accelerators:
        price = pool_price(p, catalog, scn.project.start)
        unknown = catalog.unknown_provider(p.provider) if p.provider is not None else None
        if isinstance(price, str) and unknown:
            problems.append((("pools", i, "provider"), f"{unknown}; or give price_usd_per_gpu_h"))
        elif isinstance(price, str):
            problems.append((("pools", i, "price_usd_per_gpu_h"), price))
        else:
            prices[p.name] = price


# -- workloads ---------------------------------------------------------------------------------


def _check_workload(scn: schema.Scenario, i: int, w, pools: dict, names: dict[str, int],
                    problems: Problems) -> None:
    """Workload i: its pools, whether it fits the largest of them, `after`, and earliest_start."""
    usable = w.pools if w.pools is not None else list(pools)
    for j, name in enumerate(w.pools or []):
        if name not in pools:
            problems.append((("workloads", i, "pools", j), f"no pool named {name!r} (pools: {', '.join(pools)})"))
    fits = [pools[n] for n in usable if n in pools]
    if fits:
        largest = max(fits, key=lambda p: p.max_count)
        if w.accelerators > largest.max_count:
            problems.append((("workloads", i, "accelerators"),
                             f"must be <= {largest.max_count} (largest pool it may use: {largest.name}), "
                             f"got {w.accelerators}"))
    for j, dep in enumerate(w.after):
        if dep not in names:
            problems.append((("workloads", i, "after", j),
                             f"no workload named {dep!r} (workloads: {', '.join(names)})"))
        elif dep == w.name:
            problems.append((("workloads", i, "after", j), "a workload cannot wait for itself"))
    if w.earliest_start is not None and w.earliest_start < scn.project.start:
        problems.append((("workloads", i, "earliest_start"),
                         f"must be on or after project.start ({scn.project.start}), got {w.earliest_start}"))


def _check_cycle(scn: schema.Scenario, names: dict[str, int], problems: Problems) -> None:
    cycle = _find_cycle({w.name: [d for d in w.after if d in names and d != w.name] for w in scn.workloads})
    if cycle:
        problems.append((("workloads", names[cycle[0]], "after"),
                         "dependency cycle: " + " -> ".join(cycle) + " (no workload in it could ever start)"))


# -- correlations ------------------------------------------------------------------------------


def _check_correlations(scn: schema.Scenario, problems: Problems) -> None:
    """Each entry names two distinct uncertain inputs, no pair twice; then, if nothing else is
    wrong so far, the whole set must be consistent."""
    dists = schema.uncertain_inputs(scn)
    seen_pairs: dict = {}
    matrix: list = []
    data = scn.model_dump(mode="python", exclude={"variants"}) if scn.correlations else {}
    for i, c in enumerate(scn.correlations):
        pair = _correlation_inputs(i, c, data, dists, problems)
        if len(pair) == 2:
            if pair[0] == pair[1]:
                problems.append((("correlations", i, "between"), "an input cannot be correlated with itself"))
            elif frozenset(pair) in seen_pairs:
                problems.append((("correlations", i, "between"),
                                 f"this pair is already correlated (correlations[{seen_pairs[frozenset(pair)]}])"))
            else:
                seen_pairs[frozenset(pair)] = i
                matrix.append((pair[0], pair[1], float(c.rank)))
    if matrix and not problems:
        _check_correlation_matrix(matrix, problems)


def _correlation_inputs(i: int, c, data: dict, dists, problems: Problems) -> list:
    """The concrete paths of correlations[i].between that resolve to uncertain inputs."""
    pair: list = []
    for j, text in enumerate(c.between):
        try:
            parsed = parse_path(text)
            concrete = resolve_path(copy.deepcopy(data), parsed, text)
            get_path(data, concrete)
        except (ValueError, KeyError, IndexError, TypeError) as e:
            msg = str(e) if isinstance(e, ValueError) else f"{text}: no such key"
            problems.append((("correlations", i, "between", j), msg))
            continue
        if concrete not in dists:
            problems.append((("correlations", i, "between", j),
                             f"{text} is not uncertain (give it as a distribution to correlate it)"))
        else:
            pair.append(concrete)
    return pair


def _check_correlation_matrix(matrix: list, problems: Problems) -> None:
    names = sorted({p for a, b, _ in matrix for p in (a, b)}, key=str)
    index = {p: k for k, p in enumerate(names)}
    m = np.eye(len(names))
    for a, b, r in matrix:
        m[index[a], index[b]] = m[index[b], index[a]] = rank_to_pearson(r)
    if np.linalg.eigvalsh(m).min() <= 1e-12:
        problems.append((("correlations",), "these rank correlations are not consistent with one another (their "
                         "matrix is not positive definite); weaken some of them"))


def _check_actuals_map(scn: schema.Scenario, names: dict[str, int], problems: Problems) -> None:
    """Every target of actuals.map is a workload."""
    for pattern, target in scn.actuals.map.items():
        if target not in names:
            close = difflib.get_close_matches(target, list(names), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append((("actuals", "map", pattern),
                             f"no workload named {target!r}{hint} (workloads: {', '.join(names)})"))


def _check_deadline(scn: schema.Scenario, problems: Problems) -> None:
    if scn.project.deadline is not None:
        horizon_h = hours_between(scn.project.start, scn.project.deadline)
        if horizon_h > scn.simulation.horizon:
            problems.append((("simulation", "horizon"), "must reach past project.deadline"))


def _check_calendar(scn: schema.Scenario, problems: Problems) -> None:
    """The simulated time must stay within the calendar (dates stop at year 9999)."""
    start, horizon = scn.project.start, float(scn.simulation.horizon)
    room = hours_between(start, LAST_MONTH)
    if horizon < room:
        return
    if "horizon" in scn.simulation.model_fields_set:
        problems.append((("simulation", "horizon"),
                         f"project.start ({start}) + horizon ({horizon / 8760:g} y) ends after {LAST_MONTH:%Y-%m} "
                         f"and dates stop at year 9999; make it less than {max(room, 0) / 8760:g} y"))
    else:
        problems.append((("project", "start"),
                         f"with the default simulation.horizon ({horizon / 8760:g} y) the simulation would run past "
                         f"{LAST_MONTH:%Y-%m}, and dates stop at year 9999; give simulation.horizon (less than "
                         f"{max(room, 0) / 8760:g} y) or an earlier start"))


def _upper(x: Any) -> float:
    """A number, or the P99.9 of a distribution (what a sample can plausibly reach)."""
    if not isinstance(x, Dist):
        return float(x)
    with np.errstate(all="ignore"):
        return float(x.ppf(0.999))


def _check_run_count(scn: schema.Scenario, problems: Problems) -> None:
    """Every run is kept in memory during a replication: refuse counts that cannot fit."""
    counts = [_upper(w.runs) for w in scn.workloads]
    total = sum(counts)
    if total > MAX_RUNS:
        i = max(range(len(counts)), key=counts.__getitem__)
        dist = " (at its P99.9)" if isinstance(scn.workloads[i].runs, Dist) else ""
        problems.append((("workloads", i, "runs"),
                         f"the scenario asks for {total:,.0f} runs in all (this workload {counts[i]:,.0f}{dist}); "
                         f"at most {MAX_RUNS:,} can be simulated: model a sample of them, or fewer, larger runs"))


def _check_dist_ranges(scn: schema.Scenario, problems: Problems) -> None:
    """A distribution whose samples can overflow (`{dist: lognormal, median: 2, sigma: 300}`) is
    refused where it is given."""
    for path, d in schema.uncertain_inputs(scn).items():
        with np.errstate(all="ignore"):
            ends = [float(x) for x in d.ppf(np.array([0.001, 0.999]))]
        if not all(math.isfinite(x) and abs(x) <= MAX_MAGNITUDE for x in ends):
            problems.append((path, f"this distribution cannot be computed with: its P0.1..P99.9 range is {ends[0]:.3g} "
                                   f"to {ends[1]:.3g} (too large, or not a number); narrow it"))


_SLOW_WHEN_SMALL = ("mfu", "efficiency")  # inputs that lengthen a run as they get smaller


def _worst(scn: schema.Scenario) -> schema.Scenario:
    """The scenario with every distribution at the end that makes runs longest and dearest (P99.9,
    or P0.1 for MFU and scaling efficiency)."""

    def pick(d: Dist, path: tuple) -> float:
        with np.errstate(all="ignore"):
            return float(d.ppf(0.001 if path and path[-1] in _SLOW_WHEN_SMALL else 0.999))

    return schema.map_dists(scn, pick)


def _size_key(w) -> str:
    """The size input of a workload most likely to blame for a huge run (the largest given)."""
    given = [k for k in ("params", "tokens", "flop_per_run", "gpu_hours_per_run", "hours_per_run")
             if getattr(w, k) is not None]
    return max(given, key=lambda k: abs(_upper(getattr(w, k))))


def _check_magnitudes(scn: schema.Scenario, catalog: Catalog, prices: dict[str, PoolPrice],
                      problems: Problems) -> None:
    """FLOP, hours and cost of one run, and price curves, must be finite numbers the simulation can
    add up (`params: 1e308` would give an infinite cost)."""
    worst = _worst(scn)
    horizon = float(scn.simulation.horizon)
    for i, p in enumerate(worst.pools):
        if not _finite_curve(p, _upper(prices[p.name].usd_per_gpu_h), scn.project.start, horizon):
            problems.append((("pools", i, "price_curve"),
                             "the price this curve gives within simulation.horizon is too large to compute "
                             "with (it overflows); check annual_decline and reference"))
    for i, w in enumerate(worst.workloads):
        usable = [p for p in worst.pools if (w.pools is None or p.name in w.pools) and p.max_count >= w.accelerators]
        for p in usable:
            acc, price = catalog.accelerators[p.accelerator], _upper(prices[p.name].usd_per_gpu_h)
            size = _run_magnitude(w, acc, price)
            if size:
                problems.append((("workloads", i, _size_key(scn.workloads[i])),
                                 f"one run on pool {p.name} would take {size}, too large to compute with; check "
                                 "the units of this workload's size"))
                break
            size = _run_magnitude(w, acc, price, _length_factor(w.run_length))
            if size:
                problems.append((("workloads", i, "run_length", "sigma"),
                                 f"the longest runs (P99.9 of run_length) on pool {p.name} would take {size}, too "
                                 "large to compute with; use a smaller sigma"))
                break


def _finite_curve(p, price: float, start: date, horizon: float) -> bool:
    try:
        curve = make_curve(p.price_curve, price, start)
        values = (curve.at(0.0), curve.at(horizon), curve.integral(0.0, horizon))
    except (OverflowError, ZeroDivisionError, ValueError):
        return False
    return all(math.isfinite(v) and abs(v) <= MAX_MAGNITUDE for v in values)


def _length_factor(rl) -> float:
    """How much longer than its size the P99.9 run is under `run_length`."""
    if rl.kind == "lognormal":
        return math.exp(min(3.09 * float(rl.sigma), 700.0))
    return 6.91 if rl.kind == "exponential" else 1.0


def _run_magnitude(w, acc, price: float, factor: float = 1.0) -> str | None:
    """None when one run's FLOP, hours and cost (its length x `factor`) are usable numbers, else
    what overflows."""
    try:
        with np.errstate(all="ignore"):
            flop, hours, gpu_h = run_size(w, acc)
            flop, hours, gpu_h = (None if flop is None else flop * factor), hours * factor, gpu_h * factor
            cost = float(gpu_h) * price * _upper(w.runs)
    except (OverflowError, ZeroDivisionError, ValueError):
        return "an amount that overflows"
    for value, what in ((flop, "FLOP"), (hours, "hours"), (gpu_h, "accelerator-hours"), (cost, "USD in all")):
        if value is not None and not (math.isfinite(float(value)) and abs(float(value)) <= MAX_MAGNITUDE):
            return f"{float(value):.3g} {what}"
    return None


def correlation_pairs(scn: schema.Scenario) -> list[tuple[tuple, tuple, float]]:
    """(input path, input path, rank correlation) for each entry of a validated scenario's
    `correlations:`, with list items as indices."""
    data = scn.model_dump(mode="python", exclude={"variants"})
    return [(*(resolve_path(copy.deepcopy(data), parse_path(t), t) for t in c.between), float(c.rank))
            for c in scn.correlations]


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """The first dependency cycle a depth-first search meets (starting from each node in turn,
    following edges in order), as [a, b, ..., a]; None when there is none."""
    color: dict[str, int] = {}  # absent: unseen, 1: on the current path, 2: done
    for n in graph:
        if color.get(n) is None:
            found = _cycle_from(n, graph, color)
            if found:
                return found
    return None


def _cycle_from(root: str, graph: dict[str, list[str]], color: dict[str, int]) -> list[str] | None:
    """Depth-first search from root with an explicit stack (no recursion limit on long chains)."""
    path = [root]
    edges = [iter(graph.get(root, []))]
    color[root] = 1
    while edges:
        for m in edges[-1]:
            if color.get(m) == 1:
                return path[path.index(m):] + [m]
            if color.get(m) is None:
                color[m] = 1
                path.append(m)
                edges.append(iter(graph.get(m, [])))
                break
        else:
            color[path.pop()] = 2
            edges.pop()
    return None


# --------------------------------------------------------------------------------------------
# Variants and overrides


def deep_merge(base: Any, over: Any) -> Any:
    """Mappings merge key by key; anything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


VARIANT_KEYS = {"description", "set"} | (set(schema.Scenario.model_fields) - {"variants"})


def apply_variant(raw: dict, name: str, file: str, lines: dict) -> dict:
    variants = raw.get("variants") or {}
    if not isinstance(variants, dict) or name not in variants:
        have = ", ".join(variants) if isinstance(variants, dict) and variants else "none defined"
        raise ScenarioError(file, [Issue(("variants",), f"no variant named {name!r} (variants: {have})",
                                         _line(lines, ("variants",)))])
    spec = variants[name]
    where = ("variants", name)
    if not isinstance(spec, dict):
        raise ScenarioError(file, [Issue(where, f"expected a mapping of overrides, got {_found(spec)}",
                                         _line(lines, where))])
    bad = [k for k in spec if k not in VARIANT_KEYS]
    if bad:
        raise ScenarioError(file, [Issue((*where, bad[0]), f"unknown key {bad[0]!r} (allowed in a variant: "
                                         f"{', '.join(sorted(VARIANT_KEYS))})", _line(lines, (*where, bad[0])))])
    sets = spec.get("set") or {}
    if not isinstance(sets, dict):
        raise ScenarioError(file, [Issue((*where, "set"),
                                         f"expected a mapping of key path -> value, got {_found(sets)}",
                                         _line(lines, (*where, "set")))])
    out = {k: v for k, v in raw.items() if k != "variants"}
    replaced = _replaced_lists(spec, sets)
    if replaced and "correlations" not in spec and "correlations" in out:
        # the base's correlations, kept: a position in a list the variant replaces is read as the name
        # it meant in the base (in the variant's list it may be another item, or none); a name the
        # variant's list lacks is then an error, as one written by name is
        out["correlations"] = name_positions(out["correlations"], list_names(raw, replaced))
    out = deep_merge(out, {k: v for k, v in spec.items() if k not in ("description", "set")})
    for key, value in sets.items():
        try:
            set_path(out, str(key), copy.deepcopy(value))
        except ValueError as e:
            issue = Issue((*where, "set", key), str(e), _line(lines, (*where, "set", key)))
            raise ScenarioError(file, [issue]) from None
    out["variants"] = {}
    return out


def _replaced_lists(spec: dict, sets: dict) -> tuple[str, ...]:
    """The named lists (pools, workloads) a variant gives anew, as a key or as a `set:` of the whole list."""
    whole = set()
    for key in sets:
        try:
            path = parse_path(str(key))
        except ValueError:
            continue  # reported when it is set
        if len(path) == 1:
            whole.add(path[0])
    return tuple(s for s in NAMED_LISTS if s in spec or s in whole)


def apply_sets(raw: dict, sets: list[str], file: str) -> dict:
    out = copy.deepcopy(raw)
    for item in sets:
        key, eq, text = item.partition("=")
        if not eq:
            raise ScenarioError(file, [Issue((), f"--set {item!r}: expected KEY=VALUE, e.g. workloads[0].mfu=0.35")])
        value = read_value(text, file, f"--set {item!r}") if text.strip() else ""
        try:
            set_path(out, key, value)
        except ValueError as e:
            raise ScenarioError(file, [Issue((), f"--set {item!r}: {e}")]) from None
    return out


# --------------------------------------------------------------------------------------------
# Entry point


@dataclass
class Loaded:
    file: str
    raw: dict
    scenario: schema.Scenario
    catalog: Catalog
    prices: dict[str, PoolPrice]
    variant: str | None = None
    sets: list[str] = field(default_factory=list)
    priors_used: list = field(default_factory=list)  # sim.priors.Used: keys filled from priors

    @property
    def priors(self) -> list[dict]:
        """The keys filled from priors, with their values and sources (for summary.json)."""
        return [u.as_dict() for u in self.priors_used]

    @property
    def resolved(self) -> dict:
        """The resolved scenario as plain JSON-able data (defaults filled in)."""
        return self.scenario.model_dump(mode="json")

    @property
    def sha256(self) -> str:
        text = json.dumps(self.resolved, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str | None:
    """Why a file of this mode cannot be a scenario (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, expected a scenario .yaml file"
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"is {kind}, not a regular file; give a scenario .yaml file"


def _stat(p: Path, file: str) -> None:
    """Refuse, before opening it, anything that is not a readable regular file of sane size (a FIFO
    or a device would block or never end)."""
    try:
        st = p.stat()
    except FileNotFoundError:
        if p.is_symlink():
            raise ScenarioError(file, [Issue((), f"is a symbolic link to {os.readlink(p)}, which does not exist; "
                                             "fix the link or give the file itself")]) from None
        raise ScenarioError(file, [Issue((), "no such file")]) from None
    except (OSError, ValueError) as e:
        raise ScenarioError(file, [Issue((), f"cannot read the file: {getattr(e, 'strerror', None) or e}")]) from None
    why = _not_regular(st.st_mode)
    if why:
        raise ScenarioError(file, [Issue((), why)])
    if st.st_size > MAX_FILE_BYTES:
        raise ScenarioError(file, [Issue((), f"is {st.st_size:,} bytes; a scenario file may be at most "
                                         f"{MAX_FILE_BYTES // 1_000_000} MB")])


def read_text(path: str | Path, file: str) -> str:
    """The text of a scenario file: a regular file of at most MAX_FILE_BYTES, UTF-8."""
    p = Path(path)
    _stat(p, file)
    try:  # non-blocking, and checked again once open, in case the file was swapped for a FIFO meanwhile
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            why = _not_regular(os.fstat(f.fileno()).st_mode)
            data = b"" if why else f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ScenarioError(file, [Issue((), f"cannot read the file: {e.strerror or e}")]) from None
    if why or len(data) > MAX_FILE_BYTES:
        raise ScenarioError(file, [Issue((), why or f"is larger than {MAX_FILE_BYTES // 1_000_000} MB, the most "
                                         "a scenario file may be")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ScenarioError(file, [Issue((), f"is not UTF-8 text: byte 0x{data[e.start]:02x} on this line cannot "
                                         "be read; save the file as UTF-8", line)]) from None


def load(path: str | Path, variant: str | None = None, sets: list[str] | None = None) -> Loaded:
    file = str(path)
    raw, lines = read_yaml(read_text(path, file), file)
    return load_data(raw, file, lines, variant=variant, sets=sets or [])


def load_data(raw: Any, file: str, lines: dict | None = None, variant: str | None = None,
              sets: list[str] | None = None) -> Loaded:
    lines = lines or {}
    sets = sets or []
    if not isinstance(raw, dict):
        raise ScenarioError(file, [Issue((), f"expected a mapping with project, pools and workloads at the top, "
                                         f"got {type(raw).__name__}", 1)])
    raw = _unshare(raw, file)  # no block shared by two places (YAML aliases, or data built in Python)
    source = raw
    if variant:
        raw = apply_variant(raw, variant, file, lines)
    if sets:
        raw = apply_sets(raw, sets, file)
    filled, used = with_priors(raw, file, lines)
    try:
        scn = schema.Scenario.model_validate(filled)
    except ValidationError as e:
        raise ScenarioError(file, _issues_from_validation(e, lines)) from None
    catalog, acc_problems = builtin().with_specs(scn.accelerators)
    catalog, grid_problems = grid_profiles(scn, catalog, file, lines)
    problems, prices = check(scn, catalog)
    problems = acc_problems + grid_problems + problems
    if not variant:  # every variant must resolve to a valid scenario too
        for name in scn.variants:
            try:
                load_data(raw, file, lines, variant=name)
            except ScenarioError as e:
                problems.extend(((("variants", name, *i.path)), f"(in variant {name}) {i.message}") for i in e.issues)
    if problems:
        raise ScenarioError(file, [Issue(p, m + _dropped_hint(variant, p, m, source), _line(lines, p))
                                   for p, m in problems])
    return Loaded(file, raw, scn, catalog, prices, variant, sets, used)


def grid_profiles(scn: schema.Scenario, catalog: Catalog, file: str, lines: dict) -> tuple[Catalog, Problems]:
    """The grid profiles the scenario names: shipped ones (sim/data/grid_profiles.yaml) are in the
    catalog already; a name ending in .csv is a file (relative to the scenario's folder), read here
    and added to the catalog. A file that cannot be read, or a bad row, is a ScenarioError naming
    the CSV file, its row and column; an unknown name is a problem at its key."""
    problems: Problems = []
    found: dict[str, grid.Profile] = {}
    for path, name in power.profile_names(scn):
        if name in catalog.profiles or name in found:
            continue
        if not name.lower().endswith(".csv"):
            close = difflib.get_close_matches(name, list(catalog.profiles), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append((path, f"unknown grid profile {name!r}{hint} (the shipped profiles and cloud regions "
                             "are listed by `sim grid`; or a CSV file ending in .csv)"))
            continue
        where = Path(name) if Path(name).is_absolute() else Path(file).parent / name
        try:
            text = read_text(where, str(where))
        except ScenarioError as e:
            raise ScenarioError(file, [Issue(path, f"grid profile {name}: {e.issues[0].message}",
                                             _line(lines, path))]) from None
        profile, bad = grid.from_csv_rows(name, list(csv.reader(io.StringIO(text))))
        if bad is not None:
            row, column, why = bad
            col = f", column {column}" if column else ""
            raise ScenarioError(str(where), [Issue((), f"row {row}{col}: {why} (grid profile of {path_str(path)} "
                                                   f"in {file})", row)])
        found[name] = profile
    return (catalog.with_profiles(found) if found else catalog), problems


def _dropped_hint(variant: str | None, path: tuple, message: str, raw: dict) -> str:
    """For a top-level correlation that names what the variant drops (a workload or a pool): how
    to leave the correlations out of that variant."""
    spec = (raw.get("variants") or {}).get(variant) if variant and isinstance(raw.get("variants"), dict) else None
    if (tuple(path[:1]) != ("correlations",) or not isinstance(spec, dict)
            or "correlations" in spec or not ("no item named" in message or "no such key" in message)):
        return ""
    return (f"; the variant drops what this top-level correlation names: set `correlations: []` in variant "
            f"{variant} (or give it correlations of its own)")


def _explicit_priors(data: Any, path: tuple = ()) -> list[tuple]:
    """Paths of keys written `prior`."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _explicit_priors(v, (*path, k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _explicit_priors(v, (*path, i))]
    return [path] if data == priorsmod.PRIOR else []


def with_priors(raw: dict, file: str, lines: dict) -> tuple[dict, list]:
    """`raw` with the keys it leaves out (or writes `prior`) taken from the priors, unless
    `simulation.priors` is off; and what was filled (sim.priors.Used)."""
    sim = raw.get("simulation") if isinstance(raw.get("simulation"), dict) else {}
    if sim.get("priors") in ("off", False):
        asked = _explicit_priors(raw)
        if asked:
            raise ScenarioError(file, [Issue(p, "written `prior`, but priors are off (simulation.priors: off or "
                                             "--no-priors); give a value", _line(lines, p)) for p in asked])
        raw, problems = priorsmod.expand_experiments(raw)
        if problems:
            raise ScenarioError(file, [Issue(p, m, _line(lines, p)) for p, m in problems])
        return raw, []
    pri = priorsmod.builtin()
    own = sim.get("priors_file")
    if isinstance(own, str):
        where = Path(file).parent / own if not Path(own).is_absolute() else Path(own)
        try:
            pri = pri.layered(priorsmod.read_file(where))
        except priorsmod.PriorsError as e:
            path = ("simulation", "priors_file")
            raise ScenarioError(file, [Issue(path, str(e), _line(lines, path))]) from None
    filled, used, problems = priorsmod.apply(raw, pri)
    if problems:
        raise ScenarioError(file, [Issue(p, m, _line(lines, p)) for p, m in problems])
    unknown = [p for p in _explicit_priors(filled)]
    if unknown:
        raise ScenarioError(file, [Issue(p, "written `prior`, but there are priors only for " + ", ".join(
            priorsmod.KEYS), _line(lines, p)) for p in unknown])
    return filled, used
