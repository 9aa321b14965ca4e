"""BabyJubJub, the twisted Edwards curve a*x^2 + y^2 = 1 + d*x^2*y^2 over BN254's scalar field (circomlib's).

Parameters are circomlibjs 0.1.7's (`src/babyjub.js`; the same a, d as circomlib 2.0.5's
`circuits/babyjub.circom`), the field modulus is py_ecc's `curve_order`; all are checked on load
(the generators on the curve, Base8 = 8 * Generator, the group orders) and against circomlibjs by
the interop tests. Points are affine tuples `(x, y)` of ints; the identity is `(0, 1)`.

Implementations, same API and results (`IMPLEMENTATIONS`; one test suite runs over both):
- `reference`: circomlibjs's affine addition (one field inversion per addition) and its
  double-and-add scalar multiplication, line for line.
- `fast`: extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, x*y = T/Z (Hisil-Wong-Carter-Dawson
  2008, unified addition: complete here since a is a square and d is not), on gmpy2 integers when
  installed; a 4-bit fixed window for any base, and precomputed tables of signed digits (no
  doublings at all) for Base8 (8-bit digits) and for any point given to `precompute` (4-bit), their
  additions on the isomorphic a = -1 curve (7 multiplications instead of 10);
  subgroup membership by an order-8 Tate pairing (one exponentiation, not a multiplication by l);
  multi-scalar multiplication by Pippenger's bucket method on the isomorphic a = -1 curve, each
  point joining only the windows its scalar reaches.
Wherever a precomputed table of a point Q is taken, Q itself is accepted too (the reference's
`precompute` returns Q): a key seen a few times is not worth its table (verifier.eddsa).
`babyjub` is the fast one. `batch_equals` checks a batch of EdDSA verification equations combined
into one (verifier.eddsa.verify_many).

Packing is circomlibjs's `packPoint`: y in 32 little-endian bytes, the top bit of the last byte set
when x > (p - 1) / 2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

from py_ecc.optimized_bn128 import curve_order

try:
    import gmpy2

    _mpz: Callable[[int], Any] = gmpy2.mpz
except ImportError:  # pragma: no cover - gmpy2 is the optional extra `fast`
    gmpy2 = None
    _mpz = int

Point = tuple[int, int]
Scalar = int

P = curve_order  # BN254's scalar field: BabyJubJub's base field
# From circomlibjs 0.1.7 src/babyjub.js (A, D also in circomlib's babyjub.circom)
A = 168700
D = 168696
GENERATOR: Point = (
    995203441582195749578291179787384436505546430278305826713579947235728471134,
    5472060717959818805561601436314318772137091100104008585924551046643952123905,
)
BASE8: Point = (
    5299619240641551281634865583518297030282874472190772894086521144482721001553,
    16950150798460657717958625567821834550301663161624707787222815936182638968203,
)
ORDER = 21888242871839275222246405745257275088614511777268538073601725287587578984328
SUBORDER = ORDER >> 3  # the prime order of the subgroup Base8 generates (circomlibjs's subOrder)
COFACTOR = 8
IDENTITY: Point = (0, 1)
_HALF_P = (P - 1) // 2


class InvalidPoint(ValueError):
    """A point (or packed point) that is malformed, off the curve or outside the subgroup."""


# ---- reference: circomlibjs's formulas ----


def _inv(a: int) -> int:
    return pow(a, P - 2, P)


def is_on_curve(p: Point) -> bool:
    """a*x^2 + y^2 == 1 + d*x^2*y^2, with both coordinates canonical field elements."""
    if not (isinstance(p, tuple) and len(p) == 2 and all(isinstance(c, int) and 0 <= c < P for c in p)):
        return False
    x2, y2 = p[0] * p[0] % P, p[1] * p[1] % P
    return (A * x2 + y2) % P == (1 + D * x2 * y2) % P


def check_point(p: Any, what: str = "point") -> None:
    """Raise InvalidPoint unless `p` is a pair of field elements on the curve."""
    if not (isinstance(p, tuple) and len(p) == 2):
        raise InvalidPoint(f"{what} must be a pair (x, y) of ints, got {type(p).__name__}")
    for name, c in zip("xy", p):
        if isinstance(c, bool) or not isinstance(c, int):
            raise InvalidPoint(f"{what}.{name} must be an int, got {type(c).__name__}")
        if not 0 <= c < P:
            raise InvalidPoint(f"{what}.{name} is not a field element (must be in [0, p))")
    if not is_on_curve(p):
        raise InvalidPoint(f"{what} is not on BabyJubJub")


def _ref_add(p: Point, q: Point) -> Point:
    # circomlibjs addPoint: beta, gamma, delta, tau as in the circuit's BabyAdd
    beta = p[0] * q[1] % P
    gamma = p[1] * q[0] % P
    delta = (p[1] - A * p[0]) * (q[0] + q[1]) % P
    dtau = D * beta * gamma % P
    x = (beta + gamma) * _inv((1 + dtau) % P) % P
    y = (delta + A * beta - gamma) * _inv((1 - dtau) % P) % P
    return (x, y)


def _ref_mul(p: Point, e: int) -> Point:
    # circomlibjs mulPointEscalar: right-to-left double-and-add
    res, exp = IDENTITY, p
    while e:
        if e & 1:
            res = _ref_add(res, exp)
        exp = _ref_add(exp, exp)
        e >>= 1
    return res


def neg(p: Point) -> Point:
    return ((-p[0]) % P, p[1])


def pack_point(p: Point) -> bytes:
    """circomlibjs packPoint: y little-endian, bit 255 = (x > (p - 1) / 2)."""
    check_point(p)
    buf = bytearray(p[1].to_bytes(32, "little"))
    if p[0] > _HALF_P:
        buf[31] |= 0x80
    return bytes(buf)


def _sqrt(a: int) -> int | None:
    """A square root mod P (Tonelli-Shanks), or None when `a` is not a square."""
    if a == 0:
        return 0
    if pow(a, (P - 1) // 2, P) != 1:
        return None
    q, s = P - 1, 0
    while q % 2 == 0:
        q, s = q // 2, s + 1
    z = 2
    while pow(z, (P - 1) // 2, P) != P - 1:
        z += 1
    m, c, t, r = s, pow(z, q, P), pow(a, q, P), pow(a, (q + 1) // 2, P)
    while t != 1:
        i, t2 = 0, t
        while t2 != 1:
            t2, i = t2 * t2 % P, i + 1
        b = pow(c, 1 << (m - i - 1), P)
        m, c, t, r = i, b * b % P, t * b * b % P, r * b % P
    return r


def unpack_point(data: bytes) -> Point:
    """circomlibjs unpackPoint, raising InvalidPoint where it returns null (and for y = p, which it
    reads as 0). The x it picks is the
    root with the packed sign (circomlibjs negates its sqrt when the bit is set; ffjavascript's
    sqrt returns the root <= (p-1)/2, so both agree)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) != 32:
        raise InvalidPoint(f"a packed point is 32 bytes, got {len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__}")
    buf = bytearray(data)
    sign = bool(buf[31] & 0x80)
    buf[31] &= 0x7F
    y = int.from_bytes(buf, "little")
    if y >= P:
        raise InvalidPoint("packed point: y is not a field element (must be < p)")
    y2 = y * y % P
    den = (A - D * y2) % P
    x2 = (1 - y2) * _inv(den) % P
    if x2 == 0:  # circomlibjs's Euler test (x2^((p-1)/2) == 1) fails on 0: it refuses x = 0 too
        raise InvalidPoint("packed point: x = 0 (the identity or the point of order 2), which circomlibjs refuses")
    x = _sqrt(x2)
    if x is None:
        raise InvalidPoint("packed point: no x on BabyJubJub for this y")
    if x > _HALF_P:
        x = P - x
    if sign:
        x = (-x) % P
    return (x, y)


