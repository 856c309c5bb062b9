"""The store server client: against the real reference server, and loopback stubs for failures.

Loopback only; every wait is bounded by a short timeout, and no test asserts on elapsed time.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import random
import re
import ssl
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.config import ServerSection
from kiosk.domain.member_codes import CodeKind, load_public_key, verify_code
from kiosk.errors import KioskError, Rejected, StoreServerError, Unreachable
from kiosk.ports import OutboxEvent, RedemptionState, StoreServer
from kiosk.sync.client import BadResponse, RetryPolicy, StoreServerClient
from storeserver import codes as server_codes
from storeserver import demo, kiosks, members
from storeserver.clock import ManualClock
from storeserver.runner import ServerThread
from storeserver.store import Store

KIOSK = "kiosk-01"
FAST = RetryPolicy(attempts=4, base_delay_s=0.5, max_delay_s=8.0)


def new_txn() -> str:
    return str(uuid.uuid4())


# ---- the real reference server ------------------------------------------------------------------


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
def server(store) -> Iterator[ServerThread]:
    with ServerThread(store, "127.0.0.1", 0) as srv:
        yield srv


def enrollment_code(store: Store, kiosk_id: str = KIOSK, *, replace: bool = False) -> str:
    with store.db.transaction() as conn:
        return kiosks.new_enrollment_code(conn, store.clock, kiosk_id, replace=replace)


def member_code(store: Store, member_id: str) -> str:
    with store.db.transaction() as conn:
        return members.issue_code(store.ledger, conn, store.signing_key, member_id)["code"]


@dataclass
class Sleeps:
    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_client(url: str, tmp_path: Path, **kw) -> StoreServerClient:
    kw.setdefault("retry", FAST)
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("rng", random.Random(7))
    kw.setdefault("connect_timeout_s", 2.0)
    kw.setdefault("read_timeout_s", 5.0)
    return StoreServerClient(
        url,
        token_file=tmp_path / "state" / "token",
        public_key_file=tmp_path / "state" / "server_key.pub",
        **kw,
    )


@pytest.fixture
def client(server, store, tmp_path) -> Iterator[StoreServerClient]:
    c = make_client(server.url, tmp_path)
    c.enroll(enrollment_code(store), KIOSK)
    yield c
    c.close()


def test_the_client_satisfies_the_store_server_port(client):
    port: StoreServer = client
    assert port.health()["status"] == "ok"


def test_enroll_stores_the_token_0600_and_the_key_and_a_config_client_uses_them(
    server, store, tmp_path
):
    c = make_client(server.url, tmp_path)
    enrollment = c.enroll(enrollment_code(store), KIOSK)
    token_file = tmp_path / "state" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == c.token
    assert enrollment.kiosk_id == KIOSK and len(enrollment.public_key) == 32
    key = load_public_key((tmp_path / "state" / "server_key.pub").read_text())
    assert key.public_bytes_raw() == enrollment.public_key
    assert [p.name for p in token_file.parent.iterdir() if p.name.startswith(".")] == []

    section = ServerSection(
        url=server.url,
        token_file=token_file,
        public_key_file=tmp_path / "state" / "server_key.pub",
        connect_timeout_s=2.0,
        read_timeout_s=5.0,
    )
    again = StoreServerClient.from_config(section, sleep=Sleeps())
    assert again.token == c.token
    assert again.timeout == (2.0, 5.0)
    assert again.catalog()["items"]


def test_re_enrolling_rotates_the_token_and_the_old_one_is_rejected(client, store, tmp_path):
    old = client.token
    fresh = make_client(client.base_url, tmp_path / "other")
    fresh.enroll(enrollment_code(store, replace=True), KIOSK)
    assert fresh.token != old
    with pytest.raises(Rejected) as info:
        client.catalog()
    assert (info.value.status, info.value.code) == (401, "bad_token")
    assert "re-enroll" in str(info.value)


def test_a_used_enrollment_code_is_rejected_and_nothing_is_written(server, store, tmp_path):
    code = enrollment_code(store)
    make_client(server.url, tmp_path / "a").enroll(code, KIOSK)
    second = make_client(server.url, tmp_path / "b")
    with pytest.raises(Rejected) as info:
        second.enroll(code, "kiosk-02")
    assert info.value.code == "enrollment_code_used"
    assert "make a new one" in str(info.value)
    assert not (tmp_path / "b" / "state" / "token").exists()


def test_a_wrong_token_is_rejected_401(server, tmp_path):
    c = make_client(server.url, tmp_path, token="not-a-token")
    with pytest.raises(Rejected) as info:
        c.catalog()
    assert isinstance(info.value, Rejected)
    assert (info.value.status, info.value.code) == (401, "bad_token")


def test_without_a_token_the_kiosk_is_told_to_enroll_without_asking_the_server(tmp_path):
    c = make_client("http://127.0.0.1:9", tmp_path)  # discard port: would be refused anyway
    with pytest.raises(Rejected, match="enroll") as info:
        c.catalog()
    assert info.value.code == "not_enrolled"


def test_a_member_code_verifies_offline_and_resolves_online(client, store, clock):
    code = member_code(store, "M0002")
    key = load_public_key((Path(client.public_key_file)).read_text())
    verified = verify_code(code, key, int(clock.now().timestamp()))
    assert (verified.kind, verified.subject) == (CodeKind.MEMBER, "M0002")
    view = client.resolve_member(code)
    assert view["member_id"] == "M0002" and view["balance"] == 2700
    assert client.resolve_member(code)["member_id"] == "M0002"  # a retry by the same kiosk


def test_an_expired_member_code_is_rejected_by_the_server(client, store, clock):
    code = member_code(store, "M0002")
    clock.advance(seconds=61)
    with pytest.raises(Rejected) as info:
        client.resolve_member(code)
    assert (info.value.status, info.value.code) == (400, "code_expired")


def session_of(client, store, member_id: str) -> str:
    """The member session of a fresh code of the member, resolved by this kiosk."""
    session = client.resolve_member(member_code(store, member_id))["member_session"]
    assert isinstance(session, str) and session.startswith("ms_")
    return session


def test_redeem_then_capture_is_idempotent(client, store):
    txn = new_txn()
    session = session_of(client, store, "M0002")
    held = client.create_redemption(
        txn, "M0002", "GIFT-TOTE", 300, compartment=2, member_session=session
    )
    assert (held.txn_id, held.state, held.points, held.compartment) == (
        txn,
        RedemptionState.HELD,
        300,
        2,
    )
    assert held.balance == 2400
    # a retry is answered the first answer, the session or not
    assert client.create_redemption(txn, "M0002", "GIFT-TOTE", 300, compartment=2) == held
    assert client.get_redemption(txn) == held
    captured = client.capture(txn)
    assert captured.state is RedemptionState.CAPTURED
    assert client.capture(txn) == captured
    with pytest.raises(Rejected) as info:
        client.void(txn, "too late")
    assert (info.value.status, info.value.code) == (409, "already_captured")


def test_void_releases_the_hold(client, store):
    txn = new_txn()
    session = session_of(client, store, "M0002")
    client.create_redemption(txn, "M0002", "GIFT-MUG", 800, compartment=1, member_session=session)
    voided = client.void(txn, "door jammed")
    assert (voided.state, voided.void_reason, voided.balance) == (
        RedemptionState.VOIDED,
        "door jammed",
        2700,
    )
    assert client.void(txn, "door jammed") == voided


def test_a_reused_txn_id_and_a_bad_request_are_rejected_with_the_server_code(client, store):
    txn = new_txn()
    session = session_of(client, store, "M0002")
    client.create_redemption(txn, "M0002", "GIFT-TOTE", 300, compartment=2, member_session=session)
    with pytest.raises(Rejected) as info:
        client.create_redemption(txn, "M0002", "GIFT-MUG", 800, compartment=1)
    assert (info.value.status, info.value.code) == (409, "txn_id_reused")
    with pytest.raises(Rejected) as info:
        client.create_redemption("not-a-uuid", "M0002", "GIFT-TOTE", 300, compartment=2)
    assert (info.value.status, info.value.code) == (422, "invalid_request")
    with pytest.raises(Rejected) as info:
        client.capture("../../kiosks/enroll")  # escaped: stays one path segment
    assert info.value.status == 404


def test_wheel_info_and_a_spin(client, store):
    session = session_of(client, store, "M0003")
    wheel = client.wheel_info("LUCKY", member_id="M0003", member_session=session)
    assert wheel.cost_points == 100 and wheel.spins_left == 3
    assert wheel.commitment_on(store.today()) is not None
    txn = new_txn()
    spun = client.spin(txn, "M0003", "LUCKY", member_session=session)
    assert (spun.kind, spun.state, spun.points) == ("spin", RedemptionState.HELD, 100)
    assert spun.prize is not None and spun.prize.wheel_id == "LUCKY"
    assert spun.prize.commitment == wheel.commitments[spun.prize.day]  # what the kiosk holds
    assert client.spin(txn, "M0003", "LUCKY") == spun
    with pytest.raises(Rejected) as info:  # a drawn spin is final (docs/transactions.md)
        client.void(txn, "member walked away")
    assert (info.value.status, info.value.code) == (409, "spin_not_voidable")
    assert client.capture(txn).state is RedemptionState.CAPTURED
    with pytest.raises(Rejected) as info:  # another cost than shown: refused before the draw
        client.spin(new_txn(), "M0003", "LUCKY", cost_points=90, member_session=session)
    assert (info.value.status, info.value.code) == (409, "price_changed")


def test_events_are_applied_once_by_event_id(client):
    events = [
        OutboxEvent(
            "ev-1",
            "inventory",
            "2026-11-23T02:00:00+00:00",
            {"compartment": 6, "sku": "GIFT-MUG", "count": 4},
        ),
        OutboxEvent("ev-2", "fault", "2026-11-23T02:00:01+00:00", {"device": "printer"}),
        OutboxEvent("ev-3", "inventory", "2026-11-23T02:00:02+00:00", {"compartment": 0}),
    ]
    results = client.send_events(events)
    assert [(r.event_id, r.status) for r in results] == [
        ("ev-1", "applied"),
        ("ev-2", "applied"),
        ("ev-3", "rejected"),
    ]
    assert client.send_events(events) == results
    assert client.send_events([]) == []
    mug = next(i for i in client.catalog()["items"] if i["sku"] == "GIFT-MUG")
    assert {"number": 6, "stock": 4} in mug["compartments"]


def test_health_and_heartbeat(client, clock, store):
    assert client.health()["server_time"].startswith("2026-11-23")
    answer = client.heartbeat({"paper": "ok", "outbox": 0})
    assert answer["server_time"] == "2026-11-23T02:00:00+00:00"
    assert answer["public_keys"] == [server_codes.public_key_b64(store.signing_key)]
    assert answer["revoked_staff"]["ids"] == []  # staff who may not sign in offline


def test_a_stopped_server_is_unreachable_after_bounded_retries(store, tmp_path):
    srv = ServerThread(store, "127.0.0.1", 0).start()
    sleeps = Sleeps()
    c = make_client(srv.url, tmp_path, sleep=sleeps)
    assert c.health()["status"] == "ok"
    srv.stop()
    with pytest.raises(Unreachable, match="refused the connection") as info:
        c.health()
    assert "check that it is running" in str(info.value)
    assert len(sleeps.calls) == FAST.attempts - 1
    c.close()


# ---- loopback stubs -----------------------------------------------------------------------------


def raw(status: int, body: bytes | str = b"", *, length: int | None = None, headers=()) -> bytes:
    """One complete HTTP/1.1 response; ``length`` may lie about the body (truncation)."""
    body = body.encode() if isinstance(body, str) else body
    head = [f"HTTP/1.1 {status} Stub", "Content-Type: application/json", "Connection: close"]
    head.append(f"Content-Length: {len(body) if length is None else length}")
    head.extend(headers)
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def ok(obj: object) -> bytes:
    return raw(200, json.dumps(obj))


HANG = b"hang"  # the stub reads the request and never answers (until it stops)


class Stub:
    """A loopback HTTP(S) server answering scripted raw responses, recording every request."""

    def __init__(self, responses: list[bytes], tls: ssl.SSLContext | None = None) -> None:
        self.responses = list(responses)
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.requests.append((self.command, self.path, dict(self.headers), body))
                answer = stub.responses.pop(0) if len(stub.responses) > 1 else stub.responses[0]
                if answer is HANG:
                    stub.release.wait(10)
                else:
                    self.wfile.write(answer)
                self.close_connection = True

            do_GET = do_POST = handle_one

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # a client that aborts a TLS handshake is what some tests do

        self.httpd = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> Stub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


HEALTH = {"status": "ok", "server_time": "2026-11-23T02:00:00+00:00", "version": "1.0.0"}


def redemption(txn: str, **over) -> dict:
    base = {
        "txn_id": txn,
        "kind": "redeem",
        "state": "captured",
        "member_id": "M0002",
        "sku": "GIFT-TOTE",
        "compartment": 2,
        "points": 300,
        "cash_cents": 0,
        "hold_expires_at": "2026-11-23T02:10:00+00:00",
        "void_reason": None,
        "coupon_code": None,
        "payment": None,
        "prize": None,
        "balance": 2400,
    }
    return {**base, **over}


def test_503_then_200_is_retried_with_growing_jittered_backoff(tmp_path):
    sleeps = Sleeps()
    with Stub([raw(503), raw(503, '{"error":"x","message":"busy"}'), ok(HEALTH)]) as stub:
        c = make_client(stub.url, tmp_path, sleep=sleeps)
        assert c.health() == HEALTH
    assert len(stub.requests) == 3
    assert len(sleeps.calls) == 2
    first, second = sleeps.calls
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0  # equal jitter around 0.5 s, 1 s


def test_an_idempotent_post_is_retried_too(tmp_path):
    txn = new_txn()
    with Stub([raw(502), ok(redemption(txn))]) as stub:
        c = make_client(stub.url, tmp_path, token="t")
        assert c.capture(txn).state is RedemptionState.CAPTURED
    assert [r[:2] for r in stub.requests] == [("POST", f"/v1/redemptions/{txn}/capture")] * 2
    assert stub.requests[0][2]["Authorization"] == "Bearer t"


def test_5xx_every_time_is_unreachable_after_the_configured_attempts(tmp_path):
    sleeps = Sleeps()
    with Stub(
        [raw(500, '{"error":"internal","message":"the store server failed; see its log"}')]
    ) as stub:
        c = make_client(stub.url, tmp_path, sleep=sleeps)
        with pytest.raises(Unreachable, match=r"HTTP 500 \(after 4 attempts\)") as info:
            c.health()
    assert "see its log" in str(info.value)
    assert len(stub.requests) == 4 and len(sleeps.calls) == 3
    assert all(d <= FAST.max_delay_s for d in sleeps.calls)


def test_enrollment_is_never_retried(tmp_path):
    sleeps = Sleeps()
    enrolled = {"kiosk_id": KIOSK, "token": "tok", "public_key": "A" * 43 + "=", "server_time": "x"}
    with Stub([raw(503), ok(enrolled)]) as stub:
        c = make_client(stub.url, tmp_path, sleep=sleeps)
        with pytest.raises(Unreachable, match="HTTP 503"):
            c.enroll("ABCD-EFGH-JKLM", KIOSK)
    assert len(stub.requests) == 1 and sleeps.calls == []
    assert "Authorization" not in stub.requests[0][2]
    assert not (tmp_path / "state" / "token").exists()


def test_a_server_that_does_not_answer_times_out_as_unreachable(tmp_path):
    with Stub([HANG]) as stub:
        c = make_client(stub.url, tmp_path, read_timeout_s=0.2, retry=RetryPolicy(attempts=2))
        with pytest.raises(
            Unreachable, match=re.escape("did not answer GET /v1/health within 0.2 s")
        ):
            c.health()
    assert len(stub.requests) == 2


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("not json", raw(200, "<html>captive portal</html>")),
        ("json list", ok([1, 2, 3])),
        ("json null", ok(None)),
        ("missing keys", ok({"status": "ok"})),
        ("wrong type", ok({**HEALTH, "server_time": 12})),
        ("truncated", raw(200, b'{"status": "o', length=200)),
        ("empty", raw(200, b"")),
        ("html 404", raw(404, "<h1>Not Found</h1>")),
        ("4xx json without error body", raw(403, '{"detail": "forbidden"}')),
        ("4xx error body of wrong types", raw(409, '{"error": 5, "message": null}')),
        ("redirect", raw(302, b"", headers=["Location: http://elsewhere.example/"])),
        ("deep json", raw(200, "[" * 100000 + "]" * 100000)),
        ("bad utf-8", raw(200, b'{"status": "\xff\xfe"}')),
    ],
)
def test_garbage_answers_become_store_server_errors(tmp_path, name, answer):
    with Stub([answer]) as stub:
        c = make_client(stub.url, tmp_path, retry=RetryPolicy(attempts=2))
        with pytest.raises(StoreServerError) as info:
            c.health()
    assert isinstance(info.value, Unreachable)
    assert not isinstance(info.value, Rejected)
    assert "check" in str(info.value)


def test_an_answer_about_another_transaction_is_garbage(tmp_path):
    with Stub([ok(redemption(new_txn()))]) as stub:
        c = make_client(stub.url, tmp_path, token="t")
        with pytest.raises(BadResponse, match="another transaction"):
            c.capture(new_txn())


def test_a_points_balance_of_true_is_garbage(tmp_path):
    txn = new_txn()
    with Stub([ok(redemption(txn, points=True))]) as stub:
        c = make_client(stub.url, tmp_path, token="t")
        with pytest.raises(BadResponse, match="garbage"):
            c.get_redemption(txn)


def test_enrollment_with_a_bad_public_key_is_garbage_and_stores_nothing(tmp_path):
    bad = {"kiosk_id": KIOSK, "token": "tok", "public_key": "c2hvcnQ=", "server_time": "x"}
    with Stub([ok(bad)]) as stub:
        c = make_client(stub.url, tmp_path)
        with pytest.raises(BadResponse):
            c.enroll("ABCD-EFGH-JKLM", KIOSK)
    assert not (tmp_path / "state" / "token").exists()
    assert c.token is None


KEY_A, KEY_B = base64.b64encode(b"a" * 32).decode(), base64.b64encode(b"b" * 32).decode()


def test_enrollment_stores_every_key_of_a_rotation_current_first(tmp_path):
    answer = {"kiosk_id": KIOSK, "token": "tok", "public_key": KEY_A, "server_time": "x",
              "public_keys": [KEY_A, KEY_B]}  # fmt: skip
    with Stub([ok(answer)]) as stub:
        enrollment = make_client(stub.url, tmp_path).enroll("ABCD-EFGH-JKLM", KIOSK)
    assert enrollment.public_key == b"a" * 32
    assert enrollment.public_keys == (b"a" * 32, b"b" * 32)
    assert (tmp_path / "state" / "server_key.pub").read_text() == f"{KEY_A}\n{KEY_B}\n"


@pytest.mark.parametrize("listed", [[KEY_B, KEY_A], [], [KEY_A, "c2hvcnQ="], KEY_A, [KEY_A] * 5])
def test_enrollment_with_unusable_public_keys_is_garbage(tmp_path, listed):
    answer = {"kiosk_id": KIOSK, "token": "tok", "public_key": KEY_A, "server_time": "x",
              "public_keys": listed}  # fmt: skip
    with Stub([ok(answer)]) as stub, pytest.raises(BadResponse):
        make_client(stub.url, tmp_path).enroll("ABCD-EFGH-JKLM", KIOSK)
    assert not (tmp_path / "state" / "server_key.pub").exists()


def test_a_host_that_does_not_resolve_is_unreachable(tmp_path):
    c = make_client("http://store.invalid", tmp_path, retry=RetryPolicy(attempts=1))
    with pytest.raises(Unreachable, match=r"cannot resolve the store server.s name store\.invalid"):
        c.health()


# ---- hypothesis: any answer leaves only KioskError ------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_near_miss = st.fixed_dictionaries(
    {},
    optional={
        "txn_id": st.text(max_size=4),
        "state": st.text(max_size=4) | st.integers(),
        "status": st.just("ok"),
        "server_time": st.just("now") | st.integers(),
        "error": st.text(max_size=4) | st.none(),
        "message": st.text(max_size=4) | st.integers(),
        "results": st.lists(
            st.fixed_dictionaries({"event_id": st.just("e1"), "status": st.text(max_size=3)}),
            max_size=2,
        ),
        "items": st.lists(_json, max_size=2),
        "member_id": st.text(max_size=4),
        "balance": st.integers() | st.booleans(),
    },
)
_body = (
    st.binary(max_size=64)
    | _json.map(lambda v: json.dumps(v).encode())
    | _near_miss.map(lambda v: json.dumps(v).encode())
)


@pytest.fixture(scope="module")
def scripted() -> Iterator[Stub]:
    with Stub([ok(HEALTH)]) as stub:
        yield stub


CALLS = {
    "health": lambda c: c.health(),
    "catalog": lambda c: c.catalog(),
    "resolve": lambda c: c.resolve_member("LK1.M.x"),
    "capture": lambda c: c.capture("e1"),
    "events": lambda c: c.send_events([OutboxEvent("e1", "fault", "now")]),
    "heartbeat": lambda c: c.heartbeat({}),
    "wheel": lambda c: c.wheel_info("LUCKY"),
}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    call=st.sampled_from(sorted(CALLS)),
    status=st.integers(200, 599),
    body=_body,
    truncate=st.booleans(),
)
def test_any_answer_raises_nothing_but_kiosk_errors(
    scripted, tmp_path, call, status, body, truncate
):
    scripted.responses[:] = [raw(status, body, length=len(body) + 10 if truncate else None)]
    c = make_client(scripted.url, tmp_path, token="t", retry=RetryPolicy(attempts=2))
    try:
        CALLS[call](c)
    except KioskError as exc:
        assert isinstance(exc, StoreServerError) and str(exc)
        if isinstance(exc, Rejected):
            assert 400 <= status < 500 and isinstance(exc, Rejected)
    else:
        assert 200 <= status < 300 and not truncate
    finally:
        c.close()


# ---- TLS --------------------------------------------------------------------------------------------


@dataclass
class Cert:
    pem: Path
    key: Path
    sha256: str
    private_key: ec.EllipticCurvePrivateKey
    pin: str  # sha256/ + base64 of the SPKI's SHA-256, computed here independently


def make_cert(folder: Path, name: str, key: ec.EllipticCurvePrivateKey | None = None) -> Cert:
    """A self-signed certificate for 127.0.0.1, usable as its own CA bundle; ``key`` given,
    a renewal of a certificate with that key."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"store {name}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    pem, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pin = "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return Cert(pem, key_path, hashlib.sha256(der).hexdigest(), key, pin)


