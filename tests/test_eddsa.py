"""EdDSA-Poseidon: signing, verification and its rejections, wallet-derived keys; one suite over both
BabyJubJub implementations. Agreement with circomlibjs is in test_eddsa_interop.py."""

from __future__ import annotations

import functools
import random
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from eth_account import Account
from eth_account.messages import encode_typed_data

from verifier import babyjubjub as B
from verifier import eddsa as E
from verifier.wire import SigningDomain

IMPLS = list(B.IMPLEMENTATIONS.values())
# (curve, key path): every key with a table from its first sighting, or never one (a plain
# multiplication, a plain point of the batch MSM); the reference's "table" is the point itself
CURVES = [(B.reference, "table"), (B.fast, "table"), (B.fast, "plain")]
ORDER2 = (0, B.P - 1)
DOMAIN = SigningDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
PRV = bytes(range(32))
MSG = 0x1234567890ABCDEF


@pytest.fixture(params=CURVES, ids=[f"{c.name}-{path}" for c, path in CURVES])
def curve(request, monkeypatch):
    impl, path = request.param
    monkeypatch.setattr(E._KeyCache, "TABLE_AFTER", 1 if path == "table" else 1 << 62)
    E.clear_key_cache()
    yield impl
    E.clear_key_cache()


@pytest.fixture
def signed(curve):
    return E.sign(PRV, MSG, curve), E.prv2pub(PRV, curve)


def test_sign_verify(curve, signed) -> None:
    sig, a = signed
    assert E.verify(MSG, sig, a, curve)
    E.check_signature(MSG, sig, a, curve)
    assert B.fast.in_subgroup(a) and B.fast.in_subgroup(sig.R8)


def test_implementations_agree() -> None:
    rng = random.Random(1)
    prv, msg = rng.randbytes(32), rng.randrange(B.P)
    assert E.prv2pub(prv, B.reference) == E.prv2pub(prv, B.fast)
    assert E.sign(prv, msg, B.reference) == E.sign(prv, msg, B.fast)


def test_signing_is_deterministic_and_message_bound() -> None:
    assert E.sign(PRV, MSG) == E.sign(PRV, MSG)
    assert E.sign(PRV, MSG).R8 != E.sign(PRV, MSG + 1).R8


def test_signature_pack_roundtrip(signed) -> None:
    sig, _ = signed
    packed = sig.pack()
    assert len(packed) == 64
    assert E.Signature.unpack(packed) == sig


def test_wrong_message_fails(curve, signed) -> None:
    sig, a = signed
    assert not E.verify(MSG + 1, sig, a, curve)
    with pytest.raises(E.InvalidSignature, match="does not match"):
        E.check_signature(MSG + 1, sig, a, curve)


def test_wrong_key_fails(curve, signed) -> None:
    sig, _ = signed
    other = E.prv2pub(bytes(32), curve)
    assert not E.verify(MSG, sig, other, curve)


def test_tampered_signature_fails(curve, signed) -> None:
    sig, a = signed
    assert not E.verify(MSG, E.Signature(sig.R8, (sig.S + 1) % B.SUBORDER), a, curve)
    assert not E.verify(MSG, E.Signature(curve.add(sig.R8, B.BASE8), sig.S), a, curve)


def test_invalid_r8_with_torsion_is_named(curve, signed) -> None:
    # R8 + (point of order 2) is on the curve but outside the subgroup: never verifies
    sig, a = signed
    bad = E.Signature(curve.add(sig.R8, ORDER2), sig.S)
    assert not E.verify(MSG, bad, a, curve)
    with pytest.raises(E.InvalidSignature, match="R8 is not in the prime-order subgroup"):
        E.check_signature(MSG, bad, a, curve)


def test_invalid_s_out_of_range(curve, signed) -> None:
    sig, a = signed
    # S + l is the same scalar on the subgroup: circomlib's circuit and circomlibjs refuse it
    with pytest.raises(E.InvalidSignature, match="S is not below the subgroup order"):
        E.verify(MSG, E.Signature(sig.R8, sig.S + B.SUBORDER), a, curve)
    with pytest.raises(E.InvalidSignature, match="S is not below"):
        E.verify(MSG, E.Signature(sig.R8, -1), a, curve)


