"""Proving and verification backends side by side on one segment circuit: prints JSON.

Same circuit, same run: one circuit v3 segment (prover/circuits/transition.py) of real
transactions, exported as .r1cs + .wtns (prover/export.py) for the measured references. By
default a small one: a genesis of --perps perpetuals and --series option series (16 risk
scenarios), a 4-ary accounts tree of depth --depth, --slots slots, the segment opened by an oracle
update and holding a trade (1 slot, depth 3: 21,265 constraints, domain 2^15). Small on purpose:
the only powers of tau here (pot15) bound snarkjs to a 2^15 domain, and the pure-Python backend's
setup and proof grow with the domain (the default genesis' 4-slot segment is 150k constraints,
2^18: run it with --perps 2 --series 8 --depth 12 --slots 4 --backends mcl).
- this project: setup on every installed backend (or --backends; the same key from the same toxic waste,
  compared), then per installed backend (prover/backends.py, verifier/backends.py): proving (cold: the key's bases converted for the backend; warm: the usual case in a worker),
  verifying one proof, batch-verifying --batch proofs (re-randomised copies of one proof:
  A' = A / t, B' = t B + t u delta, C' = C + u A, each a distinct valid proof), and a proof of each
  backend checked under every other;
- arkworks through groth16py (GPL-3.0, the optional extra [arkworks]): setup(r1cs),
  prove_wtns, Verifier.verify; its proof is checked under this project's verifier;
- snarkjs 0.7.6 (npm): `groth16 prove` of the same .r1cs/.wtns, if --snarkjs-dir holds a
  pot15_final.ptau (its phase-2 preparation takes about 12 minutes: made once, outside this script);
  the zkey is cached there.
- the QAP step (seven NTTs of the domain's size) each way: Python ints (prover/qap.py), gmpy2
  integers through the same code, the C extension (prover/_native.c), and the C NTTs run in a
  thread beside the MSMs (wall time);
- peak memory of a 2^--memory-log-size-row circuit (default 2^20) on --memory-backend: setup (and
  writing the key) in one subprocess, then a proving worker's part (key loaded for the backend,
  one proof of a witness, verified) in another; each reports its peak RSS (VmHWM).
Targets (issue 12) are evaluated at the end.

    python benchmarks/backend_bench.py [--slots 1] [--perps 1] [--series 1] [--depth 3] [--backends mcl py_ecc]
                                       [--batch 64] [--snarkjs-dir DIR] [--memory-log-size 20] [--out FILE]
    python benchmarks/backend_bench.py --only-references --snarkjs-dir DIR    # arkworks and snarkjs alone
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from prover.circuits.transition import build_transition_circuit
from prover.export import write_r1cs, write_wtns
from prover.groth16 import prove
from prover.qap import get_qap_domain
from prover.setup import setup
from prover.transition_publish import get_accepted, replay_batches
from rollup.fixtures import WorkloadSpec, generate_workload
from verifier import backends
from verifier.curve import BN254
from verifier.evm import decode_g1, decode_g2
from verifier.groth16 import Proof, batch_verify, prepare_verifying_key, verify_proof
from verifier.snarkjs import format_verifying_key, write_json
from verifier.state_tree import TreeShape

ROOT = Path(__file__).resolve().parent.parent
SNARKJS = ROOT / "node_modules" / ".bin" / "snarkjs"


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float, float]:
    """(result, best wall seconds, CPU seconds of that run) over `repeat` runs."""
    best = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        elapsed = (time.perf_counter() - wall, time.process_time() - cpu)
        if best is None or elapsed[0] < best[1]:
            best = (result, *elapsed)
    assert best is not None
    return best


def rerandomise(proof: Proof, rng: random.Random) -> Proof:
    """Another valid proof of the same statement (Groth16 proofs are malleable this way)."""
    curve, r = BN254, BN254.r
    t, u = rng.randrange(1, r), rng.randrange(1, r)
    return Proof(
        a=curve.multiply(proof.a, pow(t, -1, r)),
        b=curve.add(curve.multiply(proof.b, t), curve.multiply(DELTA_G2[0], t * u % r)),
        c=curve.add(proof.c, curve.multiply(proof.a, u)),
    )


DELTA_G2: list[Any] = []


TRADES = {"perp_trade", "option_trade"}


def build_circuit(n_slots: int, perps: int, series: int, depth: int) -> tuple[Any, list[int], dict[str, Any]]:
    """(circuit, public inputs, description) of one v3 segment of a replayed signed workload: the
    first whose slots are all used, opened by an oracle update (its section is proven too) and
    holding a trade. The constraint count depends on the shape only, not on the segment chosen."""
    spec = WorkloadSpec(accounts=8, perps=perps, series=series, txs=60, seed=3, tree_depth=depth)
    workload = generate_workload(spec, workers=1)
    genesis = workload.genesis
    txs, signers = get_accepted(genesis, workload.transactions)
    shape, (batch,), _, _ = replay_batches(genesis, [(txs, signers)], n_slots, TreeShape(depth, 4))
    full = [(seg, w) for seg, w in zip(batch.segments, batch.witnesses) if len(seg.transactions) == n_slots]
    seg, witness = next(((seg, w) for seg, w in full if seg.oracle_update is not None and TRADES & {tx.type for tx in seg.transactions}),
                        full[0])
    cs = build_transition_circuit(shape, witness)
    described = {
        "version": "v3 (prover/circuits/transition.py)",
        "genesis": {"perpetuals": perps, "option_series": series, "instruments": len(shape.table), "scenarios": shape.n_scenarios},
        "tree": f"4-ary, depth {depth}",
        "segment": {"oracle_update": seg.oracle_update is not None, "transactions": [tx.type for tx in seg.transactions]},
    }
    return cs, cs.public_inputs, described


def measure_ours(cs: Any, public_inputs: list[int], batch: int, names: list[str]) -> tuple[dict[str, Any], Any]:
    out: dict[str, Any] = {"setup_s": {}}
    keys = {}
    # the same toxic waste on every backend: the same key (points compared below)
    for name in names:
        keys[name], setup_wall, setup_cpu = timed(lambda: setup(cs, seed="backend-bench", backend=name))
        out["setup_s"][name] = {"wall": round(setup_wall, 2), "cpu": round(setup_cpu, 2)}
    pk = keys[backends.REFERENCE] if backends.REFERENCE in keys else keys[names[0]]
    out["same_key_on_every_backend"] = all(
        (k.a_query, k.b_g1_query, k.b_g2_query, k.l_query, k.h_query, k.vk) == (pk.a_query, pk.b_g1_query, pk.b_g2_query, pk.l_query, pk.h_query, pk.vk)
        for k in keys.values())
    del keys
    DELTA_G2.append(pk.vk.delta_g2)
    proofs: dict[str, Proof] = {}
    for name in names:
        _, cold, _ = timed(lambda: prove(pk, cs, backend=name))
        phases: dict[str, float] = {}
        # the split is that of the last run (the dict is cleared before each)
        proof, warm, warm_cpu = timed(lambda: (phases.clear(), prove(pk, cs, backend=name, timings=phases))[1],
                                      repeat=1 if name == "py_ecc" else 3)
        proofs[name] = proof
        pvk, prep, _ = timed(lambda: prepare_verifying_key(pk.vk, name))
        ok, verify_s, _ = timed(lambda: verify_proof(pvk, proof, public_inputs), repeat=3 if name != "py_ecc" else 1)
        rng = random.Random(5)
        items = [(rerandomise(proof, rng), public_inputs) for _ in range(batch)]
        batch_ok, batch_s, _ = timed(lambda: batch_verify(pvk, items, rng=random.Random(6)), repeat=3 if name != "py_ecc" else 1)
        wrong = list(items)
        wrong[batch // 2] = (items[0][0], [(public_inputs[0] + 1) % BN254.r, *public_inputs[1:]])
        out[name] = {
            "prove_s": {"cold": round(cold, 3), "warm": round(warm, 3), "warm_cpu": round(warm_cpu, 3)},
            "prove_cpu_split_s_last_run": {k: round(v, 3) for k, v in phases.items()},
            "prepare_verifying_key_s": round(prep, 3),
            "verify_one_s": round(verify_s, 4),
            "verified": ok,
            f"batch_verify_{batch}_s": round(batch_s, 3),
            "batch_verified": batch_ok,
            "batch_with_one_wrong_rejected": not batch_verify(pvk, wrong, rng=random.Random(7)),
        }
    out["cross_checks"] = {
        f"proof_by_{maker}_verifies_under_{checker}": verify_proof(prepare_verifying_key(pk.vk, checker), proof, public_inputs)
        for maker, proof in proofs.items() for checker in proofs if checker != maker
    }
    return out, pk


def measure_arkworks(r1cs: Path, wtns: Path, public_inputs: list[int]) -> dict[str, Any]:
    try:
        import groth16py
    except ImportError:
        return {"skipped": "groth16py is not installed (pip install '.[arkworks]'; GPL-3.0)"}
    (pk, vk), setup_s, _ = timed(lambda: groth16py.setup(str(r1cs)))
    blob, prove_s, prove_cpu = timed(lambda: groth16py.prove_wtns(pk, str(wtns)), repeat=3)
    verifier = groth16py.Verifier(vk)
    ok, verify_s, _ = timed(lambda: verifier.verify(blob, public_inputs), repeat=3)
    # its proof: a || b (imaginary parts first, as the EVM takes it) || c
    proof = Proof(a=decode_g1(blob[:64]), b=decode_g2(blob[64:192]), c=decode_g1(blob[192:256]))
    ours_vk = json.loads(vk.to_json())
    from verifier.snarkjs import parse_verifying_key

    ours_ok = verify_proof(prepare_verifying_key(parse_verifying_key(ours_vk)), proof, public_inputs)
    return {
        "package": f"groth16py {getattr(groth16py, '__version__', '?')} (arkworks, GPL-3.0)",
        "setup_s": round(setup_s, 2),
        "prove_s": {"wall": round(prove_s, 3), "cpu": round(prove_cpu, 3)},
        "verify_one_s": round(verify_s, 4),
        "verified": ok,
        "its_proof_verifies_under_this_project": ours_ok,
    }


def measure_snarkjs(snarkjs_dir: Path | None, r1cs: Path, wtns: Path, work: Path) -> dict[str, Any]:
    if snarkjs_dir is None or not (snarkjs_dir / "pot15_final.ptau").is_file():
        return {"skipped": "no --snarkjs-dir with pot15_final.ptau (snarkjs powersoftau new/contribute/prepare phase2, about 12 min)"}
    if not SNARKJS.exists():
        return {"skipped": "snarkjs not installed (npm ci)"}
    zkey = snarkjs_dir / f"segment-{r1cs.stat().st_size}.zkey"
    setup_s = None
    if not zkey.exists():
        _, setup_s, _ = timed(lambda: subprocess.run([str(SNARKJS), "groth16", "setup", str(r1cs), str(snarkjs_dir / "pot15_final.ptau"), str(zkey)],
                                                     check=True, capture_output=True))
    proof, public = work / "snarkjs_proof.json", work / "snarkjs_public.json"
    _, prove_s, _ = timed(lambda: subprocess.run([str(SNARKJS), "groth16", "prove", str(zkey), str(wtns), str(proof), str(public)],
                                                 check=True, capture_output=True), repeat=2)
    vk = work / "snarkjs_vk.json"
    subprocess.run([str(SNARKJS), "zkey", "export", "verificationkey", str(zkey), str(vk)], check=True, capture_output=True)
    done, verify_s, _ = timed(lambda: subprocess.run([str(SNARKJS), "groth16", "verify", str(vk), str(public), str(proof)], capture_output=True, text=True))
    return {
        "version": "snarkjs 0.7.6 (npm)",
        "setup_s": None if setup_s is None else round(setup_s, 1),
        "prove_s": round(prove_s, 3),
        "verify_one_s_including_node_start": round(verify_s, 3),
        "verified": "OK!" in done.stdout,
    }


# --- the QAP step (seven NTTs of the domain's size) done each way measured ---
def measure_qap_options(cs: Any, pk: Any) -> dict[str, Any]:
    """CPU seconds of h = (A B - C) / Z for this circuit's witness, by each implementation, and the
    wall time of a proof's MSMs with the C NTTs run beside them in a thread (both release the GIL)."""
    import threading

    from prover import native
    from prover.groth16 import get_prepared_queries
    from prover.qap import compute_abc_evaluations, compute_h_from_evaluations
    from prover.backends import get_prover_backend
    from prover.ec import get_arith

    domain = pk.domain
    witness = cs.witness
    a, b, c = compute_abc_evaluations(pk.constraints, witness, pk.n_public, domain)
    reference, python_s, python_cpu = timed(lambda: compute_h_from_evaluations(a, b, c, domain))
    out: dict[str, Any] = {"domain": domain.size, "python_ints_cpu_s": round(python_cpu, 3)}
    try:
        import gmpy2

        as_mpz = lambda values: [gmpy2.mpz(v) for v in values]  # noqa: E731
        got, _, cpu = timed(lambda: compute_h_from_evaluations(as_mpz(a), as_mpz(b), as_mpz(c), domain))
        out["gmpy2_cpu_s"] = round(cpu, 3)
        out["gmpy2_same_h"] = [int(x) for x in got] == reference
    except ImportError:
        out["gmpy2_cpu_s"] = "gmpy2 not installed"
    if not native.is_available():
        out["c_extension"] = "not built"
        return out
    got, _, cpu = timed(lambda: native.compute_h_from_evaluations(a, b, c, domain), repeat=3)
    out["c_extension_cpu_s"] = round(cpu, 3)
    out["c_extension_same_h"] = got == reference
    if not backends.is_installed("mcl"):
        return out
    mcl = get_prover_backend("mcl")
    queries = get_prepared_queries(pk, mcl)
    g1, g2 = get_arith(BN254, 1), get_arith(BN254, 2)
    scalars = [1, 1, *witness]

    def msms() -> None:
        mcl.msm(g1, queries.a, scalars)
        mcl.msm(g1, queries.b_g1, scalars)
        mcl.msm(g2, queries.b_g2, scalars)
        mcl.msm(g1, queries.l, witness[pk.n_public + 1:])

    def sequential() -> None:
        native.compute_h_from_evaluations(a, b, c, domain)
        msms()

    def overlapped() -> None:
        thread = threading.Thread(target=native.compute_h_from_evaluations, args=(a, b, c, domain))
        thread.start()
        msms()
        thread.join()

    _, seq_wall, _ = timed(sequential, repeat=3)
    _, par_wall, _ = timed(overlapped, repeat=3)
    out["ntt_then_msms_wall_s"] = round(seq_wall, 3)
    out["ntt_beside_msms_thread_wall_s"] = round(par_wall, 3)
    return out


