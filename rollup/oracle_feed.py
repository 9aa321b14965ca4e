"""The oracle's side of the risk engine: float market inputs in, the integers an OracleUpdate signs out.

``compute_oracle_values`` turns a ``MarketSnapshot`` (spot, volatility, rate per underlying at a
unix time) and the instrument specs into ``OracleValues``: every number an integer, each rounded
exactly once (half to even) from the float it comes from. ``simulate_market`` is a seeded random
walk of snapshots for demos and fixtures.

Units (rollup/units.py): prices and P&L in micro-USD per contract; fractions in ppm.

Funding: each perpetual market has a cumulative funding index in micro-USD per contract, 0 at the
first update that lists the market. At every later update it grows by the clamped premium of the
mark over the index, pro rata of the elapsed time:

    premium   = clamp(mark_prev - index_prev, -cap, +cap),  cap = index_prev * max_premium_bps // 10_000
    increment = round_half_even(premium * (t_now - t_prev) / period_seconds)
    funding_index_now = funding_index_prev + increment

with mark_prev and index_prev the integer per-contract prices of the previous update (the
premium in force over the interval just elapsed, so the index never depends on a price not yet
published), which makes the increment exact integer arithmetic that anyone can recompute.
premium / index is the (mark - index)/index premium rate; multiplying by index gives it per
contract. A position of ``size`` contracts owes
``size * (funding_index_now - funding_index_at_its_last_settlement)``: longs pay when the mark is
above the index, shorts receive the same amount, so funding conserves collateral.

Settlement: a series whose expiry is at or before the update's timestamp gets a settlement price,
its intrinsic payoff per contract at the index of that update, ``max(index - strike, 0)`` for a
call and ``max(strike - index, 0)`` for a put (exact integers). Once published it is carried
forward unchanged by later updates (pass ``previous``), so a series settles exactly once.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from rollup.risk import (
    DEFAULT_GRID,
    MarketSnapshot,
    RiskInputError,
    ScenarioGrid,
    UnderlyingQuote,
    compute_option_marks,
    compute_risk_arrays,
)
from rollup.units import BPS, FRACTION, SECONDS_PER_YEAR, USD, compute_rounded_division, round_half_even, \
    to_contract_price

InstrumentId = Hashable
Pairs = tuple[tuple[Any, int], ...]


@dataclass(frozen=True)
class UnderlyingValues:
    """An underlying's published market inputs as integers: spot in micro-USD per unit of the
    underlying; volatility, rate and carry in ppm. Enough to recompute Greeks from state."""

    name: str
    spot: int
    vol: int
    rate: int
    carry: int


@dataclass(frozen=True)
class OracleValues:
    """Everything one signed OracleUpdate carries, as integers (sorted by id, ints before strs).

    perp_marks / index_prices / funding_indices: per perpetual market, micro-USD per contract.
    option_marks / option_risk_arrays: per live option series (expiry > timestamp).
    perp_risk_arrays: per perpetual market. A risk array is the micro-USD P&L of one long contract
    in each scenario of the grid. settlement_prices: per expired series, micro-USD per contract.
    """

    timestamp: int
    underlyings: tuple[UnderlyingValues, ...]
    perp_marks: Pairs
    index_prices: Pairs
    funding_indices: Pairs
    option_marks: Pairs
    perp_risk_arrays: tuple[tuple[Any, tuple[int, ...]], ...]
    option_risk_arrays: tuple[tuple[Any, tuple[int, ...]], ...]
    settlement_prices: Pairs

    def get_risk_arrays(self) -> dict[Any, tuple[int, ...]]:
        """Risk arrays of perps and live series in one mapping (their ids must not collide)."""
        merged = dict(self.perp_risk_arrays)
        for instrument_id, array in self.option_risk_arrays:
            # One mapping needs one id per instrument.
            if instrument_id in merged:
                raise RiskInputError(f"instrument id {instrument_id!r} is both a perpetual and an option series")
            merged[instrument_id] = array
        return merged

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly form (mappings keyed by instrument id)."""
        return {
            "timestamp": self.timestamp,
            "underlyings": {u.name: {"spot": u.spot, "vol": u.vol, "rate": u.rate, "carry": u.carry}
                            for u in self.underlyings},
            "perp_marks": dict(self.perp_marks),
            "index_prices": dict(self.index_prices),
            "funding_indices": dict(self.funding_indices),
            "option_marks": dict(self.option_marks),
            "perp_risk_arrays": {k: list(v) for k, v in self.perp_risk_arrays},
            "option_risk_arrays": {k: list(v) for k, v in self.option_risk_arrays},
            "settlement_prices": dict(self.settlement_prices),
        }


