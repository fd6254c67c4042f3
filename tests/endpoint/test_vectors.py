"""vectors/signing.json, the published signing test vectors: reproducible, complete, and
verified as they say by the signature module and by `atwh verify`."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from atwh import signature

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "vectors" / "signing.json"
DOC = json.loads(FILE.read_text(encoding="utf-8"))
VECTORS = DOC["vectors"]
FIELDS = {"id", "description", "secret", "body_base64", "timestamp", "signature", "now",
          "valid", "cause"}  # fmt: skip

# Published ids: a vector is never changed in place nor removed, and its id never reused.
# New vectors are added to the file (and here); none of these may go.
PUBLISHED = {
    "valid-compact", "valid-ticket-updated", "valid-pretty", "valid-non-ascii-raw",
    "valid-non-ascii-escaped", "valid-empty-body", "valid-trailing-newline",
    "valid-large-body", "valid-uppercase-hex", "valid-at-tolerance",
    "valid-future-within-skew", "malformed-truncated", "malformed-empty", "malformed-null",
    "malformed-not-hex", "prefix-sha256", "base64-digest", "trailing-newline-added",
    "trailing-newline-removed", "re-serialised-python-spaces", "re-serialised-compact",
    "re-serialised-ascii-escaped", "re-serialised-sorted-keys", "secret-trailing-newline",
    "wrong-secret", "wrong-secret-tampered-body", "wrong-secret-timestamp-signed",
    "wrong-secret-before-stale", "missing-timestamp-null", "missing-timestamp-empty",
    "missing-timestamp-not-a-number", "seconds-timestamp", "stale-just-past-tolerance",
    "stale-five-minutes", "future-past-skew",
}  # fmt: skip


def test_the_file_is_what_the_script_writes():
    check = subprocess.run(
        [sys.executable, str(ROOT / "vectors" / "make.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_the_file_is_complete_and_its_ids_stable():
    ids = [v["id"] for v in VECTORS]
    assert len(ids) == len(set(ids))
    assert PUBLISHED <= set(ids)
    for v in VECTORS:
        assert set(v) == FIELDS, v["id"]
        assert v["valid"] == (v["cause"] is None)
        assert v["timestamp"] is None or isinstance(v["timestamp"], str)
        assert v["signature"] is None or isinstance(v["signature"], str)
        assert isinstance(v["now"], int)
    assert sum(v["valid"] for v in VECTORS) >= 8
    assert sum(not v["valid"] for v in VECTORS) >= 12
    assert {v["cause"] for v in VECTORS} - {None} == set(signature.CAUSES)
    assert DOC["causes"] == list(signature.CAUSES)
    assert DOC["tolerance_ms"] == signature.DEFAULT_TOLERANCE * 1000
    assert DOC["future_skew_ms"] == signature.DEFAULT_FUTURE_SKEW * 1000
    bodies = {v["id"]: base64.b64decode(v["body_base64"]) for v in VECTORS}
    assert bodies["valid-empty-body"] == b""
    assert len(bodies["valid-large-body"]) > 64 * 1024
    assert b"\\u00e9" in bodies["valid-non-ascii-escaped"]
    assert "é".encode() in bodies["valid-non-ascii-raw"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["id"] for v in VECTORS])
def test_each_vector_through_the_signature_module(v):
    d = signature.diagnose(
        base64.b64decode(v["body_base64"]),
        v["signature"],
        v["timestamp"],
        v["secret"],
        DOC["tolerance_ms"] / 1000,
        DOC["future_skew_ms"] / 1000,
        now=v["now"] / 1000,
    )
    assert (d.valid, d.cause) == (v["valid"], v["cause"])


def test_each_vector_through_atwh_verify(atwh, tmp_path):
    for v in VECTORS:
        path = tmp_path / f"{v['id']}.body"
        path.write_bytes(base64.b64decode(v["body_base64"]))
        args = ["verify", str(path), "--secret", v["secret"], "--now", str(v["now"]), "--json"]
        if v["signature"] is not None:
            args += ["--signature", v["signature"]]
        if v["timestamp"] is not None:
            args += ["--timestamp", v["timestamp"]]
        result = atwh(*args)
        assert result.exit_code == (0 if v["valid"] else 1), (v["id"], result.output)
        got = json.loads(result.stdout)
        assert (got["valid"], got["cause"]) == (v["valid"], v["cause"]), v["id"]


def _snippet(language: str) -> str:
    import re

    text = (ROOT / "docs" / "signing.md").read_text(encoding="utf-8")
    (code,) = re.findall(rf"```{language}\n(.*?)```", text, re.S)
    return code


def test_the_python_snippet_in_the_docs_passes_every_vector(tmp_path):
    (tmp_path / "signing.json").write_bytes(FILE.read_bytes())
    (tmp_path / "check.py").write_text(_snippet("python"))
    run = subprocess.run(
        [sys.executable, "check.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"all {len(VECTORS)} vectors pass\n"


def test_the_javascript_snippet_in_the_docs_passes_every_vector(tmp_path):
    import shutil

    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on this machine")
    (tmp_path / "signing.json").write_bytes(FILE.read_bytes())
    (tmp_path / "check.js").write_text(_snippet("js"))
    run = subprocess.run(
        [node, "check.js"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"all {len(VECTORS)} vectors pass\n"
