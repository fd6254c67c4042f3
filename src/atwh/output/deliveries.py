"""`atwh deliveries` for people and programs: one webhook's attempts, the newest in a
table (or TSV) under the webhook's header, all of them in an export, or one in full."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from atwh.errors import NotFoundError, printable

if TYPE_CHECKING:
    from datetime import datetime

    from atwh.client.api import ApiClient, Page
    from atwh.client.filters import DeliveryFilter, Newest
    from atwh.client.model import Delivery, DeliveryRow, Webhook


def show_delivery(
    make_client: Callable[[], ApiClient],
    webhook_id: str,
    delivery_id: str,
    mode: str,
    output: str | None,
) -> None:
    """`atwh deliveries --id`: the one delivery whose id starts so, in full (a table for
    TSV too), with its retries."""
    from atwh.client.filters import DeliveryFilter
    from atwh.output.progress import Progress
    from atwh.output.show import filtered

    progress = Progress()
    with make_client() as client:
        stream = client.deliveries(webhook_id, on_page=progress)
        everything = list(filtered(stream, DeliveryFilter(), progress))
        _show_one(delivery_id, everything, "table" if mode == "tsv" else mode, output)


def list_deliveries(
    make_client: Callable[[], ApiClient],
    webhook_id: str,
    flt: DeliveryFilter,
    given: dict[str, Any],
    mode: str,
    output: str | None,
    limit_all: tuple[int | None, bool],
    columns: str | None,
) -> None:
    """`atwh deliveries`'s run: the attempts that match, exported whole in `mode` (json,
    ndjson, csv), or the newest (`limit_all`: --limit and --all) in a table or TSV; when
    none match, one line on stderr that says why."""
    from atwh.client.filters import Newest, newest_of
    from atwh.client.model import delivery_of_row, detached_pair
    from atwh.output.progress import Progress
    from atwh.output.show import export_pages, note, rows_wanted

    progress = Progress()
    pages: list[Page] = []

    def on_page(page: Page) -> None:
        progress(page)
        if not pages:
            pages.append(page)

    with make_client() as client:
        if mode not in ("table", "tsv"):
            each = _each(client.pages(webhook_id, since=flt.since), on_page)
            done = export_pages(each, flt, mode, output, progress)
            if done.written == 0:
                note(_why_empty(webhook_id, flt, given, done.scanned, done.newest))
            return
        try:
            found = newest_of(
                _matching(_each(client.pages(webhook_id, since=flt.since), on_page), flt),
                rows_wanted(mode, *limit_all),
                keep=detached_pair,
            )
        finally:
            progress.stop()
    # a Delivery for each row shown, not for each read
    picked = Newest(
        [delivery_of_row(f, w) for f, w in found.rows],
        found.more,
        found.complete,
        found.scanned,
        found.newest_seen,
    )
    if not picked.rows:
        note(_why_empty(webhook_id, flt, given, picked.scanned, picked.newest_seen))
        return
    webhook = pages[0].webhook if pages else None
    _show_listing(picked, webhook, flt, given, mode, output, columns)


def _why_empty(
    webhook_id: str,
    flt: DeliveryFilter,
    given: dict[str, Any],
    scanned: int,
    newest: datetime | None,
) -> str:
    from atwh.output.show import why_empty

    nothing = (
        f"No deliveries on webhook {printable(webhook_id, 80)} (Allthings keeps them for 30 days)"
    )
    return why_empty("deliveries", "delivery", scanned, newest, flt, given, nothing)


def _show_listing(
    picked: Newest[Delivery],
    webhook: Webhook | None,
    flt: DeliveryFilter,
    given: dict[str, Any],
    mode: str,
    output: str | None,
    columns: str | None,
) -> None:
    """The newest deliveries picked, under the webhook's header (how many match, of how
    many), in the columns asked for, and how many more match."""
    from atwh.output.listing import choose
    from atwh.output.show import say_more, show_listing
    from atwh.output.tables import count_line, delivery_columns, filters_given, webhook_header

    more = picked.more
    if more is None and not flt.narrows() and webhook and webhook.total_count is not None:
        more = max(webhook.total_count - len(picked.rows), 0)  # every delivery matches
    total = webhook.total_count if webhook and webhook.total_count is not None else None
    matched = len(picked.rows) + more if more is not None else None
    count = count_line(
        total, len(picked.rows), matched, filters_given(given), "delivery", "deliveries"
    )
    head = webhook_header(webhook, total, len(picked.rows), count)
    show_listing(choose(delivery_columns(), columns), picked.rows, mode, output, head)
    say_more(len(picked.rows), more, "delivery", "deliveries")


def _each(pages: Iterable[Page], on_page: Callable[[Page], None]) -> Iterator[Page]:
    for page in pages:
        on_page(page)
        yield page


def _matching(
    pages: Iterable[Page], flt: DeliveryFilter
) -> Iterator[tuple[datetime | None, bool, tuple[DeliveryRow, str | None]]]:
    """Each delivery of these pages as newest_of() takes it, read from its fields (a
    Delivery is made only for the rows kept)."""
    from atwh.client.filters import DeliveryFilter
    from atwh.client.model import is_failure

    matches = DeliveryFilter(
        flt.since, flt.until, flt.events, flt.status_codes, flt.failed_only
    ).matches_values
    for page in pages:
        webhook_id = page.webhook_id
        for f in page.rows():
            created = f.created
            matched = matches(
                is_failure(f.status, f.status_code, f.answered),
                created,
                f.event_name,
                f.status_code,
            )
            yield created, matched, (f, webhook_id)


def _show_one(delivery_id: str, fetched: list[Delivery], fmt: str, output: str | None) -> None:
    import json

    from atwh.client.model import attempts_of
    from atwh.client.prefix import resolve_prefix
    from atwh.output.export import open_output
    from atwh.output.show import print_rich, write_export

    if not fetched:
        raise NotFoundError(
            f"--id {printable(delivery_id, 80)!r}: this webhook has no deliveries",
            hint="Allthings keeps deliveries for 30 days",
        )
    wanted = resolve_prefix(delivery_id, (d.id for d in fetched), "delivery", "--id")
    match = next(d for d in fetched if d.id == wanted)
    if fmt == "json":
        with open_output(output) as stream:
            stream.write(json.dumps(match.to_api(), ensure_ascii=False, indent=2) + "\n")
    elif fmt != "table":
        write_export([match], fmt, output)
    else:
        from atwh.output.tables import delivery_detail

        print_rich(delivery_detail(match, attempts_of(match, fetched)), output)
