"""`rollup greeks` through typer's CliRunner, and one error through the console-script entry point."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from rollup.cli.main import app, main

runner = CliRunner()
HULL = ["greeks", "--spot", "42", "--strike", "40", "--rate", "0.10", "--vol", "0.20", "--expiry", "0.5"]


def test_table_shows_price_and_greeks() -> None:
    result = runner.invoke(app, HULL + ["--call"])
    assert result.exit_code == 0, result.output
    assert "4.75942" in result.output  # Hull: call 4.76
    for measure in ("price", "delta", "gamma", "vega", "theta", "per calendar day"):
        assert measure in result.output


def test_json_output_for_a_put() -> None:
    result = runner.invoke(app, HULL + ["--put", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert round(data["price"], 2) == 0.81  # Hull: put 0.81
    assert data["option"]["type"] == "put"
    assert -1.0 < data["delta"] < 0.0
    assert data["vega_per_pct"] == pytest.approx(data["vega"] / 100)
    assert data["theta_per_day"] == pytest.approx(data["theta"] / 365)


def test_zero_expiry_is_intrinsic() -> None:
    args = ["greeks", "--spot", "42", "--strike", "40", "--vol", "0.2", "--expiry", "0", "--json"]
    data = json.loads(runner.invoke(app, args).output)
    assert data["price"] == 2.0 and data["gamma"] == 0.0


@pytest.mark.parametrize("option, value", [
    ("--vol", "-0.2"),
    ("--expiry", "-1"),
    ("--spot", "0"),
    ("--spot", "-5"),
    ("--strike", "0"),
    ("--rate", "nan"),
])
def test_invalid_input_names_the_option(option, value) -> None:
    args = list(HULL)
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert option in result.output and "Traceback" not in result.output


def test_entry_point_prints_a_clean_error(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["rollup"] + HULL[:-1] + ["-0.5"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert "--expiry must be >= 0" in captured.err
    assert "Traceback" not in captured.err + captured.out
