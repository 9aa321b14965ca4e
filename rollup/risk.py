"""The risk engine: Black-Scholes Greeks, the SPAN-like scenario grid, risk arrays, portfolio Greeks.

The only place in the rollup where floats are allowed. Everything here is numpy, vectorised over
all instruments and scenarios at once (arrays broadcast); each function that is sped up this way
has a plain scalar twin with the same API (``*_reference``, built on ``math.erfc``) that the tests
run side by side, as py_ecc keeps ``bn128`` next to ``optimized_bn128``.

Black-Scholes-Merton with a continuous rate ``r`` and a continuous carry/dividend yield ``q``::

    d1 = (ln(S/K) + (r - q + vol^2/2) T) / (vol sqrt(T)),   d2 = d1 - vol sqrt(T)
    call = S e^{-qT} N(d1) - K e^{-rT} N(d2),   put = K e^{-rT} N(-d2) - S e^{-qT} N(-d1)

Greek units (per unit of the underlying unless scaled by a contract): delta dV/dS, gamma d2V/dS2,
vega dV/dvol per 1.00 of volatility (``vega_per_pct`` = per 1 volatility point), theta dV/dt per
year of calendar time (``theta_per_day`` = per calendar day, year = 365 days). Limits: an option
with T <= 0 is worth its intrinsic value (delta is a step, 0.5 at the money, other Greeks 0); with
vol = 0 it is worth its discounted intrinsic value on the forward.

The normal CDF uses W. J. Cody's rational Chebyshev approximations of erfc ("Rational Chebyshev
approximations for the error function", Math. Comp. 23 (1969) 631-638; coefficients as in
netlib SPECFUN CALERF), evaluated in numpy on masked sub-arrays. Measured against CPython's
``math.erfc`` on 400,001 points of [-9, 27]: relative error below 1e-15 (a few ulps) wherever
erfc(x) > 1e-300, absolute error at most 4.5e-16 (one ulp of 2) everywhere; values in the
subnormal range beyond x = 26.543 are returned as 0. tests/test_risk.py checks both bounds.

Determinism: the published integers are rounded once from these floats. numpy's exp/log may use
different SIMD kernels on different CPUs (within a few ulps), so another machine can, rarely,
round a value that sits within ~1e-9 of a .5 tie the other way; the signed integers, not their
recomputation, are what the rollup trusts.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from rollup.units import SECONDS_PER_YEAR, SIZE_SCALE, USD, DAYS_PER_YEAR

InstrumentId = Hashable


class RiskInputError(ValueError):
    """Market or instrument inputs the risk engine cannot price (negative volatility, ...)."""


# --------------------------------------------------------------------------------------------
# The normal distribution
# --------------------------------------------------------------------------------------------

# Cody (1969), erf on |x| <= 0.46875.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
# Cody (1969), erfc on 0.46875 < |x| <= 4.
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERFC_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)
# Cody (1969), erfc on |x| > 4 (asymptotic form in 1/x^2).
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)
_ERF_THRESHOLD = 0.46875
_ERFC_BIG = 26.543  # erfc(x) underflows to 0 in IEEE double beyond this (Cody's XBIG)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _compute_exp_minus_square(y: np.ndarray) -> np.ndarray:
    """exp(-y^2) with Cody's split of y, which keeps the relative error at a few ulps."""
    head = np.trunc(y * 16.0) / 16.0
    tail = (y - head) * (y + head)
    return np.exp(-head * head) * np.exp(-tail)


