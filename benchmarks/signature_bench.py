"""Signature costs: EIP-712 digests (fast path vs eth-account), signer recovery, signing, and the
time to generate signed workloads with `rollup fixtures`.

Prints JSON. Rates are per CPU second of the measuring process (`time.process_time`) where one
process does the work; pool runs report wall time (the machine is shared: treat as orders of
magnitude). Usage: `python benchmarks/signature_bench.py [--quick] [--sizes 10000,50000]`.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable, Sequence

from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.signing import dev_account_key, sign_digest
from verifier.l2auth import check_signers
from verifier.encoding import (
    compute_signing_digest,
    compute_signing_digest_reference,
    get_signature_fields,
    recover_address,
    is_l2_signed,
    recover_signers,
)


def measure(fn: Callable[[Any], Any], items: Sequence[Any]) -> float:
    """Items per CPU second."""
    started = time.process_time()
    for item in items:
        fn(item)
    elapsed = time.process_time() - started
    return round(len(items) / elapsed, 1) if elapsed > 0 else float("inf")


def _recover_chunk(chunk: Sequence[tuple[bytes, tuple[str, ...]]]) -> list[tuple[str, ...]]:
    return [tuple(recover_address(digest, s) for s in sigs) for digest, sigs in chunk]


def measure_pool_recovery(jobs: list[tuple[bytes, tuple[str, ...]]], workers: int) -> float:
    """Signatures recovered per wall second in a multiprocess pool (digests computed beforehand)."""
    from multiprocess import Pool

    chunks = [jobs[i : i + 2_000] for i in range(0, len(jobs), 2_000)]
    with Pool(workers) as pool:
        pool.map(len, [[]] * workers)  # start the workers before timing
        started = time.perf_counter()
        pool.map(_recover_chunk, chunks)
        elapsed = time.perf_counter() - started
    return round(sum(len(s) for _, s in jobs) / elapsed, 1)


def bench_primitives(quick: bool) -> dict[str, Any]:
    workload = generate_workload(WorkloadSpec(accounts=200, txs=2_000 if quick else 6_000, seed=1), workers=1)
    txs = workload.transactions
    domain = workload.genesis.signing_domain
    by_type: dict[str, list] = {}
    for tx in txs:
        by_type.setdefault(tx.type, []).append(tx)
    digests = {id(tx): compute_signing_digest(tx, domain) for tx in txs}
    ethereum = [tx for tx in txs if not is_l2_signed(type(tx))]  # recovered; the others' L2 signatures are verified
    l2_signed = [tx for tx in txs if is_l2_signed(type(tx))]
    pairs = [(digests[id(tx)], getattr(tx, name)) for tx in ethereum for name in get_signature_fields(type(tx))]
    key = dev_account_key(1, 0)
    reference_sample = txs[:: max(1, len(txs) // (300 if quick else 1_000))]
    jobs = [(digests[id(tx)], tuple(getattr(tx, n) for n in get_signature_fields(type(tx)))) for tx in ethereum]
    l2_signatures = sum(len(get_signature_fields(type(tx))) for tx in l2_signed)
    return {
        "transactions": len(txs),
        "signatures": len(pairs),
        "digest_per_s_fast": measure(lambda tx: compute_signing_digest(tx, domain), txs),
        "digest_per_s_reference_eth_account": measure(lambda tx: compute_signing_digest_reference(tx, domain), reference_sample),
        "digest_per_s_fast_by_type": {
            t: measure(lambda tx: compute_signing_digest(tx, domain), items) for t, items in sorted(by_type.items())
        },
        "recover_per_s_coincurve": measure(lambda p: recover_address(*p), pairs),
        "recover_signers_tx_per_s_with_digest": measure(lambda tx: recover_signers(tx, domain), ethereum),
        "l2_signed_transactions": len(l2_signed),
        "l2_check_signers_tx_per_s": measure(lambda tx: check_signers(tx, domain), l2_signed),
        "l2_signatures_per_transaction": round(l2_signatures / max(1, len(l2_signed)), 3),
        "recover_per_s_pool_2_wall": measure_pool_recovery(jobs, 2),
        "sign_per_s_coincurve": measure(lambda p: sign_digest(key, p[0]), pairs),
    }


def bench_fixtures(sizes: Sequence[int], workers_options: Sequence[int]) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        for workers in workers_options:
            spec = WorkloadSpec(accounts=1_000, txs=size, contention=0.1, invalid_share=0.02, seed=7)
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            workload = generate_workload(spec, workers=workers)
            results.append({
                "txs": size,
                "accounts": spec.accounts,
                "workers": workers,
                "lines": len(workload.transactions),
                "wall_seconds": round(time.perf_counter() - started_wall, 2),
                "main_process_cpu_seconds": round(time.process_time() - started_cpu, 2),
                "generate_seconds": workload.summary["generate_seconds"],
                "sign_seconds": workload.summary["sign_seconds"],
                "by_type": workload.summary["by_type"],
                "rejected": workload.summary["rejected"],
            })
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small samples, one 10k fixture run")
    parser.add_argument("--sizes", default="10000,50000", help="fixture sizes (transactions), comma-separated")
    parser.add_argument("--workers", default="1,2", help="signing worker counts to compare, comma-separated")
    args = parser.parse_args()
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    workers = [1] if args.quick else [int(w) for w in args.workers.split(",") if w]
    print(json.dumps({"primitives": bench_primitives(args.quick), "fixtures": bench_fixtures(sizes, workers)}, indent=2))


if __name__ == "__main__":
    main()
