"""The sequencer service: its HTTP API and WebSocket streams in-process (real SQLite journal), bad
requests, replay on start, and `rollup serve` as a real process killed with SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from websockets.sync.client import connect as ws_connect

from exchange.orders import IOC, POST_ONLY, CancelAll, sign_message
from rollup.genesis import DEFAULT_GENESIS_TIME
from rollup.signing import PLACEHOLDER_L2_SIGNATURE, get_address
from service.app import create_app, open_service
from service.journal import JOURNAL_NAME, JournalError
from tests.service_helpers import (
    DOMAIN,
    KEYS,
    PRICE,
    Clock,
    body,
    error_of,
    get_free_port,
    make_funded_home,
    sign_cancel,
    sign_order,
    start_process,
)


@pytest.fixture(scope="module")
def funded_home(tmp_path_factory) -> Path:
    """A node at genesis plus one deposit and key registration per test account (made once, copied per test)."""
    return make_funded_home(tmp_path_factory.mktemp("funded") / "home")


@pytest.fixture
def home(funded_home, tmp_path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(funded_home, target)
    return target


@pytest.fixture
def client(home):
    with TestClient(create_app(home, clock=Clock())) as c:
        yield c


order = sign_order
cancel = sign_cancel


def place(client, message, status: int = 201) -> dict:
    response = client.post("/orders", json=body(message))
    assert response.status_code == status, response.text
    return response.json()


# --- the API ----------------------------------------------------------------------------------------


def test_place_match_and_query(client) -> None:
    maker = place(client, order(1, is_buy=False, size=5))
    assert maker["status"] == "open" and maker["remaining"] == 5 and maker["command"] == 1
    taker = place(client, order(2, is_buy=True, size=3, price=PRICE + 10**6))
    # the taker fills at the maker's price, which stays with 2 contracts
    assert taker["status"] == "filled" and taker["filled"] == 3
    fills = [r for r in taker["records"] if r["type"] == "Fill"]
    assert [(f["price"], f["size"], f["maker_account"], f["taker_account"]) for f in fills] == [(PRICE, 3, 1, 2)]
    resting = client.get(f"/orders/{maker['order_id']}").json()
    assert (resting["status"], resting["filled"], resting["remaining"]) == ("open", 3, 2)
    book = client.get("/book/0").json()
    assert book["asks"] == [[PRICE, 2]] and book["bids"] == [] and book["sequence"] == 2
    trades = client.get("/trades/0").json()
    assert [(t["trade_id"], t["price"], t["size"], t["side"]) for t in trades] == [(1, PRICE, 3, "buy")]
    account = client.get("/accounts/1").json()
    assert account["address"] == get_address(KEYS[1]) and account["collateral"] == 1_000_000 * 10**6
    assert [o["order_id"] for o in account["open_orders"]] == [maker["order_id"]]
    status = client.get("/status").json()
    assert status["exchange"]["commands"] == 2 and status["exchange"]["open_orders"] == 1
    assert status["node"]["batch"] == 1 and status["node"]["root"].startswith("0x")
    # fills are matched and published, not yet settled on the rollup: the node's state is as before
    assert status["settlement"]["fills_settle_on_rollup"] is False and "without fill_to_transaction" in status["settlement"]["note"]
    assert account["positions"] == []


def test_post_only_and_ioc_outcomes_are_order_states(client) -> None:
    place(client, order(1, is_buy=False, size=2))
    crossing = place(client, order(2, is_buy=True, size=1, time_in_force=POST_ONLY))
    assert crossing["status"] == "rejected" and "post-only order would cross the best ask" in crossing["reason"]
    ioc = place(client, order(3, is_buy=True, size=5, time_in_force=IOC))
    assert (ioc["status"], ioc["filled"], ioc["reason"]) == ("cancelled", 2, "IOC: remainder cancelled")
    assert client.get("/book/0").json()["asks"] == []


def test_cancel_and_cancel_all(client) -> None:
    a = place(client, order(1, is_buy=True, size=1, price=PRICE - 1))["order_id"]
    b = place(client, order(1, is_buy=True, size=2, price=PRICE - 2, nonce=5))["order_id"]
    c = place(client, order(1, is_buy=False, size=4, instrument=1, price=PRICE + 5, nonce=6))["order_id"]
    # someone else's signature cannot cancel account 1's order
    foreign = client.request("DELETE", f"/orders/{a}", json=body(cancel(1, a, key=KEYS[2])))
    assert "is signed by" in error_of(foreign, 422, "invalid_order")
    # account 2 cancelling (with its own key) an order of account 1: the book says not yours
    not_owner = client.request("DELETE", f"/orders/{a}", json=body(cancel(2, a)))
    assert "does not belong to account 2" in error_of(not_owner, 409, "cancel_rejected")
    mismatched = client.request("DELETE", f"/orders/{b}", json=body(cancel(1, a)))
    error_of(mismatched, 400, "mismatched_order_id")
    done = client.request("DELETE", f"/orders/{a}", json=body(cancel(1, a)))
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    again = client.request("DELETE", f"/orders/{a}", json=body(cancel(1, a)))
    assert "is not open" in error_of(again, 409, "cancel_rejected")
    unsigned = CancelAll(account=1, nonce=10**6, signature=PLACEHOLDER_L2_SIGNATURE)
    error_of(client.post("/orders/cancel-all", json=body(unsigned)), 422, "invalid_order")
    signed = sign_message(unsigned, KEYS[1], DOMAIN)
    out = client.post("/orders/cancel-all", json=body(signed)).json()
    # every open order below the nonce, on every market, in instrument order
    assert out["cancelled"] == [b, c]
    assert client.get("/book/0").json()["bids"] == [] and client.get("/book/1").json()["asks"] == []
    assert client.get(f"/orders/{c}").json()["reason"].startswith("cancel-all")


def bad_order_bodies() -> list:
    good = body(order(1, is_buy=True, size=1))
    return [
        ("unsigned", {**good, "signature": PLACEHOLDER_L2_SIGNATURE}, 422, "invalid_order", "invalid signature"),
        ("wrong key", body(order(1, is_buy=True, size=1, key=KEYS[2])), 422, "invalid_order", "is signed by"),
        ("tampered", {**good, "size": 2}, 422, "invalid_order", "does not match the order and its key"),
        ("zero size", {**good, "size": 0}, 422, "invalid_request", "field 'size'"),
        ("time in force", {**good, "time_in_force": 3}, 422, "invalid_request", "time_in_force must be one of"),
        ("string price", {**good, "price": "60000"}, 422, "invalid_request", "field 'price'"),
        ("extra field", {**good, "leverage": 100}, 422, "invalid_request", "field 'leverage'"),
        ("short signature", {**good, "signature": "0x1234"}, 422, "invalid_request", "L2 signature must be 160 bytes"),
        ("unknown instrument", body(order(1, is_buy=True, size=1, instrument=999)), 422, "invalid_order", "unknown instrument 999"),
        ("no account", body(order(9, is_buy=True, size=1, key=KEYS[1])), 404, "unknown_account", "account 9 does not exist"),
        ("expired", body(order(1, is_buy=True, size=1, expiry=DEFAULT_GENESIS_TIME)), 422, "invalid_order", "order expired"),
    ]


@pytest.mark.parametrize("name, payload, status, code, reason", bad_order_bodies(), ids=[b[0] for b in bad_order_bodies()])
def test_invalid_order_changes_nothing(client, home, name, payload, status, code, reason) -> None:
    before = client.get("/book/0").json()
    assert reason in error_of(client.post("/orders", json=payload), status, code)
    assert client.get("/book/0").json() == before
    assert client.get("/status").json()["exchange"]["commands"] == 0
    assert sqlite3.connect(home / JOURNAL_NAME).execute("SELECT COUNT(*) FROM commands").fetchone()[0] == 0


def test_invalid_requests_get_precise_errors(client) -> None:
    first = order(1, is_buy=True, size=1)
    place(client, first)
    assert "duplicate order id" in error_of(client.post("/orders", json=body(first)), 409, "duplicate_order")
    not_json = client.post("/orders", content=b"{not json", headers={"content-type": "application/json"})
    assert "not valid JSON" in error_of(not_json, 422, "invalid_request")
    assert "path parameter 'order_id'" in error_of(client.get("/orders/0x12"), 422, "invalid_request")
    error_of(client.get("/orders/0x" + "ab" * 32), 404, "unknown_order")
    assert "unknown market 77" in error_of(client.get("/book/77"), 404, "unknown_market")
    assert "path parameter 'market'" in error_of(client.get("/book/btc"), 422, "invalid_request")
    error_of(client.get("/trades/0?limit=0"), 422, "invalid_request")
    error_of(client.get("/accounts/42"), 404, "unknown_account")
    error_of(client.get("/nowhere"), 404, "not_found")
    error_of(client.put("/orders"), 405, "method_not_allowed")
    unknown = cancel(1, "0x" + "0d" * 32)
    error_of(client.request("DELETE", f"/orders/{unknown.order_id}", json=body(unknown)), 404, "unknown_order")
    assert client.get("/status").json()["exchange"]["commands"] == 1


def test_openapi_schema_is_served(client) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/orders", "/orders/{order_id}", "/orders/cancel-all", "/book/{market}", "/trades/{market}", "/accounts/{account}", "/status"):
        assert path in schema["paths"], path
    assert "signature" in schema["components"]["schemas"]["Order"]["properties"]


# --- streams ----------------------------------------------------------------------------------------


def apply_delta(levels: dict[str, dict[int, int]], delta: dict) -> None:
    for side in ("bids", "asks"):
        for price, total in delta[side]:
            if total:
                levels[side][price] = total
            else:
                levels[side].pop(price, None)


def test_book_stream_snapshot_then_deltas(client) -> None:
    place(client, order(1, is_buy=False, size=4, price=PRICE + 2))
    with client.websocket_connect("/ws/book/0") as book_ws, client.websocket_connect("/ws/trades/0") as trades_ws:
        snapshot = book_ws.receive_json()
        assert snapshot["type"] == "snapshot" and snapshot["sequence"] == 1 and snapshot["asks"] == [[PRICE + 2, 4]]
        levels = {side: dict(map(tuple, snapshot[side])) for side in ("bids", "asks")}
        place(client, order(2, is_buy=False, size=1, price=PRICE + 1))
        place(client, order(3, is_buy=True, size=2, price=PRICE + 2))
        place(client, order(2, is_buy=True, size=7, price=PRICE - 5))
        last = snapshot["sequence"]
        for _ in range(3):
            delta = book_ws.receive_json()
            # no gap: each delta follows the last one applied
            assert delta["type"] == "delta" and delta["prev_sequence"] == last and delta["sequence"] == last + 1
            apply_delta(levels, delta)
            last = delta["sequence"]
        book = client.get("/book/0").json()
        assert book["sequence"] == last
        assert [list(level) for level in sorted(levels["bids"].items(), reverse=True)] == book["bids"]
        assert [list(level) for level in sorted(levels["asks"].items())] == book["asks"]
        trades = [trades_ws.receive_json() for _ in range(2)]
        assert [(t["price"], t["size"], t["side"]) for t in trades] == [(PRICE + 1, 1, "buy"), (PRICE + 2, 1, "buy")]
    with client.websocket_connect("/ws/book/5") as bad:
        assert "unknown market 5" in bad.receive_json()["message"]


# --- restart --------------------------------------------------------------------------------------


def test_replay_rebuilds_books_and_orders(home) -> None:
    clock = Clock()
    with TestClient(create_app(home, clock=clock)) as first:
        maker = place(first, order(1, is_buy=False, size=5))["order_id"]
        taker = order(2, is_buy=True, size=2)
        place(first, taker)
        place(first, order(3, is_buy=True, size=1, price=PRICE - 9))
        before = {path: first.get(path).json() for path in ("/book/0", "/trades/0", f"/orders/{maker}", "/accounts/3")}
    with TestClient(create_app(home, clock=clock)) as second:
        assert {path: second.get(path).json() for path in before} == before
        assert second.get("/status").json()["exchange"]["replayed_on_start"] == 3
        # a replayed order is still known: sending it again is a duplicate
        error_of(second.post("/orders", json=body(taker)), 409, "duplicate_order")


def test_invalid_journal_is_refused(home) -> None:
    with TestClient(create_app(home, clock=Clock())) as c:
        place(c, order(1, is_buy=False, size=5))
        place(c, order(2, is_buy=True, size=2))
    conn = sqlite3.connect(home / JOURNAL_NAME)
    conn.execute("UPDATE commands SET records = CAST('[]' AS BLOB) WHERE seq = 2")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="journal command 2: matching its message gives other records"):
        open_service(home)


# --- a real process -------------------------------------------------------------------------------


def start_server(home: Path, port: int) -> subprocess.Popen:
    return start_process(home, port, "--no-margin-check")  # a home without oracle marks: matching only


def snapshot_state(base: str, order_ids: list[str]) -> dict:
    out = {path: httpx.get(base + path).json() for path in ("/book/0", "/book/1", "/trades/0")}
    out["orders"] = [httpx.get(f"{base}/orders/{i}").json() for i in order_ids]
    for book in ("/book/0", "/book/1"):
        out[book].pop("time_ms")
    return out


@pytest.mark.slow
def test_kill_9_loses_nothing_accepted(home) -> None:
    port = get_free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(home, port)
    try:
        # a real WebSocket client on loopback gets the snapshot first
        with ws_connect(f"ws://127.0.0.1:{port}/ws/book/0") as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        messages = [
            order(1, is_buy=False, size=5),
            order(2, is_buy=True, size=2),
            order(3, is_buy=True, size=1, price=PRICE - 3),
            order(1, is_buy=True, size=9, instrument=1, price=PRICE - 1),
        ]
        ids = []
        for message in messages:
            response = httpx.post(f"{base}/orders", json=body(message))
            assert response.status_code == 201, response.text
            ids.append(response.json()["order_id"])
        cancelled = httpx.request("DELETE", f"{base}/orders/{ids[2]}", json=body(cancel(3, ids[2])))
        assert cancelled.status_code == 200, cancelled.text
        before = snapshot_state(base, ids)
        assert before["/book/0"]["asks"] == [[PRICE, 3]] and before["orders"][2]["status"] == "cancelled"
    finally:
        # SIGKILL: no shutdown handler runs, nothing is flushed by the process
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    port = get_free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(home, port)
    try:
        assert snapshot_state(base, ids) == before
        assert httpx.get(f"{base}/status").json()["exchange"]["replayed_on_start"] == 5
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_serve_initialises_an_empty_home(tmp_path) -> None:
    port = get_free_port()
    server = start_server(tmp_path / "fresh", port)
    try:
        status = httpx.get(f"http://127.0.0.1:{port}/status").json()
        assert status["node"]["batch"] == 0 and status["exchange"]["commands"] == 0
        assert len(httpx.get(f"http://127.0.0.1:{port}/markets").json()) > 0
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert (tmp_path / "fresh" / "rollup.db").exists() and (tmp_path / "fresh" / JOURNAL_NAME).exists()
