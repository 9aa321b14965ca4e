"""A load driver for the service: pre-signed orders posted over HTTP by concurrent clients, each
with its own keep-alive connection, with a count and a time limit; throughput and latency out.
Used by the load test (tests/test_service_load.py) and benchmarks/service_bench.py."""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import httpx

REFERENCE_PRICE = 60_000_000_000  # micro-USD per contract, the default genesis' first perpetual's neighbourhood


def make_order_fields(n: int, accounts: Sequence[int], markets: Sequence[int], seed: int = 1) -> list[dict[str, Any]]:
    """`n` unsigned orders' fields around one price: both sides, a few ticks apart, so about half
    of them cross and fill and the books stay a few dozen levels deep. Nonces are distinct."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        is_buy = rng.random() < 0.5
        offset = rng.randint(-20, 20) * 1_000_000
        out.append({
            "account": accounts[i % len(accounts)],
            "instrument": markets[i % len(markets)],
            "is_buy": is_buy,
            "size": rng.randint(1, 5),
            "price": REFERENCE_PRICE + offset,
            "time_in_force": 0,
            "expiry": 0,
            "client_id": i,
            "nonce": seed * 10_000_000 + i,  # distinct across seeds too: an order id is the digest of its fields
        })
    return out


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
