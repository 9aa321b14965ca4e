"""EdDSA-Poseidon verification over BabyJubJub as R1CS (circomlib's EdDSAPoseidonVerifier, stricter), and the key id.

`synthesize_eddsa_verify` holds, when `enabled` is 1, iff `verifier.eddsa.verify(msg, Signature(R8, S), A)`
accepts:
- A is in the prime-order subgroup and is not the identity: A = 8B for a witness point B on the
  curve (the curve's group has order 8l, so the multiples of 8 are exactly that subgroup), and 8A
  converts to Montgomery form, which the identity cannot. circomlib checks neither (it asks
  8A != identity only); verify() checks both.
- S < l: a strict 251-bit decomposition compared bit by bit with the constant l - 1.
- h = Poseidon(R8.x, R8.y, A.x, A.y, msg) in 254 bits compared with r - 1 (no alias h + r).
- R8 == S * Base8 - h * (8A), computed with complete twisted Edwards addition, so R8 is on the
  curve (and in the subgroup) because it equals a point computed on it; circomlib omits that check.
When `enabled` is 0 nothing is forced: the key and S the arithmetic sees are replaced by a dummy
(Base8 and 0), the final equality is multiplied by `enabled`, and msg, R8 only enter the hash. Any
values of A, R8, S, msg then satisfy the gadget; the caller's convention is A = R8 = (0, 1), S = 0.

Scalar multiplications run on the birationally equivalent Montgomery curve B v^2 = u^3 + A' u^2 + u
(B = 1 here, checked on load): an addition is 3 constraints, a doubling 4, 2P + T 5, against 6 and
5 in Edwards form; but the Montgomery formulas are incomplete (adding a point to itself leaves the
slope free, to its negation has no solution), so each schedule only combines multiples a, b of one
point with 0 < |a|, |b| and |a| + |b| < 2^250 < l, which can never be equal or opposite, and switches
to the complete Edwards formulas where they could. No input is exceptional, whoever chooses it:
the tests include h = 0, tiny h (many leading zeros) and multiples of l.
- S * Base8, fixed base: 2-bit signed digits d_j in {-3, -1, 1, 3} (every digit nonzero, so no
  identity), d_j * 4^j * (Base8 / 2) looked up from constants (linear in the two bits and their
  product), accumulated from the lowest window up. Before window j the accumulator is an odd
  multiple a with |a| < 4^j <= |d_j 4^j| and |a| + |d_j 4^j| < 4^(j+1) <= 2^250 < l: never equal
  nor opposite, for every S (which the prover chooses). Bit 250 and the digits' offset are one
  Edwards addition at the end.
- h * 8A, variable base, "left_to_right" (the default, 7 constraints a bit): acc = 2 acc + d_i Q over
  the signed digits d_i = 2 K_(i+1) - 1 of K = h + 12 l (in [2^254, 2^255) for every h < r, so the
  top two digits are +1 and the ladder starts at 3Q, never at a tiny multiple however many leading
  zeros h has; K's bits come from h's by a carry chain, one product a bit; 12 l * Q is the identity).
  The multiple before digit i is below 2^(254-i), so the last five steps run in Edwards form.
- "right_to_left" (8 a bit, the plain reference the tests run beside it): D_i = 2^i Q by doublings,
  acc += d_i D_i with d_i = 2 h_(i+1) - 1, d_253 = 1; |acc| < 2^i before step i; steps from 250 on
  in Edwards form.
  Both spell h + 1 - h_0 and subtract Q when h is even (in Edwards form).
- The two products meet in Edwards form: R8 == F + (-V) by complete addition (the prover knows the
  discrete logarithms of both, so an incomplete formula there would let it pick an exception).

Witness values are computed with plain ints next to the constraints (as `prover.circuits.poseidon`).
Costs: `count_eddsa_constraints()`, `count_key_id_constraints()` (benchmarks/eddsa_circuit_bench.py
splits them by part).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from prover.circuits.poseidon import synthesize_poseidon
from prover.r1cs import ONE_WIRE, ConstraintSystem, LinearCombination, LinearLike
from verifier import babyjubjub as bjj
from verifier.babyjubjub import BASE8, IDENTITY, P, SUBORDER
from verifier.l2auth import KEY_ID_BITS

try:  # the optional extra `fast`: a field inversion in 1 us instead of 13 (each slope needs one)
    import gmpy2

    def _inverse(x: int) -> int:
        return int(gmpy2.invert(x, P))
except ImportError:  # pragma: no cover - gmpy2 is the optional extra `fast`

    def _inverse(x: int) -> int:
        return pow(x, -1, P)


Terms = dict[int, int]

EDWARDS_A = bjj.A
EDWARDS_D = bjj.D
# the Montgomery form of a x^2 + y^2 = 1 + d x^2 y^2: A' = 2 (a + d) / (a - d), B = 4 / (a - d)
MONTGOMERY_A = 2 * (EDWARDS_A + EDWARDS_D) * pow(EDWARDS_A - EDWARDS_D, -1, P) % P
MONTGOMERY_B = 4 * pow(EDWARDS_A - EDWARDS_D, -1, P) % P

S_BITS = SUBORDER.bit_length()  # 251: S < l < 2^251
H_BITS = P.bit_length()  # 254: a field element
FIXED_WINDOWS = (S_BITS - 1) // 2  # 125 two-bit windows over bits 0..249; bit 250 is added in Edwards form
DUMMY_KEY = BASE8  # the key the arithmetic sees when disabled: any point of order l
# a multiple of l with h + VARIABLE_OFFSET in [2^254, 2^255) for every h < r (checked on load)
VARIABLE_OFFSET = 12 * SUBORDER
# Montgomery formulas are safe while every multiple involved is below 2^250 < l
RIGHT_TO_LEFT_MONTGOMERY_STEPS = SUBORDER.bit_length() - 1  # steps 0..249; 250..253 in Edwards form
LEFT_TO_RIGHT_EDWARDS_STEPS = H_BITS + 1 - (SUBORDER.bit_length() - 1)  # digits 4..0: the multiple reaches 2^250


class _Val:
    """A linear combination as terms over the system's internal wire ids, and its value."""

    __slots__ = ("terms", "value")

    def __init__(self, terms: Terms, value: int):
        self.terms = terms
        self.value = value % P

    def _merge(self, other: "_Val | int", sign: int) -> "_Val":
        if not isinstance(other, _Val):
            other = _const(other)
        terms = dict(self.terms)
        for wire, k in other.terms.items():
            merged = (terms.get(wire, 0) + sign * k) % P
            if merged:
                terms[wire] = merged
            else:
                terms.pop(wire, None)
        return _Val(terms, self.value + sign * other.value)

    def __add__(self, other: "_Val | int") -> "_Val":
        return self._merge(other, 1)

    __radd__ = __add__

    def __sub__(self, other: "_Val | int") -> "_Val":
        return self._merge(other, -1)

    def __rsub__(self, other: int) -> "_Val":
        return _const(other)._merge(self, -1)

    def __neg__(self) -> "_Val":
        return _Val({w: (P - k) % P for w, k in self.terms.items()}, -self.value)

    def __mul__(self, k: int) -> "_Val":
        k %= P
        return _Val({w: c * k % P for w, c in self.terms.items()} if k else {}, self.value * k)

    __rmul__ = __mul__


