"""`atwh replay` and `atwh reconcile` for people: the report tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from atwh.errors import printable
from atwh.output.tables import code_text, duration, local_time
from atwh.recover.ledger import RunSummary
from atwh.recover.reconcile import (
    CATEGORIES,
    DUPLICATED,
    LOST,
    NOT_DELIVERED,
    OK,
    UNKNOWN,
    Entry,
    Reconciliation,
)
from atwh.recover.replay import FAILING, FIXED, SKIPPED, Report

_RESULT_STYLES = {FIXED: "green", FAILING: "red", SKIPPED: "dim"}


class _AtWidth:
    """A table built when rendered, at the width there is, so that it drops whole columns
    of less use (the original delivery, the time) rather than cut an event id."""

    def __init__(self, build: Callable[[int], Table]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.build(options.max_width)


def replay_table(report: Report) -> _AtWidth:
    """One row per event, in the order sent: result, code, event, the original, the answer."""

    def build(width: int) -> Table:
        events = [
            (
                printable(o.candidate.event_name or "?", 60),
                printable(o.candidate.event_id or o.candidate.key, 60),
            )
            for o in report.outcomes
        ]
        event_w = max([5, *(len(n) + 1 + len(i) for n, i in events)])
        origin_w = max([9, *(len(printable(o.candidate.origin, 60)) for o in report.outcomes)])
        used = 13 + 4 + event_w + 3 * 2
        with_time = width - used >= 8 + 20
        used += 8 if with_time else 0
        with_origin = width - used >= origin_w + 2 + 20
        used += origin_w + 2 if with_origin else 0
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("Result", no_wrap=True, min_width=13)
        table.add_column("Code", justify="right", no_wrap=True, min_width=4)
        table.add_column("Event", no_wrap=True, overflow="ellipsis", min_width=min(event_w, 80))
        if with_origin:
            table.add_column("Replay of", no_wrap=True, min_width=origin_w)
        if with_time:
            table.add_column("Time", justify="right", no_wrap=True, min_width=6)
        table.add_column(
            "Answer",
            overflow="ellipsis",
            no_wrap=True,
            min_width=6,
            max_width=max(6, width - used - 2),
        )
        for o, (name, event_id) in zip(report.outcomes, events, strict=True):
            event = Text(name)
            event.append(f" {event_id}", style="dim")
            row: list[Text | str] = [
                Text(o.result, style=_RESULT_STYLES.get(o.result, "")),
                code_text(o.code) if o.sent else Text(""),
                event,
            ]
            if with_origin:
                row.append(Text(printable(o.candidate.origin, 60), style="dim"))
            if with_time:
                row.append(duration(o.seconds))
            row.append(Text(printable(o.detail or "", 300)))
            table.add_row(*row)
        return table

    return _AtWidth(build)


def totals_line(report: Report) -> str:
    t = report.totals()
    if report.dry_run:
        line = f"{t['wouldSend']} to send to {printable(report.target, 200)}"
    else:
        line = (
            f"{t['fixed']} fixed, {t['stillFailing']} still failing"
            f" at {printable(report.target, 200)}"
        )
    if t["skipped"]:
        line += f"; {t['skipped']} skipped"
    if report.interrupted:
        line += " (interrupted)"
    return line


def history_table(runs: Sequence[RunSummary]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("Run", justify="right", no_wrap=True)
    table.add_column("Started", no_wrap=True)
    table.add_column("Source", overflow="fold")
    table.add_column("Target", overflow="fold")
    table.add_column("Sent", justify="right")
    table.add_column("Fixed", justify="right")
    table.add_column("Failing", justify="right")
    table.add_column("Note")
    for r in runs:
        notes = []
        if r.interrupted:
            notes.append("interrupted")
        if r.finished is None:
            notes.append("did not finish")
        table.add_row(
            str(r.id),
            local_time(r.started),
            printable(r.source, 200),
            printable(r.target, 200),
            str(r.sent),
            Text(str(r.fixed), style="green" if r.fixed else "dim"),
            Text(str(r.failing), style="red" if r.failing else "dim"),
            "; ".join(notes),
        )
    return table


_CATEGORY_STYLES = {
    LOST: "bold red",
    NOT_DELIVERED: "red",
    UNKNOWN: "yellow",
    DUPLICATED: "magenta",
    OK: "green",
}
_CATEGORY_NOTES = {
    LOST: "the log shows a 2xx, the store does not have it: acknowledged and dropped",
    NOT_DELIVERED: "no attempt succeeded and the store does not have it: replay candidates",
    UNKNOWN: "stored, not in the log: test events, other webhooks, older than the window",
    DUPLICATED: "stored more than once",
}


def reconcile_view(result: Reconciliation) -> Group:
    """The summary by category and event name, then the events of each category but ok."""
    head = Text("Compared ", style="bold")
    since = local_time(result.since) if result.since else "the start of the log"
    head.append(f"the log since {since} with {printable(result.store, 300)}")
    summary = Table(box=None, header_style="bold", pad_edge=False)
    summary.add_column("Category", no_wrap=True)
    summary.add_column("Event", overflow="fold")
    summary.add_column("Events", justify="right")
    for category, name, count in result.summary():
        summary.add_row(
            Text(category, style=_CATEGORY_STYLES[category]), printable(name, 80), str(count)
        )
    parts: list[object] = [head, Text(), summary]
    for category in CATEGORIES[:-1]:
        entries = [e for e in result.entries if e.category == category]
        if not entries:
            continue
        parts += [
            Text(),
            Text.assemble(
                (f"{category.capitalize()} ({len(entries)})", _CATEGORY_STYLES[category]),
                (f"  {_CATEGORY_NOTES[category]}", "dim"),
            ),
        ]
        parts.append(_AtWidth(partial(_entries_table, entries)))
    return Group(*parts)  # type: ignore[arg-type]


def _entries_table(entries: Sequence[Entry], width: int) -> Table:
    """The events of one category: the id whole, then the name; the time, the attempts and
    the last code while there is room for them."""
    ids = [printable(e.event_id, 80) for e in entries]
    names = [
        printable(e.event_name or "?", 60) + (" (backfilled)" if e.backfilled else "")
        for e in entries
    ]
    id_w = max(8, *map(len, ids))
    name_w = min(24, max(4, *map(len, names)))
    room = width - id_w - 2 - 6 - 2 - name_w  # the id, Stored, the name (up to 24)
    with_code = room >= 9 + 2
    room -= 11 if with_code else 0
    with_attempts = room >= 8 + 2
    room -= 10 if with_attempts else 0
    with_created = room >= 19 + 2
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("Event id", no_wrap=True, min_width=id_w)
    table.add_column("Name", no_wrap=True, overflow="ellipsis", min_width=4)
    if with_created:
        table.add_column("Created", no_wrap=True)
    if with_attempts:
        table.add_column("Attempts", justify="right", no_wrap=True)
    if with_code:
        table.add_column("Last code", justify="right", no_wrap=True)
    table.add_column("Stored", justify="right", no_wrap=True)
    for e, event_id, name in zip(entries, ids, names, strict=True):
        row: list[Text | str] = [event_id, name]
        if with_created:
            row.append(local_time(e.created) if e.created else "")
        if with_attempts:
            row.append(str(e.attempts) if e.attempts else "")
        if with_code:
            row.append(code_text(e.last_code) if e.attempts else Text(""))
        row.append(str(e.stored))
        table.add_row(*row)
    return table


def reconcile_totals(result: Reconciliation) -> str:
    return ", ".join(f"{n} {c}" for c, n in result.totals().items())
