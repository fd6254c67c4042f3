"""`atwh reconcile`: the provider's delivery log joined with what the endpoint stored.

Per event: lost (the log shows a 2xx, the store does not have it: acknowledged and dropped),
not delivered (no attempt succeeded, not stored), unknown (stored, not in the log),
duplicated (stored more than once), ok.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atwh.client.filters import DeliveryFilter
from atwh.core.dates import iso
from atwh.errors import UsageError, printable
from atwh.receiver.inbox import Inbox
from atwh.recover.selection import Candidate, EventLog

LOST = "lost"
NOT_DELIVERED = "not delivered"
UNKNOWN = "unknown"
DUPLICATED = "duplicated"
OK = "ok"
CATEGORIES = (LOST, NOT_DELIVERED, UNKNOWN, DUPLICATED, OK)
_NEVER = datetime.min.replace(tzinfo=UTC)
MAX_STORED_FILE = 512 * 1024 * 1024


@dataclass(slots=True)
class Stored:
    """What the endpoint stored: how many times each event id, and names where known."""

    source: str
    counts: Counter[str] = field(default_factory=Counter)
    names: dict[str, str | None] = field(default_factory=dict)
    skipped: int = 0  # lines of a --stored file that do not look like an event id


# An event id as systems store them: a UUID, a hex or numeric id, `evt_123`, `ns:id`, with
# a digit somewhere; a line with spaces, quotes or markup, or a word (a README, a log) is
# not one
LOOKS_LIKE_ID = re.compile(r"(?=[^\n]*[0-9])[A-Za-z0-9_.:\-]{1,200}")


def stored_in_inbox(inbox: Inbox) -> Stored:
    """The events `atwh serve` acknowledged (one row per event; test deliveries aside)."""
    stored = Stored(f"inbox {inbox.path}")
    for event_id, name in inbox.acknowledged_events():
        stored.counts[event_id] += 1
        stored.names[event_id] = name
    return stored


def stored_from(db: Path | None, file: Path | None) -> Stored:
    """What was stored, from an inbox (`--db`) or a file of event ids (`--stored`): one of
    them."""
    if (db is None) == (file is None):
        raise UsageError("say what was stored: give --db INBOX or --stored FILE (one of them)")
    if db is not None:
        with Inbox(db, create=False) as box:
            return stored_in_inbox(box)
    assert file is not None
    return stored_in_file(file)


def stored_in_file(path: Path) -> Stored:
    """Event ids from the user's own system: one a line, a JSON array (of ids, or of objects
    with `event_id`, `eventId` or `id`), or a CSV with an `event_id` or `id` column."""
    name = f"--stored {path}"
    try:
        if path.stat().st_size > MAX_STORED_FILE:
            raise UsageError(f"{name}: larger than {MAX_STORED_FILE // 2**20} MiB")
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{name}: cannot read it: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{name}: not UTF-8 text") from None
    stored = Stored(str(path))
    stripped = text.lstrip()
    lines = False
    if stripped.startswith("["):
        ids = _json_ids(text, name)
    else:
        first = stripped.split("\n", 1)[0].strip()
        columns = [c.strip().lower() for c in next(csv.reader([first]))] if first else []
        if "," in first or columns[:1] in (["event_id"], ["id"]):
            ids = _csv_ids(text, name)
        else:
            ids = [line.strip() for line in text.splitlines()]
            lines = True  # any text file: only the lines that look like ids are ids
    for i in ids:
        if not i:
            continue
        if not lines or LOOKS_LIKE_ID.fullmatch(i):
            stored.counts[i] += 1
        else:
            stored.skipped += 1
    if stored.skipped and not stored.counts:
        example = next(i for i in ids if i)
        raise UsageError(
            f"{name}: nothing in it looks like an event id (e.g. {printable(example, 60)!r}); "
            "give event ids one a line, a JSON array or a CSV with an event_id column"
        )
    return stored


def _json_ids(text: str, name: str) -> list[str]:
    from atwh.core import jsontext

    try:
        data = jsontext.loads(text)
    except ValueError as e:
        raise UsageError(f"{name}: not valid JSON ({printable(e, 120)})") from None
    ids = []
    for item in data:
        if isinstance(item, dict):
            item = next((item[k] for k in ("event_id", "eventId", "id") if k in item), None)
        if isinstance(item, str | int) and not isinstance(item, bool):
            ids.append(str(item).strip())
        else:
            raise UsageError(f"{name}: a JSON array of event ids, or of objects with 'id'")
    return ids


def _csv_ids(text: str, name: str) -> list[str]:
    reader = csv.DictReader(io.StringIO(text))
    fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
    column = fields.get("event_id") or fields.get("id")
    if column is None:
        raise UsageError(f"{name}: a CSV needs an 'event_id' or 'id' column")
    try:
        return [(row.get(column) or "").strip() for row in reader]
    except csv.Error as e:
        raise UsageError(f"{name}: not a readable CSV ({printable(e, 120)})") from None


@dataclass(slots=True)
class Entry:
    event_id: str
    event_name: str | None
    category: str
    created: datetime | None = None
    attempts: int = 0  # in the log
    last_code: int | None = None
    last_delivery: str | None = None
    stored: int = 0
    backfilled: bool = False

    def to_api(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "eventName": self.event_name,
            "category": self.category,
            "createdDate": iso(self.created),
            "attempts": self.attempts,
            "lastStatusCode": self.last_code,
            "lastDeliveryId": self.last_delivery,
            "stored": self.stored,
            "backfilled": self.backfilled,
        }


@dataclass(slots=True)
class Reconciliation:
    entries: list[Entry]  # oldest first; those not in the log last
    since: datetime | None
    store: str

    def count(self, category: str) -> int:
        return sum(e.category == category for e in self.entries)

    def totals(self) -> dict[str, int]:
        return {c: self.count(c) for c in CATEGORIES}

    def summary(self) -> list[tuple[str, str, int]]:
        """(category, event name, events) for every pair found, in category order."""
        counts = Counter((e.category, e.event_name or "?") for e in self.entries)
        order = {c: i for i, c in enumerate(CATEGORIES)}
        return sorted(
            ((c, n, k) for (c, n), k in counts.items()), key=lambda t: (order[t[0]], t[1])
        )

    @property
    def trouble(self) -> bool:
        """Anything lost or not delivered (the exit code 1)."""
        return any(e.category in (LOST, NOT_DELIVERED) for e in self.entries)

    def to_api(self) -> dict[str, Any]:
        return {
            "since": iso(self.since),
            "store": self.store,
            "totals": {k.replace(" d", "D"): v for k, v in self.totals().items()},
            "summary": [{"category": c, "eventName": n, "events": k} for c, n, k in self.summary()],
            "events": [e.to_api() for e in self.entries if e.category != OK],
        }


def reconcile(log: EventLog, stored: Stored, since: datetime | None) -> Reconciliation:
    window = DeliveryFilter(since=since)
    entries: list[Entry] = []
    in_log: set[str] = set()
    for key in log.events:
        if key.startswith("delivery:"):
            continue  # no event id: nothing to join on
        attempts = log.attempts(key)
        if not any(window.matches(d) for d in attempts):
            continue
        in_log.add(key)
        event = log.events[key]
        last = attempts[-1]
        count = stored.counts.get(key, 0)
        if count > 1:
            category = DUPLICATED
        elif count == 1:
            category = OK
        else:
            category = LOST if log.succeeded(key) else NOT_DELIVERED
        entries.append(
            Entry(
                key,
                event.name,
                category,
                event.created or attempts[0].created,
                len(attempts),
                last.status_code,
                last.id,
                count,
            )
        )
    entries.sort(key=lambda e: (e.created or _NEVER, e.event_id))
    for key, count in stored.counts.items():
        if key not in in_log:
            entries.append(
                Entry(
                    key, stored.names.get(key), DUPLICATED if count > 1 else UNKNOWN, stored=count
                )
            )
    return Reconciliation(entries, since, stored.source)


def to_replay(result: Reconciliation, log: EventLog) -> list[Candidate]:
    """The lost and not-delivered events, as replay candidates, oldest first."""
    return [
        log.candidate(e.event_id) for e in result.entries if e.category in (LOST, NOT_DELIVERED)
    ]


def backfill_inbox(result: Reconciliation, log: EventLog, db: Path) -> int:
    """backfill() into the inbox at `db`, which must exist."""
    with Inbox(db, create=False) as box:
        return backfill(result, log, box)


def backfill(result: Reconciliation, log: EventLog, inbox: Inbox) -> int:
    """Insert the lost events into the inbox from the log's payload, marked `backfilled`
    (never verified); how many were inserted."""
    done = 0
    for e in result.entries:
        if e.category != LOST:
            continue
        attempts = log.attempts(e.event_id)
        acked = next(a for a in reversed(attempts) if a.ok)
        payload = log.events[e.event_id].payload
        if payload is None:
            continue
        when = acked.delivered or acked.created or datetime.now(UTC)
        if inbox.backfill(
            event_id=e.event_id,
            event_name=e.event_name,
            body=payload.encode("utf-8", errors="surrogatepass"),
            received_at=when.timestamp(),
            answer_code=acked.status_code or 200,
            note=f"from delivery {acked.id} in the API's log, by atwh reconcile",
        ):
            e.backfilled = True
            done += 1
    return done
