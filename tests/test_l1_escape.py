"""The escape hatch on a real EVM (py-evm), against a real node's settled batches: a forced
withdrawal the sequencer serves leaves the rollup running; one the L2 would reject is dismissed
with a proof (so a request cannot grief an honest rollup into a freeze); a valid one ignored past
its deadline lets anyone freeze it; after the freeze, settlement, deposits and requests are
refused, and each account exits once with its collateral, proven against the last settled root.

Setup (one node, `--slots 1`, the rollup deployed with `forced_delay_batches=1`): batch 1 holds two
deposits and is settled; batches 2..5 are one Withdraw each, proven up front and settled one by one
as the scenario needs them:
  batch 2: account A withdraws exactly what A forced, the very transaction of the request
  batch 3: account B withdraws another amount with the nonce B's request signed (the request
           becomes invalid: dismissed)
  batch 4: account A withdraws again (B's later, valid request is ignored: freeze)
  batch 5: account A withdraws again (never settles: the rollup is frozen by then)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from contracts.chain import L1Revert
from contracts.client import UNIT_WEI
from rollup.cli.main import app
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.signing import dev_account_key, get_address, sign, unsigned
from verifier.wire import Withdraw

pytestmark = pytest.mark.slow

runner = CliRunner()
SEED = 3
FORCED_A = 2_000_000  # units: A's forced withdrawal, served by batch 2
FORCED_B = 3_000_000  # B's forced withdrawal, ignored
WITHDRAWN_B = 1_000_000  # what B withdraws in batch 3 instead
WITHDRAWN_A2 = 500_000  # batch 4
VALID_B = 1_000  # B's valid request, ignored
TOO_MUCH = 10**15  # B's request for more than B holds: dismissed


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


def deploy_with_short_delay(home: Path) -> None:
    """`rollup l1 deploy`, through the Python API, with a one-batch forced-withdrawal delay (and a
    time delay no test reaches), recorded where the CLI finds it."""
    from contracts.chain import L1
    from contracts.client import deploy_rollup
    from prover.pipeline import get_current_keys, get_key_paths
    from rollup.cli.l1 import get_deployment_path, get_shape
    from rollup.publish import get_genesis
    from rollup.storage import Store
    from verifier.snarkjs import read_json

    store = Store.open(home)
    try:
        vk_hash, n_slots = get_current_keys(home, store)
        genesis, shape = get_genesis(store), get_shape(store, n_slots)
        genesis_root = bytes.fromhex(store.get_meta("genesis_root") or "")
    finally:
        store.close()
    l1 = L1.open(home / "l1" / "chain")
    vk = read_json(get_key_paths(home)[1])
    deployment = deploy_rollup(l1, genesis, shape, vk, vk_hash, genesis_root, forced_delay_batches=1, forced_delay_seconds=10**9)
    deployment.save(get_deployment_path(home, l1))
    l1.save()


class Chain:
    """The embedded L1 of HOME, opened for a few calls and saved after them (the CLI shares it)."""

    def __init__(self, home: Path):
        from contracts.chain import L1
        from contracts.client import Deployment, get_contracts
        from rollup.cli.l1 import get_deployment_path, get_shape
        from rollup.storage import Store

        self.l1 = L1.open(home / "l1" / "chain")
        deployment = Deployment.load(get_deployment_path(home, self.l1))
        store = Store.open(home)
        try:
            shape = get_shape(store, deployment.n_slots)
        finally:
            store.close()
        self.contracts = get_contracts(self.l1, deployment, shape)

    def __enter__(self) -> "Chain":
        return self

    def __exit__(self, *exc: object) -> None:
        self.l1.save()


def revert_reason(action) -> str:
    with pytest.raises(L1Revert) as info:
        action()
    return str(info.value)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Any]:
    """Batch 1 (both deposits) settled; batches 2..4 (one Withdraw each) proven, not settled."""
    root = tmp_path_factory.mktemp("escape")
    workload = generate_workload(WorkloadSpec(accounts=2, txs=1, seed=SEED), workers=1)
    (root / "genesis.json").write_text(workload.genesis.model_dump_json())
    home = root / "home"
    run("init", "--home", str(home), "--genesis", str(root / "genesis.json"), "--json")
    run("setup", "--slots", "1", "--home", str(home), "--json")
    deploy_with_short_delay(home)
    deposits = workload.transactions[:2]
    keys = {tx.account: dev_account_key(SEED, i) for i, tx in enumerate(deposits)}
    for tx in deposits:
        assert get_address(keys[tx.account]) == tx.address
        # a first deposit opens the account: the contract assigns the ids in order
        opened = run_json("l1", "deposit", "--amount", str(tx.amount), "--key", "0x" + keys[tx.account].hex(), "--home", str(home))
        assert opened["l2_transaction"] == tx.model_dump()
    run_json("submit", str(write_lines(root / "b1.jsonl", deposits)), "--home", str(home), "--executor", "serial")
    a, b = (tx.account for tx in deposits)
    chain_id = workload.genesis.signing_domain
    withdrawals = [(a, FORCED_A, 0), (b, WITHDRAWN_B, 0), (a, WITHDRAWN_A2, 1), (a, 1, 2)]
    for number, (account, amount, nonce) in enumerate(withdrawals, start=2):
        tx = sign(unsigned(Withdraw, account=account, amount=amount, nonce=nonce), [keys[account]], chain_id)
        out = run_json("submit", str(write_lines(root / f"b{number}.jsonl", [tx])), "--home", str(home), "--executor", "serial")
        assert out["accepted"] == 1
    run_json("prove", "--home", str(home), "--executor", "serial")
    assert [r["batch"] for r in run_json("settle", "1", "--home", str(home))["settled"]] == [1]
    return {"root": root, "home": home, "keys": keys, "a": a, "b": b, "deposits": {tx.account: tx.amount for tx in deposits}, "gas": {}, "chain_id": chain_id}


def get_proof(home: Path, account: int, batch: int) -> tuple[bytes, Any]:
    from contracts.escape import get_account_proof
    from rollup.storage import Store

    store = Store.open(home)
    try:
        return get_account_proof(store, account, batch)
    finally:
        store.close()


def test_escape_hatch(world):
    from contracts.escape import (
        EscapeError,
        dismiss_forced_withdrawal,
        exit_account,
        freeze,
        get_exit_proof,
        get_pending_forced_withdrawals,
        request_forced_withdrawal,
    )
    from rollup.storage import Store

    home, keys, a, b, gas, chain_id = world["home"], world["keys"], world["a"], world["b"], world["gas"], world["chain_id"]

    def force(chain: Chain, account: int, amount: int, nonce: int, key: bytes) -> Any:
        return request_forced_withdrawal(chain.l1, chain.contracts, chain_id, account, amount, nonce, key)

    # --- a request only the owner may make; nothing pending: no freeze, no exit ---
    leaf_1, proof_1 = get_proof(home, a, 1)
    with Chain(home) as chain:
        assert "exits open only once the rollup is frozen" in revert_reason(lambda: exit_account(chain.l1, chain.contracts, a, leaf_1, proof_1))
        assert "no forced withdrawal is pending" in revert_reason(lambda: freeze(chain.l1, chain.contracts))
        with pytest.raises(EscapeError, match="only its owner"):
            force(chain, a, FORCED_A, 0, keys[b])
        served = force(chain, a, FORCED_A, 0, keys[a])
        gas["request_forced_withdrawal"] = served.gas_used
        assert served.args["request_id"] == 0 and served.args["deadline_batch"] == 2
        # the sequencer reads the signed L2 transaction from L1: batch 2 holds exactly it
        pending = get_pending_forced_withdrawals(chain.contracts)
        assert [(i, tx.model_dump_json()) for i, tx in pending] == [(0, Withdraw.model_validate(served.args["l2_transaction"]).model_dump_json())]
        # valid at the settled root: it cannot be dismissed, only settled
        valid = "the forced withdrawal is valid: settle it"
        assert valid in revert_reason(lambda: dismiss_forced_withdrawal(chain.l1, chain.contracts, leaf_1, proof_1))
        # before the deadline: no freeze
        assert "the forced withdrawal is not overdue" in revert_reason(lambda: freeze(chain.l1, chain.contracts))

    # --- the sequencer serves it in batch 2: the request is done, no freeze ---
    assert [r["batch"] for r in run_json("settle", "2", "--home", str(home))["settled"]] == [2]
    with Chain(home) as chain:
        rollup = chain.contracts.rollup.functions
        assert rollup.forced_served().call() == 1
        assert "no forced withdrawal is pending" in revert_reason(lambda: freeze(chain.l1, chain.contracts))
        stale = force(chain, b, FORCED_B, 0, keys[b])
        assert stale.args["request_id"] == 1 and stale.args["deadline_batch"] == 3

    # --- batch 3 spends B's nonce 0 on another withdrawal: the request is dismissed, not a freeze ---
    assert [r["batch"] for r in run_json("settle", "3", "--home", str(home))["settled"]] == [3]
    leaf_b3, proof_b3 = get_proof(home, b, 3)
    with Chain(home) as chain:
        rollup = chain.contracts.rollup.functions
        assert rollup.forced_served().call() == 1 and rollup.batch_number().call() == 3
        dismissed = dismiss_forced_withdrawal(chain.l1, chain.contracts, leaf_b3, proof_b3)
        gas["dismiss_forced_withdrawal"] = dismissed.gas_used
        assert dismissed.args == {"request_id": 1, "reason": "the withdrawal's nonce is not the account's"}
        assert "no forced withdrawal is pending" in revert_reason(lambda: freeze(chain.l1, chain.contracts))
        # griefing with an amount the account does not hold: dismissed too
        force(chain, b, TOO_MUCH, 1, keys[b])
        dismissed = dismiss_forced_withdrawal(chain.l1, chain.contracts, leaf_b3, proof_b3)
        assert dismissed.args == {"request_id": 2, "reason": "the account's collateral is below the amount"}
        # a valid request the sequencer will ignore
        ignored = force(chain, b, VALID_B, 1, keys[b])
        assert ignored.args["request_id"] == 3 and ignored.args["deadline_batch"] == 4
        assert valid in revert_reason(lambda: dismiss_forced_withdrawal(chain.l1, chain.contracts, leaf_b3, proof_b3))

    # --- batch 4 does not serve it: overdue, anyone may freeze ---
    assert [r["batch"] for r in run_json("settle", "4", "--home", str(home))["settled"]] == [4]
    with Chain(home) as chain:
        rollup = chain.contracts.rollup.functions
        assert rollup.forced_served().call() == 3
        frozen = freeze(chain.l1, chain.contracts)
        gas["freeze"] = frozen.gas_used
        assert frozen.args == {"request_id": 3} and rollup.frozen().call()
        settled_root = rollup.state_root().call()
        # frozen: no deposit, no new request
        deposit = rollup.deposit(a, 1)
        assert "the rollup is frozen" in revert_reason(lambda: chain.l1.send(deposit, "deposit", gas=300_000, value=UNIT_WEI, private_key=keys[a]))
        request = rollup.request_forced_withdrawal(a, 1, 3, [27, 1, 1])
        assert "the rollup is frozen" in revert_reason(lambda: chain.l1.send(request, "force", gas=300_000, private_key=keys[a]))

    # --- no settlement either (batch 5 is honest and proven) ---
    out = run("settle", "5", "--home", str(home), code=1)
    assert "the rollup is frozen" in out

    # --- exits, against the last settled root (batch 4), not the node's newest (batch 5) ---
    store = Store.open(home)
    try:
        assert store.latest_batch().number == 5
        assert store.get_batch(4).new_root == settled_root
        leaf_a, proof_a = get_exit_proof(store, a, 4)
        leaf_b, proof_b = get_exit_proof(store, b, 4)
        newest_leaf_a, newest_proof_a = get_exit_proof(store, a, 5)
    finally:
        store.close()
    from verifier.encoding import decode_account_leaf

    collateral_a = decode_account_leaf(leaf_a).collateral
    collateral_b = decode_account_leaf(leaf_b).collateral
    # what the L2 says each account holds after batch 4: its deposit less its withdrawals
    assert collateral_a == world["deposits"][a] - FORCED_A - WITHDRAWN_A2
    assert collateral_b == world["deposits"][b] - WITHDRAWN_B
    with Chain(home) as chain:
        address_a, address_b = get_address(keys[a]), get_address(keys[b])
        # a wrong leaf: more collateral than settled
        words = bytearray(leaf_a)
        words[3 * 32 - 8 : 3 * 32] = (collateral_a + 1).to_bytes(8, "big")
        assert decode_account_leaf(bytes(words)).collateral == collateral_a + 1
        reason = "account leaf is not in the last settled root"
        assert reason in revert_reason(lambda: exit_account(chain.l1, chain.contracts, a, bytes(words), proof_a))
        # the node's newest (unsettled) leaf does not prove against the settled root
        assert newest_leaf_a != leaf_a
        assert reason in revert_reason(lambda: exit_account(chain.l1, chain.contracts, a, newest_leaf_a, newest_proof_a))
        # B's leaf under A's id
        with pytest.raises(EscapeError, match="prove account"):
            exit_account(chain.l1, chain.contracts, a, leaf_b, proof_b)
        before_a, before_b = chain.l1.balance(address_a), chain.l1.balance(address_b)
        held = chain.l1.balance(chain.contracts.rollup.address)
        # paid to the account's address, by anyone's transaction (the default dev account sends)
        exited_a = exit_account(chain.l1, chain.contracts, a, leaf_a, proof_a)
        gas["exit"] = exited_a.gas_used
        assert exited_a.args["recipient"] == address_a and exited_a.args["amount"] == collateral_a
        assert chain.l1.balance(address_a) - before_a == collateral_a * UNIT_WEI
        # once
        assert "account already exited" in revert_reason(lambda: exit_account(chain.l1, chain.contracts, a, leaf_a, proof_a))
        exit_account(chain.l1, chain.contracts, b, leaf_b, proof_b)
        assert chain.l1.balance(address_b) - before_b == collateral_b * UNIT_WEI
        assert held - chain.l1.balance(chain.contracts.rollup.address) == (collateral_a + collateral_b) * UNIT_WEI
    print("escape gas:", json.dumps(gas))


def test_censored_deposits_freeze_and_are_reclaimed():
    """A deposit the L2 never consumes lets anyone freeze the rollup after the delay; then its
    sender reclaims it, once. (The settlement contract alone: nothing here needs a proof.)"""
    from contracts.build import compile_contract
    from contracts.chain import L1
    from verifier.segment import SegmentShape

    l1 = L1.embedded()
    delay = 3600
    rollup = l1.deploy(compile_contract("Rollup", SegmentShape(1)), bytes(32), 1, delay)
    key = dev_account_key(SEED, 0)
    address = get_address(key)
    l1.fund(address, 10**18)
    l1.send(rollup.functions.open_account(7), "open", gas=300_000, value=7 * UNIT_WEI, private_key=key)  # account 0
    l1.send(rollup.functions.deposit(0, 11), "deposit", gas=300_000, value=11 * UNIT_WEI, private_key=key)
    freeze = rollup.functions.freeze()
    reclaim = rollup.functions.reclaim_deposit(0, 0, address, 7)
    assert "deposits are reclaimed only once the rollup is frozen" in revert_reason(lambda: l1.send(reclaim, "reclaim", gas=300_000))
    # the deposit has not waited long enough
    assert "the forced withdrawal is not overdue" in revert_reason(lambda: l1.send(freeze, "freeze", gas=300_000))
    tester = l1.w3.provider.ethereum_tester
    tester.time_travel(l1.w3.eth.get_block("latest")["timestamp"] + delay + 1)
    l1.send(freeze, "freeze", gas=300_000)
    assert rollup.functions.frozen().call()
    before = l1.balance(address)
    # not the queued deposit: another amount
    assert "not the queued deposit" in revert_reason(lambda: l1.send(rollup.functions.reclaim_deposit(0, 0, address, 8), "reclaim", gas=300_000))
    l1.send(reclaim, "reclaim", gas=300_000)
    assert l1.balance(address) - before == 7 * UNIT_WEI
    assert "deposit already reclaimed" in revert_reason(lambda: l1.send(reclaim, "reclaim", gas=300_000))
    assert "no such deposit left in the queue" in revert_reason(lambda: l1.send(rollup.functions.reclaim_deposit(2, 0, address, 7), "reclaim", gas=300_000))


def deploy_bare_rollup(l1: Any) -> Any:
    """The settlement contract alone (no batch verifier): enough for the deposit queue."""
    from contracts.build import compile_contract
    from verifier.segment import SegmentShape

    return l1.deploy(compile_contract("Rollup", SegmentShape(1)), bytes(32), 1, 3600)


def test_deposit_from_a_contract_wallet_is_included_without_a_signature(tmp_path, small_workload):
    """A contract wallet (it cannot sign) deposits on L1; the node reads the queue entry and
    executes it: the entry is the authorisation (security review, finding 1: an L1 deposit
    without a signed L2 Deposit blocked the queue for good, and let anyone freeze the rollup)."""
    from contracts.build import compile_contract
    from contracts.chain import L1
    from contracts.client import Contracts, get_queued_deposits
    from rollup.node import Node
    from verifier.segment import SegmentShape

    l1 = L1.embedded()
    rollup = deploy_bare_rollup(l1)
    wallet = l1.deploy(compile_contract("ContractWallet", SegmentShape(1), extra_dirs=(Path(__file__).parent / "vy",)))
    l1.send(wallet.functions.open_account(rollup.address, 5), "open from a contract wallet", gas=300_000, value=5 * UNIT_WEI)
    (queued,) = get_queued_deposits(Contracts(rollup, None, None))
    assert (queued.deposit_id, queued.account, queued.address, queued.amount) == (0, 0, wallet.address, 5)
    node = Node.init(tmp_path / "node", small_workload.genesis)
    try:
        submission = node.submit([queued])
        assert [r.status for r in submission.receipts] == ["accepted"]
        account = node.state.accounts[0]
        assert account.address == wallet.address and account.collateral == 5
    finally:
        node.close()


def test_account_ids_are_assigned_by_the_contract_so_nobody_squats_one():
    """Nobody deposits to an id that is not theirs, and a new account's id is the contract's
    choice (security review, finding 7: front-running the first deposit to an id took it)."""
    from contracts.chain import L1

    l1 = L1.embedded()
    rollup = deploy_bare_rollup(l1)
    alice, mallory = dev_account_key(SEED, 0), dev_account_key(SEED, 1)
    for key in (alice, mallory):
        l1.fund(get_address(key), 10**18)
    # the squat: a deposit to an id nobody opened (the one Alice would have chosen) is refused
    squat = rollup.functions.deposit(7, 1)
    assert "not an account of the sender's" in revert_reason(lambda: l1.send(squat, "squat", gas=300_000, value=UNIT_WEI, private_key=mallory))
    # ids come in order from the contract, each owned by whoever opened it
    opened = []
    for key in (mallory, alice):
        receipt = l1.send(rollup.functions.open_account(3), "open", gas=300_000, value=3 * UNIT_WEI, private_key=key)
        opened.append(rollup.events.Deposited().process_receipt(receipt)[0]["args"]["account"])
    assert opened == [0, 1] and rollup.functions.next_account_id().call() == 2
    assert rollup.functions.account_owner(1).call() == get_address(alice)
    # an owner tops up its own account; nobody else can
    l1.send(rollup.functions.deposit(1, 2), "top up", gas=300_000, value=2 * UNIT_WEI, private_key=alice)
    top_up = rollup.functions.deposit(1, 2)
    assert "not an account of the sender's" in revert_reason(lambda: l1.send(top_up, "top up", gas=300_000, value=2 * UNIT_WEI, private_key=mallory))
    assert rollup.functions.deposit_count().call() == 3
