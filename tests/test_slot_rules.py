"""The rules of a slot (prover/circuits/slot.py, inside circuit v3) accept exactly what the native rules accept.

(tests/test_circuit_rules.py runs the same rules through v2's public windows, which the CLI still
proves until the switch to v3, docs/v3.md; this file is its v3 successor.)

Random workloads (rollup.fixtures) run through the native rules; every transaction that takes a
slot is then checked against the slot's constraints, on private dense windows as circuit v3
allocates them (the tree, the markets table and the public words around them are tested in
test_transition_circuit.py and test_transition_soundness.py):
- accepted: its slot (dense windows from the state before and after) satisfies the constraints,
  and the circuit's own arithmetic (`apply_unchecked`) reproduces the native after-state;
- rejected (for a reason the circuit proves; signatures are checked natively): the slot whose
  after-windows follow the rules' arithmetic without their checks cannot be satisfied;
- mutated (a transaction field, an oracle mark or risk array): the circuit is satisfiable exactly
  when the native rules accept the mutated transaction on the mutated state;
- tampered (any after-window word): never satisfiable.
"""

from __future__ import annotations

import copy

import random
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import pytest

from prover.circuits.fast_gadgets import range_check_fast
from prover.circuits.layout import SLOT_TYPES, GlobalsWindow, InstrumentWindow, SlotPublic, compute_tx_words, get_slot_accounts, get_slot_instrument
from prover.circuits.slot import synthesize_slot
from prover.circuits.transition import TransitionShape, synthesize_position_count
from prover.circuits.transition_witness import build_dense_window
from prover.circuits.transition_witness import RejectedInSegment
from rollup.state import Account
from dataclasses import fields, is_dataclass
from prover.gadgets import range_check
from prover.r1cs import ConstraintSystem, UnsatisfiedConstraint, WitnessError
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.rules import process_transaction
from rollup.state import State
from verifier.encoding import InvalidSignature, _get_address_int, compute_genesis_hash, is_l2_signed
from verifier.l2auth import check_signers
from verifier.state_tree import TreeShape
from verifier.wire import ORDER_SLOTS, Liquidate, SettleExpired

SUPPORTED_TYPES = frozenset(SLOT_TYPES) - {"oracle_update"}  # oracle updates are a segment's oracle section

# Rejections a slot's rules do not prove: signatures are checked natively and by the contract's
# ecrecover (their signers become public words the circuit binds to the accounts' addresses).
NATIVE_ONLY_REASONS = ("wrong signer", "invalid signature", "wrong L2 key", "has no L2 key")


@dataclass
class Record:
    state: State  # before the transaction
    tx: object
    signers: tuple
    accepted: bool
    reason: str | None


def get_shape(genesis) -> TransitionShape:
    return TransitionShape.from_genesis(genesis, compute_genesis_hash(genesis), 1, TreeShape(2, 4))


def get_records(spec: WorkloadSpec) -> tuple[list[Record], TransitionShape]:
    workload = generate_workload(spec, workers=1)
    state = State.from_genesis(workload.genesis)
    records = []
    for tx in workload.transactions:
        try:
            signers = check_signers(tx, workload.genesis.signing_domain)
        except InvalidSignature:
            continue  # refused by the signature pass, never executed
        before = state.copy() if tx.type in SUPPORTED_TYPES else state
        receipt = process_transaction(state, tx, signers)
        if tx.type in SUPPORTED_TYPES:
            records.append(Record(before, tx, signers, receipt.status == "accepted", receipt.reason))
    return records, get_shape(workload.genesis)


@pytest.fixture(scope="module")
def workload_records() -> tuple[list[Record], TransitionShape]:
    return get_records(WorkloadSpec(accounts=16, txs=900, invalid_share=0.15, seed=11))


@pytest.fixture(scope="module")
def crowded_records() -> tuple[list[Record], TransitionShape]:
    """Few accounts, many trades: positions pile up, close, and hit max_positions."""
    return get_records(WorkloadSpec(accounts=5, txs=400, invalid_share=0.1, seed=5, series=12))


# --- helpers --------------------------------------------------------------------------------------


