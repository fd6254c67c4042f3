"""The floor for `atwh failures --format csv`: the least a script can do for the same CSV.

    python bench/baseline_export.py URL WEBHOOK_ID OUT.csv [--since-days 30]
    python bench/baseline_export.py URL WEBHOOK_ID - --floor   (download and decode only)

Pages through QueryWebhookDeliveriesPage with one httpx.Client (the same POST body shape
as atwh: {"query": <queries/QueryWebhookDeliveriesPage.graphql>, "variables": {id, first,
after}}), keeps the failed attempts created within --since-days (atwh's rule: status
FAILED, or an answer outside 2xx, or no answer) and writes them with the csv module, in
atwh's columns, one page at a time. No retries, no checks, no models: just the work.
"""

from __future__ import annotations

import argparse
import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

QUERY = Path(__file__).resolve().parents[1] / "queries" / "QueryWebhookDeliveriesPage.graphql"
COLUMNS = (
    "id",
    "created_date",
    "delivery_date",
    "status",
    "status_code",
    "event_id",
    "event_name",
    "event_urn",
    "message",
    "response_body",
    "webhook_id",
    "failed",
    "lag_ms",
    "event_created_date",
    "retry_id",
)


def _dt(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


PLAIN_COLUMNS = (
    "id",
    "created_date",
    "delivery_date",
    "status",
    "status_code",
    "event_id",
    "event_name",
    "message",
    "response_body",
    "retry_id",
)


def plain(url: str, webhook_id: str, out_path: str) -> int:
    """The issue's floor: the same pages, 10 columns with the csv module, no filtering."""
    query = QUERY.read_text(encoding="utf-8")
    after = None
    rows = 0
    with (
        httpx.Client(headers={"Authorization": "Bearer bench"}, timeout=30) as http,
        open(out_path, "w", encoding="utf-8", newline="") as f,
    ):
        out = csv.writer(f, lineterminator="\n")
        out.writerow(PLAIN_COLUMNS)
        while True:
            variables = {"id": webhook_id, "first": 100}
            if after is not None:
                variables["after"] = after
            response = http.post(url, json={"query": query, "variables": variables})
            response.raise_for_status()
            connection = response.json()["data"]["webhook"]["deliveries"]
            for n in connection["nodes"]:
                result = n.get("result") or {}
                event = n.get("event") or {}
                retry = n.get("retry") or {}
                out.writerow(
                    (
                        n["id"],
                        n.get("createdDate"),
                        n.get("deliveryDate"),
                        n.get("status"),
                        result.get("statusCode"),
                        event.get("id"),
                        event.get("name"),
                        result.get("message"),
                        result.get("body"),
                        retry.get("id"),
                    )
                )
                rows += 1
            page_info = connection["pageInfo"]
            if not page_info["hasNextPage"]:
                return rows
            after = page_info["endCursor"]


def floor(url: str, webhook_id: str) -> int:
    """The floor of every reading command: the same pages, only downloaded (one
    httpx.Client) and decoded (orjson); nothing read out of them, nothing written."""
    import orjson

    query = QUERY.read_text(encoding="utf-8")
    after = None
    nodes = 0
    with httpx.Client(headers={"Authorization": "Bearer bench"}, timeout=30) as http:
        while True:
            variables = {"id": webhook_id, "first": 100}
            if after is not None:
                variables["after"] = after
            response = http.post(url, json={"query": query, "variables": variables})
            response.raise_for_status()
            connection = orjson.loads(response.content)["data"]["webhook"]["deliveries"]
            nodes += len(connection["nodes"])
            page_info = connection["pageInfo"]
            if not page_info["hasNextPage"]:
                return nodes
            after = page_info["endCursor"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("webhook_id")
    parser.add_argument("out")
    parser.add_argument("--since-days", type=float, default=30)
    parser.add_argument(
        "--plain", action="store_true", help="10 columns, no filtering (the issue's floor)"
    )
    parser.add_argument(
        "--floor", action="store_true", help="only download and decode the pages (OUT unused)"
    )
    args = parser.parse_args()
    if args.floor:
        print(floor(args.url, args.webhook_id))
        return
    if args.plain:
        print(plain(args.url, args.webhook_id, args.out))
        return

    query = QUERY.read_text(encoding="utf-8")
    since = datetime.now(UTC) - timedelta(days=args.since_days)
    after = None
    rows = 0
    with (
        httpx.Client(headers={"Authorization": "Bearer bench"}, timeout=30) as http,
        open(args.out, "w", encoding="utf-8", newline="") as f,
    ):
        out = csv.writer(f, lineterminator="\n")
        out.writerow(COLUMNS)
        while True:
            variables = {"id": args.webhook_id, "first": 100}
            if after is not None:
                variables["after"] = after
            response = http.post(args.url, json={"query": query, "variables": variables})
            response.raise_for_status()
            connection = response.json()["data"]["webhook"]["deliveries"]
            for n in connection["nodes"]:
                result = n.get("result")
                code = result.get("statusCode") if result else None
                status = n.get("status") or ""
                if status.upper() == "FAILED":
                    failed = True
                elif result is not None:
                    failed = code is None or not 200 <= code <= 299
                else:
                    failed = status.upper() != "PENDING"
                created = _dt(n.get("createdDate"))
                if not failed or created is None or created < since:
                    continue
                delivered = _dt(n.get("deliveryDate"))
                lag = (delivered - created).total_seconds() if delivered else None
                event = n.get("event") or {}
                retry = n.get("retry")
                out.writerow(
                    (
                        n["id"],
                        n.get("createdDate"),
                        n.get("deliveryDate"),
                        n.get("status"),
                        code,
                        event.get("id"),
                        event.get("name"),
                        event.get("urn"),
                        result.get("message") if result else None,
                        result.get("body") if result else None,
                        args.webhook_id,
                        "true",
                        round(lag * 1000) if lag is not None else None,
                        event.get("createdDate"),
                        retry.get("id") if retry else None,
                    )
                )
                rows += 1
            page_info = connection["pageInfo"]
            if not page_info["hasNextPage"]:
                break
            after = page_info["endCursor"]
    print(rows)


if __name__ == "__main__":
    main()
