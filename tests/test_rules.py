"""Test vectors for every rule of docs/state-model.md, in consensus-spec style.

Each valid vector is a `pre` state, a transaction, the recovered `signers` and the expected `post`
state written out by hand; each `test_invalid_*` is a `pre` state and a transaction that breaks one
check, with the reason a trader reads, and asserts the state is unchanged. Every valid vector also
checks value conservation (`compute_total_value`) against the deposits and withdrawals it made.

Signatures are not made here: the rules receive the recovered signer addresses, so the vectors pass
the addresses directly (small fake ones), and a wrong signer is simply another address. For the
L2-signed types the rules receive key ids instead: every account n of the pre state has registered
the key id `key_id(n)`, and `apply` stands in `key_id(n)` for the signer `addr(n)` (a stranger's
id is registered nowhere), so one vector names its signers the same way for either kind.
"""

from __future__ import annotations

import pytest
from eth_utils import to_checksum_address

from rollup.genesis import default_genesis
from rollup.rules import (
    InvalidTransaction,
    process_batch,
    process_deposit,
    process_transaction,
)
from rollup.state import (
    GLOBALS_KEY,
    Account,
    Position,
    State,
    compute_position_value,
    compute_total_value,
    get_equity,
    get_maintenance_margin,
    get_margin_requirement,
    get_pending_funding,
    instrument_key,
)
from verifier.encoding import is_l2_signed
from verifier.wire import (
    Deposit,
    InstrumentFunding,
    InstrumentPrice,
    Liquidate,
    OptionTrade,
    OracleUpdate,
    PerpTrade,
    RegisterKey,
    RiskArray,
    RiskParameters,
    SettleExpired,
    Transfer,
    Withdraw,
)

USD = 1_000_000
SIG = "0x" + "11" * 65
L2SIG = "0x" + "11" * 160


def addr(n: int) -> str:
    return to_checksum_address(f"0x{n:040x}")


def key_id(n: int) -> int:
    """The (fake) L2 key id account n registered in the pre states."""
    return 0xC0FFEE00 + n


ORACLE = addr(0xAA)
STRANGER = addr(0xBAD)
GENESIS = default_genesis(ORACLE, n_perps=3, n_series=4, risk=RiskParameters(n_scenarios=4, max_positions=3))
NOW = GENESIS.genesis_time
BTC_PERP, ETH_PERP, SOL_PERP = 0, 1, 2  # SOL-PERP has no oracle data in the pre state
BTC_CALL, ETH_CALL, BTC_PUT, ETH_PUT = 3, 4, 5, 6  # ETH_PUT has no oracle data in the pre state
EXPIRY = NOW + 7 * 86_400

ORACLE_DATA = {  # instrument: (mark, risk array of one long contract over 4 scenarios)
    BTC_PERP: (60 * USD, (-6 * USD, -3 * USD, 3 * USD, 6 * USD)),
    ETH_PERP: (30 * USD, (-3 * USD, -1_500_000, 1_500_000, 3 * USD)),
    BTC_CALL: (2 * USD, (-1_500_000, -900_000, 3_500_000, 8 * USD)),
    ETH_CALL: (1 * USD, (-700_000, -400_000, 1_700_000, 4 * USD)),
    BTC_PUT: (2 * USD, (8 * USD, 3_500_000, -900_000, -1_500_000)),
}


def make_pre(collateral: int = 1000 * USD, accounts: tuple[int, ...] = (1, 2, 3)) -> State:
    """Genesis, the oracle data above, and accounts 1..3 (address addr(i)) holding `collateral`."""
    state = State.from_genesis(GENESIS)
    for instrument_id, (mark, risk_array) in ORACLE_DATA.items():
        state.instruments[instrument_id].mark = mark
        state.instruments[instrument_id].risk_array = risk_array
    for account_id in accounts:
        state.accounts[account_id] = Account(addr(account_id), collateral, 0, {}, l2_key=key_id(account_id))
    state.globals.deposit_count = len(accounts)
    return state


def put(state: State, account_id: int, instrument_id: int, size: int, cost: int = 0, funding: int = 0) -> None:
    """Give an account a position directly (pre-state construction), keeping open interest."""
    state.accounts[account_id].positions[instrument_id] = Position(size, cost, funding)
    state.instruments[instrument_id].open_interest += max(size, 0)


def apply(pre: State, tx: object, signers: list[str | None]):
    state = pre.copy()
    if is_l2_signed(type(tx)):
        # the key id of the named signer's L2 key (see the module docstring)
        signers = [key_id(int(s, 16)) if isinstance(s, str) else s for s in signers]
    receipt = process_transaction(state, tx, signers)
    return state, receipt


def assert_valid(pre: State, tx: object, signers: list, post: State, inflow: int = 0, touched: set | None = None) -> None:
    state, receipt = apply(pre, tx, signers)
    assert receipt.status == "accepted", receipt.reason
    assert state == post
    # value conservation: only deposits and withdrawals change the total
    assert compute_total_value(state) == compute_total_value(pre) + inflow
    if touched is not None:
        assert state.touched == touched


def assert_invalid(pre: State, tx: object, signers: list, reason: str) -> None:
    state, receipt = apply(pre, tx, signers)
    assert receipt.status == "rejected"
    assert reason in receipt.reason, receipt.reason
    assert state == pre
    assert state.touched == set()


def perp_trade(maker=1, taker=2, market=BTC_PERP, size=3, price=61 * USD, fee=500_000, maker_nonce=0, taker_nonce=0):
    return PerpTrade(
        maker=maker, taker=taker, market=market, size=size, price=price, fee=fee,
        maker_nonce=maker_nonce, taker_nonce=taker_nonce, maker_signature=L2SIG, taker_signature=L2SIG,
    )


def option_trade(buyer=1, seller=2, series=BTC_CALL, quantity=2, premium=2_500_000, fee=100_000, buyer_nonce=0, seller_nonce=0):
    return OptionTrade(
        buyer=buyer, seller=seller, series=series, quantity=quantity, premium=premium, fee=fee,
        buyer_nonce=buyer_nonce, seller_nonce=seller_nonce, buyer_signature=L2SIG, seller_signature=L2SIG,
    )


def liquidate(liquidator=1, account=3, instrument=BTC_PERP, size=4, nonce=0):
    return Liquidate(liquidator=liquidator, account=account, instrument=instrument, size=size, nonce=nonce, signature=L2SIG)


def settle(sender=1, account=1, series=BTC_CALL, nonce=0):
    return SettleExpired(sender=sender, account=account, series=series, nonce=nonce, signature=L2SIG)


