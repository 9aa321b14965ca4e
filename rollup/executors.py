"""Where batch work runs: one `concurrent.futures.Executor` interface, three backends.

- `SerialExecutor` runs every task inline, in the caller: the reference the others must match.
- `ProcessExecutor` runs tasks in a pool of local processes (the `multiprocess` package, which
  pickles with dill). Its pool has no `Executor` of its own, so this class is one: `submit` wraps
  `Pool.apply_async` in a `Future`. A plain pool waits forever for the task of a worker that was
  killed (SIGKILL, the out-of-memory killer); here a watchdog thread sees the worker exit and fails
  every pending future with `WorkerCrashed`, like the standard library's `BrokenProcessPool`.
- `DaskExecutor` runs tasks on a Dask cluster (`Client(address).get_executor(pure=False)`: without
  `pure=False` identical calls would return cached results), or on a `LocalCluster` of worker
  processes for `cluster="local"`. Dask re-runs the task of a killed worker on another one; a task
  that kills its worker on every try ends as `WorkerCrashed` too.

Every backend has `workers`: how many tasks it runs at once (callers size their chunks and
partitions by it). `make_executor(kind, workers, cluster)` opens one as a context manager.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any

EXECUTOR_KINDS = ("serial", "process", "dask")
DEFAULT_KIND = "process"
LOCAL_CLUSTER = "local"
WATCHDOG_INTERVAL_S = 0.05  # how soon a dead pool worker is noticed
DASK_CONNECT_TIMEOUT_S = 10
PROBE_TIMEOUT_S = 3
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Pool workers run a little below the coordinator's priority: when a machine has as many workers
# as cores, the coordinator (pipelined execution, the partition it runs, the merge and the
# commit: the serial path of a batch) otherwise waits for a core behind background signature
# recovery. Measured on 2 cores, pipelined 50k batch: 2.97 s at 0, 2.89 s at 3, 2.87 s at 10;
# kept mild so that workers are not starved by other processes on a shared machine.
WORKER_NICENESS = 3


class ExecutorError(Exception):
    """An execution backend cannot be started or reached."""


class WorkerCrashed(ExecutorError):
    """A worker process died while tasks were running: their results are lost."""


def get_default_workers() -> int:
    """One worker per core of this machine."""
    return os.cpu_count() or 1


def get_executor_workers(executor: Executor) -> int:
    """How many tasks `executor` runs at once (1 if it does not say)."""
    workers = getattr(executor, "workers", None) or getattr(executor, "_max_workers", None)
    return max(1, int(workers or 1))


def describe_exit(exitcode: int | None) -> str:
    """'killed by SIGKILL' / 'exit code 3' for a process's exit code."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the out-of-memory killer sends it too)" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {exitcode}"


# --- serial ----------------------------------------------------------------------------------------


class SerialExecutor(Executor):
    """Runs each task inline when it is submitted; the returned future is already done."""

    workers = 1

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        # the same contract as the other backends
        if self._shutdown:
            raise RuntimeError("cannot submit to an executor that was shut down")
        future: Future = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future, as a pool would
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True


# --- local processes -------------------------------------------------------------------------------


