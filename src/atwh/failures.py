"""Failed attempts grouped by cause and event, and which events recovered on a retry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from atwh.deliveries import Delivery


@dataclass(slots=True)
class FailureGroup:
    cause: str
    event_name: str
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    example_id: str | None = None
    events: set[tuple[str | None, str]] = field(default_factory=set)
    webhooks: set[str] = field(default_factory=set)
    recovered: int = 0
    still_failing: int = 0


class FailureSummary:
    """Feed it every delivery fetched (`observe`); it keeps the failed ones that matched."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], FailureGroup] = {}
        self._succeeded: set[tuple[str | None, str]] = set()
        self.failed = 0

    def observe(self, d: Delivery, matched: bool) -> None:
        key = _event_key(d)
        if not d.failed:
            if key is not None and (d.status_code is not None or d.status == "SUCCESS"):
                self._succeeded.add(key)
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
        if key is not None:
            group.events.add(key)
        if d.webhook_id:
            group.webhooks.add(d.webhook_id)

    def groups(self) -> list[FailureGroup]:
        """Largest first; `recovered` counts the group's events that later got a 2xx."""
        out = []
        for group in self._groups.values():
            group.recovered = sum(1 for e in group.events if e in self._succeeded)
            group.still_failing = len(group.events) - group.recovered
            out.append(group)
        return sorted(out, key=lambda g: (-g.count, g.cause, g.event_name))

    def still_failing_events(self) -> int:
        failing = {e for g in self._groups.values() for e in g.events}
        return len(failing - self._succeeded)


def _event_key(d: Delivery) -> tuple[str | None, str] | None:
    return (d.webhook_id, d.event.id) if d.event.id else None
