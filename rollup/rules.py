"""The transaction rules: one `process_<type>` per transaction, as docs/state-model.md states them.

Each `process_*` first checks every validity rule (one per line, with what it verifies), computing
the new values in locals; only when all checks have passed does it assign them. A failed check
raises `InvalidTransaction` with a message a trader understands, and the state is unchanged.
`process_batch` runs a batch like consensus-specs' `process_block`: one `process_*` call per
transaction, in submission order, each giving a receipt.

Signatures are checked in a separate pass (parallel, and excluded from execution benchmarks,
`verifier.l2auth.check_signers`): it recovers the signer address of each Ethereum signature
(withdrawals, key registrations, oracle updates) from its EIP-712 digest, and verifies each L2
signature (trades, transfers, liquidations, settlements) over the transaction's record, yielding
its key's id. The rules receive them as `signers`, in the order of the transaction's signature
fields, and compare them with what the account holds: its address (a checksummed string) or its
registered L2 key id (an int; an account without one cannot sign with an L2 key).

Hot state: `fee_pool`, `insurance_fund` and `open_interest` are only ever added to (`+=`) and no
check reads them, so the parallel sequencer can merge them as commutative deltas.

Every accepted transaction adds the state-tree keys of the leaves it changed to `state.touched`
(an account's key is its id, `account_key(id) == id`; instruments and globals via
`instrument_key` and `GLOBALS_KEY`).
"""

from __future__ import annotations

from typing import Callable, Sequence

from rollup.state import (
    GLOBALS_KEY,
    Account,
    AccountId,
    Amount,
    Instrument,
    InstrumentId,
    Position,
    State,
    compute_equity,
    compute_maintenance,
    compute_requirement,
    instrument_key,
)
from rollup.units import BPS, format_usd
from verifier.wire import (
    ORDER_SLOTS,
    Deposit,
    Fill,
    Liquidate,
    OptionTrade,
    OracleUpdate,
    PerpTrade,
    Receipt,
    RegisterKey,
    SettleExpired,
    Transfer,
    Withdraw,
)

Signers = Sequence[str | int | None]  # addresses of Ethereum signatures, key ids of L2 ones


class InvalidTransaction(Exception):
    """A transaction that breaks a rule. It is rejected with this message and changes nothing."""


# --- Checks shared by several rules ---------------------------------------------------------------


def get_account(state: State, account_id: AccountId) -> Account:
    """The account with this id; an id no deposit has created is an error."""
    account = state.accounts.get(account_id)
    if account is None:
        raise InvalidTransaction(f"unknown account {account_id}: it has no deposit yet")
    return account


def get_instrument(state: State, instrument_id: InstrumentId) -> Instrument:
    instrument = state.instruments.get(instrument_id)
    if instrument is None:
        raise InvalidTransaction(f"unknown instrument {instrument_id}")
    return instrument


def check_nonce(account_id: AccountId, account: Account, nonce: int) -> None:
    """Replay protection: a signed transaction carries the account's next nonce."""
    if nonce != account.nonce:
        raise InvalidTransaction(f"wrong nonce for account {account_id}: expected {account.nonce}, got {nonce}")


def check_signer(account_id: AccountId, account: Account, signer: str | int | None) -> None:
    """The signature must come from the key the account is bound to."""
    if signer != account.address:
        raise InvalidTransaction(
            f"wrong signer for account {account_id}: signed by {signer}, account belongs to {account.address}"
        )


def check_l2_signer(account_id: AccountId, account: Account, key_id: str | int | None) -> None:
    """An L2 signature must come from the account's registered L2 key."""
    # a key is registered (RegisterKey) before the account signs with one
    if account.l2_key == 0:
        raise InvalidTransaction(f"account {account_id} has no L2 key: register one first (rollup key register)")
    if key_id != account.l2_key:
        shown = f"{key_id:#x}" if isinstance(key_id, int) else key_id
        raise InvalidTransaction(
            f"wrong L2 key for account {account_id}: signed with key id {shown}, the account's key id is {account.l2_key:#x}"
        )


