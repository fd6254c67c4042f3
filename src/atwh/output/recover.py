"""`atwh replay` and `atwh reconcile` for people: the report tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from rich.console import Group
from rich.text import Text

from atwh.core.dates import iso
from atwh.core.durations import duration
from atwh.errors import printable
from atwh.output.listing import ALWAYS, Column, Listing, table
from atwh.output.tables import code_text, local_time
from atwh.recover.ledger import RunSummary
from atwh.recover.reconcile import (
    CATEGORIES,
    CONFLICTING,
    DUPLICATED,
    LOST,
    NOT_DELIVERED,
    OK,
    UNKNOWN,
    Entry,
    Reconciliation,
)
from atwh.recover.replay import ALREADY_REPLAYED, ERROR, FAILING, FIXED, SKIPPED, Outcome, Report

_RESULT_STYLES = {FIXED: "green", FAILING: "red", ERROR: "bold red", SKIPPED: "dim"}


# Importance (`keep`): the result, the code and the event id are never dropped; then the
# answer (why it failed, why it was skipped: what a person reads the report for, shortened
# before anything else goes), the event name, the delivery replayed, the time. A column
# empty in every row (no code or time when nothing was sent) is left out.
def replay_columns(sent: bool = True) -> list[Column[Outcome]]:
    """One row per event, in the order sent: result, code, event, the original, the answer.
    Without `sent` (`--dry-run`), no code, time or answer: nothing was sent to give them."""
    columns: list[Column[Outcome]] = [
        Column(
            "Result",
            lambda o: Text(o.result, style=_RESULT_STYLES.get(o.result, "")),
            keep=ALWAYS,
            tsv=lambda o: o.result,
        ),
        Column(
            "Code",
            lambda o: code_text(o.code) if o.sent else Text(""),
            keep=ALWAYS,
            justify="right",
            tsv=lambda o: o.code,
        ),
        # piped, the values themselves (write_tsv makes them printable): no Text to make
        Column(
            "Event",
            lambda o: printable(o.candidate.event_name or "?", 60),
            keep=60,
            tsv=lambda o: o.candidate.event_name or "?",
        ),
        Column(
            "Event id",
            lambda o: Text(printable(o.candidate.event_id or o.candidate.key, 100), style="dim"),
            keep=ALWAYS,
            tsv=lambda o: o.candidate.event_id or o.candidate.key,
        ),
        Column(
            "Replay of",
            lambda o: Text(printable(o.candidate.origin, 100), style="dim"),
            keep=30,
            tsv=lambda o: o.candidate.origin,
        ),
        Column(
            "Time",
            lambda o: duration(o.seconds) if o.seconds is not None else "",
            keep=20,
            justify="right",
        ),
        Column(
            "Answer",
            lambda o: printable(o.detail or "", 300),
            keep=65,
            shrink=12,
            greedy=True,
            tsv=lambda o: o.detail,
        ),
    ]
    if sent:
        return columns
    return [c for c in columns if c.header not in ("Code", "Time", "Answer")]


class ReplayProgress:
    """While a replay sends, one line on stderr rewritten in place (a terminal only):
    `Replaying 5 sent: 3 fixed, 2 still failing`, from the first answer on; gone when it
    ends, as the report follows with every result once."""

    def __init__(self) -> None:
        self.counts = {FIXED: 0, FAILING: 0}
        self.bar: Any = None

    def __call__(self, outcome: Outcome) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn

        if self.bar is None:
            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task("")
            self.bar.start()
        self.counts[outcome.result] = self.counts.get(outcome.result, 0) + 1
        sent = sum(self.counts.values())
        said = (
            f"Replaying: {sent:,} sent, {self.counts[FIXED]:,} fixed, "
            f"{self.counts[FAILING]:,} still failing"
        )
        self.bar.update(self.task, description=said)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def replay_table(report: Report) -> Listing[Outcome]:
    return table(replay_columns(sent=not report.dry_run), report.outcomes)


def totals_line(report: Report) -> str:
    t = report.totals()
    if report.dry_run:
        line = f"{t['wouldSend']} to send to {printable(report.target, 200)}"
    else:
        line = (
            f"{t['fixed']} fixed, {t['stillFailing']} still failing"
            f" at {printable(report.target, 200)}"
        )
    if t["errors"]:
        line += f"; {t['errors']:,} not sent (error)"
    if t["skipped"]:
        line += f"; {t['skipped']:,} skipped"
        if any(o.detail == ALREADY_REPLAYED for o in report.outcomes):
            line += ", already replayed with a 2xx (--force sends again)"
    if report.interrupted:
        line += " (interrupted)"
    if report.unreachable:
        line += (
            f". Stopped after {report.unreachable} connection failures in a row: nothing "
            "answers there. Start the receiver, then run the same command again (what was "
            "fixed is skipped)"
        )
    return line


def _run_note(r: RunSummary) -> str:
    notes = []
    if r.interrupted:
        notes.append("interrupted")
    if r.finished is None:
        notes.append("did not finish")
    return "; ".join(notes)


def show_history(ledger: str | None, fmt: str, output: str | None) -> None:
    """`replay --history`: the runs in the ledger (at `ledger`, else the default one),
    newest first, in a table, TSV or an export; a line on stderr when there are none."""
    from pathlib import Path

    from atwh.output.show import note, show_listing, write_export
    from atwh.recover.ledger import Ledger, default_path

    path = Path(ledger) if ledger else default_path()
    if not path.exists():
        note(f"No replays yet: no ledger at {path}.")
        return
    with Ledger(path, create=False) as book:
        runs = book.history()
    if not runs:
        note(f"No replays yet in {path}.")
    elif fmt in ("table", "tsv"):
        show_listing(history_columns(), runs, fmt, output)
    else:
        write_export(runs, fmt, output)


def history_columns() -> list[Column[RunSummary]]:
    """`replay --history`: one row per run, newest first; the run number, the counts and the
    target stay, the time and the source go first when the width runs out."""
    return [
        Column("Run", lambda r: str(r.id), keep=ALWAYS, justify="right"),
        Column("Started", lambda r: local_time(r.started), keep=40, tsv=lambda r: iso(r.started)),
        Column("Source", lambda r: printable(r.source, 200), keep=30),
        Column("Target", lambda r: printable(r.target, 200), keep=ALWAYS, shrink=16),
        Column("Sent", lambda r: str(r.sent), keep=ALWAYS, justify="right"),
        Column(
            "Fixed",
            lambda r: Text(str(r.fixed), style="green" if r.fixed else "dim"),
            keep=ALWAYS,
            justify="right",
        ),
        Column(
            "Failing",
            lambda r: Text(str(r.failing), style="red" if r.failing else "dim"),
            keep=ALWAYS,
            justify="right",
        ),
        Column("Note", _run_note, keep=50),
    ]


_CATEGORY_STYLES = {
    LOST: "bold red",
    NOT_DELIVERED: "red",
    UNKNOWN: "yellow",
    DUPLICATED: "magenta",
    CONFLICTING: "magenta",
    OK: "green",
}
_CATEGORY_NOTES = {
    LOST: "the log shows a 2xx, the store does not have it: acknowledged and dropped",
    NOT_DELIVERED: "no attempt succeeded and the store does not have it: replay candidates",
    UNKNOWN: "stored, not in the log: test events, other webhooks, older than the window",
    DUPLICATED: "listed more than once in the --stored file",
    CONFLICTING: "the inbox holds two events under this id: another body for the same event, "
    "or the id once as a number and once as a string",
}


def summary_columns() -> list[Column[tuple[str, str, int]]]:
    """reconcile's summary: events per category and event name."""
    return [
        Column("Category", lambda r: Text(r[0], style=_CATEGORY_STYLES[r[0]]), keep=ALWAYS),
        Column("Event", lambda r: printable(r[1], 80), keep=ALWAYS, shrink=12),
        Column("Events", lambda r: str(r[2]), keep=ALWAYS, justify="right"),
    ]


