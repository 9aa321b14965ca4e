"""Resident-partition matching: a long-lived worker per partition keeps its books between calls;
the coordinator streams commands to it and gets back each command's records, encoded once, in
the worker, as their canonical bytes (`records.encode_records`), and the fills.

`ResidentEngine.match(commands)` returns what sequential `MatchingEngine.process` gives, command
by command, byte for byte: `Matched.records[i] == encode_records(engine.process(commands[i]))`
(the per-command bytes the service journals), and the fills in sequential order. Why it is exact
is exchange/parallel.py's argument (a book's output depends only on its commands; a cancel-all
goes to every partition and its records are laid out by instrument).

What crosses a process boundary, in bulk:
- to the workers: frames of up to `window` commands as plain tuples (a command's kind is its
  length: 10 fields place, 4 cancel, 3 cancel-all), pickled once and sent to every worker, which
  matches the commands of its own markets and skips the others; the coordinator checks the batch
  with whole-list operations and does not route command by command (that loop, the per-command
  merge and the fills were most of its time: 3.5 µs of CPU per command before, 2.3 now);
- back from each worker: a chunk per command of the frame as one ASCII bytes object, a command's
  record lines joined by newlines and the commands by NUL (JSON with escaped non-ASCII never
  contains either), empty for another partition's command; the per-instrument pieces of each
  cancel-all; the fills as plain tuples with their command's position. The coordinator merges a
  frame with `map(max, ...)` over the workers' chunks (one non-empty chunk per command).
Broadcasting costs each worker the unpickling of the others' commands, which is cheap at a few
partitions and not at many. No book and no record object crosses; `get_books` fetches the books
back on demand (snapshot) and `ResidentEngine.from_books` starts workers from them (restore).

Pipelining: the coordinator sends frame k + 1 while the workers match frame k, and merges frame
k while they match frame k + 1; a thread per worker writes its frames, so the coordinator never
blocks on a full pipe while that worker is blocked writing a reply (the worker itself has one
thread: a reader thread there waited for the matching thread's GIL on every pipe read, and the
coordinator with it). Frames carry a sequence number that the worker checks.

Transports (rollup/resident.py, shared with the sharded node): worker processes (`multiprocessing`, spawned by default: a service with threads must
not fork) or Dask actors (`dask_client=`: one actor per partition on the cluster's workers; a
frame is one actor call, answered before the next is sent, because separate calls may overtake
one another).

Failures: the clock going back or an unknown market is refused before any book sees the batch
(MatchingError; nothing changed). A worker that dies is reported as `WorkerCrashed` (which worker,
how it ended), not a hang; an error inside a worker as MatchingError. Either leaves the engine
broken (its books may have moved): every later call raises, and the books come back from a
snapshot.
"""

from __future__ import annotations

import multiprocessing
import pickle
import time
from collections import deque
from itertools import islice
from operator import itemgetter, le
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from rollup.executors import WorkerCrashed
from rollup.resident import DaskLink, ProcessLink

from exchange.engine import BOOKS, Book
from exchange.parallel import partition_markets
from exchange.records import (
    CancelAllOrders,
    CancelOrder,
    Command,
    Fill,
    MatchingError,
    PlaceOrder,
    Record,
    decode_records,
    encode_records,
)
from exchange.records import _json_pieces  # the canonical encoder, made once

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
DEFAULT_WINDOW = 1_024  # commands per frame: amortises a frame and keeps the pipeline full (512-2,048 measured alike)
IN_FLIGHT = 2  # frames sent ahead of the one being merged
DEFAULT_START_METHOD = "spawn"
COMMAND_SEPARATOR = b"\x00"  # between commands in a reply (never in ASCII JSON)

_MATCH, _BOOKS, _CPU = "match", "books", "cpu"
_OK, _ERROR = "ok", "error"
_KINDS = {len(PlaceOrder._fields): PlaceOrder, len(CancelOrder._fields): CancelOrder, len(CancelAllOrders._fields): CancelAllOrders}
_INSTRUMENT_AT = {len(PlaceOrder._fields): PlaceOrder._fields.index("instrument"), len(CancelOrder._fields): CancelOrder._fields.index("instrument")}
_CANCEL_ALL_FIELDS = len(CancelAllOrders._fields)
_TIME_AT = 0  # every command's clock comes first
_new = tuple.__new__
_COMMAND_TYPES = frozenset((PlaceOrder, CancelOrder, CancelAllOrders))


