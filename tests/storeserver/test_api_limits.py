"""The request body limit (storeserver/api/limits.py): over HTTP with a declared length and
chunked, and at the ASGI level with a Content-Length that lies."""

from __future__ import annotations

import asyncio
import json

import pytest

from storeserver.api.limits import MAX_BODY_BYTES, BodyLimit

from .conftest import db_snapshot

AT = "2026-11-23T10:00:00+08:00"


def refused_413(store, call) -> None:
    before = db_snapshot(store)
    resp = call()
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"] == "body_too_large" and "KB" in resp.json()["message"]
    assert set(resp.json()) == {"error", "message"}
    assert db_snapshot(store) == before


def test_a_20_mb_heartbeat_is_refused_before_it_is_read(store, kiosk):
    big = json.dumps({"health": {"log": "x" * 20_000_000}})
    refused_413(
        store,
        lambda: kiosk.session.post(
            kiosk.base_url + "/v1/kiosks/heartbeat",
            data=big,
            headers={"Content-Type": "application/json"},
            timeout=30,
        ),
    )


def test_a_chunked_body_over_the_limit_is_counted_and_refused(store, kiosk):
    def chunks():  # no Content-Length: Transfer-Encoding chunked
        yield b'{"code": "'
        for _ in range(20):
            yield b"A" * 8192
        yield b'"}'

    refused_413(
        store,
        lambda: kiosk.session.post(
            kiosk.base_url + "/v1/members/resolve",
            data=chunks(),
            headers={"Content-Type": "application/json"},
            timeout=30,
        ),
    )


def test_a_body_under_the_limit_reaches_the_route(store, kiosk):
    resp = kiosk.post("/v1/kiosks/heartbeat", {"health": {"note": "y" * 900}})
    assert resp.status_code == 200, resp.text


def test_a_full_outbox_batch_fits_the_events_route(kiosk):
    # 50 events of nearly the kiosk's 2 KB payload cap: over 64 KB, under the route's 128 KB
    events = [
        {"event_id": f"ev-{i}", "kind": "fault", "at": AT,
         "payload": {"what": "probe", "a": "p" * 950, "b": "q" * 950}}
        for i in range(50)
    ]  # fmt: skip
    assert len(json.dumps({"events": events})) > MAX_BODY_BYTES
    resp = kiosk.post("/v1/kiosks/events", {"events": events})
    assert resp.status_code == 200, resp.text


# ---- the middleware on its own ----------------------------------------------------------------
def run(middleware: BodyLimit, headers: list, chunks: list[bytes]) -> tuple[list, list]:
    """Drive one HTTP request through ``middleware``; what the app read, and what was sent."""
    incoming = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/members/resolve", "headers": headers}
    asyncio.run(middleware(scope, receive, send))
    return sent, middleware.app.read


class App:
    def __init__(self) -> None:
        self.read: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        while True:
            message = await receive()
            self.read.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("declared", [b"10", None], ids=["lying-length", "no-length"])
def test_the_bytes_received_count_not_the_declared_length(declared):
    headers = [] if declared is None else [(b"content-length", declared)]
    sent, read = run(BodyLimit(App(), max_bytes=100), headers, [b"x" * 60, b"y" * 60])
    assert sent[0]["status"] == 413 and read == []  # the application never saw it
    assert json.loads(sent[1]["body"])["error"] == "body_too_large"


def test_a_declared_length_over_the_limit_is_refused_unread():
    sent, read = run(BodyLimit(App(), max_bytes=100), [(b"content-length", b"101")], [b"x"])
    assert sent[0]["status"] == 413 and read == []


def test_a_body_within_the_limit_reaches_the_app_unchanged():
    sent, read = run(BodyLimit(App(), max_bytes=100), [], [b"x" * 50, b"y" * 50])
    assert sent[0]["status"] == 200 and b"".join(read) == b"x" * 50 + b"y" * 50
