"""`atwh webhooks`: list, show, create, update, enable, disable, remove, events, ping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atwh.cli import options as o
from atwh.cli import params

if TYPE_CHECKING:
    from atwh.client.webhooks import EventType, WebhookInfo, Webhooks
    from atwh.errors import AtwhError

app = typer.Typer(
    help="Manage webhooks: list, show, create, update, enable, disable, remove; the event "
    "names one can subscribe to; and the test event Allthings sends a webhook's URL.",
    no_args_is_help=True,
)

SCOPE = "Which webhooks"

WebhookId = Annotated[
    str,
    typer.Argument(
        metavar="WEBHOOK_ID",
        click_type=params.WebhookId(),
        help="The webhook's id, or a unique prefix of one when ATWH_APP_ID, ATWH_PROJECT_ID "
        "or the config file names the app or project.",
    ),
]
AppId = Annotated[
    str | None,
    typer.Option(
        "--app",
        metavar="APP_ID",
        rich_help_panel=SCOPE,
        show_default=False,
        help="The app whose webhooks these are [default: ATWH_APP_ID, or app_id in the config]",
    ),
]
ProjectId = Annotated[
    str | None,
    typer.Option(
        "--project",
        metavar="PROJECT_ID",
        rich_help_panel=SCOPE,
        show_default=False,
        help="The project whose webhooks these are [default: ATWH_PROJECT_ID, or project_id "
        "in the config]",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON with the API's field names.")]
ShowSecret = Annotated[
    bool,
    typer.Option("--show-secret", help="Show the webhook's shared secret instead of masking it."),
]
Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        show_default=False,
        help="Where events are POSTed: https, or http for 127.0.0.1, localhost, ::1.",
    ),
]
Events = Annotated[
    list[str] | None,
    typer.Option(
        "--event",
        "-e",
        metavar="NAME",
        show_default=False,
        help="An event name to subscribe to; repeatable or comma-separated "
        "(see 'atwh webhooks events').",
    ),
]
Urns = Annotated[
    list[str] | None,
    typer.Option(
        "--urn",
        metavar="URN",
        show_default=False,
        help="Which events: urn:allthings:app:<app id>:* or narrower; repeatable.",
    ),
]
Description = Annotated[
    str | None,
    typer.Option(
        "--description", "-d", metavar="DESCRIPTION", show_default=False, help="A description."
    ),
]


@contextmanager
def _webhooks(api_url: str | None, token: str | None, timeout: float) -> Iterator[Webhooks]:
    from atwh.cli.context import client_factory
    from atwh.client.webhooks import Webhooks

    with client_factory(api_url, token, timeout)() as client:
        yield Webhooks(client)


def _echo_json(value: Any) -> None:
    import json

    from atwh.errors import visible

    # json escapes C0 controls; escape every other control or invisible formatting
    # character too (DEL, C1, bidi overrides, line separators), so none from the API reaches
    # a terminal: inside strings, where they can only be, the escapes are JSON's own
    typer.echo(visible(json.dumps(value, indent=2, ensure_ascii=False)))


def _say(line: str) -> None:
    typer.echo(line, err=True)


def scope(
    app_id: str | None, project_id: str | None, required: bool = True
) -> tuple[str | None, str | None]:
    """The app or project: the options, else ATWH_APP_ID / ATWH_PROJECT_ID, else the config
    file. One of them, never both from the same place."""
    import os

    from atwh.core.config import load_config
    from atwh.errors import UsageError

    def one(app: str | None, project: str | None, where: str) -> tuple[str | None, str | None]:
        if app and project:
            raise UsageError(f"give an app or a project, not both ({where})")
        return app or None, project or None

    if app_id or project_id:
        return one(app_id, project_id, "--app and --project")
    env = one(
        (os.environ.get("ATWH_APP_ID") or "").strip(),
        (os.environ.get("ATWH_PROJECT_ID") or "").strip(),
        "ATWH_APP_ID and ATWH_PROJECT_ID are both set",
    )
    if env != (None, None):
        return env
    config = load_config()
    found = one(config.app_id, config.project_id, f"app_id and project_id in {config.path}")
    if found == (None, None) and required:
        raise UsageError(
            "give --app APP_ID or --project PROJECT_ID",
            hint="or set ATWH_APP_ID or ATWH_PROJECT_ID, or app_id in the config file",
        )
    return found


def find(
    hooks: Webhooks,
    webhook_id: str,
    app_id: str | None = None,
    project_id: str | None = None,
    app_option: bool = False,
) -> WebhookInfo:
    """The webhook with this id; failing that, when the app or project is known (--app,
    env or config file), the one whose id starts with it, as git takes commits.
    `app_option`: the command has --app (`show`), so the hint may suggest it."""
    from atwh.client.prefix import resolve_prefix
    from atwh.errors import NotFoundError

    try:
        return hooks.get(webhook_id)
    except NotFoundError as e:
        app_id, project_id = scope(app_id, project_id, required=False)
        if not webhook_id.strip():
            raise
        if not (app_id or project_id):
            raise NotFoundError(
                e.message,
                hint="a prefix of an id is looked up among an app's webhooks: "
                + ("give --app APP_ID (or set ATWH_APP_ID)" if app_option else "set ATWH_APP_ID")
                + " to use one",
            ) from None
        ids = [h.id for h in hooks.matching(app_id, project_id)]
        full = resolve_prefix(webhook_id, ids, "webhook", "ID")
        if full == webhook_id:
            raise
    return hooks.get(full)


def _catalogue(hooks: Webhooks) -> list[EventType] | None:
    """The registerable events, or None (with a warning) when the API does not say."""
    from atwh.cli.context import warn
    from atwh.errors import ApiError

    try:
        found = hooks.events()
    except ApiError as e:
        warn(f"could not read the registerable events to check the names: {e.message}")
        return None
    if not found:
        warn("the API lists no registerable events; sending the names unchecked")
        return None
    return found


# -- commands -------------------------------------------------------------------------------


@app.command("list", cls=o.Command)
def list_(
    app_id: AppId = None,
    project_id: ProjectId = None,
    fmt: o.TableOrJson = None,
    as_json: Json = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> None:
    """List the webhooks of an app or project: id, description, URL, enabled, events, URNs,
    created.

    Examples:

      atwh webhooks list --app 5d8a3c2e1f0b4a6c9e7d2b1a

      atwh webhooks list --app 5d8a3c2e1f0b4a6c9e7d2b1a --json | jq -r '.[].id'

      atwh webhooks list --app 5d8a3c2e1f0b4a6c9e7d2b1a | cut -f1,3   (piped: id and URL)
    """
    from atwh.errors import printable
    from atwh.output.show import show_listing, table_or_json
    from atwh.output.tables import webhook_columns

    mode = table_or_json(fmt, as_json, "webhooks list")
    app_id, project_id = scope(app_id, project_id)
    with _webhooks(api_url, token, timeout) as hooks:
        found = list(hooks.matching(app_id, project_id))
    if mode == "json":
        _echo_json([h.as_json() for h in found])
        return
    if not found:
        what = f"app {app_id}" if app_id else f"project {project_id}"
        _say(
            f"No webhooks for {printable(what, 100)} (none registered, or the token cannot see "
            "them); create one with 'atwh webhooks create'."
        )
        return
    show_listing(webhook_columns(), found, mode)


@app.command("show", cls=o.Command)
def show(
    webhook_id: WebhookId,
    show_secret: ShowSecret = False,
    app_id: AppId = None,
    project_id: ProjectId = None,
    as_json: Json = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> None:
    """Show every field of one webhook; the secret is masked unless --show-secret. A unique
    prefix of the id will do with the app (--app) or project.

    Example:

      atwh webhooks show wh-history --show-secret
    """
    from atwh.output.show import print_rich
    from atwh.output.tables import webhook_detail

    with _webhooks(api_url, token, timeout) as hooks:
        hook = find(hooks, webhook_id, app_id, project_id, app_option=True)
    if as_json:
        _echo_json(hook.as_json(show_secret))
        return
    print_rich(webhook_detail(hook, show_secret), None)


@app.command("create", cls=o.Command)
def create(
    ctx: typer.Context,
    url: Url = None,
    event: Events = None,
    urn: Urns = None,
    description: Description = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Register it without sending it events yet.")
    ] = False,
    app_id: AppId = None,
    show_secret: ShowSecret = False,
    as_json: Json = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> None:
    """Register a webhook (registerWebhook) and print its id and the command to start a
    receiver for it. Event names, the URL and the URNs are checked before anything is sent.
    Allthings then POSTs an unsigned test event to the URL and refuses the webhook unless it
    answers 200 ('atwh webhooks ping --url URL' shows what it answers).

    Examples:

      atwh webhooks create --url http://127.0.0.1:8000/webhook -e ticket.created --app a1

      atwh webhooks create --url http://127.0.0.1:8000/webhook -e ticket.created
      -e ticket.updated --urn 'urn:allthings:app:a1:*' -d 'ticket sync'
    """
    from atwh.client.webhooks import check_url, registration, split_names
    from atwh.errors import AtwhError, UsageError
    from atwh.output.show import print_rich
    from atwh.output.tables import webhook_detail

    if url is None:
        raise UsageError("give --url, where the events are POSTed")
    check_url(url)
    urns = split_names(urn)
    if not urns:
        app, _ = scope(app_id, project_id=None, required=False)
        if app:
            urns = [f"urn:allthings:app:{app}:*"]
    with _webhooks(api_url, token, timeout) as hooks:
        names = split_names(event)
        catalogue = _catalogue(hooks) if names else None
        webhook = registration(url, names, urns, description, not disabled, catalogue)
        try:
            outcome = hooks.register(webhook)
        except AtwhError as e:
            _hint_url_check(e, url)
            raise
    hook = outcome.webhook
    assert hook is not None
    if as_json:
        _echo_json(outcome.as_json(show_secret))
    else:
        _say(f"Registered webhook {hook.id}.")
        print_rich(webhook_detail(hook, show_secret), None)
    _say(
        "Start a receiver that verifies its signatures (restart it if one is running):\n  "
        + serve_command(ctx, hook.id, hook.url or url, api_url)
    )


def _hint_url_check(error: AtwhError, url: str) -> None:
    """A refused URL check gets a hint: what the URL answers, and how to start a receiver."""
    code = error.api_code
    if code is None or ("URL" not in code.upper() and "url" not in error.message.lower()):
        return
    if error.hint is None:
        error.hint = f"see what it answers: atwh webhooks ping --url {_quote(url)}"
        local = _local_receiver_options(url)
        if local is not None:
            error.hint += (
                "; start a receiver there first: " + " ".join(["atwh", "serve", *local]).rstrip()
            )


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _local_receiver_options(url: str) -> list[str] | None:
    """`--port P --path /p` for `atwh serve` to listen where `url` points, when those differ
    from serve's defaults; None when the URL is not on this machine."""
    import httpx

    from atwh.client.webhooks import is_loopback

    parsed = httpx.URL(url)
    options: list[str] = []
    if parsed.host.strip("[]") == "::1":  # serve listens on 127.0.0.1 unless told
        options += ["--host", "::1"]
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if port != 8000:
        options += ["--port", str(port)]
    if parsed.path != "/webhook":
        options += ["--path", _quote(parsed.path or "/")]
    return options if is_loopback(parsed.host) else None


