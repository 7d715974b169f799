"""The ``autostudent`` command: one Typer app, one module per command group.

Every user error ends the same way: exit code 2 and one line ``error: …`` on stderr naming the
field or file (a traceback only with ``--debug``).
"""

from __future__ import annotations

import inspect
import os
import sys
import traceback

import typer

from autostudent.allocator import keep_freed_memory
from autostudent.cli import baselines, bench, dashboard, export, study, teacher, trial
from autostudent.errors import (
    ExportFailed,
    Interrupted,
    RayFailed,
    SearchStopped,
    TrialFailed,
    UserError,
)
from autostudent.lease import LeaseLost
from autostudent.storage import StorageLost, redact

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
app.command()(dashboard.dashboard)
app.command()(export.export)
app.command()(baselines.baselines)
app.add_typer(teacher.app, name="teacher")
app.add_typer(bench.app, name="bench")


def _one_line_summaries(*apps: typer.Typer) -> None:
    """Each command's line in ``--help``'s list: its docstring's first paragraph as one line,
    wrapped to the terminal. Typer's rich mode keeps the docstring's line breaks there, which
    leaves ragged half-empty lines."""
    for each in apps:
        for info in each.registered_commands:
            if info.short_help is None and info.callback is not None:
                first = inspect.cleandoc(info.callback.__doc__ or "").split("\n\n")[0]
                info.short_help = " ".join(first.split())


_one_line_summaries(app, teacher.app, bench.app)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    if debug:
        os.environ["AUTOSTUDENT_DEBUG"] = "1"
    keep_freed_memory()  # every command that trains (teacher, trial, export) trains faster


# What ends a command early, and its exit code; the message is printed as one line.
EXIT_CODES: tuple[tuple[type[Exception], int, str], ...] = (
    (UserError, 2, "error: "),  # bad input: names the field or file
    (SearchStopped, 1, "error: "),  # the search gave up, with the last failure reason
    (RayFailed, 1, "error: "),  # this machine's Ray did not start: rerun to continue
    (StorageLost, 1, "error: "),  # the database stopped answering: rerun to continue
    (LeaseLost, 1, "error: "),  # another driver took the study over
    (ExportFailed, 1, "error: "),  # an exported file failed its check; nothing written
    (TrialFailed, 1, "error: the trial failed: "),  # `trial`: over a cap, a NaN loss…
    (Interrupted, 130, ""),  # Ctrl-C: the study is consistent, rerun to continue
)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        code = app(args=args, prog_name="autostudent", standalone_mode=False)
    except tuple(e for e, _, _ in EXIT_CODES) as exc:
        if debug:
            raise
        _code, prefix = next((c, p) for e, c, p in EXIT_CODES if isinstance(exc, e))
        print(redact(f"{prefix}{exc}"), file=sys.stderr)
        sys.exit(_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # bad flags or arguments: one line, exit 2
        # A command group called bare has printed its help already and carries no message.
        message = exc.format_message() or "missing command (see the list above)"
        print(redact(f"error: {message}"), file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    except Exception:  # a bug: its traceback, with any storage password masked
        if debug:
            raise
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        sys.exit(1)
    if isinstance(code, int) and code:  # e.g. 130 when Ctrl-C reached a command
        sys.exit(code)
