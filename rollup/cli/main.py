"""The `rollup` command: one typer app, command groups joined with add_typer.

Library code raises domain errors; only this layer turns them into a readable message and a
non-zero exit code. No traceback reaches a user (set ROLLUP_DEBUG=1 to see one).
"""

from __future__ import annotations

import os

import typer
from typer.core import TyperGroup

from rollup.cli.common import UserError, console_err

EXIT_INTERNAL_ERROR = 70


class RollupGroup(TyperGroup):
    """The top-level group: every subcommand runs inside `invoke`, so errors are turned into
    messages here, for the console script and for `CliRunner` alike."""

    def invoke(self, ctx):  # noqa: ANN001, ANN201
        try:
            return super().invoke(ctx)
        except UserError as exc:
            console_err.print(f"[bold red]error:[/] {exc}", highlight=False)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            # the reader went away (`rollup ... | head`): stop quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            ctx.exit(141)
        except KeyboardInterrupt:
            console_err.print("interrupted")
            ctx.exit(130)
        except Exception as exc:
            # usage errors and exits of the (typer-vendored) click carry their own exit code
            if isinstance(exc, (typer.Exit, typer.Abort)) or hasattr(exc, "exit_code") or os.environ.get("ROLLUP_DEBUG"):
                raise
            console_err.print(
                f"[bold red]error:[/] internal error: {type(exc).__name__}: {exc} (ROLLUP_DEBUG=1 shows the traceback)",
                highlight=False,
            )
            ctx.exit(EXIT_INTERNAL_ERROR)


app = typer.Typer(
    name="rollup",
    cls=RollupGroup,
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
from rollup.cli import demo as _demo  # noqa: E402

app.command("demo")(_demo.demo)
from rollup.cli import plan as _plan  # noqa: E402
app.command("plan")(_plan.plan)
from rollup.cli import prove as _prove  # noqa: E402
app.command("setup")(_prove.setup_keys)
app.command("prove")(_prove.prove_batches_command)
from rollup.cli import verify as _verify  # noqa: E402
app.command("publish")(_verify.publish_command)
app.command("verify")(_verify.verify_command)
from rollup.cli import l1 as _l1  # noqa: E402
app.add_typer(_l1.app, name="l1")
app.command("settle")(_l1.settle)
# --- end of command registration ---


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
