"""Execution backends (rollup.executors): one test suite over serial, process and Dask.

Each backend runs tasks, keeps map order and delivers a task's exception through its future; a
process-pool worker killed with SIGKILL fails the pending futures with `WorkerCrashed` instead of
hanging; bad parameters are refused with clear messages; the parallel signature pass gives the
sequential pass's results on every backend; and a worker crash during `Node.submit` commits
nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import Executor, Future

import pytest

from rollup.modes import ExecutionOptions
from rollup.executors import (
    ExecutorError,
    ProcessExecutor,
    SerialExecutor,
    WorkerCrashed,
    describe_exit,
    get_executor_workers,
    make_executor,
)
from rollup.node import Node, NodeError
from rollup.signatures import check_signatures

KINDS = ["serial", "process", "dask"]
RESULT_TIMEOUT_S = 30  # a hang fails the test instead of blocking the suite


def square(x: int) -> int:
    return x * x


def sleep_then_return(x: int, delay: float) -> int:
    time.sleep(delay)
    return x


def fail_with(message: str) -> None:
    raise ValueError(message)


def kill_own_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def run_or_kill(kill: bool, fn, *args, **kwargs):
    """Runs in a worker: SIGKILL the worker's own process, or run `fn`."""
    if kill:
        os.kill(os.getpid(), signal.SIGKILL)
    return fn(*args, **kwargs)


class KillingExecutor(Executor):
    """Wraps an executor; the first task of the function named `target` kills its worker process."""

    def __init__(self, inner: Executor, target: str):
        self.inner = inner
        self.workers = get_executor_workers(inner)
        self.target = target
        self.killed = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        kill = not self.killed and getattr(fn, "__name__", "") == self.target
        self.killed = self.killed or kill
        return self.inner.submit(run_or_kill, kill, fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


@pytest.fixture(scope="module")
def dask_executor():
    with make_executor("dask", workers=2, cluster="local") as executor:
        yield executor


@pytest.fixture(params=KINDS)
def executor(request):
    if request.param == "dask":
        yield request.getfixturevalue("dask_executor")
        return
    with make_executor(request.param, workers=2) as ex:
        yield ex


# --- every backend -----------------------------------------------------------------------------------


def test_runs_tasks_with_args_and_kwargs(executor):
    assert executor.submit(square, 7).result(timeout=RESULT_TIMEOUT_S) == 49
    assert executor.submit(sleep_then_return, 3, delay=0.0).result(timeout=RESULT_TIMEOUT_S) == 3


def test_map_keeps_input_order(executor):
    # later items finish first: the results must still come back in input order
    delays = [0.2, 0.1, 0.0, 0.05, 0.0, 0.15]
    assert list(executor.map(sleep_then_return, range(6), delays, timeout=RESULT_TIMEOUT_S)) == list(range(6))


def test_exception_propagates_through_the_future(executor):
    future = executor.submit(fail_with, "margin engine broke")
    exc = future.exception(timeout=RESULT_TIMEOUT_S)
    assert isinstance(exc, ValueError) and str(exc) == "margin engine broke"
    with pytest.raises(ValueError, match="margin engine broke"):
        list(executor.map(fail_with, ["margin engine broke"], timeout=RESULT_TIMEOUT_S))


def test_reports_its_worker_count(executor):
    assert get_executor_workers(executor) == (1 if isinstance(executor, SerialExecutor) else 2)


def test_signature_pass_matches_sequential_pass(executor, small_workload):
    txs, chain_id = small_workload.transactions, small_workload.genesis.signing_domain
    expected = check_signatures(txs, chain_id)
    assert any(c.signers is None for c in expected)  # the workload has malformed signatures
    assert check_signatures(txs, chain_id, executor) == expected
    assert check_signatures([], chain_id, executor) == []


# --- the process pool ----------------------------------------------------------------------------------


def test_killed_pool_worker_fails_pending_futures_instead_of_hanging():
    with pytest.raises(WorkerCrashed):
        with make_executor("process", workers=2) as ex:
            slow = ex.submit(sleep_then_return, 1, 5.0)
            started = time.perf_counter()
            doomed = ex.submit(kill_own_process)
            exc = doomed.exception(timeout=RESULT_TIMEOUT_S)
            assert isinstance(exc, WorkerCrashed)
            assert "killed by SIGKILL" in str(exc)
            # the other worker's task is failed too, without waiting for it (its result may be lost)
            assert isinstance(slow.exception(timeout=RESULT_TIMEOUT_S), WorkerCrashed)
            assert time.perf_counter() - started < 4.0
            # the pool lost work: it refuses more
            ex.submit(square, 2)


def test_pool_shutdown_refuses_new_work_and_stops_workers():
    ex = ProcessExecutor(2)
    pids = ex.pids
    assert len(pids) == 2 and os.getpid() not in pids
    assert ex.submit(square, 3).result(timeout=RESULT_TIMEOUT_S) == 9
    ex.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        ex.submit(square, 3)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_describe_exit():
    assert describe_exit(-signal.SIGKILL).startswith("killed by SIGKILL")
    assert describe_exit(3) == "exit code 3"


# --- bad parameters --------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "kind, workers, cluster, message",
    [
        ("threads", None, None, "unknown executor 'threads'"),
        ("process", 0, None, "at least 1, got 0"),
        ("dask", -2, "local", "at least 1, got -2"),
        ("process", 2, "local", "for the dask executor"),
    ],
)
def test_make_executor_refuses_bad_parameters(kind, workers, cluster, message):
    with pytest.raises(ExecutorError, match=message):
        with make_executor(kind, workers=workers, cluster=cluster):
            pass


