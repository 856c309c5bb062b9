"""The door alarm's buzzer or warning light: the AlarmOutput port on one GPIO, or nothing.

``[alarm] buzzer_pin`` unset (the default) gives ``SilentAlarmOutput``: the alarm shows on the
screen and reaches the store server, and nothing sounds. Set, it gives ``GpioAlarmOutput``, a
gpiozero ``Buzzer`` (an active buzzer module, or an LED through a transistor: both are one
output line) on the machine's pin factory, or on a ``MockFactory`` when ``[locker] kind =
"sim"`` (the buzzer sits on the locker's GPIO header, so the locker's kind decides).

The output is steady while an alarm is active rather than beeping: gpiozero's ``beep()`` runs
a thread of its own, and a steady level is what a siren relay or a flashing-light module needs.
"""

from __future__ import annotations

import logging
import threading

from gpiozero import Buzzer
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory

from drivers.gpio_factory import machine_pin_factory
from kiosk.config import AlarmSection
from kiosk.errors import HardwareError
from kiosk.ports import AlarmOutput

log = logging.getLogger(__name__)

__all__ = ["AlarmOutputError", "GpioAlarmOutput", "SilentAlarmOutput", "make_alarm_output"]


class AlarmOutputError(HardwareError):
    """The buzzer's pin could not be claimed or switched."""


class SilentAlarmOutput:
    """No buzzer configured: remembers the state asked for (diagnostics), drives nothing."""

    def __init__(self) -> None:
        self.on = False

    def set(self, on: bool) -> None:
        self.on = on

    def close(self) -> None:
        self.on = False


class GpioAlarmOutput:
    """A buzzer (or light) on one GPIO, off at start and after ``close()``."""

    def __init__(self, pin: int, *, active_high: bool, pin_factory: Factory) -> None:
        self.pin = pin
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._device = Buzzer(
                pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
            )
        except Exception as exc:
            raise AlarmOutputError(
                f"alarm buzzer on GPIO{pin} could not be set up ({type(exc).__name__}: {exc}): "
                "make sure no other device uses that pin, or remove [alarm] buzzer_pin"
            ) from exc
        log.info("alarm buzzer ready on GPIO%d", pin)

    @property
    def on(self) -> bool:
        with self._lock:
            return not self._closed and bool(self._device.value)

    def set(self, on: bool) -> None:
        with self._lock:
            if self._closed or bool(self._device.value) == on:
                return
            try:
                self._device.value = on
            except Exception as exc:
                raise AlarmOutputError(
                    f"alarm buzzer on GPIO{self.pin} could not be switched "
                    f"{'on' if on else 'off'} ({type(exc).__name__}: {exc}): check its wiring"
                ) from exc

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._device.off()
            finally:
                self._device.close()


def make_alarm_output(
    cfg: AlarmSection, *, locker_kind: str, pin_factory: Factory | None = None
) -> AlarmOutput:
    """The output ``cfg`` asks for: silent without a pin; else on ``pin_factory``, a new
    MockFactory for a simulated locker, or the machine's pin factory."""
    if cfg.buzzer_pin is None:
        return SilentAlarmOutput()
    if pin_factory is None:
        pin_factory = MockFactory() if locker_kind == "sim" else _machine_factory()
    return GpioAlarmOutput(cfg.buzzer_pin, active_high=cfg.active_high, pin_factory=pin_factory)


def _machine_factory() -> Factory:
    return machine_pin_factory(
        AlarmOutputError, "for the alarm buzzer",
        "on the Raspberry Pi install python3-lgpio; elsewhere remove [alarm] buzzer_pin",
    )  # fmt: skip
