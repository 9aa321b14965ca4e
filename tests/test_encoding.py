"""Canonical encodings: key layout, leaf bytes (abi.encode-compatible), field elements, state glue."""

from __future__ import annotations

import eth_abi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup.genesis import default_genesis
from rollup.state import Account, Position, State
from rollup.state_codec import encode_state_leaf, get_state_leaves, state_from_leaves
from verifier.encoding import (
    EMPTY_LEAF_BYTES,
    GLOBALS_KEY,
    AccountLeaf,
    DecodedKey,
    GlobalsLeaf,
    InstrumentLeaf,
    InvalidKey,
    MalformedLeaf,
    OrderSlotLeaf,
    PositionLeaf,
    account_key,
    compute_genesis_hash,
    decode_account_leaf,
    decode_globals_leaf,
    decode_instrument_leaf,
    decode_key,
    decode_leaf,
    encode_account_leaf,
    encode_globals_leaf,
    encode_instrument_leaf,
    instrument_key,
)

ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
WORD = 32


def word(value: int, signed: bool = False) -> bytes:
    return value.to_bytes(WORD, "big", signed=signed)


# --- keys ------------------------------------------------------------------------------------------


def test_key_layout() -> None:
    assert account_key(0) == 0
    assert account_key(7) == 7
    assert account_key(2**29 - 1) == 2**29 - 1
    assert instrument_key(3) == (1 << 29) | 3
    assert GLOBALS_KEY == 2 << 29
    assert decode_key(7) == DecodedKey("account", 7)
    assert decode_key(instrument_key(65535)) == DecodedKey("instrument", 65535)
    assert decode_key(GLOBALS_KEY) == DecodedKey("globals", 0)


@pytest.mark.parametrize(
    "key", [-1, 2**32, 3 << 29, (1 << 29) | 2**16, GLOBALS_KEY + 1, 7 << 29], ids=str
)
def test_invalid_key(key: int) -> None:
    with pytest.raises(InvalidKey):
        decode_key(key)


@pytest.mark.parametrize("make, value", [(account_key, 2**29), (account_key, -1), (instrument_key, 2**16)])
def test_invalid_key_id(make, value) -> None:
    with pytest.raises(InvalidKey):
        make(value)


@given(st.integers(0, 2**29 - 1), st.integers(0, 2**16 - 1))
def test_key_round_trip(account_id: int, instrument_id: int) -> None:
    assert decode_key(account_key(account_id)) == ("account", account_id)
    assert decode_key(instrument_key(instrument_id)) == ("instrument", instrument_id)


def test_rollup_state_uses_the_same_keys() -> None:
    from rollup import state

    for i in (0, 5, 2**29 - 1):
        assert state.account_key(i) == account_key(i)
    for i in (0, 9, 2**16 - 1):
        assert state.instrument_key(i) == instrument_key(i)
    assert state.GLOBALS_KEY == GLOBALS_KEY


# --- leaf bytes: test vectors against eth_abi.encode (what the EVM's abi.encode produces) -------


def test_account_leaf_is_abi_encoded() -> None:
    positions = [(0, -5, -300_000_000, 12), (4, 3, 0, 0)]
    key_id = (1 << 247) + 12345
    orders = [(3, 2**64 - 5, 17)]  # slot 3 holds order nonce 2^64 - 5 (= 3 mod 8), 17 filled
    leaf = encode_account_leaf(ADDRESS, 1_000_000, 7, positions, key_id, orders)
    expected = eth_abi.encode(
        ["uint256", "address", "uint256", "uint256", "uint256", "uint256", "uint256"] + ["uint256", "int256", "int256", "int256"] * 2
        + ["uint256"] * 3,
        [1, ADDRESS, 1_000_000, 7, key_id, 2, 1, *positions[0], *positions[1], *orders[0]],
    )
    assert leaf == expected
    assert decode_account_leaf(leaf) == AccountLeaf(
        ADDRESS, 1_000_000, 7, tuple(PositionLeaf(*p) for p in positions), key_id, tuple(OrderSlotLeaf(*o) for o in orders)
    )
    # a key id is 248 bits
    with pytest.raises(MalformedLeaf, match="l2_key"):
        encode_account_leaf(ADDRESS, 1_000_000, 7, positions, 1 << 248)


