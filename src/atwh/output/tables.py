"""Deliveries for people: rich tables and panels on stdout."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import IO

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from atwh.client.failures import FailureGroup
from atwh.client.model import Delivery, Webhook
from atwh.errors import printable
from atwh.receiver.inbox import InboxRecord


def console(file: IO[str] | None = None) -> Console:
    """stdout (colour only on a terminal, never with NO_COLOR), or a plain file."""
    if file is None:
        out = Console(highlight=False)
        if not out.is_terminal and not os.environ.get("COLUMNS"):
            out.width = 160  # piped: rich's 80 columns would cut tables for no reader
        return out
    return Console(file=file, highlight=False, no_color=True, width=200, force_terminal=False)


def short_time(value: datetime | None, now: datetime) -> str:
    """Local time, without the year when it is this year's."""
    if value is None:
        return "?"
    local = value.astimezone()
    if local.year == now.astimezone().year:
        return local.strftime("%m-%d %H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def local_time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "?"


def age(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "in a moment" if ahead else "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"in {n}{unit}" if ahead else f"{n}{unit} ago"
    return ""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if abs(seconds) < 1:
        return f"{seconds * 1000:.0f}ms"
    if abs(seconds) < 60:
        return f"{seconds:.1f}s"
    if abs(seconds) < 3600:
        return f"{seconds / 60:.0f}m"
    if abs(seconds) < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def code_text(code: int | None) -> Text:
    if code is None:
        return Text("—", style="red")
    style = "green" if 200 <= code <= 299 else "red" if code >= 500 else "yellow"
    return Text(str(code), style=style)


def status_text(d: Delivery) -> Text:
    label = (d.status or "?").upper()
    if d.failed:
        return Text(label, style="red")
    return Text(label, style="green" if label == "SUCCESS" else "")


def one_line(text: str | None) -> str:
    return printable(text or "", 2000)


def response_summary(d: Delivery) -> str:
    if d.result is None and (d.status or "").upper() == "PENDING":
        return "(pending)"
    if d.status_code is None:
        cause = one_line(d.cause)
        return "(no answer)" if cause == "no answer" else f"(no answer: {cause})"
    assert d.result is not None
    return one_line(d.result.body) or one_line(d.result.message)


def webhook_header(webhook: Webhook | None, total: int | None, shown: int, what: str) -> Text:
    lines = Text()
    if webhook is not None:
        lines.append(f"Webhook {printable(webhook.id, 100)}", style="bold")
        if webhook.description:
            lines.append(f"  {printable(webhook.description, 200)}")
        lines.append("\n")
        lines.append(f"URL      {printable(webhook.url or '?', 300)}\n")
        enabled = {True: "yes", False: "no", None: "not reported by the API"}[webhook.enabled]
        lines.append(f"Enabled  {enabled}\n")
    count = f"{total} {what}" if total is not None else f"{what}"
    lines.append(f"{count} ({shown} shown)", style="dim")
    return lines


class _Fitted:
    """A table built when rendered, at the width there is: rich would otherwise drop whole
    columns (status, code) of a table that is too wide, rather than shorten long ones."""

    def __init__(self, build: Callable[[int], Table]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.build(options.max_width)


def deliveries_table(deliveries: Sequence[Delivery], show_webhook: bool = False) -> _Fitted:
    def build(width: int) -> Table:
        now = datetime.now(UTC)
        fixed = 22 + 7 + 4 + 6 + (14 if show_webhook else 0)
        with_ids = width >= 100 + (16 if show_webhook else 0)  # else no room for the column
        columns = 6 + show_webhook + with_ids
        room = max(width - fixed - 2 * (columns - 1), 26)
        delivery_w = min(36, max(8, room // 3)) if with_ids else 0
        event_w = min(60, max(14, (room - delivery_w) * 45 // 100))
        response_w = max(12, room - delivery_w - event_w)
        table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
        table.add_column("Created", no_wrap=True, max_width=22)
        if show_webhook:
            table.add_column("Webhook", no_wrap=True, overflow="ellipsis", max_width=14)
        table.add_column("Status", no_wrap=True, max_width=7)
        table.add_column("Code", no_wrap=True, justify="right", max_width=4)
        table.add_column("Event", no_wrap=True, overflow="ellipsis", max_width=event_w)
        if with_ids:
            table.add_column("Delivery", no_wrap=True, overflow="ellipsis", max_width=delivery_w)
        table.add_column("Lag", no_wrap=True, justify="right", max_width=6)
        table.add_column("Response", no_wrap=True, overflow="ellipsis", max_width=response_w)
        for d in deliveries:
            created = Text(short_time(d.created, now))
            created.append(f" {age(d.created, now)}", style="dim")
            event = Text(printable(d.event.name or "?", 60))
            event.append(f" {printable(d.event.id or '', 40)}", style="dim")
            row: list[Text | str] = [created]
            if show_webhook:
                row.append(Text(printable(d.webhook_id or "", 40)))
            row += [status_text(d), code_text(d.status_code), event]
            if with_ids:
                row.append(Text(printable(d.id, 60), style="dim"))
            row.append(duration(d.lag_seconds))
            row.append(Text(response_summary(d)))
            table.add_row(*row)
        return table

    return _Fitted(build)


def _pretty(text: str | None) -> Syntax | Text:
    if text is None:
        return Text("(none)", style="dim")
    try:
        value = json.loads(text)
    except ValueError:
        return Text(printable(text, 20000, lines=True))
    pretty = json.dumps(value, indent=2, ensure_ascii=False)
    return Syntax(printable(pretty, None, lines=True), "json", word_wrap=True)


def delivery_detail(d: Delivery, chain: Iterable[Delivery]) -> Group:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("Delivery", escape(printable(d.id, 200)))
    if d.webhook_id:
        facts.add_row("Webhook", escape(printable(d.webhook_id, 200)))
    facts.add_row("Status", status_text(d))
    facts.add_row("HTTP code", code_text(d.status_code))
    if d.result is not None and d.result.message:
        facts.add_row("Message", escape(printable(d.result.message, 2000)))
    elif d.result is None:
        facts.add_row("Answer", "none (" + escape(printable(d.cause, 500)) + ")")
    facts.add_row("Created", f"{local_time(d.created)} ({age(d.created)})")
    facts.add_row("Delivered", local_time(d.delivered) if d.delivered else "not yet")
    facts.add_row("Lag", duration(d.lag_seconds) or "?")
    if d.retry_id:
        facts.add_row("Retried as", escape(printable(d.retry_id, 200)))
    parts: list[object] = [facts]

    if d.result is not None:
        headers = Table("Header", "Value", box=None, header_style="bold", pad_edge=False)
        for h in d.result.headers:
            headers.add_row(escape(printable(h.name, 200)), escape(printable(h.value or "", 2000)))
        parts.append(Panel(headers, title="Response headers", title_align="left"))
        parts.append(Panel(_pretty(d.result.body), title="Response body", title_align="left"))

    event = Table.grid(padding=(0, 2))
    event.add_column(style="bold")
    event.add_column()
    event.add_row("Event", escape(printable(d.event.id or "?", 200)))
    event.add_row("Name", escape(printable(d.event.name or "?", 200)))
    event.add_row("URN", escape(printable(d.event.urn or "?", 500)))
    event.add_row("Created", local_time(d.event.created))
    parts.append(
        Panel(Group(event, Text(), _pretty(d.event.payload)), title="Event", title_align="left")
    )

    attempts = list(chain)
    table = Table(
        "#",
        "Delivery",
        "Created",
        "Code",
        "Status",
        "Response",
        box=None,
        header_style="bold",
        pad_edge=False,
    )
    for i, a in enumerate(attempts, 1):
        marker = " ◀" if a.id == d.id else ""
        table.add_row(
            str(i),
            escape(printable(a.id, 200)) + marker,
            local_time(a.created),
            code_text(a.status_code),
            status_text(a),
            Text(response_summary(a), overflow="ellipsis", no_wrap=True),
        )
    title = f"Attempts for this event ({len(attempts)})"
    parts.append(Panel(table, title=title, title_align="left"))
    return Group(*parts)  # type: ignore[arg-type]


def failures_table(groups: Sequence[FailureGroup], show_webhook: bool = False) -> _Fitted:
    def build(width: int) -> Table:
        causes = [printable(g.cause, 120) for g in groups]
        names = [printable(g.event_name, 80) for g in groups]
        cause_w = min(40, max([5, *map(len, causes)]))
        event_w = max([5, *map(len, names)])
        # counts (8+6+9+13), two times (19 each), gaps (2 per column)
        used = cause_w + event_w + 36 + 38 + 2 * (8 + show_webhook) + (20 if show_webhook else 0)
        example_w = max(8, min(36, width - used))
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("Cause", overflow="fold", min_width=8, max_width=40)
        table.add_column("Event", overflow="fold", min_width=10)
        table.add_column("Failures", justify="right", min_width=4)
        table.add_column("Events", justify="right", min_width=4)
        table.add_column("Recovered", justify="right", min_width=4)
        table.add_column("Still failing", justify="right", min_width=4)
        table.add_column("First seen", min_width=10)
        table.add_column("Last seen", min_width=10)
        table.add_column("Example", no_wrap=True, overflow="ellipsis", max_width=example_w)
        if show_webhook:
            table.add_column("Webhooks", overflow="fold", min_width=6, max_width=20)
        for g, cause, name in zip(groups, causes, names, strict=True):
            row: list[Text | str] = [
                Text(cause, style="red"),
                Text(name),
                str(g.count),
                str(len(g.events)),
                Text(str(g.recovered), style="green" if g.recovered else "dim"),
                Text(str(g.still_failing), style="red" if g.still_failing else "dim"),
                f"{local_time(g.first)}",
                f"{local_time(g.last)}",
                Text(printable(g.example_id or "", 60)),
            ]
            if show_webhook:
                row.append(Text(", ".join(sorted(printable(w, 40) for w in g.webhooks))))
            table.add_row(*row)
        return table

    return _Fitted(build)


_VERDICT_STYLES = {"verified": "green", "test": "cyan", "unverified": "yellow", "rejected": "red"}


def verdict_text(verdict: str, reason: str | None, duplicates: int = 0) -> Text:
    text = Text(verdict, style=_VERDICT_STYLES.get(verdict, ""))
    if reason:
        text.append(f" ({printable(reason, 60)})", style="dim")
    if duplicates:
        text.append(f" +{duplicates} dup", style="magenta")
    return text


def forward_text(status: str | None, attempts: int, code: int | None) -> Text:
    if not status:
        return Text("")
    style = {"delivered": "green", "retrying": "yellow", "pending": "dim"}.get(status, "")
    label = status if status != "delivered" else f"delivered {code or ''}".strip()
    if attempts > 1 or status == "retrying":
        label += f" ×{attempts}"
    return Text(label, style=style)


def inbox_table(records: Sequence[InboxRecord]) -> Table:
    now = datetime.now(UTC)
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("#", justify="right", no_wrap=True, min_width=2)
    table.add_column("Received", no_wrap=True, min_width=19)
    table.add_column("Verdict", overflow="fold", min_width=10)
    table.add_column("Code", justify="right", no_wrap=True, min_width=4)
    table.add_column("Event", overflow="fold", min_width=14)
    table.add_column("Forward", no_wrap=True)
    for r in records:
        received = Text(local_time(r.received))
        if (now - r.received).total_seconds() >= 3600:
            received.append(f" {age(r.received, now)}", style="dim")
        event = Text(printable(r.event_name or "-", 60))
        event.append(f" {printable(r.event_id or '', 40)}", style="dim")
        verdict = verdict_text(r.verdict, r.reason, r.duplicates)
        if r.conflict_of is not None:  # the same event id as that row, another body
            verdict.append(f" conflicts #{r.conflict_of}", style="magenta")
        table.add_row(
            str(r.id),
            received,
            verdict,
            code_text(r.answer_code),
            event,
            forward_text(r.forward_status, r.forward_attempts, r.forward_code),
        )
    return table


def inbox_detail(r: InboxRecord, secret: str | None = None) -> Group:
    from atwh import signature

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("Inbox id", str(r.id))
    facts.add_row("Received", f"{local_time(r.received)} ({age(r.received)})")
    facts.add_row("Request", escape(f"{r.method} {printable(r.path, 200)}"))
    facts.add_row("Verdict", verdict_text(r.verdict, r.reason))
    facts.add_row(
        "Answer", Text.assemble(code_text(r.answer_code), " ", printable(r.answer_body, 500))
    )
    facts.add_row(
        "Event", escape(f"{printable(r.event_name or '?', 200)} {printable(r.event_id or '', 200)}")
    )
    if r.conflict_of is not None:
        facts.add_row("Conflict", f"the event of #{r.conflict_of} again, with another body")
    if r.duplicates:
        facts.add_row("Duplicates", f"{r.duplicates} more deliveries of this event, acknowledged")
    if r.forward_status:
        forward = forward_text(r.forward_status, r.forward_attempts, r.forward_code)
        if r.forward_error:
            forward.append(f"  last error: {printable(r.forward_error, 200)}", style="dim")
        facts.add_row("Forward", forward)
    headers = {n.lower(): v for n, v in r.headers}
    if secret and signature.SIGNATURE_HEADER in headers:
        schemes = signature.matching_schemes(
            r.body,
            headers[signature.SIGNATURE_HEADER],
            headers.get(signature.TIMESTAMP_HEADER, ""),
            secret,
        )
        verdict = (
            f"matches the {' and '.join(schemes)} scheme"
            if schemes
            else "matches none of: body, timestamp.body, timestamp+body (wrong secret?)"
        )
        facts.add_row("Signature", escape(verdict))
    parts: list[object] = [facts]
    table = Table("Header", "Value", box=None, header_style="bold", pad_edge=False)
    for n, v in r.headers:
        table.add_row(escape(printable(n, 200)), escape(printable(v, 2000)))
    parts.append(Panel(table, title="Request headers", title_align="left"))
    raw = r.payload_text()
    parts.append(
        Panel(
            Text(printable(raw, None, lines=True)),
            title=f"Raw body ({len(r.body)} bytes)",
            title_align="left",
        )
    )
    if raw:
        parts.append(Panel(_pretty(raw), title="Payload", title_align="left"))
    return Group(*parts)  # type: ignore[arg-type]
