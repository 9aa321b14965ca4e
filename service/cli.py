"""`rollup serve`: the sequencer service on a node home, over HTTP and WebSocket (uvicorn)."""

from __future__ import annotations

from typing import Annotated, Optional

from service.batcher import BatchOptions

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
    batch_size: Annotated[int, typer.Option("--batch-size", help="Cut a batch when this many rollup transactions are pending.")] = BatchOptions.batch_size,
    batch_seconds: Annotated[float, typer.Option("--batch-seconds", help="... or when the oldest pending one has waited this long.")] = BatchOptions.batch_seconds,
    prove: Annotated[bool, typer.Option("--prove/--no-prove", help="Prove every batch (circuit v3) and settle it on the embedded L1 (HOME/l1), in the background.")] = False,
    proof_slots: Annotated[int, typer.Option("--proof-slots", help="Slots per proven segment (the circuit's size; keys made once in HOME/keys).")] = BatchOptions.proof_slots,
    proof_workers: Annotated[int, typer.Option("--proof-workers", help="Worker processes proving segments.")] = BatchOptions.proof_workers,
    oracle_seconds: Annotated[Optional[float], typer.Option("--oracle-seconds", help="Sign an oracle update from the embedded feed this often (default: never).")] = None,
    liquidator: Annotated[Optional[int], typer.Option("--liquidator", help="Liquidate accounts below maintenance margin from this account, signed with its development key (embedded defaults).")] = None,
    margin_check: Annotated[bool, typer.Option("--margin-check/--no-margin-check", help="Refuse an order whose full fill the rollup's rules would refuse (margin, collateral, positions) on the node's state.")] = True,
    fee: Annotated[int, typer.Option("--fee", help="Taker fee per contract filled, micro-USD (capped by each order's max_fee).")] = 0,
) -> None:
    """Run the sequencer: signed orders over HTTP, order books and trades over WebSocket, the
    OpenAPI schema at /openapi.json (pages at /docs).

    A home without a node gets one from the default genesis, as `rollup init` makes. Accepted
    orders and cancels are journaled in HOME/exchange.sqlite before the answer and replayed on
    start. Rollup transactions (POST /transactions, oracle updates) are journaled there too, cut
    into batches on size or time, and with --prove proven and settled in the background
    (GET /batches, /ws/batches). Every fill becomes a `Fill` rollup transaction (both signed
    orders), queued with the command that made it.
    """
    import uvicorn

    from exchange.fills import make_fill_builder
    from exchange.liquidation import LiquidatorKeyError
    from service.app import create_app, open_service
    from service.journal import JournalError
    from service.oracle_clock import OracleClockError

    # a port a socket can bind (0 lets the system choose)
    if not 0 <= port < 2**16:
        raise UserError(f"--port must be between 0 and 65535, got {port}")
    # batches are cut on a positive count or period
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if not batch_seconds > 0:
        raise UserError(f"--batch-seconds must be > 0, got {batch_seconds}")
    # a segment holds at least one transaction; proving needs a process
    if proof_slots < 1 or proof_workers < 1:
        raise UserError(f"--proof-slots and --proof-workers must be >= 1, got {proof_slots} and {proof_workers}")
    if oracle_seconds is not None and not oracle_seconds > 0:
        raise UserError(f"--oracle-seconds must be > 0, got {oracle_seconds}")
    # a fee in the wire's range
    if not 0 <= fee < 2**56:
        raise UserError(f"--fee must be between 0 and 2^56 - 1 micro-USD per contract, got {fee}")
    options = BatchOptions(batch_size, batch_seconds, prove, proof_slots, proof_workers, oracle_seconds, liquidator)
    target = resolve_home(home)
    if not (target / DB_NAME).exists():
        from rollup.cli.node import init

        # a new node that proves gets batches of at most --batch-size: the contracts and every
        # settlement are sized for the node's bound, and the default bound (a full L1 settlement)
        # needs more segments than small proof slots allow
        init(home=target, max_batch_txs=batch_size if prove else None)
    try:
        # opened on this thread, which runs uvicorn's event loop: SQLite connections stay on their thread
        service = open_service(target, options=options, fill_to_transaction=make_fill_builder(fee), margin_check=margin_check)
    except (NodeError, JournalError, OracleClockError, LiquidatorKeyError) as exc:
        raise UserError(str(exc)) from None
    console.print(
        f"serving node [bold]{target}[/] on http://{host}:{port} (replayed {service.replayed} journaled commands; "
        f"recovered {service.recovered} already batched; batch {service.worker.call(lambda: service.node.batch_number)}; "
        f"batches of {batch_size} or every {batch_seconds:g} s{', proven and settled' if prove else ''})"
    )
    uvicorn.run(create_app(service=service), host=host, port=port, log_level=log_level)
