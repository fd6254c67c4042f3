"""Dates as the API and atwh write them: read tolerantly (ISO 8601 or epoch milliseconds),
written as JavaScript does (UTC, milliseconds, `Z`). On the ground floor: the client, the
receiver, the recovery and the emulator all read and write them."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def parse_datetime(value: Any) -> datetime | None:
    """An API date: ISO 8601 with `Z` or an offset, or epoch milliseconds (number or digits).

    Naive ISO values are taken as UTC. Anything else is None, never an exception.
    """
    if value.__class__ is str and value[4:5] == "-":
        # The usual form (`2026-11-01T12:00:00.000Z`): Python 3.11 reads it, `Z` included.
        # A year then a dash is never epoch milliseconds, so this agrees with the path below.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch_ms(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if text.lstrip("-").replace(".", "", 1).isdigit():
        try:
            return _from_epoch_ms(float(text))
        except ValueError:
            return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


_fromisoformat = datetime.fromisoformat
_fromtimestamp = datetime.fromtimestamp


def read_date(value: Any) -> tuple[datetime | None, str | None]:
    """parse_datetime(value), and the text to write for it: the API's own text when it is
    ISO 8601, in whatever form it came (`Z` or `+00:00`, any fraction of a second), so an
    export writes what the API sent; None when the date is not text (epoch milliseconds:
    iso() writes those) or not a date. Each form is read in about the same time (the
    usual ones without parse_datetime's general rules: bench/date_forms.py)."""
    if value.__class__ is str and value[4:5] == "-":  # parse_datetime's first rule
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            return parse_datetime(value), None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed, value
    if value is None:
        return None, None
    if value.__class__ is int:  # epoch milliseconds, as _from_epoch_ms reads them
        try:
            return _fromtimestamp(value / 1000, UTC), None
        except (OverflowError, OSError, ValueError):
            return None, None
    return parse_datetime(value), None


def _from_epoch_ms(ms: float) -> datetime | None:
    if not math.isfinite(ms):
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)  # positional: 7x faster than tz=
    except (OverflowError, OSError, ValueError):
        return None


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with milliseconds and `Z`, as JavaScript writes dates."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # what parse_datetime gives for `Z` and `+00:00`: no conversion
        return value.isoformat(timespec="milliseconds")[:-6] + "Z"
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
