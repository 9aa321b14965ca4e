"""The liquidation engine: which accounts are below maintenance margin, found without scanning every
account after each oracle update or batch, and the Liquidate transactions that take them back.

`LiquidationMonitor` is kept in step with the rollup state (docs/liquidation.md). Per account it
holds the fixed part of its equity and its sizes; an index maps each instrument to its holders.
After a change it re-checks, exactly, only the accounts the change can have pushed below
maintenance margin, and keeps the set of breached accounts equal to what a scan of every account
with the rules' own functions would give:

- mode "holders" re-checks every holder of an instrument whose mark, funding index or risk array
  changed (and every account a batch changed);
- mode "heap" re-checks only the holders whose distance to maintenance margin the change can have
  used up: each holder's distance is shared among its positions as a budget per contract, and
  filed, per instrument, in a heap of the group of holders checked at the same values of the
  instrument; an update pops, in each group, the budgets smaller than the instrument's move from
  that group's values. The bound that makes this sound (a move of an instrument by D per contract
  changes a holder's equity minus maintenance margin by at most |size| x D) is proven in
  docs/liquidation.md, "The bound".

Every check is the rule, not a copy of it: equity is `collateral + sum(compute_position_value)`
(rollup.state) rearranged by the linearity of a position's value in its size, the requirement is
`rollup.margin.compute_margin_requirement` and the maintenance margin `rollup.state
.compute_maintenance`, in Python integers (sizes x risk values need up to 94 bits: numpy's int64
would overflow). Re-checks run in partitions on the project's executors (serial, process pool,
Dask) with the results of the serial check, by construction: one function checks every partition.

`build_liquidations` turns breached accounts into signed Liquidate transactions for an account the
engine controls, each size chosen by running `rollup.rules` on a private copy of the accounts
involved: a transaction it returns is one the rules accepted, in that order, on that state.
"""

from __future__ import annotations

import heapq
import pickle
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rollup.executors import get_executor_workers
from rollup.margin import compute_margin_requirement
from rollup.rules import process_transaction
from rollup.signing import L2Key, sign, unsigned
from rollup.state import (
    Account,
    AccountId,
    Amount,
    Instrument,
    InstrumentId,
    Position,
    State,
    compute_equity,
    compute_maintenance,
    compute_position_value,
    compute_requirement,
)
from rollup.units import BPS
from verifier.wire import Genesis, Liquidate, OracleUpdate

if TYPE_CHECKING:  # the node imports the whole pipeline; the monitor needs none of it
    from rollup.node import BatchResult, Node, Submission

MODES = ("heap", "holders")
DEFAULT_MODE = "heap"
# Below this many accounts a re-check runs here: shipping costs more than it saves (measured:
# 1.3 us to pickle a row and 0.4 us to unpickle its result, against 4-6 us to check it; plus a
# task's fixed cost, 0.1 ms in a pool and 2 ms on Dask).
DEFAULT_MIN_PARALLEL = 4_096
PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
UNIT_POSITION = Position(1, 0, 0)  # one long contract, no cost basis, funding settled at index 0
COMPACT_FACTOR = 4  # heaps are rebuilt from live entries once they hold this many times as many
BULK_FRACTION = 8  # more than 1/8 of a heap in or out at once: one linear pass and heapify, not pops
MAX_GROUPS = 16  # reference groups per instrument; beyond, the smallest is merged into its nearest

Row = tuple[AccountId, Amount, tuple[tuple[InstrumentId, int], ...]]  # (account, fixed equity, sizes)
Values = tuple[Amount, tuple[int, ...]]  # an instrument's (unit value, risk array)
Entry = tuple[int, AccountId, int]  # (budget per contract, account, version) in a reference group
CheckResult = tuple[AccountId, Amount, Amount, Amount]  # (account, equity, requirement, maintenance)


class LiquidationError(Exception):
    """The engine cannot do what was asked (unknown mode, a liquidator that is not ours, ...)."""


# --- The exact check (the rules' functions; runs here or on a worker) ------------------------------


def compute_unit_value(instrument: Instrument) -> Amount:
    """Value of one long contract with no cost basis: `mark - funding_index` (perps), `mark`
    (options). A position's value is `size x unit value + its fixed part` (below)."""
    return compute_position_value(instrument, UNIT_POSITION)


def compute_fixed_equity(
    instruments: Mapping[InstrumentId, Instrument], collateral: Amount, positions: Mapping[InstrumentId, Position]
) -> Amount:
    """The part of an account's equity no oracle update changes: collateral plus, per position,
    its value minus `size x unit value` (`size x funding - cost` for a perp, 0 for an option).
    A position's value is affine in its size with the unit value as slope
    (`rollup.state.compute_position_value`), so `fixed + sum(size x unit value)` is the equity
    under any marks and funding indices; tests/test_liquidation.py checks it against
    `rollup.state.compute_equity`."""
    fixed = collateral
    for instrument_id, position in positions.items():
        instrument = instruments[instrument_id]
        fixed += compute_position_value(instrument, position) - position.size * compute_unit_value(instrument)
    return fixed


