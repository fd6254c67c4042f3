"""Failed attempts grouped by cause and event, and which events recovered on a retry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from atwh.client.model import Delivery, DeliveryRow, cause_of

if TYPE_CHECKING:
    from atwh.client.api import Page
    from atwh.client.filters import DeliveryFilter

# An event: its id, for the first webhook seen; (webhook id, event id) for any other (few
# summaries span webhooks, and a tuple per event would double what one costs).
EventKey = str | tuple[str | None, str]
_NEVER = float("-inf")


@dataclass(slots=True)
class FailureGroup:
    cause: str
    event_name: str
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    example_id: str | None = None
    # each event in the group, with the time of its latest failure here (POSIX seconds)
    events: dict[EventKey, float] = field(default_factory=dict)
    webhooks: set[str] = field(default_factory=set)
    recovered: int = 0
    still_failing: int = 0


class FailureSummary:
    """Feed it every delivery fetched (`observe`, or `observe_fields` for a page's fields);
    it counts the failed ones that matched.

    An event has recovered when an attempt to deliver it succeeded after its failure;
    an event whose last attempt failed is still failing.

    Memory grows with events, not attempts: per event its id and one float (its latest
    success, and its latest failure in each group it failed in), never the deliveries.
    """

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], FailureGroup] = {}
        self._succeeded: dict[EventKey, float] = {}  # latest success of each event
        self._first_webhook: str | None = None
        self.failed = 0

    def observe(self, d: Delivery, matched: bool) -> None:
        self.observe_fields(d.row(), d.webhook_id, d.failed, matched)

    def observe_fields(
        self, f: DeliveryRow, webhook_id: str | None, failed: bool, matched: bool
    ) -> None:
        """One attempt, as a DeliveryRow, with whether it failed
        and whether it matched the filter."""
        event_id = f.event_id
        key: EventKey | None = None
        if event_id:
            if self._first_webhook is None:
                self._first_webhook = webhook_id or ""
            key = event_id if webhook_id == self._first_webhook else (webhook_id, event_id)
        created = f.created
        when = _NEVER if created is None else created.timestamp()
        if not failed:
            if key is not None and (f.status_code is not None or f.status == "SUCCESS"):
                succeeded = self._succeeded
                if when >= succeeded.get(key, _NEVER):
                    succeeded[key] = when
            return
        if not matched:
            return
        self.failed += 1
        cause = cause_of(f.status_code, f.status, f.message)
        name = f.event_name or "(no event name)"
        group = self._groups.get((cause, name))
        if group is None:
            group = self._groups[(cause, name)] = FailureGroup(cause, name)
        group.count += 1
        if created is not None:
            if group.first is None or created < group.first:
                group.first = created
            if group.last is None or created > group.last:
                group.last = created
                group.example_id = f.id
        if group.example_id is None:
            group.example_id = f.id
        if key is not None:
            events = group.events
            if when >= events.get(key, _NEVER):
                events[key] = when
        if webhook_id:
            group.webhooks.add(webhook_id)

    def _recovered(self, key: EventKey, failed_at: float) -> bool:
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
        groups = list(self._groups.values())
        if len(groups) == 1:  # no event failed in two groups
            events = groups[0].events
            return sum(not self._recovered(k, t) for k, t in events.items())
        last_failure: dict[EventKey, float] = {}
        for group in groups:
            for key, when in group.events.items():
                if when >= last_failure.get(key, _NEVER):
                    last_failure[key] = when
        return sum(not self._recovered(k, t) for k, t in last_failure.items())


@dataclass(slots=True)
class FailureScan:
    """What `atwh failures` read: the failed attempts that match, grouped (summary), the
    newest of them to show, and what was read around them, for the headline and for
    saying why none matched."""

    summary: FailureSummary = field(default_factory=FailureSummary)
    rows: list[Delivery] = field(default_factory=list)  # the newest that match, newest first
    in_window: int = 0  # deliveries in the window and filters, failed or not
    scanned: int = 0  # deliveries read
    newest: datetime | None = None  # the newest read

    @property
    def matched(self) -> int:
        """Every failed attempt that matched (`rows` holds the newest of them)."""
        return self.summary.failed


def scan_failures(
    pages: Iterable[Page], flt: DeliveryFilter, wanted: int | None = None
) -> FailureScan:
    """Every delivery of these pages read once, from its fields: the failed ones matching
    `flt` (its window, events and codes) counted and grouped, each one's later success
    seen (whether it recovered), and the newest `wanted` kept (all when None) in a bounded
    heap, a Delivery made for each of those only. Memory grows with the events and the
    rows shown, never with the attempts read."""
    from atwh.client.filters import DeliveryFilter, NewestKept
    from atwh.client.model import delivery_of_row, detached_pair, is_failure

    done = FailureScan()
    kept: NewestKept[tuple[DeliveryRow, str | None]] = NewestKept(wanted, detached_pair)
    window = DeliveryFilter(flt.since, flt.until, flt.events, flt.status_codes).matches_values
    observe = done.summary.observe_fields
    in_window = scanned = 0
    newest = None
    for page in pages:
        webhook_id = page.webhook_id
        for f in page.rows():
            scanned += 1
            created = f.created
            if created is not None and (newest is None or created > newest):
                newest = created
            failed = is_failure(f.status, f.status_code, f.answered)
            matched = window(failed, created, f.event_name, f.status_code)
            in_window += matched
            matched = matched and failed
            observe(f, webhook_id, failed, matched)
            if matched:
                kept.offer(created, (f, webhook_id))
    done.in_window, done.scanned, done.newest = in_window, scanned, newest
    done.rows = [delivery_of_row(f, w) for f, w in kept.newest_first()]
    return done
