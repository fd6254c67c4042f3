"""The webhooks themselves: list, read, register, update and remove them; the catalogue of
event names; the checks made before anything is sent; and the unsigned test event
Allthings sends when a webhook is saved (`ping`).

Everything here returns data; `atwh.cli.webhooks` parses options and `atwh.output` shows it.
"""

from __future__ import annotations

import difflib
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from atwh.core.dates import parse_datetime
from atwh.errors import (
    ApiError,
    AtwhError,
    AuthError,
    NotFoundError,
    UsageError,
    printable,
)
from atwh.samples import TEST_EVENT_BODY

if TYPE_CHECKING:
    from atwh.client.api import ApiClient

log = logging.getLogger("atwh.client.webhooks")

PAGE_SIZE = 100
MAX_WEBHOOKS = 100_000  # a server that pages forever stops here
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
EVENT_NAME = re.compile(r"^[a-z][a-z.-]*[a-z]$")  # the schema's EventName scalar
URN = re.compile(r"^urn:allthings:[a-z][a-z-]*(:[A-Za-z0-9*._-]+)+$")
# success:false codes that mean "your input": exit 2 (README, Exit codes).
_INPUT_CODE = re.compile(r"INPUT|INVALID|VALIDAT|BAD_REQUEST|UNPROCESSABLE")
_NOT_FOUND_CODES = frozenset({"NOT_FOUND", "WEBHOOK_NOT_FOUND"})

PING_MAX_BODY = 64 * 1024


def mask(secret: str | None) -> str | None:
    """A secret as it may be shown: its first 4 characters, then `…` (only `…` when short)."""
    if secret is None:
        return None
    return (secret[:4] if len(secret) > 8 else "") + "…"


# -- what the API returns -------------------------------------------------------------------


