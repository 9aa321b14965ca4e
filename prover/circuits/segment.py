"""The segment circuit: batch number, segment index, and `n_slots` transaction slots.

Public inputs, in order: batch number, segment index, then every slot's words (`layout.flatten`
order). Binding the batch number and segment index as public inputs makes a proof valid for one
(batch, segment) only: the verifier recomputes them, so a proof replayed elsewhere fails.

Chaining inside a segment is NOT wired in the circuit: every slot carries its own before/after
windows as public inputs, and the verifier checks natively that a slot's "before" of a key equals
the previous slot's "after" of that key (or the segment's before value, checked against the
previous root). Wiring would save public inputs but needs a fixed key-to-slot pattern, which a
segment of arbitrary transactions does not have; public data costs no constraints.

What the circuit relies on (the verifier builds the public inputs from published data, see
`layout.build_slot_public`): windows keyed by the transaction's ids; canonical leaves (every word
in range, positions sorted and distinct, zero padding); `matched` marks the traded instrument;
the oracle view of each position slot equals the instrument's leaf when the slot executes;
`exists_before` says whether the leaf was empty. Signatures, Merkle membership and the new root
are checked natively (DESIGN.md, "The proof statement").
"""

from __future__ import annotations

from prover.circuits.layout import SegmentPublic, SegmentShape, build_noop_slot, check_segment_shape
from prover.circuits.slot import allocate_public, synthesize_slot
from prover.r1cs import ConstraintSystem


def synthesize_segment(cs: ConstraintSystem, shape: SegmentShape, segment: SegmentPublic) -> None:
    """Allocate the segment's public inputs (all of them first) and constrain every slot."""
    check_segment_shape(segment, shape)
    cs.public_input(segment.batch, "batch")
    cs.public_input(segment.segment, "segment")
    slots = [allocate_public(cs, slot) for slot in segment.slots]
    for index, slot in enumerate(slots):
        with cs.gadget(f"slot{index}"):
            synthesize_slot(cs, shape, slot)  # type: ignore[arg-type]


def build_segment_circuit(shape: SegmentShape, segment: SegmentPublic | None = None) -> ConstraintSystem:
    """The segment circuit with its witness; without a segment, all no-ops (for setup: the
    constraints do not depend on the values)."""
    if segment is None:
        segment = SegmentPublic(0, 0, [build_noop_slot(shape) for _ in range(shape.n_slots)])
    cs = ConstraintSystem()
    synthesize_segment(cs, shape, segment)
    return cs
