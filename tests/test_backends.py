"""Every backend (verifier/backends.py, prover/backends.py) against py_ecc and the EVM precompile vectors.

One suite, run once per installed backend (the `backend_name` fixture): the reference must pass it
as the native one does. The vectors are go-ethereum's (/work/shared/vectors/evm-precompiles or
$EVM_VECTORS_DIR); a native backend is trusted only once these pass.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from prover.backends import get_prover_backend
from prover.ec import get_arith
from test_evm_vectors import params
from test_groth16_verifier import make_twist_point_outside_subgroup
from verifier import backends
from verifier.backends import BackendError, get_backend, set_default_backend
from verifier.curve import BLS12_381, BN254
from verifier.evm import decode_g1, decode_g2, encode_g1

R = BN254.r


def random_points(group: int, count: int, seed: int) -> list[Any]:
    rng = random.Random(seed)
    base = BN254.G1 if group == 1 else BN254.G2
    return [BN254.multiply(base, rng.randrange(1, R)) for _ in range(count)]


def msm_cases(group: int) -> list[tuple[list[Any], list[int]]]:
    p, q = random_points(group, 2, seed=group)
    identity = BN254.Z1 if group == 1 else BN254.Z2
    rng = random.Random(7)
    many = random_points(group, 6, seed=10 + group)
    return [
        ([p, q], [3, 5]),
        ([p, q], [R - 1, 1]),  # the largest scalar
        ([p, p], [5, 5]),  # equal points: an addition that is a doubling
        ([p, BN254.neg(p)], [3, 3]),  # opposite points: the identity
        ([p, identity], [0, 9]),
        ([p], [0]),
        ([], []),
        (many, [rng.randrange(R) for _ in many]),
        (many, [0, 1, 1, 2, 1 << 64, R - 2]),  # a witness's shape: bits, small values, negatives
    ]


@pytest.mark.parametrize("group", [1, 2])
def test_prover_msm_matches_py_ecc(backend_name: str, group: int) -> None:
    backend = get_prover_backend(backend_name)
    arith = get_arith(BN254, group)
    for points, scalars in msm_cases(group):
        bases = backend.prepare(arith, [arith.from_py_ecc(p) for p in points])
        expected = BN254.msm_reference(points, scalars, group)
        assert BN254.eq(arith.to_py_ecc(backend.msm(arith, bases, scalars)), expected)


def test_verifier_msm_matches_py_ecc(backend_name: str) -> None:
    backend = get_backend(backend_name)
    for points, scalars in msm_cases(1):
        expected = BN254.msm_reference(points, scalars)
        assert BN254.eq(backend.msm_g1(BN254, backend.prepare_g1(BN254, points), scalars), expected)


@pytest.mark.parametrize("vector", params("bn256Add.json"))
def test_ec_add_vectors(backend_name: str, vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["Input"]).ljust(128, b"\x00")[:128]
    points = [decode_g1(data[:64]), decode_g1(data[64:])]
    backend = get_backend(backend_name)
    assert encode_g1(backend.msm_g1(BN254, backend.prepare_g1(BN254, points), [1, 1])).hex() == vector["Expected"]


@pytest.mark.parametrize("vector", params("bn256ScalarMul.json"))
def test_ec_mul_vectors(backend_name: str, vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["Input"]).ljust(96, b"\x00")[:96]
    # G1 has order r: the precompile's 256-bit scalar acts as its residue
    scalar = int.from_bytes(data[64:], "big") % R
    backend = get_backend(backend_name)
    assert encode_g1(backend.msm_g1(BN254, [decode_g1(data[:64])], [scalar])).hex() == vector["Expected"]


@pytest.mark.parametrize("vector", params("bn256Pairing.json"))
def test_pairing_vectors(backend_name: str, vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["Input"])
    pairs = [(decode_g1(data[i:i + 64]), decode_g2(data[i + 64:i + 192])) for i in range(0, len(data), 192)]
    backend = get_backend(backend_name)
    is_one = backend.pairing_product(BN254, pairs) == backend.pairing_product(BN254, [])
    assert int(is_one).to_bytes(32, "big").hex() == vector["Expected"]


def test_pairing_is_bilinear(backend_name: str) -> None:
    backend = get_backend(backend_name)
    a, b = 0x1234567, 0x7654321
    base = backend.pairing_product(BN254, [(BN254.G1, BN254.G2)])
    lhs = backend.pairing_product(BN254, [(BN254.multiply(BN254.G1, a), BN254.multiply(BN254.G2, b))])
    assert lhs == base ** (a * b) and lhs != base ** (a * b + 1)
    assert base ** R == backend.pairing_product(BN254, [])  # GT has order r


def test_subgroup_checks(backend_name: str) -> None:
    backend = get_backend(backend_name)
    assert backend.is_in_subgroup(BN254, BN254.multiply(BN254.G2, 12345), 2)
    assert backend.is_in_subgroup(BN254, BN254.multiply(BN254.G1, 12345), 1)
    assert not backend.is_in_subgroup(BN254, make_twist_point_outside_subgroup(BN254, seed=9), 2)


def test_same_proof_whatever_the_backend(backend_name: str) -> None:
    """With fixed randomisers, the proof is a function of key and witness alone."""
    from prover.groth16 import prove
    from prover.setup import setup
    from test_groth16_verifier import build_mul_add

    cs = build_mul_add(3, 11, 5)
    pk = setup(cs, seed="backend-proof")
    assert prove(pk, cs, reproducible_seed=1, backend=backend_name) == prove(pk, cs, reproducible_seed=1, backend="py_ecc")


# --- choosing a backend ----------------------------------------------------------------------------------


def test_invalid_backend_name() -> None:
    with pytest.raises(BackendError, match="unknown backend 'gpu'; choose one of: py_ecc, mcl"):
        get_backend("gpu")


def test_explicit_backend_must_support_the_curve() -> None:
    if not backends.is_installed("mcl"):
        pytest.skip("mcl is not installed")
    with pytest.raises(BackendError, match="backend mcl does not support bls12381"):
        get_backend("mcl", BLS12_381)


def test_default_is_the_fastest_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    assert get_backend().name == backends.list_installed()[0]
    assert get_backend(curve=BLS12_381).name == "py_ecc"  # the automatic choice falls back by curve


def test_environment_and_setting_choose_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backends.ENV_VAR, "py_ecc")
    assert get_backend().name == "py_ecc"
    monkeypatch.setenv(backends.ENV_VAR, "gpu")
    with pytest.raises(BackendError, match="unknown backend 'gpu'"):
        get_backend()
    monkeypatch.delenv(backends.ENV_VAR)
    try:
        set_default_backend("py_ecc")
        assert get_backend().name == "py_ecc" and get_prover_backend().name == "py_ecc"
    finally:
        set_default_backend(None)


def test_invalid_backend_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A named backend that does not load is an error naming the reason, never a silent fallback."""
    from verifier import mcl

    monkeypatch.setattr(mcl, "_LOADED", None)
    monkeypatch.setattr(mcl, "_ERROR", "mclbn256 is not importable: ModuleNotFoundError")
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    with pytest.raises(BackendError, match="backend mcl is not available: mclbn256 is not importable"):
        get_backend("mcl")
    assert get_backend().name == "py_ecc"


@pytest.mark.parametrize("group", [1, 2])
def test_mcl_msm_in_chunks(monkeypatch: pytest.MonkeyPatch, group: int) -> None:
    """Large MSMs go to mcl in chunks (its mulVec overflows the stack beyond about 2^17 points):
    the chunks' sums must add up to the whole, whatever the split."""
    if not backends.is_installed("mcl"):
        pytest.skip("mcl is not installed")
    from verifier import mcl

    backend = get_prover_backend("mcl")
    arith = get_arith(BN254, group)
    points, scalars = msm_cases(group)[-2]
    bases = backend.prepare(arith, [arith.from_py_ecc(p) for p in points])
    expected = BN254.msm_reference(points, scalars, group)
    for chunk in (1, 2, 4, 5, 6):
        monkeypatch.setitem(mcl._MSM_CHUNK, mcl.G1Struct if group == 1 else mcl.G2Struct, chunk)
        assert BN254.eq(arith.to_py_ecc(backend.msm(arith, bases, scalars)), expected), chunk
