"""Circuit v3: a segment's state transition, `root before -> root after`, with compact public data.

Public inputs (docs/v3.md, in allocation order): batch number, segment index, the state root
before and after the segment, the oracle section's words (`verifier.oracle_section`), then the
hash of the segment's records (`verifier.pubdata.compute_records_hash`: the low 253 bits of
sha256 over every slot's two record words). Everything else is witness, the record words and the
L2 signatures too.

What the circuit proves:
- open: `Poseidon(accounts_root, markets_hash, globals_hash) == root before`, hashing the markets
  table and the globals from the witness once (`verifier.state_tree`);
- the oracle section: unpacked from its public words (every value range-checked, unlisted values
  0), applied to the table under the oracle rules (it follows the last update applied, so none is
  skipped; funding for perpetuals only, settlement for expired, unsettled option series only, the
  clock strictly increasing);
- every slot: v2's slot constraints (`prover.circuits.slot.synthesize_slot`: the rules of
  docs/state-model.md) on private windows. Account windows are dense by instrument: position slot
  i is the table's instrument i, so its oracle view is the table's entry (no selection), and the
  traded instrument's entry is selected by a one-hot over the table. Each used window's leaf
  before is opened against the current accounts root and the root recomputed with its leaf after
  (`prover.circuits.tree`), A then B; the markets table takes the open-interest delta, the globals
  their deltas; at most `max_positions` positions per account; the record words are the packed
  transaction words, each within its wire bound (so within its record field: nothing carries into
  a neighbour), and every word the type does not carry is 0;
- the records hash: every slot's two record words (proven below 2^248, so their 32-byte encodings
  are the ones the contract hashes), 64 bytes a slot, hashed with sha256 (`prover.circuits.sha256`,
  one compression a slot and one for the padding), its low 253 bits the public input;
- every L2 signature (`synthesize_signatures`): a window that signs with its L2 key (the parties of
  trades, the sender of a transfer, the liquidator, the sender of a settlement) holds a key
  (`l2_key_before != 0`), the witnessed public key A has that id (`prover.circuits.eddsa.synthesize_key_id`),
  and (R8, S) is A's EdDSA-Poseidon signature of `Poseidon(domain_tag, record word 0, record word 1)`
  (`synthesize_eddsa_verify`; `verifier.l2auth`), the domain tag a constant of the shape;
- close: the state root of the final accounts root, table and globals `== root after`.

The Ethereum signatures are checked outside, by `ecrecover` on chain and natively: a withdrawal's
by the account's owner (the L1 address it was opened with, which is the leaf's address: deposits
bind it), a key registration's by the record's address (proven to be the account's); the L1
deposit queue, the oracle signature and the chain of roots likewise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from prover.circuits.eddsa import synthesize_eddsa_verify, synthesize_key_id
from prover.circuits.fast_gadgets import range_check_fast as range_check
from prover.circuits.layout import SLOT_TYPES, AccountWindow, GlobalsWindow, InstrumentWindow, PositionWindow, SegmentShape, SlotPublic, TxWords
from prover.circuits.sha256 import pack_bits, synthesize_sha256, word_to_bits
from prover.circuits.slot import synthesize_slot
from prover.circuits.tree import synthesize_hash_fields, synthesize_leaf_update
from prover.circuits.poseidon import synthesize_poseidon
from prover.gadgets import boolean, is_zero, mul
from prover.r1cs import ConstraintSystem, LinearCombination, LinearLike, Variable
from verifier.oracle_section import (
    ENTRY_FIELDS,
    ENTRY_PLACES,
    FLAG_BITS,
    HEADER_PLACES,
    RISK_FIELD,
    OracleSection,
    OracleShape,
    get_risk_place,
)
from verifier.pubdata import RECORD_BY_TYPE, RECORD_WORDS, RECORDS_HASH_BITS, TYPE_SHIFT, WORD_BYTES
from verifier.l2auth import get_domain_tag
from verifier.state_tree import GENESIS_LIMB_BITS, TreeShape
from verifier.transition import HEADER_WORDS, RECORDS_HASH_WORDS  # the public inputs' layout, one definition
from verifier.slots import ORDER_WORD_FIELDS
from verifier.wire import AMOUNT_BITS, PRICE_BITS, SIZE_BITS, TIMESTAMP_BITS, Genesis

POSITION_COUNT_BITS = 7  # max_positions - count in [0, 64]

# Which transaction word carries which record field, per type (the record's names are the wire's).
RECORD_TX_WORDS: dict[str, dict[str, str]] = {
    "deposit": {"account": "account_a", "amount": "quantity", "address": "address"},
    "withdraw": {"account": "account_a", "amount": "quantity", "nonce": "nonce_a"},
    "transfer": {"sender": "account_a", "recipient": "account_b", "amount": "quantity", "nonce": "nonce_a"},
    "perp_trade": {
        "taker": "account_a", "maker": "account_b", "market": "instrument", "size": "quantity", "price": "price",
        "fee": "fee", "taker_nonce": "nonce_a", "maker_nonce": "nonce_b",
    },
    "option_trade": {
        "buyer": "account_a", "seller": "account_b", "series": "instrument", "quantity": "quantity", "premium": "price",
        "fee": "fee", "buyer_nonce": "nonce_a", "seller_nonce": "nonce_b",
    },
    "settle_expired": {"account": "account_a", "sender": "account_b", "series": "instrument", "nonce": "nonce_a"},
    "liquidate": {"liquidator": "account_a", "account": "account_b", "instrument": "instrument", "size": "quantity", "nonce": "nonce_a"},
    "register_key": {"account": "account_a", "nonce": "nonce_a", "address": "address", "key_id": "key_id"},
    "fill": {
        "taker": "account_a", "maker": "account_b", "instrument": "instrument", "size": "quantity", "price": "price",
        "fee": "fee", "taker_nonce": "nonce_a", "maker_nonce": "nonce_b",
    },
}
# Words a type uses without publishing them: the deposit id is the deposit count (proven), a
# settlement's second nonce word is its first (the sender's nonce, whichever window pays it).
# A fill's orders are signed, not published: their limits are proven (prover/circuits/slot.py).
UNPUBLISHED_TX_WORDS: dict[str, tuple[str, ...]] = {
    "deposit": ("deposit_id",), "settle_expired": ("nonce_b",),
    "fill": tuple(f"{name}_{w}" for w in "ab" for name in ORDER_WORD_FIELDS),
}


@dataclass(frozen=True)
class TransitionShape:
    """One setup serves every segment of this shape (and genesis: the table is built in)."""

    n_slots: int
    tree: TreeShape
    table: tuple[int, ...]  # instrument ids, sorted
    perp: tuple[bool, ...]  # per table entry
    expiry: tuple[int, ...]  # options' expiry, 0 for perpetuals
    n_scenarios: int
    max_positions: int
    maintenance_bps: int
    liquidation_penalty_bps: int
    genesis_limbs: tuple[int, int]  # the genesis hash, (high, low) 128-bit limbs
    domain_tag: int  # what L2 signatures are bound to (verifier.l2auth.get_domain_tag of the genesis's domain)

    @classmethod
    def from_genesis(cls, genesis: Genesis, genesis_hash: bytes, n_slots: int, tree: TreeShape) -> "TransitionShape":
        specs = sorted(genesis.instruments, key=lambda s: s.id)
        value = int.from_bytes(genesis_hash, "big")
        risk = genesis.risk
        return cls(
            n_slots, tree, tuple(s.id for s in specs), tuple(s.kind == "perp" for s in specs),
            tuple(0 if s.kind == "perp" else s.expiry for s in specs), risk.n_scenarios, risk.max_positions,
            risk.maintenance_bps, risk.liquidation_penalty_bps,
            (value >> GENESIS_LIMB_BITS, value & ((1 << GENESIS_LIMB_BITS) - 1)),
            get_domain_tag(genesis.signing_domain),
        )

    @property
    def window_shape(self) -> SegmentShape:
        """v2's slot shape with one position slot per table instrument (dense windows)."""
        return SegmentShape(self.n_slots, len(self.table), self.n_scenarios, self.maintenance_bps, self.liquidation_penalty_bps)

    @property
    def oracle(self) -> OracleShape:
        return OracleShape(self.table, self.n_scenarios)

    def count_public_inputs(self) -> int:
        return HEADER_WORDS + self.oracle.n_words + RECORDS_HASH_WORDS


