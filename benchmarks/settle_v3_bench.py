"""Settlement gas of circuit v3 on L1 (RollupV3.vy on py-evm), per trade: prints JSON.

Two steps, because proving is slow and gas measurement is not:

    python benchmarks/settle_v3_bench.py prepare [--slots 32] [--trades 1024] [--cache DIR]
    python benchmarks/settle_v3_bench.py run [--cache DIR] [--sizes 64,256,1024]

or, without proving (the numbers in docs/settlement.md, where the setup did not finish here):

    python benchmarks/settle_v3_bench.py placeholder [--slots 32] [--sizes 64,256,1024]

`placeholder` replays the same workload, runs every settlement with its real data and placeholder
proofs (valid curve points): every check runs, the pairing check included, and fails at the end;
the gas to that point is measured and the final state writes (measured by `run` on a proven
settlement: `final_writes_gas`) are added.

`prepare` (run it with `ulimit -s unlimited`: mcl's mulVec overflows the default 8 MB stack
on the 2^19-point MSMs of 32-slot segments and the process dies with SIGSEGV) generates a workload (48 accounts, one perpetual; deposits and the first oracle update
are batch 1, then `--trades` perpetual trades are batch 2), replays it as v3 segments of `--slots`
slots, runs one setup and proves every segment (the configured proving backend: mcl when
installed), and writes the published batches to the cache with the constraints and timings.

`run` deploys a fresh RollupV3 per size, queues the deposits on L1, settles batch 1, then settles
the first `size` trades of batch 2 (its first size/slots segments: a prefix of a batch is a
batch, as its proofs are per segment) in one transaction, and splits the gas: calldata,
signatures (ecrecover and the EIP-712 digests), proof check (input combination, MSM, pairing),
the rest. The split charges every opcode to the Vyper source line it runs (py-evm opcode hooks:
`GasProfiler` below).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_CACHE = ROOT / "bench-results" / "settle_v3"
ACCOUNTS = 48
SEED = 5


def prepare(args: argparse.Namespace) -> dict:
    """Prove and cache; every proof is written as soon as it exists, so `run` can measure the
    prefix proven so far (the meta file records the progress)."""
    from prover.circuits.transition import build_transition_circuit
    from prover.setup import load_proving_key, save_proving_key, setup
    from prover.transition_publish import get_accepted, prove_segments, publish, replay_batches
    from rollup.fixtures import WorkloadSpec, generate_workload
    from verifier.state_tree import TreeShape
    from verifier.transition import write_transition

    spec = WorkloadSpec(accounts=ACCOUNTS, perps=1, series=0, txs=args.trades + 64, seed=SEED, mix={"perp_trade": 1})
    workload = generate_workload(spec, workers=1)
    txs, signers = get_accepted(workload.genesis, workload.transactions)
    first = next(i for i, tx in enumerate(txs) if tx.type == "perp_trade")
    trades = slice(first, first + args.trades)
    # every trade accepted, or a prefix of the batch would hold fewer trades than it says
    if len(txs[trades]) != args.trades:
        raise SystemExit(f"the workload has {len(txs) - first} accepted trades, fewer than {args.trades}")
    tree = TreeShape(3, 4)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    shape, batches, _, _ = replay_batches(workload.genesis, [(txs[:first], signers[:first]), (txs[trades], signers[trades])], args.slots, tree)
    timings["witness"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    cs = build_transition_circuit(shape, batches[0].witnesses[0])
    timings["synthesis_one_segment"] = round(time.perf_counter() - started, 3)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    key_file = cache / f"pk-{args.slots}.bin"
    started = time.perf_counter()
    if key_file.exists():  # a previous run's setup (the slow, single-threaded step)
        pk = load_proving_key(key_file)
        timings["setup_loaded"] = round(time.perf_counter() - started, 3)
    else:
        pk = setup(cs, seed=1)
        timings["setup"] = round(time.perf_counter() - started, 3)
        save_proving_key(pk, key_file)
    meta = {
        "slots": args.slots,
        "trades": args.trades,
        "accounts": ACCOUNTS,
        "seed": SEED,
        "tree": {"depth": tree.depth, "arity": tree.arity},
        "genesis_root": hex(batches[0].prev_root),
        "constraints_per_segment": cs.n_constraints,
        "public_inputs_per_segment": shape.count_public_inputs(),
        "timings_seconds": timings,
        "prove_seconds_per_segment": [],
        "backend": args.backend or "default",
        "proven": {},
    }
    started = time.perf_counter()
    for batch in batches:
        proofs: list[dict] = []
        write_transition(cache / f"batch-{batch.number}", publish(batch, pk.vk, [], workload.genesis, tree))
        for proof in prove_segments(batch, pk, args.backend):
            meta["prove_seconds_per_segment"].append(round(time.perf_counter() - started, 3))
            started = time.perf_counter()
            proofs.append(proof)
            directory = cache / f"batch-{batch.number}" / "proofs"
            (directory / f"segment-{len(proofs) - 1}.json").write_text(json.dumps(proof))
            meta["proven"][str(batch.number)] = len(proofs)
            (cache / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--slots", type=int, default=32)
    p.add_argument("--trades", type=int, default=1024)
    p.add_argument("--cache", default=str(DEFAULT_CACHE))
    p.add_argument("--backend", default=None)
    ph = sub.add_parser("placeholder")
    ph.add_argument("--slots", type=int, default=32)
    ph.add_argument("--sizes", default="64,256,1024")
    ph.add_argument("--top-lines", type=int, default=0, help="also list the N source lines that use the most gas")
    r = sub.add_parser("run")
    r.add_argument("--cache", default=str(DEFAULT_CACHE))
    r.add_argument("--sizes", default="64,256,1024")
    r.add_argument("--top-lines", type=int, default=0, help="also list the N source lines that use the most gas")
    args = parser.parse_args()
    if args.command == "prepare":
        print(json.dumps(prepare(args), indent=1))
    elif args.command == "placeholder":
        print(json.dumps(run_placeholder(args), indent=1))
    else:
        print(json.dumps(run_bench(args), indent=1))


# --- run: deploy, settle, profile -------------------------------------------------------------------

SIGNATURE_FUNCTIONS = {"_recover", "_recover_compact", "_explain_bad_signature", "_compute_digest", "_compute_oracle_digest", "_hash_array", "get_struct_hash", "is_self_settlement"}
MSM_FUNCTIONS = {"_compute_vk_sum", "_get_ic", "_ec_add", "_ec_mul", "_scale"}
# statements of RollupV3.settle, by their first words: the combination of inputs (Fiat-Shamir
# weights, c_j += rho_i x_ij) and the signature checks (reading signatures, ecrecover, windows)
COMBINATION_MARKS = ("combined[", "rho: uint256", "rhos.append", "sum_rho =", "seed: bytes32", "combined: uint256")
# the segment's record words laid out and hashed (sha256): the one public input they become
RECORDS_HASH_MARKS = ("records: uint256[", "records[", "records_hash: uint256")
# the withdrawals' and registrations' ecrecover (L2 signatures are verified in the proofs), the oracle's
SIGNATURE_BLOCKS = (("digest: bytes32 = keccak256(concat(digest_prefix", "if code == v3records.CODE_WITHDRAW:"), ("signer: address = self._recover_compact(", "at += v3params.SIGNATURE_BYTES"))


def read_cache(cache: Path) -> tuple[dict, list]:
    from verifier.transition import PublishedTransition

    meta = json.loads((cache / "meta.json").read_text())
    batches = []
    for number in (1, 2):
        directory = cache / f"batch-{number}"
        batch = PublishedTransition.model_validate_json((directory / "batch.json").read_text())
        vk = json.loads((directory / "verification_key.json").read_text())
        proofs = []
        while (directory / "proofs" / f"segment-{len(proofs)}.json").exists():
            proofs.append(json.loads((directory / "proofs" / f"segment-{len(proofs)}.json").read_text()))
        batches.append((batch, vk, proofs))
    return meta, batches


def load_source_maps(shape) -> dict[str, dict[int, tuple[str, int]]]:
    """Contract -> runtime pc -> (file, line), from Vyper's source map of the v3 contracts."""
    import tempfile

    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    from contracts.transition_build import SOURCES, render_params, render_records

    maps, texts = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for path in SOURCES.glob("*V3.vy"):
            (root / path.name).write_text(path.read_text())
        (root / "v3params.vy").write_text(render_params(shape))
        (root / "v3records.vy").write_text(render_records())
        for path in root.glob("*.vy"):
            texts[path.name] = path.read_text().splitlines()
        for name in ("RollupV3", "TransitionVerifierV3"):
            bundle = FilesystemInputBundle([root])
            out = vyper.compile_from_file_input(bundle.load_file(Path(f"{name}.vy")), input_bundle=bundle, output_formats=["source_map_runtime"])
            files = {sid: Path(p).name for p, sid in bundle._source_ids.items()}
            smap = out["source_map_runtime"]
            maps[name] = {
                pc: (files[sid], smap["pc_pos_map"][pc][0])
                for pc, (sid, _) in smap["pc_ast_map"].items()
                if sid in files and smap["pc_pos_map"].get(pc, (None,))[0] is not None
            }
    return maps, texts


