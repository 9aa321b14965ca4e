"""Public data of circuit v3: the compact record every transaction leaves, and its field words.

The public data is the rollup's data availability: from genesis and the records of every
settled batch, in order, anyone can replay the rules and rebuild the whole state (and its root)
without the node. It is also what the circuit proves: a slot's two record words are a linear
function of the transaction words it executed, and a segment's records are committed in one
public input (`compute_records_hash`, sha256 proven inside the circuit), so the proof binds the
state transition to exactly these records. Signatures are not public data: L2 signatures are verified inside the proof, and
the few Ethereum signatures L1 checks itself (withdrawals, key registrations) travel beside the
records in the settlement's calldata.

A record is a one-byte type code followed by its fields, big-endian, fixed widths (below). Two
forms, one layout:

- bytes (`encode_record` / `decode_record`): the fields concatenated, what a data-availability
  consumer reads; 15 to 60 bytes per transaction (a trade: 38, a key registration: 60).
- words (`compute_record_words` / `decode_record_words`): the same fields packed greedily into
  `RECORD_WORDS` words of `WORD_BYTES` (31) bytes, a field never split across two words, the first
  field in the most significant bytes. A word is < 2^248 < r, so it is a field element as is. A
  no-op slot's words are 0. A segment's words, every slot's two as 32-byte big-endian integers
  (64 bytes, one sha256 block, a slot), hash to its one public input (`compute_records_hash`).

Signed values are stored with an offset (`value + 2^(bits-1)`) so every packed field is a
non-negative integer of its width. Deposits carry no id (the L1 queue is consumed in order, the
circuit proves the count) and the account's address (a new account's binding; the contract checks
it against its queue). Oracle updates are not slot records: a segment's oracle section carries
them (`verifier.oracle_section`).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from verifier.wire import (
    ACCOUNT_ID_BITS,
    AMOUNT_BITS,
    CLIENT_ID_BITS,
    INSTRUMENT_ID_BITS,
    KEY_ID_BITS,
    NONCE_BITS,
    ORDER_NONCE_BITS,
    PRICE_BITS,
    SIZE_BITS,
    TIMESTAMP_BITS,
)

WORD_BYTES = 31  # a 248-bit word is always < r (BN254's scalar field has 254 bits)
RECORD_WORDS = 2  # public words per slot: every record fits
MAX_RECORD_BYTES = WORD_BYTES * RECORD_WORDS
RECORDS_HASH_BITS = 253  # the low bits of the digest: always below r, so a field element as is


class MalformedRecord(ValueError):
    """Bytes or words that are not the record of any transaction."""


@dataclass(frozen=True)
class RecordField:
    """One field of a record: the wire attribute it comes from and its width."""

    name: str  # the wire model's attribute
    bits: int  # the value's range: unsigned [0, 2^bits), signed (-2^(bits-1), 2^(bits-1))
    signed: bool = False

    @property
    def width(self) -> int:
        """Bytes the field takes in a record."""
        return (self.bits + 7) // 8

    @property
    def offset(self) -> int:
        """Added before packing, so a signed value packs as a non-negative integer."""
        return 1 << (self.bits - 1) if self.signed else 0


@dataclass(frozen=True)
class FieldPlace:
    """Where a field sits in the record's words: word index and bit shift within the word."""

    field: RecordField
    word: int
    shift: int


@dataclass(frozen=True)
class RecordSpec:
    type: str  # the wire `type`
    code: int  # the record's first byte
    fields: tuple[RecordField, ...]

    @property
    def size(self) -> int:
        """Bytes of the record: type code and fields."""
        return 1 + sum(f.width for f in self.fields)

    def get_places(self) -> tuple[FieldPlace, ...]:
        """Greedy packing into words of WORD_BYTES, the type code first, no field split."""
        return get_places(self.fields, reserved=1)


@functools.lru_cache(maxsize=None)  # a handful of layouts, asked for on every record and order
def get_places(fields: tuple[RecordField, ...], reserved: int = 0) -> tuple[FieldPlace, ...]:
    """Pack fields greedily into words of WORD_BYTES bytes, first field in the most significant
    bytes, a field never split; `reserved` bytes at the top of word 0 are left out."""
    places = []
    word, used = 0, reserved
    for f in fields:
        if used + f.width > WORD_BYTES:
            word, used = word + 1, 0
        used += f.width
        places.append(FieldPlace(f, word, 8 * (WORD_BYTES - used)))
    return tuple(places)


