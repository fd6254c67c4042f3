"""HTTP to the API and the token endpoint, bounded in time and in size.

httpx's `timeout` bounds each read, not a request: a server that sends one byte a second
never trips it. Here every request has a deadline, and every socket read and write waits
at most until then. An answer is read as it arrives, decoded here (gzip and deflate
only), and given up as soon as its decoded size passes a cap, so neither a huge answer
nor a compression bomb can take the memory.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

import httpcore
import httpx

from atwh.errors import ApiError, printable

MAX_PAGE_BYTES = 64 * 1024 * 1024  # one API answer, decoded
MAX_TOKEN_BYTES = 1024 * 1024  # one answer of the token endpoint, decoded
ACCEPT_ENCODING = "gzip, deflate"  # only what is decoded here, step by step
_STEP = 1024 * 1024  # decoded bytes made at a time, however much a chunk inflates to


class TooLarge(ApiError):
    """An answer over its size cap: not retried (the same request would get the same)."""


class Deadline:
    """When the request under way must be over; None between requests."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.seconds = 0.0

    def start(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def stop(self) -> None:
        self.at = None

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    def bound(self, timeout: float | None, exc: type[Exception]) -> float | None:
        """The time a socket operation may take: its own timeout, cut to the deadline."""
        left = self.remaining()
        if left is None:
            return timeout
        if left <= 0:
            raise exc(f"the request took longer than {self.seconds:g}s in all")
        return left if timeout is None else min(timeout, left)

    def check(self) -> None:
        left = self.remaining()
        if left is not None and left <= 0:
            raise httpx.ReadTimeout(f"the request took longer than {self.seconds:g}s in all")


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, timeout), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_unix_socket(path, timeout, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@cache
def _tls() -> Any:
    """httpx's default TLS context (certifi's CAs; SSL_CERT_FILE and SSL_CERT_DIR honoured),
    made once per process: loading the CA bundle takes 30-60 ms, every time a transport is
    made without one (httpx's own advice: create it once and reuse it)."""
    return httpx.create_ssl_context()


def http_transport(deadline: Deadline) -> httpx.HTTPTransport:
    """httpx's own transport, its sockets held to `deadline`.

    httpx has no public way to give its connection pool a network backend; the pool's
    is wrapped in place (core.compat; tests/client/test_bounds.py proves it still works)."""
    from atwh.core.compat import wrap_network_backend

    transport = httpx.HTTPTransport(retries=0, verify=_tls())
    wrap_network_backend(transport, lambda backend: _DeadlineBackend(backend, deadline))
    return transport


def post(
    http: httpx.Client,
    url: str,
    deadline: Deadline,
    max_bytes: int,
    what: str = "the API's answer",
    **kwargs: Any,
) -> httpx.Response:
    """POST and read the whole answer within the deadline (started by the caller), decoded
    and at most `max_bytes`; the answer comes back read, without a content-encoding."""
    headers = dict(kwargs.pop("headers", None) or {})
    headers.setdefault("Accept-Encoding", ACCEPT_ENCODING)
    with http.stream("POST", url, headers=headers, **kwargs) as response:
        content = read_capped(response, deadline, max_bytes, what)
    kept = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    answer = httpx.Response(
        response.status_code,
        headers=kept,
        content=content,
        request=response.request,
        extensions={"reason_phrase": response.reason_phrase.encode("ascii", "replace")},
    )
    answer.read()
    return answer


def read_capped(
    response: httpx.Response, deadline: Deadline, max_bytes: int, what: str = "the API's answer"
) -> bytes:
    """The decoded body, or TooLarge as soon as it passes `max_bytes`."""
    pieces: list[bytes] = []
    size = 0
    for piece in _decoded(response, deadline):
        size += len(piece)
        if size > max_bytes:
            raise TooLarge(
                f"{what} is larger than {_size(max_bytes)} (decoded); stopped reading it",
                hint="is --api-url the Webhooks API?",
            )
        pieces.append(piece)
    return b"".join(pieces)  # one copy (none for a single piece), however many pieces


def _decoded(response: httpx.Response, deadline: Deadline) -> Iterator[bytes]:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    raw = response.iter_raw()  # the pieces as they are read, without copying them again
    if encoding in ("", "identity"):
        for chunk in raw:
            deadline.check()
            yield chunk
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ApiError(
            f"the API answered in content-encoding {printable(encoding, 40)!r}, "
            f"which atwh does not read (it asks for {ACCEPT_ENCODING})"
        )
    decoder: Any = None
    for chunk in raw:
        deadline.check()
        if decoder is None:
            decoder = _decompressor(encoding, chunk)
        pending = chunk
        while pending:
            try:
                # max_length keeps each step small however much the chunk inflates to
                data = decoder.decompress(pending, _STEP)
            except zlib.error as e:
                raise ApiError(f"the API's {encoding} answer does not decompress: {e}") from None
            pending = decoder.unconsumed_tail
            if data:
                yield data
    if decoder is not None:
        yield decoder.flush()


def _decompressor(encoding: str, first: bytes) -> Any:
    if encoding == "deflate" and not (first[:1] == b"\x78"):
        return zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send it
    return zlib.decompressobj(zlib.MAX_WBITS | (16 if encoding != "deflate" else 0))


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n:,} bytes"


def on_this_machine(url: str) -> bool:
    """Whether the URL's host is this machine: localhost, *.localhost, 127.0.0.0/8, ::1
    (what `replay` and `check` send to without asking first)."""
    import ipaddress

    try:
        host = httpx.URL(url).host.lower()
    except httpx.InvalidURL:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
