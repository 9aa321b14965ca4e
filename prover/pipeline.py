"""The proving pipeline of a node: `rollup setup` and `rollup prove`, without the CLI.

Setup (`run_setup`): the state-transition circuit (v3, prover/circuits/transition.py) of the
node's genesis and `n_slots` slots, a Groth16 setup (UNSAFE: single-party, see prover/setup.py),
the proving key (binary) and verification_key.json (snarkjs format) under HOME/keys/. The node's meta table records the segment
size (`segment_slots`) and the verifying key's keccak hash (`vk_hash`, see
`verifier.snarkjs.compute_vk_hash`). A second call reuses the keys unless forced.

Proving (`prove_batches`): every segment of the chosen batches without a stored proof for the
current key is proven on an executor (`rollup.executors`: serial, process or Dask), one task per
segment. A task rebuilds the circuit from the segment's witness (`load_transition_batch` replays
the batch from the store) and proves it with the
proving key, parsed once per worker process (`get_cached_proving_key`; on a Dask cluster its bytes are
broadcast to every worker once, `share_proving_key`). The coordinator verifies
each proof against the public inputs it computed (a wrong proof is never stored) and stores it in
SQLite as soon as it arrives, in its own database transaction: after a crash, proving resumes at
the first segment without a proof.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prover.circuits import CIRCUIT_VERSION  # recorded with the keys; keys of another version are refused
from prover.circuits.transition import TransitionShape, TransitionWitness, build_transition_circuit
from prover.circuits.transition_witness import build_blank_witness
from prover.groth16 import prove
from prover.setup import ProvingKey, load_proving_key, parse_proving_key, save_proving_key, setup
from prover.transition_segments import TransitionReplayError, load_transition_batch
from rollup.storage import ProofRow, Store, get_accepted_counts, get_proofs, put_proof, set_meta
from verifier.snarkjs import compute_public_inputs_hash, compute_vk_hash
from verifier.encoding import compute_genesis_hash
from verifier.groth16 import PreparedVerifyingKey, prepare_verifying_key, verify_proof
from verifier.snarkjs import format_proof, format_verifying_key, parse_proof, parse_verifying_key, read_json, write_json
from verifier.state_tree import get_tree_shape
from verifier.transition import to_field_hex
from verifier.wire import Genesis

DEFAULT_SEGMENT_SLOTS = 4  # node setting `segment_slots` when unset

KEYS_DIR = "keys"
PROVING_KEY_FILE = "proving_key.bin"
VERIFYING_KEY_FILE = "verification_key.json"
META_SEGMENT_SLOTS = "segment_slots"
META_VK_HASH = "vk_hash"
META_SETUP_SLOTS = "setup_slots"
META_SETUP_CONSTRAINTS = "setup_constraints"
META_CIRCUIT_VERSION = "circuit_version"


class ProvingError(Exception):
    """Setup or proving cannot go on (no keys, keys of another shape, a failed or wrong proof)."""


# --- node settings and keys ------------------------------------------------------------------------


def get_genesis(store: Store) -> Genesis:
    return Genesis.model_validate_json(store.get_meta("genesis") or "")


def get_shape(genesis: Genesis, n_slots: int) -> TransitionShape:
    """The circuit of this genesis (its instruments, risk parameters and accounts tree) and segment size."""
    return TransitionShape.from_genesis(genesis, compute_genesis_hash(genesis), n_slots, get_tree_shape(genesis))


def get_segment_slots(store: Store) -> int:
    """The node's segment size: slots per segment (default DEFAULT_SEGMENT_SLOTS)."""
    return int(store.get_meta(META_SEGMENT_SLOTS) or DEFAULT_SEGMENT_SLOTS)


def get_key_paths(home: Path) -> tuple[Path, Path]:
    return home / KEYS_DIR / PROVING_KEY_FILE, home / KEYS_DIR / VERIFYING_KEY_FILE


@dataclass
class SetupResult:
    vk_hash: str
    n_slots: int
    n_constraints: int
    n_public: int
    proving_key: str
    verifying_key: str
    cached: bool
    seconds: float


