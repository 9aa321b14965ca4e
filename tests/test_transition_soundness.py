"""Circuit v3 (prover/circuits/transition.py) against a malicious prover: soundness regressions.

A prover controls every private value: windows, table, globals, paths, transaction words. Each
test here builds a segment with the native rules, then changes what a malicious prover would
change, keeping the public inputs consistent with the change (the "after" root is recomputed from
the changed witness exactly as the circuit computes it, the oracle words from the changed
section), so only a rule can refuse it.

- `test_invalid_*_top_of_wire_range`: transaction words at the top of their range check, one past
  the wire bound (an amount of 2^64, a size or quantity of 2^31). The native rules refuse them (the
  wire model), and the record field they pack into is exactly the wire's width, so such a value
  carries into the field above it and the published record names a different transaction than
  the one the roots apply. A regression for the fix in `synthesize_record`.
- the others: candidates the circuit refuses, kept as the most instructive (an unused window
  moving open interest, an option position's cost, a deposit re-creating an existing account, a
  an unlisted oracle value, a key beyond the tree aliasing one inside it).
"""

from __future__ import annotations

import copy
import hashlib
import dataclasses

import pytest
from eth_utils import to_checksum_address

import prover.circuits.transition_witness as transition_witness
from prover.circuits.layout import SLOT_TYPES
from prover.circuits.transition import L2SignatureWitness, TransitionShape, TransitionWitness, build_transition_circuit
from prover.circuits.transition_witness import compute_account_leaf_value, compute_transition_witness
from prover.r1cs import UnsatisfiedConstraint, WitnessError
from rollup.genesis import default_genesis
from rollup.state import State
from rollup.state_tree import PoseidonTree
from verifier.eddsa import prv2pub
from verifier.encoding import compute_genesis_hash, get_signature_fields, is_l2_signed
from verifier.babyjubjub import SUBORDER
from verifier.l2auth import parse_l2_signature, compute_key_id, compute_l2_message, compute_tx_message, get_domain_tag, sign_l2
from verifier.slots import get_signing_accounts
from verifier.oracle_section import compute_oracle_words
from verifier.pubdata import RECORD_BY_TYPE, RECORDS_HASH_BITS, TYPE_SHIFT, MalformedRecord, decode_record_words
from verifier.state_tree import TreeShape, compute_path_root, compute_state_root, hash_account, hash_fields
from verifier.wire import (
    AMOUNT_BITS,
    SIZE_BITS,
    Deposit,
    InstrumentPrice,
    OptionTrade,
    OracleUpdate,
    PerpTrade,
    RegisterKey,
    RiskArray,
    RiskParameters,
    SettleExpired,
    Transfer,
)

TREE = TreeShape(depth=2, arity=4)  # 16 accounts
SIG = "0x" + "00" * 65  # Ethereum signatures are checked outside the circuit: the rules get the signers
L2SIG = "0x" + "00" * 160  # a placeholder `_replay` replaces by the parties' L2 signatures
L2_KEYS = [bytes([i + 1]) * 32 for i in range(3)]  # the accounts' L2 private keys (EdDSA-Poseidon)
KEY_IDS = [compute_key_id(prv2pub(k)) for k in L2_KEYS]
ORACLE = to_checksum_address("0x" + "0a" * 20)
OWNERS = [to_checksum_address("0x" + f"{i + 1:02x}" * 20) for i in range(3)]
GENESIS = default_genesis(ORACLE, n_perps=1, n_series=1, risk=RiskParameters(n_scenarios=3, max_positions=2))
SHAPE = TransitionShape.from_genesis(GENESIS, compute_genesis_hash(GENESIS), 1, TREE)
PERP, SERIES = SHAPE.table  # 0 and 1
T0 = GENESIS.genesis_time
EXPIRY = SHAPE.expiry[1]
FUNDS = 10**12  # 1M USD per account


def _deposit(deposit_id: int, account: int, amount: int = FUNDS) -> Deposit:
    return Deposit.model_construct(deposit_id=deposit_id, account=account, address=OWNERS[account], amount=amount)


