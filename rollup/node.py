"""The node: a home directory holding the SQLite store, the state it implies, and its Merkle root.

`Node.init(home, genesis)` creates a node; `Node.open(home)` reopens it at the last committed batch
and checks that the stored root equals the root recomputed from the stored leaves (so a crash, or
a tampered database, is caught on open). `node.submit(transactions)` cuts the transactions into
batches of at most the node's batch bound (`max_batch_txs`, by default `DEFAULT_MAX_BATCH_TXS`) and
at most `MAX_BATCH_ORACLE_UPDATES` oracle updates, and runs each: the signature pass, execution (sequential in
submission order, the reference; or on an executor, partitioned or pipelined, with the same
result), the diff and the new root, and one database transaction.

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
import pickle
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from pathlib import Path

from rollup.executors import get_executor_workers
from rollup.state_tree import StateCommitment, compute_account_value
from rollup.parallel import ACCOUNT_KEY_LIMIT, gc_paused
from rollup.rules import process_transaction
from rollup.state import State
from rollup.state_codec import encode_state_leaf, state_from_leaves
from rollup.storage import BatchWriter, StorageError, Store
from verifier.encoding import (
    InvalidSignature,
    compute_checksum_address,
    compute_genesis_hash,
    compute_signing_digest,
    get_signature_fields,
    is_l2_signed,
    recover_address_bytes,
)
from verifier.l2auth import compute_signed_words, compute_tx_message, get_domain_tag, verify_l2_signatures
from verifier.state_tree import get_tree_shape
from verifier.wire import Genesis, LeafDiff, Receipt, StateDiff

DEFAULT_HOME = "~/.rollup"
# A batch settles in one L1 transaction: 256 trades with two signatures each are 43 KB of calldata,
# a third of geth's 128 KB transaction limit (gas: docs/settlement.md). A node setting.
DEFAULT_MAX_BATCH_TXS = 256
MAX_BATCH_ORACLE_UPDATES = 4  # an oracle update opens a segment: this bounds the segments a batch needs
MAX_BATCH_TXS_META = "max_batch_txs"  # the node's batch bound in its store (JSON: a count or null)

Progress = Callable[[int], None]  # called with the number of transactions just processed
EXECUTION_MODES = ("partitioned", "pipelined")
SIGNATURE_CHUNKS_PER_WORKER = 16
MIN_SIGNATURE_CHUNK = 64


def resolve_home(home: str | Path | None) -> Path:
    """--home, else $ROLLUP_HOME, else ~/.rollup."""
    chosen = home if home is not None else os.environ.get("ROLLUP_HOME", DEFAULT_HOME)
    return Path(chosen).expanduser()


class NodeError(Exception):
    """The node cannot do what was asked (no node, inconsistent store, ...)."""


@dataclass(frozen=True)
class SignatureCheck:
    """Result of the signature pass over one transaction: its hash and signers (recovered addresses,
    verified L2 key ids), or why its signatures are refused (then the transaction is rejected
    without executing)."""

    tx_hash: str
    signers: tuple[str | int, ...] | None  # addresses (Ethereum signatures) or key ids (L2 signatures)
    error: str | None = None


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


def check_signatures(transactions: Sequence, domain: SigningDomain, executor: Executor | None = None) -> list[SignatureCheck]:
    """Hash every transaction (EIP-712 digest) and check who signed it (as `verifier.l2auth.check_signers`
    does one by one: recovered addresses of Ethereum signatures, key ids of verified L2 signatures,
    here batch-verified: `check_signature_chunk`).

    With an executor, the checks (the costly part: about 80 us per Ethereum recovery and 250 us
    per L2 verification, against 4 us for the digest) run in chunks on its workers; only digests,
    record words and signature strings travel. The result is identical to the sequential pass:
    the same per-signature checks, results kept in order.
    """
    if executor is None:
        # the workers' function on the whole batch: L2 signatures batch-verified, as in parallel
        digests = [compute_signing_digest(tx, domain) for tx in transactions]
        checked = check_signature_chunk(get_domain_tag(domain), build_signature_jobs(transactions, digests))
        return to_signature_checks(digests, checked)
    return [check for _, chunk_checks in iter_signature_checks(transactions, domain, executor) for check in chunk_checks]


def iter_signature_checks(transactions: Sequence, domain: SigningDomain, executor: Executor) -> Iterator[tuple[int, list[SignatureCheck]]]:
    """The parallel signature pass, chunk by chunk in batch order: yields (start index, checks).

    Pipelined: workers check chunk k while this process hashes and packs chunk k+1, and this
    process consumes chunk k (unpacking it, or executing it: `Node.submit`'s pipelined mode)
    while they work on later ones."""
    size = compute_signature_chunk_size(len(transactions), get_executor_workers(executor))
    tag = get_domain_tag(domain)
    pending: list[tuple[int, list[bytes], Future]] = []
    try:
        for start in range(0, len(transactions), size):
            chunk = transactions[start : start + size]
            digests = [compute_signing_digest(tx, domain) for tx in chunk]
            pending.append((start, digests, executor.submit(check_packed_signature_chunk, pack_signature_jobs(chunk, digests, tag))))
        for start, digests, future in pending:
            yield start, to_signature_checks(digests, pickle.loads(future.result()))
    finally:
        for _, _, future in pending:
            future.cancel()


def to_signature_checks(digests: Sequence[bytes], checked: Sequence[tuple[Any, str | None]]) -> list[SignatureCheck]:
    return [
        SignatureCheck("0x" + d.hex(), None if raw is None else tuple(_get_signer(v) for v in raw), error)
        for d, (raw, error) in zip(digests, checked, strict=True)
    ]


def _get_signer(value: bytes | int) -> str | int:
    """A worker's answer for one signature: 20 address bytes (checksummed here) or a key id."""
    return value if value.__class__ is int else compute_checksum_address(value)


def pack_signature_jobs(chunk: Sequence, digests: Sequence[bytes], tag: int) -> bytes:
    """(domain tag, jobs) as one bytes object made by the C pickler, a job per transaction:
    (digest, signatures, record words for L2 signatures or None). The process pool's dill pickler
    is pure Python and, on 50k small tuples, costs more than the recovery it moves to another core."""
    return pickle.dumps((tag, build_signature_jobs(chunk, digests)), protocol=pickle.HIGHEST_PROTOCOL)


def build_signature_jobs(chunk: Sequence, digests: Sequence[bytes]) -> list[tuple[bytes, tuple[str, ...], tuple[tuple[int, ...], ...] | None]]:
    """(digest, signatures, for L2 signatures the words each signs, else None) per transaction."""
    return [
        (d, tuple(getattr(tx, n) for n in get_signature_fields(type(tx))), compute_signed_words(tx) if is_l2_signed(type(tx)) else None)
        for d, tx in zip(digests, chunk)
    ]


def compute_signature_chunk_size(n_transactions: int, workers: int) -> int:
    """A few chunks per worker even out a worker slowed by its neighbours; a floor keeps the
    per-task overhead (0.1 ms in a pool, 2 ms on Dask) small against 80 us a transaction."""
    return max(MIN_SIGNATURE_CHUNK, -(-n_transactions // (workers * SIGNATURE_CHUNKS_PER_WORKER)))


def check_packed_signature_chunk(data: bytes) -> bytes:
    """`check_signature_chunk` on a pickled chunk, its result pickled (runs on a worker)."""
    return pickle.dumps(check_signature_chunk(*pickle.loads(data)), protocol=pickle.HIGHEST_PROTOCOL)


SignerValues = tuple["bytes | int", ...]


def check_signature_chunk(tag: int, jobs: Sequence[tuple[bytes, tuple[str, ...], Sequence[Sequence[int]] | None]]) -> list[tuple[SignerValues | None, str | None]]:
    """Runs on a worker: (signers, None) or (None, why) per (digest, signatures, signed words) job,
    as `check_signers` would give for the transaction but with Ethereum signers as their 20
    address bytes. The checksums are left to the coordinator, whose cache holds every account's
    address from loading the state: a worker's cache starts cold in every new pool, and filling
    it cost each worker about a tenth of its recovery time."""
    results: list[tuple[SignerValues | None, str | None]] = []
    l2_items: list[tuple[int, str]] = []  # (message, signature) of every L2 signature, in job order
    for digest, signatures, words in jobs:
        if words is not None:
            l2_items += [(compute_tx_message(tag, w), s) for w, s in zip(words, signatures)]
            results.append((None, None))  # filled below
            continue
        try:
            results.append((tuple(recover_address_bytes(digest, s) for s in signatures), None))
        except InvalidSignature as exc:
            results.append((None, f"invalid signature: {exc}"))
    # the L2 signatures checked together (batch verification), then handed back to their jobs
    answers = iter(verify_l2_signatures(l2_items))
    for index, (_, signatures, words) in enumerate(jobs):
        if words is not None:
            values = [next(answers) for _ in signatures]
            refused = next((v for v in values if v.__class__ is str), None)
            results[index] = (None, f"invalid signature: {refused}") if refused is not None else (tuple(values), None)
    return results


def execute_batch(
    state: State, transactions: Sequence, checks: Sequence[SignatureCheck], progress: Progress | None = None, first_index: int = 0
) -> list[Receipt]:
    """Apply transactions in submission order; a transaction with a malformed signature is
    rejected without executing. Records touched leaves in `state.touched`. Receipts are numbered
    from `first_index` (a slice of a batch executes with its batch indices)."""
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


@dataclass
class PendingBatch:
    """What `Node.submit` prepares for the commit while a batch executes (pipelined mode)."""

    writer: BatchWriter | None = None  # the open database transaction, if opened early
    leaves: dict[int, tuple[bytes, int | None]] = field(default_factory=dict)  # key -> final (bytes, leaf value)
    written: dict[int, tuple[int, bytes, bytes]] = field(default_factory=dict)  # key -> diff row written early
    hash_jobs: list[tuple[list[tuple[int, bytes]], Any]] = field(default_factory=list)  # leaves hashing on the workers

    def collect_hashes(self) -> None:
        """Fill in the leaf values the workers computed (for leaves still final with those bytes)."""
        for jobs, future in self.hash_jobs:
            for (key, data), value in zip(jobs, get_worker_result(future, "leaf hashing")):
                known = self.leaves.get(key)
                if known is not None and known[0] == data:
                    self.leaves[key] = (data, value)
        self.hash_jobs.clear()


def get_last_chunks(transactions: Sequence, chunk_size: int) -> dict[int, int]:
    """Account key -> the last chunk (of `chunk_size` transactions) whose transactions name it,
    from the transactions' fields alone (the planner's account getters)."""
    from rollup.planner import ACCOUNT_GETTERS

    last: dict[int, int] = {}
    getters = ACCOUNT_GETTERS
    for index, tx in enumerate(transactions):
        getter = getters[type(tx)]
        if getter is not None:
            chunk = index // chunk_size
            for account in getter(tx):
                last[account] = chunk
    return last


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
        self.store.close()

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
        progress: Progress | None = None,
        executor: Executor | None = None,
        partitions: int | None = None,
        coordinator_executes: bool = True,
        window: int | None = None,
        mode: str = "partitioned",
        max_batch_txs: int | None | _NodeBatchBound = NODE_BATCH_BOUND,
    ) -> Submission:
        """Cut `transactions` into consecutive parts of at most `max_batch_txs` (default: the
        node's bound; None: one part, execution only) and run each as a batch: check signatures,
        execute in order, build the diff and the new root, commit atomically. A part in which no
        transaction is accepted commits no batch (nothing changed; its receipts are returned in
        `Submission.unbatched`).

        Without `executor`, execution is sequential (the reference). With one, the batch runs in
        `partitions` conflict-free partitions on it (default: the executor's worker count;
        rollup/parallel.py), with the same receipts, state, diff and root; this process runs
        partition 0 itself unless `coordinator_executes` is False; with `window`, the batch is
        planned in consecutive windows of that many transactions (against percolation:
        `rollup.planner.compute_window_size` suggests a size). If anything fails
        before the commit (a failed partition raises NodeError naming it), the in-memory state is
        reloaded from the store, so the node never holds a half-applied batch.

        `mode="pipelined"` (with an executor) is the other parallel strategy: the workers recover
        signatures chunk by chunk while this process executes, sequentially and in order, every
        chunk whose signatures have arrived; no state travels. It wins on few cores, where the
        signature pass, not execution, dominates a batch (docs/parallel.md, "Measured").
        """
        # A known way to execute (a caller bug otherwise).
        if mode not in EXECUTION_MODES:
            raise NodeError(f"unknown execution mode {mode!r}: choose one of {', '.join(EXECUTION_MODES)}")
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
                part = transactions[start:end]
                result, part_receipts = self._submit(part, progress, executor, partitions, coordinator_executes, window, mode)
                numbered = [r.model_copy(update={"index": start + r.index}) for r in part_receipts] if start else part_receipts
                receipts += numbered
                if result is None:
                    unbatched += numbered
                else:
                    batches.append(result)
        return Submission(batches, receipts, unbatched, prev_root, self.tree.root_bytes)

    def _submit(
        self,
        transactions: Sequence,
        progress: Progress | None,
        executor: Executor | None,
        partitions: int | None,
        coordinator_executes: bool,
        window: int | None,
        mode: str,
    ) -> tuple[BatchResult | None, list[Receipt]]:
        """One batch: (its result, its receipts), or (None, the receipts) if nothing was accepted."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        number = self.batch_number + 1
        batch = PendingBatch()
        try:
            self.state.touched.clear()
            if executor is not None and mode == "pipelined":
                batch.writer = self.store.begin_batch(number)
                receipts = self._execute_pipelined(transactions, executor, progress, timings, batch)
            else:
                receipts = self._check_and_execute(transactions, executor, partitions, progress, timings, coordinator_executes, window)
            # A batch has at least one accepted transaction: an empty one cannot settle, and
            # rejected transactions changed nothing, so there is nothing to commit.
            if not any(r.status == "accepted" for r in receipts):
                self._discard_unaccepted(batch)
                return None, receipts
            t2 = time.perf_counter()
            batch.collect_hashes()
            diff_rows, accounts, others = self._compute_diff(batch.leaves, executor)
            unwritten = self._get_unwritten_rows(diff_rows, batch)
            prev_root = self.tree.root_bytes
            self.tree.update(accounts, others)
            new_root = self.tree.root_bytes
            t3 = time.perf_counter()
            timings["diff_and_root_s"] = t3 - t2
            written = batch.writer.n_tx if batch.writer is not None else 0
            self.store.commit_batch(
                number,
                prev_root,
                new_root,
                [tx.model_dump_json() for tx in transactions[written:]],
                ((r.status, r.model_dump_json()) for r in receipts[written:]),
                unwritten,
                {"timings": timings, "touched_leaves": len(diff_rows)},
                batch.writer,
            )
            timings["commit_s"] = time.perf_counter() - t3
        except BaseException:
            if batch.writer is not None:
                batch.writer.abort()
            self._reload()
            raise
        for key, _, after in diff_rows:
            if after:
                self.leaves[key] = after
            else:
                self.leaves.pop(key, None)
        self.state.touched.clear()
        timings["total_s"] = time.perf_counter() - t0
        return BatchResult(number, prev_root, new_root, receipts, diff_rows, timings), receipts

    def _discard_unaccepted(self, batch: "PendingBatch") -> None:
        """Drop a batch in which nothing was accepted: its early writes are rolled back; the state
        is untouched (rejections change nothing), else it is reloaded from the store."""
        if batch.writer is not None:
            batch.writer.abort()
            batch.writer = None
        if self.state.touched:
            self._reload()
        self.state.touched.clear()

    def _check_and_execute(
        self,
        transactions: Sequence,
        executor: Executor | None,
        partitions: int | None,
        progress: Progress | None,
        timings: dict,
        coordinator_executes: bool,
        window: int | None,
    ) -> list[Receipt]:
        """The signature pass, then execution: sequential without an executor, else partitioned."""
        t0, cpu0 = time.perf_counter(), time.process_time()
        checks = self._check_signatures(transactions, executor)
        t1, cpu1 = time.perf_counter(), time.process_time()
        timings["signatures_s"] = t1 - t0
        timings["signatures_cpu_s"] = cpu1 - cpu0  # this process only, not its workers
        if executor is None:
            receipts = execute_batch(self.state, transactions, checks, progress)
        else:
            receipts = self._execute_parallel(transactions, checks, executor, partitions, progress, timings, coordinator_executes, window)
        timings["execution_s"] = time.perf_counter() - t1
        timings["execution_cpu_s"] = time.process_time() - cpu1  # robust on a shared machine
        return receipts

    def _check_signatures(self, transactions: Sequence, executor: Executor | None) -> list[SignatureCheck]:
        """The signature pass, on the executor's workers if there is one; a failed worker fails the
        batch before anything executes."""
        if executor is None:
            return check_signatures(transactions, self.genesis.signing_domain)
        try:
            return check_signatures(transactions, self.genesis.signing_domain, executor)
        except Exception as exc:  # noqa: BLE001 - any worker failure fails the batch, with its cause
            raise NodeError(f"batch not committed: the signature checks failed in a worker: {type(exc).__name__}: {exc}") from exc

    def _execute_pipelined(
        self, transactions: Sequence, executor: Executor, progress: Progress | None, timings: dict, batch: "PendingBatch"
    ) -> list[Receipt]:
        """Sequential execution of each chunk as soon as the workers have checked its signatures.

        While the workers still run, this process also does the batch's serial tail work that is
        final after the chunk: it writes the chunk's transactions and receipts to the open database
        transaction, and encodes and hashes the leaves of the accounts no later transaction names
        (`batch.leaves`). Only what depends on the whole batch (the other leaves, the root, the
        commit) is left for after the last chunk."""
        receipts: list[Receipt] = []
        waited = 0.0
        cpu = time.process_time()
        started = time.perf_counter()
        chunk_size = compute_signature_chunk_size(len(transactions), get_executor_workers(executor))
        last_chunk = get_last_chunks(transactions, chunk_size)
        chunks = iter_signature_checks(transactions, self.genesis.signing_domain, executor)
        touched: set[int] = set()
        writer = batch.writer
        while True:
            t = time.perf_counter()
            try:
                start, checks = next(chunks)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - any worker failure fails the batch, with its cause
                raise NodeError(f"batch not committed: the signature checks failed in a worker: {type(exc).__name__}: {exc}") from exc
            waited += time.perf_counter() - t
            chunk = transactions[start : start + len(checks)]
            chunk_receipts = execute_batch(self.state, chunk, checks, progress, start)
            receipts.extend(chunk_receipts)
            writer.write_transactions([tx.model_dump_json() for tx in chunk])
            writer.write_receipts((r.status, r.model_dump_json()) for r in chunk_receipts)
            self._encode_final_leaves(start // chunk_size, last_chunk, batch, executor)
            touched |= self.state.touched
            self.state.touched.clear()
        self.state.touched = touched
        timings["signatures_and_execution_s"] = time.perf_counter() - started
        timings["waiting_for_signatures_s"] = waited
        timings["coordinator_cpu_s"] = time.process_time() - cpu
        return receipts

    def _encode_final_leaves(self, chunk: int, last_chunk: dict[int, int], batch: "PendingBatch", executor: Executor) -> None:
        """Leaf bytes of every account the chunk just executed touched and no later chunk names
        (`get_last_chunks`), their hashes sent to the workers (Poseidon leaf hashes are most of a
        root update; the coordinator keeps executing), and their diff rows written to the open
        batch; a key touched again later is dropped from `batch.leaves` and encoded at the end."""
        genesis_hash = self.genesis_hash
        leaves = batch.leaves
        rows = []
        to_hash: list[tuple[int, bytes]] = []
        for key in self.state.touched:
            if key < ACCOUNT_KEY_LIMIT and last_chunk.get(key, chunk) <= chunk and key not in batch.written:
                after = encode_state_leaf(self.state, key, genesis_hash)
                leaves[key] = (after, None)
                to_hash.append((key, after))
                before = self.leaves.get(key, b"")
                if after != before:
                    rows.append((key, before, after))
            else:
                leaves.pop(key, None)
        if to_hash:
            batch.hash_jobs.append((to_hash, executor.submit(_hash_account_chunk, self.tree.table, [data for _, data in to_hash])))
        batch.writer.write_leaf_changes(rows)
        batch.written.update((row[0], row) for row in rows)

    def _get_unwritten_rows(self, diff_rows: list[tuple[int, bytes, bytes]], batch: "PendingBatch") -> list[tuple[int, bytes, bytes]]:
        """The diff rows the commit still has to write: those not written early, and those
        written early whose key a later chunk touched again (taken back first)."""
        if not batch.written:
            return diff_rows
        stale = [row for key, row in batch.written.items() if key not in batch.leaves]
        if stale:
            batch.writer.undo_leaf_changes(stale)
        final = {key for key in batch.written if key in batch.leaves}
        return [row for row in diff_rows if row[0] not in final]

    def _execute_parallel(
        self,
        transactions: Sequence,
        checks: list[SignatureCheck],
        executor: Executor,
        partitions: int | None,
        progress: Progress | None,
        timings: dict,
        coordinator_executes: bool,
        window: int | None,
    ) -> list[Receipt]:
        from rollup.parallel import PartitionError, execute_batch_parallel, execute_batch_windowed  # imports the planner

        count = get_executor_workers(executor) if partitions is None else partitions
        try:
            if window is None:
                return execute_batch_parallel(self.state, transactions, checks, executor, count, progress, timings, coordinator_executes)
            return execute_batch_windowed(
                self.state, transactions, checks, executor, count, progress, timings, coordinator_executes, window
            )
        except PartitionError as exc:
            raise NodeError(f"batch not committed: {exc}") from exc

    def _compute_diff(
        self, encoded: Mapping[int, tuple[bytes, int]], executor: Executor | None = None
    ) -> tuple[list[tuple[int, bytes, bytes]], dict[int, int], dict[int, bytes]]:
        """(key, before, after) of every touched leaf that changed, the new account leaf values by
        account id (`verifier.state_tree`) and the other changed leaves' bytes by key; `encoded`
        holds (bytes, value) of accounts already encoded in their final state. The remaining
        account leaves are hashed on `executor` when given (Poseidon leaf hashes are most of a
        root update; they are independent), else here."""
        rows, accounts, others = [], {}, {}
        unhashed: list[tuple[int, bytes]] = []
        for key in sorted(self.state.touched):
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

    def _reload(self) -> None:
        """Rebuild memory from the last committed batch (after a failed submit)."""
        self.leaves = self.store.load_leaves()
        self.state = state_from_leaves(self.genesis, self.leaves)
        self.tree = build_tree(self.genesis, self.leaves)
        gc.freeze()


PARALLEL_HASH_MIN_LEAVES = 512  # below this, shipping leaves to workers costs more than hashing them


def _hash_account_chunk(table: tuple[int, ...], leaves: list[bytes]) -> list[int]:
    return [compute_account_value(data, table) for data in leaves]


def hash_account_leaves(leaves: Sequence[tuple[int, bytes]], table: tuple[int, ...], executor: Executor | None = None) -> dict[int, int]:
    """Leaf values of (account id, leaf bytes), in chunks on `executor` when there are enough of
    them to pay for the trip (the same values as hashing them here)."""
    if executor is None or len(leaves) < PARALLEL_HASH_MIN_LEAVES:
        return {key: compute_account_value(data, table) for key, data in leaves}
    n_chunks = 2 * max(1, get_executor_workers(executor))
    size = -(-len(leaves) // n_chunks)
    chunks = [leaves[i : i + size] for i in range(0, len(leaves), size)]
    futures = [executor.submit(_hash_account_chunk, table, [data for _, data in chunk]) for chunk in chunks]
    values: dict[int, int] = {}
    for chunk, future in zip(chunks, futures):
        values.update(zip((key for key, _ in chunk), get_worker_result(future, "leaf hashing")))
    return values


def get_worker_result(future: Any, what: str) -> Any:
    """A worker task's result; its failure fails the batch with the cause (NodeError: the CLI
    prints one line, and the node reloads its state)."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - any worker failure fails the batch, with its cause
        raise NodeError(f"batch not committed: {what} failed in a worker: {type(exc).__name__}: {exc}") from exc


def build_tree(genesis: Genesis, leaves: dict[int, bytes]) -> StateCommitment:
    """The state commitment (v3 root) of these canonical leaf bytes."""
    return StateCommitment.from_leaves(genesis, get_tree_shape(genesis), leaves)


def genesis_keys(state: State) -> list[int]:
    """Keys of the leaves that exist at genesis: every instrument and the globals leaf."""
    from verifier.encoding import GLOBALS_KEY, instrument_key

    return [instrument_key(i) for i in sorted(state.instruments)] + [GLOBALS_KEY]
