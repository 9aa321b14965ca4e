"""Scaling model of sharded execution (rollup/sharded.py): measures per-shard work, the coordinator's
work and traffic at a few shard counts, fits a model of batch time T(n, cores) and predicts 8, 32
and 128 workers on the same workload; the Dask LocalCluster runs at 3 and 4 workers are its check.

Measured, per workload (default 10k accounts, 20k mixed transactions, contention 0 and 0.1):
- the sequential node (`Node.submit`, the reference: signatures, execution, diff and root);
- a shard's signature checks (`Shard.check_rows`, the engine's method, cold key caches) on a
  random n-th of the rows the shards check, for n = 1 to 256, sent in two parts (pipes) or one
  (Dask) as `ShardSet` sends them: batch verification costs more per signature the fewer a shard
  checks, so this is measured at every shard count the model predicts, not extrapolated;
- `ShardSet` over worker processes at n = 1, 2 and over a Dask LocalCluster (processes, one thread
  per worker) at 1-4 workers, `--repeats` times, alternating. Per run: the check phase (its wall
  time, each shard's check CPU: `ShardedBatch.timings`), per window its wall time (the `progress`
  callback's timestamps), the coordinator's CPU, each shard's execution CPU
  (`ShardedBatch.windows`) and its process's CPU (/proc: frames, idle hashing), and from the plan
  the shards actually ran (`ShardSet._iter_plan`, captured as planned) each shard's rows, the
  signatures it checks, the broadcast oracle updates, its account moves and the leaves that
  become final; the leaves hashed while idle (`idle_hash_cpu_s`) and the shard processes' CPU
  after the last window (the seal and the subtrees, /proc).

Every run also samples other users' runnable threads (`BackgroundSampler`): on a shared machine
they, not the core count, decide the cores a run gets.

The model (docs/sharding-model.md): `predict_batch_time`. Its parameters are fitted on the
process runs (shard execution CPU, hashing, the coordinator's serial parts), on the process runs
and the Dask runs at 1 and 2 workers (each transport's coordinator and latency, the weight of the
sampled load); the signature checks' cost is the measured shares', fitted on no run; the Dask
runs at 3 and 4 workers are out of sample. The plan at 8 to 256 shards is computed by the same
planner (no workers needed: planning needs only the transactions and the holder map), so moves,
per-shard rows and signatures at those counts are the planner's, not a guess.

    .venv/bin/python benchmarks/shard_model.py                 # measure, fit, predict (~12 min on an idle machine)
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

from rollup.execution import gc_paused  # noqa: E402
from rollup.node import Node  # noqa: E402
from rollup.parallel import TX_CLASSES, compute_deposit_counters  # noqa: E402
from rollup.planner import DEFAULT_COSTS, compute_window_size  # noqa: E402
from rollup.sharded import COORDINATOR_CHECKED, Shard, ShardSet, choose_subtree_level, encode_signed_transaction  # noqa: E402
from rollup.signatures import check_signatures  # noqa: E402
from rollup.state_codec import encode_state_leaf  # noqa: E402
from rollup.txfile import read_transaction_file  # noqa: E402
from verifier.encoding import is_l2_signed  # noqa: E402
from verifier import eddsa  # noqa: E402
from verifier.l2auth import compute_key_id, get_domain_tag  # noqa: E402
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
SIGNATURE_SHARDS = (1, 2, 3, 4, 8, 16, 32, 64, 128, 256)  # shard counts whose share of the signature checks is measured
SIGNATURE_SAMPLES = 3  # shares measured per shard count
BACKGROUND_WEIGHTS = tuple(k / 20 for k in range(0, 81))  # the weights of other users' load tried (0 to 4)


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
    """The planner's estimate (µs) of executing one row (`rollup.planner.DEFAULT_COSTS`): the
    shards check signatures before the windows, so a window's rows only execute."""
    return DEFAULT_COSTS[row[1][0]]


def is_checked_by_shard(row: tuple) -> bool:
    """A row whose signatures its shard checks (before the windows): all but deposits and oracle
    updates, which the coordinator checks and sends with their signers."""
    return row[2] is None


def is_l2_row(row: tuple) -> bool:
    return is_l2_signed(TX_CLASSES[row[1][0]])


def copy_plan(plan: Any) -> dict:
    """What `describe_plan` needs of a window, copied before `ShardSet._send_checks` blanks the
    rows it sends for checking."""
    return {"rows": [list(r) for r in plan.rows], "moves": list(plan.moves), "broadcast": list(plan.broadcast),
            "finals": [list(f) for f in plan.finals]}


