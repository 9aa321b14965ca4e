"""One suite over every execution mode (rollup.modes.MODES): receipts, leaves, diff rows, roots and
what the store holds equal an independent reference (the rules applied in order to a fresh state,
every leaf encoded and the tree built from scratch), over several workloads and consecutive
batches; a part with nothing accepted commits nothing; a failure in a worker commits nothing and
the node reloads. A new mode is covered by adding it to MODES (and, if it runs on workers, its
failure points to WORKER_FAILURES)."""

from __future__ import annotations

from concurrent.futures import Executor, Future

import pytest

from rollup.execution import execute_batch
from rollup.executors import ProcessExecutor
from rollup.modes import MODES, ExecutionOptions
from rollup.node import Node, NodeError, build_tree, cut_batches, genesis_keys
from rollup.signatures import check_signatures
from rollup.state import State
from rollup.state_codec import encode_state_leaf
from verifier.encoding import account_key, compute_genesis_hash

WORKER_MODES = [name for name, mode in MODES.items() if mode.uses_workers]
# (mode, the worker function to fail, which of its calls): each must be called by that mode's batch
WORKER_FAILURES = [
    *((mode, "check_packed_signature_chunk", 2) for mode in WORKER_MODES if mode != "sharded"),
    ("partitioned", "execute_partition", 1),
    ("sharded", "check_packed_signature_chunk", 1),  # the coordinator's checks (its shards: tests/test_sharded.py)
    ("pipelined", "compute_account_values", 2),
]
BATCH_BOUND = 70  # several batches per submission, each of several signature chunks (64 with 2 workers)


@pytest.fixture(scope="module")
def pool():
    with ProcessExecutor(2) as executor:
        yield executor


@pytest.fixture(scope="module", params=[0.0, 0.2, 1.0], ids=lambda c: f"contention{c}")
def workload(request, workload_factory):
    return workload_factory(accounts=40, txs=200, seed=23, contention=request.param, invalid_share=0.05)


@pytest.fixture(scope="module")
def chunked_workload(workload_factory):
    """More deposits and transactions than one signature chunk holds (64 with 2 workers)."""
    return workload_factory(accounts=80, txs=200, seed=29, contention=0.2, invalid_share=0.05)


def options_for(mode: str, executor: Executor) -> ExecutionOptions:
    return ExecutionOptions(mode=mode, executor=executor if MODES[mode].uses_workers else None)


def get_all_leaves(state: State, genesis_hash: bytes) -> dict[int, bytes]:
    keys = [account_key(a) for a in state.accounts] + genesis_keys(state)
    leaves = {key: encode_state_leaf(state, key, genesis_hash) for key in keys}
    return {key: data for key, data in leaves.items() if data}


def run_reference(genesis, parts):
    """(receipts, diff rows, root) of every part with an accepted transaction, and the final
    leaves: the rules in submission order on one state, the tree rebuilt from every leaf."""
    state = State.from_genesis(genesis)
    genesis_hash = compute_genesis_hash(genesis)
    leaves = get_all_leaves(state, genesis_hash)
    batches = []
    for part in parts:
        receipts = execute_batch(state, part, check_signatures(part, genesis.signing_domain))
        after = get_all_leaves(state, genesis_hash)
        if not any(r.status == "accepted" for r in receipts):
            assert after == leaves  # rejections change nothing
            continue
        rows = [(k, leaves.get(k, b""), after.get(k, b"")) for k in sorted(leaves.keys() | after.keys()) if leaves.get(k) != after.get(k)]
        batches.append((receipts, rows, build_tree(genesis, after).root_bytes))
        leaves = after
    return batches, leaves


def get_parts(transactions, bound):
    return [transactions[start:end] for start, end in cut_batches(transactions, bound)]


def get_stored(node: Node, number: int) -> tuple:
    store = node.store
    return store.get_transactions(number), store.get_receipts(number), store.get_diff(number)


@pytest.mark.parametrize("mode", list(MODES))
def test_mode_gives_the_reference_batches(workload, node_factory, pool, mode):
    setup, rest = workload.transactions[: workload.summary["setup"]], workload.transactions[workload.summary["setup"] :]
    expected, final_leaves = run_reference(workload.genesis, get_parts(setup, BATCH_BOUND) + get_parts(rest, BATCH_BOUND))
    node = node_factory(workload.genesis, name=mode, max_batch_txs=BATCH_BOUND)
    options = options_for(mode, pool)
    results = [*node.submit(setup, options).batches, *node.submit(rest, options).batches]
    assert len(results) == len(expected) >= 4
    for number, (result, (receipts, rows, root)) in enumerate(zip(results, expected), start=1):
        assert result.number == number
        assert result.receipts == receipts
        assert result.diff_rows == rows
        assert result.new_root == root
        transactions, stored_receipts, stored_rows = get_stored(node, number)
        assert stored_receipts == [r.model_dump_json() for r in receipts]
        assert stored_rows == rows and len(transactions) == len(receipts)
        assert {"diff_and_root_s", "commit_s", "total_s"} <= result.timings.keys()
    assert node.leaves == final_leaves == node.store.load_leaves()
    assert node.state == Node.open(node.home).state