def test_invalid_r8_off_curve(curve, signed) -> None:
    sig, a = signed
    with pytest.raises(E.InvalidSignature, match="R8 is not on BabyJubJub"):
        E.verify(MSG, E.Signature((sig.R8[0], (sig.R8[1] + 1) % B.P), sig.S), a, curve)
    with pytest.raises(E.InvalidSignature, match="R8.x is not a field element"):
        E.verify(MSG, E.Signature((sig.R8[0] + B.P, sig.R8[1]), sig.S), a, curve)


def test_invalid_public_keys(curve, signed) -> None:
    sig, a = signed
    with pytest.raises(E.InvalidSignature, match="public key is not on BabyJubJub"):
        E.verify(MSG, sig, (a[0], (a[1] + 1) % B.P), curve)
    with pytest.raises(E.InvalidSignature, match="public key is not in the prime-order subgroup"):
        E.verify(MSG, sig, B.reference.add(a, ORDER2), curve)
    with pytest.raises(E.InvalidSignature, match="public key is the identity"):
        E.verify(MSG, sig, B.IDENTITY, curve)


def test_invalid_messages(curve, signed) -> None:
    sig, a = signed
    with pytest.raises(E.InvalidSignature, match="not a field element"):
        E.verify(B.P, sig, a, curve)
    with pytest.raises(E.InvalidSignature, match="must be a field element"):
        E.verify(str(MSG), sig, a, curve)
    with pytest.raises(E.InvalidSignature, match="not a field element"):
        E.sign(PRV, -1, curve)


def test_invalid_private_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        E.prv2pub(b"\x01" * 31)
    with pytest.raises(ValueError, match="32 bytes"):
        E.sign("00" * 32, MSG)  # type: ignore[arg-type]


def test_invalid_packed_signature(signed) -> None:
    sig, _ = signed
    with pytest.raises(E.InvalidSignature, match="64 bytes"):
        E.Signature.unpack(sig.pack()[:63])
    with pytest.raises(E.InvalidSignature, match="R8"):
        E.Signature.unpack(B.P.to_bytes(32, "little") + sig.pack()[32:])


def test_verify_many(signed) -> None:
    sig, a = signed
    assert E.verify_many([(MSG, sig, a), (MSG + 1, sig, a)]) == [True, False]


# ---- batch verification: verify_many must answer exactly as verify on every input ----

KEYS = [bytes([k]) * 32 for k in range(1, 4)]


def sign_with_torsion(prv: bytes, msg: int, t: B.Point, curve) -> E.Signature:
    """A signer's signature with R8 = r * Base8 + t: S * Base8 - 8h * A = R8 - t, so it passes
    the cofactored check 8 * (S * Base8 - 8h * A - R8) == O, while verify must refuse it."""
    s, _ = E._secret(prv)
    r = random.Random(msg).randrange(1, B.SUBORDER)
    r8 = curve.add(curve.mul_base(r), t)
    h = E.compute_message_hash(r8, E.prv2pub(prv, curve), msg)
    return E.Signature(r8, (r + h * s) % B.SUBORDER)


@functools.lru_cache(maxsize=None)
def make_item(kind: str, i: int, curve) -> tuple[int, E.Signature, B.Point]:
    """One (msg, sig, key) of a kind; `i` varies the message and the key."""
    prv = KEYS[i % len(KEYS)]
    a, msg = E.prv2pub(prv, curve), 1000 + i
    sig = E.sign(prv, msg, curve)
    if kind == "valid":
        return msg, sig, a
    if kind == "wrong_msg":
        return msg + 1, sig, a
    if kind == "wrong_s":
        return msg, E.Signature(sig.R8, (sig.S + 1) % B.SUBORDER), a
    if kind == "wrong_key":
        return msg, sig, E.prv2pub(KEYS[(i + 1) % len(KEYS)], curve)
    if kind == "r8_plus_t2":  # R8 + T of order 2, h unchanged: outside the subgroup
        return msg, E.Signature(curve.add(sig.R8, B.SMALL_ORDER[4]), sig.S), a
    if kind.startswith("torsion"):  # R8 + T signed over: cofactored-valid, T of order 8, 4 or 2
        return msg, sign_with_torsion(prv, msg, B.SMALL_ORDER[int(kind[-1])], curve), a
    if kind == "r8_small_order":  # R8 itself of order 8
        return msg, E.Signature(B.SMALL_ORDER[1], sig.S), a
    raise AssertionError(kind)


