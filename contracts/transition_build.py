"""Compile the circuit-v3 settlement contracts (RollupV3.vy, TransitionVerifierV3.vy) for one shape.

A contract is specialised to the circuit's shape, as its key is.
Two modules are generated here from the Python definitions, so the contract cannot drift from
them (no layout or hash is typed into a Vyper source):

- `v3params.vy`: the curve moduli (py_ecc), the segment shape (slots, public inputs, the oracle
  section's words), the instrument table, the tree, the settlement bounds, and the oracle
  section's field places (`verifier.oracle_section`);
- `v3records.vy`: per record type (`verifier.pubdata.RECORDS`) its size and the byte where its
  second public word starts, and `get_struct_hash`: the EIP-712 struct hash of an
  Ethereum-signed transaction (a withdrawal, a key registration) rebuilt from the record's bytes
  (type hashes from `verifier.encoding.compute_encode_type`, fields in the signing order); the
  deposit, withdrawal and registration fields the contract reads; the domain's strings. The other
  types are signed with L2 keys, verified inside the proof: their records carry no signature.

A record is at most 64 bytes (a trade 38, a key registration 60), so the contract reads it as two 32-byte loads `w0` (at its first
byte) and `w1` (32 bytes on); a field is shifts and a mask of them.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from contracts.build import Compiled, compile_files
from contracts.groth16 import IC_PER_CHUNK
from verifier.curve import BN254
from verifier.encoding import (
    DOMAIN_NAME,
    DOMAIN_TYPE,
    DOMAIN_VERSION,
    compute_encode_type,
    get_eip712_types,
    get_signature_fields,
    get_signed_fields,
    is_l2_signed,
)
from verifier.keccak import keccak256
from verifier.oracle_section import ENTRY_PLACES, FLAG_FUNDING, FLAG_MARK, FLAG_RISK, FLAG_SETTLEMENT, HEADER_PLACES, RISK_FIELD, RISK_PER_WORD, OracleShape, get_risk_place
from verifier.pubdata import RECORDS, WORD_BYTES, RecordSpec
from verifier.transition import HEADER_WORDS, RECORDS_HASH_WORDS
from verifier.state_tree import TreeShape
from verifier.wire import TRANSACTION_TYPES

SOURCES = Path(__file__).parent / "vy"
V3_SOURCES = ("RollupV3.vy", "TransitionVerifierV3.vy")
SIGNATURE_BYTES = 64  # EIP-2098 compact: r, then s with the recovery bit (v - 27) as its top bit
SEGMENT_HEADER_BYTES = 32 + 1 + 1  # root after, oracle flag, transaction count
MAX_PROOFS = 32  # segments per settlement: the pairing takes MAX_PROOFS + 3 pairs
TAIL_BYTES = 32  # zero bytes closing the data, so every field is one 32-byte load
DEFAULT_MAX_SLOTS = 1024  # transactions per settlement the data's bound is sized for
ORACLE_SIGNED_FIELDS = ("timestamp", "previous_timestamp", "marks", "funding", "risk_arrays", "settlements")


@dataclass(frozen=True)
class SettlementShape:
    """What a v3 settlement contract is compiled for."""

    n_slots: int
    oracle: OracleShape
    tree: TreeShape
    max_segments: int = MAX_PROOFS
    max_slots: int = DEFAULT_MAX_SLOTS  # per settlement: bounds the calldata (Vyper reserves its memory)

    @property
    def n_public(self) -> int:
        return HEADER_WORDS + self.oracle.n_words + RECORDS_HASH_WORDS

    @property
    def max_data(self) -> int:
        """Bytes of one settlement's packed data: segment headers, oracle sections, records with
        their Ethereum signatures, the tail."""
        record = get_max_record_bytes()
        oracle = 32 * self.oracle.n_words + SIGNATURE_BYTES
        return self.max_segments * (SEGMENT_HEADER_BYTES + oracle) + self.max_slots * record + TAIL_BYTES


def count_l1_signatures(record_type: str) -> int:
    """The signatures the contract recovers for a record type: an Ethereum-signed transaction's
    (L2 signatures are verified in the proof; a deposit is authorised by the L1 queue)."""
    model = TRANSACTION_TYPES[record_type]
    return 0 if is_l2_signed(model) else len(get_signature_fields(model))


def get_max_record_bytes() -> int:
    """The most bytes one transaction takes in the settlement data: its record and signatures."""
    return max(spec.size + SIGNATURE_BYTES * count_l1_signatures(spec.type) for spec in RECORDS)


# --- v3params.vy -------------------------------------------------------------------------------------


def render_params(shape: SettlementShape) -> str:
    oracle = shape.oracle
    header = {p.field.name: p for p in HEADER_PLACES}
    entry = {p.field.name: p for p in ENTRY_PLACES}
    # the risk values of a word, slot by slot, have the shifts get_risk_place gives
    risk_shifts = [get_risk_place(k)[1] for k in range(RISK_PER_WORD)]
    lines: dict[str, int] = {
        "BN254_R": BN254.r,
        "BN254_Q": BN254.q,
        "N_SLOTS": shape.n_slots,
        "N_PUBLIC": shape.n_public,
        "ORACLE_WORDS": oracle.n_words,
        "N_INSTRUMENTS": len(oracle.table),
        "N_SCENARIOS": oracle.n_scenarios,
        "RISK_WORDS": oracle.risk_words,
        "RISK_PER_WORD": RISK_PER_WORD,
        "RISK_SHIFT_0": risk_shifts[0],
        "RISK_SHIFT_STEP": risk_shifts[0] - risk_shifts[1] if RISK_PER_WORD > 1 else 0,
        "RISK_MASK": (1 << (8 * RISK_FIELD.width)) - 1,
        "RISK_OFFSET": RISK_FIELD.offset,
        "HAS_UPDATE_SHIFT": header["has_update"].shift,
        "HAS_UPDATE_MASK": (1 << (8 * header["has_update"].field.width)) - 1,
        "TIMESTAMP_SHIFT": header["timestamp"].shift,
        "TIMESTAMP_MASK": (1 << (8 * header["timestamp"].field.width)) - 1,
        "PREVIOUS_TIMESTAMP_SHIFT": header["previous_timestamp"].shift,
        "PREVIOUS_TIMESTAMP_MASK": (1 << (8 * header["previous_timestamp"].field.width)) - 1,
        "FLAGS_SHIFT": entry["flags"].shift,
        "FLAGS_MASK": (1 << (8 * entry["flags"].field.width)) - 1,
        "MARK_SHIFT": entry["mark"].shift,
        "MARK_MASK": (1 << (8 * entry["mark"].field.width)) - 1,
        "FUNDING_SHIFT": entry["funding"].shift,
        "FUNDING_MASK": (1 << (8 * entry["funding"].field.width)) - 1,
        "FUNDING_OFFSET": entry["funding"].field.offset,
        "SETTLEMENT_SHIFT": entry["settlement"].shift,
        "SETTLEMENT_MASK": (1 << (8 * entry["settlement"].field.width)) - 1,
        "FLAG_MARK": FLAG_MARK,
        "FLAG_FUNDING": FLAG_FUNDING,
        "FLAG_RISK": FLAG_RISK,
        "FLAG_SETTLEMENT": FLAG_SETTLEMENT,
        "WORD_LIMIT": 1 << (8 * WORD_BYTES),  # a packed word is below 2^248
        "TREE_DEPTH": shape.tree.depth,
        "TREE_ARITY": shape.tree.arity,
        "TREE_DIGIT_BITS": shape.tree.digit_bits,
        "MAX_SEGMENTS": shape.max_segments,
        "MAX_DATA": shape.max_data,
        # the key's IC points in data contracts, as contracts.groth16.encode_verifying_key splits them
        "IC_PER_CHUNK": IC_PER_CHUNK,
        "IC_CHUNKS": -(-(shape.n_public + 1) // IC_PER_CHUNK),
        "IC_LAST_CHUNK_POINTS": shape.n_public + 1 - (-(-(shape.n_public + 1) // IC_PER_CHUNK) - 1) * IC_PER_CHUNK,
        "SEGMENT_HEADER_BYTES": SEGMENT_HEADER_BYTES,
        "SIGNATURE_BYTES": SIGNATURE_BYTES,
    }
    # a risk word holds evenly spaced values, as the shifts above assume
    if any(risk_shifts[k] != risk_shifts[0] - k * lines["RISK_SHIFT_STEP"] for k in range(RISK_PER_WORD)):
        raise AssertionError("risk values are not evenly spaced in their word")
    body = "".join(f"{name}: constant(uint256) = {value}\n" for name, value in lines.items())
    table = ", ".join(str(i) for i in oracle.table)
    body += f"TABLE: constant(uint256[{len(oracle.table)}]) = [{table}]  # instrument ids, sorted\n"
    return "# generated by contracts/transition_build.py: do not edit\n" + body


# --- v3records.vy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldAt:
    name: str
    offset: int  # byte of the record where the field starts (the type code is byte 0)
    width: int
    value_offset: int  # subtracted after unpacking (signed fields)


def get_field_bytes(spec: RecordSpec) -> dict[str, FieldAt]:
    out, at = {}, 1
    for f in spec.fields:
        out[f.name] = FieldAt(f.name, at, f.width, f.offset)
        at += f.width
    return out


def get_split(spec: RecordSpec) -> int:
    """Bytes of the record in its first public word (type code included): the greedy packing puts
    a prefix of the fields there, so the second word is the rest of the bytes."""
    places = spec.get_places()
    first = [p for p in places if p.word == 0]
    # word 0 holds a prefix of the fields, word 1 the rest, in order
    if [p.field for p in first] != list(spec.fields[: len(first)]):
        raise AssertionError(f"{spec.type}: the first word does not hold a prefix of the fields")
    return 1 + sum(p.field.width for p in first)


def render_field(f: FieldAt) -> str:
    """A Vyper expression for the field's value from w0 (record bytes 0..31) and w1 (32..63)."""
    end = f.offset + f.width
    mask = str((1 << (8 * f.width)) - 1)
    if end <= 32:
        expr = f"(w0 >> {8 * (32 - end)}) & {mask}"
    elif f.offset >= 32:
        expr = f"(w1 >> {8 * (64 - end)}) & {mask}"
    else:
        expr = f"((w0 << {8 * (end - 32)}) | (w1 >> {8 * (64 - end)})) & {mask}"
    if f.value_offset:
        # v + offset was packed: unsafe_sub gives v's two's complement, the int256 EIP-712 encodes
        return f"unsafe_sub({expr}, {f.value_offset})"
    return expr


