"""The built-in catalog of accelerators and prices (data files in sim/data/), merged with a
scenario's own `accelerators:` additions and overrides.

Every catalog entry carries a source and a date. Prices are per accelerator-hour (one GPU or one
TPU chip), by provider, tier and the date they were in force.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources

import yaml

from sim import grid, units

TIERS = ("on_demand", "spot", "reserved_1y", "reserved_3y")
CHECKED = ("stored-copy", "memory", "estimate")  # how each price was checked
STALE_AFTER = timedelta(days=365)  # `sim catalog --stale`: a price in force that is older than this


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
    checked: str = ""  # stored-copy | memory | estimate (see the header of data/prices.yaml)

    def label(self) -> str:
        return f"{self.provider} {self.tier} {self.region} {self.date}".replace("  ", " ")


class CatalogDataError(RuntimeError):
    """A broken built-in data file: a bug in the package, not a user mistake."""


def _read(name: str) -> dict:
    # libyaml's loader where installed: the same data as yaml.safe_load, ten times faster (the grid profiles)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(resources.files("sim").joinpath(f"data/{name}").read_text(), Loader=loader)


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
        profiles, grid_regions = grid.shipped(_read("grid_profiles.yaml"))
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
                checked=str(p["checked"]),
            )
            for p in _read("prices.yaml")["prices"]
        )
    except (KeyError, TypeError, ValueError) as e:  # pragma: no cover - guarded by tests/test_catalog.py
        raise CatalogDataError(f"built-in catalog data is malformed: {e!r}") from e
    return Catalog(acc, prices, profiles, default_host, grid_regions)


@dataclass(frozen=True)
class Catalog:
    accelerators: dict[str, Accelerator]
    prices: tuple[Price, ...]
    profiles: dict[str, grid.Profile] = field(default_factory=dict)  # grid carbon intensity, by name
    host_w: float = 0.0  # the host's share per accelerator for an accelerator that gives none
    grid_regions: dict[str, grid.Region] = field(default_factory=dict)  # cloud region id -> its grid's profile

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

    def providers(self) -> list[str]:
        return sorted({p.provider for p in self.prices})

    def provider_id(self, name: str) -> str | None:
        """The catalog's id for a provider name, matched case-insensitively (None if unknown)."""
        ids = {p.casefold(): p for p in self.providers()}
        return ids.get(name.strip().casefold())

    def unknown_provider(self, name: str) -> str | None:
        """None for a known provider; else a sentence naming it, with a did-you-mean."""
        if self.provider_id(name) is not None:
            return None
        known = self.providers()
        close = difflib.get_close_matches(name.strip().casefold(), known, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown provider {name!r}{hint} (catalog providers: {', '.join(known)})"

    def in_force(self, on: date) -> list[Price]:
        """Per accelerator, provider and tier, the entry in force on `on` (latest dated on or before)."""
        latest: dict[tuple, Price] = {}
        for p in self.prices:
            key = (p.accelerator, p.provider, p.tier)
            if p.date <= on and (key not in latest or p.date > latest[key].date):
                latest[key] = p
        return sorted(latest.values(), key=lambda p: (p.accelerator, p.provider, p.tier))

    def stale(self, on: date) -> list[Price]:
        """The entries in force on `on` whose list price is more than STALE_AFTER old (superseded
        entries are price history, not stale)."""
        return [p for p in self.in_force(on) if on - p.date > STALE_AFTER]

    def price(self, accelerator: str, tier: str, provider: str | None, on: date) -> Price | None:
        """The list price in force on `on` for one provider (named case-insensitively): its latest
        entry dated on or before `on` (its earliest entry if all are later). With no provider named,
        the median (the lower of the middle two) of the default providers' prices in force on `on`;
        providers first listed after `on` count only when none had a price by then."""
        want = provider.strip().casefold() if provider is not None else None
        rows = [
            p for p in self.prices
            if p.accelerator == accelerator and p.tier == tier
            and (p.provider.casefold() == want if want is not None else p.default)
        ]
        in_force, later = [], []
        for prov in sorted({p.provider for p in rows}):
            mine = [p for p in rows if p.provider == prov]
            before = [p for p in mine if p.date <= on]
            if before:
                in_force.append(max(before, key=lambda p: p.date))
            else:
                later.append(min(mine, key=lambda p: p.date))
        # A provider whose first price is later than `on` only counts when no provider had one by then.
        in_force = in_force or later
        if not in_force:
            return None
        in_force.sort(key=lambda p: (p.usd_per_gpu_h, p.provider))
        return in_force[(len(in_force) - 1) // 2]


CAPACITY_BLOCK = "aws-capacity-block"  # pseudo-provider: EC2 Capacity Blocks, priced as on_demand rows
MARKET_INDEX = "market-index"  # pseudo-provider: market-wide rental indices, not a provider's list


def coverage_markdown(cat: Catalog) -> str:
    """The coverage table of docs/catalog.md: per accelerator and tier, how many providers have a
    price, how many of those were checked against a stored copy, and the newest date (market
    indices left out)."""
    cols = [*TIERS, "capacity block"]
    lines = ["| accelerator | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    listed = [p for p in cat.prices if p.provider != MARKET_INDEX]
    for acc in sorted({p.accelerator for p in listed}):
        cells = []
        for col in cols:
            rows = [p for p in listed if p.accelerator == acc and (
                p.provider == CAPACITY_BLOCK and p.tier == "on_demand" if col == "capacity block"
                else p.tier == col and p.provider != CAPACITY_BLOCK)]
            provs = {p.provider for p in rows}
            checked = {p.provider for p in rows if p.checked == "stored-copy"}
            cells.append(f"{len(provs)} ({len(checked)} checked), {max(p.date for p in rows):%Y-%m}" if rows else "-")
        lines.append(f"| {acc} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@lru_cache(maxsize=1)
def preemption_bands() -> dict[str, float]:
    """Named spot-interruption bands -> representative monthly interruption frequency."""
    return {str(k): float(v) for k, v in _read("preemption_bands.yaml")["bands"].items()}