def oracle_update(timestamp=NOW + 60, marks=(), funding=(), risk_arrays=(), settlements=(), previous=NOW):
    return OracleUpdate(
        timestamp=timestamp,
        previous_timestamp=previous,
        marks=[InstrumentPrice(instrument=i, price=p) for i, p in marks],
        funding=[InstrumentFunding(market=m, index=x) for m, x in funding],
        risk_arrays=[RiskArray(instrument=i, values=list(v)) for i, v in risk_arrays],
        settlements=[InstrumentPrice(instrument=i, price=p) for i, p in settlements],
        signature=SIG,
    )


# --- State and valuation -------------------------------------------------------------------------


def test_state_copy_is_deep_and_equal():
    pre = make_pre()
    put(pre, 1, BTC_PERP, 2, 120 * USD)
    copy = pre.copy()
    assert copy == pre
    copy.accounts[1].collateral += 1
    copy.accounts[2].positions[BTC_PERP] = Position(1, 0, 0)
    copy.instruments[BTC_PERP].mark = 1
    copy.globals.fee_pool = 5
    assert pre.accounts[1].collateral == 1000 * USD
    assert BTC_PERP not in pre.accounts[2].positions
    assert pre.instruments[BTC_PERP].mark == 60 * USD
    assert pre.globals.fee_pool == 0


def test_touched_is_not_part_of_equality():
    pre = make_pre()
    other = pre.copy()
    other.touched.add(GLOBALS_KEY)
    assert other == pre


def test_from_genesis():
    state = State.from_genesis(GENESIS)
    assert state.accounts == {}
    assert sorted(state.instruments) == list(range(7))
    assert state.instruments[BTC_PERP].is_perp and not state.instruments[BTC_CALL].is_perp
    assert state.instruments[BTC_CALL].mark is None and state.instruments[BTC_CALL].settlement is None
    assert state.globals.oracle_time == NOW and state.globals.deposit_count == 0


def test_valuation_api():
    state = make_pre()
    state.instruments[BTC_PERP].funding_index = 1_000
    put(state, 1, BTC_PERP, 2, 110 * USD, funding=400)  # entry 55 USD, mark 60
    put(state, 1, BTC_CALL, -3)  # short 3 calls, mark 2
    perp_value = 2 * 60 * USD - 110 * USD - 2 * (1_000 - 400)
    assert compute_position_value(state.instruments[BTC_PERP], state.accounts[1].positions[BTC_PERP]) == perp_value
    assert compute_position_value(state.instruments[BTC_CALL], state.accounts[1].positions[BTC_CALL]) == -6 * USD
    assert get_equity(state, 1) == 1000 * USD + perp_value - 6 * USD
    assert get_pending_funding(state, 1) == 1_200
    # scenarios: 2 x perp + (-3) x call = (-12 + 4.5, -6 + 2.7, 6 - 10.5, 12 - 24) USD: worst -12
    assert get_margin_requirement(state, 1) == 12 * USD
    assert get_maintenance_margin(state, 1) == 6 * USD  # 5000 bps
    assert get_margin_requirement(state, 2) == 0  # flat


# --- Deposit -------------------------------------------------------------------------------------


def deposit(deposit_id=3, account=4, address=None, amount=100 * USD):
    return Deposit(deposit_id=deposit_id, account=account, address=address or addr(account), amount=amount)


def test_deposit_creates_account():
    pre = make_pre()
    post = pre.copy()
    post.accounts[4] = Account(addr(4), 100 * USD, 0, {})
    post.globals.deposit_count = 4
    assert_valid(pre, deposit(), [], post, inflow=100 * USD, touched={4, GLOBALS_KEY})


def test_deposit_credits_existing_account():
    pre = make_pre()
    post = pre.copy()
    post.accounts[2].collateral += 100 * USD
    post.globals.deposit_count = 4
    assert_valid(pre, deposit(account=2), [], post, inflow=100 * USD)


def test_invalid_deposit_out_of_order():
    assert_invalid(make_pre(), deposit(deposit_id=4), [], "deposit out of order: expected deposit id 3, got 4")


def test_invalid_deposit_replayed():
    assert_invalid(make_pre(), deposit(deposit_id=2), [], "deposit out of order")


def test_deposit_carries_no_signature():
    """The L1 queue entry authorises a deposit: there is no L2 signature to check (security review,
    finding 1: an L1 deposit without a signed L2 Deposit, e.g. from a contract wallet, blocked the
    queue for good)."""
    assert "signature" not in Deposit.model_fields
    with pytest.raises(ValueError, match="0 signatures"):
        process_transaction(make_pre(), deposit(), [addr(4)])


def test_invalid_deposit_address_mismatch():
    assert_invalid(make_pre(), deposit(account=2, address=addr(9)), [], "deposit address mismatch: account 2")


def test_invalid_deposit_beyond_the_accounts_tree():
    # the soundness review of circuit v3: no proof could include it, so the queue would block
    small = GENESIS.model_copy(update={"account_tree_depth": 1})
    pre = make_pre()
    pre.genesis = small
    assert_invalid(pre, deposit(account=4), [], "account 4 is beyond the accounts tree (4 accounts)")
    assert apply(pre, deposit(account=3), [])[1].status == "accepted"


def test_invalid_deposit_zero_amount():
    tx = Deposit.model_construct(type="deposit", deposit_id=3, account=4, address=addr(4), amount=0)
    assert_invalid(make_pre(), tx, [], "deposit amount must be positive")


# --- RegisterKey ----------------------------------------------------------------------------------

KEY_ID = (1 << 247) + 0xBEEF


def register(account=1, address=None, key_id=KEY_ID, nonce=0):
    return RegisterKey(account=account, address=address or addr(account), key_id=key_id, nonce=nonce, signature=SIG)


def test_register_key():
    pre = make_pre()
    post = pre.copy()
    post.accounts[1].l2_key = KEY_ID
    post.accounts[1].nonce = 1
    assert_valid(pre, register(), [addr(1)], post, touched={1})


def test_register_key_again_rotates_it():
    pre = make_pre()
    pre.accounts[1].l2_key = KEY_ID
    post = pre.copy()
    post.accounts[1].l2_key = 7
    post.accounts[1].nonce = 1
    assert_valid(pre, register(key_id=7), [addr(1)], post, touched={1})


def test_invalid_register_key_unknown_account():
    assert_invalid(make_pre(), register(account=9), [addr(9)], "unknown account 9")


