"""What the API says about one webhook for a replay: its delivery log, read into what a
replay or a reconciliation needs, and the events a replay chooses from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from atwh.client.api import ApiClient, Page
from atwh.client.model import Webhook
from atwh.errors import UsageError

if TYPE_CHECKING:
    from atwh.client.filters import DeliveryFilter
    from atwh.recover.selection import Candidate, EventLog


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


def mode_of(all_failed: bool, everything: bool, by_id: bool) -> str:
    """Which events replay's options ask for: "failing" (the default), "failed"
    (--all-failed) or "all" (--all); events chosen by id (--delivery, --event-id) take
    neither of the two."""
    if all_failed and everything:
        raise UsageError("--all-failed and --all disagree: give one of them")
    if by_id and (all_failed or everything):
        raise UsageError(
            "--delivery and --event-id pick events themselves: drop --all/--all-failed"
        )
    return "all" if everything else "failed" if all_failed else "failing"


@dataclass(slots=True)
class Chosen:
    """A webhook, its log (let go but for its length) and the events to send from it."""

    webhook: Webhook
    log: EventLog
    candidates: list[Candidate]


def choose(
    client: ApiClient,
    webhook_id: str,
    flt: DeliveryFilter,
    mode: str,
    delivery: list[str],
    event_id: list[str],
    payloads: bool,
    on_page: Callable[[Page], None] | None = None,
) -> Chosen:
    """The webhook, and the events `mode` takes from its log in the window `flt` (or the
    events of these delivery ids and event ids), oldest first. Per event only what the
    choice needs is kept, and the payload only with `payloads` (a dry run needs none)."""
    from atwh.recover.selection import EventLog

    by_id = bool(delivery or event_id)
    # the ids may be anywhere in the log; --all-failed looks at every attempt of an event
    # (one may fail before the window), the other modes only at the newest ones
    reach = None if by_id else log_since(flt.since, mode == "failed")
    log = EventLog(
        None if by_id else flt,
        payloads=payloads,
        lean=mode == "failing" and not by_id,
        by_delivery=bool(delivery),
    )
    webhook, log = fetch_log(client, webhook_id, log, on_page, reach)
    # the records let go as the candidates are made: only one of the two in memory
    return Chosen(webhook, log, log.select(mode, delivery, event_id, drain=True))


def nothing_hint(mode: str, since: str | None, events: int) -> str:
    """Why a replay found nothing to send, for `Nothing to replay: …`."""
    if not events:
        return "the webhook has no deliveries" + (f" since {since}" if since else "")
    what = {
        "failing": "no event is still failing",
        "failed": "no event has a failed attempt",
        "all": "no event",
    }[mode]
    return f"{what} in the window ({events} events read; --all-failed or --all take more)"
