"""The rollup's state: accounts, instruments and globals, and how it is valued.

Plain `__slots__` dataclasses (pydantic is for the wire only): the rules read and write them
millions of times. Integers only, in the units of `rollup/units.py` (micro-USD, micro-USD per
contract, whole contracts). The specification is docs/state-model.md.

`Position` is immutable: the rules never change one in place, they build a new positions dict with
new `Position` values and assign it once every check has passed. So a copy of the state may share
`Position` objects, and a rejected transaction cannot leave a half-changed position behind.

The state remembers which state-tree leaves it changed (`State.touched`, keys below) so the Merkle
tree can update only those; the caller clears it at the start of each batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from rollup.margin import compute_margin_requirement
from rollup.units import BPS
from verifier.encoding import GLOBALS_KEY, account_key, instrument_key  # noqa: F401 (re-exported)
from verifier.wire import Genesis, OptionSeriesSpec, PerpMarketSpec

AccountId = int
InstrumentId = int
Amount = int  # micro-USD (may be negative where a value, not a balance, is meant)
StateKey = int

# State-tree keys (`0 << 29 | account`, `1 << 29 | instrument`, `2 << 29` for the globals) are
# defined once, in verifier/encoding.py, and re-exported here for the rules.


# --- State ----------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Position:
    """One open position. `cost` is the sum of signed size x price of the perp trades that built
    it (always 0 for options: premiums are paid in collateral at trade time); `funding` is the
    market's cumulative funding index when funding was last settled (perps only, else 0)."""

    size: int  # signed whole contracts, never 0 (a position back at 0 is removed)
    cost: Amount
    funding: int


@dataclass(slots=True)
class Account:
    address: str  # checksummed Ethereum address, bound by the account's first deposit
    collateral: Amount  # >= 0
    nonce: int
    positions: dict[InstrumentId, Position] = field(default_factory=dict)
    l2_key: int = 0  # the registered L2 key's id (verifier/l2auth.py), 0 before a registration
    # order slot (nonce % ORDER_SLOTS) -> (order nonce, contracts filled) of the orders it filled
    orders: dict[int, tuple[int, int]] = field(default_factory=dict)

    def copy(self) -> "Account":
        # Positions and slot values are immutable: copying the dicts is a deep copy.
        return Account(self.address, self.collateral, self.nonce, dict(self.positions), self.l2_key, dict(self.orders))


@dataclass(slots=True)
class Instrument:
    spec: PerpMarketSpec | OptionSeriesSpec  # from genesis, never changes
    mark: int | None = None  # micro-USD per contract, None until the oracle's first mark
    funding_index: int = 0  # cumulative funding, micro-USD per contract (perps)
    risk_array: tuple[int, ...] | None = None  # P&L of one long contract per scenario
    open_interest: int = 0  # sum of long sizes (hot: only ever added to)
    settlement: int | None = None  # options: payoff per contract, set once after expiry
    is_perp: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.is_perp = self.spec.kind == "perp"

    def copy(self) -> "Instrument":
        return Instrument(
            self.spec, self.mark, self.funding_index, self.risk_array, self.open_interest, self.settlement
        )


@dataclass(slots=True)
class Globals:
    fee_pool: Amount = 0  # hot: only ever added to
    insurance_fund: Amount = 0  # hot: only ever added to; negative means bad debt
    deposit_count: int = 0  # index of the next L1 deposit-queue entry
    oracle_time: int = 0  # timestamp of the last oracle update (genesis time before any)

    def copy(self) -> "Globals":
        return Globals(self.fee_pool, self.insurance_fund, self.deposit_count, self.oracle_time)


@dataclass(slots=True)
class State:
    genesis: Genesis
    accounts: dict[AccountId, Account]
    instruments: dict[InstrumentId, Instrument]
    globals: Globals
    # Leaves changed since the caller last cleared it; not part of the state's value.
    touched: set[StateKey] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> "State":
        """The state before any transaction: no accounts, no oracle data, empty pools."""
        instruments = {spec.id: Instrument(spec) for spec in genesis.instruments}
        return cls(genesis, {}, instruments, Globals(oracle_time=genesis.genesis_time))

    def copy(self) -> "State":
        """A deep copy (specs, risk arrays and positions are immutable and shared)."""
        return State(
            self.genesis,
            {account_id: account.copy() for account_id, account in self.accounts.items()},
            {instrument_id: inst.copy() for instrument_id, inst in self.instruments.items()},
            self.globals.copy(),
            set(self.touched),
        )