Pt = tuple[_Val, _Val]


def _const(value: int) -> _Val:
    value %= P
    return _Val({ONE_WIRE: value} if value else {}, value)


def _lc(cs: ConstraintSystem, x: LinearLike) -> _Val:
    lc = cs.as_lc(x)  # refuses a variable of another system
    return _Val(dict(lc.terms), lc.value)


def _new(cs: ConstraintSystem, value: int) -> _Val:
    var = cs.private(value % P)
    return _Val({var.wire: 1}, value)


def _enforce(cs: ConstraintSystem, a: _Val, b: _Val | int, c: _Val | int) -> None:
    b = b if isinstance(b, _Val) else _const(b)
    c = c if isinstance(c, _Val) else _const(c)
    cs.enforce(LinearCombination(cs, a.terms), LinearCombination(cs, b.terms), LinearCombination(cs, c.terms))


def _mul(cs: ConstraintSystem, a: _Val, b: _Val) -> _Val:
    out = _new(cs, a.value * b.value)
    _enforce(cs, a, b, out)
    return out


def _div(num: int, den: int) -> int:
    # a zero denominator only comes from an invalid input: any value will do, the constraint fails
    den %= P
    return num * _inverse(den) % P if den else 0


# --- points -----------------------------------------------------------------------------------------