def get_function(lines: list[str], line: int) -> str:
    for k in range(line - 1, -1, -1):
        if lines[k].startswith("def "):
            return lines[k][4:].split("(")[0]
    return "(dispatch)"


def classify(contract: str, file: str, line: int, texts: dict[str, list[str]]) -> str:
    """signatures | proof_check.combination | proof_check.records_hash | proof_check.msm | proof_check.pairing | rest."""
    lines = texts[file]
    function = get_function(lines, line)
    if contract == "TransitionVerifierV3":
        return "proof_check.msm" if function in MSM_FUNCTIONS else "proof_check.pairing"
    if function in SIGNATURE_FUNCTIONS:
        return "signatures"
    if function == "_get_weight":
        return "proof_check.combination"
    if function == "settle":
        text = lines[line - 1].strip()
        if text.startswith(COMBINATION_MARKS):
            return "proof_check.combination"
        if text.startswith(RECORDS_HASH_MARKS):
            return "proof_check.records_hash"
        for start, end in SIGNATURE_BLOCKS:
            first = next(k for k, t in enumerate(lines) if t.strip().startswith(start))
            last = next(k for k in range(first + 1, len(lines)) if lines[k].strip().startswith(end))
            if first < line <= last:
                return "signatures"
    return "rest"


CALLS = {0xF1, 0xF2, 0xF4, 0xFA}  # CALL, CALLCODE, DELEGATECALL, STATICCALL


