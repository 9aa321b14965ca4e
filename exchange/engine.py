"""The matching engine: one book per market of the genesis, and the admission of signed messages.

`admit` turns a signed message into a command (signature by the account's registered L2 key,
genesis and clock checks: `InvalidOrder` with the reason otherwise); `MatchingEngine.process` runs a command
through its book(s) and returns the records. A cancel-all goes to every book, in instrument
order: that order is part of the output, which parallel matching reproduces
(exchange/parallel.py).
"""

from __future__ import annotations

from typing import Callable, Iterable, Protocol, Sequence

from verifier.wire import Genesis, InstrumentSpec, OptionSeriesSpec

from exchange.book import OrderBook
from exchange.book_reference import ReferenceBook
from exchange.orders import (
    MS_PER_SECOND,
    Cancel,
    CancelAll,
    InvalidOrder,
    Message,
    Order,
    check_cancel,
    check_order,
    check_signer,
    compute_order_id,
)
from exchange.records import CancelAllOrders, CancelOrder, Command, MatchingError, PlaceOrder, Record


class Book(Protocol):
    instrument: int

    def process(self, command: Command) -> list[Record]: ...

    def get_levels(self) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]: ...


BookFactory = Callable[[int, "int | None"], Book]
BOOKS: dict[str, BookFactory] = {"fast": OrderBook, "reference": ReferenceBook}


def get_closing_time_ms(spec: InstrumentSpec) -> int | None:
    """When a market stops trading: an option series at its expiry, a perpetual never."""
    return spec.expiry * MS_PER_SECOND if isinstance(spec, OptionSeriesSpec) else None


class MatchingEngine:
    """Books for `markets` ((instrument id, closing time in ms or None) pairs), all in this process."""

    def __init__(self, markets: Iterable[tuple[int, int | None]], book: str = "fast"):
        # one of the two matchers with the same API
        if book not in BOOKS:
            raise MatchingError(f"unknown book {book!r}; choose one of: {', '.join(BOOKS)}")
        self.book = book
        self.books: dict[int, Book] = {instrument: BOOKS[book](instrument, closes) for instrument, closes in sorted(markets)}
        self._ordered = [self.books[i] for i in sorted(self.books)]

    @classmethod
    def from_genesis(cls, genesis: Genesis, book: str = "fast") -> "MatchingEngine":
        return cls(get_markets(genesis), book)

    def process(self, command: Command) -> list[Record]:
        if type(command) is CancelAllOrders:
            out: list[Record] = []
            for book in self._ordered:
                out += book.process(command)
            return out
        book = self.books.get(command.instrument)
        # the router sends a market's commands to the engine that holds its book
        if book is None:
            raise MatchingError(f"no book for market {command.instrument} here (books: {sorted(self.books)})")
        return book.process(command)

    def process_all(self, commands: Iterable[Command]) -> list[Record]:
        out: list[Record] = []
        for command in commands:
            out += self.process(command)
        return out


def get_markets(genesis: Genesis) -> list[tuple[int, int | None]]:
    return [(spec.id, get_closing_time_ms(spec)) for spec in genesis.instruments]


# --- admission ---------------------------------------------------------------------------------------


def to_command(message: Message, genesis: Genesis, now_ms: int) -> Command:
    """The command for a message already checked (no signature or genesis check here)."""
    if isinstance(message, Order):
        return PlaceOrder(
            now_ms,
            compute_order_id(message, genesis.signing_domain),
            message.account,
            message.instrument,
            message.is_buy,
            message.size,
            message.price,
            message.time_in_force,
            message.expiry,
            message.nonce,
        )
    if isinstance(message, Cancel):
        return CancelOrder(now_ms, message.account, message.instrument, message.order_id)
    if isinstance(message, CancelAll):
        return CancelAllOrders(now_ms, message.account, message.nonce)
    raise InvalidOrder(f"not an order message: {type(message).__name__}")


def admit(message: Message, genesis: Genesis, account_key_id: int, now_ms: int) -> Command:
    """Check a signed message (signed by the L2 key whose id is `account_key_id`, the account's in
    the state; valid for the genesis at `now_ms`) and return its command; InvalidOrder says what
    is wrong."""
    check_signer(message, genesis.signing_domain, account_key_id)
    if isinstance(message, Order):
        check_order(message, genesis, now_ms)
    elif isinstance(message, Cancel):
        check_cancel(message, genesis)
    return to_command(message, genesis, now_ms)


def admit_all(messages: Sequence[Message], genesis: Genesis, key_ids: dict[int, int], now_ms: int) -> list[Command]:
    """`admit` each message; an account absent from `key_ids` (account -> its L2 key id) is refused."""
    commands = []
    for message in messages:
        key_id = key_ids.get(message.account)
        # only an existing account can trade
        if key_id is None:
            raise InvalidOrder(f"account {message.account} does not exist")
        commands.append(admit(message, genesis, key_id, now_ms))
    return commands
