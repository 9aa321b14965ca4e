"""Parallel matching across markets gives the records of sequential matching, byte for byte, on
real worker processes."""

from __future__ import annotations


import random

import pytest

from exchange.engine import MatchingEngine
from exchange.orders import GTC, IOC, POST_ONLY
from exchange.parallel import PartitionedEngine, match_in_parallel, partition_markets
from exchange.records import CancelAllOrders, CancelOrder, MatchingError, PlaceOrder, encode_records
from rollup.executors import make_executor

T0 = 1_767_225_600_000
MARKETS = [(i, None if i < 4 else T0 + 20_000) for i in range(7)]


def make_commands(seed: int, n: int) -> list:
    rng = random.Random(seed)
    t, commands, placed = T0, [], []
    for i in range(n):
        t += rng.choice([0, 1, 3, 50])
        roll = rng.random()
        account = rng.randrange(6)
        if roll < 0.1 and placed:
            market, order_id = rng.choice(placed)
            commands.append(CancelOrder(t, account, market, order_id))
        elif roll < 0.12:
            commands.append(CancelAllOrders(t, account, rng.randrange(i + 1)))
        else:
            market = rng.randrange(len(MARKETS))
            order_id = f"0x{i:064x}"
            expiry = rng.choice([0, 0, 0, t // 1000 + rng.randint(1, 5)])
            commands.append(PlaceOrder(t, order_id, account, market, rng.random() < 0.5, rng.randint(1, 9), rng.randint(990, 1010), rng.choice([GTC, GTC, IOC, POST_ONLY]), expiry, i))
            placed.append((market, order_id))
    return commands


def test_partition_markets() -> None:
    assert partition_markets([5, 1, 3, 2], 2) == [[1, 3], [2, 5]]
    assert partition_markets([1], 3) == [[1], [], []]
    with pytest.raises(MatchingError, match="at least 1, got 0"):
        partition_markets([1], 0)


@pytest.mark.parametrize("kind, workers", [("serial", None), ("process", 2)])
def test_parallel_equals_sequential(kind, workers) -> None:
    commands = make_commands(seed=7, n=4_000)
    sequential = MatchingEngine(MARKETS).process_all(commands)
    with make_executor(kind, workers) as executor:
        for n_partitions in (2, 3):
            parallel = match_in_parallel(MARKETS, commands, executor, n_partitions)
            assert encode_records(parallel) == encode_records(sequential)
    # the workload exercises every path
    kinds = {type(r).__name__ for r in sequential}
    assert kinds == {"Fill", "Trade", "BookDelta", "OrderUpdate", "CancelRejected"}
    assert {r.status for r in sequential if type(r).__name__ == "OrderUpdate"} == {"open", "filled", "cancelled", "expired", "rejected"}


def test_partitioned_engine_keeps_books_across_batches() -> None:
    commands = make_commands(seed=11, n=3_000)
    sequential_engine = MatchingEngine(MARKETS)
    sequential = sequential_engine.process_all(commands)
    partitioned = PartitionedEngine(MARKETS, 2)
    with make_executor("process", 2) as executor:
        parallel = []
        for start in range(0, len(commands), 700):
            parallel += partitioned.process_all(commands[start : start + 700], executor)
    assert encode_records(parallel) == encode_records(sequential)
    for engine in partitioned.engines:
        for instrument, book in engine.books.items():
            assert book.get_levels() == sequential_engine.books[instrument].get_levels()
            assert book.sequence == sequential_engine.books[instrument].sequence


def test_parallel_reference_books() -> None:
    commands = make_commands(seed=3, n=800)
    with make_executor("process", 2) as executor:
        parallel = match_in_parallel(MARKETS, commands, executor, book="reference")
    assert encode_records(parallel) == encode_records(MatchingEngine(MARKETS).process_all(commands))


def test_parallel_unknown_market() -> None:
    with make_executor("serial") as executor, pytest.raises(MatchingError, match="no book for market 99"):
        match_in_parallel(MARKETS, [PlaceOrder(T0, "0x" + "00" * 32, 1, 99, True, 1, 1, GTC, 0, 0)], executor)
