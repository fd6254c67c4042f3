"""What the API says about one webhook for a replay: its delivery log and its URL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from atwh.client.api import ApiClient, Page
from atwh.client.model import Webhook


class PageSink(Protocol):
    """What a log is read into, a page at a time (recover.selection.EventLog,
    recover.reconcile.Join)."""

    def add_page(self, page: Page) -> None: ...


S = TypeVar("S", bound=PageSink)


# Allthings retries a failed attempt for up to seven days: an event with an attempt in a
# window may have older attempts up to this much before it.
RETRY_HORIZON = timedelta(days=7)


def fetch_log(
    client: ApiClient,
    webhook_id: str,
    log: S,
    on_page: Callable[[Page], None] | None = None,
    since: datetime | None = None,
) -> tuple[Webhook, S]:
    """The webhook and its deliveries grouped by event (NotFoundError when it is unknown).

    With `since`, paging may stop once a whole page is older than it, while the log comes
    newest first (see `ApiClient.pages`): the log then holds every delivery from `since` on
    and perhaps some older ones. Without it, the whole log. `log`: what the pages are read
    into (an EventLog, with its window and what it keeps).

    Each page is read into the log from its fields, without making Delivery objects."""
    webhook: Webhook | None = None
    for page in client.pages(webhook_id, since):
        webhook = page.webhook
        if on_page is not None:
            on_page(page)
        log.add_page(page)
    assert webhook is not None  # the client yields at least one page, or raises
    return webhook, log


def log_since(since: datetime | None, whole_events: bool) -> datetime | None:
    """How far back a log must go for a window starting at `since`: `since` itself when
    only the attempts in the window count, else `RETRY_HORIZON` earlier, so that every
    attempt of an event with one in the window is read (`whole_events`)."""
    if since is None or not whole_events:
        return since
    return since - RETRY_HORIZON
