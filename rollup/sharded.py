"""Sharded execution: account shards resident in workers across batches, the same result as
sequential execution bit for bit.

Each shard (a worker process, or a Dask actor on a cluster) keeps, between batches, the accounts
it holds, a replica of the instruments and the globals, and the Merkle subtrees it owns. A batch
sends it only transactions and the accounts that move; it sends back outcomes, the leaves it
changed and its subtree roots. docs/parallel.md ("Sharded") says why the result is exact; in
short:

- **Ownership.** The accounts tree is cut at `level` into subtrees of `arity ** level` leaves;
  subtree `i` belongs to shard `i % n_shards` for the life of the shard set. Who *holds* an
  account (its live `Account` object) may change: the shard that executes it last keeps it.
- **Cross-shard protocol: ownership moved for the window.** The coordinator cuts the batch into
  windows (`rollup.planner.compute_window_size`, against percolation), groups each window's
  transactions by shared accounts (conflict groups) and gives every group to one shard, choosing
  by load plus the accounts it would have to move (an affine LPT). A group's accounts held
  elsewhere are exported by their holder at the end of the previous window and imported by the
  group's shard before it executes: every transaction then executes on one shard holding every
  account it names, in batch order, with the sequential node's `process_transaction`. Windows
  run one after another (a barrier: the moves of window w + 1 come out of window w).
- **Everything else** is the partitioned mode's argument (rollup/parallel.py): oracle updates are
  replayed by every shard at their batch positions (their signatures checked by the
  coordinator); deposits are resolved by the coordinator's pre-pass (their signatures too);
  fee pool, insurance fund and open interest are sums of per-shard deltas.
- **Signatures** of every other transaction are checked by the shard that executes it, before it
  executes, in one batch verification per window (digests included): nothing about signatures
  crosses back but the hash and the outcome.
- **The root.** At the end (seal), every shard encodes and hashes the leaves of the accounts it
  holds and touched; the coordinator sends each changed leaf value to its subtree's owner, which
  updates its subtrees and returns their roots; the coordinator hashes the levels above
  (`StateCommitment.update_from_subtrees`). The serial tail is the commit.

Failures: an error or a dead shard fails the batch (`ShardError`, or `WorkerCrashed` naming the
shard) and the set is closed: its shards may hold half a batch. The node reloads from its store
and builds a new set on the next sharded batch (`Node.submit`).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import resource
import time
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from operator import itemgetter
from dataclasses import dataclass, field
from typing import Any, Callable

from rollup.execution import ACCOUNT_KEY_LIMIT, gc_paused
from rollup.executors import WorkerCrashed
from rollup.parallel import (
    TX_CLASSES,
    apply_oracle_fields,
    build_model,
    build_receipt,
    compute_deposit_counters,
    decode_account,
    decode_instrument,
    decode_transaction,
    encode_account,
    encode_instrument,
    encode_transaction,
    get_oracle_fields,
    get_outcome,
    run_in_batch_order,
)
from rollup.planner import DEFAULT_COSTS, compute_window_size, get_account_pairs, group_pairs_numpy
from rollup.resident import PICKLE_PROTOCOL, DaskLink, ProcessLink
from rollup.state import Globals, State
from rollup.state_codec import encode_account as encode_account_leaf, encode_state_leaf
from rollup.state_tree import PoseidonTree, StateCommitment, compute_account_value
from rollup.signatures import build_signature_jobs, check_signature_chunk, to_signature_checks
from verifier.encoding import GLOBALS_KEY, compute_signing_digest, get_signature_fields, instrument_key
from verifier.l2auth import get_domain_tag
from verifier.state_tree import TreeShape, get_instrument_table, get_tree_shape
from verifier.wire import Deposit, Genesis, OracleUpdate, Receipt

# A node may run in a service with threads: never fork it. A fork server is a clean process
# started once, with the shard's modules imported (preloaded), from which each shard forks: it
# starts in milliseconds and shares the interpreter's and the modules' pages with its siblings
# (spawned, each shard held ~100 MB of its own imports).
DEFAULT_START_METHOD = "forkserver"
FORKSERVER_PRELOAD = ["rollup.sharded"]
SUBTREES_PER_SHARD = 8  # owned subtrees per shard at the planned account count: balance, and few top hashes
MIN_PLANNED_ACCOUNTS = 4_096  # a new node's subtrees sized as if it had this many accounts
# Estimated cost (µs of one core) of checking one signature in a shard, and of moving an account
# (export, relay, import): with the execution costs, what the assignment balances.
SIGNATURE_COST = 120.0
MOVE_COST = 15.0
COORDINATOR_CHECKED = (Deposit, OracleUpdate)
# Rows per batch verification in a shard: large enough that the multi-scalar multiplication stays
# efficient, small enough that its working memory does not set the shard's peak.
CHECK_CHUNK = 4_096  # rows whose signatures a shard verifies together (`Shard.check_rows`)

_CHECK, _WINDOW, _SEAL, _SUBTREES, _SNAPSHOT = "check", "window", "seal", "subtrees", "snapshot"
_OK, _ERROR = "ok", "error"


class ShardError(Exception):
    """A shard failed, or the shards disagree: the batch is not applied and the set is closed."""


# --- ownership ----------------------------------------------------------------------------------------


def get_context(start_method: str) -> Any:
    """The multiprocessing context the shards start with (the fork server preloads the engine)."""
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        context.set_forkserver_preload(FORKSERVER_PRELOAD)
    return context


def choose_subtree_level(n_accounts: int, n_shards: int, shape: TreeShape) -> int:
    """The height of the owned subtrees: the highest level at which the accounts planned for
    (`max(n_accounts, MIN_PLANNED_ACCOUNTS)`, ids allocated from 0) fill at least
    `SUBTREES_PER_SHARD` subtrees per shard."""
    target = max(n_accounts, MIN_PLANNED_ACCOUNTS) / (SUBTREES_PER_SHARD * n_shards)
    level = 0
    while level < shape.depth and shape.arity ** (level + 1) <= target:
        level += 1
    return level


def get_owner(account: int, level: int, arity: int, n_shards: int) -> int:
    """The shard owning the subtree of `account`: subtrees dealt round-robin."""
    return (account // arity**level) % n_shards


def estimate_shard_costs(costs: Mapping[str, float] = DEFAULT_COSTS) -> dict[type, float]:
    """Per transaction class: execution plus the signatures the shard checks."""
    out = {}
    for name, cls in TX_CLASSES.items():
        signatures = 0 if cls in COORDINATOR_CHECKED else len(get_signature_fields(cls))
        out[cls] = costs.get(name, 0.0) + signatures * SIGNATURE_COST
    return out


SHARD_COSTS = estimate_shard_costs()


# --- the shard (in its worker) ------------------------------------------------------------------------

_FULL_FIELDS: dict[type, tuple[str, ...]] = {cls: tuple(cls.model_fields) for cls in TX_CLASSES.values()}
_FIELDS_SET: dict[type, frozenset[str]] = {cls: frozenset(cls.model_fields) for cls in TX_CLASSES.values()}


def encode_signed_transaction(tx: Any) -> tuple:
    """Every field, signatures included, in declaration order (not for oracle updates: the
    coordinator checks and broadcasts those with `rollup.parallel.encode_transaction`)."""
    values = tx.__dict__
    return tuple([values[name] for name in _FULL_FIELDS[type(tx)]])


def decode_signed_transaction(row: tuple) -> Any:
    cls = TX_CLASSES[row[0]]
    return build_model(cls, dict(zip(_FULL_FIELDS[cls], row)), _FIELDS_SET[cls])


@dataclass
class ShardInit:
    index: int
    n_shards: int
    genesis: Genesis
    level: int
    accounts: dict[int, tuple]  # encode_account of the accounts it holds at the start
    values: dict[int, int]  # leaf values of the accounts in its subtrees
    instruments: dict[int, tuple]
    globals: tuple[int, int, int, int]


class Shard:
    """One shard's resident state and its request handler (`rollup.resident`)."""

    def __init__(self, init: ShardInit):
        self.index = init.index
        self.genesis = init.genesis
        self.domain = init.genesis.signing_domain
        self.tag = get_domain_tag(self.domain)
        self.table = get_instrument_table(s.id for s in init.genesis.instruments)
        self.level = init.level
        self.state = State(
            init.genesis,
            {i: decode_account(row) for i, row in init.accounts.items()},
            {i: decode_instrument(row) for i, row in init.instruments.items()},
            Globals(*init.globals),
        )
        self.tree = PoseidonTree(get_tree_shape(init.genesis))
        self.tree.update_subtrees(init.values, self.level)
        self.touched: set[int] = set()  # accounts held here that changed in this batch
        self.checked: dict[int, tuple[tuple, Any]] = {}  # batch index -> (row, signature check), until it runs
        self.final: list[int] = []  # touched accounts whose leaves no later window changes, not hashed yet
        self.sealed: dict[int, tuple[bytes, int, tuple | None]] = {}  # hashed while idle
        self.idle_cpu_s = 0.0
        self.hot = self._get_hot()
        self.expected = 0
        self.cpu_s = 0.0

    def _get_hot(self) -> tuple[int, int, dict[int, int]]:
        g = self.state.globals
        return g.fee_pool, g.insurance_fund, {i: inst.open_interest for i, inst in self.state.instruments.items()}

    def handle(self, frame: bytes) -> bytes:
        kind, seq, payload = pickle.loads(frame)
        cpu = time.process_time()
        try:
            # requests are answered in the order they were sent
            if seq != self.expected:
                raise ShardError(f"request {seq} arrived when request {self.expected} was due")
            self.expected += 1
            with gc_paused():
                if kind == _WINDOW:
                    reply: tuple = (_OK, self.run_window(*payload))
                elif kind == _CHECK:
                    reply = (_OK, self.check_rows(payload))
                elif kind == _SEAL:
                    reply = (_OK, self.seal())
                elif kind == _SUBTREES:
                    reply = (_OK, self.update_subtrees(payload))
                elif kind == _SNAPSHOT:
                    reply = (_OK, {i: encode_account(a) for i, a in self.state.accounts.items()})
                else:
                    raise ShardError(f"unknown request {kind!r}")
        except Exception as exc:  # noqa: BLE001 - reported to the coordinator, which raises it
            reply = (_ERROR, f"{type(exc).__name__}: {exc}")
        self.cpu_s += time.process_time() - cpu
        return pickle.dumps(reply, protocol=PICKLE_PROTOCOL)

    def run_window(
        self,
        imports: dict[int, tuple[tuple, bool]],
        rows: list[tuple[int, tuple, tuple | None]],
        broadcast: list[tuple[int, tuple, tuple]],
        counters: dict[int, int],
        exports: list[int],
        finals: list[int],
    ) -> tuple:
        """Import the accounts moving in, check the signatures of the rows not checked yet, execute
        the rows and the broadcast oracle updates in batch order, export the accounts moving out."""
        started = time.perf_counter()
        cpu = time.process_time()
        state = self.state
        for account_id, (row, touched) in imports.items():
            state.accounts[account_id] = decode_account(row)
            if touched:
                self.touched.add(account_id)
        pending = self.checked
        outcomes: list[str | None] = [None] * len(rows)
        hashes: list[str | None] = [None] * len(rows)
        txs: list[Any] = []
        signers_of: dict[int, tuple] = {}
        for k, (index, row, signers) in enumerate(rows):
            if row is None:  # sent and checked before the windows (`check_rows`)
                checked_row, check = pending.pop(index)
                tx = decode_transaction(checked_row)
                hashes[k] = check.tx_hash
                if check.signers is None:
                    outcomes[k] = check.error
                else:
                    signers_of[k] = check.signers
            else:  # checked before it was sent: no signatures (`encode_transaction`)
                tx = decode_transaction(row)
                signers_of[k] = signers
            txs.append(tx)
        own_positions = sorted(signers_of)
        own = [(rows[k][0], txs[k], signers_of[k]) for k in own_positions]
        replayed = [(index, decode_transaction(row), signers) for index, row, signers in broadcast]
        checked = time.perf_counter()
        own_receipts, broadcast_receipts = run_in_batch_order(state, own, replayed, counters)
        for k, receipt in zip(own_positions, own_receipts):
            outcomes[k] = get_outcome(receipt)
        accepted_deposits = [i for (i, tx, _), r in zip(own, own_receipts) if type(tx) is Deposit and r.status == "accepted"]
        self.touched.update(k for k in state.touched if k < ACCOUNT_KEY_LIMIT)
        state.touched.clear()
        # leaves final after this window: hashed while the shard waits for the next request (`idle`)
        self.final.extend(a for a in finals if a in self.touched)
        exported = {}
        for account_id in exports:
            account = state.accounts.pop(account_id, None)
            # the plan moves only accounts this shard holds
            if account is None:
                raise ShardError(f"shard {self.index} was asked to move account {account_id}, which it does not hold")
            exported[account_id] = (encode_account(account), account_id in self.touched)
            self.touched.discard(account_id)
        stats = (checked - started, time.perf_counter() - checked, time.process_time() - cpu)
        return outcomes, hashes, [get_outcome(r) for r in broadcast_receipts], accepted_deposits, exported, stats

    def check_rows(self, rows: list[tuple[int, tuple]]) -> float:
        """Check the signatures of rows this shard will execute in the batch (the coordinator sends
        them in one or two parts before the windows), in batch verifications of CHECK_CHUNK rows
        (batch verification gets cheaper per signature as the batch grows: per window it cost a
        third more); kept until their windows run. Returns the CPU seconds."""
        cpu = time.process_time()
        for start in range(0, len(rows), CHECK_CHUNK):
            chunk = rows[start : start + CHECK_CHUNK]
            txs = [decode_signed_transaction(row) for _, row in chunk]
            digests = [compute_signing_digest(tx, self.domain) for tx in txs]
            checks = to_signature_checks(digests, check_signature_chunk(self.tag, build_signature_jobs(txs, digests)))
            # kept until their windows: the rows without their signatures, not the models (a model
            # costs several times its row)
            self.checked.update((index, (encode_transaction(tx), check)) for (index, _), tx, check in zip(chunk, txs, checks))
        return time.process_time() - cpu

    def _encode_leaf(self, account_id: int) -> tuple[bytes, int, tuple | None]:
        """(leaf bytes, leaf value, compact row) of a held account (absent: empty; no rule deletes one)."""
        data = encode_state_leaf(self.state, account_id)
        account = self.state.accounts.get(account_id)
        return data, compute_account_value(data, self.table), None if account is None else encode_account(account)

    def idle(self, request_waiting: Callable[[], bool]) -> None:
        """Between requests (process transport): encode and hash the leaves already final, one at a
        time, until a request arrives. An account so sealed leaves `touched`; if anything touched
        it again, the seal would hash it again (the plan says nothing will)."""
        cpu = time.process_time()
        final = self.final
        while final and not request_waiting():
            account_id = final.pop()
            if account_id in self.touched:
                self.sealed[account_id] = self._encode_leaf(account_id)
                self.touched.discard(account_id)
        self.idle_cpu_s += time.process_time() - cpu

    def seal(self) -> tuple:
        """End of a batch: the leaves (key, bytes, value) of the accounts this shard holds and
        changed, its hot-state deltas and the oracle-written fields."""
        started = time.perf_counter()
        state = self.state
        if self.checked:  # the plan runs every row a shard checked
            raise ShardError(f"shard {self.index} checked {len(self.checked)} rows no window ran")
        sealed = self.sealed
        for account_id in self.touched:  # every changed leaf not hashed while idle
            sealed[account_id] = self._encode_leaf(account_id)
        leaves = [(account_id, *sealed[account_id]) for account_id in sorted(sealed)]
        self.touched.clear()
        self.sealed = {}
        self.final.clear()
        fee_pool, insurance_fund, open_interest = self.hot
        self.hot = self._get_hot()
        deltas = (
            self.hot[0] - fee_pool,
            self.hot[1] - insurance_fund,
            {i: v - open_interest[i] for i, v in self.hot[2].items() if v != open_interest[i]},
        )
        stats = {
            "pid": os.getpid(),
            "accounts_held": len(state.accounts),
            "seal_s": time.perf_counter() - started,
            "cpu_s": self.cpu_s,
            "idle_hash_cpu_s": self.idle_cpu_s,  # this batch's
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        self.idle_cpu_s = 0.0
        return leaves, deltas, get_oracle_fields(state), stats

    def update_subtrees(self, values: dict[int, int]) -> dict[int, int]:
        """Apply leaf values of accounts in this shard's subtrees: the new roots of those subtrees."""
        return self.tree.update_subtrees(values, self.level)


def open_shard(init: bytes) -> Shard:
    """The resident transport's factory."""
    return Shard(pickle.loads(init))


# --- the coordinator -------------------------------------------------------------------------------------


@dataclass
class ShardedBatch:
    """What a sharded batch gives the node."""

    receipts: list[Receipt]
    accounts: dict[int, tuple[bytes, int]]  # account id -> (final leaf bytes, leaf value), changed or not
    subtree_level: int
    subtrees: dict[int, int]  # subtree index at `subtree_level` -> its new root, for every changed one
    timings: dict[str, float] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)  # per window: transactions, moves, per-shard times


