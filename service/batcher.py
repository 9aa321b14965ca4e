"""The batcher: rollup transactions from the pending queue into the node's batches, on a clock and
on size, then proven and settled on the embedded L1 in the background, with every step visible.

- The queue is the journal's `pending` table (service/journal.py): a transaction is committed
  there before its sender is answered (POST /transactions), with its order book command (a fill),
  or by the oracle clock. Nothing is lost on `kill -9`.
- The node (rollup/node.py) belongs to one thread (`NodeWorker`): `Node.submit` runs there, so
  the event loop keeps answering while a batch executes; it cuts batches within the node's bound
  (never a batch that cannot settle) and commits each atomically.
- Exactly once: after the node commits, the pending rows are marked with their batch in one
  SQLite transaction. A crash between the two leaves rows unmarked whose bodies are in committed
  batches: `recover` (on start) matches them, in order, to the node's batches the journal has not
  recorded, so they are never batched twice; the rest are batched again.
- `Prover`: a thread that takes executed batches in order, proves them (circuit v3, segments on
  worker processes: `prover.pipeline.prove_batches`), publishes and settles them on the embedded
  L1 (py-evm, HOME/l1/chain, deployed on first use as `rollup l1 deploy`), and reports each step
  to the event loop, which records it and streams it on /ws/batches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter

from rollup.node import Node, Submission
from rollup.storage import _crash_point
from service.journal import BatchView, Journal, PendingRow
from service.sequencer import publish
from verifier.wire import Transaction

log = logging.getLogger("rollup.service")
TRANSACTION = TypeAdapter(Transaction)
T = TypeVar("T")

EXECUTED, PROVING, PROVEN, SETTLED, FAILED = "executed", "proving", "proven", "settled", "failed"
UNFINISHED = (EXECUTED, PROVING, PROVEN)  # states the prover resumes after a restart
PROVER_STOP_SECONDS = 2.0  # how long shutting down waits for the prover's current step
NO_BATCH = 0  # pending.batch of a transaction whose part committed no batch (nothing in it was accepted)


@dataclass(frozen=True)
class BatchOptions:
    """When to cut a batch and what to do with it (the `rollup serve` options)."""

    batch_size: int = 16  # cut when this many transactions are pending ...
    batch_seconds: float = 2.0  # ... or when the oldest has waited this long
    prove: bool = False  # prove and settle every batch in the background
    proof_slots: int = 1  # slots per proven segment (the circuit's size)
    proof_workers: int = 1  # worker processes proving segments
    oracle_seconds: float | None = None  # sign an oracle update from the embedded feed this often
    liquidator: int | None = None  # an account whose development key liquidates breached accounts

    def check(self) -> None:
        # each bound is a positive number (a caller bug otherwise: the CLI checks first)
        if self.batch_size < 1 or self.batch_seconds <= 0 or self.proof_slots < 1 or self.proof_workers < 1:
            raise ValueError(f"invalid batch options {self}")
        if self.oracle_seconds is not None and self.oracle_seconds <= 0:
            raise ValueError(f"invalid oracle period {self.oracle_seconds}")


class NodeWorker:
    """The node, opened and used on one thread of its own: SQLite connections belong to their
    thread, and a batch executing there does not hold up the event loop."""

    def __init__(self, home: Path):
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollup-node")
        try:
            self.node: Node = self.call(Node.open, home)
        except BaseException:
            self.executor.shutdown()
            raise

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn on the node's thread and wait (for start-up and shutdown)."""
        return self.executor.submit(fn, *args).result()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn on the node's thread without blocking the event loop."""
        return await asyncio.wrap_future(self.executor.submit(fn, *args))

    def close(self) -> None:
        try:
            self.call(self.node.close)
        finally:
            self.executor.shutdown()