def check_rows(
    units: Mapping[InstrumentId, Amount],
    risk_arrays: Mapping[InstrumentId, Sequence[int]],
    maintenance_bps: int,
    rows: Sequence[Row],
) -> list[CheckResult]:
    """(account, equity, requirement, maintenance margin) of each row, in row order: the rules'
    valuation and `rollup.margin`'s requirement, exact integers."""
    results = []
    for account_id, fixed, sizes in rows:
        equity = fixed
        for instrument_id, size in sizes:
            equity += size * units[instrument_id]
        requirement = compute_margin_requirement(dict(sizes), risk_arrays)
        results.append((account_id, equity, requirement, compute_maintenance(requirement, maintenance_bps)))
    return results


def check_packed_rows(data: bytes) -> bytes:
    """`check_rows` on pickled arguments, its result pickled (runs on a worker: the C pickler on
    both sides, as rollup/parallel.py ships partitions; the pool's dill pickler is pure Python)."""
    return pickle.dumps(check_rows(*pickle.loads(data)), protocol=PICKLE_PROTOCOL)


def compute_movement(before: Instrument, after: Instrument) -> int | None:
    """How far an instrument's values moved between two snapshots (`compute_value_distance`);
    None when it had no mark or risk array before (nobody can hold it then: no bound exists)."""
    if before.risk_array is None or before.mark is None or after.risk_array is None or after.mark is None:
        return None
    return compute_value_distance((compute_unit_value(before), before.risk_array), (compute_unit_value(after), after.risk_array))


def compute_value_distance(first: "Values", second: "Values") -> int:
    """The most one contract's equity-minus-maintenance can differ between two (unit value, risk
    array) snapshots of an instrument: |difference of unit values| + max over scenarios
    |difference of risk values|. A distance (it obeys the triangle inequality)."""
    (unit_a, array_a), (unit_b, array_b) = first, second
    moved = abs(unit_a - unit_b)
    if array_a != array_b:
        moved += max(abs(a - b) for a, b in zip(array_a, array_b, strict=True))
    return moved


def compute_scale(instrument: Instrument) -> int:
    """Weight of an instrument when an account's distance to maintenance is shared among its
    positions: the largest P&L of one contract over the scenarios (any positive weight is sound;
    this one spends each share at about the same fraction of a scenario move)."""
    array = instrument.risk_array or (0,)
    return max(1, max(array), -min(array))


# --- The monitor -----------------------------------------------------------------------------------


@dataclass(slots=True)
class AccountRisk:
    """What the monitor holds for one account with positions, and its last exact check."""

    fixed: Amount  # compute_fixed_equity
    sizes: tuple[tuple[InstrumentId, int], ...]  # (instrument, size), by instrument id
    equity: Amount = 0
    requirement: Amount = 0
    maintenance: Amount = 0
    version: int = 0  # heap entries of an older version are stale


@dataclass(slots=True)
class ReferenceGroup:
    """Holders of one instrument filed against the instrument's values at one update: an entry
    is due once the values have moved further from `values` than its budget."""

    values: Values  # (unit value, risk array) at the reference update
    heap: list[Entry]  # (budget per contract, account, version), smallest budget first


@dataclass(frozen=True)
class Recheck:
    """What one update of the monitor did."""

    changed_instruments: tuple[InstrumentId, ...]  # instruments whose values moved
    changed_accounts: int  # accounts the state change named
    # mode "holders": holders of the changed instruments and changed accounts, all re-checked
    # (mode "heap" does not count them: that would be a pass over every holder)
    holders: int | None
    rechecked: int  # accounts checked exactly
    breached: tuple[AccountId, ...]  # every account below maintenance now
    newly_breached: tuple[AccountId, ...]
    recovered: tuple[AccountId, ...]
    seconds: float


