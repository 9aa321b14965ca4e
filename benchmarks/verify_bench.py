"""Groth16 verification timings: one proof, and batches of 4 and 16 (one final exponentiation each).

    .venv/bin/python benchmarks/verify_bench.py [--curve bn128|bls12381] [--repeat 3] [--public 2]

Proofs come from our prover (a small circuit with `--public` public inputs, distinct witnesses).
Prints JSON: seconds (median of --repeat runs) and the batch/single ratios; the issue's target is
batch of 16 <= 3x one proof.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Callable

from prover import gadgets
from prover.groth16 import prove
from prover.r1cs import ConstraintSystem
from prover.setup import setup
from verifier.curve import CURVES, Curve
from verifier.groth16 import batch_verify, prepare_verifying_key, verify_proof


def build_circuit(curve: Curve, seed: int, n_public: int) -> ConstraintSystem:
    """sum_j public_j * secret_j = total (public too), with 32-bit range checks on the secrets."""
    cs = ConstraintSystem(curve)
    total = 0
    products = []
    for j in range(n_public - 1):
        value, secret = 1000 + 17 * seed + j, 3 + seed * 7 + j
        p = cs.public_input(value)
        s = cs.private(secret)
        gadgets.range_check(cs, s, 32)
        products.append(gadgets.mul(cs, p, s))
        total += value * secret
    gadgets.assert_equal(cs, sum(products[1:], products[0]), cs.public_input(total))
    return cs


def time_median(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds: the machine is shared, so CPU time is the steadier figure."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if result is not True:
            raise SystemExit(f"benchmark proof did not verify: {result}")
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--curve", default="bn128", choices=sorted(CURVES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--public", type=int, default=2)
    args = parser.parse_args()
    curve = CURVES[args.curve]

    circuits = [build_circuit(curve, seed, args.public) for seed in range(16)]
    pk = setup(circuits[0], seed="verify-bench")
    items = [(prove(pk, cs, reproducible_seed=i), cs.public_inputs) for i, cs in enumerate(circuits)]

    started = time.perf_counter()
    pvk = prepare_verifying_key(pk.vk)
    prepare_seconds = time.perf_counter() - started

    single = time_median(lambda: verify_proof(pvk, *items[0]), args.repeat)
    batch4 = time_median(lambda: batch_verify(pvk, items[:4]), args.repeat)
    batch16 = time_median(lambda: batch_verify(pvk, items), args.repeat)
    report: dict[str, Any] = {
        "curve": curve.name,
        "n_public": args.public,
        "constraints": len(circuits[0].constraints),
        "repeat": args.repeat,
        "prepare_verifying_key_s": round(prepare_seconds, 3),
    }
    for kind, index in (("wall", 0), ("cpu", 1)):
        one = single[index]
        report[kind] = {
            "verify_1_s": round(one, 3),
            "batch_4_s": round(batch4[index], 3),
            "batch_16_s": round(batch16[index], 3),
            "batch_4_over_single": round(batch4[index] / one, 2),
            "batch_16_over_single": round(batch16[index] / one, 2),
            "per_proof_in_batch_16_ms": round(batch16[index] / 16 * 1000, 1),
        }
    report["target_batch_16_over_single"] = 3.0
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
