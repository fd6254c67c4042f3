"""Write docs/commands.md, the command reference: every atwh command's `--help`, generated.

    python scripts/commands_reference.py           # write docs/commands.md
    python scripts/commands_reference.py --check   # exit 1 if it is not up to date

tests/test_docs.py fails while the file is stale, so a new command or option shows up in the
reference by running the first line. The help is rendered at 80 columns, as `--help` shows
it in a terminal that wide, whatever the terminal running this script.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "commands.md"
WIDTH = 80
REGENERATE = "python scripts/commands_reference.py"

HEADER = f"""# Command reference

Every command's `--help`, as atwh prints it at {WIDTH} columns. Generated from the code
by `{REGENERATE}`: do not edit it by hand (tests/test_docs.py
fails when it is stale). How the commands fit together: [the README](../README.md); what
each does in detail: [usage](usage.md).
"""


def walk() -> Iterator[tuple[str, Any, Any]]:
    """(`atwh deliveries`, the click context, the command) for every command, depth first,
    in the order `--help` lists them; hidden commands left out."""
    import typer

    from atwh.cli import app

    root = typer.main.get_command(app)

    def visit(cmd: Any, ctx: Any) -> Iterator[tuple[str, Any, Any]]:
        yield ctx.command_path, ctx, cmd
        if hasattr(cmd, "list_commands"):  # a group (click's, or the one typer vendors)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is None or sub.hidden:
                    continue
                context = sub.context_class(sub, info_name=name, parent=ctx, **sub.context_settings)
                yield from visit(sub, context)

    # as `atwh … --help` makes them: with the app's settings (`-h` for help, …), but this width
    settings = {**root.context_settings, "terminal_width": WIDTH - 2}  # as click wraps
    top = root.context_class(root, info_name="atwh", **settings)
    yield from visit(root, top)


def anchor(path: str) -> str:
    """GitHub's anchor for a heading `atwh inbox replay`: `atwh-inbox-replay`."""
    return path.replace(" ", "-")


def render() -> str:
    commands = list(walk())
    out = [HEADER]
    out.append("\n".join(f"- [`{path}`](#{anchor(path)})" for path, _, _ in commands[1:]) + "\n")
    for path, ctx, cmd in commands:
        text = cmd.get_help(ctx).rstrip()
        text = "\n".join(line.rstrip() for line in text.splitlines())
        out.append(f"## {path}\n\n```\n{text}\n```\n")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
