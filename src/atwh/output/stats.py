"""`atwh stats` for people: the numbers side by side, attempts per day as stacked bars, and
the breakdowns by event name and by HTTP code."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from atwh.core.durations import duration
from atwh.errors import printable
from atwh.output.listing import ALWAYS, Column, table
from atwh.output.show import plural

if TYPE_CHECKING:
    from atwh.client.api import ApiClient
    from atwh.client.filters import DeliveryFilter

SUCCEEDED, FAILED, PENDING = "█", "▒", "░"  # told apart without colour too


class _AtWidth:
    """Built when rendered, at the width there is."""

    def __init__(self, build: Callable[[int], Any]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.build(options.max_width)


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f}%"


def seconds(value: float | None) -> str:
    return "—" if value is None else duration(value)


def _count(n: int) -> str:
    return f"{n:,}"


def _rows(w: dict[str, Any]) -> list[tuple[str, str | Text]]:
    attempts = _count(w["attempts"])
    if w["pending"]:
        attempts += f" ({_count(w['pending'])} pending)"
    retries = w["retries_per_event"]
    lag, recovery, answers = w["lag_seconds"], w["recovery_seconds"], w["answers"]
    still = w["still_failing_events"]
    codes = "\n".join(f"{c['code']} × {_count(c['count'])}" for c in w["top_codes"][:5])
    causes = "\n".join(
        f"{printable(c['cause'], 40)} × {_count(c['count'])}" for c in w["top_causes"][:5]
    )
    return [
        ("Attempts", attempts),
        ("Events", _count(w["events"])),
        ("Attempt success rate", percent(w["attempt_success_rate"])),
        ("Event success rate", Text(percent(w["event_success_rate"]), style="bold")),
        ("First-attempt success", percent(w["first_attempt_success_rate"])),
        (
            "Retries per event",
            "—" if retries["mean"] is None else f"{retries['mean']:.2f} mean, {retries['max']} max",
        ),
        (
            "Answers 2xx / 3xx",
            f"{_count(answers['2xx'])} / {_count(answers['3xx'])}",
        ),
        (
            "Answers 4xx / 5xx",
            f"{_count(answers['4xx'])} / {_count(answers['5xx'])}",
        ),
        ("No answer", _count(answers["none"])),
        ("Lag p50 / p95", f"{seconds(lag['p50'])} / {seconds(lag['p95'])}"),
        ("Lag p99 / max", f"{seconds(lag['p99'])} / {seconds(lag['max'])}"),
        (
            "Recovery p50 / p95",
            f"{seconds(recovery['p50'])} / {seconds(recovery['p95'])} "
            f"({plural(recovery['count'], 'event')})",
        ),
        ("Still failing events", Text(_count(still), style="red" if still else "green")),
        ("Top codes", codes or "—"),
        ("Top failure causes", causes or "—"),
    ]


def stats_table(summary: dict[str, Any]) -> _AtWidth:
    """The numbers, one column per webhook, the ids whole; when the columns do not fit
    side by side, one table per webhook, one under the other."""
    hooks = summary["webhooks"]
    columns = [_rows(w) for w in hooks]
    labels = [label for label, _ in columns[0]] if columns else []
    ids = [printable(w["webhook_id"] or "?", 100) for w in hooks]

    def cell_len(value: Any) -> int:
        text = value if isinstance(value, Text) else Text(str(value))
        return max((len(line) for line in text.plain.splitlines()), default=0)

    def table(which: list[int], show_header: bool) -> Table:
        t = Table(box=None, header_style="bold", pad_edge=False, show_header=show_header)
        t.add_column("", style="bold", no_wrap=True)
        for i in which:
            t.add_column(ids[i], no_wrap=True, justify="right", min_width=8)
        for row, label in enumerate(labels):
            t.add_row(label, *(columns[i][row][1] for i in which))
        return t

    def build(width: int) -> Any:
        label_width = max(map(len, labels), default=0)
        needed = label_width + sum(
            2 + max([len(ids[i]), *(cell_len(v) for _, v in columns[i])]) for i in range(len(hooks))
        )
        if len(hooks) < 2 or needed <= width:
            return table(list(range(len(hooks))), show_header=True)
        stacked: list[Any] = []
        for i in range(len(hooks)):
            if stacked:
                stacked.append(Text())
            stacked.append(Text(f"Webhook {ids[i]}", style="bold"))
            stacked.append(table([i], show_header=False))
        return Group(*stacked)

    return _AtWidth(build)


def window_line(summary: dict[str, Any]) -> Text:
    since, until = summary.get("since"), summary.get("until")
    text = Text("Attempts created ", style="dim")
    text.append(f"since {_local(since)}" if since else "at any time", style="dim")
    text.append(f" until {_local(until)}" if until else " until now", style="dim")
    return text


def _local(value: str) -> str:
    """The window's ends in the one time format of every view (tables.when)."""
    from atwh.core.dates import parse_datetime
    from atwh.output.tables import when

    return when(parse_datetime(value))


