"""One transaction slot of the segment circuit: the native rules as constraints.

Every slot has one shape whatever it holds (see prover/circuits/layout.py). The type flags
select the type: each rule below is either written once for all types with per-type parameters
that are linear in the flags (a collateral delta, a size delta, a nonce increment), or multiplied
by the flags of the types it applies to, so a rule of another type is `0 == 0`.

What a slot proves, per account window W (A and B: see verifier/slots.py for who is who):
- nonce: `nonce_after = nonce_before + inc` and the transaction's nonce equals `nonce_before`;
- existence and binding: an account used by anything but a deposit existed before; an existing
  account keeps its address; a deposit's account has the deposit's address;
- positions (`synthesize_positions`): on the traded position slot `size += delta`, `cost += cost
  delta`, lazy funding `collateral -= size x (index - funding)` and `funding = index`, realisation
  `collateral -= cost` when the size returns to 0 (cost and funding then 0); every other position
  slot is unchanged;
- `collateral_after = collateral_before + type delta - funding paid - realised cost`, and
  `collateral_after` in [0, 2^128): no negative balance;
- margin (`synthesize_margin`) when the side's risk increased (|size| grew, or collateral left):
  `equity >= 0` and `equity + pnl_s >= 0` for every scenario s, which is exactly
  `equity >= max(0, -min_s pnl_s)` = initial margin.
And per slot: the two accounts differ, a trade moves a non-zero size, the instrument is of the
type's kind with an oracle mark and risk array, an option series has not expired
(`oracle_time < expiry`), the deposit consumes `deposit_count`, the fee goes to the fee pool, the
open-interest delta is the change in long sizes.

Settlement (settle_expired) reuses the position change: on window A the matched option position's
size goes to 0 and `collateral += size x settlement`; a shortfall (a short without the collateral
to pay) comes from the public insurance-fund delta: `collateral_after = raw + shortfall` with
`shortfall >= 0` and `shortfall x collateral_after = 0`, which has exactly one solution, the
native `max(0, raw)`. The sender pays the nonce: window B if it is a keeper, A if the holder.

Liquidation: A (liquidator) takes `size` contracts of B's position at the instrument's mark (perps
move `size x mark` of cost, options pay it in collateral), both sides settle funding, B pays
`penalty = |size| x mark x penalty_bps // 10000` (a floor division proven by its remainder), the
fund covers B's shortfall as above (`insurance_delta = penalty - shortfall`). The size has the
sign of B's position and |size| <= |position|; A needs initial margin if its risk grew; B must be
below maintenance BEFORE (`synthesize_maintenance`, an existential check over the scenarios).

Oracle update: the clock only (timestamp > oracle_time, which it becomes); the instrument values
it writes are applied to the markets table by the transition circuit (prover/circuits/transition.py,
"the oracle section").

All eight transaction types have their flag; `SUPPORTED_TYPES` lists them, and a type removed from
it would have its flag constrained to 0.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass

from prover.circuits.fast_gadgets import range_check_fast as range_check
from prover.circuits.layout import SLOT_TYPES, SUPPORTED_TYPES, AccountWindow, SegmentShape, SlotPublic, TxWords
from prover.gadgets import abs_value, assert_boolean, boolean, gt, is_zero, mul, to_signed
from prover.r1cs import ConstraintSystem, LinearCombination, LinearLike, Variable
from verifier.pubdata import ORDER_SPEC, RECORD_WORDS, TIME_IN_FORCE_BITS, TYPE_SHIFT
from verifier.wire import (
    ACCOUNT_ID_BITS,
    AMOUNT_BITS,
    CLIENT_ID_BITS,
    INSTRUMENT_ID_BITS,
    NONCE_BITS,
    ORDER_NONCE_BITS,
    ORDER_SLOTS,
    PRICE_BITS,
    SIZE_BITS as WIRE_SIZE_BITS,
    TIMESTAMP_BITS,
)

COLLATERAL_BITS = 128  # the leaf word's range
SIZE_BITS = 32  # a transaction's signed size: |size| < 2^31 on the wire
TRADED_SIZE_BITS = 65  # before + delta may leave int64 only in a false witness; the bound stays sound
PENALTY_BITS = 88  # |size| < 2^31 (wire) x mark < 2^56
BPS = 10_000
BPS_BITS = 14  # remainders of a division by 10000
FEE_CAP_BITS = PRICE_BITS + WIRE_SIZE_BITS + 1  # max_fee x |size| - fee, when the cap holds
# a fill's order fields on the transaction words (verifier.slots.ORDER_WORD_FIELDS) and their widths
ORDER_WORD_BITS = {
    "order_size": WIRE_SIZE_BITS, "limit": PRICE_BITS, "time_in_force": TIME_IN_FORCE_BITS, "expiry": TIMESTAMP_BITS,
    "client_id": CLIENT_ID_BITS, "max_fee": PRICE_BITS,
}


def get_margin_bits(max_positions: int) -> int:
    """Bits that hold any true `equity + pnl_s` of a leaf in range: collateral < 2^128, each
    position's value < 2^129 and scenario P&L < 2^126, so the sum is < max_positions x 2^130.
    A negative sum wraps to r - |x| > 2^(bits), so a `bits`-bit range check proves it >= 0."""
    return 131 + max_positions.bit_length()


def allocate_public(cs: ConstraintSystem, value: object) -> object:
    """The same windows with every int replaced by a public input (allocation order = `flatten`)."""
    if is_dataclass(value):
        return type(value)(**{f.name: allocate_public(cs, getattr(value, f.name)) for f in fields(value)})
    if isinstance(value, list):
        return [allocate_public(cs, item) for item in value]
    return cs.public_input(value)


@dataclass
class SideParameters:
    """What a slot's type does to one account window, as linear combinations of the flags."""

    uses: LinearLike  # the window holds an account of this transaction
    must_exist: LinearLike  # it existed before (everything but a deposit)
    nonce_increment: LinearLike
    nonce_word: LinearLike  # the transaction's nonce for this side
    collateral_delta: LinearLike
    changes: LinearLike  # a position moves (trade or liquidation)
    margin_if_grows: LinearLike  # initial margin if |size| grew (not for the liquidated side)
    size_delta: LinearLike
    cost_delta: LinearLike
    removes_collateral: LinearLike  # withdraw or transfer out: margin regardless of positions
    settles: LinearLike  # settle_expired: the matched option position is paid out and removed
    settlement: LinearLike  # the series' settlement price (payoff per contract)
    shortfall: LinearLike  # what the insurance fund pays into this account (settlement, liquidation)
    binds_address: LinearLike  # a deposit: a new account gets the deposit's address


