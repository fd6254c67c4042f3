"""Options shared by every command that talks to the API or lists deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from atwh.cli import params

FORMATS = ("table", "json", "ndjson", "csv")  # as atwh.output.export.FORMATS, without rich


CONNECTION = "Connection"
FILTERS = "Filters"
OUTPUT = "Output"

ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        envvar="ATWH_API_URL",
        metavar="URL",
        rich_help_panel=CONNECTION,
        help="Webhooks API endpoint [default: https://webhooks.allthings.me/]",
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ATWH_TOKEN",
        metavar="TOKEN",
        rich_help_panel=CONNECTION,
        help="Bearer access token; without it, OAuth with ALLTHINGS_OAUTH_* variables.",
        show_default=False,
        show_envvar=True,
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        envvar="ATWH_TIMEOUT",
        click_type=params.Duration("SECONDS"),
        rich_help_panel=CONNECTION,
        help="How long each API request may take in all, answer included (up to 4 tries): "
        "seconds, or a duration (30s, 2m) [default: 30s]",
        show_default=False,
    ),
]
Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        rich_help_panel=FILTERS,
        metavar="WHEN",
        help="Only deliveries created after WHEN: 90s, 15m, 2h, 7d, 1w ago, "
        "or an ISO date/datetime.",
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        "--until",
        rich_help_panel=FILTERS,
        metavar="WHEN",
        help="Only deliveries created before WHEN (same forms as --since).",
    ),
]
EventName = Annotated[
    list[str] | None,
    typer.Option(
        "--event",
        "-e",
        rich_help_panel=FILTERS,
        metavar="NAME",
        help="Only these event names; globs like 'ticket.*'. Repeatable.",
    ),
]
StatusCode = Annotated[
    list[str] | None,
    typer.Option(
        "--status-code",
        "-c",
        rich_help_panel=FILTERS,
        metavar="CODE",
        help="Only these HTTP answers: 500, 5xx, or 'none' (no answer). Repeatable.",
    ),
]
Failed = Annotated[
    bool,
    typer.Option(
        "--failed",
        rich_help_panel=FILTERS,
        help="Only failed attempts (no answer, not 2xx, or status FAILED).",
    ),
]
Limit = Annotated[
    int | None,
    typer.Option(
        "--limit",
        "-n",
        click_type=params.Number("N"),
        rich_help_panel=FILTERS,
        help="At most N: the newest N in a table [default: 50]; the first N the API "
        "sends that match in an export [default: all].",
        show_default=False,
    ),
]


def webhook_ids_argument(what: str) -> Any:
    """WEBHOOK_ID... of a command that reads several webhooks' logs, or the configured ones."""
    return typer.Argument(
        metavar="WEBHOOK_ID...",
        help=f"{what} [default: ATWH_WEBHOOK_ID, else the config file's 'webhooks']",
        show_default=False,
    )


All = Annotated[
    bool,
    typer.Option(
        "--all",
        rich_help_panel=FILTERS,
        help="Show every match in the table, not only the newest 50.",
    ),
]


# -- sending: replay, inbox replay, reconcile --replay --------------------------------------

SEND = "Sending"

To = Annotated[
    str | None,
    typer.Option(
        "--to",
        metavar="URL",
        rich_help_panel=SEND,
        show_default=False,
        help="Send here instead of the webhook's own URL.",
    ),
]
Secret = Annotated[
    str | None,
    typer.Option(
        "--secret",
        metavar="SECRET",
        rich_help_panel=SEND,
        show_default=False,
        help="Sign with this secret [default: the webhook's, read from the API]",
    ),
]
Concurrency = Annotated[
    int,
    typer.Option(
        "--concurrency",
        click_type=params.Number("N", min=1, max=256),
        rich_help_panel=SEND,
        help="Requests in flight at once (1 keeps the order strictly).",
    ),
]
Rate = Annotated[
    float | None,
    typer.Option(
        "--rate",
        click_type=params.Rate(),
        rich_help_panel=SEND,
        show_default=False,
        help="At most N requests a second (N/s, or N/m a minute).",
    ),
]


def answer_timeout(help: str) -> Any:
    """--timeout of a command that sends events: how long each answer may take."""
    return typer.Option(
        "--timeout",
        envvar="ATWH_TIMEOUT",
        click_type=params.Duration("SECONDS", min=0.1),
        show_default=False,
        help=help,
    )


RequestTimeout = Annotated[
    float,
    answer_timeout(
        "How long to wait for each answer, of the API and of each event sent: seconds, "
        "or a duration (30s, 2m) [default: 30s]"
    ),
]
DryRun = Annotated[
    bool,
    typer.Option("--dry-run", rich_help_panel=SEND, help="List what would be sent; send nothing."),
]
Yes = Annotated[
    bool,
    typer.Option(
        "--yes",
        "-y",
        rich_help_panel=SEND,
        help="Send more than 20 events to a host other than loopback without asking.",
    ),
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        rich_help_panel=SEND,
        help="Send events the ledger says were already replayed with a 2xx.",
    ),
]
LedgerPath = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        metavar="PATH",
        show_default=False,
        help="The replay ledger [default: replays.sqlite3 in the user data dir]",
    ),
]
Save = Annotated[
    str | None,
    typer.Option(
        "--save",
        metavar="DIR",
        rich_help_panel=SEND,
        show_default=False,
        help="Write each request (body, headers) into DIR instead of sending it.",
    ),
]
As = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="curl",
        rich_help_panel=SEND,
        show_default=False,
        help="Print each request as a curl command instead of sending it.",
    ),
]


