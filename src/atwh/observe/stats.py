"""A webhook's health from its delivery log, computed in one pass over the attempts.

Feed every attempt in the window to `WebhookStats.add` (in any order); `summary()` gives
every number as a JSON-ready dict whose names are documented in README ("atwh stats").
Nothing keeps the attempts themselves: per attempt only its lag (8 bytes), per event a few
numbers, and bounded tables of codes, causes, event names and time buckets.

Definitions (README says the same):
- an attempt is pending while it has neither an answer nor a failure (status PENDING);
  pending attempts are counted but left out of every rate;
- an attempt succeeded unless `Delivery.failed` (no answer, not 2xx, or status FAILED);
- an event is the attempts that share an event id; it succeeded when any attempt did;
  its first attempt is the earliest in the window;
- lag is deliveryDate − the event's createdDate, over the attempts that have both;
- time to recovery is, for an event that failed and later succeeded, the time from its
  first failed attempt to the first successful attempt created after it;
- an event is still failing when its latest attempt failed;
- percentiles are exact, by nearest rank: the p-th percentile of n sorted values is the
  value at rank ceil(p/100 × n) (1-based); there is none when n is 0;
- an attempt is oddly dated when it was made before 2000 or more than a day after now (or
  outside the window asked for): it is counted, but with no date, so it is in no bucket, no
  lag and no timing of its event; `odd_dates` says how many there were.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from atwh.client.model import Delivery, DeliveryRow, cause_of, is_failure
from atwh.core.dates import iso
from atwh.core.durations import duration
from atwh.errors import printable

if TYPE_CHECKING:
    from atwh.client.api import Page
    from atwh.client.filters import DeliveryFilter

BUCKETS = ("day", "hour")
BREAKDOWNS = ("event", "code")
MAX_KEYS = 1000  # distinct causes or event names kept; the rest are counted as one
OTHER = "(other)"
TOP = 10  # codes and causes in the summary
# Dates outside these bounds are no webhook's: the chart would run for millennia (a bucket
# per hour up to 9999-12-31) and the calendar past its ends (OverflowError) on them.
SANE_START = datetime(2000, 1, 1, tzinfo=UTC)
SANE_AHEAD = timedelta(days=1)  # clocks disagree, but not by more than a day
_SANE_START = SANE_START.timestamp()


class Window:
    """The times a date can be and still be charted: the window asked for, within the
    sane range (from 2000 to a day from now)."""

    __slots__ = ("start", "end", "last", "odd", "example")

    def __init__(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        now: datetime | None = None,
    ) -> None:
        last = (now or datetime.now(UTC)) + SANE_AHEAD
        self.last = last.timestamp()
        self.start = max(since, SANE_START).timestamp() if since else SANE_START.timestamp()
        self.end = min(until, last).timestamp() if until else last.timestamp()
        self.odd = 0  # attempts dated outside, over every webhook
        self.example: datetime | None = None  # the first of them

    def sane(self, when: datetime) -> bool:
        """Whether `when` is a date a webhook could have (the window aside)."""
        return _SANE_START <= when.timestamp() <= self.last

    def note_odd(self, when: datetime) -> None:
        self.odd += 1
        if self.example is None:
            self.example = when


def nearest_rank(ordered: Sequence[float], percent: int) -> float | None:
    """The `percent`-th percentile of already sorted values, by nearest rank; None if empty."""
    n = len(ordered)
    if n == 0:
        return None
    rank = max(1, (percent * n + 99) // 100)  # ceil(percent/100 × n), in integers: exact
    return ordered[rank - 1]


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class _Event:
    """What the summary needs of one event: when and how its attempts went."""

    __slots__ = ("first", "first_state", "last", "last_state", "attempts", "failed_at", "wins")

    @classmethod
    def of(cls, single: _Single, when: float, state: int) -> _Event:
        """The event of a single attempt (as `_single` keeps it) and one more."""
        event = cls(*_unpack(single))
        event.add(when, state)
        return event

    def __init__(self, when: float, state: int) -> None:
        self.first = when
        self.first_state = state
        self.last = when
        self.last_state = state
        self.attempts = 1
        self.failed_at: float | None = when if state == _FAILED else None
        self.wins: float | list[float] | None = when if state == _OK else None

    def add(self, when: float, state: int) -> None:
        self.attempts += 1
        # ties (the same millisecond) go the same way whatever the order of the log: the
        # first attempt is the one that succeeded, the last the one pending, else failed
        if when < self.first or (when == self.first and state < self.first_state):
            self.first, self.first_state = when, state
        if when > self.last or (when == self.last and state > self.last_state):
            self.last, self.last_state = when, state
        if state == _FAILED:
            if self.failed_at is None or when < self.failed_at:
                self.failed_at = when
        elif state == _OK:
            wins = self.wins
            if wins is None:
                self.wins = when
            elif isinstance(wins, list):
                wins.append(when)
            else:
                self.wins = [wins, when]

    def succeeded(self) -> bool:
        return self.wins is not None

    def recovery(self) -> float | None:
        """Seconds from the first failure to the first success after it, if there is one."""
        if self.failed_at is None or self.wins is None:
            return None
        wins = self.wins if isinstance(self.wins, list) else [self.wins]
        later = [w for w in wins if w > self.failed_at]
        return min(later) - self.failed_at if later else None


_OK, _FAILED, _PENDING = 0, 1, 2

# An event seen once (most of them) costs one float, not an object: its attempt's time,
# negative when it failed; a pending attempt, or one without a date, is a (time, state) pair.
_Single = float | tuple[float, int]


def _single(when: float, state: int) -> _Single:
    if when > 0 and state != _PENDING:
        return when if state == _OK else -when
    return (when, state)


def _unpack(single: _Single) -> tuple[float, int]:
    if single.__class__ is float:
        return (single, _OK) if single > 0 else (-single, _FAILED)  # type: ignore[operator]
    return single  # type: ignore[return-value]


class _Buckets:
    """Attempts per local day or hour. Counted per quarter hour of UTC while the log streams
    by (every time zone's offset is a whole number of quarter hours), grouped at the end."""

    def __init__(self, by: str) -> None:
        self.by = by
        self.quarters: dict[float, list[int]] = {}  # [succeeded, failed, pending]
        self.counts: dict[datetime, list[int]] = {}  # bucket start → the same, by rows()

    def start_of(self, when: datetime) -> datetime:
        local = when.astimezone()
        if self.by == "hour":
            start = local.replace(minute=0, second=0, microsecond=0)
        else:
            start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.replace(tzinfo=None).astimezone()  # the offset on that date

    def _group(self) -> None:
        self.counts = {}
        for quarter, (ok, failed, pending) in self.quarters.items():
            start = self.start_of(datetime.fromtimestamp(quarter * 900).astimezone())
            counts = self.counts.get(start)
            if counts is None:
                counts = self.counts[start] = [0, 0, 0]
            counts[0] += ok
            counts[1] += failed
            counts[2] += pending

    def rows(self) -> list[dict[str, Any]]:
        """Every bucket from the first with attempts to the last, the empty ones included."""
        self._group()
        if not self.counts:
            return []
        out = []
        first, last = min(self.counts), max(self.counts)
        step = timedelta(hours=1) if self.by == "hour" else timedelta(days=1)
        at = first
        while at <= last:
            ok, failed, pending = self.counts.get(at, (0, 0, 0))
            out.append(
                {
                    "start": at.isoformat(),
                    "attempts": ok + failed + pending,
                    "succeeded": ok,
                    "failed": failed,
                    "pending": pending,
                }
            )
            # the next local midnight (or hour), whatever the clocks did in between
            at = self.start_of(at + step + timedelta(hours=2 if self.by == "day" else 0))
        return out


class WebhookStats:
    """The numbers of one webhook over the attempts given to `add`."""

    def __init__(
        self, webhook_id: str | None, by: str = "day", window: Window | None = None
    ) -> None:
        self.webhook_id = webhook_id
        self.window = window if window is not None else Window()
        self.odd_dates = 0
        self.attempts = 0
        self.states = [0, 0, 0]  # succeeded, failed, pending
        self.no_answer = 0
        self.codes: dict[int, int] = {}
        self.causes: dict[str, int] = {}  # as the API said them; made printable at the end
        self.lags = array("d")
        self.events: dict[str, _Single | _Event] = {}  # _single() until a 2nd attempt
        self.names: dict[str | None, list[int]] = {}  # event name → [ok, failed, pending]
        self.buckets = _Buckets(by if by in BUCKETS else "day")

    def add(self, d: Delivery) -> None:
        """One attempt."""
        self.add_fields(d.row(), d.failed)

    def add_fields(self, f: DeliveryRow, failed: bool) -> None:
        """One attempt, as a DeliveryRow, and whether it failed.
        The hot path of `atwh stats`: a few dict updates, nothing kept of the attempt but
        its lag."""
        delivery_id, created, delivered, status = f.id, f.created, f.delivered, f.status
        code, message = f.status_code, f.message
        event_id, name, event_created = f.event_id, f.event_name, f.event_created
        self.attempts += 1
        if failed:
            state = _FAILED
            if code is None:
                self.no_answer += 1
            cause = cause_of(code, status, message)
            causes = self.causes
            if cause not in causes and len(causes) >= MAX_KEYS:
                cause = OTHER
            causes[cause] = causes.get(cause, 0) + 1
        else:
            state = _PENDING if code is None else _OK
        self.states[state] += 1
        if code is not None:
            codes = self.codes
            codes[code] = codes.get(code, 0) + 1
        window = self.window
        if created is not None and not window.start <= created.timestamp() <= window.end:
            self.odd_dates += 1
            window.note_odd(created)
            created = None  # counted, but dated nowhere
        if created is not None and delivered is not None and event_created is not None:
            if window.sane(delivered) and window.sane(event_created):
                self.lags.append((delivered - event_created).total_seconds())
        if created is not None:
            when = created.timestamp()
            quarters = self.buckets.quarters
            counts = quarters.get(when // 900)
            if counts is None:
                counts = quarters[when // 900] = [0, 0, 0]
            counts[state] += 1
        else:
            when = 0.0
        key = event_id if event_id is not None else "\0" + delivery_id  # no id: its own event
        events = self.events
        rec = events.get(key)
        if rec is None:
            events[key] = _single(when, state)
        elif rec.__class__ is not _Event:
            events[key] = _Event.of(rec, when, state)  # type: ignore[arg-type]
        else:
            rec.add(when, state)  # type: ignore[union-attr]
        names = self.names
        counts = names.get(name)  # type: ignore[assignment]
        if counts is None:
            if len(names) >= MAX_KEYS:
                name = OTHER
            counts = names.setdefault(name, [0, 0, 0])
        counts[state] += 1

    @property
    def succeeded(self) -> int:
        return self.states[_OK]

    @property
    def failed(self) -> int:
        return self.states[_FAILED]

    @property
    def pending(self) -> int:
        return self.states[_PENDING]

    def _events(self) -> Iterator[_Event]:
        for e in self.events.values():
            yield e if e.__class__ is _Event else _Event(*_unpack(e))  # type: ignore[arg-type,misc]

    def summary(self) -> dict[str, Any]:
        """Every number, with the names README documents."""
        settled = succeeded = first_known = first_ok = still = 0
        retries_total = retries_max = 0
        recoveries = array("d")
        for e in self._events():
            retries_total += e.attempts - 1
            if e.attempts - 1 > retries_max:
                retries_max = e.attempts - 1
            if e.first_state != _PENDING:
                first_known += 1
                first_ok += e.first_state == _OK
            if e.wins is not None or e.failed_at is not None:
                settled += 1
                succeeded += e.wins is not None
            still += e.last_state == _FAILED
            recovery = e.recovery()
            if recovery is not None:
                recoveries.append(recovery)
        lags = sorted(self.lags)
        recovered = sorted(recoveries)
        events = len(self.events)
        finished = self.succeeded + self.failed
        return {
            "webhook_id": self.webhook_id,
            "attempts": self.attempts,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "pending": self.pending,
            "events": events,
            "events_succeeded": succeeded,
            "attempt_success_rate": ratio(self.succeeded, finished),
            "event_success_rate": ratio(succeeded, settled),
            "first_attempt_success_rate": ratio(first_ok, first_known),
            "retries_per_event": {
                "mean": ratio(retries_total, events),
                "max": retries_max if events else None,
            },
            "answers": self._answers(),
            "top_codes": [{"code": code, "count": n} for code, n in _top(self.codes.items(), TOP)],
            "top_causes": [
                {"cause": cause, "count": n} for cause, n in _top(_printable(self.causes), TOP)
            ],
            "lag_seconds": {
                "count": len(lags),
                "p50": nearest_rank(lags, 50),
                "p95": nearest_rank(lags, 95),
                "p99": nearest_rank(lags, 99),
                "max": lags[-1] if lags else None,
            },
            "recovery_seconds": {
                "count": len(recovered),
                "p50": nearest_rank(recovered, 50),
                "p95": nearest_rank(recovered, 95),
            },
            "still_failing_events": still,
            "odd_dates": self.odd_dates,
            "by_event": [
                {
                    "event_name": name,
                    "attempts": sum(c),
                    "succeeded": c[0],
                    "failed": c[1],
                    "pending": c[2],
                    "attempt_success_rate": ratio(c[0], c[0] + c[1]),
                }
                for name, c in sorted(
                    _by_name(self.names).items(), key=lambda kv: (-sum(kv[1]), kv[0])
                )
            ],
            "by_code": [
                {"code": key, "attempts": n}
                for key, n in sorted(
                    [*((str(c), n) for c, n in self.codes.items()), ("none", self.no_answer)],
                    key=lambda kv: (-kv[1], kv[0]),
                )
                if n
            ],
            "buckets": self.buckets.rows(),
        }

    def _answers(self) -> dict[str, int]:
        answers = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
        for code, n in self.codes.items():
            cls = f"{code // 100}xx"
            answers[cls] = answers.get(cls, 0) + n
        answers["none"] = self.no_answer
        return answers


def _printable(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Counts by text from the network, the text made safe to show (and merged where that
    makes two the same)."""
    out: dict[str, int] = {}
    for text, n in counts.items():
        key = printable(text, 120)
        out[key] = out.get(key, 0) + n
    return list(out.items())


def _by_name(names: dict[str | None, list[int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for name, counts in names.items():
        key = printable(name or "(no event name)", 120)
        into = out.setdefault(key, [0, 0, 0])
        for i in range(3):
            into[i] += counts[i]
    return out


def _top(items: Iterable[tuple[Any, int]], n: int) -> list[tuple[Any, int]]:
    return sorted(items, key=lambda kv: (-kv[1], str(kv[0])))[:n]


class Stats:
    """One WebhookStats per webhook, in the order the webhooks were given."""

    def __init__(
        self, webhook_ids: Sequence[str], by: str = "day", window: Window | None = None
    ) -> None:
        self.by = by if by in BUCKETS else "day"
        self.window = window if window is not None else Window()
        self.webhooks = {w: WebhookStats(w, self.by, self.window) for w in webhook_ids}

    def _of(self, webhook_id: str | None) -> WebhookStats:
        stats = self.webhooks.get(webhook_id or "")
        if stats is None:  # an id the API spelled differently: keep it apart, never lose it
            stats = self.webhooks[webhook_id or ""] = WebhookStats(webhook_id, self.by, self.window)
        return stats

    def add(self, d: Delivery) -> None:
        self._of(d.webhook_id).add(d)

    def add_all(self, deliveries: Iterable[Delivery]) -> Stats:
        """Every attempt; pages come one webhook at a time, so the lookup is made per run."""
        last_id: str | None = None
        add: Callable[[Delivery], None] | None = None
        for d in deliveries:
            if add is None or d.webhook_id != last_id:
                last_id = d.webhook_id
                add = self._of(d.webhook_id).add
            add(d)
        return self

    def add_page(self, page: Page, flt: DeliveryFilter) -> None:
        """The attempts of a page that match `flt`, read from their fields (no Delivery
        objects: the hot path of `atwh stats`)."""
        add = self._of(page.webhook_id).add_fields
        matches = flt.matches_values if flt.narrows() else None
        for f in page.rows():
            failed = is_failure(f.status, f.status_code, f.answered)
            if matches is None or matches(failed, f.created, f.event_name, f.status_code):
                add(f, failed)

    def summary(self, since: datetime | None, until: datetime | None) -> dict[str, Any]:
        return {
            "since": iso(since),
            "until": iso(until),
            "by": self.by,
            "webhooks": [s.summary() for s in self.webhooks.values()],
        }


def odd_dates_note(window: Window) -> str | None:
    """The one sentence about oddly dated attempts, if there were any."""
    if not window.odd or window.example is None:
        return None
    n = window.odd
    return (
        f"{n:,} attempt{'s' if n != 1 else ''} dated outside "
        f"{iso(datetime.fromtimestamp(window.start, UTC))} to "
        f"{iso(datetime.fromtimestamp(window.end, UTC))} (the first: {iso(window.example)}): "
        "counted, but left out of the chart, the lag and the timings"
    )


def check_bars(
    summary: dict[str, Any], fail_under: float | None, fail_over_lag: float | None
) -> tuple[list[str], list[str]]:
    """The monitoring bars a webhook misses, one line each; and the bars that could not be
    checked for want of data (warnings)."""
    missed: list[str] = []
    unchecked: list[str] = []
    for w in summary["webhooks"]:
        who = f"webhook {printable(w['webhook_id'] or '?', 80)}"
        rate = w["event_success_rate"]
        if fail_under is not None:
            if rate is None:
                unchecked.append(
                    f"{who}: no finished events in the window, --fail-under not checked"
                )
            elif rate < fail_under:
                missed.append(
                    f"{who}: event success rate {rate:.4f} is under --fail-under "
                    f"{fail_under:g} by {fail_under - rate:.4f}"
                )
        p95 = w["lag_seconds"]["p95"]
        if fail_over_lag is not None:
            if p95 is None:
                unchecked.append(f"{who}: no delivered attempts, --fail-over-lag not checked")
            elif p95 > fail_over_lag:
                bar = duration(fail_over_lag, exact=True)
                missed.append(
                    f"{who}: p95 lag {duration(p95)} is over --fail-over-lag {bar} "
                    f"by {duration(p95 - fail_over_lag)}"
                )
    return missed, unchecked
