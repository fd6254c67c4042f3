"""`atwh stats` for people: the numbers side by side, attempts per day as stacked bars, and
the breakdowns by event name and by HTTP code."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from atwh.errors import printable
from atwh.output.tables import duration

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
            f"({_count(recovery['count'])} events)",
        ),
        ("Still failing events", Text(_count(still), style="red" if still else "green")),
        ("Top codes", codes or "—"),
        ("Top failure causes", causes or "—"),
    ]


def stats_table(summary: dict[str, Any]) -> Table:
    """The numbers, one column per webhook."""
    hooks = summary["webhooks"]
    table = Table(box=None, header_style="bold", pad_edge=False, show_header=True)
    table.add_column("", style="bold", no_wrap=True)
    for w in hooks:
        table.add_column(
            printable(w["webhook_id"] or "?", 40), overflow="fold", justify="right", min_width=8
        )
    columns = [_rows(w) for w in hooks]
    for i, (label, _) in enumerate(columns[0] if columns else []):
        table.add_row(label, *(c[i][1] for c in columns))
    return table


def window_line(summary: dict[str, Any]) -> Text:
    since, until = summary.get("since"), summary.get("until")
    text = Text("Attempts created ", style="dim")
    text.append(f"since {_local(since)}" if since else "at any time", style="dim")
    text.append(f" until {_local(until)}" if until else " until now", style="dim")
    return text


def _local(value: str) -> str:
    return (
        datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M")
    )


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


def breakdown_table(w: dict[str, Any], by: str) -> Table:
    """Attempts by event name or by HTTP code ('none': no answer)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    if by == "event":
        table.add_column("Event", overflow="fold", min_width=10)
        for name in ("Attempts", "Succeeded", "Failed", "Pending", "Success rate"):
            table.add_column(name, justify="right", no_wrap=True)
        for row in w["by_event"]:
            table.add_row(
                printable(row["event_name"], 120),
                _count(row["attempts"]),
                _count(row["succeeded"]),
                Text(_count(row["failed"]), style="red" if row["failed"] else "dim"),
                _count(row["pending"]),
                percent(row["attempt_success_rate"]),
            )
        return table
    table.add_column("Code", no_wrap=True)
    table.add_column("Attempts", justify="right", no_wrap=True)
    table.add_column("Share", justify="right", no_wrap=True)
    answered = sum(r["attempts"] for r in w["by_code"]) or 1
    for row in w["by_code"]:
        code = row["code"]
        style = "green" if code.startswith("2") else "yellow" if code[0] in "34" else "red"
        table.add_row(
            Text("no answer" if code == "none" else code, style=style),
            _count(row["attempts"]),
            f"{row['attempts'] * 100 / answered:.1f}%",
        )
    return table


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
            parts.append(breakdown_table(w, by))
    return Group(*parts)
