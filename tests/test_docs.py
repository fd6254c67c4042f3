"""The docs tell the truth: every command is in them, the generated reference is current,
every link resolves, and the README stays a five-minute read."""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from pathlib import Path

import pytest
import typer

from atwh.cli import app
from atwh.errors import ExitStatus

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
USAGE = (ROOT / "docs" / "usage.md").read_text()
REFERENCE = (ROOT / "docs" / "commands.md").read_text()
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()
COMMAND = typer.main.get_command(app)
CONTEXT = typer.Context(COMMAND)
NAMES = sorted(COMMAND.list_commands(CONTEXT))  # type: ignore[attr-defined]
COMMANDS = {name: COMMAND.get_command(CONTEXT, name) for name in NAMES}  # type: ignore[attr-defined]
REGENERATE = "python scripts/commands_reference.py"


def _reference_script():
    spec = importlib.util.spec_from_file_location(
        "commands_reference", ROOT / "scripts" / "commands_reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _reference_script()
PATHS = [(path, command) for path, _, command in SCRIPT.walk()]  # `atwh`, `atwh inbox show`, …


def test_there_are_commands():
    assert {"deliveries", "failures"} <= set(NAMES)
    assert {"atwh webhooks list", "atwh inbox show"} <= {path for path, _ in PATHS}


def test_the_readme_is_a_five_minute_read():
    assert len(README.splitlines()) <= 350


@pytest.mark.parametrize("name", NAMES)
def test_every_command_has_help_and_an_example_in_the_readme(name):
    command = COMMANDS[name]
    assert command.help and len(command.help) > 40
    assert re.search(rf"^atwh {name}( |$)", README, re.M), f"no example of atwh {name} in README"


@pytest.mark.parametrize("name", NAMES)
def test_every_command_is_described_in_usage(name):
    assert f"## `atwh {name}" in USAGE, f"docs/usage.md has no section on atwh {name}"


def test_the_command_reference_is_current():
    assert SCRIPT.render() == REFERENCE, f"docs/commands.md is stale: run {REGENERATE}"


@pytest.mark.parametrize("path", [path for path, _ in PATHS])
def test_every_command_and_option_is_in_the_reference(path):
    """Each command, subcommands too, has its section, and the section every option."""
    command = dict(PATHS)[path]
    match = re.search(rf"^## {re.escape(path)}\n\n```\n(.*?)\n```", REFERENCE, re.S | re.M)
    assert match, f"{path} is not in docs/commands.md: run {REGENERATE}"
    for param in command.params:
        if param.param_type_name == "option" and not param.hidden:
            assert param.opts[0] in match.group(1), f"{path} {param.opts[0]}: run {REGENERATE}"


def test_the_reference_is_what_help_prints():
    """One command's section is exactly what `atwh … --help` prints in an 80-column terminal
    (a real process: click's test runner wraps help at its own width)."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "atwh", "webhooks", "create", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80", "NO_COLOR": "1"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    help_text = "\n".join(line.rstrip() for line in done.stdout.rstrip().splitlines())
    assert f"## atwh webhooks create\n\n```\n{help_text}\n```" in REFERENCE


def test_every_exit_code_is_in_the_readme():
    for status in ExitStatus:
        assert re.search(rf"^\| {int(status)} \|", README, re.M), status


def test_readme_starts_with_the_two_commands():
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    assert "pip install . && atwh" in blocks[0]
    # the test tools at the versions requirements/dev.lock pins (tests/test_dependencies.py)
    assert "pip install -c requirements/dev.lock -e '.[test]' && python -m pytest" in blocks[1]


def test_every_environment_variable_read_is_documented():
    src = ROOT / "src"
    names = set()
    for path in src.rglob("*.py"):
        text = path.read_text()
        names |= set(
            re.findall(r"""(?:envvar=|environ\.get\(|env\.get\()["']([A-Z_]+)["']""", text)
        )
        names |= set(re.findall(r"""_dir\(["'](ATWH_[A-Z_]+)["']""", text))
    assert names
    for name in names:
        assert name in USAGE, f"{name} is read but not in docs/usage.md's environment table"


def test_every_module_says_what_it_is_for():
    """The layout's rule: a module's first line says what it is for."""
    import ast

    src = ROOT / "src"
    for path in src.rglob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and doc.strip(), f"{path.relative_to(src)} has no docstring"


def test_the_layout_in_the_architecture_names_every_package():
    src = ROOT / "src" / "atwh"
    for package in src.iterdir():
        if (package / "__init__.py").exists():
            assert f"  {package.name}/" in ARCHITECTURE, f"docs/architecture.md: {package.name}"


# -- the walk-through ----------------------------------------------------------------------


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


# -- links ---------------------------------------------------------------------------------

DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md"]
DOCS += sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces
    as hyphens, `-1`, `-2` for repeats."""
    seen: dict[str, int] = {}
    out = set()
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # no headings in code
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", text, re.M):
        slug = "".join(
            c
            for c in heading.lower()
            if c in " -_" or unicodedata.category(c)[0] in "LN"  # letters, digits
        ).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(path: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)  # nor in code spans
    return LINK.findall(text)


def test_the_docs_link_to_one_another():
    readme = set(links(ROOT / "README.md"))
    for target in ("docs/commands.md", "docs/usage.md", "docs/reliability.md"):
        assert target in readme or any(t.startswith(target + "#") for t in readme), target
    assert {"docs/architecture.md", "CHANGELOG.md", "bench/README.md"} <= readme


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(doc):
    found = links(doc)
    for link in found:
        if re.match(r"[a-z]+:", link):  # https:, mailto: … not checked: no internet in tests
            continue
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.relative_to(ROOT)}: {link} does not exist"
        if anchor:
            assert path.suffix == ".md", f"{doc.relative_to(ROOT)}: {link}"
            assert anchor in anchors(path.read_text()), (
                f"{doc.relative_to(ROOT)}: no heading for #{anchor} in {path.relative_to(ROOT)}"
            )
