"""Parallel sequencer benchmark (issue 4): 1 vs N workers across a contention sweep.

For each contention level (share of transactions on the hot account and market), a seeded signed
workload (one deposit per account, then `--txs` mixed transactions) is generated ONCE and cached
under `<out-dir>/workloads/` (generation is slow). Each repetition then runs, alternately, in a
fresh child process:

- sequential: `Node.submit(batch)` (sequential signature pass and execution, the reference);
- parallel:   `Node.submit(batch, ExecutionOptions(mode="partitioned", executor=ProcessExecutor(N), partitions=N))`.

Both run on a node without a batch bound (`max_batch_txs=None`: execution only, a batch of this
size could not settle). Both commit the deposits first (batch 1, sequentially, untimed) and time the mixed batch (batch 2).
Speedups are ratios of the medians of the two modes measured in the same run. Reported:

- the time split of the coordinator's critical path: signature checks, planning (plan + deposit
  pre-pass), shipping (building the partition inputs), execution (partition 0 runs in the
  coordinator), waiting for the workers, merge, root update, commit; and per partition shipped to
  a worker: moving its input there, rebuilding its state, executing, moving the result back;
- CPU seconds, and a CPU model of the speedup (the critical path's CPU time: what the wall time
  would be if each process had a core to itself) beside the measured wall-time speedups;
- peak memory: the parent's `ru_maxrss`; for each worker `VmHWM` and the private memory
  (`Private_Clean + Private_Dirty` of /proc/<pid>/smaps_rollup), both read in the worker at the
  end of each of its tasks. The pool is forked before the workload is loaded, so what a worker
  inherits (and VmHWM counts) is only the interpreter and the imported modules, shared with the
  parent; its private memory is what it adds. Target: parent growth + workers' private memory
  under 50% of the sequential run's peak.

The machine may be shared: every number is wall time unless it says cpu. Linux gives each
session (autogroup), not each process, a fair share of the cores: with other sessions busy, two
worker processes get little more CPU than one. `available_parallelism` measures that ceiling
before and after the run (2.0 on an idle 2-core machine).

Install the plot dependency with `pip install -e '.[bench]'` (matplotlib); without it the JSON is
still written. Usage:

    python benchmarks/parallel_bench.py [--accounts 20000] [--txs 50000] [--contention 0,0.1,0.5,1]
                                        [--repeats 3] [--workers 2] [--out-dir bench-results] [--quick]

Writes <out-dir>/parallel_bench.json and parallel_bench.png and prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

TARGET_LOW_CONTENTION_SPEEDUP = 1.7
TARGET_FULL_CONTENTION_RATIO = 0.9
TARGET_MEMORY_ADDED_SHARE = 0.5
INVALID_SHARE = 0.01
SEED = 1


# --- workloads, generated once -------------------------------------------------------------------


def get_workload_files(cache: Path, accounts: int, txs: int, contention: float) -> tuple[Path, Path, dict]:
    """(transactions, genesis, summary) for these parameters, generating them on first use."""
    from rollup.fixtures import WorkloadSpec, generate_workload, write_workload

    stem = f"workload-a{accounts}-t{txs}-c{contention:g}-i{INVALID_SHARE:g}-s{SEED}"
    txs_path, genesis_path, summary_path = (cache / f"{stem}{suffix}" for suffix in (".jsonl", ".genesis.json", ".summary.json"))
    if not summary_path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        spec = WorkloadSpec(accounts=accounts, txs=txs, contention=contention, invalid_share=INVALID_SHARE, seed=SEED)
        workload = generate_workload(spec)
        write_workload(workload, txs_path, genesis_path)
        summary = dict(workload.summary, wall_s=round(time.perf_counter() - started, 1))
        summary_path.write_text(json.dumps(summary))  # written last: marks the cache entry complete
        print(f"generated {stem} in {summary['wall_s']} s", file=sys.stderr)
    return txs_path, genesis_path, json.loads(summary_path.read_text())


# --- measuring tasks in the workers --------------------------------------------------------------


def read_memory_mb() -> dict[str, float]:
    """This process's VmHWM and VmRSS (/proc/self/status) and private memory (smaps_rollup)."""
    out: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                out[name] = int(value.split()[0]) / 1024
    private = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                private += int(line.split()[1])
    out["private"] = private / 1024
    return out


