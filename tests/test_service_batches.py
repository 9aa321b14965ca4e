"""The service's rollup side over real loopback sockets (uvicorn, httpx, websockets): rollup
transactions queued, batched on size and on time, their receipts; the batch, marks and account
streams; the account view against `rollup risk`; hostile requests; the fill seam; exactly once
across `kill -9` of a real `rollup serve`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner
from websockets.sync.client import connect as ws_connect

from exchange.fills import make_fill_builder
from rollup.cli.main import app as cli_app
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.node import Node
from rollup.storage import Store
from service.app import create_app
from service.batcher import BatchOptions
from service.journal import JOURNAL_NAME
from rollup.txfile import TRANSACTION_ADAPTER
from verifier.wire import ORDER_SLOTS
from tests.service_helpers import (
    KEYS,
    PRICE,
    Clock,
    body,
    deposit,
    error_of,
    get_free_port,
    make_funded_home,
    run_server,
    sign_order,
    start_process,
    wait_for,
    withdraw,
)


@pytest.fixture(scope="module")
def funded_home(tmp_path_factory) -> Path:
    return make_funded_home(tmp_path_factory.mktemp("funded") / "home")


@pytest.fixture
def home(funded_home, tmp_path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(funded_home, target)
    return target


def serve(home: Path, **options):
    """A real server on loopback for `home` with these batch options."""
    fill = options.pop("fill_to_transaction", None)
    margin_check = options.pop("margin_check", False)
    return run_server(create_app(home, clock=Clock(), options=BatchOptions(**options), fill_to_transaction=fill, margin_check=margin_check))


def count_pending(home: Path, where: str = "1") -> int:
    return sqlite3.connect(home / JOURNAL_NAME).execute(f"SELECT COUNT(*) FROM pending WHERE {where}").fetchone()[0]


def get_transaction(base: str, pending_id: int) -> dict:
    return httpx.get(f"{base}/transactions/{pending_id}").json()


def post(base: str, tx, status: int = 202) -> dict:
    response = httpx.post(f"{base}/transactions", json=body(tx))
    assert response.status_code == status, response.text
    return response.json()


# --- batching --------------------------------------------------------------------------------------


def test_batched_on_size_with_receipts(home) -> None:
    with serve(home, batch_size=3, batch_seconds=3600) as addr:
        base = f"http://{addr}"
        with ws_connect(f"ws://{addr}/ws/batches") as ws:
            snapshot = json.loads(ws.recv(timeout=10))
            # the funded home's batch, made before this service: recorded on start, holding none of its transactions
            assert snapshot["type"] == "snapshot" and [b["number"] for b in snapshot["batches"]] == [1]
            first = post(base, deposit(3, 4))
            second = post(base, withdraw(1, 5 * 10**6, nonce=1))
            assert first["state"] == "pending" and first["tx_hash"].startswith("0x")
            time.sleep(0.3)
            # two of three: nothing is cut before the size or the clock says so
            assert [b["number"] for b in httpx.get(f"{base}/batches").json()] == [1] and get_transaction(base, first["id"])["state"] == "pending"
            third = post(base, withdraw(2, 10**6, nonce=7))  # wrong nonce: rejected by the rules
            event = json.loads(ws.recv(timeout=10))
        assert event["type"] == "batch" and event["state"] == "executed" and event["prev_sequence"] == snapshot["sequence"]
        assert (event["number"], event["n_tx"], event["n_accepted"]) == (2, 3, 2)
        assert [get_transaction(base, t["id"])["state"] for t in (first, second, third)] == ["accepted", "accepted", "rejected"]
        assert "nonce" in get_transaction(base, third["id"])["reason"]
        assert get_transaction(base, second["id"])["batch"] == 2
        batch = httpx.get(f"{base}/batches/2").json()
        assert batch["new_root"] == httpx.get(f"{base}/status").json()["node"]["root"] == event["new_root"]
        assert httpx.get(f"{base}/accounts/4").json()["collateral"] == 1_000_000 * 10**6
        assert httpx.get(f"{base}/accounts/1").json()["collateral"] == (1_000_000 - 5) * 10**6
        error_of(httpx.get(f"{base}/batches/9"), 404, "unknown_batch")
    # the node's own record: one batch with the three transactions, in queue order
    store = Store.open(home)
    assert [json.loads(t)["type"] for t in store.get_transactions(2)] == ["deposit", "withdraw", "withdraw"]
    store.close()


def test_batched_on_time(home) -> None:
    with serve(home, batch_size=100, batch_seconds=0.4) as addr:
        base = f"http://{addr}"
        posted = time.monotonic()
        pending = post(base, deposit(3, 5))
        wait_for(lambda: get_transaction(base, pending["id"])["state"] != "pending", 10, "the clock's batch")
        waited = time.monotonic() - posted
        done = get_transaction(base, pending["id"])
        assert done["state"] == "accepted" and done["batch"] == 2
        # cut by the clock, not before it
        assert waited >= 0.35, waited
        status = httpx.get(f"{base}/status").json()
        assert status["batcher"]["pending"] == 0 and status["batcher"]["batches_cut"] == 1 and status["node"]["batch"] == 2


def test_hostile_transactions_change_nothing(home) -> None:
    good = body(withdraw(1, 10**6, nonce=1))
    cases = [
        (b"{not json", 422, "invalid_request", "not valid JSON"),
        (json.dumps({**good, "type": "mint"}).encode(), 422, "invalid_request", "does not match any of the expected tags"),
        (json.dumps({**good, "amount": "lots"}).encode(), 422, "invalid_request", "field 'withdraw.amount'"),
        (json.dumps({**good, "amount": 0}).encode(), 422, "invalid_request", "greater than 0"),
        (json.dumps([good]).encode(), 422, "invalid_request", ""),
        (json.dumps({**good, "amount": 2 * 10**6}).encode(), 422, "invalid_signature", "not by the account's address"),
        (json.dumps(body(withdraw(1, 10**6, nonce=0, key=KEYS[2]))).encode(), 422, "invalid_signature", "not by the account's address"),
        (json.dumps({**good, "signature": "0x" + "00" * 65}).encode(), 422, "invalid_signature", "withdraw:"),
        (json.dumps(body(withdraw(9, 10**6, nonce=0, key=KEYS[1]))).encode(), 404, "unknown_account", "account 9 does not exist"),
        (b"[" * 300_000, 413, "body_too_large", "over the 262,144-byte limit"),
    ]
    with serve(home, batch_size=1, batch_seconds=0.05) as addr:
        base = f"http://{addr}"
        for payload, status, code, reason in cases:
            response = httpx.post(f"{base}/transactions", content=payload, headers={"content-type": "application/json"})
            assert reason in error_of(response, status, code), payload[:80]

        # a chunked body (no Content-Length) is cut off while it streams in
        def chunks():
            for _ in range(40):
                yield b" " * 10_000

        streamed = httpx.post(f"{base}/transactions", content=chunks(), headers={"content-type": "application/json"})
        assert "over the 262,144-byte limit" in error_of(streamed, 413, "body_too_large")
        huge_order = httpx.post(f"{base}/orders", content=b"x" * 300_000, headers={"content-type": "application/json"})
        error_of(huge_order, 413, "body_too_large")
        error_of(httpx.get(f"{base}/transactions/0"), 422, "invalid_request")
        error_of(httpx.get(f"{base}/transactions/77"), 404, "unknown_transaction")
        error_of(httpx.get(f"{base}/accounts/-1"), 422, "invalid_request")
        error_of(httpx.get(f"{base}/accounts/1?vol=-1"), 422, "invalid_request")
        assert httpx.get(f"{base}/status").json()["node"]["batch"] == 1
    assert count_pending(home) == 0


# --- streams and views -----------------------------------------------------------------------------


def test_oracle_clock_marks_stream(home) -> None:
    with serve(home, batch_size=100, batch_seconds=0.1, oracle_seconds=0.3) as addr:
        base = f"http://{addr}"
        with ws_connect(f"ws://{addr}/ws/marks") as ws:
            snapshot = json.loads(ws.recv(timeout=10))
            assert snapshot["type"] == "snapshot" and all(m["mark"] is None for m in snapshot["marks"])
            first = json.loads(ws.recv(timeout=20))
            second = json.loads(ws.recv(timeout=20))
        assert (first["type"], first["prev_sequence"], second["prev_sequence"]) == ("marks", snapshot["sequence"], first["sequence"])
        assert second["oracle_time"] > first["oracle_time"] > snapshot["oracle_time"]
        perp = next(m for m in second["marks"] if m["funding_index"] is not None)
        assert perp["mark"] > 0
        marks = httpx.get(f"{base}/marks").json()
        assert marks["oracle_time"] >= second["oracle_time"]
    # the updates are signed by the genesis' oracle and executed in order: all accepted
    rows = sqlite3.connect(home / JOURNAL_NAME).execute("SELECT source, status FROM pending WHERE batch IS NOT NULL").fetchall()
    assert len(rows) >= 2 and set(rows) == {("oracle", "accepted")}


def test_account_stream_orders_and_fills(home) -> None:
    with serve(home, batch_size=10, batch_seconds=10) as addr:
        base = f"http://{addr}"
        maker = httpx.post(f"{base}/orders", json=body(sign_order(1, is_buy=False, size=5))).json()
        with ws_connect(f"ws://{addr}/ws/account/1") as ws1, ws_connect(f"ws://{addr}/ws/account/2") as ws2:
            snapshot = json.loads(ws1.recv(timeout=10))
            assert [o["order_id"] for o in snapshot["open_orders"]] == [maker["order_id"]]
            assert json.loads(ws2.recv(timeout=10))["open_orders"] == []
            taker = httpx.post(f"{base}/orders", json=body(sign_order(2, is_buy=True, size=2, price=PRICE + 10))).json()
            fill = json.loads(ws1.recv(timeout=10))
            taker_events = [json.loads(ws2.recv(timeout=10)) for _ in range(2)]
        assert fill["type"] == "fill" and fill["maker_order_id"] == maker["order_id"] and fill["size"] == 2
        assert fill["prev_account_sequence"] == snapshot["account_sequence"]
        assert [e["type"] for e in taker_events] == ["fill", "order"]
        assert taker_events[1]["order_id"] == taker["order_id"] and taker_events[1]["status"] == "filled"
        assert taker_events[1]["account_sequence"] == taker_events[0]["account_sequence"] + 1
        with ws_connect(f"ws://{addr}/ws/account/42") as bad:
            assert json.loads(bad.recv(timeout=10))["code"] == "unknown_account"


def test_account_view_matches_rollup_risk(tmp_path) -> None:
    """Positions, margin and Greeks of the service equal `rollup risk`'s for the same node."""
    workload = generate_workload(WorkloadSpec(accounts=6, perps=2, series=2, txs=60, seed=3, tree_depth=3), workers=1)
    home = tmp_path / "home"
    node = Node.init(home, workload.genesis)
    node.submit(workload.transactions)
    holders = [a for a, acct in node.state.accounts.items() if acct.positions]
    node.close()
    assert holders
    account = holders[0]
    cli = CliRunner().invoke(cli_app, ["risk", str(account), "--home", str(home), "--json", "--vol", "0.5"])
    assert cli.exit_code == 0, cli.output
    expected = json.loads(cli.output)
    with serve(home) as addr:
        view = httpx.get(f"http://{addr}/accounts/{account}?vol=0.5").json()
    assert (view["equity"], view["initial_margin"], view["maintenance_margin"]) == (
        expected["equity"], expected["initial_margin"], expected["maintenance_margin"])
    assert view["initial_margin"] > view["maintenance_margin"] > 0
    assert view["greeks"]["by_underlying"] == expected["by_underlying"]
    assert view["greeks"]["delta_usd"] == pytest.approx(expected["greeks"]["delta_usd"])
    assert {p["instrument"] for p in view["positions"]} and all(p["size"] != 0 for p in view["positions"])


