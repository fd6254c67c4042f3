"""`atwh trigger` and `atwh verify` for people: the report of what an endpoint answered,
and a signature's diagnosis."""

from __future__ import annotations

import sys
import threading
from collections.abc import Collection

from rich.text import Text

from atwh.endpoint.trigger import Plan, Report, Request, Result
from atwh.errors import printable
from atwh.output.listing import ALWAYS, Column
from atwh.output.tables import code_text, duration
from atwh.signature import Diagnosis

TABLE_ROWS = 50  # rows of a terminal's table at most; piped, every row


# The event id and the code are never dropped; an answer too long for its column goes under
# its row, then the time and the name give way.
def trigger_run(
    url: str,
    plan: Plan,
    requests: Collection[Request],
    secret: str | None,
    mode: str,
    curl: bool,
    dry_run: bool,
    concurrency: int,
    timeout: float,
) -> int:
    """`atwh trigger`'s run once the requests are made: print them as curl commands or as
    a dry run, or send them (signed with `secret`, unless None) and show one line per event
    in `mode` (table, tsv, json, ndjson) and the totals; the exit status.

    Piped (TSV, NDJSON, JSON) each row is written and flushed as its answer comes, in the
    order sent; on a terminal a progress bar on stderr while it takes a moment, then a table
    of at most TABLE_ROWS rows (the failures first). Ctrl-C stops sending: what was sent is
    shown, and the totals say it was interrupted (exit 130)."""
    from pathlib import Path

    from atwh.endpoint import trigger as t
    from atwh.errors import ExitStatus
    from atwh.output.show import note, plural

    if curl:
        lines, files = t.curl_lines(url, requests, secret, Path.cwd())
        for line in lines:
            print(line, flush=True)
        if files:
            note(
                f"Wrote the body of {plural(files, 'request')} into the current directory "
                "(atwh-trigger-N.json): larger than 4 KiB, or not plain text."
            )
        if not plan.unsigned and plan.timestamp is None:
            note(
                "Note: each command carries a timestamp from now; a receiver rejects it once "
                "older than its tolerance (2 minutes for 'atwh serve' and the vendor's example)."
            )
        return ExitStatus.OK
    if dry_run:
        for request in requests:
            print(t.dry_run_text(printable(url, None), request, secret), flush=True)
        note(f"{plural(len(requests), 'request')} shown; nothing sent.")
        return ExitStatus.OK
    shown = TriggerRows(mode)
    # a bar on stderr unless the rows go live to the same terminal (--format tsv there)
    live_rows = mode != "table" and sys.stdout.isatty()
    progress = TriggerProgress(len(requests)) if sys.stderr.isatty() and not live_rows else None

    def on_result(result: Result) -> None:
        shown.add(result)
        if progress is not None:
            progress.add(result)

    def on_stopping(in_flight: int) -> None:
        them = "it" if in_flight == 1 else "them"
        waiting = (
            f"waiting for the {plural(in_flight, 'request')} in flight (each at most "
            f"{timeout:g}s); Ctrl-C again to abandon {them}"
            if in_flight
            else "finishing"
        )
        line = f"Interrupted: sending no more events, {waiting}."
        if progress is not None:
            progress.say(line)
        else:
            note(line)

    try:
        report = t.send(url, requests, secret, concurrency, timeout, on_result, on_stopping)
    finally:
        if progress is not None:
            progress.stop()
    shown.close(report)
    note(trigger_totals(report, url))
    return report.exit_status


class TriggerRows:
    """Where the results go as they come: piped (`tsv`, `ndjson`, `json`), each written and
    flushed at once; on a terminal (`table`), at most TABLE_ROWS kept (every failure first,
    then the first acknowledged ones) for the table at the end. Nothing else is kept."""

    def __init__(self, mode: str) -> None:
        from atwh.output.export import Exporter
        from atwh.output.listing import TsvWriter

        self.mode = mode
        self.stream = sys.stdout
        self.tsv = TsvWriter(trigger_columns(), self.stream) if mode == "tsv" else None
        self.export = Exporter(mode, self.stream) if mode in ("json", "ndjson") else None
        if self.tsv is not None:
            self.stream.flush()  # the header, at once
        self.failed: list[tuple[int, Result]] = []
        self.acknowledged: list[tuple[int, Result]] = []
        self.seen = 0

    def add(self, result: Result) -> None:
        self.seen += 1
        if self.tsv is not None:
            self.tsv.write(result)
        elif self.export is not None:
            self.export.write(result)
            self.stream.flush()
        else:
            kept = self.acknowledged if result.answer.ok else self.failed
            if len(kept) < TABLE_ROWS:
                kept.append((self.seen, result))

    def close(self, report: Report) -> None:
        """The end: JSON's closing bracket, or the table (and what it left out)."""
        from atwh.output.show import note, show_listing

        if self.export is not None:
            self.export.close()
            return
        if self.tsv is not None:
            return
        failed = self.failed[:TABLE_ROWS]
        rows = sorted([*failed, *self.acknowledged[: TABLE_ROWS - len(failed)]], key=lambda r: r[0])
        show_listing(trigger_columns(), [r for _, r in rows], self.mode)
        if len(rows) < self.seen:
            note(table_left_out(len(rows), self.seen, len(failed), report.sent - report.ok))


