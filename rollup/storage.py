"""SQLite storage of the node: genesis, current state leaves, batches, receipts and diffs.

One database transaction per batch: the batch row, its transactions, receipts, diff and the new
leaf bytes are written together and committed once (`commit_batch`; or opened early with
`begin_batch`, so that a pipelined node writes transactions, receipts and final leaves while its
workers still run). WAL journal, so readers never block the writer and a crash (kill -9) at any
point leaves the database at the last committed batch; the WAL is checkpointed by a background
thread after each commit, not inside it.

A batch's transactions and receipts are stored as a few blobs (chunks of newline-joined wire JSON)
and its diff as one blob, not as a row each: on a 30k-transaction batch the rows were most of the
commit's own time (benchmarks/commit_bench.py). The current leaves stay a row per leaf (the state
is read and updated by key). `RowStore` keeps the row-per-transaction layout (schema version 1) as
the reference implementation of the same API.

The store knows bytes and JSON only; the domain (`rollup.state`) and the commitment
(`rollup.state_tree`) are rebuilt from the stored leaves by the node.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

SCHEMA_VERSION = 2  # 1: a row per transaction, receipt and diff row (RowStore); 2: per-batch blobs
ROW_SCHEMA_VERSION = 1
DB_NAME = "rollup.db"
# Transactions (receipts) per stored chunk: one 19 MB value took twice as long to write as
# chunks of a few thousand transactions (measured on a 30k-transaction batch).
CHUNK_ROWS = 4096

# the packed integer arrays of the blobs have these widths
if array("I").itemsize != 4 or array("q").itemsize != 8:
    raise ImportError("rollup.storage needs 4-byte array('I') and 8-byte array('q')")

_COMMON_SCHEMA = """
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
"""

SCHEMA = _COMMON_SCHEMA + """
CREATE TABLE IF NOT EXISTS transaction_chunks (
    batch   INTEGER NOT NULL,
    start   INTEGER NOT NULL,                -- batch index of the chunk's first transaction
    bodies  TEXT NOT NULL,                   -- the wire JSON of its transactions, one per line
    PRIMARY KEY (batch, start)
);
CREATE TABLE IF NOT EXISTS receipt_chunks (
    batch     INTEGER NOT NULL,
    start     INTEGER NOT NULL,              -- batch index of the chunk's first receipt
    bodies    TEXT NOT NULL,                 -- the wire JSON of its receipts, one per line
    accepted  BLOB NOT NULL,                 -- batch indices of its accepted receipts, uint32 LE
    PRIMARY KEY (batch, start)
);
CREATE TABLE IF NOT EXISTS batch_diffs (
    batch  INTEGER PRIMARY KEY,
    rows   BLOB NOT NULL                     -- the diff rows sorted by key (pack_diff_rows)
);
"""

ROW_SCHEMA = _COMMON_SCHEMA + """
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
    """The node's SQLite database in its home directory: a batch's transactions, receipts and diff
    stored as per-batch blobs (schema version 2)."""

    schema = SCHEMA
    schema_version = SCHEMA_VERSION

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
            store.conn.executescript(cls.schema)
            store._set_meta("schema_version", str(cls.schema_version))
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
        if version != str(cls.schema_version):
            store.conn.close()
            hint = ""
            if version == str(ROW_SCHEMA_VERSION):
                hint = " (version 1 stored a row per transaction; create the node again with `rollup init --force` and resubmit its transactions)"
            raise StorageError(f"database {path} has schema version {version}, this node reads {cls.schema_version}{hint}")
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
        rows = self.conn.execute("SELECT bodies FROM transaction_chunks WHERE batch = ? ORDER BY start", (number,))
        return [body for (text,) in rows for body in text.split("\n")]

    def get_receipts(self, number: int) -> list[str]:
        rows = self.conn.execute("SELECT bodies FROM receipt_chunks WHERE batch = ? ORDER BY start", (number,))
        return [body for (text,) in rows for body in text.split("\n")]

    def get_diff(self, number: int) -> list[tuple[int, bytes, bytes]]:
        row = self.conn.execute("SELECT rows FROM batch_diffs WHERE batch = ?", (number,)).fetchone()
        return unpack_diff_rows(bytes(row[0]), number) if row else []

    def _get_accepted_indices(self, number: int) -> list[int]:
        indices = array("I")
        for (packed,) in self.conn.execute("SELECT accepted FROM receipt_chunks WHERE batch = ? ORDER BY start", (number,)):
            indices.frombytes(packed)
        if sys.byteorder == "big":
            indices.byteswap()
        return indices.tolist()

    def _iter_befores_from(self, number: int) -> Iterator[tuple[int, bytes]]:
        """(key, leaf bytes before) of every diff row of batch `number` and later, latest batch first."""
        rows = self.conn.execute("SELECT batch, rows FROM batch_diffs WHERE batch >= ? ORDER BY batch DESC", (number,))
        for batch, packed in rows:
            for key, before, _ in unpack_diff_rows(bytes(packed), batch):
                yield key, before

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
            writer.finish()
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


