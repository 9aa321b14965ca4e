"""Security suite of the Groth16 verifier: every malformed input rejected for its own reason.

Proofs come from two implementations: our prover (tiny circuits, reproducible seeds) and snarkjs
(vectors in tests/data/groth16, made by tests/data/groth16/generate.py). Malformed input must raise
the specific `MalformedInput` subclass; a well-formed wrong proof must return False.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from prover import gadgets
from prover.groth16 import prove
from prover.r1cs import ConstraintSystem
from prover.setup import setup
from verifier.backends import BACKENDS
from verifier.curve import BLS12_381, BN254, Curve, Point
from verifier.groth16 import (
    IdentityNotAllowed,
    InputNotInField,
    MalformedInput,
    PointNotInSubgroup,
    PointNotOnCurve,
    PreparedVerifyingKey,
    Proof,
    VerifyingKey,
    WrongCurve,
    WrongInputCount,
    batch_verify,
    prepare_inputs,
    prepare_verifying_key,
    verify_proof,
)
from verifier.snarkjs import load_proof, load_public_inputs, load_verifying_key

DATA = Path(__file__).parent / "data" / "groth16"


# --- circuits and cases -----------------------------------------------------------------------------


def build_mul_add(x: int, y: int, a: int, curve: Curve = BN254) -> ConstraintSystem:
    """out = (x*y + a) * x with public a and out."""
    cs = ConstraintSystem(curve)
    xv, yv = cs.private(x), cs.private(y)
    av = cs.public_input(a)
    t = gadgets.mul(cs, xv, yv)
    out = cs.public_input((x * y + a) * x % curve.r)
    cs.enforce(t + av, xv, out)
    return cs


def build_square_mul(x: int, y: int, a: int, curve: Curve = BN254) -> ConstraintSystem:
    """out = x*x*y + a: another circuit with the same number of public inputs."""
    cs = ConstraintSystem(curve)
    xv, yv = cs.private(x), cs.private(y)
    av = cs.public_input(a)
    t = gadgets.mul(cs, xv, xv)
    out = cs.public_input((x * x * y + a) % curve.r)
    cs.enforce(t, yv, out - av)
    return cs


@dataclass
class Case:
    pvk: PreparedVerifyingKey
    proofs: list[Proof]
    inputs: list[list[int]]

    @property
    def curve(self) -> Curve:
        return self.pvk.curve


WITNESSES = [(3, 11, 5), (2, 7, 1), (10, 20, 30), (BN254.r - 1, 5, 9)]


def prepare_for(vk: Any, backend_name: str | None) -> PreparedVerifyingKey:
    """The key prepared on one backend; the test is skipped where that backend lacks the curve."""
    if backend_name is not None and not BACKENDS[backend_name].supports(vk.curve):
        pytest.skip(f"backend {backend_name} does not support {vk.curve.name}")
    return prepare_verifying_key(vk, backend_name)


def make_prover_case(curve: Curve, witnesses: list[tuple[int, int, int]], build: Any = build_mul_add,
                     backend_name: str | None = None) -> Case:
    circuits = [build(*w, curve=curve) for w in witnesses]
    pk = setup(circuits[0], seed=f"verifier-tests-{build.__name__}-{curve.name}")
    proofs = [prove(pk, cs, reproducible_seed=i) for i, cs in enumerate(circuits)]
    return Case(prepare_for(pk.vk, backend_name), proofs, [cs.public_inputs for cs in circuits])


def load_snarkjs_case(name: str, backend_name: str | None = None) -> Case:
    folder = DATA / name
    n = len(list(folder.glob("proof_*.json")))
    return Case(
        prepare_for(load_verifying_key(folder / "verification_key.json"), backend_name),
        [load_proof(folder / f"proof_{i}.json") for i in range(n)],
        [load_public_inputs(folder / f"public_{i}.json") for i in range(n)],
    )


@pytest.fixture(scope="module")
def prover_case(backend_name: str) -> Case:
    return make_prover_case(BN254, WITNESSES, backend_name=backend_name)


@pytest.fixture(scope="module")
def snarkjs_case(backend_name: str) -> Case:
    return load_snarkjs_case("mul_add", backend_name)


@pytest.fixture(scope="module", params=["prover", "snarkjs"])
def case(request: pytest.FixtureRequest, backend_name: str) -> Case:
    return request.getfixturevalue(f"{request.param}_case")


@pytest.fixture(scope="module")
def other_circuit_case(backend_name: str) -> Case:
    return make_prover_case(BN254, [(4, 6, 8)], build_square_mul, backend_name)


@pytest.fixture(scope="module")
def bls_case(backend_name: str) -> Case:
    return load_snarkjs_case("bls12381_mul_add", backend_name)


# --- point constructions ------------------------------------------------------------------------------


def compute_fq2_sqrt(curve: Curve, a: Any) -> Any | None:
    """A square root in Fq2 for q = 3 mod 4 (Adj and Rodriguez-Henriquez, algorithm 9), or None."""
    q = curve.q
    a1 = a ** ((q - 3) // 4)
    alpha = a1 * a1 * a
    x0 = a1 * a
    if alpha == curve.FQ2([q - 1, 0]):
        x = curve.FQ2([0, 1]) * x0
    else:
        x = (curve.FQ2.one() + alpha) ** ((q - 1) // 2) * x0
    return x if x * x == a else None


def make_twist_point_outside_subgroup(curve: Curve, seed: int) -> Point:
    """A point on the twist y^2 = x^3 + b2 from a random x, without cofactor clearing."""
    rng = random.Random(seed)
    b2 = curve.module.b2
    while True:
        x = curve.FQ2([rng.randrange(curve.q), rng.randrange(curve.q)])
        y = compute_fq2_sqrt(curve, x * x * x + b2)
        if y is not None:
            point = (x, y, curve.FQ2.one())
            if not curve.is_in_subgroup(point):
                return point


def make_g1_point_outside_subgroup(curve: Curve, seed: int) -> Point:
    """A point on E(Fq) from a random x, without cofactor clearing (needs a cofactor > 1)."""
    rng = random.Random(seed)
    q = curve.q
    while True:
        x = rng.randrange(q)
        rhs = (x**3 + int(curve.module.b)) % q
        y = pow(rhs, (q + 1) // 4, q)  # q = 3 mod 4
        if y * y % q == rhs:
            point = (curve.FQ(x), curve.FQ(y), curve.FQ.one())
            if not curve.is_in_subgroup(point):
                return point


def affine(curve: Curve, point: Point) -> Point:
    x, y = curve.normalize(point)
    return (x, y, x.one())


def mutate_coordinate(curve: Curve, point: Point, coordinate: str) -> Point:
    """Add 1 to one coordinate ("x", "y", "x0", "x1", "y0", "y1") of the affine point."""
    x, y, z = affine(curve, point)
    if coordinate in ("x", "y"):
        return (x + 1, y, z) if coordinate == "x" else (x, y + 1, z)
    target = x if coordinate[0] == "x" else y
    coeffs = [int(c) for c in target.coeffs]
    coeffs[int(coordinate[1])] += 1
    mutated = curve.FQ2(coeffs)
    return (mutated, y, z) if coordinate[0] == "x" else (x, mutated, z)


# --- valid proofs ------------------------------------------------------------------------------------


def test_valid_proofs_verify(case: Case) -> None:
    for proof, inputs in zip(case.proofs, case.inputs):
        assert verify_proof(case.pvk, proof, inputs) is True


def test_valid_bls12_381_proofs_verify(bls_case: Case) -> None:
    assert verify_proof(bls_case.pvk, bls_case.proofs[0], bls_case.inputs[0]) is True
    ours = make_prover_case(BLS12_381, [(3, 11, 5)], backend_name=bls_case.pvk.backend.name)
    assert verify_proof(ours.pvk, ours.proofs[0], ours.inputs[0]) is True


def test_prepared_key_caches_alpha_beta_and_negations(prover_case: Case) -> None:
    pvk, curve = prover_case.pvk, prover_case.curve
    backend = pvk.backend
    assert pvk.alpha_g1_beta_g2 == backend.pairing_product(curve, [(pvk.vk.alpha_g1, pvk.vk.beta_g2)])
    assert pvk.alpha_g1_beta_g2 != backend.pairing_product(curve, [(curve.G1, pvk.vk.beta_g2)])
    # the reference's GT value is py_ecc's own pairing
    if backend.name == "py_ecc":
        assert pvk.alpha_g1_beta_g2 == curve.pairing(pvk.vk.alpha_g1, pvk.vk.beta_g2)
    assert curve.is_inf(curve.add(pvk.gamma_g2_neg, pvk.vk.gamma_g2))
    assert curve.is_inf(curve.add(pvk.delta_g2_neg, pvk.vk.delta_g2))


def test_prepare_inputs_is_the_input_msm(prover_case: Case) -> None:
    pvk, curve = prover_case.pvk, prover_case.curve
    x1, x2 = prover_case.inputs[0]
    ic = pvk.vk.gamma_abc_g1
    expected = curve.add(curve.add(ic[0], curve.multiply(ic[1], x1)), curve.multiply(ic[2], x2))
    assert curve.eq(prepare_inputs(pvk, [x1, x2]), expected)


# --- malformed proofs: each rejected for its reason -------------------------------------------------

COORDINATES = [("a", "x"), ("a", "y"), ("b", "x0"), ("b", "x1"), ("b", "y0"), ("b", "y1"), ("c", "x"), ("c", "y")]


@pytest.mark.parametrize(("point", "coordinate"), COORDINATES, ids=[f"{p}.{c}" for p, c in COORDINATES])
def test_invalid_coordinate_mutated(case: Case, point: str, coordinate: str) -> None:
    proof = case.proofs[0]
    mutated = replace(proof, **{point: mutate_coordinate(case.curve, getattr(proof, point), coordinate)})
    with pytest.raises(PointNotOnCurve, match=f"proof.{point} is not on the G{2 if point == 'b' else 1} curve"):
        verify_proof(case.pvk, mutated, case.inputs[0])


@pytest.mark.parametrize("point", ["a", "b", "c"])
def test_invalid_identity(case: Case, point: str) -> None:
    identity = case.curve.Z2 if point == "b" else case.curve.Z1
    with pytest.raises(IdentityNotAllowed, match=f"proof.{point} is the point at infinity"):
        verify_proof(case.pvk, replace(case.proofs[0], **{point: identity}), case.inputs[0])


def test_invalid_b_on_twist_outside_subgroup(case: Case) -> None:
    curve = case.curve
    point = make_twist_point_outside_subgroup(curve, seed=1)
    # the point satisfies the twist's equation: only the subgroup check can catch it
    assert curve.is_on_curve_g2(point)
    with pytest.raises(PointNotInSubgroup, match="proof.b is on the curve but not in the order-r subgroup G2"):
        verify_proof(case.pvk, replace(case.proofs[0], b=point), case.inputs[0])


def test_invalid_bls12_381_a_outside_g1_subgroup(bls_case: Case) -> None:
    curve = bls_case.curve
    assert not curve.g1_cofactor_is_one and BN254.g1_cofactor_is_one
    point = make_g1_point_outside_subgroup(curve, seed=2)
    assert curve.is_on_curve_g1(point)
    with pytest.raises(PointNotInSubgroup, match="proof.a is on the curve but not in the order-r subgroup G1"):
        verify_proof(bls_case.pvk, replace(bls_case.proofs[0], a=point), bls_case.inputs[0])


def test_invalid_proof_of_another_curve(prover_case: Case, bls_case: Case) -> None:
    with pytest.raises(WrongCurve, match="proof is on bls12381, the key on bn128"):
        verify_proof(prover_case.pvk, bls_case.proofs[0], prover_case.inputs[0])
    # the same points relabelled as BN254 are still BLS12-381 field elements
    with pytest.raises(WrongCurve, match="proof.a is not a G1 point of bn128"):
        verify_proof(prover_case.pvk, replace(bls_case.proofs[0], curve=BN254), prover_case.inputs[0])


# --- malformed public inputs ----------------------------------------------------------------------------


def test_invalid_public_input_aliased_by_r(case: Case) -> None:
    inputs = list(case.inputs[0])
    inputs[0] += case.curve.r  # same residue: a verifier that reduced would accept it
    with pytest.raises(InputNotInField, match=r"public input 0 is not in \[0, r\)"):
        verify_proof(case.pvk, case.proofs[0], inputs)


@pytest.mark.parametrize("value", [-1, True, "5", 5.0], ids=["negative", "bool", "str", "float"])
def test_invalid_public_input_type_or_range(prover_case: Case, value: Any) -> None:
    with pytest.raises(InputNotInField, match="public input 1"):
        verify_proof(prover_case.pvk, prover_case.proofs[0], [prover_case.inputs[0][0], value])


@pytest.mark.parametrize("count", [0, 1, 3])
def test_invalid_public_input_count(prover_case: Case, count: int) -> None:
    with pytest.raises(WrongInputCount, match=f"expected 2 public inputs, got {count}"):
        verify_proof(prover_case.pvk, prover_case.proofs[0], [1] * count)


# --- malformed keys ------------------------------------------------------------------------------------


def test_invalid_key_point_outside_subgroup(prover_case: Case) -> None:
    vk = replace(prover_case.pvk.vk, delta_g2=make_twist_point_outside_subgroup(BN254, seed=3))
    with pytest.raises(PointNotInSubgroup, match="vk.delta_g2"):
        prepare_verifying_key(vk, prover_case.pvk.backend)


@pytest.mark.parametrize("field", ["alpha_g1", "beta_g2", "gamma_g2", "delta_g2"])
def test_invalid_key_identity(prover_case: Case, field: str) -> None:
    identity = BN254.Z1 if field.endswith("g1") else BN254.Z2
    with pytest.raises(IdentityNotAllowed, match=f"vk.{field} is the point at infinity"):
        prepare_verifying_key(replace(prover_case.pvk.vk, **{field: identity}), prover_case.pvk.backend)


def test_invalid_key_point_off_curve(prover_case: Case) -> None:
    vk = prover_case.pvk.vk
    ic = list(vk.gamma_abc_g1)
    ic[1] = mutate_coordinate(BN254, ic[1], "y")
    with pytest.raises(PointNotOnCurve, match=r"vk.gamma_abc_g1\[1\]"):
        prepare_verifying_key(replace(vk, gamma_abc_g1=tuple(ic)), prover_case.pvk.backend)


def test_key_allows_identity_in_gamma_abc(prover_case: Case) -> None:
    vk: VerifyingKey = prover_case.pvk.vk
    prepare_verifying_key(replace(vk, gamma_abc_g1=(vk.gamma_abc_g1[0], BN254.Z1, vk.gamma_abc_g1[2])), prover_case.pvk.backend)


# --- well-formed but wrong: False ---------------------------------------------------------------------


def test_invalid_a_and_c_swapped(case: Case) -> None:
    proof = case.proofs[0]
    assert verify_proof(case.pvk, replace(proof, a=proof.c, c=proof.a), case.inputs[0]) is False


@pytest.mark.parametrize("point", ["a", "b", "c"])
def test_invalid_point_negated(prover_case: Case, point: str) -> None:
    """-P is on the curve and in the subgroup: well-formed, so the pairing check must say no."""
    proof = prover_case.proofs[0]
    negated = replace(proof, **{point: BN254.neg(getattr(proof, point))})
    assert verify_proof(prover_case.pvk, negated, prover_case.inputs[0]) is False


def test_invalid_other_public_inputs(case: Case) -> None:
    assert verify_proof(case.pvk, case.proofs[0], case.inputs[1]) is False


def test_invalid_other_circuit_key(case: Case, other_circuit_case: Case) -> None:
    assert verify_proof(other_circuit_case.pvk, case.proofs[0], case.inputs[0]) is False
    assert verify_proof(case.pvk, other_circuit_case.proofs[0], other_circuit_case.inputs[0]) is False


def test_invalid_false_statement_cannot_be_proven(prover_case: Case) -> None:
    cs = build_mul_add(3, 11, 5)
    cs.enforce(cs.constant(1), cs.constant(1), cs.constant(2))  # 1 * 1 = 2: unsatisfiable
    with pytest.raises(ValueError, match="not satisfied"):
        prove(setup(cs, seed=9), cs, reproducible_seed=9)


# --- batch verification ----------------------------------------------------------------------------------


def test_batch_all_valid(case: Case) -> None:
    items = list(zip(case.proofs, case.inputs))
    assert batch_verify(case.pvk, items, rng=random.Random(1)) is True
    assert batch_verify(case.pvk, items) is True  # default: scalars from secrets


@pytest.mark.parametrize("bad_index", [0, 2])
def test_batch_one_invalid_of_four(prover_case: Case, bad_index: int) -> None:
    items = list(zip(prover_case.proofs, prover_case.inputs))
    proof, _ = items[bad_index]
    items[bad_index] = (proof, prover_case.inputs[(bad_index + 1) % 4])
    assert batch_verify(prover_case.pvk, items, rng=random.Random(2)) is False


def test_batch_of_one_equals_single(prover_case: Case) -> None:
    pvk, proof, inputs = prover_case.pvk, prover_case.proofs[0], prover_case.inputs
    assert batch_verify(pvk, [(proof, inputs[0])]) is verify_proof(pvk, proof, inputs[0]) is True
    assert batch_verify(pvk, [(proof, inputs[1])]) is verify_proof(pvk, proof, inputs[1]) is False


def test_batch_rejects_errors_that_cancel(prover_case: Case) -> None:
    """C_0 + D and C_1 - D: an unweighted sum would accept both; random weights must not."""
    pvk, curve = prover_case.pvk, prover_case.curve
    shift = curve.multiply(curve.G1, 12345)
    p0, p1 = prover_case.proofs[:2]
    items = [(replace(p0, c=curve.add(p0.c, shift)), prover_case.inputs[0]),
             (replace(p1, c=curve.add(p1.c, curve.neg(shift))), prover_case.inputs[1])]

    class SameScalar:
        def getrandbits(self, k: int) -> int:
            return 7

    assert batch_verify(pvk, items, rng=SameScalar()) is True  # why the scalars must be random
    assert batch_verify(pvk, items, rng=random.Random(3)) is False


def test_batch_malformed_item_raises_with_its_index(prover_case: Case) -> None:
    items = list(zip(prover_case.proofs, prover_case.inputs))
    items[3] = (items[3][0], [items[3][1][0] + BN254.r, items[3][1][1]])
    with pytest.raises(InputNotInField, match="batch item 3: public input 0"):
        batch_verify(prover_case.pvk, items)


def test_batch_empty_is_refused(prover_case: Case) -> None:
    with pytest.raises(MalformedInput, match="empty batch"):
        batch_verify(prover_case.pvk, [])


# --- fast arithmetic (verifier/pairing.py, verifier/jacobian.py) against py_ecc ------------------------

CURVES = [BN254, BLS12_381]


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_fast_miller_loop_matches_py_ecc(curve: Curve) -> None:
    rng = random.Random(7)
    pairs = [(curve.multiply(curve.G1, rng.randrange(1, curve.r)), curve.multiply(curve.G2, rng.randrange(1, curve.r)))
             for _ in range(2)]
    pairs += [(curve.Z1, curve.G2), (curve.neg(pairs[0][0]), pairs[1][1])]
    fast, reference = curve.multi_miller_loop(pairs), curve.multi_miller_loop_reference(pairs)
    assert curve.final_exponentiate(fast) == curve.final_exponentiate(reference)
    # bilinearity through the fast loop: e(aP, Q) * e(-P, aQ) == 1
    a = rng.randrange(1, curve.r)
    check = [(curve.multiply(curve.G1, a), curve.G2), (curve.neg(curve.G1), curve.multiply(curve.G2, a))]
    assert curve.final_exponentiate(curve.multi_miller_loop(check)) == curve.FQ12.one()


def get_subgroup_cases(curve: Curve, group: int) -> list[Point]:
    rng = random.Random(8)
    generator = curve.G1 if group == 1 else curve.G2
    inside = [curve.multiply(generator, rng.randrange(1, curve.r)) for _ in range(2)]
    if group == 1 and curve.g1_cofactor_is_one:
        return inside
    make = make_g1_point_outside_subgroup if group == 1 else make_twist_point_outside_subgroup
    outside = [make(curve, seed) for seed in range(2)]
    cofactor_part = curve.multiply(outside[0], curve.r)  # order divides the cofactor
    mixed = curve.add(inside[0], cofactor_part)  # a subgroup point plus a small-order component
    return inside + outside + [cofactor_part, mixed, curve.neg(inside[1])]


@pytest.mark.parametrize(("curve", "group"), [(BN254, 2), (BLS12_381, 1), (BLS12_381, 2)], ids=["bn128-G2", "bls12381-G1", "bls12381-G2"])
def test_fast_subgroup_check_matches_py_ecc(curve: Curve, group: int) -> None:
    cases = get_subgroup_cases(curve, group)
    assert [curve.is_in_subgroup_fast(p, group) for p in cases] == [curve.is_in_subgroup(p) for p in cases]
    assert [curve.is_in_subgroup(p) for p in cases].count(False) == 4


@pytest.mark.parametrize(("curve", "group"), [(BN254, 1), (BN254, 2), (BLS12_381, 1)], ids=["bn128-G1", "bn128-G2", "bls12381-G1"])
def test_fast_msm_matches_py_ecc(curve: Curve, group: int) -> None:
    rng = random.Random(9)
    generator = curve.G1 if group == 1 else curve.G2
    p = curve.multiply(generator, rng.randrange(1, curve.r))
    identity = curve.Z1 if group == 1 else curve.Z2
    cases = [
        ([p, curve.G1 if group == 1 else curve.G2], [rng.randrange(curve.r), rng.randrange(2**128)]),
        ([p, p], [5, 5]),  # equal points: the addition becomes a doubling
        ([p, curve.neg(p)], [3, 3]),  # opposite points: the sum is the identity
        ([p, identity], [0, 9]),
        ([], []),
    ]
    for points, scalars in cases:
        assert curve.eq(curve.msm(points, scalars, group), curve.msm_reference(points, scalars, group))


@pytest.fixture(params=["fast", "reference"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the verifier on py_ecc's plain arithmetic too: both must give the same answers."""
    if request.param == "reference":
        monkeypatch.setattr(Curve, "multi_miller_loop", Curve.multi_miller_loop_reference)
        monkeypatch.setattr(Curve, "msm", Curve.msm_reference)
        monkeypatch.setattr(Curve, "is_in_subgroup_fast", lambda self, p, group: self.is_in_subgroup(p))
    return request.param


