"""Proving commands: `rollup setup` (the segment circuit's keys) and `rollup prove [BATCH]`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rollup.cli.common import BackendOption, UserError, console, console_err, print_json, use_backend
from rollup.cli.node import HomeOption, JsonOption, get_executor_kind, open_executor
from rollup.node import resolve_home
from rollup.storage import StorageError, Store


@contextlib.contextmanager
def open_store(home: Path | None) -> Iterator[tuple[Path, Store]]:
    target = resolve_home(home)
    try:
        store = Store.open(target)
    except StorageError as exc:
        raise UserError(str(exc)) from None
    try:
        yield target, store
    finally:
        store.close()


def setup_keys(
    slots: Annotated[
        Optional[int], typer.Option("--slots", help="Transactions per segment (default: the node's setting, else 4).", show_default=False)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Make new keys even if the node has some.")] = False,
    backend: BackendOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create the state-transition circuit's Groth16 keys for this node (once; cached afterwards).

    UNSAFE FOR PRODUCTION: a single-party setup, whose maker could forge proofs. The keys go to
    HOME/keys/ (proving_key.bin, verification_key.json in snarkjs format); the verifying key's
    keccak hash is printed and recorded in the node."""
    from prover.pipeline import ProvingError, run_setup

    # --backend: where the fixed-base products run; every backend makes the same key from the same secrets
    with use_backend(backend), open_store(home) as (target, store):
        if not json_output and not force:
            console_err.print("[dim]setting up the segment circuit (reused if keys exist)...[/]")
        try:
            result = run_setup(target, store, slots, force)
        except ProvingError as exc:
            raise UserError(str(exc)) from None
    if json_output:
        print_json(vars(result))
        return
    state = "reused" if result.cached else f"created in {result.seconds:.1f} s ({result.n_constraints} constraints)"
    console.print(f"segment keys for {result.n_slots}-slot segments {state}: {result.proving_key}")
    console.print("[yellow]UNSAFE single-party setup: development only[/]")
    console.print(f"verifying key hash: [bold]{result.vk_hash}[/]")


def prove_batches_command(
    batch: Annotated[Optional[int], typer.Argument(help="Batch number (default: every batch not fully proven).", show_default=False)] = None,
    executor_kind: Annotated[
        Optional[str],
        typer.Option("--executor", help="Where segments are proven: serial, process (default) or dask.", show_default=False),
    ] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Parallel provers (default: this machine's cores).", show_default=False)] = None,
    cluster: Annotated[
        Optional[str],
        typer.Option("--cluster", help="Dask scheduler address, or 'local'. Implies --executor dask.", show_default=False),
    ] = None,
    backend: BackendOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Prove every segment of the batch that has no proof yet, in parallel workers.

    Each proof is verified and stored as soon as it completes: after a crash or an interrupt, run
    it again and it resumes at the first segment without a proof."""
    from prover.pipeline import ProvingError, prove_batches

    kind = get_executor_kind(executor_kind, workers, cluster)
    with contextlib.ExitStack() as stack:
        backend_name = stack.enter_context(use_backend(backend))
        executor = open_executor(stack, kind, workers, cluster)
        target, store = stack.enter_context(open_store(home))
        bar = None
        if not json_output:
            columns = (TextColumn("proving segments"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("ETA"), TimeRemainingColumn())
            bar = stack.enter_context(Progress(*columns, console=console_err, transient=True))
        task = bar.add_task("prove", total=None) if bar is not None else None
        try:
            report = prove_batches(
                target,
                store,
                executor,
                None if batch is None else [batch],
                on_planned=(lambda total: bar.update(task, total=total)) if bar is not None else None,
                on_proof=(lambda event: bar.advance(task)) if bar is not None else None,
                backend=backend_name,
            )
        except ProvingError as exc:
            raise UserError(str(exc)) from None
    out = {
        "vk_hash": report.vk_hash,
        "n_slots": report.n_slots,
        "proven": report.proven,
        "already_proven": report.skipped,
        "batches": report.batches,
        "executor": {"kind": kind, "workers": getattr(executor, "workers", 1), "cluster": cluster},
        "backend": backend_name or "fastest installed on each worker",
        "seconds": round(report.seconds, 3),
        "prove_seconds": round(report.prove_seconds, 3),
    }
    if json_output:
        print_json(out)
        return
    if not report.batches:
        console.print("every batch is proven")
        return
    for number, info in report.batches.items():
        console.print(
            f"batch {number}: {info['proven']}/{info['segments']} segments proven ({info['proven_now']} now), "
            f"new root {info['new_root']}"
        )
    console.print(f"{report.proven} proofs in {report.seconds:.1f} s ({report.prove_seconds:.1f} s of proving)")
