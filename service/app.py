"""The service's ASGI application (FastAPI): orders in, market data and account state out.

Every handler is `async` and runs on the event loop's thread: the sequencer (service/sequencer.py)
is single-threaded by design (the order of calls is the order of commands), and a command costs
tens of microseconds to admit and match plus one SQLite commit. Errors are one JSON shape,
`{"error": {"code", "message"}}`, as the CLI's `--json` errors: clients branch on `code`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable

from fastapi import Body, FastAPI, Path as PathParam, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.orders import Cancel, CancelAll, Order, compute_order_id
from exchange.records import OrderUpdate
from rollup.node import Node
from rollup.signatures import check_signatures
from service.batcher import Batcher, BatchOptions, NodeWorker, get_marks
from service.journal import Journal, PendingRow
from service.oracle_clock import OracleClock
from exchange.pretrade import check_order_margin
from service.page import page_router
from service.sequencer import DROPPED, FillToTransaction, Sequencer, ServiceError, get_wall_clock_ms, record_to_json, trade_to_json
from service.views import AccountViewError, get_account_view
from verifier.encoding import compute_genesis_hash
from verifier.wire import Transaction

NO_FILLS_NOTE = (
    "fills are matched and published but do not become rollup transactions: this service was opened "
    "without fill_to_transaction (rollup serve passes exchange.fills.make_fill_builder); batches hold "
    "POST /transactions and oracle updates"
)
FILLS_NOTE = "every fill becomes a rollup transaction, journaled with its command and batched in order"
ORDER_ID_PATTERN = r"^0x[0-9a-fA-F]{64}$"
MAX_BODY_BYTES = 256 * 1024  # an order is under 1 KB, an oracle update of the default genesis about 20 KB


@dataclass
class Service:
    """What a running service holds: the node (on its own thread), the journal, the sequencer
    (order books) and the batcher (rollup batches, proofs, settlement)."""

    worker: NodeWorker
    journal: Journal
    sequencer: Sequencer
    batcher: Batcher
    replayed: int
    recovered: int
    oracle: OracleClock | None = None

    @property
    def node(self) -> Node:
        return self.worker.node

    def close(self) -> None:
        self.journal.close()
        self.worker.close()


def open_service(
    home: Path,
    clock: Callable[[], int] = get_wall_clock_ms,
    book: str = "fast",
    options: BatchOptions | None = None,
    fill_to_transaction: FillToTransaction | None = None,
    margin_check: bool = False,
) -> Service:
    """Open the node in `home` (on its own thread), its exchange journal, replay the journal into a
    sequencer and recover the batches a crash left unrecorded. NodeError, JournalError or
    OracleClockError if any of them cannot be opened. `fill_to_transaction` makes fills rollup
    transactions; `margin_check` refuses an order whose full fill the rules would refuse
    (`rollup serve` turns both on)."""
    options = options or BatchOptions()
    worker = NodeWorker(home)
    node = worker.node
    try:
        journal = Journal.open(home, "0x" + compute_genesis_hash(node.genesis).hex())
    except Exception:
        worker.close()
        raise

    def get_order_slot(account: int, slot: int) -> tuple[int, int] | None:
        acct = node.state.accounts.get(account)
        return None if acct is None else acct.orders.get(slot)

    def get_key_id(account: int) -> int | None:
        # a dict read: safe while the node's thread executes a batch (a batch may rotate a key: the
        # order is then checked against the key as it stood when it arrived)
        acct = node.state.accounts.get(account)
        return None if acct is None else acct.l2_key

    try:
        batcher = Batcher(journal, worker, options)
        check_order = (lambda order: check_order_margin(node.state, order)) if margin_check else None
        sequencer = Sequencer(node.genesis, journal, get_key_id, clock, book, fill_to_transaction, batcher.notify, get_order_slot, check_order)
        replayed = sequencer.replay()
        recovered = batcher.recover()
        oracle = OracleClock(node.genesis) if options.oracle_seconds is not None else None
        if options.liquidator is not None:
            batcher.liquidations = make_liquidation_engine(node, options.liquidator)
    except Exception:
        journal.close()
        worker.close()
        raise
    return Service(worker, journal, sequencer, batcher, replayed, recovered, oracle)


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    """pydantic's errors as one line a client can act on: which field, what is wrong."""
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            parts.append(f"request body is not valid JSON: {error.get('ctx', {}).get('error', error['msg'])}")
            continue
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        where = "field '" + ".".join(loc[1:] if loc and loc[0] in ("path", "query") else loc) + "'" if loc else "request body"
        if loc and loc[0] in ("path", "query"):
            where = f"{loc[0]} parameter '{'.'.join(loc[1:])}'"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is refused with 413 before any handler
    reads it (by its Content-Length, or while it streams in when chunked: read here, then replayed)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send, f"request body of {declared.decode(errors='replace')} bytes is over the {self.limit:,}-byte limit")
            return
        if declared is not None:
            await self.app(scope, receive, send)  # the server holds the body to its declared length
            return
        # chunked: read it here up to the limit, then hand the handler what was read
        chunks: list[Message] = []
        size = 0
        while True:
            message = await receive()
            chunks.append(message)
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(send, f"request body is over the {self.limit:,}-byte limit")
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, message: str) -> None:
        response = error_response(413, "body_too_large", message)
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(
    home: Path | None = None,
    service: Service | None = None,
    clock: Callable[[], int] = get_wall_clock_ms,
    options: BatchOptions | None = None,
    fill_to_transaction: FillToTransaction | None = None,
    margin_check: bool = False,
) -> FastAPI:
    """The application for the node in `home` (opened when the app starts), or for an opened `service`."""
    if (home is None) == (service is None):
        raise ValueError("create_app takes a home or an opened service, not both")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        svc = service if service is not None else open_service(home, clock, options=options, fill_to_transaction=fill_to_transaction, margin_check=margin_check)  # type: ignore[arg-type]
        app.state.service = svc
        svc.batcher.start()
        oracle_task = asyncio.create_task(run_oracle_clock(svc), name="oracle-clock") if svc.oracle is not None else None
        try:
            yield
        finally:
            if oracle_task is not None:
                oracle_task.cancel()
            await svc.batcher.stop()
            svc.close()

    fills = "" if fill_to_transaction is not None else " " + NO_FILLS_NOTE + "."
    app = FastAPI(
        title="zk-derivatives-rollup sequencer",
        version="0.2.0",
        description="Signed orders, order books and market data of the rollup's exchange; rollup transactions batched, "
        "proven and settled in the background." + fills,
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit)
    def get_sequencer(request: Request | WebSocket) -> Sequencer:
        return request.app.state.service.sequencer

    @app.exception_handler(ServiceError)
    async def on_service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", describe_validation_errors(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}")

    # --- orders -------------------------------------------------------------------------------------

    @app.post("/orders", status_code=201, summary="Place a signed limit order")
    async def place_order(request: Request, order: Annotated[Order, Body()]) -> dict[str, Any]:
        """Admits the order (signature by the account's L2 key, instrument, expiry), matches it and
        journals it before answering. The book's own decisions (a post-only order that would cross, a
        nonce below the account's cancel-all) are the order's status `rejected`, not HTTP errors."""
        sequencer = get_sequencer(request)
        accepted = sequencer.submit(order)
        state = sequencer.get_order(compute_order_id(order, sequencer.domain))
        return {**state.to_json(), "command": accepted.seq, "records": [record_to_json(r) for r in accepted.records]}

    @app.delete("/orders/{order_id}", summary="Cancel an open order (a signed Cancel in the body)")
    async def cancel_order(
        request: Request,
        order_id: Annotated[str, PathParam(pattern=ORDER_ID_PATTERN, description="the order's id, 0x + 64 hex")],
        cancel: Annotated[Cancel, Body()],
    ) -> dict[str, Any]:
        sequencer = get_sequencer(request)
        # the path and the signed message name one order
        if cancel.order_id != order_id.lower():
            raise ServiceError(f"the path names order {order_id}, the signed cancel names {cancel.order_id}", 400, "mismatched_order_id")
        accepted = sequencer.submit(cancel)
        rejected = sequencer.find_rejection(accepted.records)
        # the book had no open order of this account by that id (filled, cancelled, expired, or another's)
        if rejected is not None:
            raise ServiceError(f"cancel rejected: {rejected.reason}", 409, "cancel_rejected")
        return {**sequencer.get_order(order_id).to_json(), "command": accepted.seq}

    @app.post("/orders/cancel-all", summary="Cancel every open order below a nonce (a signed CancelAll)")
    async def cancel_all(request: Request, cancel_all: Annotated[CancelAll, Body()]) -> dict[str, Any]:
        accepted = get_sequencer(request).submit(cancel_all)
        cancelled = [r.order_id for r in accepted.records if type(r) is OrderUpdate and r.status == "cancelled"]
        return {"account": cancel_all.account, "nonce": cancel_all.nonce, "cancelled": cancelled, "command": accepted.seq}

    @app.get("/orders/{order_id}", summary="An order: the signed order, its status and fills so far")
    async def get_order(request: Request, order_id: Annotated[str, PathParam(pattern=ORDER_ID_PATTERN)]) -> dict[str, Any]:
        return get_sequencer(request).get_order(order_id).to_json()

    # --- market data -------------------------------------------------------------------------------

    @app.get("/markets", summary="The markets (instruments of the genesis)")
    async def get_markets(request: Request) -> list[dict[str, Any]]:
        sequencer = get_sequencer(request)
        return [{"market": m, "name": sequencer.names[m], "sequence": b.sequence} for m, b in sorted(sequencer.engine.books.items())]

    @app.get("/book/{market}", summary="The order book's levels with the sequence number of its last delta")
    async def get_book(request: Request, market: int) -> dict[str, Any]:
        return get_sequencer(request).get_book(market)

    @app.get("/trades/{market}", summary="Recent trades, newest first")
    async def get_trades(request: Request, market: int, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        sequencer = get_sequencer(request)
        sequencer.check_market(market)
        trades = list(sequencer.trades[market])[-limit:]
        return [trade_to_json(t) for t in reversed(trades)]

    # --- the rollup ---------------------------------------------------------------------------------

    def get_service(request: Request | WebSocket) -> Service:
        return request.app.state.service

    @app.post("/transactions", status_code=202, summary="Queue a signed rollup transaction for the next batch")
    async def post_transaction(request: Request, transaction: Annotated[Transaction, Body()]) -> dict[str, Any]:
        """A transaction in the wire JSON of verifier/wire.py (deposit, withdraw, transfer, trades,
        register_key, oracle_update, ...). It is journaled before the answer (202: accepted for
        batching, not yet executed); its receipt is at GET /transactions/{id} once batched."""
        svc = get_service(request)
        check = check_signatures([transaction], svc.node.genesis.signing_domain)[0]
        # a signature that does not verify can never be accepted: refused before it is queued
        if check.error is not None:
            raise ServiceError(f"{transaction.type}: {check.error}", 422, "invalid_signature")
        check_known_signer(transaction, check.signers or (), svc.node)
        row = svc.batcher.add("api", transaction)
        return {**pending_to_json(row), "tx_hash": check.tx_hash}

    @app.get("/transactions/{pending_id}", summary="A queued transaction: pending, or its batch and receipt")
    async def get_transaction(request: Request, pending_id: Annotated[int, PathParam(ge=1)]) -> dict[str, Any]:
        row = get_service(request).journal.get_pending(pending_id)
        if row is None:
            raise ServiceError(f"transaction {pending_id} does not exist", 404, "unknown_transaction")
        return pending_to_json(row)

    @app.get("/batches", summary="The newest batches: executed -> proving -> proven -> settled, or failed")
    async def get_batches(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        return [v.to_json() for v in get_service(request).journal.get_batches(limit)]

    @app.get("/batches/{number}", summary="One batch: its state, roots, transactions, proof and settlement")
    async def get_batch(request: Request, number: Annotated[int, PathParam(ge=1)]) -> dict[str, Any]:
        view = get_service(request).journal.get_batch(number)
        if view is None:
            raise ServiceError(f"batch {number} does not exist (or was not made by this service)", 404, "unknown_batch")
        return view.to_json()

    @app.get("/marks", summary="The oracle's marks and funding indices in the rollup state")
    async def get_marks_view(request: Request) -> dict[str, Any]:
        svc = get_service(request)
        return {"type": "snapshot", "sequence": svc.batcher.marks_sequence, **await svc.worker.run(get_marks, svc.node)}

    @app.get("/accounts/{account}", summary="An account's collateral, positions, margin, Greeks and open orders")
    async def get_account(
        request: Request,
        account: Annotated[int, PathParam(ge=0)],
        vol: Annotated[float, Query(ge=0.0, lt=10.0, description="volatility for the option Greeks (annualised)")] = 0.6,
        rate: Annotated[float, Query(gt=-1.0, lt=1.0, description="risk-free rate for the option Greeks")] = 0.0,
    ) -> dict[str, Any]:
        svc = get_service(request)
        try:
            view = await svc.worker.run(get_account_view, svc.node.state, account, vol, rate)
        except AccountViewError as exc:
            raise ServiceError(str(exc), 404, "unknown_account") from None
        return {**view, "open_orders": [s.to_json() for s in svc.sequencer.get_open_orders(account)]}

    @app.get("/status", summary="The node's batch and root, the exchange journal, the batcher and the prover")
    async def get_status(request: Request) -> dict[str, Any]:
        svc = get_service(request)
        node = svc.node
        batch = await svc.worker.run(lambda: node.batch_number)
        return {
            "node": {
                "home": str(node.home),
                "batch": batch,
                "root": "0x" + node.root.hex(),
                "accounts": len(node.state.accounts),
                "oracle_time": node.state.globals.oracle_time,
                "max_batch_txs": node.max_batch_txs,
            },
            "exchange": {
                "journal": str(svc.journal.path),
                "commands": svc.journal.last_seq,
                "replayed_on_start": svc.replayed,
                "markets": len(svc.sequencer.engine.books),
                "open_orders": sum(1 for s in svc.sequencer.orders.values() if s.status == "open"),
                "accepting": svc.sequencer.failed is None,
            },
            "batcher": {**svc.batcher.get_status(), "recovered_on_start": svc.recovered},
            "settlement": {
                "fills_settle_on_rollup": svc.sequencer.fill_to_transaction is not None,
                "note": FILLS_NOTE if svc.sequencer.fill_to_transaction is not None else NO_FILLS_NOTE,
            },
        }

    # --- streams ------------------------------------------------------------------------------------

    async def stream(websocket: WebSocket, market: int, book: bool) -> None:
        sequencer = get_sequencer(websocket)
        await websocket.accept()
        streams = sequencer.book_streams if book else sequencer.trade_streams
        try:
            queue = sequencer.subscribe(streams, market)
        except ServiceError as exc:
            await websocket.send_json({"type": "error", "code": exc.code, "message": str(exc)})
            await websocket.close(code=4404)
            return
        # subscribed and snapshotted with no await in between: the first delta follows the snapshot
        first = sequencer.get_book(market) if book else None
        await forward(websocket, queue, first, streams[market])

    @app.websocket("/ws/book/{market}")
    async def ws_book(websocket: WebSocket, market: int) -> None:
        """A snapshot (`type: snapshot`, with `sequence`), then every delta (`sequence`, `prev_sequence`):
        a client that sees prev_sequence differ from the last sequence it applied lost one and reconnects."""
        await stream(websocket, market, book=True)

    @app.websocket("/ws/trades/{market}")
    async def ws_trades(websocket: WebSocket, market: int) -> None:
        """Every trade of the market from now on (`type: trade`)."""
        await stream(websocket, market, book=False)

    async def forward(websocket: WebSocket, queue: asyncio.Queue, snapshot: dict[str, Any] | None, streams: set[asyncio.Queue]) -> None:
        """Send the snapshot, then every item of the queue, until the client leaves or lags too far.
        The client's side is read meanwhile, so a client that left is noticed at once (not at the
        next item, which may never come): its handler ends and the server can shut down."""
        listener = asyncio.create_task(wait_for_disconnect(websocket))
        try:
            if snapshot is not None:
                await websocket.send_json(snapshot)
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, listener}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return
                item = getter.result()
                await websocket.send_json(item)
                if item is DROPPED:
                    await websocket.close(code=1013)
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away
        finally:
            listener.cancel()
            streams.discard(queue)

    @app.websocket("/ws/batches")
    async def ws_batches(websocket: WebSocket) -> None:
        """A snapshot of the newest batches (`type: snapshot`, `sequence`), then every state change of a
        batch (`type: batch`, `sequence`, `prev_sequence`, the batch's view)."""
        batcher = get_service(websocket).batcher
        await websocket.accept()
        queue: asyncio.Queue = asyncio.Queue()
        batcher.batch_streams.add(queue)
        views = get_service(websocket).journal.get_batches(20)
        snapshot = {"type": "snapshot", "sequence": batcher.batch_sequence, "batches": [v.to_json() for v in views]}
        await forward(websocket, queue, snapshot, batcher.batch_streams)

    @app.websocket("/ws/marks")
    async def ws_marks(websocket: WebSocket) -> None:
        """The oracle's marks and funding indices (`type: snapshot`), then each batch's new ones
        (`type: marks`, `sequence`, `prev_sequence`) after an oracle update was executed."""
        svc = get_service(websocket)
        await websocket.accept()
        queue: asyncio.Queue = asyncio.Queue()
        marks = await svc.worker.run(get_marks, svc.node)
        # subscribed after the read, with no await in between: no update falls between the two
        svc.batcher.marks_streams.add(queue)
        await forward(websocket, queue, {"type": "snapshot", "sequence": svc.batcher.marks_sequence, **marks}, svc.batcher.marks_streams)

    @app.websocket("/ws/account/{account}")
    async def ws_account(websocket: WebSocket, account: int) -> None:
        """The account's open orders (`type: snapshot`, `account_sequence`), then its order updates
        (`type: order`) and fills (`type: fill`), numbered by `account_sequence`. No authentication:
        anyone may watch any account (a prototype: docs/service.md)."""
        svc = get_service(websocket)
        await websocket.accept()
        # an account the rollup knows
        if account not in svc.node.state.accounts:
            await websocket.send_json({"type": "error", "code": "unknown_account", "message": f"account {account} does not exist (no deposit has created it)"})
            await websocket.close(code=4404)
            return
        queue, snapshot = svc.sequencer.subscribe_account(account)
        await forward(websocket, queue, snapshot, svc.sequencer.account_streams[account])

    app.include_router(page_router)
    return app


def make_liquidation_engine(node: Node, account: int) -> Any:
    """The liquidation engine for `account`, signing with the L2 key its development wallet key
    (the embedded defaults' seed) derives: a development liquidator, as the oracle clock's key is."""
    from exchange.liquidation import LiquidationEngine, LiquidationMonitor, find_liquidator_key
    from rollup.fixtures import WorkloadSpec
    from rollup.signing import dev_account_key

    key = find_liquidator_key(node.state, account, dev_account_key(WorkloadSpec().seed, account))
    return LiquidationEngine(LiquidationMonitor.from_state(node.state), account, key)


def check_known_signer(transaction: Any, signers: tuple, node: Node) -> None:
    """Refusals the state can decide now, before a transaction is queued: its account exists, and
    an Ethereum signature is by the account's address (the oracle's, for an oracle update). L2
    signatures are checked against the account's key when the batch executes."""
    state = node.state
    if transaction.type == "oracle_update":
        # only the genesis' oracle signs oracle updates
        if signers[:1] != (node.genesis.oracle_address,):
            raise ServiceError(f"oracle_update is signed by {signers[0]}, not by the genesis' oracle {node.genesis.oracle_address}", 422, "invalid_signature")
        return
    account = getattr(transaction, "account", getattr(transaction, "sender", None))
    if transaction.type == "deposit" or account is None:
        return
    acct = state.accounts.get(account)
    # a transaction of an account that does not exist (a deposit creates one)
    if acct is None:
        raise ServiceError(f"account {account} does not exist (no deposit has created it)", 404, "unknown_account")
    # an Ethereum-signed transaction of one account is signed by its address
    if hasattr(transaction, "account") and signers and isinstance(signers[0], str) and signers[0] != acct.address:
        raise ServiceError(f"{transaction.type} for account {account} is signed by {signers[0]}, not by the account's address {acct.address}", 422, "invalid_signature")


async def wait_for_disconnect(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it disconnects."""
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass


def pending_to_json(row: PendingRow) -> dict[str, Any]:
    state = "pending" if row.batch is None else (row.status or "")
    return {
        "id": row.id,
        "source": row.source,
        "state": state,
        "batch": row.batch or None,
        "reason": row.reason or "",
        "received_ms": row.received_ms,
        "transaction": json.loads(row.body),
    }


async def run_oracle_clock(svc: Service) -> None:
    """Queue a signed oracle update from the embedded feed every `oracle_seconds` (a service
    opened with an oracle clock)."""
    oracle, period = svc.oracle, svc.batcher.options.oracle_seconds
    if oracle is None or period is None:
        raise ValueError("this service has no oracle clock (--oracle-seconds)")
    while True:
        resync = svc.journal.count_open_pending("oracle")[0] == 0
        update = await svc.worker.run(oracle.next_update, svc.node.state, int(time.time()), resync)
        svc.batcher.add("oracle", update)
        await asyncio.sleep(period)

