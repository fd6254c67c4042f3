"""vectors/signing.json, the published signing test vectors: reproducible, complete, and
verified as they say by the signature module and by `atwh verify`."""

from __future__ import annotations

import base64
import hashlib
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

# Every published vector and a fingerprint of its content: a vector is never changed in place
# nor removed, and its id never reused. A new case is a new vector (add it here too).
PUBLISHED = {
    "valid-compact": "a2df67e35daa7c52",
    "valid-ticket-updated": "d53fa58331f64663",
    "valid-pretty": "a7833c6a7fb874d5",
    "valid-non-ascii-raw": "6155fe19fa6f1498",
    "valid-non-ascii-escaped": "935e6b62d0d7f2f2",
    "valid-empty-body": "db60b1fb58311390",
    "valid-trailing-newline": "e18c70950ade7aac",
    "valid-large-body": "d90ba7af8bc7c096",
    "valid-uppercase-hex": "0754cfc98edfea17",
    "valid-at-tolerance": "256af5b595abffa8",
    "valid-future-within-skew": "c6c1ff9709f5a35c",
    "malformed-truncated": "044d5d026b9c1979",
    "malformed-empty": "e4042cc5d79c7d58",
    "malformed-null": "fc9c06cb004b03a9",
    "malformed-not-hex": "f20de3175030bbea",
    "prefix-sha256": "f33730944268192d",
    "base64-digest": "48ff24a307ffbb2f",
    "trailing-newline-added": "ea68243dfcccf24e",
    "trailing-newline-removed": "7cf579f286838864",
    "re-serialised-python-spaces": "a05d28706d0be3fb",
    "re-serialised-compact": "d65d4f2cd47763c7",
    "re-serialised-ascii-escaped": "aef08c711e603694",
    "re-serialised-sorted-keys": "552e520af8e35980",
    "secret-trailing-newline": "ad155e126fcc8c82",
    "wrong-secret": "b17f98eceb8497d5",
    "wrong-secret-tampered-body": "b527b0ab3f79366c",
    "wrong-secret-timestamp-signed": "08a35829f9a621a7",
    "wrong-secret-before-stale": "2f020e6f2a27c1f2",
    "missing-timestamp-null": "557e0ec34fdf7d84",
    "missing-timestamp-empty": "a38d52897432ec1c",
    "missing-timestamp-not-a-number": "3323cfbea03c637b",
    "seconds-timestamp": "63ae23ec12afc1d8",
    "stale-just-past-tolerance": "dfd8f3e80768181a",
    "stale-five-minutes": "db2301b81af13966",
    "future-past-skew": "f1eacd37967c0a79",
    "seconds-timestamp-long-ago": "b0c1b1b00fc2cb7e",
    "re-serialised-pretty-ascii-escaped": "50c20b4e72b82ee6",
    "secret-whitespace-stripped": "ceef1e754eaf3640",
    "re-serialised-javascript-numbers": "3c64f871cba51986",
}


def fingerprint(v: dict) -> str:
    return hashlib.sha256(json.dumps(v, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[
        :16
    ]


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
    for v in VECTORS:
        if v["id"] in PUBLISHED:
            assert fingerprint(v) == PUBLISHED[v["id"]], f"vector {v['id']} changed in place"
    assert set(PUBLISHED) <= set(ids), "a published vector was removed"
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


def test_the_signing_transcripts_are_for_the_secret_the_docs_name(tmp_path, atwh, monkeypatch):
    """A reader who runs docs/signing.md's `printf` and `atwh sign` gets the signature shown:
    the docs name the secret, and every signature shown is computed with it."""
    import re

    text = (ROOT / "docs" / "signing.md").read_text(encoding="utf-8")
    secret = re.search(r"export\s+SHARED_WEBHOOK_SECRET=(\S+?)`", text)
    assert secret, "docs/signing.md does not say which secret its transcripts use"
    printf = re.search(r"^\$ printf '(.*)' > payload\.json$", text, re.M)
    assert printf
    (tmp_path / "payload.json").write_bytes(printf.group(1).encode())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHARED_WEBHOOK_SECRET", secret.group(1))
    signed = atwh("sign", "payload.json", "--json")
    assert signed.exit_code == 0, signed.stderr
    right = json.loads(signed.stdout)["signature"]
    assert f"$ atwh sign payload.json\nx-allthings-signature: {right}\n" in text
    valid = re.search(r"^\$ atwh verify payload\.json --signature (\w+) .*\nvalid:", text, re.M)
    assert valid and valid.group(1) == right
