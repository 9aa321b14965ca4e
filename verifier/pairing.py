"""A faster multi-Miller loop over plain integers; py_ecc's Miller loop is the reference.

py_ecc's Miller loop moves the G2 point into Fq12 and does all its point arithmetic there
(about 80 ms a loop). Here the G2 point stays on the twist, in affine Fq2 coordinates (pairs of
ints), and each step's line is built directly as a sparse Fq12 element: a loop costs a few ms.
All pairs share one accumulator, so its squaring is paid once per step for the whole batch.

The result differs from py_ecc's Miller loop value only by factors in the subfield Fq6 (line
scalings and denominators), which the final exponentiation maps to 1: after `final_exponentiate`
both agree exactly (`Curve.multi_miller_loop_reference`); tests/test_groth16_verifier.py checks
that on both curves and runs the verifier on both. A degenerate step (a vertical line, which
subgroup points never meet) hands the whole product to py_ecc.

Curve data are derived from py_ecc: the loop count and its signed digits, the twist's
embedding (read off `twist`), xi = c + i (from the Fq12 modulus) and the Frobenius constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

from verifier.jacobian import Fq2, fq2_conj, fq2_inv, fq2_mul, fq2_pow, fq2_sqr, fq2_sub

if TYPE_CHECKING:
    from verifier.curve import Curve, Point

Fq2x2 = tuple[Fq2, Fq2]  # an affine point on the twist


class DegenerateStep(ArithmeticError):
    """A vertical line in the Miller loop: only reachable with points outside the subgroup."""


@dataclass(frozen=True)
class LoopData:
    q: int
    c: int  # xi = c + i, and i = w^6 - c inside py_ecc's Fq12
    digits: tuple[int, ...]  # signed digits of the loop count, most significant first, leading 1 dropped
    line_powers: tuple[int, int, int]  # powers of w multiplying (y_P, -lambda x_P, lambda x_R - y_R)
    frobenius: tuple[Fq2, Fq2] | None  # (xi^((q-1)/3), xi^((q-1)/2)) on BN curves, None on BLS12


# --- curve data, derived from py_ecc ------------------------------------------------------------------


def compute_signed_digits(curve: Curve) -> tuple[int, ...]:
    """py_ecc's signed digits of the loop count below the leading 1 (R starts at Q), high first."""
    pairing_module = curve.module.optimized_pairing
    encoding = list(pairing_module.pseudo_binary_encoding)
    # the digits must spell py_ecc's loop count
    if sum(d << i for i, d in enumerate(encoding)) != pairing_module.ate_loop_count:
        raise ValueError(f"signed digits of {curve.name} do not match its ate loop count")
    digits = encoding[::-1]
    while digits[0] == 0:
        digits.pop(0)
    return tuple(digits[1:])


