"""The service's oracle clock: signed oracle updates from the embedded feed, one per tick.

Each tick moves the seeded market of `rollup.oracle_feed.simulate_market` one step to the wall
clock's second, computes the integer oracle values (`compute_oracle_values`, funding chained to
the previous update) and signs the `OracleUpdate` with the development oracle key of the embedded
defaults (the key `rollup init`'s genesis names). The chain starts from the node's state: its
last oracle time, marks and funding indices, so a restarted service continues the funding index
instead of restarting it at 0.
"""

from __future__ import annotations

from typing import Any

from rollup.fixtures import WorkloadSpec, build_oracle_update, get_initial_quotes
from rollup.oracle_feed import OracleValues, compute_oracle_values, simulate_market
from rollup.risk import MarketSnapshot
from rollup.signing import dev_oracle_key, get_address, sign
from rollup.state import State
from verifier.wire import Genesis, OracleUpdate


class OracleClockError(ValueError):
    """The service cannot sign oracle updates for this genesis."""


def get_default_oracle_key() -> Any:
    """The development oracle key of the embedded defaults (`rollup init`, `rollup fixtures`)."""
    return dev_oracle_key(WorkloadSpec().seed)


def get_previous_values(state: State) -> OracleValues | None:
    """The last applied update's values as far as the state keeps them (marks, funding, settlements):
    what the next update's funding accrual and settlement prices chain to."""
    if not any(inst.mark is not None for inst in state.instruments.values()):
        return None
    perps = sorted((i, inst) for i, inst in state.instruments.items() if inst.is_perp and inst.mark is not None)
    return OracleValues(
        timestamp=state.globals.oracle_time,
        underlyings=(),
        perp_marks=tuple((i, inst.mark) for i, inst in perps),
        index_prices=tuple((i, inst.mark) for i, inst in perps),  # the state keeps marks, not index prices
        funding_indices=tuple((i, inst.funding_index) for i, inst in perps),
        option_marks=(),
        perp_risk_arrays=(),
        option_risk_arrays=(),
        settlement_prices=tuple(sorted((i, inst.settlement) for i, inst in state.instruments.items() if inst.settlement is not None)),
    )


class OracleClock:
    """Signs the next oracle update of the embedded feed for a node's genesis."""

    def __init__(self, genesis: Genesis, key: Any = None, seed: int = 1):
        self.key = key if key is not None else get_default_oracle_key()
        # only the genesis' oracle can sign updates the rules accept
        if get_address(self.key) != genesis.oracle_address:
            raise OracleClockError(
                f"the genesis names oracle {genesis.oracle_address}, not the embedded defaults' {get_address(self.key)}: "
                "this service cannot sign its oracle updates"
            )
        self.genesis = genesis
        self.seed = seed
        self.quotes = get_initial_quotes(genesis)
        self.perps = {s.id: s for s in genesis.instruments if s.kind == "perp"}
        self.series = {s.id: s for s in genesis.instruments if s.kind == "option"}
        self.previous: OracleValues | None = None
        self.steps = 0

    def next_update(self, state: State, now_s: int, resync: bool = False) -> OracleUpdate:
        """The signed update at `now_s` (or one second after the last one, if the clock lags).
        `resync`: none of this clock's updates is waiting for a batch, so the state's last update
        is the one to follow (an update of ours that the rules rejected is forgotten)."""
        if self.previous is None or (resync and self.previous.timestamp != state.globals.oracle_time):
            self.previous = get_previous_values(state)
        last = self.previous.timestamp if self.previous is not None else state.globals.oracle_time
        timestamp = max(now_s, last + 1)
        self.steps += 1
        path = simulate_market(self.seed + self.steps, 2, start_time=last, step_seconds=timestamp - last, initial=self.quotes)
        snapshot: MarketSnapshot = path[-1]
        self.quotes = dict(snapshot.quotes)
        values = compute_oracle_values(MarketSnapshot(timestamp, snapshot.quotes), self.perps, self.series, self.previous)
        unsigned = build_oracle_update(values, state)
        # chained to the last update this clock signed (it may not have been executed yet)
        settled = {i for i, _ in self.previous.settlement_prices} if self.previous is not None else set()
        unsigned = unsigned.model_copy(update={
            "previous_timestamp": last,
            "settlements": [s for s in unsigned.settlements if s.instrument not in settled],
        })
        self.previous = values
        return sign(unsigned, [self.key], self.genesis.signing_domain)