@pytest.fixture
def batch_always(monkeypatch):
    """The batch path from 1 signature (verify_many goes one by one below BATCH_MIN), the R8
    tested for the subgroup together from 2 (one by one below SUBGROUP_BATCH_MIN)."""
    monkeypatch.setattr(E, "BATCH_MIN", 1)
    monkeypatch.setattr(B, "SUBGROUP_BATCH_MIN", 2)


KINDS = ["valid", "wrong_msg", "wrong_s", "wrong_key", "r8_plus_t2", "torsion1", "torsion2", "torsion4", "r8_small_order"]


def test_torsion_signatures_pass_only_the_cofactored_check(curve) -> None:
    # the adversarial inputs the batch must not accept: each satisfies the equation up to a
    # small-order point, which verify sees and the bare batch equation may not
    for k in (1, 2, 4):
        msg, sig, a = make_item(f"torsion{k}", k, curve)
        h = E.compute_message_hash(sig.R8, a, msg)
        diff = curve.add(curve.mul_sub_base(sig.S, curve.precompute(a), 8 * h % B.SUBORDER), B.neg(sig.R8))
        assert diff != B.IDENTITY and curve.mul(diff, 8) == B.IDENTITY
        assert not E.verify(msg, sig, a, curve)


def test_batch_equation_alone_is_blind_to_torsion(batch_always, curve) -> None:
    # with coefficients that are multiples of 8 (here forced) the equation accepts the torsion
    # signatures: verify_many refuses them because it tests every R8 for the subgroup first
    items = [make_item(kind, i, curve) for i, kind in enumerate(["valid", "torsion1", "torsion2", "torsion4"])]
    prepared = [E._prepare(m, s, a, curve) for m, s, a in items]
    z = [8 * zi for zi in E._batch_challenge(prepared)[0]]
    assert E._batch_holds(prepared, z, curve)
    assert E.verify_many(items, curve) == [True, False, False, False]


def test_verify_many_equals_verify_on_mixes(batch_always, curve) -> None:
    rng = random.Random(21)
    kinds = KINDS * 2 + ["valid"] * 6 if curve is B.fast else KINDS + ["valid"] * 2
    rng.shuffle(kinds)
    items = [make_item(kind, i, curve) for i, kind in enumerate(kinds)]
    expected = [E.verify(m, s, a, curve) for m, s, a in items]
    assert expected == [kind == "valid" for kind in kinds]
    assert E.verify_many(items, curve) == expected


def test_verify_many_bisects(batch_always, curve) -> None:
    # one bad item at either end, all bad, all good: bisection lands on exactly the bad ones
    n = 12 if curve is B.fast else 4
    good = [make_item("valid", i, curve) for i in range(n)]
    # the batch equation itself holds on valid signatures (no silent fall back to one by one)
    prepared = [E._prepare(m, s, a, curve) for m, s, a in good]
    assert E._batch_holds(prepared, E._batch_challenge(prepared)[0], curve)
    for bad_at in ([0], [n - 1], list(range(n)), []):
        items = [make_item("wrong_msg", i, curve) if i in bad_at else good[i] for i in range(n)]
        assert E.verify_many(items, curve) == [i not in bad_at for i in range(n)]


def test_verify_many_bisection_is_bounded(batch_always) -> None:
    # a flood of bad signatures: after log2(n) + 1 failed equations the rest goes one by one
    n = 32
    kinds = ["wrong_s" if i % 3 else "valid" for i in range(n)]
    items = [make_item(kind, i, B.fast) for i, kind in enumerate(kinds)]
    with mock.patch.object(E, "_batch_holds", wraps=E._batch_holds) as spy:
        answers = E.verify_many(items)
    assert answers == [kind == "valid" for kind in kinds]
    assert spy.call_count <= n.bit_length() + 1


def test_verify_many_sizes(batch_always, curve) -> None:
    assert E.verify_many([], curve) == []
    assert E.verify_many([make_item("valid", 0, curve)], curve) == [True]
    assert E.verify_many([make_item("wrong_s", 0, curve)], curve) == [False]
    assert E.verify_many([make_item("torsion4", 0, curve)], curve) == [False]