def _oracle(timestamp: int, previous: int, settle: int | None = None) -> OracleUpdate:
    # one micro-USD marks and risk values of +-1 per contract: margin for 2^31 contracts is ~2,147 USD
    prices = [InstrumentPrice(instrument=i, price=1) for i in SHAPE.table]
    risk = [RiskArray(instrument=i, values=[-1, 0, 1]) for i in SHAPE.table]
    settlements = [InstrumentPrice(instrument=SERIES, price=settle)] if settle is not None else []
    return OracleUpdate(timestamp=timestamp, previous_timestamp=previous, marks=prices, funding=[], risk_arrays=risk,
                        settlements=settlements, signature=SIG)


def _signers(tx) -> list:
    """What the signature pass gives the rules (honest signers): key ids for L2 signatures."""
    if is_l2_signed(type(tx)):
        return [KEY_IDS[account] for account, _ in get_signing_accounts(tx)]
    owner = {
        "deposit": lambda: [],  # the L1 queue entry authorises a deposit
        "withdraw": lambda: [OWNERS[tx.account]],
        "transfer": lambda: [OWNERS[tx.sender]],
        "perp_trade": lambda: [OWNERS[tx.maker], OWNERS[tx.taker]],
        "option_trade": lambda: [OWNERS[tx.buyer], OWNERS[tx.seller]],
        "settle_expired": lambda: [OWNERS[tx.sender]],
        "register_key": lambda: [OWNERS[tx.account]],
    }
    return owner[tx.type]()


def _sign(tx):
    """An L2-signed transaction with the placeholders replaced by its parties' L2 signatures."""
    if not is_l2_signed(type(tx)):
        return tx
    try:
        message = compute_l2_message(tx, GENESIS.signing_domain)
    except MalformedRecord:  # a word past its bound: the parties sign the words it packs into
        message = compute_tx_message(get_domain_tag(GENESIS.signing_domain), _pack_unchecked(tx))
    names = get_signature_fields(type(tx))
    return tx.model_copy(update={n: sign_l2(L2_KEYS[account], message) for n, (account, _) in zip(names, get_signing_accounts(tx))})


def _replay(segments) -> list[TransitionWitness]:
    """Witnesses of segments (oracle update or None, transactions), applied from genesis; every
    transaction must be accepted by the native rules (the witness builder refuses others). L2
    signatures are made here; an account holds its L2 key (`KEY_IDS`) from the segment after the
    one that created it on, set in the state and tree directly (a registration without its nonce,
    so the tests' nonces stay those of a fresh account)."""
    state, tree = State.from_genesis(GENESIS), PoseidonTree(TREE)
    out = []
    for index, (oracle, txs) in enumerate(segments):
        txs = [_sign(tx) for tx in txs]
        out.append(compute_transition_witness(
            state, tree, SHAPE, 1, index, oracle, [ORACLE] if oracle else None, txs, [_signers(tx) for tx in txs]
        ))
        for account_id, account in state.accounts.items():
            if account.l2_key == 0:
                account.l2_key = KEY_IDS[account_id]
                tree.update({account_id: compute_account_leaf_value(account, SHAPE)})
    return out


OPENING = [(None, [_deposit(i, i)]) for i in range(3)] + [(_oracle(T0 + 60, T0), [])]


def _pack_unchecked(tx) -> tuple[int, ...]:
    """The record words exactly as the circuit packs the transaction words (a sum of shifted
    fields, no width check): what a malicious prover publishes for a value past the wire bound."""
    if tx is None:
        return (0, 0)
    spec = RECORD_BY_TYPE[tx.type]
    words = [spec.code << TYPE_SHIFT, 0]
    for place in spec.get_places():
        value = getattr(tx, place.field.name)
        value = int(value, 16) if place.field.name == "address" else value
        words[place.word] += (value + place.field.offset) << place.shift
    return tuple(words)


def _hash_unchecked(records) -> int:
    """The records hash of words as given (no width check): what a malicious prover publishes."""
    digest = hashlib.sha256(b"".join(word.to_bytes(32, "big") for words in records for word in words)).digest()
    return int.from_bytes(digest, "big") & ((1 << RECORDS_HASH_BITS) - 1)


