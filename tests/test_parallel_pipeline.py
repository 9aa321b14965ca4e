"""The pipelined node's early tail work: the batch writer that stores transactions and receipts
while the batch executes, and the leaves encoded as soon as no later chunk names their account;
the background WAL checkpoint. Everything must equal the sequential node, including what the
store holds."""

from __future__ import annotations

import pytest

from rollup.modes import ExecutionOptions
from rollup.executors import ProcessExecutor, SerialExecutor
from rollup.modes.pipelined import get_last_chunks
from rollup.signatures import compute_signature_chunk_size
from rollup.planner import ACCOUNT_GETTERS
from rollup.storage import StorageError


def _split_setup(workload):
    n_setup = workload.summary["setup"]
    return workload.transactions[:n_setup], workload.transactions[n_setup:]


@pytest.fixture(scope="module")
def chunked_workload(workload_factory):
    """Enough transactions for several signature chunks (of at least 64) with 2 workers, a few
    invalid signatures, accounts named in several chunks."""
    return workload_factory(accounts=60, txs=400, seed=11, contention=0.1, invalid_share=0.05)


def _stored(node, number: int) -> tuple:
    store = node.store
    return store.get_transactions(number), store.get_receipts(number), store.get_diff(number), store.get_batch(number).n_accepted