# --- peak memory of a 2^k-constraint circuit (each phase in its own process) ---
def build_synthetic_circuit(log_size: int) -> Any:
    """A circuit whose QAP domain is exactly 2^log_size: a chain v' = (v + u + i) * v of full-size
    values (so every MSM has full-width scalars, the worst case), two public inputs."""
    from prover.r1cs import ConstraintSystem

    cs = ConstraintSystem(BN254)
    u, v = cs.public_input(3), cs.public_input(5)
    # rows: the constraints plus one per input (wire 0 included)
    for i in range((1 << log_size) - 3):
        w = cs.private((v.value + u.value + i) * v.value)
        cs.enforce(v + u + i, v, w)
        u, v = v, w
    return cs


def get_rss_mb() -> dict[str, float]:
    """This process's resident memory now and at its peak (Linux /proc, MB)."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"now": round(int(fields["VmRSS"].split()[0]) / 1024, 1), "peak": round(int(fields["VmHWM"].split()[0]) / 1024, 1)}


def compute_synthetic_witness(log_size: int) -> list[int]:
    """build_synthetic_circuit's assignment without the circuit (wire 0, the inputs, then the chain)."""
    r = BN254.r
    witness = [1, 3, 5]
    u, v = 3, 5
    for i in range((1 << log_size) - 3):
        u, v = v, (v + u + i) * v % r
        witness.append(v)
    return witness


