"""Groth16 verification (arkworks-style): data structures, prepared key, input preparation, checks.

Data structures carry the paper's names. Malformed input raises `MalformedInput` (a ValueError)
with a specific reason; a well-formed proof that does not verify returns False.

The check, for public inputs x_1..x_n and L = IC_0 + sum_j x_j IC_j:
    e(A, B) * e(L, -gamma) * e(C, -delta) == e(alpha, beta)
e(alpha, beta) is computed once per key. A batch of k proofs of one circuit is checked with random
128-bit scalars r_i in one equation (one final exponentiation):
    prod_i e(r_i A_i, B_i) * e(sum_i r_i L_i, -gamma) * e(sum_i r_i C_i, -delta)
        == e(alpha, beta) ^ (sum_i r_i)
Raising the cached GT value to sum r_i (about 7 ms) is cheaper than one more Miller loop for
alpha-beta, so a batch costs k + 2 Miller loops (sharing one accumulator, verifier/pairing.py), one
GT exponentiation and one final exponentiation; sum_i r_i L_i is a single multi-scalar
multiplication over the combined inputs.

The multi-scalar multiplications, pairing products and subgroup checks run on a backend
(verifier/backends.py: py_ecc, the reference, or mcl), chosen when the key is prepared; every
input and point check here runs the same whatever the backend.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from verifier.backends import REFERENCE, Backend, get_backend
from verifier.curve import BN254, Curve, Point


@dataclass(frozen=True)
class Proof:
    a: Point  # G1
    b: Point  # G2
    c: Point  # G1
    curve: Curve = BN254


@dataclass(frozen=True)
class VerifyingKey:
    alpha_g1: Point
    beta_g2: Point
    gamma_g2: Point
    delta_g2: Point
    gamma_abc_g1: tuple[Point, ...]  # len == number of public inputs + 1
    curve: Curve = BN254

    @property
    def n_public(self) -> int:
        return len(self.gamma_abc_g1) - 1


# --- errors -------------------------------------------------------------------------------------


class MalformedInput(ValueError):
    """A proof, key or public input that is not even well-formed; `reason` is a stable code."""

    reason = "malformed"


class WrongInputCount(MalformedInput):
    reason = "wrong_input_count"


class InputNotInField(MalformedInput):
    reason = "input_not_in_field"


class PointNotOnCurve(MalformedInput):
    reason = "point_not_on_curve"


class PointNotInSubgroup(MalformedInput):
    reason = "point_not_in_subgroup"


class IdentityNotAllowed(MalformedInput):
    reason = "identity_not_allowed"


class WrongCurve(MalformedInput):
    reason = "wrong_curve"


# --- point validation -----------------------------------------------------------------------------


def validate_point(curve: Curve, point: Point, group: str, name: str, allow_identity: bool,
                   backend: Backend | None = None) -> None:
    """Raise unless `point` is a well-formed element of `group` ("G1" or "G2") of `curve`
    (the subgroup check on `backend`, default the reference)."""
    field = curve.FQ if group == "G1" else curve.FQ2
    # the point is a projective triple over this curve's field, not another curve's
    if not (isinstance(point, tuple) and len(point) == 3 and all(isinstance(c, field) for c in point)):
        raise WrongCurve(f"{name} is not a {group} point of {curve.name}")
    # the identity makes a pairing trivially 1: only allowed where the protocol permits it
    if curve.is_inf(point):
        if allow_identity:
            return
        raise IdentityNotAllowed(f"{name} is the point at infinity")
    # the curve equation (G2: on the twist)
    on_curve = curve.is_on_curve_g1(point) if group == "G1" else curve.is_on_curve_g2(point)
    if not on_curve:
        raise PointNotOnCurve(f"{name} is not on the {group} curve of {curve.name}")
    # small-subgroup points would let a prover cancel pairing terms
    if group == "G1" and curve.g1_cofactor_is_one:
        return
    in_subgroup = (backend.is_in_subgroup(curve, point, 1 if group == "G1" else 2) if backend is not None
                   else curve.is_in_subgroup_fast(point, 1 if group == "G1" else 2))
    if not in_subgroup:
        raise PointNotInSubgroup(f"{name} is on the curve but not in the order-r subgroup {group}")


def validate_verifying_key(vk: VerifyingKey, backend: Backend | None = None) -> None:
    curve = vk.curve
    validate_point(curve, vk.alpha_g1, "G1", "vk.alpha_g1", allow_identity=False, backend=backend)
    validate_point(curve, vk.beta_g2, "G2", "vk.beta_g2", allow_identity=False, backend=backend)
    validate_point(curve, vk.gamma_g2, "G2", "vk.gamma_g2", allow_identity=False, backend=backend)
    validate_point(curve, vk.delta_g2, "G2", "vk.delta_g2", allow_identity=False, backend=backend)
    # a key verifies statements with at least the constant wire
    if len(vk.gamma_abc_g1) < 1:
        raise WrongInputCount("vk.gamma_abc_g1 is empty: it needs one point per public input plus one")
    for i, point in enumerate(vk.gamma_abc_g1):
        # IC_j is the identity when public input j appears in no constraint: legitimate
        validate_point(curve, point, "G1", f"vk.gamma_abc_g1[{i}]", allow_identity=True, backend=backend)


def validate_proof(proof: Proof, curve: Curve | None = None, backend: Backend | None = None) -> None:
    """Raise `MalformedInput` unless A, C are in G1 and B in G2 of the key's curve, none the identity."""
    curve = curve or proof.curve
    # a proof made on another curve cannot be checked against this key
    if proof.curve is not curve and proof.curve.name != curve.name:
        raise WrongCurve(f"proof is on {proof.curve.name}, the key on {curve.name}")
    validate_point(curve, proof.a, "G1", "proof.a", allow_identity=False, backend=backend)
    validate_point(curve, proof.b, "G2", "proof.b", allow_identity=False, backend=backend)
    validate_point(curve, proof.c, "G1", "proof.c", allow_identity=False, backend=backend)


