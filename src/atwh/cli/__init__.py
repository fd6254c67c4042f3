"""The `atwh` command: one Typer app, one command module per noun, one error handler."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from atwh import __version__
from atwh.errors import AtwhError, ExitStatus

_state = {"debug": False}


class _PipeClosed(Exception):
    """The reader of stdout went away (`| head`): not an OSError, which click would turn
    into exit 1."""


class _Interrupted(Exception):
    """Ctrl-C in a command: not a KeyboardInterrupt, which Typer turns into a silent exit
    130 before main() can say so."""


class AtwhGroup(TyperGroup):
    """Runs the command and turns every error into one line on stderr and an exit code.

    Its commands (COMMANDS) are made when first asked for, each from its own module."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = _load(cmd_name)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The list in `atwh --help`, from COMMANDS: without importing every command."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, _, summary) in COMMANDS.items()])

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _PipeClosed() from None
        except KeyboardInterrupt:
            raise _Interrupted() from None

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        _state["debug"] = os.environ.get("ATWH_DEBUG", "") not in ("", "0")
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else ExitStatus.OK
        except AtwhError as e:
            code = _fail(e.message, e.hint, e.exit_status, e)
        except (typer.Abort, KeyboardInterrupt, _Interrupted):
            sys.stderr.write("\nInterrupted.\n")
            code = ExitStatus.INTERRUPTED
        except (BrokenPipeError, _PipeClosed):  # `| head`: done, silently
            _silence_stdout()
            code = ExitStatus.OK
        except Exception as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # `atwh webhooks` alone: its help
                typer.echo(e.ctx.get_help())  # type: ignore[attr-defined]
                code = ExitStatus.OK
            elif _is_click_error(e):  # a bad option or argument, found by the parser
                ctx = getattr(e, "ctx", None)
                hint = f"see '{ctx.command_path} --help'" if ctx is not None else None
                message = _plain(e.format_message())  # type: ignore[attr-defined]
                code = _fail(message, hint, getattr(e, "exit_code", 2), e)
            else:  # a bug: say so, in one line unless --debug
                code = _fail(
                    f"unexpected {type(e).__name__}: {e}",
                    "this is a bug in atwh; run with --debug for the traceback",
                    ExitStatus.BUG,
                    e,
                )
        if not standalone_mode:
            return code
        sys.exit(code)


_RANGES = (  # click's words for a value out of an IntRange/FloatRange, and ours
    (re.compile(r"is not in the range x>=(\S+?)\.?$"), r"is below \1"),
    (re.compile(r"is not in the range x<=(\S+?)\.?$"), r"is above \1"),
    (re.compile(r"is not in the range (\S+?)<=x<=(\S+?)\.?$"), r"is not between \1 and \2"),
)


def _plain(message: str) -> str:
    """A parser error as a person says it: `0.0 is below 0.01`, not `… the range x>=0.01`."""
    for pattern, words in _RANGES:
        message = pattern.sub(words, message)
    return message


def _is_click_error(e: BaseException) -> bool:
    """Click's ClickException family, whether Typer vendors click (0.29+) or not."""
    return any(
        cls.__name__ == "ClickException" and "click" in cls.__module__ for cls in type(e).__mro__
    )


def _fail(message: str, hint: str | None, code: int, exc: BaseException) -> int:
    if _state["debug"]:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if not message:  # the parser already showed the help instead
        return int(code)
    line = f"Error: {message}"
    if hint:
        line += f" ({hint})"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    return int(code)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


app = typer.Typer(
    cls=AtwhGroup,
    name="atwh",
    help=(
        "See what Allthings delivered to your webhooks and what failed; "
        "replay it, watch it, receive it."
    ),
    invoke_without_command=True,  # `atwh` alone: the help, exit 0 (see root)
    pretty_exceptions_enable=False,
    # Plain help: Typer's rich help imports a markdown parser and more, and alone took
    # `atwh --help` from 1.3x to 2.7x the start-up of `import typer` (bench/startup.sh).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"atwh {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="ATWH_DEBUG",
            help="Log requests to stderr and show tracebacks on errors.",
        ),
    ] = False,
) -> None:
    """See what Allthings delivered to your webhooks and what failed; replay it, watch it."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(ExitStatus.OK)
    if debug:
        import logging

        _state["debug"] = True
        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="debug: %(name)s: %(message)s"
        )


# Every command: its module in atwh.cli, the function (a command) or Typer app (a group) in
# it, and the whole sentence `atwh --help` shows for it (click would cut the docstring's
# first line to fit, mid-sentence), in the order `atwh --help` lists them. A command's
# module is imported, and its options built, only when that command runs (or its help is
# asked for): `atwh failures` does not pay for `serve`, `emulator` and the rest.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("demo", "demo", "Try atwh with no account, in ten seconds."),
    "deliveries": ("deliveries", "deliveries", "List the delivery attempts of a webhook."),
    "failures": ("failures", "failures", "Show what failed, grouped by cause, and what recovered."),
    "serve": ("serve", "serve", "Receive webhooks locally and keep them."),
    "trigger": ("trigger", "trigger", "Send your endpoint realistic events, signed."),
    "sign": ("sign", "sign", "Print the signature headers for a body."),
    "verify": ("verify", "verify", "Check a signature, and say why it fails."),
    "check": ("check", "check", "Grade a webhook endpoint before Allthings sends it events."),
    "replay": ("replay", "replay", "Re-send failed events, signed as Allthings signs them."),
    "reconcile": ("reconcile", "reconcile", "Find the events your endpoint lost."),
    "stats": ("stats", "stats", "Measure a webhook's health: success, lag, what still fails."),
    "tail": ("tail", "tail", "Follow delivery attempts as they appear in the log."),
    "inbox": ("inbox", "app", "List what 'atwh serve' received."),
    "emulator": ("emulator", "app", "Run a Webhooks API emulator that delivers."),
    "webhooks": ("webhooks", "app", "List and manage webhooks."),
}


def _load(name: str) -> Any:
    """The click command for one of COMMANDS, made from its module."""
    import importlib

    from atwh.cli.options import Command

    module, attribute, summary = COMMANDS[name]
    target = getattr(importlib.import_module(f"atwh.cli.{module}"), attribute)
    if isinstance(target, typer.Typer):
        target.rich_markup_mode = None  # plain help, as the root's (see `app`)
        command: Any = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(name, cls=Command, short_help=summary)(target)
        command = typer.main.get_command(single)
    command.name = name
    command.short_help = summary
    return command


def main() -> None:
    """The `atwh` program. What changes the whole process is chosen here, for every command
    alike, never by the library (which other programs may import)."""
    _tune_process()
    app(prog_name="atwh")


def _tune_process() -> None:
    """The garbage collector's young generation grows to a few pages' worth of objects
    before a pass: a page of deliveries decodes to about 1,000 containers that reference
    counting frees once the page is used, and with the default threshold (700) a young pass
    ran two or three times a page to find nothing (a reference cycle is rare here).

    And httpcore runs `import sniffio` for every async request it sends (replay, the
    forwarder, the emulator), inside a try. Where sniffio is not installed, each of those
    failed imports searches every entry of sys.path again (Python remembers only the imports
    that succeed): a fifth of the CPU time a replay spent. A None in sys.modules makes that
    import fail at once, as it would anyway."""
    import gc
    import importlib.util

    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]