def build_slot(before: State, after: State, tx: object, shape: TransitionShape) -> SlotPublic:
    """A slot's windows (dense, one position slot per table instrument, with the oracle view the
    markets table gives) from the state before and after the transaction."""
    kind = tx.type
    a_id, b_id = get_slot_accounts(tx)
    traded = get_slot_instrument(tx)

    def window(account_id, traded_here):
        if account_id is None:
            w = build_dense_window(None, None, None, shape)
        else:
            w = build_dense_window(before.accounts.get(account_id), after.accounts[account_id], traded_here, shape)
        for p in w.positions:
            inst = before.instruments[p.instrument]
            p.mark, p.funding_index = inst.mark or 0, inst.funding_index
            p.risk = list(inst.risk_array or [0] * shape.n_scenarios)
        return w

    a = window(a_id, traded)
    b = window(b_id, traded if kind in ("perp_trade", "option_trade", "liquidate", "fill") else None)
    instrument = InstrumentWindow()
    if traded is not None:
        inst = before.instruments[traded]
        instrument = InstrumentWindow(
            int(inst.is_perp), int(inst.mark is not None), inst.mark or 0, int(bool(inst.risk_array)),
            0 if inst.is_perp else inst.spec.expiry, int(inst.settlement is not None), inst.settlement or 0,
            after.instruments[traded].open_interest - inst.open_interest,
        )
    g0, g1 = before.globals, after.globals
    globals_window = GlobalsWindow(g0.deposit_count, g1.deposit_count, g0.oracle_time, g1.oracle_time,
                                   g1.fee_pool - g0.fee_pool, g1.insurance_fund - g0.insurance_fund)
    return SlotPublic([int(kind == name) for name in SLOT_TYPES], compute_tx_words(tx), a, b, instrument, globals_window)


def compute_slot(state: State, tx: object, signers: tuple, shape: TransitionShape) -> SlotPublic:
    """Apply an accepted transaction to `state` (in place) and return its slot."""
    before = state.copy()
    receipt = process_transaction(state, tx, signers)
    # only accepted transactions take a slot
    if receipt.status != "accepted":
        raise RejectedInSegment(f"{receipt.type} rejected by the rules: {receipt.reason}")
    return build_slot(before, state, tx, shape)


def allocate_private(cs: ConstraintSystem, value: object) -> object:
    """The windows with every int a private wire (circuit v3 allocates them privately)."""
    if is_dataclass(value):
        return type(value)(**{f.name: allocate_private(cs, getattr(value, f.name)) for f in fields(value)})
    if isinstance(value, list):
        return [allocate_private(cs, item) for item in value]
    return cs.private(value)


def is_satisfied(shape: TransitionShape, slots: list[SlotPublic]) -> bool:
    """Witness generation and constraint check of each slot's rules; False if either fails."""
    for slot in slots:
        cs = ConstraintSystem()
        try:
            allocated = allocate_private(cs, slot)
            # the instrument ids of dense windows are the table's constants
            for window in (allocated.a, allocated.b):
                for p, instrument in zip(window.positions, shape.table):
                    p.instrument = instrument
            synthesize_slot(cs, shape.window_shape, allocated)
            uses_b = int(any(f for f, n in zip(slot.flags, SLOT_TYPES) if n in ("transfer", "perp_trade", "option_trade", "liquidate", "fill"))
                         or (slot.flags[SLOT_TYPES.index("settle_expired")] and slot.tx.account_a != slot.tx.account_b))
            synthesize_position_count(cs, shape, allocated.a, int(any(slot.flags)))
            synthesize_position_count(cs, shape, allocated.b, uses_b)
            cs.check()
        except (WitnessError, UnsatisfiedConstraint):
            return False
    return True


