"""Poseidon benchmark: R1CS constraints, native time per implementation, EVM gas, and Merkle path costs per arity.

Prints one JSON object. Run: .venv/bin/python benchmarks/poseidon_bench.py [--quick]
- "per_arity": for 1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 14 and 16 inputs (light-poseidon stops at 12): constraints of `synthesize_poseidon`, median
  microseconds per hash of every implementation in `verifier.poseidon.IMPLEMENTATIONS` (and of the
  default `poseidon`, and of `poseidon_many` per hash in batches of 256), and gas of circomlibjs's contract on py-evm (transaction gas, and the
  execution part: the transaction less 21,000 and the calldata's 4 / 16 gas per zero / non-zero byte).
- "tree": one proof of membership in a tree of 2^24 leaves for arities 2, 4, 8, 16: constraints of
  the path circuit (the index as 24 bits, then per level: the k children as wires, `select_child`
  by the level's bits, equality with the node below, Poseidon of the children), native time to
  recompute the path with the fastest implementation, sibling bytes, and on-chain gas where
  circomlibjs has a contract for the arity.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from contracts.chain import L1
from contracts.poseidon import deploy_poseidon, get_evm_arities, get_hash_function, get_poseidon_contract
from prover import gadgets
from prover.circuits.poseidon import select_child, synthesize_poseidon
from prover.r1cs import ConstraintSystem
from verifier import poseidon as P

ARITIES = (1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 14, 16)  # around light's crossover with gmpy2 too; 14 and 16: the leaves' chunks
MANY_BATCH = 256
TREE_LEAVES_LOG2 = 24
TREE_SHAPES = ((2, 24), (4, 12), (8, 8), (16, 6))  # arity, depth: arity ** depth == 2 ** 24
WORD_BYTES = 32


def measure_us(function: Callable[[], Any], samples: int, target_seconds: float) -> float:
    """Median over `samples` of microseconds per call, each sample timing about `target_seconds`."""
    start = time.perf_counter()
    function()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(target_seconds / once))
    results = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        results.append((time.perf_counter() - start) / calls)
    return 1e6 * statistics.median(results)


def measure_native(n: int, samples: int, target: float) -> dict[str, float]:
    rng = random.Random(n)
    inputs = [rng.randrange(P.R) for _ in range(n)]
    result = {name: measure_us(lambda fn=fn: fn(inputs), samples, target) for name, fn in P.IMPLEMENTATIONS.items() if n in P.ARITIES[name]}
    result["poseidon (default)"] = measure_us(lambda: P.poseidon(inputs), samples, target)
    batch = [[rng.randrange(P.R) for _ in range(n)] for _ in range(MANY_BATCH)]
    result[f"poseidon_many (per hash, {MANY_BATCH} at once)"] = measure_us(lambda: P.poseidon_many(batch), samples, target) / MANY_BATCH
    if n == 2:
        result["poseidon2"] = measure_us(lambda: P.poseidon2(*inputs), samples, target)
    return result


def measure_constraints(n: int) -> dict[str, int]:
    cs = ConstraintSystem()
    synthesize_poseidon(cs, [cs.private(i + 1) for i in range(n)])
    cs.check()
    stats = cs.stats()
    return {"constraints": cs.n_constraints, "nnz_a": stats["nnz_a"], "nnz_b": stats["nnz_b"], "nnz_c": stats["nnz_c"]}


def get_intrinsic_gas(calldata: bytes) -> int:
    """21,000 plus calldata at 4 gas per zero byte and 16 per non-zero byte (EIP-2028)."""
    zeros = calldata.count(0)
    return 21_000 + 4 * zeros + 16 * (len(calldata) - zeros)


def measure_evm(l1: L1, n: int) -> dict[str, Any]:
    contract = deploy_poseidon(l1, n)
    rng = random.Random(100 + n)
    inputs = [rng.randrange(P.R) for _ in range(n)]
    call = get_hash_function(contract, n)(inputs)
    # the hash is right before its gas means anything
    if call.call() != P.poseidon(inputs):
        raise RuntimeError(f"the {n}-input contract disagrees with verifier.poseidon")
    receipt = l1.send(call, f"poseidon({n})", gas=3_000_000)
    calldata = bytes.fromhex(call._encode_transaction_data().removeprefix("0x"))
    return {
        "tx_gas": receipt["gasUsed"],
        "execution_gas": receipt["gasUsed"] - get_intrinsic_gas(calldata),
        "runtime_bytes": get_poseidon_contract(n).runtime_size,
    }


def build_path_circuit(arity: int, depth: int, seed: int) -> dict[str, Any]:
    """Constraints of proving one leaf's path to the root of an arity^depth tree."""
    rng = random.Random(seed)
    bits_per_level = arity.bit_length() - 1
    index = rng.randrange(arity**depth)
    cs = ConstraintSystem()
    node = cs.private(rng.randrange(P.R), "leaf")
    native_node = node.value
    with cs.gadget("index_bits"):
        bits = gadgets.to_bits(cs, cs.private(index, "index"), bits_per_level * depth)
    for level in range(depth):
        position = (index >> (bits_per_level * level)) & (arity - 1)
        values = [rng.randrange(P.R) for _ in range(arity)]
        values[position] = native_node
        children = [cs.private(v) for v in values]
        chosen = select_child(cs, bits[bits_per_level * level : bits_per_level * (level + 1)], children)
        gadgets.assert_equal(cs, chosen, node)
        node = synthesize_poseidon(cs, children)
        native_node = P.poseidon(values)
    # the circuit computed the same root as the native hash
    if node.value != native_node:
        raise RuntimeError("the path circuit's root differs from the native one")
    cs.check()
    per_gadget = cs.stats()["constraints_per_gadget"]
    return {
        "total": cs.n_constraints,
        "poseidon": per_gadget.get("poseidon", 0),
        "select_child": per_gadget.get("select_child", 0),
        "assert_equal": per_gadget.get("assert_equal", 0),
        "index_bits": per_gadget.get("index_bits", 0),
    }


