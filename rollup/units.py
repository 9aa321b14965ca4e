"""Units of the whole rollup: fixed-point integers with named decimals, and their conversions.

Every amount in state, roots and proofs is an integer:

- Money: micro-USD (``USD_DECIMALS = 6``): ``12_500_000`` is 12.50 USD.
- Sizes: instruments trade in whole contracts (signed integers). One contract is
  ``contract_size`` units of the underlying, a per-instrument integer in ``SIZE_DECIMALS = 4``
  fixed point: ``contract_size = 10`` is 0.001 BTC, ``contract_size = 10_000`` is 1 ETH.
- Prices: micro-USD **per contract** (not per unit of the underlying), so that notional is
  ``size * price`` and P&L is ``size * (price_now - price_then)``, both exact. A strike is a
  price too: BTC strike 60,000 USD on a 0.001 BTC contract is ``60_000_000``.
- Fractions published by the oracle (volatility, rate): parts per million (``FRACTION = 10**6``).
- Time: unix seconds; a year is 365 days (crypto trades every calendar day).

Rounding: floats exist only in the risk engine, which rounds each published value exactly once,
half to even ("banker's rounding", IEEE 754's default). numpy's ``np.rint`` and Python's
``round`` both round half to even, so the vectorised and the reference code agree. Integer
divisions that must round (funding) use ``compute_rounded_division``, the same rule on exact ints.
"""

from __future__ import annotations

import math

USD_DECIMALS = 6
USD = 10**USD_DECIMALS  # micro-USD per USD

SIZE_DECIMALS = 4
SIZE_SCALE = 10**SIZE_DECIMALS  # contract_size units per unit of the underlying

FRACTION_DECIMALS = 6
FRACTION = 10**FRACTION_DECIMALS  # ppm: a volatility of 0.20 is published as 200_000

BPS = 10_000  # basis points per 1.00

SECONDS_PER_DAY = 86_400
DAYS_PER_YEAR = 365
SECONDS_PER_YEAR = SECONDS_PER_DAY * DAYS_PER_YEAR

# micro-USD per contract = USD-per-unit price * contract_size * MICRO_USD_PER_SIZE_UNIT, exactly.
MICRO_USD_PER_SIZE_UNIT = USD // SIZE_SCALE

# Checked when the module loads: the per-contract conversion factor must be an exact integer.
if USD % SIZE_SCALE != 0:
    raise ValueError("USD_DECIMALS must be >= SIZE_DECIMALS so contract prices convert exactly")

Amount = int  # micro-USD
Price = int  # micro-USD per contract
Size = int  # whole contracts, signed (negative = short)


def round_half_even(value: float) -> int:
    """The one rounding of the risk engine: nearest integer, ties to even."""
    # A NaN or an infinity must never become a published integer.
    if not math.isfinite(value):
        raise ValueError(f"cannot round a non-finite value ({value}) to an integer")
    return int(round(value))


def compute_rounded_division(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half to even, in exact integer arithmetic."""
    # Division by zero or by a negative number is a caller bug, not a market condition.
    if denominator <= 0:
        raise ValueError(f"denominator must be positive, got {denominator}")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        return quotient + 1
    return quotient


def to_micro_usd(amount_usd: float) -> Amount:
    """A float USD amount as integer micro-USD (rounded once, half to even)."""
    return round_half_even(amount_usd * USD)


def get_contract_units(contract_size: int) -> float:
    """Units of the underlying in one contract (contract_size 10 -> 0.001)."""
    # A contract of zero or negative size has no meaning.
    if contract_size <= 0:
        raise ValueError(f"contract_size must be a positive integer, got {contract_size}")
    return contract_size / SIZE_SCALE


def to_contract_price(price_per_unit_usd: float, contract_size: int) -> Price:
    """A USD price per unit of the underlying as micro-USD per contract (rounded once)."""
    # A contract of zero or negative size has no meaning.
    if contract_size <= 0:
        raise ValueError(f"contract_size must be a positive integer, got {contract_size}")
    return round_half_even(price_per_unit_usd * (contract_size * MICRO_USD_PER_SIZE_UNIT))


def format_usd(amount: Amount, unit: bool = True) -> str:
    """Exact decimal text of a micro-USD amount: 12_500_000 -> '12.50 USD', 1 -> '0.000001 USD'.

    At least two decimals, more only when the amount has them; no float is involved.
    """
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), USD)
    digits = f"{fraction:0{USD_DECIMALS}d}".rstrip("0").ljust(2, "0")
    text = f"{sign}{whole}.{digits}"
    return f"{text} USD" if unit else text


def format_size(contract_size: int) -> str:
    """Exact decimal text of a contract size in units of the underlying: 10 -> '0.001'."""
    whole, fraction = divmod(contract_size, SIZE_SCALE)
    digits = f"{fraction:0{SIZE_DECIMALS}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)
