"""RollupV3.vy on py-evm with real v3 proofs: the contract sits where the genesis' EIP-712 domain
names it; accounts are opened by the contract (ids in order, no squatting) and the published
deposits match its queue (on chain and in verifier.transition); a proven batch settles and moves
the root, withdrawals are claimed once, every tamper is refused with its reason, and after a
freeze an account exits with its leaf and path against the stored root (the 4-input EVM
Poseidon), once."""

from __future__ import annotations

import pytest
from eth_keys.constants import SECPK1_N

from contracts.chain import L1, L1Revert
from contracts.deployment import SettlementError
from contracts.transition_build import SettlementShape
from contracts.transition_client import (
    SettlementTooLarge,
    claim_withdrawal,
    deploy_v3,
    deposit,
    encode_settlement,
    get_exit_args,
    get_queue_hash,
    get_settlement_shape,
    settle,
    UNIT_WEI,
)
from prover.circuits.transition_witness import get_globals_state, get_market_states
from prover.transition_publish import get_accepted, prove_workload_batches
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.signing import dev_account_key, get_address
from rollup.state_codec import encode_account
from verifier.snarkjs import compute_vk_hash
from verifier.encoding import InvalidSignature, compute_domain_separator, decode_account_leaf
from verifier.pubdata import encode_record
from verifier.state_tree import R, TreeShape, compute_account_fields, hash_fields
from verifier.transition import PublishedTransition, VerificationError, verify_transition

TREE = TreeShape(depth=2, arity=4)  # 16 accounts
N_SLOTS = 2
SPEC = WorkloadSpec(accounts=6, perps=1, series=1, txs=14, seed=9,
                    mix={"perp_trade": 5, "option_trade": 2, "transfer": 2, "withdraw": 2, "oracle_update": 2, "fill": 3})


@pytest.fixture(scope="module")
def run():
    """Two proven batches from genesis: the deposits (and the first oracle update), then the rest."""
    workload = generate_workload(SPEC, workers=1)
    txs, signers = get_accepted(workload.genesis, workload.transactions)
    first = next(i for i, tx in enumerate(txs) if tx.type not in ("deposit", "oracle_update"))
    return prove_workload_batches(workload.genesis, [(txs[:first], signers[:first]), (txs[first:], signers[first:])], N_SLOTS, TREE)


@pytest.fixture(scope="module")
def chain(run):
    """The contracts deployed at the genesis root, the deposits queued, batch 1 settled; each test
    starts from a snapshot of that and may settle batch 2 itself."""
    l1 = L1.embedded()
    batch1 = run.batches[0].batch
    dep = deploy_v3(l1, get_settlement_shape(batch1), run.batches[0].vk, run.genesis, run.genesis_root, forced_delay_batches=1, forced_delay_seconds=3600)
    _queue_deposits(l1, dep, batch1)
    result = settle(l1, dep, batch1, run.batches[0].proofs)
    assert result.transactions == sum(len(s.transactions) for s in batch1.segments)
    snapshot = l1.tester.take_snapshot()
    yield l1, dep
    l1.tester.revert_to_snapshot(snapshot)


@pytest.fixture
def l1(chain):
    l1, _ = chain
    snapshot = l1.tester.take_snapshot()
    yield l1
    l1.tester.revert_to_snapshot(snapshot)


@pytest.fixture
def dep(chain):
    return chain[1]


def _queue_deposits(l1, dep, batch: PublishedTransition, extra: int = -1) -> None:
    """The batch's deposits made on L1 by their addresses, a new account opened where the batch
    creates one: the contract's events are the published deposits (deposit `extra` is one unit more)."""
    keys = {get_address(dev_account_key(SPEC.seed, i)).lower(): dev_account_key(SPEC.seed, i) for i in range(SPEC.accounts)}
    opened = set()
    for n, tx in enumerate(t for s in batch.segments for t in s.transactions if t.type == "deposit"):
        key = keys[tx.address.lower()]
        l1.fund(get_address(key), tx.amount * UNIT_WEI + 10**18)
        queued = deposit(l1, dep, tx.account if tx.account in opened else None, tx.amount + (n == extra), key)
        opened.add(tx.account)
        if n != extra:
            assert queued == tx  # the contract assigned the id the L2 gave the account
    assert opened


