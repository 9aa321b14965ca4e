"""Shared CLI helpers: the error type the CLI turns into exit codes (and, under --json, into a JSON
`error` object with a stable code), consoles, JSON output, help texts, --backend."""

from __future__ import annotations

import contextlib
import inspect
import json
import re
from collections.abc import Iterator
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)
console_err = Console(stderr=True, soft_wrap=True)


class UserError(Exception):
    """An error caused by the user's input or environment: printed without a traceback. `code` is
    its stable machine name (the `error.code` of --json output): scripts branch on it, never on the
    message, which may be reworded."""

    def __init__(self, message: str, exit_code: int = 1, code: str = "user_error"):
        super().__init__(message)
        self.exit_code = exit_code
        self.code = code


# The stable codes of errors that are not UserErrors (a UserError names its own).
USAGE_ERROR = "usage_error"  # click refused the command line (unknown option, bad integer, ...)
INTERNAL_ERROR = "internal_error"  # a bug: the message names the exception
INTERRUPTED = "interrupted"

_json_printed = False  # the command already printed its JSON document (e.g. a verdict) on stdout


def start_command() -> None:
    """Called before each command runs: nothing is printed yet."""
    global _json_printed
    _json_printed = False


def report_error(message: str, code: str, as_json: bool) -> None:
    """The one error path of every command: one readable line on stderr and, under --json, the
    error object {"error": {"code", "message"}} on stdout, unless the command already printed its
    JSON result (a verdict that says why it failed): stdout holds one JSON document."""
    console_err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    if as_json and not _json_printed:
        print(json.dumps({"error": {"code": code, "message": message}}, indent=2))


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
    global _json_printed
    print(json.dumps(obj, indent=2, sort_keys=False, default=str))
    _json_printed = True


_LINE_BREAK_IN_PARAGRAPH = re.compile(r"(?<!\n)\n(?![\n ])")


def get_help_text(doc: str | None) -> str | None:
    """A docstring as a help text: paragraphs joined into one line each, so the terminal wraps
    them at its width (typer keeps a docstring's hard line breaks, cutting sentences in the middle).
    Lines that start indented (lists, examples) keep their break."""
    if not doc:
        return doc
    return _LINE_BREAK_IN_PARAGRAPH.sub(" ", inspect.cleandoc(doc))
