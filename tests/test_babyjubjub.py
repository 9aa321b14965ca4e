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


@pytest.mark.parametrize("key", ["table", "point"])
def test_mul_base_and_precomputed_tables(curve, key) -> None:
    # a key's table, or the key itself (what verifier.eddsa passes for a key seen a few times)
    rng = random.Random(4)
    q = random_points(curve, 1, 4)[0]
    table = curve.precompute(q) if key == "table" else q
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


def test_subgroup_membership_in_every_coset(curve) -> None:
    # P + k * T8 for a generator T8 of the 8-torsion: in the subgroup only for k = 0 (the fast
    # curve's pairing test must agree with l * P == O on all eight cosets and on E[8] itself)
    assert len(set(B.SMALL_ORDER)) == 8 and all(B.reference.mul(t, 8) == B.IDENTITY for t in B.SMALL_ORDER)
    for k, t in enumerate(B.SMALL_ORDER):
        assert curve.in_subgroup(t) == (k == 0)
        for p in random_points(B.fast, 2, 10 + k):
            q = B.fast.mul_base(B.fast.mul(p, 8)[1] % B.SUBORDER)  # some point of the subgroup
            assert curve.in_subgroup(B.reference.add(q, t)) == (k == 0)
            assert curve.in_subgroup_on_curve(B.reference.add(q, t)) == (k == 0)


def test_all_in_subgroup(curve, monkeypatch) -> None:
    # the batch test (random subset products, from SUBGROUP_BATCH_MIN points; lowered here) and the
    # reference's one by one agree: any point outside the subgroup, anywhere, fails the batch
    monkeypatch.setattr(B, "SUBGROUP_BATCH_MIN", 8)
    good = [B.fast.mul_base(random.Random(14).randrange(1, B.SUBORDER) + k) for k in range(13)]
    assert curve.all_in_subgroup_on_curve(good, b"seed")
    assert curve.all_in_subgroup_on_curve([*good, B.IDENTITY], b"seed")
    assert curve.all_in_subgroup_on_curve(good[:3], b"seed")  # below the minimum: one by one
    for k in range(1, 8):
        for at in (0, 6, 12):
            bad = list(good)
            bad[at] = B.reference.add(good[at], B.SMALL_ORDER[k])
            assert not curve.all_in_subgroup_on_curve(bad, b"seed")
        assert not curve.all_in_subgroup_on_curve([*good, B.SMALL_ORDER[k]], b"seed")
    # two order-2 parts cancel in every subset holding both: only subsets holding one see them
    pair = list(good)
    pair[2], pair[9] = (B.reference.add(pair[i], ORDER2) for i in (2, 9))
    assert not curve.all_in_subgroup_on_curve(pair, b"seed")


def test_subgroup_batch_round_is_a_coin(monkeypatch) -> None:
    # one round alone catches an order-2 part for about half the seeds (the subset holds the point
    # or not): what SUBGROUP_ROUNDS = 128 rounds turn into a 2^-128 bound
    monkeypatch.setattr(B, "SUBGROUP_BATCH_MIN", 8)
    monkeypatch.setattr(B, "SUBGROUP_ROUNDS", 1)
    points = [B.fast.mul_base(k + 2) for k in range(12)]
    points[5] = B.reference.add(points[5], ORDER2)
    passed = sum(B.are_in_subgroup(points, bytes([seed])) for seed in range(64))
    assert 16 <= passed <= 48


def test_msm(curve) -> None:
    rng = random.Random(11)
    # points with small-order parts, scalars of every size, zero and negative
    points = [B.reference.add(p, B.SMALL_ORDER[i % 8]) for i, p in enumerate(random_points(B.fast, 6, 11))]
    scalars = [0, 1, -5, rng.randrange(1 << 128), rng.randrange(B.ORDER), (1 << 129) - 1]
    expected = B.IDENTITY
    for p, e in zip(points, scalars):
        expected = B.reference.add(expected, B.reference.mul(p, e))
    assert curve.msm(points, scalars) == expected
    assert curve.msm([], []) == B.IDENTITY


