"""Tests for sim.units: readable-number parsers and formatters.

Expected values are written out by hand; invariants are checked with hypothesis.
"""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.units import (
    format_count,
    format_hours,
    format_pct,
    format_usd,
    format_value,
    hours_between,
    parse_count,
    parse_date,
    parse_duration_h,
    parse_flop,
    parse_fraction,
    parse_plain,
    parse_usd,
)

COUNT_EXPECTED = "expected a number such as 110M, 1.5B, 2T or 3e9"
DURATION_EXPECTED = "expected a duration such as '20 min', '4 h', '3 d' or a number of hours"


# --------------------------------------------------------------------------- parse_count
@pytest.mark.parametrize(
    "text, expected",
    [
        ("110M", 110 * 10**6),  # 110 x 1e6
        ("1.5B", 1_500_000_000),  # 1.5 x 1e9
        ("2T", 2 * 10**12),
        ("2,000", 2000),  # thousands separator dropped
        ("1_000_000", 10**6),  # underscores dropped
        ("3e9", 3 * 10**9),  # scientific notation in a string
        ("3E9", 3 * 10**9),
        ("2.5e-3", 0.0025),
        (".5M", 500_000),  # 0.5 x 1e6
        ("  7 k ", 7000),  # whitespace around number and suffix
        ("7K", 7000),
        ("4G", 4 * 10**9),  # G is a synonym of B
        ("1P", 10**15),
        ("2E", 2 * 10**18),  # E suffix (no exponent digits follow) = 1e18
        ("-3M", -3 * 10**6),
        ("+12", 12),
    ],
)
def test_parse_count_strings(text, expected):
    assert parse_count(text) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("value, expected", [(7, 7.0), (3e9, 3e9), (0, 0.0), (-2.5, -2.5)])
def test_parse_count_numbers_pass_through_as_float(value, expected):
    out = parse_count(value)
    assert out == expected
    assert type(out) is float


@pytest.mark.parametrize(
    "value, found",
    [
        (True, "True (bool)"),
        (False, "False (bool)"),
        ("", "''"),
        ("abc", "'abc'"),
        ("1.5X", "'1.5X'"),
        ("nan", "'nan'"),
        ("inf", "'inf'"),
        ("1e400", "'1e400'"),  # overflows to inf
        ("M", "'M'"),
        (None, "None (NoneType)"),
        ([1], "[1] (list)"),
    ],
)
def test_parse_count_rejects_with_expected_and_found(value, found):
    with pytest.raises(ValueError) as ei:
        parse_count(value)
    msg = str(ei.value)
    assert msg.startswith(COUNT_EXPECTED)
    assert f"got {found}" in msg


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_parse_count_rejects_non_finite_floats(value):
    with pytest.raises(ValueError, match=r"got .* \(float\) \(not a finite number\)"):
        parse_count(value)


def test_parse_count_custom_description_is_used():
    with pytest.raises(ValueError, match=r"^expected a widget count, got 'x'$"):
        parse_count("x", "a widget count")


def test_parse_count_huge_int_raises_value_error():
    # float(10**400) overflows: the parser must still raise its ValueError, not OverflowError
    with pytest.raises(ValueError, match=rf"^{COUNT_EXPECTED}, got "):
        parse_count(10**400)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_parse_count_roundtrips_str_of_float(x):
    assert parse_count(str(x)) == x
    assert parse_count(repr(x)) == x


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_parse_count_roundtrips_ints_with_thousands_separators(n):
    assert parse_count(f"{n:,}") == n
    assert parse_count(f"{n:_}") == n


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.sampled_from([("k", 3), ("M", 6), ("B", 9), ("T", 12)]))
def test_parse_count_suffix_scales_by_power_of_ten(n, suffix_exp):
    suffix, exp = suffix_exp
    assert parse_count(f"{n}{suffix}") == pytest.approx(n * 10**exp, rel=1e-15)


# --------------------------------------------------------------------------- FLOP, USD, fractions
@pytest.mark.parametrize(
    "text, expected",
    [
        ("989 TFLOP/s", 989e12),
        ("312T", 312e12),
        ("3.1e22 FLOP", 3.1e22),
        ("2 PFLOPS", 2e15),
        ("1.5 pflop/s", None),  # lower-case p is not a suffix -> error
        (1e21, 1e21),
    ],
)
def test_parse_flop(text, expected):
    if expected is None:
        with pytest.raises(ValueError, match=r"expected a FLOP figure such as .*got '1.5 p'"):
            parse_flop(text)
    else:
        assert parse_flop(text) == pytest.approx(expected, rel=1e-15)


