"""Shared by the service's tests: the test chain, signed orders and rollup transactions, and a real
server on loopback (uvicorn in a thread of the test process, or `rollup serve` as a process).

Orders are signed in ONE place, `sign_order` / `sign_cancel`, with the L2 key the account's wallet
key derives (`register_key` registers it in the node first).
"""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from exchange.orders import GTC, Cancel, Order, sign_message
from rollup.genesis import DEFAULT_GENESIS_TIME, default_genesis
from rollup.signing import PLACEHOLDER_L2_SIGNATURE, derive_l2_key, dev_account_key, dev_oracle_key, get_address, sign, unsigned
from verifier import wire

SEED = 7
GENESIS = default_genesis(get_address(dev_oracle_key(SEED)), n_perps=2, n_series=2)
DOMAIN = GENESIS.signing_domain
ACCOUNTS = (1, 2, 3)
KEYS = {a: dev_account_key(SEED, a) for a in range(8)}
PRICE = 60_000_000_000  # micro-USD per contract
START_MS = (DEFAULT_GENESIS_TIME + 60) * 1000
FUNDS = 1_000_000 * 10**6


# each signed order takes the next nonce: an account's order slots (nonce % 8) need nonces that
# increase per slot (exchange/fills.py)
ORDER_NONCES = itertools.count(1_000)


class Clock:
    """The sequencer's clock in tests: moves only when told (the books need it never to go back)."""

    def __init__(self) -> None:
        self.now = START_MS

    def __call__(self) -> int:
        self.now += 1
        return self.now


def sign_order(account: int, is_buy: bool, size: int, price: int = PRICE, key=None, domain=DOMAIN, **fields) -> Order:
    """A signed limit order of `account` (signed with `key`, default the account's own)."""
    base = dict(
        account=account, instrument=0, is_buy=is_buy, size=size, price=price, time_in_force=GTC, expiry=0,
        client_id=1, nonce=fields.pop("nonce", None) or next(ORDER_NONCES), signature=PLACEHOLDER_L2_SIGNATURE,
    )
    message = Order.model_validate({**base, **fields})
    return sign_message(message, key or KEYS[account], domain)


def sign_cancel(account: int, order_id: str, instrument: int = 0, key=None, domain=DOMAIN) -> Cancel:
    message = Cancel(account=account, instrument=instrument, order_id=order_id, signature=PLACEHOLDER_L2_SIGNATURE)
    return sign_message(message, key or KEYS[account], domain)


def register_key(account: int, nonce: int = 0, domain=DOMAIN) -> wire.RegisterKey:
    """The account's registration of the L2 key its wallet key derives, signed by its address."""
    key_id = derive_l2_key(KEYS[account], domain).key_id
    tx = unsigned(wire.RegisterKey, account=account, address=get_address(KEYS[account]), key_id=key_id, nonce=nonce)
    return sign(tx, [KEYS[account]], domain)


def deposit(deposit_id: int, account: int, amount: int = FUNDS) -> wire.Deposit:
    """The L2 deposit consuming L1 queue entry `deposit_id` (the queue entry is its authorisation)."""
    return wire.Deposit(deposit_id=deposit_id, account=account, address=get_address(KEYS[account]), amount=amount)


def withdraw(account: int, amount: int, nonce: int, key=None, domain=DOMAIN) -> wire.Withdraw:
    """A withdrawal signed by the account's Ethereum address."""
    return sign(unsigned(wire.Withdraw, account=account, amount=amount, nonce=nonce), [key or KEYS[account]], domain)


def body(message) -> dict:
    return json.loads(message.model_dump_json())


def error_of(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error["message"]


def get_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def run_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port (a thread of this process); yields its URL."""
    port = get_free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        # the server answers, or says why not
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def start_process(home: Path, port: int, *options: str, env: dict | None = None) -> subprocess.Popen:
    """`rollup serve` as a real process, once it answers /status (`service.load.start_serve_process`)."""
    from service.load import start_serve_process

    try:
        return start_serve_process(home, port, *options, env=env)
    except RuntimeError as exc:
        raise AssertionError(str(exc)) from None


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def make_funded_home(home: Path, genesis: wire.Genesis = GENESIS, accounts=ACCOUNTS, **node_options) -> Path:
    """A node at `genesis` with one deposit per account (ids 0, 1, ... in account order), each
    account's L2 key registered (orders are signed with it)."""
    from rollup.node import Node

    node = Node.init(home, genesis, **node_options)
    try:
        txs = [deposit(i, a) for i, a in enumerate(accounts)] + [register_key(a, domain=genesis.signing_domain) for a in accounts]
        result = node.submit(txs)
        # every deposit opened its account, every account has its key
        if result.n_accepted != len(txs):
            raise AssertionError(f"{result.n_accepted} of {len(txs)} deposits and registrations accepted")
    finally:
        node.close()
    return home
