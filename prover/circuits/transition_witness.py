"""Witnesses of circuit v3 from the native rules: the rules compute, the circuit checks.

`compute_transition_witness` applies a segment (an optional oracle update, then up to `n_slots`
transactions) to a `State` and to the node's Poseidon accounts tree, in place, with
`rollup.rules.process_transaction`, and records what the circuit needs: the table and globals as
the segment opens, every slot's dense account windows, the Merkle paths of the accounts it
touches (A's against the root before the slot, B's against the root after A's update), and the
public inputs, computed natively as a verifier computes them (`verifier.pubdata`,
`verifier.oracle_section`, `verifier.state_tree`).
"""

from __future__ import annotations

from typing import Sequence

from prover.circuits.layout import AccountWindow, PositionWindow, SLOT_TYPES, TxWords, compute_tx_words, get_slot_accounts, get_slot_instrument
from prover.circuits.transition import (
    GlobalsState,
    L2SignatureWitness,
    MarketState,
    SlotWitness,
    TransitionShape,
    TransitionWitness,
)
from rollup.rules import Signers, process_transaction
from rollup.state import Account, State
from rollup.state_tree import PoseidonTree
from verifier.encoding import _get_address_int, get_signature_fields, is_l2_signed
from verifier.l2auth import parse_l2_signature
from verifier.oracle_section import build_empty_section, compute_oracle_section, compute_oracle_words
from verifier.pubdata import compute_record_words, compute_records_hash, get_signature_windows
from verifier.state_tree import compute_state_root, get_dense_orders, hash_account, hash_fields


class RejectedInSegment(ValueError):
    """Segments hold accepted transactions only; the native rules rejected this one."""


def get_market_states(state: State, shape: TransitionShape) -> list[MarketState]:
    out = []
    for instrument_id in shape.table:
        inst = state.instruments[instrument_id]
        risk = list(inst.risk_array or ())
        out.append(MarketState(
            int(inst.mark is not None), inst.mark or 0, inst.funding_index, inst.open_interest,
            int(inst.settlement is not None), inst.settlement or 0, int(bool(risk)), risk or [0] * shape.n_scenarios,
        ))
    return out


def get_globals_state(state: State) -> GlobalsState:
    g = state.globals
    return GlobalsState(g.fee_pool, g.insurance_fund, g.deposit_count, g.oracle_time)


def compute_account_leaf_value(account: Account | None, shape: TransitionShape) -> int:
    """The account's leaf in the v3 tree (`verifier.state_tree.compute_account_hash`)."""
    if account is None:
        return 0
    positions: list[int] = []
    for instrument_id in shape.table:
        p = account.positions.get(instrument_id)
        positions += [p.size, p.cost, p.funding] if p else [0, 0, 0]
    return hash_account([_get_address_int(account.address), account.collateral, account.nonce, account.l2_key], positions, get_account_orders(account))


def compute_root(state: State, tree: PoseidonTree, shape: TransitionShape) -> int:
    markets = hash_fields([f for m in get_market_states(state, shape) for f in m.fields()])
    globals_hash = hash_fields(get_globals_state(state).fields(shape.genesis_limbs))
    return compute_state_root(tree.root, markets, globals_hash)


def build_dense_window(before: Account | None, after: Account | None, traded: int | None, shape: TransitionShape) -> AccountWindow:
    """An account window with one position slot per table instrument."""
    positions = []
    for instrument_id in shape.table:
        was = before.positions.get(instrument_id) if before else None
        now = after.positions.get(instrument_id) if after else None
        positions.append(PositionWindow(
            instrument=instrument_id, matched=int(instrument_id == traded),
            size_before=was.size if was else 0, cost_before=was.cost if was else 0, funding_before=was.funding if was else 0,
            size_after=now.size if now else 0, cost_after=now.cost if now else 0, funding_after=now.funding if now else 0,
        ))
    if after is None:
        return AccountWindow(positions=positions)
    return AccountWindow(
        orders_before=get_account_orders(before), orders_after=get_account_orders(after),
        exists_before=int(before is not None),
        address_before=_get_address_int(before.address) if before else 0,
        address_after=_get_address_int(after.address),
        collateral_before=before.collateral if before else 0,
        nonce_before=before.nonce if before else 0,
        collateral_after=after.collateral,
        nonce_after=after.nonce,
        l2_key_before=before.l2_key if before else 0,
        l2_key_after=after.l2_key,
        positions=positions,
    )


def get_account_orders(account: Account | None) -> list[int]:
    """The account's order slots, dense: (order nonce, filled) per slot."""
    return get_dense_orders((slot, nonce, filled) for slot, (nonce, filled) in (account.orders.items() if account else ()))


def build_noop_slot_witness(shape: TransitionShape, deposit_count: int) -> SlotWitness:
    empty = build_dense_window(None, None, None, shape)
    zero_path = tuple((0,) * (shape.tree.arity - 1) for _ in range(shape.tree.depth))
    return SlotWitness([0] * len(SLOT_TYPES), TxWords(), empty, empty, zero_path, zero_path, deposit_count_after=deposit_count)