def apply_unchecked(slot: SlotPublic, shape: TransitionShape) -> None:
    """The rules' arithmetic without their checks, on the windows (rewrites every after word)."""
    flag = dict(zip(SLOT_TYPES, slot.flags))
    t = slot.tx
    perp, opt, settle, liq = flag["perp_trade"], flag["option_trade"], flag["settle_expired"], flag["liquidate"]
    fill = flag["fill"]
    signed = perp + opt  # trades that use account nonces
    # a fill trades as a perpetual trade or an option trade, by its instrument
    perp, opt = perp + fill * slot.instrument.is_perp, opt + fill * (1 - slot.instrument.is_perp)
    keeper = settle * int(t.account_a != t.account_b)
    notional = t.quantity * t.price
    held = sum(p.size_before for p in slot.a.positions if p.matched)
    # a liquidation moves the position at the mark: cost for perps, collateral for options
    moved = liq * t.quantity * slot.instrument.mark
    moved_cost = moved * slot.instrument.is_perp
    moved_value = moved - moved_cost
    penalty = abs(moved) * shape.liquidation_penalty_bps // 10_000
    a_delta = (flag["deposit"] - flag["withdraw"] - flag["transfer"]) * t.quantity - (perp + opt) * t.fee - opt * notional
    a_delta += settle * held * slot.instrument.settlement - moved_value
    b_delta = flag["transfer"] * t.quantity + opt * notional + moved_value - penalty
    reg = flag["register_key"]
    sides = (
        (slot.a, a_delta, flag["withdraw"] + flag["transfer"] + signed + settle - keeper + liq + reg,
         (perp + opt + liq) * t.quantity - settle * held, perp * notional + moved_cost),
        (slot.b, b_delta, signed + keeper, -(perp + opt + liq) * t.quantity, -perp * notional - moved_cost),
    )
    for window, nonce in ((slot.a, t.nonce_a), (slot.b, t.nonce_b)):
        window.orders_after = list(window.orders_before)
        if fill:
            # the order slot's arithmetic without its checks
            at = 2 * (nonce % ORDER_SLOTS)
            so_far = window.orders_before[at + 1] if window.orders_before[at] == nonce else 0
            window.orders_after[at : at + 2] = [nonce, so_far + abs(t.quantity)]
    open_interest = 0
    shortfall = 0
    for window, delta, nonce_increment, size_delta, cost_delta in sides:
        collateral = window.collateral_before + delta
        window.nonce_after = window.nonce_before + nonce_increment
        window.address_after = t.address if flag["deposit"] and window is slot.a else window.address_before
        window.l2_key_after = t.key_id if reg and window is slot.a else window.l2_key_before
        for p in window.positions:
            p.size_after, p.cost_after, p.funding_after = p.size_before, p.cost_before, p.funding_before
            if not p.matched:
                continue
            collateral -= p.size_before * (p.funding_index - p.funding_before)
            p.size_after = p.size_before + size_delta
            cost = p.cost_before + cost_delta
            if p.size_after == 0:
                collateral -= cost
                p.cost_after, p.funding_after = 0, 0
            else:
                p.cost_after, p.funding_after = cost, p.funding_index
            open_interest += max(p.size_after, 0) - max(p.size_before, 0)
        covered = (settle and window is slot.a) or (liq and window is slot.b)
        if covered and collateral < 0:
            shortfall, collateral = -collateral, 0  # the insurance fund covers what cannot be paid
        window.collateral_after = collateral
    slot.instrument.open_interest_delta = open_interest
    g = slot.globals
    g.deposit_count_after = g.deposit_count_before + flag["deposit"]
    g.oracle_time_after = t.timestamp if flag["oracle_update"] else g.oracle_time_before
    g.fee_delta = (perp + opt) * t.fee
    g.insurance_delta = penalty - shortfall


def build_unchecked_slot(state: State, tx: object, shape: TransitionShape) -> SlotPublic:
    """A slot whose before-windows are the state's and whose after-windows follow the rules'
    arithmetic without checks: what a prover of a rejected transaction would have to prove."""
    after = state.copy()
    a_id, b_id = get_slot_accounts(tx)
    for account_id in (a_id, b_id):
        # an account that does not exist yet appears as the deposit makes it (bound to its address)
        if account_id is not None and account_id not in after.accounts:
            if tx.type != "deposit":
                raise KeyError(account_id)
            after.accounts[account_id] = Account(tx.address, 0, 0, {})
    slot = build_slot(state, after, tx, shape)
    apply_unchecked(slot, shape)
    return slot


def is_provable(state: State, tx: object, shape: TransitionShape) -> bool:
    """Can any prover satisfy the slot's rules for this transaction on this state?"""
    try:
        slot = build_unchecked_slot(state, tx, shape)
    except KeyError:
        return False  # the windows cannot even be built (unknown account or instrument)
    return is_satisfied(shape, [slot])