def _edwards_on_curve(cs: ConstraintSystem, p: Pt) -> None:
    """a x^2 + y^2 = 1 + d x^2 y^2 (3 constraints)."""
    x, y = p
    xx, yy = _mul(cs, x, x), _mul(cs, y, y)
    _enforce(cs, xx * EDWARDS_D, yy, xx * EDWARDS_A + yy - 1)


def _edwards_double(cs: ConstraintSystem, p: Pt, out: Pt | None = None) -> Pt:
    """2p for p on the curve (5 constraints): x = 2xy / (a x^2 + y^2), y = (y^2 - a x^2) / (2 - a x^2 - y^2),
    the unified addition's denominators rewritten with the curve equation (so never zero). `out`:
    wires the result must equal (the constraints then bind them instead of new wires)."""
    x, y = p
    xx, yy, xy = _mul(cs, x, x), _mul(cs, y, y), _mul(cs, x, y)
    den_x = xx * EDWARDS_A + yy
    den_y = 2 - den_x
    num_x, num_y = xy * 2, yy - xx * EDWARDS_A
    if out is None:
        out = (_new(cs, _div(num_x.value, den_x.value)), _new(cs, _div(num_y.value, den_y.value)))
    _enforce(cs, out[0], den_x, num_x)
    _enforce(cs, out[1], den_y, num_y)
    return out


def _edwards_add(cs: ConstraintSystem, p: Pt, q: Pt) -> Pt:
    """p + q, complete on the curve (6 constraints, circomlib's BabyAdd)."""
    (x1, y1), (x2, y2) = p, q
    beta, gamma = _mul(cs, x1, y2), _mul(cs, y1, x2)
    delta = _mul(cs, y1 - x1 * EDWARDS_A, x2 + y2)
    tau = _new(cs, EDWARDS_D * beta.value * gamma.value)
    _enforce(cs, beta * EDWARDS_D, gamma, tau)
    num_x, num_y = beta + gamma, delta + beta * EDWARDS_A - gamma
    x3 = _new(cs, _div(num_x.value, 1 + tau.value))
    _enforce(cs, x3, 1 + tau, num_x)
    y3 = _new(cs, _div(num_y.value, 1 - tau.value))
    _enforce(cs, y3, 1 - tau, num_y)
    return x3, y3


def _edwards_to_montgomery(cs: ConstraintSystem, p: Pt) -> Pt:
    """u = (1 + y) / (1 - y), v = u / x (2 constraints): unsatisfiable for the identity (y = 1)."""
    x, y = p
    u = _new(cs, _div(1 + y.value, 1 - y.value))
    _enforce(cs, u, 1 - y, 1 + y)
    v = _new(cs, _div(u.value, x.value))
    _enforce(cs, v, x, u)
    return u, v