def check_tradable(instrument_id: InstrumentId, instrument: Instrument) -> None:
    """Without a mark and a risk array nothing can be valued or margined."""
    if instrument.mark is None or instrument.risk_array is None:
        raise InvalidTransaction(f"instrument {instrument_id} has no oracle mark and risk array yet")


def check_initial_margin(
    state: State, account_id: AccountId, collateral: Amount, positions: dict[InstrumentId, Position]
) -> None:
    """After a risk-increasing change the account needs equity >= initial margin."""
    requirement = compute_requirement(state.instruments, positions)
    equity = compute_equity(state.instruments, collateral, positions)
    if equity < requirement:
        raise InvalidTransaction(
            f"insufficient margin: account {account_id} equity {format_usd(equity)} "
            f"< initial margin {format_usd(requirement)}"
        )


def compute_position_change(
    account: Account,
    instrument_id: InstrumentId,
    instrument: Instrument,
    delta: int,
    cost_delta: Amount,
    collateral_delta: Amount,
) -> tuple[Amount, dict[InstrumentId, Position], int, bool]:
    """The account's collateral and positions after `delta` contracts of one instrument, without
    changing the account: settles pending funding (perps), adds `cost_delta` to the cost and
    `collateral_delta` to the collateral, and realises the cost if the size returns to 0.

    Returns (collateral, positions, open-interest delta, whether |size| increased)."""
    old = account.positions.get(instrument_id)
    collateral = account.collateral + collateral_delta
    if old is None:
        old_size = 0
        cost = cost_delta
    else:
        old_size = old.size
        cost = old.cost + cost_delta
        if instrument.is_perp:
            collateral -= old_size * (instrument.funding_index - old.funding)  # lazy funding
    new_size = old_size + delta
    positions = dict(account.positions)
    if new_size == 0:
        collateral -= cost  # realise: the cost basis now holds the whole P&L
        del positions[instrument_id]
    else:
        positions[instrument_id] = Position(new_size, cost, instrument.funding_index if instrument.is_perp else 0)
    open_interest_delta = (new_size if new_size > 0 else 0) - (old_size if old_size > 0 else 0)
    return collateral, positions, open_interest_delta, abs(new_size) > abs(old_size)


def check_side(
    state: State,
    account_id: AccountId,
    collateral: Amount,
    positions: dict[InstrumentId, Position],
    is_risk_increasing: bool,
) -> None:
    """The checks every side of a trade passes after its change is computed."""
    # No account may end with negative collateral.
    if collateral < 0:
        raise InvalidTransaction(
            f"insufficient collateral: account {account_id} would have {format_usd(collateral)}"
        )
    # The leaf has a fixed shape: at most max_positions open positions.
    max_positions = state.genesis.risk.max_positions
    if len(positions) > max_positions:
        raise InvalidTransaction(f"too many positions: account {account_id} would hold {len(positions)} > {max_positions}")
    # Risk-increasing changes need initial margin; reducing risk is always allowed.
    if is_risk_increasing:
        check_initial_margin(state, account_id, collateral, positions)


def compute_covered_shortfall(collateral: Amount) -> tuple[Amount, Amount]:
    """A balance that would be negative is set to 0; the insurance fund pays the difference.
    Returns (collateral, shortfall)."""
    if collateral < 0:
        return 0, -collateral
    return collateral, 0


# --- The rules ------------------------------------------------------------------------------------


