"""Proving pipeline benchmark (circuit v3): prints JSON.

One node (a fresh home in a temporary directory, a small genesis: one perpetual, one option series,
a 4-ary accounts tree of depth --depth) commits one batch per size (default 8 and 16 transactions
of a seeded workload), then for each batch: execution (node.submit), witness generation (replaying
the batch from the store into v3 segments: `prover.transition_segments.load_transition_batch`),
circuit synthesis of every segment (`build_transition_circuit`), proving through
`prover.pipeline.prove_batches` with 1 and then 2 process workers (the speedup; the target is
>= 1.8x on 2 free cores), and batch verification of all its proofs against the public inputs the
replay computed (one final exponentiation). The setup (UNSAFE, single-party, the fastest installed
backend) runs once for --slots; the segment's constraints are split by gadget as
benchmarks/transition_bench.py splits them.

    python benchmarks/prove_bench.py [--sizes 8,16] [--slots 2] [--workers 1,2] [--depth 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from prover.circuits.transition import build_transition_circuit
from prover.pipeline import get_genesis, get_key_paths, get_shape, prove_batches, run_setup
from prover.transition_segments import load_transition_batch
from rollup.executors import make_executor
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.node import Node
from rollup.storage import delete_proofs, get_proofs
from verifier.groth16 import batch_verify, prepare_verifying_key
from verifier.snarkjs import load_verifying_key, parse_proof

sys.path.insert(0, str(Path(__file__).parent))
from transition_bench import count_constraints  # noqa: E402


def measure_batch(node: Node, home: Path, batch: int, n_slots: int, workers: list[int]) -> tuple[dict[str, object], object]:
    """The batch's numbers, and one of its (full) segment circuits for the constraint split."""
    store = node.store
    genesis = get_genesis(store)
    shape = get_shape(genesis, n_slots)
    started = time.perf_counter()
    replayed = load_transition_batch(store, genesis, batch, shape)
    witness_s = time.perf_counter() - started
    started = time.perf_counter()
    circuits = [build_transition_circuit(shape, w) for w in replayed.witnesses]
    synthesis_s = time.perf_counter() - started
    full = next((cs for cs, seg in zip(circuits, replayed.segments) if len(seg.transactions) == n_slots), circuits[0])
    del circuits
    proving: dict[str, float] = {}
    per_task: dict[str, float] = {}
    for count in workers:
        delete_proofs(store, batch)
        with make_executor("process", count) as executor:
            report = prove_batches(home, store, executor, [batch])
        proving[str(count)] = round(report.seconds, 2)
        # wall time of one segment proof inside its worker (key load included once per worker):
        # it grows when the cores are shared
        per_task[str(count)] = round(report.prove_seconds / max(1, report.proven), 2)
    pvk = prepare_verifying_key(load_verifying_key(get_key_paths(home)[1]))
    publics = {w.segment: w.public for w in replayed.witnesses}
    items = [(parse_proof(row.proof), publics[row.segment]) for row in get_proofs(store, batch)]
    started = time.perf_counter()
    ok = batch_verify(pvk, items, random.Random(0))
    verify_s = time.perf_counter() - started
    out: dict[str, object] = {
        "accepted_transactions": sum(len(s.transactions) + (s.oracle_update is not None) for s in replayed.segments),
        "segments": len(replayed.segments),
        "segments_opened_by_an_oracle_update": sum(s.oracle_update is not None for s in replayed.segments),
        "proofs_verified_together": len(items),
        "witness_generation_s": round(witness_s, 3),
        "circuit_synthesis_s": round(synthesis_s, 3),
        "proving_wall_s_by_workers": proving,
        "seconds_per_segment_proof_by_workers": per_task,
        "batch_verification_s": round(verify_s, 3),
        "verified": ok,
    }
    if "1" in proving and "2" in proving:
        out["speedup_2_workers"] = round(proving["1"] / proving["2"], 2)
    return out, full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,16", help="transactions per batch, comma-separated")
    parser.add_argument("--slots", type=int, default=2, help="slots per segment")
    parser.add_argument("--workers", default="1,2", help="worker counts to prove with, comma-separated")
    parser.add_argument("--depth", type=int, default=3, help="depth of the genesis' 4-ary accounts tree")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    spec = WorkloadSpec(accounts=16, perps=1, series=1, txs=sum(sizes), seed=11, tree_depth=args.depth)
    workload = generate_workload(spec, workers=1)
    load_before = os.getloadavg()[0]
    result: dict[str, object] = {
        "circuit": "v3 (prover/circuits/transition.py)",
        "genesis": {"perpetuals": spec.perps, "option_series": spec.series, "accounts": spec.accounts,
                    "tree": f"4-ary, depth {args.depth}"},
        "slots_per_segment": args.slots,
        "batches": {},
    }
    full = None
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        # no settlement bound: the benchmark proves one batch of each size, it never settles
        node = Node.init(home, workload.genesis, max_batch_txs=None)
        try:
            setup = run_setup(home, node.store, args.slots, force=True)
            result["setup"] = {"seconds": round(setup.seconds, 2), "constraints": setup.n_constraints, "public_inputs": setup.n_public}
            start = 0
            for size in sizes:
                txs = workload.transactions[start : start + size]
                start += size
                batch = node.submit(txs).batch
                entry = {"transactions": len(txs), "execution_s": round(batch.timings["total_s"], 3)}
                measured, full = measure_batch(node, home, batch.number, args.slots, workers)
                entry.update(measured)
                result["batches"][str(size)] = entry  # type: ignore[index]
        finally:
            node.close()
    if full is not None:
        result["constraints"] = count_constraints(full, args.slots)
    result["machine"] = {"cores": os.cpu_count(), "load_average_1min": {"start": round(load_before, 1), "end": round(os.getloadavg()[0], 1)}}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
