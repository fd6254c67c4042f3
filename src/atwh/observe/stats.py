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
  value at rank ceil(p/100 × n) (1-based); there is none when n is 0.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from atwh.client.model import Delivery, iso
from atwh.errors import printable

BUCKETS = ("day", "hour")
BREAKDOWNS = ("event", "code")
MAX_KEYS = 1000  # distinct causes or event names kept; the rest are counted as one
OTHER = "(other)"
TOP = 10  # codes and causes in the summary


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
        if when < self.first:
            self.first, self.first_state = when, state
        if when >= self.last:
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


class _Buckets:
    """Attempts per local day or hour: the bucket of a time is looked up once per quarter
    hour of UTC (every time zone's offset is a whole number of quarter hours)."""

    def __init__(self, by: str) -> None:
        self.by = by
        self._start: dict[int, datetime] = {}
        self.counts: dict[datetime, list[int]] = {}  # start → [succeeded, failed, pending]

    def start_of(self, when: datetime) -> datetime:
        quarter = int(when.timestamp() // 900)
        start = self._start.get(quarter)
        if start is None:
            local = datetime.fromtimestamp(quarter * 900).astimezone()
            if self.by == "hour":
                start = local.replace(minute=0, second=0, microsecond=0)
            else:
                start = local.replace(hour=0, minute=0, second=0, microsecond=0)
            start = start.replace(tzinfo=None).astimezone()  # the offset on that date
            self._start[quarter] = start
        return start

    def add(self, when: datetime, state: int) -> None:
        start = self.start_of(when)
        counts = self.counts.get(start)
        if counts is None:
            counts = self.counts[start] = [0, 0, 0]
        counts[state] += 1

    def rows(self) -> list[dict[str, Any]]:
        """Every bucket from the first with attempts to the last, the empty ones included."""
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


def _bounded(table: dict[Any, Any], key: Any) -> Any:
    """`key`, or OTHER once the table holds MAX_KEYS keys (text from the network is not
    allowed to grow it without bound)."""
    if key in table or len(table) < MAX_KEYS:
        return key
    return OTHER


class WebhookStats:
    """The numbers of one webhook over the attempts given to `add`."""

    def __init__(self, webhook_id: str | None, by: str = "day") -> None:
        self.webhook_id = webhook_id
        self.attempts = 0
        self.succeeded = 0
        self.failed = 0
        self.pending = 0
        self.classes = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "none": 0}
        self.codes: dict[int, int] = {}
        self.causes: dict[str, int] = {}
        self.lags = array("d")
        self.events: dict[str, _Event] = {}
        self.names: dict[str, list[int]] = {}  # event name → [attempts, ok, failed, pending]
        self.buckets = _Buckets(by if by in BUCKETS else "day")

    def add(self, d: Delivery) -> None:
        self.attempts += 1
        code = d.status_code
        if d.failed:
            state = _FAILED
            self.failed += 1
            cause = _bounded(self.causes, printable(d.cause, 120))
            self.causes[cause] = self.causes.get(cause, 0) + 1
        elif code is None:
            state = _PENDING
            self.pending += 1
        else:
            state = _OK
            self.succeeded += 1
        if state != _PENDING:
            if code is None:
                self.classes["none"] += 1
            else:
                cls = f"{code // 100}xx"
                self.classes[cls] = self.classes.get(cls, 0) + 1
                self.codes[code] = self.codes.get(code, 0) + 1
        created = d.created
        when = created.timestamp() if created is not None else 0.0
        event = d.event
        if d.delivered is not None and event.created is not None:
            self.lags.append((d.delivered - event.created).total_seconds())
        key = event.id if event.id is not None else "\0" + d.id  # no event id: its own event
        rec = self.events.get(key)
        if rec is None:
            self.events[key] = _Event(when, state)
        else:
            rec.add(when, state)
        name = _bounded(self.names, printable(event.name or "(no event name)", 120))
        counts = self.names.get(name)
        if counts is None:
            counts = self.names[name] = [0, 0, 0, 0]
        counts[0] += 1
        counts[1 + state] += 1
        if created is not None:
            self.buckets.add(created, state)

    def summary(self) -> dict[str, Any]:
        """Every number, with the names README documents."""
        settled = succeeded = first_known = first_ok = still = 0
        retries_total = retries_max = 0
        recoveries = array("d")
        for e in self.events.values():
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
            "answers": dict(self.classes),
            "top_codes": [{"code": code, "count": n} for code, n in _top(self.codes.items(), TOP)],
            "top_causes": [
                {"cause": cause, "count": n} for cause, n in _top(self.causes.items(), TOP)
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
            "by_event": [
                {
                    "event_name": name,
                    "attempts": c[0],
                    "succeeded": c[1],
                    "failed": c[2],
                    "pending": c[3],
                    "attempt_success_rate": ratio(c[1], c[1] + c[2]),
                }
                for name, c in sorted(self.names.items(), key=lambda kv: (-kv[1][0], kv[0]))
            ],
            "by_code": [
                {"code": key, "attempts": n}
                for key, n in sorted(
                    [*((str(c), n) for c, n in self.codes.items()), ("none", self.classes["none"])],
                    key=lambda kv: (-kv[1], kv[0]),
                )
                if n
            ],
            "buckets": self.buckets.rows(),
        }


def _top(items: Iterable[tuple[Any, int]], n: int) -> list[tuple[Any, int]]:
    return sorted(items, key=lambda kv: (-kv[1], str(kv[0])))[:n]


class Stats:
    """One WebhookStats per webhook, in the order the webhooks were given."""

    def __init__(self, webhook_ids: Sequence[str], by: str = "day") -> None:
        self.by = by if by in BUCKETS else "day"
        self.webhooks = {w: WebhookStats(w, self.by) for w in webhook_ids}

    def add(self, d: Delivery) -> None:
        stats = self.webhooks.get(d.webhook_id or "")
        if stats is None:  # an id the API spelled differently: keep it apart, never lose it
            stats = self.webhooks[d.webhook_id or ""] = WebhookStats(d.webhook_id, self.by)
        stats.add(d)

    def add_all(self, deliveries: Iterable[Delivery]) -> Stats:
        add = self.add
        for d in deliveries:
            add(d)
        return self

    def summary(self, since: datetime | None, until: datetime | None) -> dict[str, Any]:
        return {
            "since": iso(since),
            "until": iso(until),
            "by": self.by,
            "webhooks": [s.summary() for s in self.webhooks.values()],
        }


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
                missed.append(
                    f"{who}: p95 lag {p95:.3f}s is over --fail-over-lag {fail_over_lag:g}s "
                    f"by {p95 - fail_over_lag:.3f}s"
                )
    return missed, unchecked
