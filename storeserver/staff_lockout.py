"""The wrong-PIN rule for staff sign-in, as pure functions over one staff member's record.

- **In a row**: every wrong PIN counts, however far apart (no quiet gap starts a new count);
  only a right PIN sets the count back to 0.
- **Escalation**: the 5th wrong PIN in a row locks the staff member. The first lock lasts
  5 minutes, the second 1 hour, the third and any later one until a manager unlocks them
  (``storeserver unlock-staff`` or ``add-staff --replace``). Each lock starts a new run of 5.
- **The level** (locks earned) is not lowered by waiting, nor by a right PIN on the store day
  of the last lock: only by a right PIN on a later store day, or a manager's unlock. So
  someone who does not know the PIN gets 15 guesses in all, then needs a manager.
- **Daily cap**: the 20th wrong PIN of one store day (right PINs between them or not) locks
  until a manager unlocks.
- While locked, an attempt is refused before the PIN is looked at and is not counted.

The kiosk applies the same rule offline (kiosk/domain/staff_lockout.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

IN_A_ROW = 5
LOCK_STEPS = (dt.timedelta(minutes=5), dt.timedelta(hours=1))  # then: until a manager unlocks
DAILY_CAP = 20


def policy_for_kiosks() -> dict:
    """This rule as the catalog gives it to kiosks, which apply it to the PINs they check
    offline (kiosk/domain/staff_lockout.py): one rule, decided here."""
    return {
        "in_a_row": IN_A_ROW,
        "lock_steps_s": [int(step.total_seconds()) for step in LOCK_STEPS],
        "daily_cap": DAILY_CAP,
    }


@dataclass(frozen=True)
class Lockout:
    """One staff member's wrong-PIN record (columns of the ``staff`` table)."""

    in_a_row: int = 0
    level: int = 0  # locks earned (see the module docstring for when it goes back to 0)
    last_lock_day: dt.date | None = None
    day: dt.date | None = None  # the store day ``day_count`` counts
    day_count: int = 0
    locked_until: dt.datetime | None = None
    until_reset: bool = False  # locked until a manager unlocks

    def is_locked(self, now: dt.datetime) -> bool:
        return self.until_reset or (self.locked_until is not None and self.locked_until > now)

    def seconds_left(self, now: dt.datetime) -> int | None:
        """Whole seconds (rounded up) of a timed lock; None when locked until an unlock."""
        if self.until_reset:
            return None
        left = (self.locked_until - now).total_seconds() if self.locked_until else 0.0
        return max(1, int(left + 0.999))

    def wrong_left(self) -> int:
        """Wrong PINs still allowed before the next lock (of either kind), just after a wrong one."""
        return min(IN_A_ROW - self.in_a_row, DAILY_CAP - self.day_count)


def after_wrong(record: Lockout, now: dt.datetime, today: dt.date) -> Lockout:
    """The record after one more wrong PIN at ``now`` (store day ``today``)."""
    day_count = (record.day_count if record.day == today else 0) + 1
    in_a_row, level = record.in_a_row + 1, record.level
    until, until_reset, last_lock_day = None, record.until_reset, record.last_lock_day
    if in_a_row >= IN_A_ROW:
        in_a_row, level, last_lock_day = 0, level + 1, today
        if level > len(LOCK_STEPS):
            until_reset = True
        else:
            until = now + LOCK_STEPS[level - 1]
    if day_count >= DAILY_CAP:
        until_reset, last_lock_day = True, today
    return Lockout(in_a_row, level, last_lock_day, today, day_count, until, until_reset)


def after_right(record: Lockout, today: dt.date) -> Lockout:
    """The record after a right PIN on store day ``today`` (never while locked)."""
    later_day = record.last_lock_day is None or record.last_lock_day < today
    return replace(record, in_a_row=0, level=0 if later_day else record.level, locked_until=None)