@dataclass(slots=True)
class WebhookInfo:
    """One webhook, every field the API gave; `raw` keeps them with the API's names."""

    id: str
    created: datetime | None = None
    description: str | None = None
    url: str | None = None
    enabled: bool | None = None
    events: list[str] = field(default_factory=list)
    urns: list[str] = field(default_factory=list)
    secret: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def as_json(self, show_secret: bool = False) -> dict[str, Any]:
        """The API's fields; the secret masked unless `show_secret`."""
        out = dict(self.raw)
        if "secret" in out and not show_secret:
            out["secret"] = mask(out["secret"]) if isinstance(out["secret"], str) else None
        return out


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def parse_webhook_info(data: Any) -> WebhookInfo | None:
    """A `Webhook` object from the API, or None when it is not one (no id)."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str | int):
        return None
    enabled = data.get("enabled")
    description, url, secret = (data.get(k) for k in ("description", "url", "secret"))
    return WebhookInfo(
        id=str(data["id"]),
        created=parse_datetime(data.get("createdDate")),
        description=description if isinstance(description, str) else None,
        url=url if isinstance(url, str) else None,
        enabled=enabled if isinstance(enabled, bool) else None,
        events=_strings(data.get("events")),
        urns=_strings(data.get("urns")),
        secret=secret if isinstance(secret, str) else None,
        raw=dict(data),
    )


@dataclass(slots=True, frozen=True)
class EventType:
    namespace: str
    name: str
    description: str

    def as_json(self) -> dict[str, str]:
        return {
            "namespace": self.namespace,
            "eventName": self.name,
            "description": self.description,
        }


@dataclass(slots=True)
class MutationOutcome:
    """A `WebhookMutationResult` that said `success: true`."""

    code: str
    message: str
    webhook: WebhookInfo | None
    raw: dict[str, Any]

    def as_json(self, show_secret: bool = False) -> dict[str, Any]:
        out = dict(self.raw)
        if self.webhook is not None:
            out["webhook"] = self.webhook.as_json(show_secret)
        return out


def refusal(code: str, message: str) -> AtwhError:
    """A `success: false` answer as one error line; the exit code follows the API's code:
    2 for input errors, 4 for an unknown webhook, 3 for permissions, else 5."""
    from atwh.client.api import AUTH_CODES, FORBIDDEN_CODES

    text = f"the API refused: {printable(code, 60)}: {printable(message, 300)}"
    upper = code.upper()
    kind: type[AtwhError] = ApiError
    if upper in _NOT_FOUND_CODES:
        kind = NotFoundError
    elif upper in AUTH_CODES or upper in FORBIDDEN_CODES:
        kind = AuthError
    elif _INPUT_CODE.search(upper):
        kind = UsageError
    return kind(text, api_code=code)  # the code: read by the commands for hints


def _outcome(data: dict[str, Any], field_name: str) -> MutationOutcome:
    raw = data.get(field_name)
    if not isinstance(raw, dict):
        raise ApiError(f"the API did not answer {field_name}")
    code = raw.get("code")
    code = code if isinstance(code, str) and code else "(no code)"
    message = raw.get("message")
    message = message if isinstance(message, str) else ""
    if raw.get("success") is not True:
        raise refusal(code, message or "(no message)")
    return MutationOutcome(code, message, parse_webhook_info(raw.get("webhook")), raw)


# -- the operations -------------------------------------------------------------------------


class Webhooks:
    """The webhook operations over one ApiClient."""

    def __init__(self, client: ApiClient, page_size: int = PAGE_SIZE) -> None:
        self.client = client
        self.page_size = page_size

    def matching(
        self, app_id: str | None = None, project_id: str | None = None
    ) -> Iterator[WebhookInfo]:
        """Every webhook matching the filter, page after page (`pageInfo`), or all at once
        from a server that rejects the paging arguments. A repeated or missing cursor, or an
        endless run of empty pages, ends in ApiError rather than a loop."""
        flt = {k: v for k, v in (("appId", app_id), ("projectId", project_id)) if v}
        if not flt:
            raise UsageError("give an app or a project id to list its webhooks")
        count = 0
        for data in self.client.paginate(
            "QueryWebhooks",
            "QueryWebhooksUnpaged",
            {"filter": flt},
            lambda data: data.get("webhooks"),
            "webhooks",
            first=self.page_size,
        ):
            hooks = list(self._nodes(data))
            count += len(hooks)
            yield from hooks
            if count > MAX_WEBHOOKS:
                raise ApiError("the API keeps saying more webhooks follow; stopped paging")

    def _nodes(self, data: dict[str, Any]) -> Iterator[WebhookInfo]:
        connection = data.get("webhooks")
        if not isinstance(connection, dict):
            raise ApiError("the API did not answer webhooks")
        nodes = connection.get("nodes")
        if not isinstance(nodes, list):
            edges = connection.get("edges")
            nodes = [e.get("node") for e in edges or [] if isinstance(e, dict)]
        skipped = 0
        for n in nodes:
            hook = parse_webhook_info(n)
            if hook is None:
                skipped += 1
            else:
                yield hook
        if skipped:
            self.client.warn(f"skipped {skipped} unreadable webhooks")

    def get(self, webhook_id: str) -> WebhookInfo:
        data = self.client.execute("QueryWebhook", {"id": webhook_id})
        hook = parse_webhook_info(data.get("webhook"))
        if hook is None:
            raise NotFoundError(
                f"webhook {printable(webhook_id, 80)} not found",
                hint="check the id ('atwh webhooks list'), and that the token's app can see it",
            )
        return hook

    def events(self) -> list[EventType]:
        data = self.client.execute("QueryRegisterableWebhookEvents", {})
        raw = data.get("registerableWebhookEvents")
        if not isinstance(raw, list):
            raise ApiError("the API did not answer registerableWebhookEvents")
        out = []
        for item in raw:
            if isinstance(item, dict) and isinstance(item.get("eventName"), str):
                ns, text = item.get("namespace"), item.get("description")
                out.append(
                    EventType(
                        ns if isinstance(ns, str) else "",
                        item["eventName"],
                        text if isinstance(text, str) else "",
                    )
                )
        return out

    def register(self, webhook: dict[str, Any]) -> MutationOutcome:
        outcome = _outcome(
            self.client.execute("RegisterWebhook", {"webhook": webhook}), "registerWebhook"
        )
        if outcome.webhook is None:
            raise ApiError(
                f"the API registered the webhook ({printable(outcome.code, 60)}) "
                "but did not say its id"
            )
        return outcome

    def update(self, webhook_id: str, changes: dict[str, Any]) -> MutationOutcome:
        variables = {"id": webhook_id, "webhook": changes}
        return _outcome(self.client.execute("UpdateWebhook", variables), "updateWebhook")

    def remove(self, webhook_id: str) -> MutationOutcome:
        return _outcome(self.client.execute("RemoveWebhook", {"id": webhook_id}), "removeWebhook")


# -- checks before sending ----------------------------------------------------------------


def url_problem(url: str) -> str | None:
    """Why Allthings would refuse this URL (https only; http for loopback hosts), or None."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "is not a URL"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "is not an http(s) URL with a host"
    if parsed.scheme == "http" and not is_loopback(parsed.host):
        return "must be https (http only for loopback hosts: 127.0.0.1, localhost, ::1)"
    return None