@pytest.fixture
def tls_stub(tmp_path) -> Iterator[tuple[Stub, Cert, Cert]]:
    server_cert, other = make_cert(tmp_path, "store"), make_cert(tmp_path, "other")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(server_cert.pem, server_cert.key)
    with Stub([ok(HEALTH)], tls=ctx) as stub:
        yield stub, server_cert, other


def test_tls_verifies_against_the_configured_ca_bundle(tls_stub, tmp_path):
    stub, cert, _ = tls_stub
    assert make_client(stub.url, tmp_path, ca_bundle=cert.pem).health() == HEALTH


@pytest.mark.parametrize("bundle", ["other", None])
def test_an_unknown_ca_fails_with_a_clear_message_and_is_not_retried(tls_stub, tmp_path, bundle):
    stub, _, other = tls_stub
    sleeps = Sleeps()
    c = make_client(stub.url, tmp_path, ca_bundle=other.pem if bundle else None, sleep=sleeps)
    with pytest.raises(Unreachable, match=re.escape("TLS verification of 127.0.0.1")) as info:
        c.health()
    assert "server.ca_bundle" in str(info.value) and "certificate verify failed" in str(info.value)
    assert sleeps.calls == []
    assert stub.requests == []


def test_pinning_the_right_fingerprint_works(tls_stub, tmp_path):
    stub, cert, _ = tls_stub
    c = make_client(stub.url, tmp_path, ca_bundle=cert.pem, pin_sha256=cert.sha256.upper())
    assert c.health() == HEALTH