def test_verify_many_raises_as_verify(batch_always, curve, signed) -> None:
    sig, a = signed
    good = (MSG, sig, a)
    for bad, match in [
        ((MSG, E.Signature(sig.R8, sig.S + B.SUBORDER), a), "S is not below the subgroup order"),
        ((MSG, E.Signature((sig.R8[0], (sig.R8[1] + 1) % B.P), sig.S), a), "R8 is not on BabyJubJub"),
        ((B.P, sig, a), "not a field element"),
        ((MSG, sig, B.IDENTITY), "public key is the identity"),
        ((MSG, sig, B.reference.add(a, ORDER2)), "public key is not in the prime-order subgroup"),
    ]:
        with pytest.raises(E.InvalidSignature, match=match):
            E.verify(*bad, curve)
        with pytest.raises(E.InvalidSignature, match=match):
            E.verify_many([good, bad, good], curve)


def test_batch_coefficients_are_bound_to_the_batch() -> None:
    items = [E._prepare(*make_item("valid", i, B.fast), B.fast) for i in range(3)]
    z = E._batch_challenge(items)[0]
    assert z == E._batch_challenge(items)[0]  # deterministic
    assert all(0 <= zi < 1 << 128 for zi in z) and len(set(z)) == 3
    changed = [items[0]._replace(s=items[0].s + 1), *items[1:]]
    assert all(a != b for a, b in zip(z, E._batch_challenge(changed)[0]))
    assert E._batch_challenge(items[:2])[0] != z[:2]  # the count is in the transcript


@settings(max_examples=12, deadline=None)
@given(st.lists(st.sampled_from(KINDS), max_size=10))
def test_verify_many_property(kinds) -> None:
    items = [make_item(kind, i, B.fast) for i, kind in enumerate(kinds)]
    expected = [E.verify(m, s, a) for m, s, a in items]
    with mock.patch.object(E, "BATCH_MIN", 1):
        assert E.verify_many(items) == expected
    assert E.verify_many(items) == expected  # one by one below BATCH_MIN


def test_verify_many_default_dispatch() -> None:
    # from BATCH_MIN on the batch path runs (bisection included) without being forced
    items = [make_item("valid", i, B.fast) for i in range(E.BATCH_MIN)]
    items[3] = make_item("torsion2", 3, B.fast)
    items[-1] = make_item("wrong_key", len(items) - 1, B.fast)
    with mock.patch.object(E, "_batch_holds", wraps=E._batch_holds) as spy:
        answers = E.verify_many(items)
    assert spy.called
    assert answers == [i not in (3, len(items) - 1) for i in range(len(items))]


def test_verify_many_large_batch() -> None:
    # from SUBGROUP_BATCH_MIN signatures the R8 are tested together: an R8 with an order-2 part
    # (and a signature made over R8 + T of order 4) make it fail, and they are found one by one
    n = B.SUBGROUP_BATCH_MIN + 8
    bad = {7: "r8_plus_t2", n - 1: "torsion2", 100: "wrong_s"}
    items = [make_item(bad.get(i, "valid"), i, B.fast) for i in range(n)]
    batch_answers = []

    def spy(points, seed):
        batch_answers.append(original(points, seed))
        return batch_answers[-1]

    original = B.are_in_subgroup
    with mock.patch.object(B, "are_in_subgroup", spy):
        assert E.verify_many(items) == [i not in bad for i in range(n)]
        assert E.verify_many(items[: n - 1]) == [i not in bad for i in range(n - 1)]
        good = [it for i, it in enumerate(items) if i not in bad]
        assert E.verify_many(good) == [True] * len(good)
    assert batch_answers == [False, False, True]


# ---- the key cache: checked keys remembered, tables for frequent keys only ----


@functools.lru_cache(maxsize=None)
def distinct_signers(n: int) -> list[tuple[bytes, B.Point]]:
    return [(k, E.prv2pub(k)) for k in (random.Random(f"key {i}").randbytes(32) for i in range(n))]


