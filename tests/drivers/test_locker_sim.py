"""The door model (drivers/locker/sim.py): mock relay and reed-switch pins, slow doors, auto-close.

The slow-door tests run on real time with wide margins (the outcome, not a duration, is asserted).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero import DigitalInputDevice
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory, MockPin

from drivers.locker import SimulatedLockerHardware, make_locker
from kiosk.errors import LockerError
from kiosk.ports import DoorJammed, DoorState, LockerEventKind, Opened
from tests.drivers.test_locker import HANG_GUARD_S, Events, in_thread, levels, section


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPin)
    yield f
    f.close()
    f.reset()


@pytest.mark.parametrize("active_high", [True, False])
def test_claiming_the_pins_neither_pulses_nor_blips(factory, active_high):
    locker = make_locker(section(relay_active_high=active_high), factory)
    try:
        sim = locker.sim
        assert sim.max_energised == 0 and all(d.pulses == 0 for d in sim.doors.values())
        # pulled up, but held low by the closed reed switch the whole time: no "open" blip
        assert all(levels(sim.sensor_pin(n)) == [False] for n in sim.doors)
        assert all(locker.door_state(n) is DoorState.CLOSED for n in sim.doors)
    finally:
        locker.close()


def test_a_slow_door_just_inside_the_timeout_is_opened(factory):
    locker = make_locker(section(pulse_ms=50, door_open_timeout_s=2.0), factory)
    try:
        locker.sim.set_open_delay(1, 0.1)
        assert isinstance(locker.open(1), Opened)
    finally:
        locker.close()


def test_a_door_slower_than_the_timeout_is_jammed_then_flagged_when_it_opens(factory):
    events = Events()
    locker = make_locker(section(pulse_ms=50, door_open_timeout_s=0.15), factory)
    try:
        locker.watch(events)
        locker.sim.set_open_delay(2, 1.0)

        assert isinstance(locker.open(2), DoorJammed)

        event = events.expect(LockerEventKind.TAMPER, 2)  # about 1 s later
        assert event.detail["reason"] == "opened after open() reported DoorJammed"
    finally:
        locker.close()


def test_auto_close_shuts_the_door_for_the_demo(factory):
    events = Events()
    locker = make_locker(section(pulse_ms=50), factory)
    try:
        locker.watch(events)
        locker.sim.set_open_delay(3, 0.0)
        locker.sim.set_auto_close(0.3)  # longer than the 50 ms debounce, or it never "opened"
        assert isinstance(locker.open(3), Opened)
        events.expect(LockerEventKind.OPENED, 3)
        events.expect(LockerEventKind.CLOSED, 3)
        assert not locker.sim.is_open(3)
    finally:
        locker.close()


def test_jam_and_stuck_sensor_can_be_repaired(factory):
    locker = make_locker(section(pulse_ms=50), factory)
    try:
        sim = locker.sim
        sim.jam(1)
        sim.jam(1, jammed=False)
        sim.stick_sensor(1, DoorState.OPEN)
        assert sim.sensor_pin(1).state  # reads open though the door is shut
        sim.stick_sensor(1, None)
        assert not sim.sensor_pin(1).state
        assert isinstance(in_thread(lambda: locker.open(1)).result(HANG_GUARD_S), Opened)
    finally:
        locker.close()


def test_a_closed_model_stops_moving_doors(factory):
    sim = SimulatedLockerHardware(factory, section(relay_active_high=True))
    sim.close()
    relay = sim.relay_pin(1)
    relay.function = "output"
    relay.state = True
    sim.force_open(1)
    assert sim.door(1).pulses == 0 and not sim.is_open(1)


def test_the_model_needs_a_mock_factory():
    with pytest.raises(
        LockerError, match=r'needs a gpiozero MockFactory, not Factory: set .*kind = "gpio"'
    ):
        SimulatedLockerHardware(Factory(), section())


def test_the_model_must_be_attached_before_the_pins_are_claimed(factory):
    device = DigitalInputDevice(6, pull_up=True, pin_factory=factory)
    try:
        with pytest.raises(
            LockerError, match="GPIO6 already exists on this MockFactory as a MockPin"
        ):
            make_locker(section(), factory)
    finally:
        device.close()
