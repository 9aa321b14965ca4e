"""Curve arithmetic on raw Python ints, for the prover's hot loops (MSM, fixed-base setup).

py_ecc's FQ/FQ2 objects cost a Python object per field operation; here Fq elements are ints and
Fq2 elements are pairs of ints, with the moduli taken from the `verifier.curve.Curve`. Points:
- affine: (x, y), or None for the identity (the form the proving key stores);
- Jacobian: (X, Y, Z) with x = X/Z^2, y = Y/Z^3, or None for the identity.
Both curves have a = 0 (y^2 = x^3 + b), which the doubling formula uses.

`G1Arith` and `G2Arith` have the same methods; they differ only in the field, and are written out
twice because in pure Python a function call per field operation would cost as much as the
arithmetic. py_ecc's `add`/`multiply` stay the reference: tests compare the two.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from verifier.curve import Curve, Point

Fq2 = tuple[int, int]
Fq2Point = tuple[Fq2, Fq2]
Affine = Optional[tuple[Any, Any]]
Jacobian = Optional[tuple[Any, Any, Any]]


def _check_fq2_modulus(curve: Curve) -> None:
    # the Fq2 formulas below use u^2 = -1; py_ecc's FQ2 modulus x^2 + c1 x + c0 must be x^2 + 1
    coeffs = tuple(curve.FQ2.FQ2_MODULUS_COEFFS)
    if coeffs != (1, 0):
        raise NotImplementedError(f"Fq2 = Fq[u]/(u^2 + 1) expected for {curve.name}, got modulus coefficients {coeffs}")


class G1Arith:
    """Arithmetic in G1 (coordinates in Fq)."""

    group = 1
    # cost of one bucket-summing step relative to one batched affine addition (tunes the MSM window)
    bucket_cost = 3.5

    def __init__(self, curve: Curve):
        self.curve = curve
        self.q: int = curve.q
        self.b: int = int(curve.module.b)

    # --- conversions ---
    def from_py_ecc(self, point: Point) -> Affine:
        if self.curve.is_inf(point):
            return None
        x, y = self.curve.normalize(point)
        return (int(x), int(y))

    def to_py_ecc(self, point: Affine) -> Point:
        if point is None:
            return self.curve.Z1
        FQ = self.curve.FQ
        return (FQ(point[0]), FQ(point[1]), FQ(1))

    def is_on_curve(self, point: Affine) -> bool:
        if point is None:
            return True
        x, y = point
        q = self.q
        return 0 <= x < q and 0 <= y < q and (y * y - x * x * x - self.b) % q == 0

    def neg(self, point: Affine) -> Affine:
        return None if point is None else (point[0], (-point[1]) % self.q)

    # --- group law ---
    def double(self, p: Jacobian) -> Jacobian:
        if p is None:
            return None
        X, Y, Z = p
        q = self.q
        if Y == 0:
            return None
        YY = Y * Y % q
        S = 4 * X * YY % q
        M = 3 * X * X % q
        X3 = (M * M - 2 * S) % q
        Y3 = (M * (S - X3) - 8 * YY * YY) % q
        Z3 = 2 * Y * Z % q
        return (X3, Y3, Z3)

    def add_mixed(self, p: Jacobian, a: Affine) -> Jacobian:
        """Jacobian + affine."""
        if a is None:
            return p
        if p is None:
            return (a[0], a[1], 1)
        X1, Y1, Z1 = p
        x2, y2 = a
        q = self.q
        ZZ = Z1 * Z1 % q
        H = (x2 * ZZ - X1) % q
        R = (y2 * ZZ * Z1 - Y1) % q
        if H == 0:
            return self.double(p) if R == 0 else None
        HH = H * H % q
        HHH = H * HH % q
        V = X1 * HH % q
        X3 = (R * R - HHH - 2 * V) % q
        Y3 = (R * (V - X3) - Y1 * HHH) % q
        Z3 = Z1 * H % q
        return (X3, Y3, Z3)

    def add(self, p: Jacobian, p2: Jacobian) -> Jacobian:
        """Jacobian + Jacobian."""
        if p is None:
            return p2
        if p2 is None:
            return p
        X1, Y1, Z1 = p
        X2, Y2, Z2 = p2
        q = self.q
        Z1Z1 = Z1 * Z1 % q
        Z2Z2 = Z2 * Z2 % q
        U1 = X1 * Z2Z2 % q
        S1 = Y1 * Z2 * Z2Z2 % q
        H = (X2 * Z1Z1 - U1) % q
        R = (Y2 * Z1 * Z1Z1 - S1) % q
        if H == 0:
            return self.double(p) if R == 0 else None
        HH = H * H % q
        HHH = H * HH % q
        V = U1 * HH % q
        X3 = (R * R - HHH - 2 * V) % q
        Y3 = (R * (V - X3) - S1 * HHH) % q
        Z3 = Z1 * Z2 * H % q
        return (X3, Y3, Z3)

    # --- many sums at once ---
    def sum_lists(self, lists: Sequence[list[tuple[int, int]]]) -> list[Affine]:
        """The sum of each list of affine points, in affine.

        Rounds of pairwise affine additions: every round adds all adjacent pairs of all lists with
        one shared inversion (Montgomery's trick), so an addition costs about 6 products instead of
        a mixed Jacobian addition's 11, and no Python call.
        """
        return sum_lists_in_rounds(lists, self._add_pairs)

    def _add_pairs(self, lefts: list[tuple[int, int]], rights: list[tuple[int, int]]) -> tuple[list[Affine], bool]:
        """lefts[k] + rights[k] for every k with one shared inversion; (sums, whether any cancelled)."""
        q = self.q
        prefix = []
        acc = 1
        for (x1, _), (x2, _) in zip(lefts, rights):
            prefix.append(acc)
            if x1 != x2:
                acc = acc * (x2 - x1) % q
        inv = pow(acc, -1, q)
        sums: list[Affine] = []
        cancelled = False
        for (x1, y1), (x2, y2), before in zip(reversed(lefts), reversed(rights), reversed(prefix)):
            if x1 == x2:
                # P + P or P + (-P): rare, done on its own
                if y1 == y2:
                    sums.append(self.to_affine(self.double((x1, y1, 1))))
                else:
                    sums.append(None)
                    cancelled = True
                continue
            lam = (y2 - y1) * inv * before % q
            inv = inv * (x2 - x1) % q
            x3 = (lam * lam - x1 - x2) % q
            sums.append((x3, (lam * (x1 - x3) - y1) % q))
        sums.reverse()
        return sums, cancelled

    # --- normalisation ---
    def to_affine(self, p: Jacobian) -> Affine:
        if p is None:
            return None
        X, Y, Z = p
        q = self.q
        zi = pow(Z, -1, q)
        zi2 = zi * zi % q
        return (X * zi2 % q, Y * zi2 * zi % q)

    def batch_to_affine(self, points: Sequence[Jacobian]) -> list[Affine]:
        """Many Jacobian points to affine with one inversion (Montgomery's trick)."""
        q = self.q
        zs = [p[2] for p in points if p is not None]
        inverses = compute_batch_inverse(zs, q)
        out: list[Affine] = []
        k = 0
        for p in points:
            if p is None:
                out.append(None)
                continue
            zi = inverses[k]
            k += 1
            zi2 = zi * zi % q
            out.append((p[0] * zi2 % q, p[1] * zi2 * zi % q))
        return out


def _fq2_inv(a: Fq2, q: int) -> Fq2:
    # (a0 + a1 u)^-1 = (a0 - a1 u) / (a0^2 + a1^2) because u^2 = -1
    a0, a1 = a
    t = pow((a0 * a0 + a1 * a1) % q, -1, q)
    return (a0 * t % q, -a1 * t % q)


class G2Arith:
    """Arithmetic in G2 on the twist (coordinates in Fq2 = Fq[u]/(u^2 + 1), as int pairs)."""

    group = 2
    # cost of one bucket-summing step relative to one batched affine addition (tunes the MSM window)
    bucket_cost = 3.5

    def __init__(self, curve: Curve):
        _check_fq2_modulus(curve)
        self.curve = curve
        self.q: int = curve.q
        b2 = curve.module.b2
        self.b: Fq2 = (int(b2.coeffs[0]), int(b2.coeffs[1]))

    # --- conversions ---
    def from_py_ecc(self, point: Point) -> Affine:
        if self.curve.is_inf(point):
            return None
        x, y = self.curve.normalize(point)
        return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))

    def to_py_ecc(self, point: Affine) -> Point:
        if point is None:
            return self.curve.Z2
        FQ2 = self.curve.FQ2
        return (FQ2(list(point[0])), FQ2(list(point[1])), FQ2([1, 0]))

    def is_on_curve(self, point: Affine) -> bool:
        if point is None:
            return True
        (x0, x1), (y0, y1) = point
        q = self.q
        if not all(0 <= c < q for c in (x0, x1, y0, y1)):
            return False
        # y^2 - x^3 - b in Fq2
        yy0, yy1 = (y0 * y0 - y1 * y1) % q, 2 * y0 * y1 % q
        xx0, xx1 = (x0 * x0 - x1 * x1) % q, 2 * x0 * x1 % q
        xxx0, xxx1 = (xx0 * x0 - xx1 * x1) % q, (xx0 * x1 + xx1 * x0) % q
        return (yy0 - xxx0 - self.b[0]) % q == 0 and (yy1 - xxx1 - self.b[1]) % q == 0

    def neg(self, point: Affine) -> Affine:
        if point is None:
            return None
        q = self.q
        return (point[0], ((-point[1][0]) % q, (-point[1][1]) % q))

    # --- group law (each line is the G1 formula with Fq2 products written out) ---
    def double(self, p: Jacobian) -> Jacobian:
        if p is None:
            return None
        (X0, X1), (Y0, Y1), (Z0, Z1) = p
        q = self.q
        if Y0 == 0 and Y1 == 0:
            return None
        YY0, YY1 = (Y0 + Y1) * (Y0 - Y1) % q, 2 * Y0 * Y1 % q
        S0, S1 = 4 * (X0 * YY0 - X1 * YY1) % q, 4 * (X0 * YY1 + X1 * YY0) % q
        M0, M1 = 3 * (X0 + X1) * (X0 - X1) % q, 6 * X0 * X1 % q
        X30 = ((M0 + M1) * (M0 - M1) - 2 * S0) % q
        X31 = (2 * M0 * M1 - 2 * S1) % q
        Y4_0, Y4_1 = (YY0 + YY1) * (YY0 - YY1) % q, 2 * YY0 * YY1 % q
        D0, D1 = S0 - X30, S1 - X31
        Y30 = (M0 * D0 - M1 * D1 - 8 * Y4_0) % q
        Y31 = (M0 * D1 + M1 * D0 - 8 * Y4_1) % q
        Z30 = 2 * (Y0 * Z0 - Y1 * Z1) % q
        Z31 = 2 * (Y0 * Z1 + Y1 * Z0) % q
        return ((X30, X31), (Y30, Y31), (Z30, Z31))

    def add_mixed(self, p: Jacobian, a: Affine) -> Jacobian:
        """Jacobian + affine."""
        if a is None:
            return p
        if p is None:
            return (a[0], a[1], (1, 0))
        (X10, X11), (Y10, Y11), (Z0, Z1) = p
        (x0, x1), (y0, y1) = a
        q = self.q
        ZZ0, ZZ1 = (Z0 + Z1) * (Z0 - Z1) % q, 2 * Z0 * Z1 % q
        ZZZ0, ZZZ1 = (ZZ0 * Z0 - ZZ1 * Z1) % q, (ZZ0 * Z1 + ZZ1 * Z0) % q
        H0 = (x0 * ZZ0 - x1 * ZZ1 - X10) % q
        H1 = (x0 * ZZ1 + x1 * ZZ0 - X11) % q
        R0 = (y0 * ZZZ0 - y1 * ZZZ1 - Y10) % q
        R1 = (y0 * ZZZ1 + y1 * ZZZ0 - Y11) % q
        if H0 == 0 and H1 == 0:
            return self.double(p) if R0 == 0 and R1 == 0 else None
        return self._finish_add(X10, X11, Y10, Y11, Z0, Z1, H0, H1, R0, R1)

    def add(self, p: Jacobian, p2: Jacobian) -> Jacobian:
        """Jacobian + Jacobian."""
        if p is None:
            return p2
        if p2 is None:
            return p
        (X10, X11), (Y10, Y11), (Z10, Z11) = p
        (X20, X21), (Y20, Y21), (Z20, Z21) = p2
        q = self.q
        A0, A1 = (Z10 + Z11) * (Z10 - Z11) % q, 2 * Z10 * Z11 % q  # Z1^2
        B0, B1 = (Z20 + Z21) * (Z20 - Z21) % q, 2 * Z20 * Z21 % q  # Z2^2
        U10, U11 = (X10 * B0 - X11 * B1) % q, (X10 * B1 + X11 * B0) % q
        U20, U21 = (X20 * A0 - X21 * A1) % q, (X20 * A1 + X21 * A0) % q
        Bz0, Bz1 = (B0 * Z20 - B1 * Z21) % q, (B0 * Z21 + B1 * Z20) % q  # Z2^3
        Az0, Az1 = (A0 * Z10 - A1 * Z11) % q, (A0 * Z11 + A1 * Z10) % q  # Z1^3
        S10, S11 = (Y10 * Bz0 - Y11 * Bz1) % q, (Y10 * Bz1 + Y11 * Bz0) % q
        S20, S21 = (Y20 * Az0 - Y21 * Az1) % q, (Y20 * Az1 + Y21 * Az0) % q
        H0, H1 = (U20 - U10) % q, (U21 - U11) % q
        R0, R1 = (S20 - S10) % q, (S21 - S11) % q
        if H0 == 0 and H1 == 0:
            return self.double(p) if R0 == 0 and R1 == 0 else None
        Z0, Z1 = (Z10 * Z20 - Z11 * Z21) % q, (Z10 * Z21 + Z11 * Z20) % q
        return self._finish_add(U10, U11, S10, S11, Z0, Z1, H0, H1, R0, R1)

    def _finish_add(self, U0: int, U1: int, S0: int, S1: int, Z0: int, Z1: int,
                    H0: int, H1: int, R0: int, R1: int) -> Jacobian:
        # X3 = R^2 - H^3 - 2 U H^2, Y3 = R (U H^2 - X3) - S H^3, Z3 = Z H
        q = self.q
        HH0, HH1 = (H0 + H1) * (H0 - H1) % q, 2 * H0 * H1 % q
        HHH0, HHH1 = (H0 * HH0 - H1 * HH1) % q, (H0 * HH1 + H1 * HH0) % q
        V0, V1 = (U0 * HH0 - U1 * HH1) % q, (U0 * HH1 + U1 * HH0) % q
        X30 = ((R0 + R1) * (R0 - R1) - HHH0 - 2 * V0) % q
        X31 = (2 * R0 * R1 - HHH1 - 2 * V1) % q
        D0, D1 = V0 - X30, V1 - X31
        Y30 = (R0 * D0 - R1 * D1 - (S0 * HHH0 - S1 * HHH1)) % q
        Y31 = (R0 * D1 + R1 * D0 - (S0 * HHH1 + S1 * HHH0)) % q
        Z30, Z31 = (Z0 * H0 - Z1 * H1) % q, (Z0 * H1 + Z1 * H0) % q
        return ((X30, X31), (Y30, Y31), (Z30, Z31))

    # --- many sums at once ---
    def sum_lists(self, lists: Sequence[list[Fq2Point]]) -> list[Affine]:
        """The sum of each list of affine points, in affine: G1's batched rounds, over Fq2.

        Each round adds all adjacent pairs with one shared Fq2 inversion; an addition costs about
        6 Fq2 products instead of a mixed Jacobian addition's 11.
        """
        return sum_lists_in_rounds(lists, self._add_pairs)

    def _add_pairs(self, lefts: list[Fq2Point], rights: list[Fq2Point]) -> tuple[list[Affine], bool]:
        """lefts[k] + rights[k] for every k with one shared Fq2 inversion; (sums, whether any cancelled)."""
        q = self.q
        prefix: list[Fq2] = []
        a0, a1 = 1, 0
        for (x1, _), (x2, _) in zip(lefts, rights):
            prefix.append((a0, a1))
            if x1 != x2:
                d0, d1 = x2[0] - x1[0], x2[1] - x1[1]
                a0, a1 = (a0 * d0 - a1 * d1) % q, (a0 * d1 + a1 * d0) % q
        i0, i1 = _fq2_inv((a0, a1), q)
        sums: list[Affine] = []
        cancelled = False
        for (x1, y1), (x2, y2), (p0, p1) in zip(reversed(lefts), reversed(rights), reversed(prefix)):
            if x1 == x2:
                # P + P or P + (-P): rare, done on its own
                if y1 == y2:
                    sums.append(self.to_affine(self.double((x1, y1, (1, 0)))))
                else:
                    sums.append(None)
                    cancelled = True
                continue
            d0, d1 = x2[0] - x1[0], x2[1] - x1[1]
            # 1 / (x2 - x1) = inv * prefix; then inv absorbs (x2 - x1) for the next pair down
            e0, e1 = (i0 * p0 - i1 * p1) % q, (i0 * p1 + i1 * p0) % q
            i0, i1 = (i0 * d0 - i1 * d1) % q, (i0 * d1 + i1 * d0) % q
            n0, n1 = y2[0] - y1[0], y2[1] - y1[1]
            l0, l1 = (n0 * e0 - n1 * e1) % q, (n0 * e1 + n1 * e0) % q
            x30 = ((l0 + l1) * (l0 - l1) - x1[0] - x2[0]) % q
            x31 = (2 * l0 * l1 - x1[1] - x2[1]) % q
            t0, t1 = x1[0] - x30, x1[1] - x31
            sums.append(((x30, x31), ((l0 * t0 - l1 * t1 - y1[0]) % q, (l0 * t1 + l1 * t0 - y1[1]) % q)))
        sums.reverse()
        return sums, cancelled

    # --- normalisation ---
    def _affine_with(self, p: tuple[Fq2, Fq2, Fq2], zi: Fq2) -> tuple[Fq2, Fq2]:
        q = self.q
        (X0, X1), (Y0, Y1), _ = p
        z0, z1 = zi
        zz0, zz1 = (z0 + z1) * (z0 - z1) % q, 2 * z0 * z1 % q
        zzz0, zzz1 = (zz0 * z0 - zz1 * z1) % q, (zz0 * z1 + zz1 * z0) % q
        return (
            ((X0 * zz0 - X1 * zz1) % q, (X0 * zz1 + X1 * zz0) % q),
            ((Y0 * zzz0 - Y1 * zzz1) % q, (Y0 * zzz1 + Y1 * zzz0) % q),
        )

    def to_affine(self, p: Jacobian) -> Affine:
        if p is None:
            return None
        return self._affine_with(p, _fq2_inv(p[2], self.q))

    def batch_to_affine(self, points: Sequence[Jacobian]) -> list[Affine]:
        """Many Jacobian points to affine with one inversion (Montgomery's trick over Fq2)."""
        q = self.q
        present = [p for p in points if p is not None]
        # prefix products in Fq2
        prefix: list[Fq2] = []
        acc: Fq2 = (1, 0)
        for p in present:
            prefix.append(acc)
            z0, z1 = p[2]
            acc = ((acc[0] * z0 - acc[1] * z1) % q, (acc[0] * z1 + acc[1] * z0) % q)
        inv = _fq2_inv(acc, q) if present else (1, 0)
        inverses: list[Fq2] = [(0, 0)] * len(present)
        for k in range(len(present) - 1, -1, -1):
            p0, p1 = prefix[k]
            inverses[k] = ((inv[0] * p0 - inv[1] * p1) % q, (inv[0] * p1 + inv[1] * p0) % q)
            z0, z1 = present[k][2]
            inv = ((inv[0] * z0 - inv[1] * z1) % q, (inv[0] * z1 + inv[1] * z0) % q)
        out: list[Affine] = []
        k = 0
        for p in points:
            if p is None:
                out.append(None)
                continue
            out.append(self._affine_with(p, inverses[k]))
            k += 1
        return out