class LiquidationMonitor:
    """The set of accounts below maintenance margin, kept in step with the state.

    Build it with `from_state`; after each committed batch call `apply_state_changes(state,
    accounts)` with the accounts it changed (it also takes the instruments' new values from the
    state), or `on_oracle_update(update)` for an accepted oracle update. `breached` is then exactly
    `[a for a in accounts if equity(a) < maintenance(a)]`, sorted.
    """

    def __init__(
        self,
        genesis: Genesis,
        instruments: Mapping[InstrumentId, Instrument],
        mode: str = DEFAULT_MODE,
        executor: Executor | None = None,
        min_parallel: int = DEFAULT_MIN_PARALLEL,
        max_groups: int = MAX_GROUPS,
    ):
        # one of the two strategies
        if mode not in MODES:
            raise LiquidationError(f"unknown monitor mode {mode!r}; choose one of: {', '.join(MODES)}")
        # the bound of "heap" needs maintenance <= initial (|change of maintenance| <= |change of requirement|)
        if not 0 < genesis.risk.maintenance_bps <= BPS:
            raise LiquidationError(f"maintenance_bps must be in 1..{BPS}, got {genesis.risk.maintenance_bps}")
        # a worker threshold is a count
        if min_parallel < 0:
            raise LiquidationError(f"min_parallel must be >= 0, got {min_parallel}")
        # merging needs two groups
        if max_groups < 2:
            raise LiquidationError(f"max_groups must be >= 2, got {max_groups}")
        self.max_groups = max_groups
        self.genesis = genesis
        self.mode = mode
        self.executor = executor
        self.min_parallel = min_parallel
        self.maintenance_bps = genesis.risk.maintenance_bps
        self.instruments: dict[InstrumentId, Instrument] = {i: inst.copy() for i, inst in instruments.items()}
        self.units: dict[InstrumentId, Amount] = {}
        self.risk_arrays: dict[InstrumentId, tuple[int, ...]] = {}
        self.scales: dict[InstrumentId, int] = {}
        for instrument_id, instrument in self.instruments.items():
            self._index_instrument(instrument_id, instrument)
        self.accounts: dict[AccountId, AccountRisk] = {}
        self.holders: dict[InstrumentId, set[AccountId]] = {i: set() for i in self.instruments}
        # heap mode: per instrument, reference groups: the instrument's values at some past
        # update, and a heap of the holders checked then, keyed by how far the values may move
        # from that reference before the holder must be re-checked (docs/liquidation.md)
        self.groups: dict[InstrumentId, list[ReferenceGroup]] = {i: [] for i in self.instruments}
        self._breached: set[AccountId] = set()
        self._version = 0

    @classmethod
    def from_state(
        cls,
        state: State,
        mode: str = DEFAULT_MODE,
        executor: Executor | None = None,
        min_parallel: int = DEFAULT_MIN_PARALLEL,
        max_groups: int = MAX_GROUPS,
    ) -> "LiquidationMonitor":
        """A monitor of every account of `state`, each checked once."""
        monitor = cls(state.genesis, state.instruments, mode, executor, min_parallel, max_groups)
        monitor._load_accounts(state, state.accounts)
        monitor._store(monitor._check(sorted(monitor.accounts)), build_heaps=True)
        return monitor

    # --- what it knows ---
    @property
    def breached(self) -> list[AccountId]:
        """Accounts below maintenance margin, by id."""
        return sorted(self._breached)

    def get_margin(self, account_id: AccountId) -> tuple[Amount, Amount] | None:
        """(equity, maintenance margin) at the account's last exact check (None: no positions).
        In mode "heap" the values of an account not re-checked since may be stale, but not its
        side of maintenance: its instruments have not moved beyond its budgets."""
        entry = self.accounts.get(account_id)
        return None if entry is None else (entry.equity, entry.maintenance)

    # --- updates ---
    def on_oracle_update(self, update: OracleUpdate) -> Recheck:
        """An oracle update the rules accepted: its marks, funding indices and risk arrays (and
        settlements) as `rollup.rules.process_oracle_update` writes them, then the re-checks."""
        started = time.perf_counter()
        moved: dict[InstrumentId, int | None] = {}
        new_values: dict[InstrumentId, Instrument] = {}

        def get_new(instrument_id: InstrumentId) -> Instrument:
            # an instrument the genesis does not list cannot be in an accepted update
            if instrument_id not in self.instruments:
                raise LiquidationError(f"oracle update names unknown instrument {instrument_id}")
            return new_values.setdefault(instrument_id, self.instruments[instrument_id].copy())

        for mark in update.marks:
            get_new(mark.instrument).mark = mark.price
        for funding in update.funding:
            get_new(funding.market).funding_index = funding.index
        for risk_array in update.risk_arrays:
            get_new(risk_array.instrument).risk_array = tuple(risk_array.values)
        for settlement in update.settlements:
            get_new(settlement.instrument).settlement = settlement.price
        for instrument_id, instrument in new_values.items():
            self._set_instrument(instrument_id, instrument, moved)
        return self._recheck(moved, (), started)

    def apply_state_changes(self, state: State, accounts: Iterable[AccountId]) -> Recheck:
        """After a batch (fills, liquidations, transfers, oracle updates): take the instruments'
        values from `state`, the named accounts as they are in `state` (gone, flat or changed),
        and re-check what can have crossed."""
        started = time.perf_counter()
        moved: dict[InstrumentId, int | None] = {}
        for instrument_id, instrument in state.instruments.items():
            mine = self.instruments.get(instrument_id)
            # the state is the monitor's chain: same genesis, same instruments
            if mine is None:
                raise LiquidationError(f"the state has instrument {instrument_id}, which the monitor's genesis does not list")
            if (instrument.mark, instrument.funding_index, instrument.risk_array, instrument.settlement) != (
                mine.mark, mine.funding_index, mine.risk_array, mine.settlement
            ):
                self._set_instrument(instrument_id, instrument.copy(), moved)
        changed = sorted(set(accounts))
        self._load_accounts(state, {a: state.accounts.get(a) for a in changed})
        return self._recheck(moved, changed, started)

    def recheck_all(self) -> Recheck:
        """Check every account exactly (the full scan the monitor avoids; for comparison)."""
        started = time.perf_counter()
        before = set(self._breached)
        ids = sorted(self.accounts)
        self._store(self._check(ids), build_heaps=True)
        return self._report((), 0, len(ids), len(ids), before, started)

    # --- internals ---
    def _index_instrument(self, instrument_id: InstrumentId, instrument: Instrument) -> None:
        if instrument.mark is not None and instrument.risk_array is not None:
            self.units[instrument_id] = compute_unit_value(instrument)
            self.risk_arrays[instrument_id] = instrument.risk_array
        self.scales[instrument_id] = compute_scale(instrument)

    def _set_instrument(self, instrument_id: InstrumentId, instrument: Instrument, moved: dict[InstrumentId, int | None]) -> None:
        """Take new values of one instrument; record how far it moved (None: unbounded)."""
        movement = compute_movement(self.instruments[instrument_id], instrument)
        self.instruments[instrument_id] = instrument
        self._index_instrument(instrument_id, instrument)
        if movement == 0:
            return  # listed again with the same values (a settlement alone moves no margin)
        previous = moved.get(instrument_id, 0)
        moved[instrument_id] = None if movement is None or previous is None else previous + movement

    def _load_accounts(self, state: State, accounts: Mapping[AccountId, Account | None]) -> None:
        """Take these accounts as they are in `state` (None: gone); a flat account leaves the monitor."""
        for account_id, account in accounts.items():
            old = self.accounts.pop(account_id, None)
            if old is not None:
                for instrument_id, _ in old.sizes:
                    self.holders[instrument_id].discard(account_id)
            self._breached.discard(account_id)
            if account is None or not account.positions:
                continue  # no position: equity = collateral >= 0 = maintenance, never breached
            sizes = tuple(sorted((i, p.size) for i, p in account.positions.items()))
            self.accounts[account_id] = AccountRisk(compute_fixed_equity(self.instruments, account.collateral, account.positions), sizes)
            for instrument_id, _ in sizes:
                self.holders[instrument_id].add(account_id)

    def _recheck(self, moved: Mapping[InstrumentId, int | None], changed: Sequence[AccountId], started: float) -> Recheck:
        before = set(self._breached)
        due = set(changed) & self.accounts.keys()
        holders = None
        if self.mode == "holders":
            for instrument_id in moved:
                due |= self.holders[instrument_id]
            holders = len(due)
        else:
            for instrument_id, movement in moved.items():
                due |= self._pop_due(instrument_id, movement)
        ids = sorted(due)
        self._store(self._check(ids))
        return self._report(tuple(sorted(moved)), len(changed), holders, len(ids), before, started)

    def _pop_due(self, instrument_id: InstrumentId, movement: int | None) -> set[AccountId]:
        """Holders whose budget for this instrument its move from their group's reference exceeds."""
        if movement is None:  # no bound: every holder
            return set(self.holders[instrument_id])
        groups = self.groups[instrument_id]
        while len(groups) >= self.max_groups:
            self._merge_smallest(groups)
        now = (self.units[instrument_id], self.risk_arrays[instrument_id])
        accounts = self.accounts
        popped: list[Entry] = []
        for group in groups:
            reached = compute_value_distance(group.values, now)
            heap = group.heap
            # one pop at a time while few are due; a large move (a crash) splits the heap in one pass
            budget = len(popped) + len(heap) // BULK_FRACTION
            while heap and heap[0][0] < reached and len(popped) < budget:
                popped.append(heapq.heappop(heap))
            if heap and heap[0][0] < reached:
                popped += [item for item in heap if item[0] < reached]
                heap[:] = [item for item in heap if item[0] >= reached]
                heapq.heapify(heap)
        self.groups[instrument_id] = [g for g in groups if g.heap]
        return {a for _, a, version in popped if (e := accounts.get(a)) is not None and e.version == version}

    def _merge_smallest(self, groups: list["ReferenceGroup"]) -> None:
        """Merge the group with the fewest entries into the group whose reference is nearest to
        its own: an entry's budget shrinks by the distance between the references, so its bound
        still holds (triangle inequality: move from the old reference <= distance between the
        references + move from the new one)."""
        source = min(groups, key=lambda g: len(g.heap))
        groups.remove(source)
        target = min(groups, key=lambda g: compute_value_distance(g.values, source.values))
        shift = compute_value_distance(target.values, source.values)
        moved = [(budget - shift, account_id, version) for budget, account_id, version in source.heap]
        if len(moved) > len(target.heap) // BULK_FRACTION:
            target.heap.extend(moved)
            heapq.heapify(target.heap)
        else:
            for item in moved:
                heapq.heappush(target.heap, item)

    def _check(self, ids: Sequence[AccountId]) -> list[CheckResult]:
        """`check_rows` over these accounts: here, or in partitions on the executor."""
        accounts = self.accounts
        rows = [(a, accounts[a].fixed, accounts[a].sizes) for a in ids]
        executor = self.executor
        if executor is None or len(rows) < max(1, self.min_parallel):
            return check_rows(self.units, self.risk_arrays, self.maintenance_bps, rows)
        n_parts = max(1, get_executor_workers(executor))
        size = -(-len(rows) // n_parts)
        parts = [rows[i : i + size] for i in range(0, len(rows), size)]
        futures = [
            executor.submit(check_packed_rows, pickle.dumps((self.units, self.risk_arrays, self.maintenance_bps, part), protocol=PICKLE_PROTOCOL))
            for part in parts[1:]
        ]
        try:
            results = check_rows(self.units, self.risk_arrays, self.maintenance_bps, parts[0])  # the coordinator's share
            for future in futures:
                results += pickle.loads(future.result())
        finally:
            for future in futures:
                future.cancel()
        return results

    def _store(self, results: Sequence[CheckResult], build_heaps: bool = False) -> None:
        """Record exact checks; in mode "heap", file each account in every one of its instruments'
        current reference group with its budget."""
        accounts, breached = self.accounts, self._breached
        heap_mode = self.mode == "heap"
        pending: dict[InstrumentId, list[Entry]] = {}
        scales = self.scales
        version = self._version
        for account_id, equity, requirement, maintenance in results:
            entry = accounts[account_id]
            entry.equity, entry.requirement, entry.maintenance = equity, requirement, maintenance
            if equity < maintenance:
                breached.add(account_id)
            else:
                breached.discard(account_id)
            if not heap_mode:
                continue
            version += 1
            entry.version = version
            # The account's distance to maintenance, `equity - maintenance`, is shared among its
            # positions in proportion to |size| x scale: position i gets the budget
            # `distance x scale_i // W` per contract, W = sum |size| x scale. While no instrument
            # has moved from its values now by more than its budget, the distance has shrunk by
            # at most sum |size_i| x budget_i <= distance: the account is not below maintenance
            # (docs/liquidation.md, "The bound"). At or below the edge: re-check on any move.
            distance = equity - maintenance
            if distance <= 0:
                for instrument_id, _ in entry.sizes:
                    pending.setdefault(instrument_id, []).append((-1, account_id, version))
                continue
            weight = 0
            for instrument_id, size in entry.sizes:
                weight += (size if size > 0 else -size) * scales[instrument_id]
            for instrument_id, _ in entry.sizes:
                pending.setdefault(instrument_id, []).append((distance * scales[instrument_id] // weight, account_id, version))
        self._version = version
        for instrument_id, items in pending.items():
            heap = self._get_current_group(instrument_id).heap
            if build_heaps or len(items) > len(heap) // BULK_FRACTION:
                heap.extend(items)
                heapq.heapify(heap)
            else:
                for item in items:
                    heapq.heappush(heap, item)
            if sum(len(g.heap) for g in self.groups[instrument_id]) > COMPACT_FACTOR * len(self.holders[instrument_id]) + 1024:
                self._compact(instrument_id)

    def _get_current_group(self, instrument_id: InstrumentId) -> "ReferenceGroup":
        """The group whose reference is the instrument's values now (a new one after a move)."""
        groups = self.groups[instrument_id]
        now = (self.units[instrument_id], self.risk_arrays[instrument_id])
        if not groups or groups[-1].values != now:
            groups.append(ReferenceGroup(now, []))
        return groups[-1]

    def _compact(self, instrument_id: InstrumentId) -> None:
        """Drop the stale entries (of accounts checked again since) from the instrument's groups."""
        accounts = self.accounts
        for group in self.groups[instrument_id]:
            group.heap = [item for item in group.heap if (e := accounts.get(item[1])) is not None and e.version == item[2]]
            heapq.heapify(group.heap)
        self.groups[instrument_id] = [g for g in self.groups[instrument_id] if g.heap]

    def _report(
        self, moved: tuple[InstrumentId, ...], changed: int, holders: int | None, rechecked: int, before: set[AccountId], started: float
    ) -> Recheck:
        after = self._breached
        return Recheck(
            changed_instruments=moved,
            changed_accounts=changed,
            holders=holders,
            rechecked=rechecked,
            breached=tuple(sorted(after)),
            newly_breached=tuple(sorted(after - before)),
            recovered=tuple(sorted(before - after)),
            seconds=time.perf_counter() - started,
        )


def find_breached(state: State) -> list[AccountId]:
    """Every account below maintenance margin, by scanning them all with the rules' functions (the
    reference the monitor must equal)."""
    instruments, bps = state.instruments, state.genesis.risk.maintenance_bps
    return [
        account_id
        for account_id, account in sorted(state.accounts.items())
        if account.positions
        and compute_equity(instruments, account.collateral, account.positions)
        < compute_maintenance(compute_requirement(instruments, account.positions), bps)
    ]


def get_touched_accounts(diff_rows: Iterable[tuple[int, bytes, bytes]]) -> list[AccountId]:
    """Accounts a committed batch changed (`rollup.node.BatchResult.diff_rows`: an account's
    state-tree key is its id; instruments and globals have keys from 2^29 on)."""
    from rollup.execution import ACCOUNT_KEY_LIMIT

    return [key for key, _, _ in diff_rows if key < ACCOUNT_KEY_LIMIT]


# --- Liquidations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedLiquidation:
    """One Liquidate the engine built, with the account's margin before and after it."""

    account: AccountId
    instrument: InstrumentId
    size: int
    equity_before: Amount
    maintenance_before: Amount
    equity_after: Amount
    maintenance_after: Amount


@dataclass
class LiquidationPlan:
    transactions: list[Liquidate] = field(default_factory=list)  # signed, in submission order
    planned: list[PlannedLiquidation] = field(default_factory=list)  # one per transaction
    skipped: dict[AccountId, str] = field(default_factory=dict)  # accounts left alone, and why
    partial: dict[AccountId, str] = field(default_factory=dict)  # accounts still breached after, and why


def compute_distance(state: State, account_id: AccountId) -> tuple[Amount, Amount]:
    """(equity, maintenance margin) of an account, by the rules' functions."""
    account = state.accounts[account_id]
    requirement = compute_requirement(state.instruments, account.positions)
    return (
        compute_equity(state.instruments, account.collateral, account.positions),
        compute_maintenance(requirement, state.genesis.risk.maintenance_bps),
    )


def is_liquidatable_instrument(state: State, instrument_id: InstrumentId) -> bool:
    """The rules move a position at the mark only while the instrument is priced and, for a
    series, not expired (an expired series is settled instead)."""
    instrument = state.instruments[instrument_id]
    if instrument.mark is None or instrument.risk_array is None:
        return False
    return instrument.is_perp or state.globals.oracle_time < instrument.spec.expiry


class _Scratch:
    """A private copy of the accounts a plan touches (and of the instruments and globals), on which
    the rules run each candidate liquidation: the rest of the state is never read by them."""

    def __init__(self, state: State, liquidator: AccountId, key_id: int):
        self.state = State(
            state.genesis,
            {liquidator: state.accounts[liquidator].copy()},
            {i: inst.copy() for i, inst in state.instruments.items()},
            state.globals.copy(),
        )
        self.source = state
        self.liquidator = liquidator
        self.key_id = key_id

    def add(self, account_id: AccountId) -> None:
        if account_id not in self.state.accounts:
            self.state.accounts[account_id] = self.source.accounts[account_id].copy()

    def make(self, account_id: AccountId, instrument_id: InstrumentId, size: int) -> Liquidate:
        return unsigned(
            Liquidate,
            liquidator=self.liquidator,
            account=account_id,
            instrument=instrument_id,
            size=size,
            nonce=self.state.accounts[self.liquidator].nonce,
        )

    def trial(self, tx: Liquidate) -> tuple[State | None, str | None]:
        """The rules on a copy of the two accounts: (the state after, None) or (None, why not)."""
        current = self.state
        trial = State(
            current.genesis,
            {a: current.accounts[a].copy() for a in (tx.liquidator, tx.account)},
            {**current.instruments, tx.instrument: current.instruments[tx.instrument].copy()},
            current.globals.copy(),
        )
        receipt = process_transaction(trial, tx, [self.key_id])
        return (trial, None) if receipt.status == "accepted" else (None, receipt.reason)

    def commit(self, trial: State) -> None:
        for account_id, account in trial.accounts.items():
            self.state.accounts[account_id] = account
        self.state.instruments.update(trial.instruments)
        self.state.globals = trial.globals


def _search_largest_accepted(scratch: _Scratch, account_id: AccountId, instrument_id: InstrumentId, held: int) -> tuple[int, State | None, str | None]:
    """The largest |size| up to the whole position the rules accept (the liquidator's initial
    margin limits it), its state after; (0, None, why) if not even one contract."""
    sign_ = 1 if held > 0 else -1
    tx = scratch.make(account_id, instrument_id, held)
    after, reason = scratch.trial(tx)
    if after is not None:
        return abs(held), after, None
    low, high, best = 1, abs(held) - 1, None
    while low <= high:
        middle = (low + high) // 2
        trial, _ = scratch.trial(scratch.make(account_id, instrument_id, sign_ * middle))
        if trial is None:
            high = middle - 1
        else:
            best, low = (middle, trial), middle + 1
    if best is None:
        return 0, None, reason
    return best[0], best[1], None


def _search_smallest_restoring(scratch: _Scratch, account_id: AccountId, instrument_id: InstrumentId, sign_: int, largest: int) -> tuple[int, State]:
    """The smallest |size| <= largest that the rules accept and after which the account is at or
    above maintenance margin (the caller knows `largest` does both)."""
    low, high = 1, largest
    best = None
    while low <= high:
        middle = (low + high) // 2
        trial, _ = scratch.trial(scratch.make(account_id, instrument_id, sign_ * middle))
        if trial is not None and _distance(trial, account_id) >= 0:
            best, high = (middle, trial), middle - 1
        else:
            low = middle + 1
    if best is None:  # rounding made the predicate non-monotone at the edge: the known answer
        trial, _ = scratch.trial(scratch.make(account_id, instrument_id, sign_ * largest))
        return largest, trial
    return best


def _plan_step(scratch: _Scratch, account_id: AccountId, distance: Amount) -> tuple[list[tuple[Liquidate, State]], str | None]:
    """The next liquidation(s) of a breached account, each with the state after it, or ([], why).

    The position whose liquidation (at the largest size the rules accept) leaves the account
    furthest above, or least below, maintenance; if that restores it, the smallest size that does.
    If no single position improves the account (a hedged or bankrupt portfolio, where closing one
    leg raises the requirement), every liquidatable position in full, in id order, when the end
    result improves it (each step stays valid: the account is still below maintenance)."""
    best = None  # (distance after, instrument, |size|, sign, state after)
    reasons = []
    for instrument_id, position in sorted(scratch.state.accounts[account_id].positions.items()):
        if not is_liquidatable_instrument(scratch.state, instrument_id):
            continue
        largest, after, why = _search_largest_accepted(scratch, account_id, instrument_id, position.size)
        if after is None:
            reasons.append(f"instrument {instrument_id}: {why}")
            continue
        candidate = (_distance(after, account_id), instrument_id, largest, 1 if position.size > 0 else -1, after)
        if best is None or candidate[0] > best[0]:
            best = candidate
    if best is None:
        return [], "; ".join(reasons) or "no position the rules can liquidate (expired or unpriced)"
    distance_after, instrument_id, largest, sign_, after = best
    # a liquidation must leave the account better off than before
    if distance_after > distance:
        size = largest
        if distance_after >= 0:
            size, after = _search_smallest_restoring(scratch, account_id, instrument_id, sign_, largest)
        return [(scratch.make(account_id, instrument_id, sign_ * size), after)], None
    steps = _plan_close_out(scratch, account_id)
    if steps and _distance(steps[-1][1], account_id) > distance:
        return steps, None
    # the rules' refusals first: they are usually why nothing better was possible
    return [], "; ".join([*reasons, f"no liquidation the rules accept improves the account (the best single one leaves equity - maintenance at {distance_after}, closing every position no better)"])


def _plan_close_out(scratch: _Scratch, account_id: AccountId) -> list[tuple[Liquidate, State]]:
    """Every liquidatable position of the account in full (or as far as the rules accept), in id
    order, each run on the state the previous one left; the scratch state is left unchanged."""
    saved = (dict(scratch.state.accounts), dict(scratch.state.instruments), scratch.state.globals)
    steps = []
    try:
        for instrument_id, position in sorted(scratch.state.accounts[account_id].positions.items()):
            if not is_liquidatable_instrument(scratch.state, instrument_id):
                continue
            largest, after, _ = _search_largest_accepted(scratch, account_id, instrument_id, position.size)
            if after is None:
                continue
            steps.append((scratch.make(account_id, instrument_id, (1 if position.size > 0 else -1) * largest), after))
            scratch.commit(after)
    finally:
        # commits replace objects, never change them: the saved dicts are the state before
        scratch.state.accounts, scratch.state.instruments, scratch.state.globals = saved
    return steps


def _distance(state: State, account_id: AccountId) -> Amount:
    equity, maintenance = compute_distance(state, account_id)
    return equity - maintenance


def build_liquidations(
    state: State, accounts: Iterable[AccountId], liquidator: AccountId, key: L2Key
) -> LiquidationPlan:
    """Signed Liquidate transactions, from `liquidator` (signed with its registered L2 key `key`),
    that bring each breached account of `accounts` back to maintenance margin, or as near as the
    liquidator's own initial margin allows.

    Per account, while it is below maintenance: among its positions the rules can liquidate
    (priced; series not expired), the one whose liquidation leaves the account furthest above
    (or least below) maintenance, at the largest size the rules accept; if that restores the
    account, the smallest size that does. A liquidation that would not improve the account is
    not made. Every transaction is run through `rollup.rules` on a private copy of the accounts,
    in order, so on `state` the plan is accepted transaction by transaction."""
    liquidator_account = state.accounts.get(liquidator)
    # the engine liquidates from an existing account
    if liquidator_account is None:
        raise LiquidationError(f"the liquidator account {liquidator} does not exist")
    # it signs with the key the account registered
    if liquidator_account.l2_key != key.key_id:
        raise LiquidationError(
            f"the liquidator account {liquidator} has L2 key id {liquidator_account.l2_key:#x}, not the engine's {key.key_id:#x}"
        )
    plan = LiquidationPlan()
    scratch = _Scratch(state, liquidator, key.key_id)
    max_steps = state.genesis.risk.max_positions
    for account_id in sorted(set(accounts)):
        # the liquidator cannot liquidate itself
        if account_id == liquidator:
            plan.skipped[account_id] = "the engine's own liquidator account"
            continue
        if account_id not in state.accounts:
            plan.skipped[account_id] = "no such account"
            continue
        scratch.add(account_id)
        equity, maintenance = compute_distance(scratch.state, account_id)
        # only an account below maintenance can be liquidated
        if equity >= maintenance:
            plan.skipped[account_id] = f"not below maintenance (equity {equity} >= {maintenance})"
            continue
        reason = None
        for _ in range(max_steps):
            if equity >= maintenance:
                break
            steps, reason = _plan_step(scratch, account_id, equity - maintenance)
            if not steps:
                break
            for tx, after in steps:
                scratch.commit(after)
                equity_after, maintenance_after = compute_distance(scratch.state, account_id)
                plan.transactions.append(tx)
                plan.planned.append(PlannedLiquidation(account_id, tx.instrument, tx.size, equity, maintenance, equity_after, maintenance_after))
                equity, maintenance = equity_after, maintenance_after
        if equity < maintenance:
            plan.partial[account_id] = reason or f"still below maintenance after {max_steps} liquidations"
    domain = state.genesis.signing_domain
    plan.transactions = [sign(tx, [key], domain) for tx in plan.transactions]
    return plan


class LiquidatorKeyError(ValueError):
    """The liquidator account cannot sign: no L2 key registered, or not one the given wallet key derives."""


def find_liquidator_key(state: State, liquidator: AccountId, wallet_key: bytes, max_index: int = 16) -> L2Key:
    """The liquidator's registered L2 key, among those its wallet key derives (indexes 0 .. max_index - 1)."""
    from rollup.signing import derive_l2_key

    account = state.accounts.get(liquidator)
    # the liquidator signs with the key its leaf registers
    if account is None or account.l2_key == 0:
        raise LiquidatorKeyError(f"liquidator account {liquidator} {'does not exist' if account is None else 'has no L2 key registered'}")
    for index in range(max_index):
        key = derive_l2_key(wallet_key, state.genesis.signing_domain, index)
        if key.key_id == account.l2_key:
            return key
    raise LiquidatorKeyError(f"liquidator account {liquidator}'s registered L2 key is not one its wallet key derives (indexes 0-{max_index - 1})")


class LiquidationEngine:
    """The monitor and the liquidator together: the small API the service drives.

    After each `node.submit(...)`: `plan, submission = engine.on_batches(node, submission.batches)`
    brings the monitor up to date with what the batches changed, builds the liquidations and
    submits them to the node (then takes in what they changed). `after_batch(state, accounts)` is
    the same without a node: it returns the plan for the caller to submit. The engine never
    targets its own liquidator account."""

    def __init__(self, monitor: LiquidationMonitor, liquidator: AccountId, key: L2Key):
        self.monitor = monitor
        self.liquidator = liquidator
        self.key = key

    def after_batch(self, state: State, accounts: Iterable[AccountId]) -> LiquidationPlan:
        self.monitor.apply_state_changes(state, accounts)
        return build_liquidations(state, self.monitor.breached, self.liquidator, self.key)

    def on_batches(self, node: "Node", batches: Iterable["BatchResult"]) -> tuple[LiquidationPlan, "Submission | None"]:
        """The monitor after these committed batches, then the liquidations submitted to `node`
        (None if there are none); the monitor has seen their batches too when this returns."""
        plan = self.after_batch(node.state, {a for batch in batches for a in get_touched_accounts(batch.diff_rows)})
        if not plan.transactions:
            return plan, None
        submission = node.submit(plan.transactions)
        self.monitor.apply_state_changes(node.state, {a for batch in submission.batches for a in get_touched_accounts(batch.diff_rows)})
        return plan, submission
