"""`atwh check URL`: grade a webhook endpoint before Allthings sends it real events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params

API_TIMEOUT = 30.0  # seconds for the API, with --webhook


Url = Annotated[
    str | None,
    typer.Argument(metavar="[URL]", help="The endpoint to check [default: the URL of --webhook]"),
]
EventNames = Annotated[
    list[str] | None,
    typer.Option(
        "--event",
        "-e",
        metavar="NAME",
        show_default=False,
        help="An event name to send signed (repeatable) "
        "[default: the webhook's events, else ticket.created and ticket.updated]",
    ),
]
Webhook = Annotated[
    str | None,
    o.webhook_option("Take the URL, the secret and the events of this webhook from the API."),
]
AnswerTimeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        click_type=params.Duration("SECONDS", min=0.1),
        show_default=False,
        help="How long each answer may take, as a delivery attempt: seconds, or a "
        "duration (10s, 1m) [default: 10s, the emulator's]",
    ),
]
Inbox = Annotated[
    str | None,
    typer.Option(
        "--inbox",
        metavar="DB",
        help="The inbox of the 'atwh serve' in front of the endpoint: say whether the "
        "duplicate was stored once.",
    ),
]
Strict = Annotated[
    bool, typer.Option("--strict", help="Exit 1 on a warning too, not only on a failure.")
]
Yes = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Send to a URL not on this machine without asking first."),
]
Json = Annotated[bool, typer.Option("--json", help="The report as JSON.")]


def check(
    ctx: typer.Context,
    url: Url = None,
    secret: o.SigningSecret = None,
    event: EventNames = None,
    webhook: Webhook = None,
    timeout: AnswerTimeout = None,
    inbox: Inbox = None,
    strict: Strict = False,
    yes: Yes = False,
    as_json: Json = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
) -> int:
    """Grade a webhook endpoint before Allthings sends it real events: about 18 requests,
    one at a time (signed right and wrong, stale, unsigned, twice, out of order, ...), and a
    verdict for each behaviour with the fix. Redirects are never followed.

    Exits 0 when every check ran and none failed, 1 with a failure or a check not run
    (or any warning, with --strict), 6 when nothing answers at all. A 5xx, a 429 or no
    answer is the endpoint's own trouble, never taken as a refusal. A URL not on this
    machine is asked about first (--yes elsewhere): the endpoint may act on the test
    events, whose ids start with atwh-check-.

    Examples:

      atwh check http://127.0.0.1:3000/webhook --secret "$SHARED_WEBHOOK_SECRET"

      atwh check --webhook 5f3a0c7e2b1d --yes --json
    """
    from pathlib import Path

    from atwh.client.webhooks import EVENT_NAME
    from atwh.core.config import http_url
    from atwh.endpoint import check as checking
    from atwh.errors import UsageError, keep_secret, printable
    from atwh.output.check import show_check
    from atwh.samples import ATTEMPT_TIMEOUT

    names = list(dict.fromkeys(n.strip() for n in event or [] if n.strip()))
    for name in names:
        if not EVENT_NAME.match(name):
            raise UsageError(
                f"--event {printable(name, 80)!r} is not an event name (ticket.created)"
            )
    if secret is not None and not secret.strip():
        raise UsageError("--secret is empty: give the webhook's secret")
    _say_unknown(names)
    if webhook is not None:
        source = ctx.get_parameter_source("secret")
        if secret is not None and source is not None and source.name == "COMMANDLINE":
            raise UsageError("give --secret or --webhook, not both")
        hook_url, secret, hook_events = _webhook(webhook, api_url, token)
        url = url or hook_url
        names = names or hook_events
    if url is None:
        raise UsageError("give the URL to check, or --webhook WEBHOOK_ID")
    if not secret:
        raise UsageError(
            f"no secret: {o.NO_SECRET}, or --webhook",
            hint="check signs its events as Allthings does, with the webhook's secret",
        )
    keep_secret(secret)
    url = http_url("URL", url)
    options = checking.CheckOptions(
        url,
        secret,
        names or checking.DEFAULT_EVENTS,
        ATTEMPT_TIMEOUT if timeout is None else timeout,
        Path(inbox) if inbox else None,
        strict,
    )
    if not yes and not checking.on_this_machine(url):
        _confirm(url)
    with _progress() as progress:
        report = checking.run(options, progress=progress)
    show_check(report, as_json)
    return report.exit_status


def _say_unknown(names: list[str]) -> None:
    """A warning for each --event name the catalogue does not have (a typo fails `signed`
    for the wrong reason); it is sent all the same: an app may subscribe to names this
    atwh does not know."""
    import difflib

    from atwh.cli.context import warn
    from atwh.endpoint.trigger import offline_catalogue
    from atwh.errors import printable

    known = offline_catalogue()
    for name in names:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            warn(
                f"--event {printable(name, 80)!r} is not a known event name{hint}; "
                "it is sent as given"
            )


def _webhook(webhook_id: str, api_url: str | None, token: str | None) -> tuple[str, str, list[str]]:
    """The URL, secret and events of a webhook, from the API."""
    from atwh.cli.context import client_factory
    from atwh.endpoint.trigger import webhook_target
    from atwh.errors import UsageError, printable

    with client_factory(api_url, token, API_TIMEOUT)() as client:
        url, secret, events = webhook_target(client, webhook_id)
    if not url:
        raise UsageError(f"the API gives no URL for webhook {printable(webhook_id, 80)}")
    return url, secret, events


def _confirm(url: str) -> None:
    import sys

    from atwh.errors import UsageError, printable

    where = printable(url, 200)
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError(
            f"{where} is not on this machine: give --yes to send it test events",
            hint="the endpoint may act on them",
        )
    if not typer.confirm(
        f"Send test events to {where}? It may act on them", default=False, err=True
    ):
        raise UsageError("nothing sent (not confirmed)")


@contextmanager
def _progress() -> Iterator[Callable[[str], None] | None]:
    """What is being sent, on a terminal's stderr, while the checks run."""
    import sys

    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console

    with Console(stderr=True).status("checking") as status:
        yield lambda what: status.update(f"checking {what}")