class GasProfiler:
    """Wraps every opcode of the fork's computation class: exclusive gas per (address, pc)."""

    def __init__(self, computation_class: Any):
        self.cls = computation_class
        self.original = dict(computation_class.opcodes)
        self.by_pc: Counter = Counter()
        self.by_opcode: Counter = Counter()
        self.precompiles: Counter = Counter()  # precompile address byte -> gas (inside its CALL's share)
        self.enabled = False

    def __enter__(self) -> "GasProfiler":
        wrapped = {code: self._wrap(code, fn) for code, fn in self.original.items()}
        self.cls.opcodes = wrapped
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cls.opcodes = self.original

    def _wrap(self, code: int, fn: Any) -> Any:
        profiler = self

        def run(computation: Any) -> None:
            if not profiler.enabled:
                return fn(computation=computation)
            pc = computation.code.program_counter - 1
            before = computation.get_gas_remaining()
            children = len(computation.children)
            try:
                return fn(computation=computation)
            finally:
                used = before - computation.get_gas_remaining()
                if code in CALLS:
                    for child in computation.children[children:]:
                        if child.msg.code:  # a contract: its opcodes are charged where they run
                            used -= child.get_gas_used()
                        else:  # a precompile
                            profiler.precompiles[bytes(child.msg.code_address)[-1]] += child.get_gas_used()
                key = (computation.msg.storage_address, pc)
                profiler.by_pc[key] += used
                profiler.by_opcode[getattr(fn, "mnemonic", hex(code))] += used

        run.mnemonic = getattr(fn, "mnemonic", hex(code))  # type: ignore[attr-defined]
        return run


