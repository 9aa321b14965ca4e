"""The reference order book: one market, price-time priority, written to be obviously correct.

Resting orders are one list in arrival order; the best maker is found by scanning it; the book
delta is the difference of two full snapshots. Slow (every step is linear in the book), and the
specification the fast book (exchange/book.py) must match record for record.

The rules, for one command at time `now`:
1. Orders whose expiry has come (expiry * 1000 <= now) leave the book, oldest expiry first
   (then arrival order): an expired order never fills.
2. A new order is rejected if its market has closed (option series expired), its id was seen
   before, it has expired, its nonce is below its account's cancel-all nonce, or it is post-only
   and would cross the book.
3. Otherwise it takes liquidity while the best opposite order's price is within its limit: best
   price first, then earliest arrival; each fill is at the maker's price for the smaller of the
   two remaining sizes. A maker of the taker's own account is cancelled instead (self-trade
   prevention, "cancel resting": the rollup refuses a trade with oneself).
4. What remains of a GTC or post-only order rests; an IOC remainder is cancelled.
5. A cancel removes an open order of its own account; a cancel-all removes every open order of
   the account with a lower nonce and raises the account's floor.
6. If any price level changed, one BookDelta with the next sequence number.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.orders import IOC, POST_ONLY, is_expired
from exchange.records import (
    CANCELLED,
    EXPIRED,
    FILLED,
    OPEN,
    REASON_CANCELLED,
    REASON_NONE,
    REASON_IOC_REMAINDER,
    REASON_SELF_TRADE,
    REJECTED,
    BookDelta,
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    Command,
    Fill,
    MatchingError,
    OrderUpdate,
    PlaceOrder,
    Record,
    Trade,
    reason_below_floor,
    reason_cancelled_all,
    reason_duplicate,
    reason_expired,
    reason_market_closed,
    reason_not_open,
    reason_not_owner,
    reason_post_only_crosses,
)

Levels = tuple[tuple[int, int], ...]


@dataclass
class RestingOrder:
    order_id: str
    account: int
    is_buy: bool
    price: int
    size: int
    remaining: int
    nonce: int
    expiry: int
    arrival: int  # position in the book's arrival order: time priority


class ReferenceBook:
    def __init__(self, instrument: int, closes_at_ms: int | None = None):
        self.instrument = instrument
        self.closes_at_ms = closes_at_ms  # an option series' expiry; None for a perpetual
        self.orders: list[RestingOrder] = []  # arrival order
        self.seen: set[str] = set()
        self.floors: dict[int, int] = {}  # account -> cancel-all nonce
        self.sequence = 0
        self.trade_id = 0
        self.time_ms = 0
        self.arrivals = 0

    # --- views -------------------------------------------------------------------------------------

    def get_levels(self) -> tuple[Levels, Levels]:
        """(bids best first, asks best first), each level as (price, total size)."""
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        for order in self.orders:
            side = bids if order.is_buy else asks
            side[order.price] = side.get(order.price, 0) + order.remaining
        return tuple(sorted(bids.items(), reverse=True)), tuple(sorted(asks.items()))

    def get_open_orders(self) -> list[tuple[str, int, bool, int, int]]:
        """(order id, account, is_buy, price, remaining) of every resting order, in arrival order."""
        return [(o.order_id, o.account, o.is_buy, o.price, o.remaining) for o in self.orders]

    # --- commands ----------------------------------------------------------------------------------

    def process(self, command: Command) -> list[Record]:
        # the clock is part of the input: it never goes back
        if command.time_ms < self.time_ms:
            raise MatchingError(f"market {self.instrument}: time {command.time_ms} ms is before {self.time_ms} ms")
        # a book takes its own market's commands (a cancel-all goes to every book)
        if not isinstance(command, CancelAllOrders) and command.instrument != self.instrument:
            raise MatchingError(f"a command for market {command.instrument} reached the book of market {self.instrument}")
        self.time_ms = command.time_ms
        before = self.get_levels()
        out = self._expire(command.time_ms)
        if isinstance(command, PlaceOrder):
            out += self._place(command)
        elif isinstance(command, CancelOrder):
            out += self._cancel(command)
        elif isinstance(command, CancelAllOrders):
            out += self._cancel_all(command)
        else:
            raise MatchingError(f"unknown command {type(command).__name__}")
        after = self.get_levels()
        bids = _diff(before[0], after[0], descending=True)
        asks = _diff(before[1], after[1], descending=False)
        if bids or asks:
            self.sequence += 1
            out.append(BookDelta(self.instrument, self.sequence, bids, asks, command.time_ms))
        return out

    def _update(self, order: RestingOrder, status: str, reason: str, now: int) -> OrderUpdate:
        remaining = order.remaining if status == OPEN else 0
        return OrderUpdate(self.instrument, order.order_id, order.account, status, order.size - order.remaining, remaining, reason, now)

    def _expire(self, now: int) -> list[Record]:
        expired = sorted((o for o in self.orders if is_expired(o.expiry, now)), key=lambda o: (o.expiry, o.arrival))
        for order in expired:
            self.orders.remove(order)
        return [self._update(o, EXPIRED, reason_expired(o.expiry), now) for o in expired]

    def _get_rejection(self, cmd: PlaceOrder) -> str | None:
        if self.closes_at_ms is not None and cmd.time_ms >= self.closes_at_ms:
            return reason_market_closed(self.closes_at_ms)
        if cmd.order_id in self.seen:
            return reason_duplicate(cmd.order_id)
        if is_expired(cmd.expiry, cmd.time_ms):
            return reason_expired(cmd.expiry)
        floor = self.floors.get(cmd.account, 0)
        if cmd.nonce < floor:
            return reason_below_floor(cmd.nonce, cmd.account, floor)
        if cmd.time_in_force == POST_ONLY:
            makers = [o.price for o in self.orders if o.is_buy != cmd.is_buy and _crosses(cmd.is_buy, cmd.price, o.price)]
            if makers:
                return reason_post_only_crosses(cmd.is_buy, min(makers) if cmd.is_buy else max(makers))
        return None

    def _place(self, cmd: PlaceOrder) -> list[Record]:
        now = cmd.time_ms
        taker = RestingOrder(cmd.order_id, cmd.account, cmd.is_buy, cmd.price, cmd.size, cmd.size, cmd.nonce, cmd.expiry, self.arrivals)
        rejection = self._get_rejection(cmd)
        if rejection is not None:
            return [OrderUpdate(self.instrument, cmd.order_id, cmd.account, REJECTED, 0, 0, rejection, now)]
        self.seen.add(cmd.order_id)
        self.arrivals += 1
        out: list[Record] = []
        while taker.remaining > 0:
            makers = [o for o in self.orders if o.is_buy != taker.is_buy and _crosses(taker.is_buy, taker.price, o.price)]
            if not makers:
                break
            maker = min(makers, key=lambda o: (o.price if taker.is_buy else -o.price, o.arrival))
            if maker.account == taker.account:
                self.orders.remove(maker)
                out.append(self._update(maker, CANCELLED, REASON_SELF_TRADE, now))
                continue
            size = min(maker.remaining, taker.remaining)
            maker.remaining -= size
            taker.remaining -= size
            self.trade_id += 1
            out.append(Fill(self.instrument, self.trade_id, maker.order_id, taker.order_id, maker.account, taker.account, taker.is_buy, maker.price, size, now))
            out.append(Trade(self.instrument, self.trade_id, maker.price, size, taker.is_buy, now))
            if maker.remaining == 0:
                self.orders.remove(maker)
                out.append(self._update(maker, FILLED, REASON_NONE, now))
        if taker.remaining == 0:
            out.append(self._update(taker, FILLED, REASON_NONE, now))
        elif cmd.time_in_force == IOC:
            out.append(self._update(taker, CANCELLED, REASON_IOC_REMAINDER, now))
        else:
            self.orders.append(taker)
            out.append(self._update(taker, OPEN, REASON_NONE, now))
        return out

    def _cancel(self, cmd: CancelOrder) -> list[Record]:
        target = [o for o in self.orders if o.order_id == cmd.order_id]
        if not target:
            return [CancelRejected(self.instrument, cmd.order_id, cmd.account, reason_not_open(cmd.order_id, self.instrument), cmd.time_ms)]
        if target[0].account != cmd.account:
            return [CancelRejected(self.instrument, cmd.order_id, cmd.account, reason_not_owner(cmd.order_id, cmd.account), cmd.time_ms)]
        self.orders.remove(target[0])
        return [self._update(target[0], CANCELLED, REASON_CANCELLED, cmd.time_ms)]

    def _cancel_all(self, cmd: CancelAllOrders) -> list[Record]:
        self.floors[cmd.account] = max(self.floors.get(cmd.account, 0), cmd.nonce)
        cancelled = [o for o in self.orders if o.account == cmd.account and o.nonce < cmd.nonce]
        for order in cancelled:
            self.orders.remove(order)
        return [self._update(o, CANCELLED, reason_cancelled_all(cmd.nonce), cmd.time_ms) for o in cancelled]


def _crosses(taker_is_buy: bool, limit: int, maker_price: int) -> bool:
    return maker_price <= limit if taker_is_buy else maker_price >= limit


def _diff(before: Levels, after: Levels, descending: bool) -> Levels:
    old, new = dict(before), dict(after)
    changed = {price: new.get(price, 0) for price in old.keys() | new.keys() if old.get(price, 0) != new.get(price, 0)}
    return tuple(sorted(changed.items(), reverse=descending))
