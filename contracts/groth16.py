"""Groth16 keys and proofs for the L1 verifier (contracts/vy/TransitionVerifierV3.vy), in EIP-197 words.

Points reach the contract in the EIP-197 layout, produced only by `verifier/evm.py`'s encoders (the
one place that orders an Fq2's halves). The key's IC points (one per public input plus one) may not
fit one contract's code, so they are stored in data contracts of at most `MAX_CHUNK_BYTES`, every
chunk but the last full.
"""

from __future__ import annotations

from typing import NamedTuple

from verifier.evm import encode_g1, encode_g2, encode_proof
from verifier.groth16 import Proof, VerifyingKey, validate_verifying_key

WORD = 32
G1_SIZE = 64  # x || y
MAX_CHUNK_BYTES = 24_000  # under EIP-170's 24,576-byte code limit, with room for the STOP byte
IC_PER_CHUNK = MAX_CHUNK_BYTES // G1_SIZE


class EvmVerifyingKey(NamedTuple):
    """A verifying key as the contract's constructor takes it (EIP-197 words)."""

    alpha1: list[int]  # (x, y)
    beta2: list[int]  # (x_imag, x_real, y_imag, y_real)
    gamma2: list[int]
    delta2: list[int]
    ic_blobs: list[bytes]  # the IC points, 64 bytes each, in chunks of at most MAX_CHUNK_BYTES


def split_words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + WORD], "big") for i in range(0, len(data), WORD)]


def encode_verifying_key(vk: VerifyingKey) -> EvmVerifyingKey:
    """The key's points in EIP-197 words, IC split into data-contract chunks."""
    # every point on its curve and in its subgroup before it is fixed in a contract
    validate_verifying_key(vk)
    ic = b"".join(encode_g1(point) for point in vk.gamma_abc_g1)
    blobs = [ic[i : i + IC_PER_CHUNK * G1_SIZE] for i in range(0, len(ic), IC_PER_CHUNK * G1_SIZE)]
    return EvmVerifyingKey(
        split_words(encode_g1(vk.alpha_g1)),
        split_words(encode_g2(vk.beta_g2)),
        split_words(encode_g2(vk.gamma_g2)),
        split_words(encode_g2(vk.delta_g2)),
        blobs,
    )


def encode_proof_for_evm(proof: Proof) -> list[int]:
    """(A.x, A.y, B.x_imag, B.x_real, B.y_imag, B.y_real, C.x, C.y), as verify_batch takes a proof."""
    return split_words(encode_proof(proof))
