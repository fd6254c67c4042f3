"""`atwh webhooks`, against a mocked API (respx): every query and mutation, the answers it
can give (success:false with each code, a null webhook, pages, a server that rejects the
paging arguments), the checks made before sending, confirmation, and secrets kept hidden."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx

from tests.conftest import API_URL

SECRET = "c0ffee5ecret0123456789abcdef0123456789abcdef"
CATALOGUE = [
    {"namespace": "ticket", "eventName": "ticket.created", "description": "A ticket was created."},
    {"namespace": "ticket", "eventName": "ticket.updated", "description": "A ticket changed."},
    {"namespace": "booking", "eventName": "booking.accepted", "description": "Accepted."},
]


def hook(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"wh-{i}",
        "createdDate": "2026-11-30T08:00:00.000Z",
        "description": f"hook {i}",
        "url": f"https://example.com/hook/{i}",
        "enabled": True,
        "events": ["ticket.created"],
        "urns": ["urn:allthings:app:a1:*"],
        "secret": SECRET,
        **extra,
    }


@dataclass
class Api:
    """A Webhooks API with webhooks; answers each operation by its name."""

    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    page_cap: int = 2
    reject_paging: bool = False
    repeat_cursor: bool = False
    catalogue: list[dict[str, Any]] | None = field(default_factory=lambda: list(CATALOGUE))
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # mutation: result
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    router: Any = None

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def variables(self, operation: str) -> dict[str, Any]:
        return next(v for name, v in reversed(self.calls) if name == operation)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        name = re.search(r"(?:query|mutation)\s+(\w+)", body["query"]).group(1)  # type: ignore[union-attr]
        variables = body.get("variables") or {}
        self.calls.append((name, variables))
        handler = getattr(self, f"_{name}")
        return httpx.Response(200, json=handler(variables))

    def _QueryWebhooks(self, v: dict[str, Any]) -> dict[str, Any]:
        if self.reject_paging:
            return {
                "errors": [
                    {
                        "message": "Unknown argument 'first' on field 'Query.webhooks'.",
                        "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                    }
                ]
            }
        nodes = [self._public(h) for h in self.hooks.values()]
        start = int(v["after"][1:]) if v.get("after") else 0
        chunk = nodes[start : start + min(v.get("first") or 100, self.page_cap)]
        end = start + len(chunk)
        cursor = "c0" if self.repeat_cursor else f"c{end}"
        return {
            "data": {
                "webhooks": {
                    "totalCount": len(nodes),
                    "pageInfo": {"hasNextPage": end < len(nodes), "endCursor": cursor},
                    "nodes": chunk,
                }
            }
        }

    def _QueryWebhooksUnpaged(self, v: dict[str, Any]) -> dict[str, Any]:
        nodes = [self._public(h) for h in self.hooks.values()]
        return {"data": {"webhooks": {"totalCount": len(nodes), "nodes": nodes}}}

    @staticmethod
    def _public(h: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in h.items() if k != "secret"}

    def _QueryWebhook(self, v: dict[str, Any]) -> dict[str, Any]:
        return {"data": {"webhook": self.hooks.get(v["id"])}}

    def _QueryRegisterableWebhookEvents(self, v: dict[str, Any]) -> dict[str, Any]:
        if self.catalogue is None:
            return {"errors": [{"message": "Cannot query field 'registerableWebhookEvents'."}]}
        return {"data": {"registerableWebhookEvents": self.catalogue}}

    def _mutation(self, field_name: str, default: dict[str, Any]) -> dict[str, Any]:
        return {"data": {field_name: self.answers.get(field_name, default)}}

    def _RegisterWebhook(self, v: dict[str, Any]) -> dict[str, Any]:
        new = hook(99, **{"enabled": True, **v["webhook"]})
        self.hooks[new["id"]] = new
        ok = {"code": "CREATED", "success": True, "message": "Webhook registered.", "webhook": new}
        return self._mutation("registerWebhook", ok)

    def _UpdateWebhook(self, v: dict[str, Any]) -> dict[str, Any]:
        current = self.hooks.get(v["id"])
        if current is None:
            missing = {"code": "NOT_FOUND", "success": False, "message": "No webhook."}
            return {"data": {"updateWebhook": {**missing, "webhook": None}}}
        current.update(v["webhook"])
        ok = {"code": "UPDATED", "success": True, "message": "Updated.", "webhook": current}
        return self._mutation("updateWebhook", ok)

    def _RemoveWebhook(self, v: dict[str, Any]) -> dict[str, Any]:
        gone = self.hooks.pop(v["id"], None)
        ok = {"code": "REMOVED", "success": True, "message": "Removed.", "webhook": gone}
        return self._mutation("removeWebhook", ok)


@pytest.fixture
def api():
    fake = Api()
    for i in (1, 2, 3):
        fake.hooks[f"wh-{i}"] = hook(i)
    with respx.mock(assert_all_called=False) as mock:
        mock.post(API_URL).mock(side_effect=fake)
        fake.router = mock
        yield fake


def out_err(result: Any) -> str:
    return result.stdout + result.stderr


# -- list -----------------------------------------------------------------------------------


def test_list_pages_through_every_webhook(atwh, api):
    result = atwh("webhooks", "list", "--app", "a1", "--json")
    assert result.exit_code == 0, result.stderr
    assert [h["id"] for h in json.loads(result.stdout)] == ["wh-1", "wh-2", "wh-3"]
    pages = [v for name, v in api.calls if name == "QueryWebhooks"]
    assert [p.get("after") for p in pages] == [None, "c2"]
    assert pages[0]["filter"] == {"appId": "a1"}


def test_list_table_has_the_columns(atwh, api):
    result = atwh("webhooks", "list", "--project", "p1", "--format", "table")
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header == ["ID", "Description", "URL", "Enabled", "Events", "URNs", "Created"]
    assert "wh-3" in result.stdout and "https://example.com/hook/2" in result.stdout
    assert api.variables("QueryWebhooks")["filter"] == {"projectId": "p1"}


LONG_ID = "0aa134d3-93a9-4acc-9caf-b238f0035437"


@pytest.mark.parametrize("columns", [60, 80])
def test_list_at_60_and_80_columns_keeps_whole_ids(atwh, api, monkeypatch, columns):
    api.hooks["wh-1"]["id"] = LONG_ID
    api.hooks["wh-1"]["url"] = "https://example.com/" + "a-long-path/" * 8
    monkeypatch.setenv("COLUMNS", str(columns))
    result = atwh("webhooks", "list", "--app", "a1", "--format", "table")
    assert LONG_ID in result.stdout and "wh-2" in result.stdout
    assert "…" in result.stdout  # the URL was shortened, not the id
    assert all(len(line) <= columns for line in result.stdout.splitlines())


def test_list_piped_is_tsv_with_a_header_and_nothing_cut(atwh, api):
    api.hooks["wh-1"]["id"] = LONG_ID
    long_url = "https://example.com/" + "a-long-path/" * 8
    api.hooks["wh-1"]["url"] = long_url
    result = atwh("webhooks", "list", "--app", "a1")
    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[0] == ["id", "description", "url", "enabled", "events", "urns", "created"]
    assert [r[0] for r in rows[1:]] == [LONG_ID, "wh-2", "wh-3"]
    assert rows[1][2] == long_url and rows[1][6] == "2026-11-30T08:00:00.000Z"
    assert "…" not in result.stdout


def test_list_format_other_than_table_or_json_is_refused(atwh, api):
    result = atwh("webhooks", "list", "--app", "a1", "--format", "csv")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --format csv: webhooks list prints a table or json")


def test_list_falls_back_when_the_api_rejects_paging(atwh, api):
    api.reject_paging = True
    result = atwh("webhooks", "list", "--app", "a1", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 3
    assert api.names() == ["QueryWebhooks", "QueryWebhooksUnpaged"]


def test_one_client_remembers_that_the_api_rejects_paging_webhooks(api):
    """Webhooks and deliveries page through one ApiClient.paginate: a rejection of the paging
    arguments is remembered by the client, for every listing made with it."""
    from atwh.client.api import ApiClient
    from atwh.client.auth import StaticToken
    from atwh.client.webhooks import Webhooks

    api.reject_paging = True
    with ApiClient(StaticToken("t"), url=API_URL) as client:
        assert len(list(Webhooks(client).matching(app_id="a1"))) == 3
        assert len(list(Webhooks(client).matching(project_id="p1"))) == 3
    assert api.names() == ["QueryWebhooks", "QueryWebhooksUnpaged", "QueryWebhooksUnpaged"]


def test_list_skips_a_null_webhook_with_a_warning(atwh, api):
    api.hooks["wh-2"] = None  # type: ignore[assignment]
    api._public = lambda h: h if h is None else {k: v for k, v in h.items() if k != "secret"}  # type: ignore[method-assign]
    result = atwh("webhooks", "list", "--app", "a1", "--json")
    assert result.exit_code == 0, result.stderr
    assert [h["id"] for h in json.loads(result.stdout)] == ["wh-1", "wh-3"]
    assert "Warning: skipped 1 unreadable webhooks" in result.stderr


def test_list_stops_on_a_repeated_cursor(atwh, api):
    api.repeat_cursor = True
    result = atwh("webhooks", "list", "--app", "a1")
    assert result.exit_code == 5
    assert "repeated the page cursor" in result.stderr


def test_list_empty_says_so_on_stderr(atwh, api):
    api.hooks.clear()
    result = atwh("webhooks", "list", "--app", "a1")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No webhooks for app a1" in result.stderr
    assert atwh("webhooks", "list", "--app", "a1", "--json").stdout.strip() == "[]"


def test_list_needs_an_app_or_project(atwh, api):
    result = atwh("webhooks", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: give --app APP_ID or --project PROJECT_ID")
    both = atwh("webhooks", "list", "--app", "a", "--project", "p")
    assert both.exit_code == 2 and "not both" in both.stderr
    assert api.calls == []


def test_list_takes_the_app_from_env_then_config(atwh, api, monkeypatch, tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text('project_id = "p-conf"\n')
    assert atwh("webhooks", "list").exit_code == 0
    assert api.variables("QueryWebhooks")["filter"] == {"projectId": "p-conf"}
    monkeypatch.setenv("ATWH_APP_ID", "a-env")
    assert atwh("webhooks", "list").exit_code == 0
    assert api.variables("QueryWebhooks")["filter"] == {"appId": "a-env"}
    assert atwh("webhooks", "list", "--project", "p-opt").exit_code == 0
    assert api.variables("QueryWebhooks")["filter"] == {"projectId": "p-opt"}


# -- show -----------------------------------------------------------------------------------


def test_show_masks_the_secret(atwh, api):
    result = atwh("webhooks", "show", "wh-1")
    assert result.exit_code == 0, result.stderr
    for text in ("wh-1", "hook 1", "https://example.com/hook/1", "ticket.created", "a1:*"):
        assert text in result.stdout
    assert "c0ff…" in result.stdout and SECRET not in out_err(result)
    as_json = json.loads(atwh("webhooks", "show", "wh-1", "--json").stdout)
    assert as_json["secret"] == "c0ff…" and as_json["events"] == ["ticket.created"]
    assert set(as_json) == set(hook(1))


def test_show_secret_shows_it(atwh, api):
    assert SECRET in atwh("webhooks", "show", "wh-1", "--show-secret").stdout
    shown = json.loads(atwh("webhooks", "show", "wh-1", "--show-secret", "--json").stdout)
    assert shown["secret"] == SECRET


def test_show_a_null_webhook_is_not_found(atwh, api):
    result = atwh("webhooks", "show", "nope")
    assert result.exit_code == 4
    assert result.stderr.startswith("Error: webhook nope not found")


def test_an_id_prefix_resolves_within_the_app(atwh, api, monkeypatch):
    api.hooks = {h: hook(0, id=h) for h in ("5f3a0c7e", "5f3b9d21", "8c1d44a0")}
    assert atwh("webhooks", "show", "8c1d").exit_code == 4  # no app known: ids only
    monkeypatch.setenv("ATWH_APP_ID", "a1")
    shown = atwh("webhooks", "show", "8c1d", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == "8c1d44a0"
    ambiguous = atwh("webhooks", "show", "5f3")
    assert ambiguous.exit_code == 2
    assert "5f3a0c7e, 5f3b9d21" in ambiguous.stderr
    assert atwh("webhooks", "show", "zz").exit_code == 4
    removed = atwh("webhooks", "remove", "5f3b", "--yes")
    assert removed.exit_code == 0, removed.stderr
    assert api.variables("RemoveWebhook") == {"id": "5f3b9d21"}
    assert "Removed webhook 5f3b9d21." in removed.stdout


# -- create ---------------------------------------------------------------------------------


def test_create_sends_what_was_given_and_says_what_next(atwh, api):
    result = atwh(
        "webhooks",
        "create",
        "--url",
        "https://example.com/new",
        "-e",
        "ticket.created,ticket.updated",
        "--urn",
        "urn:allthings:app:a1:*",
        "--description",
        "sync",
    )
    assert result.exit_code == 0, result.stderr
    assert api.variables("RegisterWebhook") == {
        "webhook": {
            "url": "https://example.com/new",
            "events": ["ticket.created", "ticket.updated"],
            "urns": ["urn:allthings:app:a1:*"],
            "description": "sync",
        }
    }
    assert "wh-99" in result.stdout and "c0ff…" in result.stdout
    assert SECRET not in out_err(result)
    assert "atwh serve --webhook wh-99 --port 8000 --path /new" in result.stderr
    assert "tunnel" in result.stderr


def test_create_disabled_and_the_app_urn(atwh, api):
    result = atwh(
        "webhooks",
        "create",
        "--url",
        "http://127.0.0.1:8123/hooks",
        "--event",
        "ticket.created",
        "--app",
        "a7",
        "--disabled",
        "--json",
        "--show-secret",
    )
    assert result.exit_code == 0, result.stderr
    sent = api.variables("RegisterWebhook")["webhook"]
    assert sent["enabled"] is False and sent["urns"] == ["urn:allthings:app:a7:*"]
    answer = json.loads(result.stdout)
    assert answer["code"] == "CREATED" and answer["webhook"]["secret"] == SECRET
    assert "atwh serve --webhook wh-99 --port 8123 --path /hooks\n" in result.stderr


def test_create_at_ipv6_loopback_prints_serve_on_it(atwh, api):
    result = atwh(
        "webhooks", "create", "--url", "http://[::1]:9000/webhook", "-e", "ticket.created",
        "--app", "a1",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "  atwh serve --webhook wh-99 --host ::1 --port 9000\n" in result.stderr


def test_create_on_the_defaults_of_serve_prints_the_bare_command(atwh, api):
    result = atwh(
        "webhooks",
        "create",
        "--url",
        "http://localhost:8000/webhook",
        "-e",
        "ticket.created",
        "--app",
        "a1",
        "--api-url",
        API_URL,
    )
    assert result.exit_code == 0, result.stderr
    assert f"  atwh serve --webhook wh-99 --api-url {API_URL}\n" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--event", "ticket.craeted"], "not a registerable event (did you mean ticket.created?)"),
        (["--event", "Ticket Created"], "is not an event name"),
        (["--event", "nothing.like.it"], "see 'atwh webhooks events'"),
        (["--url", "http://example.com/hook"], "must be https"),
        (["--url", "ftp://example.com/hook"], "is not an http(s) URL"),
        (["--urn", "urn:foo"], "'urn:foo' is not a URN"),
        (["--urn", "urn:allthings:app:a1:*", "--event", ""], "give at least one --event"),
    ],
)
def test_create_checks_before_sending(atwh, api, args, says):
    base = {
        "--url": "https://example.com/h",
        "--event": "ticket.created",
        "--urn": "urn:allthings:app:a1:*",
    }
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = [x for k, v in {**base, **given}.items() for x in (k, v)]
    result = atwh("webhooks", "create", *argv)
    assert result.exit_code == 2, result.stderr
    assert says in result.stderr
    assert result.stderr.count("\n") == 1
    assert "RegisterWebhook" not in api.names()


def test_create_without_urn_or_app_is_refused_before_sending(atwh, api):
    result = atwh("webhooks", "create", "--url", "https://e.com/h", "--event", "ticket.created")
    assert result.exit_code == 2 and "--urn" in result.stderr
    assert "RegisterWebhook" not in api.names()


@pytest.mark.parametrize("catalogue", [None, []])
def test_create_without_a_catalogue_warns_and_lets_the_api_decide(atwh, api, catalogue):
    api.catalogue = catalogue
    result = atwh(
        "webhooks", "create", "--url", "https://e.com/h", "--event", "made.up", "--app", "a1"
    )
    assert result.exit_code == 0, result.stderr
    assert "Warning: " in result.stderr and "registerable events" in result.stderr
    assert api.variables("RegisterWebhook")["webhook"]["events"] == ["made.up"]


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        ("BAD_USER_INPUT", 2),
        ("VALIDATION_ERROR", 2),
        ("INVALID_URL", 2),
        ("URL_CHECK_FAILED", 5),
        ("INTERNAL_SERVER_ERROR", 5),
        ("FORBIDDEN", 3),
        ("NOT_FOUND", 4),
    ],
)
def test_a_refusal_is_one_line_with_the_apis_code(atwh, api, code, exit_code):
    api.answers["registerWebhook"] = {
        "code": code,
        "success": False,
        "message": "Not a registerable event: x.y",
        "webhook": None,
    }
    result = atwh(
        "webhooks", "create", "--url", "https://e.com/h", "--event", "ticket.created", "--app", "a1"
    )
    assert result.exit_code == exit_code
    assert result.stderr.startswith(
        f"Error: the API refused: {code}: Not a registerable event: x.y"
    )
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_a_refused_url_check_hints_at_ping_and_serve(atwh, api):
    api.answers["registerWebhook"] = refusal(
        "URL_CHECK_FAILED", "The URL did not answer the test request: ConnectError."
    )
    result = atwh(
        "webhooks",
        "create",
        "--url",
        "http://127.0.0.1:8123/webhook",
        "-e",
        "ticket.created",
        "--app",
        "a1",
    )
    assert result.exit_code == 5
    assert "atwh webhooks ping --url http://127.0.0.1:8123/webhook" in result.stderr
    assert "start a receiver there first: atwh serve --port 8123" in result.stderr


def test_success_without_a_webhook_is_an_api_error(atwh, api):
    api.answers["registerWebhook"] = {"code": "OK", "success": True, "message": "", "webhook": None}
    result = atwh(
        "webhooks", "create", "--url", "https://e.com/h", "--event", "ticket.created", "--app", "a1"
    )
    assert result.exit_code == 5 and "did not say its id" in result.stderr


def test_control_characters_from_the_api_are_made_visible(atwh, api):
    api.answers["registerWebhook"] = refusal("BAD_USER_INPUT\x1b[31m", "bad\x1b]0;owned\x07\nthing")
    result = atwh(
        "webhooks", "create", "--url", "https://e.com/h", "--event", "ticket.created", "--app", "a1"
    )
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert result.stderr.count("\n") == 1
    api.hooks["wh-1"]["description"] = "evil\x1b[2J\x9b"
    for args in (["show", "wh-1"], ["show", "wh-1", "--json"], ["list", "--app", "a1"]):
        shown = atwh("webhooks", *args).stdout
        assert "\x1b" not in shown and "\x9b" not in shown, args


# -- update, enable, disable ------------------------------------------------------------------


def test_update_sends_only_what_was_given_and_shows_the_changes(atwh, api):
    result = atwh(
        "webhooks",
        "update",
        "wh-1",
        "--add-event",
        "ticket.updated",
        "--description",
        "new",
        "--disable",
    )
    assert result.exit_code == 0, result.stderr
    assert api.variables("UpdateWebhook") == {
        "id": "wh-1",
        "webhook": {
            "events": ["ticket.created", "ticket.updated"],
            "description": "new",
            "enabled": False,
        },
    }
    assert "description: hook 1 → new" in result.stdout
    assert "enabled: yes → no" in result.stdout
    assert "events: +ticket.updated" in result.stdout
    assert "url" not in result.stdout


def test_update_events_replace_add_remove(atwh, api):
    result = atwh(
        "webhooks",
        "update",
        "wh-1",
        "--event",
        "ticket.updated",
        "--add-event",
        "booking.accepted",
        "--urn",
        "urn:allthings:app:a2:*",
    )
    assert result.exit_code == 0, result.stderr
    sent = api.variables("UpdateWebhook")["webhook"]
    assert sent == {
        "events": ["ticket.updated", "booking.accepted"],
        "urns": ["urn:allthings:app:a2:*"],
    }
    assert "events: +ticket.updated +booking.accepted -ticket.created" in result.stdout
    removed = atwh("webhooks", "update", "wh-1", "--remove-event", "ticket.updated")
    assert removed.exit_code == 0, removed.stderr
    assert api.variables("UpdateWebhook")["webhook"] == {"events": ["booking.accepted"]}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "nothing to update"),
        (["--remove-event", "ticket.updated"], "does not subscribe to it"),
        (["--remove-event", "ticket.created"], "at least one event"),
        (["--add-event", "ticket.craeted"], "did you mean ticket.created?"),
        (["--url", "http://e.com/"], "must be https"),
    ],
)
def test_update_checks_before_sending(atwh, api, args, says):
    result = atwh("webhooks", "update", "wh-1", *args)
    assert result.exit_code == 2
    assert says in result.stderr
    assert "UpdateWebhook" not in api.names()


def test_update_an_unknown_webhook_is_not_found(atwh, api):
    result = atwh("webhooks", "update", "nope", "--enable")
    assert result.exit_code == 4 and "webhook nope not found" in result.stderr


def refusal(code: str, message: str) -> dict:
    """A mutation's answer when the API refuses it."""
    return {"code": code, "success": False, "message": message, "webhook": None}


