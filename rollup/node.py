"""The node: a home directory holding the SQLite store, the state it implies, and its Merkle root.

`Node.init(home, genesis)` creates a node; `Node.open(home)` reopens it at the last committed batch
and checks that the stored root equals the root recomputed from the stored leaves (so a crash, or
a tampered database, is caught on open). `node.submit(transactions)` executes one batch
sequentially in submission order and commits it in one database transaction.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rollup.merkle import SparseMerkleTree
from rollup.rules import process_transaction
from rollup.state import State
from rollup.state_codec import encode_state_leaf, state_from_leaves
from rollup.storage import StorageError, Store
from verifier.encoding import (
    InvalidSignature,
    compute_genesis_hash,
    compute_signing_digest,
    leaf_hash,
    recover_signers,
)
from verifier.merkle import EMPTY_LEAF
from verifier.wire import Genesis, LeafDiff, Receipt, StateDiff

DEFAULT_HOME = "~/.rollup"
TREE_DEPTH = 32

Progress = Callable[[int], None]  # called with the number of transactions just processed


def resolve_home(home: str | Path | None) -> Path:
    """--home, else $ROLLUP_HOME, else ~/.rollup."""
    chosen = home if home is not None else os.environ.get("ROLLUP_HOME", DEFAULT_HOME)
    return Path(chosen).expanduser()


class NodeError(Exception):
    """The node cannot do what was asked (no node, inconsistent store, ...)."""


@dataclass(frozen=True)
class SignatureCheck:
    """Result of the signature pass over one transaction: its hash and recovered signers, or why
    its signatures are malformed (then the transaction is rejected without executing)."""

    tx_hash: str
    signers: tuple[str, ...] | None
    error: str | None = None


@dataclass
class BatchResult:
    number: int
    prev_root: bytes
    new_root: bytes
    receipts: list[Receipt]
    diff: StateDiff
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_accepted(self) -> int:
        return sum(1 for r in self.receipts if r.status == "accepted")


def check_signatures(transactions: Sequence, chain_id: int) -> list[SignatureCheck]:
    """Hash every transaction (EIP-712 digest) and recover the addresses that signed it."""
    checks = []
    for tx in transactions:
        digest = compute_signing_digest(tx, chain_id)
        tx_hash = "0x" + digest.hex()
        try:
            checks.append(SignatureCheck(tx_hash, recover_signers(tx, chain_id, digest)))
        except InvalidSignature as exc:
            checks.append(SignatureCheck(tx_hash, None, f"invalid signature: {exc}"))
    return checks


def execute_batch(state: State, transactions: Sequence, checks: Sequence[SignatureCheck], progress: Progress | None = None) -> list[Receipt]:
    """Apply transactions in submission order; a transaction with a malformed signature is
    rejected without executing. Records touched leaves in `state.touched`."""
    receipts = []
    for index, (tx, check) in enumerate(zip(transactions, checks)):
        if check.signers is None:
            receipts.append(Receipt(index=index, type=tx.type, tx_hash=check.tx_hash, status="rejected", reason=check.error))
        else:
            receipts.append(process_transaction(state, tx, check.signers, index, check.tx_hash))
        if progress is not None and index % 1000 == 999:
            progress(1000)
    if progress is not None:
        progress(len(transactions) % 1000)
    return receipts


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Node:
    def __init__(self, home: Path, store: Store, genesis: Genesis, state: State, tree: SparseMerkleTree, leaves: dict[int, bytes]):
        self.home = home
        self.store = store
        self.genesis = genesis
        self.state = state
        self.tree = tree
        self.leaves = leaves  # current canonical leaf bytes by key (what the store holds)
        self.genesis_hash = compute_genesis_hash(genesis)

    # --- lifecycle ---
    @classmethod
    def init(cls, home: Path, genesis: Genesis) -> "Node":
        state = State.from_genesis(genesis)
        genesis_hash = compute_genesis_hash(genesis)
        leaves = {}
        for key in genesis_keys(state):
            data = encode_state_leaf(state, key, genesis_hash)
            if data:
                leaves[key] = data
        tree = SparseMerkleTree.from_leaves({k: leaf_hash(v) for k, v in leaves.items()}, TREE_DEPTH)
        try:
            store = Store.create(home, genesis.model_dump_json(), leaves, tree.root)
        except StorageError as exc:
            raise NodeError(str(exc)) from None
        state.touched.clear()
        return cls(home, store, genesis, state, tree, leaves)

    @classmethod
    def open(cls, home: Path) -> "Node":
        try:
            store = Store.open(home)
        except StorageError as exc:
            raise NodeError(str(exc)) from None
        genesis = Genesis.model_validate_json(store.get_meta("genesis") or "")
        leaves = store.load_leaves()
        state = state_from_leaves(genesis, leaves)
        tree = SparseMerkleTree.from_leaves({k: leaf_hash(v) for k, v in leaves.items()}, TREE_DEPTH)
        latest = store.latest_batch()
        expected = latest.new_root if latest else bytes.fromhex(store.get_meta("genesis_root") or "")
        if tree.root != expected:
            store.close()
            raise NodeError(
                f"state root mismatch in {home}: stored leaves give 0x{tree.root.hex()}, "
                f"the last committed batch says 0x{expected.hex()}"
            )
        return cls(home, store, genesis, state, tree, leaves)

    def close(self) -> None:
        self.store.close()

    # --- queries ---
    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def batch_number(self) -> int:
        latest = self.store.latest_batch()
        return latest.number if latest else 0

    # --- the batch pipeline ---
    def submit(self, transactions: Sequence, progress: Progress | None = None) -> BatchResult:
        """Check signatures, execute in order, build the diff and the new root, commit atomically.

        If anything fails before the commit, the in-memory state is reloaded from the store, so
        the node never holds a half-applied batch.
        """
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        checks = check_signatures(transactions, self.genesis.chain_id)
        t1 = time.perf_counter()
        timings["signatures_s"] = t1 - t0
        try:
            self.state.touched.clear()
            cpu = time.process_time()
            receipts = execute_batch(self.state, transactions, checks, progress)
            t2 = time.perf_counter()
            timings["execution_s"] = t2 - t1
            timings["execution_cpu_s"] = time.process_time() - cpu  # robust on a shared machine
            diff_rows, updates = self._compute_diff()
            prev_root = self.tree.root
            new_root = self.tree.update(updates)
            t3 = time.perf_counter()
            timings["diff_and_root_s"] = t3 - t2
            number = self.batch_number + 1
            self.store.commit_batch(
                number,
                prev_root,
                new_root,
                [tx.model_dump_json() for tx in transactions],
                ((r.status, r.model_dump_json()) for r in receipts),
                diff_rows,
                {"timings": timings, "touched_leaves": len(diff_rows)},
            )
            timings["commit_s"] = time.perf_counter() - t3
        except BaseException:
            self._reload()
            raise
        for key, _, after in diff_rows:
            if after:
                self.leaves[key] = after
            else:
                self.leaves.pop(key, None)
        self.state.touched.clear()
        diff = StateDiff(
            prev_root="0x" + prev_root.hex(),
            new_root="0x" + new_root.hex(),
            leaves=[LeafDiff(key=k, before="0x" + b.hex(), after="0x" + a.hex()) for k, b, a in diff_rows],
        )
        timings["total_s"] = time.perf_counter() - t0
        return BatchResult(number, prev_root, new_root, receipts, diff, timings)

    def _compute_diff(self) -> tuple[list[tuple[int, bytes, bytes]], dict[int, bytes]]:
        rows, updates = [], {}
        for key in sorted(self.state.touched):
            before = self.leaves.get(key, b"")
            after = encode_state_leaf(self.state, key, self.genesis_hash)
            if after != before:
                rows.append((key, before, after))
                updates[key] = leaf_hash(after) if after else EMPTY_LEAF
        return rows, updates

    def _reload(self) -> None:
        """Rebuild memory from the last committed batch (after a failed submit)."""
        self.leaves = self.store.load_leaves()
        self.state = state_from_leaves(self.genesis, self.leaves)
        self.tree = SparseMerkleTree.from_leaves({k: leaf_hash(v) for k, v in self.leaves.items()}, TREE_DEPTH)


def genesis_keys(state: State) -> list[int]:
    """Keys of the leaves that exist at genesis: every instrument and the globals leaf."""
    from verifier.encoding import GLOBALS_KEY, instrument_key

    return [instrument_key(i) for i in sorted(state.instruments)] + [GLOBALS_KEY]
