"""The L1 commands: `rollup l1 deploy|deposit|deposits|withdraw|status` and `rollup settle [BATCH]`.

The embedded L1 (py-evm through eth-tester) keeps its chain in HOME/l1/, so it persists across
calls; `--rpc-url` uses any JSON-RPC chain instead (its deployment is recorded in
HOME/l1/deployment-<chain id>.json).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

from rollup.cli.common import UserError, console, print_json
from rollup.cli.node import HomeOption, JsonOption
from rollup.cli.prove import open_store

app = typer.Typer(help="The settlement contract on an L1: deploy, deposit, withdraw, status.", no_args_is_help=True)

RpcOption = Annotated[
    Optional[str], typer.Option("--rpc-url", help="A JSON-RPC chain instead of the embedded L1 (HOME/l1).", show_default=False)
]
KeyOption = Annotated[
    Optional[str],
    typer.Option("--private-key", help="Sender's key (0x-hex); default: the L1's first dev account.", show_default=False),
]


@contextlib.contextmanager
def open_l1(home: Path, rpc_url: str | None, private_key: str | None = None) -> Iterator[Any]:
    """The L1 for this node; the embedded chain is saved after the command, even after a revert
    (the reverted transaction is a mined block, as on any chain)."""
    from contracts.chain import L1

    if rpc_url:
        yield L1.rpc(rpc_url, private_key)
        return
    l1 = L1.open(home / "l1" / "chain")
    try:
        yield l1
    finally:
        l1.save()


def get_deployment_path(home: Path, l1: Any) -> Path:
    return home / "l1" / f"deployment-{l1.w3.eth.chain_id}.json"


def load_deployment(home: Path, l1: Any) -> Any:
    from contracts.client import Deployment

    path = get_deployment_path(home, l1)
    # deployed first
    if not path.exists():
        raise UserError(f"no rollup is deployed on this L1 for {home}: run `rollup l1 deploy`")
    return Deployment.load(path)


def get_shape(store: Any, n_slots: int) -> Any:
    from rollup.publish import get_genesis
    from verifier.segment import SegmentShape

    return SegmentShape.from_genesis(get_genesis(store), n_slots)


@contextlib.contextmanager
def l1_errors() -> Iterator[None]:
    from contracts.chain import L1Revert
    from contracts.client import SettlementError

    try:
        yield
    except (L1Revert, SettlementError) as exc:
        raise UserError(str(exc)) from None


def deploy(
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Deploy the rollup's contracts (Groth16 verifier with this node's key, batch verifier,
    settlement contract at the genesis root). Needs `rollup setup` first."""
    from contracts.client import deploy_rollup
    from prover.pipeline import ProvingError, get_current_keys, get_key_paths
    from rollup.publish import get_genesis
    from verifier.snarkjs import read_json

    with open_store(home) as (target, store):
        try:
            vk_hash, n_slots = get_current_keys(target, store)
        except ProvingError as exc:
            raise UserError(str(exc)) from None
        genesis = get_genesis(store)
        genesis_root = bytes.fromhex(store.get_meta("genesis_root") or "")
        shape = get_shape(store, n_slots)
    with open_l1(target, rpc_url, private_key) as l1, l1_errors():
        path = get_deployment_path(target, l1)
        # one deployment per node and chain
        if path.exists():
            raise UserError(f"already deployed on this L1 ({path}); remove the file to deploy again")
        deployment = deploy_rollup(l1, genesis, shape, read_json(get_key_paths(target)[1]), vk_hash, genesis_root)
        deployment.save(path)
    info = {"rollup": deployment.rollup, "batch_verifier": deployment.batch_verifier, "groth16_verifier": deployment.groth16_verifier, "n_slots": n_slots}
    if json_output:
        print_json(info)
        return
    console.print(f"deployed: rollup {deployment.rollup}, batch verifier {deployment.batch_verifier}, Groth16 verifier {deployment.groth16_verifier}")


