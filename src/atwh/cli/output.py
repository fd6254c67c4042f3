"""What the commands share between fetching and rendering: connection, progress, writing."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import typer

from atwh.errors import UsageError

if TYPE_CHECKING:
    from atwh.client.api import ApiClient, Page, RetryPolicy
    from atwh.client.filters import DeliveryFilter
    from atwh.client.model import Delivery


def warn(message: str) -> None:
    typer.echo(f"Warning: {message}", err=True)


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
    from atwh.client.config import DEFAULT_API_URL, load_config

    return http_url("--api-url", option or load_config().api_url or DEFAULT_API_URL)


def client_factory(
    api_url: str | None, token: str | None, timeout: float, retry: RetryPolicy | None = None
) -> Callable[[], ApiClient]:
    """One ApiClient per caller (thread), all sharing one set of credentials."""
    from atwh.client.api import ApiClient
    from atwh.client.auth import credentials

    url = api_url_from(api_url)
    creds = credentials(token, timeout=timeout)
    return lambda: ApiClient(creds, url=url, timeout=timeout, retry=retry, warn=warn)


class Progress:
    """A progress bar on stderr, only on a terminal and only once a fetch takes a moment."""

    DELAY = 0.5

    def __init__(self, label: str = "Fetching deliveries") -> None:
        self.label = label
        self.start = time.monotonic()
        self.fetched = 0
        self.total = 0
        self._totals: dict[str, int] = {}
        self._bar: Any = None
        self._task: Any = None
        self.enabled = sys.stderr.isatty()

    def __call__(self, page: Page) -> None:
        self.fetched += len(page.deliveries)
        if page.webhook.total_count is not None:
            self._totals[page.webhook.id] = page.webhook.total_count
            self.total = sum(self._totals.values())
        if not self.enabled:
            return
        if self._bar is None and time.monotonic() - self.start >= self.DELAY:
            from rich.console import Console
            from rich.progress import Progress as Bar

            self._bar = Bar(console=Console(stderr=True), transient=True)
            self._task = self._bar.add_task(self.label, total=self.total or None)
            self._bar.start()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.fetched, total=self.total or None)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def write_export(
    records: Iterable[Any],
    fmt: str,
    output: str | None,
    columns: Sequence[str] | None = None,
    row: Callable[[Any], list[object]] | None = None,
) -> int:
    """Stream deliveries (or other records) to stdout or FILE as json, ndjson or csv;
    how many were written."""
    from atwh.output.export import CSV_COLUMNS, Exporter, csv_row, open_output

    with open_output(output) as stream:
        exporter = Exporter(fmt, stream, columns or CSV_COLUMNS, row or csv_row)
        for d in records:
            exporter.write(d)
        exporter.close()
    return exporter.count


def newest_first(deliveries: Iterable[Delivery]) -> list[Delivery]:
    from datetime import UTC, datetime

    floor = datetime.min.replace(tzinfo=UTC)
    return sorted(deliveries, key=lambda d: d.created or floor, reverse=True)


def print_rich(renderable: object, output: str | None) -> None:
    """A table or panel to stdout, or plain into FILE."""
    from atwh.output.export import open_output
    from atwh.output.tables import console

    if output is None or output == "-":
        console().print(renderable)
        return
    with open_output(output) as stream:
        console(stream).print(renderable)


def filtered(
    stream: Iterable[Delivery], flt: DeliveryFilter, progress: Progress
) -> Iterator[Delivery]:
    try:
        yield from flt.apply(stream)
    finally:
        progress.stop()
