"""Which events to re-send: from a webhook's delivery log, or from `atwh serve`'s inbox.

Each event is sent once per run, however many attempts it had, oldest event first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from atwh.client.filters import DeliveryFilter
from atwh.client.model import Delivery
from atwh.client.prefix import resolve_prefix
from atwh.receiver.inbox import InboxRecord

_NEVER = datetime.min.replace(tzinfo=UTC)
MODES = ("failing", "failed", "all")  # the default, --all-failed, --all


@dataclass(slots=True)
class Candidate:
    """One event to re-send, with the body to send and where it came from."""

    key: str  # the event id (a delivery without one: "delivery:<id>")
    event_id: str | None
    event_name: str | None
    created: datetime | None
    origin: str  # the original delivery id, or the inbox id
    body: bytes | None  # None: nothing to send (see skip)
    attempts: int = 1  # attempts in the log (or receipts in the inbox)
    last_code: int | None = None
    last_cause: str | None = None
    content_type: str = "application/json"
    skip: str | None = None  # why it will not be sent


class EventLog:
    """A webhook's deliveries grouped by event: feed it every delivery fetched."""

    def __init__(self) -> None:
        self.events: dict[str, list[Delivery]] = {}

    def add(self, d: Delivery) -> None:
        key = d.event.id or f"delivery:{d.id}"
        attempts = self.events.get(key)
        if attempts is None:
            self.events[key] = [d]
        else:
            attempts.append(d)

    def extend(self, deliveries: Iterable[Delivery]) -> EventLog:
        for d in deliveries:
            self.add(d)
        return self

    def __len__(self) -> int:
        return len(self.events)

    def attempts(self, key: str) -> list[Delivery]:
        """An event's attempts, oldest first."""
        return sorted(self.events[key], key=lambda d: (d.created or _NEVER, d.id))

    def succeeded(self, key: str) -> bool:
        """Whether any attempt was answered 2xx (what the endpoint acknowledged)."""
        return any(_ok(d) for d in self.events[key])

    def still_failing(self, key: str) -> bool:
        """The latest attempt failed, and no attempt succeeded after it (or with it)."""
        attempts = self.attempts(key)
        last = attempts[-1]
        if not last.failed:
            return False
        failed_at = last.created or _NEVER
        return not any(_ok(d) and (d.created or _NEVER) >= failed_at for d in attempts)

    def candidate(self, key: str) -> Candidate:
        attempts = self.attempts(key)
        last = attempts[-1]
        with_payload = next((d for d in reversed(attempts) if d.event.payload is not None), last)
        event = with_payload.event
        created = event.created or attempts[0].created
        body: bytes | None = None
        skip: str | None = "the log has no payload for this event"
        if event.payload is not None:
            try:
                body, skip = event.payload.encode("utf-8"), None
            except UnicodeEncodeError:  # a lone surrogate, from a JSON escape: not UTF-8
                skip = "the payload in the log is not valid Unicode"
        return Candidate(
            key=key,
            event_id=event.id,
            event_name=event.name,
            created=created,
            origin=last.id,
            body=body,
            attempts=len(attempts),
            last_code=last.status_code,
            last_cause=last.cause if last.failed else None,
            skip=skip,
        )

    def select(
        self,
        flt: DeliveryFilter,
        mode: str = "failing",
        delivery_ids: Iterable[str] = (),
        event_ids: Iterable[str] = (),
    ) -> list[Candidate]:
        """The events to re-send, oldest first.

        Given ids (unique prefixes accepted) select exactly those events, whatever their
        state. Otherwise an event is in the window when one of its attempts matches `flt`,
        and then `mode` decides: "failing" (still failing), "failed" (any failed attempt),
        "all".
        """
        if mode not in MODES:
            raise ValueError(mode)
        delivery_ids, event_ids = list(delivery_ids), list(event_ids)
        keys: list[str] = []
        if delivery_ids or event_ids:
            by_delivery = {d.id: key for key, ds in self.events.items() for d in ds}
            for given in delivery_ids:
                found = resolve_prefix(given, by_delivery, "delivery", "--delivery")
                keys.append(by_delivery[found])
            real_events = [k for k in self.events if not k.startswith("delivery:")]
            for given in event_ids:
                keys.append(resolve_prefix(given, real_events, "event", "--event-id"))
            keys = list(dict.fromkeys(keys))
        else:
            for key, attempts in self.events.items():
                if not any(flt.matches(d) for d in attempts):
                    continue
                if mode == "failing" and not self.still_failing(key):
                    continue
                if mode == "failed" and not any(d.failed for d in attempts):
                    continue
                keys.append(key)
        chosen = [self.candidate(k) for k in keys]
        chosen.sort(key=lambda c: (c.created or _NEVER, c.key))
        return chosen


def _ok(d: Delivery) -> bool:
    return not d.failed and (d.status_code is not None or (d.status or "").upper() == "SUCCESS")


def from_inbox(
    records: Iterable[InboxRecord], flt: DeliveryFilter, ids: Iterable[str] = ()
) -> list[Candidate]:
    """Requests stored by `atwh serve`, one per event id, oldest first.

    Given ids (an inbox id, or an event id or a unique prefix of one) select those
    requests; otherwise every stored request that matches `flt`, test deliveries aside.
    Of several requests with one event id, the acknowledged one is sent, else the newest.
    """
    ids = list(ids)
    chosen: dict[str, InboxRecord] = {}

    def take(r: InboxRecord) -> None:
        key = r.event_id or f"inbox:{r.id}"
        held = chosen.get(key)
        if held is None or (r.acked, r.id) > (held.acked, held.id):
            chosen[key] = r

    if ids:
        records = list(records)
        by_id = {str(r.id): r for r in records}
        event_ids = list(dict.fromkeys(r.event_id for r in records if r.event_id))
        for given in ids:
            if given in by_id:
                take(by_id[given])
                continue
            event_id = resolve_prefix(given, event_ids, "inbox id or event", "ID")
            for r in records:
                if r.event_id == event_id:
                    take(r)
    else:
        for r in records:
            if r.verdict != "test" and flt.matches(r):
                take(r)
    out = []
    for key, r in chosen.items():
        headers = {name.lower(): value for name, value in r.headers}
        out.append(
            Candidate(
                key=key,
                event_id=r.event_id,
                event_name=r.event_name,
                created=r.received,
                origin=str(r.id),
                body=r.body,
                attempts=1 + r.duplicates,
                last_code=r.answer_code,
                content_type=headers.get("content-type", "application/json"),
            )
        )
    out.sort(key=lambda c: (c.created or _NEVER, int(c.origin)))
    return out
