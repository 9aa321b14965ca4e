"""SQLite storage of the node: genesis, current state leaves, batches, receipts and diffs.

One database transaction per batch: the batch row, its transactions, receipts, diff and the new
leaf bytes are written together and committed once (`commit_batch`; or opened early with
`begin_batch`, so that a pipelined node writes transactions, receipts and final leaves while its
workers still run). WAL journal, so readers never block the writer and a crash (kill -9) at any
point leaves the database at the last committed batch; the WAL is checkpointed by a background
thread after each commit, not inside it.

The store knows bytes and JSON only; the domain (`rollup.state`) and the commitment
(`rollup.state_tree`) are rebuilt from the stored leaves by the node.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1
DB_NAME = "rollup.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leaves (          -- current state: canonical leaf bytes by tree key
    key   INTEGER PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    number      INTEGER PRIMARY KEY,
    prev_root   BLOB NOT NULL,
    new_root    BLOB NOT NULL,
    n_tx        INTEGER NOT NULL,
    n_accepted  INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    stats       TEXT NOT NULL                -- JSON: timings and counts of the run that made it
);
CREATE TABLE IF NOT EXISTS transactions (
    batch  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    body   TEXT NOT NULL,                    -- the wire JSON of the transaction
    PRIMARY KEY (batch, idx)
);
CREATE TABLE IF NOT EXISTS receipts (
    batch   INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    status  TEXT NOT NULL,
    body    TEXT NOT NULL,                   -- the wire JSON of the receipt
    PRIMARY KEY (batch, idx)
);
CREATE TABLE IF NOT EXISTS diffs (
    batch   INTEGER NOT NULL,
    key     INTEGER NOT NULL,
    before  BLOB NOT NULL,                   -- empty blob: the leaf did not exist
    after   BLOB NOT NULL,
    PRIMARY KEY (batch, key)
);
"""


class StorageError(Exception):
    """The node's database is missing, of another version, or inconsistent."""


@dataclass(frozen=True)
class BatchRow:
    number: int
    prev_root: bytes
    new_root: bytes
    n_tx: int
    n_accepted: int
    created_at: float
    stats: dict


