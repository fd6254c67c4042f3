"""`atwh emulator`: a Webhooks API on this machine that really delivers, and `emit`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params

if TYPE_CHECKING:
    from atwh.client.api import ApiClient

DEFAULT_EMULATOR_URL = "http://127.0.0.1:4000/"

app = typer.Typer(
    help="Run a Webhooks API emulator that really delivers events; emit events to it.",
    invoke_without_command=True,
)


Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        show_default=False,
        help="The only bearer token accepted [default: any non-empty token]",
    ),
]
TimeScale = Annotated[
    float,
    typer.Option(
        "--time-scale",
        click_type=params.Number("N", whole=False, min=1.0),
        help="Divide every retry delay by N (7 days of retries in 6 s at 100000).",
    ),
]
AttemptTimeout = Annotated[
    float,
    typer.Option(
        "--attempt-timeout",
        click_type=params.Duration(),
        show_default=False,
        help="How long a delivery attempt may take in all, its answer included [default: 10s]",
    ),
]
History = Annotated[
    int,
    typer.Option(
        "--history",
        click_type=params.Number("N", min=0),
        help="Start with N realistic deliveries over the last 30 days, on webhook wh-history.",
    ),
]
Seed = Annotated[
    int | None,
    typer.Option("--seed", metavar="N", help="Seed for --history, for repeatable data."),
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH",
        show_default=False,
        help="Keep the state in SQLite across restarts [default: in memory]",
    ),
]


@app.callback(invoke_without_command=True)
def emulator(
    ctx: typer.Context,
    host: o.Host = "127.0.0.1",
    port: Annotated[int, o.port_option()] = 4000,
    token: Token = None,
    time_scale: TimeScale = 1.0,
    attempt_timeout: AttemptTimeout = 10.0,
    history: History = 0,
    seed: Seed = None,
    db: Db = None,
) -> None:
    """Serve the Webhooks API on this machine: register webhooks, emit events, watch them
    delivered with signatures and retried, then query deliveries as from Allthings.

    Examples:

      atwh emulator --port 4000 --time-scale 1000 --history 500 --seed 7

      atwh emulator emit ticket.created --urn 'urn:allthings:app:a1:tickets' --data '{"id": 1}'
    """
    if ctx.invoked_subcommand is not None:
        return
    import shlex
    from pathlib import Path

    from atwh import server
    from atwh.cli.context import after_ctrl_c
    from atwh.emulator import EmulatorSettings, create_app
    from atwh.emulator.history import DEMO_WEBHOOK_ID
    from atwh.output.show import plural

    def say(line: str) -> None:
        typer.echo(line, err=True)

    settings = EmulatorSettings(
        token=token,
        time_scale=time_scale,
        attempt_timeout=attempt_timeout,
        db=Path(db) if db else None,
        history=history,
        seed=seed,
        log=say,
    )
    sock = server.listen(host, port)
    app_ = create_app(settings)
    url = server.url_of(sock, "/")
    lines = [
        f"atwh emulator: the Webhooks API at {url}",
        f"  token:     {'exactly --token' if token else 'any non-empty bearer token'}",
        f"  state:     {settings.db or 'in memory'}",
        "  retries:   7 days of back-off"
        + (f", {time_scale:g}x faster" if time_scale != 1 else ""),
    ]
    if history:
        lines.append(f"  history:   {history} deliveries on webhook {DEMO_WEBHOOK_ID}")
    env = f"ATWH_API_URL={url} ATWH_TOKEN={shlex.quote(token) if token else 'dev'}"
    if url != DEFAULT_EMULATOR_URL:  # where `atwh emulator emit` looks
        env += f" ATWH_EMULATOR_URL={url}"
    lines.append(f"  try:       export {env}")
    lines.append(
        "             atwh webhooks events; atwh deliveries "
        + (DEMO_WEBHOOK_ID if history else "<webhook id>")
    )
    lines.append("  stop with Ctrl-C")
    counted = server.Counted(app_)
    with server.signals_held():  # Ctrl-C from the banner on stops it, with the summary
        say("\n".join(lines))
        signals = server.run(counted, sock)
    say(
        f"{after_ctrl_c(signals)}Stopped after {plural(counted.requests, 'request')}; "
        f"state: {settings.db or 'in memory, gone now'}"
    )


EmitName = Annotated[
    str, typer.Argument(metavar="NAME", help="The event name, e.g. ticket.created.")
]
EmitUrn = Annotated[
    str,
    typer.Option(
        "--urn",
        metavar="URN",
        help="The event's URN, e.g. urn:allthings:app:APP_ID:tickets.",
    ),
]
EmitData = Annotated[
    str, typer.Option("--data", metavar="JSON", help="The event's data, a JSON value.")
]
EmitAsJson = Annotated[bool, typer.Option("--json", help="Print the API's answer as JSON.")]
EmitEmulatorUrl = Annotated[
    str,
    typer.Option(
        "--emulator-url",
        "--api-url",
        metavar="URL",
        envvar="ATWH_EMULATOR_URL",
        show_envvar=True,
        help="The emulator to emit on (never the real API).",
    ),
]


@app.command("emit", cls=o.Command)
def emit(
    name: EmitName,
    urn: EmitUrn,
    data: EmitData = "{}",
    as_json: EmitAsJson = False,
    emulator_url: EmitEmulatorUrl = DEFAULT_EMULATOR_URL,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> None:
    """Emit an event on the local emulator (--emulator-url, default http://127.0.0.1:4000/):
    it is delivered to every enabled webhook subscribed to its name and URN.

    Example:

      atwh emulator emit ticket.updated --urn 'urn:allthings:app:a1:tickets' --data '{"delta": {}}'
    """
    import json

    from atwh.cli.context import client_factory
    from atwh.core import jsontext
    from atwh.errors import ApiError, UsageError, printable

    try:
        value = jsontext.loads(data)
    except ValueError as e:
        raise UsageError(f"--data is not JSON: {e}") from None
    with client_factory(emulator_url, token, timeout)() as client:
        answer = client.execute("EmulatorEmitEvent", {"name": name, "urn": urn, "data": value})
        result = answer.get("emitEvent")
        if not isinstance(result, dict):
            raise ApiError("the API did not answer emitEvent (is --api-url an atwh emulator?)")
        nobody = result.get("webhooks") == 0
        note = _nobody_subscribes(client, name, urn, emulator_url) if nobody else None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        event = result.get("event") or {}
        typer.echo(
            f"{printable(event.get('name'), 100)} {printable(event.get('id'), 100)}: "
            f"{printable(result.get('message'), 200)}"
        )
    if note:
        typer.echo(note, err=True)


def _nobody_subscribes(client: ApiClient, name: str, urn: str, emulator_url: str) -> str:
    """Says that no webhook got the event, and the command that would change that: enable
    the app's webhook that subscribes, add the event to one that covers the URN, or create
    one."""
    import os
    import re
    import shlex
    from fnmatch import fnmatchcase

    from atwh.client.webhooks import Webhooks
    from atwh.errors import AtwhError, printable

    app = re.match(r"^urn:allthings:app:([^:]+):", urn)
    wanted = f"urn:allthings:app:{app.group(1)}:*" if app else urn
    api_url = [] if os.environ.get("ATWH_API_URL") == emulator_url else ["--api-url", emulator_url]
    hooks = []
    if app:
        try:
            hooks = list(Webhooks(client).matching(app_id=app.group(1)))
        except AtwhError:
            pass  # suggest a new webhook, then
    covering = [h for h in hooks if any(fnmatchcase(urn, u) for u in h.urns)]
    disabled = [h for h in covering if name in h.events and h.enabled is False]
    lacking = [h for h in covering if name not in h.events]
    if disabled:
        why = f"webhook {printable(disabled[0].id, 80)} subscribes to it but is disabled"
        command = ["atwh", "webhooks", "enable", disabled[0].id, *api_url]
    elif lacking:
        why = f"webhook {printable(lacking[0].id, 80)} covers the URN but not the event"
        command = ["atwh", "webhooks", "update", lacking[0].id, "--add-event", name, *api_url]
    else:
        why = "this would subscribe one (with 'atwh serve' running)"
        command = ["atwh", "webhooks", "create", "--url", "http://127.0.0.1:8000/webhook"]
        command += ["--event", name, "--urn", wanted, *api_url]
    return (
        f"No enabled webhook subscribes to {printable(name, 100)} on {printable(urn, 200)}: "
        f"the event was recorded and delivered nowhere; {why}:\n  "
        + " ".join(shlex.quote(printable(part, 300)) for part in command)
    )
