"""Lazy re-exports for the packages' `__init__`: a name is imported when first used, so that
`import atwh.client` stays cheap for commands that need only a small part of it."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def exports(
    package: str, names: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, where `names` maps each name to its module."""

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    def dir_() -> list[str]:
        return sorted(names)

    return getattr_, dir_
