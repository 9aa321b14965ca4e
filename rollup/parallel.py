"""The partitioned mode's engine (rollup/modes/partitioned.py): one batch executed in conflict-free
partitions, with the same receipts and state as sequential execution.

docs/parallel.md says why this is exact. In short: accounts are the only conflicts (the planner
groups transactions that share one); oracle updates are replayed by every partition at their batch
position; the deposit counter is resolved by a serial pre-pass over the deposits; fee pool,
insurance fund and open interest are merged as deltas.

Pipeline (`execute_batch_parallel`, same contract as `rollup.execution.execute_batch`):

1. `plan_batch` (rollup/planner.py): conflict groups packed into partitions.
2. `compute_deposit_counters`: the deposit pre-pass.
3. `extract_partition_input`: per shipped partition, only the accounts it names (all instruments
   and the globals are small and copied), its transactions, the broadcast oracle updates, the
   counters; `execute_partition` runs it in a worker (top-level, picklable by pickle, dill and
   cloudpickle) and returns the accounts it changed, one outcome per transaction, the touched
   keys, the hot deltas and the oracle-written fields.
4. Meanwhile the coordinator runs partition 0 itself, in place on the node's state
   (`execute_local_partition`; `coordinator_executes=False` ships every partition instead): no
   shipping or merging for that share of the batch, which is where parallel execution in CPython
   loses its time. The planner puts the largest group there, so at full contention nothing is
   shipped at all.
5. `merge_results`: applies the shipped partitions' results to the state, cross-checks the
   oracle replay and the deposits, and rebuilds the receipts in submission order.

Shipping: inputs and results cross the process boundary as ONE bytes object each, made by the C
pickler from plain tuples (`_Packed.__reduce__`). Measured on a 55k-transaction workload, per
transaction: pickling the pydantic models costs 9.4 us (dill: 104 us, its pickler is pure Python)
and unpickling 12.9 us; plain tuples cost 0.4 us to extract, 0.2 us to pickle, 0.2 us to unpickle
and 1.3 us to rebuild the models. Signature strings are not shipped (the signature pass already
recovered the signers). Receipts are rebuilt in the parent from the worker's outcome (None or the
rejection reason) and the signature pass's hash.
"""

from __future__ import annotations

import os
import pickle
import resource
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, fields
from typing import Any

from rollup.execution import ACCOUNT_KEY_LIMIT, Progress, gc_paused
from rollup.planner import ACCOUNT_GETTERS, Plan, compute_window_size, plan_batch
from rollup.rules import ZERO_HASH, InvalidTransaction, process_deposit, process_transaction
from rollup.signatures import SignatureCheck
from rollup.state import Account, Globals, Instrument, Position, State
from verifier.encoding import get_signature_fields
from verifier.wire import (
    TRANSACTION_TYPES,
    Deposit,
    Genesis,
    InstrumentFunding,
    InstrumentPrice,
    OracleUpdate,
    Receipt,
    RiskArray,
)

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
LOCAL_PARTITION = 0  # the partition the coordinator runs itself

Outcome = str | None  # None: accepted; else the rejection reason


class PartitionError(Exception):
    """A partition failed in its worker (or its result is inconsistent): the batch is not applied."""


# --- compact forms: plain tuples the C pickler handles fast ----------------------------------------

TX_CLASSES: dict[str, type] = dict(TRANSACTION_TYPES)
_SHIPPED_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(n for n in cls.model_fields if n not in get_signature_fields(cls)) for cls in TX_CLASSES.values()
}
_BLANK_SIGNATURES: dict[type, dict[str, str]] = {
    cls: {n: "" for n in get_signature_fields(cls)} for cls in TX_CLASSES.values()
}
_ALL_FIELDS_SET: dict[type, set[str]] = {cls: set(cls.model_fields) for cls in TX_CLASSES.values()}
_RECEIPT_FIELDS_ACCEPTED = frozenset({"index", "type", "tx_hash", "status"})
_RECEIPT_FIELDS_REJECTED = frozenset({"index", "type", "tx_hash", "status", "reason"})
_new = object.__new__
_set = object.__setattr__


