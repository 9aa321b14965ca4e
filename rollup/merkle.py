"""The node's sparse Merkle tree: batch root updates, proofs, bulk build from stored leaves.

The tree layout, hashing and proof formats are the verifier's (`verifier.merkle`): this module
only stores nodes and answers queries. Two trees share one API and one test suite:

- `PlainSparseMerkleTree`, the reference: stores every non-empty node, updates leaf by leaf.
- `SparseMerkleTree`, the fast one: updates a batch level by level (each shared upper node hashed
  once), and stores only the nodes it cannot cheaply recompute (see below), so that 100k random
  keys in a depth-32 tree take tens of MB instead of hundreds.

Nodes are addressed by one int, heap-style: node (level, index) of a depth-d tree has the id
2**(d - level) + index, so the root is 1, the parent of g is g >> 1 and its sibling is g ^ 1.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Self

from verifier.merkle import (
    EMPTY_LEAF,
    MAX_DEPTH,
    WORD_BYTES,
    Hash32,
    Key,
    MerkleProof,
    MultiProof,
    compute_bitmap,
    default_hashes,
    hash_pair,
)

DEFAULT_DEPTH = 32


class InvalidLeaf(ValueError):
    """A key outside the tree or a leaf that is not a 32-byte word."""


def check_tree_depth(depth: Any) -> None:
    # the depth is the number of levels above the leaves: keys must fit an EVM word
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidLeaf(f"tree depth must be an integer in 1..{MAX_DEPTH}, got {depth!r}")


def check_leaf_key(key: Any, depth: int) -> None:
    # a key is a plain integer addressing one of the 2**depth leaves
    if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key < (1 << depth):
        raise InvalidLeaf(f"key {key!r} outside the tree's range [0, 2**{depth})")


def check_leaf_value(key: int, leaf: Any) -> None:
    # leaves are keccak-256 digests computed by the caller: one 32-byte word
    if not isinstance(leaf, bytes) or len(leaf) != WORD_BYTES:
        raise InvalidLeaf(f"leaf of key {key} must be 32 bytes, got {leaf!r:.80}")


def compute_root_reference(leaves: Mapping[Key, Hash32], depth: int) -> Hash32:
    """Root by plain recursion over the key ranges: slow, obviously right, for tests."""
    check_tree_depth(depth)
    zero = default_hashes(depth)
    present = {}
    for key, leaf in leaves.items():
        check_leaf_key(key, depth)
        check_leaf_value(key, leaf)
        if leaf != EMPTY_LEAF:
            present[key] = leaf

    def compute_node(level: int, index: int, keys: list[int]) -> Hash32:
        if not keys:
            return zero[level]
        if level == 0:
            return present[index]
        middle = (2 * index + 1) << (level - 1)  # first key of the right child
        left = [k for k in keys if k < middle]
        right = [k for k in keys if k >= middle]
        return hash_pair(
            compute_node(level - 1, 2 * index, left), compute_node(level - 1, 2 * index + 1, right)
        )

    return compute_node(depth, 0, sorted(present))


class _TreeBase:
    """What both trees share: leaf storage, queries, proof construction."""

    def __init__(self, depth: int = DEFAULT_DEPTH) -> None:
        check_tree_depth(depth)
        self.depth = depth
        self.zero = default_hashes(depth)
        self._leaves: dict[Key, Hash32] = {}
        self._root: Hash32 = self.zero[depth]

    # --- to be provided by each tree ---
    def get_node_hash(self, level: int, index: int) -> Hash32:
        raise NotImplementedError

    def update(self, updates: Mapping[Key, Hash32]) -> Hash32:
        raise NotImplementedError

    def copy(self) -> Self:
        """An independent snapshot (node values are immutable bytes: only the dicts are copied)."""
        other = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, dict):
                setattr(other, name, dict(value))
        return other

    # --- queries ---
    @property
    def root(self) -> Hash32:
        return self._root

    def get(self, key: Key) -> Hash32:
        """The leaf at `key`, EMPTY_LEAF if none."""
        check_leaf_key(key, self.depth)
        return self._leaves.get(key, EMPTY_LEAF)

    def __len__(self) -> int:
        return len(self._leaves)

    def __contains__(self, key: object) -> bool:
        return key in self._leaves

    def __iter__(self) -> Iterator[Key]:
        """Keys of the non-empty leaves, ascending."""
        return iter(sorted(self._leaves))

    def items(self) -> Iterator[tuple[Key, Hash32]]:
        """(key, leaf) of the non-empty leaves, ascending by key."""
        leaves = self._leaves
        return ((key, leaves[key]) for key in sorted(leaves))

    def get_changes(self, updates: Mapping[Key, Hash32]) -> dict[Key, Hash32]:
        """The updates that change a leaf, checked (EMPTY_LEAF deletes)."""
        changes = {}
        for key, leaf in updates.items():
            check_leaf_key(key, self.depth)
            check_leaf_value(key, leaf)
            if self._leaves.get(key, EMPTY_LEAF) != leaf:
                changes[key] = leaf
        return changes

    def apply_leaf_changes(self, changes: Mapping[Key, Hash32]) -> None:
        for key, leaf in changes.items():
            if leaf == EMPTY_LEAF:
                del self._leaves[key]
            else:
                self._leaves[key] = leaf

    # --- proofs ---
    def prove(self, key: Key) -> MerkleProof:
        """Proof of the leaf at `key` (of its absence if empty)."""
        check_leaf_key(key, self.depth)
        siblings = tuple(
            self.get_node_hash(level, (key >> level) ^ 1) for level in range(self.depth)
        )
        return MerkleProof(depth=self.depth, key=key, siblings=siblings)

    def prove_many(self, keys: Iterable[Key]) -> MultiProof:
        """One multiproof for a set of keys (the same walk as the verifier's, emitting slots)."""
        wanted = set(keys)
        for key in wanted:
            check_leaf_key(key, self.depth)
        ordered = sorted(wanted)
        bits: list[bool] = []
        siblings: list[Hash32] = []

        def emit(sibling: Hash32, default: Hash32) -> None:
            bits.append(sibling != default)
            if sibling != default:
                siblings.append(sibling)

        if not ordered:
            emit(self._root, self.zero[self.depth])
        indices = ordered
        for level in range(self.depth):
            parents = []
            i = 0
            while i < len(indices):
                index = indices[i]
                if not index & 1 and i + 1 < len(indices) and indices[i + 1] == index + 1:
                    i += 2
                else:
                    emit(self.get_node_hash(level, index ^ 1), self.zero[level])
                    i += 1
                parents.append(index >> 1)
            indices = parents
        return MultiProof(
            depth=self.depth,
            keys=tuple(ordered),
            bitmap=compute_bitmap(bits),
            siblings=tuple(siblings),
        )


class PlainSparseMerkleTree(_TreeBase):
    """Reference tree: every non-empty node stored, every leaf's path rehashed on its own."""

    def __init__(self, depth: int = DEFAULT_DEPTH) -> None:
        super().__init__(depth)
        self._nodes: dict[int, Hash32] = {}  # heap id -> hash, levels 1..depth, non-empty only

    @classmethod
    def from_leaves(
        cls, leaves: Mapping[Key, Hash32], depth: int = DEFAULT_DEPTH
    ) -> PlainSparseMerkleTree:
        tree = cls(depth)
        tree.update(leaves)
        return tree

    def get_node_hash(self, level: int, index: int) -> Hash32:
        if level == 0:
            return self._leaves.get(index, EMPTY_LEAF)
        return self._nodes.get((1 << (self.depth - level)) | index, self.zero[level])

    def update(self, updates: Mapping[Key, Hash32]) -> Hash32:
        changes = self.get_changes(updates)
        self.apply_leaf_changes(changes)
        for key in changes:
            self.process_path(key)
        return self._root

    def process_path(self, key: Key) -> None:
        node = self._leaves.get(key, EMPTY_LEAF)
        for level in range(self.depth):
            index = key >> level
            sibling = self.get_node_hash(level, index ^ 1)
            node = hash_pair(sibling, node) if index & 1 else hash_pair(node, sibling)
            parent_id = (1 << (self.depth - level - 1)) | (index >> 1)
            if node == self.zero[level + 1]:
                self._nodes.pop(parent_id, None)
            else:
                self._nodes[parent_id] = node
        self._root = node


# A node's summary during a rehash: how many leaves it holds (0, 1, or 2 meaning "two or more"),
# the key of its leaf when it holds exactly one (else -1), and its hash.
_NodeInfo = tuple[int, int, Hash32]


class SparseMerkleTree(_TreeBase):
    """Fast tree: batch updates level by level, compact node storage.

    Storage rule. A node of level >= 1 is stored (id -> hash in `_nodes`) iff its subtree holds
    two or more leaves, or exactly one leaf and it is the root or its parent holds two or more.
    For the stored one-leaf nodes ("lone" nodes) `_lone` maps id -> the leaf's key. Below a lone
    node nothing is stored: that hash is a chain from the leaf through default siblings,
    recomputed on demand (only proofs of keys near that leaf need it). Consequences used below:
    a node that is not stored is either empty, or holds one leaf and its lowest stored ancestor
    is the lone node of that leaf.
    """

    def __init__(self, depth: int = DEFAULT_DEPTH) -> None:
        super().__init__(depth)
        self._nodes: dict[int, Hash32] = {}
        self._lone: dict[int, Key] = {}

    @classmethod
    def from_leaves(
        cls, leaves: Mapping[Key, Hash32], depth: int = DEFAULT_DEPTH
    ) -> SparseMerkleTree:
        """Bulk build: one bottom-up pass over the sorted leaves (the node's startup path)."""
        tree = cls(depth)
        changes = tree.get_changes(leaves)
        tree.apply_leaf_changes(changes)
        if changes:
            tree.process_rehash(sorted(changes))
        return tree

    @property
    def stored_node_count(self) -> int:
        return len(self._nodes)

    # --- reading nodes ---
    def get_node_hash(self, level: int, index: int) -> Hash32:
        if level == 0:
            return self._leaves.get(index, EMPTY_LEAF)
        node_id = (1 << (self.depth - level)) | index
        stored = self._nodes.get(node_id)
        if stored is not None:
            return stored
        ancestor = self.get_lowest_stored_ancestor(node_id)
        key = self._lone.get(ancestor, -1)
        if key < 0 or key >> level != index:
            return self.zero[level]
        return self.compute_lone_hash(key, level)

    def get_lowest_stored_ancestor(self, node_id: int) -> int:
        """Id of the nearest stored strict ancestor, 0 if none (the tree is empty)."""
        ancestor = node_id >> 1
        nodes = self._nodes
        while ancestor and ancestor not in nodes:
            ancestor >>= 1
        return ancestor

    def compute_lone_hash(self, key: Key, level: int) -> Hash32:
        """Hash of the level-`level` node holding only the leaf at `key`."""
        node = self._leaves[key]
        zero = self.zero
        for lower in range(level):
            node = (
                hash_pair(zero[lower], node) if (key >> lower) & 1 else hash_pair(node, zero[lower])
            )
        return node

    def get_stored_info(self, level: int, index: int) -> _NodeInfo:
        """Summary of a node the batch does not touch (stored or empty: see `update`)."""
        if level == 0:
            leaf = self._leaves.get(index)
            return (0, -1, EMPTY_LEAF) if leaf is None else (1, index, leaf)
        node_id = (1 << (self.depth - level)) | index
        stored = self._nodes.get(node_id)
        if stored is None:
            return (0, -1, self.zero[level])
        key = self._lone.get(node_id)
        return (2, -1, stored) if key is None else (1, key, stored)

    # --- writing ---
    def update(self, updates: Mapping[Key, Hash32]) -> Hash32:
        """Set a batch of leaves (EMPTY_LEAF deletes) and return the new root.

        Rehashes the touched keys' paths level by level, each shared node once. Before that, a
        key that lands under a lone node of another leaf pulls that leaf into the rehash: then
        every untouched child of a rehashed node is stored or empty, and is read in O(1).
        """
        changes = self.get_changes(updates)
        if not changes:
            return self._root
        touched = set(changes)
        for key in changes:
            neighbour = self.get_lone_neighbour(key)
            if neighbour >= 0:
                touched.add(neighbour)
        self.apply_leaf_changes(changes)
        self.process_rehash(sorted(touched))
        return self._root

    def get_lone_neighbour(self, key: Key) -> Key:
        """Key of the other leaf whose lone node lies on `key`'s path, -1 if none."""
        ancestor = self.get_lowest_stored_ancestor((1 << self.depth) | key)
        neighbour = self._lone.get(ancestor, -1)
        return -1 if neighbour == key else neighbour

    def process_rehash(self, keys: list[Key]) -> None:
        """Recompute and store the nodes on the paths of the sorted `keys`, bottom-up."""
        leaves = self._leaves
        indices = keys
        infos: list[_NodeInfo] = [
            (1, key, leaves[key]) if key in leaves else (0, -1, EMPTY_LEAF) for key in keys
        ]
        for level in range(1, self.depth + 1):
            indices, infos = self.process_level(level, indices, infos)
        count, key, root = infos[0]
        self.process_keep(1, count, key, root)  # the root is stored whenever non-empty
        self._root = root

    def process_level(
        self, level: int, indices: list[int], infos: list[_NodeInfo]
    ) -> tuple[list[int], list[_NodeInfo]]:
        """Parents (at `level`) of the sorted rehashed children; stores the children.

        The hot loop of updates and of the bulk build: the storage rule is inlined for the
        common case of a parent with at most one leaf (a call costs as much as a hash here).
        """
        child_level = level - 1
        child_base = 1 << (self.depth - child_level)
        nodes, lone = self._nodes, self._lone
        read_sibling, keep = self.get_stored_info, self.process_keep
        parent_indices: list[int] = []
        parent_infos: list[_NodeInfo] = []
        i = 0
        n = len(indices)
        while i < n:
            index = indices[i]
            if not index & 1 and i + 1 < n and indices[i + 1] == index + 1:
                (lc, lk, lh), (rc, rk, rh) = infos[i], infos[i + 1]
                i += 2
            elif index & 1:
                (lc, lk, lh), (rc, rk, rh) = read_sibling(child_level, index ^ 1), infos[i]
                i += 1
            else:
                (lc, lk, lh), (rc, rk, rh) = infos[i], read_sibling(child_level, index ^ 1)
                i += 1
            count = lc + rc
            node = hash_pair(lh, rh)
            if count == 1:
                parent_infos.append((1, lk if lc else rk, node))
            else:
                parent_infos.append((2 if count else 0, -1, node))
            parent_indices.append(index >> 1)
            if not child_level:
                continue  # leaves live in _leaves only
            left_id = child_base | (index & ~1)
            if count >= 2:  # a parent of two or more leaves: its non-empty children are stored
                keep(left_id, lc, lk, lh)
                keep(left_id | 1, rc, rk, rh)
                continue
            for node_id in (left_id, left_id | 1):  # a parent of at most one leaf: none is
                if node_id in nodes:
                    del nodes[node_id]
                    lone.pop(node_id, None)
        return parent_indices, parent_infos

    def process_keep(self, node_id: int, count: int, key: Key, node: Hash32) -> None:
        """Store a child of a node of two or more leaves (or the root): kept iff non-empty."""
        if not count:
            if self._nodes.pop(node_id, None) is not None:
                self._lone.pop(node_id, None)
            return
        self._nodes[node_id] = node
        if count == 1:
            self._lone[node_id] = key
        else:
            self._lone.pop(node_id, None)
