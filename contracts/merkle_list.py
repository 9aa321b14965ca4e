"""The withdrawal list tree: a plain binary Merkle tree over a list, the reference of
`contracts/vy/merkle.vy`'s `compute_list_root` and `compute_list_root_from_proof`.

Definition. A list of n 32-byte leaves has depth d = the smallest d with 2**d >= n (0 for n <= 1).
The leaves are padded with 32 zero bytes to width 2**d; every internal node is
keccak256(left || right), so the root of one leaf is the leaf and the root of the empty list is 32
zero bytes. A proof of position i is its d siblings, lowest level first; bit l of i says whether the
level-l node is a right (1) or left (0) child. A claim must check that its proof has exactly d
siblings for the list it committed to (a shorter proof would present an inner node as a leaf), and
a leaf is a keccak digest of the withdrawal, never 32 zero bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from verifier.merkle import EMPTY_LEAF, Hash32, InvalidProof, check_word, hash_pair

MAX_LIST = 512  # merkle.vy's MAX_LIST: leaves per list the contract hashes in one call
MAX_LIST_DEPTH = 16  # merkle.vy's MAX_LIST_DEPTH: siblings per proof


def compute_list_depth(count: int) -> int:
    """Levels of the list tree of `count` leaves."""
    # a list has a non-negative length
    if count < 0:
        raise InvalidProof(f"a list has a non-negative length, got {count}")
    return max(count - 1, 0).bit_length()


def compute_list_levels(leaves: Sequence[Hash32]) -> list[list[Hash32]]:
    """Every level of the tree, leaves (padded) first, the root's one-node level last."""
    for i, leaf in enumerate(leaves):
        check_word(leaf, f"leaf {i}")
    width = 1 << compute_list_depth(len(leaves))
    levels = [list(leaves) + [EMPTY_LEAF] * (width - len(leaves))]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([hash_pair(below[i], below[i + 1]) for i in range(0, len(below), 2)])
    return levels


def compute_list_root(leaves: Sequence[Hash32]) -> Hash32:
    return compute_list_levels(leaves)[-1][0]


def compute_list_proof(leaves: Sequence[Hash32], index: int) -> list[Hash32]:
    """The siblings of position `index`, lowest level first."""
    # the position is in the list
    if not 0 <= index < len(leaves):
        raise InvalidProof(f"index {index} outside a list of {len(leaves)} leaves")
    levels = compute_list_levels(leaves)
    return [level[(index >> depth) ^ 1] for depth, level in enumerate(levels[:-1])]


def compute_list_root_from_proof(leaf: Hash32, index: int, proof: Sequence[Hash32]) -> Hash32:
    """The root implied by `leaf` at `index` and its siblings (lowest level first)."""
    check_word(leaf, "leaf")
    # the index addresses one of the 2**len(proof) positions
    if not 0 <= index < 1 << len(proof):
        raise InvalidProof(f"index {index} outside a tree of {len(proof)} levels")
    node = leaf
    for level, sibling in enumerate(proof):
        check_word(sibling, f"sibling at level {level}")
        node = hash_pair(sibling, node) if (index >> level) & 1 else hash_pair(node, sibling)
    return node
