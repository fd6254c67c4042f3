"""Every exit status is a member of ExitStatus (README's table lists them all, test_docs):
no command returns or exits with a bare number, and an API refusal carries its code as a
field of the error."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from atwh.errors import ApiError, AtwhError, ExitStatus, UsageError

SRC = Path(__file__).resolve().parents[1] / "src" / "atwh"


def _bare_statuses(tree: ast.AST) -> list[int]:
    """Lines that return or exit with an int literal from a function annotated `-> int`,
    or call typer.Exit / sys.exit with one."""
    found = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            returns_int = isinstance(fn.returns, ast.Name) and fn.returns.id == "int"
            for node in ast.walk(fn):
                if returns_int and isinstance(node, ast.Return) and node.value is not None:
                    values = (
                        [node.value.body, node.value.orelse]
                        if isinstance(node.value, ast.IfExp)
                        else [node.value]
                    )
                    if any(isinstance(v, ast.Constant) and type(v.value) is int for v in values):
                        found.append(node.lineno)
        if isinstance(fn, ast.Call) and isinstance(fn.func, ast.Attribute):
            if fn.func.attr in ("Exit", "exit") and any(
                isinstance(a, ast.Constant) and type(a.value) is int for a in fn.args
            ):
                found.append(fn.lineno)
    return found


@pytest.mark.parametrize("path", sorted((SRC / "cli").glob("*.py")), ids=lambda p: p.name)
def test_commands_exit_with_named_statuses(path):
    assert _bare_statuses(ast.parse(path.read_text())) == [], path


def test_the_checker_sees_a_bare_status():
    code = "def f() -> int:\n    return 1 if x else 0\n\ndef g():\n    raise typer.Exit(3)\n"
    assert _bare_statuses(ast.parse(code)) == [2, 5]


def test_every_documented_status_has_a_name():
    assert (ExitStatus.FAILED, ExitStatus.BUG, ExitStatus.INTERRUPTED) == (1, 70, 130)


def test_api_code_is_a_field_of_the_error():
    from atwh.client.webhooks import refusal

    refused = refusal("URL_CHECK_FAILED", "the URL did not answer 200")
    assert isinstance(refused, ApiError) and refused.api_code == "URL_CHECK_FAILED"
    assert refusal("BAD_USER_INPUT", "no").api_code == "BAD_USER_INPUT"
    assert UsageError("plain").api_code is None
    assert AtwhError("x", api_code="C").api_code == "C"