def test_pinning_a_wrong_fingerprint_fails_and_says_so(tls_stub, tmp_path):
    stub, cert, other = tls_stub
    c = make_client(stub.url, tmp_path, ca_bundle=cert.pem, pin_sha256=other.sha256)
    with pytest.raises(Unreachable, match="does not match the pinned fingerprint") as info:
        c.health()
    assert other.sha256 in str(info.value)
    assert stub.requests == []


def test_pinning_does_not_switch_off_ca_verification(tls_stub, tmp_path):
    stub, cert, _ = tls_stub
    c = make_client(stub.url, tmp_path, pin_sha256=cert.sha256)  # system CAs: self-signed fails
    with pytest.raises(Unreachable, match="TLS verification"):
        c.health()


def test_config_pin_and_bundle_flow_through_from_config(tls_stub, tmp_path):
    stub, cert, _ = tls_stub
    section = ServerSection(
        url=stub.url,
        token_file=tmp_path / "token",
        public_key_file=tmp_path / "key.pub",
        ca_bundle=cert.pem,
        pin_sha256=cert.sha256,
    )
    assert StoreServerClient.from_config(section, sleep=Sleeps()).health() == HEALTH


# ---- pinning by the server's public key (SPKI) ---------------------------------------------------


@contextlib.contextmanager
def serving(cert: Cert) -> Iterator[Stub]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.pem, cert.key)
    with Stub([ok(HEALTH)], tls=ctx) as stub:
        yield stub


