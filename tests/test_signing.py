"""EIP-712 digests (fast path == eth-account reference), signing, signer recovery and L2 signature
checks, malformed signatures."""

from __future__ import annotations

import pytest
from eth_account import Account as EthAccount
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from eth_keys.constants import SECPK1_N, SECPK1_P

from rollup.signing import SigningError, derive_l2_key, dev_account_key, dev_oracle_key, get_address, sign, sign_digest, unsigned
from verifier.babyjubjub import SUBORDER
from verifier.l2auth import check_signers, compute_l2_messages, encode_l2_signature, parse_l2_signature, verify_l2_signature, verify_l2_signatures
from verifier.encoding import (
    InvalidSignature,
    compute_checksum_address,
    compute_encode_type,
    compute_signing_digest,
    compute_signing_digest_of_fields,
    compute_signing_digest_reference,
    get_eip712_types,
    get_signature_fields,
    get_signed_fields,
    get_typed_data,
    is_l2_signed,
    recover_address,
    recover_signers,
)
from verifier.wire import (
    Fill,
    RegisterKey,
    TRANSACTION_TYPES,
    Deposit,
    InstrumentFunding,
    InstrumentPrice,
    Liquidate,
    OptionTrade,
    OracleUpdate,
    PerpTrade,
    RiskArray,
    SettleExpired,
    SigningDomain,
    Transfer,
    Withdraw,
)

DOMAIN = SigningDomain(l1_chain_id=424242, verifying_contract=get_address(dev_account_key(1, 99)))
KEYS = [dev_account_key(1, i) for i in range(3)]
ORACLE_KEY = dev_oracle_key(1)

SAMPLES = {
    "deposit": (Deposit, dict(deposit_id=3, account=7, address=get_address(KEYS[0]), amount=10**9), []),  # L1-authorised
    "withdraw": (Withdraw, dict(account=7, amount=5, nonce=2), [KEYS[0]]),
    "transfer": (Transfer, dict(sender=7, recipient=8, amount=2**63, nonce=0), [KEYS[0]]),
    "perp_trade": (
        PerpTrade,
        dict(maker=1, taker=2, market=0, size=-(2**31 - 1), price=60_000_000, fee=12, maker_nonce=4, taker_nonce=9),
        [KEYS[1], KEYS[2]],
    ),
    "option_trade": (
        OptionTrade,
        dict(buyer=1, seller=2, series=5, quantity=3, premium=0, fee=0, buyer_nonce=1, seller_nonce=2),
        [KEYS[1], KEYS[2]],
    ),
    "liquidate": (Liquidate, dict(liquidator=1, account=2, instrument=0, size=-4, nonce=6), [KEYS[1]]),
    "settle_expired": (SettleExpired, dict(sender=1, account=2, series=5, nonce=0), [KEYS[1]]),
    "register_key": (RegisterKey, dict(account=1, address=get_address(KEYS[1]), key_id=(1 << 247) + 5, nonce=3), [KEYS[1]]),
    "oracle_update": (
        OracleUpdate,
        dict(
            timestamp=1_767_229_200,
            previous_timestamp=1_767_225_600,
            marks=[InstrumentPrice(instrument=0, price=60_100_000), InstrumentPrice(instrument=5, price=0)],
            funding=[InstrumentFunding(market=0, index=-12_345)],
            risk_arrays=[RiskArray(instrument=0, values=[-(2**63 - 1), 0, 5]), RiskArray(instrument=5, values=[1])],
            settlements=[],
        ),
        [ORACLE_KEY],
    ),
    "fill": (
        Fill,
        dict(
            taker=2, maker=1, instrument=0, size=-7, price=60_000_000, fee=70, taker_nonce=2**64 - 1, maker_nonce=3,
            taker_order_size=10, taker_limit=59_990_000, taker_time_in_force=1, taker_expiry=0, taker_client_id=9, taker_max_fee=10,
            maker_order_size=7, maker_limit=60_000_000, maker_time_in_force=2, maker_expiry=1_767_229_200, maker_client_id=2**64 - 1,
            maker_max_fee=0,
        ),
        [KEYS[2], KEYS[1]],
    ),
}


L2_TYPES = sorted(n for n, (model, _, _) in SAMPLES.items() if is_l2_signed(model))
ETH_TYPES = sorted(n for n in SAMPLES if n not in L2_TYPES)


def l2(key: bytes, domain: SigningDomain = DOMAIN):
    """The L2 key the wallet `key` derives (index 0)."""
    return derive_l2_key(key, domain, 0)


def make_signed(type_name: str, domain: SigningDomain = DOMAIN):
    """A sample signed as a wallet does: Ethereum keys, or the L2 keys they derive."""
    model, fields, keys = SAMPLES[type_name]
    keys = [l2(k, domain) for k in keys] if is_l2_signed(model) else keys
    return sign(unsigned(model, **fields), keys, domain)