# --- the fill seam ---------------------------------------------------------------------------------


def test_fills_settle_as_fill_transactions(home) -> None:
    """Crossing orders over HTTP: each fill is queued with its command as a `Fill` (both signed
    orders), batched, and accepted by the node, which then holds the positions and the order slots;
    a restart replays the orders but queues no fill twice."""
    fee = 7
    with serve(home, batch_size=2, batch_seconds=3600, oracle_seconds=0.2, fill_to_transaction=make_fill_builder(fee), margin_check=True) as addr:
        base = f"http://{addr}"
        # fills need the oracle's marks and risk arrays: the oracle clock's first update
        wait_for(lambda: httpx.get(f"{base}/marks").json()["marks"][0]["mark"] is not None, 20, "the first oracle update")
        httpx.post(f"{base}/orders", json=body(sign_order(1, is_buy=False, size=5, nonce=11)))
        taker = httpx.post(f"{base}/orders", json=body(sign_order(2, is_buy=True, size=3, price=PRICE + 10, nonce=12, max_fee=10))).json()
        assert taker["status"] == "filled"
        httpx.post(f"{base}/orders", json=body(sign_order(3, is_buy=True, size=2, price=PRICE + 10, nonce=13, max_fee=10)))
        assert count_pending(home, "source = 'fill'") == 2
        # an order whose full fill would break initial margin never reaches the book
        refused = httpx.post(f"{base}/orders", json=body(sign_order(3, is_buy=True, size=10**6, price=PRICE, nonce=14)))
        assert "the order filled in full would be refused by the rollup: insufficient margin" in error_of(refused, 422, "invalid_order")
        wait_for(lambda: count_pending(home, "source = 'fill' AND batch IS NOT NULL") == 2, 20, "the fills' batch")
        status = httpx.get(f"{base}/status").json()
        assert status["settlement"]["fills_settle_on_rollup"] is True
    rows = sqlite3.connect(home / JOURNAL_NAME).execute("SELECT status FROM pending WHERE source = 'fill'").fetchall()
    assert rows == [("accepted",), ("accepted",)], rows
    node = Node.open(home)
    try:
        accounts = node.state.accounts
        assert accounts[2].positions[0].size == 3 and accounts[3].positions[0].size == 2 and accounts[1].positions[0].size == -5
        assert accounts[1].orders[11 % ORDER_SLOTS] == (11, 5) and accounts[2].orders[12 % ORDER_SLOTS] == (12, 3)
    finally:
        node.close()
    store = Store.open(home)
    try:
        raw = [tx for b in range(1, store.latest_batch().number + 1) for tx in store.get_transactions(b)]
    finally:
        store.close()
    fills = [f for f in (TRANSACTION_ADAPTER.validate_json(tx) for tx in raw) if f.type == "fill"]
    assert [(f.taker, f.maker, f.size, f.price, f.fee) for f in fills] == [(2, 1, 3, PRICE, 3 * fee), (3, 1, 2, PRICE, 2 * fee)]
    assert fills[0].maker_signature == fills[1].maker_signature  # one signed maker order, two fills
    # a restart replays the orders but queues no fill twice
    with serve(home, batch_size=2, batch_seconds=3600, fill_to_transaction=make_fill_builder(fee)) as addr:
        assert httpx.get(f"http://{addr}/status").json()["exchange"]["replayed_on_start"] == 3
    assert count_pending(home, "source = 'fill'") == 2


