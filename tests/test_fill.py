"""The `Fill` transaction: two signed orders matched (rollup.rules.process_fill), and the slot
circuit proving the same verdict on every case (the differential harness of test_slot_rules.py)."""

from __future__ import annotations

import pytest

from rollup.fixtures import WorkloadSpec
from rollup.rules import process_transaction
from rollup.signing import derive_l2_key
from verifier.l2auth import check_signers, compute_order_message
from verifier.wire import ORDER_SLOTS, Fill, Order

from tests.test_slot_rules import check_equivalence, ensure_key, get_records

PLACEHOLDER = "0x" + "00" * 160  # the rules see signers, not signatures (signature checks: below)


@pytest.fixture(scope="module")
def market():
    """A state with funded accounts, marks and risk arrays (a workload's end), and its slot shape."""
    records, shape = get_records(WorkloadSpec(accounts=16, txs=300, invalid_share=0.0, seed=21))
    state = records[-1].state.copy()
    process_transaction(state, records[-1].tx, records[-1].signers)
    perp = next(i for i, inst in sorted(state.instruments.items()) if inst.is_perp and inst.mark and inst.risk_array)
    option = next(
        i for i, inst in sorted(state.instruments.items())
        if not inst.is_perp and inst.mark and inst.risk_array and state.globals.oracle_time < inst.spec.expiry
    )
    rich = sorted(state.accounts, key=lambda a: -state.accounts[a].collateral)[:2]
    return state, shape, perp, option, rich


def make_fill(state, instrument, taker, maker, *, size=3, price=None, fee=30, **overrides) -> Fill:
    """A fill of `size` (> 0: the taker buys) at the mark, both orders for 10 contracts."""
    price = price if price is not None else state.instruments[instrument].mark
    sides = dict(
        taker_nonce=1_000, maker_nonce=2_001, taker_order_size=10, maker_order_size=10,
        taker_limit=price + (100 if size > 0 else -100), maker_limit=price,
        taker_time_in_force=1, maker_time_in_force=0, taker_expiry=0, maker_expiry=0,
        taker_client_id=7, maker_client_id=8, taker_max_fee=10, maker_max_fee=0,
    )
    sides.update(overrides)
    return Fill(
        taker=taker, maker=maker, instrument=instrument, size=size, price=price, fee=fee,
        taker_signature=PLACEHOLDER, maker_signature=PLACEHOLDER, **sides,
    )


def signers(state, tx: Fill) -> tuple[int, int]:
    return ensure_key(state, tx.taker), ensure_key(state, tx.maker)


def run(state, tx: Fill):
    return process_transaction(state, tx, signers(state, tx))


@pytest.mark.parametrize("kind", ["perp", "option"])
@pytest.mark.parametrize("size", [3, -3])
def test_fill_trades_and_records_the_order_slots(market, kind, size):
    state, shape, perp, option, (taker, maker) = market
    state = state.copy()
    instrument = perp if kind == "perp" else option
    tx = make_fill(state, instrument, taker, maker, size=size)
    before_taker, before_maker = state.accounts[taker].copy(), state.accounts[maker].copy()
    receipt = run(state, tx)
    assert receipt.status == "accepted", receipt.reason
    t, m = state.accounts[taker], state.accounts[maker]
    held = before_taker.positions.get(instrument)
    assert (t.positions[instrument].size if instrument in t.positions else 0) == (held.size if held else 0) + size
    # account nonces do not move; the order slots hold (nonce, filled)
    assert (t.nonce, m.nonce) == (before_taker.nonce, before_maker.nonce)
    assert t.orders[1_000 % ORDER_SLOTS] == (1_000, 3) and m.orders[2_001 % ORDER_SLOTS] == (2_001, 3)
    if kind == "option":
        # the buyer pays the premium: the taker's collateral moves by -size x price - fee
        assert t.collateral - before_taker.collateral == -size * tx.price - tx.fee
    # the same orders fill again up to their size, and no further
    again = make_fill(state, instrument, taker, maker, size=7 if size > 0 else -7)
    assert run(state, again).status == "accepted"
    assert t.orders[1_000 % ORDER_SLOTS] == (1_000, 10)
    assert "would fill 11 of its 10" in run(state.copy(), make_fill(state, instrument, taker, maker, size=1 if size > 0 else -1, fee=10)).reason


