"""A Python client of `rollup serve` in CCXT's unified shapes: markets, order books, orders,
positions, balances, trades, and order books and trades streamed over WebSocket.

Symbols are CCXT's: `BTC/USDC:USDC` for a perpetual, `BTC/USDC:USDC-260108-60000-C` for an option
series (expiry as UTC YYMMDD, strike in USD per unit of the underlying). Prices are USD per unit of
the underlying, amounts whole contracts (`contractSize` units of the underlying each), as CCXT gives
them for linear derivatives; they become the rollup's integers (rollup/units.py: micro-USD per
contract) once, in `to_price` / `to_amount`, and come back once, in `from_price`. A price between
two ticks is refused, not rounded: `price_to_precision` rounds on purpose.

Sync methods use httpx; `watch_order_book` and `watch_trades` are coroutines over `websockets`
(one connection per symbol, kept between calls, as CCXT Pro does). The order book stream checks
each delta's `prev_sequence` against the last sequence applied and reconnects for a new snapshot
on a gap. Server errors (`{"error": {"code", "message"}}`) become CCXT-like exceptions carrying the
server's code and reason.

Signing happens in one place, `RollupExchange._sign`, with exchange/orders.py's signer.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import httpx
from pydantic import ValidationError

from exchange.orders import GTC, IOC, POST_ONLY, Cancel, CancelAll, Message, Order, sign_message
from rollup.signing import PLACEHOLDER_L2_SIGNATURE
from verifier.wire import ORDER_SLOTS
from rollup.units import MICRO_USD_PER_SIZE_UNIT, USD, get_contract_units
from verifier.wire import PRICE_BITS, SIZE_BITS, Genesis, OptionSeriesSpec, PerpMarketSpec

SETTLE = "USDC"  # CCXT's settle and quote currency of the rollup's USD collateral
MAX_PRICE = 2**PRICE_BITS - 1  # the far limit of a market buy
MIN_PRICE = 1  # the far limit of a market sell
MAX_AMOUNT = 2**SIZE_BITS - 1
TIME_IN_FORCE = {"GTC": GTC, "IOC": IOC, "PO": POST_ONLY}
TIME_IN_FORCE_NAMES = {code: name for name, code in TIME_IN_FORCE.items()}
ORDER_PARAMS = {"timeInForce", "postOnly", "clientOrderId", "expiry", "nonce"}
STATUSES = {"open": "open", "filled": "closed", "cancelled": "canceled", "expired": "expired", "rejected": "rejected"}


# --- errors: CCXT's hierarchy (ccxt/base/errors.py), the part this exchange can raise -----------------


class BaseError(Exception):
    """A failed request; `code` is the server's stable error code, `status` the HTTP status."""

    def __init__(self, message: str, code: str = "", status: int = 0):
        super().__init__(message)
        self.code = code
        self.status = status


class ExchangeError(BaseError):
    pass


class BadRequest(ExchangeError):
    pass


class BadSymbol(BadRequest):
    pass


class InvalidOrder(ExchangeError):
    pass


class OrderNotFound(InvalidOrder):
    pass


class DuplicateOrderId(InvalidOrder):
    pass


class NetworkError(BaseError):
    pass


class ExchangeNotAvailable(NetworkError):
    pass


ERRORS: dict[str, type[BaseError]] = {
    "invalid_order": InvalidOrder,  # bad signature, unknown instrument, expired order or series
    "unknown_order": OrderNotFound,
    "cancel_rejected": OrderNotFound,  # not open (filled, cancelled, expired) or not this account's
    "duplicate_order": DuplicateOrderId,
    "unknown_market": BadSymbol,
    "invalid_request": BadRequest,
    "mismatched_order_id": BadRequest,
    "unknown_account": BadRequest,
    "not_found": BadRequest,
    "method_not_allowed": BadRequest,
    "unavailable": ExchangeNotAvailable,
}


