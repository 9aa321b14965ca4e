"""Signed order messages (Order, Cancel, CancelAll): wire models, L2-key signatures, checks.

Integer units as everywhere in the rollup (rollup/units.py): `size` in whole contracts, `price`
in micro-USD per contract, `expiry` in unix seconds (0: never), `max_fee` in micro-USD per
contract the order pays when it takes. `Order` is `verifier.wire.Order`: a `Fill` transaction
carries the two orders it matched, and the rules and the circuit check each order's signature,
limits, expiry and filled amount (docs/exchange.md, "Fills").

Every message is signed with the account's L2 key (EdDSA-Poseidon on BabyJubJub,
docs/l2keys.md), as StarkEx orders are signed with Stark keys: the circuit verifies signatures
cheaply only in that scheme. A wallet signs one EIP-712 message, the key registration
(`RegisterKey`), and derives its L2 key from a signature (`rollup.signing.derive_l2_key`), so
`sign_message` accepts either the L2 key or the wallet's Ethereum key it derives from. What a
key signs is Poseidon(domain tag, two words) (`verifier.l2auth`): an order's fields packed as a
record is (`verifier.pubdata.ORDER_SPEC`, under a code no transaction record uses), so an order
signed for one deployment is void on any other, and an order's id is that message (as an order
hash is in 0x, Loopring and StarkEx: the same signed order submitted twice is one order). A
cancel signs its account and market under a code of its own and the order id; a cancel-all its
account and nonce.

Cancel-all follows 0x's `cancelOrdersUpTo`: `CancelAll(account, nonce)` cancels every open order
of the account whose nonce is below `nonce`, on every market, and voids any such order arriving
later. Replaying it changes nothing, so it needs no nonce of its own; clients use increasing
order nonces (milliseconds since the epoch, as Hyperliquid does) to make it mean "everything so
far". Cancels are the sequencer's promise, not a rule: the state keeps filled amounts, not
cancellations, so an order's expiry is what bounds it on chain (as in StarkEx and dYdX).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator

from verifier.encoding import InvalidSignature
from verifier.l2auth import compute_order_message, compute_tx_message, get_domain_tag, sign_l2, verify_l2_signature
from verifier.poseidon import R
from verifier.pubdata import RecordField, get_places, pack_words
from verifier.wire import (
    GTC,
    IOC,
    ORDER_NONCE_BITS,
    POST_ONLY,
    AccountId,
    Bytes32,
    Genesis,
    InstrumentId,
    L2Signature,
    OptionSeriesSpec,
    Order,
    OrderNonce,
    SigningDomain,
    WireModel,
    ACCOUNT_ID_BITS,
    INSTRUMENT_ID_BITS,
)

__all__ = ["GTC", "IOC", "POST_ONLY", "Order", "Cancel", "CancelAll", "InvalidOrder", "Message", "MESSAGE_TYPES"]

MS_PER_SECOND = 1_000

OrderId = str  # 0x + 64 hex: the order's signed message (a field element)


class InvalidOrder(ValueError):
    """An order, cancel or cancel-all that cannot be accepted; the message says why."""


def _check_order_id(value: str) -> str:
    # an id is an order's signed message: a field element
    if int(value, 16) >= R:
        raise ValueError("order_id is not an order's id: it must be below the BN254 scalar field's modulus")
    return value


class Cancel(WireModel):
    """Cancel one open order of `account` on `instrument`, by its id."""

    type: Literal["cancel"] = "cancel"
    account: AccountId
    instrument: InstrumentId
    order_id: Annotated[Bytes32, AfterValidator(_check_order_id)]
    signature: L2Signature


class CancelAll(WireModel):
    """Cancel every open order of `account` with a nonce below `nonce`, on every market, and void
    those that arrive later."""

    type: Literal["cancel_all"] = "cancel_all"
    account: AccountId
    nonce: OrderNonce
    signature: L2Signature


Message = Order | Cancel | CancelAll
MESSAGE_TYPES: dict[str, type[WireModel]] = {m.model_fields["type"].default: m for m in (Order, Cancel, CancelAll)}

# --- what a key signs ------------------------------------------------------------------------------

CANCEL_CODE = 0x81  # beside the order's 0x80: no transaction record uses either
CANCEL_ALL_CODE = 0x82
_CANCEL_PLACES = get_places((RecordField("account", ACCOUNT_ID_BITS), RecordField("instrument", INSTRUMENT_ID_BITS)), reserved=1)
_CANCEL_ALL_PLACES = get_places((RecordField("account", ACCOUNT_ID_BITS), RecordField("nonce", ORDER_NONCE_BITS)), reserved=1)


def compute_message(message: Message, domain: SigningDomain) -> int:
    """The field element the account's L2 key signs for an order, cancel or cancel-all."""
    if isinstance(message, Order):
        return compute_order_message(message, domain)
    tag = get_domain_tag(domain)
    if isinstance(message, Cancel):
        word, _ = pack_words(CANCEL_CODE, _CANCEL_PLACES, message.model_dump(), "cancel")
        return compute_tx_message(tag, (word, int(message.order_id, 16)))
    word, _ = pack_words(CANCEL_ALL_CODE, _CANCEL_ALL_PLACES, message.model_dump(), "cancel-all")
    return compute_tx_message(tag, (word, 0))