def describe_plan(windows: list, n: int, sealed: set[int]) -> list[dict]:
    """Per window: transactions, moves, broadcast oracle updates, and per shard its rows (key
    registrations apart, the others as the planner's execution estimate), the rows whose signatures
    it checks (Ethereum-signed and L2-signed apart), the accounts it imports before the window and
    exports after it, and the changed accounts whose leaves are final after it (`sealed`: the
    accounts the batch changes)."""
    windows = [w if isinstance(w, dict) else copy_plan(w) for w in windows]
    out = []
    for w, plan in enumerate(windows):
        imports = [0] * n
        exports = [0] * n
        for _, _, to in plan["moves"]:
            imports[to] += 1
        if w + 1 < len(windows):
            for _, source, _ in windows[w + 1]["moves"]:
                exports[source] += 1
        rows = plan["rows"]
        out.append({
            "transactions": sum(len(r) for r in rows),
            "moves": len(plan["moves"]),
            "broadcast": len(plan["broadcast"]),
            # key registrations (a third of the batch) apart from the planner's estimate
            "shard_registrations": [sum(1 for row in r if row[1][0] == REGISTER_KEY) for r in rows],
            "shard_others_estimate_us": [round(sum(get_row_cost(row) for row in r if row[1][0] != REGISTER_KEY)) for r in rows],
            "shard_moves": [imports[s] + exports[s] for s in range(n)],
            "shard_check_eth": [sum(1 for row in r if is_checked_by_shard(row) and not is_l2_row(row)) for r in rows],
            "shard_check_l2": [sum(1 for row in r if is_checked_by_shard(row) and is_l2_row(row)) for r in rows],
            "shard_finals": [sum(1 for a in f if a in sealed) for f in plan["finals"]],
        })
    return out


