"""The sharded engine's own pieces (rollup/sharded.py): subtree roots, ownership, failures, and
random workloads on any shard count and window (hypothesis) against the sequential node.

That a sharded batch equals sequential execution (receipts, diff, root, every later batch, on
processes and on Dask) is also tested with every other mode in tests/test_modes.py.
"""

from __future__ import annotations

import os
import random
import signal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollup.executors import WorkerCrashed
from rollup.sharded import ShardError, ShardSet, choose_subtree_level, get_owner
from rollup.state_tree import PoseidonTree, StateCommitment
from verifier.state_tree import TreeShape


def random_values(rng: random.Random, shape: TreeShape, n: int) -> dict[int, int]:
    return {rng.randrange(shape.capacity): rng.randrange(1, 1 << 250) for _ in range(n)}


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_subtree_roots_combined_give_the_whole_tree(level: int) -> None:
    """Shards updating their own subtrees to `level`, and the top installed from their roots,
    give the tree a single update gives, node for node above `level`."""
    shape = TreeShape(4, 4)
    rng = random.Random(level)
    base = random_values(rng, shape, 60)
    changes = random_values(rng, shape, 40)
    whole = PoseidonTree.from_leaves(shape, base)
    whole.update(changes)
    n_shards = 3
    forests = [PoseidonTree(shape) for _ in range(n_shards)]
    for s, forest in enumerate(forests):
        forest.update_subtrees({k: v for k, v in base.items() if get_owner(k, level, 4, n_shards) == s}, level)
    top = PoseidonTree.from_leaves(shape, base)
    roots = {}
    for s, forest in enumerate(forests):
        roots.update(forest.update_subtrees({k: v for k, v in changes.items() if get_owner(k, level, 4, n_shards) == s}, level))
    assert top.set_subtree_roots(level, roots) == whole.root
    for lv in range(level, shape.depth + 1):
        assert top.levels[lv] == whole.levels[lv]


def test_commitment_applies_pending_leaves_on_first_read(small_workload) -> None:
    """`update_from_subtrees` hashes only the top; the leaf values are applied when the tree is
    read, with the same root; a subtree root that disagrees with its leaves is caught then."""
    from rollup.state_tree import compute_account_value

    genesis = small_workload.genesis
    shape = TreeShape(genesis.account_tree_depth, 4)
    reference = StateCommitment.from_leaves(genesis, shape, _genesis_leaves(genesis))
    sharded = StateCommitment.from_leaves(genesis, shape, _genesis_leaves(genesis))
    rng = random.Random(1)
    values = {rng.randrange(64): rng.randrange(1, 1 << 250) for _ in range(20)}
    reference.update(values, {})
    level = 2
    forest = PoseidonTree(shape)
    roots = forest.update_subtrees(values, level)
    assert sharded.update_from_subtrees(level, roots, values, {}) == reference.root
    assert sharded._pending  # nothing below the subtree roots hashed yet
    assert sharded.accounts.get_path(5) == reference.accounts.get_path(5)
    assert not sharded._pending
    # a lying shard: its subtree root is not what its leaves give
    bad = StateCommitment.from_leaves(genesis, shape, _genesis_leaves(genesis))
    wrong = dict(roots)
    first = next(iter(wrong))
    wrong[first] += 1
    bad.update_from_subtrees(level, wrong, values, {})
    with pytest.raises(ValueError, match="disagree with its leaf values"):
        bad.accounts.root
    assert compute_account_value(b"", reference.table) == 0


def _genesis_leaves(genesis) -> dict[int, bytes]:
    from rollup.state import State
    from rollup.state_codec import get_state_leaves

    return get_state_leaves(State.from_genesis(genesis))


@pytest.mark.parametrize("n_shards", [1, 2, 8, 128])
def test_owned_subtrees_are_balanced(n_shards: int) -> None:
    """Enough subtrees per shard that accounts allocated from 0 spread evenly."""
    shape = TreeShape(12, 4)
    accounts = 20_000
    level = choose_subtree_level(accounts, n_shards, shape)
    counts = [0] * n_shards
    for a in range(accounts):
        counts[get_owner(a, level, 4, n_shards)] += 1
    assert max(counts) <= 1.5 * accounts / n_shards + 4**level
    assert 0 <= level <= shape.depth


