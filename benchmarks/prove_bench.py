"""Proving pipeline benchmark: prints JSON.

One node (a fresh home in a temporary directory) commits one batch per size (default 64 and 256
transactions of a seeded workload), then for each batch: execution (node.submit), witness
generation (replaying the batch into segments: `prover.segments.load_segments`), circuit synthesis
of every segment, proving through `prover.pipeline.prove_batches` with 1 and then 2 process
workers (the speedup; the target is >= 1.8x on 2 free cores), and batch verification of all its
proofs (one final exponentiation). Constraints per transaction type come from
benchmarks/circuit_bench.py. The setup (UNSAFE, single-party) runs once for --slots.

    python benchmarks/prove_bench.py [--sizes 64,256] [--slots 4] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from prover.circuits.segment import build_segment_circuit
from prover.pipeline import get_genesis, get_key_paths, prove_batches, run_setup
from prover.segments import load_segments
from rollup.executors import make_executor
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.node import Node
from rollup.storage import delete_proofs, get_proofs
from verifier.groth16 import batch_verify, prepare_verifying_key
from verifier.segment import SegmentShape, compute_public_inputs
from verifier.snarkjs import load_verifying_key, parse_proof

sys.path.insert(0, str(Path(__file__).parent))
import circuit_bench  # noqa: E402


def measure_batch(node: Node, home: Path, batch: int, shape: SegmentShape, workers: list[int]) -> dict[str, object]:
    store = node.store
    genesis = get_genesis(store)
    started = time.perf_counter()
    segments = load_segments(store, genesis, batch, shape)
    witness_s = time.perf_counter() - started
    started = time.perf_counter()
    for segment in segments:
        build_segment_circuit(shape, segment.public)
    synthesis_s = time.perf_counter() - started
    proving: dict[str, float] = {}
    per_task: dict[str, float] = {}
    for count in workers:
        delete_proofs(store, batch)
        with make_executor("process", count) as executor:
            report = prove_batches(home, store, executor, [batch])
        proving[str(count)] = round(report.seconds, 2)
        # wall time of one segment proof inside its worker: it grows when the cores are shared
        per_task[str(count)] = round(report.prove_seconds / max(1, report.proven), 2)
    pvk = prepare_verifying_key(load_verifying_key(get_key_paths(home)[1]))
    items = [(parse_proof(row.proof), compute_public_inputs(s.public)) for row, s in zip(get_proofs(store, batch), segments)]
    started = time.perf_counter()
    ok = batch_verify(pvk, items, random.Random(0))
    verify_s = time.perf_counter() - started
    out: dict[str, object] = {
        "accepted_transactions": sum(len(s.transactions) for s in segments),
        "segments": len(segments),
        "witness_generation_s": round(witness_s, 3),
        "circuit_synthesis_s": round(synthesis_s, 3),
        "proving_wall_s_by_workers": proving,
        "seconds_per_segment_proof_by_workers": per_task,
        "batch_verification_s": round(verify_s, 3),
        "verified": ok,
    }
    if "1" in proving and "2" in proving:
        out["speedup_2_workers"] = round(proving["1"] / proving["2"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256", help="transactions per batch, comma-separated")
    parser.add_argument("--slots", type=int, default=4, help="slots per segment")
    parser.add_argument("--workers", default="1,2", help="worker counts to prove with, comma-separated")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    workload = generate_workload(WorkloadSpec(accounts=16, txs=sum(sizes), seed=11), workers=1)
    result: dict[str, object] = {"slots_per_segment": args.slots, "batches": {}}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        # no settlement bound: the benchmark proves one batch of each size, it never settles
        node = Node.init(home, workload.genesis, max_batch_txs=None)
        try:
            setup = run_setup(home, node.store, args.slots, force=True)
            result["setup"] = {"seconds": round(setup.seconds, 2), "constraints": setup.n_constraints, "public_inputs": setup.n_public}
            shape = SegmentShape.from_genesis(workload.genesis, args.slots)
            start = 0
            for size in sizes:
                txs = workload.transactions[start : start + size]
                start += size
                batch = node.submit(txs).batch
                entry = {"transactions": len(txs), "execution_s": round(batch.timings["total_s"], 3)}
                entry.update(measure_batch(node, home, batch.number, shape, workers))
                result["batches"][str(size)] = entry  # type: ignore[index]
        finally:
            node.close()
    slots = circuit_bench.get_valid_slots(SegmentShape(1))
    result.update(circuit_bench.measure_constraints(SegmentShape(1), slots))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
