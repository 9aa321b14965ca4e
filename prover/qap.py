"""R1CS -> QAP over Fr by number-theoretic transforms on a radix-2 domain.

The reduction is arkworks' `LibsnarkReduction` (ark-groth16 `r1cs_to_qap.rs`):
- the domain H = <omega> has size m = 2^k >= n_constraints + n_public + 1;
- the polynomials A_i, B_i, C_i interpolate the matrix columns on H; rows n_constraints + i
  (i = 0 .. n_public, wire 0 included) hold the extra constraints "x_i * 0 = 0" (A only), which make
  the public inputs' A-polynomials linearly independent, as Groth16's soundness proof needs;
- the prover's h(x) = (A(x) B(x) - C(x)) / Z(x), Z(x) = x^m - 1, is computed with 7 NTTs: three
  inverse NTTs to coefficients, three NTTs on the coset g*H (where Z is the constant g^m - 1),
  a pointwise division, and one inverse NTT back from the coset. h has degree <= m - 2.
- at setup, A_i(tau), B_i(tau), C_i(tau) come from the Lagrange basis of H evaluated at tau.

The root of unity is computed, not typed: r - 1 = 2^s * t; for a quadratic non-residue g
(found by Euler's criterion), omega_max = g^t has order exactly 2^s, which is checked at load.
`compute_h_reference` and `compute_lagrange_reference` are O(m^2) textbook versions for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from prover.ec import compute_batch_inverse
from verifier.curve import BN254, BLS12_381

Constraint = tuple[dict[int, int], dict[int, int], dict[int, int]]


class DomainTooLarge(ValueError):
    """The circuit needs more evaluation points than the field's 2-adic subgroup has."""


@dataclass(frozen=True)
class TwoAdicity:
    """r - 1 = 2^s * t with t odd; `root` has order 2^s; `generator` is a non-residue."""

    s: int
    root: int
    generator: int


