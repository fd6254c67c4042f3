"""How the commands show what they found: listings (a rich table on a terminal, TSV in a
pipe), exports (JSON, NDJSON, CSV), and the lines on stderr that say what a listing left
out or why it is empty."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atwh.errors import UsageError

if TYPE_CHECKING:
    from datetime import datetime

    from atwh.client.api import Page
    from atwh.client.filters import DeliveryFilter
    from atwh.client.model import Delivery, DeliveryRow
    from atwh.output.progress import Progress


def write_export(
    records: Iterable[Any],
    fmt: str,
    output: str | None,
    columns: Sequence[str] | None = None,
    row: Callable[[Any], list[object]] | None = None,
) -> int:
    """Stream deliveries (or other records) to stdout or FILE as json, ndjson or csv;
    how many were written."""
    from atwh.output.export import CSV_COLUMNS, Exporter, csv_row, open_output

    with open_output(output) as stream:
        exporter = Exporter(fmt, stream, columns or CSV_COLUMNS, row or csv_row)
        for d in records:
            exporter.write(d)
        exporter.close()
    return exporter.count


@dataclass(slots=True)
class Exported:
    """What export_pages wrote, and what it read: for the line saying why none matched."""

    written: int = 0
    scanned: int = 0
    newest: datetime | None = None


def export_pages(
    pages: Iterable[Page],
    flt: DeliveryFilter,
    fmt: str,
    output: str | None,
    progress: Progress | None = None,
) -> Exported:
    """Stream the deliveries of these pages that match `flt` (at most `flt.limit`) to stdout
    or FILE as json, ndjson or csv, in the order given.

    Rows and records are written from each page's DeliveryRows (Page.rows) without making a
    Delivery: an export of 100,000 deliveries spends most of its time here
    (bench/export_bench.py)."""
    from atwh.client.model import api_record
    from atwh.output.export import CSV_COLUMNS, Exporter, csv_row_of, open_output

    done = Exported()
    limit = flt.limit
    if limit is not None and limit <= 0:
        pages = ()
    matches = flt.matches_values
    try:
        with open_output(output) as stream:
            exporter = Exporter(fmt, stream, CSV_COLUMNS)
            for page in pages:
                webhook_id = page.webhook_id
                matched: list[tuple[DeliveryRow, bool]] = []  # and whether it failed
                newest = done.newest
                for row in page.rows():
                    created = row.created
                    if created is not None and (newest is None or created > newest):
                        newest = created
                    failed = row.failed
                    if matches(failed, created, row.event_name, row.status_code):
                        matched.append((row, failed))
                done.newest = newest
                done.scanned += page.size
                if limit is not None:
                    matched = matched[: limit - exporter.count]
                if fmt == "csv":
                    exporter.write_rows([csv_row_of(r, webhook_id, x) for r, x in matched])
                else:
                    exporter.write_records(
                        [api_record(r, webhook_id, encoded=True) for r, _ in matched]
                    )
                if limit is not None and exporter.count >= limit:
                    break
            exporter.close()
            done.written = exporter.count
    finally:
        if progress is not None:
            progress.stop()
    return done


def newest_first(deliveries: Iterable[Delivery]) -> list[Delivery]:
    from datetime import UTC, datetime

    floor = datetime.min.replace(tzinfo=UTC)
    return sorted(deliveries, key=lambda d: d.created or floor, reverse=True)


def print_rich(renderable: object, output: str | None) -> None:
    """A table or panel to stdout, or plain into FILE."""
    from atwh.output.export import open_output
    from atwh.output.tables import console

    if output is None or output == "-":
        console().print(renderable)
        return
    with open_output(output) as stream:
        console(stream).print(renderable)


def filtered(
    stream: Iterable[Delivery], flt: DeliveryFilter, progress: Progress
) -> Iterator[Delivery]:
    try:
        yield from flt.apply(stream)
    finally:
        progress.stop()


# -- listings: a rich table on a terminal, TSV in a pipe, and what was left out --------------
#
# A listing command, in full (columns: a list of atwh.output.listing.Column, most
# important ones with keep=ALWAYS; see output/tables.py for deliveries, failures, inbox):
#
#     mode = listing_mode(fmt, as_json, output)        # table, tsv, json, ndjson or csv
#     if mode not in ("table", "tsv"):
#         write_export(records, mode, output, ...)     # exports: never cut to 50
#         return
#     picked = select_newest(records, flt, rows_wanted(mode, limit, show_all))
#     if not picked.rows:
#         note(why_empty(...))                          # one line on stderr, exit 0
#         return
#     show_listing(columns, picked.rows, mode, output, head)
#     say_more(len(picked.rows), picked.more, "delivery", "deliveries")

DEFAULT_ROWS = 50  # rows a table shows without --limit or --all


def listing_filter(
    since: str | None,
    until: str | None,
    event: list[str] | None,
    status_code: list[str] | None,
    failed: bool,
    limit: int | None,
) -> tuple[DeliveryFilter, dict[str, Any]]:
    """The filter the options ask for, and the options as given (option → value), which
    `why_empty` quotes back when nothing matches."""
    from atwh.client.filters import DeliveryFilter

    flt = DeliveryFilter.from_options(since, until, event or [], status_code or [], failed, limit)
    given = {"--since": since, "--until": until, "--event": event, "--status-code": status_code}
    return flt, given


def listing_mode(fmt: str | None, as_json: bool, output: str | None) -> str:
    """`table` (rich), `tsv` (stdout is not a terminal and no --format or --output asked for
    anything), or an export format: json, ndjson, csv."""
    from atwh.output.export import resolve_format

    chosen = resolve_format(fmt, as_json, output)
    if chosen == "table" and fmt is None and output in (None, "-") and not sys.stdout.isatty():
        return "tsv"
    return chosen


def table_or_json(fmt: str | None, as_json: bool, command: str, output: str | None = None) -> str:
    """`listing_mode` for a command that prints a table or JSON only: table, tsv or json."""
    mode = listing_mode(fmt, as_json, output)
    if mode not in ("table", "tsv", "json"):
        raise UsageError(f"--format {mode}: {command} prints a table or json")
    return mode


def rows_wanted(mode: str, limit: int | None, show_all: bool) -> int | None:
    """How many rows to show: --limit, else everything with --all or in an export, else
    DEFAULT_ROWS in a table (on a terminal or piped as TSV)."""
    if limit is not None and show_all:
        raise UsageError(f"--limit {limit} and --all disagree: give one of them")
    if limit is not None:
        return limit
    if show_all or mode not in ("table", "tsv"):
        return None
    return DEFAULT_ROWS


def show_listing(
    columns: Sequence[Any],
    rows: Sequence[Any],
    mode: str,
    output: str | None = None,
    head: object | None = None,
) -> None:
    """The rows as TSV (mode `tsv`) or as a rich table that fits the terminal, with `head`
    above it (a rich renderable; not in TSV, which is data only)."""
    if mode == "tsv":
        from atwh.output.listing import write_tsv

        write_tsv(columns, rows, sys.stdout)
        return
    from rich.console import Group

    from atwh.output.listing import table

    body = table(columns, rows)
    print_rich(Group(head, body) if head is not None else body, output)  # type: ignore[arg-type]


def note(message: str) -> None:
    """One line on stderr that is not an error: what a listing left out, why it is empty."""
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)


def say_more(shown: int, more: int | None, one: str, many: str) -> None:
    """`50 of 1,234 deliveries shown (--limit N or --all for more)`, when rows were left out;
    `one` and `many` name one row and several (`delivery`, `deliveries`)."""
    if more == 0:
        return
    if more is None:
        newest = f"The newest {one}" if shown == 1 else f"The newest {shown:,} {many}"
        note(f"{newest} shown; more match (--limit N or --all for more)")
    else:
        note(f"{shown:,} of {shown + more:,} {many} shown (--limit N or --all for more)")


def plural(n: int, one: str, many: str | None = None) -> str:
    """`1 delivery`, `2 deliveries`, `0 events`, `100,000 requests`."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def why_empty(
    what: str,
    one: str,
    scanned: int,
    newest: datetime | None,
    flt: DeliveryFilter,
    given: dict[str, Any],
    nothing_at_all: str,
) -> str:
    """The one line that says a listing is empty and the likely reason.

    `what` names the records (`deliveries`), `one` one of them (`delivery`), `scanned`
    how many were read, `newest` the newest date among them, `given` the filter options as
    the user typed them (option → value), `nothing_at_all` what to say when there was
    nothing to filter.
    """
    from datetime import UTC
    from datetime import datetime as dt

    from atwh.errors import printable
    from atwh.output.tables import age, when

    now = dt.now(UTC)
    since = given.get("--since")
    if flt.since is not None and flt.since > now:
        return (
            f"No {what}: --since {printable(since, 60)!r} is in the future ({when(flt.since, now)})"
        )
    if scanned == 0:
        return nothing_at_all
    for pattern in given.get("--event") or []:
        for name in pattern.split(","):
            name = name.strip()
            if name and not any(ch in name for ch in "*?["):
                guess = name + ("*" if name.endswith(".") else ".*")
                return (
                    f"No {what} match --event {printable(name, 60)!r} "
                    f"(names are matched whole; did you mean {printable(guess, 60)!r}?)"
                )
    if flt.since is not None and newest is not None and newest < flt.since:
        return (
            f"No {what} since {when(flt.since, now)} (--since {printable(since, 60)}): "
            f"the newest is from {when(newest, now)}, {age(newest, now)}"
        )
    asked = " ".join(
        option if value is True else f"{option} {_shown_values(value)}"
        for option, value in given.items()
        if value
    )
    checked = plural(scanned, one, what)
    if not asked:
        return f"No {what} in the {checked} read"
    return f"No {what} match {asked} (checked {checked})"


def _shown_values(value: Any) -> str:
    from atwh.errors import printable

    values = value if isinstance(value, list) else [value]
    return " ".join(repr(printable(v, 60)) for v in values)