def process_deposit(state: State, tx: Deposit, signers: Signers) -> None:
    """No signature: the L1 queue entry authorises the deposit (the contract made it, from
    `address`, with the same account binding as below, so a queued deposit always passes)."""
    # Deposits consume the L1 queue strictly in order (also their replay protection).
    if tx.deposit_id != state.globals.deposit_count:
        raise InvalidTransaction(
            f"deposit out of order: expected deposit id {state.globals.deposit_count}, got {tx.deposit_id}"
        )
    # Accounts are leaves of the genesis' 4-ary accounts tree: an id beyond it could never be
    # proven (circuit v3), so a queued deposit to one would block the queue (the contracts'
    # `open_account` hands out ids below it).
    capacity = 4**state.genesis.account_tree_depth
    if tx.account >= capacity:
        raise InvalidTransaction(f"account {tx.account} is beyond the accounts tree ({capacity} accounts)")
    account = state.accounts.get(tx.account)
    # An existing account stays bound to its first address.
    if account is not None and account.address != tx.address:
        raise InvalidTransaction(
            f"deposit address mismatch: account {tx.account} belongs to {account.address}, not {tx.address}"
        )
    # Amounts are positive (also a wire bound).
    if tx.amount <= 0:
        raise InvalidTransaction("deposit amount must be positive")

    if account is None:
        state.accounts[tx.account] = Account(tx.address, tx.amount, 0, {})
    else:
        account.collateral += tx.amount
    state.globals.deposit_count += 1
    state.touched.add(tx.account)
    state.touched.add(GLOBALS_KEY)


def process_withdraw(state: State, tx: Withdraw, signers: Signers) -> None:
    account = get_account(state, tx.account)  # the account exists
    # Signed by the account's key.
    check_signer(tx.account, account, signers[0])
    # The account's next nonce.
    check_nonce(tx.account, account, tx.nonce)
    # Amounts are positive (also a wire bound).
    if tx.amount <= 0:
        raise InvalidTransaction("withdrawal amount must be positive")
    # Only collateral can leave, never unrealised profit.
    if tx.amount > account.collateral:
        raise InvalidTransaction(
            f"insufficient collateral: withdrawing {format_usd(tx.amount)} from account {tx.account} "
            f"holding {format_usd(account.collateral)}"
        )
    collateral = account.collateral - tx.amount
    # Removing collateral increases risk: initial margin must still hold.
    if account.positions:
        check_initial_margin(state, tx.account, collateral, account.positions)

    account.collateral = collateral
    account.nonce += 1
    state.touched.add(tx.account)


def process_transfer(state: State, tx: Transfer, signers: Signers) -> None:
    sender = get_account(state, tx.sender)  # the sender exists
    recipient = get_account(state, tx.recipient)  # the recipient exists (transfers create no account)
    # A transfer to oneself is a mistake, not a transaction.
    if tx.sender == tx.recipient:
        raise InvalidTransaction(f"self-transfer: sender and recipient are both account {tx.sender}")
    # Signed by the sender's key.
    check_l2_signer(tx.sender, sender, signers[0])
    # The sender's next nonce.
    check_nonce(tx.sender, sender, tx.nonce)
    # Amounts are positive (also a wire bound).
    if tx.amount <= 0:
        raise InvalidTransaction("transfer amount must be positive")
    # Only collateral can move, never unrealised profit.
    if tx.amount > sender.collateral:
        raise InvalidTransaction(
            f"insufficient collateral: transferring {format_usd(tx.amount)} from account {tx.sender} "
            f"holding {format_usd(sender.collateral)}"
        )
    collateral = sender.collateral - tx.amount
    # Removing collateral increases risk: initial margin must still hold.
    if sender.positions:
        check_initial_margin(state, tx.sender, collateral, sender.positions)

    sender.collateral = collateral
    sender.nonce += 1
    recipient.collateral += tx.amount
    state.touched.add(tx.sender)
    state.touched.add(tx.recipient)


def process_trade_sides(
    state: State,
    instrument_id: InstrumentId,
    instrument: Instrument,
    first: tuple[AccountId, Account, Amount],
    second: tuple[AccountId, Account, Amount],
    size: int,
    cost: Amount,
    fee: Amount,
    uses_nonces: bool = True,
) -> None:
    """Both sides of a trade, after the transaction's own checks: `first` gets `+size` at `+cost`,
    `second` gets `-size` at `-cost`, each with its collateral change; the fee goes to the pool;
    both nonces move (not for a fill: orders carry their own). Checks both sides first (in that
    order), then writes."""
    (first_id, first_account, first_cash), (second_id, second_account, second_cash) = first, second
    first_collateral, first_positions, first_oi, first_risk_up = compute_position_change(
        first_account, instrument_id, instrument, size, cost, first_cash
    )
    second_collateral, second_positions, second_oi, second_risk_up = compute_position_change(
        second_account, instrument_id, instrument, -size, -cost, second_cash
    )
    # Each side: collateral >= 0, position count, initial margin if its risk increased.
    check_side(state, first_id, first_collateral, first_positions, first_risk_up)
    check_side(state, second_id, second_collateral, second_positions, second_risk_up)

    first_account.collateral = first_collateral
    first_account.positions = first_positions
    second_account.collateral = second_collateral
    second_account.positions = second_positions
    if uses_nonces:
        first_account.nonce += 1
        second_account.nonce += 1
    instrument.open_interest += first_oi + second_oi
    state.globals.fee_pool += fee
    touched = state.touched
    touched.add(first_id)
    touched.add(second_id)
    touched.add(instrument_key(instrument_id))
    touched.add(GLOBALS_KEY)