# --- Witness (plain ints; the witness builder fills it from the native rules) ---------------------


@dataclass
class MarketState:
    """One instrument's fields in the markets table (`verifier.state_tree.compute_instrument_fields` order)."""

    has_mark: int = 0
    mark: int = 0
    funding_index: int = 0
    open_interest: int = 0
    has_settlement: int = 0
    settlement: int = 0
    has_risk: int = 0
    risk: list[int] = field(default_factory=list)

    def fields(self) -> list:
        return [self.has_mark, self.mark, self.funding_index, self.open_interest, self.has_settlement,
                self.settlement, self.has_risk, *self.risk]


@dataclass
class GlobalsState:
    fee_pool: int = 0
    insurance_fund: int = 0
    deposit_count: int = 0
    oracle_time: int = 0

    def fields(self, genesis_limbs: tuple[int, int]) -> list:
        return [self.fee_pool, self.insurance_fund, self.deposit_count, self.oracle_time, *genesis_limbs]


@dataclass(frozen=True)
class L2SignatureWitness:
    """A window's L2 signature: the key and (R8, S). A window that does not sign holds the
    gadget's convention (A = R8 = (0, 1), S = 0)."""

    ax: int = 0
    ay: int = 1
    r8x: int = 0
    r8y: int = 1
    s: int = 0


