"""A member lookup always ends, and the member sees it end: against a loopback server that
accepts the connection and never answers, the client gives up within its read timeout (no
retries past it), the identifier says "offline" and the session shows it; the session's own
countdown, cancel and give-up work whatever the client does.

(Beside tests/kiosk/services/, which other work owns: these test the client, the identifier
and the session together.)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.errors import Unreachable
from kiosk.i18n import bilingual
from kiosk.services.identify import MemberIdentifier, OfflineUnavailable
from kiosk.services.session import LOOKUP_GRACE_S, MemberSession, Screen
from kiosk.storage import Journal
from kiosk.sync.client import RetryPolicy, StoreServerClient
from storeserver import codes

READ_TIMEOUT_S = 1.0


class SilentServer:
    """Listens on 127.0.0.1, accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)  # held open, never read from or answered

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent():
    with SilentServer() as server:
        yield server


def client_for(url: str) -> StoreServerClient:
    # the default four attempts: without the lookup's bound they would take 4 read timeouts
    return StoreServerClient(
        url, token="t", connect_timeout_s=0.5, read_timeout_s=READ_TIMEOUT_S,
        retry=RetryPolicy(attempts=4, base_delay_s=0.05),
    )  # fmt: skip


def timed(fn: Callable[[], object]) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        fn()
    except Exception as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def test_a_silent_server_costs_one_read_timeout_not_four(silent):
    client = client_for(silent.url)
    try:
        took, exc = timed(lambda: client.resolve_member("LK1.M.x"))
    finally:
        client.close()
    assert isinstance(exc, Unreachable) and "did not answer" in str(exc)
    assert took >= READ_TIMEOUT_S * 0.9  # it did wait for the answer
    assert len(silent.accepted) == 1  # and started no retry past the lookup's bound


def test_a_refused_connection_is_still_retried_within_the_bound():
    with socket.socket() as s:  # a port nothing listens on: refused at once
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    slept: list[float] = []
    client = StoreServerClient(
        url, token="t", read_timeout_s=10.0, retry=RetryPolicy(attempts=4), sleep=slept.append
    )
    try:
        _, exc = timed(lambda: client.resolve_member("LK1.M.x"))
    finally:
        client.close()
    assert isinstance(exc, Unreachable)
    assert len(slept) == 3  # backoffs of at most 0.5 + 1 + 2 s fit in 10 s: all four attempts


def member_code(key: Ed25519PrivateKey, now: float) -> str:
    return codes.issue(key, codes.CodeKind.MEMBER, "M0002", int(now))


@pytest.fixture
def identifier(silent, tmp_path):
    key = Ed25519PrivateKey.generate()
    journal = Journal.open(tmp_path / "journal")
    client = client_for(silent.url)
    ident = MemberIdentifier(
        client, journal, codes.public_key_b64(key), now=time.time, cache_hours=24
    )
    ident.test_key = key
    yield ident
    client.close()
    journal.close()


def test_the_identifier_answers_offline_within_the_read_timeout(identifier, silent):
    code = member_code(identifier.test_key, time.time())
    _, exc = timed(lambda: identifier.identify(code))
    assert isinstance(exc, OfflineUnavailable) and exc.reason == "no_cache"
    assert exc.message == bilingual("identify.offline")
    assert len(silent.accepted) == 1  # one read timeout, no retry after it


def test_the_session_brings_the_member_back_with_a_clear_message(identifier, silent):
    """The real worker thread, as in the app: the screen leaves "looking up" by itself."""
    session = MemberSession(
        identifier=identifier, engine=None, catalog=lambda: None, online=lambda: True,  # type: ignore[arg-type]
        post=lambda fn: fn(), lookup_timeout_s=READ_TIMEOUT_S,
    )  # fmt: skip
    start = time.monotonic()
    session.on_scan(member_code(identifier.test_key, time.time()))
    assert session.state.busy and session.state.lookup_left_s == READ_TIMEOUT_S
    while session.state.busy:  # a hang guard, not a timing goal (that is one attempt, below)
        assert time.monotonic() - start < READ_TIMEOUT_S + 20, "the lookup never ended"
        time.sleep(0.02)
    assert len(silent.accepted) == 1
    assert session.state.screen is Screen.ATTRACT and session.state.lookup_left_s is None
    assert session.state.error == bilingual("identify.offline")


# ---- the session's own bound, whatever the client does -------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FoundIdentifier:
    """Identifies every code as one member (the ``held`` session decides when it runs)."""

    def identify(self, payload: str) -> object:
        return SimpleNamespace(view=SimpleNamespace(member_id="M0002"), online=True)


@pytest.fixture
def held():
    """A session whose lookups wait in ``pending`` until the test runs them."""
    pending: list[Callable[[], None]] = []
    clock = Clock()
    session = MemberSession(
        identifier=FoundIdentifier(), engine=None, catalog=lambda: None,  # type: ignore[arg-type]
        online=lambda: True, post=lambda fn: fn(), run=pending.append, clock=clock,
        lookup_timeout_s=10.0,
    )  # fmt: skip
    session.pending, session.test_clock = pending, clock
    return session


def test_the_countdown_follows_the_clock(held):
    held.on_scan("LK1.M.anything")
    assert held.state.busy and held.state.lookup_left_s == 10.0
    held.test_clock.now += 4
    held.tick()
    assert held.state.lookup_left_s == pytest.approx(6.0) and held.state.busy
    held.test_clock.now += 7  # past the client's bound, within the grace: 0:00, still waiting
    held.tick()
    assert held.state.lookup_left_s == 0.0 and held.state.busy


def test_cancel_goes_back_at_once_and_a_late_answer_is_ignored(held):
    held.on_scan("LK1.M.anything")
    held.cancel_lookup()
    state = held.state
    assert not state.busy and state.screen is Screen.ATTRACT
    assert state.error == bilingual("session.lookup_cancelled") and state.lookup_left_s is None
    held.pending.pop()()  # the answer arrives after all
    assert held.state is state  # nothing changed: no member appears after a cancel
    held.cancel_lookup()  # nothing runs: a second cancel does nothing
    assert held.state is state


def test_a_lookup_that_outlives_its_bound_is_given_up(held, caplog):
    held.on_scan("LK1.M.anything")
    held.test_clock.now += 10 + LOOKUP_GRACE_S + 0.1
    held.tick()
    state = held.state
    assert not state.busy and state.error == bilingual("session.lookup_timeout")
    assert "member lookup still running" in caplog.text
    held.pending.pop()()
    assert held.state is state
    held.on_scan("LK1.M.again")  # the next scan is looked up as usual
    assert held.state.busy
