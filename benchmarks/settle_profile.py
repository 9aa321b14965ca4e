"""Where a settlement's gas goes, by Vyper source line: an opcode-level gas profile of
`BatchVerifier.submit_batch` (and the contracts it calls) on py-evm.

Runs on a node that `benchmarks/settle_bench.py --work-dir DIR` proved (so nothing is proven
here): deploys the contracts on a fresh embedded L1, makes the L1 deposits, settles the batches in
order, and profiles the settlement of `--batch` (default: the last). Every opcode executed is
charged to its contract and program counter: gas before minus gas after, where a CALL's share
excludes the gas its callee used (the callee's own opcodes are charged where they run), so the
rows add up to the execution gas (the receipt's gas less the intrinsic and calldata gas, and
less the refund). Program counters are mapped to source lines with Vyper's runtime source map;
precompiles (ecrecover, ecAdd, ecMul, ecPairing) have no code and show as the CALL that reached
them.

Usage: python benchmarks/settle_profile.py --work-dir DIR [--batch N] [--top 30]
Prints JSON: gas per contract, per source line (top N), per opcode.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from settle_bench import INTRINSIC_GAS, compute_calldata, deploy_for_node  # noqa: E402

CALLS = {0xF1, 0xF2, 0xF4, 0xFA}  # CALL, CALLCODE, DELEGATECALL, STATICCALL
CONTRACTS = ("BatchVerifier", "Groth16Verifier", "Rollup", "Digests")
PRECOMPILES = {1: "ecrecover", 2: "sha256", 4: "identity", 6: "ecAdd", 7: "ecMul", 8: "ecPairing"}


def locate(pcs: dict[int, tuple[str, int, str]], ordered: list[int], pc: int) -> tuple[str, int, str]:
    """The source line of `pc`, else of the nearest mapped pc before it (Vyper maps the pcs of a
    statement's own code; its runtime helpers, e.g. copies and bounds checks, follow them)."""
    import bisect

    if pc in pcs:
        return pcs[pc]
    i = bisect.bisect_right(ordered, pc) - 1
    if i < 0:
        return ("?", 0, "(before any source position: dispatch)")
    file, line, source = pcs[ordered[i]]
    return (file, line, source + "  [helpers after it]")


def load_source_maps(shape: Any) -> dict[str, dict[int, tuple[str, int, str]]]:
    """Contract name -> runtime pc -> (file, line, source text), from Vyper's source map."""
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    from contracts.build import SOURCES, render_params

    maps = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for path in SOURCES.glob("*.vy"):
            (root / path.name).write_text(path.read_text())
        (root / "params.vy").write_text(render_params(shape))
        for name in CONTRACTS:
            bundle = FilesystemInputBundle([root])
            out = vyper.compile_from_file_input(
                bundle.load_file(Path(f"{name}.vy")), input_bundle=bundle, output_formats=["source_map_runtime"]
            )
            files = {sid: Path(p).name for p, sid in bundle._source_ids.items()}
            texts = {sid: (root / files[sid]).read_text().splitlines() for sid in files}
            smap = out["source_map_runtime"]
            pcs = {}
            for pc, (source_id, _) in smap["pc_ast_map"].items():
                line = smap["pc_pos_map"].get(pc, (None,))[0]
                if line is not None and source_id in files:
                    pcs[pc] = (files[source_id], line, texts[source_id][line - 1].strip()[:90])
            maps[name] = pcs
    return maps


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="A settle_bench --work-dir with proven batches.")
    parser.add_argument("--batch", type=int, help="The batch to profile (default: the last).")
    parser.add_argument("--top", type=int, default=30)
    opts = parser.parse_args()
    from eth.vm.forks.prague.computation import PragueComputation

    from contracts.client import build_submit_args, submit_batch

    made = opts.work_dir / "proven.json"
    # the proven node of settle_bench
    if not made.exists():
        raise SystemExit(f"{made} is missing: run benchmarks/settle_bench.py --work-dir {opts.work_dir} first")
    spec = json.loads(made.read_text())["spec"]
    l1, contracts, shape, published = deploy_for_node(opts.work_dir / "home", spec["seed"], spec["accounts"])
    target = opts.batch or len(published)
    # a batch the node holds
    if not 1 <= target <= len(published):
        raise SystemExit(f"--batch {target}: the node holds batches 1..{len(published)}")
    names = {}
    for name, address in (("BatchVerifier", contracts.batch_verifier.address), ("Groth16Verifier", contracts.groth16.address),
                          ("Rollup", contracts.rollup.address)):
        names[bytes.fromhex(address[2:])] = name
    names[bytes.fromhex(contracts.batch_verifier.functions.digests().call()[2:])] = "Digests"
    maps = load_source_maps(shape)
    with GasProfiler(PragueComputation) as profiler:
        for number, pub in enumerate(published[:target], start=1):
            args = build_submit_args(pub, shape)
            profiler.enabled = number == target
            result = submit_batch(l1, contracts, args)
            profiler.enabled = False
    calldata = compute_calldata(bytes.fromhex(contracts.batch_verifier.functions.submit_batch(*args.as_args())._encode_transaction_data()[2:]))
    by_contract: Counter = Counter()
    by_line: Counter = Counter()
    positions = {name: sorted(pcs) for name, pcs in maps.items()}
    for (address, pc), gas in profiler.by_pc.items():
        name = names.get(bytes(address), "0x" + bytes(address).hex())
        by_contract[name] += gas
        by_line[(name, *locate(maps.get(name, {}), positions.get(name, []), pc))] += gas
    executed = sum(by_contract.values())
    report = {
        "benchmark": "settle_gas_profile",
        "batch": target,
        "transactions": result.transactions,
        "segments": len(args.segments),
        "gas_used": result.gas_used,
        "intrinsic_and_calldata_gas": INTRINSIC_GAS + calldata["calldata_gas"],
        "executed_gas_profiled": executed,
        "by_contract": dict(by_contract.most_common()),
        "by_opcode_top": dict(profiler.by_opcode.most_common(15)),
        "precompiles": {PRECOMPILES.get(a, hex(a)): gas for a, gas in profiler.precompiles.most_common()},
        "by_line_top": [
            {"contract": c, "file": f, "line": ln, "source": src, "gas": gas, "share": round(gas / executed, 3)}
            for (c, f, ln, src), gas in by_line.most_common(opts.top)
        ],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
