"""Realistic delivery history for the emulator's `--history N`: deterministic with a seed."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from atwh import samples

if TYPE_CHECKING:
    from atwh.emulator.state import State

DEMO_WEBHOOK_ID = "wh-history"
APP_URN = samples.APP_URN
_NAMES = [
    ("ticket.created", 5),
    ("ticket.updated", 8),
    ("ticket-comment.created", 3),
    ("booking.created", 1),
    ("community-article.published", 1),
]
# how an event's deliveries went: (weight, codes of its attempts; None = no answer)
_STORIES: list[tuple[int, list[int | None]]] = [
    (70, [200]),
    (4, [204]),
    (6, [500, 200]),
    (3, [503, 503, 200]),
    (3, [502, 200]),
    (3, [None, 200]),  # a timeout, then fine
    (2, [None, None, None, 200]),
    (2, [429, 200]),
    (2, [301, 301, 301, 301, 301, 301]),  # redirects count as failures
    (3, [404, 404, 404, 404, 404, 404, 404]),
    (2, [400, 400, 400, 400, 400]),
]


def populate(state: State, count: int, seed: int | None = None, now: float | None = None) -> str:
    """Add a webhook with `count` deliveries spread over the last 30 days; its id."""
    from atwh.emulator.state import DeliveryRec, EventRec, WebhookRec, retry_delay

    rng = random.Random(seed)
    now = time.time() if now is None else now
    ids = _ids(rng)
    hook = WebhookRec(
        id=DEMO_WEBHOOK_ID,
        created=now - 31 * 86400,
        events=[n for n, _ in _NAMES],
        urns=[APP_URN],
        url="https://hooks.example.com/allthings",
        enabled=True,
        secret=rng.getrandbits(256).to_bytes(32, "big").hex(),
        description="Ticket sync (emulated history)",
    )
    state.put(hook)
    names = [n for n, w in _NAMES for _ in range(w)]
    stories = [codes for w, codes in _STORIES for _ in range(w)]
    made = 0
    while made < count:
        name = rng.choice(names)
        start = now - rng.uniform(0, 29.5 * 86400)
        event = EventRec(next(ids), start, name, samples.EVENT_URN, "")
        data = samples.sample_data(name, rng)
        event.payload = samples.event_body(name, data, event.id, start).decode()
        state.put(event)
        codes = rng.choice(stories)[: count - made]
        at, elapsed, previous = start, 0.0, None
        for attempt, code in enumerate(codes, 1):
            if at > now:
                break
            rec = DeliveryRec(
                next(ids),
                at,
                event.id,
                hook.id,
                attempt=attempt,
                first_attempt=start,
                emulated_elapsed=elapsed,
            )
            rec.status = "SUCCESS" if code is not None and 200 <= code < 300 else "FAILED"
            if code is not None:
                rec.delivered = at + rng.uniform(0.05, 1.5)
                rec.result = _result(rng, code)
            state.put(rec)
            if previous is not None:
                previous.retry_id = rec.id
                state.put(previous)
            previous = rec
            made += 1
            delay = retry_delay(attempt)
            elapsed += delay
            at += delay
    return hook.id


def _ids(rng: random.Random) -> Any:
    while True:
        yield samples.new_event_id(rng)


_REASONS = {
    200: "OK",
    204: "No Content",
    301: "Moved Permanently",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_BODIES = {
    200: '{"message":"success"}',
    204: "",
    301: "<html>Moved</html>",
    400: '{"message":"Unexpected event type"}',
    404: "Cannot POST /webhooks/allthings",
    429: '{"error":"rate limited"}',
    500: '{"error":"TypeError: Cannot read properties of undefined (reading \'delta\')"}',
    502: "<html><body>502 Bad Gateway</body></html>",
    503: "upstream connect error or disconnect/reset before headers",
}


def _result(rng: random.Random, code: int) -> dict[str, Any]:
    headers = [
        {"name": "content-type", "value": "application/json; charset=utf-8"},
        {"name": "x-request-id", "value": f"{rng.getrandbits(64):016x}"},
    ]
    if code == 301:
        headers.append({"name": "location", "value": "https://hooks.example.com/v2/allthings"})
    return {
        "statusCode": code,
        "body": _BODIES.get(code, ""),
        "message": _REASONS.get(code),
        "headers": headers,
    }
