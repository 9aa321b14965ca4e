"""A batch as circuit v3 segments: cut, replayed with the native rules, witnessed, published.

Segments hold the batch's accepted transactions in submission order: at most `n_slots` of them,
and an oracle update always opens a new segment (it is the segment's oracle section, applied
before its slots; docs/v3.md). `build_transition_batch` replays the batch from the pre-batch state
and accounts tree (in place) and returns every segment's witness and what a verifier needs: the
touched accounts before and after with one multiproof against the previous accounts root, and
the markets and globals before and after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prover.circuits.transition import TransitionShape, TransitionWitness
from prover.circuits.transition_witness import compute_root, compute_transition_witness
from rollup.rules import Signers
from rollup.state import State
from rollup.state_codec import encode_account, encode_globals, encode_instrument
from rollup.state_tree import PoseidonTree
from verifier.pubdata import RECORD_BY_TYPE
from verifier.segment import get_slot_accounts


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


__all__ = ["TransitionBatch", "TransitionSegment", "build_transition_batch", "cut_segments", "get_touched_accounts"]
