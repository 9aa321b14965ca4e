"""Shared CLI helpers: the error type the CLI turns into exit codes, consoles, JSON output."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

console = Console(soft_wrap=True)
console_err = Console(stderr=True, soft_wrap=True)


class UserError(Exception):
    """An error caused by the user's input or environment: printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def print_json(obj: Any) -> None:
    """Machine output for --json: plain JSON on stdout, no colour, no wrapping."""
    print(json.dumps(obj, indent=2, sort_keys=False, default=str))