def _montgomery_to_edwards(cs: ConstraintSystem, p: Pt) -> Pt:
    """x = u / v, y = (u - 1) / (u + 1) (2 constraints)."""
    u, v = p
    x = _new(cs, _div(u.value, v.value))
    _enforce(cs, x, v, u)
    y = _new(cs, _div(u.value - 1, u.value + 1))
    _enforce(cs, y, u + 1, u - 1)
    return x, y


def _chord(cs: ConstraintSystem, p: Pt, q: Pt) -> tuple[_Val, _Val]:
    """The chord through p and q (u_p != u_q): its slope and the third point's u (2 constraints)."""
    (u1, v1), (u2, v2) = p, q
    lam = _new(cs, _div(v2.value - v1.value, u2.value - u1.value))
    _enforce(cs, lam, u2 - u1, v2 - v1)
    u3 = _new(cs, lam.value * lam.value - MONTGOMERY_A - u1.value - u2.value)
    _enforce(cs, lam, lam, u3 + MONTGOMERY_A + u1 + u2)
    return lam, u3


def _montgomery_add(cs: ConstraintSystem, p: Pt, q: Pt) -> Pt:
    """p + q for u_p != u_q (3 constraints)."""
    (u1, v1) = p
    lam, u3 = _chord(cs, p, q)
    v3 = _new(cs, lam.value * (u1.value - u3.value) - v1.value)
    _enforce(cs, lam, u1 - u3, v3 + v1)
    return u3, v3


def _montgomery_double(cs: ConstraintSystem, p: Pt) -> Pt:
    """2p for v_p != 0 (4 constraints)."""
    u, v = p
    uu = _mul(cs, u, u)
    slope_num = uu * 3 + u * (2 * MONTGOMERY_A) + 1
    lam = _new(cs, _div(slope_num.value, 2 * v.value))
    _enforce(cs, lam, v * 2, slope_num)
    u3 = _new(cs, lam.value * lam.value - MONTGOMERY_A - 2 * u.value)
    _enforce(cs, lam, lam, u3 + MONTGOMERY_A + u * 2)
    v3 = _new(cs, lam.value * (u.value - u3.value) - v.value)
    _enforce(cs, lam, u - u3, v3 + v)
    return u3, v3


def _to_montgomery(p: bjj.Point) -> tuple[int, int]:
    x, y = p
    u = _div(1 + y, 1 - y)
    return u, _div(u, x)


# --- bits -------------------------------------------------------------------------------------------


def to_bits_at_most(cs: ConstraintSystem, x: LinearLike, n_bits: int, max_value: int, *, value: int | None = None) -> list[LinearCombination]:
    """Little-endian bits of x, proving that their integer value is at most `max_value` (< 2^n_bits).

    With max_value = r - 1 this is the strict decomposition of a field element (no alias x + r);
    with l - 1 it proves x < l. Cost: n_bits booleans, one packing, then one constraint per 1-bit of
    max_value below its top one (the running "equal so far" product) and one per run of 0-bits
    (the sum of the run's bits times "equal so far" is 0), skipping the 1-bits below the lowest 0.
    Bits the bound cannot have (above its top bit) are forced to 0 by the first run.
    `value`: the integer to decompose, default x's value; tests pass an alias to see it refused.
    """
    # a bound that fills the width would check nothing; one from r up would let bits alias mod r
    if not 0 < max_value < min(P, (1 << n_bits) - 1):
        raise ValueError(f"max_value must be in (0, min(r, 2^{n_bits} - 1)), got {max_value}")
    bits = _strict_bits(cs, _lc(cs, x), n_bits, max_value, value)
    return [LinearCombination(cs, b.terms) for b in bits]


