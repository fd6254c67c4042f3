"""`atwh serve`: a local receiver that answers like the vendor's endpoint and keeps everything."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o

RECEIVER = "Receiver"
SIMULATE = "Simulated failures"
FORWARD = "Forwarding"


def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port",
            "-p",
            envvar="PORT",
            click_type=o.Number("PORT", min=0, max=65535),
            help="Port to listen on (0: any free one).",
        ),
    ] = 8000,
    path: Annotated[
        str, typer.Option("--path", metavar="PATH", help="Where webhooks are POSTed.")
    ] = "/webhook",
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            metavar="SECRET",
            envvar=["ALLTHINGS_WEBHOOK_SECRET", "SHARED_WEBHOOK_SECRET"],
            rich_help_panel=RECEIVER,
            show_default=False,
            help="The webhook's shared secret: verify every signed request.",
        ),
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            metavar="WEBHOOK_ID",
            rich_help_panel=RECEIVER,
            help="Read the secret of this webhook from the API (webhook.secret).",
        ),
    ] = None,
    tolerance: Annotated[
        str,
        typer.Option(
            "--tolerance",
            metavar="DURATION",
            rich_help_panel=RECEIVER,
            help="Oldest signature timestamp accepted (30s of clock skew ahead is allowed too).",
        ),
    ] = "2m",
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            metavar="A,B",
            rich_help_panel=RECEIVER,
            help="Event names accepted besides ticket.created and ticket.updated.",
        ),
    ] = None,
    accept_any_event: Annotated[
        bool,
        typer.Option(
            "--accept-any-event",
            rich_help_panel=RECEIVER,
            help="Accept every event name (else 400 Unexpected event type).",
        ),
    ] = False,
    max_body: Annotated[
        str,
        typer.Option(
            "--max-body",
            metavar="SIZE",
            rich_help_panel=RECEIVER,
            help="Largest body accepted (bytes, or 512KiB, 1MiB); larger: 413.",
        ),
    ] = "1MiB",
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="PATH",
            rich_help_panel=RECEIVER,
            show_default=False,
            help="The inbox database [default: inbox.sqlite3 in the user data dir]",
        ),
    ] = None,
    shared_db: Annotated[
        bool,
        typer.Option(
            "--shared-db",
            rich_help_panel=RECEIVER,
            help="Share --db with other 'atwh serve' started with it (else the second refuses).",
        ),
    ] = False,
    fsync: Annotated[
        bool,
        typer.Option(
            "--fsync/--no-fsync",
            rich_help_panel=RECEIVER,
            help="Flush every commit to disk (survives power loss, not only a crash of atwh).",
        ),
    ] = False,
    respond: Annotated[
        int | None,
        typer.Option(
            "--respond",
            click_type=o.Number("CODE", min=100, max=599),
            rich_help_panel=SIMULATE,
            help="Answer every accepted event with CODE.",
        ),
    ] = None,
    fail_every: Annotated[
        int | None,
        typer.Option(
            "--fail-every",
            click_type=o.Number("N", min=1),
            rich_help_panel=SIMULATE,
            help="Answer every Nth accepted event with 500.",
        ),
    ] = None,
    fail_rate: Annotated[
        float | None,
        typer.Option(
            "--fail-rate",
            click_type=o.Number("P", whole=False, min=0.0, max=1.0),
            rich_help_panel=SIMULATE,
            help="Answer accepted events with 500 with probability P.",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            metavar="N",
            rich_help_panel=SIMULATE,
            help="Seed for --fail-rate, for repeatable runs.",
        ),
    ] = None,
    delay: Annotated[
        str | None,
        typer.Option(
            "--delay",
            metavar="DURATION",
            rich_help_panel=SIMULATE,
            help="Wait this long before every answer (e.g. 15s).",
        ),
    ] = None,
    forward_to: Annotated[
        str | None,
        typer.Option(
            "--forward-to",
            metavar="URL",
            rich_help_panel=FORWARD,
            help="Relay every accepted event to your app, retrying until it answers 2xx.",
        ),
    ] = None,
    forward_unsigned: Annotated[
        bool,
        typer.Option(
            "--forward-unsigned",
            rich_help_panel=FORWARD,
            help="With a secret, forward unsigned (test) requests too [default: only signed].",
        ),
    ] = False,
    forward_secret: Annotated[
        str | None,
        typer.Option(
            "--forward-secret",
            metavar="SECRET",
            rich_help_panel=FORWARD,
            help="Re-sign forwarded events with this secret [default: --secret]",
            show_default=False,
        ),
    ] = None,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            metavar="N",
            rich_help_panel=RECEIVER,
            help="Connections open at once; over it, 503 (lowered to fit the open-file limit).",
        ),
    ] = 1000,
    request_timeout: Annotated[
        str,
        typer.Option(
            "--request-timeout",
            metavar="DURATION",
            rich_help_panel=RECEIVER,
            help="Close a connection that has not sent a whole request within this.",
        ),
    ] = "30s",
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show each payload, pretty-printed.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One NDJSON record per request on stdout.")
    ] = False,
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
    from pathlib import Path

    from atwh import server
    from atwh.cli.output import http_url, plural
    from atwh.errors import UsageError, printable
    from atwh.receiver import ReceiverSettings, create_app
    from atwh.receiver.forward import loops_back
    from atwh.receiver.inbox import Inbox, check_is_inbox, default_path
    from atwh.receiver.live import LiveView
    from atwh.receiver.lock import InboxLock
    from atwh.receiver.settings import DEFAULT_EVENTS

    if not path.startswith("/"):
        raise UsageError(f"--path {path!r} must start with /")
    secret = o.checked_secret(secret)
    if webhook is not None and secret is not None:
        source = ctx.get_parameter_source("secret")
        if source is not None and source.name == "COMMANDLINE":
            raise UsageError("give --secret or --webhook, not both")
    if forward_unsigned and not forward_to:
        raise UsageError("--forward-unsigned needs --forward-to")
    if webhook is not None:
        secret = _secret_of(webhook, api_url, token, timeout)
    if forward_secret and not secret:
        raise UsageError(
            "--forward-secret needs a secret to verify with (--secret or --webhook)",
            hint="without one, forwards keep their own signature and timestamp",
        )
    names = [n.strip() for n in (events or "").split(",") if n.strip()]
    settings = ReceiverSettings(
        db=Path(db) if db else default_path(),
        path=path,
        secret=secret or None,
        tolerance=seconds("--tolerance", tolerance),
        events=frozenset((*DEFAULT_EVENTS, *names)),
        accept_any_event=accept_any_event,
        max_body=parse_size(max_body),
        respond=respond,
        fail_every=fail_every,
        fail_rate=fail_rate or None,
        seed=seed,
        delay=seconds("--delay", delay) if delay else 0.0,
        synchronous="FULL" if fsync else "NORMAL",
        forward_to=http_url("--forward-to", forward_to) if forward_to else None,
        forward_secret=forward_secret,
        forward_unsigned=forward_unsigned,
    )
    limits = {
        "request_timeout": seconds("--request-timeout", request_timeout),
        "max_connections": max_connections,
    }
    if max_connections < 1:
        raise UsageError(f"--max-connections {max_connections}: give 1 or more")
    if limits["request_timeout"] <= 0:
        raise UsageError(f"--request-timeout {request_timeout!r}: give a duration above 0")
    sock = server.listen(host, port)  # before the inbox: a bad port creates no files
    try:
        if settings.forward_to and loops_back(settings.forward_to, sock.getsockname()):
            raise UsageError(
                f"--forward-to {printable(settings.forward_to, 200)} is this receiver's own "
                "address: every event would come round again"
            )
        check_is_inbox(settings.db)  # another program's file: refused before the lock
        lock = InboxLock(settings.db, shared=shared_db)  # held until this process ends
        ctx.call_on_close(lock.release)
        Inbox(settings.db).close()  # fail now, in one line, if the inbox cannot be opened
    except BaseException:
        sock.close()
        raise
    live = LiveView(as_json=as_json, verbose=verbose)
    app = create_app(settings, on_request=live.request, on_notice=live.notice)
    cap = server.connection_cap(max_connections)
    limit_line = f"{plural(cap, 'connection')} at once, {request_timeout} to send a request"
    with server.signals_held():  # Ctrl-C from the banner on stops it, with the summary
        _banner(settings, server.url_of(sock, path), names, limit_line)
        try:
            signals = server.run(app, sock, **limits)
        finally:
            live.flush()
    typer.echo(
        f"{after_ctrl_c(signals)}Stopped after {plural(app.answered, 'request')}; "
        f"inbox: {settings.db}",
        err=True,
    )


def after_ctrl_c(signals: list[int] | None) -> str:
    """A line break after the `^C` a terminal echoes, so the summary starts a line."""
    import signal
    import sys

    return "\n" if signal.SIGINT in (signals or ()) and sys.stderr.isatty() else ""


def ordinal(n: int) -> str:
    """3rd, 11th, 22nd: as the banner says `every 3rd event`."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def seconds(flag: str, text: str) -> float:
    """A duration option (90s, 2m, 1h30m) in seconds, or one usage line."""
    from atwh.client.filters import parse_duration
    from atwh.errors import UsageError

    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give a duration such as 90s, 2m or 1h") from None


