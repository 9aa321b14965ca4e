"""Dependency analysis of a batch: access sets, conflict groups and partitions (docs/parallel.md).

Every transaction's access set is computed from its fields alone (no state), Sealevel-style:

- accounts: the accounts it names; every access may write the account, so any shared account is
  a conflict;
- instruments: the instruments whose oracle fields it reads (replicated in every partition, no
  conflict) or, for an oracle update, writes (oracle updates are *broadcast*: every partition
  replays them at their position, so they conflict with nothing);
- hot keys: the commutative state it may add to (`fee_pool`, `insurance_fund`,
  `open_interest:<instrument>`) and `deposit_count`, which a serial pre-pass resolves. Reported,
  never conflicting.

Conflict groups are the connected components of the graph "two transactions share an account",
each kept in submission order; groups are packed into partitions by estimated cost, largest first,
each to the least-loaded partition (LPT). `plan_batch` is pure: same transactions, same plan.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from typing import Any, Callable

import numpy as np

from verifier.wire import (
    Deposit,
    Fill,
    Liquidate,
    OptionTrade,
    OracleUpdate,
    PerpTrade,
    SettleExpired,
    RegisterKey,
    Transfer,
    Withdraw,
)

AccountId = int
BatchIndex = int

# Estimated execution cost per transaction type, in microseconds of one core: the per-type rates
# benchmarks/execution_bench.py measured. Only the ratios matter (for packing and the bound).
DEFAULT_COSTS: dict[str, float] = {
    "perp_trade": 22.0,
    "option_trade": 25.0,
    "liquidate": 24.0,
    "settle_expired": 11.0,
    "transfer": 10.0,
    "withdraw": 8.0,
    "deposit": 7.0,
    "register_key": 8.0,  # not measured yet: assumed as a withdrawal (one account, a nonce and a word)
    "oracle_update": 30.0,  # replayed by every partition
    "fill": 25.0,  # not measured yet: assumed as an option trade (a trade and two order slots)
}
HOT_ACCOUNTS_SHOWN = 5

FEE_POOL = "fee_pool"
INSURANCE_FUND = "insurance_fund"
DEPOSIT_COUNT = "deposit_count"

# Which fields name accounts, which name the instrument read, which hot keys each type may add to.
ACCOUNT_FIELDS: dict[type, tuple[str, ...]] = {
    Deposit: ("account",),
    Withdraw: ("account",),
    Transfer: ("sender", "recipient"),
    PerpTrade: ("maker", "taker"),
    OptionTrade: ("buyer", "seller"),
    Liquidate: ("liquidator", "account"),
    SettleExpired: ("sender", "account"),
    RegisterKey: ("account",),
    OracleUpdate: (),
    Fill: ("taker", "maker"),
}
INSTRUMENT_FIELD: dict[type, str | None] = {
    Deposit: None,
    Withdraw: None,
    Transfer: None,
    PerpTrade: "market",
    OptionTrade: "series",
    Liquidate: "instrument",
    SettleExpired: "series",
    RegisterKey: None,
    OracleUpdate: None,
    Fill: "instrument",
}
HOT_FIELDS: dict[type, tuple[str, ...]] = {
    Deposit: (DEPOSIT_COUNT,),
    Withdraw: (),
    Transfer: (),
    PerpTrade: (FEE_POOL,),
    OptionTrade: (FEE_POOL,),
    Liquidate: (INSURANCE_FUND,),
    SettleExpired: (INSURANCE_FUND,),  # only when the fund covers a shortfall
    RegisterKey: (),
    OracleUpdate: (),
    Fill: (FEE_POOL,),
}


def _tuple_getter(names: tuple[str, ...]) -> Callable[[Any], tuple]:
    """A C-speed getter that always returns a tuple (attrgetter of one name returns a scalar)."""
    if len(names) == 1:
        return attrgetter(names[0], names[0])  # (a, a): the duplicate is harmless for grouping
    return attrgetter(*names)


ACCOUNT_GETTERS: dict[type, Callable[[Any], tuple] | None] = {
    cls: _tuple_getter(names) if names else None for cls, names in ACCOUNT_FIELDS.items()
}


def open_interest_key(instrument_id: int) -> str:
    return f"open_interest:{instrument_id}"


# --- access sets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessSet:
    """The state one transaction may touch, from its fields alone."""

    accounts: frozenset[AccountId]  # read and possibly written: conflicts with any other access
    instruments: frozenset[int]  # oracle fields read (or, if `broadcast`, written)
    hot: frozenset[str]  # commutative keys added to, and deposit_count (pre-resolved)
    broadcast: bool = False  # an oracle update: replayed in every partition

    def conflicts_with(self, other: "AccessSet") -> bool:
        """Two transactions conflict when they name a common account (and neither is broadcast)."""
        return not self.accounts.isdisjoint(other.accounts)


def compute_access_set(tx: object) -> AccessSet:
    """The access set of one transaction, from its fields alone."""
    cls = type(tx)
    # Only the transaction types of verifier.wire have access sets (a caller bug otherwise).
    if cls not in ACCOUNT_FIELDS:
        raise TypeError(f"not a transaction: {cls.__name__}")
    if cls is OracleUpdate:
        written = {m.instrument for m in tx.marks} | {f.market for f in tx.funding}
        written |= {r.instrument for r in tx.risk_arrays} | {s.instrument for s in tx.settlements}
        return AccessSet(frozenset(), frozenset(written), frozenset(), broadcast=True)
    accounts = frozenset(getattr(tx, name) for name in ACCOUNT_FIELDS[cls])
    instrument_field = INSTRUMENT_FIELD[cls]
    instruments = frozenset() if instrument_field is None else frozenset((getattr(tx, instrument_field),))
    hot = set(HOT_FIELDS[cls]) | {open_interest_key(i) for i in instruments}
    return AccessSet(accounts, instruments, frozenset(hot))


# --- conflict groups ------------------------------------------------------------------------------


def compute_conflict_groups(transactions: Sequence[object]) -> tuple[list[list[BatchIndex]], list[BatchIndex]]:
    """(groups, broadcast): the connected components of "shares an account", each a list of batch
    indices in submission order, groups ordered by their first index; and the oracle updates.

    Union-find with union by size and explicit member lists: when a transaction joins two groups,
    the smaller group's accounts are relabelled and its members appended to the larger one (each
    account moves O(log n) times). Appending breaks submission order only in merged groups, which
    are sorted once at the end. The reference for `compute_conflict_groups_numpy` (about 2 us per
    transaction against 0.5-1 us).
    """
    group_of: dict[AccountId, int] = {}  # account -> its group id
    accounts_in: list[list[AccountId]] = []  # group id -> its accounts ([] once merged away)
    members: list[list[BatchIndex]] = []  # group id -> its transactions
    merged: set[int] = set()  # groups whose member lists need sorting
    broadcast: list[BatchIndex] = []
    getters = ACCOUNT_GETTERS
    for index, tx in enumerate(transactions):
        getter = getters[type(tx)]
        if getter is None:
            broadcast.append(index)
            continue
        first, second = getter(tx)  # every non-broadcast type names one or two accounts
        g1 = group_of.get(first)
        g2 = group_of.get(second) if second != first else g1
        if g1 is None and g2 is None:
            gid = len(members)
            members.append([index])
            if first == second:
                accounts_in.append([first])
                group_of[first] = gid
            else:
                accounts_in.append([first, second])
                group_of[first] = group_of[second] = gid
            continue
        if g1 is None or g2 is None:
            gid = g1 if g2 is None else g2
            fresh = first if g1 is None else second
            group_of[fresh] = gid
            accounts_in[gid].append(fresh)
            members[gid].append(index)
            continue
        if g1 != g2:
            if len(accounts_in[g1]) + len(members[g1]) < len(accounts_in[g2]) + len(members[g2]):
                g1, g2 = g2, g1  # g1 is the larger: g2 joins it
            for account in accounts_in[g2]:
                group_of[account] = g1
            accounts_in[g1].extend(accounts_in[g2])
            members[g1].extend(members[g2])
            accounts_in[g2] = []
            members[g2] = []
            merged.add(g1)
            merged.discard(g2)
        members[g1].append(index)
    for gid in merged:
        members[gid].sort()
    groups = [m for m in members if m]
    groups.sort(key=lambda m: m[0])
    return groups, broadcast


def compute_conflict_groups_numpy(transactions: Sequence[object]) -> tuple[list[list[BatchIndex]], list[BatchIndex]]:
    """Same result as `compute_conflict_groups` (the reference), vectorised: accounts are mapped
    to dense ids, components found by hooking every edge's larger root under its smaller one and
    pointer jumping until no edge joins two roots (a few rounds), then transactions are sorted by
    (component, index). About 4x faster on 50k transactions: planning is on the critical path."""
    groups, broadcast, _ = group_pairs_numpy(get_account_pairs(transactions))
    return groups, broadcast


def get_account_pairs(transactions: Sequence[object]) -> list[tuple[AccountId, AccountId] | None]:
    """The accounts each transaction names, as a pair ((a, a) for one account); None if broadcast."""
    getters = ACCOUNT_GETTERS
    found = [getters[type(tx)] for tx in transactions]
    return [None if getter is None else getter(tx) for getter, tx in zip(found, transactions)]


def group_pairs_numpy(
    pairs: Sequence[tuple[AccountId, AccountId] | None],
) -> tuple[list[list[BatchIndex]], list[BatchIndex], list[tuple[AccountId, int]]]:
    """(groups, broadcast, busiest accounts with their transaction counts) from account pairs."""
    broadcast = [i for i, pair in enumerate(pairs) if pair is None]
    if len(broadcast) == len(pairs):
        return [], broadcast, []
    named = [pair for pair in pairs if pair is not None]
    indices = np.array([i for i, pair in enumerate(pairs) if pair is not None], dtype=np.int64)
    flat = np.fromiter(chain.from_iterable(named), dtype=np.int64, count=2 * len(named))
    account_ids, dense = np.unique(flat, return_inverse=True)
    u, v = dense[0::2], dense[1::2]
    root = compute_components(len(account_ids), u, v)
    labels = root[u]
    order = np.argsort(labels, kind="stable")  # by component, submission order inside
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    ends = np.r_[starts[1:], len(order)]
    members = indices[order]
    by_first = np.argsort(members[starts], kind="stable")
    flat_members = members.tolist()
    groups = [flat_members[s:e] for s, e in zip(starts[by_first].tolist(), ends[by_first].tolist())]
    # transactions naming each account (a transaction naming it twice counts once)
    counts = np.bincount(u, minlength=len(account_ids)) + np.bincount(v[u != v], minlength=len(account_ids))
    top = np.lexsort((account_ids, -counts))[:HOT_ACCOUNTS_SHOWN]
    busiest = [(int(account_ids[i]), int(counts[i])) for i in top]
    return groups, broadcast, busiest


def compute_components(n_nodes: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Root (smallest node) of every node's connected component, for the edges (u[i], v[i])."""
    parent = np.arange(n_nodes, dtype=np.int64)
    while True:
        pu, pv = parent[u], parent[v]
        split = pu != pv
        if not split.any():
            return parent
        low, high = np.minimum(pu[split], pv[split]), np.maximum(pu[split], pv[split])
        np.minimum.at(parent, high, low)  # parent[x] <= x always: no cycles
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


