"""Shared CLI helpers: the error type the CLI turns into exit codes, consoles, JSON output, --backend."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

console = Console(soft_wrap=True)
console_err = Console(stderr=True, soft_wrap=True)


class UserError(Exception):
    """An error caused by the user's input or environment: printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


BackendOption = Annotated[
    Optional[str],
    typer.Option(
        "--backend",
        help="Curve arithmetic: py_ecc (pure Python, the reference) or mcl (native). Default: $ROLLUP_BACKEND, else the fastest installed.",
        show_default=False,
    ),
]


@contextlib.contextmanager
def use_backend(name: str | None) -> Iterator[str | None]:
    """Within the block, `name` is this process's proving/verification backend (verifier/backends.py).
    Yields the explicit choice (option or ROLLUP_BACKEND), or None for the fastest installed. An
    unknown or missing backend is a UserError."""
    from verifier import backends

    previous = backends.get_default_backend()
    try:
        if name is not None:
            backends.set_default_backend(name)
        chosen = backends.get_backend_name()
    except backends.BackendError as exc:
        raise UserError(str(exc)) from None
    try:
        yield chosen
    finally:
        backends.set_default_backend(previous)


def print_json(obj: Any) -> None:
    """Machine output for --json: plain JSON on stdout, no colour, no wrapping."""
    print(json.dumps(obj, indent=2, sort_keys=False, default=str))
