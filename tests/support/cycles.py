"""Waiting on a running sync worker's cycles in tests (its ``on_cycle`` hook)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from kiosk.sync.records import SyncStatus


class Cycles:
    """`on_cycle` for tests: wait until a status matches, without sleeping."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.seen: list[SyncStatus] = []

    def __call__(self, status: SyncStatus) -> None:
        with self.cond:
            self.seen.append(status)
            self.cond.notify_all()

    def mark(self) -> int:
        """Where we are now: `wait_for(..., since=mark)` looks only at later cycles."""
        with self.cond:
            return len(self.seen)

    def wait_for(
        self, pred: Callable[[SyncStatus], bool], since: int = 0, timeout: float = 15
    ) -> SyncStatus:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(pred(s) for s in self.seen[since:]), timeout)
            assert ok, f"no cycle matched; last: {self.seen[-1] if self.seen else None}"
            return next(s for s in self.seen[since:] if pred(s))
