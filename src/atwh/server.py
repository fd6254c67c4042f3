"""Running an ASGI app (the receiver, the emulator) on a real server: uvicorn, with
httptools and uvloop when they are installed. The socket is bound first, so port 0 works
and the URL printed is the one that listens."""

from __future__ import annotations

import errno
import importlib.util
import socket
import threading
import time
from typing import Any

from atwh.errors import NetworkError, UsageError


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


def config(app: Any, **overrides: Any) -> Any:
    import uvicorn

    options: dict[str, Any] = {
        "lifespan": "on",
        "log_level": "warning",
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": 10,
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def run(app: Any, sock: socket.socket, **overrides: Any) -> None:
    """Serve until SIGINT/SIGTERM: stop accepting, finish what is in flight, shut down."""
    import uvicorn

    server = uvicorn.Server(config(app, **overrides))
    server.run(sockets=[sock])
    if not server.started:
        raise UsageError("the server did not start (see the message above)")


class BackgroundServer:
    """An app served from a thread on loopback, for tests and `atwh demo`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **overrides: Any):
        import uvicorn

        self.sock = listen(host, port)
        self.server = uvicorn.Server(config(app, **overrides))
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
