"""The batch verifier on published data: a real proven batch verifies, every tampering is rejected
with its reason.

One node is set up once per session with 1-slot segment keys and two committed, proven batches
of a seeded workload: batch 1 holds the two deposits, batch 2 an oracle update and an option trade
(so each batch has two segments). Both are published; every tamper test edits a copy of the
published data in memory (or on disk, for the CLI) and asserts the verifier's reason code.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from rollup.cli.main import app
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.signing import dev_account_key, sign
from verifier.batch import VerificationError, verify_published_batch, verify_published_dir
from verifier.curve import BN254
from verifier.encoding import (
    GLOBALS_KEY,
    account_key,
    decode_account_leaf,
    decode_instrument_leaf,
    encode_account_leaf,
    encode_instrument_leaf,
    instrument_key,
)
from verifier.published import Published, PublishedBatch, read_published
from verifier.wire import OptionTrade

runner = CliRunner()
SEED = 3


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    # --json: the verdict is on stdout (an error's message goes to stderr)
    return result.stdout if "--json" in args else result.output


@pytest.fixture(scope="session")
def node(tmp_path_factory) -> dict[str, Any]:
    """A node with two proven batches, each published to its own directory."""
    root = tmp_path_factory.mktemp("batch_verifier")
    workload = generate_workload(WorkloadSpec(accounts=2, txs=1, seed=SEED), workers=1)
    assert [tx.type for tx in workload.transactions] == ["deposit", "deposit", "oracle_update", "option_trade"]
    (root / "genesis.json").write_text(workload.genesis.model_dump_json())
    home = root / "home"
    run("init", "--home", str(home), "--genesis", str(root / "genesis.json"), "--json")
    for number, chunk in ((1, workload.transactions[:2]), (2, workload.transactions[2:])):
        path = root / f"txs-{number}.jsonl"
        path.write_text("".join(tx.model_dump_json() + "\n" for tx in chunk))
        out = json.loads(run("submit", str(path), "--home", str(home), "--executor", "serial", "--json"))
        assert out["accepted"] == 2
    run("setup", "--slots", "1", "--home", str(home), "--json")
    proven = json.loads(run("prove", "--home", str(home), "--executor", "serial", "--json"))
    assert proven["proven"] == 4
    published = {}
    for number in (1, 2):
        directory = root / f"published-{number}"
        out = json.loads(run("publish", str(number), str(directory), "--home", str(home), "--json"))
        assert out["segments"] == 2
        published[number] = directory
    return {"home": home, "published": published, "workload": workload}


@pytest.fixture(scope="session")
def batches(node) -> dict[int, Published]:
    return {number: read_published(directory) for number, directory in node["published"].items()}


def edit(published: Published, change: Callable[[dict], None] | None = None) -> Published:
    """A deep copy of the published data, with `change` applied to batch.json's JSON."""
    data = json.loads(published.batch.model_dump_json())
    if change is not None:
        change(data)
    return Published(
        PublishedBatch.model_validate_json(json.dumps(data)),
        copy.deepcopy(published.vk),
        copy.deepcopy(published.proofs),
        copy.deepcopy(published.public),
    )


def reject(published: Published, reason: str) -> VerificationError:
    with pytest.raises(VerificationError) as info:
        verify_published_batch(published, rng=random.Random(7))
    assert info.value.reason == reason, info.value.message
    return info.value


def get_leaf(data: dict, segment: int, step: int, key: int) -> dict:
    return next(leaf for leaf in data["segments"][segment]["steps"][step] if leaf["key"] == key)


def bump_collateral(hex_leaf: str, delta: int = 1) -> str:
    leaf = decode_account_leaf(bytes.fromhex(hex_leaf[2:]))
    positions = [(p.instrument, p.size, p.cost, p.funding) for p in leaf.positions]
    return "0x" + encode_account_leaf(leaf.address, leaf.collateral + delta, leaf.nonce, positions).hex()


def bump_mark(hex_leaf: str, delta: int = 1) -> str:
    leaf = decode_instrument_leaf(bytes.fromhex(hex_leaf[2:]))
    return "0x" + encode_instrument_leaf(
        leaf.id, leaf.kind, (leaf.mark or 0) + delta, leaf.funding_index, leaf.open_interest, leaf.settlement, leaf.risk_array
    ).hex()


