"""Groth16 prover benchmark: prints JSON.

For circuits of about 1k, 4k and 16k constraints shaped like a derivatives segment (64-bit range
checks on amounts and prices, products, comparisons, selections). Per size, one subprocess runs
the setup and saves the key, a second loads it and proves (so peak RSS is per phase, and the
prover starts from disk as a real one does): setup time, proving-key size on disk, witness time,
proving time (wall and CPU: the machine is shared) and constraints per second, the CPU split of
proving (constraint check, QAP/NTT, MSMs), and verification of 1 proof and batches of 4 and 16
through `verifier.groth16`.

    python benchmarks/groth16_bench.py [--sizes 1024,4096,16384] [--quick] [--dense]
"""

from __future__ import annotations

import argparse
import json
import os
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
    rate, a margin check collateral >= fee (104-bit comparison), an is-zero flag and a select.
    Padded with products to fill the domain; the last product is a public output.
    """
    rng = random.Random(seed)
    cs = ConstraintSystem(BN254)
    mark = cs.public_input(rng.randrange(1, 1 << 40), "mark_price")
    rate = cs.public_input(rng.randrange(1, 1 << 10), "fee_rate")
    reserved = 3  # the output's public wire, its equality constraint, and wire 0
    block = 0
    while cs.n_constraints + cs.n_public + reserved + block <= size:
        before = cs.n_constraints
        add_trade(cs, rng, mark, rate)
        block = cs.n_constraints - before
    x = cs.private(rng.randrange(1, 1 << 40))
    while cs.n_constraints + cs.n_public + reserved + 1 <= size:
        x = gadgets.mul(cs, x, mark)
    gadgets.assert_equal(cs, x, cs.public_input(x.value, "digest"))
    return cs


def build_dense_circuit(size: int, seed: int = 7) -> ConstraintSystem:
    """Worst case for the witness MSMs: a chain x -> x^2 + k of full-size field elements (as a
    hash circuit would have), filling the domain."""
    rng = random.Random(seed)
    cs = ConstraintSystem(BN254)
    k = cs.public_input(rng.randrange(cs.r), "k")
    x = cs.private(rng.randrange(cs.r))
    while cs.n_constraints + cs.n_public + 3 + 1 <= size:
        x = gadgets.mul(cs, x, x + k)
    gadgets.assert_equal(cs, x, cs.public_input(x.value, "digest"))
    return cs


def add_trade(cs: ConstraintSystem, rng: random.Random, mark, rate) -> None:
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


def get_peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_setup(size: int, pk_path: Path, dense: bool) -> dict[str, object]:
    """Child process 1: build the circuit, run the (unsafe, seeded) setup, save the key."""
    from prover.setup import save_proving_key, setup

    cs = (build_dense_circuit if dense else build_circuit)(size)
    t = time.perf_counter()
    cpu = time.process_time()
    pk = setup(cs, seed=size)
    result: dict[str, object] = {
        "setup_s": round(time.perf_counter() - t, 3),
        "setup_cpu_s": round(time.process_time() - cpu, 3),
    }
    t = time.perf_counter()
    result["pk_bytes"] = save_proving_key(pk, pk_path)
    result["pk_save_s"] = round(time.perf_counter() - t, 3)
    result["setup_peak_rss_mb"] = get_peak_rss_mb()
    return result


def run_prove(size: int, pk_path: Path, verify_counts: list[int], dense: bool) -> dict[str, object]:
    """Child process 2, as a prover runs: load the key, build the witness, prove, then verify."""
    from prover.groth16 import prove
    from prover.setup import load_proving_key

    result: dict[str, object] = {}
    t = time.perf_counter()
    pk = load_proving_key(pk_path)
    result["pk_load_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    cs = (build_dense_circuit if dense else build_circuit)(size)
    result["witness_s"] = round(time.perf_counter() - t, 3)
    stats = cs.stats()
    result.update({k: stats[k] for k in ("n_constraints", "n_vars", "n_public")})
    result["domain_size"] = pk.domain.size
    result["constraints_per_gadget"] = stats["constraints_per_gadget"]
    timings: dict[str, float] = {}
    t = time.perf_counter()
    cpu = time.process_time()
    proof = prove(pk, cs, timings=timings)
    prove_s = time.perf_counter() - t
    prove_cpu_s = time.process_time() - cpu
    result["prove_s"] = round(prove_s, 3)
    result["prove_cpu_s"] = round(prove_cpu_s, 3)
    # the machine is shared with other jobs: CPU time is this process's own work on one core
    result["constraints_per_s"] = round(cs.n_constraints / prove_s)
    result["constraints_per_cpu_s"] = round(cs.n_constraints / prove_cpu_s)
    result["prove_split_cpu_s"] = {k: round(v, 3) for k, v in timings.items()}
    result["prove_peak_rss_mb"] = get_peak_rss_mb()
    result.update(measure_verification(pk, proof, cs.public_inputs, verify_counts))
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


def run_child(args: list[str]) -> dict[str, object]:
    child = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if child.returncode != 0:
        return {"error": child.stderr.strip().splitlines()[-1:]}
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,4096,16384", help="comma-separated domain sizes")
    parser.add_argument("--quick", action="store_true", help="one small size (256), no batch verification")
    parser.add_argument("--dense", action="store_true",
                        help="worst case: a chain of full-size field products instead of the derivatives mix")
    parser.add_argument("--child", choices=["setup", "prove"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pk", help=argparse.SUPPRESS)
    parser.add_argument("--verify-counts", default="4,16", help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(x) for x in args.verify_counts.split(",") if x]
    if args.child == "setup":
        print(json.dumps(run_setup(args.size, Path(args.pk), args.dense)))
        return
    if args.child == "prove":
        print(json.dumps(run_prove(args.size, Path(args.pk), counts, args.dense)))
        return
    sizes = [256] if args.quick else [int(s) for s in args.sizes.split(",")]
    verify_counts = "" if args.quick else args.verify_counts
    mode = ["--dense"] if args.dense else []
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            pk_path = str(Path(tmp) / f"pk-{size}.bin")
            # setup and proving in separate processes: per-phase peak RSS, and a prover that starts
            # from the key on disk as a real one does
            result: dict[str, object] = {"target_size": size}
            result.update(run_child(["--child", "setup", "--size", str(size), "--pk", pk_path, *mode]))
            if "error" not in result:
                result.update(run_child(["--child", "prove", "--size", str(size), "--pk", pk_path,
                                         "--verify-counts", verify_counts, *mode]))
            results.append(result)
    print(json.dumps({"benchmark": "groth16_prover", "circuit": "dense" if args.dense else "derivatives", "curve": "bn128", "python": sys.version.split()[0],
                      "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
