"""How a refusal becomes Rejected, RetryLater or BadResponse (kiosk/sync/refusals.py)."""

from __future__ import annotations

import json

import pytest
import requests

from kiosk.errors import Rejected, RetryLater
from kiosk.sync import refusals
from kiosk.sync.parse import BadResponse


def response(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp.headers.update(headers or {})
    return resp


@pytest.mark.parametrize(
    ("headers", "wait"),
    [({"Retry-After": "120"}, 120), ({"Retry-After": "999999"}, 86_400), ({}, None)],
)
def test_a_refusal_with_retry_after_is_retry_later(headers, wait):
    body = {"error": "staff_locked", "message": "locked"}
    got = refusals.rejection(response(423, body, headers), "POST /v1/staff/verify", "https://s")
    assert isinstance(got, Rejected) and (got.status, got.code) == (423, "staff_locked")
    assert getattr(got, "retry_after_s", None) == wait and isinstance(got, RetryLater) == bool(wait)


@pytest.mark.parametrize("value", ["Wed, 21 Oct 2026 07:28:00 GMT", "-1", "1.5", "１２"])
def test_a_retry_after_that_is_not_whole_seconds_is_ignored(value):
    body = {"error": "slow_down", "message": "busy"}
    got = refusals.rejection(response(429, body, {"Retry-After": value}), "GET /x", "https://s")
    assert type(got) is Rejected


def test_a_4xx_without_the_servers_error_body_is_a_bad_response():
    got = refusals.rejection(response(404, b"<html>nginx</html>"), "GET /x", "https://s")
    assert isinstance(got, BadResponse) and "another web server or a proxy" in str(got)