# --- the honest batches verify ------------------------------------------------------------------


def test_published_batches_verify(batches):
    for number, published in batches.items():
        report = verify_published_batch(published, rng=random.Random(1))
        assert report.batch == number and report.n_segments == 2 and report.n_accepted == 2
        assert report.new_root == published.batch.new_root and report.commitment == published.batch.commitment
        assert set(report.timings) >= {"before_leaves", "chaining", "transactions", "public_inputs", "proofs", "new_root"}
    # the published public files are a convenience: without them the batch verifies the same
    without = edit(batches[2])
    without.public = [None] * len(without.public)
    assert verify_published_batch(without).batch == 2


def test_cli_verifies_published_and_node_batches(node, tmp_path):
    directory = node["published"][2]
    home = str(node["home"])  # the node's keys pin the verifying key
    out = json.loads(run("verify", "--published", str(directory), "--home", home, "--json"))
    assert out["valid"] is True and out["reason"] is None and out["report"]["batch"] == 2
    assert set(out["checks"]) >= {"proofs", "new_root", "commitment"}
    assert "VALID" in run("verify", "--published", str(directory), "--home", home)
    # from the node: publishes to a temporary directory, then verifies that
    assert json.loads(run("verify", "1", "--home", str(node["home"]), "--json"))["valid"] is True
    vk_hash = out["report"]["vk_hash"]
    assert json.loads(run("verify", "--home", str(node["home"]), "--vk-hash", vk_hash, "--json"))["report"]["batch"] == 2
    # the chain's root pinned: batch 2 starts where batch 1 ended, not at genesis
    batch_1_root = json.loads(run("verify", "--published", str(node["published"][1]), "--home", home, "--json"))["report"]["new_root"]
    assert json.loads(run("verify", "--published", str(directory), "--home", home, "--prev-root", batch_1_root, "--json"))["valid"] is True
    genesis_root = json.loads(run("verify", "--published", str(node["published"][1]), "--home", home, "--json"))["report"]["prev_root"]
    stale = json.loads(run("verify", "--published", str(directory), "--home", home, "--prev-root", genesis_root, "--json", code=1))
    assert stale["reason"] == "prev_root_mismatch"
    assert "--prev-root must be 32 bytes" in run("verify", "--published", str(directory), "--home", home, "--prev-root", "0x12", code=1)
    # a pinned key that is not the batch's
    bad = run("verify", "--published", str(directory), "--vk-hash", "0x" + "11" * 32, "--json", code=1)
    assert json.loads(bad)["reason"] == "vk_hash_mismatch"
    # a tampered file on disk: exit 1 with the reason
    copied = tmp_path / "copy"
    shutil.copytree(directory, copied)
    data = json.loads((copied / "batch.json").read_text())
    data["new_root"] = "0x" + "22" * 32
    (copied / "batch.json").write_text(json.dumps(data))
    verdict = json.loads(run("verify", "--published", str(copied), "--home", home, "--json", code=1))
    assert verdict == {**verdict, "valid": False, "reason": "new_root_mismatch"}
    assert "INVALID (new_root_mismatch)" in run("verify", "--published", str(copied), "--home", home, code=1)
    (copied / "proofs" / "segment-1.json").unlink()
    assert json.loads(run("verify", "--published", str(copied), "--home", home, "--json", code=1))["reason"] == "malformed"
    assert "no committed batch 9" in run("publish", "9", str(tmp_path / "x"), "--home", str(node["home"]), code=1)


def test_cli_verify_pins_the_key_instead_of_trusting_the_published_one(node, tmp_path):
    """A batch proven under a key of the prover's choosing (its own setup) is refused: the key
    is pinned to the node's (security review, finding 3: `--published` trusted the directory's key)."""
    home = str(node["home"])
    other = tmp_path / "other"
    shutil.copytree(node["home"], other)
    run("setup", "--slots", "1", "--force", "--home", str(other), "--json")
    run("prove", "1", "--home", str(other), "--executor", "serial", "--json")
    forged = tmp_path / "forged"
    run("publish", "1", str(forged), "--home", str(other), "--json")
    verdict = json.loads(run("verify", "--published", str(forged), "--home", home, "--json", code=1))
    assert verdict["reason"] == "vk_hash_mismatch" and verdict["vk_pinned_by"] == "node keys"
    # under its own key the batch verifies: only the pin tells it apart
    trusted = json.loads(run("verify", "--published", str(forged), "--trust-published-key", "--home", str(tmp_path / "none"), "--json"))
    assert trusted["valid"] is True and trusted["vk_pinned_by"] == "unpinned"


