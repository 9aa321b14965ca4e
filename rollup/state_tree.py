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
from typing import Any
from dataclasses import dataclass

from verifier.encoding import GlobalsLeaf, InstrumentLeaf, decode_account_leaf, decode_globals_leaf, decode_instrument_leaf, decode_key
from verifier.state_tree import (
    Fr,
    Path,
    TreeShape,
    check_key,
    compute_account_fields,
    compute_account_hash,
    compute_empty_hashes,
    compute_globals_hash,
    compute_markets_hash,
    compute_state_root,
    get_instrument_table,
    get_multiproof_positions,
    hash_children,
    hash_fields,
)
from verifier.wire import Genesis


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
        self.update_subtrees(changes, self.shape.depth)
        return self.root

    def update_subtrees(self, changes: Mapping[int, Fr], top: int) -> dict[int, Fr]:
        """Apply leaf changes, rehashing only up to level `top`: the new roots of the touched
        subtrees of that height (index at level `top` -> value). A shard's tree
        (rollup/sharded.py) holds only its own subtrees: its levels above `top` mean nothing."""
        for key in changes:
            check_key(key, self.shape)
        for key, value in changes.items():
            self._store(0, key, value)
        touched = self._rehash(0, set(changes), top)
        return {index: self.get_node(top, index) for index in touched}

    def set_subtree_roots(self, level: int, nodes: Mapping[int, Fr]) -> Fr:
        """Install subtree roots computed elsewhere at `level` and rehash the levels above; the
        levels below are the caller's to bring up to date (`StateCommitment` keeps the leaf
        values pending until something reads them)."""
        for index, value in nodes.items():
            self._store(level, index, value)
        self._rehash(level, set(nodes), self.shape.depth)
        return self.root

    def _rehash(self, level: int, touched: set[int], top: int) -> set[int]:
        arity = self.shape.arity
        for lv in range(level, top):
            parents = {index // arity for index in touched}
            for parent in parents:
                self._store(lv + 1, parent, self._hash_parent(lv, parent))
            touched = parents
        return touched


TREES = {"plain": PlainPoseidonTree, "fast": PoseidonTree}


# --- The whole state commitment ----------------------------------------------------------------------


def compute_account_value(data: bytes, table: tuple[int, ...]) -> Fr:
    """An account's leaf value from its canonical leaf bytes (0 for an absent account)."""
    return compute_account_hash(decode_account_leaf(data) if data else None, table)


class StateCommitment:
    """The node's v3 root: the accounts tree plus the markets table and globals it hashes with them
    (`verifier.state_tree`). Accounts are given as leaf values (hashed by the caller, in parallel
    where it pays); instruments and globals as their canonical leaf bytes."""

    def __init__(self, genesis: Genesis, shape: TreeShape, tree_class: type[_TreeBase] = PoseidonTree) -> None:
        self.genesis = genesis
        self.shape = shape
        self.table = get_instrument_table(s.id for s in genesis.instruments)
        self._accounts = tree_class(shape)
        self._pending: dict[int, Fr] = {}  # leaf values below the subtree roots last installed
        self.instruments: dict[int, InstrumentLeaf] = {}
        self.globals: GlobalsLeaf | None = None
        self._markets_hash: Fr | None = None
        self._globals_hash: Fr | None = None

    @classmethod
    def from_leaves(cls, genesis: Genesis, shape: TreeShape, leaves: Mapping[int, bytes]) -> "StateCommitment":
        """From every stored leaf by state key (`verifier.encoding` keys and bytes)."""
        commitment = cls(genesis, shape)
        accounts = {}
        others = {}
        for key, data in leaves.items():
            kind, local = decode_key(key)
            if kind == "account":
                accounts[local] = compute_account_value(data, commitment.table)
            else:
                others[key] = data
        commitment.update(accounts, others)
        return commitment

    @property
    def accounts(self) -> _TreeBase:
        """The accounts tree, every level current: leaf values a sharded batch gave with its
        subtree roots (`update_from_subtrees`) are applied on first use, and must give the same
        root (a shard whose subtree roots disagree with its leaves is caught here)."""
        if self._pending:
            pending, self._pending = self._pending, {}
            root = self._accounts.root
            self._accounts.update(pending)
            if self._accounts.root != root:
                raise ValueError("the subtree roots installed by the last sharded batch disagree with its leaf values")
        return self._accounts

    def update(self, accounts: Mapping[int, Fr], leaves: Mapping[int, bytes]) -> Fr:
        """Apply new account values (by account id) and instrument / globals leaves (by key)."""
        self._update_others(leaves)
        if accounts:
            self.accounts.update(accounts)
        return self.root

    def update_from_subtrees(
        self, level: int, subtrees: Mapping[int, Fr], accounts: Mapping[int, Fr], leaves: Mapping[int, bytes]
    ) -> Fr:
        """As `update`, with the accounts tree's new nodes at `level` computed elsewhere (the
        shards' subtree roots): only the levels above are hashed here; `accounts` (the new leaf
        values below those roots) are kept and applied when the tree is next read or updated."""
        tree = self.accounts  # earlier pending values first
        self._update_others(leaves)
        if not hasattr(tree, "set_subtree_roots"):
            raise TypeError(f"{type(tree).__name__} cannot take subtree roots")
        tree.set_subtree_roots(level, subtrees)
        self._pending = dict(accounts)
        return self.root

    def _update_others(self, leaves: Mapping[int, bytes]) -> None:
        for key, data in leaves.items():
            kind, local = decode_key(key)
            if kind == "instrument":
                self.instruments[local] = decode_instrument_leaf(data)
                self._markets_hash = None
            elif kind == "globals":
                self.globals = decode_globals_leaf(data)
                self._globals_hash = None
            else:
                raise ValueError(f"account leaves are given as values by account id, not bytes at key {key}")

    @property
    def root(self) -> Fr:
        if self._markets_hash is None:
            self._markets_hash = compute_markets_hash(self.instruments, self.table, self.genesis.risk.n_scenarios)
        if self._globals_hash is None:
            # the globals exist from genesis on
            if self.globals is None:
                raise ValueError("the state has no globals leaf")
            self._globals_hash = compute_globals_hash(self.globals)
        return compute_state_root(self._accounts.root, self._markets_hash, self._globals_hash)

    @property
    def root_bytes(self) -> bytes:
        return self.root.to_bytes(32, "big")

    def get_account_proof(self, account_id: int) -> dict:
        """What proves an account's leaf against the root (the escape hatch's exit): the leaf value,
        its path (per level the 3 siblings), and the markets and globals hashes beside the accounts
        root; field elements as decimal strings (as snarkjs writes them)."""
        root = self.root  # fills the cached hashes
        return {
            "account": account_id,
            "leaf": str(self.accounts.get(account_id)),
            "path": [[str(s) for s in level] for level in self.accounts.get_path(account_id)],
            "accounts_root": str(self.accounts.root),
            "markets_hash": str(self._markets_hash),
            "globals_hash": str(self._globals_hash),
            "root": str(root),
        }


@dataclass(frozen=True)
class AccountOpening:
    """An account's leaf opened against a state root, as the L1 escape hatch takes it: the leaf's
    fields (address, collateral, nonce, positions hash; None for an absent account), its path
    (per level the arity - 1 siblings), and the markets and globals hashes beside the accounts root."""

    account: int
    fields: tuple[int, int, int, int, int, int] | None  # address, collateral, nonce, L2 key id, positions hash, orders hash
    path: Path
    markets_hash: Fr
    globals_hash: Fr
    root: Fr


def get_account_opening(commitment: StateCommitment, account: int, leaf: bytes) -> AccountOpening:
    """`account`'s opening in `commitment`, from its canonical leaf bytes (b"" if absent)."""
    root = commitment.root  # fills the cached hashes
    fields = None
    if leaf:
        header, positions, orders = compute_account_fields(decode_account_leaf(leaf), commitment.table)
        address, collateral, nonce, l2_key = header
        fields = (address, collateral, nonce, l2_key, hash_fields(positions) if positions else 0, hash_fields(orders))  # as hash_account
    path = commitment.accounts.get_path(account)
    return AccountOpening(account, fields, path, commitment._markets_hash, commitment._globals_hash, root)  # type: ignore[arg-type]


def get_settled_opening(store: Any, genesis: Genesis, account: int, batch: int, l1_root: int | None = None) -> AccountOpening:
    """`account`'s opening as the state stood after `batch` (the last one settled on L1, not the
    node's newest), from the node's store; the rebuilt root is checked against the batch's and,
    when given, the root the L1 stores (a node whose store diverged from the chain would send an
    opening the contract refuses)."""
    from rollup.storage import get_leaves_before
    from verifier.encoding import account_key
    from verifier.state_tree import get_tree_shape

    latest = store.latest_batch()
    newest = latest.number if latest else 0
    # the node knows that batch
    if not 0 <= batch <= newest:
        raise ValueError(f"the node has no batch {batch} (its latest is {newest})")
    leaves = get_leaves_before(store, batch + 1)
    commitment = StateCommitment.from_leaves(genesis, get_tree_shape(genesis), leaves)
    expected = store.get_batch(batch).new_root if batch else bytes.fromhex(store.get_meta("genesis_root") or "")
    # the stored leaves rebuild the batch's root (else the opening would fail on chain)
    if commitment.root_bytes != expected:
        raise ValueError(f"the node's leaves do not rebuild batch {batch}'s root: its store is inconsistent")
    if l1_root is not None and commitment.root != l1_root:
        raise ValueError(f"the node's state after batch {batch} has root 0x{commitment.root_bytes.hex()}, the L1 stores 0x{l1_root:064x}")
    return get_account_opening(commitment, account, leaves.get(account_key(account), b""))
