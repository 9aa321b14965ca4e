"""EVM precompile encodings of curve points, and pure-Python mirrors of the BN254 precompiles.

EIP-196/197 (BN254, addresses 0x06 ecAdd, 0x07 ecMul, 0x08 ecPairing): an Fq element is 32 bytes
big-endian; G1 is x || y (64 bytes); G2 is x || y with each Fq2 coordinate written imaginary part
first (128 bytes); the identity is all zeros. EIP-2537 (BLS12-381, 0x0f pairing): an Fq element is
64 bytes (16 zero bytes, then 48), Fq2 real part first. The one place that orders an Fq2's halves
is `encode_fq2` / `decode_fq2`.

Decoders validate as the precompiles do: every coordinate below q, the point on its curve, G2 (and
G1 where the cofactor is not 1) in the order-r subgroup. Invalid input raises `MalformedInput`
(the precompile would fail and the calling contract revert).
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier.curve import BLS12_381, BN254, Curve, Point
from verifier.groth16 import MalformedInput, Proof, validate_point


class PrecompileInputError(MalformedInput):
    """Input bytes a precompile rejects before looking at points: bad length or field encoding."""

    reason = "bad_encoding"


@dataclass(frozen=True)
class PrecompileEncoding:
    curve: Curve
    element_size: int  # bytes per Fq element
    imaginary_first: bool  # order of an Fq2 element's halves
    empty_pairing_is_valid: bool  # EIP-197 returns 1 for no pairs; EIP-2537 fails

    @property
    def g1_size(self) -> int:
        return 2 * self.element_size

    @property
    def g2_size(self) -> int:
        return 4 * self.element_size

    @property
    def pair_size(self) -> int:
        return self.g1_size + self.g2_size


EIP197 = PrecompileEncoding(BN254, element_size=32, imaginary_first=True, empty_pairing_is_valid=True)
EIP2537 = PrecompileEncoding(BLS12_381, element_size=64, imaginary_first=False, empty_pairing_is_valid=False)

# EIP-1108 (Istanbul) gas prices of the BN254 precompiles
GAS_EC_ADD = 150
GAS_EC_MUL = 6000
GAS_PAIRING_BASE = 45000
GAS_PAIRING_PER_PAIR = 34000


# --- field elements ---------------------------------------------------------------------------------


def encode_fq(n: int, enc: PrecompileEncoding) -> bytes:
    return n.to_bytes(enc.element_size, "big")


def decode_fq(data: bytes, enc: PrecompileEncoding, where: str) -> int:
    n = int.from_bytes(data, "big")
    # EIP-2537 pads 48-byte elements to 64: the padding must be zero
    if enc.element_size == 64 and n >> (8 * 48):
        raise PrecompileInputError(f"{where}: invalid field element top bytes (must be zero)")
    # a canonical element of Fq
    if n >= enc.curve.q:
        raise PrecompileInputError(f"{where}: coordinate is not below the field modulus q")
    return n


def encode_fq2(value: object, enc: PrecompileEncoding) -> bytes:
    real, imaginary = (int(c) for c in value.coeffs)  # type: ignore[attr-defined]
    halves = (imaginary, real) if enc.imaginary_first else (real, imaginary)
    return b"".join(encode_fq(h, enc) for h in halves)


def decode_fq2(data: bytes, enc: PrecompileEncoding, where: str) -> object:
    size = enc.element_size
    first, second = decode_fq(data[:size], enc, where), decode_fq(data[size:], enc, where)
    real, imaginary = (second, first) if enc.imaginary_first else (first, second)
    return enc.curve.FQ2([real, imaginary])


# --- points -------------------------------------------------------------------------------------------


def encode_g1(point: Point, enc: PrecompileEncoding = EIP197) -> bytes:
    if enc.curve.is_inf(point):
        return bytes(enc.g1_size)
    x, y = enc.curve.normalize(point)
    return encode_fq(int(x), enc) + encode_fq(int(y), enc)


def encode_g2(point: Point, enc: PrecompileEncoding = EIP197) -> bytes:
    if enc.curve.is_inf(point):
        return bytes(enc.g2_size)
    x, y = enc.curve.normalize(point)
    return encode_fq2(x, enc) + encode_fq2(y, enc)


def decode_g1(data: bytes, enc: PrecompileEncoding = EIP197, where: str = "G1 point") -> Point:
    curve, size = enc.curve, enc.element_size
    # exactly one encoded point
    if len(data) != enc.g1_size:
        raise PrecompileInputError(f"{where}: expected {enc.g1_size} bytes, got {len(data)}")
    x, y = decode_fq(data[:size], enc, where), decode_fq(data[size:], enc, where)
    if (x, y) == (0, 0):
        return curve.Z1
    point = (curve.FQ(x), curve.FQ(y), curve.FQ.one())
    validate_point(curve, point, "G1", where, allow_identity=True)
    return point


def decode_g2(data: bytes, enc: PrecompileEncoding = EIP197, where: str = "G2 point") -> Point:
    curve, size = enc.curve, 2 * enc.element_size
    # exactly one encoded point
    if len(data) != enc.g2_size:
        raise PrecompileInputError(f"{where}: expected {enc.g2_size} bytes, got {len(data)}")
    x, y = decode_fq2(data[:size], enc, where), decode_fq2(data[size:], enc, where)
    if x == curve.FQ2.zero() and y == curve.FQ2.zero():
        return curve.Z2
    point = (x, y, curve.FQ2.one())
    validate_point(curve, point, "G2", where, allow_identity=True)
    return point


def encode_proof(proof: Proof) -> bytes:
    """A || B || C as a Solidity/Vyper verifier takes them (256 bytes on BN254)."""
    return encode_g1(proof.a) + encode_g2(proof.b) + encode_g1(proof.c)


# --- precompile mirrors ------------------------------------------------------------------------------


def pad_input(data: bytes, size: int) -> bytes:
    """The BN254 precompiles read missing input bytes as zero and ignore extra ones."""
    return data[:size].ljust(size, b"\x00")


def ec_add(data: bytes) -> bytes:
    """0x06: P1 + P2 for two 64-byte G1 points."""
    data = pad_input(data, 128)
    p1 = decode_g1(data[:64], EIP197, "ecAdd input point 1")
    p2 = decode_g1(data[64:], EIP197, "ecAdd input point 2")
    return encode_g1(BN254.add(p1, p2))


def ec_mul(data: bytes) -> bytes:
    """0x07: s * P for a 64-byte G1 point and a 32-byte scalar (any 256-bit value)."""
    data = pad_input(data, 96)
    point = decode_g1(data[:64], EIP197, "ecMul input point")
    scalar = int.from_bytes(data[64:], "big")
    return encode_g1(BN254.multiply(point, scalar % BN254.r))


def ec_pairing(data: bytes, enc: PrecompileEncoding = EIP197) -> bytes:
    """0x08 (and EIP-2537's pairing with enc=EIP2537): 1 iff prod e(P_i, Q_i) == 1, as a 32-byte word."""
    curve = enc.curve
    # whole (G1, G2) pairs only
    if len(data) % enc.pair_size != 0:
        raise PrecompileInputError(f"invalid input length: {len(data)} is not a multiple of {enc.pair_size}")
    # EIP-2537 refuses an empty pairing; EIP-197 defines it as true
    if len(data) == 0 and not enc.empty_pairing_is_valid:
        raise PrecompileInputError("invalid input length: no pairs")
    pairs = []
    for offset in range(0, len(data), enc.pair_size):
        index = offset // enc.pair_size
        p1 = decode_g1(data[offset : offset + enc.g1_size], enc, f"pair {index} G1")
        q2 = decode_g2(data[offset + enc.g1_size : offset + enc.pair_size], enc, f"pair {index} G2")
        pairs.append((p1, q2))
    is_one = curve.final_exponentiate(curve.multi_miller_loop(pairs)) == curve.FQ12.one()
    return int(is_one).to_bytes(32, "big")


def compute_pairing_gas(data: bytes) -> int:
    return GAS_PAIRING_BASE + GAS_PAIRING_PER_PAIR * (len(data) // EIP197.pair_size)