def compute_two_adicity(r: int) -> TwoAdicity:
    s = 0
    t = r - 1
    while t % 2 == 0:
        t //= 2
        s += 1
    generator = 2
    # Euler's criterion: g^((r-1)/2) == -1 exactly for non-residues
    while pow(generator, (r - 1) // 2, r) != r - 1:
        generator += 1
    root = pow(generator, t, r)
    # root^(2^(s-1)) = g^((r-1)/2) = -1, so root has order exactly 2^s
    if pow(root, 1 << (s - 1), r) != r - 1 or pow(root, 1 << s, r) != 1:
        raise ArithmeticError("2-adic root of unity has the wrong order")
    return TwoAdicity(s, root, generator)


_TWO_ADICITY: dict[int, TwoAdicity] = {curve.r: compute_two_adicity(curve.r) for curve in (BN254, BLS12_381)}


def get_two_adicity(r: int) -> TwoAdicity:
    if r not in _TWO_ADICITY:
        _TWO_ADICITY[r] = compute_two_adicity(r)
    return _TWO_ADICITY[r]


@dataclass(frozen=True)
class Domain:
    """The subgroup H of size m = 2^log_size of Fr*, and the coset g*H used for the division."""

    r: int
    log_size: int
    omega: int
    coset_shift: int

    @property
    def size(self) -> int:
        return 1 << self.log_size

    @property
    def elements(self) -> list[int]:
        out = [1] * self.size
        for j in range(1, self.size):
            out[j] = out[j - 1] * self.omega % self.r
        return out

    def evaluate_vanishing(self, x: int) -> int:
        """Z(x) = x^m - 1."""
        return (pow(x, self.size, self.r) - 1) % self.r


def get_domain(r: int, min_size: int) -> Domain:
    """The smallest radix-2 domain with at least min_size points."""
    adicity = get_two_adicity(r)
    log_size = max(1, (min_size - 1).bit_length())
    # the field only has 2-power roots of unity up to 2^s
    if log_size >= adicity.s:
        raise DomainTooLarge(f"circuit needs {min_size} evaluation points; this field supports at most 2^{adicity.s - 1}")
    omega = pow(adicity.root, 1 << (adicity.s - log_size), r)
    # a non-residue is outside every subgroup of order 2^k, k < s, so g*H is disjoint from H
    return Domain(r, log_size, omega, adicity.generator)


def get_qap_domain(r: int, n_constraints: int, n_public: int) -> Domain:
    """Domain for a circuit: one row per constraint plus one per input (wire 0 included)."""
    return get_domain(r, n_constraints + n_public + 1)


# --- NTT ---
@lru_cache(maxsize=32)
def _get_twiddles(r: int, omega: int, log_size: int) -> tuple[int, ...]:
    """omega^j for j < m/2; the stage of half-length h uses omega^(j m / 2h)."""
    half = 1 << (log_size - 1)
    tw = [1] * half
    for j in range(1, half):
        tw[j] = tw[j - 1] * omega % r
    return tuple(tw)


@lru_cache(maxsize=32)
def _get_bit_reversal(log_size: int) -> tuple[int, ...]:
    return tuple(int(format(i, f"0{log_size}b")[::-1], 2) if log_size else 0 for i in range(1 << log_size))


def compute_ntt(values: Sequence[int], domain: Domain, inverse: bool = False) -> list[int]:
    """Evaluations on H of the polynomial with these coefficients (or the inverse transform).

    Iterative radix-2 Cooley-Tukey on bit-reversed input. Each butterfly stage works on whole
    strided slices (list comprehensions over a[j::2h] or over blocks a[s:s+h]) rather than on single
    indices, and sums are left unreduced until the end: both matter in pure Python.
    """
    r = domain.r
    m = domain.size
    # the transform is defined on exactly m values
    if len(values) != m:
        raise ValueError(f"NTT of size {m} needs {m} values, got {len(values)}")
    omega = pow(domain.omega, -1, r) if inverse else domain.omega
    tw = _get_twiddles(r, omega, domain.log_size)
    a = [values[i] for i in _get_bit_reversal(domain.log_size)]
    h = 1
    while h < m:
        step = m // (2 * h)
        if h <= step:
            # few offsets, long strided slices: one twiddle per offset j
            for j in range(h):
                w = tw[j * step]
                u = a[j::2 * h]
                t = [x * w % r for x in a[j + h::2 * h]]
                a[j::2 * h] = [x + y for x, y in zip(u, t)]
                a[j + h::2 * h] = [x - y for x, y in zip(u, t)]
        else:
            # few blocks, long contiguous halves: the stage's twiddles as one slice
            stage_tw = tw[::step]
            for s in range(0, m, 2 * h):
                u = a[s:s + h]
                t = [x * w % r for x, w in zip(a[s + h:s + 2 * h], stage_tw)]
                a[s:s + h] = [x + y for x, y in zip(u, t)]
                a[s + h:s + 2 * h] = [x - y for x, y in zip(u, t)]
        h *= 2
    if inverse:
        m_inv = pow(m, -1, r)
        return [x * m_inv % r for x in a]
    return [x % r for x in a]


def compute_coset_ntt(coeffs: Sequence[int], domain: Domain, inverse: bool = False) -> list[int]:
    """Evaluations on g*H (or, inverse, coefficients from evaluations on g*H)."""
    r = domain.r
    g = domain.coset_shift if not inverse else pow(domain.coset_shift, -1, r)
    if not inverse:
        return compute_ntt(_scale_powers(coeffs, g, r), domain)
    return _scale_powers(compute_ntt(coeffs, domain, inverse=True), g, r)


def _scale_powers(values: Sequence[int], g: int, r: int) -> list[int]:
    out = []
    power = 1
    for v in values:
        out.append(v * power % r)
        power = power * g % r
    return out


# --- the reduction ---
def compute_abc_evaluations(constraints: Sequence[Constraint], witness: Sequence[int], n_public: int,
                            domain: Domain) -> tuple[list[int], list[int], list[int]]:
    """<A_j, w>, <B_j, w>, <C_j, w> for every row j of the domain, input rows included."""
    r = domain.r
    m = domain.size
    a = [0] * m
    b = [0] * m
    c = [0] * m
    for j, (lc_a, lc_b, lc_c) in enumerate(constraints):
        a[j] = sum(k * witness[i] for i, k in lc_a.items()) % r
        b[j] = sum(k * witness[i] for i, k in lc_b.items()) % r
        c[j] = sum(k * witness[i] for i, k in lc_c.items()) % r
    n = len(constraints)
    for i in range(n_public + 1):
        a[n + i] = witness[i]
    return a, b, c


def compute_h(constraints: Sequence[Constraint], witness: Sequence[int], n_public: int, domain: Domain) -> list[int]:
    """Coefficients h_0 .. h_{m-2} of h = (A B - C) / Z for a satisfying witness (7 NTTs)."""
    return compute_h_from_evaluations(*compute_abc_evaluations(constraints, witness, n_public, domain), domain)


def compute_h_from_evaluations(a: list[int], b: list[int], c: list[int], domain: Domain) -> list[int]:
    """h from the evaluations of A, B, C on H (see compute_abc_evaluations)."""
    r = domain.r
    m = domain.size
    a = compute_coset_ntt(compute_ntt(a, domain, inverse=True), domain)
    b = compute_coset_ntt(compute_ntt(b, domain, inverse=True), domain)
    c = compute_coset_ntt(compute_ntt(c, domain, inverse=True), domain)
    z_inv = pow(domain.evaluate_vanishing(domain.coset_shift), -1, r)
    quotient = [(x * y - z) * z_inv % r for x, y, z in zip(a, b, c)]
    h = compute_coset_ntt(quotient, domain, inverse=True)
    # A B - C is divisible by Z only when every constraint holds; then deg h <= m - 2
    if h[m - 1] != 0:
        raise ArithmeticError("A*B - C is not divisible by Z: the witness does not satisfy the constraints")
    return h[: m - 1]


def compute_lagrange_at(domain: Domain, tau: int) -> list[int]:
    """L_j(tau) for the Lagrange basis of H: L_j(x) = Z(x) omega^j / (m (x - omega^j))."""
    r = domain.r
    m = domain.size
    elements = domain.elements
    z = domain.evaluate_vanishing(tau)
    # tau in H would make the setup degenerate (and reveal tau)
    if z == 0:
        raise ValueError("tau lies in the evaluation domain; choose another tau")
    factor = z * pow(m, -1, r) % r
    inverses = compute_batch_inverse([(tau - w) % r for w in elements], r)
    return [factor * w % r * inv % r for w, inv in zip(elements, inverses)]


def compute_qap_at(constraints: Sequence[Constraint], n_vars: int, n_public: int, domain: Domain,
                   tau: int) -> tuple[list[int], list[int], list[int]]:
    """A_i(tau), B_i(tau), C_i(tau) for every wire i."""
    r = domain.r
    lag = compute_lagrange_at(domain, tau)
    a = [0] * n_vars
    b = [0] * n_vars
    c = [0] * n_vars
    for j, (lc_a, lc_b, lc_c) in enumerate(constraints):
        lj = lag[j]
        for i, k in lc_a.items():
            a[i] += k * lj
        for i, k in lc_b.items():
            b[i] += k * lj
        for i, k in lc_c.items():
            c[i] += k * lj
    n = len(constraints)
    for i in range(n_public + 1):
        a[i] += lag[n + i]
    return [x % r for x in a], [x % r for x in b], [x % r for x in c]


# --- O(m^2) references for tests ---
def compute_lagrange_reference(domain: Domain, tau: int) -> list[int]:
    """L_j(tau) = prod_{k != j} (tau - w_k) / (w_j - w_k)."""
    r = domain.r
    pts = domain.elements
    out = []
    for j, wj in enumerate(pts):
        num, den = 1, 1
        for k, wk in enumerate(pts):
            if k != j:
                num = num * (tau - wk) % r
                den = den * (wj - wk) % r
        out.append(num * pow(den, -1, r) % r)
    return out


def _interpolate_reference(values: Sequence[int], domain: Domain) -> list[int]:
    """Coefficients of the polynomial through (w_j, values[j]) by summing Lagrange polynomials."""
    r = domain.r
    pts = domain.elements
    m = len(pts)
    coeffs = [0] * m
    for j, wj in enumerate(pts):
        if values[j] == 0:
            continue
        basis = [1]
        den = 1
        for k, wk in enumerate(pts):
            if k == j:
                continue
            basis = [(hi - wk * lo) % r for hi, lo in zip([0] + basis, basis + [0])]
            den = den * (wj - wk) % r
        scale = values[j] * pow(den, -1, r) % r
        for t in range(m):
            coeffs[t] = (coeffs[t] + scale * basis[t]) % r
    return coeffs


def compute_h_reference(constraints: Sequence[Constraint], witness: Sequence[int], n_public: int,
                        domain: Domain) -> list[int]:
    """h by Lagrange interpolation, schoolbook product and long division by x^m - 1."""
    r = domain.r
    m = domain.size
    a, b, c = (_interpolate_reference(v, domain) for v in compute_abc_evaluations(constraints, witness, n_public, domain))
    product = [0] * (2 * m - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            product[i + j] = (product[i + j] + x * y) % r
    for i, z in enumerate(c):
        product[i] = (product[i] - z) % r
    # p = q (x^m - 1) + rem with deg q <= m - 2 gives p_{k+m} = q_k and rem_k = p_k + q_k
    quotient = [product[k + m] for k in range(m - 1)]
    remainder = [(product[k] + quotient[k] if k < m - 1 else product[k]) % r for k in range(m)]
    # a satisfying witness leaves no remainder
    if any(remainder):
        raise ArithmeticError("A*B - C is not divisible by Z: the witness does not satisfy the constraints")
    return quotient
