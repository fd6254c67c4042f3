"""`atwh reconcile`: the provider's delivery log joined with what the endpoint stored.

Per event: lost (the log shows a 2xx, the store does not have it: acknowledged and dropped),
not delivered (no attempt succeeded, not stored), unknown (stored, not in the log),
duplicated (a --stored file lists it more than once), conflicting (the inbox holds two
events under its id: a conflicting duplicate, or the id as a number and as a string), ok.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from atwh.core.dates import iso
from atwh.errors import UsageError, printable
from atwh.receiver.inbox import Inbox
from atwh.recover.selection import Candidate, EventLog, oldest_first

if TYPE_CHECKING:
    from atwh.client.api import ApiClient, Page
    from atwh.client.model import Delivery, DeliveryRow, Webhook

LOST = "lost"
NOT_DELIVERED = "not delivered"
UNKNOWN = "unknown"
DUPLICATED = "duplicated"
CONFLICTING = "conflicting"
OK = "ok"
CATEGORIES = (LOST, NOT_DELIVERED, UNKNOWN, DUPLICATED, CONFLICTING, OK)  # ok last
MAX_STORED_FILE = 512 * 1024 * 1024


class Stored:
    """What the endpoint stored: how many times each event id, and names where known;
    `twice` is the category of an id stored more than once: in a file of ids it is listed
    twice (duplicated); in an inbox, which keeps one row per event, two events share its
    text (conflicting).

    The ids are counted in a SQLite file of their own in a temporary directory, not in
    memory: a file of millions of ids (or an inbox of millions of events) is joined with
    the log in flat memory. Each id found in the log's window is marked `seen` there (by
    Join and reconcile()), so that what is left are the others, and nothing beside the
    store remembers which ids the log had. `close()` (or the end of the process) removes
    it."""

    def __init__(self, source: str, twice: str = DUPLICATED) -> None:
        import sqlite3
        import tempfile
        import weakref

        self.source = source
        self.twice = twice
        self.skipped = 0  # lines of a --stored file that do not look like an event id
        self.added = 0  # ids stored, each time
        self._dir = tempfile.TemporaryDirectory(prefix="atwh-reconcile-")
        self._conn = sqlite3.connect(Path(self._dir.name) / "stored.sqlite3")
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -8000"):
            self._conn.execute(f"PRAGMA {pragma}")
        # one B-tree, by id (WITHOUT ROWID: a quarter less time to fill than a table and
        # its index); `ord`: the order first stored
        self._conn.execute(
            "CREATE TABLE ids (id TEXT PRIMARY KEY NOT NULL, ord INTEGER NOT NULL, "
            "n INTEGER NOT NULL, name TEXT, seen INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID"
        )
        self._batch: list[tuple[str, int, str | None]] = []
        self._closer = weakref.finalize(self, _close, self._conn, self._dir)

    def add(self, event_id: str, name: str | None = None) -> None:
        self.added += 1
        self._batch.append((event_id, self.added, name))
        if len(self._batch) >= 10_000:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            with self._conn:
                self._conn.executemany(
                    "INSERT INTO ids (id, ord, n, name) VALUES (?, ?, 1, ?) "
                    "ON CONFLICT (id) DO UPDATE SET n = n + 1, name = excluded.name",
                    self._batch,
                )
            self._batch = []

    def get(self, event_id: str) -> int:
        """How many times `event_id` was stored (0: never)."""
        return self.lookup(event_id)[0]

    def lookup(self, event_id: str) -> tuple[int, str | None]:
        """How many times `event_id` was stored (0: never), and its name if known."""
        self._flush()
        row = self._conn.execute("SELECT n, name FROM ids WHERE id = ?", (event_id,)).fetchone()
        return (int(row[0]), row[1]) if row else (0, None)

    def known(self, event_ids: list[str]) -> dict[str, tuple[int, int]]:
        """Of these ids, those stored: their (times stored, seen), asked a few hundred ids
        a query."""
        self._flush()
        found: dict[str, tuple[int, int]] = {}
        for i in range(0, len(event_ids), 500):
            part = event_ids[i : i + 500]
            rows = self._conn.execute(
                f"SELECT id, n, seen FROM ids WHERE id IN ({','.join('?' * len(part))})", part
            )
            found.update((k, (n, seen)) for k, n, seen in rows)
        return found

    def unseen_once(self, event_ids: list[str]) -> dict[str, int]:
        """Of these ids, those stored: 1 for an id stored once and not seen yet, -1 for one
        stored once and seen, 0 for one stored more than once (made by SQLite, a number a
        key: what Join asks of every page)."""
        self._flush()
        found: dict[str, int] = {}
        for i in range(0, len(event_ids), 500):
            part = event_ids[i : i + 500]
            found.update(
                self._conn.execute(
                    "SELECT id, CASE WHEN n > 1 THEN 0 WHEN seen THEN -1 ELSE 1 END "
                    f"FROM ids WHERE id IN ({','.join('?' * len(part))})",
                    part,
                )
            )
        return found

    def mark_seen(self, event_ids: list[str]) -> None:
        """Mark these ids (stored) as found in the log's window."""
        for i in range(0, len(event_ids), 500):
            part = event_ids[i : i + 500]
            self._conn.execute(
                f"UPDATE ids SET seen = 1 WHERE id IN ({','.join('?' * len(part))})", part
            )

    def groups(self) -> Iterator[tuple[bool, str | None, int]]:
        """(stored more than once, name, how many ids) over the ids not seen in the log:
        counted by SQLite."""
        self._flush()
        yield from self._conn.execute(
            "SELECT n > 1, name, count(*) FROM ids WHERE NOT seen GROUP BY 1, 2"
        )

    def items(self, unseen: bool = False) -> Iterator[tuple[str, int, str | None]]:
        """(event id, times stored, name) of every id (`unseen`: of those not seen in the
        log), in the order first stored."""
        self._flush()
        where = " WHERE NOT seen" if unseen else ""
        cur = self._conn.execute(f"SELECT id, n, name FROM ids{where} ORDER BY ord")
        while rows := cur.fetchmany(1000):
            yield from rows

    def close(self) -> None:
        self._closer()