def measure_path_native(arity: int, depth: int, samples: int, target: float) -> dict[str, float]:
    """Microseconds to recompute a root from a leaf and its siblings, fastest path and pure Python."""
    rng = random.Random(arity)
    levels = [[rng.randrange(P.R) for _ in range(arity)] for _ in range(depth)]
    leaf = rng.randrange(P.R)

    def recompute(hash_children: Callable[[list[int]], int]) -> int:
        node = leaf
        for children in levels:
            children[0] = node  # the node's position does not change the cost
            node = hash_children(children)
        return node

    fastest: Callable[[list[int]], int] = (lambda c: P.poseidon2(c[0], c[1])) if arity == 2 else P.poseidon
    return {
        "fastest_us": measure_us(lambda: recompute(fastest), samples, target),
        "fastest_implementation": P.FASTEST_BY_ARITY[arity],
        "python_ints_us": measure_us(lambda: recompute(P.poseidon_unrolled), samples, target),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter samples (a smoke run)")
    args = parser.parse_args()
    samples, target = (3, 0.02) if args.quick else (9, 0.1)

    load_before = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: a loaded one is slower
    l1 = L1.embedded()
    evm_arities = get_evm_arities()
    per_arity = {}
    evm: dict[int, dict[str, Any]] = {}
    for n in ARITIES:
        if n in evm_arities:
            evm[n] = measure_evm(l1, n)
        per_arity[str(n)] = {
            "r1cs": measure_constraints(n),
            "native_us": measure_native(n, samples, target),
            "evm": evm.get(n, f"no contract: circomlibjs generates {evm_arities} inputs"),
        }
    for arity, _ in TREE_SHAPES:
        if arity in evm_arities and arity not in evm:
            evm[arity] = measure_evm(l1, arity)

    tree = {}
    for arity, depth in TREE_SHAPES:
        tree[str(arity)] = {
            "depth": depth,
            "path_constraints": build_path_circuit(arity, depth, seed=arity),
            "path_native": measure_path_native(arity, depth, samples, target),
            "sibling_bytes": depth * (arity - 1) * WORD_BYTES,
            "path_evm_execution_gas": depth * evm[arity]["execution_gas"] if arity in evm else None,
        }

    print(json.dumps({
        "benchmark": "poseidon",
        "load_average_before": load_before,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "implementations": list(P.IMPLEMENTATIONS),
        "fastest_by_inputs": P.FASTEST_BY_ARITY,
        "samples": samples,
        "per_arity": per_arity,
        "tree_leaves_log2": TREE_LEAVES_LOG2,
        "tree": tree,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }, indent=1))


if __name__ == "__main__":
    main()