def compute_erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function, vectorised (Cody 1969)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.abs(x)
    result = np.empty_like(x)

    small = y <= _ERF_THRESHOLD
    if small.any():
        xs = x[small]
        ysq = xs * xs
        num = _ERF_A[4] * ysq
        den = ysq
        for i in range(3):
            num = (num + _ERF_A[i]) * ysq
            den = (den + _ERF_B[i]) * ysq
        result[small] = 1.0 - xs * (num + _ERF_A[3]) / (den + _ERF_B[3])

    middle = (y > _ERF_THRESHOLD) & (y <= 4.0)
    if middle.any():
        ym = y[middle]
        num = _ERFC_C[8] * ym
        den = ym
        for i in range(7):
            num = (num + _ERFC_C[i]) * ym
            den = (den + _ERFC_D[i]) * ym
        value = (num + _ERFC_C[7]) / (den + _ERFC_D[7]) * _compute_exp_minus_square(ym)
        result[middle] = np.where(x[middle] < 0.0, 2.0 - value, value)

    large = y > 4.0
    if large.any():
        # Beyond _ERFC_BIG the value is 0 (or 2); clamping y keeps inf out of the formula.
        yl = np.minimum(y[large], _ERFC_BIG)
        ysq = 1.0 / (yl * yl)
        num = _ERFC_P[5] * ysq
        den = ysq
        for i in range(4):
            num = (num + _ERFC_P[i]) * ysq
            den = (den + _ERFC_Q[i]) * ysq
        value = (_INV_SQRT_PI - ysq * (num + _ERFC_P[4]) / (den + _ERFC_Q[4])) / yl
        value = np.where(y[large] >= _ERFC_BIG, 0.0, value * _compute_exp_minus_square(yl))
        result[large] = np.where(x[large] < 0.0, 2.0 - value, value)

    # NaN compares false everywhere above: let it through as NaN rather than garbage.
    result[np.isnan(x)] = np.nan
    return result


def compute_normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal cumulative distribution N(x), vectorised; accurate in both tails."""
    return 0.5 * compute_erfc(-np.asarray(x, dtype=np.float64) * _INV_SQRT_2)


def compute_normal_pdf(x: np.ndarray) -> np.ndarray:
    """Standard normal density n(x), vectorised."""
    x = np.asarray(x, dtype=np.float64)
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def compute_normal_cdf_reference(x: float) -> float:
    """N(x) for one float, from CPython's math.erfc: the reference for the vectorised one."""
    return 0.5 * math.erfc(-x * _INV_SQRT_2)


# --------------------------------------------------------------------------------------------
# Black-Scholes
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OptionGreeks:
    """Price and Greeks of options, per unit of the underlying (arrays, or floats for one).

    vega is per 1.00 of volatility and theta per year; the properties give the per-point and
    per-day figures traders quote.
    """

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray

    @property
    def vega_per_pct(self) -> np.ndarray:
        return self.vega / 100.0

    @property
    def theta_per_day(self) -> np.ndarray:
        return self.theta / DAYS_PER_YEAR


def _broadcast_inputs(spot, strike, rate, vol, expiry, is_call, carry) -> tuple[np.ndarray, ...]:
    """Broadcast the inputs to one shape and check them once, for the whole array."""
    arrays = np.broadcast_arrays(
        np.asarray(spot, dtype=np.float64), np.asarray(strike, dtype=np.float64),
        np.asarray(rate, dtype=np.float64), np.asarray(vol, dtype=np.float64),
        np.asarray(expiry, dtype=np.float64), np.asarray(is_call, dtype=bool),
        np.asarray(carry, dtype=np.float64),
    )
    spot, strike, rate, vol, expiry, is_call, carry = arrays
    # Every number must be finite: a NaN would silently become a published price.
    for name, values in (("spot", spot), ("strike", strike), ("rate", rate), ("volatility", vol),
                         ("expiry", expiry), ("carry", carry)):
        if not np.isfinite(values).all():
            raise RiskInputError(f"{name} must be a finite number, got {_first_bad(values, ~np.isfinite(values))}")
    # A price of the underlying must be positive.
    if not (spot > 0.0).all():
        raise RiskInputError(f"spot must be positive, got {_first_bad(spot, spot <= 0.0)}")
    # A strike must be positive.
    if not (strike > 0.0).all():
        raise RiskInputError(f"strike must be positive, got {_first_bad(strike, strike <= 0.0)}")
    # Volatility is a standard deviation: never negative.
    if not (vol >= 0.0).all():
        raise RiskInputError(f"volatility must be >= 0, got {_first_bad(vol, vol < 0.0)}")
    return spot, strike, rate, vol, expiry, is_call, carry


def _first_bad(values: np.ndarray, bad: np.ndarray) -> float:
    return float(values[bad].flat[0])