def test_invalid_register_key_wrong_signer():
    # an L2 key is bound by the account's Ethereum address only
    assert_invalid(make_pre(), register(), [addr(2)], "wrong signer for account 1")


def test_invalid_register_key_names_another_address():
    assert_invalid(make_pre(), register(address=addr(2)), [addr(2)], f"account 1 belongs to {addr(1)}, the registration names {addr(2)}")


def test_invalid_register_key_wrong_nonce():
    assert_invalid(make_pre(), register(nonce=1), [addr(1)], "wrong nonce for account 1: expected 0, got 1")


def test_invalid_register_key_id_zero():
    tx = RegisterKey.model_construct(type="register_key", account=1, address=addr(1), key_id=0, nonce=0, signature=SIG)
    assert_invalid(make_pre(), tx, [addr(1)], "an L2 key id is never 0")


# --- Withdraw ------------------------------------------------------------------------------------


def withdraw(account=1, amount=100 * USD, nonce=0):
    return Withdraw(account=account, amount=amount, nonce=nonce, signature=SIG)


def test_withdraw():
    pre = make_pre()
    post = pre.copy()
    post.accounts[1].collateral = 900 * USD
    post.accounts[1].nonce = 1
    assert_valid(pre, withdraw(), [addr(1)], post, inflow=-100 * USD, touched={1})


def test_withdraw_with_positions_down_to_initial_margin():
    pre = make_pre(collateral=100 * USD)
    put(pre, 1, BTC_PERP, 10, 600 * USD)  # requirement 60 USD, value 0: may withdraw 40 USD
    post = pre.copy()
    post.accounts[1].collateral = 60 * USD
    post.accounts[1].nonce = 1
    assert_valid(pre, withdraw(amount=40 * USD), [addr(1)], post, inflow=-40 * USD)


def test_invalid_withdraw_unknown_account():
    assert_invalid(make_pre(), withdraw(account=9), [addr(9)], "unknown account 9")


def test_invalid_withdraw_wrong_signer():
    assert_invalid(make_pre(), withdraw(), [addr(2)], "wrong signer for account 1")


def test_invalid_withdraw_wrong_nonce():
    assert_invalid(make_pre(), withdraw(nonce=1), [addr(1)], "wrong nonce for account 1: expected 0, got 1")


def test_invalid_withdraw_zero_amount():
    tx = Withdraw.model_construct(type="withdraw", account=1, amount=0, nonce=0, signature=SIG)
    assert_invalid(make_pre(), tx, [addr(1)], "withdrawal amount must be positive")


def test_invalid_withdraw_insufficient_collateral():
    assert_invalid(
        make_pre(), withdraw(amount=1000 * USD + 1), [addr(1)],
        "insufficient collateral: withdrawing 1000.000001 USD from account 1 holding 1000.00 USD",
    )


def test_invalid_withdraw_insufficient_margin():
    pre = make_pre(collateral=100 * USD)
    put(pre, 1, BTC_PERP, 10, 600 * USD)
    assert_invalid(
        pre, withdraw(amount=40 * USD + 1), [addr(1)],
        "insufficient margin: account 1 equity 59.999999 USD < initial margin 60.00 USD",
    )


def test_invalid_withdraw_unrealised_profit():
    pre = make_pre(collateral=10 * USD)
    put(pre, 1, BTC_PERP, 1, 10 * USD)  # 50 USD of unrealised profit is not collateral
    assert_invalid(pre, withdraw(amount=11 * USD), [addr(1)], "insufficient collateral")


# --- Transfer ------------------------------------------------------------------------------------


def transfer(sender=1, recipient=2, amount=100 * USD, nonce=0):
    return Transfer(sender=sender, recipient=recipient, amount=amount, nonce=nonce, signature=L2SIG)


def test_transfer():
    pre = make_pre()
    post = pre.copy()
    post.accounts[1].collateral = 900 * USD
    post.accounts[1].nonce = 1
    post.accounts[2].collateral = 1100 * USD
    assert_valid(pre, transfer(), [addr(1)], post, touched={1, 2})


def test_invalid_transfer_unknown_sender():
    assert_invalid(make_pre(), transfer(sender=9), [addr(9)], "unknown account 9")


def test_invalid_transfer_unknown_recipient():
    assert_invalid(make_pre(), transfer(recipient=9), [addr(1)], "unknown account 9")


def test_invalid_transfer_to_self():
    assert_invalid(make_pre(), transfer(recipient=1), [addr(1)], "self-transfer")


def test_invalid_transfer_wrong_signer():
    assert_invalid(make_pre(), transfer(), [addr(2)], "wrong L2 key for account 1")


def test_invalid_transfer_without_l2_key():
    pre = make_pre()
    pre.accounts[1].l2_key = 0  # never registered: no L2 signature can be its
    assert_invalid(pre, transfer(), [0], "account 1 has no L2 key")


def test_invalid_perp_trade_signed_by_an_address():
    # an L2-signed type takes key ids: an Ethereum signer's address is no key of the account's
    state = make_pre()
    receipt = process_transaction(state, perp_trade(), [addr(1), addr(2)])
    assert receipt.status == "rejected" and "wrong L2 key for account 1" in receipt.reason


def test_invalid_perp_trade_after_key_rotation():
    pre = make_pre()
    pre.accounts[2].l2_key = key_id(22)  # the taker rotated its key: the old one signs nothing
    assert_invalid(pre, perp_trade(), [addr(1), addr(2)], "wrong L2 key for account 2")


def test_invalid_transfer_wrong_nonce():
    assert_invalid(make_pre(), transfer(nonce=5), [addr(1)], "wrong nonce for account 1")


def test_invalid_transfer_zero_amount():
    tx = Transfer.model_construct(type="transfer", sender=1, recipient=2, amount=0, nonce=0, signature=L2SIG)
    assert_invalid(make_pre(), tx, [addr(1)], "transfer amount must be positive")


def test_invalid_transfer_insufficient_collateral():
    assert_invalid(make_pre(), transfer(amount=1001 * USD), [addr(1)], "insufficient collateral: transferring 1001.00 USD")


def test_invalid_transfer_insufficient_margin():
    pre = make_pre(collateral=100 * USD)
    put(pre, 1, BTC_PERP, 10, 600 * USD)
    assert_invalid(pre, transfer(amount=41 * USD), [addr(1)], "insufficient margin: account 1 equity 59.00 USD")


# --- PerpTrade -----------------------------------------------------------------------------------


