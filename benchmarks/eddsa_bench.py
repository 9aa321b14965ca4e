"""EdDSA-Poseidon over BabyJubJub (verifier.eddsa): signatures verified and made per CPU second for each
curve implementation, with the parts of a verification timed apart, a 2-process pool, and
coincurve's secp256k1 recovery on the same machine for comparison; and batch verification
(verify_many) at several batch sizes against verify one by one in the same run.

Prints JSON. Rates are per CPU second of the measuring process (`time.process_time`); the pool's is
per wall second. Usage: `python benchmarks/eddsa_bench.py [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from typing import Any, Callable, Sequence

from verifier import babyjubjub as B
from verifier import eddsa as E
from verifier.poseidon import FASTEST_BY_ARITY, poseidon


def rate(fn: Callable[[Any], Any], items: Sequence[Any]) -> float:
    """Items per CPU second."""
    started = time.process_time()
    for item in items:
        fn(item)
    elapsed = time.process_time() - started
    return round(len(items) / elapsed, 1) if elapsed > 0 else float("inf")


def make_signatures(n_keys: int, n: int, seed: int) -> list[tuple[int, E.Signature, B.Point]]:
    rng = random.Random(seed)
    keys = [rng.randbytes(32) for _ in range(n_keys)]
    pubs = [E.prv2pub(k) for k in keys]
    out = []
    for i in range(n):
        msg = rng.randrange(B.P)
        out.append((msg, E.sign(keys[i % n_keys], msg), pubs[i % n_keys]))
    return out


def _verify_chunk(chunk: list[tuple[int, E.Signature, B.Point]]) -> int:
    return sum(E.verify(m, s, a) for m, s, a in chunk)


def pool_rate(items: list[tuple[int, E.Signature, B.Point]], workers: int) -> float:
    """Verifications per wall second in a multiprocess pool (each worker warms its own key cache)."""
    from multiprocess import Pool

    chunk = max(1, len(items) // (4 * workers))
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    with Pool(workers) as pool:
        pool.map(_verify_chunk, [items[:50]] * workers)  # start the workers and fill their key caches
        started = time.perf_counter()
        ok = sum(pool.map(_verify_chunk, chunks))
        elapsed = time.perf_counter() - started
    if ok != len(items):
        raise RuntimeError("a valid signature failed to verify in the pool")
    return round(len(items) / elapsed, 1)


def table_bytes(table: Any) -> int:
    rows = getattr(table, "rows", [])
    return sum(sys.getsizeof(row) + sum(sys.getsizeof(n) + sum(sys.getsizeof(c) for c in n) for n in row) for row in rows)


def bench_curve(curve: Any, quick: bool) -> dict[str, Any]:
    fast = curve is B.fast
    n = (600 if quick else 3_000) if fast else (6 if quick else 12)
    n_keys = 50 if fast else 2
    items = make_signatures(n_keys, n, seed=1)
    rng = random.Random(2)
    scalars = [rng.randrange(B.SUBORDER) for _ in range(n)]
    E.clear_key_cache()
    cold = rate(lambda t: E.verify(t[0], t[1], t[2], curve), items[:n_keys])  # every key first seen: checked, no table
    for m, s, a in items[: n_keys * E._KeyCache.TABLE_AFTER]:  # every key frequent: its table built
        E.verify(m, s, a, curve)
    warm = rate(lambda t: E.verify(t[0], t[1], t[2], curve), items)
    if not all(E.verify(m, s, a, curve) for m, s, a in items[:5]):
        raise RuntimeError("a valid signature failed to verify")
    keys = [random.Random(i).randbytes(32) for i in range(min(n, 200 if fast else 3))]
    a = items[0][2]
    table = curve.precompute(a)
    out = {
        "signatures": n,
        "distinct_keys": n_keys,
        "verify_per_s_keys_cached": warm,
        "verify_per_s_first_seen_key": cold,
        "key_table_builds_per_s": rate(curve.precompute, [t[2] for t in items[: max(3, min(n_keys, n // 60))]]),
        "sign_per_s": rate(lambda k: E.sign(k, 12345, curve), keys),
        "prv2pub_per_s": rate(lambda k: E.prv2pub(k, curve), keys),
        "parts_per_s": {
            "mul_base8": rate(curve.mul_base, scalars),
            "mul_cached_key": rate(lambda e: curve.mul_precomputed(table, e), scalars),
            "mul_any_point": rate(lambda e: curve.mul(a, e), scalars[: max(3, n // 10)]),
            "subgroup_check": rate(curve.in_subgroup, [t[2] for t in items[: max(3, n // 10)]]),
        },
    }
    if fast:
        out["key_table_bytes"] = table_bytes(table)
        out["verify_per_s_pool_2_wall"] = pool_rate(items, 2)
    return out


BATCH_SIZES = (1, 16, 64, 256, 1024, 4096)


def bench_batch(quick: bool) -> dict[str, Any]:
    """verify_many (fast curve) at each batch size against verify one by one over the same
    signatures in the same run: 100 keys, all frequent (tables built), every signature valid; the
    batch path forced at every size too (verify_many goes one by one below BATCH_MIN); the parts
    of a batched verification per signature; one bad signature in a batch (bisection), all bad;
    and every key distinct and first seen (a node with many accounts: no tables)."""
    total = 1024 if quick else 4096
    n_keys = 100
    items = make_signatures(n_keys, total, seed=4)
    E.clear_key_cache()
    for m, s, a in items[: n_keys * E._KeyCache.TABLE_AFTER]:  # every key frequent: its table built
        E.verify(m, s, a)
    individual = rate(lambda t: E.verify(t[0], t[1], t[2]), items)
    sizes: dict[str, Any] = {}
    batch_min = E.BATCH_MIN
    for size in (size for size in BATCH_SIZES if size <= total):
        chunks = [items[i : i + size] for i in range(0, total, size)]
        entry = {}
        for label, minimum in (("verify_many_per_s", batch_min), ("batch_path_forced_per_s", 0)):
            E.BATCH_MIN = minimum
            try:
                started = time.process_time()
                ok = sum(sum(E.verify_many(chunk)) for chunk in chunks)
                elapsed = time.process_time() - started
            finally:
                E.BATCH_MIN = batch_min
            if ok != total:
                raise RuntimeError("a valid signature failed in verify_many")
            entry[label] = round(total / elapsed, 1)
        entry["ratio_to_individual"] = round(entry["verify_many_per_s"] / individual, 2)
        sizes[str(size)] = entry
    # where a batched verification spends its time, per signature, at the largest size
    chunk = items[:1024]
    prepared = [E._prepare(m, s, a, B.fast) for m, s, a in chunk]
    started = time.process_time()
    for item in prepared:
        E.compute_message_hash(item.r8, item.a, 1)
    poseidon_s = time.process_time() - started
    started = time.process_time()
    for m, s, a in chunk:
        E._check_message(m), E._check_signature_shape(s), E._get_key_table(a, B.fast, False)
    checks_s = time.process_time() - started
    started = time.process_time()
    z, seed = E._batch_challenge(prepared)
    coefficients_s = time.process_time() - started
    started = time.process_time()
    if not B.fast.all_in_subgroup_on_curve([item.r8 for item in prepared], seed):
        raise RuntimeError("the subgroup test failed on valid signatures")
    subgroup_s = time.process_time() - started
    started = time.process_time()
    if not E._batch_holds(prepared, z, B.fast):
        raise RuntimeError("the batch equation failed on valid signatures")
    equation_s = time.process_time() - started
    n = len(chunk)
    parts = {
        "poseidon_h": poseidon_s,
        "input_checks_and_key_lookup": checks_s,
        "r8_subgroup_test": subgroup_s,
        "fiat_shamir_coefficients_and_seed": coefficients_s,
        "batch_equation_msm": equation_s,
    }
    bad = list(chunk)
    m, sig, a = bad[n // 3]
    bad[n // 3] = (m + 1, sig, a)
    started = time.process_time()
    answers = E.verify_many(bad)
    one_bad_s = time.process_time() - started
    if answers != [i != n // 3 for i in range(n)]:
        raise RuntimeError("bisection missed the bad signature")
    # a flood of bad signatures (every S off by one): the bounded bisection, then one by one
    flood = [(m, E.Signature(sig.R8, (sig.S + 1) % B.SUBORDER), a) for m, sig, a in chunk]
    started = time.process_time()
    answers = E.verify_many(flood)
    all_bad_s = time.process_time() - started
    if any(answers):
        raise RuntimeError("a bad signature verified")
    # every key distinct and first seen: checked once, no table, a plain point of the MSM
    distinct = make_signatures(total, total, seed=5)
    first_seen = {}
    for size in (1024, total):
        E.clear_key_cache()
        started = time.process_time()
        ok = sum(sum(E.verify_many(distinct[i : i + size])) for i in range(0, total, size))
        elapsed = time.process_time() - started
        if ok != total:
            raise RuntimeError("a valid signature failed in verify_many")
        first_seen[f"verify_many_{size}_per_s"] = round(total / elapsed, 1)
    E.clear_key_cache()
    first_seen["verify_per_s"] = rate(lambda t: E.verify(t[0], t[1], t[2]), distinct[: total // 8])
    return {
        "signatures_per_size": total,
        "distinct_keys": n_keys,
        "batch_min": batch_min,
        "individual_verify_per_s": individual,
        "sizes": sizes,
        f"us_per_signature_at_{n}": {k: round(v / n * 1e6, 1) for k, v in parts.items()},
        f"one_invalid_in_{n}_verify_many_per_s": round(n / one_bad_s, 1),
        f"all_invalid_{n}_verify_many_per_s": round(n / all_bad_s, 1),
        "target_met": max(e["verify_many_per_s"] for e in sizes.values()) >= 10_000,
        "every_key_distinct_and_first_seen": first_seen,
    }


def bench_reference_points() -> dict[str, Any]:
    rng = random.Random(3)
    msgs = [[rng.randrange(B.P) for _ in range(5)] for _ in range(2_000)]
    out: dict[str, Any] = {"poseidon5_per_s": rate(poseidon, msgs), "poseidon_implementation": FASTEST_BY_ARITY[5]}
    try:
        import coincurve

        pk = coincurve.PrivateKey(b"\x07" * 32)
        digests = [rng.randbytes(32) for _ in range(3_000)]
        sigs = [(d, pk.sign_recoverable(d, hasher=None)) for d in digests]
        out["secp256k1_recover_per_s_coincurve"] = rate(lambda p: coincurve.PublicKey.from_signature_and_message(p[1], p[0], hasher=None), sigs)
    except ImportError:  # pragma: no cover - a declared dependency
        pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small samples")
    args = parser.parse_args()
    try:
        import gmpy2  # noqa: F401

        arithmetic = "gmpy2"
    except ImportError:
        arithmetic = "python ints"
    load_before = [round(x, 2) for x in os.getloadavg()]
    result = {
        "benchmark": "eddsa",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "fast_arithmetic": arithmetic,
        "target_verify_per_s_per_core": 10_000,
        "comparison": bench_reference_points(),
        "batch": bench_batch(args.quick),
        "implementations": {name: bench_curve(curve, args.quick) for name, curve in B.IMPLEMENTATIONS.items()},
    }
    # other users of the machine slow every rate down (the Rust Poseidon most): read them with it
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
