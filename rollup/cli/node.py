"""Node commands: init, submit, status, account, batch, risk, schema."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from concurrent.futures import Executor
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import TypeAdapter, ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rollup.cli.common import UserError, console, console_err, print_json
from rollup.executors import get_executor_workers
from rollup.modes import MODES, ExecutionOptions
from rollup.node import NODE_BATCH_BOUND, BatchResult, Node, NodeError, Submission, resolve_home
from rollup.txfile import TransactionFileError, read_transaction_file
from rollup.units import format_usd
from verifier import wire

HomeOption = Annotated[
    Optional[Path],
    typer.Option("--home", help="Node directory (default: $ROLLUP_HOME, else ~/.rollup).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def open_node(home: Path | None) -> Node:
    try:
        return Node.open(resolve_home(home))
    except NodeError as exc:
        raise UserError(str(exc)) from None


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()


# --- init ----------------------------------------------------------------------------------------


def init(
    home: HomeOption = None,
    genesis_file: Annotated[
        Optional[Path],
        typer.Option("--genesis", help="Genesis JSON (default: BTC/ETH perps, 8 option series, the TEST oracle key of `rollup fixtures`)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Delete an existing node in this home first.")] = False,
    max_batch_txs: Annotated[
        Optional[int],
        typer.Option(
            "--max-batch-txs",
            help="Transactions per batch (default: what one L1 settlement takes); 0: no bound, execution only "
            "(batches may be too large to settle).",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a node: its database, the genesis state and its root."""
    from rollup.fixtures import WorkloadSpec
    from rollup.genesis import default_genesis
    from rollup.signing import dev_oracle_key, get_address

    target = resolve_home(home)
    if genesis_file is not None:
        try:
            genesis = wire.Genesis.model_validate_json(genesis_file.read_text())
        except FileNotFoundError:
            raise UserError(f"{genesis_file}: file not found") from None
        except ValidationError as exc:
            raise UserError(f"{genesis_file}: invalid genesis\n{_validation_lines(exc)}") from None
    else:
        # the development genesis `rollup fixtures` targets with its default seed and sizes
        spec = WorkloadSpec()
        genesis = default_genesis(get_address(dev_oracle_key(spec.seed)), n_perps=spec.perps, n_series=spec.series)
    # a batch holds at least one transaction
    if max_batch_txs is not None and max_batch_txs < 0:
        raise UserError(f"--max-batch-txs must be a positive count, or 0 for no bound; got {max_batch_txs}")
    bound = {} if max_batch_txs is None else {"max_batch_txs": max_batch_txs or None}
    if force:
        for name in ("rollup.db", "rollup.db-wal", "rollup.db-shm"):
            (target / name).unlink(missing_ok=True)
    try:
        node = Node.init(target, genesis, **bound)
    except NodeError as exc:
        raise UserError(str(exc)) from None
    result = {
        "home": str(target),
        "root": hex0x(node.root),
        "chain_id": genesis.chain_id,
        "oracle": genesis.oracle_address,
        "instruments": len(genesis.instruments),
        "max_batch_txs": node.max_batch_txs,
    }
    node.close()
    if json_output:
        print_json(result)
    else:
        console.print(f"initialised node in [bold]{target}[/]: {result['instruments']} instruments, root {result['root']}")


