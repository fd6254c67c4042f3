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
from atwh.client.webhooks import EventType, PingResult, WebhookInfo, mask
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
        table.add_row(
            str(r.id),
            received,
            verdict_text(r.verdict, r.reason, r.duplicates),
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


# -- webhooks (`atwh webhooks`) --------------------------------------------------------------


def _yes_no(value: bool | None) -> Text:
    if value is None:
        return Text("?", style="dim")
    return Text("yes", style="green") if value else Text("no", style="yellow")


def webhooks_table(hooks: Sequence[WebhookInfo]) -> _Fitted:
    """id, description, URL, enabled, events, URNs, created. The id is never cut: at a
    narrow width the other columns go, least useful first (created, URNs, description,
    events, enabled); the URL is shortened with an ellipsis."""

    def build(width: int) -> Table:
        now = datetime.now(UTC)
        ids = [printable(h.id, 80) for h in hooks]
        urls = [printable(h.url or "?", 300) for h in hooks]
        events = ["\n".join(printable(e, 80) for e in h.events) for h in hooks]
        urns = ["\n".join(printable(u, 200) for u in h.urns) for h in hooks]
        created = [short_time(h.created, now) if h.created else "?" for h in hooks]

        def widest(cells: list[str], header: str, cap: int) -> int:
            return min(cap, max(len(header), *(len(x) for c in cells for x in c.split("\n"))))

        id_w = widest(ids, "ID", 80)
        url_full = widest(urls, "URL", 300)
        optional = {  # name: width, in the order they are given up
            "Created": widest(created, "Created", 16),
            "URNs": widest(urns, "URNs", 40),
            "Description": min(16, widest([h.description or "" for h in hooks], "Description", 16)),
            "Events": widest(events, "Events", 30),
            "Enabled": 7,
        }
        shown = dict(optional)
        for name, floor in (
            ("Created", 40),
            ("URNs", 30),
            ("Description", 24),
            ("Events", 16),
            ("Enabled", 12),
        ):
            used = id_w + sum(w + 2 for w in shown.values())
            if width - used - 2 >= min(url_full, floor):
                break
            del shown[name]
        used = id_w + sum(w + 2 for w in shown.values())
        url_w = max(8, min(url_full, width - used - 2))
        table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
        table.add_column("ID", no_wrap=True, min_width=id_w)
        if "Description" in shown:
            table.add_column("Description", no_wrap=True, overflow="ellipsis", max_width=16)
        table.add_column("URL", no_wrap=True, overflow="ellipsis", max_width=url_w)
        for name in ("Enabled", "Events", "URNs", "Created"):
            if name in shown:
                table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=shown[name])
        for i, h in enumerate(hooks):
            row: list[Text | str] = [Text(ids[i])]
            if "Description" in shown:
                row.append(Text(printable(h.description or "", 200)))
            row.append(Text(urls[i]))
            if "Enabled" in shown:
                row.append(_yes_no(h.enabled))
            if "Events" in shown:
                row.append(Text(events[i]))
            if "URNs" in shown:
                row.append(Text(urns[i]))
            if "Created" in shown:
                row.append(created[i])
            table.add_row(*row)
        return table

    return _Fitted(build)


def webhook_detail(h: WebhookInfo, show_secret: bool = False) -> Table:
    """Every field of one webhook; the secret masked unless `show_secret`."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    facts.add_row("ID", Text(printable(h.id, 200)))
    facts.add_row("Description", Text(printable(h.description or "", 500)))
    facts.add_row("URL", Text(printable(h.url or "?", 500)))
    facts.add_row("Enabled", _yes_no(h.enabled))
    facts.add_row("Events", Text("\n".join(printable(e, 100) for e in h.events) or "(none)"))
    facts.add_row("URNs", Text("\n".join(printable(u, 300) for u in h.urns) or "(none)"))
    created = f"{local_time(h.created)} ({age(h.created)})" if h.created else "?"
    facts.add_row("Created", created)
    if h.secret is None:
        facts.add_row("Secret", Text("not given by the API", style="dim"))
    elif show_secret:
        facts.add_row("Secret", Text(printable(h.secret, 500)))
    else:
        secret = Text(mask(h.secret) or "")
        secret.append("  (--show-secret to see it)", style="dim")
        facts.add_row("Secret", secret)
    return facts


def _change_value(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(printable(v, 200) for v in value) or "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return printable(value, 300) if value is not None else "(none)"


def change_lines(changed: Sequence[tuple[str, object, object]]) -> Text:
    """One line per field an update changed: `url: old → new`, `events: +added -removed`."""
    out = Text()
    for name, old, new in changed:
        out.append(f"  {name}: ", style="bold")
        if isinstance(old, list) and isinstance(new, list):
            added = [v for v in new if v not in old]
            removed = [v for v in old if v not in new]
            parts = [f"+{printable(v, 200)}" for v in added]
            parts += [f"-{printable(v, 200)}" for v in removed]
            out.append(" ".join(parts) if parts else f"{_change_value(new)} (reordered)")
        else:
            out.append(f"{_change_value(old)} → {_change_value(new)}")
        out.append("\n")
    out.rstrip()
    return out


def events_table(events: Sequence[EventType]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("Namespace", no_wrap=True)
    table.add_column("Name", no_wrap=True)
    table.add_column("Description", overflow="fold")
    for e in events:
        table.add_row(
            Text(printable(e.namespace, 80)),
            Text(printable(e.name, 100)),
            Text(printable(e.description, 500)),
        )
    return table


def ping_report(p: PingResult) -> Text:
    out = Text()
    out.append("URL       ", style="bold")
    out.append(printable(p.url, 500) + "\n")
    out.append("Answer    ", style="bold")
    if p.status_code is None:
        out.append(f"none: {printable(p.error or 'no answer', 200)}", style="red")
    else:
        out.append_text(code_text(p.status_code))
        if p.content_type:
            out.append(f"  {printable(p.content_type, 100)}", style="dim")
    out.append("\n")
    out.append("Time      ", style="bold")
    out.append(duration(p.seconds) + "\n")
    if p.status_code is not None:
        out.append("Body      ", style="bold")
        body = printable(p.body or "", 2000) or "(empty)"
        out.append(body + (" …(cut)" if p.body_truncated else "") + "\n")
    out.append("Register  ", style="bold")
    if p.accepted:
        out.append("would be accepted (the URL answered 200)", style="green")
    elif p.url_problem:
        out.append(f"would be refused: the URL {p.url_problem}", style="red")
    elif p.status_code is None:
        out.append("would be refused: the URL did not answer", style="red")
    else:
        out.append(f"would be refused: the URL answered {p.status_code}, not 200", style="red")
    return out
