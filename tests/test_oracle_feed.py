"""Oracle values: integers rounded once, funding accrual, settlement, the seeded market walk."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rollup.oracle_feed import (
    FundingRule,
    OracleValues,
    compute_funding_increment,
    compute_oracle_path,
    compute_oracle_values,
    compute_settlement_price,
    get_market_snapshot,
    simulate_market,
)
from rollup.risk import (
    DEFAULT_GRID,
    MarketSnapshot,
    OptionSpec,
    PerpSpec,
    RiskInputError,
    UnderlyingQuote,
    compute_option_price,
    compute_risk_arrays,
)
from rollup.units import SECONDS_PER_YEAR, USD, to_contract_price

T0 = 1_767_225_600
PERPS = {"BTC-PERP": PerpSpec("BTC", 10), "ETH-PERP": PerpSpec("ETH", 1_000)}
SERIES = {
    "BTC-C-60000": OptionSpec("BTC", to_contract_price(60_000.0, 10), T0 + 3_600, True, 10),
    "BTC-P-58000": OptionSpec("BTC", to_contract_price(58_000.0, 10), T0 + 7_200, False, 10),
    "ETH-C-3500": OptionSpec("ETH", to_contract_price(3_500.0, 1_000), T0 + 30 * 86_400, True, 1_000),
}


def snapshot(timestamp: int, btc: float = 60_000.0, eth: float = 3_000.0, premium: float = 0.0) -> MarketSnapshot:
    return MarketSnapshot(timestamp, {"BTC": UnderlyingQuote(btc, 0.6, 0.05, perp_premium=premium),
                                      "ETH": UnderlyingQuote(eth, 0.75, 0.05)})


def test_all_values_are_integers_and_json_serialisable() -> None:
    values = compute_oracle_values(snapshot(T0), PERPS, SERIES)
    data = values.to_dict()
    json.dumps(data)
    for key in ("perp_marks", "index_prices", "funding_indices", "option_marks", "settlement_prices"):
        assert all(type(v) is int for v in data[key].values()), key
    for arrays in (data["perp_risk_arrays"], data["option_risk_arrays"]):
        assert all(len(a) == DEFAULT_GRID.size and all(type(v) is int for v in a) for a in arrays.values())
    assert data["underlyings"]["BTC"] == {"spot": 60_000 * USD, "vol": 600_000, "rate": 50_000, "carry": 0}
    assert hash(values)  # frozen, hashable all the way down


def test_marks_are_rounded_once_from_black_scholes() -> None:
    values = compute_oracle_values(snapshot(T0, premium=0.001), PERPS, SERIES)
    marks = dict(values.option_marks)
    spec = SERIES["ETH-C-3500"]
    expected = compute_option_price(3_000.0, 3_500.0, 0.05, 0.75, 30 * 86_400 / SECONDS_PER_YEAR, True)
    assert marks["ETH-C-3500"] == round(float(expected) * 0.1 * USD)
    assert spec.contract_size == 1_000  # 0.1 ETH per contract
    assert dict(values.perp_marks) == {"BTC-PERP": 60_060_000, "ETH-PERP": 300_000_000}
    assert dict(values.index_prices) == {"BTC-PERP": 60_000_000, "ETH-PERP": 300_000_000}
    assert dict(values.perp_risk_arrays) == compute_risk_arrays(PERPS, snapshot(T0, premium=0.001))


def test_settlement_is_intrinsic_at_expiry_and_fixed_once() -> None:
    first = compute_oracle_values(snapshot(T0), PERPS, SERIES)
    assert first.settlement_prices == ()
    # One hour later the BTC call expires with BTC at 61,000: 1 USD per 0.001 BTC contract.
    at_expiry = compute_oracle_values(snapshot(T0 + 3_600, btc=61_000.0), PERPS, SERIES, first)
    assert dict(at_expiry.settlement_prices) == {"BTC-C-60000": 1_000_000}
    assert "BTC-C-60000" not in dict(at_expiry.option_marks)
    assert "BTC-C-60000" not in dict(at_expiry.option_risk_arrays)
    assert "BTC-P-58000" in dict(at_expiry.option_marks)
    # Later updates carry the settlement price unchanged, whatever BTC does; the put settles at 55,000.
    later = compute_oracle_values(snapshot(T0 + 7_200, btc=55_000.0), PERPS, SERIES, at_expiry)
    assert dict(later.settlement_prices) == {"BTC-C-60000": 1_000_000, "BTC-P-58000": 3_000_000}


def test_settlement_price_vectors() -> None:
    assert compute_settlement_price(61_000_000, 60_000_000, True) == 1_000_000
    assert compute_settlement_price(59_000_000, 60_000_000, True) == 0
    assert compute_settlement_price(59_000_000, 60_000_000, False) == 1_000_000
    assert compute_settlement_price(60_000_000, 60_000_000, False) == 0


def test_funding_accrues_the_previous_premium_pro_rata() -> None:
    rule = FundingRule(period_seconds=8 * 3_600, max_premium_bps=500)
    first = compute_oracle_values(snapshot(T0, premium=0.001), PERPS, {}, funding=rule)
    assert dict(first.funding_indices) == {"BTC-PERP": 0, "ETH-PERP": 0}
    # Mark 60.06 vs index 60.00 USD per contract for one hour of an 8-hour period:
    # 60,000 micro-USD / 8 = 7,500 micro-USD per contract, paid by longs.
    second = compute_oracle_values(snapshot(T0 + 3_600, premium=-0.002), PERPS, {}, first, funding=rule)
    assert dict(second.funding_indices) == {"BTC-PERP": 7_500, "ETH-PERP": 0}
    # Then the premium was -0.2% for 30 minutes: -120,000 / 16 = -7,500: longs receive.
    third = compute_oracle_values(snapshot(T0 + 5_400), PERPS, {}, second, funding=rule)
    assert dict(third.funding_indices)["BTC-PERP"] == 0


def test_funding_increment_is_capped_and_rounded_half_to_even() -> None:
    rule = FundingRule(period_seconds=8, max_premium_bps=100)
    # Premium 50 on index 1,000 is capped at 1% = 10.
    assert compute_funding_increment(1_050, 1_000, 8, rule) == 10
    assert compute_funding_increment(950, 1_000, 8, rule) == -10
    # 3 * 4 / 8 = 1.5 -> 2 (even); 1 * 4 / 8 = 0.5 -> 0 (even).
    assert compute_funding_increment(1_003, 1_000, 4, rule) == 2
    assert compute_funding_increment(1_001, 1_000, 4, rule) == 0
    with pytest.raises(RiskInputError):
        compute_funding_increment(1_001, 1_000, -1, rule)


def test_invalid_time_going_backwards() -> None:
    first = compute_oracle_values(snapshot(T0), PERPS, SERIES)
    with pytest.raises(RiskInputError, match="backwards"):
        compute_oracle_values(snapshot(T0 - 1), PERPS, SERIES, first)


def test_invalid_unquoted_underlying() -> None:
    with pytest.raises(RiskInputError, match="SOL"):
        compute_oracle_values(snapshot(T0), {"SOL-PERP": PerpSpec("SOL", 10_000)}, {})


def test_simulated_market_is_deterministic_per_seed() -> None:
    first = simulate_market(seed=11, steps=50)
    again = simulate_market(seed=11, steps=50)
    other = simulate_market(seed=12, steps=50)
    assert first == again
    assert first != other
    assert [s.timestamp for s in first] == [first[0].timestamp + 3_600 * i for i in range(50)]
    spots = np.array([s.quotes["BTC"].spot for s in first])
    assert (spots > 0).all() and len(set(spots.tolist())) == 50
    assert all(0 < s.quotes["ETH"].vol < 3 for s in first)


def test_oracle_path_chains_funding_and_settles_each_series_once() -> None:
    path = simulate_market(seed=3, steps=30)
    values = compute_oracle_path(path, PERPS, SERIES)
    assert [v.timestamp for v in values] == [s.timestamp for s in path]
    assert values == compute_oracle_path(path, PERPS, SERIES)  # deterministic
    settled = [dict(v.settlement_prices) for v in values]
    assert settled[0] == {} and set(settled[-1]) == {"BTC-C-60000", "BTC-P-58000"}
    assert settled[-1]["BTC-C-60000"] == settled[2]["BTC-C-60000"]
    assert any(dict(v.funding_indices)["BTC-PERP"] != 0 for v in values[2:])


def test_market_snapshot_recovered_from_published_integers() -> None:
    market = snapshot(T0, btc=60_123.456789)
    values = compute_oracle_values(market, PERPS, SERIES)
    recovered = get_market_snapshot(values)
    assert recovered.timestamp == T0
    assert recovered.quotes["BTC"].spot == pytest.approx(60_123.456789, abs=1e-6)
    assert recovered.quotes["ETH"].vol == 0.75
    assert isinstance(values, OracleValues)


def test_risk_arrays_merge_and_reject_colliding_ids() -> None:
    values = compute_oracle_values(snapshot(T0), PERPS, SERIES)
    assert set(values.get_risk_arrays()) == set(PERPS) | set(SERIES)
    clash = compute_oracle_values(snapshot(T0), {"X": PerpSpec("BTC", 10)}, {"X": SERIES["ETH-C-3500"]})
    with pytest.raises(RiskInputError, match="both"):
        clash.get_risk_arrays()
