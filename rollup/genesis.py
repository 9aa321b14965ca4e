"""Default genesis: BTC and ETH perpetuals and a deterministic grid of option series on them.

Prices are micro-USD per contract (rollup/units.py): a BTC contract is 0.001 BTC, an ETH contract
0.01 ETH, so at reference prices of 60,000 and 3,000 USD one contract is worth about 60 and 30 USD.
Series cycle through underlyings, call/put, and (strike level, expiry) pairs: expiries 7 and 30
days after `now`, strikes at the money then 5% steps either side, so even 8 series have two
strikes and two expiries per underlying.

The settlement deployment the signatures bind to (`Genesis.l1_chain_id`, `rollup_address`, the
EIP-712 domain) defaults to the embedded L1: eth-tester's py-evm chain, on which `rollup l1
deploy` sends the Rollup contract first from the first dev account, so it lands at the CREATE
address of (that account, nonce 0) on a fresh chain. Another L1 or deployer needs a genesis
naming its own chain id and predicted address (`compute_create_address`).
"""

from __future__ import annotations

import rlp
from eth_utils import keccak, to_checksum_address

from verifier.wire import Genesis, OptionSeriesSpec, PerpMarketSpec, RiskParameters

from rollup.units import SECONDS_PER_DAY, to_contract_price

DEFAULT_GENESIS_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z
# eth-tester's py-evm chain id (`contracts.chain.L1.embedded().chain_id`; tests/test_l1_chain.py
# checks it against a live chain: reading it here would start one, a second per `rollup init`)
EMBEDDED_L1_CHAIN_ID = 131_277_322_940_537
EMBEDDED_DEPLOYER_KEY = (1).to_bytes(32, "big")  # eth-tester's first dev account (contracts.chain.get_dev_key(0))

# (underlying, contract_size in SIZE_DECIMALS fixed point, reference USD price per unit)
UNDERLYINGS: tuple[tuple[str, int, float], ...] = (
    ("BTC", 10, 60_000.0),  # 0.001 BTC
    ("ETH", 100, 3_000.0),  # 0.01 ETH
    ("SOL", 10_000, 150.0),  # 1 SOL
    ("XRP", 1_000_000, 0.5),  # 100 XRP
)
EXPIRY_DAYS = (7, 30)
MONEYNESS_STEP = 0.05  # strikes at 1.00, 0.95, 1.05, 0.90, 1.10, ... x the reference price


def compute_moneyness(level: int) -> float:
    """Strike / reference price of strike level 0, 1, 2, ...: at the money, then alternately
    one step below and above, widening."""
    steps = (level + 1) // 2
    return 1.0 + MONEYNESS_STEP * steps * (-1 if level % 2 else 1)


def compute_perp_specs(n_perps: int) -> list[PerpMarketSpec]:
    # One perpetual per underlying of the table.
    if not 0 <= n_perps <= len(UNDERLYINGS):
        raise ValueError(f"n_perps must be between 0 and {len(UNDERLYINGS)}, got {n_perps}")
    return [
        PerpMarketSpec(id=index, name=f"{name}-PERP", underlying=name, contract_size=contract_size)
        for index, (name, contract_size, _) in enumerate(UNDERLYINGS[:n_perps])
    ]


def compute_option_specs(n_series: int, first_id: int, now: int, n_underlyings: int = 2) -> list[OptionSeriesSpec]:
    """`n_series` series cycling underlying, call/put, strike and expiry, in that order."""
    # Options are written on the first underlyings of the table (BTC and ETH by default).
    if not 1 <= n_underlyings <= len(UNDERLYINGS):
        raise ValueError(f"n_underlyings must be between 1 and {len(UNDERLYINGS)}, got {n_underlyings}")
    # A negative count has no meaning.
    if n_series < 0:
        raise ValueError(f"n_series must be >= 0, got {n_series}")
    specs = []
    for index in range(n_series):
        name, contract_size, reference = UNDERLYINGS[index % n_underlyings]
        rest = index // n_underlyings
        is_call = rest % 2 == 0
        rest //= 2
        # Strike levels cycle by 3 and expiries by 2: 6 distinct pairs per block of 6.
        moneyness = compute_moneyness(rest % 3 + 3 * (rest // 6))
        days = EXPIRY_DAYS[rest % 2]
        # Too many series would push strikes to zero.
        if moneyness <= 0:
            raise ValueError(f"n_series={n_series} is too many: strikes would reach zero")
        strike_usd = round(reference * moneyness)
        kind = "C" if is_call else "P"
        specs.append(
            OptionSeriesSpec(
                id=first_id + index,
                name=f"{name}-{days}D-{strike_usd}-{kind}",
                underlying=name,
                contract_size=contract_size,
                strike=to_contract_price(strike_usd, contract_size),
                expiry=now + days * SECONDS_PER_DAY,
                is_call=is_call,
            )
        )
    return specs


def compute_create_address(sender: str, nonce: int) -> str:
    """The address of the contract `sender` creates with its transaction of this nonce (CREATE:
    keccak256(rlp([sender, nonce]))[12:]), checksummed."""
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


def get_embedded_rollup_address() -> str:
    """Where `rollup l1 deploy` puts the Rollup contract on a fresh embedded L1."""
    from rollup.signing import get_address

    return compute_create_address(get_address(EMBEDDED_DEPLOYER_KEY), 0)


def default_genesis(
    oracle_address: str,
    n_perps: int = 2,
    n_series: int = 8,
    now: int = DEFAULT_GENESIS_TIME,
    risk: RiskParameters | None = None,
    l1_chain_id: int = EMBEDDED_L1_CHAIN_ID,
    rollup_address: str | None = None,
    tree_depth: int = 12,
) -> Genesis:
    """A deterministic genesis: perps get ids 0.., option series the ids after them; it settles
    on `l1_chain_id` at `rollup_address` (default: the embedded L1's first deployment)."""
    return Genesis(
        l1_chain_id=l1_chain_id,
        rollup_address=rollup_address if rollup_address is not None else get_embedded_rollup_address(),
        oracle_address=oracle_address,
        instruments=[*compute_perp_specs(n_perps), *compute_option_specs(n_series, n_perps, now)],
        risk=risk if risk is not None else RiskParameters(),
        genesis_time=now,
        account_tree_depth=tree_depth,
    )
