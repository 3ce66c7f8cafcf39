"""Tests for sim.distributions: spec parsing/validation, scipy mapping, medians and quantiles.

Each distribution is checked against an independent fact about it (the spec's own quantiles,
a closed-form mean or median, scipy.stats.norm for truncation) rather than the code's formula.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from sim.distributions import Bounds, Dist, nominal, parse_dist
from sim.units import parse_duration_h, parse_fraction, parse_plain

FREE = Bounds()
UNIT = Bounds(lo=0.0, hi=1.0)  # e.g. a fraction such as MFU
POSITIVE = Bounds(lo=0.0, lo_strict=True)
COUNT = Bounds(lo=0.0, integer=True)


ONE_OF = "dist: expected one of lognormal, pert, triangular, uniform, normal, choice, poisson"
MEDIAN = "the median of this distribution"
LOGNORMAL_NEEDS = "dist lognormal needs either p5 and p95, or median and sigma"


def dist(raw, parser=parse_plain, bounds=FREE) -> Dist:
    return parse_dist(raw, parser, bounds)


# --------------------------------------------------------------------------- Bounds.check
@pytest.mark.parametrize(
    "bounds, x, rule",
    [
        (Bounds(lo=0), 0.0, None),
        (Bounds(lo=0), -0.1, "must be >= 0"),
        (Bounds(lo=0, lo_strict=True), 0.0, "must be > 0"),
        (Bounds(lo=0, lo_strict=True), 1e-12, None),
        (Bounds(hi=1), 1.0, None),
        (Bounds(hi=1), 1.5, "must be <= 1"),
        (Bounds(hi=1, hi_strict=True), 1.0, "must be < 1"),
        (Bounds(lo=0.5, hi=2.5), 3, "must be <= 2.5"),
        (Bounds(integer=True), 3.0, None),
        (Bounds(integer=True), 3.5, "must be a whole number"),
        (Bounds(lo=1, integer=True), 0.5, "must be >= 1"),  # range checked before integrality
        (Bounds(), -1e300, None),
    ],
)
def test_bounds_check(bounds, x, rule):
    assert bounds.check(x) == rule


# --------------------------------------------------------------------------- lognormal
def test_lognormal_from_p5_p95_has_those_quantiles():
    d = dist({"dist": "lognormal", "p5": "1T", "p95": "3T"})
    assert d.params == {"p5": 1e12, "p95": 3e12}
    lo, hi = d.ppf(np.array([0.05, 0.95]))
    assert lo == pytest.approx(1e12, rel=1e-9)
    assert hi == pytest.approx(3e12, rel=1e-9)
    # median of a lognormal whose p5/p95 are symmetric in log space = geometric mean
    assert d.median() == pytest.approx(math.sqrt(1e12 * 3e12), rel=1e-9)  # 1.7320508e12


@settings(max_examples=60, deadline=None)
@given(st.floats(1e-3, 1e6), st.floats(1.01, 1e3))
def test_lognormal_p5_p95_roundtrip(p5, ratio):
    p95 = p5 * ratio
    d = dist({"dist": "lognormal", "p5": p5, "p95": p95})
    f = d.frozen()
    assert f.cdf(p5) == pytest.approx(0.05, abs=1e-9)
    assert f.cdf(p95) == pytest.approx(0.95, abs=1e-9)
    assert d.median() == pytest.approx(math.sqrt(p5 * p95), rel=1e-9)


def test_lognormal_from_median_sigma():
    d = dist({"dist": "lognormal", "median": 100, "sigma": 0.5})
    assert d.median() == pytest.approx(100, rel=1e-12)
    # P(X <= 100 e^{0.5}) = Phi(1) = 0.841344746
    assert d.frozen().cdf(100 * math.exp(0.5)) == pytest.approx(0.8413447460685429, rel=1e-9)


# --------------------------------------------------------------------------- pert
def test_pert_mean_hand_computed():
    # mean = (min + 4 mode + max) / 6 = (0.3 + 1.6 + 0.5) / 6 = 0.4
    d = dist({"dist": "pert", "min": 0.3, "mode": 0.4, "max": 0.5}, parse_fraction, UNIT)
    assert d.frozen().mean() == pytest.approx(0.4, rel=1e-12)
    # skewed: (0 + 4*2 + 10) / 6 = 3
    d = dist({"dist": "pert", "min": 0, "mode": 2, "max": 10})
    assert d.frozen().mean() == pytest.approx(3.0, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.floats(-1e3, 1e3), st.floats(0.01, 1e3), st.floats(0, 1))
def test_pert_mean_and_support(lo, width, frac):
    hi = lo + width
    mode = lo + frac * width
    d = dist({"dist": "pert", "min": lo, "mode": mode, "max": hi})
    f = d.frozen()
    assert f.mean() == pytest.approx((lo + 4 * mode + hi) / 6, rel=1e-9, abs=1e-9 * width)
    assert f.ppf(0.0) == pytest.approx(lo, abs=1e-9 * width)
    assert f.ppf(1.0) == pytest.approx(hi, abs=1e-9 * width)


def test_pert_lambda_changes_spread_not_mean_for_symmetric_mode():
    # symmetric PERT: mean stays at the mode; larger lambda -> smaller variance
    narrow = dist({"dist": "pert", "min": 0, "mode": 5, "max": 10, "lambda": 8}).frozen()
    wide = dist({"dist": "pert", "min": 0, "mode": 5, "max": 10, "lambda": 2}).frozen()
    assert narrow.mean() == pytest.approx(5) and wide.mean() == pytest.approx(5)
    # Beta(a, a) variance on [0, 10] = 100 / (4 (2a + 1));
    # lambda=8 -> a=5 -> 100/44; lambda=2 -> a=2 -> 100/20
    assert narrow.var() == pytest.approx(100 / 44)
    assert wide.var() == pytest.approx(100 / 20)


# --------------------------------------------------------------------------- triangular
def _triangular_median(a, c, b):
    """Closed-form median of Triangular(min=a, mode=c, max=b)."""
    if c >= (a + b) / 2:
        return a + math.sqrt((b - a) * (c - a) / 2)
    return b - math.sqrt((b - a) * (b - c) / 2)


def test_triangular_median_hand_computed():
    # mode 8 >= midpoint 5: median = 0 + sqrt(10 * 8 / 2) = sqrt(40) = 6.3246
    d = dist({"dist": "triangular", "min": 0, "mode": 8, "max": 10})
    assert d.median() == pytest.approx(math.sqrt(40))
    # mode 1 < midpoint 5: median = 10 - sqrt(10 * 9 / 2) = 10 - sqrt(45) = 3.2918
    d = dist({"dist": "triangular", "min": 0, "mode": 1, "max": 10})
    assert d.median() == pytest.approx(10 - math.sqrt(45))


@settings(max_examples=60, deadline=None)
@given(st.floats(-1e3, 1e3), st.floats(0.01, 1e3), st.floats(0, 1))
def test_triangular_median_closed_form(lo, width, frac):
    hi, mode = lo + width, lo + frac * width
    d = dist({"dist": "triangular", "min": lo, "mode": mode, "max": hi})
    assert d.median() == pytest.approx(_triangular_median(lo, mode, hi), rel=1e-9, abs=1e-9 * width)


# --------------------------------------------------------------------------- uniform
def test_uniform_with_field_units():
    d = dist({"dist": "uniform", "min": "5 min", "max": "30 min"}, parse_duration_h, POSITIVE)
    assert d.params == pytest.approx({"min": 5 / 60, "max": 0.5})
    assert d.median() == pytest.approx((5 / 60 + 0.5) / 2)  # 17.5 min = 0.291667 h
    assert d.ppf(0.2) == pytest.approx(5 / 60 + 0.2 * 25 / 60)  # 10 min


# --------------------------------------------------------------------------- normal
def test_normal_untruncated():
    d = dist({"dist": "normal", "mean": 10, "sd": 2})
    assert d.median() == pytest.approx(10)
    assert d.ppf(0.95) == pytest.approx(10 + 2 * 1.6448536269514722)


def test_normal_truncated_to_field_bounds_median():
    # N(0.5, 1) truncated to [0, inf): F(x) = (Phi(z) - Phi(-0.5)) / (1 - Phi(-0.5));
    # median solves Phi(z) = 0.5 + 0.5 * Phi(-0.5) -> x = 0.5 + z
    d = dist({"dist": "normal", "mean": 0.5, "sd": 1}, parse_plain, Bounds(lo=0))
    # Phi(-0.5) = 0.308538 -> Phi(z) = 0.654269 -> z = 0.396871 -> median = 0.896871
    expected = 0.5 + stats.norm.ppf(0.5 + 0.5 * stats.norm.cdf(-0.5))
    assert d.median() == pytest.approx(expected, rel=1e-9)
    assert d.median() == pytest.approx(0.896871, abs=1e-6)


def test_normal_explicit_min_max_truncate():
    d = dist({"dist": "normal", "mean": 0, "sd": 1, "min": -1, "max": 1})
    q = d.ppf(np.array([0.0, 0.5, 1.0]))
    assert q == pytest.approx([-1.0, 0.0, 1.0], abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.floats(-1, 2), st.floats(0.05, 2))
def test_truncated_normal_stays_within_field_bounds(mean, sd):
    d = dist({"dist": "normal", "mean": mean, "sd": sd}, parse_fraction, UNIT)
    x = d.ppf(np.linspace(0, 1, 41))
    # 1e-12 slack: scipy's truncnorm.ppf(0) can land a few ulps outside the limit
    # (mean=0.05, sd=0.05 gives ppf(0) = -6.9e-18); see the report.
    assert np.all(x >= -1e-12) and np.all(x <= 1.0 + 1e-12)
    assert np.all(np.diff(x) >= -1e-12)  # ppf is monotone


def test_normal_explicit_limits_outside_field_bounds_rejected_or_clamped():
    raw = {"dist": "normal", "mean": 0.4, "sd": 0.3, "min": -1, "max": 2}
    try:
        d = dist(raw, parse_fraction, UNIT)
    except ValueError as e:
        assert "min" in str(e)
        return
    x = d.ppf(np.array([0.001, 0.999]))  # currently [-0.527, 1.327]
    assert np.all(x >= 0.0) and np.all(x <= 1.0)


# --------------------------------------------------------------------------- poisson
def test_poisson_median_hand_computed():
    # P(X<=2) = e^-3 (1 + 3 + 4.5) = 0.4232; P(X<=3) = 0.4232 + e^-3 * 4.5 = 0.6472 -> median 3
    d = dist({"dist": "poisson", "mean": 3}, parse_plain, COUNT)
    assert d.median() == 3.0
    assert d.ppf(0.42) == 2.0 and d.ppf(0.43) == 3.0


def test_poisson_ppf_zero_within_bounds():
    d = dist({"dist": "poisson", "mean": 3}, parse_plain, COUNT)
    assert d.ppf(0.0) == 0.0


# --------------------------------------------------------------------------- choice
def test_choice_weighted_median_hand_computed():
    # cumulative weights 0.2, 0.4, 1.0 -> first value reaching 0.5 is 3
    d = dist({"dist": "choice", "values": [1, 2, 3], "weights": [0.2, 0.2, 0.6]})
    assert d.median() == 3.0
    assert d.ppf(np.array([0.1, 0.3, 0.9])).tolist() == [1.0, 2.0, 3.0]
    # unweighted: equal weights 1/3 each -> median is the middle value
    assert dist({"dist": "choice", "values": ["1k", "2k", "4k"]}).median() == 2000.0


def test_choice_values_use_field_parser():
    d = dist({"dist": "choice", "values": ["20 min", "1 h"], "weights": [1, 3]}, parse_duration_h, POSITIVE)
    assert d.values == pytest.approx((1 / 3, 1.0))
    assert d.weights == (1.0, 3.0)
    assert d.median() == 1.0  # cumulative 0.25, 1.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-1000, 1000), min_size=1, max_size=6, unique=True),
    st.data(),
)
def test_choice_weighted_median_property(vals, data):
    vals = sorted(vals)
    w = data.draw(st.lists(st.integers(1, 10), min_size=len(vals), max_size=len(vals)))
    total = sum(w)
    cum = np.cumsum(w)
    assume(not np.any(2 * cum == total))  # avoid exact ties at the half
    expected = vals[int(np.argmax(2 * cum > total))]
    d = dist({"dist": "choice", "values": vals, "weights": w})
    assert d.median() == expected


def test_choice_median_of_unsorted_values():
    d = dist({"dist": "choice", "values": [30, 10, 20]})
    assert d.median() == 20.0


def test_choice_ppf_zero_is_smallest_value():
    # scipy's rv_discrete.ppf(0) is -1; indexing values[-1] would give the LAST value
    d = dist({"dist": "choice", "values": [1, 2, 3]})
    assert d.ppf(0.0) == 1.0


# --------------------------------------------------------------------------- integer fields, round flag
def test_integer_field_values_are_rounded():
    d = dist({"dist": "uniform", "min": 1, "max": 10}, parse_plain, COUNT)
    x = d.ppf(np.linspace(0.01, 0.99, 25))
    assert np.all(x == np.rint(x))
    assert d.ppf(0.3) == 4.0  # 1 + 0.3 * 9 = 3.7 -> 4
    assert d.ppf(0.1) == 2.0  # 1.9 -> 2


def test_round_flag_rounds_non_integer_field():
    d = dist({"dist": "uniform", "min": 0, "max": 10, "round": True})
    assert d.round is True
    assert d.ppf(0.34) == 3.0  # 3.4 -> 3
    assert dist({"dist": "uniform", "min": 0, "max": 10}).ppf(0.34) == pytest.approx(3.4)


def test_clip_flag_is_stored():
    assert dist({"dist": "uniform", "min": 0, "max": 1, "clip": True}).clip is True
    assert dist({"dist": "uniform", "min": 0, "max": 1}).clip is False


# --------------------------------------------------------------------------- ppf, nominal, describe
@pytest.mark.parametrize(
    "raw",
    [
        {"dist": "lognormal", "p5": 1, "p95": 4},
        {"dist": "pert", "min": 0, "mode": 1, "max": 4},
        {"dist": "triangular", "min": 0, "mode": 1, "max": 4},
        {"dist": "uniform", "min": 0, "max": 4},
        {"dist": "normal", "mean": 2, "sd": 1},
        {"dist": "poisson", "mean": 2},
        {"dist": "choice", "values": [1, 2, 4], "weights": [1, 1, 2]},
    ],
)
def test_ppf_is_vectorised_and_matches_scalar_calls(raw):
    d = dist(raw)
    q = np.array([[0.05, 0.25], [0.5, 0.95]])
    x = d.ppf(q)
    assert x.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            assert x[i, j] == pytest.approx(float(d.ppf(q[i, j])))
    assert x[1, 0] == pytest.approx(d.median())
    flat = x.ravel()
    assert np.all(np.diff(flat[[0, 1, 2, 3]]) >= 0)  # quantiles increase with q
    assert isinstance(d.median(), float)


def test_nominal():
    assert nominal(3.5) == 3.5
    assert nominal(7) == 7
    assert nominal(dist({"dist": "uniform", "min": 2, "max": 6})) == pytest.approx(4.0)  # (2 + 6) / 2


def test_describe():
    assert dist({"dist": "uniform", "min": 2, "max": 6}).describe() == "uniform(min=2, max=6)"
    assert dist({"dist": "choice", "values": [1, 2]}).describe() == "choice[1.0, 2.0]"


# --------------------------------------------------------------------------- validation errors
@pytest.mark.parametrize(
    "raw, bounds, message",
    [
        ({"dist": "gauss"}, FREE, f"{ONE_OF}, got 'gauss'"),
        ({"min": 1}, FREE, f"{ONE_OF}, got None"),
        ({"dist": "pert", "min": 1, "max": 3}, FREE, "dist pert needs min, mode, max; missing mode"),
        ({"dist": "uniform"}, FREE, "dist uniform needs min, max; missing min, max"),
        ({"dist": "normal", "mean": 1}, FREE, "dist normal needs mean, sd; missing sd"),
        ({"dist": "poisson"}, FREE, "dist poisson needs mean; missing mean"),
        (
            {"dist": "uniform", "min": 1, "max": 2, "mode": 1.5},
            FREE,
            "unknown key 'mode' for dist uniform (expected clip, max, min, round)",
        ),
        (
            {"dist": "lognormal", "p5": 1, "p95": 2, "p50": 1.5},
            FREE,
            "unknown key 'p50' for dist lognormal (expected clip, median, p5, p95, round, sigma)",
        ),
        ({"dist": "uniform", "min": 3, "max": 1}, FREE, "uniform needs min < max, got min=3, max=1"),
        ({"dist": "uniform", "min": 2, "max": 2}, FREE, "uniform needs min < max, got min=2, max=2"),
        ({"dist": "lognormal", "p5": 3, "p95": 2}, FREE, "lognormal needs 0 < p5 < p95, got p5=3, p95=2"),
        ({"dist": "lognormal", "p5": 2, "p95": 2}, FREE, "lognormal needs 0 < p5 < p95, got p5=2, p95=2"),
        ({"dist": "lognormal", "p5": 0, "p95": 2}, FREE, "lognormal needs 0 < p5 < p95, got p5=0, p95=2"),
        ({"dist": "lognormal", "p5": 1}, FREE, LOGNORMAL_NEEDS),
        ({"dist": "lognormal", "p5": 1, "sigma": 1}, FREE, LOGNORMAL_NEEDS),
        ({"dist": "lognormal"}, FREE, LOGNORMAL_NEEDS),
        (
            {"dist": "pert", "min": 1, "mode": 5, "max": 3},
            FREE,
            "pert needs min <= mode <= max and min < max, got 1, 5, 3",
        ),
        (
            {"dist": "triangular", "min": 2, "mode": 2, "max": 2},
            FREE,
            "triangular needs min <= mode <= max and min < max, got 2, 2, 2",
        ),
        ({"dist": "normal", "mean": 1, "sd": 0}, FREE, "normal needs sd > 0, got 0"),
        ({"dist": "poisson", "mean": 0}, FREE, "poisson needs mean > 0, got 0"),
        ({"dist": "choice", "values": []}, FREE, "dist choice needs a non-empty list `values`"),
        ({"dist": "choice"}, FREE, "dist choice needs a non-empty list `values`"),
        (
            {"dist": "choice", "values": [1, 2, 3], "weights": [1, 2]},
            FREE,
            "weights: expected a list of 3 numbers (one per value), got [1, 2]",
        ),
        (
            {"dist": "choice", "values": [1, 2], "weights": [0, 0]},
            FREE,
            "weights: must be >= 0 and not all zero",
        ),
        ({"dist": "choice", "values": [1, "x"]}, FREE, "values: expected a number, got 'x'"),
        (
            {"dist": "choice", "values": [1, 2], "weights": [1, "heavy"]},
            FREE,
            "weights: expected a number, got 'heavy'",
        ),
        ({"dist": "choice", "values": [-1, 2]}, Bounds(lo=0), "values: must be >= 0, got -1"),
        ({"dist": "choice", "values": [1, 2.5]}, COUNT, "values: must be a whole number, got 2.5"),
        ({"dist": "uniform", "min": "abc", "max": 2}, FREE, "min: expected a number, got 'abc'"),
        (
            {"dist": "pert", "min": 0, "mode": 1, "max": 2, "lambda": "big"},
            FREE,
            "lambda: expected a number, got 'big'",
        ),
        (
            {"dist": "uniform", "min": 0, "max": 1, "clip": "yes"},
            FREE,
            "clip: expected true or false, got 'yes'",
        ),
        ({"dist": "uniform", "min": 0, "max": 1, "round": 1}, FREE, "round: expected true or false, got 1"),
        ({"dist": "uniform", "min": -1, "max": 1}, Bounds(lo=0), "min: must be >= 0, got -1"),
        ({"dist": "uniform", "min": 0, "max": 1}, POSITIVE, "min: must be > 0, got 0"),
        ({"dist": "pert", "min": 0.2, "mode": 0.5, "max": 1.5}, UNIT, "max: must be <= 1, got 1.5"),
        ({"dist": "uniform", "min": 1.5, "max": 4}, COUNT, "min: must be a whole number, got 1.5"),
        ({"dist": "lognormal", "p5": 2, "p95": 8}, UNIT, f"{MEDIAN} must be <= 1, got 4"),
        (
            {"dist": "normal", "mean": -5, "sd": 1},
            Bounds(hi=0, hi_strict=True),
            None,
        ),  # median -5 < 0 is fine
        ({"dist": "normal", "mean": 5, "sd": 1}, Bounds(hi=0), None),  # truncated to (-inf, 0]: median inside
        ({"dist": "lognormal", "median": 0.5, "sigma": 1}, Bounds(lo=1), f"{MEDIAN} must be >= 1, got 0.5"),
        ({"dist": "poisson", "mean": 0.5}, Bounds(lo=1), f"{MEDIAN} must be >= 1, got 0"),
    ],
)
def test_parse_dist_errors_name_the_sub_key(raw, bounds, message):
    if message is None:
        parse_dist(raw, parse_plain, bounds)
        return
    with pytest.raises(ValueError) as ei:
        parse_dist(raw, parse_plain, bounds)
    assert str(ei.value).startswith(message), str(ei.value)


def test_parse_dist_field_parser_error_is_prefixed_with_sub_key():
    pattern = re.escape("p95: expected a duration such as") + r".*got '3 fortnights'"
    with pytest.raises(ValueError, match=pattern):
        parse_dist({"dist": "lognormal", "p5": "1 h", "p95": "3 fortnights"}, parse_duration_h, POSITIVE)


@pytest.mark.parametrize(
    "raw, found",
    [
        pytest.param({"dist": "pert", "min": 0, "mode": 1, "max": 2, "lambda": -1}, "-1", id="pert-lambda"),
        pytest.param({"dist": "lognormal", "median": -1, "sigma": 1}, "-1", id="lognormal-median"),
        pytest.param(
            {"dist": "normal", "mean": 0, "sd": 1, "min": 2, "max": 1}, "min=2", id="normal-min-max"
        ),
        pytest.param(
            {"dist": "choice", "values": [1, 2], "weights": [1, -1]}, "-1", id="choice-negative-weight"
        ),
    ],
)
def test_parse_dist_error_states_found_value(raw, found):
    with pytest.raises(ValueError) as ei:
        parse_dist(raw, parse_plain, FREE)
    assert found in str(ei.value)


def test_parse_dist_unhashable_kind_is_value_error():
    # `dist: [uniform]` in YAML is a list: must be a ValueError, not "TypeError: unhashable type"
    with pytest.raises(ValueError, match="dist: expected one of"):
        parse_dist({"dist": ["uniform"], "min": 0, "max": 1}, parse_plain, FREE)


def test_z95_is_scipys_normal_quantile():
    """Z95 is written out (scipy.stats is imported only when a distribution is used): the same float."""
    from scipy import stats

    from sim.distributions import Z95

    assert Z95 == float(stats.norm.ppf(0.95))
