"""The sequencer: admits signed messages, matches them, journals them, and keeps the views the API
serves (orders by id, recent trades, sequence numbers) and the streams it publishes.

Everything runs on one thread (the event loop's): the order in which `submit` is called is the
order of the commands, the journal's and the books'. A message is journaled, with its records,
before `submit` returns, so what a client was told is accepted survives `kill -9`; on start,
`replay` feeds the journal back through a fresh engine and checks that it gives the same records.

Fills reach the rollup through one seam: `fill_to_transaction(fill, maker_order, taker_order)`
turns a `Fill` record and the two signed orders into a rollup transaction, which is journaled
with its command (one SQLite transaction) in the pending queue the batcher drains
(service/batcher.py). Without it (None), fills are matched and published but not batched.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from verifier.wire import Genesis

from exchange.engine import MatchingEngine, admit, to_command
from exchange.fills import OrderSlots
from exchange.orders import MESSAGE_TYPES, Cancel, InvalidOrder, Message, Order, compute_order_id
from exchange.records import (
    BookDelta,
    CancelRejected,
    Command,
    Fill,
    OrderUpdate,
    Record,
    Trade,
    encode_records,
)
from service.journal import Journal, JournalError

RECENT_TRADES = 1_000  # trades kept per market for GET /trades
STREAM_QUEUE = 10_000  # messages a subscriber may lag behind before it is dropped (it re-snapshots)
DROPPED = {"type": "error", "code": "slow_consumer", "message": "the stream fell too far behind; reconnect for a new snapshot"}
PENDING = "pending"  # an order before its command's records decided it (never visible outside)


class ServiceError(Exception):
    """A request the sequencer refuses; `status` is its HTTP status, `code` its stable name."""

    def __init__(self, message: str, status: int = 422, code: str = "invalid_order"):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class OrderState:
    """An order as the API shows it: the signed order and what the book has done with it."""

    order_id: str
    order: Order
    status: str = PENDING
    filled: int = 0
    remaining: int = 0
    reason: str = ""
    created_ms: int = 0
    updated_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "status": self.status,
            "filled": self.filled,
            "remaining": self.remaining,
            "reason": self.reason,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
            "order": self.order.model_dump(),
        }


@dataclass
class Accepted:
    """What one command did: its journal sequence number, the engine's records and the pending
    ids of the rollup transactions its fills became."""

    seq: int
    time_ms: int
    records: list[Record] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)


FillToTransaction = Callable[[Fill, Order, Order], Any]  # (fill record, maker's order, taker's order) -> a rollup transaction


def get_wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def record_to_json(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(record).__name__}
    out.update(record._asdict())
    if isinstance(record, BookDelta):
        out["bids"] = [list(level) for level in record.bids]
        out["asks"] = [list(level) for level in record.asks]
    return out


def trade_to_json(trade: Trade) -> dict[str, Any]:
    return {
        "market": trade.instrument,
        "trade_id": trade.trade_id,
        "price": trade.price,
        "size": trade.size,
        "side": "buy" if trade.taker_is_buy else "sell",  # the taker's side, as exchanges publish
        "time_ms": trade.time_ms,
    }


def delta_to_json(delta: BookDelta) -> dict[str, Any]:
    return {
        "type": "delta",
        "market": delta.instrument,
        "sequence": delta.sequence,
        "prev_sequence": delta.sequence - 1,
        "bids": [list(level) for level in delta.bids],
        "asks": [list(level) for level in delta.asks],
        "time_ms": delta.time_ms,
    }


class Sequencer:
    """A matching engine for the markets of `genesis`, its journal and its views.
    `get_key_id(account)` is the account's registered L2 key id in the rollup state (0: none yet;
    None: no such account)."""

    def __init__(
        self,
        genesis: Genesis,
        journal: Journal,
        get_key_id: Callable[[int], int | None],
        clock: Callable[[], int] = get_wall_clock_ms,
        book: str = "fast",
        fill_to_transaction: FillToTransaction | None = None,
        on_pending: Callable[[list[int]], None] | None = None,
        get_order_slot: Callable[[int, int], tuple[int, int] | None] | None = None,
        check_order: Callable[[Order], None] | None = None,
    ):
        """`get_order_slot(account, slot)`: the state's (order nonce, filled) of an account's order
        slot (exchange/fills.py: orders whose fills could not settle are refused at admission);
        `check_order(order)`: raises InvalidOrder for an order the rollup would refuse to fill
        (exchange/pretrade.py), or None: no pre-trade check."""
        self.check_order = check_order
        self.genesis = genesis
        self.slots = OrderSlots(get_order_slot or (lambda account, slot: None))
        self.fill_to_transaction = fill_to_transaction
        self.on_pending = on_pending  # told the pending ids a command queued (the batcher wakes up)
        self.domain = genesis.signing_domain
        self.journal = journal
        self.get_key_id = get_key_id
        self.clock = clock
        self.engine = MatchingEngine.from_genesis(genesis, book)
        self.names = {spec.id: spec.name for spec in genesis.instruments}
        self.orders: dict[str, OrderState] = {}
        self.trades: dict[int, deque[Trade]] = {m: deque(maxlen=RECENT_TRADES) for m in self.engine.books}
        self.book_streams: dict[int, set[asyncio.Queue]] = {m: set() for m in self.engine.books}
        self.trade_streams: dict[int, set[asyncio.Queue]] = {m: set() for m in self.engine.books}
        # per account: order updates and fills, numbered 1, 2, 3, ... (rebuilt identically by replay)
        self.account_streams: dict[int, set[asyncio.Queue]] = {}
        self.account_sequence: dict[int, int] = {}
        self.time_ms = 0
        self.failed: str | None = None  # set when the journal could not be written: nothing more is accepted

    # --- start ---------------------------------------------------------------------------------------

    def replay(self) -> int:
        """Rebuild books and views from the journal; the number of commands replayed. A journal whose
        records differ from what matching its messages gives is refused (JournalError)."""
        n = 0
        for entry in self.journal.read():
            kind = MESSAGE_TYPES.get(_get_message_type(entry.message))
            if kind is None:
                raise JournalError(f"journal command {entry.seq}: unknown message {entry.message[:80]!r}")
            message = kind.model_validate_json(entry.message)
            records = self.engine.process(to_command(message, self.genesis, entry.time_ms))
            # matching is deterministic: the same commands give the same records
            if encode_records(records) != entry.records:
                raise JournalError(
                    f"journal command {entry.seq}: matching its message gives other records than the journal holds "
                    "(the journal was written by another matcher version, or altered)"
                )
            self._apply(message, entry.time_ms, records)
            self.time_ms = entry.time_ms
            n += 1
        return n

    # --- commands ------------------------------------------------------------------------------------

    def submit(self, message: Message) -> Accepted:
        """Admit, match and journal one signed message; ServiceError (nothing changed) if refused."""
        # after a failed journal write the books are ahead of the journal: accept nothing more
        if self.failed is not None:
            raise ServiceError(f"the sequencer stopped accepting: {self.failed}", 503, "unavailable")
        key_id = self.get_key_id(message.account)
        # only an existing account can place or cancel orders
        if key_id is None:
            raise ServiceError(f"account {message.account} does not exist (no deposit has created it)", 404, "unknown_account")
        self._check_known(message)
        now = max(self.clock(), self.time_ms)  # the books refuse a clock that goes back
        try:
            command: Command = admit(message, self.genesis, key_id, now)
            if isinstance(message, Order):
                # an order whose fills the rules would refuse (its order slot, its margin) never reaches a book
                self.slots.check(message, command.order_id)  # type: ignore[union-attr]
                if self.check_order is not None:
                    self.check_order(message)
        except InvalidOrder as exc:
            raise ServiceError(str(exc)) from None
        records = self.engine.process(command)
        try:
            pending = self._build_fill_transactions(message, records)
            seq, ids = self.journal.append(now, message.model_dump_json(), encode_records(records), pending)
        except Exception as exc:  # disk full, I/O error, a fill that cannot be built: the engine moved, the journal did not
            self.failed = f"journal write failed: {type(exc).__name__}: {exc}"
            raise ServiceError(self.failed, 503, "unavailable") from None
        self.time_ms = now
        self._apply(message, now, records)
        if ids and self.on_pending is not None:
            self.on_pending(ids)
        return Accepted(seq, now, records, ids)

    def _build_fill_transactions(self, message: Message, records: list[Record]) -> list[tuple[str, str]]:
        """(source, wire JSON) of the rollup transaction of every fill in `records`, in record order."""
        if self.fill_to_transaction is None:
            return []
        out = []
        for record in records:
            if type(record) is Fill:
                maker = self.orders[record.maker_order_id].order
                # the taker is the message being matched (its view is made after journaling)
                taker = message if isinstance(message, Order) else self.orders[record.taker_order_id].order
                out.append(("fill", self.fill_to_transaction(record, maker, taker).model_dump_json()))
        return out

    def _check_known(self, message: Message) -> None:
        """Refusals that need the views, not the book: nothing is journaled for them."""
        if isinstance(message, Order):
            order_id = compute_order_id(message, self.domain)
            # an order id is the order's digest: the same order twice is one order
            if order_id in self.orders:
                raise ServiceError(f"duplicate order id {order_id}: this order was already received", 409, "duplicate_order")
        elif isinstance(message, Cancel):
            state = self.orders.get(message.order_id)
            # a cancel names an order this sequencer received
            if state is None:
                raise ServiceError(f"order {message.order_id} does not exist", 404, "unknown_order")
            # a cancel names the order's own market
            if state.order.instrument != message.instrument:
                raise ServiceError(
                    f"order {message.order_id} is on market {state.order.instrument}, the cancel names market {message.instrument}",
                    422,
                )

    def _apply(self, message: Message, time_ms: int, records: list[Record]) -> None:
        """Update the views with one command's records and publish them to the streams."""
        if isinstance(message, Order):
            order_id = compute_order_id(message, self.domain)
            self.orders[order_id] = OrderState(order_id, message, remaining=message.size, created_ms=time_ms, updated_ms=time_ms)
            self.slots.opened(message, order_id)
        for record in records:
            kind = type(record)
            if kind is Fill:
                for order_id in (record.maker_order_id, record.taker_order_id):
                    state = self.orders[order_id]
                    state.filled += record.size
                    state.remaining = state.order.size - state.filled
                    state.updated_ms = time_ms
                fill = {**record_to_json(record), "type": "fill"}
                self._publish_account(record.maker_account, fill)
                self._publish_account(record.taker_account, fill)
            elif kind is OrderUpdate:
                state = self.orders[record.order_id]
                state.status, state.filled, state.remaining, state.reason = record.status, record.filled, record.remaining, record.reason
                state.updated_ms = time_ms
                if record.status != "open":
                    self.slots.closed(state.order, record.order_id)  # off the book: its slot is free
                self._publish_account(state.order.account, {"type": "order", **state.to_json()})
            elif kind is Trade:
                self.trades[record.instrument].append(record)
                publish(self.trade_streams[record.instrument], {"type": "trade", **trade_to_json(record)})
            elif kind is BookDelta:
                publish(self.book_streams[record.instrument], delta_to_json(record))

    def _publish_account(self, account: int, item: dict[str, Any]) -> None:
        sequence = self.account_sequence.get(account, 0) + 1
        self.account_sequence[account] = sequence
        queues = self.account_streams.get(account)
        if queues:
            publish(queues, {**item, "account_sequence": sequence, "prev_account_sequence": sequence - 1})


    # --- views ---------------------------------------------------------------------------------------

    def check_market(self, market: int) -> None:
        # every market of the genesis has a book
        if market not in self.engine.books:
            known = ", ".join(f"{m} ({self.names[m]})" for m in sorted(self.engine.books))
            raise ServiceError(f"unknown market {market}; the genesis lists: {known}", 404, "unknown_market")

    def get_book(self, market: int) -> dict[str, Any]:
        """The book's levels and the sequence number of the last delta they include."""
        self.check_market(market)
        book = self.engine.books[market]
        bids, asks = book.get_levels()
        return {
            "type": "snapshot",
            "market": market,
            "name": self.names[market],
            "sequence": book.sequence,
            "bids": [list(level) for level in bids],
            "asks": [list(level) for level in asks],
            "time_ms": self.time_ms,
        }

    def get_order(self, order_id: str) -> OrderState:
        state = self.orders.get(order_id.lower())
        if state is None:
            raise ServiceError(f"order {order_id} does not exist", 404, "unknown_order")
        return state

    def get_open_orders(self, account: int) -> list[OrderState]:
        return [s for s in self.orders.values() if s.order.account == account and s.status == "open"]

    def subscribe(self, streams: dict[int, set[asyncio.Queue]], market: int) -> asyncio.Queue:
        self.check_market(market)
        queue: asyncio.Queue = asyncio.Queue()
        streams[market].add(queue)
        return queue

    def subscribe_account(self, account: int) -> tuple[asyncio.Queue, dict[str, Any]]:
        """A queue of the account's order updates and fills from now on, and the snapshot they follow."""
        queue: asyncio.Queue = asyncio.Queue()
        self.account_streams.setdefault(account, set()).add(queue)
        snapshot = {
            "type": "snapshot",
            "account": account,
            "account_sequence": self.account_sequence.get(account, 0),
            "open_orders": [s.to_json() for s in self.get_open_orders(account)],
        }
        return queue, snapshot

    def find_rejection(self, records: list[Record]) -> CancelRejected | None:
        return next((r for r in records if type(r) is CancelRejected), None)


def publish(queues: set[asyncio.Queue], item: dict[str, Any]) -> None:
    """Put `item` on every subscriber's queue (one stream's subscribers)."""
    for queue in list(queues):
        # a consumer this far behind has lost its place: it is told, dropped, and must re-snapshot
        if queue.qsize() >= STREAM_QUEUE:
            queues.discard(queue)
            queue.put_nowait(DROPPED)
        else:
            queue.put_nowait(item)


def _get_message_type(message_json: str) -> str:
    return json.loads(message_json).get("type", "")
