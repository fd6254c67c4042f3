"""`atwh deliveries WEBHOOK_ID`: every delivery attempt of one webhook."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params

WebhookId = Annotated[
    str,
    typer.Argument(
        metavar="WEBHOOK_ID",
        click_type=params.WebhookId(),
        help="The webhook whose deliveries to show.",
    ),
]
DeliveryId = Annotated[
    str | None,
    typer.Option(
        "--id",
        metavar="DELIVERY_ID",
        help="Show one delivery in full (answer, headers, body, event, retries); "
        "a unique prefix of its id is enough.",
    ),
]


def deliveries(
    webhook_id: WebhookId,
    delivery_id: DeliveryId = None,
    since: o.Since = None,
    until: o.Until = None,
    event: o.EventName = None,
    status_code: o.StatusCode = None,
    failed: o.Failed = False,
    limit: o.Limit = None,
    show_all: o.All = False,
    columns: o.Columns = None,
    fmt: o.Format = None,
    as_json: o.Json = False,
    output: o.Output = None,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> None:
    """List the delivery attempts of a webhook, newest first: when, answer, event, response.

    Examples:

      atwh deliveries wh-history --since 2h --failed

      atwh deliveries wh-history --event 'ticket.*' --format csv -o deliveries.csv

      atwh deliveries wh-history --id 3f2a
    """
    from atwh.cli.context import client_factory
    from atwh.errors import UsageError
    from atwh.output.deliveries import list_deliveries, show_delivery
    from atwh.output.show import listing_filter, listing_mode

    mode = listing_mode(fmt, as_json, output)
    flt, given = listing_filter(since, until, event, status_code, failed, limit)
    given["--failed"] = failed
    if delivery_id is not None:
        ignored = [o for o, v in {**given, "--limit": limit, "--all": show_all}.items() if v]
        if ignored:
            raise UsageError(
                f"--id shows one delivery: {', '.join(ignored)} would do nothing with it"
            )
    make_client = client_factory(api_url, token, timeout)
    if delivery_id is None:
        list_deliveries(
            make_client, webhook_id, flt, given, mode, output, (limit, show_all), columns
        )
    else:
        show_delivery(make_client, webhook_id, delivery_id, mode, output)
