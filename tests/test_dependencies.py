"""The dependencies: the test command's lock covers every one, within pyproject's ranges,
and each dependency whose private internals atwh touches (core/compat.py) is bounded above."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REQUIREMENTS = [
    Requirement(r) for r in (*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["test"])
]


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "requirements" / "dev.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line).groups()
            found[canonicalize_name(name)] = version
    return found


def test_the_lock_pins_every_dependency_within_its_range():
    pinned = pins()
    for req in REQUIREMENTS:
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not pinned in requirements/dev.lock"
        assert req.specifier.contains(pinned[name], prereleases=True), (req, pinned[name])


def test_what_compat_touches_is_bounded_above():
    compat = (ROOT / "src" / "atwh" / "core" / "compat.py").read_text()
    by_name = {canonicalize_name(r.name): r for r in REQUIREMENTS}
    for name in ("typer", "httpx", "httpcore", "uvicorn"):
        assert name in compat
        assert any(s.operator in ("<", "<=", "~=", "==") for s in by_name[name].specifier), name


def test_the_readme_test_command_installs_with_the_lock():
    readme = (ROOT / "README.md").read_text()
    command = re.findall(r"```sh\n(.*?)\n```", readme, re.S)[1]
    assert "-c requirements/dev.lock" in command and "pytest" in command
    assert "\n" not in command  # one line, as .ci/run reads it