def synthesize_tx_ranges(
    cs: ConstraintSystem, tx: TxWords, dep: Variable, wd: Variable, tr: Variable, perp: Variable, opt: Variable, liq: Variable, fill: Variable,
) -> None:
    """The wire bounds of `verifier/wire.py` on the transaction's words, so that the proof alone
    (not only the verifier's parsing and the contract's checks) refuses an amount, fee or price of
    r - x acting as -x. Words a type does not carry are 0, which every bound admits."""
    with cs.gadget("tx_ranges"):
        for word, bits in (
            (tx.account_a, ACCOUNT_ID_BITS),
            (tx.account_b, ACCOUNT_ID_BITS),
            (tx.instrument, INSTRUMENT_ID_BITS),
            (tx.price, PRICE_BITS),
            (tx.fee, AMOUNT_BITS),
            (tx.deposit_id, NONCE_BITS),
            (tx.address, 160),
            (tx.timestamp, TIMESTAMP_BITS),
        ):
            range_check(cs, word, bits)
        # collateral moves: 0 < amount < 2^64 (as amount - 1 in [0, 2^64))
        moves = cs.as_lc(dep) + wd + tr
        range_check(cs, mul(cs, moves, cs.as_lc(tx.quantity) - 1), AMOUNT_BITS)
        # option trades: 0 < quantity < 2^31
        range_check(cs, mul(cs, opt, cs.as_lc(tx.quantity) - 1), WIRE_SIZE_BITS)
        # perpetual trades, liquidations and fills: -2^31 < size < 2^31
        signed = cs.as_lc(perp) + liq + fill
        range_check(cs, mul(cs, signed, cs.as_lc(tx.quantity) + (2**WIRE_SIZE_BITS - 1)), WIRE_SIZE_BITS + 1)
        # perpetual trades and fills: a positive price (options may trade at a premium of 0)
        range_check(cs, mul(cs, cs.as_lc(perp) + fill, cs.as_lc(tx.price) - 1), PRICE_BITS)
        # nonces: an account's (32 bits), a fill's order nonces 64 bits (their 64-bit range is
        # proven where the order slot is selected, `synthesize_order_slot`)
        for nonce in (tx.nonce_a, tx.nonce_b):
            range_check(cs, mul(cs, 1 - cs.as_lc(fill), nonce), NONCE_BITS)
        # a fill's signed orders: every field in its width, so their words pack uniquely
        for w in "ab":
            for name, bits in ORDER_WORD_BITS.items():
                range_check(cs, getattr(tx, f"{name}_{w}"), bits)