def test_cli_verify_refuses_an_unpinned_key_without_the_flag(node, tmp_path):
    directory = str(node["published"][1])
    nowhere = str(tmp_path / "no-node")
    assert "the verifying key is not pinned" in run("verify", "--published", directory, "--home", nowhere, code=1)
    result = runner.invoke(app, ["verify", "--published", directory, "--home", nowhere, "--trust-published-key"])
    assert result.exit_code == 0 and "WARNING: the verifying key is not pinned" in result.output and "VALID" in result.output
    # an L1 deployment's recorded key hash pins it too
    vk_hash = json.loads(run("verify", "--published", directory, "--home", str(node["home"]), "--json"))["report"]["vk_hash"]
    deployment = tmp_path / "deployment.json"
    fields = {"rollup": "0x" + "01" * 20, "batch_verifier": "0x" + "02" * 20, "groth16_verifier": "0x" + "03" * 20, "n_slots": 1, "genesis_root": "0x" + "00" * 32}
    deployment.write_text(json.dumps({**fields, "vk_hash": vk_hash}))
    out = json.loads(run("verify", "--published", directory, "--home", nowhere, "--deployment", str(deployment), "--json"))
    assert out["valid"] is True and out["vk_pinned_by"] == "deployment"
    deployment.write_text(json.dumps({**fields, "vk_hash": "0x" + "11" * 32}))
    assert json.loads(run("verify", "--published", directory, "--deployment", str(deployment), "--json", code=1))["reason"] == "vk_hash_mismatch"


# --- the tamper suite ---------------------------------------------------------------------------


def test_changed_transaction_field_is_rejected(batches):
    def amount(data: dict) -> None:
        data["transactions"][1]["amount"] += 1

    # a deposit is unsigned: its receipt names its hash (and with an L1, the queue disagrees)
    reject(edit(batches[1], amount), "receipt_mismatch")

    def premium(data: dict) -> None:
        data["transactions"][1]["premium"] += 1

    reject(edit(batches[2], premium), "bad_signature")


def test_forged_signature_and_wrong_nonce_are_rejected(batches, node):
    chain_id = node["workload"].genesis.signing_domain
    trade = OptionTrade.model_validate_json(json.dumps(json.loads(batches[2].batch.model_dump_json())["transactions"][1]))
    forged = sign(trade, [dev_account_key(99, 0), dev_account_key(SEED, 1)], chain_id)  # not the buyer's key

    def put(tx: OptionTrade) -> Callable[[dict], None]:
        return lambda data: data["transactions"].__setitem__(1, json.loads(tx.model_dump_json()))

    error = reject(edit(batches[2], put(forged)), "bad_signature")
    assert "account 0" in error.message
    # properly signed by both keys, but not the buyer's next nonce
    replayed = sign(trade.model_copy(update={"buyer_nonce": 1}), [dev_account_key(SEED, 0), dev_account_key(SEED, 1)], chain_id)
    reject(edit(batches[2], put(replayed)), "bad_nonce")


def test_changed_diff_leaves_are_rejected(batches):
    buyer = account_key(0)

    def before(data: dict) -> None:  # the trade's buyer leaf no longer chains from the previous state
        leaf = get_leaf(data, 1, 0, buyer)
        leaf["before"] = bump_collateral(leaf["before"])

    reject(edit(batches[2], before), "broken_chain")

    def before_state(data: dict) -> None:  # a before leaf the previous root does not hold
        leaf = next(item for item in data["leaves_before"] if item["key"] == buyer)
        leaf["value"] = bump_collateral(leaf["value"])
        get_leaf(data, 1, 0, buyer)["before"] = leaf["value"]

    reject(edit(batches[2], before_state), "prev_root_mismatch")

    def after(data: dict) -> None:  # the last write of the buyer: no later step reads it, the proof binds it
        leaf = get_leaf(data, 1, 0, buyer)
        leaf["after"] = bump_collateral(leaf["after"])

    error = reject(edit(batches[2], after), "proof_invalid")
    assert "segment 1" in error.message