def sum_lists_in_rounds(lists: Sequence[list], add_pairs: Callable[[list, list], tuple[list, bool]]) -> list:
    """The sum of each list of affine points, by rounds: each round adds all adjacent pairs of all
    lists at once with `add_pairs` (one shared inversion per round), until one point per list is
    left. A list whose points cancel to the identity gives None."""
    out: list = [None] * len(lists)
    work: list[tuple[int, list]] = []
    for i, pts in enumerate(lists):
        if len(pts) == 1:
            out[i] = pts[0]
        elif pts:
            work.append((i, pts))
    while work:
        lefts: list = []
        rights: list = []
        for _, pts in work:
            lefts.extend(pts[0:len(pts) - 1:2])
            rights.extend(pts[1::2])
        sums, cancelled = add_pairs(lefts, rights)
        next_work = []
        pos = 0
        for i, pts in work:
            half = len(pts) >> 1
            merged = sums[pos:pos + half]
            pos += half
            if cancelled:
                merged = [p for p in merged if p is not None]
            if len(pts) & 1:
                merged.append(pts[-1])
            if len(merged) > 1:
                next_work.append((i, merged))
            elif merged:
                out[i] = merged[0]
        work = next_work
    return out


def compute_batch_inverse(values: Sequence[int], modulus: int) -> list[int]:
    """Inverses of non-zero values mod a prime with one modular inversion."""
    prefix: list[int] = []
    acc = 1
    for v in values:
        prefix.append(acc)
        acc = acc * v % modulus
    inv = pow(acc, -1, modulus) if values else 1
    out = [0] * len(values)
    for k in range(len(values) - 1, -1, -1):
        out[k] = inv * prefix[k] % modulus
        inv = inv * values[k] % modulus
    return out


