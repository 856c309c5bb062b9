"""``KioskLock``: one job at a time on the kiosk, and who holds it (kiosk/services/kiosk_lock.py).

The engine tells a member "restocking" or waits for recovery by asking the lock who holds it;
these tests pin what it answers.
"""

from __future__ import annotations

import threading

from kiosk.services.kiosk_lock import RECOVERY, RESTOCK, TRANSACTION, KioskLock


def test_one_job_at_a_time_and_the_lock_names_it():
    lock = KioskLock()
    assert lock.holder is None and lock.try_hold(RESTOCK)
    assert lock.holder == RESTOCK
    assert not lock.try_hold(TRANSACTION) and lock.holder == RESTOCK  # a refusal changes nothing
    assert not lock.wait_hold(RECOVERY, 0.01)
    lock.release()
    assert lock.holder is None and lock.try_hold(TRANSACTION) and lock.holder == TRANSACTION
    lock.release()


def test_a_waiting_job_gets_the_lock_once_the_holder_releases_it():
    lock = KioskLock()
    assert lock.try_hold(RECOVERY)
    got: list[bool] = []

    def member() -> None:
        got.append(lock.wait_hold(TRANSACTION, 30))

    waiter = threading.Thread(target=member, daemon=True)
    waiter.start()
    assert lock.holder == RECOVERY  # the waiter never takes it from its holder
    lock.release()
    waiter.join(30)
    assert got == [True] and lock.holder == TRANSACTION
    lock.release()
