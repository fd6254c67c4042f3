"""Every use of a dependency's private internals, in one place, each with the versions it was
checked against (pyproject.toml bounds them from above, so a release that moves them is not
installed unseen). The rest of atwh calls these functions and touches no `_private` name.

Imports are inside the functions: this module is on the ground floor and costs nothing to
import.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any


def click_types() -> Any:
    """The `click.types` module of the click that Typer uses: its own copy since Typer 0.28
    (`typer._click`), else click itself (typer 0.25 to 0.28)."""
    import typer.core

    vendored = hasattr(typer.core, "_click")
    return importlib.import_module("typer._click.types" if vendored else "click.types")


def wrap_network_backend(transport: Any, wrap: Callable[[Any], Any]) -> None:
    """Give an httpx.HTTPTransport's connection pool the network backend `wrap(backend)`:
    httpx has no public way to choose one (httpx 0.27 to 0.29, httpcore 1.0: the pool is
    `transport._pool`, its backend `_network_backend`)."""
    pool = transport._pool
    pool._network_backend = wrap(pool._network_backend)


def http_protocol() -> type[Any]:
    """uvicorn's HTTP protocol class, the one a bounded protocol subclasses: httptools' when
    it is installed, else h11's (uvicorn 0.30 to 0.55)."""
    if importlib.util.find_spec("httptools"):
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


def request_under_way(protocol: Any) -> tuple[Any, bool, bool]:
    """Where a uvicorn HTTP connection (an http_protocol() instance) is: its request cycle
    (None before the first request), whether the answer is complete, and whether more of the
    request's body is still to come (the private `cycle`, `response_complete`,
    `more_body`)."""
    cycle = protocol.cycle
    if cycle is None:
        return None, False, False
    return cycle, cycle.response_complete, cycle.more_body


def captured_signals(server: Any) -> list[int]:
    """The signals a uvicorn.Server caught while it ran (its private `_captured_signals`)."""
    return list(server._captured_signals)


def handled_signals() -> tuple[int, ...]:
    """The signals uvicorn.Server handles (uvicorn.server.HANDLED_SIGNALS)."""
    from uvicorn.server import HANDLED_SIGNALS

    return tuple(HANDLED_SIGNALS)
