"""Segments of committed batches: replay, chaining, commitments, public inputs from published data.

No keys, no proofs here (tests/test_prove_pipeline.py proves): the node commits two batches of a
seeded workload, and the prover's segments of each are checked against what the node committed
and against what a verifier rebuilds from published data.
"""

from __future__ import annotations

import pytest

from prover.segments import (
    SegmentReplayError,
    count_segments,
    get_batch_commitment,
    get_instrument_leaves,
    load_segments,
)
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.node import Node
from rollup.storage import get_accepted_indices, get_leaves_before
from verifier.commitments import (
    BrokenChain,
    compute_entry_hash,
    compute_merkle_root,
    compute_segment_root,
    fold_leaf_changes,
    fold_segment_diffs,
)
from verifier.encoding import decode_account_leaf, decode_key, encode_account_leaf
from verifier.merkle import EMPTY_LEAF, hash_pair, keccak256
from verifier.segment import SLOT_TYPES, SegmentShape, compute_public_inputs, compute_segment_public


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A node with two committed batches; the leaves after each."""
    workload = generate_workload(WorkloadSpec(accounts=6, txs=40, seed=21, invalid_share=0.1), workers=1)
    node = Node.init(tmp_path_factory.mktemp("segments") / "home", workload.genesis)
    genesis_leaves = dict(node.leaves)
    half = len(workload.transactions) // 2
    node.submit(workload.transactions[:half], max_batch_txs=None).batch
    after_first = dict(node.leaves)
    node.submit(workload.transactions[half:], max_batch_txs=None).batch
    yield node, workload.genesis, [genesis_leaves, after_first, dict(node.leaves)]
    node.close()


def apply_diff(leaves: dict[int, bytes], diff) -> dict[int, bytes]:
    out = dict(leaves)
    for key, _, after in diff:
        if after:
            out[key] = after
        else:
            out.pop(key, None)
    return out


def test_leaves_before_revert_later_batches(chain):
    node, _, states = chain
    assert get_leaves_before(node.store, 1) == states[0]
    assert get_leaves_before(node.store, 2) == states[1]
    assert get_leaves_before(node.store, 3) == states[2]


@pytest.mark.parametrize("n_slots", [1, 3, 4])
def test_segments_replay_to_the_post_state(chain, n_slots):
    node, genesis, states = chain
    shape = SegmentShape.from_genesis(genesis, n_slots)
    for batch in (1, 2):
        segments = load_segments(node.store, genesis, batch, shape)
        accepted = get_accepted_indices(node.store, batch)
        assert len(segments) == count_segments(len(accepted), n_slots)
        # accepted transactions only, in batch (submission) order
        assert [i for s in segments for i in s.tx_indices] == accepted
        assert [s.index for s in segments] == list(range(len(segments)))
        # every segment full but the last, padded with no-ops
        assert all(len(s.transactions) == n_slots for s in segments[:-1])
        padding = n_slots - len(segments[-1].transactions)
        assert all(slot.flags == [0] * len(SLOT_TYPES) for slot in segments[-1].public.slots[n_slots - padding :])
        leaves = states[batch - 1]
        for segment in segments:
            leaves = apply_diff(leaves, segment.diff)
        assert leaves == states[batch]


def test_chaining_inside_and_across_segments(chain):
    node, genesis, states = chain
    segments = load_segments(node.store, genesis, 2, SegmentShape.from_genesis(genesis, 3))
    steps = [step for s in segments for step in s.steps]
    # the globals leaf is in every step: it chains through the whole batch
    assert fold_leaf_changes(steps, states[1]) == fold_segment_diffs([s.diff for s in segments], states[1])
    # a step whose "before" is not the previous "after"
    key, (before, after) = next(iter(steps[1].items()))
    broken = [steps[0], {**steps[1], key: (before + b"\x00", after)}] + steps[2:]
    with pytest.raises(BrokenChain):
        fold_leaf_changes(broken)
    # a segment whose "before" is not the previous segment's "after"
    k, b, a = segments[1].diff[-1]
    diffs = [s.diff for s in segments]
    diffs[1] = diffs[1][:-1] + [(k, states[1].get(k, b"") + b"\x01", a)]
    with pytest.raises(BrokenChain):
        fold_segment_diffs(diffs, states[1])


def test_commitments_are_deterministic_and_bind_every_leaf(chain):
    node, genesis, _ = chain
    shape = SegmentShape.from_genesis(genesis, 4)
    first = load_segments(node.store, genesis, 1, shape)
    again = load_segments(node.store, genesis, 1, shape)
    assert [s.root for s in first] == [s.root for s in again]
    assert get_batch_commitment(first) == get_batch_commitment(again)
    assert get_batch_commitment(first) == compute_merkle_root([s.root for s in first])
    diff = first[0].diff
    key, before, after = diff[0]
    assert compute_segment_root([(key, before, after + b"\x00")] + diff[1:]) != first[0].root
    assert compute_segment_root([(key, after, before)] + diff[1:]) != first[0].root
    # swapping two segments changes the batch commitment
    swapped = [first[1], first[0], *first[2:]]
    assert get_batch_commitment(swapped) != get_batch_commitment(first)
    with pytest.raises(ValueError):
        compute_segment_root(list(reversed(diff)))


def test_merkle_root_layout():
    a, b, c = (keccak256(bytes([i])) for i in range(3))
    assert compute_merkle_root([]) == EMPTY_LEAF
    assert compute_merkle_root([a]) == a
    assert compute_merkle_root([a, b]) == hash_pair(a, b)
    assert compute_merkle_root([a, b, c]) == hash_pair(hash_pair(a, b), hash_pair(c, EMPTY_LEAF))
    assert compute_entry_hash(5, b"", b"x") == keccak256((5).to_bytes(32, "big") + EMPTY_LEAF + keccak256(b"x"))


def test_public_inputs_from_published_data(chain):
    """The verifier's windows (transactions, leaf steps, instrument leaves) equal the prover's."""
    node, genesis, _ = chain
    shape = SegmentShape.from_genesis(genesis, 4)
    for batch in (1, 2):
        instruments = get_instrument_leaves(get_leaves_before(node.store, batch), genesis)
        for segment in load_segments(node.store, genesis, batch, shape):
            public, instruments = compute_segment_public(
                genesis, shape, batch, segment.index, segment.transactions, segment.steps, instruments
            )
            assert compute_public_inputs(public) == compute_public_inputs(segment.public)
    # a changed after-leaf changes the public inputs
    segment = load_segments(node.store, genesis, 1, shape)[0]
    steps = [dict(step) for step in segment.steps]
    key = next(k for k, (_, after) in steps[0].items() if decode_key(k)[0] == "account" and after)
    before, after = steps[0][key]
    leaf = decode_account_leaf(after)
    positions = [(p.instrument, p.size, p.cost, p.funding) for p in leaf.positions]
    steps[0][key] = (before, encode_account_leaf(leaf.address, leaf.collateral + 1, leaf.nonce, positions))
    instruments = get_instrument_leaves(get_leaves_before(node.store, 1), genesis)
    tampered, _ = compute_segment_public(genesis, shape, 1, 0, segment.transactions, steps, instruments)
    assert compute_public_inputs(tampered) != compute_public_inputs(segment.public)
    with pytest.raises(ValueError, match="lacks keys"):
        compute_segment_public(genesis, shape, 1, 0, segment.transactions, [{}] * len(steps), instruments)


def test_replay_that_differs_from_the_committed_diff_is_refused(chain, tmp_path):
    node, genesis, _ = chain
    shape = SegmentShape.from_genesis(genesis, 4)
    conn = node.store.conn
    key, after = conn.execute("SELECT key, after FROM diffs WHERE batch = 1 AND length(after) > 0 LIMIT 1").fetchone()
    conn.execute("UPDATE diffs SET after = ? WHERE batch = 1 AND key = ?", (bytes(after) + b"\x00", key))
    try:
        with pytest.raises(SegmentReplayError, match="does not reproduce"):
            load_segments(node.store, genesis, 1, shape)
    finally:
        conn.execute("UPDATE diffs SET after = ? WHERE batch = 1 AND key = ?", (after, key))
    with pytest.raises(SegmentReplayError, match="no committed batch"):
        load_segments(node.store, genesis, 9, shape)
