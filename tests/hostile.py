"""Hostile HTTP servers for the tests: raw sockets on 127.0.0.1 (port 0), each request
answered by a handler that writes what it likes (trickles, floods, half answers)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class Request:
    headers: dict[str, str]  # names in lower case
    body: bytes


Handler = Callable[[socket.socket, Request], None]


class RawServer:
    """An HTTP server that answers each request with `handler(conn, request)`, raw."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests = 0
        self.finished = 0  # answers sent to the end (the client read them whole)
        self.hung_up = 0  # answers the client hung up on before their end
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(60)
        with conn:
            while not self.stopped.is_set():
                try:
                    request = read_request(conn)
                except OSError:
                    return
                if request is None:
                    return
                self.requests += 1
                try:
                    self.handler(conn, request)
                except OSError:  # the client hung up: it gave up on the answer
                    self.hung_up += 1
                    return
                self.finished += 1

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


def read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    length = int(headers.get("content-length", 0))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return Request(headers, body)


def answer(status: int, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", "Content-Type: application/json"]
    head += [*extra, f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(head).encode() + body


def json_answer(data: Any, status: int = 200) -> Handler:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(answer(status, json.dumps(data).encode()))

    return handler


@contextmanager
def raw_server(handler: Handler) -> Iterator[RawServer]:
    server = RawServer(handler)
    try:
        yield server
    finally:
        server.close()


def trickle(conn: socket.socket, body: bytes, every: float) -> None:
    """A 200 answer whose head comes at once and whose body a byte every `every` s."""
    import time

    conn.sendall(answer(200, body)[: -len(body)])
    for i in range(len(body)):
        time.sleep(every)
        conn.sendall(body[i : i + 1])