@dataclass
class SlotWitness:
    flags: list[int]
    tx: TxWords
    a: AccountWindow  # dense: one position per table instrument (their oracle views unused here)
    b: AccountWindow
    path_a: tuple[tuple[int, ...], ...]
    path_b: tuple[tuple[int, ...], ...]
    deposit_count_after: int = 0
    fee_delta: int = 0
    insurance_delta: int = 0
    open_interest_delta: int = 0
    signature_a: L2SignatureWitness = field(default_factory=L2SignatureWitness)
    signature_b: L2SignatureWitness = field(default_factory=L2SignatureWitness)


@dataclass
class TransitionWitness:
    batch: int
    segment: int
    accounts_root: int  # before the segment
    markets: list[MarketState]
    globals: GlobalsState
    oracle: OracleSection
    slots: list[SlotWitness]
    public: list[int]  # the public inputs (computed natively; the circuit proves them)


# --- Allocation --------------------------------------------------------------------------------------


@dataclass
class MarketVars:
    has_mark: LinearLike
    mark: LinearLike
    funding_index: LinearLike
    open_interest: LinearLike
    has_settlement: LinearLike
    settlement: LinearLike
    has_risk: LinearLike
    risk: list[LinearLike]

    def fields(self) -> list[LinearLike]:
        return [self.has_mark, self.mark, self.funding_index, self.open_interest, self.has_settlement,
                self.settlement, self.has_risk, *self.risk]


@dataclass
class GlobalsVars:
    fee_pool: LinearLike
    insurance_fund: LinearLike
    deposit_count: LinearLike
    oracle_time: LinearLike


def allocate_markets(cs: ConstraintSystem, markets: Sequence[MarketState]) -> list[MarketVars]:
    return [
        MarketVars(*(cs.private(v) for v in (m.has_mark, m.mark, m.funding_index, m.open_interest, m.has_settlement,
                                              m.settlement, m.has_risk)), [cs.private(v) for v in m.risk])
        for m in markets
    ]


def allocate_window(cs: ConstraintSystem, window: AccountWindow, shape: TransitionShape, markets: Sequence[MarketVars]) -> AccountWindow:
    """A private dense window whose position slot i reads the table's entry i as its oracle view."""
    # one position slot per table instrument
    if len(window.positions) != len(shape.table):
        raise ValueError(f"a dense window has {len(shape.table)} position slots, got {len(window.positions)}")
    positions = []
    for instrument, p, m in zip(shape.table, window.positions, markets):
        positions.append(PositionWindow(
            instrument=instrument,
            matched=cs.private(p.matched),
            size_before=cs.private(p.size_before), cost_before=cs.private(p.cost_before), funding_before=cs.private(p.funding_before),
            size_after=cs.private(p.size_after), cost_after=cs.private(p.cost_after), funding_after=cs.private(p.funding_after),
            mark=m.mark, funding_index=m.funding_index, risk=list(m.risk),
        ))
    return AccountWindow(*(cs.private(v) for v in (window.exists_before, window.address_before, window.address_after,
                                                    window.collateral_before, window.nonce_before, window.collateral_after,
                                                    window.nonce_after, window.l2_key_before, window.l2_key_after)), positions,
                         [cs.private(v) for v in window.orders_before], [cs.private(v) for v in window.orders_after])


