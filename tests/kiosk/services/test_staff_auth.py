"""StaffAuthenticator against the real store server on loopback, and offline on its journal."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import kiosk.services.staff_auth as staff_auth
from kiosk.domain.staff import (
    CachedPin,
    ScryptParams,
    StaffAuthUnavailable,
    StaffLocked,
    StaffRejected,
)
from kiosk.domain.staff_lockout import (
    FailureRecord,
)
from kiosk.errors import Rejected
from kiosk.i18n import render
from kiosk.services.staff_auth import FAILURE_TABLE, PIN_TABLE, StaffAuthenticator, StaffSession
from kiosk.storage.journal import SAFE_MODE_NAME, Journal
from kiosk.sync.client import StoreServerClient
from storeserver import codes, demo, members, staff
from storeserver.clock import ManualClock
from storeserver.runner import ServerThread
from storeserver.store import Store

from ..sync.test_client import KIOSK, enrollment_code, make_client

CHEAP = ScryptParams(n=2**10)  # the kiosk's hash cost does not change the rules under test
MANAGER = "王店长 / Manager Wang"


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
def online(store, tmp_path) -> Iterator[StoreServerClient]:
    with ServerThread(store, "127.0.0.1", 0) as server:
        c = make_client(server.url, tmp_path)
        c.enroll(enrollment_code(store), KIOSK)
        yield c
        c.close()


@pytest.fixture
def offline(tmp_path) -> Iterator[StoreServerClient]:
    """A client of a port nobody listens on: every call is Unreachable at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = make_client(f"http://127.0.0.1:{port}", tmp_path / "offline", token="t")
    yield c
    c.close()


@pytest.fixture
def journal(tmp_path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "journal") as j:
        yield j


def auth(server, journal, store, clock, **kw) -> StaffAuthenticator:
    kw.setdefault("hash_params", CHEAP)
    return StaffAuthenticator(
        server,
        journal,
        store.signing_key.public_key(),
        lambda: clock.now().timestamp(),
        **kw,
    )


def badge(store, staff_id: str = "S0001", days: int = 365) -> str:
    with store.db.transaction() as conn:
        return staff.issue_badge(conn, store.clock, store.signing_key, staff_id, days)["code"]


def server_failures(store, staff_id: str = "S0001") -> int:
    row = (
        store.db.connection()
        .execute("SELECT failed_count FROM staff WHERE id = ?", (staff_id,))
        .fetchone()
    )
    return row["failed_count"]


# ---- online -------------------------------------------------------------------------------------


def test_online_sign_in_caches_a_salted_hash_never_the_pin(online, journal, store, clock):
    session = auth(online, journal, store, clock).authenticate(badge(store), "246810")
    assert session == StaffSession("S0001", MANAGER, online=True)
    record = journal.get(PIN_TABLE, "S0001")
    assert record["name"] == MANAGER and record["cached_at"] == clock.now().timestamp()
    assert {"alg", "n", "r", "p", "salt", "hash"} <= set(record) and "246810" not in repr(record)
    assert journal.get(FAILURE_TABLE, "S0001") is None


def test_a_wrong_pin_online_is_counted_on_the_server_and_the_kiosk(online, journal, store, clock):
    a = auth(online, journal, store, clock)
    with pytest.raises(StaffRejected) as info:
        a.authenticate(badge(store), "1111")
    assert info.value.reason == "bad_pin" and info.value.attempts_left == 4
    assert "还可尝试 4 次" in render(info.value).zh and "4 attempts left" in render(info.value).en
    assert server_failures(store) == 1
    assert journal.get(FAILURE_TABLE, "S0001")["count"] == 1
    assert journal.get(PIN_TABLE, "S0001") is None  # nothing cached from a refused PIN
    # a right PIN clears both runs of wrong PINs (not the day's count: see the daily cap)
    assert a.authenticate(badge(store), "246810").online
    kept = FailureRecord.from_record(journal.get(FAILURE_TABLE, "S0001"))
    assert server_failures(store) == 0 and (kept.count, kept.day_count) == (0, 1)


def test_five_wrong_pins_lock_for_five_minutes_then_release(online, journal, store, clock):
    a, code = auth(online, journal, store, clock), badge(store)
    for left in (4, 3, 2, 1):
        with pytest.raises(StaffRejected) as info:
            a.authenticate(code, "1111")
        assert info.value.attempts_left == left
    with pytest.raises(StaffLocked) as locked:
        a.authenticate(code, "1111")
    assert locked.value.seconds_left == 300 and "5 分钟" in render(locked.value).zh
    clock.advance(seconds=299)
    with pytest.raises(StaffLocked) as still:
        a.authenticate(code, "246810")  # even the right PIN
    assert still.value.seconds_left == 1
    clock.advance(seconds=1)
    assert a.authenticate(code, "246810") == StaffSession("S0001", MANAGER, True)


