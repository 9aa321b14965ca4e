"""The public data of a segment circuit: fixed-shape windows built from published data only.

This is the verifier's half of the segment circuit (the prover's `prover/circuits/layout.py`
re-exports it): everything here is computed from published data, and imports nothing from
`prover` or `rollup`. `compute_segment_public` rebuilds a whole segment's windows from its
transactions and its per-slot leaf steps (see "Segments from published data" below).

A segment is `n_slots` transaction slots. Every slot has the same shape, whatever it holds:

- `flags`: one bit per transaction type (`SLOT_TYPES` order); all zero is a no-op slot.
- `tx`: the transaction's fields mapped onto ten words (`TxWords`, see `compute_tx_words`).
- `a`, `b`: two account windows. A is the depositor, withdrawer, sender, taker, buyer,
  liquidator, or the account whose expired option position is settled; B is the recipient, maker,
  seller, liquidated account, or the keeper who sends a settlement for someone else (unused when
  holders settle their own). Each window
  holds the account leaf before and after the slot, with its positions re-laid-out on fixed
  position slots (below) and, per position slot, the oracle view the margin check uses.
- `instrument`: what the slot reads of the traded instrument's leaf, and its open-interest delta.
- `globals`: deposit count and oracle time before and after; fee-pool and insurance-fund deltas
  (hot state is proven as commutative deltas, so parallel conflict groups need no global order).

Position slots. An account window has `max_positions` position slots. They list the union of the
instruments held before and after the slot (plus the traded one), sorted by id, zero-padded; each
position slot carries the size, cost and funding before AND after, so a position keeps its slot
while it is opened, changed or closed. The union never exceeds `max_positions` for a valid
transaction (a trade adds at most the traded instrument, and the after leaf must fit the shape),
so the leaf shape limit is enforced by the window shape itself. `matched` marks the traded
instrument's slot. The canonical leaf (sorted, sizes != 0 only) follows from the window and back,
so the verifier rebuilds the leaf bytes it hashes from the same published data.

Oracle view. Each position slot carries the instrument's `mark`, `funding_index` and risk array
(zero-padded to `n_scenarios`) as they are when the slot executes. They are public inputs the
verifier derives from the instrument leaves (the segment's instrument leaves chained through its
oracle updates), not a mux inside the circuit: a mux over all instruments would cost
`n_instruments x (n_scenarios + 2)` products per position slot; public inputs cost nothing in
constraints. Option series have funding index 0 and positions in them cost 0 and funding 0, so one
valuation formula serves both kinds.

Oracle updates. An `oracle_update` slot proves the oracle clock only: the timestamp strictly
increases and becomes the globals' `oracle_time`. The instrument leaves it writes (marks, funding
indices, risk arrays, settlements) are a function of the signed, public update and the previous
leaves; the verifier rebuilds them natively with the rules' checks (funding only for perps,
settlement only after expiry and once), as it derives every slot's oracle view. Moving these into
the circuit would need one instrument window per listed instrument in every slot.

Everything here is computed from published data (transaction, leaf bytes before and after, the
instrument leaves, batch number, segment index): `compute_public_inputs` is what a verifier runs.
Ranges of every public word hold by construction (canonical leaf decoding, wire bounds); the
circuit range-checks what it derives (balances, margins, comparisons).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Mapping, Sequence

from verifier.curve import BN254
from verifier.encoding import (
    EMPTY_LEAF_BYTES,
    GLOBALS_KEY,
    AccountLeaf,
    GlobalsLeaf,
    InstrumentLeaf,
    _get_address_int,
    account_key,
    decode_account_leaf,
    decode_globals_leaf,
    decode_instrument_leaf,
    decode_key,
    instrument_key,
)
from verifier.wire import (
    Deposit,
    Genesis,
    Liquidate,
    OptionTrade,
    OracleUpdate,
    PerpTrade,
    SettleExpired,
    Transfer,
    Withdraw,
)

SLOT_TYPES: tuple[str, ...] = (
    "deposit",
    "withdraw",
    "transfer",
    "perp_trade",
    "option_trade",
    "settle_expired",
    "liquidate",
    "oracle_update",
)
SUPPORTED_TYPES: frozenset[str] = frozenset(
    ("deposit", "withdraw", "transfer", "perp_trade", "option_trade", "settle_expired", "liquidate", "oracle_update")
)


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


# --- The windows (plain ints here; Variables once allocated in a circuit) -------------------------


@dataclass
class TxWords:
    account_a: int = 0
    account_b: int = 0
    instrument: int = 0
    quantity: int = 0  # amount (collateral moves), signed size (perp), quantity (option)
    price: int = 0  # perp price, option premium
    fee: int = 0
    nonce_a: int = 0
    nonce_b: int = 0
    deposit_id: int = 0
    address: int = 0  # deposit address as a 160-bit integer
    timestamp: int = 0  # oracle update


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
    positions: list[PositionWindow] = field(default_factory=list)


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


@dataclass
class SegmentPublic:
    batch: int
    segment: int
    slots: list[SlotPublic]


# --- Transactions onto slot words -------------------------------------------------------------------


def get_slot_type(tx: object) -> str:
    return tx.type  # type: ignore[attr-defined]


def compute_tx_words(tx: object) -> TxWords:
    """The transaction's fields on the slot's ten words (which account is A and which B is fixed
    per type, see the module docstring)."""
    if isinstance(tx, Deposit):
        address = _get_address_int(tx.address)
        return TxWords(account_a=tx.account, quantity=tx.amount, deposit_id=tx.deposit_id, address=address)
    if isinstance(tx, Withdraw):
        return TxWords(account_a=tx.account, quantity=tx.amount, nonce_a=tx.nonce)
    if isinstance(tx, Transfer):
        return TxWords(account_a=tx.sender, account_b=tx.recipient, quantity=tx.amount, nonce_a=tx.nonce)
    if isinstance(tx, PerpTrade):
        return TxWords(tx.taker, tx.maker, tx.market, tx.size, tx.price, tx.fee, tx.taker_nonce, tx.maker_nonce)
    if isinstance(tx, OptionTrade):
        return TxWords(tx.buyer, tx.seller, tx.series, tx.quantity, tx.premium, tx.fee, tx.buyer_nonce, tx.seller_nonce)
    if isinstance(tx, SettleExpired):
        # A is the settled account, B the sender; both nonce words carry the sender's nonce
        return TxWords(tx.account, tx.sender, tx.series, nonce_a=tx.nonce, nonce_b=tx.nonce)
    if isinstance(tx, Liquidate):
        # A is the liquidator (signs, pays the nonce, takes the position), B the liquidated account
        return TxWords(tx.liquidator, tx.account, tx.instrument, quantity=tx.size, nonce_a=tx.nonce)
    if isinstance(tx, OracleUpdate):
        return TxWords(timestamp=tx.timestamp)
    raise TypeError(f"not a transaction: {type(tx).__name__}")


def get_slot_accounts(tx: object) -> tuple[int | None, int | None]:
    """Account ids of windows A and B (None: the window is unused)."""
    if isinstance(tx, OracleUpdate):
        return None, None
    words = compute_tx_words(tx)
    uses_b = isinstance(tx, (Transfer, PerpTrade, OptionTrade, Liquidate)) or (
        isinstance(tx, SettleExpired) and tx.sender != tx.account
    )
    return words.account_a, (words.account_b if uses_b else None)


def get_slot_instrument(tx: object) -> int | None:
    """The traded or settled instrument (None for collateral moves)."""
    if isinstance(tx, (PerpTrade, OptionTrade, SettleExpired, Liquidate)):
        return compute_tx_words(tx).instrument
    return None


def get_slot_keys(tx: object) -> list[int]:
    """State-tree keys of the leaves the slot's windows cover (globals excluded: it is deltas)."""
    a, b = get_slot_accounts(tx)
    keys = [account_key(x) for x in (a, b) if x is not None]
    instrument = get_slot_instrument(tx)
    return keys + ([instrument_key(instrument)] if instrument is not None else [])