def test_parse_flop_error_says_what_was_expected():
    expected = r"^expected a FLOP figure such as 312T, 3.1e22 or '989 TFLOP/s', got 'lots'$"
    with pytest.raises(ValueError, match=expected):
        parse_flop("lots FLOP")  # the unit tail is stripped before parsing


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$2.5k", 2500.0),
        ("1.3M", 1.3e6),
        (2.48, 2.48),
        ("$ 12", 12.0),
        ("40 USD", 40.0),
        ("$1.3M USD", 1.3e6),
    ],
)
def test_parse_usd(text, expected):
    assert parse_usd(text) == pytest.approx(expected, rel=1e-15)


def test_parse_usd_rejects_other_currency():
    expected = r"^expected an amount in USD such as 2.48, \$2.5k or 1.3M, got '5 EUR'$"
    with pytest.raises(ValueError, match=expected):
        parse_usd("5 EUR")


@pytest.mark.parametrize(
    "text, expected",
    [("40%", 0.4), (" 12.5 % ", 0.125), (0.4, 0.4), ("0.4", 0.4), ("100%", 1.0), (0, 0.0)],
)
def test_parse_fraction(text, expected):
    assert parse_fraction(text) == pytest.approx(expected, rel=1e-15)


def test_parse_fraction_error():
    with pytest.raises(ValueError, match=r"^expected a fraction such as 0.4 or 40%, got 'half'$"):
        parse_fraction("half")


def test_parse_plain():
    assert parse_plain("2k") == 2000.0
    with pytest.raises(ValueError, match=r"^expected a number, got 'two'$"):
        parse_plain("two")


# --------------------------------------------------------------------------- durations
@pytest.mark.parametrize(
    "text, hours",
    [
        ("20 min", 20 / 60),  # 1/3 h
        ("4 h", 4.0),
        ("3 d", 72.0),  # 3 x 24
        ("2 w", 336.0),  # 2 x 7 x 24
        ("1 y", 8760.0),  # 365 x 24
        ("1 mo", 730.0),  # 8760 / 12
        ("90 s", 90 / 3600),  # 0.025 h
        ("30 sec", 1 / 120),
        ("1.5 hours", 1.5),
        ("2days", 48.0),
        ("3 D", 72.0),  # unit is case-insensitive
        ("2 Weeks", 336.0),
        ("1,000 h", 1000.0),
        ("1e2 min", 100 / 60),
        (5, 5.0),  # a bare number is hours
        (2.5, 2.5),
    ],
)
def test_parse_duration_h(text, hours):
    assert parse_duration_h(text) == pytest.approx(hours, rel=1e-15)


# A bare number given as a string is hours too (docstring: "a bare number is hours").
@pytest.mark.parametrize("text, hours", [("5", 5.0), ("1.5", 1.5), ("2,000", 2000.0)])
def test_parse_duration_h_bare_number_string_is_hours(text, hours):
    assert parse_duration_h(text) == hours


def test_parse_duration_unknown_unit_is_named():
    with pytest.raises(ValueError) as ei:
        parse_duration_h("3 fortnights")
    msg = str(ei.value)
    assert msg.startswith(DURATION_EXPECTED)
    assert "got '3 fortnights'" in msg
    assert "unknown unit 'fortnights'" in msg
    assert "use s, min, h, d, w, mo or y" in msg


@pytest.mark.parametrize(
    "value, found",
    [(True, "True (bool)"), ("", "''"), ("soon", "'soon'"), ("h", "'h'"), (None, "None (NoneType)")],
)
def test_parse_duration_rejects(value, found):
    with pytest.raises(ValueError) as ei:
        parse_duration_h(value)
    assert str(ei.value).startswith(DURATION_EXPECTED)
    assert f"got {found}" in str(ei.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_parse_duration_rejects_non_finite(value):
    with pytest.raises(ValueError, match="not a finite number"):
        parse_duration_h(value)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-1e300, max_value=1e300, allow_nan=False))
def test_duration_days_is_24_hours(x):
    assert parse_duration_h(f"{x} d") == 24 * x
    assert parse_duration_h(f"{x} h") == x


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_duration_units_are_consistent(x):
    # 1 w = 7 d, 1 d = 24 h, 1 h = 60 min, 1 y = 365 d
    assert parse_duration_h(f"{x} w") == pytest.approx(7 * parse_duration_h(f"{x} d"), rel=1e-12)
    assert parse_duration_h(f"{x} min") * 60 == pytest.approx(x, rel=1e-12)
    assert parse_duration_h(f"{x} y") == pytest.approx(365 * parse_duration_h(f"{x} d"), rel=1e-12)