@pytest.fixture
def started(small_workload, node_factory):
    """A node after the workload's deposits, its 2 shards, and the rest of the workload."""
    node = node_factory(small_workload.genesis)
    setup = small_workload.summary["setup"]
    node.submit(small_workload.transactions[:setup], max_batch_txs=None)
    shards = ShardSet(node.state, node.tree, 2)
    yield node, shards, small_workload.transactions[setup:]
    shards.close()


def _check(node):
    from rollup.signatures import check_signatures

    return lambda txs: check_signatures(txs, node.genesis.signing_domain)


def test_a_killed_shard_fails_the_batch_and_the_set(started) -> None:
    node, shards, batch = started
    os.kill(shards.pids[1], signal.SIGKILL)
    with pytest.raises(WorkerCrashed, match=r"shard 1 of 2 .* died \(killed by SIGKILL.*\): its accounts are lost"):
        shards.execute(node.state, batch, _check(node))
    with pytest.raises(ShardError, match="cannot run"):
        shards.execute(node.state, batch, _check(node))


def test_an_error_in_a_shard_names_it(started) -> None:
    node, shards, _ = started
    shards._send(0, "nonsense", None)
    with pytest.raises(ShardError, match="shard 0 of 2 failed: ShardError: unknown request 'nonsense'"):
        shards._receive(0)


# --- the node's sharded mode beyond tests/test_modes.py ------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    from rollup.executors import ProcessExecutor

    with ProcessExecutor(2) as executor:
        yield executor


@pytest.fixture(scope="module")
def mixed(workload_factory):
    return workload_factory(accounts=60, txs=400, seed=41, contention=0.1, invalid_share=0.05)


def _reference_roots(workload, node_factory, parts) -> list[bytes]:
    node = node_factory(workload.genesis, name="reference")
    return [node.submit(part, max_batch_txs=None).new_root for part in parts]


