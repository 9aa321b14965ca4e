"""Circuit v3 (prover/circuits/transition.py): the state transition proven, against the native rules.

A small signed workload runs through the native rules segment by segment (an oracle update opens
a segment); every segment's witness must satisfy the circuit, its public inputs must be what a
verifier computes from published data, and any change of a public input, or of a witness value
that the public data pins, must break it.
"""

from __future__ import annotations

import copy

import pytest

from prover.circuits.transition import TransitionShape, build_transition_circuit
from prover.circuits.transition_witness import compute_root, compute_transition_witness
from prover.r1cs import UnsatisfiedConstraint, WitnessError
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.rules import process_transaction
from rollup.state import State
from rollup.state_tree import PoseidonTree
from verifier.encoding import compute_genesis_hash
from verifier.l2auth import check_signers
from verifier.oracle_section import FLAG_SETTLEMENT, compute_oracle_section, compute_oracle_words
from verifier.pubdata import compute_record_words, compute_records_hash, decode_record_words
from verifier.state_tree import TreeShape, compute_account_hash, compute_root_reference
from rollup.state_codec import get_state_leaves
from verifier.encoding import decode_leaf, decode_key

TREE = TreeShape(depth=3, arity=4)  # 64 accounts
N_SLOTS = 2


MIX = {"perp_trade": 20, "option_trade": 10, "transfer": 5, "withdraw": 8, "liquidate": 10, "settle_expired": 10, "oracle_update": 12, "register_key": 4, "fill": 8}


@pytest.fixture(scope="module")
def workload():
    # 40 days: option series expire and settle, the mid-path shock brings liquidations
    spec = WorkloadSpec(accounts=10, perps=1, series=2, txs=150, seed=2, contention=0.3, mix=MIX, days=40)
    return generate_workload(spec, workers=1)


def _segments(workload, n_slots):
    """Accepted transactions cut into segments; an oracle update starts a new segment."""
    state = State.from_genesis(workload.genesis)
    chain_id = workload.genesis.signing_domain
    segments, current = [], {"oracle": None, "txs": []}
    for tx in workload.transactions:
        signers = check_signers(tx, chain_id)
        probe = state.copy()
        if process_transaction(probe, tx, signers).status != "accepted":
            continue
        state = probe
        if tx.type == "oracle_update":
            if current["oracle"] is not None or current["txs"]:
                segments.append(current)
            current = {"oracle": (tx, signers), "txs": []}
            continue
        current["txs"].append((tx, signers))
        if len(current["txs"]) == n_slots:
            segments.append(current)
            current = {"oracle": None, "txs": []}
    if current["oracle"] is not None or current["txs"]:
        segments.append(current)
    return segments


def _covering(out):
    """Indices of a few segments that together hold every slot type, an oracle update with a
    settlement, one with funding, and a padded (short) segment."""
    chosen: list[int] = []
    wanted = {"deposit", "withdraw", "transfer", "perp_trade", "option_trade", "liquidate", "settle_expired", "register_key", "fill", "settlement"}
    for i, (seg, _) in enumerate(out):
        kinds = {tx.type for tx, _ in seg["txs"]}
        oracle = seg["oracle"][0] if seg["oracle"] else None
        if kinds & wanted or (oracle is not None and oracle.settlements and "settlement" in wanted):
            chosen.append(i)
            wanted -= kinds | ({"settlement"} if oracle is not None and oracle.settlements else set())
        if not wanted:
            break
    padded = next(i for i, (seg, _) in enumerate(out) if len(seg["txs"]) < N_SLOTS)
    funded = next(i for i, (seg, _) in enumerate(out) if seg["oracle"] and seg["oracle"][0].funding)
    return sorted(set(chosen) | {padded, funded})