def _reason(l1, dep, batch: PublishedTransition, proofs, data: bytes | None = None) -> str:
    with pytest.raises(L1Revert) as info:
        if data is None:
            settle(l1, dep, batch, proofs)
        else:
            evm_proofs, _ = encode_settlement(batch, proofs)
            l1.send(dep.rollup.functions.settle(evm_proofs, data), "settle", gas=16_000_000)
    return info.value.reason


def _changed(batch: PublishedTransition, edit) -> PublishedTransition:
    data = batch.model_dump()
    edit(data)
    return PublishedTransition.model_validate(data)


def test_rollup_is_where_the_genesis_names_it(run, l1, dep):
    # the domain every signature of the batch binds: this L1's chain id, this contract
    assert dep.rollup.address == run.genesis.rollup_address and l1.chain_id == run.genesis.l1_chain_id
    assert dep.rollup.functions.DOMAIN_SEPARATOR().call() == compute_domain_separator(run.genesis.signing_domain)
    # the verifier and Poseidon are bound once, by the deployer
    with pytest.raises(L1Revert, match="the rollup is already initialised"):
        l1.send(dep.rollup.functions.initialize(dep.verifier.address, dep.poseidon3.address, dep.poseidon4.address, dep.poseidon6.address), "initialize", gas=200_000)
    stranger = dev_account_key(SPEC.seed, 0)
    l1.fund(get_address(stranger), 10**18)
    with pytest.raises(L1Revert, match="only the deployer initialises the rollup"):
        l1.send(dep.rollup.functions.initialize(dep.verifier.address, dep.poseidon3.address, dep.poseidon4.address, dep.poseidon6.address), "initialize", gas=200_000, private_key=stranger)


def test_invalid_deployment_elsewhere(run, dep):
    # one transaction sent first: the rollup would land at another address than the genesis'
    l1 = L1.embedded()
    l1.fund(get_address(dev_account_key(SPEC.seed, 0)), 1)
    with pytest.raises(SettlementError, match="binds signatures to a rollup contract at"):
        deploy_v3(l1, dep.shape, run.batches[0].vk, run.genesis, run.genesis_root)


def test_invalid_deposit_to_an_account_of_another(run, l1, dep):
    # account ids are the contract's: nobody tops up (or claims) an account another address opened
    owner = dep.rollup.functions.account_owner(0).call()
    other = next(dev_account_key(SPEC.seed, i) for i in range(SPEC.accounts) if get_address(dev_account_key(SPEC.seed, i)) != owner)
    l1.fund(get_address(other), 10**18)
    with pytest.raises(L1Revert, match="not an account of the sender's: open one with open_account"):
        deposit(l1, dep, 0, 1, other)
    opened = deposit(l1, dep, None, 1, other)
    assert opened.account == dep.rollup.functions.next_account_id().call() - 1 == SPEC.accounts
    assert dep.rollup.functions.account_owner(opened.account).call() == get_address(other)


def test_published_deposits_verified_against_the_queue(run, dep):
    # verifier.transition checks the published batch against RollupV3's queue (deposits carry no signature)
    files = run.batches[0]
    report = verify_transition(files, compute_vk_hash(files.vk), deposit_queue=get_queue_hash(dep))
    assert report.new_root == files.batch.new_root
    l1 = L1.embedded()
    fresh = deploy_v3(l1, dep.shape, files.vk, run.genesis, run.genesis_root)
    _queue_deposits(l1, fresh, files.batch, extra=1)
    with pytest.raises(VerificationError) as info:
        verify_transition(files, compute_vk_hash(files.vk), deposit_queue=get_queue_hash(fresh))
    assert info.value.reason == "deposit_not_queued"


