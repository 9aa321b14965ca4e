"""End to end through the CLI on a real EVM (py-evm): deploy, deposit on L1, L2 deposits and a
trade, prove, settle (RollupV3 checks the root chain, signatures, the deposit queue and the
proofs), withdraw on L1, and the escape-hatch commands. The tamper cases of the settlement
contract are in tests/test_l1_transition.py.

The node proves with one transaction per segment (`--slots 1`) and a 16-account tree, so the
setup stays small.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rollup.cli.main import app
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.signing import dev_account_key, get_address
from verifier.wire import Withdraw

pytestmark = pytest.mark.slow

runner = CliRunner()
SEED = 3
WITHDRAWN = 1_000_000  # units (1 USD)
TRANSFERRED = 250_000


def run(*args: str, code: int = 0, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.stdout if "--json" in args else result.output


def run_json(*args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(run(*args, "--json", env=env))


def write_lines(path: Path, txs: list) -> Path:
    path.write_text("".join(tx.model_dump_json() + "\n" for tx in txs))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Any]:
    """A node at genesis, its keys, and the rollup deployed on the embedded L1 in HOME/l1."""
    root = tmp_path_factory.mktemp("l1")
    workload = generate_workload(WorkloadSpec(accounts=2, perps=1, series=1, txs=1, seed=SEED, tree_depth=2), workers=1)
    # each trader registers its L2 key before its first L2 signature
    assert [tx.type for tx in workload.transactions] == ["deposit", "deposit", "oracle_update", "register_key", "register_key", "option_trade"]
    (root / "genesis.json").write_text(workload.genesis.model_dump_json())
    home = root / "home"
    run("init", "--home", str(home), "--genesis", str(root / "genesis.json"), "--max-batch-txs", "8", "--json")
    run("setup", "--slots", "1", "--home", str(home), "--json")
    deployed = run_json("l1", "deploy", "--home", str(home))
    keys = {get_address(dev_account_key(SEED, i)): dev_account_key(SEED, i) for i in range(2)}
    return {"root": root, "home": home, "workload": workload, "deployed": deployed, "keys": keys}


def open_contracts(home: Path) -> tuple[Any, Any]:
    from contracts.chain import L1
    from contracts.deployment import Deployment, open_contracts as open_deployed
    from rollup.cli.l1 import get_deployment_path
    from rollup.publish import get_genesis
    from rollup.storage import Store

    l1 = L1.open(home / "l1" / "chain")
    deployment = Deployment.load(get_deployment_path(home, l1))
    store = Store.open(home)
    try:
        genesis = get_genesis(store)
    finally:
        store.close()
    return l1, open_deployed(l1, deployment, genesis)


def settle_reason(home: Path, batch: int) -> str:
    """The contract's revert reason for settling `batch` now (a call: nothing is mined)."""
    from contracts.transition_client import encode_settlement
    from rollup.publish import build_published
    from rollup.storage import Store

    l1, contracts = open_contracts(home)
    store = Store.open(home)
    try:
        published = build_published(home, store, batch)
    finally:
        store.close()
    proofs, data = encode_settlement(published.batch, published.proofs)
    with pytest.raises(Exception) as info:  # web3's ContractLogicError (eth-tester's TransactionFailed)
        contracts.rollup.functions.settle(proofs, data).call({"gas": 29_000_000})
    return str(info.value)


@pytest.fixture(scope="module")
def settled(world) -> dict[str, Any]:
    """Batch 1 (two deposits) settled, after a first try with only one deposit queued on L1."""
    home, workload, root = world["home"], world["workload"], world["root"]
    deposits = workload.transactions[:2]
    # the first L1 deposit, through the CLI: its L2 transaction is the workload's own
    first = deposits[0]
    out = root / "l2-deposits.jsonl"
    key = "0x" + world["keys"][first.address].hex()
    info = run_json("l1", "deposit", "--amount", str(first.amount), "--key", key, "--out", str(out), "--home", str(home))
    assert info["deposit_id"] == 0 and info["account"] == first.account  # the contract assigned the id
    assert out.read_text().strip() == first.model_dump_json()
    run_json("submit", str(write_lines(root / "b1.jsonl", deposits)), "--home", str(home), "--executor", "serial")
    run_json("prove", "--home", str(home), "--executor", "serial")
    # the second deposit is not on L1 yet: the batch would credit a deposit nobody made
    assert "deposits do not match the L1 queue" in settle_reason(home, 1)
    second = deposits[1]
    key = "0x" + world["keys"][second.address].hex()
    run_json("l1", "deposit", "--amount", str(second.amount), "--key", key, "--home", str(home))
    # the node reads the queue: the L2 deposits are the L1 entries; it has executed both
    assert run_json("l1", "deposits", "--from", "0", "--home", str(home))["deposits"] == [tx.model_dump() for tx in deposits]
    assert run_json("l1", "deposits", "--home", str(home)) == {"from": 2, "deposits": []}
    out = run_json("settle", "--home", str(home))
    assert [r["batch"] for r in out["settled"]] == [1]
    return {"batch1": out["settled"][0]}