def test_perp_trade_opens_both_sides():
    pre = make_pre()
    post = pre.copy()
    post.accounts[2].collateral = 999_500_000  # taker pays the 0.50 USD fee
    post.accounts[2].positions = {BTC_PERP: Position(3, 183 * USD, 0)}
    post.accounts[2].nonce = 1
    post.accounts[1].positions = {BTC_PERP: Position(-3, -183 * USD, 0)}
    post.accounts[1].nonce = 1
    post.instruments[BTC_PERP].open_interest = 3
    post.globals.fee_pool = 500_000
    assert_valid(pre, perp_trade(), [addr(1), addr(2)], post, touched={1, 2, instrument_key(BTC_PERP), GLOBALS_KEY})


def test_perp_trade_negative_size_taker_sells():
    pre = make_pre()
    post = pre.copy()
    post.accounts[2].positions = {BTC_PERP: Position(-3, -180 * USD, 0)}
    post.accounts[2].nonce = 1
    post.accounts[1].positions = {BTC_PERP: Position(3, 180 * USD, 0)}
    post.accounts[1].nonce = 1
    post.instruments[BTC_PERP].open_interest = 3
    assert_valid(pre, perp_trade(size=-3, price=60 * USD, fee=0), [addr(1), addr(2)], post)


def test_perp_trade_settles_funding_lazily():
    pre = make_pre()
    pre.instruments[BTC_PERP].funding_index = 1_000
    put(pre, 1, BTC_PERP, 2, 120 * USD, funding=400)
    put(pre, 2, BTC_PERP, -2, -120 * USD, funding=400)
    post = pre.copy()
    # account 1 (long 2) pays 2 x (1000 - 400) of funding, account 2 (short) receives it
    post.accounts[1].collateral = 1000 * USD - 1_200
    post.accounts[1].positions = {BTC_PERP: Position(3, 180 * USD, 1_000)}
    post.accounts[1].nonce = 1
    post.accounts[2].collateral = 1000 * USD + 1_200
    post.accounts[2].positions = {BTC_PERP: Position(-3, -180 * USD, 1_000)}
    post.accounts[2].nonce = 1
    post.instruments[BTC_PERP].open_interest = 3
    tx = perp_trade(maker=2, taker=1, size=1, price=60 * USD, fee=0)
    assert_valid(pre, tx, [addr(2), addr(1)], post)


def test_perp_trade_realises_on_close():
    pre = make_pre()
    put(pre, 1, BTC_PERP, 2, 120 * USD)
    put(pre, 2, BTC_PERP, -2, -120 * USD)
    post = pre.copy()
    # taker 2 buys back its short at 65 (loses 10 USD), maker 1 sells its long at 65 (gains 10)
    post.accounts[2].collateral = 990 * USD
    post.accounts[2].positions = {}
    post.accounts[2].nonce = 1
    post.accounts[1].collateral = 1010 * USD
    post.accounts[1].positions = {}
    post.accounts[1].nonce = 1
    post.instruments[BTC_PERP].open_interest = 0
    assert_valid(pre, perp_trade(maker=1, taker=2, size=2, price=65 * USD, fee=0), [addr(1), addr(2)], post)


def test_perp_trade_crossing_zero_keeps_cost_basis():
    pre = make_pre()
    put(pre, 1, BTC_PERP, 2, 120 * USD)
    post = pre.copy()
    post.accounts[1].positions = {BTC_PERP: Position(-1, 120 * USD - 195 * USD, 0)}
    post.accounts[1].nonce = 1
    post.accounts[2].positions = {BTC_PERP: Position(3, 195 * USD, 0)}
    post.accounts[2].nonce = 1
    post.instruments[BTC_PERP].open_interest = 3  # 2 (account 1) -> 3 (account 2)
    assert_valid(pre, perp_trade(maker=1, taker=2, size=3, price=65 * USD, fee=0), [addr(1), addr(2)], post)


def test_perp_trade_reducing_needs_no_margin():
    pre = make_pre()
    pre.accounts[3].collateral = 1 * USD
    put(pre, 3, BTC_PERP, 10, 700 * USD)  # value 600 - 700: equity -99 USD, far below margin
    put(pre, 2, BTC_PERP, -10, -700 * USD)
    post = pre.copy()
    post.accounts[3].positions = {BTC_PERP: Position(5, 400 * USD, 0)}
    post.accounts[3].nonce = 1
    post.accounts[2].positions = {BTC_PERP: Position(-5, -400 * USD, 0)}
    post.accounts[2].nonce = 1
    post.instruments[BTC_PERP].open_interest = 5
    tx = perp_trade(maker=2, taker=3, size=-5, price=60 * USD, fee=0)
    assert_valid(pre, tx, [addr(2), addr(3)], post)


def test_invalid_perp_trade_unknown_market():
    assert_invalid(make_pre(), perp_trade(market=77), [addr(1), addr(2)], "unknown instrument 77")


def test_invalid_perp_trade_on_option_series():
    assert_invalid(make_pre(), perp_trade(market=BTC_CALL), [addr(1), addr(2)], "instrument 3 is an option series, not a perpetual market")


def test_invalid_perp_trade_no_oracle_mark():
    assert_invalid(make_pre(), perp_trade(market=SOL_PERP), [addr(1), addr(2)], "instrument 2 has no oracle mark")


def test_invalid_perp_trade_self_trade():
    assert_invalid(make_pre(), perp_trade(maker=1, taker=1), [addr(1), addr(1)], "self-trade")


def test_invalid_perp_trade_zero_size():
    assert_invalid(make_pre(), perp_trade(size=0), [addr(1), addr(2)], "zero size")


def test_invalid_perp_trade_unknown_maker():
    assert_invalid(make_pre(), perp_trade(maker=9), [addr(9), addr(2)], "unknown account 9")


def test_invalid_perp_trade_unknown_taker():
    assert_invalid(make_pre(), perp_trade(taker=9), [addr(1), addr(9)], "unknown account 9")


def test_invalid_perp_trade_wrong_maker_nonce():
    assert_invalid(make_pre(), perp_trade(maker_nonce=1), [addr(1), addr(2)], "wrong nonce for account 1")


def test_invalid_perp_trade_wrong_taker_nonce():
    assert_invalid(make_pre(), perp_trade(taker_nonce=3), [addr(1), addr(2)], "wrong nonce for account 2: expected 0, got 3")


def test_invalid_perp_trade_wrong_maker_signer():
    assert_invalid(make_pre(), perp_trade(), [STRANGER, addr(2)], "wrong L2 key for account 1")


def test_invalid_perp_trade_wrong_taker_signer():
    assert_invalid(make_pre(), perp_trade(), [addr(1), addr(1)], "wrong L2 key for account 2")