def ensure_key(state: State, account_id: int) -> int:
    """The account's L2 key id, registered here (a fake id) if it has none: the slot rules do not
    see keys, and an account without one is refused natively only."""
    account = state.accounts[account_id]
    if account.l2_key == 0:
        account.l2_key = 0xA11CE000 + account_id
    return account.l2_key


def get_correct_signers(state: State, tx: object) -> tuple:
    """The signers the rules expect: the accounts' addresses, or for L2-signed types their L2 key
    ids (the slot rules mirrored here do not see signatures; the L2 signature gadget has its own
    tests in test_transition_soundness.py and test_eddsa_circuit.py)."""
    l2 = is_l2_signed(type(tx))

    def address(account_id: int) -> str | int | None:
        account = state.accounts.get(account_id)
        if account is None:
            return None
        return ensure_key(state, account_id) if l2 else account.address

    fields = {
        "deposit": lambda: (),  # the L1 queue entry authorises it
        "withdraw": lambda: (address(tx.account),),
        "transfer": lambda: (address(tx.sender),),
        "perp_trade": lambda: (address(tx.maker), address(tx.taker)),
        "option_trade": lambda: (address(tx.buyer), address(tx.seller)),
        "liquidate": lambda: (address(tx.liquidator),),
        "settle_expired": lambda: (address(tx.sender),),
        "register_key": lambda: (address(tx.account),),
        "oracle_update": lambda: (state.genesis.oracle_address,),
        "fill": lambda: (address(tx.taker), address(tx.maker)),
    }
    return fields[tx.type]()


def check_equivalence(state: State, tx: object, signers: tuple, shape: TransitionShape) -> bool:
    """Native verdict == circuit verdict for `tx` on `state`, with the signatures the rules
    expect (the circuit does not see signatures); returns the verdict."""
    signers = get_correct_signers(state, tx)
    accepted = process_transaction(state.copy(), tx, signers).status == "accepted"
    if accepted:
        slot = compute_slot(state.copy(), tx, signers, shape)
        assert is_satisfied(shape, [slot]), f"circuit rejects a valid {tx}"
    else:
        assert not is_provable(state, tx, shape), f"circuit accepts an invalid {tx}"
    return accepted


# --- shape ----------------------------------------------------------------------------------------


# --- valid and rejected workload transactions ------------------------------------------------------


@pytest.mark.parametrize("fixture_name", ["workload_records", "crowded_records"])
def test_accepted_transactions_satisfy_the_circuit(fixture_name, request):
    records, shape = request.getfixturevalue(fixture_name)
    valid = [r for r in records if r.accepted]
    slots = []
    for r in valid:
        slot = compute_slot(r.state.copy(), r.tx, r.signers, shape)
        # the circuit's arithmetic gives the native after-state
        mirrored = build_unchecked_slot(r.state, r.tx, shape)
        assert mirrored == slot, f"arithmetic mirror differs from the rules for {r.tx}"
        slots.append(slot)
    assert is_satisfied(shape, slots)
    kinds = {r.tx.type for r in valid}
    assert kinds >= {"deposit", "withdraw", "transfer", "perp_trade", "option_trade"}
    assert len(valid) >= 300


def test_rejected_transactions_cannot_be_proven(workload_records, crowded_records):
    checked = 0
    for records, shape in (workload_records, crowded_records):
        for r in records:
            if r.accepted or any(reason in r.reason for reason in NATIVE_ONLY_REASONS):
                continue
            assert not is_provable(r.state, r.tx, shape), f"circuit accepts rejected {r.tx} ({r.reason})"
            checked += 1
    assert checked >= 30


# --- mutations: native and circuit agree -----------------------------------------------------------