# -- serving: serve, emulator -----------------------------------------------------------------

Host = Annotated[str, typer.Option("--host", metavar="HOST", help="Address to listen on.")]


def port_option(envvar: str | None = None) -> Any:
    """--port of a command that listens (0: any free one), from `envvar` too if given."""
    return typer.Option(
        "--port",
        "-p",
        envvar=envvar,
        click_type=params.Number("PORT", min=0, max=65535),
        help="Port to listen on (0: any free one).",
    )


def format_option(formats: Sequence[str], default: str) -> Any:
    """The --format option of a command whose output comes in `formats`, named in its help
    and completed by the shell."""
    either = ", ".join(formats[:-1]) + " or " + formats[-1]
    return typer.Option(
        "--format",
        "-f",
        rich_help_panel=OUTPUT,
        metavar="FORMAT",
        autocompletion=lambda: list(formats),
        help=f"{either} [default: {default}]",
        show_default=False,
    )


PIPED = "table; tab-separated lines when piped"
Format = Annotated[
    str | None,
    format_option(FORMATS, f"from --output's extension, else a {PIPED.replace(';', ',')}"),
]
Json = Annotated[
    bool,
    typer.Option("--json", rich_help_panel=OUTPUT, help="Same as --format json."),
]
JsonOnly = Annotated[  # --json of a command that has no --format
    bool,
    typer.Option("--json", rich_help_panel=OUTPUT, help="Print it as JSON."),
]
ReceivedSince = Annotated[
    str | None,
    typer.Option(
        "--since",
        rich_help_panel=FILTERS,
        metavar="WHEN",
        help="Only requests received after WHEN: 90s, 15m, 2h, 7d, 1w ago, "
        "or an ISO date/datetime.",
    ),
]
ReceivedUntil = Annotated[
    str | None,
    typer.Option(
        "--until",
        rich_help_panel=FILTERS,
        metavar="WHEN",
        help="Only requests received before WHEN (same forms as --since).",
    ),
]
TableOrJson = Annotated[  # --format of a command that prints a table or JSON, nothing else
    str | None, format_option(("table", "json"), PIPED)
]
Columns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        rich_help_panel=OUTPUT,
        metavar="NAMES",
        help="Show only these columns, in this order, whatever the width (comma-separated, "
        "as in the piped header: created,event,delivery).",
    ),
]
Output = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        rich_help_panel=OUTPUT,
        metavar="FILE",
        help="Write to FILE instead of stdout (written whole or not at all).",
    ),
]


class Command(TyperCommand):
    """A command whose usage line reads `atwh deliveries [OPTIONS] WEBHOOK_ID`, without the
    braces Typer puts around required arguments."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [
            p[1:-1] if p.startswith("{") and p.endswith("}") else p
            for p in super().collect_usage_pieces(ctx)
        ]


SECRET_ENV = ("ALLTHINGS_WEBHOOK_SECRET", "SHARED_WEBHOOK_SECRET")  # --secret's, in order


def checked_secret(secret: str | None) -> str | None:
    """--secret as given, where empty is an error, never "no secret": `--secret ''`, and an
    environment variable set to nothing (which the option parser takes for unset)."""
    import os

    from atwh.errors import UsageError

    if secret is not None and secret.strip():
        return secret
    for name in SECRET_ENV:
        if name in os.environ:
            if os.environ[name] == (secret or "") and not os.environ[name].strip():
                raise UsageError(
                    f"{name} is set but empty: set it to the webhook's secret, or unset it"
                )
            break
    if secret is not None:
        raise UsageError("--secret is empty: give the webhook's secret, or leave --secret out")
    return None


def webhook_option(help: str, panel: str | None = None) -> Any:
    """--webhook WEBHOOK_ID of a command that reads what it needs of a webhook from the API
    (serve: its secret; trigger and check: its URL, secret and events)."""
    return typer.Option(
        "--webhook",
        metavar="WEBHOOK_ID",
        click_type=params.WebhookId(),
        rich_help_panel=panel,
        show_default=False,
        help=help,
    )


# -- signing: trigger, sign, verify, inbox verify -------------------------------------------

SECRET_VARIABLES = ["ALLTHINGS_WEBHOOK_SECRET", "SHARED_WEBHOOK_SECRET"]
# what a command that needs a secret says when it has none
NO_SECRET = "give the webhook's --secret (or set ALLTHINGS_WEBHOOK_SECRET or SHARED_WEBHOOK_SECRET)"

SigningSecret = Annotated[
    str | None,
    typer.Option(
        "--secret",
        metavar="SECRET",
        envvar=SECRET_VARIABLES,
        show_default=False,
        help="The webhook's shared secret, to sign with.",
    ),
]
BodyFile = Annotated[
    str, typer.Argument(metavar="[FILE|-]", help="The body's bytes [default: stdin]")
]
Timestamp = Annotated[
    str | None,
    typer.Option(
        "--timestamp",
        metavar="MS",
        show_default=False,
        help="The signature timestamp: milliseconds since 1970, or relative to now (-10m, "
        "+30s) [default: the time each request is sent]",
    ),
]
Tolerance = Annotated[
    float,
    typer.Option(
        "--tolerance",
        click_type=params.Duration(),
        show_default=False,
        help="Oldest timestamp accepted, as 'atwh serve --tolerance' (30s ahead allowed too) "
        "[default: 2m]",
    ),
]
