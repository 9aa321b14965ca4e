"""End to end on a real EVM (py-evm): deploy, deposit on L1, L2 deposits and a trade, prove,
settle (the contract checks proofs, windows, signatures, the deposit queue and both roots),
withdraw on L1; and the tamper cases, rejected on chain with their reasons.

The node proves with one transaction per segment (`--slots 1`), so the setup stays small.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rollup.cli.main import app
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.signing import dev_account_key, get_address, sign, unsigned
from verifier.curve import BN254
from verifier.wire import Withdraw

pytestmark = pytest.mark.slow

runner = CliRunner()
SEED = 3
WITHDRAWN = 1_000_000  # units (1 USD)


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.stdout if "--json" in args else result.output


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


def write_lines(path: Path, txs: list) -> Path:
    path.write_text("".join(tx.model_dump_json() + "\n" for tx in txs))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Any]:
    """A node at genesis, its keys, and the rollup deployed on the embedded L1 in HOME/l1."""
    root = tmp_path_factory.mktemp("l1")
    workload = generate_workload(WorkloadSpec(accounts=2, txs=1, seed=SEED), workers=1)
    assert [tx.type for tx in workload.transactions] == ["deposit", "deposit", "oracle_update", "option_trade"]
    (root / "genesis.json").write_text(workload.genesis.model_dump_json())
    home = root / "home"
    run("init", "--home", str(home), "--genesis", str(root / "genesis.json"), "--json")
    run("setup", "--slots", "1", "--home", str(home), "--json")
    deployed = run_json("l1", "deploy", "--home", str(home))
    keys = {get_address(dev_account_key(SEED, i)): dev_account_key(SEED, i) for i in range(2)}
    return {"root": root, "home": home, "workload": workload, "deployed": deployed, "keys": keys}


def open_contracts(home: Path) -> tuple[Any, Any, Any]:
    from contracts.chain import L1
    from contracts.client import Deployment, get_contracts
    from rollup.cli.l1 import get_deployment_path, get_shape
    from rollup.storage import Store

    l1 = L1.open(home / "l1" / "chain")
    deployment = Deployment.load(get_deployment_path(home, l1))
    store = Store.open(home)
    try:
        shape = get_shape(store, deployment.n_slots)
    finally:
        store.close()
    return l1, get_contracts(l1, deployment, shape), shape


def get_args(home: Path, batch: int, shape: Any) -> Any:
    from contracts.client import build_submit_args
    from rollup.publish import build_published
    from rollup.storage import Store

    store = Store.open(home)
    try:
        return build_submit_args(build_published(home, store, batch), shape)
    finally:
        store.close()


def revert_reason(contracts: Any, args: Any) -> str:
    """The contract's revert reason for this calldata (a call: nothing is mined)."""
    with pytest.raises(Exception) as info:  # web3's ContractLogicError (eth-tester's TransactionFailed)
        contracts.batch_verifier.functions.submit_batch(*args.as_args()).call({"gas": 29_000_000})
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
    l1, contracts, shape = open_contracts(home)
    assert "deposits do not match the L1 queue" in revert_reason(contracts, get_args(home, 1, shape))
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
    """Batch 2 (an oracle update and an option trade) and batch 3 (a withdrawal), proven, not settled."""
    home, workload, root = world["home"], world["workload"], world["root"]
    run_json("submit", str(write_lines(root / "b2.jsonl", workload.transactions[2:])), "--home", str(home), "--executor", "serial")
    account = workload.transactions[3].buyer
    address = next(tx.address for tx in workload.transactions[:2] if tx.account == account)
    withdraw = sign(unsigned(Withdraw, account=account, amount=WITHDRAWN, nonce=1), [world["keys"][address]], workload.genesis.signing_domain)
    out = run_json("submit", str(write_lines(root / "b3.jsonl", [withdraw])), "--home", str(home), "--executor", "serial")
    assert out["accepted"] == 1
    run_json("prove", "--home", str(home), "--executor", "serial")
    return {"account": account, "address": address}


