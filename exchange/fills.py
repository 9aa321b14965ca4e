"""From the matching engine to the rollup: a matched fill becomes a `Fill` transaction, and orders
whose fills could not settle are refused before they reach a book.

`build_fill` turns a `records.Fill` (maker and taker order ids, size, the maker's price) and the
two signed orders into `verifier.wire.Fill`, which the rules (`rollup.rules.process_fill`) and
the circuit check: both signatures, both limits, the taker's fee cap, both expiries at the L2
clock, and each order's filled amount in its account's order slot (`nonce % ORDER_SLOTS`).

`OrderSlots` is the sequencer's side of that slot rule. An account's order slot holds the last
order of that slot that filled, so two open orders of one account whose nonces share a slot
cannot both fill: once the later one fills, the earlier one never can, and a fill the engine
made for it would be refused by the rules after the book believed it. So at admission (before
matching, across all markets: slots are per account) an order is refused if an open order of the
same account uses its slot, or if its nonce is not above every nonce admitted in that slot before
(fills not yet executed included) and the one the state's slot holds: per slot, nonces increase.
That is stricter than the rules (an earlier order that never filled could still fill) and is the
only way the matcher and the rules could disagree about an order's filled amount.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from verifier.wire import ORDER_SLOTS, Fill, Order

from exchange.orders import InvalidOrder
from exchange.records import Fill as FillRecord


def compute_fill_fee(taker: Order, size: int, fee_per_contract: int) -> int:
    """The taker's fee: the exchange's rate per contract, capped by the order's `max_fee`."""
    return min(fee_per_contract, taker.max_fee) * size


def build_fill(record: FillRecord, orders: Mapping[str, Order], fee_per_contract: int = 0) -> Fill:
    """The rollup transaction of one fill: its orders by id (`orders` holds every order the
    sequencer admitted, signed), the maker's price, the fee at `fee_per_contract` (capped by the
    taker's `max_fee`). KeyError names an order the sequencer does not hold."""
    return make_fill_builder(fee_per_contract)(record, orders[record.maker_order_id], orders[record.taker_order_id])


def make_fill_builder(fee_per_contract: int = 0) -> Callable[[FillRecord, Order, Order], Fill]:
    """The service's seam (`service.sequencer.FillToTransaction`): (fill record, maker's order,
    taker's order) -> the `Fill` transaction, at the exchange's fee rate."""

    def build(record: FillRecord, maker: Order, taker: Order) -> Fill:
        return Fill.from_orders(taker, maker, record.size, record.price, compute_fill_fee(taker, record.size, fee_per_contract))

    return build


class OrderSlots:
    """Which open order uses each (account, order slot): refuse an order that could not settle."""

    def __init__(self, get_slot: Callable[[int, int], tuple[int, int] | None]):
        """`get_slot(account, slot)` is the state's (order nonce, filled) of the slot, or None."""
        self.get_slot = get_slot
        self.open: dict[tuple[int, int], tuple[str, int]] = {}  # (account, slot) -> (order id, nonce)
        self.highest: dict[tuple[int, int], int] = {}  # (account, slot) -> the highest nonce admitted

    def check(self, order: Order, order_id: str) -> None:
        """InvalidOrder if the order's slot is taken by another open order or by a later one in the state."""
        slot = order.nonce % ORDER_SLOTS
        held = self.open.get((order.account, slot))
        # one open order per slot: the later one's fill would void the earlier
        if held is not None and held[0] != order_id:
            raise InvalidOrder(
                f"order slot {slot} (nonce % {ORDER_SLOTS}) of account {order.account} is used by open order {held[0]} "
                f"(nonce {held[1]}): cancel it or choose a nonce in another slot"
            )
        stored = self.get_slot(order.account, slot)
        floor = max(self.highest.get((order.account, slot), -1), stored[0] if stored is not None else -1)
        # per slot, nonces increase: a slot that moved past this nonce would refuse its fills
        if order.nonce <= floor:
            raise InvalidOrder(
                f"order nonce {order.nonce} is not above {floor}, the last nonce of order slot {slot} "
                f"(nonce % {ORDER_SLOTS}) of account {order.account}: use a higher nonce"
            )

    def opened(self, order: Order, order_id: str) -> None:
        """The order was admitted (it may rest): its slot is taken, its nonce the slot's highest
        (also for an order the book then rejects, a post-only that would cross: stricter than
        needed, never wrong; `highest` keeps one nonce per used (account, slot))."""
        key = (order.account, order.nonce % ORDER_SLOTS)
        self.open[key] = (order_id, order.nonce)
        self.highest[key] = max(order.nonce, self.highest.get(key, -1))

    def closed(self, order: Order, order_id: str) -> None:
        """The order left the book (filled, cancelled, expired): its slot is free for another."""
        key = (order.account, order.nonce % ORDER_SLOTS)
        if self.open.get(key, (None,))[0] == order_id:
            del self.open[key]
