"""`atwh failures` for people: the headline, the groups by cause and event, the failed
attempts newest first; piped, the attempts as TSV under a headline on stderr."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from atwh.output.show import note, plural, say_more, show_listing, why_empty

if TYPE_CHECKING:
    from atwh.client.api import ApiClient
    from atwh.client.failures import FailureScan
    from atwh.client.filters import DeliveryFilter


def list_failures(
    ids: list[str],
    make_client: Callable[[], ApiClient],
    flt: DeliveryFilter,
    given: dict[str, Any],
    mode: str,
    output: str | None,
    limit_all: tuple[int | None, bool],
    columns: str | None,
) -> bool:
    """`atwh failures`'s run: the failed attempts of the webhooks' logs, exported in `mode`
    (json, ndjson, csv) or grouped in a table (or TSV) of the newest (`limit_all`: --limit
    and --all); whether any was found."""
    from atwh.client.api import fetch_pages
    from atwh.client.failures import scan_failures
    from atwh.output.progress import Progress
    from atwh.output.show import export_pages, rows_wanted

    progress = Progress()
    hooks = plural(len(ids), "webhook")
    if mode not in ("table", "tsv"):
        pages = fetch_pages(ids, make_client, on_page=progress, since=flt.since)
        if not export_pages(pages, flt, mode, output, progress).written:
            note(f"No failed attempts in the deliveries of {hooks}")
            return False
        return True

    # each page read from its fields: the events' few numbers and the rows shown kept
    wanted = rows_wanted(mode, *limit_all)
    try:
        pages = fetch_pages(ids, make_client, on_page=progress, since=flt.since)
        scan = scan_failures(pages, flt, wanted)
    finally:
        progress.stop()
    if not scan.rows:
        say_none_failed(scan, hooks, flt, given)
        return False
    show_failures(scan, hooks, len(ids) > 1, mode, output, columns)
    return True


def say_none_failed(
    scan: FailureScan, hooks: str, flt: DeliveryFilter, given: dict[str, Any]
) -> None:
    """The one line on stderr when no failed attempt matched, and the likely reason."""
    if scan.in_window:
        note(f"No failed attempts in {_where(scan, hooks)}")
        return
    nothing = f"No deliveries on {hooks} (Allthings keeps them for 30 days)"
    note(why_empty("deliveries", "delivery", scan.scanned, scan.newest, flt, given, nothing))


def show_failures(
    scan: FailureScan,
    hooks: str,
    multi: bool,
    mode: str,
    output: str | None,
    columns: str | None = None,
) -> None:
    """The failed attempts (the newest, as many as the scan kept, in the `columns` asked
    for), as a table
    under the summary by cause and event (and why a `no answer` says no more), or as TSV
    (`mode` tsv) under a headline on stderr; then what was left out."""
    from rich.console import Group
    from rich.text import Text

    from atwh.output.listing import choose
    from atwh.output.tables import delivery_columns, failures_table, no_answer_note, wrapped

    shown = scan.rows  # the newest, newest first
    matched = scan.matched
    still = scan.summary.still_failing_events()
    headline = f"{plural(scan.summary.failed, 'failed attempt')} in {_where(scan, hooks)}"
    listed = choose(delivery_columns(multi), columns)
    if mode == "tsv":
        note(wrapped(f"{headline}; {plural(still, 'event')} still failing"))
        show_listing(listed, shown, mode)
    else:
        head = Text()
        head.append(headline, style="bold red")
        head.append(f"; {plural(still, 'event')} still failing", style="red" if still else "green")
        count = f"{len(shown):,} of {matched:,}" if len(shown) < matched else f"{len(shown):,}"
        title = Text(f"Failed attempts ({count} shown), newest first", style="bold")
        groups = scan.summary.groups()
        why = no_answer_note(groups)
        summary: list[Any] = [failures_table(groups, multi), *([why] if why else []), Text()]
        view = Group(head, Text(), *summary, title)
        show_listing(listed, shown, mode, output, view)
    say_more(len(shown), matched - len(shown), "failed attempt", "failed attempts")


def _where(scan: FailureScan, hooks: str) -> str:
    return f"{plural(scan.in_window, 'delivery', 'deliveries')} of {hooks}"
