"""`rollup greeks`: price one European option and its Greeks with Black-Scholes."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.table import Table

from rollup.cli.common import UserError, console, print_json
from rollup.risk import compute_option_greeks


def _check_inputs(spot: float, strike: float, rate: float, vol: float, expiry: float, carry: float) -> None:
    for option, value in (("--spot", spot), ("--strike", strike), ("--rate", rate), ("--vol", vol),
                          ("--expiry", expiry), ("--carry", carry)):
        # Every input must be a real number.
        if not math.isfinite(value):
            raise UserError(f"{option} must be a finite number, got {value}")
    # The underlying's price is positive.
    if spot <= 0.0:
        raise UserError(f"--spot must be positive (price of one unit of the underlying), got {spot:g}")
    # A strike is a positive price.
    if strike <= 0.0:
        raise UserError(f"--strike must be positive, got {strike:g}")
    # Volatility is a standard deviation.
    if vol < 0.0:
        raise UserError(f"--vol must be >= 0 (annualised, e.g. 0.20 for 20%), got {vol:g}")
    # An option cannot expire in the past; 0 means expiring now (intrinsic value).
    if expiry < 0.0:
        raise UserError(f"--expiry must be >= 0 years to expiry, got {expiry:g}")


def _format(value: float) -> str:
    return f"{value:.6g}"


def greeks(
    spot: Annotated[float, typer.Option(help="Price of one unit of the underlying (USD).")],
    strike: Annotated[float, typer.Option(help="Strike price (USD per unit of the underlying).")],
    vol: Annotated[float, typer.Option(help="Annualised volatility as a fraction (0.20 = 20%).")],
    expiry: Annotated[float, typer.Option(help="Time to expiry in years (0.5 = six months).")],
    rate: Annotated[float, typer.Option(help="Continuously compounded risk-free rate (0.05 = 5%).")] = 0.0,
    carry: Annotated[float, typer.Option(help="Continuous dividend/carry yield of the underlying.")] = 0.0,
    call: Annotated[bool, typer.Option("--call/--put", help="Call (default) or put.")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Price a European option (Black-Scholes-Merton) and show delta, gamma, vega and theta."""
    _check_inputs(spot, strike, rate, vol, expiry, carry)
    result = compute_option_greeks(spot, strike, rate, vol, expiry, call, carry)
    values = {
        "price": float(result.price),
        "delta": float(result.delta),
        "gamma": float(result.gamma),
        "vega": float(result.vega),
        "vega_per_pct": float(result.vega_per_pct),
        "theta": float(result.theta),
        "theta_per_day": float(result.theta_per_day),
    }
    if json_output:
        print_json({
            "option": {"type": "call" if call else "put", "spot": spot, "strike": strike, "rate": rate,
                       "vol": vol, "expiry": expiry, "carry": carry},
            **values,
        })
        return
    title = (f"{'Call' if call else 'Put'} S={spot:g} K={strike:g} r={rate:g} vol={vol:g} "
             f"T={expiry:g}y" + (f" q={carry:g}" if carry else ""))
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("unit")
    table.add_row("price", _format(values["price"]), "USD per unit")
    table.add_row("delta", _format(values["delta"]), "per 1 USD of spot")
    table.add_row("gamma", _format(values["gamma"]), "delta per 1 USD of spot")
    table.add_row("vega", _format(values["vega"]), "per 1.00 of vol")
    table.add_row("vega", _format(values["vega_per_pct"]), "per vol point (1%)")
    table.add_row("theta", _format(values["theta"]), "per year")
    table.add_row("theta", _format(values["theta_per_day"]), "per calendar day")
    console.print(table)