def _claim_root_after(w: TransitionWitness) -> int:
    """The "after" root the circuit computes from this witness (a segment without an oracle
    update): the used windows' leaves after, on their paths, the open-interest and globals deltas."""
    assert not w.oracle.has_update
    markets = copy.deepcopy(w.markets)
    g = copy.deepcopy(w.globals)
    root = w.accounts_root
    for slot in w.slots:
        flag = dict(zip(SLOT_TYPES, slot.flags))
        tx = slot.tx
        keeper = flag["settle_expired"] and tx.account_a != tx.account_b
        uses_b = flag["transfer"] or flag["perp_trade"] or flag["option_trade"] or flag["liquidate"] or flag["fill"] or keeper
        for window, key, uses, path in ((slot.a, tx.account_a, any(slot.flags), slot.path_a), (slot.b, tx.account_b, uses_b, slot.path_b)):
            if uses:
                positions = [v for p in window.positions for v in (p.size_after, p.cost_after, p.funding_after)]
                header = [window.address_after, window.collateral_after, window.nonce_after, window.l2_key_after]
                leaf = hash_account(header, positions, window.orders_after)
                root = compute_path_root(key, leaf, path, TREE)
        if flag["perp_trade"] or flag["option_trade"] or flag["settle_expired"] or flag["liquidate"] or flag["fill"]:
            markets[SHAPE.table.index(tx.instrument)].open_interest += slot.open_interest_delta
        g.fee_pool += slot.fee_delta
        g.insurance_fund += slot.insurance_delta
        g.deposit_count = slot.deposit_count_after
    markets_hash = hash_fields([f for m in markets for f in m.fields()])
    return compute_state_root(root, markets_hash, hash_fields(g.fields(SHAPE.genesis_limbs)))


def _check(w: TransitionWitness) -> None:
    build_transition_circuit(SHAPE, w).check()


def _refused(w: TransitionWitness) -> str:
    with pytest.raises((UnsatisfiedConstraint, WitnessError)) as info:
        _check(w)
    return str(info.value)


# --- the harness itself: honest segments pass, and the recomputed root is the circuit's ------------


def test_honest_segment_and_claimed_root():
    trade = OptionTrade(buyer=0, seller=1, series=SERIES, quantity=5, premium=1, fee=2, buyer_nonce=0, seller_nonce=0,
                        buyer_signature=L2SIG, seller_signature=L2SIG)
    w = _replay([*OPENING, (None, [trade])])[-1]
    assert _claim_root_after(w) == w.public[3]
    _check(w)


# --- finding: transaction words one past the wire bound (the top of each range check) -------------


def _past_the_bound(kind: str):
    """(segments, the transaction): a valid opening, then one transaction whose amount, size or
    quantity is one past its wire bound. The native rules (without the wire model's parsing)
    accept it, so the witness builder builds a consistent segment for it."""
    if kind == "transfer":
        # 2^64 collateral in the sender's account takes two deposits (each below 2^64)
        opening = [*OPENING, (None, [_deposit(3, 0, 2**AMOUNT_BITS - FUNDS)])]
        tx = Transfer.model_construct(sender=0, recipient=2, amount=2**AMOUNT_BITS, nonce=0, signature=L2SIG)
    elif kind == "deposit":
        opening = OPENING
        tx = _deposit(3, 2, 2**AMOUNT_BITS)
    elif kind == "perp_trade":
        opening = OPENING
        tx = PerpTrade.model_construct(maker=1, taker=0, market=PERP, size=2**SIZE_BITS, price=1, fee=0, maker_nonce=0,
                                       taker_nonce=0, maker_signature=L2SIG, taker_signature=L2SIG)
    else:
        opening = OPENING
        tx = OptionTrade.model_construct(buyer=0, seller=1, series=SERIES, quantity=2**SIZE_BITS, premium=0, fee=0,
                                         buyer_nonce=0, seller_nonce=0, buyer_signature=L2SIG, seller_signature=L2SIG)
    return [*opening, (None, [tx])], tx