def test_unreachable_dask_scheduler_is_a_clear_error_at_once():
    address = f"tcp://127.0.0.1:{_closed_port()}"
    started = time.perf_counter()
    with pytest.raises(ExecutorError, match="cannot connect to the Dask scheduler at 'tcp://127.0.0.1:"):
        with make_executor("dask", cluster=address):
            pass
    assert time.perf_counter() - started < 5.0


# --- the node: a crash commits nothing ----------------------------------------------------------------


def _split_setup(workload):
    n_setup = workload.summary["setup"]
    return workload.transactions[:n_setup], workload.transactions[n_setup:]


@pytest.fixture(scope="module")
def grouped_workload(workload_factory):
    """A batch that splits into several conflict groups, so that 2 partitions both have work."""
    from rollup.planner import plan_batch

    workload = workload_factory(accounts=300, txs=200, seed=5, contention=0.1, invalid_share=0.05)
    assert all(plan_batch(_split_setup(workload)[1], 2).partitions)
    return workload


@pytest.mark.parametrize("target", ["check_packed_signature_chunk", "execute_partition"], ids=["signatures", "execution"])
def test_worker_crash_during_submit_commits_nothing(grouped_workload, node_factory, target):
    setup, batch = _split_setup(grouped_workload)
    node = node_factory(grouped_workload.genesis)
    committed_root = node.submit(setup, max_batch_txs=None).batch.new_root
    with ProcessExecutor(2) as pool:
        killing = KillingExecutor(pool, target)
        with pytest.raises(NodeError, match=r"batch not committed: .*WorkerCrashed: worker process \d+ died \(killed by SIGKILL"):
            node.submit(batch, ExecutionOptions(mode="partitioned", executor=killing, partitions=2), max_batch_txs=None).batch
        assert killing.killed
    # nothing committed, memory back at the last batch
    assert node.batch_number == 1
    assert node.root == committed_root
    reopened = Node.open(node.home)
    try:
        assert reopened.batch_number == 1 and reopened.root == committed_root
    finally:
        reopened.close()
    # the node still works, and gives the root an untroubled node gives
    reference = node_factory(grouped_workload.genesis, name="reference")
    reference.submit(setup, max_batch_txs=None).batch
    with make_executor("process", workers=2) as pool:
        assert node.submit(batch, ExecutionOptions(mode="partitioned", executor=pool, partitions=2), max_batch_txs=None).batch.new_root == reference.submit(batch, max_batch_txs=None).batch.new_root


