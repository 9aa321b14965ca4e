"""Export a constraint system as circom's binary `.r1cs` and its witness as snarkjs's `.wtns`.

Both are iden3 "binfile" containers: a 4-byte magic, a u32 version, a u32 section count, then
sections of (u32 type, u64 byte length, content). Integers are little-endian; field elements are
`n8` bytes little-endian in normal (not Montgomery) form, with n8 the prime's size rounded up to
64-bit words (32 for the scalar fields of BN254 and BLS12-381).

The constraint system is read by duck typing, so any object with these attributes exports:
`curve` (a `verifier.curve.Curve`), `n_public` (public wires are 1..n_public; wire 0 is the
constant 1), `n_vars` (counting wire 0), `constraints` (list of (A, B, C) dicts wire -> coefficient
in [0, r)) and, for the witness, `witness` (list of n_vars ints, witness[0] == 1).

Our public wires are circom's public inputs: nPubOut = 0, nPubIn = n_public, nPrvIn = 0 (circom
counts only the main component's private *inputs* there; our private wires are all internal).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Protocol

R1CS_MAGIC = b"r1cs"
R1CS_VERSION = 1
R1CS_HEADER_SECTION = 1
R1CS_CONSTRAINTS_SECTION = 2
R1CS_WIRE_TO_LABEL_SECTION = 3

WTNS_MAGIC = b"wtns"
WTNS_VERSION = 2
WTNS_HEADER_SECTION = 1
WTNS_VALUES_SECTION = 2

LinearCombination = dict[int, int]


class ExportError(ValueError):
    """The constraint system or witness cannot be written as a valid circom/snarkjs file."""


class ConstraintSystemLike(Protocol):
    curve: Any
    n_public: int
    n_vars: int
    constraints: list[tuple[LinearCombination, LinearCombination, LinearCombination]]


def compute_n8(prime: int) -> int:
    """Bytes per field element: the prime's bit length rounded up to whole 64-bit words."""
    return ((prime.bit_length() - 1) // 64 + 1) * 8


def encode_field_element(value: int, n8: int) -> bytes:
    return value.to_bytes(n8, "little")


def encode_section(section_type: int, content: bytes) -> bytes:
    return struct.pack("<IQ", section_type, len(content)) + content


def encode_binfile(magic: bytes, version: int, sections: list[bytes]) -> bytes:
    return magic + struct.pack("<II", version, len(sections)) + b"".join(sections)


def encode_linear_combination(lc: LinearCombination, prime: int, n8: int, n_vars: int) -> bytes:
    """nTerms u32, then (wire u32, coefficient) sorted by wire as circom writes them; zeros dropped."""
    terms = sorted((wire, coeff) for wire, coeff in lc.items() if coeff != 0)
    out = [struct.pack("<I", len(terms))]
    for wire, coeff in terms:
        # a wire outside the system would make every tool read garbage
        if not 0 <= wire < n_vars:
            raise ExportError(f"constraint refers to wire {wire}, outside 0..{n_vars - 1}")
        # coefficients are canonical field elements
        if not 0 <= coeff < prime:
            raise ExportError(f"coefficient of wire {wire} is not in [0, r): {coeff}")
        out.append(struct.pack("<I", wire) + encode_field_element(coeff, n8))
    return b"".join(out)


def compute_r1cs_header(cs: ConstraintSystemLike, prime: int, n8: int) -> bytes:
    n_pub_out, n_pub_in, n_prv_in = 0, cs.n_public, 0
    n_labels = cs.n_vars  # one label per wire: the identity map
    return (
        struct.pack("<I", n8)
        + encode_field_element(prime, n8)
        + struct.pack("<IIIIQI", cs.n_vars, n_pub_out, n_pub_in, n_prv_in, n_labels, len(cs.constraints))
    )


def encode_r1cs(cs: ConstraintSystemLike) -> bytes:
    """The `.r1cs` bytes of a constraint system (header, constraints, wire-to-label map)."""
    prime = cs.curve.r
    n8 = compute_n8(prime)
    # wire 0 is the constant one and public wires follow it
    if not 0 <= cs.n_public < cs.n_vars:
        raise ExportError(f"n_public {cs.n_public} must be below n_vars {cs.n_vars}")
    constraints = b"".join(
        encode_linear_combination(lc, prime, n8, cs.n_vars)
        for constraint in cs.constraints
        for lc in constraint
    )
    wire_to_label = b"".join(struct.pack("<Q", wire) for wire in range(cs.n_vars))
    return encode_binfile(
        R1CS_MAGIC,
        R1CS_VERSION,
        [
            encode_section(R1CS_HEADER_SECTION, compute_r1cs_header(cs, prime, n8)),
            encode_section(R1CS_CONSTRAINTS_SECTION, constraints),
            encode_section(R1CS_WIRE_TO_LABEL_SECTION, wire_to_label),
        ],
    )


def encode_wtns(cs: Any) -> bytes:
    """The `.wtns` bytes of a constraint system's witness (header with the prime, then values)."""
    prime = cs.curve.r
    n8 = compute_n8(prime)
    witness = list(cs.witness)
    # the witness assigns every wire, and wire 0 is the constant one
    if len(witness) != cs.n_vars:
        raise ExportError(f"witness has {len(witness)} values for {cs.n_vars} wires")
    # wire 0 is the constant one the whole system is built on
    if witness[0] != 1:
        raise ExportError(f"witness[0] must be 1 (the constant wire), got {witness[0]}")
    for wire, value in enumerate(witness):
        # values are canonical field elements
        if not 0 <= value < prime:
            raise ExportError(f"witness value of wire {wire} is not in [0, r): {value}")
    header = struct.pack("<I", n8) + encode_field_element(prime, n8) + struct.pack("<I", len(witness))
    values = b"".join(encode_field_element(value, n8) for value in witness)
    return encode_binfile(
        WTNS_MAGIC,
        WTNS_VERSION,
        [encode_section(WTNS_HEADER_SECTION, header), encode_section(WTNS_VALUES_SECTION, values)],
    )


def write_r1cs(cs: ConstraintSystemLike, path: str | Path) -> None:
    Path(path).write_bytes(encode_r1cs(cs))


def write_wtns(cs: Any, path: str | Path) -> None:
    Path(path).write_bytes(encode_wtns(cs))