def _crash_point(name: str) -> None:
    """Fault injection for the crash tests: ROLLUP_CRASH_AT=<name> kills this process with SIGKILL
    at that point, exactly as `kill -9` would. Inert unless the variable is set."""
    if os.environ.get("ROLLUP_CRASH_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class Store:
    """The node's SQLite database in its home directory."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        self._checkpointer: threading.Thread | None = None

    # --- opening ---
    @classmethod
    def create(
        cls, home: Path, genesis_json: str, genesis_leaves: Mapping[int, bytes], genesis_root: bytes, settings: Mapping[str, str] | None = None
    ) -> "Store":
        home.mkdir(parents=True, exist_ok=True)
        path = home / DB_NAME
        if path.exists():
            raise StorageError(f"a node already exists in {home} (use another --home, or init --force)")
        store = cls(path, cls._connect(path))
        with store.conn:
            store.conn.executescript(SCHEMA)
            store._set_meta("schema_version", str(SCHEMA_VERSION))
            store._set_meta("genesis", genesis_json)
            store._set_meta("genesis_root", genesis_root.hex())
            for key, value in (settings or {}).items():
                store._set_meta(key, value)
            store.conn.executemany("INSERT INTO leaves (key, value) VALUES (?, ?)", sorted(genesis_leaves.items()))
        return store

    @classmethod
    def open(cls, home: Path) -> "Store":
        path = home / DB_NAME
        if not path.exists():
            raise StorageError(f"no node in {home}: run `rollup init` first (or pass --home)")
        store = cls(path, cls._connect(path))
        version = store.get_meta("schema_version")
        if version != str(SCHEMA_VERSION):
            raise StorageError(f"database {path} has schema version {version}, this node reads {SCHEMA_VERSION}")
        return store

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against process crashes in WAL mode (what kill -9 tests); FULL also
        # survives power loss at a cost per commit. Settable for deployments that need it.
        conn.execute(f"PRAGMA synchronous={os.environ.get('ROLLUP_SQLITE_SYNCHRONOUS', 'NORMAL')}")
        conn.execute("PRAGMA foreign_keys=ON")
        # A batch writes tens of MB of WAL; copying them into the database file (the checkpoint
        # SQLite would run inside the committing call) is left to `_start_checkpoint`'s thread.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def close(self) -> None:
        self.wait_for_checkpoint()
        self.conn.close()

    # --- checkpoints: the WAL copied back into the database file, off the batch's path ---
    def _start_checkpoint(self) -> None:
        """Checkpoint the WAL in a background thread with its own connection (SQLite releases the
        GIL while it copies pages). Committed batches are durable in the WAL already: the
        checkpoint only keeps the WAL from growing. PASSIVE: it never blocks the next batch's
        writer; pages it could not copy are copied by the next checkpoint."""
        self.wait_for_checkpoint()
        self._checkpointer = threading.Thread(target=run_checkpoint, args=(self.path,), name="sqlite-checkpoint", daemon=True)
        self._checkpointer.start()

    def wait_for_checkpoint(self) -> None:
        """Block until the background checkpoint, if any, is done."""
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None

    # --- meta ---
    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # --- reading ---
    def load_leaves(self) -> dict[int, bytes]:
        return {key: bytes(value) for key, value in self.conn.execute("SELECT key, value FROM leaves")}

    def get_leaf(self, key: int) -> bytes | None:
        row = self.conn.execute("SELECT value FROM leaves WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def latest_batch(self) -> BatchRow | None:
        row = self.conn.execute(
            "SELECT number, prev_root, new_root, n_tx, n_accepted, created_at, stats FROM batches ORDER BY number DESC LIMIT 1"
        ).fetchone()
        return self._batch_row(row) if row else None

    def get_batch(self, number: int) -> BatchRow | None:
        row = self.conn.execute(
            "SELECT number, prev_root, new_root, n_tx, n_accepted, created_at, stats FROM batches WHERE number = ?",
            (number,),
        ).fetchone()
        return self._batch_row(row) if row else None

    @staticmethod
    def _batch_row(row: Sequence) -> BatchRow:
        return BatchRow(row[0], bytes(row[1]), bytes(row[2]), row[3], row[4], row[5], json.loads(row[6]))

    def get_transactions(self, number: int) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT body FROM transactions WHERE batch = ? ORDER BY idx", (number,))]

    def get_receipts(self, number: int) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT body FROM receipts WHERE batch = ? ORDER BY idx", (number,))]

    def get_diff(self, number: int) -> list[tuple[int, bytes, bytes]]:
        return [
            (key, bytes(before), bytes(after))
            for key, before, after in self.conn.execute(
                "SELECT key, before, after FROM diffs WHERE batch = ? ORDER BY key", (number,)
            )
        ]

    def count_batches(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0]

    # --- writing: one database transaction per batch ---
    def begin_batch(self, number: int) -> "BatchWriter":
        """Open the database transaction of batch `number`: its transactions and receipts can be
        written while the batch still executes (`BatchWriter`), the rest by `commit_batch`.
        Nothing is visible to readers, or survives a crash, before `commit_batch` commits."""
        return BatchWriter(self, number)

    def commit_batch(
        self,
        number: int,
        prev_root: bytes,
        new_root: bytes,
        tx_bodies: Sequence[str],
        receipts: Iterable[tuple[str, str]],  # (status, body) in submission order
        diff: Sequence[tuple[int, bytes, bytes]],  # (key, before, after) sorted by key
        stats: Mapping,
        writer: "BatchWriter | None" = None,
    ) -> None:
        """Write a whole batch atomically: either all of it is visible after a crash, or none.
        With `writer` (from `begin_batch(number)`), `tx_bodies`, `receipts` and `diff` are those
        not written through it yet (transactions and receipts follow the ones it wrote)."""
        writer = self.begin_batch(number) if writer is None else writer
        # the writer belongs to this batch
        if writer.number != number:
            raise StorageError(f"batch {number} committed through the writer of batch {writer.number}")
        conn = self.conn
        try:
            writer.write_transactions(tx_bodies)
            _crash_point("mid_write")
            writer.write_receipts(receipts)
            conn.execute(
                "INSERT INTO batches (number, prev_root, new_root, n_tx, n_accepted, created_at, stats) VALUES (?,?,?,?,?,?,?)",
                (number, prev_root, new_root, writer.n_tx, writer.n_accepted, time.time(), json.dumps(dict(stats))),
            )
            writer.write_leaf_changes(diff)
            _crash_point("before_commit")
            conn.execute("COMMIT")
        except BaseException:
            writer.abort()
            raise
        _crash_point("after_commit")
        self._start_checkpoint()


def run_checkpoint(path: Path) -> None:
    """One passive WAL checkpoint of the database at `path` (runs in `Store`'s checkpoint thread;
    a failure only leaves the WAL longer: the next checkpoint retries)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()
    except sqlite3.Error:
        return


class BatchWriter:
    """The open database transaction of one batch (`Store.begin_batch`): transactions and
    receipts are appended in submission order as they become known, so that a parallel node writes
    them while its workers still run instead of after the batch. `Store.commit_batch` finishes
    it; `abort` rolls it back (a failed batch leaves no trace)."""

    def __init__(self, store: Store, number: int):
        self.store = store
        self.number = number
        self.n_tx = 0
        self.n_receipts = 0
        self.n_accepted = 0
        conn = store.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            latest = conn.execute("SELECT MAX(number) FROM batches").fetchone()[0] or 0
            # batches are numbered without gaps
            if number != latest + 1:
                raise StorageError(f"batch {number} does not follow the last stored batch {latest}")
        except BaseException:
            self.abort()
            raise

    def write_transactions(self, bodies: Sequence[str]) -> None:
        """The next transactions' wire JSON, in submission order."""
        start = self.n_tx
        self.store.conn.executemany(
            "INSERT INTO transactions (batch, idx, body) VALUES (?, ?, ?)",
            ((self.number, i, body) for i, body in enumerate(bodies, start)),
        )
        self.n_tx += len(bodies)

    def write_receipts(self, receipts: Iterable[tuple[str, str]]) -> None:
        """The next receipts, (status, wire JSON), in submission order."""
        receipts = list(receipts)
        start = self.n_receipts
        self.store.conn.executemany(
            "INSERT INTO receipts (batch, idx, status, body) VALUES (?, ?, ?, ?)",
            ((self.number, i, status, body) for i, (status, body) in enumerate(receipts, start)),
        )
        self.n_receipts += len(receipts)
        self.n_accepted += sum(1 for status, _ in receipts if status == "accepted")

    def write_leaf_changes(self, diff: Iterable[tuple[int, bytes, bytes]]) -> None:
        """Changed leaves, (key, before, after) with after empty for a deleted leaf: the batch's
        diff rows and the new current leaves. A key is written once per batch (see
        `undo_leaf_changes` to write it again)."""
        diff = list(diff)
        conn = self.store.conn
        conn.executemany("INSERT INTO diffs (batch, key, before, after) VALUES (?, ?, ?, ?)", ((self.number, k, b, a) for k, b, a in diff))
        conn.executemany("DELETE FROM leaves WHERE key = ?", ((k,) for k, _, a in diff if not a))
        conn.executemany("INSERT OR REPLACE INTO leaves (key, value) VALUES (?, ?)", ((k, a) for k, _, a in diff if a))

    def undo_leaf_changes(self, diff: Iterable[tuple[int, bytes, bytes]]) -> None:
        """Take back leaf changes written by `write_leaf_changes` (the same rows): the diff rows
        go and the leaves get their value before the batch back."""
        diff = list(diff)
        conn = self.store.conn
        conn.executemany("DELETE FROM diffs WHERE batch = ? AND key = ?", ((self.number, k) for k, _, _ in diff))
        conn.executemany("DELETE FROM leaves WHERE key = ?", ((k,) for k, b, _ in diff if not b))
        conn.executemany("INSERT OR REPLACE INTO leaves (key, value) VALUES (?, ?)", ((k, b) for k, b, _ in diff if b))

    def abort(self) -> None:
        """Roll the batch back (nothing of it was committed)."""
        if self.store.conn.in_transaction:
            self.store.conn.execute("ROLLBACK")


# --- proofs (rollup prove): a table of their own, created on first use ---------------------------

PROOF_SCHEMA = """
CREATE TABLE IF NOT EXISTS proofs (
    batch         INTEGER NOT NULL,
    segment       INTEGER NOT NULL,
    n_segments    INTEGER NOT NULL,
    n_slots       INTEGER NOT NULL,
    vk_hash       TEXT NOT NULL,             -- 0x hex: the proof is for the key with this hash
    segment_root  TEXT NOT NULL,             -- 0x hex: commitment to the segment's diff
    public_hash   TEXT NOT NULL,             -- 0x hex: keccak of the public inputs (32-byte words)
    proof         TEXT NOT NULL,             -- snarkjs proof.json
    prove_s       REAL NOT NULL,
    created_at    REAL NOT NULL,
    PRIMARY KEY (batch, segment)
);
"""


@dataclass(frozen=True)
class ProofRow:
    batch: int
    segment: int
    n_segments: int
    n_slots: int
    vk_hash: str
    segment_root: str
    public_hash: str
    proof: dict
    prove_s: float
    created_at: float


def _ensure_proof_schema(store: Store) -> None:
    store.conn.executescript(PROOF_SCHEMA)


def set_meta(store: Store, key: str, value: str) -> None:
    """Write a node setting (segment size, verifying key hash) in its own database transaction."""
    with store.conn:
        store._set_meta(key, value)


def put_proof(store: Store, row: ProofRow) -> None:
    """Store one segment's proof durably (committed when this returns)."""
    _ensure_proof_schema(store)
    with store.conn:
        store.conn.execute(
            "INSERT OR REPLACE INTO proofs (batch, segment, n_segments, n_slots, vk_hash, segment_root, public_hash, proof, "
            "prove_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (row.batch, row.segment, row.n_segments, row.n_slots, row.vk_hash, row.segment_root, row.public_hash,
             json.dumps(row.proof), row.prove_s, row.created_at),
        )