def test_invalid_perp_trade_insufficient_collateral_for_fee():
    pre = make_pre()
    pre.accounts[2].collateral = 400_000
    put(pre, 2, BTC_PERP, -3, -183 * USD)  # the trade closes it: no margin, but the fee is unpaid
    assert_invalid(pre, perp_trade(size=3, price=61 * USD), [addr(1), addr(2)], "insufficient collateral: account 2 would have -0.10 USD")


def test_invalid_perp_trade_insufficient_margin_taker():
    pre = make_pre()
    pre.accounts[2].collateral = 10 * USD
    tx = perp_trade(size=2, price=60 * USD, fee=0)  # requirement 12 USD
    assert_invalid(pre, tx, [addr(1), addr(2)], "insufficient margin: account 2 equity 10.00 USD < initial margin 12.00 USD")


def test_invalid_perp_trade_insufficient_margin_maker():
    pre = make_pre()
    pre.accounts[1].collateral = 10 * USD
    tx = perp_trade(size=2, price=60 * USD, fee=0)
    assert_invalid(pre, tx, [addr(1), addr(2)], "insufficient margin: account 1 equity 10.00 USD < initial margin 12.00 USD")


def test_invalid_perp_trade_max_positions():
    pre = make_pre()
    put(pre, 2, ETH_PERP, 1, 30 * USD)
    put(pre, 2, BTC_CALL, 1)
    put(pre, 2, ETH_CALL, 1)
    assert_invalid(pre, perp_trade(), [addr(1), addr(2)], "too many positions: account 2 would hold 4 > 3")


# --- OptionTrade ---------------------------------------------------------------------------------


def test_option_trade_opens_both_sides():
    pre = make_pre()
    post = pre.copy()
    post.accounts[1].collateral = 994_900_000  # 2 x 2.50 premium + 0.10 fee
    post.accounts[1].positions = {BTC_CALL: Position(2, 0, 0)}
    post.accounts[1].nonce = 1
    post.accounts[2].collateral = 1005 * USD
    post.accounts[2].positions = {BTC_CALL: Position(-2, 0, 0)}
    post.accounts[2].nonce = 1
    post.instruments[BTC_CALL].open_interest = 2
    post.globals.fee_pool = 100_000
    assert_valid(pre, option_trade(), [addr(1), addr(2)], post, touched={1, 2, instrument_key(BTC_CALL), GLOBALS_KEY})


def test_option_trade_closes_short():
    pre = make_pre()
    put(pre, 1, BTC_PUT, -2)
    put(pre, 2, BTC_PUT, 2)
    post = pre.copy()
    post.accounts[1].collateral = 1000 * USD - 3 * USD  # buys back 2 at 1.50
    post.accounts[1].positions = {}
    post.accounts[1].nonce = 1
    post.accounts[2].collateral = 1000 * USD + 3 * USD
    post.accounts[2].positions = {}
    post.accounts[2].nonce = 1
    post.instruments[BTC_PUT].open_interest = 0
    tx = option_trade(buyer=1, seller=2, series=BTC_PUT, quantity=2, premium=1_500_000, fee=0)
    assert_valid(pre, tx, [addr(1), addr(2)], post)


def test_invalid_option_trade_unknown_series():
    assert_invalid(make_pre(), option_trade(series=99), [addr(1), addr(2)], "unknown instrument 99")


def test_invalid_option_trade_on_perp():
    assert_invalid(make_pre(), option_trade(series=BTC_PERP), [addr(1), addr(2)], "instrument 0 is a perpetual market, not an option series")


def test_invalid_option_trade_expired_series():
    pre = make_pre()
    pre.globals.oracle_time = EXPIRY
    assert_invalid(pre, option_trade(), [addr(1), addr(2)], "series 3 has expired")


def test_invalid_option_trade_no_oracle_mark():
    assert_invalid(make_pre(), option_trade(series=ETH_PUT), [addr(1), addr(2)], "instrument 6 has no oracle mark")


def test_invalid_option_trade_self_trade():
    assert_invalid(make_pre(), option_trade(seller=1), [addr(1), addr(1)], "self-trade")


def test_invalid_option_trade_zero_quantity():
    tx = OptionTrade.model_construct(**{**option_trade().__dict__, "quantity": 0})
    assert_invalid(make_pre(), tx, [addr(1), addr(2)], "zero size")


def test_invalid_option_trade_unknown_buyer():
    assert_invalid(make_pre(), option_trade(buyer=9), [addr(9), addr(2)], "unknown account 9")


def test_invalid_option_trade_unknown_seller():
    assert_invalid(make_pre(), option_trade(seller=9), [addr(1), addr(9)], "unknown account 9")


def test_invalid_option_trade_wrong_buyer_nonce():
    assert_invalid(make_pre(), option_trade(buyer_nonce=2), [addr(1), addr(2)], "wrong nonce for account 1")


def test_invalid_option_trade_wrong_seller_nonce():
    assert_invalid(make_pre(), option_trade(seller_nonce=2), [addr(1), addr(2)], "wrong nonce for account 2")


def test_invalid_option_trade_wrong_buyer_signer():
    assert_invalid(make_pre(), option_trade(), [addr(2), addr(2)], "wrong L2 key for account 1")


def test_invalid_option_trade_wrong_seller_signer():
    assert_invalid(make_pre(), option_trade(), [addr(1), None], "wrong L2 key for account 2")


def test_invalid_option_trade_buyer_cannot_pay_premium():
    pre = make_pre()
    pre.accounts[1].collateral = 5 * USD  # premium 5 + fee 0.10
    assert_invalid(pre, option_trade(), [addr(1), addr(2)], "insufficient collateral: account 1 would have -0.10 USD")


def test_invalid_option_trade_insufficient_margin_seller():
    pre = make_pre()
    pre.accounts[2].collateral = 10 * USD  # short 2 calls: requirement 16, equity 10 + 5 - 4 = 11
    assert_invalid(pre, option_trade(), [addr(1), addr(2)], "insufficient margin: account 2 equity 11.00 USD < initial margin 16.00 USD")


def test_invalid_option_trade_max_positions():
    pre = make_pre()
    put(pre, 2, BTC_PERP, 1, 60 * USD)
    put(pre, 2, ETH_PERP, 1, 30 * USD)
    put(pre, 2, ETH_CALL, 1)
    assert_invalid(pre, option_trade(), [addr(1), addr(2)], "too many positions: account 2 would hold 4 > 3")


# --- Liquidate -----------------------------------------------------------------------------------


