"""`atwh deliveries WEBHOOK_ID`: every delivery attempt of one webhook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from atwh.cli import options as o

if TYPE_CHECKING:
    from atwh.client.api import Page
    from atwh.client.model import Delivery


def deliveries(
    webhook_id: Annotated[
        str, typer.Argument(metavar="WEBHOOK_ID", help="The webhook whose deliveries to show.")
    ],
    delivery_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            metavar="DELIVERY_ID",
            help="Show one delivery in full: answer, headers, body, event, retries.",
        ),
    ] = None,
    since: o.Since = None,
    until: o.Until = None,
    event: o.EventName = None,
    status_code: o.StatusCode = None,
    failed: o.Failed = False,
    limit: o.Limit = None,
    fmt: o.Format = None,
    as_json: o.Json = False,
    output: o.Output = None,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> None:
    """List the delivery attempts of a webhook, newest first: when, answer, event, response.

    Examples:

      atwh deliveries 5f3a… --since 2h --failed

      atwh deliveries 5f3a… --event 'ticket.*' --format csv -o deliveries.csv

      atwh deliveries 5f3a… --id 6b21…
    """
    from atwh.cli.output import (
        Progress,
        client_factory,
        filtered,
        newest_first,
        print_rich,
        write_export,
    )
    from atwh.client.filters import DeliveryFilter
    from atwh.output.export import resolve_format

    chosen = resolve_format(fmt, as_json, output)
    flt = DeliveryFilter.from_options(since, until, event or [], status_code or [], failed, limit)
    progress = Progress()
    pages: list[Page] = []

    def on_page(page: Page) -> None:
        progress(page)
        if not pages:
            pages.append(page)

    with client_factory(api_url, token, timeout)() as client:
        stream = client.deliveries(webhook_id, on_page=on_page)
        if delivery_id is not None:
            everything = list(filtered(stream, DeliveryFilter(), progress))
            _show_one(delivery_id, everything, chosen, output)
            return
        if chosen != "table":
            write_export(filtered(stream, flt, progress), chosen, output)
            return
        rows = newest_first(filtered(stream, flt, progress))

    from rich.console import Group

    from atwh.output.tables import deliveries_table, webhook_header

    webhook = pages[0].webhook if pages else None
    total = webhook.total_count if webhook and webhook.total_count is not None else progress.fetched
    print_rich(
        Group(webhook_header(webhook, total, len(rows), "deliveries"), deliveries_table(rows)),
        output,
    )


def _show_one(delivery_id: str, fetched: list[Delivery], fmt: str, output: str | None) -> None:
    import json

    from atwh.cli.output import print_rich, write_export
    from atwh.client.model import attempts_of
    from atwh.errors import NotFoundError, printable
    from atwh.output.export import open_output

    match = next((d for d in fetched if d.id == delivery_id), None)
    if match is None:
        raise NotFoundError(
            f"no delivery {printable(delivery_id, 80)} on this webhook",
            hint="deliveries are kept for 30 days",
        )
    if fmt == "json":
        with open_output(output) as stream:
            stream.write(json.dumps(match.to_api(), ensure_ascii=False, indent=2) + "\n")
    elif fmt != "table":
        write_export([match], fmt, output)
    else:
        from atwh.output.tables import delivery_detail

        print_rich(delivery_detail(match, attempts_of(match, fetched)), output)
