"""The escalating wrong-PIN rule, at each of its boundaries, with a fixed clock."""

from __future__ import annotations

import datetime as dt

from storeserver.staff_lockout import DAILY_CAP, Lockout, after_right, after_wrong

T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
DAY = T0.date()
NEXT_DAY = DAY + dt.timedelta(days=1)


def wrong(rec: Lockout, times: int, at: dt.datetime = T0, day: dt.date = DAY) -> Lockout:
    for _ in range(times):
        rec = after_wrong(rec, at, day)
    return rec


def test_the_fifth_wrong_pin_locks_for_exactly_five_minutes():
    four = wrong(Lockout(), 4)
    assert not four.is_locked(T0) and four.wrong_left() == 1
    five = wrong(four, 1)
    assert five.is_locked(T0) and five.seconds_left(T0) == 300
    assert five.is_locked(T0 + dt.timedelta(seconds=299))
    assert not five.is_locked(T0 + dt.timedelta(seconds=300))
    assert (five.in_a_row, five.level, five.last_lock_day) == (0, 1, DAY)


def test_the_second_lock_lasts_an_hour_and_the_third_until_unlocked():
    first = wrong(Lockout(), 5)
    later = T0 + dt.timedelta(minutes=5)
    second = wrong(first, 5, later)
    assert second.seconds_left(later) == 3600
    assert not second.is_locked(later + dt.timedelta(hours=1))
    third = wrong(second, 5, later + dt.timedelta(hours=1))
    assert third.until_reset and third.seconds_left(T0) is None
    assert third.is_locked(T0 + dt.timedelta(days=365))


def test_waiting_lowers_nothing():
    """No quiet gap restarts the run of 5, and no day boundary lowers the level."""
    rec = wrong(Lockout(), 4)
    rec = wrong(rec, 1, T0 + dt.timedelta(days=3), NEXT_DAY)
    assert rec.level == 1 and rec.is_locked(T0 + dt.timedelta(days=3))
    rec = wrong(rec, 5, T0 + dt.timedelta(days=9), NEXT_DAY + dt.timedelta(days=6))
    assert rec.level == 2 and rec.seconds_left(T0 + dt.timedelta(days=9)) == 3600


def test_a_right_pin_resets_the_run_but_the_level_only_on_a_later_day():
    locked_once = wrong(Lockout(), 5)
    same_day = after_right(locked_once, DAY)
    assert (same_day.in_a_row, same_day.level) == (0, 1)
    assert wrong(same_day, 5).seconds_left(T0) == 3600  # the second lock: an hour
    next_day = after_right(locked_once, NEXT_DAY)
    assert (next_day.in_a_row, next_day.level) == (0, 0)
    assert wrong(next_day, 5, day=NEXT_DAY).seconds_left(T0) == 300
    typo = after_right(wrong(Lockout(), 4), DAY)  # never locked: nothing to keep
    assert (typo.in_a_row, typo.level) == (0, 0)


def test_the_daily_cap_locks_until_unlocked_at_the_twentieth_wrong_pin_of_a_day():
    rec = Lockout()
    for _ in range(4):  # typos, each run ended by the right PIN: never 5 in a row
        rec = after_right(wrong(rec, 4), DAY)
    rec = wrong(rec, DAILY_CAP - 17)
    assert (rec.day_count, rec.wrong_left(), rec.is_locked(T0)) == (19, 1, False)
    assert wrong(rec, 1).until_reset


def test_the_daily_count_starts_again_on_a_new_store_day():
    rec = Lockout()
    for _ in range(4):
        rec = after_right(wrong(rec, 4), DAY)
    rec = after_right(wrong(rec, 3), DAY)  # 19 today
    tomorrow = wrong(rec, 1, day=NEXT_DAY)
    assert (tomorrow.day, tomorrow.day_count, tomorrow.is_locked(T0)) == (NEXT_DAY, 1, False)


def test_someone_without_the_pin_gets_fifteen_guesses_in_all():
    rec, now, guesses = Lockout(), T0, 0
    while not rec.until_reset:
        if rec.is_locked(now):
            now = rec.locked_until  # wait out every timed lock
            continue
        rec, guesses = after_wrong(rec, now, (now + dt.timedelta(hours=8)).date()), guesses + 1
    assert guesses == 15