class Matched(NamedTuple):
    records: list[bytes]  # per command: encode_records of its records (b"": none)
    fills: list[Fill]  # every Fill record, in sequential order


# --- the worker's side -------------------------------------------------------------------------------


class PartitionMatcher:
    """A partition's books and the matching of frames of plain-tuple commands (what a worker runs;
    also usable in one process: it is the single-process baseline with the same output)."""

    def __init__(self, books: Mapping[int, Book]):
        self.books = dict(books)
        self.ordered = [self.books[i] for i in sorted(self.books)]
        self.expected = 0  # the next frame's sequence number

    def match(self, commands: Sequence[tuple]) -> tuple[bytes, list[list[tuple[int, bytes]]], list[tuple[int, tuple]]]:
        """A frame (every partition receives all of it): (a chunk per command, NUL-separated: its
        records' lines, empty for another partition's market; each cancel-all's (instrument,
        bytes) pieces; the fills as (position in the frame, fields))."""
        books, pieces, join = self.books, _json_pieces, "".join
        chunks: list[str] = []
        cancel_alls: list[list[tuple[int, bytes]]] = []
        fills: list[tuple[int, tuple]] = []
        for position, fields in enumerate(commands):
            n_fields = len(fields)
            if n_fields == _CANCEL_ALL_FIELDS:
                command = _new(CancelAllOrders, fields)
                # every book, in instrument order; laid out across partitions by the coordinator
                per_book = []
                for book in self.ordered:
                    records = book.process(command)
                    if records:
                        per_book.append((book.instrument, encode_records(records)))
                        fills += [(position, tuple(r)) for r in records if type(r) is Fill]
                cancel_alls.append(per_book)
                chunks.append("")
                continue
            book = books.get(fields[_INSTRUMENT_AT[n_fields]])
            if book is None:  # another partition's market
                chunks.append("")
                continue
            lines = []
            for r in book.process(_new(_KINDS[n_fields], fields)):
                kind = type(r)
                lines.append(join(pieces([kind.__name__, *r], 0)))
                if kind is Fill:
                    fills.append((position, tuple(r)))
            chunks.append("\n".join(lines))
        return "\x00".join(chunks).encode(), cancel_alls, fills

    def handle(self, frame: bytes) -> bytes:
        """One request frame -> its reply frame (errors included: the coordinator raises them)."""
        kind, seq, payload = pickle.loads(frame)
        try:
            # frames are matched in the order they were sent
            if seq != self.expected:
                raise MatchingError(f"frame {seq} arrived when frame {self.expected} was due")
            self.expected += 1
            if kind == _MATCH:
                reply: tuple = (_OK, seq, self.match(payload))
            elif kind == _BOOKS:
                reply = (_OK, seq, self.books)
            elif kind == _CPU:
                reply = (_OK, seq, time.process_time())
            else:
                raise MatchingError(f"unknown request {kind!r}")
        except Exception as exc:  # noqa: BLE001 - reported to the coordinator, which raises it
            reply = (_ERROR, seq, f"{type(exc).__name__}: {exc}")
        return pickle.dumps(reply, protocol=PICKLE_PROTOCOL)


def open_matcher(books_bytes: bytes) -> PartitionMatcher:
    """A worker's matcher from its pickled books (the resident transport's factory)."""
    return PartitionMatcher(pickle.loads(books_bytes))


# --- the coordinator -----------------------------------------------------------------------------------