class ReferenceBabyJub:
    """circomlibjs's arithmetic, affine, one inversion per addition."""

    name = "reference"

    def add(self, p: Point, q: Point) -> Point:
        return _ref_add(p, q)

    def double(self, p: Point) -> Point:
        return _ref_add(p, p)

    def mul(self, p: Point, e: int) -> Point:
        if e < 0:
            return _ref_mul(neg(p), -e)
        return _ref_mul(p, e)

    def mul_base(self, e: int) -> Point:
        return self.mul(BASE8, e)

    def in_subgroup(self, p: Point) -> bool:
        return is_on_curve(p) and self.mul(p, SUBORDER) == IDENTITY

    def in_subgroup_on_curve(self, p: Point) -> bool:
        """in_subgroup for a point already checked to be on the curve."""
        return self.mul(p, SUBORDER) == IDENTITY

    def all_in_subgroup_on_curve(self, points: Sequence[Point], seed: bytes) -> bool:
        """Every point (each on the curve) in the subgroup; `seed` as the fast curve's (unused)."""
        return all(self.in_subgroup_on_curve(p) for p in points)

    def precompute(self, p: Point) -> Point:
        return p

    def mul_precomputed(self, table: Any, e: int) -> Point:
        return self.mul(table, e)

    def mul_sub_base(self, s: int, table: Any, e: int) -> Point:
        """s * Base8 - e * Q, where `table` came from precompute(Q)."""
        return self.add(self.mul_base(s), neg(self.mul(table, e)))

    def sub_base_equals(self, s: int, table: Any, e: int, r: Point) -> bool:
        """s * Base8 - e * Q == r (the verification equation, rearranged)."""
        return self.mul_sub_base(s, table, e) == r

    def msm(self, points: Sequence[Point], scalars: Sequence[int]) -> Point:
        """sum scalars[i] * points[i], one multiplication at a time."""
        acc = IDENTITY
        for p, e in zip(points, scalars, strict=True):
            acc = self.add(acc, self.mul(p, e))
        return acc

    def batch_equals(self, s: int, keys: Sequence[tuple[Any, int]], points: Sequence[Point], scalars: Sequence[int]) -> bool:
        """s * Base8 - sum e_k * Q_k == sum z_i * R_i, for `keys` (table from precompute(Q_k), e_k)
        and `points` R_i with `scalars` z_i: a batch of verification equations in one."""
        left = self.mul_base(s)
        for table, e in keys:
            left = self.add(left, neg(self.mul(table, e)))
        return left == self.msm(points, scalars)


