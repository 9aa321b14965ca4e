"""Liquidation monitor benchmark: prints JSON (exchange/liquidation.py, docs/liquidation.md).

The state: the default genesis (rollup/genesis.py: BTC and ETH perpetuals, 8 option series),
priced by the oracle feed (rollup/oracle_feed.py) and applied with the rules, then `--accounts`
accounts with 1-4 random positions each (sizes up to 200 contracts, perps entered near the mark),
collateral putting each between 0.6x and 4x its initial margin. The accounts are written into the
state directly, not traded into it (the monitor reads positions; it does not need them netted).

Then `--updates` oracle updates that move one market: BTC's spot by a random step of up to
`--step` (a fraction), listing only the BTC instruments (perpetual and series), each applied with
the rules. After each one, every variant brings its own monitor up to date, timed:

- heap, serial: re-checks only the holders whose distance to maintenance the move can have used up;
- holders, serial / process pool / Dask (`--workers`): re-checks every holder of a moved
  instrument, partitioned on the executor;
- full scans: every account by the rules' functions (`find_breached`), and every account by the
  monitor's check (serial and on the process pool).

Every variant's breached set is checked against the full scan after every update. After each
update a "fill batch" changes `--batch` random accounts (sizes moved by a few contracts) and the
heap monitor is brought up to date with `apply_state_changes` (what runs after every batch).
Finally a crash (BTC -10%) is measured once, and `build_liquidations` plans (and signs) the
liquidation of the first `--liquidate` breached accounts from a new, well-funded liquidator
account; the plan is then run through the rules, in order, on a copy of the state: every
transaction must be accepted. Times are medians over the updates.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import time

from exchange.liquidation import LiquidationMonitor, build_liquidations, find_breached
from rollup.executors import make_executor
from rollup.fixtures import build_oracle_update, get_initial_quotes
from rollup.genesis import default_genesis
from rollup.oracle_feed import OracleValues, compute_oracle_values
from rollup.risk import MarketSnapshot
from rollup.rules import process_transaction
from rollup.signing import derive_l2_key, dev_account_key, dev_oracle_key, get_address, unsigned
from rollup.state import Account, Position, State, compute_equity, compute_maintenance, compute_requirement
from rollup.units import USD
from verifier.wire import OracleUpdate

MOVED = "BTC"
LIQUIDATOR_COLLATERAL = 10**9 * USD


def apply_update(state: State, update: OracleUpdate) -> None:
    receipt = process_transaction(state, update, [state.genesis.oracle_address])
    # the benchmark's updates are valid: a rejection is a bug here
    if receipt.status != "accepted":
        raise SystemExit(f"oracle update rejected: {receipt.reason}")


def restrict(update: OracleUpdate, ids: set[int]) -> OracleUpdate:
    """The update with only these instruments: an update that moves one market."""
    return unsigned(
        OracleUpdate,
        timestamp=update.timestamp,
        previous_timestamp=update.previous_timestamp,
        marks=[m for m in update.marks if m.instrument in ids],
        funding=[f for f in update.funding if f.market in ids],
        risk_arrays=[r for r in update.risk_arrays if r.instrument in ids],
        settlements=[],
    )


def make_state(seed: int, n_accounts: int) -> tuple[State, OracleValues, MarketSnapshot]:
    genesis = default_genesis(get_address(dev_oracle_key(seed)))
    state = State.from_genesis(genesis)
    perps = {s.id: s for s in genesis.instruments if s.kind == "perp"}
    series = {s.id: s for s in genesis.instruments if s.kind == "option"}
    snapshot = MarketSnapshot(genesis.genesis_time + 60, get_initial_quotes(genesis))
    values = compute_oracle_values(snapshot, perps, series)
    apply_update(state, build_oracle_update(values, state))
    rng = random.Random(seed)
    instruments = state.instruments
    ids = sorted(instruments)
    for account_id in range(n_accounts):
        positions = {}
        for instrument_id in rng.sample(ids, rng.choice((1, 1, 2, 2, 3, 4))):
            instrument = instruments[instrument_id]
            size = rng.choice((-1, 1)) * rng.randint(1, 200)
            if instrument.is_perp:
                entry = round(instrument.mark * rng.uniform(0.98, 1.02))
                positions[instrument_id] = Position(size, size * entry, instrument.funding_index)
            else:
                positions[instrument_id] = Position(size, 0, 0)
        requirement = compute_requirement(instruments, positions)
        value = compute_equity(instruments, 0, positions)
        collateral = max(0, round(requirement * rng.uniform(0.6, 4.0)) - value)
        state.accounts[account_id] = Account(f"0x{account_id + 1:040x}", collateral, 0, positions)
    return state, values, snapshot


def make_market_update(state: State, values: OracleValues, snapshot: MarketSnapshot, move: float, ids: set[int]) -> tuple[OracleUpdate, OracleValues, MarketSnapshot]:
    """The next update: BTC's spot moved by `move`, a minute later, only BTC's instruments listed."""
    genesis = state.genesis
    perps = {s.id: s for s in genesis.instruments if s.kind == "perp"}
    series = {s.id: s for s in genesis.instruments if s.kind == "option"}
    quotes = dict(snapshot.quotes)
    quote = quotes[MOVED]
    quotes[MOVED] = type(quote)(spot=quote.spot * (1.0 + move), vol=quote.vol, rate=quote.rate, carry=quote.carry, perp_premium=quote.perp_premium)
    snapshot = MarketSnapshot(snapshot.timestamp + 60, quotes)
    values = compute_oracle_values(snapshot, perps, series, values)
    return restrict(build_oracle_update(values, state), ids), values, snapshot


def move_accounts(rng: random.Random, state: State, count: int) -> list[int]:
    """A batch of fills: `count` random accounts' first positions move by a few contracts."""
    changed = rng.sample(sorted(a for a, account in state.accounts.items() if account.positions), count)
    for account_id in changed:
        account = state.accounts[account_id]
        instrument_id, position = next(iter(sorted(account.positions.items())))
        size = position.size + rng.choice((-3, -2, -1, 1, 2, 3))
        positions = dict(account.positions)
        if size == 0:
            del positions[instrument_id]
        else:
            instrument = state.instruments[instrument_id]
            cost = position.cost + (size - position.size) * instrument.mark if instrument.is_perp else 0
            positions[instrument_id] = Position(size, cost, position.funding)
        account.positions = positions
    return changed