@dataclass
class AccountResult:
    long_delta: LinearCombination  # change in long size (open interest)
    magnitude_before: LinearLike  # |size| of the matched position before
    negative_before: LinearLike  # its sign bit


def synthesize_slot(cs: ConstraintSystem, shape: SegmentShape, slot: SlotPublic) -> tuple[list[LinearCombination], list[LinearCombination]]:
    """Constrain one slot whose windows are already allocated. Returns the words of the orders a
    fill's windows A and B signed (`verifier.pubdata.compute_order_words`; meaningless for other
    types, whose signatures sign the record)."""
    flag = dict(zip(SLOT_TYPES, slot.flags))
    tx = slot.tx
    inst = slot.instrument
    with cs.gadget("slot_type"):
        for value in slot.flags:
            assert_boolean(cs, value)
        any_type = sum((cs.as_lc(v) for v in slot.flags), cs.constant(0))
        # at most one type per slot (none: a no-op)
        cs.enforce(any_type, 1 - any_type, 0)
        # types the circuit does not prove yet cannot be selected
        for name in SLOT_TYPES:
            if name not in SUPPORTED_TYPES:
                cs.enforce(flag[name], 1, 0)
    dep, wd, tr, perp, opt, settle, liq, reg, oracle, fill = (flag[n] for n in SLOT_TYPES)
    with cs.gadget("fill_kind"):
        # a fill trades as a perpetual trade or as an option trade, by its instrument
        fill_perp = mul(cs, fill, inst.is_perp)
        perp_like = cs.as_lc(perp) + fill_perp
        opt_like = cs.as_lc(opt) + fill - fill_perp
    signed_trade = cs.as_lc(perp) + opt  # trades that use account nonces
    trade = signed_trade + fill
    synthesize_tx_ranges(cs, tx, dep, wd, tr, perp, opt, liq, fill)
    with cs.gadget("settle_sender"):
        # a settlement sent by a keeper uses window B for the keeper; holders settling their own
        # position use window A only
        same_account = is_zero(cs, cs.as_lc(tx.account_a) - tx.account_b)
        keeper = mul(cs, settle, 1 - cs.as_lc(same_account))
        own = cs.as_lc(settle) - keeper
    with cs.gadget("slot_parameters"):
        notional = mul(cs, tx.quantity, tx.price)
        deposited = mul(cs, dep, tx.quantity)
        moved_out = mul(cs, cs.as_lc(wd) + tr, tx.quantity)
        moved_in = mul(cs, tr, tx.quantity)
        fee = mul(cs, trade, tx.fee)
        premium = mul(cs, opt_like, notional)
        perp_cost = mul(cs, perp_like, notional)
        traded = mul(cs, trade, tx.quantity)
    with cs.gadget("liquidation_parameters"):
        # the position moves at the mark: perps move their cost, options pay the value in collateral
        liquidated = mul(cs, liq, tx.quantity)
        moved = mul(cs, liquidated, inst.mark)
        moved_cost = mul(cs, moved, inst.is_perp)
        moved_value = cs.as_lc(moved) - moved_cost
        liquidated_magnitude, liquidated_negative = abs_value(cs, liquidated, SIZE_BITS)
        # penalty = |size| x mark x penalty_bps // 10000
        notional_moved = mul(cs, liquidated_magnitude, inst.mark)
        penalty = synthesize_bps_floor(cs, notional_moved, shape.liquidation_penalty_bps, PENALTY_BITS)
    # insurance_delta = penalty - shortfall (liquidation), -shortfall (settlement)
    shortfall = cs.as_lc(penalty) - slot.globals.insurance_delta
    side_a = SideParameters(
        uses=any_type,
        must_exist=cs.as_lc(wd) + tr + trade + settle + liq + reg,
        nonce_increment=cs.as_lc(wd) + tr + signed_trade + own + liq + reg,
        nonce_word=tx.nonce_a,
        collateral_delta=cs.as_lc(deposited) - moved_out - fee - premium - moved_value,
        changes=trade + liq,
        margin_if_grows=trade + liq,
        size_delta=cs.as_lc(traded) + liquidated,
        cost_delta=cs.as_lc(perp_cost) + moved_cost,
        removes_collateral=cs.as_lc(wd) + tr,
        settles=settle,
        settlement=inst.settlement,
        shortfall=mul(cs, settle, shortfall),
        binds_address=dep,
    )
    side_b = SideParameters(
        uses=cs.as_lc(tr) + trade + keeper + liq,
        must_exist=cs.as_lc(tr) + trade + keeper + liq,
        nonce_increment=signed_trade + keeper,
        nonce_word=tx.nonce_b,
        collateral_delta=cs.as_lc(moved_in) + premium + moved_value - penalty,
        changes=trade + liq,
        margin_if_grows=trade,
        size_delta=-cs.as_lc(traded) - liquidated,
        cost_delta=-cs.as_lc(perp_cost) - moved_cost,
        removes_collateral=cs.constant(0),
        settles=cs.constant(0),
        settlement=cs.constant(0),
        shortfall=mul(cs, liq, shortfall),
        binds_address=cs.constant(0),
    )
    synthesize_distinct_accounts(cs, tx.account_a, tx.account_b, side_b.uses)
    synthesize_instrument_checks(cs, slot, perp, opt, opt_like, trade, settle, liq)
    synthesize_deposit(cs, slot, dep)
    synthesize_key_registration(cs, slot, reg)
    result_a = synthesize_account(cs, shape, slot.a, tx, side_a)
    result_b = synthesize_account(cs, shape, slot.b, tx, side_b)
    with cs.gadget("liquidation"):
        # the liquidation takes part of the position, in its direction, without crossing zero
        cs.enforce(liq, cs.as_lc(liquidated_negative) - result_b.negative_before, 0)
        room = mul(cs, liq, cs.as_lc(result_b.magnitude_before) - liquidated_magnitude)
        range_check(cs, room, TRADED_SIZE_BITS)
    # only an account below maintenance margin can be liquidated
    synthesize_maintenance(cs, shape, slot.b, liq)
    with cs.gadget("hot_deltas"):
        # open interest moves by the change in long sizes of both sides
        cs.enforce(result_a.long_delta + result_b.long_delta - inst.open_interest_delta, 1, 0)
        # the taker's (buyer's) fee goes to the fee pool
        cs.enforce(cs.as_lc(fee) - slot.globals.fee_delta, 1, 0)
        # only settlements and liquidations move the insurance fund; the shortfall it pays is >= 0
        cs.enforce(1 - cs.as_lc(settle) - liq, slot.globals.insurance_delta, 0)
        range_check(cs, shortfall, COLLATERAL_BITS)
    with cs.gadget("oracle_clock"):
        # oracle timestamps strictly increase, and only an oracle update moves the clock
        g = slot.globals
        range_check(cs, mul(cs, oracle, cs.as_lc(tx.timestamp) - g.oracle_time_before - 1), TIMESTAMP_BITS)
        advance = mul(cs, oracle, cs.as_lc(tx.timestamp) - g.oracle_time_before)
        cs.enforce(cs.as_lc(g.oracle_time_before) + advance - g.oracle_time_after, 1, 0)
    return synthesize_fill_orders(cs, slot, fill)


