"""The order book: one suite over the reference and the fast matcher, scenario vectors and
hypothesis properties (fast == reference, never crossed, fills within limits, filled <= size,
conservation, gap-free deltas that rebuild the book, determinism)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.engine import BOOKS, MatchingEngine
from exchange.orders import GTC, IOC, POST_ONLY
from exchange.records import (
    CANCELLED,
    EXPIRED,
    FILLED,
    OPEN,
    REJECTED,
    BookDelta,
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    Fill,
    MatchingError,
    OrderUpdate,
    PlaceOrder,
    Trade,
)

T0 = 1_767_225_600_000  # ms


def oid(n: int) -> str:
    return f"0x{n:064x}"


def place(n: int, account: int, is_buy: bool, size: int, price: int, tif: int = GTC, expiry: int = 0, nonce: int | None = None, t: int = T0, market: int = 0) -> PlaceOrder:
    return PlaceOrder(t, oid(n), account, market, is_buy, size, price, tif, expiry, n if nonce is None else nonce)


@pytest.fixture(params=sorted(BOOKS))
def book_kind(request) -> str:
    return request.param


@pytest.fixture
def book(book_kind):
    return BOOKS[book_kind](0, None)


def of(records, kind):
    return [r for r in records if type(r) is kind]


# --- vectors ---------------------------------------------------------------------------------------


def test_resting_and_delta(book) -> None:
    out = book.process(place(1, 1, True, 5, 100))
    assert out == [OrderUpdate(0, oid(1), 1, OPEN, 0, 5, "", T0), BookDelta(0, 1, ((100, 5),), (), T0)]
    out = book.process(place(2, 2, False, 3, 101))
    assert out[-1] == BookDelta(0, 2, (), ((101, 3),), T0)
    assert book.get_levels() == (((100, 5),), ((101, 3),))


def test_price_time_priority(book) -> None:
    book.process(place(1, 1, False, 2, 101))
    book.process(place(2, 2, False, 2, 100))
    book.process(place(3, 3, False, 2, 100))
    out = book.process(place(4, 4, True, 5, 101))
    fills = of(out, Fill)
    # best price first, then earliest arrival; each at the maker's price
    assert [(f.maker_order_id, f.price, f.size) for f in fills] == [(oid(2), 100, 2), (oid(3), 100, 2), (oid(1), 101, 1)]
    assert [f.trade_id for f in fills] == [1, 2, 3]
    assert of(out, Trade) == [Trade(0, i + 1, f.price, f.size, True, T0) for i, f in enumerate(fills)]
    assert out[-2] == OrderUpdate(0, oid(4), 4, FILLED, 5, 0, "", T0)
    assert out[-1] == BookDelta(0, 4, (), ((100, 0), (101, 1)), T0)


def test_partial_fill_rests_remainder(book) -> None:
    book.process(place(1, 1, False, 3, 100))
    out = book.process(place(2, 2, True, 5, 102))
    assert of(out, Fill) == [Fill(0, 1, oid(1), oid(2), 1, 2, True, 100, 3, T0)]
    assert out[-2] == OrderUpdate(0, oid(2), 2, OPEN, 3, 2, "", T0)
    assert book.get_levels() == (((102, 2),), ())


def test_maker_partially_filled_stays(book) -> None:
    book.process(place(1, 1, True, 10, 100))
    out = book.process(place(2, 2, False, 4, 99))
    assert of(out, Fill)[0].price == 100
    assert OrderUpdate(0, oid(1), 1, FILLED, 10, 0, "", T0) not in out
    assert book.get_levels() == (((100, 6),), ())
    assert book.get_open_orders() == [(oid(1), 1, True, 100, 6)]


def test_no_fill_beyond_limit(book) -> None:
    book.process(place(1, 1, False, 3, 101))
    out = book.process(place(2, 2, True, 3, 100))
    assert of(out, Fill) == []
    assert book.get_levels() == (((100, 3),), ((101, 3),))


def test_ioc(book) -> None:
    book.process(place(1, 1, False, 2, 100))
    out = book.process(place(2, 2, True, 5, 100, IOC))
    assert of(out, Fill)[0].size == 2
    assert out[-2] == OrderUpdate(0, oid(2), 2, CANCELLED, 2, 0, "IOC: remainder cancelled", T0)
    assert book.get_levels() == ((), ())
    out = book.process(place(3, 2, True, 5, 100, IOC))
    assert out == [OrderUpdate(0, oid(3), 2, CANCELLED, 0, 0, "IOC: remainder cancelled", T0)]


def test_post_only(book) -> None:
    book.process(place(1, 1, False, 2, 101))
    out = book.process(place(2, 2, True, 1, 101, POST_ONLY))
    assert out == [OrderUpdate(0, oid(2), 2, REJECTED, 0, 0, "post-only order would cross the best ask at 101", T0)]
    out = book.process(place(3, 2, True, 1, 100, POST_ONLY))
    assert out[0].status == OPEN
    out = book.process(place(4, 1, False, 1, 100, POST_ONLY))
    assert out[0].reason == "post-only order would cross the best bid at 100"


def test_expired_order_never_fills(book) -> None:
    expiry = T0 // 1000 + 10
    book.process(place(1, 1, False, 2, 100, expiry=expiry))
    book.process(place(2, 1, False, 2, 101))
    # one millisecond before the expiry it would still fill; at the expiry it is gone
    out = book.process(place(3, 2, True, 2, 101, t=expiry * 1000))
    assert out[0] == OrderUpdate(0, oid(1), 1, EXPIRED, 0, 0, f"expired at {expiry}", expiry * 1000)
    assert [f.maker_order_id for f in of(out, Fill)] == [oid(2)]


def test_expiry_applies_on_any_command(book) -> None:
    expiry = T0 // 1000 + 1
    book.process(place(1, 1, True, 2, 100, expiry=expiry))
    out = book.process(CancelOrder(expiry * 1000 - 1, 1, 0, oid(9)))
    assert of(out, OrderUpdate) == []
    out = book.process(CancelOrder(expiry * 1000, 1, 0, oid(9)))
    assert of(out, OrderUpdate)[0].status == EXPIRED
    assert out[-1] == BookDelta(0, 2, ((100, 0),), (), expiry * 1000)


def test_expired_on_arrival(book) -> None:
    out = book.process(place(1, 1, True, 2, 100, expiry=T0 // 1000))
    assert out == [OrderUpdate(0, oid(1), 1, REJECTED, 0, 0, f"expired at {T0 // 1000}", T0)]


def test_cancel(book) -> None:
    book.process(place(1, 1, True, 2, 100))
    assert book.process(CancelOrder(T0, 2, 0, oid(1))) == [
        CancelRejected(0, oid(1), 2, f"order {oid(1)} does not belong to account 2", T0)
    ]
    out = book.process(CancelOrder(T0, 1, 0, oid(1)))
    assert out == [OrderUpdate(0, oid(1), 1, CANCELLED, 0, 0, "cancelled by owner", T0), BookDelta(0, 2, ((100, 0),), (), T0)]
    assert book.process(CancelOrder(T0, 1, 0, oid(1))) == [CancelRejected(0, oid(1), 1, f"order {oid(1)} is not open on market 0", T0)]


def test_cancel_all(book) -> None:
    book.process(place(1, 1, True, 2, 100, nonce=5))
    book.process(place(2, 1, True, 2, 99, nonce=7))
    book.process(place(3, 2, True, 2, 99, nonce=1))
    out = book.process(CancelAllOrders(T0, 1, 7))
    assert of(out, OrderUpdate) == [OrderUpdate(0, oid(1), 1, CANCELLED, 0, 0, "cancel-all: order nonce below 7", T0)]
    # a later order below the floor is void; at the floor it is fine
    out = book.process(place(4, 1, True, 1, 98, nonce=6))
    assert out[0].reason == "order nonce 6 is below account 1's cancel-all nonce 7"
    assert book.process(place(5, 1, True, 1, 98, nonce=7))[0].status == OPEN
    # a replayed, lower cancel-all does not lower the floor
    book.process(CancelAllOrders(T0, 1, 3))
    assert book.process(place(6, 1, True, 1, 98, nonce=6))[0].status == REJECTED


def test_self_trade_prevention(book) -> None:
    book.process(place(1, 1, False, 2, 100))
    book.process(place(2, 2, False, 2, 100))
    out = book.process(place(3, 1, True, 3, 100))
    assert out[0] == OrderUpdate(0, oid(1), 1, CANCELLED, 0, 0, "self-trade prevention: the resting order was cancelled (it met an order of its own account)", T0)
    assert [(f.maker_account, f.taker_account, f.size) for f in of(out, Fill)] == [(2, 1, 2)]


def test_duplicate_order_id(book) -> None:
    book.process(place(1, 1, True, 2, 100))
    out = book.process(place(1, 1, True, 2, 100))
    assert out == [OrderUpdate(0, oid(1), 1, REJECTED, 0, 0, f"duplicate order id {oid(1)}: this order was already received", T0)]


def test_market_closed(book_kind) -> None:
    book = BOOKS[book_kind](5, T0 + 1000)
    assert book.process(place(1, 1, True, 2, 100, market=5, t=T0 + 999))[0].status == OPEN
    assert book.process(place(2, 1, True, 2, 100, market=5, t=T0 + 1000))[0].reason == f"market closed at {T0 // 1000 + 1} (option series expired)"


def test_invalid_clock_and_routing(book) -> None:
    book.process(place(1, 1, True, 2, 100, t=T0 + 5))
    with pytest.raises(MatchingError, match=f"time {T0} ms is before {T0 + 5} ms"):
        book.process(place(2, 1, True, 2, 100, t=T0))
    with pytest.raises(MatchingError, match="a command for market 3 reached the book of market 0"):
        book.process(place(3, 1, True, 2, 100, t=T0 + 5, market=3))


def test_engine_cancel_all_every_market(book_kind) -> None:
    engine = MatchingEngine([(0, None), (1, None), (2, T0 + 10_000)], book_kind)
    engine.process(place(1, 1, True, 2, 100, market=2))
    engine.process(place(2, 1, True, 2, 100, market=0))
    out = engine.process(CancelAllOrders(T0, 1, 100))
    assert [r.instrument for r in out] == [0, 0, 2, 2]
    with pytest.raises(MatchingError, match=r"no book for market 7 here \(books: \[0, 1, 2\]\)"):
        engine.process(place(3, 1, True, 2, 100, market=7))


def test_unknown_book() -> None:
    with pytest.raises(MatchingError, match="unknown book 'turbo'; choose one of: fast, reference"):
        MatchingEngine([(0, None)], "turbo")


# --- properties ----------------------------------------------------------------------------------


@st.composite
def command_streams(draw, markets: tuple[int, ...] = (0,), max_size: int = 60):
    """Random commands on a few accounts and a narrow price band, so that orders cross, rest,
    expire, self-trade, get cancelled (some cancels name unknown or foreign orders)."""
    n = draw(st.integers(1, max_size))
    t = T0
    commands, placed = [], []
    for i in range(n):
        t += draw(st.sampled_from([0, 0, 1, 400, 1500]))
        kind = draw(st.sampled_from(["place"] * 7 + ["cancel", "cancel_all"]))
        account = draw(st.integers(0, 3))
        if kind == "cancel" and placed:
            target, market = draw(st.sampled_from(placed))
            commands.append(CancelOrder(t, account, market, target))
        elif kind == "cancel_all":
            commands.append(CancelAllOrders(t, account, draw(st.integers(0, i + 1))))
        else:
            market = draw(st.sampled_from(markets))
            expiry = draw(st.sampled_from([0, 0, t // 1000, t // 1000 + 1, t // 1000 + 2]))
            previous = [c for c in commands if type(c) is PlaceOrder]
            if previous and draw(st.integers(0, 19)) == 0:
                # the same signed order again (same id, same content)
                commands.append(previous[-1]._replace(time_ms=t))
                continue
            commands.append(PlaceOrder(
                t, oid(i), account, market, draw(st.booleans()), draw(st.integers(1, 6)), draw(st.integers(97, 103)),
                draw(st.sampled_from([GTC, GTC, IOC, POST_ONLY])), expiry, i,
            ))
            placed.append((oid(i), market))
    return commands


def run(kind: str, commands, markets=((0, None),)):
    engine = MatchingEngine(markets, kind)
    per_command = [engine.process(c) for c in commands]
    return engine, per_command


@settings(max_examples=150, deadline=None)
@given(command_streams())
def test_fast_equals_reference(commands) -> None:
    fast, fast_out = run("fast", commands)
    reference, reference_out = run("reference", commands)
    assert fast_out == reference_out
    assert fast.books[0].get_levels() == reference.books[0].get_levels()
    assert fast.books[0].get_open_orders() == reference.books[0].get_open_orders()


@settings(max_examples=60, deadline=None)
@given(command_streams(markets=(0, 1, 2), max_size=80))
def test_fast_equals_reference_many_markets(commands) -> None:
    markets = ((0, None), (1, None), (2, T0 + 3_000))
    assert run("fast", commands, markets)[1] == run("reference", commands, markets)[1]


@settings(max_examples=150, deadline=None)
@given(command_streams())
def test_matching_invariants(commands) -> None:
    """Checked on the fast book (equal to the reference by the test above)."""
    engine = MatchingEngine([(0, None)], "fast")
    book = engine.books[0]
    orders = {c.order_id: c for c in commands if type(c) is PlaceOrder}
    filled: dict[str, int] = {}
    positions: dict[int, int] = {}
    mirror: tuple[dict[int, int], dict[int, int]] = ({}, {})
    sequence = 0
    final: dict[str, OrderUpdate] = {}
    for command in commands:
        out = engine.process(command)
        for record in out:
            if type(record) is Fill:
                maker, taker = orders[record.maker_order_id], orders[record.taker_order_id]
                # the price respects both limits and is the maker's
                assert record.price == maker.price
                assert record.price <= taker.price if taker.is_buy else record.price >= taker.price
                assert maker.is_buy != taker.is_buy and record.taker_is_buy == taker.is_buy
                # never a trade with oneself
                assert record.maker_account != record.taker_account
                for order_id in (record.maker_order_id, record.taker_order_id):
                    filled[order_id] = filled.get(order_id, 0) + record.size
                    # filled <= size
                    assert filled[order_id] <= orders[order_id].size
                buyer, seller = (taker, maker) if taker.is_buy else (maker, taker)
                positions[buyer.account] = positions.get(buyer.account, 0) + record.size
                positions[seller.account] = positions.get(seller.account, 0) - record.size
                # an expired order never fills
                assert not (maker.expiry and record.time_ms >= maker.expiry * 1000)
            elif type(record) is BookDelta:
                # gap-free sequence; applying the deltas rebuilds the book
                assert record.sequence == sequence + 1
                sequence = record.sequence
                for side, levels in zip(mirror, (record.bids, record.asks)):
                    for price, size in levels:
                        if size:
                            side[price] = size
                        else:
                            side.pop(price, None)
            elif type(record) is OrderUpdate and record.status != REJECTED:
                final[record.order_id] = record
                # the update's cumulative fill agrees with the fills
                assert record.filled == filled.get(record.order_id, 0)
        bids, asks = book.get_levels()
        # never crossed
        if bids and asks:
            assert bids[0][0] < asks[0][0]
        assert (tuple(sorted(mirror[0].items(), reverse=True)), tuple(sorted(mirror[1].items()))) == (bids, asks)
    # conservation: every contract of an accepted order is filled, open, or was cancelled/expired
    open_orders = {order_id: remaining for order_id, _, _, _, remaining in book.get_open_orders()}
    for order_id, update in final.items():
        size = orders[order_id].size
        if update.status == OPEN:
            assert open_orders[order_id] + filled.get(order_id, 0) == size
        elif update.status == FILLED:
            assert filled[order_id] == size and order_id not in open_orders
        else:
            assert update.status in (CANCELLED, EXPIRED) and order_id not in open_orders
    # contracts bought == contracts sold
    assert sum(positions.values()) == 0


@settings(max_examples=40, deadline=None)
@given(command_streams(markets=(0, 1), max_size=40))
def test_deterministic(commands) -> None:
    markets = ((0, None), (1, None))
    assert run("fast", commands, markets)[1] == run("fast", commands, markets)[1]
