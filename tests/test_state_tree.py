"""The v3 state commitment: Poseidon sparse Merkle trees (plain and fast, one suite), paths,
multiproofs, leaf field encodings and the state root (verifier/state_tree.py, rollup/state_tree.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from rollup.state_tree import TREES
from verifier.encoding import AccountLeaf, GlobalsLeaf, InstrumentLeaf, OrderSlotLeaf, PositionLeaf
from verifier.l2auth import check_signers
from verifier.poseidon import poseidon
from verifier.state_tree import (
    R,
    InvalidPath,
    TreeShape,
    compute_account_fields,
    compute_account_hash,
    compute_empty_hashes,
    compute_globals_fields,
    compute_markets_hash,
    compute_multiproof_root,
    compute_path_root,
    compute_root_reference,
    compute_state_root,
    hash_fields,
    verify_path,
)

SHAPES = [TreeShape(4, 2), TreeShape(2, 4), TreeShape(2, 8)]
ADDRESS = "0x" + "ab" * 20


@pytest.fixture(params=sorted(TREES))
def tree_class(request):
    return TREES[request.param]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_empty_tree(tree_class, shape):
    tree = tree_class(shape)
    empty = compute_empty_hashes(shape)
    assert tree.root == empty[-1] == compute_root_reference({}, shape)
    assert empty[1] == poseidon([0] * shape.arity)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_updates_match_reference(tree_class, shape):
    rng = random.Random(7)
    tree = tree_class(shape)
    leaves: dict[int, int] = {}
    for _ in range(4):
        changes = {rng.randrange(shape.capacity): rng.choice([0, rng.randrange(R)]) for _ in range(rng.randint(1, 5))}
        leaves.update(changes)
        assert tree.update(changes) == compute_root_reference(leaves, shape)
    for key in list(leaves)[:4]:
        path = tree.get_path(key)
        assert verify_path(tree.root, key, leaves[key], path, shape)
        assert not verify_path(tree.root, key, (leaves[key] + 1) % R, path, shape)


def test_fast_and_plain_trees_agree_on_a_batch():
    shape = TreeShape(6, 2)
    rng = random.Random(3)
    changes = {rng.randrange(shape.capacity): rng.randrange(R) for _ in range(20)}
    plain, fast = TREES["plain"](shape), TREES["fast"](shape)
    assert plain.update(changes) == fast.update(changes)
    assert plain.levels == fast.levels


def test_deleting_every_leaf_returns_to_the_empty_tree(tree_class):
    shape = TreeShape(3, 2)
    tree = tree_class(shape)
    tree.update({1: 5, 6: 9})
    assert tree.update({1: 0, 6: 0}) == compute_empty_hashes(shape)[-1]
    assert all(not level for level in tree.levels)  # nothing stored for empty subtrees


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_multiproof(tree_class, shape):
    rng = random.Random(11)
    tree = tree_class(shape)
    tree.update({rng.randrange(shape.capacity): rng.randrange(1, R) for _ in range(6)})
    keys = sorted({rng.randrange(shape.capacity) for _ in range(3)})
    leaves = {k: tree.get(k) for k in keys}
    nodes = tree.get_multiproof(keys)
    assert compute_multiproof_root(leaves, nodes, shape) == tree.root
    # the same proof rebuilds the root after the keys change (how a verifier gets the new root)
    changed = {k: (v + 1) % R for k, v in leaves.items()}
    assert compute_multiproof_root(changed, nodes, shape) == tree.update(changed)


def test_invalid_multiproof_node_count():
    shape = TreeShape(3, 2)
    tree = TREES["fast"](shape)
    tree.update({2: 3})
    nodes = tree.get_multiproof([2])
    with pytest.raises(InvalidPath, match="carries 3 nodes, got 2"):
        compute_multiproof_root({2: 3}, nodes[:-1], shape)
    with pytest.raises(InvalidPath, match="not a field element"):
        compute_multiproof_root({2: 3}, [R] + nodes[1:], shape)


def test_invalid_path_shape():
    shape = TreeShape(2, 4)
    with pytest.raises(InvalidPath, match="a path has 2 levels, got 1"):
        compute_path_root(0, 1, ((0, 0, 0),), shape)
    with pytest.raises(InvalidPath, match="level 1 has 2 siblings, the tree 3"):
        compute_path_root(0, 1, ((0, 0, 0), (0, 0)), shape)
    with pytest.raises(InvalidPath, match="not a field element"):
        compute_path_root(0, 1, ((0, 0, R), (0, 0, 0)), shape)
    with pytest.raises(InvalidPath, match="outside the tree's range"):
        compute_path_root(16, 1, ((0, 0, 0), (0, 0, 0)), shape)


def test_invalid_tree_shape():
    with pytest.raises(ValueError, match="arity must be 2, 4, 8 or 16"):
        TreeShape(4, 3)
    with pytest.raises(ValueError, match="must address"):
        TreeShape(17, 4)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, R - 1), min_size=1, max_size=40))
def test_hash_fields_chunks(values):
    expected = values
    while len(expected) > 16:
        expected = [poseidon(expected[i : i + 16]) for i in range(0, len(expected), 16)]
    assert hash_fields(values) == poseidon(expected)


def test_hash_fields_takes_signed_values_mod_r():
    assert hash_fields([-1, 2]) == poseidon([R - 1, 2])


def test_account_fields_are_dense_by_instrument():
    leaf = AccountLeaf(ADDRESS, 1_000, 3, (PositionLeaf(7, -2, -50, 4),), l2_key=42, orders=(OrderSlotLeaf(1, 17, 5),))
    header, positions, orders = compute_account_fields(leaf, (1, 7, 9))
    assert header == [int(ADDRESS, 16), 1_000, 3, 42]
    assert positions == [0, 0, 0, -2, -50, 4, 0, 0, 0]
    assert orders == [0, 0, 17, 5] + [0] * 12  # (nonce, filled) per order slot, slot 1 = 17 % 8
    expected = poseidon([int(ADDRESS, 16), 1_000, 3, 42, hash_fields(positions), poseidon(orders)])
    assert compute_account_hash(leaf, (1, 7, 9)) == expected
    assert compute_account_hash(None, (1, 7, 9)) == 0


def test_invalid_account_position_outside_the_table():
    leaf = AccountLeaf(ADDRESS, 0, 0, (PositionLeaf(5, 1, 0, 0),))
    with pytest.raises(ValueError, match=r"instruments \[5\] outside the table"):
        compute_account_fields(leaf, (1, 7))


def test_markets_and_globals():
    perp = InstrumentLeaf(1, "perp", 100, -3, 8, None, (1, -2))
    option = InstrumentLeaf(7, "option", None, 0, 0, 5, ())
    markets = compute_markets_hash({1: perp, 7: option}, (1, 7), 2)
    assert markets == hash_fields([1, 100, -3, 8, 0, 0, 1, 1, -2, 0, 0, 0, 0, 1, 5, 0, 0, 0])
    with pytest.raises(ValueError, match="exactly the table's instruments"):
        compute_markets_hash({1: perp}, (1, 7), 2)
    with pytest.raises(ValueError, match="has 2 risk values, the genesis 3"):
        compute_markets_hash({1: perp, 7: option}, (1, 7), 3)
    g = GlobalsLeaf(5, -7, 2, 99, bytes(range(32)))
    fields = compute_globals_fields(g)
    assert fields[:4] == [5, -7, 2, 99]
    assert (fields[4] << 128) | fields[5] == int.from_bytes(bytes(range(32)), "big")
    assert compute_state_root(1, 2, 3) == poseidon([1, 2, 3])


def test_state_commitment_from_node_leaves(small_workload):
    # the node's commitment from its stored leaves equals the verifier's functions from scratch
    from rollup.rules import process_transaction
    from rollup.state import State
    from rollup.state_codec import get_state_leaves
    from rollup.state_tree import StateCommitment
    from verifier.encoding import decode_account_leaf, decode_globals_leaf, decode_instrument_leaf, decode_key
    from verifier.state_tree import compute_globals_hash, get_instrument_table

    genesis = small_workload.genesis
    state = State.from_genesis(genesis)
    for tx in small_workload.transactions[:80]:
        try:
            signers = check_signers(tx, genesis.signing_domain)
        except ValueError:  # the workload's deliberately invalid signatures
            continue
        process_transaction(state, tx, signers)
    leaves = get_state_leaves(state)
    shape = TreeShape(3, 4)
    commitment = StateCommitment.from_leaves(genesis, shape, leaves)
    table = get_instrument_table(s.id for s in genesis.instruments)
    accounts = {decode_key(k)[1]: compute_account_hash(decode_account_leaf(v), table) for k, v in leaves.items() if decode_key(k)[0] == "account"}
    instruments = {decode_key(k)[1]: decode_instrument_leaf(v) for k, v in leaves.items() if decode_key(k)[0] == "instrument"}
    globals_leaf = next(decode_globals_leaf(v) for k, v in leaves.items() if decode_key(k)[0] == "globals")
    expected = compute_state_root(
        compute_root_reference(accounts, shape), compute_markets_hash(instruments, table, genesis.risk.n_scenarios), compute_globals_hash(globals_leaf)
    )
    assert commitment.root == expected
    assert len(commitment.root_bytes) == 32
    with pytest.raises(ValueError, match="account leaves are given as values"):
        commitment.update({}, {next(k for k in leaves if decode_key(k)[0] == "account"): b""})