def _initialise_pool_worker(parent_pid: int, niceness: int = 0) -> None:
    """Runs in each new pool worker: lower its priority by `niceness` (WORKER_NICENESS says why)
    and die with the parent (Linux), so a parent killed with SIGKILL leaves no orphan workers
    behind."""
    if niceness:
        os.nice(niceness)
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    try:
        ctypes.CDLL(libc_name, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    # the parent may have died before prctl took effect
    if os.getppid() != parent_pid:
        os._exit(1)


class ProcessExecutor(Executor):
    """A `multiprocess` pool of `workers` processes as a `concurrent.futures.Executor`.

    Created with the platform's default start method (fork on Linux): create it before loading a
    large state, so the workers do not share (and, as Python touches reference counts, copy) it.
    """

    def __init__(self, workers: int | None = None, niceness: int = WORKER_NICENESS):
        from multiprocess import Pool

        workers = get_default_workers() if workers is None else workers
        # a pool needs at least one process
        if workers < 1:
            raise ExecutorError(f"a process pool needs at least 1 worker, got {workers}")
        self.workers = workers
        self._lock = threading.Lock()
        self._pending: set[Future] = set()
        self._broken: str | None = None
        self._closing = threading.Event()
        # a priority a process may lower itself to
        if not 0 <= niceness <= 19:
            raise ExecutorError(f"worker niceness must be in 0..19, got {niceness}")
        self._pool = Pool(workers, initializer=_initialise_pool_worker, initargs=(os.getpid(), niceness))
        self._known = list(self._pool._pool)  # every worker process ever seen (replacements too)
        self._watchdog = threading.Thread(target=self._watch_workers, name="process-executor-watchdog", daemon=True)
        self._watchdog.start()

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [p.pid for p in self._pool._pool if p.exitcode is None]

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            # a pool that lost a worker has lost tasks: refuse more work, as BrokenProcessPool does
            if self._broken is not None:
                raise WorkerCrashed(self._broken)
            # no work after shutdown
            if self._closing.is_set():
                raise RuntimeError("cannot submit to an executor that was shut down")
            future.set_running_or_notify_cancel()
            self._pending.add(future)
        try:
            self._pool.apply_async(
                fn,
                args,
                kwargs,
                callback=lambda result: self._settle(future, result, None),
                error_callback=lambda exc: self._settle(future, None, exc),
            )
        except ValueError:  # "Pool not running": the watchdog terminated it meanwhile
            self._settle(future, None, WorkerCrashed(self._broken or "the process pool is not running"))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._closing.is_set():
            return
        self._closing.set()  # workers exiting from here on are not crashes
        if self._broken is not None or cancel_futures:
            self._pool.terminate()
            self._fail_pending(RuntimeError("the executor was shut down before this task finished"))
        else:
            self._pool.close()
        if wait:
            self._pool.join()
            self._watchdog.join()

    def _settle(self, future: Future, result: Any, exc: BaseException | None) -> None:
        """Called by the pool's result thread."""
        with self._lock:
            # the watchdog may already have failed it
            if future not in self._pending:
                return
            self._pending.discard(future)
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)

    def _fail_pending(self, exc: BaseException) -> None:
        with self._lock:
            pending, self._pending = self._pending, set()
        for future in pending:
            future.set_exception(exc)

    def _watch_workers(self) -> None:
        from multiprocess.connection import wait

        while not self._closing.is_set():
            self._known.extend(p for p in list(self._pool._pool) if p not in self._known)
            dead = [p for p in self._known if p.exitcode is not None]
            if dead and not self._closing.is_set():
                self._break(dead[0].pid, dead[0].exitcode)
                return
            wait([p.sentinel for p in self._known], timeout=WATCHDOG_INTERVAL_S)

    def _break(self, pid: int, exitcode: int | None) -> None:
        message = (
            f"worker process {pid} died ({describe_exit(exitcode)}) while the pool was running tasks; "
            "their results are lost"
        )
        with self._lock:
            self._broken = message
        self._fail_pending(WorkerCrashed(message))
        self._pool.terminate()


