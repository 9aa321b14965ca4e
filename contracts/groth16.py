"""The segment circuit's Groth16 verifier on L1: encode a key and proofs for it, and deploy it.

`contracts/vy/Groth16Verifier.vy` checks a batch of proofs with one pairing check through the BN254
precompiles. Points reach it in the EIP-197 layout, produced only by `verifier/evm.py`'s encoders
(the one place that orders an Fq2's halves). The key's IC points (one per public input plus one,
466 at one slot per segment: 29,824 bytes) do not fit one contract's code, so they are stored in
data contracts of at most `MAX_CHUNK_BYTES`, every chunk but the last full.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from web3.contract import Contract

from contracts.build import compile_contract
from contracts.chain import L1
from verifier.evm import encode_g1, encode_g2, encode_proof
from verifier.groth16 import Proof, VerifyingKey, WrongInputCount, validate_verifying_key
from verifier.segment import SegmentShape, count_public_inputs

WORD = 32
G1_SIZE = 64  # x || y
MAX_CHUNK_BYTES = 24_000  # under EIP-170's 24,576-byte code limit, with room for the STOP byte
IC_PER_CHUNK = MAX_CHUNK_BYTES // G1_SIZE
DEPLOY_GAS = 3_000_000


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


def deploy_groth16_verifier(l1: L1, vk: VerifyingKey, shape: SegmentShape, sender: str | None = None) -> Contract:
    """Store the key's IC chunks as data contracts, then deploy the verifier for `shape`."""
    n_public = count_public_inputs(shape)
    # the key must be the segment circuit's for this shape: the contract is compiled for it
    if vk.n_public != n_public:
        raise WrongInputCount(
            f"the verifying key has {vk.n_public} public inputs; {shape.n_slots}-slot segments have {n_public}"
        )
    key = encode_verifying_key(vk)
    chunks = [l1.deploy_data(blob, sender=sender) for blob in key.ic_blobs]
    compiled = compile_contract("Groth16Verifier", shape)
    return l1.deploy(
        compiled, key.alpha1, key.beta2, key.gamma2, key.delta2, chunks, len(vk.gamma_abc_g1),
        sender=sender, gas=DEPLOY_GAS,
    )


def combine_inputs(inputs: Sequence[Sequence[int]], weights: Sequence[int], r: int) -> tuple[list[int], int]:
    """(sum_i w_i x_ij mod r for every input j, sum_i w_i mod r): what `compute_vk_x` takes to
    return the batch's combined point sum_i w_i vk_x_i."""
    combined = [sum(w * x[j] for w, x in zip(weights, inputs, strict=True)) % r for j in range(len(inputs[0]))]
    return combined, sum(weights) % r