def _compute_d1_d2(spot, strike, rate, vol, t, carry) -> tuple[np.ndarray, ...]:
    """d1, d2 and sqrt(T); with vol sqrt(T) = 0 they are +-inf (0 exactly at the forward)."""
    sqrt_t = np.sqrt(t)
    vol_sqrt_t = vol * sqrt_t
    is_live = vol_sqrt_t > 0.0
    safe_vol_sqrt_t = np.where(is_live, vol_sqrt_t, 1.0)
    log_forward_moneyness = np.log(spot / strike) + (rate - carry) * t
    degenerate = np.where(log_forward_moneyness > 0.0, np.inf,
                          np.where(log_forward_moneyness < 0.0, -np.inf, 0.0))
    d1 = np.where(is_live, log_forward_moneyness / safe_vol_sqrt_t + 0.5 * safe_vol_sqrt_t, degenerate)
    d2 = np.where(is_live, d1 - vol_sqrt_t, degenerate)
    return d1, d2, sqrt_t, is_live, safe_vol_sqrt_t


def compute_option_price(spot, strike, rate, vol, expiry, is_call, carry=0.0) -> np.ndarray:
    """Black-Scholes price only (the scenario grid reprices with this), vectorised."""
    spot, strike, rate, vol, expiry, is_call, carry = _broadcast_inputs(
        spot, strike, rate, vol, expiry, is_call, carry)
    return _compute_price(spot, strike, rate, vol, np.maximum(expiry, 0.0), is_call, carry)


def _compute_price(spot, strike, rate, vol, t, is_call, carry) -> np.ndarray:
    d1, d2, _, _, _ = _compute_d1_d2(spot, strike, rate, vol, t, carry)
    sign = np.where(is_call, 1.0, -1.0)
    return sign * (spot * np.exp(-carry * t) * compute_normal_cdf(sign * d1)
                   - strike * np.exp(-rate * t) * compute_normal_cdf(sign * d2))


def compute_option_greeks(spot, strike, rate, vol, expiry, is_call, carry=0.0) -> OptionGreeks:
    """Black-Scholes price, delta, gamma, vega and theta, vectorised with broadcasting.

    expiry is in years (<= 0: expired, intrinsic value); rate and carry are continuous.
    """
    spot, strike, rate, vol, expiry, is_call, carry = _broadcast_inputs(
        spot, strike, rate, vol, expiry, is_call, carry)
    t = np.maximum(expiry, 0.0)
    d1, d2, sqrt_t, is_live, safe_vol_sqrt_t = _compute_d1_d2(spot, strike, rate, vol, t, carry)
    sign = np.where(is_call, 1.0, -1.0)
    carry_discount = np.exp(-carry * t)
    rate_discount = np.exp(-rate * t)
    cdf_d1 = compute_normal_cdf(sign * d1)
    cdf_d2 = compute_normal_cdf(sign * d2)
    pdf_d1 = compute_normal_pdf(d1)
    price = sign * (spot * carry_discount * cdf_d1 - strike * rate_discount * cdf_d2)
    delta = sign * carry_discount * cdf_d1
    gamma = np.where(is_live, carry_discount * pdf_d1 / (spot * safe_vol_sqrt_t), 0.0)
    vega = spot * carry_discount * pdf_d1 * sqrt_t
    safe_sqrt_t = np.where(t > 0.0, sqrt_t, 1.0)
    theta = np.where(
        t > 0.0,
        -spot * carry_discount * pdf_d1 * vol / (2.0 * safe_sqrt_t)
        - sign * rate * strike * rate_discount * cdf_d2
        + sign * carry * spot * carry_discount * cdf_d1,
        0.0,
    )
    return OptionGreeks(price=price, delta=delta, gamma=gamma, vega=vega, theta=theta)


