"""The L1 commands: `rollup l1 deploy|deposit|deposits|withdraw|status|force-withdraw|forced|dismiss|freeze|exit|reclaim` and `rollup settle [BATCH]`.

The embedded L1 (py-evm through eth-tester) keeps its chain in HOME/l1/, so it persists across
calls; `--rpc-url` uses any JSON-RPC chain instead (its deployment is recorded in
HOME/l1/deployment-<chain id>.json).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

from rollup.cli.common import UserError, console, print_json
from rollup.cli.keys import DevKeyOption, InteractiveOption, KeySource, KeystoreDirOption, KeystoreOption, PasswordFileOption, load_private_key
from rollup.cli.node import HomeOption, JsonOption
from rollup.cli.prove import open_store

MAX_DEPLOY_SEGMENTS = 128  # segments one settlement verifies (the pairing takes 3 more pairs)

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
    from contracts.deployment import Deployment

    path = get_deployment_path(home, l1)
    # deployed first
    if not path.exists():
        raise UserError(f"no rollup is deployed on this L1 for {home}: run `rollup l1 deploy`")
    try:
        return Deployment.load(path)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None


@contextlib.contextmanager
def l1_errors() -> Iterator[None]:
    from contracts.chain import L1Error
    from contracts.deployment import SettlementError
    from contracts.escape import EscapeError
    from contracts.transition_client import SettlementTooLarge
    from verifier.encoding import InvalidKey

    try:
        yield
    except (L1Error, SettlementError, SettlementTooLarge, EscapeError, InvalidKey) as exc:
        raise UserError(str(exc)) from None


@contextlib.contextmanager
def open_rollup(home: Path | None, rpc_url: str | None, private_key: str | None = None) -> Iterator[tuple[Any, Any, Any, Any, Any]]:
    """(l1, the deployment's contracts, the node's store, the genesis, the deployment record) of this home's deployment."""
    from rollup.publish import get_genesis
    from contracts.deployment import open_contracts

    target = resolve(home)
    with open_l1(target, rpc_url, private_key) as l1, l1_errors(), open_store(target) as (_, store):
        deployment = load_deployment(target, l1)
        genesis = get_genesis(store)
        yield l1, open_contracts(l1, deployment, genesis), store, genesis, deployment


def deploy_for_node(l1: Any, target: Path, store: Any) -> Any:
    """Deploy the contracts for the node in `target` (its genesis, key, segment size and batch
    bound) on `l1` and record the deployment; returns the record."""
    from contracts.deployment import DEFAULT_FORCED_DELAY_BATCHES, DEFAULT_FORCED_DELAY_SECONDS, get_max_segments, get_max_settlement_bytes, get_shape, record_deployment
    from contracts.transition_client import TX_SIZE_LIMIT, deploy_v3
    from prover.pipeline import ProvingError, get_current_keys, get_key_paths
    from rollup.node import MAX_BATCH_ORACLE_UPDATES, MAX_BATCH_TXS_META, get_settlement_bound
    from rollup.publish import get_genesis
    from verifier.snarkjs import read_json

    try:
        vk_hash, n_slots = get_current_keys(target, store)
    except ProvingError as exc:
        raise UserError(str(exc)) from None
    genesis = get_genesis(store)
    genesis_root = int.from_bytes(bytes.fromhex(store.get_meta("genesis_root") or ""), "big")
    stored = store.get_meta(MAX_BATCH_TXS_META)
    bound = get_settlement_bound() if stored is None else json.loads(stored)
    # every batch the node commits must settle: the contracts are sized for its largest
    if bound is None:
        raise UserError("this node's batches are unbounded (execution only, `rollup init --max-batch-txs 0`): they cannot be settled")
    max_segments = get_max_segments(bound, MAX_BATCH_ORACLE_UPDATES, n_slots)
    if max_segments > MAX_DEPLOY_SEGMENTS:
        raise UserError(
            f"batches of up to {bound} transactions need up to {max_segments} segments of {n_slots} slots, over the "
            f"{MAX_DEPLOY_SEGMENTS} one settlement verifies: run `rollup setup --slots` with more slots per segment"
        )
    path = get_deployment_path(target, l1)
    # one deployment per node and chain
    if path.exists():
        raise UserError(f"already deployed on this L1 ({path}); remove the file to deploy again")
    shape = get_shape(genesis, n_slots, max_segments, bound)
    size = get_max_settlement_bytes(shape, MAX_BATCH_ORACLE_UPDATES)
    # a full batch must fit one transaction a public mempool carries
    if size > TX_SIZE_LIMIT:
        raise UserError(
            f"a full batch of {bound} transactions can need a {size:,}-byte settlement, over the {TX_SIZE_LIMIT:,}-byte "
            "transaction limit of geth and reth: `rollup init --max-batch-txs` with a smaller bound"
        )
    with l1_errors():
        contracts = deploy_v3(
            l1, shape, read_json(get_key_paths(target)[1]), genesis, genesis_root, DEFAULT_FORCED_DELAY_BATCHES, DEFAULT_FORCED_DELAY_SECONDS
        )
    deployment = record_deployment(contracts, vk_hash, genesis_root)
    deployment.save(path)
    return deployment