@pytest.fixture
def certs(tmp_path) -> tuple[Cert, Cert, Cert, Path]:
    """The store's certificate, its renewal (same key, another certificate), a certificate
    with another key, and a CA bundle trusting all three (so only the pin decides)."""
    first = make_cert(tmp_path, "first")
    renewed = make_cert(tmp_path, "renewed", key=first.private_key)
    other = make_cert(tmp_path, "otherkey")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"".join(c.pem.read_bytes() for c in (first, renewed, other)))
    assert renewed.sha256 != first.sha256 and renewed.pin == first.pin != other.pin
    return first, renewed, other, bundle


def test_a_key_pin_survives_a_certificate_renewal(certs, tmp_path):
    first, renewed, _, bundle = certs
    for cert in (first, renewed):
        with serving(cert) as stub:
            c = make_client(stub.url, tmp_path, ca_bundle=bundle, pins=[first.pin])
            assert c.health() == HEALTH
            c.close()


def test_the_old_certificate_pin_breaks_at_the_renewal(certs, tmp_path):
    first, renewed, _, bundle = certs
    with serving(renewed) as stub:
        c = make_client(stub.url, tmp_path, ca_bundle=bundle, pin_sha256=first.sha256)
        with pytest.raises(Unreachable, match="does not match the pinned fingerprint"):
            c.health()