def synthesize_fill_orders(cs: ConstraintSystem, slot: SlotPublic, fill: Variable) -> tuple[list[LinearCombination], list[LinearCombination]]:
    """A fill's orders (rollup.rules.process_fill): the price within both limits, the taker's fee
    cap, neither order expired, and each order's filled amount, kept in its account's order slot
    `nonce % ORDER_SLOTS`, within its size. Every other slot leaves the order slots as they were.
    Returns the two orders' words (what their keys signed)."""
    tx, g = slot.tx, slot.globals
    with cs.gadget("fill_orders"):
        traded = mul(cs, fill, tx.quantity)
        magnitude, taker_sells = abs_value(cs, traded, SIZE_BITS)
        # the taker (A) buys when the size is positive; the maker (B) takes the other side
        is_buy = {"a": 1 - cs.as_lc(taker_sells), "b": cs.as_lc(taker_sells)}
        # the taker pays at most max_fee per contract: max_fee x |size| - fee >= 0
        cap = mul(cs, tx.max_fee_a, magnitude)
        range_check(cs, mul(cs, fill, cs.as_lc(cap) - tx.fee), FEE_CAP_BITS)
        words = {}
        for w, window in (("a", slot.a), ("b", slot.b)):
            limit = getattr(tx, f"limit_{w}")
            # the order is one the wire can carry: a positive limit, time in force 0, 1 or 2
            # (2 bits hold 3: a signed order the rules could never parse)
            range_check(cs, mul(cs, fill, cs.as_lc(limit) - 1), PRICE_BITS)
            tif = cs.as_lc(getattr(tx, f"time_in_force_{w}"))
            cs.enforce(mul(cs, tif, tif - 1), tif - 2, 0)
            # a buyer's limit is at least the price, a seller's at most: (2 is_buy - 1)(limit - price) >= 0
            room = mul(cs, 2 * is_buy[w] - 1, cs.as_lc(limit) - tx.price)
            range_check(cs, mul(cs, fill, room), PRICE_BITS)
            # an order with an expiry fills only while the oracle time is before it
            expiry = getattr(tx, f"expiry_{w}")
            expires = mul(cs, fill, 1 - cs.as_lc(is_zero(cs, expiry)))
            range_check(cs, mul(cs, expires, cs.as_lc(expiry) - g.oracle_time_before - 1), TIMESTAMP_BITS)
            nonce = getattr(tx, f"nonce_{w}")
            synthesize_order_slot(cs, window, fill, nonce, getattr(tx, f"order_size_{w}"), magnitude)
            values = {
                "account": getattr(tx, f"account_{w}"), "instrument": tx.instrument, "is_buy": is_buy[w],
                "size": getattr(tx, f"order_size_{w}"), "price": limit, "time_in_force": getattr(tx, f"time_in_force_{w}"),
                "expiry": expiry, "client_id": getattr(tx, f"client_id_{w}"), "nonce": nonce, "max_fee": getattr(tx, f"max_fee_{w}"),
            }
            packed = [cs.constant(0) for _ in range(RECORD_WORDS)]
            packed[0] = packed[0] + cs.constant(ORDER_SPEC.code << TYPE_SHIFT)
            for place in ORDER_SPEC.get_places():
                packed[place.word] = packed[place.word] + cs.as_lc(values[place.field.name]) * (1 << place.shift)
            words[w] = packed
    return words["a"], words["b"]