def expected_signers(type_name: str) -> tuple:
    model, _, keys = SAMPLES[type_name]
    return tuple(l2(k).key_id if is_l2_signed(model) else get_address(k) for k in keys)


def test_l2_signed_types() -> None:
    """Trades, transfers, liquidations and settlements are L2-signed; what L1 checks is Ethereum-signed."""
    assert L2_TYPES == ["fill", "liquidate", "option_trade", "perp_trade", "settle_expired", "transfer"]


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_check_signers_names_each_signer(type_name: str) -> None:
    assert check_signers(make_signed(type_name), DOMAIN) == expected_signers(type_name)


def test_samples_cover_every_transaction_type() -> None:
    assert set(SAMPLES) == set(TRANSACTION_TYPES)


def test_type_strings() -> None:
    """Hand-written vectors: what a wallet shows and a contract would hard-code."""
    assert compute_encode_type("PerpTrade", get_eip712_types(PerpTrade)) == (
        "PerpTrade(uint256 maker,uint256 taker,uint256 market,int256 size,uint256 price,uint256 fee,"
        "uint256 maker_nonce,uint256 taker_nonce)"
    )
    assert compute_encode_type("OracleUpdate", get_eip712_types(OracleUpdate)) == (
        "OracleUpdate(uint256 timestamp,uint256 previous_timestamp,InstrumentPrice[] marks,InstrumentFunding[] funding,"
        "RiskArray[] risk_arrays,InstrumentPrice[] settlements)"
        "InstrumentFunding(uint256 market,int256 index)InstrumentPrice(uint256 instrument,uint256 price)"
        "RiskArray(uint256 instrument,int256[] values)"
    )
    assert compute_encode_type("RegisterKey", get_eip712_types(RegisterKey)) == (
        "RegisterKey(uint256 account,address address,uint256 key_id,uint256 nonce)"
    )
    assert compute_encode_type("Deposit", get_eip712_types(Deposit)) == (
        "Deposit(uint256 deposit_id,uint256 account,address address,uint256 amount)"
    )
    assert get_signature_fields(PerpTrade) == ("maker_signature", "taker_signature")
    assert "type" not in get_signed_fields(PerpTrade)


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_fast_digest_equals_eth_account(type_name: str) -> None:
    tx = make_signed(type_name)
    model, fields, _ = SAMPLES[type_name]
    reference = compute_signing_digest_reference(tx, DOMAIN)
    assert compute_signing_digest(tx, DOMAIN) == reference
    assert compute_signing_digest_of_fields(model, fields, DOMAIN) == reference


@pytest.mark.parametrize("digest_fn", [compute_signing_digest, compute_signing_digest_reference], ids=["fast", "reference"])
@pytest.mark.parametrize("type_name", ETH_TYPES)
def test_signature_equals_eth_account_and_recovers(type_name: str, digest_fn) -> None:
    tx = make_signed(type_name)
    _, _, keys = SAMPLES[type_name]
    message = get_typed_data(tx, DOMAIN)
    digest = digest_fn(tx, DOMAIN)
    for name, key in zip(get_signature_fields(type(tx)), keys):
        wallet = EthAccount.sign_typed_data(key, full_message=message)
        assert wallet.message_hash == digest
        assert getattr(tx, name) == "0x" + wallet.signature.hex().removeprefix("0x")
        assert recover_address(digest, getattr(tx, name)) == get_address(key)
    assert recover_signers(tx, DOMAIN, digest) == tuple(get_address(k) for k in keys)


@pytest.mark.parametrize(
    "type_name, field, value",
    [
        ("withdraw", "amount", 6),
        ("deposit", "address", "0x" + "22" * 20),
        ("perp_trade", "size", 2**31 - 1),
        ("option_trade", "premium", 1),
        ("liquidate", "size", 4),
        ("oracle_update", "funding", [InstrumentFunding(market=0, index=12_345)]),
    ],
)
def test_tampered_field_changes_signer(type_name: str, field: str, value) -> None:
    tx = make_signed(type_name)
    tampered = type(tx).model_validate({**tx.model_dump(), field: value})
    assert compute_signing_digest(tampered, DOMAIN) == compute_signing_digest_reference(tampered, DOMAIN)
    assert compute_signing_digest(tampered, DOMAIN) != compute_signing_digest(tx, DOMAIN)
    if is_l2_signed(type(tx)):
        # an L2 signature names its key: over another message it does not verify at all
        with pytest.raises(InvalidSignature, match="does not match"):
            check_signers(tampered, DOMAIN)
        return
    recovered = recover_signers(tampered, DOMAIN)
    assert all(a != b for a, b in zip(recovered, recover_signers(tx, DOMAIN)))