def process_perp_trade(state: State, tx: PerpTrade, signers: Signers) -> None:
    market = get_instrument(state, tx.market)  # the market exists
    # Only perpetual markets trade with PerpTrade.
    if not market.is_perp:
        raise InvalidTransaction(f"instrument {tx.market} is an option series, not a perpetual market")
    # The market has an oracle mark and risk array.
    check_tradable(tx.market, market)
    # Two distinct accounts trade.
    if tx.maker == tx.taker:
        raise InvalidTransaction(f"self-trade: maker and taker are both account {tx.maker}")
    # A trade moves at least one contract.
    if tx.size == 0:
        raise InvalidTransaction("zero size: a trade must move at least one contract")
    maker = get_account(state, tx.maker)  # the maker exists
    taker = get_account(state, tx.taker)  # the taker exists
    # Both accounts' next nonces.
    check_nonce(tx.maker, maker, tx.maker_nonce)
    check_nonce(tx.taker, taker, tx.taker_nonce)
    # Both sides signed (signature fields in order: maker, taker).
    check_l2_signer(tx.maker, maker, signers[0])
    check_l2_signer(tx.taker, taker, signers[1])
    notional = tx.size * tx.price
    # Taker gets +size at cost +notional and pays the fee; maker gets -size at cost -notional.
    process_trade_sides(state, tx.market, market, (tx.taker, taker, -tx.fee), (tx.maker, maker, 0), tx.size, notional, tx.fee)


def process_option_trade(state: State, tx: OptionTrade, signers: Signers) -> None:
    series = get_instrument(state, tx.series)  # the series exists
    # Only option series trade with OptionTrade.
    if series.is_perp:
        raise InvalidTransaction(f"instrument {tx.series} is a perpetual market, not an option series")
    # Expired series only settle; they no longer trade.
    if state.globals.oracle_time >= series.spec.expiry:
        raise InvalidTransaction(f"series {tx.series} has expired: it can only be settled")
    # The series has an oracle mark and risk array.
    check_tradable(tx.series, series)
    # Two distinct accounts trade.
    if tx.buyer == tx.seller:
        raise InvalidTransaction(f"self-trade: buyer and seller are both account {tx.buyer}")
    # A trade moves at least one contract (also a wire bound).
    if tx.quantity <= 0:
        raise InvalidTransaction("zero size: a trade must move at least one contract")
    buyer = get_account(state, tx.buyer)  # the buyer exists
    seller = get_account(state, tx.seller)  # the seller exists
    # Both accounts' next nonces.
    check_nonce(tx.buyer, buyer, tx.buyer_nonce)
    check_nonce(tx.seller, seller, tx.seller_nonce)
    # Both sides signed (signature fields in order: buyer, seller).
    check_l2_signer(tx.buyer, buyer, signers[0])
    check_l2_signer(tx.seller, seller, signers[1])
    premium = tx.quantity * tx.premium
    # The buyer pays premium and fee and gets +quantity; the seller is paid and gets -quantity.
    process_trade_sides(
        state, tx.series, series, (tx.buyer, buyer, -premium - tx.fee), (tx.seller, seller, premium), tx.quantity, 0, tx.fee
    )