# --- Windows from published leaves ----------------------------------------------------------------


def _decode_account(data: bytes) -> AccountLeaf | None:
    return None if data == EMPTY_LEAF_BYTES else decode_account_leaf(data)


def compute_oracle_view(instrument: InstrumentLeaf | None, n_scenarios: int) -> tuple[int, int, list[int]]:
    """(mark, funding index, risk array padded to n_scenarios) of an instrument, zeros if unpriced."""
    if instrument is None:
        return 0, 0, [0] * n_scenarios
    risk = list(instrument.risk_array)
    # risk arrays have the genesis scenario count (the oracle rule), or none yet
    if risk and len(risk) != n_scenarios:
        raise SegmentShapeError(f"instrument {instrument.id} has {len(risk)} risk values, the circuit {n_scenarios}")
    return instrument.mark or 0, instrument.funding_index, risk or [0] * n_scenarios


def build_account_window(
    before: bytes,
    after: bytes,
    traded: int | None,
    instruments: Mapping[int, InstrumentLeaf],
    shape: SegmentShape,
) -> AccountWindow:
    """An account window from the leaf bytes before and after the slot."""
    old = _decode_account(before)
    new = _decode_account(after)
    # a used window ends with an account (rules never delete one)
    if new is None:
        raise SegmentShapeError("an account window needs an account after the slot")
    held_before = {p.instrument: p for p in old.positions} if old else {}
    held_after = {p.instrument: p for p in new.positions}
    ids = sorted(set(held_before) | set(held_after) | ({traded} if traded is not None else set()))
    # the fixed shape holds at most max_positions positions
    if len(ids) > shape.max_positions:
        raise SegmentShapeError(
            f"account holds {len(ids)} positions in the slot, the circuit has {shape.max_positions}"
        )
    positions = []
    for instrument_id in ids:
        was = held_before.get(instrument_id)
        now = held_after.get(instrument_id)
        mark, index, risk = compute_oracle_view(instruments.get(instrument_id), shape.n_scenarios)
        positions.append(
            PositionWindow(
                instrument=instrument_id,
                matched=int(instrument_id == traded),
                size_before=was.size if was else 0,
                cost_before=was.cost if was else 0,
                funding_before=was.funding if was else 0,
                size_after=now.size if now else 0,
                cost_after=now.cost if now else 0,
                funding_after=now.funding if now else 0,
                mark=mark,
                funding_index=index,
                risk=risk,
            )
        )
    positions += [PositionWindow(risk=[0] * shape.n_scenarios) for _ in range(shape.max_positions - len(ids))]
    return AccountWindow(
        exists_before=int(old is not None),
        address_before=_get_address_int(old.address) if old else 0,
        address_after=_get_address_int(new.address),
        collateral_before=old.collateral if old else 0,
        nonce_before=old.nonce if old else 0,
        collateral_after=new.collateral,
        nonce_after=new.nonce,
        positions=positions,
    )


