"""GpioLocker, the real adapter, on a gpiozero MockFactory: with the door model and on bare pins.

Time is a FakeClock wherever a timeout matters, so a 5 s open timeout or a 120 s left-open alarm
costs nothing; the few waits below are hang guards, never timing assertions.
"""

from __future__ import annotations

import concurrent.futures
import gc
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin

from drivers.locker import GpioLocker, make_locker
from drivers.locker import hardware as hardware_module
from kiosk.config import Compartment, LockerSection
from kiosk.errors import LockerError
from kiosk.ports import (
    AlreadyOpen,
    DoorJammed,
    DoorState,
    LockerEvent,
    LockerEventKind,
    Opened,
)

OPENED, CLOSED = LockerEventKind.OPENED, LockerEventKind.CLOSED
LEFT_OPEN, TAMPER = LockerEventKind.LEFT_OPEN, LockerEventKind.TAMPER
COMPARTMENTS = (
    Compartment(number=1, relay_pin=5, sensor_pin=6),
    Compartment(number=2, relay_pin=13, sensor_pin=19),
    Compartment(number=3, relay_pin=17, sensor_pin=27),
)
HANG_GUARD_S = 5.0  # only stops a broken test from hanging; never a timing assertion


# ---- helpers (test_locker_sim.py imports these) -------------------------------------------------


def section(**overrides: object) -> LockerSection:
    """A [locker] section with three compartments and the config defaults."""
    values: dict[str, object] = {
        "kind": "sim",
        "relay_active_high": False,
        "pulse_ms": 300,
        "door_open_timeout_s": 5.0,
        "door_close_timeout_s": 120.0,
        "compartments": COMPARTMENTS,
    }
    values.update(overrides)
    return LockerSection(**values)  # type: ignore[arg-type]


class FakeClock:
    """Time that moves only when a test advances it, or when a pulse 'sleeps' on it."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


class Events:
    """A watch() callback that records events and the threads they arrive on."""

    def __init__(self) -> None:
        self._queue: queue.Queue[LockerEvent] = queue.Queue()
        self.threads: set[int] = set()

    def __call__(self, event: LockerEvent) -> None:
        self.threads.add(threading.get_ident())
        self._queue.put(event)

    def expect(self, kind: LockerEventKind, compartment: int) -> LockerEvent:
        event = self._queue.get(timeout=HANG_GUARD_S)
        assert (event.kind, event.compartment) == (kind, compartment), event
        return event


def levels(pin: MockPin) -> list[bool]:
    """The whole level history of a mock pin (assert_states compares only a prefix)."""
    return [bool(s.state) for s in pin.states]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll until ``condition`` holds; fails (not a timing assertion) only if it never does."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.001)


def in_thread(fn: Callable[[], object]) -> concurrent.futures.Future[object]:
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPin)
    yield f
    f.close()
    f.reset()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def build(
    factory: MockFactory, clock: FakeClock, events: Events
) -> Iterator[Callable[..., GpioLocker]]:
    """make_locker on the test's factory and fake clock; doors pop open as the relay switches."""
    made: list[GpioLocker] = []

    def build(cfg: LockerSection | None = None, **options: object) -> GpioLocker:
        options = {
            "clock": clock,
            "sleep": clock.sleep,
            "poll_s": 0.001,
            "debounce_s": 0.0,
        } | options
        locker = make_locker(cfg or section(), factory, **options)  # type: ignore[arg-type]
        made.append(locker)
        locker.watch(events)
        if locker.sim is not None:
            for door in locker.sim.doors.values():
                door.open_delay_s = 0.0
                door.relay.clear_states()
        return locker

    yield build
    for locker in made:
        locker.close()


def open_guarded(locker: GpioLocker, n: int) -> object:
    """locker.open(n) that fails the test instead of hanging on a frozen fake clock."""
    return in_thread(lambda: locker.open(n)).result(timeout=HANG_GUARD_S)