# --- costs and packing ----------------------------------------------------------------------------


def compute_costs(transactions: Sequence[object], costs: Mapping[str, float]) -> list[float]:
    """Estimated cost of every transaction (µs), by its type."""
    by_class = {cls: costs.get(cls.model_fields["type"].default, 0.0) for cls in ACCOUNT_FIELDS}
    return [by_class[type(tx)] for tx in transactions]


def compute_group_costs(groups: Sequence[Sequence[BatchIndex]], tx_costs: Sequence[float]) -> list[float]:
    """Sum of the members' costs per group (one vectorised pass)."""
    if not groups:
        return []
    members = np.fromiter(chain.from_iterable(groups), dtype=np.int64)
    starts = np.cumsum([0] + [len(g) for g in groups[:-1]])
    return np.add.reduceat(np.asarray(tx_costs, dtype=float)[members], starts).tolist()


def pack_groups(group_costs: Sequence[float], partitions: int) -> list[list[int]]:
    """Longest-processing-time packing: groups by cost descending (ties: lower group index first),
    each to the least-loaded partition (ties: lower partition index). Returns group ids per
    partition. LPT's makespan is within 4/3 of the optimum, and equals the largest group when that
    group alone exceeds the mean."""
    # At least one partition.
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    order = np.lexsort((np.arange(len(group_costs)), -np.asarray(group_costs, dtype=float))).tolist()
    loads = [(0.0, p) for p in range(partitions)]
    assigned: list[list[int]] = [[] for _ in range(partitions)]
    for g in order:
        load, p = heapq.heappop(loads)
        assigned[p].append(g)
        heapq.heappush(loads, (load + group_costs[g], p))
    return assigned


