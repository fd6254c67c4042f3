"""`atwh stats [WEBHOOK_ID ...]`: how healthy a webhook is, from its own delivery log."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params

WebhookIds = Annotated[
    list[str] | None, o.webhook_ids_argument("Webhooks to measure, side by side")
]
By = Annotated[
    str,
    typer.Option(
        "--by",
        metavar="day|hour|event|code",
        help="Chart attempts per day or per hour, or break them down by event name or HTTP code.",
    ),
]
FailUnder = Annotated[
    str | None,
    typer.Option(
        "--fail-under",
        metavar="RATE",
        help="Exit 1 when the event success rate is under RATE (0.99 or 99%).",
    ),
]
FailOverLag = Annotated[
    float | None,
    typer.Option(
        "--fail-over-lag",
        click_type=params.Duration(),
        help="Exit 1 when the p95 delivery lag is over DURATION (30s, 5m, 1h).",
    ),
]
Json = Annotated[
    bool,
    typer.Option("--json", rich_help_panel=o.OUTPUT, help="Every number as one JSON object."),
]


def stats(
    webhook_ids: WebhookIds = None,
    by: By = "day",
    fail_under: FailUnder = None,
    fail_over_lag: FailOverLag = None,
    since: o.Since = "7d",
    until: o.Until = None,
    event: o.EventName = None,
    status_code: o.StatusCode = None,
    fmt: o.TableOrJson = None,
    as_json: Json = False,
    output: o.Output = None,
    api_url: o.ApiUrl = None,
    token: o.Token = None,
    timeout: o.Timeout = 30.0,
) -> int:
    """Measure a webhook's health: success rates, retries, answers, delivery lag, time to
    recovery, what still fails, and attempts per day as a chart.

    Percentiles are exact (nearest rank). With --fail-under or --fail-over-lag it is a
    check for cron and CI: exit 1, with one line per bar missed.

    Examples:

      atwh stats wh-history --since 30d

      atwh stats wh-history --by hour --since 1d

      atwh stats wh-history --fail-under 0.99 --fail-over-lag 5m --json
    """
    from atwh.cli.context import client_factory, webhook_ids_from
    from atwh.client.filters import DeliveryFilter
    from atwh.errors import UsageError
    from atwh.observe.stats import BREAKDOWNS, BUCKETS
    from atwh.output.show import table_or_json
    from atwh.output.stats import measure

    mode = table_or_json(fmt, as_json, "stats", output)
    by = by.strip().lower()
    if by not in BUCKETS + BREAKDOWNS:
        raise UsageError(f"--by {by!r}: use day, hour, event or code")
    rate = _rate(fail_under) if fail_under is not None else None
    flt = DeliveryFilter.from_options(since, until, event or [], status_code or [])
    ids = webhook_ids_from(webhook_ids)
    make_client = client_factory(api_url, token, timeout)
    return measure(ids, make_client, flt, by, mode, output, (rate, fail_over_lag))


def _rate(text: str) -> float:
    from atwh.errors import UsageError

    s = text.strip()
    try:
        value = float(s[:-1]) / 100 if s.endswith("%") else float(s)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise UsageError(f"--fail-under {text!r}: give a rate from 0 to 1 (0.99) or a percentage")
    return value
