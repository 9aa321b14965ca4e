"""The node's store, one suite over both layouts: per-batch blobs (`Store`) and the row-per-transaction
reference (`RowStore`) must read back the same batches, keep uncommitted writes invisible, and rebuild
older states from the diffs."""

from __future__ import annotations

import json
import sqlite3

import pytest

import rollup.storage as storage
from rollup.storage import DB_NAME, RowStore, StorageError, Store, get_accepted_counts, get_accepted_indices, get_leaves_before

GENESIS = {1: b"a1", 2: b"b1", 3: b"c1"}


@pytest.fixture(params=[RowStore, Store], ids=["rows", "blobs"])
def store_class(request):
    return request.param


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(storage, "CHUNK_ROWS", 3)  # several chunks per batch, and a partial last one


def make_batch(first: int, n: int, rejected: set[int]) -> tuple[list[str], list[tuple[str, str]]]:
    # wire JSON escapes a newline inside a string: such a body stays one line
    bodies = [json.dumps({"n": first + i, "memo": "two\nlines"}) for i in range(n)]
    receipts = [("rejected" if i in rejected else "accepted", json.dumps({"index": i, "ok": i not in rejected})) for i in range(n)]
    return bodies, receipts


def create(store_class, tmp_path):
    return store_class.create(tmp_path / "node", '{"genesis": 1}', GENESIS, b"\0" * 32)


def test_batches_read_back(store_class, tmp_path, small_chunks):
    store = create(store_class, tmp_path)
    bodies, receipts = make_batch(0, 10, {2, 7})
    diff1 = [(1, b"a1", b"a2"), (3, b"c1", b""), (9, b"", b"z1")]  # changed, deleted, created
    store.commit_batch(1, b"\0" * 32, b"\1" * 32, bodies, iter(receipts), diff1, {"timings": {}})
    bodies2, receipts2 = make_batch(10, 4, {0, 1, 2, 3})
    diff2 = [(1, b"a2", b"a3"), (3, b"", b"c3"), (9, b"z1", b"")]
    store.commit_batch(2, b"\1" * 32, b"\2" * 32, bodies2, receipts2, diff2, {"timings": {}})
    store.close()

    store = store_class.open(tmp_path / "node")
    try:
        assert store.get_transactions(1) == bodies and store.get_transactions(2) == bodies2
        assert store.get_receipts(1) == [body for _, body in receipts]
        assert store.get_diff(1) == diff1 and store.get_diff(2) == diff2
        assert get_accepted_indices(store, 1) == [0, 1, 3, 4, 5, 6, 8, 9]
        assert get_accepted_indices(store, 2) == []
        assert get_accepted_counts(store) == [(1, 8), (2, 0)]
        row = store.get_batch(1)
        assert (row.n_tx, row.n_accepted, row.new_root) == (10, 8, b"\1" * 32)
        assert store.load_leaves() == {1: b"a3", 2: b"b1", 3: b"c3"}
        assert get_leaves_before(store, 1) == GENESIS
        assert get_leaves_before(store, 2) == {1: b"a2", 2: b"b1", 9: b"z1"}
        assert get_leaves_before(store, 3) == store.load_leaves()
        assert store.get_transactions(3) == [] and store.get_diff(3) == [] and get_accepted_indices(store, 3) == []
    finally:
        store.close()


def test_writer_chunk_by_chunk_equals_one_commit(store_class, tmp_path, small_chunks):
    """The pipelined node's pattern: chunks written early, a leaf written early and taken back, the
    rest at the commit; nothing visible to another connection before the commit."""
    store = create(store_class, tmp_path)
    bodies, receipts = make_batch(0, 11, {4})
    writer = store.begin_batch(1)
    writer.write_transactions(bodies[:5])
    writer.write_receipts(receipts[:5])
    writer.write_transactions(bodies[5:7])
    writer.write_receipts(iter(receipts[5:7]))
    writer.write_leaf_changes([(2, b"b1", b"b2"), (1, b"a1", b"a2")])
    writer.undo_leaf_changes([(1, b"a1", b"a2")])  # a later chunk touched leaf 1 again

    reader = sqlite3.connect(tmp_path / "node" / DB_NAME)
    assert reader.execute("SELECT COUNT(*) FROM batches").fetchone()[0] == 0
    assert dict(reader.execute("SELECT key, value FROM leaves")) == GENESIS

    store.commit_batch(1, b"\0" * 32, b"\1" * 32, bodies[7:], receipts[7:], [(1, b"a1", b"a3")], {}, writer)
    assert reader.execute("SELECT n_tx, n_accepted FROM batches").fetchone() == (11, 10)
    reader.close()
    assert store.get_transactions(1) == bodies
    assert store.get_receipts(1) == [body for _, body in receipts]
    assert store.get_diff(1) == [(1, b"a1", b"a3"), (2, b"b1", b"b2")]
    assert get_accepted_indices(store, 1) == [i for i in range(11) if i != 4]
    assert store.load_leaves() == {1: b"a3", 2: b"b2", 3: b"c1"}
    store.close()


