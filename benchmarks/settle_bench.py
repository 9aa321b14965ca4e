"""Gas of settling a batch on the embedded L1 (py-evm, Prague), per batch and per transaction, for
batches of several sizes, split into proof checks, Merkle checks, calldata and the rest.

One run, in a fresh temporary node home:
1. a workload of `max(sizes)`-free derivative trades (perpetual and option trades only) after a
   setup batch (the accounts' deposits and the first oracle update), from `rollup.fixtures`;
2. `rollup init`, `rollup setup --slots N`, `rollup submit` of the setup batch and of one batch per
   size, `rollup prove --workers W` (the CLI, in child processes: proving dominates the run);
3. the contracts deployed on a fresh in-memory L1 (`contracts.client.deploy_rollup`), the deposits
   made on L1 (`l1_deposit`, matching the L2 deposits), then every batch settled in order
   (`build_submit_args`, `submit_batch`) with the receipt's gas and the wall time.

The split of one settlement (all EVM-exact gas, measured on the same chain state):
- calldata: 16 gas per non-zero byte, 4 per zero byte (EIP-2028), plus the 21,000 intrinsic gas.
  EIP-7623 (Prague) also sets a floor of 21,000 + 10 * (zero bytes + 4 * non-zero bytes); the
  transaction pays the larger of that floor and its normal gas, reported as `eip7623_floor_gas`.
- proof checks: one `Groth16Verifier.compute_vk_x` of the segments' public inputs combined with the
  batch's Fiat-Shamir weights, and one `verify_weighted` (the pairing check), each called
  through a gas probe: a contract compiled here that measures `msg.gas` around a `raw_call` to the
  verifier with the exact calldata the batch verifier sends (the CALL's own cost, cold account
  access included, is counted; the batch verifier's ABI encoding of the arguments is not).
- Merkle checks: `Rollup.settle` proves the first leaf of every key against the old root and the
  last against the new root: two `merkle.compute_multiproof_root` runs, measured with the
  test harness tests/vy/MerkleHarness.vy (it returns the gas used around the internal call) on
  the same keys, siblings, bitmap and leaves; both roots are checked against the chain's.
- remainder: total - intrinsic - calldata - proof checks - Merkle checks: window binding (leaf
  re-encoding and chaining in transient storage), the oracle replay, EIP-712 digests and ecrecover
  of the signatures, the deposit queue, the combination of the segments' public inputs (a mulmod
  and an addmod per non-zero word), ABI decoding and memory.

Usage: python benchmarks/settle_bench.py [--sizes 2,4,8,16] [--slots 4] [--workers 2] [--accounts 8] [--seed 11]
                                         [--work-dir DIR]
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ANCHORS = {"starkex_perpetual_trade": 426, "loopring_trade": 375}  # gas per trade (issue 6)
INTRINSIC_GAS = 21_000
PROBE_GAS = 29_000_000
PROBE_MAX_INPUT = 65_536  # bytes of calldata the probe forwards

# A gas probe: the gas of one external call, measured in the EVM around the call itself.
PROBE_SOURCE = f"""
# pragma version ~=0.4.3

@external
def probe(target: address, data: Bytes[{PROBE_MAX_INPUT}]) -> (uint256, bool):
    start: uint256 = msg.gas
    ok: bool = False
    out: Bytes[64] = b""
    ok, out = raw_call(target, data, max_outsize=64, is_static_call=True, revert_on_failure=False)
    used: uint256 = start - msg.gas
    return used, ok
