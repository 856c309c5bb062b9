"""Maintenance: the kiosk cannot serve members until staff fix a device (printer, locker,
camera, journal in safe mode, not enrolled). Shows what to do in both languages and checks
again by itself every ``RECHECK_S`` seconds (``maintenance_reason`` on a worker thread); once
nothing is wrong it returns to the attract screen."""

from __future__ import annotations

import logging
import threading

from kivy.clock import Clock

from kiosk.domain.receipts import Bilingual
from kiosk.screens.base import KioskScreen, load_kv
from kiosk.services.diagnostics import maintenance_reason
from kiosk.services.ui_state import UiState

log = logging.getLogger(__name__)

load_kv(__file__)

RECHECK_S = 15


class MaintenanceScreen(KioskScreen):
    recheck_s = RECHECK_S

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._ticker = None
        self._left = float(self.recheck_s)
        self._checking = False
        self._reason: Bilingual | None = None  # the last recheck's finding, over the state's

    def on_enter(self, *args) -> None:
        self._left, self._reason = float(self.recheck_s), None
        if self._ticker is None:
            self._ticker = Clock.schedule_interval(lambda _dt: self._tick(1.0), 1.0)

    def on_leave(self, *args) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def refresh(self, state: UiState) -> None:
        reason = self._reason or state.maintenance
        if reason is None:
            reason = Bilingual(self.tr.text("maintenance.unknown", "zh"),
                               self.tr.text("maintenance.unknown", "en"))  # fmt: skip
        self.ids.message.text = f"{reason.zh}\n\n{reason.en}"  # members read either: both shown
        if self._checking:
            self.ids.recheck.text = self.t("maintenance.checking")
        else:
            self.ids.recheck.text = self.t("maintenance.recheck",
                                           countdown=self.tr.countdown(self._left))  # fmt: skip

    def _tick(self, dt: float) -> None:
        if not self._checking:
            self._left -= dt
            if self._left <= 0:
                self.check_now()
        self.refresh(self.state or UiState())

    def check_now(self) -> None:
        """Ask the devices again (worker thread); the answer comes back on the UI thread."""
        if self._checking:
            return
        self._checking = True

        def work() -> None:
            try:
                reason = maintenance_reason(self.core)
            except Exception:  # a check that crashes must not leave the screen stuck
                log.exception("maintenance recheck failed")
                reason = self._reason or (self.state.maintenance if self.state else None)
            Clock.schedule_once(lambda _dt: self._checked(reason), 0)

        threading.Thread(target=work, name="kiosk-maintenance-check", daemon=True).start()

    def _checked(self, reason: Bilingual | None) -> None:
        self._checking, self._left = False, float(self.recheck_s)
        if reason is None:
            log.info("maintenance over: every device the kiosk needs answers again")
            leave = getattr(self.session, "set_maintenance", None)  # proposed session API
            if leave is not None:
                leave(None)
            else:
                self.session.logout()
            return
        self._reason = reason
        self.refresh(self.state or UiState())