def compute_option_greeks_scalar(spot: float, strike: float, rate: float, vol: float, expiry: float,
                                 is_call: bool, carry: float = 0.0) -> tuple[float, ...]:
    """(price, delta, gamma, vega, theta) of one option in plain floats and math.erfc."""
    t = max(expiry, 0.0)
    sqrt_t = math.sqrt(t)
    vol_sqrt_t = vol * sqrt_t
    sign = 1.0 if is_call else -1.0
    log_forward_moneyness = math.log(spot / strike) + (rate - carry) * t
    if vol_sqrt_t > 0.0:
        d1 = log_forward_moneyness / vol_sqrt_t + 0.5 * vol_sqrt_t
        d2 = d1 - vol_sqrt_t
    else:
        d1 = d2 = math.copysign(math.inf, log_forward_moneyness) if log_forward_moneyness else 0.0
    carry_discount = math.exp(-carry * t)
    rate_discount = math.exp(-rate * t)
    cdf_d1 = compute_normal_cdf_reference(sign * d1)
    cdf_d2 = compute_normal_cdf_reference(sign * d2)
    pdf_d1 = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1) if math.isfinite(d1) else 0.0
    price = sign * (spot * carry_discount * cdf_d1 - strike * rate_discount * cdf_d2)
    delta = sign * carry_discount * cdf_d1
    gamma = carry_discount * pdf_d1 / (spot * vol_sqrt_t) if vol_sqrt_t > 0.0 else 0.0
    vega = spot * carry_discount * pdf_d1 * sqrt_t
    theta = 0.0
    if t > 0.0:
        theta = (-spot * carry_discount * pdf_d1 * vol / (2.0 * sqrt_t)
                 - sign * rate * strike * rate_discount * cdf_d2
                 + sign * carry * spot * carry_discount * cdf_d1)
    return price, delta, gamma, vega, theta


def compute_option_greeks_reference(spot, strike, rate, vol, expiry, is_call, carry=0.0) -> OptionGreeks:
    """Same API and results as compute_option_greeks, one option at a time (the reference)."""
    inputs = _broadcast_inputs(spot, strike, rate, vol, expiry, is_call, carry)
    shape = inputs[0].shape
    rows = [compute_option_greeks_scalar(*(float(a) if a.dtype != bool else bool(a) for a in point))
            for point in zip(*(a.ravel() for a in inputs))]
    columns = np.array(rows, dtype=np.float64).reshape(-1, 5).T
    return OptionGreeks(*(c.reshape(shape) for c in columns))


def compute_option_price_reference(spot, strike, rate, vol, expiry, is_call, carry=0.0) -> np.ndarray:
    """Same API and results as compute_option_price, one option at a time (the reference)."""
    return compute_option_greeks_reference(spot, strike, rate, vol, expiry, is_call, carry).price


# --------------------------------------------------------------------------------------------
# The SPAN-like scenario grid
# --------------------------------------------------------------------------------------------

DEFAULT_SCAN_RANGE = 0.15  # underlying move of a full scan range, as a fraction of spot
DEFAULT_VOL_SHIFT = 0.10  # absolute volatility shift (10 volatility points)
DEFAULT_EXTREME_MULTIPLE = 3.0  # extreme moves are this many scan ranges (CME SPAN: 3)
DEFAULT_EXTREME_COVER = 0.35  # share of an extreme move's loss that counts (CME SPAN: 35%)


