"""SHA-256 gadget benchmark: constraints per compression and per slot message, and synthesis time per block.

Prints one JSON object. Run: .venv/bin/python benchmarks/sha256_circuit_bench.py [--quick]
- "compression": one `synthesize_sha256_compression` with a variable state and block (the general
  case: every block after the first), split into schedule / rounds / output; "compression_iv": the
  same with the IV as constants (a first block); "padding_block": a variable state with a constant
  block (the second block of a 64-byte message).
- "message_64_bytes": `synthesize_sha256` over 512 variable bits (2 compressions), the hash of one
  slot in circuit v3; "slot": the same fed by two `word_to_bits(., 248)` record words, plus
  `pack_bits(., 253)` of the digest (what a one-slot message costs in all); "segment": the same
  for --slots slots hashed as one message (one compression per slot plus one constant padding
  block), with the constraints per slot it adds over the one-slot message.
Times: median wall milliseconds to synthesize (constraints and witness values are built together)
and to check the witness; ms_per_block divides the 64-byte hash's synthesis by its 2 blocks.
Inputs are random and fresh per sample (their allocation is not timed).
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

from prover.circuits.sha256 import pack_bits, synthesize_sha256, synthesize_sha256_compression, word_to_bits
from prover.r1cs import ConstraintSystem, LinearCombination


def measure(prepare: Callable[[ConstraintSystem], Callable[[], object]], samples: int) -> dict[str, Any]:
    """Constraints added by the timed step (inputs excluded), its split, median ms to build and to check."""
    build_ms, check_ms = [], []
    cs, before = None, 0
    for _ in range(samples):
        cs = ConstraintSystem()
        step = prepare(cs)
        before = cs.n_constraints
        started = time.perf_counter()
        step()
        build_ms.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        cs.check()
        check_ms.append((time.perf_counter() - started) * 1e3)
    assert cs is not None
    split = Counter("/".join(name.split("/")[:2]) for name in cs.constraint_gadgets[before:])
    return {
        "constraints": cs.n_constraints - before,
        "split": dict(split),
        "synthesize_ms_median": round(statistics.median(build_ms), 1),
        "check_ms_median": round(statistics.median(check_ms), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--slots", type=int, default=4, help="slots of the segment message")
    args = parser.parse_args()
    samples = 3 if args.quick else 9
    rng = random.Random(1)

    def bits(cs: ConstraintSystem, n: int) -> list[LinearCombination]:
        # boolean inputs as the caller would have them (their own constraints are not counted)
        return [cs.private(rng.randrange(2)) for _ in range(n)]

    def compression(cs: ConstraintSystem) -> Callable[[], object]:
        state, block = bits(cs, 256), bits(cs, 512)
        return lambda: synthesize_sha256_compression(cs, state, block)

    def compression_iv(cs: ConstraintSystem) -> Callable[[], object]:
        block = bits(cs, 512)
        return lambda: synthesize_sha256_compression(cs, None, block)

    def padding_block(cs: ConstraintSystem) -> Callable[[], object]:
        state, block = bits(cs, 256), [cs.constant(rng.randrange(2)) for _ in range(512)]
        return lambda: synthesize_sha256_compression(cs, state, block)

    def message(cs: ConstraintSystem) -> Callable[[], object]:
        message_bits = bits(cs, 512)
        return lambda: synthesize_sha256(cs, message_bits)

    def slots(n: int) -> Callable[[ConstraintSystem], Callable[[], object]]:
        return lambda cs: record_hash(cs, 2 * n)

    def record_hash(cs: ConstraintSystem, n_words: int) -> Callable[[], object]:
        words = [cs.private(rng.randrange(1 << 248)) for _ in range(n_words)]

        def run() -> object:
            digest = synthesize_sha256(cs, [bit for word in words for bit in word_to_bits(cs, word, 248)])
            return pack_bits(cs, digest, 253)

        return run

    result: dict[str, Any] = {
        "benchmark": "sha256_circuit",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "samples": samples,
        "compression": measure(compression, samples),
        "compression_iv": measure(compression_iv, samples),
        "padding_block": measure(padding_block, samples),
        "message_64_bytes": measure(message, samples),
        "slot": measure(slots(1), samples),
        "segment": {"slots": args.slots, **measure(slots(args.slots), samples)},
    }
    extra = result["segment"]["constraints"] - result["slot"]["constraints"]
    result["segment"]["constraints_per_added_slot"] = round(extra / max(args.slots - 1, 1))
    result["ms_per_block"] = round(result["message_64_bytes"]["synthesize_ms_median"] / 2, 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
