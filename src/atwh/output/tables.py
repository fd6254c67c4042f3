"""Deliveries for people: rich tables and panels on stdout."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import IO, cast

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from atwh.client.failures import FailureGroup
from atwh.client.model import Delivery, Webhook
from atwh.client.webhooks import EventType, PingResult, WebhookInfo, mask
from atwh.core.dates import iso
from atwh.core.durations import duration
from atwh.errors import printable
from atwh.output.listing import ALWAYS, Column, Listing, short_url, table
from atwh.receiver.inbox import InboxRecord


def console(file: IO[str] | None = None) -> Console:
    """stdout (colour only on a terminal, never with NO_COLOR), or a plain file. Out of a
    terminal (a pipe, a file) lines carry no trailing spaces: rich pads every cell."""
    if file is None:
        out = Console(highlight=False)
        if not out.is_terminal:
            if not os.environ.get("COLUMNS"):
                out.width = 160  # piped: rich's 80 columns would cut tables for no reader
            out.file = cast(IO[str], Unpadded(sys.stdout))
        return out
    return Console(
        file=cast(IO[str], Unpadded(file)),
        highlight=False,
        no_color=True,
        width=200,
        force_terminal=False,
    )


class Unpadded(io.TextIOBase):
    """A text stream that writes each line without its trailing spaces."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        if lines:
            self.stream.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.stream.write(self.pending.rstrip(" "))
            self.pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()


def when(value: datetime | None, now: datetime | None = None) -> str:
    """The one time format of every view: local time, with the year when it is not this one's
    (`12-01 21:52:14`, `2025-12-01 21:52:14`)."""
    if value is None:
        return "?"
    local = value.astimezone()
    if local.year == (now or datetime.now(UTC)).astimezone().year:
        return local.strftime("%m-%d %H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")


local_time = short_time = when  # the names the detail views and `webhooks` use for it


def age(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago (`now`, `42s ago`, `5m ago`, `3h ago`, `12d ago`) or ahead (`in 5m`);
    never empty for a date, at most 8 characters up to 999 days."""
    if value is None:
        return "?"
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    ahead = seconds < 0
    n, unit = _age_unit(abs(seconds))
    if unit is None:
        return "now"
    return f"in {n}{unit}" if ahead else f"{n}{unit} ago"


def _age_unit(seconds: float) -> tuple[int, str | None]:
    if seconds < 1:
        return 0, None
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return int(seconds // size), unit
    return int(seconds), "s"


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


# What atwh can say about an attempt without an HTTP answer: the log's `result` is null and
# carries no reason (the published schema has no field for one)
NO_ANSWER_WHY = (
    "the log records no reason: a timeout, a refused or a reset connection "
    "('atwh webhooks ping URL' tries the URL now)"
)


def no_answer_note(groups: Sequence[FailureGroup]) -> Text | None:
    """Below `failures`' summary when a cause is `no answer`: why it cannot say more."""
    if not any(g.cause == "no answer" for g in groups):
        return None
    return Text(
        "no answer: the log gives no reason (a timeout, a refused or reset connection)", style="dim"
    )


def wrapped(message: str, width: int | None = None) -> str:
    """A message for stderr with its sentences wrapped at spaces to the terminal's width (a
    terminal wraps a long line mid-word or mid-id); a line indented by two spaces (a command
    to copy) is left whole. Unchanged when stderr is not a terminal and no width is given."""
    import shutil
    import sys
    import textwrap

    if width is None:
        if not sys.stderr.isatty():
            return message
        width = shutil.get_terminal_size((80, 24)).columns
    lines = []
    for line in message.split("\n"):
        if line.startswith("  ") or len(line) <= width:
            lines.append(line)
        else:
            lines += textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines)


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


def filters_given(given: dict[str, object]) -> str:
    """The filter options as typed (`--failed --event 'ticket.*'`), for a count line."""
    said = []
    for option, value in given.items():
        if value is True:
            said.append(option)
        elif value:
            values = value if isinstance(value, list) else [value]
            said.append(option + " " + " ".join(repr(printable(v, 60)) for v in values))
    return " ".join(said)


