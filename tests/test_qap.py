"""R1CS -> QAP: roots of unity, NTTs, and the NTT reduction against the O(m^2) reference."""

from __future__ import annotations

import random

import pytest

from prover import gadgets as g
from prover.qap import (
    DomainTooLarge,
    compute_abc_evaluations,
    compute_coset_ntt,
    compute_h,
    compute_h_reference,
    compute_lagrange_at,
    compute_lagrange_reference,
    compute_ntt,
    compute_qap_at,
    compute_two_adicity,
    get_domain,
    get_qap_domain,
)
from prover.r1cs import ConstraintSystem
from verifier.curve import BLS12_381, BN254

CURVES = [BN254, BLS12_381]


def evaluate(coeffs: list[int], x: int, r: int) -> int:
    acc = 0
    for c in reversed(coeffs):
        acc = (acc * x + c) % r
    return acc


def small_circuit(curve) -> ConstraintSystem:
    cs = ConstraintSystem(curve)
    x = cs.private(13)
    y = cs.public_input(7)
    product = g.mul(cs, x, y)
    g.range_check(cs, product, 8)
    g.is_zero(cs, x - 13)
    cs.public_input(product.value)
    return cs


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_two_adic_root_has_exact_order(curve):
    r = curve.r
    info = compute_two_adicity(r)
    assert (r - 1) % (1 << info.s) == 0 and ((r - 1) >> info.s) % 2 == 1
    assert pow(info.root, 1 << info.s, r) == 1
    assert pow(info.root, 1 << (info.s - 1), r) == r - 1
    assert pow(info.generator, (r - 1) // 2, r) == r - 1  # a non-residue


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_domain_sizes_and_coset(curve):
    d = get_domain(curve.r, 5)
    assert d.size == 8 and pow(d.omega, 8, curve.r) == 1 and pow(d.omega, 4, curve.r) != 1
    assert get_domain(curve.r, 8).size == 8 and get_domain(curve.r, 9).size == 16
    assert get_qap_domain(curve.r, 10, 5).size == 16  # 10 + 5 + 1 rows
    assert get_qap_domain(curve.r, 10, 6).size == 32
    assert d.evaluate_vanishing(d.coset_shift) != 0  # g*H is disjoint from H


def test_invalid_domain_too_large():
    s = compute_two_adicity(BN254.r).s
    with pytest.raises(DomainTooLarge, match="at most"):
        get_domain(BN254.r, (1 << s) + 1)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
@pytest.mark.parametrize("size", [2, 8, 32])
def test_ntt_matches_evaluation_and_inverts(curve, size):
    r = curve.r
    rng = random.Random(size)
    d = get_domain(r, size)
    coeffs = [rng.randrange(r) for _ in range(size)]
    evals = compute_ntt(coeffs, d)
    assert evals == [evaluate(coeffs, w, r) for w in d.elements]
    assert compute_ntt(evals, d, inverse=True) == coeffs
    coset = compute_coset_ntt(coeffs, d)
    assert coset == [evaluate(coeffs, d.coset_shift * w % r, r) for w in d.elements]
    assert compute_coset_ntt(coset, d, inverse=True) == coeffs


def test_invalid_ntt_wrong_length():
    with pytest.raises(ValueError, match="needs 8 values"):
        compute_ntt([1, 2, 3], get_domain(BN254.r, 8))


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_lagrange_basis_matches_reference(curve):
    d = get_domain(curve.r, 16)
    tau = 123456789
    lag = compute_lagrange_at(d, tau)
    assert lag == compute_lagrange_reference(d, tau)
    assert sum(lag) % curve.r == 1
    with pytest.raises(ValueError, match="domain"):
        compute_lagrange_at(d, d.omega)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_h_by_ntt_matches_reference(curve):
    cs = small_circuit(curve)
    d = get_qap_domain(curve.r, cs.n_constraints, cs.n_public)
    h = compute_h(cs.constraints, cs.witness, cs.n_public, d)
    assert len(h) == d.size - 1
    assert h == compute_h_reference(cs.constraints, cs.witness, cs.n_public, d)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_qap_identity_holds_at_tau(curve):
    """sum w_i A_i(tau) * sum w_i B_i(tau) - sum w_i C_i(tau) == h(tau) Z(tau)."""
    r = curve.r
    cs = small_circuit(curve)
    w = cs.witness
    d = get_qap_domain(r, cs.n_constraints, cs.n_public)
    tau = 987654321987654321
    a, b, c = compute_qap_at(cs.constraints, cs.n_vars, cs.n_public, d, tau)
    at = sum(x * y for x, y in zip(a, w)) % r
    bt = sum(x * y for x, y in zip(b, w)) % r
    ct = sum(x * y for x, y in zip(c, w)) % r
    h = compute_h(cs.constraints, w, cs.n_public, d)
    assert (at * bt - ct) % r == evaluate(h, tau, r) * d.evaluate_vanishing(tau) % r


def test_input_rows_hold_the_public_inputs():
    cs = small_circuit(BN254)
    d = get_qap_domain(BN254.r, cs.n_constraints, cs.n_public)
    a, b, c = compute_abc_evaluations(cs.constraints, cs.witness, cs.n_public, d)
    n = cs.n_constraints
    assert a[n:n + cs.n_public + 1] == cs.witness[:cs.n_public + 1]
    assert b[n:] == [0] * (d.size - n) and c[n:] == [0] * (d.size - n)


def test_invalid_unsatisfied_witness_has_no_quotient():
    cs = small_circuit(BN254)
    d = get_qap_domain(BN254.r, cs.n_constraints, cs.n_public)
    bad = cs.witness
    bad[-1] = (bad[-1] + 1) % BN254.r
    with pytest.raises(ArithmeticError, match="not divisible"):
        compute_h(cs.constraints, bad, cs.n_public, d)
    with pytest.raises(ArithmeticError, match="not divisible"):
        compute_h_reference(cs.constraints, bad, cs.n_public, d)
