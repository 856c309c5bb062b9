"""StaffAuthenticator: the escalating lockout offline, the short-lived PIN cache and the store
server's revocation list honoured offline (real server on loopback; fixtures of
test_staff_auth)."""

from __future__ import annotations

import pytest

from kiosk.domain.staff import RevokedStaff, StaffAuthUnavailable, StaffLocked, StaffRejected
from kiosk.i18n import render
from kiosk.services.staff_auth import PIN_TABLE, REVOKED_KEY, REVOKED_TABLE, StaffAuthenticator
from kiosk.storage.outbox import Outbox
from kiosk.sync.worker import SyncWorker
from storeserver import staff, staff_revocation

from . import test_staff_auth as base
from .test_staff_auth import auth, badge

# the fixtures of test_staff_auth: a store server on loopback, a client of it and one of nobody
clock, store, online, offline, journal = (
    base.clock, base.store, base.online, base.offline, base.journal
)  # fmt: skip

RIGHT, WRONG = "246810", "111111"


def wrong_offline(a: StaffAuthenticator, code: str, times: int) -> StaffLocked | None:
    """``times`` wrong PINs; the lock the last one brought, if any."""
    for _ in range(times - 1):
        with pytest.raises(StaffRejected):
            a.authenticate(code, WRONG)
    with pytest.raises((StaffRejected, StaffLocked)) as last:
        a.authenticate(code, WRONG)
    return last.value if isinstance(last.value, StaffLocked) else None


def test_offline_locks_escalate_to_until_an_online_sign_in(online, offline, journal, store, clock):
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, RIGHT)
    a = auth(offline, journal, store, clock)
    assert wrong_offline(a, code, 5).seconds_left == 300
    clock.advance(seconds=300)
    assert not a.authenticate(code, RIGHT).online  # same store day: the level stays
    assert wrong_offline(a, code, 5).seconds_left == 3600
    clock.advance(seconds=3600)
    locked = wrong_offline(a, code, 5)
    assert locked.seconds_left is None and "店长" in render(locked).zh
    clock.advance(hours=5)
    with pytest.raises(StaffLocked):  # waiting and the right PIN do not help offline
        a.authenticate(code, RIGHT)
    # the server never saw those guesses: online it has its own count, and its yes lifts the
    # kiosk's lock
    with pytest.raises(StaffRejected) as typo:
        auth(online, journal, store, clock).authenticate(code, WRONG)
    assert typo.value.attempts_left is None and render(typo.value).en == "Wrong PIN"
    assert auth(online, journal, store, clock).authenticate(code, RIGHT).online
    assert not a.authenticate(code, RIGHT).online


def test_a_server_lock_until_unlocked_is_kept_offline_and_drops_the_cache(
    online, offline, journal, store, clock
):
    code = badge(store)
    a = auth(online, journal, store, clock)
    a.authenticate(code, RIGHT)
    with store.db.transaction() as conn:
        conn.execute("UPDATE staff SET until_reset = 1 WHERE id = 'S0001'")
    with pytest.raises(StaffLocked) as info:
        a.authenticate(code, RIGHT)
    assert info.value.seconds_left is None
    assert journal.get(PIN_TABLE, "S0001") is None
    with pytest.raises(StaffLocked):
        auth(offline, journal, store, clock).authenticate(code, RIGHT)


def test_a_staff_member_disabled_on_the_server_is_refused_offline_after_one_sync_cycle(
    online, offline, journal, store, clock
):
    code = badge(store)
    a = auth(online, journal, store, clock)
    a.authenticate(code, RIGHT)  # a cached PIN: offline sign-in would work
    with store.db.transaction() as conn:
        staff.set_active(conn, "S0001", False)
    worker = SyncWorker(online, Outbox(journal), on_revoked_staff=a.set_revoked)
    worker.run_once()
    assert worker.status().online
    assert journal.get(PIN_TABLE, "S0001") is None  # dropped at once
    assert journal.get(REVOKED_TABLE, REVOKED_KEY)["ids"] == ["S0001"]
    with pytest.raises(StaffRejected) as info:  # the network is cut
        auth(offline, journal, store, clock).authenticate(code, RIGHT)
    assert info.value.reason == "bad_badge" and "停用" in render(info.value).zh


def test_a_cached_pin_from_before_the_list_is_refused_offline(
    online, offline, journal, store, clock
):
    code = badge(store)
    a = auth(online, journal, store, clock)
    a.authenticate(code, RIGHT)
    # the list came while the hash was being written by another sign-in: it still wins
    journal.put(REVOKED_TABLE, REVOKED_KEY, RevokedStaff("v1", frozenset({"S0001"})).to_record())
    with pytest.raises(StaffRejected):
        auth(offline, journal, store, clock).authenticate(code, RIGHT)
    assert journal.get(PIN_TABLE, "S0001") is None


def test_re_enabled_staff_leave_the_list_at_the_next_cycle(online, offline, journal, store, clock):
    code = badge(store)
    a = auth(online, journal, store, clock)
    with store.db.transaction() as conn:
        staff.set_active(conn, "S0001", False)
    ticks = [0.0]
    worker = SyncWorker(
        online, Outbox(journal), on_revoked_staff=a.set_revoked, monotonic=lambda: ticks[0]
    )
    worker.run_once()
    with store.db.transaction() as conn:
        staff.add_staff(conn, store.clock, "S0001", "x", RIGHT, replace=True)
    ticks[0] += worker.settings.heartbeat_s  # the next heartbeat is due
    worker.run_once()
    assert journal.get(REVOKED_TABLE, REVOKED_KEY)["ids"] == []
    a.authenticate(code, RIGHT)
    assert not auth(offline, journal, store, clock).authenticate(code, RIGHT).online


def test_the_cache_lasts_three_days_by_default(online, offline, journal, store, clock):
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, RIGHT)
    clock.advance(days=3)
    assert not auth(offline, journal, store, clock).authenticate(code, RIGHT).online
    clock.advance(seconds=1)
    with pytest.raises(StaffAuthUnavailable) as info:
        auth(offline, journal, store, clock).authenticate(code, RIGHT)
    assert info.value.reason == "offline_cache_stale"


def test_no_cache_days_keeps_no_pin_hash(online, offline, journal, store, clock):
    code = badge(store)
    auth(online, journal, store, clock).authenticate(code, RIGHT)
    auth(online, journal, store, clock, cache_days=0).authenticate(code, RIGHT)
    assert journal.get(PIN_TABLE, "S0001") is None
    with pytest.raises(StaffAuthUnavailable):
        auth(offline, journal, store, clock, cache_days=0).authenticate(code, RIGHT)
    with pytest.raises(ValueError, match="0 to 7"):
        auth(online, journal, store, clock, cache_days=8)


def test_a_revoked_badge_is_refused_offline_and_the_new_one_works(
    online, offline, journal, store, clock
):
    old = badge(store)
    a = auth(online, journal, store, clock)
    a.authenticate(old, RIGHT)
    clock.advance(days=1)
    with store.db.transaction() as conn:  # the card was lost
        staff_revocation.revoke_badges(conn, store.clock, "S0001")
    new = badge(store)
    SyncWorker(online, Outbox(journal), on_revoked_staff=a.set_revoked).run_once()
    with pytest.raises(StaffRejected) as info:  # the network is cut
        auth(offline, journal, store, clock).authenticate(old, RIGHT)
    assert info.value.reason == "bad_badge"
    assert not auth(offline, journal, store, clock).authenticate(new, RIGHT).online