def test_invalid_order_in_a_busy_order_slot(home) -> None:
    """An order whose slot (nonce % 8) an open order of the account uses is refused at admission:
    once one of them filled, the other's fills would be refused by the rollup."""
    with serve(home, batch_size=10, batch_seconds=3600) as addr:
        base = f"http://{addr}"
        first = httpx.post(f"{base}/orders", json=body(sign_order(1, is_buy=False, size=5, nonce=3))).json()
        busy = httpx.post(f"{base}/orders", json=body(sign_order(1, is_buy=False, size=4, nonce=3 + ORDER_SLOTS)))
        message = error_of(busy, 422, "invalid_order")
        assert f"order slot 3 (nonce % {ORDER_SLOTS}) of account 1 is used by open order {first['order_id']}" in message
        assert httpx.post(f"{base}/orders", json=body(sign_order(1, is_buy=False, size=4, nonce=4))).status_code == 201


# --- exactly once across kill -9 ---------------------------------------------------------------------


def count_in_node(home: Path, tx) -> int:
    """How many times the node's committed batches hold this transaction."""
    wanted = tx.model_dump_json()
    store = Store.open(home)
    try:
        n = store.latest_batch().number
        return sum(store.get_transactions(b).count(wanted) for b in range(1, n + 1))
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["before_batching", "after_node_commit"])
def test_kill_9_batches_exactly_once(home, crash) -> None:
    txs = [deposit(3, 4), withdraw(1, 10**6, nonce=1), withdraw(2, 2 * 10**6, nonce=1)]  # nonce 0: the key registration
    port = get_free_port()
    env = dict(os.environ)
    if crash == "before_batching":
        server = start_process(home, port, "--batch-size", "100", "--batch-seconds", "3600")
    else:  # the process kills itself right after the node committed, before the journal records it
        env["ROLLUP_CRASH_AT"] = "service_batch_committed"
        server = start_process(home, port, "--batch-size", "3", "--batch-seconds", "3600", env=env)
    try:
        ids = [post(f"http://127.0.0.1:{port}", tx)["id"] for tx in txs]
        if crash == "before_batching":
            os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        assert server.returncode == -signal.SIGKILL
    finally:
        if server.poll() is None:
            server.kill()
    expected_batches = 1 if crash == "before_batching" else 2
    assert Node.open(home).batch_number == expected_batches
    port = get_free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_process(home, port, "--batch-size", "100", "--batch-seconds", "0.2")
    try:
        done = wait_for(lambda: all(get_transaction(base, i)["state"] == "accepted" for i in ids), 20, "the batch after restart")
        assert done
        status = httpx.get(f"{base}/status").json()
        assert status["batcher"]["recovered_on_start"] == (3 if crash == "after_node_commit" else 0)
        assert status["node"]["batch"] == 2 and status["batcher"]["pending"] == 0
        assert {get_transaction(base, i)["batch"] for i in ids} == {2}
    finally:
        server.terminate()
        server.wait(timeout=30)
    # each transaction is in the node's batches exactly once
    assert [count_in_node(home, tx) for tx in txs] == [1, 1, 1]


