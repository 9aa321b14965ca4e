"""Data availability: the whole state rebuilt from genesis and the public data alone.

The public data of a settled v3 batch is, per segment, its oracle section's words (when it has an
update) and its slots' records (`verifier.pubdata`): what the settlement's calldata carries. This
module replays it with the rules and returns the state and its v3 root after every batch, so
anyone can check that the roots on L1 are the roots of a state they can rebuild without the node.

Signatures are not public data: a settled batch's L2 signatures were verified inside its proofs
(by each signing account's registered L2 key), and its Ethereum signatures (withdrawals, key
registrations, oracle updates) by the contract, so the replay stands in what each signing
account holds (its L2 key id, or its address), and the oracle's address for oracle updates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rollup.rules import process_transaction
from rollup.state import State
from rollup.state_tree import PoseidonTree
from verifier.oracle_section import OracleShape, decode_oracle_words, get_update_fields
from verifier.pubdata import decode_records, get_signature_windows
from verifier.slots import ORDER_WORD_FIELDS, get_slot_accounts
from verifier.state_tree import TreeShape, compute_account_hash, compute_globals_hash, compute_markets_hash, compute_state_root, get_instrument_table
from verifier.wire import SIZE_BITS, TRANSACTION_TYPES, Genesis
from rollup.state_codec import encode_account, encode_globals, encode_instrument
from verifier.encoding import decode_account_leaf, decode_globals_leaf, decode_instrument_leaf, get_signature_fields, is_l2_signed

from rollup.signing import PLACEHOLDER_L2_SIGNATURE, PLACEHOLDER_SIGNATURE  # public data carries no signatures


class ReplayError(ValueError):
    """Public data that the rules refuse: the batch could not have been settled with it."""


@dataclass
class PublicSegment:
    oracle_words: list[int] | None  # None: no oracle update
    records: bytes


MAX_ORDER_SIZE = 2**SIZE_BITS - 1  # an order's filled amount never exceeds its size, which is below this


def _signers_for(state: State, tx: object) -> tuple[str | int, ...]:
    """What the signing accounts hold: their L2 key ids (the proof verified their signatures) or,
    for Ethereum-signed types, their addresses (what the contract's ecrecover checked)."""
    kind = tx.type  # type: ignore[attr-defined]
    if kind == "deposit":
        return ()  # the L1 queue entry authorises a deposit
    if kind == "register_key":
        return (tx.address,)  # type: ignore[attr-defined]  # the record names its signer (checked by the contract)
    a, b = get_slot_accounts(tx)
    windows = get_signature_windows(tx)
    accounts = {"a": a, "b": b}
    l2 = is_l2_signed(type(tx))
    signers: list[str | int] = []
    for w in windows:
        account = state.accounts.get(accounts[w])  # type: ignore[arg-type]
        if account is None:
            signers.append(0 if l2 else "0x" + "00" * 20)  # the rules refuse the unknown account
        else:
            signers.append(account.l2_key if l2 else account.address)
    return tuple(signers)


def _get_fill_orders(fields: dict) -> dict:
    """A fill's orders as far as the state needs them. A record publishes what changes the state
    (accounts, instrument, size, price, fee, the order nonces that pick the order slots); the
    orders' other fields only bound the fill, and the proof showed they did. So the replay gives
    the orders bounds every published fill meets (the largest size, limits at the price, no
    expiry, a fee cap of the fee per contract rounded up), and the rules then change the state
    exactly as they did."""
    size = abs(fields["size"])
    cap = -(-fields["fee"] // size) if size else 0
    out = {}
    for side in ("taker", "maker"):
        bounds = {"order_size": MAX_ORDER_SIZE, "limit": fields["price"], "time_in_force": 0, "expiry": 0, "client_id": 0,
                  "max_fee": cap if side == "taker" else 0}
        out.update({f"{side}_{name}": bounds[name] for name in ORDER_WORD_FIELDS})
    return out


def _build_transaction(fields: dict, state: State) -> object:
    model = TRANSACTION_TYPES[fields["type"]]
    data = dict(fields)
    if fields["type"] == "deposit":
        data["deposit_id"] = state.globals.deposit_count  # the queue is consumed in order
    if fields["type"] == "fill":
        data.update(_get_fill_orders(fields))
    placeholder = PLACEHOLDER_L2_SIGNATURE if is_l2_signed(model) else PLACEHOLDER_SIGNATURE
    for name in get_signature_fields(model):
        data[name] = placeholder
    return model.model_validate(data)


def compute_v3_root(state: State, tree: PoseidonTree) -> int:
    genesis = state.genesis
    table = get_instrument_table(s.id for s in genesis.instruments)
    markets = compute_markets_hash(
        {i: decode_instrument_leaf(encode_instrument(state.instruments[i])) for i in table}, table, genesis.risk.n_scenarios
    )
    return compute_state_root(tree.root, markets, compute_globals_hash(decode_globals_leaf(encode_globals(state))))


def replay_public_data(genesis: Genesis, batches: Iterable[Sequence[PublicSegment]], tree_shape: TreeShape) -> tuple[State, list[int]]:
    """Apply every batch's public data from genesis; the state and the root after each batch."""
    state = State.from_genesis(genesis)
    tree = PoseidonTree(tree_shape)
    table = get_instrument_table(s.id for s in genesis.instruments)
    oracle_shape = OracleShape(table, genesis.risk.n_scenarios)
    roots = []
    for number, segments in enumerate(batches, start=1):
        for index, segment in enumerate(segments):
            pending: list[tuple[object | dict, tuple[str, ...] | None]] = []
            if segment.oracle_words is not None:
                fields = get_update_fields(decode_oracle_words(segment.oracle_words, oracle_shape), oracle_shape)
                if fields is not None:
                    update = TRANSACTION_TYPES["oracle_update"].model_validate({**fields, "signature": PLACEHOLDER_SIGNATURE})
                    pending.append((update, (genesis.oracle_address,)))
            pending += [(fields, None) for fields in decode_records(segment.records)]
            touched = set()
            for item, signers in pending:
                # a record becomes its transaction when it runs (a deposit's id is the queue position then)
                tx = _build_transaction(item, state) if isinstance(item, dict) else item
                receipt = process_transaction(state, tx, signers or _signers_for(state, tx))
                # settled public data only holds accepted transactions
                if receipt.status != "accepted":
                    raise ReplayError(f"batch {number}, segment {index}: {tx.type} refused by the rules: {receipt.reason}")
                if tx.type != "oracle_update":
                    touched.update(i for i in get_slot_accounts(tx) if i is not None)
            tree.update({i: compute_account_hash(decode_account_leaf(encode_account(state.accounts[i])), table) for i in touched})
        roots.append(compute_v3_root(state, tree))
    return state, roots
