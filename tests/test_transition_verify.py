"""Circuit v3 end to end: a replayed batch is proven, published and verified from published data
only (verifier/transition.py); every published item a prover could change is caught, each with
its reason."""

from __future__ import annotations

import copy
import random

import pytest

from prover.circuits.transition import TransitionShape, build_transition_circuit
from prover.setup import setup
from prover.transition_publish import get_accepted
from prover.transition_segments import build_published_transition, build_transition_batch, prove_transition_batch
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.state import State
from rollup.state_tree import PoseidonTree
from verifier.snarkjs import compute_vk_hash
from verifier.encoding import compute_genesis_hash
from rollup.replay import PublicSegment, replay_public_data
from verifier.oracle_section import OracleShape, compute_oracle_section, compute_oracle_words
from verifier.pubdata import compute_record_words, compute_records_hash, encode_record
from verifier.snarkjs import format_verifying_key
from verifier.state_tree import TreeShape
from verifier.transition import (
    PublishedFiles,
    PublishedTransition,
    VerificationError,
    read_transition,
    to_field_hex,
    verify_transition,
    write_transition,
)

TREE = TreeShape(depth=2, arity=4)  # 16 accounts
N_SLOTS = 2
MIX = {"perp_trade": 4, "fill": 3, "option_trade": 2, "transfer": 2, "withdraw": 2, "oracle_update": 2}


@pytest.fixture(scope="module")
def published():
    workload = generate_workload(WorkloadSpec(accounts=6, perps=1, series=1, txs=14, seed=9, mix=MIX), workers=1)
    genesis = workload.genesis
    txs, signers = get_accepted(genesis, workload.transactions)
    shape = TransitionShape.from_genesis(genesis, compute_genesis_hash(genesis), N_SLOTS, TREE)
    state, tree = State.from_genesis(genesis), PoseidonTree(TREE)
    # a first batch (the deposits) makes a non-trivial previous state; the second is published
    first = sum(1 for tx in txs if tx.type == "deposit")
    batch1 = build_transition_batch(state, tree, shape, 1, txs[:first], signers[:first])
    batch = build_transition_batch(state, tree, shape, 2, txs[first:], signers[first:])
    pk = setup(build_transition_circuit(shape, batch.witnesses[0]), seed=1)
    vk = format_verifying_key(pk.vk)
    files = build_published_transition(batch, genesis, vk, prove_transition_batch(batch, pk, seed=1), compute_vk_hash(vk))
    batch.previous = batch1  # type: ignore[attr-defined]  (the first batch, for the replay test)
    return files, batch


def _verify(files, **kwargs):
    return verify_transition(files, compute_vk_hash(files.vk), rng=random.Random(3), **kwargs)


def _reason(files, **kwargs) -> str:
    with pytest.raises(VerificationError) as info:
        _verify(files, **kwargs)
    return info.value.reason


def _changed(files, **batch_fields):
    data = files.batch.model_dump()
    data.update(batch_fields)
    return PublishedFiles(PublishedTransition.model_validate(data), files.vk, files.proofs, files.public)


def test_batch_verifies(published, tmp_path):
    files, batch = published
    assert any(seg.oracle_update for seg in batch.segments)
    report = _verify(files, expected_prev_root=batch.prev_root)
    assert report.new_root == to_field_hex(batch.new_root)
    assert report.n_segments == len(batch.segments) >= 2
    assert report.public_data_bytes <= 38 * report.n_transactions
    write_transition(tmp_path / "pub", files)
    assert _verify(read_transition(tmp_path / "pub")).new_root == report.new_root


def test_records_public_input_is_the_records_alone(published):
    # a segment's last public input is the hash of its records' words: no signer, no signature
    # (verified in the proof); no-op slots pad it
    files, batch = published
    for seg, w in zip(batch.segments, batch.witnesses):
        records = [compute_record_words(tx) for tx in seg.transactions]
        records += [compute_record_words(None)] * (N_SLOTS - len(records))
        assert w.public[-1] == compute_records_hash(records)