def jammed_open(locker: GpioLocker, clock: FakeClock, n: int) -> object:
    """open(n) on a door that never reads open: advance the fake clock past the timeout."""
    future = in_thread(lambda: locker.open(n))
    wait_until(lambda: locker.sim.door(n).pulses == 1, "pulse")
    wait_until(lambda: not locker.sim.door(n).energised, "pulse end")
    clock.advance(locker._cfg.door_open_timeout_s + 1)
    return future.result(timeout=HANG_GUARD_S)


# ---- open ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("active_high", [True, False])
def test_open_pulses_the_relay_once_and_reports_opened_then_closed(
    build, clock, events, active_high
):
    locker = build(section(relay_active_high=active_high))
    relay, off, on = locker.sim.relay_pin(2), not active_high, active_high

    result = open_guarded(locker, 2)

    assert isinstance(result, Opened) and result.compartment == 2
    assert 0 <= result.after_s <= 5.0
    relay.assert_states([off, on, off])
    assert levels(relay) == [off, on, off]
    assert clock.sleeps == [0.3]  # pulse_ms
    assert events.expect(OPENED, 2).detail["after_s"] == result.after_s
    assert locker.door_state(2) is DoorState.OPEN
    assert levels(locker.sim.relay_pin(1)) == levels(locker.sim.relay_pin(3)) == [off]

    clock.advance(7)
    locker.sim.close_door(2)
    assert events.expect(CLOSED, 2).detail["open_s"] >= 7
    assert locker.door_state(2) is DoorState.CLOSED


def test_a_door_that_already_reads_open_is_not_pulsed(build, events):
    locker = build()
    locker.sim.force_open(1)
    events.expect(TAMPER, 1)

    assert open_guarded(locker, 1) == AlreadyOpen(1)
    assert levels(locker.sim.relay_pin(1)) == [True]  # active-low board: high = off, never low
    assert locker.sim.door(1).pulses == 0


def test_a_jammed_door_is_reported_after_the_timeout_with_the_relay_off(build, clock):
    locker = build()
    locker.sim.jam(1)

    result = jammed_open(locker, clock, 1)

    assert isinstance(result, DoorJammed) and result.compartment == 1
    assert result.waited_s >= 5.0
    assert levels(locker.sim.relay_pin(1)) == [True, False, True]
    assert locker.door_state(1) is DoorState.CLOSED


def test_a_door_opening_after_the_jam_report_is_flagged(build, clock, events):
    locker = build()
    locker.sim.jam(1)
    assert isinstance(jammed_open(locker, clock, 1), DoorJammed)

    locker.sim.force_open(1)

    event = events.expect(TAMPER, 1)
    assert event.detail["reason"] == "opened after open() reported DoorJammed"
    assert event.detail["since_pulse_s"] >= 5.0


def test_unknown_compartment_is_a_locker_error_naming_the_configured_ones(build):
    locker = build()
    for call in (locker.open, locker.door_state):
        with pytest.raises(
            LockerError, match=r"compartment 9 is not configured \(configured: 1, 2, 3\)"
        ):
            call(9)
    assert all(levels(locker.sim.relay_pin(n)) == [True] for n in (1, 2, 3))


def test_a_second_open_of_a_busy_compartment_is_refused(build, clock):
    locker = build()
    locker.sim.jam(3)
    future = in_thread(lambda: locker.open(3))
    wait_until(lambda: locker.sim.door(3).pulses == 1, "first pulse")

    with pytest.raises(LockerError, match="compartment 3: an open is already in progress"):
        locker.open(3)

    clock.advance(10)
    assert isinstance(future.result(timeout=HANG_GUARD_S), DoorJammed)
    assert locker.sim.door(3).pulses == 1


# ---- watch ---------------------------------------------------------------------------------------


