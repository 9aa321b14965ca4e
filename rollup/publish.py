"""Publishing a proven batch: the node's data in the verifier's published format (verifier/transition.py).

`build_published(home, store, batch)` replays the batch from the store as v3 segments
(`prover.transition_segments.load_transition_batch`, checked against the committed diff), checks
that the replay starts and ends at the roots the node committed, and gathers what
`verifier.transition.verify_transition` needs: the genesis and tree, the segments (oracle update,
transactions, root after each), the touched accounts before and after with one multiproof against
the previous accounts root, the markets and globals before and after, the stored proofs and the
verifying key. `publish_batch` writes it as a directory.
"""

from __future__ import annotations

from pathlib import Path

from prover.pipeline import ProvingError, get_current_keys, get_genesis, get_key_paths, get_shape
from prover.transition_segments import TransitionReplayError, build_published_transition, load_transition_batch
from rollup.storage import Store, get_proofs
from verifier.snarkjs import read_json
from verifier.transition import PublishedFiles, to_field_hex, write_transition


class PublishError(Exception):
    """The batch cannot be published (not committed, not fully proven, keys missing)."""


def build_published(home: Path, store: Store, batch: int) -> PublishedFiles:
    """The published form of committed, fully proven batch `batch`."""
    row = store.get_batch(batch)
    # a committed batch
    if row is None:
        raise PublishError(f"no committed batch {batch} (the node has {store.count_batches()})")
    try:
        vk_hash, n_slots = get_current_keys(home, store)
    except ProvingError as exc:
        raise PublishError(str(exc)) from None
    genesis = get_genesis(store)
    try:
        replayed = load_transition_batch(store, genesis, batch, get_shape(genesis, n_slots))
    except (TransitionReplayError, ValueError) as exc:
        raise PublishError(f"batch {batch} cannot be replayed: {exc}") from None
    # the replay starts and ends where the node committed the batch
    for name, replayed_root, committed in (("previous", replayed.prev_root, row.prev_root), ("new", replayed.new_root, row.new_root)):
        if replayed_root.to_bytes(32, "big") != committed:
            raise PublishError(f"batch {batch}'s {name} root replays to {to_field_hex(replayed_root)}, the node committed 0x{committed.hex()}")
    proofs = {p.segment: p for p in get_proofs(store, batch, vk_hash) if p.n_slots == n_slots}
    missing = [w.segment for w in replayed.witnesses if w.segment not in proofs]
    # every segment has its proof
    if missing:
        have = len(replayed.witnesses) - len(missing)
        raise PublishError(f"batch {batch} has {have}/{len(replayed.witnesses)} segment proofs: run `rollup prove {batch}`")
    vk = read_json(get_key_paths(home)[1])
    return build_published_transition(
        replayed, genesis, vk, [proofs[w.segment].proof for w in replayed.witnesses], bytes.fromhex(vk_hash[2:])
    )


def publish_batch(home: Path, store: Store, batch: int, directory: Path) -> PublishedFiles:
    published = build_published(home, store, batch)
    write_transition(directory, published)
    return published
