"""The node: one batch end to end, reopening, the diff against the roots, tamper detection."""

from __future__ import annotations

import copy
import sqlite3

import pytest

from rollup.node import Node, NodeError
from rollup.state import compute_total_value
from rollup.storage import DB_NAME
from verifier.encoding import decode_account_leaf, decode_key
from verifier.state_tree import compute_account_hash, compute_multiproof_root, compute_state_root
from verifier.wire import Deposit, Withdraw


def _net_deposits(transactions, receipts) -> int:
    total = 0
    for tx, receipt in zip(transactions, receipts):
        if receipt.status != "accepted":
            continue
        if isinstance(tx, Deposit):
            total += tx.amount
        elif isinstance(tx, Withdraw):
            total -= tx.amount
    return total


def test_submit_matches_the_generator_and_conserves_value(small_workload, node_factory):
    node = node_factory(small_workload.genesis)
    result = node.submit(small_workload.transactions, max_batch_txs=None).batch
    assert result.number == 1
    assert len(result.receipts) == len(small_workload.transactions)
    # the generator ran the same rules: exactly its deliberately invalid transactions are rejected
    assert len(result.receipts) - result.n_accepted == small_workload.summary["rejected"] > 0
    assert [r.index for r in result.receipts] == list(range(len(result.receipts)))
    assert compute_total_value(node.state) == _net_deposits(small_workload.transactions, result.receipts)


def test_reopen_gives_the_same_state_and_root(small_workload, node_factory, tmp_path):
    node = node_factory(small_workload.genesis)
    result = node.submit(small_workload.transactions, max_batch_txs=None).batch
    state_before = node.state.copy()
    node.close()
    reopened = Node.open(tmp_path / "node")
    try:
        assert reopened.root == result.new_root
        assert reopened.batch_number == 1
        assert reopened.state == state_before
    finally:
        reopened.close()


def test_the_diff_checks_against_both_roots_with_one_multiproof(small_workload, node_factory):
    # the diff's accounts open the previous root with one multiproof, and give the new root on it
    node = node_factory(small_workload.genesis)
    old_accounts = copy.deepcopy(node.tree.accounts)
    result = node.submit(small_workload.transactions, max_batch_txs=None).batch
    table = node.tree.table
    ids = [l.key for l in result.diff.leaves if decode_key(l.key)[0] == "account"]
    nodes = old_accounts.get_multiproof(ids)

    def accounts(side: str) -> dict[int, int]:
        values = {}
        for l in result.diff.leaves:
            if decode_key(l.key)[0] == "account":
                data = bytes.fromhex(getattr(l, side)[2:])
                values[l.key] = compute_account_hash(decode_account_leaf(data) if data else None, table)
        return values

    state_root = lambda accounts_root: compute_state_root(accounts_root, node.tree._markets_hash, node.tree._globals_hash)  # noqa: E731
    assert compute_multiproof_root(accounts("before"), nodes, old_accounts.shape) == old_accounts.root
    assert state_root(compute_multiproof_root(accounts("after"), nodes, old_accounts.shape)).to_bytes(32, "big") == result.new_root
    # a changed "after" leaf gives another root
    forged = {**accounts("after"), ids[0]: 12345}
    assert state_root(compute_multiproof_root(forged, nodes, old_accounts.shape)).to_bytes(32, "big") != result.new_root


def test_batches_chain_and_execution_is_deterministic(small_workload, node_factory):
    half = len(small_workload.transactions) // 2
    a = node_factory(small_workload.genesis, "a")
    first = a.submit(small_workload.transactions[:half], max_batch_txs=None).batch
    second = a.submit(small_workload.transactions[half:], max_batch_txs=None).batch
    assert second.prev_root == first.new_root and second.number == 2
    b = node_factory(small_workload.genesis, "b")
    b.submit(small_workload.transactions[:half], max_batch_txs=None).batch
    assert b.submit(small_workload.transactions[half:], max_batch_txs=None).batch.new_root == second.new_root


def test_invalid_tampered_leaf_is_detected_on_open(small_workload, node_factory, tmp_path):
    node = node_factory(small_workload.genesis)
    node.submit(small_workload.transactions, max_batch_txs=None).batch
    node.close()
    conn = sqlite3.connect(tmp_path / "node" / DB_NAME)
    key, value = conn.execute("SELECT key, value FROM leaves WHERE key < 1000 ORDER BY key LIMIT 1").fetchone()
    tampered = bytearray(value)
    tampered[63] ^= 1  # the lowest byte of the collateral word
    conn.execute("UPDATE leaves SET value = ? WHERE key = ?", (bytes(tampered), key))
    conn.commit()
    conn.close()
    with pytest.raises(NodeError, match="state root mismatch"):
        Node.open(tmp_path / "node")


def test_invalid_open_without_a_node(tmp_path):
    with pytest.raises(NodeError, match="rollup init"):
        Node.open(tmp_path / "nothing")


def test_invalid_init_twice(small_workload, node_factory):
    node_factory(small_workload.genesis, "x")
    with pytest.raises(NodeError, match="already exists"):
        node_factory(small_workload.genesis, "x")


def test_a_failed_commit_leaves_memory_at_the_last_batch(small_workload, node_factory, monkeypatch):
    node = node_factory(small_workload.genesis)
    root = node.root

    def fail(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(node.store, "commit_batch", fail)
    with pytest.raises(sqlite3.OperationalError):
        node.submit(small_workload.transactions, max_batch_txs=None).batch
    assert node.root == root and node.state.accounts == {} and node.batch_number == 0


@pytest.mark.parametrize("field, value", [("rollup_address", "0x" + "5a" * 20), ("l1_chain_id", 1)])
def test_invalid_transactions_signed_for_another_deployment_are_rejected(small_workload, node_factory, field, value):
    """Same L2 chain id, another settlement deployment (Rollup contract or L1): every signature is
    void there (security review, finding 5: the EIP-712 domain named neither)."""
    node = node_factory(small_workload.genesis)
    assert node.submit(small_workload.transactions, max_batch_txs=None).n_accepted > 0
    other = small_workload.genesis.model_copy(update={field: value})
    assert other.chain_id == small_workload.genesis.chain_id
    replayed = node_factory(other, name="other").submit(small_workload.transactions, max_batch_txs=None)
    signed = [r for tx, r in zip(small_workload.transactions, replayed.receipts) if tx.type != "deposit"]
    assert signed and all(r.status == "rejected" for r in signed)


def test_invalid_oracle_updates_after_a_skipped_one(workload_factory, node_factory):
    """A sequencer that drops a signed oracle update cannot apply the later ones (security
    review, finding 6: it chose the price path by skipping updates)."""
    workload = workload_factory(accounts=6, txs=60, seed=13, mix={"oracle_update": 1, "perp_trade": 2})
    updates = [i for i, tx in enumerate(workload.transactions) if tx.type == "oracle_update"]
    assert len(updates) >= 3
    skipped = updates[1]
    transactions = workload.transactions[:skipped] + workload.transactions[skipped + 1 :]
    submission = node_factory(workload.genesis).submit(transactions, max_batch_txs=None)
    later = [r for tx, r in zip(transactions, submission.receipts) if tx.type == "oracle_update"][1:]
    assert later and all(r.status == "rejected" and "out of sequence" in r.reason for r in later)
