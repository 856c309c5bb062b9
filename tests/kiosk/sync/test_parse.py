"""Reading the store server's answers on their own; the client's use of them is test_client*.py."""

from __future__ import annotations

import json

import pytest
import requests

import kiosk.sync.client
from kiosk import errors
from kiosk.errors import Rejected, RetryLater
from kiosk.sync import parse
from kiosk.sync.parse import BadResponse, ShapeError


def response(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp.headers.update(headers or {})
    return resp


def test_the_client_still_exports_its_errors():
    assert kiosk.sync.client.BadResponse is BadResponse
    assert kiosk.sync.client.RetryLater is errors.RetryLater
    assert issubclass(RetryLater, Rejected) and issubclass(BadResponse, errors.Unreachable)


def test_keys_checks_types_and_json_true_is_not_a_number():
    check = parse.keys(balance=int, tier=str)
    assert check({"balance": 5, "tier": "gold", "x": 1}) == {"balance": 5, "tier": "gold", "x": 1}
    for bad in ({"balance": True, "tier": "gold"}, {"tier": "gold"}, [], {"balance": 1, "tier": 2}):
        with pytest.raises(ShapeError):
            check(bad)


@pytest.mark.parametrize(
    ("headers", "wait"),
    [({"Retry-After": "120"}, 120), ({"Retry-After": "999999"}, 86_400), ({}, None)],
)
def test_a_refusal_with_retry_after_is_retry_later(headers, wait):
    body = {"error": "staff_locked", "message": "locked"}
    got = parse.rejection(response(423, body, headers), "POST /v1/staff/verify", "https://s")
    assert isinstance(got, Rejected) and (got.status, got.code) == (423, "staff_locked")
    assert getattr(got, "retry_after_s", None) == wait and isinstance(got, RetryLater) == bool(wait)


@pytest.mark.parametrize("value", ["Wed, 21 Oct 2026 07:28:00 GMT", "-1", "1.5", "１２"])
def test_a_retry_after_that_is_not_whole_seconds_is_ignored(value):
    body = {"error": "slow_down", "message": "busy"}
    got = parse.rejection(response(429, body, {"Retry-After": value}), "GET /x", "https://s")
    assert type(got) is Rejected


def test_a_4xx_without_the_servers_error_body_is_a_bad_response():
    got = parse.rejection(response(404, b"<html>nginx</html>"), "GET /x", "https://s")
    assert isinstance(got, BadResponse) and "another web server or a proxy" in str(got)