def run_memory_child(phase: str, log_size: int, key_path: Path, backend: str) -> dict[str, Any]:
    """One phase in this (fresh) process: `setup` builds the circuit and writes its key; `prove` is
    a proving worker's part: load the key for the backend (prepared_for: no transcript, no Python
    points), prove a witness. Circuit
    synthesis is left out of `prove`: its memory is the circuit library's (setup's rss_mb_after_circuit)."""
    from prover.setup import load_proving_key, save_proving_key

    out: dict[str, Any] = {}
    if phase == "setup":
        cs, wall, _ = timed(lambda: build_synthetic_circuit(log_size))
        out["build_circuit_s"] = round(wall, 1)
        out["rss_mb_after_circuit"] = get_rss_mb()["now"]
        pk, wall, cpu = timed(lambda: setup(cs, seed="memory", backend=backend))
        out["setup_s"] = {"wall": round(wall, 1), "cpu": round(cpu, 1)}
        out["rss_mb_after_setup"] = get_rss_mb()["now"]
        out["key_file_mb"] = round(save_proving_key(pk, key_path) / 2**20, 1)
        out["constraints"] = cs.n_constraints
    else:
        witness = compute_synthetic_witness(log_size)
        pk, wall, _ = timed(lambda: load_proving_key(key_path, prepared_for=backend))
        out["load_key_s"] = round(wall, 1)
        out["rss_mb_after_key"] = get_rss_mb()["now"]
        proof, wall, cpu = timed(lambda: prove(pk, witness, backend=backend))
        out["prove_s"] = {"wall": round(wall, 1), "cpu": round(cpu, 1)}
        out["verified"] = verify_proof(prepare_verifying_key(pk.vk, backend), proof, witness[1:pk.n_public + 1])
        out["constraints"] = pk.n_constraints
    out["domain"] = 1 << pk.domain_log_size
    out["peak_rss_mb"] = get_rss_mb()["peak"]
    return out