def test_invalid_deposits_replaying_consumed_queue_entries(run, dep):
    """A batch that credits the queue's first entries again (their ids and hashes are the real
    ones) while the proven state has consumed them: the queue position is the globals' deposit
    count before the batch, not the ids the file names."""
    from verifier.encoding import decode_globals_leaf, encode_globals_leaf
    from verifier.transition import check_deposits_against_queue

    batch = run.batches[0].batch
    check_deposits_against_queue(batch, get_queue_hash(dep))  # honest: from queue position 0
    g = decode_globals_leaf(bytes.fromhex(batch.globals_before[2:]))
    consumed = encode_globals_leaf(g.fee_pool, g.insurance_fund, g.deposit_count + 2, g.oracle_time, g.genesis_hash)
    replay = batch.model_copy(update={"globals_before": "0x" + consumed.hex()})
    with pytest.raises(VerificationError, match="names queue entry 0, the queue stood at 2") as info:
        check_deposits_against_queue(replay, get_queue_hash(dep))
    assert info.value.reason == "deposit_not_queued"


def test_batch_settles_and_moves_the_root(run, l1, dep):
    files = run.batches[1]
    assert dep.rollup.functions.batch_number().call() == 1
    assert dep.rollup.functions.state_root().call() == int(run.batches[0].batch.new_root, 16)
    assert any(s.oracle_update for s in files.batch.segments)
    # fills (two L2-signed orders) settle like any record: their 46 bytes rebuild the records hash
    assert any(t.type == "fill" for s in files.batch.segments for t in s.transactions)
    result = settle(l1, dep, files.batch, files.proofs)
    assert dep.rollup.functions.batch_number().call() == 2
    assert dep.rollup.functions.state_root().call() == int(files.batch.new_root, 16)
    assert result.segments == len(files.batch.segments)
    # `rollup l1 deploy` sizes a full batch's transaction from above (the 128 KB check)
    from dataclasses import replace

    from contracts.deployment import get_max_settlement_bytes

    n_tx = sum(len(s.transactions) for s in files.batch.segments)
    n_updates = sum(s.oracle_update is not None for s in files.batch.segments)
    bound = replace(dep.shape, max_slots=n_tx, max_segments=len(files.batch.segments))
    assert result.calldata_bytes <= get_max_settlement_bytes(bound, n_updates)
    # the same batch again is batch 3 for the contract: its proofs are for batch 2
    assert _reason(l1, dep, files.batch, files.proofs) == "the proofs do not verify for the public inputs rebuilt from the data"


def test_withdrawal_is_claimed_once(run, l1, dep):
    files = run.batches[1]
    withdrawals = [tx for s in files.batch.segments for tx in s.transactions if tx.type == "withdraw"]
    assert withdrawals
    settle(l1, dep, files.batch, files.proofs)
    account = withdrawals[0].account
    owed = sum(w.amount for w in withdrawals if w.account == account)
    assert dep.rollup.functions.withdrawable(account).call() == owed
    owner = dep.rollup.functions.account_owner(account).call()
    before = l1.balance(owner)
    claim_withdrawal(l1, dep, account)  # sent by the default dev account: paid to the owner
    assert l1.balance(owner) - before == owed * UNIT_WEI
    with pytest.raises(L1Revert, match="nothing to claim"):
        claim_withdrawal(l1, dep, account)


def test_invalid_root_chain(run, l1, dep):
    # segment 0's root after changed: segment 1 starts from it, and segment 0's proof ends elsewhere
    files = run.batches[1]

    def edit(data):
        data["segments"][0]["root_after"] = "0x" + (int(data["segments"][0]["root_after"], 16) ^ 1).to_bytes(32, "big").hex()

    assert _reason(l1, dep, _changed(files.batch, edit), files.proofs) == "the proofs do not verify for the public inputs rebuilt from the data"


def test_invalid_skipped_batch(run, dep):
    # batch 2 on a contract still at genesis: its root before is not the stored one (and the
    # contract has no owner for the accounts whose withdrawals it carries, as nobody opened them)
    l1 = L1.embedded()
    fresh = deploy_v3(l1, dep.shape, run.batches[1].vk, run.genesis, run.genesis_root)
    reason = _reason(l1, fresh, run.batches[1].batch, run.batches[1].proofs)
    assert reason == "the proofs do not verify for the public inputs rebuilt from the data" or reason.endswith(
        "withdrawal not signed by the account's owner"), reason