def count_line(
    total: int | None,
    shown: int,
    matched: int | None,
    asked: str,
    one: str,
    many: str,
) -> str:
    """How many rows are shown, how many match the filters and of how many in all, without
    reading as if more matches were hidden: `20,000 deliveries (3 shown)` unfiltered;
    `3 of 57 deliveries that match --failed (of 20,000 in all)`; `The newest 3 deliveries
    that match --failed (more do, of 20,000 in all)` when not every match was counted
    (`matched` None)."""

    def n(count: int) -> str:
        return f"{count:,} {one if count == 1 else many}"

    if not asked:
        return f"{n(total)} ({shown:,} shown)" if total is not None else f"{shown:,} shown"
    of_all = f"of {total:,} in all" if total is not None else ""
    if matched is None:
        more = ", ".join(x for x in ("more do", of_all) if x)
        return f"The newest {n(shown)} that match {asked} ({more})"
    if shown == matched:
        line = f"{n(matched)} {'matches' if matched == 1 else 'match'} {asked}"
    else:
        line = f"{shown:,} of {n(matched)} that match {asked}"
    return f"{line} ({of_all})" if of_all else line


def webhook_header(
    webhook: Webhook | None, total: int | None, shown: int, count: str | None = None
) -> Text:
    lines = Text()
    if webhook is not None:
        lines.append(f"Webhook {printable(webhook.id, 100)}", style="bold")
        if webhook.description:
            lines.append(f"  {printable(webhook.description, 200)}")
        lines.append("\n")
        lines.append(f"URL      {printable(webhook.url or '?', 300)}\n")
        enabled = {True: "yes", False: "no", None: "not reported by the API"}[webhook.enabled]
        lines.append(f"Enabled  {enabled}\n")
    if count is None:
        count = count_line(total, shown, None, "", "delivery", "deliveries")
    lines.append(count, style="dim")
    return lines


# Importance of the columns (`keep`): what goes first when the width runs out is the
# response text, then the lag, the event id, the full time beside the age, the webhook and
# the event name; never when it happened (the age, as `gh run list` keeps it), the status,
# the HTTP code or the delivery id (`--id` takes it). The event name is shortened before it
# goes. At 80 columns: age, status, code, delivery id and the event name.
def delivery_columns(
    show_webhook: bool = False, now: datetime | None = None
) -> list[Column[Delivery]]:
    """The columns of a deliveries listing (`deliveries`, `failures`)."""
    now = now or datetime.now(UTC)
    columns: list[Column[Delivery]] = [
        Column("Created", lambda d: when(d.created, now), keep=60, tsv=lambda d: d.iso_dates()[0]),
        Column("Age", lambda d: Text(age(d.created, now), style="dim"), keep=ALWAYS, piped=False),
    ]
    if show_webhook:
        columns.append(Column("Webhook", lambda d: printable(d.webhook_id or "", 100), keep=70))
    columns += [
        Column("Status", status_text, keep=ALWAYS, tsv=lambda d: d.status),
        Column(
            "Code",
            lambda d: code_text(d.status_code),
            keep=ALWAYS,
            justify="right",
            tsv=lambda d: d.status_code,
        ),
        Column("Delivery", lambda d: printable(d.id, 100), keep=ALWAYS),
        Column(
            "Event", lambda d: printable(d.event.name or "?", 100), keep=70, shrink=12, greedy=True
        ),
        Column("Event id", lambda d: Text(printable(d.event.id or "", 100), style="dim"), keep=20),
        Column(
            "Lag",
            _lag,
            keep=10,
            justify="right",
            tsv=lambda d: round(d.lag_seconds * 1000) if d.lag_seconds is not None else None,
            name="lag_ms",
        ),
        Column("Response", response_summary, keep=5, shrink=12, tsv=_full_response),
    ]
    return columns


def _lag(d: Delivery) -> str:
    return duration(d.lag_seconds) if d.lag_seconds is not None else "—"  # as Code's


def _full_response(d: Delivery) -> str:
    """Piped: the answer's body (or message) whole; the message the API gave with no
    answer; else an empty field (the code says there was no answer)."""
    if d.result is None:
        return ""
    if d.status_code is not None:
        return d.result.body or d.result.message or ""
    return d.result.message or ""


def deliveries_table(
    deliveries: Sequence[Delivery], show_webhook: bool = False
) -> Listing[Delivery]:
    return table(delivery_columns(show_webhook), deliveries)