def build_model(cls: type, values: dict[str, Any], fields_set: set[str] | frozenset[str]) -> Any:
    """A wire model from values that were validated before (what pydantic's own unpickling,
    `__setstate__`, does, at a tenth of pickle's cost)."""
    model = _new(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(fields_set))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


def encode_transaction(tx: Any) -> tuple:
    """The type tag and every field but the signatures, in declaration order."""
    values = tx.__dict__
    if type(tx) is OracleUpdate:
        return (
            "oracle_update",
            tx.timestamp,
            tx.previous_timestamp,
            [(m.instrument, m.price) for m in tx.marks],
            [(f.market, f.index) for f in tx.funding],
            [(r.instrument, r.values) for r in tx.risk_arrays],
            [(s.instrument, s.price) for s in tx.settlements],
        )
    return tuple([values[name] for name in _SHIPPED_FIELDS[type(tx)]])


def decode_transaction(row: tuple) -> Any:
    """The model back from `encode_transaction`, without re-validation (its values come from a
    model validated when the batch was read). Signature fields hold "": this is the execution
    view of a transaction whose signers the signature pass recovered; the rules never read them."""
    cls = TX_CLASSES[row[0]]
    if cls is OracleUpdate:
        _, timestamp, previous_timestamp, marks, funding, risk_arrays, settlements = row
        values = {
            "type": "oracle_update",
            "timestamp": timestamp,
            "previous_timestamp": previous_timestamp,
            "marks": [build_model(InstrumentPrice, {"instrument": i, "price": p}, _PRICE_FIELDS) for i, p in marks],
            "funding": [build_model(InstrumentFunding, {"market": i, "index": x}, _FUNDING_FIELDS) for i, x in funding],
            "risk_arrays": [build_model(RiskArray, {"instrument": i, "values": v}, _RISK_FIELDS) for i, v in risk_arrays],
            "settlements": [
                build_model(InstrumentPrice, {"instrument": i, "price": p}, _PRICE_FIELDS) for i, p in settlements
            ],
            "signature": "",
        }
        return build_model(cls, values, _ALL_FIELDS_SET[cls])
    values = dict(zip(_SHIPPED_FIELDS[cls], row))
    values.update(_BLANK_SIGNATURES[cls])
    return build_model(cls, values, _ALL_FIELDS_SET[cls])


_PRICE_FIELDS = frozenset({"instrument", "price"})
_FUNDING_FIELDS = frozenset({"market", "index"})
_RISK_FIELDS = frozenset({"instrument", "values"})


def get_execution_view(tx: Any) -> Any:
    """What a worker executes: the transaction with blank signatures (for tests and docs)."""
    return tx.model_copy(update=_BLANK_SIGNATURES[type(tx)])


def build_receipt(index: int, tx_type: str, tx_hash: str, outcome: Outcome) -> Receipt:
    """The receipt `process_transaction` gives (same fields, same fields-set), without validating
    values that were validated upstream (the hash by the signature pass, the type by the wire)."""
    if outcome is None:
        values = {"index": index, "type": tx_type, "tx_hash": tx_hash, "status": "accepted", "reason": None}
        return build_model(Receipt, values, _RECEIPT_FIELDS_ACCEPTED)
    values = {"index": index, "type": tx_type, "tx_hash": tx_hash, "status": "rejected", "reason": outcome}
    return build_model(Receipt, values, _RECEIPT_FIELDS_REJECTED)


def get_outcome(receipt: Receipt) -> Outcome:
    return None if receipt.status == "accepted" else receipt.reason


def encode_account(account: Account) -> tuple:
    return (
        account.address,
        account.collateral,
        account.nonce,
        [(i, p.size, p.cost, p.funding) for i, p in account.positions.items()],
        account.l2_key,
        account.orders,
    )


def decode_account(row: tuple) -> Account:
    address, collateral, nonce, positions, l2_key, orders = row
    return Account(address, collateral, nonce, {i: Position(size, cost, funding) for i, size, cost, funding in positions}, l2_key, dict(orders))


def encode_instrument(instrument: Instrument) -> tuple:
    return (
        instrument.spec,
        instrument.mark,
        instrument.funding_index,
        instrument.risk_array,
        instrument.open_interest,
        instrument.settlement,
    )


def decode_instrument(row: tuple) -> Instrument:
    return Instrument(*row)


