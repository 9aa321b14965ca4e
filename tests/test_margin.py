"""Portfolio margin from integer risk arrays: one suite over the fast form and the reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup.margin import (
    RiskArrayError,
    compute_margin_requirement,
    compute_margin_requirement_reference,
    compute_scenario_pnl,
)

MARGINS = [compute_margin_requirement, compute_margin_requirement_reference]

# Hand-made arrays over 4 scenarios: a long "call" gains up, a long "perp" is linear.
ARRAYS = {
    "call": (300, -100, 900, -150),
    "perp": (0, 0, 1_000, -1_000),
    "put": (-90, 120, -150, 800),
}


@pytest.mark.parametrize("margin", MARGINS)
def test_flat_and_empty_portfolios_need_nothing(margin) -> None:
    assert margin({}, ARRAYS) == 0
    # A zero position needs no risk array at all.
    assert margin({"unknown": 0}, {}) == 0


@pytest.mark.parametrize("margin", MARGINS)
def test_vectors(margin) -> None:
    # pre: positions; post: worst loss over the scenarios, worked by hand.
    assert margin({"call": 1}, ARRAYS) == 150
    assert margin({"call": -2}, ARRAYS) == 1_800
    assert margin({"perp": 3}, ARRAYS) == 3_000
    assert margin({"perp": -3}, ARRAYS) == 3_000
    # call - perp per scenario: 300, -100, -100, 850 -> worst loss 100.
    assert margin({"call": 1, "perp": -1}, ARRAYS) == 100
    # 10 calls + 1 put: 2910, -880, 8850, -700 -> 880.
    assert margin({"call": 10, "put": 1}, ARRAYS) == 880


@pytest.mark.parametrize("margin", MARGINS)
def test_long_and_short_of_the_same_array_offset_exactly(margin) -> None:
    arrays = {"a": ARRAYS["call"], "b": ARRAYS["call"]}
    assert margin({"a": 7, "b": -7}, arrays) == 0


@pytest.mark.parametrize("margin", MARGINS)
def test_invalid_missing_risk_array(margin) -> None:
    with pytest.raises(RiskArrayError, match="no risk array for instrument 'gone'"):
        margin({"call": 1, "gone": 2}, ARRAYS)
    # An instrument the oracle has not priced yet may be listed with no array (None).
    with pytest.raises(RiskArrayError, match="no risk array for instrument 7"):
        margin({7: 1}, {7: None})


@pytest.mark.parametrize("margin", MARGINS)
def test_invalid_unequal_scenario_counts(margin) -> None:
    with pytest.raises(RiskArrayError, match="scenario"):
        margin({"call": 1, "short": 1}, {"call": ARRAYS["call"], "short": (1, 2, 3)})


def test_scenario_pnl_is_the_weighted_sum() -> None:
    assert compute_scenario_pnl({"call": 2, "perp": -1}, ARRAYS) == [600, -200, 800, 700]
    assert compute_scenario_pnl({}, ARRAYS) == []


values = st.integers(-10**12, 10**12)
arrays_of = st.integers(1, 16).flatmap(lambda scenarios: st.dictionaries(
    st.integers(0, 20), st.lists(values, min_size=scenarios, max_size=scenarios), min_size=1))
portfolios = arrays_of.flatmap(lambda arrays: st.tuples(
    st.just(arrays), st.dictionaries(st.sampled_from(sorted(arrays)), st.integers(-10**6, 10**6))))


@settings(max_examples=150, deadline=None)
@given(portfolio=portfolios)
def test_fast_equals_reference(portfolio) -> None:
    arrays, positions = portfolio
    assert compute_margin_requirement(positions, arrays) == compute_margin_requirement_reference(positions, arrays)


@pytest.mark.parametrize("margin", MARGINS)
@settings(max_examples=100, deadline=None)
@given(portfolio=portfolios, factor=st.integers(0, 50))
def test_margin_is_non_negative_and_scales_with_size(margin, portfolio, factor) -> None:
    arrays, positions = portfolio
    base = margin(positions, arrays)
    assert base >= 0
    assert margin({k: factor * q for k, q in positions.items()}, arrays) == factor * base


@pytest.mark.parametrize("margin", MARGINS)
@settings(max_examples=100, deadline=None)
@given(first=portfolios, second_positions=st.dictionaries(st.integers(0, 20), st.integers(-1000, 1000)))
def test_margin_is_subadditive(margin, first, second_positions) -> None:
    arrays, positions = first
    other = {k: q for k, q in second_positions.items() if k in arrays}
    combined = {k: positions.get(k, 0) + other.get(k, 0) for k in set(positions) | set(other)}
    # Diversification never raises the requirement: max of a sum <= sum of maxes.
    assert margin(combined, arrays) <= margin(positions, arrays) + margin(other, arrays)
