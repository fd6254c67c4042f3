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

from atwh.deliveries import iso
from atwh.errors import printable
from atwh.inbox import NewRequest, Stored

# time, verdict (padded to 22 before it is painted), event name, event id, answer code,
# latency: one % format, which costs less than building the pieces with f-strings
_LINE = "%s  %s %-20s %-24s %s  %.1fms"
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
            self._emit(json.dumps(record, ensure_ascii=False))
            return
        verdict = r.verdict
        if r.reason:
            verdict += f" ({r.reason})"
        if duplicate:
            verdict += " duplicate"
        code = r.answer_code
        line = _LINE % (
            self._clock(r.received_at),
            self._paint(f"{verdict:<22}", _COLOURS.get(r.verdict, "0")),
            printable(r.event_name or "-", 60),
            printable(r.event_id or "-", 40),
            self._paint(str(code), "32" if code < 300 else "31"),
            latency_ms,
        )
        if self.verbose and r.body:
            try:
                pretty = json.dumps(json.loads(r.body), indent=2, ensure_ascii=False)
            except ValueError:
                pretty = printable(r.body.decode("utf-8", errors="replace"), 4000)
            line += "\n" + "\n".join("    " + p for p in pretty.splitlines())
        self._emit(line)

    def _clock(self, ts: float) -> str:
        """HH:MM:SS.mmm local time; the formatted second is reused within the second."""
        second = int(ts)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%H:%M:%S", time.localtime(second))
        return "%s.%03d" % (self._second_text, (ts - second) * 1000)  # noqa: UP031 (faster)

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