def apply_oracle_fields(state: State, oracle_fields: tuple) -> None:
    """Set what only oracle updates write (the inverse of `get_oracle_fields`)."""
    per_instrument, oracle_time = oracle_fields
    for instrument_id, mark, funding_index, risk_array, settlement in per_instrument:
        instrument = state.instruments[instrument_id]
        instrument.mark = mark
        instrument.funding_index = funding_index
        instrument.risk_array = risk_array
        instrument.settlement = settlement
    state.globals.oracle_time = oracle_time


def get_oracle_fields(state: State) -> tuple:
    """Everything only oracle updates write: per instrument (mark, funding, risk array,
    settlement), and oracle_time."""
    return (
        tuple(
            (i, inst.mark, inst.funding_index, inst.risk_array, inst.settlement)
            for i, inst in sorted(state.instruments.items())
        ),
        state.globals.oracle_time,
    )


class _Packed:
    """Pickles its fields as one bytes object made by the C pickler, whatever pickler is used
    around it (dill's is pure Python: 10x slower on many small objects)."""

    def __reduce__(self):  # noqa: ANN204
        values = tuple(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]
        return (_unpack, (type(self), pickle.dumps(values, protocol=PICKLE_PROTOCOL)))


def _unpack(cls: type, data: bytes) -> Any:
    return cls(*pickle.loads(data))


# --- worker input and output -----------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionInput(_Packed):
    partition: int
    genesis: Genesis
    accounts: dict[int, tuple]  # encode_account, only the accounts the partition names that exist
    instruments: dict[int, tuple]  # encode_instrument, all of them
    globals: tuple[int, int, int, int]  # fee_pool, insurance_fund, deposit_count, oracle_time
    rows: list[tuple[int, tuple, tuple]]  # (batch index, encode_transaction, signers), batch order
    broadcast: list[tuple[int, tuple, tuple]]  # the oracle updates every partition replays, same form
    deposit_counters: dict[int, int]  # batch index of a deposit -> deposit_count before it


@dataclass(frozen=True)
class PartitionResult(_Packed):
    partition: int
    accounts: dict[int, tuple]  # encode_account of every account the partition changed
    outcomes: list[Outcome]  # one per row of the input, same order
    broadcast_outcomes: list[Outcome]  # one per broadcast oracle update
    touched: list[int]  # state-tree keys
    fee_pool_delta: int
    insurance_fund_delta: int
    open_interest_deltas: dict[int, int]  # instrument -> delta (non-zero only)
    accepted_deposits: list[int]  # batch indices
    oracle_fields: tuple  # get_oracle_fields after the batch
    stats: dict[str, float] = field(default_factory=dict)  # worker timings, pid, peak memory


# --- the deposit pre-pass ----------------------------------------------------------------------------


def compute_deposit_counters(
    state: State, transactions: Sequence[Any], checks: Sequence[SignatureCheck] | Mapping[int, SignatureCheck]
) -> tuple[dict[int, int], list[int], int]:
    """Run the batch's deposits alone, in order, with the real rule on a scratch state that holds
    only the accounts they name: a deposit's validity depends only on `deposit_count` and on the
    bound address of its account, and only deposits write either. Returns (deposit_count before
    each deposit, by batch index; accepted deposits; deposit_count after the batch). `checks` is
    indexed by batch index: every transaction's, or a mapping holding at least the deposits'."""
    scratch = State(state.genesis, {}, {}, Globals(deposit_count=state.globals.deposit_count))
    counters: dict[int, int] = {}
    accepted: list[int] = []
    for index, tx in enumerate(transactions):
        if type(tx) is not Deposit:
            continue
        counters[index] = scratch.globals.deposit_count
        signers = checks[index].signers
        if signers is None:
            continue  # rejected by the signature pass: never executes
        if tx.account not in scratch.accounts and tx.account in state.accounts:
            scratch.accounts[tx.account] = state.accounts[tx.account].copy()
        try:
            process_deposit(scratch, tx, signers)
        except InvalidTransaction:
            continue
        accepted.append(index)
    return counters, accepted, scratch.globals.deposit_count


# --- shipping ----------------------------------------------------------------------------------------


