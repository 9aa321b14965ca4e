"""A batch as circuit v3 segments: cut, replayed with the native rules, witnessed, published.

Segments hold the batch's accepted transactions in submission order: at most `n_slots` of them,
and an oracle update always opens a new segment (it is the segment's oracle section, applied
before its slots; docs/v3.md). `build_transition_batch` replays the batch from the pre-batch state
and accounts tree (in place) and returns every segment's witness and what a verifier needs: the
touched accounts before and after with one multiproof against the previous accounts root, and
the markets and globals before and after.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prover.circuits.transition import TransitionShape, TransitionWitness
from prover.circuits.transition_witness import compute_root, compute_transition_witness
from rollup.rules import Signers
from rollup.state import State
from rollup.state_codec import encode_account, encode_globals, encode_instrument
from rollup.state_tree import PoseidonTree
from verifier.pubdata import RECORD_BY_TYPE
from verifier.slots import get_slot_accounts

if TYPE_CHECKING:
    from prover.setup import ProvingKey
    from rollup.storage import Store
    from verifier.transition import PublishedFiles
    from verifier.wire import Genesis


@dataclass
class TransitionSegment:
    oracle_update: object | None = None
    oracle_signers: Signers | None = None
    transactions: list[object] = field(default_factory=list)
    signers: list[Signers] = field(default_factory=list)


def cut_segments(transactions: Sequence[object], signers: Sequence[Signers], n_slots: int) -> list[TransitionSegment]:
    """Accepted transactions into segments: `n_slots` each, an oracle update opening a new one."""
    segments: list[TransitionSegment] = []
    current = TransitionSegment()
    for tx, tx_signers in zip(transactions, signers, strict=True):
        if tx.type == "oracle_update":  # type: ignore[attr-defined]
            if current.oracle_update is not None or current.transactions:
                segments.append(current)
            current = TransitionSegment(tx, tx_signers)
            continue
        current.transactions.append(tx)
        current.signers.append(tx_signers)
        if len(current.transactions) == n_slots:
            segments.append(current)
            current = TransitionSegment()
    if current.oracle_update is not None or current.transactions:
        segments.append(current)
    return segments


def get_touched_accounts(transactions: Sequence[object]) -> list[int]:
    """Every account a batch's slots read or write, sorted."""
    touched: set[int] = set()
    for tx in transactions:
        if tx.type in RECORD_BY_TYPE:  # type: ignore[attr-defined]
            touched.update(i for i in get_slot_accounts(tx) if i is not None)
    return sorted(touched)


@dataclass
class TransitionBatch:
    number: int
    shape: TransitionShape
    segments: list[TransitionSegment]
    witnesses: list[TransitionWitness]
    prev_root: int
    new_root: int
    accounts_before: dict[int, bytes]  # canonical leaf bytes (verifier.encoding), b"" if absent
    accounts_after: dict[int, bytes]
    multiproof: list[int]  # against the previous accounts root, for the touched accounts
    instruments_before: list[bytes]  # table order
    instruments_after: list[bytes]
    globals_before: bytes
    globals_after: bytes


def build_transition_batch(
    state: State,
    tree: PoseidonTree,
    shape: TransitionShape,
    number: int,
    transactions: Sequence[object],
    signers: Sequence[Signers],
) -> TransitionBatch:
    """Replay `transactions` (accepted, in order) on `state` and `tree`, in place, segment by segment."""
    touched = get_touched_accounts(transactions)
    accounts_before = {i: encode_account(state.accounts[i]) if i in state.accounts else b"" for i in touched}
    multiproof = tree.get_multiproof(touched)
    instruments_before = [encode_instrument(state.instruments[i]) for i in shape.table]
    globals_before = encode_globals(state)
    prev_root = compute_root(state, tree, shape)
    segments = cut_segments(transactions, signers, shape.n_slots)
    witnesses = [
        compute_transition_witness(
            state, tree, shape, number, index, seg.oracle_update, seg.oracle_signers, seg.transactions, seg.signers
        )
        for index, seg in enumerate(segments)
    ]
    return TransitionBatch(
        number, shape, segments, witnesses, prev_root, compute_root(state, tree, shape),
        accounts_before, {i: encode_account(state.accounts[i]) for i in touched}, multiproof,
        instruments_before, [encode_instrument(state.instruments[i]) for i in shape.table],
        globals_before, encode_globals(state),
    )




# --- From the node's store, and to published data ---------------------------------------------------


class TransitionReplayError(ValueError):
    """Replaying a stored batch did not reproduce what the node committed."""


