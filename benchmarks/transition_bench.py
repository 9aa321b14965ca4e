"""Circuit v3 benchmark: prints JSON.

- Constraints of one segment of the default genesis (2 perpetuals, 8 option series, 16 scenarios)
  on the production tree (4-ary, depth 12), split by gadget: per slot (Merkle paths, account leaf
  hashes, the rules, instrument selection, record words, L2 signatures) and per segment (opening and
  closing the state root, the oracle section); constraints per trade slot.
- Native costs in the node: the v3 state root update per touched account (leaf hash + 4-ary
  Poseidon path, batch update), beside v2's keccak tree as measured before its deletion (a cited
  constant, V2_KECCAK: v2 is gone, so it is not re-measured); witness generation per slot.
- With --prove: setup and proving time of that segment (wall and CPU seconds), per proving backend
  installed (or --backends), and per trade.

    python benchmarks/transition_bench.py [--slots 4] [--prove [--backends mcl py_ecc]] [--accounts 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections import Counter

from prover.circuits.transition import TransitionShape, build_transition_circuit
from prover.transition_publish import get_accepted
from prover.transition_segments import build_transition_batch
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.state import State
from rollup.state_tree import PoseidonTree
from verifier.encoding import compute_genesis_hash
from verifier.state_tree import TreeShape, hash_account
from verifier.wire import ORDER_SLOTS

# v2's keccak state tree (rollup/merkle.py: binary, depth 32), deleted with circuit v2: cited from
# the last commit that had it, not re-measured
V2_KECCAK = {
    "v2_keccak_us_per_touched_leaf_measured": 19,
    "v2_keccak_measured_at": (
        "commit 1c27874: README.md's 'diff + Merkle root update, 19 us per touched leaf (61,014 leaves)', printed by "
        "benchmarks/node_bench.py (merkle_update_us_per_touched_leaf: 100k accounts, the diff included); the bare tree "
        "update was benchmarks/merkle_bench.py's, and this script's own run there (docs/bench/transition_bench.json) gave 6.3"
    ),
}

SLOT_PARTS = {
    "leaf_update": "merkle_paths",
    "account_leaf": "account_leaf_hashes",
    "instrument_select": "instrument_selection",
    "record": "record_words",
    "signatures": "l2_signatures",  # per window: key id == leaf key, EdDSA-Poseidon verification; the message hash
}


def classify(gadget: str) -> tuple[str, str]:
    """(top-level part, detail) of a constraint's gadget path."""
    parts = gadget.split("/")
    top = parts[0]
    if not top.startswith("slot"):
        return top, top
    for name, label in SLOT_PARTS.items():
        if name in parts[1:]:
            return "slot", label
    return "slot", "rules"


