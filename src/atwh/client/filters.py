"""The filters every delivery listing shares: time window, event names, status codes, failed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Protocol, TypeVar

from atwh.errors import UsageError


class Filterable(Protocol):
    """What a filter reads: a delivery from the API, or a request in `atwh serve`'s inbox."""

    @property
    def failed(self) -> bool: ...
    @property
    def created(self) -> datetime | None: ...
    @property
    def event_name(self) -> str | None: ...
    @property
    def status_code(self) -> int | None: ...


T = TypeVar("T", bound=Filterable)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
DURATION_HELP = "a duration (90s, 15m, 2h, 7d, 1w, 1h30m) or an ISO date or datetime"


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


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """A point in time: a duration ago, or an ISO date / datetime (local time if naive)."""
    now = now or datetime.now(UTC)
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    except OverflowError:
        raise UsageError(f"{text!r} reaches before year 1") from None
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            parsed = datetime.combine(date.fromisoformat(s), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(s)
    except ValueError:
        raise UsageError(f"{text!r} is not {DURATION_HELP}") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # naive: the user's local time
    return parsed


@dataclass(frozen=True, slots=True)
class StatusCodeMatch:
    """`500`, `5xx`, or `none` (no answer)."""

    text: str

    @classmethod
    def parse(cls, text: str) -> StatusCodeMatch:
        s = text.strip().lower()
        if s == "none" or re.fullmatch(r"[1-5]\d\d", s) or re.fullmatch(r"[1-5]xx", s):
            return cls(s)
        raise UsageError(f"--status-code {text!r}: use a code (500), a class (5xx) or 'none'")

    def matches(self, code: int | None) -> bool:
        if self.text == "none":
            return code is None
        if code is None:
            return False
        if self.text.endswith("xx"):
            return code // 100 == int(self.text[0])
        return code == int(self.text)


@dataclass(slots=True)
class DeliveryFilter:
    since: datetime | None = None
    until: datetime | None = None
    events: list[str] = field(default_factory=list)
    status_codes: list[StatusCodeMatch] = field(default_factory=list)
    failed_only: bool = False
    limit: int | None = None

    @classmethod
    def from_options(
        cls,
        since: str | None = None,
        until: str | None = None,
        events: Iterable[str] = (),
        status_codes: Iterable[str] = (),
        failed_only: bool = False,
        limit: int | None = None,
        now: datetime | None = None,
    ) -> DeliveryFilter:
        now = now or datetime.now(UTC)
        if limit is not None and limit < 1:
            raise UsageError(f"--limit {limit}: give a whole number of at least 1")
        codes = [StatusCodeMatch.parse(part) for s in status_codes for part in s.split(",")]
        names = [part.strip() for e in events for part in e.split(",") if part.strip()]
        flt = cls(
            since=parse_time(since, now) if since is not None else None,
            until=parse_time(until, now) if until is not None else None,
            events=names,
            status_codes=codes,
            failed_only=failed_only,
            limit=limit,
        )
        if flt.since and flt.until and flt.since > flt.until:
            raise UsageError("--since is after --until: nothing can match")
        return flt

    def matches(self, d: Filterable) -> bool:
        if self.failed_only and not d.failed:
            return False
        if self.since is not None or self.until is not None:
            if d.created is None:
                return False
            if self.since is not None and d.created < self.since:
                return False
            if self.until is not None and d.created > self.until:
                return False
        if self.events and not any(fnmatchcase(d.event_name or "", p) for p in self.events):
            return False
        if self.status_codes and not any(m.matches(d.status_code) for m in self.status_codes):
            return False
        return True

    def apply(self, deliveries: Iterable[T]) -> Iterator[T]:
        """The matching deliveries, in the order given, at most `limit` of them."""
        if self.limit is not None and self.limit <= 0:
            return
        count = 0
        for d in deliveries:
            if self.matches(d):
                yield d
                count += 1
                if self.limit is not None and count >= self.limit:
                    return