LAYOUT_BITS = 16  # one record type's layout in RECORD_LAYOUT: 16 codes


def _pack(values: dict[int, int], bits: int) -> int:
    # every value fits its field
    if any(v >> bits for v in values.values()):
        raise AssertionError(f"a value does not fit {bits} bits")
    return sum(v << (bits * code) for code, v in values.items())


def render_records() -> str:
    out = ["# generated by contracts/transition_build.py from verifier/pubdata.py and verifier/encoding.py: do not edit\n"]
    layouts = {}
    for spec in RECORDS:
        size, split = spec.size, get_split(spec)
        n_sigs = count_l1_signatures(spec.type)
        # each public word is at most 31 bytes of the record, so the contract's words are below
        # 2^248 < r by construction (no check per record); RollupV3 recovers one signature for
        # exactly the withdrawals and registrations, none for the others
        if not (1 <= split <= 31 and 0 <= size - split <= 31 and n_sigs == int(spec.type in L1_SIGNED_TYPES)):
            raise AssertionError(f"{spec.type}: {size} bytes split at {split}, {n_sigs} signatures")
        # size and split (the contract derives its shifts from them)
        layouts[spec.code] = size | split << 8
        out.append(f"CODE_{spec.type.upper()}: constant(uint256) = {spec.code}\n")
    # every field of a record is at most 32 bytes, a record at most 64 (two loads); codes fit the packing
    if max(spec.size for spec in RECORDS) > 64 or (max(layouts) + 1) * LAYOUT_BITS > 256:
        raise AssertionError("a record longer than 64 bytes needs a third load; codes must fit RECORD_LAYOUT")
    out.append(f"LAYOUT_BITS: constant(uint256) = {LAYOUT_BITS}\n")
    out.append(f"RECORD_LAYOUT: constant(uint256) = {_pack(layouts, LAYOUT_BITS)}  # bits [{LAYOUT_BITS} code, +{LAYOUT_BITS}): size | split << 8\n")
    out.append(f'DOMAIN_TYPEHASH: constant(bytes32) = {_bytes32(keccak256(_render_domain_type().encode()))}  # keccak256("{_render_domain_type()}")\n')
    out.append(f'DOMAIN_NAME_HASH: constant(bytes32) = {_bytes32(keccak256(DOMAIN_NAME.encode()))}  # keccak256("{DOMAIN_NAME}")\n')
    out.append(f'DOMAIN_VERSION_HASH: constant(bytes32) = {_bytes32(keccak256(DOMAIN_VERSION.encode()))}  # keccak256("{DOMAIN_VERSION}")\n')
    oracle_model = TRANSACTION_TYPES["oracle_update"]
    oracle_types = get_eip712_types(oracle_model)
    # RollupV3._compute_oracle_digest encodes the update's fields in this order
    if tuple(get_signed_fields(oracle_model)) != ORACLE_SIGNED_FIELDS:
        raise AssertionError(f"OracleUpdate signs {get_signed_fields(oracle_model)}; RollupV3 encodes {ORACLE_SIGNED_FIELDS}")
    for name in sorted(oracle_types):
        encode = compute_encode_type(name, {n: oracle_types[n] for n in _closure(name, oracle_types)})
        out.append(f"{_snake(name).upper()}_TYPEHASH: constant(bytes32) = {_bytes32(keccak256(encode.encode()))}  # keccak256(\"{encode}\")\n")
    out.append("\n\n")
    out.append(_render_struct_hash())
    out.append(_render_getters())
    return "".join(out)


