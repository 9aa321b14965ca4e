"""Matching many markets in parallel: books partitioned across workers, the records of sequential
matching, byte for byte.

Why it is exact: a book's output depends only on the commands sent to it, in order (the clock is
in the commands). Each command goes to one book, except a cancel-all, which goes to every book
(every partition). Each partition matches its commands in order; the coordinator then lays the
records out by command index, and inside one command (a cancel-all) by instrument, the order
`MatchingEngine.process` uses. Sequence numbers and trade ids are per market, so no partition
needs another's counters.

Shipping, as rollup/parallel.py does: a partition's engine and its commands cross the process
boundary as ONE bytes object each, made by the C pickler (the `multiprocess` pool pickles
arguments with dill, whose pickler is pure Python). The coordinator matches partition 0 itself,
in place, while the workers match the others. Books travel to the worker and back with each
call, which costs more than matching them (docs/exchange.md): this stateless form, usable with
every executor (serial, process, Dask), is the simple one; exchange/resident.py keeps the books in
long-lived workers and is the one that pays.
"""

from __future__ import annotations

import pickle
from concurrent.futures import Executor
from typing import Iterable, Sequence

from rollup.executors import get_executor_workers

from exchange.engine import MatchingEngine
from exchange.records import CancelAllOrders, Command, MatchingError, Record

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
LOCAL_PARTITION = 0

IndexedRecords = list[tuple[int, list[Record]]]  # (command index, its records), commands with records only


def partition_markets(instruments: Iterable[int], n_partitions: int) -> list[list[int]]:
    """Markets dealt round-robin in id order: partition p gets the p-th, (p + n)-th, ... id."""
    # a partition count is positive
    if n_partitions < 1:
        raise MatchingError(f"the number of partitions must be at least 1, got {n_partitions}")
    ordered = sorted(instruments)
    return [ordered[p::n_partitions] for p in range(n_partitions)]


def match_indexed(engine: MatchingEngine, indexed: Sequence[tuple[int, Command]]) -> IndexedRecords:
    """Run commands through `engine`, keeping each command's index with its records."""
    results: IndexedRecords = []
    process = engine.process
    for index, command in indexed:
        records = process(command)
        if records:
            results.append((index, records))
    return results


def match_shipped(engine_bytes: bytes, commands_bytes: bytes) -> bytes:
    """In a worker: unpickle an engine and its indexed commands, match, pickle both back."""
    engine = pickle.loads(engine_bytes)
    results = match_indexed(engine, pickle.loads(commands_bytes))
    return pickle.dumps((engine, results), protocol=PICKLE_PROTOCOL)


def merge_records(n_commands: int, partition_results: Sequence[IndexedRecords]) -> list[Record]:
    """Records in the order of sequential matching: by command, then (a cancel-all) by instrument."""
    by_command: list[list[list[Record]] | None] = [None] * n_commands
    for results in partition_results:
        for index, records in results:
            slot = by_command[index]
            if slot is None:
                by_command[index] = [records]
            else:
                slot.append(records)
    out: list[Record] = []
    for slot in by_command:
        if slot is None:
            continue
        if len(slot) == 1:
            out += slot[0]
        else:
            # stable: within a partition the records are already in instrument order
            out += sorted((r for records in slot for r in records), key=lambda record: record.instrument)
    return out


class PartitionedEngine:
    """The markets split into `n_partitions` engines; `process_all` matches a sequence of
    commands across them on an executor and returns what `MatchingEngine.process_all` would."""

    def __init__(self, markets: Iterable[tuple[int, int | None]], n_partitions: int, book: str = "fast"):
        markets = dict(markets)
        self.partitions = partition_markets(markets, n_partitions)
        self.owner = {instrument: p for p, ids in enumerate(self.partitions) for instrument in ids}
        self.engines = [MatchingEngine([(i, markets[i]) for i in ids], book) for ids in self.partitions]

    def route(self, commands: Sequence[Command]) -> list[list[tuple[int, Command]]]:
        """Each partition's (index, command) pairs; a cancel-all goes to every partition."""
        routed: list[list[tuple[int, Command]]] = [[] for _ in self.partitions]
        owner = self.owner
        for index, command in enumerate(commands):
            if type(command) is CancelAllOrders:
                for part in routed:
                    part.append((index, command))
                continue
            p = owner.get(command.instrument)
            # every command names a market of the genesis
            if p is None:
                raise MatchingError(f"no book for market {command.instrument} (markets: {sorted(self.owner)})")
            routed[p].append((index, command))
        return routed

    def process_all(self, commands: Sequence[Command], executor: Executor) -> list[Record]:
        routed = self.route(commands)
        futures = {
            p: executor.submit(
                match_shipped,
                pickle.dumps(self.engines[p], protocol=PICKLE_PROTOCOL),
                pickle.dumps(routed[p], protocol=PICKLE_PROTOCOL),
            )
            for p in range(len(self.partitions))
            if p != LOCAL_PARTITION and routed[p]
        }
        results: list[IndexedRecords] = [match_indexed(self.engines[LOCAL_PARTITION], routed[LOCAL_PARTITION])]
        for p, future in futures.items():
            self.engines[p], shipped = pickle.loads(future.result())
            results.append(shipped)
        return merge_records(len(commands), results)


def match_in_parallel(
    markets: Iterable[tuple[int, int | None]], commands: Sequence[Command], executor: Executor, n_partitions: int | None = None, book: str = "fast"
) -> list[Record]:
    """Match `commands` on fresh books, partitioned across `executor`'s workers (one partition per
    worker by default; the coordinator matches partition 0)."""
    n = n_partitions if n_partitions is not None else get_executor_workers(executor)
    return PartitionedEngine(markets, n, book).process_all(commands, executor)
