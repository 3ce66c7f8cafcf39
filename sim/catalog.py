"""The built-in catalog of accelerators and prices (data files in sim/data/), merged with a
scenario's own `accelerators:` additions and overrides.

Every catalog entry carries a source and a date. Prices are per accelerator-hour (one GPU or one
TPU chip), by provider, tier and the date they were in force.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from importlib import resources

import yaml

from sim import units

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
            )
            for k, v in _read("accelerators.yaml")["accelerators"].items()
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
    return Catalog(acc, prices)


@dataclass(frozen=True)
class Catalog:
    accelerators: dict[str, Accelerator]
    prices: tuple[Price, ...]

    def with_specs(self, specs: dict) -> tuple[Catalog, list[tuple[tuple, str]]]:
        """Merge a scenario's `accelerators:` (id -> AcceleratorSpec). Returns the new catalog and
        a list of (path, message) problems."""
        acc = dict(self.accelerators)
        problems: list[tuple[tuple, str]] = []
        for key, spec in specs.items():
            base_id = spec.base or (key if key in acc else None)
            if spec.base is not None and spec.base not in self.accelerators:
                problems.append(
                    (("accelerators", key, "base"), f"unknown catalog accelerator {spec.base!r}; known: "
                     f"{', '.join(sorted(self.accelerators))}")
                )
                continue
            given = {k: v for k, v in spec.model_dump().items() if v is not None and k != "base"}
            if base_id is None:
                missing = [k for k in ("peak_flop_per_s", "tdp_w") if k not in given]
                if missing:
                    problems.append(
                        (("accelerators", key), f"a new accelerator (not in the catalog) needs "
                         f"{' and '.join(missing)}, or `base:` naming a catalog entry to start from")
                    )
                    continue
                acc[key] = Accelerator(
                    id=key, name=given.get("name", key), vendor=given.get("vendor", ""),
                    peak_flop_per_s=given["peak_flop_per_s"], tdp_w=given["tdp_w"],
                    memory_gb=given.get("memory_gb"), source=given.get("source", "scenario file"),
                    date=given.get("date"), note=given.get("note", ""), builtin=False,
                )
            else:
                base = self.accelerators[base_id]
                acc[key] = replace(base, id=key, builtin=False, source=given.get("source", "scenario override"),
                                   **{k: v for k, v in given.items() if k != "source"})
        return Catalog(acc, self.prices), problems

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
