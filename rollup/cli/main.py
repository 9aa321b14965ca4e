"""The `rollup` command: one typer app, command groups joined with add_typer.

Library code raises domain errors; only this layer turns them into a readable message and a
non-zero exit code. No traceback reaches a user.
"""

from __future__ import annotations

import sys

import typer

from rollup.cli.common import console_err, UserError

app = typer.Typer(
    name="rollup",
    help="A zero-knowledge-verified parallel rollup for crypto derivatives (research prototype).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# --- command registration: one import and one line per command module ---
from rollup.cli import proof as _proof  # noqa: E402

app.add_typer(_proof.app, name="proof")
from rollup.cli import greeks as _greeks  # noqa: E402
app.command("greeks")(_greeks.greeks)
from rollup.cli import node as _node  # noqa: E402

for _name in ("init", "submit", "status", "account", "batch", "risk", "schema"):
    app.command(_name)(getattr(_node, _name))
from rollup.cli import fixtures as _fixtures  # noqa: E402
app.command("fixtures")(_fixtures.fixtures)
# --- end of command registration ---


def main() -> None:
    """Console-script entry point: run the app, turning any stray exception into a clean error."""
    try:
        app(standalone_mode=False)
    except UserError as exc:
        console_err.print(f"[bold red]error:[/] {exc}")
        sys.exit(exc.exit_code)
    except (typer.Exit, SystemExit) as exc:  # normal exits and typer.Exit(code)
        code = getattr(exc, "exit_code", None)
        if code is None:
            code = getattr(exc, "code", 0)
        sys.exit(code or 0)
    except typer.Abort:
        console_err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and anything unexpected
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        console_err.print(f"[bold red]error:[/] internal error: {type(exc).__name__}: {exc}")
        sys.exit(70)


if __name__ == "__main__":
    main()
