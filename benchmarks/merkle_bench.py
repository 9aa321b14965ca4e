"""State commitment benchmark: keccak backends, batch root updates, bulk build, multiproofs, memory.

Prints one JSON object. Run: .venv/bin/python benchmarks/merkle_bench.py [--accounts 100000]
Two layouts of the same number of accounts in a depth-32 tree: "dense" (keys 0..n-1, how the
node numbers accounts) and "random" (uniform keys: the worst case for node count).
Memory is measured in fresh subprocesses (peak RSS, includes the interpreter and the leaves).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from Crypto.Hash import keccak as pycryptodome_keccak
from eth_hash.auto import keccak as eth_keccak

from rollup.merkle import SparseMerkleTree
from verifier.merkle import KECCAK_BACKEND, keccak256, verify_multiproof

DEPTH = 32
BATCH_SIZES = (1, 100, 10_000, 50_000)
MULTIPROOF_SIZES = (16, 256)


def get_keys(layout: str, accounts: int, seed: int = 1) -> list[int]:
    if layout == "dense":
        return list(range(accounts))
    return random.Random(seed).sample(range(1 << DEPTH), accounts)


def make_leaves(keys: list[int], salt: int) -> dict[int, bytes]:
    return {key: keccak256(salt.to_bytes(8, "big") + key.to_bytes(32, "big")) for key in keys}


def compute_time_per_call(function: Callable[[], Any], calls: int, repeats: int = 5) -> float:
    """Best-of-`repeats` seconds per call."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def measure_keccak() -> dict[str, Any]:
    data = bytes(range(64))
    return {
        "input_bytes": 64,
        "eth_hash_auto_us": 1e6 * compute_time_per_call(lambda: eth_keccak(data), 20_000),
        "pycryptodome_direct_us": 1e6
        * compute_time_per_call(
            lambda: pycryptodome_keccak.new(digest_bits=256, data=data).digest(), 20_000
        ),
        "hot_path_us": 1e6 * compute_time_per_call(lambda: keccak256(data), 20_000),
        "hot_path_backend": KECCAK_BACKEND,
    }


def measure_updates(tree: SparseMerkleTree, keys: list[int]) -> dict[str, float]:
    """Microseconds per touched leaf; each batch rewrites random accounts of a fresh copy."""
    rng = random.Random(3)
    result = {}
    for size in BATCH_SIZES:
        runs = 50 if size == 1 else (5 if size <= 100 else 1)
        samples = []
        for run in range(runs):
            fresh = tree.copy()
            batch = make_leaves(rng.sample(keys, size), salt=1000 + run)
            start = time.perf_counter()
            fresh.update(batch)
            samples.append((time.perf_counter() - start) / size)
        result[f"batch_{size}_us_per_leaf"] = 1e6 * statistics.median(samples)
    return result


def measure_multiproofs(tree: SparseMerkleTree, leaves: dict[int, bytes]) -> dict[str, Any]:
    rng = random.Random(4)
    keys = list(leaves)
    result: dict[str, Any] = {}
    for size in MULTIPROOF_SIZES:
        chosen = rng.sample(keys, size)
        start = time.perf_counter()
        proof = tree.prove_many(chosen)
        proved = time.perf_counter()
        ok = verify_multiproof(tree.root, {k: leaves[k] for k in chosen}, proof)
        verified = time.perf_counter()
        result[f"leaves_{size}"] = {
            "proof_bytes": proof.size_bytes,
            "siblings": len(proof.siblings),
            "bitmap_words": len(proof.bitmap),
            "single_proofs_bytes": size * 32 * (DEPTH + 1),
            "prove_ms": 1e3 * (proved - start),
            "verify_ms": 1e3 * (verified - proved),
            "verified": ok,
        }
    single = tree.prove(keys[0])
    result["single_prove_us"] = 1e6 * compute_time_per_call(lambda: tree.prove(keys[0]), 200)
    result["single_proof_bytes"] = 32 * (len(single.siblings) + 1)
    return result


def measure_layout(layout: str, accounts: int) -> dict[str, Any]:
    keys = get_keys(layout, accounts)
    leaves = make_leaves(keys, salt=0)
    start = time.perf_counter()
    tree = SparseMerkleTree.from_leaves(leaves, DEPTH)
    built = time.perf_counter() - start
    return {
        "from_leaves_s": built,
        "stored_nodes": tree.stored_node_count,
        "root_update": measure_updates(tree, keys),
        "multiproof": measure_multiproofs(tree, leaves),
    }


def get_memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process (ru_maxrss would include the parent's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory_in_this_process(layout: str, accounts: int) -> dict[str, float]:
    """RSS with the leaves only, after building the tree, and the peak through a 50k-leaf update."""
    keys = get_keys(layout, accounts)
    leaves = make_leaves(keys, salt=0)
    before = get_memory_mb("VmRSS")
    tree = SparseMerkleTree.from_leaves(leaves, DEPTH)
    built = get_memory_mb("VmRSS")
    build_peak = get_memory_mb("VmHWM")
    tree.update(make_leaves(random.Random(5).sample(keys, min(50_000, accounts)), salt=9))
    return {
        "rss_interpreter_and_leaves_mb": before,
        "rss_after_build_mb": built,
        "tree_mb": built - before,
        "peak_rss_during_build_mb": build_peak,
        "peak_rss_through_50k_update_mb": get_memory_mb("VmHWM"),
    }


def measure_memory(layout: str, accounts: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--memory-only", layout, "--accounts", str(accounts)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--memory-only", choices=["dense", "random"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:
        print(json.dumps(measure_memory_in_this_process(args.memory_only, args.accounts)))
        return
    report: dict[str, Any] = {"depth": DEPTH, "accounts": args.accounts, "keccak": measure_keccak()}
    for layout in ("dense", "random"):
        report[layout] = measure_layout(layout, args.accounts)
        report[layout]["memory"] = measure_memory(layout, args.accounts)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
