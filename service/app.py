"""The service's ASGI application (FastAPI): orders in, market data and account state out.

Every handler is `async` and runs on the event loop's thread: the sequencer (service/sequencer.py)
is single-threaded by design (the order of calls is the order of commands), and a command costs
tens of microseconds to admit and match plus one SQLite commit. Errors are one JSON shape,
`{"error": {"code", "message"}}`, as the CLI's `--json` errors: clients branch on `code`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable

from fastapi import Body, FastAPI, Path as PathParam, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from exchange.orders import Cancel, CancelAll, Order, compute_order_id
from exchange.records import OrderUpdate
from rollup.node import Node
from rollup.state import get_equity, get_maintenance_margin, get_margin_requirement
from service.journal import Journal
from service.page import page_router
from service.sequencer import DROPPED, Sequencer, ServiceError, get_wall_clock_ms, record_to_json, trade_to_json
from verifier.encoding import compute_genesis_hash

SETTLEMENT_NOTE = (
    "fills are not rollup transactions yet (there is no Fill transaction type): matching changes the books, "
    "not the rollup state; batches come from `rollup submit` only"
)
ORDER_ID_PATTERN = r"^0x[0-9a-fA-F]{64}$"


@dataclass
class Service:
    """What a running service holds: the node (rollup state), the journal and the sequencer."""

    node: Node
    journal: Journal
    sequencer: Sequencer
    replayed: int

    def close(self) -> None:
        self.journal.close()
        self.node.close()


def open_service(home: Path, clock: Callable[[], int] = get_wall_clock_ms, book: str = "fast") -> Service:
    """Open the node in `home`, its exchange journal, and replay the journal into a sequencer.
    NodeError or JournalError if either cannot be opened or the journal does not replay."""
    node = Node.open(home)
    try:
        journal = Journal.open(home, "0x" + compute_genesis_hash(node.genesis).hex())
    except Exception:
        node.close()
        raise

    def get_key_id(account: int) -> int | None:
        acct = node.state.accounts.get(account)
        return None if acct is None else acct.l2_key

    sequencer = Sequencer(node.genesis, journal, get_key_id, clock, book)
    try:
        replayed = sequencer.replay()
    except Exception:
        journal.close()
        node.close()
        raise
    return Service(node, journal, sequencer, replayed)


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


def create_app(home: Path | None = None, service: Service | None = None, clock: Callable[[], int] = get_wall_clock_ms) -> FastAPI:
    """The application for the node in `home` (opened when the app starts), or for an opened `service`."""
    if (home is None) == (service is None):
        raise ValueError("create_app takes a home or an opened service, not both")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # opened on the event loop's thread: SQLite connections belong to the thread that made them
        svc = service if service is not None else open_service(home, clock)  # type: ignore[arg-type]
        app.state.service = svc
        try:
            yield
        finally:
            svc.close()

    app = FastAPI(
        title="zk-derivatives-rollup sequencer",
        version="0.1.0",
        description="Signed orders, order books and market data of the rollup's exchange. " + SETTLEMENT_NOTE + ".",
        lifespan=lifespan,
    )

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

    @app.get("/accounts/{account}", summary="An account's collateral, positions, margin and open orders")
    async def get_account(request: Request, account: int) -> dict[str, Any]:
        svc: Service = request.app.state.service
        state = svc.node.state
        acct = state.accounts.get(account)
        if acct is None:
            raise ServiceError(f"account {account} does not exist (no deposit has created it)", 404, "unknown_account")
        return {
            "account": account,
            "address": acct.address,
            "collateral": acct.collateral,
            "nonce": acct.nonce,
            "equity": get_equity(state, account),
            "initial_margin": get_margin_requirement(state, account),
            "maintenance_margin": get_maintenance_margin(state, account),
            "positions": [
                {"instrument": i, "name": state.instruments[i].spec.name, "size": p.size, "cost": p.cost, "funding": p.funding}
                for i, p in sorted(acct.positions.items())
            ],
            "open_orders": [s.to_json() for s in svc.sequencer.get_open_orders(account)],
        }

    @app.get("/status", summary="The node's batch and root, the exchange journal, and what is not wired yet")
    async def get_status(request: Request) -> dict[str, Any]:
        svc: Service = request.app.state.service
        node = svc.node
        return {
            "node": {
                "home": str(node.home),
                "batch": node.batch_number,
                "root": "0x" + node.root.hex(),
                "accounts": len(node.state.accounts),
                "oracle_time": node.state.globals.oracle_time,
            },
            "exchange": {
                "journal": str(svc.journal.path),
                "commands": svc.journal.last_seq,
                "replayed_on_start": svc.replayed,
                "markets": len(svc.sequencer.engine.books),
                "open_orders": sum(1 for s in svc.sequencer.orders.values() if s.status == "open"),
                "accepting": svc.sequencer.failed is None,
            },
            "settlement": {"fills_settle_on_rollup": False, "note": SETTLEMENT_NOTE},
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
        try:
            if first is not None:
                await websocket.send_json(first)
            while True:
                item = await queue.get()
                await websocket.send_json(item)
                if item is DROPPED:
                    await websocket.close(code=1013)
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away
        finally:
            streams[market].discard(queue)

    @app.websocket("/ws/book/{market}")
    async def ws_book(websocket: WebSocket, market: int) -> None:
        """A snapshot (`type: snapshot`, with `sequence`), then every delta (`sequence`, `prev_sequence`):
        a client that sees prev_sequence differ from the last sequence it applied lost one and reconnects."""
        await stream(websocket, market, book=True)

    @app.websocket("/ws/trades/{market}")
    async def ws_trades(websocket: WebSocket, market: int) -> None:
        """Every trade of the market from now on (`type: trade`)."""
        await stream(websocket, market, book=False)

    app.include_router(page_router)
    return app