def synthesize_account_hash(cs: ConstraintSystem, window: AccountWindow, after: bool) -> Variable:
    """`verifier.state_tree.hash_account` of the window's account before or after."""
    suffix = "_after" if after else "_before"
    header = [window.address_after if after else window.address_before,
              window.collateral_after if after else window.collateral_before,
              window.nonce_after if after else window.nonce_before,
              window.l2_key_after if after else window.l2_key_before]
    positions = [getattr(p, name + suffix) for p in window.positions for name in ("size", "cost", "funding")]
    orders = window.orders_after if after else window.orders_before
    return synthesize_poseidon(cs, [*header, synthesize_hash_fields(cs, positions), synthesize_hash_fields(cs, orders)])


def get_leaf_fields(window: AccountWindow) -> list[LinearLike]:
    """Every field of the window's account before the slot (0 for an account that did not exist)."""
    fields = [window.address_before, window.collateral_before, window.nonce_before, window.l2_key_before]
    for p in window.positions:
        fields += [p.size_before, p.cost_before, p.funding_before]
    return fields + list(window.orders_before)


# --- The circuit ---------------------------------------------------------------------------------


def compute_state_root_gadget(cs: ConstraintSystem, shape: TransitionShape, accounts_root: LinearLike,
                              markets: Sequence[MarketVars], g: GlobalsVars) -> Variable:
    with cs.gadget("state_root"):
        markets_hash = synthesize_hash_fields(cs, [f for m in markets for f in m.fields()])
        globals_hash = synthesize_hash_fields(cs, [g.fee_pool, g.insurance_fund, g.deposit_count, g.oracle_time, *shape.genesis_limbs])
        return synthesize_poseidon(cs, [accounts_root, markets_hash, globals_hash])


def synthesize_transition(cs: ConstraintSystem, shape: TransitionShape, w: TransitionWitness) -> None:
    """Allocate the public inputs (first) and the witness, and constrain the whole segment."""
    # the witness has the shape's public inputs and slots
    if len(w.public) != shape.count_public_inputs():
        raise ValueError(f"{len(w.public)} public inputs, the shape has {shape.count_public_inputs()}")
    if len(w.slots) != shape.n_slots or len(w.markets) != len(shape.table):
        raise ValueError(f"witness has {len(w.slots)} slots and {len(w.markets)} instruments, the shape {shape.n_slots} and {len(shape.table)}")
    public = [cs.public_input(v) for v in w.public]
    root_before, root_after = public[2], public[3]
    n_oracle = shape.oracle.n_words
    oracle_words = public[HEADER_WORDS : HEADER_WORDS + n_oracle]
    (records_hash,) = public[HEADER_WORDS + n_oracle :]

    accounts_root: LinearLike = cs.private(w.accounts_root)
    markets = allocate_markets(cs, w.markets)
    g = GlobalsVars(*(cs.private(v) for v in (w.globals.fee_pool, w.globals.insurance_fund, w.globals.deposit_count, w.globals.oracle_time)))
    with cs.gadget("open"):
        # the witness's state is the one the "before" root commits to
        cs.enforce(compute_state_root_gadget(cs, shape, accounts_root, markets, g), 1, root_before)
    with cs.gadget("oracle_section"):
        markets, g = synthesize_oracle_section(cs, shape, w.oracle, oracle_words, markets, g)
    records: list[LinearCombination] = []
    for index, slot in enumerate(w.slots):
        with cs.gadget(f"slot{index}"):
            accounts_root, g, words = synthesize_transition_slot(cs, shape, slot, accounts_root, markets, g)
            records += words
    with cs.gadget("records_hash"):
        # each word's 32-byte big-endian encoding (the proof that it is below 2^248 makes it unique)
        bits = [bit for word in records for bit in word_to_bits(cs, word, 8 * WORD_BYTES)]
        cs.enforce(pack_bits(cs, synthesize_sha256(cs, bits), RECORDS_HASH_BITS), 1, records_hash)
    with cs.gadget("close"):
        # the "after" root commits to the state the slots left
        cs.enforce(compute_state_root_gadget(cs, shape, accounts_root, markets, g), 1, root_after)