def test_pippenger_every_window() -> None:
    rng = random.Random(12)
    points = random_points(B.fast, 9, 12)
    for bits in (1, 8, 128, 253):
        scalars = [rng.randrange(1 << bits) for _ in points]
        scalars[0] = (1 << bits) - 1  # all-ones digits: the top window's signed recoding
        expected = B.reference.msm(points, scalars)
        for c in range(2, 10):
            assert B._ext_to_affine(B._pippenger(points, scalars, c)) == expected
    # scalars of mixed lengths (an EdDSA batch: 128-bit coefficients, full-size key scalars, 0):
    # each point joins only the windows its scalar reaches
    mixed = [rng.randrange(1 << 128), rng.randrange(B.SUBORDER), 0, 1, (1 << 128) - 1, rng.randrange(1 << 260),
             rng.randrange(1 << 64), B.SUBORDER - 1, (1 << 253) - 1]
    expected = B.reference.msm(points, mixed)
    for c in (None, *range(2, 10)):
        assert B._ext_to_affine(B._pippenger(points, mixed, c)) == expected
    assert B._ext_to_affine(B._pippenger(points[:1], [0])) == B.IDENTITY
    # the window's cost model: a few long scalars among many short ones add windows only they pay
    assert B._pippenger_cost({128: 1024, 253: 100}, 8) == 17 * 1024 + 32 * 100 + 32 * (3 * 128 + 8)
    # negative scalars (the point negated) and the window growing with the number of points
    signed = [-e if i % 2 else e for i, e in enumerate(scalars)]
    assert B._ext_to_affine(B._pippenger(points, signed)) == B.reference.msm(points, signed)
    assert [B.pippenger_window(n, 128) for n in (1, 64, 1024, 4096)] == sorted(B.pippenger_window(n, 128) for n in (1, 64, 1024, 4096))


def test_batch_equals(curve) -> None:
    # s * Base8 - sum e_k Q_k == sum z_i R_i built to hold (R_i = r_i Base8, Q_k = w_k Base8), then
    # broken one term at a time
    rng = random.Random(13)
    ws = [rng.randrange(B.SUBORDER) for _ in range(2)]
    es = [rng.randrange(B.SUBORDER) for _ in ws]
    r_scalars = [rng.randrange(B.SUBORDER) for _ in range(3)]
    rs = [B.fast.mul_base(r) for r in r_scalars]
    keys = [(curve.precompute(B.fast.mul_base(w)), e) for w, e in zip(ws, es)]
    plain = [(B.fast.mul_base(w), e) for w, e in zip(ws, es)]  # keys as points, no table

    def balancing_s(zs: list[int]) -> int:
        return (sum(z * r for z, r in zip(zs, r_scalars)) + sum(e * w for e, w in zip(es, ws))) % B.SUBORDER

    zs = [rng.randrange(1 << 128) | 1 for _ in rs]  # odd: see the torsion case below
    s = balancing_s(zs)
    assert curve.batch_equals(s, keys, rs, zs)
    assert not curve.batch_equals((s + 1) % B.SUBORDER, keys, rs, zs)
    assert not curve.batch_equals(s, [keys[0], (keys[1][0], keys[1][1] + 1)], rs, zs)
    assert not curve.batch_equals(s, keys, rs, [zs[0] + 2, *zs[1:]])
    with_torsion = [B.reference.add(rs[0], B.SMALL_ORDER[4]), *rs[1:]]
    assert not curve.batch_equals(s, keys, with_torsion, zs)
    # ... but an even z_0 does not see the order-2 part: why eddsa.verify_many tests each R8 first
    even = [zs[0] + 1, *zs[1:]]
    assert curve.batch_equals(balancing_s(even), keys, with_torsion, even)
    # a key scalar past the 2 x 128-bit split takes the table-less path
    assert curve.batch_equals(s, [(keys[0][0], keys[0][1] + 8 * B.SUBORDER), keys[1]], rs, zs)
    # keys given as points join the MSM with their whole scalar, alone or beside tables
    for mix in (plain, [keys[0], plain[1]], [plain[0], keys[1]]):
        assert curve.batch_equals(s, mix, rs, zs)
        assert not curve.batch_equals(s, [mix[0], (mix[1][0], mix[1][1] + 1)], rs, zs)
        assert not curve.batch_equals(s, mix, with_torsion, zs)
    assert curve.batch_equals(s, [(plain[0][0], plain[0][1] + 8 * B.SUBORDER), plain[1]], rs, zs)


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