def synthesize_order_slot(
    cs: ConstraintSystem, window: AccountWindow, fill: Variable, nonce: LinearLike, order_size: LinearLike, magnitude: LinearLike
) -> None:
    """The order slot `nonce % ORDER_SLOTS` of the window's account, as `rollup.rules.get_order_filled`:
    it holds this order (filled so far), an earlier one or nothing (0 filled so far), never a
    later one; it then holds (nonce, filled + |size|) <= the order's size. Proves nonce < 2^64."""
    slot_bits = (ORDER_SLOTS - 1).bit_length()
    with cs.gadget("order_slot"):
        value = cs.as_lc(nonce).value
        bits = [boolean(cs, (value >> i) & 1) for i in range(slot_bits)]
        rest = cs.private(value >> slot_bits)
        range_check(cs, rest, ORDER_NONCE_BITS - slot_bits)
        cs.enforce(sum((cs.as_lc(b) * (1 << i) for i, b in enumerate(bits)), cs.as_lc(rest) * ORDER_SLOTS) - nonce, 1, 0)
        selectors = synthesize_one_hot(cs, bits)
        held_nonce = sum((cs.as_lc(mul(cs, sel, window.orders_before[2 * j])) for j, sel in enumerate(selectors)), cs.constant(0))
        held_filled = sum((cs.as_lc(mul(cs, sel, window.orders_before[2 * j + 1])) for j, sel in enumerate(selectors)), cs.constant(0))
        # the slot does not hold a later order
        later = cs.as_lc(nonce) - held_nonce
        range_check(cs, mul(cs, fill, later), ORDER_NONCE_BITS)
        same = is_zero(cs, later)
        filled = cs.as_lc(mul(cs, same, held_filled)) + magnitude
        # no order fills beyond its size
        range_check(cs, mul(cs, fill, cs.as_lc(order_size) - filled), WIRE_SIZE_BITS)
        for j, sel in enumerate(selectors):
            writes = mul(cs, fill, sel)
            cs.enforce(writes, later, cs.as_lc(window.orders_after[2 * j]) - window.orders_before[2 * j])
            cs.enforce(writes, filled - held_filled, cs.as_lc(window.orders_after[2 * j + 1]) - window.orders_before[2 * j + 1])


