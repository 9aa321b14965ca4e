"""Gadgets: small circuits that constrain and compute at once.

Conventions
- Unsigned values are field elements in [0, 2^n); a comparison of n-bit values expects its inputs
  to be range-checked to n bits already (by `range_check` or by construction) and says so.
- Signed values: a field element v >= r/2 stands for v - r. `sign`/`abs_value` accept values with
  -2^n <= v < 2^n and prove that bound.
- A false statement raises `WitnessError` while the witness is built (e.g. a value that does not
  fit its range, `assert_lt` of a >= b). Constraints are what a proof relies on; the early error
  is for a readable message. Building constraints by hand with a wrong value makes `cs.check()`
  fail instead.

Costs (constraints): boolean 1, range_check(n) n+1, lt/le/gt/ge(n) n+2, is_zero 2, is_equal 2,
select 1, mul 1, sign(n) n+2, abs_value(n) n+3, maximum(k values, n) (k-1)(n+3) (+1 if the first
value is not a wire).
"""

from __future__ import annotations

from prover.r1cs import ConstraintSystem, LinearCombination, LinearLike, Variable, WitnessError


def _value(cs: ConstraintSystem, x: LinearLike) -> int:
    return x.value if isinstance(x, LinearCombination) else x % cs.r


def to_signed(cs: ConstraintSystem, value: int) -> int:
    """A field element read as a signed integer: v >= r/2 means v - r."""
    return value - cs.r if value > cs.r // 2 else value


# --- booleans ---
def assert_boolean(cs: ConstraintSystem, x: LinearLike) -> None:
    """Constrain x to be 0 or 1: x * (1 - x) = 0."""
    with cs.gadget("boolean"):
        cs.enforce(x, 1 - cs.as_lc(x), 0)


def boolean(cs: ConstraintSystem, value: int, name: str | None = None) -> Variable:
    """A new private bit."""
    # a bit can only be 0 or 1
    if value not in (0, 1):
        raise WitnessError(f"a boolean must be 0 or 1, got {value}")
    bit = cs.private(value, name)
    assert_boolean(cs, bit)
    return bit


# --- arithmetic ---
def mul(cs: ConstraintSystem, a: LinearLike, b: LinearLike, name: str | None = None) -> Variable:
    """A new wire holding a * b (1 constraint)."""
    with cs.gadget("mul"):
        product = cs.private(_value(cs, a) * _value(cs, b), name)
        cs.enforce(a, b, product)
    return product


def materialize(cs: ConstraintSystem, lc: LinearLike, name: str | None = None) -> Variable:
    """A new wire equal to a linear combination (1 constraint); returns lc itself if it is a wire."""
    if isinstance(lc, Variable):
        return lc
    with cs.gadget("linear"):
        wire = cs.private(_value(cs, lc), name)
        cs.enforce(lc, 1, wire)
    return wire


def assert_equal(cs: ConstraintSystem, a: LinearLike, b: LinearLike) -> None:
    """Constrain a == b (1 constraint)."""
    # equality is the statement itself: refuse to build a witness for a false one
    if _value(cs, a) != _value(cs, b):
        raise WitnessError(f"values differ: {_value(cs, a)} != {_value(cs, b)}")
    with cs.gadget("assert_equal"):
        cs.enforce(cs.as_lc(a) - b, 1, 0)


# --- ranges ---
def to_bits(cs: ConstraintSystem, x: LinearLike, n_bits: int) -> list[Variable]:
    """Little-endian bits of x, proving 0 <= x < 2^n_bits (n_bits + 1 constraints)."""
    # the bits must fit in the field, or the decomposition would not be unique
    if not 0 < n_bits < cs.r.bit_length() - 1:
        raise ValueError(f"bit width must be between 1 and {cs.r.bit_length() - 2}, got {n_bits}")
    value = _value(cs, x)
    # a value outside the range has no n-bit decomposition
    if value >> n_bits:
        shown = to_signed(cs, value)
        raise WitnessError(f"value {shown} does not fit in {n_bits} bits (must be in [0, 2^{n_bits}))")
    with cs.gadget("range_check"):
        bits = [boolean(cs, (value >> i) & 1) for i in range(n_bits)]
        packed = cs.constant(0)
        for i, bit in enumerate(bits):
            packed = packed + bit * (1 << i)
        cs.enforce(packed, 1, x)
    return bits


def range_check(cs: ConstraintSystem, x: LinearLike, n_bits: int) -> None:
    """Prove 0 <= x < 2^n_bits."""
    to_bits(cs, x, n_bits)


# --- comparisons of n-bit values ---
def compute_borrow(cs: ConstraintSystem, diff: LinearLike, n_bits: int) -> Variable:
    """Bit (diff < 0) for a signed diff with -2^n <= diff < 2^n, proving that bound (n_bits + 2 constraints).

    diff = low - 2^n * borrow with low in [0, 2^n) (n bits) and borrow a bit: over the integers this
    covers exactly [-2^n, 2^n), and the representation is unique because 2^(n+1) < r.
    """
    # the bits must fit in the field, or the decomposition would not be unique
    if not 0 < n_bits < cs.r.bit_length() - 2:
        raise ValueError(f"bit width must be between 1 and {cs.r.bit_length() - 3}, got {n_bits}")
    signed = to_signed(cs, _value(cs, diff))
    # outside the stated bound there is no such decomposition
    if not -(1 << n_bits) <= signed < (1 << n_bits):
        raise WitnessError(f"signed value {signed} is outside [-2^{n_bits}, 2^{n_bits})")
    borrow_value = 1 if signed < 0 else 0
    low = signed + (borrow_value << n_bits)
    with cs.gadget("borrow"):
        bits = [boolean(cs, (low >> i) & 1) for i in range(n_bits)]
        borrow = boolean(cs, borrow_value)
        packed = borrow * (-(1 << n_bits))
        for i, bit in enumerate(bits):
            packed = packed + bit * (1 << i)
        cs.enforce(packed, 1, diff)
    return borrow