def test_pipelined_worker_crash_commits_nothing(grouped_workload, node_factory):
    setup, batch = _split_setup(grouped_workload)
    node = node_factory(grouped_workload.genesis)
    committed_root = node.submit(setup, max_batch_txs=None).batch.new_root
    committed_state = node.state.copy()
    with ProcessExecutor(2) as pool:
        killing = KillingExecutor(pool, "check_packed_signature_chunk")
        with pytest.raises(NodeError, match=r"batch not committed: the signature checks failed in a worker: WorkerCrashed"):
            node.submit(batch, ExecutionOptions(mode="pipelined", executor=killing), max_batch_txs=None).batch
    assert node.batch_number == 1 and node.root == committed_root and node.state == committed_state


def test_task_error_during_submit_commits_nothing(grouped_workload, node_factory):
    setup, batch = _split_setup(grouped_workload)
    node = node_factory(grouped_workload.genesis)
    committed_root = node.submit(setup, max_batch_txs=None).batch.new_root

    class FailingExecutor(SerialExecutor):
        def submit(self, fn, /, *args, **kwargs):
            return super().submit(fail_with, "worker ran out of disk")

    with pytest.raises(NodeError, match="batch not committed: .*ValueError: worker ran out of disk"):
        node.submit(batch, ExecutionOptions(mode="partitioned", executor=FailingExecutor(), partitions=2), max_batch_txs=None).batch
    assert node.batch_number == 1 and node.root == committed_root


# --- the CLI: rollup submit --executor --workers --cluster ------------------------------------------


def _cli(*args: str, code: int = 0):
    from typer.testing import CliRunner

    from rollup.cli.main import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def cli_files(tmp_path, small_workload_files):
    txs, genesis = small_workload_files
    return str(txs), str(genesis), tmp_path


def test_cli_submit_gives_the_same_batch_on_every_executor(cli_files):
    txs, genesis, folder = cli_files
    outputs = {}
    for args in (
        ["--executor", "serial"],
        ["--executor", "serial", "--workers", "3"],
        ["--executor", "process", "--workers", "2"],
        ["--executor", "process", "--workers", "2", "--mode", "partitioned", "--window", "50"],
        ["--executor", "process", "--workers", "2", "--mode", "sharded", "--window", "50"],
        ["--mode", "sequential"],
        [],
    ):
        home = str(folder / ("home" + "".join(args)))
        _cli("init", "--home", home, "--genesis", genesis, "--json")
        outputs[" ".join(args) or "default"] = json.loads(_cli("submit", txs, "--home", home, "--json", *args).output)
    roots = {name: out["new_root"] for name, out in outputs.items()}
    assert len(set(roots.values())) == 1, roots
    assert outputs["--executor process --workers 2"]["executor"] == {"kind": "process", "workers": 2, "cluster": None, "mode": "pipelined"}
    assert outputs["--mode sequential"]["executor"]["mode"] == outputs["--executor serial"]["executor"]["mode"] == "sequential"
    assert outputs["default"]["executor"]["kind"] == "process"
    assert outputs["default"]["executor"]["workers"] == os.cpu_count()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workers", "0"], "--workers must be at least 1, got 0"),
        (["--executor", "threads"], "unknown executor 'threads'; choose one of: serial, process, dask"),
        (["--executor", "process", "--cluster", "local"], "--cluster is for --executor dask"),
        (["--mode", "fast"], "unknown --mode 'fast'; choose one of: sequential, partitioned, pipelined, sharded"),
        (["--mode", "sequential", "--workers", "2"], "--mode sequential runs in this process: no --executor, --workers or --cluster"),
        (["--cluster", "tcp://127.0.0.1:{port}"], "cannot connect to the Dask scheduler at 'tcp://127.0.0.1:"),
    ],
)
def test_cli_submit_refuses_bad_executor_options(cli_files, args, message):
    txs, genesis, folder = cli_files
    home = str(folder / "home")
    _cli("init", "--home", home, "--genesis", genesis, "--json")
    args = [a.format(port=_closed_port()) for a in args]
    result = _cli("submit", txs, "--home", home, *args, code=1)
    assert message in " ".join(result.output.split())
    assert json.loads(_cli("status", "--home", home, "--json").output)["batch"] == 0
