"""Segments of a committed batch: what `rollup prove` proves, one circuit per segment.

Order. A segment holds the batch's ACCEPTED transactions in batch (submission) order, cut into
runs of `n_slots`, the last one padded with no-ops. Submission order is a valid execution order:
it is the node's sequential reference, and the parallel modes produce the same receipts, state and
root (rollup/parallel.py, tested for equality), so replaying the accepted transactions in that
order from the pre-batch state reproduces the batch's post-state (checked here: a mismatch is an
error). Rejected transactions change nothing and are left out.

Witnesses. The batch is replayed from its pre-batch state (the stored leaves with the diffs of
this and later batches reverted) with the native rules, slot by slot (`compute_slot`, the step of
`compute_segment_witness`). Each slot also records its leaf step: the leaves it read and wrote
(its window keys, the globals leaf, every leaf it changed) before and after it. Those steps, the
transactions and the instrument leaves are the published data from which a verifier rebuilds the
public inputs (`verifier.segment.compute_segment_public`).

Commitments (verifier/commitments.py): a segment's diff is its steps folded (chained) per key, its
root the keccak Merkle root over per-leaf entries; the batch commitment is the root over the
segment roots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prover.circuits.witness import compute_slot
from rollup.state import State
from rollup.state_codec import encode_state_leaf, state_from_leaves
from rollup.storage import Store, get_accepted_indices, get_leaves_before
from verifier.commitments import (
    LeafChange,
    compute_batch_commitment,
    compute_segment_root,
    fold_leaf_changes,
    fold_segment_diffs,
)
from verifier.encoding import recover_signers
from verifier.segment import SegmentPublic, SegmentShape, SlotPublic, get_step_keys, pad_slots
from rollup.txfile import TRANSACTION_ADAPTER
from verifier.wire import Genesis

DEFAULT_SEGMENT_SLOTS = 4  # node setting `segment_slots` when unset


class SegmentReplayError(ValueError):
    """Replaying a stored batch did not reproduce what the node committed."""


@dataclass
class Segment:
    batch: int
    index: int
    tx_indices: list[int]  # batch indices of its transactions
    transactions: list[object]
    steps: list[dict[int, tuple[bytes, bytes]]]  # one leaf step per transaction
    public: SegmentPublic
    diff: list[LeafChange]  # every leaf its slots touch: (key, before, after), sorted by key
    root: bytes  # commitment to `diff`


def count_segments(n_accepted: int, n_slots: int) -> int:
    return -(-n_accepted // n_slots)


def compute_step(
    state: State, leaves: dict[int, bytes], tx: object, signers: Sequence[str | None], shape: SegmentShape
) -> tuple[SlotPublic, dict[int, tuple[bytes, bytes]]]:
    """Apply one accepted transaction: (its slot's windows, its leaf step). Updates `leaves`."""
    state.touched.clear()
    slot = compute_slot(state, tx, signers, shape)
    keys = set(get_step_keys(tx)) | set(state.touched)
    step: dict[int, tuple[bytes, bytes]] = {}
    for key in sorted(keys):
        after = encode_state_leaf(state, key)
        step[key] = (leaves.get(key, b""), after)
        leaves[key] = after
    return slot, step


def compute_segments(
    genesis: Genesis,
    leaves_before: dict[int, bytes],
    batch: int,
    accepted: Sequence[tuple[int, object]],
    shape: SegmentShape,
) -> list[Segment]:
    """The segments of a batch from its pre-batch leaves and its accepted (index, transaction)
    pairs in batch order."""
    state = state_from_leaves(genesis, leaves_before)
    leaves = dict(leaves_before)
    segments = []
    for index, start in enumerate(range(0, len(accepted), shape.n_slots)):
        chunk = accepted[start : start + shape.n_slots]
        slots, steps = [], []
        for _, tx in chunk:
            slot, step = compute_step(state, leaves, tx, recover_signers(tx, genesis.signing_domain), shape)
            slots.append(slot)
            steps.append(step)
        diff = fold_leaf_changes(steps)
        segments.append(
            Segment(
                batch=batch,
                index=index,
                tx_indices=[i for i, _ in chunk],
                transactions=[tx for _, tx in chunk],
                steps=steps,
                public=SegmentPublic(batch, index, pad_slots(slots, shape)),
                diff=diff,
                root=compute_segment_root(diff),
            )
        )
    return segments


def check_replay(segments: Sequence[Segment], leaves_before: dict[int, bytes], batch_diff: Sequence[LeafChange]) -> None:
    """The segments' folded diff changes exactly the leaves the committed batch diff changes, to
    the same bytes."""
    folded = fold_segment_diffs([s.diff for s in segments], leaves_before)
    changed = [(key, before, after) for key, before, after in folded if before != after]
    # the replay reproduces the committed batch, leaf for leaf
    if changed != list(batch_diff):
        got = {k for k, _, _ in changed}
        want = {k for k, _, _ in batch_diff}
        raise SegmentReplayError(
            f"batch {segments[0].batch if segments else '?'}: replay does not reproduce the committed diff "
            f"({len(got ^ want)} keys differ in presence, {len(changed)} vs {len(batch_diff)} changed leaves)"
        )


def get_batch_commitment(segments: Sequence[Segment]) -> bytes:
    return compute_batch_commitment([s.root for s in segments])


def get_instrument_leaves(leaves: dict[int, bytes], genesis: Genesis) -> dict[int, bytes]:
    """The instrument leaves by key (the oracle view a segment starts from)."""
    from verifier.encoding import instrument_key

    return {instrument_key(spec.id): leaves[instrument_key(spec.id)] for spec in genesis.instruments}



def load_segments(store: Store, genesis: Genesis, batch: int, shape: SegmentShape) -> list[Segment]:
    """Replay committed batch `batch` from the store into its segments, checked against its diff."""
    # the batch exists
    if store.get_batch(batch) is None:
        raise SegmentReplayError(f"no committed batch {batch}")
    leaves_before = get_leaves_before(store, batch)
    bodies = store.get_transactions(batch)
    accepted = [(i, TRANSACTION_ADAPTER.validate_json(bodies[i])) for i in get_accepted_indices(store, batch)]
    segments = compute_segments(genesis, leaves_before, batch, accepted, shape)
    check_replay(segments, leaves_before, store.get_diff(batch))
    return segments