def measured_call(submitted: float, fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict]:
    """Runs in a worker: fn's result, and when it started and ended and the memory at its end."""
    started = time.time()
    cpu = time.process_time()
    result = fn(*args, **kwargs)
    cpu = time.process_time() - cpu
    finished = time.time()
    memory = read_memory_mb()
    return result, {
        "task": getattr(fn, "__name__", str(fn)),
        "pid": os.getpid(),
        "submitted": submitted,
        "started": started,
        "finished": finished,
        "cpu_s": cpu,
        "vmhwm_mb": memory["VmHWM"],
        "vmrss_mb": memory["VmRSS"],
        "private_mb": memory["private"],
    }


def probe_worker(delay: float) -> str:
    time.sleep(delay)  # long enough for every worker to take one probe
    return "probe"


class MeasuringExecutor(Executor):
    """Wraps an executor: every task also reports its timing and its worker's memory."""

    def __init__(self, inner: Executor):
        self.inner = inner
        self.workers = inner.workers  # type: ignore[attr-defined]
        self.records: list[dict] = []
        self._lock = threading.Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        outer: Future = Future()
        outer.set_running_or_notify_cancel()
        inner = self.inner.submit(measured_call, time.time(), fn, *args, **kwargs)
        inner.add_done_callback(lambda done: self._unwrap(done, outer))
        return outer

    def _unwrap(self, inner: Future, outer: Future) -> None:
        exc = inner.exception()
        if exc is not None:
            outer.set_exception(exc)
            return
        result, record = inner.result()
        record["resolved"] = time.time()
        with self._lock:
            self.records.append(record)
        outer.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


# --- one run, in a child process -------------------------------------------------------------------


def run_child(spec: dict) -> dict:
    """One timed batch (sequential, or parallel on a fresh pool) in this fresh process."""
    import gc
    import resource

    from rollup.executors import ProcessExecutor
    from rollup.modes import ExecutionOptions
    from rollup.node import Node
    from rollup.txfile import read_transaction_file
    from verifier.wire import Genesis

    measuring = None
    worker_baseline: dict[int, dict] = {}
    if spec["mode"] == "parallel":
        # the pool first: workers fork from a process that holds no workload yet
        measuring = MeasuringExecutor(ProcessExecutor(spec["workers"]))
        for future in [measuring.submit(probe_worker, 0.3) for _ in range(spec["workers"])]:
            future.result()
        worker_baseline = {r["pid"]: r for r in measuring.records}
        measuring.records.clear()
    genesis = Genesis.model_validate_json(Path(spec["genesis"]).read_text())
    t0 = time.perf_counter()
    transactions = read_transaction_file(Path(spec["transactions"]))
    parse_s = time.perf_counter() - t0
    setup, batch = transactions[: spec["setup"]], transactions[spec["setup"] :]
    del transactions
    with tempfile.TemporaryDirectory() as tmp:
        # execution only (no settlement bound): measures one large batch, which could not settle
        node = Node.init(Path(tmp) / "node", genesis, max_batch_txs=None)
        node.submit(setup)
        gc.collect()
        cpu = time.process_time()
        if measuring is None:
            options = ExecutionOptions()
        else:
            options = ExecutionOptions(mode="partitioned", executor=measuring, partitions=spec["workers"])
        result = node.submit(batch, options).batch
        parent_cpu_s = time.process_time() - cpu
        node.close()
    out = {
        "mode": spec["mode"],
        "parse_s": parse_s,
        "transactions": len(batch),
        "accepted": result.n_accepted,
        "touched_leaves": len(result.diff.leaves),
        "root": "0x" + result.new_root.hex(),
        "timings": {k: v for k, v in result.timings.items() if isinstance(v, (int, float))},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "parent_cpu_s": parent_cpu_s,
    }
    if measuring is not None:
        out["tasks"] = measuring.records
        out["worker_baseline"] = {str(pid): r for pid, r in worker_baseline.items()}
        measuring.shutdown()
    return out