Arith = G1Arith | G2Arith
_ARITH_CACHE: dict[tuple[str, int], Arith] = {}


def get_arith(curve: Curve, group: int) -> Arith:
    """The raw-int arithmetic of G1 (group=1) or G2 (group=2) of a curve."""
    # only the two source groups of the pairing have point arithmetic here
    if group not in (1, 2):
        raise ValueError(f"group must be 1 or 2, got {group}")
    key = (curve.name, group)
    if key not in _ARITH_CACHE:
        _ARITH_CACHE[key] = G1Arith(curve) if group == 1 else G2Arith(curve)
    return _ARITH_CACHE[key]


_FIXED_BASE_CHUNK = 4096


def compute_fixed_base_muls(arith: Arith, base: Affine, scalars: Sequence[int], scalar_bits: int) -> list[Affine]:
    """[k * base for k in scalars] in affine, by a windowed table of base's multiples.

    Used by the setup, where one generator is multiplied by thousands of known scalars: with a
    window of w bits each product is a sum of ceil(bits / w) table points (summed for all scalars
    at once by `sum_lists`), after building a table of ceil(bits / w) * 2^w points once.
    """
    # the identity has no multiples worth a table
    if base is None:
        raise ValueError("fixed-base multiplication needs a base point other than the identity")
    for k in scalars:
        # the table covers scalar_bits bits of non-negative scalars
        if k < 0 or k >> scalar_bits:
            raise ValueError(f"scalar {k} is outside [0, 2^{scalar_bits})")
    n = max(1, sum(1 for k in scalars if k))
    window = min(range(2, 17), key=lambda w: -(-scalar_bits // w) * (n + (1 << w)))
    n_windows = -(-scalar_bits // window)
    size = 1 << window
    # table[j][d] = d * 2^(j*window) * base, affine
    table: list[list[Affine]] = []
    start: Jacobian = (base[0], base[1], 1 if arith.group == 1 else (1, 0))
    for _ in range(n_windows):
        row: list[Jacobian] = [None]
        acc: Jacobian = None
        for _d in range(1, size):
            acc = arith.add(acc, start)
            row.append(acc)
        table.append(arith.batch_to_affine(row))
        for _ in range(window):
            start = arith.double(start)
    mask = size - 1
    out: list[Affine] = []
    # in chunks: sum_lists' first round holds about bits / (2 w) new points per scalar
    for start_index in range(0, len(scalars), _FIXED_BASE_CHUNK):
        lists: list[list[Any]] = []
        for k in scalars[start_index:start_index + _FIXED_BASE_CHUNK]:
            terms = []
            j = 0
            while k:
                d = k & mask
                if d:
                    terms.append(table[j][d])
                k >>= window
                j += 1
            lists.append(terms)
        out.extend(arith.sum_lists(lists))
    return out
