"""`atwh failures [WEBHOOK_ID ...]`: only what failed, grouped so the cause stands out."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from atwh.cli import options as o


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
    failed: o.Failed = False,  # always on here: failures lists nothing else
    limit: o.Limit = None,
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

      atwh failures 5f3a… --since 7d

      atwh failures --since 1d --exit-code   (ids from ATWH_WEBHOOK_ID or the config file)

      atwh failures 5f3a… 8c1d… --format ndjson -o failures.ndjson
    """
    from atwh.cli.output import Progress, client_factory, filtered, print_rich, write_export
    from atwh.client.api import fetch_many
    from atwh.client.failures import FailureSummary
    from atwh.client.filters import DeliveryFilter
    from atwh.output.export import resolve_format

    chosen = resolve_format(fmt, as_json, output)
    flt = DeliveryFilter.from_options(since, until, event or [], status_code or [], True, limit)
    ids = _webhook_ids(webhook_ids or [])
    make_client = client_factory(api_url, token, timeout)
    progress = Progress()
    stream = fetch_many(ids, make_client, on_page=progress)

    if chosen != "table":
        found = write_export(filtered(stream, flt, progress), chosen, output)
        return 1 if exit_code and found else 0

    summary = FailureSummary()
    window = DeliveryFilter(flt.since, flt.until, flt.events, flt.status_codes, True)
    rows = []
    for d in filtered(stream, DeliveryFilter(), progress):
        matched = window.matches(d)
        summary.observe(d, matched)
        if matched:
            rows.append(d)

    from rich.console import Group
    from rich.text import Text

    from atwh.cli.output import newest_first
    from atwh.output.tables import deliveries_table, failures_table

    groups = summary.groups()
    shown = newest_first(rows)[: limit or None]
    multi = len(ids) > 1
    still = summary.still_failing_events()
    head = Text()
    head.append(f"{summary.failed} failed attempts", style="bold red" if rows else "bold green")
    head.append(f" in {progress.fetched} deliveries of {len(ids)} webhook{'s' * multi}")
    if rows:
        head.append(
            f"; {still} event{'s' * (still != 1)} still failing", style="red" if still else "green"
        )
    parts: list[object] = [head]
    if rows:
        parts += [
            Text(),
            failures_table(groups, multi),
            Text(),
            Text(f"Failed attempts ({len(shown)} shown), newest first", style="bold"),
            deliveries_table(shown, multi),
        ]
    print_rich(Group(*parts), output)  # type: ignore[arg-type]
    return 1 if exit_code and rows else 0


def _webhook_ids(given: list[str]) -> list[str]:
    from atwh.client.config import load_config
    from atwh.errors import UsageError

    ids = [i.strip() for i in given if i.strip()]
    if not ids:
        ids = [i.strip() for i in os.environ.get("ATWH_WEBHOOK_ID", "").split(",") if i.strip()]
    if not ids:
        config = load_config()
        ids = config.webhooks
        if not ids:
            raise UsageError(
                "no webhook id: give one or more, set ATWH_WEBHOOK_ID (comma-separated), "
                f"or list them as webhooks = [...] in {config.path}"
            )
    return list(dict.fromkeys(ids))
