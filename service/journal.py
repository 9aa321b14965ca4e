"""The exchange journal: every accepted command (the signed message and its clock) with the records
the engine gave for it, appended to SQLite before the service answers, and read back on start.

One row per command, in a database of its own (HOME/exchange.sqlite, WAL) so the node's database
keeps its schema. Matching is a pure function of the commands (docs/exchange.md), so the messages
are enough to rebuild the books; the records are kept so a replay can prove it rebuilt the same
thing (and so anyone can read the fills without running a matcher).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
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
"""


class JournalError(Exception):
    """The journal cannot be opened or written, or does not belong to this node."""


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

    def append(self, time_ms: int, message: str, records: bytes) -> int:
        """Write one command durably (committed when this returns); its sequence number."""
        seq = self.last_seq + 1
        with self.conn:
            self.conn.execute("INSERT INTO commands (seq, time_ms, message, records) VALUES (?, ?, ?, ?)", (seq, time_ms, message, records))
        self.last_seq = seq
        return seq

    def read(self) -> Iterator[JournalEntry]:
        for row in self.conn.execute("SELECT seq, time_ms, message, records FROM commands ORDER BY seq"):
            yield JournalEntry(*row)

    def close(self) -> None:
        self.conn.close()
