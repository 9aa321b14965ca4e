"""The Poseidon gadget (prover/circuits/poseidon.py): true hashes satisfy it, wrong outputs and tampered wires do not."""

from __future__ import annotations

import random

import pytest

from prover import gadgets
from prover.circuits.poseidon import count_poseidon_constraints, select_child, synthesize_poseidon
from prover.r1cs import ConstraintSystem, UnsatisfiedConstraint, WitnessError, check_assignment
from verifier.curve import BLS12_381
from verifier.poseidon import ALL_ARITIES, R, get_params, poseidon

# circomlib's Poseidon(2) is 240 constraints; every arity must stay within 3 per S-box of the
# full permutation (a regression bound: the folded S-box and output substitution may only save)
CIRCOMLIB_POSEIDON2 = 240


def tamper(cs: ConstraintSystem, var, value: int) -> None:
    """A malicious prover's witness: overwrite a private wire after the constraints were built."""
    cs._private_values[-var.wire] = value % cs.r


def build(n: int, seed: int) -> tuple[ConstraintSystem, list[int], object]:
    rng = random.Random(seed)
    values = [rng.randrange(R) for _ in range(n)]
    cs = ConstraintSystem()
    out = synthesize_poseidon(cs, [cs.private(v) for v in values])
    return cs, values, out


@pytest.mark.parametrize("n", ALL_ARITIES)
def test_output_is_the_hash_and_satisfies(n: int) -> None:
    cs, values, out = build(n, seed=n)
    assert out.value == poseidon(values)
    cs.check()
    check_assignment(cs.constraints, cs.witness, cs.r, cs.constraint_gadgets)
    p = get_params(n)
    assert cs.n_constraints == count_poseidon_constraints(n) <= 3 * (p.n_rounds_f * p.t + p.n_rounds_p)
    assert set(cs.constraint_gadgets) == {"poseidon"}


def test_two_inputs_cost_what_circomlib_does() -> None:
    cs, _, _ = build(2, seed=0)
    assert cs.n_constraints == CIRCOMLIB_POSEIDON2


@pytest.mark.parametrize("n", [1, 2, 5])
def test_wrong_claimed_output_is_unsatisfied(n: int) -> None:
    cs, values, out = build(n, seed=10 + n)
    tamper(cs, out, poseidon(values) + 1)
    with pytest.raises(UnsatisfiedConstraint, match="in gadget 'poseidon'"):
        cs.check()
    with pytest.raises(UnsatisfiedConstraint):
        check_assignment(cs.constraints, cs.witness, cs.r)


def test_every_private_wire_is_pinned() -> None:
    # changing any one wire (an input, an S-box square, the output) breaks some constraint
    cs, _, _ = build(2, seed=20)
    rng = random.Random(21)
    for k in range(1, cs.n_private + 1):
        original = cs._private_values[k]
        cs._private_values[k] = (original + rng.randrange(1, R)) % R
        assert not cs.is_satisfied(), f"private wire {k} of {cs.n_private} is not constrained"
        cs._private_values[k] = original
    cs.check()


def test_public_claim_of_a_wrong_hash_is_refused() -> None:
    cs = ConstraintSystem()
    a, b = cs.private(1), cs.private(2)
    claimed = cs.public_input(poseidon([1, 2]) + 1, "root")
    out = synthesize_poseidon(cs, [a, b])
    with pytest.raises(WitnessError):
        gadgets.assert_equal(cs, out, claimed)


def test_linear_combinations_constants_and_public_inputs() -> None:
    cs = ConstraintSystem()
    x, y = cs.private(11), cs.public_input(22, "y")
    inputs = [x + y, 7, y * 3 - x, cs.one * 5]
    out = synthesize_poseidon(cs, inputs)
    assert out.value == poseidon([33, 7, 55, 5])
    cs.check()
    # constant inputs have constant first S-boxes: fewer constraints than four wires
    assert cs.n_constraints < count_poseidon_constraints(4)