def get_signature_witnesses(tx: object) -> tuple[L2SignatureWitness, L2SignatureWitness]:
    """The L2 signatures of windows A and B (the gadget's blank where a window signs nothing)."""
    out = {"a": L2SignatureWitness(), "b": L2SignatureWitness()}
    if is_l2_signed(type(tx)):
        for window, name in zip(get_signature_windows(tx), get_signature_fields(type(tx)), strict=True):
            (ax, ay), sig = parse_l2_signature(getattr(tx, name))
            out[window] = L2SignatureWitness(ax, ay, *sig.R8, sig.S)
    return out["a"], out["b"]


def compute_slot_witness(state: State, tree: PoseidonTree, tx: object, signers: Signers, shape: TransitionShape) -> SlotWitness:
    """Apply one transaction (state and tree in place); its slot witness."""
    kind = tx.type  # type: ignore[attr-defined]
    a_id, b_id = get_slot_accounts(tx)
    traded = get_slot_instrument(tx)
    before = {i: (state.accounts[i].copy() if i in state.accounts else None) for i in (a_id, b_id) if i is not None}
    g_before = get_globals_state(state)
    oi_before = {i: state.instruments[i].open_interest for i in shape.table}
    receipt = process_transaction(state, tx, signers)
    # only accepted transactions go into segments
    if receipt.status != "accepted":
        raise RejectedInSegment(f"{receipt.type} rejected by the rules: {receipt.reason}")
    g_after = get_globals_state(state)

    def window(account_id: int | None, traded_here: int | None) -> AccountWindow:
        if account_id is None:
            return build_dense_window(None, None, None, shape)
        return build_dense_window(before[account_id], state.accounts[account_id], traded_here, shape)

    a = window(a_id, traded)
    # a keeper's positions do not change
    b = window(b_id, traded if kind in ("perp_trade", "option_trade", "liquidate", "fill") else None)
    paths = []
    for account_id in (a_id, b_id):
        if account_id is None:
            paths.append(tuple((0,) * (shape.tree.arity - 1) for _ in range(shape.tree.depth)))
            continue
        paths.append(tree.get_path(account_id))
        tree.update({account_id: compute_account_leaf_value(state.accounts[account_id], shape)})
    oi_delta = sum(state.instruments[i].open_interest - oi_before[i] for i in shape.table)
    signature_a, signature_b = get_signature_witnesses(tx)
    return SlotWitness(
        [int(kind == name) for name in SLOT_TYPES], compute_tx_words(tx), a, b, paths[0], paths[1],
        deposit_count_after=g_after.deposit_count,
        fee_delta=g_after.fee_pool - g_before.fee_pool,
        insurance_delta=g_after.insurance_fund - g_before.insurance_fund,
        open_interest_delta=oi_delta,
        signature_a=signature_a,
        signature_b=signature_b,
    )


def compute_transition_witness(
    state: State,
    tree: PoseidonTree,
    shape: TransitionShape,
    batch: int,
    segment: int,
    oracle_update: object | None,
    oracle_signers: Signers | None,
    transactions: Sequence[object],
    signers: Sequence[Signers],
) -> TransitionWitness:
    """The segment's whole witness, applying it to `state` and `tree` in place; no-op slots pad it."""
    # one signer list per transaction, and at most n_slots of them (caller bugs otherwise)
    if len(transactions) != len(signers):
        raise ValueError(f"{len(transactions)} transactions, {len(signers)} signer lists")
    if len(transactions) > shape.n_slots:
        raise ValueError(f"{len(transactions)} transactions do not fit a segment of {shape.n_slots} slots")
    if tree.shape != shape.tree:
        raise ValueError(f"the tree is {tree.shape}, the circuit's {shape.tree}")
    root_before = compute_root(state, tree, shape)
    accounts_root = tree.root
    markets = get_market_states(state, shape)
    globals_state = get_globals_state(state)
    section = build_empty_section(shape.oracle)
    if oracle_update is not None:
        receipt = process_transaction(state, oracle_update, oracle_signers or ())
        # an oracle update that the rules refuse has no place in a segment
        if receipt.status != "accepted":
            raise RejectedInSegment(f"oracle_update rejected by the rules: {receipt.reason}")
        section = compute_oracle_section(oracle_update, shape.oracle)
    slots, records = [], []
    for tx, tx_signers in zip(transactions, signers):
        slots.append(compute_slot_witness(state, tree, tx, tx_signers, shape))
        records.append(compute_record_words(tx))
    for _ in range(shape.n_slots - len(slots)):
        slots.append(build_noop_slot_witness(shape, state.globals.deposit_count))
        records.append(compute_record_words(None))
    root_after = compute_root(state, tree, shape)
    public = [batch, segment, root_before, root_after, *compute_oracle_words(section, shape.oracle), compute_records_hash(records)]
    return TransitionWitness(batch, segment, accounts_root, markets, globals_state, section, slots, public)


def build_blank_witness(shape: TransitionShape) -> TransitionWitness:
    """A witness of the right shape with no transaction and zero state: what setup synthesises (the
    constraints do not depend on the values; this witness does not satisfy them)."""
    markets = [MarketState(risk=[0] * shape.n_scenarios) for _ in shape.table]
    slots = [build_noop_slot_witness(shape, 0) for _ in range(shape.n_slots)]
    return TransitionWitness(0, 0, 0, markets, GlobalsState(), build_empty_section(shape.oracle), slots, [0] * shape.count_public_inputs())