def test_update_refused_by_the_api(atwh, api):
    api.answers["updateWebhook"] = refusal("BAD_USER_INPUT", "Not a registerable event: x.y")
    result = atwh("webhooks", "update", "wh-1", "--description", "d")
    assert result.exit_code == 2
    assert (
        result.stderr == "Error: the API refused: BAD_USER_INPUT: Not a registerable event: x.y\n"
    )


def test_a_new_url_refused_by_the_url_check_hints_at_ping_and_serve_as_create_does(atwh, api):
    """`update --url` to a URL nothing answers gave a bare URL_CHECK_FAILED, where `create`
    says how to see what the URL answers and how to start a receiver there."""
    api.answers["updateWebhook"] = refusal(
        "URL_CHECK_FAILED", "The URL did not answer the test request: ConnectError."
    )
    result = atwh("webhooks", "update", "wh-1", "--url", "http://127.0.0.1:9/webhook")
    assert result.exit_code == 5
    assert "atwh webhooks ping --url http://127.0.0.1:9/webhook" in result.stderr
    assert "start a receiver there first: atwh serve --port 9" in result.stderr


def test_update_answered_without_the_webhook_reads_it_again(atwh, api):
    api.answers["updateWebhook"] = {"code": "OK", "success": True, "message": "", "webhook": None}
    result = atwh("webhooks", "update", "wh-1", "--description", "d")
    assert result.exit_code == 0, result.stderr
    assert api.names()[-1] == "QueryWebhook"