def parse_size(text: str) -> int:
    import re

    from atwh.errors import UsageError

    units = {
        "": 1,
        "b": 1,
        "k": 1000,
        "kb": 1000,
        "kib": 1024,
        "m": 1000**2,
        "mb": 1000**2,
        "mib": 1024**2,
    }
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in units:
        raise UsageError(f"--max-body {text!r}: give bytes, or a size such as 512KiB or 1MiB")
    size = int(float(match.group(1)) * units[match.group(2).lower()])
    if size < 1:
        raise UsageError("--max-body must be at least 1 byte")
    return size


def _secret_of(webhook_id: str, api_url: str | None, token: str | None, timeout: float) -> str:
    from atwh.cli.output import client_factory
    from atwh.client.secret import webhook_secret

    with client_factory(api_url, token, timeout)() as client:
        return webhook_secret(client, webhook_id)


def _banner(settings: object, url: str, extra_events: list[str], limits: str | None = None) -> None:
    from atwh.receiver import ReceiverSettings

    assert isinstance(settings, ReceiverSettings)
    s = settings
    lines = [f"atwh serve: POST webhooks to {url}"]
    if s.secret:
        lines.append(f"  verifying: HMAC-SHA256 signatures, timestamps within {s.tolerance:g}s")
    else:
        lines.append(
            "  NOT verifying: no secret given (--secret, ALLTHINGS_WEBHOOK_SECRET, "
            "SHARED_WEBHOOK_SECRET or --webhook); signed requests are accepted "
            "as unverified"
        )
    accepted = "every event name" if s.accept_any_event else ", ".join(sorted(s.events))
    lines.append(f"  accepting: {accepted}")
    lines.append(
        f"  inbox:     {s.db}" + (" (fsync on every commit)" if s.synchronous == "FULL" else "")
    )
    if s.forward_to:
        what = "every accepted request" if s.forward_unsigned or not s.secret else "signed events"
        lines.append(f"  forwarding {what} to {s.forward_to}")
    simulated = []
    if s.respond:
        simulated.append(f"answering {s.respond}")
    if s.fail_every:
        every = "every event" if s.fail_every == 1 else f"every {ordinal(s.fail_every)} event"
        simulated.append(f"500 for {every}")
    if s.fail_rate:
        simulated.append(f"500 with probability {s.fail_rate:g}")
    if s.delay:
        simulated.append(f"{s.delay:g}s delay")
    if simulated:
        lines.append("  simulating: " + ", ".join(simulated))
    if limits:
        lines.append(f"  limits:    {limits}")
    lines.append("  health:    GET /health; stop with Ctrl-C")
    typer.echo("\n".join(lines), err=True)
