"""The exchange journal: every accepted command (the signed message and its clock) with the records
the engine gave for it, appended to SQLite before the service answers, and read back on start;
and the rollup side: the pending rollup transactions (`pending`, in queue order, each marked with
its batch and receipt once executed) and the batches' progress (`batches`).

One row per command, in a database of its own (HOME/exchange.sqlite, WAL) so the node's database
keeps its schema. Matching is a pure function of the commands (docs/exchange.md), so the messages
are enough to rebuild the books; the records are kept so a replay can prove it rebuilt the same
thing (and so anyone can read the fills without running a matcher).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

JOURNAL_NAME = "exchange.sqlite"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    seq INTEGER PRIMARY KEY,      -- 1, 2, 3, ... in the order the sequencer took them
    time_ms INTEGER NOT NULL,     -- the sequencer's clock for this command (part of the input)
    message TEXT NOT NULL,        -- the signed Order / Cancel / CancelAll, as received (JSON)
    records BLOB NOT NULL         -- exchange.records.encode_records of what the engine gave
);
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY,       -- 1, 2, 3, ... the order in which rollup transactions are batched
    source TEXT NOT NULL,         -- 'api' (POST /transactions), 'fill' (the matching engine), 'oracle' (the clock)
    received_ms INTEGER NOT NULL,
    body TEXT NOT NULL,           -- the transaction's wire JSON, byte for byte what the node stores
    batch INTEGER,                -- NULL: not yet in a batch; 0: in a part the node committed no batch for
    status TEXT,                  -- the receipt's status once executed: accepted / rejected
    reason TEXT
);
CREATE INDEX IF NOT EXISTS pending_open ON pending (batch, id);
CREATE TABLE IF NOT EXISTS batches (
    number INTEGER PRIMARY KEY,   -- the node's batch number
    state TEXT NOT NULL,          -- executed -> proving -> proven -> settled, or failed
    reason TEXT NOT NULL,         -- why it failed ('' otherwise)
    n_tx INTEGER NOT NULL,
    n_accepted INTEGER NOT NULL,
    prev_root TEXT NOT NULL,
    new_root TEXT NOT NULL,
    info TEXT NOT NULL,           -- JSON: segments, proving seconds, L1 gas and calldata once known
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
"""


class JournalError(Exception):
    """The journal cannot be opened or written, or does not belong to this node."""


class PendingRow(NamedTuple):
    id: int
    source: str
    received_ms: int
    body: str
    batch: int | None
    status: str | None
    reason: str | None


class BatchView(NamedTuple):
    number: int
    state: str
    reason: str
    n_tx: int
    n_accepted: int
    prev_root: str
    new_root: str
    info: str
    created_ms: int
    updated_ms: int

    def to_json(self) -> dict:
        return {**self._asdict(), "info": json.loads(self.info)}


class JournalEntry(NamedTuple):
    seq: int
    time_ms: int
    message: str
    records: bytes


