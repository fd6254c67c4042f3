"""Durations as people write and read them: `90s`, `15m`, `2h`, `7d`, `1w` and sums
(`1h30m`) read the same in every option (parse_duration), and one way to write one
(duration): `250ms`, `2.0s`, `3m05s`, `2h07m`, `3d04h`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `2h`, `7d`, `1w`, and sums of them (`1h30m`). Raises ValueError."""
    s = text.strip().lower()
    if not s:
        raise ValueError("empty duration")
    pos = 0
    seconds = 0.0
    for match in _DURATION.finditer(s):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s):
        raise ValueError(f"not a duration: {text!r}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError as e:
        raise ValueError(f"duration too long: {text!r}") from e


def duration(seconds: float | None, ms_decimals: int = 0, exact: bool = False) -> str:
    """A duration in at most 7 characters: `250ms`, `2.0s`, `12.5s`, `3m05s`, `2h07m`,
    `3d04h`; `?` for None. `ms_decimals` places below a second (a latency: `3.1ms`).

    `exact`: as a person types it, parse_duration reading it back: `30s`, `2m`, `1h30m`,
    `0.5s` (for a setting said back, not a measure)."""
    if seconds is None:
        return "?"
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    if exact:
        return sign + _exact(s)
    if s < 1 - 0.5 * 10 ** -(3 + ms_decimals):  # what rounds to 1000ms is 1.0s
        return f"{sign}{s * 1000:.{ms_decimals}f}ms"
    if s < 59.95:
        return f"{sign}{s:.1f}s"
    whole = int(s + 0.5)
    if whole < 3600:
        return f"{sign}{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{sign}{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{sign}{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _exact(s: float) -> str:
    parts = []
    rest = round(s, 3)
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if rest >= size:
            parts.append(f"{int(rest // size)}{unit}")
            rest = round(rest - rest // size * size, 3)
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)
