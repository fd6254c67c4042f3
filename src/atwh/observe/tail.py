"""Following a webhook's delivery log: each new attempt once, in order, none skipped.

The log only lists attempts; there is no "since this cursor" query. So each poll pages
through the log as far back as it must to reach what it has already seen, and compares ids:

- newest first (what the API does): paging stops at the first page that reaches back to the
  newest attempt seen before (less a minute's overlap, for attempts written late) and past
  every attempt still pending; a burst of many pages, or a laptop that slept for an hour,
  just means more pages on that poll;
- oldest first, or an order it cannot tell: every poll reads the whole log (30 days);
- an attempt first seen as PENDING is handed out again, as an update, when it has a result;
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


@dataclass
class _Log:
    """What has been seen of one webhook's log."""

    webhook_id: str
    seen: dict[str, int] = field(default_factory=dict)  # id → _DONE, _PENDING or _HIDDEN
    pending: dict[str, datetime | None] = field(default_factory=dict)  # id → created
    newest: datetime | None = None  # the newest attempt seen
    horizon: datetime | None = None  # attempts older than this were there before tail began
    newest_first: bool | None = None  # what the last poll's dates said
    started: bool = False


_DONE, _PENDING, _HIDDEN = 0, 1, 2  # _HIDDEN: pending and not printed (filtered out)


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
    ) -> None:
        self.logs = [_Log(w) for w in dict.fromkeys(webhook_ids)]
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

    def _read(self, log: _Log) -> tuple[dict[str, Delivery], bool]:
        """This poll's attempts of one webhook, and whether paging stopped before the end."""
        if self._client is None:
            self._client = self.make_client()
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
            if order is not False and log.newest_first and self._far_enough(log, page.deliveries):
                return found, True
        return found, False

    def _far_enough(self, log: _Log, page: list[Delivery]) -> bool:
        """Whether a newest-first log need not be read past this page."""
        dates = [d.created for d in page if d.created is not None]
        if not dates:
            return False
        oldest = min(dates)
        if not log.started:
            return self.since is None or oldest < self.since
        if log.newest is None or oldest > log.newest - OVERLAP:
            return False
        return all(c is not None and oldest <= c for c in log.pending.values())

    def _commit(self, log: _Log, read: tuple[dict[str, Delivery], bool]) -> list[Item]:
        found, stopped_early = read
        flt, items = self.flt, []
        seen, pending = log.seen, log.pending
        for d in found.values():
            state = seen.get(d.id)
            waiting = is_pending(d)
            if state is not None:
                if state != _DONE and not waiting:
                    seen[d.id] = _DONE
                    pending.pop(d.id, None)
                    if flt.matches(d):
                        items.append(Item(d, update=state == _PENDING))
                continue
            show = flt.matches(d) and self._new(log, d)
            seen[d.id] = _DONE if not waiting else _PENDING if show else _HIDDEN
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
        the whole log), so the attempts it did not meet are either gone from the log or
        older than that date; the horizon rises to that date, and attempts below it are
        never new (as below where the first poll stopped)."""
        if stopped_early:
            dates = [d.created for d in found.values() if d.created is not None]
            if dates and (log.horizon is None or min(dates) > log.horizon):
                log.horizon = min(dates)
        seen = log.seen
        kept = {i: seen[i] for i in found}
        for i in list(log.pending):
            if i in found or stopped_early:
                kept[i] = seen[i]
            else:  # read to the end and not there: gone from the log
                del log.pending[i]
        log.seen = kept

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