def _pack(cs: ConstraintSystem, parts: Sequence[tuple[LinearLike, int]]) -> LinearCombination:
    out = cs.constant(0)
    for value, shift in parts:
        out = out + cs.as_lc(value) * (1 << shift)
    return out


def synthesize_oracle_section(
    cs: ConstraintSystem, shape: TransitionShape, section: OracleSection, words: Sequence[Variable],
    markets: list[MarketVars], g: GlobalsVars,
) -> tuple[list[MarketVars], GlobalsVars]:
    """The section's words unpacked and applied to the table (rollup.rules.process_oracle_update)."""
    update = boolean(cs, section.has_update)
    timestamp = cs.private(section.timestamp)
    previous = cs.private(section.previous_timestamp)
    range_check(cs, timestamp, TIMESTAMP_BITS)
    range_check(cs, previous, TIMESTAMP_BITS)
    header = [(update, HEADER_PLACES[0].shift), (timestamp, HEADER_PLACES[1].shift), (previous, HEADER_PLACES[2].shift)]
    cs.enforce(_pack(cs, header), 1, words[0])
    # no update: no timestamps
    cs.enforce(1 - cs.as_lc(update), timestamp, 0)
    cs.enforce(1 - cs.as_lc(update), previous, 0)
    # the update follows the last one applied: none is skipped (rules.process_oracle_update)
    cs.enforce(update, cs.as_lc(previous) - g.oracle_time, 0)
    # oracle timestamps strictly increase, and the clock moves to the update's
    range_check(cs, mul(cs, update, cs.as_lc(timestamp) - g.oracle_time - 1), TIMESTAMP_BITS)
    oracle_time = cs.as_lc(g.oracle_time) + mul(cs, update, cs.as_lc(timestamp) - g.oracle_time)
    out = []
    at = 1
    funding_field = ENTRY_FIELDS[2]
    for i, (m, e) in enumerate(zip(markets, section.entries)):
        flags = [boolean(cs, (e.flags >> k) & 1) for k in range(FLAG_BITS)]
        mark_listed, funding_listed, risk_listed, settlement_listed = flags
        for flag in flags:
            # nothing is listed without an update
            cs.enforce(flag, 1 - cs.as_lc(update), 0)
        mark, funding, settlement = cs.private(e.mark), cs.private(e.funding % cs.r), cs.private(e.settlement)
        # listed values in their ranges; unlisted ones 0 (a signed value carries its offset only when listed)
        range_check(cs, mark, PRICE_BITS)
        range_check(cs, settlement, PRICE_BITS)
        funding_packed = cs.as_lc(funding) + cs.as_lc(funding_listed) * funding_field.offset
        range_check(cs, funding_packed, funding_field.bits)
        for flag, value in ((mark_listed, mark), (funding_listed, funding), (settlement_listed, settlement)):
            cs.enforce(1 - cs.as_lc(flag), value, 0)
        flag_byte = sum((cs.as_lc(f) * (1 << k) for k, f in enumerate(flags)), cs.constant(0))
        values = {"flags": flag_byte, "mark": mark, "funding": funding_packed, "settlement": settlement}
        cs.enforce(_pack(cs, [(values[p.field.name], p.shift) for p in ENTRY_PLACES]), 1, words[at])
        risk_parts: dict[int, list[tuple[LinearLike, int]]] = {}
        risk = []
        for k in range(shape.n_scenarios):
            value = cs.private(e.risk[k] % cs.r)
            packed = cs.as_lc(value) + cs.as_lc(risk_listed) * RISK_FIELD.offset
            range_check(cs, packed, RISK_FIELD.bits)
            cs.enforce(1 - cs.as_lc(risk_listed), value, 0)
            word, shift = get_risk_place(k)
            risk_parts.setdefault(word, []).append((packed, shift))
            risk.append(value)
        for word in range(shape.oracle.risk_words):
            cs.enforce(_pack(cs, risk_parts.get(word, [])), 1, words[at + 1 + word])
        at += 1 + shape.oracle.risk_words
        if shape.perp[i]:
            # funding indices for perpetual markets only; settlements for option series only
            cs.enforce(settlement_listed, 1, 0)
        else:
            cs.enforce(funding_listed, 1, 0)
            # a series settles once, after its expiry
            cs.enforce(settlement_listed, m.has_settlement, 0)
            range_check(cs, mul(cs, settlement_listed, cs.as_lc(timestamp) - shape.expiry[i]), TIMESTAMP_BITS)
        out.append(MarketVars(
            has_mark=cs.as_lc(m.has_mark) + mul(cs, mark_listed, 1 - cs.as_lc(m.has_mark)),
            mark=cs.as_lc(m.mark) + mul(cs, mark_listed, cs.as_lc(mark) - m.mark),
            funding_index=cs.as_lc(m.funding_index) + mul(cs, funding_listed, cs.as_lc(funding) - m.funding_index),
            open_interest=m.open_interest,
            # an unsettled series has settlement 0 (the table's invariant), and an unlisted value is 0
            has_settlement=cs.as_lc(m.has_settlement) + settlement_listed,
            settlement=cs.as_lc(m.settlement) + settlement,
            has_risk=cs.as_lc(m.has_risk) + mul(cs, risk_listed, 1 - cs.as_lc(m.has_risk)),
            risk=[cs.as_lc(r) + mul(cs, risk_listed, cs.as_lc(v) - r) for r, v in zip(m.risk, risk)],
        ))
    return out, GlobalsVars(g.fee_pool, g.insurance_fund, g.deposit_count, oracle_time)