@pytest.fixture(scope="module")
def proven(workload):
    """Every segment's witness, built along one native replay (the circuits are built in the tests)."""
    genesis = workload.genesis
    shape = TransitionShape.from_genesis(genesis, compute_genesis_hash(genesis), N_SLOTS, TREE)
    state = State.from_genesis(genesis)
    tree = PoseidonTree(TREE)
    out = []
    for index, seg in enumerate(_segments(workload, N_SLOTS)):
        oracle, oracle_signers = seg["oracle"] or (None, None)
        txs = [t for t, _ in seg["txs"]]
        witness = compute_transition_witness(state, tree, shape, 1, index, oracle, oracle_signers, txs, [s for _, s in seg["txs"]])
        out.append((seg, witness))
    return shape, out, state, tree


def test_segments_cover_every_kind(proven):
    _, out, _, _ = proven
    kinds = {tx.type for i in _covering(out) for tx, _ in out[i][0]["txs"]}
    assert kinds == {"deposit", "withdraw", "transfer", "perp_trade", "option_trade", "liquidate", "settle_expired", "register_key", "fill"}
    assert any(out[i][0]["oracle"] and out[i][0]["oracle"][0].settlements for i in _covering(out))


def test_covering_segments_satisfy_the_circuit(proven):
    shape, out, _, _ = proven
    for i in _covering(out):
        witness = out[i][1]
        cs = build_transition_circuit(shape, witness)
        cs.check()
        assert cs.public_inputs == [v % cs.r for v in witness.public]
        assert cs.n_public == shape.count_public_inputs()


def test_roots_chain_and_match_the_native_tree(proven):
    shape, out, state, tree = proven
    for (_, w), (_, nxt) in zip(out, out[1:]):
        assert w.public[3] == nxt.public[2]
    # the last root is the state's, computed from scratch by the verifier's functions
    leaves = {decode_key(k)[1]: decode_leaf(k, v) for k, v in get_state_leaves(state).items() if decode_key(k)[0] == "account"}
    accounts = compute_root_reference({i: compute_account_hash(leaf, shape.table) for i, leaf in leaves.items()}, TREE)
    assert accounts == tree.root
    assert out[-1][1].public[3] == compute_root(state, tree, shape)


def test_public_inputs_are_the_published_data(proven):
    shape, out, _, _ = proven
    n_oracle = shape.oracle.n_words
    for seg, w in out:
        oracle = seg["oracle"][0] if seg["oracle"] else None
        assert w.public[4 : 4 + n_oracle] == compute_oracle_words(compute_oracle_section(oracle, shape.oracle), shape.oracle)
        # the records: one hash of every slot's words, no-op slots padding the segment
        records = [compute_record_words(tx) for tx, _ in seg["txs"]]
        assert [decode_record_words(r)["type"] for r in records] == [tx.type for tx, _ in seg["txs"]]
        records += [compute_record_words(None)] * (shape.n_slots - len(records))
        assert w.public[4 + n_oracle :] == [compute_records_hash(records)]


@pytest.mark.parametrize("word", ["root_before", "root_after", "records_hash", "oracle"])
def test_invalid_public_input_changed(proven, word):
    shape, out, _, _ = proven
    seg, w = next((s, w) for s, w in out if s["oracle"] and s["txs"])
    n_oracle = shape.oracle.n_words
    index = {"root_before": 2, "root_after": 3, "oracle": 4 + 1, "records_hash": 4 + n_oracle}[word]
    public = list(w.public)
    public[index] += 1
    w.public = public
    try:
        with pytest.raises((UnsatisfiedConstraint, WitnessError)):
            build_transition_circuit(shape, w).check()
    finally:
        public[index] -= 1


def _find(out, kind):
    """(segment witness copy, slot index) of the first slot of this type."""
    for seg, w in out:
        for k, (tx, _) in enumerate(seg["txs"]):
            if tx.type == kind:
                return copy.deepcopy(w), k
    raise LookupError(kind)


