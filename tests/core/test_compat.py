"""Library code changes nothing process-wide (the GC, sys.modules): only `cli.main()` may;
and a dependency's private internals are touched in core/compat.py alone."""

from __future__ import annotations

import gc
import re
import sys
from pathlib import Path

import respx

from atwh.client.api import ApiClient
from atwh.client.auth import StaticToken
from atwh.recover.replay import ReplayOptions, replay

SRC = Path(__file__).resolve().parents[2] / "src" / "atwh"
PRIVATE = re.compile(r"\._pool\b|\._network_backend|\._captured_signals|typer\._click|\.cycle\b")


def test_an_api_client_leaves_the_garbage_collector_alone():
    before = gc.get_threshold(), gc.get_freeze_count()
    with respx.mock:
        respx.post("https://api.example/").respond(json={"data": {"webhook": None}})
        with ApiClient(StaticToken("t"), url="https://api.example/") as client:
            assert client.execute("QueryWebhook", {"id": "w"}) == {"webhook": None}
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_replaying_leaves_sys_modules_alone(monkeypatch):
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    report = replay([], ReplayOptions(target="http://127.0.0.1:9/", secret=None))
    assert report.outcomes == []
    assert "sniffio" not in sys.modules or sys.modules["sniffio"] is not None


def test_main_chooses_the_process_settings(monkeypatch):
    from atwh import cli

    threshold = gc.get_threshold()
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    try:
        cli._tune_process()
        assert gc.get_threshold()[0] == 10_000
        if sys.modules.get("sniffio", 0) is None:  # not installed: its import fails at once
            import importlib

            try:
                importlib.import_module("sniffio")
            except ImportError:
                pass
    finally:
        gc.set_threshold(*threshold)


def test_private_internals_are_touched_in_compat_alone():
    touching = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "compat.py" and PRIVATE.search(path.read_text())
    ]
    assert touching == []