def build_empty_account_window(shape: SegmentShape) -> AccountWindow:
    return AccountWindow(positions=[PositionWindow(risk=[0] * shape.n_scenarios) for _ in range(shape.max_positions)])


def build_instrument_window(genesis: Genesis, before: InstrumentLeaf, after: InstrumentLeaf) -> InstrumentWindow:
    spec = next(s for s in genesis.instruments if s.id == before.id)
    return InstrumentWindow(
        is_perp=int(before.kind == "perp"),
        has_mark=int(before.mark is not None),
        mark=before.mark or 0,
        has_risk=int(bool(before.risk_array)),
        expiry=0 if spec.kind == "perp" else spec.expiry,
        has_settlement=int(before.settlement is not None),
        settlement=before.settlement or 0,
        open_interest_delta=after.open_interest - before.open_interest,
    )


def build_globals_window(before: GlobalsLeaf, after: GlobalsLeaf) -> GlobalsWindow:
    return GlobalsWindow(
        deposit_count_before=before.deposit_count,
        deposit_count_after=after.deposit_count,
        oracle_time_before=before.oracle_time,
        oracle_time_after=after.oracle_time,
        fee_delta=after.fee_pool - before.fee_pool,
        insurance_delta=after.insurance_fund - before.insurance_fund,
    )


def build_slot_public(
    tx: object,
    leaves_before: Mapping[int, bytes],
    leaves_after: Mapping[int, bytes],
    instruments: Mapping[int, InstrumentLeaf],
    globals_before: GlobalsLeaf,
    globals_after: GlobalsLeaf,
    genesis: Genesis,
    shape: SegmentShape,
) -> SlotPublic:
    """One slot's public data from published data: the transaction, the leaves of its keys
    (`get_slot_keys`) before and after it, the instrument leaves as the slot sees them (the oracle
    view), and the globals leaf before and after."""
    kind = get_slot_type(tx)
    # the circuit proves these types so far
    if kind not in SUPPORTED_TYPES:
        raise SegmentShapeError(f"{kind} transactions are not in the segment circuit yet")
    words = compute_tx_words(tx)
    a_id, b_id = get_slot_accounts(tx)
    traded = get_slot_instrument(tx)

    def window(account_id: int | None, traded_here: int | None) -> AccountWindow:
        if account_id is None:
            return build_empty_account_window(shape)
        key = account_key(account_id)
        return build_account_window(leaves_before[key], leaves_after[key], traded_here, instruments, shape)

    a = window(a_id, traded)
    # a keeper's positions do not change
    b = window(b_id, traded if kind in ("perp_trade", "option_trade", "liquidate") else None)
    if traded is not None:
        instrument = build_instrument_window(
            genesis,
            decode_instrument_leaf(leaves_before[instrument_key(traded)]),
            decode_instrument_leaf(leaves_after[instrument_key(traded)]),
        )
    else:
        instrument = InstrumentWindow()
    flags = [int(kind == name) for name in SLOT_TYPES]
    return SlotPublic(flags, words, a, b, instrument, build_globals_window(globals_before, globals_after))