def test_invalid_record_word_changed(run, l1, dep):
    # a trade's price: the record word changes (the L2 signatures were verified in the proof, over the old one)
    files = run.batches[1]

    def edit(data):
        trade = next(t for s in data["segments"] for t in s["transactions"] if t["type"] == "perp_trade")
        trade["price"] += 1

    assert _reason(l1, dep, _changed(files.batch, edit), files.proofs) == "the proofs do not verify for the public inputs rebuilt from the data"


def test_invalid_wrong_signature(run, l1, dep):
    # a withdrawal's signature replaced by another valid signature (the oracle's, over its update)
    files = run.batches[1]

    def edit(data):
        withdrawal = next(t for s in data["segments"] for t in s["transactions"] if t["type"] == "withdraw")
        withdrawal["signature"] = next(s["oracle_update"] for s in data["segments"] if s["oracle_update"])["signature"]

    assert _reason(l1, dep, _changed(files.batch, edit), files.proofs).endswith("withdrawal not signed by the account's owner")


def test_l2_signed_records_carry_no_signature(run):
    # trades, transfers, liquidations, settlements: their L2 signatures were verified in the proof
    files = run.batches[1]
    _, data = encode_settlement(files.batch, files.proofs)
    trades = [t for s in files.batch.segments for t in s.transactions if t.type == "perp_trade"]
    assert trades
    for trade in trades:
        for signature in (trade.maker_signature, trade.taker_signature):
            assert bytes.fromhex(signature[2:])[64:96] not in data  # R8.x of the L2 signature


def _compact_signature_at(data: bytes, signature: str) -> int:
    """Where a published signature sits in the settlement data (EIP-2098's 64 bytes, as sent)."""
    raw = bytes.fromhex(signature[2:])
    vs = (raw[64] - 27) << 255 | int.from_bytes(raw[32:64], "big")
    at = data.index(raw[:32] + vs.to_bytes(32, "big"))
    assert data.count(raw[:32]) == 1
    return at


def _first_withdrawal(batch: PublishedTransition):
    return next(t for s in batch.segments for t in s.transactions if t.type == "withdraw")