def synthesize_one_hot(cs: ConstraintSystem, bits: list[Variable]) -> list[LinearCombination]:
    """Selectors s_j = [the bits spell j] for j < 2^len(bits), from boolean bits (little-endian)."""
    selectors: list[LinearCombination] = [cs.constant(1)]
    for bit in bits:
        # extend by one bit: s_j (bit 0) and s_j x bit (bit 1), as s_j - s_j bit and s_j bit
        with_bit = [cs.as_lc(mul(cs, sel, bit)) for sel in selectors]
        selectors = [sel - high for sel, high in zip(selectors, with_bit)] + with_bit
    return selectors


def synthesize_bps_floor(cs: ConstraintSystem, value: LinearLike, bps: int, bits: int) -> Variable:
    """floor(value x bps / 10000) for a signed value with |value x bps / 10000| < 2^bits:
    value x bps = 10000 q + remainder, 0 <= remainder < 10000, q in [-2^bits, 2^bits)."""
    with cs.gadget("bps_floor"):
        total = cs.as_lc(value) * bps
        quotient = cs.private(to_signed(cs, total.value) // BPS)
        remainder = total - cs.as_lc(quotient) * BPS
        range_check(cs, remainder, BPS_BITS)
        range_check(cs, BPS - 1 - remainder, BPS_BITS)
        range_check(cs, cs.as_lc(quotient) + (1 << bits), bits + 1)
    return quotient


def synthesize_distinct_accounts(cs: ConstraintSystem, a: LinearLike, b: LinearLike, uses_b: LinearLike) -> None:
    """Two-account types need a != b: (a - b) x inverse = uses_b has no solution when a == b."""
    with cs.gadget("distinct_accounts"):
        difference = cs.as_lc(a) - b
        needed = cs.as_lc(uses_b).value == 1 and difference.value != 0
        inverse = cs.private(pow(difference.value, -1, cs.r) if needed else 0)
        cs.enforce(difference, inverse, uses_b)


def synthesize_instrument_checks(
    cs: ConstraintSystem, slot: SlotPublic, perp: LinearLike, opt: LinearLike, opt_like: LinearLike, trade: LinearCombination,
    settle: LinearLike, liq: LinearLike,
) -> None:
    inst = slot.instrument
    tx = slot.tx
    moves = trade + liq
    with cs.gadget("instrument_checks"):
        # PerpTrade trades perpetuals, OptionTrade option series
        cs.enforce(perp, 1 - cs.as_lc(inst.is_perp), 0)
        cs.enforce(opt, inst.is_perp, 0)
        # the instrument has an oracle mark and risk array (a liquidation moves at the mark)
        cs.enforce(moves, 1 - cs.as_lc(inst.has_mark), 0)
        cs.enforce(moves, 1 - cs.as_lc(inst.has_risk), 0)
        # a trade or liquidation moves at least one contract: quantity x inverse = moves
        quantity = tx.quantity
        needed = moves.value == 1 and quantity.value != 0
        inverse = cs.private(pow(quantity.value, -1, cs.r) if needed else 0)
        cs.enforce(quantity, inverse, moves)
        # an option series trades (or is liquidated) only before expiry: expiry - oracle_time - 1 >= 0
        option_moves = cs.as_lc(opt_like) + mul(cs, liq, 1 - cs.as_lc(inst.is_perp))
        before_expiry = mul(cs, option_moves, cs.as_lc(inst.expiry) - slot.globals.oracle_time_before - 1)
        range_check(cs, before_expiry, TIMESTAMP_BITS)
        # only option series settle, once the oracle has published the settlement price
        cs.enforce(settle, inst.is_perp, 0)
        cs.enforce(settle, 1 - cs.as_lc(inst.has_settlement), 0)


def synthesize_deposit(cs: ConstraintSystem, slot: SlotPublic, dep: LinearLike) -> None:
    g = slot.globals
    with cs.gadget("deposit"):
        # deposits consume the L1 queue in order
        cs.enforce(dep, cs.as_lc(slot.tx.deposit_id) - g.deposit_count_before, 0)
        cs.enforce(cs.as_lc(g.deposit_count_before) + dep - g.deposit_count_after, 1, 0)
        # the account is (or becomes) bound to the deposit's address
        cs.enforce(dep, cs.as_lc(slot.a.address_after) - slot.tx.address, 0)


def synthesize_key_registration(cs: ConstraintSystem, slot: SlotPublic, reg: LinearLike) -> None:
    """A registration sets window A's L2 key id to the transaction's (never 0), and names the
    account's own address (the contract compares it with the recovered signer); nothing else
    changes a key."""
    tx, a, b = slot.tx, slot.a, slot.b
    with cs.gadget("key_registration"):
        cs.enforce(reg, cs.as_lc(tx.key_id) - a.l2_key_before, cs.as_lc(a.l2_key_after) - a.l2_key_before)
        cs.enforce(cs.as_lc(b.l2_key_after) - b.l2_key_before, 1, 0)
        cs.enforce(reg, cs.as_lc(tx.address) - a.address_before, 0)
        # key_id x inverse = reg: no solution for a registration of the id 0 ("no key")
        needed = cs.as_lc(reg).value == 1 and tx.key_id.value != 0
        inverse = cs.private(pow(tx.key_id.value, -1, cs.r) if needed else 0)
        cs.enforce(tx.key_id, inverse, reg)


def synthesize_account(
    cs: ConstraintSystem, shape: SegmentShape, window: AccountWindow, tx: TxWords, side: SideParameters
) -> AccountResult:
    """The account window's transition."""
    with cs.gadget("account"):
        assert_boolean(cs, window.exists_before)
        # everything but a deposit needs an existing account
        cs.enforce(side.must_exist, 1 - cs.as_lc(window.exists_before), 0)
        # an existing account stays bound to its address; a new one takes the deposit's (an
        # unused window stays empty)
        cs.enforce(window.exists_before, cs.as_lc(window.address_after) - window.address_before, 0)
        bound = mul(cs, side.binds_address, tx.address)
        cs.enforce(1 - cs.as_lc(window.exists_before), cs.as_lc(window.address_after) - bound, 0)
        # the transaction carries the account's next nonce, which then increments
        cs.enforce(side.nonce_increment, cs.as_lc(side.nonce_word) - window.nonce_before, 0)
        cs.enforce(cs.as_lc(window.nonce_before) + side.nonce_increment - window.nonce_after, 1, 0)
    with cs.gadget("settlement"):
        size_before = sum((mul(cs, p.matched, p.size_before) for p in window.positions), cs.constant(0))
        # a settlement closes the whole position and pays size x settlement price
        size_delta = cs.as_lc(side.size_delta) - mul(cs, side.settles, size_before)
        payoff = mul(cs, side.settles, mul(cs, size_before, side.settlement))
        # the account holds a position in the settled series: size_before x inverse = settles
        needed = cs.as_lc(side.settles).value == 1 and size_before.value != 0
        inverse = cs.private(pow(size_before.value, -1, cs.r) if needed else 0)
        cs.enforce(size_before, inverse, side.settles)
    changes = cs.as_lc(side.changes) + side.settles
    paid, realised = synthesize_positions(cs, window, tx.instrument, changes, size_delta, side.cost_delta)
    with cs.gadget("collateral"):
        # the insurance fund covers a shortfall (settlement, liquidation), and only up to 0
        after = cs.as_lc(window.collateral_before) + side.collateral_delta + payoff - paid - realised
        after = after + side.shortfall
        cs.enforce(after - window.collateral_after, 1, 0)
        cs.enforce(side.shortfall, window.collateral_after, 0)
        # no account ends with negative collateral
        range_check(cs, window.collateral_after, COLLATERAL_BITS)
    with cs.gadget("risk_direction"):
        size_after = size_before + size_delta
        magnitude_before, negative_before = abs_value(cs, size_before, TRADED_SIZE_BITS)
        magnitude_after, _ = abs_value(cs, size_after, TRADED_SIZE_BITS)
        grew = gt(cs, magnitude_after, magnitude_before, TRADED_SIZE_BITS)
        risk_up = mul(cs, side.margin_if_grows, grew)
        # long size = (size + |size|) / 2
        half = pow(2, -1, cs.r)
        long_delta = (size_after + magnitude_after - size_before - magnitude_before) * half
    synthesize_margin(cs, shape, window, cs.as_lc(risk_up) + side.removes_collateral)
    return AccountResult(long_delta, magnitude_before, negative_before)


def synthesize_positions(
    cs: ConstraintSystem,
    window: AccountWindow,
    instrument: LinearLike,
    changes: LinearLike,
    size_delta: LinearLike,
    cost_delta: LinearLike,
) -> tuple[LinearCombination, LinearCombination]:
    """Position slots: the matched one changes (if `changes`), the others stay. Returns (funding
    paid, cost realised)."""
    paid = cs.constant(0)
    realised = cs.constant(0)
    matched_count = cs.constant(0)
    with cs.gadget("positions"):
        for p in window.positions:
            assert_boolean(cs, p.matched)
            # the matched slot is the traded instrument's
            cs.enforce(p.matched, cs.as_lc(p.instrument) - instrument, 0)
            matched_count = matched_count + p.matched
            # size += delta on the matched slot only
            delta = mul(cs, p.matched, size_delta)
            cs.enforce(cs.as_lc(p.size_before) + delta - p.size_after, 1, 0)
            # cost += cost delta; realised (cost -> collateral) if the size returned to 0
            cost = cs.as_lc(p.cost_before) + mul(cs, p.matched, cost_delta)
            closed = is_zero(cs, p.size_after)
            realise = mul(cs, mul(cs, p.matched, closed), cost)
            cs.enforce(cost - realise - p.cost_after, 1, 0)
            # lazy funding: the matched slot pays size x (index - funding) and snapshots the index
            # (0 once closed); options have index and funding 0, so they pay nothing
            owed = mul(cs, p.size_before, cs.as_lc(p.funding_index) - p.funding_before)
            paid = paid + mul(cs, p.matched, owed)
            snapshot = mul(cs, 1 - cs.as_lc(closed), p.funding_index)
            cs.enforce(p.matched, cs.as_lc(snapshot) - p.funding_before, cs.as_lc(p.funding_after) - p.funding_before)
            realised = realised + realise
        # a trade or settlement changes exactly one position slot, anything else none
        cs.enforce(matched_count - changes, 1, 0)
    return paid, realised


def synthesize_margin(cs: ConstraintSystem, shape: SegmentShape, window: AccountWindow, check: LinearLike) -> None:
    """If `check` (a bit): equity >= 0 and equity + pnl_s >= 0 for every scenario s."""
    bits = get_margin_bits(shape.max_positions)
    with cs.gadget("margin"):
        equity = cs.as_lc(window.collateral_after)
        pnl = [cs.constant(0) for _ in range(shape.n_scenarios)]
        for p in window.positions:
            # value = size x (mark - index + funding) - cost (options: size x mark)
            value = mul(cs, p.size_after, cs.as_lc(p.mark) - p.funding_index + p.funding_after)
            equity = equity + value - p.cost_after
            for s, risk in enumerate(p.risk):
                pnl[s] = pnl[s] + mul(cs, p.size_after, risk)
        for total in [equity] + [equity + pnl_s for pnl_s in pnl]:
            range_check(cs, mul(cs, check, total), bits)


def synthesize_maintenance(cs: ConstraintSystem, shape: SegmentShape, window: AccountWindow, check: LinearLike) -> None:
    """If `check` (a bit): equity before < maintenance margin before.

    maintenance = max(0, max_s loss_s) x bps // 10000 with loss_s = -pnl_s; floor is monotone, so
    equity < maintenance iff equity < floor(loss x bps / 10000) for SOME loss among the scenarios'
    and 0. The prover names that one (a one-hot selection): an existential check costs one floor
    division and one comparison instead of a range check per scenario."""
    bits = get_margin_bits(shape.max_positions)
    with cs.gadget("maintenance"):
        equity = cs.as_lc(window.collateral_before)
        pnl = [cs.constant(0) for _ in range(shape.n_scenarios)]
        for p in window.positions:
            value = mul(cs, p.size_before, cs.as_lc(p.mark) - p.funding_index + p.funding_before)
            equity = equity + value - p.cost_before
            for s, risk in enumerate(p.risk):
                pnl[s] = pnl[s] + mul(cs, p.size_before, risk)
        losses = [-total for total in pnl] + [cs.constant(0)]
        signed = [to_signed(cs, loss.value) for loss in losses]
        worst = max(range(len(losses)), key=lambda i: signed[i]) if cs.as_lc(check).value == 1 else len(losses) - 1
        chosen = [boolean(cs, int(i == worst)) for i in range(len(losses))]
        cs.enforce(sum((cs.as_lc(c) for c in chosen), cs.constant(0)), 1, 1)
        loss = sum((mul(cs, c, l) for c, l in zip(chosen[:-1], losses[:-1])), cs.constant(0))
        maintenance = synthesize_bps_floor(cs, loss, shape.maintenance_bps, bits)
        range_check(cs, mul(cs, check, cs.as_lc(maintenance) - equity - 1), bits + 2)