def spawn_child(spec: dict) -> dict:
    child = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, env=dict(os.environ)
    )
    if child.returncode != 0:
        sys.exit(f"{spec['mode']} run failed:\n{child.stderr}")
    return json.loads(child.stdout)


# --- summarising ---------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def compute_sequential_split(run: dict) -> dict[str, float]:
    t = run["timings"]
    split = {
        "signatures": t["signatures_s"],
        "execution": t["execution_s"],
        "root_update": t["diff_and_root_s"],
        "commit": t["commit_s"],
    }
    split["other"] = t["total_s"] - sum(split.values())
    return split


def get_shipped_partitions(run: dict) -> list[dict]:
    """Per partition executed in a worker: moving its input there (`ship_in`: pickling, the pipe,
    unpickling, queueing), rebuilding its state (`decode`), executing, encoding its result and
    moving it back (`ship_out`)."""
    tasks = sorted((r for r in run["tasks"] if r["task"] == "execute_partition"), key=lambda r: r["submitted"])
    t = run["timings"]
    # shipped partitions are submitted in increasing order
    numbers = sorted({int(k.split("_")[1]) for k in t if k.startswith("partition_") and k.endswith("_execute_s")})
    return [
        {
            "partition": number,
            "ship_in_s": task["started"] - task["submitted"],
            "decode_s": t.get(f"partition_{number}_decode_s", 0.0),
            "execute_s": t.get(f"partition_{number}_execute_s", 0.0),
            "encode_s": t.get(f"partition_{number}_encode_s", 0.0),
            "ship_out_s": task["resolved"] - task["finished"],
            "worker_cpu_s": task["cpu_s"],
        }
        for number, task in zip(numbers, tasks)
    ]


def compute_parallel_split(run: dict) -> dict[str, float]:
    """The coordinator's critical path: partition 0 executes in the coordinator while the others
    run in workers; `waiting` is the time it then waits for the slowest worker."""
    t = run["timings"]
    split = {
        "signatures": t["signatures_s"],
        "planning": t.get("plan_s", 0.0) + t.get("prepass_s", 0.0),
        "shipping": t.get("extract_s", 0.0),
        "execution": t.get("local_partition_s", 0.0),
        "waiting": t.get("wait_s", 0.0),
        "merge": t.get("merge_s", 0.0),
        "root_update": t["diff_and_root_s"],
        "commit": t["commit_s"],
    }
    split["other"] = t["total_s"] - sum(split.values())
    return split


def compute_critical_path_cpu(run: dict) -> dict[str, float]:
    """CPU seconds along a run's critical path, by phase: what its wall time would be if every
    process had a core to itself. Signature pass (pipelined): the busier of the coordinator
    (digests, packing, unpacking) and the busiest worker, plus the coordinator's share of one
    chunk (packing the first, unpacking the last do not overlap). Execution: the coordinator
    (plan, pre-pass, partition 0, merge) or the busiest shipped partition, whichever is longer.
    The rest (root, commit) is serial."""
    t = run["timings"]
    per_worker: dict[int, float] = {}
    chunks = 0
    for r in run.get("tasks", []):
        if r["task"] == "check_packed_signature_chunk":
            per_worker[r["pid"]] = per_worker.get(r["pid"], 0.0) + r["cpu_s"]
            chunks += 1
    shipped = [r["cpu_s"] for r in run.get("tasks", []) if r["task"] == "execute_partition"]
    own = t["signatures_cpu_s"]
    phases = {
        "signatures": max(own, *per_worker.values()) + own / chunks if chunks else own,
        "execution": max([t["execution_cpu_s"], *shipped]),
        "rest": run["parent_cpu_s"] - t["signatures_cpu_s"] - t["execution_cpu_s"],
    }
    phases["batch"] = sum(phases.values())
    return phases


