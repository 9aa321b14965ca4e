# pragma version 0.4.3
"""Test harness: `contracts/vy/merkle.vy`'s internals as externals, each with the gas it used
(measured around the internal call, argument copies from calldata included)."""

import merkle


@external
@view
def compute_multiproof_root(
    keys: DynArray[uint256, merkle.MAX_KEYS],
    leaves: DynArray[bytes32, merkle.MAX_KEYS],
    siblings: DynArray[bytes32, merkle.MAX_SIBLINGS],
    bitmap: DynArray[bytes32, merkle.MAX_BITMAP],
) -> (bytes32, uint256):
    start: uint256 = msg.gas
    root: bytes32 = merkle.compute_multiproof_root(keys, leaves, siblings, bitmap)
    return root, start - msg.gas


@external
@view
def compute_list_root(leaves: DynArray[bytes32, merkle.MAX_LIST]) -> (bytes32, uint256):
    start: uint256 = msg.gas
    root: bytes32 = merkle.compute_list_root(leaves)
    return root, start - msg.gas


@external
@view
def compute_list_root_from_proof(leaf: bytes32, index: uint256, proof: DynArray[bytes32, merkle.MAX_LIST_DEPTH]) -> (bytes32, uint256):
    start: uint256 = msg.gas
    root: bytes32 = merkle.compute_list_root_from_proof(leaf, index, proof)
    return root, start - msg.gas


@external
@pure
def compute_list_depth(count: uint256) -> uint256:
    return merkle.compute_list_depth(count)


@external
@pure
def get_bounds() -> (uint256, uint256, uint256, uint256, uint256):
    return merkle.MAX_KEYS, merkle.MAX_SIBLINGS, merkle.MAX_BITMAP, merkle.MAX_LIST, merkle.MAX_LIST_DEPTH