def deploy(
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Deploy the rollup's contracts (the settlement contract at the genesis root, the circuit-v3 verifier with this node's key, the EVM Poseidon for the escape hatch), compiled for this node's segment size and batch bound. Needs `rollup setup` first."""
    target = resolve(home)
    with open_store(target) as (_, store), open_l1(target, rpc_url, private_key) as l1:
        deployment = deploy_for_node(l1, target, store)
    info = {
        "rollup": deployment.rollup, "verifier": deployment.verifier, "poseidon3": deployment.poseidon3, "poseidon4": deployment.poseidon4, "poseidon6": deployment.poseidon6,
        "n_slots": deployment.n_slots, "max_segments": deployment.max_segments, "max_batch_txs": deployment.max_slots,
    }
    if json_output:
        print_json(info)
        return
    console.print(
        f"deployed: rollup {deployment.rollup}, verifier {deployment.verifier} ({deployment.n_slots}-slot segments, "
        f"at most {deployment.max_segments} per settlement)"
    )


def deposit(
    amount: Annotated[int, typer.Option("--amount", help="Collateral units (1e-6 USD).")],
    keystore: KeystoreOption = None,
    keystore_dir: KeystoreDirOption = None,
    password_file: PasswordFileOption = None,
    interactive: InteractiveOption = False,
    key: DevKeyOption = None,
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
    """Deposit on L1 (the queue) from the depositor's key (--keystore, --interactive, $ROLLUP_PRIVATE_KEY; --key for tests), which owns the account: to a new account (the contract assigns its id) or to one of yours. The queue entry authorises the L2 Deposit that consumes it (no L2 signature); it is printed, or appended to --out (`rollup l1 deposits` lists every queued one)."""
    from contracts.deployment import GAS_MONEY, UNIT_WEI, fund_on_dev_chain
    from contracts.transition_client import deposit as l1_deposit
    from rollup.signing import get_address

    private_key = load_private_key(KeySource(keystore, keystore_dir, password_file, interactive, key, home))
    with open_rollup(home, rpc_url) as (l1, contracts, _, _, _):
        address = get_address(private_key)
        # gas money and the deposit itself, from a dev account on a dev chain
        fund_on_dev_chain(l1, address, amount * UNIT_WEI + GAS_MONEY)
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
    """The L1 deposit queue's entries the node has not executed, in queue order, as the L2 Deposit transactions that consume them: the sequencer includes them as they are (the queue entry is their authorisation)."""
    from contracts.deployment import get_queued_deposits
    from verifier.encoding import GLOBALS_KEY, decode_globals_leaf

    with open_rollup(home, rpc_url) as (_, contracts, store, _, _):
        if start is None:
            start = decode_globals_leaf(store.get_leaf(GLOBALS_KEY) or b"").deposit_count
        queued = get_queued_deposits(contracts.rollup, start)
    if out is not None:
        out.write_text("".join(tx.model_dump_json() + "\n" for tx in queued))
    if json_output:
        print_json({"from": start, "deposits": [tx.model_dump() for tx in queued]})
        return
    for tx in queued:
        console.print(f"deposit {tx.deposit_id}: {tx.amount} units to account {tx.account} from {tx.address}")
    if not queued:
        console.print(f"no queued deposit from {start} on")


def settle(
    batch: Annotated[Optional[int], typer.Argument(help="Batch to settle (default: every proven, unsettled one).", show_default=False)] = None,
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Settle proven batches on L1, in order, one L1 transaction each: the contract checks the chain of roots, the Ethereum signatures of withdrawals and key registrations (ecrecover over the published records; the L2 signatures are proven), the deposit queue, and every segment proof in one batched pairing check. Prints the gas used per batch and per transaction."""
    from contracts.transition_client import settle as settle_batch
    from rollup.publish import PublishError, build_published

    results = []
    with open_rollup(home, rpc_url, private_key) as (l1, contracts, store, _, _):
        target = resolve(home)
        settled = contracts.rollup.functions.batch_number().call()
        latest = store.latest_batch()
        last = latest.number if latest else 0
        numbers = [batch] if batch is not None else list(range(settled + 1, last + 1))
        # the next batch, committed
        if batch is not None and batch != settled + 1:
            raise UserError(f"batch {batch} cannot settle: the L1 is at batch {settled}, the next is {settled + 1}")
        if not numbers:
            message = f"nothing to settle: the L1 is at batch {settled}, the node at {last}"
            if json_output:
                print_json({"settled": [], "message": message})
            else:
                console.print(message)
            return
        for number in numbers:
            try:
                published = build_published(target, store, number)
            except PublishError as exc:
                raise UserError(str(exc)) from None
            result = settle_batch(l1, contracts, published.batch, published.proofs)
            row = {
                "batch": result.batch, "gas_used": result.gas_used, "transactions": result.transactions,
                "gas_per_transaction": round(result.gas_used / max(result.transactions, 1)), "segments": result.segments,
                "calldata_bytes": result.calldata_bytes, "new_root": published.batch.new_root,
            }
            results.append(row)
            if not json_output:
                console.print(
                    f"batch {row['batch']} settled: {row['gas_used']:,} gas, {row['transactions']} transactions in {row['segments']} segments, "
                    f"{row['gas_per_transaction']:,} gas per transaction, {row['calldata_bytes']:,} bytes"
                )
    if json_output:
        print_json({"settled": results})


def resolve(home: Path | None) -> Path:
    from rollup.node import resolve_home

    return resolve_home(home)


def withdraw(
    account: Annotated[int, typer.Option("--account", help="The L2 account whose settled withdrawals to claim.")],
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Claim an account's settled withdrawals on L1: paid to the address that opened the account, once."""
    from contracts.transition_client import claim_withdrawal

    with open_rollup(home, rpc_url, private_key) as (l1, contracts, _, _, _):
        functions = contracts.rollup.functions
        amount = functions.withdrawable(account).call()
        recipient = functions.account_owner(account).call()
        result = claim_withdrawal(l1, contracts, account)
    info = {"account": account, "recipient": recipient, "amount": amount, "gas_used": result["gasUsed"]}
    if json_output:
        print_json(info)
        return
    console.print(f"paid {amount} units to {recipient} (account {account})")


def status(
    rpc_url: RpcOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """The settlement contract's state: root, batch, deposit queue, escape hatch, balance."""
    from contracts.deployment import get_status

    with open_rollup(home, rpc_url) as (l1, contracts, _, _, _):
        info = get_status(l1, contracts.rollup)
    if json_output:
        print_json(info)
        return
    for name, value in info.items():
        console.print(f"{name}: {value}")


# --- escape hatch -------------------------------------------------------------------------------


def print_escape_json(result: Any, json_output: bool) -> bool:
    """An escape-hatch call's result as JSON (its event's fields and the gas), if asked for."""
    if json_output:
        print_json({**result.args, "gas_used": result.gas_used})
    return json_output


def get_settled_opening(contracts: Any, store: Any, genesis: Any, account: int) -> Any:
    """The account's leaf opened at the L1's last settled batch, from the node's store."""
    from rollup.state_tree import get_settled_opening as open_leaf

    functions = contracts.rollup.functions
    settled = functions.batch_number().call()
    try:
        return open_leaf(store, genesis, account, settled, functions.state_root().call())
    except ValueError as exc:
        raise UserError(f"cannot open account {account} at the settled batch {settled}: {exc}") from None


def force_withdraw(
    account: Annotated[int, typer.Option("--account", help="L2 account id (yours: you opened it on L1).")],
    amount: Annotated[int, typer.Option("--amount", help="Collateral units (1e-6 USD).")],
    keystore: KeystoreOption = None,
    keystore_dir: KeystoreDirOption = None,
    password_file: PasswordFileOption = None,
    interactive: InteractiveOption = False,
    key: DevKeyOption = None,
    rpc_url: RpcOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Force a withdrawal from L1: signs the L2 Withdraw (the account's next nonce, from the node) and records it on L1; the sequencer must settle it or dismiss it as invalid before the deadline, else anyone may freeze the rollup."""
    from contracts.escape import request_forced_withdrawal
    from verifier.encoding import account_key, decode_account_leaf

    private_key = load_private_key(KeySource(keystore, keystore_dir, password_file, interactive, key, home))
    with open_rollup(home, rpc_url) as (l1, contracts, store, genesis, _):
        leaf = store.get_leaf(account_key(account))
        # the account exists on L2
        if not leaf:
            raise UserError(f"account {account} has no leaf on L2 yet: its deposit is not executed")
        nonce = decode_account_leaf(leaf).nonce
        result = request_forced_withdrawal(l1, contracts.rollup, genesis.signing_domain, account, amount, nonce, private_key)
    if print_escape_json(result, json_output):
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

    with open_rollup(home, rpc_url) as (_, contracts, _, _, _):
        pending = get_pending_forced_withdrawals(contracts.rollup)
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
    """Dismiss the oldest pending forced withdrawal with its account's leaf at the settled root (refused on chain if the L2 would accept the withdrawal)."""
    from contracts.escape import dismiss_forced_withdrawal, get_pending_forced_withdrawals

    with open_rollup(home, rpc_url, private_key) as (l1, contracts, store, genesis, _):
        pending = get_pending_forced_withdrawals(contracts.rollup)
        # something to dismiss
        if not pending:
            raise UserError("no forced withdrawal is pending")
        opening = get_settled_opening(contracts, store, genesis, pending[0][1].account)
        result = dismiss_forced_withdrawal(l1, contracts.rollup, opening)
    if print_escape_json(result, json_output):
        return
    console.print(f"forced withdrawal {result.args['request_id']} dismissed: {result.args['reason']}")


def freeze(
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Freeze the rollup: allowed once the oldest pending forced withdrawal or queued deposit is overdue."""
    from contracts.escape import freeze as freeze_rollup

    with open_rollup(home, rpc_url, private_key) as (l1, contracts, _, _, _):
        result = freeze_rollup(l1, contracts.rollup)
    if print_escape_json(result, json_output):
        return
    console.print("the rollup is frozen: accounts exit with `rollup l1 exit`, unconsumed deposits return with `rollup l1 reclaim`")


def exit_command(
    account: Annotated[int, typer.Option("--account", help="L2 account id to exit.")],
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """After a freeze: pay an account's collateral to its address, its leaf proven against the last settled root."""
    from contracts.escape import exit_account

    with open_rollup(home, rpc_url, private_key) as (l1, contracts, store, genesis, _):
        result = exit_account(l1, contracts.rollup, get_settled_opening(contracts, store, genesis, account))
    if print_escape_json(result, json_output):
        return
    console.print(f"account {account} exited: {result.args['amount']} units paid to {result.args['recipient']}")


def reclaim(
    rpc_url: RpcOption = None,
    private_key: KeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """After a freeze: refund every queued deposit the L2 never consumed to its sender."""
    from contracts.deployment import get_queued_deposits
    from contracts.escape import reclaim_deposit

    with open_rollup(home, rpc_url, private_key) as (l1, contracts, _, _, _):
        functions = contracts.rollup.functions
        # refunds open with the freeze (the contract says so, but say it before sending anything)
        if not functions.frozen().call():
            raise UserError("deposits are reclaimed only once the rollup is frozen")
        unconsumed = [d for d in get_queued_deposits(contracts.rollup, functions.deposits_consumed().call()) if not functions.deposit_reclaimed(d.deposit_id).call()]
        results = [reclaim_deposit(l1, contracts.rollup, d) for d in unconsumed]
    rows = [{**r.args, "gas_used": r.gas_used} for r in results]
    if json_output:
        print_json({"reclaimed": rows})
        return
    for row in rows:
        console.print(f"deposit {row['deposit_id']}: {row['amount']} units returned to {row['recipient']}")
    if not rows:
        console.print("no unconsumed deposit to reclaim")


for _command in (deploy, deposit, deposits, withdraw, status, force_withdraw, forced, dismiss, freeze, reclaim):
    app.command(_command.__name__.replace("_", "-"))(_command)
app.command("exit")(exit_command)
