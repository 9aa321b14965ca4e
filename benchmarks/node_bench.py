"""Node benchmark (issue 2): the whole sequential batch pipeline, measured in one run.

Generates a seeded signed workload (one deposit per account, then a mixed batch), then, in a
fresh child process so that the generator's memory is not counted, creates a node, commits the
deposits as batch 1 and the mixed transactions as batch 2, and reports for batch 2:

- execution throughput (signature checks excluded) and its ratio to the 20,000 tx/s target,
- signature checks (EIP-712 digest + secp256k1 recovery) per second, reported separately,
- diff and Poseidon root update time per touched leaf, SQLite commit time per batch,
- peak resident memory of the node process (target: under 1 GB for 50k transactions over
  100k accounts).

Usage: python benchmarks/node_bench.py [--accounts 100000] [--txs 50000] [--quick]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_TX_PER_S = 20_000
TARGET_RSS_MB = 1024


def generate(folder: Path, accounts: int, txs: int, seed: int) -> dict:
    from rollup.fixtures import WorkloadSpec, generate_workload, write_workload

    started = time.perf_counter()
    workload = generate_workload(WorkloadSpec(accounts=accounts, txs=txs, seed=seed, contention=0.0, invalid_share=0.01))
    write_workload(workload, folder / "workload.jsonl", folder / "genesis.json")
    summary = dict(workload.summary)
    summary["wall_s"] = round(time.perf_counter() - started, 2)
    return summary


def run_node(folder: Path) -> dict:
    """Runs in the child process: returns the measurements of the node itself."""
    import resource

    from rollup.node import Node
    from rollup.txfile import read_transaction_file
    from verifier.wire import Genesis

    genesis = Genesis.model_validate_json((folder / "genesis.json").read_text())
    t0 = time.perf_counter()
    transactions = read_transaction_file(folder / "workload.jsonl")
    parse_s = time.perf_counter() - t0
    setup = [tx for tx in transactions if tx.type == "deposit"]
    n_setup = len(setup)
    # deposits come first in the workload: batch 1 creates the accounts, batch 2 is the mix
    mixed = transactions[n_setup:]
    # execution only (no settlement bound): measures one large batch, which could not settle
    node = Node.init(folder / "node", genesis, max_batch_txs=None)
    first = node.submit(transactions[:n_setup]).batch
    second = node.submit(mixed).batch
    node.close()
    t1 = time.perf_counter()
    reopened = Node.open(folder / "node")
    reopen_s = time.perf_counter() - t1
    assert reopened.root == second.new_root
    reopened.close()
    n = len(mixed)
    t = second.timings
    n_signatures = sum(len([f for f in type(tx).model_fields if f.endswith("signature")]) for tx in mixed)
    by_type: dict[str, int] = {}
    for tx in mixed:
        by_type[tx.type] = by_type.get(tx.type, 0) + 1
    return {
        "parse_file_s": round(parse_s, 3),
        "setup_batch": {"transactions": n_setup, "timings_s": {k: round(v, 3) for k, v in first.timings.items()}},
        "batch": {
            "transactions": n,
            "by_type": by_type,
            "accepted": second.n_accepted,
            "touched_leaves": len(second.diff.leaves),
            "timings_s": {k: round(v, 3) for k, v in t.items()},
        },
        "execution_tx_per_s": round(n / t["execution_s"]),
        "execution_vs_target": round(n / t["execution_s"] / TARGET_TX_PER_S, 2),
        "execution_tx_per_cpu_s": round(n / t["execution_cpu_s"]),
        "signature_checks": {
            "transactions_per_s": round(n / t["signatures_s"]),
            "signatures_per_s": round(n_signatures / t["signatures_s"]),
            "signatures": n_signatures,
        },
        "diff_and_poseidon_root_us_per_touched_leaf": round(t["diff_and_root_s"] / max(1, len(second.diff.leaves)) * 1e6, 2),
        "sqlite_commit_s_per_batch": round(t["commit_s"], 3),
        "reopen_and_root_check_s": round(reopen_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--txs", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="10k accounts, 5k transactions")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_node(Path(args.child))))
        return
    if args.quick:
        args.accounts, args.txs = 10_000, 5_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        workload = generate(folder, args.accounts, args.txs, args.seed)
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(folder)], capture_output=True, text=True, env=dict(os.environ)
        )
        if child.returncode != 0:
            sys.exit(f"node run failed:\n{child.stderr}")
        node = json.loads(child.stdout)
    result = {
        "benchmark": "node_sequential_pipeline",
        "accounts": args.accounts,
        "mixed_transactions": args.txs,
        "cpu_count": os.cpu_count(),
        "workload_generation": {k: workload[k] for k in ("transactions", "generate_seconds", "sign_seconds", "wall_s", "workers")},
        **node,
        "targets": {
            "execution_tx_per_s": TARGET_TX_PER_S,
            "peak_rss_mb": TARGET_RSS_MB,
            "execution_met": node["execution_tx_per_s"] >= TARGET_TX_PER_S,
            "memory_met": node["peak_rss_mb"] < TARGET_RSS_MB,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
