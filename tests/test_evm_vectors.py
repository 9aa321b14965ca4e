"""Our precompile mirrors and point encodings against go-ethereum's precompile test vectors.

Vectors: /work/shared/vectors/evm-precompiles (or $EVM_VECTORS_DIR). Every BN254 vector runs
(add, mul, pairing: about 3 s). Of the 106 EIP-2537 BLS12-381 pairing vectors a representative ten
run by default; RUN_ALL_PAIRING_VECTORS=1 runs them all (about 15 s more).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from verifier.curve import BLS12_381, BN254
from verifier.evm import (
    EIP197,
    EIP2537,
    GAS_EC_ADD,
    GAS_EC_MUL,
    MalformedInput,
    PrecompileInputError,
    compute_pairing_gas,
    decode_g1,
    decode_g2,
    ec_add,
    ec_mul,
    ec_pairing,
    encode_g1,
    encode_g2,
)
from verifier.groth16 import PointNotInSubgroup, PointNotOnCurve

VECTORS = Path(os.environ.get("EVM_VECTORS_DIR", "/work/shared/vectors/evm-precompiles"))
RUN_ALL = os.environ.get("RUN_ALL_PAIRING_VECTORS") == "1"
BLS_SUBSET = {
    "bls_pairing_e(2*G1,3*G2)=e(6*G1,G2)", "bls_pairing_e(2*G1,3*G2)=e(5*G1,G2)",
    "bls_pairing_e(G1,0)=e(0,G2)", "bls_pairing_non-degeneracy", "bls_pairing_bilinearity",
    "bls_pairing_e(G1,-G2)=e(-G1,G2)", "bls_pairing_e(aG1,bG2)=e(abG1,G2)",
    "matter_pairing_0", "matter_pairing_16", "matter_pairing_32",
}


def load_vectors(name: str) -> list[dict[str, Any]]:
    path = VECTORS / name
    if not path.is_file():
        return []
    return json.loads(path.read_text())


def params(name: str, keep: Any = lambda v: True) -> list[Any]:
    vectors = load_vectors(name)
    if not vectors:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{VECTORS / name} not found"))]
    return [
        pytest.param(v, id=v["Name"], marks=() if RUN_ALL or keep(v) else pytest.mark.skip(reason="slow: RUN_ALL_PAIRING_VECTORS=1"))
        for v in vectors
    ]


@pytest.mark.parametrize("vector", params("bn256Add.json"))
def test_ec_add_vectors(vector: dict[str, Any]) -> None:
    assert ec_add(bytes.fromhex(vector["Input"])).hex() == vector["Expected"]
    assert GAS_EC_ADD == vector["Gas"]


@pytest.mark.parametrize("vector", params("bn256ScalarMul.json"))
def test_ec_mul_vectors(vector: dict[str, Any]) -> None:
    assert ec_mul(bytes.fromhex(vector["Input"])).hex() == vector["Expected"]
    assert GAS_EC_MUL == vector["Gas"]


@pytest.mark.parametrize("vector", params("bn256Pairing.json"))
def test_ec_pairing_vectors(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["Input"])
    assert ec_pairing(data).hex() == vector["Expected"]
    assert compute_pairing_gas(data) == vector["Gas"]


@pytest.mark.parametrize("vector", params("blsPairing.json", lambda v: v["Name"] in BLS_SUBSET))
def test_bls12_381_pairing_vectors(vector: dict[str, Any]) -> None:
    assert ec_pairing(bytes.fromhex(vector["Input"]), EIP2537).hex() == vector["Expected"]


FAIL_REASONS = {  # go-ethereum's error text -> our error class
    "invalid input length": PrecompileInputError,
    "invalid fp.Element encoding": PrecompileInputError,
    "invalid field element top bytes": PrecompileInputError,
    "invalid point: not on curve": PointNotOnCurve,
    "g1 point is not on correct subgroup": PointNotInSubgroup,
    "g2 point is not on correct subgroup": PointNotInSubgroup,
}


@pytest.mark.parametrize("vector", params("fail-blsPairing.json"))
def test_invalid_bls12_381_pairing_vectors(vector: dict[str, Any]) -> None:
    with pytest.raises(FAIL_REASONS[vector["ExpectedError"]]):
        ec_pairing(bytes.fromhex(vector["Input"]), EIP2537)


# --- BN254 failures (the folder has no fail-bn256 files: built here) ------------------------------------


def test_g2_encoding_puts_the_imaginary_part_first() -> None:
    x, y = BN254.normalize(BN254.G2)
    encoded = encode_g2(BN254.G2)
    assert encoded[:32] == int(x.coeffs[1]).to_bytes(32, "big")  # x1, the imaginary part
    assert encoded[32:64] == int(x.coeffs[0]).to_bytes(32, "big")
    assert encoded[64:96] == int(y.coeffs[1]).to_bytes(32, "big")
    assert BN254.eq(decode_g2(encoded), BN254.G2)
    # EIP-2537 keeps the real part first
    bx, _ = BLS12_381.normalize(BLS12_381.G2)
    assert encode_g2(BLS12_381.G2, EIP2537)[:64] == int(bx.coeffs[0]).to_bytes(64, "big")


def test_identity_encodes_as_zeros() -> None:
    assert encode_g1(BN254.Z1) == bytes(64) and encode_g2(BN254.Z2) == bytes(128)
    assert BN254.is_inf(decode_g1(bytes(64))) and BN254.is_inf(decode_g2(bytes(128)))


def test_invalid_ec_add_coordinate_not_below_q() -> None:
    data = BN254.q.to_bytes(32, "big") + bytes(32) + encode_g1(BN254.G1)
    with pytest.raises(PrecompileInputError, match="ecAdd input point 1: coordinate is not below"):
        ec_add(data)


def test_invalid_ec_mul_point_not_on_curve() -> None:
    data = (1).to_bytes(32, "big") + (3).to_bytes(32, "big") + (2).to_bytes(32, "big")
    with pytest.raises(PointNotOnCurve, match="ecMul input point"):
        ec_mul(data)


def test_invalid_pairing_length() -> None:
    with pytest.raises(PrecompileInputError, match="invalid input length: 191"):
        ec_pairing(bytes(191))


def test_invalid_pairing_g2_outside_subgroup() -> None:
    from test_groth16_verifier import make_twist_point_outside_subgroup  # tests/ is on sys.path under pytest

    point = make_twist_point_outside_subgroup(BN254, seed=4)
    data = encode_g1(BN254.G1) + encode_g2(point)
    with pytest.raises(PointNotInSubgroup, match="pair 0 G2"):
        ec_pairing(data)


def test_invalid_pairing_g2_halves_in_snarkjs_order() -> None:
    """The classic bug: G2 written real part first. Not on the twist, so the precompile fails."""
    x, y = BN254.normalize(BN254.G2)
    wrong = b"".join(int(c).to_bytes(32, "big") for c in (*x.coeffs, *y.coeffs))
    with pytest.raises(MalformedInput):
        ec_pairing(encode_g1(BN254.G1) + wrong)


def test_pairing_of_a_groth16_like_equation() -> None:
    """e(2G1, 3G2) * e(-6G1, G2) == 1 through the byte interface."""
    data = (encode_g1(BN254.multiply(BN254.G1, 2)) + encode_g2(BN254.multiply(BN254.G2, 3))
            + encode_g1(BN254.neg(BN254.multiply(BN254.G1, 6))) + encode_g2(BN254.G2))
    assert ec_pairing(data) == (1).to_bytes(32, "big")
    assert EIP197.pair_size == 192 and EIP2537.pair_size == 384


def test_encode_proof_layout() -> None:
    """A (64 bytes) || B (128, imaginary parts first) || C (64), each decodable on its own."""
    from verifier.evm import encode_proof
    from verifier.groth16 import Proof

    a, b, c = BN254.multiply(BN254.G1, 3), BN254.multiply(BN254.G2, 5), BN254.multiply(BN254.G1, 7)
    data = encode_proof(Proof(a, b, c))
    assert len(data) == 256
    assert BN254.eq(decode_g1(data[:64]), a) and BN254.eq(decode_g2(data[64:192]), b) and BN254.eq(decode_g1(data[192:]), c)
