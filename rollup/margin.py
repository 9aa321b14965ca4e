"""Portfolio margin from the oracle's risk arrays, in exact integers (the rule the circuit checks).

A risk array is the micro-USD P&L of one long contract of an instrument under each scenario of the
oracle's grid (see rollup/risk.py). A portfolio's P&L in scenario s is sum(qty * array[s]); its
margin requirement is the worst loss over the scenarios, and never negative:

    requirement = max(0, -min_s sum_i qty_i * array_i[s])

Pure Python ints, no numpy: this runs once per risk-increasing transaction on the hot path, where
portfolios hold a handful of instruments and numpy's per-call overhead would dominate.
``compute_margin_requirement`` is the fast form, ``compute_margin_requirement_reference`` the plain
one with the same API; tests/test_margin.py runs one suite over both.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

InstrumentId = Hashable


class RiskArrayError(ValueError):
    """A position the oracle's risk arrays cannot margin (no array, or arrays of unequal length)."""


def compute_scenario_pnl(positions: Mapping[InstrumentId, int],
                         risk_arrays: Mapping[InstrumentId, Sequence[int]]) -> list[int]:
    """The portfolio's micro-USD P&L in every scenario (empty list for a flat portfolio)."""
    totals: list[int] | None = None
    for instrument_id, quantity in positions.items():
        if quantity == 0:
            continue
        array = risk_arrays.get(instrument_id)
        # Every open position needs the oracle's risk array, or its risk is unknown.
        if array is None:
            raise RiskArrayError(f"no risk array for instrument {instrument_id!r}: the oracle has not priced it")
        if totals is None:
            totals = [quantity * value for value in array]
            continue
        # All arrays must describe the same scenarios.
        if len(array) != len(totals):
            raise RiskArrayError(
                f"risk array of instrument {instrument_id!r} has {len(array)} scenarios, expected {len(totals)}")
        totals = [total + quantity * value for total, value in zip(totals, array)]
    return totals if totals is not None else []


def compute_margin_requirement(positions: Mapping[InstrumentId, int],
                               risk_arrays: Mapping[InstrumentId, Sequence[int]]) -> int:
    """Worst-scenario loss of the portfolio in micro-USD; 0 if no scenario loses money."""
    totals = compute_scenario_pnl(positions, risk_arrays)
    if not totals:
        return 0
    worst = min(totals)
    return -worst if worst < 0 else 0


def compute_margin_requirement_reference(positions: Mapping[InstrumentId, int],
                                         risk_arrays: Mapping[InstrumentId, Sequence[int]]) -> int:
    """The definition, written out: max(0, -min over scenarios of sum(qty * array[s]))."""
    held = [(instrument_id, quantity) for instrument_id, quantity in positions.items() if quantity != 0]
    for instrument_id, _ in held:
        # Every open position needs the oracle's risk array, or its risk is unknown.
        if risk_arrays.get(instrument_id) is None:
            raise RiskArrayError(f"no risk array for instrument {instrument_id!r}: the oracle has not priced it")
    if not held:
        return 0
    lengths = {len(risk_arrays[instrument_id]) for instrument_id, _ in held}
    # All arrays must describe the same scenarios.
    if len(lengths) != 1:
        raise RiskArrayError(f"risk arrays of the portfolio have different scenario counts: {sorted(lengths)}")
    scenario_count = lengths.pop()
    worst_loss = 0
    for scenario in range(scenario_count):
        pnl = 0
        for instrument_id, quantity in held:
            pnl += quantity * risk_arrays[instrument_id][scenario]
        worst_loss = max(worst_loss, -pnl)
    return worst_loss
