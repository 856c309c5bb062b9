"""GpioLocker: the Locker port on gpiozero, one relay and one door sensor per compartment.

Wiring and pin release are in ``hardware.py`` (sensor low = door closed). A watcher thread polls
the sensors every ``poll_s`` and debounces in software (a change counts once it has held for
``debounce_s``). gpiozero's ``bounce_time`` is not used: MockPin ignores it, and the simulator
must behave like the Pi. Events reach the ``watch()`` callback through a queue and a dispatcher
thread, so a slow callback never delays door detection.

Power and safety: a lock serialises pulses, so at most one solenoid is energised. A relay is
switched on only while the state lock is held and the locker is open, and switched off in a
``finally``. ``close()``, a GC finalizer and an atexit hook all switch every relay off.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gpiozero.pins import Factory

from drivers.locker.hardware import LIVE, Channel, Hardware, open_channels
from kiosk.config import LockerSection
from kiosk.errors import LockerError
from kiosk.ports import (
    AlreadyOpen,
    DoorJammed,
    DoorState,
    LockerEvent,
    LockerEventKind,
    Opened,
    OpenResult,
)

log = logging.getLogger(__name__)

DEFAULT_POLL_S = 0.02  # door sensors are read 50 times a second
DEFAULT_DEBOUNCE_S = 0.05  # a reed switch settles well within this


@dataclass
class _Command:
    """One pulse in progress: when it started and when the sensor first read open."""

    started: float
    seen_at: float | None = None


@dataclass
class _Door:
    """What the watcher knows about one door; guarded by the hardware lock."""

    channel: Channel
    is_open: bool  # debounced
    since: float  # clock time of the last accepted change (or of start-up)
    pending_since: float | None = None  # the raw reading differs from is_open since then
    busy: bool = False  # an open() call owns this compartment
    command: _Command | None = None
    alarmed: bool = False  # LEFT_OPEN already reported for this opening
    jammed_pulse_at: float | None = None  # last open() said DoorJammed, no opening seen since


class _Dispatcher:
    """Calls the watch() callback from its own thread, in event order."""

    _STOP = object()

    def __init__(self) -> None:
        self.callback: Callable[[LockerEvent], None] | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="locker-events", daemon=True)
        self.thread.start()

    def put(self, event: LockerEvent) -> None:
        self._queue.put(event)

    def stop(self) -> None:
        """Deliver what is queued, then end the thread."""
        self._queue.put(self._STOP)

    def _run(self) -> None:
        while (event := self._queue.get()) is not self._STOP:
            callback = self.callback
            if callback is None:
                continue  # nobody watching yet; the event was logged when it was detected
            try:
                callback(event)
            except Exception:
                log.exception("locker watch callback failed on %s", event)


def _watch_loop(ref: weakref.ref[GpioLocker], stop: threading.Event, poll_s: float) -> None:
    """Poll the sensors until the locker is closed or collected (holds it only while polling)."""
    last_error = ""
    while not stop.is_set():
        locker = ref()
        if locker is None:
            return
        try:
            if not locker._poll():
                return
            last_error = ""
        except Exception as exc:
            if not stop.is_set() and str(exc) != last_error:
                log.error("locker watcher: %s", exc)
                last_error = str(exc)
        del locker
        stop.wait(poll_s)


class GpioLocker:
    """The Locker port on gpiozero devices; runs on lgpio on the Pi and on a MockFactory in sim.

    ``clock`` stamps events and measures the timeouts, ``sleep`` times the pulse: tests inject
    fakes. ``sim`` (the door model on a MockFactory) is exposed as ``.sim`` and closed with the
    locker; ``own_factory`` closes ``pin_factory`` too.
    """

    def __init__(
        self,
        cfg: LockerSection,
        pin_factory: Factory,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_s: float = DEFAULT_POLL_S,
        debounce_s: float = DEFAULT_DEBOUNCE_S,
        sim: Any = None,
        own_factory: bool = False,
    ) -> None:
        if pin_factory is None:
            raise LockerError("GpioLocker needs a pin_factory: build it with make_locker(cfg)")
        self._cfg = cfg
        self._clock, self._sleep = clock, sleep
        self._poll_s, self._debounce_s = poll_s, debounce_s
        self._pulse_s = cfg.pulse_ms / 1000
        self.sim = sim
        channels = open_channels(cfg, pin_factory)
        self._dispatcher = _Dispatcher()
        closeables = [self._dispatcher.stop]
        closeables += [sim.close] if sim is not None else []
        closeables += [pin_factory.close] if own_factory else []
        self._hw = Hardware(channels, closeables)
        LIVE.add(self._hw)
        self._finalizer = weakref.finalize(self, self._hw.shutdown)
        # Exit is hardware.shutdown_all's job: weakref's own exit hook may run after gpiozero's.
        self._finalizer.atexit = False
        self._pulse_lock = threading.Lock()  # the power budget: one solenoid at a time
        try:
            now = clock()
            self._doors = {ch.number: _Door(ch, ch.reads_open(), now) for ch in channels}
        except BaseException:
            self._hw.shutdown()
            raise
        for door in self._doors.values():
            if door.is_open:
                log.warning(
                    "compartment %d reads open at start-up: close it, or check the reed switch "
                    "on GPIO%d",
                    door.channel.number,
                    door.channel.sensor_pin,
                )
        self._watcher = threading.Thread(
            target=_watch_loop,
            args=(weakref.ref(self), self._hw.stop, poll_s),
            name="locker-watch",
            daemon=True,
        )
        self._watcher.start()
        log.info(
            "locker ready: compartments %s on %s", self.compartments, type(pin_factory).__name__
        )

    @property
    def compartments(self) -> tuple[int, ...]:
        """The configured compartment numbers, ascending."""
        return tuple(self._doors)

    # ---- the Locker port ---------------------------------------------------------------------

    def open(self, compartment: int) -> OpenResult:
        """Pulse the compartment's solenoid (one at a time) and wait for its sensor to read open.

        AlreadyOpen (no pulse) if the door reads open first; DoorJammed if the sensor does not
        see it open within door_open_timeout_s of the pulse. Raises LockerError for an unknown
        compartment, a closed locker, an open already running on that compartment, a relay
        fault or an interrupted pulse (the relay is off in every case).
        """
        door = self._door(compartment)
        with self._hw.lock:
            self._check_usable()
            if door.busy:
                raise LockerError(
                    f"compartment {compartment}: an open is already in progress: wait for its "
                    "result before opening it again"
                )
            if door.is_open or door.channel.reads_open():
                log.info("compartment %d already reads open: not pulsing", compartment)
                return AlreadyOpen(compartment)
            door.busy = True
        try:
            with self._pulse_lock:
                command = self._pulse(door)
            if command is None:
                return AlreadyOpen(compartment)
            return self._await_open(door, command)
        except LockerError:
            raise
        except Exception as exc:
            raise LockerError(
                f"compartment {compartment}: the open was interrupted ({type(exc).__name__}: "
                f"{exc}); the relay is off but the door may have opened: check compartment "
                f"{compartment} before using it again"
            ) from exc
        finally:
            with self._hw.lock:
                door.busy, door.command = False, None

    def door_state(self, compartment: int) -> DoorState:
        """The debounced door state (open() also checks the raw reading before pulsing)."""
        door = self._door(compartment)
        with self._hw.lock:
            self._check_usable()
            return DoorState.OPEN if door.is_open else DoorState.CLOSED

    def watch(self, on_event: Callable[[LockerEvent], None]) -> None:
        """Send door events to ``on_event`` from the dispatcher thread (replaces any earlier one)."""
        with self._hw.lock:
            self._check_usable()
        self._dispatcher.callback = on_event

    def close(self) -> None:
        """Switch every relay off, release the pins and stop the threads (idempotent)."""
        self._finalizer()
        for thread in (self._watcher, self._dispatcher.thread):
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)

    def __enter__(self) -> GpioLocker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- pulse ---------------------------------------------------------------------------------

    def _pulse(self, door: _Door) -> _Command | None:
        """Energise the relay for pulse_ms (caller holds the pulse lock); None if already open."""
        ch = door.channel
        with self._hw.lock:
            self._check_usable()
            if door.is_open or ch.reads_open():
                log.info("compartment %d opened while waiting to pulse: not pulsing", ch.number)
                return None
            command = door.command = _Command(started=self._clock())
            try:
                ch.relay.on()
            except Exception as exc:
                ch.off_quietly()
                raise LockerError(
                    f"compartment {ch.number}: relay on GPIO{ch.relay_pin} could not be switched "
                    f"on ({type(exc).__name__}: {exc}): check the relay board power and its cable"
                ) from exc
        log.info("compartment %d: solenoid on for %d ms", ch.number, self._cfg.pulse_ms)
        try:
            self._sleep(self._pulse_s)
        finally:
            self._switch_off(ch)
        return command

    def _switch_off(self, ch: Channel) -> None:
        with self._hw.lock:
            if self._hw.closed:
                return  # shutdown has switched every relay off and released the pins
            try:
                ch.relay.off()
            except Exception as exc:
                raise LockerError(
                    f"compartment {ch.number}: relay on GPIO{ch.relay_pin} could not be switched "
                    f"off ({type(exc).__name__}: {exc}): the solenoid may still be energised: cut "
                    "the relay board power and check it"
                ) from exc

    def _await_open(self, door: _Door, command: _Command) -> OpenResult:
        n = door.channel.number
        # The debounce margin lets an opening that began just inside the timeout be confirmed:
        # reporting a jam for a door that did open would hand out a gift for nothing.
        deadline = command.started + self._cfg.door_open_timeout_s + self._debounce_s
        with self._hw.changed:
            while command.seen_at is None and not self._hw.closed:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                self._hw.changed.wait(min(remaining, self._poll_s))
            if command.seen_at is not None:
                return Opened(n, after_s=max(0.0, command.seen_at - command.started))
            if self._hw.closed:
                raise LockerError(
                    f"compartment {n}: the locker was closed while waiting for the door: check "
                    f"compartment {n}"
                )
            # Decided under the lock: an opening seen from now on is TAMPER, never this OPENED.
            door.command, door.jammed_pulse_at = None, command.started
            waited = self._clock() - command.started
        log.warning(
            "compartment %d: door did not read open within %.1f s of the pulse: check the lock "
            "for a jam, the solenoid and its relay on GPIO%d, and the door sensor on GPIO%d",
            n,
            self._cfg.door_open_timeout_s,
            door.channel.relay_pin,
            door.channel.sensor_pin,
        )
        return DoorJammed(n, waited_s=waited)

    # ---- watcher -------------------------------------------------------------------------------

    def _poll(self) -> bool:
        """Read every sensor once and queue the events; False once the locker is closed."""
        events: list[LockerEvent] = []
        with self._hw.lock:
            if self._hw.closed:
                return False
            now = self._clock()
            for door in self._doors.values():
                events += self._track(door, door.channel.reads_open(), now)
        for event in events:
            self._dispatcher.put(event)
        return True

    def _track(self, door: _Door, reads_open: bool, now: float) -> list[LockerEvent]:
        events = []
        if reads_open == door.is_open:
            door.pending_since = None
        elif door.pending_since is None:
            door.pending_since = now
        if door.pending_since is not None and now - door.pending_since >= self._debounce_s:
            events.append(self._accept(door, reads_open, door.pending_since))
        if door.is_open and not door.alarmed and now - door.since >= self._cfg.door_close_timeout_s:
            door.alarmed = True
            n, open_s = door.channel.number, now - door.since
            log.warning(
                "compartment %d: door open for %.0f s: close it; if it is shut, check the reed "
                "switch and its magnet on GPIO%d",
                n,
                open_s,
                door.channel.sensor_pin,
            )
            events.append(LockerEvent(LockerEventKind.LEFT_OPEN, n, now, {"open_s": open_s}))
        return events

    def _accept(self, door: _Door, now_open: bool, at: float) -> LockerEvent:
        """A debounced change: the event it means (OPENED, TAMPER or CLOSED)."""
        n, open_since = door.channel.number, door.since
        door.is_open, door.since, door.pending_since, door.alarmed = now_open, at, None, False
        if not now_open:
            log.info("compartment %d: door closed", n)
            return LockerEvent(LockerEventKind.CLOSED, n, at, {"open_s": at - open_since})
        command = door.command
        if command is not None and command.seen_at is None:
            command.seen_at = at
            door.jammed_pulse_at = None
            self._hw.changed.notify_all()
            log.info("compartment %d: door opened", n)
            return LockerEvent(LockerEventKind.OPENED, n, at, {"after_s": at - command.started})
        detail: dict[str, Any] = {"reason": "opened with no command"}
        if door.jammed_pulse_at is not None:
            detail = {
                "reason": "opened after open() reported DoorJammed",
                "since_pulse_s": at - door.jammed_pulse_at,
            }
            door.jammed_pulse_at = None
        log.warning(
            "compartment %d: door %s: check the compartment and its lock", n, detail["reason"]
        )
        return LockerEvent(LockerEventKind.TAMPER, n, at, detail)

    # ---- helpers -------------------------------------------------------------------------------

    def _door(self, compartment: int) -> _Door:
        try:
            return self._doors[compartment]
        except (KeyError, TypeError):
            configured = ", ".join(str(n) for n in self._doors)
            raise LockerError(
                f"compartment {compartment!r} is not configured (configured: {configured}): "
                "check the compartment number, or add a [[locker.compartments]] table for it in "
                "kiosk.toml"
            ) from None

    def _check_usable(self) -> None:
        if self._hw.closed:
            raise LockerError("the locker is closed: restart the kiosk to use the compartments")
