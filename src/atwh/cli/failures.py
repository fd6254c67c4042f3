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
    columns: o.Columns = None,
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

      atwh failures wh-history --format ndjson -o failures.ndjson
    """
    from atwh.cli.context import client_factory, webhook_ids_from
    from atwh.client.api import fetch_pages
    from atwh.client.failures import scan_failures
    from atwh.output.failures import say_none_failed, show_failures
    from atwh.output.progress import Progress
    from atwh.output.show import (
        export_pages,
        listing_filter,
        listing_mode,
        note,
        plural,
        rows_wanted,
    )

    mode = listing_mode(fmt, as_json, output)
    flt, given = listing_filter(since, until, event, status_code, True, limit)
    ids = webhook_ids_from(webhook_ids)
    make_client = client_factory(api_url, token, timeout)
    progress = Progress()
    hooks = plural(len(ids), "webhook")
    found_status = ExitStatus.FAILED if exit_code else ExitStatus.OK

    if mode not in ("table", "tsv"):
        pages = fetch_pages(ids, make_client, on_page=progress, since=flt.since)
        if not export_pages(pages, flt, mode, output, progress).written:
            note(f"No failed attempts in the deliveries of {hooks}")
            return ExitStatus.OK
        return found_status

    # each page read from its fields: the events' few numbers and the rows shown kept
    wanted = rows_wanted(mode, limit, show_all)
    try:
        pages = fetch_pages(ids, make_client, on_page=progress, since=flt.since)
        scan = scan_failures(pages, flt, wanted)
    finally:
        progress.stop()
    if not scan.rows:
        say_none_failed(scan, hooks, flt, given)
        return ExitStatus.OK
    show_failures(scan, hooks, len(ids) > 1, mode, output, columns)
    return found_status
