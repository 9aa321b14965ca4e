"""The liquidation engine: the monitor's breached set equals a scan of every account with the rules'
functions over random states and updates (both modes, every executor), and the Liquidate
transactions it builds are accepted by a real node and leave the account at or nearer
maintenance margin."""

from __future__ import annotations

import random

import pytest
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.liquidation import (
    LiquidationEngine,
    LiquidationError,
    LiquidationMonitor,
    LiquidationPlan,
    build_liquidations,
    compute_distance,
    find_breached,
    get_touched_accounts,
)
from rollup.executors import SerialExecutor, make_executor
from rollup.genesis import default_genesis
from rollup.rules import process_transaction
from rollup.signing import derive_l2_key, dev_account_key, dev_oracle_key, get_address, sign, unsigned
from rollup.state import Account, Position, State, get_equity, get_maintenance_margin
from verifier.wire import (
    PRICE_BITS,
    Deposit,
    InstrumentFunding,
    InstrumentPrice,
    Liquidate,
    OracleUpdate,
    PerpTrade,
    RegisterKey,
    RiskArray,
    RiskParameters,
)

USD = 1_000_000
ORACLE = to_checksum_address(f"0x{0xAA:040x}")
GENESIS = default_genesis(ORACLE, n_perps=2, n_series=4, risk=RiskParameters(n_scenarios=4, max_positions=4), tree_depth=4)
N_SCENARIOS = GENESIS.risk.n_scenarios
INSTRUMENTS = [spec.id for spec in GENESIS.instruments]


def brute_force(state: State) -> list[int]:
    """Accounts below maintenance, by rollup.state's getters, one account at a time."""
    return [a for a in sorted(state.accounts) if get_equity(state, a) < get_maintenance_margin(state, a)]


# --- random states ---------------------------------------------------------------------------------


MAX_MARK = 2**PRICE_BITS - 1
MAX_VALUE = 2**62  # risk values and funding indices stay inside the wire's 63 bits


def clamp(value: int) -> int:
    return min(max(value, -MAX_VALUE), MAX_VALUE)


def random_values(rng: random.Random, magnitude: int) -> tuple[int, int, tuple[int, ...]]:
    """(mark, funding index, risk array) of one instrument."""
    mark = rng.randrange(1, min(magnitude, MAX_MARK))
    return mark, rng.randrange(-magnitude, magnitude), tuple(rng.randrange(-magnitude, magnitude) for _ in range(N_SCENARIOS))