def measure_available_parallelism(workers: int) -> float:
    """How much faster `workers` processes of this session run a pure-Python loop than one, now.
    About `workers` on an idle machine; near 1 when other sessions keep the cores busy (Linux
    autogroup scheduling gives each session, not each process, a fair share)."""
    from rollup.executors import ProcessExecutor

    n = 3_000_000
    started = time.perf_counter()
    burn(n * workers)
    one = time.perf_counter() - started
    with ProcessExecutor(workers) as pool:
        list(pool.map(burn, [1] * workers))
        started = time.perf_counter()
        list(pool.map(burn, [n] * workers))
        many = time.perf_counter() - started
    return round(one / many, 2)


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def summarise_memory(sequential: list[dict], parallel: list[dict]) -> dict:
    seq_peak = median([r["peak_rss_mb"] for r in sequential])
    parent_peak = median([r["peak_rss_mb"] for r in parallel])
    per_run_workers = []
    for run in parallel:
        workers: dict[int, dict] = {}
        for record in run["tasks"]:
            w = workers.setdefault(record["pid"], {"vmhwm_mb": 0.0, "private_peak_mb": 0.0, "tasks": 0})
            w["vmhwm_mb"] = max(w["vmhwm_mb"], record["vmhwm_mb"])
            w["private_peak_mb"] = max(w["private_peak_mb"], record["private_mb"])
            w["tasks"] += 1
        for pid, w in workers.items():
            base = run["worker_baseline"].get(str(pid))
            w["rss_at_start_mb"] = base["vmrss_mb"] if base else None
            w["private_at_start_mb"] = base["private_mb"] if base else None
        per_run_workers.append(workers)
    workers_private = median([sum(w["private_peak_mb"] for w in ws.values()) for ws in per_run_workers])
    added = max(0.0, parent_peak - seq_peak) + workers_private
    last = per_run_workers[-1]
    return {
        "sequential_peak_mb": round(seq_peak, 1),
        "parallel_parent_peak_mb": round(parent_peak, 1),
        "workers": [{k: round(v, 1) if isinstance(v, float) else v for k, v in w.items()} for w in last.values()],
        "workers_private_total_mb": round(workers_private, 1),
        "added_mb": round(added, 1),
        "added_share_of_sequential_peak": round(added / seq_peak, 3),
        "target_met": added / seq_peak < TARGET_MEMORY_ADDED_SHARE,
    }


def summarise_level(contention: float, workload: dict, sequential: list[dict], parallel: list[dict]) -> dict:
    roots = {r["root"] for r in sequential + parallel}
    seq_split = [compute_sequential_split(r) for r in sequential]
    par_split = [compute_parallel_split(r) for r in parallel]

    def med(runs: list[dict], key: str) -> float:
        return median([r["timings"][key] for r in runs])

    def med_split(splits: list[dict]) -> dict:
        return {k: round(median([s[k] for s in splits]), 4) for k in splits[0]}

    speedups = {
        name: round(med(sequential, key) / med(parallel, key), 3)
        for name, key in (("batch", "total_s"), ("execution", "execution_s"), ("signatures", "signatures_s"))
    }
    t = parallel[0]["timings"]

    def worker_cpu(run: dict, task: str) -> float:
        return sum(r["cpu_s"] for r in run["tasks"] if r["task"] == task)

    seq_cpu = [compute_critical_path_cpu(r) for r in sequential]
    par_cpu = [compute_critical_path_cpu(r) for r in parallel]
    model = {
        "sequential_cpu_s": {k: round(median([c[k] for c in seq_cpu]), 3) for k in seq_cpu[0]},
        "parallel_critical_path_cpu_s": {k: round(median([c[k] for c in par_cpu]), 3) for k in par_cpu[0]},
    }
    model["speedup"] = {
        k: round(model["sequential_cpu_s"][k] / model["parallel_critical_path_cpu_s"][k], 3) for k in ("batch", "signatures", "execution")
    }
    cpu = {
        "sequential_batch": round(median([r["parent_cpu_s"] for r in sequential]), 3),
        "parallel_parent": round(median([r["parent_cpu_s"] for r in parallel]), 3),
        "parallel_workers_signatures": round(median([worker_cpu(r, "check_packed_signature_chunk") for r in parallel]), 3),
        "parallel_workers_execution": round(median([worker_cpu(r, "execute_partition") for r in parallel]), 3),
    }
    # the share of a core each worker got while checking signatures: 1.0 on an idle machine
    cpu["worker_core_share_during_signatures"] = round(
        median(
            [worker_cpu(r, "check_packed_signature_chunk") / (r["timings"]["signatures_s"] * len(r["worker_baseline"])) for r in parallel]
        ),
        2,
    )
    return {
        "contention": contention,
        "transactions": sequential[0]["transactions"],
        "accepted": sequential[0]["accepted"],
        "touched_leaves": sequential[0]["touched_leaves"],
        "identical_root": len(roots) == 1 and all(r["accepted"] == sequential[0]["accepted"] for r in parallel),
        "plan": {k: t.get(k) for k in ("groups", "partitions", "largest_group_share", "parallelism_bound")},
        "speedup": speedups,
        "sequential": {
            "total_s": round(med(sequential, "total_s"), 3),
            "split_s": med_split(seq_split),
            "execution_cpu_s": round(med(sequential, "execution_cpu_s"), 3),
        },
        "parallel": {
            "total_s": round(med(parallel, "total_s"), 3),
            "split_s": med_split(par_split),
            "shipped_partitions": [
                {k: round(v, 4) for k, v in shipped.items()} for shipped in get_shipped_partitions(parallel[-1])
            ],
        },
        "cpu_s": cpu,
        "cpu_model": model,
        "memory": summarise_memory(sequential, parallel),
        "workload_generation_s": workload.get("wall_s"),
    }


def start_speedup_plot(levels: list[dict], width: float) -> tuple[Any, Any, Any, list[int], list[str]] | str:
    """A figure of two panels, speedups (left) and times (right), one group per contention level:
    (figure, left, right, x positions, labels), or why there is no plot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no plot"
    xs = list(range(len(levels)))
    labels = [f"{lv['contention']:.0%}" for lv in levels]
    fig, (left, right) = plt.subplots(1, 2, figsize=(width, 5))
    return fig, left, right, xs, labels


def draw_speedup_targets(axes: Any, xs: list[int], labels: list[str]) -> None:
    """The targets of issue 4 as lines, and the contention levels as ticks."""
    axes.axhline(TARGET_LOW_CONTENTION_SPEEDUP, color="green", linestyle="--", linewidth=1, label="target at low contention")
    axes.axhline(TARGET_FULL_CONTENTION_RATIO, color="red", linestyle="--", linewidth=1, label="floor at 100%")
    axes.axhline(1.0, color="grey", linewidth=0.8)
    axes.set_xticks(xs, labels)


def draw_plot(levels: list[dict], workers: int, available: float, path: Path) -> str | None:
    started = start_speedup_plot(levels, 13)
    if isinstance(started, str):
        return started
    fig, left, right, xs, labels = started
    import matplotlib.pyplot as plt
    width = 0.27
    for offset, name in ((-width, "batch"), (0.0, "execution"), (width, "signatures")):
        left.bar([x + offset for x in xs], [lv["speedup"][name] for lv in levels], width, label=name)
    for offset, name, marker in ((-width, "batch", "o"), (0.0, "execution", "s"), (width, "signatures", "^")):
        left.scatter(
            [x + offset for x in xs], [lv["cpu_model"]["speedup"][name] for lv in levels], color="black", marker=marker,
            zorder=3, s=22, label=f"{name}, CPU model" if name == "batch" else None,
        )
    draw_speedup_targets(left, xs, labels)
    left.set_xlabel("contention (share of transactions on the hot account)")
    left.set_ylabel(f"speedup, {workers} workers vs sequential")
    left.set_title(f"Speedup: bars wall time (available parallelism {available:.2f}), marks CPU model")
    left.legend(fontsize=8)

    parts = ["signatures", "planning", "shipping", "execution", "waiting", "merge", "root_update", "commit", "other"]
    bottoms_seq = [0.0] * len(levels)
    bottoms_par = [0.0] * len(levels)
    colours = plt.get_cmap("tab10").colors
    for colour, part in zip(colours, parts):
        seq = [lv["sequential"]["split_s"].get(part, 0.0) for lv in levels]
        par = [lv["parallel"]["split_s"].get(part, 0.0) for lv in levels]
        right.bar([x - 0.2 for x in xs], seq, 0.38, bottom=bottoms_seq, color=colour, label=part)
        right.bar([x + 0.2 for x in xs], par, 0.38, bottom=bottoms_par, color=colour, hatch="//")
        bottoms_seq = [a + b for a, b in zip(bottoms_seq, seq)]
        bottoms_par = [a + b for a, b in zip(bottoms_par, par)]
    right.set_xticks(xs, [f"{lb}\nseq | {workers}w" for lb in labels])
    right.set_ylabel("seconds (batch of the mixed transactions)")
    right.set_title("Where the time goes (left: sequential, hatched: parallel)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--txs", type=int, default=50_000)
    parser.add_argument("--contention", default="0,0.1,0.5,1", help="comma-separated shares")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=Path("bench-results"))
    parser.add_argument("--generate-only", action="store_true", help="fill the workload cache and stop")
    parser.add_argument("--quick", action="store_true", help="2,000 accounts, 5,000 transactions, 1 repetition")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    if args.quick:
        args.accounts, args.txs, args.repeats = 2_000, 5_000, 1
    levels_in = [float(c) for c in args.contention.split(",")]
    cache = args.out_dir / "workloads"
    files = {c: get_workload_files(cache, args.accounts, args.txs, c) for c in levels_in}
    if args.generate_only:
        return
    load_before = os.getloadavg()
    parallelism_before = measure_available_parallelism(args.workers)
    started = time.perf_counter()
    levels, raw = [], []
    for contention in levels_in:
        txs_path, genesis_path, summary = files[contention]
        base = {"transactions": str(txs_path), "genesis": str(genesis_path), "setup": summary["setup"], "workers": args.workers}
        sequential, parallel = [], []
        available = measure_available_parallelism(args.workers)
        for _ in range(args.repeats):  # alternate, so that load from other users hits both modes alike
            sequential.append(spawn_child({**base, "mode": "sequential"}))
            parallel.append(spawn_child({**base, "mode": "parallel"}))
        raw.append({"contention": contention, "sequential": sequential, "parallel": parallel})
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / "parallel_bench_raw.json").write_text(json.dumps(raw))
        level = summarise_level(contention, summary, sequential, parallel)
        level["available_parallelism_before"] = available
        levels.append(level)
        print(f"contention {contention:g}: speedup {level['speedup']}", file=sys.stderr)
    low, full = levels[0], levels[-1]
    result = {
        "benchmark": "parallel_sequencer",
        "accounts": args.accounts,
        "mixed_transactions": args.txs,
        "workers": args.workers,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "available_parallelism": {
            "before": parallelism_before,
            "after": measure_available_parallelism(args.workers),
            "note": f"speedup of {args.workers} processes of this session over one on a pure-Python loop; "
            "the ceiling for every wall-time speedup below",
        },
        "wall_s": round(time.perf_counter() - started, 1),
        "levels": levels,
        "targets": {
            "low_contention_speedup": TARGET_LOW_CONTENTION_SPEEDUP,
            "full_contention_ratio": TARGET_FULL_CONTENTION_RATIO,
            "memory_added_share": TARGET_MEMORY_ADDED_SHARE,
            f"batch_speedup_at_{low['contention']:g}_met": low["speedup"]["batch"] >= TARGET_LOW_CONTENTION_SPEEDUP,
            f"execution_speedup_at_{low['contention']:g}_met": low["speedup"]["execution"] >= TARGET_LOW_CONTENTION_SPEEDUP,
            f"batch_ratio_at_{full['contention']:g}_met": full["speedup"]["batch"] >= TARGET_FULL_CONTENTION_RATIO,
            f"execution_ratio_at_{full['contention']:g}_met": full["speedup"]["execution"] >= TARGET_FULL_CONTENTION_RATIO,
            "memory_met_at_every_level": all(lv["memory"]["target_met"] for lv in levels),
            "identical_roots_at_every_level": all(lv["identical_root"] for lv in levels),
        },
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    available = min(result["available_parallelism"]["before"], result["available_parallelism"]["after"])
    plot_note = draw_plot(levels, args.workers, available, args.out_dir / "parallel_bench.png")
    if plot_note:
        result["plot"] = plot_note
    (args.out_dir / "parallel_bench.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    # run as the module `parallel_bench`, so that dill pickles the functions sent to the pool by
    # reference, not by value together with the globals of __main__
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    __import__(Path(__file__).stem).main()
