"""A seeded generator of signed derivative workloads (`rollup fixtures`).

The workload is: one deposit per account (creating and funding it), the first oracle update, then
`txs` transactions drawn from a mix of types. The generator runs the real rules
(`rollup.rules.process_transaction`) on its own copy of the state as it goes, so nonces are right,
trades fit the margin of both sides, liquidations target accounts that really are below
maintenance and settlements target positions that really are open. Oracle updates follow a
seeded market path (`rollup.oracle_feed.simulate_market`) spread over `days` simulated days, so
the 7-day series expire half-way through the default 14 and can then be settled.

- contention: that share of the transactions involves the hot account (id 0, funded 1000x more
  than others) and, for trades, the hot market (the first perpetual, the first live series).
- invalid_share: that share is made invalid on purpose (wrong nonce, wrong signer, malleable
  high-s signature, overdraft, oversized trade, unknown account, stale oracle time ...); the
  generator checks the rules (or the signature pass) reject it. Every other emitted transaction
  was accepted by the rules when generated.
- shock: every spot falls by this fraction half-way through the oracle path (default 15%), so
  leveraged longs fall below maintenance and liquidations have real targets. Liquidations and
  settlements are only emitted when one is possible; otherwise the slot falls back to another
  type, so their realised share (`summary["by_type"]`) is below the requested one.

Same seed and parameters -> byte-identical output, whatever the number of signing workers
(RFC 6979 signatures are deterministic and results are collected in order). Keys are the TEST
keys of `rollup.signing` (derived from the seed).
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from eth_keys.constants import SECPK1_N

from rollup.genesis import EMBEDDED_L1_CHAIN_ID, UNDERLYINGS, default_genesis
from rollup.oracle_feed import DEFAULT_QUOTES, OracleValues, compute_oracle_path, simulate_market
from rollup.risk import MarketSnapshot, UnderlyingQuote
from rollup.rules import process_transaction
from rollup.signing import PLACEHOLDER_L2_SIGNATURE, PrivateKey, derive_l2_key, dev_account_key, dev_oracle_key, get_address, sign_digest, unsigned
from verifier.l2auth import sign_l2
from rollup.state import State, get_equity, get_maintenance_margin, get_margin_requirement
from rollup.units import SECONDS_PER_DAY, USD
from verifier.encoding import compute_signing_digest, get_signature_fields, is_l2_signed
from verifier.l2auth import compute_l2_messages, encode_l2_signature, parse_l2_signature
from verifier.wire import (
    NONCE_BITS,
    SIZE_BITS,
    TRANSACTION_TYPES,
    Deposit,
    Fill,
    Genesis,
    InstrumentFunding,
    InstrumentPrice,
    Liquidate,
    OptionTrade,
    OracleUpdate,
    Order,
    PerpTrade,
    Receipt,
    RegisterKey,
    RiskArray,
    SettleExpired,
    Transfer,
    Withdraw,
    WireModel,
)

DEFAULT_MIX: dict[str, int] = {
    "perp_trade": 40,
    "fill": 15,
    "option_trade": 20,
    "transfer": 10,
    "withdraw": 5,
    "liquidate": 3,
    "settle_expired": 2,
    "oracle_update": 1,
    "register_key": 1,
}
HOT_ACCOUNT = 0
DEPOSIT_CHOICES_USD = (2_000, 10_000, 50_000, 250_000)
HOT_DEPOSIT_USD = 100_000_000
FEE_BPS = 5  # taker fee on perp notional
MAX_ATTEMPTS = 8  # candidates tried for one slot before falling back to another type
MAX_SIZE = 2**SIZE_BITS - 1
ORACLE = -1  # key index of the oracle in a planned transaction
AGGRESSIVE_FRACTION = 0.8  # trades using this share of free margin or more mark a leveraged account
LIQUIDATION_SCAN = 128  # accounts sampled for liquidatability after an oracle update
FALLBACK_TYPES = ("perp_trade", "transfer", "withdraw", "option_trade", "deposit")

# The signature pass rejects a malformed signature before execution: the generator does the same.
MALLEABLE_RECEIPT = Receipt.model_construct(status="rejected", reason="invalid signature: s out of range (EIP-2)")
MALLEABLE_L2_RECEIPT = Receipt.model_construct(status="rejected", reason="invalid signature: S is not below the subgroup order")
Progress = Callable[[str, int, int], None]  # (phase, done, total)


class FixtureError(ValueError):
    """Parameters the generator cannot honour."""


@dataclass(frozen=True)
class WorkloadSpec:
    accounts: int = 1_000
    perps: int = 2
    series: int = 8
    txs: int = 10_000
    mix: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    contention: float = 0.0
    invalid_share: float = 0.0
    seed: int = 7
    days: int = 14
    shock: float = 0.15  # spot crash at mid-path (fraction); 0 for a plain random walk
    l1_chain_id: int = EMBEDDED_L1_CHAIN_ID  # the settlement the signatures bind to (EIP-712 domain)
    rollup_address: str | None = None  # None: the embedded L1's first deployment
    tree_depth: int = 12  # the genesis' accounts tree (4-ary): 4^depth accounts; tests prove shallow ones


@dataclass
class Workload:
    genesis: Genesis
    transactions: list[WireModel]  # signed, in submission order
    summary: dict[str, Any]


@dataclass(frozen=True)
class Planned:
    tx: WireModel  # validated, placeholder signatures
    signers: tuple[int, ...]  # account index per signature field, ORACLE for the oracle key
    malleate: bool = False  # replace the first signature by its high-s twin (invalid per EIP-2; S + l for L2)
    key_indexes: tuple[int, ...] = ()  # L2-signed types: the L2 key index each signer signs with
    registered_index: int | None = None  # a registration: the index of the key it registers


# --- parameters --------------------------------------------------------------------------------------


def parse_mix(text: str) -> dict[str, int]:
    """`perp_trade=50,transfer=10` -> {"perp_trade": 50, "transfer": 10} (weights, not percents)."""
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, weight = part.partition("=")
        name = name.strip()
        # NAME=WEIGHT pairs
        if not sep or not weight.strip().isdigit():
            raise FixtureError(f"mix entry {part!r} is not TYPE=WEIGHT with a whole-number weight")
        # a known transaction type
        if name not in TRANSACTION_TYPES:
            raise FixtureError(f"unknown transaction type {name!r} in mix; known: {', '.join(TRANSACTION_TYPES)}")
        mix[name] = int(weight)
    return mix


def check_spec(spec: WorkloadSpec) -> None:
    # trades need two accounts
    if spec.accounts < 2:
        raise FixtureError(f"need at least 2 accounts, got {spec.accounts}")
    # account ids are the accounts tree's keys
    if not 1 <= spec.tree_depth <= 14 or spec.accounts > 4**spec.tree_depth:
        raise FixtureError(f"{spec.accounts} accounts do not fit a 4-ary tree of depth {spec.tree_depth} (1..14)")
    # something to trade
    if spec.perps < 1:
        raise FixtureError("need at least one perpetual market")
    # a workload has a size
    if spec.txs < 0:
        raise FixtureError(f"txs must be >= 0, got {spec.txs}")
    # shares are probabilities
    if not 0.0 <= spec.contention <= 1.0 or not 0.0 <= spec.invalid_share <= 1.0:
        raise FixtureError("contention and invalid-share are fractions between 0 and 1")
    # weights are whole numbers, not all zero
    if any(w < 0 for w in spec.mix.values()) or (spec.txs and sum(spec.mix.values()) == 0):
        raise FixtureError("mix weights must be >= 0 and not all 0")
    # known types only
    unknown = set(spec.mix) - set(TRANSACTION_TYPES)
    if unknown:
        raise FixtureError(f"unknown transaction types in mix: {sorted(unknown)}")
    # options need a series
    if spec.mix.get("option_trade", 0) and spec.series < 1:
        raise FixtureError("option_trade in the mix needs at least one option series")
    # a crash is a fall by less than 100%
    if not 0.0 <= spec.shock < 1.0:
        raise FixtureError("shock is a fraction in [0, 1)")
    # the oracle path needs time to pass
    if spec.days < 1:
        raise FixtureError("days must be >= 1")


# --- the generator ---------------------------------------------------------------------------------


class _Generator:
    """Holds the generator's state: its rng, the rollup state it executes on, keys and bookkeeping."""

    def __init__(self, spec: WorkloadSpec, keys: list[PrivateKey], addresses: list[str], oracle_key: PrivateKey) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.keys, self.addresses, self.oracle_key = keys, addresses, oracle_key
        self.genesis = default_genesis(
            get_address(oracle_key), n_perps=spec.perps, n_series=spec.series, l1_chain_id=spec.l1_chain_id, rollup_address=spec.rollup_address,
            tree_depth=spec.tree_depth,
        )
        self.state = State.from_genesis(self.genesis)
        self.perps = [s.id for s in self.genesis.instruments if s.kind == "perp"]
        self.options = [s.id for s in self.genesis.instruments if s.kind == "option"]
        self.planned: list[Planned] = []
        self.oracle_values: list[OracleValues] = []
        self.next_oracle = 0
        self.holders: dict[int, set[int]] = {i: set() for i in self.options}  # series -> accounts holding it
        self.traders: list[int] = []  # accounts that ever held a position, in first-trade order
        self.is_trader: set[int] = set()
        self.liquidatable: list[int] = []
        self.leveraged: list[int] = []  # accounts that once used most of their free margin
        self.is_leveraged: set[int] = set()
        self.scan_due = False  # rescan for liquidatable accounts at the next liquidation slot
        self.counts: dict[str, int] = {}
        self.intended_invalid = 0
        self.rejected = 0
        self.rejected_reasons: dict[str, int] = {}
        self.setup_count = 0  # deposits and the first oracle update
        self.key_indexes: dict[int, int] = {}  # account -> its last registered L2 key's index
        self.order_nonces: dict[int, int] = {}  # account -> its next order nonce (fills)
        self.registrations = 0  # first registrations, made before an account's first L2 signature

    # --- execution -------------------------------------------------------------------------------

    def execute(self, planned: Planned) -> Receipt:
        """Run the rules on the planned transaction (an accepted one changes the state)."""
        if planned.key_indexes:
            signers: list[str | int] = [self.get_l2_key(i, k).key_id for i, k in zip(planned.signers, planned.key_indexes)]
        else:
            signers = [self.get_signer_address(i) for i in planned.signers]
        return process_transaction(self.state, planned.tx, signers)

    def get_l2_key(self, account_id: int, key_index: int):  # -> rollup.signing.L2Key
        return derive_l2_key(self.keys[account_id], self.genesis.signing_domain, key_index)

    def bind_keys(self, planned: Planned) -> Planned:
        """An L2-signed transaction signs with each signer's current key (index 0 if it has none:
        an unregistered key, which the rules refuse)."""
        if not is_l2_signed(type(planned.tx)):
            return planned
        return replace(planned, key_indexes=tuple(self.key_indexes.get(i, 0) for i in planned.signers))

    def register_signers(self, planned: Planned) -> bool:
        """Register the L2 key of every signer of `planned` that has none, as a wallet does before
        its first L2-signed transaction; True if it did (the planned nonces are then stale)."""
        if not is_l2_signed(type(planned.tx)):
            return False
        missing = [i for i in dict.fromkeys(planned.signers) if i not in self.key_indexes]
        for account_id in missing:
            registration = self.make_registration(account_id, 0)
            receipt = self.execute(registration)
            # a registration by the account's own address for an existing account is valid
            if receipt.status != "accepted":
                raise FixtureError(f"registering account {account_id}'s L2 key was refused: {receipt.reason}")
            self.registrations += 1
            self.emit(registration, receipt)
            self.after(registration, True)
        return bool(missing)

    def emit(self, planned: Planned, receipt: Receipt) -> None:
        self.planned.append(planned)
        self.counts[planned.tx.type] = self.counts.get(planned.tx.type, 0) + 1
        if receipt.status == "accepted":
            self.record_holdings(planned.tx)
            return
        self.rejected += 1
        reason = re.sub(r"\b\d+\b", "N", (receipt.reason or "").split(":")[0])  # "wrong nonce for account N"
        self.rejected_reasons[reason] = self.rejected_reasons.get(reason, 0) + 1

    def get_signer_address(self, index: int) -> str:
        return self.state.genesis.oracle_address if index == ORACLE else self.addresses[index]

    def record_holdings(self, tx: WireModel) -> None:
        """Track who holds which option series and who has traded (for settlements, liquidations)."""
        if tx.type not in ("perp_trade", "option_trade", "liquidate", "settle_expired", "fill"):
            return
        instrument = getattr(tx, "series", getattr(tx, "instrument", getattr(tx, "market", None)))
        parties = [getattr(tx, f) for f in ("maker", "taker", "buyer", "seller", "liquidator", "account") if hasattr(tx, f)]
        for account_id in parties:
            positions = self.state.accounts[account_id].positions
            if positions and account_id not in self.is_trader:
                self.is_trader.add(account_id)
                self.traders.append(account_id)
            if instrument in self.holders:
                if instrument in positions:
                    self.holders[instrument].add(account_id)
                else:
                    self.holders[instrument].discard(account_id)

    # --- choosing parties ------------------------------------------------------------------------

    def pick_account(self, exclude: Sequence[int] = ()) -> int:
        """A random account other than the hot one (unless there are only two) and `exclude`."""
        n = self.spec.accounts
        while True:
            account_id = self.rng.randrange(1, n) if n > 2 else self.rng.randrange(n)
            if account_id not in exclude:
                return account_id

    def get_free_margin(self, account_id: int) -> int:
        return get_equity(self.state, account_id) - get_margin_requirement(self.state, account_id)

    def pick_fraction(self, hot: bool = False) -> float:
        """Share of free margin a trade uses: mostly small, a few aggressive (these get liquidated).
        The hot account trades like a market maker: small slices, so it never runs out of margin."""
        if hot:
            return self.rng.uniform(0.0, 0.002)
        u = self.rng.random()
        if u < 0.06:
            return self.rng.uniform(AGGRESSIVE_FRACTION, 0.98)
        if u < 0.30:
            return self.rng.uniform(0.1, 0.5)
        return self.rng.uniform(0.0, 0.1)

    def is_liquidatable(self, account_id: int) -> bool:
        account = self.state.accounts.get(account_id)
        if account is None or not account.positions:
            return False
        return get_equity(self.state, account_id) < get_maintenance_margin(self.state, account_id)

    def get_live_series(self) -> list[int]:
        now = self.state.globals.oracle_time
        return [
            i for i in self.options
            if now < self.state.instruments[i].spec.expiry
            and self.state.instruments[i].mark is not None
            and self.state.instruments[i].risk_array is not None
        ]

    def get_contract_risk(self, instrument_id: int) -> int:
        """Worst loss of one contract, long or short, over the scenarios (at least 1 micro-USD)."""
        risk = self.state.instruments[instrument_id].risk_array or (0,)
        return max(1, -min(risk), max(risk))

    def get_budget(self, account_id: int, instrument_id: int, extra_per_contract: int = 0) -> int:
        """Contracts the account's free margin covers at the instrument's per-contract risk."""
        free = self.get_free_margin(account_id)
        return max(0, free // (self.get_contract_risk(instrument_id) + extra_per_contract))

    def nonce(self, account_id: int) -> int:
        return self.state.accounts[account_id].nonce

    # --- transaction makers (None: not possible now) -------------------------------------------------

    def make_deposit(self, hot: bool) -> Planned | None:
        account_id = HOT_ACCOUNT if hot else self.pick_account()
        amount = self.rng.choice(DEPOSIT_CHOICES_USD) * USD // 10
        tx = unsigned(
            Deposit, deposit_id=self.state.globals.deposit_count, account=account_id,
            address=self.addresses[account_id], amount=amount,
        )
        return Planned(tx, ())  # the L1 queue entry authorises it

    def make_withdraw_or_transfer(self, hot: bool, kind: str) -> Planned | None:
        sender = HOT_ACCOUNT if hot else self.pick_account()
        collateral = self.state.accounts[sender].collateral
        free = min(collateral, self.get_free_margin(sender))
        if free <= 0:
            return None
        amount = max(1, int(free * self.rng.uniform(0.001, 0.05 if kind == "withdraw" else 0.1)))
        if kind == "withdraw":
            return Planned(unsigned(Withdraw, account=sender, amount=amount, nonce=self.nonce(sender)), (sender,))
        recipient = self.pick_account(exclude=(sender,))
        tx = unsigned(Transfer, sender=sender, recipient=recipient, amount=amount, nonce=self.nonce(sender))
        return Planned(tx, (sender,))

    def make_perp_trade(self, hot: bool) -> Planned | None:
        market = self.perps[0] if hot else self.rng.choice(self.perps)
        mark = self.state.instruments[market].mark
        if mark is None:
            return None
        taker = HOT_ACCOUNT if hot else self.pick_account()
        maker = self.pick_account(exclude=(taker,))
        held = self.state.accounts[taker].positions.get(market)
        if held is not None and self.rng.random() < 0.3:  # reduce or close: needs no margin
            size = -held.size if self.rng.random() < 0.5 else -(held.size // 2 or held.size)
            size = max(-MAX_SIZE, min(MAX_SIZE, size))
        else:
            fraction = self.pick_fraction(hot)
            self.note_leverage(taker, fraction)
            budget = min(self.get_budget(taker, market) * fraction, self.get_budget(maker, market) * 0.9)
            size = max(1, min(MAX_SIZE, int(budget))) * self.rng.choice((1, -1))
        price = max(1, round(mark * (1 + self.rng.uniform(-0.001, 0.001))))
        tx = unsigned(
            PerpTrade, maker=maker, taker=taker, market=market, size=size, price=price,
            fee=abs(size) * price * FEE_BPS // 10_000, maker_nonce=self.nonce(maker), taker_nonce=self.nonce(taker),
        )
        return Planned(tx, (maker, taker))

    def make_option_trade(self, hot: bool) -> Planned | None:
        live = self.get_live_series()
        if not live:
            return None
        series = live[0] if hot else self.rng.choice(live)
        mark = self.state.instruments[series].mark
        first = HOT_ACCOUNT if hot else self.pick_account()
        other = self.pick_account(exclude=(first,))
        buyer, seller = (first, other) if self.rng.random() < 0.5 else (other, first)
        premium = max(0, round(mark * (1 + self.rng.uniform(-0.01, 0.01))))
        budget = min(
            self.get_budget(buyer, series, premium) * self.pick_fraction(hot), self.get_budget(seller, series) * 0.5
        )
        quantity = max(1, min(MAX_SIZE, int(budget)))
        tx = unsigned(
            OptionTrade, buyer=buyer, seller=seller, series=series, quantity=quantity, premium=premium,
            fee=quantity * premium * FEE_BPS // 10_000, buyer_nonce=self.nonce(buyer), seller_nonce=self.nonce(seller),
        )
        return Planned(tx, (buyer, seller))

    def make_fill(self, hot: bool) -> Planned | None:
        """Two fresh orders matched: the maker's order rests for more than the fill (a partial
        fill), the taker's crosses it; on a perpetual or a live option series. Order nonces
        increase per account, so each order takes the next order slot (nonce % ORDER_SLOTS)."""
        live = self.get_live_series()
        instrument = self.perps[0] if hot else self.rng.choice(self.perps + live)
        mark = self.state.instruments[instrument].mark
        if mark is None or not self.state.instruments[instrument].risk_array:
            return None
        taker = HOT_ACCOUNT if hot else self.pick_account()
        maker = self.pick_account(exclude=(taker,))
        budget = min(self.get_budget(taker, instrument, mark) * self.pick_fraction(hot), self.get_budget(maker, instrument, mark) * 0.5)
        size = max(1, min(MAX_SIZE // 2, int(budget)))
        price = max(1, round(mark * (1 + self.rng.uniform(-0.001, 0.001))))
        taker_buys = self.rng.random() < 0.5
        fee_rate = max(0, price * FEE_BPS // 10_000)
        orders = {}
        for side, account, is_buy in (("taker", taker, taker_buys), ("maker", maker, not taker_buys)):
            nonce = self.order_nonces.get(account, 0)
            self.order_nonces[account] = nonce + 1
            slack = 0 if side == "maker" else max(1, price // 1_000)
            orders[side] = Order(
                account=account, instrument=instrument, is_buy=is_buy, size=size + (self.rng.randrange(3) if side == "maker" else 0),
                price=price + (slack if is_buy else -min(slack, price - 1)), time_in_force=0 if side == "maker" else 1,
                expiry=0, client_id=nonce, nonce=nonce, max_fee=fee_rate if side == "taker" else 0,
                signature=PLACEHOLDER_L2_SIGNATURE,
            )
        tx = Fill.from_orders(orders["taker"], orders["maker"], size, price, fee_rate * size)
        return Planned(tx, (taker, maker))

    def find_liquidatable(self) -> int | None:
        if self.scan_due:  # prices moved since the last scan
            self.scan_liquidatable()
        while self.liquidatable:
            account_id = self.liquidatable.pop(self.rng.randrange(len(self.liquidatable)))
            if self.is_liquidatable(account_id):
                return account_id
        for _ in range(min(16, len(self.traders))):
            account_id = self.rng.choice(self.traders)
            if self.is_liquidatable(account_id):
                return account_id
        return None

    def make_liquidate(self, hot: bool) -> Planned | None:
        account_id = self.find_liquidatable()
        if account_id is None:
            return None
        liquidator = HOT_ACCOUNT if hot and account_id != HOT_ACCOUNT else self.pick_account(exclude=(account_id,))
        now = self.state.globals.oracle_time
        positions = [
            (abs(p.size) * (self.state.instruments[i].mark or 0), i, p.size)
            for i, p in self.state.accounts[account_id].positions.items()
            if self.state.instruments[i].is_perp or now < self.state.instruments[i].spec.expiry
        ]
        if not positions:
            return None
        _, instrument, held = max(positions)
        size = held if self.rng.random() < 0.5 else (held // 2 if held > 0 else -(-held // 2)) or held
        tx = unsigned(
            Liquidate, liquidator=liquidator, account=account_id, instrument=instrument, size=size,
            nonce=self.nonce(liquidator),
        )
        self.liquidatable.append(account_id)  # still a candidate if this attempt is rejected
        return Planned(tx, (liquidator,))

    def make_settle_expired(self, hot: bool) -> Planned | None:
        settled = [i for i in self.options if self.state.instruments[i].settlement is not None and self.holders[i]]
        if not settled:
            return None
        series = self.rng.choice(settled)
        account_id = self.rng.choice(sorted(self.holders[series]))
        sender = HOT_ACCOUNT if hot else account_id
        tx = unsigned(SettleExpired, sender=sender, account=account_id, series=series, nonce=self.nonce(sender))
        return Planned(tx, (sender,))

    def make_register_key(self, hot: bool) -> Planned | None:
        """Register (or rotate: the next key index) the account's L2 key, derived from its wallet key."""
        account_id = HOT_ACCOUNT if hot else self.pick_account()
        return self.make_registration(account_id, self.key_indexes.get(account_id, -1) + 1)

    def make_registration(self, account_id: int, index: int) -> Planned:
        """A registration of the account's key `index` (`after` records it once accepted)."""
        key_id = self.get_l2_key(account_id, index).key_id
        tx = unsigned(RegisterKey, account=account_id, address=self.addresses[account_id], key_id=key_id, nonce=self.nonce(account_id))
        return Planned(tx, (account_id,), registered_index=index)

    def make_oracle_update(self, hot: bool) -> Planned | None:
        if self.next_oracle >= len(self.oracle_values):
            return None
        values = self.oracle_values[self.next_oracle]
        return Planned(build_oracle_update(values, self.state), (ORACLE,))

    def make(self, kind: str, hot: bool) -> Planned | None:
        if kind in ("withdraw", "transfer"):
            return self.make_withdraw_or_transfer(hot, kind)
        return getattr(self, f"make_{kind}")(hot)

    # --- invalid on purpose --------------------------------------------------------------------------

    def corrupt(self, planned: Planned) -> Planned:
        """A variant of a valid transaction that breaks one rule."""
        tx, signers = planned.tx, planned.signers
        fields = tx.model_dump()
        options: list[str] = ["wrong_signer", "malleable_signature"]
        nonce_fields = [f for f in fields if f.endswith("nonce")]
        if nonce_fields:
            options.append("bad_nonce")
        if tx.type in ("withdraw", "transfer"):
            options.append("overdraft")
        if tx.type == "transfer":
            options.append("unknown_account")
        if tx.type in ("perp_trade", "option_trade"):
            options.append("oversized")
        if tx.type == "fill":
            # an order nonce is the order's, signed: a changed one is another valid order
            options = ["wrong_signer", "malleable_signature", "overfilled"]
        if tx.type == "deposit":
            options = ["bad_deposit_id"]
        if tx.type == "oracle_update":
            options = ["wrong_signer", "stale_timestamp"]
        choice = self.rng.choice(options)
        if choice == "wrong_signer":
            impostor = self.pick_account(exclude=signers)
            return replace(planned, signers=(impostor, *signers[1:]))
        if choice == "malleable_signature":
            return replace(planned, malleate=True)
        if choice == "bad_nonce":
            name = self.rng.choice(nonce_fields)
            fields[name] = min(2**NONCE_BITS - 1, fields[name] + self.rng.choice((1, 2, 5)))
        elif choice == "overdraft":
            sender = fields.get("account", fields.get("sender"))
            fields["amount"] = self.state.accounts[sender].collateral + 1 + self.rng.randrange(10 * USD)
        elif choice == "unknown_account":
            fields["recipient"] = self.spec.accounts + self.rng.randrange(1000)
        elif choice == "overfilled":
            fields["size"] = fields["size"] + (1 if fields["size"] > 0 else -1) * max(fields["maker_order_size"], fields["taker_order_size"])
        elif choice == "oversized":
            key = "size" if tx.type == "perp_trade" else "quantity"
            sign = 1 if fields[key] > 0 else -1
            fields[key] = sign * min(MAX_SIZE, abs(fields[key]) * 1000 + 10**6)
        elif choice == "bad_deposit_id":
            fields["deposit_id"] += self.rng.choice((1, 2))
        elif choice == "stale_timestamp":
            # an older update: it follows one before the last applied
            fields["timestamp"] = self.state.globals.oracle_time
            fields["previous_timestamp"] = self.state.globals.oracle_time - 1
        return replace(planned, tx=type(tx).model_validate(fields))

    # --- slots -----------------------------------------------------------------------------------

    def fill_slot(self, kind: str) -> None:
        """Emit one transaction of `kind` (or of a fallback type if `kind` is not possible now)."""
        hot = self.spec.contention > 0 and self.rng.random() < self.spec.contention
        invalid = self.spec.invalid_share > 0 and self.rng.random() < self.spec.invalid_share
        for candidate_kind in (kind, *self.get_fallbacks(kind)):
            for _ in range(MAX_ATTEMPTS):
                planned = self.make(candidate_kind, hot)
                while planned is not None and self.register_signers(planned):
                    planned = self.make(candidate_kind, hot)  # with the nonces after the registrations
                if planned is None:
                    break
                if invalid:
                    planned = self.corrupt(planned)
                planned = self.bind_keys(planned)
                if planned.malleate:
                    receipt = MALLEABLE_L2_RECEIPT if planned.key_indexes else MALLEABLE_RECEIPT
                else:
                    receipt = self.execute(planned)
                if invalid or receipt.status == "accepted":
                    self.intended_invalid += invalid
                    self.emit(planned, receipt)
                    self.after(planned, receipt.status == "accepted")
                    return
        raise FixtureError(f"could not generate a valid {kind} (accounts out of margin?); try more accounts")

    def get_fallbacks(self, kind: str) -> list[str]:
        mix = self.spec.mix
        in_mix = [k for k in FALLBACK_TYPES if k != kind and mix.get(k, 0) > 0]
        return in_mix + [k for k in FALLBACK_TYPES if k != kind and k not in in_mix]

    def after(self, planned: Planned, accepted: bool) -> None:
        if planned.tx.type == "register_key" and accepted and planned.registered_index is not None:
            # the account signs with this key from now on (a refused registration changes nothing)
            self.key_indexes[planned.tx.account] = planned.registered_index
        if planned.tx.type == "oracle_update":
            self.next_oracle += accepted
            self.scan_due = self.scan_due or accepted

    def note_leverage(self, account_id: int, fraction: float) -> None:
        """Remember accounts that used most of their margin: the likely liquidations."""
        if fraction >= AGGRESSIVE_FRACTION and account_id not in self.is_leveraged:
            self.is_leveraged.add(account_id)
            self.leveraged.append(account_id)

    def sample(self, accounts: list[int], k: int) -> list[int]:
        return accounts if len(accounts) <= k else self.rng.sample(accounts, k)

    def scan_liquidatable(self) -> None:
        """Sample the leveraged accounts (and a few others) for accounts below maintenance."""
        self.scan_due = False
        sample = self.sample(self.leveraged, LIQUIDATION_SCAN) + self.sample(self.traders, LIQUIDATION_SCAN // 4)
        self.liquidatable = sorted({a for a in sample if self.is_liquidatable(a)})

    # --- whole workload ----------------------------------------------------------------------------

    def draw_kinds(self) -> list[str]:
        names = [k for k, w in self.spec.mix.items() if w > 0]
        weights = [self.spec.mix[k] for k in names]
        return self.rng.choices(names, weights, k=self.spec.txs) if names else []

    def plan_oracle(self, n_updates: int) -> None:
        """The oracle path: the first update plus one per oracle_update slot, over `days` days."""
        span = self.spec.days * SECONDS_PER_DAY
        step = max(1, span // max(1, n_updates))
        quotes = get_initial_quotes(self.genesis)
        path = simulate_market(self.spec.seed, n_updates + 1, start_time=self.genesis.genesis_time + 60,
                               step_seconds=step, initial=quotes)
        path = apply_shock(path, self.spec.shock)
        perps = {s.id: s for s in self.genesis.instruments if s.kind == "perp"}
        series = {s.id: s for s in self.genesis.instruments if s.kind == "option"}
        self.oracle_values = compute_oracle_path(path, perps, series)

    def run(self, progress: Progress | None) -> None:
        for account_id in range(self.spec.accounts):
            usd = HOT_DEPOSIT_USD if account_id == HOT_ACCOUNT else self.rng.choice(DEPOSIT_CHOICES_USD)
            tx = Deposit(deposit_id=account_id, account=account_id, address=self.addresses[account_id], amount=usd * USD)
            planned = Planned(tx, ())  # the L1 queue entry authorises a deposit: no signature
            self.emit(planned, self.execute(planned))
        kinds = self.draw_kinds()
        self.plan_oracle(kinds.count("oracle_update"))
        self.fill_slot("oracle_update")
        self.setup_count = len(self.planned)
        for done, kind in enumerate(kinds, 1):
            self.fill_slot(kind)
            if progress and (done % 1000 == 0 or done == len(kinds)):
                progress("generating", done, len(kinds))


def apply_shock(path: list[MarketSnapshot], shock: float) -> list[MarketSnapshot]:
    """Every underlying's spot falls by `shock` (a fraction) from the middle of the path on: a
    crash that puts leveraged longs below maintenance, so liquidations have real targets."""
    middle = len(path) // 2
    return path[:middle] + [
        MarketSnapshot(s.timestamp, {name: replace(q, spot=q.spot * (1.0 - shock)) for name, q in s.quotes.items()})
        for s in path[middle:]
    ]


def get_initial_quotes(genesis: Genesis) -> dict[str, UnderlyingQuote]:
    """oracle_feed's default quotes, plus one at the genesis reference price for other underlyings."""
    reference = {name: price for name, _, price in UNDERLYINGS}
    quotes = dict(DEFAULT_QUOTES)
    for spec in genesis.instruments:
        quotes.setdefault(spec.underlying, UnderlyingQuote(spot=reference[spec.underlying], vol=0.8, rate=0.05))
    return quotes


def build_oracle_update(values: OracleValues, state: State) -> OracleUpdate:
    """The unsigned OracleUpdate for one step of the oracle path: every mark, funding index and
    risk array, and the settlement prices the state has not recorded yet."""
    marks = sorted((*values.perp_marks, *values.option_marks))
    risk = sorted((*values.perp_risk_arrays, *values.option_risk_arrays))
    settlements = [(i, p) for i, p in values.settlement_prices if state.instruments[i].settlement is None]
    return unsigned(
        OracleUpdate,
        timestamp=values.timestamp,
        previous_timestamp=state.globals.oracle_time,  # the oracle's previous update, applied
        marks=[InstrumentPrice(instrument=i, price=p) for i, p in marks],
        funding=[InstrumentFunding(market=i, index=x) for i, x in values.funding_indices],
        risk_arrays=[RiskArray(instrument=i, values=list(v)) for i, v in risk],
        settlements=[InstrumentPrice(instrument=i, price=p) for i, p in settlements],
    )


# --- keys and signing (parallel, order-preserving) --------------------------------------------------


def _derive_addresses(keys: Sequence[PrivateKey]) -> list[str]:
    return [get_address(k) for k in keys]


def _sign_chunk(chunk: Sequence[tuple[bytes | tuple[int, ...], tuple[PrivateKey, ...]]]) -> list[tuple[str, ...]]:
    """Ethereum signatures of a digest (bytes), or L2 signatures of one message per signer."""
    return [
        tuple(sign_digest(secret, payload) for secret in secrets) if isinstance(payload, bytes)
        else tuple(sign_l2(secret, message) for secret, message in zip(secrets, payload, strict=True))
        for payload, secrets in chunk
    ]


def _get_signing_job(p: Planned, keys: Sequence[PrivateKey], oracle_key: PrivateKey, domain: SigningDomain) -> tuple[bytes | tuple[int, ...], tuple[PrivateKey, ...]]:
    if p.key_indexes:
        l2_keys = tuple(derive_l2_key(keys[i], domain, k).private for i, k in zip(p.signers, p.key_indexes))
        return compute_l2_messages(p.tx, domain), l2_keys
    return compute_signing_digest(p.tx, domain), tuple(oracle_key if i == ORACLE else keys[i] for i in p.signers)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _map_ordered(fn: Callable[..., list], chunks: list, workers: int, *args: Any) -> list:
    """fn over chunks, results concatenated in order; in a multiprocess pool if workers > 1."""
    if workers <= 1 or len(chunks) <= 1:
        return [item for chunk in chunks for item in fn(chunk, *args)]
    from multiprocess import Pool

    with Pool(workers) as pool:
        results = pool.starmap(fn, [(chunk, *args) for chunk in chunks])
    return [item for result in results for item in result]


def sign_planned(planned: Sequence[Planned], keys: Sequence[PrivateKey], oracle_key: PrivateKey, domain: SigningDomain,
                 workers: int = 1) -> list[WireModel]:
    """Sign every planned transaction (in a pool when workers > 1); same output for any worker count."""
    jobs = [_get_signing_job(p, keys, oracle_key, domain) for p in planned]  # only bytes and ints cross to the workers: pickling models would cost more than signing
    signatures = _map_ordered(_sign_chunk, _chunks(jobs, 5_000), workers)
    signed = []
    for p, sigs in zip(planned, signatures, strict=True):
        names = get_signature_fields(type(p.tx))
        if p.malleate:
            twin = compute_malleable_l2_twin if p.key_indexes else compute_malleable_twin
            sigs = (twin(sigs[0]), *sigs[1:])
        signed.append(p.tx.model_copy(update=dict(zip(names, sigs))))
    return signed


def compute_malleable_twin(signature: str) -> str:
    """(r, n - s, flipped v): recovers the same key, but EIP-2 (low s only) makes it invalid."""
    raw = bytes.fromhex(signature[2:])
    s = SECPK1_N - int.from_bytes(raw[32:64], "big")
    return "0x" + raw[:32].hex() + s.to_bytes(32, "big").hex() + format(55 - raw[64], "02x")


def compute_malleable_l2_twin(signature: str) -> str:
    """S + l: verifies the same equation (S only matters mod l), but S < l is required."""
    from verifier.babyjubjub import SUBORDER

    a, sig = parse_l2_signature(signature)
    return encode_l2_signature(a, replace(sig, S=sig.S + SUBORDER))


def get_default_workers() -> int:
    """One: measured on the shared 2-core machine (benchmarks/signature_bench.py), a pool did not
    make signing faster (a signature costs ~23 us; shipping work to processes costs about as much).
    Pass workers=N on an idle multi-core machine; the output is the same for any N."""
    return 1


def generate_workload(spec: WorkloadSpec, workers: int | None = None, progress: Progress | None = None) -> Workload:
    """Generate, execute (on a private state) and sign a workload. Deterministic in `spec`."""
    check_spec(spec)
    workers = get_default_workers() if workers is None else workers
    started = time.perf_counter()
    keys = [dev_account_key(spec.seed, i) for i in range(spec.accounts)]
    addresses = _map_ordered(_derive_addresses, _chunks(keys, 5_000), workers)
    oracle_key = dev_oracle_key(spec.seed)
    generator = _Generator(spec, keys, addresses, oracle_key)
    generator.run(progress)
    generated = time.perf_counter()
    if progress:
        progress("signing", 0, len(generator.planned))
    transactions = sign_planned(generator.planned, keys, oracle_key, generator.genesis.signing_domain, workers)
    if progress:
        progress("signing", len(transactions), len(transactions))
    finished = time.perf_counter()
    summary = {
        "transactions": len(transactions),
        "setup": generator.setup_count,
        "registrations": generator.registrations,  # first L2 key registrations, before each account's first L2 signature
        "mix_transactions": len(transactions) - generator.setup_count - generator.registrations,
        "by_type": dict(sorted(generator.counts.items())),
        "intended_invalid": generator.intended_invalid,
        "rejected": generator.rejected,
        "rejected_reasons": dict(sorted(generator.rejected_reasons.items())),
        "accounts": spec.accounts,
        "instruments": len(generator.genesis.instruments),
        "oracle_updates_planned": len(generator.oracle_values),
        "seed": spec.seed,
        "generate_seconds": round(generated - started, 3),
        "sign_seconds": round(finished - generated, 3),
        "workers": workers,
    }
    return Workload(generator.genesis, transactions, summary)


def write_workload(workload: Workload, out: Path, genesis_out: Path) -> None:
    """One transaction per line (`model_dump_json`), and the genesis as indented JSON."""
    with open(out, "w", encoding="utf-8") as f:
        for tx in workload.transactions:
            f.write(tx.model_dump_json())
            f.write("\n")
    genesis_out.write_text(json.dumps(workload.genesis.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