def compute_parallelism_bound(total: float, largest: float, broadcast: float, partitions: int) -> float:
    """Speed-up bound over sequential execution: every partition replays the broadcast work and at
    least one runs the largest group, so the makespan is at least
    `broadcast + max(largest, groups / partitions)`."""
    groups_cost = total - broadcast
    makespan = broadcast + max(largest, groups_cost / partitions)
    return total / makespan if makespan > 0 else 1.0


# --- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The dependency analysis of one batch for `workers` partitions."""

    n_transactions: int
    workers: int
    groups: list[list[BatchIndex]]  # connected components, submission order, by first index
    broadcast: list[BatchIndex]  # oracle updates: replayed by every partition
    partitions: list[list[BatchIndex]]  # sorted batch indices per partition (broadcast excluded)
    partition_groups: list[list[int]]  # group ids per partition
    group_costs: list[float]  # estimated µs per group
    partition_costs: list[float]  # estimated µs per partition, its broadcast replay included
    broadcast_cost: float
    total_cost: float  # sequential estimate
    largest_group_share: float  # of the groups' cost (broadcast excluded)
    parallelism_bound: float
    hot_accounts: list[tuple[AccountId, int]]  # the accounts named by most transactions
    hot_keys: dict[str, int]  # hot (commutative or pre-resolved) key -> transactions touching it
    group_sizes: list[int] = field(default_factory=list)  # transactions per group

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def to_dict(self, include_indices: bool = False) -> dict[str, Any]:
        """JSON-ready summary (batch indices only if asked: they are as long as the batch)."""
        largest = max(range(self.n_groups), key=lambda g: self.group_costs[g], default=None)
        out: dict[str, Any] = {
            "transactions": self.n_transactions,
            "workers": self.workers,
            "groups": self.n_groups,
            "broadcast": len(self.broadcast),
            "largest_group_transactions": 0 if largest is None else len(self.groups[largest]),
            "largest_group_share": round(self.largest_group_share, 4),
            "parallelism_bound": round(self.parallelism_bound, 3),
            "estimated_total_us": round(self.total_cost, 1),
            "broadcast_cost_us": round(self.broadcast_cost, 1),
            "partition_costs_us": [round(c, 1) for c in self.partition_costs],
            "partition_transactions": [len(p) for p in self.partitions],
            "singleton_groups": sum(1 for g in self.groups if len(g) == 1),
            "hot_accounts": [{"account": a, "transactions": n} for a, n in self.hot_accounts],
            "hot_keys": dict(self.hot_keys),
        }
        if include_indices:
            out["group_indices"] = self.groups
            out["broadcast_indices"] = self.broadcast
            out["partition_indices"] = self.partitions
        return out


