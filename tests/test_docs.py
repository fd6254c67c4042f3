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


def _sample_after(command: str) -> list[str]:
    """The lines of the README's output block that follows the block holding `command`."""
    match = re.search(rf"```sh\n[^`]*{re.escape(command)}[^`]*```\n```\n(.*?)\n```", README, re.S)
    assert match, f"no sample output after {command!r} in README.md"
    return match.group(1).splitlines()


def _columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_the_walk_through_samples_match_a_real_run(atwh, tmp_path, monkeypatch):
    """The `deliveries` and `replay` samples of "Try it without an account" have the
    columns, the count line and the totals a real run against the emulator gives."""
    from tests.emulator.test_emulator import emulator, receiver

    deliveries = _sample_after("atwh deliveries ")
    replay = _sample_after("atwh replay ")
    with emulator() as emu:
        with receiver(tmp_path) as rcv:
            hook = emu.register(rcv.url)
            port = int(rcv.url.split(":")[2].split("/")[0])
            first = emu.emit("ticket.created", data={"id": "T-1"})["event"]["id"]
            emu.wait_settled(first)
            header = next(i for i, line in enumerate(deliveries) if line.startswith("Created"))
            monkeypatch.setenv("COLUMNS", str(len(deliveries[header])))
            real = atwh("deliveries", hook["id"], "--api-url", emu.url, "--format", "table")
            assert real.exit_code == 0, real.output
            lines = real.stdout.splitlines()
            at = next(i for i, line in enumerate(lines) if line.startswith("Created"))
            assert _columns(lines[at]) == _columns(deliveries[header])
            assert lines[at - 1] == deliveries[header - 1] == "1 delivery (1 shown)"
            assert len(_columns(lines[at + 1])) == len(_columns(deliveries[header + 1]))
        failing = [emu.emit(name)["event"]["id"] for name in ("ticket.created", "ticket.updated")]
        emu.wait_settled(*failing)  # the receiver is gone: they failed, for 7 days
        with receiver(tmp_path, port=port):
            monkeypatch.setenv("COLUMNS", str(max(map(len, replay[:-1]))))
            args = ("replay", hook["id"], "--api-url", emu.url, "--since", "1h", "--yes")
            ledger = ("--ledger", str(tmp_path / "ledger.sqlite3"))
            sent = atwh(*args, *ledger, "--format", "table")
            assert sent.exit_code == 0, sent.output
            lines = sent.stdout.splitlines()
            assert _columns(lines[0]) == _columns(replay[0])
            assert [_columns(x)[0] for x in lines[1:]] == ["fixed", "fixed"]
            assert sent.stderr.splitlines()[-1] == replay[-1].replace(":8000/", f":{port}/")
