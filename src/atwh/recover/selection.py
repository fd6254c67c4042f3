"""Which events to re-send: from a webhook's delivery log, or from `atwh serve`'s inbox.

Each event is sent once per run, however many attempts it had, oldest event first.
"""

from __future__ import annotations

import os
import struct
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar

from atwh.client.filters import DeliveryFilter
from atwh.client.model import Delivery, DeliveryRow, cause_of, is_failure
from atwh.client.prefix import resolve_prefix
from atwh.errors import OutputError, UsageError, printable
from atwh.receiver.inbox import InboxRecord

if TYPE_CHECKING:
    from atwh.client.api import Page

_NEVER = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
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
    # where the body is read when needed (body is None): the inbox (`place` the request's
    # id) or the log's spool (`place` where the payload is in it)
    bodies: Bodies | None = None
    place: int = 0

    def payload(self) -> bytes:
        """The body to send: as kept, or read now (from the inbox, or from the log's spool:
        one at a time, so that a selection of half a million events holds no payload)."""
        if self.body is not None:
            return self.body
        assert self.bodies is not None, "a candidate without a body is skipped"
        return self.bodies.body_of(self.place)


class Bodies(Protocol):
    """Where bodies are read from, by a number: Inbox (a request's id), Spool."""

    def body_of(self, place: int) -> bytes: ...


# What EventLog knows of an event, unpacked: one tuple, replaced as its attempts come,
# indexed so:
_T, _ORIGIN, _FLAGS, _ATTEMPTS, _CODE, _CAUSE, _NAME, _CREATED, _OK_T, _PAYLOAD = range(10)
# _T: the newest attempt's creation (POSIX seconds; -inf without a date), _ORIGIN its id
# (the newest by (date, id)), _CODE and _CAUSE its answer and why it failed (None when it
# did not), _OK_T the newest acknowledged attempt's date (None: none was), _CREATED the
# event's date (else its earliest attempt's), _PAYLOAD the payload to send (only kept when
# asked for: a dry run needs only to know whether there is one).
# _FLAGS:
_WINDOW = 1  # an attempt matched the filter
_FAILED = 2  # an attempt failed
_OK = 4  # an attempt was acknowledged (answered 2xx)
_LAST_FAILED = 8  # the newest attempt failed
_HAS_PAYLOAD = 16  # the log has a payload for the event
_BAD_PAYLOAD = 32  # ... which is not valid Unicode
_OWN_CREATED = 64  # _CREATED is the event's own date

# Kept, the tuple is packed into one bytes object (a tuple, its ids and floats cost about
# 230 bytes an event, the bytes about 90): _T, _CREATED and _OK_T as doubles, _ATTEMPTS,
# _FLAGS and _CODE (0: None), the name and the cause as indexes into a table of the texts
# shared between events (0: None; _INLINE: the text follows the origin), then the lengths
# of the origin and the inline name, where the payload is in the spool (its offset + 1,
# 0: not kept; and its length), and the three texts as UTF-8 (surrogates kept).
_PACKED = struct.Struct("<dddIHHIIIIQI")
_INLINE = 0xFFFFFFFF

_NO_DATE = float("-inf")
_NAN = float("nan")
_HEAD_FLAGS = 4  # _FLAGS in _PACKED.unpack_from's tuple
_CODES = tuple(range(600))  # delivery_fields gives a status code from 100 to 599
MAX_NAMES = 1000  # distinct event names and causes shared between events; others kept inline


def _timestamp(when: datetime | None) -> float:
    return _NO_DATE if when is None else when.timestamp()


def _date(t: float | None) -> datetime | None:
    if t is None or t == _NO_DATE:
        return None
    try:
        return datetime.fromtimestamp(t, UTC)
    except (OverflowError, OSError, ValueError):  # 9999-12-31T23:59:59.999999 rounds past
        return _LAST if t > 0 else _NEVER  # year 9999 as a float: the edges of what dates can be


