"""The node's v3 accounts tree: a Poseidon sparse Merkle tree with batch updates, paths, multiproofs.

Hashing, shape, path and multiproof formats are the verifier's (`verifier.state_tree`); this module
stores nodes and answers queries. Two trees, one API, one test suite:

- `PlainPoseidonTree`, the reference: every leaf update rehashes its whole path.
- `PoseidonTree`, the fast one: a batch of leaf changes is applied level by level, so a node
  shared by several changed leaves is hashed once (a batch touching k random leaves of a depth-d
  tree hashes about k x (d - log_arity k) + k nodes instead of k x d).

Nodes are kept per level in a dict `index -> value`, only where they differ from the empty
subtree's hash, so memory follows the accounts, not the tree's capacity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from verifier.state_tree import (
    EMPTY_ACCOUNT,
    Fr,
    Path,
    TreeShape,
    check_key,
    compute_empty_hashes,
    get_multiproof_positions,
    hash_children,
)


class _TreeBase:
    def __init__(self, shape: TreeShape) -> None:
        self.shape = shape
        self.empty = compute_empty_hashes(shape)
        self.levels: list[dict[int, Fr]] = [{} for _ in range(shape.depth + 1)]  # level 0: leaves

    @property
    def root(self) -> Fr:
        return self.get_node(self.shape.depth, 0)

    def get_node(self, level: int, index: int) -> Fr:
        return self.levels[level].get(index, self.empty[level])

    def get(self, key: int) -> Fr:
        check_key(key, self.shape)
        return self.get_node(0, key)

    def _store(self, level: int, index: int, value: Fr) -> None:
        if value == self.empty[level]:
            self.levels[level].pop(index, None)
        else:
            self.levels[level][index] = value

    def _hash_parent(self, level: int, parent: int) -> Fr:
        """The node `parent` of level + 1 from its children on `level`."""
        arity = self.shape.arity
        nodes, default = self.levels[level], self.empty[level]
        return hash_children([nodes.get(c, default) for c in range(parent * arity, (parent + 1) * arity)])

    def get_path(self, key: int) -> Path:
        """Per level, the key's siblings in child order (itself left out)."""
        check_key(key, self.shape)
        arity = self.shape.arity
        path = []
        index = key
        for level in range(self.shape.depth):
            first = index - index % arity
            path.append(tuple(self.get_node(level, c) for c in range(first, first + arity) if c != index))
            index //= arity
        return tuple(path)

    def get_multiproof(self, keys: Iterable[int]) -> list[Fr]:
        """The nodes a verifier needs besides the leaves of `keys` (`get_multiproof_positions`)."""
        return [self.get_node(level, index) for level, index in get_multiproof_positions(keys, self.shape)]

    def leaves(self) -> dict[int, Fr]:
        return dict(self.levels[0])

    def update(self, changes: Mapping[int, Fr]) -> Fr:
        raise NotImplementedError

    @classmethod
    def from_leaves(cls, shape: TreeShape, leaves: Mapping[int, Fr]) -> "_TreeBase":
        tree = cls(shape)
        tree.update(leaves)
        return tree


class PlainPoseidonTree(_TreeBase):
    """Reference: each changed leaf rehashes its path, one after the other."""

    def update(self, changes: Mapping[int, Fr]) -> Fr:
        for key, value in changes.items():
            check_key(key, self.shape)
            self._store(0, key, value)
            index = key
            for level in range(self.shape.depth):
                parent = index // self.shape.arity
                self._store(level + 1, parent, self._hash_parent(level, parent))
                index = parent
        return self.root


class PoseidonTree(_TreeBase):
    """Fast: a batch of changes is applied level by level, each touched node hashed once."""

    def update(self, changes: Mapping[int, Fr]) -> Fr:
        for key in changes:
            check_key(key, self.shape)
        for key, value in changes.items():
            self._store(0, key, value)
        touched = set(changes)
        arity = self.shape.arity
        for level in range(self.shape.depth):
            parents = {index // arity for index in touched}
            for parent in parents:
                self._store(level + 1, parent, self._hash_parent(level, parent))
            touched = parents
        return self.root


TREES = {"plain": PlainPoseidonTree, "fast": PoseidonTree}
__all__ = ["EMPTY_ACCOUNT", "PlainPoseidonTree", "PoseidonTree", "TREES"]
