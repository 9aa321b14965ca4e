"""EdDSA-Poseidon gadget benchmark: constraints per signature verification and per key id, and synthesis time.

Prints one JSON object. Run: .venv/bin/python benchmarks/eddsa_circuit_bench.py [--quick]
- "verify": constraints of one `synthesize_eddsa_verify` (default schedule; every schedule's total too), split into fixed-base (S * Base8),
  variable-base (h * 8A), poseidon (the challenge hash), bits (S and h decompositions with their
  comparisons to l - 1 and r - 1) and checks (gating by `enabled`, the key's subgroup check and 8A,
  the final addition and equality); median wall milliseconds to synthesize it with its witness
  (constraints and values are built together), and to check the witness against the constraints.
- "key_id": the same for one `synthesize_key_id`.
Each sample is a fresh constraint system with a fresh valid signature (signing is not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from collections import Counter
from typing import Any, Callable

from prover.circuits.eddsa import VARIABLE_BASE_SCHEDULES, count_eddsa_constraints, synthesize_eddsa_verify, synthesize_key_id
from prover.r1cs import ConstraintSystem
from verifier import eddsa as E

PARTS = {
    "fixed_base": ("fixed_base",),
    "variable_base": ("variable_base",),
    "poseidon": ("poseidon",),
    "bits": ("s_bits", "h_bits"),
    "checks": ("inputs", "key", "equation"),
}


def split(cs: ConstraintSystem, top: str) -> dict[str, int]:
    """Constraints per second-level gadget under `top`, grouped as PARTS."""
    per = Counter(name.split("/")[1] for name in cs.constraint_gadgets if name.startswith(top + "/"))
    out = {part: sum(per[name] for name in names) for part, names in PARTS.items()}
    unassigned = sum(per.values()) - sum(out.values())
    if unassigned:
        raise RuntimeError(f"constraints outside the known parts: {per}")
    return out


def timed(build: Callable[[], ConstraintSystem], samples: int) -> tuple[ConstraintSystem, float, float]:
    """The last system built, median ms to build, median ms to check."""
    build_ms, check_ms = [], []
    cs = None
    for _ in range(samples):
        started = time.perf_counter()
        cs = build()
        build_ms.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        cs.check()
        check_ms.append((time.perf_counter() - started) * 1e3)
    assert cs is not None
    return cs, round(statistics.median(build_ms), 1), round(statistics.median(check_ms), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    samples = 3 if args.quick else 9
    rng = random.Random(1)
    cases = []
    for _ in range(samples):
        prv = rng.randbytes(32)
        msg = rng.randrange(E.P)
        sig = E.sign(prv, msg)
        cases.append((E.prv2pub(prv), sig, msg))
    queue = list(cases)

    def build_verify() -> ConstraintSystem:
        a, sig, msg = queue.pop()
        cs = ConstraintSystem()
        values = (1, a[0], a[1], sig.R8[0], sig.R8[1], sig.S, msg)
        synthesize_eddsa_verify(cs, *(cs.private(v) for v in values))
        return cs

    keys = [a for a, _, _ in cases]

    def build_key_id() -> ConstraintSystem:
        a = keys.pop()
        cs = ConstraintSystem()
        synthesize_key_id(cs, cs.private(a[0]), cs.private(a[1]))
        return cs

    verify_cs, verify_ms, verify_check_ms = timed(build_verify, samples)
    key_cs, key_ms, key_check_ms = timed(build_key_id, samples)
    result: dict[str, Any] = {
        "benchmark": "eddsa_circuit",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "samples": samples,
        "verify": {
            "constraints": verify_cs.n_constraints,
            "split": split(verify_cs, "eddsa"),
            "private_wires": verify_cs.n_private - 7,
            "synthesize_ms_median": verify_ms,
            "check_ms_median": verify_check_ms,
            "us_per_constraint": round(1e3 * verify_ms / verify_cs.n_constraints, 2),
            "constraints_per_schedule": {name: count_eddsa_constraints(name) for name in VARIABLE_BASE_SCHEDULES},
        },
        "key_id": {
            "constraints": key_cs.n_constraints,
            "synthesize_ms_median": key_ms,
            "check_ms_median": key_check_ms,
        },
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
