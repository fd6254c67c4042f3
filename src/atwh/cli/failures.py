"""`atwh failures [WEBHOOK_ID ...]`: only what failed, grouped so the cause stands out."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.errors import ExitStatus


def failures(
    webhook_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="WEBHOOK_ID...",
            help="Webhooks to check [default: ATWH_WEBHOOK_ID, else the config file's 'webhooks']",
            show_default=False,
        ),
    ] = None,
    exit_code: Annotated[
        bool,
        typer.Option("--exit-code", help="Exit 1 when any failure is found (for cron and CI)."),
    ] = False,
    since: o.Since = None,
    until: o.Until = None,
    event: o.EventName = None,
    status_code: o.StatusCode = None,
    limit: o.Limit = None,
    show_all: o.All = False,
    fmt: o.Format = None,
    as_json: o.Json = False,
    output: o.Output = None,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> int:
    """Show failed delivery attempts, grouped by cause and event, with what recovered.

    A failed attempt got no answer, an HTTP code outside 2xx (3xx included), or status
    FAILED. The summary says, per cause and event, how many events later succeeded on a
    retry (recovered) and how many never did (still failing).

    Examples:

      atwh failures wh-history --since 7d

      atwh failures --since 1d --exit-code   (ids from ATWH_WEBHOOK_ID or the config file)

      atwh failures wh-history wh-other --format ndjson -o failures.ndjson
    """
    from atwh.cli.context import client_factory, webhook_ids_from
    from atwh.client.api import fetch_many, fetch_pages
    from atwh.client.failures import FailureSummary
    from atwh.client.filters import DeliveryFilter
    from atwh.output.progress import Progress
    from atwh.output.show import (
        export_pages,
        filtered,
        listing_filter,
        listing_mode,
        newest_first,
        note,
        plural,
        rows_wanted,
        say_more,
        show_listing,
        why_empty,
    )

    mode = listing_mode(fmt, as_json, output)
    flt, given = listing_filter(since, until, event, status_code, True, limit)
    ids = webhook_ids_from(webhook_ids)
    make_client = client_factory(api_url, token, timeout)
    progress = Progress()
    hooks = plural(len(ids), "webhook")

    if mode not in ("table", "tsv"):
        pages = fetch_pages(ids, make_client, on_page=progress, since=flt.since)
        found = export_pages(pages, flt, mode, output, progress).written
        if not found:
            note(f"No failed attempts in the deliveries of {hooks}")
        return ExitStatus.FAILED if exit_code and found else ExitStatus.OK

    stream = fetch_many(ids, make_client, on_page=progress, since=flt.since)
    summary = FailureSummary()
    failed = DeliveryFilter(flt.since, flt.until, flt.events, flt.status_codes, True)
    window = DeliveryFilter(flt.since, flt.until, flt.events, flt.status_codes)
    rows = []
    in_window = scanned = 0
    newest = None
    for d in filtered(stream, DeliveryFilter(), progress):
        scanned += 1
        if d.created is not None and (newest is None or d.created > newest):
            newest = d.created
        matched = failed.matches(d)
        in_window += matched or window.matches(d)
        summary.observe(d, matched)
        if matched:
            rows.append(d)

    still = summary.still_failing_events()
    where = f"{plural(in_window, 'delivery', 'deliveries')} of {hooks}"
    if not rows:
        if in_window:
            note(f"No failed attempts in {where}")
        else:
            note(
                why_empty(
                    "deliveries",
                    "delivery",
                    scanned,
                    newest,
                    flt,
                    given,
                    f"No deliveries on {hooks} (Allthings keeps them for 30 days)",
                )
            )
        return ExitStatus.OK

    from rich.text import Text

    from atwh.output.tables import delivery_columns, failures_table

    multi = len(ids) > 1
    wanted = rows_wanted(mode, limit, show_all)
    shown = newest_first(rows)[:wanted]
    headline = f"{plural(summary.failed, 'failed attempt')} in {where}"
    if mode == "tsv":
        note(f"{headline}; {plural(still, 'event')} still failing")
        show_listing(delivery_columns(multi), shown, mode)
        say_more(len(shown), len(rows) - len(shown), "failed attempt", "failed attempts")
        return ExitStatus.FAILED if exit_code else ExitStatus.OK

    from rich.console import Group

    head = Text()
    head.append(headline, style="bold red")
    head.append(f"; {plural(still, 'event')} still failing", style="red" if still else "green")
    count = f"{len(shown):,} of {len(rows):,}" if len(shown) < len(rows) else f"{len(shown):,}"
    title = Text(f"Failed attempts ({count} shown), newest first", style="bold")
    show_listing(
        delivery_columns(multi),
        shown,
        mode,
        output,
        Group(head, Text(), failures_table(summary.groups(), multi), Text(), title),
    )
    say_more(len(shown), len(rows) - len(shown), "failed attempt", "failed attempts")
    return ExitStatus.FAILED if exit_code else ExitStatus.OK
