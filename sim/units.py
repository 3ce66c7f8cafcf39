"""Readable numbers: counts ("110M", "2T"), FLOP ("312 TFLOP/s"), money ("$2.5k"),
fractions ("40%") and durations ("20 min", "3 d"). Everything is converted once, here,
to plain floats in the internal units: counts, FLOP, USD, hours.

Each parser raises ValueError with a sentence that says what was expected and what was found.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime

SUFFIX = {
    "": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9,
    "T": 1e12, "P": 1e15, "E": 1e18, "Z": 1e21, "Y": 1e24,
}

HOURS_PER_UNIT = {
    "s": 1 / 3600, "sec": 1 / 3600, "secs": 1 / 3600, "second": 1 / 3600, "seconds": 1 / 3600,
    "m": 1 / 60, "min": 1 / 60, "mins": 1 / 60, "minute": 1 / 60, "minutes": 1 / 60,
    "h": 1.0, "hr": 1.0, "hrs": 1.0, "hour": 1.0, "hours": 1.0,
    "d": 24.0, "day": 24.0, "days": 24.0,
    "w": 168.0, "wk": 168.0, "week": 168.0, "weeks": 168.0,
    "mo": 730.0, "month": 730.0, "months": 730.0,
    "y": 8760.0, "yr": 8760.0, "year": 8760.0, "years": 8760.0,
}
HOURS_PER_YEAR = 8760.0

_NUM = r"[-+]?(?:\d[\d_,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_COUNT_RE = re.compile(rf"^\s*({_NUM})\s*([kKMBGTPEZY]?)\s*$")
_DURATION_RE = re.compile(rf"^\s*({_NUM})\s*([A-Za-z]*)\s*$")
_GROUPED = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d*)?([eE][-+]?\d+)?$")
_FLOP_TAIL = re.compile(r"\s*(flop/s|flops|flop)\s*$", re.IGNORECASE)


def _describe(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    return f"{value!r} ({type(value).__name__})"


def _finite(x: float, value: object, what: str) -> float:
    if not math.isfinite(x):
        raise ValueError(f"expected {what}, got {_describe(value)} (not a finite number)")
    return x


def _number(value: int | float, what: str) -> float:
    """An int or float as a finite float (an int of 400 digits overflows a float)."""
    try:
        return _finite(float(value), value, what)
    except OverflowError:
        raise ValueError(f"expected {what}, got a number too large to use") from None


def parse_count(value: object, what: str = "a number such as 110M, 1.5B, 2T or 3e9") -> float:
    """'110M' -> 1.1e8, '1.5B' -> 1.5e9, '2T' -> 2e12, '2,000' -> 2000, 3e9 -> 3e9."""
    if isinstance(value, bool):
        raise ValueError(f"expected {what}, got {_describe(value)}")
    if isinstance(value, (int, float)):
        return _number(value, what)
    if isinstance(value, str):
        m = _COUNT_RE.match(value)
        if m and ("," not in m.group(1) or _GROUPED.match(m.group(1))):
            digits = m.group(1).replace("_", "").replace(",", "")
            try:
                return _finite(float(digits) * SUFFIX[m.group(2)], value, what)
            except (ValueError, OverflowError):
                pass
    raise ValueError(f"expected {what}, got {_describe(value)}")


def parse_flop(value: object) -> float:
    """'312T', '312 TFLOP/s', '3.1e22 FLOP', 1e21 -> FLOP or FLOP/s as a float."""
    if isinstance(value, str):
        value = _FLOP_TAIL.sub("", value)
    return parse_count(value, "a FLOP figure such as 312T, 3.1e22 or '989 TFLOP/s'")


def parse_usd(value: object) -> float:
    """'$2.5k' -> 2500.0, '1.3M' -> 1.3e6, 2.48 -> 2.48."""
    if isinstance(value, str):
        value = value.strip().removeprefix("$").removesuffix("USD").strip()
    return parse_count(value, "an amount in USD such as 2.48, $2.5k or 1.3M")


def parse_fraction(value: object) -> float:
    """'40%' -> 0.4, 0.4 -> 0.4."""
    if isinstance(value, str) and value.strip().endswith("%"):
        return parse_count(value.strip()[:-1], "a fraction such as 0.4 or 40%") / 100.0
    return parse_count(value, "a fraction such as 0.4 or 40%")


def parse_plain(value: object) -> float:
    """A plain real number (readable suffixes allowed)."""
    return parse_count(value, "a number")


def parse_duration_h(value: object) -> float:
    """'20 min' -> 1/3, '4 h' -> 4, '3 d' -> 72, '1 y' -> 8760; a bare number is hours."""
    what = "a duration such as '20 min', '4 h', '3 d' or a number of hours"
    if isinstance(value, bool):
        raise ValueError(f"expected {what}, got {_describe(value)}")
    if isinstance(value, (int, float)):
        return _number(value, what)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            number, unit = m.group(1), m.group(2) or "h"
            # case does not matter ('3 D', '2 Hours') except for 'M', which could mean minutes or months
            key = unit if unit in HOURS_PER_UNIT or unit == "M" else unit.lower()
            if key not in HOURS_PER_UNIT:
                raise ValueError(
                    f"expected {what}, got {_describe(value)} (unknown unit {unit!r}; "
                    "use s, min, h, d, w, mo or y)"
                )
            if "," not in number or _GROUPED.match(number):
                try:
                    return _finite(float(number.replace("_", "").replace(",", "")) * HOURS_PER_UNIT[key], value, what)
                except ValueError:
                    pass
    raise ValueError(f"expected {what}, got {_describe(value)}")


def parse_time_of_day(value: object) -> float:
    """'14:30' -> 14.5 (hours after 00:00); a duration such as '14.5 h', or a number of hours."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,2}:\d{2}\s*", value):
        h, m = (int(x) for x in value.split(":"))
        if m >= 60:
            raise ValueError(f"expected a time of day such as '14:30', got {value!r}")
        return h + m / 60
    return parse_duration_h(value)


