"""What the API says about one webhook for a replay: its delivery log and its URL."""

from __future__ import annotations

from collections.abc import Callable

from atwh.client.api import ApiClient, Page
from atwh.client.model import Webhook
from atwh.recover.selection import EventLog


def fetch_log(
    client: ApiClient, webhook_id: str, on_page: Callable[[Page], None] | None = None
) -> tuple[Webhook, EventLog]:
    """The webhook and its deliveries grouped by event (NotFoundError when it is unknown)."""
    log = EventLog()
    webhook: Webhook | None = None

    def page(p: Page) -> None:
        nonlocal webhook
        webhook = p.webhook
        if on_page is not None:
            on_page(p)

    log.extend(client.deliveries(webhook_id, on_page=page))
    assert webhook is not None  # the client yields at least one page, or raises
    return webhook, log
