"""Member identification against the real store server on loopback, and stubs for garbage.

The kiosk's clock is the store's ManualClock, so codes, expiry and cache ages line up; going
offline is the server really stopping (connection refused). No test waits on wall time.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.domain.member_view import parse_member_view, view_from_record, view_to_record
from kiosk.domain.payloads import PayloadKind
from kiosk.errors import KioskError, Rejected, StoreServerError, Unreachable
from kiosk.services.identify import (
    CACHE_TABLE,
    CodeRefused,
    Identified,
    IdentifyError,
    MemberIdentifier,
    MemberRefused,
    NotAMemberCode,
    OfflineUnavailable,
)
from kiosk.storage import Journal
from kiosk.storage.journal import SAFE_MODE_NAME
from kiosk.sync.client import RetryPolicy, StoreServerClient
from storeserver import codes, demo, kiosks, members
from storeserver.clock import ManualClock
from storeserver.runner import ServerThread
from storeserver.store import Store
from tests.kiosk.test_member_view import SERVER_VIEW

KIOSK, OTHER_KIOSK = "kiosk-01", "kiosk-02"


# ---- the real store server ------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path, clock) -> Iterator[Store]:
    s = Store(tmp_path / "store.db", clock=clock)
    demo.seed(s, [KIOSK, OTHER_KIOSK])
    yield s
    s.close()


@pytest.fixture
def server(store) -> Iterator[ServerThread]:
    with ServerThread(store, "127.0.0.1", 0) as srv:
        yield srv


class Counting:
    """The client, counting how often the kiosk asked the server."""

    def __init__(self, inner: StoreServerClient) -> None:
        self.inner = inner
        self.calls = 0

    def resolve_member(self, code: str) -> dict[str, Any]:
        self.calls += 1
        return self.inner.resolve_member(code)


@dataclass
class Kiosk:
    """One kiosk: its enrolled client, journal folder, journal and identifier."""

    server: Counting
    state: Path
    public_key: bytes
    clock: ManualClock
    cache_hours: int
    journal: Journal | None = None
    identifier: MemberIdentifier | None = None

    def open(self) -> Kiosk:
        if self.journal is not None:
            self.journal.close()
        self.journal = Journal.open(self.state / "journal")
        self.identifier = MemberIdentifier(
            self.server,  # type: ignore[arg-type]  # resolve_member is all it uses
            self.journal,
            self.public_key,
            now=lambda: self.clock.now().timestamp(),
            cache_hours=self.cache_hours,
        )
        return self

    def identify(self, payload: str) -> Identified:
        assert self.identifier is not None
        return self.identifier.identify(payload)


def new_kiosk(server, store, clock, folder: Path, kiosk_id=KIOSK, cache_hours=24) -> Kiosk:
    client = StoreServerClient(
        server.url,
        token_file=folder / "token",
        public_key_file=folder / "server_key.pub",
        retry=RetryPolicy(attempts=2),
        sleep=lambda _s: None,
        connect_timeout_s=2.0,
        read_timeout_s=5.0,
    )
    with store.db.transaction() as conn:
        enrollment_code = kiosks.new_enrollment_code(conn, store.clock, kiosk_id)
    enrollment = client.enroll(enrollment_code, kiosk_id)
    return Kiosk(Counting(client), folder, enrollment.public_key, clock, cache_hours).open()


@pytest.fixture
def kiosk(server, store, clock, tmp_path) -> Iterator[Kiosk]:
    k = new_kiosk(server, store, clock, tmp_path / "kiosk")
    yield k
    assert k.journal is not None
    k.journal.close()
    k.server.inner.close()


def member_code(store: Store, member_id: str) -> str:
    with store.db.transaction() as conn:
        return members.issue_code(store.ledger, conn, store.signing_key, member_id)["code"]


def signed(store: Store, kind: codes.CodeKind, subject: str) -> str:
    return codes.issue(store.signing_key, kind, subject, int(store.clock.now().timestamp()))


def refused(kiosk: Kiosk, payload: str, error: type[IdentifyError] = CodeRefused) -> IdentifyError:
    with pytest.raises(error) as info:
        kiosk.identify(payload)
    exc = info.value
    assert str(exc) and exc.zh and exc.en and exc.zh != exc.en  # technician and member texts
    return exc


# ---- online --------------------------------------------------------------------------------------


def test_a_member_code_shows_the_fresh_view_and_caches_it(kiosk, store):
    got = kiosk.identify(member_code(store, "M0002"))
    assert got.online and got.age_s == 0.0 and got.cached
    v = got.view
    assert (v.member_id, v.name_masked, v.phone_masked) == ("M0002", "李*", "139****6789")
    assert (v.tier.code, v.tier.name_zh, v.next_tier and v.next_tier.code) == (
        "silver",
        "银卡会员",
        "gold",
    )
    assert (v.balance, v.points_to_next_tier) == (2700, 2300)
    today = store.today()
    assert [(e.points, e.expires_on) for e in v.expiring] == [
        (600, today + dt.timedelta(days=5)),
        (900, today + dt.timedelta(days=25)),
    ]
    assert [c.delta for c in v.recent_changes] == [1200, 900, 600]
    assert (got.code.subject, got.code.kind.value) == ("M0002", "M")
    cached = kiosk.journal.get(CACHE_TABLE, "M0002")
    assert view_from_record(cached) == v


def test_the_test_view_of_the_domain_tests_is_what_the_server_sends(kiosk, store):
    with store.db.transaction() as conn:
        real = members.view(store.ledger, conn, "M0002", KIOSK)
    assert set(real) == set(SERVER_VIEW)  # keep tests/kiosk/test_member_view.py honest


def test_a_replayed_code_is_refused_without_asking_the_server(kiosk, store):
    code = member_code(store, "M0002")
    kiosk.identify(code)
    exc = refused(kiosk, code)
    assert exc.reason == "replayed" and kiosk.server.calls == 1


def test_a_replay_is_refused_after_a_restart_too(kiosk, store):
    code = member_code(store, "M0002")
    kiosk.identify(code)
    kiosk.open()  # the journal is closed and read back from disk
    assert refused(kiosk, code).reason == "replayed"
    assert kiosk.server.calls == 1


def test_an_expired_code_is_refused(kiosk, store, clock):
    code = member_code(store, "M0002")
    clock.advance(seconds=60)
    exc = refused(kiosk, code)
    assert exc.reason == "expired" and "refresh" in exc.en and kiosk.server.calls == 0


@pytest.mark.parametrize("where", ["signature", "subject"])
def test_a_tampered_code_is_refused_as_forged(kiosk, store, where):
    code = member_code(store, "M0002")
    body, sig = code.rsplit(".", 1)
    if where == "signature":
        sig = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    else:
        body = body.replace(".M0002.", ".M0004.")
    assert refused(kiosk, f"{body}.{sig}").reason == "forged"
    assert kiosk.server.calls == 0


@pytest.mark.parametrize("payload", ["", "hello", "https://example.com/M0002", "LK1.M.M0002"])
def test_anything_else_is_not_a_member_code(kiosk, payload):
    assert refused(kiosk, payload).reason == "malformed"


@pytest.mark.parametrize(
    ("kind", "payload_kind"),
    [
        (codes.CodeKind.STAFF, PayloadKind.STAFF),
        (codes.CodeKind.TECHNICIAN, PayloadKind.TECHNICIAN),
    ],
)
def test_staff_and_technician_codes_are_routed_with_their_nonce_untouched(
    kiosk, store, kind, payload_kind
):
    payload = signed(store, kind, "staff-7")
    exc = refused(kiosk, payload, NotAMemberCode)
    assert (exc.kind, exc.payload) == (payload_kind, payload)
    assert kiosk.server.calls == 0 and kiosk.journal.all("nonces") == {}


def test_an_unknown_member_is_the_servers_refusal_and_drops_a_cached_view(kiosk, store):
    gone = parse_member_view({**SERVER_VIEW, "member_id": "M9999"}, store.clock.now().timestamp())
    kiosk.journal.put(CACHE_TABLE, "M9999", view_to_record(gone))
    exc = refused(kiosk, signed(store, codes.CodeKind.MEMBER, "M9999"), MemberRefused)
    assert (exc.status, exc.code, exc.reason) == (404, "unknown_member", "unknown_member")
    assert "M9999" in str(exc) and exc.en == "Membership not found: please ask staff"
    assert kiosk.journal.get(CACHE_TABLE, "M9999") is None


def test_a_code_used_at_another_kiosk_is_refused_by_the_server(
    kiosk, server, store, clock, tmp_path
):
    other = new_kiosk(server, store, clock, tmp_path / "other", OTHER_KIOSK)
    code = member_code(store, "M0003")
    kiosk.identify(code)
    exc = refused(other, code)
    assert exc.reason == "replayed" and "another kiosk" in str(exc)
    assert other.server.calls == 1
    other.journal.close()


# ---- offline -------------------------------------------------------------------------------------


def test_offline_the_cached_view_is_shown_with_its_age(kiosk, server, store, clock):
    fresh = kiosk.identify(member_code(store, "M0002")).view
    clock.advance(hours=2, minutes=30)
    server.stop()
    got = kiosk.identify(member_code(store, "M0002"))
    assert not got.online and got.view == fresh
    assert got.age_s == pytest.approx(2.5 * 3600)
    assert (got.age_text.zh, got.age_text.en) == ("2 小时前", "2 h ago")


def test_offline_the_cache_survives_a_restart(kiosk, server, store, clock):
    kiosk.identify(member_code(store, "M0004"))
    kiosk.open()
    server.stop()
    assert kiosk.identify(member_code(store, "M0004")).view.name_masked == "E*********"


def test_offline_without_a_cached_view_the_member_cannot_be_shown(kiosk, server, store):
    kiosk.identify(member_code(store, "M0002"))
    server.stop()
    exc = refused(kiosk, member_code(store, "M0003"), OfflineUnavailable)
    assert exc.reason == "no_cache" and exc.age_s is None
    assert "M0003" in str(exc) and "not seen on this kiosk" in str(exc)
    assert "offline" in exc.en


def test_offline_a_view_older_than_the_cache_hours_is_not_shown_and_is_dropped(
    kiosk, server, store, clock
):
    kiosk.identify(member_code(store, "M0002"))
    clock.advance(hours=24)
    server.stop()
    exc = refused(kiosk, member_code(store, "M0002"), OfflineUnavailable)
    assert exc.reason == "stale" and exc.age_s == pytest.approx(24 * 3600)
    assert "member_cache_hours = 24" in str(exc)
    assert kiosk.journal.get(CACHE_TABLE, "M0002") is None


def test_a_cache_of_zero_hours_caches_nothing(server, store, clock, tmp_path):
    k = new_kiosk(server, store, clock, tmp_path / "k0", cache_hours=0)
    assert not k.identify(member_code(store, "M0002")).cached
    assert k.journal.all(CACHE_TABLE) == {}
    server.stop()
    assert refused(k, member_code(store, "M0002"), OfflineUnavailable).reason == "disabled"
    k.journal.close()


def test_purge_drops_only_views_older_than_the_cache_hours(kiosk, store, clock):
    kiosk.identify(member_code(store, "M0001"))
    clock.advance(hours=20)
    kiosk.identify(member_code(store, "M0002"))
    kiosk.journal.put(CACHE_TABLE, "M0005", {"format": 1, "fetched_at": "garbage"})
    clock.advance(hours=5)
    assert kiosk.identifier.purge_expired() == 2
    assert sorted(kiosk.journal.all(CACHE_TABLE)) == ["M0002"]
    assert kiosk.identifier.purge_expired() == 0


# ---- safe mode -----------------------------------------------------------------------------------


def test_in_safe_mode_members_are_shown_online_only_and_replays_still_refused(
    server, store, clock, tmp_path
):
    folder = tmp_path / "safe"
    (folder / "journal").mkdir(parents=True)
    (folder / "journal" / SAFE_MODE_NAME).write_text("journal corrupt: test\n")
    k = new_kiosk(server, store, clock, folder)
    assert k.journal.safe_mode
    code = member_code(store, "M0002")
    got = k.identify(code)
    assert got.online and not got.cached and got.view.balance == 2700
    assert refused(k, code).reason == "replayed"  # remembered in memory
    assert k.identifier.purge_expired() == 0
    server.stop()
    exc = refused(k, member_code(store, "M0002"), OfflineUnavailable)
    assert exc.reason == "safe_mode" and "journal corrupt: test" in str(exc)
    k.journal.close()


def test_a_closed_journal_refuses_codes_because_nonces_cannot_be_recorded(kiosk, store):
    kiosk.journal.close()
    exc = refused(kiosk, member_code(store, "M0002"), IdentifyError)
    assert exc.reason == "journal" and "open it again" in str(exc)
    assert kiosk.server.calls == 0


# ---- garbage: a scripted server port and an HTTP stub --------------------------------------------

NOW = 1_795_430_568
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUB = KEY.public_key()


def mint(subject: str = "M0002", kind: codes.CodeKind = codes.CodeKind.MEMBER) -> str:
    return codes.issue(KEY, kind, subject, NOW - 5)


class Scripted:
    """A StoreServer port whose resolve_member answers (or raises) what a test scripts."""

    def __init__(self) -> None:
        self.answer: object = None

    def resolve_member(self, code: str) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


@pytest.fixture(scope="module")
def scripted(tmp_path_factory) -> Iterator[tuple[Scripted, MemberIdentifier]]:
    port = Scripted()
    with Journal.open(tmp_path_factory.mktemp("journal")) as journal:
        yield port, MemberIdentifier(port, journal, PUB, now=lambda: NOW, cache_hours=24)  # type: ignore[arg-type]


def test_an_answer_about_another_member_is_treated_as_no_answer(scripted):
    port, identifier = scripted
    port.answer = {**SERVER_VIEW, "member_id": "M0004"}
    with pytest.raises(OfflineUnavailable) as info:
        identifier.identify(mint("M0003"))
    assert "with member M0004" in str(info.value)


def test_a_garbage_answer_falls_back_to_the_cached_view(scripted):
    port, identifier = scripted
    port.answer = SERVER_VIEW
    fresh = identifier.identify(mint()).view
    port.answer = {"member_id": "M0002", "tier": "gold", "balance": "lots"}
    got = identifier.identify(mint())
    assert not got.online and got.view == fresh and got.age_s == 0.0


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["M0002", "2026-11-28", "\ud800"])
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
_answers = (
    _json
    | st.builds(lambda k, v: {**SERVER_VIEW, k: v}, st.sampled_from(sorted(SERVER_VIEW)), _json)
    | st.sampled_from(
        [
            Unreachable("down: check the network"),
            Rejected(404, "unknown_member", "no member"),
            Rejected(400, "code_weird", "new reason"),
            Rejected(401, "bad_token", "re-enroll"),
            StoreServerError("something else"),
        ]
    )
)


@st.composite
def _payloads(draw: st.DrawFn) -> str:
    code = mint(
        draw(st.sampled_from(["M0002", "M0003", "x"])), draw(st.sampled_from(codes.CodeKind))
    )
    how = draw(st.sampled_from(["as is", "edit", "cut", "pad", "text"]))
    if how == "text":
        return draw(st.text(max_size=300))
    i = draw(st.integers(0, len(code) - 1))
    if how == "edit":
        return code[:i] + draw(st.characters()) + code[i + 1 :]
    if how == "cut":
        return code[:i]
    return draw(st.sampled_from([" ", "\n", "\x00", "\u3000"])) + code if how == "pad" else code


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=_payloads(), answer=_answers)
def test_any_payload_and_any_answer_raise_nothing_but_kiosk_errors(scripted, payload, answer):
    port, identifier = scripted
    port.answer = answer
    try:
        got = identifier.identify(payload)
    except KioskError as exc:
        assert isinstance(exc, IdentifyError) and str(exc) and exc.zh and exc.en
    else:
        assert got.view.member_id == got.code.subject


class GarbageServer:
    """A loopback HTTP server answering every request with a scripted status and body."""

    def __init__(self) -> None:
        self.status, self.body = 200, b"{}"
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(stub.body)))
                self.end_headers()
                self.wfile.write(stub.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def over_http(tmp_path_factory) -> Iterator[tuple[GarbageServer, MemberIdentifier]]:
    stub = GarbageServer()
    client = StoreServerClient(
        stub.url, token="t", retry=RetryPolicy(attempts=1), read_timeout_s=5.0
    )
    with Journal.open(tmp_path_factory.mktemp("journal")) as journal:
        yield stub, MemberIdentifier(client, journal, PUB, now=lambda: NOW, cache_hours=24)
    client.close()
    stub.close()


_bodies = (
    st.binary(max_size=40)
    | _json.map(lambda v: json.dumps(v).encode())
    | st.builds(
        lambda k, v: {**SERVER_VIEW, k: v}, st.sampled_from(sorted(SERVER_VIEW)), _json
    ).map(lambda v: json.dumps(v).encode())
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(status=st.sampled_from([200, 200, 200, 400, 404, 409, 500]), body=_bodies)
def test_any_http_answer_raises_nothing_but_kiosk_errors(over_http, status, body):
    stub, identifier = over_http
    stub.status, stub.body = status, body
    try:
        got = identifier.identify(mint())
    except KioskError as exc:
        assert isinstance(exc, IdentifyError) and str(exc) and exc.zh and exc.en
    else:
        assert got.view.member_id == "M0002"