# RollupV3.settle after the proof check (state root, batch number, deposits consumed unchanged,
# the event): `run` prints it as final_writes_gas; 8,139 on a proven settlement of trades
FINAL_WRITES_GAS = 8_139


def settle_profiled(l1, dep, batch, proofs, n_segments: int, maps, texts, expect_revert: bool = False, top_lines: int = 0) -> dict:
    """Settle and charge every opcode (and precompile) to a category."""
    from collections import Counter

    from eth.vm.forks.prague.computation import PragueComputation

    from contracts.transition_client import EIP7825_GAS_CAP, TX_SIZE_LIMIT, encode_settlement, settle

    names = {bytes.fromhex(dep.rollup.address[2:]): "RollupV3", bytes.fromhex(dep.verifier.address[2:]): "TransitionVerifierV3"}
    positions = {name: sorted(pcs) for name, pcs in maps.items()}
    started = time.perf_counter()
    with GasProfiler(PragueComputation) as profiler:
        profiler.enabled = True
        if expect_revert:
            result = settle_reverting(l1, dep, batch, proofs, n_segments)
        else:
            result = settle(l1, dep, batch, proofs, n_segments=n_segments, enforce_limits=False)
        profiler.enabled = False
    seconds = time.perf_counter() - started
    if expect_revert:
        # it ran to the proof check and failed there: the replayed reason names it
        try:
            dep.rollup.functions.settle(*encode_settlement(batch, proofs, n_segments)).call(
                {"from": l1.default_sender, "gas": 29_000_000}, block_identifier=result.receipt["blockNumber"] - 1)
        except Exception as exc:
            if "the proofs do not verify" not in str(exc):
                raise SystemExit(f"the settlement failed before the proof check: {exc}")
    import bisect

    by_category: Counter = Counter()
    by_line: Counter = Counter()
    final_writes = 0
    for (address, pc), gas in profiler.by_pc.items():
        name = names.get(bytes(address))
        if name is None:
            by_category["rest"] += gas
            continue
        pcs = maps[name]
        if pc not in pcs:
            k = bisect.bisect_right(positions[name], pc) - 1
            pc = positions[name][k] if k >= 0 else None
        if pc is None:
            by_category["rest"] += gas
            continue
        file, line = pcs[pc]
        by_category[classify(name, file, line, texts)] += gas
        by_line[(file, line)] += gas
        if name == "RollupV3" and file == "RollupV3.vy":
            lines = texts[file]
            first = next(k for k, t in enumerate(lines) if "assert staticcall TransitionVerifier" in t) + 1
            if first < line and get_function(lines, line) == "settle":
                final_writes += gas
    # precompile gas is inside its CALL's share (charged above to the calling line's category)
    precompiles = {"ecrecover": profiler.precompiles.get(1, 0), "ecAdd": profiler.precompiles.get(6, 0),
                   "ecMul": profiler.precompiles.get(7, 0), "ecPairing": profiler.precompiles.get(8, 0)}
    tx = l1.w3.eth.get_transaction(result.receipt["transactionHash"])
    raw = bytes(tx["input"])
    zeros = raw.count(0)
    calldata_gas = 16 * (len(raw) - zeros) + 4 * zeros
    floor = 21_000 + 10 * (zeros + 4 * (len(raw) - zeros))
    executed = sum(by_category.values())
    split = {
        "calldata": calldata_gas,
        "signatures": by_category["signatures"],
        "proof_check": by_category["proof_check.combination"] + by_category["proof_check.records_hash"] + by_category["proof_check.msm"] + by_category["proof_check.pairing"],
        "rest": result.gas_used - calldata_gas - by_category["signatures"] - by_category["proof_check.combination"]
        - by_category["proof_check.records_hash"] - by_category["proof_check.msm"] - by_category["proof_check.pairing"],
    }
    trades = result.transactions
    row = {
        "trades": trades,
        "segments": result.segments,
        "gas_used": result.gas_used,
        "gas_per_trade": round(result.gas_used / trades),
        "split": split,
        "split_per_trade": {k: round(v / trades) for k, v in split.items()},
        "proof_check_detail": {
            "input_combination": by_category["proof_check.combination"],
            "records_hash": by_category["proof_check.records_hash"],
            "msm_and_proof_scaling": by_category["proof_check.msm"],
            "pairing_and_pair_assembly": by_category["proof_check.pairing"],
        },
        "precompiles": precompiles,
        "rest_note": "21,000 base, parsing records, deposits/withdrawals, memory (the data bound's reservation), storage, the loop",
        "executed_gas_profiled": executed,
        "final_writes_gas": final_writes,
        "calldata_bytes": len(raw),
        "eip7623_floor_gas": floor,
        "transaction_bytes": result.calldata_bytes,
        "fits_eip7825_gas_cap": result.gas_used <= EIP7825_GAS_CAP,
        "fits_128kb_tx_limit": result.calldata_bytes <= TX_SIZE_LIMIT,
        "py_evm_seconds": round(seconds, 2),
    }
    if top_lines:
        # where to look next: the heaviest lines, precompile gas included in their CALL's line
        row["top_lines"] = [{"line": f"{file}:{line}", "gas": gas, "source": texts[file][line - 1].strip()[:100]}
                            for (file, line), gas in by_line.most_common(top_lines)]
    return row


