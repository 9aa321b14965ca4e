"""The fast order book: the reference's rules (exchange/book_reference.py) and records, with
price levels instead of a scan.

Each side is a dict price -> level (an OrderedDict of resting orders in arrival order: O(1)
append, removal by id and oldest-first), a heap of the side's prices (keys `sign * price`, so
both sides use a min-heap and one matching loop; stale prices are dropped when they surface),
and a dict of level totals. An id index serves cancels, a per-account index serves cancel-all,
a heap of (expiry, arrival) serves expiry. A command records each level's total before it first
touches it; the delta lists the levels whose total differs at the end.
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
        self._touched: dict[tuple[bool, int], int] = {}  # (is_bid, price) -> total before this command

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
        touched = self._touched
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
        if touched:
            self._emit_delta(now, out)
        return out

    def _emit_delta(self, now: int, out: list[Record]) -> None:
        bid_totals, ask_totals = self.bids.totals, self.asks.totals
        bids, asks = [], []
        for (is_bid, price), before in self._touched.items():
            after = (bid_totals if is_bid else ask_totals).get(price, 0)
            if after != before:
                (bids if is_bid else asks).append((price, after))
        self._touched = {}
        if bids or asks:
            bids.sort(reverse=True)
            asks.sort()
            self.sequence += 1
            out.append(BookDelta(self.instrument, self.sequence, tuple(bids), tuple(asks), now))

    def _touch(self, is_bid: bool, price: int, totals: dict[int, int]) -> None:
        key = (is_bid, price)
        if key not in self._touched:
            self._touched[key] = totals.get(price, 0)

    def _remove(self, order: RestingOrder) -> None:
        """Take an order off the book (its `remaining` still counted in its level's total)."""
        side = self.bids if order.is_buy else self.asks
        price = order.price
        self._touch(order.is_buy, price, side.totals)
        del self.orders[order.order_id]
        mine = self.by_account[order.account]
        del mine[order.order_id]
        if not mine:
            del self.by_account[order.account]
        level = side.levels[price]
        del level[order.order_id]
        if level:
            side.totals[price] -= order.remaining
        else:
            del side.levels[price]
            del side.totals[price]

    def _rest(self, order: RestingOrder) -> None:
        side = self.bids if order.is_buy else self.asks
        price = order.price
        self._touch(order.is_buy, price, side.totals)
        level = side.levels.get(price)
        if level is None:
            level = side.add_level(price)
        level[order.order_id] = order
        side.totals[price] += order.remaining
        self.orders[order.order_id] = order
        mine = self.by_account.get(order.account)
        if mine is None:
            mine = self.by_account[order.account] = {}
        mine[order.order_id] = order
        if order.expiry:
            heappush(self.expiries, (order.expiry, order.arrival, order.order_id))

    def _update(self, order: RestingOrder, status: str, reason: str, now: int) -> OrderUpdate:
        remaining = order.remaining if status == OPEN else 0
        return OrderUpdate(self.instrument, order.order_id, order.account, status, order.size - order.remaining, remaining, reason, now)

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
        now = cmd.time_ms
        rejection = self._get_rejection(cmd)
        if rejection is not None:
            out.append(OrderUpdate(self.instrument, cmd.order_id, cmd.account, REJECTED, 0, 0, rejection, now))
            return
        self.seen.add(cmd.order_id)
        taker = RestingOrder(cmd.order_id, cmd.account, cmd.is_buy, cmd.price, cmd.size, cmd.nonce, cmd.expiry, self.arrivals)
        self.arrivals += 1
        is_buy = cmd.is_buy
        side = self.asks if is_buy else self.bids
        sign, levels, heap, totals = side.sign, side.levels, side.heap, side.totals
        limit_key = sign * cmd.price
        maker_is_bid = not is_buy
        touched = self._touched
        instrument, taker_id, taker_account = self.instrument, cmd.order_id, cmd.account
        remaining = cmd.size
        while remaining:
            # the best opposite price (a stale heap top is dropped by get_best_price)
            if not heap or heap[0] > limit_key:
                break
            price = heap[0] * sign
            if price not in levels:
                side.get_best_price()
                continue
            level = levels[price]
            maker = next(iter(level.values()))
            if maker.account == taker_account:
                self._remove(maker)
                out.append(self._update(maker, CANCELLED, REASON_SELF_TRADE, now))
                continue
            key = (maker_is_bid, price)
            if key not in touched:
                touched[key] = totals[price]
            size = maker.remaining if maker.remaining < remaining else remaining
            remaining -= size
            self.trade_id += 1
            out.append(Fill(instrument, self.trade_id, maker.order_id, taker_id, maker.account, taker_account, is_buy, price, size, now))
            out.append(Trade(instrument, self.trade_id, price, size, is_buy, now))
            if size == maker.remaining:
                self._remove(maker)
                maker.remaining = 0
                out.append(OrderUpdate(instrument, maker.order_id, maker.account, FILLED, maker.size, 0, REASON_NONE, now))
            else:
                maker.remaining -= size
                totals[price] -= size
        taker.remaining = remaining
        if remaining == 0:
            out.append(OrderUpdate(instrument, taker_id, taker_account, FILLED, cmd.size, 0, REASON_NONE, now))
        elif cmd.time_in_force == IOC:
            out.append(OrderUpdate(instrument, taker_id, taker_account, CANCELLED, cmd.size - remaining, 0, REASON_IOC_REMAINDER, now))
        else:
            self._rest(taker)
            out.append(OrderUpdate(instrument, taker_id, taker_account, OPEN, cmd.size - remaining, remaining, REASON_NONE, now))

    def _cancel(self, cmd: CancelOrder, out: list[Record]) -> None:
        order = self.orders.get(cmd.order_id)
        if order is None:
            out.append(CancelRejected(self.instrument, cmd.order_id, cmd.account, reason_not_open(cmd.order_id, self.instrument), cmd.time_ms))
        elif order.account != cmd.account:
            out.append(CancelRejected(self.instrument, cmd.order_id, cmd.account, reason_not_owner(cmd.order_id, cmd.account), cmd.time_ms))
        else:
            self._remove(order)
            out.append(self._update(order, CANCELLED, REASON_CANCELLED, cmd.time_ms))

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