def entry_columns(with_category: bool = False, stored: bool = True) -> list[Column[Entry]]:
    """The events of a category: the id whole; then the name (whole before the rest, and
    shortened before it goes), the last code, the attempts and the time while there is
    room for them; how many times stored unless `stored` is False (lost and not delivered
    events: never stored, always 0)."""
    columns: list[Column[Entry]] = []
    if with_category:
        columns.append(
            Column(
                "Category",
                lambda e: Text(e.category, style=_CATEGORY_STYLES[e.category]),
                keep=ALWAYS,
                tsv=lambda e: e.category,
            )
        )
    return columns + [
        Column(
            "Event id", lambda e: printable(e.event_id, 100), keep=ALWAYS, tsv=lambda e: e.event_id
        ),
        Column(
            "Name",
            lambda e: (
                printable(e.event_name or "?", 60) + (" (backfilled)" if e.backfilled else "")
            ),
            keep=60,
            shrink=8,
            greedy=True,
            tsv=lambda e: (e.event_name or "?") + (" (backfilled)" if e.backfilled else ""),
        ),
        Column(
            "Created",
            lambda e: local_time(e.created) if e.created else "",
            keep=20,
            tsv=lambda e: iso(e.created),
        ),
        Column(
            "Attempts",
            lambda e: str(e.attempts) if e.attempts else "",
            keep=30,
            justify="right",
            tsv=lambda e: e.attempts,
        ),
        Column(
            "Last code",
            lambda e: code_text(e.last_code) if e.attempts else Text(""),
            keep=40,
            justify="right",
            tsv=lambda e: e.last_code,
        ),
        *(
            [
                Column(
                    "Stored",
                    lambda e: str(e.stored),
                    keep=ALWAYS,
                    justify="right",
                    tsv=lambda e: e.stored,
                )
            ]
            if stored
            else []
        ),
    ]