def get_broadcast_items(plan: Plan, transactions: Sequence[Any], checks: Sequence[SignatureCheck]) -> list[tuple[int, Any, tuple]]:
    """The oracle updates every partition replays: those the signature pass did not reject."""
    return [(i, transactions[i], checks[i].signers) for i in plan.broadcast if checks[i].signers is not None]


def extract_partition_input(
    state: State,
    plan: Plan,
    partition: int,
    transactions: Sequence[Any],
    checks: Sequence[SignatureCheck],
    deposit_counters: Mapping[int, int],
    broadcast: list[tuple[int, tuple, tuple]] | None = None,
) -> PartitionInput:
    """Only the state partition `partition` touches: the accounts its transactions name (as they
    are before the batch; absent accounts stay absent), all instruments and the globals; its
    transactions with their recovered signers (those the signature pass rejected stay in the
    parent), the broadcast oracle updates and the deposit counters of its deposits."""
    if broadcast is None:
        broadcast = [(i, encode_transaction(tx), s) for i, tx, s in get_broadcast_items(plan, transactions, checks)]
    rows = []
    named: set[int] = set()
    counters: dict[int, int] = {}
    getters = ACCOUNT_GETTERS
    shipped = _SHIPPED_FIELDS
    for index in plan.partitions[partition]:
        signers = checks[index].signers
        if signers is None:
            continue
        tx = transactions[index]
        cls = type(tx)
        values = tx.__dict__
        rows.append((index, tuple([values[name] for name in shipped[cls]]), signers))
        named.update(getters[cls](tx))
        if cls is Deposit:
            counters[index] = deposit_counters[index]
    state_accounts = state.accounts
    g = state.globals
    return PartitionInput(
        partition=partition,
        genesis=state.genesis,
        accounts={a: encode_account(state_accounts[a]) for a in named if a in state_accounts},
        instruments={i: encode_instrument(inst) for i, inst in state.instruments.items()},
        globals=(g.fee_pool, g.insurance_fund, g.deposit_count, g.oracle_time),
        rows=rows,
        broadcast=broadcast,
        deposit_counters=counters,
    )


# --- running a partition ---------------------------------------------------------------------------


def run_in_batch_order(
    state: State,
    own: Sequence[tuple[int, Any, tuple]],
    broadcast: Sequence[tuple[int, Any, tuple]],
    counters: Mapping[int, int],
    tx_hashes: Sequence[str] | None = None,
) -> tuple[list[Receipt], list[Receipt]]:
    """Execute the partition's own transactions and the broadcast oracle updates, merged in batch
    order, with the sequential node's `process_transaction`; a deposit first gets the counter
    value the pre-pass found. Receipts carry `tx_hashes[index]` (a placeholder hash if None: a
    worker's receipts are rebuilt by the parent). Returns (receipts of own, receipts of broadcast)."""
    own_receipts: list[Receipt] = []
    broadcast_receipts: list[Receipt] = []
    state_globals = state.globals
    b, n_broadcast = 0, len(broadcast)
    for index, tx, signers in own:
        while b < n_broadcast and broadcast[b][0] < index:
            i, update, update_signers = broadcast[b]
            tx_hash = ZERO_HASH if tx_hashes is None else tx_hashes[i]
            broadcast_receipts.append(process_transaction(state, update, update_signers, i, tx_hash))
            b += 1
        if type(tx) is Deposit:
            state_globals.deposit_count = counters[index]
        tx_hash = ZERO_HASH if tx_hashes is None else tx_hashes[index]
        own_receipts.append(process_transaction(state, tx, signers, index, tx_hash))
    for i, update, update_signers in broadcast[b:]:
        tx_hash = ZERO_HASH if tx_hashes is None else tx_hashes[i]
        broadcast_receipts.append(process_transaction(state, update, update_signers, i, tx_hash))
    return own_receipts, broadcast_receipts


def build_partition_state(partition_input: PartitionInput) -> State:
    fee_pool, insurance_fund, deposit_count, oracle_time = partition_input.globals
    return State(
        partition_input.genesis,
        {i: decode_account(row) for i, row in partition_input.accounts.items()},
        {i: decode_instrument(row) for i, row in partition_input.instruments.items()},
        Globals(fee_pool, insurance_fund, deposit_count, oracle_time),
    )


