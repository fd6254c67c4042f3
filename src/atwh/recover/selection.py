"""Which events to re-send: from a webhook's delivery log, or from `atwh serve`'s inbox.

Each event is sent once per run, however many attempts it had, oldest event first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from atwh.client.filters import DeliveryFilter
from atwh.client.model import Delivery
from atwh.client.prefix import resolve_prefix
from atwh.errors import UsageError, printable
from atwh.receiver.inbox import InboxRecord

_NEVER = datetime.min.replace(tzinfo=UTC)
MODES = ("failing", "failed", "all")  # the default, --all-failed, --all


def given_ids(values: Iterable[str] | None, option: str) -> list[str]:
    """The ids given to `option` (repeated, or comma-separated), in order. An empty one
    (`''`, `','`, `a,`: an unset shell variable, most likely) is a usage error, never "no
    ids", which would select every event."""
    ids: list[str] = []
    for value in values or ():
        parts = [p.strip() for p in value.split(",")]
        if not all(parts):
            raise UsageError(
                f"{option} {printable(value, 80)!r}: give an id or a unique prefix of one, "
                "not an empty string",
                hint="an unset shell variable? nothing was sent",
            )
        ids += parts
    return ids


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
    unverified: bool = False  # from the inbox, stored while `serve` checked no signature
    load: Callable[[], bytes] | None = None  # the body, read when needed (body is None)

    def payload(self) -> bytes:
        """The body to send: as kept, or read now (from the inbox: one at a time, so that
        a selection of a large inbox holds no payload)."""
        if self.body is not None:
            return self.body
        assert self.load is not None, "a candidate without a body is skipped"
        return self.load()


@dataclass(slots=True)
class Attempt:
    """What a replay needs of one delivery attempt (a Delivery without its answer's body and
    headers, which a 30-day log of a busy webhook would hold by the hundred megabytes)."""

    id: str
    created: datetime | None
    delivered: datetime | None
    status: str | None
    status_code: int | None
    failed: bool
    cause: str | None  # why it failed; None when it did not
    event_name: str | None

    @property
    def ok(self) -> bool:
        """Answered 2xx: what the endpoint acknowledged."""
        return not self.failed and (
            self.status_code is not None or (self.status or "").upper() == "SUCCESS"
        )


@dataclass(slots=True)
class LoggedEvent:
    """One event of the log: its attempts, and its payload once."""

    id: str | None
    name: str | None
    created: datetime | None
    payload: str | None
    attempts: list[Attempt] = field(default_factory=list)


class EventLog:
    """A webhook's deliveries grouped by event: feed it every delivery fetched."""

    def __init__(self) -> None:
        self.events: dict[str, LoggedEvent] = {}

    def add(self, d: Delivery) -> None:
        key = d.event.id or f"delivery:{d.id}"
        event = self.events.get(key)
        if event is None:
            event = self.events[key] = LoggedEvent(
                d.event.id, d.event.name, d.event.created, d.event.payload
            )
        elif d.event.payload is not None and (
            event.payload is None or d.created is not None and _latest(event) < d.created
        ):
            event.payload = d.event.payload  # the newest attempt's, where they differ
        failed = d.failed
        event.attempts.append(
            Attempt(
                d.id,
                d.created,
                d.delivered,
                d.status,
                d.status_code,
                failed,
                d.cause if failed else None,
                d.event.name,
            )
        )

    def extend(self, deliveries: Iterable[Delivery]) -> EventLog:
        for d in deliveries:
            self.add(d)
        return self

    def __len__(self) -> int:
        return len(self.events)

    def attempts(self, key: str) -> list[Attempt]:
        """An event's attempts, oldest first."""
        return sorted(self.events[key].attempts, key=lambda a: (a.created or _NEVER, a.id))

    def succeeded(self, key: str) -> bool:
        """Whether any attempt was answered 2xx (what the endpoint acknowledged)."""
        return any(a.ok for a in self.events[key].attempts)

    def still_failing(self, key: str) -> bool:
        """The latest attempt failed, and no attempt succeeded after it (or with it)."""
        attempts = self.attempts(key)
        last = attempts[-1]
        if not last.failed:
            return False
        failed_at = last.created or _NEVER
        return not any(a.ok and (a.created or _NEVER) >= failed_at for a in attempts)

    def candidate(self, key: str) -> Candidate:
        event = self.events[key]
        attempts = self.attempts(key)
        last = attempts[-1]
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
            created=event.created or attempts[0].created,
            origin=last.id,
            body=body,
            attempts=len(attempts),
            last_code=last.status_code,
            last_cause=last.cause,
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
            by_delivery = {a.id: k for k, e in self.events.items() for a in e.attempts}
            for given in delivery_ids:
                found = resolve_prefix(given, by_delivery, "delivery", "--delivery")
                keys.append(by_delivery[found])
            real_events = [k for k in self.events if not k.startswith("delivery:")]
            for given in event_ids:
                keys.append(resolve_prefix(given, real_events, "event", "--event-id"))
            keys = list(dict.fromkeys(keys))
        else:
            for key, event in self.events.items():
                if not any(flt.matches(a) for a in event.attempts):
                    continue
                if mode == "failing" and not self.still_failing(key):
                    continue
                if mode == "failed" and not any(a.failed for a in event.attempts):
                    continue
                keys.append(key)
        chosen = [self.candidate(k) for k in keys]
        chosen.sort(key=lambda c: (c.created or _NEVER, c.key))
        return chosen