def build_noop_slot(shape: SegmentShape, globals_leaf: GlobalsLeaf | None = None) -> SlotPublic:
    """A padding slot: no transaction, nothing changes."""
    g = GlobalsWindow()
    if globals_leaf is not None:
        g = build_globals_window(globals_leaf, globals_leaf)
    empty = build_empty_account_window
    return SlotPublic([0] * len(SLOT_TYPES), TxWords(), empty(shape), empty(shape), InstrumentWindow(), g)


# --- Flattening -----------------------------------------------------------------------------------


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


def compute_public_inputs(segment: SegmentPublic) -> list[int]:
    """The segment circuit's public inputs, in allocation order: batch number, segment index, then
    every slot's words; signed values as v mod r (as `verifier.encoding.to_field_elements`)."""
    r = BN254.r
    return [v % r for v in [segment.batch, segment.segment, *flatten(segment.slots)]]


def count_public_inputs(shape: SegmentShape) -> int:
    return 2 + shape.n_slots * len(flatten(build_noop_slot(shape)))


def check_segment_shape(segment: SegmentPublic, shape: SegmentShape) -> None:
    """The segment fills exactly the shape's slots, each with the shape's windows."""
    # one slot per position of the shape (padding with no-ops is the caller's job)
    if len(segment.slots) != shape.n_slots:
        raise SegmentShapeError(f"segment has {len(segment.slots)} slots, the shape {shape.n_slots}")
    expected = len(flatten(build_noop_slot(shape)))
    for index, slot in enumerate(segment.slots):
        # every slot has the fixed number of words
        if len(flatten(slot)) != expected:
            raise SegmentShapeError(f"slot {index} has {len(flatten(slot))} words, the shape {expected}")


def pad_slots(slots: Sequence[SlotPublic], shape: SegmentShape) -> list[SlotPublic]:
    # more transactions than slots do not fit one segment
    if len(slots) > shape.n_slots:
        raise SegmentShapeError(f"{len(slots)} transactions do not fit a segment of {shape.n_slots} slots")
    return list(slots) + [build_noop_slot(shape) for _ in range(shape.n_slots - len(slots))]


# --- Segments from published data -----------------------------------------------------------------

LeafStep = Mapping[int, tuple[bytes, bytes]]  # one slot's leaves: key -> (bytes before, bytes after)


def get_step_keys(tx: object) -> list[int]:
    """Keys a published slot step must cover: the slot's windows and the globals leaf (a step may
    hold more, e.g. the instrument leaves an oracle update writes)."""
    return [*get_slot_keys(tx), GLOBALS_KEY]


def compute_segment_public(
    genesis: Genesis,
    shape: SegmentShape,
    batch: int,
    segment: int,
    transactions: Sequence[object],
    steps: Sequence[LeafStep],
    instruments_before: Mapping[int, bytes],
) -> tuple[SegmentPublic, dict[int, bytes]]:
    """A segment's public windows from published data only: its transactions, one leaf step per
    transaction (the leaves it read and wrote, before and after it), and the instrument leaves by
    key as the segment starts (every genesis instrument: they are the oracle view). Returns the
    windows and the instrument leaves as the segment ends (the next segment's start).

    This is what the prover's `compute_segment_witness` builds from the native rules; a verifier
    runs this instead, so nothing the prover hands over as public inputs is trusted."""
    # one leaf step per transaction
    if len(steps) != len(transactions):
        raise SegmentShapeError(f"{len(transactions)} transactions but {len(steps)} leaf steps")
    leaves = dict(instruments_before)
    instruments = {decode_key(k)[1]: decode_instrument_leaf(v) for k, v in leaves.items()}
    slots = []
    for index, (tx, step) in enumerate(zip(transactions, steps)):
        missing = [key for key in get_step_keys(tx) if key not in step]
        # the step publishes every leaf the slot's windows read
        if missing:
            raise SegmentShapeError(f"slot {index}: leaf step lacks keys {[hex(k) for k in missing]}")
        before = {key: pair[0] for key, pair in step.items()}
        after = {key: pair[1] for key, pair in step.items()}
        globals_before = decode_globals_leaf(before[GLOBALS_KEY])
        globals_after = decode_globals_leaf(after[GLOBALS_KEY])
        slots.append(build_slot_public(tx, before, after, instruments, globals_before, globals_after, genesis, shape))
        for key, (_, written) in step.items():
            # the oracle view moves with the instrument leaves a slot writes (oracle updates, trades)
            if decode_key(key)[0] == "instrument":
                leaves[key] = written
                instruments[decode_key(key)[1]] = decode_instrument_leaf(written)
    return SegmentPublic(batch, segment, pad_slots(slots, shape)), leaves

