"""`atwh tail` for people and programs: a line per attempt as it appears, aligned on a
terminal, tab-separated when piped, or NDJSON; and the idle status line on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import IO, TypeVar

from rich.console import Console
from rich.text import Text

from atwh.client.model import Delivery
from atwh.errors import ExitStatus
from atwh.observe.tail import Follower, Item
from atwh.output.export import _to_json
from atwh.output.listing import ALWAYS, Column, Listing, fit, write_tsv
from atwh.output.tables import console, delivery_columns, response_summary, status_text

UPDATE = "(update) "
T = TypeVar("T")


def ndjson_line(item: Item) -> str:
    """The delivery with the API's field names (as `deliveries --json`), and `update`."""
    data = item.delivery.to_api()
    data["update"] = item.update
    return _to_json(data) + "\n"


def item_columns(show_webhook: bool, now: datetime | None = None) -> list[Column[Item]]:
    """The columns of `deliveries` (its TSV columns, in its order), then `update` (true for
    an attempt printed again with a later status), only when piped. On a terminal the
    age is left out (rows come as they happen), so the time is what is never dropped; the
    webhook (when several are followed) is shortened before it goes; an update is marked
    `↻` beside its status, and says so in its response, which is kept longer than in
    `deliveries`: it is what a person watches for."""
    columns: list[Column[Item]] = []
    for c in delivery_columns(show_webhook, now):
        if c.header == "Age":
            continue
        response = c.header == "Response"
        keep, shrink = {
            "Created": (ALWAYS - 1, None),  # only too wide for the ids at 60 columns
            "Webhook": (90, 8),
            "Event": (c.keep, 8),
            "Response": (45, c.shrink),
        }.get(c.header, (c.keep, c.shrink))
        cell = _item_response if response else _item_status if c.header == "Status" else None
        columns.append(
            Column(
                c.header,
                cell or _of_item(c.cell),
                keep=keep,
                shrink=shrink,
                tsv=_of_item(c.tsv or c.cell),
                justify=c.justify,
                style=c.style,
                greedy=c.greedy or c.header == "Webhook",
                name=c.name,
            )
        )
    columns.append(Column("Update", lambda i: "", tsv=lambda i: i.update))
    return columns


def _of_item(f: Callable[[Delivery], T]) -> Callable[[Item], T]:
    return lambda item: f(item.delivery)


def _item_status(item: Item) -> Text:
    text = status_text(item.delivery)
    if item.update:
        text.append(" ↻", style="cyan")
    return text


def _item_response(item: Item) -> Text:
    text = Text(UPDATE, style="cyan") if item.update else Text()
    text.append(response_summary(item.delivery))
    return text


def write_items(items: Sequence[Item], show_webhook: bool, stream: IO[str], header: bool) -> None:
    """The items as `deliveries`' TSV lines (and `update`), the header line first if asked."""
    write_tsv(item_columns(show_webhook), items, stream, header)


class Rows:
    """Rows with the columns of `deliveries` as attempts come, fitted to the terminal as
    its tables are (ids whole, columns dropped by importance). The columns whose widths are
    known in advance (time, status and its update mark, code, lag) are as wide as they can
    ever be from the first row, so rows stay aligned under one header; it is printed again
    only when a longer id than any before widens a column."""

    def __init__(self, console: Console, show_webhook: bool) -> None:
        self.console = console
        self.show_webhook = show_webhook
        self.naturals: list[int] | None = None
        self.widths: list[int] | None = None

    def print(self, items: Sequence[Item]) -> None:
        if not items:
            return
        columns = [c for c in item_columns(self.show_webhook) if c.header != "Update"]
        listing = Listing(columns, items)
        naturals = [
            REST if c.header == "Response" else max(n, AT_MOST.get(c.header, 0))
            for c, n in zip(columns, listing.naturals(), strict=True)
        ]
        if self.naturals is not None:
            naturals = [max(a, b) for a, b in zip(naturals, self.naturals, strict=True)]
        widths = fit(naturals, columns, self.console.width)
        changed = widths != self.widths
        self.naturals, self.widths = naturals, widths
        self.console.print(listing.render(widths, show_header=changed))


# The widest a cell of these columns gets: a time of this year, a status with the update
# mark, an HTTP code, a duration (`output.tables.duration`); the event names Allthings
# documents
AT_MOST = {
    "Created": 14,
    "Status": len("PENDING ↻"),
    "Code": 4,
    "Lag": 7,
    "Event": len("community-article.published"),
}
REST = 10_000  # the natural width of a column that may be shortened: it takes what is left


class StatusLine:
    """One line on stderr, rewritten in place, only when stderr is a terminal: when tail
    last polled. Cleared before anything else is written."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.shown = False

    def show(self, polled: datetime, watching: str) -> None:
        if not self.enabled:
            return
        import shutil

        clock = polled.astimezone().strftime("%H:%M:%S")
        line = f"last polled {clock} · {watching} · Ctrl-C to stop"
        width = shutil.get_terminal_size().columns - 1  # a line that wraps cannot be rewritten
        if len(line) > width:
            line = line[: max(width - 1, 0)] + "…"
        self.stream.write(f"\r\x1b[2K{line}")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.shown = False

    def say(self, message: str) -> None:
        self.clear()
        stamp = time.strftime("%H:%M:%S")
        self.stream.write(f"{stamp} {message}\n")
        self.stream.flush()


def follow(
    follower: Follower, ids: Sequence[str], mode: str, interval: float, exit_on_failure: bool
) -> int:
    """`atwh tail`'s run: each poll's attempts printed as `mode` says (table, tsv or
    ndjson), the status line between polls, until Ctrl-C (exit 0) or, with
    `exit_on_failure`, the first failed attempt (exit 1)."""
    status = StatusLine()
    multi = len(ids) > 1
    stdout = sys.stdout
    rows = None
    if mode == "table":
        rows = Rows(console(), multi)
    watching = f"following {len(ids)} webhooks" if multi else f"following {ids[0]}"
    outcome = {"code": ExitStatus.OK, "lines": 0}

    def emit(items: list[Item]) -> bool:
        failed_at = None
        if exit_on_failure:  # what came up to the first failed attempt, that one included
            failed_at = next((n for n, i in enumerate(items) if i.delivery.failed), None)
            if failed_at is not None:
                items = items[: failed_at + 1]
        if items:
            status.clear()
        if rows is not None:
            rows.print(items)
        elif mode == "ndjson":
            for item in items:
                stdout.write(ndjson_line(item))
            stdout.flush()
        elif items:  # piped: the TSV lines of `deliveries`, the header before the first
            write_items(items, multi, stdout, header=not outcome["lines"])
            outcome["lines"] += len(items)
        if failed_at is not None:
            outcome["code"] = ExitStatus.FAILED
            return True
        return False

    try:
        follower.follow(
            emit,
            status.say,
            interval=interval,
            polled=lambda when: status.show(when, watching),
        )
    except KeyboardInterrupt:
        status.clear()
        return ExitStatus.OK
    return outcome["code"]