def measure_signature_curve(workload: dict, counts: tuple[int, ...] = SIGNATURE_SHARDS, seed: int = 0) -> dict:
    """A shard's signature checks (`Shard.check_rows`, the engine's method on a bare shard with
    cold key caches, as a new shard starts) when it gets a random n-th of the rows the shards
    check, for each n in `counts`: batch verification costs less per signature the more are
    checked together, and the key caches help more the more often a key recurs. Per n, up to
    `SIGNATURE_SAMPLES` shares of one random partition, in batch order; "two parts" as the pipes
    transport sends them (the rows of the windows up to a third of the batch, then the rest),
    "one part" as Dask does. Also the CPU per Ethereum-signed row (one recovery each, no batch
    effect), on a random 4096 of them."""
    domain = workload["genesis"].signing_domain
    shard = Shard.__new__(Shard)
    shard.domain, shard.tag = domain, get_domain_tag(domain)
    batch = workload["batch"]
    rows = [(i, encode_signed_transaction(tx)) for i, tx in enumerate(batch) if type(tx) not in COORDINATOR_CHECKED]
    size = compute_window_size(batch)
    first_part = -(-(len(batch) // 3) // size) * size  # the windows covering a third of the batch
    rng = np.random.default_rng(seed)

    def check(parts: list[list[tuple[int, tuple]]]) -> float:
        eddsa.clear_key_cache()
        compute_key_id.cache_clear()
        shard.checked = {}
        with gc_paused():
            return sum(Shard.check_rows(shard, part) for part in parts if part)

    eth = [r for r in rows if not is_l2_signed(TX_CLASSES[r[1][0]])]
    chosen = [eth[k] for k in sorted(rng.choice(len(eth), size=min(4096, len(eth)), replace=False))]
    eth_cpu_per_row = check([chosen]) / len(chosen)
    out: dict[str, Any] = {"eth_cpu_per_row_s": eth_cpu_per_row, "eth_rows": len(chosen), "first_part_rows_before": first_part, "shares": []}
    for n in counts:
        permutation = rng.permutation(len(rows))
        for s in range(min(n, SIGNATURE_SAMPLES)):
            share = [rows[k] for k in sorted(permutation[s::n])]
            l2 = sum(1 for r in share if is_l2_signed(TX_CLASSES[r[1][0]]))
            for mode, parts in (("two parts", [[r for r in share if r[0] < first_part], [r for r in share if r[0] >= first_part]]),
                                ("one part", [share])):
                cpu = check(parts)
                out["shares"].append({"n": n, "mode": mode, "rows": len(share), "l2_rows": l2, "cpu_s": cpu,
                                      # what the L2-signed rows cost, the Ethereum-signed ones at their own cost
                                      "cpu_per_l2_row_s": (cpu - eth_cpu_per_row * (len(share) - l2)) / l2})
    return out


def measure_sharded(workload: dict, n: int, client: Any = None) -> dict:
    """One batch on `n` shards (worker processes, or Dask actors with `client`), timed per window."""
    domain = workload["genesis"].signing_domain
    with tempfile.TemporaryDirectory() as tmp:
        node = build_node(Path(tmp) / "node", workload)
        shards = ShardSet(node.state, node.tree, n, dask_client=client)
        try:
            planned: list = []
            parts: list[int] = []  # windows per CHECK part
            marks: list[tuple[float, float]] = []
            plan, send_checks, call_all = shards._iter_plan, shards._send_checks, shards._call_all

            def capture_plan(*args: Any) -> Any:
                for window in plan(*args):  # passed on as planned: the engine's overlap of planning and checks kept
                    planned.append(copy_plan(window))
                    yield window

            def capture_checks(windows: list) -> int:
                parts.append(len(windows))
                return send_checks(windows)

            def capture_windows_start(*args: Any) -> Any:
                if not marks:  # the first call: the moves before window 0, after every signature check
                    marks.append((time.perf_counter(), time.process_time()))
                    shard_cpu.append([get_process_cpu(pid) for pid in pids])
                return call_all(*args)

            shards._iter_plan = capture_plan  # type: ignore[method-assign]
            shards._send_checks = capture_checks  # type: ignore[method-assign]
            shards._call_all = capture_windows_start  # type: ignore[method-assign]
            pids = get_shard_pids(shards, client)
            shard_cpu: list[list[float]] = []  # per shard, its process's CPU: at the start, the windows' start, after each window

            def progress(_: int) -> None:
                marks.append((time.perf_counter(), time.process_time()))
                shard_cpu.append([get_process_cpu(pid) for pid in pids])

            with BackgroundSampler() as background:
                shard_cpu.append([get_process_cpu(pid) for pid in pids])
                started = time.perf_counter()
                out = shards.execute(node.state, workload["batch"], lambda xs: check_signatures(xs, domain), progress=progress)
                executed = time.perf_counter()
                # the seal and the subtrees in CPU (the shards report their wall time): the shard
                # processes' CPU since the last window
                tail_cpu = [get_process_cpu(pid) - before for pid, before in zip(pids, shard_cpu[-1])]
                apply_root(node, out)
                ended = time.perf_counter()
            final_holder = dict(shards.holder)
        finally:
            shards.close()
    sealed = set(out.accounts)
    described = describe_plan(planned, n, sealed)
    windows = []
    for w, (detail, plan_w) in enumerate(zip(out.windows, described)):
        windows.append({
            **plan_w,
            # window 0's interval also holds the round trip that moves window 0's accounts
            "wall_s": marks[w + 1][0] - marks[w][0],
            "coordinator_cpu_s": marks[w + 1][1] - marks[w][1],
            "shard_cpu_s": [x["cpu_s"] for x in detail["shards"]],
            "shard_execution_s": [x["execution_s"] for x in detail["shards"]],
            # the shard processes' CPU over the window's interval: its requests, frames and idle hashing
            "shard_process_cpu_s": [b - a for a, b in zip(shard_cpu[w + 1], shard_cpu[w + 2])],
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
        **{k: timings[k] for k in ("prepass_s", "plan_s", "shard_signatures_s", "windows_s", "receipts_s", "seal_s", "subtrees_s", "merge_s",
                                    "windows", "moves", "bytes_to_shards", "bytes_from_shards", "windows_critical_cpu_s")},
        "check_parts_windows": parts,
        "shard_signatures_cpu_s": [timings[f"shard_{s}_signatures_cpu_s"] for s in range(n)],
        # the shard processes' CPU from the start of `execute` to the first window: the checks, frames, a Dask worker's own
        "shard_before_windows_process_cpu_s": [b - a for a, b in zip(shard_cpu[0], shard_cpu[1])],
        "shard_idle_hash_cpu_s": [timings.get(f"shard_{s}_idle_hash_cpu_s", 0.0) for s in range(n)],
        "shard_seal_s": [timings[f"shard_{s}_seal_s"] for s in range(n)],
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
                "windows": describe_plan(windows, n, set(sealed_accounts)),
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
    """One shard's CPU executing one window (its signatures were checked before the windows): key
    registrations, the other rows (the planner's execution estimate), the broadcast oracle updates
    it replays, the accounts it imports and exports, a fixed part."""
    w = params["shard_window"]
    return (w["registration_s"] * registrations + w["per_estimated_s"] * others_us + w["broadcast_s"] * broadcast
            + w["move_s"] * moves + w["fixed_s"])


def get_check_cost_per_l2_row(params: dict, transport: str, l2_rows: float) -> float:
    """A shard's CPU per L2-signed row when it checks `l2_rows` of them in the batch: the measured
    shares (`measure_signature_curve`, "two parts" over pipes, "one part" over Dask), linear in
    log(rows) between them, their end values outside them."""
    curve = params["signatures"]["two parts" if transport == "process" else "one part"]
    return float(np.interp(math.log(max(l2_rows, 1.0)), np.log(curve["l2_rows"]), curve["cpu_per_l2_row_s"]))


def predict_check_cpu(params: dict, transport: str, eth_rows: float, l2_rows: float) -> float:
    """A shard's CPU checking its rows' signatures (`Shard.check_rows`, every part): the
    Ethereum-signed rows at their measured cost each, the L2-signed ones at the measured cost per
    row of a shard checking as many."""
    l2 = l2_rows * get_check_cost_per_l2_row(params, transport, l2_rows) if l2_rows > 0 else 0.0
    return params["signatures"]["eth_cpu_per_row_s"] * eth_rows + l2


def get_check_parts(windows: list[dict], transport: str) -> list[int]:
    """The windows each CHECK part covers, as `ShardSet._execute` cuts them: over pipes (requests
    sent ahead) the windows up to a third of the batch first, sent while the coordinator plans the
    rest, then the rest; over Dask (no sending ahead) all of them once the plan is done."""
    if transport != "process":
        return [len(windows)]
    first = (sum(w["transactions"] + w["broadcast"] for w in windows)) // 3
    planned = 0
    for k, window in enumerate(windows):
        planned += window["transactions"]
        if planned >= first:
            return [k + 1, len(windows) - k - 1] if k + 1 < len(windows) else [len(windows)]
    return [len(windows)]


def get_coordinator_cpu(transport: dict, window: dict, n: int) -> float:
    """The coordinator's CPU in one window: per transaction, per account it relays from one shard
    to another, per shard (a payload and a reply each)."""
    return (transport["coordinator_per_transaction_s"] * window["transactions"] + transport["coordinator_per_move_s"] * window["moves"]
            + transport["coordinator_per_shard_s"] * n)


def predict_batch_time(params: dict, windows: list[dict], sealed: list[int], n: int, cores: float,
                       transport: str, plan_s: float, background: float = 0.0) -> dict:
    """Predicted wall time of one sharded batch on `n` shards given `cores` (`background`: other
    users' runnable threads, 0 on a machine of one's own), with its parts:

        T = [prepass + plan(n) + check sends + sum over windows of coordinator(w, n) + tail] / c(1)
            + signatures(n, cores) + sum over windows of slowest shard(w, n, cores)
            + max(seal(n, cores), receipts / c(1)) + (windows + 4) * latency

    - signatures: each shard's CPU checking its rows (`predict_check_cpu`, per CHECK part); over
      pipes the first part (a third of the batch) runs while the coordinator plans the rest, so
      only what outlasts that planning counts; the slowest shard, or the total shared when the
      shards outnumber the cores they get;
    - coordinator(w, n) = k_tx * transactions(w) + k_shard * n: its CPU per window (payloads,
      pickles, replies), and k_shard * n for each of the 4 round trips outside the windows (the
      checks, the moves before window 0, the seal, the subtrees);
    - slowest shard(w, n, c) = max((max_s cpu(w, s) + sqrt(kappa * mean_s cpu(w, s)) * E[max of
      n normals]) / c(1), (sum_s cpu(w, s) + idle hashing) / c(n)): per-shard execution CPU from
      the plan (rows, broadcast, moves) plus the scatter the fit leaves (variance proportional to
      a shard's load);
    - idle hashing (pipes only: a Dask actor has no idle hook): after window w a shard hashes the
      leaves that became final, for as long as it waits for window w + 1 (the slowest shard's
      slack, the coordinator's next window, a round trip), at the seal's CPU per account;
    - seal(n, c) = the same sharing rule for the seal and subtrees: CPU per sealed account times
      the accounts each shard holds at the end (the plan's final holders) not hashed while idle;
      the coordinator builds the receipts meanwhile;
    - c(k) = the cores k busy processes get: min(k, cores), less what other users take;
    - latency = a round trip's wall time beyond the coordinator's and the shards' CPU, per
      transport; the tail = the coordinator's subtrees, merge and root (serial)."""
    t = params["transports"][transport]
    one = compute_shared_cores(1, cores, background)
    c = compute_shared_cores(n, cores, background)
    g = compute_expected_max(n)
    kappa = params["shard_window"]["kappa_s"]
    latency = t["latency_s"]
    per_account = params["seal_per_account_s"]
    per_shard = t["coordinator_per_shard_s"] * n

    # the signatures: each shard's CPU over the batch, split over the CHECK parts by their rows
    parts = get_check_parts(windows, transport)
    check_cpu = [predict_check_cpu(params, transport, sum(w["shard_check_eth"][s] for w in windows), sum(w["shard_check_l2"][s] for w in windows))
                 for s in range(n)]
    signatures_critical_cpu = max(check_cpu)
    total_rows = sum(w["transactions"] for w in windows) or 1
    if len(parts) > 1:
        # the first part runs while the coordinator plans the rest: the share of the rows planned after it
        rest = sum(w["transactions"] for w in windows[parts[0]:]) / total_rows
        overlap = plan_s / one * rest
        first = [sum(w["shard_check_eth"][s] + w["shard_check_l2"][s] for w in windows[: parts[0]])
                 / max(1, sum(w["shard_check_eth"][s] + w["shard_check_l2"][s] for w in windows)) for s in range(n)]
        slowest_check = max(max(0.0, cpu * f / one - overlap) + cpu * (1 - f) / one for cpu, f in zip(check_cpu, first))
    else:
        overlap = 0.0
        slowest_check = signatures_critical_cpu / one
    signatures = max(slowest_check, sum(check_cpu) / c - overlap)

    coordinator = 4 * per_shard
    critical = critical_cpu = idle_cpu_total = 0.0
    pending = [0.0] * n  # per shard, final leaves not hashed yet
    hashed = [0.0] * n
    idle_cpu = 0.0  # hashing in the gap before this window
    for w, window in enumerate(windows):
        cpu = [predict_shard_cpu(params, window["shard_registrations"][s], window["shard_others_estimate_us"][s],
                                 window["broadcast"], window["shard_moves"][s]) for s in range(n)]
        mean = sum(cpu) / n
        slowest = max(cpu) + math.sqrt(kappa * max(mean, 0.0)) * g  # a poor fit may predict below zero
        critical_cpu += slowest
        critical += max(slowest / one, (sum(cpu) + idle_cpu) / c)
        coordinator += get_coordinator_cpu(t, window, n)
        idle_cpu = 0.0
        if transport == "process" and w + 1 < len(windows):
            next_coordinator = get_coordinator_cpu(t, windows[w + 1], n) / one
            for s in range(n):
                pending[s] += window["shard_finals"][s]
                gap = (slowest - cpu[s]) / one + next_coordinator + latency
                done = min(pending[s], max(gap, 0.0) * one / per_account) if per_account > 0 else pending[s]
                pending[s] -= done
                hashed[s] += done
                idle_cpu += done * per_account
            idle_cpu_total += idle_cpu
    seal_cpu = [per_account * max(k - h, 0.0) for k, h in zip(sealed, hashed)]
    parts_out = {
        "prepass_s": params["prepass_s"] / one,
        "plan_s": (plan_s + t["check_send_s"]) / one,
        "signatures_s": signatures,
        "coordinator_windows_s": coordinator / one,
        "shards_critical_s": critical,
        "round_trips_s": (len(windows) + 4) * latency,
        "seal_s": max(max(seal_cpu) / one, sum(seal_cpu) / c, params["receipts_s"] / one),
        "tail_s": params["tail_s"] / one,
    }
    return {"total_s": sum(parts_out.values()), **parts_out, "shards_critical_cpu_s": critical_cpu,
            "signatures_critical_cpu_s": signatures_critical_cpu, "check_parts": parts,
            "idle_hashed_accounts": round(sum(hashed)), "idle_hash_cpu_s": idle_cpu_total}


def get_one_core(run: dict, weight: float) -> float:
    """The share of a core one busy process of the run got."""
    return compute_shared_cores(1, MACHINE_CORES, weight * run["background"])


def fit_least_squares(rows: list[list[float]], ys: list[float]) -> list[float]:
    coefficients, *_ = np.linalg.lstsq(np.array(rows, dtype=float), np.array(ys, dtype=float), rcond=None)
    return [float(x) for x in coefficients]


def get_shard_features(window: dict, s: int) -> list[float]:
    return [window["shard_registrations"][s], window["shard_others_estimate_us"][s], window["broadcast"], window["shard_moves"][s], 1.0]


def get_signature_params(curves: list[dict]) -> dict:
    """The measured shares' check cost (`measure_signature_curve`), per mode and shard count: the
    median over the shares and the workloads."""
    out: dict[str, Any] = {"eth_cpu_per_row_s": float(np.mean([c["eth_cpu_per_row_s"] for c in curves]))}
    for mode in ("two parts", "one part"):
        shares = [x for c in curves for x in c["shares"] if x["mode"] == mode]
        counts = sorted({x["n"] for x in shares})
        out[mode] = {
            "n": counts,
            "l2_rows": [float(np.median([x["l2_rows"] for x in shares if x["n"] == n])) for n in counts],
            "cpu_per_l2_row_s": [float(np.median([x["cpu_per_l2_row_s"] for x in shares if x["n"] == n])) for n in counts],
        }
        # interpolation needs the rows increasing: the shard counts decreasing
        out[mode] = {k: v[::-1] for k, v in out[mode].items()}
    return out


def is_in_fit(run: dict) -> bool:
    """The runs the parameters are fitted on: at 1 and 2 shards (more would not have cores of their own)."""
    return run["n"] <= 2


def fit_model(runs: list[dict], curves: list[dict], plans: list[dict]) -> dict:
    """The model's parameters from the measured runs (each tagged with its workload and the plan's
    time for its shard count; `plans[i]`: the plan of `runs[i]`) and the signature check shares
    (`measure_signature_curve`, fitted on no run): shard execution CPU, hashing and the
    coordinator's serial parts on the process runs, the transports' coordinator and latency on the
    process runs and on the Dask runs at 1 and 2 workers, and the weight of other users' sampled
    load as the one that predicts those runs' batch times best (the Dask runs at 3 and 4 workers
    are the check)."""
    process = [r for r in runs if r["transport"] == "process" and is_in_fit(r)]
    # per shard and window: execution CPU against its rows, broadcast and moves
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
    params: dict[str, Any] = {"shard_window": shard_window, "signatures": get_signature_params(curves)}
    # hashing the changed leaves, while idle and at the seal, and the subtrees: per sealed account
    params["seal_per_account_s"] = (sum(sum(r["shard_seal_subtrees_cpu_s"]) + sum(r["shard_idle_hash_cpu_s"]) for r in process)
                                    / sum(sum(r["shard_sealed"]) for r in process))
    fitted = [(run, plan) for run, plan in zip(runs, plans) if is_in_fit(run)]

    def get_error(weight: float) -> float:
        fit_load_dependent(params, runs, weight)
        return sum(math.log(predict_run(params, plan, run["n"], MACHINE_CORES, run["transport"], weight * run["background"])["total_s"]
                            / run["batch_s"]) ** 2 for run, plan in fitted)

    weight = min(BACKGROUND_WEIGHTS, key=get_error)
    fit_load_dependent(params, runs, weight)
    params["background_weight"] = weight
    params["background_weight_rms_log_error"] = math.sqrt(get_error(weight) / len(fitted))
    return params


def fit_load_dependent(params: dict, runs: list[dict], weight: float) -> None:
    """The parameters read from wall times, given how much of a competitor one sampled runnable
    thread of other users is (`weight`)."""
    process = [r for r in runs if r["transport"] == "process" and is_in_fit(r)]
    # the coordinator's serial parts are wall times: back to the CPU of one core of one's own
    params["prepass_s"] = float(np.mean([r["prepass_s"] * get_one_core(r, weight) for r in process]))
    params["receipts_s"] = float(np.mean([r["receipts_s"] * get_one_core(r, weight) for r in process]))
    params["tail_s"] = float(np.mean([(r["subtrees_s"] + r["merge_s"] + r["root_s"]) * get_one_core(r, weight) for r in process]))
    params["transports"] = {}
    for transport, fitted_on in (("process", process), ("dask", [r for r in runs if r["transport"] == "dask" and is_in_fit(r)])):
        if not fitted_on:
            continue
        rows, ys = [], []
        for run in fitted_on:
            for window in run["windows_detail"]:
                rows.append([window["transactions"], window["moves"], run["n"]])
                ys.append(window["coordinator_cpu_s"])
        k_tx, k_move, k_shard = fit_least_squares(rows, ys)
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
            "coordinator_per_transaction_s": k_tx, "coordinator_per_move_s": k_move, "coordinator_per_shard_s": k_shard,
            "latency_s": float(np.median(left)),
            # what the coordinator's planning took beyond the plan alone (`plan_at`): sending the
            # rows to check (in `plan_s` because the first part is sent amid the planning)
            "check_send_s": float(np.mean([max(0.0, r["plan_s"] * get_one_core(r, weight) - r["planned_plan_s"]) for r in fitted_on])),
            "fitted_on": sorted({f"{r['transport']} n={r['n']} c={r['contention']:g}" for r in fitted_on}),
        }


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
    (other users' load sampled through it) and with the machine's cores idle; and the slowest
    shard's CPU in the signature checks and in the windows, measured against predicted (load-free)."""
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
            "measured_signatures_s": round(run["shard_signatures_s"], 3),
            "predicted_signatures_s": round(shared["signatures_s"], 3),
            "measured_signatures_critical_cpu_s": round(max(run["shard_signatures_cpu_s"]), 3),
            "predicted_signatures_critical_cpu_s": round(shared["signatures_critical_cpu_s"], 3),
            "measured_check_parts": run["check_parts_windows"], "predicted_check_parts": shared["check_parts"],
            "measured_windows_critical_cpu_s": round(run["windows_critical_cpu_s"], 3),
            "predicted_windows_critical_cpu_s": round(shared["shards_critical_cpu_s"], 3),
            "measured_coordinator_windows_cpu_s": round(sum(w["coordinator_cpu_s"] for w in run["windows_detail"]), 3),
            "predicted_coordinator_windows_cpu_s": round(sum(get_coordinator_cpu(params["transports"][run["transport"]], w, run["n"]) for w in plan["windows"]), 3),
            "measured_idle_hash_cpu_s": round(sum(run["shard_idle_hash_cpu_s"]), 3),
            "predicted_idle_hash_cpu_s": round(shared["idle_hash_cpu_s"], 3),
            "measured_seal_s": round(run["receipts_s"] + run["seal_s"], 3),
            "predicted_seal_s": round(shared["seal_s"], 3),
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
            for key in ("shards_critical_cpu_s", "check_parts", "idle_hash_cpu_s"):
                predicted.pop(key)
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
    print(f"contention {contention:g}: signature checks against rows checked at once", file=sys.stderr, flush=True)
    signature_curve = measure_signature_curve(workload)
    runs = []
    for repeat in range(args.repeats):  # alternating: other users' load varies over minutes
        for n in args.process_shards:
            print(f"contention {contention:g}: {n} shard processes ({repeat + 1}/{args.repeats})", file=sys.stderr, flush=True)
            runs.append(measure_sharded(workload, n))
        for n in args.dask_workers:
            print(f"contention {contention:g}: Dask LocalCluster, {n} workers ({repeat + 1}/{args.repeats})", file=sys.stderr, flush=True)
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
        "signature_curve": signature_curve,
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
    for workload in measured["workloads"]:
        for run in workload["runs"]:
            run["planned_plan_s"] = workload["plans"][str(run["n"])]["plan_s"]
    runs = [run for w in measured["workloads"] for run in w["runs"]]
    plans = [w["plans"][str(run["n"])] for w in measured["workloads"] for run in w["runs"]]
    params = fit_model(runs, [w["signature_curve"] for w in measured["workloads"]], plans)
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
    sig = p["signatures"]

    def curve(mode: str) -> str:
        return ", ".join(f"{n}: {c * 1e6:.0f}" for n, c in zip(sig[mode]["n"][::-1], sig[mode]["cpu_per_l2_row_s"][::-1]))

    lines = ["| parameter | value | measured or fitted on |", "|---|---|---|"]
    lines += [
        f"| shard check CPU per L2-signed row, pipes (two parts), by shard count n: µs | {curve('two parts')} | `Shard.check_rows` on a random n-th of the rows, cold key caches; median of up to {SIGNATURE_SAMPLES} shares and both workloads; no run |",
        f"| the same, Dask (one part) | {curve('one part')} | same |",
        f"| shard check CPU per Ethereum-signed row | {sig['eth_cpu_per_row_s'] * 1e6:.1f} µs | same, 4096 random rows |",
        f"| shard CPU per key registration (window) | {w['registration_s'] * 1e6:.1f} µs | process n=1,2 windows ({w['points']} shard-windows, R² {w['r2']:.3f}) |",
        f"| shard CPU per µs of the planner's execution estimate (other rows) | {w['per_estimated_s'] * 1e6:.3f} µs | same |",
        f"| shard CPU per broadcast oracle update | {w['broadcast_s'] * 1e6:.1f} µs | same |",
        f"| shard CPU per account moved (import or export) | {w['move_s'] * 1e6:.1f} µs | same |",
        f"| shard CPU per window, fixed | {w['fixed_s'] * 1e3:.2f} ms | same |",
        f"| scatter kappa (variance / load) | {w['kappa_s'] * 1e3:.3f} ms | residuals of the same fit |",
        f"| hashing (idle and seal) and subtrees CPU per sealed account | {p['seal_per_account_s'] * 1e6:.1f} µs | shards' idle hashing (reported) and processes' CPU after the last window (/proc), process n=1,2 runs |",
        f"| weight of one sampled runnable thread of other users | {p['background_weight']:.2f} | the in-fit runs' batch times (least squares of log(predicted / measured), 0 to 4 by 0.05; rms log error {p['background_weight_rms_log_error']:.3f}) |",
        f"| coordinator pre-pass | {p['prepass_s'] * 1e3:.0f} ms | process n=1,2 runs |",
        f"| coordinator receipts (while the shards seal) | {p['receipts_s'] * 1e3:.0f} ms | process n=1,2 runs |",
        f"| coordinator tail (subtrees, merge, root) | {p['tail_s'] * 1e3:.0f} ms | process n=1,2 runs |",
    ]
    for name, t in p["transports"].items():
        lines += [
            f"| {name}: coordinator CPU per transaction per window | {t['coordinator_per_transaction_s'] * 1e6:.2f} µs | {', '.join(t['fitted_on'])} |",
            f"| {name}: coordinator CPU per account moved | {t['coordinator_per_move_s'] * 1e6:.2f} µs | same |",
            f"| {name}: coordinator CPU per shard per round trip | {t['coordinator_per_shard_s'] * 1e3:.3f} ms | same |",
            f"| {name}: latency per round trip | {t['latency_s'] * 1e3:.2f} ms | same (median) |",
            f"| {name}: sending the rows to check (beyond the plan) | {t['check_send_s'] * 1e3:.0f} ms | same (mean) |",
        ]
    out = ["\n".join(lines)]
    predictions = ["| contention | transport | workers | predicted s | speedup vs 1 shard | vs sequential node CPU | plan + sends s | signatures s | coordinator s | slowest shards s | round trips s | seal s | serial rest s |",
                   "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for wl in summary["workloads"]:
        for transport, rows in wl["predictions"].items():
            for r in rows:
                predictions.append(f"| {wl['contention']:g} | {transport} | {r['n']} | {r['total_s']:.2f} | {r['speedup_vs_one_shard']:.2f} | {r['speedup_vs_sequential_cpu']:.2f} | "
                                   f"{r['plan_s']:.2f} | {r['signatures_s']:.2f} | {r['coordinator_windows_s']:.2f} | {r['shards_critical_s']:.2f} | {r['round_trips_s']:.2f} | {r['seal_s']:.2f} | {r['prepass_s'] + r['tail_s']:.2f} |")
    out.append("\n".join(predictions))
    for wl in summary["workloads"]:
        head = f"contention {wl['contention']:g}: {wl['batch_transactions']} transactions, {wl['windows']} windows, sequential node CPU {wl['sequential']['batch_cpu_s']:.2f} s"
        rows = ["| transport | n | predicted s | speedup vs 1 shard | vs sequential CPU | tx per shard-window | moves | plan + sends | signatures | coordinator | slowest shards | round trips | seal | serial rest | leaves hashed idle |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for transport, scan in wl["scan"].items():
            for r in scan:
                rows.append(f"| {transport} | {r['n']} | {r['total_s']:.2f} | {r['speedup_vs_one_shard']:.2f} | {r['speedup_vs_sequential_cpu']:.2f} | {r['transactions_per_shard_window']} | {r['moves']} | "
                            f"{r['plan_s']:.2f} | {r['signatures_s']:.2f} | {r['coordinator_windows_s']:.2f} | {r['shards_critical_s']:.2f} | {r['round_trips_s']:.2f} | {r['seal_s']:.2f} | {r['prepass_s'] + r['tail_s']:.2f} | {r['idle_hashed_accounts']} |")
        sat = "; ".join(f"{t}: best n={v['best_n']} ({v['best_speedup_vs_one_shard']}x), doubling gains <10% from n={v['doubling_gains_under_10pct_from_n']}" for t, v in wl["saturation"].items())
        check = ["| transport | n | in fit | others' runnable threads | measured s | predicted s (cores shared) | error | predicted s (2 idle cores) | error | signatures wall, measured / predicted s | slowest shard's check CPU, measured / predicted s | slowest shard's window CPU summed, measured / predicted s | coordinator CPU in the windows, measured / predicted s | idle hashing CPU, measured / predicted s | receipts + seal, measured / predicted s |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in wl["check"]:
            check.append(f"| {c['transport']} | {c['n']} | {'yes' if c['in_fit'] else 'no'} | {c['background']} | {c['measured_s']:.2f} | {c['predicted_s']:.2f} | {c['error'] * 100:+.0f}% | "
                         f"{c['predicted_nominal_cores_s']:.2f} | {c['error_nominal_cores'] * 100:+.0f}% | {c['measured_signatures_s']:.2f} / {c['predicted_signatures_s']:.2f} | "
                         f"{c['measured_signatures_critical_cpu_s']:.2f} / {c['predicted_signatures_critical_cpu_s']:.2f} | {c['measured_windows_critical_cpu_s']:.2f} / {c['predicted_windows_critical_cpu_s']:.2f} | "
                         f"{c['measured_coordinator_windows_cpu_s']:.2f} / {c['predicted_coordinator_windows_cpu_s']:.2f} | "
                         f"{c['measured_idle_hash_cpu_s']:.2f} / {c['predicted_idle_hash_cpu_s']:.2f} | {c['measured_seal_s']:.2f} / {c['predicted_seal_s']:.2f} |")
        out += [f"### {head}", "\n".join(rows), f"Saturation: {sat}.", "\n".join(check), f"Roots equal to the sequential node's: {wl['roots_match']}."]
    return "\n\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--txs", type=int, default=20_000)
    parser.add_argument("--contention", type=float, action="append", help="repeat for several (default 0 and 0.1)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--process-shards", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2, 4, 8])
    parser.add_argument("--dask-workers", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2, 3, 4])
    parser.add_argument("--repeats", type=int, default=2, help="runs per transport and shard count")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--refit", type=Path, nargs="+", help="fit and predict from these files' measurements (their workloads together), measuring nothing")
    parser.add_argument("--tables", action="store_true", help="print the docs' markdown tables instead of the JSON")
    args = parser.parse_args()
    if args.refit is not None:
        stored = [json.loads(path.read_text())["measured"] for path in args.refit]
        measured = {**stored[0], "workloads": [w for m in stored for w in m["workloads"]]}
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