@dataclass(frozen=True)
class FundingRule:
    """Funding accrues the full premium over period_seconds; the premium is capped at
    max_premium_bps of the index (so a broken mark cannot drain an account in one update)."""

    period_seconds: int = 8 * 3600
    max_premium_bps: int = 500

    def __post_init__(self) -> None:
        # A funding period of zero would divide by zero.
        if self.period_seconds <= 0:
            raise RiskInputError(f"funding period must be positive seconds, got {self.period_seconds}")
        # The cap is a size in basis points.
        if self.max_premium_bps < 0:
            raise RiskInputError(f"funding premium cap must be >= 0 bps, got {self.max_premium_bps}")


DEFAULT_FUNDING_RULE = FundingRule()


def _sort_key(instrument_id: Any) -> tuple[bool, Any]:
    return (isinstance(instrument_id, str), instrument_id)


def _sorted_pairs(mapping: Mapping[Any, Any]) -> tuple:
    return tuple(sorted(mapping.items(), key=lambda item: _sort_key(item[0])))


def compute_funding_increment(mark: int, index: int, elapsed_seconds: int,
                              rule: FundingRule = DEFAULT_FUNDING_RULE) -> int:
    """Micro-USD per contract a long pays over elapsed_seconds (negative: longs receive)."""
    # Time only moves forward between oracle updates.
    if elapsed_seconds < 0:
        raise RiskInputError(f"funding interval must not be negative, got {elapsed_seconds} s")
    cap = index * rule.max_premium_bps // BPS
    premium = max(-cap, min(cap, mark - index))
    return compute_rounded_division(premium * elapsed_seconds, rule.period_seconds)


def compute_settlement_price(index: int, strike: int, is_call: bool) -> int:
    """Intrinsic payoff of one contract at the settlement index (micro-USD per contract)."""
    return max(index - strike, 0) if is_call else max(strike - index, 0)


def get_underlying_values(market: MarketSnapshot) -> tuple[UnderlyingValues, ...]:
    """The snapshot's float quotes as integers (spot micro-USD per unit; fractions in ppm)."""
    return tuple(
        UnderlyingValues(name, round_half_even(q.spot * USD), round_half_even(q.vol * FRACTION),
                         round_half_even(q.rate * FRACTION), round_half_even(q.carry * FRACTION))
        for name, q in sorted(market.quotes.items())
    )


def get_market_snapshot(values: OracleValues) -> MarketSnapshot:
    """Float market inputs recovered from published integers (for Greeks of a node's accounts)."""
    return MarketSnapshot(values.timestamp, {
        u.name: UnderlyingQuote(spot=u.spot / USD, vol=u.vol / FRACTION, rate=u.rate / FRACTION,
                                carry=u.carry / FRACTION)
        for u in values.underlyings
    })


def compute_oracle_values(market: MarketSnapshot, perps: Mapping[InstrumentId, Any],
                          series: Mapping[InstrumentId, Any], previous: OracleValues | None = None,
                          grid: ScenarioGrid = DEFAULT_GRID,
                          funding: FundingRule = DEFAULT_FUNDING_RULE) -> OracleValues:
    """The integer oracle values at market.timestamp.

    perps: id -> object with underlying, contract_size. series: id -> object with underlying,
    strike (micro-USD per contract), expiry (unix seconds), is_call, contract_size. previous: the
    last published values, for funding accrual and settlement prices already fixed.
    """
    timestamp = market.timestamp
    # Oracle time is integer unix seconds.
    if not isinstance(timestamp, int):
        raise RiskInputError(f"oracle timestamp must be integer unix seconds, got {timestamp!r}")
    # Oracle time never goes backwards.
    if previous is not None and timestamp < previous.timestamp:
        raise RiskInputError(f"oracle time went backwards: {timestamp} < previous {previous.timestamp}")
    perp_marks, index_prices, funding_indices = _compute_perp_values(market, perps, previous, funding)
    live = {i: s for i, s in series.items() if s.expiry > timestamp}
    option_marks = {i: round_half_even(v) for i, v in compute_option_marks(live, market).items()}
    settlements = _compute_settlement_prices(market, series, previous)
    return OracleValues(
        timestamp=timestamp,
        underlyings=get_underlying_values(market),
        perp_marks=_sorted_pairs(perp_marks),
        index_prices=_sorted_pairs(index_prices),
        funding_indices=_sorted_pairs(funding_indices),
        option_marks=_sorted_pairs(option_marks),
        perp_risk_arrays=_sorted_pairs(compute_risk_arrays(perps, market, grid)),
        option_risk_arrays=_sorted_pairs(compute_risk_arrays(live, market, grid)),
        settlement_prices=_sorted_pairs(settlements),
    )