def serve_command(ctx: typer.Context, webhook_id: str, url: str, api_url: str | None) -> str:
    """The `atwh serve --webhook ID` command that listens where the webhook's URL points and
    reads its secret from the same API this command used."""
    import httpx

    parts = ["atwh", "serve", "--webhook", _quote(webhook_id)]
    local = _local_receiver_options(url)
    if local is not None:
        parts += local
    else:  # not this machine: listen on the URL's port and path, reached through a tunnel
        parsed = httpx.URL(url)
        parts += ["--port", "8000", "--path", _quote(parsed.path or "/")]
    source = ctx.get_parameter_source("api_url")
    if api_url and source is not None and source.name == "COMMANDLINE":
        parts += ["--api-url", _quote(api_url)]
    source = ctx.get_parameter_source("token")
    line = " ".join(parts)
    if source is not None and source.name == "COMMANDLINE":
        line += "   (and the same --token)"
    if local is None:
        line += f"\n  then make {url} reach this machine (a tunnel or port forwarding)"
    return line


def _update(
    webhook_id: str,
    api_url: str | None,
    token: str | None,
    timeout: float,
    as_json: bool,
    **given: Any,
) -> None:
    from atwh.client.webhooks import changes, update_input
    from atwh.errors import AtwhError, printable
    from atwh.output.tables import change_lines, console

    with _webhooks(api_url, token, timeout) as hooks:
        before = find(hooks, webhook_id)
        wants_events = given.get("events") or given.get("add_events") or given.get("remove_events")
        catalogue = _catalogue(hooks) if wants_events else None
        try:
            outcome = hooks.update(before.id, update_input(before, catalogue, **given))
        except AtwhError as e:
            if given.get("url"):  # a new URL is checked as a new webhook's is
                _hint_url_check(e, given["url"])
            raise
        after = outcome.webhook
        if after is None:  # the answer left it out
            after = hooks.get(before.id)
    if as_json:
        out = outcome.as_json()
        out["webhook"] = after.as_json()
        _echo_json(out)
        return
    changed = changes(before, after)
    shown = printable(after.id, 100)
    if not changed:
        typer.echo(f"Nothing changed: webhook {shown} already had those settings.")
        return
    typer.echo(f"Updated webhook {shown}:")
    console().print(change_lines(changed))