@dataclass(frozen=True)
class ScenarioGrid:
    """Scenarios as parallel tuples: S' = S (1 + price_move), vol' = max(0, vol + vol_move),
    and the scenario's P&L counts weight times (1.0, or the cover fraction of an extreme move)."""

    price_moves: tuple[float, ...]
    vol_moves: tuple[float, ...]
    weights: tuple[float, ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        count = len(self.price_moves)
        # Every scenario needs its move, its volatility shift, its weight and its name.
        if not (len(self.vol_moves) == len(self.weights) == len(self.names) == count):
            raise RiskInputError("scenario grid: price_moves, vol_moves, weights and names differ in length")
        # At least one scenario, or the margin is undefined.
        if count == 0:
            raise RiskInputError("scenario grid: needs at least one scenario")
        # A move of -100% or more would make the underlying worthless or negative.
        if min(self.price_moves) <= -1.0:
            raise RiskInputError("scenario grid: a price move must be above -100%")
        # Weights scale losses down, never up or to nothing.
        if not all(0.0 < w <= 1.0 for w in self.weights):
            raise RiskInputError("scenario grid: weights must be in (0, 1]")

    @property
    def size(self) -> int:
        return len(self.price_moves)


def compute_scenario_grid(scan_range: float = DEFAULT_SCAN_RANGE, vol_shift: float = DEFAULT_VOL_SHIFT,
                          extreme_multiple: float = DEFAULT_EXTREME_MULTIPLE,
                          extreme_cover: float = DEFAULT_EXTREME_COVER) -> ScenarioGrid:
    """CME SPAN's 16 scenarios: 0, +-1/3, +-2/3, +-3/3 of the scan range, each with volatility
    up and down (14), then +-extreme_multiple ranges at unchanged volatility, counted at
    extreme_cover of their P&L (2)."""
    # The scan range is a positive fraction of spot.
    if not 0.0 < scan_range < 1.0:
        raise RiskInputError(f"scan range must be between 0 and 1 (a fraction of spot), got {scan_range}")
    # An extreme move down must leave the underlying a positive price.
    if scan_range * extreme_multiple >= 1.0:
        raise RiskInputError("extreme move (scan range x multiple) must be below 100% of spot")
    # The volatility shift is a size; its sign comes from the scenario.
    if vol_shift < 0.0:
        raise RiskInputError(f"volatility shift must be >= 0, got {vol_shift}")
    moves, vols, weights, names = [], [], [], []
    for numerator, label in ((0, "unchanged"), (1, "up 1/3"), (-1, "down 1/3"), (2, "up 2/3"),
                             (-2, "down 2/3"), (3, "up 3/3"), (-3, "down 3/3")):
        for vol_sign, vol_label in ((1.0, "vol up"), (-1.0, "vol down")):
            moves.append(scan_range * numerator / 3.0)
            vols.append(vol_sign * vol_shift)
            weights.append(1.0)
            names.append(f"price {label}, {vol_label}")
    for sign, label in ((1.0, "up"), (-1.0, "down")):
        moves.append(sign * scan_range * extreme_multiple)
        vols.append(0.0)
        weights.append(extreme_cover)
        names.append(f"extreme {label} {extreme_multiple:g}x, {extreme_cover:.0%} cover")
    return ScenarioGrid(tuple(moves), tuple(vols), tuple(weights), tuple(names))


DEFAULT_GRID = compute_scenario_grid()


# --------------------------------------------------------------------------------------------
# Instruments and market inputs
# --------------------------------------------------------------------------------------------

@runtime_checkable
class PerpLike(Protocol):
    """What the risk engine reads of a perpetual market (any object with these attributes)."""

    underlying: str
    contract_size: int


@runtime_checkable
class OptionLike(Protocol):
    """What the risk engine reads of an option series (any object with these attributes)."""

    underlying: str
    strike: int  # micro-USD per contract
    expiry: int  # unix seconds
    is_call: bool
    contract_size: int


@dataclass(frozen=True)
class PerpSpec:
    """A perpetual market: underlying and contract size (SIZE_DECIMALS fixed point)."""

    underlying: str
    contract_size: int

    def __post_init__(self) -> None:
        _check_contract_size(self.contract_size)


@dataclass(frozen=True)
class OptionSpec:
    """A European option series. strike: micro-USD per contract; expiry: unix seconds."""

    underlying: str
    strike: int
    expiry: int
    is_call: bool
    contract_size: int

    def __post_init__(self) -> None:
        _check_contract_size(self.contract_size)
        # A strike of zero or less is not an option anyone can trade.
        if self.strike <= 0:
            raise RiskInputError(f"option strike must be positive micro-USD per contract, got {self.strike}")


def _check_contract_size(contract_size: int) -> None:
    # A contract must hold a positive whole number of size units.
    if not isinstance(contract_size, int) or contract_size <= 0:
        raise RiskInputError(f"contract size must be a positive integer, got {contract_size!r}")


def is_option(spec: object) -> bool:
    """An instrument is an option series if it has a strike; otherwise it is a perpetual."""
    return hasattr(spec, "strike")


@dataclass(frozen=True)
class UnderlyingQuote:
    """Float market inputs for one underlying: spot (USD per unit), annualised volatility,
    continuous rate and carry, and the perpetual's premium over spot (mark = spot (1 + premium))."""

    spot: float
    vol: float
    rate: float = 0.0
    carry: float = 0.0
    perp_premium: float = 0.0

    def __post_init__(self) -> None:
        # Every input must be a finite number.
        if not all(math.isfinite(v) for v in (self.spot, self.vol, self.rate, self.carry, self.perp_premium)):
            raise RiskInputError(f"market inputs must be finite numbers: {self}")
        # The underlying's price is positive.
        if self.spot <= 0.0:
            raise RiskInputError(f"spot must be positive, got {self.spot}")
        # Volatility is never negative.
        if self.vol < 0.0:
            raise RiskInputError(f"volatility must be >= 0, got {self.vol}")
        # The perpetual's mark must stay positive.
        if self.perp_premium <= -1.0:
            raise RiskInputError(f"perp premium must be above -100%, got {self.perp_premium}")

    @property
    def perp_mark(self) -> float:
        return self.spot * (1.0 + self.perp_premium)


@dataclass(frozen=True)
class MarketSnapshot:
    """The market at one instant: unix time and a quote per underlying."""

    timestamp: int
    quotes: Mapping[str, UnderlyingQuote] = field(default_factory=dict)

    def get_quote(self, underlying: str) -> UnderlyingQuote:
        # An instrument can only be priced if its underlying is quoted.
        if underlying not in self.quotes:
            raise RiskInputError(f"no market quote for underlying {underlying!r}")
        return self.quotes[underlying]


def compute_years_to_expiry(expiry: int, timestamp: int) -> float:
    """Calendar time from timestamp to expiry in years of 365 days (negative once expired)."""
    return (expiry - timestamp) / SECONDS_PER_YEAR


# --------------------------------------------------------------------------------------------
# Risk arrays
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _OptionColumns:
    """The option series of a mapping as parallel arrays, per unit of the underlying."""

    ids: list
    spot: np.ndarray
    strike: np.ndarray  # USD per unit of the underlying
    rate: np.ndarray
    vol: np.ndarray
    expiry: np.ndarray  # years
    is_call: np.ndarray
    carry: np.ndarray
    units: np.ndarray  # units of the underlying per contract


def _get_option_columns(instruments: list[tuple[InstrumentId, OptionLike]],
                        market: MarketSnapshot) -> _OptionColumns:
    ids, rows = [], []
    for instrument_id, spec in instruments:
        quote = market.get_quote(spec.underlying)
        units = spec.contract_size / SIZE_SCALE
        ids.append(instrument_id)
        rows.append((quote.spot, spec.strike / USD / units, quote.rate, quote.vol,
                     compute_years_to_expiry(spec.expiry, market.timestamp), quote.carry, units))
    table = np.array(rows, dtype=np.float64).reshape(-1, 7)
    is_call = np.array([bool(spec.is_call) for _, spec in instruments], dtype=bool)
    return _OptionColumns(ids, table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4],
                          is_call, table[:, 5], table[:, 6])