def measure_liquidations(state: State, breached: list[int], seed: int) -> dict:
    """build_liquidations for these accounts from a new, well-funded liquidator account, then the
    plan run through the rules in order on a copy of the state: every transaction must pass."""
    liquidator = max(state.accounts) + 1
    key = derive_l2_key(dev_account_key(seed, liquidator), state.genesis.signing_domain)
    state.accounts[liquidator] = Account(f"0x{liquidator + 1:040x}", LIQUIDATOR_COLLATERAL, 0, {}, key.key_id)
    t = time.perf_counter()
    plan = build_liquidations(state, breached, liquidator, key)
    seconds = time.perf_counter() - t
    check = state.copy()
    receipts = [process_transaction(check, tx, [key.key_id]) for tx in plan.transactions]
    # the plan is valid under the rules, in order
    if any(r.status != "accepted" for r in receipts):
        raise SystemExit(f"a planned liquidation was rejected: {next(r.reason for r in receipts if r.status != 'accepted')}")
    still = [a for a in breached if compute_equity(check.instruments, check.accounts[a].collateral, check.accounts[a].positions)
             < compute_maintenance(compute_requirement(check.instruments, check.accounts[a].positions), state.genesis.risk.maintenance_bps)]
    reasons: dict[str, int] = {}
    for why in plan.partial.values():
        first = why.split("; ")[0]
        first = first.split(": ", 1)[1] if first.startswith("instrument ") else first
        general = re.sub(r"-?\d[\d.,]*", "N", first.split(":")[0].split(" (")[0])  # "too many positions"
        reasons[general] = reasons.get(general, 0) + 1
    del state.accounts[liquidator]
    return {
        "accounts": len(breached),
        "transactions": len(plan.transactions),
        "all_accepted_by_the_rules": True,
        "restored": len(breached) - len(still),
        "partial": len(plan.partial),
        "partial_reasons": reasons,
        "skipped": len(plan.skipped),
        "build_and_sign_s": round(seconds, 3),
        "ms_per_account": round(1000 * seconds / max(1, len(breached)), 3),
    }