# --------------------------------------------------------------------------- dates
def test_parse_date():
    assert parse_date("2020-01-31") == date(2020, 1, 31)
    assert parse_date(" 2024-02-29 ") == date(2024, 2, 29)
    assert parse_date(date(2021, 5, 6)) == date(2021, 5, 6)
    d = parse_date(datetime(2021, 5, 6, 13, 45))
    assert d == date(2021, 5, 6) and type(d) is date


@pytest.mark.parametrize(
    "value, found",
    [
        ("2020-13-01", "'2020-13-01'"),
        ("2023-02-29", "'2023-02-29'"),
        ("next week", "'next week'"),
        (20200131, "20200131 (int)"),
    ],
)
def test_parse_date_rejects(value, found):
    with pytest.raises(ValueError, match=rf"^expected a date as YYYY-MM-DD, got {re.escape(found)}$"):
        parse_date(value)


def test_hours_between():
    assert hours_between(date(2024, 1, 1), date(2024, 1, 3)) == 48.0
    assert hours_between(date(2024, 1, 1), date(2025, 1, 1)) == 366 * 24  # leap year
    assert hours_between(date(2024, 1, 3), date(2024, 1, 1)) == -48.0


# --------------------------------------------------------------------------- formatting
@pytest.mark.parametrize(
    "x, text",
    [
        (1234567, "$1.23M"),
        (2500, "$2.50k"),
        (12.3, "$12.30"),
        (0, "$0.00"),
        (999.0, "$999.00"),
        (1000, "$1.00k"),
        (150_000, "$150k"),  # >= 100 of the unit: 3 significant digits
        (2.5e9, "$2.50B"),
        (999e12, "$999T"),
        (1e15, "$1e+15"),  # beyond thousands of trillions: scientific, not hundreds of digits
        (1.7e308, "$1.7e+308"),
        (-2500, "-$2.50k"),
        (float("nan"), "n/a"),
        (float("inf"), "n/a"),
        (None, "n/a"),
    ],
)
def test_format_usd(x, text):
    assert format_usd(x) == text


# Rounding may carry into the next unit: 999,999 is $1.00M, never '$1e+03k'.
@pytest.mark.parametrize(
    "x, text", [(999_999, "$1.00M"), (999_500, "$1.00M"), (999_999_999, "$1.00B"), (99_999, "$100k")]
)
def test_format_usd_rounding_carries_into_next_unit(x, text):
    assert format_usd(x) == text


@pytest.mark.parametrize("x", [999_999, 999_500, 999_999_999, 1e12, 5e14, 123_456_789])
def test_format_usd_never_uses_scientific_notation(x):
    assert "e+" not in format_usd(x)


@pytest.mark.parametrize(
    "h, text",
    [
        (0.75, "45 min"),  # 0.75 x 60
        (6, "6.0 h"),
        (47.9, "47.9 h"),
        (48, "2.0 d"),
        (100, "4.2 d"),  # 100 / 24 = 4.1667
        (17519, "730.0 d"),  # just under 2 years
        (3 * 8760, "3.0 y"),
        (float("nan"), "n/a"),
        (None, "n/a"),
    ],
)
def test_format_hours(h, text):
    assert format_hours(h) == text


@pytest.mark.parametrize(
    "x, text",
    [
        (1.5e9, "1.5B"),
        (2500, "2.5k"),
        (110e6, "110M"),
        (2e12, "2T"),
        (3.1e22, "3.1e+22"),
        (12, "12"),
        (None, "n/a"),
    ],
)
def test_format_count(x, text):
    assert format_count(x) == text


def test_format_count_boundary():
    # 999.9e9 rounds to 1000B at 3 significant digits: must read 1T, not '1e+03B'
    assert format_count(999.9e9) == "1T"
    assert format_count(999_999) == "1M"


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0, max_value=1e300, allow_nan=False))
def test_format_usd_sign_and_prefix(x):
    assert format_usd(x).startswith("$")
    assert format_usd(-x).startswith("-$") or x == 0