def test_extra_unproven_leaf_in_a_step_is_rejected(batches):
    market = instrument_key(0)

    def extra(data: dict) -> None:
        # a deposit's step that also rewrites a market's mark: chained, and in the claimed root
        value = next(item["value"] for item in data["leaves_before"] if item["key"] == market)
        step = data["segments"][0]["steps"][0]
        step.append({"key": market, "before": value, "after": bump_mark(value)})
        step.sort(key=lambda leaf: leaf["key"])

    error = reject(edit(batches[1], extra), "step_mismatch")
    assert hex(market) in error.message


def test_changed_roots_are_rejected(batches):
    reject(edit(batches[2], lambda data: data.__setitem__("new_root", batches[1].batch.new_root)), "new_root_mismatch")
    reject(edit(batches[2], lambda data: data.__setitem__("prev_root", batches[2].batch.new_root)), "prev_root_mismatch")
    reject(edit(batches[2], lambda data: data.__setitem__("commitment", "0x" + "33" * 32)), "commitment_mismatch")


def test_changed_oracle_values_are_rejected(batches):
    series = instrument_key(4)  # the traded series

    def signed_mark(data: dict) -> None:
        data["transactions"][0]["marks"][0]["price"] += 1

    reject(edit(batches[2], signed_mark), "bad_signature")

    def written_mark(data: dict) -> None:
        # the oracle update writes a mark it did not sign, consistently chained into the trade
        leaf = get_leaf(data, 0, 0, series)
        leaf["after"] = bump_mark(leaf["after"])
        trade = get_leaf(data, 1, 0, series)
        trade["before"], trade["after"] = bump_mark(trade["before"]), bump_mark(trade["after"])

    reject(edit(batches[2], written_mark), "oracle_write_mismatch")

    def trade_writes_mark(data: dict) -> None:  # a trade may move open interest only
        leaf = get_leaf(data, 1, 0, series)
        leaf["after"] = bump_mark(leaf["after"])

    reject(edit(batches[2], trade_writes_mark), "instrument_write_mismatch")

    def instrument_before(data: dict) -> None:  # an oracle view the previous root does not hold
        leaf = next(item for item in data["leaves_before"] if item["key"] == instrument_key(7))
        leaf["value"] = bump_mark(leaf["value"])

    reject(edit(batches[2], instrument_before), "prev_root_mismatch")


def test_reordered_dropped_duplicated_segments_are_rejected(batches):
    def swap(data: dict) -> None:
        data["segments"].reverse()

    reject(edit(batches[2], swap), "segment_order")

    def swap_renumbered(data: dict) -> None:
        data["segments"].reverse()
        for index, segment in enumerate(data["segments"]):
            segment["index"] = index

    reject(edit(batches[2], swap_renumbered), "segment_coverage")

    dropped = edit(batches[2], lambda data: data["segments"].pop())
    dropped.proofs.pop()
    dropped.public.pop()
    error = reject(dropped, "segment_coverage")
    assert "in no segment" in error.message

    def duplicate(data: dict) -> None:
        data["segments"].append({**data["segments"][1], "index": 2})

    duplicated = edit(batches[2], duplicate)
    duplicated.proofs.append(duplicated.proofs[1])
    duplicated.public.append(duplicated.public[1])
    reject(duplicated, "segment_coverage")


def test_replayed_and_swapped_proofs_are_rejected(batches):
    # batch 1's proof of segment 0 presented for batch 2's segment 0
    replayed = edit(batches[2])
    replayed.proofs[0] = copy.deepcopy(batches[1].proofs[0])
    reject(replayed, "proof_invalid")
    # the same segments and proofs claimed for another batch number
    reject(edit(batches[2], lambda data: data.__setitem__("number", 3)), "proof_invalid")
    swapped = edit(batches[2])
    swapped.proofs.reverse()
    reject(swapped, "proof_invalid")


def test_aliased_public_input_is_rejected_never_accepted(batches):
    aliased = edit(batches[2])
    aliased.public[0][0] = str(int(aliased.public[0][0]) + BN254.r)  # the batch number + r
    reject(aliased, "public_input_not_in_field")
    other = edit(batches[2])
    other.public[1][5] = str(int(other.public[1][5]) + 1)
    reject(other, "public_input_mismatch")


