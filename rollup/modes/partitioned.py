"""The partitioned mode: the signature pass on the workers, then the batch in conflict-free
partitions, one run by this process and the others on the workers (the engine:
rollup/parallel.py; why it equals sequential execution: docs/parallel.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollup.execution import BatchContext, Executed, ExecutionError, Mode, ModeOptions, run_signature_pass, timed
from rollup.executors import get_executor_workers
from rollup.parallel import PartitionError, execute_batch_parallel, execute_batch_windowed


def execute(ctx: BatchContext, transactions: Sequence, options: ModeOptions, timings: dict[str, Any]) -> Executed:
    executor = options.executor
    checks = run_signature_pass(transactions, ctx.signing_domain, executor, timings)
    count = get_executor_workers(executor) if options.partitions is None else options.partitions
    with timed(timings, "execution"):
        try:
            if options.window is None:
                receipts = execute_batch_parallel(
                    ctx.state, transactions, checks, executor, count, options.progress, timings, options.coordinator_executes
                )
            else:
                receipts = execute_batch_windowed(
                    ctx.state, transactions, checks, executor, count, options.progress, timings,
                    options.coordinator_executes, options.window,
                )
        except PartitionError as exc:
            raise ExecutionError(f"batch not committed: {exc}") from exc
    return Executed(receipts, set(ctx.state.touched))


MODE = Mode(execute, uses_workers=True)
