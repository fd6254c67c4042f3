"""The filters every delivery listing shares: time window, event names, status codes, failed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatchcase
from heapq import heappush, heapreplace
from typing import Generic, Protocol, TypeVar

from atwh.core.durations import parse_duration
from atwh.errors import UsageError, printable


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
R = TypeVar("R")
_NO_DATE = float("-inf")
DURATION_HELP = "a duration (90s, 15m, 2h, 7d, 1w, 1h30m) or an ISO date or datetime"


def parse_time(text: str, now: datetime | None = None, option: str = "--since") -> datetime:
    """A point in time: a duration ago, an ISO date / datetime (local time if naive), or
    epoch milliseconds. Raises UsageError naming `option` and the value."""
    now = now or datetime.now(UTC)
    shown = printable(text, 60)
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    except OverflowError:
        raise UsageError(f"{option}: {shown!r} reaches before year 1") from None
    s = text.strip()
    if s.isascii() and s.isdigit():
        return _epoch_ms(s, now, option)
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            parsed = datetime.combine(date.fromisoformat(s), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(s)
    except ValueError:
        raise UsageError(
            f"{option}: {shown!r} is not a duration or a date (try 1d, 12h or "
            f"{(now - timedelta(days=1)).astimezone().date().isoformat()})"
        ) from None
    if parsed.tzinfo is None:
        try:
            parsed = parsed.astimezone()  # naive: the user's local time
        except (ValueError, OverflowError):  # local time at the calendar's very ends
            raise UsageError(f"{option}: {shown!r} is too near the calendar's ends") from None
    return parsed


def _epoch_ms(digits: str, now: datetime, option: str) -> datetime:
    """Milliseconds since 1970, as the API writes dates; seconds are spotted, not misread."""
    value = int(digits)
    now_ms = now.timestamp() * 1000
    if value < now_ms / 100:  # 1970 plus a few months if these were milliseconds
        example = value * 1000
        raise UsageError(
            f"{option}: {digits!r} looks like seconds since 1970; atwh takes milliseconds "
            f"({example}), a duration (1d) or a date",
        )
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise UsageError(f"{option}: {digits!r} is too far in the future") from None


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
            since=parse_time(since, now, "--since") if since is not None else None,
            until=parse_time(until, now, "--until") if until is not None else None,
            events=names,
            status_codes=codes,
            failed_only=failed_only,
            limit=limit,
        )
        if flt.since and flt.until and flt.since > flt.until:
            raise UsageError("--since is after --until: nothing can match")
        return flt

    def narrows(self) -> bool:
        """Whether any record could fail to match (a limit aside)."""
        return bool(
            self.since or self.until or self.events or self.status_codes or self.failed_only
        )

    def matches(self, d: Filterable) -> bool:
        return self.matches_values(d.failed, d.created, d.event_name, d.status_code)

    def matches_values(
        self, failed: bool, created: datetime | None, event_name: str | None, code: int | None
    ) -> bool:
        """`matches` for what a record's properties would be (an export reads them without
        making a record: output.export.write_pages)."""
        if self.failed_only and not failed:
            return False
        if self.since is not None or self.until is not None:
            if created is None:
                return False
            if self.since is not None and created < self.since:
                return False
            if self.until is not None and created > self.until:
                return False
        if self.events and not any(fnmatchcase(event_name or "", p) for p in self.events):
            return False
        if self.status_codes and not any(m.matches(code) for m in self.status_codes):
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


class NewestFirst:
    """Watches the creation dates of records as they come, to tell whether they have all
    come newest first so far. The published API promises no order, so atwh stops paging
    early only while the data itself shows this order; a date out of order, or a record
    without one, ends that for good."""

    __slots__ = ("holds", "_last")

    def __init__(self) -> None:
        self.holds = True
        self._last: datetime | None = None

    def see(self, created: datetime | None) -> bool:
        if self.holds:
            if created is None or (self._last is not None and created > self._last):
                self.holds = False
            self._last = created
        return self.holds


@dataclass(slots=True)
class Newest(Generic[R]):
    """The newest matching records, and what was left out."""

    rows: list[R]
    more: int | None  # matches left out: a count, or None when only "some" is known
    complete: bool  # every record was read (else reading stopped once `rows` was sure)
    scanned: int  # records read
    newest_seen: datetime | None = None  # the newest date among the records read


class NewestKept(Generic[R]):
    """The newest `count` items offered (every one when None), newest first: a bounded
    heap, so a listing that shows 50 rows keeps 50 whatever order the items come in.
    Of items with the same date, the one offered first comes first (as a stable sort)."""

    __slots__ = ("count", "offered", "_heap", "_keep")

    def __init__(self, count: int | None, keep: Callable[[R], R] | None = None) -> None:
        self.count = count
        self.offered = 0
        self._heap: list[tuple[float, int, R]] = []
        # what an item becomes when it is kept (rows let go of their page: `detached`)
        self._keep = keep

    def offer(self, when: datetime | None, item: R) -> None:
        self.offered += 1
        key = (_NO_DATE if when is None else when.timestamp(), -self.offered)
        heap = self._heap
        if self.count is None or len(heap) < self.count:
            heappush(heap, (*key, self._keep(item) if self._keep else item))
        elif key > heap[0][:2]:
            heapreplace(heap, (*key, self._keep(item) if self._keep else item))

    def __len__(self) -> int:
        return len(self._heap)

    def newest_first(self) -> list[R]:
        return [e[2] for e in sorted(self._heap, key=lambda e: e[:2], reverse=True)]


def select_newest(
    records: Iterable[T], flt: DeliveryFilter, count: int | None, count_all: bool = False
) -> Newest[T]:
    """The newest `count` records that match `flt` (all of them when None), newest first.

    While the records come newest first (`NewestFirst`), reading stops at the first match
    beyond `count`, unless `count_all` (records that are cheap to read: the inbox's) asks
    to count every match; otherwise every record is read, and only the newest `count`
    kept (NewestKept). `flt.limit` is not used.
    """
    window = DeliveryFilter(flt.since, flt.until, flt.events, flt.status_codes, flt.failed_only)
    return newest_of(((r.created, window.matches(r), r) for r in records), count, count_all)


def newest_of(
    records: Iterable[tuple[datetime | None, bool, R]],
    count: int | None,
    count_all: bool = False,
    keep: Callable[[R], R] | None = None,
) -> Newest[R]:
    """select_newest() of records given as (creation date, whether it matches, record);
    `keep`: what a record becomes when it is kept (NewestKept)."""
    order = NewestFirst()
    kept: NewestKept[R] = NewestKept(count, keep)
    scanned = matched = 0
    newest: datetime | None = None
    complete = True
    records = iter(records)
    for created, matches, r in records:
        scanned += 1
        order.see(created)
        if created is not None and (newest is None or created > newest):
            newest = created
        if matches:
            matched += 1
            if count is not None and matched > count and order.holds:
                if count_all:  # newest first: the rest counted only
                    rest = [m for _, m, _ in records]
                    counted = matched - count + sum(rest)
                    rows = kept.newest_first()
                    return Newest(rows, counted, True, scanned + len(rest), newest)
                complete = False
                break
            kept.offer(created, r)
    rows = kept.newest_first()
    if not complete:
        return Newest(rows, None, False, scanned, newest)
    return Newest(rows, matched - len(rows), True, scanned, newest)
