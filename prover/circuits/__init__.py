"""Segment circuits: the native transaction rules as a rank-1 constraint system.

- `layout`: the fixed-shape public windows of a slot, built from published data
  (`build_slot_public`, `compute_public_inputs`);
- `slot`: one slot's constraints (`synthesize_slot`);
- `segment`: the whole segment (`synthesize_segment`, `build_segment_circuit`);
- `witness`: windows from the native rules (`compute_segment_witness`).

A verifier rebuilds the public inputs from published data: `build_slot_public` per transaction
(leaves before and after, the instrument leaves it sees, the globals leaf before and after),
`pad_slots` with no-ops, `SegmentPublic(batch, segment, slots)`, `compute_public_inputs`.
"""

# Bumped on any change of the segment circuit's constraints: keys made for another version are
# refused (`rollup setup --force` makes new ones). 2: range checks on the transaction words.
CIRCUIT_VERSION = "2"

from prover.circuits.layout import (  # noqa: E402
    SLOT_TYPES,
    SUPPORTED_TYPES,
    SegmentPublic,
    SegmentShape,
    SegmentShapeError,
    SlotPublic,
    build_noop_slot,
    build_slot_public,
    compute_public_inputs,
    count_public_inputs,
    get_slot_keys,
    pad_slots,
)
from prover.circuits.segment import build_segment_circuit, synthesize_segment  # noqa: E402
from prover.circuits.slot import synthesize_slot  # noqa: E402
from prover.circuits.witness import RejectedInSegment, compute_segment_witness  # noqa: E402

__all__ = [
    "CIRCUIT_VERSION",
    "SLOT_TYPES",
    "SUPPORTED_TYPES",
    "RejectedInSegment",
    "SegmentPublic",
    "SegmentShape",
    "SegmentShapeError",
    "SlotPublic",
    "build_noop_slot",
    "build_segment_circuit",
    "build_slot_public",
    "compute_public_inputs",
    "compute_segment_witness",
    "count_public_inputs",
    "get_slot_keys",
    "pad_slots",
    "synthesize_segment",
    "synthesize_slot",
]