def test_a_lock_made_at_another_kiosk_is_mirrored_with_the_servers_wait(
    online, offline, journal, store, clock
):
    code = badge(store)
    for _ in range(5):  # five wrong PINs at kiosk-02, straight to the server
        with pytest.raises((staff.BadPin, staff.StaffLocked)):
            staff.verify(store.db, store.clock, store.signing_key, "kiosk-02", code, "1111")
    clock.advance(seconds=100)
    with pytest.raises(StaffLocked) as info:
        auth(online, journal, store, clock).authenticate(code, "246810")
    assert info.value.seconds_left == 200
    # the lock is in the journal, so it holds offline too
    with pytest.raises(StaffLocked):
        auth(offline, journal, store, clock).authenticate(code, "246810")


def test_a_badge_or_pin_format_problem_never_reaches_the_server(online, journal, store, clock):
    a = auth(online, journal, store, clock)
    now = int(clock.now().timestamp())
    member = codes.issue(store.signing_key, codes.CodeKind.MEMBER, "M0001", now)
    with pytest.raises(StaffRejected) as info:
        a.authenticate(member, "246810")
    assert info.value.reason == "bad_badge" and "not a staff badge" in render(info.value).en
    with pytest.raises(StaffRejected, match="4 to 12 digits"):
        a.authenticate(badge(store), "12")
    assert server_failures(store) == 0 and journal.get(FAILURE_TABLE, "S0001") is None


def test_a_member_code_scanned_as_a_badge_keeps_its_nonce_unused(online, journal, store, clock):
    with store.db.transaction() as conn:
        code = members.issue_code(store.ledger, conn, store.signing_key, "M0002")["code"]
    with pytest.raises(StaffRejected):
        auth(online, journal, store, clock).authenticate(code, "246810")
    assert online.resolve_member(code)["member_id"] == "M0002"


def test_a_disabled_staff_member_loses_the_offline_cache(online, offline, journal, store, clock):
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, "246810")
    with store.db.transaction() as conn:
        staff.set_active(conn, "S0001", False)
    with pytest.raises(StaffRejected) as info:
        auth(online, journal, store, clock).authenticate(code, "246810")
    assert info.value.reason == "bad_badge" and "停用" in render(info.value).zh
    assert journal.get(PIN_TABLE, "S0001") is None
    with pytest.raises(StaffAuthUnavailable) as off:
        auth(offline, journal, store, clock).authenticate(code, "246810")
    assert off.value.reason == "offline_no_cache"


def test_a_pin_changed_on_the_server_drops_the_cached_old_pin(online, journal, store, clock):
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, "246810")
    with store.db.transaction() as conn:
        staff.add_staff(conn, store.clock, "S0001", MANAGER, "999999", replace=True)
    with pytest.raises(StaffRejected):
        auth(online, journal, store, clock).authenticate(code, "246810")
    assert journal.get(PIN_TABLE, "S0001") is None
    assert auth(online, journal, store, clock).authenticate(code, "999999").online


def test_another_refusal_is_left_to_the_technician(journal, store, clock, tmp_path):
    with ServerThread(store, "127.0.0.1", 0) as server:
        bad_token = make_client(server.url, tmp_path / "x", token="not-a-kiosk-token")
        with pytest.raises(Rejected) as info:
            auth(bad_token, journal, store, clock).authenticate(badge(store), "246810")
        bad_token.close()
    assert info.value.code == "bad_token" and not isinstance(info.value, StaffRejected)
    assert journal.get(FAILURE_TABLE, "S0001") is None


# ---- offline ------------------------------------------------------------------------------------


def test_offline_with_a_cached_pin_signs_in_and_counts_wrong_pins(
    online, offline, journal, store, clock
):
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, "246810")
    clock.advance(days=3)
    a = auth(offline, journal, store, clock)
    assert a.authenticate(code, "246810") == StaffSession("S0001", MANAGER, online=False)
    with pytest.raises(StaffRejected) as info:
        a.authenticate(code, "1111")
    assert info.value.attempts_left == 4
    assert server_failures(store) == 0  # the server never saw it


def test_offline_without_a_cached_pin_asks_for_one_online_sign_in(offline, journal, store, clock):
    with pytest.raises(StaffAuthUnavailable) as info:
        auth(offline, journal, store, clock).authenticate(badge(store, "S0002"), "135791")
    err = info.value
    assert err.reason == "offline_no_cache"
    assert "联网时登录一次" in render(err).zh and "sign in once while" in render(err).en
    assert journal.get(FAILURE_TABLE, "S0002") is None  # nothing to check, nothing counted