def test_a_door_opened_without_a_command_is_tamper(build, events):
    locker = build()
    locker.sim.force_open(3)

    event = events.expect(TAMPER, 3)
    assert event.detail == {"reason": "opened with no command"}
    assert locker.door_state(3) is DoorState.OPEN
    assert levels(locker.sim.relay_pin(3)) == [True]


def test_a_door_left_open_raises_one_alarm_after_door_close_timeout_s(build, clock, events):
    locker = build()
    assert isinstance(open_guarded(locker, 1), Opened)
    events.expect(OPENED, 1)

    clock.advance(119)
    locker.sim.force_open(2)  # the watcher reports in order: an early alarm would come first
    events.expect(TAMPER, 2)
    clock.advance(2)

    assert events.expect(LEFT_OPEN, 1).detail["open_s"] >= 120
    locker.sim.close_door(1)
    events.expect(CLOSED, 1)  # and no second LEFT_OPEN for the same opening


def test_events_arrive_on_a_worker_thread_and_a_failing_callback_does_not_stop_them(build, events):
    locker = build()
    calls: list[LockerEvent] = []

    def fragile(event: LockerEvent) -> None:
        calls.append(event)
        events(event)
        raise RuntimeError("callback bug")

    locker.watch(fragile)
    locker.sim.force_open(1)
    events.expect(TAMPER, 1)
    locker.sim.close_door(1)
    events.expect(CLOSED, 1)

    assert len(calls) == 2
    assert threading.get_ident() not in events.threads


def test_a_short_bounce_is_not_an_event(build, clock, events):
    locker = build(debounce_s=0.05)
    sensor = locker.sim.sensor_pin(1)

    sensor.drive_high()  # the line jumps "open" and back while the fake clock stands still
    time.sleep(0.02)  # let the watcher see it (if it does not, the test passes trivially)
    sensor.drive_low()
    time.sleep(0.02)
    tampered_at = clock()
    locker.sim.force_open(1)
    wait_until(lambda: locker._doors[1].pending_since is not None, "the watcher saw the opening")
    clock.advance(0.1)

    assert events.expect(TAMPER, 1).at == tampered_at


# ---- sensor faults -------------------------------------------------------------------------------


def test_a_sensor_stuck_closed_makes_an_opened_door_look_jammed(build, clock):
    locker = build()
    locker.sim.stick_sensor(1, DoorState.CLOSED)

    assert isinstance(jammed_open(locker, clock, 1), DoorJammed)
    assert locker.sim.is_open(1)  # it did open: the DoorJammed log names the sensor too
    assert levels(locker.sim.relay_pin(1)) == [True, False, True]


def test_a_sensor_stuck_open_blocks_pulses_and_raises_the_left_open_alarm(build, clock, events):
    locker = build()
    locker.sim.stick_sensor(2, DoorState.OPEN)
    events.expect(TAMPER, 2)

    assert open_guarded(locker, 2) == AlreadyOpen(2)
    assert locker.sim.door(2).pulses == 0 and not locker.sim.is_open(2)
    clock.advance(121)
    events.expect(LEFT_OPEN, 2)


# ---- one solenoid at a time ------------------------------------------------------------------------


def test_concurrent_opens_never_energise_two_relays(factory):
    cfg = section(relay_active_high=True)
    overlaps: list[int] = []
    pins: list[MockPin] = []

    def pulse_sleep(seconds: float) -> None:
        # Inside a pulse: count the relays that are on right now, three times over the pulse.
        for _ in range(3):
            overlaps.append(sum(p.state for p in pins))
            time.sleep(0.01)

    locker = make_locker(cfg, factory, sleep=pulse_sleep, poll_s=0.001, debounce_s=0.0)
    try:
        pins.extend(locker.sim.relay_pin(n) for n in (1, 2, 3))
        for door in locker.sim.doors.values():
            door.open_delay_s = 0.0
        start = threading.Barrier(3)

        def go(n: int) -> object:
            start.wait(timeout=HANG_GUARD_S)
            return locker.open(n)

        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(go, (1, 2, 3)))
    finally:
        locker.close()

    assert [type(r) for r in results] == [Opened, Opened, Opened]
    assert len(overlaps) == 9 and max(overlaps) == 1
    assert locker.sim.max_energised == 1  # the door model's relay-pin listener agrees
    assert all(levels(p)[-2:] == [True, False] for p in pins)