def settle_reverting(l1, dep, batch, proofs, n_segments: int):
    """Send a settlement whose proofs fail: its receipt (status 0) and what `settle` would report."""
    from contracts.transition_client import TX_OVERHEAD_BYTES, SettleResult, encode_settlement

    evm_proofs, data = encode_settlement(batch, proofs, n_segments)
    call = dep.rollup.functions.settle(evm_proofs, data)
    tx = call.build_transaction({"from": l1.default_sender, "gas": l1.w3.eth.get_block("latest")["gasLimit"] - 1, "chainId": l1.chain_id, **l1._get_fees()})
    receipt = l1.w3.eth.wait_for_transaction_receipt(l1.w3.eth.send_transaction(tx))
    # it ran to the proof check and failed there (the reason, replayed, names it)
    if receipt["status"] != 0:
        raise SystemExit("placeholder proofs verified: impossible unless the check is broken")
    size = len(bytes.fromhex(call._encode_transaction_data()[2:])) + TX_OVERHEAD_BYTES
    return SettleResult(batch.batch, receipt["gasUsed"], size, n_segments, sum(len(s.transactions) for s in batch.segments[:n_segments]), receipt)


def project(measured: list[dict], size: int) -> dict:
    """Each component as a + b * trades from the two largest measured sizes: a projection."""
    lo, hi = sorted(measured, key=lambda m: m["trades"])[-2:]
    out = {}
    for key in ("calldata", "signatures", "proof_check", "rest"):
        b = (hi["split"][key] - lo["split"][key]) / (hi["trades"] - lo["trades"])
        a = hi["split"][key] - b * hi["trades"]
        out[key] = round(a + b * size)
    total = sum(out.values())
    return {"trades": size, "projected": True, "from_sizes": [lo["trades"], hi["trades"]], "gas_used": total,
            "gas_per_trade": round(total / size), "split": out, "split_per_trade": {k: round(v / size) for k, v in out.items()}}