def _pretty(text: str | None) -> Syntax | Text:
    if text is None:
        return Text("(none)", style="dim")
    from atwh.core import jsontext

    try:
        value = jsontext.loads(text)
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
    if d.status_code is None and (d.status or "").upper() != "PENDING":
        why = d.cause if d.cause != "no answer" else NO_ANSWER_WHY
        facts.add_row("Answer", "none: " + escape(printable(why, 500)))
    elif d.result is not None and d.result.message:
        facts.add_row("Message", escape(printable(d.result.message, 2000)))
    facts.add_row("Created", f"{local_time(d.created)} ({age(d.created)})")
    if d.delivered:
        facts.add_row("Delivered", local_time(d.delivered))
        facts.add_row("Lag", duration(d.lag_seconds))
    elif (d.status or "").upper() == "PENDING":
        facts.add_row("Delivered", "not yet: the attempt is under way")
    else:  # an attempt that failed without an answer was never delivered, and has no lag
        facts.add_row("Delivered", "no: the attempt failed")
    if d.retry_id:
        facts.add_row("Retried as", escape(printable(d.retry_id, 200)))
    parts: list[object] = [facts]

    if d.result is not None:
        headers = Table("Header", "Value", box=None, header_style="bold", pad_edge=False)
        for h in d.result.headers:
            headers.add_row(escape(printable(h.name, 200)), escape(printable(h.value or "", 2000)))
        parts.append(Panel(headers, title="Response headers", title_align="left", expand=False))
        parts.append(
            Panel(_pretty(d.result.body), title="Response body", title_align="left", expand=False)
        )

    event = Table.grid(padding=(0, 2))
    event.add_column(style="bold")
    event.add_column()
    event.add_row("Event", escape(printable(d.event.id or "?", 200)))
    event.add_row("Name", escape(printable(d.event.name or "?", 200)))
    event.add_row("URN", escape(printable(d.event.urn or "?", 500)))
    event.add_row("Created", local_time(d.event.created))
    parts.append(
        Panel(
            Group(event, Text(), _pretty(d.event.payload)),
            title="Event",
            title_align="left",
            expand=False,
        )
    )

    attempts = list(chain)
    columns: list[Column[tuple[int, Delivery]]] = [
        Column("#", lambda ia: str(ia[0]), keep=ALWAYS, justify="right"),
        Column("Delivery", lambda ia: printable(ia[1].id, 200), keep=ALWAYS),
        Column("", lambda ia: "◀" if ia[1].id == d.id else "", keep=ALWAYS),
        Column("Created", lambda ia: local_time(ia[1].created), keep=50),
        Column("Code", lambda ia: code_text(ia[1].status_code), keep=ALWAYS, justify="right"),
        Column("Status", lambda ia: status_text(ia[1]), keep=60),
        Column("Response", lambda ia: response_summary(ia[1]), keep=10, shrink=12),
    ]
    table = Listing(columns, list(enumerate(attempts, 1)))
    title = f"Attempts for this event ({len(attempts):,})"
    parts.append(Panel(table, title=title, title_align="left", expand=False))
    return Group(*parts)  # type: ignore[arg-type]


def failure_columns(show_webhook: bool = False) -> list[Column[FailureGroup]]:
    """The columns of `failures`' summary: one row per cause and event name."""
    now = datetime.now(UTC)
    columns: list[Column[FailureGroup]] = [
        Column(
            "Cause", lambda g: Text(printable(g.cause, 120), style="red"), keep=ALWAYS, shrink=12
        ),
        Column("Event", lambda g: printable(g.event_name, 100), keep=80, shrink=12, greedy=True),
        # counts grouped by thousands for people (1,234); plain in TSV, for scripts
        Column(
            "Failures",
            lambda g: f"{g.count:,}",
            keep=ALWAYS,
            justify="right",
            tsv=lambda g: str(g.count),
        ),
        Column(
            "Events",
            lambda g: f"{len(g.events):,}",
            keep=30,
            justify="right",
            tsv=lambda g: str(len(g.events)),
        ),
        Column(
            "Recovered",
            lambda g: Text(f"{g.recovered:,}", style="green" if g.recovered else "dim"),
            keep=75,
            justify="right",
            tsv=lambda g: str(g.recovered),
        ),
        Column(
            "Still failing",
            lambda g: Text(f"{g.still_failing:,}", style="red" if g.still_failing else "dim"),
            keep=85,  # what is left to do: before the event name is whole, and the recovered
            justify="right",
            tsv=lambda g: str(g.still_failing),
        ),
        Column("First seen", lambda g: when(g.first, now), keep=20, tsv=lambda g: iso(g.first)),
        Column("Last seen", lambda g: when(g.last, now), keep=40, tsv=lambda g: iso(g.last)),
        Column("Example", lambda g: printable(g.example_id or "", 100), keep=70),
    ]
    if show_webhook:
        columns.append(
            Column(
                "Webhooks",
                lambda g: ", ".join(sorted(printable(w, 100) for w in g.webhooks)),
                keep=50,
            )
        )
    return columns