@pytest.mark.parametrize("kind", ["transfer", "deposit", "perp_trade", "option_trade"])
def test_invalid_transaction_word_at_the_top_of_wire_range(kind, monkeypatch):
    # a malicious prover publishes the words its transaction words pack into
    monkeypatch.setattr(transition_witness, "compute_record_words", _pack_unchecked)
    monkeypatch.setattr(transition_witness, "compute_records_hash", _hash_unchecked)
    segments, tx = _past_the_bound(kind)
    w = _replay(segments)[-1]
    record = _pack_unchecked(tx)
    # what it would gain: the published record is not the transaction the roots apply (the value
    # carries into the field above: a transfer of 0 to recipient 3, a deposit of 0 to account 3,
    # a trade of -2^31 contracts of instrument 1), or no record at all
    try:
        published = decode_record_words(record)
    except MalformedRecord:
        published = None
    assert published is None or any(published[k] != v for k, v in tx.__dict__.items() if k in published and k != "address")
    assert "record" in _refused(w)


# --- candidates the circuit refuses ------------------------------------------------------------------


def test_invalid_unused_window_moves_open_interest():
    # a holder settling its own position uses window A only; window B's fields are private and
    # unused, but a matched position there would add to the series' open interest if allowed
    trade = OptionTrade(buyer=0, seller=1, series=SERIES, quantity=5, premium=1, fee=0, buyer_nonce=0, seller_nonce=0,
                        buyer_signature=L2SIG, seller_signature=L2SIG)
    settle = SettleExpired(sender=0, account=0, series=SERIES, nonce=1, signature=L2SIG)
    w = _replay([*OPENING, (None, [trade]), (_oracle(EXPIRY, T0 + 60, settle=3), []), (None, [settle])])[-1]
    slot = w.slots[0]
    series = slot.b.positions[SHAPE.table.index(SERIES)]
    series.matched, series.size_after = 1, 7
    slot.open_interest_delta += 7
    w.public[3] = _claim_root_after(w)
    assert "positions" in _refused(w)


def test_invalid_option_position_with_a_cost():
    # an option position's cost and funding stay 0 (its value is size x mark): a cost would be
    # P&L out of thin air at the next realisation, so it is refused where it would be written
    trade = OptionTrade(buyer=0, seller=1, series=SERIES, quantity=5, premium=1, fee=0, buyer_nonce=0, seller_nonce=0,
                        buyer_signature=L2SIG, seller_signature=L2SIG)
    w = _replay([*OPENING, (None, [trade])])[-1]
    position = w.slots[0].a.positions[SHAPE.table.index(SERIES)]
    position.cost_after = -10**9
    w.public[3] = _claim_root_after(w)
    assert "positions" in _refused(w)


def test_invalid_deposit_recreates_an_existing_account():
    # a deposit may create its account: claiming the account did not exist would wipe its short
    # position and debts and start it over with the deposit alone (and nonce 0: old signatures replay)
    trade = PerpTrade(maker=1, taker=0, market=PERP, size=-9, price=1, fee=0, maker_nonce=0, taker_nonce=0,
                      maker_signature=L2SIG, taker_signature=L2SIG)
    w = _replay([*OPENING, (None, [trade]), (None, [_deposit(3, 0, 5)])])[-1]
    a = w.slots[0].a
    assert a.exists_before and a.positions[0].size_after == -9
    a.exists_before = a.address_before = a.collateral_before = a.nonce_before = 0
    a.collateral_after, a.nonce_after = 5, 0
    for p in a.positions:
        p.size_before = p.cost_before = p.funding_before = p.size_after = p.cost_after = p.funding_after = 0
    w.public[3] = _claim_root_after(w)
    # refused where the leaf's fields must be 0 (its registered key is not) or on its path
    assert any(gadget in _refused(w) for gadget in ("leaf_update", "account_leaf"))


def test_invalid_oracle_value_not_listed():
    # a mark carried without its flag: the section's words would claim a value the table did not take
    w = _replay(OPENING)[-1]
    w.oracle.entries[0].flags &= ~1
    w.public[4 : 4 + SHAPE.oracle.n_words] = compute_oracle_words(w.oracle, SHAPE.oracle)
    assert "oracle_section" in _refused(w)


def test_invalid_key_beyond_the_tree():
    # account ids beyond the tree's capacity do not alias the leaf of `id mod capacity`: its key
    # bits above the tree's are 0 (the deposit's path is account 1's, which it would overwrite)
    w = _replay([(None, [_deposit(0, 0)]), (None, [_deposit(1, 1)])])[-1]
    w.slots[0].tx.account_a += TREE.capacity
    w0, w1 = _pack_unchecked(_deposit(1, 1))
    w.public[-1] = _hash_unchecked([(w0 + (TREE.capacity << RECORD_BY_TYPE["deposit"].get_places()[0].shift), w1)])
    assert "does not fit in 4 bits" in _refused(w)