def liquidatable_pre(collateral: int) -> State:
    """Account 3 long 10 BTC-PERP bought at 65, mark 60: value -50 USD; requirement 60, maintenance 30."""
    pre = make_pre()
    pre.accounts[3].collateral = collateral
    put(pre, 3, BTC_PERP, 10, 650 * USD)
    put(pre, 2, BTC_PERP, -10, -650 * USD)
    return pre


def test_liquidate_partial_with_penalty():
    pre = liquidatable_pre(60 * USD)  # equity 10 < maintenance 30
    post = pre.copy()
    post.accounts[1].positions = {BTC_PERP: Position(4, 240 * USD, 0)}  # takes 4 at the mark
    post.accounts[1].nonce = 1
    post.accounts[3].positions = {BTC_PERP: Position(6, 410 * USD, 0)}
    post.accounts[3].collateral = 60 * USD - 2_400_000  # penalty 1% of 4 x 60
    post.globals.insurance_fund = 2_400_000
    assert_valid(pre, liquidate(), [addr(1)], post, touched={1, 3, instrument_key(BTC_PERP), GLOBALS_KEY})


def test_liquidate_whole_position_with_insurance_shortfall():
    pre = liquidatable_pre(10 * USD)  # equity -40
    post = pre.copy()
    post.accounts[1].positions = {BTC_PERP: Position(10, 600 * USD, 0)}
    post.accounts[1].nonce = 1
    # account 3 realises -50 and owes a 6 USD penalty: 10 - 50 - 6 = -46, floored at 0
    post.accounts[3].positions = {}
    post.accounts[3].collateral = 0
    post.globals.insurance_fund = 6 * USD - 46 * USD
    assert_valid(pre, liquidate(size=10), [addr(1)], post)


def test_liquidate_settles_funding_of_both_sides():
    pre = liquidatable_pre(60 * USD)
    pre.instruments[BTC_PERP].funding_index = 100_000  # account 3 owes 10 x 0.10 USD
    put(pre, 1, BTC_PERP, -1, -60 * USD, funding=50_000)  # the liquidator is short 1 and receives
    post = pre.copy()
    post.accounts[1].collateral = 1000 * USD + 50_000
    post.accounts[1].positions = {BTC_PERP: Position(3, 180 * USD, 100_000)}
    post.accounts[1].nonce = 1
    post.accounts[3].collateral = 60 * USD - 1 * USD - 2_400_000
    post.accounts[3].positions = {BTC_PERP: Position(6, 410 * USD, 100_000)}
    post.instruments[BTC_PERP].open_interest = 10 - 4 + 3
    post.globals.insurance_fund = 2_400_000
    assert_valid(pre, liquidate(size=4), [addr(1)], post)


def test_liquidate_short_option_pays_mark_to_liquidator():
    pre = make_pre()
    pre.accounts[3].collateral = 20 * USD
    put(pre, 3, BTC_CALL, -5)  # equity 20 - 10 = 10; requirement 40, maintenance 20
    put(pre, 2, BTC_CALL, 5)
    post = pre.copy()
    post.accounts[1].collateral = 1010 * USD  # takes over the short and its value, 5 x 2
    post.accounts[1].positions = {BTC_CALL: Position(-5, 0, 0)}
    post.accounts[1].nonce = 1
    post.accounts[3].collateral = 10 * USD - 100_000  # pays 10 and a 0.10 penalty
    post.accounts[3].positions = {}
    post.globals.insurance_fund = 100_000
    assert_valid(pre, liquidate(instrument=BTC_CALL, size=-5), [addr(1)], post)


def test_invalid_liquidate_unknown_liquidator():
    assert_invalid(liquidatable_pre(60 * USD), liquidate(liquidator=9), [addr(9)], "unknown account 9")


def test_invalid_liquidate_unknown_account():
    assert_invalid(liquidatable_pre(60 * USD), liquidate(account=9), [addr(1)], "unknown account 9")


def test_invalid_liquidate_self():
    assert_invalid(liquidatable_pre(60 * USD), liquidate(liquidator=3), [addr(3)], "self-liquidation")


def test_invalid_liquidate_wrong_nonce():
    assert_invalid(liquidatable_pre(60 * USD), liquidate(nonce=1), [addr(1)], "wrong nonce for account 1")


def test_invalid_liquidate_wrong_signer():
    assert_invalid(liquidatable_pre(60 * USD), liquidate(), [addr(3)], "wrong L2 key for account 1")


def test_invalid_liquidate_unknown_instrument():
    assert_invalid(liquidatable_pre(60 * USD), liquidate(instrument=50), [addr(1)], "unknown instrument 50")


def test_invalid_liquidate_no_oracle_mark():
    assert_invalid(liquidatable_pre(60 * USD), liquidate(instrument=SOL_PERP), [addr(1)], "instrument 2 has no oracle mark")


def test_invalid_liquidate_expired_series():
    pre = make_pre()
    pre.accounts[3].collateral = 0
    put(pre, 3, BTC_CALL, -5)
    pre.globals.oracle_time = EXPIRY
    assert_invalid(pre, liquidate(instrument=BTC_CALL, size=-5), [addr(1)], "series 3 has expired: settle it")


def test_invalid_liquidate_zero_size():
    assert_invalid(liquidatable_pre(60 * USD), liquidate(size=0), [addr(1)], "zero size")


def test_invalid_liquidate_no_position():
    assert_invalid(liquidatable_pre(60 * USD), liquidate(instrument=ETH_PERP), [addr(1)], "account 3 holds no position in instrument 1")


def test_invalid_liquidate_wrong_sign():
    assert_invalid(liquidatable_pre(60 * USD), liquidate(size=-4), [addr(1)], "liquidation size -4 must have the sign of the position (10)")


def test_invalid_liquidate_crossing_zero():
    assert_invalid(liquidatable_pre(60 * USD), liquidate(size=11), [addr(1)], "liquidation size 11 must have the sign")


def test_invalid_liquidate_healthy_account():
    assert_invalid(
        liquidatable_pre(80 * USD), liquidate(), [addr(1)],
        "account 3 is not liquidatable: equity 30.00 USD >= maintenance margin 30.00 USD",
    )


def test_invalid_liquidate_liquidator_insufficient_margin():
    pre = liquidatable_pre(60 * USD)
    pre.accounts[1].collateral = 20 * USD  # taking 4 long needs 24 USD
    assert_invalid(pre, liquidate(), [addr(1)], "insufficient margin: account 1 equity 20.00 USD < initial margin 24.00 USD")


