"""Options shared by every command that talks to the API or lists deliveries."""

from __future__ import annotations

from typing import Annotated

import typer

CONNECTION = "Connection"
FILTERS = "Filters"
OUTPUT = "Output"

ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        envvar="ATWH_API_URL",
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
        min=0.1,
        rich_help_panel=CONNECTION,
        help="Seconds each API request may take in all, answer included (up to 4 tries).",
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
        min=1,
        rich_help_panel=FILTERS,
        help="At most N deliveries (the first N the API sends that match).",
    ),
]
Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        rich_help_panel=OUTPUT,
        metavar="FORMAT",
        help="table, json, ndjson or csv [default: from --output's extension, else table]",
        show_default=False,
    ),
]
Json = Annotated[
    bool,
    typer.Option("--json", rich_help_panel=OUTPUT, help="Same as --format json."),
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
