"""Segment circuit benchmark: prints JSON.

- Constraints per slot, per transaction type. Every slot has one shape (types are selected by
  public flags), so a slot costs the same whatever it holds; the JSON shows it per type anyway
  (measured, not assumed: one segment per type is built and counted), with the split by gadget.
- Public inputs per slot and per segment.
- Witness generation per slot (native rules + windows + synthesis + constraint check).
- With --prove: setup and Groth16 proving time (wall and CPU) of one segment of --slots slots
  (default 4) filled with real transactions, and its verification.

    python benchmarks/circuit_bench.py [--slots 4] [--prove]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

from prover.circuits import (
    SUPPORTED_TYPES,
    SegmentPublic,
    SegmentShape,
    build_noop_slot,
    build_segment_circuit,
    compute_public_inputs,
    count_public_inputs,
)
from prover.circuits.segment import synthesize_segment
from prover.circuits.witness import compute_slot
from prover.groth16 import prove
from prover.setup import setup
from prover.r1cs import ConstraintSystem
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.rules import process_transaction
from rollup.state import State
from verifier.encoding import InvalidSignature, recover_signers
from verifier.groth16 import prepare_verifying_key, verify_proof


def get_valid_slots(shape: SegmentShape, txs: int = 900) -> dict[str, list]:
    """Slots of accepted transactions of every supported type, from a random workload."""
    workload = generate_workload(WorkloadSpec(accounts=16, txs=txs, seed=11), workers=1)
    state = State.from_genesis(workload.genesis)
    slots: dict[str, list] = {kind: [] for kind in SUPPORTED_TYPES}
    for tx in workload.transactions:
        try:
            signers = recover_signers(tx, workload.genesis.signing_domain)
        except InvalidSignature:
            continue
        if tx.type in SUPPORTED_TYPES:
            probe = state.copy()
            if process_transaction(probe, tx, signers).status == "accepted":
                slots[tx.type].append(compute_slot(state, tx, signers, shape))
                continue
        process_transaction(state, tx, signers)
    return slots


def measure_constraints(shape: SegmentShape, slots: dict[str, list]) -> dict[str, object]:
    one = SegmentShape(1, shape.max_positions, shape.n_scenarios)
    per_type = {}
    for kind, items in sorted(slots.items()):
        if not items:
            continue  # none accepted in this workload
        cs = build_segment_circuit(one, SegmentPublic(1, 0, items[:1]))
        cs.check()
        per_type[kind] = cs.n_constraints
    noop = build_segment_circuit(one)
    per_type["noop"] = noop.n_constraints
    by_gadget = Counter(name.split("/")[1] if "/" in name else name for name in noop.constraint_gadgets)
    return {"constraints_per_slot_by_type": per_type, "constraints_per_slot_by_gadget": dict(by_gadget.most_common())}


def measure_witness(shape: SegmentShape, slots: dict[str, list]) -> dict[str, float]:
    one = SegmentShape(1, shape.max_positions, shape.n_scenarios)
    timings = {}
    for kind, items in sorted(slots.items()):
        if not items:
            continue
        sample = items[:20]
        started = time.perf_counter()
        for slot in sample:
            cs = ConstraintSystem()
            synthesize_segment(cs, one, SegmentPublic(1, 0, [slot]))
            cs.check()
        timings[kind] = round((time.perf_counter() - started) / max(1, len(sample)) * 1000, 1)
    return timings


def measure_proving(shape: SegmentShape, slots: dict[str, list]) -> dict[str, object]:
    kinds = ["perp_trade", "option_trade", "transfer", "withdraw", "deposit"]
    chosen = [slots[k][i // len(kinds)] for i, k in zip(range(shape.n_slots), kinds * shape.n_slots)]
    chosen += [build_noop_slot(shape) for _ in range(shape.n_slots - len(chosen))]
    segment = SegmentPublic(1, 0, chosen)
    cs = build_segment_circuit(shape, segment)
    wall, cpu = time.perf_counter(), time.process_time()
    pk = setup(cs, seed="circuit-bench")
    setup_wall, setup_cpu = time.perf_counter() - wall, time.process_time() - cpu
    timings: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    proof = prove(pk, cs, timings=timings)
    prove_wall, prove_cpu = time.perf_counter() - wall, time.process_time() - cpu
    started = time.perf_counter()
    ok = verify_proof(prepare_verifying_key(pk.vk), proof, compute_public_inputs(segment))
    return {
        "slots": shape.n_slots,
        "types": kinds[: shape.n_slots],
        "constraints": cs.n_constraints,
        "public_inputs": cs.n_public,
        "setup_seconds": {"wall": round(setup_wall, 2), "cpu": round(setup_cpu, 2)},
        "prove_seconds": {"wall": round(prove_wall, 2), "cpu": round(prove_cpu, 2)},
        "prove_cpu_split": {k: round(v, 2) for k, v in timings.items()},
        "verify_seconds": round(time.perf_counter() - started, 3),
        "verified": ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=4, help="slots of the proven segment")
    parser.add_argument("--prove", action="store_true", help="also run setup and Groth16 proving")
    args = parser.parse_args()
    shape = SegmentShape(args.slots)
    slots = get_valid_slots(shape)
    result: dict[str, object] = {
        "shape": {"max_positions": shape.max_positions, "n_scenarios": shape.n_scenarios},
        "public_inputs_per_slot": (count_public_inputs(SegmentShape(1)) - 2),
        "public_inputs_per_segment": count_public_inputs(shape),
        **measure_constraints(shape, slots),
        "witness_ms_per_slot": measure_witness(shape, slots),
    }
    if args.prove:
        result["segment_proof"] = measure_proving(shape, slots)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
