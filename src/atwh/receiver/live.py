"""The live view of `atwh serve`: one line per request, or one NDJSON record, on stdout.

Lines are collected as requests are answered and written once per event-loop turn, so a
slow terminal never delays an answer.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from typing import IO

from atwh.core import jsontext
from atwh.core.dates import iso
from atwh.core.durations import duration
from atwh.errors import printable
from atwh.receiver.inbox import NewRequest, Stored

# time (the second, then its milliseconds), verdict (padded to the longest, then painted),
# answer code, latency, event id (whole), event name, then the reason and whether it was a
# duplicate: one % format, which costs less than building the pieces with f-strings. The
# painted verdict and code, and the printable event name, are made once for each value and
# kept (at most _CACHED of each: the names come from the network). Formatting is most of
# what the live view costs atwh serve under load.
_LINE = "%s.%03d %s %s %7s  %s  %s%s"
# In a terminal under WIDE columns the time goes, under NARROW the latency too (so that
# the columns stay aligned from line to line, whatever each line holds); then the event
# name and the reason are shortened to fit. The id is whole, except on a line with a
# reason (or `duplicate`): that is what a person debugging signatures looks for, so the
# id's tail goes first (down to SHORT_ID characters and `…`) to show it.
WIDE, NARROW = 100, 80
_LAYOUTS = (  # (the columns before the id, their width), wide to narrow
    ("%(time)s.%(ms)03d %(verdict)s %(code)s %(latency)7s  ", 38),
    ("%(verdict)s %(code)s %(latency)7s  ", 24),
    ("%(verdict)s %(code)s  ", 16),
)
_CACHED = 256
_COLOURS = {"verified": "32", "test": "36", "unverified": "33", "rejected": "31"}
VERDICT_WIDTH = max(map(len, _COLOURS))
ID_LIMIT = 256  # an event id is shown whole, up to this (it comes from the network)
MIN_NAME = 12  # the event name is shortened to this before the reason is
MIN_EXTRA = 8  # a reason shortened below this is dropped
SHORT_ID = 8  # an event id is never cut shorter than this (and `…`) for a reason


def _cut(text: str, room: int) -> str:
    if len(text) <= room:
        return text
    return text[: room - 1] + "…" if room > 0 else ""


def fit(name: str, extra: str, room: int) -> tuple[str, str]:
    """The event name and the extra text (two spaces, the reason, duplicate) within
    `room` columns: the name is shortened first (to MIN_NAME), then the extra (dropped
    rather than left with a few letters), then the name again."""
    if len(name) + len(extra) <= room:
        return name, extra
    whole = name
    name = _cut(name, max(MIN_NAME, room - len(extra)))
    if len(name) + len(extra) > room:
        extra = _cut(extra, room - len(name))
        if len(extra) < 2 + MIN_EXTRA:
            extra = ""
            name = whole
    return _cut(name, max(1, room - len(extra))), extra


class LiveView:
    def __init__(
        self,
        stream: IO[str] | None = None,
        as_json: bool = False,
        verbose: bool = False,
        colour: bool | None = None,
        width: int | None = None,
    ) -> None:
        """`width`: the columns a line must fit in; by default the terminal's (checked
        once a second) when the stream is one, else none: lines are whole."""
        self.stream = stream or sys.stdout
        self.as_json = as_json
        self.verbose = verbose
        tty = self.stream.isatty()
        if colour is None:
            import os

            colour = tty and not os.environ.get("NO_COLOR")
        self.colour = colour
        self._fixed_width = width
        self._follow_terminal = width is None and tty
        self.width = width if width is not None else self._terminal_width()
        self._lines: list[str] = []
        self._second = -1
        self._second_text = ""
        self._scheduled = False
        self._painted: dict[tuple[str, int], tuple[str, str]] = {}
        self._names: dict[str | None, str] = {}

    def _terminal_width(self) -> int | None:
        if not self._follow_terminal:
            return self._fixed_width
        import shutil

        return shutil.get_terminal_size((80, 24)).columns

    def request(self, r: NewRequest, stored: Stored | None, latency_ms: float) -> None:
        duplicate = bool(stored and stored.duplicate)
        if self.as_json:
            record = {
                "id": stored.id if stored else None,
                "receivedAt": iso(datetime.fromtimestamp(r.received_at).astimezone()),
                "verdict": r.verdict,
                "reason": r.reason,
                "eventId": r.event_id,
                "eventName": r.event_name,
                "answerCode": r.answer_code,
                "duplicate": duplicate,
                "latencyMs": round(latency_ms, 3),
            }
            if self.verbose:
                try:
                    record["payload"] = jsontext.loads(r.body)
                except ValueError:
                    record["payload"] = r.body.decode("utf-8", errors="replace")
            # C1 controls and the like, which json leaves as they are, as JSON escapes
            self._emit(printable(json.dumps(record, ensure_ascii=False), None, lines=True))
            return
        second = int(r.received_at)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%H:%M:%S", time.localtime(second))
            if self._follow_terminal:
                self.width = self._terminal_width()
        code = r.answer_code
        key = (r.verdict, code)
        painted = self._painted.get(key)
        if painted is None:
            painted = self._paint_parts(*key)
        name = r.event_name
        shown_name = self._names.get(name) or self._name(name)
        eid = printable(r.event_id or "-", ID_LIMIT)
        extra = ""
        if r.reason or duplicate:
            extra = "  " + printable(
                ", ".join(x for x in (r.reason, "duplicate" if duplicate else None) if x), 200
            )
        width = self.width
        if width is None or (
            width >= WIDE and len(eid) + len(shown_name) + len(extra) < width - 39
        ):
            line = _LINE % (
                self._second_text,
                (r.received_at - second) * 1000,
                painted[0],
                painted[1],
                duration(latency_ms / 1000, ms_decimals=1),
                eid,
                shown_name,
                extra,
            )
        else:
            line = self._fitted(r, painted, latency_ms, eid, shown_name, extra, width)
        if self.verbose and r.body:
            try:
                pretty = json.dumps(jsontext.loads(r.body), indent=2, ensure_ascii=False)
            except ValueError:
                pretty = r.body.decode("utf-8", errors="replace")
            pretty = printable(pretty, 20000, lines=True)  # no escape reaches the terminal
            line += "\n" + "\n".join("    " + p for p in pretty.splitlines())
        self._emit(line)

    def _fitted(
        self,
        r: NewRequest,
        painted: tuple[str, str],
        latency_ms: float,
        eid: str,
        name: str,
        extra: str,
        width: int,
    ) -> str:
        """The line in the layout for this width, the name and the reason shortened to
        what is left beside the whole id."""
        head, fixed = _LAYOUTS[0 if width >= WIDE else 1 if width >= NARROW else 2]
        room = width - 1 - fixed - len(eid) - 2
        short = len(name) + len(extra) - room
        if extra and short > 0 and len(eid) > SHORT_ID + 1:  # the reason outranks the id's tail
            cut = min(short, len(eid) - SHORT_ID - 1)
            eid = eid[: len(eid) - cut - 1] + "…"
            room += cut
        name, extra = fit(name, extra, room)
        start = head % {
            "time": self._second_text,
            "ms": (r.received_at - self._second) * 1000,
            "verdict": painted[0],
            "code": painted[1],
            "latency": duration(latency_ms / 1000, ms_decimals=1),
        }
        return f"{start}{eid}  {name}{extra}".rstrip()

    def _paint_parts(self, verdict: str, code: int) -> tuple[str, str]:
        """The verdict (padded, then painted) and the answer code (painted) of a line."""
        painted = (
            self._paint(f"{verdict:<{VERDICT_WIDTH}}", _COLOURS.get(verdict, "0")),
            self._paint(str(code), "32" if code < 300 else "31"),
        )
        if len(self._painted) < _CACHED:
            self._painted[(verdict, code)] = painted
        return painted

    def _name(self, name: str | None) -> str:
        text = printable(name or "-", 60)
        if len(self._names) < _CACHED:
            self._names[name] = text
        return text

    def notice(self, message: str) -> None:
        if self.as_json:
            self._emit(json.dumps({"notice": message}, ensure_ascii=False))
        else:
            self._emit(
                self._paint(f"{datetime.now().strftime('%H:%M:%S.%f')[:-3]}  {message}", "2")
            )

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def _emit(self, line: str) -> None:
        self._lines.append(line)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass
