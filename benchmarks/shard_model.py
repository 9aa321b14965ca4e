"""Scaling model of sharded execution (rollup/sharded.py): measures per-shard work, the coordinator's
work and traffic at a few shard counts, fits a model of batch time T(n, cores) and predicts 8, 32
and 128 workers on the same workload; the Dask LocalCluster runs at 1-4 workers are its check.

Measured, per workload (default 10k accounts, 20k mixed transactions, contention 0 and 0.1):
- the sequential node (`Node.submit`, the reference: signatures, execution, diff and root);
- `ShardSet` over worker processes at n = 1, 2 and over a Dask LocalCluster (processes, one thread
  per worker) at 1-4 workers. Per window: its wall time (the `progress` callback's timestamps),
  the coordinator's CPU, each shard's CPU (`ShardedBatch.windows`), and from the plan the shard
  actually ran (`ShardSet._iter_plan`, captured) each shard's estimated load (the planner's cost
  table, the shard's rows and the broadcast oracle updates) and its account moves.

Every run also samples other users' runnable threads (`BackgroundSampler`): on a shared machine
they, not the core count, decide the cores a run gets. Shard CPU after the last window (the
seal and subtrees, which the shards report in wall time only) is read from /proc.

The model (docs/sharding-model.md): `predict_batch_time`. Its parameters are fitted on the
process runs (shard CPU, seal, coordinator), on the one-shard runs (how much the sampled load
competes) and on the Dask runs at 1 and 2 workers (the Dask transport); the Dask runs at 3 and 4
workers are out of sample. The plan at 8, 32, 128 shards is
computed by the same planner (no workers needed: planning needs only the transactions and the
holder map), so moves and per-shard loads at those counts are the planner's, not a guess.

    .venv/bin/python benchmarks/shard_model.py                 # measure, fit, predict (~6 min)
    .venv/bin/python benchmarks/shard_model.py --refit docs/bench/shard_model.json --tables  # fit only
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parallel_bench import get_workload_files  # noqa: E402

from rollup.node import Node  # noqa: E402
from rollup.signatures import check_signatures  # noqa: E402
from rollup.parallel import TX_CLASSES, compute_deposit_counters  # noqa: E402
from rollup.sharded import COORDINATOR_CHECKED, SHARD_COSTS, ShardSet, choose_subtree_level  # noqa: E402
from rollup.state_codec import encode_state_leaf  # noqa: E402
from rollup.txfile import read_transaction_file  # noqa: E402
from verifier.state_tree import get_tree_shape  # noqa: E402
from verifier.wire import Genesis  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = Path("/tmp/prof/workloads")
DEFAULT_OUT = ROOT / "docs" / "bench" / "shard_model.json"
PREDICTED_WORKERS = (8, 32, 128)
SATURATION_SCAN = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # doublings
SATURATION_GAIN = 0.1  # a doubling of the shards that saves less than this share of the time: saturated
MACHINE_CORES = os.cpu_count() or 1
REGISTER_KEY = "register_key"
SAMPLE_S = 0.1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the cores this run gets --------------------------------------------------------------------------


def get_descendants(root: int) -> list[int]:
    """`root` and every process under it (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue  # ended meanwhile
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def count_running_tasks(pids: list[int]) -> int:
    running = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/stat") as f:
                    running += f.read().rpartition(")")[2].split()[0] == "R"
            except OSError:
                continue
    return running


def get_process_cpu(pid: int) -> float:
    """A process's CPU seconds so far (user + system, every thread)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class BackgroundSampler:
    """Other users' runnable tasks while a run lasts, sampled every `interval` seconds: the
    machine's running count (/proc/loadavg) minus this run's own running threads (this process
    and its descendants). On a shared machine this, not the core count, sets the cores a run gets."""

    def __init__(self, interval: float = SAMPLE_S):
        self.interval = interval
        self.samples: list[int] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="background sampler")

    def __enter__(self) -> "BackgroundSampler":
        self.mine = get_descendants(os.getpid())
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
            self.samples.append(max(0, running - count_running_tasks(self.mine)))

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else 0.0


# --- workload and node --------------------------------------------------------------------------------


def load_workload(cache: Path, accounts: int, txs: int, contention: float) -> dict:
    txs_path, genesis_path, summary = get_workload_files(cache, accounts, txs, contention)
    transactions = read_transaction_file(txs_path)
    return {
        "contention": contention,
        "genesis": Genesis.model_validate_json(genesis_path.read_text()),
        "setup": transactions[: summary["setup"]],
        "batch": transactions[summary["setup"] :],
        "summary": summary,
    }


def build_node(home: Path, workload: dict) -> Node:
    """A node holding the workload's accounts (the setup part applied), ready for the batch."""
    node = Node.init(home, workload["genesis"], max_batch_txs=None)
    node.submit(workload["setup"])
    gc.collect()
    node.state.touched.clear()
    return node


def apply_root(node: Node, out: Any) -> None:
    """The node's side of a sharded batch's root (as the node integration will do it): the changed
    leaves, then the levels above the shards' subtrees."""
    accounts: dict[int, int] = {}
    others: dict[int, bytes] = {}
    for key in sorted(node.state.touched):
        before = node.leaves.get(key, b"")
        if key in out.accounts:
            after, value = out.accounts[key]
        else:
            after, value = encode_state_leaf(node.state, key, node.genesis_hash), None
        if after != before:
            if value is not None:
                accounts[key] = value
            else:
                others[key] = after
    node.tree.update_from_subtrees(out.subtree_level, out.subtrees, accounts, others)


# --- measuring --------------------------------------------------------------------------------------------


def measure_sequential(workload: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        node = build_node(Path(tmp) / "node", workload)
        with BackgroundSampler() as background:
            started, cpu = time.perf_counter(), time.process_time()
            submission = node.submit(workload["batch"], max_batch_txs=None)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        timings = submission.batches[0].timings
        return {
            "root": node.tree.root_bytes.hex(),
            "background": background.mean,
            "wall_s": wall,
            # one process does it all: its CPU is the batch's work, robust against other users
            "batch_cpu_s": cpu - timings["commit_s"],
            **{k: timings[k] for k in ("signatures_s", "signatures_cpu_s", "execution_s", "execution_cpu_s", "diff_and_root_s", "commit_s")},
            # what sharding replaces: everything but the commit (the serial tail in both)
            "batch_s": timings["signatures_s"] + timings["execution_s"] + timings["diff_and_root_s"],
        }


def get_row_cost(row: tuple) -> float:
    """The planner's estimate (µs) of one row a shard executes: its class's execution cost plus
    the signatures the shard checks (`rollup.sharded.SHARD_COSTS`)."""
    return SHARD_COSTS[TX_CLASSES[row[1][0]]]


def describe_plan(windows: list, n: int) -> list[dict]:
    """Per window: transactions, moves, broadcast oracle updates, and per shard its estimated load
    and the accounts it imports before the window and exports after it."""
    out = []
    for w, plan in enumerate(windows):
        imports = [0] * n
        exports = [0] * n
        for _, _, to in plan.moves:
            imports[to] += 1
        if w + 1 < len(windows):
            for _, source, _ in windows[w + 1].moves:
                exports[source] += 1
        out.append({
            "transactions": sum(len(r) for r in plan.rows),
            "moves": len(plan.moves),
            "broadcast": len(plan.broadcast),
            # key registrations (a third of the batch, cheaper than the planner's estimate) apart
            "shard_registrations": [sum(1 for row in rows if row[1][0] == REGISTER_KEY) for rows in plan.rows],
            "shard_others_estimate_us": [round(sum(get_row_cost(row) for row in rows if row[1][0] != REGISTER_KEY)) for rows in plan.rows],
            "shard_moves": [imports[s] + exports[s] for s in range(n)],
        })
    return out


def measure_sharded(workload: dict, n: int, client: Any = None) -> dict:
    """One batch on `n` shards (worker processes, or Dask actors with `client`), timed per window."""
    domain = workload["genesis"].signing_domain
    with tempfile.TemporaryDirectory() as tmp:
        node = build_node(Path(tmp) / "node", workload)
        shards = ShardSet(node.state, node.tree, n, dask_client=client)
        try:
            planned: list = []
            marks: list[tuple[float, float]] = []
            plan = shards._iter_plan

            def capture_plan(*args: Any) -> Any:
                windows = list(plan(*args))  # planned whole here (the shards check signatures: so does the engine)
                planned.append(windows)
                marks.append((time.perf_counter(), time.process_time()))  # windows start here
                return iter(windows)

            shards._iter_plan = capture_plan  # type: ignore[method-assign]
            pids = get_shard_pids(shards, client)
            shard_cpu: list[list[float]] = []

            def progress(_: int) -> None:
                marks.append((time.perf_counter(), time.process_time()))
                shard_cpu[:] = [[get_process_cpu(pid) for pid in pids]]

            with BackgroundSampler() as background:
                started = time.perf_counter()
                out = shards.execute(node.state, workload["batch"], lambda xs: check_signatures(xs, domain), progress=progress)
                executed = time.perf_counter()
                # the seal and the subtrees in CPU (the shards report their wall time): the shard
                # processes' CPU since the last window
                tail_cpu = [get_process_cpu(pid) - before for pid, before in zip(pids, shard_cpu[0])]
                apply_root(node, out)
                ended = time.perf_counter()
            final_holder = dict(shards.holder)
        finally:
            shards.close()
    described = describe_plan(planned[0], n)
    windows = []
    for w, (detail, plan) in enumerate(zip(out.windows, described)):
        windows.append({
            **plan,
            # window 0's interval also holds the round trip that moves window 0's accounts
            "wall_s": marks[w + 1][0] - marks[w][0],
            "coordinator_cpu_s": marks[w + 1][1] - marks[w][1],
            "shard_cpu_s": [x["cpu_s"] for x in detail["shards"]],
            "shard_signatures_s": [x["signatures_s"] for x in detail["shards"]],
            "shard_execution_s": [x["execution_s"] for x in detail["shards"]],
        })
    timings = out.timings
    return {
        "n": n,
        "transport": "dask" if client is not None else "process",
        "root": node.tree.root_bytes.hex(),
        "background": background.mean,
        "execute_s": executed - started,
        "root_s": ended - executed,
        "batch_s": ended - started,
        **{k: timings[k] for k in ("prepass_s", "plan_s", "windows_s", "seal_s", "subtrees_s", "merge_s", "windows", "moves",
                                    "bytes_to_shards", "bytes_from_shards", "windows_critical_cpu_s")},
        "shard_seal_s": [timings[f"shard_{s}_seal_s"] for s in range(n)],
        # a shard's CPU in its requests before the seal outside `run_window`: the frames' pickles
        "shard_frames_cpu_s": [timings[f"shard_{s}_cpu_s"] - timings[f"shard_{s}_windows_cpu_s"] for s in range(n)],
        "shard_sealed": [sum(1 for a in out.accounts if final_holder.get(a) == s) for s in range(n)],
        "sealed_accounts": sorted(out.accounts),
        "shard_seal_subtrees_cpu_s": tail_cpu,
        "shard_peak_rss_mb": [timings[f"shard_{s}_peak_rss_mb"] for s in range(n)],
        "windows_detail": windows,
    }


def get_shard_pids(shards: ShardSet, client: Any) -> list[int]:
    """Each shard's process: a worker process, or the Dask worker holding its actor (shard s on
    the s-th worker by address, as `ShardSet` places them)."""
    if client is None:
        return [pid for pid in shards.pids if pid is not None]
    by_worker = client.run(os.getpid)
    workers = sorted(by_worker)
    return [by_worker[workers[s % len(workers)]] for s in range(shards.n_shards)]


def measure_dask(workload: dict, workers: int) -> dict:
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit=0, silence_logs=40) as cluster, Client(cluster) as client:
        return measure_sharded(workload, workers, client)


def plan_at(workload: dict, counts: tuple[int, ...], sealed_accounts: list[int]) -> dict[int, dict]:
    """The plan the coordinator would make with n shards, for each n, the time it takes and who
    holds each sealed account at the end, without starting any shard: `ShardSet._iter_plan` reads
    only `n_shards`, the holder map (accounts to their subtrees' owners at the start) and the
    deposit pre-pass, and leaves the final holders in the map."""
    batch = workload["batch"]
    domain = workload["genesis"].signing_domain
    with tempfile.TemporaryDirectory() as tmp:
        node = build_node(Path(tmp) / "node", workload)
        state = node.state
        early = [i for i, tx in enumerate(batch) if type(tx) in COORDINATOR_CHECKED]
        early_checks = dict(zip(early, check_signatures([batch[i] for i in early], domain)))
        counters, expected, _ = compute_deposit_counters(state, batch, early_checks)
        shape = get_tree_shape(state.genesis)
        out = {}
        for n in counts:
            replica = ShardSet.__new__(ShardSet)
            replica.n_shards = n
            replica.arity = shape.arity
            replica.level = choose_subtree_level(len(state.accounts), n, shape)
            replica.holder = {a: replica.owner(a) for a in state.accounts}
            started = time.perf_counter()
            windows = list(replica._iter_plan(batch, early_checks, counters, expected, None))
            plan_s = time.perf_counter() - started
            out[n] = {
                "plan_s": plan_s,
                "subtree_level": replica.level,
                "moves": sum(len(w.moves) for w in windows),
                "windows": describe_plan(windows, n),
                "sealed_per_shard": get_sealed_per_shard(sealed_accounts, replica.holder, n),
            }
    return out


# --- the model --------------------------------------------------------------------------------------------


def compute_expected_max(n: int) -> float:
    """E[max of n independent standard normal variables] (0 for one), by numerical integration of
    x * n * pdf(x) * cdf(x) ** (n - 1): how far the slowest of n shards lands above the mean when
    their loads scatter independently."""
    if n <= 1:
        return 0.0
    xs = np.linspace(-12.0, 12.0, 24_001)
    pdf = np.exp(-xs * xs / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.array([math.erf(x / math.sqrt(2)) for x in xs]))
    return float(np.trapezoid(xs * n * pdf * cdf ** (n - 1), xs))


def compute_shared_cores(busy: int, cores: float, background: float) -> float:
    """The cores `busy` runnable processes get on `cores` shared with `background` runnable
    processes of other users (Linux's fair scheduler shares a core's time per runnable thread)."""
    if busy <= 0:
        return 0.0
    return min(float(busy), cores * busy / (busy + background)) if busy + background > cores else float(busy)


def predict_shard_cpu(params: dict, registrations: float, others_us: float, broadcast: float, moves: float) -> float:
    """One shard's CPU in one window: key registrations, the other rows (the planner's estimate),
    the broadcast oracle updates it replays, the accounts it imports and exports, a fixed part."""
    w = params["shard_window"]
    return (w["registration_s"] * registrations + w["per_estimated_s"] * others_us + w["broadcast_s"] * broadcast
            + w["move_s"] * moves + w["fixed_s"])


def predict_batch_time(params: dict, windows: list[dict], sealed: list[int], n: int, cores: float,
                       transport: str, plan_s: float, background: float = 0.0) -> dict:
    """Predicted wall time of one sharded batch on `n` shards given `cores` (`background`: other
    users' runnable threads, 0 on a machine of one's own), with its parts:

        T = [prepass + plan(n) + sum over windows of coordinator(w, n) + tail] / c(1)
            + sum over windows of slowest shard(w, n, cores)
            + seal(n, cores) + (windows + 3) * latency

    - coordinator(w, n) = k_tx * transactions(w) + k_shard * n: its CPU per window (payloads,
      pickles, replies), and k_shard * n for each of the 3 round trips outside the windows (the
      moves before window 0, the seal, the subtrees);
    - slowest shard(w, n, c) = max((max_s cpu(w, s) + sqrt(kappa * mean_s cpu(w, s)) * E[max of
      n normals]) / c(1), sum_s cpu(w, s) / c(n)): per-shard CPU from the plan (rows, broadcast,
      moves) plus the scatter the fit leaves (variance proportional to a shard's load), or, when
      the shards outnumber the cores they get, their total CPU shared;
    - c(k) = the cores k busy processes get: min(k, cores), less what other users take;
    - seal(n, c) = the same for the seal and subtrees: CPU per sealed account times the sealed
      accounts each shard holds at the end (the plan's final holders);
    - latency = a round trip's wall time beyond the coordinator's and the shards' CPU, per
      transport; the tail = the coordinator's subtrees, merge and root (serial)."""
    t = params["transports"][transport]
    one = compute_shared_cores(1, cores, background)
    c = compute_shared_cores(n, cores, background)
    g = compute_expected_max(n)
    kappa = params["shard_window"]["kappa_s"]
    per_shard = t["coordinator_per_shard_s"] * n
    coordinator = 3 * per_shard
    critical = critical_cpu = 0.0
    for window in windows:
        cpu = [predict_shard_cpu(params, window["shard_registrations"][s], window["shard_others_estimate_us"][s],
                                 window["broadcast"], window["shard_moves"][s]) for s in range(n)]
        mean = sum(cpu) / n
        slowest = max(cpu) + math.sqrt(kappa * max(mean, 0.0)) * g  # a poor fit may predict below zero
        critical_cpu += slowest
        critical += max(slowest / one, sum(cpu) / c)
        coordinator += t["coordinator_per_transaction_s"] * window["transactions"] + per_shard
    seal_cpu = [params["seal_per_account_s"] * k for k in sealed]
    parts = {
        "prepass_s": params["prepass_s"] / one,
        "plan_s": plan_s / one,
        "coordinator_windows_s": coordinator / one,
        "shards_critical_s": critical,
        "round_trips_s": (len(windows) + 3) * t["latency_s"],
        "seal_s": max(max(seal_cpu) / one, sum(seal_cpu) / c),
        "tail_s": params["tail_s"] / one,
    }
    return {"total_s": sum(parts.values()), **parts, "shards_critical_cpu_s": critical_cpu}


def get_one_core(run: dict, weight: float) -> float:
    """The share of a core one busy process of the run got."""
    return compute_shared_cores(1, MACHINE_CORES, weight * run["background"])


def fit_background_weight(runs: list[dict]) -> float:
    """How much of a competitor each sampled runnable thread of other users is (their threads are
    often short-lived, niced or waiting): from the one-shard runs, where one process of ours is
    busy at a time (the coordinator or the shard), the share of a core it got (its CPU over the
    windows' wall time) against the fair share of the sampled load."""
    weights = []
    for run in runs:
        if run["n"] != 1 or run["background"] <= 0:
            continue
        windows = run["windows_detail"]
        share = sum(w["coordinator_cpu_s"] + w["shard_cpu_s"][0] for w in windows) / sum(w["wall_s"] for w in windows)
        competitors = max(0.0, MACHINE_CORES / min(share, 1.0) - 1)
        weights.append(competitors / run["background"])
    return float(np.mean(weights)) if weights else 1.0


def fit_least_squares(rows: list[list[float]], ys: list[float]) -> list[float]:
    coefficients, *_ = np.linalg.lstsq(np.array(rows, dtype=float), np.array(ys, dtype=float), rcond=None)
    return [float(x) for x in coefficients]


def get_shard_features(window: dict, s: int) -> list[float]:
    return [window["shard_registrations"][s], window["shard_others_estimate_us"][s], window["broadcast"], window["shard_moves"][s], 1.0]


def fit_model(runs: list[dict]) -> dict:
    """The model's parameters from the measured runs (each tagged with its workload): shard CPU and
    seal on the process runs, the weight of other users' load on the one-shard runs, the
    transports' coordinator and latency on the process runs and on the Dask runs at 1 and 2
    workers (those at 3 and 4 are the check)."""
    process = [r for r in runs if r["transport"] == "process"]
    # per shard and window: CPU against its rows, broadcast and moves
    rows, ys = [], []
    for run in process:
        for window in run["windows_detail"]:
            for s in range(run["n"]):
                rows.append(get_shard_features(window, s))
                ys.append(window["shard_cpu_s"][s])
    a_reg, a_est, a_bc, a_move, fixed = fit_least_squares(rows, ys)
    shard_window = {"registration_s": a_reg, "per_estimated_s": a_est, "broadcast_s": a_bc, "move_s": a_move, "fixed_s": fixed}
    predicted = [sum(c * x for c, x in zip((a_reg, a_est, a_bc, a_move, fixed), row)) for row in rows]
    residual = [y - p for y, p in zip(ys, predicted)]
    # the scatter the fit leaves, as a variance proportional to the predicted load
    shard_window["kappa_s"] = sum(r * r for r in residual) / sum(max(p, 0.0) for p in predicted)
    shard_window["r2"] = 1 - sum(r * r for r in residual) / sum((y - sum(ys) / len(ys)) ** 2 for y in ys)
    shard_window["points"] = len(ys)
    params: dict[str, Any] = {"shard_window": shard_window}
    weight = params["background_weight"] = fit_background_weight(runs)
    params["seal_per_account_s"] = (sum(sum(r["shard_seal_subtrees_cpu_s"]) for r in process)
                                    / sum(sum(r["shard_sealed"]) for r in process))
    # the coordinator's serial parts are wall times: back to the CPU of one core of one's own
    params["prepass_s"] = float(np.mean([r["prepass_s"] * get_one_core(r, weight) for r in process]))
    params["tail_s"] = float(np.mean([(r["subtrees_s"] + r["merge_s"] + r["root_s"]) * get_one_core(r, weight) for r in process]))
    params["transports"] = {}
    for transport, fitted_on in (("process", process), ("dask", [r for r in runs if r["transport"] == "dask" and r["n"] <= 2])):
        if not fitted_on:
            continue
        rows, ys = [], []
        for run in fitted_on:
            for window in run["windows_detail"]:
                rows.append([window["transactions"], run["n"]])
                ys.append(window["coordinator_cpu_s"])
        k_tx, k_shard = fit_least_squares(rows, ys)
        # the wall time a window takes beyond the coordinator's CPU and the slowest shard's, with
        # the cores the run got (other users' load sampled through it): the median, as the
        # scheduler's delays on a shared machine put a long tail on it
        left = []
        for run in fitted_on:
            one = get_one_core(run, weight)
            c = compute_shared_cores(run["n"], MACHINE_CORES, weight * run["background"])
            for window in run["windows_detail"]:
                busy = max(max(window["shard_cpu_s"]) / one, sum(window["shard_cpu_s"]) / c)
                left.append(window["wall_s"] - window["coordinator_cpu_s"] / one - busy)
        params["transports"][transport] = {
            "coordinator_per_transaction_s": k_tx, "coordinator_per_shard_s": k_shard,
            "latency_s": float(np.median(left)),
            "fitted_on": sorted({f"{r['transport']} n={r['n']} c={r['contention']:g}" for r in fitted_on}),
        }
    return params


def get_sealed_per_shard(sealed_accounts: list[int], holder: dict[int, int], n: int) -> list[int]:
    counts = [0] * n
    for a in sealed_accounts:
        counts[holder.get(a, 0)] += 1
    return counts


# --- predictions and the check ----------------------------------------------------------------------------


def predict_run(params: dict, plan: dict, n: int, cores: float, transport: str, background: float = 0.0) -> dict:
    return predict_batch_time(params, plan["windows"], plan["sealed_per_shard"], n, cores, transport, plan["plan_s"], background)


def check_runs(params: dict, workload: dict) -> list[dict]:
    """Predicted against measured for every sharded run of a workload, with the cores the run got
    (other users' load sampled through it) and with the machine's cores idle."""
    out = []
    for run in workload["runs"]:
        plan = workload["plans"][str(run["n"])]
        background = params["background_weight"] * run["background"]
        shared = predict_run(params, plan, run["n"], MACHINE_CORES, run["transport"], background)
        nominal = predict_run(params, plan, run["n"], MACHINE_CORES, run["transport"])
        fitted = any(f"{run['transport']} n={run['n']} c={workload['contention']:g}" in t["fitted_on"] for t in params["transports"].values())
        out.append({
            "transport": run["transport"], "n": run["n"], "in_fit": fitted,
            "background": round(run["background"], 2),
            "measured_s": round(run["batch_s"], 3),
            "predicted_s": round(shared["total_s"], 3),
            "error": round(shared["total_s"] / run["batch_s"] - 1, 3),
            "predicted_nominal_cores_s": round(nominal["total_s"], 3),
            "error_nominal_cores": round(nominal["total_s"] / run["batch_s"] - 1, 3),
            "measured_windows_critical_cpu_s": round(run["windows_critical_cpu_s"], 3),
            "predicted_windows_critical_cpu_s": round(shared["shards_critical_cpu_s"], 3),
            "measured_moves": run["moves"], "planned_moves": plan["moves"],
        })
    return out


def predict_scaling(params: dict, workload: dict, counts: tuple[int, ...]) -> dict:
    """Per transport and shard count (one core per worker, an idle machine): the predicted batch
    time and its parts, the speedup over one shard and over the sequential node's CPU."""
    sequential = workload["sequential"]["batch_cpu_s"]
    out: dict[str, list] = {}
    for transport in params["transports"]:
        one = predict_run(params, workload["plans"]["1"], 1, 1, transport)["total_s"]
        rows = []
        for n in counts:
            predicted = predict_run(params, workload["plans"][str(n)], n, n, transport)
            predicted.pop("shards_critical_cpu_s")
            rows.append({
                "n": n,
                **{k: round(v, 3) for k, v in predicted.items()},
                "speedup_vs_one_shard": round(one / predicted["total_s"], 2),
                "speedup_vs_sequential_cpu": round(sequential / predicted["total_s"], 2),
                "transactions_per_shard_window": round(workload["batch_transactions"] / len(workload["plans"][str(n)]["windows"]) / n, 1),
                "moves": workload["plans"][str(n)]["moves"],
            })
        out[transport] = rows
    return out


def measure_workload(args: argparse.Namespace, contention: float) -> dict:
    workload = load_workload(args.cache, args.accounts, args.txs, contention)
    print(f"contention {contention:g}: sequential", file=sys.stderr, flush=True)
    sequential = measure_sequential(workload)
    runs = []
    for n in args.process_shards:
        print(f"contention {contention:g}: {n} shard processes", file=sys.stderr, flush=True)
        runs.append(measure_sharded(workload, n))
    for n in args.dask_workers:
        print(f"contention {contention:g}: Dask LocalCluster, {n} workers", file=sys.stderr, flush=True)
        runs.append(measure_dask(workload, n))
    sealed = runs[0].pop("sealed_accounts")
    for run in runs[1:]:
        # the same accounts change whatever the shard count
        if run.pop("sealed_accounts") != sealed:
            raise RuntimeError(f"{run['transport']} n={run['n']} sealed other accounts than {runs[0]['transport']} n={runs[0]['n']}")
    counts = sorted({*args.process_shards, *args.dask_workers, 1, *PREDICTED_WORKERS, *SATURATION_SCAN})
    print(f"contention {contention:g}: plans at {counts} shards", file=sys.stderr, flush=True)
    plans = plan_at(workload, tuple(counts), sealed)
    for run in runs:
        run["contention"] = contention
        run["roots_match"] = run["root"] == sequential["root"]
    return {
        "contention": contention,
        "accounts": args.accounts,
        "mix_transactions": args.txs,
        "batch_transactions": len(workload["batch"]),
        "sealed_accounts": len(sealed),
        "sequential": sequential,
        "runs": runs,
        "plans": {str(n): p for n, p in plans.items()},
    }


def find_saturation(rows: list[dict]) -> dict:
    """Where adding shards stops paying: the best shard count, and the first count whose doubling
    gains less than a tenth of the time."""
    best = max(rows, key=lambda r: r["speedup_vs_one_shard"])
    knee = next((a["n"] for a, b in zip(rows, rows[1:]) if b["total_s"] > a["total_s"] * (1 - SATURATION_GAIN)), rows[-1]["n"])
    return {"best_n": best["n"], "best_speedup_vs_one_shard": best["speedup_vs_one_shard"], "doubling_gains_under_10pct_from_n": knee}


def summarise(measured: dict) -> dict:
    params = fit_model([run for w in measured["workloads"] for run in w["runs"]])
    out: dict[str, Any] = {"params": params, "workloads": []}
    for workload in measured["workloads"]:
        scan = predict_scaling(params, workload, SATURATION_SCAN)
        out["workloads"].append({
            "contention": workload["contention"],
            "batch_transactions": workload["batch_transactions"],
            "windows": len(workload["plans"]["1"]["windows"]),
            "sequential": {k: round(v, 3) if isinstance(v, float) else v for k, v in workload["sequential"].items() if k != "root"},
            "check": check_runs(params, workload),
            "predictions": {t: [r for r in rows if r["n"] in PREDICTED_WORKERS] for t, rows in scan.items()},
            "scan": scan,
            "saturation": {t: find_saturation(rows) for t, rows in scan.items()},
            "roots_match": all(r["roots_match"] for r in workload["runs"]),
        })
    return out


def format_tables(summary: dict) -> str:
    """The docs' tables (docs/sharding-model.md) from a summary."""
    p = summary["params"]
    w = p["shard_window"]
    lines = ["| parameter | value | fitted on |", "|---|---|---|"]
    lines += [
        f"| shard CPU per key registration | {w['registration_s'] * 1e6:.1f} µs | process n=1,2 windows ({w['points']} shard-windows, R² {w['r2']:.3f}) |",
        f"| shard CPU per µs of the planner's estimate (other rows) | {w['per_estimated_s'] * 1e6:.3f} µs | same |",
        f"| shard CPU per broadcast oracle update | {w['broadcast_s'] * 1e6:.1f} µs | same |",
        f"| shard CPU per account moved (import or export) | {w['move_s'] * 1e6:.1f} µs | same |",
        f"| shard CPU per window, fixed | {w['fixed_s'] * 1e3:.2f} ms | same |",
        f"| scatter kappa (variance / load) | {w['kappa_s'] * 1e3:.3f} ms | residuals of the same fit |",
        f"| seal and subtrees CPU per sealed account | {p['seal_per_account_s'] * 1e6:.1f} µs | shard processes' CPU after the last window (/proc), process runs |",
        f"| weight of one sampled runnable thread of other users | {p['background_weight']:.2f} | one-shard runs (process and Dask): CPU share got against fair share |",
        f"| coordinator pre-pass | {p['prepass_s'] * 1e3:.0f} ms | process runs |",
        f"| coordinator tail (subtrees, merge, root) | {p['tail_s'] * 1e3:.0f} ms | process runs |",
    ]
    for name, t in p["transports"].items():
        lines += [
            f"| {name}: coordinator CPU per transaction per window | {t['coordinator_per_transaction_s'] * 1e6:.2f} µs | {', '.join(t['fitted_on'])} |",
            f"| {name}: coordinator CPU per shard per round trip | {t['coordinator_per_shard_s'] * 1e3:.2f} ms | same |",
            f"| {name}: latency per round trip | {t['latency_s'] * 1e3:.2f} ms | same (median) |",
        ]
    out = ["\n".join(lines)]
    for wl in summary["workloads"]:
        head = f"contention {wl['contention']:g}: {wl['batch_transactions']} transactions, {wl['windows']} windows, sequential node CPU {wl['sequential']['batch_cpu_s']:.2f} s"
        rows = ["| transport | n | predicted s | speedup vs 1 shard | vs sequential CPU | tx per shard-window | moves | plan | coordinator | slowest shards | round trips | seal | serial rest |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for transport, scan in wl["scan"].items():
            for r in scan:
                rows.append(f"| {transport} | {r['n']} | {r['total_s']:.2f} | {r['speedup_vs_one_shard']:.2f} | {r['speedup_vs_sequential_cpu']:.2f} | {r['transactions_per_shard_window']} | {r['moves']} | "
                            f"{r['plan_s']:.2f} | {r['coordinator_windows_s']:.2f} | {r['shards_critical_s']:.2f} | {r['round_trips_s']:.2f} | {r['seal_s']:.2f} | {r['prepass_s'] + r['tail_s']:.2f} |")
        sat = "; ".join(f"{t}: best n={v['best_n']} ({v['best_speedup_vs_one_shard']}x), doubling gains <10% from n={v['doubling_gains_under_10pct_from_n']}" for t, v in wl["saturation"].items())
        check = ["| transport | n | in fit | others' runnable threads | measured s | predicted s (cores shared) | error | predicted s (2 idle cores) | error | slowest shard's CPU summed over windows, measured / predicted s | moves measured / planned |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in wl["check"]:
            check.append(f"| {c['transport']} | {c['n']} | {'yes' if c['in_fit'] else 'no'} | {c['background']} | {c['measured_s']:.2f} | {c['predicted_s']:.2f} | {c['error'] * 100:+.0f}% | "
                         f"{c['predicted_nominal_cores_s']:.2f} | {c['error_nominal_cores'] * 100:+.0f}% | {c['measured_windows_critical_cpu_s']:.2f} / {c['predicted_windows_critical_cpu_s']:.2f} | {c['measured_moves']} / {c['planned_moves']} |")
        out += [f"### {head}", "\n".join(rows), f"Saturation: {sat}.", "\n".join(check), f"Roots equal to the sequential node's: {wl['roots_match']}."]
    return "\n\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--txs", type=int, default=20_000)
    parser.add_argument("--contention", type=float, action="append", help="repeat for several (default 0 and 0.1)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--process-shards", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2])
    parser.add_argument("--dask-workers", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--refit", type=Path, help="fit and predict from this file's measurements, measuring nothing")
    parser.add_argument("--tables", action="store_true", help="print the docs' markdown tables instead of the JSON")
    args = parser.parse_args()
    if args.refit is not None:
        measured = json.loads(args.refit.read_text())["measured"]
    else:
        measured = {
            "machine_cores": MACHINE_CORES,
            "command": " ".join(["benchmarks/shard_model.py", *sys.argv[1:]]),
            "workloads": [measure_workload(args, c) for c in (args.contention or [0.0, 0.1])],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"measured": measured}) + "\n")  # kept if the fit fails
    result = {"summary": summarise(measured), "measured": measured}
    # the summary readable, the measurements (plans per shard count: large) one line each
    args.out.write_text("{\n" + f'"summary": {json.dumps(result["summary"], indent=1)},\n"measured": {json.dumps(result["measured"], separators=(",", ":"))}' + "\n}\n")
    print(format_tables(result["summary"]) if args.tables else json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
