"""Replays written down instead of sent: files to keep as test fixtures (`--save DIR`), or
ready-to-run curl commands (`--as curl`)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from atwh.errors import OutputError
from atwh.recover.replay import request_headers
from atwh.recover.selection import Candidate

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _name(index: int, c: Candidate) -> str:
    return f"{index:04d}-{_UNSAFE.sub('_', c.event_id or c.key)[:80]}"


def write_private(path: Path, data: bytes) -> None:
    """`data` into `path`, a file only its owner can read (0600, whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # a file that was there before, with another mode
        f.write(data)


def save(
    candidates: Sequence[Candidate], target: str, secret: str | None, directory: Path
) -> list[Path]:
    """For each event, `NNNN-EVENT.body` (the exact bytes) and `NNNN-EVENT.json` (method,
    URL, headers, and the body's file); the files written."""
    try:  # payloads and signatures: 0600 files in a 0700 directory, as the inbox
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"--save {directory}: {e.strerror or e}") from None
    written: list[Path] = []
    for i, c in enumerate((c for c in candidates if c.skip is None), 1):
        body = c.payload()
        stem = _name(i, c)
        request = {
            "method": "POST",
            "url": target,
            "headers": request_headers(c, secret, body=body),
            "body": f"{stem}.body",
            "eventId": c.event_id,
            "eventName": c.event_name,
            "replayOf": c.origin,
        }
        try:
            write_private(directory / f"{stem}.body", body)
            write_private(
                directory / f"{stem}.json", (json.dumps(request, indent=2) + "\n").encode()
            )
        except OSError as e:
            raise OutputError(f"--save {directory}: {e.strerror or e}") from None
        written += [directory / f"{stem}.body", directory / f"{stem}.json"]
    return written


CURL_INLINE = 64 * 1024  # bytes of body in a command; Linux takes 128 KiB in one argument


def curl_commands(
    candidates: Sequence[Candidate],
    target: str,
    secret: str | None,
    bodies: Path | None = None,
    inline: int = CURL_INLINE,
) -> Iterator[str]:
    """One shell command per event, the body byte for byte (see `curl_command`). A body
    over `inline` bytes would make an argument too long for the system to run ("Argument
    list too long"): it is written into `bodies` (default: the current directory) as
    `atwh-curl-NNNN-EVENT.body`, 0600, and the command reads it with `--data-binary @FILE`
    (an absolute path)."""
    from atwh.curl import curl_command

    for i, c in enumerate((c for c in candidates if c.skip is None), 1):
        body = c.payload()
        headers = request_headers(c, secret, "atwh", body=body)
        body_file = None
        if len(body) > inline:
            path = (bodies or Path.cwd()).absolute() / f"atwh-curl-{_name(i, c)}.body"
            try:
                write_private(path, body)
            except OSError as e:
                raise OutputError(f"--as curl: cannot write {path}: {e.strerror or e}") from None
            body_file = str(path)
        yield curl_command(target, headers, body, body_file)
