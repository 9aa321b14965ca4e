"""MSM: naive (py_ecc) and Pippenger (raw ints) over one test suite, in G1 and G2; raw-int arithmetic vs py_ecc."""

from __future__ import annotations

import random

import pytest

from prover.ec import compute_fixed_base_muls, get_arith
from prover.msm import compute_bucket_msm, compute_msm_affine, get_window, msm_naive, msm_pippenger
from verifier.curve import BLS12_381, BN254

IMPLS = [msm_naive, msm_pippenger]
GROUPS = [1, 2]


def generator(curve, group):
    return curve.G1 if group == 1 else curve.G2


def identity(curve, group):
    return curve.Z1 if group == 1 else curve.Z2


def points_of(curve, group, exponents):
    """e_i * G by py_ecc (the reference multiplication)."""
    return [curve.multiply(generator(curve, group), e) for e in exponents]


def same(curve, p, q) -> bool:
    return curve.eq(p, q)


@pytest.fixture(scope="module", params=GROUPS, ids=["G1", "G2"])
def group(request):
    return request.param


@pytest.fixture(scope="module")
def base_points(group):
    return points_of(BN254, group, [3, 5, 7, 11])


# --- one suite over both implementations ---
@pytest.mark.parametrize("msm", IMPLS)
def test_empty_is_identity(msm, group):
    assert BN254.is_inf(msm(BN254, [], [], group))


@pytest.mark.parametrize("msm", IMPLS)
def test_all_zero_scalars(msm, group, base_points):
    assert BN254.is_inf(msm(BN254, base_points, [0] * 4, group))


@pytest.mark.parametrize("msm", IMPLS)
def test_ones_are_a_sum(msm, group, base_points):
    expected = BN254.multiply(generator(BN254, group), 3 + 5 + 7 + 11)
    assert same(BN254, msm(BN254, base_points, [1, 1, 1, 1], group), expected)


@pytest.mark.parametrize("msm", IMPLS)
def test_identity_points_are_skipped(msm, group, base_points):
    pts = [identity(BN254, group), base_points[0], identity(BN254, group)]
    expected = BN254.multiply(generator(BN254, group), 3 * 9)
    assert same(BN254, msm(BN254, pts, [5, 9, 2**200], group), expected)


@pytest.mark.parametrize("msm", IMPLS)
def test_duplicate_and_opposite_points(msm, group, base_points):
    p = base_points[1]
    pts = [p, p, p, BN254.neg(p), p]
    scalars = [6, 6, 1, 1, 2**100]
    # 6 + 6 + 1 - 1 + 2^100 times 5 G: same bucket twice (doubling), and a cancelling pair
    expected = BN254.multiply(generator(BN254, group), (12 + 2**100) * 5 % BN254.r)
    assert same(BN254, msm(BN254, pts, scalars, group), expected)
    assert BN254.is_inf(msm(BN254, [p, p], [1, BN254.r - 1], group))