def synthesize_transition_slot(
    cs: ConstraintSystem, shape: TransitionShape, w: SlotWitness, accounts_root: LinearLike,
    markets: list[MarketVars], g: GlobalsVars,
) -> tuple[LinearLike, GlobalsVars, list[LinearCombination]]:
    """One slot: v2's rules on private dense windows, the account paths, the table and globals
    updates, the record words and the L2 signatures. Returns the new accounts root and globals (the
    table's open interest is updated in place) and the slot's record words."""
    flags = [cs.private(v) for v in w.flags]
    flag = dict(zip(SLOT_TYPES, flags))
    # oracle updates travel in the segment's oracle section, never in a slot
    cs.enforce(flag["oracle_update"], 1, 0)
    tx = TxWords(*(cs.private(getattr(w.tx, name)) for name in TxWords.__dataclass_fields__))
    a = allocate_window(cs, w.a, shape, markets)
    b = allocate_window(cs, w.b, shape, markets)
    fill = flag["fill"]
    trade = cs.as_lc(flag["perp_trade"]) + flag["option_trade"] + fill
    settle, liq = flag["settle_expired"], flag["liquidate"]
    with cs.gadget("instrument_select"):
        # the slot's instrument: a one-hot over the table, none for collateral moves
        uses_instrument = trade + settle + liq
        selected = [boolean(cs, int(uses_instrument.value == 1 and tx.instrument.value == instrument)) for instrument in shape.table]
        cs.enforce(sum((cs.as_lc(s) for s in selected), cs.constant(0)), 1, uses_instrument)
        for s, instrument in zip(selected, shape.table):
            cs.enforce(s, cs.as_lc(tx.instrument) - instrument, 0)

        def pick(values: Sequence[LinearLike]) -> LinearCombination:
            return sum((cs.as_lc(mul(cs, s, v)) for s, v in zip(selected, values)), cs.constant(0))

        oi_delta = cs.private(w.open_interest_delta)
        instrument = InstrumentWindow(
            is_perp=sum((cs.as_lc(s) * int(p) for s, p in zip(selected, shape.perp)), cs.constant(0)),
            has_mark=pick([m.has_mark for m in markets]),
            mark=pick([m.mark for m in markets]),
            has_risk=pick([m.has_risk for m in markets]),
            expiry=sum((cs.as_lc(s) * e for s, e in zip(selected, shape.expiry)), cs.constant(0)),
            has_settlement=pick([m.has_settlement for m in markets]),
            settlement=pick([m.settlement for m in markets]),
            open_interest_delta=oi_delta,
        )
        for s, m in zip(selected, markets):
            m.open_interest = cs.as_lc(m.open_interest) + mul(cs, s, oi_delta)
    globals_window = GlobalsWindow(
        deposit_count_before=g.deposit_count, deposit_count_after=cs.private(w.deposit_count_after),
        oracle_time_before=g.oracle_time, oracle_time_after=g.oracle_time,
        fee_delta=cs.private(w.fee_delta), insurance_delta=cs.private(w.insurance_delta),
    )
    slot = SlotPublic(flags, tx, a, b, instrument, globals_window)  # type: ignore[arg-type]
    order_words = synthesize_slot(cs, shape.window_shape, slot)
    same_account = is_zero(cs, cs.as_lc(tx.account_a) - tx.account_b)
    keeper = mul(cs, settle, 1 - cs.as_lc(same_account))
    uses_a = sum((cs.as_lc(f) for f in flags), cs.constant(0))
    uses_b = cs.as_lc(flag["transfer"]) + trade + keeper + liq
    # who signs with an L2 key (withdrawals and registrations are Ethereum-signed, checked on L1;
    # deposits are authorised by the L1 queue)
    signs_a = cs.as_lc(flag["transfer"]) + trade + settle - keeper + liq
    signs_b = trade + keeper
    words = synthesize_record(cs, flag, tx)
    with cs.gadget("signed_messages"):
        # what each window's key signed: the record's message, a fill's sides their orders'
        message = synthesize_poseidon(cs, [cs.constant(shape.domain_tag), *words])
        messages = []
        for order in order_words:
            order_message = synthesize_poseidon(cs, [cs.constant(shape.domain_tag), *order])
            messages.append(cs.as_lc(message) + mul(cs, fill, cs.as_lc(order_message) - message))
    synthesize_signatures(cs, ((a, signs_a, w.signature_a, messages[0]), (b, signs_b, w.signature_b, messages[1])))
    root = accounts_root
    for window, key, uses, path in ((a, tx.account_a, uses_a, w.path_a), (b, tx.account_b, uses_b, w.path_b)):
        with cs.gadget("account_leaf"):
            exists = window.exists_before
            # an account that did not exist has nothing (its leaf is 0)
            for value in get_leaf_fields(window):
                cs.enforce(1 - cs.as_lc(exists), value, 0)
            leaf_before = mul(cs, exists, synthesize_account_hash(cs, window, after=False))
            leaf_after = synthesize_account_hash(cs, window, after=True)
            synthesize_position_count(cs, shape, window, uses)
            path = [[cs.private(v) for v in level] for level in path]
            root = synthesize_leaf_update(cs, shape.tree, root, key, uses, leaf_before, leaf_after, path)
    new_globals = GlobalsVars(
        cs.as_lc(g.fee_pool) + globals_window.fee_delta,
        cs.as_lc(g.insurance_fund) + globals_window.insurance_delta,
        globals_window.deposit_count_after,
        g.oracle_time,
    )
    return root, new_globals, words


