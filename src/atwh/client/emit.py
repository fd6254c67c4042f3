"""`atwh emulator emit`'s side of the conversation: which emulator, what to check before
asking it, and what to suggest when no webhook got the event (commands that work when
copied)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from atwh.client.webhooks import is_loopback
from atwh.errors import AtwhError, NetworkError, UsageError, printable

if TYPE_CHECKING:
    from atwh.client.api import ApiClient
    from atwh.client.webhooks import WebhookInfo

DEFAULT_EMULATOR_URL = "http://127.0.0.1:4000/"
RECEIVER_URL = "http://127.0.0.1:8000/webhook"  # where `atwh serve` listens by default


def emulator_url(given: str | None) -> str:
    """--emulator-url or ATWH_EMULATOR_URL, else ATWH_API_URL when it is on this machine
    (an emulator, then), else the default port. Never the real API: only an http(s) URL
    on a loopback host is taken."""
    api_url = os.environ.get("ATWH_API_URL", "")
    if given:
        url, option = given, "--emulator-url"
    elif api_url and _loopback(api_url):
        url, option = api_url, "ATWH_API_URL"
    else:
        url, option = DEFAULT_EMULATOR_URL, "--emulator-url"
    if not _loopback(url):
        raise UsageError(
            f"{option} {printable(url, 200)!r} is not on this machine: emit talks to an "
            "'atwh emulator' on a loopback host (127.0.0.1, localhost), never the real API"
        )
    return url


def _loopback(url: str) -> bool:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return parsed.scheme in ("http", "https") and is_loopback(parsed.host)


def not_running(url: str) -> NetworkError:
    return NetworkError(
        f"no emulator answers at {printable(url, 200)}",
        hint="start one in another shell with 'atwh emulator', or give --emulator-url",
    )


def nobody_subscribes(
    client: ApiClient,
    name: str,
    urn: str,
    api_url: list[str],
    registerable: Callable[[], list[str]],
    receiver_answers: Callable[[str], bool],
) -> str:
    """Says that no webhook got the event, and the command that would change that: enable
    the app's webhook that subscribes, add the event to one that covers the URN, or create
    one with the URL of a receiver that answers; none when no webhook can take the event.

    `api_url` is what the suggested command needs to reach this emulator (`--api-url URL`,
    or nothing when ATWH_API_URL points at it); `registerable` gives the event names one
    can subscribe to; `receiver_answers(url)` whether a receiver answers there."""
    import shlex
    from fnmatch import fnmatchcase

    from atwh.client.webhooks import Webhooks

    said = f"No enabled webhook subscribes to {printable(name, 100)} on {printable(urn, 200)}"
    try:
        names = registerable()
    except AtwhError:
        names = []
    if names and name not in names:
        return (
            f"{said}, and none can: it is not an event one can subscribe to "
            "('atwh webhooks events' lists them). The event was recorded, delivered nowhere."
        )
    app = re.match(r"^urn:allthings:app:([^:]+):", urn)
    wanted = f"urn:allthings:app:{app.group(1)}:*" if app else urn
    hooks: list[WebhookInfo] = []
    if app:
        try:
            hooks = list(Webhooks(client).matching(app_id=app.group(1)))
        except AtwhError:
            pass  # suggest a new webhook, then
    covering = [h for h in hooks if any(fnmatchcase(urn, u) for u in h.urns)]
    disabled = [h for h in covering if name in h.events and h.enabled is False]
    lacking = [h for h in covering if name not in h.events]
    if disabled:
        why = f"webhook {printable(disabled[0].id, 80)} subscribes to it but is disabled"
        command = ["atwh", "webhooks", "enable", disabled[0].id, *api_url]
    elif lacking:
        why = f"webhook {printable(lacking[0].id, 80)} covers the URN but not the event"
        command = ["atwh", "webhooks", "update", lacking[0].id, "--add-event", name, *api_url]
    else:
        urls = [h.url for h in hooks if h.url] + [*running_receiver(), RECEIVER_URL]
        url = next((u for u in dict.fromkeys(urls) if receiver_answers(u)), None)
        if url is None:
            return (
                f"{said}: the event was recorded and delivered nowhere. To subscribe one, "
                "start a receiver ('atwh serve'), then, with the URL it prints:\n  "
                f"atwh webhooks create --url URL --event {shlex.quote(name)} "
                f"--urn {shlex.quote(wanted)}" + "".join(f" {shlex.quote(p)}" for p in api_url)
            )
        why = "this would subscribe one"
        command = ["atwh", "webhooks", "create", "--url", url]
        command += ["--event", name, "--urn", wanted, *api_url]
    return f"{said}: the event was recorded and delivered nowhere; {why}:\n  " + " ".join(
        shlex.quote(printable(part, 300)) for part in command
    )


def running_receiver() -> list[str]:
    """The URL the `atwh serve` of the default inbox said it receives on (its lock file), if
    any: it may have stopped since, so it is checked before it is suggested."""
    from atwh.core.config import data_dir

    try:
        text = (data_dir() / "inbox.sqlite3.lock").read_text("ascii", "replace")
    except OSError:
        return []
    lines = text.split("\n")
    url = lines[1].strip() if len(lines) > 1 else ""
    return [url] if url and _loopback(url) else []


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether something answers HTTP at this URL within `timeout`: a receiver listens
    there, which registering a webhook with this URL needs."""
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            client.get(url)
    except (httpx.HTTPError, httpx.InvalidURL):
        return False
    return True