class EventLog:
    """A webhook's delivery attempts grouped by event, in compact form: feed it every
    delivery fetched (`add_page`, `add_fields`, or `add` for a Delivery).

    Memory grows with events, not attempts, and little: per event one bytes object packing
    what the choice needs (the newest attempt's date, id, code and cause, a few flags, the
    count, the event's date; event names and causes shared), never the attempts; with `lean`, an
    event whose one attempt was acknowledged is a single float (its date, negative when
    outside the filter) until a second attempt comes. The payload itself is kept only with
    `payloads` (what is sent); a dry run needs only to know whether there is one.

    `flt` is the window: an event is in it when one of its attempts matches. `lean` suits
    the default mode ("failing"), which never takes an event whose attempts all succeeded
    (an event chosen by id, or by "failed" or "all", needs more). `by_delivery` keeps
    every attempt's id, for choosing events by delivery id; `acked` each event's newest
    acknowledged attempt, for backfilling.
    """

    def __init__(
        self,
        flt: DeliveryFilter | None = None,
        *,
        payloads: bool = False,
        lean: bool = False,
        by_delivery: bool = False,
        acked: bool = False,
    ) -> None:
        self.flt = flt if flt is not None and flt.narrows() else None
        self.payloads = payloads
        self.lean = lean
        # per event: its packed record (_PACKED), or a lean event's float
        self.records: dict[str, bytes | float] = {}
        self._spool = Spool()  # with `payloads`: the payloads to send, on disk
        self.deliveries: dict[str, str] | None = {} if by_delivery else None
        # with `acked`: each event's newest acknowledged attempt: (date, id, when, code)
        self.acked: dict[str, tuple[float, str, datetime | None, int | None]] | None = (
            {} if acked else None
        )
        # the shared texts by index (0: None), and each one's index
        self._texts: list[str | None] = [None]
        self._index: dict[str, int] = {}
        self.drained = 0  # events let go by select(drain=True)

    def __len__(self) -> int:
        """The events read (those of a drained log included)."""
        return len(self.records) + self.drained

    def add(self, d: Delivery) -> None:
        self.add_fields(d.row())

    def extend(self, deliveries: Iterable[Delivery]) -> EventLog:
        for d in deliveries:
            self.add(d)
        return self

    def add_page(self, page: Page) -> None:
        for f in page.rows():
            self.add_fields(f)

    def matches(self, f: DeliveryRow) -> bool:
        """Whether this attempt is in the window (`flt`)."""
        flt = self.flt
        code = f.status_code
        return flt is None or flt.matches_values(
            is_failure(f.status, code, f.answered), f.created, f.event_name, code
        )

    def add_fields(self, f: DeliveryRow) -> None:
        """One attempt, as a DeliveryRow."""
        delivery_id, created, delivered, status = f.id, f.created, f.delivered, f.status
        answered, code, message = f.answered, f.status_code, f.message
        event_id, name, payload, event_created = (
            f.event_id,
            f.event_name,
            f.payload,
            f.event_created,
        )
        key = event_id or f"delivery:{delivery_id}"
        if self.deliveries is not None:
            self.deliveries[delivery_id] = key
        failed = is_failure(status, code, answered)
        ok = not failed and (code is not None or (status or "").upper() == "SUCCESS")
        flt = self.flt
        matched = flt is None or flt.matches_values(failed, created, name, code)
        t = _NO_DATE if created is None else created.timestamp()
        if ok and self.acked is not None:
            newest_ok = self.acked.get(key)
            if newest_ok is None or (t, delivery_id) > newest_ok[:2]:
                self.acked[key] = (t, delivery_id, delivered or created, code)
        kept = self.records.get(key)
        if kept is None:  # the event's first attempt
            if (
                self.lean and ok and t > 0 and self.acked is None and payload is not None
                and name is not None and event_created is not None and _valid(payload)
            ):  # fmt: skip
                self.records[key] = t if matched else -t
                return
            flags = (_WINDOW if matched else 0) | (_FAILED if failed else 0) | (_OK if ok else 0)
            if event_created is not None:
                created_t = event_created.timestamp()
                flags |= _OWN_CREATED
            else:
                created_t = t
            if payload is not None:
                flags |= _HAS_PAYLOAD if _valid(payload) else _HAS_PAYLOAD | _BAD_PAYLOAD
            cause = None
            if failed:
                flags |= _LAST_FAILED
                cause = cause_of(code, status, message)
            self.records[key] = self._pack(
                t, delivery_id, flags, 1, code, cause, name, created_t,
                t if ok else None, payload if self.payloads else None,
            )  # fmt: skip
            return
        if kept.__class__ is float:  # a lean event's second attempt
            held = self._unlean(kept)  # type: ignore[arg-type]
        else:
            held = self._unpack(kept)  # type: ignore[arg-type]
        merged = self._merged(
            held,
            t, delivery_id, failed, ok, matched, code, status, message, name, payload,
            event_created,
        )  # fmt: skip
        self.records[key] = self._pack(*merged)

    def _text_index(self, text: str | None) -> int:
        """The index of a shared text (0 for None), or _INLINE when the table is full."""
        if text is None:
            return 0
        index = self._index.get(text)
        if index is None:
            if len(self._texts) > MAX_NAMES:
                return _INLINE
            index = self._index[text] = len(self._texts)
            self._texts.append(text)
        return index

    def _pack(
        self,
        t: float,
        origin: str,
        flags: int,
        attempts: int,
        code: int | None,
        cause: str | None,
        name: str | None,
        created: float,
        ok_t: float | None,
        payload: str | int | None,
    ) -> bytes:
        """An event's record (the fields of the tuple, in its order), as kept: one bytes
        object (see _PACKED), its payload in the spool (written once)."""
        spooled = length = 0
        if payload is not None:  # a new one to keep, or the place of the one kept
            place = payload if isinstance(payload, int) else self._spool.put(payload)
            spooled, length = (place >> 32) + 1, place & 0xFFFFFFFF
        name_ix, cause_ix = self._text_index(name), self._text_index(cause)
        origin_bytes = origin.encode("utf-8", "surrogatepass")
        inline_name = b""
        if name_ix == _INLINE:
            inline_name = name.encode("utf-8", "surrogatepass")  # type: ignore[union-attr]
        head = _PACKED.pack(
            t, created, _NAN if ok_t is None else ok_t, attempts, flags, code or 0,
            name_ix, cause_ix, len(origin_bytes), len(inline_name), spooled, length,
        )  # fmt: skip
        if cause_ix != _INLINE:
            return head + origin_bytes + inline_name
        inline_cause = cause.encode("utf-8", "surrogatepass")  # type: ignore[union-attr]
        return b"".join((head, origin_bytes, inline_name, inline_cause))

    def _unpack(self, packed: bytes) -> tuple[Any, ...]:
        """A packed record as the tuple it was made from (its payload: where it is)."""
        (
            t, created, ok_t, attempts, flags, code, name_ix, cause_ix, origin_size, name_size,
            spooled, length,
        ) = _PACKED.unpack_from(packed)  # fmt: skip
        at = _PACKED.size
        origin = packed[at : at + origin_size].decode("utf-8", "surrogatepass")
        at += origin_size
        if name_ix == _INLINE:
            name = packed[at : at + name_size].decode("utf-8", "surrogatepass")
        else:
            name = self._texts[name_ix]
        if cause_ix == _INLINE:
            cause = packed[at + name_size :].decode("utf-8", "surrogatepass")
        else:
            cause = self._texts[cause_ix]
        return (
            t, origin, flags, attempts, _CODES[code] if code else None, cause, name, created,
            None if ok_t != ok_t else ok_t, (spooled - 1) << 32 | length if spooled else None,
        )  # fmt: skip

    def _unlean(self, t: float) -> tuple[Any, ...]:
        """The record of a lean event (one acknowledged attempt at |t|, with a valid payload,
        a name and a date; which the attempt that follows gives again, being fields of the
        event). The event's own date is not kept: the attempt that follows sets it."""
        window = _WINDOW if t > 0 else 0
        t = abs(t)
        flags = window | _OK | _HAS_PAYLOAD
        return (t, "", flags, 1, None, None, None, t, t, None)

    def _merged(
        self,
        held: tuple[Any, ...],
        t: float,
        delivery_id: str,
        failed: bool,
        ok: bool,
        matched: bool,
        code: int | None,
        status: str | None,
        message: str | None,
        name: str | None,
        payload: str | None,
        event_created: datetime | None,
    ) -> tuple[Any, ...]:
        """An event's record with one more attempt (the first is packed by add_fields)."""
        flags = (_WINDOW if matched else 0) | (_FAILED if failed else 0) | (_OK if ok else 0)
        held_flags = held[_FLAGS]
        newest = t > held[_T] or (t == held[_T] and delivery_id > held[_ORIGIN])
        flags |= held_flags & ~(_LAST_FAILED | _HAS_PAYLOAD | _BAD_PAYLOAD)
        attempts = held[_ATTEMPTS] + 1
        ok_t = held[_OK_T]
        if ok and (ok_t is None or t > ok_t):
            ok_t = t
        created = held[_CREATED]
        if not held_flags & _OWN_CREATED:
            if event_created is not None:
                created = event_created.timestamp()
                flags |= _OWN_CREATED
            elif t < created:
                created = t
        else:
            flags |= _OWN_CREATED
        kept = held[_PAYLOAD]
        if held[_NAME] is not None:
            name = held[_NAME]
        if payload is not None and held_flags & _HAS_PAYLOAD and not t > held[_T]:
            payload = None  # the payload kept came from a newer attempt
        if payload is None:
            flags |= held_flags & (_HAS_PAYLOAD | _BAD_PAYLOAD)
        else:
            flags |= _HAS_PAYLOAD | (0 if _valid(payload) else _BAD_PAYLOAD)
            kept = payload if self.payloads else None
        if not newest:
            flags |= held_flags & _LAST_FAILED
            return (
                held[_T], held[_ORIGIN], flags, attempts, held[_CODE], held[_CAUSE], name,
                created, ok_t, kept,
            )  # fmt: skip
        cause = None
        if failed:
            flags |= _LAST_FAILED
            cause = cause_of(code, status, message)
        return (t, delivery_id, flags, attempts, code, cause, name, created, ok_t, kept)

    def _record(self, key: str) -> tuple[Any, ...]:
        held = self.records[key]
        if held.__class__ is float:
            return self._unlean(held)  # type: ignore[arg-type]
        return self._unpack(held)  # type: ignore[arg-type]

    def entry(
        self, key: str
    ) -> tuple[bool, str | None, datetime | None, int, str, int | None] | None:
        """What reconcile reads of an event in one call: None when it is not in the window,
        else whether any attempt was acknowledged, its name and date, its attempts, and the
        newest attempt's id and code."""
        record = self._record(key)
        flags = record[_FLAGS]
        if not flags & _WINDOW:
            return None
        return (
            bool(flags & _OK), record[_NAME], _date(record[_CREATED]), record[_ATTEMPTS],
            record[_ORIGIN], record[_CODE],
        )  # fmt: skip

    def succeeded(self, key: str) -> bool:
        """Whether any attempt was answered 2xx (what the endpoint acknowledged)."""
        return bool(self._record(key)[_FLAGS] & _OK)

    def still_failing(self, key: str) -> bool:
        """The latest attempt failed, and no attempt succeeded after it (or with it)."""
        return _still_failing(self.records[key])  # (a header is enough)

    def in_window(self, key: str) -> bool:
        held = self.records[key]
        if held.__class__ is float:
            return held > 0  # type: ignore[operator]
        return bool(_PACKED.unpack_from(held)[_HEAD_FLAGS] & _WINDOW)  # type: ignore[arg-type]

    def attempts(self, key: str) -> int:
        return int(self._record(key)[_ATTEMPTS])

    def created(self, key: str) -> datetime | None:
        return _date(self._record(key)[_CREATED])

    def name(self, key: str) -> str | None:
        return self._record(key)[_NAME]  # type: ignore[no-any-return]

    def last(self, key: str) -> tuple[str, int | None]:
        """The newest attempt's id and code."""
        record = self._record(key)
        return record[_ORIGIN], record[_CODE]

    def acked_attempt(self, key: str) -> tuple[str, datetime | None, int | None] | None:
        """The newest acknowledged attempt's id, delivery date (else creation) and code
        (with `acked`)."""
        held = (self.acked or {}).get(key)
        return None if held is None else held[1:]

    def payload(self, key: str) -> str | None:
        """The payload kept (with `payloads`)."""
        kept = self._record(key)[_PAYLOAD]
        return None if kept is None else self._spool.text(kept)

    def candidate(self, key: str) -> Candidate:
        return self._candidate(key, self.records[key])

    def _candidate(self, key: str, held: bytes | float) -> Candidate:
        if held.__class__ is float:
            record = self._unlean(held)  # type: ignore[arg-type]
        else:
            record = self._unpack(held)  # type: ignore[arg-type]
        flags = record[_FLAGS]
        spooled: int | None = None
        skip: str | None = None
        if not flags & _HAS_PAYLOAD:
            skip = "the log has no payload for this event"
        elif flags & _BAD_PAYLOAD:
            skip = "the payload in the log is not valid Unicode"
        elif record[_PAYLOAD] is not None:  # read from the spool when sent
            spooled = record[_PAYLOAD]
        elif self.payloads:  # a lean event's payload, newer than its attempts that followed
            skip = "the log has no payload for this event"
        return Candidate(
            key=key,
            event_id=None if key.startswith("delivery:") else key,
            event_name=record[_NAME],
            created=_date(record[_CREATED]),
            origin=record[_ORIGIN],
            body=None,
            attempts=record[_ATTEMPTS],
            last_code=record[_CODE],
            last_cause=record[_CAUSE],
            skip=skip,
            bodies=None if spooled is None else self._spool,
            place=spooled or 0,
        )

    def select(
        self,
        mode: str = "failing",
        delivery_ids: Iterable[str] = (),
        event_ids: Iterable[str] = (),
        drain: bool = False,
    ) -> list[Candidate]:
        """The events to re-send, oldest first.

        Given ids (unique prefixes accepted) select exactly those events, whatever their
        state (delivery ids need `by_delivery`). Otherwise an event is in the window when
        one of its attempts matches the filter, and then `mode` decides: "failing" (still
        failing), "failed" (any failed attempt), "all". With `drain`, each event's record
        is let go as it is read (the candidates take its place in memory): the log is
        empty afterwards, but for its length.
        """
        if mode not in MODES:
            raise ValueError(mode)
        delivery_ids, event_ids = list(delivery_ids), list(event_ids)
        keys: list[str] = []
        chosen: list[Candidate] = []
        if delivery_ids or event_ids:
            by_delivery = self.deliveries or {}
            for given in delivery_ids:
                found = resolve_prefix(given, by_delivery, "delivery", "--delivery")
                keys.append(by_delivery[found])
            real_events = [k for k in self.records if not k.startswith("delivery:")]
            for given in event_ids:
                keys.append(resolve_prefix(given, real_events, "event", "--event-id"))
            keys = list(dict.fromkeys(keys))
        else:
            head = _PACKED.unpack_from
            for key, held in self.records.items():
                if held.__class__ is float:
                    if mode == "all":
                        raise ValueError("a lean log does not keep what 'all' lists")
                    continue  # one acknowledged attempt: neither failing nor failed
                t, _, ok_t, _, flags, *_ = head(held)  # type: ignore[arg-type]
                if not flags & _WINDOW:
                    continue
                if mode == "failing" and not _failing(flags, t, ok_t):
                    continue
                if mode == "failed" and not flags & _FAILED:
                    continue
                keys.append(key)
        if drain:
            # the chosen records kept, the rest let go (the table, the lean events), then
            # each record let go as its candidate is made: never the log and the candidates
            records = self.records
            kept: list[bytes | float | None] = [records[k] for k in keys]
            self.drained = len(records)
            records.clear()
            for i, key in enumerate(keys):
                chosen.append(self._candidate(key, kept[i]))  # type: ignore[arg-type]
                kept[i] = None
        else:
            chosen += [self.candidate(k) for k in keys]
        oldest_first(chosen, attrgetter("key"))
        return chosen


