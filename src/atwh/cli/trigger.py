"""`atwh trigger NAME...`: send your endpoint realistic events, signed as Allthings signs them."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params

SEND = o.SEND
EVENTS = "Events"


def trigger(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME]...",
            help="Event names, as 'atwh webhooks events' lists them [default: the webhook's "
            "events, with --webhook]",
            show_default=False,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", metavar="URL", show_default=False, help="Your endpoint: where to POST."
        ),
    ] = None,
    secret: o.SigningSecret = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            metavar="WEBHOOK_ID",
            click_type=params.WebhookId(),
            show_default=False,
            help="Take the URL, the secret and the event names from this webhook (the API).",
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            metavar="JSON",
            rich_help_panel=EVENTS,
            show_default=False,
            help="A JSON object merged into event.data.",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="PATH=VALUE",
            rich_help_panel=EVENTS,
            help="Set one dotted field of event.data (event.urn etc. from the top); VALUE is JSON "
            "or text. Repeatable.",
        ),
    ] = None,
    body: Annotated[
        str | None,
        typer.Option(
            "--body",
            metavar="FILE|-",
            rich_help_panel=EVENTS,
            show_default=False,
            help="Send these bytes exactly (a captured payload), signed.",
        ),
    ] = None,
    count: Annotated[
        int,
        typer.Option(
            "--count",
            "-n",
            click_type=params.Number("N", min=1, max=100_000),
            rich_help_panel=EVENTS,
            help="Events per name, each with its own event id.",
        ),
    ] = 1,
    event_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            metavar="ID",
            rich_help_panel=EVENTS,
            show_default=False,
            help="Use this event id (every event the same: test idempotency).",
        ),
    ] = None,
    any_name: Annotated[
        bool,
        typer.Option(
            "--any-name",
            rich_help_panel=EVENTS,
            help="Send names that are not in the catalogue, as they are.",
        ),
    ] = False,
    timestamp: o.Timestamp = None,
    unsigned: Annotated[
        bool,
        typer.Option(
            "--unsigned",
            rich_help_panel=SEND,
            help="Send without signature headers; without NAME, the registration's test "
            "request itself.",
        ),
    ] = False,
    concurrency: o.Concurrency = 1,
    request_timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            envvar="ATWH_TIMEOUT",
            click_type=params.Duration("SECONDS", min=0.1),
            show_default=False,
            help="How long to wait for each answer (and for the API, with --webhook): seconds, "
            "or a duration (10s, 1m) [default: 10s]",
        ),
    ] = 10.0,
    as_: o.As = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", rich_help_panel=SEND, help="Show the requests; send nothing."),
    ] = False,
    fmt: o.Format = None,
    as_json: o.Json = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
) -> int:
    """Send your endpoint realistic events, signed exactly as Allthings signs them.

    One event per NAME (--count more), in the vendor's shape and JSON.stringify's bytes,
    with the hex HMAC-SHA256 of the body and a millisecond timestamp. One line per event:
    name, event id, HTTP code, time, answer. Exit 0 when every answer is 2xx, 1 when any
    is not (a 3xx too: never followed), 6 when the URL cannot be reached.

    Examples:

      atwh trigger ticket.created --url http://localhost:3000/webhook --secret s3cret

      atwh trigger ticket.updated --set delta.status.to=closed --count 5 --concurrency 5

      atwh trigger --webhook 5f3a0c7e2b1d

      atwh trigger --body captured.json --url http://localhost:3000/webhook --timestamp -10m

      atwh trigger --unsigned --url http://localhost:3000/webhook
    """
    from pathlib import Path

    from atwh.cli import context
    from atwh.cli.context import client_factory
    from atwh.core.config import http_url
    from atwh.endpoint import trigger as t
    from atwh.errors import ExitStatus, UsageError, printable
    from atwh.output.show import listing_mode, plural, write_export

    mode = listing_mode(fmt, as_json, None)
    if mode not in ("table", "tsv", "json", "ndjson"):
        raise UsageError(f"--format {mode}: trigger prints a table, json or ndjson")
    context.check_as(as_)
    plan = t.Plan(
        names or [], body, count, event_id, data, set_ or [], timestamp, unsigned, any_name
    )
    if webhook is not None:
        source = ctx.get_parameter_source("secret")
        if secret is not None and source is not None and source.name == "COMMANDLINE":
            raise UsageError("give --secret or --webhook, not both")
        with client_factory(api_url, token, request_timeout)() as client:
            hook_url, secret, hook_events = t.webhook_target(client, webhook)
            if body is None:  # no NAME: the webhook's events
                plan.names = plan.names or hook_events
            catalogue = t.api_catalogue(client)
        url = url or hook_url  # --url sends the webhook's events elsewhere (a tunnel's inside)
    else:
        catalogue = _catalogue(api_url if body is None else None, token, request_timeout)
    if url is None:
        raise UsageError("give the endpoint's --url (or --webhook WEBHOOK_ID)")
    url = http_url("--url", url)
    if secret is not None and not secret.strip():
        raise UsageError("--secret is empty: give the webhook's secret, or --unsigned")
    if secret is None and not unsigned:
        raise UsageError(
            "no secret to sign with: give --secret (or ALLTHINGS_WEBHOOK_SECRET), "
            "or --unsigned for the test request"
        )
    requests = t.requests_for(plan, catalogue)
    signing = None if unsigned else secret
    if as_ is not None:
        lines, files = t.curl_lines(url, requests, signing, Path.cwd())
        for line in lines:
            typer.echo(line)
        if files:
            typer.echo(
                f"Wrote the body of {plural(files, 'request')} into the current directory "
                "(atwh-trigger-N.json): larger than 4 KiB, or not plain text.",
                err=True,
            )
        if not unsigned and timestamp is None:
            typer.echo(
                "Note: each command carries a timestamp from now; a receiver rejects it once "
                "older than its tolerance (2 minutes for 'atwh serve' and the vendor's example).",
                err=True,
            )
        return ExitStatus.OK
    if dry_run:
        for request in requests:
            typer.echo(t.dry_run_text(printable(url, None), request, signing))
        typer.echo(f"{plural(len(requests), 'request')} shown; nothing sent.", err=True)
        return ExitStatus.OK
    report = t.send(url, requests, signing, concurrency, request_timeout)
    if mode in ("json", "ndjson"):
        write_export(report.results, mode, None)
    else:
        from atwh.output.endpoint import trigger_columns
        from atwh.output.show import show_listing

        show_listing(trigger_columns(), report.results, mode)
    from atwh.output.endpoint import trigger_totals

    typer.echo(trigger_totals(report, url), err=True)
    return report.exit_status


def _catalogue(api_url: str | None, token: str | None, timeout: float) -> list[str]:
    """The event names: an API's named by --api-url (the emulator's, say), else (or when it
    cannot say, with a warning) the emulator's list."""
    from atwh.cli.context import client_factory, warn
    from atwh.endpoint.trigger import api_catalogue, offline_catalogue
    from atwh.errors import AtwhError

    if api_url is None:
        return offline_catalogue()
    try:
        with client_factory(api_url, token, timeout)() as client:
            return api_catalogue(client)
    except AtwhError as e:
        warn(f"the event names come from the emulator's list: {e.message}")
        return offline_catalogue()
