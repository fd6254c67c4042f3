"""`atwh replay WEBHOOK_ID`: re-send failed events, signed as Allthings signs them."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.errors import ExitStatus

IdList = Annotated[
    list[str] | None,
    typer.Option(
        "--delivery",
        metavar="ID",
        rich_help_panel=o.FILTERS,
        help="Send the events of these deliveries (unique prefixes). Repeatable.",
    ),
]


WebhookId = Annotated[
    str | None,
    typer.Argument(metavar="WEBHOOK_ID", help="The webhook whose events to re-send."),
]
EventIds = Annotated[
    list[str] | None,
    typer.Option(
        "--event-id",
        metavar="ID",
        rich_help_panel=o.FILTERS,
        help="Send these events (ids or unique prefixes). Repeatable.",
    ),
]
AllFailed = Annotated[
    bool,
    typer.Option(
        "--all-failed",
        rich_help_panel=o.FILTERS,
        help="Every event with a failed attempt, even if a retry succeeded.",
    ),
]
Everything = Annotated[
    bool,
    typer.Option("--all", rich_help_panel=o.FILTERS, help="Every event in the window."),
]
History = Annotated[
    bool, typer.Option("--history", help="List past replays from the ledger, newest first.")
]


def replay(
    webhook_id: WebhookId = None,
    delivery: IdList = None,
    event_id: EventIds = None,
    since: o.Since = None,
    until: o.Until = None,
    event: o.EventName = None,
    status_code: o.StatusCode = None,
    all_failed: AllFailed = False,
    everything: Everything = False,
    to: o.To = None,
    secret: o.Secret = None,
    concurrency: o.Concurrency = 1,
    rate: o.Rate = None,
    dry_run: o.DryRun = False,
    yes: o.Yes = False,
    force: o.Force = False,
    ledger: o.LedgerPath = None,
    history: History = False,
    save: o.Save = None,
    as_: o.As = None,
    fmt: o.Format = None,
    as_json: o.Json = False,
    output: o.Output = None,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.RequestTimeout = 30.0,
) -> int:
    """Re-send a webhook's failed events, signed as Allthings signs them, oldest first.

    By default the events whose latest attempt failed and that never succeeded later
    (still failing) in the window; --all-failed every event with a failed attempt; --all
    every event. Each event is sent once, with its payload exactly as the log keeps it.
    Exit 0 when every event sent was answered 2xx, 1 otherwise.

    Examples:

      atwh replay wh-history --since 2d --dry-run

      atwh replay wh-history --since 2d --concurrency 4 --rate 20/s

      atwh replay wh-history --event-id 9b1e --to http://localhost:3000/webhook --secret s3cret

      atwh replay --history
    """
    from atwh.cli import context
    from atwh.client.filters import DeliveryFilter
    from atwh.client.secret import webhook_secret
    from atwh.core.config import http_url
    from atwh.errors import UsageError, printable
    from atwh.output.show import listing_mode
    from atwh.recover import webhook
    from atwh.recover.sending import Sending

    chosen = listing_mode(fmt, as_json, output)
    if chosen == "csv":
        raise UsageError("--format csv: replay reports come as table, json or ndjson")
    if history:
        from atwh.output.recover import show_history

        show_history(ledger, chosen, output)
        return ExitStatus.OK
    if not webhook_id:
        raise UsageError("give the WEBHOOK_ID whose events to replay (or --history)")
    mode = webhook.mode_of(all_failed, everything, bool(delivery or event_id))
    flt = DeliveryFilter.from_options(since, until, event or [], status_code or [])
    target = http_url("--to", to) if to is not None else None
    context.check_as(as_)
    ids = context.split_ids(delivery, "--delivery"), context.split_ids(event_id, "--event-id")
    make_client = context.client_factory(api_url, token, timeout)
    with make_client() as client:
        with context.fetching() as on_page:
            # the payloads, unless nothing is sent or written down (--save and --as need them)
            bodies = not dry_run or save is not None or as_ is not None
            found = webhook.choose(client, webhook_id, flt, mode, *ids, bodies, on_page)
        target = target or context.webhook_url(found.webhook.url, webhook_id)
        if found.webhook.enabled is False and to is None:
            context.warn(
                f"webhook {printable(webhook_id, 80)} is disabled: Allthings sends it nothing"
            )
        if not dry_run and secret is None:
            secret = webhook_secret(client, webhook_id)
    how = Sending(
        target, secret, f"webhook:{webhook_id}", concurrency, rate, timeout,
        dry_run, yes, force, ledger, save, as_,
    )  # fmt: skip
    nothing = webhook.nothing_hint(mode, since, len(found.log))
    return context.send(found.candidates, how, nothing, chosen, output)