def test_last_chunks_name_the_last_chunk_of_every_account(chunked_workload):
    _, batch = _split_setup(chunked_workload)
    last = get_last_chunks(batch, 64)
    for index, tx in enumerate(batch):
        getter = ACCOUNT_GETTERS[type(tx)]
        for account in getter(tx) if getter else ():
            assert last[account] >= index // 64
    assert set(last.values()) <= set(range(-(-len(batch) // 64)))


def test_pipelined_batch_on_a_serial_executor_is_stored_as_the_sequential_one(chunked_workload, node_factory):
    """tests/test_modes.py runs every mode on a process pool; here the pipelined mode's chunks
    come from an executor that runs them inline, in order."""
    setup, batch = _split_setup(chunked_workload)
    assert compute_signature_chunk_size(len(batch), 2) == 64 and len(batch) > 3 * 64  # several chunks
    sequential = node_factory(chunked_workload.genesis, "sequential")
    sequential.submit(setup, max_batch_txs=None).batch
    expected = sequential.submit(batch, max_batch_txs=None).batch
    pipelined = node_factory(chunked_workload.genesis, "pipelined")
    pipelined.submit(setup, max_batch_txs=None).batch
    with SerialExecutor() as executor:
        executor.workers = 2  # same chunking as a pool of two
        result = pipelined.submit(batch, ExecutionOptions(mode="pipelined", executor=executor), max_batch_txs=None).batch
    assert result.new_root == expected.new_root
    assert result.receipts == expected.receipts
    assert result.diff == expected.diff
    assert pipelined.state == sequential.state
    assert _stored(pipelined, 2) == _stored(sequential, 2)


def test_batch_writer_rolls_back_and_checks_the_number(small_workload, node_factory):
    node = node_factory(small_workload.genesis)
    with pytest.raises(StorageError, match="does not follow"):
        node.store.begin_batch(5)
    writer = node.store.begin_batch(1)
    writer.write_transactions(['{"x": 1}'])
    writer.write_receipts([("accepted", '{"y": 2}')])
    writer.abort()
    assert node.store.get_transactions(1) == [] and node.store.get_receipts(1) == [] and node.batch_number == 0
    node.submit(small_workload.transactions, max_batch_txs=None).batch  # the store is usable after the rollback
    assert node.batch_number == 1


def test_commit_through_a_writer_of_another_batch_fails(small_workload, node_factory):
    node = node_factory(small_workload.genesis)
    writer = node.store.begin_batch(1)
    with pytest.raises(StorageError, match="writer of batch 1"):
        node.store.commit_batch(2, b"", b"", [], [], [], {}, writer)
    writer.abort()
    assert node.batch_number == 0


def test_the_background_checkpoint_empties_the_wal_and_a_reopened_node_sees_every_batch(chunked_workload, node_factory):
    from rollup.node import Node

    setup, batch = _split_setup(chunked_workload)
    node = node_factory(chunked_workload.genesis)
    node.submit(setup, max_batch_txs=None).batch
    root = node.submit(batch, max_batch_txs=None).batch.new_root
    node.store.wait_for_checkpoint()
    busy, wal_pages, copied = node.store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and wal_pages == copied  # the WAL is consistent and fully copied back
    home = node.home
    node.close()
    reopened = Node.open(home)
    try:
        assert reopened.root == root and reopened.batch_number == 2
    finally:
        reopened.close()


def test_leaves_written_early_and_touched_again_are_rewritten(chunked_workload, node_factory, monkeypatch):
    """With no knowledge of later chunks, every account is taken as final at each touch: those a
    later chunk touches again must have their early diff rows taken back and rewritten."""
    import rollup.modes.pipelined

    setup, batch = _split_setup(chunked_workload)
    sequential = node_factory(chunked_workload.genesis, "sequential")
    sequential.submit(setup, max_batch_txs=None).batch
    expected = sequential.submit(batch, max_batch_txs=None).batch
    monkeypatch.setattr(rollup.modes.pipelined, "get_last_chunks", lambda transactions, chunk_size: {})
    pipelined = node_factory(chunked_workload.genesis, "pipelined")
    pipelined.submit(setup, max_batch_txs=None).batch
    with ProcessExecutor(2) as executor:
        result = pipelined.submit(batch, ExecutionOptions(mode="pipelined", executor=executor), max_batch_txs=None).batch
    assert result.new_root == expected.new_root and result.diff == expected.diff
    assert _stored(pipelined, 2) == _stored(sequential, 2)
    assert pipelined.store.load_leaves() == sequential.store.load_leaves()


def _get_niceness(_: int) -> int:
    import os

    return os.getpriority(os.PRIO_PROCESS, 0)


def test_pool_workers_run_below_the_coordinators_priority():
    import os

    from rollup.executors import WORKER_NICENESS, ExecutorError

    own = os.getpriority(os.PRIO_PROCESS, 0)
    with ProcessExecutor(1) as executor:
        assert executor.submit(_get_niceness, 0).result(timeout=30) == min(19, own + WORKER_NICENESS)
    with ProcessExecutor(1, niceness=0) as executor:
        assert executor.submit(_get_niceness, 0).result(timeout=30) == own
    with pytest.raises(ExecutorError, match="niceness"):
        ProcessExecutor(1, niceness=-1)


@pytest.mark.parametrize("mode", ["pipelined", "partitioned"])
def test_account_leaves_hashed_on_the_workers_give_the_sequential_root(chunked_workload, node_factory, monkeypatch, mode):
    """Leaf hashes farmed out to the pool (every batch here, the threshold lowered) give the same
    root as hashing them on the coordinator; the deposits batch alone creates 60 accounts."""
    import rollup.execution

    setup, batch = _split_setup(chunked_workload)
    sequential = node_factory(chunked_workload.genesis, "sequential")
    expected = [sequential.submit(part, max_batch_txs=None).batch.new_root for part in (setup, batch)]
    monkeypatch.setattr(rollup.execution, "PARALLEL_HASH_MIN_LEAVES", 1)
    calls = []
    original = rollup.execution.compute_account_values
    with ProcessExecutor(2) as executor:
        submit = executor.submit

        def counting_submit(fn, *args, **kwargs):
            calls.append(fn is original)
            return submit(fn, *args, **kwargs)

        monkeypatch.setattr(executor, "submit", counting_submit)
        parallel = node_factory(chunked_workload.genesis, "parallel")
        roots = [parallel.submit(part, ExecutionOptions(mode=mode, executor=executor), max_batch_txs=None).batch.new_root for part in (setup, batch)]
    assert roots == expected
    assert any(calls)  # the leaves went to the workers
