"""`atwh serve`: the receiver that answers like the vendor's endpoint and keeps every request.

Modules: app (the ASGI app and decide()), settings, inbox (SQLite), store (batch writer,
checkpoints), forward (`--forward-to`), live (the live view).
"""

from typing import TYPE_CHECKING

from atwh.core.lazy import exports

if TYPE_CHECKING:
    from atwh.receiver.app import Receiver, create_app
    from atwh.receiver.inbox import Inbox, InboxRecord
    from atwh.receiver.live import LiveView
    from atwh.receiver.settings import ReceiverSettings

__all__ = ["Inbox", "InboxRecord", "LiveView", "Receiver", "ReceiverSettings", "create_app"]
__getattr__, __dir__ = exports(
    __name__,
    {
        "Receiver": "app",
        "create_app": "app",
        "Inbox": "inbox",
        "InboxRecord": "inbox",
        "LiveView": "live",
        "ReceiverSettings": "settings",
    },
)
