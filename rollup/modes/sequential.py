"""The sequential mode, the reference: the signature pass and then every transaction in submission
order, in this process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollup.execution import BatchContext, Executed, Mode, ModeOptions, execute_batch, run_signature_pass, timed


def execute(ctx: BatchContext, transactions: Sequence, options: ModeOptions, timings: dict[str, Any]) -> Executed:
    checks = run_signature_pass(transactions, ctx.signing_domain, None, timings)
    with timed(timings, "execution"):
        receipts = execute_batch(ctx.state, transactions, checks, options.progress)
    return Executed(receipts, set(ctx.state.touched))


MODE = Mode(execute, uses_workers=False)
