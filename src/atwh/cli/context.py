"""What every command needs before it does its work: the API client (from the options, the
environment and the config file), the webhooks it is about, URLs checked, and warnings."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from atwh.errors import UsageError

if TYPE_CHECKING:
    from atwh.client.api import ApiClient, RetryPolicy


def warn(message: str) -> None:
    typer.echo(f"Warning: {message}", err=True)


def webhook_ids_from(given: list[str] | None) -> list[str]:
    """The webhooks a command is about (`failures`, `stats`, `tail`): those given, else
    ATWH_WEBHOOK_ID (comma-separated), else the config file's `webhooks`; each once."""
    import os

    from atwh.core.config import load_config

    ids = [i.strip() for i in given or [] if i.strip()]
    if not ids:
        ids = [i.strip() for i in os.environ.get("ATWH_WEBHOOK_ID", "").split(",") if i.strip()]
    if not ids:
        config = load_config()
        ids = config.webhooks
        if not ids:
            raise UsageError(
                "no webhook id: give one or more, set ATWH_WEBHOOK_ID (comma-separated), "
                f"or list them as webhooks = [...] in {config.path}"
            )
    return list(dict.fromkeys(ids))


def http_url(flag: str, url: str) -> str:
    """The URL given with `flag`, or one usage line when it is not http(s) with a host."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"{flag} {url!r} is not an http(s) URL")
    return url


def api_url_from(option: str | None) -> str:
    """--api-url / ATWH_API_URL, else the config file's api_url, else the real API."""
    from atwh.core.config import DEFAULT_API_URL, load_config

    return http_url("--api-url", option or load_config().api_url or DEFAULT_API_URL)


def client_factory(
    api_url: str | None, token: str | None, timeout: float, retry: RetryPolicy | None = None
) -> Callable[[], ApiClient]:
    """One ApiClient per caller (thread), all sharing one set of credentials."""
    from atwh.client.api import ApiClient
    from atwh.client.auth import credentials

    if not 0 < timeout < float("inf"):
        raise UsageError(f"--timeout {timeout:g}: give a number of seconds above 0")
    url = api_url_from(api_url)
    creds = credentials(token, timeout=timeout)
    return lambda: ApiClient(creds, url=url, timeout=timeout, retry=retry, warn=warn)
