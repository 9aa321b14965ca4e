"""A load driver for the service: pre-signed orders posted over HTTP by concurrent clients, each
with its own keep-alive connection, with a count and a time limit; throughput and latency out.
Used by the load test (tests/test_service_load.py) and benchmarks/service_bench.py."""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import httpx

REFERENCE_PRICE = 60_000_000_000  # micro-USD per contract, the default genesis' first perpetual's neighbourhood


def make_order_fields(n: int, accounts: Sequence[int], markets: Sequence[int], seed: int = 1, quotes: bool = True) -> list[dict[str, Any]]:
    """`n` unsigned orders' fields around one price: first (if `quotes`) the makers' resting quotes
    (the first half of `accounts`, eight each, four a side, as many as an account's order slots
    allow, exchange/fills.py; 10^6 contracts, so later runs trade against them too), then takers'
    IOC orders from the other accounts that cross them (each fills and leaves the book). Nonces
    are distinct and increase with the seed."""
    rng = random.Random(seed)
    makers = list(accounts[: max(1, len(accounts) // 2)])
    takers = [a for a in accounts if a not in makers] or makers
    out: list[dict[str, Any]] = []

    def add(account: int, market: int, is_buy: bool, size: int, price: int, time_in_force: int) -> None:
        i = len(out)
        out.append({
            "account": account, "instrument": market, "is_buy": is_buy, "size": size, "price": price,
            "time_in_force": time_in_force, "expiry": 0, "client_id": i,
            "nonce": seed * 10_000_000 + i,  # distinct across seeds too: an order id is the digest of its fields
        })

    for m, account in enumerate(makers if quotes else ()):
        for k in range(8):
            ticks = 1 + k // 2
            is_buy = k % 2 == 0
            add(account, markets[(m + k) % len(markets)], is_buy, 10**6, REFERENCE_PRICE + (-ticks if is_buy else ticks) * 1_000_000, 0)
    while len(out) < n:
        is_buy = rng.random() < 0.5
        add(rng.choice(takers), rng.choice(markets), is_buy, rng.randint(1, 5), REFERENCE_PRICE + (5 if is_buy else -5) * 1_000_000, 1)
    return out[:n]


def start_serve_process(home: Any, port: int, *options: str, env: dict | None = None) -> "subprocess.Popen":
    """`rollup serve` as a real process on loopback, once it answers /status; RuntimeError with its
    output if it exits or does not answer within 60 s."""
    command = [sys.executable, "-m", "rollup.cli.main", "serve", "--home", str(home), "--port", str(port), *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # a server that died says why
        if process.poll() is not None:
            raise RuntimeError(f"rollup serve exited with {process.returncode}: {process.stdout.read().decode()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/status", timeout=1.0)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("rollup serve did not answer within 60 s")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_load(base_url: str, bodies: Sequence[dict], clients: int, time_limit: float, path: str = "/orders",
             on_response: Callable[[httpx.Response], None] | None = None) -> dict[str, Any]:
    """POST every body (dealt round-robin to `clients` threads, each sending its share one after
    the other) until done or `time_limit` seconds passed. Latency is per request, send to answer."""
    shares = [list(bodies[k::clients]) for k in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[Counter] = [Counter() for _ in range(clients)]
    start_barrier = threading.Barrier(clients + 1)
    deadline: list[float] = [0.0]

    def client(k: int) -> None:
        with httpx.Client(base_url=base_url, timeout=30.0) as http:
            http.get("/status")  # connect before the clock starts
            start_barrier.wait()
            for item in shares[k]:
                if time.monotonic() > deadline[0]:
                    break
                t0 = time.perf_counter()
                response = http.post(path, json=item)
                latencies[k].append(time.perf_counter() - t0)
                statuses[k][response.status_code] += 1
                if on_response is not None:
                    on_response(response)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + time_limit
    start_barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    flat = [x for per in latencies for x in per]
    total = sum(statuses, Counter())
    return {
        "requests": len(flat),
        "offered": len(bodies),
        "clients": clients,
        "seconds": round(seconds, 3),
        "requests_per_s": round(len(flat) / seconds, 1) if seconds else None,
        "latency_ms": {
            "p50": round(1000 * statistics.median(flat), 3) if flat else None,
            "p90": round(1000 * percentile(flat, 0.90), 3) if flat else None,
            "p99": round(1000 * percentile(flat, 0.99), 3) if flat else None,
            "max": round(1000 * max(flat), 3) if flat else None,
        },
        "statuses": {str(k): v for k, v in sorted(total.items())},
        "timed_out": len(flat) < len(bodies),
    }