def test_another_key_is_refused_naming_both_pins_and_the_one_seen(certs, tmp_path):
    first, _, other, bundle = certs
    spare = make_cert(tmp_path, "spare").pin
    sleeps = Sleeps()
    with serving(other) as stub:
        c = make_client(stub.url, tmp_path, ca_bundle=bundle, pins=[first.pin, spare], sleep=sleeps)
        with pytest.raises(Unreachable) as info:
            c.health()
        assert stub.requests == []  # refused before a byte of the request was sent
    text = str(info.value)
    assert first.pin in text and spare in text and f"({other.pin})" in text
    assert "matches none of the pinned keys" in text and "storeserver tls-pin" in text
    assert sleeps.calls == []  # never retried: the same key would be refused again


def test_either_of_two_pins_is_accepted(certs, tmp_path):
    first, _, other, bundle = certs
    with serving(other) as stub:
        c = make_client(stub.url, tmp_path, ca_bundle=bundle, pins=[first.pin, other.pin])
        assert c.health() == HEALTH


def test_a_key_pin_does_not_switch_off_ca_verification(certs, tmp_path):
    first, _, _, _ = certs
    with serving(first) as stub:
        c = make_client(stub.url, tmp_path, pins=[first.pin])  # system CAs: self-signed fails
        with pytest.raises(Unreachable, match="TLS verification"):
            c.health()


