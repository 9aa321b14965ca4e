"""The `rollup` command: one typer app, command groups joined with add_typer.

Library code raises domain errors; only this layer turns them into a readable message and a
non-zero exit code (with --json, also a JSON `error` object with a stable code on stdout). No
traceback reaches a user (set ROLLUP_DEBUG=1 to see one).
"""

from __future__ import annotations

import json
import os

import typer
from typer.core import TyperGroup

from rollup.cli.common import INTERNAL_ERROR, INTERRUPTED, USAGE_ERROR, UserError, get_help_text, report_error, start_command

EXIT_INTERNAL_ERROR = 70


class RollupGroup(TyperGroup):
    """The top-level group: every subcommand runs inside `invoke`, so errors are turned into
    messages here, for the console script and for `CliRunner` alike."""

    def invoke(self, ctx):  # noqa: ANN001, ANN201
        # the subcommand's arguments are still unparsed here: --json among them asks for JSON errors
        as_json = "--json" in ctx.args
        start_command()
        try:
            return super().invoke(ctx)
        except UserError as exc:
            report_error(str(exc), exc.code, as_json)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            # the reader went away (`rollup ... | head`): stop quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            ctx.exit(141)
        except KeyboardInterrupt:
            report_error("interrupted", INTERRUPTED, as_json)
            ctx.exit(130)
        except Exception as exc:
            # usage errors and exits of the (typer-vendored) click carry their own exit code
            if isinstance(exc, (typer.Exit, typer.Abort)) or hasattr(exc, "exit_code") or os.environ.get("ROLLUP_DEBUG"):
                if as_json and getattr(exc, "exit_code", 0) and hasattr(exc, "format_message"):
                    print(json.dumps({"error": {"code": USAGE_ERROR, "message": exc.format_message()}}, indent=2))
                raise
            report_error(f"internal error: {type(exc).__name__}: {exc} (ROLLUP_DEBUG=1 shows the traceback)", INTERNAL_ERROR, as_json)
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
from rollup.cli import keys as _keys  # noqa: E402
app.add_typer(_keys.app, name="key")
from rollup.cli import tx as _tx  # noqa: E402
app.add_typer(_tx.app, name="tx")
from service import cli as _service  # noqa: E402
app.command("serve")(_service.serve)
# --- end of command registration ---


def unwrap_help_texts(typer_app: typer.Typer) -> None:
    """Every command's help from its docstring with the paragraphs unwrapped (get_help_text), so
    no help text breaks mid-sentence; one pass over the registered commands and groups."""
    for info in typer_app.registered_commands:
        if info.help is None and info.callback is not None:
            info.help = get_help_text(info.callback.__doc__)
    for group in typer_app.registered_groups:
        if group.help is not None:
            group.help = get_help_text(group.help)
        if group.typer_instance is not None:
            instance_info = group.typer_instance.info
            if isinstance(instance_info.help, str):
                instance_info.help = get_help_text(instance_info.help)
            unwrap_help_texts(group.typer_instance)


unwrap_help_texts(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