def get_order_filled(account_id: AccountId, account: Account, nonce: int) -> int:
    """Contracts already filled of the account's order with `nonce`: its slot (nonce %
    ORDER_SLOTS) holds them if it holds that order, none if it holds an earlier one (or nothing).
    A slot holding a later order means this one can never fill again (it was replaced)."""
    slot = nonce % ORDER_SLOTS
    held = account.orders.get(slot)
    if held is None or held[0] < nonce:
        return 0
    # an order whose slot a later order took can no longer fill
    if held[0] > nonce:
        raise InvalidTransaction(
            f"order {nonce} of account {account_id} can no longer fill: its slot {slot} holds the later order {held[0]}"
        )
    return held[1]


def compute_fill_flows(instrument: Instrument, size: int, price: int, fee: Amount) -> tuple[Amount, Amount, Amount]:
    """(taker's collateral change, maker's, the taker's cost delta) of a fill of `size` (the
    taker's signed size) at `price`: a perpetual moves cost, an option the premium in collateral."""
    notional = size * price
    if instrument.is_perp:
        # As a perpetual trade: the taker gets +size at cost +notional and pays the fee.
        return -fee, 0, notional
    # As an option trade: the buyer pays the premium (the taker's notional is signed).
    return -notional - fee, notional, 0


def process_fill(state: State, tx: Fill, signers: Signers) -> None:
    instrument = get_instrument(state, tx.instrument)  # the instrument exists
    # Expired series only settle; they no longer trade.
    if not instrument.is_perp and state.globals.oracle_time >= instrument.spec.expiry:
        raise InvalidTransaction(f"series {tx.instrument} has expired: it can only be settled")
    # The instrument has an oracle mark and risk array.
    check_tradable(tx.instrument, instrument)
    # Two distinct accounts trade.
    if tx.maker == tx.taker:
        raise InvalidTransaction(f"self-trade: maker and taker are both account {tx.maker}")
    # A fill moves at least one contract.
    if tx.size == 0:
        raise InvalidTransaction("zero size: a fill must move at least one contract")
    taker = get_account(state, tx.taker)  # the taker exists
    maker = get_account(state, tx.maker)  # the maker exists
    # Each side signed its order (signature fields in order: taker, maker).
    check_l2_signer(tx.taker, taker, signers[0])
    check_l2_signer(tx.maker, maker, signers[1])
    now = state.globals.oracle_time
    quantity = abs(tx.size)
    for side in ("taker", "maker"):
        expiry = getattr(tx, f"{side}_expiry")
        # An order never fills once the L2 clock (the oracle time) reaches its expiry.
        if expiry != 0 and now >= expiry:
            raise InvalidTransaction(f"the {side}'s order expired at {expiry} (oracle time {now})")
    buyer, seller = ("taker", "maker") if tx.size > 0 else ("maker", "taker")
    # The price is within both limits: at most the buyer's, at least the seller's.
    if tx.price > getattr(tx, f"{buyer}_limit"):
        raise InvalidTransaction(f"price {tx.price} is above the buyer's ({buyer}'s) limit {getattr(tx, f'{buyer}_limit')}")
    if tx.price < getattr(tx, f"{seller}_limit"):
        raise InvalidTransaction(f"price {tx.price} is below the seller's ({seller}'s) limit {getattr(tx, f'{seller}_limit')}")
    # The taker pays at most its order's fee per contract.
    if tx.fee > tx.taker_max_fee * quantity:
        raise InvalidTransaction(f"fee {tx.fee} is above the taker's cap of {tx.taker_max_fee} per contract x {quantity}")
    filled = {}
    for side, account_id, account in (("taker", tx.taker, taker), ("maker", tx.maker, maker)):
        nonce, size = getattr(tx, f"{side}_nonce"), getattr(tx, f"{side}_order_size")
        filled[side] = get_order_filled(account_id, account, nonce) + quantity
        # No order fills beyond its size.
        if filled[side] > size:
            raise InvalidTransaction(
                f"the {side}'s order {nonce} would fill {filled[side]} of its {size} contracts"
            )
    cash_taker, cash_maker, cost = compute_fill_flows(instrument, tx.size, tx.price, tx.fee)
    process_trade_sides(
        state, tx.instrument, instrument, (tx.taker, taker, cash_taker), (tx.maker, maker, cash_maker), tx.size, cost, tx.fee,
        uses_nonces=False,
    )
    taker.orders[tx.taker_nonce % ORDER_SLOTS] = (tx.taker_nonce, filled["taker"])
    maker.orders[tx.maker_nonce % ORDER_SLOTS] = (tx.maker_nonce, filled["maker"])