def map_receipts_to_batches(submission: Submission) -> list[int]:
    """The batch number of every submitted transaction (NO_BATCH for a part that committed none):
    the node cuts the submission into consecutive parts, each a batch or wholly `unbatched`."""
    unbatched = {r.index for r in submission.unbatched}
    out: list[int] = []
    batches = iter(submission.batches)
    while len(out) < len(submission.receipts):
        if len(out) in unbatched:
            out.append(NO_BATCH)
            continue
        batch = next(batches)
        out += [batch.number] * len(batch.receipts)
    return out


def to_hex(root: bytes) -> str:
    return "0x" + root.hex()


def batch_event(view: BatchView, sequence: int) -> dict[str, Any]:
    return {"type": "batch", "sequence": sequence, "prev_sequence": sequence - 1, **view.to_json()}


class Batcher:
    """Cuts batches from the pending queue (on the event loop), records them, hands them to the
    prover, and publishes batch transitions and oracle marks to the streams."""

    def __init__(self, journal: Journal, worker: NodeWorker, options: BatchOptions):
        options.check()
        self.journal = journal
        self.worker = worker
        self.options = options
        self.wake: asyncio.Event | None = None
        self.oldest: float | None = None  # monotonic time the oldest pending transaction was noticed
        self.failed: str | None = None  # the node refused a batch for a reason other than its transactions: batching stopped
        self.batch_streams: set[asyncio.Queue] = set()
        self.batch_sequence = 0
        self.marks_streams: set[asyncio.Queue] = set()
        self.marks_sequence = 0
        self.prover: Prover | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task | None = None
        self.executor_context: Any = None
        self.batches_cut = 0
        self.liquidations: Any = None  # exchange.liquidation.LiquidationEngine, or None: no liquidator
        self.liquidations_queued = 0

    # --- start and stop ----------------------------------------------------------------------------

    def recover(self) -> int:
        """Record the node's batches the journal does not know (a crash after the node's commit):
        their transactions leave the pending queue, matched in order by body. Returns how many
        pending transactions were found already batched."""
        node = self.worker.node
        store = node.store
        recorded = self.journal.get_last_batch()
        latest = self.worker.call(lambda: node.batch_number)
        found = 0
        for number in range(recorded + 1, latest + 1):
            row, bodies, receipts = self.worker.call(lambda n=number: (store.get_batch(n), store.get_transactions(n), store.get_receipts(n)))
            waiting: dict[str, list[int]] = {}
            for pending in self.journal.get_open_pending(len(bodies) + 1_000_000):
                waiting.setdefault(pending.body, []).append(pending.id)
            outcomes = []
            for body, receipt_json in zip(bodies, receipts):
                ids = waiting.get(body)
                if ids:  # else: a transaction submitted to the node some other way (`rollup submit`)
                    receipt = json.loads(receipt_json)
                    outcomes.append((ids.pop(0), number, receipt["status"], receipt.get("reason") or ""))
            now = int(time.time() * 1000)
            view = BatchView(number, EXECUTED, "", row.n_tx, row.n_accepted, to_hex(row.prev_root), to_hex(row.new_root),
                             json.dumps({"recovered": True}), now, now)
            self.journal.record_batches(outcomes, [view])
            found += len(outcomes)
        return found

    def start(self) -> None:
        """Start cutting batches (and proving them) on the running event loop."""
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        if self.journal.count_open_pending()[0]:
            self.oldest = time.monotonic()
        if self.options.prove:
            from rollup.executors import make_executor

            # the proving processes are forked now, while the server has no socket yet: a worker
            # forked later would inherit the clients' sockets and keep them open after they close
            self.executor_context = make_executor("process", workers=self.options.proof_workers)
            executor = self.executor_context.__enter__()
            self.prover = Prover(self.worker.node.home, self.options, self._report_threadsafe, executor)
            for view in self.journal.get_batches(states=UNFINISHED):
                self.prover.submit(view.number)
            self.prover.start()
        self.task = asyncio.create_task(self.run(), name="batcher")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
        if self.prover is not None:
            # a proof in progress is abandoned, not waited for: its batch stays `proving` in the
            # journal and is proven again on the next start
            await asyncio.to_thread(self.prover.stop, PROVER_STOP_SECONDS)
            if self.prover.is_alive():
                self.prover.executor.shutdown(wait=True, cancel_futures=True)
                await asyncio.to_thread(self.prover.join, PROVER_STOP_SECONDS)
            else:
                self.executor_context.__exit__(None, None, None)

    # --- the queue ---------------------------------------------------------------------------------

    def notify(self, ids: Sequence[int]) -> None:
        """New pending transactions (called on the event loop's thread)."""
        if ids and self.oldest is None:
            self.oldest = time.monotonic()
        if self.wake is not None:
            self.wake.set()

    def add(self, source: str, transaction: Any) -> PendingRow:
        """Queue one rollup transaction durably; its row (committed before this returns)."""
        received_ms = int(time.time() * 1000)
        body = transaction.model_dump_json()
        pending_id = self.journal.add_pending(source, received_ms, body)
        self.notify([pending_id])
        return PendingRow(pending_id, source, received_ms, body, None, None, None)

    async def run(self) -> None:
        """Cut a batch when batch_size transactions are pending or the oldest waited batch_seconds."""
        wake = self.wake = self.wake or asyncio.Event()
        while True:
            n, _ = self.journal.count_open_pending()
            if n == 0 or self.failed is not None:
                self.oldest = None
                wake.clear()
                await wake.wait()
                continue
            if self.oldest is None:
                self.oldest = time.monotonic()
            wait = self.oldest + self.options.batch_seconds - time.monotonic()
            if n >= self.options.batch_size or wait <= 0:
                try:
                    await self.cut_batch()
                except Exception as exc:  # noqa: BLE001 - the node failed, not a transaction: stop and say why
                    self.failed = f"{type(exc).__name__}: {exc}"
                    log.error("batching stopped: %s", self.failed)
                continue
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    async def cut_batch(self) -> list[BatchView]:
        """Submit the oldest pending transactions (at most batch_size) to the node; record the
        batches it committed and every transaction's receipt."""
        rows = self.journal.get_open_pending(self.options.batch_size)
        if not rows:
            return []
        transactions = [TRANSACTION.validate_json(r.body) for r in rows]
        node = self.worker.node
        submission = await self.worker.run(node.submit, transactions)
        _crash_point("service_batch_committed")  # tests: a kill -9 between the node's commit and the journal's
        numbers = map_receipts_to_batches(submission)
        outcomes = [(row.id, number, r.status, r.reason or "") for row, number, r in zip(rows, numbers, submission.receipts)]
        now = int(time.time() * 1000)
        views = []
        for batch in submission.batches:
            ids = [row.id for row, number in zip(rows, numbers) if number == batch.number]
            info = {"pending_ids": [ids[0], ids[-1]], "timings_s": {k: round(v, 4) for k, v in batch.timings.items()}}
            views.append(BatchView(batch.number, EXECUTED, "", len(batch.receipts), batch.n_accepted, to_hex(batch.prev_root),
                                   to_hex(batch.new_root), json.dumps(info), now, now))
        self.journal.record_batches(outcomes, views)
        self.batches_cut += len(views)
        self.oldest = time.monotonic() if len(rows) == self.options.batch_size else None
        for view in views:
            self._publish_batch(view)
            if self.prover is not None:
                self.prover.submit(view.number)
        accepted_oracle = any(t.type == "oracle_update" and r.status == "accepted" for t, r in zip(transactions, submission.receipts))
        if accepted_oracle:
            self.publish_marks(await self.worker.run(get_marks, node))
        if self.liquidations is not None and submission.batches:
            await self.queue_liquidations(submission)
        return views

    async def queue_liquidations(self, submission: Any) -> None:
        """The liquidation engine after these batches (exchange/liquidation.py: only the accounts
        the batches touched, and the holders of instruments the oracle moved, are re-checked):
        its signed Liquidate transactions join the queue like any other (source `liquidation`),
        unless some are still pending (planned on a state they have not changed yet)."""
        from exchange.liquidation import build_liquidations, get_touched_accounts

        engine = self.liquidations
        touched = {a for batch in submission.batches for a in get_touched_accounts(batch.diff_rows)}
        node = self.worker.node
        await self.worker.run(engine.monitor.apply_state_changes, node.state, touched)
        if self.journal.count_open_pending("liquidation")[0]:
            return
        breached = set(engine.monitor.breached) - {engine.liquidator}
        if not breached:
            return
        plan = await self.worker.run(build_liquidations, node.state, breached, engine.liquidator, engine.key)
        now = int(time.time() * 1000)
        for tx in plan.transactions:
            self.journal.add_pending("liquidation", now, tx.model_dump_json())
        self.liquidations_queued += len(plan.transactions)
        if plan.transactions:
            self.notify(list(range(len(plan.transactions))))

    # --- progress ----------------------------------------------------------------------------------

    def _report_threadsafe(self, number: int, state: str, reason: str, info: dict[str, Any]) -> None:
        """The prover's thread reports here; the journal and the streams are the event loop's."""
        if self.loop is None:
            raise RuntimeError("the batcher reports progress once started")
        self.loop.call_soon_threadsafe(self.on_progress, number, state, reason, info)

    def on_progress(self, number: int, state: str, reason: str, info: dict[str, Any]) -> None:
        view = self.journal.get_batch(number)
        if view is None:
            return
        merged = {**json.loads(view.info), **info}
        self._publish_batch(self.journal.update_batch(number, state, reason, merged, int(time.time() * 1000)))

    def _publish_batch(self, view: BatchView) -> None:
        self.batch_sequence += 1
        publish(self.batch_streams, batch_event(view, self.batch_sequence))

    def publish_marks(self, marks: dict[str, Any]) -> None:
        self.marks_sequence += 1
        publish(self.marks_streams, {**marks, "type": "marks", "sequence": self.marks_sequence, "prev_sequence": self.marks_sequence - 1})

    def get_status(self) -> dict[str, Any]:
        pending, _ = self.journal.count_open_pending()
        prover = self.prover
        return {
            "pending": pending,
            "batch_size": self.options.batch_size,
            "batch_seconds": self.options.batch_seconds,
            "batches_cut": self.batches_cut,
            "batching": self.failed is None,
            "failed": self.failed,
            "prove": self.options.prove,
            "proof_slots": self.options.proof_slots if self.options.prove else None,
            "prover": None if prover is None else {"state": prover.state, "error": prover.error, "queued": prover.queue.qsize()},
            "oracle_seconds": self.options.oracle_seconds,
            "liquidator": None if self.liquidations is None else {
                "account": self.liquidations.liquidator, "breached": len(self.liquidations.monitor.breached),
                "liquidations_queued": self.liquidations_queued,
            },
        }


