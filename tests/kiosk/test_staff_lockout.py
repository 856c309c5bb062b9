"""kiosk.domain.staff_lockout: the escalating wrong-PIN rule offline, at each boundary (pure)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kiosk.domain.staff_lockout import (
    FailureRecord,
    LockoutPolicy,
    attempts_left,
    is_locked,
    mirror_server_lock,
    register_failure,
    register_success,
    seconds_locked,
)

NOW = 1_795_430_568.0
DAY = dt.date(2026, 11, 23)
NEXT_DAY = DAY + dt.timedelta(days=1)
POLICY = LockoutPolicy()


def fail(times: int, record: FailureRecord | None = None, at: float = NOW, day=DAY):
    record = record or FailureRecord()
    for i in range(times):
        record = register_failure(record, at + i, day, POLICY)
    return record


def test_five_in_a_row_lock_for_five_minutes_then_release():
    four = fail(4)
    assert seconds_locked(four, NOW + 4) == 0 and attempts_left(four, NOW + 4, DAY, POLICY) == 1
    five = register_failure(four, NOW + 4, DAY, POLICY)
    assert seconds_locked(five, NOW + 4) == 300 and attempts_left(five, NOW + 4, DAY, POLICY) == 0
    assert seconds_locked(five, NOW + 303.5) == 1  # rounded up: never "0 s left" while locked
    assert seconds_locked(five, NOW + 304) == 0
    assert (five.count, five.level) == (0, 1)  # the next run of five starts


def test_the_second_lock_is_an_hour_and_the_third_lasts_until_online():
    first = fail(5)
    second = fail(5, first, NOW + 400)
    assert seconds_locked(second, NOW + 404) == 3600
    assert not is_locked(second, NOW + 404 + 3600)
    third = fail(5, second, NOW + 5000)
    assert third.until_online and is_locked(third, NOW + 365 * 86400)
    assert attempts_left(third, NOW + 365 * 86400, NEXT_DAY, POLICY) == 0


def test_waiting_neither_restarts_the_run_nor_lowers_the_level():
    record = fail(4)
    later = NOW + 30 * 86400
    record = register_failure(record, later, NEXT_DAY, POLICY)
    assert seconds_locked(record, later) == 300
    record = fail(5, record, later + 7 * 86400, NEXT_DAY + dt.timedelta(days=7))
    assert seconds_locked(record, later + 7 * 86400 + 4) == 3600


def test_a_right_pin_ends_the_run_and_the_level_only_on_a_later_store_day():
    locked_once = fail(5)
    same_day = register_success(locked_once, DAY)
    assert (same_day.count, same_day.level) == (0, 1)
    assert seconds_locked(fail(5, same_day, NOW + 400), NOW + 404) == 3600
    next_day = register_success(locked_once, NEXT_DAY)
    assert next_day.level == 0
    assert seconds_locked(fail(5, next_day, NOW + 86400, NEXT_DAY), NOW + 86404) == 300


def test_twenty_wrong_pins_in_a_store_day_lock_until_online():
    record = FailureRecord()
    for _ in range(4):  # typos, each run ended by the right PIN
        record = register_success(fail(4, record), DAY)
    record = fail(3, record)
    assert record.day_count == 19 and attempts_left(record, NOW + 9, DAY, POLICY) == 1
    # a new store day restarts the day's count, not the run of 3 in a row
    assert attempts_left(record, NOW + 9, NEXT_DAY, POLICY) == 2
    assert register_failure(record, NOW + 9, DAY, POLICY).until_online
    assert not register_failure(record, NOW + 9, NEXT_DAY, POLICY).until_online


def test_a_right_pin_online_ends_a_lock_until_online():
    locked = fail(15)
    assert locked.until_online and not register_success(locked, DAY).until_online


def test_a_server_lock_is_mirrored_never_shortened_and_none_means_until_online():
    mirrored = mirror_server_lock(fail(2), NOW, 200)
    assert (mirrored.count, mirrored.locked_until) == (0, NOW + 200)
    longer = FailureRecord(locked_until=NOW + 280)
    assert mirror_server_lock(longer, NOW, 200) == longer
    assert mirror_server_lock(FailureRecord(), NOW, None).until_online


@given(st.lists(st.floats(min_value=0, max_value=100_000), min_size=1, max_size=60))
def test_without_the_pin_never_more_than_fifteen_guesses(gaps):
    """Whatever the timing, someone who never types the right PIN gets 15 guesses at most."""
    record, now, guesses = FailureRecord(), NOW, 0
    for gap in gaps:
        now += gap
        if is_locked(record, now):
            continue  # refused before any PIN check
        day = dt.date.fromtimestamp(now)
        record = register_failure(record, now, day, POLICY)
        guesses += 1
    assert guesses <= 15


def test_a_failure_record_round_trips_reads_an_old_one_and_refuses_garbage():
    record = register_success(fail(7), DAY)
    assert FailureRecord.from_record(record.to_record()) == record
    old = {"count": 2, "last_failed_at": NOW, "locked_until": None}  # before the escalation
    assert FailureRecord.from_record(old) == FailureRecord(2, NOW, None)
    for junk in (
        {"count": -1},
        {"count": "2"},
        {"count": 1, "locked_until": "soon"},
        {"count": 1, "day": 20261123},
        {"count": 1, "until_online": 1},
        {},
    ):
        with pytest.raises(ValueError):
            FailureRecord.from_record(junk)


# ---- the same rule as the store server's (storeserver/staff_lockout.py) ----------------------
# The kiosk must not import the server, so the rule is written twice; this keeps them in step:
# any sequence of wrong and right PINs, apart by any time, locks on the kiosk exactly when it
# locks on the server (the server's last step waits for a manager, the kiosk's for an online
# sign-in: both are "locked until someone else lets them in").
STEPS = st.lists(
    st.tuples(st.booleans(), st.sampled_from([0, 1, 299, 301, 3599, 3601, 86_400])),
    max_size=60,
)


@given(STEPS)
@example(([(False, 0)] * 4 + [(True, 0)]) * 5)  # the daily cap: 20 wrong, never 5 in a row
@example([(False, 0)] * 5 + [(False, 301)] * 5 + [(False, 3601)] * 6)  # each escalation step
def test_the_kiosk_locks_exactly_when_the_server_does(steps) -> None:
    from kiosk.domain.catalog import parse_catalog
    from storeserver import staff_lockout as server_rule

    # the rule as the server's catalog hands it to kiosks (the kiosk's own default is the same)
    catalog = {"version": "v", "items": [], "staff_lockout": server_rule.policy_for_kiosks()}
    policy = parse_catalog(catalog).staff_lockout
    assert policy == LockoutPolicy()
    start = dt.datetime(2026, 12, 5, 1, 0, tzinfo=dt.UTC)
    kiosk, server = FailureRecord(), server_rule.Lockout()
    elapsed = 0
    for right, wait_s in steps:
        elapsed += wait_s
        now = start + dt.timedelta(seconds=elapsed)
        today = now.date()
        locked = is_locked(kiosk, now.timestamp())
        assert locked == server.is_locked(now), (steps, kiosk, server)
        if locked:  # refused before the PIN is looked at, on both
            continue
        if right:
            kiosk, server = register_success(kiosk, today), server_rule.after_right(server, today)
        else:
            kiosk = register_failure(kiosk, now.timestamp(), today, policy)
            server = server_rule.after_wrong(server, now, today)
    assert (kiosk.level, kiosk.day_count) == (server.level, server.day_count)