def table_left_out(shown: int, sent: int, failed_shown: int, failed: int) -> str:
    """The line under a table that could not show every row."""
    if failed_shown < failed:
        which = f"the first {failed_shown:,} not acknowledged"
    elif failed:
        which = f"the {failed:,} not acknowledged, then the first {shown - failed:,} acknowledged"
    else:
        which = "the first ones"
    return (
        f"{shown:,} of {sent:,} events shown ({which}); every row: pipe it (TSV), or "
        "--format ndjson or --json"
    )


class TriggerProgress:
    """While trigger sends, a bar on stderr (a terminal only) once it takes a moment:
    `Sending 1,234 of 20,000: 1,230 acknowledged, 4 not`; gone when it ends, as the rows
    follow with every result once. It never takes stdout over (a pipe there keeps its
    rows)."""

    DELAY = 0.5  # seconds before the bar shows

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        self.total = total
        self.sent = self.ok = 0
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),  # short of the width: a `^C` echoed stays on its line
            console=Console(stderr=True),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
            expand=False,
        )
        self.task = self.bar.add_task(self._said(), total=total or None)
        self.lock = threading.Lock()
        self.started = False
        self.stopped = False
        self.timer = threading.Timer(self.DELAY, self._start)
        self.timer.daemon = True
        self.timer.start()

    def _said(self) -> str:
        not_ok = self.sent - self.ok
        return f"Sending {self.sent:,} of {self.total:,}: {self.ok:,} acknowledged, {not_ok:,} not"

    def _start(self) -> None:
        with self.lock:
            if not self.stopped:
                self.bar.start()
                self.started = True

    def add(self, result: Result) -> None:
        self.sent += 1
        self.ok += result.answer.ok
        self.bar.update(self.task, completed=self.sent, description=self._said())

    def say(self, line: str) -> None:
        """A line on stderr above the bar."""
        with self.lock:
            if self.started:
                self.bar.console.print(line, markup=False, highlight=False)
                return
        from atwh.output.show import note

        note(line)

    def stop(self) -> None:
        self.timer.cancel()
        with self.lock:
            self.stopped = True
            if self.started:
                self.bar.stop()


def trigger_columns() -> list[Column[Result]]:
    """One row per request, in the order sent: event name, event id, code, time, answer
    (shortened on a terminal, whole in TSV)."""
    return [
        Column("Event", lambda r: printable(_name(r.request), 60), keep=60),
        Column(
            "Event id",
            lambda r: Text(printable(r.request.event_id or "—", 100), style="dim"),
            keep=ALWAYS,
        ),
        Column(
            "Code",
            lambda r: code_text(r.answer.code),
            keep=ALWAYS,
            justify="right",
            tsv=lambda r: r.answer.code,
        ),
        Column(
            "Time",
            lambda r: "—" if r.abandoned else duration(r.answer.seconds),  # (not waited for)
            keep=20,
            justify="right",
            tsv=lambda r: None if r.abandoned else duration(r.answer.seconds),
        ),
        Column(
            "Answer",
            lambda r: r.answer.text(300),
            keep=10,
            tsv=lambda r: r.answer.text(None),
            below=True,  # cut, the answer says nothing: under the row, whole
        ),
    ]


def _name(request: Request) -> str:
    """The event's name; an unsigned request without one is the registration's test."""
    return request.name or ("test request" if not request.signed else "?")


def trigger_totals(report: Report, url: str) -> str:
    """The line under the report: how many were acknowledged, and what was left unsent."""
    line = f"{report.ok:,} of {report.sent:,} acknowledged (2xx) by {printable(url, 200)}"
    if report.redirects:
        line += f"; {report.redirects:,} redirected (a 3xx is a failure; not followed)"
    if report.unanswered:
        line += f"; {report.unanswered:,} got no answer"
    if report.abandoned:
        line += f"; {report.abandoned:,} abandoned in flight (a second Ctrl-C)"
    if report.interrupted:
        line = "Interrupted: " + line
        if report.not_sent:
            line += f"; {report.not_sent:,} not sent"
    elif report.not_sent:
        line += f"; {report.not_sent:,} not sent once the URL could not be reached"
    return line


def diagnosis_text(d: Diagnosis) -> str:
    """`valid: …` or `invalid (cause): …`, one line (the explanation may quote a header)."""
    explanation = printable(d.explanation, None)
    return f"valid: {explanation}" if d.valid else f"invalid ({d.cause}): {explanation}"
