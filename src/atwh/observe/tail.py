"""Following a webhook's delivery log: each new attempt once, in order, none skipped.

The log only lists attempts; there is no "since this cursor" query. So each poll pages
through the log as far back as it must to reach what it has already seen, and compares ids:

- newest first (what the API does): paging stops at the first page that reaches back to the
  newest attempt seen before (less a minute's overlap, for attempts written late) and past
  every attempt still pending; a burst of many pages, or a laptop that slept for an hour,
  just means more pages on that poll;
- oldest first, or an order it cannot tell: every poll reads the whole log (30 days);
- an attempt is handed out once; each later change of its status (PENDING, then FAILED,
  then SUCCESS) is handed out once more, as an update;
- an attempt missing from one poll's answer and back in the next is not new: what was seen
  is remembered down to the oldest date the last poll read (and every attempt pending);
- an attempt pending for long does not make every poll read back to it: polls wait for
  the ones pending for under RECENT_PENDING; the older ones are re-read once per RECHECK,
  and none older than the retry horizon (7 days: the API has given up on it);
- a poll that fails half-way hands out nothing and marks nothing seen: the next one
  starts over, so an outage loses and doubles nothing.

Which order the API uses is read from the dates of the attempts, on every poll.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from atwh.client.api import ApiClient
from atwh.client.filters import DeliveryFilter
from atwh.client.model import Delivery
from atwh.errors import ApiError, AtwhError, NetworkError, printable

OVERLAP = timedelta(minutes=1)
RECENT_PENDING = timedelta(minutes=5)  # pending this long after the newest attempt: stuck
RECHECK = 300.0  # seconds between two polls that read back to every stuck pending attempt
RETRY_HORIZON = timedelta(days=7)  # the API retries no longer (webhooks-api.md)
_FLOOR = datetime.min.replace(tzinfo=UTC)


@dataclass(slots=True)
class Item:
    """One attempt to print: new, or an update of one first seen as PENDING."""

    delivery: Delivery
    update: bool = False

    @property
    def when(self) -> datetime:
        d = self.delivery
        return (d.delivered if self.update else None) or d.created or _FLOOR


def is_pending(d: Delivery) -> bool:
    return not d.failed and d.status_code is None


# What is remembered of an attempt seen: its status and code when last seen, whether it
# was handed out (an attempt filtered out, or there before tail began, was not), its date.
_Seen = tuple[str | None, int | None, bool, datetime | None]


# A poll's read of one log: the attempts by id, whether paging stopped before the end, and
# the clock's time if it read back to every pending attempt.
_Read = tuple[dict[str, Delivery], bool, float | None]


@dataclass
class _Log:
    """What has been seen of one webhook's log."""

    webhook_id: str
    seen: dict[str, _Seen] = field(default_factory=dict)
    pending: dict[str, datetime | None] = field(default_factory=dict)  # id → created
    newest: datetime | None = None  # the newest attempt seen
    horizon: datetime | None = None  # attempts older than this were there before tail began
    newest_first: bool | None = None  # what the last poll's dates said
    started: bool = False
    rechecked: float | None = None  # when a poll last read back to every pending attempt


def _order(dates: Iterable[datetime | None]) -> bool | None:
    """True when the dates only go down, False when they only go up, None otherwise."""
    down = up = False
    previous = None
    for when in dates:
        if when is None:
            continue
        if previous is not None:
            if when < previous:
                down = True
            elif when > previous:
                up = True
        previous = when
    if down == up:
        return None
    return down