def _strict_bits(cs: ConstraintSystem, x: _Val, n_bits: int, max_value: int, value: int | None = None) -> list[_Val]:
    v = x.value if value is None else value
    minus_one = P - 1
    zero = LinearCombination(cs, {})
    bits: list[_Val] = []
    packed: Terms = {}
    with cs.gadget("boolean"):
        for i in range(n_bits):
            bit = cs.private((v >> i) & 1)
            # bit * (1 - bit) = 0
            cs.enforce(bit, LinearCombination(cs, {ONE_WIRE: 1, bit.wire: minus_one}), zero)
            bits.append(_Val({bit.wire: 1}, (v >> i) & 1))
            packed[bit.wire] = (1 << i) % P
    cs.enforce(LinearCombination(cs, packed), 1, LinearCombination(cs, x.terms))
    _assert_bits_at_most(cs, bits, max_value)
    return bits


def _assert_bits_at_most(cs: ConstraintSystem, bits: Sequence[_Val], bound: int) -> None:
    """sum bits[i] 2^i <= bound, scanning from the top with eq = "every higher bit equals bound's"."""
    lowest_zero = next(i for i in range(len(bits)) if not (bound >> i) & 1)
    eq: _Val | None = None  # None: the constant 1
    run: list[_Val] = []

    def flush() -> None:
        # under eq, a 1 where bound has a 0 would make the value larger
        if run:
            total = sum(run[1:], run[0])
            _enforce(cs, eq if eq is not None else _const(1), total, 0)
            run.clear()

    with cs.gadget("at_most"):
        for i in range(len(bits) - 1, lowest_zero - 1, -1):
            if (bound >> i) & 1:
                flush()
                eq = bits[i] if eq is None else _mul(cs, eq, bits[i])
            else:
                run.append(bits[i])
        flush()


# --- scalar multiplications ----------------------------------------------------------------------------


@functools.cache
def _fixed_base_tables() -> tuple[list[list[tuple[int, int]]], bjj.Point, bjj.Point]:
    """Per window j, the Montgomery coordinates of d * 4^j * (Base8 / 2) for d = -3, -1, 1, 3 (indexed by
    the window's value w = (d + 3) / 2); and the Edwards points c * Base8 and (c + 2^250) * Base8
    with c the digits' offset, (4^125 - 1) / 2 mod l."""
    curve = bjj.babyjub
    half = pow(2, -1, SUBORDER)
    base = curve.mul(BASE8, half)
    tables = []
    for _ in range(FIXED_WINDOWS):
        one, three = base, curve.add(curve.double(base), base)
        tables.append([_to_montgomery(bjj.neg(three)), _to_montgomery(bjj.neg(one)), _to_montgomery(one), _to_montgomery(three)])
        base = curve.double(curve.double(base))
    offset = ((1 << (2 * FIXED_WINDOWS)) - 1) * half % SUBORDER
    low = curve.mul(BASE8, offset)
    high = curve.mul(BASE8, (offset + (1 << (2 * FIXED_WINDOWS))) % SUBORDER)
    return tables, low, high


def _lookup4(b0: _Val, b1: _Val, both: _Val, entries: Sequence[int]) -> _Val:
    """entries[b0 + 2 b1] as a linear combination of b0, b1 and both = b0 * b1."""
    e0, e1, e2, e3 = entries
    return b0 * (e1 - e0) + b1 * (e2 - e0) + both * (e3 - e2 - e1 + e0) + e0


def _fixed_base_mul(cs: ConstraintSystem, bits: Sequence[_Val]) -> Pt:
    """S * Base8 in Edwards form from S's 251 bits (see the module docstring)."""
    tables, low, high = _fixed_base_tables()
    acc: Pt | None = None
    for j, table in enumerate(tables):
        b0, b1 = bits[2 * j], bits[2 * j + 1]
        both = _mul(cs, b0, b1)
        point = (_lookup4(b0, b1, both, [t[0] for t in table]), _lookup4(b0, b1, both, [t[1] for t in table]))
        acc = point if acc is None else _montgomery_add(cs, acc, point)
    assert acc is not None
    top = bits[2 * FIXED_WINDOWS]
    offset = (top * (high[0] - low[0]) + low[0], top * (high[1] - low[1]) + low[1])
    return _edwards_add(cs, _montgomery_to_edwards(cs, acc), offset)


