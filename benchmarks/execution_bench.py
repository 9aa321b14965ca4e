"""Native execution throughput of the rules (rollup/rules.py) on a mixed derivatives workload.

Builds, without signatures (the expected signer addresses are passed as `signers`, as the
separate signature pass would give them), a workload over `--accounts` accounts:

- setup: one deposit per account (market makers, thinly collateralised "risky" traders, regular
  traders) and a first oracle update (marks, funding, risk arrays from rollup/oracle_feed.py);
- the measured batch of `--transactions` transactions: top-up deposits, perp trades, option trades,
  transfers, withdrawals, levered longs of the risky traders and periodic oracle updates; then an
  oracle update at the first option expiry that also drops BTC by 15% (settlement prices for the
  expired series), followed by liquidations of the accounts that fell below maintenance,
  settlements of the expired series and more trading.

The workload is generated against a shadow state (each transaction is built from the state the
previous ones left, so nonces and margins are realistic), then executed with `process_batch` on a
fresh copy of the post-setup state. Transaction hashes are placeholders (hashing is the EIP-712
pass, excluded like signatures). Prints JSON: tx/s overall and per type, accepted/rejected
counts, peak RSS. Rates are per CPU second of this process (`time.process_time`): the machine is
shared, so wall time (also printed for the batch) overstates the cost. `--profile` adds the top
functions of a cProfile run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import resource
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from eth_utils import to_checksum_address

from rollup.genesis import default_genesis
from rollup.oracle_feed import DEFAULT_QUOTES, OracleValues, compute_oracle_values
from rollup.risk import MarketSnapshot, UnderlyingQuote
from rollup.rules import process_batch, process_transaction
from rollup.state import State, get_equity, get_maintenance_margin
from verifier.encoding import is_l2_signed
from rollup.units import USD
from verifier.wire import (
    Deposit,
    InstrumentFunding,
    InstrumentPrice,
    Liquidate,
    OptionTrade,
    OracleUpdate,
    PerpTrade,
    RiskArray,
    SettleExpired,
    Transfer,
    Withdraw,
)

SIG = "0x" + "00" * 65  # never checked here: execution receives the recovered signers
L2SIG = "0x" + "00" * 160  # the L2-signed types' (execution receives the verified key ids)
KEY_ID_BASE = 0x5EED0000  # account i's (fake) L2 key id
N_MAKERS = 1_000
N_RISKY = 2_000


def addr(n: int) -> str:
    return to_checksum_address(f"0x{n + 1:040x}")


ORACLE = addr(2**150)


def to_oracle_update(values: OracleValues, state: State) -> OracleUpdate:
    """The wire form of the oracle's values; settlements already published are not repeated."""
    marks = dict(values.perp_marks) | dict(values.option_marks)
    risk_arrays = values.get_risk_arrays()
    settlements = {i: p for i, p in values.settlement_prices if state.instruments[i].settlement is None}
    return OracleUpdate(
        timestamp=values.timestamp,
        previous_timestamp=state.globals.oracle_time,
        marks=[InstrumentPrice(instrument=i, price=p) for i, p in sorted(marks.items())],
        funding=[InstrumentFunding(market=i, index=x) for i, x in sorted(dict(values.funding_indices).items())],
        risk_arrays=[RiskArray(instrument=i, values=list(v)) for i, v in sorted(risk_arrays.items())],
        settlements=[InstrumentPrice(instrument=i, price=p) for i, p in sorted(settlements.items())],
        signature=SIG,
    )


@dataclass
class Workload:
    pre_state: State  # after the setup batch
    setup: list = field(default_factory=list)
    setup_signers: list = field(default_factory=list)
    transactions: list = field(default_factory=list)
    signers: list = field(default_factory=list)
    statuses: list = field(default_factory=list)  # of the shadow run


