"""The Webhooks API client: GraphQL through gql over httpx, with retries, re-authentication
and paging.

Each operation (a file in `queries/`, parsed and validated once) runs through a gql session
whose transport POSTs on one httpx.Client, its sockets held to a deadline and its answers
capped in size (`atwh.client.operations`, `atwh.core.transport`); gql's exceptions are
translated here into AtwhErrors, and retried when the HTTP status says so.

Nothing outside this module talks to the API. Every failure ends in an AtwhError.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import httpx

from atwh.client.auth import TokenProvider
from atwh.client.filters import NewestFirst
from atwh.client.model import (
    Delivery,
    DeliveryRow,
    ReadNodes,
    Webhook,
    delivery_of_row,
    delivery_row,
    parse_webhook,
)
from atwh.core.config import DEFAULT_API_URL
from atwh.core.transport import MAX_PAGE_BYTES, Deadline, http_transport
from atwh.errors import ApiError, AuthError, NetworkError, NotFoundError, printable

log = logging.getLogger("atwh.client.api")

PAGE_SIZE = 100
MAX_EMPTY_PAGES = 5
RETRY_STATUSES = frozenset({429, 502, 503, 504})
PAGED_QUERY = "QueryWebhookDeliveriesPage"
VENDOR_QUERY = "QueryWebhookDeliveries"
# What a paged listing asks for beyond the bare one: a server that rejects one of these (a
# validation error naming it) gets the listing without paging (paginate).
PAGING_NAMES = ("first", "after", "pageInfo", "hasNextPage", "endCursor")
# ... and what the paged query of deliveries asks for beyond the vendor's published one.
DELIVERY_PAGING_NAMES = (*PAGING_NAMES, "enabled", "retry")
# GraphQL error codes (extensions.code) and `success: false` codes that mean the API refused
# the credentials (401) or the access (403): exit 3 (README, Exit codes).
AUTH_CODES = frozenset({"UNAUTHENTICATED", "UNAUTHORIZED"})
FORBIDDEN_CODES = frozenset({"FORBIDDEN"})


@dataclass(slots=True)
class RetryPolicy:
    """Bounded retries with exponential back-off and full jitter."""

    attempts: int = 4  # tries in all, the first included
    base: float = 0.5
    cap: float = 8.0
    retry_after_cap: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return self.rng.uniform(0, min(self.cap, self.base * 2**attempt))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds (a number, or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (now if now is not None else time.time())
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


class Page:
    """One page of a webhook's deliveries, as the API sent it: its nodes, read into
    DeliveryRows (`rows()`) and Delivery objects (`deliveries`) only when first asked for,
    once. An export writes from the rows without making the objects."""

    __slots__ = ("webhook", "nodes", "webhook_id", "_warn", "_rows", "_deliveries")

    def __init__(
        self,
        webhook: Webhook,
        nodes: list[Any],
        webhook_id: str | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.webhook = webhook
        self.nodes = nodes
        self.webhook_id = webhook_id if webhook_id is not None else webhook.id
        self._warn = warn
        # nodes that client.wire read are their rows already
        self._rows: list[DeliveryRow] | None = nodes if nodes.__class__ is ReadNodes else None
        self._deliveries: list[Delivery] | None = None

    @classmethod
    def of(cls, webhook: Webhook, deliveries: list[Delivery]) -> Page:
        """A page of deliveries already made (tests, and sources other than the API)."""
        page = cls(webhook, [])
        page._deliveries = deliveries
        page._rows = [d.row() for d in deliveries]
        return page

    def rows(self) -> list[DeliveryRow]:
        """delivery_row() of each readable node; the others are skipped, with a warning."""
        if self._rows is None:
            rows = [r for r in map(delivery_row, self.nodes) if r is not None]
            if len(rows) < len(self.nodes) and self._warn is not None:
                self._warn(f"skipped {len(self.nodes) - len(rows):,} unreadable deliveries")
            self._rows = rows
        return self._rows

    @property
    def deliveries(self) -> list[Delivery]:
        if self._deliveries is None:
            webhook_id = self.webhook_id
            self._deliveries = [delivery_of_row(r, webhook_id) for r in self.rows()]
        return self._deliveries

    @property
    def size(self) -> int:
        """How many deliveries the API sent on this page, readable or not."""
        if self.nodes or self._deliveries is None:
            return len(self.nodes)
        return len(self._deliveries)  # a page made of deliveries (Page.of)


class _BearerAuth(httpx.Auth):
    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.provider.token()}"
        yield request


class _PagingRejected(Exception):
    pass


def _error_list(errors: Any) -> list[Any]:
    """An answer's `errors` as a list, whatever the server sent: `"oops"` is one error."""
    if errors is None:
        return []
    if isinstance(errors, list):
        return errors
    return [errors]


