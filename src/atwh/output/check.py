"""`atwh check`'s report for people (a table that wraps to the terminal) and for pipes (TSV)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from atwh.endpoint.check import (
    FAIL,
    PASS,
    SKIP,
    WARN,
    CheckResult,
    Exchange,
    Report,
    short_time,
)
from atwh.errors import printable
from atwh.output.listing import Column

VERDICT_STYLES = {PASS: "green", WARN: "yellow", FAIL: "bold red", SKIP: "magenta"}
SHOWN = {PASS: "pass", WARN: "WARN", FAIL: "FAIL", SKIP: "not run"}  # on a terminal


def verdict_text(verdict: str) -> Text:
    return Text(SHOWN[verdict], style=VERDICT_STYLES[verdict])


def codes_text(c: CheckResult) -> str:
    """What came back, briefly: `401 · 2 ms`, `200 ×5 · 4 ms` (the slowest), `none`."""
    xs: Sequence[Exchange] = c.exchanges
    codes = _runs(["-" if x.answer is None else str(x.code) if x.code else "none" for x in xs])
    times = [x.answer.seconds for x in xs if x.answer is not None and x.code is not None]
    return f"{codes} · {short_time(max(times))}" if times else codes


def _runs(shown: Sequence[str]) -> str:
    """`200 200`, but `200 ×5` for more than two of the same."""
    if len(shown) > 2 and len(set(shown)) == 1:
        return f"{shown[0]} ×{len(shown)}"
    return " ".join(shown)


def answer_text(c: CheckResult, narrow: bool = False) -> Text:
    """Codes and time; for a warning or a failure, what it means and what came back; what
    was sent and the fix too, when there are no columns for them (`narrow`)."""
    out = Text(codes_text(c) if c.exchanges else printable(c.detail, 300))
    if c.note:
        out.append(f"\n{printable(c.note, 300)}")
    if c.verdict == PASS:
        return out
    if c.verdict == SKIP:
        if not c.exchanges:  # redirect, latency: their detail says what was seen
            return out
        if all(x.answer is None for x in c.exchanges):
            out = Text(f"not sent ({c.exchanges[0].not_sent})", style=VERDICT_STYLES[SKIP])
        else:
            out.append(f"\n{c.why}", style=VERDICT_STYLES[SKIP])
        if narrow:
            out.append(f"\nTo send: {printable(c.sent, 300)}", style="dim")
        return out
    if c.exchanges:
        bad = next((x for x in c.exchanges if x.good is False), None)
        if bad is not None and bad.answer is not None and bad.answer.code is not None:
            said = bad.answer.text(80)
            if said:
                out.append(f"  {said}", style="dim")
        out.append(f"\n{c.why}", style=VERDICT_STYLES[c.verdict])
    if narrow:
        out.append(f"\nSent: {printable(c.sent, 300)}", style="dim")
        if c.fix:
            out.append(f"\nFix: {c.fix}", style="dim")
    return out


WIDE = 120  # from this width on, what was sent and the fix have columns of their own


class CheckTable:
    """The checks, at the console's width: five columns when wide, three when narrow (what
    was sent and the fix of a warning or failure then under the answer)."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wide = options.max_width >= WIDE
        table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
        table.add_column("Check", no_wrap=True)
        table.add_column("Verdict", no_wrap=True)
        if wide:
            table.add_column("Sent", ratio=2, overflow="fold")
        table.add_column("Answer", ratio=3, overflow="fold")
        if wide:
            table.add_column("Fix", ratio=3, overflow="fold")
        for c in self.report.checks:
            verdict = verdict_text(c.verdict)
            if wide:
                fix = Text(c.fix or "", style="dim")
                sent = Text(c.sent, style="dim" if c.verdict == SKIP else "")
                table.add_row(c.id, verdict, sent, answer_text(c), fix)
            else:
                table.add_row(c.id, verdict, answer_text(c, narrow=True))
        yield table


def show_check(report: Report, as_json: bool) -> None:
    """`atwh check`'s report: JSON, a table on a terminal, else TSV lines (the summary on
    stderr)."""
    import json
    import sys

    if as_json:
        print(json.dumps(report.as_json(), indent=2), flush=True)
    elif sys.stdout.isatty():
        from atwh.output.show import print_rich

        print_rich(report_table(report), None)
    else:
        from atwh.output.listing import write_tsv
        from atwh.output.show import note

        write_tsv(tsv_columns(), report.checks, sys.stdout)
        note(report.summary())


def report_table(report: Report) -> Group:
    head = Text("atwh check ", style="bold").append(printable(report.url, 500), style="")
    return Group(head, CheckTable(report), summary_text(report))


def summary_text(report: Report) -> Text:
    """The summary line: why the run stopped, if it did, and a note on intermittent
    answers are in it."""
    style = "bold red" if report.failed else "yellow" if report.count(WARN) else "bold green"
    return Text(report.summary(), style=style)


def tsv_columns() -> list[Column[CheckResult]]:
    """Piped: every check on one line, nothing cut."""
    return [
        Column("Id", lambda c: c.id),
        Column("Verdict", lambda c: c.verdict),
        Column("Codes", lambda c: " ".join("-" if code is None else str(code) for code in c.codes)),
        Column("Ms", lambda c: _slowest_ms(c)),
        Column("Sent", lambda c: c.sent),
        Column("Detail", lambda c: printable(c.detail, None)),
        Column("Fix", lambda c: c.fix or ""),
    ]


def _slowest_ms(c: CheckResult) -> str:
    times = [x.answer.seconds for x in c.exchanges if x.answer is not None]
    return f"{max(times) * 1000:.0f}" if times else ""