def chart(
    buckets: list[dict[str, Any]], by: str, title: str | None = None, top: int | None = None
) -> _AtWidth:
    """Attempts per day (or hour) as horizontal bars, successes then failures, one line each,
    scaled to `top` attempts (default: the busiest bucket's)."""

    def build(width: int) -> Text:
        out = Text()
        legend = f"Attempts per {by}, local time" + (f", {title}" if title else "")
        out.append(legend, style="bold")
        out.append("   " if len(legend) + 30 <= width else "\n")
        out.append(SUCCEEDED, style="green")
        out.append(" succeeded  ")
        out.append(FAILED, style="red")
        out.append(" failed")
        if any(b["pending"] for b in buckets):
            out.append("  ")
            out.append(PENDING, style="yellow")
            out.append(" pending")
        if not buckets:
            out.append("\n(no attempts)", style="dim")
            return out
        labels = [_bucket_label(b["start"], by) for b in buckets]
        label_w = max(map(len, labels))
        total_w = max(len("attempts"), *(len(_count(b["attempts"])) for b in buckets))
        failed_w = max(len("failed"), *(len(_count(b["failed"])) for b in buckets))
        bar_w = max(10, width - label_w - total_w - failed_w - 4)
        most = top or max(b["attempts"] for b in buckets) or 1
        out.append("\n" + " " * (label_w + 1 + bar_w + 1))
        out.append(f"{'attempts':>{total_w}} {'failed':>{failed_w}}", style="dim")
        for label, b in zip(labels, buckets, strict=True):
            ok, bad, wait = _split(b["succeeded"], b["failed"], b["pending"], most, bar_w)
            out.append(f"\n{label:<{label_w}} ")
            out.append(SUCCEEDED * ok, style="green")
            out.append(FAILED * bad, style="red")
            out.append(PENDING * wait, style="yellow")
            out.append(" " * (bar_w - ok - bad - wait) + " ")
            out.append(f"{_count(b['attempts']):>{total_w}} ")
            out.append(f"{_count(b['failed']):>{failed_w}}", style="red" if b["failed"] else "dim")
        return out

    return _AtWidth(build)


def _split(ok: int, bad: int, wait: int, top: int, width: int) -> tuple[int, int, int]:
    """Characters for each part of a bar scaled to `top`: a part that is not zero gets at
    least one, so a single failure on a busy day still shows."""
    ok_c = max(1 if ok else 0, round(ok * width / top))  # each part rounded alone: the same
    bad_c = max(1 if bad else 0, round(bad * width / top))  # count, the same length
    wait_c = max(1 if wait else 0, round(wait * width / top))
    while (
        ok_c + bad_c + wait_c > width
    ):  # rounding or the minimums pushed it over: take from the largest
        if ok_c >= bad_c and ok_c > (1 if ok else 0):
            ok_c -= 1
        elif bad_c > (1 if bad else 0):
            bad_c -= 1
        else:
            wait_c -= 1
    return ok_c, bad_c, wait_c


def _bucket_label(start: str, by: str) -> str:
    when = datetime.fromisoformat(start)
    return when.strftime("%a %m-%d %H:00") if by == "hour" else when.strftime("%a %m-%d")


def breakdown_rows(summary: dict[str, Any], by: str) -> list[dict[str, Any]]:
    """The rows of the breakdown by event name or by HTTP code of every webhook, each with
    its `webhook_id`, and with its `share` of the webhook's attempts by code."""
    rows = []
    for w in summary["webhooks"]:
        if by == "event":
            rows += [{**r, "webhook_id": w["webhook_id"]} for r in w["by_event"]]
            continue
        answered = sum(r["attempts"] for r in w["by_code"]) or 1
        rows += [
            {**r, "webhook_id": w["webhook_id"], "share": r["attempts"] / answered}
            for r in w["by_code"]
        ]
    return rows


