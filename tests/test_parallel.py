"""Parallel execution gives exactly the sequential result: receipts, state, touched keys, diff, root.

The property test draws a slice of a signed workload from a pool built once per session (random
seeds, contention in [0, 1], invalid share in [0, 0.2], and a mix rich in liquidations,
settlements and oracle updates), optionally shuffles part of it (nonces and deposits out of
order: rejections that depend on earlier transactions of the same group), executes the prefix
before the slice sequentially to get a pre-state, then runs the slice sequentially and in
parallel with 1, 2 and 4 partitions on an inline or a thread executor (they test the logic; real
processes and Dask are tested in tests/test_executors.py).

    ROLLUP_PARALLEL_EXAMPLES=10000 .venv/bin/python -m pytest tests/test_parallel.py -p no:xdist

runs the long version (the default is 500 examples, a few seconds).
"""

from __future__ import annotations

import os
import pickle
import random
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import replace

import dill
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollup.modes import ExecutionOptions
from rollup.executors import SerialExecutor
from rollup.fixtures import HOT_ACCOUNT, Workload, WorkloadSpec, generate_workload
from rollup.execution import execute_batch
from rollup.node import NodeError
from rollup.signatures import check_signatures
from rollup.parallel import (
    PartitionError,
    PartitionInput,
    build_receipt,
    compute_deposit_counters,
    decode_transaction,
    encode_transaction,
    execute_batch_parallel,
    execute_batch_windowed,
    execute_partition,
    extract_partition_input,
    get_execution_view,
)
from rollup.planner import plan_batch
from rollup.rules import process_transaction
from rollup.signing import derive_l2_key, dev_account_key, get_address, sign, unsigned
from verifier.encoding import is_l2_signed
from rollup.state import State
from verifier.wire import Deposit, OracleUpdate, PerpTrade, RegisterKey, Transfer, Withdraw

EXAMPLES = int(os.environ.get("ROLLUP_PARALLEL_EXAMPLES", "500"))
RICH_MIX = {
    "perp_trade": 35, "option_trade": 15, "transfer": 8, "withdraw": 6, "deposit": 6,
    "liquidate": 12, "settle_expired": 10, "oracle_update": 8,
}


class Pooled:
    """A workload with its signature checks (the slow part, done once)."""

    def __init__(self, workload: Workload, seed: int):
        self.workload = workload
        self.seed = seed  # of the TEST keys that signed it
        self.genesis = workload.genesis
        self.transactions = workload.transactions
        self.checks = check_signatures(workload.transactions, workload.genesis.signing_domain)
        self.pre_states: dict[int, State] = {}

    def get_pre_state(self, start: int) -> State:
        """The state after the first `start` transactions, executed sequentially (cached)."""
        if start not in self.pre_states:
            state = State.from_genesis(self.genesis)
            execute_batch(state, self.transactions[:start], self.checks[:start])
            state.touched.clear()
            self.pre_states[start] = state
        return self.pre_states[start].copy()


POOL_SPECS = [
    WorkloadSpec(accounts=120, txs=100, seed=101, contention=0.0, invalid_share=0.0, mix=RICH_MIX),
    WorkloadSpec(accounts=200, txs=120, seed=102, contention=0.05, invalid_share=0.1),
    WorkloadSpec(accounts=60, txs=160, seed=103, contention=0.3, invalid_share=0.2, mix=RICH_MIX),
    WorkloadSpec(accounts=40, txs=160, seed=104, contention=1.0, invalid_share=0.05, mix=RICH_MIX, days=10),
    WorkloadSpec(accounts=150, txs=150, seed=105, contention=0.1, invalid_share=0.15, mix=RICH_MIX, shock=0.3),
    WorkloadSpec(accounts=25, txs=200, seed=106, contention=0.6, invalid_share=0.2, mix=RICH_MIX, shock=0.4, days=8),
]


@pytest.fixture(scope="session")
def pool() -> list[Pooled]:
    return [Pooled(generate_workload(spec, workers=1), spec.seed) for spec in POOL_SPECS]


def run_sequential(pre: State, transactions, checks) -> tuple[State, list]:
    state = pre.copy()
    receipts = execute_batch(state, transactions, checks)
    return state, receipts