def raise_for_error(response: httpx.Response) -> Any:
    """The response's JSON, or the exception its error names."""
    if response.is_success:
        return response.json()
    try:
        error = response.json()["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", f"HTTP {response.status_code}: {response.text[:200]}"
    kind = ERRORS.get(code, ExchangeError if response.status_code >= 500 else BadRequest)
    raise kind(message, code, response.status_code)


# --- time and numbers ----------------------------------------------------------------------------------


def iso8601(timestamp_ms: int | None) -> str | None:
    if timestamp_ms is None:
        return None
    moment = datetime.datetime.fromtimestamp(timestamp_ms / 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def get_price_factor(contract_size: int) -> int:
    """Micro-USD per contract for 1 USD per unit of the underlying (the inverse of one tick)."""
    return contract_size * MICRO_USD_PER_SIZE_UNIT


def to_decimal(value: float | Decimal | str, what: str) -> Decimal:
    """A number as CCXT users pass it (float, Decimal or text), exactly as written."""
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        raise InvalidOrder(f"{what} {value!r} is not a number", "invalid_order") from None
    # NaN and infinities have no integer form
    if not exact.is_finite():
        raise InvalidOrder(f"{what} {value!r} is not a finite number", "invalid_order")
    return exact


def build_message(model: type[Message], **fields: Any) -> Message:
    """An unsigned message, its field errors as one InvalidOrder line (pydantic's, by field)."""
    try:
        return model(**fields, signature=PLACEHOLDER_L2_SIGNATURE)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidOrder(f"invalid {model.__name__.lower()}: {reasons}", "invalid_order") from None


def format_decimal(value: Decimal) -> str:
    """Plain decimal text without trailing zeros: 60000, 0.5, 2850."""
    return format(value.normalize(), "f")


def get_symbol(spec: PerpMarketSpec | OptionSeriesSpec) -> str:
    """CCXT's symbol of a genesis instrument."""
    base = f"{spec.underlying}/{SETTLE}:{SETTLE}"
    if isinstance(spec, PerpMarketSpec):
        return base
    expiry = datetime.datetime.fromtimestamp(spec.expiry, tz=datetime.timezone.utc).strftime("%y%m%d")
    strike = format_decimal(Decimal(spec.strike) / get_price_factor(spec.contract_size))
    return f"{base}-{expiry}-{strike}-{'C' if spec.is_call else 'P'}"


def build_market(spec: PerpMarketSpec | OptionSeriesSpec) -> dict[str, Any]:
    """CCXT's market structure of a genesis instrument (precision mode TICK_SIZE)."""
    factor = get_price_factor(spec.contract_size)
    is_option = isinstance(spec, OptionSeriesSpec)
    return {
        "id": str(spec.id),
        "numericId": spec.id,
        "symbol": get_symbol(spec),
        "base": spec.underlying,
        "quote": SETTLE,
        "settle": SETTLE,
        "baseId": spec.underlying,
        "quoteId": "USD",
        "settleId": "USD",
        "type": "option" if is_option else "swap",
        "spot": False,
        "margin": False,
        "swap": not is_option,
        "future": False,
        "option": is_option,
        "active": True,
        "contract": True,
        "linear": True,
        "inverse": False,
        "contractSize": get_contract_units(spec.contract_size),
        "expiry": spec.expiry * 1000 if is_option else None,
        "expiryDatetime": iso8601(spec.expiry * 1000) if is_option else None,
        "strike": spec.strike / factor if is_option else None,
        "optionType": ("call" if spec.is_call else "put") if is_option else None,
        "taker": 0.0,
        "maker": 0.0,
        "precision": {"amount": 1, "price": 1 / factor},
        "limits": {
            "amount": {"min": 1, "max": MAX_AMOUNT},
            "price": {"min": 1 / factor, "max": MAX_PRICE / factor},
            "cost": {"min": None, "max": None},
            "leverage": {"min": None, "max": None},
        },
        "info": spec.model_dump(),
    }


# --- the local order book of a stream --------------------------------------------------------------------


class LocalOrderBook:
    """A market's levels in the rollup's integers, rebuilt from a snapshot and its deltas.
    `apply_delta` returns False, changing nothing, when the delta does not follow the last one
    applied (a gap: the caller re-snapshots)."""

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.sequence: int | None = None
        self.time_ms: int | None = None

    def apply_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.bids = {price: size for price, size in snapshot["bids"]}
        self.asks = {price: size for price, size in snapshot["asks"]}
        self.sequence = snapshot["sequence"]
        self.time_ms = snapshot.get("time_ms")

    def apply_delta(self, delta: dict[str, Any]) -> bool:
        # a delta applies only on top of the one before it
        if self.sequence is None or delta["prev_sequence"] != self.sequence:
            return False
        for side, levels in (("bids", self.bids), ("asks", self.asks)):
            for price, total in delta[side]:
                if total:
                    levels[price] = total
                else:
                    levels.pop(price, None)
        self.sequence = delta["sequence"]
        self.time_ms = delta.get("time_ms")
        return True

    def get_levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Bids best (highest) first, asks best (lowest) first."""
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


class _BookStream:
    """One WebSocket of /ws/book/{market}: connected on first use, re-snapshotted on a gap."""

    def __init__(self, url: str):
        self.url = url
        self.socket: Any = None
        self.book = LocalOrderBook()
        self.resyncs = 0  # snapshots taken after the first: gaps, dropped streams, lost connections

    async def _connect(self) -> None:
        if self.socket is not None:
            await self.socket.close()
            self.resyncs += 1
        self.socket = await open_socket(self.url)
        self.book.apply_snapshot(_check_stream_message(json.loads(await self.socket.recv())))

    async def next(self) -> LocalOrderBook:
        """The book after its next change (the snapshot on first use)."""
        from websockets.exceptions import ConnectionClosed

        if self.socket is None:
            await self._connect()
            return self.book
        try:
            message = _check_stream_message(json.loads(await self.socket.recv()))
        except (ConnectionClosed, ExchangeNotAvailable):
            await self._connect()  # the server dropped us (slow consumer) or went away: start over
            return self.book
        if message.get("type") == "snapshot":
            self.book.apply_snapshot(message)
        elif not self.book.apply_delta(message):
            await self._connect()  # a gap: the levels we hold are no longer the book's
        return self.book

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
            self.socket = None


async def open_socket(url: str) -> Any:
    """A WebSocket client connection; NetworkError if the service cannot be reached."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidHandshake

    try:
        return await connect(url)
    except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
        raise NetworkError(f"{url}: {exc}", "network_error") from None


def _check_stream_message(message: dict[str, Any]) -> dict[str, Any]:
    if message.get("type") == "error":
        kind = ExchangeNotAvailable if message.get("code") == "slow_consumer" else ERRORS.get(message.get("code", ""), ExchangeError)
        raise kind(message.get("message", "stream error"), message.get("code", ""))
    return message


# --- the exchange --------------------------------------------------------------------------------------


class RollupExchange:
    """A client of one `rollup serve`, trading as `account` with its signing key (`private_key`,
    32 bytes or 0x-hex; needed only to place and cancel). `genesis` saves the GET /genesis of
    `load_markets` (the instruments and the signing domain); `http` replaces the httpx client (a
    FastAPI TestClient runs the service in-process)."""

    id = "rollup"
    name = "zk-derivatives-rollup"

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        account: int | None = None,
        private_key: bytes | str | None = None,
        genesis: Genesis | None = None,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.account = account
        self.private_key = bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else private_key
        self.genesis = genesis
        self.http = http if http is not None else httpx.Client(base_url=self.base_url, timeout=timeout)
        self.markets: dict[str, dict[str, Any]] = {}
        self.markets_by_id: dict[int, dict[str, Any]] = {}
        self.last_nonce = 0
        self._book_streams: dict[str, _BookStream] = {}
        self._trade_streams: dict[str, Any] = {}

    # --- transport -----------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise NetworkError(f"{method} {self.base_url}{path}: {exc}", "network_error") from None
        return raise_for_error(response)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "RollupExchange":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- markets -------------------------------------------------------------------------------

    def fetch_markets(self, params: dict | None = None) -> list[dict[str, Any]]:
        """The genesis' instruments as CCXT markets."""
        if self.genesis is None:
            self.genesis = Genesis.model_validate(self._request("GET", "/genesis"))
        return [build_market(spec) for spec in self.genesis.instruments]

    def load_markets(self, reload: bool = False, params: dict | None = None) -> dict[str, dict[str, Any]]:
        if reload or not self.markets:
            markets = self.fetch_markets()
            self.markets = {m["symbol"]: m for m in markets}
            self.markets_by_id = {m["numericId"]: m for m in markets}
        return self.markets

    @property
    def symbols(self) -> list[str]:
        return list(self.load_markets())

    def market(self, symbol: str) -> dict[str, Any]:
        markets = self.load_markets()
        # every symbol names an instrument of the genesis
        if symbol not in markets:
            raise BadSymbol(f"unknown symbol {symbol!r}; the exchange lists: {', '.join(markets)}", "unknown_market")
        return markets[symbol]

    def _market_of(self, instrument: int) -> dict[str, Any]:
        self.load_markets()
        return self.markets_by_id[instrument]

    # --- units: the one boundary between human numbers and the rollup's integers ------------------

    def to_price(self, symbol: str, price: float | Decimal | str) -> int:
        """USD per unit of the underlying -> micro-USD per contract; InvalidOrder off the tick."""
        spec = self.market(symbol)["info"]
        exact = to_decimal(price, "price") * get_price_factor(spec["contract_size"])
        # a price converts exactly or not at all: rounding is price_to_precision's job
        if exact != exact.to_integral_value() or exact <= 0:
            tick = format_decimal(Decimal(1) / get_price_factor(spec["contract_size"]))
            raise InvalidOrder(f"price {price} of {symbol} is not a positive multiple of its tick {tick} USD", "invalid_price")
        return int(exact)

    def from_price(self, symbol: str, price: int) -> float:
        """Micro-USD per contract -> USD per unit of the underlying."""
        return price / get_price_factor(self.market(symbol)["info"]["contract_size"])

    def to_amount(self, symbol: str, amount: float | Decimal | str) -> int:
        """Contracts as CCXT gives them (a number) -> whole contracts; InvalidOrder otherwise."""
        exact = to_decimal(amount, "amount")
        # the books trade whole contracts
        if exact != exact.to_integral_value() or not 0 < exact <= MAX_AMOUNT:
            raise InvalidOrder(f"amount {amount} of {symbol} must be a whole number of contracts between 1 and {MAX_AMOUNT}", "invalid_amount")
        return int(exact)

    def price_to_precision(self, symbol: str, price: float) -> float:
        """`price` rounded (half to even) to the market's tick."""
        factor = get_price_factor(self.market(symbol)["info"]["contract_size"])
        ticks = (to_decimal(price, "price") * factor).to_integral_value(ROUND_HALF_EVEN)
        return float(max(ticks, 1) / factor)

    def amount_to_precision(self, symbol: str, amount: float) -> int:
        """`amount` truncated to whole contracts, as CCXT truncates amounts."""
        self.market(symbol)
        return int(amount)

    # --- market data ---------------------------------------------------------------------------

    def _build_book(self, symbol: str, bids: list, asks: list, sequence: int, time_ms: int | None, limit: int | None) -> dict[str, Any]:
        convert = lambda levels: [[self.from_price(symbol, p), s] for p, s in levels[:limit]]  # noqa: E731
        return {
            "symbol": symbol,
            "bids": convert(bids),
            "asks": convert(asks),
            "timestamp": time_ms or None,
            "datetime": iso8601(time_ms or None),
            "nonce": sequence,
        }

    def fetch_order_book(self, symbol: str, limit: int | None = None, params: dict | None = None) -> dict[str, Any]:
        """CCXT's order book: bids and asks as [price, contracts], best first; `nonce` is the
        sequence number of the last delta the levels include."""
        market = self.market(symbol)
        book = self._request("GET", f"/book/{market['numericId']}")
        return self._build_book(symbol, book["bids"], book["asks"], book["sequence"], book.get("time_ms"), limit)

    def parse_trade(self, trade: dict[str, Any], symbol: str) -> dict[str, Any]:
        price = self.from_price(symbol, trade["price"])
        contract_units = self.market(symbol)["contractSize"]
        return {
            "id": str(trade["trade_id"]),
            "order": None,
            "timestamp": trade["time_ms"],
            "datetime": iso8601(trade["time_ms"]),
            "symbol": symbol,
            "type": None,
            "side": trade["side"],  # the taker's
            "takerOrMaker": None,
            "price": price,
            "amount": trade["size"],
            "cost": trade["size"] * trade["price"] / USD,  # USD: contracts x micro-USD per contract
            "fee": None,
            "fees": [],
            "info": trade,
            "contractSize": contract_units,
        }

    def fetch_trades(self, symbol: str, since: int | None = None, limit: int | None = None, params: dict | None = None) -> list[dict[str, Any]]:
        """Recent trades, oldest first (CCXT's order); `since` in milliseconds."""
        market = self.market(symbol)
        query = {"limit": limit} if limit else {}
        trades = [self.parse_trade(t, symbol) for t in reversed(self._request("GET", f"/trades/{market['numericId']}", params=query))]
        return [t for t in trades if since is None or t["timestamp"] >= since]

    def fetch_mark_prices(self, symbols: list[str] | None = None, params: dict | None = None) -> dict[str, dict[str, Any]]:
        """The oracle's marks as the node holds them (CCXT's ticker fields `markPrice`, `timestamp`);
        a market without a mark yet is left out."""
        marks = self._request("GET", "/marks")
        out = {}
        for item in marks["marks"]:
            symbol = self._market_of(item["instrument"])["symbol"]
            if item["mark"] is None or (symbols is not None and symbol not in symbols):
                continue
            out[symbol] = {
                "symbol": symbol,
                "markPrice": self.from_price(symbol, item["mark"]),
                "timestamp": marks["oracle_time"] * 1000,
                "datetime": iso8601(marks["oracle_time"] * 1000),
                "info": item,
            }
        return out

    # --- orders ------------------------------------------------------------------------------

    def _require_signer(self) -> tuple[int, bytes]:
        # placing and cancelling are signed by the account's key
        if self.account is None or self.private_key is None:
            raise BadRequest("this client has no account and signing key: pass account= and private_key=", "no_credentials")
        return self.account, self.private_key

    def _sign(self, message: Message) -> Message:
        """The one place messages are signed (exchange/orders.py's signer and the rollup's domain)."""
        _, key = self._require_signer()
        self.load_markets()
        return sign_message(message, key, self.genesis.signing_domain)

    def _next_nonce(self) -> int:
        """Milliseconds since the epoch, strictly increasing per client (a cancel-all voids lower ones)."""
        self.last_nonce = max(time.time_ns() // 1_000_000, self.last_nonce + 1)
        return self.last_nonce

    def _next_order_nonce(self) -> int:
        """The next nonce whose order slot (nonce % ORDER_SLOTS) no open order of the account uses:
        the rollup keeps fills per slot, and the sequencer refuses an order in a busy slot."""
        busy = {state["order"]["nonce"] % ORDER_SLOTS for state in self._fetch_account()["open_orders"]}
        # one open order per slot
        if len(busy) >= ORDER_SLOTS:
            raise InvalidOrder(f"the account has {ORDER_SLOTS} open orders, one per order slot: cancel one first", "invalid_order")
        nonce = self._next_nonce()
        while nonce % ORDER_SLOTS in busy:
            nonce += 1
        self.last_nonce = nonce
        return nonce

    def parse_order(self, state: dict[str, Any], records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """CCXT's order structure of the service's order state; `records` (the answer to the
        order's own command) give the fills' average price and cost."""
        order = state["order"]
        symbol = self._market_of(order["instrument"])["symbol"]
        fills = [r for r in records or () if r["type"] == "Fill" and state["order_id"] in (r["taker_order_id"], r["maker_order_id"])]
        cost = sum(f["size"] * f["price"] for f in fills)
        filled = sum(f["size"] for f in fills)
        return {
            "id": state["order_id"],
            "clientOrderId": str(order["client_id"]),
            "timestamp": state["created_ms"],
            "datetime": iso8601(state["created_ms"]),
            "lastTradeTimestamp": state["updated_ms"] if state["filled"] else None,
            "lastUpdateTimestamp": state["updated_ms"],
            "symbol": symbol,
            "type": "limit",
            "timeInForce": TIME_IN_FORCE_NAMES[order["time_in_force"]],
            "postOnly": order["time_in_force"] == POST_ONLY,
            "reduceOnly": False,
            "side": "buy" if order["is_buy"] else "sell",
            "price": self.from_price(symbol, order["price"]),
            "triggerPrice": None,
            "amount": order["size"],
            "filled": state["filled"],
            "remaining": state["remaining"],
            "cost": cost / USD if fills else None,
            "average": self.from_price(symbol, cost / filled) if filled else None,
            "status": STATUSES.get(state["status"], state["status"]),
            "reason": state["reason"] or None,
            "fee": None,
            "fees": [],
            "trades": [],
            "info": state,
        }

    def create_order(
        self, symbol: str, type: str, side: str, amount: float, price: float | None = None, params: dict | None = None
    ) -> dict[str, Any]:
        """Place a signed order. `type` limit (with `price`) or market (an IOC at the far limit: it
        fills at the makers' prices). `params`: timeInForce GTC | IOC | PO, postOnly, clientOrderId
        (a 64-bit integer), expiry (unix seconds), nonce. A post-only order that would cross comes
        back with status `rejected` and its reason, as the book decided it."""
        params = dict(params or {})
        account, _ = self._require_signer()
        market = self.market(symbol)
        # only the parameters this exchange understands: a typo must not pass silently
        unknown = set(params) - ORDER_PARAMS
        if unknown:
            raise BadRequest(f"unknown order params {sorted(unknown)}; accepted: {sorted(ORDER_PARAMS)}", "invalid_request")
        if side not in ("buy", "sell"):
            raise InvalidOrder(f"side must be 'buy' or 'sell', got {side!r}", "invalid_side")
        time_in_force = params.get("timeInForce", "PO" if params.get("postOnly") else "GTC")
        if type == "market":
            # a market order takes what the book has: IOC at the far limit
            if price is not None or time_in_force not in ("GTC", "IOC"):
                raise InvalidOrder("a market order takes no price and no timeInForce but IOC", "invalid_order")
            limit, time_in_force = (MAX_PRICE if side == "buy" else MIN_PRICE), "IOC"
        elif type == "limit":
            if price is None:
                raise InvalidOrder(f"a limit order needs a price ({symbol})", "invalid_order")
            limit = self.to_price(symbol, price)
        else:
            raise InvalidOrder(f"order type must be 'limit' or 'market', got {type!r}", "invalid_order")
        if time_in_force not in TIME_IN_FORCE or (params.get("postOnly") and time_in_force != "PO"):
            raise InvalidOrder(f"timeInForce must be one of {', '.join(TIME_IN_FORCE)} (postOnly means PO), got {time_in_force!r}", "invalid_order")
        client_id = params.get("clientOrderId", 0)
        if isinstance(client_id, str) and client_id.isdigit():
            client_id = int(client_id)
        # the wire's client id is a 64-bit integer
        if not isinstance(client_id, int) or not 0 <= client_id < 2**64:
            raise InvalidOrder(f"clientOrderId must be an integer in [0, 2^64), got {client_id!r}", "invalid_order")
        unsigned = build_message(
            Order,
            account=account,
            instrument=market["numericId"],
            is_buy=side == "buy",
            size=self.to_amount(symbol, amount),
            price=limit,
            time_in_force=TIME_IN_FORCE[time_in_force],
            expiry=params.get("expiry", 0),
            client_id=client_id,
            nonce=params.get("nonce") or self._next_order_nonce(),
        )
        answer = self._request("POST", "/orders", json=json.loads(self._sign(unsigned).model_dump_json()))
        return self.parse_order(answer, answer.get("records"))

    def fetch_order(self, id: str, symbol: str | None = None, params: dict | None = None) -> dict[str, Any]:
        return self.parse_order(self._request("GET", f"/orders/{id}"))

    def cancel_order(self, id: str, symbol: str | None = None, params: dict | None = None) -> dict[str, Any]:
        """Cancel an open order (its market is looked up when `symbol` is not given)."""
        account, _ = self._require_signer()
        instrument = self.market(symbol)["numericId"] if symbol is not None else self._request("GET", f"/orders/{id}")["order"]["instrument"]
        unsigned = build_message(Cancel, account=account, instrument=instrument, order_id=id)
        answer = self._request("DELETE", f"/orders/{id}", json=json.loads(self._sign(unsigned).model_dump_json()))
        return self.parse_order(answer)

    def cancel_all_orders(self, symbol: str | None = None, params: dict | None = None) -> list[dict[str, Any]]:
        """Without `symbol`: one signed CancelAll (every market; it also voids this account's
        earlier-nonce orders still in flight). With `symbol`: each open order of that market."""
        account, _ = self._require_signer()
        if symbol is not None:
            return [self.cancel_order(o["id"], symbol) for o in self.fetch_open_orders(symbol)]
        unsigned = build_message(CancelAll, account=account, nonce=self._next_nonce())
        answer = self._request("POST", "/orders/cancel-all", json=json.loads(self._sign(unsigned).model_dump_json()))
        return [{"id": order_id, "status": "canceled", "info": answer} for order_id in answer["cancelled"]]

    # --- the account ---------------------------------------------------------------------------

    def _fetch_account(self) -> dict[str, Any]:
        # the account's views need an account
        if self.account is None:
            raise BadRequest("this client has no account: pass account=", "no_credentials")
        return self._request("GET", f"/accounts/{self.account}")

    def fetch_open_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None, params: dict | None = None) -> list[dict[str, Any]]:
        wanted = self.market(symbol)["numericId"] if symbol is not None else None
        orders = [self.parse_order(s) for s in self._fetch_account()["open_orders"] if wanted is None or s["order"]["instrument"] == wanted]
        orders = [o for o in orders if since is None or o["timestamp"] >= since]
        return orders[:limit] if limit else orders

    def fetch_balance(self, params: dict | None = None) -> dict[str, Any]:
        """USD collateral as CCXT's balance of USDC: total = equity (collateral plus the positions'
        value at the marks), used = initial margin, free = the rest."""
        account = self._fetch_account()
        total, used = account["equity"] / USD, account["initial_margin"] / USD
        entry = {"free": total - used, "used": used, "total": total}
        return {
            "info": account,
            SETTLE: entry,
            "free": {SETTLE: entry["free"]},
            "used": {SETTLE: entry["used"]},
            "total": {SETTLE: entry["total"]},
            "collateral": account["collateral"] / USD,
        }

    def fetch_positions(self, symbols: list[str] | None = None, params: dict | None = None) -> list[dict[str, Any]]:
        """The account's rollup positions (what settled batches hold; the service's fills are not
        rollup transactions yet). Perpetuals' unrealised P&L at the mark includes pending funding."""
        account = self._fetch_account()
        try:
            marks = {m["instrument"]: m for m in self._request("GET", "/marks")["marks"]}
        except BadRequest:
            marks = {}  # a service without /marks: positions without mark prices
        positions = []
        for position in account["positions"]:
            market = self._market_of(position["instrument"])
            symbol, size, cost = market["symbol"], position["size"], position["cost"]
            if symbols is not None and symbol not in symbols:
                continue
            mark = marks.get(position["instrument"], {}).get("mark")
            pnl = None
            if mark is not None and market["swap"]:
                funding_index = marks[position["instrument"]]["funding_index"]
                pnl = (size * (mark - funding_index + position["funding"]) - cost) / USD  # rollup/state.py's value
            positions.append({
                "info": position,
                "id": None,
                "symbol": symbol,
                "timestamp": None,
                "datetime": None,
                "contracts": abs(size),
                "contractSize": market["contractSize"],
                "side": "long" if size > 0 else "short",
                "entryPrice": self.from_price(symbol, cost / size) if market["swap"] and size else None,
                "markPrice": self.from_price(symbol, mark) if mark is not None else None,
                "notional": abs(size) * mark / USD if mark is not None else None,
                "unrealizedPnl": pnl,
                "marginMode": "cross",
                "hedged": False,
                "leverage": None,
                "collateral": None,
                "initialMargin": None,
                "maintenanceMargin": None,
                "liquidationPrice": None,
                "percentage": None,
            })
        return positions

    # --- streams ---------------------------------------------------------------------------------

    def _ws_url(self, path: str) -> str:
        return self.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + path

    async def watch_order_book(self, symbol: str, limit: int | None = None, params: dict | None = None) -> dict[str, Any]:
        """The order book after its next change (the snapshot on the first call), kept from a
        WebSocket snapshot and its deltas; a gap in the sequence numbers re-snapshots."""
        market = self.market(symbol)
        stream = self._book_streams.get(symbol)
        if stream is None:
            stream = self._book_streams[symbol] = _BookStream(self._ws_url(f"/ws/book/{market['numericId']}"))
        book = await stream.next()
        bids, asks = book.get_levels()
        return self._build_book(symbol, bids, asks, book.sequence, book.time_ms, limit)

    async def watch_trades(self, symbol: str, since: int | None = None, limit: int | None = None, params: dict | None = None) -> list[dict[str, Any]]:
        """The next trade(s) of the market, from the moment of the first call."""
        market = self.market(symbol)
        socket = self._trade_streams.get(symbol)
        if socket is None:
            socket = self._trade_streams[symbol] = await open_socket(self._ws_url(f"/ws/trades/{market['numericId']}"))
        message = _check_stream_message(json.loads(await socket.recv()))
        return [self.parse_trade(message, symbol)]

    async def close_streams(self) -> None:
        """Close every WebSocket the watch_* methods opened."""
        for stream in self._book_streams.values():
            await stream.close()
        for socket in self._trade_streams.values():
            await socket.close()
        self._book_streams.clear()
        self._trade_streams.clear()


__all__ = [
    "RollupExchange", "LocalOrderBook", "BaseError", "ExchangeError", "BadRequest", "BadSymbol", "InvalidOrder",
    "OrderNotFound", "DuplicateOrderId", "NetworkError", "ExchangeNotAvailable", "get_symbol", "build_market",
]