@dataclass
class _Window:
    start: int
    rows: list[list[tuple[int, tuple, tuple | None]]]  # per shard
    counters: list[dict[int, int]]  # per shard
    broadcast: list[tuple[int, tuple, tuple]]
    moves: list[tuple[int, int, int]]  # (account, from shard, to shard), before this window
    finals: list[list[int]]  # per shard, the accounts no later window names (their leaves are final after it)


class ShardSet:
    """`n_shards` resident shards of a node's state (see the module's docstring)."""

    def __init__(
        self,
        state: State,
        commitment: StateCommitment,
        n_shards: int,
        *,
        dask_client: Any = None,
        start_method: str = DEFAULT_START_METHOD,
    ):
        # at least one shard
        if n_shards < 1:
            raise ShardError(f"a shard set has at least one shard, got {n_shards}")
        self.genesis = state.genesis
        self.shape = get_tree_shape(state.genesis)
        self.n_shards = n_shards
        self.level = choose_subtree_level(len(state.accounts), n_shards, self.shape)
        self.arity = self.shape.arity
        self.holder = {a: self.owner(a) for a in state.accounts}
        self.transport = "dask" if dask_client is not None else "process"
        self.broken: str | None = None
        self.next_batch: int | None = None  # the node's batch number the shards' state is ready for (set by the caller)
        self._seqs = [0] * n_shards  # each shard numbers its own requests
        self.traffic = [0, 0]  # bytes sent to the shards, received from them (since the last batch began)
        self.links: list[Any] = []
        values = commitment.accounts.leaves()
        instruments = {i: encode_instrument(inst) for i, inst in state.instruments.items()}
        g = state.globals
        context = None if dask_client is not None else get_context(start_method)
        # one shard per Dask worker, round-robin when there are more shards than workers
        dask_workers = sorted(dask_client.scheduler_info()["workers"]) if dask_client is not None else []
        try:
            for s in range(n_shards):
                init = ShardInit(
                    s, n_shards, self.genesis, self.level,
                    {a: encode_account(acc) for a, acc in state.accounts.items() if self.holder[a] == s},
                    {a: v for a, v in values.items() if self.owner(a) == s},
                    instruments, (g.fee_pool, g.insurance_fund, g.deposit_count, g.oracle_time),
                )
                data = pickle.dumps(init, protocol=PICKLE_PROTOCOL)
                name = f"shard {s} of {n_shards}"
                if dask_client is not None:
                    self.links.append(DaskLink(dask_client, open_shard, data, name, dask_workers[s % len(dask_workers)]))
                else:
                    self.links.append(ProcessLink(context, open_shard, data, name, lost="its accounts are lost"))
        except BaseException:
            self.close()
            raise

    def owner(self, account: int) -> int:
        return get_owner(account, self.level, self.arity, self.n_shards)

    @property
    def pids(self) -> list[int | None]:
        return [link.pid for link in self.links]

    def close(self) -> None:
        links, self.links = self.links, []
        for link in links:
            link.stop()
        if self.broken is None:
            self.broken = "the shard set was closed"

    def __enter__(self) -> "ShardSet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests ---------------------------------------------------------------------------------

    def _send(self, s: int, kind: str, payload: Any) -> None:
        frame = pickle.dumps((kind, self._seqs[s], payload), protocol=PICKLE_PROTOCOL)
        self.traffic[0] += len(frame)
        self.links[s].send(frame)
        self._seqs[s] += 1

    def _receive(self, s: int) -> Any:
        try:
            frame = self.links[s].receive()
            self.traffic[1] += len(frame)
            status, payload = pickle.loads(frame)
        except WorkerCrashed as exc:
            self.broken = str(exc)
            raise
        if status == _ERROR:
            self.broken = f"shard {s} of {self.n_shards} failed: {payload}"
            raise ShardError(self.broken)
        return payload

    def _call_all(self, kind: str, payloads: Sequence[Any]) -> list[Any]:
        for s, payload in enumerate(payloads):
            self._send(s, kind, payload)
        return [self._receive(s) for s in range(self.n_shards)]

    def snapshot(self) -> dict[int, tuple]:
        """Every account the shards hold (`rollup.parallel.encode_account` form), for checks."""
        self._check_usable()
        out: dict[int, tuple] = {}
        for held in self._call_all(_SNAPSHOT, [None] * self.n_shards):
            out.update(held)
        return out

    def _check_usable(self) -> None:
        # after a failure the shards may hold part of a batch: nothing more runs on them
        if self.broken is not None:
            raise ShardError(f"the shard set cannot run: {self.broken}")

    # --- a batch ----------------------------------------------------------------------------------

    def execute(
        self,
        state: State,
        transactions: Sequence[Any],
        check_signatures: Callable[[Sequence[Any]], list[Any]],
        window: int | None = None,
        progress: Callable[[int], None] | None = None,
        checks: Sequence[Any] | None = None,
        while_sealing: Callable[[list[Receipt]], None] | None = None,
    ) -> ShardedBatch:
        """Run one batch on the shards; `state` (the coordinator's: instruments, globals, and the
        accounts as of the last batch) is updated to the batch's end, its `touched` set to the
        keys the batch changed. `check_signatures(txs)` is the node's signature pass, used for
        the deposits and oracle updates; with `checks` (the signature pass of the whole batch,
        already done: `SignatureCheck` per transaction) the shards check nothing.
        `while_sealing(receipts)` runs while the shards hash their leaves. On any failure
        the set is closed and `state` must be reloaded by the caller."""
        self._check_usable()
        # one signature check per transaction (a caller bug otherwise)
        if checks is not None and len(checks) != len(transactions):
            raise ShardError(f"{len(transactions)} transactions but {len(checks)} signature checks")
        try:
            with gc_paused():
                return self._execute(state, transactions, check_signatures, window, progress, checks, while_sealing)
        except BaseException as exc:
            if self.broken is None:
                self.broken = f"a batch failed: {type(exc).__name__}: {exc}"
            self.close()
            raise

    def _execute(self, state, transactions, check_signatures, window, progress, checks, while_sealing) -> ShardedBatch:  # noqa: ANN001
        timings: dict[str, Any] = {}
        t0 = time.perf_counter()
        n = self.n_shards
        self.traffic = [0, 0]
        # the coordinator's signature checks: deposits (for the pre-pass) and oracle updates (broadcast)
        if checks is not None:
            early_checks = dict(enumerate(checks))
        else:
            early = [i for i, tx in enumerate(transactions) if type(tx) in COORDINATOR_CHECKED]
            early_checks = dict(zip(early, check_signatures([transactions[i] for i in early])))
        counters, expected_deposits, final_count = compute_deposit_counters(state, transactions, early_checks)
        t1 = time.perf_counter()
        planner = self._iter_plan(transactions, early_checks, counters, expected_deposits, window)
        parts = 0  # requests to check signatures, per shard
        if checks is None:
            # the shards check the signatures of all their rows before the windows, in batch
            # verifications: the rows of the first windows (a third of the batch) while the
            # coordinator plans the rest, then the rest (one part if requests cannot be sent ahead)
            first_part = len(transactions) // 3 if all(link.ahead for link in self.links) else len(transactions) + 1
            windows, planned_rows, sent = [], 0, 0
            for plan in planner:
                windows.append(plan)
                planned_rows += sum(len(rows) for rows in plan.rows)
                if not sent and planned_rows >= first_part:
                    parts += self._send_checks(windows)
                    sent = len(windows)
            parts += self._send_checks(windows[sent:])
        else:  # windows are planned two ahead of the shards: window w + 2 while they run window w
            windows = list(islice(planner, 2))
        t2 = time.perf_counter()
        planning = t2 - t1
        check_cpu = [0.0] * n
        for _ in range(parts):
            check_cpu = [a + b for a, b in zip(check_cpu, (self._receive(s) for s in range(n)))]
        t_checked = time.perf_counter()
        outcomes: dict[int, str | None] = {}
        hashes: dict[int, str] = {}
        broadcast_outcomes: dict[int, str | None] = {}
        accepted: list[int] = []
        window_stats: list[list[tuple[float, float, float]]] = []
        # window -1 only moves the accounts window 0 needs; then each reply carries the moves out
        exports = self._exports_before(windows, 0)
        replies = self._call_all(_WINDOW, [({}, [], [], {}, exports[s], []) for s in range(n)])
        w = 0
        while w < len(windows):
            plan = windows[w]
            moved = {}
            for reply in replies:
                moved.update(reply[4])
            imports: list[dict] = [{} for _ in range(n)]
            for account, _, to in plan.moves:
                imports[to][account] = moved[account]
            exports = self._exports_before(windows, w + 1)
            for s in range(n):
                self._send(s, _WINDOW, (imports[s], plan.rows[s], plan.broadcast, plan.counters[s], exports[s], plan.finals[s]))
            started = time.perf_counter()
            planned = next(planner, None)
            if planned is not None:
                windows.append(planned)
            planning += time.perf_counter() - started
            replies = [self._receive(s) for s in range(n)]
            window_stats.append([reply[5] for reply in replies])
            for s, (shard_outcomes, shard_hashes, shard_broadcast, shard_deposits, _, _) in enumerate(replies):
                for (index, _, signers), outcome, tx_hash in zip(plan.rows[s], shard_outcomes, shard_hashes):
                    outcomes[index] = outcome
                    if tx_hash is not None:
                        hashes[index] = tx_hash
                accepted += shard_deposits
                # every shard replays the same oracle updates: same outcomes
                if s == 0:
                    broadcast_outcomes.update(zip((i for i, _, _ in plan.broadcast), shard_broadcast))
                elif list(shard_broadcast) != [broadcast_outcomes[i] for i, _, _ in plan.broadcast]:
                    raise ShardError(f"shard {s} disagrees with shard 0 on the oracle updates' outcomes")
            if progress is not None:
                progress(sum(len(r) for r in plan.rows) + len(plan.broadcast))
            w += 1
        t3 = time.perf_counter()
        # The deposits the shards accepted are exactly those the pre-pass accepted.
        if sorted(accepted) != list(expected_deposits):
            raise ShardError("the shards accepted other deposits than the deposit pre-pass")
        for s in range(n):
            self._send(s, _SEAL, None)
        # the shards encode and hash their leaves: meanwhile the coordinator builds the receipts
        # and the caller may use them (the node writes the batch's transactions and receipts into
        # its open transaction)
        receipts = []
        for index, tx in enumerate(transactions):
            if index in early_checks:
                check = early_checks[index]
                tx_hash = check.tx_hash
                outcome = check.error if check.signers is None else (broadcast_outcomes[index] if type(tx) is OracleUpdate else outcomes[index])
            else:
                tx_hash, outcome = hashes[index], outcomes[index]
            receipts.append(build_receipt(index, tx.type, tx_hash, outcome))
        if while_sealing is not None:
            while_sealing(receipts)
        t_receipts = time.perf_counter()
        sealed = [self._receive(s) for s in range(n)]
        t4 = time.perf_counter()
        oracle_fields = sealed[0][2]
        accounts: dict[int, tuple[bytes, int]] = {}
        rows: dict[int, tuple] = {}
        for s, (leaves, (fee, insurance, open_interest), fields, stats) in enumerate(sealed):
            if fields != oracle_fields:
                raise ShardError(f"shard {s} disagrees with shard 0 on the oracle-written state")
            for account_id, data, value, row in leaves:
                accounts[account_id] = (data, value)
                rows[account_id] = row
            state.globals.fee_pool += fee
            state.globals.insurance_fund += insurance
            for i, delta in open_interest.items():
                state.instruments[i].open_interest += delta
            for name, value in stats.items():
                timings[f"shard_{s}_{name}"] = value
        apply_oracle_fields(state, oracle_fields)
        state.globals.deposit_count = final_count
        routed: list[dict[int, int]] = [{} for _ in range(n)]
        for account_id, (data, value) in accounts.items():
            routed[self.owner(account_id)][account_id] = value
        subtrees: dict[int, int] = {}
        for nodes in self._call_all(_SUBTREES, routed):
            subtrees.update(nodes)
        t5 = time.perf_counter()
        # the coordinator's copy of the accounts (queries, the pre-pass, the next shard set)
        for account_id, row in rows.items():
            if row is None:
                state.accounts.pop(account_id, None)
            else:
                state.accounts[account_id] = decode_account(row)
        state.touched.update(accounts)
        state.touched.update(instrument_key(i) for i in state.instruments)
        state.touched.add(GLOBALS_KEY)
        t6 = time.perf_counter()
        timings.update({
            "prepass_s": t1 - t0, "plan_s": planning, "shard_signatures_s": t_checked - t2, "windows_s": t3 - t_checked,
            **{f"shard_{s}_signatures_cpu_s": cpu for s, cpu in enumerate(check_cpu)}, "receipts_s": t_receipts - t3, "seal_s": t4 - t_receipts, "subtrees_s": t5 - t4,
            "merge_s": t6 - t5, "windows": len(windows), "moves": sum(len(w.moves) for w in windows),
            # per shard, summed over windows: checking signatures, executing, CPU; and the windows'
            # critical path (the slowest shard's CPU in each window)
            **{f"shard_{s}_{name}": sum(w[s][k] for w in window_stats) for s in range(n)
               for k, name in enumerate(("signatures_s", "execution_s", "windows_cpu_s"))},
            "windows_critical_cpu_s": sum(max(x[2] for x in w) for w in window_stats),
            "bytes_to_shards": self.traffic[0], "bytes_from_shards": self.traffic[1],
        })
        detail = [
            {"transactions": sum(len(r) for r in plan.rows), "moves": len(plan.moves),
             "shards": [{"signatures_s": x[0], "execution_s": x[1], "cpu_s": x[2]} for x in stats]}
            for plan, stats in zip(windows, window_stats)
        ]
        return ShardedBatch(receipts, accounts, self.level, subtrees, timings, detail)

    def _send_checks(self, windows: list[_Window]) -> int:
        """Send every shard the rows of `windows` whose signatures it checks (`Shard.check_rows`),
        leaving them out of the windows' rows; 1 if sent, 0 if there was nothing to check."""
        to_check: list[list[tuple[int, tuple]]] = [[] for _ in range(self.n_shards)]
        for plan in windows:
            for s, shard_rows in enumerate(plan.rows):
                for k, (index, row, signers) in enumerate(shard_rows):
                    if signers is None:
                        to_check[s].append((index, row))
                        shard_rows[k] = (index, None, None)
        if not any(to_check):
            return 0
        for s, rows in enumerate(to_check):
            self._send(s, _CHECK, rows)
        return 1

    def _exports_before(self, windows: list[_Window], w: int) -> list[list[int]]:
        """Per shard, the accounts it sends away at the end of window w - 1 (for window w)."""
        exports: list[list[int]] = [[] for _ in range(self.n_shards)]
        if w < len(windows):
            for account, source, _ in windows[w].moves:
                exports[source].append(account)
        return exports

    def _iter_plan(
        self,
        transactions: Sequence[Any],
        early_checks: Mapping[int, Any],
        counters: Mapping[int, int],
        expected_deposits: Sequence[int],
        window: int | None,
    ) -> Iterator[_Window]:
        """Every window's rows per shard and the account moves before it, in order. Planning needs
        only the transactions' fields, the holder map (which it updates) and the pre-pass (which
        deposits create accounts), never a shard's answer: windows can be planned ahead."""
        size = compute_window_size(transactions) if window is None else window
        # A window holds at least one transaction.
        if size < 1:
            raise ShardError(f"window must be at least 1 transaction, got {size}")
        n = self.n_shards
        holder = self.holder
        created_at: dict[int, int] = {}  # account -> the accepted deposit that creates it
        for i in expected_deposits:
            account = transactions[i].account
            if account not in holder:
                created_at.setdefault(account, i)
        costs = SHARD_COSTS
        last_window: dict[int, int] = {}  # account -> the last window naming it
        for index, pair in enumerate(get_account_pairs(transactions)):
            if pair is not None:
                for a in pair:
                    last_window[a] = index // size
        for start in range(0, len(transactions), size):
            part = transactions[start : start + size]
            w = start // size
            finals: list[list[int]] = [[] for _ in range(n)]
            pairs = get_account_pairs(part)
            groups, broadcast, _ = group_pairs_numpy(pairs)
            loads = [0.0] * n
            rows: list[list] = [[] for _ in range(n)]
            shard_counters: list[dict[int, int]] = [{} for _ in range(n)]
            moves = []
            group_costs = [sum(costs[type(part[k])] for k in g) for g in groups]
            for g in sorted(range(len(groups)), key=lambda g: -group_costs[g]):
                members = groups[g]
                accounts = {a for k in members for a in pairs[k]}
                held = [holder[a] for a in accounts if a in holder]
                candidates = set(held)
                candidates.add(min(range(n), key=loads.__getitem__))
                cost = group_costs[g]
                target = min(candidates, key=lambda s: (loads[s] + cost + MOVE_COST * sum(1 for h in held if h != s), s))
                loads[target] += cost + MOVE_COST * sum(1 for h in held if h != target)
                for a in accounts:
                    source = holder.get(a)
                    if source is not None and source != target:
                        moves.append((a, source, target))
                    if last_window[a] == w:
                        finals[target].append(a)
                    if source is not None or start <= created_at.get(a, -1) < start + size:
                        holder[a] = target
                for k in members:
                    index = start + k
                    tx = part[k]
                    check = early_checks.get(index)
                    if check is not None and check.signers is None:
                        continue  # refused by the coordinator's check: never executes
                    if check is None:  # the shard checks it: every field
                        rows[target].append((index, encode_signed_transaction(tx), None))
                    else:  # checked already: the signers instead of the signatures
                        rows[target].append((index, encode_transaction(tx), check.signers))
                    if type(tx) is Deposit:
                        shard_counters[target][index] = counters[index]
            for shard_rows in rows:
                shard_rows.sort(key=itemgetter(0))
            bcast = [
                (start + k, encode_transaction(part[k]), early_checks[start + k].signers)
                for k in broadcast
                if early_checks[start + k].signers is not None
            ]
            yield _Window(start, rows, shard_counters, bcast, moves, finals)


def check_holder_consistency(shards: ShardSet, state: State) -> None:
    """For tests: the shards hold exactly the coordinator's accounts, leaf for leaf."""
    held = {a: encode_account_leaf(decode_account(row)) for a, row in shards.snapshot().items()}
    mine = {a: encode_account_leaf(acc) for a, acc in state.accounts.items()}
    if held != mine:
        missing = sorted(set(mine) - set(held))[:5]
        extra = sorted(set(held) - set(mine))[:5]
        differ = sorted(a for a in set(held) & set(mine) if held[a] != mine[a])[:5]
        raise ShardError(f"shards and coordinator disagree: missing {missing}, extra {extra}, different {differ}")