def run_parallel(
    pre: State,
    transactions,
    checks,
    executor: Executor,
    partitions: int,
    coordinator_executes: bool = True,
    window: int | None = None,
) -> tuple[State, list]:
    """One plan for the whole batch (window None), or consecutive planning windows of `window`."""
    state = pre.copy()
    if window is None:
        receipts = execute_batch_parallel(
            state, transactions, checks, executor, partitions, coordinator_executes=coordinator_executes
        )
    else:
        receipts = execute_batch_windowed(
            state, transactions, checks, executor, partitions, coordinator_executes=coordinator_executes, window=window
        )
    return state, receipts


def assert_same_result(expected: tuple[State, list], got: tuple[State, list]) -> None:
    (state_a, receipts_a), (state_b, receipts_b) = expected, got
    assert receipts_b == receipts_a
    assert [r.model_dump_json() for r in receipts_b] == [r.model_dump_json() for r in receipts_a]
    assert state_b == state_a
    assert state_b.touched == state_a.touched


def shuffle_window(items: list, rng: random.Random, width: int) -> list:
    """Shuffle one window of the list: out-of-order nonces and deposits."""
    if len(items) < 2 or width < 2:
        return items
    start = rng.randrange(len(items) - 1)
    window = items[start : start + width]
    rng.shuffle(window)
    return items[:start] + window + items[start + width :]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_parallel_equals_sequential(pool, data):
    pooled = data.draw(st.sampled_from(pool), label="workload")
    n = len(pooled.transactions)
    start = data.draw(st.integers(0, n - 1), label="start")
    length = data.draw(st.integers(1, 120), label="length")
    partitions = data.draw(st.sampled_from([1, 2, 4]), label="partitions")
    threads = data.draw(st.booleans(), label="threads")
    coordinator_executes = data.draw(st.booleans(), label="coordinator executes partition 0")
    shuffle_seed = data.draw(st.one_of(st.none(), st.integers(0, 2**32 - 1)), label="shuffle")
    window = data.draw(st.one_of(st.none(), st.integers(1, 60)), label="planning window")
    pairs = list(zip(pooled.transactions[start : start + length], pooled.checks[start : start + length]))
    if shuffle_seed is not None:
        pairs = shuffle_window(pairs, random.Random(shuffle_seed), random.Random(shuffle_seed).randrange(2, 30))
    transactions = [tx for tx, _ in pairs]
    checks = [check for _, check in pairs]
    pre = pooled.get_pre_state(start)
    expected = run_sequential(pre, transactions, checks)
    executor = ThreadPoolExecutor(max_workers=partitions) if threads else SerialExecutor()
    with executor:
        got = run_parallel(pre, transactions, checks, executor, partitions, coordinator_executes, window)
    assert_same_result(expected, got)


def test_the_pool_covers_the_hard_cases(pool):
    """The pool holds what the property must survive: every type accepted, many rejections,
    settlements after oracle settlements, liquidations after the crash, several groups."""
    accepted: set[str] = set()
    rejected = 0
    groups = []
    for pooled in pool:
        _, receipts = run_sequential(State.from_genesis(pooled.genesis), pooled.transactions, pooled.checks)
        accepted |= {r.type for r in receipts if r.status == "accepted"}
        rejected += sum(r.status == "rejected" for r in receipts)
        groups.append(plan_batch(pooled.transactions, 2).n_groups)
    assert accepted == {"deposit", "withdraw", "transfer", "perp_trade", "option_trade", "liquidate", "settle_expired", "register_key", "oracle_update", "fill"}
    assert rejected > 50
    assert max(groups) > 20 and min(groups) < max(groups)


@pytest.mark.parametrize("coordinator_executes", [True, False])
@pytest.mark.parametrize("partitions", [1, 2, 4])
@pytest.mark.parametrize("which", range(len(POOL_SPECS)))
def test_whole_workloads(pool, which, partitions, coordinator_executes):
    pooled = pool[which]
    pre = State.from_genesis(pooled.genesis)
    expected = run_sequential(pre, pooled.transactions, pooled.checks)
    with ThreadPoolExecutor(max_workers=partitions) as executor:
        got = run_parallel(pre, pooled.transactions, pooled.checks, executor, partitions, coordinator_executes)
    assert_same_result(expected, got)