class ResidentEngine:
    """The markets split into `n_partitions` resident workers (see the module's docstring). Use it
    as a context manager, or call `close`."""

    def __init__(
        self,
        markets: Iterable[tuple[int, int | None]],
        n_partitions: int,
        book: str = "fast",
        *,
        window: int = DEFAULT_WINDOW,
        start_method: str = DEFAULT_START_METHOD,
        dask_client: Any = None,
    ):
        # one of the two matchers with the same API
        if book not in BOOKS:
            raise MatchingError(f"unknown book {book!r}; choose one of: {', '.join(BOOKS)}")
        books = {instrument: BOOKS[book](instrument, closes) for instrument, closes in dict(markets).items()}
        self._start(books, n_partitions, window, start_method, dask_client)

    @classmethod
    def from_books(
        cls, books: Mapping[int, Book], n_partitions: int, *, window: int = DEFAULT_WINDOW,
        start_method: str = DEFAULT_START_METHOD, dask_client: Any = None,
    ) -> "ResidentEngine":
        """Workers that start from `books` (a snapshot: `get_books`, or `MatchingEngine.books`)."""
        engine = cls.__new__(cls)
        engine._start(dict(books), n_partitions, window, start_method, dask_client)
        return engine

    def _start(self, books: dict[int, Book], n_partitions: int, window: int, start_method: str, dask_client: Any) -> None:
        # a frame holds at least one command
        if window < 1:
            raise MatchingError(f"the window must be at least 1 command, got {window}")
        self.window = window
        self.partitions = partition_markets(books, n_partitions)
        self.owner = {instrument: p for p, ids in enumerate(self.partitions) for instrument in ids}
        self.time_ms = max((getattr(book, "time_ms", 0) for book in books.values()), default=0)
        self.broken: str | None = None
        self._seq = 0  # every request goes to every worker
        self.links: list[Any] = []
        context = None if dask_client is not None else multiprocessing.get_context(start_method)
        try:
            for p, ids in enumerate(self.partitions):
                shipped = pickle.dumps({i: books[i] for i in ids}, protocol=PICKLE_PROTOCOL)
                name = f"matching partition {p} of {n_partitions}"
                if dask_client is not None:
                    link: Any = DaskLink(dask_client, open_matcher, shipped, name)
                else:
                    link = ProcessLink(context, open_matcher, shipped, name, lost="its books are lost")
                self.links.append(link)
        except BaseException:
            self.close()
            raise

    # --- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the workers (their books are gone: `get_books` first to keep them)."""
        links, self.links = self.links, []
        for link in links:
            link.stop()
        if self.broken is None:
            self.broken = "the engine was closed"

    def __enter__(self) -> "ResidentEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_usable(self) -> None:
        # after a crash or an error in a worker, the books may have moved: nothing more is matched
        if self.broken is not None:
            raise MatchingError(f"the resident engine cannot match: {self.broken}")

    # --- requests ----------------------------------------------------------------------------------

    def _broadcast(self, kind: str, payload: Any) -> None:
        frame = pickle.dumps((kind, self._seq, payload), protocol=PICKLE_PROTOCOL)
        self._seq += 1
        for link in self.links:
            link.send(frame)

    def _receive(self, p: int) -> Any:
        try:
            status, _, payload = pickle.loads(self.links[p].receive())
        except WorkerCrashed as exc:
            self.broken = str(exc)
            raise
        if status == _ERROR:
            self.broken = f"partition {p} failed: {payload}"
            raise MatchingError(self.broken)
        return payload

    def get_books(self) -> dict[int, Book]:
        """Every book, fetched back from the workers (a snapshot; the workers keep theirs)."""
        self._check_usable()
        self._broadcast(_BOOKS, None)
        books: dict[int, Book] = {}
        for p in range(len(self.links)):
            books.update(self._receive(p))
        return dict(sorted(books.items()))

    def get_cpu_seconds(self) -> list[float]:
        """Each worker's CPU time so far (what matching costs, whatever else runs on the machine)."""
        self._check_usable()
        self._broadcast(_CPU, None)
        return [self._receive(p) for p in range(len(self.links))]

    def process_all(self, commands: Sequence[Command]) -> list[Record]:
        """What `MatchingEngine.process_all` returns, as record objects (decoded from the bytes)."""
        out: list[Record] = []
        for chunk in self.match(commands).records:
            if chunk:
                out += decode_records(chunk)
        return out

    def match(self, commands: Sequence[Command]) -> Matched:
        """Match `commands` in order: each command's canonical record bytes and all the fills."""
        self._check_usable()
        frames = self._check_and_split(commands)
        records: list[bytes] = []
        fills: list[Fill] = []
        pending: deque = deque()
        for frame, cancel_alls in frames:
            # plain tuples, made a frame at a time (a NamedTuple pickles through a Python method;
            # all of a batch's tuples alive at once kept the garbage collector busy)
            self._broadcast(_MATCH, list(map(tuple, frame)))
            pending.append(cancel_alls)
            # a transport that answers one call at a time is drained before the next frame
            if len(pending) > IN_FLIGHT or not all(link.ahead for link in self.links):
                self._merge(pending.popleft(), records, fills)
        while pending:
            self._merge(pending.popleft(), records, fills)
        return Matched(records, fills)

    def _check_and_split(self, commands: Sequence[Command]) -> list[tuple[Sequence[Command], list[int]]]:
        """Frames of up to `window` commands, each with its cancel-alls' positions; the
        whole batch is checked first (nothing is sent if a command would be refused). Every worker
        gets every frame and matches its own markets: the coordinator does not route command by
        command (the loop it saves was the larger part of its time)."""
        # commands are the three kinds of exchange.records
        if not set(map(type, commands)) <= _COMMAND_TYPES:
            i = next(i for i, c in enumerate(commands) if type(c) not in _COMMAND_TYPES)
            raise MatchingError(f"command {i}: not a command: {type(commands[i]).__name__}")
        # commands are tuples: a field's index is the same for the command and its tuple
        times = [self.time_ms] + [c[_TIME_AT] for c in commands]
        # the sequencer's clock never goes back (stricter than one clock per book)
        if not all(map(le, times, islice(times, 1, None))):
            i = next(i for i in range(len(commands)) if times[i + 1] < times[i])
            raise MatchingError(f"command {i}: time {times[i + 1]} ms is before {times[i]} ms")
        # every command names a market of the engine
        markets = {c[_INSTRUMENT_AT[len(c)]] for c in commands if len(c) != _CANCEL_ALL_FIELDS}
        if not markets <= self.owner.keys():
            i = next(i for i, c in enumerate(commands) if len(c) != _CANCEL_ALL_FIELDS and c[_INSTRUMENT_AT[len(c)]] not in self.owner)
            raise MatchingError(f"command {i}: no book for market {commands[i][_INSTRUMENT_AT[len(commands[i])]]} (markets: {sorted(self.owner)})")
        self.time_ms = times[-1]
        frames = []
        for start in range(0, len(commands), self.window):
            frame = commands[start : start + self.window]
            frames.append((frame, [i for i, c in enumerate(frame) if len(c) == _CANCEL_ALL_FIELDS]))
        return frames

    def _merge(self, cancel_alls: list[int], records: list[bytes], fills: list[Fill]) -> None:
        """The replies to one frame: per command the chunk of the partition that matched it (the
        others sent an empty one), the cancel-alls' pieces in instrument order, the fills."""
        replies = [self._receive(p) for p in range(len(self.links))]
        parts = [blob.split(COMMAND_SEPARATOR) for blob, _, _ in replies]
        # max of one non-empty chunk and empty ones is the non-empty one: a merge in C
        merged = list(map(max, *parts)) if len(parts) > 1 else parts[0]
        for k, i in enumerate(cancel_alls):
            per_book = sorted((piece for _, pieces, _ in replies for piece in pieces[k]), key=itemgetter(0))
            # a cancel-all's records in instrument order, as MatchingEngine.process lays them out
            merged[i] = b"\n".join(chunk for _, chunk in per_book)
        records += merged
        frame_fills = [fill for _, _, partition_fills in replies for fill in partition_fills]
        # by command (a command's fills come from one partition: a cancel-all makes none)
        frame_fills.sort(key=itemgetter(0))
        fills += [_new(Fill, fields) for _, fields in frame_fills]
