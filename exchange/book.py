"""The fast order book: the reference's rules (exchange/book_reference.py) and records, with
price levels instead of a scan.

Each side is a dict price -> level (an OrderedDict of resting orders in arrival order: O(1)
append, removal by id and oldest-first), a heap of the side's prices (keys `sign * price`, so
both sides use a min-heap and one matching loop; stale prices are dropped when they surface),
and a dict of level totals. An id index serves cancels, a per-account index serves cancel-all,
a heap of (expiry, arrival) serves expiry. A command records each level's total before it first
touches it (one dict per side, kept and cleared: no per-command allocation); the delta lists the
levels whose total differs at the end.

Where the time goes (cProfile of benchmarks/matching_bench.py's stream, docs/exchange.md): the
common paths (a quote that rests, a taker that fills the first maker, a cancel) run inline in
`_place` and `_cancel`, with the rejection checks as one condition that falls back to
`_get_rejection` only when some check may fail.
"""

from __future__ import annotations

from collections import OrderedDict
from heapq import heappop, heappush

from exchange.orders import IOC, MS_PER_SECOND, POST_ONLY, is_expired
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
# Records are made with tuple.__new__: a NamedTuple's own __new__ is a Python function, a fifth of a
# command's time on the benchmark stream; the field order is the record's (the tests compare records).
_new = tuple.__new__


class RestingOrder:
    __slots__ = ("order_id", "account", "is_buy", "price", "size", "remaining", "nonce", "expiry", "arrival")

    def __init__(self, order_id: str, account: int, is_buy: bool, price: int, size: int, nonce: int, expiry: int, arrival: int):
        self.order_id = order_id
        self.account = account
        self.is_buy = is_buy
        self.price = price
        self.size = size
        self.remaining = size
        self.nonce = nonce
        self.expiry = expiry
        self.arrival = arrival


class _Side:
    """One side of the book. `sign` is -1 for bids (best = highest), +1 for asks (best = lowest)."""

    __slots__ = ("sign", "levels", "heap", "in_heap", "totals")

    def __init__(self, sign: int):
        self.sign = sign
        self.levels: dict[int, OrderedDict[str, RestingOrder]] = {}
        self.heap: list[int] = []  # sign * price; a price whose level emptied stays until it surfaces
        self.in_heap: set[int] = set()  # prices in the heap: a price re-listed is pushed once
        self.totals: dict[int, int] = {}

    def get_best_price(self) -> int | None:
        heap, levels = self.heap, self.levels
        while heap:
            price = heap[0] * self.sign
            if price in levels:
                return price
            heappop(heap)
            self.in_heap.discard(price)
        return None

    def add_level(self, price: int) -> OrderedDict[str, RestingOrder]:
        level = self.levels[price] = OrderedDict()
        self.totals[price] = 0
        if price not in self.in_heap:
            self.in_heap.add(price)
            heappush(self.heap, self.sign * price)
        return level


