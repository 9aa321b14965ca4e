"""A market maker on `rollup serve`: quotes both sides of the perpetuals around the oracle mark,
skewed and sized by its portfolio's Greeks from the rollup's risk engine, and refreshes the quotes
(cancel, then replace) each round.

Per round and underlying: the inventory is the account's rollup positions plus what its quotes
have filled on the exchange so far (fills do not settle on the rollup yet); its Greeks come from
`rollup.risk.compute_portfolio_greeks` with spot read from the perpetual's mark, as `rollup risk`
does. With q = dollar delta / --max-delta-usd (clamped to [-1, 1]):

    reservation = mark x (1 - q x skew)           a long book quotes lower, to sell
    half spread = spread / 2 x (1 + |gamma$| / --gamma-usd-limit, at most 2)
    bid = reservation x (1 - half spread), ask = reservation x (1 + half spread)
    bid size = round(size x (1 - q)), ask size = round(size x (1 + q))   (a side of 0 is not quoted)

Quotes are post-only. `--taker-account` adds a second client that takes one side each round with
a small market order, so the quotes fill and the skew moves. Run it against a node with funded
accounts and oracle marks (docs/client.md gives the commands).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing

from rollup.risk import MarketSnapshot, UnderlyingQuote, compute_portfolio_greeks  # noqa: E402
from service.client import BaseError, OrderNotFound, RollupExchange  # noqa: E402

PERP_TYPE = "swap"


@dataclass
class Quote:
    symbol: str
    side: str
    amount: int
    price: float
    order_id: str | None = None
    status: str = ""
    counted: int = 0  # contracts of this order's fills already in the inventory


@dataclass
class MarketMaker:
    exchange: RollupExchange
    symbols: list[str]
    size: int
    spread_bps: float
    skew_bps: float
    max_delta_usd: float
    gamma_usd_limit: float
    vol: float
    fills: dict[str, int] = field(default_factory=dict)  # symbol -> signed contracts filled on the exchange
    quotes: list[Quote] = field(default_factory=list)
    log: list[dict] = field(default_factory=list)

    def collect_fills(self) -> None:
        """Add what the resting quotes filled since the last look to the inventory."""
        for quote in self.quotes:
            if quote.order_id is None:
                continue
            order = self.exchange.fetch_order(quote.order_id)
            new = order["filled"] - quote.counted
            quote.counted = order["filled"]
            quote.status = order["status"]
            self.fills[quote.symbol] = self.fills.get(quote.symbol, 0) + (new if quote.side == "buy" else -new)

    def cancel_quotes(self) -> int:
        cancelled = 0
        for quote in self.quotes:
            if quote.order_id is None or quote.status != "open":
                continue
            try:
                self.exchange.cancel_order(quote.order_id, quote.symbol)
                cancelled += 1
            except OrderNotFound:
                pass  # filled (or expired) between our look and the cancel
        self.quotes = []
        return cancelled

    def compute_greeks(self, marks: dict[str, dict]):
        """Portfolio Greeks of rollup positions plus exchange fills, spot from the perpetuals' marks."""
        markets = self.exchange.load_markets()
        oracle_time = next(iter(marks.values()))["timestamp"] // 1000
        quotes = {
            markets[s]["base"]: UnderlyingQuote(spot=m["markPrice"], vol=self.vol)
            for s, m in marks.items() if markets[s]["type"] == PERP_TYPE
        }
        positions: dict[int, int] = {}
        for position in self.exchange.fetch_positions():
            signed = position["contracts"] if position["side"] == "long" else -position["contracts"]
            positions[markets[position["symbol"]]["numericId"]] = signed
        for symbol, filled in self.fills.items():
            instrument = markets[symbol]["numericId"]
            positions[instrument] = positions.get(instrument, 0) + filled
        specs = {spec.id: spec for spec in self.exchange.genesis.instruments}
        return compute_portfolio_greeks(positions, specs, MarketSnapshot(timestamp=oracle_time, quotes=quotes))

    def run_round(self, number: int) -> dict:
        self.collect_fills()
        cancelled = self.cancel_quotes()
        marks = self.exchange.fetch_mark_prices()
        missing = [s for s in self.symbols if s not in marks]
        # quotes are centred on the oracle's mark: without one there is nothing to quote around
        if missing:
            raise SystemExit(f"no oracle mark for {', '.join(missing)}: the node has had no oracle update (docs/client.md)")
        greeks = self.compute_greeks(marks)
        markets = self.exchange.load_markets()
        report = {"round": number, "cancelled": cancelled, "markets": []}
        for symbol in self.symbols:
            base = markets[symbol]["base"]
            mark = marks[symbol]["markPrice"]
            underlying = greeks.by_underlying.get(base)
            delta_usd = underlying.delta_usd if underlying else 0.0
            gamma_usd = underlying.gamma_usd if underlying else 0.0
            q = max(-1.0, min(1.0, delta_usd / self.max_delta_usd))
            reservation = mark * (1 - q * self.skew_bps / 10_000)
            half_spread = self.spread_bps / 20_000 * (1 + min(abs(gamma_usd) / self.gamma_usd_limit, 1.0))
            sides = {
                "buy": (round(self.size * (1 - q)), reservation * (1 - half_spread)),
                "sell": (round(self.size * (1 + q)), reservation * (1 + half_spread)),
            }
            placed = []
            for side, (amount, price) in sides.items():
                if amount <= 0:
                    continue
                quote = Quote(symbol, side, amount, self.exchange.price_to_precision(symbol, price))
                try:
                    order = self.exchange.create_order(symbol, "limit", side, amount, quote.price, {"postOnly": True})
                    quote.order_id, quote.status = order["id"], order["status"]
                except BaseError as exc:
                    quote.status = f"refused: {exc}"
                self.quotes.append(quote)
                placed.append({"side": side, "amount": amount, "price": quote.price, "status": quote.status})
            report["markets"].append({
                "symbol": symbol, "mark": mark, "delta_usd": round(delta_usd, 2), "gamma_usd": round(gamma_usd, 4),
                "inventory_fills": self.fills.get(symbol, 0), "skew": round(q, 4), "quotes": placed,
            })
        self.log.append(report)
        return report