def _latest(event: LoggedEvent) -> datetime:
    return max((a.created or _NEVER for a in event.attempts), default=_NEVER)


REPLAYABLE = "verified"  # what `inbox replay` sends by default: signatures that were checked


def refusal(r: InboxRecord, include_unverified: bool) -> str | None:
    """Why a stored request may not be replayed, or None.

    A replay signs the body afresh with the real secret, so sending a request that
    `serve` rejected would turn a forgery into a validly signed delivery. Rejected
    requests and test requests are never sent; unverified ones (received while `serve`
    ran without a secret, so anyone could have sent them) only when asked for.
    """
    if r.verdict == REPLAYABLE:
        return None
    if r.verdict == "rejected":
        why = f": {r.reason}" if r.reason else ""
        return (
            f"inbox #{r.id} was rejected by 'atwh serve'{why}; a rejected request is never replayed"
        )
    if r.verdict == "test":
        return f"inbox #{r.id} is a test request (unsigned, no event): nothing to replay"
    if r.verdict == "unverified":
        if include_unverified:
            return None
        return (
            f"inbox #{r.id} was never verified ('atwh serve' ran without a secret); "
            "--include-unverified sends it anyway"
        )
    return f"inbox #{r.id} has verdict {r.verdict!r}; only verified requests are replayed"


def from_inbox(
    records: Iterable[InboxRecord],
    flt: DeliveryFilter,
    ids: Iterable[str] = (),
    include_unverified: bool = False,
    passed_over: Counter[str] | None = None,
    body_of: Callable[[int], bytes] | None = None,
) -> list[Candidate]:
    """Requests stored by `atwh serve`, one per event id, oldest first.

    With `body_of` (Inbox.body_of), `records` may come without bodies (Inbox.records with
    bodies=False): each candidate reads its body when it is sent or written down.

    Given ids (an inbox id, or an event id or a unique prefix of one) select those
    requests; otherwise every stored request that matches `flt`. Only requests whose
    signature `serve` verified are taken (and unverified ones with `include_unverified`):
    an id naming any other is refused with its reason (UsageError), and without ids the
    others are passed over. Of several requests with one event id, the acknowledged one
    is sent, else the newest. `passed_over` counts, by verdict, the matching requests
    that were not taken for their verdict.
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
                named = [by_id[given]]
            else:
                event_id = resolve_prefix(given, event_ids, "inbox id or event", "ID")
                named = [r for r in records if r.event_id == event_id]
            allowed = [r for r in named if refusal(r, include_unverified) is None]
            if not allowed:
                why = refusal(named[-1], include_unverified)
                raise UsageError(f"ID {printable(given, 80)!r}: {why}")
            for r in allowed:
                take(r)
    else:
        for r in records:
            if not flt.matches(r):
                continue
            if refusal(r, include_unverified) is None:
                take(r)
            elif passed_over is not None and r.verdict != "test":
                passed_over[r.verdict] += 1
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
                body=None if body_of is not None else r.body,
                attempts=1 + r.duplicates,
                last_code=r.answer_code,
                content_type=headers.get("content-type", "application/json"),
                unverified=r.verdict == "unverified",
                load=partial(body_of, r.id) if body_of is not None else None,
            )
        )
    out.sort(key=lambda c: (c.created or _NEVER, int(c.origin)))
    return out
