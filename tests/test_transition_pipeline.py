"""Circuit v3 from the node: committed batches replayed from the store as v3 segments, proven,
published to a directory and verified from it, the second batch chained to the first."""

from __future__ import annotations

import random

import pytest

from prover.circuits.transition import TransitionShape, build_transition_circuit
from prover.setup import setup
from prover.transition_segments import (
    TransitionReplayError,
    build_published_transition,
    load_transition_batch,
    prove_transition_batch,
)
from rollup.fixtures import WorkloadSpec, generate_workload
from verifier.snarkjs import compute_vk_hash
from verifier.encoding import compute_genesis_hash
from verifier.snarkjs import format_verifying_key
from verifier.state_tree import TreeShape
from verifier.transition import VerificationError, read_transition, verify_transition, write_transition

TREE = TreeShape(depth=2, arity=4)
MIX = {"perp_trade": 6, "option_trade": 2, "transfer": 2, "withdraw": 2, "oracle_update": 2}


@pytest.fixture(scope="module")
def node_batches(tmp_path_factory):
    from rollup.node import Node

    workload = generate_workload(WorkloadSpec(accounts=5, perps=1, series=1, txs=12, seed=21, mix=MIX), workers=1)
    node = Node.init(tmp_path_factory.mktemp("node") / "home", workload.genesis)
    deposits = sum(1 for tx in workload.transactions if tx.type == "deposit")
    node.submit(workload.transactions[:deposits])
    node.submit(workload.transactions[deposits:])
    shape = TransitionShape.from_genesis(workload.genesis, compute_genesis_hash(workload.genesis), 2, TREE)
    batches = [load_transition_batch(node.store, workload.genesis, n, shape) for n in (1, 2)]
    pk = setup(build_transition_circuit(shape, batches[1].witnesses[0]), seed=2)
    vk = format_verifying_key(pk.vk)
    published = [
        build_published_transition(b, workload.genesis, vk, prove_transition_batch(b, pk, seed=3), compute_vk_hash(vk)) for b in batches
    ]
    yield node, workload, shape, batches, published
    node.close()


def test_batches_verify_in_a_chain(node_batches, tmp_path):
    node, workload, shape, batches, published = node_batches
    assert batches[0].new_root == batches[1].prev_root
    prev = None
    for files in published:
        write_transition(tmp_path / str(files.batch.batch), files)
        report = verify_transition(read_transition(tmp_path / str(files.batch.batch)), compute_vk_hash(files.vk), prev, rng=random.Random(1))
        prev = int(report.new_root, 16)
    assert prev == batches[1].new_root


def test_invalid_batch_out_of_chain(node_batches):
    _, _, _, batches, published = node_batches
    with pytest.raises(VerificationError) as info:
        verify_transition(published[1], compute_vk_hash(published[1].vk), batches[1].prev_root + 1)
    assert info.value.reason == "prev_root_mismatch"


def test_invalid_replay_of_a_missing_batch(node_batches):
    node, workload, shape, _, _ = node_batches
    with pytest.raises(TransitionReplayError, match="no committed batch 9"):
        load_transition_batch(node.store, workload.genesis, 9, shape)
