"""README.md tells the truth: every command is in it, and every command has help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from atwh.cli import app
from atwh.errors import ExitStatus

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
COMMAND = typer.main.get_command(app)
CONTEXT = typer.Context(COMMAND)
NAMES = sorted(COMMAND.list_commands(CONTEXT))  # type: ignore[attr-defined]
COMMANDS = {name: COMMAND.get_command(CONTEXT, name) for name in NAMES}  # type: ignore[attr-defined]


def test_there_are_commands():
    assert {"deliveries", "failures"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_command_has_help_and_is_in_the_readme(name):
    command = COMMANDS[name]
    assert command.help and len(command.help) > 40
    assert f"### `atwh {name}" in README
    assert re.search(rf"^atwh {name}( |$)", README, re.M), f"no example of atwh {name}"


@pytest.mark.parametrize("name", NAMES)
def test_every_option_is_in_the_readme(name):
    for param in COMMANDS[name].params:
        if param.param_type_name == "option" and param.opts[0] != "--help":
            assert f"`{param.opts[0]}" in README, f"{name} {param.opts[0]} not in README.md"


def test_every_exit_code_is_in_the_readme():
    for status in ExitStatus:
        assert re.search(rf"^\| {int(status)} \|", README, re.M), status


def test_readme_starts_with_the_two_commands():
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    assert "pip install . && atwh" in blocks[0]
    # the test tools at the versions requirements/dev.lock pins (tests/test_dependencies.py)
    assert "pip install -c requirements/dev.lock -e '.[test]' && python -m pytest" in blocks[1]


def test_every_environment_variable_read_is_documented():
    src = Path(__file__).resolve().parents[1] / "src"
    names = set()
    for path in src.rglob("*.py"):
        text = path.read_text()
        names |= set(
            re.findall(r"""(?:envvar=|environ\.get\(|env\.get\()["']([A-Z_]+)["']""", text)
        )
        names |= set(re.findall(r"""_dir\(["'](ATWH_[A-Z_]+)["']""", text))
    assert names
    for name in names:
        assert name in README, f"{name} is read but not documented"


def test_every_module_says_what_it_is_for():
    """The layout's rule: a module's first line says what it is for."""
    import ast

    src = Path(__file__).resolve().parents[1] / "src"
    for path in src.rglob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and doc.strip(), f"{path.relative_to(src)} has no docstring"


def test_the_layout_in_the_readme_names_every_package():
    src = Path(__file__).resolve().parents[1] / "src" / "atwh"
    for package in src.iterdir():
        if (package / "__init__.py").exists():
            assert f"  {package.name}/" in README, package.name