def run_setup(home: Path, store: Store, n_slots: int | None = None, force: bool = False, seed: int | None = None) -> SetupResult:
    """Keys for the node's segment circuit (created once; `force` makes new ones). `seed` makes the
    toxic waste reproducible (tests only); either way the setup is single-party and UNSAFE."""
    slots = get_segment_slots(store) if n_slots is None else n_slots
    # a segment holds at least one transaction
    if slots < 1:
        raise ProvingError(f"a segment needs at least 1 slot, got {slots}")
    pk_path, vk_path = get_key_paths(home)
    started = time.perf_counter()
    existing = store.get_meta(META_SETUP_SLOTS)
    if not force and pk_path.exists() and vk_path.exists() and existing is not None:
        # cached keys serve one segment size only
        if int(existing) != slots:
            raise ProvingError(f"the keys in {pk_path.parent} are for {existing}-slot segments; run setup with --force for {slots}")
        version = store.get_meta(META_CIRCUIT_VERSION) or "1"
        # keys of another circuit version would make proofs that never verify
        if version != CIRCUIT_VERSION:
            raise ProvingError(
                f"the keys in {pk_path.parent} are for version {version} of the segment circuit, this prover has version "
                f"{CIRCUIT_VERSION}: run `rollup setup --force`"
            )
        vk_json = read_json(vk_path)
        set_meta(store, META_SEGMENT_SLOTS, str(slots))
        return SetupResult(
            store.get_meta(META_VK_HASH) or "0x" + compute_vk_hash(vk_json).hex(),
            slots,
            int(store.get_meta(META_SETUP_CONSTRAINTS) or 0),
            vk_json["nPublic"],
            str(pk_path), str(vk_path), True, time.perf_counter() - started,
        )
    shape = get_shape(get_genesis(store), slots)
    cs = build_transition_circuit(shape, build_blank_witness(shape))
    pk = setup(cs, seed=seed)
    pk_path.parent.mkdir(parents=True, exist_ok=True)
    vk_json = format_verifying_key(pk.vk)
    # write under temporary names, then rename: a crash never leaves half a key under the real name
    save_proving_key(pk, pk_path.with_suffix(".tmp"))
    write_json(vk_path.with_suffix(".tmp"), vk_json)
    os.replace(pk_path.with_suffix(".tmp"), pk_path)
    os.replace(vk_path.with_suffix(".tmp"), vk_path)
    vk_hash = "0x" + compute_vk_hash(read_json(vk_path)).hex()
    set_meta(store, META_VK_HASH, vk_hash)
    set_meta(store, META_SETUP_SLOTS, str(slots))
    set_meta(store, META_SEGMENT_SLOTS, str(slots))
    set_meta(store, META_SETUP_CONSTRAINTS, str(cs.n_constraints))
    set_meta(store, META_CIRCUIT_VERSION, CIRCUIT_VERSION)
    return SetupResult(vk_hash, slots, cs.n_constraints, cs.n_public, str(pk_path), str(vk_path), False, time.perf_counter() - started)


def get_current_keys(home: Path, store: Store) -> tuple[str, int]:
    """(vk hash, slots) of the node's keys, or ProvingError if setup has not run."""
    pk_path, vk_path = get_key_paths(home)
    vk_hash = store.get_meta(META_VK_HASH)
    slots = store.get_meta(META_SETUP_SLOTS)
    # proving needs the keys of `rollup setup`
    if vk_hash is None or slots is None or not pk_path.exists() or not vk_path.exists():
        raise ProvingError(f"no proving key in {pk_path.parent}: run `rollup setup` first")
    # the key on disk is the one the node recorded
    if "0x" + compute_vk_hash(read_json(vk_path)).hex() != vk_hash:
        raise ProvingError(f"{vk_path} does not match the verifying key hash the node recorded: run `rollup setup --force`")
    version = store.get_meta(META_CIRCUIT_VERSION) or "1"
    # keys of another circuit (v2's windows) prove another statement: never used for this one
    if version != CIRCUIT_VERSION:
        raise ProvingError(f"the keys in {pk_path.parent} are for version {version} of the segment circuit, this node runs version {CIRCUIT_VERSION}: run `rollup setup --force`")
    return vk_hash, int(slots)


# --- worker side -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyBytes:
    """A proving key file's content, sent to each Dask worker once (`DaskExecutor.broadcast`):
    workers need not share the coordinator's disk."""

    digest: str  # sha256 of data: the workers' cache key
    data: bytes