"""


def run_cli(*args: str) -> Any:
    """`rollup ARGS --json` in a child process; its JSON output."""
    command = [sys.executable, "-c", "from rollup.cli.main import main; main()", *args, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    # the CLI succeeded
    if done.returncode != 0:
        raise RuntimeError(f"rollup {' '.join(args)} failed: {done.stdout}\n{done.stderr}")
    return json.loads(done.stdout)


def write_lines(path: Path, txs: list) -> Path:
    path.write_text("".join(tx.model_dump_json() + "\n" for tx in txs))
    return path


def get_workload(accounts: int, trades: int, seed: int) -> Any:
    from rollup.fixtures import WorkloadSpec, generate_workload

    spec = WorkloadSpec(accounts=accounts, txs=trades, mix={"perp_trade": 1, "option_trade": 1}, seed=seed)
    return generate_workload(spec, workers=1)


def split_batches(transactions: list, sizes: list[int]) -> list[list]:
    """The setup batch (deposits and oracle updates before the first trade), then one per size."""
    first_trade = next(i for i, tx in enumerate(transactions) if tx.type in ("perp_trade", "option_trade"))
    batches, start = [transactions[:first_trade]], first_trade
    for size in sizes:
        batches.append(transactions[start : start + size])
        start += size
    return batches


def compile_probe() -> Any:
    import vyper

    from contracts.build import Compiled

    out = vyper.compile_code(PROBE_SOURCE, output_formats=["abi", "bytecode", "bytecode_runtime"])
    return Compiled("GasProbe", out["abi"], out["bytecode"], len(bytes.fromhex(out["bytecode_runtime"].removeprefix("0x"))))


def probe_gas(probe: Any, contract: Any, fn_name: str, *args: Any) -> int:
    """Gas of `contract.fn_name(*args)` called from the probe (reverts count as a failed measure)."""
    data = bytes.fromhex(contract.encode_abi(fn_name, args=list(args))[2:])
    # the probe forwards at most PROBE_MAX_INPUT bytes
    if len(data) > PROBE_MAX_INPUT:
        raise RuntimeError(f"{fn_name} calldata is {len(data)} bytes, the probe takes {PROBE_MAX_INPUT}")
    used, ok = probe.functions.probe(contract.address, data).call({"gas": PROBE_GAS})
    # the measured call succeeded (a failed one would measure a revert)
    if not ok:
        raise RuntimeError(f"{fn_name} reverted under the gas probe")
    return used


def compute_calldata(data: bytes) -> dict[str, int]:
    zeros = data.count(0)
    nonzero = len(data) - zeros
    return {
        "calldata_bytes": len(data),
        "calldata_zero_bytes": zeros,
        "calldata_gas": 16 * nonzero + 4 * zeros,
        "eip7623_floor_gas": INTRINSIC_GAS + 10 * (zeros + 4 * nonzero),
    }


def measure_proof_checks(contracts: Any, probe: Any, args: Any, number: int) -> dict[str, int]:
    """The verifier's two calls as BatchVerifier makes them: one `compute_vk_x` of the segments'
    inputs combined with the batch weights, one `verify_weighted` (the pairing check)."""
    from contracts.groth16 import combine_inputs
    from verifier.curve import BN254

    # The gas depends on which weights are 1 (an ecAdd instead of an ecMul) and on which combined
    # inputs are non-zero, not on the weights' values: the contract's rho_0 is 1 and the others
    # are 128-bit hashes, so 1, 3, 5, ... cost what the contract's weights cost.
    weights = [2 * i + 1 for i in range(len(args.segments))]
    combined, ic0_scalar = combine_inputs([[number, i, *words] for i, (words, _) in enumerate(args.segments)], weights, BN254.r)
    msm = probe_gas(probe, contracts.groth16, "compute_vk_x", combined, ic0_scalar)
    vk_sum = contracts.groth16.functions.compute_vk_x(combined, ic0_scalar).call({"gas": PROBE_GAS})
    proofs = [proof for _, proof in args.segments]
    # honest proofs verify for any weights
    if not contracts.groth16.functions.verify_weighted(proofs, weights, vk_sum).call({"gas": PROBE_GAS}):
        raise RuntimeError("the segment proofs do not verify")
    pairing = probe_gas(probe, contracts.groth16, "verify_weighted", proofs, weights, vk_sum)
    words = [w for ws, _ in args.segments for w in ws]
    return {
        "compute_vk_x_gas": msm,
        "verify_batch_gas": pairing,
        # what the MSM's cost follows: one ecMul (6,000 gas) per non-zero combined input
        "nonzero_words": sum(1 for w in words if w),
        "one_words": sum(1 for w in words if w == 1),
        "nonzero_combined_inputs": sum(1 for x in combined if x),
    }


def measure_merkle(harness: Any, published: Any, shape: Any, old_root: bytes, new_root: bytes) -> int:
    """Gas of Rollup.settle's two multiproof roots (old leaves, new leaves), checked against the roots."""
    from contracts.multiproof import to_evm_multiproof
    from verifier.batch import check_batch_data
    from verifier.encoding import leaf_hash

    keys, siblings, bitmap = to_evm_multiproof(published.batch.multiproof.to_multiproof())
    data = check_batch_data(published.batch, shape)
    after = dict(data.leaves_before)
    for key, _, value in data.net:
        after[key] = value
    total = 0
    for leaves, root in ((data.leaves_before, old_root), (after, new_root)):
        hashes = [leaf_hash(leaves[key]) for key in keys]
        computed, gas = harness.functions.compute_multiproof_root(keys, hashes, siblings, bitmap).call({"gas": PROBE_GAS})
        # the harness computed the chain's root: the same work Rollup.settle does
        if computed != root:
            raise RuntimeError("the Merkle harness does not rebuild the settled root")
        total += gas
    return total