class OrderBook:
    def __init__(self, instrument: int, closes_at_ms: int | None = None):
        self.instrument = instrument
        self.closes_at_ms = closes_at_ms
        self.bids = _Side(-1)
        self.asks = _Side(1)
        self.orders: dict[str, RestingOrder] = {}
        self.by_account: dict[int, dict[str, RestingOrder]] = {}  # insertion order = arrival order
        self.expiries: list[tuple[int, int, str]] = []  # (expiry, arrival, id), with stale entries
        self.seen: set[str] = set()
        self.floors: dict[int, int] = {}
        self.sequence = 0
        self.trade_id = 0
        self.time_ms = 0
        self.arrivals = 0
        # price -> the level's total before this command, per side (bids, asks)
        self._touched: tuple[dict[int, int], dict[int, int]] = ({}, {})

    # --- views -------------------------------------------------------------------------------------

    def get_levels(self) -> tuple[Levels, Levels]:
        """(bids best first, asks best first), each level as (price, total size)."""
        return tuple(sorted(self.bids.totals.items(), reverse=True)), tuple(sorted(self.asks.totals.items()))

    def get_open_orders(self) -> list[tuple[str, int, bool, int, int]]:
        """(order id, account, is_buy, price, remaining) of every resting order, in arrival order."""
        ordered = sorted(self.orders.values(), key=lambda o: o.arrival)
        return [(o.order_id, o.account, o.is_buy, o.price, o.remaining) for o in ordered]

    # --- commands ----------------------------------------------------------------------------------

    def process(self, command: Command) -> list[Record]:
        now = command.time_ms
        # the clock is part of the input: it never goes back
        if now < self.time_ms:
            raise MatchingError(f"market {self.instrument}: time {now} ms is before {self.time_ms} ms")
        kind = type(command)
        # a book takes its own market's commands (a cancel-all goes to every book)
        if kind is not CancelAllOrders and command.instrument != self.instrument:
            raise MatchingError(f"a command for market {command.instrument} reached the book of market {self.instrument}")
        self.time_ms = now
        out: list[Record] = []
        expiries = self.expiries
        if expiries and expiries[0][0] * MS_PER_SECOND <= now:
            self._expire(now, out)
        if kind is PlaceOrder:
            self._place(command, out)
        elif kind is CancelOrder:
            self._cancel(command, out)
        elif kind is CancelAllOrders:
            self._cancel_all(command, out)
        else:
            raise MatchingError(f"unknown command {kind.__name__}")
        touched_bids, touched_asks = self._touched
        if touched_bids or touched_asks:
            bids = _get_changed(touched_bids, self.bids.totals, True) if touched_bids else ()
            asks = _get_changed(touched_asks, self.asks.totals, False) if touched_asks else ()
            if bids or asks:
                self.sequence += 1
                out.append(_new(BookDelta, (self.instrument, self.sequence, bids, asks, now)))
        return out

    def _remove(self, order: RestingOrder) -> None:
        """Take an order off the book (its `remaining` still counted in its level's total)."""
        is_buy, price, order_id = order.is_buy, order.price, order.order_id
        side = self.bids if is_buy else self.asks
        totals = side.totals
        touched = self._touched[0 if is_buy else 1]
        if price not in touched:
            touched[price] = totals[price]
        del self.orders[order_id]
        mine = self.by_account[order.account]
        del mine[order_id]
        if not mine:
            del self.by_account[order.account]
        level = side.levels[price]
        del level[order_id]
        if level:
            totals[price] -= order.remaining
        else:
            del side.levels[price]
            del totals[price]

    def _update(self, order: RestingOrder, status: str, reason: str, now: int) -> OrderUpdate:
        remaining = order.remaining if status == OPEN else 0
        return _new(OrderUpdate, (self.instrument, order.order_id, order.account, status, order.size - order.remaining, remaining, reason, now))

    def _expire(self, now: int, out: list[Record]) -> None:
        expiries, orders = self.expiries, self.orders
        while expiries and expiries[0][0] * MS_PER_SECOND <= now:
            expiry, _, order_id = heappop(expiries)
            order = orders.get(order_id)
            if order is not None:  # not filled or cancelled meanwhile
                self._remove(order)
                out.append(self._update(order, EXPIRED, reason_expired(expiry), now))

    def _get_rejection(self, cmd: PlaceOrder) -> str | None:
        if self.closes_at_ms is not None and cmd.time_ms >= self.closes_at_ms:
            return reason_market_closed(self.closes_at_ms)
        if cmd.order_id in self.seen:
            return reason_duplicate(cmd.order_id)
        if cmd.expiry and is_expired(cmd.expiry, cmd.time_ms):
            return reason_expired(cmd.expiry)
        floor = self.floors.get(cmd.account, 0)
        if cmd.nonce < floor:
            return reason_below_floor(cmd.nonce, cmd.account, floor)
        if cmd.time_in_force == POST_ONLY:
            best = (self.asks if cmd.is_buy else self.bids).get_best_price()
            if best is not None and (best <= cmd.price if cmd.is_buy else best >= cmd.price):
                return reason_post_only_crosses(cmd.is_buy, best)
        return None

    def _place(self, cmd: PlaceOrder, out: list[Record]) -> None:
        now, taker_id, taker_account, is_buy, size, limit, time_in_force, expiry, nonce = (
            cmd.time_ms, cmd.order_id, cmd.account, cmd.is_buy, cmd.size, cmd.price, cmd.time_in_force, cmd.expiry, cmd.nonce
        )
        instrument = self.instrument
        seen = self.seen
        # one condition for the common case; _get_rejection says which rule failed, if one did
        if (
            time_in_force == POST_ONLY
            or taker_id in seen
            or (self.closes_at_ms is not None and now >= self.closes_at_ms)
            or (expiry and now >= expiry * MS_PER_SECOND)
            or nonce < self.floors.get(taker_account, 0)
        ):
            rejection = self._get_rejection(cmd)
            if rejection is not None:
                out.append(_new(OrderUpdate, (instrument, taker_id, taker_account, REJECTED, 0, 0, rejection, now)))
                return
        seen.add(taker_id)
        arrival = self.arrivals
        self.arrivals = arrival + 1
        remaining = size
        side = self.asks if is_buy else self.bids
        heap = side.heap
        if heap and heap[0] <= side.sign * limit:
            remaining = self._take(cmd, side, out)
        if remaining == 0:
            out.append(_new(OrderUpdate, (instrument, taker_id, taker_account, FILLED, size, 0, REASON_NONE, now)))
        elif time_in_force == IOC:
            out.append(_new(OrderUpdate, (instrument, taker_id, taker_account, CANCELLED, size - remaining, 0, REASON_IOC_REMAINDER, now)))
        else:
            # the remainder rests
            order = RestingOrder(taker_id, taker_account, is_buy, limit, size, nonce, expiry, arrival)
            order.remaining = remaining
            own = self.bids if is_buy else self.asks
            totals = own.totals
            level = own.levels.get(limit)
            touched = self._touched[0 if is_buy else 1]
            if level is None:
                if limit not in touched:
                    touched[limit] = 0
                level = own.add_level(limit)
            elif limit not in touched:
                touched[limit] = totals[limit]
            level[taker_id] = order
            totals[limit] += remaining
            self.orders[taker_id] = order
            mine = self.by_account.get(taker_account)
            if mine is None:
                self.by_account[taker_account] = {taker_id: order}
            else:
                mine[taker_id] = order
            if expiry:
                heappush(self.expiries, (expiry, arrival, taker_id))
            out.append(_new(OrderUpdate, (instrument, taker_id, taker_account, OPEN, size - remaining, remaining, REASON_NONE, now)))

    def _take(self, cmd: PlaceOrder, side: _Side, out: list[Record]) -> int:
        """Match the taker `cmd` against `side` (the opposite side) within its limit; what is left."""
        now, taker_id, taker_account, is_buy = cmd.time_ms, cmd.order_id, cmd.account, cmd.is_buy
        sign, levels, heap, totals = side.sign, side.levels, side.heap, side.totals
        limit_key = sign * cmd.price
        touched = self._touched[1 if is_buy else 0]
        orders, by_account = self.orders, self.by_account
        instrument = self.instrument
        remaining = cmd.size
        while remaining:
            # the best opposite price (a stale heap top is dropped by get_best_price)
            if not heap or heap[0] > limit_key:
                break
            price = heap[0] * sign
            level = levels.get(price)
            if level is None:
                side.get_best_price()
                continue
            for maker in level.values():
                break
            if maker.account == taker_account:
                self._remove(maker)
                out.append(self._update(maker, CANCELLED, REASON_SELF_TRADE, now))
                continue
            if price not in touched:
                touched[price] = totals[price]
            maker_remaining = maker.remaining
            size = maker_remaining if maker_remaining < remaining else remaining
            remaining -= size
            trade_id = self.trade_id = self.trade_id + 1
            maker_id = maker.order_id
            out.append(_new(Fill, (instrument, trade_id, maker_id, taker_id, maker.account, taker_account, is_buy, price, size, now)))
            out.append(_new(Trade, (instrument, trade_id, price, size, is_buy, now)))
            if size == maker_remaining:
                # the maker leaves the book, filled
                del level[maker_id]
                if level:
                    totals[price] -= size
                else:
                    del levels[price]
                    del totals[price]
                del orders[maker_id]
                mine = by_account[maker.account]
                del mine[maker_id]
                if not mine:
                    del by_account[maker.account]
                maker.remaining = 0
                out.append(_new(OrderUpdate, (instrument, maker_id, maker.account, FILLED, maker.size, 0, REASON_NONE, now)))
            else:
                maker.remaining = maker_remaining - size
                totals[price] -= size
        return remaining

    def _cancel(self, cmd: CancelOrder, out: list[Record]) -> None:
        order = self.orders.get(cmd.order_id)
        if order is None:
            out.append(_new(CancelRejected, (self.instrument, cmd.order_id, cmd.account, reason_not_open(cmd.order_id, self.instrument), cmd.time_ms)))
        elif order.account != cmd.account:
            out.append(_new(CancelRejected, (self.instrument, cmd.order_id, cmd.account, reason_not_owner(cmd.order_id, cmd.account), cmd.time_ms)))
        else:
            self._remove(order)
            out.append(_new(OrderUpdate, (self.instrument, order.order_id, order.account, CANCELLED, order.size - order.remaining, 0, REASON_CANCELLED, cmd.time_ms)))

    def _cancel_all(self, cmd: CancelAllOrders, out: list[Record]) -> None:
        if cmd.nonce > self.floors.get(cmd.account, 0):
            self.floors[cmd.account] = cmd.nonce
        mine = self.by_account.get(cmd.account)
        if not mine:
            return
        reason = reason_cancelled_all(cmd.nonce)
        for order in [o for o in mine.values() if o.nonce < cmd.nonce]:
            self._remove(order)
            out.append(self._update(order, CANCELLED, reason, cmd.time_ms))


def _get_changed(touched: dict[int, int], totals: dict[int, int], descending: bool) -> Levels:
    """The touched levels whose total differs from before, best first; clears `touched`."""
    changed = []
    for price, before in touched.items():
        after = totals.get(price, 0)
        if after != before:
            changed.append((price, after))
    touched.clear()
    if len(changed) > 1:
        changed.sort(reverse=descending)
    return tuple(changed)
