"""Running the receiver: listen, make sure the inbox can be opened and is ours, start the
app on the server, and say how many requests it answered once stopped.

`atwh serve` builds the settings (receiver.settings) and calls `serve`; the banner and the
live lines are its own (`on_listening`, the LiveView).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from atwh.errors import UsageError, printable
from atwh.receiver.live import LiveView
from atwh.receiver.settings import Limits, ReceiverSettings


@dataclass(slots=True)
class Served:
    answered: int  # requests answered
    signals: list[int]  # the signals that stopped it (SIGINT: a `^C` was echoed)


def serve(
    settings: ReceiverSettings,
    host: str,
    port: int,
    limits: Limits,
    live: LiveView,
    on_listening: Callable[[str, int], None],
    shared_db: bool = False,
) -> Served:
    """Receive until SIGINT or SIGTERM. `on_listening(url, connections)` is called once the
    socket listens and the inbox is open: the URL to POST to and the connections taken at
    once (the cap lowered to the open-file limit)."""
    from atwh import server
    from atwh.receiver.app import create_app
    from atwh.receiver.forward import loops_back
    from atwh.receiver.inbox import Inbox, check_is_inbox
    from atwh.receiver.lock import InboxLock

    limits.check()
    sock = server.listen(host, port)  # before the inbox: a bad port creates no files
    lock = None
    try:
        if settings.forward_to and loops_back(settings.forward_to, sock.getsockname()):
            raise UsageError(
                f"--forward-to {printable(settings.forward_to, 200)} is this receiver's own "
                "address: every event would come round again"
            )
        check_is_inbox(settings.db)  # another program's file: refused before the lock
        # held until the receiver stops; it says where this receiver listens, for the
        # `webhooks create --url` that `atwh emulator emit` suggests
        lock = InboxLock(settings.db, shared_db, server.url_of(sock, settings.path))
        Inbox(settings.db).close()  # fail now, in one line, if the inbox cannot be opened
        app = create_app(settings, on_request=live.request, on_notice=live.notice)
        cap = server.connection_cap(limits.max_connections)
        with server.signals_held():  # Ctrl-C from the banner on stops it, with the summary
            on_listening(server.url_of(sock, settings.path), cap)
            try:
                signals = server.run(
                    app,
                    sock,
                    request_timeout=limits.request_timeout,
                    max_connections=limits.max_connections,
                )
            finally:
                live.flush()
    except BaseException:
        sock.close()
        if lock is not None:
            lock.release()
        raise
    lock.release()
    return Served(app.answered, signals)
