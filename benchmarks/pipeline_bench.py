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
every run gave the same root; the time split of each mode; peak memory: the coordinator's
`ru_maxrss`, and for each pool worker `VmHWM` and its private memory (`Private_Clean +
Private_Dirty` of /proc/<pid>/smaps_rollup), read from the coordinator after the batch. The pool
is forked before the workload is loaded, so a worker's private memory is what it adds. Target:
the coordinator's growth over the sequential peak plus the workers' private memory under 50% of
the sequential peak. Workloads are shared with benchmarks/parallel_bench.py (cached under
<out-dir>/workloads).

Usage: python benchmarks/pipeline_bench.py [--accounts 20000] [--txs 50000] [--contention 0,0.1,0.5,1]
                                           [--repeats 3] [--workers 2] [--out-dir bench-results]
Prints JSON and writes <out-dir>/pipeline_bench.json and pipeline_bench.png (with matplotlib:
pip install -e '.[bench]').
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parallel_bench import (  # noqa: E402
    TARGET_FULL_CONTENTION_RATIO,
    TARGET_LOW_CONTENTION_SPEEDUP,
    TARGET_MEMORY_ADDED_SHARE,
    draw_speedup_targets,
    get_workload_files,
    start_speedup_plot,
)

MODES = ("sequential", "partitioned", "pipelined", "sharded", "sharded_presigned")
# a benchmark mode -> (the node's mode, the shards check signatures); sharded_presigned runs the
# signature pass first on the pool, so its execution step is timed alone
NODE_MODES = {m: (m, True) for m in MODES[:4]} | {"sharded_presigned": ("sharded", False)}
AFTER_SIGNATURES = ("sequential", "partitioned", "sharded_presigned")  # modes whose signature pass is a phase of its own
# the phases each mode reports (`BatchResult.timings`), in the order they run
SPLITS = {
    "sequential": ("signatures_s", "execution_s", "diff_and_root_s", "commit_s"),
    "partitioned": ("signatures_s", "plan_s", "prepass_s", "extract_s", "local_partition_s", "wait_s", "merge_s",
                    "diff_and_root_s", "commit_s"),
    "pipelined": ("signatures_and_execution_s", "waiting_for_leaf_hashes_s", "diff_and_root_s", "commit_s"),
    "sharded": ("prepass_s", "plan_s", "windows_s", "seal_s", "subtrees_s", "merge_s", "diff_and_root_s", "commit_s"),
    "sharded_presigned": ("signatures_s", "prepass_s", "plan_s", "windows_s", "seal_s", "subtrees_s", "merge_s",
                          "diff_and_root_s", "commit_s"),
}


# issue 14: the execution step (signatures excluded) at 2 workers, by contention; the whole batch
TARGET_EXECUTION_STEP = {0.0: 1.7, 0.1: 1.5}
TARGET_SHARDED_BATCH_SPEEDUP = 1.85


def read_process_memory_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak resident) and private memory of a live process, in MB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                out["vmhwm_mb"] = round(int(line.split()[1]) / 1024, 1)
    private = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                private += int(line.split()[1])
    out["private_mb"] = round(private / 1024, 1)
    return out


def read_process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds a live process has used (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_batch_cpu_s(pids: list[int]) -> float:
    """CPU seconds used so far by this process and the given workers."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + sum(read_process_cpu_s(pid) for pid in pids)


def run_child(spec: dict) -> dict:
    import gc

    from rollup.executors import ProcessExecutor
    from rollup.modes import ExecutionOptions
    from rollup.node import Node
    from rollup.txfile import read_transaction_file
    from verifier.wire import Genesis

    executor = None if spec["mode"] == "sequential" else ProcessExecutor(spec["workers"])  # before loading
    genesis = Genesis.model_validate_json(Path(spec["genesis"]).read_text())
    transactions = read_transaction_file(Path(spec["transactions"]))
    setup, batch = transactions[: spec["setup"]], transactions[spec["setup"] :]
    del transactions
    with tempfile.TemporaryDirectory() as tmp:
        # execution only (no settlement bound): measures one large batch, which could not settle
        node = Node.init(Path(tmp) / "node", genesis, max_batch_txs=None)
        mode, shard_signatures = NODE_MODES[spec["mode"]]
        options = ExecutionOptions(mode=mode, executor=executor, shard_signatures=shard_signatures)
        # the sharded modes start their resident shards with the setup batch (once per node)
        node.submit(setup, options if mode == "sharded" else ExecutionOptions())
        gc.collect()
        shards = node.resident.get("shards")
        # every process working on the batch: this one, the executor's workers and the shards
        pids = [] if executor is None else [*executor.pids, *(shards.pids if shards else [])]
        cpu_before = read_batch_cpu_s(pids)
        result = node.submit(batch, options).batch
        batch_cpu_s = read_batch_cpu_s(pids) - cpu_before
        if executor is not None:
            workers = [read_process_memory_mb(pid) for pid in pids]
            executor.shutdown()
        node.close()
    t = result.timings
    front = t.get("signatures_and_execution_s", t.get("signatures_s", 0.0) + t.get("execution_s", 0.0))
    out = {"root": result.new_root.hex(), "accepted": result.n_accepted, "total_s": t["total_s"], "signatures_and_execution_s": front,
           "diff_and_root_s": t["diff_and_root_s"], "commit_s": t["commit_s"],
           # everything but the signature pass (where it is a phase of its own): the execution step
           "after_signatures_s": t["total_s"] - t["signatures_s"] if spec["mode"] in AFTER_SIGNATURES else None,
           "split": {k: t[k] for k in SPLITS[spec["mode"]] if k in t},
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "batch_cpu_s": batch_cpu_s}
    if executor is not None:
        out["workers_memory"] = workers
        out["coordinator_cpu_s"] = t.get("coordinator_cpu_s", t.get("signatures_cpu_s", 0.0) + t.get("execution_cpu_s", 0.0))
    return out


def summarise_cpu(runs: dict[str, list[dict]], cores: int) -> dict:
    """CPU of every process on the batch (medians) against the sequential node's: on `cores` cores
    (the machine's, at most the workers and the coordinator) a mode cannot beat
    cores x sequential CPU / its CPU (its bound), however well it overlaps its work."""
    cpu = {m: statistics.median(r["batch_cpu_s"] for r in rs) for m, rs in runs.items()}
    return {m: {"batch_cpu_s": round(c, 3), "vs_sequential": round(c / cpu["sequential"], 3),
                "bound_speedup": round(cores * cpu["sequential"] / c, 3)} for m, c in cpu.items()}


def summarise_memory(runs: dict[str, list[dict]]) -> dict:
    """Peak memory per mode (medians over the repetitions) against the sequential peak."""
    seq_peak = statistics.median(r["peak_rss_mb"] for r in runs["sequential"])
    out: dict = {"sequential_peak_mb": round(seq_peak, 1)}
    for mode in MODES[1:]:
        parent = statistics.median(r["peak_rss_mb"] for r in runs[mode])
        private = statistics.median(sum(w["private_mb"] for w in r["workers_memory"]) for r in runs[mode])
        added = max(0.0, parent - seq_peak) + private
        out[mode] = {
            "coordinator_peak_mb": round(parent, 1),
            "workers": runs[mode][-1]["workers_memory"],
            "workers_private_total_mb": round(private, 1),
            "added_share_of_sequential_peak": round(added / seq_peak, 3),
            "target_met": added / seq_peak < TARGET_MEMORY_ADDED_SHARE,
        }
    return out


def draw_plot(levels: list[dict], workers: int, path: Path) -> str | None:
    """Speedups per mode and contention (left), and where each mode's time goes (right)."""
    started = start_speedup_plot(levels, 15)
    if isinstance(started, str):
        return started
    fig, left, right, xs, labels = started
    import matplotlib.pyplot as plt

    for k, mode in enumerate(MODES[1:]):
        left.bar([x - 0.4 + 0.8 / len(MODES[1:]) * (k + 0.5) for x in xs], [lv["speedup"][mode]["total_s"] for lv in levels], 0.19, label=mode)
    draw_speedup_targets(left, xs, labels)
    left.set_xlabel("contention (share of transactions on the hot account and market)")
    left.set_ylabel(f"whole-batch speedup, {workers} workers vs sequential")
    left.legend(fontsize=8, loc="lower right")
    phases = sorted({k for lv in levels for m in MODES for k in lv["split_s"][m]}, key=lambda k: min(
        SPLITS[m].index(k) for m in MODES if k in SPLITS[m]))
    colours = dict(zip(phases, plt.get_cmap("tab20").colors))
    width = 0.17
    for offset, mode in zip((-2 * width, -width, 0.0, width, 2 * width), MODES):
        bottoms = [0.0] * len(levels)
        for phase in SPLITS[mode]:
            heights = [lv["split_s"][mode].get(phase, 0.0) for lv in levels]
            right.bar([x + offset for x in xs], heights, width * 0.95, bottom=bottoms, color=colours[phase],
                      label=phase if mode == "sequential" or phase not in SPLITS["sequential"] else None)
            bottoms = [a + b for a, b in zip(bottoms, heights)]
    right.set_xticks(xs, [f"{lb}\nseq|part|pipe|shard|shard-ps" for lb in labels])
    right.set_ylabel("seconds (median, the mixed batch)")
    right.set_title("Where the time goes")
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return None


def spawn(spec: dict) -> dict:
    child = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if child.returncode != 0:
        sys.exit(f"{spec['mode']} run failed:\n{child.stderr}")
    return json.loads(child.stdout)


def main() -> None:
    global MODES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--txs", type=int, default=50_000)
    parser.add_argument("--contention", default="0,0.1,0.5,1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset (sequential always runs: the reference)")
    parser.add_argument("--out-dir", type=Path, default=Path("bench-results"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    MODES = ("sequential", *(m for m in args.modes.split(",") if m != "sequential"))
    # modes we measure
    unknown = set(MODES) - set(NODE_MODES)
    if unknown:
        sys.exit(f"unknown modes {sorted(unknown)}: choose from {', '.join(NODE_MODES)}")
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
        med = {m: {k: round(statistics.median(r[k] for r in runs[m]), 3) for k in runs[m][0] if k.endswith("_s") and runs[m][0][k] is not None}
               for m in MODES}
        level = {
            "contention": contention,
            "identical_root": len({r["root"] for rs in runs.values() for r in rs}) == 1,
            "median_s": med,
            "split_s": {m: {k: round(statistics.median(r["split"][k] for r in runs[m]), 3) for k in runs[m][0]["split"]} for m in MODES},
            "coordinator_cpu_s": {m: round(statistics.median(r["coordinator_cpu_s"] for r in runs[m]), 3) for m in MODES[1:]},
            "memory": summarise_memory(runs),
            "cpu": summarise_cpu(runs, min(os.cpu_count() or 1, args.workers + 1)),
            "speedup": {
                m: {k: round(med["sequential"][k] / med[m][k], 3) for k in ("total_s", "signatures_and_execution_s", "after_signatures_s")
                    if k in med[m]}
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
        | {
            f"{m}_execution_step_speedup_at_{lv['contention']:g}_met": lv["speedup"][m]["after_signatures_s"] >= target
            for m in ("partitioned", "sharded_presigned")
            if m in MODES
            for lv in levels
            for target in [TARGET_EXECUTION_STEP.get(lv["contention"])]
            if target is not None
        }
        | {
            f"sharded_batch_speedup_at_{low['contention']:g}_met": low["speedup"]["sharded"]["total_s"] >= TARGET_SHARDED_BATCH_SPEEDUP
            for _ in [0] if "sharded" in MODES
        }
        | {"identical_roots": all(lv["identical_root"] for lv in levels)}
        | {f"{m}_memory_met": all(lv["memory"][m]["target_met"] for lv in levels) for m in MODES[1:]},
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    problem = draw_plot(levels, args.workers, args.out_dir / "pipeline_bench.png")
    result["plot"] = problem or str(args.out_dir / "pipeline_bench.png")
    (args.out_dir / "pipeline_bench.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