def _render_domain_type() -> str:
    return "EIP712Domain(" + ",".join(f"{f['type']} {f['name']}" for f in DOMAIN_TYPE) + ")"


def _closure(name: str, types_: dict) -> set[str]:
    seen, pending = set(), [name]
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending += [f["type"].removesuffix("[]") for f in types_[current] if f["type"].removesuffix("[]") in types_]
    return seen


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _bytes32(value: bytes) -> str:
    return "0x" + value.hex()


L1_SIGNED_TYPES = ("withdraw", "register_key")  # what RollupV3.settle recovers a signature for


def _render_struct_hash() -> str:
    lines = [
        "@internal\n@pure\n",
        "def get_struct_hash(code: uint256, w0: uint256, w1: uint256) -> bytes32:\n",
        '    """EIP-712 hashStruct of the signed transaction a record stands for, its fields unpacked from\n',
        '    the record\'s bytes (w0: bytes 0..31, w1: bytes 32..63), in the signing order."""\n',
    ]
    keyword = "if"
    for spec in RECORDS:
        if spec.type not in L1_SIGNED_TYPES:
            continue
        model = TRANSACTION_TYPES[spec.type]
        types_ = get_eip712_types(model)
        encode = compute_encode_type(model.__name__, types_)
        fields = get_field_bytes(spec)
        signed = get_signed_fields(model)
        # every signed field is in the record: the digest is rebuilt from public data alone
        missing = [n for n in signed if n not in fields]
        if missing:
            raise AssertionError(f"{spec.type}: signed fields {missing} are not in the record")
        lines.append(f"    {keyword} code == {spec.code}:\n")
        lines.append(f"        # keccak256(\"{encode}\")\n")
        args = ", ".join(render_field(fields[n]) for n in signed)
        lines.append(f"        return keccak256(abi_encode({_bytes32(keccak256(encode.encode()))}, {args}))\n")
        keyword = "elif"
    lines.append('    raise "record: this type carries no Ethereum signature"\n\n\n')
    return "".join(lines)