ACCOUNT = ACCOUNT_ID_BITS  # 4 bytes in a record
ADDRESS_BITS = 160
TYPE_SHIFT = 8 * (WORD_BYTES - 1)  # the type code is the most significant byte of word 0

# One entry per transaction type that takes a slot, in code order (0 is the no-op slot). Fields in
# the order of the wire model's signing struct, signatures left out.
RECORDS: tuple[RecordSpec, ...] = (
    RecordSpec("deposit", 1, (RecordField("account", ACCOUNT), RecordField("amount", AMOUNT_BITS), RecordField("address", ADDRESS_BITS))),
    RecordSpec("withdraw", 2, (RecordField("account", ACCOUNT), RecordField("amount", AMOUNT_BITS), RecordField("nonce", NONCE_BITS))),
    RecordSpec(
        "transfer",
        3,
        (RecordField("sender", ACCOUNT), RecordField("recipient", ACCOUNT), RecordField("amount", AMOUNT_BITS), RecordField("nonce", NONCE_BITS)),
    ),
    RecordSpec(
        "perp_trade",
        4,
        (
            RecordField("taker", ACCOUNT),
            RecordField("maker", ACCOUNT),
            RecordField("market", INSTRUMENT_ID_BITS),
            RecordField("size", SIZE_BITS + 1, signed=True),
            RecordField("price", PRICE_BITS),
            RecordField("fee", AMOUNT_BITS),
            RecordField("taker_nonce", NONCE_BITS),
            RecordField("maker_nonce", NONCE_BITS),
        ),
    ),
    RecordSpec(
        "option_trade",
        5,
        (
            RecordField("buyer", ACCOUNT),
            RecordField("seller", ACCOUNT),
            RecordField("series", INSTRUMENT_ID_BITS),
            RecordField("quantity", SIZE_BITS),
            RecordField("premium", PRICE_BITS),
            RecordField("fee", AMOUNT_BITS),
            RecordField("buyer_nonce", NONCE_BITS),
            RecordField("seller_nonce", NONCE_BITS),
        ),
    ),
    RecordSpec(
        "settle_expired",
        6,
        (RecordField("account", ACCOUNT), RecordField("sender", ACCOUNT), RecordField("series", INSTRUMENT_ID_BITS), RecordField("nonce", NONCE_BITS)),
    ),
    RecordSpec(
        "liquidate",
        7,
        (
            RecordField("liquidator", ACCOUNT),
            RecordField("account", ACCOUNT),
            RecordField("instrument", INSTRUMENT_ID_BITS),
            RecordField("size", SIZE_BITS + 1, signed=True),
            RecordField("nonce", NONCE_BITS),
        ),
    ),
    # the address is the account's (proven), which the contract compares with the recovered signer;
    # the key id takes the whole second word
    RecordSpec(
        "register_key",
        8,
        (RecordField("account", ACCOUNT), RecordField("nonce", NONCE_BITS), RecordField("address", ADDRESS_BITS), RecordField("key_id", KEY_ID_BITS)),
    ),
    # a fill publishes the two order nonces: each names the order slot whose filled amount it
    # moves (nonce % ORDER_SLOTS), which is all a replay needs (the orders' limits are proven)
    RecordSpec(
        "fill",
        9,
        (
            RecordField("taker", ACCOUNT),
            RecordField("maker", ACCOUNT),
            RecordField("instrument", INSTRUMENT_ID_BITS),
            RecordField("size", SIZE_BITS + 1, signed=True),
            RecordField("price", PRICE_BITS),
            RecordField("fee", AMOUNT_BITS),
            RecordField("taker_nonce", ORDER_NONCE_BITS),
            RecordField("maker_nonce", ORDER_NONCE_BITS),
        ),
    ),
)

# What an order's L2 key signs is its fields packed as a record is (two words under a code no
# record uses, so an order's signature can never pass for a transaction's): `order_words`.
TIME_IN_FORCE_BITS = 2
ORDER_SPEC = RecordSpec(
    "order",
    0x80,
    (
        RecordField("account", ACCOUNT),
        RecordField("instrument", INSTRUMENT_ID_BITS),
        RecordField("is_buy", 1),
        RecordField("size", SIZE_BITS),
        RecordField("price", PRICE_BITS),
        RecordField("time_in_force", TIME_IN_FORCE_BITS),
        RecordField("expiry", TIMESTAMP_BITS),
        RecordField("client_id", CLIENT_ID_BITS),
        RecordField("nonce", ORDER_NONCE_BITS),
        RecordField("max_fee", PRICE_BITS),
    ),
)
RECORD_BY_TYPE: dict[str, RecordSpec] = {spec.type: spec for spec in RECORDS}
RECORD_BY_CODE: dict[int, RecordSpec] = {spec.code: spec for spec in RECORDS}


