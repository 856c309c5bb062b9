"""The pins of one locker and their safe release: relay and sensor devices, shutdown, exit hook.

Wiring, and what the levels mean:

* Relay: a ``DigitalOutputDevice`` per compartment; ``relay_active_high`` picks the level that
  energises the solenoid (most opto-isolated relay boards switch on low).
* Door sensor: a reed switch between the sensor GPIO and ground, internal pull-up on. The door's
  magnet closes the switch while the door is shut, so **low = closed, high = open**. A cut wire
  or a lost magnet therefore reads "open" and raises TAMPER / LEFT_OPEN instead of hiding an
  open door.

``Hardware.shutdown`` switches every relay off before the pins are released; ``close()``, a GC
finalizer and the atexit hook below all call it. The hook is registered after gpiozero's own
(gpiozero is imported first), so it runs before gpiozero closes its devices: gpiozero releases
an output pin without switching it off, and what a released line then does is up to the kernel
driver (it may keep its level). The GC finalizer leaves exit to this hook: weakref's own exit
hook can run after gpiozero's.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from gpiozero import DigitalInputDevice, DigitalOutputDevice
from gpiozero.pins import Factory

from kiosk.config import LockerSection
from kiosk.errors import LockerError

log = logging.getLogger(__name__)


@dataclass
class Channel:
    """The two gpiozero devices of one compartment."""

    number: int
    relay_pin: int
    sensor_pin: int
    relay: DigitalOutputDevice
    sensor: DigitalInputDevice

    def reads_open(self) -> bool:
        """Read the sensor now (no debouncing)."""
        try:
            # is_active = the pulled-up line is held low by the closed reed switch = door shut.
            return not self.sensor.is_active
        except Exception as exc:
            raise LockerError(
                f"compartment {self.number}: door sensor on GPIO{self.sensor_pin} could not be "
                f"read ({type(exc).__name__}: {exc}): check the sensor cable and the GPIO driver"
            ) from exc

    def off_quietly(self) -> None:
        """Switch the relay off for a clean-up path; a failure is logged, never raised."""
        try:
            self.relay.off()
        except Exception:
            log.critical(
                "compartment %d: relay on GPIO%d could not be switched off: cut the relay "
                "board power and check it",
                self.number,
                self.relay_pin,
                exc_info=True,
            )


class Hardware:
    """What must be switched off and released however the locker ends (close, GC, exit).

    It holds no reference to the GpioLocker, so a finalizer can call ``shutdown`` while the
    locker itself is being collected.
    """

    def __init__(self, channels: list[Channel], closeables: list[Callable[[], None]]) -> None:
        self.channels = channels
        self.closeables = closeables
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # notified when a commanded door opens
        self.stop = threading.Event()
        self.closed = False

    def shutdown(self) -> None:
        """Switch every relay off, release the pins and stop the threads (idempotent)."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.stop.set()
            self.changed.notify_all()
            for channel in self.channels:
                channel.off_quietly()
            for channel in self.channels:
                for device in (channel.relay, channel.sensor):
                    try:
                        device.close()
                    except Exception:
                        log.warning("closing %r failed", device, exc_info=True)
        for close in self.closeables:
            try:
                close()
            except Exception:
                log.warning("locker clean-up step %r failed", close, exc_info=True)
        log.info("locker closed: all relays off")


LIVE: weakref.WeakSet[Hardware] = weakref.WeakSet()


def shutdown_all() -> None:
    """At interpreter exit: switch the relays of every locker still open off."""
    for hardware in list(LIVE):
        hardware.shutdown()


atexit.register(shutdown_all)


def open_channels(cfg: LockerSection, factory: Factory) -> list[Channel]:
    """Claim each compartment's relay (off) and sensor; on any failure release what was claimed."""
    devices: list[DigitalOutputDevice | DigitalInputDevice] = []
    channels: list[Channel] = []
    number, what = 0, ""
    try:
        for comp in cfg.compartments:
            number, what = comp.number, f"relay on GPIO{comp.relay_pin}"
            relay = DigitalOutputDevice(
                comp.relay_pin,
                active_high=cfg.relay_active_high,
                initial_value=False,
                pin_factory=factory,
            )
            devices.append(relay)
            what = f"door sensor on GPIO{comp.sensor_pin}"
            sensor = DigitalInputDevice(comp.sensor_pin, pull_up=True, pin_factory=factory)
            devices.append(sensor)
            channels.append(Channel(comp.number, comp.relay_pin, comp.sensor_pin, relay, sensor))
    except Exception as exc:
        for device in devices:
            device.close()
        raise LockerError(
            f"compartment {number}: {what} could not be set up ({type(exc).__name__}: {exc}): "
            "make sure no other program or device uses that pin and that [[locker.compartments]] "
            "in kiosk.toml names the right BCM pins"
        ) from exc
    return channels
