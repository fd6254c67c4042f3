"""`atwh trigger NAME...`: send your endpoint realistic events, signed as Allthings signs them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params

if TYPE_CHECKING:
    from atwh.client.api import ApiClient

SEND = o.SEND
EVENTS = "Events"

Names = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[NAME]...",
        help="Event names, as 'atwh webhooks events' lists them [default: the webhook's "
        "events, with --webhook]",
        show_default=False,
    ),
]
Url = Annotated[
    str | None,
    typer.Option("--url", metavar="URL", show_default=False, help="Your endpoint: where to POST."),
]
Webhook = Annotated[
    str | None,
    o.webhook_option("Take the URL, the secret and the event names from this webhook (the API)."),
]
Data = Annotated[
    str | None,
    typer.Option(
        "--data",
        metavar="JSON",
        rich_help_panel=EVENTS,
        show_default=False,
        help="A JSON object merged into event.data.",
    ),
]
Set = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        rich_help_panel=EVENTS,
        help="Set one dotted field of event.data (event.urn etc. from the top); VALUE is JSON "
        "or text. Repeatable.",
    ),
]
Body = Annotated[
    str | None,
    typer.Option(
        "--body",
        metavar="FILE|-",
        rich_help_panel=EVENTS,
        show_default=False,
        help="Send these bytes exactly (a captured payload), signed.",
    ),
]
Count = Annotated[
    int,
    typer.Option(
        "--count",
        "-n",
        click_type=params.Number("N", min=1, max=100_000),
        rich_help_panel=EVENTS,
        help="Events per name, each with its own event id.",
    ),
]
EventId = Annotated[
    str | None,
    typer.Option(
        "--id",
        metavar="ID",
        rich_help_panel=EVENTS,
        show_default=False,
        help="Use this event id (every event the same: test idempotency).",
    ),
]
AnyName = Annotated[
    bool,
    typer.Option(
        "--any-name",
        rich_help_panel=EVENTS,
        help="Send names that are not in the catalogue, as they are.",
    ),
]
Unsigned = Annotated[
    bool,
    typer.Option(
        "--unsigned",
        rich_help_panel=SEND,
        help="Send without signature headers; without NAME, the registration's test "
        "request itself.",
    ),
]
RequestTimeout = Annotated[
    float,
    o.answer_timeout(
        "How long to wait for each answer (and for the API, with --webhook): seconds, "
        "or a duration (10s, 1m) [default: 10s]"
    ),
]
DryRun = Annotated[
    bool,
    typer.Option("--dry-run", rich_help_panel=SEND, help="Show the requests; send nothing."),
]


def trigger(
    ctx: typer.Context,
    names: Names = None,
    url: Url = None,
    secret: o.SigningSecret = None,
    webhook: Webhook = None,
    data: Data = None,
    set_: Set = None,
    body: Body = None,
    count: Count = 1,
    event_id: EventId = None,
    any_name: AnyName = False,
    timestamp: o.Timestamp = None,
    unsigned: Unsigned = False,
    concurrency: o.Concurrency = 1,
    request_timeout: RequestTimeout = 10.0,
    as_: o.As = None,
    dry_run: DryRun = False,
    fmt: o.Format = None,
    as_json: o.Json = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
) -> int:
    """Send your endpoint realistic events, signed exactly as Allthings signs them.

    One event per NAME (--count more), in the vendor's shape and JSON.stringify's bytes,
    with the hex HMAC-SHA256 of the body and a millisecond timestamp. One line per event:
    name, event id, HTTP code, time, answer; piped, each written as its answer comes (in
    the order sent); on a terminal a table of at most 50 (the failures first). Ctrl-C
    stops sending, waits for the requests in flight (again: abandons them) and shows what
    was sent. Exit 0 when every answer is 2xx, 1 when any is not (a 3xx too: never
    followed), 6 when the URL cannot be reached, 130 when interrupted.

    Examples:

      atwh trigger ticket.created --url http://localhost:3000/webhook --secret s3cret

      atwh trigger ticket.updated --set delta.status.to=closed --count 5 --concurrency 5

      atwh trigger --webhook 5f3a0c7e2b1d

      atwh trigger --body captured.json --url http://localhost:3000/webhook --timestamp -10m

      atwh trigger --unsigned --url http://localhost:3000/webhook
    """
    from atwh.cli import context
    from atwh.endpoint import trigger as t
    from atwh.errors import UsageError
    from atwh.output.endpoint import trigger_run
    from atwh.output.show import listing_mode

    mode = listing_mode(fmt, as_json, None)
    if mode not in ("table", "tsv", "json", "ndjson"):
        raise UsageError(f"--format {mode}: trigger prints a table, json or ndjson")
    context.check_as(as_)
    plan = t.Plan(
        names or [], body, count, event_id, data, set_ or [], timestamp, unsigned, any_name
    )
    source = ctx.get_parameter_source("secret")
    if webhook is not None and secret is not None and source and source.name == "COMMANDLINE":
        raise UsageError("give --secret or --webhook, not both")

    def connect() -> ApiClient:
        return context.client_factory(api_url, token, request_timeout)()

    ask_api = api_url is not None and body is None  # the names of an API named (the emulator)
    url, secret, catalogue = t.target(plan, url, secret, webhook, connect, ask_api, context.warn)
    requests = t.requests_for(plan, catalogue)
    signing = None if unsigned else secret
    return trigger_run(
        url, plan, requests, signing, mode, as_ is not None, dry_run, concurrency, request_timeout
    )
