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

from atwh.client.model import iso
from atwh.errors import printable
from atwh.receiver.inbox import NewRequest, Stored

# time (the second, then its milliseconds), verdict (padded to 22, then painted), event
# name, event id, answer code, latency: one % format, which costs less than building the
# pieces with f-strings. The painted verdict and code, and the printable event name, are
# made once for each value and kept (at most _CACHED of each: the names come from the
# network). Formatting is most of what the live view costs atwh serve under load.
_LINE = "%s.%03d  %s %-20s %-24s %s  %.1fms"
_CACHED = 256
_COLOURS = {"verified": "32", "test": "36", "unverified": "33", "rejected": "31"}


class LiveView:
    def __init__(
        self,
        stream: IO[str] | None = None,
        as_json: bool = False,
        verbose: bool = False,
        colour: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stdout
        self.as_json = as_json
        self.verbose = verbose
        if colour is None:
            import os

            colour = self.stream.isatty() and not os.environ.get("NO_COLOR")
        self.colour = colour
        self._lines: list[str] = []
        self._second = -1
        self._second_text = ""
        self._scheduled = False
        self._painted: dict[tuple[str, str | None, bool, int], tuple[str, str]] = {}
        self._names: dict[str | None, str] = {}

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
                    record["payload"] = json.loads(r.body)
                except ValueError:
                    record["payload"] = r.body.decode("utf-8", errors="replace")
            # C1 controls and the like, which json leaves as they are, as JSON escapes
            self._emit(printable(json.dumps(record, ensure_ascii=False), None, lines=True))
            return
        second = int(r.received_at)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%H:%M:%S", time.localtime(second))
        code = r.answer_code
        key = (r.verdict, r.reason, duplicate, code)
        painted = self._painted.get(key)
        if painted is None:
            painted = self._paint_parts(*key)
        name = r.event_name
        line = _LINE % (
            self._second_text,
            (r.received_at - second) * 1000,
            painted[0],
            self._names.get(name) or self._name(name),
            printable(r.event_id or "-", 40),
            painted[1],
            latency_ms,
        )
        if self.verbose and r.body:
            try:
                pretty = json.dumps(json.loads(r.body), indent=2, ensure_ascii=False)
            except ValueError:
                pretty = r.body.decode("utf-8", errors="replace")
            pretty = printable(pretty, 20000, lines=True)  # no escape reaches the terminal
            line += "\n" + "\n".join("    " + p for p in pretty.splitlines())
        self._emit(line)

    def _paint_parts(
        self, verdict: str, reason: str | None, duplicate: bool, code: int
    ) -> tuple[str, str]:
        """The verdict (padded, then painted) and the answer code (painted) of a line."""
        text = verdict
        if reason:
            text += f" ({reason})"
        if duplicate:
            text += " duplicate"
        painted = (
            self._paint(f"{text:<22}", _COLOURS.get(verdict, "0")),
            self._paint(str(code), "32" if code < 300 else "31"),
        )
        if len(self._painted) < _CACHED:
            self._painted[(verdict, reason, duplicate, code)] = painted
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
