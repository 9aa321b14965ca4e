"""Groth16 setup and prover: tiny circuits on BN254 and BLS12-381, checked with pairings."""

from __future__ import annotations

import random

import pytest

import verifier.groth16 as vg
from prover import gadgets as g
from prover.ec import get_arith
from prover.groth16 import InvalidWitness, get_randomisers, prove
from prover.r1cs import ConstraintSystem, UnsatisfiedConstraint, WitnessError
from prover.setup import (
    FORMAT_VERSION,
    MAGIC,
    InvalidProvingKey,
    ToxicWaste,
    check_setup,
    compute_toxic_waste_from_seed,
    load_proving_key,
    save_proving_key,
    setup,
)
from verifier.curve import BLS12_381, BN254


def margin_circuit(curve, collateral: int = 3_000, size: int = 3, price: int = 700, public_first: bool = True) -> ConstraintSystem:
    """collateral >= size * price, with a signed P&L and a max: a miniature of the rollup's checks."""
    cs = ConstraintSystem(curve)
    if public_first:
        p = cs.public_input(price, "price")
    c = cs.private(collateral, "collateral")
    s = cs.private(size, "size")
    if not public_first:
        p = cs.public_input(price, "price")
    g.range_check(cs, c, 12)
    g.range_check(cs, s, 4)
    notional = g.mul(cs, s, p)
    g.assert_le(cs, notional, c, 12)
    pnl = g.materialize(cs, c - notional - 2_000)  # negative here
    g.abs_value(cs, pnl, 12)
    cs.public_input(g.maximum(cs, [c, notional], 12).value, "max")
    cs.check()
    return cs


def check_groth16_equation(vk, proof, public: list[int]) -> bool:
    """e(A, B) == e(alpha, beta) e(sum IC_i x_i, gamma) e(C, delta), straight from the curve's pairings."""
    curve = vk.curve
    acc = vk.gamma_abc_g1[0]
    for x, point in zip(public, vk.gamma_abc_g1[1:]):
        acc = curve.add(acc, curve.multiply(point, x))
    f = (curve.miller_loop(proof.a, proof.b) * curve.miller_loop(curve.neg(vk.alpha_g1), vk.beta_g2)
         * curve.miller_loop(curve.neg(acc), vk.gamma_g2) * curve.miller_loop(curve.neg(proof.c), vk.delta_g2))
    return curve.final_exponentiate(f) == curve.FQ12.one()


def verify_with_b(vk, proof, public: list[int]) -> bool | None:
    """Helper B's verifier when it exists (None otherwise)."""
    if not (hasattr(vg, "prepare_verifying_key") and hasattr(vg, "verify_proof")):
        return None
    return vg.verify_proof(vg.prepare_verifying_key(vk), proof, public)


@pytest.fixture(scope="module")
def bn_case():
    cs = margin_circuit(BN254)
    pk = setup(cs, seed=42)
    return cs, pk


def test_prove_and_verify_bn254(bn_case):
    cs, pk = bn_case
    assert cs.n_constraints <= 64
    proof = prove(pk, cs)
    public = cs.public_inputs
    assert check_groth16_equation(pk.vk, proof, public)
    assert verify_with_b(pk.vk, proof, public) in (True, None)


def test_invalid_wrong_public_input_fails(bn_case):
    cs, pk = bn_case
    proof = prove(pk, cs, reproducible_seed=1)
    public = cs.public_inputs
    for i in range(len(public)):
        wrong = list(public)
        wrong[i] = (wrong[i] + 1) % BN254.r
        assert not check_groth16_equation(pk.vk, proof, wrong)
    wrong = [public[0] + 1, *public[1:]]
    assert verify_with_b(pk.vk, proof, wrong) in (False, None)


def test_prove_bls12_381():
    cs = margin_circuit(BLS12_381)
    pk = setup(cs, seed=7)
    assert pk.curve is BLS12_381
    proof = prove(pk, cs, reproducible_seed=3)
    assert proof.curve is BLS12_381
    assert check_groth16_equation(pk.vk, proof, cs.public_inputs)
    assert not check_groth16_equation(pk.vk, proof, [cs.public_inputs[0] + 1, *cs.public_inputs[1:]])
    check_setup(pk, rng_seed=2)


def test_publics_allocated_late_are_remapped_and_prove():
    cs = margin_circuit(BN254, public_first=False)
    assert cs.witness[1] == 700  # price is wire 1 though allocated third
    pk = setup(cs, seed=5)
    proof = prove(pk, cs.witness, reproducible_seed=2)  # a bare witness list works too
    assert verify_with_b(pk.vk, proof, cs.public_inputs) in (True, None)
    assert check_groth16_equation(pk.vk, proof, cs.public_inputs)


def test_reproducible_mode_and_fresh_randomness(bn_case):
    cs, pk = bn_case
    first = prove(pk, cs, reproducible_seed="test")
    again = prove(pk, cs, reproducible_seed="test")
    fresh = prove(pk, cs)
    seeded = prove(pk, cs, rng=random.Random(9))
    assert BN254.eq(first.a, again.a) and BN254.eq(first.b, again.b) and BN254.eq(first.c, again.c)
    assert not BN254.eq(first.a, fresh.a)
    assert not BN254.eq(seeded.a, first.a)
    r1, s1 = get_randomisers(BN254.r, None, None)
    r2, s2 = get_randomisers(BN254.r, None, None)
    assert 0 < r1 < BN254.r and (r1, s1) != (r2, s2)
    with pytest.raises(ValueError, match="not both"):
        get_randomisers(BN254.r, random.Random(1), 5)


def test_invalid_false_statement_cannot_be_proven(bn_case):
    cs, pk = bn_case
    # the gadget refuses while building the witness
    with pytest.raises(WitnessError, match="expected 2100 <= 1000"):
        margin_circuit(BN254, collateral=1_000)
    # a hand-made witness that breaks a constraint is refused by the prover
    bad = cs.witness
    bad[cs.n_public + 1] += 1  # collateral changed, its bits not
    with pytest.raises(UnsatisfiedConstraint):
        prove(pk, bad)


def test_invalid_witness_shape(bn_case):
    cs, pk = bn_case
    w = cs.witness
    with pytest.raises(InvalidWitness, match="wires"):
        prove(pk, w[:-1])
    with pytest.raises(InvalidWitness, match="constant"):
        prove(pk, [2, *w[1:]])
    with pytest.raises(InvalidWitness, match=r"\[0, r\)"):
        prove(pk, [1, w[1] + BN254.r, *w[2:]])
    with pytest.raises(InvalidWitness, match="bls12381"):
        prove(pk, margin_circuit(BLS12_381))


def test_setup_is_marked_unsafe_and_validates_toxic_waste(bn_case):
    cs, pk = bn_case
    assert "UNSAFE FOR PRODUCTION" in pk.warning
    assert "UNSAFE FOR PRODUCTION" in (setup.__doc__ or "")
    assert compute_toxic_waste_from_seed(1) == compute_toxic_waste_from_seed(1) != compute_toxic_waste_from_seed(2)
    with pytest.raises(ValueError, match="delta"):
        setup(cs, toxic_waste=ToxicWaste(5, 6, 7, 8, 0))
    with pytest.raises(ValueError, match="not both"):
        setup(cs, toxic_waste=ToxicWaste(5, 6, 7, 8, 9), seed=1)
    explicit = setup(cs, toxic_waste=compute_toxic_waste_from_seed(42))
    assert explicit.a_query == pk.a_query and explicit.h_query == pk.h_query


def test_check_setup_accepts_a_good_key(bn_case):
    _, pk = bn_case
    check_setup(pk, rng_seed=1)


@pytest.mark.parametrize("field_name,index,match", [
    ("a_query", 3, "a_query"),
    ("l_query", 2, "l_query"),
    ("h_query", 4, "powers of tau"),
    ("b_g1_query", 1, "G1 and G2"),
])
def test_invalid_check_setup_detects_a_tampered_point(bn_case, field_name, index, match):
    _, pk = bn_case
    g1 = get_arith(BN254, 1)
    query = list(getattr(pk, field_name))
    query[index] = g1.to_affine(g1.double(g1.add_mixed(None, query[index])))
    tampered = type(pk)(**{**pk.__dict__, field_name: query})
    with pytest.raises(InvalidProvingKey, match=match):
        check_setup(tampered, rng_seed=1)


def test_save_and_load_round_trip(bn_case, tmp_path):
    cs, pk = bn_case
    path = tmp_path / "pk.bin"
    size = save_proving_key(pk, path)
    assert size == path.stat().st_size
    loaded = load_proving_key(path)
    for name in ("beta_g1", "delta_g1", "a_query", "b_g1_query", "b_g2_query", "h_query", "l_query",
                 "constraints", "n_public", "n_vars", "domain_log_size", "transcript", "warning"):
        assert getattr(loaded, name) == getattr(pk, name), name
    assert loaded.curve is BN254
    for name in ("alpha_g1", "beta_g2", "gamma_g2", "delta_g2"):
        assert BN254.eq(getattr(loaded.vk, name), getattr(pk.vk, name))
    proof = prove(loaded, cs)
    assert check_groth16_equation(pk.vk, proof, cs.public_inputs)
    # a prover's load: no transcript, the same proof
    light = load_proving_key(path, with_transcript=False)
    assert light.transcript is None and light.a_query == pk.a_query and light.h_query == pk.h_query
    assert prove(light, cs, reproducible_seed=2) == prove(loaded, cs, reproducible_seed=2)
    with pytest.raises(InvalidProvingKey, match="no setup transcript"):
        check_setup(light)
    # skipping the transcript still notices a truncated or padded file
    data = path.read_bytes()
    for bad, match in ((data[:-10], "truncated"), (data + b"\x00", "trailing")):
        path.write_bytes(bad)
        with pytest.raises(InvalidProvingKey, match=match):
            load_proving_key(path, with_transcript=False)


def test_save_and_load_bls12_381(tmp_path):
    cs = margin_circuit(BLS12_381)
    pk = setup(cs, seed=1)
    save_proving_key(pk, tmp_path / "pk.bin")
    loaded = load_proving_key(tmp_path / "pk.bin")
    assert loaded.curve is BLS12_381 and loaded.b_g2_query == pk.b_g2_query and loaded.constraints == pk.constraints


def test_invalid_proving_key_files(bn_case, tmp_path):
    _, pk = bn_case
    path = tmp_path / "pk.bin"
    save_proving_key(pk, path)
    good = path.read_bytes()
    cases = {
        "bad magic": b"X" + good[1:],
        "version": good[:len(MAGIC)] + (FORMAT_VERSION + 1).to_bytes(2, "little") + good[len(MAGIC) + 2:],
        "truncated": good[:-10],
        "trailing": good + b"\x00",
    }
    # flip a byte inside the first G1 point (alpha): no longer on the curve
    header = len(MAGIC) + 3 + len(BN254.name) + 2 + len(pk.warning.encode()) + 9 + 4
    cases["not on the curve"] = good[:header + 5] + bytes([good[header + 5] ^ 1]) + good[header + 6:]
    for match, data in cases.items():
        path.write_bytes(data)
        with pytest.raises(InvalidProvingKey, match=match):
            load_proving_key(path)
