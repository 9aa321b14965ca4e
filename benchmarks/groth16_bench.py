"""Groth16 prover benchmark: prints JSON.

For circuits of about 1k, 4k and 16k constraints shaped like a derivatives segment (64-bit range
checks on amounts and prices, products, comparisons, selections), each size in its own subprocess
so that peak RSS is per size: witness time, setup time, proving-key size on disk, proving time and
constraints per second, the split of proving time (constraint check, QAP/NTT, MSMs), and, when
`verifier.groth16` provides them, verification of 1 proof and batches of 4 and 16.

    python benchmarks/groth16_bench.py [--sizes 1024,4096,16384] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prover import gadgets
from prover.r1cs import ConstraintSystem
from verifier.curve import BN254

AMOUNT_BITS = 64


def build_circuit(size: int, seed: int = 7) -> ConstraintSystem:
    """A derivatives-like circuit with n_constraints + n_public + 1 <= size (one radix-2 domain).

    Per trade: amount and price range-checked to 64 bits, notional = amount * price, fee = notional *
    rate, margin check collateral >= fee (64-bit comparison), an is-zero flag and a select.
    """
    rng = random.Random(seed)
    cs = ConstraintSystem(BN254)
    mark = cs.public_input(rng.randrange(1, 1 << 40), "mark_price")
    rate = cs.public_input(rng.randrange(1, 1 << 10), "fee_rate")
    block = 203
    while cs.n_constraints + cs.n_public + 1 + block + 1 <= size:
        amount = cs.private(rng.randrange(0, 1 << 40))
        price = cs.private(rng.randrange(1, 1 << 40))
        gadgets.range_check(cs, amount, AMOUNT_BITS)
        gadgets.range_check(cs, price, AMOUNT_BITS)
        notional = gadgets.mul(cs, amount, price)
        fee = gadgets.mul(cs, notional, rate)
        collateral = cs.private(fee.value + rng.randrange(0, 1 << 40))
        gadgets.assert_le(cs, fee, collateral, AMOUNT_BITS + 40)
        flat = gadgets.is_zero(cs, amount)
        gadgets.select(cs, flat, mark, price)
    # pad with products up to the size (one more public: the last product)
    x = cs.private(rng.randrange(1, 1 << 40))
    while cs.n_constraints + cs.n_public + 1 + 1 < size:
        x = gadgets.mul(cs, x, mark)
    out = cs.public_input(x.value, "digest")
    gadgets.assert_equal(cs, x, out)
    return cs


def run_size(size: int, verify_counts: list[int]) -> dict[str, object]:
    from prover.groth16 import prove
    from prover.setup import load_proving_key, save_proving_key, setup

    result: dict[str, object] = {"target_size": size}
    t = time.perf_counter()
    cs = build_circuit(size)
    result["witness_s"] = round(time.perf_counter() - t, 3)
    result.update({k: v for k, v in cs.stats().items() if k in ("n_constraints", "n_vars", "n_public")})
    t = time.perf_counter()
    cpu = time.process_time()
    pk = setup(cs, seed=size)
    result["setup_s"] = round(time.perf_counter() - t, 3)
    result["setup_cpu_s"] = round(time.process_time() - cpu, 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pk.bin"
        t = time.perf_counter()
        result["pk_bytes"] = save_proving_key(pk, path)
        result["pk_save_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        pk = load_proving_key(path)
        result["pk_load_s"] = round(time.perf_counter() - t, 3)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    cpu = time.process_time()
    proof = prove(pk, cs, timings=timings)
    prove_s = time.perf_counter() - t
    prove_cpu_s = time.process_time() - cpu
    result["prove_s"] = round(prove_s, 3)
    result["prove_cpu_s"] = round(prove_cpu_s, 3)
    # the machine is shared: CPU time is this process's own work on one core
    result["constraints_per_s"] = round(cs.n_constraints / prove_s)
    result["constraints_per_cpu_s"] = round(cs.n_constraints / prove_cpu_s)
    result["constraints_per_s_incl_witness"] = round(cs.n_constraints / (prove_s + float(result["witness_s"])))
    result["prove_split_cpu_s"] = {k: round(v, 3) for k, v in timings.items()}
    result.update(measure_verification(pk, proof, cs.public_inputs, verify_counts))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def measure_verification(pk, proof, public: list[int], counts: list[int]) -> dict[str, object]:
    """Verification times through helper B's verifier, if it exists yet."""
    import verifier.groth16 as v

    out: dict[str, object] = {}
    if not hasattr(v, "prepare_verifying_key"):
        return {"verify": "verifier.groth16.prepare_verifying_key not available"}
    t = time.perf_counter()
    pvk = v.prepare_verifying_key(pk.vk)
    out["prepare_vk_s"] = round(time.perf_counter() - t, 3)
    if hasattr(v, "verify_proof"):
        t = time.perf_counter()
        ok = v.verify_proof(pvk, proof, public)
        out["verify_1_s"] = round(time.perf_counter() - t, 3)
        out["verify_1_ok"] = bool(ok)
    else:
        out["verify_1_s"] = None
    if hasattr(v, "batch_verify"):
        for k in counts:
            t = time.perf_counter()
            ok = v.batch_verify(pvk, [(proof, public)] * k)
            out[f"verify_batch_{k}_s"] = round(time.perf_counter() - t, 3)
            out[f"verify_batch_{k}_ok"] = bool(ok)
    else:
        out["verify_batch_s"] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,4096,16384", help="comma-separated circuit sizes (domain sizes)")
    parser.add_argument("--quick", action="store_true", help="one small size (256), no batch verification")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child mode: run one size in-process
    parser.add_argument("--verify-counts", default="4,16", help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(x) for x in args.verify_counts.split(",") if x]
    if args.one:
        print(json.dumps(run_size(args.one, counts)))
        return
    sizes = [256] if args.quick else [int(s) for s in args.sizes.split(",")]
    results = []
    for size in sizes:
        cmd = [sys.executable, __file__, "--one", str(size), "--verify-counts", "" if args.quick else args.verify_counts]
        child = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if child.returncode != 0:
            results.append({"target_size": size, "error": child.stderr.strip().splitlines()[-1:]})
            continue
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(json.dumps({"benchmark": "groth16_prover", "curve": "bn128", "python": sys.version.split()[0],
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