def _split_instruments(instruments: Mapping[InstrumentId, object]) -> tuple[list, list]:
    options = [(i, s) for i, s in instruments.items() if is_option(s)]
    perps = [(i, s) for i, s in instruments.items() if not is_option(s)]
    return options, perps


def _to_int_rows(values: np.ndarray) -> list[tuple[int, ...]]:
    """The one rounding: half to even (np.rint), then exact Python ints."""
    # A NaN or infinity must never be published as a risk number.
    if not np.isfinite(values).all():
        raise RiskInputError("risk engine produced a non-finite value")
    return [tuple(row) for row in np.rint(values).astype(np.int64).tolist()]


def _compute_option_scenario_pnl(columns: _OptionColumns, grid: ScenarioGrid) -> np.ndarray:
    """Float micro-USD P&L of one long contract of every series under every scenario, weighted:
    shape (series, scenarios), one vectorised Black-Scholes call for all of it."""
    moves = np.asarray(grid.price_moves)[None, :]
    vol_moves = np.asarray(grid.vol_moves)[None, :]
    weights = np.asarray(grid.weights)[None, :]
    col = {name: getattr(columns, name)[:, None]
           for name in ("spot", "strike", "rate", "vol", "expiry", "is_call", "carry")}
    now = compute_option_price(col["spot"], col["strike"], col["rate"], col["vol"], col["expiry"],
                               col["is_call"], col["carry"])
    shocked = compute_option_price(col["spot"] * (1.0 + moves), col["strike"], col["rate"],
                                   np.maximum(col["vol"] + vol_moves, 0.0), col["expiry"],
                                   col["is_call"], col["carry"])
    return weights * (shocked - now) * (columns.units[:, None] * USD)


