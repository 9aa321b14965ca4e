"""The planner: access sets per type, conflict groups against a brute-force reference, LPT
packing, broadcast oracle updates, and `rollup plan`."""

from __future__ import annotations

import itertools
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rollup.cli.main import app
from rollup.fixtures import write_workload
from rollup.planner import (
    DEFAULT_COSTS,
    MIN_WINDOW,
    compute_window_size,
    plan_windows,
    AccessSet,
    compute_access_set,
    compute_conflict_groups,
    compute_conflict_groups_numpy,
    compute_parallelism_bound,
    pack_groups,
    plan_batch,
)
from rollup.signing import unsigned
from verifier.wire import (
    Deposit,
    InstrumentPrice,
    Liquidate,
    OptionTrade,
    OracleUpdate,
    PerpTrade,
    SettleExpired,
    Transfer,
    Withdraw,
)

ADDRESS = "0x" + "11" * 20


def deposit(account: int, deposit_id: int = 0) -> Deposit:
    return unsigned(Deposit, deposit_id=deposit_id, account=account, address=ADDRESS, amount=1)


def trade(maker: int, taker: int, market: int = 0) -> PerpTrade:
    return unsigned(PerpTrade, maker=maker, taker=taker, market=market, size=1, price=1, fee=0, maker_nonce=0, taker_nonce=0)


def transfer(sender: int, recipient: int) -> Transfer:
    return unsigned(Transfer, sender=sender, recipient=recipient, amount=1, nonce=0)


def oracle(timestamp: int = 1, instruments: tuple[int, ...] = (0,)) -> OracleUpdate:
    return unsigned(
        OracleUpdate, timestamp=timestamp, previous_timestamp=timestamp - 1, marks=[InstrumentPrice(instrument=i, price=1) for i in instruments],
        funding=[], risk_arrays=[], settlements=[],
    )


# --- access sets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tx", "accounts", "instruments", "hot"),
    [
        (deposit(4), {4}, set(), {"deposit_count"}),
        (unsigned(Withdraw, account=5, amount=1, nonce=0), {5}, set(), set()),
        (transfer(1, 2), {1, 2}, set(), set()),
        (trade(3, 4, market=1), {3, 4}, {1}, {"fee_pool", "open_interest:1"}),
        (
            unsigned(OptionTrade, buyer=6, seller=7, series=5, quantity=1, premium=1, fee=0, buyer_nonce=0, seller_nonce=0),
            {6, 7}, {5}, {"fee_pool", "open_interest:5"},
        ),
        (unsigned(Liquidate, liquidator=8, account=9, instrument=0, size=1, nonce=0), {8, 9}, {0}, {"insurance_fund", "open_interest:0"}),
        (unsigned(SettleExpired, sender=1, account=2, series=3, nonce=0), {1, 2}, {3}, {"insurance_fund", "open_interest:3"}),
    ],
)
def test_access_set_per_type(tx, accounts, instruments, hot):
    access = compute_access_set(tx)
    assert access == AccessSet(frozenset(accounts), frozenset(instruments), frozenset(hot))
    assert not access.broadcast


def test_oracle_update_is_broadcast_and_writes_its_instruments():
    access = compute_access_set(oracle(instruments=(0, 3)))
    assert access.broadcast
    assert access.accounts == frozenset()
    assert access.instruments == frozenset({0, 3})


def test_invalid_access_set_of_a_non_transaction():
    with pytest.raises(TypeError):
        compute_access_set(object())


def test_hot_keys_do_not_conflict():
    # two trades on the same market share fee pool and open interest, not an account
    assert not compute_access_set(trade(1, 2)).conflicts_with(compute_access_set(trade(3, 4)))
    assert compute_access_set(trade(1, 2)).conflicts_with(compute_access_set(transfer(2, 9)))


# --- conflict groups ---------------------------------------------------------------------------------


def compute_groups_brute_force(transactions) -> list[list[int]]:
    """Reference: connected components of the pairwise conflict graph (O(n^2))."""
    access = [compute_access_set(tx) for tx in transactions]
    nodes = [i for i, a in enumerate(access) if not a.broadcast]
    seen: set[int] = set()
    groups = []
    for start in nodes:
        if start in seen:
            continue
        component, stack = [], [start]
        seen.add(start)
        while stack:
            i = stack.pop()
            component.append(i)
            for j in nodes:
                if j not in seen and access[i].conflicts_with(access[j]):
                    seen.add(j)
                    stack.append(j)
        groups.append(sorted(component))
    return sorted(groups)