def is_loopback(host: str) -> bool:
    """A host Allthings (and so the emulator) lets a webhook reach over plain http."""
    return host.strip("[]").lower() in LOOPBACK_HOSTS


def check_url(url: str, option: str = "--url") -> str:
    problem = url_problem(url)
    if problem:
        raise UsageError(f"{option} {printable(url, 200)!r} {problem}")
    return url


def check_urns(urns: Sequence[str], option: str = "--urn") -> list[str]:
    for urn in urns:
        if not URN.match(urn):
            raise UsageError(
                f"{option} {printable(urn, 200)!r} is not a URN such as "
                "urn:allthings:app:<app id>:* (or :<app id>:ticket:<category id>:*)"
            )
    return list(dict.fromkeys(urns))


def check_events(
    names: Sequence[str], catalogue: Sequence[EventType] | None, option: str = "--event"
) -> list[str]:
    """The names, each an EventName and, when the catalogue is known, registerable; a near
    miss gets a "did you mean"."""
    known = [e.name for e in catalogue] if catalogue is not None else None
    for name in names:
        if known is not None and name in known:
            continue
        if not EVENT_NAME.match(name) or known is not None:
            close = difflib.get_close_matches(name, known or [], n=1, cutoff=0.6)
            why = (
                "is not an event name (lowercase letters, dots and hyphens)"
                if not EVENT_NAME.match(name)
                else "is not a registerable event"
            )
            raise UsageError(
                f"{option} {printable(name, 100)!r} {why}",
                hint=f"did you mean {close[0]}?"
                if close
                else "see 'atwh webhooks events' for the names",
            )
    return list(dict.fromkeys(names))


def split_names(values: Sequence[str] | None) -> list[str]:
    """Repeatable options that also take comma-separated values, blanks dropped."""
    return [p.strip() for v in values or [] for p in v.split(",") if p.strip()]


def registration(
    url: str,
    events: Sequence[str],
    urns: Sequence[str],
    description: str | None,
    enabled: bool,
    catalogue: Sequence[EventType] | None,
) -> dict[str, Any]:
    """The RegisterWebhookInput for these options, checked as Allthings would check it."""
    if not events:
        raise UsageError("give at least one --event", hint="see 'atwh webhooks events'")
    if not urns:
        raise UsageError(
            "give at least one --urn, such as 'urn:allthings:app:<app id>:*'",
            hint="or --app ID for that app's URN",
        )
    out: dict[str, Any] = {
        "url": check_url(url),
        "events": check_events(events, catalogue),
        "urns": check_urns(urns),
    }
    if description is not None:
        out["description"] = description
    if not enabled:
        out["enabled"] = False
    return out


