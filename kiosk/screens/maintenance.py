"""Maintenance: the kiosk cannot serve members until staff fix a device (printer, locker,
camera, journal in safe mode, not enrolled). Shows what to do in both languages (the session's
``state.maintenance``) and asks the maintenance monitor (kiosk/services/maintenance_monitor.py,
its own worker thread) to check again every ``RECHECK_S`` seconds; the monitor's answer goes to
the session, which returns to the attract screen once nothing is wrong."""

from __future__ import annotations

from kivy.clock import Clock

from kiosk.domain.receipts import Bilingual
from kiosk.screens.base import KioskScreen, load_kv
from kiosk.services.maintenance_monitor import MaintenanceMonitor
from kiosk.services.ui_state import UiState

load_kv(__file__)

RECHECK_S = 15


class MaintenanceScreen(KioskScreen):
    recheck_s = RECHECK_S

    def __init__(self, *, monitor: MaintenanceMonitor, **kwargs) -> None:
        self.monitor = monitor
        super().__init__(**kwargs)
        self._ticker = None
        self._left = float(self.recheck_s)
        self._asked = False  # a recheck was asked and its answer has not come yet

    def on_enter(self, *args) -> None:
        self._left, self._asked = float(self.recheck_s), False
        if self._ticker is None:
            self._ticker = Clock.schedule_interval(lambda _dt: self._tick(1.0), 1.0)

    def on_leave(self, *args) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def refresh(self, state: UiState) -> None:
        reason = state.maintenance
        if reason is None:
            reason = Bilingual(self.tr.text("maintenance.unknown", "zh"),
                               self.tr.text("maintenance.unknown", "en"))  # fmt: skip
        self.ids.message.text = f"{reason.zh}\n\n{reason.en}"  # members read either: both shown
        if self._asked:
            self.ids.recheck.text = self.t("maintenance.checking")
        else:
            self.ids.recheck.text = self.t("maintenance.recheck",
                                           countdown=self.tr.countdown(self._left))  # fmt: skip

    def _tick(self, dt: float) -> None:
        if self._asked and not self.monitor.checking:  # answered: the session has it
            self._asked = False
        elif not self._asked:
            self._left -= dt
            if self._left <= 0:
                self.check_now()
        self.refresh(self.state or UiState())

    def check_now(self) -> None:
        """Ask the monitor to check the devices again (its thread; the answer reaches the
        session, which leaves this screen once nothing is wrong)."""
        self._asked, self._left = True, float(self.recheck_s)  # the next one counts from here
        self.monitor.check_now()
        self.refresh(self.state or UiState())