def test_invalid_liquidate_liquidator_insufficient_collateral():
    pre = make_pre()
    pre.accounts[3].collateral = 0
    put(pre, 3, BTC_CALL, 5)
    pre.instruments[BTC_CALL].risk_array = (-5 * USD, 0, 0, 0)  # long 5 calls: maintenance 12.50, equity 10
    pre.accounts[1].collateral = 9 * USD  # must pay 5 x 2 USD for the calls
    assert_invalid(pre, liquidate(instrument=BTC_CALL, size=5), [addr(1)], "insufficient collateral: account 1 would have -1.00 USD")


def test_invalid_liquidate_liquidator_max_positions():
    pre = liquidatable_pre(60 * USD)
    put(pre, 1, ETH_PERP, 1, 30 * USD)
    put(pre, 1, BTC_CALL, 1)
    put(pre, 1, ETH_CALL, 1)
    assert_invalid(pre, liquidate(), [addr(1)], "too many positions: account 1 would hold 4 > 3")


# --- SettleExpired -------------------------------------------------------------------------------


def settled_pre(settlement: int) -> State:
    pre = make_pre()
    put(pre, 1, BTC_CALL, 2)
    put(pre, 2, BTC_CALL, -2)
    pre.globals.oracle_time = EXPIRY
    pre.instruments[BTC_CALL].settlement = settlement
    return pre


def test_settle_long_in_the_money():
    pre = settled_pre(5 * USD)
    post = pre.copy()
    post.accounts[1].collateral = 1010 * USD
    post.accounts[1].positions = {}
    post.accounts[1].nonce = 1
    post.instruments[BTC_CALL].open_interest = 0
    assert_valid(pre, settle(), [addr(1)], post, touched={1, instrument_key(BTC_CALL)})


def test_settle_short_in_the_money_by_keeper():
    pre = settled_pre(5 * USD)
    post = pre.copy()
    post.accounts[2].collateral = 990 * USD
    post.accounts[2].positions = {}
    post.accounts[3].nonce = 1  # the keeper pays the nonce
    assert_valid(pre, settle(sender=3, account=2), [addr(3)], post, touched={2, 3, instrument_key(BTC_CALL)})


def test_settle_long_out_of_the_money():
    pre = settled_pre(0)
    post = pre.copy()
    post.accounts[1].positions = {}
    post.accounts[1].nonce = 1
    post.instruments[BTC_CALL].open_interest = 0
    assert_valid(pre, settle(), [addr(1)], post)


def test_settle_short_out_of_the_money():
    pre = settled_pre(0)
    post = pre.copy()
    post.accounts[2].positions = {}
    post.accounts[2].nonce = 1
    assert_valid(pre, settle(sender=2, account=2), [addr(2)], post)


def test_settle_long_put_in_the_money():
    pre = make_pre()
    put(pre, 1, BTC_PUT, 3)
    pre.globals.oracle_time = EXPIRY
    pre.instruments[BTC_PUT].settlement = 4 * USD
    post = pre.copy()
    post.accounts[1].collateral = 1012 * USD
    post.accounts[1].positions = {}
    post.accounts[1].nonce = 1
    post.instruments[BTC_PUT].open_interest = 0
    state, receipt = apply(pre, settle(series=BTC_PUT), [addr(1)])
    assert receipt.status == "accepted" and state == post


def test_settle_short_with_insurance_shortfall():
    pre = settled_pre(5 * USD)
    pre.accounts[2].collateral = 3 * USD  # owes 10 USD
    post = pre.copy()
    post.accounts[2].collateral = 0
    post.accounts[2].positions = {}
    post.accounts[2].nonce = 1
    post.globals.insurance_fund = -7 * USD
    assert_valid(pre, settle(sender=2, account=2), [addr(2)], post, touched={2, instrument_key(BTC_CALL), GLOBALS_KEY})


def test_invalid_settle_unknown_sender():
    assert_invalid(settled_pre(5 * USD), settle(sender=9), [addr(9)], "unknown account 9")


def test_invalid_settle_wrong_nonce():
    assert_invalid(settled_pre(5 * USD), settle(nonce=4), [addr(1)], "wrong nonce for account 1")


def test_invalid_settle_wrong_signer():
    assert_invalid(settled_pre(5 * USD), settle(), [addr(2)], "wrong L2 key for account 1")


def test_invalid_settle_unknown_account():
    assert_invalid(settled_pre(5 * USD), settle(account=9), [addr(1)], "unknown account 9")


def test_invalid_settle_unknown_series():
    assert_invalid(settled_pre(5 * USD), settle(series=99), [addr(1)], "unknown instrument 99")


def test_invalid_settle_perp():
    assert_invalid(settled_pre(5 * USD), settle(series=BTC_PERP), [addr(1)], "instrument 0 is a perpetual market: it never expires")


def test_invalid_settle_before_settlement_price():
    assert_invalid(settled_pre(5 * USD), settle(series=BTC_PUT), [addr(1)], "series 5 has no settlement price yet")


def test_invalid_settle_no_position():
    assert_invalid(settled_pre(5 * USD), settle(sender=3, account=3), [addr(3)], "account 3 holds no position in series 3")


def test_invalid_settle_twice():
    state = settled_pre(5 * USD)
    assert process_transaction(state, settle(), [key_id(1)]).status == "accepted"
    state.touched.clear()
    assert_invalid(state, settle(nonce=1), [addr(1)], "account 1 holds no position in series 3")


# --- OracleUpdate --------------------------------------------------------------------------------


def test_oracle_update_writes_everything():
    pre = make_pre()
    risk = (-15 * USD, -7 * USD, 7 * USD, 15 * USD)
    tx = oracle_update(marks=[(BTC_PERP, 61 * USD), (SOL_PERP, 150 * USD)], funding=[(BTC_PERP, -5_000)], risk_arrays=[(SOL_PERP, risk)])
    post = pre.copy()
    post.instruments[BTC_PERP].mark = 61 * USD
    post.instruments[BTC_PERP].funding_index = -5_000
    post.instruments[SOL_PERP].mark = 150 * USD
    post.instruments[SOL_PERP].risk_array = risk
    post.globals.oracle_time = NOW + 60
    assert_valid(pre, tx, [ORACLE], post, touched={instrument_key(BTC_PERP), instrument_key(SOL_PERP), GLOBALS_KEY})