def test_instrument_leaf_is_abi_encoded() -> None:
    leaf = encode_instrument_leaf(3, "option", 1_500, 0, 40, 900, [-5, 0, 7])
    expected = eth_abi.encode(
        ["uint256"] * 10 + ["int256"] * 3, [2, 3, 1, 1, 1_500, 0, 40, 1, 900, 3, -5, 0, 7]
    )
    assert leaf == expected
    assert decode_instrument_leaf(leaf) == InstrumentLeaf(3, "option", 1_500, 0, 40, 900, (-5, 0, 7))


def test_instrument_leaf_absent_values() -> None:
    leaf = encode_instrument_leaf(0, "perp", None, -17, 0, None, [])
    assert leaf == word(2) + word(0) + word(0) + word(0) + word(0) + word(-17, True) + word(0) * 4
    assert decode_instrument_leaf(leaf) == InstrumentLeaf(0, "perp", None, -17, 0, None, ())


def test_globals_leaf_is_abi_encoded() -> None:
    genesis_hash = bytes(range(32))
    leaf = encode_globals_leaf(10, -3, 4, 1_700_000_000, genesis_hash)
    assert leaf == eth_abi.encode(
        ["uint256", "uint256", "int256", "uint256", "uint256", "bytes32"], [3, 10, -3, 4, 1_700_000_000, genesis_hash]
    )
    assert decode_globals_leaf(leaf) == GlobalsLeaf(10, -3, 4, 1_700_000_000, genesis_hash)


def test_decode_leaf_by_key() -> None:
    assert decode_leaf(5, EMPTY_LEAF_BYTES) is None
    assert decode_leaf(5, encode_account_leaf(ADDRESS, 1, 0, [])).collateral == 1
    leaf = encode_instrument_leaf(2, "perp", 1, 0, 0, None, [1])
    assert decode_leaf(instrument_key(2), leaf).id == 2
    with pytest.raises(MalformedLeaf, match="stored at key"):
        decode_leaf(instrument_key(3), leaf)
    with pytest.raises(MalformedLeaf, match="kind word"):
        decode_leaf(GLOBALS_KEY, leaf)


# --- malformed leaves ------------------------------------------------------------------------------

GOOD_ACCOUNT = encode_account_leaf(ADDRESS, 5, 1, [(1, 2, 3, 4)], 0, [(2, 10, 3)])  # words: 7 header, 4 position, 3 order slot
GOOD_INSTRUMENT = encode_instrument_leaf(1, "option", 5, 0, 2, None, [1, -1])
GOOD_GLOBALS = encode_globals_leaf(1, 2, 3, 4, bytes(32))


def replace_word(data: bytes, index: int, value: bytes) -> bytes:
    return data[: index * WORD] + value + data[(index + 1) * WORD :]


