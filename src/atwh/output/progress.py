"""Progress on stderr while a command fetches: a bar only on a terminal, and only once the
fetch takes a moment."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atwh.client.api import Page


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
        self.fetched += page.size
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
