"""Grid carbon intensity over calendar time: a profile of typical values by month of the year and
hour of the day, and its exact integral over the hours a run uses.

A `Profile` is a 12 x 24 table of gCO2/kWh (month of the year x hour of the day, in the
scenario's clock: hours since 00:00 of project.start, the shipped profiles in UTC). An
`Intensity` is a profile laid on the calendar from a start date: kg CO2 per kWh as a step
function of hours since the start, one step an hour, with `integral(a, b)` in kg/kWh x hours
(a cumulative sum, extended as far as it is asked for). A `Flat` intensity is one number.

Pure: no files (the shipped profiles are read by sim.catalog and built here by `shipped`, a user's
CSV by sim.loader through `from_csv_rows`), no scenario objects.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache

import numpy as np

MONTHS, HOURS = 12, 24


@dataclass(frozen=True)
class Profile:
    """gCO2/kWh by month of the year (rows, January first) and hour of the day (columns, 0-23)."""

    name: str
    table: tuple[tuple[float, ...], ...]
    source: str = ""
    date: str = ""  # of the data (a shipped profile's year ends on it)
    checked: str = ""  # whether the figures were checked against a stored copy, and how
    basis: str = ""  # direct (operational) or life-cycle emissions
    annual_mean: float | None = None  # the source's figure for the year, which the table reproduces
    title: str = ""

    def mean(self) -> float:
        return float(np.mean(self.table))

    def year_mean(self, year: int) -> float:
        """The mean over the hours of a calendar year (months weighted by their days)."""
        days = np.array([calendar.monthrange(year, m)[1] for m in range(1, 13)], dtype=float)
        return float(days @ np.asarray(self.table).mean(axis=1) / days.sum())

    def flat(self) -> bool:
        return len({x for row in self.table for x in row}) == 1

    @staticmethod
    def of(name: str, monthly=None, hourly=None, table=None, source: str = "") -> Profile:
        """A profile from a full 12 x 24 table, or from 12 monthly means and/or a 24-hour typical
        day: with both, month m at hour h is monthly[m] x hourly[h] / mean(hourly) (the day's
        shape scaled to the month's mean); with one, the other dimension is flat."""
        if table is not None:
            arr = np.asarray(table, dtype=float)
        else:
            m = np.asarray(monthly if monthly is not None else [1.0] * MONTHS, dtype=float)
            h = np.asarray(hourly if hourly is not None else [1.0] * HOURS, dtype=float)
            if monthly is not None and h.mean() > 0:
                h = h / h.mean()
            arr = np.outer(m, h)
        if arr.shape != (MONTHS, HOURS) or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"profile {name!r}: expected 12 x 24 finite values >= 0, got shape {arr.shape}")
        return Profile(name, tuple(tuple(float(x) for x in row) for row in arr), source)


@dataclass(frozen=True)
class Flat:
    """One grid intensity whatever the time (kg CO2 per kWh)."""

    kg_per_kwh: float

    def integral(self, a: float, b: float) -> float:
        return self.kg_per_kwh * (b - a)

    def mean(self, a: float, b: float) -> float:
        return self.kg_per_kwh


