"""Simulated locker hardware: relay inputs and reed-switch doors on a gpiozero MockFactory.

The real adapter (GpioLocker) runs on top unchanged: it drives the mock relay pins and reads
the mock sensor pins, and this module makes those pins behave like the cabinet. When a relay
energises a solenoid, the door pops open after ``open_delay_s``. The simulated member closes it
with ``close_door(n)``, or it closes itself after ``auto_close_s`` (for the demo). Faults:
``jam(n)`` (a pulse does nothing), ``set_open_delay(n, s)`` (a slow door, inside or beyond the
timeout), ``stick_sensor(n, state)`` (the sensor always reads closed or always open) and
``force_open(n)`` (tamper: the door opens with no pulse).

Attach the model before the locker claims the pins: it puts its own MockPin subclasses into the
factory, and gpiozero then hands those to the locker's devices.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from gpiozero.exc import PinFixedPull, PinInvalidPull
from gpiozero.pins.mock import MockFactory, MockPin

from kiosk.config import LockerSection
from kiosk.errors import LockerError
from kiosk.ports import DoorState

log = logging.getLogger(__name__)

DEFAULT_OPEN_DELAY_S = 0.2  # a spring-loaded door pops open well inside a second


class RelayPin(MockPin):
    """A mock GPIO wired to a relay-board input: calls ``listener`` on every change."""

    listener: Callable[[], None] | None = None
    _batch = False

    def _notify(self) -> None:
        if not self._batch and self.listener is not None:
            self.listener()

    def _change_state(self, value: bool) -> bool:
        changed = super()._change_state(value)
        if changed:
            self._notify()
        return changed

    def _set_function(self, value: str) -> None:
        super()._set_function(value)
        self._notify()

    def output_with_state(self, state: bool) -> None:
        # One notification for "output at this level", as lgpio claims a line at a level: an
        # active-low board must not see the output-low step in between as a pulse.
        self._batch = True
        try:
            super().output_with_state(state)
        finally:
            self._batch = False
        self._notify()


class ReedSwitchPin(MockPin):
    """A mock GPIO wired to a reed switch to ground: the shut door's magnet closes it (low)."""

    switch_closed = True
    forced: bool | None = None  # a stuck sensor: the level read whatever the door does

    def __init__(self, factory: MockFactory, info: object) -> None:
        super().__init__(factory, info)
        self._state = self.level()
        self.clear_states()

    def level(self) -> bool:
        """The level the circuit puts on the line now."""
        if self.forced is not None:
            return self.forced
        if self.switch_closed:
            return False
        return {"up": True, "down": False}.get(self._pull, self._state)

    def settle(self) -> None:
        """Drive the line to the level of the circuit (fires when_changed like a real edge)."""
        if self._function == "input":
            (self.drive_high if self.level() else self.drive_low)()

    def _set_pull(self, value: str) -> None:
        # MockPin's checks, but then the switch, not the pull alone, sets the level: a closed
        # switch holds the line low against the pull-up, with no high blip on the way.
        if self._function != "input":
            raise PinFixedPull(f"cannot set pull on non-input pin {self!r}")
        if self.info.pull and value != self.info.pull:
            raise PinFixedPull(f"{self!r} has a fixed pull resistor")
        if value not in ("floating", "up", "down"):
            raise PinInvalidPull("pull must be floating, up, or down")
        self._pull = value
        self.settle()


@dataclass
class DoorModel:
    """One simulated compartment: its latch (driven by the relay), the door and its reed switch."""

    number: int
    relay: RelayPin
    sensor: ReedSwitchPin
    open_delay_s: float | None  # after the solenoid energises; None = jammed
    auto_close_s: float | None  # the simulated member closes the door after this; None = never
    is_open: bool = False
    sensor_stuck: DoorState | None = None
    energised: bool = False
    pulses: int = 0  # times the solenoid was energised


