"""Glue between the rollup's `State` and the canonical leaf bytes of `verifier.encoding`.

`encode_state_leaf(state, key)` gives the bytes of one state-tree leaf (empty bytes for an absent
account); `state_from_leaves(genesis, leaves)` rebuilds a `State` from every non-empty leaf, so
storage can reload state from the bytes it committed. The round trip is exact.
"""

from __future__ import annotations

from typing import Mapping

from rollup.state import Account, Instrument, Position, State
from verifier.encoding import (
    EMPTY_LEAF_BYTES,
    GLOBALS_KEY,
    AccountLeaf,
    GlobalsLeaf,
    InstrumentLeaf,
    MalformedLeaf,
    account_key,
    compute_genesis_hash,
    decode_account_leaf,
    decode_globals_leaf,
    decode_instrument_leaf,
    decode_key,
    encode_account_leaf,
    encode_globals_leaf,
    encode_instrument_leaf,
    instrument_key,
)
from verifier.wire import Genesis


def encode_account(account: Account) -> bytes:
    positions = sorted((i, p.size, p.cost, p.funding) for i, p in account.positions.items())
    orders = sorted((slot, nonce, filled) for slot, (nonce, filled) in account.orders.items())
    return encode_account_leaf(account.address, account.collateral, account.nonce, positions, account.l2_key, orders)


def encode_instrument(instrument: Instrument) -> bytes:
    return encode_instrument_leaf(
        id=instrument.spec.id,
        kind=instrument.spec.kind,
        mark=instrument.mark,
        funding_index=instrument.funding_index,
        open_interest=instrument.open_interest,
        settlement=instrument.settlement,
        risk_array=instrument.risk_array or (),  # None until the oracle's first array (never empty after)
    )


def encode_globals(state: State, genesis_hash: bytes | None = None) -> bytes:
    g = state.globals
    genesis_hash = compute_genesis_hash(state.genesis) if genesis_hash is None else genesis_hash
    return encode_globals_leaf(g.fee_pool, g.insurance_fund, g.deposit_count, g.oracle_time, genesis_hash)


def encode_state_leaf(state: State, key: int, genesis_hash: bytes | None = None) -> bytes:
    """The canonical bytes of the leaf at `key` (empty for an absent account or instrument).
    Pass `genesis_hash` to skip recomputing it when encoding many globals leaves."""
    kind, local_id = decode_key(key)
    if kind == "account":
        account = state.accounts.get(local_id)
        return EMPTY_LEAF_BYTES if account is None else encode_account(account)
    if kind == "instrument":
        instrument = state.instruments.get(local_id)
        return EMPTY_LEAF_BYTES if instrument is None else encode_instrument(instrument)
    return encode_globals(state, genesis_hash)


def get_state_leaves(state: State) -> dict[int, bytes]:
    """Every non-empty leaf of the state tree, by key."""
    leaves = {account_key(i): encode_account(a) for i, a in state.accounts.items()}
    leaves.update({instrument_key(i): encode_instrument(inst) for i, inst in state.instruments.items()})
    leaves[GLOBALS_KEY] = encode_globals(state)
    return leaves


def get_account(leaf: AccountLeaf) -> Account:
    positions = {p.instrument: Position(p.size, p.cost, p.funding) for p in leaf.positions}
    orders = {o.slot: (o.nonce, o.filled) for o in leaf.orders}
    return Account(leaf.address, leaf.collateral, leaf.nonce, positions, leaf.l2_key, orders)


def apply_instrument_leaf(instrument: Instrument, leaf: InstrumentLeaf) -> None:
    # the leaf describes the genesis instrument at its key
    if leaf.kind != instrument.spec.kind:
        raise MalformedLeaf(f"instrument {leaf.id} is a {instrument.spec.kind} at genesis, its leaf says {leaf.kind}")
    instrument.mark = leaf.mark
    instrument.funding_index = leaf.funding_index
    instrument.risk_array = leaf.risk_array or None
    instrument.open_interest = leaf.open_interest
    instrument.settlement = leaf.settlement


def apply_globals_leaf(state: State, leaf: GlobalsLeaf, genesis_hash: bytes) -> None:
    # the leaves belong to this genesis
    if leaf.genesis_hash != genesis_hash:
        raise MalformedLeaf(f"globals leaf commits to genesis {leaf.genesis_hash.hex()}, expected {genesis_hash.hex()}")
    g = state.globals
    g.fee_pool, g.insurance_fund, g.deposit_count, g.oracle_time = (
        leaf.fee_pool, leaf.insurance_fund, leaf.deposit_count, leaf.oracle_time
    )


def state_from_leaves(genesis: Genesis, leaves: Mapping[int, bytes]) -> State:
    """The State whose leaves these are. Every genesis instrument and the globals leaf must be
    present, and no instrument outside genesis; empty leaves are ignored."""
    state = State.from_genesis(genesis)
    seen_instruments: set[int] = set()
    has_globals = False
    for key, data in leaves.items():
        kind, local_id = decode_key(key)
        if data == EMPTY_LEAF_BYTES:
            continue
        if kind == "account":
            state.accounts[local_id] = get_account(decode_account_leaf(data))
        elif kind == "instrument":
            leaf = decode_instrument_leaf(data)
            # an instrument leaf sits at its own key, for an instrument of the genesis
            if leaf.id != local_id or local_id not in state.instruments:
                raise MalformedLeaf(f"instrument leaf for id {leaf.id} at key {key:#x}: not a genesis instrument there")
            apply_instrument_leaf(state.instruments[local_id], leaf)
            seen_instruments.add(local_id)
        else:
            apply_globals_leaf(state, decode_globals_leaf(data), compute_genesis_hash(genesis))
            has_globals = True
    # a complete state: globals and every instrument
    if not has_globals:
        raise MalformedLeaf("the globals leaf is missing")
    missing = sorted(set(state.instruments) - seen_instruments)
    if missing:
        raise MalformedLeaf(f"instrument leaves missing for ids {missing}")
    state.touched.clear()
    return state