@pytest.fixture(scope="module")
def pending(world, settled) -> dict[str, Any]:
    """Batch 2 (an oracle update, two key registrations and an option trade) and batch 3 (a transfer,
    a withdrawal and a key registration), proven, not settled."""
    home, workload, root = world["home"], world["workload"], world["root"]
    run_json("submit", str(write_lines(root / "b2.jsonl", workload.transactions[2:])), "--home", str(home), "--executor", "serial")
    account = workload.transactions[-1].buyer
    address = next(tx.address for tx in workload.transactions[:2] if tx.account == account)
    # a transfer and a withdrawal made with the CLI alone, signed from the environment's key
    other = next(tx.account for tx in workload.transactions[:2] if tx.account != account)
    env = {"ROLLUP_PRIVATE_KEY": "0x" + world["keys"][address].hex()}
    lines = root / "b3.jsonl"
    run("tx", "transfer", "--from", str(account), "--to", str(other), "--amount", str(TRANSFERRED), "--home", str(home), "--out", str(lines), env=env)
    run("tx", "withdraw", "--account", str(account), "--amount", str(WITHDRAWN), "--home", str(home), "--out", str(lines), env=env)
    # and its L2 key, derived from the same wallet key and registered with it (the contract ecrecovers it)
    run("key", "register", "--account", str(account), "--home", str(home), "--out", str(lines), env=env)
    out = run_json("submit", str(lines), "--home", str(home), "--executor", "serial")
    assert out["accepted"] == 3
    run_json("prove", "--home", str(home), "--executor", "serial")
    return {"account": account, "address": address}


def test_deposit_trade_settle_withdraw(world, pending):
    home = world["home"]
    account, address = pending["account"], pending["address"]
    out = run_json("settle", "--home", str(home))
    assert [r["batch"] for r in out["settled"]] == [2, 3]
    for result in out["settled"]:
        assert result["gas_used"] > 0 and result["gas_per_transaction"] > 0
    status = run_json("l1", "status", "--home", str(home))
    node = run_json("status", "--home", str(home))
    assert status["batch"] == 3 and status["state_root"] == node["root"]
    # off chain too, the deposits are the L1 queue's (the verifier asks the L1)
    verdict = run_json("verify", "1", "--l1", "--home", str(home))
    assert verdict["valid"] is True and verdict["report"]["deposits_checked"] is True and verdict["vk_pinned_by"] == "deployment"
    assert status["deposits_consumed"] == status["deposits_queued"] == 2
    # withdraw on L1: paid once, to the account's address
    l1, _ = open_contracts(home)
    before = l1.balance(address)
    claimed = run_json("l1", "withdraw", "--account", str(account), "--home", str(home))
    assert (claimed["recipient"], claimed["amount"]) == (address, WITHDRAWN)
    l1, _ = open_contracts(home)
    assert l1.balance(address) - before == WITHDRAWN * 10**6
    # the L2 side paid it out of the account
    account_info = run_json("account", str(account), "--home", str(home))
    assert account_info["nonce"] == 5  # registration, trade, transfer, withdrawal, registration
    # the settled registration bound the key the wallet derives
    env = {"ROLLUP_PRIVATE_KEY": "0x" + world["keys"][address].hex()}
    derived = run_json("key", "derive", "--home", str(home), env=env)
    assert run_json("key", "show", "--account", str(account), "--home", str(home))["key_id"] == derived["key_id"]
    # a second claim of the same withdrawal is refused
    out = run("l1", "withdraw", "--account", str(account), "--home", str(home), code=1)
    assert "nothing to claim for this account" in out


