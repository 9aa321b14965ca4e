"""Signed order messages (Order, Cancel, CancelAll): wire models, EIP-712 digests, checks.

Integer units as everywhere in the rollup (rollup/units.py): `size` in whole contracts, `price`
in micro-USD per contract, `expiry` in unix seconds (0: never). An order's id is its EIP-712
digest (the signature is not part of it), as an order hash is in 0x, Loopring and StarkEx: the
same signed order submitted twice is one order, and the future `Fill` transaction tracks filled
amounts per id.

The EIP-712 domain is the rollup's own (`verifier.encoding.compute_domain_separator`: name,
version, the L1 chain id and the Rollup contract of the genesis), so an order signed for one
deployment is void on any other; the struct types are listed here, explicitly, because a wallet
shows them to the person signing (`get_typed_data` is what it receives). `Cancel` names its
order by id (`bytes32`), which the transaction encoder of verifier/encoding.py has no type for:
digests are computed here, and the tests check them against eth-account's `encode_typed_data`.

Cancel-all follows 0x's `cancelOrdersUpTo`: `CancelAll(account, nonce)` cancels every open order
of the account whose nonce is below `nonce`, on every market, and voids any such order arriving
later. Replaying it changes nothing, so it needs no nonce of its own; clients use increasing
order nonces (milliseconds since the epoch, as Hyperliquid does) to make it mean "everything so
far".
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from eth_hash.auto import keccak
from pydantic import AfterValidator, Field

from verifier.encoding import (
    DOMAIN_NAME,
    DOMAIN_TYPE,
    DOMAIN_VERSION,
    InvalidSignature,
    compute_domain_separator,
    get_eip712_types,
    recover_address,
)
from verifier.wire import (
    AccountId,
    Bytes32,
    Genesis,
    InstrumentId,
    OptionSeriesSpec,
    Price,
    Quantity,
    Signature,
    SigningDomain,
    Timestamp,
    WireModel,
)

# --- time in force ---------------------------------------------------------------------------------

GTC = 0  # rests until filled, cancelled or expired
IOC = 1  # fills what it can at once; the rest is cancelled
POST_ONLY = 2  # rests without taking: refused if it would cross the book
TIME_IN_FORCE_NAMES = {GTC: "GTC", IOC: "IOC", POST_ONLY: "post-only"}

CLIENT_ID_BITS = 64
ORDER_NONCE_BITS = 64  # wide enough for millisecond timestamps
MS_PER_SECOND = 1_000


def _check_time_in_force(value: int) -> int:
    if value not in TIME_IN_FORCE_NAMES:
        choices = ", ".join(f"{code} ({name})" for code, name in TIME_IN_FORCE_NAMES.items())
        raise ValueError(f"time_in_force must be one of {choices}, got {value}")
    return value


TimeInForce = Annotated[int, Field(ge=0, description="0 GTC, 1 IOC, 2 post-only"), AfterValidator(_check_time_in_force)]
ClientId = Annotated[int, Field(ge=0, lt=2**CLIENT_ID_BITS, description="the client's own id for the order")]
OrderNonce = Annotated[int, Field(ge=0, lt=2**ORDER_NONCE_BITS, description="makes the order unique; CancelAll voids lower ones")]
OrderId = str  # 0x + 64 hex: the order's EIP-712 digest


class InvalidOrder(ValueError):
    """An order, cancel or cancel-all that cannot be accepted; the message says why."""


class Order(WireModel):
    """A limit order on one market (a perpetual or an option series of the genesis): buy
    (`is_buy`) or sell `size` contracts at `price` or better."""

    type: Literal["order"] = "order"
    account: AccountId
    instrument: InstrumentId
    is_buy: bool
    size: Quantity
    price: Price  # the limit: micro-USD per contract
    time_in_force: TimeInForce
    expiry: Timestamp  # unix seconds; the order never fills at or after it; 0: no expiry
    client_id: ClientId
    nonce: OrderNonce
    signature: Signature


class Cancel(WireModel):
    """Cancel one open order of `account` on `instrument`, by its id."""

    type: Literal["cancel"] = "cancel"
    account: AccountId
    instrument: InstrumentId
    order_id: Bytes32
    signature: Signature


class CancelAll(WireModel):
    """Cancel every open order of `account` with a nonce below `nonce`, on every market, and void
    those that arrive later."""

    type: Literal["cancel_all"] = "cancel_all"
    account: AccountId
    nonce: OrderNonce
    signature: Signature


Message = Order | Cancel | CancelAll
MESSAGE_TYPES: dict[str, type[WireModel]] = {m.model_fields["type"].default: m for m in (Order, Cancel, CancelAll)}

# --- EIP-712 ---------------------------------------------------------------------------------------

# What a wallet shows: one struct per message, every field but `type` and `signature`.
EIP712_TYPES: dict[str, list[dict[str, str]]] = {
    "Order": [
        {"name": "account", "type": "uint256"},
        {"name": "instrument", "type": "uint256"},
        {"name": "is_buy", "type": "bool"},
        {"name": "size", "type": "uint256"},
        {"name": "price", "type": "uint256"},
        {"name": "time_in_force", "type": "uint256"},
        {"name": "expiry", "type": "uint256"},
        {"name": "client_id", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
    ],
    "Cancel": [
        {"name": "account", "type": "uint256"},
        {"name": "instrument", "type": "uint256"},
        {"name": "order_id", "type": "bytes32"},
    ],
    "CancelAll": [
        {"name": "account", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
    ],
}

_ENCODERS = {
    "uint256": lambda value: value.to_bytes(32, "big"),
    "bool": lambda value: (1 if value else 0).to_bytes(32, "big"),
    "bytes32": lambda value: bytes.fromhex(value[2:]),
}


def _check_eip712_types() -> None:
    """Checked on import: each struct lists exactly the model's signed fields, in order, and where
    the transaction encoder of verifier/encoding.py can type a struct, it agrees with this table."""
    for model in MESSAGE_TYPES.values():
        signed = [name for name in model.model_fields if name not in ("type", "signature")]
        listed = [field["name"] for field in EIP712_TYPES[model.__name__]]
        # the table and the model must not drift apart
        if signed != listed:
            raise TypeError(f"EIP712_TYPES[{model.__name__!r}] lists {listed}, the model signs {signed}")
        if all(field["type"] != "bytes32" for field in EIP712_TYPES[model.__name__]):
            derived = get_eip712_types(model)[model.__name__]
            if derived != EIP712_TYPES[model.__name__]:
                raise TypeError(f"EIP712_TYPES[{model.__name__!r}] disagrees with verifier.encoding: {derived}")


_check_eip712_types()


@functools.cache
def _get_type_hash(name: str) -> bytes:
    fields = ",".join(f"{f['type']} {f['name']}" for f in EIP712_TYPES[name])
    return keccak(f"{name}({fields})".encode())


@functools.cache
def _get_encoders(name: str) -> tuple[tuple[str, Any], ...]:
    return tuple((f["name"], _ENCODERS[f["type"]]) for f in EIP712_TYPES[name])


def compute_message_digest(message: Message, domain: SigningDomain) -> bytes:
    """The EIP-712 digest of an order, cancel or cancel-all: what its owner signs."""
    name = type(message).__name__
    struct = keccak(_get_type_hash(name) + b"".join(encode(getattr(message, f)) for f, encode in _get_encoders(name)))
    return keccak(b"\x19\x01" + compute_domain_separator(domain) + struct)


def compute_order_id(order: Order, domain: SigningDomain) -> OrderId:
    """An order's id: its EIP-712 digest as 0x-hex."""
    return "0x" + compute_message_digest(order, domain).hex()