_PROVING_KEYS: dict[tuple[Any, ...], ProvingKey] = {}
_KEY_LOADS = [0]  # keys parsed by this process (tests check a worker parses its key once)


def get_key_load_count() -> int:
    return _KEY_LOADS[0]


def get_cached_proving_key(source: str | KeyBytes) -> ProvingKey:
    """The proving key at a path or in broadcast bytes, parsed once per process (a path is keyed by
    path, size and mtime, so a new setup is picked up by long-lived Dask workers)."""
    if isinstance(source, KeyBytes):
        cache_key: tuple[Any, ...] = ("sha256", source.digest)
    else:
        stat = os.stat(source)
        cache_key = (os.path.abspath(source), stat.st_size, stat.st_mtime_ns)
    pk = _PROVING_KEYS.get(cache_key)
    if pk is None:
        _PROVING_KEYS.clear()  # one key at a time: they are large
        pk = parse_proving_key(source.data) if isinstance(source, KeyBytes) else load_proving_key(source)
        _PROVING_KEYS[cache_key] = pk
        _KEY_LOADS[0] += 1
    return pk


def share_proving_key(executor: Executor, pk_path: Path) -> Any:
    """What tasks get to find the key: on a Dask cluster, its bytes broadcast to every worker once;
    elsewhere (processes of this machine) its path."""
    broadcast = getattr(executor, "broadcast", None)
    if broadcast is None:
        return str(pk_path)
    data = pk_path.read_bytes()
    return broadcast(KeyBytes(hashlib.sha256(data).hexdigest(), data))


def prove_segment_task(key: str | KeyBytes, shape: TransitionShape, witness: TransitionWitness,
                       backend: str | None = None) -> tuple[dict[str, Any], float]:
    """Runs on a worker: (snarkjs proof.json, seconds) for one segment. `key`: a path or broadcast
    bytes (`share_proving_key`). `backend` None: the worker's configured or fastest installed one
    (prover/backends.py)."""
    started = time.perf_counter()
    pk = get_cached_proving_key(key)
    cs = build_transition_circuit(shape, witness)
    proof = prove(pk, cs, backend=backend)
    return format_proof(proof), time.perf_counter() - started


# --- coordinator ---------------------------------------------------------------------------------------


@dataclass
class ProofEvent:
    """One stored proof, reported to a progress callback."""

    batch: int
    segment: int
    seconds: float


@dataclass
class ProveReport:
    vk_hash: str
    n_slots: int
    batches: dict[int, dict[str, Any]] = field(default_factory=dict)  # per batch: segments, proven now, new root
    proven: int = 0
    skipped: int = 0
    seconds: float = 0.0
    prove_seconds: float = 0.0  # sum over tasks (worker time)


def get_unproven_batches(store: Store, vk_hash: str, n_slots: int) -> list[int]:
    """Committed batches with a segment lacking a proof for this key (a stored proof records how
    many segments its batch has: an oracle update opens a segment, so it is not a simple count)."""
    batches = []
    for number, _ in get_accepted_counts(store):
        proofs = [p for p in get_proofs(store, number, vk_hash) if p.n_slots == n_slots]
        if not proofs or len(proofs) < proofs[0].n_segments:
            batches.append(number)
    return batches


@dataclass
class Segment:
    """One segment to prove: its batch, index and witness (public inputs included)."""

    batch: int
    index: int
    witness: TransitionWitness

    @property
    def root_after(self) -> int:
        return self.witness.public[3]


@dataclass
class PlannedBatch:
    number: int
    segments: list[Segment]
    missing: list[Segment]
    new_root: int


def plan_proofs(store: Store, batches: Sequence[int] | None, vk_hash: str, shape: TransitionShape) -> list[PlannedBatch]:
    """The segments of each batch, and those still without a proof for this key."""
    numbers = get_unproven_batches(store, vk_hash, shape.n_slots) if batches is None else list(batches)
    genesis = get_genesis(store)
    planned = []
    for number in numbers:
        # a committed batch
        if store.get_batch(number) is None:
            raise ProvingError(f"no committed batch {number} (the node has {store.count_batches()})")
        try:
            replayed = load_transition_batch(store, genesis, number, shape)
        except (TransitionReplayError, ValueError) as exc:
            raise ProvingError(f"batch {number} cannot be proven: {exc}") from None
        segments = [Segment(number, w.segment, w) for w in replayed.witnesses]
        done = {p.segment for p in get_proofs(store, number, vk_hash) if p.n_slots == shape.n_slots}
        planned.append(PlannedBatch(number, segments, [s for s in segments if s.index not in done], replayed.new_root))
    return planned


