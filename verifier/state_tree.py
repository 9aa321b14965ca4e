"""The v3 state commitment: leaves as field elements, a Poseidon sparse Merkle tree, the state root.

`state_root = Poseidon(accounts_root, markets_hash, globals_hash)` (docs/v3.md):

- accounts: a sparse Merkle tree of `TreeShape(depth, arity)` keyed by account id; a node is the
  Poseidon hash of its `arity` children; an absent account is the leaf 0, an empty subtree of
  level l is `empty[l]` (`empty[0] = 0`, `empty[l + 1] = Poseidon(empty[l] x arity)`);
- an account leaf is `Poseidon([address, collateral, nonce, l2_key, positions_hash, orders_hash])` with
  `positions_hash = hash_fields([(size, cost, funding) per instrument of the table])`: `l2_key`
  is the registered L2 key's id (0 before a registration, verifier/l2auth.py), positions are dense
  by instrument (the genesis instruments sorted by id), 0 where none is held, and
  `orders_hash = hash_fields([(order nonce, filled) per order slot])` (the orders the account
  filled, `verifier.wire.ORDER_SLOTS` slots, 0 where unused). The leaf is one 6-input Poseidon so
  that the escape hatch proves a leaf on chain with the 6-input Poseidon contract (circomlibjs
  generates 1..6 inputs) and the two inner hashes as opaque words;
- `markets_hash` is `hash_fields` of every instrument's fields, in table order, concatenated;
- `globals_hash` is `hash_fields` of the globals.

Signed values enter as `v mod r`. `hash_fields` hashes up to 16 values with one Poseidon and longer
vectors in chunks of 16 whose hashes are hashed again: every vector here has a length fixed by the
genesis, so no length tag is needed. The circuit (prover/circuits) computes exactly these.

A key's child index at level l (0 = the leaves' parents) is its l-th base-`arity` digit, least
significant first. A path is, per level from the leaves up, the `arity - 1` siblings in child order
with the node itself left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

from verifier.curve import BN254
from verifier.encoding import AccountLeaf, GlobalsLeaf, InstrumentLeaf, _get_address_int
from verifier.poseidon import poseidon, poseidon2
from verifier.wire import ORDER_SLOTS, Genesis

R = BN254.r
CHUNK = 16  # Poseidon's widest circomlib instance hashes 16 inputs
ACCOUNT_TREE_ARITY = 4  # by measurement (docs/v3.md, docs/poseidon.md)
EMPTY_ACCOUNT = 0  # the leaf value of an absent account
GENESIS_LIMB_BITS = 128  # the 256-bit genesis hash enters as two limbs

Fr = int
Path = tuple[tuple[Fr, ...], ...]  # per level, the arity - 1 siblings


class InvalidPath(ValueError):
    """A Merkle path or multiproof that does not have the tree's shape."""


@dataclass(frozen=True)
class TreeShape:
    """The accounts tree: `arity ** depth` leaves."""

    depth: int
    arity: int = 2

    def __post_init__(self) -> None:
        # a power of two that one Poseidon instance hashes, and a depth that fits account ids
        if self.arity not in (2, 4, 8, 16):
            raise ValueError(f"tree arity must be 2, 4, 8 or 16, got {self.arity}")
        if not 1 <= self.depth * self.digit_bits <= 32:
            raise ValueError(f"a tree of depth {self.depth} and arity {self.arity} must address 2..2^32 leaves")

    @property
    def digit_bits(self) -> int:
        return self.arity.bit_length() - 1

    @property
    def capacity(self) -> int:
        return self.arity**self.depth

    def get_child_index(self, key: int, level: int) -> int:
        return (key >> (level * self.digit_bits)) & (self.arity - 1)


POSITIONS_CACHE_SIZE = 1 << 15  # recent accounts' positions hashes (about 30 ints each)


def hash_children(children: Sequence[Fr]) -> Fr:
    """A tree node: the Poseidon hash of its children (the two-input fast path for binary trees)."""
    if len(children) == 2:
        return poseidon2(children[0], children[1])
    return poseidon(children)