def random_account(rng: random.Random, state: State, size_bits: int, magnitude: int) -> Account:
    """An account with 0-4 positions; its collateral puts it near its maintenance margin (either
    side), where a small move decides."""
    positions = {
        i: Position(rng.choice((-1, 1)) * rng.randrange(1, 2**size_bits), rng.randrange(-magnitude, magnitude) * 3, rng.randrange(-magnitude, magnitude))
        for i in rng.sample(INSTRUMENTS, rng.randrange(0, 5))
    }
    account = Account(to_checksum_address(f"0x{rng.randrange(2**160):040x}"), 0, 0, positions)
    state.accounts[-1] = account
    equity, maintenance = get_equity(state, -1), get_maintenance_margin(state, -1)
    del state.accounts[-1]
    edge = maintenance - equity  # collateral at which the account sits exactly at maintenance
    # a few medium oracle steps (below) from the edge, either side, or anywhere
    exposure = sum(abs(p.size) for p in positions.values()) * (magnitude // 1000 + 1)
    offset = rng.choice((
        rng.randint(-4, 4) * exposure // rng.choice((1, 4, 16)),
        rng.randrange(-magnitude, magnitude) * rng.choice((0, 1, 100)),
    ))
    account.collateral = max(0, edge + offset)
    return account


def random_state(rng: random.Random, n_accounts: int, size_bits: int, magnitude: int) -> State:
    state = State.from_genesis(GENESIS)
    for instrument_id in INSTRUMENTS:
        instrument = state.instruments[instrument_id]
        instrument.mark, funding, instrument.risk_array = random_values(rng, magnitude)
        if instrument.is_perp:
            instrument.funding_index = funding
    for account_id in range(n_accounts):
        state.accounts[account_id] = random_account(rng, state, size_bits, magnitude)
    return state


def random_oracle_update(rng: random.Random, state: State, magnitude: int, history: dict | None = None) -> OracleUpdate:
    """Moves a few instruments (by small steps, medium ones, large jumps, not at all, or back to
    values they had before) and applies it to `state`."""
    moved = sorted(rng.sample(INSTRUMENTS, rng.randrange(1, len(INSTRUMENTS) + 1)))
    step = rng.choice((0, 1, magnitude // 1000 + 1, magnitude // 1000 + 1, magnitude // 100 + 1, magnitude))
    marks, funding, arrays = [], [], []
    history = {} if history is None else history
    for instrument_id in moved:
        instrument = state.instruments[instrument_id]
        seen = history.setdefault(instrument_id, [])
        seen.append((instrument.mark, instrument.funding_index, instrument.risk_array))
        if rng.random() < 0.3:  # back to an earlier snapshot: paths that return test the groups' bound
            instrument.mark, instrument.funding_index, instrument.risk_array = rng.choice(seen)
        else:
            instrument.mark = min(max(0, instrument.mark + rng.randint(-step, step)), MAX_MARK)
            instrument.risk_array = tuple(clamp(v + rng.randint(-step, step)) for v in instrument.risk_array)
            if instrument.is_perp:
                instrument.funding_index = clamp(instrument.funding_index + rng.randint(-step, step))
        marks.append(InstrumentPrice(instrument=instrument_id, price=instrument.mark))
        arrays.append(RiskArray(instrument=instrument_id, values=list(instrument.risk_array)))
        if instrument.is_perp:
            funding.append(InstrumentFunding(market=instrument_id, index=instrument.funding_index))
    previous = state.globals.oracle_time
    state.globals.oracle_time = previous + 60
    return unsigned(OracleUpdate, timestamp=previous + 60, previous_timestamp=previous, marks=marks, funding=funding, risk_arrays=arrays, settlements=[])


def random_account_changes(rng: random.Random, state: State, size_bits: int, magnitude: int) -> list[int]:
    """Replace, empty or delete a few accounts, or open new ones; returns the ids changed."""
    changed = rng.sample(sorted(state.accounts), min(len(state.accounts), rng.randrange(1, 4))) + [max(state.accounts, default=0) + 1]
    for account_id in changed:
        roll = rng.random()
        if roll < 0.15:
            state.accounts.pop(account_id, None)
        elif roll < 0.3 and account_id in state.accounts:
            state.accounts[account_id].positions = {}
        else:
            state.accounts[account_id] = random_account(rng, state, size_bits, magnitude)
    return changed


def assert_monitor_exact(monitor: LiquidationMonitor, state: State) -> None:
    assert monitor.breached == brute_force(state) == find_breached(state)
    if monitor.mode == "holders":
        # every account was re-checked after each move of its instruments: its values are exact
        for account_id, account in state.accounts.items():
            expected = (get_equity(state, account_id), get_maintenance_margin(state, account_id)) if account.positions else None
            assert monitor.get_margin(account_id) == expected


# --- the monitor equals the scan -------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    size_bits=st.sampled_from([4, 12, 31]),
    magnitude=st.sampled_from([10, 10**6, 2**62]),
    steps=st.lists(st.sampled_from(["oracle", "oracle_via_state", "accounts"]), min_size=1, max_size=12),
)
def test_monitor_equals_scan(seed: int, size_bits: int, magnitude: int, steps: list[str]) -> None:
    rng = random.Random(seed)
    state = random_state(rng, rng.randrange(1, 40), size_bits, magnitude)
    monitors = [LiquidationMonitor.from_state(state, mode) for mode in ("heap", "holders")]
    # the partitioned path (serial executor: the same function on each partition)
    monitors.append(LiquidationMonitor.from_state(state, "heap", SerialExecutor(), min_parallel=0))
    # reference groups merged at every update (the bound through the triangle inequality)
    monitors.append(LiquidationMonitor.from_state(state, "heap", max_groups=2))
    for monitor in monitors:
        assert_monitor_exact(monitor, state)
    history: dict = {}
    for step in steps:
        if step == "accounts":
            changed = random_account_changes(rng, state, size_bits, magnitude)
            reports = [m.apply_state_changes(state, changed) for m in monitors]
        else:
            update = random_oracle_update(rng, state, magnitude, history)
            if step == "oracle":
                reports = [m.on_oracle_update(update) for m in monitors]
            else:
                reports = [m.apply_state_changes(state, []) for m in monitors]
        for monitor, report in zip(monitors, reports):
            assert_monitor_exact(monitor, state)
            assert report.breached == tuple(brute_force(state))
        # heap mode never re-checks more than mode "holders" (every holder of a moved instrument)
        heap, holders = reports[0], reports[1]
        assert heap.holders is None and heap.rechecked <= holders.rechecked == holders.holders


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), size_bits=st.sampled_from([4, 12, 31]), magnitude=st.sampled_from([10, 10**6, 2**62]),
       liquidator_bits=st.sampled_from([0, 40, 128]))