def synthesize_signatures(
    cs: ConstraintSystem, windows: Sequence[tuple[AccountWindow, LinearLike, L2SignatureWitness, LinearLike]],
) -> None:
    """Each window that signs (`signs` a bit) signed its message with its account's L2 key: the
    key has the leaf's id, which is not 0 (no key registered), and the signature verifies."""
    with cs.gadget("signatures"):
        for window, signs, sig, message in windows:
            ax, ay, r8x, r8y, s = (cs.private(v) for v in (sig.ax, sig.ay, sig.r8x, sig.r8y, sig.s))
            with cs.gadget("key_id"):
                key_id = synthesize_key_id(cs, ax, ay)
                cs.enforce(signs, cs.as_lc(key_id) - window.l2_key_before, 0)
                # an account without a key (id 0) signs nothing: signs x key x inverse = signs
                key = cs.as_lc(window.l2_key_before)
                inverse = cs.private(pow(key.value, -1, cs.r) if key.value else 0)
                cs.enforce(mul(cs, signs, key), inverse, signs)
            synthesize_eddsa_verify(cs, signs, ax, ay, r8x, r8y, s, message)


def synthesize_position_count(cs: ConstraintSystem, shape: TransitionShape, window: AccountWindow, uses: LinearLike) -> None:
    """If `uses`: the account holds at most max_positions positions after the slot (the rules'
    shape limit, rules.process_perp_trade and the others). A dense window has a slot per
    instrument, so the limit is a count of non-zero sizes."""
    if shape.max_positions >= len(shape.table):
        return
    with cs.gadget("position_count"):
        count = sum((1 - cs.as_lc(is_zero(cs, p.size_after)) for p in window.positions), cs.constant(0))
        range_check(cs, mul(cs, uses, shape.max_positions - count), POSITION_COUNT_BITS)