class Follower:
    """The attempts of some webhooks as they appear in the log. `poll()` once, or `follow()`."""

    def __init__(
        self,
        webhook_ids: Sequence[str],
        make_client: Callable[[], ApiClient],
        flt: DeliveryFilter | None = None,
        since: datetime | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logs = [_Log(w) for w in dict.fromkeys(webhook_ids)]
        self.clock = clock
        self.make_client = make_client
        self.flt = flt or DeliveryFilter()
        self.since = since
        self.polls = 0
        self.pages = 0  # read, over all polls
        self._client: ApiClient | None = None

    # -- one poll -----------------------------------------------------------------------

    def poll(self) -> list[Item]:
        """The attempts new since the last poll (on the first: those since `since`), oldest
        first. Raises AtwhError when the API fails; then nothing is marked seen."""
        found = [self._read(log) for log in self.logs]
        items: list[Item] = []
        for log, deliveries in zip(self.logs, found, strict=True):
            items += self._commit(log, deliveries)
        self.polls += 1
        items.sort(key=lambda i: (i.when, i.delivery.id))
        return items

    def _read(self, log: _Log) -> _Read:
        """This poll's attempts of one webhook, whether paging stopped before the end, and
        the time of this poll if it read back to every pending attempt (None if not)."""
        if self._client is None:
            self._client = self.make_client()
        now = self.clock()
        deep = log.rechecked is None or now - log.rechecked >= RECHECK
        when = now if deep else None
        found: dict[str, Delivery] = {}
        dates: list[datetime | None] = []
        for page in self._client.pages(log.webhook_id):
            self.pages += 1
            for d in page.deliveries:
                if d.id not in found:  # an attempt that moved between pages: once
                    found[d.id] = d
            dates += [d.created for d in page.deliveries]
            order = _order(dates)
            log.newest_first = order if order is not None else log.newest_first
            if (
                order is not False
                and log.newest_first
                and self._far_enough(log, page.deliveries, deep)
            ):
                return found, True, when
        return found, False, when

    def _far_enough(self, log: _Log, page: list[Delivery], deep: bool) -> bool:
        """Whether a newest-first log need not be read past this page."""
        dates = [d.created for d in page if d.created is not None]
        if not dates:
            return False
        oldest = min(dates)
        if not log.started:
            return self.since is None or oldest < self.since
        if log.newest is None or oldest > log.newest - OVERLAP:
            return False
        return all(c is not None and oldest <= c for c in self._waited(log, deep))

    def _waited(self, log: _Log, deep: bool) -> list[datetime | None]:
        """The dates of the pending attempts this poll must read back to: all of them on a
        deep poll, else those pending for under RECENT_PENDING (before the newest attempt)."""
        if deep or not log.pending or log.newest is None:
            return list(log.pending.values())
        recent = log.newest - RECENT_PENDING
        return [c for c in log.pending.values() if c is not None and c >= recent]

    def _commit(self, log: _Log, read: _Read) -> list[Item]:
        found, stopped_early, deep = read
        if deep is not None:
            log.rechecked = deep
        flt, items = self.flt, []
        seen, pending = log.seen, log.pending
        for d in found.values():
            known = seen.get(d.id)
            waiting = is_pending(d)
            status, code = d.status, d.status_code
            if known is not None:
                if known[0] != status or known[1] != code:  # a later status: once
                    shown = known[2]
                    if flt.matches(d):
                        items.append(Item(d, update=shown))
                        shown = True
                    seen[d.id] = (status, code, shown, d.created)
                    if waiting:
                        pending[d.id] = d.created
                    else:
                        pending.pop(d.id, None)
                continue
            show = flt.matches(d) and self._new(log, d)
            seen[d.id] = (status, code, show, d.created)
            if waiting:
                pending[d.id] = d.created
            if d.created is not None and (log.newest is None or d.created > log.newest):
                log.newest = d.created
            if show:
                items.append(Item(d))
        log.started = True
        self._forget(log, found, stopped_early)
        return items

    def _forget(self, log: _Log, found: dict[str, Delivery], stopped_early: bool) -> None:
        """Keep only what the next polls can meet, so a tail that runs for weeks stays small.

        A poll reads every attempt from the newest down to the oldest date on its pages (or
        the whole log), so the attempts it did not meet are either gone from the log, older
        than that date, or left out of this one answer (they may be back in the next: still
        remembered). When paging stopped early the horizon rises to that date, and attempts
        below it are never new (as below where the first poll stopped). Pending attempts
        are kept while they may still settle: not past the retry horizon, and (read to the
        end) still in the log."""
        dates = [d.created for d in found.values() if d.created is not None]
        floor = min(dates) if dates else None
        if stopped_early and floor is not None:
            if log.horizon is None or floor > log.horizon:
                log.horizon = floor
        for i in list(log.pending):
            created = log.pending[i]
            given_up = (
                created is not None
                and log.newest is not None
                and created < log.newest - RETRY_HORIZON
            )
            if given_up or not (i in found or stopped_early):
                del log.pending[i]  # gone from the log, or the API has given up on it
        pending = log.pending
        log.seen = {
            i: state
            for i, state in log.seen.items()
            if i in found
            or i in pending
            or (floor is not None and state[3] is not None and state[3] >= floor)
        }

    def _new(self, log: _Log, d: Delivery) -> bool:
        """Whether an attempt not seen before is one to print."""
        if not log.started:
            return self.since is not None and d.created is not None and d.created >= self.since
        if log.horizon is not None and d.created is not None and d.created < log.horizon:
            return False  # below where a poll stopped: there before tail began, or seen
        return True

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- polling for ever -----------------------------------------------------------------

    def follow(
        self,
        emit: Callable[[list[Item]], bool],
        say: Callable[[str], None],
        interval: float = 5.0,
        max_backoff: float = 60.0,
        polled: Callable[[datetime], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Poll every `interval` seconds and hand each poll's items to `emit`, until `emit`
        returns True or `stop` is set. The first poll's errors are raised; later API and
        network errors are retried with back-off (doubling up to `max_backoff`), and `say`
        is told once when the API is lost and once when it is back."""
        stop = stop or threading.Event()
        lost_at: float | None = None
        delay = interval
        try:
            while not stop.is_set():
                try:
                    items = self.poll()
                except (ApiError, NetworkError) as e:
                    if self.polls == 0:
                        raise
                    self.close()  # a fresh connection for the next try
                    if lost_at is None:
                        lost_at = time.monotonic()
                        say(f"lost the API: {printable(_message(e), 200)}; retrying")
                    delay = min(max(delay * 2, interval), max(max_backoff, interval))
                else:
                    if lost_at is not None:
                        gone = time.monotonic() - lost_at
                        say(f"the API is back after {_human(gone)}")
                        lost_at = None
                    delay = interval
                    if emit(items):
                        return
                    if polled is not None:
                        polled(datetime.now(UTC))
                stop.wait(delay)
        finally:
            self.close()


def _message(e: AtwhError) -> str:
    return e.message


def _human(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
