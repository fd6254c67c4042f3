"""The emulator against hostile receivers and hostile queries: real sockets on 127.0.0.1,
every wait bounded (a condition polled with a timeout, never a sleep and a timed assert)."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
from graphql import get_introspection_query

from atwh.emulator import limits
from atwh.emulator.history import DEMO_WEBHOOK_ID
from tests.conftest import wait_for
from tests.emulator.test_emulator import TOKEN, URN, emulator, recorder
from tests.hostile import Request, answer, raw_server, trickle


def trickle_signed(conn: socket.socket, request: Request) -> None:
    """200 at once to the unsigned URL check; a signed delivery's answer a byte every
    0.2 s (40 s for all of it)."""
    if "x-allthings-signature" not in request.headers:
        conn.sendall(answer(200, b"{}"))
        return
    trickle(conn, b"x" * 200, every=0.2)


# -- 18: an attempt is bounded as a whole, and slow receivers starve only themselves ----------


def test_an_attempt_to_a_trickling_receiver_ends_at_the_attempt_timeout():
    with raw_server(trickle_signed) as slow, emulator(time_scale=1) as emu:
        # registered with the generous timeout: the URL check is bounded by it too, and on a
        # loaded machine even an answer at once may take longer than 0.5 s to arrive
        hook = emu.register(slow.url)
        emu.app.s.attempt_timeout = 0.5
        event = emu.emit("ticket.created", URN, {"id": "T-1"})["event"]
        wait_for(
            lambda: emu.attempts(event["id"])[0].status == "FAILED",
            timeout=15,  # the receiver takes 40 s to answer in full
            what="the attempt to time out",
        )
        (first,) = emu.attempts(event["id"])
        nodes = emu.deliveries(hook["id"])
    assert first.result is None and nodes[0]["result"] is None
    (line,) = [line for line in emu.log if event["id"][:8] in line]
    assert "timeout after 0.5s" in line and "next retry in 1m" in line
    assert slow.finished == 1  # the URL check; the delivery was never answered in full


def test_slow_receivers_do_not_starve_a_healthy_webhook():
    """110 attempts to a trickling receiver used to fill the shared pool of 100
    connections: a healthy webhook's attempt then waited for the pool and was logged as a
    timeout without having been sent."""
    with (
        raw_server(trickle_signed) as slow,
        recorder() as healthy,
        emulator(time_scale=1, attempt_timeout=5) as emu,
    ):
        emu.register(slow.url, events=["ticket.created"])
        good = emu.register(healthy.url, events=["ticket.updated"])
        for i in range(110):
            emu.emit("ticket.created", URN, {"id": i})
        wait_for(lambda: slow.requests >= 8, what="the slow receiver to be busy")
        event = emu.emit("ticket.updated", URN, {"id": "T-2"})["event"]
        wait_for(
            lambda: emu.attempts(event["id"])[0].status != "PENDING",
            timeout=20,
            what="the healthy webhook's attempt",
        )
        first = emu.attempts(event["id"])[0]
        assert first.status == "SUCCESS", [line for line in emu.log if event["id"][:8] in line]
        assert len(healthy.signed()) == 1
        assert good["id"] == first.webhook_id


# -- 19: a query's depth and size are limited before it runs --------------------------------

NESTED = (
    '{webhook(id:"%s"){deliveries(first:100){nodes{webhook{deliveries(first:100){nodes{'
    "webhook{deliveries(first:100){nodes{id}}}}}}}}}}"
)


def post(emu, query: str, variables: dict | None = None) -> dict:
    response = emu.http.post(
        emu.url,
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_small_nested_query_for_a_million_objects_is_refused_at_once():
    query = NESTED % DEMO_WEBHOOK_ID
    assert len(query) < 160
    with emulator(history=300, seed=3) as emu:
        answer = post(emu, query)
    assert "data" not in answer or answer["data"] is None
    (error,) = answer["errors"]
    assert error["message"].startswith(f"Query asks for more than {limits.MAX_FIELDS} fields")


def test_the_delivery_loop_keeps_delivering_while_queries_are_answered():
    """Heavy queries, each within the limits, sent over and over from threads: an event
    emitted meanwhile is still delivered on its first attempt."""
    heavy = (
        '{webhook(id:"%s"){deliveries(first:100){nodes{id createdDate status '
        "event{id name urn payload} result{statusCode body headers{name value}} "
        "webhook{id url}}}}}".replace("%s", DEMO_WEBHOOK_ID)
    )
    stop = threading.Event()
    answered = []
    with recorder() as rec, emulator(history=300, seed=3, attempt_timeout=5) as emu:
        emu.register(rec.url)

        def hammer() -> None:
            with httpx.Client(trust_env=False, timeout=60) as http:
                while not stop.is_set():
                    r = http.post(
                        emu.url,
                        json={"query": heavy},
                        headers={"authorization": f"Bearer {TOKEN}"},
                    )
                    answered.append("errors" not in r.json())

        threads = [threading.Thread(target=hammer, daemon=True) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: len(answered) >= 3, timeout=30, what="heavy queries answered")
            event = emu.emit("ticket.created", URN, {"id": "T-3"})["event"]
            wait_for(lambda: emu.delivered(event["id"]), timeout=20, what="the delivery")
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        assert emu.attempts(event["id"])[0].status == "SUCCESS"
    assert all(answered)


def test_queries_deeper_than_the_limit_are_refused():
    retries = "retry{" * limits.MAX_DEPTH + "id" + "}" * limits.MAX_DEPTH
    query = '{webhook(id:"ID"){deliveries(first:1){nodes{R}}}}'
    query = query.replace("ID", DEMO_WEBHOOK_ID).replace("R", retries)
    with emulator(history=20, seed=3) as emu:
        answer = post(emu, query)
    (error,) = answer["errors"]
    assert error["message"] == (
        f"Query is deeper than {limits.MAX_DEPTH} levels; the emulator answers no deeper."
    )


def test_many_aliases_add_up():
    one = 'w%d: webhook(id:"%s"){deliveries(first:100){nodes{id status createdDate}}}'
    query = "{" + " ".join(one % (i, DEMO_WEBHOOK_ID) for i in range(100)) + "}"
    with emulator(history=20, seed=3) as emu:
        answer = post(emu, query)
        (error,) = answer["errors"]
        assert "more than" in error["message"]
        # the page size given as a variable counts the same
        paged = "query($n: Int){" + one.replace("first:100", "first:$n") % (0, DEMO_WEBHOOK_ID)
        assert not post(emu, paged + "}", {"n": 100}).get("errors")


def test_fragments_that_spread_each_other_cannot_make_the_walk_long():
    # F0 spreads F1 twice, F1 spreads F2 twice, ...: 2^40 visits if walked naively
    fragments = " ".join(
        f"fragment F{i} on Webhook {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40)
    )
    query = '{webhook(id:"ID"){...F0}} ' + fragments + " fragment F40 on Webhook { id }"
    query = query.replace("ID", DEMO_WEBHOOK_ID)
    with emulator(history=20, seed=3) as emu:
        started = time.monotonic()
        answer = post(emu, query)
        took = time.monotonic() - started
    assert "more than" in answer["errors"][0]["message"]
    print(f"refused a 2^40-visit fragment tree in {took * 1000:.0f} ms")


def test_the_cli_pages_within_the_limits(atwh):
    with emulator(history=250, seed=11) as emu:
        result = atwh("deliveries", DEMO_WEBHOOK_ID, "--api-url", emu.url, "--json")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 250


def test_an_answer_past_the_size_limit_is_an_error_and_never_made():
    """Aliases can ask for the same 900 KB payload 50 times: 45 MB of JSON from 250 fields."""
    one = 'p%d: webhook(id:"ID"){deliveries(first:1){nodes{event{payload}}}}'
    query = "{" + " ".join(one % i for i in range(50)).replace("ID", "HOOK") + "}"
    with recorder() as rec, emulator(attempt_timeout=5) as emu:
        hook = emu.register(rec.url)
        event = emu.emit("ticket.created", URN, {"blob": "x" * 900_000})["event"]
        wait_for(lambda: emu.delivered(event["id"]), what="the delivery")
        answer = post(emu, query.replace("HOOK", hook["id"]))
        assert answer["errors"][0]["message"].startswith(
            f"The answer would be larger than {limits.MAX_ANSWER_BYTES >> 20} MiB"
        )
        small = post(emu, "{" + (one % 0).replace("ID", hook["id"]) + "}")
    assert len(small["data"]["p0"]["deliveries"]["nodes"][0]["event"]["payload"]) > 900_000


def test_the_size_estimate_is_close_to_the_json():
    answer = {"data": {"a": ["x" * 1000, {"b": 12, "c": None}], "d": "é" * 10}}
    made = len(json.dumps(answer))
    assert limits.larger_than(answer, made - 50)
    assert not limits.larger_than(answer, made + 50)


def test_removing_a_webhook_forgets_its_attempt_slots():
    import asyncio

    from atwh.emulator.engine import EmulatorSettings, Engine
    from atwh.emulator.state import WebhookRec

    engine = Engine(EmulatorSettings())
    engine.state.put(
        WebhookRec(
            "wh-gone", 0.0, ["ticket.created"], ["urn:x:*"], "http://127.0.0.1:9/", True, "s"
        )
    )
    engine._slots["wh-gone"] = asyncio.Semaphore(1)
    engine.remove_webhook("wh-gone")
    assert "wh-gone" not in engine.state.webhooks
    assert "wh-gone" not in engine._slots


def test_emulator_introspection_multiplied_by_aliases_and_fragments_is_refused():
    """Issue 22, item 9: introspection lists under aliases and fragments (each `t` lists every
    type, and for each of them 70 times its fields) are counted as any other field: refused
    before anything runs, not built on the event loop. The usual introspection passes."""
    fragment = "fragment F on __Type { " + " ".join(f"a{i}: fields {{ name }}" for i in range(70))
    types = " ".join(f"t{i}: types {{ ...F }}" for i in range(4))
    query = "{ __schema { " + types + " } } " + fragment + " }"
    by_name = '{ __type(name: "Query") { fields { name args { name type { name } } } } }'
    with emulator(history=20, seed=3) as emu:
        answer = post(emu, query)
        assert "data" not in answer or answer["data"] is None
        (error,) = answer["errors"]
        assert "more than" in error["message"]
        assert not post(emu, get_introspection_query(descriptions=True)).get("errors")
        assert post(emu, by_name)["data"]["__type"]["fields"]
