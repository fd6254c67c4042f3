"""`atwh demo`: the whole loop on this machine, no Allthings account needed."""

from __future__ import annotations

import typer


def demo() -> None:
    """Try atwh with no account: an emulated Webhooks API delivers a realistic mix of events
    (some fail) to 'atwh serve'; then see what 'atwh deliveries' and 'atwh failures' show.

    Example:

      atwh demo
    """
    import time

    from rich.console import Console

    from atwh.cli import app
    from atwh.demo import TOKEN, Demo, DemoRun

    started = time.monotonic()
    err = Console(stderr=True, highlight=False)

    def say(line: str) -> None:
        err.print(f"[bold cyan]›[/] {line}", markup=True, soft_wrap=True)

    def show(d: Demo) -> None:
        common = ["--api-url", d.api_url, "--token", TOKEN]
        for args in (
            ["deliveries", d.webhook_id, "--limit", "12"],
            ["failures", d.webhook_id, "--since", "1h"],
        ):
            err.print(f"\n[bold]$ atwh {' '.join(args)}[/]", markup=True)
            code = app(args + common, prog_name="atwh", standalone_mode=False)
            if code:
                raise typer.Exit(code)

    say("Starting the Webhooks API emulator and 'atwh serve' on free loopback ports")
    d = DemoRun(say).run(show)
    err.print(
        f"\nDone in {time.monotonic() - started:.1f}s. What next:\n"
        f"  atwh inbox --db {d.inbox}\n"
        "      what the receiver stored, verified and answered\n"
        "  atwh emulator --time-scale 1000 --history 500\n"
        "      an emulator of your own, with 30 days of history; then, in another shell:\n"
        "      ATWH_API_URL=http://127.0.0.1:4000/ ATWH_TOKEN=dev atwh failures wh-history\n"
        '  atwh serve --port 8000 --secret "$SHARED_WEBHOOK_SECRET"\n'
        "      a receiver for your real webhook\n"
        "  ATWH_TOKEN=<access token> atwh failures <webhook id> --since 7d\n"
        "      what failed on Allthings itself",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
