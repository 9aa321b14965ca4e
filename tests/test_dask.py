"""The parallel sequencer on a real Dask cluster (a LocalCluster of 2 worker processes).

- A batch executed through the cluster gives exactly the sequential receipts, state and root.
- A worker process killed mid-batch (a task SIGKILLs its own worker the first time it runs,
  remembered through a marker file) is restarted by its nanny and the task re-run elsewhere: the
  batch completes with the identical root.
- A task that kills its worker on every try ends as `WorkerCrashed` and nothing is committed.

The scheduler allows one retry (`allowed-failures: 1`) instead of three, so the last test does not
wait for four worker restarts.
"""

from __future__ import annotations

import os
import signal
import sys
from concurrent.futures import Executor, Future
from pathlib import Path

import cloudpickle
import dask
import distributed  # noqa: F401 - loads distributed's config defaults before the `dask.config.set` below: a
# key `set` creates is deleted whole when it exits, which took every `distributed.*` default with
# it and broke the next Dask client in this process (tests/test_dask_cluster.py, same pytest worker)
import pytest

from rollup.modes import ExecutionOptions
from rollup.executors import get_executor_workers, make_executor
from rollup.node import Node, NodeError

# Dask workers are spawned processes that may not see tests/ on their path: ship this module's
# functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def run_or_kill(marker: str | None, fn, *args, **kwargs):
    """Runs in a Dask worker. marker None: always SIGKILL the worker's process; else kill it only
    if the marker file does not exist yet (creating it first)."""
    if marker is None:
        os.kill(os.getpid(), signal.SIGKILL)
    if not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return fn(*args, **kwargs)


class KillingExecutor(Executor):
    """Wraps an executor so that tasks of the function named `target` go through `run_or_kill`."""

    def __init__(self, inner: Executor, target: str, marker: str | None):
        self.inner = inner
        self.workers = get_executor_workers(inner)
        self.target = target
        self.marker = marker
        self.killer_tasks = 0

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if getattr(fn, "__name__", "") != self.target:
            return self.inner.submit(fn, *args, **kwargs)
        self.killer_tasks += 1
        return self.inner.submit(run_or_kill, self.marker, fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # the cluster belongs to the module fixture


@pytest.fixture(scope="module")
def cluster():
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with make_executor("dask", workers=2, cluster="local") as executor:
            yield executor


@pytest.fixture(scope="module")
def workload(workload_factory):
    """A batch that splits into several conflict groups, so that every partition has work."""
    from rollup.planner import plan_batch

    workload = workload_factory(accounts=300, txs=200, seed=5, contention=0.1, invalid_share=0.05)
    assert all(plan_batch(_split(workload)[1], 2).partitions)
    return workload


@pytest.fixture(scope="module")
def reference(workload, tmp_path_factory):
    """Sequential execution: the root, receipts and leaves every other run must reproduce."""
    node = Node.init(tmp_path_factory.mktemp("reference") / "node", workload.genesis)
    setup, batch = _split(workload)
    node.submit(setup, max_batch_txs=None).batch
    result = node.submit(batch, max_batch_txs=None).batch
    leaves = dict(node.leaves)
    node.close()
    return result, leaves


def _split(workload):
    n = workload.summary["setup"]
    return workload.transactions[:n], workload.transactions[n:]


def _execution_task_name() -> str:
    from rollup.parallel import execute_partition

    return execute_partition.__name__


@pytest.mark.parametrize("coordinator_executes", [True, False], ids=["coordinator-and-worker", "workers-only"])
def test_batch_on_local_cluster_is_identical_to_serial(cluster, workload, reference, node_factory, coordinator_executes):
    expected, expected_leaves = reference
    node = node_factory(workload.genesis)
    setup, batch = _split(workload)
    node.submit(setup, ExecutionOptions(mode="partitioned", executor=cluster, partitions=2, coordinator_executes=coordinator_executes), max_batch_txs=None).batch
    result = node.submit(batch, ExecutionOptions(mode="partitioned", executor=cluster, partitions=2, coordinator_executes=coordinator_executes), max_batch_txs=None).batch
    assert len(set(cluster.pids)) == 2 and os.getpid() not in cluster.pids
    assert result.new_root == expected.new_root
    assert result.receipts == expected.receipts
    assert result.diff == expected.diff
    assert node.leaves == expected_leaves
    assert any(r.status == "rejected" for r in result.receipts)


def test_pipelined_batch_on_local_cluster_is_identical_to_serial(cluster, workload, reference, node_factory):
    """The CLI's default mode on the cluster: signatures recovered on the Dask workers, execution
    and the early commit work here, the sequential result and store."""
    expected, expected_leaves = reference
    node = node_factory(workload.genesis)
    setup, batch = _split(workload)
    node.submit(setup, ExecutionOptions(mode="pipelined", executor=cluster), max_batch_txs=None).batch
    result = node.submit(batch, ExecutionOptions(mode="pipelined", executor=cluster), max_batch_txs=None).batch
    assert result.new_root == expected.new_root
    assert result.receipts == expected.receipts
    assert result.diff == expected.diff
    assert node.leaves == expected_leaves
    assert node.store.load_leaves() == expected_leaves


def test_worker_killed_mid_batch_is_rerun_with_identical_root(cluster, workload, reference, node_factory, tmp_path):
    expected, expected_leaves = reference
    marker = tmp_path / "killed-once"
    node = node_factory(workload.genesis)
    setup, batch = _split(workload)
    node.submit(setup, max_batch_txs=None).batch
    pids_before = set(cluster.pids)
    killing = KillingExecutor(cluster, target=_execution_task_name(), marker=str(marker))
    result = node.submit(batch, ExecutionOptions(mode="partitioned", executor=killing, partitions=2), max_batch_txs=None).batch
    assert killing.killer_tasks >= 1
    assert marker.exists()  # a worker really died ...
    assert set(cluster.pids) != pids_before  # ... and its nanny started a new one
    assert result.new_root == expected.new_root
    assert result.receipts == expected.receipts
    assert node.leaves == expected_leaves
    assert node.batch_number == 2


def test_task_killing_every_worker_fails_and_commits_nothing(cluster, workload, node_factory):
    node = node_factory(workload.genesis)
    setup, batch = _split(workload)
    committed_root = node.submit(setup, max_batch_txs=None).batch.new_root
    killing = KillingExecutor(cluster, target=_execution_task_name(), marker=None)
    with pytest.raises(NodeError, match="batch not committed: .*WorkerCrashed: a Dask worker died on every try"):
        node.submit(batch, ExecutionOptions(mode="partitioned", executor=killing, partitions=2), max_batch_txs=None).batch
    assert node.batch_number == 1 and node.root == committed_root
    reopened = Node.open(node.home)
    try:
        assert reopened.batch_number == 1 and reopened.root == committed_root
    finally:
        reopened.close()
    # the cluster recovers: the same batch then commits
    cluster.client.wait_for_workers(2, timeout=30)
    assert node.submit(batch, ExecutionOptions(mode="partitioned", executor=cluster, partitions=2), max_batch_txs=None).batch.number == 2