class Dated(Protocol):
    @property
    def created(self) -> datetime | None: ...


D = TypeVar("D", bound=Dated)


def oldest_first(items: list[D], tie: Callable[[D], Any]) -> None:
    """Sort by date (None first), then by `tie`: two stable sorts, so that no tuple is made
    for each of half a million items."""
    items.sort(key=tie)
    items.sort(key=_created_of)


def _created_of(item: Dated) -> datetime:
    return item.created or _NEVER


def _failing(flags: int, t: float, ok_t: float) -> bool:
    """Still failing, from a packed record's head: the newest attempt failed, and none
    was acknowledged after it or with it (ok_t NaN: none was)."""
    return bool(flags & _LAST_FAILED) and not ok_t >= t


def _still_failing(held: bytes | float) -> bool:
    if held.__class__ is float:
        return False
    t, _, ok_t, _, flags, *_ = _PACKED.unpack_from(held)  # type: ignore[arg-type]
    return _failing(flags, t, ok_t)


_PREAD = getattr(os, "pread", None)


class Spool:
    """Payloads kept on disk, in an unnamed temporary file (gone when closed, or when the
    process ends), so that the memory of a replay does not grow with what it will send.
    Each is written once, as UTF-8 (surrogates kept), and read back where it is, from any
    thread. A place is one int, offset << 32 | length: any offset, a length under 4 GiB
    (EventLog packs the two apart)."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._size = 0
        self._unflushed = False
        self._lock = threading.Lock()

    def put(self, text: str) -> int:
        data = text.encode("utf-8", "surrogatepass")
        if len(data) > 0xFFFFFFFF:  # (an API answer is capped far below: never, in practice)
            raise OutputError(f"a payload of {len(data):,} bytes is too large to keep")
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="atwh-payloads-")
            self._file.write(data)
        except OSError as e:
            raise OutputError(
                f"cannot keep the payloads to send in a temporary file in "
                f"{tempfile.gettempdir()}: {e.strerror or e}",
                hint="set TMPDIR to a directory with room",
            ) from None
        place = self._size << 32 | len(data)
        self._size += len(data)
        self._unflushed = True
        return place

    def body_of(self, place: int) -> bytes:
        assert self._file is not None
        if self._unflushed:
            with self._lock:
                self._file.flush()
                self._unflushed = False
        offset, length = place >> 32, place & 0xFFFFFFFF
        if _PREAD is not None:  # at its place, whatever another thread reads meanwhile
            return _PREAD(self._file.fileno(), length, offset)
        with self._lock:  # (Windows has no pread)
            self._file.seek(offset)
            return self._file.read(length)

    def text(self, place: int) -> str:
        return self.body_of(place).decode("utf-8", "surrogatepass")


def _valid(payload: str) -> bool:
    """Whether the payload can be sent as UTF-8 (a lone surrogate, from a JSON escape,
    cannot)."""
    if payload.isascii():
        return True
    try:
        payload.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    bodies: Bodies | None = None,
) -> list[Candidate]:
    """Requests stored by `atwh serve`, one per event id, oldest first.

    With `bodies` (the Inbox), `records` may come without bodies (Inbox.records with
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
                body=None if bodies is not None else r.body,
                attempts=1 + r.duplicates,
                last_code=r.answer_code,
                content_type=headers.get("content-type", "application/json"),
                unverified=r.verdict == "unverified",
                bodies=bodies,
                place=r.id,
            )
        )
    out.sort(key=lambda c: (c.created or _NEVER, int(c.origin)))
    return out
