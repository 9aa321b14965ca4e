"""Gadgets of the v3 state commitment: `hash_fields`, a key's path digits, and a leaf update.

The circuit twins of `verifier/state_tree.py` (same hashing, same child order): a segment opens
the "before" state root by hashing its witness, every account a slot touches is opened against
the current accounts root and the root recomputed with the new leaf on the same siblings.
"""

from __future__ import annotations

from typing import Sequence

from prover.circuits.poseidon import synthesize_poseidon
from prover.gadgets import mul, to_bits
from prover.r1cs import ConstraintSystem, LinearCombination, LinearLike, Variable
from verifier.state_tree import CHUNK, TreeShape


def synthesize_hash_fields(cs: ConstraintSystem, values: Sequence[LinearLike]) -> Variable:
    """`verifier.state_tree.hash_fields`: Poseidon of up to 16 values, longer vectors in chunks of
    16 whose hashes are hashed again."""
    items = list(values)
    with cs.gadget("hash_fields"):
        while len(items) > CHUNK:
            items = [synthesize_poseidon(cs, items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]
        return synthesize_poseidon(cs, items)


def synthesize_one_hot(cs: ConstraintSystem, bits: Sequence[Variable]) -> list[LinearCombination]:
    """The one-hot vector of the number the bits spell (least significant first): 2^k entries."""
    out = [cs.constant(1)]
    for bit in bits:
        nxt: list[LinearCombination] = []
        for x in out:
            both = cs.as_lc(bit) if len(out) == 1 else cs.as_lc(mul(cs, x, bit))
            nxt.append(x - both)
        # entries with the bit set follow those without (the bit is the next digit bit)
        nxt += [x - low for x, low in zip(out, nxt)]
        out = nxt
    return out


def synthesize_key_digits(cs: ConstraintSystem, key: LinearLike, shape: TreeShape) -> list[list[LinearCombination]]:
    """Per level from the leaves up, the one-hot child index of `key`; `key` < the tree's capacity
    (its bits beyond depth x log2(arity) are 0)."""
    with cs.gadget("key_digits"):
        bits = to_bits(cs, key, shape.depth * shape.digit_bits)
        b = shape.digit_bits
        return [synthesize_one_hot(cs, bits[level * b : (level + 1) * b]) for level in range(shape.depth)]


def synthesize_children(
    cs: ConstraintSystem, node: LinearLike, siblings: Sequence[LinearLike], position: Sequence[LinearLike]
) -> list[LinearCombination]:
    """The node placed among its siblings at the one-hot `position` (siblings keep their order):
    child j is sibling j before the node, the node at its position, sibling j - 1 after it."""
    arity = len(position)
    node = cs.as_lc(node)
    s = [cs.as_lc(x) for x in siblings]
    children = []
    after = cs.constant(0)  # 1 once the node's position is behind j
    for j in range(arity):
        here = cs.as_lc(position[j])
        if j == arity - 1:
            # the last child is the node or the last sibling
            child = s[j - 1] + mul(cs, here, node - s[j - 1])
        elif j == 0:
            child = s[0] + mul(cs, here, node - s[0])
        else:
            child = s[j] + mul(cs, here, node - s[j]) + mul(cs, after, s[j - 1] - s[j])
        children.append(cs.as_lc(child))
        after = after + here
    return children


def synthesize_path_root(
    cs: ConstraintSystem, leaf: LinearLike, digits: Sequence[Sequence[LinearLike]], path: Sequence[Sequence[LinearLike]]
) -> Variable:
    """The root a leaf and its siblings give (`verifier.state_tree.compute_path_root`)."""
    node: LinearLike = leaf
    with cs.gadget("merkle_path"):
        for position, siblings in zip(digits, path, strict=True):
            node = synthesize_poseidon(cs, synthesize_children(cs, node, siblings, position))
    return node  # type: ignore[return-value]


def synthesize_leaf_update(
    cs: ConstraintSystem,
    shape: TreeShape,
    root: LinearLike,
    key: LinearLike,
    uses: LinearLike,
    leaf_before: LinearLike,
    leaf_after: LinearLike,
    path: Sequence[Sequence[LinearLike]],
) -> LinearCombination:
    """If `uses` (a bit): the leaf before is at `key` under `root`, and the returned root has the
    leaf after there (same siblings). Otherwise the root is returned unchanged."""
    with cs.gadget("leaf_update"):
        digits = synthesize_key_digits(cs, key, shape)
        old = synthesize_path_root(cs, leaf_before, digits, path)
        new = synthesize_path_root(cs, leaf_after, digits, path)
        # membership of the leaf before
        cs.enforce(uses, cs.as_lc(old) - root, 0)
        return cs.as_lc(root) + mul(cs, uses, cs.as_lc(new) - root)
