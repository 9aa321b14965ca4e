"""From the book to the rollup: orders signed with L2 keys, matched by the engine, turned into
`Fill` transactions that a real node accepts; the order-slot admission rule (exchange/fills.py)."""

from __future__ import annotations

import random

import pytest

from exchange.engine import MatchingEngine, admit
from exchange.fills import OrderSlots, build_fill, compute_fill_fee
from exchange.orders import GTC, IOC, InvalidOrder, Order, compute_order_id, sign_message
from exchange.records import Fill as FillRecord
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.node import Node
from rollup.signing import PLACEHOLDER_L2_SIGNATURE, derive_l2_key, dev_account_key
from verifier.wire import ORDER_SLOTS

SPEC = WorkloadSpec(accounts=8, perps=1, series=2, txs=40, mix={"transfer": 1, "register_key": 1}, seed=3)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """A node after a small workload: funded accounts, marks and risk arrays; each account's L2 key."""
    workload = generate_workload(SPEC, workers=1)
    node = Node.init(tmp_path_factory.mktemp("fills") / "home", workload.genesis)
    node.submit(workload.transactions)
    domain = workload.genesis.signing_domain
    keys = {}
    for account_id, account in node.state.accounts.items():
        candidates = (derive_l2_key(dev_account_key(SPEC.seed, account_id), domain, i) for i in range(16))
        keys[account_id] = next((k for k in candidates if k.key_id == account.l2_key), None)
    traders = sorted(a for a, k in keys.items() if k is not None)
    assert len(traders) >= 4, "the workload registers keys for most accounts"
    yield node, keys, traders
    node.close()


def signed_order(node, keys, account, nonce, **fields) -> Order:
    base = dict(account=account, instrument=0, is_buy=True, size=3, price=node.state.instruments[0].mark, time_in_force=GTC,
                expiry=0, client_id=nonce, nonce=nonce, max_fee=5, signature=PLACEHOLDER_L2_SIGNATURE)
    return sign_message(Order.model_validate({**base, **fields}), keys[account], node.genesis.signing_domain)


def test_matched_orders_settle_as_fills(market):
    """Random crossing orders on one market, matched by the engine; every fill becomes a Fill the
    node accepts (ample collateral, one contract at a time), and the state's order slots end with
    what the engine filled."""
    node, keys, traders = market
    rng = random.Random(5)
    engine = MatchingEngine.from_genesis(node.genesis)
    slots = OrderSlots(lambda account, slot: node.state.accounts[account].orders.get(slot))
    mark = node.state.instruments[0].mark
    orders, filled, fills = {}, {}, []
    now = node.state.globals.oracle_time * 1000
    for i in range(60):
        account = rng.choice(traders)
        order = signed_order(node, keys, account, 1_000 + i, is_buy=rng.random() < 0.5, size=rng.randint(1, 3),
                             price=mark + rng.randint(-2, 2) * 1_000, time_in_force=rng.choice((GTC, IOC)))
        order_id = compute_order_id(order, node.genesis.signing_domain)
        try:
            slots.check(order, order_id)
        except InvalidOrder:
            continue
        slots.opened(order, order_id)
        orders[order_id] = order
        now += 1
        for record in engine.process(admit(order, node.genesis, node.state.accounts[account].l2_key, now)):
            if isinstance(record, FillRecord):
                fills.append(build_fill(record, orders, fee_per_contract=3))
                for side in (record.maker_order_id, record.taker_order_id):
                    filled[side] = filled.get(side, 0) + record.size
    assert len(fills) >= 5
    result = node.submit(fills)
    rejected = [r.reason for r in result.receipts if r.status != "accepted"]
    assert not rejected, rejected
    for order_id, amount in filled.items():
        order = orders[order_id]
        assert node.state.accounts[order.account].orders[order.nonce % ORDER_SLOTS] == (order.nonce, amount)
    # the fee is the rate capped by the taker's max_fee
    assert all(f.fee == 3 * abs(f.size) for f in fills)


def test_fee_is_capped_by_the_taker():
    order = Order(account=1, instrument=0, is_buy=True, size=5, price=10, time_in_force=IOC, expiry=0, client_id=0, nonce=1,
                  max_fee=2, signature=PLACEHOLDER_L2_SIGNATURE)
    assert compute_fill_fee(order, 4, 3) == 8
    assert compute_fill_fee(order, 4, 1) == 4


def test_invalid_order_slot_used_by_an_open_order(market):
    node, keys, traders = market
    slots = OrderSlots(lambda account, slot: None)
    first = signed_order(node, keys, traders[0], 5)
    slots.opened(first, "0x01")
    with pytest.raises(InvalidOrder, match="order slot 5 .* is used by open order 0x01 \\(nonce 5\\)"):
        slots.check(signed_order(node, keys, traders[0], 5 + ORDER_SLOTS), "0x02")
    # another account, or another slot, is free
    slots.check(signed_order(node, keys, traders[1], 5 + ORDER_SLOTS), "0x03")
    slots.check(signed_order(node, keys, traders[0], 6), "0x04")
    # once the first order leaves the book, a later nonce may take its slot; an earlier one may not
    slots.closed(first, "0x01")
    slots.check(signed_order(node, keys, traders[0], 5 + ORDER_SLOTS), "0x02")
    with pytest.raises(InvalidOrder, match="order nonce 5 is not above 5, the last nonce of order slot 5"):
        slots.check(signed_order(node, keys, traders[0], 5, client_id=9), "0x05")


def test_invalid_order_slot_behind_the_state():
    slots = OrderSlots(lambda account, slot: (2 * ORDER_SLOTS + slot, 1))
    order = Order(account=1, instrument=0, is_buy=True, size=5, price=10, time_in_force=GTC, expiry=0, client_id=0,
                  nonce=ORDER_SLOTS + 1, max_fee=0, signature=PLACEHOLDER_L2_SIGNATURE)
    with pytest.raises(InvalidOrder, match=f"not above {2 * ORDER_SLOTS + 1}"):
        slots.check(order, "0x01")