def execute_partition(partition_input: PartitionInput) -> PartitionResult:
    """Run one shipped partition (in a worker): its transactions and the broadcast oracle updates
    in batch order, with the sequential node's `process_transaction`."""
    with gc_paused():
        return _execute_partition(partition_input)


def _execute_partition(partition_input: PartitionInput) -> PartitionResult:
    started = time.perf_counter()
    cpu = time.process_time()
    state = build_partition_state(partition_input)
    own = [(index, decode_transaction(row), signers) for index, row, signers in partition_input.rows]
    replayed = [(index, decode_transaction(row), signers) for index, row, signers in partition_input.broadcast]
    decoded = time.perf_counter()
    own_receipts, broadcast_receipts = run_in_batch_order(state, own, replayed, partition_input.deposit_counters)
    executed = time.perf_counter()
    fee_pool, insurance_fund, _, _ = partition_input.globals
    before_oi = {i: row[4] for i, row in partition_input.instruments.items()}
    touched = sorted(state.touched)
    result = PartitionResult(
        partition=partition_input.partition,
        accounts={k: encode_account(state.accounts[k]) for k in touched if k < ACCOUNT_KEY_LIMIT},
        outcomes=[get_outcome(r) for r in own_receipts],
        broadcast_outcomes=[get_outcome(r) for r in broadcast_receipts],
        touched=touched,
        fee_pool_delta=state.globals.fee_pool - fee_pool,
        insurance_fund_delta=state.globals.insurance_fund - insurance_fund,
        open_interest_deltas={
            i: inst.open_interest - before_oi[i]
            for i, inst in state.instruments.items()
            if inst.open_interest != before_oi[i]
        },
        accepted_deposits=[i for (i, tx, _), r in zip(own, own_receipts) if type(tx) is Deposit and r.status == "accepted"],
        oracle_fields=get_oracle_fields(state),
        stats={
            "pid": os.getpid(),
            "transactions": len(own),
            "decode_s": decoded - started,
            "execute_s": executed - decoded,
            "encode_s": time.perf_counter() - executed,
            "cpu_s": time.process_time() - cpu,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        },
    )
    return result


@dataclass(frozen=True)
class LocalRun:
    """What the coordinator's own partition gave."""

    receipts: dict[int, Receipt]  # by batch index, its transactions and the oracle updates
    broadcast_outcomes: list[Outcome]
    accepted_deposits: list[int]


def execute_local_partition(
    state: State,
    plan: Plan,
    transactions: Sequence[Any],
    checks: Sequence[SignatureCheck],
    deposit_counters: Mapping[int, int],
    broadcast: Sequence[tuple[int, Any, tuple]],
) -> LocalRun:
    """Run partition 0 in the coordinator, in place on `state` (its accounts are disjoint from
    every shipped partition's), with the real transaction hashes: its receipts need no rebuilding."""
    own = [(i, transactions[i], checks[i].signers) for i in plan.partitions[LOCAL_PARTITION] if checks[i].signers is not None]
    hashes = [check.tx_hash for check in checks]
    own_receipts, broadcast_receipts = run_in_batch_order(state, own, broadcast, deposit_counters, hashes)
    receipts = {r.index: r for r in own_receipts}
    receipts.update((r.index, r) for r in broadcast_receipts)
    accepted = [i for (i, tx, _), r in zip(own, own_receipts) if type(tx) is Deposit and r.status == "accepted"]
    return LocalRun(receipts, [get_outcome(r) for r in broadcast_receipts], accepted)


# --- the merge -------------------------------------------------------------------------------------


