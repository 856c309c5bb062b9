"""The locker adapter, chosen by ``[locker] kind``: GpioLocker on the Pi's pins or on a simulator.

Both kinds run the same GpioLocker; only the gpiozero pin factory differs, as in gpiozero's own
test suite. ``kind = "sim"`` gives a MockFactory with the door model attached, reachable as
``locker.sim`` so the demo and the tests can open, close, jam and tamper with doors.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory, MockPin

from drivers.gpio_factory import machine_pin_factory
from drivers.locker.gpio_locker import DEFAULT_DEBOUNCE_S, DEFAULT_POLL_S, GpioLocker
from drivers.locker.sim import DoorModel, SimulatedLockerHardware
from kiosk.config import LockerSection
from kiosk.errors import LockerError

__all__ = ["DoorModel", "GpioLocker", "SimulatedLockerHardware", "make_locker"]


def _machine_factory() -> Factory:
    """gpiozero's default factory for this machine (lgpio on a Pi, or GPIOZERO_PIN_FACTORY)."""
    return machine_pin_factory(
        LockerError, "could be loaded",
        'on the Raspberry Pi install python3-lgpio (or pip install lgpio); on any other machine '
        'set [locker] kind = "sim"',
    )  # fmt: skip


def make_locker(
    cfg: LockerSection,
    pin_factory: Factory | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_s: float = DEFAULT_POLL_S,
    debounce_s: float = DEFAULT_DEBOUNCE_S,
) -> GpioLocker:
    """Build the locker for ``cfg.kind``.

    ``gpio``: ``pin_factory`` or the machine's default. ``sim``: ``pin_factory`` (a MockFactory,
    which the caller keeps and closes) or a new ``MockFactory(pin_class=MockPin)`` that the locker
    closes; either way with a SimulatedLockerHardware attached as ``locker.sim``.
    """

    def build(factory: Factory, **extra: object) -> GpioLocker:
        return GpioLocker(
            cfg, factory, clock=clock, sleep=sleep, poll_s=poll_s, debounce_s=debounce_s, **extra
        )

    if cfg.kind == "gpio":
        return build(pin_factory or _machine_factory())
    if cfg.kind != "sim":
        raise LockerError(f'[locker] kind = "{cfg.kind}" is not known: use "gpio" or "sim"')
    own = pin_factory is None
    factory = MockFactory(pin_class=MockPin) if own else pin_factory
    try:
        sim = SimulatedLockerHardware(factory, cfg)
    except BaseException:
        if own:
            factory.close()
        raise
    try:
        return build(factory, sim=sim, own_factory=own)
    except BaseException:
        sim.close()
        if own:
            factory.close()
        raise