# --- hand-built adversarial batches -------------------------------------------------------------------


class Signer:
    """Signs hand-built transactions with the keys of a pool workload."""

    def __init__(self, pooled: Pooled):
        self.seed = pooled.seed
        self.pooled = pooled
        self.chain_id = pooled.genesis.signing_domain

    def key(self, account: int):
        return dev_account_key(self.seed, account)

    def address(self, account: int) -> str:
        return get_address(self.key(account))

    def sign(self, tx, *accounts: int, state: State | None = None):
        """Sign as the accounts' wallets: their Ethereum keys, or for L2-signed types the L2 key
        each account holds in `state` (its first key if it holds none: a key the rules refuse)."""
        if not is_l2_signed(type(tx)):
            return sign(tx, [self.key(a) for a in accounts], self.chain_id)
        return sign(tx, [self.l2_key(a, state) for a in accounts], self.chain_id)

    def l2_key(self, account: int, state: State | None):
        held = state.accounts[account].l2_key if state is not None and account in state.accounts else 0
        for index in range(16):  # the workload rotates keys a few times at most
            key = derive_l2_key(self.key(account), self.chain_id, index)
            if key.key_id == held:
                return key
        return derive_l2_key(self.key(account), self.chain_id, 0)

    def register(self, account: int, nonce: int):
        """The account's first L2 key registration, signed by its address."""
        key = derive_l2_key(self.key(account), self.chain_id, 0)
        tx = unsigned(RegisterKey, account=account, address=self.address(account), key_id=key.key_id, nonce=nonce)
        return sign(tx, [self.key(account)], self.chain_id)


def get_after_setup(pooled: Pooled) -> tuple[State, int]:
    """State after the deposits and the first oracle update of the workload."""
    setup = pooled.workload.summary["setup"]
    return pooled.get_pre_state(setup), setup