# ---- fast: extended coordinates ----

_A = _mpz(A)
_D = _mpz(D)
_P = _mpz(P)
Ext = tuple[Any, Any, Any, Any]  # (X, Y, Z, T)
Niels = tuple[Any, Any, Any]  # (y - x', y + x', 2*d'*x'*y) of an affine point on the a = -1 curve: a mixed addition's second operand


def _to_ext(p: Point) -> Ext:
    x, y = _mpz(p[0]), _mpz(p[1])
    return (x, y, _mpz(1), x * y % _P)


def _ext_add(p: Ext, q: Ext) -> Ext:
    # add-2008-hwcd (unified)
    a = p[0] * q[0] % _P
    b = p[1] * q[1] % _P
    c = _D * p[3] * q[3] % _P
    d = p[2] * q[2] % _P
    e = ((p[0] + p[1]) * (q[0] + q[1]) - a - b) % _P
    f = d - c
    g = d + c
    h = b - _A * a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _ext_double(p: Ext) -> Ext:
    # dbl-2008-hwcd
    a = p[0] * p[0] % _P
    b = p[1] * p[1] % _P
    c = 2 * p[2] * p[2] % _P
    d = _A * a
    e = ((p[0] + p[1]) * (p[0] + p[1]) - a - b) % _P
    g = d + b
    f = g - c
    h = d - b
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _ext_to_affine(p: Ext) -> Point:
    zi = pow(p[2], -1, _P) if gmpy2 is None else gmpy2.invert(p[2], _P)
    return (int(p[0] * zi % _P), int(p[1] * zi % _P))


def _ext_equals_affine(p: Ext, q: Point) -> bool:
    return (p[0] - q[0] * p[2]) % _P == 0 and (p[1] - q[1] * p[2]) % _P == 0


_EXT_IDENTITY: Ext = (_mpz(0), _mpz(1), _mpz(1), _mpz(0))


# Tables and buckets live on the isomorphic curve -x'^2 + y^2 = 1 + d' x'^2 y^2 (x' = c x,
# c^2 = -a, d' = -d / a; -1 and a are squares mod p, d' is not, so its formulas stay complete),
# where a mixed addition of (y - x', y + x', 2 d' x' y) costs 7 multiplications instead of 10
# (Hisil-Wong-Carter-Dawson 2008, add-2008-hwcd-3 and dbl-2008-hwcd with a = -1).
_C = _sqrt((-A) % P)
if _C is None:  # pragma: no cover - the constants check below would fail too
    raise ValueError("BabyJubJub constants: -a is not a square")
_C_MPZ = _mpz(_C)
_C_INV = _mpz(_inv(_C))
_K_M1 = _mpz(2 * (-D) * _inv(A) % P)  # 2 d'
_HALF = _mpz(_inv(2))


def _batch_to_niels(points: list[Ext]) -> list[Niels]:
    """(y - x', y + x', 2 d' x' y) on the a = -1 curve of many points, one inversion (Montgomery's trick)."""
    prefix, acc = [], _mpz(1)
    for p in points:
        prefix.append(acc)
        acc = acc * p[2] % _P
    inv = pow(int(acc), -1, P)
    inv = _mpz(inv)
    out: list[Niels] = [None] * len(points)  # type: ignore[list-item]
    for i in range(len(points) - 1, -1, -1):
        zi = inv * prefix[i] % _P
        inv = inv * points[i][2] % _P
        x, y = _C_MPZ * points[i][0] % _P * zi % _P, points[i][1] * zi % _P
        out[i] = (y - x, y + x, _K_M1 * x % _P * y % _P)
    return out