# --- Dask ------------------------------------------------------------------------------------------


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: `cluster` is a scheduler address (tcp://host:8786) or "local" for a
    `LocalCluster` of `workers` single-threaded worker processes started here (and stopped on
    shutdown). The project must be importable on every worker."""

    def __init__(self, cluster: str = LOCAL_CLUSTER, workers: int | None = None):
        from distributed import Client, LocalCluster

        # a cluster needs at least one worker
        if workers is not None and workers < 1:
            raise ExecutorError(f"a Dask cluster needs at least 1 worker, got {workers}")
        self._cluster = None
        if cluster == LOCAL_CLUSTER:
            n = get_default_workers() if workers is None else workers
            try:
                self._cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # any free port: 8787 may be another cluster's
                    silence_logs=logging.CRITICAL,
                )
            except (OSError, RuntimeError, TimeoutError) as exc:
                raise ExecutorError(f"cannot start a local Dask cluster of {n} workers: {exc}") from None
            self.client = Client(self._cluster)
        else:
            self.client = connect_to_scheduler(cluster)
        self.address = self.client.scheduler.address
        cluster_threads = sum(self.client.nthreads().values())
        self.workers = workers if workers is not None else cluster_threads
        self._inner = self.client.get_executor(pure=False)

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (they change when the nanny restarts a killed one)."""
        return list(self.client.run(os.getpid).values())

    def broadcast(self, value: Any) -> Any:
        """Send `value` to every worker now, once; a task given the returned handle receives the
        value itself from its worker's memory (no copy per task)."""
        return self.client.scatter(value, broadcast=True, hash=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        outer: Future = Future()
        outer.set_running_or_notify_cancel()
        inner = self._inner.submit(fn, *args, **kwargs)
        inner.add_done_callback(lambda done: _copy_outcome(done, outer))
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait and not cancel_futures)
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def connect_to_scheduler(address: str):  # -> distributed.Client
    """A client of the scheduler at `address` with at least one worker, or ExecutorError."""
    from distributed import Client

    check_reachable(address)
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ExecutorError(
            f"cannot connect to the Dask scheduler at {address!r}: {exc} "
            "(start one with `dask scheduler` and `dask worker ADDRESS`, or use --cluster local)"
        ) from None
    try:
        client.wait_for_workers(1, timeout=DASK_CONNECT_TIMEOUT_S)
    except TimeoutError:
        client.close()
        raise ExecutorError(f"the Dask scheduler at {address} has no workers (start some with `dask worker {address}`)") from None
    return client


def check_reachable(address: str) -> None:
    """Fail at once on a refused TCP connection (Dask itself retries until its timeout)."""
    scheme, sep, rest = address.rpartition("://")
    host, _, port = rest.rpartition(":")
    # only plain tcp://host:port addresses can be probed
    if scheme not in ("tcp", "") or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise ExecutorError(
            f"cannot connect to the Dask scheduler at {address!r}: {exc.strerror or exc} "
            "(start one with `dask scheduler` and `dask worker ADDRESS`, or use --cluster local)"
        ) from None


def _copy_outcome(inner: Future, outer: Future) -> None:
    """Dask's `KilledWorker` (the task's worker died on every try) becomes `WorkerCrashed`."""
    from distributed import KilledWorker

    exc = inner.exception()
    if exc is None:
        outer.set_result(inner.result())
    elif isinstance(exc, KilledWorker):
        outer.set_exception(WorkerCrashed(f"a Dask worker died on every try of a task ({exc}); its result is lost"))
    else:
        outer.set_exception(exc)


# --- choosing one ----------------------------------------------------------------------------------


@contextmanager
def make_executor(kind: str = DEFAULT_KIND, workers: int | None = None, cluster: str | None = None) -> Iterator[Executor]:
    """Open an executor of `kind` ("serial", "process", "dask"), shut it down on exit.

    `workers` defaults to the machine's cores (process, local Dask cluster) or the cluster's
    worker threads (a Dask address). `cluster` is for Dask only; it defaults to "local".
    """
    # a known backend
    if kind not in EXECUTOR_KINDS:
        raise ExecutorError(f"unknown executor {kind!r}; choose one of: {', '.join(EXECUTOR_KINDS)}")
    # a worker count is positive
    if workers is not None and workers < 1:
        raise ExecutorError(f"the number of workers must be at least 1, got {workers}")
    # only Dask has clusters
    if cluster is not None and kind != "dask":
        raise ExecutorError(f"a cluster address is for the dask executor, not {kind!r}")
    if kind == "serial":
        executor: Executor = SerialExecutor()
    elif kind == "process":
        executor = ProcessExecutor(workers)
    else:
        executor = DaskExecutor(cluster or LOCAL_CLUSTER, workers)
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