def test_enable_and_disable(atwh, api):
    result = atwh("webhooks", "disable", "wh-2")
    assert result.exit_code == 0, result.stderr
    assert api.variables("UpdateWebhook") == {"id": "wh-2", "webhook": {"enabled": False}}
    assert "enabled: yes → no" in result.stdout
    again = atwh("webhooks", "disable", "wh-2")
    assert "Nothing changed" in again.stdout
    on = atwh("webhooks", "enable", "wh-2", "--json")
    assert json.loads(on.stdout)["webhook"]["enabled"] is True
    assert "secret" not in json.loads(on.stdout)["webhook"] or SECRET not in on.stdout


# -- remove ---------------------------------------------------------------------------------


def test_remove_without_a_terminal_needs_yes(atwh, api):
    result = atwh("webhooks", "remove", "wh-1")
    assert result.exit_code == 2
    assert "without --yes" in result.stderr
    assert api.calls == []
    done = atwh("webhooks", "remove", "wh-1", "--yes")
    assert done.exit_code == 0, done.stderr
    assert api.names() == ["QueryWebhook", "RemoveWebhook"] and "wh-1" not in api.hooks
    assert "Removed webhook wh-1." in done.stdout


def test_remove_on_a_terminal_asks(atwh, api, monkeypatch):
    from atwh.cli import context as command

    monkeypatch.setattr(command, "interactive", lambda: True)
    kept = atwh("webhooks", "remove", "wh-1", input="n\n")
    assert kept.exit_code == 0
    assert "Remove webhook wh-1 (hook 1, https://example.com/hook/1)?" in kept.stderr
    assert "Kept webhook wh-1" in kept.stderr
    assert "RemoveWebhook" not in api.names() and "wh-1" in api.hooks
    gone = atwh("webhooks", "remove", "wh-1", input="y\n")
    assert gone.exit_code == 0, gone.stderr
    assert "wh-1" not in api.hooks
    missing = atwh("webhooks", "remove", "wh-1", input="y\n")
    assert missing.exit_code == 4