# --- Valuation (docs/state-model.md, "Valuation and margin") -------------------------------------

def compute_position_value(instrument: Instrument, position: Position) -> Amount:
    """Mark-to-market value: `size x mark - cost - pending funding` (perps), `size x mark` (options)."""
    if instrument.is_perp:
        return position.size * (instrument.mark - instrument.funding_index + position.funding) - position.cost
    return position.size * instrument.mark


def compute_equity(
    instruments: Mapping[InstrumentId, Instrument], collateral: Amount, positions: Mapping[InstrumentId, Position]
) -> Amount:
    """Collateral plus the value of every position (pending funding included)."""
    equity = collateral
    for instrument_id, position in positions.items():
        instrument = instruments[instrument_id]
        if instrument.is_perp:
            equity += (
                position.size * (instrument.mark - instrument.funding_index + position.funding) - position.cost
            )
        else:
            equity += position.size * instrument.mark
    return equity


def compute_requirement(
    instruments: Mapping[InstrumentId, Instrument], positions: Mapping[InstrumentId, Position]
) -> Amount:
    """Initial margin: the worst loss over the oracle's scenarios (rollup.margin), 0 if flat."""
    if not positions:
        return 0
    sizes = {instrument_id: position.size for instrument_id, position in positions.items()}
    risk_arrays = {instrument_id: instruments[instrument_id].risk_array for instrument_id in positions}
    return compute_margin_requirement(sizes, risk_arrays)


def compute_maintenance(requirement: Amount, maintenance_bps: int) -> Amount:
    """Maintenance margin: a basis-point share of the initial requirement, rounded down."""
    return requirement * maintenance_bps // BPS


def get_equity(state: State, account_id: AccountId) -> Amount:
    account = state.accounts[account_id]
    return compute_equity(state.instruments, account.collateral, account.positions)


def get_margin_requirement(state: State, account_id: AccountId) -> Amount:
    return compute_requirement(state.instruments, state.accounts[account_id].positions)


def get_maintenance_margin(state: State, account_id: AccountId) -> Amount:
    return compute_maintenance(get_margin_requirement(state, account_id), state.genesis.risk.maintenance_bps)


def get_pending_funding(state: State, account_id: AccountId) -> Amount:
    """Funding the account owes but has not yet paid: `size x (index - funding)` over its perps."""
    return compute_pending_funding(state.instruments, state.accounts[account_id].positions)


def compute_pending_funding(
    instruments: Mapping[InstrumentId, Instrument], positions: Mapping[InstrumentId, Position]
) -> Amount:
    owed = 0
    for instrument_id, position in positions.items():
        instrument = instruments[instrument_id]
        if instrument.is_perp:
            owed += position.size * (instrument.funding_index - position.funding)
    return owed


def compute_total_value(state: State) -> Amount:
    """The conserved quantity: equals total deposits minus total withdrawals in every state.

    `sum(collateral) + fee_pool + insurance_fund - sum(perp cost) - sum(pending funding)
    + sum(size x settlement)` over option positions whose settlement is set. The last term is the
    payoff still owed by (or to) holders of settled series who have not yet claimed it: it is 0
    until someone settles (option quantities sum to 0 per series) and keeps the sum exact after.
    """
    total = state.globals.fee_pool + state.globals.insurance_fund
    instruments = state.instruments
    for account in state.accounts.values():
        total += account.collateral
        for instrument_id, position in account.positions.items():
            instrument = instruments[instrument_id]
            if instrument.is_perp:
                total -= position.cost + position.size * (instrument.funding_index - position.funding)
            elif instrument.settlement is not None:
                total += position.size * instrument.settlement
    return total


def compute_net_size(state: State, instrument_id: InstrumentId) -> int:
    """Sum of every account's size in one instrument: 0 for every perp and for every option series
    before its first settlement (each trade has two sides); checked by the property tests."""
    return sum(
        account.positions[instrument_id].size
        for account in state.accounts.values()
        if instrument_id in account.positions
    )

