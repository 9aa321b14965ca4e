"""Properties of the rules over random batches of valid and invalid transactions (hypothesis).

After every transaction of a random sequence (deposits, withdrawals, transfers, perp and option
trades, liquidations, settlements, oracle updates with moving marks, funding and settlements,
with wrong nonces, wrong signers and unknown accounts mixed in):

- value is conserved exactly: `compute_total_value` moves only by deposits and withdrawals;
- a rejected transaction leaves the state equal to before;
- each accepted signed transaction raises the nonce of each account that signed it by exactly one,
  and no other nonce moves;
- no collateral is negative, no position has size 0, no account holds more than max_positions;
- the sizes of every perp (and of every option series before settlement) sum to 0, and open
  interest equals the sum of long sizes.

ROLLUP_PROPERTY_EXAMPLES sets the number of examples (default 150).
"""

from __future__ import annotations

import os

from eth_utils import to_checksum_address
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rollup.genesis import default_genesis
from rollup.rules import process_transaction
from rollup.state import State, compute_net_size, compute_total_value, get_equity, get_maintenance_margin
from verifier.wire import (
    Deposit,
    InstrumentFunding,
    InstrumentPrice,
    Liquidate,
    OptionTrade,
    OracleUpdate,
    PerpTrade,
    RiskArray,
    RiskParameters,
    SettleExpired,
    Transfer,
    Withdraw,
)

EXAMPLES = int(os.environ.get("ROLLUP_PROPERTY_EXAMPLES", "150"))
USD = 1_000_000
SIG = "0x" + "22" * 65
L2SIG = "0x" + "22" * 160  # the L2-signed types: the rules get key ids (draw_l2_signer)


def addr(n: int) -> str:
    return to_checksum_address(f"0x{n:040x}")


ORACLE = addr(0xAA)
STRANGER = addr(0xBAD)
GENESIS = default_genesis(ORACLE, n_perps=2, n_series=4, risk=RiskParameters(n_scenarios=4, max_positions=3))
PERPS = [spec.id for spec in GENESIS.instruments if spec.kind == "perp"]
SERIES = [spec.id for spec in GENESIS.instruments if spec.kind == "option"]
EXPIRY = min(spec.expiry for spec in GENESIS.instruments if spec.kind == "option")
ACCOUNT_IDS = [1, 2, 3, 4, 5, 9]  # 9 has no deposit unless one creates it
BASE_MARKS = {0: 60 * USD, 1: 30 * USD, 2: 2 * USD, 3: 1 * USD, 4: 2 * USD, 5: 1 * USD}


