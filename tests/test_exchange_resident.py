"""The resident-partition engine gives the records of sequential matching, command by command and
byte for byte, on real worker processes (and Dask actors); refusals change nothing; a dead worker
is an error, not a hang; books come back for a snapshot and restore; the canonical encoder equals
json.dumps."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.engine import MatchingEngine
from exchange.orders import GTC
from exchange.records import (
    BookDelta,
    CancelAllOrders,
    CancelRejected,
    Fill,
    MatchingError,
    OrderUpdate,
    PlaceOrder,
    Trade,
    decode_records,
    encode_records,
)
from exchange.resident import ResidentEngine
from rollup.executors import WorkerCrashed
from tests.test_exchange_parallel import MARKETS, T0, make_commands


def sequential(commands, engine=None):
    engine = engine or MatchingEngine(MARKETS)
    return [encode_records(engine.process(c)) for c in commands], engine


def fills_of(engine_out: list[bytes]) -> list[Fill]:
    return [r for chunk in engine_out for r in decode_records(chunk) if type(r) is Fill]


def assert_same_books(books, engine: MatchingEngine) -> None:
    assert sorted(books) == sorted(engine.books)
    for instrument, book in books.items():
        expected = engine.books[instrument]
        assert (book.get_levels(), book.get_open_orders(), book.sequence, book.trade_id) == (
            expected.get_levels(), expected.get_open_orders(), expected.sequence, expected.trade_id
        )


@pytest.mark.parametrize("n_partitions, window", [(2, 97), (3, 4096)])
def test_resident_equals_sequential(n_partitions, window) -> None:
    commands = make_commands(seed=21, n=4_000)
    expected, engine = sequential(commands)
    with ResidentEngine(MARKETS, n_partitions, window=window) as resident:
        matched = resident.match(commands[:2_500])
        more = resident.match(commands[2_500:])
        books = resident.get_books()
    # command by command, the bytes sequential matching gives; the fills in its order
    assert matched.records + more.records == expected
    assert matched.fills + more.fills == fills_of(expected)
    assert_same_books(books, engine)
    # the stream reaches every path, cancel-alls with records on several partitions among them
    kinds = {type(r) for chunk in expected for r in decode_records(chunk)}
    assert kinds == {Fill, Trade, BookDelta, OrderUpdate, CancelRejected}
    cancel_all_markets = [
        {r.instrument for r in decode_records(chunk)} for c, chunk in zip(commands, expected) if type(c) is CancelAllOrders
    ]
    assert max(map(len, cancel_all_markets)) >= 3


@pytest.mark.parametrize("seed, n_partitions", [(1, 2), (2, 3), (3, 1), (4, 9)])
def test_resident_random_streams(seed, n_partitions) -> None:
    commands = make_commands(seed=seed, n=1_500)
    expected, _ = sequential(commands)
    # one partition, and more partitions than markets (some hold no book)
    with ResidentEngine(MARKETS, n_partitions, window=64) as resident:
        assert resident.process_all(commands) == decode_records(b"\n".join(c for c in expected if c))


def test_resident_reference_books() -> None:
    commands = make_commands(seed=5, n=600)
    with ResidentEngine(MARKETS, 2, book="reference") as resident:
        assert resident.match(commands).records == sequential(commands)[0]


def test_snapshot_and_restore() -> None:
    commands = make_commands(seed=8, n=3_000)
    expected, _ = sequential(commands)
    with ResidentEngine(MARKETS, 2, window=256) as resident:
        first = resident.match(commands[:1_700]).records
        snapshot = resident.get_books()
    # a restart: new workers (another partitioning too) from the books fetched back
    with ResidentEngine.from_books(snapshot, 3, window=256) as restored:
        rest = restored.match(commands[1_700:]).records
    assert first + rest == expected
    # and a sequential engine's books start a resident one as well
    engine = MatchingEngine(MARKETS)
    engine.process_all(commands[:1_000])
    with ResidentEngine.from_books(engine.books, 2) as resident:
        assert resident.match(commands[1_000:]).records == expected[1_000:]


def test_invalid_batches_change_nothing() -> None:
    commands = make_commands(seed=9, n=1_000)
    expected, _ = sequential(commands)
    late = commands[600].time_ms
    with ResidentEngine(MARKETS, 2, window=100) as resident:
        first = resident.match(commands[:500]).records
        # the clock never goes back, across batches and within one
        with pytest.raises(MatchingError, match=f"command 1: time {T0 - 1} ms is before"):
            resident.match([commands[500], commands[500]._replace(time_ms=T0 - 1)])
        with pytest.raises(MatchingError, match=r"command 0: no book for market 99 \(markets: \[0, 1, 2, 3, 4, 5, 6\]\)"):
            resident.match([PlaceOrder(late, "0x" + "00" * 32, 1, 99, True, 1, 1, GTC, 0, 0)])
        with pytest.raises(MatchingError, match="command 0: not a command: tuple"):
            resident.match([tuple(commands[500])])
        # refused before any book saw them: the rest matches as if they never came
        assert first + resident.match(commands[500:]).records == expected


def test_worker_crash_is_an_error() -> None:
    commands = make_commands(seed=4, n=2_000)
    with ResidentEngine(MARKETS, 2, window=50) as resident:
        resident.match(commands[:100])
        victim = resident.links[1].process
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(5)
        start = time.monotonic()
        with pytest.raises(WorkerCrashed, match=r"matching partition 1 of 2 \(pid \d+\) died \(killed by SIGKILL"):
            resident.match(commands[100:])
        assert time.monotonic() - start < 5
        # its books are lost: nothing more is matched
        with pytest.raises(MatchingError, match="cannot match: matching partition 1 of 2"):
            resident.match(commands[100:])


def test_close_stops_the_workers() -> None:
    resident = ResidentEngine(MARKETS, 2)
    resident.match(make_commands(seed=6, n=200))
    processes = [link.process for link in resident.links]
    resident.close()
    assert [p.exitcode for p in processes] == [0, 0]
    with pytest.raises(MatchingError, match="the engine was closed"):
        resident.match([])


def test_invalid_engine() -> None:
    with pytest.raises(MatchingError, match="unknown book 'turbo'"):
        ResidentEngine(MARKETS, 2, book="turbo")
    with pytest.raises(MatchingError, match="at least 1, got 0"):
        ResidentEngine(MARKETS, 0)
    with pytest.raises(MatchingError, match="window must be at least 1 command, got 0"):
        ResidentEngine(MARKETS, 2, window=0)


def test_dask_actors() -> None:
    pytest.importorskip("distributed")
    from rollup.executors import make_executor

    commands = make_commands(seed=12, n=1_500)
    expected, engine = sequential(commands)
    with make_executor("dask", workers=2, cluster="local") as executor:
        with ResidentEngine(MARKETS, 2, window=300, dask_client=executor.client) as resident:
            matched = resident.match(commands)
            books = resident.get_books()
    assert matched.records == expected
    assert matched.fills == fills_of(expected)
    assert_same_books(books, engine)


# --- the canonical encoding ----------------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8"), max_size=12)
ints = st.integers(-(2**70), 2**70)
levels = st.lists(st.tuples(ints, ints), max_size=3).map(tuple)
records = st.one_of(
    st.builds(Fill, ints, ints, text, text, ints, ints, st.booleans(), ints, ints, ints),
    st.builds(Trade, ints, ints, ints, ints, st.booleans(), ints),
    st.builds(BookDelta, ints, ints, levels, levels, ints),
    st.builds(OrderUpdate, ints, text, ints, text, ints, ints, text, ints),
    st.builds(CancelRejected, ints, text, ints, text, ints),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=6))
def test_encode_records_is_json_dumps(batch) -> None:
    """The encoder made once gives json.dumps's bytes, and decoding gives the records back."""
    reference = "\n".join(json.dumps([type(r).__name__, *r], separators=(",", ":")) for r in batch).encode()
    assert encode_records(batch) == reference
    assert decode_records(reference) == batch


def test_decode_refuses_other_lines() -> None:
    with pytest.raises(MatchingError, match="not a record"):
        decode_records(b'["Order",1]')