class Intensity:
    """A profile on the calendar from `start`: kg CO2 per kWh in hour i since 00:00 of `start` is
    the profile's value for that hour's month and hour of the day."""

    def __init__(self, profile: Profile, start: date):
        self.profile = profile
        self.start = start
        self._kg = np.asarray(profile.table, dtype=float) / 1000.0
        self._values = np.zeros(0)
        self._cum = np.zeros(1)
        self._grow(24 * 366)

    def _grow(self, hours: int) -> None:
        """Tabulate at least `hours` hours (doubling, so a long run costs a few extensions)."""
        n = max(hours, 2 * len(self._values))
        t = np.datetime64(self.start, "h") + np.arange(n)
        month = t.astype("datetime64[M]").astype(np.int64) % MONTHS
        hour = t.astype(np.int64) % HOURS
        self._values = self._kg[month, hour]
        self._cum = np.concatenate(([0.0], np.cumsum(self._values)))

    def _F(self, t: float) -> float:
        """kg/kWh x hours over [0, t] (t >= 0, finite)."""
        i = int(t)
        if i >= len(self._values):
            self._grow(i + 1)
        return float(self._cum[i]) + (t - i) * float(self._values[i])

    def integral(self, a: float, b: float) -> float:
        """kg/kWh x hours over [a, b] (hours since the start)."""
        return self._F(b) - self._F(a)

    def integrals(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """`integral` of many spans at once (arrays of hours since the start, >= 0)."""
        if len(b) and int(np.max(b)) >= len(self._values):
            self._grow(int(np.max(b)) + 1)

        def F(t):
            i = t.astype(np.int64)
            return self._cum[i] + (t - i) * self._values[i]

        return F(np.asarray(b, dtype=float)) - F(np.asarray(a, dtype=float))

    def mean(self, a: float, b: float) -> float:
        """Mean kg/kWh over [a, b] (the value at a when a == b)."""
        if b > a:
            return self.integral(a, b) / (b - a)
        return self.integral(a, a + 1.0)


@lru_cache(maxsize=64)
def intensity(profile: Profile, start: date) -> Intensity:
    """The profile laid from `start` (shared: replications of a scenario build it once)."""
    return Intensity(profile, start)


# --------------------------------------------------------------------------------------------
# The shipped profiles (sim/data/grid_profiles.yaml, read by sim.catalog)


@dataclass(frozen=True)
class Region:
    """A cloud region whose id may be used as a profile name: the profile of its grid."""

    id: str
    provider: str
    location: str
    profile: str


def shipped(doc: dict) -> tuple[dict[str, Profile], dict[str, Region]]:
    """Profiles by name from the parsed data file, and its cloud regions. A profile's
    `gco2_per_kwh` is a 12 x 24 table or one number (a flat profile: an annual figure, no shape).
    A region's id is also a key of the returned profiles, for the profile of its grid."""
    profiles = {}
    for k, v in doc["profiles"].items():
        values = v["gco2_per_kwh"]
        table = [[float(values)] * HOURS] * MONTHS if isinstance(values, int | float) else values
        mean = v.get("annual_mean")
        profiles[k] = replace(Profile.of(k, table=table, source=str(v["source"])), date=str(v["date"]),
                              checked=str(v["checked"]), basis=str(v.get("basis", "")), title=str(v["name"]),
                              annual_mean=float(mean) if mean is not None else None)
    regions = {k: Region(k, str(v["provider"]), str(v["location"]), str(v["profile"]))
               for k, v in (doc.get("regions") or {}).items()}
    clash = sorted(set(regions) & set(profiles))
    missing = sorted(r.id for r in regions.values() if r.profile not in profiles)
    if clash or missing:
        raise ValueError(f"grid regions: {clash or missing} {'name a profile' if clash else 'name no profile'}")
    return {**profiles, **{k: profiles[r.profile] for k, r in regions.items()}}, regions


# --------------------------------------------------------------------------------------------
# A user's CSV

CSV_VALUE = "gco2_per_kwh"


def from_csv_rows(name: str, rows: list[list[str]]) -> tuple[Profile | None, tuple[int, str, str] | None]:
    """A profile from CSV rows (the header first): columns `month` (1-12) and/or `hour` (0-23)
    and `gco2_per_kwh`. Months only: 12 rows; hours only: 24 rows (a typical day, every month);
    both: all 288 (month, hour) pairs. Returns (profile, None) or (None, (row, column, why)),
    rows counted from 1 with the header as row 1."""
    if not rows:
        return None, (1, "", "the file is empty; expected a header such as month,hour,gco2_per_kwh")
    header = [h.strip().lstrip("\ufeff").lower() for h in rows[0]]  # a spreadsheet's byte-order mark
    keys = [k for k in ("month", "hour") if k in header]
    unknown = [h for h in header if h not in ("month", "hour", CSV_VALUE)]
    if unknown or CSV_VALUE not in header or not keys:
        bad = unknown[0] if unknown else (CSV_VALUE if CSV_VALUE not in header else "month")
        return None, (1, bad, f"expected the columns month and/or hour, and {CSV_VALUE}; got {', '.join(header)}")
    col = {k: header.index(k) for k in (*keys, CSV_VALUE)}
    lims = {"month": (1, 12), "hour": (0, 23)}
    seen: dict[tuple, float] = {}
    for r, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            return None, (r, "", f"expected {len(header)} values, got {len(row)}")
        key = []
        for k in keys:
            text = row[col[k]].strip()
            lo, hi = lims[k]
            if not text.isdigit() or not lo <= int(text) <= hi:
                return None, (r, k, f"expected a whole number from {lo} to {hi}, got {text!r}")
            key.append(int(text))
        text = row[col[CSV_VALUE]].strip()
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not math.isfinite(v) or v < 0:
            return None, (r, CSV_VALUE, f"expected a number >= 0 (gCO2 per kWh), got {text!r}")
        if tuple(key) in seen:
            return None, (r, ",".join(keys), f"{', '.join(f'{k} {x}' for k, x in zip(keys, key, strict=True))} "
                          "given twice")
        seen[tuple(key)] = v
    return _assemble(name, keys, seen, len(rows))


def _assemble(name: str, keys: list[str], seen: dict, nrows: int):
    sizes = {"month": MONTHS, "hour": HOURS}
    want = [(m,) for m in range(1, 13)] if keys == ["month"] else [(h,) for h in range(24)] if keys == ["hour"] \
        else [(m, h) for m in range(1, 13) for h in range(24)]
    missing = [k for k in want if k not in seen]
    if missing:
        first = ", ".join(f"{k} {x}" for k, x in zip(keys, missing[0], strict=True))
        total = math.prod(sizes[k] for k in keys)
        return None, (nrows, ",".join(keys), f"{len(missing)} of the {total} rows are missing, the first: {first}")
    if keys == ["month"]:
        return Profile.of(name, monthly=[seen[(m,)] for m in range(1, 13)]), None
    if keys == ["hour"]:
        return Profile.of(name, table=[[seen[(h,)] for h in range(24)]] * MONTHS), None
    return Profile.of(name, table=[[seen[(m, h)] for h in range(24)] for m in range(1, 13)]), None
