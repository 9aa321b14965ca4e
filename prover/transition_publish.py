"""A v3 batch proven and published: the `verifier.transition.PublishedFiles` a verifier or the L1 reads.

`prove_and_publish` proves every segment of a `TransitionBatch` (prover/transition_segments.py)
with one proving key and lays it out as the published format (batch.json's model, snarkjs proofs
and key). `prove_workload_batches` replays a list of accepted transactions from genesis as
consecutive batches (each a list of transactions), with one setup for the shape: what tests and
benchmarks use to get real proven batches that chain from the genesis root.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prover.circuits.transition import TransitionShape, build_transition_circuit
from prover.setup import ProvingKey, setup
from prover.transition_segments import TransitionBatch, build_published_transition, build_transition_batch, iter_transition_proofs
from rollup.rules import process_transaction
from rollup.state import State
from rollup.state_tree import PoseidonTree
from verifier.snarkjs import compute_vk_hash
from verifier.groth16 import VerifyingKey
from verifier.encoding import compute_genesis_hash
from verifier.l2auth import check_signers
from verifier.snarkjs import format_verifying_key
from verifier.state_tree import TreeShape
from verifier.transition import PublishedFiles
from verifier.wire import Genesis


def get_accepted(genesis: Genesis, transactions: Sequence[object]) -> tuple[list[object], list[tuple[str, ...]]]:
    """The transactions the rules accept from genesis, in order, with their signers (addresses, or L2 key ids)."""
    state = State.from_genesis(genesis)
    txs, signers = [], []
    for tx in transactions:
        s = check_signers(tx, genesis.signing_domain)
        if process_transaction(state, tx, s).status == "accepted":
            txs.append(tx)
            signers.append(s)
    return txs, signers


def prove_segments(batch: TransitionBatch, pk: ProvingKey, backend: str | None = None) -> Iterator[dict]:
    """Each segment's proof as snarkjs JSON, in order, checked (rng seeded by the segment: reproducible)."""
    return iter_transition_proofs(batch, pk, seed=0, backend=backend)


def publish(batch: TransitionBatch, vk: VerifyingKey, proofs: Sequence[dict], genesis: Genesis, tree: TreeShape) -> PublishedFiles:
    """The published files of a batch from its proofs (snarkjs JSON) and verifying key (its
    prefix's public inputs when fewer proofs than segments are given)."""
    vk_json = format_verifying_key(vk)
    files = build_published_transition(batch, genesis, vk_json, list(proofs), compute_vk_hash(vk_json))
    files.public = files.public[: len(proofs)]
    return files


def replay_batches(
    genesis: Genesis, batches: Sequence[tuple[Sequence[object], Sequence[tuple[str, ...]]]], n_slots: int, tree: TreeShape
) -> tuple[TransitionShape, list[TransitionBatch], State, PoseidonTree]:
    """`batches` (accepted transactions and their signers) replayed from genesis as batches 1, 2, ..."""
    shape = TransitionShape.from_genesis(genesis, compute_genesis_hash(genesis), n_slots, tree)
    state, accounts_tree = State.from_genesis(genesis), PoseidonTree(tree)
    replayed = [
        build_transition_batch(state, accounts_tree, shape, number, txs, signers)
        for number, (txs, signers) in enumerate(batches, start=1)
    ]
    return shape, replayed, state, accounts_tree


@dataclass
class ProvenRun:
    """Consecutive proven batches from genesis, and what they cost to make."""

    genesis: Genesis
    tree: TreeShape
    shape: TransitionShape
    genesis_root: int
    batches: list[PublishedFiles]
    state: State  # after the last batch
    accounts_tree: PoseidonTree
    constraints: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def prove_workload_batches(
    genesis: Genesis,
    batches: Sequence[tuple[Sequence[object], Sequence[tuple[str, ...]]]],
    n_slots: int,
    tree: TreeShape,
    backend: str | None = None,
    seed: int = 1,
) -> ProvenRun:
    """Replay `batches` (accepted transactions and their signers) from genesis as batches 1, 2, ...;
    one setup (on the first segment's circuit) proves them all."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    shape, replayed, state, accounts_tree = replay_batches(genesis, batches, n_slots, tree)
    timings["witness"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    cs = build_transition_circuit(shape, replayed[0].witnesses[0])
    pk = setup(cs, seed=seed)
    timings["setup"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    published = [publish(b, pk.vk, list(prove_segments(b, pk, backend)), genesis, tree) for b in replayed]
    timings["prove"] = round(time.perf_counter() - started, 3)
    timings["segments"] = sum(len(b.witnesses) for b in replayed)
    return ProvenRun(genesis, tree, shape, replayed[0].prev_root, published, state, accounts_tree, cs.n_constraints, timings)
