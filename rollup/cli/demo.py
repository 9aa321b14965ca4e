"""`rollup demo`: the whole pipeline on the embedded defaults, in a fresh node directory."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from rollup.cli.common import UserError, console, print_json
from rollup.cli.fixtures import generate_with_progress
from rollup.cli.node import HomeOption, JsonOption, _submit_with_progress, batch_summary, hex0x
from rollup.executors import make_executor
from rollup.fixtures import FixtureError, WorkloadSpec, write_workload
from rollup.node import Node, NodeError, resolve_home
from rollup.state import get_equity, get_margin_requirement
from rollup.units import format_usd


def demo(
    home: HomeOption = None,
    accounts: Annotated[int, typer.Option(help="Accounts in the generated workload.")] = 1_000,
    txs: Annotated[int, typer.Option(help="Mixed transactions after the setup deposits.")] = 5_000,
    contention: Annotated[float, typer.Option(help="Share of transactions on one hot account and market.")] = 0.1,
    invalid_share: Annotated[float, typer.Option(help="Share of deliberately invalid transactions.")] = 0.02,
    seed: Annotated[int, typer.Option(help="Workload seed.")] = 7,
    workers: Annotated[int, typer.Option(help="Worker processes for the batch (0: sequential only).")] = 2,
    json_output: JsonOption = False,
) -> None:
    """Create a node in HOME/demo (replacing an earlier demo), generate a signed workload, execute
    it as one batch on worker processes, check it against a sequential run of the same batch,
    reopen the node to check the committed root, and print a summary."""
    # a worker count is a count
    if workers < 0:
        raise UserError(f"--workers must be >= 0, got {workers}")
    folder = resolve_home(home) / "demo"
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        spec = WorkloadSpec(accounts=accounts, txs=txs, contention=contention, invalid_share=invalid_share, seed=seed)
        workload = generate_with_progress(spec, None, show=not json_output)
    except FixtureError as exc:
        raise UserError(str(exc)) from None
    timings["fixtures_s"] = time.perf_counter() - t0
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    write_workload(workload, folder / "workload.jsonl", folder / "genesis.json")
    t1 = time.perf_counter()
    try:
        with make_executor("process", workers=workers or 1) as executor:
            node = Node.init(folder / "node", workload.genesis)
            timings["init_s"] = time.perf_counter() - t1
            result = _submit_with_progress(node, workload.transactions, quiet=json_output, executor=executor if workers else None)
        timings["submit_s"] = result.timings["total_s"]
        node.close()
        t_seq = time.perf_counter()
        reference = Node.init(folder / "sequential", workload.genesis)  # the same batch, one process
        sequential_root = reference.submit(workload.transactions).new_root
        reference.close()
        timings["sequential_reference_s"] = time.perf_counter() - t_seq
        t2 = time.perf_counter()
        node = Node.open(folder / "node")  # recomputes the root from the stored leaves
        timings["reopen_and_check_s"] = time.perf_counter() - t2
    except NodeError as exc:
        raise UserError(str(exc)) from None
    try:
        if node.root != result.new_root:
            raise UserError(f"reopened root {hex0x(node.root)} differs from the committed {hex0x(result.new_root)}")
        parallel_equals_sequential = sequential_root == result.new_root
        if not parallel_equals_sequential:
            raise UserError(f"the parallel root {hex0x(result.new_root)} differs from the sequential {hex0x(sequential_root)}")
        hot = 0
        sample = {
            "account": hot,
            "equity": get_equity(node.state, hot),
            "initial_margin": get_margin_requirement(node.state, hot),
            "positions": len(node.state.accounts[hot].positions),
        }
    finally:
        node.close()
    summary = batch_summary(result)
    out = {
        "folder": str(folder),
        "workload": {k: workload.summary[k] for k in ("transactions", "accounts", "instruments", "by_type")},
        **summary,
        "workers": workers,
        "parallel_equals_sequential": parallel_equals_sequential,
        "phase_timings_s": {k: round(v, 3) for k, v in timings.items()},
        "hot_account": sample,
    }
    if json_output:
        print_json(out)
        return
    console.print(f"[bold]demo[/] in {folder}")
    table = Table(show_header=False)
    table.add_row("workload", f"{out['workload']['transactions']} signed transactions, {accounts} accounts, "
                  f"{out['workload']['instruments']} instruments")
    table.add_row("batch", f"{summary['accepted']} accepted, {summary['rejected']} rejected, "
                  f"{summary['touched_leaves']} leaves changed")
    for phase, seconds in out["phase_timings_s"].items():
        table.add_row(phase, f"{seconds:.3f}")
    for phase, seconds in summary["timings_s"].items():
        table.add_row(f"  submit: {phase}", f"{seconds:.3f}")
    table.add_row("hot account 0", f"equity {format_usd(sample['equity'])}, initial margin "
                  f"{format_usd(sample['initial_margin'])}, {sample['positions']} positions")
    console.print(table)
    console.print(f"prev root {summary['prev_root']}")
    console.print(f"new root  [bold]{summary['new_root']}[/] (recomputed from the stored leaves after reopening)")
    if workers:
        console.print(f"{workers} worker processes gave the same root as a sequential run of the same batch")
    console.print(f"next: rollup status --home {folder / 'node'}")