def test_plans_are_valid_and_spare_healthy_accounts(seed: int, size_bits: int, magnitude: int, liquidator_bits: int) -> None:
    """Random states: a plan for every account (healthy ones included) is accepted by the rules in
    order, names only breached accounts, and leaves each at or above maintenance or better off."""
    rng = random.Random(seed)
    state = random_state(rng, rng.randrange(1, 25), size_bits, magnitude)
    key = L2_KEYS[0]
    liquidator = 1_000
    state.accounts[liquidator] = Account(to_checksum_address(f"0x{liquidator:040x}"), 2**liquidator_bits, 0, {}, key.key_id)
    breached = brute_force(state)
    before = {a: compute_distance(state, a) for a in breached}
    plan = build_liquidations(state, sorted(state.accounts), liquidator, key)
    assert {p.account for p in plan.planned} <= set(breached)
    assert set(plan.skipped) == set(state.accounts) - set(breached)
    after = state.copy()
    for tx, planned in zip(plan.transactions, plan.planned, strict=True):
        assert process_transaction(after, tx, [key.key_id]).status == "accepted"
        assert compute_distance(after, planned.account) == (planned.equity_after, planned.maintenance_after)
    for account_id in breached:
        equity, maintenance = compute_distance(after, account_id)
        if account_id in plan.partial:
            assert equity < maintenance
        else:
            assert equity >= maintenance
        if any(p.account == account_id for p in plan.planned):
            assert equity - maintenance > before[account_id][0] - before[account_id][1]


def make_edge_state(n: int, distance: int) -> State:
    """n accounts long 10 BTC-PERP contracts each, account i at `distance x i` above maintenance."""
    state = State.from_genesis(GENESIS)
    for instrument_id in INSTRUMENTS:
        instrument = state.instruments[instrument_id]
        instrument.mark, instrument.risk_array = 60 * USD, (-9 * USD, -3 * USD, 3 * USD, 9 * USD)
    for account_id in range(n):
        account = Account(to_checksum_address(f"0x{account_id + 1:040x}"), 0, 0, {0: Position(10, 600 * USD, 0)})
        state.accounts[account_id] = account
        account.collateral = get_maintenance_margin(state, account_id) - get_equity(state, account_id) + distance * account_id
    return state