def process_liquidate(state: State, tx: Liquidate, signers: Signers) -> None:
    liquidator = get_account(state, tx.liquidator)  # the liquidator exists
    account = get_account(state, tx.account)  # the liquidated account exists
    # Nobody liquidates themself.
    if tx.liquidator == tx.account:
        raise InvalidTransaction(f"self-liquidation: liquidator and account are both {tx.account}")
    # The liquidator's next nonce and signature.
    check_nonce(tx.liquidator, liquidator, tx.nonce)
    check_l2_signer(tx.liquidator, liquidator, signers[0])
    instrument = get_instrument(state, tx.instrument)  # the instrument exists
    # The position moves at the oracle mark.
    check_tradable(tx.instrument, instrument)
    # Expired series are settled, not liquidated.
    if not instrument.is_perp and state.globals.oracle_time >= instrument.spec.expiry:
        raise InvalidTransaction(f"series {tx.instrument} has expired: settle it instead of liquidating")
    # At least one contract moves.
    if tx.size == 0:
        raise InvalidTransaction("zero size: a liquidation must move at least one contract")
    position = account.positions.get(tx.instrument)
    # The account holds a position in the instrument.
    if position is None:
        raise InvalidTransaction(f"account {tx.account} holds no position in instrument {tx.instrument}")
    # The liquidation takes part of the position, in its direction, without crossing zero.
    if (tx.size > 0) != (position.size > 0) or abs(tx.size) > abs(position.size):
        raise InvalidTransaction(
            f"liquidation size {tx.size} must have the sign of the position ({position.size}) "
            f"and not exceed it"
        )
    requirement = compute_requirement(state.instruments, account.positions)
    maintenance = compute_maintenance(requirement, state.genesis.risk.maintenance_bps)
    equity = compute_equity(state.instruments, account.collateral, account.positions)
    # Only an account below maintenance margin can be liquidated.
    if equity >= maintenance:
        raise InvalidTransaction(
            f"account {tx.account} is not liquidatable: equity {format_usd(equity)} "
            f">= maintenance margin {format_usd(maintenance)}"
        )
    mark = instrument.mark
    moved = tx.size * mark
    # Perps move their cost basis at the mark; options (cost 0) pay the mark value in collateral.
    cost_delta, collateral_delta = (moved, 0) if instrument.is_perp else (0, -moved)
    liq_collateral, liq_positions, liq_oi, liq_risk_up = compute_position_change(
        liquidator, tx.instrument, instrument, tx.size, cost_delta, collateral_delta
    )
    acc_collateral, acc_positions, acc_oi, _ = compute_position_change(
        account, tx.instrument, instrument, -tx.size, -cost_delta, -collateral_delta
    )
    penalty = abs(moved) * state.genesis.risk.liquidation_penalty_bps // BPS
    # The insurance fund covers what the account cannot pay (collateral floors at 0).
    acc_collateral, shortfall = compute_covered_shortfall(acc_collateral - penalty)
    # The liquidator: collateral >= 0, position count, initial margin if its risk increased.
    check_side(state, tx.liquidator, liq_collateral, liq_positions, liq_risk_up)

    liquidator.collateral = liq_collateral
    liquidator.positions = liq_positions
    liquidator.nonce += 1
    account.collateral = acc_collateral
    account.positions = acc_positions
    instrument.open_interest += liq_oi + acc_oi
    state.globals.insurance_fund += penalty - shortfall
    touched = state.touched
    touched.add(tx.liquidator)
    touched.add(tx.account)
    touched.add(instrument_key(tx.instrument))
    touched.add(GLOBALS_KEY)