def test_escape_hatch_commands(world, pending):
    """The escape-hatch commands on the settled chain: a forced withdrawal from an account with
    open positions (the option buyer) is listed for the sequencer, then dismissed with a proof."""
    home = world["home"]
    account, address = pending["account"], pending["address"]
    _, contracts = open_contracts(home)
    if contracts.rollup.functions.batch_number().call() != 3:
        pytest.skip("needs the end-to-end test's settled batches")
    key = "0x" + world["keys"][address].hex()
    forced = run_json("l1", "force-withdraw", "--account", str(account), "--amount", "1", "--key", key, "--home", str(home))
    assert forced["nonce"] == 5 and forced["deadline_batch"] == 3 + 3  # DEFAULT_FORCED_DELAY_BATCHES
    out = world["root"] / "forced.jsonl"
    listed = run_json("l1", "forced", "--out", str(out), "--home", str(home))
    assert listed["pending"] == [{"request_id": forced["request_id"], "account": account, "amount": 1, "nonce": 5}]
    assert Withdraw.model_validate_json(out.read_text()).model_dump() == forced["l2_transaction"]
    # not overdue, nothing to exit
    assert "nothing pending is overdue" in run("l1", "freeze", "--home", str(home), code=1)
    assert "exits open only once the rollup is frozen" in run("l1", "exit", "--account", str(account), "--home", str(home), code=1)
    dismissed = run_json("l1", "dismiss", "--home", str(home))
    assert dismissed["reason"] == "the account has open positions"
    assert run_json("l1", "forced", "--home", str(home))["pending"] == []
    assert "no forced withdrawal or deposit is pending" in run("l1", "freeze", "--home", str(home), code=1)
    assert "only once the rollup is frozen" in run("l1", "reclaim", "--home", str(home), code=1)


def test_deposit_from_a_contract_wallet_settles_without_a_signature(world, pending):
    """A contract wallet (it cannot sign) opens an account on L1; the node reads the queue entry,
    executes it, proves and settles it: the entry is the authorisation (security review, finding 1:
    an L1 deposit without a signed L2 Deposit blocked the queue for good and let anyone freeze)."""
    from contracts.build import compile_contract

    home, root = world["home"], world["root"]
    l1, contracts = open_contracts(home)
    if contracts.rollup.functions.batch_number().call() != 3:
        pytest.skip("needs the end-to-end test's settled batches")
    wallet = l1.deploy(compile_contract("ContractWallet", Path(__file__).parent / "vy"))
    l1.send(wallet.functions.open_account(contracts.rollup.address, 7), "open from a contract wallet", gas=300_000, value=7 * 10**6)
    l1.save()
    out = root / "wallet-deposits.jsonl"
    (queued,) = run_json("l1", "deposits", "--out", str(out), "--home", str(home))["deposits"]
    assert (queued["address"], queued["amount"]) == (wallet.address, 7)
    assert run_json("submit", str(out), "--home", str(home), "--executor", "serial")["accepted"] == 1
    run_json("prove", "--home", str(home), "--executor", "serial")
    assert [r["batch"] for r in run_json("settle", "--home", str(home))["settled"]] == [4]
    status = run_json("l1", "status", "--home", str(home))
    assert status["deposits_consumed"] == status["deposits_queued"] and status["state_root"] == run_json("status", "--home", str(home))["root"]
    assert run_json("account", str(queued["account"]), "--home", str(home))["collateral"] == 7


def test_freeze_exit_and_reclaim_commands(world, pending):
    """A deposit the sequencer never consumes, overdue: anyone freezes the rollup; an account exits
    with its leaf at the settled root, once; the unconsumed deposit goes back to its sender."""
    from contracts.chain import L1

    home = world["home"]
    account, address = pending["account"], pending["address"]
    l1, contracts = open_contracts(home)
    if contracts.rollup.functions.batch_number().call() < 3:
        pytest.skip("needs the end-to-end test's settled batches")
    key = "0x" + world["keys"][address].hex()
    queued = run_json("l1", "deposit", "--amount", "5", "--key", key, "--account", str(account), "--home", str(home))
    l1 = L1.open(home / "l1" / "chain")
    delay = contracts.rollup.functions.FORCED_DELAY_SECONDS().call()
    l1.tester.time_travel(l1.w3.eth.get_block("latest")["timestamp"] + delay + 1)
    l1.save()
    run_json("l1", "freeze", "--home", str(home))
    assert run_json("l1", "status", "--home", str(home))["frozen"] is True
    # the settled leaf: the collateral after batch 3 (the node's state, no batch after it)
    collateral = run_json("account", str(account), "--home", str(home))["collateral"]
    l1, _ = open_contracts(home)
    before = l1.balance(address)
    exited = run_json("l1", "exit", "--account", str(account), "--home", str(home))
    assert (exited["recipient"], exited["amount"]) == (address, collateral)
    l1, _ = open_contracts(home)
    assert l1.balance(address) - before == collateral * 10**6
    assert "account already exited" in run("l1", "exit", "--account", str(account), "--home", str(home), code=1)
    reclaimed = run_json("l1", "reclaim", "--home", str(home))
    assert [(r["deposit_id"], r["recipient"], r["amount"]) for r in reclaimed["reclaimed"]] == [(queued["deposit_id"], address, 5)]
    assert run_json("l1", "reclaim", "--home", str(home))["reclaimed"] == []