def test_published_directory_round_trip(node, batches, tmp_path):
    from verifier.published import write_published

    write_published(tmp_path, batches[1])
    assert verify_published_dir(tmp_path).batch == 1
    with pytest.raises(VerificationError) as info:
        verify_published_dir(tmp_path / "missing")
    assert info.value.reason == "malformed"


# --- every transaction type, without proofs -----------------------------------------------------


@pytest.fixture(scope="module")
def mixed_node(tmp_path_factory):
    """A node with one committed batch holding every transaction type (and a few rejected ones)."""
    from rollup.node import Node

    workload = generate_workload(WorkloadSpec(accounts=8, txs=120, seed=5, invalid_share=0.05), workers=1)
    node = Node.init(tmp_path_factory.mktemp("mixed") / "home", workload.genesis)
    result = node.submit(workload.transactions, max_batch_txs=None).batch
    accepted = {r.type for r in result.receipts if r.status == "accepted"}
    assert accepted == {"deposit", "withdraw", "transfer", "perp_trade", "option_trade", "liquidate", "settle_expired", "oracle_update"}
    assert any(r.status == "rejected" for r in result.receipts)
    yield node, workload.genesis
    node.close()


@pytest.mark.parametrize("n_slots", [1, 3])
def test_verifier_rebuilds_the_provers_public_inputs_for_every_type(mixed_node, n_slots):
    """The verifier's native checks accept an honest batch of every type, and the public inputs it
    rebuilds from published data are the prover's, word for word; roots and commitment match."""
    from rollup.publish import build_published_batch
    from verifier.batch import check_batch_data, check_commitment, check_new_root
    from verifier.segment import SegmentShape, compute_public_inputs

    node, genesis = mixed_node
    shape = SegmentShape.from_genesis(genesis, n_slots)
    batch, segments = build_published_batch(node.store, genesis, 1, shape, "0x" + "00" * 32)
    data = check_batch_data(batch, shape)
    assert data.inputs == [compute_public_inputs(segment.public) for segment in segments]
    check_new_root(batch, data.leaves_before, data.net)
    assert "0x" + check_commitment(batch, data.diffs).hex() == batch.commitment
    # an oracle update's written leaf changed consistently everywhere later is still caught natively
    oracle = next(i for i, tx in enumerate(batch.transactions) if tx.type == "oracle_update" and i in data.accepted)
    segment = next(s for s in batch.segments if oracle in s.tx_indices)
    step = segment.steps[segment.tx_indices.index(oracle)]
    written = next(leaf for leaf in step if leaf.key != GLOBALS_KEY)
    tampered = json.loads(batch.model_dump_json().replace(written.after[2:], bump_mark(written.after)[2:]))
    with pytest.raises(VerificationError) as info:
        check_batch_data(PublishedBatch.model_validate_json(json.dumps(tampered)), shape)
    assert info.value.reason == "oracle_write_mismatch", info.value.message


def test_deposits_are_checked_against_the_l1_queue(batches):
    """With the L1 queue to ask, a deposit nobody made on L1 is refused (security review,
    finding 4: off chain, any key could sign a deposit and mint collateral)."""
    from verifier.batch import compute_queue_hash

    published = batches[1]
    deposits = [tx for tx in published.batch.transactions if tx.type == "deposit"]
    assert len(deposits) == 2
    hashes = [bytes(32)]
    for tx in deposits:
        hashes.append(compute_queue_hash(hashes[-1], tx))
    report = verify_published_batch(published, rng=random.Random(3), deposit_queue=lambda n: hashes[n] if n < len(hashes) else bytes(32))
    assert report.deposits_checked is True
    # the L1 queue holds only the first deposit: the second mints collateral nobody paid
    with pytest.raises(VerificationError) as info:
        verify_published_batch(published, rng=random.Random(3), deposit_queue=lambda n: hashes[n] if n < 2 else bytes(32))
    assert info.value.reason == "deposit_not_queued"
    # another amount on L1 than in the batch
    other = compute_queue_hash(hashes[1], deposits[1].model_copy(update={"amount": deposits[1].amount + 1}))
    with pytest.raises(VerificationError) as info:
        verify_published_batch(published, rng=random.Random(3), deposit_queue=lambda n: [*hashes[:2], other][n] if n < 3 else bytes(32))
    assert info.value.reason == "deposit_not_queued"
