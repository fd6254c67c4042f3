"""Running an ASGI app (the receiver, the emulator) on a real server: uvicorn, with
httptools and uvloop when they are installed. The socket is bound first, so port 0 works
and the URL printed is the one that listens.

What a server of atwh bounds, whatever the app: the connections open at once (over the
cap, requests get 503 and the extra connections are closed within seconds), the time a
connection may take to send a whole request (then it is closed), and the time SIGINT or
SIGTERM waits for the requests in flight (`GRACE`). A signal ends `run` normally: the
command prints its summary and exits 0, it is not killed by the signal again.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.util
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from atwh.core.compat import captured_signals, handled_signals, http_protocol, request_under_way
from atwh.errors import NetworkError, UsageError

GRACE = 10.0  # seconds SIGINT/SIGTERM waits for the requests in flight
REQUEST_TIMEOUT = 30.0  # a connection must send a whole request within this, or is closed
MAX_CONNECTIONS = 1000
FD_RESERVE = 64  # file descriptors kept for the inbox, forwarding and the rest
OVER_CAP_TIMEOUT = 2.0  # a connection over the cap is closed after this
SWEEP_EVERY = 0.5  # how often connections are checked against their deadline
_TIMEOUT_BODY = b'{"message": "The request took too long to arrive"}'
_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


def listen(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: give a port from 0 to 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UsageError(f"--host {host!r}: {e.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise NetworkError(
                f"cannot listen on {host}:{port}: the port is in use",
                hint="stop what listens there, or give --port 0 for any free port",
            ) from None
        raise NetworkError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket, path: str = "/") -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


def connection_cap(wanted: int = MAX_CONNECTIONS) -> int:
    """`wanted`, lowered to what the process's file descriptor limit can hold: past that
    limit the server cannot even accept a connection to answer 503, and every sender
    hangs."""
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError):
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


def bounded_protocol(
    base: type[Any], request_timeout: float, max_connections: int
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools or h11), with a deadline for each request.

    uvicorn bounds only the idle time between two requests of a connection (keep-alive),
    not a connection that never sends a request, sends its headers a byte at a time, or
    a body that never ends. Here a connection must make progress within
    `request_timeout`: its request's headers from the moment it opened (or got its last
    answer), then the rest of the request from its headers (checked every SWEEP_EVERY
    s); otherwise it is closed, with a 408 if no request had started. A connection over
    `max_connections` gets OVER_CAP_TIMEOUT (its request, if any, is answered 503 by
    uvicorn's limit_concurrency).
    """

    class Bounded(base):  # type: ignore[misc,valid-type]
        # Nothing is added to the handling of each request (a timer armed and cancelled
        # for each cost about 2 % of requests/s): a sweep twice a second looks at every
        # connection, and a connection that made no progress (a new request, or an
        # answer) since its deadline is closed, unless the app holds a whole request.
        _due: float = 0.0
        _seen: tuple[Any, bool] = (None, False)  # (request cycle, answered) at last look

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            over = len(self.connections) > max_connections
            self._due = self.loop.time() + (OVER_CAP_TIMEOUT if over else request_timeout)
            _sweep_often(self.loop, self.connections)

        def too_slow(self, now: float) -> None:
            cycle, answered, more_body = request_under_way(self)
            seen = (cycle, answered)
            if seen[0] is not self._seen[0] or seen[1] != self._seen[1]:
                self._seen = seen  # progress: the deadline starts again
                self._due = now + request_timeout
                return
            if now < self._due or self.transport.is_closing():
                return
            if cycle is not None and not answered and not more_body:
                return  # the whole request is in: the app answers it
            if cycle is None or answered:  # no request started
                self.transport.write(_TIMEOUT_ANSWER)
            self.transport.close()

    Bounded.__name__ = Bounded.__qualname__ = f"Bounded{base.__name__}"
    return Bounded


# The connection sets (one per server) being swept, by id; each kept, so that no other
# set can take its id while it is here.
_swept: dict[int, set[Any]] = {}


def _sweep_often(loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
    if _swept.get(id(connections)) is connections:
        return
    _swept[id(connections)] = connections

    def sweep() -> None:
        now = loop.time()
        for connection in list(connections):
            check = getattr(connection, "too_slow", None)
            if check is not None:
                check(now)
        loop.call_later(SWEEP_EVERY, sweep)

    loop.call_later(SWEEP_EVERY, sweep)


def config(
    app: Any,
    request_timeout: float = REQUEST_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    **overrides: Any,
) -> Any:
    import uvicorn

    base = http_protocol()
    cap = connection_cap(max_connections)
    options: dict[str, Any] = {
        "lifespan": "on",
        "log_level": "warning",
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": GRACE,
        "limit_concurrency": cap + 1,  # uvicorn answers 503 from cap + 1 connections on
        "http": bounded_protocol(base, request_timeout, cap),
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


_early: list[int] = []  # SIGINT/SIGTERM that came before the server caught them itself


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Within it, SIGINT and SIGTERM stop the server that `run` starts, even when they
    come before it runs (while the banner is printed, the app starts): else Ctrl-C right
    after start is a KeyboardInterrupt, exit 130 and no summary. The handlers before are
    restored on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.signal(sig, _hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        _early.clear()


def _hold(sig: int, frame: Any) -> None:
    _early.append(sig)


def _server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):  # type: ignore[misc]
        """uvicorn's server, ended by SIGINT or SIGTERM as a normal return.

        uvicorn raises a caught signal again once it has shut down, so that the process
        ends by it (130, 143, and a KeyboardInterrupt); atwh promises a summary and 0.
        `on_stop` is called (in the loop's thread, once) when a signal asks to stop."""

        on_stop: Callable[[], None] | None = None
        signalled: list[int]

        def handle_exit(self, sig: int, frame: Any) -> None:
            first = not self.should_exit
            super().handle_exit(sig, frame)
            if first and self.on_stop is not None:
                self.on_stop()

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            self.signalled = []
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = handled_signals()
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            while _early:
                self.handle_exit(_early.pop(0), None)
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)
                self.signalled = captured_signals(self)

    return Server


class Counted:
    """An ASGI app, counting the HTTP requests it answers (for the summary line), and
    answering 503 rather than a traceback for one still running when the server's grace
    ends (uvicorn cancels it)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": _STOPPING_BODY})
        finally:
            self.requests += 1


_STOPPING_BODY = b'{"message": "The server is stopping; send it again"}'


def run(app: Any, sock: socket.socket, **overrides: Any) -> list[int]:
    """Serve until SIGINT/SIGTERM: stop accepting, finish what is in flight (GRACE at
    most), shut down. The signals that stopped it (empty if none did)."""
    server = _server_class()(config(app, **overrides))
    stopping = getattr(app, "stopping", None)
    if callable(stopping):
        server.on_stop = stopping
    server.run(sockets=[sock])
    if not server.started:
        raise UsageError("the server did not start (see the message above)")
    return list(server.signalled)


class BackgroundServer:
    """An app served from a thread on loopback, for tests and `atwh demo`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **overrides: Any):
        self.sock = listen(host, port)
        self.server = _server_class()(config(app, **overrides))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def url(self, path: str = "/") -> str:
        return url_of(self.sock, path)

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