def compute_risk_array(instrument_id: int, mark: int) -> list[int]:
    """A plausible 4-scenario risk array: perps +-10%/20% of the mark; calls and puts convex."""
    if instrument_id in PERPS:
        return [-mark // 5, -mark // 10, mark // 10, mark // 5]
    spot_move = BASE_MARKS[0] // 10 if instrument_id % 2 == 0 else BASE_MARKS[1] // 10
    is_call = GENESIS.instruments[instrument_id].is_call
    up, down = (spot_move, -mark) if is_call else (-mark, spot_move)
    return [max(down, -mark), max(down // 2, -mark), max(up // 2, -mark), max(up, -mark)]


def make_oracle_update(
    timestamp: int, marks: dict[int, int], funding: dict[int, int], settlements: dict[int, int], previous: int
) -> OracleUpdate:
    return OracleUpdate(
        timestamp=timestamp,
        previous_timestamp=previous,
        marks=[InstrumentPrice(instrument=i, price=p) for i, p in sorted(marks.items())],
        funding=[InstrumentFunding(market=m, index=x) for m, x in sorted(funding.items())],
        risk_arrays=[RiskArray(instrument=i, values=compute_risk_array(i, p)) for i, p in sorted(marks.items())],
        settlements=[InstrumentPrice(instrument=i, price=p) for i, p in sorted(settlements.items())],
        signature=SIG,
    )


def key_id(account_id: int) -> int:
    """The (fake) L2 key id account `account_id` registered."""
    return 0xC0DE0000 + account_id


def make_start_state() -> tuple[State, int]:
    """Accounts 1..5 funded by deposits and a first oracle update; returns (state, total deposits)."""
    state = State.from_genesis(GENESIS)
    total = 0
    for index, account_id in enumerate(ACCOUNT_IDS[:-1]):
        amount = (200 + 150 * index) * USD
        tx = Deposit(deposit_id=index, account=account_id, address=addr(account_id), amount=amount)
        assert process_transaction(state, tx, []).status == "accepted"
        state.accounts[account_id].l2_key = key_id(account_id)  # registered (directly: nonces stay 0)
        total += amount
    update = make_oracle_update(GENESIS.genesis_time + 1, BASE_MARKS, {}, {}, GENESIS.genesis_time)
    assert process_transaction(state, update, [ORACLE]).status == "accepted"
    state.touched.clear()
    return state, total


START_STATE, START_DEPOSITS = make_start_state()

# --- Drawing transactions against the current state ---------------------------------------------


def draw_account(data) -> int:
    return data.draw(st.sampled_from(ACCOUNT_IDS))


def draw_nonce(data, state: State, account_id: int) -> int:
    account = state.accounts.get(account_id)
    base = account.nonce if account else 0
    return max(0, base + data.draw(st.sampled_from([0, 0, 0, 0, 0, 1, -1])))


def draw_signer(data, state: State, account_id: int) -> str | None:
    account = state.accounts.get(account_id)
    correct = account.address if account else addr(account_id)
    return data.draw(st.sampled_from([correct] * 8 + [STRANGER, None]))


def draw_l2_signer(data, state: State, account_id: int) -> int | None:
    """The key id the signature pass gives: mostly the account's registered key, sometimes another
    key or an invalid signature (an account created during the run has no key: refused)."""
    account = state.accounts.get(account_id)
    correct = account.l2_key if account and account.l2_key else key_id(account_id)
    return data.draw(st.sampled_from([correct] * 8 + [key_id(0xBAD), None]))


def draw_price(data, state: State, instrument_id: int) -> int:
    mark = state.instruments[instrument_id].mark or BASE_MARKS[instrument_id]
    return max(1, mark + mark * data.draw(st.integers(-15, 15)) // 100)


def draw_deposit(data, state: State):
    account_id = draw_account(data)
    account = state.accounts.get(account_id)
    address = data.draw(st.sampled_from([account.address if account else addr(account_id), addr(account_id + 100)]))
    deposit_id = max(0, state.globals.deposit_count + data.draw(st.sampled_from([0, 0, 0, 1, -1])))
    tx = Deposit(deposit_id=deposit_id, account=account_id, address=address, amount=data.draw(st.integers(1, 500)) * USD)
    return tx, []  # authorised by its L1 queue entry: no signature


def draw_withdraw(data, state: State):
    account_id = draw_account(data)
    amount = data.draw(st.integers(1, 600)) * USD // 2
    return Withdraw(account=account_id, amount=amount, nonce=draw_nonce(data, state, account_id), signature=SIG), [
        draw_signer(data, state, account_id)
    ]


def draw_transfer(data, state: State):
    sender, recipient = draw_account(data), draw_account(data)
    amount = data.draw(st.integers(1, 600)) * USD // 2
    tx = Transfer(sender=sender, recipient=recipient, amount=amount, nonce=draw_nonce(data, state, sender), signature=L2SIG)
    return tx, [draw_l2_signer(data, state, sender)]


def draw_perp_trade(data, state: State):
    maker, taker = draw_account(data), draw_account(data)
    market = data.draw(st.sampled_from(PERPS + [SERIES[0]]))
    tx = PerpTrade(
        maker=maker, taker=taker, market=market,
        size=data.draw(st.integers(-40, 40)), price=draw_price(data, state, market),
        fee=data.draw(st.sampled_from([0, 10_000, 500_000])),
        maker_nonce=draw_nonce(data, state, maker), taker_nonce=draw_nonce(data, state, taker),
        maker_signature=L2SIG, taker_signature=L2SIG,
    )
    return tx, [draw_l2_signer(data, state, maker), draw_l2_signer(data, state, taker)]


def draw_option_trade(data, state: State):
    buyer, seller = draw_account(data), draw_account(data)
    series = data.draw(st.sampled_from(SERIES + [PERPS[0]]))
    tx = OptionTrade(
        buyer=buyer, seller=seller, series=series,
        quantity=data.draw(st.integers(1, 60)), premium=draw_price(data, state, series),
        fee=data.draw(st.sampled_from([0, 10_000])),
        buyer_nonce=draw_nonce(data, state, buyer), seller_nonce=draw_nonce(data, state, seller),
        buyer_signature=L2SIG, seller_signature=L2SIG,
    )
    return tx, [draw_l2_signer(data, state, buyer), draw_l2_signer(data, state, seller)]


def draw_holder(data, state: State, instruments: list[int]) -> int:
    """Mostly an account holding a position in one of `instruments` (if any), else any account."""
    holders = [i for i in ACCOUNT_IDS if i in state.accounts and any(k in state.accounts[i].positions for k in instruments)]
    if holders and data.draw(st.integers(0, 3)):
        return data.draw(st.sampled_from(holders))
    return draw_account(data)


def draw_liquidate(data, state: State):
    underwater = [i for i in ACCOUNT_IDS if i in state.accounts and state.accounts[i].positions
                  and get_equity(state, i) < get_maintenance_margin(state, i)]
    if underwater and data.draw(st.integers(0, 3)):
        # A plausible liquidation: another account takes (part of) an under-water position.
        account_id = data.draw(st.sampled_from(underwater))
        liquidator = data.draw(st.sampled_from([i for i in ACCOUNT_IDS if i != account_id]))
        instrument, position = data.draw(st.sampled_from(sorted(state.accounts[account_id].positions.items())))
        size = position.size // data.draw(st.sampled_from([1, 1, 2, 4])) or position.size
    else:
        liquidator, account_id = draw_account(data), draw_holder(data, state, PERPS + SERIES)
        account = state.accounts.get(account_id)
        held = sorted(account.positions.items()) if account else []
        if held and data.draw(st.booleans()):
            instrument, position = data.draw(st.sampled_from(held))
            size = position.size + data.draw(st.sampled_from([0, 1, -1]))  # sometimes too large or 0
        else:
            instrument = data.draw(st.sampled_from(PERPS + SERIES))
            size = data.draw(st.integers(-5, 5))
    tx = Liquidate(liquidator=liquidator, account=account_id, instrument=instrument, size=size,
                   nonce=draw_nonce(data, state, liquidator), signature=L2SIG)
    return tx, [draw_l2_signer(data, state, liquidator)]


def draw_settle(data, state: State):
    settled = [i for i in SERIES if state.instruments[i].settlement is not None]
    sender, account_id = draw_account(data), draw_holder(data, state, settled)
    held = sorted(set(settled) & set(state.accounts[account_id].positions)) if account_id in state.accounts else []
    series = data.draw(st.sampled_from(held)) if held and data.draw(st.integers(0, 3)) else data.draw(st.sampled_from(SERIES + [PERPS[1]]))
    tx = SettleExpired(sender=sender, account=account_id, series=series,
                       nonce=draw_nonce(data, state, sender), signature=L2SIG)
    return tx, [draw_l2_signer(data, state, sender)]


def draw_oracle_update(data, state: State):
    step = data.draw(st.sampled_from([0, 600, 3_600, 4 * 86_400, 8 * 86_400]))  # 0: not increasing
    timestamp = state.globals.oracle_time + step
    moved = data.draw(st.lists(st.sampled_from(PERPS + SERIES), max_size=3, unique=True))
    marks = {i: max(0 if i in SERIES else 1, (state.instruments[i].mark or BASE_MARKS[i]) * data.draw(st.integers(40, 170)) // 100) for i in moved}
    funding = {m: state.instruments[m].funding_index + data.draw(st.integers(-50_000, 50_000)) for m in PERPS if data.draw(st.booleans())}
    settlements = {}
    if timestamp >= EXPIRY:
        for series in SERIES:
            spec = GENESIS.instruments[series]
            if spec.expiry <= timestamp and state.instruments[series].settlement is None:
                settlements[series] = data.draw(st.sampled_from([0, 3 * USD, 10 * USD]))
    # step 0: an update older than the last one applied (it follows an earlier one)
    tx = make_oracle_update(timestamp, marks, funding, settlements, state.globals.oracle_time - (1 if step == 0 else 0))
    return tx, [data.draw(st.sampled_from([ORACLE] * 9 + [STRANGER]))]


def draw_crash(data, state: State):
    """A big move of every instrument at once: puts levered accounts under water."""
    factor = data.draw(st.sampled_from([50, 65, 140, 170]))
    marks = {i: max(1, (state.instruments[i].mark or BASE_MARKS[i]) * factor // 100) for i in PERPS + SERIES}
    return make_oracle_update(state.globals.oracle_time + 60, marks, {}, {}, state.globals.oracle_time), [ORACLE]


DRAWERS = [draw_crash, 
    draw_deposit, draw_withdraw, draw_transfer, draw_perp_trade, draw_perp_trade, draw_perp_trade,
    draw_option_trade, draw_option_trade, draw_liquidate, draw_liquidate, draw_settle, draw_oracle_update,
]

# --- The properties ------------------------------------------------------------------------------


def get_nonce_payers(tx) -> list[int]:
    """The accounts whose nonce an accepted transaction consumes."""
    if isinstance(tx, Withdraw):
        return [tx.account]
    if isinstance(tx, (Transfer, SettleExpired)):
        return [tx.sender]
    if isinstance(tx, PerpTrade):
        return [tx.maker, tx.taker]
    if isinstance(tx, OptionTrade):
        return [tx.buyer, tx.seller]
    if isinstance(tx, Liquidate):
        return [tx.liquidator]
    return []


def get_inflow(tx) -> int:
    if isinstance(tx, Deposit):
        return tx.amount
    if isinstance(tx, Withdraw):
        return -tx.amount
    return 0


def check_invariants(state: State, expected_total: int) -> None:
    assert compute_total_value(state) == expected_total
    for account in state.accounts.values():
        assert account.collateral >= 0
        assert len(account.positions) <= GENESIS.risk.max_positions
        assert all(position.size != 0 for position in account.positions.values())
    for instrument_id, instrument in state.instruments.items():
        longs = sum(a.positions[instrument_id].size for a in state.accounts.values()
                    if instrument_id in a.positions and a.positions[instrument_id].size > 0)
        assert instrument.open_interest == longs
        if instrument.is_perp or instrument.settlement is None:
            assert compute_net_size(state, instrument_id) == 0


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_batches_keep_the_invariants(data):
    state = START_STATE.copy()
    expected_total = START_DEPOSITS
    for _ in range(data.draw(st.integers(1, 80), label="length")):
        drawer = data.draw(st.sampled_from(DRAWERS))
        tx, signers = drawer(data, state)
        before = state.copy()
        receipt = process_transaction(state, tx, signers)
        event(f"{tx.type} {receipt.status}")  # pytest --hypothesis-show-statistics shows the mix
        if receipt.status == "rejected":
            assert receipt.reason
            assert state == before
        else:
            expected_total += get_inflow(tx)
            payers = get_nonce_payers(tx)
            for account_id, account in state.accounts.items():
                old = before.accounts.get(account_id)
                assert account.nonce == (old.nonce if old else 0) + payers.count(account_id)
        check_invariants(state, expected_total)