def test_adversarial_batch(pool):
    pooled = pool[0]  # seed 101, 120 accounts, no invalid transactions
    signer = Signer(pooled)
    pre, setup = get_after_setup(pooled)
    count = pre.globals.deposit_count
    n_accounts = POOL_SPECS[0].accounts
    new, other = n_accounts + 5, n_accounts + 6  # accounts no deposit has created yet
    a, b, c, d, e = 1, 2, 3, 4, 5
    market = 0
    mark = pre.instruments[market].mark
    acc = pre.accounts

    def n(account: int) -> int:
        return acc[account].nonce + 1  # after its registration, the batch's first transactions

    def l2(tx, *accounts):
        return sign(tx, [derive_l2_key(signer.key(x), signer.chain_id, 0) for x in accounts], signer.chain_id)

    oracle_updates = [tx for tx in pooled.transactions[setup:] if isinstance(tx, OracleUpdate)]
    batch = [
        # the five register their L2 keys (nobody has one right after the setup)
        *(signer.register(x, acc[x].nonce) for x in (a, b, c, d, e)),
        # a trade, then the taker withdraws everything but 1 micro-USD ...
        l2(unsigned(PerpTrade, maker=b, taker=a, market=market, size=1, price=mark, fee=0, maker_nonce=n(b), taker_nonce=n(a)), b, a),
        signer.sign(unsigned(Withdraw, account=c, amount=acc[c].collateral - 1, nonce=n(c)), c),
        # ... so this trade of c's is rejected for margin: it depends on the withdrawal (same group)
        l2(unsigned(PerpTrade, maker=a, taker=c, market=market, size=10, price=mark, fee=0, maker_nonce=n(a) + 1, taker_nonce=n(c) + 1), a, c),
        # a deposit out of order (skips an id): rejected
        unsigned(Deposit, deposit_id=count + 1, account=new, address=signer.address(new), amount=10**9),
        # a trade naming an account before the deposit that creates it: rejected (unknown account)
        l2(unsigned(PerpTrade, maker=d, taker=new, market=market, size=1, price=mark, fee=0, maker_nonce=n(d), taker_nonce=0), d, new),
        # the deposits in order, to two new accounts that land in different groups
        unsigned(Deposit, deposit_id=count, account=new, address=signer.address(new), amount=10**11),
        unsigned(Deposit, deposit_id=count + 1, account=other, address=signer.address(other), amount=10**9),
        # a deposit to an existing account from the wrong address: rejected
        unsigned(Deposit, deposit_id=count + 2, account=e, address=signer.address(new), amount=1),
        # the new account's trade before it registers an L2 key: rejected (no key)
        l2(unsigned(PerpTrade, maker=d, taker=new, market=market, size=1, price=mark, fee=0, maker_nonce=n(d), taker_nonce=0), d, new),
        # it registers, and now the trade is accepted, and a transfer reaches the new account
        signer.register(new, 0),
        l2(unsigned(PerpTrade, maker=d, taker=new, market=market, size=1, price=mark, fee=0, maker_nonce=n(d), taker_nonce=1), d, new),
        l2(unsigned(Transfer, sender=e, recipient=new, amount=1, nonce=n(e)), e),
        # a replayed transfer: rejected (nonce)
        l2(unsigned(Transfer, sender=e, recipient=new, amount=1, nonce=n(e)), e),
        # the workload's later oracle updates (the crash, the settlements) in the middle of the batch
        *oracle_updates[:3],
        unsigned(Deposit, deposit_id=count + 2, account=e, address=signer.address(e), amount=5),
        *oracle_updates[3:],
    ]
    checks = check_signatures(batch, pooled.genesis.signing_domain)
    expected = run_sequential(pre, batch, checks)
    statuses = [r.status for r in expected[1]]
    assert statuses[:18] == ["accepted"] * 5 + ["accepted", "accepted", "rejected", "rejected", "rejected", "accepted", "accepted",
                                                "rejected", "rejected", "accepted", "accepted", "accepted", "rejected"]
    plan = plan_batch(batch, 2)
    assert plan.n_groups >= 3
    for partitions in (1, 2, 3, 4):
        for coordinator_executes in (True, False):
            got = run_parallel(pre, batch, checks, SerialExecutor(), partitions, coordinator_executes)
            assert_same_result(expected, got)