def compute_perp_scenario_pnl(marks: np.ndarray, units: np.ndarray, grid: ScenarioGrid) -> np.ndarray:
    """Float micro-USD P&L of one long perpetual contract per scenario: linear in the move."""
    moves = np.asarray(grid.price_moves)[None, :]
    weights = np.asarray(grid.weights)[None, :]
    return weights * moves * (marks * units * USD)[:, None]


def compute_risk_arrays(instruments: Mapping[InstrumentId, object], market: MarketSnapshot,
                        grid: ScenarioGrid = DEFAULT_GRID) -> dict[InstrumentId, tuple[int, ...]]:
    """For every instrument, the integer micro-USD P&L of one long contract in each scenario.

    Options are repriced by Black-Scholes at the shocked spot and volatility (time unchanged);
    perpetuals move linearly with their mark. Weights apply before the one rounding.
    """
    options, perps = _split_instruments(instruments)
    result: dict[InstrumentId, tuple[int, ...]] = {}
    if options:
        columns = _get_option_columns(options, market)
        for instrument_id, row in zip(columns.ids, _to_int_rows(_compute_option_scenario_pnl(columns, grid))):
            result[instrument_id] = row
    if perps:
        marks = np.array([market.get_quote(s.underlying).perp_mark for _, s in perps], dtype=np.float64)
        units = np.array([s.contract_size / SIZE_SCALE for _, s in perps], dtype=np.float64)
        for (instrument_id, _), row in zip(perps, _to_int_rows(compute_perp_scenario_pnl(marks, units, grid))):
            result[instrument_id] = row
    return {instrument_id: result[instrument_id] for instrument_id in instruments}


def compute_risk_arrays_reference(instruments: Mapping[InstrumentId, object], market: MarketSnapshot,
                                  grid: ScenarioGrid = DEFAULT_GRID) -> dict[InstrumentId, tuple[int, ...]]:
    """Same API as compute_risk_arrays, one instrument and one scenario at a time in plain floats."""
    result = {}
    for instrument_id, spec in instruments.items():
        quote = market.get_quote(spec.underlying)
        units = spec.contract_size / SIZE_SCALE
        row = []
        for move, vol_move, weight in zip(grid.price_moves, grid.vol_moves, grid.weights):
            if is_option(spec):
                strike = spec.strike / USD / units
                t = compute_years_to_expiry(spec.expiry, market.timestamp)
                now = compute_option_greeks_scalar(quote.spot, strike, quote.rate, quote.vol, t,
                                                   spec.is_call, quote.carry)[0]
                shocked = compute_option_greeks_scalar(quote.spot * (1.0 + move), strike, quote.rate,
                                                       max(quote.vol + vol_move, 0.0), t, spec.is_call,
                                                       quote.carry)[0]
                pnl = weight * (shocked - now) * (units * USD)
            else:
                pnl = weight * move * (quote.perp_mark * units * USD)
            row.append(int(round(pnl)))
        result[instrument_id] = tuple(row)
    return result


def compute_option_marks(instruments: Mapping[InstrumentId, object],
                         market: MarketSnapshot) -> dict[InstrumentId, float]:
    """Black-Scholes value of one contract of every option series, in float micro-USD."""
    options, _ = _split_instruments(instruments)
    if not options:
        return {}
    columns = _get_option_columns(options, market)
    prices = compute_option_price(columns.spot, columns.strike, columns.rate, columns.vol,
                                  columns.expiry, columns.is_call, columns.carry)
    return dict(zip(columns.ids, (prices * columns.units * USD).tolist()))