def make_placeholder_key(n_public: int):
    """A verifying key of valid points (multiples of the generators, no setup): the contract's gas
    does not depend on which points they are."""
    from verifier.curve import BN254
    from verifier.groth16 import VerifyingKey

    g1, g2 = BN254.G1, BN254.G2
    return VerifyingKey(BN254.multiply(g1, 2), BN254.multiply(g2, 3), BN254.multiply(g2, 5), BN254.multiply(g2, 7),
                        tuple(BN254.multiply(g1, 11 + j) for j in range(n_public + 1)))


def run_placeholder(args: argparse.Namespace) -> dict:
    """Every size's settlement with the real data (records, signatures, oracle sections, roots from
    the replay) and placeholder proofs: everything runs, the pairing check included, which then
    fails; the gas to that point is measured (the receipt of the reverted transaction) and the
    final state writes, measured on a proven settlement, are added."""
    from contracts.chain import L1
    from contracts.transition_client import EIP7825_GAS_CAP, TX_SIZE_LIMIT, deploy_v3, get_settlement_shape
    from prover.transition_publish import get_accepted, publish, replay_batches
    from rollup.fixtures import WorkloadSpec, generate_workload
    from verifier.curve import BN254
    from verifier.groth16 import Proof
    from verifier.snarkjs import format_proof, format_verifying_key
    from verifier.state_tree import TreeShape

    sys.path.insert(0, str(ROOT / "benchmarks"))
    sizes = [int(x) for x in args.sizes.split(",")]
    spec = WorkloadSpec(accounts=ACCOUNTS, perps=1, series=0, txs=max(sizes) + 64, seed=SEED, mix={"perp_trade": 1})
    workload = generate_workload(spec, workers=1)
    txs, signers = get_accepted(workload.genesis, workload.transactions)
    first = next(i for i, tx in enumerate(txs) if tx.type == "perp_trade")
    tree = TreeShape(3, 4)
    started = time.perf_counter()
    shape, batches, _, _ = replay_batches(workload.genesis, [(txs[:first], signers[:first]), (txs[first:first + max(sizes)], signers[first:first + max(sizes)])], args.slots, tree)
    replay_seconds = time.perf_counter() - started
    vk = make_placeholder_key(shape.count_public_inputs())
    proof = format_proof(Proof(BN254.G1, BN254.G2, BN254.multiply(BN254.G1, 3)))
    trades = batches[1]
    files = publish(trades, vk, [proof] * len(trades.witnesses), workload.genesis, tree)
    settlement_shape = get_settlement_shape(files.batch)
    maps, texts = load_source_maps(settlement_shape)
    measured = []
    for size in sizes:
        n_segments = size // args.slots
        l1 = L1.embedded()
        # the contract starts where the trades start (the deposits' batch settled): its gas does not
        # depend on the batch number, only the proofs (placeholders here) do
        dep = deploy_v3(l1, settlement_shape, format_verifying_key(vk), workload.genesis, trades.prev_root)
        row = settle_profiled(l1, dep, files.batch, files.proofs, n_segments, maps, texts, expect_revert=True, top_lines=args.top_lines)
        row["final_writes_gas_added"] = FINAL_WRITES_GAS
        row["gas_used"] += FINAL_WRITES_GAS
        row["split"]["rest"] += FINAL_WRITES_GAS
        row["gas_per_trade"] = round(row["gas_used"] / row["trades"])
        row["split_per_trade"] = {k: round(v / row["trades"]) for k, v in row["split"].items()}
        row["fits_eip7825_gas_cap"] = row["gas_used"] <= EIP7825_GAS_CAP
        measured.append(row)
    return {
        "benchmark": "settle_v3",
        "mode": "placeholder proofs: real calldata (records, signatures, oracle sections, roots), the whole settlement runs and its pairing check fails; the final state writes (measured on a proven settlement) are added",
        "command": f"python benchmarks/settle_v3_bench.py placeholder --slots {args.slots} --sizes {args.sizes}",
        "circuit_shape": {"slots_per_segment": args.slots, "tree": {"depth": tree.depth, "arity": tree.arity},
                          "instruments": len(workload.genesis.instruments), "n_scenarios": workload.genesis.risk.n_scenarios,
                          "public_inputs_per_segment": shape.count_public_inputs()},
        "replay_seconds": round(replay_seconds, 2),
        "limits": {"eip7825_gas_cap": EIP7825_GAS_CAP, "tx_size_limit_bytes": TX_SIZE_LIMIT,
                   "note": "py-evm (Prague) enforces neither; each row says whether it fits"},
        "measured": measured,
    }