class FixedBaseTable:
    """j * 2^(w*i) * Q for every w-bit signed digit position i and digit j in [1, 2^(w-1)]: a scalar
    multiplication of Q is then one mixed addition per nonzero digit (no doublings); a negative
    digit adds the negated entry, which halves the table. Valid for scalars in [0, 2^bits)."""

    def __init__(self, q: Point, window: int = 4, bits: int = SUBORDER.bit_length()) -> None:
        self.point = q
        self.window = window
        self.bits = bits
        half = 1 << (window - 1)
        rows: list[list[Niels]] = []
        base = _to_ext(q)
        for _ in range((bits + window - 1) // window + 1):  # one more row for the last carry
            multiples = [base]
            for _ in range(half - 1):
                multiples.append(_ext_add(multiples[-1], base))
            rows.append(_batch_to_niels(multiples))
            for _ in range(window):
                base = _ext_double(base)
        self.rows = rows

    def covers(self, e: int) -> bool:
        return 0 <= e and e.bit_length() <= self.bits

    def affine_multiple(self, i: int) -> Point:
        """2^(window * i) * Q, affine (row i's first entry)."""
        ymx, ypx, _ = self.rows[i][0]
        return (int((ypx - ymx) * _HALF % _P * _C_INV % _P), int((ypx + ymx) * _HALF % _P))

    def mul(self, e: int, acc: Ext = _EXT_IDENTITY, negate: bool = False) -> Ext:
        """acc + e * Q (acc - e * Q with `negate`), e covered by the table."""
        # the mixed addition inlined, on local variables: a verification spends most of its time
        # in this loop, where a call and the tuples cost a tenth of the arithmetic
        w = self.window
        mask, half, full = (1 << w) - 1, 1 << (w - 1), 1 << w
        p = _P
        x1, y1, z1, t1 = acc
        x1, t1 = x1 * _C_MPZ % p, t1 * _C_MPZ % p  # onto the a = -1 curve
        for row in self.rows:
            if not e:
                break
            j = e & mask
            e >>= w
            if j > half:
                j -= full
                e += 1
            if j:
                if (j < 0) != negate:  # the negated entry: x' -> -x' swaps y - x' and y + x'
                    ypx, ymx, k = row[(j if j > 0 else -j) - 1]
                    k = -k
                else:
                    ymx, ypx, k = row[(j if j > 0 else -j) - 1]
                # madd-2008-hwcd-3 (Z2 = 1)
                aa = (y1 - x1) * ymx % p
                bb = (y1 + x1) * ypx % p
                cc = t1 * k % p
                dd = z1 + z1
                ee, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
                x1, y1, z1, t1 = ee * f % p, g * h % p, f * g % p, ee * h % p
        return (x1 * _C_INV % p, y1, z1, t1 * _C_INV % p)


def _window_mul(p: Point, e: int) -> Ext:
    """e * p with a 4-bit fixed window, left to right."""
    base = _to_ext(p)
    table = [_EXT_IDENTITY, base]
    for _ in range(14):
        table.append(_ext_add(table[-1], base))
    acc = _EXT_IDENTITY
    for shift in range(((e.bit_length() + 3) // 4 - 1) * 4, -1, -4):
        acc = _ext_double(_ext_double(_ext_double(_ext_double(acc))))
        j = (e >> shift) & 15
        if j:
            acc = _ext_add(acc, table[j])
    return acc


# ---- subgroup membership by one exponentiation (fast) ----
# E(F_p) = Z/8 x Z/l with 8 | p - 1, so the reduced Tate pairing with a point T of order 8,
# t(P) = f(P)^((p-1)/8) where div(f) = 8(T) - 8(O), maps E onto the 8th roots of unity with
# kernel 8E = the prime-order subgroup: P is in the subgroup iff t(P) == 1 (one exponentiation
# instead of l * P). f is built by Miller's algorithm on the Montgomery form
# v^2 = u^3 + A_M u^2 + u (B_M = 4 / (a - d) = 1 here), u = (1 + y) / (1 - y), v = u / x:
#     f = l_T^4 * l_2T^2 / ((u - u_2T)^4 * u)
# (l_Q the tangent at Q; the tangent at 4T, of order 2, is the vertical u = 0). Its zeros and poles
# are the points of order dividing 8, which are answered by lookup. In Edwards coordinates with
# U = 1 + y, W = 1 - y every factor becomes a polynomial over a power of (W x), W or U, and an 8th
# power vanishes in t, so t(P) == 1 iff ((L1 M)^2 L2 x)^2 (U W)^7 is an 8th power, with
# L_Q = U - v_Q W x - lambda_Q (U x - u_Q W x) and M = U - u_2T W. _check_constants tests that t
# is a homomorphism onto the 8th roots with the subgroup as kernel.


def _small_order_points() -> list[Point]:
    t8 = _ext_to_affine(_window_mul(GENERATOR, SUBORDER))  # a generator of E[8]
    pts = [IDENTITY]
    for _ in range(7):
        pts.append(_ref_add(pts[-1], t8))
    return pts


SMALL_ORDER: tuple[Point, ...] = tuple(_small_order_points())  # k * T8, k = 0..7
_SMALL_ORDER_SET = frozenset(SMALL_ORDER)
_A_M = 2 * (A + D) * _inv(A - D) % P
_B_M = 4 * _inv(A - D) % P


def _tangent(q: Point) -> tuple[int, int, int]:
    """(u, v, slope of the tangent) of the Montgomery image of Edwards point q (x, y != 0, 1)."""
    u = (1 + q[1]) * _inv(1 - q[1]) % P
    v = u * _inv(q[0]) % P
    slope = (3 * u * u + 2 * _A_M * u + 1) * _inv(2 * _B_M * v) % P
    return u, v, slope


_TATE_T = tuple(_mpz(c) for c in _tangent(SMALL_ORDER[1]))
_TATE_2T = tuple(_mpz(c) for c in _tangent(SMALL_ORDER[2]))
_TATE_EXP = (P - 1) // 8
_powmod: Callable[[Any, int, Any], Any] = gmpy2.powmod if gmpy2 is not None else pow


def _tate8_base(p: Point) -> Any:
    """k(p) with t(p) = k(p)^((p-1)/8) (p on the curve, not of small order): p is in the subgroup
    iff k(p) is an 8th power, and k is multiplicative up to 8th powers (t is a homomorphism)."""
    x, y = _mpz(p[0]), _mpz(p[1])
    u, w = 1 + y, 1 - y
    wx = w * x % _P
    ux = u * x % _P
    u1, v1, s1 = _TATE_T
    u2, v2, s2 = _TATE_2T
    l1 = u - v1 * wx - s1 * (ux - u1 * wx)
    l2 = u - v2 * wx - s2 * (ux - u2 * wx)
    m = u - u2 * w
    k = l1 * m % _P
    k = k * k % _P * l2 % _P * x % _P
    uw = u * w % _P
    uw2 = uw * uw % _P
    uw7 = uw2 * uw2 % _P * uw2 % _P * uw % _P
    return k * k % _P * uw7 % _P


def _tate8(p: Point) -> Any:
    """t(p), an 8th root of unity (p on the curve, not of small order)."""
    return _powmod(_tate8_base(p), _TATE_EXP, _P)


def is_in_subgroup(p: Point) -> bool:
    """p (on the curve) is in the prime-order subgroup: one exponentiation instead of l * p."""
    if p in _SMALL_ORDER_SET:
        return p == IDENTITY
    return _tate8(p) == 1


# Many points at once: t maps E onto mu_8 with the subgroup as kernel, so for a random subset of
# the points, prod_{i in subset} k(p_i) is an 8th power when all are in the subgroup, and when
# some p_j is not, it fails to be one for at least one of the two choices (p_j in the subset or
# not): with SUBGROUP_ROUNDS independent random subsets a batch with a point outside the
# subgroup passes with probability <= 2^-SUBGROUP_ROUNDS. (No random linear combination does
# better per exponentiation: an order-2 component is seen by only half of any coefficients.)
# Each round costs one exponentiation and one multiplication per SUBSET_GROUP points: the subset
# products of each group of points are tabulated once (2^g - 1 multiplications) and a round picks
# one entry per group with one random byte. For n points: 128 exponentiations and about
# n * (2^g / g + 128 / g) multiplications instead of n exponentiations, so from about 200 points on.
SUBGROUP_ROUNDS = 128
SUBSET_GROUP = 6
SUBGROUP_BATCH_MIN = 256
_SUBGROUP_DOMAIN = b"zk-derivatives-rollup/babyjubjub-subgroup-batch/v1"


def are_in_subgroup(points: Sequence[Point], seed: bytes) -> bool:
    """Every point (each on the curve) is in the prime-order subgroup: exactly (one exponentiation
    each) below SUBGROUP_BATCH_MIN points, else by random subset products, wrong with probability
    <= 2^-128. `seed` must bind the points (Fiat-Shamir: the caller's transcript of them); the
    subsets are SHAKE-128 of it."""
    if len(points) < SUBGROUP_BATCH_MIN:
        return all(is_in_subgroup(p) for p in points)
    bases = []
    for p in points:
        if p in _SMALL_ORDER_SET:
            if p != IDENTITY:
                return False
            continue
        bases.append(_tate8_base(p))
    g, p_mod, one = SUBSET_GROUP, _P, _mpz(1)
    tables = []
    for start in range(0, len(bases), g):
        table = [one]
        for k in bases[start : start + g]:
            table += [x * k % p_mod for x in table]
        tables.append(table * (256 // len(table)))  # indexed by a whole byte: its low bits choose
    rounds = SUBGROUP_ROUNDS
    coins = hashlib.shake_128(_SUBGROUP_DOMAIN + seed).digest(rounds * len(tables))
    # all rounds advance together, a group at a time: each table is read while it is in the cache
    # (round by round, every round would read a large batch's tables from memory)
    accs = [one] * rounds
    for i, table in enumerate(tables):
        accs = [acc * table[byte] % p_mod for acc, byte in zip(accs, coins[i * rounds : (i + 1) * rounds])]
    return all(_powmod(acc, _TATE_EXP, p_mod) == 1 for acc in accs)


# ---- multi-scalar multiplication (fast): Pippenger's bucket method ----
# The buckets live on the a = -1 curve (above).


def _m1_add(p: Ext, q: Ext) -> Ext:
    # add-2008-hwcd-3
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = p[3] * _K_M1 % _P * q[3] % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _m1_double(p: Ext) -> Ext:
    # dbl-2008-hwcd, a = -1
    a = p[0] * p[0] % _P
    b = p[1] * p[1] % _P
    c = 2 * p[2] * p[2] % _P
    e = (p[0] + p[1]) * (p[0] + p[1]) - a - b
    g = b - a
    f = g - c
    h = -a - b
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _ext_equals(p: Ext, q: Ext) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _pippenger_cost(bit_counts: dict[int, int], c: int) -> int:
    # per window, a mixed addition per point whose scalar reaches it and 2 full ones per bucket to
    # sum them (a full one costs about 1.5 mixed ones: weight 3), plus the doublings between windows
    windows = {bits: -(-(bits + 1) // c) for bits in bit_counts}
    return sum(w * bit_counts[bits] for bits, w in windows.items()) + max(windows.values()) * (3 * (1 << (c - 1)) + c)


def pippenger_window(n: int, bits: int | dict[int, int]) -> int:
    """The digit width minimising the work of an MSM of n points with `bits`-bit scalars, or of
    scalars of several lengths (`bits` maps a bit length to how many scalars have it; n unused)."""
    bit_counts = {bits: n} if isinstance(bits, int) else bits
    return min(range(2, 17), key=lambda c: _pippenger_cost(bit_counts, c))


def _pippenger(points: Sequence[Point], scalars: Sequence[int], window: int | None = None) -> Ext:
    """sum scalars[i] * points[i] (affine points on the curve) by the bucket method with signed
    digits in [-2^(c-1), 2^(c-1)): half the buckets of unsigned ones. Scalars may differ in
    length (an EdDSA batch: 128-bit coefficients and full-size key scalars): a point joins only
    the windows its scalar reaches, so short scalars do not pay for the long ones' windows."""
    n = len(points)
    if n == 0:
        return _EXT_IDENTITY
    if any(e < 0 for e in scalars):
        pairs = [(pt, e) if e >= 0 else (neg(pt), -e) for pt, e in zip(points, scalars)]
        points, scalars = [pt for pt, _ in pairs], [e for _, e in pairs]
    lengths = [max(1, e.bit_length()) for e in scalars]
    bit_counts: dict[int, int] = {}
    for bits in lengths:
        bit_counts[bits] = bit_counts.get(bits, 0) + 1
    c = window or pippenger_window(n, bit_counts)
    half, mask = 1 << (c - 1), (1 << c) - 1
    # signed recoding without carries: with H = half * sum_{k < W} 2^(c*k), z + H has W unsigned
    # digits u_k and z = sum_k (u_k - half) * 2^(c*k); per scalar, the fewest windows W for which
    # z + H fits in W digits
    offsets: dict[int, int] = {}

    def offset(windows: int) -> int:
        h = offsets.get(windows)
        if h is None:
            h = offsets[windows] = half * (((1 << (c * windows)) - 1) // mask)
        return h

    prepared = []
    for pt, e, bits in zip(points, scalars, lengths):
        windows = -(-(bits + 1) // c)
        while e + offset(windows) >= 1 << (c * windows):
            windows += 1
        prepared.append((windows, e + offset(windows), pt))
    prepared.sort(key=lambda t: -t[0])  # the points of window w: a prefix
    windows_total = prepared[0][0]
    reach = [0] * windows_total  # reach[w]: how many points have a digit in window w
    for windows, _, _ in prepared:
        reach[windows - 1] += 1
    for w in range(windows_total - 2, -1, -1):
        reach[w] += reach[w + 1]
    p, one = _P, _mpz(1)
    # each point on the a = -1 curve as (y - x', y + x', 2 d' x' y) for an addition into a bucket,
    # negated too (x' -> -x' swaps the first two), and extended for a bucket's first point
    shifted, adds, firsts = [], [], []
    for _, u_all, pt in prepared:
        x, y = _C_MPZ * pt[0] % p, _mpz(pt[1])
        xy = x * y % p
        k = _K_M1 * xy % p
        ymx, ypx = y - x, y + x
        shifted.append(u_all)
        adds.append(((ymx, ypx, k), (ypx, ymx, -k)))
        firsts.append(((x, y, one, xy), (-x, y, one, -xy)))
    # digit u -> (bucket, negated): bucket |u - half|, the negated point when u < half
    route = [(abs(u - half), 1 if u < half else 0) for u in range(mask + 1)]
    result: Ext | None = None
    for w in range(windows_total - 1, -1, -1):
        if result is not None:
            for _ in range(c):
                result = _m1_double(result)
        shift = c * w
        buckets: list[Ext | None] = [None] * (half + 1)
        for u_all, add, first in zip(islice(shifted, reach[w]), adds, firsts):
            b, sign = route[(u_all >> shift) & mask]
            if not b:
                continue
            acc = buckets[b]
            if acc is None:
                buckets[b] = first[sign]
                continue
            ymx, ypx, k = add[sign]
            x1, y1, z1, t1 = acc
            # madd-2008-hwcd-3 (Z2 = 1)
            aa = (y1 - x1) * ymx % p
            bb = (y1 + x1) * ypx % p
            cc = t1 * k % p
            dd = z1 + z1
            e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
            buckets[b] = (e * f, g * h, f * g % p, e * h % p)  # X, Y unreduced: reduced in the next products
        # sum_j j * bucket_j as running sums from the top
        running: Ext | None = None
        total: Ext | None = None
        for j in range(half, 0, -1):
            bj = buckets[j]
            if bj is not None:
                running = bj if running is None else _m1_add(running, bj)
            if running is not None:
                total = running if total is None else _m1_add(total, running)
        if total is not None:
            result = total if result is None else _m1_add(result, total)
    if result is None:
        return _EXT_IDENTITY
    # back to the BabyJubJub model: x = x' / c
    return (result[0] * _C_INV % p, result[1], result[2], result[3] * _C_INV % p)


class FastBabyJub:
    """Extended coordinates, windowed and table scalar multiplication, gmpy2 when installed."""

    name = "fast"

    def __init__(self) -> None:
        self._base_table: FixedBaseTable | None = None

    @property
    def base_table(self) -> FixedBaseTable:
        if self._base_table is None:  # built on first use: 8-bit digits, 4k points, about 3 MB
            self._base_table = FixedBaseTable(BASE8, window=8)
        return self._base_table

    def add(self, p: Point, q: Point) -> Point:
        return _ext_to_affine(_ext_add(_to_ext(p), _to_ext(q)))

    def double(self, p: Point) -> Point:
        return _ext_to_affine(_ext_double(_to_ext(p)))

    def mul(self, p: Point, e: int) -> Point:
        if e < 0:
            p, e = neg(p), -e
        return _ext_to_affine(_window_mul(p, e))

    def mul_base(self, e: int) -> Point:
        if not self.base_table.covers(e):
            return self.mul(BASE8, e)
        return _ext_to_affine(self.base_table.mul(e))

    def in_subgroup(self, p: Point) -> bool:
        return is_on_curve(p) and is_in_subgroup(p)

    def in_subgroup_on_curve(self, p: Point) -> bool:
        """in_subgroup for a point already checked to be on the curve."""
        return is_in_subgroup(p)

    def all_in_subgroup_on_curve(self, points: Sequence[Point], seed: bytes) -> bool:
        """Every point (each on the curve) in the subgroup (`are_in_subgroup`: from
        SUBGROUP_BATCH_MIN points on, up to 2^-128, with subsets drawn from `seed`)."""
        return are_in_subgroup(points, seed)

    def precompute(self, p: Point) -> FixedBaseTable:
        """A table for many multiplications of one point (a public key verifying many signatures).
        Every method taking a table takes the point itself as well (`Key`): a plain windowed
        multiplication for it, which is cheaper than building a table for a point used a few times."""
        return FixedBaseTable(p)

    def mul_precomputed(self, table: Key, e: int) -> Point:
        return _ext_to_affine(self._mul_table(table, e))

    def _mul_table(self, table: Key, e: int) -> Ext:
        if table.__class__ is not FixedBaseTable:
            return _window_mul(table, e)
        if table.covers(e):
            return table.mul(e)
        return _window_mul(table.point, e)

    def mul_sub_base(self, s: int, table: Key, e: int) -> Point:
        """s * Base8 - e * Q, where `table` came from precompute(Q) or is Q."""
        return _ext_to_affine(self._sub_base(s, table, e))

    def sub_base_equals(self, s: int, table: Key, e: int, r: Point) -> bool:
        """s * Base8 - e * Q == r, without leaving projective coordinates."""
        return _ext_equals_affine(self._sub_base(s, table, e), r)

    def _sub_base(self, s: int, table: Key, e: int) -> Ext:
        base = self.base_table
        if table.__class__ is FixedBaseTable and table.covers(e) and base.covers(s):
            # one accumulator through both tables: no separate negation and final addition
            return base.mul(s, table.mul(e, negate=True))
        q = self._mul_table(table, e)
        minus_q = (-q[0], q[1], q[2], -q[3])
        return base.mul(s, minus_q) if base.covers(s) else _ext_add(_window_mul(BASE8, s), minus_q)

    def msm(self, points: Sequence[Point], scalars: Sequence[int]) -> Point:
        """sum scalars[i] * points[i] (Pippenger)."""
        if len(points) != len(scalars):
            raise ValueError("msm: as many scalars as points")
        return _ext_to_affine(_pippenger(points, scalars))

    def batch_equals(self, s: int, keys: Sequence[tuple[Key, int]], points: Sequence[Point], scalars: Sequence[int]) -> bool:
        """s * Base8 - sum e_k * Q_k == sum z_i * R_i (ReferenceBabyJub.batch_equals), compared
        projectively, as s * Base8 == sum z_i * R_i + sum e_k * Q_k, in one Pippenger MSM. A key
        with a table joins it as two points, Q and 2^128 Q (both in its table), with the two 128-bit
        halves of e_k: the z_i are 128 bits, so no window is added. A key given as a point joins as
        itself with the whole e_k: it alone reaches the upper windows (no 2^128 Q without 128
        doublings), still far cheaper than a multiplication of its own."""
        pts, scs = list(points), list(scalars)
        acc = _EXT_IDENTITY
        for table, e in keys:
            if table.__class__ is not FixedBaseTable:
                pts.append(table)
                scs.append(e)
            elif table.covers(e) and e.bit_length() <= 2 * _KEY_SPLIT and len(table.rows) > _KEY_SPLIT // table.window:
                pts.append(table.point)
                scs.append(e & ((1 << _KEY_SPLIT) - 1))
                pts.append(table.affine_multiple(_KEY_SPLIT // table.window))
                scs.append(e >> _KEY_SPLIT)
            else:
                q = _window_mul(table.point, e)
                acc = _ext_add(acc, (-q[0], q[1], q[2], -q[3]))
        base = self.base_table
        left = base.mul(s, acc) if base.covers(s) else _ext_add(acc, _window_mul(BASE8, s))
        return _ext_equals(left, _pippenger(pts, scs))


_KEY_SPLIT = 128  # a key's scalar in two halves of this many bits (a multiple of the table's window)
Key = FixedBaseTable | Point  # what the fast curve multiplies a key by: its table, or the point alone

reference = ReferenceBabyJub()
fast = FastBabyJub()
IMPLEMENTATIONS: dict[str, ReferenceBabyJub | FastBabyJub] = {"reference": reference, "fast": fast}
babyjub = fast


def _check_constants() -> None:
    # the published constants must describe the curve circomlib uses: a square, d not (complete
    # addition), both generators on the curve, Base8 = 8 * Generator of prime order SUBORDER,
    # the Generator of order 8 * SUBORDER
    if pow(A, (P - 1) // 2, P) != 1 or pow(D, (P - 1) // 2, P) != P - 1:
        raise ValueError("BabyJubJub constants: a must be a square and d a non-square mod p")
    if not (is_on_curve(GENERATOR) and is_on_curve(BASE8)):
        raise ValueError("BabyJubJub constants: a generator is not on the curve")
    if ORDER != COFACTOR * SUBORDER:
        raise ValueError("BabyJubJub constants: order != 8 * subOrder")
    if pow(2, SUBORDER - 1, SUBORDER) != 1 or pow(3, SUBORDER - 1, SUBORDER) != 1:
        raise ValueError("BabyJubJub constants: subOrder is not prime")
    e8 = _window_mul(GENERATOR, COFACTOR)
    if not _ext_equals_affine(e8, BASE8):
        raise ValueError("BabyJubJub constants: Base8 != 8 * Generator")
    if not _ext_equals_affine(_window_mul(BASE8, SUBORDER), IDENTITY):
        raise ValueError("BabyJubJub constants: subOrder * Base8 != identity")
    # the subgroup test's pairing: a homomorphism with t(Generator) a primitive 8th root of unity,
    # so its kernel is exactly the subgroup of index 8
    g = _tate8(GENERATOR)
    if _tate8(BASE8) != 1 or _powmod(g, 4, _P) != P - 1:
        raise ValueError("BabyJubJub constants: the order-8 pairing does not separate the subgroup")
    if _tate8(_ext_to_affine(_ext_add(_to_ext(GENERATOR), _to_ext(BASE8)))) != g:
        raise ValueError("BabyJubJub constants: the order-8 pairing is not a homomorphism")


_check_constants()
