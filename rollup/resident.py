"""Resident workers: a long-lived process (or Dask actor) holding a handler object, driven by frames.

Both the resident matching engine (exchange/resident.py: books per market partition) and the
sharded node (rollup/sharded.py: account shards) keep state in workers between calls and send
them only what changes. This module is their transport:

- `ProcessLink`: a worker process with two one-way pipes (1 MiB each on Linux) and a thread in
  the coordinator that writes the frames, so the coordinator can send ahead while the worker is
  blocked writing a reply (with both pipes full, a blocking writer on each side would wait
  forever). A worker that dies is reported as `WorkerCrashed` (which worker, how it ended), never
  a hang: `receive` waits on the reply pipe and the process sentinel together.
- `DaskLink`: a Dask actor on a cluster's worker; one call at a time, answered before the next is
  sent (separate actor calls may overtake one another).

A worker is built from `factory(init)`: a top-level callable (picklable by reference: spawned
processes and Dask workers import it) and one bytes object. The handler answers `handle(frame:
bytes) -> bytes`; what the frames mean is the user's. A handler with `idle(request_waiting)` is
called after each reply, in a worker process, to work until `request_waiting()` is true.
"""

from __future__ import annotations

import pickle
import queue
import threading
from collections import deque
from multiprocessing.connection import wait
from typing import Any, Callable, Protocol

from rollup.executors import WorkerCrashed, describe_exit

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
STOP_TIMEOUT_S = 5.0
PIPE_BYTES = 1 << 20
STOP_FRAME = b"\x00stop"  # never a pickle (a pickle starts with the PROTO opcode 0x80)


class Handler(Protocol):
    def handle(self, frame: bytes) -> bytes: ...


Factory = Callable[[bytes], Handler]


def _serve(requests: Any, replies: Any, factory: Factory, init: bytes) -> None:
    """A worker process: answer frames until told to stop or the coordinator goes away."""
    handler = factory(init)
    del init
    idle = getattr(handler, "idle", None)  # work the handler does while no request waits
    while True:
        try:
            frame = requests.recv_bytes()
        except (EOFError, OSError):
            return
        if frame == STOP_FRAME:
            return
        replies.send_bytes(handler.handle(frame))
        if idle is not None:
            idle(requests.poll)


class DaskResident:
    """A Dask actor holding a handler (created with `actor=True`)."""

    def __init__(self, factory: Factory, init: bytes):
        self.handler = factory(init)

    def handle(self, frame: bytes) -> bytes:
        return self.handler.handle(frame)


def _enlarge_pipe(connection: Any) -> None:
    """A 1 MiB pipe (Linux; the default is 64 KiB): a frame crosses in a few system calls."""
    try:
        import fcntl

        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # another platform, or above the system's pipe-max-size: the default works, slower


class ProcessLink:
    """A worker process, its two one-way pipes and the coordinator's writer thread."""

    def __init__(self, context: Any, factory: Factory, init: bytes, name: str, lost: str = "its state is lost"):
        requests_in, self.requests = context.Pipe(duplex=False)
        self.replies, replies_out = context.Pipe(duplex=False)
        _enlarge_pipe(self.requests)
        _enlarge_pipe(self.replies)
        self.process = context.Process(target=_serve, args=(requests_in, replies_out, factory, init), name=name, daemon=True)
        self.process.start()
        # only the worker holds its ends: its exit closes them, which the coordinator sees
        requests_in.close()
        replies_out.close()
        self.name = name
        self.lost = lost
        self.ahead = True  # frames may be sent before the previous reply is read
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.writer = threading.Thread(target=self._write, daemon=True, name=f"{name} frames")
        self.writer.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def _write(self) -> None:
        while True:
            frame = self.outbox.get()
            if frame is None:
                return
            try:
                self.requests.send_bytes(frame)
            except OSError:
                return  # the worker is gone: `receive` reports how it ended

    def send(self, frame: bytes) -> None:
        self.outbox.put(frame)

    def receive(self) -> bytes:
        while True:
            ready = wait([self.replies, self.process.sentinel])
            if self.replies in ready:
                try:
                    return self.replies.recv_bytes()
                except (EOFError, OSError):
                    self._crashed()
            if self.process.sentinel in ready:
                self._crashed()

    def _crashed(self) -> None:
        self.process.join(STOP_TIMEOUT_S)
        raise WorkerCrashed(f"{self.name} (pid {self.process.pid}) died ({describe_exit(self.process.exitcode)}): {self.lost}")

    def stop(self) -> None:
        self.outbox.put(STOP_FRAME)
        self.outbox.put(None)
        self.writer.join(STOP_TIMEOUT_S)
        self.process.join(STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(STOP_TIMEOUT_S)
        self.requests.close()
        self.replies.close()


class DaskLink:
    """A Dask actor; one call at a time (separate calls may overtake each other)."""

    def __init__(self, client: Any, factory: Factory, init: bytes, name: str, worker: str | None = None):
        # `worker`: the address of the Dask worker to hold it (else the scheduler chooses, and
        # may put two actors on one worker)
        placement = {} if worker is None else {"workers": [worker], "allow_other_workers": False}
        self.actor = client.submit(DaskResident, factory, init, actor=True, pure=False, **placement).result()
        self.name = name
        self.ahead = False
        self.pending: deque = deque()

    @property
    def pid(self) -> int | None:
        return None

    def send(self, frame: bytes) -> None:
        self.pending.append(self.actor.handle(frame))

    def receive(self) -> bytes:
        try:
            return self.pending.popleft().result()
        except Exception as exc:  # noqa: BLE001 - a lost actor surfaces as the client's error
            raise WorkerCrashed(f"{self.name} (a Dask actor) failed: {type(exc).__name__}: {exc}") from exc

    def stop(self) -> None:
        self.pending.clear()
        self.actor = None
