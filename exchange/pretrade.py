"""The pre-trade margin check: refuse an order whose full fill the rollup's rules would refuse.

A fill the book makes but the rules reject (`rollup.rules.process_fill`: collateral, position
count, initial margin) leaves the book believing a trade happened that never settles. The check
runs the rules' own arithmetic (`rollup.rules.compute_position_change`, `check_side`) on the
account as the node's state holds it, for the order filled in full at its limit price with its
largest fee: if that would break a rule, the order is refused before it reaches a book, with the
rule's reason.

What it does not see (stated in docs/exchange.md): fills matched but not yet executed in a
batch, the account's other open orders filling too, and price moves between admission and the
fill. A partial fill of a risk-increasing order needs less margin than the full one (margin is
monotone in the size of one position's increase), so checking the full fill covers every
partial fill of this order alone.
"""

from __future__ import annotations

from rollup.rules import InvalidTransaction, check_side, compute_fill_flows, compute_position_change
from rollup.state import State
from verifier.wire import Order

from exchange.orders import InvalidOrder


def check_order_margin(state: State, order: Order) -> None:
    """InvalidOrder (with the rule's reason) if `order`, filled in full at its limit, would be
    refused by the rules on the account as `state` holds it."""
    account = state.accounts.get(order.account)
    # the account exists (admission checked its key; a deposit made it)
    if account is None:
        raise InvalidOrder(f"account {order.account} does not exist")
    instrument = state.instruments.get(order.instrument)
    # only an instrument with an oracle mark and risk array can be valued and margined
    if instrument is None or instrument.mark is None or instrument.risk_array is None:
        raise InvalidOrder(f"instrument {order.instrument} has no oracle mark and risk array yet: its fills could not settle")
    size = order.size if order.is_buy else -order.size
    # as the taker, with the most it pays in fees (the rules' cash flows of a fill)
    cash, _, cost = compute_fill_flows(instrument, size, order.price, order.max_fee * order.size)
    collateral, positions, _, risk_up = compute_position_change(account, order.instrument, instrument, size, cost, cash)
    try:
        check_side(state, order.account, collateral, positions, risk_up)
    except InvalidTransaction as exc:
        raise InvalidOrder(f"the order filled in full would be refused by the rollup: {exc}") from None