def merge_results(
    state: State,
    plan: Plan,
    results: Sequence[PartitionResult],
    transactions: Sequence[Any],
    checks: Sequence[SignatureCheck],
    local: LocalRun | None,
    final_deposit_count: int,
    expected_deposits: Sequence[int],
    broadcast_indices: Sequence[int],
) -> list[Receipt]:
    """Apply the shipped partitions' results to `state` (which already holds the coordinator's
    partition, if it ran one) and return the receipts in submission order: accounts are disjoint
    across partitions; hot state is a sum of deltas; the oracle-written fields come from the
    coordinator's replay or, without one, from the first result; every partition must agree on
    them. `state.touched` gets the union of the keys."""
    if local is not None:
        oracle_fields, broadcast_outcomes, source = get_oracle_fields(state), local.broadcast_outcomes, 0
        local_receipts, local_deposits = local.receipts, local.accepted_deposits
    else:
        oracle_fields, broadcast_outcomes = results[0].oracle_fields, results[0].broadcast_outcomes
        source, local_receipts, local_deposits = results[0].partition, {}, []
    # Every partition replayed the same oracle updates: same outcomes, same oracle-written state.
    for result in results:
        if result.oracle_fields != oracle_fields or result.broadcast_outcomes != broadcast_outcomes:
            raise PartitionError(
                f"partition {result.partition} disagrees with partition {source} on the oracle updates' effects"
            )
    # The deposits the partitions accepted are exactly those the pre-pass accepted.
    accepted = sorted([*local_deposits, *(i for result in results for i in result.accepted_deposits)])
    if accepted != list(expected_deposits):
        raise PartitionError("the partitions accepted other deposits than the deposit pre-pass")
    if local is None:
        apply_oracle_fields(state, oracle_fields)

    outcomes: dict[int, Outcome] = {}
    accounts = state.accounts
    instruments = state.instruments
    for result in results:
        rows = [index for index in plan.partitions[result.partition] if checks[index].signers is not None]
        outcomes.update(zip(rows, result.outcomes))
        for account_id, row in result.accounts.items():
            accounts[account_id] = decode_account(row)
        state.globals.fee_pool += result.fee_pool_delta
        state.globals.insurance_fund += result.insurance_fund_delta
        for instrument_id, delta in result.open_interest_deltas.items():
            instruments[instrument_id].open_interest += delta
        state.touched.update(result.touched)
    state.globals.deposit_count = final_deposit_count
    if local is None:
        outcomes.update(zip(broadcast_indices, broadcast_outcomes))

    receipts = []
    for index, (tx, check) in enumerate(zip(transactions, checks)):
        receipt = local_receipts.get(index)
        if receipt is None:
            outcome = check.error if check.signers is None else outcomes[index]
            receipt = build_receipt(index, tx.type, check.tx_hash, outcome)
        receipts.append(receipt)
    return receipts


# --- the whole batch -------------------------------------------------------------------------------


