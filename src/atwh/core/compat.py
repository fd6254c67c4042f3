"""Every use of a dependency's private internals, in one place, each with the versions it was
checked against (pyproject.toml bounds them from above, so a release that moves them is not
installed unseen). The rest of atwh calls these functions and touches no `_private` name.

Imports are inside the functions: this module is on the ground floor and costs nothing to
import.
"""

from __future__ import annotations

import importlib
from typing import Any


def click_types() -> Any:
    """The `click.types` module of the click that Typer uses: its own copy since Typer 0.28
    (`typer._click`), else click itself (typer 0.25 to 0.28)."""
    import typer.core

    vendored = hasattr(typer.core, "_click")
    return importlib.import_module("typer._click.types" if vendored else "click.types")