def test_tampered_batches_are_rejected_on_chain(world, pending):
    """Each tamper of batch 2's honest calldata is refused with its own reason."""
    home = world["home"]
    l1, contracts, shape = open_contracts(home)
    assert contracts.rollup.functions.batch_number().call() == 1
    args = get_args(home, 2, shape)

    def bad_proof(a):  # C replaced by A: still a point on the curve
        words, proof = a.segments[-1]
        a.segments[-1] = (words, proof[:6] + proof[:2])

    def wrong_root(a):
        a.new_root = bytes(31) + b"\x01"

    def forged_signature(a):  # the buyer's signature replaced by the seller's
        a.signatures[0] = list(a.signatures[1])

    def aliased(a):  # the trade's open-interest delta (instrument window) + r
        words, proof = a.segments[-1]
        index = len(words) - 7
        a.segments[-1] = (words[:index] + [words[index] + BN254.r] + words[index + 1 :], proof)

    def off_curve(a):
        words, proof = a.segments[-1]
        a.segments[-1] = (words, [1, 3] + proof[2:])

    def negative_fee(a):  # the trade's fee word r - 1 (= -1): the circuit alone would not refuse it
        words, proof = a.segments[-1]
        a.segments[-1] = (words[:13] + [BN254.r - 1] + words[14:], proof)

    def skipped_oracle_update(a):  # the update names a predecessor the chain never applied
        update = a.oracles[0]
        a.oracles[0] = (update[0] + 1, *update[1:])

    def short_words(a):  # a segment one word short: the packed words no longer match the proofs
        words, proof = a.segments[-1]
        a.segments[-1] = (words[:-1], proof)

    expected = {
        short_words: "the words are not N_SLOTS * SLOT_WORDS per proof",
        bad_proof: "a segment proof does not verify",
        wrong_root: "new root is not the one the diffs rebuild",
        forged_signature: "signature does not recover to the account's address",
        aliased: "public word >= r",
        off_curve: "not on the curve",
        negative_fee: "eip712: fee out of range",
        skipped_oracle_update: "oracle update out of sequence",
    }
    for change, reason in expected.items():
        assert reason in revert_reason(contracts, tampered(args, change)), change.__name__
    # the honest calldata passes every check (as a call: nothing is mined here)
    contracts.batch_verifier.functions.submit_batch(*args.as_args()).call({"gas": 29_000_000})
    # but not twice in one transaction (the contract's scratch is per transaction)
    from contracts.build import compile_contract

    harness = l1.deploy(compile_contract("Resubmit", shape, extra_dirs=(Path(__file__).parent / "vy",)))
    data = contracts.batch_verifier.functions.submit_batch(*args.as_args())._encode_transaction_data()
    with pytest.raises(Exception) as info:
        harness.functions.twice(contracts.batch_verifier.address, bytes.fromhex(data[2:])).call({"gas": 29_000_000})
    assert "one batch per transaction" in str(info.value)


def test_invalid_batch_with_more_segments_than_the_contract_takes(world, pending, monkeypatch):
    """The client refuses it with the bound, before the ABI decoder would (without a reason)."""
    import contracts.client
    from contracts.client import SettlementError

    monkeypatch.setattr(contracts.client, "get_max_segments", lambda shape: 1)
    _, _, shape = open_contracts(world["home"])
    with pytest.raises(SettlementError, match="batch 2 has 2 segments; the settlement contract takes at most 1"):
        get_args(world["home"], 2, shape)


def tampered(args: Any, change) -> Any:
    copied = copy.deepcopy(args)
    change(copied)
    return copied


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
    l1, contracts, _ = open_contracts(home)
    before = l1.balance(address)
    claimed = run_json("l1", "withdraw", "3", "--home", str(home))
    assert claimed["claimed"] == [{"index": 0, "recipient": address, "amount": WITHDRAWN}]
    l1, contracts, _ = open_contracts(home)
    assert l1.balance(address) - before == WITHDRAWN * 10**6
    # the L2 side paid it out of the account
    account_info = run_json("account", str(account), "--home", str(home))
    assert account_info["nonce"] == 2
    # a second claim of the same withdrawal is refused
    out = run("l1", "withdraw", "3", "--home", str(home), code=1)
    assert "withdrawal already claimed" in out


def test_escape_hatch_commands(world, pending):
    """The escape-hatch commands on the settled chain: a forced withdrawal from an account with
    open positions (the option buyer) is listed for the sequencer, then dismissed with a proof."""
    home = world["home"]
    account, address = pending["account"], pending["address"]
    l1, contracts, _ = open_contracts(home)
    if contracts.rollup.functions.batch_number().call() != 3:
        pytest.skip("needs the end-to-end test's settled batches")
    key = "0x" + world["keys"][address].hex()
    forced = run_json("l1", "force-withdraw", "--account", str(account), "--amount", "1", "--key", key, "--home", str(home))
    assert forced["nonce"] == 2 and forced["deadline_batch"] == 3 + 3
    out = world["root"] / "forced.jsonl"
    listed = run_json("l1", "forced", "--out", str(out), "--home", str(home))
    assert listed["pending"] == [{"request_id": forced["request_id"], "account": account, "amount": 1, "nonce": 2}]
    assert Withdraw.model_validate_json(out.read_text()).model_dump() == forced["l2_transaction"]
    # not overdue, nothing to exit
    assert "not overdue" in run("l1", "freeze", "--home", str(home), code=1)
    assert "exits open only once the rollup is frozen" in run("l1", "exit", "--account", str(account), "--home", str(home), code=1)
    dismissed = run_json("l1", "dismiss", "--home", str(home))
    assert dismissed["reason"] == "the account has open positions"
    assert run_json("l1", "forced", "--home", str(home))["pending"] == []
    assert "no forced withdrawal is pending" in run("l1", "freeze", "--home", str(home), code=1)