def measure_memory(log_size: int, backend: str, work: Path) -> dict[str, Any]:
    """Setup, then proving, of a 2^log_size-row circuit, each in a subprocess whose peak RSS is read."""
    result: dict[str, Any] = {"log_size": log_size, "backend": backend}
    for phase in ("setup", "prove"):
        done = subprocess.run([sys.executable, __file__, "--memory-child", phase, "--memory-log-size", str(log_size),
                               "--memory-key", str(work / "memory.pk"), "--memory-backend", backend],
                              capture_output=True, text=True)
        if done.returncode != 0:
            result[phase] = {"failed": done.stderr.strip().splitlines()[-1:]}
            break
        result[phase] = json.loads(done.stdout)
    return result


def evaluate_targets(ours: dict[str, Any], arkworks: dict[str, Any], batch: int, memory: dict[str, Any] | None) -> dict[str, Any]:
    """The issue's targets. Proving ratios are judged on CPU seconds (the machine is shared: wall
    times carry other jobs' load); the wall-time ratios are printed beside them."""
    native = next((n for n in backends.list_installed() if n != "py_ecc" and n in ours), None)
    if native is None:
        return {"skipped": "no native backend measured"}
    fast = ours[native]["prove_s"]
    targets: dict[str, Any] = {"native_backend": native}
    if "py_ecc" in ours:
        slow = ours["py_ecc"]["prove_s"]
        speedup = slow["warm_cpu"] / fast["warm_cpu"]
        targets["speedup_over_py_ecc"] = {"value_cpu": round(speedup, 2), "value_wall": round(slow["warm"] / fast["warm"], 2),
                                          "target": ">= 8", "met": speedup >= 8}
    targets |= {
        "verify_one_s": {"value": ours[native]["verify_one_s"], "target": "< 0.020", "met": ours[native]["verify_one_s"] < 0.020},
        f"batch_verify_{batch}_s": {"value": ours[native][f"batch_verify_{batch}_s"], "target": "< 0.3",
                                    "met": ours[native][f"batch_verify_{batch}_s"] < 0.3},
    }
    if "prove_s" in arkworks:
        ratio = fast["warm_cpu"] / arkworks["prove_s"]["cpu"]
        targets["prove_vs_arkworks"] = {"value_cpu": round(ratio, 2), "value_wall": round(fast["warm"] / arkworks["prove_s"]["wall"], 2),
                                        "target": "<= 1.5", "met": ratio <= 1.5}
    if memory is not None and "peak_rss_mb" in memory.get("prove", {}):
        peak = memory["prove"]["peak_rss_mb"]
        targets[f"prove_peak_rss_mb_2^{memory['log_size']}"] = {"value": peak, "target": "< 4096", "met": peak < 4096}
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=1, help="slots of the segment circuit")
    parser.add_argument("--perps", type=int, default=1, help="perpetuals of the genesis")
    parser.add_argument("--series", type=int, default=1, help="option series of the genesis")
    parser.add_argument("--depth", type=int, default=3, help="depth of the genesis' 4-ary accounts tree")
    parser.add_argument("--backends", nargs="*", default=None, help="this project's backends to measure (default: every installed one)")
    parser.add_argument("--batch", type=int, default=64, help="proofs in the batch verification")
    parser.add_argument("--snarkjs-dir", type=Path, default=None, help="directory with pot15_final.ptau (zkey cached there)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--only-references", action="store_true", help="measure arkworks and snarkjs alone (same circuit)")
    parser.add_argument("--memory-log-size", type=int, default=20, help="peak memory of a 2^k-row circuit (0: skip)")
    parser.add_argument("--memory-backend", default="mcl", help="backend of the memory measurement")
    parser.add_argument("--memory-child", choices=["setup", "prove"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory-key", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        print(json.dumps(run_memory_child(args.memory_child, args.memory_log_size, args.memory_key, args.memory_backend)))
        return
    work = Path(tempfile.mkdtemp(prefix="backend-bench-"))
    try:
        cs, public_inputs, described = build_circuit(args.slots, args.perps, args.series, args.depth)
        circuit = {**described, "slots": args.slots, "constraints": cs.n_constraints, "public_inputs": cs.n_public, "wires": cs.n_vars,
                   "domain": get_qap_domain(BN254.r, cs.n_constraints, cs.n_public).size,
                   "v2_segment_it_replaces": "4 slots: 30,040 constraints, 1,854 public inputs, domain 2^15 (docs/bench/backend_bench.json before v2's deletion)"}
        r1cs, wtns = work / "segment.r1cs", work / "segment.wtns"
        write_r1cs(cs, r1cs)
        write_wtns(cs, wtns)
        load_before = os.getloadavg()[0]
        if args.only_references:
            result = {
                "machine": {"cores": os.cpu_count(), "load_average_1min": {"start": round(load_before, 1)}},
                "circuit": circuit,
                "arkworks": measure_arkworks(r1cs, wtns, public_inputs),
                "snarkjs": measure_snarkjs(args.snarkjs_dir, r1cs, wtns, work),
            }
            result["machine"]["load_average_1min"]["end"] = round(os.getloadavg()[0], 1)
        else:
            result = measure_all(args, cs, public_inputs, circuit, r1cs, wtns, work, load_before)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


def measure_all(args: Any, cs: Any, public_inputs: list[int], circuit: dict[str, Any], r1cs: Path, wtns: Path, work: Path,
                load_before: float) -> dict[str, Any]:
    """Everything: this project on every backend, the QAP step, the references, memory, targets."""
    names = args.backends or backends.list_installed()
    ours, pk = measure_ours(cs, public_inputs, args.batch, names)
    qap = measure_qap_options(cs, pk)
    write_json(work / "vk.json", format_verifying_key(pk.vk))
    arkworks = measure_arkworks(r1cs, wtns, public_inputs)
    snarkjs = measure_snarkjs(args.snarkjs_dir, r1cs, wtns, work)
    memory = measure_memory(args.memory_log_size, args.memory_backend, work) if args.memory_log_size else None
    return {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min": {"start": round(load_before, 1), "end": round(os.getloadavg()[0], 1)}},
        "circuit": circuit,
        "installed_backends": backends.list_installed(),
        "measured_backends": names,
        "this_project": ours,
        "qap_step": qap,
        "arkworks": arkworks,
        "snarkjs": snarkjs,
        f"memory_2^{args.memory_log_size}": memory,
        "targets": evaluate_targets(ours, arkworks, args.batch, memory),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    main()