def test_backends_agree_on_verification(backend: str, snarkjs_case: Case) -> None:
    pvk, proofs, inputs = snarkjs_case.pvk, snarkjs_case.proofs, snarkjs_case.inputs
    assert verify_proof(pvk, proofs[0], inputs[0]) is True
    assert verify_proof(pvk, proofs[0], inputs[1]) is False
    assert batch_verify(pvk, [(proofs[0], inputs[0]), (proofs[1], inputs[1])], rng=random.Random(4)) is True
    assert batch_verify(pvk, [(proofs[0], inputs[0]), (proofs[1], inputs[0])], rng=random.Random(4)) is False
    with pytest.raises(PointNotInSubgroup):
        verify_proof(pvk, replace(proofs[0], b=make_twist_point_outside_subgroup(BN254, seed=5)), inputs[0])


def test_fast_miller_loop_falls_back_on_a_degenerate_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """A vertical line (never met by subgroup points) hands the whole product to py_ecc."""
    from verifier import pairing

    def vertical(*args: Any) -> Any:
        raise pairing.DegenerateStep("vertical chord")

    monkeypatch.setattr(pairing, "compute_step", vertical)
    pairs = [(BN254.G1, BN254.G2)]
    assert BN254.multi_miller_loop(pairs) == BN254.multi_miller_loop_reference(pairs)