def lt(cs: ConstraintSystem, a: LinearLike, b: LinearLike, n_bits: int) -> Variable:
    """Bit (a < b) for a, b already known to be in [0, 2^n_bits) (n_bits + 2 constraints)."""
    with cs.gadget("lt"):
        return compute_borrow(cs, cs.as_lc(a) - b, n_bits)


def le(cs: ConstraintSystem, a: LinearLike, b: LinearLike, n_bits: int) -> Variable:
    """Bit (a <= b) = (a - b - 1 < 0) for a, b in [0, 2^n_bits) (n_bits + 2 constraints)."""
    with cs.gadget("le"):
        return compute_borrow(cs, cs.as_lc(a) - b - 1, n_bits)


def gt(cs: ConstraintSystem, a: LinearLike, b: LinearLike, n_bits: int) -> Variable:
    return lt(cs, b, a, n_bits)


def ge(cs: ConstraintSystem, a: LinearLike, b: LinearLike, n_bits: int) -> Variable:
    return le(cs, b, a, n_bits)


def assert_lt(cs: ConstraintSystem, a: LinearLike, b: LinearLike, n_bits: int) -> None:
    """Prove a < b for n-bit a, b: b - a - 1 is in [0, 2^n) (n_bits + 1 constraints)."""
    # the statement itself: refuse to build a witness for a false one
    if not _value(cs, a) < _value(cs, b):
        raise WitnessError(f"expected {_value(cs, a)} < {_value(cs, b)}")
    with cs.gadget("assert_lt"):
        range_check(cs, cs.as_lc(b) - a - 1, n_bits)


def assert_le(cs: ConstraintSystem, a: LinearLike, b: LinearLike, n_bits: int) -> None:
    """Prove a <= b for n-bit a, b: b - a is in [0, 2^n)."""
    # the statement itself: refuse to build a witness for a false one
    if not _value(cs, a) <= _value(cs, b):
        raise WitnessError(f"expected {_value(cs, a)} <= {_value(cs, b)}")
    with cs.gadget("assert_le"):
        range_check(cs, cs.as_lc(b) - a, n_bits)


# --- zero tests ---
def is_zero(cs: ConstraintSystem, x: LinearLike) -> Variable:
    """Bit (x == 0) (2 constraints): out = 1 - x * inv, x * out = 0."""
    value = _value(cs, x)
    with cs.gadget("is_zero"):
        inv = cs.private(pow(value, -1, cs.r) if value else 0)
        out = cs.private(0 if value else 1)
        cs.enforce(x, inv, 1 - out)
        cs.enforce(x, out, 0)
    return out


def is_equal(cs: ConstraintSystem, a: LinearLike, b: LinearLike) -> Variable:
    """Bit (a == b)."""
    return is_zero(cs, cs.as_lc(a) - b)


def select(cs: ConstraintSystem, cond: LinearLike, if_true: LinearLike, if_false: LinearLike) -> Variable:
    """cond ? if_true : if_false for a cond known to be boolean (1 constraint)."""
    # a non-boolean condition would mix the two values
    if _value(cs, cond) not in (0, 1):
        raise WitnessError(f"select needs a boolean condition, got {_value(cs, cond)}")
    t, f = _value(cs, if_true), _value(cs, if_false)
    with cs.gadget("select"):
        out = cs.private(t if _value(cs, cond) else f)
        # out - f = cond * (t - f)
        cs.enforce(cond, cs.as_lc(if_true) - if_false, cs.as_lc(out) - if_false)
    return out


# --- signed values ---
def sign(cs: ConstraintSystem, x: LinearLike, n_bits: int) -> Variable:
    """Bit (x < 0) for a signed x with -2^n <= x < 2^n, proving that bound (n_bits + 2 constraints)."""
    with cs.gadget("sign"):
        return compute_borrow(cs, x, n_bits)


def abs_value(cs: ConstraintSystem, x: LinearLike, n_bits: int) -> tuple[Variable, Variable]:
    """(|x|, sign bit) for a signed x with -2^n <= x < 2^n (n_bits + 3 constraints)."""
    negative = sign(cs, x, n_bits)
    with cs.gadget("abs"):
        magnitude = select(cs, negative, -cs.as_lc(x), x)
    return magnitude, negative


def maximum(cs: ConstraintSystem, values: list[LinearLike], n_bits: int) -> Variable:
    """The largest of several n-bit values (each already range-checked to n bits)."""
    # the maximum of nothing is undefined
    if not values:
        raise ValueError("maximum needs at least one value")
    with cs.gadget("maximum"):
        best = materialize(cs, values[0])
        for candidate in values[1:]:
            bigger = gt(cs, candidate, best, n_bits)
            best = select(cs, bigger, candidate, best)
    return best
