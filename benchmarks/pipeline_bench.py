"""The two parallel strategies against the sequential node, on one 50k-transaction batch.

For each contention level, in fresh child processes and alternating (so load from other users
hits every mode alike), `Node.submit` of the same mixed batch (after an untimed deposit batch):

- sequential: no executor (the reference);
- partitioned: `executor=ProcessExecutor(N)`: parallel signature pass, then conflict-free
  partitions executed in parallel (rollup/parallel.py);
- pipelined: `executor=ProcessExecutor(N), mode="pipelined"`: the workers recover signatures
  chunk by chunk while the coordinator executes every chunk whose signatures have arrived,
  sequentially, and writes its transactions, receipts and final leaves to the open database
  transaction; no state travels.

Reported: medians of the whole batch (signatures, execution, root, commit), of the
signatures-plus-execution phase, their ratios to sequential measured in the same run, and whether
every run gave the same root. Workloads are shared with benchmarks/parallel_bench.py (cached under
<out-dir>/workloads).

Usage: python benchmarks/pipeline_bench.py [--accounts 20000] [--txs 50000] [--contention 0,0.1,0.5,1]
                                           [--repeats 3] [--workers 2] [--out-dir bench-results]
Prints JSON and writes <out-dir>/pipeline_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parallel_bench import get_workload_files  # noqa: E402

MODES = ("sequential", "partitioned", "pipelined")
TARGET_LOW_CONTENTION_SPEEDUP = 1.7
TARGET_FULL_CONTENTION_RATIO = 0.9


def run_child(spec: dict) -> dict:
    import gc

    from rollup.executors import ProcessExecutor
    from rollup.node import Node
    from rollup.txfile import read_transaction_file
    from verifier.wire import Genesis

    executor = None if spec["mode"] == "sequential" else ProcessExecutor(spec["workers"])  # before loading
    genesis = Genesis.model_validate_json(Path(spec["genesis"]).read_text())
    transactions = read_transaction_file(Path(spec["transactions"]))
    setup, batch = transactions[: spec["setup"]], transactions[spec["setup"] :]
    del transactions
    with tempfile.TemporaryDirectory() as tmp:
        node = Node.init(Path(tmp) / "node", genesis)
        node.submit(setup)
        gc.collect()
        if executor is None:
            result = node.submit(batch)
        else:
            result = node.submit(batch, executor=executor, mode="pipelined" if spec["mode"] == "pipelined" else "partitioned")
            executor.shutdown()
        node.close()
    t = result.timings
    front = t.get("signatures_and_execution_s", t.get("signatures_s", 0.0) + t.get("execution_s", 0.0))
    return {"root": result.new_root.hex(), "accepted": result.n_accepted, "total_s": t["total_s"], "signatures_and_execution_s": front,
            "diff_and_root_s": t["diff_and_root_s"], "commit_s": t["commit_s"]}


def spawn(spec: dict) -> dict:
    child = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if child.returncode != 0:
        sys.exit(f"{spec['mode']} run failed:\n{child.stderr}")
    return json.loads(child.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--txs", type=int, default=50_000)
    parser.add_argument("--contention", default="0,0.1,0.5,1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=Path("bench-results"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    levels = []
    started = time.perf_counter()
    for contention in (float(c) for c in args.contention.split(",")):
        txs_path, genesis_path, summary = get_workload_files(args.out_dir / "workloads", args.accounts, args.txs, contention)
        base = {"transactions": str(txs_path), "genesis": str(genesis_path), "setup": summary["setup"], "workers": args.workers}
        runs: dict[str, list[dict]] = {m: [] for m in MODES}
        for _ in range(args.repeats):
            for mode in MODES:
                runs[mode].append(spawn({**base, "mode": mode}))
        med = {m: {k: round(statistics.median(r[k] for r in runs[m]), 3) for k in runs[m][0] if k.endswith("_s")} for m in MODES}
        level = {
            "contention": contention,
            "identical_root": len({r["root"] for rs in runs.values() for r in rs}) == 1,
            "median_s": med,
            "speedup": {
                m: {k: round(med["sequential"][k] / med[m][k], 3) for k in ("total_s", "signatures_and_execution_s")}
                for m in MODES[1:]
            },
        }
        levels.append(level)
        print(f"contention {contention:g}: {level['speedup']}", file=sys.stderr)
    low, full = levels[0], levels[-1]
    result = {
        "benchmark": "parallel_strategies",
        "accounts": args.accounts,
        "mixed_transactions": args.txs,
        "workers": args.workers,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.perf_counter() - started, 1),
        "levels": levels,
        "targets": {
            f"{m}_batch_speedup_at_{low['contention']:g}_met": low["speedup"][m]["total_s"] >= TARGET_LOW_CONTENTION_SPEEDUP
            for m in MODES[1:]
        }
        | {
            f"{m}_batch_ratio_at_{full['contention']:g}_met": full["speedup"][m]["total_s"] >= TARGET_FULL_CONTENTION_RATIO
            for m in MODES[1:]
        }
        | {"identical_roots": all(lv["identical_root"] for lv in levels)},
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "pipeline_bench.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
