"""Door alarms: the locker's TAMPER and LEFT_OPEN events reach staff, not only the log.

The locker reports a door opened with no command (TAMPER: forced, or opening after a pulse it
reported jammed) and a door open longer than ``[locker] door_close_timeout_s`` (LEFT_OPEN).
Each becomes, for its compartment:

- a local alarm, shown on the attract screen (``UiState.alarms``, through ``subscribe``) and
  sounded on the optional buzzer (the ``AlarmOutput`` port) while any alarm is active;
- a ``door_alarm`` outbox event, which the store server keeps as a staff alert until handled.

A door staff opened in the running restock session (``restocking(compartment)``) is never an
alarm: filling a compartment may take longer than the limit. The door closing clears the local
alarm and silences the buzzer once no other alarm is active; the server's alert stays.

The buzzer and the screen come first: an outbox that cannot be written (a journal fault) is
logged and must not keep a forced door quiet.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kiosk.errors import KioskError
from kiosk.ports import AlarmOutput, LockerEvent, LockerEventKind

log = logging.getLogger(__name__)

EVENT_KIND = "door_alarm"  # kiosk/storage/outbox.py EVENT_KINDS, storeserver DoorAlarmPayload


class AlarmReason(enum.Enum):
    TAMPER = "tamper"  # opened with no command
    LEFT_OPEN = "left_open"  # open past the locker's door_close_timeout_s


@dataclass(frozen=True)
class DoorAlarm:
    """One active alarm: which door, why, and since when (the door opened then)."""

    compartment: int
    reason: AlarmReason
    since: dt.datetime  # wall clock, timezone-aware


class DoorEvents(Protocol):
    """What the service needs of the Locker port: its event subscription."""

    def watch(self, on_event: Callable[[LockerEvent], None]) -> None: ...


class EventSink(Protocol):
    """What the service needs of the outbox."""

    def add(self, kind: str, payload: Mapping[str, Any], *, at: dt.datetime) -> object: ...


class DoorAlarms:
    """Turns locker events into alarms; thread-safe (events come from the locker's thread).

    ``restocking(n)``: whether staff opened compartment ``n`` in the running restock session.
    ``clock`` is the locker's (monotonic, stamps its events); ``now`` the wall clock (aware).
    """

    def __init__(
        self,
        locker: DoorEvents,
        outbox: EventSink,
        output: AlarmOutput,
        *,
        restocking: Callable[[int], bool] = lambda _n: False,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._locker, self._outbox, self.output = locker, outbox, output
        self._restocking = restocking
        self._clock, self._now = clock, now
        self._lock = threading.Lock()
        self._active: dict[int, DoorAlarm] = {}
        self._listeners: list[Callable[[tuple[DoorAlarm, ...]], None]] = []

    # ---- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the locker's events."""
        self._locker.watch(self.on_event)

    def stop(self) -> None:
        """Silence the buzzer and release it (the locker stops sending events when closed)."""
        try:
            self.output.close()
        except KioskError as exc:
            log.error("door alarms: %s", exc)

    # ---- what others read -------------------------------------------------------------------

    def active(self) -> tuple[DoorAlarm, ...]:
        """The active alarms, by compartment."""
        with self._lock:
            return tuple(self._active[n] for n in sorted(self._active))

    def subscribe(self, listener: Callable[[tuple[DoorAlarm, ...]], None]) -> None:
        """``listener(active())`` after every change, on the locker's event thread."""
        self._listeners.append(listener)

    # ---- events ------------------------------------------------------------------------------

    def on_event(self, event: LockerEvent) -> None:
        """One locker event (the locker's dispatcher thread calls this)."""
        if event.kind is LockerEventKind.CLOSED:
            self._clear(event.compartment)
        elif event.kind in (LockerEventKind.TAMPER, LockerEventKind.LEFT_OPEN):
            self._raise(event)

    def _raise(self, event: LockerEvent) -> None:
        n = event.compartment
        reason = AlarmReason(event.kind.value)
        if self._restocking(n):
            log.info("compartment %d %s during restock: staff opened it, no alarm", n,
                     reason.value)  # fmt: skip
            return
        opened_ago_s = self._clock() - event.at + float(event.detail.get("open_s", 0.0))
        alarm = DoorAlarm(n, reason, self._now() - dt.timedelta(seconds=max(0.0, opened_ago_s)))
        with self._lock:
            if n in self._active:  # a forced door then left open: one alarm per opening
                return
            self._active[n] = alarm
        log.warning("door alarm: compartment %d %s since %s", n, reason.value,
                    alarm.since.isoformat(timespec="seconds"))  # fmt: skip
        self._changed()
        self._report(alarm, event)

    def _clear(self, compartment: int) -> None:
        with self._lock:
            alarm = self._active.pop(compartment, None)
        if alarm is not None:
            log.info("door alarm cleared: compartment %d closed", compartment)
            self._changed()

    def _changed(self) -> None:
        alarms = self.active()
        try:
            self.output.set(bool(alarms))
        except KioskError as exc:
            log.error("door alarms: %s", exc)
        for listener in list(self._listeners):
            try:
                listener(alarms)
            except Exception:  # the screen's trouble must not silence the next alarm
                log.exception("door alarm listener failed")

    def _report(self, alarm: DoorAlarm, event: LockerEvent) -> None:
        payload: dict[str, Any] = {
            "compartment": alarm.compartment,
            "what": alarm.reason.value,
            "since": alarm.since.isoformat(timespec="seconds"),
        }
        if "open_s" in event.detail:
            payload["open_s"] = round(float(event.detail["open_s"]), 1)
        if "reason" in event.detail:
            payload["detail"] = str(event.detail["reason"])[:200]
        try:
            self._outbox.add(EVENT_KIND, payload, at=self._now())
        except KioskError as exc:
            log.error("door alarm for compartment %d not queued for the server: %s",
                      alarm.compartment, exc)  # fmt: skip