def test_all_constant_inputs_still_give_a_wire() -> None:
    cs = ConstraintSystem()
    out = synthesize_poseidon(cs, [1, 2])
    assert out.value == poseidon([1, 2])
    cs.check()
    tamper(cs, out, 0)
    assert not cs.is_satisfied()


def test_one_system_hashes_many() -> None:
    cs = ConstraintSystem()
    left, right = cs.private(3), cs.private(4)
    inner = synthesize_poseidon(cs, [left, right])
    root = synthesize_poseidon(cs, [inner, left])
    assert root.value == poseidon([poseidon([3, 4]), 3])
    assert cs.n_constraints == 2 * CIRCOMLIB_POSEIDON2
    cs.check()


@pytest.mark.parametrize("count", [0, 17])
def test_invalid_input_count(count: int) -> None:
    cs = ConstraintSystem()
    with pytest.raises(ValueError, match=f"Poseidon takes 1 to 16 inputs, got {count}"):
        synthesize_poseidon(cs, [cs.private(1)] * count)


def test_invalid_inputs_of_another_system_or_field() -> None:
    other = ConstraintSystem()
    cs = ConstraintSystem()
    with pytest.raises(ValueError, match="another constraint system"):
        synthesize_poseidon(cs, [cs.private(1), other.private(2)])
    with pytest.raises(TypeError, match="expected a variable"):
        synthesize_poseidon(cs, [cs.private(1), 2.5])
    bls = ConstraintSystem(BLS12_381)
    with pytest.raises(ValueError, match="BN254's scalar field"):
        synthesize_poseidon(bls, [bls.private(1)])


# ---- select_child ----


@pytest.mark.parametrize("n_bits", [1, 2, 3, 4])
def test_select_child_picks_the_indexed_child(n_bits: int) -> None:
    rng = random.Random(n_bits)
    for index in range(1 << n_bits):
        cs = ConstraintSystem()
        children = [cs.private(rng.randrange(R)) for _ in range(1 << n_bits)]
        bits = [gadgets.boolean(cs, (index >> i) & 1) for i in range(n_bits)]
        before = cs.n_constraints
        chosen = select_child(cs, bits, children)
        assert chosen.value == children[index].value
        assert cs.n_constraints - before == (1 << n_bits) - 1
        cs.check()
        tamper(cs, chosen, chosen.value + 1)
        assert not cs.is_satisfied()


def test_select_child_invalid() -> None:
    cs = ConstraintSystem()
    children = [cs.private(i) for i in range(4)]
    with pytest.raises(ValueError, match=r"select_child needs 2\*\*1 children for 1 index bits, got 4"):
        select_child(cs, [cs.private(1)], children)
    with pytest.raises(ValueError, match="select_child needs"):
        select_child(cs, [], children[:1])
    with pytest.raises(WitnessError, match="boolean index bits, got 2"):
        select_child(cs, [cs.private(2), cs.private(0)], children)


# ---- end to end ----


@pytest.mark.slow
def test_groth16_proof_of_a_preimage() -> None:
    # "I know a, b with Poseidon(a, b) = h" proves and verifies, and does not verify for h + 1
    from prover.groth16 import prove
    from prover.setup import setup
    from verifier.groth16 import prepare_verifying_key, verify_proof

    cs = ConstraintSystem()
    digest = cs.public_input(poseidon([5, 6]), "digest")
    out = synthesize_poseidon(cs, [cs.private(5), cs.private(6)])
    gadgets.assert_equal(cs, out, digest)
    pk = setup(cs, seed=3)
    proof = prove(pk, cs, reproducible_seed=4)
    vk = prepare_verifying_key(pk.vk)
    assert verify_proof(vk, proof, [poseidon([5, 6])])
    assert not verify_proof(vk, proof, [poseidon([5, 6]) + 1])