def load_transition_batch(store: "Store", genesis: "Genesis", number: int, shape: TransitionShape) -> TransitionBatch:
    """Replay committed batch `number` from the node's store (its pre-batch leaves and accepted
    transactions) as v3 segments, checked leaf for leaf against the batch's committed diff."""
    from rollup.state_codec import state_from_leaves
    from rollup.state_tree import compute_account_value
    from rollup.storage import get_accepted_indices, get_leaves_before
    from rollup.txfile import TRANSACTION_ADAPTER
    from verifier.encoding import decode_key
    from verifier.l2auth import check_signers

    # the batch exists
    if store.get_batch(number) is None:
        raise TransitionReplayError(f"no committed batch {number}")
    leaves_before = get_leaves_before(store, number)
    state = state_from_leaves(genesis, leaves_before)
    accounts = {decode_key(k)[1]: compute_account_value(v, shape.table) for k, v in leaves_before.items() if decode_key(k)[0] == "account"}
    # every account fits the circuit's tree
    beyond = [i for i in accounts if i >= shape.tree.capacity]
    if beyond:
        raise TransitionReplayError(f"accounts {beyond[:5]} are beyond the tree's {shape.tree.capacity} leaves")
    tree = PoseidonTree.from_leaves(shape.tree, accounts)
    bodies = store.get_transactions(number)
    txs = [TRANSACTION_ADAPTER.validate_json(bodies[i]) for i in get_accepted_indices(store, number)]
    signers = [check_signers(tx, genesis.signing_domain) for tx in txs]
    batch = build_transition_batch(state, tree, shape, number, txs, signers)  # type: ignore[arg-type]
    committed = {key: after for key, _, after in store.get_diff(number)}
    replayed = encode_changed_leaves(state, leaves_before)
    # the replay reproduces the committed batch, leaf for leaf
    if replayed != committed:
        differ = sorted(set(replayed) ^ set(committed)) or sorted(k for k in replayed if replayed[k] != committed.get(k))
        raise TransitionReplayError(f"batch {number}: the replay does not reproduce the committed diff (keys {differ[:5]})")
    return batch


def encode_changed_leaves(state: State, leaves_before: dict[int, bytes]) -> dict[int, bytes]:
    """Every leaf whose bytes differ from `leaves_before`, by key (b"" for a removed one)."""
    from rollup.state_codec import get_state_leaves

    after = get_state_leaves(state)
    keys = set(after) | set(leaves_before)
    return {k: after.get(k, b"") for k in keys if after.get(k, b"") != leaves_before.get(k, b"")}


def build_published_transition(batch: TransitionBatch, genesis: "Genesis", vk: dict, proofs: list, vk_hash: bytes) -> "PublishedFiles":
    """What a verifier reads (verifier.transition): batch.json's data, the key, proofs, public inputs."""
    from verifier.snarkjs import format_public_inputs
    from verifier.transition import PublishedFiles, PublishedTransition, to_field_hex

    data = PublishedTransition(
        genesis=genesis, tree_depth=batch.shape.tree.depth, tree_arity=batch.shape.tree.arity, n_slots=batch.shape.n_slots,
        batch=batch.number, prev_root=to_field_hex(batch.prev_root), new_root=to_field_hex(batch.new_root),
        vk_hash="0x" + vk_hash.hex(),
        segments=[
            {"oracle_update": seg.oracle_update, "transactions": seg.transactions, "root_after": to_field_hex(w.public[3])}
            for seg, w in zip(batch.segments, batch.witnesses)
        ],
        accounts_before={str(k): "0x" + v.hex() for k, v in batch.accounts_before.items()},
        accounts_after={str(k): "0x" + v.hex() for k, v in batch.accounts_after.items()},
        multiproof=[to_field_hex(x) for x in batch.multiproof],
        instruments_before=["0x" + x.hex() for x in batch.instruments_before],
        instruments_after=["0x" + x.hex() for x in batch.instruments_after],
        globals_before="0x" + batch.globals_before.hex(), globals_after="0x" + batch.globals_after.hex(),
    )
    return PublishedFiles(data, vk, proofs, [format_public_inputs(w.public) for w in batch.witnesses])


def iter_transition_proofs(
    batch: TransitionBatch, pk: "ProvingKey", seed: int | None = None, backend: str | None = None
) -> Iterator[dict]:
    """Each segment's proof in snarkjs JSON, in order, each checked against its public inputs
    before it is handed out; with `seed`, the randomisers are reproducible (seed and segment)."""
    import random

    from prover.circuits.transition import build_transition_circuit
    from prover.groth16 import prove
    from verifier.groth16 import prepare_verifying_key, verify_proof
    from verifier.snarkjs import format_proof

    pvk = prepare_verifying_key(pk.vk)
    for w in batch.witnesses:
        rng = random.Random(seed * 1_000_003 + w.segment) if seed is not None else None
        proof = prove(pk, build_transition_circuit(batch.shape, w), rng=rng, backend=backend)
        # a proof that does not verify is a prover bug: never publish it
        if not verify_proof(pvk, proof, w.public):
            raise TransitionReplayError(f"batch {batch.number}, segment {w.segment}: the proof does not verify")
        yield format_proof(proof)


def prove_transition_batch(batch: TransitionBatch, pk: "ProvingKey", seed: int | None = None) -> list[dict]:
    """Every segment's proof (`iter_transition_proofs`)."""
    return list(iter_transition_proofs(batch, pk, seed))
