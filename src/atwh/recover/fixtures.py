"""Replays written down instead of sent: files to keep as test fixtures (`--save DIR`), or
ready-to-run curl commands (`--as curl`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from atwh.errors import OutputError
from atwh.recover.replay import request_headers
from atwh.recover.selection import Candidate

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _name(index: int, c: Candidate) -> str:
    return f"{index:04d}-{_UNSAFE.sub('_', c.event_id or c.key)[:80]}"


def save(
    candidates: Sequence[Candidate], target: str, secret: str | None, directory: Path
) -> list[Path]:
    """For each event, `NNNN-EVENT.body` (the exact bytes) and `NNNN-EVENT.json` (method,
    URL, headers, and the body's file); the files written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"--save {directory}: {e.strerror or e}") from None
    written: list[Path] = []
    for i, c in enumerate((c for c in candidates if c.skip is None), 1):
        assert c.body is not None
        stem = _name(i, c)
        request = {
            "method": "POST",
            "url": target,
            "headers": request_headers(c, secret),
            "body": f"{stem}.body",
            "eventId": c.event_id,
            "eventName": c.event_name,
            "replayOf": c.origin,
        }
        try:
            (directory / f"{stem}.body").write_bytes(c.body)
            (directory / f"{stem}.json").write_text(json.dumps(request, indent=2) + "\n")
        except OSError as e:
            raise OutputError(f"--save {directory}: {e.strerror or e}") from None
        written += [directory / f"{stem}.body", directory / f"{stem}.json"]
    return written


def curl_commands(
    candidates: Sequence[Candidate], target: str, secret: str | None
) -> Iterator[str]:
    """One shell command per event, the body byte for byte (see `curl_command`)."""
    from atwh.curl import curl_command

    for c in candidates:
        if c.skip is not None:
            continue
        assert c.body is not None
        yield curl_command(target, request_headers(c, secret, "atwh"), c.body)