def test_invalid_malleable_signature(run, l1, dep):
    files = run.batches[1]

    def edit(data):
        withdrawal = next(t for s in data["segments"] for t in s["transactions"] if t["type"] == "withdraw")
        raw = bytes.fromhex(withdrawal["signature"][2:])
        s = SECPK1_N - int.from_bytes(raw[32:64], "big")
        withdrawal["signature"] = "0x" + (raw[:32] + s.to_bytes(32, "big") + bytes([55 - raw[64]])).hex()

    # the malleable twin (n - s, the other v) has no EIP-2098 form: the client refuses it, as the verifier does
    with pytest.raises(InvalidSignature, match="s out of range"):
        encode_settlement(_changed(files.batch, edit), files.proofs)
    # on chain, an s above n/2 that the compact form can carry is refused (EIP-2)
    proofs, data = encode_settlement(files.batch, files.proofs)
    at = _compact_signature_at(data, _first_withdrawal(files.batch).signature) + 32
    vs = int.from_bytes(data[at : at + 32], "big") & ~((1 << 255) - 1) | (SECPK1_N // 2 + 1)
    high = data[:at] + vs.to_bytes(32, "big") + data[at + 32 :]
    assert _reason(l1, dep, files.batch, files.proofs, data=high) == "signature: s out of range (EIP-2 requires s <= n/2)"


def test_invalid_signature_parity_flipped(run, l1, dep):
    # EIP-2098's top bit of s is v - 27: the other parity recovers another key (or none)
    files = run.batches[1]
    proofs, data = encode_settlement(files.batch, files.proofs)
    at = _compact_signature_at(data, _first_withdrawal(files.batch).signature) + 32
    flipped = data[:at] + bytes([data[at] ^ 0x80]) + data[at + 1 :]
    reason = _reason(l1, dep, files.batch, files.proofs, data=flipped)
    assert reason == "signature: no public key recovers from it" or reason.endswith("withdrawal not signed by the account's owner"), reason


def test_invalid_signature_r_out_of_range(run, l1, dep):
    # the precompile refuses r = 0; the contract says why
    files = run.batches[1]
    proofs, data = encode_settlement(files.batch, files.proofs)
    at = _compact_signature_at(data, _first_withdrawal(files.batch).signature)
    zero_r = data[:at] + bytes(32) + data[at + 32 :]
    assert _reason(l1, dep, files.batch, files.proofs, data=zero_r) == "signature: r out of range"


def test_invalid_missing_signature(run, l1, dep):
    # the first withdrawal's signature left out: the data no longer parses as its segments
    files = run.batches[1]
    proofs, data = encode_settlement(files.batch, files.proofs)
    at = _compact_signature_at(data, _first_withdrawal(files.batch).signature)
    cut = data[:at] + data[at + 64 :]
    reason = _reason(l1, dep, files.batch, files.proofs, data=cut)
    # the next bytes are read as the missing signature (refused by the EIP-2 check or the
    # precompile, or recovering a key that is not the signer's), or the data runs short
    assert reason in ("signature: s out of range (EIP-2 requires s <= n/2)", "signature: no public key recovers from it",
                      "the proofs do not verify for the public inputs rebuilt from the data", "signature: r out of range",
                      "unknown record type", "settlement data: its length does not match its segments") or reason.endswith(
                      ("withdrawal not signed by the account's owner", "unknown record type")), reason


def test_invalid_oracle_not_signed_by_the_oracle(run, l1, dep):
    files = run.batches[1]

    def edit(data):
        segment = next(s for s in data["segments"] if s["oracle_update"])
        segment["oracle_update"]["signature"] = next(t for s in data["segments"] for t in s["transactions"] if t["type"] == "withdraw")["signature"]

    index = next(i for i, s in enumerate(files.batch.segments) if s.oracle_update)
    assert _reason(l1, dep, _changed(files.batch, edit), files.proofs) == f"segment {index}: oracle update not signed by the oracle"


def test_invalid_deposit_not_in_queue(run, dep):
    # batch 1 again on a fresh contract whose queue holds the same deposits but one amount differs
    l1 = L1.embedded()
    fresh = deploy_v3(l1, dep.shape, run.batches[0].vk, run.genesis, run.genesis_root)
    _queue_deposits(l1, fresh, run.batches[0].batch, extra=1)
    assert _reason(l1, fresh, run.batches[0].batch, run.batches[0].proofs) == "deposits do not match the L1 queue"


def test_invalid_oracle_previous_timestamp_changed(run, l1, dep):
    # the update's predecessor is part of what the oracle signed: another one is not its signature
    files = run.batches[1]

    def edit(data):
        segment = next(s for s in data["segments"] if s["oracle_update"])
        segment["oracle_update"]["previous_timestamp"] -= 1

    index = next(i for i, s in enumerate(files.batch.segments) if s.oracle_update)
    assert _reason(l1, dep, _changed(files.batch, edit), files.proofs) == f"segment {index}: oracle update not signed by the oracle"


def test_invalid_proof_swapped(run, l1, dep):
    files = run.batches[1]
    proofs = [files.proofs[1], files.proofs[0], *files.proofs[2:]]
    assert _reason(l1, dep, files.batch, proofs) == "the proofs do not verify for the public inputs rebuilt from the data"


def test_invalid_public_input_not_in_field(run, l1, dep):
    # root after + r: the same field element, a different integer
    files = run.batches[1]

    def edit(data):
        data["segments"][0]["root_after"] = "0x" + (int(data["segments"][0]["root_after"], 16) + R).to_bytes(32, "big").hex()

    assert _reason(l1, dep, _changed(files.batch, edit), files.proofs) == "segment 0: root after is not below r"


def test_invalid_settlement_too_large(run, l1, dep):
    # a contract compiled for two segments: the client refuses a longer batch before sending
    small = SettlementShape(dep.shape.n_slots, dep.shape.oracle, dep.shape.tree, max_segments=2)
    files = run.batches[1]
    with pytest.raises(SettlementTooLarge, match="exceed the contract's bounds"):
        settle(l1, type(dep)(small, dep.rollup, dep.verifier, dep.poseidon3, dep.poseidon4, dep.poseidon6), files.batch, files.proofs)


def _exit_args(run, account: int):
    state, shape = run.state, run.shape
    header, positions, orders = compute_account_fields(decode_account_leaf(encode_account(state.accounts[account])), shape.table)
    leaf_fields = [*header, hash_fields(positions), hash_fields(orders)]
    markets = hash_fields([f for m in get_market_states(state, shape) for f in m.fields()])
    globals_hash = hash_fields(get_globals_state(state).fields(shape.genesis_limbs))
    return get_exit_args(account, leaf_fields, run.accounts_tree.get_path(account), markets, globals_hash)


def _freeze(l1, dep, run):
    # a deposit the sequencer never consumes, older than the delay: anyone may freeze
    key = dev_account_key(SPEC.seed, 0)
    account = next(a for a, acc in run.state.accounts.items() if acc.address.lower() == get_address(key).lower())
    deposit(l1, dep, account, 1, key)
    with pytest.raises(L1Revert, match="nothing pending is overdue"):
        l1.send(dep.rollup.functions.freeze(), "freeze", gas=200_000)
    l1.tester.time_travel(l1.w3.eth.get_block("latest")["timestamp"] + 3601)
    l1.send(dep.rollup.functions.freeze(), "freeze", gas=200_000)
    assert dep.rollup.functions.frozen().call()


def test_exit_after_freeze_pays_once(run, l1, dep):
    files = run.batches[1]
    settle(l1, dep, files.batch, files.proofs)
    _freeze(l1, dep, run)
    account = max(run.state.accounts, key=lambda a: run.state.accounts[a].collateral)
    args = _exit_args(run, account)
    owner = run.state.accounts[account].address
    before = l1.balance(owner)
    l1.send(dep.rollup.functions.exit(*args), "exit", gas=3_000_000)
    assert l1.balance(owner) - before == run.state.accounts[account].collateral * UNIT_WEI
    with pytest.raises(L1Revert, match="account already exited"):
        l1.send(dep.rollup.functions.exit(*args), "exit", gas=3_000_000)


def test_invalid_exit_wrong_leaf_or_path(run, l1, dep):
    files = run.batches[1]
    settle(l1, dep, files.batch, files.proofs)
    _freeze(l1, dep, run)
    account = max(run.state.accounts, key=lambda a: run.state.accounts[a].collateral)
    args = _exit_args(run, account)
    more = list(args)
    more[2] += 1  # more collateral than the leaf holds
    with pytest.raises(L1Revert, match="account leaf is not in the stored root"):
        l1.send(dep.rollup.functions.exit(*more), "exit", gas=3_000_000)
    path = list(args)
    path[7] = [args[7][1], args[7][0], *args[7][2:]]  # two siblings swapped
    with pytest.raises(L1Revert, match="account leaf is not in the stored root"):
        l1.send(dep.rollup.functions.exit(*path), "exit", gas=3_000_000)
    aliased = list(args)
    aliased[2] += R  # the EVM Poseidon would reduce it to the same leaf
    with pytest.raises(L1Revert, match="leaf fields must be below r"):
        l1.send(dep.rollup.functions.exit(*aliased), "exit", gas=3_000_000)


def test_invalid_exit_before_freeze(run, l1, dep):
    account = next(iter(run.state.accounts))
    with pytest.raises(L1Revert, match="exits open only once the rollup is frozen"):
        l1.send(dep.rollup.functions.exit(*_exit_args(run, account)), "exit", gas=3_000_000)


def test_invalid_settlement_over_the_transaction_size_limit(run, l1, dep, monkeypatch):
    # geth's 128 KB, shrunk to this batch's size less one byte: refused before anything is sent
    import contracts.transition_client as client

    files = run.batches[1]
    proofs, data = encode_settlement(files.batch, files.proofs)
    size = len(dep.rollup.functions.settle(proofs, data)._encode_transaction_data()) // 2 - 1 + client.TX_OVERHEAD_BYTES
    monkeypatch.setattr(client, "TX_SIZE_LIMIT", size - 1)
    block = l1.block_number
    with pytest.raises(SettlementTooLarge, match="transaction limit of geth and reth"):
        settle(l1, dep, files.batch, files.proofs)
    assert l1.block_number == block


# --- TransitionVerifierV3.verify_combined: every point and scalar checked ----------------------------


def _combined_call(run, dep, proofs=None, rhos=(1, 2**127 + 5), inputs=None):
    """verify_combined's arguments for batch 1's first two segments (honest unless changed)."""
    from verifier.transition import compute_transition_inputs

    files = run.batches[0]
    evm_proofs, _ = encode_settlement(files.batch, files.proofs)
    proofs = evm_proofs[:2] if proofs is None else proofs
    inputs = compute_transition_inputs(files.batch, int(files.batch.prev_root, 16))[:2] if inputs is None else inputs
    rhos = list(rhos)[: len(proofs)]
    combined = [sum(rho * x[j] for rho, x in zip(rhos, inputs)) % R for j in range(len(inputs[0]))]
    return dep.verifier.functions.verify_combined(proofs, rhos, combined, sum(rhos) % R)


def _verify_reverts(call) -> str:
    with pytest.raises(Exception) as info:  # eth-tester's TransactionFailed through web3
        call.call({"gas": 10_000_000})
    return str(info.value)


def _twist_point_outside_g2():
    """A point of the twist E'(Fq2) outside the order-r subgroup (the twist's cofactor is about q,
    so almost every twist point is one), as EIP-197 words (x_imag, x_real, y_imag, y_real)."""
    from verifier.curve import BN254
    from verifier.evm import encode_g2

    q, fq2 = BN254.q, BN254.FQ2
    for k in range(1, 200):
        x = fq2([k, 1])
        rhs = x**3 + BN254.module.b2
        # a square root in Fq[i]/(i^2 + 1), q = 3 mod 4 (Adj and Rodriguez-Henriquez, alg. 9)
        a1 = rhs ** ((q - 3) // 4)
        alpha = a1 * a1 * rhs
        if alpha**q * alpha == -fq2.one():
            continue
        x0 = a1 * rhs
        y = fq2([0, 1]) * x0 if alpha == -fq2.one() else (fq2.one() + alpha) ** ((q - 1) // 2) * x0
        point = (x, y, fq2.one())
        if y * y == rhs and BN254.is_on_curve_g2(point) and not BN254.is_in_subgroup(point):
            data = encode_g2(point)
            return [int.from_bytes(data[i : i + 32], "big") for i in range(0, 128, 32)]
    raise AssertionError("no twist point outside G2 found")


def test_verifier_contract_accepts_the_honest_weighted_batch_only(run, dep):
    assert _combined_call(run, dep).call({"gas": 10_000_000}) is True
    # the same proofs with their public inputs swapped: well-formed, and false
    files = run.batches[0]
    from verifier.transition import compute_transition_inputs

    inputs = compute_transition_inputs(files.batch, int(files.batch.prev_root, 16))[:2]
    assert _combined_call(run, dep, inputs=inputs[::-1]).call({"gas": 10_000_000}) is False


def test_invalid_points_and_scalars_revert_with_reason(run, dep):
    from verifier.curve import BN254

    q = BN254.q
    files = run.batches[0]
    good = encode_settlement(files.batch, files.proofs)[0][:2]

    def second(changes):
        return [good[0], [changes.get(w, v) for w, v in enumerate(good[1])]]

    cases = {
        "proof 1: A is not on the curve": second({1: (good[1][1] + 1) % q}),
        "proof 1: C is not on the curve": second({7: (good[1][7] + 1) % q}),
        "proof 1: a coordinate is not below q": second({0: good[1][0] + q}),
        "proof 1: A is the point at infinity": second({0: 0, 1: 0}),
        "proof 1: C is the point at infinity": second({6: 0, 7: 0}),
        "proof 1: B is not in G2": second({5: (good[1][5] + 1) % q}),  # off the twist
        "proof 1: B is not in G2 ": second(dict(zip(range(2, 6), _twist_point_outside_g2()))),  # outside the subgroup
    }
    for reason, proofs in cases.items():
        assert reason.strip() in _verify_reverts(_combined_call(run, dep, proofs=proofs)), reason
    assert "weight 1 is not in [1, r)" in _verify_reverts(_combined_call(run, dep, rhos=(1, 0)))
    assert "weight 1 is not in [1, r)" in _verify_reverts(_combined_call(run, dep, rhos=(1, R + 1)))
    assert "empty batch" in _verify_reverts(dep.verifier.functions.verify_combined([], [], [0] * dep.shape.n_public, 0))
