"""Constraint system and gadgets: true statements satisfy their constraints, false ones fail."""

from __future__ import annotations

import pytest

from prover import gadgets as g
from prover.r1cs import ConstraintSystem, UnsatisfiedConstraint, WitnessError, check_assignment
from verifier.curve import BLS12_381, BN254

R = BN254.r


@pytest.fixture
def cs() -> ConstraintSystem:
    return ConstraintSystem()


def tamper(cs: ConstraintSystem, var, value: int) -> None:
    """A malicious prover's witness: overwrite a private wire after the constraints were built."""
    cs._private_values[-var.wire] = value % cs.r


# --- layout ---
def test_layout_puts_publics_right_after_one(cs):
    a = cs.private(5, "a")
    x = cs.public_input(7, "x")
    b = cs.private(9)
    y = cs.public_input(11)
    cs.enforce(a, x, 35)
    cs.enforce(b + y, 1, 20)
    assert cs.n_public == 2 and cs.n_vars == 5 and cs.n_constraints == 2
    assert cs.witness == [1, 7, 11, 5, 9]
    assert cs.public_inputs == [7, 11]
    assert [cs.final_wire(v) for v in (x, y, a, b)] == [1, 2, 3, 4]
    assert cs.constraints[0] == ({3: 1}, {1: 1}, {0: 35})
    assert cs.constraints[1] == ({4: 1, 2: 1}, {0: 1}, {0: 20})
    assert cs.wire_names == ["ONE", "x", None, "a", None]
    cs.check()
    check_assignment(cs.constraints, cs.witness, R)


def test_layout_is_rebuilt_after_more_allocations(cs):
    a = cs.private(3)
    cs.enforce(a, a, 9)
    assert cs.constraints[0][0] == {1: 1}
    cs.public_input(4)
    assert cs.constraints[0][0] == {2: 1}
    assert cs.witness == [1, 4, 3]


def test_coefficients_are_reduced(cs):
    a = cs.private(-1)
    lc = a * -2 + 5 - a
    assert a.value == R - 1
    assert all(0 <= k < R for k in lc.terms.values())
    assert lc.value == (3 * 1 + 5) % R  # -3 * (-1) + 5


def test_linear_combination_arithmetic(cs):
    a, b = cs.private(10), cs.private(4)
    assert (a + b).value == 14
    assert (a - b).value == 6
    assert (3 * a - b * 2 + 1).value == 23
    assert (7 - a).value == R - 3
    assert (-a + a).terms == {}
    assert (a * 0).terms == {}


def test_variables_cannot_be_multiplied_without_a_constraint(cs):
    a, b = cs.private(2), cs.private(3)
    with pytest.raises(TypeError, match="needs a constraint"):
        a * b


def test_variables_of_two_systems_do_not_mix(cs):
    other = ConstraintSystem()
    with pytest.raises(ValueError, match="different constraint systems"):
        cs.private(1) + other.private(1)
    with pytest.raises(ValueError, match="another constraint system"):
        cs.enforce(other.private(1), 1, 1)


