"""What `atwh serve` is told: the settings shared by the app, the store and the forwarder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from atwh import signature

DEFAULT_EVENTS = ("ticket.created", "ticket.updated")
MiB = 1024 * 1024


@dataclass(slots=True)
class ReceiverSettings:
    db: Path
    path: str = "/webhook"
    secret: str | None = None
    tolerance: float = signature.DEFAULT_TOLERANCE
    future_skew: float = signature.DEFAULT_FUTURE_SKEW
    events: frozenset[str] = frozenset(DEFAULT_EVENTS)
    accept_any_event: bool = False
    max_body: int = MiB
    respond: int | None = None
    fail_every: int | None = None
    fail_rate: float | None = None
    seed: int | None = None
    delay: float = 0.0
    synchronous: str = "NORMAL"
    busy_timeout_ms: int = 100  # a locked inbox answers 503 after this, never blocks long
    forward_to: str | None = None
    forward_secret: str | None = None
    forward_unsigned: bool = False  # with a secret: forward unsigned (test) requests too
    forward_timeout: float = 10.0
    forward_max_delay: float = 30.0
    store_max_wait: float = 10.0  # a request waits this long for its commit at most, then 503
    stop_grace: float = 8.0  # after SIGINT/SIGTERM, bodies still arriving then get 503
    # (within the server's 10 s grace, atwh.server.GRACE)