@pytest.mark.parametrize("mode", list(MODES))
def test_a_part_with_nothing_accepted_commits_nothing(chunked_workload, node_factory, pool, mode):
    """The deposits again after they committed: all rejected (several signature chunks); between
    two good parts they commit no batch, their receipts are the unbatched ones, numbered in the
    submission, and the next part commits the next batch."""
    workload = chunked_workload
    deposits = workload.transactions[: workload.summary["setup"]]
    trades = workload.transactions[workload.summary["setup"] :]
    assert len(deposits) > 64
    reference = node_factory(workload.genesis, name="reference")
    reference.submit(deposits)
    expected = reference.submit(trades, max_batch_txs=None).batch
    node = node_factory(workload.genesis, name=mode)
    options = options_for(mode, pool)
    node.submit(deposits, options, max_batch_txs=None)
    root = node.root
    again = node.submit(deposits, options, max_batch_txs=None)
    assert again.batches == [] and again.n_accepted == 0 and len(again.unbatched) == len(deposits)
    assert node.root == root and node.batch_number == 1 and node.store.get_transactions(2) == []
    mixed = node.submit([*deposits, *trades], options, max_batch_txs=len(deposits))
    assert mixed.unbatched == mixed.receipts[: len(deposits)]
    assert [r.index for r in mixed.receipts] == list(range(len(deposits) + len(trades)))
    assert mixed.batches[0].number == 2
    assert mixed.new_root == expected.new_root


class FailingExecutor(Executor):
    """Runs tasks on `inner`, except the `nth` call of the function named `target`: that one fails
    in its worker, as a worker bug or a lost disk would."""

    def __init__(self, inner: Executor, target: str, nth: int):
        self.inner, self.target, self.nth, self.calls = inner, target, nth, 0

    @property
    def workers(self) -> int:
        return self.inner.workers

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if fn.__name__ == self.target:
            self.calls += 1
            if self.calls == self.nth:
                return self.inner.submit(fail_in_worker, self.target)
        return self.inner.submit(fn, *args, **kwargs)


def fail_in_worker(target: str) -> None:
    raise ValueError(f"{target} failed on purpose")


@pytest.mark.parametrize(("mode", "target", "nth"), WORKER_FAILURES)
def test_a_failure_in_a_worker_commits_nothing_and_the_node_reloads(chunked_workload, node_factory, pool, mode, target, nth):
    workload = chunked_workload
    setup, batch = workload.transactions[: workload.summary["setup"]], workload.transactions[workload.summary["setup"] :]
    node = node_factory(workload.genesis, name=mode)
    node.submit(setup, max_batch_txs=None)
    root, state, leaves = node.root, node.state.copy(), dict(node.leaves)
    failing = FailingExecutor(pool, target, nth)
    with pytest.raises(NodeError, match=f"batch not committed: .*ValueError: {target} failed on purpose"):
        node.submit(batch, ExecutionOptions(mode=mode, executor=failing), max_batch_txs=None)
    assert failing.calls >= nth
    assert (node.root, node.batch_number, node.state, node.leaves) == (root, 1, state, leaves)
    assert get_stored(node, 2) == ([], [], []) and node.store.load_leaves() == leaves
    # the node still works and commits the reference batch
    reference = node_factory(workload.genesis, name="reference")
    reference.submit(setup, max_batch_txs=None)
    assert node.submit(batch, ExecutionOptions(mode=mode, executor=pool), max_batch_txs=None).new_root == reference.submit(batch, max_batch_txs=None).new_root


def test_invalid_options_are_refused(pool):
    with pytest.raises(ValueError, match="unknown execution mode 'fast': choose one of sequential, partitioned, pipelined"):
        ExecutionOptions(mode="fast")
    for mode in WORKER_MODES:
        with pytest.raises(ValueError, match=f"the {mode} mode runs on workers: give it an executor"):
            ExecutionOptions(mode=mode)
    with pytest.raises(ValueError, match="the sequential mode runs in this process"):
        ExecutionOptions(mode="sequential", executor=pool)
    with pytest.raises(ValueError, match="partitions must be a positive number, got 0"):
        ExecutionOptions(mode="partitioned", executor=pool, partitions=0)
    with pytest.raises(ValueError, match="window must be at least 1 transaction, got 0"):
        ExecutionOptions(mode="partitioned", executor=pool, window=0)
    with pytest.raises(TypeError):
        ExecutionOptions("partitioned", pool)  # keywords only: no argument lands in the wrong field