def deploy_for_node(home: Path, seed: int, accounts: int, n_batches: int | None = None) -> tuple[Any, Any, Any, list]:
    """(l1, contracts, shape, published batches 1..n_batches, all by default): the node's
    batches as published, its contracts on a fresh in-memory L1, and the L1 deposits its setup
    batch's L2 deposits consume, in queue order."""
    from contracts.chain import L1
    from contracts.client import deploy_rollup, get_contracts, l1_deposit
    from prover.pipeline import get_current_keys, get_key_paths
    from rollup.publish import build_published, get_genesis
    from rollup.signing import dev_account_key, get_address
    from rollup.storage import Store
    from verifier.segment import SegmentShape
    from verifier.snarkjs import read_json

    store = Store.open(home)
    try:
        vk_hash, n_slots = get_current_keys(home, store)
        genesis = get_genesis(store)
        genesis_root = bytes.fromhex(store.get_meta("genesis_root") or "")
        shape = SegmentShape.from_genesis(genesis, n_slots)
        n = store.count_batches() if n_batches is None else n_batches
        published = [build_published(home, store, number) for number in range(1, n + 1)]
    finally:
        store.close()
    l1 = L1.embedded()
    deployment = deploy_rollup(l1, genesis, shape, read_json(get_key_paths(home)[1]), vk_hash, genesis_root)
    contracts = get_contracts(l1, deployment, shape)
    keys = {get_address(dev_account_key(seed, i)): dev_account_key(seed, i) for i in range(accounts)}
    opened: set[int] = set()
    for tx in published[0].batch.transactions:
        if tx.type == "deposit":
            # a first deposit opens the account (the contract assigns ids in order)
            made = l1_deposit(l1, contracts, tx.account if tx.account in opened else None, tx.amount, keys[tx.address])
            opened.add(made.account)
            # the L1 queue entry is the L2 deposit
            if made != tx:
                raise RuntimeError(f"L1 deposit {made}, the L2 deposit is {tx}")
    return l1, contracts, shape, published


