"""`atwh replay` and `atwh reconcile` for people: the report tables."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from atwh.errors import printable
from atwh.output.tables import code_text, duration, local_time
from atwh.recover.ledger import RunSummary
from atwh.recover.replay import FAILING, FIXED, SKIPPED, Report

_RESULT_STYLES = {FIXED: "green", FAILING: "red", SKIPPED: "dim"}


def replay_table(report: Report) -> Table:
    """One row per event, in the order sent: result, code, event, the original, the answer."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("Result", no_wrap=True)
    table.add_column("Code", justify="right", no_wrap=True)
    table.add_column("Event", no_wrap=True, overflow="ellipsis", min_width=20)
    table.add_column("Replay of", no_wrap=True, overflow="ellipsis", min_width=8)
    table.add_column("Time", justify="right", no_wrap=True)
    table.add_column("Answer", overflow="ellipsis", no_wrap=True, min_width=12)
    for o in report.outcomes:
        c = o.candidate
        event = Text(printable(c.event_name or "?", 60))
        event.append(f" {printable(c.event_id or c.key, 40)}", style="dim")
        table.add_row(
            Text(o.result, style=_RESULT_STYLES.get(o.result, "")),
            code_text(o.code) if o.sent else Text(""),
            event,
            Text(printable(c.origin, 60), style="dim"),
            duration(o.seconds),
            Text(printable(o.detail or "", 300)),
        )
    return table


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
        if r.unknown:
            notes.append(f"{r.unknown} without an answer recorded")
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
