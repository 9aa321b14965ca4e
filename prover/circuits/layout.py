"""The slot circuit's windows: fixed-shape views of the leaves a transaction reads and writes.

Every slot of a v3 segment has the same shape, whatever it holds (prover/circuits/slot.py checks
the rules of docs/state-model.md on it, prover/circuits/transition.py ties it to the tree):

- `flags`: one bit per transaction type (`SLOT_TYPES` order); all zero is a no-op slot.
- `tx`: the transaction's fields on the slot's words (`verifier.slots.TxWords`).
- `a`, `b`: two account windows (which account is A and which B: `verifier.slots`). Each holds the
  account leaf before and after the slot, with its positions on fixed position slots (one per
  instrument of the genesis table, in table order) and, per position slot, the oracle view the
  margin check uses (mark, funding index, risk array as the slot executes), and its order slots
  (order nonce, filled) before and after.
- `instrument`: what the slot reads of the traded instrument, and its open-interest delta.
- `globals`: deposit count and oracle time before and after; fee-pool and insurance-fund deltas.

In circuit v3 these are private: the windows are allocated from the leaves the circuit opens
against the state root (prover/circuits/transition_witness.py builds them from the native rules'
run), and only the roots, the oracle section and the records are public.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass

from verifier.slots import SLOT_TYPES, SUPPORTED_TYPES, TxWords, compute_tx_words, get_slot_accounts, get_slot_instrument, get_slot_type
from verifier.wire import ORDER_SLOTS, Genesis

__all__ = [
    "SLOT_TYPES", "SUPPORTED_TYPES", "TxWords", "compute_tx_words", "get_slot_accounts", "get_slot_instrument", "get_slot_type",
    "SegmentShape", "SegmentShapeError", "PositionWindow", "AccountWindow", "InstrumentWindow", "GlobalsWindow", "SlotPublic", "flatten",
]


class SegmentShapeError(ValueError):
    """A transaction or leaf that does not fit the segment circuit's fixed shape."""


@dataclass(frozen=True)
class SegmentShape:
    """The circuit shape: one setup serves every segment of this shape."""

    n_slots: int
    max_positions: int = 8
    n_scenarios: int = 16
    maintenance_bps: int = 5_000  # genesis risk parameters: constants of the circuit
    liquidation_penalty_bps: int = 100

    def __post_init__(self) -> None:
        # at least one slot, and leaf-shape limits of the encoding
        if self.n_slots < 1:
            raise ValueError(f"a segment has at least one slot, got {self.n_slots}")
        if not 1 <= self.max_positions <= 64:
            raise ValueError(f"max_positions must be in [1, 64], got {self.max_positions}")
        if not 1 <= self.n_scenarios <= 64:
            raise ValueError(f"n_scenarios must be in [1, 64], got {self.n_scenarios}")
        # basis points of a whole
        if not 0 <= self.maintenance_bps <= 10_000 or not 0 <= self.liquidation_penalty_bps <= 10_000:
            raise ValueError("maintenance_bps and liquidation_penalty_bps must be in [0, 10000]")

    @classmethod
    def from_genesis(cls, genesis: Genesis, n_slots: int) -> "SegmentShape":
        risk = genesis.risk
        return cls(n_slots, risk.max_positions, risk.n_scenarios, risk.maintenance_bps, risk.liquidation_penalty_bps)


@dataclass
class PositionWindow:
    instrument: int = 0
    matched: int = 0  # 1 on the traded instrument's slot
    size_before: int = 0
    cost_before: int = 0
    funding_before: int = 0
    size_after: int = 0
    cost_after: int = 0
    funding_after: int = 0
    mark: int = 0  # oracle view when the slot executes
    funding_index: int = 0
    risk: list[int] = field(default_factory=list)


@dataclass
class AccountWindow:
    exists_before: int = 0  # 0: the leaf was empty (a first deposit creates it)
    address_before: int = 0
    address_after: int = 0
    collateral_before: int = 0
    nonce_before: int = 0
    collateral_after: int = 0
    nonce_after: int = 0
    l2_key_before: int = 0  # the registered L2 key's id (0: none)
    l2_key_after: int = 0
    positions: list[PositionWindow] = field(default_factory=list)
    orders_before: list[int] = field(default_factory=lambda: [0] * (2 * ORDER_SLOTS))  # (order nonce, filled) per order slot
    orders_after: list[int] = field(default_factory=lambda: [0] * (2 * ORDER_SLOTS))


@dataclass
class InstrumentWindow:
    is_perp: int = 0
    has_mark: int = 0
    mark: int = 0  # liquidations move the position at the mark
    has_risk: int = 0
    expiry: int = 0  # options (genesis spec); 0 for perps
    has_settlement: int = 0
    settlement: int = 0
    open_interest_delta: int = 0


@dataclass
class GlobalsWindow:
    deposit_count_before: int = 0
    deposit_count_after: int = 0
    oracle_time_before: int = 0
    oracle_time_after: int = 0
    fee_delta: int = 0
    insurance_delta: int = 0


@dataclass
class SlotPublic:
    flags: list[int]
    tx: TxWords
    a: AccountWindow
    b: AccountWindow
    instrument: InstrumentWindow
    globals: GlobalsWindow



def flatten(value: object) -> list[int]:
    """Every int of a window, in field order (dataclass fields, lists in order)."""
    if is_dataclass(value):
        out: list[int] = []
        for f in fields(value):
            out += flatten(getattr(value, f.name))
        return out
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            out += flatten(item)
        return out
    if isinstance(value, int):
        return [value]
    raise TypeError(f"cannot flatten {type(value).__name__}")
