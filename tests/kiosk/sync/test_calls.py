"""The client's plumbing (kiosk/sync/calls.py): one attempt, what a response means, and the
retries between attempts, with a scripted session instead of a server; and the session the
client holds (not is) ignores the environment."""

from __future__ import annotations

import http.client
import json
import random

import pytest
import requests

from kiosk.errors import Rejected, RetryLater, Unreachable
from kiosk.sync import parse
from kiosk.sync.calls import Call, Endpoint, Failed, attempt, classify, perform
from kiosk.sync.client import BadResponse, RetryPolicy, StoreServerClient
from storeserver import demo
from storeserver.runner import ServerThread
from storeserver.store import Store

BASE = "http://store.test"


def response(status: int, body: object = None, headers: dict[str, str] | None = None):
    resp = requests.Response()
    resp.status_code = status
    resp._content = b"" if body is None else json.dumps(body).encode()
    resp._content_consumed = True  # the whole body is here: close() has nothing to release
    resp.headers.update(headers or {})
    return resp


class Script:
    """A session that answers each request with the next scripted response or exception."""

    def __init__(self, *answers: object, token: str | None = "t") -> None:
        self.answers = list(answers)
        self.sent: list[dict] = []
        self.headers = {} if token is None else {"Authorization": f"Bearer {token}"}

    def request(self, method: str, url: str, **kw) -> requests.Response:
        self.sent.append({"method": method, "url": url, **kw})
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[return-value]


def endpoint(sleeps: list[float], attempts: int = 3) -> Endpoint:
    policy = RetryPolicy(attempts=attempts, base_delay_s=0.5, max_delay_s=8.0)
    return Endpoint(BASE, (3.0, 10.0), True, None, policy, sleeps.append, random.Random(1))


HEALTH = Call("GET", "/v1/health", retry=True, auth=False)


def test_an_attempt_returns_any_response_and_sends_what_the_call_says():
    session = Script(response(503))
    call = Call("POST", "/v1/x", json={"a": 1}, headers={"X-Member-Session": "s"}, accept="image/png")  # fmt: skip
    got = attempt(session, endpoint([]), call, (3.0, 10.0), (3.0, 10.0))  # type: ignore[arg-type]
    assert isinstance(got, requests.Response) and got.status_code == 503
    (sent,) = session.sent
    assert sent["url"] == BASE + "/v1/x" and sent["json"] == {"a": 1}
    assert sent["headers"] == {"X-Member-Session": "s", "Accept": "image/png"}
    assert sent["allow_redirects"] is False and sent["verify"] is True
    no_token = attempt(Script(response(200)), endpoint([]), HEALTH, (3, 10), (3, 10))  # type: ignore[arg-type]
    assert isinstance(no_token, requests.Response)
    assert Call("GET", "/", auth=False).sent_headers() == {"Authorization": None}


def test_an_attempt_without_a_response_says_why_and_whether_to_retry():
    refused = requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    got = attempt(Script(refused), endpoint([]), HEALTH, (3.0, 10.0), (3.0, 10.0))  # type: ignore[arg-type]
    assert isinstance(got, Failed) and got.transient
    assert isinstance(got.error, Unreachable) and "refused the connection" in str(got.error)
    bad_url = http.client.InvalidURL("nonnumeric port")  # not wrapped by requests
    got = attempt(Script(bad_url), endpoint([]), HEALTH, (3, 10), (3, 10))  # type: ignore[arg-type]
    assert isinstance(got, Failed) and not got.transient and "check server.url" in str(got.error)
    tls = requests.exceptions.SSLError("certificate verify failed")
    got = attempt(Script(tls), endpoint([]), HEALTH, (3.0, 10.0), (3.0, 10.0))  # type: ignore[arg-type]
    assert isinstance(got, Failed) and not got.transient and "TLS verification" in str(got.error)