def _montgomery_double_add(cs: ConstraintSystem, p: Pt, t: Pt) -> Pt:
    """2p + t as (p + t) + p without the middle point's v (5 constraints): u_t != u_p and p + t != -p."""
    (u1, v1) = p
    lam, u3 = _chord(cs, p, t)
    # the slope from p + t back through p: (v1 - v3) / (u1 - u3) with v3 = lam (u1 - u3) - v1
    lam2 = _new(cs, -lam.value - _div(2 * v1.value, u3.value - u1.value))
    _enforce(cs, lam2 + lam, u3 - u1, v1 * -2)
    u4 = _new(cs, lam2.value * lam2.value - MONTGOMERY_A - u1.value - u3.value)
    _enforce(cs, lam2, lam2, u4 + MONTGOMERY_A + u1 + u3)
    v4 = _new(cs, lam2.value * (u1.value - u4.value) - v1.value)
    _enforce(cs, lam2, u1 - u4, v4 + v1)
    return u4, v4


def _signed(cs: ConstraintSystem, q: Pt, digit: _Val) -> Pt:
    """digit * q in Edwards form for a digit in {-1, 1} (1 constraint: -(x, y) = (-x, y))."""
    return _mul(cs, digit, q[0]), q[1]


def _minus_q_when_even(cs: ConstraintSystem, acc: Pt, q: Pt, low_bit: _Val) -> Pt:
    """acc, or acc - q when low_bit is 0, in Edwards form (8 constraints): the digits spell h + 1 - h_0."""
    even = 1 - low_bit
    return _edwards_add(cs, acc, (_mul(cs, even, -q[0]), _mul(cs, even, q[1] - 1) + 1))


def _variable_base_right_to_left(cs: ConstraintSystem, q: Pt, q_m: Pt, bits: Sequence[_Val]) -> Pt:
    """h * Q in Edwards form for Q of order l (q in Edwards, q_m in Montgomery form): D_i = 2^i Q,
    acc += d_i D_i with d_i = 2 h_(i+1) - 1 and d_253 = 1 (8 constraints per bit; the plain schedule)."""
    n = len(bits)
    digits = [bits[i + 1] * 2 - 1 for i in range(n - 1)] + [None]  # the top digit is +1
    doubled = q_m
    acc = (q_m[0], _mul(cs, digits[0], q_m[1]))
    for i in range(1, RIGHT_TO_LEFT_MONTGOMERY_STEPS):
        doubled = _montgomery_double(cs, doubled)
        digit = digits[i]
        term = doubled if digit is None else (doubled[0], _mul(cs, digit, doubled[1]))
        acc = _montgomery_add(cs, acc, term)
    # the top steps could meet an exception: complete Edwards formulas
    doubled_e = _montgomery_to_edwards(cs, _montgomery_double(cs, doubled))
    acc_e = _montgomery_to_edwards(cs, acc)
    for i in range(RIGHT_TO_LEFT_MONTGOMERY_STEPS, n):
        if i > RIGHT_TO_LEFT_MONTGOMERY_STEPS:
            doubled_e = _edwards_double(cs, doubled_e)
        digit = digits[i]
        acc_e = _edwards_add(cs, acc_e, doubled_e if digit is None else _signed(cs, doubled_e, digit))
    return _minus_q_when_even(cs, acc_e, q, bits[0])


