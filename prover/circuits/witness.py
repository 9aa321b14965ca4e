"""Segment witnesses from the native rules: the rules compute, the circuit checks.

`compute_segment_witness` runs `rollup.rules.process_transaction` on each transaction and builds
every slot's public windows from the leaf bytes before and after it, through the same
`layout.build_slot_public` a verifier runs on published data. Every private value of the circuit
(products, inverses, bits) is then derived by the gadgets from those public values.
"""

from __future__ import annotations

from typing import Sequence

from prover.circuits.layout import (
    SegmentPublic,
    SegmentShape,
    SegmentShapeError,
    SlotPublic,
    build_slot_public,
    get_slot_keys,
    pad_slots,
)
from rollup.rules import Signers, process_transaction
from rollup.state import State
from rollup.state_codec import encode_instrument, encode_state_leaf
from verifier.encoding import GlobalsLeaf, InstrumentLeaf, decode_instrument_leaf

NO_GENESIS_HASH = bytes(32)  # the windows never read the globals leaf's genesis hash


class RejectedInSegment(ValueError):
    """Segments hold accepted transactions only; the native rules rejected this one."""


def get_globals_leaf(state: State) -> GlobalsLeaf:
    g = state.globals
    return GlobalsLeaf(g.fee_pool, g.insurance_fund, g.deposit_count, g.oracle_time, NO_GENESIS_HASH)


def get_instrument_leaves(state: State) -> dict[int, InstrumentLeaf]:
    """Every instrument leaf as the next transaction sees it (its oracle view)."""
    return {i: decode_instrument_leaf(encode_instrument(inst)) for i, inst in state.instruments.items()}


def compute_slot(state: State, tx: object, signers: Signers, shape: SegmentShape) -> SlotPublic:
    """Apply one transaction to `state` (in place) and return its slot's public windows."""
    keys = get_slot_keys(tx)
    before = {key: encode_state_leaf(state, key) for key in keys}
    instruments = get_instrument_leaves(state)
    globals_before = get_globals_leaf(state)
    receipt = process_transaction(state, tx, signers)
    # only accepted transactions go into segments
    if receipt.status != "accepted":
        raise RejectedInSegment(f"{receipt.type} rejected by the rules: {receipt.reason}")
    after = {key: encode_state_leaf(state, key) for key in keys}
    globals_after = get_globals_leaf(state)
    return build_slot_public(tx, before, after, instruments, globals_before, globals_after, state.genesis, shape)


def compute_segment_witness(
    state: State,
    transactions: Sequence[object],
    signers: Sequence[Signers],
    batch: int,
    segment: int,
    shape: SegmentShape,
) -> SegmentPublic:
    """The segment's public windows (its whole witness source), applying the transactions to
    `state` in place; no-op slots pad it to the shape."""
    # one signer list per transaction (a caller bug otherwise)
    if len(transactions) != len(signers):
        raise ValueError(f"{len(transactions)} transactions, {len(signers)} signer lists")
    # a segment holds at most n_slots transactions
    if len(transactions) > shape.n_slots:
        raise SegmentShapeError(f"{len(transactions)} transactions do not fit a segment of {shape.n_slots} slots")
    slots = [compute_slot(state, tx, tx_signers, shape) for tx, tx_signers in zip(transactions, signers)]
    return SegmentPublic(batch, segment, pad_slots(slots, shape))