def test_aborted_batch_leaves_no_trace(store_class, tmp_path, small_chunks):
    store = create(store_class, tmp_path)
    bodies, receipts = make_batch(0, 7, set())
    writer = store.begin_batch(1)
    writer.write_transactions(bodies)
    writer.write_receipts(receipts)
    writer.write_leaf_changes([(1, b"a1", b"a9")])
    writer.abort()
    assert store.count_batches() == 0 and store.get_transactions(1) == [] and store.load_leaves() == GENESIS
    store.commit_batch(1, b"\0" * 32, b"\1" * 32, bodies[:2], receipts[:2], [(2, b"b1", b"b2")], {})
    assert store.get_transactions(1) == bodies[:2] and store.get_diff(1) == [(2, b"b1", b"b2")]
    store.close()


def test_invalid_batch_number(store_class, tmp_path):
    store = create(store_class, tmp_path)
    with pytest.raises(StorageError, match="batch 2 does not follow the last stored batch 0"):
        store.begin_batch(2)
    assert not store.conn.in_transaction
    store.close()


def test_invalid_leaf_written_twice(store_class, tmp_path):
    store = create(store_class, tmp_path)
    writer = store.begin_batch(1)
    writer.write_leaf_changes([(1, b"a1", b"a2")])
    with pytest.raises(StorageError, match="written twice in batch 1"):
        writer.write_leaf_changes([(1, b"a1", b"a3")])
    writer.abort()
    store.close()


def test_invalid_body_with_a_newline(tmp_path):
    """Blob layout only: bodies are stored one per line, so a raw newline would split one in two."""
    store = create(Store, tmp_path)
    with pytest.raises(StorageError, match="contains a newline"):
        store.commit_batch(1, b"\0" * 32, b"\1" * 32, ['{"a": 1}', '{"a":\n2}'], [], [], {})
    assert store.count_batches() == 0 and store.get_transactions(1) == []
    store.close()


def test_invalid_corrupt_diff_blob(tmp_path):
    store = create(Store, tmp_path)
    store.commit_batch(1, b"\0" * 32, b"\1" * 32, ["{}"], [("accepted", "{}")], [(1, b"a1", b"a2")], {})
    with store.conn:
        store.conn.execute("UPDATE batch_diffs SET rows = substr(rows, 1, length(rows) - 1)")
    with pytest.raises(StorageError, match="stored diff of batch 1 is corrupt"):
        store.get_diff(1)
    store.close()


def test_pack_diff_rows_round_trip():
    rows = [(0, b"", b"x"), (5, b"before", b""), (2**40, b"\0" * 300, b"\1" * 7)]
    assert storage.unpack_diff_rows(storage.pack_diff_rows(rows), 1) == rows
    assert storage.unpack_diff_rows(storage.pack_diff_rows([]), 1) == []


def test_invalid_open_older_schema(tmp_path):
    """A row-per-transaction database (schema 1) is refused by the blob store, with what to do."""
    create(RowStore, tmp_path).close()
    with pytest.raises(StorageError, match="schema version 1, this node reads 2.*rollup init --force"):
        Store.open(tmp_path / "node")
    RowStore.open(tmp_path / "node").close()


def test_invalid_node_on_an_older_schema(tmp_path):
    from rollup.node import Node, NodeError

    create(RowStore, tmp_path).close()
    with pytest.raises(NodeError, match="schema version 1, this node reads 2"):
        Node.open(tmp_path / "node")