def _validation_lines(exc: ValidationError) -> str:
    return "\n".join(f"  field '{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors())


# --- submit --------------------------------------------------------------------------------------


ExecutorOption = Annotated[
    Optional[str],
    typer.Option(
        "--executor",
        help="Where the batch executes: serial (in this process: the sequential reference, or with --workers N "
        "its N partitions one after another), process (a pool of local processes; the default) or dask (a Dask "
        "cluster, see --cluster).",
        show_default=False,
    ),
]
WorkersOption = Annotated[
    Optional[int],
    typer.Option(
        "--workers",
        help="Parallel workers, and partitions of the batch (default: this machine's cores; for a Dask address, "
        "the cluster's worker threads).",
        show_default=False,
    ),
]
ClusterOption = Annotated[
    Optional[str],
    typer.Option(
        "--cluster",
        help="Dask scheduler address (tcp://host:8786), or 'local' to start a local cluster of --workers processes. "
        "Implies --executor dask.",
        show_default=False,
    ),
]


ModeOption = Annotated[
    str,
    typer.Option(
        "--mode",
        help="pipelined (workers check signatures while this process executes each chunk in order; fastest on few "
        "cores), partitioned (conflict-free partitions executed in parallel; docs/parallel.md), sharded (account "
        "shards resident in the workers across batches; docs/sharding.md) or sequential (this process only, the reference).",
    ),
]
WindowOption = Annotated[
    Optional[int],
    typer.Option("--window", help="partitioned and sharded modes: plan in consecutive windows of this many transactions.", show_default=False),
]


def submit(
    file: Annotated[Path, typer.Argument(help="Transactions, one JSON object per line.")],
    home: HomeOption = None,
    json_output: JsonOption = False,
    show_receipts: Annotated[bool, typer.Option("--receipts", help="List every receipt.")] = False,
    executor_kind: ExecutorOption = None,
    workers: WorkersOption = None,
    cluster: ClusterOption = None,
    mode: ModeOption = "pipelined",
    window: WindowOption = None,
) -> None:
    """Execute a file of signed transactions and commit it as batches of at most the node's bound
    (what one L1 settlement takes, unless `rollup init --max-batch-txs` said otherwise).

    The file is validated whole first: any schema error refuses it (nothing executes) and every
    bad line is listed. Invalid transactions (bad nonce, margin, ...) get rejected receipts; the
    batch goes on. A part with no accepted transaction commits no batch (its rejections are listed). Signature checks and execution run on --workers parallel workers; the result
    (receipts, state, root) is the same for every executor and worker count.
    """
    kind = get_executor_kind(executor_kind, workers, cluster)
    # a known way to run the batch
    if mode not in MODES:
        raise UserError(f"unknown --mode {mode!r}; choose one of: {', '.join(MODES)}")
    # the sequential mode runs in this process only
    if mode == "sequential" and (executor_kind is not None or workers is not None or cluster is not None):
        raise UserError("--mode sequential runs in this process: no --executor, --workers or --cluster")
    # a planning window holds at least one transaction
    if window is not None and window < 1:
        raise UserError(f"--window must be at least 1, got {window}")
    try:
        transactions = read_transaction_file(file)
    except TransactionFileError as exc:
        raise UserError(str(exc), code="invalid_file") from None
    # the pool starts before the node loads its state, so forked workers do not share (and copy) it
    with contextlib.ExitStack() as stack:
        if mode == "sequential" or (kind == "serial" and workers is None):  # the sequential reference
            options, partitions = ExecutionOptions(), 1
        else:
            executor: Executor = open_executor(stack, kind, workers, cluster)
            partitions = workers if workers is not None else get_executor_workers(executor)
            options = ExecutionOptions(mode=mode, executor=executor, partitions=partitions, window=window)
        node = open_node(home)
        try:
            result = _submit_with_progress(node, transactions, options, quiet=json_output)
        except NodeError as exc:  # a worker failed or died: nothing was committed
            raise UserError(str(exc)) from None
        finally:
            node.close()
    if json_output:
        out = submission_summary(result)
        out["executor"] = {"kind": kind, "workers": partitions, "cluster": cluster, "mode": options.mode}
        if show_receipts:
            out["receipts"] = [r.model_dump() for r in result.receipts]
        print_json(out)
        return
    _print_submission(result, show_receipts)


def get_executor_kind(executor_kind: str | None, workers: int | None, cluster: str | None) -> str:
    """The backend the options ask for (process, or dask when a cluster is named), or UserError."""
    from rollup.executors import DEFAULT_KIND, EXECUTOR_KINDS

    kind = executor_kind if executor_kind is not None else ("dask" if cluster is not None else DEFAULT_KIND)
    # a backend we have
    if kind not in EXECUTOR_KINDS:
        raise UserError(f"unknown executor {kind!r}; choose one of: {', '.join(EXECUTOR_KINDS)}")
    # at least one worker
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    # a cluster is a Dask thing
    if cluster is not None and kind != "dask":
        raise UserError(f"--cluster is for --executor dask, not {kind}")
    return kind


def open_executor(stack: contextlib.ExitStack, kind: str, workers: int | None, cluster: str | None) -> Executor:
    """Start the backend inside `stack` (shut down when it closes), or UserError."""
    from rollup.executors import ExecutorError, make_executor

    try:
        return stack.enter_context(make_executor(kind, workers, cluster))
    except ExecutorError as exc:
        raise UserError(str(exc)) from None


def _submit_with_progress(
    node: Node,
    transactions: list,
    options: ExecutionOptions,
    quiet: bool,
    max_batch_txs: int | None | object = NODE_BATCH_BOUND,
) -> Submission:
    if quiet:
        return node.submit(transactions, options, max_batch_txs=max_batch_txs)
    columns = (TextColumn("executing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console_err, transient=True) as bar:
        task = bar.add_task("batch", total=len(transactions))
        shown = dataclasses.replace(options, progress=lambda n: bar.advance(task, n))
        return node.submit(transactions, shown, max_batch_txs=max_batch_txs)


def count_rejections(receipts: list) -> dict[str, int]:
    """Rejections per reason (the reason's text before its first colon), most frequent first."""
    rejected: dict[str, int] = {}
    for r in receipts:
        if r.status == "rejected":
            reason = (r.reason or "").split(":")[0]
            rejected[reason] = rejected.get(reason, 0) + 1
    return dict(sorted(rejected.items(), key=lambda kv: -kv[1]))


def submission_summary(submission: Submission) -> dict:
    """Every batch the submission committed, the totals, and the rejections in no batch."""
    n_accepted = submission.n_accepted
    return {
        "batches": [batch_summary(b) for b in submission.batches],
        "transactions": len(submission.receipts),
        "accepted": n_accepted,
        "rejected": len(submission.receipts) - n_accepted,
        "rejections_by_reason": count_rejections(submission.receipts),
        "unbatched_rejections": [r.model_dump() for r in submission.unbatched],
        "touched_leaves": sum(len(b.diff_rows) for b in submission.batches),
        "prev_root": hex0x(submission.prev_root),
        "new_root": hex0x(submission.new_root),
    }


def batch_summary(result: BatchResult) -> dict:
    return {
        "batch": result.number,
        "transactions": len(result.receipts),
        "accepted": result.n_accepted,
        "rejected": len(result.receipts) - result.n_accepted,
        "rejections_by_reason": count_rejections(result.receipts),
        "touched_leaves": len(result.diff_rows),
        "prev_root": hex0x(result.prev_root),
        "new_root": hex0x(result.new_root),
        "timings_s": {k: round(v, 4) if isinstance(v, float) else v for k, v in result.timings.items()},
    }


def _print_submission(submission: Submission, show_receipts: bool) -> None:
    for batch in submission.batches:
        s = batch_summary(batch)
        console.print(
            f"batch [bold]{s['batch']}[/]: {s['accepted']} accepted, {s['rejected']} rejected of {s['transactions']}; "
            f"{s['touched_leaves']} leaves changed; new root {s['new_root']}  ({batch.timings['total_s']:.2f} s)"
        )
    if submission.unbatched:
        console.print(f"no batch committed for {len(submission.unbatched)} transactions: none of their part was accepted")
        for r in submission.unbatched[:10]:
            console.print(f"  transaction {r.index} ({r.type}) rejected: {r.reason}")
    s = submission_summary(submission)
    console.print(f"{len(submission.batches)} batches; state root [bold]{s['new_root']}[/]")
    if s["rejections_by_reason"]:
        top = ", ".join(f"{reason} x{n}" for reason, n in list(s["rejections_by_reason"].items())[:5])
        console.print(f"rejections: {top}")
    if show_receipts:
        _print_receipts(submission.receipts)


def _print_receipts(receipts: list) -> None:
    table = Table()
    for col in ("#", "type", "status", "reason"):
        table.add_column(col)
    for r in receipts:
        table.add_row(str(r.index), r.type, r.status, r.reason or "")
    console.print(table)


# --- status, account, batch ------------------------------------------------------------------------


def status(home: HomeOption = None, json_output: JsonOption = False) -> None:
    """The node's latest batch, state root, accounts and pools."""
    node = open_node(home)
    try:
        g = node.state.globals
        latest = node.store.latest_batch()
        out = {
            "home": str(node.home),
            "batch": node.batch_number,
            "root": hex0x(node.root),
            "accounts": len(node.state.accounts),
            "instruments": len(node.state.instruments),
            "fee_pool": g.fee_pool,
            "insurance_fund": g.insurance_fund,
            "deposits": g.deposit_count,
            "oracle_time": g.oracle_time,
            "last_batch": None
            if latest is None
            else {"number": latest.number, "transactions": latest.n_tx, "accepted": latest.n_accepted},
        }
    finally:
        node.close()
    if json_output:
        print_json(out)
        return
    console.print(f"node [bold]{out['home']}[/]: batch {out['batch']}, root {out['root']}")
    console.print(
        f"{out['accounts']} accounts, {out['instruments']} instruments, fee pool {format_usd(g.fee_pool)}, "
        f"insurance fund {format_usd(g.insurance_fund)}, {out['deposits']} deposits"
    )


def account(
    account_id: Annotated[int, typer.Argument(help="Account id.")],
    home: HomeOption = None,
    json_output: JsonOption = False,
    proof: Annotated[bool, typer.Option("--proof", help="Include a Merkle proof of the account's leaf.")] = False,
) -> None:
    """An account's collateral, nonce, positions, equity and margin."""
    from rollup.state import get_equity, get_maintenance_margin, get_margin_requirement
    from verifier.encoding import account_key

    node = open_node(home)
    try:
        acct = node.state.accounts.get(account_id)
        if acct is None:
            raise UserError(f"account {account_id} does not exist (no deposit has created it)")
        out = {
            "account": account_id,
            "address": acct.address,
            "collateral": acct.collateral,
            "nonce": acct.nonce,
            "equity": get_equity(node.state, account_id),
            "initial_margin": get_margin_requirement(node.state, account_id),
            "maintenance_margin": get_maintenance_margin(node.state, account_id),
            "positions": [
                {
                    "instrument": i,
                    "name": node.state.instruments[i].spec.name,
                    "size": p.size,
                    "cost": p.cost,
                    "funding": p.funding,
                }
                for i, p in sorted(acct.positions.items())
            ],
        }
        if proof:
            out["root"] = hex0x(node.root)
            out["proof"] = node.tree.get_account_proof(account_id)
    finally:
        node.close()
    if json_output:
        print_json(out)
        return
    console.print(f"account [bold]{account_id}[/] ({out['address']}), nonce {out['nonce']}")
    console.print(
        f"collateral {format_usd(out['collateral'])}, equity {format_usd(out['equity'])}, "
        f"initial margin {format_usd(out['initial_margin'])}, maintenance {format_usd(out['maintenance_margin'])}"
    )
    if out["positions"]:
        table = Table()
        for col in ("instrument", "size", "cost", "funding snapshot"):
            table.add_column(col)
        for p in out["positions"]:
            table.add_row(p["name"], str(p["size"]), format_usd(p["cost"]), str(p["funding"]))
        console.print(table)


def batch(
    number: Annotated[int, typer.Argument(help="Batch number (1 is the first).")],
    home: HomeOption = None,
    json_output: JsonOption = False,
    show_receipts: Annotated[bool, typer.Option("--receipts", help="List every receipt.")] = False,
    show_diff: Annotated[bool, typer.Option("--diff", help="Include the state diff (every touched leaf).")] = False,
) -> None:
    """A committed batch: roots, counts, timings; optionally receipts and the state diff."""
    node = open_node(home)
    try:
        row = node.store.get_batch(number)
        if row is None:
            raise UserError(f"batch {number} does not exist (the node has {node.batch_number} batches)")
        receipts = [wire.Receipt.model_validate_json(r) for r in node.store.get_receipts(number)]
        diff = node.store.get_diff(number) if show_diff else []
    finally:
        node.close()
    out = {
        "batch": row.number,
        "prev_root": hex0x(row.prev_root),
        "new_root": hex0x(row.new_root),
        "transactions": row.n_tx,
        "accepted": row.n_accepted,
        "rejected": row.n_tx - row.n_accepted,
        "stats": row.stats,
    }
    if show_receipts:
        out["receipts"] = [r.model_dump() for r in receipts]
    if show_diff:
        out["diff"] = [{"key": k, "before": hex0x(b), "after": hex0x(a)} for k, b, a in diff]
    if json_output:
        print_json(out)
        return
    console.print(
        f"batch [bold]{row.number}[/]: {row.n_accepted} accepted, {out['rejected']} rejected; "
        f"root {out['prev_root']} -> {out['new_root']}"
    )
    if show_receipts:
        _print_receipts(receipts)
    if show_diff:
        console.print(f"{len(diff)} leaves changed")


# --- risk ----------------------------------------------------------------------------------------


def risk(
    account_id: Annotated[int, typer.Argument(help="Account id.")],
    home: HomeOption = None,
    vol: Annotated[float, typer.Option(help="Volatility used for the option Greeks (annualised).")] = 0.6,
    rate: Annotated[float, typer.Option(help="Risk-free rate for the option Greeks.")] = 0.0,
    json_output: JsonOption = False,
) -> None:
    """An account's portfolio Greeks, equity and margin.

    Spot per underlying is read from its perpetual's mark (the node keeps integer marks, not the
    oracle's float inputs); the volatility is an input (--vol).
    """
    from rollup.risk import MarketSnapshot, RiskInputError, UnderlyingQuote, compute_portfolio_greeks
    from rollup.state import get_equity, get_maintenance_margin, get_margin_requirement
    from rollup.units import USD, get_contract_units

    node = open_node(home)
    try:
        state = node.state
        acct = state.accounts.get(account_id)
        if acct is None:
            raise UserError(f"account {account_id} does not exist (no deposit has created it)")
        if not 0.0 <= vol < 10.0:
            raise UserError(f"--vol must be between 0 and 10 (annualised, 0.6 = 60%), got {vol}")
        quotes = {}
        for inst in state.instruments.values():
            if inst.spec.kind == "perp" and inst.mark:
                spot = inst.mark / USD / get_contract_units(inst.spec.contract_size)
                quotes[inst.spec.underlying] = UnderlyingQuote(spot=spot, vol=vol, rate=rate)
        market = MarketSnapshot(timestamp=state.globals.oracle_time, quotes=quotes)
        positions = {i: p.size for i, p in acct.positions.items()}
        specs = {i: state.instruments[i].spec for i in positions}
        try:
            greeks = compute_portfolio_greeks(positions, specs, market)
        except RiskInputError as exc:
            raise UserError(f"cannot compute Greeks for account {account_id}: {exc}") from None
        out = {
            "account": account_id,
            "equity": get_equity(state, account_id),
            "initial_margin": get_margin_requirement(state, account_id),
            "maintenance_margin": get_maintenance_margin(state, account_id),
            "greeks": greeks.get_totals(),
            "by_underlying": greeks.get_by_underlying(),
        }
    finally:
        node.close()
    if json_output:
        print_json(out)
        return
    console.print(
        f"account [bold]{account_id}[/]: equity {format_usd(out['equity'])}, initial margin "
        f"{format_usd(out['initial_margin'])}, maintenance {format_usd(out['maintenance_margin'])}"
    )
    table = Table(title="Greeks by underlying (units of the underlying; vega per 1.00 vol, theta per year)")
    for col in ("underlying", "spot", "delta", "gamma", "vega", "theta"):
        table.add_column(col, justify="right")
    for name, g in out["by_underlying"].items():
        table.add_row(name, f"{g['spot']:.2f}", f"{g['delta']:.4f}", f"{g['gamma']:.6f}", f"{g['vega']:.2f}", f"{g['theta']:.2f}")
    console.print(table)
    gk = out["greeks"]
    console.print(
        f"portfolio: value {gk['value_usd']:.2f} USD, delta {gk['delta_usd']:.2f} USD, vega {gk['vega_per_pct']:.2f} USD/vol-pt, "
        f"theta {gk['theta_per_day']:.2f} USD/day"
    )


# --- schema --------------------------------------------------------------------------------------

SCHEMA_MODELS = {
    "transaction": wire.Transaction,
    **{name: model for name, model in wire.TRANSACTION_TYPES.items()},
    "receipt": wire.Receipt,
    "state_diff": wire.StateDiff,
    "batch": wire.Batch,
    "genesis": wire.Genesis,
}


def schema(
    model: Annotated[Optional[str], typer.Argument(help=f"One of: {', '.join(SCHEMA_MODELS)} (default: transaction).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Accepted for symmetry: the output is always JSON.")] = True,
) -> None:
    """Print the JSON Schema of a wire model (always JSON)."""
    name = model or "transaction"
    if name not in SCHEMA_MODELS:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(SCHEMA_MODELS)}")
    print(json.dumps(TypeAdapter(SCHEMA_MODELS[name]).json_schema(), indent=2))