FIELD_MUTATIONS: dict[str, list[Callable[[object, random.Random], dict]]] = {
    "deposit": [
        lambda tx, rng: {"deposit_id": tx.deposit_id + rng.choice((1, -1 if tx.deposit_id else 2))},
        lambda tx, rng: {"amount": tx.amount * rng.choice((2, 10**6))},
    ],
    "withdraw": [
        lambda tx, rng: {"amount": tx.amount * rng.choice((2, 10, 10**4))},
        lambda tx, rng: {"nonce": tx.nonce + 1},
        lambda tx, rng: {"account": (tx.account + 1) % 16},
    ],
    "transfer": [
        lambda tx, rng: {"amount": tx.amount * rng.choice((2, 10, 10**4))},
        lambda tx, rng: {"nonce": tx.nonce + 1},
        lambda tx, rng: {"recipient": tx.sender},
    ],
    "perp_trade": [
        lambda tx, rng: {"size": tx.size * rng.choice((2, 50, 10**4, -1))},
        lambda tx, rng: {"size": -tx.size},
        lambda tx, rng: {"price": tx.price * rng.choice((2, 3)) // rng.choice((1, 4))},
        lambda tx, rng: {"fee": tx.fee + rng.choice((1, 10**9, 10**12))},
        lambda tx, rng: {"maker_nonce": tx.maker_nonce + 1},
        lambda tx, rng: {"taker_nonce": tx.taker_nonce - 1 if tx.taker_nonce else 3},
        lambda tx, rng: {"maker": tx.taker},
        lambda tx, rng: {"market": rng.choice((0, 1, 2, 5))},
        lambda tx, rng: {"size": 0},
    ],
    "fill": [
        lambda tx, rng: {"size": tx.size * rng.choice((2, 50, 10**4, -1))},
        lambda tx, rng: {"size": 0},
        lambda tx, rng: {"price": tx.price * rng.choice((2, 3)) // rng.choice((1, 4))},
        lambda tx, rng: {"fee": tx.fee + rng.choice((1, 10**9, 10**12))},
        lambda tx, rng: {"taker_nonce": tx.taker_nonce + rng.choice((1, ORDER_SLOTS))},
        lambda tx, rng: {"maker_nonce": max(0, tx.maker_nonce - rng.choice((1, ORDER_SLOTS)))},
        lambda tx, rng: {"maker": tx.taker},
        lambda tx, rng: {"instrument": rng.choice((0, 1, 2, 5))},
        lambda tx, rng: {"taker_limit": max(1, tx.taker_limit + rng.choice((-1, 1)) * rng.choice((1, 10**4)))},
        lambda tx, rng: {"maker_limit": max(1, tx.maker_limit + rng.choice((-1, 1)) * rng.choice((1, 10**4)))},
        lambda tx, rng: {"taker_order_size": max(1, abs(tx.size) - rng.choice((0, 1)))},
        lambda tx, rng: {"maker_expiry": rng.choice((1, 2**40 - 1))},
        lambda tx, rng: {"taker_max_fee": rng.choice((0, tx.taker_max_fee + 1))},
    ],
    "register_key": [
        lambda tx, rng: {"nonce": tx.nonce + 1},
        lambda tx, rng: {"account": (tx.account + 1) % 16},
        lambda tx, rng: {"key_id": rng.randrange(1, 2**248)},
    ],
    "settle_expired": [
        lambda tx, rng: {"nonce": tx.nonce + 1},
        lambda tx, rng: {"series": rng.choice((0, 2, 3, 7, 9))},
        lambda tx, rng: {"account": rng.randrange(16)},
        lambda tx, rng: {"sender": rng.randrange(16)},
    ],
    "liquidate": [
        lambda tx, rng: {"size": tx.size * rng.choice((2, 100, -1))},
        lambda tx, rng: {"size": tx.size + (1 if tx.size > 0 else -1)},
        lambda tx, rng: {"nonce": tx.nonce + 1},
        lambda tx, rng: {"account": rng.randrange(16)},
        lambda tx, rng: {"liquidator": tx.account},
        lambda tx, rng: {"instrument": rng.choice((0, 1, 2, 5))},
    ],
    "option_trade": [
        lambda tx, rng: {"quantity": tx.quantity * rng.choice((2, 50, 10**4))},
        lambda tx, rng: {"premium": tx.premium * rng.choice((0, 3, 100))},
        lambda tx, rng: {"fee": tx.fee + rng.choice((1, 10**9, 10**12))},
        lambda tx, rng: {"buyer_nonce": tx.buyer_nonce + 1},
        lambda tx, rng: {"seller": tx.buyer},
        lambda tx, rng: {"series": rng.choice((0, 2, 3, 7, 9))},
    ],
}


def test_mutated_transactions_agree_with_the_rules(workload_records):
    records, shape = workload_records
    rng = random.Random(1)
    valid = [r for r in records if r.accepted]
    verdicts = {True: 0, False: 0}
    fills = [r for r in valid if r.tx.type == "fill"][:40]
    assert fills, "the default mix generates fills"
    for r in rng.sample(valid, 160) + fills:
        mutate = rng.choice(FIELD_MUTATIONS[r.tx.type])
        tx = r.tx.model_copy(update=mutate(r.tx, rng))
        verdicts[check_equivalence(r.state, tx, r.signers, shape)] += 1
    assert verdicts[True] >= 10 and verdicts[False] >= 40


def test_mutated_oracle_values_agree_with_the_rules(workload_records):
    """Marks and risk arrays reach the margin check: mutating them flips exactly the verdicts the
    native rules flip."""
    records, shape = workload_records
    rng = random.Random(2)
    trades = [r for r in records if r.accepted and r.tx.type in ("perp_trade", "option_trade", "withdraw")]
    verdicts = {True: 0, False: 0}
    for r in rng.sample(trades, 120):
        state = r.state.copy()
        account = state.accounts[r.tx.account if r.tx.type == "withdraw" else r.tx.taker if r.tx.type == "perp_trade" else r.tx.buyer]
        held = list(account.positions) or [0]
        instrument = state.instruments[rng.choice(held)]
        if instrument.mark is None:
            continue
        if rng.random() < 0.5:
            instrument.mark = instrument.mark * rng.choice((0, 2, 5)) // rng.choice((1, 3))
        else:
            factor = rng.choice((3, 20, -5))
            instrument.risk_array = tuple(v * factor for v in instrument.risk_array)
        verdicts[check_equivalence(state, r.tx, r.signers, shape)] += 1
    assert verdicts[True] >= 10 and verdicts[False] >= 10


AFTER_WORDS: list[Callable[[SlotPublic], tuple[object, str]]] = [
    lambda s: (s.a, "collateral_after"),
    lambda s: (s.a, "nonce_after"),
    lambda s: (s.b, "collateral_after"),
    lambda s: (s.b, "nonce_after"),
    lambda s: (s.a, "address_after"),
    lambda s: (s.instrument, "open_interest_delta"),
    lambda s: (s.globals, "fee_delta"),
    lambda s: (s.globals, "insurance_delta"),
    lambda s: (s.globals, "deposit_count_after"),
    lambda s: (next((p for p in s.a.positions if p.matched), s.a.positions[0]), "size_after"),
    lambda s: (next((p for p in s.a.positions if p.matched), s.a.positions[0]), "cost_after"),
    lambda s: (next((p for p in s.b.positions if p.matched), s.b.positions[-1]), "funding_after"),
    lambda s: (s.a.positions[0], "size_after"),
]


def test_tampered_after_words_are_never_satisfiable(workload_records):
    records, shape = workload_records
    rng = random.Random(3)
    valid = [r for r in records if r.accepted]
    for r in rng.sample(valid, 120):
        slot = compute_slot(r.state.copy(), r.tx, r.signers, shape)
        holder, name = rng.choice(AFTER_WORDS)(slot)
        setattr(holder, name, getattr(holder, name) + rng.choice((1, -1, 10**6)))
        assert not is_satisfied(shape, [slot]), f"tampered {name} accepted for {r.tx.type}"


def test_tampered_tx_words_are_never_satisfiable(workload_records):
    """The same windows with a different transaction word describe another transaction."""
    records, shape = workload_records
    rng = random.Random(4)
    # a registration's unused words are bound by its record in the v3 circuit (test_transition_soundness.py)
    valid = [r for r in records if r.accepted and r.tx.type not in ("deposit", "register_key")]
    for r in rng.sample(valid, 60):
        slot = compute_slot(r.state.copy(), r.tx, r.signers, shape)
        name = {"withdraw": "quantity", "transfer": "quantity"}.get(r.tx.type, rng.choice(("quantity", "price", "fee", "nonce_a")))
        setattr(slot.tx, name, getattr(slot.tx, name) + 1)
        assert not is_satisfied(shape, [slot])


@pytest.mark.parametrize("kind, word, value", [
    ("transfer", "quantity", -1_000_000),  # r - x: the recipient would pay, unsigned
    ("withdraw", "quantity", -1_000_000),  # collateral from nothing
    ("perp_trade", "fee", -1_000_000),  # a fee paid out of the fee pool
    ("option_trade", "fee", -1),
    ("perp_trade", "price", -5),
    ("option_trade", "quantity", -3),
])
def test_out_of_range_tx_words_are_never_satisfiable(workload_records, kind, word, value):
    """With every after word rewritten consistently by the rules' arithmetic (no checks), a
    transaction word outside its wire bound (a negative amount, fee, price or quantity, i.e. r - x
    as a field element) still cannot be proven: the circuit range-checks the transaction words."""
    records, shape = workload_records
    record = next(r for r in records if r.accepted and r.tx.type == kind)
    slot = build_unchecked_slot(record.state, record.tx, shape)
    assert is_satisfied(shape, [copy.deepcopy(slot)])
    setattr(slot.tx, word, value)
    apply_unchecked(slot, shape)
    assert not is_satisfied(shape, [slot]), f"{kind} with {word} = {value} was provable"


def test_deposit_address_is_bound(workload_records):
    records, shape = workload_records
    deposit = next(r for r in records if r.accepted and r.tx.type == "deposit")
    slot = compute_slot(deposit.state.copy(), deposit.tx, deposit.signers, shape)
    slot.tx.address = _get_address_int("0x" + "11" * 20)
    assert not is_satisfied(shape, [slot])


# --- gadgets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("check", [range_check, range_check_fast])
@pytest.mark.parametrize("value, bits, ok", [(0, 8, True), (255, 8, True), (256, 8, False), (-1, 8, False), (2**134 - 1, 134, True)])
def test_range_check_reference_and_fast(check, value, bits, ok):
    cs = ConstraintSystem()
    x = cs.private(value)
    if ok:
        check(cs, x, bits)
        cs.check()
    else:
        with pytest.raises(WitnessError):
            check(cs, x, bits)


def test_range_check_fast_builds_the_reference_constraints():
    built = []
    for check in (range_check, range_check_fast):
        cs = ConstraintSystem()
        check(cs, cs.private(12345), 20)
        built.append((cs.constraints, cs.witness, cs.constraint_gadgets))
    assert built[0] == built[1]


# --- settlement of expired series ------------------------------------------------------------------

DUMMY_SIGNATURE = "0x" + "00" * 160  # the L2-signed types built here (the slot rules see no signature)


@pytest.mark.parametrize("settlement", [0, 1_000_000, 10**12])
def test_settlements_agree_with_the_rules(workload_records, settlement):
    """Every holder of a series settled by itself and by a keeper, with and without a published
    price; a high price leaves shorts short of collateral (the insurance fund covers it)."""
    records, shape = workload_records
    state = records[-1].state.copy()
    options = [i for i, inst in state.instruments.items() if not inst.is_perp]
    verdicts = Counter()
    for series in options:
        holders = [a for a, acc in state.accounts.items() if series in acc.positions]
        for published in (True, False):
            trial = state.copy()
            trial.instruments[series].settlement = settlement if published else None
            for holder in holders[:2]:
                for sender in (holder, (holder + 1) % len(state.accounts)):
                    account = trial.accounts[sender]
                    tx = SettleExpired(sender=sender, account=holder, series=series, nonce=account.nonce,
                                       signature=DUMMY_SIGNATURE)
                    accepted = check_equivalence(trial, tx, (account.address,), shape)
                    short = trial.accounts[holder].positions[series].size < 0
                    verdicts[(accepted, sender == holder, short)] += 1
        # a series the account does not hold, and a perpetual market
        outsider = next(a for a, acc in state.accounts.items() if series not in acc.positions)
        tx = SettleExpired(sender=outsider, account=outsider, series=series, nonce=state.accounts[outsider].nonce,
                           signature=DUMMY_SIGNATURE)
        assert not check_equivalence(state, tx, (state.accounts[outsider].address,), shape)
    assert verdicts[(True, True, True)] and verdicts[(True, False, True)] and verdicts[(True, False, False)]
    assert sum(n for (accepted, _, _), n in verdicts.items() if not accepted) >= 4


def test_settlement_shortfall_is_the_insurance_delta(workload_records):
    records, shape = workload_records
    state = records[-1].state.copy()
    series, holder = next(
        (i, a) for a, acc in state.accounts.items() for i, p in acc.positions.items()
        if not state.instruments[i].is_perp and p.size < 0
    )
    state.instruments[series].settlement = 10**13
    account = state.accounts[holder]
    tx = SettleExpired(sender=holder, account=holder, series=series, nonce=account.nonce, signature=DUMMY_SIGNATURE)
    slot = compute_slot(state.copy(), tx, (ensure_key(state, holder),), shape)
    assert slot.globals.insurance_delta < 0 and slot.a.collateral_after == 0
    assert is_satisfied(shape, [slot])
    # the fund paying more (leaving a positive balance) or less is not the rule
    for change in (-1, 1):
        tampered = compute_slot(state.copy(), tx, (ensure_key(state, holder),), shape)
        tampered.globals.insurance_delta += change
        tampered.a.collateral_after += max(0, -change)
        assert not is_satisfied(shape, [tampered])


# --- liquidations -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mark_factor, risk_factor", [(1, 1), (3, 4), (1, 30), (0, 10)])
def test_liquidations_agree_with_the_rules(workload_records, mark_factor, risk_factor):
    """After a price shock (marks and risk arrays scaled), try liquidating whole, partial, too
    large and wrong-way slices of positions: the circuit agrees with the rules on every one."""
    records, shape = workload_records
    state = records[-1].state.copy()
    for instrument in state.instruments.values():
        if instrument.mark is not None:
            instrument.mark = instrument.mark * mark_factor if instrument.is_perp else instrument.mark
            instrument.risk_array = tuple(v * risk_factor for v in instrument.risk_array)
    rng = random.Random(mark_factor * 100 + risk_factor)
    ids = sorted(state.accounts)
    verdicts = Counter()
    for account_id in ids[:16]:
        positions = state.accounts[account_id].positions
        for instrument_id in rng.sample(sorted(positions), min(2, len(positions))):
            size = positions[instrument_id].size
            liquidator = rng.choice([i for i in ids if i != account_id])
            for amount in (size, (size + (1 if size > 0 else -1)) // 2 or size, -size, 2 * size):
                tx = Liquidate(liquidator=liquidator, account=account_id, instrument=instrument_id, size=amount,
                               nonce=state.accounts[liquidator].nonce, signature=DUMMY_SIGNATURE)
                signers = (ensure_key(state, liquidator),)
                verdicts[check_equivalence(state, tx, signers, shape)] += 1
    assert verdicts[False] >= 10
    if risk_factor >= 10:
        assert verdicts[True] >= 3


def test_liquidation_penalty_and_shortfall(workload_records):
    """A deep shock leaves the liquidated account short: the fund takes penalty - shortfall."""
    records, shape = workload_records
    state = records[-1].state.copy()
    perp_id, account_id = next(
        (i, a) for a, acc in state.accounts.items() for i, p in acc.positions.items()
        if state.instruments[i].is_perp and p.size > 0
    )
    state.instruments[perp_id].mark = 1  # the long position lost almost everything
    liquidator = next(a for a in state.accounts if a != account_id)
    size = state.accounts[account_id].positions[perp_id].size
    tx = Liquidate(liquidator=liquidator, account=account_id, instrument=perp_id, size=size,
                   nonce=state.accounts[liquidator].nonce, signature=DUMMY_SIGNATURE)
    signers = (ensure_key(state, liquidator),)
    if process_transaction(state.copy(), tx, signers).status != "accepted":
        pytest.skip("the liquidator cannot carry the position in this workload")
    slot = compute_slot(state.copy(), tx, signers, shape)
    assert slot.b.collateral_after == 0 and slot.globals.insurance_delta < 0
    assert is_satisfied(shape, [slot])
    for change in (-1, 1):
        tampered = compute_slot(state.copy(), tx, signers, shape)
        tampered.globals.insurance_delta += change
        tampered.b.collateral_after += max(0, -change)
        assert not is_satisfied(shape, [tampered])