def get_typed_data(message: Message, domain: SigningDomain) -> dict[str, Any]:
    """The full EIP-712 message a wallet signs (eth-account's `full_message` format)."""
    name = type(message).__name__
    return {
        "types": {"EIP712Domain": DOMAIN_TYPE, name: EIP712_TYPES[name]},
        "primaryType": name,
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": domain.l1_chain_id,
            "verifyingContract": domain.verifying_contract,
        },
        "message": {f["name"]: getattr(message, f["name"]) for f in EIP712_TYPES[name]},
    }


def sign_message(message: Message, private_key: bytes, domain: SigningDomain) -> Message:
    """`message` with its signature made by `private_key` (RFC 6979, low s: what eth-account's
    `sign_typed_data` gives for the same key and typed data)."""
    from rollup.signing import sign_digest  # node-side signing; the checks below need only verifier

    return message.model_copy(update={"signature": sign_digest(private_key, compute_message_digest(message, domain))})


def recover_signer(message: Message, domain: SigningDomain) -> str:
    """The checksummed address that signed `message`, or InvalidOrder if the signature is malformed."""
    try:
        return recover_address(compute_message_digest(message, domain), message.signature)
    except InvalidSignature as exc:
        raise InvalidOrder(f"invalid signature: {exc}") from None


def check_signer(message: Message, domain: SigningDomain, account_address: str) -> None:
    """The message must be signed by the key of its account (`account_address`, from the state)."""
    signer = recover_signer(message, domain)
    # only the account's own key may place or cancel its orders
    if signer.lower() != account_address.lower():
        raise InvalidOrder(
            f"{message.type.replace('_', '-')} for account {message.account} is signed by {signer}, "
            f"not by the account's address {account_address}"
        )


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