def get_proofs(store: Store, batch: int, vk_hash: str | None = None) -> list[ProofRow]:
    """A batch's stored proofs in segment order (only those for `vk_hash`, if given)."""
    _ensure_proof_schema(store)
    rows = store.conn.execute(
        "SELECT batch, segment, n_segments, n_slots, vk_hash, segment_root, public_hash, proof, prove_s, created_at "
        "FROM proofs WHERE batch = ? ORDER BY segment",
        (batch,),
    ).fetchall()
    proofs = [ProofRow(*row[:7], json.loads(row[7]), row[8], row[9]) for row in rows]
    return [p for p in proofs if vk_hash is None or p.vk_hash == vk_hash]


def get_accepted_counts(store: Store) -> list[tuple[int, int]]:
    """(batch number, accepted transactions) of every committed batch, in order."""
    return list(store.conn.execute("SELECT number, n_accepted FROM batches ORDER BY number"))


def get_accepted_indices(store: Store, batch: int) -> list[int]:
    """Batch indices of the accepted transactions, in submission order."""
    return [r[0] for r in store.conn.execute("SELECT idx FROM receipts WHERE batch = ? AND status = 'accepted' ORDER BY idx", (batch,))]


def get_leaves_before(store: Store, batch: int) -> dict[int, bytes]:
    """The state's leaves as batch `batch` found them: the current leaves with the diffs of that
    batch and every later one reverted (a diff row holds the leaf's bytes before; empty: absent)."""
    leaves = store.load_leaves()
    rows = store.conn.execute("SELECT key, before FROM diffs WHERE batch >= ? ORDER BY batch DESC", (batch,))
    for key, before in rows:  # the earliest batch's "before" is applied last and wins
        if before:
            leaves[key] = bytes(before)
        else:
            leaves.pop(key, None)
    return leaves


def delete_proofs(store: Store, batch: int) -> int:
    """Forget a batch's proofs (to prove it again); returns how many were stored."""
    _ensure_proof_schema(store)
    with store.conn:
        return store.conn.execute("DELETE FROM proofs WHERE batch = ?", (batch,)).rowcount
