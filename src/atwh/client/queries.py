"""The GraphQL operations in `queries/`, shipped inside the package."""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

SCHEMA_FILE = "webhooks-schema.graphql"  # as the vendor published it
EMULATOR_SCHEMA_FILE = "emulator-schema.graphql"  # what only the emulator adds to it


def queries_dir() -> Traversable:
    """The installed `atwh/queries` folder; in a source checkout, the repository's `queries/`."""
    installed = resources.files("atwh") / "queries"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[3] / "queries"


@cache
def load(name: str) -> str:
    """The text of one operation (`load("QueryWebhookDeliveries")`) or of the schema."""
    filename = name if name.endswith(".graphql") else f"{name}.graphql"
    return (queries_dir() / filename).read_text(encoding="utf-8")


def operation_names() -> list[str]:
    """Every operation file, without the schema."""
    return sorted(
        p.name.removesuffix(".graphql")
        for p in queries_dir().iterdir()
        if p.name.endswith(".graphql") and not p.name.endswith("-schema.graphql")
    )
