"""What the staff screen shows and what a tap does, without Kivy: badge -> PIN -> restock -> exit.

Built like ``MemberSession``: the screen renders ``StaffState`` snapshots and forwards taps.
Blocking work (the PIN check against the store server, a door pulse, waiting for a door to
shut, printing the slip) runs through ``run`` (a worker thread); every change reaches the UI
through ``post``. Messages are ``Bilingual`` (kiosk/services/staff_views.py builds them and the
grid), so a snapshot is language-free. The PIN never enters a snapshot, only its length. A tap
that arrives while work runs (``busy``) is ignored.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from kiosk.domain.receipts import Bilingual
from kiosk.domain.staff import StaffAuthError, StaffLocked, StaffRejected
from kiosk.errors import KioskError
from kiosk.i18n import Translator, render
from kiosk.services.receipt_queue import ReceiptQueue
from kiosk.services.restock import RestockError, RestockSession, RestockSummary
from kiosk.services.restock_service import RestockService
from kiosk.services.staff_auth import StaffSession
from kiosk.services.staff_state import CompartmentView, DoorPhase, StaffState, StaffStep
from kiosk.services.staff_views import (
    alert_message,
    both_languages,
    compartment_grid,
    locked_message,
    refusal_message,
    reprint_message,
    summary_message,
    welcome_message,
)
from kiosk.services.sync_alerts import SyncAlertDesk

__all__ = ["CompartmentView", "DoorPhase", "StaffFlow", "StaffState", "StaffStep"]

log = logging.getLogger(__name__)

MIN_PIN, MAX_PIN = 4, 12
_SESSION_GONE = ("expired", "ended")  # RestockError codes after which the session is over


def _thread(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="kiosk-staff-work", daemon=True).start()


class StaffFlow:
    """The staff flow for one kiosk; ``begin(badge)`` when a staff badge is routed here."""

    def __init__(
        self, *, authenticate: Callable[[str, str], StaffSession] | None,
        restock: RestockService, receipts: ReceiptQueue, flagged: Callable[[], Mapping[int, Any]],
        compartments: Sequence[int], texts: Translator, post: Callable[[Callable[[], None]], None],
        run: Callable[[Callable[[], None]], None] = _thread,
        on_exit: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.monotonic,
        idle_s: float = 60.0, door_poll_s: float = 0.25, alerts: SyncAlertDesk | None = None,
    ) -> None:  # fmt: skip
        self.authenticate, self.restock, self.receipts = authenticate, restock, receipts
        self.desk = alerts
        self.flagged, self.numbers, self.texts = flagged, tuple(compartments), texts
        self.post, self.run, self.on_exit, self.clock = post, run, on_exit, clock
        self.idle_s, self.door_poll_s = idle_s, door_poll_s
        self.state = StaffState()
        self._listeners: list[Callable[[StaffState], None]] = []
        self._lock = threading.Lock()
        self._gen = 0  # bumped on begin/leave: a late worker result of an old flow is dropped
        self._badge: str | None = None
        self._pin = ""
        self._session: RestockSession | None = None
        self._staff_id: str | None = None  # who signed in (alerts they handle are logged so)
        self._counted: set[int] = set()
        self._locked_until: float | None = None
        self._last_touch = clock()

    # ---- plumbing ----------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[StaffState], None]) -> None:
        self._listeners.append(listener)

    def _set(self, gen: int | None = None, /, fresh: bool = False, **changes: Any) -> None:
        """Apply ``changes`` (to a blank state if ``fresh``) unless they come from a worker of an
        older flow (``gen``)."""
        with self._lock:
            if gen is not None and gen != self._gen:
                return
            base = StaffState(seq=self.state.seq) if fresh else self.state
            if "message" in changes and "alert_shown" not in changes:
                changes["alert_shown"] = None  # another message: "mark handled" is for none
            self.state = snapshot = replace(base, seq=base.seq + 1, **changes)
        self.post(lambda: [listener(snapshot) for listener in list(self._listeners)])

    def say(self, key: str, **fields: object) -> Bilingual:
        return both_languages(self.texts, key, **fields)

    def _touch(self) -> None:
        self._last_touch = self.clock()

    def _ready(self, step: StaffStep) -> bool:
        return self.state.step is step and not self.state.busy

    # ---- the PIN -------------------------------------------------------------------------------
    def begin(self, badge: str) -> None:
        """A staff badge was scanned: ask for the PIN (again for the same badge: nothing)."""
        if badge == self._badge and self.state.step is not StaffStep.IDLE:
            return
        with self._lock:
            self._gen += 1
        self._badge, self._pin, self._session, self._locked_until = badge, "", None, None
        self._staff_id, self._counted = None, set()
        self._touch()
        key = "staff.enter_pin" if self.authenticate is not None else "staff.unavailable"
        self._set(fresh=True, step=StaffStep.PIN, queued=len(self.receipts), message=self.say(key),
                    error=self.authenticate is None)  # fmt: skip

    def key(self, digit: str) -> None:
        if not self._ready(StaffStep.PIN) or self.state.locked_s or len(self._pin) >= MAX_PIN:
            return
        if digit.isdigit() and len(digit) == 1:
            self._touch()
            self._pin += digit
            self._set(pin_length=len(self._pin))

    def clear(self) -> None:
        if self._ready(StaffStep.PIN):
            self._touch()
            self._pin = ""
            self._set(pin_length=0)

    def submit_pin(self) -> None:
        if not self._ready(StaffStep.PIN) or self.state.locked_s or self._badge is None:
            return
        self._touch()
        if self.authenticate is None:
            self._set(message=self.say("staff.unavailable"), error=True)
            return
        if len(self._pin) < MIN_PIN:
            self._set(message=self.say("staff.pin_short", min=MIN_PIN, max=MAX_PIN), error=True)
            return
        badge, pin, self._pin, gen = self._badge, self._pin, "", self._gen
        self._set(busy=True, pin_length=0, message=self.say("staff.checking"), error=False)
        self.run(lambda: self._sign_in(gen, badge, pin))

    def _sign_in(self, gen: int, badge: str, pin: str) -> None:
        try:
            who = self.authenticate(badge, pin)  # type: ignore[misc]
        except StaffLocked as exc:
            locked = locked_message(self.texts, exc.seconds_left)
            if exc.seconds_left is None:  # no countdown: a manager must unlock them
                self._set(gen, busy=False, message=locked, error=True)
                return
            self._locked_until = self.clock() + exc.seconds_left
            self._set(gen, busy=False, locked_s=exc.seconds_left, error=True, message=locked)
            return
        except StaffRejected as exc:
            self._set(gen, busy=False, attempts_left=exc.attempts_left, error=True,
                      message=refusal_message(self.texts, exc))  # fmt: skip
            return
        except KioskError as exc:
            if not isinstance(exc, StaffAuthError):
                log.error("staff sign-in failed: %s", exc)
            self._set(gen, busy=False, message=refusal_message(self.texts, exc), error=True)
            return
        try:
            session = self.restock.start(who)
        except RestockError as exc:
            self._set(gen, busy=False, message=render(exc), error=True)
            return
        if gen != self._gen:  # staff left while the PIN was checked: release the kiosk again
            session.finish()
            return
        self._session, self._staff_id = session, who.staff_id
        self._touch()
        alerts = self.desk.notices() if self.desk is not None else ()
        welcome = welcome_message(self.texts, who.name, who.online, len(alerts))
        self._set(gen, step=StaffStep.RESTOCK, busy=False, staff_name=who.name, online=who.online,
                  attempts_left=None, compartments=self._grid(), error=False, idle_left_s=None,
                  alerts=alerts, alert_shown=None, message=welcome)  # fmt: skip

    # ---- restock -------------------------------------------------------------------------------
    def select(self, number: int) -> None:
        if self._ready(StaffStep.RESTOCK) and number in self.numbers:
            self._touch()
            self._set(selected=number, message=self.say("staff.selected", n=number), error=False)

    def open_selected(self) -> None:
        n, rs = self.state.selected, self._session
        if not self._ready(StaffStep.RESTOCK) or n is None or rs is None:
            return
        self._touch()
        self._set(busy=True, message=self.say("staff.opening", n=n), error=False)
        gen = self._gen
        self.run(lambda: self._open(gen, rs, n))

    def _open(self, gen: int, rs: RestockSession, n: int) -> None:
        try:
            rs.open_compartment(n)
        except KioskError as exc:
            self._refused(gen, exc)
            return
        self._set(gen, busy=False, opened=n, door=DoorPhase.OPEN, compartments=self._grid(),
                  message=self.say("staff.door_open", n=n), error=False)  # fmt: skip
        # stay on this worker until the door is shut (or this flow moved on)
        while gen == self._gen and self._session is rs:
            if rs.wait_closed(timeout_s=self.door_poll_s):
                if self.state.opened == n and self.state.door is DoorPhase.OPEN:
                    self._touch()
                    self._set(gen, door=DoorPhase.CLOSED, error=False,
                              message=self.say("staff.door_closed", n=n))  # fmt: skip
                return

    def enter_count(self, text: str) -> None:
        """The count typed for the selected compartment (accepted once its door is shut)."""
        n, rs = self.state.selected, self._session
        if not self._ready(StaffStep.RESTOCK) or rs is None:
            return
        self._touch()
        if n is None:
            self._set(message=self.say("staff.pick_first"), error=True)
            return
        try:
            count = int(text.strip())
        except ValueError:
            self._set(message=self.say("staff.bad_count"), error=True)
            return
        sku = next((c.sku for c in self.state.compartments if c.number == n), None)
        if sku is None and count:
            self._set(message=self.say("staff.no_item", n=n), error=True)
            return
        gen = self._gen
        self._set(busy=True, error=False, message=self.say("common.please_wait"))
        self.run(lambda: self._count(gen, rs, n, sku, count))

    def _count(self, gen: int, rs: RestockSession, n: int, sku: str | None, count: int) -> None:
        try:
            accepted = rs.enter_count(n, sku, count)
        except KioskError as exc:
            self._refused(gen, exc)
            return
        self._counted.add(n)
        key = "staff.counted_cleared" if accepted.flag_cleared else "staff.counted"
        self._set(gen, busy=False, compartments=self._grid(), error=False,
                  message=self.say(key, n=n, before=accepted.before, after=accepted.after))  # fmt: skip

    def finish(self) -> None:
        """End the restock: the slip prints (or waits for paper); the summary is shown."""
        self._finish(leave=False)

    def exit(self) -> None:
        """Leave: a running restock is finished first (refused while a door is open)."""
        if self.state.busy:
            return
        if self.state.step is StaffStep.RESTOCK and self._session is not None:
            self._finish(leave=True)
        else:
            self._leave()

    def _finish(self, *, leave: bool) -> None:
        rs = self._session
        if not self._ready(StaffStep.RESTOCK) or rs is None:
            return
        gen = self._gen
        self._set(busy=True, message=self.say("staff.finishing"), error=False)
        self.run(lambda: self._finished(gen, rs, leave))

    def _finished(self, gen: int, rs: RestockSession, leave: bool) -> None:
        try:
            summary = rs.finish()
        except KioskError as exc:
            self._refused(gen, exc)
            return
        self._done(gen, summary)
        if leave:
            self.post(lambda: self._leave(gen))

    def _done(self, gen: int, summary: RestockSummary) -> None:
        self._session = None
        self._touch()
        self._set(gen, step=StaffStep.DONE, busy=False, summary=summary, door=None, opened=None,
                  idle_left_s=None, compartments=self._grid(), queued=len(self.receipts),
                  error=bool(summary.alerts or summary.slip_queued),
                  message=summary_message(self.texts, summary))  # fmt: skip

    def reprint(self) -> None:
        """Staff loaded paper: print every queued receipt."""
        if self.state.busy or self.state.step not in (StaffStep.RESTOCK, StaffStep.DONE):
            return
        self._touch()
        gen, rs = self._gen, self._session
        self._set(busy=True, message=self.say("staff.reprinting"), error=False)
        self.run(lambda: self._reprint(gen, rs))

    def _reprint(self, gen: int, rs: RestockSession | None) -> None:
        try:
            result = rs.reprint_receipts() if rs is not None else self.receipts.reprint_all()
        except KioskError as exc:
            self._refused(gen, exc)
            return
        self._set(gen, busy=False, queued=result.left, message=reprint_message(self.texts, result),
                  error=bool(result.left))  # fmt: skip

    # ---- sync alerts ---------------------------------------------------------------------------
    def alerts_tap(self) -> None:
        """The alerts button: show the oldest alert, or mark the one shown as handled."""
        if self.state.busy or self.state.step not in (StaffStep.RESTOCK, StaffStep.DONE):
            return
        if self.desk is None or not self.state.alerts:
            return
        self._touch()
        shown = self.state.alert_shown
        if shown is None:
            self._show_alert(self._gen, self.state.alerts)
            return
        gen, staff_id = self._gen, self._staff_id
        self._set(busy=True, message=self.say("common.please_wait"), error=False)
        self.run(lambda: self._handled(gen, shown, staff_id))

    def _handled(self, gen: int, alert_id: str, staff_id: str | None) -> None:
        try:
            self.desk.acknowledge(alert_id, staff_id)  # type: ignore[union-attr]
        except KioskError as exc:
            self._refused(gen, exc)
            return
        alerts = self.desk.notices()  # type: ignore[union-attr]
        if alerts:
            self._show_alert(gen, alerts, busy=False)
        else:
            self._set(gen, busy=False, alerts=(), alert_shown=None, error=False,
                      message=self.say("staff.alerts_none"))  # fmt: skip

    def _show_alert(self, gen: int, alerts: tuple, **changes: Any) -> None:
        self._set(gen, alerts=alerts, alert_shown=alerts[0].alert_id, error=True,
                  message=alert_message(self.texts, alerts), **changes)  # fmt: skip

    def _refused(self, gen: int, exc: KioskError) -> None:
        text = refusal_message(self.texts, exc)
        if not isinstance(exc, RestockError):
            log.error("staff step failed: %s", exc)
        elif exc.code in _SESSION_GONE and (rs := self._session) and rs.summary is not None:
            self._done(gen, rs.summary)
            self._set(gen, message=text, error=True)
            return
        self._set(gen, busy=False, message=text, error=True, compartments=self._grid())

    def _grid(self) -> tuple[CompartmentView, ...]:
        return compartment_grid(self.numbers, self.restock.stock(), self.flagged(),
                                self.restock.items or {}, self._counted)  # fmt: skip

    # ---- leaving and time ------------------------------------------------------------------------
    def _leave(self, gen: int | None = None) -> None:
        with self._lock:
            if gen is not None and gen != self._gen:
                return
            self._gen += 1
        self._badge, self._pin, self._session, self._locked_until = None, "", None, None
        self._staff_id = None
        self._set(fresh=True)
        self.on_exit()

    def tick(self) -> None:
        """Once a second from the UI: the lockout countdown, idle timeouts."""
        step, now = self.state.step, self.clock()
        if step is StaffStep.IDLE:
            return
        if self._locked_until is not None:
            left = math.ceil(self._locked_until - now)
            if left <= 0:
                self._locked_until = None
                self._set(locked_s=None, message=self.say("staff.enter_pin"), error=False)
            elif left != self.state.locked_s:
                self._set(locked_s=left, message=locked_message(self.texts, left))
        if self.state.busy:
            return
        rs = self._session
        if step is StaffStep.RESTOCK and rs is not None:
            summary = rs.tick()  # never blocks; ends an idle restock whose door is shut
            if summary is not None:
                self._done(self._gen, summary)
            elif self.state.door is DoorPhase.OPEN:
                self._show_idle(None)  # a restock never times out with a door open
            else:  # the restock's own timer, as near as the flow sees it
                self._show_idle(self.restock.idle_timeout_s - (now - self._last_touch))
        elif step in (StaffStep.PIN, StaffStep.DONE):
            left = self.idle_s - (now - self._last_touch)
            if left <= 0:
                self._leave()
            else:
                self._show_idle(left)

    def _show_idle(self, left: float | None) -> None:
        shown = self.state.idle_left_s
        if (left is None) != (shown is None) or (
            left is not None and math.ceil(left) != math.ceil(shown or 0)
        ):
            self._set(idle_left_s=left)