def count_hot_accounts(pairs: Sequence[tuple[AccountId, AccountId] | None]) -> list[tuple[AccountId, int]]:
    """Reference: the accounts named by most transactions (ties: smaller id first)."""
    accounts: Counter[AccountId] = Counter()
    for pair in pairs:
        if pair is not None:
            accounts.update(set(pair))
    return sorted(accounts.items(), key=lambda kv: (-kv[1], kv[0]))[:HOT_ACCOUNTS_SHOWN]


def count_hot_keys(transactions: Sequence[object]) -> dict[str, int]:
    """How many transactions touch each hot key (fee pool, insurance fund, open interest of each
    instrument, deposit counter), most touched first."""
    by_type: dict[type, list] = defaultdict(list)
    for tx in transactions:
        by_type[type(tx)].append(tx)
    keys: Counter[str] = Counter()
    for cls, group in by_type.items():
        for key in HOT_FIELDS[cls]:
            keys[key] += len(group)
        instrument_field = INSTRUMENT_FIELD[cls]
        if instrument_field is not None:
            for instrument, n in Counter(map(attrgetter(instrument_field), group)).items():
                keys[open_interest_key(instrument)] += n
    return dict(sorted(keys.items(), key=lambda kv: (-kv[1], kv[0])))


def plan_batch(
    transactions: Sequence[object],
    partitions: int,
    costs: Mapping[str, float] = DEFAULT_COSTS,
    reference: bool = False,
) -> Plan:
    """Access sets -> conflict groups -> LPT packing into `partitions`, with the bound it implies.
    The vectorised grouping by default; `reference=True` uses the plain union-find (same plan)."""
    # At least one partition.
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    pairs = get_account_pairs(transactions)
    if reference:
        groups, broadcast = compute_conflict_groups(transactions)
        hot_accounts = count_hot_accounts(pairs)
    else:
        groups, broadcast, hot_accounts = group_pairs_numpy(pairs)
    tx_costs = compute_costs(transactions, costs)
    group_costs = compute_group_costs(groups, tx_costs)
    broadcast_cost = sum(tx_costs[i] for i in broadcast)
    partition_groups = pack_groups(group_costs, partitions)
    partition_indices = []
    for assigned in partition_groups:
        indices = [i for g in assigned for i in groups[g]]
        indices.sort()
        partition_indices.append(indices)
    partition_costs = [broadcast_cost + sum(group_costs[g] for g in assigned) for assigned in partition_groups]
    groups_total = sum(group_costs)
    largest = max(group_costs, default=0.0)
    total = groups_total + broadcast_cost
    hot_keys = count_hot_keys(transactions)
    return Plan(
        n_transactions=len(transactions),
        workers=partitions,
        groups=groups,
        broadcast=broadcast,
        partitions=partition_indices,
        partition_groups=partition_groups,
        group_costs=group_costs,
        partition_costs=partition_costs,
        broadcast_cost=broadcast_cost,
        total_cost=total,
        largest_group_share=largest / groups_total if groups_total else 0.0,
        parallelism_bound=compute_parallelism_bound(total, largest, broadcast_cost, partitions),
        hot_accounts=hot_accounts,
        hot_keys=hot_keys,
        group_sizes=[len(g) for g in groups],
    )