def test_invalid_unpinned_wrong_key(published):
    files, _ = published
    with pytest.raises(VerificationError) as info:
        verify_transition(files, b"\x01" * 32)
    assert info.value.reason == "vk_hash_mismatch"


def test_invalid_other_chain(published):
    files, batch = published
    assert _reason(files, expected_prev_root=batch.prev_root + 1) == "prev_root_mismatch"


def test_invalid_transaction_changed(published):
    # a trade's price: the record changes, and the parties' L2 signatures (over the old record) do not verify
    files, _ = published
    data = files.batch.model_dump()
    seg = next(s for s in data["segments"] if any(t["type"] == "perp_trade" for t in s["transactions"]))
    trade = next(t for t in seg["transactions"] if t["type"] == "perp_trade")
    trade["price"] += 1
    assert _reason(PublishedFiles(PublishedTransition.model_validate(data), files.vk, files.proofs, files.public)) == "bad_signature"


def test_invalid_root_after_changed(published):
    files, _ = published
    data = files.batch.model_dump()
    data["segments"][0]["root_after"] = to_field_hex(int(data["segments"][0]["root_after"], 16) ^ 1)
    assert _reason(PublishedFiles(PublishedTransition.model_validate(data), files.vk, files.proofs, files.public)) == "proof_invalid"


def test_invalid_state_after_changed(published):
    files, _ = published
    after = dict(files.batch.accounts_after)
    key = next(iter(after))
    before = files.batch.accounts_before[key]
    after[key] = before  # as if the account had not changed
    assert _reason(_changed(files, accounts_after=after)) == "new_root_mismatch"


def test_invalid_account_left_out(published):
    files, _ = published
    before = dict(files.batch.accounts_before)
    before.pop(next(iter(before)))
    assert _reason(_changed(files, accounts_before=before)) == "account_set_mismatch"


def test_invalid_previous_state_changed(published):
    files, _ = published
    nodes = list(files.batch.multiproof)
    nodes[0] = to_field_hex(int(nodes[0], 16) ^ 1)
    assert _reason(_changed(files, multiproof=nodes)) == "prev_root_mismatch"


def test_invalid_oracle_update_signed_by_another_key(published):
    files, _ = published
    data = files.batch.model_dump()
    seg = next(s for s in data["segments"] if s["oracle_update"])
    seg["oracle_update"]["signature"] = next(
        t for s in data["segments"] for t in s["transactions"] if t["type"] == "withdraw"
    )["signature"]
    assert _reason(PublishedFiles(PublishedTransition.model_validate(data), files.vk, files.proofs, files.public)) == "bad_signature"


def test_invalid_published_public_input(published):
    files, _ = published
    public = copy.deepcopy(files.public)
    public[0][4] = str(int(public[0][4]) + 1)
    assert _reason(PublishedFiles(files.batch, files.vk, files.proofs, public)) == "public_input_mismatch"


def test_invalid_proof_swapped(published):
    files, _ = published
    proofs = [files.proofs[1], files.proofs[0], *files.proofs[2:]]
    assert _reason(PublishedFiles(files.batch, files.vk, proofs, files.public)) == "proof_invalid"


def test_state_rebuilt_from_public_data_alone(published):
    # data availability: genesis and the records (and oracle sections) of every batch give the
    # same roots, without the node, the signatures or the published leaves
    files, batch = published
    first = batch.previous  # type: ignore[attr-defined]
    oracle_shape = OracleShape(batch.shape.table, batch.shape.n_scenarios)

    def public_data(b):
        return [
            PublicSegment(
                compute_oracle_words(compute_oracle_section(seg.oracle_update, oracle_shape), oracle_shape) if seg.oracle_update else None,
                b"".join(encode_record(tx) for tx in seg.transactions),
            )
            for seg in b.segments
        ]

    # fills replay from their records (the order bounds they do not carry were proven)
    assert any(tx.type == "fill" for seg in batch.segments for tx in seg.transactions)
    _, roots = replay_public_data(files.batch.genesis, [public_data(first), public_data(batch)], TREE)
    assert roots == [first.new_root, batch.new_root]
    assert first.new_root == batch.prev_root
