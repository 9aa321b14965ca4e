"""What every execution mode shares: the mode interface (the batch's context, the options a mode
reads, what it returns) and the common pieces (sequential execution, the timed signature pass,
leaf hashing on workers, the garbage-collector pause).

A mode (rollup/modes/) is one function `execute(ctx, transactions, options, timings) -> Executed`:
it checks the signatures and executes the batch on `ctx.state`, in place; the node then builds the
diff and the root from what it returns, and commits. This module imports nothing of the node, so
the modes and the node both import it without a circle.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from rollup.executors import get_executor_workers
from rollup.rules import process_transaction
from rollup.signatures import SignatureCheck, check_signatures
from rollup.state import State
from rollup.state_tree import StateCommitment, compute_account_value
from rollup.storage import BatchWriter, Store
from verifier.wire import Genesis, Receipt, SigningDomain

ACCOUNT_KEY_LIMIT = 1 << 29  # keys below are accounts (account_key(id) == id)
PARALLEL_HASH_MIN_LEAVES = 512  # below this, shipping leaves to workers costs more than hashing them

Progress = Callable[[int], None]  # called with the number of transactions just processed
LeafDiffRow = tuple[int, bytes, bytes]  # (key, before, after) leaf bytes


class ExecutionError(Exception):
    """The batch could not be executed (a worker failed or died): nothing of it may be committed."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: shipping and merging allocate hundreds of thousands of
    small acyclic objects, and each collection they trigger rescans the whole state (measured:
    encoding an account went from 10 us to 2.5 us). Memory is still freed by reference counting;
    the collector runs again on exit."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- the mode interface ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ModeOptions:
    """What a mode reads of the caller's options (`rollup.modes.ExecutionOptions` adds the mode's
    name). `executor`: the workers of a parallel mode; `partitions` (default: the executor's worker
    count), `coordinator_executes` and `window`: the partitioned mode's plan (rollup/parallel.py);
    `partitions` and `window` are also the sharded mode's shard count and windows, and
    `shard_signatures` whether its shards check signatures (rollup/modes/sharded.py);
    `progress`: called with counts of executed transactions."""

    executor: Executor | None = None
    partitions: int | None = None
    coordinator_executes: bool = True
    window: int | None = None
    progress: Progress | None = None
    shard_signatures: bool = True

    def __post_init__(self) -> None:
        # A partition count is a positive number of partitions.
        if self.partitions is not None and (type(self.partitions) is not int or self.partitions < 1):
            raise ValueError(f"partitions must be a positive number, got {self.partitions!r}")
        # A planning window holds at least one transaction.
        if self.window is not None and (type(self.window) is not int or self.window < 1):
            raise ValueError(f"window must be at least 1 transaction, got {self.window!r}")


@dataclass
class BatchContext:
    """What a mode may read and write of the node, for one batch."""

    number: int  # the batch's number
    state: State  # executed in place; the node reloads it from the store if the batch fails
    genesis: Genesis
    genesis_hash: bytes
    leaves: Mapping[int, bytes]  # the committed leaf bytes by key (read only)
    tree_table: tuple[int, ...]  # the account leaf hash's table (`compute_account_value`)
    store: Store
    tree: StateCommitment  # the committed state's commitment (read only)
    resident: dict[str, Any]  # what a mode keeps between batches (workers holding state); the node closes it
    writer: BatchWriter | None = None  # the batch's database transaction, if a mode opened it early

    @property
    def signing_domain(self) -> SigningDomain:
        return self.genesis.signing_domain

    def open_writer(self) -> BatchWriter:
        """Open the batch's database transaction now (the node commits or aborts it)."""
        if self.writer is None:
            self.writer = self.store.begin_batch(self.number)
        return self.writer


@dataclass
class Executed:
    """What a mode did to a batch. `encoded`: leaves the mode already has in their final state,
    key -> (bytes, leaf value or None when not hashed yet); the node encodes only the touched
    leaves not in it, from the state, so a mode that supplies every changed leaf spares the node
    that work. `written`: diff rows the mode wrote to `ctx.writer` and that are final (the node
    does not write them again); the transactions and receipts already written there are counted
    by `ctx.writer.n_tx`. `subtrees`: (level, index -> node) of the accounts tree's nodes at
    that level which the mode computed (the sharded mode's subtree roots): the node then hashes
    only the levels above, and the leaf values below are applied when the tree is next read."""

    receipts: list[Receipt]
    touched: set[int]  # state-tree keys the batch touched
    encoded: dict[int, tuple[bytes, int | None]] = field(default_factory=dict)
    written: dict[int, LeafDiffRow] = field(default_factory=dict)
    subtrees: tuple[int, dict[int, int]] | None = None

    @property
    def n_accepted(self) -> int:
        return sum(1 for r in self.receipts if r.status == "accepted")