def compute_order_id(order: Order, domain: SigningDomain) -> OrderId:
    """An order's id: its signed message as 0x-hex (32 bytes)."""
    return f"0x{compute_order_message(order, domain):064x}"


def sign_message(message: Message, key: object, domain: SigningDomain) -> Message:
    """`message` signed with an L2 key (`rollup.signing.L2Key`), or, given a wallet's Ethereum
    private key (32 bytes), with the L2 key it derives (index 0: `rollup.signing.derive_l2_key`)."""
    from rollup.signing import L2Key, derive_l2_key  # node-side signing; the checks below need only verifier

    private = key.private if isinstance(key, L2Key) else derive_l2_key(key, domain, 0).private  # type: ignore[arg-type]
    return message.model_copy(update={"signature": sign_l2(private, compute_message(message, domain))})


def recover_signer(message: Message, domain: SigningDomain) -> int:
    """The id of the L2 key that signed `message`, or InvalidOrder if the signature does not verify."""
    try:
        return verify_l2_signature(compute_message(message, domain), message.signature)
    except InvalidSignature as exc:
        what = message.type.replace("_", "-")
        raise InvalidOrder(f"invalid signature: {str(exc).replace('the transaction', f'the {what}')}") from None


def check_signer(message: Message, domain: SigningDomain, account_key_id: int) -> None:
    """The message must be signed by its account's registered L2 key (`account_key_id`, from the state)."""
    what = f"{message.type.replace('_', '-')} for account {message.account}"
    # only an account with a key can sign (a wallet registers one first: rollup key register)
    if not account_key_id:
        raise InvalidOrder(f"{what}: the account has no L2 key registered (rollup key register)")
    signer = recover_signer(message, domain)
    # only the account's own key may place or cancel its orders
    if signer != account_key_id:
        raise InvalidOrder(f"{what} is signed by L2 key id {signer:#x}, not by the account's key id {account_key_id:#x}")


# --- checks against the genesis and the clock -------------------------------------------------------


def is_expired(expiry: int, now_ms: int) -> bool:
    """An order (or a series) with `expiry` seconds never trades at or after that second; 0 never expires."""
    return expiry != 0 and now_ms >= expiry * MS_PER_SECOND


def check_order(order: Order, genesis: Genesis, now_ms: int) -> None:
    """The checks that need the genesis and the clock, not the book (the book refuses what depends
    on it: duplicates, cancelled nonces, post-only orders that would cross)."""
    specs = {spec.id: spec for spec in genesis.instruments}
    spec = specs.get(order.instrument)
    # orders trade instruments of the genesis only
    if spec is None:
        known = ", ".join(str(i) for i in sorted(specs)) or "none"
        raise InvalidOrder(f"unknown instrument {order.instrument} (the genesis lists: {known})")
    # an option series stops trading at its expiry
    if isinstance(spec, OptionSeriesSpec) and is_expired(spec.expiry, now_ms):
        raise InvalidOrder(f"option series {spec.id} ({spec.name}) expired at {spec.expiry}; it no longer trades")
    # an expired order never fills
    if is_expired(order.expiry, now_ms):
        raise InvalidOrder(f"order expired at {order.expiry} (now {now_ms // MS_PER_SECOND})")


def check_cancel(cancel: Cancel, genesis: Genesis) -> None:
    # a cancel names a market of the genesis (it is routed to that book)
    if cancel.instrument not in {spec.id for spec in genesis.instruments}:
        raise InvalidOrder(f"cancel names unknown instrument {cancel.instrument}")
