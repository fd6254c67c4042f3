"""What `atwh serve` is told: the settings shared by the app, the store and the forwarder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from atwh import signature
from atwh.errors import UsageError

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


@dataclass(slots=True)
class Given:
    """What `atwh serve` was told about the receiver, as parsed from its options (durations
    in seconds, sizes in bytes), before it is checked and made into ReceiverSettings."""

    db: str | None = None
    path: str = "/webhook"
    secret: str | None = None
    webhook: str | None = None  # read the secret of this webhook from the API
    secret_on_command_line: bool = False  # --secret typed, not from the environment
    tolerance: float = signature.DEFAULT_TOLERANCE
    events: str | None = None  # more accepted names, comma-separated
    accept_any_event: bool = False
    max_body: int = MiB
    respond: int | None = None
    fail_every: int | None = None
    fail_rate: float | None = None
    seed: int | None = None
    delay: float | None = None
    fsync: bool = False
    forward_to: str | None = None
    forward_secret: str | None = None
    forward_unsigned: bool = False

    @property
    def extra_events(self) -> list[str]:
        return [n.strip() for n in (self.events or "").split(",") if n.strip()]


def settings_from(
    given: Given, read_secret: Callable[[str], str] | None = None
) -> ReceiverSettings:
    """The receiver's settings from what `atwh serve` was told, each checked: one UsageError
    naming the first option that cannot be. With --webhook, `read_secret(webhook_id)` gives
    the secret (from the API), once the options that need no API are known to be good."""
    from atwh.core.config import http_url
    from atwh.receiver.inbox import default_path

    g = given
    if not g.path.startswith("/"):
        raise UsageError(f"--path {g.path!r} must start with /")
    secret = g.secret
    if secret is not None and not secret.strip():
        raise UsageError("--secret is empty: give the webhook's secret, or leave --secret out")
    if g.webhook is not None and secret is not None and g.secret_on_command_line:
        raise UsageError("give --secret or --webhook, not both")
    if g.forward_unsigned and not g.forward_to:
        raise UsageError("--forward-unsigned needs --forward-to")
    if g.webhook is not None:
        if read_secret is None:
            raise UsageError("--webhook: this receiver cannot read a secret from the API")
        secret = read_secret(g.webhook)
    if g.forward_secret and not secret:
        raise UsageError(
            "--forward-secret needs a secret to verify with (--secret or --webhook)",
            hint="without one, forwards keep their own signature and timestamp",
        )
    return ReceiverSettings(
        db=Path(g.db) if g.db else default_path(),
        path=g.path,
        secret=secret or None,
        tolerance=g.tolerance,
        events=frozenset((*DEFAULT_EVENTS, *g.extra_events)),
        accept_any_event=g.accept_any_event,
        max_body=g.max_body,
        respond=g.respond,
        fail_every=g.fail_every,
        fail_rate=g.fail_rate or None,
        seed=g.seed,
        delay=g.delay or 0.0,
        synchronous="FULL" if g.fsync else "NORMAL",
        forward_to=http_url("--forward-to", g.forward_to) if g.forward_to else None,
        forward_secret=g.forward_secret,
        forward_unsigned=g.forward_unsigned,
    )


@dataclass(slots=True)
class Limits:
    """What the server holds every connection to (atwh.server.run's bounds)."""

    max_connections: int = 1000
    request_timeout: float = 30.0

    def check(self) -> Limits:
        if self.max_connections < 1:
            raise UsageError(f"--max-connections {self.max_connections}: give 1 or more")
        if self.request_timeout <= 0:
            raise UsageError(
                f"--request-timeout {self.request_timeout:g}s: give a duration above 0"
            )
        return self