# --------------------------------------------------------------------------------------------
# Portfolio Greeks
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnderlyingGreeks:
    """Greeks of all of an account's positions on one underlying.

    value: theoretical USD value of the option positions (a perpetual's unrealised P&L needs its
    entry cost, which lives in the account's state, so perpetuals add 0 here); delta: units of the
    underlying (a perpetual contract adds its contract units); gamma: units of the underlying per
    1 USD move of its price; vega: USD per 1.00 of volatility; theta: USD per year.
    """

    spot: float
    value: float
    delta: float
    gamma: float
    vega: float
    theta: float

    @property
    def delta_usd(self) -> float:
        """Dollar delta: delta x spot, the USD exposure to the underlying."""
        return self.delta * self.spot

    @property
    def gamma_usd(self) -> float:
        """Change of the dollar delta for a 1% move of the underlying (gamma x spot^2 / 100)."""
        return self.gamma * self.spot * self.spot / 100.0

    @property
    def vega_per_pct(self) -> float:
        return self.vega / 100.0

    @property
    def theta_per_day(self) -> float:
        return self.theta / DAYS_PER_YEAR


@dataclass(frozen=True)
class PortfolioGreeks:
    """An account's Greeks per underlying, and the USD totals that can be added across them."""

    by_underlying: Mapping[str, UnderlyingGreeks]

    @property
    def value(self) -> float:
        return sum(g.value for g in self.by_underlying.values())

    @property
    def delta_usd(self) -> float:
        return sum(g.delta_usd for g in self.by_underlying.values())

    @property
    def gamma_usd(self) -> float:
        return sum(g.gamma_usd for g in self.by_underlying.values())

    @property
    def vega(self) -> float:
        return sum(g.vega for g in self.by_underlying.values())

    @property
    def theta(self) -> float:
        return sum(g.theta for g in self.by_underlying.values())

    @property
    def vega_per_pct(self) -> float:
        return self.vega / 100.0

    @property
    def theta_per_day(self) -> float:
        return self.theta / DAYS_PER_YEAR

    def get_totals(self) -> dict[str, float]:
        """The USD totals, as `rollup risk --json` and the service's account view print them."""
        return {"value_usd": self.value, "delta_usd": self.delta_usd, "gamma_usd": self.gamma_usd,
                "vega_per_pct": self.vega_per_pct, "theta_per_day": self.theta_per_day}

    def get_by_underlying(self) -> dict[str, dict[str, float]]:
        """Per underlying: spot and the Greeks, as `rollup risk --json` and the account view print them."""
        return {name: {"spot": g.spot, "delta": g.delta, "gamma": g.gamma, "vega": g.vega, "theta": g.theta}
                for name, g in self.by_underlying.items()}


def compute_portfolio_greeks(positions: Mapping[InstrumentId, int],
                             instruments: Mapping[InstrumentId, object],
                             market: MarketSnapshot) -> PortfolioGreeks:
    """Greeks of signed positions (contracts) per underlying: options by Black-Scholes, all at
    once; perpetuals contribute delta = contract units per contract and nothing else."""
    held = {i: q for i, q in positions.items() if q != 0}
    for instrument_id in held:
        # Every position must be in an instrument the caller described.
        if instrument_id not in instruments:
            raise RiskInputError(f"position in unknown instrument {instrument_id!r}")
    totals: dict[str, list[float]] = {}
    options, perps = _split_instruments({i: instruments[i] for i in held})
    for instrument_id, spec in perps:
        row = _get_totals_row(totals, spec.underlying, market)
        row[1] += held[instrument_id] * spec.contract_size / SIZE_SCALE
    if options:
        columns = _get_option_columns(options, market)
        greeks = compute_option_greeks(columns.spot, columns.strike, columns.rate, columns.vol,
                                       columns.expiry, columns.is_call, columns.carry)
        quantities = np.array([held[i] for i in columns.ids], dtype=np.float64) * columns.units
        per_position = np.stack([greeks.price, greeks.delta, greeks.gamma, greeks.vega, greeks.theta]) * quantities
        for k, (_, spec) in enumerate(options):
            row = _get_totals_row(totals, spec.underlying, market)
            for j, value in enumerate(per_position[:, k].tolist()):
                row[j] += value
    return PortfolioGreeks({
        name: UnderlyingGreeks(market.get_quote(name).spot, *row) for name, row in sorted(totals.items())
    })


def _get_totals_row(totals: dict[str, list[float]], underlying: str, market: MarketSnapshot) -> list[float]:
    market.get_quote(underlying)  # fails with a clear message if the underlying is not quoted
    return totals.setdefault(underlying, [0.0, 0.0, 0.0, 0.0, 0.0])
