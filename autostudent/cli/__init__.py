"""The ``autostudent`` command: one Typer app, one module per command group.

Every user error ends the same way: exit code 2 and one line ``error: …`` on stderr naming the
field or file (a traceback only with ``--debug``).
"""

from __future__ import annotations

import os
import sys

import typer

from autostudent.cli import bench, study, teacher, trial
from autostudent.errors import SearchStopped, UserError

app = typer.Typer(
    name="autostudent",
    help="Search knowledge-distillation students against a fixed teacher.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(study.search)
app.command()(study.status)
app.command()(study.trials)
app.command()(trial.trial)
app.add_typer(teacher.app, name="teacher")
app.add_typer(bench.app, name="bench")


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    if debug:
        os.environ["AUTOSTUDENT_DEBUG"] = "1"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="autostudent", standalone_mode=False)
    except SearchStopped as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except UserError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # bad flags or arguments: one line, exit 2
        # A command group called bare has printed its help already and carries no message.
        message = exc.format_message() or "missing command (see the list above)"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
