"""`atwh demo`: the whole loop on this machine, no Allthings account needed."""

from __future__ import annotations

from typing import Annotated

import typer


def demo(
    keep: Annotated[
        bool,
        typer.Option(
            "--keep", help="Keep the demo's inbox afterwards (and say where) to look at it."
        ),
    ] = False,
) -> None:
    """Try atwh with no account: an emulated Webhooks API delivers a mix of events (some
    fail) to 'atwh serve'; then see what 'atwh deliveries' and 'atwh failures' show.

    Everything it creates is removed when it ends, Ctrl-C and SIGTERM included, unless
    --keep.

    Examples:

      atwh demo

      atwh demo --keep
    """
    import shlex
    import shutil
    import signal
    import time

    from rich.console import Console

    from atwh.cli import app
    from atwh.demo import TOKEN, Demo, DemoRun

    started = time.monotonic()
    err = Console(stderr=True, highlight=False)

    def say(line: str) -> None:
        err.print(f"[bold cyan]›[/] {line}", markup=True, soft_wrap=True)

    def show(d: Demo) -> None:
        common = ["--api-url", d.api_url, "--token", TOKEN, "--format", "table"]
        for args in (
            ["deliveries", d.webhook_id, "--limit", "7"],
            ["failures", d.webhook_id, "--since", "1h", "--limit", "1"],
        ):
            shown = " ".join(shlex.quote(a) for a in args)
            err.print(f"\n[bold]$ atwh {shown}[/]", markup=True)
            code = app(args + common, prog_name="atwh", standalone_mode=False)
            if code:
                raise typer.Exit(code)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does

    signal.signal(signal.SIGTERM, stop)
    say("Starting the Webhooks API emulator and 'atwh serve' on free loopback ports")
    run = DemoRun(say)
    try:
        d = run.run(show)
    finally:
        if not keep:
            shutil.rmtree(run.workdir, ignore_errors=True)
    # every line within 80 columns (a terminal wraps a longer one mid-word), and each one
    # pasted whole into a shell does what it says: what a command is for is a comment
    if keep:
        err.print(f"\nKept the demo's inbox in {run.workdir}", highlight=False, markup=False)
        inbox = f"  atwh inbox --db {d.inbox}\n"
    else:
        inbox = "  atwh demo --keep                               # the same, keeping its inbox\n"
    err.print(
        f"\nDone in {time.monotonic() - started:.1f}s. What next:\n"
        f"{inbox}"
        "  atwh emulator --time-scale 1000 --history 500  # your own, 30 days of history\n"
        '  atwh serve --secret "$SHARED_WEBHOOK_SECRET"   # a receiver for your webhook\n'
        "  atwh check http://localhost:3000/webhook --secret S  # grade your own endpoint\n"
        "  ATWH_TOKEN=<access token> atwh failures <webhook id>  # what failed there",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
