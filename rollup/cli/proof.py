"""`rollup proof ...`: Groth16 proof files (snarkjs format)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Groth16 proofs and keys in snarkjs's JSON format.", no_args_is_help=True)