def process_settle_expired(state: State, tx: SettleExpired, signers: Signers) -> None:
    sender = get_account(state, tx.sender)  # the sender (a keeper, or the holder) exists
    # The sender's next nonce and signature.
    check_nonce(tx.sender, sender, tx.nonce)
    check_l2_signer(tx.sender, sender, signers[0])
    account = get_account(state, tx.account)  # the settled account exists
    series = get_instrument(state, tx.series)  # the series exists
    # Only option series expire.
    if series.is_perp:
        raise InvalidTransaction(f"instrument {tx.series} is a perpetual market: it never expires")
    # The oracle has published the settlement value.
    if series.settlement is None:
        raise InvalidTransaction(f"series {tx.series} has no settlement price yet")
    position = account.positions.get(tx.series)
    # The account holds a position in the series.
    if position is None:
        raise InvalidTransaction(f"account {tx.account} holds no position in series {tx.series}")
    payoff = position.size * series.settlement
    # A short's payoff beyond its collateral is covered by the insurance fund.
    collateral, shortfall = compute_covered_shortfall(account.collateral + payoff)
    positions = dict(account.positions)
    del positions[tx.series]

    sender.nonce += 1
    account.collateral = collateral
    account.positions = positions
    series.open_interest += -position.size if position.size > 0 else 0
    touched = state.touched
    touched.add(tx.sender)
    touched.add(tx.account)
    touched.add(instrument_key(tx.series))
    if shortfall:
        state.globals.insurance_fund += -shortfall
        touched.add(GLOBALS_KEY)


def process_oracle_update(state: State, tx: OracleUpdate, signers: Signers) -> None:
    instruments = state.instruments
    # Signed by the oracle key fixed at genesis.
    if signers[0] != state.genesis.oracle_address:
        raise InvalidTransaction(
            f"wrong oracle signer: signed by {signers[0]}, the oracle is {state.genesis.oracle_address}"
        )
    # The update follows the last one applied: updates form a chain, none is skipped.
    if tx.previous_timestamp != state.globals.oracle_time:
        raise InvalidTransaction(
            f"oracle update out of sequence: it follows the update of {tx.previous_timestamp}, "
            f"the last one applied is of {state.globals.oracle_time}"
        )
    # Timestamps strictly increase (the oracle's replay protection).
    if tx.timestamp <= state.globals.oracle_time:
        raise InvalidTransaction(
            f"oracle timestamp not increasing: {tx.timestamp} <= last {state.globals.oracle_time}"
        )
    # Every listed instrument exists.
    for item_id in [m.instrument for m in tx.marks] + [r.instrument for r in tx.risk_arrays] + [
        s.instrument for s in tx.settlements
    ] + [f.market for f in tx.funding]:
        get_instrument(state, item_id)
    # Funding indices only for perpetual markets.
    for funding in tx.funding:
        if not instruments[funding.market].is_perp:
            raise InvalidTransaction(f"funding for instrument {funding.market}, which is not a perpetual market")
    # Risk arrays have one value per scenario of the grid.
    n_scenarios = state.genesis.risk.n_scenarios
    for risk_array in tx.risk_arrays:
        if len(risk_array.values) != n_scenarios:
            raise InvalidTransaction(
                f"risk array of instrument {risk_array.instrument} has {len(risk_array.values)} values, "
                f"expected {n_scenarios}"
            )
    # Settlements only for expired option series, and only once.
    for settlement in tx.settlements:
        series = instruments[settlement.instrument]
        if series.is_perp:
            raise InvalidTransaction(f"settlement for instrument {settlement.instrument}, which is not an option")
        if series.spec.expiry > tx.timestamp:
            raise InvalidTransaction(
                f"settlement before expiry: series {settlement.instrument} expires at {series.spec.expiry}, "
                f"update is at {tx.timestamp}"
            )
        if series.settlement is not None:
            raise InvalidTransaction(f"double settlement: series {settlement.instrument} is already settled")

    touched = state.touched
    for mark in tx.marks:
        instruments[mark.instrument].mark = mark.price
        touched.add(instrument_key(mark.instrument))
    for funding in tx.funding:
        instruments[funding.market].funding_index = funding.index
        touched.add(instrument_key(funding.market))
    for risk_array in tx.risk_arrays:
        instruments[risk_array.instrument].risk_array = tuple(risk_array.values)
        touched.add(instrument_key(risk_array.instrument))
    for settlement in tx.settlements:
        instruments[settlement.instrument].settlement = settlement.price
        touched.add(instrument_key(settlement.instrument))
    state.globals.oracle_time = tx.timestamp
    touched.add(GLOBALS_KEY)