def _variable_base_left_to_right(cs: ConstraintSystem, q: Pt, q_m: Pt, bits: Sequence[_Val]) -> Pt:
    """h * Q in Edwards form for Q of order l (q in Edwards, q_m in Montgomery form): acc = 2 acc + d_i Q over the
    signed digits of K = h + VARIABLE_OFFSET (7 constraints per bit: the addition's carry, the
    digit's sign, 2P + T; the last steps in Edwards form, 13)."""
    n = len(bits)
    # K's bits 1..n-1 from h's bits plus the constant, with the carry (one product a bit once it can be 1)
    k_bits: list[_Val] = []
    carry: _Val | None = None  # None: the constant 0
    for i in range(n):
        h_i, c_i = bits[i], (VARIABLE_OFFSET >> i) & 1
        if carry is None:
            k_i, carry = (1 - h_i, h_i) if c_i else (h_i, None)
        else:
            both = _mul(cs, h_i, carry)
            if c_i:
                k_i, carry = 1 - h_i - carry + both * 2, h_i + carry - both
            else:
                k_i, carry = h_i + carry - both * 2, both
        k_bits.append(k_i)
    # the last carry would give K_n, which is 1 for every h < r
    # K + 1 - K_0 = sum_(i <= n) d_i 2^i with d_i = 2 K_(i+1) - 1 and d_n = d_(n-1) = 1 (K_n = 1): start at 3Q
    acc = _montgomery_add(cs, _montgomery_double(cs, q_m), q_m)
    for i in range(n - 2, LEFT_TO_RIGHT_EDWARDS_STEPS - 1, -1):
        acc = _montgomery_double_add(cs, acc, (q_m[0], _mul(cs, k_bits[i + 1] * 2 - 1, q_m[1])))
    # the accumulator's multiple passes l / 2 in the last steps: complete Edwards formulas
    acc_e = _montgomery_to_edwards(cs, acc)
    for i in range(LEFT_TO_RIGHT_EDWARDS_STEPS - 1, -1, -1):
        acc_e = _edwards_add(cs, _edwards_double(cs, acc_e), _signed(cs, q, k_bits[i + 1] * 2 - 1))
    return _minus_q_when_even(cs, acc_e, q, bits[0])


VARIABLE_BASE_SCHEDULES = {"left_to_right": _variable_base_left_to_right, "right_to_left": _variable_base_right_to_left}


# --- the gadgets ------------------------------------------------------------------------------------------


def synthesize_eddsa_verify(cs: ConstraintSystem, enabled: LinearLike, ax: LinearLike, ay: LinearLike,
                            r8x: LinearLike, r8y: LinearLike, s: LinearLike, msg: LinearLike, *,
                            schedule: str = "left_to_right") -> None:
    """Constrain (msg, R8, S) to be a valid EdDSA-Poseidon signature by the key A when `enabled` is 1
    (a bit the caller has constrained); force nothing when it is 0 (see the module docstring).
    `schedule`: the variable-base multiplication, "left_to_right" (fewer constraints) or the plain
    "right_to_left" (the reference the tests run beside it)."""
    # the hash and the curve live in BN254's scalar field
    if cs.r != P:
        raise ValueError("the EdDSA gadget needs a constraint system over BN254's scalar field")
    # one of the two multiplication schedules
    if schedule not in VARIABLE_BASE_SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of: {', '.join(VARIABLE_BASE_SCHEDULES)}")
    with cs.gadget("eddsa"):
        en = _lc(cs, enabled)
        key = (_lc(cs, ax), _lc(cs, ay))
        with cs.gadget("inputs"):
            # the key the arithmetic sees: A, or a dummy of order l when disabled
            chosen = []
            for coordinate, dummy in zip(key, DUMMY_KEY):
                out = _new(cs, dummy + en.value * (coordinate.value - dummy))
                _enforce(cs, en, coordinate - dummy, out - dummy)
                chosen.append(out)
            key_e: Pt = (chosen[0], chosen[1])
            s_e = _mul(cs, en, _lc(cs, s))
        with cs.gadget("key"):
            # A = 8B with B on the curve: A is in the subgroup of order l
            eighth = _eighth(key_e[0].value, key_e[1].value)
            b = (_new(cs, eighth[0]), _new(cs, eighth[1]))
            _edwards_on_curve(cs, b)
            _edwards_double(cs, _edwards_double(cs, _edwards_double(cs, b)), out=key_e)
            q = _edwards_double(cs, _edwards_double(cs, _edwards_double(cs, key_e)))
            q_m = _edwards_to_montgomery(cs, q)  # unsatisfiable if 8A, hence A, is the identity
        with cs.gadget("s_bits"):
            s_bits = _strict_bits(cs, s_e, S_BITS, SUBORDER - 1)
        h = synthesize_poseidon(cs, [r8x, r8y, ax, ay, msg])
        with cs.gadget("h_bits"):
            h_bits = _strict_bits(cs, _Val({h.wire: 1}, h.value), H_BITS, P - 1)
        with cs.gadget("fixed_base"):
            left = _fixed_base_mul(cs, s_bits)
        with cs.gadget("variable_base"):
            right = VARIABLE_BASE_SCHEDULES[schedule](cs, q, q_m, h_bits)
        with cs.gadget("equation"):
            # R8 == S * Base8 - h * 8A, when enabled
            x, y = _edwards_add(cs, left, (-right[0], right[1]))
            _enforce(cs, en, x - _lc(cs, r8x), 0)
            _enforce(cs, en, y - _lc(cs, r8y), 0)


