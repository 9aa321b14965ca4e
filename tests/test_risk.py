"""Risk engine: Black-Scholes against textbook values, Greeks, scenario grid, risk arrays, Greeks of
portfolios. Every Black-Scholes test runs over the vectorised engine and its scalar reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup.margin import compute_margin_requirement
from rollup.risk import (
    DEFAULT_GRID,
    MarketSnapshot,
    OptionSpec,
    PerpSpec,
    RiskInputError,
    UnderlyingQuote,
    compute_erfc,
    compute_normal_cdf,
    compute_normal_cdf_reference,
    compute_option_greeks,
    compute_option_greeks_reference,
    compute_option_price,
    compute_option_price_reference,
    compute_portfolio_greeks,
    compute_risk_arrays,
    compute_risk_arrays_reference,
    compute_scenario_grid,
)
from rollup.units import (
    SECONDS_PER_YEAR,
    USD,
    compute_rounded_division,
    format_size,
    format_usd,
    round_half_even,
    to_contract_price,
    to_micro_usd,
)

GREEKS = [compute_option_greeks, compute_option_greeks_reference]
PRICES = [compute_option_price, compute_option_price_reference]
RISK_ARRAYS = [compute_risk_arrays, compute_risk_arrays_reference]

# ---------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------


def test_format_usd_is_exact() -> None:
    assert format_usd(12_500_000) == "12.50 USD"
    assert format_usd(-40 * USD) == "-40.00 USD"
    assert format_usd(1) == "0.000001 USD"
    assert format_usd(1_234_567_891, unit=False) == "1234.567891"


def test_contract_price_conversion() -> None:
    # 60,000 USD per BTC on a 0.001 BTC contract (contract_size 10) is 60 USD per contract.
    assert to_contract_price(60_000.0, 10) == 60 * USD
    assert format_size(10) == "0.001"
    assert format_size(25_000) == "2.5"
    assert to_micro_usd(0.1) == 100_000
    with pytest.raises(ValueError):
        to_contract_price(1.0, 0)


def test_rounding_is_half_to_even_in_floats_and_ints() -> None:
    assert [round_half_even(v) for v in (0.5, 1.5, 2.5, -0.5, -1.5)] == [0, 2, 2, 0, -2]
    assert [int(v) for v in np.rint([0.5, 1.5, 2.5, -0.5, -1.5])] == [0, 2, 2, 0, -2]
    assert [compute_rounded_division(n, 2) for n in (1, 3, 5, -1, -3)] == [0, 2, 2, 0, -2]
    assert compute_rounded_division(7, 3) == 2 and compute_rounded_division(-7, 3) == -2
    with pytest.raises(ValueError):
        round_half_even(math.nan)


# ---------------------------------------------------------------------------------------------
# The normal distribution
# ---------------------------------------------------------------------------------------------


def test_erfc_matches_math_erfc_to_a_few_ulps() -> None:
    x = np.linspace(-9.0, 27.0, 40_001)
    expected = np.array([math.erfc(v) for v in x])
    got = compute_erfc(x)
    normal = expected > 1e-300
    assert np.max(np.abs(got[normal] - expected[normal]) / expected[normal]) < 2e-15
    assert np.max(np.abs(got - expected)) <= 4.5e-16  # one ulp of values near 2


def test_normal_cdf_limits_and_reference() -> None:
    assert compute_normal_cdf(np.array([-np.inf, 0.0, np.inf])).tolist() == [0.0, 0.5, 1.0]
    x = np.linspace(-12.0, 12.0, 2_401)
    expected = np.array([compute_normal_cdf_reference(v) for v in x])
    assert np.allclose(compute_normal_cdf(x), expected, rtol=2e-15, atol=0.0)


# ---------------------------------------------------------------------------------------------
# Black-Scholes against the textbook
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("greeks", GREEKS)
def test_hull_example_call_and_put_prices(greeks) -> None:
    # J. C. Hull, Options, Futures, and Other Derivatives (e.g. 8th ed., Example 14.6 / 10th ed.
    # Example 15.6): S=42, K=40, r=10%, sigma=20%, T=0.5 -> call 4.76, put 0.81.
    result = greeks(42.0, 40.0, 0.10, 0.20, 0.5, np.array([True, False]))
    assert round(float(result.price[0]), 2) == 4.76
    assert round(float(result.price[1]), 2) == 0.81


@pytest.mark.parametrize("greeks", GREEKS)
def test_hull_greeks_example(greeks) -> None:
    # J. C. Hull, Options, Futures, and Other Derivatives, chapter "The Greek Letters" (8th ed.
    # ch. 18, examples 18.1-18.5): S=49, K=50, r=5%, sigma=20%, T=20 weeks=0.3846 years, a call:
    # delta 0.522, gamma 0.066, theta -4.31 per year (-0.0118 per calendar day), vega 12.1 per 1.00.
    result = greeks(49.0, 50.0, 0.05, 0.20, 0.3846, True)
    assert round(float(result.delta), 3) == 0.522
    assert round(float(result.gamma), 3) == 0.066
    assert round(float(result.theta), 2) == -4.31
    assert round(float(result.theta_per_day), 4) == -0.0118
    assert round(float(result.vega), 1) == 12.1
    assert round(float(result.vega_per_pct), 3) == 0.121


option_inputs = st.tuples(
    st.floats(1.0, 1e5),  # spot
    st.floats(0.3, 3.0),  # strike / spot
    st.floats(-0.02, 0.2),  # rate
    st.floats(0.05, 1.5),  # vol
    st.floats(0.02, 3.0),  # expiry in years
    st.booleans(),
    st.floats(0.0, 0.1),  # carry
)


@pytest.mark.parametrize("greeks", GREEKS)
@settings(max_examples=60, deadline=None)
@given(inputs=option_inputs)
def test_put_call_parity(greeks, inputs) -> None:
    spot, moneyness, rate, vol, expiry, _, carry = inputs
    strike = spot * moneyness
    call, put = greeks(spot, strike, rate, vol, expiry, np.array([True, False]), carry).price
    forward_value = spot * math.exp(-carry * expiry) - strike * math.exp(-rate * expiry)
    assert call - put == pytest.approx(forward_value, abs=1e-10 * spot)


@settings(max_examples=80, deadline=None)
@given(inputs=option_inputs)
def test_greeks_match_finite_differences(inputs) -> None:
    spot, moneyness, rate, vol, expiry, is_call, carry = inputs
    strike = spot * moneyness

    def price(s=spot, v=vol, t=expiry):
        return float(compute_option_price(s, strike, rate, v, t, is_call, carry))

    g = compute_option_greeks(spot, strike, rate, vol, expiry, is_call, carry)
    h = 1e-5 * spot
    scale = spot  # errors are judged against the size of the underlying's price
    delta_fd = (price(s=spot + h) - price(s=spot - h)) / (2 * h)
    assert float(g.delta) == pytest.approx(delta_fd, rel=1e-4, abs=1e-6)
    gamma_fd = (price(s=spot + h) - 2 * price() + price(s=spot - h)) / (h * h)
    assert float(g.gamma) * spot == pytest.approx(gamma_fd * spot, rel=1e-3, abs=1e-4)
    vega_fd = (price(v=vol + 1e-6) - price(v=vol - 1e-6)) / 2e-6
    assert float(g.vega) == pytest.approx(vega_fd, rel=1e-4, abs=1e-7 * scale)
    dt = min(1e-6, expiry / 10)
    # theta is the change of value as calendar time passes: minus the derivative in expiry.
    theta_fd = -(price(t=expiry + dt) - price(t=expiry - dt)) / (2 * dt)
    assert float(g.theta) == pytest.approx(theta_fd, rel=1e-4, abs=1e-6 * scale)


def test_vectorised_equals_scalar_loop() -> None:
    rng = np.random.default_rng(2026)
    n = 400
    spot = rng.uniform(10, 1e5, n)
    args = (spot, spot * rng.uniform(0.3, 3, n), rng.uniform(-0.02, 0.2, n), rng.uniform(0, 2, n),
            rng.uniform(-0.1, 3, n), rng.integers(0, 2, n).astype(bool), rng.uniform(0, 0.1, n))
    fast = compute_option_greeks(*args)
    slow = compute_option_greeks_reference(*args)
    for name in ("price", "delta", "gamma", "vega", "theta"):
        assert np.allclose(getattr(fast, name), getattr(slow, name), rtol=1e-11, atol=1e-9), name


def test_broadcasting_over_a_strike_ladder_and_expiries() -> None:
    strikes = np.array([30.0, 40.0, 50.0])[:, None]
    expiries = np.array([0.1, 0.5, 1.0])[None, :]
    result = compute_option_greeks(42.0, strikes, 0.1, 0.2, expiries, True)
    assert result.price.shape == (3, 3)
    assert result.price[1, 1] == pytest.approx(4.759422, abs=1e-6)
    # Calls fall in value with the strike and rise with time (no carry).
    assert (np.diff(result.price, axis=0) < 0).all()
    assert (np.diff(result.price, axis=1) > 0).all()


@pytest.mark.parametrize("greeks", GREEKS)
def test_expired_option_prices_to_intrinsic(greeks) -> None:
    spot = np.array([50.0, 40.0, 30.0])
    calls = greeks(spot, 40.0, 0.05, 0.3, 0.0, True)
    puts = greeks(spot, 40.0, 0.05, 0.3, -0.25, False)  # expired a quarter ago: still intrinsic
    assert calls.price.tolist() == [10.0, 0.0, 0.0]
    assert puts.price.tolist() == [0.0, 0.0, 10.0]
    assert calls.delta.tolist() == [1.0, 0.5, 0.0]
    assert puts.delta.tolist() == [0.0, -0.5, -1.0]
    for greek in (calls.gamma, calls.vega, calls.theta, puts.gamma, puts.vega, puts.theta):
        assert greek.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("greeks", GREEKS)
def test_zero_volatility_is_discounted_forward_intrinsic(greeks) -> None:
    result = greeks(np.array([50.0, 30.0]), 40.0, 0.05, 0.0, 1.0, True)
    assert result.price[0] == pytest.approx(50.0 - 40.0 * math.exp(-0.05))
    assert result.price[1] == 0.0
    assert result.delta.tolist() == [1.0, 0.0]
    assert result.gamma.tolist() == [0.0, 0.0]
    assert np.isfinite(result.theta).all()


@pytest.mark.parametrize("greeks", GREEKS)
@pytest.mark.parametrize("bad, message", [
    (dict(vol=-0.2), "volatility"),
    (dict(spot=0.0), "spot"),
    (dict(spot=-1.0), "spot"),
    (dict(strike=0.0), "strike"),
    (dict(expiry=math.nan), "expiry"),
])
def test_invalid_black_scholes_inputs(greeks, bad, message) -> None:
    inputs = dict(spot=42.0, strike=40.0, rate=0.1, vol=0.2, expiry=0.5, is_call=True)
    inputs.update(bad)
    with pytest.raises(RiskInputError, match=message):
        greeks(**inputs)


# ---------------------------------------------------------------------------------------------
# Scenario grid
# ---------------------------------------------------------------------------------------------


def test_default_grid_is_span_like() -> None:
    grid = DEFAULT_GRID
    assert grid.size >= 16
    assert len(set(grid.names)) == grid.size
    # 7 price levels x volatility up/down, then two extreme moves at a cover fraction.
    assert sorted(set(grid.price_moves[:14])) == pytest.approx([-0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15])
    assert grid.price_moves[14:] == pytest.approx((0.45, -0.45))
    assert grid.weights[14:] == (0.35, 0.35) and set(grid.weights[:14]) == {1.0}
    assert {v for v in grid.vol_moves[:14]} == {0.10, -0.10}


@pytest.mark.parametrize("kwargs", [dict(scan_range=0.0), dict(scan_range=0.4), dict(vol_shift=-0.1),
                                    dict(extreme_cover=0.0), dict(extreme_cover=1.5)])
def test_invalid_scenario_grid(kwargs) -> None:
    with pytest.raises(RiskInputError):
        compute_scenario_grid(**kwargs)


# ---------------------------------------------------------------------------------------------
# Risk arrays and margin
# ---------------------------------------------------------------------------------------------

NOW = 1_800_000_000
MARKET = MarketSnapshot(NOW, {"BTC": UnderlyingQuote(60_000.0, 0.6, 0.05, 0.0, 0.001),
                              "ETH": UnderlyingQuote(3_000.0, 0.75, 0.05)})


def make_instruments(count: int, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    instruments: dict = {"BTC-PERP": PerpSpec("BTC", 10), "ETH-PERP": PerpSpec("ETH", 1_000)}
    for i in range(count):
        underlying, spot, size = ("BTC", 60_000.0, 10) if i % 2 else ("ETH", 3_000.0, 1_000)
        instruments[f"opt-{i}"] = OptionSpec(
            underlying, to_contract_price(spot * rng.uniform(0.5, 1.5), size),
            NOW + int(rng.integers(3600, 2 * SECONDS_PER_YEAR)), bool(rng.integers(0, 2)), size)
    return instruments


@pytest.mark.parametrize("risk_arrays", RISK_ARRAYS)
def test_risk_arrays_are_ints_and_deterministic(risk_arrays) -> None:
    instruments = make_instruments(30)
    first = risk_arrays(instruments, MARKET)
    assert list(first) == list(instruments)
    for array in first.values():
        assert len(array) == DEFAULT_GRID.size
        assert all(type(v) is int for v in array)
    assert risk_arrays(instruments, MARKET) == first


def test_vectorised_risk_arrays_equal_the_reference() -> None:
    instruments = make_instruments(300)
    fast = compute_risk_arrays(instruments, MARKET)
    slow = compute_risk_arrays_reference(instruments, MARKET)
    differences = [abs(a - b) for key in instruments for a, b in zip(fast[key], slow[key])]
    # Both round the same float half to even; only a few-ulp difference at a .5 tie can differ by 1.
    assert max(differences) <= 1
    assert sum(differences) <= 3


def test_perp_risk_array_is_linear_in_the_move() -> None:
    arrays = compute_risk_arrays({"BTC-PERP": PerpSpec("BTC", 10)}, MARKET)
    # Mark 60,060 USD (premium 0.1%) x 0.001 BTC = 60.06 USD per contract; 1/3 of 15% = 5%.
    assert arrays["BTC-PERP"][:4] == (0, 0, 3_003_000, 3_003_000)
    assert arrays["BTC-PERP"][10] == 9_009_000
    assert arrays["BTC-PERP"][15] == -round(0.35 * 0.45 * 60.06 * USD)


def test_long_option_risk_is_bounded_by_its_premium() -> None:
    instruments = {k: v for k, v in make_instruments(40).items() if isinstance(v, OptionSpec)}
    arrays = compute_risk_arrays(instruments, MARKET)
    for key in instruments:
        value = compute_portfolio_greeks({key: 1}, instruments, MARKET).value * USD
        # A long option can lose at most what it is worth (+1 for rounding).
        assert compute_margin_requirement({key: 1}, arrays) <= value + 1


def test_hedged_portfolio_needs_no_margin() -> None:
    call = OptionSpec("BTC", to_contract_price(62_000.0, 10), NOW + 30 * 86_400, True, 10)
    # Two listings of the same contract, a perp in two contract sizes: long one, short the other.
    instruments = {"call-a": call, "call-b": call, "perp-small": PerpSpec("BTC", 10),
                   "perp-big": PerpSpec("BTC", 100)}
    arrays = compute_risk_arrays(instruments, MARKET)
    assert compute_margin_requirement({"call-a": -5}, arrays) > 0
    assert compute_margin_requirement({"call-a": 5, "call-b": -5}, arrays) == 0
    assert compute_margin_requirement({"perp-small": 10, "perp-big": -1}, arrays) == 0
    assert compute_margin_requirement({"call-a": -5, "call-b": 5, "perp-small": 3, "perp-big": -3}, arrays) > 0


def test_short_call_needs_margin_and_it_is_monotone_in_size() -> None:
    instruments = make_instruments(6)
    arrays = compute_risk_arrays(instruments, MARKET)
    previous = 0
    for size in range(1, 12):
        margin = compute_margin_requirement({"opt-1": -size, "opt-2": size // 2}, arrays)
        assert margin >= previous
        previous = margin
    assert previous > 0


# ---------------------------------------------------------------------------------------------
# Portfolio Greeks
# ---------------------------------------------------------------------------------------------


def test_perp_delta_is_contract_units() -> None:
    greeks = compute_portfolio_greeks({"BTC-PERP": 7, "ETH-PERP": -2}, make_instruments(0), MARKET)
    btc, eth = greeks.by_underlying["BTC"], greeks.by_underlying["ETH"]
    assert btc.delta == pytest.approx(0.007) and eth.delta == pytest.approx(-0.2)
    assert (btc.gamma, btc.vega, btc.theta, btc.value) == (0.0, 0.0, 0.0, 0.0)
    assert greeks.delta_usd == pytest.approx(0.007 * 60_000 - 0.2 * 3_000)


def test_option_greeks_scale_with_quantity_and_contract_size() -> None:
    spec = OptionSpec("BTC", to_contract_price(65_000.0, 10), NOW + SECONDS_PER_YEAR // 4, True, 10)
    greeks = compute_portfolio_greeks({"c": -4}, {"c": spec}, MARKET).by_underlying["BTC"]
    single = compute_option_greeks(60_000.0, 65_000.0, 0.05, 0.6, 0.25, True)
    assert greeks.value == pytest.approx(-4 * 0.001 * float(single.price))
    assert greeks.delta == pytest.approx(-4 * 0.001 * float(single.delta))
    assert greeks.gamma == pytest.approx(-4 * 0.001 * float(single.gamma))
    assert greeks.vega_per_pct == pytest.approx(-4 * 0.001 * float(single.vega_per_pct))
    assert greeks.theta_per_day == pytest.approx(-4 * 0.001 * float(single.theta_per_day))


def test_invalid_portfolio_greeks_inputs() -> None:
    with pytest.raises(RiskInputError, match="unknown instrument"):
        compute_portfolio_greeks({"nope": 1}, {}, MARKET)
    with pytest.raises(RiskInputError, match="no market quote"):
        compute_portfolio_greeks({"p": 1}, {"p": PerpSpec("SOL", 10_000)}, MARKET)
    with pytest.raises(RiskInputError, match="contract size"):
        PerpSpec("BTC", 0)
