"""``StoreServerClient.verify_staff`` against the real reference server, and loopback stubs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kiosk.errors import Rejected, Unreachable
from kiosk.ports import StaffIdentity
from kiosk.sync.client import BadResponse, RetryLater, StoreServerClient
from storeserver import demo, staff
from storeserver.clock import ManualClock
from storeserver.runner import ServerThread
from storeserver.store import Store

# the client tests' loopback stub server and client factory
from .test_client import HANG, KIOSK, Sleeps, Stub, enrollment_code, make_client, ok, raw


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path, clock) -> Iterator[Store]:
    s = Store(tmp_path / "store.db", clock=clock)
    demo.seed(s, [KIOSK])
    yield s
    s.close()


@pytest.fixture
def client(store, tmp_path) -> Iterator[StoreServerClient]:
    with ServerThread(store, "127.0.0.1", 0) as server:
        c = make_client(server.url, tmp_path)
        c.enroll(enrollment_code(store), KIOSK)
        yield c
        c.close()


def badge(store, staff_id: str = "S0001") -> str:
    with store.db.transaction() as conn:
        return staff.issue_badge(conn, store.clock, store.signing_key, staff_id)["code"]


def test_a_right_pin_returns_the_staff_identity(client, store):
    assert client.verify_staff(badge(store), "246810") == StaffIdentity(
        "S0001", "王店长 / Manager Wang"
    )


def test_a_wrong_pin_and_a_bad_badge_are_rejected_with_the_server_code(client, store):
    with pytest.raises(Rejected) as wrong:
        client.verify_staff(badge(store), "1111")
    assert (wrong.value.status, wrong.value.code) == (403, "bad_pin")
    assert not isinstance(wrong.value, RetryLater)
    assert "4 attempts left" in str(wrong.value)
    with pytest.raises(Rejected) as bad:
        client.verify_staff(badge(store).replace("S0001", "S0002", 1), "246810")
    assert (bad.value.status, bad.value.code) == (403, "bad_badge")


def test_a_locked_staff_member_is_retry_later_with_the_seconds_left(client, store, clock):
    code = badge(store)
    for _ in range(4):
        with pytest.raises(Rejected):
            client.verify_staff(code, "1111")
    with pytest.raises(RetryLater) as locked:
        client.verify_staff(code, "1111")
    assert (locked.value.status, locked.value.code) == (423, "staff_locked")
    assert locked.value.retry_after_s == 300
    clock.advance(seconds=120)
    with pytest.raises(RetryLater) as still:
        client.verify_staff(code, "246810")
    assert still.value.retry_after_s == 180


def test_a_pin_check_is_never_retried_after_a_5xx(tmp_path):
    sleeps = Sleeps()
    with Stub([raw(503, '{"error":"x","message":"busy"}')]) as stub:
        c = make_client(stub.url, tmp_path, sleep=sleeps, token="t")
        with pytest.raises(Unreachable, match="HTTP 503"):
            c.verify_staff("LK1.S.x", "246810")
    assert len(stub.requests) == 1 and sleeps.calls == []
    method, path, headers, body = stub.requests[0]
    assert (method, path) == ("POST", "/v1/staff/verify")
    assert json.loads(body) == {"badge": "LK1.S.x", "pin": "246810"}
    assert headers["Authorization"] == "Bearer t"


def test_a_pin_check_is_never_retried_after_a_read_timeout(tmp_path):
    sleeps = Sleeps()
    with Stub([HANG]) as stub:
        c = make_client(stub.url, tmp_path, sleep=sleeps, token="t", read_timeout_s=0.3)
        with pytest.raises(Unreachable, match="may have acted on it"):
            c.verify_staff("LK1.S.x", "246810")
    assert len(stub.requests) == 1 and sleeps.calls == []


@pytest.mark.parametrize(
    "answer",
    [
        {"staff_id": "S0001"},
        {"staff_id": "../S0001", "name": "x"},
        {"staff_id": "S0001", "name": "  "},
        {"staff_id": "S0001", "name": 7},
        ["S0001", "x"],
    ],
)
def test_a_malformed_answer_is_bad_response(tmp_path, answer):
    with Stub([ok(answer)]) as stub:
        c = make_client(stub.url, tmp_path, token="t")
        with pytest.raises(BadResponse, match="answered garbage"):
            c.verify_staff("LK1.S.x", "246810")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Retry-After: 42", 42),
        ("Retry-After: 99999999", 86_400),
        ("Retry-After: Wed, 21 Oct 2026 07:28:00 GMT", None),
        ("Retry-After: -5", None),
    ],
)
def test_retry_after_is_read_as_whole_seconds_only(tmp_path, header, expected):
    body = '{"error":"staff_locked","message":"locked"}'
    with Stub([raw(423, body, headers=[header])]) as stub:
        c = make_client(stub.url, tmp_path, token="t")
        with pytest.raises(Rejected) as info:
            c.verify_staff("LK1.S.x", "246810")
    assert info.value.code == "staff_locked"
    if expected is None:
        assert not isinstance(info.value, RetryLater)
    else:
        assert isinstance(info.value, RetryLater) and info.value.retry_after_s == expected