def test_wire_values_must_be_ints(cs):
    with pytest.raises(TypeError):
        cs.private(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cs.public_input(True)


def test_unsatisfied_constraint_names_index_and_gadget(cs):
    a = cs.private(3)
    cs.enforce(a, a, 9)
    with cs.gadget("margin"):
        cs.enforce(a, 2, 7)
    with pytest.raises(UnsatisfiedConstraint) as info:
        cs.check()
    assert info.value.index == 1 and info.value.gadget == "margin"
    assert "constraint 1" in str(info.value) and "margin" in str(info.value)
    assert not cs.is_satisfied()
    with pytest.raises(UnsatisfiedConstraint):
        check_assignment(cs.constraints, cs.witness, R, cs.constraint_gadgets)


def test_stats_counts(cs):
    x = cs.public_input(200)
    g.range_check(cs, x, 8)
    g.mul(cs, x, x)
    stats = cs.stats()
    assert stats["n_constraints"] == 10 and stats["n_vars"] == 1 + 1 + 8 + 1
    assert stats["n_public"] == 1 and stats["n_private"] == 9
    assert stats["constraints_per_gadget"] == {"range_check": 9, "mul": 1}


def test_bls12_381_field(cs):
    other = ConstraintSystem(BLS12_381)
    a = other.private(-1)
    assert a.value == BLS12_381.r - 1 and other.r == BLS12_381.r != cs.r
    g.range_check(other, other.private(2**200), 201)
    other.check()


# --- gadgets: true statements, constraint counts ---
def test_boolean(cs):
    for v in (0, 1):
        g.boolean(cs, v)
    cs.check()
    assert cs.n_constraints == 2
    with pytest.raises(WitnessError, match="0 or 1"):
        g.boolean(cs, 2)


def test_boolean_constraint_rejects_a_tampered_bit(cs):
    bit = g.boolean(cs, 1)
    tamper(cs, bit, 2)
    with pytest.raises(UnsatisfiedConstraint, match="boolean"):
        cs.check()


@pytest.mark.parametrize("value,bits", [(0, 1), (1, 1), (255, 8), (2**64 - 1, 64), (12345, 64)])
def test_range_check_accepts_values_in_range(cs, value, bits):
    out = g.to_bits(cs, cs.private(value), bits)
    cs.check()
    assert [b.value for b in out] == [(value >> i) & 1 for i in range(bits)]
    assert cs.n_constraints == bits + 1


@pytest.mark.parametrize("value,bits", [(256, 8), (2**64, 64), (-1, 64), (2, 1)])
def test_invalid_range_check_out_of_range(cs, value, bits):
    with pytest.raises(WitnessError, match="does not fit"):
        g.range_check(cs, cs.private(value), bits)


def test_range_check_rejects_tampered_value(cs):
    x = cs.private(200)
    g.range_check(cs, x, 8)
    tamper(cs, x, 256 + 200)
    with pytest.raises(UnsatisfiedConstraint, match="range_check"):
        cs.check()


def test_range_check_width_is_bounded(cs):
    with pytest.raises(ValueError, match="bit width"):
        g.range_check(cs, cs.private(1), 253)
    with pytest.raises(ValueError, match="bit width"):
        g.range_check(cs, cs.private(1), 0)


@pytest.mark.parametrize("a,b", [(a, b) for a in (0, 1, 7, 254, 255) for b in (0, 1, 7, 254, 255)])
def test_comparisons(cs, a, b):
    x, y = cs.private(a), cs.private(b)
    results = {
        "lt": g.lt(cs, x, y, 8), "le": g.le(cs, x, y, 8),
        "gt": g.gt(cs, x, y, 8), "ge": g.ge(cs, x, y, 8),
    }
    cs.check()
    assert {k: v.value for k, v in results.items()} == {"lt": int(a < b), "le": int(a <= b), "gt": int(a > b), "ge": int(a >= b)}


@pytest.mark.parametrize("gadget", [g.lt, g.le, g.gt, g.ge, g.sign])
def test_comparison_costs_n_plus_two(cs, gadget):
    if gadget is g.sign:
        gadget(cs, cs.private(-3), 16)
    else:
        gadget(cs, cs.private(3), cs.private(4), 16)
    assert cs.n_constraints == 18


def test_lt_result_cannot_be_flipped(cs):
    out = g.lt(cs, cs.private(3), cs.private(4), 8)
    assert out.value == 1
    tamper(cs, out, 0)
    with pytest.raises(UnsatisfiedConstraint):
        cs.check()


def test_assert_lt_and_le(cs):
    g.assert_lt(cs, cs.private(3), cs.private(4), 8)
    g.assert_le(cs, cs.private(4), cs.private(4), 8)
    cs.check()
    with pytest.raises(WitnessError, match="expected 4 < 4"):
        g.assert_lt(cs, cs.private(4), cs.private(4), 8)
    with pytest.raises(WitnessError, match="expected 5 <= 4"):
        g.assert_le(cs, cs.private(5), cs.private(4), 8)


def test_assert_le_rejects_tampered_operand(cs):
    a, b = cs.private(3), cs.private(10)
    g.assert_le(cs, a, b, 8)
    tamper(cs, a, 11)
    with pytest.raises(UnsatisfiedConstraint, match="assert_le"):
        cs.check()


@pytest.mark.parametrize("value,expected", [(0, 1), (1, 0), (R - 1, 0), (12345, 0)])
def test_is_zero(cs, value, expected):
    out = g.is_zero(cs, cs.private(value))
    cs.check()
    assert out.value == expected and cs.n_constraints == 2


@pytest.mark.parametrize("value", [0, 5])
def test_is_zero_cannot_lie(cs, value):
    out = g.is_zero(cs, cs.private(value))
    tamper(cs, out, 1 - out.value)
    with pytest.raises(UnsatisfiedConstraint, match="is_zero"):
        cs.check()


def test_is_equal_and_assert_equal(cs):
    a, b, c = cs.private(5), cs.private(5), cs.private(6)
    assert g.is_equal(cs, a, b).value == 1
    assert g.is_equal(cs, a, c).value == 0
    g.assert_equal(cs, a, b)
    cs.check()
    with pytest.raises(WitnessError, match="differ"):
        g.assert_equal(cs, a, c)


@pytest.mark.parametrize("cond,expected", [(1, 10), (0, 20)])
def test_select(cs, cond, expected):
    out = g.select(cs, cs.private(cond), cs.private(10), cs.private(20))
    cs.check()
    assert out.value == expected and cs.n_constraints == 1
    tamper(cs, out, 30 - expected)
    with pytest.raises(UnsatisfiedConstraint, match="select"):
        cs.check()


def test_invalid_select_non_boolean_condition(cs):
    with pytest.raises(WitnessError, match="boolean"):
        g.select(cs, cs.private(2), 1, 0)


def test_mul_and_materialize(cs):
    a, b = cs.private(6), cs.private(7)
    assert g.mul(cs, a, b).value == 42
    m = g.materialize(cs, 2 * a + b)
    assert m.value == 19 and g.materialize(cs, a) is a
    cs.check()
    assert cs.n_constraints == 2


@pytest.mark.parametrize("value", [0, 1, -1, 2**63 - 1, -(2**63), -12345, 99])
def test_sign_and_abs(cs, value):
    magnitude, negative = g.abs_value(cs, cs.private(value), 63)
    cs.check()
    assert magnitude.value == abs(value) and negative.value == int(value < 0)
    assert g.to_signed(cs, cs.private(value).value) == value


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, R // 3])
def test_invalid_sign_out_of_bound(cs, value):
    with pytest.raises(WitnessError, match="outside"):
        g.sign(cs, cs.private(value), 63)


def test_abs_cannot_flip_sign(cs):
    x = cs.private(-5)
    magnitude, negative = g.abs_value(cs, x, 8)
    tamper(cs, negative, 0)
    with pytest.raises(UnsatisfiedConstraint):
        cs.check()


@pytest.mark.parametrize("values", [[5], [1, 9, 3], [9, 9, 2], [0, 0], [255, 0, 254]])
def test_maximum(cs, values):
    out = g.maximum(cs, [cs.private(v) for v in values], 8)
    cs.check()
    assert out.value == max(values)


def test_maximum_cannot_be_understated(cs):
    out = g.maximum(cs, [cs.private(v) for v in (4, 8, 6)], 8)
    tamper(cs, out, 6)
    with pytest.raises(UnsatisfiedConstraint):
        cs.check()


def test_invalid_maximum_of_nothing(cs):
    with pytest.raises(ValueError, match="at least one"):
        g.maximum(cs, [], 8)
