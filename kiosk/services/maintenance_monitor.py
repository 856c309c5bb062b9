"""The one maintenance monitor: asks, on its own worker thread, whether a device the kiosk
needs is down, every ``every_s`` seconds and whenever asked (``check_now``: the maintenance
screen's recheck, the demo's printer cover key). The answer (``kiosk.services.health
.maintenance_reason``: a ``Bilingual`` reason, or None when all is well) goes to ``on_result``
from that thread; the composition root (kiosk/wiring.py) posts it to the member session, which
switches to the maintenance screen once no member is served and back when all is well.

The check blocks (the printer's status query), so it never runs on the UI thread, and one
thread does all of it: a recheck asked while a check runs follows it, never beside it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kiosk.domain.receipts import Bilingual

log = logging.getLogger(__name__)


class MaintenanceMonitor:
    """``start()`` checks at once, then every ``every_s`` (None: only on ``check_now``)."""

    def __init__(
        self,
        check: Callable[[], Bilingual | None],
        on_result: Callable[[Bilingual | None], None],
        every_s: float | None = 30.0,
    ) -> None:
        self._check, self._on_result, self.every_s = check, on_result, every_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._busy = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: Bilingual | None = None

    @property
    def checking(self) -> bool:
        """A check is asked for or runs (the maintenance screen says "checking")."""
        return self._busy.is_set() or self._wake.is_set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._wake.set()  # the first check at once
        self._thread = threading.Thread(target=self._run, name="kiosk-maintenance", daemon=True)
        self._thread.start()

    def check_now(self) -> None:
        """Check again as soon as the worker is free (returns at once)."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.every_s)
            if self._stopping.is_set():
                return
            self._busy.set()
            self._wake.clear()
            try:
                self._once()
            finally:
                self._busy.clear()

    def _once(self) -> None:
        try:
            reason = self._check()
        except Exception:  # a check must never take the kiosk down
            log.exception("maintenance check failed")
            return
        if reason is not None and reason != self._last:
            log.warning("out of service: %s", reason.en.replace("\n", "; "))
        elif reason is None and self._last is not None:
            log.info("maintenance over: every device the kiosk needs answers again")
        self._last = reason
        try:
            self._on_result(reason)
        except Exception:
            log.exception("maintenance result not delivered")