# --- prepared key and inputs ---------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedVerifyingKey:
    vk: VerifyingKey
    alpha_g1_beta_g2: Any  # e(alpha, beta) in GT, in the backend's representation
    gamma_g2_neg: Point
    delta_g2_neg: Point
    backend: Backend = field(default_factory=lambda: get_backend(REFERENCE))
    gamma_abc_bases: Any = None  # the IC points prepared for the backend's MSM

    @property
    def curve(self) -> Curve:
        return self.vk.curve


def prepare_verifying_key(vk: VerifyingKey, backend: str | Backend | None = None) -> PreparedVerifyingKey:
    """Validate every point of the key, then cache e(alpha, beta), -gamma, -delta and the IC bases,
    on `backend` (default: the configured or fastest installed one, verifier/backends.py)."""
    curve = vk.curve
    chosen = get_backend(backend, curve)
    validate_verifying_key(vk, chosen)
    return PreparedVerifyingKey(
        vk=vk,
        alpha_g1_beta_g2=chosen.pairing_product(curve, [(vk.alpha_g1, vk.beta_g2)]),
        gamma_g2_neg=curve.neg(vk.gamma_g2),
        delta_g2_neg=curve.neg(vk.delta_g2),
        backend=chosen,
        gamma_abc_bases=chosen.prepare_g1(curve, vk.gamma_abc_g1),
    )


def validate_public_inputs(pvk: PreparedVerifyingKey, public_inputs: Sequence[int]) -> None:
    n_public = pvk.vk.n_public
    # one value per public wire of the circuit
    if len(public_inputs) != n_public:
        raise WrongInputCount(f"expected {n_public} public inputs, got {len(public_inputs)}")
    for i, value in enumerate(public_inputs):
        # an integer, not a float, string or bool
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputNotInField(f"public input {i} is not an integer: {value!r}")
        # canonical: x and x + r would otherwise verify the same proof (aliasing)
        if not 0 <= value < pvk.curve.r:
            raise InputNotInField(f"public input {i} is not in [0, r): {value}")


def prepare_inputs(pvk: PreparedVerifyingKey, public_inputs: Sequence[int]) -> Point:
    """L = IC_0 + sum_j x_j IC_j, after checking the count and that every x_j is in [0, r)."""
    validate_public_inputs(pvk, public_inputs)
    return pvk.backend.msm_g1(pvk.curve, pvk.gamma_abc_bases, [1, *public_inputs])


# --- verification --------------------------------------------------------------------------------


def verify_proof(pvk: PreparedVerifyingKey, proof: Proof, public_inputs: Sequence[int]) -> bool:
    """True iff the proof verifies; raises `MalformedInput` for malformed proofs or inputs."""
    curve = pvk.curve
    validate_proof(proof, curve, pvk.backend)
    prepared_inputs = prepare_inputs(pvk, public_inputs)
    product = pvk.backend.pairing_product(
        curve, [(proof.a, proof.b), (prepared_inputs, pvk.gamma_g2_neg), (proof.c, pvk.delta_g2_neg)]
    )
    return product == pvk.alpha_g1_beta_g2


class RandomBits(Protocol):
    def getrandbits(self, k: int) -> int: ...


BATCH_SCALAR_BITS = 128


def compute_batch_scalars(count: int, rng: RandomBits) -> list[int]:
    """Nonzero 128-bit scalars: a zero would leave its proof unchecked."""
    scalars = []
    while len(scalars) < count:
        scalar = rng.getrandbits(BATCH_SCALAR_BITS)
        if scalar != 0:
            scalars.append(scalar)
    return scalars


def batch_verify(
    pvk: PreparedVerifyingKey,
    items: Sequence[tuple[Proof, Sequence[int]]],
    rng: RandomBits | None = None,
) -> bool:
    """True iff every (proof, public inputs) verifies, up to a 2^-128 chance; one final exponentiation."""
    curve = pvk.curve
    # an empty batch proves nothing: refuse rather than vacuously accept
    if len(items) == 0:
        raise MalformedInput("empty batch: nothing to verify")
    for index, (proof, public_inputs) in enumerate(items):
        try:
            validate_proof(proof, curve, pvk.backend)
            validate_public_inputs(pvk, public_inputs)
        except MalformedInput as exc:
            raise type(exc)(f"batch item {index}: {exc}") from exc
    scalars = compute_batch_scalars(len(items), rng or secrets.SystemRandom())
    # sum_i r_i L_i = (sum_i r_i) IC_0 + sum_j (sum_i r_i x_ij) IC_j: one MSM of n_public + 1 points
    combined_inputs = [sum(scalars) % curve.r] + [
        sum(r_i * inputs[j] for r_i, (_, inputs) in zip(scalars, items)) % curve.r
        for j in range(pvk.vk.n_public)
    ]
    backend = pvk.backend
    sum_l = backend.msm_g1(curve, pvk.gamma_abc_bases, combined_inputs)
    sum_c = backend.msm_g1(curve, [proof.c for proof, _ in items], scalars)
    pairs = [(backend.msm_g1(curve, [proof.a], [r_i]), proof.b) for r_i, (proof, _) in zip(scalars, items)]
    pairs += [(sum_l, pvk.gamma_g2_neg), (sum_c, pvk.delta_g2_neg)]
    return backend.pairing_product(curve, pairs) == pvk.alpha_g1_beta_g2 ** (sum(scalars) % curve.r)