class SimulatedLockerHardware:
    """The cabinet behind a MockFactory: one DoorModel per configured compartment."""

    def __init__(
        self,
        factory: MockFactory,
        cfg: LockerSection,
        *,
        open_delay_s: float | None = DEFAULT_OPEN_DELAY_S,
        auto_close_s: float | None = None,
    ) -> None:
        if not isinstance(factory, MockFactory):
            raise LockerError(
                f"the locker simulator needs a gpiozero MockFactory, not {type(factory).__name__}:"
                ' set [locker] kind = "gpio" for real pins'
            )
        self.factory = factory
        self._active_level = cfg.relay_active_high
        self._lock = threading.RLock()
        self._timers: set[threading.Timer] = set()
        self._closed = False
        self.max_energised = 0  # most solenoids ever energised at the same time
        self.doors: dict[int, DoorModel] = {}
        for comp in cfg.compartments:
            door = DoorModel(
                comp.number,
                self._claim(comp.relay_pin, RelayPin),
                self._claim(comp.sensor_pin, ReedSwitchPin),
                open_delay_s,
                auto_close_s,
            )
            door.sensor.switch_closed, door.sensor.forced = True, None
            door.sensor.settle()
            door.relay.listener = functools.partial(self._relay_changed, door)
            self.doors[comp.number] = door

    # ---- controls --------------------------------------------------------------------------------

    def door(self, number: int) -> DoorModel:
        """The model of compartment ``number``."""
        try:
            return self.doors[number]
        except KeyError:
            raise LockerError(f"simulator: no compartment {number}") from None

    def relay_pin(self, number: int) -> RelayPin:
        """The mock pin of the compartment's relay (its ``states`` history is the pulse record)."""
        return self.door(number).relay

    def sensor_pin(self, number: int) -> ReedSwitchPin:
        """The mock pin of the compartment's reed switch."""
        return self.door(number).sensor

    def is_open(self, number: int) -> bool:
        """Whether the door is physically open (whatever its sensor reads)."""
        return self.door(number).is_open

    def jam(self, number: int, jammed: bool = True) -> None:
        """A jammed door ignores pulses; ``jammed=False`` restores the default delay."""
        self.set_open_delay(number, None if jammed else DEFAULT_OPEN_DELAY_S)

    def set_open_delay(self, number: int, seconds: float | None) -> None:
        """How long after the pulse the door pops open (a slow door); None jams it."""
        with self._lock:
            self.door(number).open_delay_s = seconds

    def set_auto_close(self, seconds: float | None, number: int | None = None) -> None:
        """Close doors by themselves ``seconds`` after they open (all doors if number is None)."""
        with self._lock:
            for door in self.doors.values() if number is None else [self.door(number)]:
                door.auto_close_s = seconds

    def stick_sensor(self, number: int, state: DoorState | None) -> None:
        """Make the sensor read ``state`` whatever the door does; None repairs it."""
        with self._lock:
            door = self.door(number)
            door.sensor_stuck = state
            door.sensor.forced = None if state is None else state is DoorState.OPEN
            door.sensor.settle()

    def force_open(self, number: int) -> None:
        """Tamper: open the door with no pulse."""
        self._set_open(self.door(number), True, "forced open")

    def close_door(self, number: int) -> None:
        """The member shuts the door."""
        self._set_open(self.door(number), False, "closed")

    def close(self) -> None:
        """Cancel pending door movements and stop listening to the relays (idempotent)."""
        with self._lock:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            for door in self.doors.values():
                door.relay.listener = None

    # ---- internals -------------------------------------------------------------------------------

    def _claim(self, gpio: int, pin_class: type[MockPin]) -> MockPin:
        pin = self.factory.pin(gpio, pin_class=pin_class)
        if not isinstance(pin, pin_class):
            raise LockerError(
                f"simulator: GPIO{gpio} already exists on this MockFactory as a "
                f"{type(pin).__name__}: attach the door model before creating the locker, or "
                "use a fresh MockFactory"
            )
        return pin

    def _relay_changed(self, door: DoorModel) -> None:
        with self._lock:
            relay = door.relay
            energised = relay.function == "output" and relay.state == self._active_level
            if energised == door.energised:
                return
            door.energised = energised
            count = sum(d.energised for d in self.doors.values())
            self.max_energised = max(self.max_energised, count)
            if not energised or self._closed:
                return
            door.pulses += 1
            if door.is_open or door.open_delay_s is None:
                log.info("simulator: compartment %d pulsed, door does not move", door.number)
                return
            self._after(door.open_delay_s, self._set_open, door, True, "popped open")

    def _set_open(self, door: DoorModel, is_open: bool, how: str) -> None:
        with self._lock:
            if self._closed or door.is_open == is_open:
                return
            door.is_open = is_open
            door.sensor.switch_closed = not is_open
            door.sensor.settle()
            log.info("simulator: compartment %d %s", door.number, how)
            if is_open and door.auto_close_s is not None:
                self._after(door.auto_close_s, self._set_open, door, False, "closed by itself")

    def _after(self, delay: float, action: Callable[..., None], *args: object) -> None:
        if delay <= 0:
            action(*args)
            return

        def run() -> None:
            with self._lock:
                self._timers.discard(timer)
            action(*args)

        timer = threading.Timer(delay, run)
        timer.daemon = True
        self._timers.add(timer)
        timer.start()
