"""A stand-in for the Webhooks GraphQL API, for benchmarks only (see bench/README.md).

    python bench/fake_api.py --count 100000

A bare asyncio HTTP/1.1 server (keep-alive, Content-Length bodies: enough for httpx, and
cheap, so that the clients' own costs show). Listens on 127.0.0.1 on a port the OS picks,
prints `PORT <n> ...` on stdout once ready, and answers every POST with a page of 100
deliveries, built as bytes before it starts, chosen by `variables.after` (a cursor like
"c300": the deliveries after the 300th). `GET /stats` gives the number of GraphQL requests
served so far. It stops on SIGTERM or when its stdin closes (so it never outlives the
benchmark that started it).

Stdlib only. Deterministic: the same --count and --seed give the same deliveries, dated
within the last 7 days of the moment it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import sys
import threading
from datetime import UTC, datetime, timedelta

PAGE_SIZE = 100
WEBHOOK_ID = "wh-bench-0001"
EVENTS = ("ticket.created", "ticket.updated", "ticket.closed", "user.created", "booking.created")


# The form of the deliveries' dates (--dates): JavaScript's, which Allthings sends today,
# and the other forms the API could send (ISO 8601 with an offset, epoch milliseconds).
DATE_FORMS = ("z", "offset", "micro", "epoch")
DATE_FORM = "z"


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _date(t: datetime) -> str | int:
    """A delivery's date in DATE_FORM: `2026-11-30T10:00:00.000Z` (z),
    `2026-11-30T10:00:00.000+00:00` (offset), `2026-11-30T10:00:00.123456+00:00` (micro),
    or 1764496800000 (epoch)."""
    if DATE_FORM == "offset":
        return t.isoformat(timespec="milliseconds")
    if DATE_FORM == "micro":
        return t.isoformat(timespec="microseconds")
    if DATE_FORM == "epoch":
        return round(t.timestamp() * 1000)
    return _iso(t)


def make_node(
    i: int, rng: random.Random, now: datetime, failed_only: bool = False
) -> dict[str, object]:
    """One delivery node, as the API sends it. About half are failures (all with
    `failed_only`)."""
    created = now - timedelta(seconds=rng.uniform(60, 7 * 86400 - 60))
    delivered = created + timedelta(milliseconds=rng.randint(20, 4000))
    event_created = created - timedelta(milliseconds=rng.randint(1, 500))
    name = EVENTS[i % len(EVENTS)]
    ticket = f"{rng.getrandbits(48):012x}"
    payload = json.dumps(
        {
            "id": ticket,
            "type": name,
            "app": "5d2f1c0e8a4b9c001234abcd",
            "property": "5d2f1c0e8a4b9c00deadbeef",
            "unit": f"unit-{rng.randint(1, 999):03d}",
            "title": "Heating broken in flat " + str(rng.randint(1, 99)),
            "status": rng.choice(("open", "waiting-for-customer", "closed")),
            "createdBy": {"id": f"{rng.getrandbits(48):012x}", "type": "tenant"},
            "tags": ["heating", "urgent"],
            "updatedAt": _iso(event_created),
        },
        separators=(",", ":"),
    )
    roll = rng.random()
    if failed_only:
        roll = 0.5 + roll / 2
    if roll < 0.5:  # success
        status, code, message = "SUCCESS", 200, None
        body = (
            '{"ok":true,"received":"'
            + ticket
            + '","handler":"tickets-sync","took_ms":'
            + str(rng.randint(3, 900))
            + "}"
        )
    elif roll < 0.72:
        status, code, message = "FAILED", 500, None
        body = (
            '{"error":"Internal Server Error","detail":"database is locked","ref":"' + ticket + '"}'
        )
    elif roll < 0.88:
        status, code, message = "FAILED", 503, None
        body = "<html><body><h1>503 Service Unavailable</h1>No server is available.</body></html>"
    elif roll < 0.96:
        status, code, message = "FAILED", 404, None
        body = '{"error":"Not Found","path":"/hooks/allthings/tickets","ref":"' + ticket + '"}'
    else:
        status, code, message, body = "FAILED", None, "timeout", None
    if code is None:
        result: dict[str, object] = {
            "body": None,
            "headers": [],
            "message": message,
            "statusCode": None,
        }
    else:
        result = {
            "body": body,
            "headers": [
                {"name": "content-type", "value": "application/json; charset=utf-8"},
                {"name": "date", "value": delivered.strftime("%a, %d %b %Y %H:%M:%S GMT")},
                {"name": "x-request-id", "value": f"{rng.getrandbits(64):016x}"},
                {"name": "server", "value": "nginx"},
            ],
            "message": message,
            "statusCode": code,
        }
    failed = status == "FAILED"
    return {
        "id": f"d{i:08d}",
        "createdDate": _date(created),
        "deliveryDate": _date(delivered),
        "status": status,
        "result": result,
        "event": {
            "id": f"e{i:08d}",
            "name": name,
            "urn": f"urn:allthings:ticket:{ticket}",
            "payload": payload,
            "createdDate": _date(event_created),
        },
        "retry": {"id": f"d{i + 1:08d}"} if failed and rng.random() < 0.7 else None,
    }


def build_pages(
    count: int, seed: int = 1, failed_only: bool = False, newest_first: bool = False
) -> dict[str | None, bytes]:
    """Every page's response body, keyed by the `after` cursor that asks for it.
    `newest_first` sorts the deliveries by creation date, newest first, as Allthings
    lists them; otherwise they come in no order."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    webhook = {
        "id": WEBHOOK_ID,
        "description": "Tickets to the facility-management system",
        "url": "https://hooks.example.invalid/allthings/tickets",
        "enabled": True,
    }
    pages: dict[str | None, bytes] = {}
    every = [make_node(i, rng, now, failed_only) for i in range(count)]
    if newest_first:
        every.sort(key=lambda n: str(n["createdDate"]), reverse=True)
    for start in range(0, max(count, 1), PAGE_SIZE):
        end = min(start + PAGE_SIZE, count)
        nodes = every[start:end]
        has_next = end < count
        data = {
            "data": {
                "webhook": {
                    **webhook,
                    "deliveries": {
                        "totalCount": count,
                        "pageInfo": {
                            "hasNextPage": has_next,
                            "endCursor": f"c{end}" if has_next else None,
                        },
                        "nodes": nodes,
                    },
                }
            }
        }
        pages[f"c{start}" if start else None] = json.dumps(data, separators=(",", ":")).encode()
    return pages