def signed_by_distinct_keys(n: int, bad: dict[int, str] | None = None) -> list[tuple[int, E.Signature, B.Point]]:
    """One valid signature per key of n distinct keys (fast curve: the same as the reference's),
    item i spoiled as bad[i] says."""
    items = []
    for i, (prv, a) in enumerate(distinct_signers(n)):
        msg = 7000 + i
        sig = E.sign(prv, msg)
        kind = (bad or {}).get(i)
        if kind == "wrong_msg":
            msg += 1
        elif kind == "r8_plus_t2":
            sig = E.Signature(B.reference.add(sig.R8, B.SMALL_ORDER[4]), sig.S)
        elif kind == "key_off_subgroup":
            a = B.reference.add(a, ORDER2)
        items.append((msg, sig, a))
    return items


def test_verify_many_distinct_keys(batch_always, curve) -> None:
    # every key first seen in the batch: with tables (one built per key) or as plain MSM points;
    # the answers are verify's, the bad ones found by bisection
    n = 40 if curve is B.fast else 5
    bad = {1: "wrong_msg", n - 2: "r8_plus_t2"}
    items = signed_by_distinct_keys(n, bad)
    expected = [i not in bad for i in range(n)]
    assert E.verify_many(items, curve) == expected
    cache = E._KEY_CACHES[curve.name]
    assert set(cache.seen) == {a for _, _, a in items} and not cache.tables  # a batch builds none
    assert E.verify_many(items, curve) == expected  # keys known now
    assert [E.verify(m, s, a, curve) for m, s, a in items] == expected
    # single verifications build the tables of frequent keys (all, on this path): the batch uses them
    assert len(cache.tables) == (0 if E._KeyCache.TABLE_AFTER > 1 else n)
    assert E.verify_many(items, curve) == expected