def run_bench(args: argparse.Namespace) -> dict:
    from contracts.chain import L1
    from contracts.transition_client import EIP7825_GAS_CAP, TX_SIZE_LIMIT, UNIT_WEI, deploy_v3, deposit, get_settlement_shape, settle
    from rollup.signing import dev_account_key, get_address

    sys.path.insert(0, str(ROOT / "benchmarks"))
    meta, ((batch1, vk, proofs1), (batch2, _, proofs2)) = read_cache(Path(args.cache))
    slots = meta["slots"]
    shape = get_settlement_shape(batch1)
    maps, texts = load_source_maps(shape)
    keys = {get_address(dev_account_key(meta["seed"], i)).lower(): dev_account_key(meta["seed"], i) for i in range(meta["accounts"])}
    measured, skipped = [], []
    for size in (int(x) for x in args.sizes.split(",")):
        n_segments = size // slots
        # whole segments of trades, all proven
        if size % slots or n_segments > len(proofs2) or len(proofs1) < len(batch1.segments):
            skipped.append({"trades": size, "reason": f"{len(proofs2)} of batch 2's segments proven ({slots} trades each)"})
            continue
        l1 = L1.embedded()
        dep = deploy_v3(l1, shape, vk, batch1.genesis, int(meta["genesis_root"], 16))
        opened: set[int] = set()
        for segment in batch1.segments:
            for tx in (t for t in segment.transactions if t.type == "deposit"):
                key = keys[tx.address.lower()]
                l1.fund(get_address(key), tx.amount * UNIT_WEI + 10**18)
                # the contract assigns ids in order, as the workload's deposits take them
                if deposit(l1, dep, tx.account if tx.account in opened else None, tx.amount, key) != tx:
                    raise SystemExit(f"the L1 queue's deposit differs from the batch's: {tx}")
                opened.add(tx.account)
        settle(l1, dep, batch1, proofs1, enforce_limits=False)
        measured.append(settle_profiled(l1, dep, batch2, proofs2, n_segments, maps, texts, top_lines=args.top_lines))
    timings = meta["timings_seconds"]
    per_segment = meta.get("prove_seconds_per_segment", [])
    report = {
        "benchmark": "settle_v3",
        "command": f"python benchmarks/settle_v3_bench.py run --cache {args.cache} --sizes {args.sizes}",
        "circuit": {
            "slots_per_segment": slots,
            "tree": meta["tree"],
            "instruments": len(batch1.genesis.instruments),
            "n_scenarios": batch1.genesis.risk.n_scenarios,
            "constraints_per_segment": meta["constraints_per_segment"],
            "constraints_per_trade": round(meta["constraints_per_segment"] / slots),
            "public_inputs_per_segment": meta["public_inputs_per_segment"],
            "setup_seconds": timings.get("setup"),
            "prove_seconds_per_segment_median": sorted(per_segment)[len(per_segment) // 2] if per_segment else None,
            "prove_seconds_per_trade": round(sorted(per_segment)[len(per_segment) // 2] / slots, 3) if per_segment else None,
            "backend": meta["backend"],
        },
        "limits": {"eip7825_gas_cap": EIP7825_GAS_CAP, "tx_size_limit_bytes": TX_SIZE_LIMIT,
                   "note": "py-evm (Prague) enforces neither; each result says whether it fits"},
        "measured": measured,
        "skipped": skipped,
    }
    if len(measured) >= 2 and not any(m["trades"] == 1024 for m in measured):
        report["projection_1024"] = project(measured, 1024)
    return report


if __name__ == "__main__":
    main()
