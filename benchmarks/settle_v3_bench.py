"""Settlement gas of circuit v3 on L1 (RollupV3.vy on py-evm), per trade: prints JSON.

Two steps, because proving is slow and gas measurement is not:

    python benchmarks/settle_v3_bench.py prepare [--slots 32] [--trades 1024] [--cache DIR]
    python benchmarks/settle_v3_bench.py run [--cache DIR] [--sizes 64,256,1024]

`prepare` generates a workload (48 accounts, one perpetual; deposits and the first oracle update
are batch 1, then `--trades` perpetual trades are batch 2), replays it as v3 segments of `--slots`
slots, runs one setup and proves every segment (the configured proving backend: mcl when
installed), and writes the published batches to the cache with the constraints and timings.

`run` deploys a fresh RollupV3 per size, queues the deposits on L1, settles batch 1, then settles
the first `size` trades of batch 2 (its first size/slots segments: a prefix of a batch is a
batch, as its proofs are per segment) in one transaction, and splits the gas: calldata,
signatures (ecrecover and the EIP-712 digests), proof check (input combination, MSM, pairing),
the rest. The split charges every opcode to the Vyper source line it runs (py-evm opcode hooks,
as benchmarks/settle_profile.py does).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_CACHE = ROOT / "bench-results" / "settle_v3"
ACCOUNTS = 48
SEED = 5


def prepare(args: argparse.Namespace) -> dict:
    """Prove and cache; every proof is written as soon as it exists, so `run` can measure the
    prefix proven so far (the meta file records the progress)."""
    from prover.circuits.transition import build_transition_circuit
    from prover.setup import setup
    from prover.transition_publish import get_accepted, prove_segments, publish, replay_batches
    from rollup.fixtures import WorkloadSpec, generate_workload
    from verifier.state_tree import TreeShape
    from verifier.transition import write_transition

    spec = WorkloadSpec(accounts=ACCOUNTS, perps=1, series=0, txs=args.trades + 64, seed=SEED, mix={"perp_trade": 1})
    workload = generate_workload(spec, workers=1)
    txs, signers = get_accepted(workload.genesis, workload.transactions)
    first = next(i for i, tx in enumerate(txs) if tx.type == "perp_trade")
    trades = slice(first, first + args.trades)
    # every trade accepted, or a prefix of the batch would hold fewer trades than it says
    if len(txs[trades]) != args.trades:
        raise SystemExit(f"the workload has {len(txs) - first} accepted trades, fewer than {args.trades}")
    tree = TreeShape(3, 4)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    shape, batches, _, _ = replay_batches(workload.genesis, [(txs[:first], signers[:first]), (txs[trades], signers[trades])], args.slots, tree)
    timings["witness"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    cs = build_transition_circuit(shape, batches[0].witnesses[0])
    timings["synthesis_one_segment"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    pk = setup(cs, seed=1)
    timings["setup"] = round(time.perf_counter() - started, 3)
    cache = Path(args.cache)
    meta = {
        "slots": args.slots,
        "trades": args.trades,
        "accounts": ACCOUNTS,
        "seed": SEED,
        "tree": {"depth": tree.depth, "arity": tree.arity},
        "genesis_root": hex(batches[0].prev_root),
        "constraints_per_segment": cs.n_constraints,
        "public_inputs_per_segment": shape.count_public_inputs(),
        "timings_seconds": timings,
        "prove_seconds_per_segment": [],
        "backend": args.backend or "default",
        "proven": {},
    }
    started = time.perf_counter()
    for batch in batches:
        proofs: list[dict] = []
        write_transition(cache / f"batch-{batch.number}", publish(batch, pk.vk, [], workload.genesis, tree))
        for proof in prove_segments(batch, pk, args.backend):
            meta["prove_seconds_per_segment"].append(round(time.perf_counter() - started, 3))
            started = time.perf_counter()
            proofs.append(proof)
            directory = cache / f"batch-{batch.number}" / "proofs"
            (directory / f"segment-{len(proofs) - 1}.json").write_text(json.dumps(proof))
            meta["proven"][str(batch.number)] = len(proofs)
            (cache / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--slots", type=int, default=32)
    p.add_argument("--trades", type=int, default=1024)
    p.add_argument("--cache", default=str(DEFAULT_CACHE))
    p.add_argument("--backend", default=None)
    r = sub.add_parser("run")
    r.add_argument("--cache", default=str(DEFAULT_CACHE))
    r.add_argument("--sizes", default="64,256,1024")
    args = parser.parse_args()
    if args.command == "prepare":
        print(json.dumps(prepare(args), indent=1))
    else:
        print(json.dumps(run_bench(args), indent=1))


def run_bench(args: argparse.Namespace) -> dict:
    raise NotImplementedError


if __name__ == "__main__":
    main()