def _error_messages(errors: list[Any]) -> list[str]:
    out = []
    for e in errors:
        msg = e.get("message") if isinstance(e, dict) else e
        out.append(printable(msg if msg is not None else e, 200))
    return out


def _error_codes(errors: list[Any]) -> set[str]:
    codes = set()
    for e in errors:
        ext = e.get("extensions") if isinstance(e, dict) else None
        code = ext.get("code") if isinstance(ext, dict) else None
        if isinstance(code, str):
            codes.add(code.upper())
    return codes


class ApiClient:
    """One connection to the Webhooks API. Not shared between threads: make one each."""

    def __init__(
        self,
        credentials: TokenProvider,
        url: str = DEFAULT_API_URL,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        page_size: int = PAGE_SIZE,
        warn: Callable[[str], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        max_answer_bytes: int = MAX_PAGE_BYTES,
    ) -> None:
        self.credentials = credentials
        self.url = url
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.page_size = page_size
        self.warn = warn or (lambda message: log.warning("%s", message))
        self.transport = transport
        self.max_answer_bytes = max_answer_bytes
        self.deadline = Deadline()
        self.unpaged: set[str] = set()  # paged operations this API rejects (paginate)
        self._last: httpx.Response | None = None
        self._session: Any = None  # gql's SyncClientSession

    # -- connection ---------------------------------------------------------------------

    def _remember(self, response: httpx.Response) -> None:
        self._last = response

    def _connect(self) -> Any:
        """The gql session over this client's bounded transport, made on first use (and gql
        imported then: client.operations)."""
        if self._session is None:
            from atwh.client import operations

            self._session = operations.connect(
                self.url,
                self.deadline,
                self.timeout,
                self.max_answer_bytes,
                transport=self.transport or http_transport(self.deadline),
                auth=_BearerAuth(self.credentials),
                timeout=self.timeout,
                headers={"User-Agent": _user_agent(), "Content-Type": "application/json"},
                event_hooks={"response": [self._remember]},
            )
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.client.close_sync()
            self._session = None

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one operation ------------------------------------------------------------------

    def execute(
        self, operation: str, variables: dict[str, Any], paging_names: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Run one operation from `queries/`; its `data`. Errors beside data become warnings.
        _PagingRejected when it fails with an error naming one of `paging_names`."""
        data, errors = self._execute_with_retries(operation, variables, paging_names)
        if errors:
            messages = _error_messages(errors)
            if data is None:
                raise ApiError(f"the API answered with an error: {messages[0]}")
            self.warn(f"the API reported errors beside the data: {'; '.join(messages[:3])}")
        if not isinstance(data, dict):
            raise ApiError("the API answered without data")
        return data

    def _execute_with_retries(
        self, operation: str, variables: dict[str, Any], paging_names: tuple[str, ...] = ()
    ) -> tuple[Any, list[Any] | None]:
        from atwh.client.operations import operation as graphql_operation

        read = _page_reader() if operation == PAGED_QUERY else None
        request = graphql_operation(operation, variables, read)
        log.debug("%s %s", operation, variables)
        renewed = False
        attempt = 0
        while True:
            outcome = self._execute_once(request)
            status = self._last.status_code if self._last is not None else None
            data, errors = outcome if isinstance(outcome, tuple) else (None, None)
            codes = _error_codes(errors or [])
            if status == 401 or (codes & AUTH_CODES and not data):
                if not renewed and self.credentials.renew():
                    renewed = True
                    continue
                raise AuthError(
                    "the API refused the credentials (401 Unauthorized)",
                    hint="check the token, or the OAuth client it came from",
                )
            if status == 403 or (codes & FORBIDDEN_CODES and not data):
                raise AuthError(
                    "the API refused access (403 Forbidden): the token needs the "
                    "edit-app permission"
                )
            failure: Exception | None = None
            if not isinstance(outcome, tuple):
                failure = outcome
                if isinstance(failure, ApiError) and status not in RETRY_STATUSES:
                    raise failure
            elif status not in RETRY_STATUSES:
                if errors and data is None and _names_one_of(errors, paging_names):
                    raise _PagingRejected()
                if status is not None and status >= 400 and data is None:
                    detail = _error_messages(errors or [])[:1] or [""]
                    raise ApiError(f"the API answered HTTP {status} {detail[0]}".rstrip())
                return data, errors
            attempt += 1
            if attempt >= self.retry.attempts:
                if failure is not None:
                    raise failure
                raise ApiError(
                    f"the API kept answering HTTP {status}; gave up after {attempt} tries"
                )
            retry_after = None
            if status == 429 and self._last is not None:
                retry_after = parse_retry_after(self._last.headers.get("Retry-After"))
            delay = self.retry.delay(attempt - 1, retry_after)
            log.debug(
                "retrying %s in %.2fs (try %d): %s",
                operation,
                delay,
                attempt + 1,
                failure or f"HTTP {status}",
            )
            self.retry.sleep(delay)

    def _execute_once(self, request: Any) -> tuple[Any, list[Any] | None] | AtwhErrorLike:
        """One run of the operation through gql: (data, errors) as the answer has them, or
        the error to report (retried by the caller when the HTTP status says so), translated
        from gql's transport exceptions."""
        from atwh.client import operations as gql

        self._last = None
        session = self._connect()
        # a token to fetch is fetched now, not within the API request's deadline
        self.credentials.token()
        try:
            result = session.execute(request, get_execution_result=True)
        except gql.TransportQueryError as e:
            return e.data, _error_list(e.errors)
        except (gql.TransportServerError, gql.TransportProtocolError) as e:
            return ApiError(str(e))
        except gql.TransportConnectionFailed as e:
            return _network_error(self.url, e.__cause__ or e)
        return result.data, None

    # -- listings ----------------------------------------------------------------------

    def paginate(
        self,
        paged: str,
        unpaged: str,
        variables: dict[str, Any],
        connection: Callable[[dict[str, Any]], Any],
        what: str,
        paging_names: tuple[str, ...] = PAGING_NAMES,
        first: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The `data` of each page of a Relay connection (`connection(data)`), for deliveries
        and webhooks alike.

        `paged` is asked with `first` and `after` and followed by its `pageInfo` until
        `hasNextPage` is false (PageCursors: a missing or repeated cursor, or an endless
        run of empty pages, ends in ApiError, never a loop). A server that rejects the
        paging arguments of the first page (an error naming one of `paging_names`) is asked
        `unpaged` instead, as one page, and is not asked `paged` again by this client.
        The caller stops paging by leaving the loop: the next page is asked for only when
        it wants one."""
        after: str | None = None
        cursors = PageCursors(what)
        while True:
            if paged in self.unpaged:
                yield self.execute(unpaged, variables)
                return
            page_variables = {**variables, "first": first or self.page_size}
            if after is not None:
                page_variables["after"] = after
            try:
                data = self.execute(paged, page_variables, paging_names)
            except _PagingRejected:
                if after is not None:
                    raise ApiError(f"the API stopped accepting paging arguments ({what})") from None
                log.debug("the API rejects paging %s; using %s", what, unpaged)
                self.unpaged.add(paged)
                continue
            yield data
            found = connection(data)
            found = found if isinstance(found, dict) else {}
            page_info = found.get("pageInfo")
            if not isinstance(page_info, dict) or page_info.get("hasNextPage") is not True:
                return
            items = found.get("nodes")
            if not isinstance(items, list):
                items = found.get("edges")
            after = cursors.next(page_info, len(items) if isinstance(items, list) else 0)

    # -- deliveries ---------------------------------------------------------------------

    def pages(self, webhook_id: str, since: datetime | None = None) -> Iterator[Page]:
        """Every page of a webhook's deliveries, as the server sends them (paginate): from a
        server that rejects paging, the vendor's query as published, once per client.

        Beyond paginate's checks, a server that sends far more deliveries than its own
        totalCount ends in ApiError. With `since`, paging stops after a whole page older
        than `since`, while every delivery so far came newest first (the API promises no
        order: see NewestFirst).
        """
        order = NewestFirst()
        read = 0
        total: int | None = None
        for data in self.paginate(
            PAGED_QUERY,
            VENDOR_QUERY,
            {"id": webhook_id},
            _deliveries_of,
            "deliveries",
            DELIVERY_PAGING_NAMES,
        ):
            page = self._page(data, webhook_id)
            read += page.size
            total = page.webhook.total_count if total is None else total
            _check_count(read, total, self.page_size)
            yield page
            # after the page is used, so that its dates are read once (Page.rows)
            if since is not None and _older_page(page, since, order):
                log.debug("stopped paging: a whole page is older than --since")
                return

    def _page(self, data: dict[str, Any], webhook_id: str) -> Page:
        raw = data.get("webhook")
        if not isinstance(raw, dict):
            raise NotFoundError(
                f"webhook {printable(webhook_id, 80)} not found",
                hint="check the id, and that the token's app can see it",
            )
        connection = raw.get("deliveries")
        connection = connection if isinstance(connection, dict) else {}
        nodes = connection.get("nodes")
        if not isinstance(nodes, list):
            nodes = [e.get("node") for e in connection.get("edges") or [] if isinstance(e, dict)]
        return Page(parse_webhook(raw, webhook_id), nodes, webhook_id, self.warn)

    def deliveries(
        self,
        webhook_id: str,
        on_page: Callable[[Page], None] | None = None,
        since: datetime | None = None,
    ) -> Iterator[Delivery]:
        for page in self.pages(webhook_id, since):
            if on_page is not None:
                on_page(page)
            yield from page.deliveries


AtwhErrorLike = ApiError | NetworkError


def _deliveries_of(data: dict[str, Any]) -> Any:
    webhook = data.get("webhook")
    return webhook.get("deliveries") if isinstance(webhook, dict) else None


@cache
def _naming(names: tuple[str, ...]) -> re.Pattern[str]:
    """A quoted name among `names` in an error message: `"first"`, `'after'`, `` `retry` ``."""
    return re.compile(r"""["'`](""" + "|".join(map(re.escape, names)) + r""")["'`]""")


def _names_one_of(errors: list[Any], names: tuple[str, ...]) -> bool:
    """Whether an error names one of these fields or arguments (a server rejecting them)."""
    if not names:
        return False
    naming = _naming(names)
    return any(naming.search(m) for m in _error_messages(errors))


def _older_page(page: Page, since: datetime, order: NewestFirst) -> bool:
    """Whether the order so far is newest first (this page included) and every delivery of
    this page was created before `since`: then no later page can hold a newer one."""
    rows = page.rows()
    older = bool(rows)
    for row in rows:
        created = row.created
        order.see(created)
        if created is None or created >= since:
            older = False
    return older and order.holds


class PageCursors:
    """The cursor of each next page of a Relay connection, checked: a server that says more
    follow but gives no cursor, repeats one, or sends empty page after empty page ends in
    ApiError, never a loop. One for each listing (`what`: "deliveries", "webhooks")."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.seen: set[str] = set()
        self.empty_run = 0

    def next(self, page_info: dict[str, Any], items: int) -> str:
        """The `after` for the page that follows one of `items` items with this pageInfo."""
        cursor = page_info.get("endCursor")
        if not isinstance(cursor, str | int) or isinstance(cursor, bool) or cursor == "":
            raise ApiError(f"the API says there are more {self.what} but gave no cursor")
        cursor = str(cursor)
        if cursor in self.seen:
            raise ApiError(f"the API repeated the page cursor {printable(cursor, 60)!r}")
        self.seen.add(cursor)
        self.empty_run = self.empty_run + 1 if not items else 0
        if self.empty_run >= MAX_EMPTY_PAGES:
            raise ApiError(
                f"the API sent {self.empty_run} empty pages of {self.what} in a row, "
                "each saying more follow"
            )
        return cursor


def _check_count(read: int, total: int | None, page_size: int) -> None:
    """Stop a server that sends pages without end: far more deliveries than its own
    `totalCount` (more than twice it plus a page; deliveries made meanwhile fit in that)."""
    if total is not None and read > 2 * total + page_size:
        raise ApiError(
            f"the API sent {read:,} deliveries but counts {total:,} (totalCount); "
            "stopped reading pages that do not end"
        )


def _page_reader() -> Callable[[bytes], dict[str, Any] | None]:
    from atwh.client.wire import read_page

    return read_page


def _network_error(url: str, cause: BaseException) -> NetworkError:
    parsed = httpx.URL(url)
    host = parsed.host or url
    if parsed.port is not None:  # kept: `127.0.0.1:1` says more than `127.0.0.1`
        host = f"[{host}]:{parsed.port}" if ":" in host else f"{host}:{parsed.port}"
    if isinstance(cause, httpx.TimeoutException):
        return NetworkError(f"the API at {host} did not answer in time")
    why = re.sub(r"^\[Errno -?\d+\]\s*", "", printable(cause, 160))  # as a person says it
    return NetworkError(f"cannot reach the API at {host}: {why[:1].lower()}{why[1:]}")


def _user_agent() -> str:
    from atwh import __version__

    return f"atwh/{__version__}"


def fetch_many(
    webhook_ids: list[str],
    make_client: Callable[[], ApiClient],
    on_page: Callable[[Page], None] | None = None,
    since: datetime | None = None,
) -> Iterator[Delivery]:
    """The deliveries of several webhooks, fetched concurrently (see fetch_pages)."""
    for page in fetch_pages(webhook_ids, make_client, on_page, since):
        yield from page.deliveries


def fetch_pages(
    webhook_ids: list[str],
    make_client: Callable[[], ApiClient],
    on_page: Callable[[Page], None] | None = None,
    since: datetime | None = None,
) -> Iterator[Page]:
    """The pages of deliveries of several webhooks, fetched concurrently, one thread each.

    Pages pass through a small bounded queue, so memory does not grow with the count.
    The first error of any webhook stops them all and is raised here.
    """
    if len(webhook_ids) == 1:
        with make_client() as client:
            for page in client.pages(webhook_ids[0], since):
                if on_page is not None:
                    on_page(page)
                yield page
        return

    import queue
    import threading

    pages: queue.Queue[tuple[Page | None, BaseException | None]] = queue.Queue(maxsize=8)
    stop = threading.Event()

    def put(item: tuple[Page | None, BaseException | None]) -> None:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def work(webhook_id: str) -> None:
        try:
            with make_client() as client:
                for page in client.pages(webhook_id, since):
                    if stop.is_set():
                        return
                    page.rows()  # read here, in this webhook's thread
                    put((page, None))
            put((None, None))
        except BaseException as e:  # handed to the consumer, raised there
            put((None, e))

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in webhook_ids]
    for t in threads:
        t.start()
    try:
        running = len(threads)
        while running:
            got, error = pages.get()
            if error is not None:
                raise error
            if got is None:
                running -= 1
                continue
            if on_page is not None:
                on_page(got)
            yield got
    finally:
        stop.set()
