"""`atwh emulator`: a Webhooks API on this machine that really delivers, and `emit`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params

if TYPE_CHECKING:
    pass


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
        help="Divide every retry delay by N (7 days of retries in 6 s at 100000) [default: 1]",
        show_default=False,
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
    # within 80 columns: `atwh emulator emit` finds the emulator by ATWH_API_URL as well
    env = f"ATWH_API_URL={url} ATWH_TOKEN={shlex.quote(token) if token else 'dev'}"
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
    str | None,
    typer.Option(
        "--emulator-url",
        "--api-url",
        metavar="URL",
        envvar="ATWH_EMULATOR_URL",
        show_envvar=True,
        help="The emulator to emit on, on this machine (never the real API) [default: "
        "ATWH_API_URL when it is a loopback URL, else http://127.0.0.1:4000/]",
        show_default=False,
    ),
]


# the token emit sends when none is set: an emulator started without --token takes any
EMULATOR_TOKEN = "atwh-emulator"


@app.command("emit", cls=o.Command)
def emit(
    name: EmitName,
    urn: EmitUrn,
    data: EmitData = "{}",
    as_json: EmitAsJson = False,
    emulator_url: EmitEmulatorUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> None:
    """Emit an event on the local emulator (--emulator-url, default http://127.0.0.1:4000/):
    it is delivered to every enabled webhook subscribed to its name and URN.

    Example:

      atwh emulator emit ticket.updated --urn 'urn:allthings:app:a1:tickets' --data '{"delta": {}}'
    """
    import json
    import os

    from atwh.cli.context import client_factory
    from atwh.client import emit as e
    from atwh.client.webhooks import Webhooks, check_events, check_urns
    from atwh.core import jsontext
    from atwh.errors import ApiError, AuthError, NetworkError, UsageError, printable

    url = e.emulator_url(emulator_url)
    try:
        value = jsontext.loads(data)
    except ValueError as err:
        raise UsageError(f"--data is not JSON: {err}") from None
    check_events([name], None, "NAME")  # the form only: emit takes any name, as Allthings'
    check_urns([urn])
    placeholder: list[str] = []  # what a suggested command needs to be let in
    try:
        make_client = client_factory(url, token, timeout)
    except AuthError:  # no credentials: the emulator (on this machine) takes any token
        make_client = client_factory(url, EMULATOR_TOKEN, timeout)
        placeholder = ["--token", EMULATOR_TOKEN]
    with make_client() as client:
        try:
            answer = client.execute("EmulatorEmitEvent", {"name": name, "urn": urn, "data": value})
        except NetworkError:
            raise e.not_running(url) from None
        result = answer.get("emitEvent")
        if not isinstance(result, dict):
            raise ApiError("the API did not answer emitEvent (is --api-url an atwh emulator?)")
        note = None
        if result.get("webhooks") == 0:
            reach = [] if os.environ.get("ATWH_API_URL") == url else ["--api-url", url]
            reach += placeholder
            catalogue = Webhooks(client).events
            note = e.nobody_subscribes(
                client, name, urn, reach, lambda: [t.name for t in catalogue()], e.answers
            )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        event = result.get("event") or {}
        typer.echo(
            f"{printable(event.get('name'), 100)} {printable(event.get('id'), 100)}: "
            f"{printable(result.get('message'), 200)}"
        )
    if note:
        from atwh.output.tables import wrapped

        typer.echo(wrapped(note), err=True)