def _assert_unsatisfied(shape, witness):
    with pytest.raises((UnsatisfiedConstraint, WitnessError)) as info:
        build_transition_circuit(shape, witness).check()
    return str(info.value)


def test_invalid_collateral_after_changed(proven):
    # the new leaf is hashed into the new root: any other after-state breaks the rules or the root
    shape, out, _, _ = proven
    w, k = _find(out, "transfer")
    w.slots[k].b.collateral_after += 1
    assert "collateral" in _assert_unsatisfied(shape, w)


def test_invalid_position_before_changed(proven):
    # the leaf before is opened against the root: a different position is not in the tree
    shape, out, _, _ = proven
    w, k = _find(out, "perp_trade")
    # the taker's collateral before and after, both one more: the rules' arithmetic still holds
    w.slots[k].a.collateral_before += 1
    w.slots[k].a.collateral_after += 1
    assert "leaf_update" in _assert_unsatisfied(shape, w)


def test_invalid_sibling_changed(proven):
    shape, out, _, _ = proven
    w, k = _find(out, "withdraw")
    level = list(w.slots[k].path_a)
    level[1] = (level[1][0] + 1, *level[1][1:])
    w.slots[k].path_a = tuple(level)
    assert "leaf_update" in _assert_unsatisfied(shape, w)


def test_invalid_markets_witness_changed(proven):
    shape, out, _, _ = proven
    w = copy.deepcopy(out[-1][1])
    w.markets[0].mark += 1
    assert "'open'" in _assert_unsatisfied(shape, w)


def test_invalid_unpublished_transaction_word(proven):
    # a withdrawal carries no second account: the word must be 0, so one record is one transaction
    shape, out, _, _ = proven
    w, k = _find(out, "withdraw")
    w.slots[k].tx.account_b = 3
    assert "record" in _assert_unsatisfied(shape, w)


def test_invalid_oracle_settlement_of_a_perpetual(proven):
    # the section's words are made consistent with the change, so only the oracle rule can refuse it
    shape, out, _, _ = proven
    seg, w = next((s, w) for s, w in out if s["oracle"])
    w = copy.deepcopy(w)
    perp = shape.perp.index(True)
    w.oracle.entries[perp].flags |= FLAG_SETTLEMENT
    w.oracle.entries[perp].settlement = 5
    n_oracle = shape.oracle.n_words
    w.public[4 : 4 + n_oracle] = compute_oracle_words(w.oracle, shape.oracle)
    assert "oracle_section" in _assert_unsatisfied(shape, w)


def test_invalid_oracle_clock_not_increasing(proven):
    shape, out, _, _ = proven
    seg, w = next((s, w) for s, w in out if s["oracle"])
    w = copy.deepcopy(w)
    w.oracle.timestamp = w.globals.oracle_time
    w.public[4 : 4 + shape.oracle.n_words] = compute_oracle_words(w.oracle, shape.oracle)
    assert "does not fit in 40 bits" in _assert_unsatisfied(shape, w)


def test_invalid_oracle_update_skipping_one(proven):
    # the update names a predecessor other than the last update applied (security review, finding 6)
    shape, out, _, _ = proven
    seg, w = next((s, w) for s, w in out if s["oracle"])
    w = copy.deepcopy(w)
    w.oracle.previous_timestamp = w.globals.oracle_time + 1
    w.public[4 : 4 + shape.oracle.n_words] = compute_oracle_words(w.oracle, shape.oracle)
    assert "oracle_section" in _assert_unsatisfied(shape, w)


def test_blank_witness_has_the_same_constraints(proven):
    # setup synthesises the circuit from a blank witness: the constraint system must be the proof's
    from prover.circuits.transition_witness import build_blank_witness

    shape, out, _, _ = proven
    blank = build_transition_circuit(shape, build_blank_witness(shape))
    real = build_transition_circuit(shape, out[0][1])
    assert blank.constraints == real.constraints
    assert blank.n_public == real.n_public