def take(taker: RollupExchange, symbol: str, side: str, amount: int) -> dict:
    """A market order of the taker account against the book."""
    order = taker.create_order(symbol, "market", side, amount)
    return {"side": side, "amount": amount, "filled": order["filled"], "average": order["average"], "status": order["status"]}


def print_round(report: dict) -> None:
    print(f"round {report['round']}: cancelled {report['cancelled']} quotes")
    for m in report["markets"]:
        quotes = ", ".join(f"{q['side']} {q['amount']} @ {q['price']:,} ({q['status']})" for q in m["quotes"])
        print(f"  {m['symbol']}: mark {m['mark']:,}, delta {m['delta_usd']:+,.2f} USD, gamma {m['gamma_usd']:+.4f} USD/1%, "
              f"exchange fills {m['inventory_fills']:+d}, skew {m['skew']:+.3f} -> {quotes}")
    if "taker" in report:
        t = report["taker"]
        print(f"  taker: {t['side']} {t['amount']} market -> filled {t['filled']} at {t['average']} ({t['status']})")


def get_key(args: argparse.Namespace, account: int) -> bytes:
    if args.key:
        return bytes.fromhex(args.key.removeprefix("0x"))
    if os.environ.get("ROLLUP_PRIVATE_KEY") and account == args.account:
        return bytes.fromhex(os.environ["ROLLUP_PRIVATE_KEY"].removeprefix("0x"))
    from rollup.signing import dev_account_key

    return dev_account_key(args.dev_seed, account)  # the TEST keys of `rollup fixtures` / `rollup demo`


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service (rollup serve)")
    parser.add_argument("--account", type=int, default=1, help="the market maker's account")
    parser.add_argument("--key", help="its private key (0x-hex; default $ROLLUP_PRIVATE_KEY, else the TEST key of --dev-seed)")
    parser.add_argument("--dev-seed", type=int, default=7, help="seed of the TEST keys of rollup fixtures/demo")
    parser.add_argument("--symbols", default="", help="comma-separated symbols (default: every perpetual)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--size", type=int, default=5, help="contracts per side with a flat book")
    parser.add_argument("--spread-bps", type=float, default=20.0, help="full spread around the reservation price")
    parser.add_argument("--skew-bps", type=float, default=30.0, help="reservation shift at the delta limit")
    parser.add_argument("--max-delta-usd", type=float, default=50_000.0, help="dollar delta at which the skew is full")
    parser.add_argument("--gamma-usd-limit", type=float, default=100.0, help="dollar gamma (per 1%%) that doubles the spread")
    parser.add_argument("--vol", type=float, default=0.6, help="volatility for the option Greeks (annualised)")
    parser.add_argument("--taker-account", type=int, help="also take one side each round from this account (its TEST key)")
    parser.add_argument("--keep-quotes", action="store_true", help="leave the last quotes on the book")
    parser.add_argument("--json", action="store_true", help="print one JSON object per round and a summary")
    args = parser.parse_args(argv)
    # a round count and a size are counts
    if args.rounds < 1 or args.size < 1:
        parser.error("--rounds and --size must be >= 1")

    exchange = RollupExchange(args.url, args.account, get_key(args, args.account))
    try:
        markets = exchange.load_markets()
    except BaseError as exc:
        print(f"cannot reach the service at {args.url}: {exc}", file=sys.stderr)
        return 1
    symbols = [s for s in args.symbols.split(",") if s] or [s for s, m in markets.items() if m["type"] == PERP_TYPE]
    maker = MarketMaker(exchange, symbols, args.size, args.spread_bps, args.skew_bps, args.max_delta_usd,
                        args.gamma_usd_limit, args.vol)
    taker = RollupExchange(args.url, args.taker_account, get_key(args, args.taker_account), genesis=exchange.genesis) if args.taker_account is not None else None
    try:
        for number in range(1, args.rounds + 1):
            report = maker.run_round(number)
            if taker is not None:
                # alternate sides so the inventory, and with it the skew, moves both ways
                report["taker"] = take(taker, symbols[0], "buy" if number % 2 else "sell", max(1, args.size // 2))
            if args.json:
                print(json.dumps(report), flush=True)
            else:
                print_round(report)
            if number < args.rounds:
                time.sleep(args.interval)
        maker.collect_fills()
        left = 0 if args.keep_quotes else maker.cancel_quotes()
        summary = {"rounds": args.rounds, "fills": maker.fills, "cancelled_at_end": left,
                   "open_orders": len(exchange.fetch_open_orders())}
        print(json.dumps({"summary": summary}) if args.json else f"done: exchange fills {maker.fills}, "
              f"cancelled {left} quotes at the end, {summary['open_orders']} open orders left")
    except BaseError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        exchange.close()
        if taker is not None:
            taker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