def get_marks(node: Node) -> dict[str, Any]:
    """The oracle's marks and funding indices as the node's state holds them (run on the node's thread)."""
    state = node.state
    return {
        "oracle_time": state.globals.oracle_time,
        "marks": [
            {"instrument": i, "name": inst.spec.name, "mark": inst.mark, "funding_index": inst.funding_index if inst.is_perp else None,
             "settlement": inst.settlement}
            for i, inst in sorted(state.instruments.items())
        ],
    }


class Prover(threading.Thread):
    """Proves, publishes and settles the node's batches in order, on a thread of its own (with its
    own connection to the node's database and its own L1 handle); segments are proven on worker
    processes, so this thread mostly waits. `report(batch, state, reason, info)` is told each step."""

    def __init__(self, home: Path, options: BatchOptions, report: Callable[[int, str, str, dict[str, Any]], None], executor: Any):
        super().__init__(name="rollup-prover", daemon=True)
        self.home = home
        self.executor = executor
        self.options = options
        self.report = report
        self.queue: queue.Queue[int | None] = queue.Queue()
        self.state = "starting"
        self.error: str | None = None
        self.blocked: int | None = None  # a batch that failed: later ones cannot settle before it
        self.stopping = False  # the service is shutting down: a step cut short is not a failure
        self.settling = False  # an L1 settlement is under way
        self.lock = threading.Lock()  # `stopping` and `settling` change together

    def submit(self, number: int) -> None:
        self.queue.put(number)

    def stop(self, timeout: float) -> None:
        """Let the current step end within `timeout` seconds; a settlement under way is always
        waited for (an L1 transaction and the chain's save are not cut in the middle)."""
        with self.lock:
            self.stopping = True
        self.queue.put(None)
        self.join(timeout=timeout)
        while self.settling and self.is_alive():
            self.join(timeout=0.1)

    def run(self) -> None:
        from contracts.chain import L1
        from contracts.deployment import open_contracts
        from prover.pipeline import run_setup
        from rollup.cli.l1 import deploy_for_node, get_deployment_path, load_deployment
        from rollup.publish import get_genesis
        from rollup.storage import Store

        store = l1 = None
        try:
            self.state = "setting up"
            store = Store.open(self.home)
            run_setup(self.home, store, self.options.proof_slots)
            l1 = L1.open(self.home / "l1" / "chain")
            deployment = load_deployment(self.home, l1) if get_deployment_path(self.home, l1).exists() else deploy_for_node(l1, self.home, store)
            l1.save()
            contracts = open_contracts(l1, deployment, get_genesis(store))
        except Exception as exc:  # noqa: BLE001 - every batch fails with the reason
            self.error = f"cannot prove or settle: {type(exc).__name__}: {exc}"
            self.state = "failed"
            log.error("%s", self.error)
            if store is not None:
                store.close()
            self._fail_all()
            return
        try:
            self.state = "ready"
            while (number := self.queue.get()) is not None:
                self._process(number, store, self.executor, l1, contracts)
        finally:
            store.close()

    def _fail_all(self) -> None:
        while (number := self.queue.get()) is not None:
            self.report(number, FAILED, self.error or "", {})

    def _process(self, number: int, store: Any, executor: Any, l1: Any, contracts: Any) -> None:
        from contracts.transition_client import settle
        from prover.pipeline import prove_batches
        from rollup.publish import build_published

        # batches settle in order: one that failed holds back every later one
        if self.blocked is not None:
            self.report(number, FAILED, f"batch {self.blocked} before it did not settle", {})
            return
        try:
            settled = contracts.rollup.functions.batch_number().call()
            if number <= settled:  # settled before a restart, recorded only now
                self.report(number, SETTLED, "", {"settled_before_restart": True})
                return
            self.state = f"proving batch {number}"
            self.report(number, PROVING, "", {})
            t0 = time.perf_counter()
            report = prove_batches(self.home, store, executor, batches=[number])
            segments = report.batches.get(number, {}).get("segments")
            self.report(number, PROVEN, "", {"segments": segments, "slots": self.options.proof_slots, "prove_s": round(time.perf_counter() - t0, 3)})
            self.state = f"settling batch {number}"
            t1 = time.perf_counter()
            published = build_published(self.home, store, number)
            with self.lock:
                # a settlement starts only while the service is not stopping
                if self.stopping:
                    return
                self.settling = True
            try:
                result = settle(l1, contracts, published.batch, published.proofs)
            finally:
                l1.save()
                self.settling = False
            self.report(number, SETTLED, "", {
                "gas_used": result.gas_used, "calldata_bytes": result.calldata_bytes, "settle_s": round(time.perf_counter() - t1, 3),
                "l1_block": l1.block_number,
            })
        except Exception as exc:  # noqa: BLE001 - the batch fails with the reason; later ones wait behind it
            if self.stopping:
                return
            self.blocked = number
            self.report(number, FAILED, f"{type(exc).__name__}: {exc}", {})
        finally:
            self.state = "ready"