def _close(conn: Any, directory: Any) -> None:
    conn.close()
    directory.cleanup()


# An event id as systems store them: a UUID, a hex or numeric id, `evt_123`, `ns:id`, with
# a digit somewhere; a line with spaces, quotes or markup, or a word (a README, a log) is
# not one
LOOKS_LIKE_ID = re.compile(r"(?=[^\n]*[0-9])[A-Za-z0-9_.:\-]{1,200}")


def stored_in_inbox(inbox: Inbox) -> Stored:
    """The events `atwh serve` acknowledged (one row per event; test deliveries aside)."""
    stored = Stored(f"inbox {inbox.path}", twice=CONFLICTING)
    for event_id, name in inbox.acknowledged_events():
        stored.add(event_id, name)
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
    with `event_id`, `eventId` or `id`), or a CSV with an `event_id` or `id` column. Read
    as a stream, a line or an array item at a time."""
    name = f"--stored {path}"
    try:
        if path.stat().st_size > MAX_STORED_FILE:
            raise UsageError(f"{name}: larger than {MAX_STORED_FILE // 2**20} MiB")
        stream = path.open(encoding="utf-8-sig", newline="")
    except OSError as e:
        raise UsageError(f"{name}: cannot read it: {e.strerror or e}") from None
    stored = Stored(str(path))
    try:
        with stream:
            head = stream.read(4096)
            first_char = head.lstrip()[:1]
            first = head.lstrip().split("\n", 1)[0].strip()
            stream.seek(0)
            lines = False
            if first_char == "[":
                ids: Iterable[str] = _json_ids(stream, name)
            else:
                columns = [c.strip().lower() for c in next(csv.reader([first]))] if first else []
                if "," in first or columns[:1] in (["event_id"], ["id"]):
                    ids = _csv_ids(stream, name)
                else:
                    ids = (line.strip() for line in stream)
                    lines = True  # any text file: only the lines that look like ids are ids
            example = None
            for i in ids:
                if not i:
                    continue
                if not lines or LOOKS_LIKE_ID.fullmatch(i):
                    stored.add(i)
                else:
                    stored.skipped += 1
                    example = example or i
            if stored.skipped and not stored.added:
                raise UsageError(
                    f"{name}: nothing in it looks like an event id (e.g. "
                    f"{printable(example, 60)!r}); give event ids one a line, a JSON array or "
                    "a CSV with an event_id column"
                )
    except UnicodeDecodeError:
        stored.close()
        raise UsageError(f"{name}: not UTF-8 text") from None
    except OSError as e:
        stored.close()
        raise UsageError(f"{name}: cannot read it: {e.strerror or e}") from None
    except BaseException:
        stored.close()
        raise
    return stored


def _json_ids(stream: IO[str], name: str) -> Iterator[str]:
    """The ids of a JSON array, an item at a time (each item parsed on its own)."""
    for item in _json_array_items(stream, name):
        if isinstance(item, dict):
            item = next((item[k] for k in ("event_id", "eventId", "id") if k in item), None)
        if isinstance(item, str | int) and not isinstance(item, bool):
            yield str(item).strip()
        else:
            raise UsageError(f"{name}: a JSON array of event ids, or of objects with 'id'")


_CHUNK = 1 << 16
_MAX_ITEM = 1 << 20  # one item of the array (an id, or an object with one): 1 MiB at most


def _json_array_items(stream: IO[str], name: str) -> Iterator[Any]:
    """The items of the JSON array in `stream`, decoded one by one from a window of the
    text, so that the whole array is never in memory."""
    import json

    decoder = json.JSONDecoder()

    def bad(why: str) -> UsageError:
        return UsageError(f"{name}: not valid JSON ({why})")

    buf, pos, eof = "", 0, False

    def fill() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        chunk = stream.read(_CHUNK)
        if not chunk:
            eof = True
            return False
        buf, pos = buf[pos:] + chunk, 0
        return True

    def skip_space() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf) or not fill():
                return buf[pos] if pos < len(buf) else ""

    if skip_space() != "[":
        raise bad("expected '['")
    pos += 1
    if skip_space() == "]":
        pos += 1
    else:
        while True:
            skip_space()
            while True:
                try:
                    item, end = decoder.raw_decode(buf, pos)
                except RecursionError:
                    raise bad("JSON nested too deeply") from None
                except ValueError as e:
                    if len(buf) - pos > _MAX_ITEM:
                        raise bad(f"an item over 1 MiB, or {printable(e, 80)}") from None
                    if fill():
                        continue
                    raise bad(printable(e, 120)) from None
                if end >= len(buf) and not eof and fill():  # a number may go on
                    continue
                break
            pos = end
            yield item
            c = skip_space()
            if c == ",":
                pos += 1
                continue
            if c == "]":
                pos += 1
                break
            raise bad("expected ',' or ']'")
    if skip_space():
        raise bad("text after the array")


def _csv_ids(stream: IO[str], name: str) -> Iterator[str]:
    reader = csv.DictReader(stream)
    try:
        fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
        column = fields.get("event_id") or fields.get("id")
        if column is None:
            raise UsageError(f"{name}: a CSV needs an 'event_id' or 'id' column")
        for row in reader:
            yield (row.get(column) or "").strip()
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
    """The log's events that are not ok, each with its category (`entries`, oldest
    first), the log's ok events counted by name (`ok`: never kept one by one), and the
    events stored but not in the log (`others`: read from the store as they are shown,
    never all held; counted by category in `other_counts`)."""

    entries: list[Entry]
    since: datetime | None
    store: str
    stored: Stored | None = None
    ok: Counter[str] = field(default_factory=Counter)  # event name ("?" if none): events
    other_counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (cat, name)
    # (how many entries, those of each category): made by _logged() when first asked
    _by_category: tuple[int, dict[str, list[Entry]]] | None = None

    def others(self, category: str | None = None) -> Iterator[Entry]:
        """The events stored and not in the log (of one category), in the order stored."""
        if self.stored is None:
            return
        for key, count, name in self.stored.items(unseen=True):
            entry = Entry(key, name, self.stored.twice if count > 1 else UNKNOWN, stored=count)
            if category is None or entry.category == category:
                yield entry

    def _logged(self, category: str) -> list[Entry]:
        """The log's entries of `category`, oldest first (grouped once: a list of
        references, not copies)."""
        if self._by_category is None or self._by_category[0] != len(self.entries):
            groups: dict[str, list[Entry]] = {c: [] for c in CATEGORIES}
            for e in self.entries:
                groups[e.category].append(e)
            self._by_category = (len(self.entries), groups)
        return self._by_category[1][category]

    def count(self, category: str) -> int:
        if category == OK:
            return self.ok.total()
        logged = len(self._logged(category))
        return logged + sum(n for (c, _), n in self.other_counts.items() if c == category)

    def totals(self) -> dict[str, int]:
        return {c: self.count(c) for c in CATEGORIES}

    def summary(self) -> list[tuple[str, str, int]]:
        """(category, event name, events) for every pair found, in category order."""
        counts = Counter((e.category, e.event_name or "?") for e in self.entries)
        counts.update({(OK, name): n for name, n in self.ok.items()})
        counts.update(self.other_counts)
        order = {c: i for i, c in enumerate(CATEGORIES)}
        return sorted(
            ((c, n, k) for (c, n), k in counts.items()), key=lambda t: (order[t[0]], t[1])
        )

    def of(self, category: str) -> Iterator[Entry]:
        """Every event of `category` (but ok: those are only counted): the log's, then
        those stored and not in it."""
        yield from self._logged(category)
        if any(c == category for c, _ in self.other_counts):
            yield from self.others(category)

    def trouble_entries(self) -> Iterator[Entry]:
        """The events to look at: every category but ok, in the order of CATEGORIES."""
        for category in CATEGORIES[:-1]:
            yield from self.of(category)

    @property
    def trouble(self) -> bool:
        """Anything lost or not delivered (the exit code 1)."""
        return any(e.category in (LOST, NOT_DELIVERED) for e in self.entries)

    def to_api(self) -> dict[str, Any]:
        """All of it as one value (the events listed in full: for small results; `write_json`
        writes a large one as it goes)."""
        return {**self._head(), "events": [e.to_api() for e in self.trouble_entries()]}

    def _head(self) -> dict[str, Any]:
        return {
            "since": iso(self.since),
            "store": self.store,
            "totals": {k.replace(" d", "D"): v for k, v in self.totals().items()},
            "summary": [{"category": c, "eventName": n, "events": k} for c, n, k in self.summary()],
        }

    def write_json(self, out: IO[str], extra: dict[str, Any] | None = None) -> None:
        """`to_api()` (and `extra`'s keys after it) as JSON into `out`, an event at a time."""
        import json

        import orjson

        def dumps(value: Any) -> str:
            try:  # orjson: in C, indented, 20x the speed of json's indenting encoder
                return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
            except orjson.JSONEncodeError:  # a lone surrogate in an id, say
                return json.dumps(value, ensure_ascii=False, indent=2)

        out.write("{\n")
        for key, value in self._head().items():
            out.write(f"  {json.dumps(key)}: {_indented(dumps(value))},\n")
        out.write('  "events": [')
        first = True
        for e in self.trouble_entries():
            out.write(("\n    " if first else ",\n    ") + _indented(dumps(e.to_api()), 4))
            first = False
        out.write("\n  ]" if not first else "]")
        for key, value in (extra or {}).items():
            out.write(f",\n  {json.dumps(key)}: {_indented(dumps(value))}")
        out.write("\n}\n")


def _indented(text: str, by: int = 2) -> str:
    return text.replace("\n", "\n" + " " * by)


class Join:
    """The log joined with the store as its pages come (`add_page`): an event stored once
    is ok as soon as one of its attempts is in the window; it is then marked seen in the
    store and counted under its name (`ok`), and kept nowhere else. Every other attempt
    goes into `log` (an EventLog: per event its newest attempt, a few flags and counts),
    which decides the rest in reconcile() and gives the replay candidates."""

    def __init__(self, stored: Stored, log: EventLog) -> None:
        self.stored = stored
        self.log = log
        self.ok: Counter[str] = Counter()  # the events ok, by name

    def add(self, d: Delivery) -> None:
        self.add_rows([d.row()])

    def extend(self, deliveries: Iterable[Delivery]) -> Join:
        self.add_rows([d.row() for d in deliveries])
        return self

    def add_page(self, page: Page) -> None:
        self.add_rows(page.rows())

    def add_rows(self, rows: list[DeliveryRow]) -> None:
        """These attempts (a page's): their events asked of the store in one query."""
        log, ok = self.log, self.ok
        once = self.stored.unseen_once([f.event_id for f in rows if f.event_id])
        seen_now: list[str] = []
        for f in rows:
            event_id = f.event_id
            state = once.get(event_id) if event_id else None
            if event_id and state:  # stored once (not stored, or more than once: to the log)
                if state < 0:  # already counted ok
                    continue
                # (an attempt without a name leaves the event to the log, which finds it)
                if f.event_name is not None and log.matches(f):
                    once[event_id] = -1
                    seen_now.append(event_id)
                    ok[f.event_name] += 1
                    continue
            log.add_fields(f)
        if seen_now:
            self.stored.mark_seen(seen_now)


def reconcile(join: Join, since: datetime | None, drain: bool = False) -> Reconciliation:
    """The log's events joined with the store. `join.log` was read with the window as its
    filter (EventLog(DeliveryFilter(since=since))): it keeps per event its newest attempt,
    a few flags and counts, never the attempts, and not the events Join found ok. With
    `drain`, each event's record is let go as it is judged (the log is empty afterwards:
    nothing to replay or backfill). Only the events that are not ok are kept as entries;
    the ok ones are counted by name."""
    entries: list[Entry] = []
    ok = Counter(join.ok)
    records = join.log.records
    keys = list(records)
    for start in range(0, len(keys), 5000):  # the store asked a few thousand at a time
        _join(keys[start : start + 5000], join, entries, ok, drain)
    if drain:
        records.clear()
    oldest_first(entries, attrgetter("event_id"))
    stored = join.stored
    result = Reconciliation(entries, since, stored.source, stored, ok)
    for twice, name, n in stored.groups():  # every id stored and not seen in the log
        result.other_counts[(stored.twice if twice else UNKNOWN, name or "?")] += n
    return result


_ABSENT = (0, 0)  # Stored.known()'s (times stored, seen) of an id not stored


def _join(keys: list[str], join: Join, entries: list[Entry], ok: Counter[str], drain: bool) -> None:
    """reconcile() of these events of the log."""
    log, stored = join.log, join.stored
    records = log.records
    entry = log.entry
    # (an event without an id, `delivery:…`, has nothing to join on)
    found = stored.known([key for key in keys if not key.startswith("delivery:")])
    marked: list[str] = []
    for key in keys:
        seen = None if key.startswith("delivery:") else entry(key)
        if drain:
            del records[key]
        if seen is None:  # not in the window
            continue
        count, already = found.get(key, _ABSENT)
        if already:  # stored once, and counted ok by Join as the pages came
            continue
        if count:  # not one of the others
            marked.append(key)
        succeeded, name, created, attempts, origin, code = seen
        if count == 1:
            ok[name or "?"] += 1
            continue
        if count > 1:
            category = stored.twice
        else:
            category = LOST if succeeded else NOT_DELIVERED
        entries.append(Entry(key, name, category, created, attempts, code, origin, count))
    stored.mark_seen(marked)


@dataclass(slots=True)
class Reconciled:
    webhook: Webhook
    result: Reconciliation
    log: EventLog  # empty (let go as the entries were made) unless to replay or backfill


def reconcile_webhook(
    client: ApiClient,
    webhook_id: str,
    stored: Stored,
    since: datetime | None,
    replay: bool = False,
    backfill: bool = False,
    on_page: Callable[[Page], None] | None = None,
) -> Reconciled:
    """The webhook's log from `since` on, joined with what was stored as its pages come.
    Per event only what the join needs, the payloads only to replay or backfill; the
    events stored once are counted ok as the pages come, and kept nowhere."""
    from atwh.client.filters import DeliveryFilter
    from atwh.recover.webhook import fetch_log, log_since

    log = EventLog(DeliveryFilter(since=since), payloads=replay or backfill, acked=backfill)
    # every attempt of the events in the window: whether one ever succeeded decides
    reach = log_since(since, whole_events=True)
    webhook, join = fetch_log(client, webhook_id, Join(stored, log), on_page, reach)
    # without replay and backfill the log is let go as the entries are made
    result = reconcile(join, since, drain=not (replay or backfill))
    return Reconciled(webhook, result, log)


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
    (never verified); how many were inserted. `log` kept the payloads and each event's
    newest acknowledged attempt (EventLog(payloads=True, acked=True))."""
    done = 0
    for e in result.entries:
        if e.category != LOST:
            continue
        acked = log.acked_attempt(e.event_id)
        payload = log.payload(e.event_id)
        if payload is None or acked is None:
            continue
        acked_id, when, code = acked
        if inbox.backfill(
            event_id=e.event_id,
            event_name=e.event_name,
            body=payload.encode("utf-8", errors="surrogatepass"),
            received_at=(when or datetime.now(UTC)).timestamp(),
            answer_code=code or 200,
            note=f"from delivery {acked_id} in the API's log, by atwh reconcile",
        ):
            e.backfilled = True
            done += 1
    return done