def execute_batch_windowed(
    state: State,
    transactions: Sequence[Any],
    checks: Sequence[SignatureCheck],
    executor: Executor,
    partitions: int,
    progress: Progress | None = None,
    timings: dict[str, Any] | None = None,
    coordinator_executes: bool = True,
    window: int | None = None,
) -> list[Receipt]:
    """`execute_batch_parallel` over consecutive windows of the batch, each planned on the state
    the previous windows left: the same result as one plan (each window is exactly sequential
    execution of its slice), but groups are computed per window, so a batch whose conflict graph
    percolates as a whole still splits into parallel partitions window by window."""
    size = compute_window_size(transactions) if window is None else window
    # A window holds at least one transaction.
    if size < 1:
        raise ValueError(f"window must be at least 1 transaction, got {size}")
    timings = {} if timings is None else timings
    receipts: list[Receipt] = []
    totals: dict[str, float] = {}
    for start in range(0, len(transactions), size):
        part: dict[str, Any] = {}
        window_receipts = execute_batch_parallel(
            state, transactions[start : start + size], checks[start : start + size], executor, partitions,
            progress, part, coordinator_executes,
        )
        if start:  # receipts carry batch indices
            window_receipts = [r.model_copy(update={"index": r.index + start}) for r in window_receipts]
        receipts.extend(window_receipts)
        for name, value in part.items():  # times add up over windows; counts and peaks: the largest
            if name.endswith("_s"):
                totals[name] = totals.get(name, 0.0) + value
            elif isinstance(value, (int, float)):
                totals[name] = max(totals.get(name, value), value)
    timings.update(totals)
    timings["windows"] = -(-len(transactions) // size)
    timings["window_size"] = size
    return receipts


def execute_batch_parallel(
    state: State,
    transactions: Sequence[Any],
    checks: Sequence[SignatureCheck],
    executor: Executor,
    partitions: int,
    progress: Progress | None = None,
    timings: dict[str, Any] | None = None,
    coordinator_executes: bool = True,
) -> list[Receipt]:
    """`rollup.execution.execute_batch` in `partitions` partitions: partition 0 in this process (unless
    `coordinator_executes` is False: then every partition goes to `executor`, for a coordinator
    that should stay idle, e.g. next to a remote cluster), the others on `executor`. Same
    receipts, same post-state, same `state.touched` (which the caller clears first).

    Like `execute_batch`, it changes `state` in place: if it raises (`PartitionError` naming a
    failed partition), `state` may hold part of the batch and must be discarded (`Node.submit`
    reloads it from the store)."""
    # One signature check per transaction (a caller bug otherwise).
    if len(checks) != len(transactions):
        raise ValueError(f"{len(transactions)} transactions but {len(checks)} signature checks")
    with gc_paused():
        return _execute_batch_parallel(
            state, transactions, checks, executor, partitions, progress, timings, coordinator_executes
        )


def _execute_batch_parallel(
    state: State,
    transactions: Sequence[Any],
    checks: Sequence[SignatureCheck],
    executor: Executor,
    partitions: int,
    progress: Progress | None,
    timings: dict[str, Any] | None,
    coordinator_executes: bool,
) -> list[Receipt]:
    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    plan = plan_batch(transactions, partitions)
    t1 = time.perf_counter()
    counters, expected_deposits, final_count = compute_deposit_counters(state, transactions, checks)
    broadcast = get_broadcast_items(plan, transactions, checks)
    first_shipped = 1 if coordinator_executes else 0
    shipped = [p for p in range(first_shipped, plan.workers) if plan.partitions[p]]
    if not coordinator_executes and not shipped:
        shipped = [0]  # someone replays the oracle updates
    encoded_broadcast = [(i, encode_transaction(tx), s) for i, tx, s in broadcast] if shipped else []
    t2 = time.perf_counter()
    futures: list[tuple[int, Future]] = []
    local: LocalRun | None = None
    try:
        for p in shipped:
            partition_input = extract_partition_input(state, plan, p, transactions, checks, counters, encoded_broadcast)
            futures.append((p, executor.submit(execute_partition, partition_input)))
        t3 = time.perf_counter()
        if coordinator_executes:
            local = execute_local_partition(state, plan, transactions, checks, counters, broadcast)
            if progress is not None:
                progress(len(plan.partitions[LOCAL_PARTITION]) + len(plan.broadcast))
        t4 = time.perf_counter()
        results = []
        for p, future in futures:
            results.append(get_partition_result(p, plan.workers, future))
            if progress is not None:
                progress(len(plan.partitions[p]))
    except BaseException:
        for _, future in futures:
            future.cancel()
        raise
    if progress is not None and not coordinator_executes:
        progress(len(plan.broadcast))
    t5 = time.perf_counter()
    broadcast_indices = [i for i, _, _ in broadcast]
    receipts = merge_results(
        state, plan, results, transactions, checks, local, final_count, expected_deposits, broadcast_indices
    )
    t6 = time.perf_counter()
    timings.update(
        {
            "plan_s": t1 - t0,
            "prepass_s": t2 - t1,
            "extract_s": t3 - t2,
            "local_partition_s": t4 - t3,
            "wait_s": t5 - t4,
            "merge_s": t6 - t5,
            "partitions": len(shipped) + coordinator_executes,
            "groups": plan.n_groups,
            "largest_group_share": plan.largest_group_share,
            "parallelism_bound": plan.parallelism_bound,
        }
    )
    for result in results:  # numbers only: the node stores timings as JSON and prints them rounded
        for name in ("decode_s", "execute_s", "encode_s", "cpu_s", "peak_rss_mb"):
            timings[f"partition_{result.partition}_{name}"] = result.stats[name]
    return receipts


def get_partition_result(partition: int, n_partitions: int, future: Future) -> PartitionResult:
    """The partition's result, or a PartitionError naming it."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - any worker failure fails the batch, with its cause
        raise PartitionError(
            f"partition {partition} of {n_partitions} failed in its worker: {type(exc).__name__}: {exc}"
        ) from exc