def test_the_pin_is_checked_on_every_new_connection(certs, tmp_path):
    first, _, other, bundle = certs
    c = make_client("https://127.0.0.1:1", tmp_path, ca_bundle=bundle, pins=[first.pin])
    with serving(first) as stub:
        c.base_url = stub.url
        assert c.health() == HEALTH  # the stub closes each connection: the next is new
    with serving(other) as stub:
        c.base_url = stub.url
        with pytest.raises(Unreachable, match="matches none of the pinned keys"):
            c.health()


def test_pins_flow_through_from_config_and_the_old_key_warns(certs, tmp_path, caplog):
    first, _, _, bundle = certs
    with serving(first) as stub:
        section = ServerSection(
            url=stub.url, token_file=tmp_path / "t", public_key_file=tmp_path / "k",
            ca_bundle=bundle, pins=(first.pin,),
        )  # fmt: skip
        assert StoreServerClient.from_config(section, sleep=Sleeps()).health() == HEALTH
        assert "deprecated" not in caplog.text
        legacy = ServerSection(
            url=stub.url, token_file=tmp_path / "t", public_key_file=tmp_path / "k",
            ca_bundle=bundle, pin_sha256=first.sha256,
        )  # fmt: skip
        assert StoreServerClient.from_config(legacy, sleep=Sleeps()).health() == HEALTH
    assert "server.pin_sha256 is deprecated" in caplog.text and "server.pins" in caplog.text