def settle_all(home: Path, n_batches: int, seed: int, accounts: int) -> list[dict[str, Any]]:
    from contracts.build import compile_contract
    from contracts.chain import L1Revert
    from contracts.client import SettlementError, build_submit_args, submit_batch

    l1, contracts, shape, published = deploy_for_node(home, seed, accounts, n_batches)
    probe = l1.deploy(compile_probe())
    harness = l1.deploy(compile_contract("MerkleHarness", shape, extra_dirs=(REPO / "tests" / "vy",)))
    results = []
    for number, pub in enumerate(published, start=1):
        args = build_submit_args(pub, shape)
        old_root = contracts.rollup.functions.state_root().call()
        proof_checks = measure_proof_checks(contracts, probe, args, number)
        merkle_gas = measure_merkle(harness, pub, shape, old_root, args.new_root)
        calldata = compute_calldata(bytes.fromhex(contracts.batch_verifier.functions.submit_batch(*args.as_args())._encode_transaction_data()[2:]))
        print(f"batch {number}: {len(args.segments)} segments, proof checks {proof_checks}, merkle {merkle_gas}, calldata {calldata}", file=sys.stderr)
        started = time.perf_counter()
        try:
            settled = submit_batch(l1, contracts, args)
        except (L1Revert, SettlementError) as exc:
            # recorded, not hidden: the later batches cannot settle after this one
            results.append({"batch": number, "settled": False, "reason": str(exc), "segments": len(args.segments),
                            "proof_checks_gas": proof_checks, "merkle_checks_gas": merkle_gas, **calldata,
                            "settle_wall_s": round(time.perf_counter() - started, 2)})
            break
        wall = time.perf_counter() - started
        proofs = proof_checks["compute_vk_x_gas"] + proof_checks["verify_batch_gas"]
        calldata_part = INTRINSIC_GAS + calldata["calldata_gas"]
        n = settled.transactions
        results.append(
            {
                "batch": settled.batch,
                "settled": True,
                "kind": "setup (deposits, oracle update)" if number == 1 else "trades",
                "transactions": n,
                "segments": len(args.segments),
                "gas_used": settled.gas_used,
                "gas_per_transaction": round(settled.gas_used / n),
                **calldata,
                "split_gas": {
                    "intrinsic_and_calldata": calldata_part,
                    "proof_checks": proofs,
                    "merkle_checks": merkle_gas,
                    "remainder_windows_oracle_signatures": settled.gas_used - calldata_part - proofs - merkle_gas,
                },
                "split_gas_per_transaction": {
                    "intrinsic_and_calldata": round(calldata_part / n),
                    "proof_checks": round(proofs / n),
                    "merkle_checks": round(merkle_gas / n),
                    "remainder_windows_oracle_signatures": round((settled.gas_used - calldata_part - proofs - merkle_gas) / n),
                },
                "proof_checks_detail": proof_checks,
                "settle_wall_s": round(wall, 2),
                "vs_anchors": {name: round(settled.gas_used / n / gas, 1) for name, gas in ANCHORS.items()},
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,4,8,16", help="Trades per batch, comma-separated (at most contracts.build.MAX_SETTLED_SLOTS each).")
    parser.add_argument("--slots", type=int, default=4, help="Transactions per segment.")
    parser.add_argument("--workers", type=int, default=2, help="Parallel provers.")
    parser.add_argument("--accounts", type=int, default=8, help="Accounts (deposits in the setup batch).")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--work-dir", type=Path, help="Keep the proven node here; a later run of the same spec reuses it (L1 part only).")
    opts = parser.parse_args()
    from contracts.build import get_max_segments
    from verifier.segment import SegmentShape

    sizes = [int(x) for x in opts.sizes.split(",")]
    # a batch fits the batch verifier's segment bound
    max_segments = get_max_segments(SegmentShape(opts.slots))
    for size in [*sizes, opts.accounts + 1]:
        if size > max_segments * opts.slots:
            raise SystemExit(f"a batch of {size} transactions needs more than {max_segments} segments of {opts.slots} slots")
    started = time.perf_counter()
    workload = get_workload(opts.accounts, sum(sizes), opts.seed)
    batches = split_batches(workload.transactions, sizes)
    timings: dict[str, float] = {}
    spec = {"sizes": sizes, "slots": opts.slots, "accounts": opts.accounts, "seed": opts.seed}
    with tempfile.TemporaryDirectory(prefix="settle-bench-") as tmp:
        root = Path(tmp) if opts.work_dir is None else opts.work_dir
        home = root / "home"
        made = root / "proven.json"
        if made.exists() and json.loads(made.read_text())["spec"] == spec:
            # the same proven batches as last time: only the L1 part runs again
            setup, submitted, proved = (json.loads(made.read_text())[k] for k in ("setup", "submitted", "proved"))
        else:
            if home.exists():
                raise SystemExit(f"{home} holds a node of another spec: remove it or choose another --work-dir")
            root.mkdir(parents=True, exist_ok=True)
            (root / "genesis.json").write_text(workload.genesis.model_dump_json())
            run_cli("init", "--home", str(home), "--genesis", str(root / "genesis.json"))
            t = time.perf_counter()
            setup = run_cli("setup", "--slots", str(opts.slots), "--home", str(home))
            timings["setup_s"] = round(time.perf_counter() - t, 1)
            submitted = []
            for i, txs in enumerate(batches):
                out = run_cli("submit", str(write_lines(root / f"b{i}.jsonl", txs)), "--home", str(home), "--executor", "serial")
                submitted.append(out.get("accepted"))
            t = time.perf_counter()
            proved = run_cli("prove", "--home", str(home), "--workers", str(opts.workers))
            timings["prove_s"] = round(time.perf_counter() - t, 1)
            made.write_text(json.dumps({"spec": spec, "setup": setup, "submitted": submitted, "proved": proved}))
        t = time.perf_counter()
        results = settle_all(home, len(batches), opts.seed, opts.accounts)
        timings["settle_and_measure_s"] = round(time.perf_counter() - t, 1)
    trades = [r for r in results if r.get("kind") == "trades"]
    report = {
        "benchmark": "settle_gas",
        "l1": "embedded py-evm (eth-tester), Prague",
        "slots_per_segment": opts.slots,
        "accounts": opts.accounts,
        "accepted_per_batch": submitted,
        "n_constraints": setup.get("n_constraints"),
        "segments_proven": proved.get("proven"),
        "prove_workers": opts.workers,
        "cpu_count": os.cpu_count(),
        "method": {
            "total": "settlement receipt gasUsed",
            "calldata": "16 gas per non-zero byte, 4 per zero byte, plus 21,000 intrinsic; eip7623_floor_gas = 21,000 + 10 * (zero + 4 * non-zero bytes)",
            "proof_checks": "gas probe contract: msg.gas around a static raw_call of Groth16Verifier.compute_vk_x of the weighted combination of every segment's inputs and of verify_weighted, same calldata as the batch verifier sends",
            "merkle_checks": "tests/vy/MerkleHarness.vy compute_multiproof_root (gas around the internal call) on the old and the new leaves, roots checked",
            "remainder": "total - the rest: window binding, oracle replay, EIP-712 signatures, deposit queue, combining the segments' public inputs, ABI decoding",
        },
        "anchors_gas_per_trade": ANCHORS,
        "batches": results,
        "best_trade_gas_per_transaction": min((r["gas_per_transaction"] for r in trades), default=None),
        "timings": timings,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
