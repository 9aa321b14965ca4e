"""The node: a home directory holding the SQLite store, the state it implies, and its Merkle root.

`Node.init(home, genesis)` creates a node; `Node.open(home)` reopens it at the last committed batch
and checks that the stored root equals the root recomputed from the stored leaves (so a crash, or
a tampered database, is caught on open). `node.submit(transactions)` cuts the transactions into
batches of at most the node's batch bound (`max_batch_txs`, by default `DEFAULT_MAX_BATCH_TXS`) and
at most `MAX_BATCH_ORACLE_UPDATES` oracle updates, and runs each: the signature pass and execution (a mode of
rollup/modes/, chosen by `ExecutionOptions`: sequential in submission order, the reference; or
partitioned or pipelined on an executor's workers, with the same result), the diff and the new
root, and one database transaction.

Protocol rule: a batch holds at least one accepted transaction and at most what one settlement
takes, so every committed batch can settle (the contract refuses an empty batch, and one larger
than its bound, and no later batch could settle after it). The two bounds fix the most segments a
batch can need at a given segment size (`contracts.deployment.get_max_segments`): the settlement
contract is compiled for them when it is deployed. A part of a submission with no
accepted transaction commits nothing; its rejections are returned. `max_batch_txs=None` lifts the
bound: execution only (benchmarks of large batches), such a node's batches may not settle.
"""

from __future__ import annotations

import gc
import json
import os
import time
from typing import Any
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from rollup.execution import ACCOUNT_KEY_LIMIT, BatchContext, Executed, ExecutionError, LeafDiffRow, gc_paused, hash_account_leaves
from rollup.modes import ExecutionOptions
from rollup.state import State
from rollup.state_codec import encode_state_leaf, state_from_leaves
from rollup.state_tree import StateCommitment
from rollup.storage import StorageError, Store
from verifier.encoding import compute_genesis_hash
from verifier.state_tree import get_tree_shape
from verifier.wire import Genesis, LeafDiff, Receipt, StateDiff

DEFAULT_HOME = "~/.rollup"
# A batch settles in one L1 transaction: 256 trades with two signatures each are 43 KB of calldata,
# a third of geth's 128 KB transaction limit (gas: docs/settlement.md). A node setting.
DEFAULT_MAX_BATCH_TXS = 256
MAX_BATCH_ORACLE_UPDATES = 4  # an oracle update opens a segment: this bounds the segments a batch needs
MAX_BATCH_TXS_META = "max_batch_txs"  # the node's batch bound in its store (JSON: a count or null)
SEQUENTIAL = ExecutionOptions()


def resolve_home(home: str | Path | None) -> Path:
    """--home, else $ROLLUP_HOME, else ~/.rollup."""
    chosen = home if home is not None else os.environ.get("ROLLUP_HOME", DEFAULT_HOME)
    return Path(chosen).expanduser()


class NodeError(Exception):
    """The node cannot do what was asked (no node, inconsistent store, ...)."""


class _NodeBatchBound:
    """`Node.submit`'s default bound: the node's own setting."""

    def __repr__(self) -> str:
        return "NODE_BATCH_BOUND"


NODE_BATCH_BOUND = _NodeBatchBound()


def get_settlement_bound() -> int:
    """Transactions per batch of a new node: its default batch bound."""
    return DEFAULT_MAX_BATCH_TXS


