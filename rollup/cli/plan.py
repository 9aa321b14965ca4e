"""`rollup plan FILE`: the dependency analysis of a batch, without executing it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from rollup.cli.common import UserError, console, print_json
from rollup.executors import get_default_workers
from rollup.planner import INSTRUMENT_FIELD, Plan, plan_batch, plan_windows
from rollup.txfile import TransactionFileError, read_transaction_file


def plan(
    file: Annotated[Path, typer.Argument(help="Transactions, one JSON object per line.")],
    workers: Annotated[Optional[int], typer.Option("--workers", help="Partitions to pack the groups into (default: the machine's cores).")] = None,
    home: Annotated[
        Optional[Path],
        typer.Option("--home", help="A node: also report the instruments the file names that its genesis lacks.", show_default=False),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Conflict groups, the largest group's share, the parallelism bound, partition costs and hot
    keys of a batch, for one plan over the whole batch and for the planning windows the node uses
    (docs/parallel.md): what `rollup submit --workers N` would run in parallel. Executes nothing."""
    partitions = get_default_workers() if workers is None else workers
    # at least one partition
    if partitions < 1:
        raise UserError(f"--workers must be at least 1, got {partitions}")
    try:
        transactions = read_transaction_file(file)
    except TransactionFileError as exc:
        raise UserError(str(exc)) from None
    started = time.perf_counter()
    result = plan_batch(transactions, partitions)
    out = result.to_dict()
    out["windowed"] = plan_windows(transactions, partitions)
    out["planning_s"] = round(time.perf_counter() - started, 4)
    if home is not None:
        out["unknown_instruments"] = get_unknown_instruments(transactions, home)
    if json_output:
        print_json(out)
        return
    print_plan(result, out)


def get_unknown_instruments(transactions: list, home: Path) -> list[int]:
    """Instruments named by the file that the node's genesis does not list (they will be rejected)."""
    from rollup.cli.node import open_node

    node = open_node(home)
    try:
        known = set(node.state.instruments)
    finally:
        node.close()
    named = set()
    for tx in transactions:
        name = INSTRUMENT_FIELD.get(type(tx))
        if name is not None:
            named.add(getattr(tx, name))
    return sorted(named - known)


def print_plan(result: Plan, out: dict) -> None:
    console.print(
        f"{out['transactions']} transactions: [bold]{out['groups']}[/] conflict groups "
        f"({out['singleton_groups']} of one transaction), {out['broadcast']} oracle updates broadcast to every partition"
    )
    console.print(
        f"largest group: {out['largest_group_transactions']} transactions, "
        f"{100 * out['largest_group_share']:.1f}% of the estimated cost"
    )
    console.print(f"parallelism bound with {result.workers} workers, one plan: [bold]{out['parallelism_bound']:.2f}x[/]")
    w = out["windowed"]
    console.print(
        f"as the node runs it, {w['windows']} planning windows of {w['window_size']} transactions: bound "
        f"[bold]{w['parallelism_bound']:.2f}x[/], largest group {100 * w['largest_group_share']:.1f}% of its window on average"
    )
    table = Table(title="partitions (LPT packing)")
    for column in ("partition", "transactions", "estimated ms"):
        table.add_column(column, justify="right")
    for p, (n, cost) in enumerate(zip(out["partition_transactions"], out["partition_costs_us"])):
        table.add_row(str(p), str(n), f"{cost / 1000:.1f}")
    console.print(table)
    hot = ", ".join(f"{a['account']} ({a['transactions']} tx)" for a in out["hot_accounts"])
    console.print(f"busiest accounts: {hot or 'none'}")
    keys = ", ".join(f"{k} ({n} tx)" for k, n in list(out["hot_keys"].items())[:8])
    console.print(f"hot keys merged as deltas (no conflict): {keys or 'none'}")
    if out.get("unknown_instruments"):
        console.print(f"instruments unknown to the node: {out['unknown_instruments']}")

