"""`rollup serve`: the sequencer service on a node home, over HTTP and WebSocket (uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from rollup.cli.common import UserError, console
from rollup.cli.node import HomeOption
from rollup.node import NodeError, resolve_home
from rollup.storage import DB_NAME


def serve(
    home: HomeOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port to listen on.")] = 8000,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's log level (critical, error, warning, info, debug).")] = "warning",
) -> None:
    """Run the sequencer: signed orders over HTTP, order books and trades over WebSocket, the
    OpenAPI schema at /openapi.json (pages at /docs).

    A home without a node gets one from the default genesis, as `rollup init` makes. Accepted
    orders and cancels are journaled in HOME/exchange.sqlite before the answer and replayed on
    start. Fills do not become rollup transactions yet (no Fill transaction type).
    """
    import uvicorn

    from service.app import create_app, open_service
    from service.journal import JournalError

    # a port a socket can bind (0 lets the system choose)
    if not 0 <= port < 2**16:
        raise UserError(f"--port must be between 0 and 65535, got {port}")
    target = resolve_home(home)
    if not (target / DB_NAME).exists():
        from rollup.cli.node import init

        init(home=target)
    try:
        # opened on this thread, which runs uvicorn's event loop: SQLite connections stay on their thread
        service = open_service(target)
    except (NodeError, JournalError) as exc:
        raise UserError(str(exc)) from None
    console.print(
        f"serving node [bold]{target}[/] on http://{host}:{port} (replayed {service.replayed} journaled commands; "
        f"batch {service.node.batch_number})"
    )
    uvicorn.run(create_app(service=service), host=host, port=port, log_level=log_level)
