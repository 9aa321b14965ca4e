"""The CCXT-shaped client (service/client.py) against the real service: in-process for the REST
methods, a real `rollup serve` process on loopback for the WebSocket streams and the market-making
example (examples/market_maker.py)."""

from __future__ import annotations

import asyncio
import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.node import Node
from rollup.genesis import default_genesis
from rollup.signing import derive_l2_key, dev_account_key, dev_oracle_key, get_address, sign, unsigned
from verifier.wire import RegisterKey
from rollup.state import compute_position_value
from rollup.units import SIZE_SCALE, USD
from service.app import create_app
from service.client import (
    BadRequest,
    BadSymbol,
    DuplicateOrderId,
    InvalidOrder,
    LocalOrderBook,
    NetworkError,
    OrderNotFound,
    RollupExchange,
    get_symbol,
)
from test_service import get_free_port, start_server

ROOT = Path(__file__).resolve().parents[1]
SEED = 7
BTC = "BTC/USDC:USDC"
ETH = "ETH/USDC:USDC"


def make_default_genesis():
    """`rollup init`'s genesis (the one `rollup fixtures` targets with seed 7)."""
    return default_genesis(get_address(dev_oracle_key(SEED)))


def make_funded_home(target: Path) -> Path:
    """A node on the default genesis (`rollup init`'s) with six funded accounts, positions and oracle marks."""
    workload = generate_workload(WorkloadSpec(accounts=6, txs=30, seed=SEED), workers=1)
    assert workload.genesis == make_default_genesis()
    node = Node.init(target, workload.genesis)
    assert node.submit(workload.transactions).n_accepted == len(workload.transactions)
    # each account's wallet key derives the L2 key it signs orders with (index 0): registered
    domain = workload.genesis.signing_domain
    registrations = [
        sign(unsigned(RegisterKey, account=a, address=get_address(dev_account_key(SEED, a)),
                      key_id=derive_l2_key(dev_account_key(SEED, a), domain).key_id, nonce=node.state.accounts[a].nonce),
             [dev_account_key(SEED, a)], domain)
        for a in sorted(node.state.accounts)
    ]
    assert node.submit(registrations).n_accepted == len(registrations)
    node.close()
    return target


@pytest.fixture(scope="module")
def funded_home(tmp_path_factory) -> Path:
    return make_funded_home(tmp_path_factory.mktemp("client") / "home")