@pytest.mark.parametrize(
    "decode, data, reason",
    [
        (decode_account_leaf, b"", "shorter"),
        (decode_account_leaf, GOOD_ACCOUNT[:-1], "multiple of 32"),
        (decode_account_leaf, GOOD_ACCOUNT[:-WORD], "announces"),
        (decode_account_leaf, GOOD_ACCOUNT + word(0), "announces"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 0, word(2)), "kind word"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 1, word(2**160)), "address"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 2, word(-1, True)), "collateral"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 4, word(2**248)), "l2_key"),
            (decode_account_leaf, replace_word(GOOD_ACCOUNT, 5, word(65)), "at most 64"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 8, word(0)), "size 0"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 8, word(2**63)), "size"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 7, word(2**16)), "instrument"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 6, word(9)), "9 order slots, at most 8"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 6, word(2)), "announces"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 11, word(3)), "cannot hold the order of nonce 10"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 12, word(2**64)), "nonce"),
        (decode_account_leaf, replace_word(GOOD_ACCOUNT, 13, word(0)), "nothing filled"),
        (decode_account_leaf, "00" * 64, "must be bytes"),
        (decode_instrument_leaf, replace_word(GOOD_INSTRUMENT, 2, word(2)), "kind"),
        (decode_instrument_leaf, replace_word(GOOD_INSTRUMENT, 3, word(0)), "has_mark"),
        (decode_instrument_leaf, replace_word(GOOD_INSTRUMENT, 5, word(1)), "no funding"),
        (decode_instrument_leaf, replace_word(GOOD_INSTRUMENT, 8, word(1)), "has_settlement"),
        (decode_instrument_leaf, replace_word(GOOD_INSTRUMENT, 9, word(3)), "announces"),
        (decode_instrument_leaf, replace_word(GOOD_INSTRUMENT, 9, word(65)), "at most 64"),
        (decode_instrument_leaf, replace_word(GOOD_INSTRUMENT, 10, word(2**63)), "risk_value"),
        (decode_globals_leaf, GOOD_GLOBALS + word(0), "announces"),
        (decode_globals_leaf, replace_word(GOOD_GLOBALS, 2, word(2**127)), "insurance_fund"),
        (decode_globals_leaf, replace_word(GOOD_GLOBALS, 4, word(2**40)), "oracle_time"),
    ],
)
def test_invalid_leaf(decode, data, reason: str) -> None:
    with pytest.raises(MalformedLeaf, match=reason):
        decode(data)


def test_invalid_perp_settlement() -> None:
    perp_with_settlement = replace_word(
        replace_word(encode_instrument_leaf(0, "perp", 1, 0, 0, None, []), 7, word(1)), 8, word(5)
    )
    with pytest.raises(MalformedLeaf, match="no settlement"):
        decode_instrument_leaf(perp_with_settlement)
    with pytest.raises(MalformedLeaf, match="no settlement"):
        encode_instrument_leaf(0, "perp", 1, 0, 0, 5, [])


@pytest.mark.parametrize(
    "positions, reason",
    [([(2, 1, 0, 0), (1, 1, 0, 0)], "sorted"), ([(1, 1, 0, 0), (1, 2, 0, 0)], "sorted"), ([(1, 0, 0, 0)], "size 0")],
)
def test_invalid_account_encoding(positions, reason: str) -> None:
    with pytest.raises(MalformedLeaf, match=reason):
        encode_account_leaf(ADDRESS, 0, 0, positions)


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        (dict(collateral=-1), "collateral"),
        (dict(collateral=2**128), "collateral"),
        (dict(nonce=True), "integer"),
        (dict(positions=[(0, 1, 0, 0)] * 65), "at most 64"),
        (dict(address="0x1234"), "address"),
        (dict(address="0x" + "zz" * 20), "address"),
        (dict(address="0x" + "00 " * 13 + "0"), "address"),
        (dict(address=bytes(19)), "address"),
    ],
)
def test_invalid_account_values(kwargs, reason: str) -> None:
    args = dict(address=ADDRESS, collateral=0, nonce=0, positions=[])
    with pytest.raises(MalformedLeaf, match=reason):
        encode_account_leaf(**{**args, **kwargs})


# --- hypothesis round trips ----------------------------------------------------------------------

def signed(bits: int) -> st.SearchStrategy[int]:
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


positions_strategy = st.dictionaries(
    st.integers(0, 2**16 - 1),
    st.tuples(signed(64).filter(bool), signed(128), signed(64)),
    max_size=8,
).map(lambda d: [(i, *v) for i, v in sorted(d.items())])


