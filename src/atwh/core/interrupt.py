"""Ctrl-C seen at once, by the code that sends: a plain SIGINT handler instead of Python's
KeyboardInterrupt (which `trigger` and `replay` turn into "stop taking new requests, let
those in flight end")."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def on_sigint(handler: Callable[[], None]) -> Callable[[], None]:
    """SIGINT (Ctrl-C) calls `handler` instead of raising KeyboardInterrupt, on the main
    thread, between two bytecodes (even while a request blocks it); elsewhere nothing
    changes. Returns what puts the old handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGINT, lambda signum, frame: handler())

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore
