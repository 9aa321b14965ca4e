"""A state-tree multiproof (`verifier.merkle.MultiProof`) as the arguments of
`contracts/vy/merkle.vy`'s `compute_multiproof_root(keys, leaves, siblings, bitmap)`.

The formats are the same words: keys as uint256, siblings and bitmap words as bytes32 (a bitmap
word is read on chain as a big-endian uint256, as in Python). Only the bounds differ: the contract
takes at most MAX_KEYS keys and MAX_SIBLINGS siblings (see merkle.vy for why), at depth 32.
"""

from __future__ import annotations

from verifier.encoding import TREE_DEPTH
from verifier.merkle import MultiProof

MAX_KEYS = 256  # merkle.vy's bounds (a test checks they agree)
MAX_SIBLINGS = 1024
MAX_BITMAP = 24


class ProofTooLarge(ValueError):
    """A well-formed multiproof the settlement contract cannot take in one call."""


def to_evm_multiproof(proof: MultiProof) -> tuple[list[int], list[bytes], list[bytes]]:
    """(keys, siblings, bitmap) for compute_multiproof_root; the leaves go with the keys."""
    # the contract's tree is the state tree
    if proof.depth != TREE_DEPTH:
        raise ProofTooLarge(f"the contract checks depth-{TREE_DEPTH} proofs, got depth {proof.depth}")
    # the contract's arrays are bounded
    if len(proof.keys) > MAX_KEYS:
        raise ProofTooLarge(f"{len(proof.keys)} keys in one proof, the contract takes at most {MAX_KEYS}")
    if len(proof.siblings) > MAX_SIBLINGS:
        raise ProofTooLarge(f"{len(proof.siblings)} siblings in one proof, the contract takes at most {MAX_SIBLINGS}")
    if len(proof.bitmap) > MAX_BITMAP:
        raise ProofTooLarge(f"{len(proof.bitmap)} bitmap words in one proof, the contract takes at most {MAX_BITMAP}")
    return list(proof.keys), list(proof.siblings), list(proof.bitmap)