SetEvents = Annotated[
    list[str] | None,
    typer.Option(
        "--event",
        "-e",
        metavar="NAME",
        show_default=False,
        help="Subscribe to exactly these events (replaces the list); repeatable.",
    ),
]
AddEvents = Annotated[
    list[str] | None,
    typer.Option("--add-event", metavar="NAME", show_default=False, help="Subscribe to NAME too."),
]
RemoveEvents = Annotated[
    list[str] | None,
    typer.Option(
        "--remove-event", metavar="NAME", show_default=False, help="Stop subscribing to NAME."
    ),
]
SetUrns = Annotated[
    list[str] | None,
    typer.Option(
        "--urn",
        metavar="URN",
        show_default=False,
        help="Exactly these URNs (replaces the list); repeatable.",
    ),
]
Enable = Annotated[bool, typer.Option("--enable", help="Send it events.")]
Disable = Annotated[bool, typer.Option("--disable", help="Stop sending it events.")]


@app.command("update", cls=o.Command)
def update(
    webhook_id: WebhookId,
    url: Url = None,
    event: SetEvents = None,
    add_event: AddEvents = None,
    remove_event: RemoveEvents = None,
    urn: SetUrns = None,
    description: Description = None,
    enable: Enable = False,
    disable: Disable = False,
    as_json: Json = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> None:
    """Change a webhook (updateWebhook), sending only what is given, and show what changed.

    Examples:

      atwh webhooks update wh-history --add-event ticket.updated --description 'tickets'

      atwh webhooks update wh-history --url http://127.0.0.1:8000/webhook --disable
    """
    from atwh.client.webhooks import split_names
    from atwh.errors import UsageError

    if enable and disable:  # (one flag pair would have taken the last one, silently)
        raise UsageError("--enable and --disable disagree: give one of them")
    _update(
        webhook_id,
        api_url,
        token,
        timeout,
        as_json,
        url=url,
        events=split_names(event),
        add_events=split_names(add_event),
        remove_events=split_names(remove_event),
        urns=split_names(urn),
        description=description,
        enabled=True if enable else False if disable else None,
    )


def _switch(enabled: bool) -> Callable[..., None]:
    """`webhooks enable` or `webhooks disable`: one command, told which."""
    verb = "enable" if enabled else "disable"

    def command(
        webhook_id: WebhookId,
        as_json: Json = False,
        api_url: o.ApiUrl = None,
        token: o.Token = None,
        timeout: o.Timeout = 30.0,
    ) -> None:
        _update(webhook_id, api_url, token, timeout, as_json, enabled=enabled)

    what = (
        "Send a webhook events again (updateWebhook with enabled: true)."
        if enabled
        else "Stop sending a webhook events, and keep it (updateWebhook with enabled: false)."
    )
    command.__doc__ = f"{what}\n\nExample:\n\n  atwh webhooks {verb} wh-history\n"
    command.__name__ = verb
    return command


app.command("enable", cls=o.Command)(_switch(True))
app.command("disable", cls=o.Command)(_switch(False))


@app.command("remove", cls=o.Command)
def remove(
    webhook_id: WebhookId,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask; required when not on a terminal.")
    ] = False,
    as_json: Json = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> None:
    """Remove a webhook (removeWebhook): Allthings stops sending it events. Asks first on a
    terminal; elsewhere, --yes is required.

    Example:

      atwh webhooks remove wh-history --yes
    """
    from atwh.cli import context
    from atwh.errors import UsageError, printable

    if not yes and not context.interactive():
        raise UsageError(
            f"not removing webhook {printable(webhook_id, 80)} without --yes "
            "(no terminal to ask for confirmation)"
        )
    with _webhooks(api_url, token, timeout) as hooks:
        hook = find(hooks, webhook_id)
        if not yes:
            what = ", ".join(printable(p, 200) for p in (hook.description, hook.url) if p)
            question = f"Remove webhook {printable(hook.id, 80)}" + (f" ({what})" if what else "")
            if not typer.confirm(question + "?", default=False, err=True):
                _say(f"Kept webhook {printable(hook.id, 80)}; nothing was removed.")
                return
        outcome = hooks.remove(hook.id)
    if as_json:
        _echo_json(outcome.as_json())
        return
    typer.echo(f"Removed webhook {printable(hook.id, 80)}.")


@app.command("events", cls=o.Command)
def events(
    fmt: o.TableOrJson = None,
    as_json: Json = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> None:
    """List the event names a webhook can subscribe to (registerableWebhookEvents).

    Example:

      atwh webhooks events
    """
    from atwh.output.show import show_listing, table_or_json
    from atwh.output.tables import event_type_columns

    mode = table_or_json(fmt, as_json, "webhooks events")
    with _webhooks(api_url, token, timeout) as hooks:
        found = hooks.events()
    if mode == "json":
        _echo_json([e.as_json() for e in found])
        return
    if not found:
        _say("The API lists no registerable events.")
        return
    show_listing(event_type_columns(), found, mode)


@app.command("ping", cls=o.Command)
def ping(
    webhook_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[ID]", click_type=params.WebhookId(), help="The webhook whose URL to ping."
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", metavar="URL", show_default=False, help="Ping this URL instead."),
    ] = None,
    as_json: Json = False,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            click_type=params.Duration("SECONDS", min=0.1),
            show_default=False,
            help="How long to wait for the API, and for the URL: seconds, or a duration "
            "(10s, 1m) [default: 10s]",
        ),
    ] = 10.0,
) -> int:
    """Send a URL the unsigned test event Allthings sends when a webhook is saved, and report
    the answer (code, time, body) and whether registration would accept it (200 only).
    Exits 0 on 200, 1 on any other answer, 6 when there is no answer.

    Examples:

      atwh webhooks ping --url http://127.0.0.1:8000/webhook

      atwh webhooks ping wh-history
    """
    from atwh.client.webhooks import ping as send_ping
    from atwh.core.config import http_url
    from atwh.errors import ExitStatus, UsageError
    from atwh.output.show import print_rich
    from atwh.output.tables import ping_report

    if (webhook_id is None) == (url is None):
        raise UsageError("give a webhook ID or --url URL (one of them)")
    if url is None:
        assert webhook_id is not None
        with _webhooks(api_url, token, timeout) as hooks:
            hook = find(hooks, webhook_id)
        if not hook.url:
            raise UsageError(f"the API gives no URL for webhook {hook.id}")
        url = hook.url
    result = send_ping(http_url("--url", url), timeout)
    if as_json:
        _echo_json(result.as_json())
    else:
        print_rich(ping_report(result), None)
    if result.status_code is None:
        return int(ExitStatus.NETWORK)
    return ExitStatus.OK if result.accepted else ExitStatus.FAILED
