"""`atwh serve` for people: the banner it prints once it listens (the live lines are the
receiver's own, receiver.live)."""

from __future__ import annotations

from atwh.receiver.settings import ReceiverSettings


def ordinal(n: int) -> str:
    """3rd, 11th, 22nd: as the banner says `every 3rd event`."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def banner(s: ReceiverSettings, url: str, limits: str | None = None) -> str:
    """What `atwh serve` says once it listens: where to POST, what it verifies and accepts,
    where it keeps requests, what it forwards and simulates, its limits."""
    lines = [f"atwh serve: POST webhooks to {url}"]
    if s.secret:
        lines.append(f"  verifying: HMAC-SHA256 signatures, timestamps within {s.tolerance:g}s")
    else:
        lines.append(
            "  NOT verifying: no secret given (--secret, ALLTHINGS_WEBHOOK_SECRET, "
            "SHARED_WEBHOOK_SECRET or --webhook); signed requests are accepted "
            "as unverified"
        )
    accepted = "every event name" if s.accept_any_event else ", ".join(sorted(s.events))
    lines.append(f"  accepting: {accepted}")
    lines.append(
        f"  inbox:     {s.db}" + (" (fsync on every commit)" if s.synchronous == "FULL" else "")
    )
    if s.forward_to:
        what = "every accepted request" if s.forward_unsigned or not s.secret else "signed events"
        lines.append(f"  forwarding {what} to {s.forward_to}")
    simulated = []
    if s.respond:
        simulated.append(f"answering {s.respond}")
    if s.fail_every:
        every = "every event" if s.fail_every == 1 else f"every {ordinal(s.fail_every)} event"
        simulated.append(f"500 for {every}")
    if s.fail_rate:
        simulated.append(f"500 with probability {s.fail_rate:g}")
    if s.delay:
        simulated.append(f"{s.delay:g}s delay")
    if simulated:
        lines.append("  simulating: " + ", ".join(simulated))
    if limits:
        lines.append(f"  limits:    {limits}")
    lines.append("  health:    GET /health; stop with Ctrl-C")
    return "\n".join(lines)
