"""Publishing a proven batch: the node's data in the verifier's published format.

`build_published(home, store, batch)` gathers what `verifier.batch.verify_published_batch` needs:
the batch's transactions and receipts, its segments replayed from the pre-batch state
(`prover.segments.load_segments`, checked against the committed diff), the pre-batch leaves of
every key the batch touches (plus every instrument and the globals leaf) with one multiproof
against the previous root (the tree rebuilt from `get_leaves_before`), the stored proofs and the
verifying key. `publish_batch` writes it as a directory (verifier/published.py).
"""

from __future__ import annotations

from pathlib import Path

from prover.pipeline import ProvingError, get_current_keys, get_genesis, get_key_paths
from prover.segments import Segment, get_batch_commitment, load_segments
from rollup.merkle import SparseMerkleTree
from rollup.storage import Store, get_leaves_before, get_proofs
from rollup.txfile import TRANSACTION_ADAPTER
from verifier.encoding import GLOBALS_KEY, TREE_DEPTH, instrument_key, leaf_hash
from verifier.published import LeafValue, MultiProofData, Published, PublishedBatch, PublishedSegment, to_hex, write_published
from verifier.segment import SegmentShape, compute_public_inputs
from verifier.snarkjs import format_public_inputs, read_json
from verifier.wire import Genesis, LeafDiff, Receipt


class PublishError(Exception):
    """The batch cannot be published (not committed, not fully proven, keys missing)."""


def get_published_keys(segments: list[Segment], shape_keys: set[int]) -> list[int]:
    """Keys whose pre-batch leaves are published: every touched key and the always-read ones."""
    touched = {key for segment in segments for step in segment.steps for key in step}
    return sorted(touched | shape_keys)


def build_published_segment(segment: Segment) -> PublishedSegment:
    steps = [
        [LeafDiff(key=key, before=to_hex(before), after=to_hex(after)) for key, (before, after) in sorted(step.items())]
        for step in segment.steps
    ]
    return PublishedSegment(index=segment.index, tx_indices=segment.tx_indices, steps=steps, root=to_hex(segment.root))


def build_published_batch(store: Store, genesis: Genesis, batch: int, shape: SegmentShape, vk_hash: str) -> tuple[PublishedBatch, list[Segment]]:
    """batch.json of committed batch `batch` (its segments replayed for `shape`), and the segments."""
    row = store.get_batch(batch)
    # a committed batch
    if row is None:
        raise PublishError(f"no committed batch {batch} (the node has {store.count_batches()})")
    segments = load_segments(store, genesis, batch, shape)
    leaves = get_leaves_before(store, batch)
    tree = SparseMerkleTree.from_leaves({key: leaf_hash(value) for key, value in leaves.items()}, TREE_DEPTH)
    # the rebuilt pre-batch state is the one the batch started from
    if tree.root != row.prev_root:
        raise PublishError(f"the state before batch {batch} rebuilds to 0x{tree.root.hex()}, the batch records 0x{row.prev_root.hex()}")
    keys = get_published_keys(segments, {instrument_key(spec.id) for spec in genesis.instruments} | {GLOBALS_KEY})
    published = PublishedBatch(
        genesis=genesis,
        number=batch,
        n_slots=shape.n_slots,
        prev_root=to_hex(row.prev_root),
        new_root=to_hex(row.new_root),
        transactions=[TRANSACTION_ADAPTER.validate_json(body) for body in store.get_transactions(batch)],
        receipts=[Receipt.model_validate_json(body) for body in store.get_receipts(batch)],
        segments=[build_published_segment(segment) for segment in segments],
        leaves_before=[LeafValue(key=key, value=to_hex(leaves.get(key, b""))) for key in keys],
        multiproof=MultiProofData.from_multiproof(tree.prove_many(keys)),
        commitment=to_hex(get_batch_commitment(segments)),
        vk_hash=vk_hash,
    )
    return published, segments


def build_published(home: Path, store: Store, batch: int) -> Published:
    """The published form of committed, fully proven batch `batch`."""
    # a committed batch
    if store.get_batch(batch) is None:
        raise PublishError(f"no committed batch {batch} (the node has {store.count_batches()})")
    try:
        vk_hash, n_slots = get_current_keys(home, store)
    except ProvingError as exc:
        raise PublishError(str(exc)) from None
    genesis = get_genesis(store)
    published, segments = build_published_batch(store, genesis, batch, SegmentShape.from_genesis(genesis, n_slots), vk_hash)
    proofs = {p.segment: p for p in get_proofs(store, batch, vk_hash) if p.n_slots == n_slots}
    missing = [s.index for s in segments if s.index not in proofs]
    # every segment has its proof
    if missing:
        raise PublishError(f"batch {batch} has {len(segments) - len(missing)}/{len(segments)} segment proofs: run `rollup prove {batch}`")
    return Published(
        batch=published,
        vk=read_json(get_key_paths(home)[1]),
        proofs=[proofs[s.index].proof for s in segments],
        public=[format_public_inputs(compute_public_inputs(s.public)) for s in segments],
    )


def publish_batch(home: Path, store: Store, batch: int, directory: Path) -> Published:
    published = build_published(home, store, batch)
    write_published(directory, published)
    return published