def _compute_perp_values(market: MarketSnapshot, perps: Mapping[InstrumentId, Any],
                         previous: OracleValues | None, funding: FundingRule) -> tuple[dict, dict, dict]:
    previous_marks = dict(previous.perp_marks) if previous else {}
    previous_indices = dict(previous.index_prices) if previous else {}
    previous_funding = dict(previous.funding_indices) if previous else {}
    marks, indices, funding_indices = {}, {}, {}
    for perp_id, spec in perps.items():
        quote = market.get_quote(spec.underlying)
        marks[perp_id] = to_contract_price(quote.perp_mark, spec.contract_size)
        indices[perp_id] = to_contract_price(quote.spot, spec.contract_size)
        funding_indices[perp_id] = previous_funding.get(perp_id, 0)
        if perp_id in previous_funding:
            # Funding accrues on the premium in force over the elapsed interval: the previous one.
            funding_indices[perp_id] += compute_funding_increment(
                previous_marks[perp_id], previous_indices[perp_id], market.timestamp - previous.timestamp, funding)
    return marks, indices, funding_indices


def _compute_settlement_prices(market: MarketSnapshot, series: Mapping[InstrumentId, Any],
                               previous: OracleValues | None) -> dict:
    fixed = dict(previous.settlement_prices) if previous else {}
    prices = {}
    for series_id, spec in series.items():
        if spec.expiry > market.timestamp:
            continue
        if series_id in fixed:
            prices[series_id] = fixed[series_id]
            continue
        index = to_contract_price(market.get_quote(spec.underlying).spot, spec.contract_size)
        prices[series_id] = compute_settlement_price(index, spec.strike, spec.is_call)
    return prices


# --------------------------------------------------------------------------------------------
# A seeded market for demos and fixtures
# --------------------------------------------------------------------------------------------

DEFAULT_START_TIME = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())
DEFAULT_QUOTES = {
    "BTC": UnderlyingQuote(spot=60_000.0, vol=0.60, rate=0.05),
    "ETH": UnderlyingQuote(spot=3_000.0, vol=0.75, rate=0.05),
}


def simulate_market(seed: int, steps: int, start_time: int = DEFAULT_START_TIME, step_seconds: int = 3600,
                    initial: Mapping[str, UnderlyingQuote] | None = None, vol_of_vol: float = 0.5,
                    vol_reversion: float = 5.0, premium_noise: float = 0.0005,
                    premium_persistence: float = 0.9) -> list[MarketSnapshot]:
    """``steps`` snapshots, step_seconds apart, the first being ``initial`` at start_time.

    Spot: driftless geometric Brownian motion at the current volatility. Volatility: log-normal,
    mean-reverting to its initial level (rate vol_reversion per year, vol_of_vol per sqrt(year)).
    Perp premium: AR(1), p' = persistence * p + noise * z. Deterministic for a given seed
    (Python's Mersenne Twister; one stream, underlyings in sorted order).
    """
    # A walk needs at least its starting point.
    if steps < 1:
        raise RiskInputError(f"steps must be >= 1, got {steps}")
    # Time must advance between snapshots.
    if step_seconds <= 0:
        raise RiskInputError(f"step_seconds must be positive, got {step_seconds}")
    rng = random.Random(seed)
    quotes = dict(sorted((initial or DEFAULT_QUOTES).items()))
    base_log_vol = {name: math.log(max(q.vol, 1e-6)) for name, q in quotes.items()}
    dt = step_seconds / SECONDS_PER_YEAR
    path = [MarketSnapshot(start_time, dict(quotes))]
    for step in range(1, steps):
        quotes = {name: _step_quote(q, rng, dt, base_log_vol[name], vol_of_vol, vol_reversion,
                                    premium_noise, premium_persistence) for name, q in quotes.items()}
        path.append(MarketSnapshot(start_time + step * step_seconds, dict(quotes)))
    return path


def _step_quote(quote: UnderlyingQuote, rng: random.Random, dt: float, base_log_vol: float,
                vol_of_vol: float, vol_reversion: float, premium_noise: float,
                premium_persistence: float) -> UnderlyingQuote:
    z_spot, z_vol, z_premium = rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)
    spot = quote.spot * math.exp(-0.5 * quote.vol * quote.vol * dt + quote.vol * math.sqrt(dt) * z_spot)
    log_vol = math.log(max(quote.vol, 1e-6))
    log_vol += vol_reversion * (base_log_vol - log_vol) * dt + vol_of_vol * math.sqrt(dt) * z_vol
    premium = max(-0.5, min(0.5, premium_persistence * quote.perp_premium + premium_noise * z_premium))
    return UnderlyingQuote(spot=spot, vol=math.exp(log_vol) if quote.vol > 0 else 0.0, rate=quote.rate,
                           carry=quote.carry, perp_premium=premium)


def compute_oracle_path(snapshots: Sequence[MarketSnapshot], perps: Mapping[InstrumentId, Any],
                        series: Mapping[InstrumentId, Any], grid: ScenarioGrid = DEFAULT_GRID,
                        funding: FundingRule = DEFAULT_FUNDING_RULE) -> list[OracleValues]:
    """Oracle values for every snapshot in order, each chained to the one before."""
    values: list[OracleValues] = []
    for snapshot in snapshots:
        values.append(compute_oracle_values(snapshot, perps, series, values[-1] if values else None,
                                            grid, funding))
    return values