def parse_date(value: object) -> date:
    """A calendar date: YAML's 2020-01-31 or the string '2020-01-31'."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a date as YYYY-MM-DD, got {_describe(value)}")


_CALENDAR = {"mo": 1, "month": 1, "months": 1, "y": 12, "yr": 12, "year": 12, "years": 12}


def date_after(start: date, value: object) -> date | None:
    """The date a duration after `start` ends on ('4 mo' -> the same day four calendar months
    on; '6 w', '90 d' -> that many days on; a duration in hours -> the day it ends in), or None
    when `value` is not a duration."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    m = re.match(r"^\s*(\d+)\s*([A-Za-z]+)\s*$", value) if isinstance(value, str) else None
    if m and m.group(2).lower() in _CALENDAR:
        months = start.month - 1 + int(m.group(1)) * _CALENDAR[m.group(2).lower()]
        year, month = start.year + months // 12, months % 12 + 1
        if year > 9999:
            return None
        import calendar

        return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))
    try:
        hours = parse_duration_h(value)
        from datetime import timedelta

        return start + timedelta(days=math.floor(hours / 24.0))
    except (ValueError, OverflowError):
        return None


_RANGE_SEPARATOR = re.compile(r"\s*(?:-|\u2013|\.\.|\bto\b)\s*")
_UNIT_TAIL = re.compile(rf"^\s*{_NUM}\s*(.*?)\s*$")


def range_hint(text: str, parser) -> str | None:
    """For a range written as one string ('30-50%', '1B to 2B', '20..40 min'), the distribution
    to write instead; None when `text` is not two values `parser` reads."""
    for sep in _RANGE_SEPARATOR.finditer(text):
        lo, hi = text[:sep.start()].strip(), text[sep.end():].strip()
        if not lo or not hi:
            continue
        tail = _UNIT_TAIL.match(hi)
        if tail and tail.group(1) and re.fullmatch(_NUM, lo):  # '30-50%': the unit is written once
            unit = tail.group(1)
            lo = f"{lo}{unit}" if unit == "%" or unit in SUFFIX else f"{lo} {unit}"
        try:
            parser(lo), parser(hi)
        except (ValueError, TypeError):
            continue
        return f"for a range, write {{dist: uniform, min: {lo}, max: {hi}}}"
    return None


def hours_between(start: date, end: date) -> float:
    """Calendar hours from the start of day `start` to the start of day `end`."""
    return (end - start).days * 24.0


def _sig3(a: float) -> float:
    """a rounded to 3 significant digits, so the unit is chosen after rounding (999,999 -> 1.00M)."""
    return float(f"{a:.3g}")