def test_settlements_and_liquidations_after_the_oracle_moves(pool):
    """The pool's crash workload from the point where the crash update arrives: liquidations and
    settlements in the batch depend on the broadcast oracle updates before them."""
    for pooled in pool:
        updates = [i for i, tx in enumerate(pooled.transactions) if isinstance(tx, OracleUpdate)]
        middle = updates[len(updates) // 2]
        pre = pooled.get_pre_state(middle)
        batch, checks = pooled.transactions[middle:], pooled.checks[middle:]
        expected = run_sequential(pre, batch, checks)
        for partitions in (2, 4):
            for coordinator_executes in (True, False):
                got = run_parallel(pre, batch, checks, SerialExecutor(), partitions, coordinator_executes)
                assert_same_result(expected, got)


def test_only_oracle_updates_and_empty_batches(pool):
    pooled = pool[0]
    pre, setup = get_after_setup(pooled)
    pairs = [(tx, c) for tx, c in zip(pooled.transactions[setup:], pooled.checks[setup:]) if isinstance(tx, OracleUpdate)]
    batch, checks = [tx for tx, _ in pairs], [c for _, c in pairs]
    expected = run_sequential(pre, batch, checks)
    for coordinator_executes in (True, False):
        assert_same_result(expected, run_parallel(pre, batch, checks, SerialExecutor(), 2, coordinator_executes))
        empty = run_parallel(pre, [], [], SerialExecutor(), 2, coordinator_executes)
        assert_same_result(run_sequential(pre, [], []), empty)


def test_invalid_signatures_are_rejected_like_the_sequential_pass(pool):
    pooled = pool[1]
    pre, setup = get_after_setup(pooled)
    batch = list(pooled.transactions[setup : setup + 40])
    # a trade signed by the wrong key for its taker, and an oracle update signed by an account
    signer = Signer(pooled)
    batch[3] = replace_signature(batch[3], signer)
    checks = check_signatures(batch, pooled.genesis.signing_domain)
    expected = run_sequential(pre, batch, checks)
    assert_same_result(expected, run_parallel(pre, batch, checks, SerialExecutor(), 2))


def replace_signature(tx, signer: Signer):
    """The same transaction with its first signature made by another key (any transaction type)."""
    fields = {k: v for k, v in tx.model_dump().items()}
    first = next(name for name in fields if name.endswith("signature"))
    stranger = derive_l2_key(signer.key(99), signer.chain_id, 0) if is_l2_signed(type(tx)) else signer.key(99)
    resigned = sign(unsigned(type(tx), **{k: v for k, v in fields.items() if not k.endswith("signature")}),
                    [stranger] * sum(k.endswith("signature") for k in fields), signer.chain_id)
    return tx.model_copy(update={first: getattr(resigned, first)})


# --- the pieces ----------------------------------------------------------------------------------------


def test_transactions_round_trip_through_the_compact_form(pool):
    for pooled in pool:
        for tx in pooled.transactions:
            again = decode_transaction(encode_transaction(tx))
            view = get_execution_view(tx)  # signatures blank: the signers travel separately
            assert again == view and type(again) is type(tx)
            assert again.model_dump_json() == view.model_dump_json()


def test_fast_receipts_equal_validated_ones(pool):
    pooled = pool[2]
    state = State.from_genesis(pooled.genesis)
    for index, (tx, check) in enumerate(zip(pooled.transactions, pooled.checks)):
        if check.signers is None:
            continue
        receipt = process_transaction(state, tx, check.signers, index, check.tx_hash)
        fast = build_receipt(index, tx.type, check.tx_hash, None if receipt.status == "accepted" else receipt.reason)
        assert fast == receipt
        assert fast.model_dump_json() == receipt.model_dump_json()
        assert fast.model_fields_set == receipt.model_fields_set


def test_deposit_pre_pass_matches_sequential_deposits(pool):
    pooled = pool[2]
    state = State.from_genesis(pooled.genesis)
    counters, accepted, final = compute_deposit_counters(state, pooled.transactions, pooled.checks)
    sequential = State.from_genesis(pooled.genesis)
    seen = []
    for index, (tx, check) in enumerate(zip(pooled.transactions, pooled.checks)):
        if isinstance(tx, Deposit):
            assert counters[index] == sequential.globals.deposit_count
        if check.signers is not None:
            receipt = process_transaction(sequential, tx, check.signers, index)
            if isinstance(tx, Deposit) and receipt.status == "accepted":
                seen.append(index)
    assert accepted == seen and final == sequential.globals.deposit_count


@pytest.mark.parametrize("pickler", [pickle, dill])
def test_worker_input_and_output_pickle(pool, pickler):
    pooled = pool[1]
    pre, _ = get_after_setup(pooled)
    plan = plan_batch(pooled.transactions, 2)
    counters, _, _ = compute_deposit_counters(pre, pooled.transactions, pooled.checks)
    partition_input = extract_partition_input(pre, plan, 1, pooled.transactions, pooled.checks, counters)
    shipped = pickler.loads(pickler.dumps(partition_input))
    assert shipped == partition_input
    function = pickler.loads(pickler.dumps(execute_partition))
    result = function(shipped)
    again = pickler.loads(pickler.dumps(result))
    direct = execute_partition(partition_input)
    assert again.outcomes == direct.outcomes and again.accounts == direct.accounts
    assert again.touched == direct.touched


def test_a_partition_names_only_its_accounts(pool):
    pooled = pool[1]
    pre, setup = get_after_setup(pooled)
    batch, checks = pooled.transactions[setup:], pooled.checks[setup:]
    plan = plan_batch(batch, 2)
    counters, _, _ = compute_deposit_counters(pre, batch, checks)
    inputs = [extract_partition_input(pre, plan, p, batch, checks, counters) for p in range(2)]
    assert set(inputs[0].accounts).isdisjoint(inputs[1].accounts)
    assert len(inputs[0].accounts) + len(inputs[1].accounts) < len(pre.accounts)


# --- failures ------------------------------------------------------------------------------------------


class FaultyExecutor(Executor):
    """Runs tasks inline, but hands partition `bad` an input that makes the worker fail (a row of
    an unknown transaction type), as a corrupted shipment or a worker bug would."""

    def __init__(self, bad: int):
        self.bad = bad
        self.inner = SerialExecutor()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        (partition_input,) = args
        if isinstance(partition_input, PartitionInput) and partition_input.partition == self.bad:
            broken = ("no_such_type",) + partition_input.rows[0][1][1:]
            rows = [(partition_input.rows[0][0], broken, partition_input.rows[0][2]), *partition_input.rows[1:]]
            partition_input = replace(partition_input, rows=rows)
        return self.inner.submit(fn, partition_input, **kwargs)


def test_a_failed_partition_fails_the_batch_and_names_it(pool):
    pooled = pool[1]
    pre, setup = get_after_setup(pooled)
    batch, checks = pooled.transactions[setup:], pooled.checks[setup:]
    with pytest.raises(PartitionError, match="partition 1 of 3 failed in its worker: KeyError"):
        execute_batch_parallel(pre.copy(), batch, checks, FaultyExecutor(bad=1), 3)
    # without a partition of its own, the coordinator changes nothing before every result is in
    state = pre.copy()
    with pytest.raises(PartitionError, match="partition 0 of 2 failed in its worker: KeyError"):
        execute_batch_parallel(state, batch, checks, FaultyExecutor(bad=0), 2, coordinator_executes=False)
    assert state == pre


def test_node_commits_nothing_when_a_partition_fails(pool, node_factory):
    pooled = pool[1]
    setup = pooled.workload.summary["setup"]
    node = node_factory(pooled.genesis)
    node.submit(pooled.transactions[:setup], max_batch_txs=None).batch
    root, number, state = node.root, node.batch_number, node.state.copy()
    with pytest.raises(NodeError, match="batch not committed: partition 1 of 2 failed"):
        node.submit(pooled.transactions[setup:], ExecutionOptions(mode="partitioned", executor=FaultyExecutor(bad=1), partitions=2), max_batch_txs=None).batch
    assert (node.root, node.batch_number) == (root, number)
    assert node.state == state
    # the node still works, and a good parallel batch commits the sequential root
    reference = node_factory(pooled.genesis, name="reference")
    reference.submit(pooled.transactions[:setup], max_batch_txs=None).batch
    expected = reference.submit(pooled.transactions[setup:], max_batch_txs=None).batch
    result = node.submit(pooled.transactions[setup:], ExecutionOptions(mode="partitioned", executor=SerialExecutor(), partitions=2), max_batch_txs=None).batch
    assert result.new_root == expected.new_root


# --- through the node: diff and root ----------------------------------------------------------------------


@pytest.mark.parametrize(("which", "partitions", "coordinator_executes"), [(0, 2, True), (2, 4, True), (3, 2, False), (4, 3, True), (5, 2, False), (1, 2, False)])
def test_node_parallel_submit_gives_the_sequential_diff_and_root(pool, node_factory, which, partitions, coordinator_executes):
    pooled = pool[which]
    cut = len(pooled.transactions) // 3
    sequential = node_factory(pooled.genesis, name="sequential")
    parallel = node_factory(pooled.genesis, name="parallel")
    with ThreadPoolExecutor(max_workers=partitions) as executor:
        for part in (pooled.transactions[:cut], pooled.transactions[cut:]):
            expected = sequential.submit(part, max_batch_txs=None).batch
            got = parallel.submit(part, ExecutionOptions(mode="partitioned", executor=executor, partitions=partitions, coordinator_executes=coordinator_executes), max_batch_txs=None).batch
            assert got.receipts == expected.receipts
            assert got.diff == expected.diff
            assert got.new_root == expected.new_root
            assert parallel.state == sequential.state
    assert got.timings["partitions"] >= 1 and "plan_s" in got.timings


def test_hot_account_is_reported(pool):
    plan = plan_batch(pool[3].transactions, 2)  # contention 1.0
    assert plan.hot_accounts[0][0] == HOT_ACCOUNT
    assert plan.largest_group_share > 0.9
