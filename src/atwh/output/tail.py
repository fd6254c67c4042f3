"""`atwh tail` for people and programs: a line per attempt as it appears, aligned on a
terminal, tab-separated when piped, or NDJSON; and the idle status line on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from atwh.client.model import iso
from atwh.errors import printable
from atwh.observe.tail import Item
from atwh.output.export import _to_json
from atwh.output.tables import code_text, duration, response_summary, short_time, status_text

UPDATE = "(update) "


def ndjson_line(item: Item) -> str:
    """The delivery with the API's field names (as `deliveries --json`), and `update`."""
    data = item.delivery.to_api()
    data["update"] = item.update
    return _to_json(data) + "\n"


def tsv_line(item: Item, show_webhook: bool) -> str:
    """The columns of `deliveries`, untruncated and tab-separated, for cut, awk and grep."""
    d = item.delivery
    fields = [iso(d.created) or ""]
    if show_webhook:
        fields.append(d.webhook_id or "")
    fields += [
        (d.status or "?").upper(),
        str(d.status_code) if d.status_code is not None else "",
        d.event.name or "",
        d.event.id or "",
        d.id,
        duration(d.lag_seconds),
        (UPDATE if item.update else "") + response_summary(d),
    ]
    return "\t".join(printable(f, 2000).replace("\t", " ") for f in fields) + "\n"


class Rows:
    """Aligned rows with the columns of `deliveries`, the header once: every batch gets the
    same column widths, fixed from the terminal's width when the first batch is printed."""

    def __init__(self, console: Console, show_webhook: bool) -> None:
        self.console = console
        self.show_webhook = show_webhook
        self.header = True
        width = console.width
        self.with_ids = width >= 100 + (16 if show_webhook else 0)
        fixed = 14 + 7 + 4 + 6 + (14 if show_webhook else 0)
        columns = 6 + show_webhook + self.with_ids
        room = max(width - fixed - 2 * (columns - 1), 26)
        self.delivery_w = min(36, max(8, room // 3)) if self.with_ids else 0
        self.event_w = min(60, max(14, (room - self.delivery_w) * 45 // 100))
        self.response_w = max(12, room - self.delivery_w - self.event_w)

    def _column(self, table: Table, name: str, width: int, right: bool = False) -> None:
        table.add_column(
            name,
            no_wrap=True,
            overflow="ellipsis",
            min_width=width,
            max_width=width,
            justify="right" if right else "left",
        )

    def print(self, items: Sequence[Item]) -> None:
        if not items:
            return
        now = datetime.now(UTC)
        table = Table(box=None, header_style="bold", pad_edge=False, show_header=self.header)
        self._column(table, "Created", 14)
        if self.show_webhook:
            self._column(table, "Webhook", 14)
        self._column(table, "Status", 7)
        self._column(table, "Code", 4, right=True)
        self._column(table, "Event", self.event_w)
        if self.with_ids:
            self._column(table, "Delivery", self.delivery_w)
        self._column(table, "Lag", 6, right=True)
        self._column(table, "Response", self.response_w)
        for item in items:
            d = item.delivery
            event = Text(printable(d.event.name or "?", 60))
            event.append(f" {printable(d.event.id or '', 40)}", style="dim")
            row: list[Text | str] = [Text(short_time(d.created, now))]
            if self.show_webhook:
                row.append(Text(printable(d.webhook_id or "", 40)))
            row += [status_text(d), code_text(d.status_code), event]
            if self.with_ids:
                row.append(Text(printable(d.id, 60), style="dim"))
            row.append(duration(d.lag_seconds))
            response = Text(UPDATE, style="cyan") if item.update else Text()
            response.append(response_summary(d))
            row.append(response)
            table.add_row(*row)
        self.console.print(table)
        self.header = False


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
