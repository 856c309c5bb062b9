"""The kiosk's wrong-PIN rule for staff sign-in: the store server's rule (storeserver/
staff_lockout.py), applied by the kiosk to the PINs it checks itself while offline.

- Every wrong PIN counts, however far apart; a right PIN sets the run back to 0.
- The 5th wrong PIN in a row locks: the first lock 5 minutes, the second 1 hour, the third and
  any later one until the staff member signs in online again (the server has its own count and
  its manager's unlock: ``storeserver unlock-staff``).
- The level (locks earned) goes back to 0 only with a right PIN on a later store day than the
  last lock: waiting lowers nothing, so someone without the PIN gets 15 guesses in all.
- The 20th wrong PIN of one store day locks until the next online sign-in, too.
- While locked an attempt is refused before the PIN is looked at, and not counted.

Pure: times are Unix seconds and store days ``date``s, passed in by the caller.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "FailureRecord",
    "LockoutPolicy",
    "attempts_left",
    "is_locked",
    "mirror_server_lock",
    "register_failure",
    "register_success",
    "seconds_locked",
]


@dataclass(frozen=True)
class LockoutPolicy:
    """``in_a_row`` wrong PINs lock for ``lock_steps_s[level]``, past the last step until an
    online sign-in; ``daily_cap`` wrong PINs in a store day lock until one as well."""

    in_a_row: int = 5
    lock_steps_s: tuple[float, ...] = (300.0, 3600.0)
    daily_cap: int = 20


@dataclass(frozen=True)
class FailureRecord:
    """Wrong PINs of one staff member on this kiosk (journalled, so a restart keeps them)."""

    count: int = 0  # wrong PINs in a row
    last_failed_at: float | None = None
    locked_until: float | None = None
    level: int = 0  # locks earned
    last_lock_day: dt.date | None = None
    day: dt.date | None = None  # the store day day_count counts
    day_count: int = 0
    until_online: bool = False  # locked until the staff member signs in online

    def to_record(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "last_failed_at": self.last_failed_at,
            "locked_until": self.locked_until,
            "level": self.level,
            "last_lock_day": _day_text(self.last_lock_day),
            "day": _day_text(self.day),
            "day_count": self.day_count,
            "until_online": self.until_online,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> FailureRecord:
        """Raises ValueError for a record this module did not write (one written before the
        escalation, with only the first three keys, reads as level 0)."""
        get = record.get
        counts = (get("count"), get("level", 0), get("day_count", 0))
        last, until, online = get("last_failed_at"), get("locked_until"), get("until_online", False)
        if (
            not all(type(c) is int and c >= 0 for c in counts)
            or not _opt_time(last)
            or not _opt_time(until)
            or type(online) is not bool
        ):
            raise ValueError(f"not a staff failure record: {record!r}"[:200])
        last_lock_day, day = _day(get("last_lock_day")), _day(get("day"))
        return cls(counts[0], last, until, counts[1], last_lock_day, day, counts[2], online)


def _day_text(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _day(text: object) -> dt.date | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"not a store day: {text!r}"[:80])
    return dt.date.fromisoformat(text)


def _opt_time(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def seconds_locked(record: FailureRecord, now: float) -> int:
    """Whole seconds (rounded up) until a timed lock ends; 0 when there is none."""
    if record.locked_until is None or record.locked_until <= now:
        return 0
    return math.ceil(record.locked_until - now)


def is_locked(record: FailureRecord, now: float) -> bool:
    return record.until_online or seconds_locked(record, now) > 0


def attempts_left(record: FailureRecord, now: float, today: dt.date, policy: LockoutPolicy) -> int:
    """Wrong PINs still allowed before the next lock of either kind (0 while locked)."""
    if is_locked(record, now):
        return 0
    today_count = record.day_count if record.day == today else 0
    return max(0, min(policy.in_a_row - record.count, policy.daily_cap - today_count))


def register_failure(
    record: FailureRecord, now: float, today: dt.date, policy: LockoutPolicy
) -> FailureRecord:
    """The record after one more wrong PIN at ``now`` on store day ``today``."""
    day_count = (record.day_count if record.day == today else 0) + 1
    count, level, last_lock_day = record.count + 1, record.level, record.last_lock_day
    until, until_online = None, record.until_online
    if count >= policy.in_a_row:
        count, level, last_lock_day = 0, level + 1, today
        if level > len(policy.lock_steps_s):
            until_online = True
        else:
            until = now + policy.lock_steps_s[level - 1]
    if day_count >= policy.daily_cap:
        until_online, last_lock_day = True, today
    return FailureRecord(count, now, until, level, last_lock_day, today, day_count, until_online)


def register_success(record: FailureRecord, today: dt.date) -> FailureRecord:
    """The record after a right PIN on store day ``today``: the run of wrong PINs ends; the
    level ends only on a later store day than the last lock. A PIN is only checked while not
    locked, except online, where the server's yes also ends a lock until online."""
    later_day = record.last_lock_day is None or record.last_lock_day < today
    return replace(
        record,
        count=0,
        level=0 if later_day else record.level,
        locked_until=None,
        until_online=False,
    )


def mirror_server_lock(
    record: FailureRecord, now: float, retry_after_s: float | None
) -> FailureRecord:
    """The record after the server said the staff member is locked for ``retry_after_s``
    (None: until a manager unlocks them, which for this kiosk means until an online sign-in)."""
    if retry_after_s is None:
        return replace(record, count=0, until_online=True)
    until = now + retry_after_s
    if record.locked_until is not None and record.locked_until > until:
        return record  # never shorten a lock this kiosk already holds
    return replace(record, count=0, locked_until=until)