def failures_table(
    groups: Sequence[FailureGroup], show_webhook: bool = False
) -> Listing[FailureGroup]:
    return table(failure_columns(show_webhook), groups)


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


def inbox_columns(now: datetime | None = None) -> list[Column[InboxRecord]]:
    """The columns of `atwh inbox`: one line a request at 80 columns."""
    now = now or datetime.now(UTC)
    return [
        Column("#", lambda r: str(r.id), keep=ALWAYS, justify="right"),
        Column("Received", lambda r: when(r.received, now), keep=55, tsv=lambda r: iso(r.received)),
        Column("Age", lambda r: Text(age(r.received, now), style="dim"), keep=40, piped=False),
        Column(
            "Verdict",
            lambda r: verdict_text(r.verdict, r.reason, r.duplicates),
            keep=ALWAYS,
        ),
        Column(
            "Code",
            lambda r: code_text(r.answer_code),
            keep=ALWAYS,
            justify="right",
            tsv=lambda r: r.answer_code,
        ),
        Column(
            "Event",
            lambda r: printable(r.event_name or "—", 100),  # (a test request has none)
            keep=60,
            tsv=lambda r: r.event_name,
        ),
        Column("Event id", lambda r: Text(printable(r.event_id or "", 100), style="dim"), keep=45),
        Column(
            "Forward",
            lambda r: forward_text(r.forward_status, r.forward_attempts, r.forward_code),
            keep=20,
        ),
    ]


def inbox_table(records: Sequence[InboxRecord]) -> Listing[InboxRecord]:
    return table(inbox_columns(), records)


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
        d = r.diagnose(secret)
        shown = "valid" if d.valid else f"invalid ({d.cause})"
        facts.add_row("Verify", escape(f"{shown}: {printable(d.explanation, None)}"))
    parts: list[object] = [facts]
    table = Table("Header", "Value", box=None, header_style="bold", pad_edge=False)
    for n, v in r.headers:
        table.add_row(escape(printable(n, 200)), escape(printable(v, 2000)))
    parts.append(Panel(table, title="Request headers", title_align="left", expand=False))
    raw = r.payload_text()
    parts.append(
        Panel(
            Text(printable(raw, None, lines=True)),
            title=f"Raw body ({len(r.body):,} bytes)",
            title_align="left",
            expand=False,
        )
    )
    if raw:
        parts.append(Panel(_pretty(raw), title="Payload", title_align="left", expand=False))
    return Group(*parts)  # type: ignore[arg-type]


# -- webhooks (`atwh webhooks`) --------------------------------------------------------------


def _yes_no(value: bool | None) -> Text:
    if value is None:
        return Text("?", style="dim")
    return Text("yes", style="green") if value else Text("no", style="yellow")


def _names(values: Sequence[str], each: int) -> str:
    return ", ".join(printable(v, each) for v in values)


# Importance (`keep`): the id is never dropped nor cut; the URL is shortened before anything
# goes; then created, the URNs, the description, the events and enabled go, in that order.
def webhook_columns(now: datetime | None = None) -> list[Column[WebhookInfo]]:
    """The columns of `atwh webhooks list`."""
    now = now or datetime.now(UTC)
    return [
        Column("ID", lambda h: printable(h.id, 100), keep=ALWAYS),
        Column(
            "Description",
            lambda h: printable(h.description or "", 200),
            keep=40,
            shrink=12,
            tsv=lambda h: h.description,
        ),
        Column(
            "URL",
            lambda h: printable(h.url or "?", 300),
            keep=ALWAYS,
            shrink=40,
            shorten=short_url,
        ),
        Column("Enabled", lambda h: _yes_no(h.enabled), keep=60, tsv=lambda h: h.enabled),
        Column("Events", lambda h: _names(h.events, 100), keep=50, shrink=16),
        Column("URNs", lambda h: _names(h.urns, 200), keep=30, shrink=16),
        Column(
            "Created",
            lambda h: when(h.created, now) if h.created else "?",
            keep=20,
            tsv=lambda h: iso(h.created),
        ),
    ]


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


def event_type_columns() -> list[Column[EventType]]:
    """The columns of `atwh webhooks events`: the name whole, the description shortened."""
    return [
        # the namespace is the start of the name: shown only when the descriptions are whole
        Column("Namespace", lambda e: printable(e.namespace, 80), keep=5),
        Column("Name", lambda e: printable(e.name, 100), keep=ALWAYS),
        Column(
            "Description",
            lambda e: printable(e.description, 500),
            keep=10,
            shrink=12,
            greedy=True,
        ),
    ]


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
