"""Canonical encodings every side agrees on: state keys, leaf bytes, EIP-712.

- **Keys.** A state key is a 32-bit number whose bits 29-31 name the leaf kind:
  `account_key(id) = 0 << 29 | id`, `instrument_key(id) = 1 << 29 | id`, `GLOBALS_KEY = 2 << 29`
  (the node's store and diffs are keyed by it; the state commitment is verifier/state_tree.py).
- **Leaf bytes.** A leaf is a sequence of 32-byte big-endian words, signed values as int256 two's
  complement. The first word is the leaf kind (1 account, 2 instrument, 3 globals); every word
  has a declared range (see the `*_WORDS` tables) that encoders and decoders both enforce, so each
  state has exactly one encoding; an empty (absent) leaf is the empty byte string (`"0x"` in a
  `LeafDiff`). Every word but the 256-bit genesis hash fits one field element of BN254's scalar
  field (checked on import), signed words as `v mod r`: what verifier/state_tree.py hashes.
- **Signatures.** Every transaction is EIP-712 typed data in the domain {name "ZK Derivatives Rollup",
  version "1", chainId, verifyingContract}: the L1's chain id and the Rollup contract's address,
  both named by the genesis (`Genesis.signing_domain`), so a signature is valid for one
  deployment only (without them, any deployment with the same L2 chain id accepted it).
  Deposits carry no signature (`UNSIGNED_TYPES`: the L1 queue entry authorises them); their
  digest is still their transaction hash. One struct type per transaction type, derived from the wire model (fields
  minus `type` and the signature fields), so the types cannot drift from the models. The EIP-712
  digest is also the transaction hash. Ethereum signatures (withdrawals, key registrations, the
  oracle's updates: what L1 checks) sign it; signers are recovered with libsecp256k1 (coincurve)
  and checked per EIP-2 (low s). Trades, transfers, liquidations and settlements are signed with
  L2 keys instead (`L2Signature` fields, verifier/l2auth.py), over the transaction's public record.

Imports nothing from `rollup` or `prover`.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Mapping, NamedTuple, Sequence

import annotated_types
import coincurve
from eth_keys.constants import SECPK1_N
from pydantic import BaseModel

from verifier.curve import BN254
from verifier.keccak import keccak256 as keccak
from verifier.wire import (
    ACCOUNT_ID_BITS,
    FUNDING_BITS,
    INSTRUMENT_ID_BITS,
    MAX_SCENARIOS,
    KEY_ID_BITS,
    L2Signature,
    ORDER_NONCE_BITS,
    ORDER_SLOTS,
    PRICE_BITS,
    SIZE_BITS,
    RISK_VALUE_BITS,
    TIMESTAMP_BITS,
    TRANSACTION_TYPES,
    Address,
    Genesis,
    Signature,
    SigningDomain,
    WireModel,
)

# ==================================================================================================
# State-tree keys
# ==================================================================================================

TREE_DEPTH = 32
KIND_SHIFT = ACCOUNT_ID_BITS  # bits below the kind: the id within its kind
KIND_ACCOUNT = 0
KIND_INSTRUMENT = 1
KIND_GLOBALS = 2
GLOBALS_KEY = KIND_GLOBALS << KIND_SHIFT

LeafKind = Literal["account", "instrument", "globals"]
_KIND_NAMES: dict[int, LeafKind] = {KIND_ACCOUNT: "account", KIND_INSTRUMENT: "instrument", KIND_GLOBALS: "globals"}


class InvalidKey(ValueError):
    """A state-tree key outside the layout."""


class DecodedKey(NamedTuple):
    kind: LeafKind
    id: int


def account_key(account_id: int) -> int:
    # the id must fit below the kind bits, or it would alias another kind's key
    if not 0 <= account_id < 2**ACCOUNT_ID_BITS:
        raise InvalidKey(f"account id {account_id} out of range [0, 2**{ACCOUNT_ID_BITS})")
    return KIND_ACCOUNT << KIND_SHIFT | account_id


def instrument_key(instrument_id: int) -> int:
    # instrument ids are 16-bit on the wire
    if not 0 <= instrument_id < 2**INSTRUMENT_ID_BITS:
        raise InvalidKey(f"instrument id {instrument_id} out of range [0, 2**{INSTRUMENT_ID_BITS})")
    return KIND_INSTRUMENT << KIND_SHIFT | instrument_id


def decode_key(key: int) -> DecodedKey:
    """Inverse of the key functions: ("account", id), ("instrument", id) or ("globals", 0)."""
    # the tree has 2**TREE_DEPTH leaves
    if not 0 <= key < 2**TREE_DEPTH:
        raise InvalidKey(f"key {key} out of range [0, 2**{TREE_DEPTH})")
    kind, local_id = key >> KIND_SHIFT, key & (2**KIND_SHIFT - 1)
    # only three kinds exist
    if kind not in _KIND_NAMES:
        raise InvalidKey(f"key {key:#x} has unknown kind {kind}")
    # instrument ids are 16-bit
    if kind == KIND_INSTRUMENT and local_id >= 2**INSTRUMENT_ID_BITS:
        raise InvalidKey(f"key {key:#x}: instrument id {local_id} out of range")
    # there is one globals leaf
    if kind == KIND_GLOBALS and local_id != 0:
        raise InvalidKey(f"key {key:#x}: the globals leaf is {GLOBALS_KEY:#x}")
    return DecodedKey(_KIND_NAMES[kind], local_id)


@functools.lru_cache(maxsize=1 << 17)
def compute_checksum_address(raw: bytes) -> str:
    """EIP-55 mixed-case address of 20 raw bytes: a hex letter is upper case when the matching
    nibble of keccak256(lower-case hex) is >= 8. Same result as eth_utils.to_checksum_address
    (tested), at a third of its cost. Cached: recovery does this once per signature and the same
    accounts sign again and again (it was a quarter of a batch's signature pass)."""
    lower = raw.hex()
    digest = keccak(lower.encode()).hex()
    return "0x" + "".join(c.upper() if h in "89abcdef" else c for c, h in zip(lower, digest))


# ==================================================================================================
# Leaf bytes: 32-byte words with declared ranges
# ==================================================================================================

WORD = 32
LEAF_ACCOUNT = 1  # first word of every leaf: its kind (0 is never a leaf, so zero bytes never parse)
LEAF_INSTRUMENT = 2
LEAF_GLOBALS = 3
INSTRUMENT_KINDS: tuple[str, str] = ("perp", "option")  # word value = index
EMPTY_LEAF_BYTES = b""  # an absent account: "0x" in a LeafDiff


class MalformedLeaf(ValueError):
    """Leaf bytes that are not the canonical encoding of any state."""


@dataclass(frozen=True)
class WordSpec:
    """One word of a leaf: its name and range; unsigned in [0, 2**bits), signed in [-2**(bits-1), 2**(bits-1))."""

    name: str
    bits: int
    signed: bool = False
    low: int = field(init=False, repr=False)  # the range [low, high), precomputed: leaves are encoded per batch
    high: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        half = 2 ** (self.bits - 1)
        object.__setattr__(self, "low", -half if self.signed else 0)
        object.__setattr__(self, "high", half if self.signed else 2 * half)

    def is_in_range(self, value: int) -> bool:
        return self.low <= value < self.high

    def describe(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}"


# Ranges: wire bounds where the value comes straight from a transaction; wider ones where the state
# accumulates (collateral, cost, open interest, pools), still far inside what a circuit can check.
ACCOUNT_WORDS = (
    WordSpec("leaf_kind", 8),
    WordSpec("address", 160),
    WordSpec("collateral", 128),
    WordSpec("nonce", 64),
    WordSpec("l2_key", KEY_ID_BITS),
    WordSpec("n_positions", 8),
    WordSpec("n_orders", 8),
)
POSITION_WORDS = (
    WordSpec("instrument", INSTRUMENT_ID_BITS),
    WordSpec("size", 64, signed=True),
    WordSpec("cost", 128, signed=True),
    WordSpec("funding", FUNDING_BITS + 1, signed=True),
)
ORDER_SLOT_WORDS = (
    WordSpec("slot", (ORDER_SLOTS - 1).bit_length()),
    WordSpec("nonce", ORDER_NONCE_BITS),
    WordSpec("filled", SIZE_BITS),
)
INSTRUMENT_WORDS = (
    WordSpec("leaf_kind", 8),
    WordSpec("id", INSTRUMENT_ID_BITS),
    WordSpec("kind", 1),
    WordSpec("has_mark", 1),
    WordSpec("mark", PRICE_BITS),
    WordSpec("funding_index", FUNDING_BITS + 1, signed=True),
    WordSpec("open_interest", 128),
    WordSpec("has_settlement", 1),
    WordSpec("settlement", PRICE_BITS),
    WordSpec("n_scenarios", 8),
)
RISK_WORD = WordSpec("risk_value", RISK_VALUE_BITS + 1, signed=True)
GLOBALS_WORDS = (
    WordSpec("leaf_kind", 8),
    WordSpec("fee_pool", 128),
    WordSpec("insurance_fund", 128, signed=True),
    WordSpec("deposit_count", 64),
    WordSpec("oracle_time", TIMESTAMP_BITS),
    WordSpec("genesis_hash", 256),
)
MAX_POSITIONS_IN_LEAF = 64  # RiskParameters.max_positions is at most 64


class OrderSlotLeaf(NamedTuple):
    """The order an account last filled in slot `slot` (= its nonce % ORDER_SLOTS) and how many
    contracts of it have filled (> 0: an unused slot is not stored)."""

    slot: int
    nonce: int
    filled: int


class PositionLeaf(NamedTuple):
    instrument: int
    size: int
    cost: int
    funding: int


@dataclass(frozen=True)
class AccountLeaf:
    address: str  # checksummed
    collateral: int
    nonce: int
    positions: tuple[PositionLeaf, ...]  # sorted by instrument
    l2_key: int = 0  # the registered L2 key's id (verifier/l2auth.py), 0 before a registration
    orders: tuple[OrderSlotLeaf, ...] = ()  # used order slots, sorted by slot


@dataclass(frozen=True)
class InstrumentLeaf:
    id: int
    kind: str  # "perp" | "option"
    mark: int | None
    funding_index: int
    open_interest: int
    settlement: int | None
    risk_array: tuple[int, ...]  # empty until the oracle publishes one


@dataclass(frozen=True)
class GlobalsLeaf:
    fee_pool: int
    insurance_fund: int
    deposit_count: int
    oracle_time: int
    genesis_hash: bytes  # 32 bytes


def _encode_words(values: Sequence[int], specs: Sequence[WordSpec]) -> bytes:
    parts = []
    for value, spec in zip(values, specs, strict=True):
        # integers only (bool is not an amount)
        if value.__class__ is not int:
            raise MalformedLeaf(f"{spec.name} must be an integer, got {type(value).__name__}")
        # every word in its declared range: one state, one encoding
        if not spec.low <= value < spec.high:
            raise MalformedLeaf(f"{spec.name} = {value} out of range for {spec.describe()}")
        parts.append(value.to_bytes(WORD, "big", signed=spec.signed))
    return b"".join(parts)


def _decode_words(data: bytes, offset: int, specs: Sequence[WordSpec]) -> list[int]:
    values = []
    for spec in specs:
        value = int.from_bytes(data[offset : offset + WORD], "big", signed=spec.signed)
        # a word outside its declared range is not canonical
        if not spec.low <= value < spec.high:
            raise MalformedLeaf(f"{spec.name} word {data[offset : offset + WORD].hex()} out of range for {spec.describe()}")
        values.append(value)
        offset += WORD
    return values


def _get_address_int(address: str | bytes) -> int:
    """A 0x-prefixed 40-hex-digit address (any case) or 20 raw bytes, as an integer."""
    raw = address if isinstance(address, (bytes, bytearray)) else None
    if isinstance(address, str) and address.startswith("0x") and len(address) == 42:
        try:
            raw = bytes.fromhex(address[2:])
        except ValueError:
            raw = None
    # exactly 20 bytes (fromhex skips whitespace: the length check catches it)
    if raw is None or len(raw) != 20:
        raise MalformedLeaf(f"address must be 0x + 40 hex digits or 20 bytes, got {address!r}")
    return int.from_bytes(raw, "big")


def _bool_word(flag: bool) -> int:
    return 1 if flag else 0


def _check_position_order(positions: Sequence[PositionLeaf]) -> None:
    # sorted by instrument, each at most once
    ids = [p.instrument for p in positions]
    if any(a >= b for a, b in zip(ids, ids[1:])):
        raise MalformedLeaf("positions must be sorted by instrument with no duplicates")
    # a position that returned to 0 is removed, never stored
    if any(p.size == 0 for p in positions):
        raise MalformedLeaf("a position of size 0 is never stored")


def _check_order_slots(orders: Sequence[OrderSlotLeaf]) -> None:
    # sorted by slot, each at most once, within the slot count
    slots = [o.slot for o in orders]
    if any(a >= b for a, b in zip(slots, slots[1:])):
        raise MalformedLeaf("order slots must be sorted by slot with no duplicates")
    for o in orders:
        # a slot holds the order whose nonce selects it, and only once something filled
        if not 0 <= o.slot < ORDER_SLOTS or o.nonce % ORDER_SLOTS != o.slot:
            raise MalformedLeaf(f"order slot {o.slot} cannot hold the order of nonce {o.nonce} (slot = nonce % {ORDER_SLOTS})")
        if o.filled <= 0:
            raise MalformedLeaf("an order slot with nothing filled is never stored")


def encode_account_leaf(
    address: str | bytes, collateral: int, nonce: int, positions: Iterable[Sequence[int]], l2_key: int = 0,
    orders: Iterable[Sequence[int]] = (),
) -> bytes:
    """Account leaf: kind, address, collateral, nonce, L2 key id, n, m, then n x (instrument, size,
    cost, funding), then m x (order slot, order nonce, filled)."""
    plist = [PositionLeaf(*p) for p in positions]
    olist = [OrderSlotLeaf(*o) for o in orders]
    # the leaf has a bounded shape
    if len(plist) > MAX_POSITIONS_IN_LEAF:
        raise MalformedLeaf(f"an account holds at most {MAX_POSITIONS_IN_LEAF} positions, got {len(plist)}")
    _check_position_order(plist)
    _check_order_slots(olist)
    address_int = _get_address_int(address)
    head = _encode_words((LEAF_ACCOUNT, address_int, collateral, nonce, l2_key, len(plist), len(olist)), ACCOUNT_WORDS)
    return head + b"".join(_encode_words(p, POSITION_WORDS) for p in plist) + b"".join(_encode_words(o, ORDER_SLOT_WORDS) for o in olist)


def encode_instrument_leaf(
    id: int,
    kind: str,
    mark: int | None,
    funding_index: int,
    open_interest: int,
    settlement: int | None,
    risk_array: Sequence[int],
) -> bytes:
    """Instrument leaf: kind, id, perp/option, has_mark, mark, funding_index, open_interest,
    has_settlement, settlement, n_scenarios, then the n_scenarios risk values. An absent optional
    value is encoded as flag 0 and value 0."""
    # a known instrument kind
    if kind not in INSTRUMENT_KINDS:
        raise MalformedLeaf(f"instrument kind must be one of {INSTRUMENT_KINDS}, got {kind!r}")
    # the risk array has a bounded length
    if len(risk_array) > MAX_SCENARIOS:
        raise MalformedLeaf(f"a risk array has at most {MAX_SCENARIOS} values, got {len(risk_array)}")
    _check_instrument_semantics(kind, funding_index, settlement)
    head = _encode_words(
        (
            LEAF_INSTRUMENT,
            id,
            INSTRUMENT_KINDS.index(kind),
            _bool_word(mark is not None),
            mark or 0,
            funding_index,
            open_interest,
            _bool_word(settlement is not None),
            settlement or 0,
            len(risk_array),
        ),
        INSTRUMENT_WORDS,
    )
    return head + _encode_words(list(risk_array), [RISK_WORD] * len(risk_array))


def _check_instrument_semantics(kind: str, funding_index: int, settlement: int | None) -> None:
    # funding exists only for perpetuals
    if kind == "option" and funding_index != 0:
        raise MalformedLeaf("an option series has no funding index")
    # settlement exists only for options
    if kind == "perp" and settlement is not None:
        raise MalformedLeaf("a perpetual market has no settlement price")


def encode_globals_leaf(fee_pool: int, insurance_fund: int, deposit_count: int, oracle_time: int, genesis_hash: bytes) -> bytes:
    """Globals leaf: kind, fee_pool, insurance_fund, deposit_count, oracle_time, genesis_hash."""
    # the genesis hash is a keccak digest
    if not isinstance(genesis_hash, (bytes, bytearray)) or len(genesis_hash) != WORD:
        raise MalformedLeaf("genesis_hash must be 32 bytes")
    values = (LEAF_GLOBALS, fee_pool, insurance_fund, deposit_count, oracle_time, int.from_bytes(genesis_hash, "big"))
    return _encode_words(values, GLOBALS_WORDS)


def _check_leaf_shape(data: bytes, expected_kind: int, min_words: int) -> None:
    # bytes, not text
    if not isinstance(data, (bytes, bytearray)):
        raise MalformedLeaf(f"leaf must be bytes, got {type(data).__name__}")
    # whole words only
    if len(data) % WORD:
        raise MalformedLeaf(f"leaf length {len(data)} is not a multiple of {WORD}")
    # at least the fixed header
    if len(data) < min_words * WORD:
        raise MalformedLeaf(f"leaf of {len(data) // WORD} words is shorter than its {min_words}-word header")
    kind = int.from_bytes(data[:WORD], "big")
    # the leaf is of the kind the caller expects
    if kind != expected_kind:
        raise MalformedLeaf(f"leaf kind word is {kind}, expected {expected_kind}")


def _check_length(data: bytes, expected_words: int) -> None:
    # exactly the words the header announces, nothing trailing
    if len(data) != expected_words * WORD:
        raise MalformedLeaf(f"leaf has {len(data) // WORD} words, its header announces {expected_words}")


def decode_account_leaf(data: bytes) -> AccountLeaf:
    _check_leaf_shape(data, LEAF_ACCOUNT, len(ACCOUNT_WORDS))
    _, address_int, collateral, nonce, l2_key, n, m = _decode_words(data, 0, ACCOUNT_WORDS)
    # the announced counts are within the bounded shape
    if n > MAX_POSITIONS_IN_LEAF:
        raise MalformedLeaf(f"account leaf announces {n} positions, at most {MAX_POSITIONS_IN_LEAF}")
    if m > ORDER_SLOTS:
        raise MalformedLeaf(f"account leaf announces {m} order slots, at most {ORDER_SLOTS}")
    _check_length(data, len(ACCOUNT_WORDS) + n * len(POSITION_WORDS) + m * len(ORDER_SLOT_WORDS))
    positions = tuple(
        PositionLeaf(*_decode_words(data, (len(ACCOUNT_WORDS) + i * len(POSITION_WORDS)) * WORD, POSITION_WORDS))
        for i in range(n)
    )
    _check_position_order(positions)
    first = len(ACCOUNT_WORDS) + n * len(POSITION_WORDS)
    orders = tuple(OrderSlotLeaf(*_decode_words(data, (first + i * len(ORDER_SLOT_WORDS)) * WORD, ORDER_SLOT_WORDS)) for i in range(m))
    _check_order_slots(orders)
    return AccountLeaf(compute_checksum_address(address_int.to_bytes(20, "big")), collateral, nonce, positions, l2_key, orders)


def decode_instrument_leaf(data: bytes) -> InstrumentLeaf:
    _check_leaf_shape(data, LEAF_INSTRUMENT, len(INSTRUMENT_WORDS))
    values = _decode_words(data, 0, INSTRUMENT_WORDS)
    _, id_, kind_index, has_mark, mark, funding_index, open_interest, has_settlement, settlement, n = values
    # the risk array has a bounded length
    if n > MAX_SCENARIOS:
        raise MalformedLeaf(f"instrument leaf announces {n} risk values, at most {MAX_SCENARIOS}")
    _check_length(data, len(INSTRUMENT_WORDS) + n)
    # an absent mark is encoded as 0
    if not has_mark and mark != 0:
        raise MalformedLeaf("mark must be 0 when has_mark is 0")
    # an absent settlement is encoded as 0
    if not has_settlement and settlement != 0:
        raise MalformedLeaf("settlement must be 0 when has_settlement is 0")
    kind = INSTRUMENT_KINDS[kind_index]
    settlement_value = settlement if has_settlement else None
    _check_instrument_semantics(kind, funding_index, settlement_value)
    risk = tuple(_decode_words(data, len(INSTRUMENT_WORDS) * WORD, [RISK_WORD] * n))
    return InstrumentLeaf(id_, kind, mark if has_mark else None, funding_index, open_interest, settlement_value, risk)


def decode_globals_leaf(data: bytes) -> GlobalsLeaf:
    _check_leaf_shape(data, LEAF_GLOBALS, len(GLOBALS_WORDS))
    _check_length(data, len(GLOBALS_WORDS))
    _, fee_pool, insurance_fund, deposit_count, oracle_time, genesis_hash = _decode_words(data, 0, GLOBALS_WORDS)
    return GlobalsLeaf(fee_pool, insurance_fund, deposit_count, oracle_time, genesis_hash.to_bytes(WORD, "big"))


def decode_leaf(key: int, data: bytes) -> AccountLeaf | InstrumentLeaf | GlobalsLeaf | None:
    """Decode the leaf stored at `key` (None for the empty leaf); its kind must match the key's."""
    kind, local_id = decode_key(key)
    if data == EMPTY_LEAF_BYTES:
        return None
    if kind == "account":
        return decode_account_leaf(data)
    if kind == "instrument":
        leaf = decode_instrument_leaf(data)
        # the leaf belongs at this key
        if leaf.id != local_id:
            raise MalformedLeaf(f"instrument leaf for id {leaf.id} stored at key of id {local_id}")
        return leaf
    return decode_globals_leaf(data)


def compute_genesis_hash(genesis: Genesis) -> bytes:
    """keccak256 of the genesis JSON (pydantic's compact `model_dump_json`, fields in model order):
    the globals leaf commits to the instruments and parameters the rules run with."""
    return keccak(genesis.model_dump_json().encode())


# ==================================================================================================
# EIP-712: types derived from the wire models, digests, signer recovery
# ==================================================================================================

DOMAIN_NAME = "ZK Derivatives Rollup"
DOMAIN_VERSION = "1"
DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_ADDRESS_VALIDATOR = typing.get_args(Address)[1]
_SIGNATURE_VALIDATOR = typing.get_args(Signature)[1]
_L2_SIGNATURE_VALIDATOR = typing.get_args(L2Signature)[1]


class InvalidSignature(ValueError):
    """A signature that is malformed or recovers no key. The message says what is wrong; the node
    rejects the transaction with "invalid signature: <message>"."""


def is_signature_field(model: type[BaseModel], name: str) -> bool:
    """An Ethereum (secp256k1) or an L2 (EdDSA-Poseidon) signature field."""
    return any(m is _SIGNATURE_VALIDATOR or m is _L2_SIGNATURE_VALIDATOR for m in model.model_fields[name].metadata)


def is_l2_signature_field(model: type[BaseModel], name: str) -> bool:
    return any(m is _L2_SIGNATURE_VALIDATOR for m in model.model_fields[name].metadata)


@functools.cache
def is_l2_signed(model: type[BaseModel]) -> bool:
    """Signed with L2 keys (every signature field of a model is of one kind: checked on import)."""
    return any(is_l2_signature_field(model, n) for n in get_signature_fields(model))


@functools.cache
def get_signature_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The model's signature fields, in declaration order: the order of `recover_signers`."""
    return tuple(name for name in model.model_fields if is_signature_field(model, name))


@functools.cache
def get_signed_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields covered by the signature: all but `type` and the signatures."""
    return tuple(n for n in model.model_fields if n != "type" and not is_signature_field(model, n))


def _get_lower_bound(metadata: Iterable[Any]) -> int | None:
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            return int(m.ge)
        if isinstance(m, annotated_types.Gt):
            return int(m.gt) + 1
    return None


def _get_eip712_atomic_type(annotation: Any, metadata: Sequence[Any], where: str) -> str:
    """uint256 / int256 / address / bool for a scalar annotation with its pydantic metadata."""
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        flat: list[Any] = []
        for m in extra:
            flat += getattr(m, "metadata", [m])
        return _get_eip712_atomic_type(inner, [*metadata, *flat], where)
    if annotation is bool:
        return "bool"
    if annotation is int:
        lower = _get_lower_bound(metadata)
        # an integer field must state its sign: that decides uint256 or int256
        if lower is None:
            raise TypeError(f"{where}: integer field without a lower bound; cannot choose uint256/int256")
        return "uint256" if lower >= 0 else "int256"
    if annotation is str and any(m is _ADDRESS_VALIDATOR for m in metadata):
        return "address"
    raise TypeError(f"{where}: no EIP-712 type for {annotation!r}")


def _get_struct_model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _get_eip712_field_type(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    annotation = field.annotation
    where = f"{model.__name__}.{name}"
    if typing.get_origin(annotation) is list:
        (element,) = typing.get_args(annotation)
        struct = _get_struct_model(element)
        return f"{struct.__name__}[]" if struct else _get_eip712_atomic_type(element, [], where) + "[]"
    struct = _get_struct_model(annotation)
    return struct.__name__ if struct else _get_eip712_atomic_type(annotation, field.metadata, where)


def _get_referenced_structs(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """The struct models a model's fields refer to, directly (as a field or a list element)."""
    found: dict[str, type[BaseModel]] = {}
    for field in model.model_fields.values():
        for candidate in (field.annotation, *typing.get_args(field.annotation)):
            struct = _get_struct_model(candidate)
            if struct is not None:
                found[struct.__name__] = struct
    return found


@functools.cache
def get_struct_models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Name -> model for `model` and every struct it references, transitively."""
    result: dict[str, type[BaseModel]] = {}
    pending = [model]
    while pending:
        current = pending.pop()
        if current.__name__ not in result:
            result[current.__name__] = current
            pending += _get_referenced_structs(current).values()
    return result


def get_eip712_types(model: type[BaseModel]) -> dict[str, list[dict[str, str]]]:
    """EIP-712 `types` (without EIP712Domain) for a transaction model and the structs it references.
    The primary type omits `type` and the signature fields; referenced structs keep all fields."""
    return {
        name: [
            {"name": n, "type": _get_eip712_field_type(struct, n)}
            for n in (get_signed_fields(struct) if struct is model else tuple(struct.model_fields))
        ]
        for name, struct in get_struct_models(model).items()
    }


def compute_encode_type(primary: str, types_: Mapping[str, list[dict[str, str]]]) -> str:
    """EIP-712 encodeType: the primary struct, then the referenced structs sorted by name."""

    def render(name: str) -> str:
        return f"{name}(" + ",".join(f"{f['type']} {f['name']}" for f in types_[name]) + ")"

    return render(primary) + "".join(render(n) for n in sorted(types_) if n != primary)


# --- reference path: eth-account's encode_typed_data --------------------------------------------


def _get_message_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {k: _get_message_value(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, list):
        return [_get_message_value(v) for v in value]
    return value


def get_typed_data(tx: WireModel, domain: SigningDomain) -> dict[str, Any]:
    """The full EIP-712 message a wallet signs for `tx` (eth-account's `full_message` format)."""
    model = type(tx)
    return {
        "types": {"EIP712Domain": DOMAIN_TYPE, **get_eip712_types(model)},
        "primaryType": model.__name__,
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": domain.l1_chain_id, "verifyingContract": domain.verifying_contract},
        "message": {n: _get_message_value(getattr(tx, n)) for n in get_signed_fields(model)},
    }


def compute_signing_digest_reference(tx: WireModel, domain: SigningDomain) -> bytes:
    """The EIP-712 digest computed by eth-account (slow; the reference for the fast path)."""
    from eth_account.messages import encode_typed_data

    signable = encode_typed_data(full_message=get_typed_data(tx, domain))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


# --- fast path: precomputed type hashes and per-field encoders ------------------------------------

Encoder = Callable[[Any], bytes]


def _encode_uint(value: int) -> bytes:
    return value.to_bytes(WORD, "big")


def _encode_int(value: int) -> bytes:
    return value.to_bytes(WORD, "big", signed=True)


def _encode_bool(value: bool) -> bytes:
    return _encode_uint(1 if value else 0)


def _encode_address(value: str) -> bytes:
    return bytes(12) + bytes.fromhex(value[2:])


_ATOMIC_ENCODERS: dict[str, Encoder] = {
    "uint256": _encode_uint,
    "int256": _encode_int,
    "bool": _encode_bool,
    "address": _encode_address,
}


@functools.cache
def _get_struct_hasher(model: type[BaseModel], primary: type[BaseModel] | None = None) -> Callable[[Any], bytes]:
    """hashStruct for one struct: keccak(typeHash || encodeData), with the encoders built once.
    `primary` is the transaction model whose type set `model` belongs to (itself if None)."""
    primary = primary or model
    types_ = get_eip712_types(primary)
    structs = get_struct_models(primary)
    type_hash = keccak(compute_encode_type(model.__name__, _get_type_closure(model.__name__, types_)).encode())
    encoders = [(f["name"], _get_value_encoder(f["type"], structs, primary)) for f in types_[model.__name__]]

    def hash_struct(value: Any) -> bytes:
        return keccak(type_hash + b"".join(encode(getattr(value, name)) for name, encode in encoders))

    return hash_struct


def _get_type_closure(name: str, types_: Mapping[str, list[dict[str, str]]]) -> dict[str, list[dict[str, str]]]:
    """The types `name` refers to, transitively, itself included (what its encodeType lists)."""
    closure: dict[str, list[dict[str, str]]] = {}
    pending = [name]
    while pending:
        current = pending.pop()
        if current not in closure:
            closure[current] = types_[current]
            pending += [f["type"].removesuffix("[]") for f in types_[current] if f["type"].removesuffix("[]") in types_]
    return closure


def _get_value_encoder(eip712_type: str, structs: Mapping[str, type[BaseModel]], primary: type[BaseModel]) -> Encoder:
    if eip712_type in _ATOMIC_ENCODERS:
        return _ATOMIC_ENCODERS[eip712_type]
    if eip712_type.endswith("[]"):
        element = _get_value_encoder(eip712_type[:-2], structs, primary)
        return lambda values: keccak(b"".join(element(v) for v in values))
    return _get_struct_hasher(structs[eip712_type], primary)


@functools.cache
def compute_domain_separator(domain: SigningDomain) -> bytes:
    type_hash = keccak(compute_encode_type("EIP712Domain", {"EIP712Domain": DOMAIN_TYPE}).encode())
    return keccak(
        type_hash
        + keccak(DOMAIN_NAME.encode())
        + keccak(DOMAIN_VERSION.encode())
        + _encode_uint(domain.l1_chain_id)
        + _encode_address(domain.verifying_contract)
    )


def compute_signing_digest(tx: WireModel, domain: SigningDomain) -> bytes:
    """The EIP-712 digest of `tx` in the rollup's domain: what every signer signs, and the tx hash."""
    return keccak(b"\x19\x01" + compute_domain_separator(domain) + _get_struct_hasher(type(tx))(tx))


def compute_signing_digest_of_fields(model: type[WireModel], fields: Mapping[str, Any], domain: SigningDomain) -> bytes:
    """The digest of a transaction not yet signed: `fields` holds the signed fields (validated
    values, e.g. nested models for OracleUpdate's lists)."""
    return keccak(b"\x19\x01" + compute_domain_separator(domain) + _get_struct_hasher(model)(types.SimpleNamespace(**fields)))


# --- recovery --------------------------------------------------------------------------------------

SECP256K1_HALF_N = SECPK1_N // 2


def parse_signature(signature: str | bytes) -> tuple[int, int, int]:
    """(r, s, recovery id 0/1) of an Ethereum signature r || s || v, checked per EIP-2."""
    raw = bytes.fromhex(signature[2:]) if isinstance(signature, str) else bytes(signature)
    # r (32) || s (32) || v (1)
    if len(raw) != 65:
        raise InvalidSignature(f"{len(raw)} bytes, expected 65")
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    # Ethereum's v is 27 or 28
    if v not in (27, 28):
        raise InvalidSignature(f"v = {v}, expected 27 or 28")
    # r is a nonzero scalar
    if not 0 < r < SECPK1_N:
        raise InvalidSignature("r out of range")
    # s is a nonzero scalar in the lower half (EIP-2: no malleable twin)
    if not 0 < s <= SECP256K1_HALF_N:
        raise InvalidSignature("s out of range (EIP-2 requires s <= n/2)")
    return r, s, v - 27


def recover_address(digest: bytes, signature: str | bytes) -> str:
    """The checksummed address whose key made `signature` over the 32-byte `digest`."""
    return compute_checksum_address(recover_address_bytes(digest, signature))


def recover_address_bytes(digest: bytes, signature: str | bytes) -> bytes:
    """The 20 bytes of the address whose key made `signature` over the 32-byte `digest` (what a
    signature worker returns: the checksum is computed where its cache is warm)."""
    r, s, recovery_id = parse_signature(signature)
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([recovery_id]), digest, hasher=None
        )
    except Exception as exc:  # libsecp256k1 refuses an r that is no point's x-coordinate
        raise InvalidSignature("no public key recovers from it") from exc
    return keccak(public.format(compressed=False)[1:])[12:]


def recover_signers(tx: WireModel, domain: SigningDomain, digest: bytes | None = None) -> tuple[str, ...]:
    """Recovered signer addresses, in the order of the model's signature fields (Ethereum-signed
    models only: `verifier.l2auth.check_signers` checks either kind)."""
    # L2 signatures are verified against a message, not recovered from a digest
    if is_l2_signed(type(tx)):
        raise TypeError(f"{type(tx).__name__} is signed with L2 keys: use verifier.l2auth.check_signers")
    digest = compute_signing_digest(tx, domain) if digest is None else digest
    return tuple(recover_address(digest, getattr(tx, name)) for name in get_signature_fields(type(tx)))


UNSIGNED_TYPES = ("deposit",)  # authorised by their L1 queue entry, checked against the queue


def _check_transaction_types() -> None:
    """Checked on import: every transaction model has an EIP-712 type and at least one signature,
    but the L1-authorised ones, which have none."""
    for name, model in TRANSACTION_TYPES.items():
        get_eip712_types(model)
        # a transaction nobody signs could be forged, unless the L1 queue authorises it
        if bool(get_signature_fields(model)) == (name in UNSIGNED_TYPES):
            raise TypeError(f"{model.__name__}: signed unless L1-authorised ({', '.join(UNSIGNED_TYPES)})")
        # one kind of signature per model: its signers are all addresses or all key ids
        kinds = {is_l2_signature_field(model, n) for n in get_signature_fields(model)}
        if len(kinds) > 1:
            raise TypeError(f"{model.__name__} mixes Ethereum and L2 signature fields")


FIELD_SAFE_BITS = BN254.r.bit_length() - 1  # any value of this many bits is < r


def _check_word_specs() -> None:
    """Checked on import: every signed word maps into the field without wrapping onto another value,
    and only the genesis hash needs limbs."""
    for spec in (*ACCOUNT_WORDS, *POSITION_WORDS, *ORDER_SLOT_WORDS, *INSTRUMENT_WORDS, RISK_WORD, *GLOBALS_WORDS):
        if spec.bits > FIELD_SAFE_BITS and (spec.signed or spec.name != "genesis_hash"):
            raise TypeError(f"leaf word {spec.name} ({spec.bits} bits) does not fit one field element")


_check_transaction_types()
_check_word_specs()
