"""Where atwh keeps its files, the optional config file, and the URLs it is given."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from atwh.errors import UsageError, printable

DEFAULT_API_URL = "https://webhooks.allthings.me/"
DEFAULT_OAUTH_URL = "https://accounts.allthings.me"


def _dir(env: str, kind: str) -> Path:
    override = os.environ.get(env)
    if override:
        return Path(override)
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")("atwh", appauthor=False))


def config_dir() -> Path:
    return _dir("ATWH_CONFIG_DIR", "config")


def cache_dir() -> Path:
    return _dir("ATWH_CACHE_DIR", "cache")


def data_dir() -> Path:
    return _dir("ATWH_DATA_DIR", "data")


def config_path() -> Path:
    return Path(os.environ.get("ATWH_CONFIG") or config_dir() / "config.toml")


@dataclass(slots=True)
class Config:
    """The config file: `webhooks = ["id", …]`, `api_url = "…"`, `app_id = "…"` and
    `project_id = "…"`, all optional."""

    webhooks: list[str] = field(default_factory=list)
    api_url: str | None = None
    path: Path | None = None
    app_id: str | None = None  # the app `atwh webhooks` works on
    project_id: str | None = None  # or the project


def load_config(path: Path | None = None) -> Config:
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config(path=path)
    except OSError as e:
        raise UsageError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"config file {path} is not valid TOML: {e}") from None
    webhooks = data.get("webhooks", [])
    if isinstance(webhooks, str):
        webhooks = [webhooks]
    if not isinstance(webhooks, list) or not all(isinstance(w, str) for w in webhooks):
        raise UsageError(f"config file {path}: 'webhooks' must be a list of webhook ids")
    api_url = data.get("api_url")
    if api_url is not None and not isinstance(api_url, str):
        raise UsageError(f"config file {path}: 'api_url' must be a string")
    ids = {}
    for key in ("app_id", "project_id"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise UsageError(f"config file {path}: '{key}' must be a string")
        ids[key] = value.strip() if value and value.strip() else None
    _say_unknown(path, [k for k in data if k not in KNOWN_KEYS])
    return Config(
        webhooks=[w for w in webhooks if w.strip()],
        api_url=api_url,
        path=path,
        app_id=ids["app_id"],
        project_id=ids["project_id"],
    )


def http_url(flag: str, url: str) -> str:
    """The URL given with `flag`, or one usage line when it is not http(s) with a host."""
    import httpx

    parsed: httpx.URL | None
    host: str | None
    port: int | None
    try:
        parsed = httpx.URL(url)
        host, port = parsed.host, parsed.port  # (an IDNA name that cannot be: ValueError)
        httpx.Request("POST", parsed)  # what a request would make of it
    except (httpx.InvalidURL, ValueError):
        parsed = host = None
        port = None
    if parsed is None or parsed.scheme not in ("http", "https") or not host:
        raise UsageError(f"{flag} {url!r} is not an http(s) URL")
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"{flag} {url!r}: port {port} is not one (1 to 65535)")
    return url


KNOWN_KEYS = ("webhooks", "api_url", "app_id", "project_id")
_said: set[Path] = set()


def _say_unknown(path: Path, unknown: list[str]) -> None:
    """Once a process, on stderr: the keys of the config file atwh does not read (a typo
    would otherwise be silently ignored)."""
    import difflib
    import sys

    if not unknown or path in _said:
        return
    _said.add(path)
    names = []
    for key in unknown:
        close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
        shown = repr(printable(key, 60))
        names.append(f"{shown} (did you mean {close[0]!r}?)" if close else shown)
    sys.stderr.write(
        f"Warning: config file {path}: ignored {', '.join(names)}; "
        f"the keys it reads are {', '.join(KNOWN_KEYS)}\n"
    )