# --- planning windows (docs/parallel.md, "Percolation") ---------------------------------------------

MIN_WINDOW = 1_000
WINDOW_ACCOUNTS_DIVISOR = 4


def compute_window_size(transactions: Sequence[Any]) -> int:
    """Transactions per planning window, so that conflict groups do not percolate.

    Two-party transactions over A accounts form a random graph; once a window holds more than
    about A/2 of them, one component swallows almost the whole window (the largest group's share
    jumps from a few percent to ~100%). Windows of A/4 stay well below that threshold; a floor
    keeps the per-window round trip (a few ms) small against the work of a window."""
    accounts = {a for pair in get_account_pairs(transactions) if pair is not None for a in pair}
    return max(MIN_WINDOW, len(accounts) // WINDOW_ACCOUNTS_DIVISOR)


def plan_windows(transactions: Sequence[object], partitions: int, window: int | None = None) -> dict:
    """The plans the node runs: one per window of consecutive transactions. The bound is the
    total cost over the sum of each window's largest partition (windows run one after another)."""
    size = compute_window_size(transactions) if window is None else window
    # A window holds at least one transaction.
    if size < 1:
        raise ValueError(f"window must be at least 1 transaction, got {size}")
    plans = [plan_batch(transactions[i : i + size], partitions) for i in range(0, len(transactions), size)]
    total = sum(p.total_cost for p in plans)
    critical = sum(max(p.partition_costs, default=0.0) for p in plans)
    return {
        "window_size": size,
        "windows": len(plans),
        # weighted by each window's cost: a tiny last window of one group would dominate a maximum
        "largest_group_share": sum(p.largest_group_share * p.total_cost for p in plans) / total if total else 0.0,
        "parallelism_bound": total / critical if critical else 1.0,
    }

