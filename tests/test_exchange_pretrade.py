"""The pre-trade margin check (exchange/pretrade.py) against the rules: an order it admits, filled
in full against a counterparty with ample margin, is accepted by `process_fill`; one it refuses is
refused by the rules for the same reason."""

from __future__ import annotations

import random

import pytest

from exchange.orders import GTC, InvalidOrder
from exchange.pretrade import check_order_margin
from rollup.fixtures import HOT_ACCOUNT, WorkloadSpec, generate_workload
from rollup.node import Node
from rollup.rules import process_transaction
from rollup.signing import PLACEHOLDER_L2_SIGNATURE
from verifier.wire import Fill, Order


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    workload = generate_workload(WorkloadSpec(accounts=12, perps=2, series=2, txs=200, seed=5), workers=1)
    node = Node.init(tmp_path_factory.mktemp("pretrade") / "home", workload.genesis, max_batch_txs=None)
    node.submit(workload.transactions)
    out = node.state.copy()
    node.close()
    return out


def make_order(account, instrument, is_buy, size, price, nonce=10**9, max_fee=0) -> Order:  # a nonce no workload order used
    return Order(account=account, instrument=instrument, is_buy=is_buy, size=size, price=price, time_in_force=GTC, expiry=0,
                 client_id=0, nonce=nonce, max_fee=max_fee, signature=PLACEHOLDER_L2_SIGNATURE)


def fill_in_full(state, order: Order, counterparty: int) -> str | None:
    """The rules' verdict on the order filled in full against `counterparty` (None: accepted)."""
    other = make_order(counterparty, order.instrument, not order.is_buy, order.size, order.price, nonce=10**9 + 1)
    tx = Fill.from_orders(order, other, order.size, order.price, order.max_fee * order.size)
    s = state.copy()
    for account_id in (order.account, counterparty):
        s.accounts[account_id].l2_key = s.accounts[account_id].l2_key or 1
    receipt = process_transaction(s, tx, (s.accounts[order.account].l2_key, s.accounts[counterparty].l2_key))
    return None if receipt.status == "accepted" else receipt.reason


def test_check_agrees_with_the_rules(state):
    """Random orders (both sides, perps and live series, sizes from small to far beyond margin):
    admitted exactly when the rules accept their full fill against the rich hot account."""
    rng = random.Random(3)
    tradable = [i for i, inst in sorted(state.instruments.items())
                if inst.mark and inst.risk_array and (inst.is_perp or state.globals.oracle_time < inst.spec.expiry)]
    verdicts = {"admitted": 0, "refused": 0}
    for _ in range(300):
        account = rng.choice([a for a in state.accounts if a != HOT_ACCOUNT])
        instrument = rng.choice(tradable)
        mark = state.instruments[instrument].mark
        order = make_order(account, instrument, rng.random() < 0.5, rng.choice((1, 3, 10, 100, 10_000, 10**6)),
                           max(1, round(mark * rng.uniform(0.9, 1.1))), max_fee=rng.choice((0, 5, 10**6)))
        reason = fill_in_full(state, order, HOT_ACCOUNT)
        try:
            check_order_margin(state, order)
        except InvalidOrder as exc:
            assert reason is not None, f"refused an order the rules accept: {exc}"
            assert reason in str(exc)
            verdicts["refused"] += 1
            continue
        assert reason is None, f"admitted an order the rules refuse: {reason}"
        verdicts["admitted"] += 1
    assert verdicts["admitted"] > 30 and verdicts["refused"] > 30, verdicts


def test_invalid_order_beyond_initial_margin(state):
    account = next(a for a in sorted(state.accounts) if a != HOT_ACCOUNT)
    perp = next(i for i, inst in sorted(state.instruments.items()) if inst.is_perp)
    with pytest.raises(InvalidOrder, match="would be refused by the rollup: insufficient margin"):
        check_order_margin(state, make_order(account, perp, True, 10**7, state.instruments[perp].mark))


def test_reducing_a_position_needs_no_margin(state):
    """An order that only reduces a position passes even for an account below margin."""
    s = state.copy()
    account, instrument, position = next(
        (a, i, p) for a, acct in sorted(s.accounts.items()) for i, p in sorted(acct.positions.items()) if a != HOT_ACCOUNT
    )
    s.accounts[account].collateral = 0  # far below any margin
    closing = make_order(account, instrument, position.size < 0, abs(position.size), s.instruments[instrument].mark)
    if fill_in_full(s, closing, HOT_ACCOUNT) is None:  # closing realises the cost: the rules decide
        check_order_margin(s, closing)
    with pytest.raises(InvalidOrder):
        check_order_margin(s, make_order(account, instrument, position.size > 0, 1, s.instruments[instrument].mark))


def test_invalid_order_without_a_mark(state):
    s = state.copy()
    instrument = next(iter(sorted(s.instruments)))
    s.instruments[instrument].mark = None
    with pytest.raises(InvalidOrder, match="has no oracle mark and risk array yet"):
        check_order_margin(s, make_order(next(iter(s.accounts)), instrument, True, 1, 10))