# --- the command line --------------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--batch-seconds", "0"], "--batch-seconds must be > 0"),
    (["--proof-slots", "0"], "--proof-slots and --proof-workers must be >= 1"),
    (["--oracle-seconds", "-1"], "--oracle-seconds must be > 0"),
])
def test_serve_refuses_bad_options(tmp_path, options, message) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--home", str(tmp_path / "h"), *options])
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "h").exists()  # refused before anything was created


def test_oracle_clock_needs_the_genesis_oracle(tmp_path) -> None:
    from rollup.genesis import default_genesis
    from rollup.signing import dev_oracle_key, get_address

    home = tmp_path / "h"
    Node.init(home, default_genesis(get_address(dev_oracle_key(99)), n_perps=1, n_series=0)).close()
    result = CliRunner().invoke(cli_app, ["serve", "--home", str(home), "--oracle-seconds", "1"])
    assert result.exit_code == 1 and "cannot sign its oracle updates" in result.output, result.output


# --- the liquidation engine --------------------------------------------------------------------------


def test_liquidator_queues_and_settles_liquidations(tmp_path) -> None:
    """A node whose market crashed (the workload's shock) has accounts below maintenance; with
    `liquidator`, the first batch the service cuts brings the engine up to date and queues signed
    Liquidate transactions (source `liquidation`), which the next batch executes: accepted, and
    fewer accounts are below maintenance afterwards."""
    from exchange.liquidation import find_breached
    from rollup.fixtures import HOT_ACCOUNT
    from rollup.signing import derive_l2_key, dev_account_key, get_address, sign, unsigned
    from verifier.wire import RegisterKey

    workload = generate_workload(WorkloadSpec(accounts=24, perps=1, series=0, txs=240, seed=7, shock=0.3,
                                              mix={"perp_trade": 8, "oracle_update": 2}), workers=1)
    home = tmp_path / "home"
    node = Node.init(home, workload.genesis, max_batch_txs=None)
    node.submit(workload.transactions)
    # the liquidator (the workload's rich account) registers the key its development wallet derives
    wallet = dev_account_key(7, HOT_ACCOUNT)
    registration = unsigned(RegisterKey, account=HOT_ACCOUNT, address=get_address(wallet), nonce=node.state.accounts[HOT_ACCOUNT].nonce,
                            key_id=derive_l2_key(wallet, workload.genesis.signing_domain).key_id)
    assert node.submit([sign(registration, [wallet], workload.genesis.signing_domain)]).n_accepted == 1
    breached = set(find_breached(node.state)) - {HOT_ACCOUNT}
    deposits = node.state.globals.deposit_count
    node.close()
    assert breached, "the crash leaves accounts below maintenance"
    with serve(home, batch_size=50, batch_seconds=0.2, liquidator=HOT_ACCOUNT) as addr:
        base = f"http://{addr}"
        post(base, deposit(deposits, 5))  # any batch wakes the engine (account 5: the workload's, same seed)
        wait_for(lambda: count_pending(home, "source = 'liquidation' AND batch IS NOT NULL") > 0, 30, "the liquidations' batch")
        status = httpx.get(f"{base}/status").json()["batcher"]
        assert status["liquidator"]["account"] == HOT_ACCOUNT and status["liquidator"]["liquidations_queued"] > 0
    rows = sqlite3.connect(home / JOURNAL_NAME).execute("SELECT status, reason FROM pending WHERE source = 'liquidation'").fetchall()
    assert rows and all(status == "accepted" for status, _ in rows), rows
    node = Node.open(home)
    try:
        after = set(find_breached(node.state)) - {HOT_ACCOUNT}
    finally:
        node.close()
    assert len(after) < len(breached)


def test_invalid_liquidator_without_key(tmp_path) -> None:
    home = make_funded_home(tmp_path / "home", accounts=(1,))
    result = CliRunner().invoke(cli_app, ["serve", "--home", str(home), "--liquidator", "5"])
    assert result.exit_code == 1 and "liquidator account 5 does not exist" in result.output, result.output