def synthesize_record(cs: ConstraintSystem, flag: dict[str, Variable], tx: TxWords) -> list[LinearCombination]:
    """The record words: the transaction words packed as `verifier.pubdata` packs them (returned,
    linear in them), and every transaction word the slot's type does not carry is 0 (one record,
    one transaction)."""
    with cs.gadget("record"):
        packed = [cs.constant(0) for _ in range(RECORD_WORDS)]
        used: dict[str, LinearCombination] = {name: cs.constant(0) for name in TxWords.__dataclass_fields__}
        for kind, spec in RECORD_BY_TYPE.items():
            mapping = RECORD_TX_WORDS[kind]
            parts: list[list[tuple[LinearLike, int]]] = [[] for _ in range(RECORD_WORDS)]
            parts[0].append((spec.code, TYPE_SHIFT))
            for place in spec.get_places():
                word = getattr(tx, mapping[place.field.name])
                parts[place.word].append((cs.as_lc(word) + place.field.offset, place.shift))
            for k in range(RECORD_WORDS):
                if parts[k]:
                    packed[k] = packed[k] + mul(cs, flag[kind], _pack(cs, parts[k]))
            for name in list(mapping.values()) + list(UNPUBLISHED_TX_WORDS.get(kind, ())):
                used[name] = used[name] + flag[kind]
        synthesize_quantity_top(cs, flag, tx.quantity)
        for name, uses in used.items():
            cs.enforce(1 - uses, getattr(tx, name), 0)
        # a settlement publishes one nonce: both nonce words carry it
        cs.enforce(flag["settle_expired"], cs.as_lc(tx.nonce_b) - tx.nonce_a, 0)
    return packed


def synthesize_quantity_top(cs: ConstraintSystem, flag: dict[str, Variable], quantity: LinearLike) -> None:
    """The quantity word is not the top of its range check: v2's `slot.synthesize_tx_ranges`
    admits amounts in [1, 2^64], option quantities in [1, 2^31] and signed sizes in
    [1 - 2^31, 2^31], one more than the wire (`verifier.wire`: PositiveAmount, Quantity, Size;
    the native rules run on parsed transactions). v2 could rely on the verifier's parsing; here
    the word is private and its record field is exactly the wire's width, so 2^64 or 2^31 would
    carry into the field above and the record would name another transaction (a transfer of 0
    to the next account, a trade of -2^31 of the next instrument). One constraint:
    (quantity - top) x inverse = 1 for the types that carry a quantity."""
    moves = cs.as_lc(flag["deposit"]) + flag["withdraw"] + flag["transfer"]
    sized = cs.as_lc(flag["perp_trade"]) + flag["option_trade"] + flag["liquidate"] + flag["fill"]
    difference = cs.as_lc(quantity) - (moves * (1 << AMOUNT_BITS) + sized * (1 << SIZE_BITS))
    carries = moves + sized
    needed = carries.value == 1 and difference.value != 0
    inverse = cs.private(pow(difference.value, -1, cs.r) if needed else 0)
    cs.enforce(difference, inverse, carries)


def build_transition_circuit(shape: TransitionShape, witness: TransitionWitness) -> ConstraintSystem:
    cs = ConstraintSystem()
    synthesize_transition(cs, shape, witness)
    return cs
