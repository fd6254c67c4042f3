"""What every command needs before it does its work: the API client (from the options, the
environment and the config file), the webhooks it is about, URLs checked, and warnings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from atwh.errors import ExitStatus, UsageError

if TYPE_CHECKING:
    from atwh.client.api import ApiClient, Page, RetryPolicy
    from atwh.recover.replay import Report
    from atwh.recover.selection import Candidate
    from atwh.recover.sending import Sending


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


def api_url_from(option: str | None) -> str:
    """--api-url / ATWH_API_URL, else the config file's api_url, else the real API."""
    from atwh.core.config import DEFAULT_API_URL, http_url, load_config

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


def interactive() -> bool:
    """Whether a person can answer a question: stdin is a terminal."""
    import sys

    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def split_ids(values: list[str] | None, option: str) -> list[str]:
    """Ids given as repeated options, each maybe comma-separated (`--event-id a,b`); an
    empty one is a usage error (see recover.selection.given_ids)."""
    from atwh.recover.selection import given_ids

    return given_ids(values, option)


def webhook_url(url: str | None, webhook_id: str) -> str:
    """Where the webhook sends, as the API says: the target of a replay without --to."""
    from atwh.core.config import http_url
    from atwh.errors import printable

    if not url:
        raise UsageError(
            f"the API gives no URL for webhook {printable(webhook_id, 80)}",
            hint="say where with --to URL",
        )
    return http_url("the webhook's URL", url)


@contextmanager
def fetching() -> Iterator[Callable[[Page], None]]:
    """What to call with each page of a log while it comes (recover.webhook's `on_page`):
    a progress bar on a terminal, gone when the block ends."""
    from atwh.output.progress import Progress

    progress = Progress()
    try:
        yield progress
    finally:
        progress.stop()


def send(
    candidates: list[Candidate], how: Sending, nothing: str, fmt: str, output: str | None
) -> int:
    """What `replay`, `inbox replay` and `reconcile --replay` share once the events are
    chosen: sending (recover.sending.deliver), then the report; the exit status."""
    from atwh.output.recover import show_report

    report = deliver(candidates, how, nothing)
    if report is None:
        if not candidates and fmt == "json":  # nothing to send: still a JSON document
            from atwh.output.show import write_export

            write_export([], fmt, output)
        return ExitStatus.OK
    show_report(report, fmt, output)
    return sent_status(report)


def deliver(candidates: list[Candidate], how: Sending, nothing: str) -> Report | None:
    """recover.sending.deliver, speaking to the person at this terminal."""

    from atwh.output.recover import ReplayProgress
    from atwh.recover import sending

    def say(line: str) -> None:
        typer.echo(line, err=True)

    # on a terminal, a progress bar that goes when the report comes: each result once
    progress = ReplayProgress() if stderr_is_terminal() else None
    ui = sending.Ui(
        say=say, out=typer.echo, warn=warn, confirm=_confirm_sending, on_outcome=progress
    )
    try:
        return sending.deliver(candidates, how, nothing, ui)
    finally:
        if progress is not None:
            progress.stop()


def stderr_is_terminal() -> bool:
    import sys

    return sys.stderr.isatty()


def sent_status(report: Report) -> int:
    """0 when every event sent got a 2xx, 1 when one did not (or could not be sent), 7 when
    the ledger could not be written (sending stopped), 130 when Ctrl-C stopped it."""
    if report.ledger_error is not None:
        typer.echo(f"Error: {report.ledger_error}; sending stopped there", err=True)
        return ExitStatus.OUTPUT
    if report.interrupted:
        typer.echo("Interrupted: stopped sending; the report above is complete.", err=True)
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK if report.all_fixed else ExitStatus.FAILED


def _confirm_sending(count: int, target: str) -> bool:
    from atwh.errors import printable

    where = printable(target, 200)
    if not interactive():
        raise UsageError(
            f"about to send {count:,} events to {where}, not a loopback host",
            hint="confirm with --yes",
        )
    return typer.confirm(f"Send {count:,} events to {where}?", default=False, err=True)


def check_as(as_: str | None) -> None:
    """--as: the one form there is, curl."""
    if as_ is not None and as_ != "curl":
        raise UsageError(f"--as {as_!r}: the one form is 'curl'")


def after_ctrl_c(signals: list[int] | None) -> str:
    """A line break after the `^C` a terminal echoes, so the summary starts a line."""
    import signal
    import sys

    return "\n" if signal.SIGINT in (signals or ()) and sys.stderr.isatty() else ""