def test_bad_key_among_many(batch_always, curve) -> None:
    # a key outside the subgroup among many first-seen keys: verify_many raises verify's error,
    # the bad key is not remembered, and the good ones still verify
    n = 30 if curve is B.fast else 4
    items = signed_by_distinct_keys(n, {n // 2: "key_off_subgroup"})
    with pytest.raises(E.InvalidSignature, match="public key is not in the prime-order subgroup"):
        E.verify(*items[n // 2], curve)
    with pytest.raises(E.InvalidSignature, match="public key is not in the prime-order subgroup"):
        E.verify_many(items, curve)
    cache = E._KEY_CACHES[curve.name]
    assert items[n // 2][2] not in cache.seen and items[n // 2][2] not in cache.tables
    good = items[: n // 2] + items[n // 2 + 1 :]
    assert E.verify_many(good, curve) == [True] * len(good)
    with pytest.raises(E.InvalidSignature, match="public key is not in the prime-order subgroup"):
        E.check_public_key(items[n // 2][2], curve)


def test_l2_batch_with_many_keys_and_a_bad_one() -> None:
    # the node's path: a bad key is answered alone, every other key id comes back
    from verifier import l2auth

    E.clear_key_cache()
    n = 30
    items = signed_by_distinct_keys(n, {3: "key_off_subgroup", 9: "wrong_msg"})
    wire = [(m, l2auth.encode_l2_signature(a, s)) for m, s, a in items]
    answers = l2auth.verify_l2_signatures(wire)
    for i, answer in enumerate(answers):
        if i == 3:
            assert answer == "public key is not in the prime-order subgroup"
        elif i == 9:
            assert answer == l2auth.MISMATCH
        else:
            assert answer == l2auth.compute_key_id(items[i][2])
    assert not E._KEY_CACHES["fast"].tables  # 30 keys seen once each: no table built


def test_key_becomes_frequent() -> None:
    # a key gets its table on its TABLE_AFTER-th sighting; verification answers alike before and after
    E.clear_key_cache()
    (prv, a), = distinct_signers(1)
    cache = E._get_key_cache(B.fast)
    for i in range(E._KeyCache.TABLE_AFTER + 2):
        sig = E.sign(prv, i)
        assert E.verify(i, sig, a) and not E.verify(i + 1, sig, a)
        has_table = a in cache.tables
        # two verifications per round: the table comes with the TABLE_AFTER-th
        assert has_table == (2 * i + 2 >= E._KeyCache.TABLE_AFTER)
        if has_table:
            assert isinstance(cache.tables[a], B.FixedBaseTable)
    # sightings in a batch count, but build no table (it would not speed the batch up): the next
    # single verification does
    E.clear_key_cache()
    cache = E._get_key_cache(B.fast)
    items = [(i, E.sign(prv, i), a) for i in range(E.BATCH_MIN)]
    assert E.verify_many(items) == [True] * len(items) and a not in cache.tables
    assert E.verify(*items[0]) and a in cache.tables
    E.clear_key_cache()


def test_key_cache_ages_and_evicts(monkeypatch) -> None:
    # weights halve every AGE_EVERY sightings: a key seen steadily but rarely never gets a
    # table; tables are evicted least recently used first and must be earned again; checked keys
    # are bounded, oldest out first
    monkeypatch.setattr(E._KeyCache, "TABLE_AFTER", 4)
    monkeypatch.setattr(E._KeyCache, "AGE_EVERY", 16)
    keys = [B.fast.mul_base(k) for k in range(2, 40)]
    cache = E._KeyCache(B.fast, max_tables=2, max_keys=20)

    def sightings_to_table(key: B.Point) -> int:
        for n in range(1, 20):
            if cache.get(key) != key:
                return n
        raise AssertionError("no table")

    rare, crowd = keys[0], keys[1:17]
    for _ in range(8):  # the rare key once in every 17 sightings: its weight stays below 4
        assert cache.get(rare) == rare
        for k in crowd:
            assert cache.get(k) == k
    assert not cache.tables
    hot = keys[17]
    # 4 sightings in a row, or up to 6 when the weights halve in between (3 -> 1)
    assert 4 <= sightings_to_table(hot) <= 6
    assert isinstance(cache.get(hot), B.FixedBaseTable)
    for k in keys[18:20]:  # two more keys earn tables: `hot`, used least recently, goes
        sightings_to_table(k)
    assert set(cache.tables) == set(keys[18:20])
    assert 4 <= sightings_to_table(hot) <= 6  # earned again
    for k in keys[20:22]:
        cache.get(k)
    assert len(cache.seen) == 20 and rare not in cache.seen  # the oldest checked key dropped
    assert cache.get(rare) == rare  # checked again on its next sighting
    with pytest.raises(E.InvalidSignature, match="public key is the identity"):
        cache.get(B.IDENTITY)


# ---- wallet-derived keys ----


def test_derived_key_is_deterministic_and_bound() -> None:
    eth = Account.from_key(b"\x42" * 32)
    k0 = E.derive_private_key_with_eth_key(eth.key, DOMAIN, 0)
    assert E.derive_private_key_with_eth_key(eth.key, DOMAIN, 0) == k0
    assert E.derive_private_key_with_eth_key(eth.key, DOMAIN, 1) != k0  # rotation
    assert E.derive_private_key_with_eth_key(eth.key, SigningDomain(1, DOMAIN.verifying_contract), 0) != k0
    assert E.derive_private_key_with_eth_key(eth.key, SigningDomain(DOMAIN.l1_chain_id, "0x" + "11" * 20), 0) != k0
    assert E.derive_private_key_with_eth_key(b"\x43" * 32, DOMAIN, 0) != k0
    a = E.prv2pub(k0)
    assert E.verify(MSG, E.sign(k0, MSG), a)


def test_derivation_message_is_signed_by_the_wallet() -> None:
    # the derivation message is ordinary EIP-712 typed data: the wallet's address recovers from it
    eth = Account.from_key(b"\x42" * 32)
    message = encode_typed_data(full_message=E.get_key_derivation_typed_data(DOMAIN, 7))
    signed = Account.sign_message(message, eth.key)
    assert Account.recover_message(message, signature=signed.signature) == eth.address
    assert E.derive_private_key(bytes(signed.signature)) == E.derive_private_key_with_eth_key(eth.key, DOMAIN, 7)
    # only r counts: a wallet answering with v = 0/1 instead of 27/28 derives the same key
    sig = bytearray(signed.signature)
    sig[64] -= 27
    assert E.derive_private_key(bytes(sig)) == E.derive_private_key(bytes(signed.signature))


def test_invalid_derivation_inputs() -> None:
    with pytest.raises(ValueError, match="65 bytes"):
        E.derive_private_key(b"\x01" * 64)
    with pytest.raises(ValueError, match="r = 0"):
        E.derive_private_key(b"\x00" * 32 + b"\x01" * 33)
    with pytest.raises(ValueError, match="key_index"):
        E.get_key_derivation_typed_data(DOMAIN, 1 << 32)
