"""`rollup fixtures`: generate a seeded, signed workload of derivative transactions (JSON lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rollup.cli.common import UserError, console, console_err, print_json
from rollup.fixtures import DEFAULT_MIX, FixtureError, WorkloadSpec, generate_workload, parse_mix, write_workload

DEFAULT_MIX_TEXT = ",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items())


def get_genesis_path(out: Path, genesis_out: Path | None) -> Path:
    """Default: next to the workload, `workload.jsonl` -> `workload.genesis.json`."""
    return genesis_out if genesis_out is not None else out.with_name(out.stem + ".genesis.json")


def fixtures(
    accounts: Annotated[int, typer.Option(help="Accounts to create and fund with one deposit each.")] = 1_000,
    perps: Annotated[int, typer.Option(help="Perpetual markets (1-4: BTC, ETH, SOL, XRP).")] = 2,
    series: Annotated[int, typer.Option(help="Option series on BTC and ETH (7 and 30 day expiries).")] = 8,
    txs: Annotated[int, typer.Option(help="Transactions after the setup deposits and first oracle update.")] = 10_000,
    mix: Annotated[str, typer.Option(help="Relative weights of transaction types, TYPE=WEIGHT,...")] = DEFAULT_MIX_TEXT,
    contention: Annotated[float, typer.Option(help="Share of transactions on the hot account (0) and hot market.")] = 0.0,
    invalid_share: Annotated[float, typer.Option(help="Share of deliberately invalid transactions (bad nonce, signer, margin...).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives a byte-identical file.")] = 7,
    days: Annotated[int, typer.Option(help="Simulated days the oracle updates span.")] = 14,
    shock: Annotated[float, typer.Option(help="Spot crash at mid-path, as a fraction (gives liquidations); 0 for none.")] = 0.15,
    out: Annotated[Path, typer.Option(help="Output file, one JSON transaction per line.")] = Path("workload.jsonl"),
    genesis_out: Annotated[Optional[Path], typer.Option(help="Genesis JSON output (default: OUT with the suffix .genesis.json).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Signing processes, 1 by default (the output is the same for any number).")] = None,
    l1_chain_id: Annotated[
        Optional[int], typer.Option(help="Chain id of the L1 the rollup settles on (default: the embedded L1's).", show_default=False)
    ] = None,
    rollup_address: Annotated[
        Optional[str],
        typer.Option(help="Address the Rollup contract will have there (default: the embedded L1's first deployment).", show_default=False),
    ] = None,
    tree_depth: Annotated[
        int, typer.Option(help="Depth of the genesis' 4-ary accounts tree (4^depth accounts; proofs cost about 1,220 constraints per level per slot).")
    ] = 12,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Generate a seeded workload of SIGNED transactions with TEST keys: deposits creating the
    accounts, the first oracle update, then the mix, executed against the real rules as generated."""
    # at least one process signs
    if workers is not None and workers < 1:
        raise UserError("--workers must be >= 1")
    genesis_path = get_genesis_path(out, genesis_out)
    try:
        spec = WorkloadSpec(
            accounts=accounts, perps=perps, series=series, txs=txs, mix=parse_mix(mix), contention=contention,
            invalid_share=invalid_share, seed=seed, days=days, shock=shock,
            **({} if l1_chain_id is None else {"l1_chain_id": l1_chain_id}), rollup_address=rollup_address,
            tree_depth=tree_depth,
        )
        workload = generate_with_progress(spec, workers, show=not json_output)
        write_workload(workload, out, genesis_path)
    except FixtureError as exc:
        raise UserError(str(exc)) from exc
    except ValidationError as exc:  # the genesis refuses a bad chain id or address
        raise UserError("; ".join(f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}" for e in exc.errors())) from None
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    summary = {"out": str(out), "genesis": str(genesis_path), **workload.summary}
    if json_output:
        print_json(summary)
        return
    console.print(
        f"wrote {summary['transactions']} transactions to [bold]{out}[/] "
        f"({summary['setup']} setup + {summary['mix_transactions']} mixed, {summary['rejected']} invalid on purpose) "
        f"and the genesis to [bold]{genesis_path}[/]"
    )
    console.print("by type: " + ", ".join(f"{k}={v}" for k, v in summary["by_type"].items()))


def generate_with_progress(spec: WorkloadSpec, workers: int | None, show: bool):
    if not show:
        return generate_workload(spec, workers)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console_err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        return generate_workload(spec, workers, progress=report)