REFUSALS = [
    (response(409, {"error": "txn_id_reused", "message": "used"}), Rejected, "txn_id_reused, HTTP 409"),
    (response(423, {"error": "staff_locked", "message": "wait"}, {"Retry-After": "60"}), RetryLater, "staff_locked"),
    (response(404, "<html>"), BadResponse, "not with the store server's error body"),
    (response(302, None, {"Location": "https://elsewhere/"}), BadResponse, "HTTP 302 to https://elsewhere/"),
    (response(200, ["not", "an", "object"]), BadResponse, "answered garbage"),
]  # fmt: skip


@pytest.mark.parametrize(("resp", "error", "says"), REFUSALS)
def test_classify_turns_a_response_into_the_kiosk_error(resp, error, says):
    with pytest.raises(error) as info:
        classify(resp, "GET /v1/x", BASE, parser=parse.keys(status=str))
    assert says in str(info.value)


def test_classify_gives_a_good_body_to_the_parser_or_the_reader():
    body = {"status": "ok", "server_time": "t"}
    assert classify(response(200, body), "GET /", BASE, parser=parse.keys(status=str)) == body
    assert classify(response(200, body), "GET /", BASE, read=lambda r: r.status_code) == 200


def test_5xx_and_transient_failures_are_retried_then_the_answer_is_classified():
    sleeps: list[float] = []
    timeout = requests.exceptions.ReadTimeout("read timed out")
    session = Script(response(503), timeout, response(200, {"status": "ok"}))
    got = perform(session, endpoint(sleeps), HEALTH, parser=parse.keys(status=str))  # type: ignore[arg-type]
    assert got == {"status": "ok"} and len(session.sent) == 3 and len(sleeps) == 2


def test_the_last_5xx_is_unreachable_naming_the_attempts_and_a_refusal_is_never_retried():
    sleeps: list[float] = []
    session = Script(*[response(500, {"error": "x", "message": "see its log"})] * 3)
    with pytest.raises(Unreachable, match=r"HTTP 500 \(after 3 attempts\) \(see its log\)"):
        perform(session, endpoint(sleeps), HEALTH, parser=parse.keys(status=str))  # type: ignore[arg-type]
    refused = Script(response(403, {"error": "bad_token", "message": "no"}), response(200, {}))
    with pytest.raises(Rejected):
        perform(refused, endpoint(sleeps), HEALTH, parser=parse.keys(status=str))  # type: ignore[arg-type]
    assert len(refused.sent) == 1
    once = Script(response(502), response(200, {"status": "ok"}))
    with pytest.raises(Unreachable, match="HTTP 502: check"):  # not idempotent: one attempt
        perform(once, endpoint(sleeps), Call("POST", "/v1/staff/verify"), parser=dict)  # type: ignore[arg-type]


def test_the_client_holds_its_session_and_it_ignores_proxies_from_the_environment(
    tmp_path, monkeypatch
):
    store = Store(tmp_path / "store.db")
    demo.seed(store, ["kiosk-01"])
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the discard port: nothing there
    monkeypatch.setenv("NO_PROXY", "")
    try:
        with ServerThread(store, "127.0.0.1", 0) as srv, StoreServerClient(srv.url) as client:
            assert not isinstance(client, requests.Session)
            assert client.health()["status"] == "ok"  # straight to the server, not the proxy
    finally:
        store.close()


def test_a_call_with_the_token_is_refused_without_a_request_when_there_is_none():
    session = Script(response(200, {}), token=None)
    with pytest.raises(
        Rejected, match="GET /v1/catalog: this kiosk has no store server token"
    ) as info:
        perform(session, endpoint([]), Call("GET", "/v1/catalog"), parser=dict)  # type: ignore[arg-type]
    assert (info.value.status, info.value.code) == (401, "not_enrolled") and session.sent == []
    assert perform(session, endpoint([]), HEALTH, parser=dict) == {}  # type: ignore[arg-type]