def update_input(
    current: WebhookInfo,
    catalogue: Sequence[EventType] | None,
    url: str | None = None,
    events: Sequence[str] | None = None,
    add_events: Sequence[str] = (),
    remove_events: Sequence[str] = (),
    urns: Sequence[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> dict[str, Any]:
    """The UpdateWebhookInput with only what was given: `events` replaces the list, then
    `add_events` and `remove_events` change it (starting from the webhook's own)."""
    out: dict[str, Any] = {}
    if url is not None:
        out["url"] = check_url(url)
    if events or add_events or remove_events:
        names = list(events) if events else list(current.events)
        check_events([*(events or []), *add_events], catalogue, "--event/--add-event")
        names += [n for n in add_events if n not in names]
        missing = [n for n in remove_events if n not in names]
        if missing:
            raise UsageError(
                f"--remove-event {printable(missing[0], 100)!r}: the webhook does not subscribe "
                f"to it (it has: {', '.join(printable(n, 60) for n in names) or 'none'})"
            )
        names = [n for n in names if n not in remove_events]
        if not names:
            raise UsageError("a webhook needs at least one event; this would leave none")
        out["events"] = names
    if urns:
        out["urns"] = check_urns(urns)
    if description is not None:
        out["description"] = description
    if enabled is not None:
        out["enabled"] = enabled
    if not out:
        raise UsageError(
            "nothing to update",
            hint="give --url, --event, --add-event, --remove-event, --urn, --description, "
            "--enable or --disable",
        )
    return out


CHANGE_FIELDS = ("description", "url", "enabled", "events", "urns")


def changes(before: WebhookInfo, after: WebhookInfo) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for every field that differs."""
    return [
        (name, getattr(before, name), getattr(after, name))
        for name in CHANGE_FIELDS
        if getattr(before, name) != getattr(after, name)
    ]


# -- the unsigned test event ----------------------------------------------------------------


@dataclass(slots=True)
class PingResult:
    """What a URL answered to the test event Allthings sends when a webhook is saved."""

    url: str
    status_code: int | None = None
    seconds: float = 0.0
    body: str | None = None
    body_truncated: bool = False
    content_type: str | None = None
    error: str | None = None  # no answer: why
    url_problem: str | None = None  # what Allthings would refuse before sending

    @property
    def accepted(self) -> bool:
        """Would registration go through: the URL is acceptable and answered 200."""
        return self.url_problem is None and self.status_code == 200

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "statusCode": self.status_code,
            "milliseconds": round(self.seconds * 1000, 1),
            "body": self.body,
            "bodyTruncated": self.body_truncated,
            "contentType": self.content_type,
            "error": self.error,
            "urlProblem": self.url_problem,
            "accepted": self.accepted,
        }


def ping(url: str, timeout: float, max_body: int = PING_MAX_BODY) -> PingResult:
    """POST the unsigned test event to `url` (no redirects followed, at most `max_body`
    bytes of the answer read, `timeout` seconds for each step)."""
    import httpx

    from atwh import __version__

    result = PingResult(url=url, url_problem=url_problem(url))
    headers = {"content-type": "application/json", "user-agent": f"atwh/{__version__} (ping)"}
    start = time.monotonic()
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("POST", url, content=TEST_EVENT_BODY, headers=headers) as response,
        ):
            result.status_code = response.status_code
            result.content_type = response.headers.get("content-type")
            chunks: list[bytes] = []
            size = 0
            deadline = start + timeout
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > max_body or time.monotonic() > deadline:
                    result.body_truncated = True
                    break
            raw = b"".join(chunks)[:max_body]
            result.body = raw.decode("utf-8", errors="replace")
    except httpx.TimeoutException:
        result.error = f"no answer within {timeout:g}s"
    except (httpx.HTTPError, OSError) as e:
        result.error = printable(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__, 200)
    result.seconds = time.monotonic() - start
    return result


__all__ = [
    "EventType",
    "MutationOutcome",
    "PingResult",
    "WebhookInfo",
    "Webhooks",
    "changes",
    "check_events",
    "check_url",
    "check_urns",
    "mask",
    "ping",
    "refusal",
    "registration",
    "update_input",
    "url_problem",
]
