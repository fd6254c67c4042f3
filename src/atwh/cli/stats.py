"""`atwh stats [WEBHOOK_ID ...]`: how healthy a webhook is, from its own delivery log."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params
from atwh.errors import ExitStatus


def stats(
    webhook_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="WEBHOOK_ID...",
            help="Webhooks to measure, side by side [default: ATWH_WEBHOOK_ID, else the "
            "config file's 'webhooks']",
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        str,
        typer.Option(
            "--by",
            metavar="day|hour|event|code",
            help="Chart attempts per day or per hour, or break them down by event name or "
            "HTTP code.",
        ),
    ] = "day",
    fail_under: Annotated[
        str | None,
        typer.Option(
            "--fail-under",
            metavar="RATE",
            help="Exit 1 when the event success rate is under RATE (0.99 or 99%).",
        ),
    ] = None,
    fail_over_lag: Annotated[
        float | None,
        typer.Option(
            "--fail-over-lag",
            click_type=params.Duration(),
            help="Exit 1 when the p95 delivery lag is over DURATION (30s, 5m, 1h).",
        ),
    ] = None,
    since: o.Since = "7d",
    until: o.Until = None,
    event: o.EventName = None,
    status_code: o.StatusCode = None,
    fmt: o.TableOrJson = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", rich_help_panel=o.OUTPUT, help="Every number as one JSON object."),
    ] = False,
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
    import sys

    from atwh.cli.context import client_factory, webhook_ids_from
    from atwh.client.api import fetch_pages
    from atwh.client.filters import DeliveryFilter
    from atwh.errors import UsageError
    from atwh.observe.stats import BREAKDOWNS, BUCKETS, Stats, Window, check_bars, odd_dates_note
    from atwh.output.progress import Progress
    from atwh.output.show import print_rich, show_listing, table_or_json

    mode = table_or_json(fmt, as_json, "stats", output)
    by = by.strip().lower()
    if by not in BUCKETS + BREAKDOWNS:
        raise UsageError(f"--by {by!r}: use day, hour, event or code")
    rate = _rate(fail_under) if fail_under is not None else None
    flt = DeliveryFilter.from_options(since, until, event or [], status_code or [])
    ids = webhook_ids_from(webhook_ids)
    progress = Progress()
    # stats count only the attempts in the window: paging may stop at its start
    make_client = client_factory(api_url, token, timeout)
    window = Window(flt.since, flt.until)
    result = Stats(ids, by if by in BUCKETS else "day", window)
    try:
        for page in fetch_pages(ids, make_client, on_page=progress, since=flt.since):
            result.add_page(page, flt)
    finally:
        progress.stop()
    summary = result.summary(flt.since, flt.until)

    if mode == "json":
        from atwh.output.export import open_output
        from atwh.output.stats import stats_json

        with open_output(output) as out:
            out.write(stats_json(summary))
    elif mode == "tsv" and by in BREAKDOWNS:  # piped: the breakdown, one line a row
        from atwh.output.stats import breakdown_columns, breakdown_rows

        rows = breakdown_rows(summary, by)
        if rows:
            show_listing(breakdown_columns(by, len(ids) > 1), rows, mode)
    else:
        from atwh.output.stats import stats_view

        print_rich(stats_view(summary, by), output)
    odd = odd_dates_note(window)
    if odd:
        sys.stderr.write(f"Warning: {odd}\n")
    if not any(w["attempts"] for w in summary["webhooks"]):
        sys.stderr.write("No attempts in the window: widen --since, or check the filters.\n")
    missed, unchecked = check_bars(summary, rate, fail_over_lag)
    for line in unchecked:
        sys.stderr.write(f"Warning: {line}\n")
    for line in missed:
        sys.stderr.write(f"Below the bar: {line}\n")
    return ExitStatus.FAILED if missed else ExitStatus.OK


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
