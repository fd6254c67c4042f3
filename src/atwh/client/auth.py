"""Credentials: a bearer token given by the user, or OAuth with the official SDK's variables.

OAuth tokens are cached per (token URL, client, user) in the user's cache dir, mode 0600,
until they expire; an expired one is refreshed with its refresh token when there is one.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from atwh.core.config import DEFAULT_OAUTH_URL, cache_dir
from atwh.core.transport import MAX_TOKEN_BYTES, Deadline, http_transport, post
from atwh.errors import AuthError, NetworkError, keep_secret, printable

EXPIRY_MARGIN = 60  # seconds before expiry at which a cached token counts as expired
CLIENT_CREDENTIALS_SPELLINGS = ("client-credentials", "client_credentials")
NO_CREDENTIALS = (
    "no credentials: set ATWH_TOKEN (or pass --token), or ALLTHINGS_OAUTH_CLIENT_ID and "
    "ALLTHINGS_OAUTH_CLIENT_SECRET (plus ALLTHINGS_OAUTH_USERNAME and "
    "ALLTHINGS_OAUTH_PASSWORD for the password grant)"
)


class TokenProvider(Protocol):
    def token(self) -> str: ...

    def renew(self) -> bool:
        """Forget the current token after the API refused it; True if a new one can be had."""
        ...


@dataclass(slots=True)
class StaticToken:
    value: str

    def __post_init__(self) -> None:
        keep_secret(self.value)

    def token(self) -> str:
        return self.value

    def renew(self) -> bool:
        return False


class OAuthToken:
    """Tokens from `<oauth url>/oauth/token`, cached on disk."""

    def __init__(
        self,
        client_id: str,
        client_secret: str | None,
        username: str | None = None,
        password: str | None = None,
        oauth_url: str = DEFAULT_OAUTH_URL,
        timeout: float = 30.0,
        cache_file: Path | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        keep_secret(client_secret)
        keep_secret(password)
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = username
        self.password = password
        self.token_url = oauth_url.rstrip("/") + "/oauth/token"
        self.timeout = timeout
        self.cache_file = cache_file or cache_dir() / "tokens.json"
        self.transport = transport
        self.key = hashlib.sha256(
            "\0".join([self.token_url, client_id, username or ""]).encode()
        ).hexdigest()
        self._lock = threading.Lock()
        self._entry: dict[str, Any] | None = None

    @property
    def grant(self) -> str:
        return "password" if self.username and self.password else "client-credentials"

    def token(self) -> str:
        with self._lock:
            entry = self._entry or self._read_cache()
            self._entry = entry
            if entry and entry["expires_at"] - EXPIRY_MARGIN > time.time():
                return str(entry["access_token"])
            refresh = entry.get("refresh_token") if entry else None
            new = None
            if refresh:
                try:
                    new = self._request({"grant_type": "refresh_token", "refresh_token": refresh})
                except AuthError:
                    # the refresh token is refused too: forget it and start over
                    if self._entry is not None:
                        self._entry.pop("refresh_token", None)
            if new is None:
                new = self._grant()
            self._store(new)
            return str(new["access_token"])

    def renew(self) -> bool:
        with self._lock:
            if self._entry is None:
                self._entry = self._read_cache()
            if self._entry:
                self._entry["expires_at"] = 0
                self._write_cache(self._entry)
        return True

    def _grant(self) -> dict[str, Any]:
        if self.grant == "password":
            return self._request(
                {"grant_type": "password", "username": self.username, "password": self.password}
            )
        if not self.client_secret:
            raise AuthError(
                "ALLTHINGS_OAUTH_CLIENT_SECRET is not set (the client-credentials grant needs it)",
                hint="or set ALLTHINGS_OAUTH_USERNAME and ALLTHINGS_OAUTH_PASSWORD",
            )
        cached = self._read_cache() or {}
        spellings = list(CLIENT_CREDENTIALS_SPELLINGS)
        if cached.get("grant_type") in spellings:  # the one this server took last time
            spellings.remove(cached["grant_type"])
            spellings.insert(0, cached["grant_type"])
        for i, spelling in enumerate(spellings):
            try:
                answer = self._request({"grant_type": spelling})
                answer["grant_type"] = spelling
                return answer
            except _UnsupportedGrant:
                if i == len(spellings) - 1:
                    raise AuthError(
                        f"the token endpoint {self.token_url} accepts neither "
                        "'client-credentials' nor 'client_credentials'"
                    ) from None
        raise AssertionError("unreachable")

    def _request(self, form: Mapping[str, str | None]) -> dict[str, Any]:
        data = {k: v for k, v in form.items() if v is not None}
        data["client_id"] = self.client_id
        if self.client_secret:
            data["client_secret"] = self.client_secret
        deadline = Deadline()
        transport = self.transport or http_transport(deadline)
        try:
            with httpx.Client(timeout=self.timeout, transport=transport) as http:
                deadline.start(self.timeout)
                response = post(
                    http,
                    self.token_url,
                    deadline,
                    MAX_TOKEN_BYTES,
                    what="the token endpoint's answer",
                    data=data,
                    headers={"Accept": "application/json"},
                )
        except httpx.TimeoutException:
            raise NetworkError(f"the token endpoint {self.token_url} timed out") from None
        except httpx.HTTPError as e:
            raise NetworkError(
                f"cannot reach the token endpoint {self.token_url}: {printable(e)}"
            ) from None
        from atwh.core import jsontext

        try:
            body = jsontext.loads(response.content)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if response.status_code >= 400 or "access_token" not in body:
            error = printable(body.get("error") or "")
            if error == "unsupported_grant_type" and str(form.get("grant_type")).startswith(
                "client"
            ):
                raise _UnsupportedGrant()
            detail = printable(body.get("error_description") or error or response.reason_phrase)
            raise AuthError(
                f"the token endpoint refused the {form.get('grant_type')} grant "
                f"(HTTP {response.status_code}: {detail})",
                hint="check ALLTHINGS_OAUTH_CLIENT_ID / _SECRET (and _USERNAME / _PASSWORD)",
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError("the token endpoint answered without a usable access_token")
        expires_in = body.get("expires_in", 3600)
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            expires_in = 3600
        keep_secret(token)
        entry: dict[str, Any] = {
            "access_token": token,
            "expires_at": time.time() + float(expires_in),
        }
        refresh = body.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            keep_secret(refresh)
            entry["refresh_token"] = refresh
        return entry

    def _store(self, entry: dict[str, Any]) -> None:
        if "grant_type" not in entry and self._entry and self._entry.get("grant_type"):
            entry["grant_type"] = self._entry["grant_type"]
        if "refresh_token" not in entry and self._entry and self._entry.get("refresh_token"):
            entry["refresh_token"] = self._entry["refresh_token"]
        self._entry = entry
        self._write_cache(entry)

    def _read_all(self) -> dict[str, Any]:
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _read_cache(self) -> dict[str, Any] | None:
        entry = self._read_all().get(self.key)
        if not isinstance(entry, dict) or not isinstance(entry.get("access_token"), str):
            return None
        expires = entry.get("expires_at")
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            return None
        if not isinstance(entry.get("refresh_token", ""), str):
            entry.pop("refresh_token")
        keep_secret(entry["access_token"])
        keep_secret(entry.get("refresh_token"))
        return entry

    def _write_cache(self, entry: dict[str, Any]) -> None:
        """Best effort: a cache that cannot be written costs a token request next time."""
        data = self._read_all()
        data[self.key] = entry
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.cache_file.with_name(f".{self.cache_file.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.cache_file)
        except OSError:
            pass


class _UnsupportedGrant(Exception):
    pass


def credentials(
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> TokenProvider:
    """The first credentials found: `--token`, ATWH_TOKEN, then the OAuth variables."""
    env = os.environ if env is None else env
    token = (token or env.get("ATWH_TOKEN") or "").strip()
    if token:
        return StaticToken(token)
    client_id = env.get("ALLTHINGS_OAUTH_CLIENT_ID", "").strip()
    if not client_id:
        raise AuthError(NO_CREDENTIALS)
    return OAuthToken(
        client_id=client_id,
        client_secret=env.get("ALLTHINGS_OAUTH_CLIENT_SECRET") or None,
        username=env.get("ALLTHINGS_OAUTH_USERNAME") or None,
        password=env.get("ALLTHINGS_OAUTH_PASSWORD") or None,
        oauth_url=env.get("ALLTHINGS_OAUTH_URL") or DEFAULT_OAUTH_URL,
        timeout=timeout,
        transport=transport,
    )