def join_lines(bodies: Sequence[str]) -> str:
    """Bodies as one text, one per line (wire JSON escapes newlines inside strings)."""
    # a body with a newline of its own would come back as two (a memchr per body: counting the
    # joined text's newlines cost 10% of a commit)
    if any(map(str.__contains__, bodies, repeat("\n"))):
        raise StorageError("a stored body contains a newline: a transaction or receipt is one line of wire JSON")
    return "\n".join(bodies)


def _to_little_endian(values: array) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def pack_diff_rows(rows: Sequence[tuple[int, bytes, bytes]]) -> bytes:
    """Diff rows (key, before, after) as one blob, little-endian: the row count (uint32), the keys
    (int64 each), the befores' lengths and the afters' lengths (uint32 each), then every before's
    bytes and every after's bytes, in row order."""
    keys = array("q", [key for key, _, _ in rows])
    befores = [before for _, before, _ in rows]
    afters = [after for _, _, after in rows]
    lengths = array("I", [len(b) for b in befores] + [len(a) for a in afters])
    return b"".join([len(rows).to_bytes(4, "little"), _to_little_endian(keys), _to_little_endian(lengths), *befores, *afters])


def unpack_diff_rows(blob: bytes, batch: int) -> list[tuple[int, bytes, bytes]]:
    """The rows `pack_diff_rows` packed (of batch `batch`, named in the error if the blob is bad)."""
    n = int.from_bytes(blob[:4], "little")
    head = 4 + 8 * n + 8 * n
    keys, lengths = array("q"), array("I")
    if len(blob) >= head:
        keys.frombytes(blob[4 : 4 + 8 * n])
        lengths.frombytes(blob[4 + 8 * n : head])
    if sys.byteorder == "big":
        keys.byteswap()
        lengths.byteswap()
    # the blob holds exactly what its header announces
    if len(blob) < 4 or len(blob) < head or len(blob) != head + sum(lengths):
        raise StorageError(f"the stored diff of batch {batch} is corrupt ({len(blob)} bytes)")
    rows = []
    at, after_at = head, head + sum(lengths[:n])
    for i, key in enumerate(keys):
        b, a = lengths[i], lengths[n + i]
        rows.append((key, blob[at : at + b], blob[after_at : after_at + a]))
        at += b
        after_at += a
    return rows


class BatchWriter:
    """The open database transaction of one batch (`Store.begin_batch`): transactions and
    receipts are appended in submission order as they become known, so that a parallel node writes
    them while its workers still run instead of after the batch. `Store.commit_batch` finishes
    it; `abort` rolls it back (a failed batch leaves no trace).

    Transactions and receipts go to the database a chunk (of at most `CHUNK_ROWS`) at a time; the
    leaves are written as they come, the diff rows are kept here and written as one blob by
    `finish` (a key written early can be taken back, `undo_leaf_changes`, until then)."""

    def __init__(self, store: Store, number: int):
        self.store = store
        self.number = number
        self.n_tx = 0
        self.n_receipts = 0
        self.n_accepted = 0
        self.diff: dict[int, tuple[bytes, bytes]] = {}  # key -> (before, after), not yet written
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
            "INSERT INTO transaction_chunks (batch, start, bodies) VALUES (?, ?, ?)",
            [(self.number, start + i, join_lines(bodies[i : i + CHUNK_ROWS])) for i in range(0, len(bodies), CHUNK_ROWS)],
        )
        self.n_tx += len(bodies)

    def write_receipts(self, receipts: Iterable[tuple[str, str]]) -> None:
        """The next receipts, (status, wire JSON), in submission order."""
        receipts = list(receipts)
        rows = []
        n_accepted = 0
        for i in range(0, len(receipts), CHUNK_ROWS):
            start = self.n_receipts + i
            chunk = receipts[i : i + CHUNK_ROWS]
            accepted = array("I", [start + j for j, (status, _) in enumerate(chunk) if status == "accepted"])
            n_accepted += len(accepted)
            rows.append((self.number, start, join_lines([body for _, body in chunk]), _to_little_endian(accepted)))
        self.store.conn.executemany("INSERT INTO receipt_chunks (batch, start, bodies, accepted) VALUES (?, ?, ?, ?)", rows)
        self.n_receipts += len(receipts)
        self.n_accepted += n_accepted

    def write_leaf_changes(self, diff: Iterable[tuple[int, bytes, bytes]]) -> None:
        """Changed leaves, (key, before, after) with after empty for a deleted leaf: the batch's
        diff rows and the new current leaves. A key is written once per batch (see
        `undo_leaf_changes` to write it again)."""
        diff = list(diff)
        for key, _, _ in diff:
            # one diff row per key and batch
            if key in self.diff:
                raise StorageError(f"leaf {key} written twice in batch {self.number}")
        self.diff.update((k, (b, a)) for k, b, a in diff)
        _write_leaves(self.store.conn, diff)

    def undo_leaf_changes(self, diff: Iterable[tuple[int, bytes, bytes]]) -> None:
        """Take back leaf changes written by `write_leaf_changes` (the same rows): the diff rows
        go and the leaves get their value before the batch back."""
        diff = list(diff)
        for key, _, _ in diff:
            self.diff.pop(key, None)
        _restore_leaves(self.store.conn, diff)

    def finish(self) -> None:
        """Write what the writer kept for the end of the batch: its diff, one blob (by
        `Store.commit_batch`, just before the commit)."""
        if self.diff:
            rows = [(key, *self.diff[key]) for key in sorted(self.diff)]
            self.store.conn.execute("INSERT INTO batch_diffs (batch, rows) VALUES (?, ?)", (self.number, pack_diff_rows(rows)))
        self.diff = {}

    def abort(self) -> None:
        """Roll the batch back (nothing of it was committed)."""
        self.diff = {}
        if self.store.conn.in_transaction:
            self.store.conn.execute("ROLLBACK")