INVALID = {
    "self_trade": (dict(same=True), "self-trade"),
    "zero_size": (dict(size=0), "zero size"),
    "taker_order_expired": (dict(taker_expiry="now"), "taker's order expired"),
    "maker_order_expired": (dict(maker_expiry="now"), "maker's order expired"),
    "price_above_buyer_limit": (dict(taker_limit=-1), "above the buyer's (taker's) limit"),
    "price_below_seller_limit": (dict(maker_limit=+1), "below the seller's (maker's) limit"),
    "fee_above_cap": (dict(fee=31), "above the taker's cap"),
    "overfill": (dict(taker_order_size=2), "would fill 3 of its 2"),
    "slot_holds_later_order": (dict(later=True), "can no longer fill"),
    "expired_series": (dict(expired_series=True), "has expired"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_fill(market, case):
    """Each check of process_fill refuses, changes nothing, and the circuit cannot prove it either."""
    state, shape, perp, option, (taker, maker) = market
    state = state.copy()
    change, reason = INVALID[case]
    change = dict(change)
    instrument = option if change.pop("expired_series", False) else perp
    if instrument == option:
        state.globals.oracle_time = state.instruments[option].spec.expiry
    if change.pop("same", False):
        maker = taker
    if change.pop("later", False):
        state.accounts[taker].orders[1_000 % ORDER_SLOTS] = (1_000 + ORDER_SLOTS, 1)
    price = state.instruments[instrument].mark
    for name in ("taker_expiry", "maker_expiry"):
        if change.get(name) == "now":
            change[name] = state.globals.oracle_time
    for name in ("taker_limit", "maker_limit"):
        if name in change:
            change[name] = price + change[name] + (100 if name == "taker_limit" and change[name] > 0 else 0)
    tx = make_fill(state, instrument, taker, maker, **change)
    expected_signers = signers(state, tx)  # registers the keys the rules expect
    snapshot = state.copy()
    receipt = process_transaction(state, tx, expected_signers)
    assert receipt.status == "rejected" and reason in receipt.reason, receipt.reason
    assert state.accounts == snapshot.accounts
    assert check_equivalence(snapshot, tx, (), shape) is False


@pytest.mark.parametrize("kind", ["perp", "option"])
def test_valid_fills_satisfy_the_circuit(market, kind):
    state, shape, perp, option, (taker, maker) = market
    state = state.copy()
    instrument = perp if kind == "perp" else option
    for size in (3, -2, 5):  # the second fill of each order slot adds to it
        tx = make_fill(state, instrument, taker, maker, size=size, fee=10 * abs(size), taker_nonce=1_000 + (size < 0), maker_nonce=2_001 + (size < 0))
        assert check_equivalence(state, tx, (), shape) is True
        run(state, tx)
    # a slot taken by a later order (nonce + ORDER_SLOTS) refuses the earlier one, in both
    later = make_fill(state, instrument, taker, maker, size=1, fee=10, taker_nonce=1_000 + ORDER_SLOTS)
    assert check_equivalence(state, later, (), shape) is True
    run(state, later)
    assert check_equivalence(state, make_fill(state, instrument, taker, maker, size=1, fee=10), (), shape) is False


def test_orders_are_signed_with_l2_keys(market):
    """Each side signs its own order; check_signers verifies each against its order's message."""
    state, shape, perp, option, (taker, maker) = market
    from rollup.signing import dev_account_key
    from verifier.l2auth import sign_l2

    domain = state.genesis.signing_domain
    keys = {a: derive_l2_key(dev_account_key(1, a), domain, 0) for a in (taker, maker)}
    fill = make_fill(state, perp, taker, maker)
    signed = {}
    for side in ("taker", "maker"):
        order = fill.get_order(side)
        signed[side] = order.model_copy(update={"signature": sign_l2(keys[order.account].private, compute_order_message(order, domain))})
    tx = Fill.from_orders(signed["taker"], signed["maker"], 3, fill.price, fill.fee)
    assert tx.get_order("taker") == signed["taker"] and tx.get_order("maker") == signed["maker"]
    assert check_signers(tx, domain) == (keys[taker].key_id, keys[maker].key_id)
    # the maker's signature does not pass for the taker's order
    swapped = tx.model_copy(update={"taker_signature": tx.maker_signature})
    with pytest.raises(Exception, match="does not match"):
        check_signers(swapped, domain)
    assert isinstance(signed["taker"], Order)


# --- whole segments: the transition circuit with the orders' L2 signatures ---------------------------


def _fill_witnesses(tamper=None):
    """Segments from genesis (the soundness harness's 1-slot genesis): two deposits, then a perpetual
    fill and an option fill between accounts 0 (taker) and 1 (maker), each order signed with its
    account's L2 key. `tamper(fill)` may change the last fill after signing."""
    from prover.circuits.transition_witness import compute_transition_witness
    from rollup.state import State
    from rollup.state_tree import PoseidonTree
    from tests.test_transition_soundness import GENESIS, KEY_IDS, L2_KEYS, OPENING, ORACLE, PERP, SERIES, SHAPE, TREE
    from verifier.l2auth import sign_l2

    domain = GENESIS.signing_domain
    state, tree = State.from_genesis(GENESIS), PoseidonTree(TREE)
    witnesses = []

    def segment(oracle, txs, signers):
        witnesses.append(compute_transition_witness(state, tree, SHAPE, 1, len(witnesses), oracle, [ORACLE] if oracle else None, txs, signers))
        for account_id, account in state.accounts.items():
            if account.l2_key == 0:
                account.l2_key = KEY_IDS[account_id]  # as the harness does: a key without its registration
                tree.update({account_id: compute_account_leaf_value(account, SHAPE)})

    for oracle, txs in OPENING:
        segment(oracle, txs, [[] for _ in txs])
    for instrument, size in ((PERP, 4), (SERIES, -2)):
        taker = Order(account=0, instrument=instrument, is_buy=size > 0, size=5, price=2 if size > 0 else 1, time_in_force=1, expiry=0,
                      client_id=1, nonce=40 + instrument, max_fee=1, signature=PLACEHOLDER)
        maker = Order(account=1, instrument=instrument, is_buy=size < 0, size=9, price=1, time_in_force=0, expiry=0,
                      client_id=2, nonce=70 + instrument, max_fee=0, signature=PLACEHOLDER)
        taker, maker = (o.model_copy(update={"signature": sign_l2(L2_KEYS[o.account], compute_order_message(o, domain))}) for o in (taker, maker))
        fill = Fill.from_orders(taker, maker, abs(size), 1, abs(size))
        if tamper is not None and instrument == SERIES:
            fill = tamper(fill)
        segment(None, [fill], [[KEY_IDS[0], KEY_IDS[1]]])
    return witnesses


def compute_account_leaf_value(account, shape):
    from prover.circuits.transition_witness import compute_account_leaf_value as leaf_value

    return leaf_value(account, shape)


def test_fill_segments_satisfy_the_transition_circuit():
    from prover.circuits.transition import build_transition_circuit
    from tests.test_transition_soundness import SHAPE

    witnesses = _fill_witnesses()
    for w in witnesses[-2:]:
        assert w.slots[0].flags[-1] == 1  # the fill flag
        build_transition_circuit(SHAPE, w).check()


@pytest.mark.parametrize(
    "change, gadget",
    [
        (lambda f: f.model_copy(update={"maker_limit": 2}), "signatures"),  # the maker signed a limit of 1
        (lambda f: f.model_copy(update={"maker_signature": f.taker_signature}), "key_id"),
        (lambda f: f.model_copy(update={"taker_client_id": 99}), "signatures"),  # unpublished, still signed
    ],
    ids=["limit_changed", "signature_swapped", "client_id_changed"],
)
def test_invalid_fill_order_not_as_signed(change, gadget):
    """A fill whose orders are not what their keys signed is refused by the circuit (the native pass
    refuses it in check_signers; here the witness builder is handed the honest signers)."""
    from prover.circuits.transition import build_transition_circuit
    from prover.r1cs import UnsatisfiedConstraint, WitnessError
    from tests.test_transition_soundness import SHAPE

    w = _fill_witnesses(tamper=change)[-1]
    with pytest.raises((UnsatisfiedConstraint, WitnessError)) as info:
        build_transition_circuit(SHAPE, w).check()
    assert gadget in str(info.value)


@pytest.mark.parametrize("word, value", [("time_in_force_a", 3), ("limit_b", 0)])
def test_invalid_order_word_outside_the_wire(market, word, value):
    """An order the wire cannot carry (time in force 3, a limit of 0: within their bits, so they
    pack) is refused by the slot even though the rules never read those fields."""
    from tests.test_slot_rules import compute_slot, is_satisfied

    state, shape, perp, option, (taker, maker) = market
    state = state.copy()
    tx = make_fill(state, perp, taker, maker, size=3)  # the taker buys: B (the maker) sells, so limit 0 passes its price check
    slot = compute_slot(state, tx, signers(state, tx), shape)
    assert is_satisfied(shape, [slot])
    setattr(slot.tx, word, value)
    assert not is_satisfied(shape, [slot])


def test_invalid_fill_of_orders_that_cannot_match(market):
    state, shape, perp, option, (taker, maker) = market
    fill = make_fill(state, perp, taker, maker)
    buyer = fill.get_order("taker")
    with pytest.raises(ValueError, match="orders do not match: taker buys instrument 0, maker buys"):
        Fill.from_orders(buyer, buyer.model_copy(update={"account": maker}), 1, fill.price, 0)
    with pytest.raises(ValueError, match="orders do not match"):
        Fill.from_orders(buyer, fill.get_order("maker").model_copy(update={"instrument": option}), 1, fill.price, 0)
