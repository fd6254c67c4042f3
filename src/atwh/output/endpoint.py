"""`atwh trigger` and `atwh verify` for people: the report of what an endpoint answered,
and a signature's diagnosis."""

from __future__ import annotations

from rich.text import Text

from atwh.endpoint.trigger import Plan, Report, Request, Result
from atwh.errors import printable
from atwh.output.listing import ALWAYS, Column
from atwh.output.tables import code_text, duration
from atwh.signature import Diagnosis


# The event id and the code are never dropped; an answer too long for its column goes under
# its row, then the time and the name give way.
def trigger_run(
    url: str,
    plan: Plan,
    requests: list[Request],
    secret: str | None,
    mode: str,
    curl: bool,
    dry_run: bool,
    concurrency: int,
    timeout: float,
) -> int:
    """`atwh trigger`'s run once the requests are made: print them as curl commands or as
    a dry run, or send them (signed with `secret`, unless None) and show one line per event
    in `mode` (table, tsv, json, ndjson) and the totals; the exit status."""
    from pathlib import Path

    from atwh.endpoint import trigger as t
    from atwh.errors import ExitStatus
    from atwh.output.show import note, plural, show_listing, write_export

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
    report = t.send(url, requests, secret, concurrency, timeout)
    if mode in ("json", "ndjson"):
        write_export(report.results, mode, None)
    else:
        show_listing(trigger_columns(), report.results, mode)
    note(trigger_totals(report, url))
    return report.exit_status


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
        Column("Time", lambda r: duration(r.answer.seconds), keep=20, justify="right"),
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
    ok = sum(r.answer.ok for r in report.results)
    sent = len(report.results)
    line = f"{ok:,} of {sent:,} acknowledged (2xx) by {printable(url, 200)}"
    redirects = sum(r.answer.redirect for r in report.results)
    if redirects:
        line += f"; {redirects:,} redirected (a 3xx is a failure; not followed)"
    unanswered = sum(r.answer.code is None for r in report.results)
    if unanswered:
        line += f"; {unanswered:,} got no answer"
    if report.not_sent:
        line += f"; {report.not_sent:,} not sent once the URL could not be reached"
    return line


def diagnosis_text(d: Diagnosis) -> str:
    """`valid: …` or `invalid (cause): …`, one line (the explanation may quote a header)."""
    explanation = printable(d.explanation, None)
    return f"valid: {explanation}" if d.valid else f"invalid ({d.cause}): {explanation}"