# The figures and the unit boundaries: what is shown is the amount rounded once, to what
# is shown, and the unit is chosen after that rounding.
@pytest.mark.parametrize(
    "x, text",
    [
        (12_570.62, "$12.57k"),  # was $12.60k: rounded to 3 significant digits, then shown with two decimals
        (1_574.9, "$1.57k"),
        (99_994, "$99.99k"),
        (99_995.1, "$100k"),
        (999.994, "$999.99"),
        (999.996, "$1.00k"),
        (1e3, "$1.00k"),
        (999_499, "$999k"),
        (999_500.1, "$1.00M"),
        (1e6, "$1.00M"),
        (11_904_000, "$11.90M"),
        (0.004, "$0.00"),
    ],
)
def test_format_usd_at_unit_boundaries(x, text):
    assert format_usd(x) == text


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0.01, max_value=1e14, allow_nan=False))
def test_format_usd_is_within_half_a_shown_digit(x):
    text = format_usd(x)
    scale = {"k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.get(text[-1], 1.0)
    shown = float(text.strip("$kMBT"))
    digit = 0.01 if "." in text else 1.0
    assert abs(shown * scale - x) <= (digit / 2) * scale * (1 + 1e-9) + 1e-12
    assert shown < 1000


@pytest.mark.parametrize(
    "x, text",
    [
        (0.0, "0.0%"),
        (0.0004, "0.04%"),  # was 0.0%
        (0.00049, "0.049%"),
        (0.0005, "0.1%"),
        (4e-6, "<0.001%"),
        (0.123, "12.3%"),
        (0.9996, "99.96%"),  # was 100.0%
        (0.99996, "99.996%"),
        (0.9999999, ">99.999%"),
        (1.0, "100.0%"),
        (-0.0004, "-0.04%"),
        (float("nan"), "n/a"),
    ],
)
def test_format_pct(x, text):
    assert format_pct(x) == text


@pytest.mark.parametrize(
    "x, unit, text",
    [
        (7.557, "duration (hours)", "7.6 h"),  # was a bare 7.557
        (12_570.62, "USD", "$12.57k"),
        (0.35, "fraction", "35.0%"),
        (0.3, "fraction per year", "30.0% per year"),
        (34.2, "count", "34.2"),
        (1.97e-5, "per accelerator-hour", "1.97e-05/GPU-h"),
        (0.03699, "per run-hour", "0.037/run-h"),
        (0.001827, "duration (hours)", "6.6 s"),  # was '0 min'
        (0.0, "duration (hours)", "0 min"),
        (1.5, "factor", "1.5"),
        (2.0, None, "2"),
    ],
)
def test_format_value_in_the_keys_unit(x, unit, text):
    assert format_value(x, unit) == text


# --- through the CLI ----------------------------------------------------------------------------
ONE_RUN = """\
project: {name: f, start: 2026-01-01, budget_usd: 20000, deadline: 2026-06-30}
pools: [{name: gpus, accelerator: h100, count: 8, price_usd_per_gpu_h: 12.57062}]
workloads: [{name: w, gpu_hours_per_run: 1000, accelerators: 8}]
simulation: {priors: off}
"""


def test_money_and_small_probabilities_as_printed(cli, write, tmp_path, monkeypatch):
    path = write(ONE_RUN)
    code, out, err = cli("estimate", path)
    assert code == 0, err
    assert "$12.57k" in out and "$12.60k" not in out  # $12,570.62
    import sim.stats

    monkeypatch.setattr(sim.stats, "wilson", lambda k, n: (0.0, 0.0004))  # an upper bound of 0.04%
    code, out, err = cli("run", path, "--reps", "2", "--workers", "1", "--out", tmp_path / "r")
    assert code == 0, err
    assert "(95% CI 0.0%..0.04%)" in out and "0.0%..0.0%" not in out
    assert "$12.57k" in next(x for x in out.splitlines() if x.startswith("cost_usd"))


SWEPT = """\
project: {name: s, start: 2026-01-01}
pools: [{name: gpus, accelerator: h100, count: 8, price_usd_per_gpu_h: 2.0}]
workloads:
  - {name: a, hours_per_run: 5, accelerators: 8}
  - {name: b, hours_per_run: 10, accelerators: 8}
simulation: {priors: off}
variants:
  cheaper-gpus-more-b:
    set:
      pools[gpus].price_usd_per_gpu_h: 1.0
      workloads[b].runs: 3
"""


def test_a_swept_duration_is_printed_with_its_unit(cli, write, tmp_path):
    # base 16 X + 160, the variant 8 X + 240: they break even at X = 10 h
    code, out, err = cli("compare", write(SWEPT), "--sweep", "workloads[a].hours_per_run=0.5:15.5:15",
                         "--reps", "1", "--workers", "1", "--out", tmp_path / "s")
    assert code == 0, err
    assert "30 min" in out and "15.5 h" in out  # the swept values, not 0.5 and 15.5
    assert "break-even at workloads[a].hours_per_run = 10.0 h (mean cost difference crosses zero; median at " \
        "10.0 h)" in out