def test_heap_rechecks_only_accounts_near_maintenance() -> None:
    state = make_edge_state(1_000, 1_000)
    heap, holders = LiquidationMonitor.from_state(state, "heap"), LiquidationMonitor.from_state(state, "holders")
    assert heap.breached == holders.breached == []
    # BTC-PERP's mark falls by 1 micro-USD per contract: 10 micro-USD for a holder of 10 contracts
    state.instruments[0].mark -= 1
    update = unsigned(OracleUpdate, timestamp=GENESIS.genesis_time + 1, previous_timestamp=GENESIS.genesis_time,
                      marks=[InstrumentPrice(instrument=0, price=state.instruments[0].mark)], funding=[], risk_arrays=[], settlements=[])
    by_heap, by_holders = heap.on_oracle_update(update), holders.on_oracle_update(update)
    assert by_heap.breached == by_holders.breached == tuple(brute_force(state)) == (0,)
    assert by_holders.rechecked == by_holders.holders == 1_000
    # only accounts within 10 micro-USD of maintenance are due: account 0 (at the edge)
    assert by_heap.rechecked == 1
    assert by_heap.newly_breached == (0,)
    # an unchanged re-publication moves nothing and re-checks nobody
    again = unsigned(OracleUpdate, timestamp=GENESIS.genesis_time + 2, previous_timestamp=GENESIS.genesis_time + 1,
                     marks=[InstrumentPrice(instrument=0, price=state.instruments[0].mark)], funding=[], risk_arrays=[], settlements=[])
    assert heap.on_oracle_update(again).rechecked == holders.on_oracle_update(again).rechecked == 0


def test_invalid_monitor_settings() -> None:
    state = make_edge_state(2, 1)
    with pytest.raises(LiquidationError, match="unknown monitor mode 'scan'"):
        LiquidationMonitor.from_state(state, "scan")
    with pytest.raises(LiquidationError, match="min_parallel must be >= 0"):
        LiquidationMonitor.from_state(state, min_parallel=-1)
    with pytest.raises(LiquidationError, match="max_groups must be >= 2"):
        LiquidationMonitor.from_state(state, max_groups=1)
    monitor = LiquidationMonitor.from_state(state)
    stray = unsigned(OracleUpdate, timestamp=GENESIS.genesis_time + 1, previous_timestamp=GENESIS.genesis_time,
                     marks=[InstrumentPrice(instrument=999, price=1)], funding=[], risk_arrays=[], settlements=[])
    with pytest.raises(LiquidationError, match="unknown instrument 999"):
        monitor.on_oracle_update(stray)


@pytest.mark.parametrize("kind", ["process", "dask"])
def test_parallel_equals_serial(kind: str) -> None:
    rng = random.Random(11)
    state = random_state(rng, 3_000, 12, 10**6)
    serial = LiquidationMonitor.from_state(state, "holders")
    with make_executor(kind, 2) as executor:
        parallel = LiquidationMonitor.from_state(state, "holders", executor, min_parallel=0)
        assert parallel.breached == serial.breached == brute_force(state)
        for _ in range(3):
            update = random_oracle_update(rng, state, 10**6)
            assert parallel.on_oracle_update(update).breached == serial.on_oracle_update(update).breached
            assert parallel.breached == brute_force(state)
        full = parallel.recheck_all()
        assert full.rechecked == len(parallel.accounts)
    assert {a: serial.get_margin(a) for a in state.accounts} == {a: parallel.get_margin(a) for a in state.accounts}
    assert serial.breached  # the random state has breached accounts to find


# --- liquidations on a real node -------------------------------------------------------------------

SEED = 3
KEYS = [dev_account_key(SEED, i) for i in range(5)]
ORACLE_KEY = dev_oracle_key(SEED)
NODE_GENESIS = default_genesis(get_address(ORACLE_KEY), n_perps=2, n_series=2, risk=RiskParameters(n_scenarios=4, max_positions=4), tree_depth=3)
DOMAIN = NODE_GENESIS.signing_domain
L2_KEYS = [derive_l2_key(k, DOMAIN) for k in KEYS]
LIQUIDATOR = 0
BTC, ETH = 0, 1


