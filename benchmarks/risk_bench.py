"""Risk engine benchmark: prints JSON.

- Black-Scholes price + Greeks of N series x 16 scenarios: vectorised numpy vs a scalar loop.
- Risk arrays (integer, 16 scenarios) for 1k option series: vectorised vs reference.
- One full oracle update (marks, funding, risk arrays, settlements) for 1k series.
- Margin requirement calls per second for portfolios of 1, 4, 16 instruments (fast and reference).

Usage: .venv/bin/python benchmarks/risk_bench.py [--series 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections.abc import Callable

import numpy as np

from rollup.margin import compute_margin_requirement, compute_margin_requirement_reference
from rollup.oracle_feed import compute_oracle_values
from rollup.risk import (
    DEFAULT_GRID,
    MarketSnapshot,
    OptionSpec,
    PerpSpec,
    UnderlyingQuote,
    compute_option_greeks,
    compute_option_greeks_scalar,
    compute_risk_arrays,
    compute_risk_arrays_reference,
)
from rollup.units import SECONDS_PER_YEAR, to_contract_price

NOW = 1_800_000_000
MARKET = MarketSnapshot(NOW, {"BTC": UnderlyingQuote(60_000.0, 0.6, 0.05, 0.0, 0.0005),
                              "ETH": UnderlyingQuote(3_000.0, 0.75, 0.05)})


def get_best_seconds(function: Callable[[], object], repeat: int) -> float:
    """Best of `repeat` wall-clock runs (the machine is shared: the minimum is the least noisy)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def make_series(count: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    series = {}
    for i in range(count):
        underlying, spot, size = ("BTC", 60_000.0, 10) if i % 2 else ("ETH", 3_000.0, 1_000)
        series[f"opt-{i}"] = OptionSpec(underlying, to_contract_price(spot * rng.uniform(0.5, 1.5), size),
                                        NOW + int(rng.integers(3_600, SECONDS_PER_YEAR)),
                                        bool(rng.integers(0, 2)), size)
    return series


def bench_greeks(count: int, repeat: int) -> dict:
    rng = np.random.default_rng(2)
    scenarios = DEFAULT_GRID.size
    spot = (60_000.0 * (1.0 + np.asarray(DEFAULT_GRID.price_moves)))[None, :]
    strike = rng.uniform(30_000, 90_000, count)[:, None]
    vol = np.maximum(0.6 + np.asarray(DEFAULT_GRID.vol_moves), 0.0)[None, :]
    expiry = rng.uniform(0.01, 1.0, count)[:, None]
    is_call = (rng.integers(0, 2, count) == 1)[:, None]

    def vectorised() -> object:
        return compute_option_greeks(spot, strike, 0.05, vol, expiry, is_call)

    flat = [(float(s), float(k), float(v), float(t), bool(c))
            for s, k, v, t, c in zip(*(a.ravel() for a in np.broadcast_arrays(spot, strike, vol, expiry, is_call)))]

    def scalar_loop() -> object:
        return [compute_option_greeks_scalar(s, k, 0.05, v, t, c) for s, k, v, t, c in flat]

    fast = get_best_seconds(vectorised, repeat)
    slow = get_best_seconds(scalar_loop, max(1, repeat // 2))
    return {"series": count, "scenarios": scenarios, "evaluations": count * scenarios,
            "vectorised_ms": round(fast * 1e3, 3), "scalar_loop_ms": round(slow * 1e3, 3),
            "speedup": round(slow / fast, 1),
            "vectorised_ns_per_evaluation": round(fast / (count * scenarios) * 1e9, 1)}


def bench_risk_arrays(count: int, repeat: int) -> dict:
    series = make_series(count)
    fast = get_best_seconds(lambda: compute_risk_arrays(series, MARKET), repeat)
    slow = get_best_seconds(lambda: compute_risk_arrays_reference(series, MARKET), max(1, repeat // 2))
    perps = {"BTC-PERP": PerpSpec("BTC", 10), "ETH-PERP": PerpSpec("ETH", 1_000)}
    oracle = get_best_seconds(lambda: compute_oracle_values(MARKET, perps, series), repeat)
    return {"series": count, "scenarios": DEFAULT_GRID.size,
            "vectorised_ms": round(fast * 1e3, 3), "reference_ms": round(slow * 1e3, 3),
            "speedup": round(slow / fast, 1), "oracle_update_ms": round(oracle * 1e3, 3)}


def bench_margin(sizes: tuple[int, ...], calls: int) -> list[dict]:
    series = make_series(max(sizes), seed=3)
    arrays = compute_risk_arrays(series, MARKET)
    rng = random.Random(4)
    rows = []
    for size in sizes:
        positions = {key: rng.choice([-1, 1]) * rng.randint(1, 1_000) for key in list(series)[:size]}
        row = {"instruments": size}
        for name, function in (("fast", compute_margin_requirement),
                               ("reference", compute_margin_requirement_reference)):
            seconds = get_best_seconds(lambda: [function(positions, arrays) for _ in range(calls)], 3)
            row[f"{name}_calls_per_s"] = round(calls / seconds)
            row[f"{name}_us_per_call"] = round(seconds / calls * 1e6, 2)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=1_000, help="option series for greeks and risk arrays")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (best is reported)")
    parser.add_argument("--margin-calls", type=int, default=20_000, help="margin calls per measurement")
    args = parser.parse_args()
    report = {
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "processor": platform.machine()},
        "greeks_x_scenarios": [bench_greeks(n, args.repeat) for n in (100, args.series)],
        "risk_arrays": bench_risk_arrays(args.series, args.repeat),
        "margin_requirement": bench_margin((1, 4, 16), args.margin_calls),
        "margin_target_calls_per_s": 20_000,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