def median(values: list[float]) -> float:
    return round(statistics.median(values), 6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=9, help="oracle updates moving one market")
    parser.add_argument("--step", type=float, default=0.01, help="largest spot move per update (fraction)")
    parser.add_argument("--batch", type=int, default=512, help="accounts a fill batch changes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--liquidate", type=int, default=1_000, help="breached accounts the crash's liquidation plan covers")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask variant")
    args = parser.parse_args()
    result: dict = {
        "command": "python " + " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_at_start": os.getloadavg()},
    }
    # the executors first: forked workers must not copy the large state
    with make_executor("process", args.workers) as pool, (
        make_executor("dask", args.workers) if not args.no_dask else make_executor("serial")
    ) as dask:
        t = time.perf_counter()
        state, values, snapshot = make_state(args.seed, args.accounts)
        result["state_build_s"] = round(time.perf_counter() - t, 3)
        moved_ids = {s.id for s in state.genesis.instruments if s.underlying == MOVED}
        holders = sum(1 for a in state.accounts.values() if moved_ids & a.positions.keys())
        result["state"] = {
            "accounts": len(state.accounts),
            "instruments": len(state.instruments),
            "positions": sum(len(a.positions) for a in state.accounts.values()),
            "moved_market": MOVED,
            "moved_instruments": sorted(moved_ids),
            "holders_of_moved_market": holders,
        }
        variants: dict[str, LiquidationMonitor] = {}
        build_s: dict[str, float] = {}
        specs = [("heap_serial", "heap", None), ("holders_serial", "holders", None), (f"holders_process{args.workers}", "holders", pool)]
        if not args.no_dask:
            specs.append((f"holders_dask{args.workers}", "holders", dask))
        for name, mode, executor in specs:
            t = time.perf_counter()
            variants[name] = LiquidationMonitor.from_state(state, mode, executor)
            build_s[name] = round(time.perf_counter() - t, 3)
        result["monitor_build_s"] = build_s
        rng = random.Random(args.seed + 1)
        rechecked: dict[str, list[int]] = {name: [] for name in variants}
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        scans: dict[str, list[float]] = {"rules_serial": [], "monitor_serial": [], f"monitor_process{args.workers}": []}
        fills: dict[str, list[float]] = {"rechecked": [], "seconds": []}
        breached_counts = []

        def measure(update: OracleUpdate) -> dict:
            apply_update(state, update)
            t = time.perf_counter()
            expected = find_breached(state)
            scans["rules_serial"].append(time.perf_counter() - t)
            step = {"breached": len(expected)}
            for name, monitor in variants.items():
                report = monitor.on_oracle_update(update)
                # every variant finds exactly the accounts the full scan finds
                if list(report.breached) != expected:
                    raise SystemExit(f"{name}: breached set differs from the full scan")
                rechecked[name].append(report.rechecked)
                seconds[name].append(report.seconds)
                step[name] = {"rechecked": report.rechecked, "seconds": round(report.seconds, 6)}
            for name, monitor in ((f"monitor_serial", variants["holders_serial"]), (f"monitor_process{args.workers}", variants[f"holders_process{args.workers}"])):
                full = monitor.recheck_all()
                if list(full.breached) != expected:
                    raise SystemExit(f"{name}: full re-check differs from the full scan")
                scans[name].append(full.seconds)
            return step

        steps = []
        for _ in range(args.updates):
            update, values, snapshot = make_market_update(state, values, snapshot, rng.uniform(-args.step, args.step), moved_ids)
            steps.append(measure(update))
            breached_counts.append(steps[-1]["breached"])
            # a fill batch: the heap monitor after every batch
            changed = move_accounts(rng, state, args.batch)
            expected = find_breached(state)
            for name, monitor in variants.items():
                report = monitor.apply_state_changes(state, changed)
                if list(report.breached) != expected:
                    raise SystemExit(f"{name}: breached set differs from the full scan after a fill batch")
                if name == "heap_serial":
                    fills["rechecked"].append(report.rechecked)
                    fills["seconds"].append(report.seconds)
        serial_holders = median(seconds["holders_serial"])
        result["oracle_update_one_market"] = {
            "updates": args.updates,
            "largest_step": args.step,
            "breached_per_update": breached_counts,
            "rechecked_median": {name: statistics.median(v) for name, v in rechecked.items()},
            "seconds_median": {name: median(v) for name, v in seconds.items()},
            "full_scan_seconds_median": {name: median(v) for name, v in scans.items()},
            "speedup_holders_parallel_vs_serial": {
                name: round(serial_holders / median(seconds[name]), 2) for name in seconds if name.startswith("holders_") and name != "holders_serial"
            },
            "speedup_monitor_full_scan_parallel_vs_serial": round(median(scans["monitor_serial"]) / median(scans[f"monitor_process{args.workers}"]), 2),
            "speedup_heap_vs_rules_full_scan": round(median(scans["rules_serial"]) / median(seconds["heap_serial"]), 1),
            "speedup_holders_vs_rules_full_scan": round(median(scans["rules_serial"]) / serial_holders, 2),
            "per_update": steps,
        }
        result["fill_batch"] = {
            "accounts_changed": args.batch,
            "heap_serial_rechecked_median": statistics.median(fills["rechecked"]),
            "heap_serial_seconds_median": median(fills["seconds"]),
        }
        update, values, snapshot = make_market_update(state, values, snapshot, -0.10, moved_ids)
        crash = measure(update)
        result["crash_btc_minus_10pct"] = crash
        result["crash_full_scan_rules_s"] = round(scans["rules_serial"][-1], 6)
        result["liquidations_after_crash"] = measure_liquidations(state, variants["heap_serial"].breached[: args.liquidate], args.seed)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