def _write_leaves(conn: sqlite3.Connection, diff: Sequence[tuple[int, bytes, bytes]]) -> None:
    conn.executemany("DELETE FROM leaves WHERE key = ?", ((k,) for k, _, a in diff if not a))
    conn.executemany("INSERT OR REPLACE INTO leaves (key, value) VALUES (?, ?)", ((k, a) for k, _, a in diff if a))


def _restore_leaves(conn: sqlite3.Connection, diff: Sequence[tuple[int, bytes, bytes]]) -> None:
    conn.executemany("DELETE FROM leaves WHERE key = ?", ((k,) for k, b, _ in diff if not b))
    conn.executemany("INSERT OR REPLACE INTO leaves (key, value) VALUES (?, ?)", ((k, b) for k, b, _ in diff if b))


# --- the reference: a row per transaction, receipt and diff row (schema version 1) ---------------


class RowStore(Store):
    """The same store with a row per transaction, per receipt and per diff row: the plain layout,
    kept as the reference the blob layout is tested against (and measured against,
    benchmarks/commit_bench.py)."""

    schema = ROW_SCHEMA
    schema_version = ROW_SCHEMA_VERSION

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

    def _get_accepted_indices(self, number: int) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT idx FROM receipts WHERE batch = ? AND status = 'accepted' ORDER BY idx", (number,))]

    def _iter_befores_from(self, number: int) -> Iterator[tuple[int, bytes]]:
        for key, before in self.conn.execute("SELECT key, before FROM diffs WHERE batch >= ? ORDER BY batch DESC", (number,)):
            yield key, bytes(before)

    def begin_batch(self, number: int) -> "BatchWriter":
        return RowBatchWriter(self, number)


class RowBatchWriter(BatchWriter):
    """`BatchWriter` of the reference layout: every row written as it comes."""

    def write_transactions(self, bodies: Sequence[str]) -> None:
        start = self.n_tx
        self.store.conn.executemany(
            "INSERT INTO transactions (batch, idx, body) VALUES (?, ?, ?)",
            ((self.number, i, body) for i, body in enumerate(bodies, start)),
        )
        self.n_tx += len(bodies)

    def write_receipts(self, receipts: Iterable[tuple[str, str]]) -> None:
        receipts = list(receipts)
        start = self.n_receipts
        self.store.conn.executemany(
            "INSERT INTO receipts (batch, idx, status, body) VALUES (?, ?, ?, ?)",
            ((self.number, i, status, body) for i, (status, body) in enumerate(receipts, start)),
        )
        self.n_receipts += len(receipts)
        self.n_accepted += sum(1 for status, _ in receipts if status == "accepted")

    def write_leaf_changes(self, diff: Iterable[tuple[int, bytes, bytes]]) -> None:
        diff = list(diff)
        conn = self.store.conn
        try:
            conn.executemany("INSERT INTO diffs (batch, key, before, after) VALUES (?, ?, ?, ?)", ((self.number, k, b, a) for k, b, a in diff))
        except sqlite3.IntegrityError as exc:
            raise StorageError(f"a leaf written twice in batch {self.number}: {exc}") from exc
        _write_leaves(conn, diff)

    def undo_leaf_changes(self, diff: Iterable[tuple[int, bytes, bytes]]) -> None:
        diff = list(diff)
        self.store.conn.executemany("DELETE FROM diffs WHERE batch = ? AND key = ?", ((self.number, k) for k, _, _ in diff))
        _restore_leaves(self.store.conn, diff)

    def finish(self) -> None:
        return None


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
    return store._get_accepted_indices(batch)


def get_leaves_before(store: Store, batch: int) -> dict[int, bytes]:
    """The state's leaves as batch `batch` found them: the current leaves with the diffs of that
    batch and every later one reverted (a diff row holds the leaf's bytes before; empty: absent)."""
    leaves = store.load_leaves()
    for key, before in store._iter_befores_from(batch):  # the earliest batch's "before" is applied last and wins
        if before:
            leaves[key] = before
        else:
            leaves.pop(key, None)
    return leaves


def delete_proofs(store: Store, batch: int) -> int:
    """Forget a batch's proofs (to prove it again); returns how many were stored."""
    _ensure_proof_schema(store)
    with store.conn:
        return store.conn.execute("DELETE FROM proofs WHERE batch = ?", (batch,)).rowcount