def deposit(
    amount: Annotated[int, typer.Option("--amount", help="Collateral units (1e-6 USD).")],
    key: Annotated[str, typer.Option("--key", help="The depositor's private key (0x-hex): it owns the account.")],
    account: Annotated[
        Optional[int],
        typer.Option("--account", help="Your L2 account to top up (default: open a new account; the contract assigns its id).", show_default=False),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Append the L2 deposit transaction to this JSONL file.", show_default=False)
    ] = None,
    rpc_url: RpcOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Deposit on L1 (the queue): to a new account (the contract assigns its id) or to one of
    yours. The queue entry authorises the L2 Deposit that consumes it (no L2 signature); it is
    printed, or appended to --out (`rollup l1 deposits` lists every queued one)."""
    from contracts.client import UNIT_WEI, get_contracts, l1_deposit

    private_key = parse_key(key)
    target = resolve(home)
    with open_l1(target, rpc_url) as l1, l1_errors():
        deployment = load_deployment(target, l1)
        with open_store(target) as (_, store):
            shape = get_shape(store, deployment.n_slots)
        contracts = get_contracts(l1, deployment, shape)
        tx = l1_deposit(l1, contracts, account, amount, private_key)
    line = tx.model_dump_json()
    if out is not None:
        with out.open("a") as f:
            f.write(line + "\n")
    info = {"deposit_id": tx.deposit_id, "account": tx.account, "amount": amount, "wei": amount * UNIT_WEI, "address": tx.address, "l2_transaction": tx.model_dump()}
    if json_output:
        print_json(info)
        return
    console.print(f"L1 deposit {tx.deposit_id}: {amount} units to account {tx.account} from {tx.address}")
    if out is None:
        console.print(line)


def deposits(
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Write them as L2 Deposit transactions to this JSONL file (for `rollup submit`).", show_default=False)
    ] = None,
    start: Annotated[
        Optional[int], typer.Option("--from", help="First queue entry (default: the first the node has not executed).", show_default=False)
    ] = None,
    rpc_url: RpcOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """The L1 deposit queue's entries the node has not executed, in queue order, as the L2
    Deposit transactions that consume them: the sequencer includes them as they are (the queue
    entry is their authorisation)."""
    from contracts.client import get_contracts, get_queued_deposits
    from verifier.encoding import GLOBALS_KEY, decode_globals_leaf

    target = resolve(home)
    with open_l1(target, rpc_url) as l1, l1_errors():
        deployment = load_deployment(target, l1)
        with open_store(target) as (_, store):
            shape = get_shape(store, deployment.n_slots)
            if start is None:
                start = decode_globals_leaf(store.get_leaf(GLOBALS_KEY) or b"").deposit_count
        queued = get_queued_deposits(get_contracts(l1, deployment, shape), start)
    if out is not None:
        out.write_text("".join(tx.model_dump_json() + "\n" for tx in queued))
    if json_output:
        print_json({"from": start, "deposits": [tx.model_dump() for tx in queued]})
        return
    for tx in queued:
        console.print(f"deposit {tx.deposit_id}: {tx.amount} units to account {tx.account} from {tx.address}")
    if not queued:
        console.print(f"no queued deposit from {start} on")


def parse_key(text: str) -> bytes:
    body = text.removeprefix("0x")
    # 32 bytes of hex
    try:
        key = bytes.fromhex(body)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise UserError("--key must be a 0x-prefixed 32-byte hex private key")
    return key


def settle(
    batch: Annotated[Optional[int], typer.Argument(help="Batch to settle (default: every proven, unsettled one).", show_default=False)] = None,
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Settle proven batches on L1, in order: the contract checks every proof, window, signature
    and the roots. Prints the gas used per batch and per transaction."""
    from contracts.client import build_submit_args, get_contracts, submit_batch
    from rollup.publish import PublishError, build_published

    results = []
    with open_l1(resolve(home), rpc_url, private_key) as l1, l1_errors():
        deployment = load_deployment(resolve(home), l1)
        with open_store(home) as (target, store):
            shape = get_shape(store, deployment.n_slots)
            contracts = get_contracts(l1, deployment, shape)
            settled = contracts.rollup.functions.batch_number().call()
            latest = store.latest_batch()
            last = latest.number if latest else 0
            numbers = [batch] if batch is not None else list(range(settled + 1, last + 1))
            # the next batch, committed
            if batch is not None and batch != settled + 1:
                raise UserError(f"batch {batch} cannot settle: the L1 is at batch {settled}, the next is {settled + 1}")
            if not numbers:
                raise UserError(f"nothing to settle: the L1 is at batch {settled}, the node at {last}")
            for number in numbers:
                try:
                    published = build_published(target, store, number)
                except PublishError as exc:
                    raise UserError(str(exc)) from None
                result = submit_batch(l1, contracts, build_submit_args(published, shape))
                results.append(result)
                if not json_output:
                    console.print(
                        f"batch {result.batch} settled: {result.gas_used:,} gas, {result.transactions} transactions, "
                        f"{result.gas_per_transaction:,.0f} gas per transaction, calldata {result.calldata_bytes:,} bytes"
                    )
    if json_output:
        from dataclasses import asdict

        print_json({"settled": [asdict(r) for r in results]})


def resolve(home: Path | None) -> Path:
    from rollup.node import resolve_home

    return resolve_home(home)


def withdraw(
    batch: Annotated[int, typer.Argument(help="Settled batch whose withdrawals to claim.")],
    index: Annotated[Optional[int], typer.Option("--index", help="Only this withdrawal of the batch.", show_default=False)] = None,
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Claim a settled batch's withdrawals on L1 (each once, with its proof; paid to the account's address)."""
    from contracts.client import claim_withdrawals, get_contracts
    from rollup.publish import PublishError, build_published

    target = resolve(home)
    with open_l1(target, rpc_url, private_key) as l1, l1_errors():
        deployment = load_deployment(target, l1)
        with open_store(target) as (_, store):
            shape = get_shape(store, deployment.n_slots)
            try:
                published = build_published(target, store, batch)
            except PublishError as exc:
                raise UserError(str(exc)) from None
        contracts = get_contracts(l1, deployment, shape)
        paid = claim_withdrawals(l1, contracts, published, index)
    if json_output:
        print_json({"batch": batch, "claimed": paid})
        return
    for claim in paid:
        console.print(f"paid {claim['amount']} units to {claim['recipient']} (batch {batch}, withdrawal {claim['index']})")


def status(
    rpc_url: RpcOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """The settlement contract's state: root, batch, deposit queue, escape hatch, balance."""
    from contracts.client import get_contracts, get_status

    target = resolve(home)
    with open_l1(target, rpc_url) as l1, l1_errors():
        deployment = load_deployment(target, l1)
        with open_store(target) as (_, store):
            shape = get_shape(store, deployment.n_slots)
        info = get_status(l1, get_contracts(l1, deployment, shape))
    if json_output:
        print_json(info)
        return
    for name, value in info.items():
        console.print(f"{name}: {value}")


# --- escape hatch -------------------------------------------------------------------------------


@contextlib.contextmanager
def open_settled(home: Path | None, rpc_url: str | None, private_key: str | None = None) -> Iterator[tuple[Any, Any, Any, int]]:
    """(l1, contracts, store, last settled batch) for the escape-hatch commands."""
    from contracts.client import get_contracts
    from contracts.escape import EscapeError

    target = resolve(home)
    with open_l1(target, rpc_url, private_key) as l1, l1_errors(), open_store(target) as (_, store):
        deployment = load_deployment(target, l1)
        contracts = get_contracts(l1, deployment, get_shape(store, deployment.n_slots))
        try:
            yield l1, contracts, store, contracts.rollup.functions.batch_number().call()
        except EscapeError as exc:
            raise UserError(str(exc)) from None


def force_withdraw(
    account: Annotated[int, typer.Option("--account", help="L2 account id (yours: you made its first L1 deposit).")],
    amount: Annotated[int, typer.Option("--amount", help="Collateral units (1e-6 USD).")],
    key: Annotated[str, typer.Option("--key", help="The account owner's private key (0x-hex).")],
    rpc_url: RpcOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Force a withdrawal from L1: signs the L2 Withdraw (the account's next nonce, from the node)
    and records it on L1; the sequencer must settle it or dismiss it as invalid before the deadline,
    else anyone may freeze the rollup."""
    from contracts.escape import get_account_proof, request_forced_withdrawal
    from rollup.publish import get_genesis
    from verifier.encoding import decode_account_leaf

    private_key = parse_key(key)
    with open_settled(home, rpc_url) as (l1, contracts, store, _):
        latest = store.latest_batch()
        leaf, _ = get_account_proof(store, account, latest.number if latest else 0)
        # the account exists on L2
        if not leaf:
            raise UserError(f"account {account} has no leaf on L2 yet: its deposit is not executed")
        nonce = decode_account_leaf(leaf).nonce
        result = request_forced_withdrawal(l1, contracts, get_genesis(store).signing_domain, account, amount, nonce, private_key)
    if json_output:
        print_json({**result.args, "gas_used": result.gas_used})
        return
    console.print(f"forced withdrawal {result.args['request_id']}: {amount} units from account {account}, deadline batch {result.args['deadline_batch']}")


def forced(
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Write the pending requests' L2 Withdraw transactions to this JSONL file (for `rollup submit`).", show_default=False)
    ] = None,
    rpc_url: RpcOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Pending forced withdrawals (oldest first), with the signed L2 transactions to include."""
    from contracts.escape import get_pending_forced_withdrawals

    with open_settled(home, rpc_url) as (_, contracts, _, _):
        pending = get_pending_forced_withdrawals(contracts)
    if out is not None:
        out.write_text("".join(tx.model_dump_json() + "\n" for _, tx in pending))
    rows = [{"request_id": i, "account": tx.account, "amount": tx.amount, "nonce": tx.nonce} for i, tx in pending]
    if json_output:
        print_json({"pending": rows})
        return
    for row in rows:
        console.print(f"request {row['request_id']}: account {row['account']}, {row['amount']} units, nonce {row['nonce']}")
    if not rows:
        console.print("no forced withdrawal is pending")


def dismiss(
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Dismiss the oldest pending forced withdrawal with its account's leaf at the settled root
    (refused on chain if the L2 would accept the withdrawal)."""
    from contracts.escape import dismiss_forced_withdrawal, get_account_proof, get_pending_forced_withdrawals

    with open_settled(home, rpc_url, private_key) as (l1, contracts, store, settled):
        pending = get_pending_forced_withdrawals(contracts)
        # something to dismiss
        if not pending:
            raise UserError("no forced withdrawal is pending")
        leaf, proof = get_account_proof(store, pending[0][1].account, settled)
        result = dismiss_forced_withdrawal(l1, contracts, leaf, proof)
    if json_output:
        print_json({**result.args, "gas_used": result.gas_used})
        return
    console.print(f"forced withdrawal {result.args['request_id']} dismissed: {result.args['reason']}")


def freeze(
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Freeze the rollup: allowed once the oldest pending forced withdrawal is overdue."""
    from contracts.escape import freeze as freeze_rollup

    with open_settled(home, rpc_url, private_key) as (l1, contracts, _, _):
        result = freeze_rollup(l1, contracts)
    if json_output:
        print_json({**result.args, "gas_used": result.gas_used})
        return
    console.print(f"the rollup is frozen (forced withdrawal {result.args['request_id']} was not served)")


def exit_command(
    account: Annotated[int, typer.Option("--account", help="L2 account id to exit.")],
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """After a freeze: pay an account's collateral to its address, proven against the last settled root."""
    from contracts.escape import exit_account, get_exit_proof

    with open_settled(home, rpc_url, private_key) as (l1, contracts, store, settled):
        leaf, proof = get_exit_proof(store, account, settled)
        result = exit_account(l1, contracts, account, leaf, proof)
    if json_output:
        print_json({**result.args, "gas_used": result.gas_used})
        return
    console.print(f"account {account} exited: {result.args['amount']} units paid to {result.args['recipient']}")


for _command in (deploy, deposit, deposits, withdraw, status, force_withdraw, forced, dismiss, freeze):
    app.command(_command.__name__.replace("_", "-"))(_command)
app.command("exit")(exit_command)
