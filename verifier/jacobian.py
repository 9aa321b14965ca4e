"""Scalar multiplication, MSM and subgroup checks over plain ints in Jacobian coordinates.

py_ecc's optimized modules wrap every coordinate in a field object and multiply recursively; the
same formulas over bare ints (Fq) and int pairs (Fq2 = a + b i, i^2 = -1) run several times
faster. One set of formulas serves G1 and G2 through a `FieldOps` table. py_ecc stays the
reference: `Curve.multiply` and `Curve.is_in_subgroup` compute the same results, and the tests
compare them.

Jacobian (X, Y, Z) is the affine point (X / Z^2, Y / Z^3); Z = 0 is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from verifier.curve import Curve, Point

Element = Any  # int (Fq) or tuple[int, int] (Fq2)
Jacobian = tuple[Element, Element, Element]
Fq2 = tuple[int, int]  # (real, imaginary), i^2 = -1 on both curves


def fq2_mul(a: Fq2, b: Fq2, q: int) -> Fq2:
    return ((a[0] * b[0] - a[1] * b[1]) % q, (a[0] * b[1] + a[1] * b[0]) % q)


def fq2_sqr(a: Fq2, q: int) -> Fq2:
    return ((a[0] + a[1]) * (a[0] - a[1]) % q, 2 * a[0] * a[1] % q)


def fq2_sub(a: Fq2, b: Fq2, q: int) -> Fq2:
    return ((a[0] - b[0]) % q, (a[1] - b[1]) % q)


def fq2_inv(a: Fq2, q: int) -> Fq2:
    norm_inv = pow(a[0] * a[0] + a[1] * a[1], -1, q)
    return (a[0] * norm_inv % q, -a[1] * norm_inv % q)


def fq2_conj(a: Fq2, q: int) -> Fq2:
    return (a[0], -a[1] % q)


def fq2_pow(a: Fq2, e: int, q: int) -> Fq2:
    result: Fq2 = (1, 0)
    for bit in bin(e)[2:]:
        result = fq2_sqr(result, q)
        if bit == "1":
            result = fq2_mul(result, a, q)
    return result


def fq2_add(a: Fq2, b: Fq2, q: int) -> Fq2:
    return ((a[0] + b[0]) % q, (a[1] + b[1]) % q)


def fq2_scale(a: Fq2, k: int, q: int) -> Fq2:
    return (a[0] * k % q, a[1] * k % q)


@dataclass(frozen=True)
class FieldOps:
    mul: Callable[[Element, Element, int], Element]
    sqr: Callable[[Element, int], Element]
    add: Callable[[Element, Element, int], Element]
    sub: Callable[[Element, Element, int], Element]
    scale: Callable[[Element, int, int], Element]
    zero: Element
    one: Element
    from_field: Callable[[Any], Element]  # a py_ecc FQ / FQ2 element to ints
    to_field: Callable[["Curve", Element], Any]


FQ_OPS = FieldOps(
    mul=lambda a, b, q: a * b % q,
    sqr=lambda a, q: a * a % q,
    add=lambda a, b, q: (a + b) % q,
    sub=lambda a, b, q: (a - b) % q,
    scale=lambda a, k, q: a * k % q,
    zero=0,
    one=1,
    from_field=lambda v: int(v),
    to_field=lambda curve, v: curve.FQ(v),
)

FQ2_OPS = FieldOps(
    mul=fq2_mul,
    sqr=fq2_sqr,
    add=fq2_add,
    sub=fq2_sub,
    scale=fq2_scale,
    zero=(0, 0),
    one=(1, 0),
    from_field=lambda v: (int(v.coeffs[0]), int(v.coeffs[1])),
    to_field=lambda curve, v: curve.FQ2(list(v)),
)


def get_ops(group: int) -> FieldOps:
    return FQ_OPS if group == 1 else FQ2_OPS


def get_identity(ops: FieldOps) -> Jacobian:
    return ops.one, ops.one, ops.zero


def double(ops: FieldOps, p: Jacobian, q: int) -> Jacobian:
    """2P on y^2 = x^3 + b (dbl-2009-l)."""
    x, y, z = p
    if z == ops.zero or y == ops.zero:
        return get_identity(ops)
    a, b = ops.sqr(x, q), ops.sqr(y, q)
    c = ops.sqr(b, q)
    d = ops.scale(ops.sub(ops.sub(ops.sqr(ops.add(x, b, q), q), a, q), c, q), 2, q)
    e = ops.scale(a, 3, q)
    x3 = ops.sub(ops.sqr(e, q), ops.scale(d, 2, q), q)
    y3 = ops.sub(ops.mul(e, ops.sub(d, x3, q), q), ops.scale(c, 8, q), q)
    return x3, y3, ops.scale(ops.mul(y, z, q), 2, q)


def add_mixed(ops: FieldOps, p: Jacobian, a: tuple[Element, Element], q: int) -> Jacobian:
    """P + A for Jacobian P and affine A (madd-2007-bl), with P = O and P = +-A handled."""
    x1, y1, z1 = p
    if z1 == ops.zero:
        return a[0], a[1], ops.one
    z1z1 = ops.sqr(z1, q)
    u2 = ops.mul(a[0], z1z1, q)
    s2 = ops.mul(a[1], ops.mul(z1, z1z1, q), q)
    h = ops.sub(u2, x1, q)
    rr = ops.scale(ops.sub(s2, y1, q), 2, q)
    if h == ops.zero:
        return double(ops, p, q) if rr == ops.zero else get_identity(ops)
    hh = ops.sqr(h, q)
    i = ops.scale(hh, 4, q)
    j = ops.mul(h, i, q)
    v = ops.mul(x1, i, q)
    x3 = ops.sub(ops.sub(ops.sqr(rr, q), j, q), ops.scale(v, 2, q), q)
    y3 = ops.sub(ops.mul(rr, ops.sub(v, x3, q), q), ops.scale(ops.mul(y1, j, q), 2, q), q)
    z3 = ops.sub(ops.sub(ops.sqr(ops.add(z1, h, q), q), z1z1, q), hh, q)
    return x3, y3, z3


def compute_msm_jacobian(ops: FieldOps, q: int, bases: Sequence[tuple[Element, Element]], scalars: Sequence[int]) -> Jacobian:
    """sum_i s_i A_i by interleaved double-and-add (Straus, window 1): the doublings are shared."""
    acc = get_identity(ops)
    for bit in range(max((s.bit_length() for s in scalars), default=0) - 1, -1, -1):
        acc = double(ops, acc, q)
        for base, scalar in zip(bases, scalars):
            if scalar >> bit & 1:
                acc = add_mixed(ops, acc, base, q)
    return acc


def from_point(curve: Curve, group: int, point: Point) -> tuple[Element, Element] | None:
    """Affine ints of a py_ecc point, None for the identity."""
    if curve.is_inf(point):
        return None
    ops = get_ops(group)
    x, y = curve.normalize(point)
    return ops.from_field(x), ops.from_field(y)


def to_point(curve: Curve, group: int, p: Jacobian) -> Point:
    """py_ecc's projective (x, y, z) = (X Z, Y, Z^3) of a Jacobian point."""
    ops = get_ops(group)
    x, y, z = p
    if z == ops.zero:
        return curve.Z1 if group == 1 else curve.Z2
    q = curve.q
    return (ops.to_field(curve, ops.mul(x, z, q)), ops.to_field(curve, y), ops.to_field(curve, ops.mul(ops.sqr(z, q), z, q)))


def compute_msm(curve: Curve, group: int, points: Sequence[Point], scalars: Sequence[int]) -> Point:
    """sum_i scalars[i] * points[i] (scalars are non-negative ints) as a py_ecc point."""
    pairs = [(from_point(curve, group, p), s) for p, s in zip(points, scalars, strict=True)]
    kept = [(base, s) for base, s in pairs if base is not None and s != 0]
    ops = get_ops(group)
    acc = compute_msm_jacobian(ops, curve.q, [b for b, _ in kept], [s for _, s in kept])
    return to_point(curve, group, acc)


def is_in_subgroup(curve: Curve, group: int, point: Point) -> bool:
    """r * P == O. Callers check the curve equation first."""
    base = from_point(curve, group, point)
    if base is None:
        return True
    acc = compute_msm_jacobian(get_ops(group), curve.q, [base], [curve.r])
    return acc[2] == get_ops(group).zero