def random_batch(rng: random.Random, n: int, accounts: int) -> list:
    batch = []
    for _ in range(n):
        kind = rng.random()
        a, b = rng.randrange(accounts), rng.randrange(accounts)
        if kind < 0.1:
            batch.append(oracle(timestamp=len(batch) + 1))
        elif kind < 0.3:
            batch.append(deposit(a))
        elif kind < 0.4:
            batch.append(unsigned(Withdraw, account=a, amount=1, nonce=0))
        elif kind < 0.6:
            batch.append(transfer(a, b))  # a == b is allowed: the rules reject it, the planner groups it
        else:
            batch.append(trade(a, b, market=rng.randrange(3)))
    return batch


GROUPINGS = [compute_conflict_groups, compute_conflict_groups_numpy]  # reference, fast: same API


@pytest.mark.parametrize("grouping", GROUPINGS)
@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), accounts=st.integers(1, 80))
def test_groups_are_exactly_the_connected_components(grouping, seed, n, accounts):
    batch = random_batch(random.Random(seed), n, accounts)
    groups, broadcast = grouping(batch)
    assert sorted(groups) == compute_groups_brute_force(batch)
    assert broadcast == [i for i, tx in enumerate(batch) if isinstance(tx, OracleUpdate)]
    # submission order inside each group, groups ordered by their first transaction
    assert all(g == sorted(g) for g in groups)
    assert [g[0] for g in groups] == sorted(g[0] for g in groups)


@pytest.mark.parametrize("grouping", GROUPINGS)
def test_a_chain_of_shared_accounts_is_one_group(grouping):
    batch = [trade(1, 2), trade(3, 4), transfer(5, 6), trade(2, 3), deposit(6), oracle(), trade(7, 8)]
    groups, broadcast = grouping(batch)
    assert groups == [[0, 1, 3], [2, 4], [6]]
    assert broadcast == [5]


# --- packing -----------------------------------------------------------------------------------------


def test_lpt_puts_each_group_on_the_least_loaded_partition():
    assert pack_groups([5, 4, 3, 3, 2, 1], 2) == [[0, 3, 5], [1, 2, 4]]  # loads 9 and 9
    assert pack_groups([1, 1, 1], 4) == [[0], [1], [2], []]


def compute_optimal_makespan(costs: list[int], partitions: int) -> int:
    """Brute force over every assignment (small inputs only)."""
    best = sum(costs)
    for assignment in itertools.product(range(partitions), repeat=len(costs)):
        loads = [0] * partitions
        for cost, p in zip(costs, assignment):
            loads[p] += cost
        best = min(best, max(loads))
    return best


@settings(max_examples=100, deadline=None)
@given(costs=st.lists(st.integers(1, 100), max_size=40), partitions=st.integers(1, 5))
def test_lpt_balance(costs, partitions):
    assigned = pack_groups(costs, partitions)
    assert sorted(g for p in assigned for g in p) == list(range(len(costs)))
    loads = [sum(costs[g] for g in p) for p in assigned]
    if costs:
        # list scheduling: the busiest partition exceeds the mean by less than one group
        assert max(loads) <= sum(costs) / partitions + max(costs) * (1 - 1 / partitions) + 1e-9


@settings(max_examples=60, deadline=None)
@given(costs=st.lists(st.integers(1, 50), min_size=1, max_size=7), partitions=st.integers(2, 3))
def test_lpt_is_within_four_thirds_of_the_optimum(costs, partitions):
    loads = [sum(costs[g] for g in p) for p in pack_groups(costs, partitions)]
    assert max(loads) <= (4 / 3 - 1 / (3 * partitions)) * compute_optimal_makespan(costs, partitions) + 1e-9


@pytest.mark.parametrize("grouping", GROUPINGS)
def test_long_chains_and_stars(grouping):
    """Deep components (a path through 300 accounts, built from both ends) and a star."""
    path = [transfer(i, i + 1) for i in range(0, 300, 2)] + [transfer(i, i + 1) for i in range(1, 300, 2)]
    star = [trade(1000, 1001 + i) for i in range(200)]
    groups, _ = grouping(path + star)
    assert groups == [list(range(len(path))), list(range(len(path), len(path) + len(star)))]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 120), accounts=st.integers(1, 100), partitions=st.integers(1, 4))
def test_fast_plan_equals_reference_plan(seed, n, accounts, partitions):
    batch = random_batch(random.Random(seed), n, accounts)
    assert plan_batch(batch, partitions) == plan_batch(batch, partitions, reference=True)


@pytest.mark.parametrize("reference", [False, True])
def test_plan_partitions_cover_the_batch_once_in_order(reference):
    batch = random_batch(random.Random(1), 200, 150)
    plan = plan_batch(batch, 3, reference=reference)
    covered = sorted(i for p in plan.partitions for i in p)
    assert covered == sorted(set(range(len(batch))) - set(plan.broadcast))
    assert all(p == sorted(p) for p in plan.partitions)
    # a group never spans two partitions
    owner = {i: p for p, indices in enumerate(plan.partitions) for i in indices}
    assert all(len({owner[i] for i in group}) == 1 for group in plan.groups)
    assert plan.partition_costs == [
        plan.broadcast_cost + sum(plan.group_costs[g] for g in groups) for groups in plan.partition_groups
    ]


