"""Realistic events, as Allthings delivers them: one source for the emulator's deliveries,
its `--history`, and the events `atwh trigger` and `atwh check` send.

The body is the vendor's documented shape, `{"event": {"id", "name", "urn", "createdDate",
"data"}}`, written as a JavaScript sender writes it (`JSON.stringify`: compact, non-ASCII
as is): the bytes a receiver must verify before any JSON parser touches them.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from atwh.core.dates import iso

APP_ID = "5d8a3c2e1f0b4a6c9e7d2b1a"
APP_URN = f"urn:allthings:app:{APP_ID}:*"
EVENT_URN = APP_URN.replace("*", "tickets")
USER_AGENT = "Allthings-Webhooks (atwh emulator)"  # what the emulator, trigger and check send
# The unsigned request Allthings sends a webhook's URL when the webhook is saved; only a 200
# lets the save go through. The vendor does not publish its body; the emulator sends this one,
# and so does `atwh webhooks ping`.
TEST_EVENT_BODY = json.dumps({"message": "Allthings webhook URL check"}).encode()

TITLES = [
    "Leaking tap in kitchen",
    "Heating not working",
    "Broken window, 3rd floor",
    "Elevator stuck",
    "Noise complaint",
    "Parking spot request",
    "Mold in bathroom",
]


def js_json(value: Any) -> bytes:
    """`JSON.stringify(value)` as UTF-8: compact separators, non-ASCII written as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def iso_ms(ts: float) -> str:
    """A time as JavaScript's `Date.prototype.toISOString()` writes it (core.dates.iso)."""
    text = iso(datetime.fromtimestamp(ts, UTC))
    assert text is not None
    return text


def new_event_id(rng: random.Random | None = None) -> str:
    if rng is None:
        return str(uuid.uuid4())
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def sample_data(name: str, rng: random.Random | None = None) -> dict[str, Any]:
    """The `event.data` of a realistic event called `name`: a ticket for ticket events
    (`ticket.updated` with the changes in `delta`, as the vendor's example receiver reads
    them), and an object with an id and a title for any other name."""
    rng = rng or random.Random()
    data: dict[str, Any] = {
        "id": f"{rng.getrandbits(48):012x}",
        "title": rng.choice(TITLES),
        "status": rng.choice(["open", "closed", "waiting"]),
    }
    if name == "ticket.updated":
        data["delta"] = {"status": {"from": "open", "to": rng.choice(["closed", "waiting"])}}
    return data


def event(
    name: str,
    data: Any,
    event_id: str | None = None,
    created: float | None = None,
    urn: str = EVENT_URN,
) -> dict[str, Any]:
    """The delivered document of one event, in the vendor's shape."""
    import time

    return {
        "event": {
            "id": event_id or new_event_id(),
            "name": name,
            "urn": urn,
            "createdDate": iso_ms(time.time() if created is None else created),
            "data": data if data is not None else {},
        }
    }


def event_body(
    name: str,
    data: Any,
    event_id: str | None = None,
    created: float | None = None,
    urn: str = EVENT_URN,
) -> bytes:
    """The bytes Allthings POSTs for one event (see `event`)."""
    return js_json(event(name, data, event_id, created, urn))


# How long one delivery attempt may take, its answer included: the emulator's default, and what
# `atwh check` holds an endpoint to. The vendor does not publish its own.
ATTEMPT_TIMEOUT = 10.0
