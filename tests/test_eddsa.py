"""EdDSA-Poseidon: signing, verification and its rejections, wallet-derived keys; one suite over both
BabyJubJub implementations. Agreement with circomlibjs is in test_eddsa_interop.py."""

from __future__ import annotations

import random

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from verifier import babyjubjub as B
from verifier import eddsa as E
from verifier.wire import SigningDomain

IMPLS = list(B.IMPLEMENTATIONS.values())
ORDER2 = (0, B.P - 1)
DOMAIN = SigningDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
PRV = bytes(range(32))
MSG = 0x1234567890ABCDEF


@pytest.fixture(params=IMPLS, ids=[c.name for c in IMPLS])
def curve(request):
    return request.param


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
