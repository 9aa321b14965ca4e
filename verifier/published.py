"""The published form of a proven batch: what a verifier needs, and nothing from the node.

A published batch is a directory:

    batch.json                 `PublishedBatch` (below): genesis, roots, transactions, receipts,
                               segments with their per-transaction leaf steps, the "before" leaves
                               and their multiproof against the previous root, the commitment
    verification_key.json      the segment circuit's key (snarkjs format)
    proofs/segment-<i>.json    segment i's Groth16 proof (snarkjs proof.json)
    proofs/public-<i>.json     segment i's public inputs (snarkjs public.json), for convenience:
                               a verifier recomputes them from batch.json and never trusts these

A segment publishes, per transaction, its leaf step: every leaf the slot reads or writes (its
windows' keys, the globals leaf, the instrument leaves an oracle update writes), each with its
bytes before and after the transaction. The segment's diff is those steps folded per key
(verifier/commitments.py); the steps are published rather than the diff because the circuit's
public inputs are per slot.

Leaf bytes are 0x-hex of the canonical encoding (verifier/encoding.py), "0x" for an absent leaf.
Imports nothing from `rollup` or `prover`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from verifier.merkle import MultiProof
from verifier.wire import Bytes32, Genesis, HexBytes, LeafDiff, Receipt, Transaction, WireModel

FORMAT = "zk-derivatives-rollup/published-batch/1"
BATCH_FILE = "batch.json"
VERIFYING_KEY_FILE = "verification_key.json"
PROOFS_DIR = "proofs"

LeafKey = Annotated[int, Field(ge=0, lt=2**32)]


class PublishedFormatError(ValueError):
    """A published directory that is missing a file or does not parse."""


class LeafValue(WireModel):
    """One leaf of the state before the batch ("0x": the key holds no leaf)."""

    key: LeafKey
    value: HexBytes


class MultiProofData(WireModel):
    """`verifier.merkle.MultiProof` as JSON words."""

    depth: Annotated[int, Field(ge=1, le=256)]
    keys: list[Bytes32]
    bitmap: list[Bytes32]
    siblings: list[Bytes32]

    def to_multiproof(self) -> MultiProof:
        return MultiProof.from_dict(self.model_dump())

    @classmethod
    def from_multiproof(cls, proof: MultiProof) -> "MultiProofData":
        return cls.model_validate(proof.to_dict())


def _check_sorted_keys(keys: list[int], what: str) -> None:
    # one entry per key, in key order: one encoding per published batch
    if any(a >= b for a, b in zip(keys, keys[1:])):
        raise ValueError(f"{what} must be sorted by key with no duplicates")


class PublishedSegment(WireModel):
    index: Annotated[int, Field(ge=0)]
    tx_indices: list[Annotated[int, Field(ge=0)]]  # batch indices of its transactions, in order
    steps: list[list[LeafDiff]]  # one leaf step per transaction, each sorted by key
    root: Bytes32  # commitment to the folded diff (recomputed by the verifier)

    @model_validator(mode="after")
    def _sorted_steps(self) -> "PublishedSegment":
        for step in self.steps:
            _check_sorted_keys([leaf.key for leaf in step], "a leaf step")
        return self


class PublishedBatch(WireModel):
    format: Literal["zk-derivatives-rollup/published-batch/1"] = FORMAT
    genesis: Genesis
    number: Annotated[int, Field(ge=1)]
    n_slots: Annotated[int, Field(ge=1)]  # transactions per segment: the circuit's shape
    prev_root: Bytes32
    new_root: Bytes32
    transactions: list[Transaction]
    receipts: list[Receipt]
    segments: list[PublishedSegment]
    leaves_before: list[LeafValue]  # every key the batch touches, every instrument, the globals leaf
    multiproof: MultiProofData  # of `leaves_before` against `prev_root`
    commitment: Bytes32  # Merkle root over the segment roots
    vk_hash: Bytes32  # keccak of verification_key.json (verifier.commitments.compute_vk_hash)

    @model_validator(mode="after")
    def _sorted_leaves(self) -> "PublishedBatch":
        _check_sorted_keys([leaf.key for leaf in self.leaves_before], "leaves_before")
        return self


@dataclass
class Published:
    """A published directory, read: the batch, the key and one proof (and public file) per segment."""

    batch: PublishedBatch
    vk: dict[str, Any]  # verification_key.json
    proofs: list[Any]  # proofs/segment-<i>.json, i = 0..len(batch.segments)-1
    public: list[Any | None]  # proofs/public-<i>.json where present


def to_hex(data: bytes) -> str:
    return "0x" + data.hex()


def from_hex(text: str) -> bytes:
    return bytes.fromhex(text[2:])


def get_proof_paths(directory: Path, index: int) -> tuple[Path, Path]:
    return directory / PROOFS_DIR / f"segment-{index}.json", directory / PROOFS_DIR / f"public-{index}.json"


def write_published(directory: Path, published: Published) -> None:
    """Write the directory layout above (public files only where given)."""
    (directory / PROOFS_DIR).mkdir(parents=True, exist_ok=True)
    (directory / BATCH_FILE).write_text(published.batch.model_dump_json(indent=1) + "\n")
    (directory / VERIFYING_KEY_FILE).write_text(json.dumps(published.vk, indent=1) + "\n")
    for index, (proof, public) in enumerate(zip(published.proofs, published.public, strict=True)):
        proof_path, public_path = get_proof_paths(directory, index)
        proof_path.write_text(json.dumps(proof, indent=1) + "\n")
        if public is not None:
            public_path.write_text(json.dumps(public) + "\n")


def _read_json(path: Path) -> Any:
    # every file the verifier needs is there
    if not path.is_file():
        raise PublishedFormatError(f"missing file {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PublishedFormatError(f"{path.name}: not valid JSON: {exc}") from None


def read_published(directory: Path) -> Published:
    """Read a published directory; its content is checked by `verifier.batch`, not here."""
    # the directory exists
    if not directory.is_dir():
        raise PublishedFormatError(f"no published batch in {directory}: not a directory")
    batch_path = directory / BATCH_FILE
    # batch.json is there
    if not batch_path.is_file():
        raise PublishedFormatError(f"missing file {batch_path}")
    try:
        batch = PublishedBatch.model_validate_json(batch_path.read_text())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PublishedFormatError(f"batch.json: {where}: {first['msg']} ({exc.error_count()} errors)") from None
    vk = _read_json(directory / VERIFYING_KEY_FILE)
    proofs, public = [], []
    for index in range(len(batch.segments)):
        proof_path, public_path = get_proof_paths(directory, index)
        proofs.append(_read_json(proof_path))
        public.append(_read_json(public_path) if public_path.exists() else None)
    return Published(batch, vk, proofs, public)
