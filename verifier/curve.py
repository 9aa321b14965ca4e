"""Pairing-friendly curves as one small interface over py_ecc's optimized modules.

Every constant (moduli, generators, orders, curve coefficients) is taken from py_ecc; none is
typed in here. The same Groth16 code runs on BN254 (the default) and BLS12-381 by choosing a
`Curve` from `CURVES`.

Points are py_ecc's projective triples (x, y, z); the identity has z == 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import isqrt
from types import ModuleType
from typing import Any, Sequence

from py_ecc import optimized_bls12_381, optimized_bn128

from verifier import jacobian
from verifier.pairing import compute_multi_miller_loop

Point = tuple[Any, Any, Any]


@dataclass(frozen=True)
class Curve:
    """A pairing-friendly curve: groups G1, G2 (on the twist), GT, and the scalar field Fr."""

    name: str  # snarkjs's name: "bn128" or "bls12381"
    module: ModuleType

    # --- constants, all read from py_ecc ---
    @property
    def r(self) -> int:
        """Order of G1, G2 and GT: the modulus of the scalar field Fr."""
        return self.module.curve_order

    @property
    def q(self) -> int:
        """Modulus of the base field Fq."""
        return self.module.field_modulus

    @property
    def G1(self) -> Point:
        return self.module.G1

    @property
    def G2(self) -> Point:
        return self.module.G2

    @property
    def Z1(self) -> Point:
        return self.module.Z1

    @property
    def Z2(self) -> Point:
        return self.module.Z2

    @property
    def FQ(self) -> type:
        return self.module.FQ

    @property
    def FQ2(self) -> type:
        return self.module.FQ2

    @property
    def FQ12(self) -> type:
        return self.module.FQ12

    # --- group operations (same names as py_ecc) ---
    def add(self, p: Point, q: Point) -> Point:
        return self.module.add(p, q)

    def double(self, p: Point) -> Point:
        return self.module.double(p)

    def neg(self, p: Point) -> Point:
        return self.module.neg(p)

    def multiply(self, p: Point, n: int) -> Point:
        return self.module.multiply(p, n)

    def eq(self, p: Point, q: Point) -> bool:
        return self.module.eq(p, q)

    def is_inf(self, p: Point) -> bool:
        return self.module.is_inf(p)

    def normalize(self, p: Point) -> tuple[Any, Any]:
        return self.module.normalize(p)

    # --- membership ---
    def is_on_curve_g1(self, p: Point) -> bool:
        return self.module.is_on_curve(p, self.module.b)

    def is_on_curve_g2(self, p: Point) -> bool:
        return self.module.is_on_curve(p, self.module.b2)

    def is_in_subgroup(self, p: Point) -> bool:
        """r * P == O. Callers check the curve equation first."""
        return self.module.is_inf(self.module.multiply(p, self.r))

    def is_in_subgroup_fast(self, p: Point, group: int) -> bool:
        """`is_in_subgroup` over plain ints (verifier/jacobian.py), several times faster."""
        return jacobian.is_in_subgroup(self, group, p)

    def msm(self, points: Sequence[Point], scalars: Sequence[int], group: int = 1) -> Point:
        """sum_i scalars[i] * points[i] over plain ints (verifier/jacobian.py); scalars >= 0."""
        return jacobian.compute_msm(self, group, points, scalars)

    def msm_reference(self, points: Sequence[Point], scalars: Sequence[int], group: int = 1) -> Point:
        """The plain version of `msm`: one py_ecc multiplication per point."""
        acc = self.Z1 if group == 1 else self.Z2
        for point, scalar in zip(points, scalars, strict=True):
            acc = self.add(acc, self.multiply(point, scalar))
        return acc

    @property
    def g1_cofactor_is_one(self) -> bool:
        """True when every point on E(Fq) is in G1, so the G1 subgroup check can be skipped.

        Hasse: #E(Fq) = h * r lies within q + 1 +- 2 sqrt(q). If r itself lies there and r is wider
        than that interval, no other multiple of r does, so h == 1 (BN254: yes; BLS12-381: no).
        """
        half_width = 2 * isqrt(self.q) + 2
        return abs(self.q + 1 - self.r) <= half_width and self.r > 2 * half_width

    # --- pairing ---
    def miller_loop(self, p1: Point, q2: Point) -> Any:
        """Miller loop of e(P, Q) without the final exponentiation (P in G1, Q in G2).

        py_ecc's `pairing(..., final_exponentiate=False)` checks both points are on their curves
        and returns 1 for the identity; it is the one entry point common to both curve modules.
        """
        return self.module.pairing(q2, p1, final_exponentiate=False)

    def multi_miller_loop_reference(self, pairs: list[tuple[Point, Point]]) -> Any:
        """Product of py_ecc's Miller loops of (P_i, Q_i): the plain version of `multi_miller_loop`."""
        f = self.FQ12.one()
        for p1, q2 in pairs:
            f = f * self.miller_loop(p1, q2)
        return f

    def multi_miller_loop(self, pairs: list[tuple[Point, Point]]) -> Any:
        """Product of the Miller loops of (P_i, Q_i), sharing one accumulator (verifier/pairing.py).

        Equal to `multi_miller_loop_reference` after `final_exponentiate`; one final
        exponentiation then covers all pairs. Callers check the points first.
        """
        return compute_multi_miller_loop(self, pairs)

    def final_exponentiate(self, f: Any) -> Any:
        return self.module.final_exponentiate(f)

    def pairing(self, p1: Point, q2: Point) -> Any:
        return self.final_exponentiate(self.miller_loop(p1, q2))


BN254 = Curve("bn128", optimized_bn128)
BLS12_381 = Curve("bls12381", optimized_bls12_381)
CURVES: dict[str, Curve] = {"bn128": BN254, "bn254": BN254, "bls12381": BLS12_381, "bls12-381": BLS12_381}
