"""Commitments to segment diffs and batches, and the verifying key's hash.

A segment's diff lists every leaf its slots touch (the keys of their windows, the globals leaf,
every leaf they write), each with its bytes as the segment starts and as it ends. It is folded from
the segment's per-slot leaf steps: inside a segment a leaf touched by several slots chains (a
slot's "before" is the previous touching slot's "after"), and across segments a leaf's "before" is
the previous segment's "after" (`fold_leaf_changes` checks both, with the same rule).

Commitment (the node, the prover and the verifier compute exactly this):
- entry of a leaf: keccak256(key as 32 bytes big-endian || leaf_hash(before) || leaf_hash(after)),
  with `verifier.encoding.leaf_hash` (an absent leaf hashes to 32 zero bytes, as in the state tree);
- segment root: `compute_merkle_root` over the entries sorted by key;
- batch commitment: `compute_merkle_root` over the segment roots in segment order.
`compute_merkle_root` is a binary keccak tree over 32-byte nodes (`verifier.merkle.hash_pair`), the
level padded to a power of two with 32 zero bytes; no nodes gives 32 zero bytes. Entries hash 96
bytes and inner nodes 64, so an entry can never pass for an inner node.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from verifier.encoding import leaf_hash
from verifier.merkle import EMPTY_LEAF, Hash32, hash_pair, keccak256

LeafChange = tuple[int, bytes, bytes]  # (key, bytes before, bytes after); empty bytes: no leaf
KEY_BYTES = 32


class BrokenChain(ValueError):
    """A leaf's "before" is not the value the previous step or segment left it at."""


def fold_leaf_changes(
    steps: Iterable[Mapping[int, tuple[bytes, bytes]]], start: Mapping[int, bytes] | None = None, what: str = "step"
) -> list[LeafChange]:
    """The net change of consecutive steps, sorted by key: each key's first "before" and last
    "after". Every "before" must equal the key's latest "after" so far (or its value in `start`,
    when given, for a key no earlier step touched)."""
    first: dict[int, bytes] = {}
    last: dict[int, bytes] = {}
    for index, step in enumerate(steps):
        for key, (before, after) in step.items():
            if key in last:
                expected = last[key]
            else:
                expected = before if start is None else start.get(key, b"")
            # chaining: the step starts where the previous one left the leaf
            if before != expected:
                raise BrokenChain(f"{what} {index}: leaf {key:#x} starts at a value the previous {what} did not leave")
            first.setdefault(key, before)
            last[key] = after
    return [(key, first[key], last[key]) for key in sorted(first)]


def fold_segment_diffs(diffs: Sequence[Sequence[LeafChange]], start: Mapping[int, bytes] | None = None) -> list[LeafChange]:
    """The batch's net change from its segments' diffs, checking chaining across segments."""
    steps = [{key: (before, after) for key, before, after in diff} for diff in diffs]
    return fold_leaf_changes(steps, start, what="segment")


def compute_entry_hash(key: int, before: bytes, after: bytes) -> Hash32:
    return keccak256(key.to_bytes(KEY_BYTES, "big") + leaf_hash(before) + leaf_hash(after))


def compute_merkle_root(nodes: Sequence[Hash32]) -> Hash32:
    """Binary keccak Merkle root, the level padded to a power of two with zero words."""
    if not nodes:
        return EMPTY_LEAF
    level = list(nodes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(EMPTY_LEAF)
        level = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def compute_segment_root(diff: Sequence[LeafChange]) -> Hash32:
    """The commitment to one segment's diff (entries sorted by key)."""
    keys = [key for key, _, _ in diff]
    # one entry per key, in key order: the root is a function of the diff, not of how it is listed
    if keys != sorted(set(keys)):
        raise ValueError("a segment diff lists each key once, sorted")
    return compute_merkle_root([compute_entry_hash(key, before, after) for key, before, after in diff])


def compute_batch_commitment(segment_roots: Sequence[Hash32]) -> Hash32:
    return compute_merkle_root(list(segment_roots))


def compute_vk_hash(vk_json: Mapping[str, Any]) -> Hash32:
    """keccak256 of a snarkjs verification_key.json in canonical form (sorted keys, no spaces)."""
    return keccak256(json.dumps(vk_json, sort_keys=True, separators=(",", ":")).encode())


def compute_public_inputs_hash(public_inputs: Sequence[int]) -> Hash32:
    """keccak256 of the public inputs as 32-byte big-endian words (what a proof row records)."""
    return keccak256(b"".join(value.to_bytes(32, "big") for value in public_inputs))