def cut_batches(transactions: Sequence, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive parts of at most `size` transactions and at most
    MAX_BATCH_ORACLE_UPDATES oracle updates each, in order."""
    start, updates = 0, 0
    for i, tx in enumerate(transactions):
        is_update = getattr(tx, "type", None) == "oracle_update"
        if i - start == size or (is_update and updates == MAX_BATCH_ORACLE_UPDATES):
            yield start, i
            start, updates = i, 0
        updates += is_update
    if start < len(transactions):
        yield start, len(transactions)


def check_batch_bound(max_batch_txs: object) -> int | None:
    """A batch bound is None (execution only) or a positive transaction count (a caller bug otherwise)."""
    if max_batch_txs is not None and (type(max_batch_txs) is not int or max_batch_txs < 1):
        raise NodeError(f"the batch bound must be a positive number of transactions or None, got {max_batch_txs!r}")
    return max_batch_txs


@dataclass
class BatchResult:
    number: int
    prev_root: bytes
    new_root: bytes
    receipts: list[Receipt]
    diff_rows: list[tuple[int, bytes, bytes]]  # (key, before, after) leaf bytes, sorted by key
    timings: dict[str, float] = field(default_factory=dict)

    @cached_property
    def diff(self) -> StateDiff:
        """The diff as its wire model, built on first use: hex-encoding every touched leaf costs
        more than the whole commit of a batch (0.2 s for 20k leaves), and the node needs only
        the bytes (the store has them)."""
        return StateDiff(
            prev_root="0x" + self.prev_root.hex(),
            new_root="0x" + self.new_root.hex(),
            leaves=[LeafDiff(key=k, before="0x" + b.hex(), after="0x" + a.hex()) for k, b, a in self.diff_rows],
        )

    @property
    def n_accepted(self) -> int:
        return sum(1 for r in self.receipts if r.status == "accepted")


@dataclass
class Submission:
    """What one `Node.submit` did: the batches it committed, in order, and every transaction's
    receipt in submission order (`index` is the position in the submission, not in its batch)."""

    batches: list[BatchResult]
    receipts: list[Receipt]
    unbatched: list[Receipt]  # receipts of the parts that committed no batch (nothing accepted)
    prev_root: bytes
    new_root: bytes

    @property
    def batch(self) -> BatchResult:
        """The one batch of a submission that committed exactly one (e.g. with max_batch_txs=None)."""
        # a caller that expects one batch gets one, or an error naming what happened
        if len(self.batches) != 1:
            raise NodeError(f"the submission committed {len(self.batches)} batches, not one")
        return self.batches[0]

    @property
    def n_accepted(self) -> int:
        return sum(1 for r in self.receipts if r.status == "accepted")


class Node:
    def __init__(
        self,
        home: Path,
        store: Store,
        genesis: Genesis,
        state: State,
        tree: StateCommitment,
        leaves: dict[int, bytes],
        max_batch_txs: int | None,
    ):
        self.home = home
        self.max_batch_txs = max_batch_txs  # transactions per batch (None: execution only, may not settle)
        self.store = store
        self.genesis = genesis
        self.state = state
        self.tree = tree
        self.leaves = leaves  # current canonical leaf bytes by key (what the store holds)
        self.genesis_hash = compute_genesis_hash(genesis)
        self.resident: dict[str, Any] = {}  # what modes keep between batches (the sharded mode's shards)
        # the loaded state lives as long as the node: keep the cyclic collector from rescanning it
        gc.freeze()

    # --- lifecycle ---
    @classmethod
    def init(cls, home: Path, genesis: Genesis, max_batch_txs: int | None | _NodeBatchBound = NODE_BATCH_BOUND) -> "Node":
        """A new node at genesis. `max_batch_txs`: its batch bound, kept in the store (default:
        what one L1 settlement takes; None: execution only, its batches may not settle)."""
        bound = get_settlement_bound() if max_batch_txs is NODE_BATCH_BOUND else check_batch_bound(max_batch_txs)
        state = State.from_genesis(genesis)
        genesis_hash = compute_genesis_hash(genesis)
        leaves = {}
        for key in genesis_keys(state):
            data = encode_state_leaf(state, key, genesis_hash)
            if data:
                leaves[key] = data
        tree = build_tree(genesis, leaves)
        try:
            store = Store.create(home, genesis.model_dump_json(), leaves, tree.root_bytes, {MAX_BATCH_TXS_META: json.dumps(bound)})
        except StorageError as exc:
            raise NodeError(str(exc)) from None
        state.touched.clear()
        return cls(home, store, genesis, state, tree, leaves, bound)

    @classmethod
    def open(cls, home: Path) -> "Node":
        try:
            store = Store.open(home)
        except StorageError as exc:
            raise NodeError(str(exc)) from None
        genesis = Genesis.model_validate_json(store.get_meta("genesis") or "")
        leaves = store.load_leaves()
        state = state_from_leaves(genesis, leaves)
        tree = build_tree(genesis, leaves)
        latest = store.latest_batch()
        expected = latest.new_root if latest else bytes.fromhex(store.get_meta("genesis_root") or "")
        if tree.root_bytes != expected:
            store.close()
            raise NodeError(
                f"state root mismatch in {home}: stored leaves give 0x{tree.root_bytes.hex()}, "
                f"the last committed batch says 0x{expected.hex()}"
            )
        stored_bound = store.get_meta(MAX_BATCH_TXS_META)
        bound = get_settlement_bound() if stored_bound is None else json.loads(stored_bound)
        return cls(home, store, genesis, state, tree, leaves, bound)

    def close(self) -> None:
        self.close_resident()
        self.store.close()

    def close_resident(self) -> None:
        """Stop what modes keep between batches (worker processes holding state)."""
        resident, self.resident = self.resident, {}
        for value in resident.values():
            value.close()

    # --- queries ---
    @property
    def root(self) -> bytes:
        return self.tree.root_bytes

    @property
    def batch_number(self) -> int:
        latest = self.store.latest_batch()
        return latest.number if latest else 0

    # --- the batch pipeline ---
    def submit(
        self,
        transactions: Sequence,
        options: ExecutionOptions = SEQUENTIAL,
        max_batch_txs: int | None | _NodeBatchBound = NODE_BATCH_BOUND,
    ) -> Submission:
        """Cut `transactions` into consecutive parts of at most `max_batch_txs` (default: the
        node's bound; None: one part, execution only) and run each as a batch: check signatures and
        execute (`options.mode`, rollup/modes/: sequential by default, the reference; every mode
        gives the same receipts, state, diff and root), build the diff and the new root, commit
        atomically. A part in which no transaction is accepted commits no batch (nothing changed;
        its receipts are returned in `Submission.unbatched`).

        If anything fails before the commit (a failed worker raises NodeError naming it), the
        in-memory state is reloaded from the store, so the node never holds a half-applied batch.
        """
        bound = self.max_batch_txs if max_batch_txs is NODE_BATCH_BOUND else check_batch_bound(max_batch_txs)
        prev_root = self.tree.root_bytes
        batches: list[BatchResult] = []
        receipts: list[Receipt] = []
        unbatched: list[Receipt] = []
        # A batch allocates hundreds of thousands of acyclic objects: without this, the cyclic
        # collector rescans the whole state many times per batch, in every mode.
        with gc_paused():
            if bound is not None:
                parts = list(cut_batches(transactions, bound))
            else:  # execution only: the whole submission is one batch
                parts = [(0, len(transactions))] if transactions else []
            for start, end in parts:
                result, part_receipts = self._process_batch(transactions[start:end], options)
                numbered = [r.model_copy(update={"index": start + r.index}) for r in part_receipts] if start else part_receipts
                receipts += numbered
                if result is None:
                    unbatched += numbered
                else:
                    batches.append(result)
        return Submission(batches, receipts, unbatched, prev_root, self.tree.root_bytes)

    def _process_batch(self, transactions: Sequence, options: ExecutionOptions) -> tuple[BatchResult | None, list[Receipt]]:
        """One batch: (its result, its receipts), or (None, the receipts) if nothing was accepted."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        ctx = self._open_batch()
        try:
            executed = options.execution_mode.execute(ctx, transactions, options, timings)
            # A batch has at least one accepted transaction: an empty one cannot settle, and
            # rejected transactions changed nothing, so there is nothing to commit.
            if executed.n_accepted == 0:
                self._discard_unaccepted(ctx, executed)
                return None, executed.receipts
            t1 = time.perf_counter()
            diff_rows, accounts, others = self._compute_diff(executed, options.executor)
            prev_root = self.tree.root_bytes
            if executed.subtrees is None:
                self.tree.update(accounts, others)
            else:
                self.tree.update_from_subtrees(*executed.subtrees, accounts, others)
            new_root = self.tree.root_bytes
            t2 = time.perf_counter()
            timings["diff_and_root_s"] = t2 - t1
            self._commit(ctx, transactions, executed, diff_rows, prev_root, new_root, timings)
            timings["commit_s"] = time.perf_counter() - t2
        except BaseException as exc:
            self._abandon(ctx)
            if isinstance(exc, ExecutionError):
                raise NodeError(str(exc)) from exc
            raise
        self._apply(diff_rows)
        timings["total_s"] = time.perf_counter() - t0
        return BatchResult(ctx.number, prev_root, new_root, executed.receipts, diff_rows, timings), executed.receipts

    def _open_batch(self) -> BatchContext:
        """What a mode may read and write of this node for the next batch."""
        self.state.touched.clear()
        return BatchContext(
            self.batch_number + 1, self.state, self.genesis, self.genesis_hash, self.leaves, self.tree.table, self.store,
            self.tree, self.resident,
        )

    def _compute_diff(
        self, executed: Executed, executor: Executor | None = None
    ) -> tuple[list[LeafDiffRow], dict[int, int], dict[int, bytes]]:
        """(key, before, after) of every touched leaf that changed, the new account leaf values by
        account id (`verifier.state_tree`) and the other changed leaves' bytes by key. Leaves the
        mode encoded (`executed.encoded`) are taken as they are; the others are encoded from the
        state. Account leaves without a value are hashed on `executor` when given (Poseidon leaf
        hashes are most of a root update; they are independent), else here."""
        rows, accounts, others = [], {}, {}
        unhashed: list[tuple[int, bytes]] = []
        encoded = executed.encoded
        for key in sorted(executed.touched):
            before = self.leaves.get(key, b"")
            known = encoded.get(key)
            after = encode_state_leaf(self.state, key, self.genesis_hash) if known is None else known[0]
            if after != before:
                rows.append((key, before, after))
                if key >= ACCOUNT_KEY_LIMIT:
                    others[key] = after
                elif known is not None and known[1] is not None:
                    accounts[key] = known[1]
                else:
                    unhashed.append((key, after))
        accounts.update(hash_account_leaves(unhashed, self.tree.table, executor))
        return rows, accounts, others

    def _commit(
        self,
        ctx: BatchContext,
        transactions: Sequence,
        executed: Executed,
        diff_rows: list[LeafDiffRow],
        prev_root: bytes,
        new_root: bytes,
        timings: dict[str, float],
    ) -> None:
        """One database transaction: what the mode did not write early (transactions, receipts,
        diff rows), the batch's roots and its metadata."""
        written = ctx.writer.n_tx if ctx.writer is not None else 0
        self.store.commit_batch(
            ctx.number,
            prev_root,
            new_root,
            [tx.model_dump_json() for tx in transactions[written:]],
            ((r.status, r.model_dump_json()) for r in executed.receipts[written:]),
            [row for row in diff_rows if row[0] not in executed.written],
            {"timings": timings, "touched_leaves": len(diff_rows)},
            ctx.writer,
        )

    def _apply(self, diff_rows: list[LeafDiffRow]) -> None:
        """The committed batch's leaves become the node's."""
        for key, _, after in diff_rows:
            if after:
                self.leaves[key] = after
            else:
                self.leaves.pop(key, None)
        self.state.touched.clear()

    def _discard_unaccepted(self, ctx: BatchContext, executed: Executed) -> None:
        """Drop a batch in which nothing was accepted: its early writes are rolled back; the state
        is untouched (rejections change nothing), else it is reloaded from the store."""
        if ctx.writer is not None:
            ctx.writer.abort()
            ctx.writer = None
        if executed.touched or self.state.touched:
            self._reload()
        self.state.touched.clear()

    def _abandon(self, ctx: BatchContext) -> None:
        """After a failure before the commit: roll back the early writes, reload the state; workers
        that hold state may hold part of the batch: they go too."""
        self.close_resident()
        if ctx.writer is not None:
            ctx.writer.abort()
            ctx.writer = None
        self._reload()

    def _reload(self) -> None:
        """Rebuild memory from the last committed batch (after a failed submit)."""
        self.leaves = self.store.load_leaves()
        self.state = state_from_leaves(self.genesis, self.leaves)
        self.tree = build_tree(self.genesis, self.leaves)
        gc.freeze()


def build_tree(genesis: Genesis, leaves: dict[int, bytes]) -> StateCommitment:
    """The state commitment (v3 root) of these canonical leaf bytes."""
    return StateCommitment.from_leaves(genesis, get_tree_shape(genesis), leaves)


def genesis_keys(state: State) -> list[int]:
    """Keys of the leaves that exist at genesis: every instrument and the globals leaf."""
    from verifier.encoding import GLOBALS_KEY, instrument_key

    return [instrument_key(i) for i in sorted(state.instruments)] + [GLOBALS_KEY]
