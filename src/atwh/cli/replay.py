"""`atwh replay WEBHOOK_ID`: re-send failed events, signed as Allthings signs them."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from atwh.cli import options as o

if TYPE_CHECKING:
    from datetime import datetime

    from atwh.client.api import ApiClient
    from atwh.client.model import Webhook
    from atwh.recover.replay import Report
    from atwh.recover.selection import Candidate, EventLog

SEND = "Sending"

To = Annotated[
    str | None,
    typer.Option(
        "--to",
        metavar="URL",
        rich_help_panel=SEND,
        show_default=False,
        help="Send here instead of the webhook's own URL.",
    ),
]
Secret = Annotated[
    str | None,
    typer.Option(
        "--secret",
        metavar="SECRET",
        rich_help_panel=SEND,
        show_default=False,
        help="Sign with this secret [default: the webhook's, read from the API]",
    ),
]
Concurrency = Annotated[
    int,
    typer.Option(
        "--concurrency",
        click_type=o.Number("N", min=1, max=256),
        rich_help_panel=SEND,
        help="Requests in flight at once (1 keeps the order strictly).",
    ),
]
Rate = Annotated[
    str | None,
    typer.Option(
        "--rate",
        metavar="N/s",
        rich_help_panel=SEND,
        show_default=False,
        help="At most N requests a second (N/s, or N/m a minute).",
    ),
]
RequestTimeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        envvar="ATWH_TIMEOUT",
        click_type=o.Number("SECONDS", whole=False, min=0.1),
        help="Seconds to wait for each answer, of the API and of each event sent.",
    ),
]
DryRun = Annotated[
    bool,
    typer.Option("--dry-run", rich_help_panel=SEND, help="List what would be sent; send nothing."),
]
Yes = Annotated[
    bool,
    typer.Option(
        "--yes",
        "-y",
        rich_help_panel=SEND,
        help="Send more than 20 events to a host other than loopback without asking.",
    ),
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        rich_help_panel=SEND,
        help="Send events the ledger says were already replayed with a 2xx.",
    ),
]
LedgerPath = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        metavar="PATH",
        show_default=False,
        help="The replay ledger [default: replays.sqlite3 in the user data dir]",
    ),
]
Save = Annotated[
    str | None,
    typer.Option(
        "--save",
        metavar="DIR",
        rich_help_panel=SEND,
        show_default=False,
        help="Write each request (body, headers) into DIR instead of sending it.",
    ),
]
As = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="curl",
        rich_help_panel=SEND,
        show_default=False,
        help="Print each request as a curl command instead of sending it.",
    ),
]
IdList = Annotated[
    list[str] | None,
    typer.Option(
        "--delivery",
        metavar="ID",
        rich_help_panel=o.FILTERS,
        help="Send the events of these deliveries (unique prefixes). Repeatable.",
    ),
]


def replay(
    webhook_id: Annotated[
        str | None,
        typer.Argument(metavar="WEBHOOK_ID", help="The webhook whose events to re-send."),
    ] = None,
    delivery: IdList = None,
    event_id: Annotated[
        list[str] | None,
        typer.Option(
            "--event-id",
            metavar="ID",
            rich_help_panel=o.FILTERS,
            help="Send these events (ids or unique prefixes). Repeatable.",
        ),
    ] = None,
    since: o.Since = None,
    until: o.Until = None,
    event: o.EventName = None,
    status_code: o.StatusCode = None,
    all_failed: Annotated[
        bool,
        typer.Option(
            "--all-failed",
            rich_help_panel=o.FILTERS,
            help="Every event with a failed attempt, even if a retry succeeded.",
        ),
    ] = False,
    everything: Annotated[
        bool,
        typer.Option("--all", rich_help_panel=o.FILTERS, help="Every event in the window."),
    ] = False,
    to: To = None,
    secret: Secret = None,
    concurrency: Concurrency = 1,
    rate: Rate = None,
    dry_run: DryRun = False,
    yes: Yes = False,
    force: Force = False,
    ledger: LedgerPath = None,
    history: Annotated[
        bool, typer.Option("--history", help="List past replays from the ledger, newest first.")
    ] = False,
    save: Save = None,
    as_: As = None,
    fmt: o.Format = None,
    as_json: o.Json = False,
    output: o.Output = None,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: RequestTimeout = 30.0,
) -> int:
    """Re-send a webhook's failed events, signed as Allthings signs them, oldest first.

    By default the events whose latest attempt failed and that never succeeded later
    (still failing) in the window; --all-failed every event with a failed attempt; --all
    every event. Each event is sent once, with its payload exactly as the log keeps it.
    Exit 0 when every event sent was answered 2xx, 1 otherwise.

    Examples:

      atwh replay 5f3a0c7e2b1d --since 2d --dry-run

      atwh replay 5f3a0c7e2b1d --since 2d --concurrency 4 --rate 20/s

      atwh replay 5f3a0c7e2b1d --event-id 9b1e --to http://localhost:3000/webhook --secret s3cret

      atwh replay --history
    """
    from atwh.cli.output import listing_mode
    from atwh.client.filters import DeliveryFilter
    from atwh.errors import UsageError, printable

    chosen = listing_mode(fmt, as_json, output)
    if chosen == "csv":
        raise UsageError("--format csv: replay reports come as table, json or ndjson")
    if history:
        return _history(ledger, chosen, output)
    if not webhook_id:
        raise UsageError("give the WEBHOOK_ID whose events to replay (or --history)")
    if all_failed and everything:
        raise UsageError("--all-failed and --all disagree: give one of them")
    if (delivery or event_id) and (all_failed or everything):
        raise UsageError(
            "--delivery and --event-id pick events themselves: drop --all/--all-failed"
        )
    mode = "all" if everything else "failed" if all_failed else "failing"
    flt = DeliveryFilter.from_options(since, until, event or [], status_code or [])
    per_second = parse_rate(rate)
    target = _target(to)
    _check_as(as_)
    delivery_ids, event_ids = _split(delivery, "--delivery"), _split(event_id, "--event-id")

    from atwh.cli.output import client_factory
    from atwh.client.secret import webhook_secret
    from atwh.recover.webhook import log_since

    # the ids may be anywhere in the log; --all-failed looks at every attempt of an event
    # (one may fail before the window), the other modes only at the newest ones
    reach = None if delivery or event_id else log_since(flt.since, mode == "failed")
    with client_factory(api_url, token, timeout)() as client:
        webhook, log = fetch(client, webhook_id, reach)
        candidates = log.select(flt, mode, delivery_ids, event_ids)
        target = target or _webhook_url(webhook.url, webhook_id)
        if webhook.enabled is False and to is None:
            from atwh.cli.output import warn

            warn(f"webhook {printable(webhook_id, 80)} is disabled: Allthings sends it nothing")
        need_secret = not dry_run and secret is None
        if need_secret:
            secret = webhook_secret(client, webhook_id)
    how = Sending(
        target, secret, f"webhook:{webhook_id}", concurrency, per_second, timeout,
        dry_run, yes, force, ledger, save, as_,
    )  # fmt: skip
    return send(candidates, how, _nothing_hint(mode, since, len(log)), chosen, output)


def fetch(
    client: ApiClient, webhook_id: str, since: datetime | None = None
) -> tuple[Webhook, EventLog]:
    """The webhook and its log (from `since` on, at least: see `fetch_log`), with a
    progress bar on a terminal while it comes."""
    from atwh.cli.output import Progress
    from atwh.recover.webhook import fetch_log

    progress = Progress()
    try:
        return fetch_log(client, webhook_id, progress, since)
    finally:
        progress.stop()


@dataclass(slots=True)
class Sending:
    """How to send: what `replay`, `inbox replay` and `reconcile --replay` were told."""

    target: str
    secret: str | None
    source: str  # the ledger's name for where the events come from
    concurrency: int = 1
    rate: float | None = None
    timeout: float = 30.0
    dry_run: bool = False
    yes: bool = False
    force: bool = False
    ledger: str | None = None
    save: str | None = None
    as_: str | None = None


def send(
    candidates: list[Candidate], how: Sending, nothing: str, fmt: str, output: str | None
) -> int:
    """What `replay` and `inbox replay` share once the events are chosen: sending (see
    `deliver`), then the report; the exit code."""
    report = deliver(candidates, how, nothing)
    if report is None:
        return 0
    code = _show(report, fmt, output)
    return _interrupted() if report.interrupted else code


def _interrupted() -> int:
    typer.echo("Interrupted: stopped sending; the report above is complete.", err=True)
    return 130


def deliver(candidates: list[Candidate], how: Sending, nothing: str) -> Report | None:
    """The ledger, dry run, fixtures, confirmation, sending: the report, or None when
    nothing was to be sent (or it was written down instead, with --save or --as curl)."""
    from pathlib import Path

    from atwh import __version__
    from atwh.cli.output import warn
    from atwh.recover import fixtures
    from atwh.recover.ledger import Ledger
    from atwh.recover.replay import ReplayOptions, needs_confirmation, skip_replayed
    from atwh.recover.replay import dry_run as plan
    from atwh.recover.replay import replay as run

    if not candidates:
        typer.echo(f"Nothing to replay: {nothing}", err=True)
        return None
    with Ledger(Path(how.ledger) if how.ledger else None) as book:
        if not how.force:
            skip_replayed(candidates, book, how.source, how.target)
        if how.save is not None:
            written = fixtures.save(candidates, how.target, how.secret, Path(how.save))
            typer.echo(
                f"Wrote {len(written) // 2:,} requests into {how.save} (nothing sent).", err=True
            )
            return None
        if how.as_ is not None:
            for command in fixtures.curl_commands(candidates, how.target, how.secret):
                typer.echo(command)
            typer.echo(
                "Note: each command carries a timestamp from now; the receiver rejects it once "
                "older than its tolerance (2 minutes by default). A body over 64 KiB is "
                "written into the current directory (atwh-curl-*.body) and read from there.",
                err=True,
            )
            return None
        if how.dry_run:
            return plan(candidates, how.target)
        to_send = sum(c.skip is None for c in candidates)
        if to_send and needs_confirmation(how.target, to_send) and not how.yes:
            if not _confirm(to_send, how.target):
                typer.echo("Nothing sent.", err=True)
                return None
        if to_send and not how.secret:
            warn("no secret: the events go out unsigned")
        opts = ReplayOptions(
            target=how.target,
            secret=how.secret,
            concurrency=how.concurrency,
            rate=how.rate,
            timeout=how.timeout,
            user_agent=f"atwh/{__version__} (replay)",
        )
        on_outcome = _progress_line if sys.stderr.isatty() else None
        return run(candidates, opts, book, how.source, on_outcome)


def _show(report: Report, fmt: str, output: str | None) -> int:
    from atwh.cli.output import show_listing, write_export
    from atwh.output.recover import replay_columns, totals_line

    if fmt in ("table", "tsv"):
        show_listing(replay_columns(sent=not report.dry_run), report.outcomes, fmt, output)
    else:
        write_export(report.outcomes, fmt, output)
    typer.echo(totals_line(report), err=True)
    return 0 if report.all_fixed else 1


def _progress_line(outcome: object) -> None:
    from atwh.errors import printable
    from atwh.recover.replay import Outcome

    assert isinstance(outcome, Outcome)
    c = outcome.candidate
    code = outcome.code if outcome.code is not None else "—"
    typer.echo(
        f"{outcome.result:<13} {code} {printable(c.event_name or '?', 40)} "
        f"{printable(c.event_id or c.key, 40)}",
        err=True,
    )


def _on_terminal() -> bool:
    """Whether someone at a terminal can answer a question."""
    from atwh.cli.webhooks import interactive

    return interactive()


def _confirm(count: int, target: str) -> bool:
    from atwh.errors import UsageError, printable

    where = printable(target, 200)
    if not _on_terminal():
        raise UsageError(
            f"about to send {count:,} events to {where}, not a loopback host",
            hint="confirm with --yes",
        )
    return typer.confirm(f"Send {count:,} events to {where}?", default=False, err=True)


def _history(ledger: str | None, fmt: str, output: str | None) -> int:
    from pathlib import Path

    from atwh.cli.output import show_listing, write_export
    from atwh.recover.ledger import Ledger, default_path

    path = Path(ledger) if ledger else default_path()
    if not path.exists():
        typer.echo(f"No replays yet: no ledger at {path}.", err=True)
        return 0
    with Ledger(path, create=False) as book:
        runs = book.history()
    if not runs:
        typer.echo(f"No replays yet in {path}.", err=True)
        return 0
    if fmt in ("table", "tsv"):
        from atwh.output.recover import history_columns

        show_listing(history_columns(), runs, fmt, output)
    else:
        write_export(runs, fmt, output)
    return 0


def parse_rate(text: str | None) -> float | None:
    """`10/s`, `10` (a second) or `600/m`; None without --rate."""
    import re

    from atwh.errors import UsageError

    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*([sm]))?\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"--rate {text!r}: give requests a second (10/s) or a minute (600/m)")
    per = 60.0 if match.group(2) == "m" else 1.0
    return float(match.group(1)) / per


def _target(to: str | None) -> str | None:
    from atwh.cli.output import http_url

    return http_url("--to", to) if to is not None else None


def _webhook_url(url: str | None, webhook_id: str) -> str:
    from atwh.cli.output import http_url
    from atwh.errors import UsageError, printable

    if not url:
        raise UsageError(
            f"the API gives no URL for webhook {printable(webhook_id, 80)}",
            hint="say where with --to URL",
        )
    return http_url("the webhook's URL", url)


def _check_as(as_: str | None) -> None:
    from atwh.errors import UsageError

    if as_ is not None and as_ != "curl":
        raise UsageError(f"--as {as_!r}: the one form is 'curl'")


def _split(values: list[str] | None, option: str) -> list[str]:
    from atwh.recover.selection import given_ids

    return given_ids(values, option)


def _nothing_hint(mode: str, since: str | None, events: int) -> str:
    if not events:
        return "the webhook has no deliveries" + (f" since {since}" if since else "")
    what = {
        "failing": "no event is still failing",
        "failed": "no event has a failed attempt",
        "all": "no event",
    }[mode]
    return f"{what} in the window ({events} events read; --all-failed or --all take more)"