class Journal:
    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        row = conn.execute("SELECT MAX(seq) FROM commands").fetchone()
        self.last_seq: int = row[0] or 0

    @classmethod
    def open(cls, home: Path, genesis_hash: str) -> "Journal":
        """The journal of the node in `home` (created if absent); `genesis_hash` binds it to the
        node, so the journal of another chain is never replayed on this one."""
        path = home / JOURNAL_NAME
        try:
            # the event loop's thread uses it; check_same_thread would refuse a test client's portal thread
            conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # as the node's store: NORMAL survives a killed process, FULL a power cut too
            conn.execute(f"PRAGMA synchronous={os.environ.get('ROLLUP_SQLITE_SYNCHRONOUS', 'NORMAL')}")
            conn.executescript(SCHEMA)
            stored = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the exchange journal {path}: {exc}") from None
        if not stored:
            with conn:
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("schema_version", str(SCHEMA_VERSION)), ("genesis_hash", genesis_hash)],
                )
        elif stored.get("schema_version") != str(SCHEMA_VERSION):
            conn.close()
            raise JournalError(f"{path} has journal schema {stored.get('schema_version')}, this service reads {SCHEMA_VERSION}")
        elif stored.get("genesis_hash") != genesis_hash:
            conn.close()
            raise JournalError(f"{path} belongs to another genesis ({stored.get('genesis_hash')}), not this node's {genesis_hash}")
        return cls(path, conn)

    def append(self, time_ms: int, message: str, records: bytes, pending: Sequence[tuple[str, str]] = ()) -> tuple[int, list[int]]:
        """Write one command durably (committed when this returns), with the rollup transactions it
        gave (`pending`: (source, body) of each fill's transaction) in the same SQLite transaction,
        so a fill is queued for the rollup exactly when its command is journaled. Returns the
        command's sequence number and the pending ids."""
        seq = self.last_seq + 1
        with self.conn:
            self.conn.execute("INSERT INTO commands (seq, time_ms, message, records) VALUES (?, ?, ?, ?)", (seq, time_ms, message, records))
            ids = [self._insert_pending(source, time_ms, body) for source, body in pending]
        self.last_seq = seq
        return seq, ids

    # --- rollup transactions waiting for a batch, and the batches ----------------------------------

    def _insert_pending(self, source: str, received_ms: int, body: str) -> int:
        cursor = self.conn.execute("INSERT INTO pending (source, received_ms, body) VALUES (?, ?, ?)", (source, received_ms, body))
        return int(cursor.lastrowid)

    def add_pending(self, source: str, received_ms: int, body: str) -> int:
        """Queue one rollup transaction durably (committed when this returns); its pending id."""
        with self.conn:
            return self._insert_pending(source, received_ms, body)

    def get_open_pending(self, limit: int) -> list[PendingRow]:
        """The oldest transactions not yet in a batch, in queue order."""
        rows = self.conn.execute("SELECT * FROM pending WHERE batch IS NULL ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [PendingRow(*r) for r in rows]

    def count_open_pending(self, source: str | None = None) -> tuple[int, int | None]:
        """(transactions not yet in a batch, from `source` if given; the oldest one's received_ms)."""
        if source is None:
            return self.conn.execute("SELECT COUNT(*), MIN(received_ms) FROM pending WHERE batch IS NULL").fetchone()
        return self.conn.execute("SELECT COUNT(*), MIN(received_ms) FROM pending WHERE batch IS NULL AND source = ?", (source,)).fetchone()

    def get_pending(self, pending_id: int) -> PendingRow | None:
        row = self.conn.execute("SELECT * FROM pending WHERE id = ?", (pending_id,)).fetchone()
        return None if row is None else PendingRow(*row)

    def record_batches(self, outcomes: Sequence[tuple[int, int, str, str]], batches: Sequence[BatchView]) -> None:
        """Mark pending rows done ((id, batch or 0, status, reason) each) and insert the batches'
        views, in one SQLite transaction: a row is in a batch exactly when its batch is recorded."""
        with self.conn:
            self.conn.executemany("UPDATE pending SET batch = ?, status = ?, reason = ? WHERE id = ?", [(b, s, r, i) for i, b, s, r in outcomes])
            self.conn.executemany("INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batches)

    def update_batch(self, number: int, state: str, reason: str, info: dict, updated_ms: int) -> BatchView:
        with self.conn:
            self.conn.execute(
                "UPDATE batches SET state = ?, reason = ?, info = ?, updated_ms = ? WHERE number = ?",
                (state, reason, json.dumps(info), updated_ms, number),
            )
        view = self.get_batch(number)
        # the batch was recorded when it was cut
        if view is None:
            raise JournalError(f"batch {number} is not in the journal")
        return view

    def get_batch(self, number: int) -> BatchView | None:
        row = self.conn.execute("SELECT * FROM batches WHERE number = ?", (number,)).fetchone()
        return None if row is None else BatchView(*row)

    def get_batches(self, limit: int = 100, states: Sequence[str] | None = None) -> list[BatchView]:
        """The newest `limit` batches (newest first), or every batch in `states` (oldest first)."""
        if states is not None:
            marks = ",".join("?" * len(states))
            rows = self.conn.execute(f"SELECT * FROM batches WHERE state IN ({marks}) ORDER BY number", tuple(states)).fetchall()
        else:
            rows = self.conn.execute("SELECT * FROM batches ORDER BY number DESC LIMIT ?", (limit,)).fetchall()
        return [BatchView(*r) for r in rows]

    def get_last_batch(self) -> int:
        return self.conn.execute("SELECT COALESCE(MAX(number), 0) FROM batches").fetchone()[0]

    def read(self) -> Iterator[JournalEntry]:
        for row in self.conn.execute("SELECT seq, time_ms, message, records FROM commands ORDER BY seq"):
            yield JournalEntry(*row)

    def close(self) -> None:
        self.conn.close()