def _parts(workload, n: int = 3) -> list:
    setup = workload.summary["setup"]
    rest = workload.transactions[setup:]
    size = -(-len(rest) // n)
    return [workload.transactions[:setup]] + [rest[i : i + size] for i in range(0, len(rest), size)]


@pytest.mark.parametrize(("shards", "shard_signatures", "window"), [(1, True, None), (3, True, 37), (2, False, 50)])
def test_sharded_batches_equal_sequential_for_any_shard_count(mixed, node_factory, pool, shards, shard_signatures, window) -> None:
    """Shard counts, windows, and the signature pass run first: the same roots, batch after batch,
    on one resident shard set; the coordinator's copy of the accounts equals what the shards hold."""
    from rollup.modes import ExecutionOptions
    from rollup.sharded import check_holder_consistency

    parts = _parts(mixed)
    expected = _reference_roots(mixed, node_factory, parts)
    node = node_factory(mixed.genesis, name="sharded")
    options = ExecutionOptions(mode="sharded", executor=pool, partitions=shards, shard_signatures=shard_signatures, window=window)
    roots = []
    for part in parts:
        roots.append(node.submit(part, options, max_batch_txs=None).new_root)
        check_holder_consistency(node.resident["shards"], node.state)
    assert roots == expected
    assert node.resident["shards"].n_shards == shards
    assert node.tree.accounts.root == node.tree._accounts.root  # the pending leaves agree with the subtree roots
    assert node.state == node.__class__.open(node.home).state


def test_a_batch_in_another_mode_restarts_the_shards(mixed, node_factory, pool) -> None:
    from rollup.modes import ExecutionOptions

    parts = _parts(mixed)
    expected = _reference_roots(mixed, node_factory, parts)
    node = node_factory(mixed.genesis, name="mixed-modes")
    sharded = ExecutionOptions(mode="sharded", executor=pool)
    assert node.submit(parts[0], sharded, max_batch_txs=None).new_root == expected[0]
    first = node.resident["shards"]
    assert node.submit(parts[1], max_batch_txs=None).new_root == expected[1]  # sequential
    assert node.submit(parts[2], sharded, max_batch_txs=None).new_root == expected[2]
    assert node.resident["shards"] is not first and first.broken is not None
    assert node.submit(parts[3], sharded, max_batch_txs=None).new_root == expected[3]


def test_a_killed_shard_fails_the_batch_and_the_node_recovers(mixed, node_factory, pool) -> None:
    from rollup.modes import ExecutionOptions
    from rollup.node import NodeError

    parts = _parts(mixed)
    expected = _reference_roots(mixed, node_factory, parts)
    node = node_factory(mixed.genesis, name="killed")
    options = ExecutionOptions(mode="sharded", executor=pool)
    node.submit(parts[0], options, max_batch_txs=None)
    before = (node.root, dict(node.leaves))
    os.kill(node.resident["shards"].pids[0], signal.SIGKILL)
    with pytest.raises(NodeError, match=r"batch not committed: shard 0 of 2 .* died"):
        node.submit(parts[1], options, max_batch_txs=None)
    assert (node.root, node.leaves) == before and node.batch_number == 1 and not node.resident
    assert [node.submit(p, options, max_batch_txs=None).new_root for p in parts[1:]] == expected[1:]


def test_sharded_on_a_dask_cluster(mixed, node_factory) -> None:
    """Dask actors, one per worker of a LocalCluster: the same roots."""
    from rollup.executors import make_executor
    from rollup.modes import ExecutionOptions

    parts = _parts(mixed, 2)
    expected = _reference_roots(mixed, node_factory, parts)
    with make_executor("dask", workers=2, cluster="local") as executor:
        node = node_factory(mixed.genesis, name="dask")
        options = ExecutionOptions(mode="sharded", executor=executor)
        assert [node.submit(p, options, max_batch_txs=None).new_root for p in parts] == expected
        assert node.resident["shards"].transport == "dask"
        node.close_resident()


# --- any plan: random workloads, shard counts and windows ----------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    accounts=st.integers(6, 30),
    txs=st.integers(20, 120),
    contention=st.sampled_from([0.0, 0.3, 1.0]),
    invalid_share=st.sampled_from([0.0, 0.15]),
    shards=st.integers(1, 4),
    window=st.one_of(st.none(), st.integers(1, 25)),
    shard_signatures=st.booleans(),
)
def test_any_shard_count_and_window_gives_the_sequential_batches(
    pool, seed, accounts, txs, contention, invalid_share, shards, window, shard_signatures
) -> None:
    """Random workloads (invalid transactions included), 1 to 4 shards, windows from one
    transaction up: receipts and roots equal the sequential node's, batch after batch, and the
    shards hold exactly the coordinator's accounts."""
    import tempfile
    from pathlib import Path

    from rollup.fixtures import WorkloadSpec, generate_workload
    from rollup.modes import ExecutionOptions
    from rollup.node import Node
    from rollup.sharded import check_holder_consistency

    workload = generate_workload(
        WorkloadSpec(accounts=accounts, txs=txs, seed=seed, contention=contention, invalid_share=invalid_share, perps=1, series=2),
        workers=1,
    )
    parts = _parts(workload, 2)
    options = ExecutionOptions(mode="sharded", executor=pool, partitions=shards, shard_signatures=shard_signatures, window=window)
    with tempfile.TemporaryDirectory() as tmp:
        reference = Node.init(Path(tmp) / "reference", workload.genesis)
        node = Node.init(Path(tmp) / "sharded", workload.genesis)
        try:
            for part in parts:
                expected = reference.submit(part, max_batch_txs=None)
                got = node.submit(part, options, max_batch_txs=None)
                assert [r.model_dump() for r in got.receipts] == [r.model_dump() for r in expected.receipts]
                assert got.new_root == expected.new_root
                if node.resident:
                    check_holder_consistency(node.resident["shards"], node.state)
        finally:
            node.close()
            reference.close()