def test_a_stale_cached_pin_is_refused_and_dropped(online, offline, journal, store, clock):
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, "246810")
    clock.advance(days=7, seconds=1)
    with pytest.raises(StaffAuthUnavailable) as info:
        auth(offline, journal, store, clock, cache_days=7).authenticate(code, "246810")
    assert info.value.reason == "offline_cache_stale" and "7 days" in info.value.detail
    assert journal.get(PIN_TABLE, "S0001") is None


def test_offline_lockout_and_release(online, offline, journal, store, clock):
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, "246810")
    a = auth(offline, journal, store, clock)
    for _ in range(4):
        with pytest.raises(StaffRejected):
            a.authenticate(code, "1111")
    with pytest.raises(StaffLocked) as locked:
        a.authenticate(code, "1111")
    assert locked.value.seconds_left == 300
    clock.advance(seconds=299)
    with pytest.raises(StaffLocked):
        a.authenticate(code, "246810")
    clock.advance(seconds=1)
    assert not a.authenticate(code, "246810").online


def test_offline_the_kiosk_counts_by_the_rule_the_server_sends(
    online, offline, journal, store, clock, monkeypatch
):
    from kiosk.domain.catalog import parse_catalog
    from storeserver import staff_lockout as server_rule

    monkeypatch.setattr(server_rule, "IN_A_ROW", 3)  # the store's rule, not the kiosk's
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, "246810")
    a = auth(offline, journal, store, clock)
    a.use_policy(parse_catalog(online.catalog()).staff_lockout)
    for _ in range(2):
        with pytest.raises(StaffRejected):
            a.authenticate(code, "1111")
    with pytest.raises(StaffLocked) as locked:
        a.authenticate(code, "1111")
    assert locked.value.seconds_left == 300


def test_online_and_offline_wrong_pins_add_up(online, offline, journal, store, clock):
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, "246810")
    for client in (online, online, online, offline):
        with pytest.raises(StaffRejected):
            auth(client, journal, store, clock).authenticate(code, "1111")
    with pytest.raises(StaffLocked):
        auth(offline, journal, store, clock).authenticate(code, "1111")


def test_the_lockout_survives_reopening_the_journal(online, offline, store, clock, tmp_path):
    code = badge(store)
    folder = tmp_path / "journal"
    with Journal.open(folder) as j:
        auth(online, j, store, clock).authenticate(code, "246810")
        for _ in range(5):
            with pytest.raises((StaffRejected, StaffLocked)):
                auth(offline, j, store, clock).authenticate(code, "1111")
    clock.advance(seconds=60)
    with Journal.open(folder) as j:  # a restart
        with pytest.raises(StaffLocked) as info:
            auth(offline, j, store, clock).authenticate(code, "246810")
        assert info.value.seconds_left == 240
        with pytest.raises(StaffLocked):  # and online: the kiosk's own lock is kept
            auth(online, j, store, clock).authenticate(code, "246810")


def test_an_offline_attempt_is_counted_before_the_pin_is_checked(
    online, offline, journal, store, clock, monkeypatch
):
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, "246810")

    def power_cut(*args):
        raise SystemExit("power cut during the PIN check")

    monkeypatch.setattr(staff_auth, "pin_matches", power_cut)
    with pytest.raises(SystemExit):
        auth(offline, journal, store, clock).authenticate(code, "246810")
    assert FailureRecord.from_record(journal.get(FAILURE_TABLE, "S0001")).count == 1


def test_a_damaged_cached_pin_counts_as_no_cache(online, offline, journal, store, clock):
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, "246810")
    journal.put(PIN_TABLE, "S0001", {**journal.get(PIN_TABLE, "S0001"), "n": 2**30})
    with pytest.raises(StaffAuthUnavailable) as info:
        auth(offline, journal, store, clock).authenticate(code, "246810")
    assert info.value.reason == "offline_no_cache"


def test_cached_record_is_the_domain_record(online, journal, store, clock):
    auth(online, journal, store, clock).authenticate(badge(store), "246810")
    cached = CachedPin.from_record("S0001", journal.get(PIN_TABLE, "S0001"))
    assert cached.pin_hash.params == CHEAP and cached.name == MANAGER


# ---- safe mode ----------------------------------------------------------------------------------


def test_a_journal_in_safe_mode_refuses_cleanly_before_any_check(
    online, store, clock, tmp_path: Path
):
    folder = tmp_path / "journal"
    folder.mkdir()
    (folder / SAFE_MODE_NAME).write_text("journal corrupt: test\n", encoding="utf-8")
    with Journal.open(folder) as j:
        assert j.safe_mode
        with pytest.raises(StaffAuthUnavailable) as info:
            auth(online, j, store, clock).authenticate(badge(store), "1111")
    err = info.value
    assert err.reason == "journal_safe_mode" and "technician" in render(err).en
    assert "journal corrupt: test" in err.detail
    assert server_failures(store) == 0  # not even the server was asked
