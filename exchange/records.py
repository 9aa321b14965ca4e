"""What a matcher takes in (commands) and gives out (fills, trades, book deltas, order updates).

Commands are admitted messages (signature and genesis checks done, see exchange/engine.py's
`admit`), stamped with the sequencer's clock `time_ms` (unix milliseconds), which never goes
back: the clock is part of the input, so matching is a pure function of the command sequence.
Records are plain tuples of integers and strings: cheap to make, to pickle across processes and
to compare byte for byte. Every record names its instrument first (the parallel merge orders the
records of a cancel-all by it).
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Callable, Iterable, NamedTuple, Union

# --- commands --------------------------------------------------------------------------------------


class PlaceOrder(NamedTuple):
    time_ms: int
    order_id: str  # the order's EIP-712 digest, 0x-hex
    account: int
    instrument: int
    is_buy: bool
    size: int
    price: int
    time_in_force: int  # exchange.orders.GTC / IOC / POST_ONLY
    expiry: int  # unix seconds, 0: none
    nonce: int


class CancelOrder(NamedTuple):
    time_ms: int
    account: int
    instrument: int
    order_id: str


class CancelAllOrders(NamedTuple):
    """Sent to every book (in instrument order when matching sequentially)."""

    time_ms: int
    account: int
    nonce: int


Command = Union[PlaceOrder, CancelOrder, CancelAllOrders]

# --- records ---------------------------------------------------------------------------------------

OPEN = "open"  # resting on the book (possibly partly filled)
FILLED = "filled"
CANCELLED = "cancelled"
EXPIRED = "expired"
REJECTED = "rejected"


class Fill(NamedTuple):
    """Private: who traded with whom. The price is the maker's."""

    instrument: int
    trade_id: int  # per market, from 1, in matching order
    maker_order_id: str
    taker_order_id: str
    maker_account: int
    taker_account: int
    taker_is_buy: bool
    price: int
    size: int
    time_ms: int


class Trade(NamedTuple):
    """Public: the tape."""

    instrument: int
    trade_id: int
    price: int
    size: int
    taker_is_buy: bool
    time_ms: int


class BookDelta(NamedTuple):
    """The price levels a command changed, each as (price, total size after; 0 = level gone),
    bids best (highest) first, asks best (lowest) first. `sequence` counts a market's deltas from
    1 without gaps: a consumer that sees n + 2 after n lost one and must take a new snapshot (as
    with Deribit's change_id / prev_change_id)."""

    instrument: int
    sequence: int
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]
    time_ms: int


class OrderUpdate(NamedTuple):
    """An order's state after a command that decided it: the taker after matching (open, filled,
    cancelled for an IOC remainder, rejected) and a maker leaving the book (filled, cancelled,
    expired). Partial fills of a resting maker show in its fills."""

    instrument: int
    order_id: str
    account: int
    status: str
    filled: int  # cumulative contracts filled
    remaining: int  # contracts still open (0 unless status is "open")
    reason: str
    time_ms: int


class CancelRejected(NamedTuple):
    instrument: int
    order_id: str
    account: int
    reason: str
    time_ms: int


Record = Union[Fill, Trade, BookDelta, OrderUpdate, CancelRejected]


class MatchingError(Exception):
    """A command a matcher cannot take at all (a caller bug, not a market event): the clock going
    back, a command for another book, an unknown instrument."""


# --- reasons: one wording for both matchers ---------------------------------------------------------

REASON_NONE = ""
REASON_IOC_REMAINDER = "IOC: remainder cancelled"
REASON_CANCELLED = "cancelled by owner"
REASON_SELF_TRADE = "self-trade prevention: the resting order was cancelled (it met an order of its own account)"


def reason_cancelled_all(nonce: int) -> str:
    return f"cancel-all: order nonce below {nonce}"


def reason_expired(expiry: int) -> str:
    return f"expired at {expiry}"


def reason_market_closed(closes_at_ms: int) -> str:
    return f"market closed at {closes_at_ms // 1000} (option series expired)"


def reason_duplicate(order_id: str) -> str:
    return f"duplicate order id {order_id}: this order was already received"


def reason_below_floor(nonce: int, account: int, floor: int) -> str:
    return f"order nonce {nonce} is below account {account}'s cancel-all nonce {floor}"


def reason_post_only_crosses(is_buy: bool, best: int) -> str:
    side = "ask" if is_buy else "bid"
    return f"post-only order would cross the best {side} at {best}"


def reason_not_open(order_id: str, instrument: int) -> str:
    return f"order {order_id} is not open on market {instrument}"


def reason_not_owner(order_id: str, account: int) -> str:
    return f"order {order_id} does not belong to account {account}"


def _make_json_encoder() -> Callable[[object, int], Iterable[str]]:
    """The pieces of `json.dumps(value, separators=(",", ":"))`, from one encoder made once:
    json.dumps builds a new encoder per call, which was three quarters of the cost of encoding a
    record. The same C encoder with the same settings (json.JSONEncoder.iterencode's one-shot
    path), so the same bytes; no circular-reference check (records are flat tuples)."""
    encoder = json.JSONEncoder(separators=(",", ":"))
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return lambda value, _level: (encoder.encode(value),)
    return c_make_encoder(None, encoder.default, encode_basestring_ascii, None, ":", ",", False, False, True)


_json_pieces = _make_json_encoder()
RECORD_TYPES: dict[str, type] = {kind.__name__: kind for kind in (Fill, Trade, BookDelta, OrderUpdate, CancelRejected)}


def encode_record(record: Record) -> str:
    """One record's canonical line: a JSON array, its type first."""
    return "".join(_json_pieces([type(record).__name__, *record], 0))


def encode_records(records: list[Record]) -> bytes:
    """The canonical bytes of a record sequence: one JSON array per record, its type first (what
    two matchers must agree on byte for byte; pickle's bytes also depend on object identity)."""
    pieces, join = _json_pieces, "".join
    return "\n".join([join(pieces([type(r).__name__, *r], 0)) for r in records]).encode()


def decode_records(data: bytes) -> list[Record]:
    """The records whose canonical bytes are `data` (the inverse of `encode_records`)."""
    out: list[Record] = []
    if not data:
        return out
    for line in data.split(b"\n"):
        name, *fields = json.loads(line)
        kind = RECORD_TYPES.get(name)
        # only the five record types have canonical bytes
        if kind is None:
            raise MatchingError(f"not a record: {line[:80]!r}")
        if kind is BookDelta:
            fields[2] = tuple(tuple(level) for level in fields[2])
            fields[3] = tuple(tuple(level) for level in fields[3])
        out.append(kind(*fields))
    return out