def format_usd(x: float) -> str:
    """1234567 -> '$1.23M', 12570.62 -> '$12.57k', 123456 -> '$123k', 12.3 -> '$12.30', 1e300 -> '$1e+300'.

    The unit is the largest whose figure is at least 1; the figure shows two decimals below 100 of
    the unit and none from 100 on; the unit is chosen after rounding to what is shown, so 999,999
    reads '$1.00M', never '$1000k'. What is shown is the amount rounded, never rounded twice."""
    if x is None or not math.isfinite(x):
        return "n/a"
    sign = "-" if x < 0 else ""
    a = abs(x)
    if _sig3(a) >= 1e15:  # beyond thousands of trillions: scientific, never hundreds of digits
        return f"{sign}${_sig3(a):.3g}"
    text = f"{a:.2f}"
    for div, suffix in ((1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T")):
        if float(text) < 1e3:
            break
        v = a / div
        text = f"{v:.2f}" if float(f"{v:.2f}") < 100 else f"{v:.0f}"
        text += suffix
        if float(text[:-1]) < 1e3:
            return f"{sign}${text}"
        text = text[:-1]
    return f"{sign}${text}"


def format_pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal ('12.3%'), and more digits where one decimal
    would say 0.0% or 100.0% of a value that is neither: 0.0004 -> '0.04%', 0.99996 -> '99.996%',
    below 0.001% '<0.001%', above 99.999% '>99.999%'."""
    if x is None or not math.isfinite(x):
        return "n/a"
    p = x * 100.0
    text = f"{p:.1f}"
    if p != 0.0 and float(text) == 0.0:  # 0.0% would hide it
        return f"{p:.2g}%" if abs(p) >= 0.001 else ("<0.001%" if p > 0 else ">-0.001%")
    if p < 100.0 and float(text) == 100.0:  # 100.0% would hide it
        gap = 100.0 - p
        return f"{p:.{math.ceil(-math.log10(gap))}f}%" if gap >= 0.001 else ">99.999%"
    return f"{text}%"


def format_value(x: float | None, unit: str | None) -> str:
    """A number in the unit of the key it belongs to (the key reference's unit names): durations
    as '7.6 h', USD as money, fractions as percentages, counts with a suffix; otherwise 4
    significant digits and the unit's name."""
    if x is None or not math.isfinite(x):
        return "n/a"
    unit = unit or ""
    if unit.startswith("duration"):
        return format_hours(x)
    if unit == "USD":
        return format_usd(x)
    if unit.startswith("fraction"):
        return format_pct(x) + unit.removeprefix("fraction")
    if unit == "count":
        return format_count(x)
    short = {"per accelerator-hour": "/GPU-h", "per run-hour": "/run-h", "per node-hour": "/node-h"}
    if unit in short:
        return f"{x:.3g}{short[unit]}"
    return f"{x:.4g}" + (f" {unit}" if unit and unit not in ("factor", "ratio") else "")


def format_count(x: float) -> str:
    """1.5e9 -> '1.5B', 2500 -> '2.5k', 3.1e22 -> '3.1e+22' (beyond T, scientific)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    r = _sig3(abs(x))
    sign = "-" if x < 0 else ""
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if div <= r < div * 1e3:
            return f"{sign}{r / div:.3g}{suffix}"
    return f"{x:.3g}"


def format_hours(h: float) -> str:
    """Hours as the most readable unit: '6.6 s', '45 min', '6.0 h', '4.2 d', '1.3 y'."""
    if h is None or not math.isfinite(h):
        return "n/a"
    if 0 < h < 0.5 / 60:  # would read '0 min'
        return f"{h * 3600:.2g} s"
    if h < 1:
        return f"{h * 60:.0f} min"
    if h < 48:
        return f"{h:.1f} h"
    if h < 2 * HOURS_PER_YEAR:
        return f"{h / 24:.1f} d"
    return f"{h / HOURS_PER_YEAR:.1f} y"


def format_kwh(kwh: float) -> str:
    """Energy: '45.4 MWh', '1.06 GWh', '320 kWh'."""
    for div, unit in ((1e6, "GWh"), (1e3, "MWh")):
        if kwh >= div:
            return f"{kwh / div:.3g} {unit}"
    return f"{kwh:.3g} kWh"


def format_kg(kg: float) -> str:
    """Mass of CO2: '21.8 t', '1.08 kt', '512 kg'."""
    for div, unit in ((1e6, "kt"), (1e3, "t")):
        if kg >= div:
            return f"{kg / div:.3g} {unit}"
    return f"{kg:.3g} kg"