def _check_layouts() -> None:
    # every record fits the slot's words, and codes are distinct and non-zero (0 is the no-op)
    for spec in RECORDS:
        if max(place.word for place in spec.get_places()) >= RECORD_WORDS:
            raise AssertionError(f"record {spec.type} does not fit {RECORD_WORDS} words")
    if len(RECORD_BY_CODE) != len(RECORDS) or 0 in RECORD_BY_CODE:
        raise AssertionError("record codes must be distinct and non-zero")
    if max(place.word for place in ORDER_SPEC.get_places()) >= RECORD_WORDS or ORDER_SPEC.code in RECORD_BY_CODE:
        raise AssertionError("an order packs into the record words under a code of its own")


_check_layouts()


def _get_value(tx: Any, f: RecordField) -> int:
    value = getattr(tx, f.name)
    if f.name == "address":
        value = int(value, 16) if isinstance(value, str) else int.from_bytes(value, "big")
    # the wire model bounds every value; a record refuses anything outside its width anyway
    if value.__class__ is not int or not -f.offset <= value < (1 << f.bits) - f.offset:
        raise MalformedRecord(f"{f.name} = {value!r} does not fit {f.bits} bits")
    return value + f.offset


def get_record_spec(tx_type: str) -> RecordSpec:
    spec = RECORD_BY_TYPE.get(tx_type)
    # oracle updates travel in a segment's oracle section, not in a slot
    if spec is None:
        raise MalformedRecord(f"{tx_type} transactions have no slot record")
    return spec


def compute_record_fields(tx: Any) -> dict[str, int]:
    """The record's field values (signed ones as they are, addresses as integers)."""
    spec = get_record_spec(tx.type)
    return {f.name: _get_value(tx, f) - f.offset for f in spec.fields}


def encode_record(tx: Any) -> bytes:
    """The record's bytes: type code, then every field big-endian at its width."""
    spec = get_record_spec(tx.type)
    parts = [bytes([spec.code])]
    for f in spec.fields:
        parts.append(_get_value(tx, f).to_bytes(f.width, "big"))
    return b"".join(parts)