def _render_getters() -> str:
    deposit = get_field_bytes(next(s for s in RECORDS if s.type == "deposit"))
    withdraw = get_field_bytes(next(s for s in RECORDS if s.type == "withdraw"))
    register = get_field_bytes(next(s for s in RECORDS if s.type == "register_key"))
    withdraw_model = TRANSACTION_TYPES["withdraw"]
    encode = compute_encode_type(withdraw_model.__name__, get_eip712_types(withdraw_model))
    signed = get_signed_fields(withdraw_model)
    return (
        "@internal\n@pure\n"
        "def get_deposit(w0: uint256, w1: uint256) -> (uint256, uint256, uint256):\n"
        '    """A deposit record\'s (account, amount, address)."""\n'
        f"    return {render_field(deposit['account'])}, {render_field(deposit['amount'])}, {render_field(deposit['address'])}\n\n\n"
        "@internal\n@pure\n"
        "def get_withdrawal(w0: uint256, w1: uint256) -> (uint256, uint256, uint256):\n"
        '    """A withdraw record\'s (account, amount, nonce)."""\n'
        f"    return {render_field(withdraw['account'])}, {render_field(withdraw['amount'])}, {render_field(withdraw['nonce'])}\n\n\n"
        "@internal\n@pure\n"
        "def get_registered_address(w0: uint256, w1: uint256) -> uint256:\n"
        '    """A register_key record\'s address: the one its signature must recover."""\n'
        f"    return {render_field(register['address'])}\n\n\n"
        "@internal\n@pure\n"
        f"def get_withdraw_struct_hash({', '.join(f'{n}: uint256' for n in signed)}) -> bytes32:\n"
        '    """hashStruct of an L2 Withdraw from its fields (a forced withdrawal\'s request)."""\n'
        f"    # keccak256(\"{encode}\")\n"
        f"    return keccak256(abi_encode({_bytes32(keccak256(encode.encode()))}, {', '.join(signed)}))\n"
    )


# --- compiling ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _compile(name: str, params: str, records: str, digest: str) -> Compiled:
    files = {p.name: p.read_text() for p in sorted(SOURCES.glob("*V3.vy"))}
    return compile_files(name, {**files, "v3params.vy": params, "v3records.vy": records})


def compile_v3(name: str, shape: SettlementShape) -> Compiled:
    """Compile `{name}.vy` (RollupV3 or TransitionVerifierV3) for `shape`; cached per process."""
    params, records = render_params(shape), render_records()
    sources = sorted(SOURCES.glob("*V3.vy"))
    digest = hashlib.sha256(params.encode() + records.encode() + b"".join(p.read_bytes() for p in sources)).hexdigest()
    return _compile(name, params, records, digest)
