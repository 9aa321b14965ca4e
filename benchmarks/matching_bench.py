"""Matching engine benchmark: prints JSON (exchange/, docs/exchange.md).

Measures, each as the median of `--runs` runs on a seeded command stream:
- commands matched per second, one market and many (one process), at two book depths, for the
  fast book and (on a short stream) the reference book;
- the same in one process producing what the resident engine returns (`PartitionMatcher`: each
  command's canonical record bytes, as the service journals them, and the fills);
- commands per second across markets on resident workers (`ResidentEngine`, a worker process per
  partition keeping its books; routing, frames, encoding in the workers and merge included), with
  the CPU time per command of the coordinator and of the workers, and the ratio to one process
  measured in the same run; against the issue's target of 100,000 orders/s on 2 cores;
- the same on a process pool that ships the books each call (`PartitionedEngine`), for contrast;
- latency from a command's arrival to its records, with commands offered at a fixed rate
  (10,000/s: the target is p99 < 5 ms): through the resident engine (the commands that arrived
  while it was busy go in the next call: micro-batches) and, for contrast, one engine in one
  process;
- admission per signed order (pydantic validation, the order's message and id, L2 signature check), which the
  matching figures exclude: it runs before matching and in parallel;
- a cProfile of the one-market run: where the time goes.

The stream: a few accounts quote around a mid price (GTC limits within 20 ticks, some post-only),
takers cross it (IOC and GTC), owners cancel open orders (about a fifth of the commands),
sometimes cancel-all; the books start with `depth` resting orders each.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import statistics
import time

from exchange.engine import MatchingEngine
from exchange.orders import GTC, IOC, POST_ONLY
from exchange.parallel import PartitionedEngine
from exchange.records import CancelAllOrders, CancelOrder, PlaceOrder
from exchange.resident import PartitionMatcher, ResidentEngine
from rollup.executors import make_executor

T0 = 1_767_225_600_000
MID = 60_000_000  # micro-USD per contract
TICK = 10_000


def make_stream(seed: int, n: int, n_markets: int, depth: int, accounts: int = 50) -> tuple[list, list]:
    """(setup commands that build `depth` resting orders per market, the measured commands)."""
    rng = random.Random(seed)
    counter = 0

    def new_order(t: int, market: int, aggressive: bool) -> PlaceOrder:
        nonlocal counter
        counter += 1
        is_buy = rng.random() < 0.5
        if aggressive:
            price = MID + (1 if is_buy else -1) * rng.randint(0, 10) * TICK
            tif = IOC if rng.random() < 0.7 else GTC
        else:
            price = MID + (-1 if is_buy else 1) * rng.randint(1, 20) * TICK
            tif = POST_ONLY if rng.random() < 0.2 else GTC
        return PlaceOrder(t, f"0x{counter:064x}", rng.randrange(accounts), market, is_buy, rng.randint(1, 20), price, tif, 0, counter)

    setup = [new_order(T0, m, False) for m in range(n_markets) for _ in range(depth)]
    open_ids: list[tuple[int, str, int]] = [(c.instrument, c.order_id, c.account) for c in setup]
    commands = []
    t = T0
    for i in range(n):
        t += rng.choice((0, 0, 1))
        roll = rng.random()
        market = rng.randrange(n_markets)
        if roll < 0.2 and open_ids:
            m, order_id, account = open_ids.pop(rng.randrange(len(open_ids)))
            commands.append(CancelOrder(t, account, m, order_id))
        elif roll < 0.201:
            commands.append(CancelAllOrders(t, rng.randrange(accounts), counter - 5 * depth))
        else:
            command = new_order(t, market, aggressive=roll > 0.75)
            commands.append(command)
            if command.time_in_force != IOC:
                open_ids.append((market, command.order_id, command.account))
    return setup, commands


def markets_of(n: int) -> list[tuple[int, None]]:
    return [(m, None) for m in range(n)]


def measure_sequential(n: int, n_markets: int, depth: int, book: str, seed: int) -> dict:
    setup, commands = make_stream(seed, n, n_markets, depth)
    engine = MatchingEngine(markets_of(n_markets), book)
    engine.process_all(setup)
    cpu_before = time.process_time()
    start = time.perf_counter()
    records = engine.process_all(commands)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_before
    resting = sum(len(b.get_open_orders()) for b in engine.books.values())
    return {"seconds": elapsed, "commands_per_s": n / elapsed, "cpu_us_per_command": cpu / n * 1e6, "records": len(records), "resting_after": resting}


def measure_parallel(n: int, n_markets: int, depth: int, workers: int, partitions: int, seed: int) -> dict:
    setup, commands = make_stream(seed, n, n_markets, depth)
    engine = PartitionedEngine(markets_of(n_markets), partitions)
    with make_executor("process", workers) as executor:
        engine.process_all(setup, executor)
        start = time.perf_counter()
        records = engine.process_all(commands, executor)
        elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "commands_per_s": n / elapsed, "records": len(records)}


def measure_same_output(n: int, n_markets: int, depth: int, seed: int) -> dict:
    """One process, the resident engine's output: each command's canonical bytes and the fills."""
    setup, commands = make_stream(seed, n, n_markets, depth)
    engine = MatchingEngine(markets_of(n_markets))
    engine.process_all(setup)
    matcher = PartitionMatcher(engine.books)
    cpu_before = time.process_time()
    start = time.perf_counter()
    matcher.match([tuple(c) for c in commands])  # the conversion the coordinator does, counted
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_before
    return {"seconds": elapsed, "commands_per_s": n / elapsed, "cpu_us_per_command": cpu / n * 1e6}


def measure_resident(n: int, n_markets: int, depth: int, partitions: int, seed: int) -> dict:
    setup, commands = make_stream(seed, n, n_markets, depth)
    with ResidentEngine(markets_of(n_markets), partitions) as engine:
        engine.match(setup)
        workers_before = engine.get_cpu_seconds()
        cpu_before = time.process_time()
        start = time.perf_counter()
        matched = engine.match(commands)
        elapsed = time.perf_counter() - start
        coordinator_cpu = time.process_time() - cpu_before
        workers_cpu = [after - before for before, after in zip(workers_before, engine.get_cpu_seconds())]
    return {
        "seconds": elapsed, "commands_per_s": n / elapsed, "fills": len(matched.fills),
        "coordinator_cpu_us_per_command": coordinator_cpu / n * 1e6, "workers_cpu_us_per_command": sum(workers_cpu) / n * 1e6,
    }


def measure_resident_latency(rate: float, seconds: float, n_markets: int, depth: int, partitions: int, seed: int) -> dict:
    """Commands offered at `rate` per second through resident workers: each call takes every
    command that has arrived (one, if the engine keeps up); latency = when the call returns minus
    the command's scheduled arrival."""
    n = int(rate * seconds)
    setup, commands = make_stream(seed, n, n_markets, depth)
    latencies: list[float] = []
    calls = 0
    with ResidentEngine(markets_of(n_markets), partitions) as engine:
        engine.match(setup)
        start = time.perf_counter()
        i = 0
        while i < n:
            due = min(n, int((time.perf_counter() - start) * rate) + 1)
            if due <= i:
                continue  # busy-wait for the next arrival
            engine.match(commands[i:due])
            done = time.perf_counter()
            latencies += [done - (start + k / rate) for k in range(i, due)]
            calls += 1
            i = due
    return {"commands": n, "calls": calls, **percentiles(latencies)}


