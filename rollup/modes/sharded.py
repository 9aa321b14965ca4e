"""The sharded mode: account shards resident in workers across batches (the engine:
rollup/sharded.py; why it equals sequential execution: docs/sharding.md).

The shard set lives as long as the node (`BatchContext.resident`): it is started by the first
sharded batch from the node's state, with `options.partitions` shards (default: the executor's
worker count) as worker processes, or as Dask actors when the executor is a `DaskExecutor` (one
per Dask worker). It is rebuilt when it cannot be trusted to hold the node's state: after a
failed batch (the node closes it), after a batch committed in another mode, or when the shard
count or the transport changes.

`options.shard_signatures` (default True): the shards check the signatures of the transactions
they execute, inside each window; False runs the signature pass first on the executor's workers
(as the partitioned mode does) and the shards only execute: the same result, and the way to time
execution alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollup.execution import BatchContext, Executed, ExecutionError, Mode, ModeOptions, run_signature_pass, timed
from rollup.executors import DaskExecutor, WorkerCrashed, get_executor_workers
from rollup.sharded import ShardError, ShardSet
from rollup.signatures import check_signatures

RESIDENT_KEY = "shards"


def get_shard_set(ctx: BatchContext, options: ModeOptions) -> ShardSet:
    """The node's shard set, started (or restarted) if it does not hold the node's state."""
    executor = options.executor
    n_shards = get_executor_workers(executor) if options.partitions is None else options.partitions
    client = executor.client if isinstance(executor, DaskExecutor) else None
    transport = "dask" if client is not None else "process"
    shards = ctx.resident.get(RESIDENT_KEY)
    if shards is not None and (
        shards.broken is not None or shards.next_batch != ctx.number or shards.n_shards != n_shards or shards.transport != transport
    ):
        shards.close()
        shards = None
    if shards is None:
        shards = ShardSet(ctx.state, ctx.tree, n_shards, dask_client=client)
        shards.next_batch = ctx.number
        ctx.resident[RESIDENT_KEY] = shards
    return shards


def check_on_workers(transactions: Sequence, ctx: BatchContext, executor: Any) -> list:
    """The coordinator's signature checks (deposits, oracle updates) on the executor's workers."""
    try:
        return check_signatures(transactions, ctx.signing_domain, executor)
    except Exception as exc:  # noqa: BLE001 - any worker failure fails the batch, with its cause
        raise ExecutionError(f"batch not committed: the signature checks failed in a worker: {type(exc).__name__}: {exc}") from exc


def write_early(ctx: BatchContext, transactions: Sequence, receipts: list) -> None:
    """The batch's transactions and receipts into its open database transaction, while the shards
    hash their leaves (the node writes the rest and commits; nothing is visible before)."""
    if not any(r.status == "accepted" for r in receipts):
        return  # no batch: nothing to write
    writer = ctx.open_writer()
    writer.write_transactions([tx.model_dump_json() for tx in transactions])
    writer.write_receipts((r.status, r.model_dump_json()) for r in receipts)


def execute(ctx: BatchContext, transactions: Sequence, options: ModeOptions, timings: dict[str, Any]) -> Executed:
    executor = options.executor
    checks = None if options.shard_signatures else run_signature_pass(transactions, ctx.signing_domain, executor, timings)
    with timed(timings, "execution"):
        try:
            shards = get_shard_set(ctx, options)
            batch = shards.execute(
                ctx.state, transactions, lambda txs: check_on_workers(txs, ctx, executor), options.window, options.progress, checks,
                lambda receipts: write_early(ctx, transactions, receipts),
            )
        except (ShardError, WorkerCrashed) as exc:
            raise ExecutionError(f"batch not committed: {exc}") from exc
    shards.next_batch = ctx.number + (1 if any(r.status == "accepted" for r in batch.receipts) else 0)
    timings.update(batch.timings)
    encoded = {key: (data, value) for key, (data, value) in batch.accounts.items()}
    return Executed(batch.receipts, set(ctx.state.touched), encoded, subtrees=(batch.subtree_level, batch.subtrees))


MODE = Mode(execute, uses_workers=True)