# ---- the relay is off in every path ---------------------------------------------------------------


def test_an_exception_mid_pulse_leaves_the_relay_off_and_the_compartment_usable(build, clock):
    locker = build()
    locker.sim.jam(1)

    def failing_sleep(seconds: float) -> None:
        raise RuntimeError("timer broke")

    locker._sleep = failing_sleep
    with pytest.raises(LockerError, match="compartment 1: the open was interrupted") as caught:
        locker.open(1)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert levels(locker.sim.relay_pin(1)) == [True, False, True]

    locker._sleep = clock.sleep
    locker.sim.set_open_delay(1, 0.0)
    assert isinstance(open_guarded(locker, 1), Opened)


def test_an_interrupt_mid_pulse_propagates_with_the_relay_off(build):
    locker = build(section(relay_active_high=True))

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    locker._sleep = interrupted
    with pytest.raises(KeyboardInterrupt):
        locker.open(2)
    assert levels(locker.sim.relay_pin(2)) == [False, True, False]


def test_a_relay_that_cannot_be_switched_on_is_a_locker_error(build, monkeypatch):
    locker = build()
    relay = locker.sim.relay_pin(1)
    real_set_state = relay._set_state

    def broken(value: bool) -> None:
        if not value:  # active-low: low would energise the solenoid
            raise OSError("GPIO line busy")
        real_set_state(value)

    monkeypatch.setattr(relay, "_set_state", broken)
    with pytest.raises(
        LockerError, match=r"relay on GPIO5 could not be switched on .*check the relay board power"
    ):
        locker.open(1)
    assert levels(relay) == [True] and locker.sim.door(1).pulses == 0


def test_close_mid_pulse_switches_the_relay_off_and_close_is_idempotent(build, factory):
    locker = build(section(relay_active_high=True))

    def close_during_pulse(seconds: float) -> None:
        assert locker.sim.relay_pin(1).state  # on now
        locker.close()

    locker._sleep = close_during_pulse
    with pytest.raises(LockerError, match="the locker was closed while waiting"):
        locker.open(1)
    assert levels(locker.sim.relay_pin(1)) == [False, True, False]

    locker.close()
    with pytest.raises(LockerError, match="the locker is closed"):
        locker.open(2)
    with pytest.raises(LockerError, match="the locker is closed"):
        locker.door_state(2)
    make_locker(section(), factory).close()  # the pins were released


def hanging_pulse(
    locker: GpioLocker, n: int
) -> tuple[threading.Event, concurrent.futures.Future[object]]:
    """Start open(n) with a pulse that lasts until the returned event is set (the door stays shut)."""
    locker.sim.jam(n)
    release = threading.Event()
    locker._sleep = lambda seconds: release.wait(HANG_GUARD_S)
    future = in_thread(lambda: locker.open(n))
    wait_until(lambda: locker.sim.door(n).energised, "solenoid on")
    return release, future


def test_close_from_another_thread_does_not_wait_for_a_hanging_pulse(build):
    locker = build(section(relay_active_high=True))
    release, future = hanging_pulse(locker, 2)

    locker.close()
    assert levels(locker.sim.relay_pin(2)) == [False, True, False]

    release.set()
    with pytest.raises(LockerError, match="closed"):
        future.result(timeout=HANG_GUARD_S)