class ExecuteBatch(Protocol):
    def __call__(self, ctx: BatchContext, transactions: Sequence, options: ModeOptions, timings: dict[str, Any]) -> Executed: ...


@dataclass(frozen=True)
class Mode:
    """A way to execute a batch: its function and whether it runs on workers (needs an executor)."""

    execute: ExecuteBatch
    uses_workers: bool


# --- shared pieces -----------------------------------------------------------------------------------


def execute_batch(
    state: State, transactions: Sequence, checks: Sequence[SignatureCheck], progress: Progress | None = None, first_index: int = 0
) -> list[Receipt]:
    """Apply transactions in submission order (the reference); a transaction with a malformed
    signature is rejected without executing. Records touched leaves in `state.touched`. Receipts
    are numbered from `first_index` (a slice of a batch executes with its batch indices)."""
    receipts = []
    for done, (tx, check) in enumerate(zip(transactions, checks), start=1):
        index = first_index + done - 1
        if check.signers is None:
            receipts.append(Receipt(index=index, type=tx.type, tx_hash=check.tx_hash, status="rejected", reason=check.error))
        else:
            receipts.append(process_transaction(state, tx, check.signers, index, check.tx_hash))
        if progress is not None and done % 1000 == 0:
            progress(1000)
    if progress is not None:
        progress(len(transactions) % 1000)
    return receipts


@contextmanager
def timed(timings: dict[str, Any], name: str) -> Iterator[None]:
    """`{name}_s` (wall) and `{name}_cpu_s` (this process only, not its workers: robust on a
    shared machine) of the block, when it succeeds."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    yield
    timings[f"{name}_s"] = time.perf_counter() - t0
    timings[f"{name}_cpu_s"] = time.process_time() - cpu0


def run_signature_pass(transactions: Sequence, domain: SigningDomain, executor: Executor | None, timings: dict[str, Any]) -> list[SignatureCheck]:
    """The signature pass, on the executor's workers if there is one (`signatures_s` in `timings`);
    a failed worker fails the batch before anything executes."""
    with timed(timings, "signatures"):
        try:
            return check_signatures(transactions, domain, executor)
        except Exception as exc:  # noqa: BLE001 - any worker failure fails the batch, with its cause
            if executor is None:
                raise
            raise ExecutionError(f"batch not committed: the signature checks failed in a worker: {type(exc).__name__}: {exc}") from exc


def compute_account_values(table: tuple[int, ...], leaves: list[bytes]) -> list[int]:
    """Leaf values of account leaf bytes (runs on a worker)."""
    return [compute_account_value(data, table) for data in leaves]


def hash_account_leaves(leaves: Sequence[tuple[int, bytes]], table: tuple[int, ...], executor: Executor | None = None) -> dict[int, int]:
    """Leaf values of (account id, leaf bytes), in chunks on `executor` when there are enough of
    them to pay for the trip (the same values as hashing them here)."""
    if executor is None or len(leaves) < PARALLEL_HASH_MIN_LEAVES:
        return {key: compute_account_value(data, table) for key, data in leaves}
    n_chunks = 2 * max(1, get_executor_workers(executor))
    size = -(-len(leaves) // n_chunks)
    chunks = [leaves[i : i + size] for i in range(0, len(leaves), size)]
    futures = [executor.submit(compute_account_values, table, [data for _, data in chunk]) for chunk in chunks]
    values: dict[int, int] = {}
    for chunk, future in zip(chunks, futures):
        values.update(zip((key for key, _ in chunk), get_worker_result(future, "leaf hashing")))
    return values


def get_worker_result(future: Any, what: str) -> Any:
    """A worker task's result; its failure fails the batch with the cause (ExecutionError: the node
    reloads its state and raises NodeError, which the CLI prints as one line)."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - any worker failure fails the batch, with its cause
        raise ExecutionError(f"batch not committed: {what} failed in a worker: {type(exc).__name__}: {exc}") from exc
