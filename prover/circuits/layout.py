"""The public data of a segment circuit: re-exported from `verifier.segment`, where it lives.

A verifier rebuilds every public input from published data with exactly these functions, so they
belong to the verifier (which imports nothing from `prover` or `rollup`); the circuit code keeps
importing them from here. See verifier/segment.py for the slot layout, position slots, the oracle
view and oracle updates.
"""

from __future__ import annotations

from verifier.segment import (
    SLOT_TYPES,
    SUPPORTED_TYPES,
    AccountWindow,
    GlobalsWindow,
    InstrumentWindow,
    PositionWindow,
    SegmentPublic,
    SegmentShape,
    SegmentShapeError,
    SlotPublic,
    TxWords,
    _decode_account,
    build_account_window,
    build_empty_account_window,
    build_globals_window,
    build_instrument_window,
    build_noop_slot,
    build_slot_public,
    check_segment_shape,
    compute_oracle_view,
    compute_public_inputs,
    compute_tx_words,
    count_public_inputs,
    flatten,
    get_slot_accounts,
    get_slot_instrument,
    get_slot_keys,
    get_slot_type,
    pad_slots,
)

__all__ = [
    "SLOT_TYPES",
    "SUPPORTED_TYPES",
    "AccountWindow",
    "GlobalsWindow",
    "InstrumentWindow",
    "PositionWindow",
    "SegmentPublic",
    "SegmentShape",
    "SegmentShapeError",
    "SlotPublic",
    "TxWords",
    "_decode_account",
    "build_account_window",
    "build_empty_account_window",
    "build_globals_window",
    "build_instrument_window",
    "build_noop_slot",
    "build_slot_public",
    "check_segment_shape",
    "compute_oracle_view",
    "compute_public_inputs",
    "compute_tx_words",
    "count_public_inputs",
    "flatten",
    "get_slot_accounts",
    "get_slot_instrument",
    "get_slot_keys",
    "get_slot_type",
    "pad_slots",
]