def test_oracle_update_settles_expired_series():
    pre = make_pre()
    tx = oracle_update(timestamp=EXPIRY, marks=[(BTC_CALL, 5 * USD)], settlements=[(BTC_CALL, 5 * USD), (BTC_PUT, 0)])
    post = pre.copy()
    post.instruments[BTC_CALL].mark = 5 * USD
    post.instruments[BTC_CALL].settlement = 5 * USD
    post.instruments[BTC_PUT].settlement = 0
    post.globals.oracle_time = EXPIRY
    assert_valid(pre, tx, [ORACLE], post)


def test_invalid_oracle_update_wrong_signer():
    assert_invalid(make_pre(), oracle_update(), [addr(1)], "wrong oracle signer")


def test_invalid_oracle_update_timestamp_not_increasing():
    # an older update (its predecessor is before the last one applied) is out of sequence
    assert_invalid(make_pre(), oracle_update(timestamp=NOW, previous=NOW - 1), [ORACLE], f"oracle update out of sequence: it follows the update of {NOW - 1}")


def test_invalid_oracle_update_skipping_a_signed_update():
    """The sequencer cannot skip a signed update and apply a later one (security review,
    finding 6: it could choose the price path)."""
    first = oracle_update(timestamp=NOW + 60, marks=[(BTC_PERP, 61 * USD)])
    second = oracle_update(timestamp=NOW + 120, marks=[(BTC_PERP, 40 * USD)], previous=NOW + 60)
    assert_invalid(make_pre(), second, [ORACLE], f"oracle update out of sequence: it follows the update of {NOW + 60}, the last one applied is of {NOW}")
    pre = make_pre()
    assert process_transaction(pre, first, [ORACLE]).status == "accepted"
    assert process_transaction(pre, second, [ORACLE]).status == "accepted"


def test_invalid_oracle_update_unknown_instrument():
    assert_invalid(make_pre(), oracle_update(marks=[(BTC_PERP, 1), (42, 1)]), [ORACLE], "unknown instrument 42")


def test_invalid_oracle_update_unknown_risk_array_instrument():
    assert_invalid(make_pre(), oracle_update(risk_arrays=[(42, (1, 2, 3, 4))]), [ORACLE], "unknown instrument 42")


def test_invalid_oracle_update_funding_for_option():
    assert_invalid(make_pre(), oracle_update(funding=[(BTC_CALL, 10)]), [ORACLE], "funding for instrument 3, which is not a perpetual market")


def test_invalid_oracle_update_wrong_risk_array_length():
    assert_invalid(make_pre(), oracle_update(risk_arrays=[(BTC_PERP, (1, 2, 3))]), [ORACLE], "risk array of instrument 0 has 3 values, expected 4")


def test_invalid_oracle_update_settlement_for_perp():
    assert_invalid(make_pre(), oracle_update(timestamp=EXPIRY, settlements=[(BTC_PERP, 1)]), [ORACLE], "settlement for instrument 0, which is not an option")


def test_invalid_oracle_update_settlement_before_expiry():
    assert_invalid(make_pre(), oracle_update(timestamp=EXPIRY - 1, settlements=[(BTC_CALL, 1)]), [ORACLE], "settlement before expiry: series 3")


def test_invalid_oracle_update_double_settlement():
    pre = make_pre()
    pre.instruments[BTC_CALL].settlement = 5 * USD
    assert_invalid(pre, oracle_update(timestamp=EXPIRY, settlements=[(BTC_CALL, 6 * USD)]), [ORACLE], "double settlement: series 3")


# --- Transactions and batches --------------------------------------------------------------------


def test_process_rule_raises_invalid_transaction():
    with pytest.raises(InvalidTransaction, match="deposit out of order"):
        process_deposit(make_pre(), deposit(deposit_id=0), [])


def test_process_transaction_refuses_wrong_signer_count():
    with pytest.raises(ValueError, match="2 signatures"):
        process_transaction(make_pre(), perp_trade(), [addr(1)])


def test_batch_goes_on_after_a_rejection():
    pre = make_pre()
    txs = [deposit(), withdraw(nonce=7), perp_trade(size=1, price=60 * USD, fee=0), withdraw(nonce=1, amount=USD)]
    signers = [[], [addr(1)], [key_id(1), key_id(2)], [addr(1)]]
    hashes = [f"0x{i:064x}" for i in range(4)]
    state = pre.copy()
    receipts = process_batch(state, txs, signers, hashes)
    assert [r.status for r in receipts] == ["accepted", "rejected", "accepted", "accepted"]
    assert [r.index for r in receipts] == [0, 1, 2, 3]
    assert [r.tx_hash for r in receipts] == hashes
    assert [r.type for r in receipts] == ["deposit", "withdraw", "perp_trade", "withdraw"]
    assert receipts[1].reason == "wrong nonce for account 1: expected 0, got 7"
    assert receipts[0].reason is None
    assert state.accounts[1].nonce == 2 and state.accounts[1].collateral == 999 * USD
    assert state.touched == {1, 2, 4, instrument_key(BTC_PERP), GLOBALS_KEY}
    assert compute_total_value(state) == compute_total_value(pre) + 100 * USD - USD


def test_batch_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="1 transactions, 0 signer lists"):
        process_batch(make_pre(), [deposit()], [], [])


def test_process_transaction_refuses_non_transactions():
    with pytest.raises(TypeError, match="not a transaction"):
        process_transaction(make_pre(), object(), [])


# --- Default genesis -----------------------------------------------------------------------------


def test_default_genesis_instruments():
    genesis = default_genesis(ORACLE)
    names = [spec.name for spec in genesis.instruments]
    assert names[:2] == ["BTC-PERP", "ETH-PERP"]
    assert [spec.id for spec in genesis.instruments] == list(range(10))
    options = genesis.instruments[2:]
    assert {o.underlying for o in options} == {"BTC", "ETH"}
    assert {o.is_call for o in options} == {True, False}
    assert len({o.expiry for o in options}) == 2 and len({o.strike for o in options}) == 4
    btc_call = options[0]
    # 0.001 BTC per contract: a 60,000 USD strike is 60 USD per contract
    assert (btc_call.name, btc_call.contract_size, btc_call.strike) == ("BTC-7D-60000-C", 10, 60 * USD)
    assert btc_call.expiry == genesis.genesis_time + 7 * 86_400
    assert default_genesis(ORACLE) == genesis  # deterministic


def test_default_genesis_many_series_are_distinct():
    genesis = default_genesis(ORACLE, n_perps=4, n_series=48)
    assert len({spec.name for spec in genesis.instruments}) == 52


def test_invalid_default_genesis_too_many_perps():
    with pytest.raises(ValueError, match="n_perps must be between 0 and 4"):
        default_genesis(ORACLE, n_perps=5)
