"""Failed attempts grouped by cause and event, and which events recovered on a retry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from atwh.client.model import Delivery

if TYPE_CHECKING:
    from atwh.client.filters import DeliveryFilter

EventKey = tuple[str | None, str]  # (webhook id, event id)
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(slots=True)
class FailureGroup:
    cause: str
    event_name: str
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    example_id: str | None = None
    # each event in the group, with the time of its latest failure here
    events: dict[EventKey, datetime] = field(default_factory=dict)
    webhooks: set[str] = field(default_factory=set)
    recovered: int = 0
    still_failing: int = 0


class FailureSummary:
    """Feed it every delivery fetched (`observe`); it keeps the failed ones that matched.

    An event has recovered when an attempt to deliver it succeeded after its failure;
    an event whose last attempt failed is still failing.
    """

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], FailureGroup] = {}
        self._succeeded: dict[EventKey, datetime] = {}  # latest success of each event
        self.failed = 0

    def observe(self, d: Delivery, matched: bool) -> None:
        key = _event_key(d)
        when = d.created or _NEVER
        if not d.failed:
            if key is not None and (d.status_code is not None or d.status == "SUCCESS"):
                if when >= self._succeeded.get(key, _NEVER):
                    self._succeeded[key] = when
            return
        if not matched:
            return
        self.failed += 1
        name = d.event.name or "(no event name)"
        group = self._groups.get((d.cause, name))
        if group is None:
            group = self._groups[(d.cause, name)] = FailureGroup(d.cause, name)
        group.count += 1
        if d.created is not None:
            if group.first is None or d.created < group.first:
                group.first = d.created
            if group.last is None or d.created > group.last:
                group.last = d.created
                group.example_id = d.id
        if group.example_id is None:
            group.example_id = d.id
        if key is not None and when >= group.events.get(key, _NEVER):
            group.events[key] = when
        if d.webhook_id:
            group.webhooks.add(d.webhook_id)

    def _recovered(self, key: EventKey, failed_at: datetime) -> bool:
        succeeded = self._succeeded.get(key)
        return succeeded is not None and succeeded >= failed_at

    def groups(self) -> list[FailureGroup]:
        """Largest first, with how many of each group's events recovered."""
        out = []
        for group in self._groups.values():
            group.recovered = sum(self._recovered(k, t) for k, t in group.events.items())
            group.still_failing = len(group.events) - group.recovered
            out.append(group)
        return sorted(out, key=lambda g: (-g.count, g.cause, g.event_name))

    def still_failing_events(self) -> int:
        last_failure: dict[EventKey, datetime] = {}
        for group in self._groups.values():
            for key, when in group.events.items():
                if when >= last_failure.get(key, _NEVER):
                    last_failure[key] = when
        return sum(not self._recovered(k, t) for k, t in last_failure.items())


def _event_key(d: Delivery) -> EventKey | None:
    return (d.webhook_id, d.event.id) if d.event.id else None


@dataclass(slots=True)
class FailureScan:
    """What `atwh failures` read: the failed attempts that match, grouped (summary), and
    what was read around them, for the headline and for saying why none matched."""

    summary: FailureSummary = field(default_factory=FailureSummary)
    rows: list[Delivery] = field(default_factory=list)  # the failed attempts that match
    in_window: int = 0  # deliveries in the window and filters, failed or not
    scanned: int = 0  # deliveries read
    newest: datetime | None = None  # the newest read


def scan_failures(deliveries: Iterable[Delivery], flt: DeliveryFilter) -> FailureScan:
    """Every delivery read once: the failed ones matching `flt` (its window, events and
    codes) kept and grouped, each one's later success seen (whether it recovered)."""
    from atwh.client.filters import DeliveryFilter

    done = FailureScan()
    failed = DeliveryFilter(flt.since, flt.until, flt.events, flt.status_codes, True)
    window = DeliveryFilter(flt.since, flt.until, flt.events, flt.status_codes)
    for d in deliveries:
        done.scanned += 1
        if d.created is not None and (done.newest is None or d.created > done.newest):
            done.newest = d.created
        matched = failed.matches(d)
        done.in_window += matched or window.matches(d)
        done.summary.observe(d, matched)
        if matched:
            done.rows.append(d)
    return done
