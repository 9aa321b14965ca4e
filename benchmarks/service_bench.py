"""Service benchmark: prints JSON (service/, docs/service.md).

A real `rollup serve` process on loopback, on a fresh node with funded accounts; pre-signed orders
POSTed over HTTP (httpx, keep-alive) by 1, 2, 4 and 8 concurrent clients (threads of this
process, each sending its share one after the other), each case the median of `--runs` runs:
- POST /orders: orders/s and latency percentiles (request sent -> answer read): admission
  (signature recovery), matching, the journal's SQLite commit, the HTTP round trip;
- POST /transactions (deposits, one client: they must arrive in deposit-id order) while the batcher cuts batches of `--batch-size`: queued/s and
  latency, and how long the last batch took to be executed after the last answer.
Signing happens before the clock starts. The clients share the 2 cores with the server: the
numbers are for this whole setup, not the server alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from exchange.orders import Order, sign_message
from rollup.genesis import default_genesis
from rollup.node import Node
from rollup.signing import PLACEHOLDER_L2_SIGNATURE, derive_l2_key, sign, unsigned, dev_account_key, dev_oracle_key, get_address
from service.load import make_order_fields, run_load, start_serve_process
from verifier import wire

SEED = 7
ACCOUNTS = tuple(range(16))
FUNDS = 10**9 * 10**6


def make_home(path: Path) -> tuple[Path, wire.Genesis]:
    genesis = default_genesis(get_address(dev_oracle_key(SEED)), n_perps=2, n_series=2)
    node = Node.init(path, genesis)
    node.submit([wire.Deposit(deposit_id=i, account=a, address=get_address(dev_account_key(SEED, a)), amount=FUNDS) for i, a in enumerate(ACCOUNTS)])
    # orders are signed with the L2 key each wallet key derives: registered first
    domain = genesis.signing_domain
    node.submit([
        sign(unsigned(wire.RegisterKey, account=a, address=get_address(dev_account_key(SEED, a)),
                      key_id=derive_l2_key(dev_account_key(SEED, a), domain).key_id, nonce=0), [dev_account_key(SEED, a)], domain)
        for a in ACCOUNTS
    ])
    node.close()
    return path, genesis


def sign_orders(fields: list[dict], genesis: wire.Genesis) -> list[dict]:
    keys = {a: dev_account_key(SEED, a) for a in ACCOUNTS}
    domain = genesis.signing_domain
    return [json.loads(sign_message(Order(**f, signature=PLACEHOLDER_L2_SIGNATURE), keys[f["account"]], domain).model_dump_json()) for f in fields]


def start_server(home: Path, port: int, *options: str) -> subprocess.Popen:
    try:
        return start_serve_process(home, port, *options)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median_result(runs: list[dict]) -> dict:
    return {
        "requests_per_s_median": round(statistics.median(r["requests_per_s"] for r in runs), 1),
        "latency_ms_median_of_runs": {k: round(statistics.median(r["latency_ms"][k] for r in runs), 3) for k in ("p50", "p90", "p99", "max")},
        "requests_per_s_runs": [r["requests_per_s"] for r in runs],
        "statuses": [r["statuses"] for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000, help="orders per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=str, default="1,2,4,8", help="concurrent client counts")
    parser.add_argument("--transactions", type=int, default=1_000, help="deposits per /transactions run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per run at most")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]

    result: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_at_start": os.getloadavg()},
        "setup": f"`rollup serve` process, {len(ACCOUNTS)} funded accounts, 2 perps + 2 series; the makers' resting quotes "
                 "(first run), then IOC takers crossing them on 2 markets; httpx keep-alive clients as threads of the benchmark process",
        "orders_per_run": args.orders,
        "runs": args.runs,
        "orders": [],
    }
    folder = Path(tempfile.mkdtemp(prefix="service_bench_"))
    try:
        home, genesis = make_home(folder / "home")
        port = free_port()
        server = start_server(home, port, "--batch-size", str(args.batch_size), "--batch-seconds", "0.5", "--no-margin-check")
        base = f"http://127.0.0.1:{port}"
        seed = 1
        try:
            for n_clients in clients:
                runs = []
                for _ in range(args.runs):
                    bodies = sign_orders(make_order_fields(args.orders, ACCOUNTS, (0, 1), seed=seed, quotes=seed == 1), genesis)
                    seed += 1
                    runs.append(run_load(base, bodies, n_clients, args.time_limit))
                result["orders"].append({"clients": n_clients, **median_result(runs)})
            runs = []
            next_deposit = len(ACCOUNTS)
            for _ in range(args.runs):
                bodies = [
                    json.loads(wire.Deposit(deposit_id=next_deposit + i, account=next_deposit + i, address=get_address(dev_account_key(SEED, 0)), amount=10**6).model_dump_json())
                    for i in range(args.transactions)
                ]
                next_deposit += args.transactions
                # one client: deposits must reach the queue in deposit-id order (concurrent clients would reorder them)
                runs.append(run_load(base, bodies, 1, args.time_limit, path="/transactions"))
                t0 = time.perf_counter()
                while httpx.get(f"{base}/status").json()["batcher"]["pending"]:
                    time.sleep(0.01)
                runs[-1]["drain_s"] = round(time.perf_counter() - t0, 3)
            status = httpx.get(f"{base}/status").json()
            result["transactions"] = {
                "clients": 1, "batch_size": args.batch_size, "per_run": args.transactions, **median_result(runs),
                "queue_drained_after_last_answer_s": [r["drain_s"] for r in runs],
                "node_batches": status["node"]["batch"], "batches_cut": status["batcher"]["batches_cut"],
            }
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    best = max(result["orders"], key=lambda r: r["requests_per_s_median"])
    result["summary"] = {
        "one_client": {"orders_per_s": result["orders"][0]["requests_per_s_median"], **result["orders"][0]["latency_ms_median_of_runs"]},
        "best": {"clients": best["clients"], "orders_per_s": best["requests_per_s_median"], **best["latency_ms_median_of_runs"]},
    }
    result["machine"]["load_average_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