def make_oracle_update(previous: int, timestamp: int, btc: int, eth: int) -> OracleUpdate:
    """Marks of the two perps in USD per contract; risk arrays: -15%, -5%, +5%, +15% of the mark."""
    marks = {BTC: btc * USD, ETH: eth * USD}
    tx = unsigned(
        OracleUpdate, timestamp=timestamp, previous_timestamp=previous,
        marks=[InstrumentPrice(instrument=i, price=m) for i, m in marks.items()],
        funding=[InstrumentFunding(market=i, index=0) for i in marks],
        risk_arrays=[RiskArray(instrument=i, values=[m * p // 100 for p in (-15, -5, 5, 15)]) for i, m in marks.items()],
        settlements=[],
    )
    return sign(tx, [ORACLE_KEY], DOMAIN)


def make_trade(maker: int, taker: int, market: int, size: int, price: int, nonces: dict[int, int]) -> PerpTrade:
    tx = unsigned(PerpTrade, maker=maker, taker=taker, market=market, size=size, price=price * USD, fee=0,
                  maker_nonce=nonces[maker], taker_nonce=nonces[taker])
    nonces[maker] += 1
    nonces[taker] += 1
    return sign(tx, [L2_KEYS[maker], L2_KEYS[taker]], DOMAIN)


def open_book(node_factory, liquidator_usd: int):
    """A node where account 1 is long 100 BTC-PERP on 950 USD, account 3 long 60 BTC-PERP and short
    40 ETH-PERP on 400 USD (2 and 4 are their well-funded counterparties): after BTC falls 10%,
    1 and 3 are below maintenance, 2 and 4 are not."""
    node = node_factory(NODE_GENESIS)
    t0 = NODE_GENESIS.genesis_time
    deposits = [liquidator_usd, 950, 40_000, 400, 40_000]
    setup = [Deposit(deposit_id=i, account=i, address=get_address(k), amount=usd * USD) for i, (k, usd) in enumerate(zip(KEYS, deposits))]
    setup += [sign(unsigned(RegisterKey, account=i, address=get_address(k), key_id=L2_KEYS[i].key_id, nonce=0), [k], DOMAIN) for i, k in enumerate(KEYS)]
    setup.append(make_oracle_update(t0, t0 + 60, 60, 30))
    nonces = {i: 1 for i in range(5)}
    setup += [
        make_trade(2, 1, BTC, 100, 60, nonces),  # initial margin 100 x 9 = 900 USD
        make_trade(4, 3, ETH, -40, 30, nonces),  # 180 USD; with the BTC long below, 360 USD (hedged)
        make_trade(4, 3, BTC, 60, 60, nonces),
    ]
    submission = node.submit(setup)
    assert submission.n_accepted == len(setup), [r.reason for r in submission.receipts if r.status != "accepted"]
    return node


def test_engine_liquidations_are_accepted_by_a_node(node_factory) -> None:
    node = open_book(node_factory, liquidator_usd=1_000_000)
    engine = LiquidationEngine(LiquidationMonitor.from_state(node.state), LIQUIDATOR, L2_KEYS[LIQUIDATOR])
    assert engine.monitor.breached == []
    t = node.state.globals.oracle_time
    crash = node.submit([make_oracle_update(t, t + 60, 54, 30)])  # BTC -10%
    assert get_touched_accounts(crash.batch.diff_rows) == []  # an oracle update changes no account leaf
    pre_liquidation = node.state.copy()
    before = {a: compute_distance(node.state, a) for a in node.state.accounts}
    assert brute_force(node.state) == [1, 3]

    plan, submission = engine.on_batches(node, crash.batches)
    assert {p.account for p in plan.planned} == {1, 3} and not plan.skipped and not plan.partial
    assert all(isinstance(tx, Liquidate) and tx.liquidator == LIQUIDATOR for tx in plan.transactions)
    assert [r.status for r in submission.receipts] == ["accepted"] * len(plan.transactions)
    for account_id in (1, 3):
        equity, maintenance = compute_distance(node.state, account_id)
        assert equity >= maintenance  # restored
        assert equity - maintenance > before[account_id][0] - before[account_id][1]
    # the engine took the smallest restoring size: one contract less would not restore account 1
    first = plan.planned[0]
    # equity 350 - 0.54 x USD (penalty 1% of 54 USD) >= maintenance (100 - x) x 8.1 / 2 USD from x = 16 on
    assert (first.account, first.instrument, first.size) == (1, BTC, 16)
    assert (first.equity_after, first.maintenance_after) == compute_distance(node.state, 1)
    smaller = plan.transactions[0].model_copy(update={"size": first.size - 1})
    state = pre_liquidation.copy()
    assert process_transaction(state, smaller, [L2_KEYS[LIQUIDATOR].key_id]).status == "accepted"
    equity, maintenance = compute_distance(state, 1)
    assert equity < maintenance
    # healthy accounts were not touched
    for account_id in (2, 4):
        assert compute_distance(node.state, account_id) == before[account_id]
    # the engine's monitor has seen its own liquidations: nothing left to do
    assert engine.monitor.breached == brute_force(node.state) == []
    assert engine.on_batches(node, submission.batches) == (LiquidationPlan(), None)


def test_liquidator_margin_limits_the_size(node_factory) -> None:
    # a liquidator with 300 USD: initial margin of 15% x 54 USD = 8.1 USD a contract, at most 37
    node = open_book(node_factory, liquidator_usd=300)
    t = node.state.globals.oracle_time
    node.submit([make_oracle_update(t, t + 60, 54, 30)])
    plan = build_liquidations(node.state, brute_force(node.state), LIQUIDATOR, L2_KEYS[LIQUIDATOR])
    # account 1 is restored; the liquidator's margin runs out during account 3
    assert [p.account for p in plan.planned] == [1, 3]
    assert list(plan.partial) == [3] and "insufficient margin: account 0" in plan.partial[3]
    # one contract more than the limited liquidation would break the liquidator's initial margin
    state = node.state.copy()
    signer = [L2_KEYS[LIQUIDATOR].key_id]
    assert process_transaction(state, plan.transactions[0], signer).status == "accepted"
    limited = plan.transactions[1]
    bigger = limited.model_copy(update={"size": limited.size + (1 if limited.size > 0 else -1)})
    assert "insufficient margin: account 0" in process_transaction(state.copy(), bigger, signer).reason
    assert process_transaction(state, limited, signer).status == "accepted"
    submission = node.submit(plan.transactions)
    assert submission.n_accepted == len(plan.transactions)
    for planned in plan.planned:
        assert planned.equity_after - planned.maintenance_after > planned.equity_before - planned.maintenance_before


def test_healthy_and_own_accounts_are_skipped(node_factory) -> None:
    node = open_book(node_factory, liquidator_usd=1_000_000)
    plan = build_liquidations(node.state, [0, 2, 4, 77], LIQUIDATOR, L2_KEYS[LIQUIDATOR])
    assert plan.transactions == []
    assert plan.skipped[0] == "the engine's own liquidator account"
    assert plan.skipped[2].startswith("not below maintenance")
    assert plan.skipped[77] == "no such account"
    with pytest.raises(LiquidationError, match="has L2 key id"):
        build_liquidations(node.state, [1], LIQUIDATOR, L2_KEYS[1])
    with pytest.raises(LiquidationError, match="liquidator account 9 does not exist"):
        build_liquidations(node.state, [1], 9, L2_KEYS[1])


def test_hedged_bankrupt_account_is_closed_out() -> None:
    """Long 10 BTC-PERP against short 20 ETH-PERP moves as one: no requirement, but equity -50 USD.
    Closing either leg alone raises the requirement (worse); closing both restores the account."""
    key = L2_KEYS[0]
    state = State.from_genesis(GENESIS)
    for instrument_id, (mark, move) in {0: (60, 9), 1: (30, 4.5)}.items():
        instrument = state.instruments[instrument_id]
        instrument.mark = mark * USD
        instrument.risk_array = tuple(int(m * move * USD) for m in (-1, -1 / 3, 1 / 3, 1))
    state.accounts[0] = Account(to_checksum_address(f"0x{1:040x}"), 10_000 * USD, 0, {}, key.key_id)
    state.accounts[1] = Account(to_checksum_address(f"0x{2:040x}"), 50 * USD, 0, {0: Position(10, 700 * USD, 0), 1: Position(-20, -600 * USD, 0)})
    assert compute_distance(state, 1) == (-50 * USD, 0)
    plan = build_liquidations(state, [1], 0, key)
    assert [(p.instrument, p.size) for p in plan.planned] == [(0, 10), (1, -20)]
    assert not plan.partial
    after = state.copy()
    for tx in plan.transactions:
        assert process_transaction(after, tx, [key.key_id]).status == "accepted"
    assert compute_distance(after, 1) == (0, 0) and after.accounts[1].positions == {}