def _unpack(spec: RecordSpec, raw: Mapping[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": spec.type}
    for f in spec.fields:
        value = raw[f.name]
        # a packed value in its width, offset included (one record, one encoding)
        if not 0 <= value < (1 << f.bits):
            raise MalformedRecord(f"{spec.type}: {f.name} packed value {value} exceeds {f.bits} bits")
        out[f.name] = value - f.offset
        if f.name == "address":
            out[f.name] = "0x" + value.to_bytes(20, "big").hex()
    return out


def decode_record(data: bytes) -> tuple[dict[str, Any], int]:
    """One record from the start of `data`: its fields (`type` included, addresses as 0x-hex) and
    the bytes it took."""
    # a record starts with a known, non-zero type code
    if not data or data[0] not in RECORD_BY_CODE:
        raise MalformedRecord(f"unknown record type code {data[:1].hex() or '(end of data)'}")
    spec = RECORD_BY_CODE[data[0]]
    # the whole record is present
    if len(data) < spec.size:
        raise MalformedRecord(f"{spec.type} record needs {spec.size} bytes, {len(data)} left")
    raw, at = {}, 1
    for f in spec.fields:
        raw[f.name] = int.from_bytes(data[at : at + f.width], "big")
        at += f.width
    return _unpack(spec, raw), spec.size


def decode_records(data: bytes) -> list[dict[str, Any]]:
    """Every record of a concatenation."""
    out, at = [], 0
    while at < len(data):
        fields, used = decode_record(data[at:])
        out.append(fields)
        at += used
    return out


def compute_record_words(tx: Any | None) -> tuple[int, ...]:
    """The slot's public words (all 0 for a no-op slot, `tx` None)."""
    words = [0] * RECORD_WORDS
    if tx is None:
        return tuple(words)
    spec = get_record_spec(tx.type)
    words[0] = spec.code << TYPE_SHIFT
    for place in spec.get_places():
        words[place.word] |= _get_value(tx, place.field) << place.shift
    return tuple(words)


def pack_words(code: int, places: Sequence[FieldPlace], values: Mapping[str, int], what: str) -> tuple[int, ...]:
    """Unsigned values packed into RECORD_WORDS words at their places, `code` in the top byte of
    word 0: the form of what an L2 key signs that is not a record (an order, a cancel)."""
    words = [code << TYPE_SHIFT] + [0] * (RECORD_WORDS - 1)
    for place in places:
        value = int(values[place.field.name])
        # the wire model bounds every field; the packing refuses anything outside its width anyway
        if not 0 <= value < 1 << place.field.bits:
            raise MalformedRecord(f"{what} {place.field.name} = {value!r} does not fit {place.field.bits} bits")
        words[place.word] |= value << place.shift
    return tuple(words)


def compute_order_words(order: Mapping[str, int]) -> tuple[int, ...]:
    """An order's fields (`verifier.wire.ORDER_FIELDS`, `is_buy` as 0 or 1) packed into two words
    as a record's are: what its L2 key signs, under the domain tag (`verifier.l2auth`)."""
    return pack_words(ORDER_SPEC.code, ORDER_SPEC.get_places(), order, "order")


def compute_records_hash(records: Sequence[Sequence[int]]) -> int:
    """A segment's records as one field element: the low 253 bits of sha256 over every slot's words,
    each as 32 bytes big-endian (a slot is 64 bytes; no-op slots are zeros). The circuit proves this
    hash of its record words, and the contract computes it with the sha256 precompile over the words
    it rebuilds from calldata, so a whole segment costs one public input."""
    out = bytearray()
    for words in records:
        # a slot has exactly RECORD_WORDS words, each < 2^248 (what the circuit decomposes)
        if len(words) != RECORD_WORDS or any(w.__class__ is not int or not 0 <= w < 1 << (8 * WORD_BYTES) for w in words):
            raise MalformedRecord(f"a slot's record is {RECORD_WORDS} words of {WORD_BYTES} bytes, got {tuple(words)!r:.120}")
        for word in words:
            out += word.to_bytes(32, "big")
    return int.from_bytes(hashlib.sha256(out).digest(), "big") & ((1 << RECORDS_HASH_BITS) - 1)


def decode_record_words(words: tuple[int, ...] | list[int]) -> dict[str, Any] | None:
    """A slot's words back to its record fields; None for a no-op slot. Any bit outside the
    layout, an unknown code, or a value out of its width is malformed (one record, one word form)."""
    # a slot has exactly RECORD_WORDS words, each < 2^248
    if len(words) != RECORD_WORDS or any(w.__class__ is not int or not 0 <= w < 1 << (8 * WORD_BYTES) for w in words):
        raise MalformedRecord(f"a slot's record is {RECORD_WORDS} words of {WORD_BYTES} bytes, got {words!r:.120}")
    code = words[0] >> TYPE_SHIFT
    if code == 0:
        # a no-op slot carries nothing
        if any(words):
            raise MalformedRecord("a no-op slot has non-zero words")
        return None
    spec = RECORD_BY_CODE.get(code)
    if spec is None:
        raise MalformedRecord(f"unknown record type code {code}")
    raw, rebuilt = {}, [spec.code << TYPE_SHIFT] + [0] * (RECORD_WORDS - 1)
    for place in spec.get_places():
        value = (words[place.word] >> place.shift) & ((1 << (8 * place.field.width)) - 1)
        raw[place.field.name] = value
        rebuilt[place.word] |= value << place.shift
    # no stray bits between or after the fields
    if tuple(rebuilt) != tuple(words):
        raise MalformedRecord(f"{spec.type} record has bits outside its fields")
    return _unpack(spec, raw)


# --- Who signs ---------------------------------------------------------------------------------------

# Which account window (A or B, see verifier/slots.py) each signature field signs for, in the wire
# model's signature-field order; a settlement's sender is A when it settles its own position.
# L2 signatures are verified inside the proof against the window's key; a withdrawal's Ethereum
# signature is recovered by the contract and compared with the account's owner, a registration's
# with the address its record names ("record"). No signature is public data.
SIGNATURE_WINDOWS: dict[str, tuple[str, ...]] = {
    "withdraw": ("a",),
    "transfer": ("a",),
    "perp_trade": ("b", "a"),  # maker_signature, taker_signature
    "option_trade": ("a", "b"),  # buyer_signature, seller_signature
    "liquidate": ("a",),
    "settle_expired": ("b",),  # the sender: A instead when sender == account
    "register_key": ("record",),
    "fill": ("a", "b"),  # taker_signature, maker_signature: each over its own order
}


def get_signature_windows(tx: Any) -> tuple[str, ...]:
    """The window each of the transaction's signatures signs for, in signature-field order."""
    if tx.type == "settle_expired" and tx.sender == tx.account:
        return ("a",)
    return SIGNATURE_WINDOWS.get(tx.type, ())