def count_constraints(cs, n_slots: int) -> dict:
    totals: Counter = Counter()
    slot_detail: Counter = Counter()
    for gadget in cs.constraint_gadgets:
        top, detail = classify(gadget)
        totals[top] += 1
        if top == "slot":
            slot_detail[detail] += 1
    per_slot = {k: v // n_slots for k, v in sorted(slot_detail.items())}
    return {
        "segment_total": cs.n_constraints,
        "public_inputs": cs.n_public,
        "per_segment": {k: v for k, v in totals.items() if k != "slot"},
        "per_trade_slot": sum(per_slot.values()),
        "per_trade_slot_by_gadget": per_slot,
        # the records hash is one gadget of the segment: a compression per slot and the padding block
        "per_trade_slot_with_records_hash": sum(per_slot.values()) + totals["records_hash"] // n_slots,
    }


def measure_root_update(accounts: int, touched: int, shape: TreeShape) -> dict:
    """Per touched account: the leaf hash plus its share of a batch update (v3), beside v2's cited keccak figure."""
    rng = random.Random(1)
    header = lambda i: [i + 1, rng.randrange(10**12), rng.randrange(100), rng.randrange(1, 2**248)]  # noqa: E731  (address, collateral, nonce, L2 key id)
    positions = [rng.randrange(-1000, 1000) for _ in range(30)]  # 10 instruments x (size, cost, funding)
    orders = [rng.randrange(1000) for _ in range(2 * ORDER_SLOTS)]  # (nonce, filled) per order slot
    tree = PoseidonTree(shape)
    tree.update({i: hash_account(header(i), positions, orders) for i in range(accounts)})
    keys = rng.sample(range(accounts), touched)
    started = time.perf_counter()
    leaves = {k: hash_account(header(k), positions, orders) for k in keys}
    hashed = time.perf_counter()
    tree.update(leaves)
    done = time.perf_counter()
    return {
        "accounts_in_tree": accounts,
        "touched": touched,
        "v3_us_per_touched_account": round((done - started) / touched * 1e6, 1),
        "v3_leaf_hash_us": round((hashed - started) / touched * 1e6, 1),
        "v3_path_us": round((done - hashed) / touched * 1e6, 1),
        **V2_KECCAK,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--accounts", type=int, default=4000, help="accounts in the tree for the root-update timing")
    parser.add_argument("--prove", action="store_true")
    parser.add_argument("--backends", nargs="*", default=None, help="with --prove: these backends (default: every installed one)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    tree_shape = TreeShape(args.depth, 4)
    workload = generate_workload(WorkloadSpec(accounts=24, txs=300, seed=4), workers=1)
    genesis = workload.genesis
    shape = TransitionShape.from_genesis(genesis, compute_genesis_hash(genesis), args.slots, tree_shape)
    txs, signers = get_accepted(genesis, workload.transactions)
    state, tree = State.from_genesis(genesis), PoseidonTree(tree_shape)
    started = time.perf_counter()
    batch = build_transition_batch(state, tree, shape, 1, txs, signers)
    witness_s = time.perf_counter() - started
    n_slots_used = sum(len(s.transactions) for s in batch.segments)
    full = next(w for s, w in zip(batch.segments, batch.witnesses) if len(s.transactions) == args.slots and s.oracle_update is None)
    with_oracle = next(w for s, w in zip(batch.segments, batch.witnesses) if s.oracle_update is not None)
    started = time.perf_counter()
    cs = build_transition_circuit(shape, full)
    synth_s = time.perf_counter() - started
    cs.check()
    out = {
        "benchmark": "transition_circuit",
        "shape": {"slots": args.slots, "instruments": len(shape.table), "scenarios": shape.n_scenarios,
                  "tree": f"{tree_shape.arity}-ary, depth {tree_shape.depth}", "tree_capacity": tree_shape.capacity},
        "constraints": count_constraints(cs, args.slots),
        "constraints_same_with_an_oracle_update": build_transition_circuit(shape, with_oracle).n_constraints == cs.n_constraints,
        "native": {
            "witness_ms_per_slot": round(witness_s / max(1, n_slots_used) * 1e3, 2),
            "synthesis_ms_per_slot": round(synth_s / args.slots * 1e3, 1),
            "root_update": measure_root_update(args.accounts, min(1000, args.accounts // 2), tree_shape),
        },
        "segments_in_workload": len(batch.segments),
        "slots_used": n_slots_used,
    }
    if args.prove:
        from prover.groth16 import prove
        from prover.setup import setup
        from verifier.backends import list_installed

        backends = {}
        # setup and proof on each backend (same toxic waste: the same key on each, tested in tests/test_native.py)
        for name in args.backends or list_installed():
            started, cpu = time.perf_counter(), time.process_time()
            pk = setup(cs, seed=1, backend=name)
            setup_s = (time.perf_counter() - started, time.process_time() - cpu)
            times = []
            for rep in range(2 if name != "py_ecc" else 1):
                cs_again = build_transition_circuit(shape, full)
                phases: dict[str, float] = {}
                started, cpu = time.perf_counter(), time.process_time()
                prove(pk, cs_again, rng=random.Random(rep), backend=name, timings=phases)
                times.append((time.perf_counter() - started, time.process_time() - cpu, phases))
            wall, cpu_s, phases = min(times, key=lambda t: t[0])
            backends[name] = {"setup_s": {"wall": round(setup_s[0], 1), "cpu": round(setup_s[1], 1)},
                              "prove_s": {"wall": round(wall, 2), "cpu": round(cpu_s, 2)}, "prove_cpu_s_per_trade": round(cpu_s / args.slots, 2),
                              "prove_cpu_split_s": {k: round(v, 2) for k, v in phases.items()}}
            del pk
        out["proving"] = {"constraints": cs.n_constraints, "backends": backends}
    # the machine is shared: the native times carry other jobs' load
    out["machine"] = {"cores": os.cpu_count(), "load_average_1min": {"start": round(load_before, 1), "end": round(os.getloadavg()[0], 1)}}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