def _eighth(x: int, y: int) -> bjj.Point:
    """B with 8B = (x, y) when (x, y) is in the subgroup; for other input, some point (the constraint fails)."""
    try:
        return bjj.babyjub.mul((x, y), pow(8, -1, SUBORDER))
    except ZeroDivisionError:  # off-curve input can reach a zero denominator
        return IDENTITY


def synthesize_key_id(cs: ConstraintSystem, ax: LinearLike, ay: LinearLike) -> LinearCombination:
    """The key id of A, `verifier.l2auth.compute_key_id`: the low 248 bits of Poseidon(A.x, A.y) from a
    strict 254-bit decomposition. A linear combination of those bits: the caller constrains it equal
    to the leaf's key (one constraint; a registered leaf's key is never 0)."""
    # the hash lives in BN254's scalar field
    if cs.r != P:
        raise ValueError("the key id gadget needs a constraint system over BN254's scalar field")
    with cs.gadget("key_id"):
        h = synthesize_poseidon(cs, [ax, ay])
        with cs.gadget("h_bits"):
            bits = _strict_bits(cs, _Val({h.wire: 1}, h.value), H_BITS, P - 1)
        terms: Terms = {}
        for i, bit in enumerate(bits[:KEY_ID_BITS]):
            (wire,) = bit.terms
            terms[wire] = 1 << i
        return LinearCombination(cs, terms)


def count_eddsa_constraints(schedule: str = "left_to_right") -> int:
    """Constraints one `synthesize_eddsa_verify` adds (the same for every input)."""
    cs = ConstraintSystem()
    synthesize_eddsa_verify(cs, *(cs.private(v) for v in (0, 0, 1, 0, 1, 0, 0)), schedule=schedule)
    return cs.n_constraints


def count_key_id_constraints() -> int:
    cs = ConstraintSystem()
    synthesize_key_id(cs, cs.private(0), cs.private(1))
    return cs.n_constraints


# the Montgomery form's B must be 1: the formulas above leave it out
if MONTGOMERY_B != 1:
    raise ValueError("BabyJubJub constants: the Montgomery form's B is not 1")
# the left-to-right schedule needs K = h + offset in [2^254, 2^255) for every h < r, an even offset
# (K_0 = h_0) and l | offset (K * Q = h * Q)
if not (VARIABLE_OFFSET % SUBORDER == 0 and VARIABLE_OFFSET % 2 == 0
        and 1 << H_BITS <= VARIABLE_OFFSET and VARIABLE_OFFSET + P <= 1 << H_BITS + 1):
    raise ValueError("the variable-base offset does not keep h + offset in [2^254, 2^255)")
