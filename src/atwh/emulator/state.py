"""The emulator's records: webhooks, events and delivery attempts, in memory or SQLite,
and the retry schedule and event catalogue they follow."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from atwh import samples
from atwh.core import dbfile
from atwh.errors import UsageError, printable

DAY = 86400.0
RETRY_HORIZON = 7 * DAY
HISTORY_DAYS = 30
DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_BODY_KEPT = 64 * 1024
EVENT_NAME = re.compile(r"^[a-z][a-z.-]*[a-z]$")
URN = re.compile(r"^urn:allthings:[a-z-]+:[A-Za-z0-9*._-]+(:[A-Za-z0-9*._-]+)*:?\*?$")

# The event names Allthings' own pages attest: the setup and build pages (ticket.*), a
# use-case diagram (booking.accepted) and the EventName scalar's example.
VENDOR_EVENTS = [
    ("ticket", "ticket.created", "A ticket was created."),
    ("ticket", "ticket.updated", "A ticket changed: status, assignee, category or fields."),
    ("booking", "booking.accepted", "A booking was accepted."),
    ("community-article", "community-article.published", "A community article went live."),
]
# Plausible names the vendor never published: the emulator's own, and described as such.
# first, so that a description shortened to fit a terminal still says it
EMULATOR_ADDITION = "Emulator's own addition, not attested by Allthings: "
EMULATOR_EVENTS = [
    ("ticket", "ticket.deleted", "A ticket was deleted."),
    ("ticket", "ticket-comment.created", "Someone commented on a ticket."),
    ("booking", "booking.created", "A booking was made."),
    ("booking", "booking.cancelled", "A booking was cancelled."),
    ("user", "user.registered", "A user registered in an app."),
]
REGISTERABLE_EVENTS = VENDOR_EVENTS + [
    (ns, name, EMULATOR_ADDITION + text) for ns, name, text in EMULATOR_EVENTS
]


def retry_delay(attempt: int) -> float:
    """Seconds (unscaled) to wait after the `attempt`-th failed attempt: 1m, 3m, 9m, …, 1d."""
    return min(60.0 * 3 ** (attempt - 1), DAY)


def iso_now(ts: float | None = None) -> str:
    return samples.iso_ms(time.time() if ts is None else ts)


# -- state ----------------------------------------------------------------------------


@dataclass
class WebhookRec:
    id: str
    created: float
    events: list[str]
    urns: list[str]
    url: str
    enabled: bool
    secret: str
    description: str | None = None


@dataclass
class EventRec:
    id: str
    created: float
    name: str
    urn: str
    payload: str  # the exact JSON body delivered


@dataclass
class DeliveryRec:
    id: str
    created: float
    event_id: str
    webhook_id: str
    attempt: int = 1
    delivered: float | None = None
    status: str = "PENDING"
    result: dict[str, Any] | None = None
    retry_id: str | None = None
    next_retry_at: float | None = None  # scheduled, not yet made (real time)
    first_attempt: float = 0.0  # when the chain started, for the 7-day horizon
    emulated_elapsed: float = 0.0  # unscaled seconds of back-off so far


SCHEMA_VERSION = 1


def _open(db: Path) -> sqlite3.Connection:
    """The emulator's database at `db`, made if new; anything but an emulator's state (or a
    new, empty file) is refused untouched."""
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as e:
        raise UsageError(
            f"--db {printable(db, 200)}: cannot open it: {printable(e, 120)}"
        ) from None
    try:
        found = dbfile.recognise(conn, db, dbfile.EMULATOR, SCHEMA_VERSION, "--db")
        dbfile.use_wal(conn)
        dbfile.make_schema(
            conn,
            "CREATE TABLE IF NOT EXISTS objects (kind TEXT, id TEXT, data TEXT, "
            "PRIMARY KEY (kind, id));",
            dbfile.EMULATOR,
            SCHEMA_VERSION,
            found,
        )
    except sqlite3.Error as e:
        conn.close()
        shown = f"--db {printable(db, 200)}"
        raise UsageError(f"{shown}: cannot use it: {printable(e, 120)}") from None
    except BaseException:
        conn.close()
        raise
    return conn


class State:
    """Webhooks, events and deliveries; in memory, written through to SQLite with `db`."""

    def __init__(self, db: Path | None = None) -> None:
        self.webhooks: dict[str, WebhookRec] = {}
        self.events: dict[str, EventRec] = {}
        self.deliveries: dict[str, DeliveryRec] = {}
        self.by_webhook: dict[str, list[str]] = {}  # delivery ids, oldest first
        self._unsorted: set[str] = set()
        self.conn: sqlite3.Connection | None = None
        if db is not None:
            self.conn = _open(db)
            self._load()

    def _load(self) -> None:
        assert self.conn is not None
        kinds = {"webhook": WebhookRec, "event": EventRec, "delivery": DeliveryRec}
        for kind, _, data in self.conn.execute("SELECT kind, id, data FROM objects ORDER BY rowid"):
            rec = kinds[kind](**json.loads(data))
            self._put(rec, save=False)
        self._unsorted.update(self.by_webhook)

    def _save(self, rec: WebhookRec | EventRec | DeliveryRec) -> None:
        if self.conn is None:
            return
        kind = {WebhookRec: "webhook", EventRec: "event", DeliveryRec: "delivery"}[type(rec)]
        self.conn.execute(
            "INSERT INTO objects (kind, id, data) VALUES (?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data",
            (kind, rec.id, json.dumps(asdict(rec))),
        )

    def _put(self, rec: WebhookRec | EventRec | DeliveryRec, save: bool = True) -> None:
        if isinstance(rec, WebhookRec):
            self.webhooks[rec.id] = rec
            self.by_webhook.setdefault(rec.id, [])
        elif isinstance(rec, EventRec):
            self.events[rec.id] = rec
        else:
            if rec.id not in self.deliveries:
                ids = self.by_webhook.setdefault(rec.webhook_id, [])
                ids.append(rec.id)
                if len(ids) > 1 and self.deliveries[ids[-2]].created > rec.created:
                    self._unsorted.add(rec.webhook_id)  # sorted when next read
            self.deliveries[rec.id] = rec
        if save:
            self._save(rec)

    put = _put

    def delivery_ids(self, webhook_id: str) -> list[str]:
        """A webhook's delivery ids, oldest first."""
        ids = self.by_webhook.get(webhook_id, [])
        if webhook_id in self._unsorted:
            ids.sort(key=lambda i: (self.deliveries[i].created, i))
            self._unsorted.discard(webhook_id)
        return ids

    def remove_webhook(self, webhook_id: str) -> None:
        self.webhooks.pop(webhook_id, None)
        if self.conn is not None:
            self.conn.execute(
                "DELETE FROM objects WHERE kind = 'webhook' AND id = ?", (webhook_id,)
            )

    def prune(self, older_than: float) -> int:
        """Forget deliveries created before `older_than`: history is kept for 30 days."""
        gone = [d.id for d in self.deliveries.values() if d.created < older_than]
        for i in gone:
            d = self.deliveries.pop(i)
            ids = self.by_webhook.get(d.webhook_id)
            if ids is not None and i in ids:
                ids.remove(i)
        if self.conn is not None and gone:
            self.conn.executemany(
                "DELETE FROM objects WHERE kind = 'delivery' AND id = ?", [(i,) for i in gone]
            )
        return len(gone)
