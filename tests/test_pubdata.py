"""Compact public data of circuit v3 (verifier/pubdata.py): records and their slot words."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from verifier import pubdata
from verifier.pubdata import (
    compute_records_hash,
    MAX_RECORD_BYTES,
    RECORD_BY_TYPE,
    RECORD_WORDS,
    RECORDS,
    MalformedRecord,
    compute_record_fields,
    compute_record_words,
    decode_record,
    decode_record_words,
    decode_records,
    encode_record,
)
from verifier.wire import ACCOUNT_ID_BITS, AMOUNT_BITS, NONCE_BITS, PRICE_BITS, SIZE_BITS, TRANSACTION_TYPES

SIG = "0x" + "11" * 65
L2SIG = "0x" + "11" * 160  # the L2-signed types' signature fields
accounts = st.integers(0, 2**ACCOUNT_ID_BITS - 1)
amounts = st.integers(1, 2**AMOUNT_BITS - 1)
fees = st.integers(0, 2**AMOUNT_BITS - 1)
nonces = st.integers(0, 2**NONCE_BITS - 1)
instruments = st.integers(0, 2**16 - 1)
sizes = st.integers(-(2**SIZE_BITS) + 1, 2**SIZE_BITS - 1).filter(lambda s: s != 0)
quantities = st.integers(1, 2**SIZE_BITS - 1)
prices = st.integers(1, 2**PRICE_BITS - 1)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())

transactions = st.one_of(
    st.builds(lambda a, m, ad, i: TRANSACTION_TYPES["deposit"](deposit_id=i, account=a, amount=m, address=ad), accounts, amounts, addresses, nonces),
    st.builds(lambda a, m, n: TRANSACTION_TYPES["withdraw"](account=a, amount=m, nonce=n, signature=SIG), accounts, amounts, nonces),
    st.builds(lambda a, b, m, n: TRANSACTION_TYPES["transfer"](sender=a, recipient=b, amount=m, nonce=n, signature=L2SIG), accounts, accounts, amounts, nonces),
    st.builds(
        lambda a, b, i, s, p, f, n1, n2: TRANSACTION_TYPES["perp_trade"](
            taker=a, maker=b, market=i, size=s, price=p, fee=f, taker_nonce=n1, maker_nonce=n2, taker_signature=L2SIG, maker_signature=L2SIG
        ),
        accounts, accounts, instruments, sizes, prices, fees, nonces, nonces,
    ),
    st.builds(
        lambda a, b, i, q, p, f, n1, n2: TRANSACTION_TYPES["option_trade"](
            buyer=a, seller=b, series=i, quantity=q, premium=p, fee=f, buyer_nonce=n1, seller_nonce=n2, buyer_signature=L2SIG, seller_signature=L2SIG
        ),
        accounts, accounts, instruments, quantities, st.integers(0, 2**PRICE_BITS - 1), fees, nonces, nonces,
    ),
    st.builds(lambda a, b, i, n: TRANSACTION_TYPES["settle_expired"](sender=a, account=b, series=i, nonce=n, signature=L2SIG), accounts, accounts, instruments, nonces),
    st.builds(lambda a, b, i, s, n: TRANSACTION_TYPES["liquidate"](liquidator=a, account=b, instrument=i, size=s, nonce=n, signature=L2SIG), accounts, accounts, instruments, sizes, nonces),
)


def _expected_fields(tx) -> dict:
    fields = {"type": tx.type}
    for f in RECORD_BY_TYPE[tx.type].fields:
        value = getattr(tx, f.name)
        fields[f.name] = value.lower() if f.name == "address" else value
    return fields


@settings(max_examples=300, deadline=None)
@given(transactions)
def test_bytes_round_trip(tx):
    data = encode_record(tx)
    decoded, used = decode_record(data + b"\x07trailing")
    assert used == len(data) == RECORD_BY_TYPE[tx.type].size
    assert decoded == _expected_fields(tx)
    assert compute_record_fields(tx) == {k: v for k, v in _expected_fields(tx).items() if k not in ("type", "address")} | (
        {"address": int(tx.address, 16)} if tx.type == "deposit" else {}
    )


@settings(max_examples=300, deadline=None)
@given(transactions)
def test_words_round_trip(tx):
    words = compute_record_words(tx)
    assert len(words) == RECORD_WORDS
    assert all(0 <= w < 2**248 for w in words)
    assert decode_record_words(words) == _expected_fields(tx)


@given(st.lists(transactions, max_size=8))
@settings(max_examples=50, deadline=None)
def test_concatenated_records(txs):
    data = b"".join(encode_record(tx) for tx in txs)
    assert decode_records(data) == [_expected_fields(tx) for tx in txs]


def test_every_record_is_compact():
    # the bound: at most 64 bytes per trade (Loopring 28, zkSync Lite 46 for a swap)
    assert MAX_RECORD_BYTES <= 64
    for spec in RECORDS:
        assert spec.size <= MAX_RECORD_BYTES
    assert RECORD_BY_TYPE["perp_trade"].size == 38
    assert RECORD_BY_TYPE["option_trade"].size == 38


def test_every_slot_type_but_the_oracle_has_a_record():
    assert set(RECORD_BY_TYPE) == set(TRANSACTION_TYPES) - {"oracle_update"}


def test_noop_slot_is_zero():
    assert compute_record_words(None) == (0,) * RECORD_WORDS
    assert decode_record_words([0] * RECORD_WORDS) is None


def test_invalid_noop_with_stray_bits():
    with pytest.raises(MalformedRecord, match="no-op slot has non-zero words"):
        decode_record_words([0, 1])


def test_invalid_stray_bits_between_fields():
    tx = TRANSACTION_TYPES["withdraw"](account=5, amount=7, nonce=1, signature=SIG)
    w0, w1 = compute_record_words(tx)
    # below the last field of word 0 nothing may be set, nor anything in an unused word
    with pytest.raises(MalformedRecord, match="bits outside its fields"):
        decode_record_words([w0 | 1, w1])
    with pytest.raises(MalformedRecord, match="bits outside its fields"):
        decode_record_words([w0, w1 | 1 << 100])


def test_invalid_unknown_code():
    with pytest.raises(MalformedRecord, match="unknown record type code"):
        decode_record_words([0x77 << pubdata.TYPE_SHIFT, 0])
    with pytest.raises(MalformedRecord, match="unknown record type code 77"):
        decode_record(b"\x77" + bytes(40))


def test_invalid_truncated_record():
    tx = TRANSACTION_TYPES["transfer"](sender=1, recipient=2, amount=3, nonce=0, signature=L2SIG)
    with pytest.raises(MalformedRecord, match="needs 21 bytes, 20 left"):
        decode_record(encode_record(tx)[:-1])


def test_invalid_account_beyond_the_wire_bound():
    # 4 bytes could hold 2^32 - 1, the wire allows 2^29 ids: one record, one meaning
    spec = RECORD_BY_TYPE["withdraw"]
    data = bytes([spec.code]) + (2**ACCOUNT_ID_BITS).to_bytes(4, "big") + (1).to_bytes(8, "big") + bytes(4)
    with pytest.raises(MalformedRecord, match="account packed value"):
        decode_record(data)


def test_invalid_word_not_a_248_bit_integer():
    with pytest.raises(MalformedRecord, match="2 words of 31 bytes"):
        decode_record_words([2**248, 0])
    with pytest.raises(MalformedRecord, match="2 words of 31 bytes"):
        decode_record_words([0])


def test_records_hash_is_sha256_of_the_slots_words():
    # 32 bytes big-endian a word, two a slot, slots in order: the bytes the contract hashes
    tx = TRANSACTION_TYPES["transfer"](sender=1, recipient=2, amount=3, nonce=0, signature=L2SIG)
    w0, w1 = compute_record_words(tx)
    message = w0.to_bytes(32, "big") + w1.to_bytes(32, "big") + bytes(64)
    expected = int.from_bytes(hashlib.sha256(message).digest(), "big") % 2**253
    assert compute_records_hash([(w0, w1), compute_record_words(None)]) == expected
    # another order is another commitment; so is the same record in a longer segment
    assert compute_records_hash([compute_record_words(None), (w0, w1)]) != expected
    assert compute_records_hash([(w0, w1), (0, 0), (0, 0)]) != expected


def test_invalid_records_hash_word():
    with pytest.raises(MalformedRecord, match="2 words of 31 bytes"):
        compute_records_hash([(2**248, 0)])
    with pytest.raises(MalformedRecord, match="2 words of 31 bytes"):
        compute_records_hash([(1, 2, 3)])


def test_oracle_update_has_no_slot_record():
    with pytest.raises(MalformedRecord, match="oracle_update transactions have no slot record"):
        pubdata.get_record_spec("oracle_update")


def test_workload_records_round_trip(small_workload):
    seen = set()
    for tx in small_workload.transactions:
        if tx.type == "oracle_update":
            continue
        seen.add(tx.type)
        assert decode_record_words(compute_record_words(tx)) == _expected_fields(tx)
        assert decode_record(encode_record(tx))[0] == _expected_fields(tx)
    assert {"deposit", "perp_trade", "option_trade", "transfer", "withdraw"} <= seen


# --- The oracle section (verifier/oracle_section.py) ------------------------------------------------

from verifier.oracle_section import (  # noqa: E402
    OracleShape,
    build_empty_section,
    compute_oracle_section,
    compute_oracle_words,
    decode_oracle_words,
    get_update_fields,
)


def test_oracle_sections_round_trip(small_workload):
    genesis = small_workload.genesis
    shape = OracleShape(tuple(sorted(i.id for i in genesis.instruments)), genesis.risk.n_scenarios)
    updates = [tx for tx in small_workload.transactions if tx.type == "oracle_update"]
    assert updates
    for tx in updates:
        words = compute_oracle_words(compute_oracle_section(tx, shape), shape)
        assert len(words) == shape.n_words and all(0 <= w < 2**248 for w in words)
        fields = get_update_fields(decode_oracle_words(words, shape), shape)
        assert TRANSACTION_TYPES["oracle_update"](**fields, signature=tx.signature) == tx


def test_oracle_section_without_update_is_zero():
    shape = OracleShape((1, 5, 9), 16)
    assert shape.n_words == 1 + 3 * (1 + 6)
    words = compute_oracle_words(build_empty_section(shape), shape)
    assert words == [0] * shape.n_words
    assert get_update_fields(decode_oracle_words(words, shape), shape) is None


def test_invalid_oracle_words():
    shape = OracleShape((1, 5), 4)
    empty = [0] * shape.n_words
    with pytest.raises(MalformedRecord, match="without an update lists values"):
        decode_oracle_words([5 << 200] + empty[1:], shape)  # a timestamp, no update flag
    with pytest.raises(MalformedRecord, match="without an update lists values"):
        decode_oracle_words([5 << 160] + empty[1:], shape)  # a previous timestamp, no update flag
    listed_nothing = list(empty)
    listed_nothing[0] = compute_oracle_words(compute_oracle_section(_update(7), shape), shape)[0]
    listed_nothing[1] = 12345 << 64  # a settlement value without its flag (the last field of the entry word)
    with pytest.raises(MalformedRecord, match="lists no settlement but carries one"):
        decode_oracle_words(listed_nothing, shape)
    with pytest.raises(MalformedRecord, match="an oracle section is 7 words of 31 bytes"):
        decode_oracle_words(empty[:-1], shape)
    with pytest.raises(MalformedRecord, match="not in the table"):
        compute_oracle_section(_update(7, instrument=3), shape)


def _update(timestamp: int, instrument: int = 1):
    return TRANSACTION_TYPES["oracle_update"].model_validate(
        {"timestamp": timestamp, "previous_timestamp": 0, "marks": [{"instrument": instrument, "price": 5}], "funding": [], "risk_arrays": [], "settlements": [], "signature": SIG}
    )
