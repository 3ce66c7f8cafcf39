"""The built-in catalog of accelerators and prices (data files in sim/data/), merged with a
scenario's own `accelerators:` additions and overrides.

Every catalog entry carries a source and a date. Prices are per accelerator-hour (one GPU or one
TPU chip), by provider, tier and the date they were in force.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from importlib import resources

import yaml

from sim import grid, units

TIERS = ("on_demand", "spot", "reserved_1y", "reserved_3y")


@dataclass(frozen=True)
class Accelerator:
    id: str
    name: str
    vendor: str
    peak_flop_per_s: float
    tdp_w: float
    memory_gb: float | None
    source: str
    date: date | None
    note: str = ""
    builtin: bool = True
    power_w: float | None = None  # measured mean draw while training (else tdp_w x a power factor)
    host_w: float | None = None  # the host's share per accelerator while busy: CPUs, memory, network, fans


@dataclass(frozen=True)
class Price:
    accelerator: str
    provider: str
    tier: str
    usd_per_gpu_h: float
    region: str
    date: date
    source: str
    note: str = ""
    default: bool = True

    def label(self) -> str:
        return f"{self.provider} {self.tier} {self.region} {self.date}".replace("  ", " ")


class CatalogDataError(RuntimeError):
    """A broken built-in data file: a bug in the package, not a user mistake."""


def _read(name: str) -> dict:
    return yaml.safe_load(resources.files("sim").joinpath(f"data/{name}").read_text())


@lru_cache(maxsize=1)
def builtin() -> Catalog:
    try:
        acc = {
            k: Accelerator(
                id=k,
                name=str(v["name"]),
                vendor=str(v.get("vendor", "")),
                peak_flop_per_s=float(v["peak_flop_per_s"]),
                tdp_w=float(v["tdp_w"]),
                memory_gb=float(v["memory_gb"]) if v.get("memory_gb") is not None else None,
                source=str(v["source"]),
                date=units.parse_date(v["date"]),
                note=str(v.get("note", "") or ""),
                power_w=float(v["power_w"]) if v.get("power_w") is not None else None,
                host_w=float(v["host_w"]) if v.get("host_w") is not None else None,
            )
            for k, v in _read("accelerators.yaml")["accelerators"].items()
        }
        host = _read("host_power.yaml")
        default_host = float(host["default"]["value"])
        by_acc = {k: float(v["value"]) for k, v in host["by_accelerator"].items()}
        acc = {k: replace(a, host_w=by_acc.get(k, default_host) if a.host_w is None else a.host_w)
               for k, a in acc.items()}
        profiles = {
            k: grid.Profile.of(k, table=v["gco2_per_kwh"], source=str(v["source"]))
            for k, v in _read("grid_profiles.yaml")["profiles"].items()
        }
        prices = tuple(
            Price(
                accelerator=str(p["accelerator"]),
                provider=str(p["provider"]),
                tier=str(p["tier"]),
                usd_per_gpu_h=float(p["usd_per_accelerator_hour"]),
                region=str(p.get("region", "") or ""),
                date=units.parse_date(p["date"]),
                source=str(p["source"]),
                note=str(p.get("note", "") or ""),
                default=bool(p.get("default", True)),
            )
            for p in _read("prices.yaml")["prices"]
        )
    except (KeyError, TypeError, ValueError) as e:  # pragma: no cover - guarded by tests/test_catalog.py
        raise CatalogDataError(f"built-in catalog data is malformed: {e!r}") from e
    return Catalog(acc, prices, profiles, default_host)


@dataclass(frozen=True)
class Catalog:
    accelerators: dict[str, Accelerator]
    prices: tuple[Price, ...]
    profiles: dict[str, grid.Profile] = field(default_factory=dict)  # grid carbon intensity, by name
    host_w: float = 0.0  # the host's share per accelerator for an accelerator that gives none

    def with_profiles(self, profiles: dict[str, grid.Profile]) -> Catalog:
        """The catalog with a scenario's own grid profiles (read from its CSV files) added."""
        return replace(self, profiles={**self.profiles, **profiles})

    def with_specs(self, specs: dict) -> tuple[Catalog, list[tuple[tuple, str]]]:
        """Merge a scenario's `accelerators:` (id -> AcceleratorSpec). An entry's `base:` names a
        catalog accelerator or another entry of the same scenario (resolved first; a cycle of
        `base:` is a problem). Returns the new catalog and a list of (path, message) problems."""
        acc = dict(self.accelerators)
        problems: list[tuple[tuple, str]] = []
        done: dict[str, bool] = {}  # id -> resolved without a problem

        def resolve(key: str, chain: tuple[str, ...]) -> bool:
            if key in done:
                return done[key]
            spec = specs[key]
            base = spec.base
            if base is not None and base != key and base in specs:  # another scenario accelerator
                if base in chain:
                    loop = " -> ".join((*chain[chain.index(base):], key, base))
                    problems.append((("accelerators", key, "base"), f"`base:` goes round in a cycle ({loop}); "
                                     "one of them must start from a catalog accelerator or give its own figures"))
                    done[key] = False
                    return False
                if not resolve(base, (*chain, key)):
                    done[key] = False
                    return False
            done[key] = self._merge(key, spec, acc, problems)
            return done[key]

        for key in specs:
            resolve(key, ())
        return replace(self, accelerators=acc), problems

    def _merge(self, key: str, spec, acc: dict, problems: list) -> bool:
        """Add scenario accelerator `key` to `acc` (its base, if any, already there)."""
        base_id = spec.base or (key if key in self.accelerators else None)
        if spec.base is not None and spec.base not in acc:
            problems.append((("accelerators", key, "base"), f"unknown accelerator {spec.base!r}; catalog: "
                             f"{', '.join(sorted(self.accelerators))} (or one defined under `accelerators:`)"))
            return False
        given = {k: v for k, v in spec.model_dump().items() if v is not None and k != "base"}
        if base_id is None:
            missing = [k for k in ("peak_flop_per_s", "tdp_w") if k not in given]
            if missing:
                problems.append((("accelerators", key), f"a new accelerator (not in the catalog) needs "
                                 f"{' and '.join(missing)}, or `base:` naming an accelerator to start from"))
                return False
            acc[key] = Accelerator(
                id=key, name=given.get("name", key), vendor=given.get("vendor", ""),
                peak_flop_per_s=given["peak_flop_per_s"], tdp_w=given["tdp_w"],
                memory_gb=given.get("memory_gb"), source=given.get("source", "scenario file"),
                date=given.get("date"), note=given.get("note", ""), builtin=False,
                power_w=given.get("power_w"), host_w=given.get("host_w", self.host_w),
            )
            return True
        base = acc[base_id] if spec.base is not None else self.accelerators[base_id]
        acc[key] = replace(base, id=key, builtin=False, source=given.get("source", "scenario override"),
                           **{k: v for k, v in given.items() if k != "source"})
        return True

    def price(self, accelerator: str, tier: str, provider: str | None, on: date) -> Price | None:
        """The list price in force on `on` for one provider: its latest entry dated on or before
        `on` (its earliest entry if all are later). With no provider named, each default provider's
        price in force is taken and the median one (the lower of the middle two) is returned."""
        rows = [
            p for p in self.prices
            if p.accelerator == accelerator and p.tier == tier
            and (p.provider == provider if provider is not None else p.default)
        ]
        in_force = []
        for prov in sorted({p.provider for p in rows}):
            mine = [p for p in rows if p.provider == prov]
            before = [p for p in mine if p.date <= on]
            in_force.append(max(before, key=lambda p: p.date) if before else min(mine, key=lambda p: p.date))
        if not in_force:
            return None
        in_force.sort(key=lambda p: (p.usd_per_gpu_h, p.provider))
        return in_force[(len(in_force) - 1) // 2]


@lru_cache(maxsize=1)
def preemption_bands() -> dict[str, float]:
    """Named spot-interruption bands -> representative monthly interruption frequency."""
    return {str(k): float(v) for k, v in _read("preemption_bands.yaml")["bands"].items()}
