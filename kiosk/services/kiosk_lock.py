"""One job at a time on the kiosk: a member's transaction, recovery, or a staff restock.

The transaction engine takes it for each flow and for recovery; a restock session holds it
from its start to its end (docs/restock.md: a member must never redeem from a compartment
staff have open). Whoever fails to take it can ask who holds it, to tell the member why.
"""

from __future__ import annotations

import threading

TRANSACTION = "transaction"  # a member's redeem or spin
RECOVERY = "recovery"  # settle(): a short, bounded job worth waiting for
RESTOCK = "restock"  # a staff session: minutes


class KioskLock:
    """A lock that knows which job holds it. Not reentrant: one holder, one release."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: str | None = None

    def try_hold(self, job: str) -> bool:
        """Take the kiosk for ``job`` now, or False if another job holds it."""
        if not self._lock.acquire(blocking=False):
            return False
        self._holder = job
        return True

    def wait_hold(self, job: str, timeout_s: float) -> bool:
        """Take the kiosk for ``job``, waiting up to ``timeout_s``; False if it stayed held."""
        if not self._lock.acquire(timeout=timeout_s):
            return False
        self._holder = job
        return True

    def release(self) -> None:
        """The holder is done (only the holder calls this)."""
        self._holder = None
        self._lock.release()

    @property
    def holder(self) -> str | None:
        """The job holding the kiosk now (None: free); a hint, it may change at once."""
        return self._holder