def test_replay_on_another_deployment_fails() -> None:
    """The domain binds the L1 chain and the Rollup contract: a signature for one deployment
    recovers to another address on any other (security review, finding 5)."""
    tx = make_signed("withdraw", domain=DOMAIN)
    transfer = make_signed("transfer", domain=DOMAIN)
    assert recover_signers(tx, DOMAIN) == (get_address(KEYS[0]),)
    other_l1 = SigningDomain(DOMAIN.l1_chain_id + 1, DOMAIN.verifying_contract)
    other_contract = SigningDomain(DOMAIN.l1_chain_id, get_address(dev_account_key(1, 98)))
    for domain in (other_l1, other_contract):
        assert recover_signers(tx, domain) != (get_address(KEYS[0]),)
        assert compute_signing_digest_reference(tx, domain) == compute_signing_digest(tx, domain)
        # an L2 signature signs the domain tag with the record: void elsewhere
        with pytest.raises(InvalidSignature, match="does not match"):
            check_signers(transfer, domain)


def test_both_sides_sign_the_same_message() -> None:
    tx = make_signed("perp_trade")
    maker_only = sign(tx, [l2(KEYS[1]), l2(KEYS[1])], DOMAIN)
    assert maker_only.maker_signature == tx.maker_signature  # deterministic, one message for both
    assert check_signers(maker_only, DOMAIN) == (l2(KEYS[1]).key_id, l2(KEYS[1]).key_id)


def test_signing_refuses_the_wrong_kind_of_key() -> None:
    model, fields, _ = SAMPLES["perp_trade"]
    with pytest.raises(SigningError, match="signed with L2 keys"):
        sign(unsigned(model, **fields), [KEYS[1], KEYS[2]], DOMAIN)
    model, fields, _ = SAMPLES["withdraw"]
    with pytest.raises(SigningError, match="signed with Ethereum keys"):
        sign(unsigned(model, **fields), [l2(KEYS[0])], DOMAIN)


# --- malformed signatures ------------------------------------------------------------------------


def split(signature: str) -> tuple[int, int, int]:
    raw = bytes.fromhex(signature[2:])
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]


def join(r: int, s: int, v: int) -> str:
    return "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + bytes([v]).hex()


def find_r_without_point() -> int:
    """An x-coordinate with no curve point (y^2 = x^3 + 7 has no root): recovery must fail."""
    for x in range(1, 100):
        if pow(x**3 + 7, (SECPK1_P - 1) // 2, SECPK1_P) != 1:
            return x
    raise AssertionError("no such x below 100")


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda r, s, v: join(r, s, 29), "v = 29"),
        (lambda r, s, v: join(r, s, v - 27), "expected 27 or 28"),
        (lambda r, s, v: join(r, SECPK1_N - s, 55 - v), "EIP-2"),  # the malleable twin
        (lambda r, s, v: join(r, 0, v), "s out of range"),
        (lambda r, s, v: join(0, s, v), "r out of range"),
        (lambda r, s, v: join(SECPK1_N, s, v), "r out of range"),
        (lambda r, s, v: join(r, s, v)[:-2], "64 bytes"),
        (lambda r, s, v: join(find_r_without_point(), s, v), "no public key"),
    ],
    ids=["v29", "v0or1", "high-s", "s0", "r0", "r-n", "short", "r-no-point"],
)
def test_invalid_signature(mutate, reason: str) -> None:
    tx = make_signed("withdraw")
    digest = compute_signing_digest(tx, DOMAIN)
    bad = mutate(*split(tx.signature))
    with pytest.raises(InvalidSignature, match=reason):
        recover_address(digest, bad)


def test_invalid_signature_in_transaction() -> None:
    tx = make_signed("register_key")
    r, s, v = split(tx.signature)
    bad = tx.model_copy(update={"signature": join(r, SECPK1_N - s, 55 - v)})
    with pytest.raises(InvalidSignature, match="EIP-2"):
        check_signers(bad, DOMAIN)


def _l2_words(signature: str) -> list[int]:
    raw = bytes.fromhex(signature[2:])
    return [int.from_bytes(raw[i : i + 32], "big") for i in range(0, 160, 32)]


def _l2_join(words: list[int]) -> str:
    return "0x" + b"".join(w.to_bytes(32, "big") for w in words).hex()


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda w: [w[0], w[1] + 1, *w[2:]], "public key is not a BabyJubJub point"),
        (lambda w: [*w[:2], w[2], w[3] + 1, w[4]], "R8 is not a BabyJubJub point"),
        (lambda w: [*w[:4], w[4] + SUBORDER], "S is not below the subgroup order"),  # the malleable twin
        (lambda w: [*w[:4], (w[4] + 1) % SUBORDER], "does not match"),
        (lambda w: [0, 1, *w[2:]], "identity|subgroup|does not match"),  # the neutral point as a key
        (lambda w: [2**256 - 1, *w[1:]], "public key is not a BabyJubJub point"),
    ],
    ids=["A-off-curve", "R8-off-curve", "S-plus-l", "S-wrong", "A-identity", "A-out-of-field"],
)
def test_invalid_l2_signature(mutate, reason: str) -> None:
    tx = make_signed("perp_trade")
    bad = tx.model_copy(update={"taker_signature": _l2_join(mutate(_l2_words(tx.taker_signature)))})
    with pytest.raises(InvalidSignature, match=reason):
        check_signers(bad, DOMAIN)


