"""Read-only views of the node's state the API serves: an account (collateral, positions, margin,
Greeks) and the oracle's marks. Run on the node's thread (service/batcher.py: `NodeWorker`), so
they never see a batch half applied.

Greeks are `rollup.risk.compute_portfolio_greeks`, as `rollup risk` computes them: spot per
underlying from its perpetual's mark (the state keeps integer marks, not the oracle's floats), the
volatility and rate are the caller's.
"""

from __future__ import annotations

from typing import Any

from rollup.margin import RiskArrayError
from rollup.risk import MarketSnapshot, RiskInputError, UnderlyingQuote, compute_portfolio_greeks
from rollup.state import State, get_equity, get_maintenance_margin, get_margin_requirement
from rollup.units import USD, get_contract_units


class AccountViewError(LookupError):
    """The account does not exist."""


def get_market_snapshot(state: State, vol: float, rate: float) -> MarketSnapshot:
    quotes = {}
    for inst in state.instruments.values():
        if inst.spec.kind == "perp" and inst.mark:
            spot = inst.mark / USD / get_contract_units(inst.spec.contract_size)
            quotes[inst.spec.underlying] = UnderlyingQuote(spot=spot, vol=vol, rate=rate)
    return MarketSnapshot(timestamp=state.globals.oracle_time, quotes=quotes)


def get_account_view(state: State, account: int, vol: float, rate: float) -> dict[str, Any]:
    """An account's collateral, positions, equity, initial and maintenance margin and Greeks."""
    acct = state.accounts.get(account)
    # an account exists once a deposit created it
    if acct is None:
        raise AccountViewError(f"account {account} does not exist (no deposit has created it)")
    positions = {i: p.size for i, p in acct.positions.items()}
    try:
        equity = get_equity(state, account)
        initial, maintenance = get_margin_requirement(state, account), get_maintenance_margin(state, account)
        margin_error = None
    except RiskArrayError as exc:  # a position the oracle has not priced yet
        equity = initial = maintenance = None
        margin_error = str(exc)
    try:
        greeks = compute_portfolio_greeks(positions, {i: state.instruments[i].spec for i in positions}, get_market_snapshot(state, vol, rate))
        greeks_json: dict[str, Any] | None = {"vol": vol, "rate": rate, **greeks.get_totals(), "by_underlying": greeks.get_by_underlying()}
        greeks_error = None
    except RiskInputError as exc:  # no mark for an underlying yet
        greeks_json, greeks_error = None, str(exc)
    return {
        "account": account,
        "address": acct.address,
        "collateral": acct.collateral,
        "nonce": acct.nonce,
        "equity": equity,
        "initial_margin": initial,
        "maintenance_margin": maintenance,
        "margin_error": margin_error,
        "positions": [
            {"instrument": i, "name": state.instruments[i].spec.name, "size": p.size, "cost": p.cost, "funding": p.funding,
             "mark": state.instruments[i].mark}
            for i, p in sorted(acct.positions.items())
        ],
        "greeks": greeks_json,
        "greeks_error": greeks_error,
    }
