"""`atwh serve`: a local receiver that answers like the vendor's endpoint and keeps everything."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params

RECEIVER = "Receiver"
SIMULATE = "Simulated failures"
FORWARD = "Forwarding"

WebhookPath = Annotated[
    str, typer.Option("--path", metavar="PATH", help="Where webhooks are POSTed.")
]
Secret = Annotated[
    str | None,
    typer.Option(
        "--secret",
        metavar="SECRET",
        envvar=o.SECRET_VARIABLES,
        rich_help_panel=RECEIVER,
        show_default=False,
        help="The webhook's shared secret: verify every signed request.",
    ),
]
Webhook = Annotated[
    str | None,
    o.webhook_option("Read the secret of this webhook from the API (webhook.secret).", RECEIVER),
]
Tolerance = Annotated[
    float,
    typer.Option(
        "--tolerance",
        click_type=params.Duration(),
        rich_help_panel=RECEIVER,
        show_default=False,
        help="Oldest signature timestamp accepted (30s of clock skew ahead is allowed too) "
        "[default: 2m]",
    ),
]
Events = Annotated[
    str | None,
    typer.Option(
        "--events",
        metavar="A,B",
        rich_help_panel=RECEIVER,
        help="Event names accepted besides ticket.created and ticket.updated.",
    ),
]
AcceptAnyEvent = Annotated[
    bool,
    typer.Option(
        "--accept-any-event",
        rich_help_panel=RECEIVER,
        help="Accept every event name (else 400 Unexpected event type).",
    ),
]
MaxBody = Annotated[
    int,
    typer.Option(
        "--max-body",
        click_type=params.Size(),
        rich_help_panel=RECEIVER,
        show_default=False,
        help="Largest body accepted (bytes, or 512KiB, 1MiB); larger: 413 [default: 1MiB]",
    ),
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH",
        rich_help_panel=RECEIVER,
        show_default=False,
        help="The inbox database [default: inbox.sqlite3 in the user data dir]",
    ),
]
SharedDb = Annotated[
    bool,
    typer.Option(
        "--shared-db",
        rich_help_panel=RECEIVER,
        help="Share --db with other 'atwh serve' started with it (else the second refuses).",
    ),
]
Fsync = Annotated[
    bool,
    typer.Option(
        "--fsync/--no-fsync",
        rich_help_panel=RECEIVER,
        help="Flush every commit to disk (survives power loss, not only a crash of atwh).",
    ),
]
Respond = Annotated[
    int | None,
    typer.Option(
        "--respond",
        click_type=params.Number("CODE", min=100, max=599),
        rich_help_panel=SIMULATE,
        help="Answer every accepted event with CODE.",
    ),
]
FailEvery = Annotated[
    int | None,
    typer.Option(
        "--fail-every",
        click_type=params.Number("N", min=1),
        rich_help_panel=SIMULATE,
        help="Answer every Nth accepted event with 500.",
    ),
]
FailRate = Annotated[
    float | None,
    typer.Option(
        "--fail-rate",
        click_type=params.Number("P", whole=False, min=0.0, max=1.0),
        rich_help_panel=SIMULATE,
        help="Answer accepted events with 500 with probability P.",
    ),
]
Seed = Annotated[
    int | None,
    typer.Option(
        "--seed",
        metavar="N",
        rich_help_panel=SIMULATE,
        help="Seed for --fail-rate, for repeatable runs.",
    ),
]
Delay = Annotated[
    float | None,
    typer.Option(
        "--delay",
        click_type=params.Duration(),
        rich_help_panel=SIMULATE,
        help="Wait this long before every answer (e.g. 15s).",
    ),
]
ForwardTo = Annotated[
    str | None,
    typer.Option(
        "--forward-to",
        metavar="URL",
        rich_help_panel=FORWARD,
        help="Relay every accepted event to your app, retrying until it answers 2xx.",
    ),
]
ForwardUnsigned = Annotated[
    bool,
    typer.Option(
        "--forward-unsigned",
        rich_help_panel=FORWARD,
        help="With a secret, forward unsigned (test) requests too [default: only signed].",
    ),
]
ForwardSecret = Annotated[
    str | None,
    typer.Option(
        "--forward-secret",
        metavar="SECRET",
        rich_help_panel=FORWARD,
        help="Re-sign forwarded events with this secret [default: --secret]",
        show_default=False,
    ),
]
MaxConnections = Annotated[
    int,
    typer.Option(
        "--max-connections",
        metavar="N",
        rich_help_panel=RECEIVER,
        help="Connections open at once; over it, 503 (lowered to fit the open-file limit).",
    ),
]
RequestTimeout = Annotated[
    float,
    typer.Option(
        "--request-timeout",
        click_type=params.Duration(above=0),
        rich_help_panel=RECEIVER,
        show_default=False,
        help="Close a connection that has not sent a whole request within this [default: 30s]",
    ),
]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show each payload, pretty-printed.")
]
AsJson = Annotated[bool, typer.Option("--json", help="One NDJSON record per request on stdout.")]


def serve(
    ctx: typer.Context,
    host: o.Host = "127.0.0.1",
    port: Annotated[int, o.port_option("PORT")] = 8000,
    path: WebhookPath = "/webhook",
    secret: Secret = None,
    webhook: Webhook = None,
    tolerance: Tolerance = 120.0,
    events: Events = None,
    accept_any_event: AcceptAnyEvent = False,
    max_body: MaxBody = 1024 * 1024,
    db: Db = None,
    shared_db: SharedDb = False,
    fsync: Fsync = False,
    respond: Respond = None,
    fail_every: FailEvery = None,
    fail_rate: FailRate = None,
    seed: Seed = None,
    delay: Delay = None,
    forward_to: ForwardTo = None,
    forward_unsigned: ForwardUnsigned = False,
    forward_secret: ForwardSecret = None,
    max_connections: MaxConnections = 1000,
    request_timeout: RequestTimeout = 30.0,
    verbose: Verbose = False,
    as_json: AsJson = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> None:
    """Receive webhooks locally: answer like the vendor's endpoint, verify, keep everything.

    Every request is committed to the inbox before it is answered; a 2xx is never sent
    for an event that was not stored. See what arrived with 'atwh inbox'.

    Examples:

      atwh serve --port 8000 --secret "$SHARED_WEBHOOK_SECRET"

      atwh serve --webhook wh-history --forward-to http://localhost:3000/webhook

      atwh serve --fail-every 3 --delay 2s
    """
    from atwh.cli.context import after_ctrl_c, client_factory
    from atwh.client.secret import webhook_secret
    from atwh.core.durations import duration
    from atwh.output.serve import banner
    from atwh.output.show import plural
    from atwh.receiver.live import LiveView
    from atwh.receiver.serving import serve as receive
    from atwh.receiver.settings import Given, Limits, settings_from

    secret = o.checked_secret(secret)  # empty, or an environment variable set to nothing
    source = ctx.get_parameter_source("secret")
    given = Given(
        db, path, secret, webhook, source is not None and source.name == "COMMANDLINE",
        tolerance, events, accept_any_event, max_body, respond, fail_every, fail_rate, seed,
        delay, fsync, forward_to, forward_secret, forward_unsigned,
    )  # fmt: skip

    def read_secret(webhook_id: str) -> str:
        with client_factory(api_url, token, timeout)() as client:
            return webhook_secret(client, webhook_id)

    settings = settings_from(given, read_secret)
    limits = Limits(max_connections, request_timeout).check()

    def on_listening(url: str, cap: int) -> None:
        took = duration(request_timeout, exact=True)
        at_once = f"{plural(cap, 'connection')} at once, {took} to send a request"
        typer.echo(banner(settings, url, at_once), err=True)

    live = LiveView(as_json=as_json, verbose=verbose)
    served = receive(settings, host, port, limits, live, on_listening, shared_db)
    typer.echo(
        f"{after_ctrl_c(served.signals)}Stopped after {plural(served.answered, 'request')}; "
        f"inbox: {settings.db}",
        err=True,
    )
