"""`atwh emulator`: a Webhooks API on this machine that really delivers.

Modules: state (records, retry schedule, event catalogue), engine (the delivery loop),
schema (GraphQL schema and resolvers), app (HTTP), history (`--history N`).
"""

from typing import TYPE_CHECKING

from atwh.core.lazy import exports

if TYPE_CHECKING:
    from atwh.emulator.app import Emulator, create_app
    from atwh.emulator.engine import EmulatorSettings

__all__ = ["Emulator", "EmulatorSettings", "create_app"]
__getattr__, __dir__ = exports(
    __name__, {"Emulator": "app", "create_app": "app", "EmulatorSettings": "engine"}
)