def hash_fields(values: Sequence[int]) -> Fr:
    """Poseidon of a fixed-length vector of field elements (chunks of 16, hashed again)."""
    items = [v % R for v in values]
    # nothing to hash is a caller's bug: every leaf has at least its header
    if not items:
        raise ValueError("hash_fields needs at least one value")
    while len(items) > CHUNK:
        items = [poseidon(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]
    return poseidon(items)


@lru_cache(maxsize=None)
def compute_empty_hashes(shape: TreeShape) -> tuple[Fr, ...]:
    """`empty[l]`: the root of an empty subtree of height l, for l = 0 .. depth."""
    out = [EMPTY_ACCOUNT]
    for _ in range(shape.depth):
        out.append(hash_children([out[-1]] * shape.arity))
    return tuple(out)


def get_tree_shape(genesis: "Genesis") -> TreeShape:
    """The accounts tree a genesis names."""
    return TreeShape(genesis.account_tree_depth, ACCOUNT_TREE_ARITY)


# --- Leaves as field elements --------------------------------------------------------------------


def get_instrument_table(instrument_ids: Iterable[int]) -> tuple[int, ...]:
    """The genesis instruments in table order (sorted by id): the positions' and the markets' order."""
    return tuple(sorted(instrument_ids))


def compute_account_fields(leaf: AccountLeaf, table: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """`([address, collateral, nonce, l2_key], [(size, cost, funding) for every instrument of the
    table], [(order nonce, filled) for every order slot])`: the leaf's header, its positions and
    its order slots, dense."""
    held = {p.instrument: p for p in leaf.positions}
    # positions only in instruments of the genesis table
    unknown = set(held) - set(table)
    if unknown:
        raise ValueError(f"account holds positions in instruments {sorted(unknown)} outside the table")
    positions: list[int] = []
    for instrument in table:
        p = held.get(instrument)
        positions += [p.size, p.cost, p.funding] if p else [0, 0, 0]
    return [_get_address_int(leaf.address), leaf.collateral, leaf.nonce, leaf.l2_key], positions, get_dense_orders(leaf.orders)


def get_dense_orders(orders: Iterable[Sequence[int]]) -> list[int]:
    """(nonce, filled) of every order slot in slot order, (0, 0) where unused, from (slot, nonce,
    filled) triples."""
    dense = [0] * (2 * ORDER_SLOTS)
    for slot, nonce, filled in orders:
        dense[2 * slot], dense[2 * slot + 1] = nonce, filled
    return dense


@lru_cache(maxsize=POSITIONS_CACHE_SIZE)
def _hash_dense(values: tuple[int, ...]) -> Fr:
    """A leaf's dense positions or order slots (recent ones cached: most accounts share the empty ones)."""
    return hash_fields(values)


def hash_account(header: Sequence[int], positions: Sequence[int], orders: Sequence[int]) -> Fr:
    """An account's leaf value from its header, dense positions and dense order slots:
    Poseidon(address, collateral, nonce, l2_key, positions hash, orders hash). The two inner
    hashes are cached: a deposit, transfer or withdrawal changes the header only, and every
    account without positions (or without fills) shares one."""
    positions_hash = _hash_dense(tuple(positions)) if positions else 0
    return poseidon([*(v % R for v in header), positions_hash, _hash_dense(tuple(orders))])


def compute_account_hash(leaf: AccountLeaf | None, table: Sequence[int]) -> Fr:
    """The account's leaf value in the tree (0 if the account does not exist)."""
    if leaf is None:
        return EMPTY_ACCOUNT
    return hash_account(*compute_account_fields(leaf, table))


def compute_instrument_fields(leaf: InstrumentLeaf, n_scenarios: int) -> list[int]:
    """`[has_mark, mark, funding_index, open_interest, has_settlement, settlement, has_risk]` then
    the risk array (zeros until the oracle publishes one)."""
    risk = list(leaf.risk_array)
    # risk arrays have the genesis scenario count, or none yet
    if risk and len(risk) != n_scenarios:
        raise ValueError(f"instrument {leaf.id} has {len(risk)} risk values, the genesis {n_scenarios}")
    return [
        int(leaf.mark is not None),
        leaf.mark or 0,
        leaf.funding_index,
        leaf.open_interest,
        int(leaf.settlement is not None),
        leaf.settlement or 0,
        int(bool(risk)),
        *(risk or [0] * n_scenarios),
    ]


INSTRUMENT_HEADER_FIELDS = 7  # the fields before the risk array


def compute_markets_hash(instruments: Mapping[int, InstrumentLeaf], table: Sequence[int], n_scenarios: int) -> Fr:
    # every instrument of the table, and nothing else
    if set(instruments) != set(table):
        raise ValueError(f"markets need exactly the table's instruments {list(table)}, got {sorted(instruments)}")
    fields: list[int] = []
    for instrument in table:
        fields += compute_instrument_fields(instruments[instrument], n_scenarios)
    return hash_fields(fields)


def compute_globals_fields(leaf: GlobalsLeaf) -> list[int]:
    """`[fee_pool, insurance_fund, deposit_count, oracle_time, genesis_hash_high, genesis_hash_low]`."""
    genesis = int.from_bytes(leaf.genesis_hash, "big")
    low = genesis & ((1 << GENESIS_LIMB_BITS) - 1)
    return [leaf.fee_pool, leaf.insurance_fund, leaf.deposit_count, leaf.oracle_time, genesis >> GENESIS_LIMB_BITS, low]


def compute_globals_hash(leaf: GlobalsLeaf) -> Fr:
    return hash_fields(compute_globals_fields(leaf))


def compute_state_root(accounts_root: Fr, markets_hash: Fr, globals_hash: Fr) -> Fr:
    return poseidon([accounts_root, markets_hash, globals_hash])


# --- Paths -----------------------------------------------------------------------------------------


def check_key(key: object, shape: TreeShape) -> None:
    # a key addresses one leaf of the tree
    if key.__class__ is not int or not 0 <= key < shape.capacity:  # type: ignore[operator]
        raise InvalidPath(f"key {key!r} outside the tree's range [0, {shape.capacity})")


def check_path(path: Path, shape: TreeShape) -> None:
    # one entry per level, arity - 1 field elements each
    if len(path) != shape.depth:
        raise InvalidPath(f"a path has {shape.depth} levels, got {len(path)}")
    for level, siblings in enumerate(path):
        if len(siblings) != shape.arity - 1:
            raise InvalidPath(f"level {level} has {len(siblings)} siblings, the tree {shape.arity - 1}")
        for s in siblings:
            if s.__class__ is not int or not 0 <= s < R:
                raise InvalidPath(f"level {level}: sibling {s!r} is not a field element")


def compute_path_root(key: int, leaf: Fr, path: Path, shape: TreeShape) -> Fr:
    """The root a leaf value and its path give."""
    check_key(key, shape)
    check_path(path, shape)
    node = leaf
    for level, siblings in enumerate(path):
        index = shape.get_child_index(key, level)
        children = list(siblings)
        children.insert(index, node)
        node = hash_children(children)
    return node


def verify_path(root: Fr, key: int, leaf: Fr, path: Path, shape: TreeShape) -> bool:
    return compute_path_root(key, leaf, path, shape) == root


def compute_root_reference(leaves: Mapping[int, Fr], shape: TreeShape) -> Fr:
    """The root by plain recursion over the key ranges: slow, obviously right, for tests."""
    empty = compute_empty_hashes(shape)
    present = {}
    for key, value in leaves.items():
        check_key(key, shape)
        if value != EMPTY_ACCOUNT:
            present[key] = value

    def node(level: int, first: int, keys: list[int]) -> Fr:
        if not keys:
            return empty[level]
        if level == 0:
            return present[first]
        span = shape.arity ** (level - 1)
        children = []
        for c in range(shape.arity):
            start = first + c * span
            children.append(node(level - 1, start, [k for k in keys if start <= k < start + span]))
        return hash_children(children)

    return node(shape.depth, 0, sorted(present))


# --- Multiproofs: many leaves against one root ----------------------------------------------------


def get_multiproof_positions(keys: Iterable[int], shape: TreeShape) -> list[tuple[int, int]]:
    """(level, index) of every node a multiproof of `keys` carries, in the order it carries them:
    level by level from the leaves up, by index; the nodes not derivable from the keys' subtrees."""
    known = sorted(set(keys))
    for key in known:
        check_key(key, shape)
    out = []
    for level in range(shape.depth):
        parents = sorted({k // shape.arity for k in known})
        known_set = set(known)
        for parent in parents:
            for child in range(parent * shape.arity, (parent + 1) * shape.arity):
                if child not in known_set:
                    out.append((level, child))
        known = parents
    return out


def compute_multiproof_root(leaves: Mapping[int, Fr], nodes: Sequence[Fr], shape: TreeShape) -> Fr:
    """The root from leaf values and the multiproof's nodes (`get_multiproof_positions` order);
    every node must be used and each must be a field element."""
    positions = get_multiproof_positions(leaves, shape)
    # exactly one value per carried node
    if len(nodes) != len(positions):
        raise InvalidPath(f"a multiproof of these keys carries {len(positions)} nodes, got {len(nodes)}")
    for value in nodes:
        if value.__class__ is not int or not 0 <= value < R:
            raise InvalidPath(f"multiproof node {value!r} is not a field element")
    if not leaves:
        # no leaf: the proof is the root itself would be a different format; refuse
        raise InvalidPath("a multiproof needs at least one leaf")
    level_values = {k: leaves[k] for k in leaves}
    at = 0
    for level in range(shape.depth):
        parents = sorted({k // shape.arity for k in level_values})
        new_values = {}
        for parent in parents:
            children = []
            for child in range(parent * shape.arity, (parent + 1) * shape.arity):
                if child in level_values:
                    children.append(level_values[child])
                else:
                    children.append(nodes[at])
                    at += 1
            new_values[parent] = hash_children(children)
        level_values = new_values
    return level_values[0]
