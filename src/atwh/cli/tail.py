"""`atwh tail [WEBHOOK_ID ...]`: new delivery attempts as they appear in the log."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params

WebhookIds = Annotated[list[str] | None, o.webhook_ids_argument("Webhooks to follow")]
Interval = Annotated[
    float,
    typer.Option(
        "--interval",
        click_type=params.Duration("SECONDS", min=0.01),
        show_default=False,
        help="How long to wait between polls: seconds, or a duration (1s, 2m) [default: 5s]",
    ),
]
ExitOnFailure = Annotated[
    bool,
    typer.Option("--exit-on-failure", help="Exit 1 at the first failed attempt (for CI jobs)."),
]
Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        rich_help_panel=o.FILTERS,
        metavar="WHEN",
        help="First print the attempts created after WHEN (90s, 15m, 2h, 7d, or an ISO "
        "date) [default: none, only new ones]",
        show_default=False,
    ),
]
Format = Annotated[str | None, o.format_option(("table", "ndjson"), o.PIPED)]
Json = Annotated[
    bool,
    typer.Option(
        "--json", rich_help_panel=o.OUTPUT, help="NDJSON: one object per attempt, per line."
    ),
]


def tail(
    webhook_ids: WebhookIds = None,
    interval: Interval = 5.0,
    exit_on_failure: ExitOnFailure = False,
    since: Since = None,
    event: o.EventName = None,
    status_code: o.StatusCode = None,
    failed: o.Failed = False,
    fmt: Format = None,
    as_json: Json = False,
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
    from atwh.cli.context import client_factory, webhook_ids_from
    from atwh.client.api import RetryPolicy
    from atwh.client.filters import DeliveryFilter
    from atwh.errors import UsageError
    from atwh.observe.tail import Follower
    from atwh.output.show import listing_mode
    from atwh.output.tail import follow

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
    return follow(follower, ids, mode, interval, exit_on_failure)