def test_plan_reports_the_bound_the_largest_group_implies():
    # one hot account in every trade: one group, no parallelism
    hot = [trade(0, i) for i in range(1, 30)]
    plan = plan_batch(hot, 2)
    assert plan.n_groups == 1
    assert plan.largest_group_share == 1.0
    assert plan.parallelism_bound == pytest.approx(1.0)
    assert plan.hot_accounts[0] == (0, 29)
    assert plan.hot_keys["fee_pool"] == 29
    # independent pairs: the bound is the number of partitions
    free = [trade(2 * i, 2 * i + 1) for i in range(40)]
    assert plan_batch(free, 2).parallelism_bound == pytest.approx(2.0)
    assert plan_batch(free, 4).parallelism_bound == pytest.approx(4.0)


def test_broadcast_cost_is_paid_by_every_partition():
    batch = [trade(2 * i, 2 * i + 1) for i in range(10)] + [oracle()]
    plan = plan_batch(batch, 2)
    b = DEFAULT_COSTS["oracle_update"]
    assert plan.broadcast == [10]
    assert plan.broadcast_cost == b
    assert plan.parallelism_bound == pytest.approx(compute_parallelism_bound(10 * DEFAULT_COSTS["perp_trade"] + b, DEFAULT_COSTS["perp_trade"], b, 2))
    assert plan.parallelism_bound < 2.0


def test_invalid_partition_count():
    with pytest.raises(ValueError):
        plan_batch([trade(1, 2)], 0)


def test_plan_to_dict_is_json():
    plan = plan_batch(random_batch(random.Random(2), 50, 40), 2)
    data = json.loads(json.dumps(plan.to_dict(include_indices=True)))
    assert data["groups"] == plan.n_groups
    assert data["partition_indices"] == plan.partitions


# --- the CLI -----------------------------------------------------------------------------------------


def test_cli_plan_json(small_workload, tmp_path):
    path = tmp_path / "batch.jsonl"
    write_workload(small_workload, path, tmp_path / "genesis.json")
    result = CliRunner().invoke(app, ["plan", str(path), "--workers", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expected = plan_batch(small_workload.transactions, 2)
    assert data["transactions"] == len(small_workload.transactions)
    assert data["groups"] == expected.n_groups
    assert data["parallelism_bound"] == round(expected.parallelism_bound, 3)
    assert data["hot_accounts"][0]["account"] == 0  # the generator's hot account
    assert len(data["partition_costs_us"]) == 2
    assert data["windowed"]["windows"] == 1 and data["windowed"]["parallelism_bound"] >= 1.0


def test_cli_plan_text(small_workload, tmp_path):
    path = tmp_path / "batch.jsonl"
    write_workload(small_workload, path, tmp_path / "genesis.json")
    result = CliRunner().invoke(app, ["plan", str(path), "--workers", "3"])
    assert result.exit_code == 0, result.output
    assert "conflict groups" in result.output and "parallelism bound with 3 workers" in result.output


def test_cli_plan_refuses_a_file_with_schema_errors(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = trade(1, 2).model_dump_json()
    path.write_text(good + "\n" + '{"type": "withdraw", "account": -1}\n' + "not json\n")
    result = CliRunner().invoke(app, ["plan", str(path), "--json"])
    assert result.exit_code == 1
    assert "line 2" in result.output and "line 3" in result.output


def test_cli_plan_invalid_workers(tmp_path):
    path = tmp_path / "batch.jsonl"
    path.write_text(trade(1, 2).model_dump_json() + "\n")
    result = CliRunner().invoke(app, ["plan", str(path), "--workers", "0"])
    assert result.exit_code == 1
    assert "--workers" in result.output


def test_planning_windows_break_percolation(workload_factory):
    """Many random trades over few accounts percolate into one group; windows of accounts/4
    transactions keep each window's largest group small, so the windowed bound is higher."""
    workload = workload_factory(accounts=200, txs=1200, seed=5, mix={"perp_trade": 1})
    mixed = workload.transactions[200:]
    whole = plan_batch(mixed, 2)
    assert whole.largest_group_share > 0.9
    assert compute_window_size(mixed) == MIN_WINDOW  # 200 accounts / 4 is below the floor
    windowed = plan_windows(mixed, 2, window=50)
    assert windowed["windows"] == -(-len(mixed) // 50)
    assert windowed["largest_group_share"] < 0.5
    assert windowed["parallelism_bound"] > whole.parallelism_bound
    with pytest.raises(ValueError, match="window"):
        plan_windows(mixed, 2, window=0)