def _number(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _code_cell(code: str) -> Text:
    style = "green" if code.startswith("2") else "yellow" if code[0] in "34" else "red"
    return Text("no answer" if code == "none" else code, style=style)


def breakdown_columns(by: str, show_webhook: bool = False) -> list[Column[dict[str, Any]]]:
    """Attempts by event name or by HTTP code ('none': no answer), rows of `breakdown_rows`;
    the name (whole), the attempts and the failures are never dropped; the success rate,
    the successes and the pending ones go when the width runs out."""
    columns: list[Column[dict[str, Any]]] = []
    if show_webhook:
        columns.append(Column("Webhook", lambda r: printable(r["webhook_id"] or "?", 100), keep=80))

    def count(header: str, key: str, keep: int = ALWAYS, **extra: Any) -> Column[dict[str, Any]]:
        return Column(
            header,
            extra.pop("cell", lambda r: _count(r[key])),
            keep=keep,
            justify="right",
            tsv=lambda r: _number(r[key]),
            **extra,
        )

    if by == "event":
        return columns + [
            Column("Event", lambda r: printable(r["event_name"], 120), keep=ALWAYS),
            count("Attempts", "attempts"),
            count("Succeeded", "succeeded", 50),
            count(
                "Failed",
                "failed",
                cell=lambda r: Text(_count(r["failed"]), style="red" if r["failed"] else "dim"),
            ),
            count("Pending", "pending", 30),
            count(
                "Success rate",
                "attempt_success_rate",
                60,
                cell=lambda r: percent(r["attempt_success_rate"]),
            ),
        ]
    return columns + [
        Column("Code", lambda r: _code_cell(r["code"]), keep=ALWAYS, tsv=lambda r: r["code"]),
        count("Attempts", "attempts"),
        count("Share", "share", cell=lambda r: f"{r['share'] * 100:.1f}%"),
    ]


def stats_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, ensure_ascii=False, indent=2) + "\n"


def stats_view(summary: dict[str, Any], by: str) -> Group:
    """Everything `atwh stats` prints on a terminal, for one webhook or several."""
    parts: list[Any] = [window_line(summary), Text(), stats_table(summary)]
    hooks = summary["webhooks"]
    top = max((b["attempts"] for w in hooks for b in w["buckets"]), default=0)
    for w in hooks:
        title = printable(w["webhook_id"] or "?", 40) if len(hooks) > 1 else None
        parts.append(Text())
        if by in ("day", "hour"):
            parts.append(chart(w["buckets"], by, title, top))  # one scale: bars compare
        else:
            heading = f"Attempts by {'event name' if by == 'event' else 'HTTP code'}"
            parts.append(Text(heading + (f", {title}" if title else ""), style="bold"))
            parts.append(table(breakdown_columns(by), breakdown_rows({"webhooks": [w]}, by)))
    return Group(*parts)


def measure(
    ids: list[str],
    make_client: Callable[[], ApiClient],
    flt: DeliveryFilter,
    by: str,
    mode: str,
    output: str | None,
    bars: tuple[float | None, float | None],
) -> int:
    """`atwh stats`'s run: the webhooks' logs read over the window, the numbers shown as
    `mode` says (json, tsv or a table), then the notes and the bars (a success rate, a p95
    lag in seconds) checked: exit 1 when one is missed."""
    import sys

    from atwh.client.api import fetch_pages
    from atwh.errors import ExitStatus
    from atwh.observe.stats import BREAKDOWNS, BUCKETS, Stats, Window, check_bars, odd_dates_note
    from atwh.output.progress import Progress
    from atwh.output.show import print_rich, show_listing

    progress = Progress()
    # stats count only the attempts in the window: paging may stop at its start
    window = Window(flt.since, flt.until)
    result = Stats(ids, by if by in BUCKETS else "day", window)
    try:
        for page in fetch_pages(ids, make_client, on_page=progress, since=flt.since):
            result.add_page(page, flt)
    finally:
        progress.stop()
    summary = result.summary(flt.since, flt.until)

    if mode == "json":
        from atwh.output.export import open_output

        with open_output(output) as out:
            out.write(stats_json(summary))
    elif mode == "tsv" and by in BREAKDOWNS:  # piped: the breakdown, one line a row
        rows = breakdown_rows(summary, by)
        if rows:
            show_listing(breakdown_columns(by, len(ids) > 1), rows, mode)
    else:
        print_rich(stats_view(summary, by), output)
    odd = odd_dates_note(window)
    if odd:
        sys.stderr.write(f"Warning: {odd}\n")
    if not any(w["attempts"] for w in summary["webhooks"]):
        sys.stderr.write("No attempts in the window: widen --since, or check the filters.\n")
    missed, unchecked = check_bars(summary, *bars)
    for line in unchecked:
        sys.stderr.write(f"Warning: {line}\n")
    for line in missed:
        sys.stderr.write(f"Below the bar: {line}\n")
    return ExitStatus.FAILED if missed else ExitStatus.OK