def test_remove_refused(atwh, api):
    api.answers["removeWebhook"] = refusal("NOT_FOUND", "No webhook wh-1.")
    result = atwh("webhooks", "remove", "wh-1", "--yes")
    assert result.exit_code == 4
    assert result.stderr == "Error: the API refused: NOT_FOUND: No webhook wh-1.\n"
    gone = atwh("webhooks", "remove", "wh-7", "--yes")
    assert gone.exit_code == 4 and gone.stderr.startswith("Error: webhook wh-7 not found")


# -- events ---------------------------------------------------------------------------------


def test_events_table_and_json(atwh, api):
    result = atwh("webhooks", "events", "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["Namespace", "Name", "Description"]
    assert "booking.accepted" in result.stdout
    assert json.loads(atwh("webhooks", "events", "--json").stdout) == CATALOGUE
    assert json.loads(atwh("webhooks", "events", "--format", "json").stdout) == CATALOGUE


def test_events_piped_is_tsv_with_a_header(atwh, api):
    result = atwh("webhooks", "events")
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[0] == ["namespace", "name", "description"]
    assert [r[1] for r in rows[1:]] == [e["eventName"] for e in CATALOGUE]
    assert rows[1][2] == CATALOGUE[0]["description"]


@pytest.mark.parametrize("columns", [60, 80])
def test_events_at_60_and_80_columns_keep_names_whole(atwh, api, monkeypatch, columns):
    api.catalogue = [
        {"namespace": "ticket", "eventName": "ticket.assignee.external.changed",
         "description": "The external assignee of a ticket changed, " * 3},
    ] + CATALOGUE  # fmt: skip
    monkeypatch.setenv("COLUMNS", str(columns))
    result = atwh("webhooks", "events", "--format", "table")
    assert "ticket.assignee.external.changed" in result.stdout
    assert all(len(line) <= columns for line in result.stdout.splitlines())


def test_events_the_api_does_not_serve(atwh, api):
    api.catalogue = None
    result = atwh("webhooks", "events")
    assert result.exit_code == 5
    assert "registerableWebhookEvents" in result.stderr


# -- ping -----------------------------------------------------------------------------------


@pytest.fixture
def target(api):
    """The URL pinged, mocked in the same respx router as the API."""
    routes = {}

    def at(url: str, **kw: Any) -> respx.Route:
        routes[url] = api.router.post(url).mock(**kw)
        return routes[url]

    return at


def test_ping_200_would_be_accepted(atwh, api, target):
    answer = httpx.Response(200, json={"message": "Received test event."})
    route = target("https://example.com/hook/1", return_value=answer)
    result = atwh("webhooks", "ping", "wh-1")
    assert result.exit_code == 0, result.stderr
    request = route.calls.last.request
    assert "x-allthings-signature" not in request.headers
    assert json.loads(request.content) == {"message": "Allthings webhook URL check"}
    assert "200" in result.stdout and "Received test event." in result.stdout
    assert "would be accepted" in result.stdout


@pytest.mark.parametrize(
    ("answer", "exit_code", "says"),
    [
        (httpx.Response(500, text="boom"), 1, "answered 500, not 200"),
        (httpx.Response(302, headers={"location": "https://x/"}), 1, "answered 302, not 200"),
        (httpx.Response(204), 1, "answered 204, not 200"),
        (httpx.ConnectError("refused"), 6, "did not answer"),
        (httpx.ReadTimeout("slow"), 6, "no answer within"),
    ],
)
def test_ping_anything_but_200_would_be_refused(atwh, api, target, answer, exit_code, says):
    kw = {"side_effect": answer} if isinstance(answer, Exception) else {"return_value": answer}
    target("https://e.com/h", **kw)
    result = atwh("webhooks", "ping", "--url", "https://e.com/h")
    assert result.exit_code == exit_code, result.stdout + result.stderr
    assert says in result.stdout
    assert api.calls == []  # --url needs no API
    as_json = json.loads(atwh("webhooks", "ping", "--url", "https://e.com/h", "--json").stdout)
    assert as_json["accepted"] is False


def test_ping_reads_a_bounded_body_and_flags_http(atwh, api, target):
    target("http://example.com/h", return_value=httpx.Response(200, content=b"x" * 500_000))
    result = atwh("webhooks", "ping", "--url", "http://example.com/h", "--json")
    answer = json.loads(result.stdout)
    assert result.exit_code == 1
    assert answer["statusCode"] == 200 and answer["bodyTruncated"] is True
    assert len(answer["body"]) == 64 * 1024
    assert "must be https" in answer["urlProblem"] and answer["accepted"] is False


def test_ping_needs_one_target(atwh, api):
    assert atwh("webhooks", "ping").exit_code == 2
    assert atwh("webhooks", "ping", "wh-1", "--url", "https://e.com/").exit_code == 2
    bad = atwh("webhooks", "ping", "--url", "not a url")
    assert bad.exit_code == 2 and bad.stderr.startswith("Error: --url")
    assert atwh("webhooks", "ping", "nope").exit_code == 4


# -- secrets ---------------------------------------------------------------------------------


def test_no_command_prints_the_secret_without_show_secret(atwh, api, target, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    target("https://example.com/hook/1", return_value=httpx.Response(200))
    runs = [
        ["--debug", "webhooks", "show", "wh-1"],
        ["--debug", "webhooks", "show", "wh-1", "--json"],
        ["--debug", "webhooks", "list", "--app", "a1", "--json"],
        [
            "--debug",
            "webhooks",
            "create",
            "--url",
            "https://e.com/h",
            "-e",
            "ticket.created",
            "--app",
            "a1",
        ],
        [
            "--debug",
            "webhooks",
            "create",
            "--url",
            "https://e.com/h",
            "-e",
            "ticket.created",
            "--app",
            "a1",
            "--json",
        ],
        ["--debug", "webhooks", "update", "wh-1", "--description", "x", "--json"],
        ["--debug", "webhooks", "ping", "wh-1"],
    ]
    for args in runs:
        result = atwh(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert SECRET not in out_err(result), args
        assert SECRET[:12] not in out_err(result), args
    assert SECRET not in caplog.text


def test_show_piped_has_no_padding(atwh, api):
    lines = atwh("webhooks", "show", "wh-1").stdout.splitlines()
    assert lines and all(line == line.rstrip() for line in lines)


def test_show_by_a_prefix_without_an_app_says_a_prefix_needs_one(atwh, api):
    result = atwh("webhooks", "show", "wh-")
    assert result.exit_code == 4
    assert "give --app APP_ID (or set ATWH_APP_ID)" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", ["update", "enable", "disable", "remove", "ping"])
def test_a_prefix_without_an_app_suggests_only_what_the_command_takes(atwh, api, command):
    """`update` and the others have no --app: the hint names ATWH_APP_ID alone."""
    args = ["--description", "x"] if command == "update" else []
    result = atwh("webhooks", command, "wh-", *args, *(["--yes"] if command == "remove" else []))
    assert result.exit_code == 4, result.stderr
    assert "set ATWH_APP_ID to use one" in result.stderr and "--app" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_unknown_keys_in_the_config_file_are_said_once(atwh, api, tmp_path):
    import os
    from pathlib import Path

    config = Path(os.environ["ATWH_CONFIG_DIR"]) / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('webhook = ["wh-1"]\napp = "a1"\n')
    result = atwh("failures")
    assert result.exit_code == 2
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        f"Warning: config file {config}: ignored 'webhook' (did you mean 'webhooks'?), "
        "'app' (did you mean 'app_id'?); "
        "the keys it reads are webhooks, api_url, app_id, project_id"
    ]


def test_enable_and_disable_are_one_command_told_which():
    import typer.main

    from atwh.cli.webhooks import app as webhooks

    group: Any = typer.main.get_command(webhooks)
    on, off = group.commands["enable"], group.commands["disable"]
    assert on.callback.__code__ is off.callback.__code__
    assert [p.name for p in on.params] == [p.name for p in off.params]


# -- issue 22, item 14: small ones -----------------------------------------------------------


def test_small_ones_create_json_escapes_a_right_to_left_override(atwh, api):
    """U+202E from the API would reverse the rest of the line in a terminal: escaped, as
    JSON writes it, and the JSON still reads back the same."""
    description = "pay\u202etxt.exe"
    result = atwh(
        "webhooks", "create", "--url", "https://example.com/new", "-e", "ticket.created",
        "--urn", "urn:allthings:app:a1:*", "--description", description, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "\u202e" not in result.stdout
    assert "pay\\u202etxt.exe" in result.stdout
    assert json.loads(result.stdout)["webhook"]["description"] == description


def test_small_ones_piped_list_never_cuts_an_escaped_description(atwh, api):
    description = "line one\x1b[31m and the end of it"
    api.hooks["wh-1"]["description"] = description
    result = atwh("webhooks", "list", "--app", "a1")
    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[1][1] == "line one\\u001b[31m and the end of it"
    assert "…" not in result.stdout


def test_update_with_enable_and_disable_is_a_usage_error(atwh, api):
    """One --enable/--disable flag pair took the last of the two, silently ('Nothing
    changed', exit 0); the two disagree: exit 2, nothing sent."""
    result = atwh("webhooks", "update", "wh-1", "--enable", "--disable")
    assert result.exit_code == 2, result.output
    assert result.stderr == "Error: --enable and --disable disagree: give one of them\n"
    assert "UpdateWebhook" not in api.names()