def _response(code: int, body: bytes) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[code]
    head = (
        f"HTTP/1.1 {code} {reason}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Api(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, just enough for httpx: requests with a Content-Length."""

    pages: dict[str | None, bytes] = {}
    served = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, path = (head[0].split(" ") + ["", ""])[:2]
            self.transport.write(self.answer(method, path, body))

    def answer(self, method: str, path: str, body: bytes) -> bytes:
        if method == "GET" and path == "/stats":
            return _response(200, json.dumps({"requests": Api.served}).encode())
        if method != "POST":
            return _response(404, b'{"errors":[{"message":"POST GraphQL here"}]}')
        Api.served += 1
        try:
            after = (json.loads(body).get("variables") or {}).get("after")
            page = self.pages.get(after)
        except (ValueError, AttributeError):
            after, page = "(unreadable request)", None
        if page is None:
            message = json.dumps({"errors": [{"message": f"unknown cursor {after!r}"}]})
            return _response(400, message.encode())
        return _response(200, page)


async def serve(count: int, seed: int, failed_only: bool, newest_first: bool) -> None:
    Api.pages = build_pages(count, seed, failed_only, newest_first)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Api, "127.0.0.1", 0)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def watch_stdin() -> None:  # the parent went away (or closed our stdin): stop
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    port = server.sockets[0].getsockname()[1]
    size = sum(len(p) for p in Api.pages.values())
    print(f"PORT {port} PAGES {len(Api.pages)} BYTES {size}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, required=True, help="deliveries in all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--failed-only", action="store_true", help="every delivery a failure")
    parser.add_argument(
        "--newest-first", action="store_true", help="list newest first (else in no order)"
    )
    parser.add_argument(
        "--dates", choices=DATE_FORMS, default="z", help="the form of the dates (default z)"
    )
    args = parser.parse_args()
    global DATE_FORM
    DATE_FORM = args.dates
    asyncio.run(serve(args.count, args.seed, args.failed_only, args.newest_first))


if __name__ == "__main__":
    main()