# --- L2 key registration -------------------------------------------------------------------------

KEY_ID = (1 << 247) + 0xC0FFEE


def _registration(account: int = 0, nonce: int = 0) -> RegisterKey:
    return RegisterKey(account=account, address=OWNERS[account], key_id=KEY_ID, nonce=nonce, signature=SIG)


def _republish(w: TransitionWitness, tx) -> None:
    """The slot's record words as the circuit packs `tx`'s words, and the root the witness gives."""
    w.public[-1] = _hash_unchecked([_pack_unchecked(tx)])
    w.public[3] = _claim_root_after(w)


def test_registration_sets_the_key():
    w = _replay([*OPENING, (None, [_registration()])])[-1]
    a = w.slots[0].a
    assert (a.l2_key_before, a.l2_key_after, a.nonce_after) == (KEY_IDS[0], KEY_ID, 1)  # a rotation
    _check(w)
    assert w.public[3] == _claim_root_after(w)


def test_invalid_key_changed_without_registration():
    # only a registration writes a key: a transfer that also swaps the sender's key would let the
    # prover sign for the account from then on
    transfer = Transfer(sender=0, recipient=1, amount=5, nonce=0, signature=L2SIG)
    w = _replay([*OPENING, (None, [transfer])])[-1]
    w.slots[0].a.l2_key_after = KEY_ID
    w.public[3] = _claim_root_after(w)
    assert "key_registration" in _refused(w)
    w = _replay([*OPENING, (None, [transfer])])[-1]
    w.slots[0].b.l2_key_after = KEY_ID  # the recipient's key
    w.public[3] = _claim_root_after(w)
    assert "key_registration" in _refused(w)


def test_invalid_registration_signed_by_another_address():
    # the contract recovers the signer and compares it with the record's address: the circuit must
    # prove that address is the account's, or anyone could register a key for any account
    w = _replay([*OPENING, (None, [_registration()])])[-1]
    w.slots[0].tx.address = int(OWNERS[1], 16)
    _republish(w, _registration().model_copy(update={"address": OWNERS[1]}))
    assert "key_registration" in _refused(w)


def test_invalid_registration_of_the_id_zero():
    # 0 means "no key": it would take the account out of L2 signing without the address asking
    w = _replay([*OPENING, (None, [_registration()])])[-1]
    w.slots[0].tx.key_id = 0
    w.slots[0].a.l2_key_after = 0
    _republish(w, _registration().model_copy(update={"key_id": 0}))
    assert "key_registration" in _refused(w)


# --- L2 signatures --------------------------------------------------------------------------------


def _transfer_witness() -> TransitionWitness:
    return _replay([*OPENING, (None, [Transfer(sender=0, recipient=1, amount=5, nonce=0, signature=L2SIG)])])[-1]


def test_l2_signature_is_checked_in_the_slot():
    w = _transfer_witness()
    assert w.slots[0].signature_a.ax != 0 and w.slots[0].signature_b == L2SignatureWitness()  # B (the recipient) signs nothing
    _check(w)


def test_invalid_l2_signature_s():
    w = _transfer_witness()
    sig = w.slots[0].signature_a
    w.slots[0].signature_a = dataclasses.replace(sig, s=(sig.s + 1) % SUBORDER)
    assert "signatures" in _refused(w)


def test_invalid_l2_signature_by_another_key():
    # a valid signature of the same record by the recipient's key: not the sender's registered key
    w = _transfer_witness()
    tx = Transfer(sender=0, recipient=1, amount=5, nonce=0, signature=L2SIG)
    (ax, ay), sig = parse_l2_signature(sign_l2(L2_KEYS[1], compute_l2_message(tx, GENESIS.signing_domain)))
    w.slots[0].signature_a = L2SignatureWitness(ax, ay, *sig.R8, sig.S)
    assert "key_id" in _refused(w)


def test_invalid_l2_signature_dropped():
    # the blank a non-signing window holds, in the sender's window
    w = _transfer_witness()
    w.slots[0].signature_a = L2SignatureWitness()
    assert "signatures" in _refused(w)