class WorkloadBuilder:
    """Builds transactions against a shadow state, executing each so the next one is realistic."""

    def __init__(self, n_accounts: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.genesis = default_genesis(ORACLE)
        self.state = State.from_genesis(self.genesis)
        self.n_accounts = n_accounts
        self.addresses = [addr(i) for i in range(n_accounts)]
        self.account_of = {a: i for i, a in enumerate(self.addresses)}
        self.perps = {s.id: s for s in self.genesis.instruments if s.kind == "perp"}
        self.series = {s.id: s for s in self.genesis.instruments if s.kind == "option"}
        self.quotes = dict(DEFAULT_QUOTES)
        self.values: OracleValues | None = None
        self.txs: list = []
        self.signers: list = []
        self.statuses: list = []

    def emit(self, tx, signers: list) -> bool:
        if is_l2_signed(type(tx)):
            # the key id each signing account registered (set at its deposit)
            signers = [KEY_ID_BASE + self.account_of[a] if isinstance(a, str) else a for a in signers]
        receipt = process_transaction(self.state, tx, signers)
        self.txs.append(tx)
        self.signers.append(signers)
        self.statuses.append(receipt.status)
        return receipt.status == "accepted"

    # --- transaction makers ---

    def deposit(self, account: int, amount: int) -> None:
        tx = Deposit(deposit_id=self.state.globals.deposit_count, account=account, address=self.addresses[account], amount=amount)
        if self.emit(tx, []) and not self.state.accounts[account].l2_key:
            # its L2 key registered at once, outside the timed transactions (a RegisterKey costs as a withdrawal)
            self.state.accounts[account].l2_key = KEY_ID_BASE + account

    def oracle_update(self, timestamp: int, btc_factor: float = 1.0) -> None:
        rng = self.rng
        self.quotes = {
            name: UnderlyingQuote(spot=q.spot * (btc_factor if name == "BTC" else 1.0) * (1 + rng.gauss(0, 0.002)),
                                  vol=q.vol, rate=q.rate, perp_premium=rng.gauss(0, 0.0005))
            for name, q in self.quotes.items()
        }
        self.values = compute_oracle_values(MarketSnapshot(timestamp, self.quotes), self.perps, self.series, self.values)
        self.emit(to_oracle_update(self.values, self.state), [ORACLE])

    def regular(self) -> int:
        return self.rng.randrange(N_MAKERS + N_RISKY, self.n_accounts)

    def nonce(self, account: int) -> int:
        return self.state.accounts[account].nonce

    def perp_trade(self) -> None:
        rng = self.rng
        maker, taker = self.regular(), self.regular()
        market = rng.choice(list(self.perps))
        mark = self.state.instruments[market].mark
        price = max(1, mark + mark * rng.randint(-50, 50) // 10_000)
        size = rng.choice([-1, 1]) * rng.randint(1, 5)
        fee = abs(size) * price * 5 // 10_000
        tx = PerpTrade(maker=maker, taker=taker, market=market, size=size, price=price, fee=fee,
                       maker_nonce=self.nonce(maker), taker_nonce=self.nonce(taker),
                       maker_signature=L2SIG, taker_signature=L2SIG)
        self.emit(tx, [self.addresses[maker], self.addresses[taker]])

    def option_trade(self) -> None:
        rng = self.rng
        buyer = self.regular()
        seller = self.regular() if rng.random() < 0.7 else rng.randrange(N_MAKERS)
        now = self.state.globals.oracle_time
        live = [i for i, s in self.series.items() if s.expiry > now]
        series = rng.choice(live)
        premium = max(1, self.state.instruments[series].mark)
        quantity = rng.randint(1, 5)
        tx = OptionTrade(buyer=buyer, seller=seller, series=series, quantity=quantity, premium=premium,
                         fee=quantity * 10_000, buyer_nonce=self.nonce(buyer), seller_nonce=self.nonce(seller),
                         buyer_signature=L2SIG, seller_signature=L2SIG)
        self.emit(tx, [self.addresses[buyer], self.addresses[seller]])

    def transfer(self) -> None:
        sender, recipient = self.regular(), self.regular()
        amount = self.rng.randint(1, 50) * USD
        tx = Transfer(sender=sender, recipient=recipient, amount=amount, nonce=self.nonce(sender), signature=L2SIG)
        self.emit(tx, [self.addresses[sender]])

    def withdraw(self) -> None:
        account = self.regular()
        tx = Withdraw(account=account, amount=self.rng.randint(1, 100) * USD, nonce=self.nonce(account), signature=SIG)
        self.emit(tx, [self.addresses[account]])

    def replay(self) -> None:
        """A transaction sent again: rejected for its stale nonce (replay protection)."""
        for tx, signers, status in zip(reversed(self.txs), reversed(self.signers), reversed(self.statuses)):
            if status == "accepted" and isinstance(tx, (PerpTrade, Transfer, Withdraw, OptionTrade)):
                self.emit(tx, signers)
                return

    def risky_open(self, account: int) -> None:
        """A thinly collateralised trader goes long BTC-PERP near its margin limit."""
        btc = 0
        instrument = self.state.instruments[btc]
        per_contract = -min(instrument.risk_array)
        collateral = self.state.accounts[account].collateral
        size = max(1, collateral * 9 // (10 * per_contract))
        maker = self.rng.randrange(N_MAKERS)
        tx = PerpTrade(maker=maker, taker=account, market=btc, size=size, price=instrument.mark, fee=0,
                       maker_nonce=self.nonce(maker), taker_nonce=self.nonce(account),
                       maker_signature=L2SIG, taker_signature=L2SIG)
        self.emit(tx, [self.addresses[maker], self.addresses[account]])

    def liquidate(self, account: int) -> None:
        instrument, position = next(iter(sorted(self.state.accounts[account].positions.items())))
        liquidator = self.rng.randrange(N_MAKERS)
        tx = Liquidate(liquidator=liquidator, account=account, instrument=instrument, size=position.size,
                       nonce=self.nonce(liquidator), signature=L2SIG)
        self.emit(tx, [self.addresses[liquidator]])

    def settle(self, account: int, series: int) -> None:
        tx = SettleExpired(sender=account, account=account, series=series, nonce=self.nonce(account), signature=L2SIG)
        self.emit(tx, [self.addresses[account]])


def build_workload(n_accounts: int, n_transactions: int, seed: int) -> Workload:
    builder = WorkloadBuilder(n_accounts, seed)
    rng = builder.rng
    start = builder.genesis.genesis_time
    # Setup: fund every account, publish the first prices.
    for account in range(n_accounts):
        if account < N_MAKERS:
            amount = 1_000_000 * USD
        elif account < N_MAKERS + N_RISKY:
            amount = 100 * USD
        else:
            amount = 2_000 * USD
        builder.deposit(account, amount)
    builder.oracle_update(start + 1)
    workload = Workload(builder.state.copy(), builder.txs, builder.signers)
    builder.txs, builder.signers, builder.statuses = [], [], []

    # Main phase: trading until 85% of the batch.
    expiry = min(s.expiry for s in builder.series.values())
    risky = iter(range(N_MAKERS, N_MAKERS + N_RISKY))
    clock = start + 1
    main_end = n_transactions * 85 // 100
    kinds = (["perp"] * 45 + ["option"] * 20 + ["transfer"] * 10 + ["withdraw"] * 7 + ["deposit"] * 5
             + ["risky"] * 4 + ["replay"] * 2)
    while len(builder.txs) < main_end:
        if len(builder.txs) % 2_000 == 0:
            clock += 60
            builder.oracle_update(clock)
            continue
        kind = rng.choice(kinds)
        if kind == "perp":
            builder.perp_trade()
        elif kind == "option":
            builder.option_trade()
        elif kind == "transfer":
            builder.transfer()
        elif kind == "withdraw":
            builder.withdraw()
        elif kind == "replay":
            builder.replay()
        elif kind == "deposit":
            builder.deposit(builder.regular(), rng.randint(10, 1_000) * USD)
        else:
            account = next(risky, None)
            builder.perp_trade() if account is None else builder.risky_open(account)

    # The first series expire and BTC drops 15%: settle, liquidate, keep trading.
    builder.oracle_update(expiry, btc_factor=0.85)
    state = builder.state
    underwater = [a for a in range(N_MAKERS, N_MAKERS + N_RISKY)
                  if state.accounts[a].positions and get_equity(state, a) < get_maintenance_margin(state, a)]
    settled = {i for i, s in builder.series.items() if state.instruments[i].settlement is not None}
    holders = [(a, i) for a, acc in state.accounts.items() for i in acc.positions if i in settled]
    rng.shuffle(holders)
    end_work: list = [("liquidate", a) for a in underwater] + [("settle", h) for h in holders]
    end_work = end_work[: (n_transactions - len(builder.txs)) * 2 // 3]
    end_work += [("perp", None)] * (n_transactions - len(builder.txs) - len(end_work))
    rng.shuffle(end_work)
    for kind, arg in end_work:
        if kind == "liquidate":
            builder.liquidate(arg)
        elif kind == "settle":
            builder.settle(*arg)
        else:
            builder.perp_trade()
    workload.transactions, workload.signers, workload.statuses = builder.txs, builder.signers, builder.statuses
    return workload


def get_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run(n_accounts: int, n_transactions: int, seed: int, profile: bool) -> dict:
    t0 = time.perf_counter()
    workload = build_workload(n_accounts, n_transactions, seed)
    build_seconds = time.perf_counter() - t0
    hashes = [f"0x{index:064x}" for index in range(len(workload.transactions))]

    # Setup batch (deposits and the first oracle update), timed on its own.
    setup_state = State.from_genesis(workload.pre_state.genesis)
    c0 = time.process_time()
    process_batch(setup_state, workload.setup, workload.setup_signers, [hashes[0]] * len(workload.setup))
    setup_seconds = time.process_time() - c0

    # The measured batch.
    state = workload.pre_state.copy()
    t0, c0 = time.perf_counter(), time.process_time()
    receipts = process_batch(state, workload.transactions, workload.signers, hashes)
    batch_seconds, batch_cpu = time.perf_counter() - t0, time.process_time() - c0
    # Same outcome as the shadow run that built the workload.
    if [r.status for r in receipts] != workload.statuses:
        raise RuntimeError("the measured run disagrees with the shadow run")

    # Per type: the same batch again, one transaction at a time under a timer.
    state = workload.pre_state.copy()
    per_type_time: dict[str, float] = defaultdict(float)
    per_type: dict[str, Counter] = defaultdict(Counter)
    clock = time.process_time
    for index, (tx, signers) in enumerate(zip(workload.transactions, workload.signers)):
        t = clock()
        receipt = process_transaction(state, tx, signers, index, hashes[index])
        per_type_time[tx.type] += clock() - t
        per_type[tx.type][receipt.status] += 1

    result = {
        "benchmark": "execution",
        "accounts": n_accounts,
        "transactions": len(workload.transactions),
        "seed": seed,
        "tx_per_s": round(len(workload.transactions) / batch_cpu),
        "us_per_tx": round(batch_cpu / len(workload.transactions) * 1e6, 2),
        "batch_cpu_seconds": round(batch_cpu, 3),
        "batch_wall_seconds": round(batch_seconds, 3),
        "accepted": sum(r.status == "accepted" for r in receipts),
        "rejected": sum(r.status == "rejected" for r in receipts),
        "per_type": {
            kind: {
                "count": sum(per_type[kind].values()),
                "accepted": per_type[kind]["accepted"],
                "us_per_tx": round(per_type_time[kind] / sum(per_type[kind].values()) * 1e6, 2),
                "tx_per_s": round(sum(per_type[kind].values()) / per_type_time[kind]),
            }
            for kind in sorted(per_type)
        },
        "setup": {
            "transactions": len(workload.setup),
            "tx_per_s": round(len(workload.setup) / setup_seconds),
        },
        "workload_build_seconds": round(build_seconds, 1),
        "peak_rss_mib": round(get_peak_rss_mib(), 1),
        "signatures": "excluded (signers passed in); tx hashes are placeholders",
    }
    if profile:
        state = workload.pre_state.copy()
        profiler = cProfile.Profile()
        profiler.enable()
        process_batch(state, workload.transactions, workload.signers, hashes)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
        print(text.getvalue(), file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--transactions", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the batch to stderr")
    args = parser.parse_args()
    # The workload needs its makers and risky traders plus some regular traders.
    if args.accounts < N_MAKERS + N_RISKY + 100:
        parser.error(f"--accounts must be at least {N_MAKERS + N_RISKY + 100}")
    print(json.dumps(run(args.accounts, args.transactions, args.seed, args.profile), indent=2))


if __name__ == "__main__":
    main()
