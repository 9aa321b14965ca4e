"""BabyJubJub: group laws, subgroup, packing, one suite over every implementation (reference, fast);
agreement with circomlibjs 0.1.7 is in test_eddsa_interop.py."""

from __future__ import annotations

import random

import pytest

from verifier import babyjubjub as B

IMPLS = list(B.IMPLEMENTATIONS.values())
ids = [c.name for c in IMPLS]

# the point of order 2: x = 0, y = -1 (a*0 + 1 = 1 + 0)
ORDER2: tuple[int, int] = (0, B.P - 1)


def random_points(curve, n: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    return [curve.mul(B.GENERATOR, rng.randrange(1, B.ORDER)) for _ in range(n)]


@pytest.fixture(params=IMPLS, ids=ids)
def curve(request):
    return request.param


def test_constants_are_consistent() -> None:
    from py_ecc.optimized_bn128 import curve_order

    assert B.P == curve_order
    assert B.is_on_curve(B.GENERATOR) and B.is_on_curve(B.BASE8)
    assert B.ORDER == 8 * B.SUBORDER


def test_identity_and_negation(curve) -> None:
    for p in random_points(curve, 3, 1):
        assert curve.add(p, B.IDENTITY) == p
        assert curve.add(B.IDENTITY, p) == p
        assert curve.add(p, B.neg(p)) == B.IDENTITY
        assert curve.mul(p, 0) == B.IDENTITY
        assert curve.mul(p, 1) == p
        assert curve.mul(p, -1) == B.neg(p)


def test_group_laws(curve) -> None:
    p, q, r = random_points(curve, 3, 2)
    assert curve.add(p, q) == curve.add(q, p)
    assert curve.add(curve.add(p, q), r) == curve.add(p, curve.add(q, r))
    assert curve.double(p) == curve.add(p, p)
    assert B.is_on_curve(curve.add(p, q)) and B.is_on_curve(curve.double(p))


def test_scalar_multiplication_is_linear(curve) -> None:
    rng = random.Random(3)
    p = random_points(curve, 1, 3)[0]
    for _ in range(3):
        a, b = rng.randrange(B.ORDER), rng.randrange(B.ORDER)
        assert curve.mul(p, a + b) == curve.add(curve.mul(p, a), curve.mul(p, b))
        assert curve.mul(curve.mul(p, a), b) == curve.mul(p, a * b % B.ORDER)


def test_orders(curve) -> None:
    assert curve.mul(B.BASE8, B.SUBORDER) == B.IDENTITY
    assert curve.mul(B.GENERATOR, B.ORDER) == B.IDENTITY
    assert curve.mul(B.GENERATOR, B.SUBORDER) != B.IDENTITY  # the generator has order 8 * l
    assert curve.mul(B.GENERATOR, 8) == B.BASE8
    assert curve.mul(ORDER2, 2) == B.IDENTITY


def test_mul_base_and_precomputed_tables(curve) -> None:
    rng = random.Random(4)
    q = random_points(curve, 1, 4)[0]
    table = curve.precompute(q)
    # all-ones scalars carry into the tables' extra row; 2^260 is past them (the windowed path)
    ones = (1 << B.SUBORDER.bit_length()) - 1
    scalars = [0, 1, 15, 16, B.SUBORDER - 1, ones, rng.randrange(B.SUBORDER), rng.randrange(1 << 260)]
    for e, s in zip(scalars, [rng.randrange(B.SUBORDER), 0, ones, 1 << 260, *(rng.randrange(B.SUBORDER) for _ in range(4))]):
        assert curve.mul_base(e) == curve.mul(B.BASE8, e)
        assert curve.mul_precomputed(table, e) == curve.mul(q, e)
        expected = curve.add(curve.mul(B.BASE8, s), B.neg(curve.mul(q, e)))
        assert curve.mul_sub_base(s, table, e) == expected
        assert curve.sub_base_equals(s, table, e, expected)
        assert not curve.sub_base_equals(s, table, e, curve.add(expected, B.BASE8))


def test_subgroup_membership(curve) -> None:
    assert curve.in_subgroup(B.BASE8)
    assert curve.in_subgroup(curve.mul_base(12345))
    assert curve.in_subgroup(B.IDENTITY)
    assert not curve.in_subgroup(B.GENERATOR)
    assert not curve.in_subgroup(ORDER2)
    assert not curve.in_subgroup(curve.add(curve.mul_base(12345), ORDER2))
    assert not curve.in_subgroup((1, 2))  # off the curve


def test_matches_reference() -> None:
    rng = random.Random(5)
    points = random_points(B.reference, 4, 5)
    for impl in IMPLS:
        for p, q in zip(points, points[1:]):
            e = rng.randrange(B.ORDER)
            assert impl.add(p, q) == B.reference.add(p, q)
            assert impl.double(p) == B.reference.double(p)
            assert impl.mul(p, e) == B.reference.mul(p, e)


def test_pack_unpack_roundtrip() -> None:
    points = random_points(B.fast, 6, 6) + [B.BASE8]
    for p in points:
        packed = B.pack_point(p)
        assert len(packed) == 32
        assert B.unpack_point(packed) == p
    # the sign bit carries x's half: a point and its negation differ only there
    p = points[0]
    assert B.pack_point(p)[:31] == B.pack_point(B.neg(p))[:31]
    assert B.pack_point(p)[31] ^ B.pack_point(B.neg(p))[31] == 0x80


def test_invalid_unpack() -> None:
    # x = 0: circomlibjs's unpackPoint refuses the identity and the point of order 2
    for p in (B.IDENTITY, ORDER2):
        with pytest.raises(B.InvalidPoint, match="x = 0"):
            B.unpack_point(B.pack_point(p))
    with pytest.raises(B.InvalidPoint, match="32 bytes"):
        B.unpack_point(b"\x00" * 31)
    with pytest.raises(B.InvalidPoint, match="not a field element"):
        B.unpack_point((B.P).to_bytes(32, "little"))
    # a y with no x on the curve: search the first few small ys
    bad = next(y for y in range(2, 100) if B._sqrt((1 - y * y) * pow(B.A - B.D * y * y, -1, B.P) % B.P) is None)
    with pytest.raises(B.InvalidPoint, match="no x"):
        B.unpack_point(bad.to_bytes(32, "little"))


def test_invalid_points() -> None:
    with pytest.raises(B.InvalidPoint, match="not on BabyJubJub"):
        B.check_point((1, 2))
    with pytest.raises(B.InvalidPoint, match="field element"):
        B.check_point((B.BASE8[0] + B.P, B.BASE8[1]))
    with pytest.raises(B.InvalidPoint, match="pair"):
        B.check_point([B.BASE8[0], B.BASE8[1]])
    with pytest.raises(B.InvalidPoint, match="must be an int"):
        B.check_point((str(B.BASE8[0]), B.BASE8[1]))
    with pytest.raises(B.InvalidPoint):
        B.pack_point((1, 2))