def prove_batches(
    home: Path,
    store: Store,
    executor: Executor,
    batches: Sequence[int] | None = None,
    on_planned: Callable[[int], None] | None = None,
    on_proof: Callable[[ProofEvent], None] | None = None,
    backend: str | None = None,
) -> ProveReport:
    """Prove every segment of `batches` (default: every batch not fully proven) that has no proof
    yet; store each proof as soon as it is verified. `on_planned(total)` is told how many segments
    will be proven, `on_proof` each stored one. A failed task fails the run after the proofs that
    did complete are stored (the next run resumes there). `backend` names the proving and
    verification backend (default: each process's configured or fastest installed one)."""
    started = time.perf_counter()
    vk_hash, n_slots = get_current_keys(home, store)
    shape = get_shape(get_genesis(store), n_slots)
    pk_path, vk_path = get_key_paths(home)
    pvk = prepare_verifying_key(parse_verifying_key(read_json(vk_path)), backend)
    planned = plan_proofs(store, batches, vk_hash, shape)
    report = ProveReport(vk_hash, n_slots)
    total = sum(len(p.missing) for p in planned)
    report.skipped = sum(len(p.segments) - len(p.missing) for p in planned)
    if on_planned is not None:
        on_planned(total)
    futures: dict[Future, Segment] = {}
    counts = {p.number: len(p.segments) for p in planned}
    failures: list[str] = []
    key = share_proving_key(executor, pk_path) if total else None
    try:
        for batch in planned:
            for segment in batch.missing:
                futures[executor.submit(prove_segment_task, key, shape, segment.witness, backend)] = segment
        for future in as_completed(futures):
            segment = futures[future]
            try:
                proof_json, seconds = future.result()
            except Exception as exc:  # noqa: BLE001 - reported with the segment; others still get stored
                failures.append(f"batch {segment.batch} segment {segment.index}: {type(exc).__name__}: {exc}")
                continue
            store_verified_proof(store, pvk, segment, proof_json, seconds, counts[segment.batch], n_slots, vk_hash)
            report.proven += 1
            report.prove_seconds += seconds
            if on_proof is not None:
                on_proof(ProofEvent(segment.batch, segment.index, seconds))
    finally:
        for future in futures:
            future.cancel()
    if failures:
        raise ProvingError(f"{len(failures)} segment proofs failed ({report.proven} stored; run prove again to resume): {failures[0]}")
    for batch in planned:
        stored = get_proofs(store, batch.number, vk_hash)
        report.batches[batch.number] = {
            "segments": len(batch.segments),
            "proven_now": len(batch.missing),
            "proven": len(stored),
            "new_root": to_field_hex(batch.new_root),
        }
    report.seconds = time.perf_counter() - started
    return report


def store_verified_proof(
    store: Store, pvk: PreparedVerifyingKey, segment: Segment, proof_json: dict, seconds: float, n_segments: int, n_slots: int, vk_hash: str
) -> None:
    """Verify a worker's proof against the public inputs computed here, then store it durably."""
    public_inputs = segment.witness.public
    # a worker's proof is checked before it is trusted (a wrong one is never stored)
    if not verify_proof(pvk, parse_proof(proof_json), public_inputs):
        raise ProvingError(f"batch {segment.batch} segment {segment.index}: the worker's proof does not verify")
    put_proof(
        store,
        ProofRow(
            batch=segment.batch,
            segment=segment.index,
            n_segments=n_segments,
            n_slots=n_slots,
            vk_hash=vk_hash,
            segment_root=to_field_hex(segment.root_after),
            public_hash="0x" + compute_public_inputs_hash(public_inputs).hex(),
            proof=proof_json,
            prove_s=seconds,
            created_at=time.time(),
        ),
    )
