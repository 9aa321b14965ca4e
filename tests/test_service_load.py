"""A bounded load test: signed orders POSTed over loopback by a real HTTP client (one, then four
concurrent) to a real `rollup serve` process, with a count and a time limit; it reports the
throughput and latency it saw (printed, and as test properties) and checks that every order was
accepted and journaled once. Numbers to quote come from benchmarks/service_bench.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from service.journal import JOURNAL_NAME
from service.load import make_order_fields, run_load
from tests.service_helpers import ACCOUNTS, body, get_free_port, make_funded_home, sign_order, start_process

ORDERS = 300  # per phase
TIME_LIMIT_S = 30.0  # per phase: a machine this slow fails the test rather than stall the suite


@pytest.fixture
def home(tmp_path_factory) -> Path:
    return make_funded_home(tmp_path_factory.mktemp("load") / "home")


def signed_bodies(n: int, seed: int) -> list[dict]:
    # the first run posts the makers' quotes, later runs take from them
    return [body(sign_order(**fields)) for fields in make_order_fields(n, ACCOUNTS, markets=(0, 1), seed=seed, quotes=seed == 1)]


@pytest.mark.slow
def test_load_over_http(home, record_property) -> None:
    port = get_free_port()
    server = start_process(home, port, "--no-margin-check")  # a home without oracle marks: the order path alone
    base = f"http://127.0.0.1:{port}"
    try:
        one = run_load(base, signed_bodies(ORDERS, seed=1), clients=1, time_limit=TIME_LIMIT_S)
        four = run_load(base, signed_bodies(ORDERS, seed=2), clients=4, time_limit=TIME_LIMIT_S)
        commands = httpx.get(f"{base}/status").json()["exchange"]["commands"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    for name, result in (("1 client", one), ("4 clients", four)):
        print(f"load {name}: {json.dumps(result)}")
        record_property(name, json.dumps(result))
        # within the time limit, every order answered 201 (accepted, matched, journaled)
        assert not result["timed_out"] and result["statuses"] == {"201": ORDERS}, result
        assert result["latency_ms"]["p50"] <= result["latency_ms"]["p99"] <= result["latency_ms"]["max"]
    assert commands == 2 * ORDERS
    assert sqlite3.connect(home / JOURNAL_NAME).execute("SELECT COUNT(*) FROM commands").fetchone()[0] == 2 * ORDERS
