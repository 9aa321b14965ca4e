"""The pipelined mode: the workers recover signatures chunk by chunk while this process executes,
sequentially and in order, every chunk whose signatures have arrived; no state travels. It wins on
few cores, where the signature pass, not execution, dominates a batch (docs/parallel.md, "Measured").

While the workers still run, this process also does the batch's serial tail work that is final
after a chunk: it writes the chunk's transactions and receipts to the batch's open database
transaction, and encodes the leaves of the accounts no later transaction names, writes their diff
rows and sends their hashes to the workers. Only what depends on the whole batch (the other leaves,
the root, the commit) is left to the node.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from rollup.execution import (
    ACCOUNT_KEY_LIMIT,
    BatchContext,
    Executed,
    ExecutionError,
    LeafDiffRow,
    Mode,
    ModeOptions,
    compute_account_values,
    execute_batch,
    get_worker_result,
)
from rollup.executors import get_executor_workers
from rollup.planner import ACCOUNT_GETTERS
from rollup.signatures import compute_signature_chunk_size, iter_signature_checks
from rollup.state_codec import encode_state_leaf


@dataclass
class FinalLeaves:
    """The leaves final before the batch ends: their (bytes, value) by key, the diff rows written
    early, and the hashes running on the workers."""

    encoded: dict[int, tuple[bytes, int | None]] = field(default_factory=dict)
    written: dict[int, LeafDiffRow] = field(default_factory=dict)
    hash_jobs: list[tuple[list[tuple[int, bytes]], Future]] = field(default_factory=list)


def execute(ctx: BatchContext, transactions: Sequence, options: ModeOptions, timings: dict[str, Any]) -> Executed:
    executor = options.executor
    state = ctx.state
    writer = ctx.open_writer()
    final = FinalLeaves()
    receipts = []
    touched: set[int] = set()
    waited = 0.0
    cpu = time.process_time()
    started = time.perf_counter()
    chunk_size = compute_signature_chunk_size(len(transactions), get_executor_workers(executor))
    last_chunk = get_last_chunks(transactions, chunk_size)
    chunks = iter_signature_checks(transactions, ctx.signing_domain, executor)
    while True:
        t = time.perf_counter()
        try:
            start, checks = next(chunks)
        except StopIteration:
            break
        except Exception as exc:  # noqa: BLE001 - any worker failure fails the batch, with its cause
            raise ExecutionError(f"batch not committed: the signature checks failed in a worker: {type(exc).__name__}: {exc}") from exc
        waited += time.perf_counter() - t
        chunk = transactions[start : start + len(checks)]
        chunk_receipts = execute_batch(state, chunk, checks, options.progress, start)
        receipts.extend(chunk_receipts)
        writer.write_transactions([tx.model_dump_json() for tx in chunk])
        writer.write_receipts((r.status, r.model_dump_json()) for r in chunk_receipts)
        encode_final_leaves(ctx, state.touched, start // chunk_size, last_chunk, final, executor)
        touched |= state.touched
        state.touched.clear()
    state.touched |= touched
    timings["signatures_and_execution_s"] = time.perf_counter() - started
    timings["waiting_for_signatures_s"] = waited
    timings["coordinator_cpu_s"] = time.process_time() - cpu
    t = time.perf_counter()
    take_back_rewritten(ctx, final)
    collect_hashes(final)
    timings["waiting_for_leaf_hashes_s"] = time.perf_counter() - t
    return Executed(receipts, touched, final.encoded, final.written)


def encode_final_leaves(
    ctx: BatchContext, touched: set[int], chunk: int, last_chunk: dict[int, int], final: FinalLeaves, executor: Executor
) -> None:
    """Leaf bytes of every account the chunk just executed touched and no later chunk names
    (`get_last_chunks`), their hashes sent to the workers (Poseidon leaf hashes are most of a
    root update; the coordinator keeps executing), and their diff rows written to the open
    batch; a key touched again later is dropped from `final.encoded` and encoded by the node."""
    leaves = final.encoded
    rows = []
    to_hash: list[tuple[int, bytes]] = []
    for key in touched:
        if key < ACCOUNT_KEY_LIMIT and last_chunk.get(key, chunk) <= chunk and key not in final.written:
            after = encode_state_leaf(ctx.state, key, ctx.genesis_hash)
            leaves[key] = (after, None)
            to_hash.append((key, after))
            before = ctx.leaves.get(key, b"")
            if after != before:
                rows.append((key, before, after))
        else:
            leaves.pop(key, None)
    if to_hash:
        final.hash_jobs.append((to_hash, executor.submit(compute_account_values, ctx.tree_table, [data for _, data in to_hash])))
    ctx.writer.write_leaf_changes(rows)
    final.written.update((row[0], row) for row in rows)


def take_back_rewritten(ctx: BatchContext, final: FinalLeaves) -> None:
    """Undo the diff rows written early whose key a later chunk touched again (the node writes
    their final rows): what stays in `final.written` is final."""
    stale = [row for key, row in final.written.items() if key not in final.encoded]
    if stale:
        ctx.writer.undo_leaf_changes(stale)
        for key, _, _ in stale:
            del final.written[key]


def collect_hashes(final: FinalLeaves) -> None:
    """Fill in the leaf values the workers computed (for leaves still final with those bytes)."""
    for jobs, future in final.hash_jobs:
        for (key, data), value in zip(jobs, get_worker_result(future, "leaf hashing")):
            known = final.encoded.get(key)
            if known is not None and known[0] == data:
                final.encoded[key] = (data, value)
    final.hash_jobs.clear()


def get_last_chunks(transactions: Sequence, chunk_size: int) -> dict[int, int]:
    """Account key -> the last chunk (of `chunk_size` transactions) whose transactions name it,
    from the transactions' fields alone (the planner's account getters)."""
    last: dict[int, int] = {}
    getters = ACCOUNT_GETTERS
    for index, tx in enumerate(transactions):
        getter = getters[type(tx)]
        if getter is not None:
            chunk = index // chunk_size
            for account in getter(tx):
                last[account] = chunk
    return last


MODE = Mode(execute, uses_workers=True)