@settings(max_examples=150, deadline=None)
@given(
    st.binary(min_size=20, max_size=20),
    st.integers(0, 2**128 - 1),
    st.integers(0, 2**64 - 1),
    positions_strategy,
)
def test_account_leaf_round_trip(address: bytes, collateral: int, nonce: int, positions) -> None:
    leaf = encode_account_leaf(address, collateral, nonce, positions)
    decoded = decode_account_leaf(leaf)
    assert bytes.fromhex(decoded.address[2:]) == address
    assert (decoded.collateral, decoded.nonce, [tuple(p) for p in decoded.positions]) == (collateral, nonce, positions)
    assert encode_account_leaf(decoded.address, decoded.collateral, decoded.nonce, decoded.positions) == leaf


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 2**16 - 1),
    st.sampled_from(["perp", "option"]),
    st.none() | st.integers(0, 2**56 - 1),
    signed(64),
    st.integers(0, 2**128 - 1),
    st.none() | st.integers(0, 2**56 - 1),
    st.lists(signed(64), max_size=64),
)
def test_instrument_leaf_round_trip(id_, kind, mark, funding, open_interest, settlement, risk) -> None:
    funding = funding if kind == "perp" else 0
    settlement = settlement if kind == "option" else None
    leaf = encode_instrument_leaf(id_, kind, mark, funding, open_interest, settlement, risk)
    assert decode_instrument_leaf(leaf) == InstrumentLeaf(id_, kind, mark, funding, open_interest, settlement, tuple(risk))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**128 - 1), signed(128), st.integers(0, 2**64 - 1), st.integers(0, 2**40 - 1), st.binary(min_size=32, max_size=32))
def test_globals_leaf_round_trip(fee_pool, insurance, deposits, oracle_time, genesis_hash) -> None:
    leaf = encode_globals_leaf(fee_pool, insurance, deposits, oracle_time, genesis_hash)
    assert decode_globals_leaf(leaf) == GlobalsLeaf(fee_pool, insurance, deposits, oracle_time, genesis_hash)


# --- State <-> leaves ------------------------------------------------------------------------------


def make_state() -> State:
    genesis = default_genesis(ADDRESS, n_perps=2, n_series=2)
    state = State.from_genesis(genesis)
    state.accounts[0] = Account(ADDRESS, 1_000, 3, {0: Position(-2, -120, 5), 2: Position(4, 0, 0)})
    state.accounts[9] = Account("0x" + "11" * 20, 0, 0, {})
    perp, option = state.instruments[0], state.instruments[2]
    perp.mark, perp.funding_index, perp.risk_array, perp.open_interest = 60, -7, tuple(range(-8, 8)), 2
    option.mark, option.risk_array, option.settlement, option.open_interest = 0, (1,) * 16, 11, 4
    state.globals.fee_pool, state.globals.insurance_fund, state.globals.deposit_count = 5, -2, 2
    return state


def test_state_round_trip() -> None:
    state = make_state()
    leaves = get_state_leaves(state)
    assert set(leaves) == {0, 9, *(instrument_key(i) for i in range(4)), GLOBALS_KEY}
    assert encode_state_leaf(state, 123) == EMPTY_LEAF_BYTES
    assert all(encode_state_leaf(state, key) == data for key, data in leaves.items())
    restored = state_from_leaves(state.genesis, {**leaves, 123: EMPTY_LEAF_BYTES})
    assert restored == state
    assert get_state_leaves(restored) == leaves
    assert decode_globals_leaf(leaves[GLOBALS_KEY]).genesis_hash == compute_genesis_hash(state.genesis)


def test_genesis_state_round_trip() -> None:
    state = State.from_genesis(default_genesis(ADDRESS))
    assert state_from_leaves(state.genesis, get_state_leaves(state)) == state


def test_invalid_state_leaves() -> None:
    state = make_state()
    leaves = get_state_leaves(state)
    with pytest.raises(MalformedLeaf, match="globals leaf is missing"):
        state_from_leaves(state.genesis, {k: v for k, v in leaves.items() if k != GLOBALS_KEY})
    with pytest.raises(MalformedLeaf, match="missing for ids"):
        state_from_leaves(state.genesis, {k: v for k, v in leaves.items() if k != instrument_key(1)})
    other = default_genesis(ADDRESS, n_perps=2, n_series=2, now=1)
    with pytest.raises(MalformedLeaf, match="commits to genesis"):
        state_from_leaves(other, leaves)
    swapped = {**leaves, instrument_key(2): encode_instrument_leaf(2, "perp", None, 0, 0, None, [])}
    with pytest.raises(MalformedLeaf, match="genesis, its leaf says"):
        state_from_leaves(state.genesis, swapped)