@pytest.mark.parametrize("msm", IMPLS)
def test_large_and_negative_scalars(msm, group, base_points):
    r = BN254.r
    scalars = [r - 1, r - 2**64, r // 2, r // 2 + 1]
    expected = BN254.multiply(generator(BN254, group), sum(s * e for s, e in zip(scalars, (3, 5, 7, 11))) % r)
    assert same(BN254, msm(BN254, base_points, scalars, group), expected)


@pytest.mark.parametrize("msm", IMPLS)
@pytest.mark.parametrize("bad", [BN254.r, BN254.r + 5, -1, 2**300])
def test_invalid_scalar_outside_field_is_rejected(msm, group, base_points, bad):
    with pytest.raises(ValueError, match=r"\[0, r\)"):
        msm(BN254, base_points[:1], [bad], group)


@pytest.mark.parametrize("msm", IMPLS)
def test_invalid_length_mismatch_and_group(msm, base_points):
    with pytest.raises(ValueError, match="one scalar per point"):
        msm(BN254, base_points, [1, 2], 1)
    with pytest.raises(ValueError, match="group must be 1 or 2"):
        msm(BN254, [], [], 3)


@pytest.mark.parametrize("msm", IMPLS)
@pytest.mark.parametrize("curve", [BN254, BLS12_381], ids=lambda c: c.name)
def test_random_mix_matches_known_sum(msm, curve, group):
    """Witness-like scalars (0, 1, small, 64-bit, negative, full) on e_i * G: the sum is (sum k_i e_i) G."""
    rng = random.Random(7)
    r = curve.r
    n = 12
    exponents = [rng.randrange(1, r) for _ in range(n)]
    pts = points_of(curve, group, exponents)
    scalars = [0, 1, 1, 2, 255, rng.getrandbits(64), r - 3, r - rng.getrandbits(60), rng.randrange(r),
               rng.randrange(r), 2**128 + 1, 7]
    expected = curve.multiply(generator(curve, group), sum(k * e for k, e in zip(scalars, exponents)) % r)
    assert same(curve, msm(curve, pts, scalars, group), expected)


# --- Pippenger at sizes where windows > 1 and every scalar class is used ---
@pytest.mark.parametrize("curve", [BN254, BLS12_381], ids=lambda c: c.name)
def test_pippenger_many_points(curve, group):
    rng = random.Random(11)
    r = curve.r
    arith = get_arith(curve, group)
    n = 300 if group == 1 else 120
    exponents = [rng.randrange(1, r) for _ in range(n)]
    bases = compute_fixed_base_muls(arith, arith.from_py_ecc(generator(curve, group)), exponents, r.bit_length())
    kinds = [lambda: 0, lambda: 1, lambda: rng.getrandbits(4), lambda: rng.getrandbits(16), lambda: rng.getrandbits(40),
             lambda: rng.getrandbits(64), lambda: rng.getrandbits(120), lambda: rng.randrange(r), lambda: r - rng.getrandbits(64)]
    scalars = [rng.choice(kinds)() for _ in range(n)]
    got = arith.to_affine(compute_msm_affine(arith, bases, scalars))
    expected = curve.multiply(generator(curve, group), sum(k * e for k, e in zip(scalars, exponents)) % r)
    assert got == arith.from_py_ecc(expected)


def test_window_grows_with_size():
    assert get_window(1, 254) <= 2
    assert get_window(16384, 254) > get_window(1024, 254) > get_window(16, 254)
    assert get_window(1000, 8) <= 9


# --- raw-int arithmetic against py_ecc's add, double, multiply ---
@pytest.mark.parametrize("curve", [BN254, BLS12_381], ids=lambda c: c.name)
def test_raw_int_group_law_matches_py_ecc(curve, group):
    rng = random.Random(3)
    arith = get_arith(curve, group)
    p, q = points_of(curve, group, [rng.randrange(1, curve.r), rng.randrange(1, curve.r)])
    pa, qa = arith.from_py_ecc(p), arith.from_py_ecc(q)
    assert arith.is_on_curve(pa) and arith.is_on_curve(qa)
    pj = arith.add_mixed(None, pa)
    cases = {
        "mixed add": (arith.add_mixed(pj, qa), curve.add(p, q)),
        "double": (arith.double(pj), curve.double(p)),
        "add": (arith.add(arith.double(pj), arith.add_mixed(None, qa)), curve.add(curve.double(p), q)),
        "mixed add of itself": (arith.add_mixed(pj, pa), curve.double(p)),
        "add of itself": (arith.add(pj, pj), curve.double(p)),
    }
    for name, (got, expected) in cases.items():
        assert arith.to_affine(got) == arith.from_py_ecc(expected), name
        assert same(curve, arith.to_py_ecc(arith.to_affine(got)), expected), name
    assert arith.add_mixed(pj, arith.neg(pa)) is None
    assert arith.add(pj, arith.add_mixed(None, arith.neg(pa))) is None
    assert arith.from_py_ecc(identity(curve, group)) is None
    jac = [arith.double(pj), None, arith.add_mixed(pj, qa)]
    assert arith.batch_to_affine(jac) == [arith.to_affine(x) for x in jac]


@pytest.mark.parametrize("curve", [BN254, BLS12_381], ids=lambda c: c.name)
def test_fixed_base_matches_py_ecc_multiply(curve, group):
    rng = random.Random(5)
    arith = get_arith(curve, group)
    scalars = [0, 1, 2, curve.r - 1, rng.randrange(curve.r), rng.getrandbits(64)]
    got = compute_fixed_base_muls(arith, arith.from_py_ecc(generator(curve, group)), scalars, curve.r.bit_length())
    assert got == [arith.from_py_ecc(curve.multiply(generator(curve, group), k)) for k in scalars]


def test_invalid_fixed_base_inputs():
    g1 = get_arith(BN254, 1)
    with pytest.raises(ValueError, match="outside"):
        compute_fixed_base_muls(g1, g1.from_py_ecc(BN254.G1), [2**254], 254)
    with pytest.raises(ValueError, match="outside"):
        compute_fixed_base_muls(g1, g1.from_py_ecc(BN254.G1), [-1], 254)
    with pytest.raises(ValueError, match="identity"):
        compute_fixed_base_muls(g1, None, [1], 254)


def test_points_off_curve_are_detected():
    g1 = get_arith(BN254, 1)
    g2 = get_arith(BN254, 2)
    x, y = g1.from_py_ecc(BN254.G1)
    assert not g1.is_on_curve((x, y + 1))
    assert not g1.is_on_curve((x, y + BN254.q))
    (x0, x1), (y0, y1) = g2.from_py_ecc(BN254.G2)
    assert not g2.is_on_curve(((x0, x1), (y0, y1 + 1)))


@pytest.mark.parametrize("bits", [8, 16, 64])
def test_signed_digit_windows_cover_the_carry(bits):
    """Every window size, with scalars whose top digit takes a carry (all ones) and random ones."""
    arith = get_arith(BN254, 1)
    base = arith.from_py_ecc(BN254.G1)
    rng = random.Random(bits)
    scalars = [(1 << bits) - 1, (1 << bits) - 2, 1 << (bits - 1), rng.getrandbits(bits), 3]
    expected = arith.from_py_ecc(BN254.multiply(BN254.G1, sum(scalars)))
    for window in range(2, 12):
        got = compute_bucket_msm(arith, [(base, k) for k in scalars], bits, window=window)
        assert arith.to_affine(got) == expected, window