def write_entries_tsv(entries: Iterable[Entry], stream: IO[str]) -> None:
    """What write_tsv(entry_columns(with_category=True), entries, stream) writes, a line
    an event in one f-string (a third of the general writer's time: reconcile lists every
    event that is not ok, half of a large log)."""
    from atwh.output.listing import column_name, tsv_field

    columns = [c for c in entry_columns(with_category=True) if c.piped]
    stream.write("\t".join(column_name(c) for c in columns) + "\n")
    for e in entries:
        event_id = e.event_id
        name = (e.event_name or "?") + (" (backfilled)" if e.backfilled else "")
        if not (event_id.isprintable() and name.isprintable()):
            event_id, name = tsv_field(event_id), tsv_field(name)
        code = e.last_code
        stream.write(
            f"{e.category}\t{event_id}\t{name}\t{iso(e.created) or ''}\t{e.attempts}\t"
            f"{'' if code is None else code}\t{e.stored}\n"
        )
    stream.flush()


TABLE_ROWS = 1000  # events of one category a terminal table shows; piped or --json: all


def reconcile_view(result: Reconciliation) -> Group:
    """The summary by category and event name, then the events of each category but ok
    (at most TABLE_ROWS of each: the rest are said, and listed piped or with --json)."""
    from itertools import islice

    head = Text("Compared ", style="bold")
    since = local_time(result.since) if result.since else "the start of the log"
    head.append(f"the log since {since} with {printable(result.store, 300)}")
    parts: list[object] = [head, Text(), table(summary_columns(), list(result.summary()))]
    for category in CATEGORIES[:-1]:
        count = result.count(category)
        if not count:
            continue
        entries: list[Entry] = list(islice(result.of(category), TABLE_ROWS))
        parts += [
            Text(),
            Text.assemble(
                (f"{category.capitalize()} ({count:,})", _CATEGORY_STYLES[category]),
                (f"  {_CATEGORY_NOTES[category]}", "dim"),
            ),
        ]
        parts.append(
            table(entry_columns(stored=category in (DUPLICATED, CONFLICTING, UNKNOWN)), entries)
        )
        if count > len(entries):
            parts.append(
                Text(
                    f"… and {count - len(entries):,} more (piped, or --json, lists them all)",
                    style="dim",
                )
            )
    return Group(*parts)  # type: ignore[arg-type]


def reconcile_totals(result: Reconciliation) -> str:
    return ", ".join(f"{n:,} {c}" for c, n in result.totals().items())


def show_report(report: Report, fmt: str, output: str | None) -> None:
    """The replay report: a table (or TSV) or an export, then its totals line on stderr."""
    from atwh.output.show import note, show_listing, write_export

    if fmt in ("table", "tsv"):
        show_listing(replay_columns(sent=not report.dry_run), report.outcomes, fmt, output)
    else:
        write_export(report.outcomes, fmt, output)
    note(totals_line(report))


def show_reconciliation(
    result: Reconciliation, report: Report | None, mode: str, output: str | None
) -> None:
    """The reconciliation (and the replay after it, if any): JSON (`mode` json), the events
    to look at as TSV (piped), or the tables; then the totals on stderr."""
    from atwh.output.show import note, print_rich

    if mode == "json":  # written as it goes: the events are not all held
        from atwh.output.export import open_output

        extra = {"replay": [o.to_api() for o in report.outcomes]} if report is not None else None
        with open_output(output) as stream:
            result.write_json(stream, extra)
    elif mode == "tsv":  # piped: the events to look at, one a line, with their category
        import sys

        if any(result.count(c) for c in CATEGORIES[:-1]):
            write_entries_tsv(result.trouble_entries(), sys.stdout)
    else:
        view = reconcile_view(result)
        if report is not None:
            title = Text(f"Replayed to {printable(report.target, 200)}", style="bold")
            view = Group(view, Text(), title, replay_table(report))
        print_rich(view, output)
    note(reconcile_totals(result))
    if report is not None:
        note(totals_line(report))