@lru_cache(maxsize=None)
def get_loop_data(curve: Curve) -> LoopData:
    q = curve.q
    c = -curve.FQ12.FQ12_MODULUS_COEFFS[6] // 2
    w = curve.FQ12([0, 1] + [0] * 10)
    one2, fq12_one = curve.FQ2.one(), curve.FQ12.one()
    tx, ty, tz = curve.module.twist((one2, one2, one2))
    # D-type twist (BN254): (x w^2, y w^3); M-type (BLS12-381): (x w^-2, y w^-3)
    if tx / tz == w**2 and ty / tz == w**3:
        line_powers = (0, 1, 3)  # y_P + (-lambda x_P) w + (lambda x_R - y_R) w^3
        xi: Fq2 = (c, 1)
        frobenius = (fq2_pow(xi, (q - 1) // 3, q), fq2_pow(xi, (q - 1) // 2, q))
    elif tx / tz * w**2 == fq12_one and ty / tz * w**3 == fq12_one:
        line_powers = (6, 5, 3)  # the same line times w^6, which lies in Fq2
        frobenius = None
    else:
        raise ValueError(f"unsupported twist for {curve.name}")
    return LoopData(q, c, compute_signed_digits(curve), line_powers, frobenius)


# --- lines ------------------------------------------------------------------------------------------


def compute_line(data: LoopData, p: tuple[int, int], r: Fq2x2, slope: Fq2) -> list[int]:
    """The line through R with this slope, at P, as 12 Fq12 coefficients (a few nonzero)."""
    q, c = data.q, data.c
    xp, yp = p
    (xr, yr) = r
    t1 = (-slope[0] * xp % q, -slope[1] * xp % q)
    t3 = fq2_sub(fq2_mul(slope, xr, q), yr, q)
    coeffs = [0] * 12
    p0, p1, p3 = data.line_powers
    coeffs[p0] = yp
    # a + b i at w^k is (a - c b) w^k + b w^(k+6), since i = w^6 - c
    for power, (a, b) in ((p1, t1), (p3, t3)):
        coeffs[power] = (a - c * b) % q
        coeffs[power + 6] = b
    return coeffs


def compute_step(data: LoopData, r: Fq2x2, t: Fq2x2 | None) -> tuple[Fq2, Fq2x2]:
    """Slope of the tangent at R (t None) or the chord R-T, and R + T (or 2R), affine on the twist."""
    q = data.q
    (xr, yr) = r
    if t is None:
        # tangent: 3 x^2 / 2 y
        if yr == (0, 0):
            raise DegenerateStep("tangent at a point of order 2")
        x2 = fq2_sqr(xr, q)
        slope = fq2_mul((3 * x2[0] % q, 3 * x2[1] % q), fq2_inv((2 * yr[0] % q, 2 * yr[1] % q), q), q)
        xt = xr
    else:
        (xt, yt) = t
        if xt == xr:
            raise DegenerateStep("vertical chord")
        slope = fq2_mul(fq2_sub(yt, yr, q), fq2_inv(fq2_sub(xt, xr, q), q), q)
    x3 = fq2_sub(fq2_sub(fq2_sqr(slope, q), xr, q), xt, q)
    y3 = fq2_sub(fq2_mul(slope, fq2_sub(xr, x3, q), q), yr, q)
    return slope, (x3, y3)


# --- the loop ---------------------------------------------------------------------------------------


def get_affine_ints(curve: Curve, p1: Point, q2: Point) -> tuple[tuple[int, int], Fq2x2]:
    x, y = curve.normalize(p1)
    qx, qy = curve.normalize(q2)
    return (int(x), int(y)), ((int(qx.coeffs[0]), int(qx.coeffs[1])), (int(qy.coeffs[0]), int(qy.coeffs[1])))


def negate(point: Fq2x2, q: int) -> Fq2x2:
    return point[0], ((-point[1][0]) % q, (-point[1][1]) % q)


def compute_frobenius_points(frobenius: tuple[Fq2, Fq2], point: Fq2x2, q: int) -> tuple[Fq2x2, Fq2x2]:
    """pi(Q) and -pi^2(Q) on the twist: conjugate the coordinates, scale by xi's powers."""
    gx, gy = frobenius
    x1, y1 = fq2_mul(fq2_conj(point[0], q), gx, q), fq2_mul(fq2_conj(point[1], q), gy, q)
    x2, y2 = fq2_mul(fq2_conj(x1, q), gx, q), fq2_mul(fq2_conj(y1, q), gy, q)
    return (x1, y1), negate((x2, y2), q)


def process_line(data: LoopData, fq12: type, f: Any, p: tuple[int, int], r: Fq2x2, t: Fq2x2 | None) -> tuple[Any, Fq2x2]:
    """f times the line through R and T (the tangent if T is None) at P; and R + T."""
    slope, new_r = compute_step(data, r, t)
    return f * fq12(compute_line(data, p, r, slope)), new_r


def compute_multi_miller_loop(curve: Curve, pairs: Sequence[tuple[Point, Point]]) -> Any:
    """prod_i f_i(P_i, Q_i): equal to py_ecc's product of Miller loops after the final exponentiation."""
    data, fq12 = get_loop_data(curve), curve.FQ12
    # e(O, Q) = e(P, O) = 1: the identity contributes nothing
    points = [get_affine_ints(curve, p1, q2) for p1, q2 in pairs if not (curve.is_inf(p1) or curve.is_inf(q2))]
    rs = [q2 for _, q2 in points]
    f = fq12.one()
    try:
        for digit in data.digits:
            f = f * f  # shared by all pairs
            for i, (p, q2) in enumerate(points):
                f, rs[i] = process_line(data, fq12, f, p, rs[i], None)
                if digit:
                    f, rs[i] = process_line(data, fq12, f, p, rs[i], q2 if digit == 1 else negate(q2, data.q))
        if data.frobenius is not None:
            for i, (p, q2) in enumerate(points):
                q1, minus_q2 = compute_frobenius_points(data.frobenius, q2, data.q)
                f, rs[i] = process_line(data, fq12, f, p, rs[i], q1)
                f, _ = process_line(data, fq12, f, p, rs[i], minus_q2)
    except DegenerateStep:
        return curve.multi_miller_loop_reference(list(pairs))
    return f
