"""State commitment: keccak, sparse Merkle trees (plain and fast), single proofs, multiproofs."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Mapping

import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from eth_hash.auto import keccak as eth_keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup.merkle import (
    InvalidLeaf,
    PlainSparseMerkleTree,
    SparseMerkleTree,
    compute_root_reference,
)
from verifier.merkle import (
    EMPTY_LEAF,
    InvalidProof,
    MerkleProof,
    MultiProof,
    compute_bitmap,
    compute_root,
    compute_root_from_multiproof,
    default_hashes,
    hash_pair,
    keccak256,
    verify_multiproof,
    verify_proof,
)

TREES = [SparseMerkleTree, PlainSparseMerkleTree]
Tree = SparseMerkleTree | PlainSparseMerkleTree


def make_leaf(seed: int) -> bytes:
    return eth_keccak(b"leaf" + seed.to_bytes(8, "big"))


def make_leaves(keys: list[int]) -> dict[int, bytes]:
    return {key: make_leaf(key * 7 + 1) for key in keys}


def build(tree_cls: type, leaves: Mapping[int, bytes], depth: int) -> Tree:
    return tree_cls.from_leaves(leaves, depth)


def flip_byte(word: bytes, position: int = 31) -> bytes:
    return word[:position] + bytes([word[position] ^ 1]) + word[position + 1 :]


# --- keccak and defaults -----------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"abc", bytes(64), bytes(range(64)), b"\xff" * 200])
def test_keccak_backends_agree_with_eth_hash(data: bytes) -> None:
    fast = keccak256(data)
    direct = pycryptodome_keccak.new(digest_bits=256, data=data).digest()
    assert fast == direct == eth_keccak(data)


def test_keccak_is_not_nist_sha3() -> None:
    # the published keccak-256 of the empty string (Ethereum's EMPTY_CODE_HASH)
    assert (
        keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )


def test_keccak_fallback_backend_gives_same_roots() -> None:
    # without safe-pysha3 the verifier falls back to pycryptodome: same hashes
    code = (
        "import sys; sys.modules['sha3'] = None\n"
        "from verifier import merkle\n"
        "print(merkle.KECCAK_BACKEND, merkle.default_hashes(32)[32].hex())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["pycryptodome", default_hashes(32)[32].hex()]


def test_default_hashes() -> None:
    zero = default_hashes(32)
    assert len(zero) == 33
    assert zero[0] == EMPTY_LEAF == bytes(32)
    for level in range(32):
        assert zero[level + 1] == eth_keccak(zero[level] + zero[level])


@pytest.mark.parametrize("tree_cls", TREES)
def test_empty_tree_root_is_default(tree_cls: type) -> None:
    tree = tree_cls(depth=16)
    assert tree.root == default_hashes(16)[16] == compute_root_reference({}, 16)
    assert len(tree) == 0
    assert tree.get(5) == EMPTY_LEAF


@pytest.mark.parametrize("tree_cls", TREES)
def test_vector_bit_zero_is_left(tree_cls: type) -> None:
    # depth 2, leaves at keys 1 (binary 01) and 2 (binary 10): bit i chooses left (0) / right (1)
    a, b = make_leaf(1), make_leaf(2)
    z = EMPTY_LEAF
    expected = eth_keccak(eth_keccak(z + a) + eth_keccak(b + z))
    tree = tree_cls(depth=2)
    assert tree.update({1: a, 2: b}) == expected
    assert compute_root_reference({1: a, 2: b}, 2) == expected


# --- tree properties (hypothesis, both trees against the recursive reference) -------------------


@st.composite
def leaf_batches(draw: st.DrawFn) -> tuple[int, list[dict[int, bytes]]]:
    depth = draw(st.integers(min_value=4, max_value=32))
    # keys near a few centres, so that siblings, shared paths and lone leaves all occur
    centres = draw(st.lists(st.integers(0, (1 << depth) - 1), min_size=1, max_size=3))
    key = st.builds(
        lambda c, d: min(max(c + d, 0), (1 << depth) - 1),
        st.sampled_from(centres),
        st.integers(-9, 9),
    )
    leaf = st.one_of(st.just(EMPTY_LEAF), st.binary(min_size=32, max_size=32))
    batches = draw(st.lists(st.dictionaries(key, leaf, max_size=12), min_size=1, max_size=4))
    return depth, batches


@settings(max_examples=200, deadline=None)
@given(leaf_batches())
def test_trees_agree_with_reference(case: tuple[int, list[dict[int, bytes]]]) -> None:
    depth, batches = case
    fast, plain = SparseMerkleTree(depth), PlainSparseMerkleTree(depth)
    expected: dict[int, bytes] = {}
    for batch in batches:
        expected.update(batch)
        root = compute_root_reference(expected, depth)
        assert fast.update(batch) == root
        assert plain.update(batch) == root
    present = {k: v for k, v in expected.items() if v != EMPTY_LEAF}
    probes = sorted(set(expected) | {0, (1 << depth) - 1})
    assert fast.prove_many(probes) == plain.prove_many(probes)
    assert all(fast.prove(key) == plain.prove(key) for key in probes[:4])
    assert dict(fast.items()) == dict(plain.items()) == present
    rebuilt = SparseMerkleTree.from_leaves(present, depth)
    assert rebuilt.root == fast.root
    # the fast tree's compact storage is canonical: the same after any history
    assert rebuilt._nodes == fast._nodes and rebuilt._lone == fast._lone


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 6), st.lists(st.dictionaries(st.integers(0, 63), st.booleans()), max_size=5))
def test_fast_tree_every_node_matches_plain(depth: int, batches: list[dict[int, bool]]) -> None:
    # small trees, every node: the compact storage answers like the full one after any history
    fast, plain = SparseMerkleTree(depth), PlainSparseMerkleTree(depth)
    for step, batch in enumerate(batches):
        updates = {
            key % (1 << depth): make_leaf(step * 64 + key) if keep else EMPTY_LEAF
            for key, keep in batch.items()
        }
        fast.update(updates)
        plain.update(updates)
        for level in range(depth + 1):
            for index in range(1 << (depth - level)):
                assert fast.get_node_hash(level, index) == plain.get_node_hash(level, index)


@settings(max_examples=150, deadline=None)
@given(leaf_batches(), st.data())
def test_multiproof_of_random_subset_then_update(
    case: tuple[int, list[dict[int, bytes]]], data: st.DataObject
) -> None:
    depth, batches = case
    tree = SparseMerkleTree(depth)
    for batch in batches[:-1]:
        tree.update(batch)
    diff = batches[-1]
    known = sorted(set(tree) | set(diff))
    extra = data.draw(st.lists(st.sampled_from(known), max_size=5)) if known else []
    keys = set(diff) | set(extra)
    old_root = tree.root
    proof = tree.prove_many(keys)
    before = {k: tree.get(k) for k in keys}
    assert verify_multiproof(old_root, before, proof)
    new_root = tree.update(diff)
    after = {k: tree.get(k) for k in keys}
    # the same multiproof with the "after" leaves yields the new root
    assert compute_root_from_multiproof(after, proof) == new_root
    assert MultiProof.from_dict(json.loads(json.dumps(proof.to_dict()))) == proof


@pytest.mark.parametrize("tree_cls", TREES)
def test_root_independent_of_insertion_order(tree_cls: type) -> None:
    leaves = make_leaves(random.Random(1).sample(range(1 << 32), 60))
    batch_root = build(tree_cls, leaves, 32).root
    items = list(leaves.items())
    random.Random(2).shuffle(items)
    tree = tree_cls(32)
    for key, leaf in items:
        tree.update({key: leaf})
    assert tree.root == batch_root == compute_root_reference(leaves, 32)


@pytest.mark.parametrize("tree_cls", TREES)
def test_deletion_restores_previous_root(tree_cls: type) -> None:
    tree = build(tree_cls, make_leaves([0, 1, 2, 9, 4000, 123456]), 32)
    before = tree.root
    tree.update({3: make_leaf(3), 8: make_leaf(8), 99999: make_leaf(5)})
    assert tree.root != before
    tree.update({3: EMPTY_LEAF, 8: EMPTY_LEAF, 99999: EMPTY_LEAF})
    assert tree.root == before
    assert len(tree) == 6


@pytest.mark.parametrize("tree_cls", TREES)
def test_delete_everything_gives_empty_root(tree_cls: type) -> None:
    leaves = make_leaves([5, 6, 1 << 20])
    tree = build(tree_cls, leaves, 24)
    tree.update({key: EMPTY_LEAF for key in leaves})
    assert tree.root == default_hashes(24)[24]
    assert len(tree) == 0


@pytest.mark.parametrize("tree_cls", TREES)
def test_queries(tree_cls: type) -> None:
    leaves = make_leaves([7, 3, 11])
    tree = build(tree_cls, leaves, 8)
    assert len(tree) == 3
    assert list(tree) == [3, 7, 11]
    assert list(tree.items()) == [(k, leaves[k]) for k in (3, 7, 11)]
    assert 7 in tree and 8 not in tree
    assert tree.get(11) == leaves[11] and tree.get(12) == EMPTY_LEAF
    unchanged = tree.root
    assert tree.update({7: leaves[7], 8: EMPTY_LEAF}) == unchanged  # no-op updates


@pytest.mark.parametrize("tree_cls", TREES)
def test_invalid_tree_input(tree_cls: type) -> None:
    tree = tree_cls(8)
    with pytest.raises(InvalidLeaf, match="outside"):
        tree.update({256: make_leaf(1)})
    with pytest.raises(InvalidLeaf, match="outside"):
        tree.update({-1: make_leaf(1)})
    with pytest.raises(InvalidLeaf, match="32 bytes"):
        tree.update({1: b"short"})
    with pytest.raises(InvalidLeaf, match="outside"):
        tree.get(1 << 8)
    with pytest.raises(InvalidLeaf, match="depth"):
        tree_cls(0)
    assert tree.root == default_hashes(8)[8]  # nothing was applied


# --- single proofs ---------------------------------------------------------------------------


@pytest.mark.parametrize("tree_cls", TREES)
def test_single_proofs_members_and_non_members(tree_cls: type) -> None:
    keys = [0, 1, 2, 3, 100, 1 << 31, (1 << 32) - 1]
    leaves = make_leaves(keys)
    tree = build(tree_cls, leaves, 32)
    for key in keys + [4, 101, 5000, (1 << 32) - 2]:
        leaf = leaves.get(key, EMPTY_LEAF)
        proof = tree.prove(key)
        assert len(proof.siblings) == 32
        assert verify_proof(tree.root, key, leaf, proof)
        assert compute_root(key, leaf, proof.siblings, 32) == tree.root
        assert MerkleProof.from_dict(json.loads(json.dumps(proof.to_dict()))) == proof


def test_single_proof_tampering() -> None:
    leaves = make_leaves([10, 11, 500])
    tree = SparseMerkleTree.from_leaves(leaves, 16)
    proof = tree.prove(10)
    root = tree.root
    assert verify_proof(root, 10, leaves[10], proof)
    # a wrong leaf, a wrong sibling, a wrong root: well-formed, not matching
    assert not verify_proof(root, 10, flip_byte(leaves[10]), proof)
    assert not verify_proof(root, 10, EMPTY_LEAF, proof)
    siblings = list(proof.siblings)
    siblings[0] = flip_byte(siblings[0])
    assert not verify_proof(root, 10, leaves[10], MerkleProof(16, 10, tuple(siblings)))
    assert not verify_proof(flip_byte(root), 10, leaves[10], proof)
    # the same siblings for another key (same path shape) do not verify
    assert not verify_proof(root, 11, leaves[10], MerkleProof(16, 11, proof.siblings))


def test_invalid_single_proof() -> None:
    tree = SparseMerkleTree.from_leaves(make_leaves([1]), 8)
    proof = tree.prove(1)
    leaf = tree.get(1)
    with pytest.raises(InvalidProof, match="for key 1, not 2"):
        verify_proof(tree.root, 2, leaf, proof)
    with pytest.raises(InvalidProof, match="expected 8 siblings, got 7"):
        compute_root(1, leaf, proof.siblings[:7], 8)
    with pytest.raises(InvalidProof, match="expected 8 siblings, got 9"):
        compute_root(1, leaf, proof.siblings + (EMPTY_LEAF,), 8)
    with pytest.raises(InvalidProof, match="sibling at level 3 must be 32 bytes"):
        compute_root(1, leaf, proof.siblings[:3] + (b"x",) + proof.siblings[4:], 8)
    with pytest.raises(InvalidProof, match="outside"):
        compute_root(256, leaf, proof.siblings, 8)
    with pytest.raises(InvalidProof, match="leaf must be 32 bytes"):
        compute_root(1, leaf[:31], proof.siblings, 8)
    with pytest.raises(InvalidProof, match="root must be 32 bytes"):
        verify_proof(tree.root + b"\x00", 1, leaf, proof)
    with pytest.raises(InvalidProof, match="depth"):
        compute_root(1, leaf, (), 0)
    with pytest.raises(InvalidProof, match="0x-hex string of 32 bytes"):
        MerkleProof.from_dict({**proof.to_dict(), "key": "0x01"})


# --- multiproofs -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree_and_leaves() -> tuple[SparseMerkleTree, dict[int, bytes]]:
    rng = random.Random(7)
    keys = list(range(40)) + rng.sample(range(1 << 32), 60)
    leaves = make_leaves(keys)
    return SparseMerkleTree.from_leaves(leaves, 32), leaves


@pytest.mark.parametrize(
    "keys",
    [
        [],  # the empty set: one slot, the root itself
        [5],
        [4, 5],  # adjacent siblings hash together, no slot
        [0, 1, 2, 3, 4, 5, 6, 7],
        [39, 40, 41, 1 << 31],  # 40, 41 and 1 << 31 are (probably) empty: non-members
        "all",
    ],
)
@pytest.mark.parametrize("tree_cls", TREES)
def test_multiproof_verifies(
    tree_cls: type,
    keys: list[int] | str,
    tree_and_leaves: tuple[SparseMerkleTree, dict[int, bytes]],
) -> None:
    _, leaves = tree_and_leaves
    tree = build(tree_cls, leaves, 32)
    chosen = sorted(leaves) if keys == "all" else keys
    proof = tree.prove_many(chosen)
    values = {k: leaves.get(k, EMPTY_LEAF) for k in chosen}
    assert proof.keys == tuple(sorted(chosen))
    assert verify_multiproof(tree.root, values, proof)
    assert compute_root_from_multiproof(values, proof) == tree.root


def test_multiproof_of_empty_tree_and_empty_set() -> None:
    tree = SparseMerkleTree(32)
    empty = tree.prove_many([])
    assert empty.siblings == () and empty.bitmap == (bytes(32),)
    assert verify_multiproof(tree.root, {}, empty)
    absent = tree.prove_many([3, 4])
    assert absent.siblings == ()  # every sibling is a default: bits only
    assert verify_multiproof(tree.root, {3: EMPTY_LEAF, 4: EMPTY_LEAF}, absent)


def test_multiproof_is_compact_and_matches_single_proofs(
    tree_and_leaves: tuple[SparseMerkleTree, dict[int, bytes]],
) -> None:
    tree, leaves = tree_and_leaves
    proof = tree.prove_many([0, 1, 2, 3])
    # keys 0..3 hash together up to level 2, then share key 0's path: its non-default siblings
    zero = default_hashes(32)
    single = tree.prove(0)
    expected = [s for level, s in enumerate(single.siblings) if level >= 2 and s != zero[level]]
    assert list(proof.siblings) == expected
    assert proof.size_bytes == 32 * (4 + len(proof.bitmap) + len(proof.siblings))


def test_multiproof_update_then_recompute_with_inserts_and_deletes(
    tree_and_leaves: tuple[SparseMerkleTree, dict[int, bytes]],
) -> None:
    tree, leaves = tree_and_leaves
    tree = tree.copy()
    diff = {0: make_leaf(900), 1: EMPTY_LEAF, 41: make_leaf(901), (1 << 32) - 1: make_leaf(902)}
    old_root = tree.root
    proof = tree.prove_many(diff)
    before = {k: tree.get(k) for k in diff}
    assert verify_multiproof(old_root, before, proof)
    new_root = tree.update(diff)
    assert compute_root_from_multiproof(diff, proof) == new_root
    assert not verify_multiproof(new_root, before, proof)


def test_multiproof_tampering(tree_and_leaves: tuple[SparseMerkleTree, dict[int, bytes]]) -> None:
    tree, leaves = tree_and_leaves
    keys = [2, 3, 17, 40]
    proof = tree.prove_many(keys)
    values = {k: leaves.get(k, EMPTY_LEAF) for k in keys}
    root = tree.root
    assert verify_multiproof(root, values, proof)
    # a changed leaf or sibling: well-formed, not matching
    assert not verify_multiproof(root, {**values, 17: flip_byte(values[17])}, proof)
    assert not verify_multiproof(root, {**values, 40: make_leaf(1)}, proof)
    for i in range(len(proof.siblings)):
        siblings = list(proof.siblings)
        siblings[i] = flip_byte(siblings[i], i % 32)
        assert not verify_multiproof(root, values, replace(proof, siblings=tuple(siblings)))
    # a key moved where the proof's slots stay the same (17 -> 16: the sibling pair swaps sides)
    moved = replace(proof, keys=(2, 3, 16, 40))
    assert not verify_multiproof(
        root, {2: values[2], 3: values[3], 16: values[17], 40: EMPTY_LEAF}, moved
    )
    # two bitmap bits swapped (one default slot now takes a sibling, one sibling slot a default)
    bits = int.from_bytes(proof.bitmap[0], "big")
    one, zero = (bits & -bits).bit_length() - 1, (~bits & (bits + 1)).bit_length() - 1
    swapped = (bits ^ (1 << one) ^ (1 << zero)).to_bytes(32, "big")
    assert not verify_multiproof(root, values, replace(proof, bitmap=(swapped,) + proof.bitmap[1:]))


def replace(proof: MultiProof, **changes: object) -> MultiProof:
    fields = {
        "depth": proof.depth,
        "keys": proof.keys,
        "bitmap": proof.bitmap,
        "siblings": proof.siblings,
    }
    return MultiProof(**{**fields, **changes})  # type: ignore[arg-type]


def test_invalid_multiproof(tree_and_leaves: tuple[SparseMerkleTree, dict[int, bytes]]) -> None:
    tree, leaves = tree_and_leaves
    keys = [2, 3, 17]
    proof = tree.prove_many(keys)
    values = {k: leaves[k] for k in keys}
    root = tree.root
    bits = int.from_bytes(proof.bitmap[0], "big")
    cases: list[tuple[MultiProof, Mapping[int, bytes], str]] = [
        (replace(proof, siblings=proof.siblings[:-1]), values, "too few siblings"),
        (replace(proof, siblings=proof.siblings + (EMPTY_LEAF,)), values, "too many siblings"),
        (replace(proof, bitmap=((bits ^ 1 << 3).to_bytes(32, "big"),)), values, "siblings"),
        (replace(proof, bitmap=((bits | 1 << 255).to_bytes(32, "big"),)), values, "past the last"),
        (replace(proof, bitmap=proof.bitmap + (bytes(32),)), values, "2 words, 1 expected"),
        (replace(proof, bitmap=()), values, "bitmap too short"),
        (replace(proof, bitmap=(b"\x01" * 31,)), values, "bitmap word 0 must be 32 bytes"),
        (
            replace(proof, siblings=(b"\x01",) + proof.siblings[1:]),
            values,
            "sibling 0 must be 32 bytes",
        ),
        (replace(proof, keys=(3, 2, 17)), values, "strictly increasing"),
        (replace(proof, keys=(2, 2, 17)), values, "strictly increasing"),
        (replace(proof, keys=(2, 3, 1 << 32)), values, "outside"),
        (replace(proof, depth=0), values, "depth 0 outside"),
        (replace(proof, depth=257), values, "depth 257 outside"),
        (proof, {2: values[2], 3: values[3]}, "no leaf given for key 17"),
        (proof, {**values, 18: EMPTY_LEAF}, "leaf given for key 18"),
        (proof, {**values, 17: b"\x00" * 33}, "leaf of key 17 must be 32 bytes"),
    ]
    for bad_proof, bad_leaves, reason in cases:
        with pytest.raises(InvalidProof, match=reason):
            verify_multiproof(root, bad_leaves, bad_proof)
    with pytest.raises(InvalidProof, match="root must be 32 bytes"):
        verify_multiproof(root[:31], values, proof)


def test_invalid_multiproof_json(
    tree_and_leaves: tuple[SparseMerkleTree, dict[int, bytes]],
) -> None:
    tree, _ = tree_and_leaves
    good = tree.prove_many([2, 3]).to_dict()
    for field, value, reason in [
        ("siblings", "0x00", "must be a list"),
        ("siblings", ["0x" + "zz" * 32], "not hex"),
        ("bitmap", ["0x" + "00" * 31], "0x-hex string of 32 bytes"),
        ("keys", [2, 3], "0x-hex string of 32 bytes"),
        ("depth", "32", "depth must be an integer"),
    ]:
        with pytest.raises(InvalidProof, match=reason):
            MultiProof.from_dict({**good, field: value})


def test_bitmap_layout() -> None:
    # slot s is bit s % 256 of word s // 256, words big-endian: what an EVM contract reads
    words = compute_bitmap([True, False, True] + [False] * 253 + [True])
    assert len(words) == 2
    assert int.from_bytes(words[0], "big") == 0b101
    assert int.from_bytes(words[1], "big") == 1
    assert compute_bitmap([]) == ()


def test_hash_pair_is_ordered() -> None:
    a, b = make_leaf(1), make_leaf(2)
    assert hash_pair(a, b) == eth_keccak(a + b) != hash_pair(b, a)


@pytest.mark.parametrize("tree_cls", TREES)
def test_copy_is_independent(tree_cls: type) -> None:
    tree = build(tree_cls, make_leaves([1, 2, 3]), 16)
    snapshot = tree.copy()
    tree.update({1: EMPTY_LEAF, 4: make_leaf(4)})
    assert snapshot.root == compute_root_reference(make_leaves([1, 2, 3]), 16) != tree.root
    assert list(snapshot) == [1, 2, 3]
    assert snapshot.prove(1) != tree.prove(1)