def percentiles(latencies: list[float]) -> dict:
    latencies = sorted(latencies)

    def at(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3

    return {"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "p999_ms": at(0.999), "max_ms": latencies[-1] * 1e3}


def measure_latency(rate: float, seconds: float, n_markets: int, depth: int, seed: int) -> dict:
    """Commands offered at `rate` per second (busy-waiting for each arrival); latency = the time
    its records are out minus its scheduled arrival, so queueing behind a slow command counts."""
    n = int(rate * seconds)
    setup, commands = make_stream(seed, n, n_markets, depth)
    engine = MatchingEngine(markets_of(n_markets))
    engine.process_all(setup)
    latencies = []
    process = engine.process
    start = time.perf_counter()
    for i, command in enumerate(commands):
        arrival = start + i / rate
        while time.perf_counter() < arrival:
            pass
        process(command)
        latencies.append(time.perf_counter() - arrival)
    return {"commands": n, **percentiles(latencies)}


def measure_admission(n: int) -> dict:
    from exchange.engine import admit
    from exchange.orders import Order, sign_message
    from rollup.genesis import DEFAULT_GENESIS_TIME, default_genesis
    from rollup.signing import PLACEHOLDER_L2_SIGNATURE, derive_l2_key, dev_account_key, dev_oracle_key, get_address

    genesis = default_genesis(get_address(dev_oracle_key(1)))
    key = derive_l2_key(dev_account_key(1, 0), genesis.signing_domain)  # orders are signed with L2 keys
    raw = []
    for i in range(n):
        order = Order(account=0, instrument=0, is_buy=i % 2 == 0, size=1 + i % 7, price=MID + i, time_in_force=GTC,
                      expiry=0, client_id=i, nonce=i, signature=PLACEHOLDER_L2_SIGNATURE)
        raw.append(sign_message(order, key, genesis.signing_domain).model_dump())
    start = time.perf_counter()
    for fields in raw:
        admit(Order.model_validate(fields), genesis, key.key_id, DEFAULT_GENESIS_TIME * 1000)
    elapsed = time.perf_counter() - start
    return {"orders": n, "us_per_order": elapsed / n * 1e6, "orders_per_s_one_core": n / elapsed}


def profile_one_market(n: int, depth: int, seed: int) -> list[dict]:
    setup, commands = make_stream(seed, n, 1, depth)
    engine = MatchingEngine(markets_of(1))
    engine.process_all(setup)
    profiler = cProfile.Profile()
    profiler.enable()
    engine.process_all(commands)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():
        rows.append({"function": f"{os.path.basename(filename)}:{line}({name})", "calls": calls, "tottime_s": round(tottime, 4), "cumtime_s": round(cumtime, 4)})
    rows.sort(key=lambda r: -r["tottime_s"])
    return rows[:12]


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000, help="commands per throughput run")
    parser.add_argument("--markets", type=int, default=16)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=10_000.0)
    args = parser.parse_args()

    result: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_at_start": os.getloadavg()},
        "stream": "quotes within 20 ticks of the mid (20% post-only), 25% takers (70% IOC), 20% cancels, 0.1% cancel-all",
        "runs": args.runs,
        "throughput": [],
    }
    for label, n_markets, depth, book, n in (
        ("fast, 1 market, depth 100", 1, 100, "fast", args.orders),
        ("fast, 1 market, depth 10000", 1, 10_000, "fast", args.orders),
        (f"fast, {args.markets} markets, depth 100 each, one process", args.markets, 100, "fast", args.orders),
        ("reference, 1 market, depth 100", 1, 100, "reference", 5_000),
    ):
        runs = [measure_sequential(n, n_markets, depth, book, seed) for seed in range(args.runs)]
        result["throughput"].append({
            "case": label, "commands": n, "commands_per_s_median": round(median_of(runs, "commands_per_s")),
            "commands_per_s_runs": [round(r["commands_per_s"]) for r in runs], "cpu_us_per_command_median": round(median_of(runs, "cpu_us_per_command"), 2),
            "records_per_run": runs[0]["records"],
            "resting_orders_after": runs[0]["resting_after"],
        })
    n_markets, partitions = args.markets, args.workers
    one_process = result["throughput"][2]["commands_per_s_median"]
    # one process and the resident engine alternate, seed by seed: a change of load on a shared
    # machine falls on both
    pairs = [(measure_same_output(args.orders, n_markets, 100, seed), measure_resident(args.orders, n_markets, 100, partitions, seed)) for seed in range(args.runs)]
    runs = [one for one, _ in pairs]
    same_output = round(median_of(runs, "commands_per_s"))
    result["throughput"].append({
        "case": f"fast, {n_markets} markets, depth 100 each, one process, the resident engine's output (canonical bytes per command, fills)",
        "commands": args.orders, "commands_per_s_median": same_output, "commands_per_s_runs": [round(r["commands_per_s"]) for r in runs],
        "cpu_us_per_command_median": round(median_of(runs, "cpu_us_per_command"), 2),
    })
    runs = [resident for _, resident in pairs]
    resident = round(median_of(runs, "commands_per_s"))
    result["throughput"].append({
        "case": f"fast, {n_markets} markets, depth 100 each, ResidentEngine: {partitions} worker processes (one partition each) and the coordinator",
        "commands": args.orders, "commands_per_s_median": resident, "commands_per_s_runs": [round(r["commands_per_s"]) for r in runs],
        "coordinator_cpu_us_per_command_median": round(median_of(runs, "coordinator_cpu_us_per_command"), 2),
        "workers_cpu_us_per_command_median": round(median_of(runs, "workers_cpu_us_per_command"), 2),
        "ratio_to_one_process_same_output": round(resident / same_output, 2),
        "ratio_to_one_process_matching_only": round(resident / one_process, 2),
        # what the commands cost in CPU, whatever else the machine runs: with two cores of its own the
        # engine would reach at most 2 / (coordinator + workers) commands per second (no stall, no other load)
        "upper_bound_commands_per_s_on_2_free_cores": round(2e6 / (median_of(runs, "coordinator_cpu_us_per_command") + median_of(runs, "workers_cpu_us_per_command"))),
    })
    runs = [measure_parallel(args.orders, n_markets, 100, args.workers, partitions, seed) for seed in range(args.runs)]
    result["throughput"].append({
        "case": f"fast, {n_markets} markets, depth 100 each, PartitionedEngine: {args.workers} pool processes, {partitions} partitions (books shipped each call, the coordinator matches one)",
        "commands": args.orders, "commands_per_s_median": round(median_of(runs, "commands_per_s")),
        "commands_per_s_runs": [round(r["commands_per_s"]) for r in runs],
    })
    resident_latency = [measure_resident_latency(args.rate, args.latency_seconds, n_markets, 100, partitions, seed) for seed in range(args.runs)]
    result["latency_resident"] = {
        "offered_per_s": args.rate,
        "case": f"{n_markets} markets, depth 100 each, ResidentEngine with {partitions} workers; arrival -> records (bytes) and fills back in the coordinator",
        "median_over_runs": {k: round(median_of(resident_latency, k), 4) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")},
        "runs": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in resident_latency],
    }
    latency_runs = [measure_latency(args.rate, args.latency_seconds, n_markets, 100, seed) for seed in range(args.runs)]
    result["latency_one_process"] = {
        "offered_per_s": args.rate,
        "case": f"{n_markets} markets, depth 100 each, one engine in one process, a command at a time; arrival -> records out",
        "median_over_runs": {k: round(median_of(latency_runs, k), 4) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")},
        "runs": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in latency_runs],
    }
    result["admission"] = measure_admission(2_000)
    result["profile_one_market_depth_100"] = profile_one_market(args.orders // 2, 100, 0)
    p99 = result["latency_resident"]["median_over_runs"]["p99_ms"]
    result["targets"] = {
        "orders_per_s_across_markets_2_cores": {"target": 100_000, "measured_resident": resident, "met": resident >= 100_000},
        "p99_ms_at_10k_per_s": {"target": 5.0, "measured_resident": p99, "met": p99 < 5.0},
        "note": "matching only: admission (signature recovery) is per order before matching; see admission",
    }
    result["machine"]["load_average_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