def test_l2_signature_of_another_key_names_that_key() -> None:
    """A valid signature by a key the account never registered verifies: it yields that key's id,
    which the rules then refuse (`wrong L2 key`)."""
    tx = make_signed("transfer")
    other = sign(tx, [l2(KEYS[2])], DOMAIN)
    assert check_signers(other, DOMAIN) == (l2(KEYS[2]).key_id,) != check_signers(tx, DOMAIN)
    a, sig = parse_l2_signature(other.signature)
    assert encode_l2_signature(a, sig) == other.signature


# --- keys ------------------------------------------------------------------------------------------


def test_dev_keys() -> None:
    assert dev_account_key(1, 0) == KEYS[0]  # deterministic
    assert len({dev_account_key(s, i) for s in (1, 2) for i in range(50)} | {dev_oracle_key(1)}) == 101
    assert get_address(KEYS[0]) == EthAccount.from_key(KEYS[0]).address


def test_invalid_key_count() -> None:
    model, fields, _ = SAMPLES["perp_trade"]
    with pytest.raises(SigningError, match="needs 2 key"):
        sign(unsigned(model, **fields), [KEYS[0]], DOMAIN)
    with pytest.raises(SigningError, match="32 bytes"):
        sign_digest(KEYS[0], b"short")


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=20, max_size=20))
def test_checksum_address_equals_eth_utils(raw: bytes) -> None:
    assert compute_checksum_address(raw) == to_checksum_address(raw)


# --- many L2 signatures at once (the node's signature pass) -----------------------------------------


def _tampered_l2_items() -> list[tuple[int, str]]:
    """(message, signature) of every L2 sample, with a wrong message, a wrong S, a malformed key
    (the neutral point), an off-curve R8 and S + l mixed in."""
    items = []
    for name in L2_TYPES:
        tx = make_signed(name)
        messages = compute_l2_messages(tx, DOMAIN)
        items += [(message, getattr(tx, f)) for message, f in zip(messages, get_signature_fields(type(tx)))]
    words = _l2_words(items[0][1])
    items += [
        (items[0][0] + 1, items[0][1]),
        (items[0][0], _l2_join([*words[:4], (words[4] + 1) % SUBORDER])),
        (items[0][0], _l2_join([0, 1, *words[2:]])),
        (items[0][0], _l2_join([*words[:3], words[3] + 1, words[4]])),
        (items[0][0], _l2_join([*words[:4], words[4] + SUBORDER])),
    ]
    return items


def _one_by_one(items) -> list:
    out = []
    for message, signature in items:
        try:
            out.append(verify_l2_signature(message, signature))
        except InvalidSignature as exc:
            out.append(str(exc))
    return out


@pytest.mark.parametrize("subset", ["all", "valid_only", "one"])
def test_batch_l2_check_equals_one_by_one(subset: str) -> None:
    items = _tampered_l2_items()
    items = {"all": items, "valid_only": items[: len(L2_TYPES) + 2], "one": items[:1]}[subset]
    assert verify_l2_signatures(items) == _one_by_one(items)


def test_parallel_signature_pass_equals_the_sequential_one() -> None:
    """The node's chunked pass (L2 signatures batch-verified per chunk) gives exactly the checks
    of `check_signers` one transaction at a time, errors included."""
    from rollup.executors import SerialExecutor
    from rollup.signatures import check_signatures

    txs = [make_signed(name) for name in sorted(SAMPLES)]
    bad = make_signed("perp_trade")
    words = _l2_words(bad.taker_signature)
    txs += [
        bad.model_copy(update={"taker_signature": _l2_join([*words[:4], (words[4] + 1) % SUBORDER])}),
        bad.model_copy(update={"maker_signature": _l2_join([0, 1, *words[2:]])}),
        bad.model_copy(update={"size": 5}),
    ]
    one_by_one = []
    for tx in txs:
        try:
            one_by_one.append((check_signers(tx, DOMAIN), None))
        except InvalidSignature as exc:
            one_by_one.append((None, f"invalid signature: {exc}"))
    sequential = check_signatures(txs, DOMAIN)
    assert [(c.signers, c.error) for c in sequential] == one_by_one
    assert check_signatures(txs, DOMAIN, SerialExecutor()) == sequential
    assert [c.error is None for c in sequential[-3:]] == [False, False, False]
