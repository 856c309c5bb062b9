"""gpiozero's pin factory for this machine, shared by the locker and the alarm buzzer."""

from __future__ import annotations

from gpiozero import Device
from gpiozero.pins import Factory

from kiosk.errors import HardwareError


def machine_pin_factory(error: type[HardwareError], what: str, fix: str) -> Factory:
    """lgpio on a Pi (or whatever GPIOZERO_PIN_FACTORY names); none loadable is ``error``
    saying ``what`` needed it and the ``fix``."""
    try:
        Device.ensure_pin_factory()
    except Exception as exc:
        raise error(f"no GPIO driver {what} ({type(exc).__name__}: {exc}): {fix}") from exc
    return Device.pin_factory
