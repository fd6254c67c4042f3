"""`atwh reconcile WEBHOOK_ID`: what the provider's log says was delivered, against what the
endpoint stored."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params
from atwh.errors import ExitStatus

WebhookId = Annotated[
    str, typer.Argument(metavar="WEBHOOK_ID", click_type=params.WebhookId(), help="The webhook.")
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="INBOX",
        show_default=False,
        help="What was stored: an 'atwh serve' inbox.",
    ),
]
Stored = Annotated[
    str | None,
    typer.Option(
        "--stored",
        metavar="FILE",
        show_default=False,
        help="What was stored: event ids, one a line, a JSON array, or a CSV with "
        "an event_id or id column.",
    ),
]
Since = Annotated[
    str,
    typer.Option(
        "--since",
        metavar="WHEN",
        help="Compare the log from WHEN on (the log keeps 30 days).",
    ),
]
Replay = Annotated[
    bool,
    typer.Option("--replay", help="Send the lost and not-delivered events (as atwh replay)."),
]
Backfill = Annotated[
    bool,
    typer.Option(
        "--backfill",
        help="With --db: insert the lost events into the inbox from the log's payload, "
        "marked as backfilled.",
    ),
]


def reconcile(
    webhook_id: WebhookId,
    db: Db = None,
    stored: Stored = None,
    since: Since = "30d",
    replay: Replay = False,
    backfill: Backfill = False,
    to: o.To = None,
    secret: o.Secret = None,
    concurrency: o.Concurrency = 1,
    rate: o.Rate = None,
    yes: o.Yes = False,
    force: o.Force = False,
    ledger: o.LedgerPath = None,
    fmt: o.Format = None,
    as_json: o.Json = False,
    output: o.Output = None,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.RequestTimeout = 30.0,
) -> int:
    """Find events the endpoint lost: the provider's log joined with what was stored.

    lost: the log shows a 2xx, the store does not have it. not delivered: no attempt
    succeeded, not stored. unknown: stored, not in the log. duplicated: listed more than
    once in the --stored file. conflicting: the inbox holds two events under the id.
    Exit 1 when anything is lost or not delivered.

    Examples:

      atwh reconcile wh-history --db ~/.local/share/atwh/inbox.sqlite3

      atwh reconcile wh-history --stored event-ids.txt --since 7d --json

      atwh reconcile wh-history --db inbox.sqlite3 --replay
    """
    from pathlib import Path

    from atwh.cli import context
    from atwh.client.filters import parse_time
    from atwh.client.secret import webhook_secret
    from atwh.core.config import http_url
    from atwh.errors import UsageError
    from atwh.output.recover import show_reconciliation
    from atwh.output.show import listing_mode
    from atwh.recover import reconcile as rec
    from atwh.recover.replay import SKIPPED
    from atwh.recover.sending import Sending

    chosen = listing_mode(fmt, as_json, output)
    if chosen not in ("table", "tsv", "json"):
        raise UsageError(f"--format {chosen}: reconcile reports come as table or json")
    if backfill and db is None and stored is not None:
        raise UsageError("--backfill writes into an inbox: give --db")
    store = rec.stored_from(Path(db) if db else None, Path(stored) if stored else None)
    if store.skipped:
        from atwh.errors import printable

        context.warn(
            f"--stored {printable(stored, 200)}: skipped {store.skipped:,} of "
            f"{store.skipped + store.added:,} entries that do not look "
            "like event ids"
        )
    window = parse_time(since)
    target = http_url("--to", to) if to is not None else None

    with context.client_factory(api_url, token, timeout)() as client:
        with context.fetching() as on_page:
            found = rec.reconcile_webhook(
                client, webhook_id, store, window, replay, backfill, on_page
            )
        result, log = found.result, found.log
        candidates = rec.to_replay(result, log) if replay else []
        if candidates:
            target = target or context.webhook_url(found.webhook.url, webhook_id)
            if secret is None:
                secret = webhook_secret(client, webhook_id)
    if backfill and db is not None:
        added = rec.backfill_inbox(result, log, Path(db))
        typer.echo(f"Backfilled {added} lost events into {db} (marked backfilled).", err=True)
    report = None
    if replay:
        how = Sending(target or "", secret, f"webhook:{webhook_id}", concurrency, rate)
        how.timeout, how.yes, how.force, how.ledger = timeout, yes, force, ledger
        report = context.deliver(candidates, how, "nothing lost or not delivered")
    show_reconciliation(result, report, chosen, output)
    if report is None:
        return ExitStatus.FAILED if result.trouble else ExitStatus.OK
    if report.interrupted:
        return context.sent_status(report)
    # with --replay, what counts is whether every lost and undelivered event now got a 2xx
    fixed = report.all_fixed and not report.count(SKIPPED)
    return ExitStatus.OK if fixed else ExitStatus.FAILED
