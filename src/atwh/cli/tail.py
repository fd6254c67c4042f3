"""`atwh tail [WEBHOOK_ID ...]`: new delivery attempts as they appear in the log."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params
from atwh.errors import ExitStatus


def tail(
    webhook_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="WEBHOOK_ID...",
            help="Webhooks to follow [default: ATWH_WEBHOOK_ID, else the config file's 'webhooks']",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            click_type=params.Duration("SECONDS", min=0.01),
            show_default=False,
            help="How long to wait between polls: seconds, or a duration (1s, 2m) [default: 5s]",
        ),
    ] = 5.0,
    exit_on_failure: Annotated[
        bool,
        typer.Option("--exit-on-failure", help="Exit 1 at the first failed attempt (for CI jobs)."),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            rich_help_panel=o.FILTERS,
            metavar="WHEN",
            help="First print the attempts created after WHEN (90s, 15m, 2h, 7d, or an ISO "
            "date) [default: none, only new ones]",
            show_default=False,
        ),
    ] = None,
    event: o.EventName = None,
    status_code: o.StatusCode = None,
    failed: o.Failed = False,
    fmt: Annotated[str | None, o.format_option(("table", "ndjson"), o.PIPED)] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", rich_help_panel=o.OUTPUT, help="NDJSON: one object per attempt, per line."
        ),
    ] = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> int:
    """Follow delivery attempts as they appear in the log: each new one once, in order.

    Polls every --interval and pages back as far as needed, so a burst or a sleeping
    laptop skips nothing; each later status of an attempt is printed once, as an update.
    API and network errors are retried with back-off. Ctrl-C stops (exit 0).

    Examples:

      atwh tail wh-history

      atwh tail wh-history --since 1h --failed

      atwh tail wh-history --json --exit-on-failure | jq .status
    """
    import sys

    from atwh.cli.context import client_factory, webhook_ids_from
    from atwh.client.api import RetryPolicy
    from atwh.client.filters import DeliveryFilter
    from atwh.errors import UsageError
    from atwh.observe.tail import Follower, Item
    from atwh.output.show import listing_mode
    from atwh.output.tail import Rows, StatusLine, ndjson_line, write_items

    if as_json and fmt not in (None, "json", "ndjson"):
        raise UsageError(f"--json and --format {fmt} disagree: give one of them")
    mode = listing_mode("ndjson" if as_json else fmt, False, None)
    if mode not in ("table", "tsv", "ndjson"):
        raise UsageError(f"--format {mode}: tail prints a table or ndjson")
    flt = DeliveryFilter.from_options(None, None, event or [], status_code or [], failed)
    start = DeliveryFilter.from_options(since).since if since is not None else None
    ids = webhook_ids_from(webhook_ids)
    # one try per request: tail's own loop retries, with a back-off it can report
    make_client = client_factory(api_url, token, timeout, RetryPolicy(attempts=1))
    follower = Follower(ids, make_client, flt, start)
    status = StatusLine()
    multi = len(ids) > 1
    stdout = sys.stdout
    rows = None
    if mode == "table":
        from atwh.output.tables import console

        rows = Rows(console(), multi)
    watching = f"following {len(ids)} webhooks" if multi else f"following {ids[0]}"
    outcome = {"code": ExitStatus.OK, "lines": 0}

    def emit(items: list[Item]) -> bool:
        if items:
            status.clear()
        if rows is not None:
            rows.print(items)
        elif mode == "ndjson":
            for item in items:
                stdout.write(ndjson_line(item))
            stdout.flush()
        elif items:  # piped: the TSV lines of `deliveries`, the header before the first
            write_items(items, multi, stdout, header=not outcome["lines"])
            outcome["lines"] += len(items)
        if exit_on_failure and any(i.delivery.failed for i in items):
            outcome["code"] = ExitStatus.FAILED
            return True
        return False

    try:
        follower.follow(
            emit,
            status.say,
            interval=interval,
            polled=lambda when: status.show(when, watching),
        )
    except KeyboardInterrupt:
        status.clear()
        return ExitStatus.OK
    return outcome["code"]
