"""Credentials: --token / ATWH_TOKEN, OAuth grants, the token cache, and re-authentication."""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from atwh.client import auth
from atwh.client.auth import OAuthToken, StaticToken, credentials
from atwh.errors import AuthError, ExitStatus, NetworkError
from tests.conftest import node

TOKEN_URL = "https://accounts.allthings.me/oauth/token"
CLIENT_ID = "cid"
SECRET = "s3cret-client-value"
OTHER_ID = "cid-2"
OTHER_SECRET = "other-s3cret-value"
MISSING = object()
OAUTH_ENV = {"ALLTHINGS_OAUTH_CLIENT_ID": CLIENT_ID, "ALLTHINGS_OAUTH_CLIENT_SECRET": SECRET}


@dataclass
class TokenServer:
    """An OAuth token endpoint: client credentials (either spelling), password, refresh."""

    clients: dict[str, str] = field(
        default_factory=lambda: {CLIENT_ID: SECRET, OTHER_ID: OTHER_SECRET}
    )
    spellings: set[str] = field(
        default_factory=lambda: {"client-credentials", "client_credentials"}
    )
    users: dict[str, str] = field(default_factory=dict)
    issue_refresh: bool = False  # full grants hand out a refresh token
    refresh_on_refresh: bool = True  # refresh grants hand out a new refresh token
    valid_refresh: set[str] = field(default_factory=set)
    expires_in: Any = 3600
    prefix: str = "at-"
    responses: list[Any] = field(default_factory=list)  # served (or raised) first, in order
    requests: list[httpx.Request] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    issued: int = 0

    @property
    def grants(self) -> list[str]:
        return [f.get("grant_type", "") for f in self.forms]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raw = parse_qs(request.content.decode(), keep_blank_values=True, strict_parsing=True)
        assert all(len(v) == 1 for v in raw.values()), raw
        form = {k: v[0] for k, v in raw.items()}
        self.forms.append(form)
        if self.responses:
            item = self.responses.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        client = form.get("client_id", "")
        secret = self.clients.get(client)
        if secret is None or form.get("client_secret", secret) != secret:
            return httpx.Response(401, json={"error": "invalid_client"})
        grant = form.get("grant_type")
        if grant in ("client-credentials", "client_credentials"):
            if grant not in self.spellings:
                return httpx.Response(400, json={"error": "unsupported_grant_type"})
            if "client_secret" not in form:
                return httpx.Response(401, json={"error": "invalid_client"})
            return self._issue(refresh=self.issue_refresh)
        if grant == "password":
            if self.users.get(form.get("username", "")) != form.get("password"):
                return httpx.Response(400, json={"error": "invalid_grant"})
            return self._issue(refresh=self.issue_refresh)
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.valid_refresh:
                return httpx.Response(400, json={"error": "invalid_grant"})
            return self._issue(refresh=self.refresh_on_refresh)
        return httpx.Response(400, json={"error": "unsupported_grant_type"})

    def _issue(self, refresh: bool) -> httpx.Response:
        self.issued += 1
        body: dict[str, Any] = {
            "access_token": f"{self.prefix}{self.issued}",
            "token_type": "Bearer",
        }
        if self.expires_in is not MISSING:
            body["expires_in"] = self.expires_in
        if refresh:
            body["refresh_token"] = f"rt-{self.issued}"
            self.valid_refresh.add(body["refresh_token"])
        return httpx.Response(200, json=body)


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(side_effect=server)
        yield server


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The time atwh.client.auth sees (for expiry), moved by hand."""
    c = Clock()
    monkeypatch.setattr(auth, "time", c)
    return c


@pytest.fixture
def oauth_cli(atwh, monkeypatch) -> Callable[..., Any]:
    """`atwh` with OAuth client credentials in the env and no ATWH_TOKEN."""
    monkeypatch.delenv("ATWH_TOKEN", raising=False)
    for name, value in OAUTH_ENV.items():
        monkeypatch.setenv(name, value)
    return atwh


@pytest.fixture
def hook(fake_api):
    fake_api.add("w1", [node(1), node(2, code=500)])
    return fake_api


def provider(client_id: str = CLIENT_ID, secret: str | None = SECRET, **kw: Any) -> OAuthToken:
    return OAuthToken(client_id=client_id, client_secret=secret, **kw)


def cache_file(tmp_path) -> Any:
    return tmp_path / "cache" / "tokens.json"


def bearers(fake_api) -> list[str]:
    return [r["headers"].get("authorization") for r in fake_api.requests]


# -- which credentials ---------------------------------------------------------------------


def test_token_argument_wins_over_everything():
    env = {"ATWH_TOKEN": "env-tok", **OAUTH_ENV}
    creds = credentials("arg-tok", env=env)
    assert isinstance(creds, StaticToken) and creds.token() == "arg-tok"
    assert creds.renew() is False


def test_atwh_token_wins_over_oauth_variables():
    creds = credentials(env={"ATWH_TOKEN": " env-tok ", **OAUTH_ENV})
    assert isinstance(creds, StaticToken) and creds.token() == "env-tok"


def test_oauth_variables_give_an_oauth_provider():
    creds = credentials(env=OAUTH_ENV)
    assert isinstance(creds, OAuthToken)
    assert creds.client_id == CLIENT_ID and creds.token_url == TOKEN_URL


@pytest.mark.parametrize("env", [{}, {"ATWH_TOKEN": "   ", "ALLTHINGS_OAUTH_CLIENT_ID": " "}])
def test_no_credentials_is_an_auth_error_naming_the_variables(env):
    with pytest.raises(AuthError) as e:
        credentials(env=env)
    message = e.value.message
    assert "\n" not in message
    assert "ATWH_TOKEN" in message and "ALLTHINGS_OAUTH_CLIENT_ID" in message


def test_cli_without_credentials_exits_3(runner, fake_api):
    from atwh.cli import app

    fake_api.add("w1", [node(1)])
    result = runner.invoke(app, ["deliveries", "w1"], prog_name="atwh")
    assert result.exit_code == ExitStatus.AUTH
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "ATWH_TOKEN" in lines[0] and "ALLTHINGS_OAUTH_CLIENT_ID" in lines[0]
    assert fake_api.requests == []


def test_cli_atwh_token_wins_over_oauth(atwh, hook, token_server, monkeypatch):
    for name, value in OAUTH_ENV.items():
        monkeypatch.setenv(name, value)
    result = atwh("deliveries", "w1", "--json")
    assert result.exit_code == 0, result.output
    assert bearers(hook) == ["Bearer test-token"]
    assert token_server.forms == []


def test_cli_token_option_wins_over_env_and_oauth(atwh, hook, token_server, monkeypatch):
    for name, value in OAUTH_ENV.items():
        monkeypatch.setenv(name, value)
    result = atwh("deliveries", "w1", "--json", "--token", "option-token")
    assert result.exit_code == 0, result.output
    assert bearers(hook) == ["Bearer option-token"]
    assert token_server.forms == []


def test_cli_uses_oauth_without_a_token(oauth_cli, hook, token_server):
    result = oauth_cli("deliveries", "w1", "--json")
    assert result.exit_code == 0, result.output
    assert bearers(hook) == ["Bearer at-1"]
    assert token_server.grants == ["client-credentials"]


# -- grants --------------------------------------------------------------------------------


def test_client_credentials_grant_is_a_form_post(token_server):
    assert provider().token() == "at-1"
    (request,) = token_server.requests
    assert request.method == "POST"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert token_server.forms == [
        {"grant_type": "client-credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
    ]


def test_other_spelling_tried_after_unsupported_grant_type(token_server):
    token_server.spellings = {"client_credentials"}
    assert provider().token() == "at-1"
    assert token_server.grants == ["client-credentials", "client_credentials"]
    assert all(
        f["client_id"] == CLIENT_ID and f["client_secret"] == SECRET for f in token_server.forms
    )


def test_working_spelling_is_remembered_and_tried_first(token_server, clock):
    token_server.spellings = {"client_credentials"}
    provider().token()
    clock.advance(7200)  # expired, no refresh token: a full grant again
    assert provider().token() == "at-2"
    assert token_server.grants == ["client-credentials", "client_credentials", "client_credentials"]


def test_working_spelling_is_remembered_across_a_refresh(token_server, clock):
    token_server.spellings = {"client_credentials"}
    token_server.issue_refresh = True
    provider().token()  # client-credentials (refused), client_credentials
    clock.advance(7200)
    assert provider().token() == "at-2"  # a new run: refreshed
    assert token_server.grants[-1] == "refresh_token"
    token_server.valid_refresh.clear()  # the refresh token dies
    clock.advance(7200)
    before = len(token_server.forms)
    assert provider().token() == "at-3"
    assert token_server.grants[before:] == ["refresh_token", "client_credentials"]


def test_server_accepting_neither_spelling_is_an_auth_error(token_server, tmp_path):
    token_server.spellings = set()
    with pytest.raises(AuthError) as e:
        provider().token()
    assert "client-credentials" in e.value.message and "client_credentials" in e.value.message
    assert token_server.grants == ["client-credentials", "client_credentials"]
    assert token_server.issued == 0


def test_missing_client_secret_is_an_auth_error_without_a_request(token_server):
    with pytest.raises(AuthError) as e:
        credentials(env={"ALLTHINGS_OAUTH_CLIENT_ID": CLIENT_ID}).token()
    assert "ALLTHINGS_OAUTH_CLIENT_SECRET" in e.value.message
    assert token_server.forms == []


def test_password_grant_with_username_and_password(token_server):
    token_server.users = {"ann@example.com": "pw-1"}
    env = {
        **OAUTH_ENV,
        "ALLTHINGS_OAUTH_USERNAME": "ann@example.com",
        "ALLTHINGS_OAUTH_PASSWORD": "pw-1",
    }
    assert credentials(env=env).token() == "at-1"
    assert token_server.forms == [
        {
            "grant_type": "password",
            "username": "ann@example.com",
            "password": "pw-1",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
        }
    ]


def test_password_grant_without_client_secret(token_server):
    token_server.users = {"ann": "pw"}
    env = {
        "ALLTHINGS_OAUTH_CLIENT_ID": CLIENT_ID,
        "ALLTHINGS_OAUTH_USERNAME": "ann",
        "ALLTHINGS_OAUTH_PASSWORD": "pw",
    }
    assert credentials(env=env).token() == "at-1"
    assert token_server.forms == [
        {"grant_type": "password", "username": "ann", "password": "pw", "client_id": CLIENT_ID}
    ]


@pytest.mark.parametrize("base", ["https://auth.example.test", "https://auth.example.test/"])
def test_oauth_url_overrides_the_token_url(base):
    server = TokenServer()
    with respx.mock(assert_all_called=False) as router:
        default = router.post(TOKEN_URL).mock(return_value=httpx.Response(500))
        custom = router.post("https://auth.example.test/oauth/token").mock(side_effect=server)
        creds = credentials(env={**OAUTH_ENV, "ALLTHINGS_OAUTH_URL": base})
        assert creds.token() == "at-1"
    assert custom.call_count == 1 and default.call_count == 0
    assert str(server.requests[0].url) == "https://auth.example.test/oauth/token"


def test_oauth_url_override_through_the_cli(oauth_cli, hook, monkeypatch):
    monkeypatch.setenv("ALLTHINGS_OAUTH_URL", "https://auth.example.test/")
    server = TokenServer()
    with respx.mock(assert_all_called=False) as router:
        default = router.post(TOKEN_URL).mock(return_value=httpx.Response(500))
        router.post("https://auth.example.test/oauth/token").mock(side_effect=server)
        result = oauth_cli("deliveries", "w1", "--json")
    assert result.exit_code == 0, result.output
    assert default.call_count == 0 and len(server.forms) == 1
    assert bearers(hook) == ["Bearer at-1"]


# -- the token cache -----------------------------------------------------------------------


def test_cache_file_is_written_with_mode_0600(token_server, tmp_path):
    provider().token()
    path = cache_file(tmp_path)
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "at-1" in path.read_text()


def test_second_provider_reuses_the_cached_token(token_server):
    assert provider().token() == "at-1"
    assert provider().token() == "at-1"
    assert len(token_server.forms) == 1


def test_second_cli_run_reuses_the_cached_token(oauth_cli, hook, token_server):
    for _ in range(2):
        result = oauth_cli("deliveries", "w1", "--json")
        assert result.exit_code == 0, result.output
    assert len(token_server.forms) == 1
    assert bearers(hook) == ["Bearer at-1", "Bearer at-1"]


def test_expired_token_with_refresh_token_is_refreshed(token_server, clock):
    token_server.issue_refresh = True
    assert provider().token() == "at-1"
    clock.advance(3600)
    assert provider().token() == "at-2"
    assert token_server.forms[1] == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-1",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }


def test_refresh_token_is_kept_when_the_refresh_answer_has_none(token_server, clock):
    """OAuth servers need not rotate refresh tokens: the old one stays good (RFC 6749 6)."""
    token_server.issue_refresh = True
    token_server.refresh_on_refresh = False
    provider().token()
    clock.advance(3600)
    assert provider().token() == "at-2"  # a new run refreshes with rt-1
    clock.advance(3600)
    assert provider().token() == "at-3"  # and so does the next one
    assert token_server.grants == ["client-credentials", "refresh_token", "refresh_token"]
    assert token_server.forms[2]["refresh_token"] == "rt-1"


def test_failed_refresh_falls_back_to_a_full_grant(token_server, clock):
    token_server.issue_refresh = True
    provider().token()
    token_server.valid_refresh.clear()
    clock.advance(3600)
    assert provider().token() == "at-2"
    assert token_server.grants == ["client-credentials", "refresh_token", "client-credentials"]


def test_dead_refresh_token_is_not_tried_again(token_server, clock):
    token_server.issue_refresh = True
    creds = provider()
    creds.token()
    token_server.valid_refresh.clear()
    token_server.issue_refresh = False  # the server now hands out no refresh tokens
    clock.advance(3600)
    assert creds.token() == "at-2"  # rt-1 refused, then a full grant
    clock.advance(3600)
    before = len(token_server.forms)
    assert creds.token() == "at-3"
    assert token_server.grants[before:] == ["client-credentials"]


def test_expired_token_without_refresh_token_gets_a_full_grant(token_server, clock):
    assert provider().token() == "at-1"
    clock.advance(3600)
    assert provider().token() == "at-2"
    assert token_server.grants == ["client-credentials", "client-credentials"]


def test_same_provider_fetches_again_after_expiry(token_server, clock):
    creds = provider()
    assert creds.token() == "at-1"
    clock.advance(1800)
    assert creds.token() == "at-1"
    clock.advance(1800)
    assert creds.token() == "at-2"


def _corrupt_entries(tmp_path, change: Callable[[dict[str, Any]], Any]) -> None:
    path = cache_file(tmp_path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({k: change(dict(v)) for k, v in data.items()}))


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json {",
        b'{"truncated": {"access_token": "x", "expi',
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'"a string"',
        b"null",
    ],
)
def test_corrupt_cache_file_is_ignored(token_server, tmp_path, content):
    path = cache_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert provider().token() == "at-1"
    assert provider().token() == "at-1"  # and the cache works again
    assert len(token_server.forms) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "change",
    [
        lambda e: "not an entry",
        lambda e: [e],
        lambda e: {**e, "access_token": 42},
        lambda e: {k: v for k, v in e.items() if k != "expires_at"},
        lambda e: {**e, "expires_at": "tomorrow"},
        lambda e: {**e, "expires_at": None},
        lambda e: {**e, "expires_at": [1]},
    ],
    ids=[
        "string",
        "list",
        "token-not-str",
        "no-expiry",
        "expiry-str",
        "expiry-null",
        "expiry-list",
    ],
)
def test_corrupt_cache_entry_is_ignored(token_server, tmp_path, change):
    provider().token()
    _corrupt_entries(tmp_path, change)
    token = provider().token()  # no crash: the entry is as good as absent
    assert token == "at-2"
    assert len(token_server.forms) == 2


def test_corrupt_cache_does_not_break_the_cli(oauth_cli, hook, token_server, tmp_path):
    path = cache_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{{{ nope")
    result = oauth_cli("deliveries", "w1", "--json")
    assert result.exit_code == 0, result.output
    assert bearers(hook) == ["Bearer at-1"]


def test_cached_tokens_are_per_client_id(token_server):
    assert provider(CLIENT_ID, SECRET).token() == "at-1"
    assert provider(OTHER_ID, OTHER_SECRET).token() == "at-2"
    assert token_server.forms[1]["client_id"] == OTHER_ID
    # both stay cached, neither overwrote the other
    assert provider(CLIENT_ID, SECRET).token() == "at-1"
    assert provider(OTHER_ID, OTHER_SECRET).token() == "at-2"
    assert len(token_server.forms) == 2


def test_cached_tokens_are_per_user(token_server):
    token_server.users = {"ann": "pw-a", "bob": "pw-b"}
    assert provider(username="ann", password="pw-a").token() == "at-1"
    assert provider(username="bob", password="pw-b").token() == "at-2"
    assert provider(username="ann", password="pw-a").token() == "at-1"
    assert len(token_server.forms) == 2


# -- re-authentication after a 401 ---------------------------------------------------------

UNAUTHORIZED = [
    pytest.param(lambda: httpx.Response(401, json={"message": "Unauthorized"}), id="plain"),
    pytest.param(
        lambda: httpx.Response(
            401,
            json={
                "errors": [{"message": "jwt expired", "extensions": {"code": "UNAUTHENTICATED"}}]
            },
        ),
        id="graphql",
    ),
    pytest.param(lambda: httpx.Response(401, text="Unauthorized"), id="text"),
]


@pytest.mark.parametrize("unauthorized", UNAUTHORIZED)
def test_401_gets_a_new_token_once_and_retries(oauth_cli, hook, token_server, unauthorized):
    hook.responses.append(unauthorized())
    result = oauth_cli("deliveries", "w1", "--json")
    assert result.exit_code == 0, result.output
    assert [d["id"] for d in json.loads(result.stdout)] == ["d1", "d2"]
    assert len(token_server.forms) == 2
    assert bearers(hook) == ["Bearer at-1", "Bearer at-2"]


def test_401_with_refresh_token_refreshes_once(oauth_cli, hook, token_server):
    token_server.issue_refresh = True
    hook.responses.append(httpx.Response(401, json={"message": "Unauthorized"}))
    result = oauth_cli("deliveries", "w1", "--json")
    assert result.exit_code == 0, result.output
    assert token_server.grants == ["client-credentials", "refresh_token"]
    assert bearers(hook) == ["Bearer at-1", "Bearer at-2"]


def test_401_after_renewal_exits_3(oauth_cli, hook, token_server):
    hook.responses += [httpx.Response(401, json={"message": "Unauthorized"}) for _ in range(3)]
    result = oauth_cli("deliveries", "w1", "--json")
    assert result.exit_code == ExitStatus.AUTH, result.output
    assert len(token_server.forms) == 2
    assert bearers(hook) == ["Bearer at-1", "Bearer at-2"]
    assert "401" in result.stderr


def test_renewed_token_is_cached_for_the_next_run(oauth_cli, hook, token_server):
    hook.responses.append(httpx.Response(401, json={"message": "Unauthorized"}))
    assert oauth_cli("deliveries", "w1", "--json").exit_code == 0
    assert oauth_cli("deliveries", "w1", "--json").exit_code == 0
    assert len(token_server.forms) == 2
    assert bearers(hook)[-1] == "Bearer at-2"


@pytest.mark.parametrize("unauthorized", UNAUTHORIZED)
def test_401_with_a_static_token_exits_3_without_the_token_endpoint(
    atwh, hook, token_server, monkeypatch, unauthorized
):
    for name, value in OAUTH_ENV.items():  # present, but ATWH_TOKEN wins
        monkeypatch.setenv(name, value)
    hook.responses.append(unauthorized())
    result = atwh("deliveries", "w1", "--json")
    assert result.exit_code == ExitStatus.AUTH, result.output
    assert token_server.forms == []
    assert len(hook.requests) == 1


# -- token endpoint errors -----------------------------------------------------------------


def test_invalid_client_is_an_auth_error_with_the_description(token_server):
    token_server.responses.append(
        httpx.Response(401, json={"error": "invalid_client", "error_description": "bad secret"})
    )
    with pytest.raises(AuthError) as e:
        provider().token()
    assert "bad secret" in e.value.message
    assert len(token_server.forms) == 1  # not a spelling problem: no second try


def test_invalid_client_through_the_cli_exits_3(oauth_cli, hook, token_server):
    token_server.responses.append(
        httpx.Response(401, json={"error": "invalid_client", "error_description": "bad secret"})
    )
    result = oauth_cli("deliveries", "w1", "--json")
    assert result.exit_code == ExitStatus.AUTH, result.output
    assert "bad secret" in result.stderr
    assert len(token_server.forms) == 1
    assert hook.requests == []


def test_missing_client_secret_through_the_cli_exits_3(oauth_cli, hook, token_server, monkeypatch):
    monkeypatch.delenv("ALLTHINGS_OAUTH_CLIENT_SECRET")
    result = oauth_cli("deliveries", "w1", "--json")
    assert result.exit_code == ExitStatus.AUTH, result.output
    assert "ALLTHINGS_OAUTH_CLIENT_SECRET" in result.stderr
    assert token_server.forms == []


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, text="<html>Internal Server Error</html>"),
        httpx.Response(502, text=""),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3600}),
        httpx.Response(200, json={"access_token": ""}),
        httpx.Response(200, json={"access_token": 12345}),
        httpx.Response(200, json={"access_token": None}),
        httpx.Response(200, json=["at-x"]),
        httpx.Response(400, json={"error": "invalid_request"}),
        httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000),
    ],
    ids=[
        "500-html",
        "502-empty",
        "200-text",
        "200-no-token",
        "200-empty-token",
        "200-int-token",
        "200-null-token",
        "200-list",
        "400-invalid-request",
        "200-nested-too-deeply",
    ],
)
def test_bad_token_endpoint_answers_are_auth_errors(token_server, tmp_path, response):
    token_server.responses.append(response)
    with pytest.raises(AuthError):
        provider().token()
    assert len(token_server.forms) == 1
    assert not cache_file(tmp_path).exists()


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=["connect", "connect-timeout", "read-timeout"],
)
def test_unreachable_token_endpoint_is_a_network_error(token_server, error):
    token_server.responses.append(error)
    with pytest.raises(NetworkError) as e:
        provider().token()
    assert "accounts.allthings.me" in e.value.message


def test_unreachable_token_endpoint_through_the_cli_exits_6(oauth_cli, hook, token_server):
    token_server.responses += [httpx.ConnectError("connection refused") for _ in range(10)]
    result = oauth_cli("deliveries", "w1", "--json")
    assert result.exit_code == ExitStatus.NETWORK, result.output
    assert "accounts.allthings.me" in result.stderr
    assert hook.requests == []


@pytest.mark.parametrize("expires_in", [MISSING, "junk", None, True, [60], {"s": 1}])
def test_missing_or_junk_expires_in_means_an_hour(token_server, clock, expires_in):
    token_server.expires_in = expires_in
    assert provider().token() == "at-1"
    clock.advance(3000)
    assert provider().token() == "at-1"  # still good after 50 minutes
    clock.advance(600)
    assert provider().token() == "at-2"  # not after an hour
    assert len(token_server.forms) == 2


def test_expires_in_is_honoured(token_server, clock):
    token_server.expires_in = 7200
    provider().token()
    clock.advance(5400)
    assert provider().token() == "at-1"
    assert len(token_server.forms) == 1


# -- secrets stay secret -------------------------------------------------------------------

ACCESS = "ACCESS-TOKEN-VALUE-"


def _no_secrets(result: Any, caplog: Any) -> None:
    seen = result.output + (result.stderr or "") + caplog.text
    assert SECRET not in seen
    assert ACCESS not in seen


@pytest.fixture
def debug_logs(caplog) -> Any:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_secrets_not_printed_on_success(oauth_cli, hook, token_server, debug_logs):
    token_server.prefix = ACCESS
    result = oauth_cli("--debug", "deliveries", "w1", "--json")
    assert result.exit_code == 0, result.output
    assert bearers(hook) == [f"Bearer {ACCESS}1"]  # sent, yet never shown
    _no_secrets(result, debug_logs)


def test_secrets_not_printed_after_a_401(oauth_cli, hook, token_server, debug_logs):
    token_server.prefix = ACCESS
    hook.responses += [httpx.Response(401, json={"message": "Unauthorized"}) for _ in range(2)]
    result = oauth_cli("--debug", "deliveries", "w1", "--json")
    assert result.exit_code == ExitStatus.AUTH, result.output
    _no_secrets(result, debug_logs)


@pytest.mark.parametrize(
    "response",
    [
        lambda: httpx.Response(
            401, json={"error": "invalid_client", "error_description": "bad secret"}
        ),
        lambda: httpx.Response(500, text="oops"),
        lambda: httpx.Response(200, json={"token_type": "Bearer"}),
    ],
    ids=["invalid-client", "500", "no-token"],
)
def test_secrets_not_printed_on_token_errors(oauth_cli, hook, token_server, debug_logs, response):
    token_server.responses += [response() for _ in range(5)]
    result = oauth_cli("--debug", "deliveries", "w1", "--json")
    assert result.exit_code != 0
    _no_secrets(result, debug_logs)


def test_secret_not_printed_when_the_token_endpoint_is_unreachable(
    oauth_cli, hook, token_server, debug_logs
):
    token_server.responses += [httpx.ConnectError("connection refused")] * 10
    result = oauth_cli("--debug", "deliveries", "w1", "--json")
    assert result.exit_code == ExitStatus.NETWORK
    _no_secrets(result, debug_logs)


def test_cache_file_not_world_readable_even_with_permissive_umask(token_server, tmp_path):
    old = os.umask(0)
    try:
        provider().token()
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache_file(tmp_path).stat().st_mode) == 0o600
