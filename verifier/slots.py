"""What a transaction's slot covers: its type, the accounts of its two windows (A and B), its
instrument, and its fields on the slot's transaction words.

Shared by the node (which accounts a segment touches), the verifier (which leaves a published batch
must open) and the circuit (the slot's words), so it lives here, importing nothing from `prover`
or `rollup`. Which account is A and which B is fixed per type: A is the depositor, withdrawer,
sender, taker (of a trade or a fill), buyer, liquidator, registrant, or the account whose expired option position is settled; B is
the recipient, maker, seller, liquidated account, or the keeper who sends a settlement for someone
else (unused when holders settle their own).
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier.encoding import _get_address_int
from verifier.wire import Deposit, Fill, Liquidate, OptionTrade, OracleUpdate, PerpTrade, RegisterKey, SettleExpired, Transfer, Withdraw

SLOT_TYPES: tuple[str, ...] = (
    "deposit",
    "withdraw",
    "transfer",
    "perp_trade",
    "option_trade",
    "settle_expired",
    "liquidate",
    "register_key",
    "oracle_update",
    "fill",
)
SUPPORTED_TYPES: frozenset[str] = frozenset(
    ("deposit", "withdraw", "transfer", "perp_trade", "option_trade", "settle_expired", "liquidate", "register_key", "oracle_update", "fill")
)


@dataclass
class TxWords:
    account_a: int = 0
    account_b: int = 0
    instrument: int = 0
    quantity: int = 0  # amount (collateral moves), signed size (perp, fill: the taker's), quantity (option)
    price: int = 0  # perp price, option premium
    fee: int = 0
    nonce_a: int = 0  # a fill: the taker's order nonce (64 bits), else an account nonce
    nonce_b: int = 0
    deposit_id: int = 0
    address: int = 0  # deposit or registration address as a 160-bit integer
    timestamp: int = 0  # oracle update
    key_id: int = 0  # registration: the L2 key's id
    # a fill: each side's signed order beyond what the record publishes (A the taker, B the maker)
    order_size_a: int = 0
    limit_a: int = 0
    time_in_force_a: int = 0
    expiry_a: int = 0
    client_id_a: int = 0
    max_fee_a: int = 0
    order_size_b: int = 0
    limit_b: int = 0
    time_in_force_b: int = 0
    expiry_b: int = 0
    client_id_b: int = 0
    max_fee_b: int = 0

ORDER_WORD_FIELDS = ("order_size", "limit", "time_in_force", "expiry", "client_id", "max_fee")  # TxWords' <name>_a / <name>_b



def get_slot_type(tx: object) -> str:
    return tx.type  # type: ignore[attr-defined]


def compute_tx_words(tx: object) -> TxWords:
    """The transaction's fields on the slot's words (which account is A and which B is fixed
    per type, see the module docstring)."""
    if isinstance(tx, Deposit):
        address = _get_address_int(tx.address)
        return TxWords(account_a=tx.account, quantity=tx.amount, deposit_id=tx.deposit_id, address=address)
    if isinstance(tx, Withdraw):
        return TxWords(account_a=tx.account, quantity=tx.amount, nonce_a=tx.nonce)
    if isinstance(tx, Transfer):
        return TxWords(account_a=tx.sender, account_b=tx.recipient, quantity=tx.amount, nonce_a=tx.nonce)
    if isinstance(tx, PerpTrade):
        return TxWords(tx.taker, tx.maker, tx.market, tx.size, tx.price, tx.fee, tx.taker_nonce, tx.maker_nonce)
    if isinstance(tx, OptionTrade):
        return TxWords(tx.buyer, tx.seller, tx.series, tx.quantity, tx.premium, tx.fee, tx.buyer_nonce, tx.seller_nonce)
    if isinstance(tx, Fill):
        orders = {f"{name}_{w}": getattr(tx, f"{side}_{name}") for w, side in (("a", "taker"), ("b", "maker")) for name in ORDER_WORD_FIELDS}
        return TxWords(tx.taker, tx.maker, tx.instrument, tx.size, tx.price, tx.fee, tx.taker_nonce, tx.maker_nonce, **orders)
    if isinstance(tx, SettleExpired):
        # A is the settled account, B the sender; both nonce words carry the sender's nonce
        return TxWords(tx.account, tx.sender, tx.series, nonce_a=tx.nonce, nonce_b=tx.nonce)
    if isinstance(tx, Liquidate):
        # A is the liquidator (signs, pays the nonce, takes the position), B the liquidated account
        return TxWords(tx.liquidator, tx.account, tx.instrument, quantity=tx.size, nonce_a=tx.nonce)
    if isinstance(tx, RegisterKey):
        return TxWords(account_a=tx.account, nonce_a=tx.nonce, address=_get_address_int(tx.address), key_id=tx.key_id)
    if isinstance(tx, OracleUpdate):
        return TxWords(timestamp=tx.timestamp)
    raise TypeError(f"not a transaction: {type(tx).__name__}")


def get_slot_accounts(tx: object) -> tuple[int | None, int | None]:
    """Account ids of windows A and B (None: the window is unused)."""
    if isinstance(tx, OracleUpdate):
        return None, None
    words = compute_tx_words(tx)
    uses_b = isinstance(tx, (Transfer, PerpTrade, OptionTrade, Liquidate, Fill)) or (
        isinstance(tx, SettleExpired) and tx.sender != tx.account
    )
    return words.account_a, (words.account_b if uses_b else None)


def get_slot_instrument(tx: object) -> int | None:
    """The traded or settled instrument (None for collateral moves)."""
    if isinstance(tx, (PerpTrade, OptionTrade, SettleExpired, Liquidate, Fill)):
        return compute_tx_words(tx).instrument
    return None


def get_signing_accounts(tx: object) -> list[tuple[int, int]]:
    """(account, nonce) of each signature field, in the wire model's order (deposits and oracle
    updates are authorised by the L1 queue and the oracle's address, not by an account; a fill's
    signers sign orders, whose nonces are not account nonces)."""
    if isinstance(tx, Withdraw):
        return [(tx.account, tx.nonce)]
    if isinstance(tx, Transfer):
        return [(tx.sender, tx.nonce)]
    if isinstance(tx, PerpTrade):
        return [(tx.maker, tx.maker_nonce), (tx.taker, tx.taker_nonce)]
    if isinstance(tx, OptionTrade):
        return [(tx.buyer, tx.buyer_nonce), (tx.seller, tx.seller_nonce)]
    if isinstance(tx, Liquidate):
        return [(tx.liquidator, tx.nonce)]
    if isinstance(tx, SettleExpired):
        return [(tx.sender, tx.nonce)]
    if isinstance(tx, RegisterKey):
        return [(tx.account, tx.nonce)]
    return []