def test_the_exit_hook_switches_a_pulsing_relay_off(build):
    locker = build()
    release, future = hanging_pulse(locker, 3)

    hardware_module.shutdown_all()  # what atexit runs, before gpiozero's own clean-up
    assert levels(locker.sim.relay_pin(3)) == [True, False, True]
    release.set()
    with pytest.raises(LockerError):
        future.result(timeout=HANG_GUARD_S)


EXIT_SCRIPT = """
import atexit, sys, threading, time
seen = {}
# Registered first, so it runs last: after the locker's exit hook and gpiozero's own.
atexit.register(lambda: print("relay", [bool(s.state) for s in seen["relay"].states]))
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin
from drivers.locker import make_locker
from kiosk.config import Compartment, LockerSection
cfg = LockerSection(kind="sim", relay_active_high=True,
                    compartments=(Compartment(number=1, relay_pin=5, sensor_pin=6),))
Device.pin_factory = MockFactory(pin_class=MockPin)  # gpiozero's exit clean-up sees these pins
locker = make_locker(cfg, Device.pin_factory, sleep=lambda s: threading.Event().wait(60))
seen["relay"] = locker.sim.relay_pin(1)
seen["relay"].clear_states()
locker.sim.jam(1)
threading.Thread(target=locker.open, args=(1,), daemon=True).start()
while not locker.sim.door(1).energised:
    time.sleep(0.001)
sys.exit(0)  # mid-pulse
"""


def test_interpreter_exit_mid_pulse_switches_the_relay_off():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_SCRIPT)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    # gpiozero alone would release the pin still high: [False, True]
    assert done.stdout.strip() == "relay [False, True, False]", done.stdout + done.stderr


def test_a_garbage_collected_locker_switches_off_and_releases_its_pins(factory):
    locker = make_locker(section(), factory, poll_s=0.001)
    relay = locker.sim.relay_pin(1)
    del locker
    gc.collect()

    wait_until(lambda: relay.function == "input", "relay pin released")
    make_locker(section(), factory).close()


# ---- set-up ----------------------------------------------------------------------------------------


def test_pins_already_in_use_are_a_locker_error(build, factory):
    build()
    with pytest.raises(
        LockerError, match=r"compartment 1: relay on GPIO5 could not be set up .*no other program"
    ):
        make_locker(section(kind="gpio"), factory)


def test_kind_gpio_without_a_gpio_driver_points_to_the_simulator(monkeypatch):
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    with pytest.raises(LockerError, match=r'no GPIO driver could be loaded .*kind = "sim"'):
        make_locker(section(kind="gpio"))


def test_kind_sim_without_a_factory_makes_and_closes_its_own(events):
    locker = make_locker(section(pulse_ms=50))  # real time, the simulator's default door delay
    locker.watch(events)
    factory = locker.sim.factory
    try:
        assert isinstance(factory, MockFactory)
        assert isinstance(locker.open(1), Opened)
        events.expect(OPENED, 1)
    finally:
        locker.close()
    assert factory.pins == {}


# ---- bare mock pins, no door model (kind = "gpio" on a MockFactory) ----------------------------


def test_the_adapter_on_bare_mock_pins(factory, events):
    sensor = factory.pin(6)
    locker = make_locker(section(kind="gpio"), factory, poll_s=0.001, debounce_s=0.0)
    try:
        assert locker.sim is None
        locker.watch(events)
        # Stock MockPin: the pull-up reads high (open) until the test closes the reed switch.
        sensor.drive_low()
        events.expect(CLOSED, 1)
        assert locker.door_state(1) is DoorState.CLOSED
        relay = factory.pin(5)
        relay.clear_states()
        locker._sleep = lambda seconds: sensor.drive_high()  # the door pops during the pulse

        assert isinstance(locker.open(1), Opened)
        relay.assert_states([True, False, True])
        assert levels(relay) == [True, False, True]
        events.expect(OPENED, 1)
        sensor.drive_low()
        events.expect(CLOSED, 1)
    finally:
        locker.close()
    assert relay.function == "input"  # released after being switched off
