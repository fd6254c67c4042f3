"""`atwh failures [WEBHOOK_ID ...]`: only what failed, grouped so the cause stands out."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.errors import ExitStatus

WebhookIds = Annotated[list[str] | None, o.webhook_ids_argument("Webhooks to check")]
ExitCode = Annotated[
    bool,
    typer.Option("--exit-code", help="Exit 1 when any failure is found (for cron and CI)."),
]


def failures(
    webhook_ids: WebhookIds = None,
    exit_code: ExitCode = False,
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
    from atwh.output.failures import list_failures
    from atwh.output.show import listing_filter, listing_mode

    mode = listing_mode(fmt, as_json, output)
    flt, given = listing_filter(since, until, event, status_code, True, limit)
    ids = webhook_ids_from(webhook_ids)
    make_client = client_factory(api_url, token, timeout)
    found = list_failures(ids, make_client, flt, given, mode, output, (limit, show_all), columns)
    return ExitStatus.FAILED if found and exit_code else ExitStatus.OK
