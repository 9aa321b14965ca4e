"""Sparse Merkle tree commitments, the checking half: hashes, single proofs and multiproofs.

Tree layout (the node, this verifier and the L1 contract compute exactly this):

- A tree has a depth d (1..256); keys are ints in [0, 2**d). Leaves are 32-byte values the
  caller computes (keccak-256 of the leaf's canonical bytes); `EMPTY_LEAF` (32 zero bytes) means
  "no leaf here".
- The node at level i (0 = leaves, d = root) with index j covers the keys [j * 2**i, (j+1) * 2**i).
  Its children are (i-1, 2j) on the left and (i-1, 2j+1) on the right. So bit i of a key (from
  the least significant) says whether the key's level-i node is a left (0) or right (1) child: the
  leaves are ordered by key from left to right.
- Every internal node is keccak256(left || right), empty subtrees included, so the empty subtree
  of level i hashes to the default `default_hashes(d)[i]` and the root depends only on the set of
  non-empty leaves (deleting a leaf = setting it to EMPTY_LEAF restores the previous root).

Single proof (`MerkleProof`): the d siblings of the key's path, level 0 first.

Multiproof (`MultiProof`), built to be checked with 32-byte words on the EVM:
`keys` (strictly increasing), `bitmap` (32-byte words), `siblings` (32-byte words). The checker
walks the levels 0..d-1 holding the list of known nodes of the level, sorted by index (at level 0:
the keys with their leaves). For each node in order: if it is a left child and the next node in
the list is its right sibling, the two are hashed together; otherwise the checker takes the next
*sibling slot*. Slot s is bit (s mod 256) of bitmap word s // 256, read as a big-endian uint256
(bit 0 = least significant): 1 means "the sibling is the next entry of `siblings`", 0 means "the
sibling is the empty subtree, default hash of this level". The parents, still sorted, form the
next level's list; after level d-1 the one node left is the root. A proof of no keys has one slot,
the root itself (0 = the empty tree). A well-formed proof uses every bitmap word (no trailing word,
unused bits zero) and every sibling. Because the siblings do not depend on the proven leaves'
values, the same multiproof with the "after" leaves of a state diff computes the new root.

Malformed input (wrong lengths, keys out of range or unsorted, too few or too many siblings)
raises `InvalidProof` with the reason; a well-formed proof that does not match returns False.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

# safe-pysha3 is a C keccak about 7x faster per call than pycryptodome (benchmarks/merkle_bench.py)
try:
    from sha3 import keccak_256 as _new_keccak

    KECCAK_BACKEND = "safe-pysha3"
except ImportError:  # pragma: no cover - safe-pysha3 is a declared dependency
    from Crypto.Hash import keccak as _pycryptodome_keccak

    def _new_keccak(data: bytes) -> Any:
        return _pycryptodome_keccak.new(digest_bits=256, data=data)

    KECCAK_BACKEND = "pycryptodome"

Hash32 = bytes  # a 32-byte word: a leaf, a node hash, a root
Key = int  # a leaf position in [0, 2**depth)

WORD_BYTES = 32
BITS_PER_WORD = 256
MAX_DEPTH = 256  # keys must fit an EVM uint256
EMPTY_LEAF: Hash32 = bytes(WORD_BYTES)


class InvalidProof(ValueError):
    """A proof, key, leaf or root that is malformed (as opposed to well-formed but not matching)."""


# --- hashing ---------------------------------------------------------------------------------


def keccak256(data: bytes) -> Hash32:
    """keccak-256 as the EVM computes it (not NIST SHA3-256, which pads differently)."""
    return _new_keccak(data).digest()


def hash_pair(left: Hash32, right: Hash32) -> Hash32:
    """Hash of an internal node from its two children (the hot path: one call, no wrapper)."""
    return _new_keccak(left + right).digest()


@cache
def default_hashes(depth: int) -> tuple[Hash32, ...]:
    """zero[i] = hash of the empty subtree of level i, for i = 0..depth (zero[0] = EMPTY_LEAF)."""
    check_depth(depth)
    zero = [EMPTY_LEAF]
    for _ in range(depth):
        zero.append(hash_pair(zero[-1], zero[-1]))
    return tuple(zero)


# --- input checks ----------------------------------------------------------------------------


def check_depth(depth: Any) -> None:
    # the depth decides the number of siblings: it must be a sane integer
    if not isinstance(depth, int) or isinstance(depth, bool):
        raise InvalidProof(f"depth must be an integer, got {type(depth).__name__}")
    # keys must fit an EVM word and a tree needs at least one level
    if not 1 <= depth <= MAX_DEPTH:
        raise InvalidProof(f"depth {depth} outside 1..{MAX_DEPTH}")


def check_key(key: Any, depth: int) -> None:
    # a key is a plain integer ...
    if not isinstance(key, int) or isinstance(key, bool):
        raise InvalidProof(f"key must be an integer, got {type(key).__name__}")
    # ... addressing one of the 2**depth leaves
    if not 0 <= key < (1 << depth):
        raise InvalidProof(f"key {key} outside [0, 2**{depth})")


def check_word(value: Any, what: str) -> None:
    # leaves, hashes, roots and bitmap words are exactly one 32-byte EVM word
    if not isinstance(value, bytes) or len(value) != WORD_BYTES:
        shown = len(value) if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise InvalidProof(f"{what} must be 32 bytes, got {shown}")


def check_sorted_keys(keys: Sequence[int], depth: int) -> None:
    for key in keys:
        check_key(key, depth)
    # strictly increasing keys give every key set exactly one proof and the checker its order
    for previous, key in zip(keys, keys[1:], strict=False):
        if key <= previous:
            raise InvalidProof(f"keys must be strictly increasing: {key} after {previous}")


def check_same_keys(leaves: Mapping[int, bytes], keys: Sequence[int]) -> None:
    # a multiproof proves exactly the key set it was built for
    missing = [key for key in keys if key not in leaves]
    if missing:
        raise InvalidProof(f"no leaf given for key {missing[0]} of the proof")
    if len(leaves) != len(keys):
        proven = set(keys)
        extra = next(key for key in leaves if key not in proven)
        raise InvalidProof(f"leaf given for key {extra!r}, which the proof does not cover")


# --- JSON words ------------------------------------------------------------------------------


def to_hex_word(value: bytes | int) -> str:
    """0x-hex of one 32-byte word (an int is written as a big-endian uint256)."""
    word = value.to_bytes(WORD_BYTES, "big") if isinstance(value, int) else value
    return "0x" + word.hex()


def parse_hex_word(text: Any, what: str) -> bytes:
    # JSON carries every word as "0x" followed by exactly 64 hex digits
    if not isinstance(text, str) or not text.startswith("0x") or len(text) != 2 + 2 * WORD_BYTES:
        raise InvalidProof(f"{what} must be a 0x-hex string of 32 bytes, got {text!r:.80}")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as error:
        raise InvalidProof(f"{what} is not hex: {text!r:.80}") from error


def parse_depth(value: Any) -> int:
    check_depth(value)
    return value


def parse_word_list(values: Any, what: str) -> tuple[bytes, ...]:
    # lists of words arrive as JSON arrays
    if not isinstance(values, list):
        raise InvalidProof(f"{what} must be a list, got {type(values).__name__}")
    return tuple(parse_hex_word(value, f"{what}[{i}]") for i, value in enumerate(values))


# --- single proofs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MerkleProof:
    """Proof that a key holds a leaf (EMPTY_LEAF: holds none): its siblings, level 0 first."""

    depth: int
    key: Key
    siblings: tuple[Hash32, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "key": to_hex_word(self.key),
            "siblings": [to_hex_word(s) for s in self.siblings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MerkleProof:
        return cls(
            depth=parse_depth(data.get("depth")),
            key=int.from_bytes(parse_hex_word(data.get("key"), "key"), "big"),
            siblings=parse_word_list(data.get("siblings"), "siblings"),
        )


def compute_root(key: Key, leaf: Hash32, siblings: Sequence[Hash32], depth: int) -> Hash32:
    """The root of a tree holding `leaf` at `key`, given the key's siblings (level 0 first)."""
    check_depth(depth)
    check_key(key, depth)
    check_word(leaf, "leaf")
    # one sibling per level, no more, no less
    if len(siblings) != depth:
        raise InvalidProof(f"expected {depth} siblings, got {len(siblings)}")
    for level, sibling in enumerate(siblings):
        check_word(sibling, f"sibling at level {level}")
    node = leaf
    for level, sibling in enumerate(siblings):
        node = hash_pair(sibling, node) if (key >> level) & 1 else hash_pair(node, sibling)
    return node


def verify_proof(root: Hash32, key: Key, leaf: Hash32, proof: MerkleProof) -> bool:
    """Whether `leaf` sits at `key` in the tree of `root` (EMPTY_LEAF: the key is absent)."""
    check_word(root, "root")
    # a proof for one key says nothing about another
    if proof.key != key:
        raise InvalidProof(f"the proof is for key {proof.key}, not {key}")
    return compute_root(key, leaf, proof.siblings, proof.depth) == root


# --- multiproofs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MultiProof:
    """One proof for a set of keys; see the module docstring for the slot and bitmap rules."""

    depth: int
    keys: tuple[Key, ...]
    bitmap: tuple[bytes, ...]
    siblings: tuple[Hash32, ...]

    @property
    def size_bytes(self) -> int:
        """Size as EVM calldata words (keys, bitmap and siblings; the leaves come separately)."""
        return WORD_BYTES * (len(self.keys) + len(self.bitmap) + len(self.siblings))

    def to_dict(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "keys": [to_hex_word(k) for k in self.keys],
            "bitmap": [to_hex_word(w) for w in self.bitmap],
            "siblings": [to_hex_word(s) for s in self.siblings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultiProof:
        keys = parse_word_list(data.get("keys"), "keys")
        return cls(
            depth=parse_depth(data.get("depth")),
            keys=tuple(int.from_bytes(k, "big") for k in keys),
            bitmap=parse_word_list(data.get("bitmap"), "bitmap"),
            siblings=parse_word_list(data.get("siblings"), "siblings"),
        )


def compute_bitmap(bits: Sequence[bool]) -> tuple[bytes, ...]:
    """Pack slot bits into 32-byte words: slot s is bit s % 256 of word s // 256 (big-endian)."""
    words = [0] * ((len(bits) + BITS_PER_WORD - 1) // BITS_PER_WORD)
    for slot, bit in enumerate(bits):
        if bit:
            words[slot // BITS_PER_WORD] |= 1 << (slot % BITS_PER_WORD)
    return tuple(w.to_bytes(WORD_BYTES, "big") for w in words)


class _SiblingReader:
    """Hands out the sibling of each slot in order, and checks at the end that all were used."""

    def __init__(self, proof: MultiProof) -> None:
        for i, word in enumerate(proof.bitmap):
            check_word(word, f"bitmap word {i}")
        for i, sibling in enumerate(proof.siblings):
            check_word(sibling, f"sibling {i}")
        self.words = [int.from_bytes(w, "big") for w in proof.bitmap]
        self.siblings = proof.siblings
        self.slot = 0
        self.used = 0

    def get_next(self, default: Hash32) -> Hash32:
        word_index = self.slot // BITS_PER_WORD
        # every slot needs its bit
        if word_index >= len(self.words):
            raise InvalidProof(
                f"bitmap too short: {len(self.words)} words, slot {self.slot} needed"
            )
        bit = (self.words[word_index] >> (self.slot % BITS_PER_WORD)) & 1
        self.slot += 1
        if not bit:
            return default
        # a set bit needs a sibling to take
        if self.used >= len(self.siblings):
            raise InvalidProof(f"too few siblings: {len(self.siblings)} given, more needed")
        self.used += 1
        return self.siblings[self.used - 1]

    def check_all_used(self) -> None:
        needed_words = (self.slot + BITS_PER_WORD - 1) // BITS_PER_WORD
        # no trailing bitmap word: one encoding per proof
        if len(self.words) != needed_words:
            raise InvalidProof(f"bitmap has {len(self.words)} words, {needed_words} expected")
        # bits past the last slot are zero
        if needed_words and self.words[-1] >> (self.slot - BITS_PER_WORD * (needed_words - 1)):
            raise InvalidProof("bitmap has bits set past the last slot")
        # every sibling given is used
        if self.used != len(self.siblings):
            raise InvalidProof(f"too many siblings: {len(self.siblings)} given, {self.used} used")


def compute_root_from_multiproof(leaves: Mapping[Key, Hash32], proof: MultiProof) -> Hash32:
    """The root of a tree holding `leaves` (exactly the proof's keys) and the proof's siblings."""
    check_depth(proof.depth)
    check_sorted_keys(proof.keys, proof.depth)
    check_same_keys(leaves, proof.keys)
    for key in proof.keys:
        check_word(leaves[key], f"leaf of key {key}")
    zero = default_hashes(proof.depth)
    reader = _SiblingReader(proof)
    if not proof.keys:
        root = reader.get_next(zero[proof.depth])
        reader.check_all_used()
        return root
    nodes = [(key, leaves[key]) for key in proof.keys]
    for level in range(proof.depth):
        nodes = compute_parent_level(nodes, reader, zero[level])
    reader.check_all_used()
    return nodes[0][1]


def compute_parent_level(
    nodes: list[tuple[int, Hash32]], reader: _SiblingReader, default: Hash32
) -> list[tuple[int, Hash32]]:
    """Parents of the sorted (index, hash) nodes of one level, siblings taken from the reader."""
    parents = []
    i = 0
    while i < len(nodes):
        index, node = nodes[i]
        if not index & 1 and i + 1 < len(nodes) and nodes[i + 1][0] == index + 1:
            parents.append((index >> 1, hash_pair(node, nodes[i + 1][1])))
            i += 2
            continue
        sibling = reader.get_next(default)
        parent = hash_pair(sibling, node) if index & 1 else hash_pair(node, sibling)
        parents.append((index >> 1, parent))
        i += 1
    return parents


def verify_multiproof(root: Hash32, leaves: Mapping[Key, Hash32], proof: MultiProof) -> bool:
    """Whether every key of `leaves` holds its leaf (EMPTY_LEAF: absent) in the tree of `root`."""
    check_word(root, "root")
    return compute_root_from_multiproof(leaves, proof) == root
