"""`atwh inbox`: what `atwh serve` received, answered and forwarded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from atwh.cli import options as o
from atwh.cli import params

if TYPE_CHECKING:
    from atwh.receiver.inbox import Inbox, InboxRecord

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH",
        show_default=False,
        help="The inbox database [default: inbox.sqlite3 in the user data dir]",
    ),
]


def _secret(help: str) -> Any:
    """--secret, from the environment variables the vendor's example and `serve` read."""
    return typer.Option(
        "--secret",
        metavar="SECRET",
        envvar=o.SECRET_VARIABLES,
        show_default=False,
        help=help,
    )


AnswerCode = Annotated[
    list[str] | None,
    typer.Option(
        "--status-code",
        "-c",
        rich_help_panel=o.FILTERS,
        metavar="CODE",
        help="Only requests answered with these codes: 200, 4xx. Repeatable.",
    ),
]
NotAcked = Annotated[
    bool,
    typer.Option(
        "--failed",
        rich_help_panel=o.FILTERS,
        help="Only requests that were not acknowledged (answer not 2xx).",
    ),
]

app = typer.Typer(
    help="List what 'atwh serve' received: events, verdicts, answers, forwarding.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _open(db: str | None) -> Inbox:
    from pathlib import Path

    from atwh.errors import UsageError
    from atwh.receiver.inbox import Inbox, default_path

    if db is not None and not db.strip():
        raise UsageError("--db is empty: give the inbox's path, or leave --db out")
    return Inbox(Path(db) if db else default_path(), create=False)


Limit = Annotated[
    int | None,
    typer.Option(
        "--limit",
        "-n",
        click_type=params.Number("N"),
        rich_help_panel=o.FILTERS,
        help="At most N records, newest first [default: 50 in a table, all in an export]",
        show_default=False,
    ),
]


@app.callback(invoke_without_command=True)
def inbox(
    ctx: typer.Context,
    db: Db = None,
    since: o.ReceivedSince = None,
    until: o.ReceivedUntil = None,
    event: o.EventName = None,
    status_code: AnswerCode = None,
    failed: NotAcked = False,
    limit: Limit = None,
    show_all: o.All = False,
    fmt: o.Format = None,
    as_json: o.Json = False,
    output: o.Output = None,
) -> None:
    """List what 'atwh serve' received, newest first: verdict, event, answer, forwarding.

    Examples:

      atwh inbox --since 1h --event 'ticket.*'

      atwh inbox --failed --json | jq '.[].reason'

      atwh inbox show 42
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = db
        return
    from atwh.client.filters import select_newest
    from atwh.output.show import (
        listing_filter,
        listing_mode,
        note,
        rows_wanted,
        say_more,
        show_listing,
        why_empty,
        write_export,
    )
    from atwh.receiver.inbox import InboxRecord

    mode = listing_mode(fmt, as_json, output)
    flt, given = listing_filter(since, until, event, status_code, failed, limit)
    given["--failed"] = failed
    with _open(db) as store:
        path = store.path
        total = store.count()
        nothing = f"The inbox {path} is empty: nothing received yet (start 'atwh serve')"
        if mode not in ("table", "tsv"):
            written = write_export(
                flt.apply(store.records(newest_first=True)),
                mode,
                output,
                InboxRecord.CSV_COLUMNS,
                InboxRecord.csv_row,
            )
            if not written:
                note(why_empty("requests", "request", total, None, flt, given, nothing))
            return
        picked = select_newest(
            store.records(newest_first=True, bodies=False),  # a listing shows no payload
            flt,
            rows_wanted(mode, limit, show_all),
            count_all=True,  # a local file: every match counted, for the count line
        )
    if not picked.rows:
        note(why_empty("requests", "request", total, picked.newest_seen, flt, given, nothing))
        return
    more = picked.more
    if more is None and not flt.narrows():
        more = total - len(picked.rows)

    from rich.text import Text

    from atwh.output.tables import count_line, filters_given, inbox_columns

    head = Text(f"Inbox {path}\n", style="bold")
    matched = len(picked.rows) + more if more is not None else None
    asked = filters_given(given)
    head.append(
        count_line(total, len(picked.rows), matched, asked, "request", "requests"), style="dim"
    )
    show_listing(inbox_columns(), picked.rows, mode, output, head)
    say_more(len(picked.rows), more, "request", "requests")


ShowRecordId = Annotated[
    str,
    typer.Argument(
        metavar="ID", help="The inbox id (#), or an event id or a unique prefix of one."
    ),
]
ShowSecret = Annotated[
    str | None, _secret("Check which signature scheme the stored request matches.")
]


@app.command("show", cls=o.Command)
def show(
    ctx: typer.Context,
    record_id: ShowRecordId,
    db: Db = None,
    secret: ShowSecret = None,
    as_json: o.JsonOnly = False,
) -> None:
    """Show one stored request in full: headers, raw body, payload, verdict, answer, forwarding.

    Example:

      atwh inbox show 42 --secret "$SHARED_WEBHOOK_SECRET"
    """
    import json

    from atwh.errors import printable
    from atwh.output.show import print_rich

    secret = o.checked_secret(secret)
    record = _find(db or ctx.obj, record_id)
    if as_json:
        data = record.to_api()
        data["body"] = record.payload_text()
        if secret:
            data["verify"] = record.diagnose(secret).as_json()
        # the same JSON, with control characters escaped as JSON escapes them
        typer.echo(printable(json.dumps(data, ensure_ascii=False, indent=2), None, lines=True))
        return
    from atwh.output.tables import inbox_detail

    print_rich(inbox_detail(record, secret), None)


def _find(db: str | None, record_id: str) -> InboxRecord:
    """The stored request with this inbox id, or with an event id starting with it."""
    from atwh.client.prefix import resolve_prefix
    from atwh.errors import NotFoundError, printable

    with _open(db) as store:
        record = store.get(record_id) if record_id.isascii() and record_id.isdigit() else None
        if record is None:
            candidates = store.event_ids(record_id)
            if not candidates:
                raise NotFoundError(
                    f"ID {printable(record_id, 80)!r}: nothing in the inbox has that id, "
                    "or an event id starting with it"
                )
            record = store.get(resolve_prefix(record_id, candidates, "event", "ID"))
    if record is None:
        raise NotFoundError(f"ID {printable(record_id, 80)!r}: not in the inbox")
    return record


@app.command("verify", cls=o.Command)
def verify(
    ctx: typer.Context,
    record_id: Annotated[
        str,
        typer.Argument(
            metavar="ID", help="The inbox id (#), or an event id or a unique prefix of one."
        ),
    ],
    secret: Annotated[str | None, _secret("The webhook's shared secret.")] = None,
    db: Db = None,
    tolerance: o.Tolerance = 120.0,
    as_json: o.JsonOnly = False,
) -> int:
    """Check a stored request's signature as 'atwh verify' does, as at the moment it arrived.

    Exit 0 when valid, 1 when not, with the cause and the fix; the registration's test
    request, unsigned by design, is said to be one (exit 0).

    Example:

      atwh inbox verify 42 --secret "$SHARED_WEBHOOK_SECRET"
    """
    import json

    from atwh import signature
    from atwh.errors import ExitStatus, UsageError
    from atwh.output.endpoint import diagnosis_text

    if not secret or not secret.strip():
        raise UsageError(o.NO_SECRET)
    record = _find(db or ctx.obj, record_id)
    if record.verdict == "test":  # unsigned by design: nothing to verify, nothing wrong
        said = (
            "the registration's test request (unsigned, no event), which 'atwh serve' "
            "answered 200: there is no signature to verify"
        )
        test = {"id": record.id, "valid": None, "cause": None, "explanation": said}
        typer.echo(json.dumps({**test, "test": True}) if as_json else f"#{record.id}: {said}")
        return ExitStatus.OK
    diagnosis = record.diagnose(secret, tolerance)
    if as_json:
        typer.echo(json.dumps({"id": record.id, **diagnosis.as_json()}))
    else:
        typer.echo(f"#{record.id}: {diagnosis_text(diagnosis)}")
    typer.echo(f"Note: {signature.UNSIGNED_TIMESTAMP}", err=True)
    return ExitStatus.OK if diagnosis.valid else ExitStatus.FAILED


ReplayIds = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[ID]...",
        help="Inbox ids, or event ids (unique prefixes) [default: every stored request "
        "that matches the filters]",
        show_default=False,
    ),
]
ReplayTo = Annotated[
    str,
    typer.Option(
        "--to", metavar="URL", help="Where to send the stored requests.", show_default=False
    ),
]
ReplaySecret = Annotated[
    str | None, _secret("Re-sign each body with this secret [default: sent unsigned]")
]
ReplayIncludeUnverified = Annotated[
    bool,
    typer.Option(
        "--include-unverified",
        help="Also send requests 'atwh serve' stored without checking a signature (it ran "
        "without a secret): anyone could have sent them, and the replay signs them. "
        "Rejected requests are never sent.",
    ),
]
ReplayTimeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        click_type=params.Duration("SECONDS", min=0.1),
        show_default=False,
        help="How long to wait for each answer: seconds, or a duration (30s, 2m) [default: 30s]",
    ),
]


@app.command("replay")
def replay(
    ctx: typer.Context,
    ids: ReplayIds = None,
    to: ReplayTo = ...,  # type: ignore[assignment]
    secret: ReplaySecret = None,
    db: Db = None,
    since: o.ReceivedSince = None,
    until: o.ReceivedUntil = None,
    event: o.EventName = None,
    status_code: AnswerCode = None,
    failed: NotAcked = False,
    include_unverified: ReplayIncludeUnverified = False,
    concurrency: o.Concurrency = 1,
    rate: o.Rate = None,
    dry_run: o.DryRun = False,
    yes: o.Yes = False,
    force: o.Force = False,
    ledger: o.LedgerPath = None,
    save: o.Save = None,
    as_: o.As = None,
    fmt: o.Format = None,
    as_json: o.Json = False,
    output: o.Output = None,
    timeout: ReplayTimeout = 30.0,
) -> int:
    """Send requests stored by 'atwh serve' again: the raw body as it came, re-signed.

    Oldest first, once per event id; with --secret each body is signed afresh, without
    one it goes unsigned. Only requests whose signature 'atwh serve' verified are sent:
    a rejected one (bad signature, stale, unsigned) never is, since re-signing it would
    deliver a forgery validly signed. The same report, ledger and exit codes as
    'atwh replay'.

    Examples:

      atwh inbox replay --since 1h --to http://localhost:3000/webhook --secret s3cret

      atwh inbox replay 42 43 --to http://localhost:3000/webhook --dry-run
    """
    from collections import Counter

    from atwh.cli.context import check_as, send, split_ids, warn
    from atwh.client.filters import DeliveryFilter
    from atwh.core.config import http_url
    from atwh.errors import UsageError
    from atwh.output.show import listing_mode, plural
    from atwh.recover.selection import from_inbox
    from atwh.recover.sending import Sending

    chosen = listing_mode(fmt, as_json, output)
    if chosen == "csv":
        raise UsageError("--format csv: replay reports come as table, json or ndjson")
    flt = DeliveryFilter.from_options(since, until, event or [], status_code or [], failed)
    target = http_url("--to", to)
    secret = o.checked_secret(secret)
    check_as(as_)
    ids = split_ids(ids, "ID")
    with _open(db or ctx.obj) as store:  # open while sending: bodies are read one at a time
        path = store.path.resolve()
        passed: Counter[str] = Counter()
        candidates = from_inbox(
            store.records(bodies=False), flt, ids, include_unverified, passed, store
        )
        if include_unverified and any(c.unverified for c in candidates):
            warn(
                "--include-unverified: requests never verified are sent signed; "
                "anyone who reached 'atwh serve' could have written them"
            )
        if passed["rejected"]:
            warn(f"passed over {plural(passed['rejected'], 'rejected request')}: never replayed")
        if passed["unverified"]:
            warn(
                f"passed over {plural(passed['unverified'], 'unverified request')} "
                "('atwh serve' ran without a secret); --include-unverified sends them"
            )
        how = Sending(
            target, secret, f"inbox:{path}", concurrency, rate, timeout,
            dry_run, yes, force, ledger, save, as_,
        )  # fmt: skip
        return send(candidates, how, f"no stored request matches in {path}", chosen, output)