def process_register_key(state: State, tx: RegisterKey, signers: Signers) -> None:
    account = get_account(state, tx.account)  # the account exists (its first deposit bound its address)
    # It names the account's address (what the contract compares the recovered signer with).
    if tx.address != account.address:
        raise InvalidTransaction(f"account {tx.account} belongs to {account.address}, the registration names {tx.address}")
    # Signed by the account's Ethereum address: the one transaction it signs on L2.
    check_signer(tx.account, account, signers[0])
    # The account's next nonce.
    check_nonce(tx.account, account, tx.nonce)
    # A key id is never 0, which means "no key" (also a wire bound).
    if tx.key_id == 0:
        raise InvalidTransaction("an L2 key id is never 0")

    account.l2_key = tx.key_id
    account.nonce += 1
    state.touched.add(tx.account)


# --- Transactions and batches ---------------------------------------------------------------------

PROCESSORS: dict[type, Callable[[State, object, Signers], None]] = {
    Deposit: process_deposit,
    Withdraw: process_withdraw,
    Transfer: process_transfer,
    PerpTrade: process_perp_trade,
    OptionTrade: process_option_trade,
    Liquidate: process_liquidate,
    SettleExpired: process_settle_expired,
    RegisterKey: process_register_key,
    OracleUpdate: process_oracle_update,
    Fill: process_fill,
}

# Number of signatures (signers: recovered addresses or verified L2 key ids) each transaction type carries.
SIGNATURE_COUNTS: dict[type, int] = {
    Deposit: 0,  # authorised by its L1 queue entry
    Withdraw: 1,
    Transfer: 1,
    PerpTrade: 2,
    OptionTrade: 2,
    Liquidate: 1,
    SettleExpired: 1,
    RegisterKey: 1,  # the account's Ethereum address
    OracleUpdate: 1,
    Fill: 2,  # the taker's and the maker's L2 keys, each over its order
}

ZERO_HASH = "0x" + "00" * 32


def process_transaction(
    state: State, tx: object, signers: Signers, index: int = 0, tx_hash: str = ZERO_HASH
) -> Receipt:
    """Apply one transaction; an invalid one is rejected with its reason and changes nothing."""
    processor = PROCESSORS.get(type(tx))
    # Only the transaction types of verifier.wire exist (a caller bug otherwise).
    if processor is None:
        raise TypeError(f"not a transaction: {type(tx).__name__}")
    # One signer per signature field (a caller bug otherwise).
    if len(signers) != SIGNATURE_COUNTS[type(tx)]:
        raise ValueError(f"{type(tx).__name__} has {SIGNATURE_COUNTS[type(tx)]} signatures, got {len(signers)} signers")
    try:
        processor(state, tx, signers)
    except InvalidTransaction as exc:
        return Receipt(index=index, type=tx.type, tx_hash=tx_hash, status="rejected", reason=str(exc))
    return Receipt(index=index, type=tx.type, tx_hash=tx_hash, status="accepted")


def process_batch(
    state: State, transactions: Sequence[object], signers_per_tx: Sequence[Signers], tx_hashes: Sequence[str]
) -> list[Receipt]:
    """Apply a batch in submission order: one receipt per transaction, accepted or rejected."""
    # One signer list and one hash per transaction (a caller bug otherwise).
    if not len(transactions) == len(signers_per_tx) == len(tx_hashes):
        raise ValueError(
            f"{len(transactions)} transactions, {len(signers_per_tx)} signer lists, {len(tx_hashes)} hashes"
        )
    return [
        process_transaction(state, tx, signers, index, tx_hash)
        for index, (tx, signers, tx_hash) in enumerate(zip(transactions, signers_per_tx, tx_hashes))
    ]