@pytest.fixture
def service(funded_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(funded_home, home)
    with TestClient(create_app(home)) as http:
        yield http, home


def exchange(http, account: int | None = None, key_of: int | None = None) -> RollupExchange:
    key = dev_account_key(SEED, account if key_of is None else key_of) if account is not None else None
    return RollupExchange(account=account, private_key=key, http=http)


# --- markets and units -------------------------------------------------------------------------------


def test_markets_are_the_genesis_instruments(service) -> None:
    http, home = service
    client = exchange(http)
    markets = client.load_markets()
    node = Node.open(home)
    specs = node.genesis.instruments
    node.close()
    assert [m["numericId"] for m in markets.values()] == [s.id for s in specs]
    btc = markets[BTC]
    assert (btc["type"], btc["swap"], btc["option"], btc["linear"], btc["settle"]) == ("swap", True, False, True, "USDC")
    assert btc["contractSize"] == 0.001 and btc["precision"] == {"amount": 1, "price": 0.001}
    # an option series: CCXT's BASE/QUOTE:SETTLE-YYMMDD-STRIKE-C|P, strike in USD per unit
    option = next(s for s in specs if s.kind == "option")
    expiry = datetime.datetime.fromtimestamp(option.expiry, tz=datetime.timezone.utc)
    strike_usd = option.strike * SIZE_SCALE // option.contract_size // USD
    kind = "C" if option.is_call else "P"
    symbol = f"{option.underlying}/USDC:USDC-{expiry:%y%m%d}-{strike_usd}-{kind}"
    assert get_symbol(option) == symbol and markets[symbol]["strike"] == strike_usd
    assert markets[symbol]["expiry"] == option.expiry * 1000 and markets[symbol]["optionType"] == ("call" if option.is_call else "put")
    with pytest.raises(BadSymbol, match="unknown symbol 'BTC/USD'"):
        client.market("BTC/USD")


def test_prices_and_amounts_convert_exactly_once(service) -> None:
    client = exchange(service[0])
    # BTC: 0.001 BTC a contract, so 1 USD per BTC is 1,000 micro-USD per contract
    assert client.to_price(BTC, 60_000.123) == 60_000_123 and client.from_price(BTC, 60_000_123) == 60_000.123
    assert client.to_price(ETH, "3000.0001") == 30_000_001
    with pytest.raises(InvalidOrder, match="not a positive multiple of its tick 0.001 USD"):
        client.to_price(BTC, 60_000.1234)
    with pytest.raises(InvalidOrder, match="tick"):
        client.to_price(BTC, 0)
    assert client.price_to_precision(BTC, 60_000.1235) == 60_000.124  # half to even
    assert client.to_amount(BTC, 3.0) == 3
    with pytest.raises(InvalidOrder, match="whole number of contracts"):
        client.to_amount(BTC, 1.5)


# --- orders ------------------------------------------------------------------------------------------


def test_place_fill_query_and_cancel(service) -> None:
    http, _ = service
    maker, taker = exchange(http, 1), exchange(http, 2)
    ask = maker.create_order(BTC, "limit", "sell", 3, 60_000.5, {"clientOrderId": 42})
    assert (ask["status"], ask["side"], ask["amount"], ask["price"], ask["clientOrderId"]) == ("open", "sell", 3, 60_000.5, "42")
    bid = maker.create_order(BTC, "limit", "buy", 4, 59_990, {"timeInForce": "PO"})
    assert bid["postOnly"] and bid["timeInForce"] == "PO" and bid["status"] == "open"
    book = maker.fetch_order_book(BTC)
    assert book["asks"] == [[60_000.5, 3]] and book["bids"] == [[59_990.0, 4]] and book["nonce"] == 2
    # a market order: IOC at the far limit, filled at the maker's price
    market = taker.create_order(BTC, "market", "buy", 2)
    assert (market["status"], market["filled"], market["average"], market["timeInForce"]) == ("closed", 2, 60_000.5, "IOC")
    assert market["cost"] == pytest.approx(2 * 0.001 * 60_000.5)
    trades = maker.fetch_trades(BTC)
    assert [(t["side"], t["price"], t["amount"]) for t in trades] == [("buy", 60_000.5, 2)]
    resting = maker.fetch_order(ask["id"])
    assert (resting["status"], resting["filled"], resting["remaining"]) == ("open", 2, 1)
    assert {o["id"] for o in maker.fetch_open_orders()} == {ask["id"], bid["id"]}
    assert [o["id"] for o in maker.fetch_open_orders(BTC, limit=1)] == [ask["id"]]
    assert maker.cancel_order(ask["id"])["status"] == "canceled"  # its market looked up by id
    with pytest.raises(OrderNotFound, match="is not open") as caught:
        maker.cancel_order(ask["id"], BTC)
    assert caught.value.code == "cancel_rejected" and caught.value.status == 409
    eth = maker.create_order(ETH, "limit", "sell", 1, 3_100)
    cancelled = maker.cancel_all_orders()
    assert [o["id"] for o in cancelled] == [bid["id"], eth["id"]]
    assert maker.fetch_open_orders() == [] and maker.fetch_order_book(BTC)["bids"] == []


def test_errors_carry_the_server_reason(service) -> None:
    http, _ = service
    client = exchange(http, 1)
    forged = exchange(http, 1, key_of=2)
    with pytest.raises(InvalidOrder, match="is signed by L2 key id .* not by the account's key id") as caught:
        forged.create_order(BTC, "limit", "buy", 1, 50_000)
    assert caught.value.code == "invalid_order" and caught.value.status == 422
    option = next(s for s, m in client.load_markets().items() if m["option"])
    with pytest.raises(InvalidOrder, match="expired at .* it no longer trades"):
        client.create_order(option, "limit", "buy", 1, 100)
    first = client.create_order(BTC, "limit", "buy", 1, 50_000, {"nonce": 77})
    with pytest.raises(DuplicateOrderId, match="duplicate order id"):
        client.create_order(BTC, "limit", "buy", 1, 50_000, {"nonce": 77})
    crossing = exchange(http, 2).create_order(BTC, "limit", "sell", 1, 49_000, {"postOnly": True})
    assert crossing["status"] == "rejected" and "post-only order would cross the best bid" in crossing["reason"]
    with pytest.raises(OrderNotFound, match="does not exist"):
        client.fetch_order("0x" + "ab" * 32)
    with pytest.raises(BadRequest, match=r"unknown order params \['leverage'\]"):
        client.create_order(BTC, "limit", "buy", 1, 50_000, {"leverage": 10})
    with pytest.raises(InvalidOrder, match="invalid order: expiry: Input should be greater than or equal to 0"):
        client.create_order(BTC, "limit", "buy", 1, 50_000, {"expiry": -1})
    with pytest.raises(InvalidOrder, match="price 'cheap' is not a number"):
        client.create_order(BTC, "limit", "buy", 1, "cheap")
    with pytest.raises(InvalidOrder, match="a limit order needs a price"):
        client.create_order(BTC, "limit", "buy", 1)
    with pytest.raises(BadRequest, match="account 99 does not exist"):
        exchange(http, 99, key_of=1).create_order(BTC, "limit", "buy", 1, 50_000)
    with pytest.raises(BadRequest, match="no account and signing key"):
        exchange(http).create_order(BTC, "limit", "buy", 1, 50_000)
    assert client.fetch_order(first["id"])["status"] == "open"
    with pytest.raises(NetworkError):
        RollupExchange(f"http://127.0.0.1:{get_free_port()}", timeout=2).load_markets()


def test_balance_and_positions_are_the_rollup_account(service) -> None:
    http, home = service
    client = exchange(http, 1)
    balance = client.fetch_balance()
    positions = client.fetch_positions()
    node = Node.open(home)
    state = node.state
    account = state.accounts[1]
    node.close()
    equity = balance["info"]["equity"]
    assert balance["USDC"]["total"] == equity / USD and balance["total"]["USDC"] == equity / USD
    assert balance["USDC"]["used"] == balance["info"]["initial_margin"] / USD
    assert balance["USDC"]["free"] == pytest.approx(balance["USDC"]["total"] - balance["USDC"]["used"])
    assert len(positions) == len(account.positions) > 0
    markets = client.load_markets()
    for position in positions:
        instrument = markets[position["symbol"]]["numericId"]
        held = account.positions[instrument]
        signed = position["contracts"] if position["side"] == "long" else -position["contracts"]
        assert signed == held.size
        assert position["markPrice"] == client.from_price(position["symbol"], state.instruments[instrument].mark)
        if markets[position["symbol"]]["swap"]:
            # the unrealised P&L is rollup/state.py's valuation of the position
            assert position["unrealizedPnl"] == compute_position_value(state.instruments[instrument], held) / USD


# --- the order book stream -----------------------------------------------------------------------------


def test_local_book_applies_deltas_and_refuses_a_gap() -> None:
    book = LocalOrderBook()
    assert not book.apply_delta({"sequence": 1, "prev_sequence": 0, "bids": [], "asks": []})  # no snapshot yet
    book.apply_snapshot({"sequence": 4, "bids": [[100, 2], [99, 1]], "asks": [[101, 5]]})
    assert book.apply_delta({"sequence": 5, "prev_sequence": 4, "bids": [[100, 0], [98, 3]], "asks": [[102, 1]]})
    assert book.get_levels() == ([(99, 1), (98, 3)], [(101, 5), (102, 1)]) and book.sequence == 5
    # sequence 6 lost: 7 must not be applied on top of 5
    assert not book.apply_delta({"sequence": 7, "prev_sequence": 6, "bids": [[97, 1]], "asks": []})
    assert book.get_levels() == ([(99, 1), (98, 3)], [(101, 5), (102, 1)]) and book.sequence == 5


@pytest.fixture(scope="module")
def server(funded_home, tmp_path_factory):
    """A real `rollup serve` process on loopback, on a copy of the funded home."""
    home = tmp_path_factory.mktemp("served") / "home"
    shutil.copytree(funded_home, home)
    port = get_free_port()
    process = start_server(home, port)
    yield f"http://127.0.0.1:{port}"
    stop_server(process)


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL: uvicorn's graceful shutdown waits for every WebSocket handler, and a
    handler whose client went away waits in service/app.py's `stream` until its market's next
    message (it never reads the socket), so a served page or stream client can hold SIGTERM off."""
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


@pytest.mark.slow
def test_watch_order_book_and_trades_over_a_real_socket(server) -> None:
    maker = RollupExchange(server, 3, dev_account_key(SEED, 3))
    taker = RollupExchange(server, 4, dev_account_key(SEED, 4))

    async def scenario() -> None:
        first = await maker.watch_order_book(ETH)
        assert first["nonce"] == maker.fetch_order_book(ETH)["nonce"]
        trades = asyncio.ensure_future(maker.watch_trades(ETH))
        while ETH not in maker._trade_streams:  # connected: the handshake is done
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the server subscribes the stream right after its handshake
        maker.create_order(ETH, "limit", "sell", 5, 3_000.25)
        book = await maker.watch_order_book(ETH)
        assert book["asks"] == [[3_000.25, 5]] and book["nonce"] == first["nonce"] + 1
        taker.create_order(ETH, "limit", "buy", 2, 3_000.25)
        book = await maker.watch_order_book(ETH)
        assert book["asks"] == [[3_000.25, 3]]
        [trade] = await asyncio.wait_for(trades, 10)
        assert (trade["symbol"], trade["side"], trade["price"], trade["amount"]) == (ETH, "buy", 3_000.25, 2)
        # a lost delta: the stream sees prev_sequence != its last sequence and re-snapshots
        stream = maker._book_streams[ETH]
        stream.book.sequence -= 1
        maker.create_order(ETH, "limit", "buy", 7, 2_990)
        book = await maker.watch_order_book(ETH)
        assert stream.resyncs == 1
        assert book == {**maker.fetch_order_book(ETH), "timestamp": book["timestamp"], "datetime": book["datetime"]}
        assert book["bids"] == [[2_990.0, 7]] and book["asks"] == [[3_000.25, 3]]
        await maker.close_streams()
        maker.cancel_all_orders()

    asyncio.run(scenario())


@pytest.mark.slow
def test_market_maker_example_quotes_and_refreshes(server) -> None:
    command = [sys.executable, str(ROOT / "examples" / "market_maker.py"), "--url", server, "--account", "5",
               "--taker-account", "2", "--rounds", "3", "--interval", "0.1", "--size", "4", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    rounds, summary = lines[:-1], lines[-1]["summary"]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert {m["symbol"] for m in rounds[0]["markets"]} == {BTC, ETH}
    for report in rounds:
        for market in report["markets"]:
            quotes = {q["side"]: q for q in market["quotes"]}
            # two-sided around the mark, post-only, resting
            assert quotes["buy"]["price"] < market["mark"] * (1 + 0.01) and quotes["sell"]["price"] > quotes["buy"]["price"]
            assert all(q["status"] == "open" for q in quotes.values())
            # a long dollar delta shrinks the bid and grows the ask (and the other way round)
            if market["delta_usd"] > 0:
                assert quotes["buy"]["amount"] <= quotes["sell"]["amount"]
            elif market["delta_usd"] < 0:
                assert quotes["buy"]["amount"] >= quotes["sell"]["amount"]
    # each round after the first replaced the previous quotes (filled ones need no cancel)
    assert all(r["cancelled"] >= 2 for r in rounds[1:])
    # the taker bought in round 1 (the maker sold: its BTC fills go negative), sold in round 2
    assert rounds[0]["taker"]["filled"] == 2 and rounds[1]["markets"][0]["inventory_fills"] == -2
    assert summary["fills"][BTC] == -2 and summary["open_orders"] == 0


def test_watch_without_a_service_is_a_network_error() -> None:
    client = RollupExchange(f"http://127.0.0.1:{get_free_port()}", genesis=make_default_genesis())
    with pytest.raises(NetworkError, match="/ws/book/0"):
        asyncio.run(client.watch_order_book(BTC))
