"""Door alarms (kiosk/services/door_alarms.py) on the simulated locker (gpiozero MockFactory):
a forced door and a door left open raise an alarm, sound the buzzer (a gpiozero Buzzer on the
mock pin factory: its level history is asserted) and queue a ``door_alarm`` event; closing the
door clears the alarm; a door staff opened in a restock session is no alarm. End to end, the
event becomes the store server's staff alert, which stays after the door is shut."""

from __future__ import annotations

import datetime as dt
import queue
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
from gpiozero.pins.mock import MockFactory, MockPin

from drivers.indicator import GpioAlarmOutput
from kiosk.domain.catalog import parse_catalog
from kiosk.ports import LockerEvent, LockerEventKind, Opened
from kiosk.services.door_alarms import AlarmReason, DoorAlarm, DoorAlarms
from kiosk.services.restock import RestockError
from kiosk.services.staff_auth import StaffSession
from storeserver import accounts

from .rig import KIOSK, TZ, KioskSide, ServerSide

BUZZER = 12
LEFT_OPEN_S = 1.0  # the kiosk's [locker] door_close_timeout_s here (120 s on a kiosk)
GUARD_S = 10.0  # a wait that never ends fails the test (no durations are asserted)
WANG = StaffSession("S0001", "王店长 / Manager Wang", online=False)


@dataclass
class Bench:
    kiosk: KioskSide
    alarms: DoorAlarms
    buzzer: MockPin
    seen: queue.Queue[LockerEvent]  # every locker event, once the alarm service handled it

    def expect(self, kind: LockerEventKind, compartment: int) -> LockerEvent:
        """Wait for the locker's next event (the alarm service has handled it by then)."""
        while True:
            event = self.seen.get(timeout=GUARD_S)
            if event.kind is kind and event.compartment == compartment:
                return event

    def door_alarms(self) -> list[dict]:
        return [dict(e.payload) for e in self.kiosk.outbox.pending(50) if e.kind == "door_alarm"]

    def buzzer_levels(self) -> list[bool]:
        return [bool(s.state) for s in self.buzzer.states]


def bench_for(
    kiosk: KioskSide, restocking: Callable[[int], bool] = lambda _n: False
) -> Iterator[Bench]:
    factory = MockFactory(pin_class=MockPin)
    output = GpioAlarmOutput(BUZZER, active_high=True, pin_factory=factory)
    alarms = DoorAlarms(
        kiosk.locker, kiosk.outbox, output,
        restocking=restocking, now=lambda: dt.datetime.now(TZ),
    )  # fmt: skip
    seen: queue.Queue[LockerEvent] = queue.Queue()
    alarms.start()  # subscribes; the probe below wraps the same subscription to see the events
    kiosk.locker.watch(lambda event: (alarms.on_event(event), seen.put(event)))
    try:
        yield Bench(kiosk, alarms, factory.pin(BUZZER), seen)
    finally:
        alarms.stop()
        factory.close()
        factory.reset()


@pytest.fixture
def kiosk(tmp_path) -> Iterator[KioskSide]:
    k = KioskSide(tmp_path / "kiosk", "http://127.0.0.1:1", door_close_timeout_s=LEFT_OPEN_S)
    yield k
    k.close()


@pytest.fixture
def bench(kiosk) -> Iterator[Bench]:
    yield from bench_for(kiosk)


def test_the_service_subscribes_to_the_locker(kiosk):
    factory = MockFactory(pin_class=MockPin)
    alarms = DoorAlarms(kiosk.locker, kiosk.outbox, GpioAlarmOutput(BUZZER, active_high=True,
                        pin_factory=factory))  # fmt: skip
    alarms.start()  # no probe: only the service itself listens
    try:
        kiosk.sim.force_open(4)
        deadline = time.monotonic() + GUARD_S
        while not alarms.active():
            assert time.monotonic() < deadline, "a forced door raised no alarm"
            time.sleep(0.01)
        assert [a.compartment for a in alarms.active()] == [4]
    finally:
        alarms.stop()
        factory.close()
        factory.reset()


def test_a_forced_door_is_an_alarm_on_screen_buzzer_and_outbox(bench):
    shown: list[tuple[DoorAlarm, ...]] = []
    bench.alarms.subscribe(shown.append)
    before = dt.datetime.now(TZ)

    bench.kiosk.sim.force_open(3)
    bench.expect(LockerEventKind.TAMPER, 3)

    (alarm,) = bench.alarms.active()
    assert (alarm.compartment, alarm.reason) == (3, AlarmReason.TAMPER)
    assert before - dt.timedelta(seconds=1) <= alarm.since <= dt.datetime.now(TZ)
    assert shown == [(alarm,)]
    assert bench.buzzer_levels() == [False, True]
    (payload,) = bench.door_alarms()
    assert payload["compartment"] == 3 and payload["what"] == "tamper"
    assert payload["since"] == alarm.since.isoformat(timespec="seconds")
    assert payload["detail"] == "opened with no command"


def test_closing_the_door_clears_the_alarm_and_silences_the_buzzer(bench):
    shown: list[tuple[DoorAlarm, ...]] = []
    bench.alarms.subscribe(shown.append)
    bench.kiosk.sim.force_open(2)
    bench.kiosk.sim.force_open(5)
    bench.expect(LockerEventKind.TAMPER, 2)
    bench.expect(LockerEventKind.TAMPER, 5)
    assert [a.compartment for a in bench.alarms.active()] == [2, 5]

    bench.kiosk.sim.close_door(2)
    bench.expect(LockerEventKind.CLOSED, 2)
    assert [a.compartment for a in bench.alarms.active()] == [5]
    assert bench.buzzer_levels() == [False, True]  # door 5 still sounds it

    bench.kiosk.sim.close_door(5)
    bench.expect(LockerEventKind.CLOSED, 5)
    assert bench.alarms.active() == () and shown[-1] == ()
    assert bench.buzzer_levels() == [False, True, False]
    # the server is still told of both: its alerts stay until staff handle them
    assert [p["compartment"] for p in bench.door_alarms()] == [2, 5]


def test_a_door_left_open_past_the_limit_is_an_alarm_a_commanded_opening_is_not(bench):
    opened_at = dt.datetime.now(TZ)
    assert isinstance(bench.kiosk.locker.open(1), Opened)  # a member's gift: commanded
    bench.expect(LockerEventKind.OPENED, 1)
    assert bench.alarms.active() == () and bench.door_alarms() == []
    assert bench.buzzer_levels() == [False]

    bench.expect(LockerEventKind.LEFT_OPEN, 1)

    (alarm,) = bench.alarms.active()
    assert (alarm.compartment, alarm.reason) == (1, AlarmReason.LEFT_OPEN)
    # since when the door has been open, not since the alarm
    assert (
        opened_at - dt.timedelta(seconds=1)
        <= alarm.since
        <= opened_at + dt.timedelta(seconds=LEFT_OPEN_S)
    )
    assert bench.buzzer_levels() == [False, True]
    (payload,) = bench.door_alarms()
    assert payload["what"] == "left_open" and payload["open_s"] >= LEFT_OPEN_S

    bench.kiosk.shut(1)
    bench.expect(LockerEventKind.CLOSED, 1)
    assert bench.alarms.active() == () and bench.buzzer_levels() == [False, True, False]


def test_a_forced_door_left_open_stays_one_alarm(bench):
    bench.kiosk.sim.force_open(6)
    bench.expect(LockerEventKind.TAMPER, 6)
    bench.expect(LockerEventKind.LEFT_OPEN, 6)
    assert [a.reason for a in bench.alarms.active()] == [AlarmReason.TAMPER]
    assert [p["what"] for p in bench.door_alarms()] == ["tamper"]


def test_a_door_staff_opened_in_a_restock_session_is_no_alarm(kiosk):
    service = kiosk.restock_service(poll_s=0.02)
    for bench in bench_for(kiosk, restocking=service.restocking):
        session = service.start(WANG)
        session.open_compartment(1)
        bench.expect(LockerEventKind.OPENED, 1)
        bench.expect(LockerEventKind.LEFT_OPEN, 1)  # staff filling it for a while
        assert service.restocking(1) and not service.restocking(2)
        assert bench.alarms.active() == () and bench.door_alarms() == []
        assert bench.buzzer_levels() == [False]

        bench.kiosk.sim.force_open(2)  # meanwhile another door is forced: that one is
        bench.expect(LockerEventKind.TAMPER, 2)
        assert [(a.compartment, a.reason) for a in bench.alarms.active()] == [
            (2, AlarmReason.TAMPER)
        ]

        kiosk.shut(1)
        session.finish()
        assert not service.restocking(1)
        kiosk.sim.force_open(1)  # the session is over: the same door forced is an alarm
        bench.expect(LockerEventKind.TAMPER, 1)
        assert [a.compartment for a in bench.alarms.active()] == [1, 2]


def test_a_jammed_door_staff_pull_open_in_restock_is_no_alarm(kiosk):
    service = kiosk.restock_service(
        catalog=parse_catalog({"version": "t", "items": []}), poll_s=0.02
    )
    for bench in bench_for(kiosk, restocking=service.restocking):
        session = service.start(WANG)
        kiosk.sim.jam(3)
        with pytest.raises(RestockError, match="3"):
            session.open_compartment(3)
        kiosk.sim.force_open(3)  # staff pull the jammed door open by hand
        bench.expect(LockerEventKind.TAMPER, 3)
        assert bench.alarms.active() == () and bench.door_alarms() == []


# ---- end to end: the store server on loopback ---------------------------------------------------


@pytest.fixture
def server(tmp_path) -> Iterator[ServerSide]:
    s = ServerSide(tmp_path / "server")
    yield s
    s.stop()


def manager_call(server: ServerSide, method: str, path: str) -> dict:
    """A store manager's call, with a fresh manager account and token."""
    with server.store.db.transaction() as conn:
        account_id = f"manager-{uuid.uuid4().hex[:6]}"
        accounts.add_account(conn, server.clock, account_id, "manager", None)
        _, token = accounts.issue_token(conn, server.clock, account_id)
    resp = requests.request(
        method, server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=GUARD_S
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def manager_get(server: ServerSide, path: str) -> dict:
    return manager_call(server, "GET", path)


def test_the_event_becomes_a_server_alert_that_stays_after_the_door_shuts_until_handled(
    tmp_path, server
):
    kiosk = KioskSide(tmp_path / "online", server.url, server.enrollment_code(),
                      door_close_timeout_s=LEFT_OPEN_S)  # fmt: skip
    try:
        for bench in bench_for(kiosk):
            kiosk.sim.force_open(4)
            bench.expect(LockerEventKind.TAMPER, 4)
            (alarm,) = bench.alarms.active()

            report = kiosk.outbox.settle(kiosk.client.send_events(kiosk.outbox.pending(50)))
            assert report.alerted == 0 and len(kiosk.outbox) == 0  # applied, none refused

            (listed,) = manager_get(server, f"/v1/kiosks/{KIOSK}/alerts")["alerts"]
            assert listed["kind"] == "door_alarm"
            assert listed["detail"] == {
                "compartment": 4, "what": "tamper", "detail": "opened with no command",
                "since": alarm.since.isoformat(timespec="seconds"),
            }  # fmt: skip
            (row,) = manager_get(server, "/v1/kiosks")["kiosks"]
            assert row["open_alerts"] == 1

            kiosk.shut(4)
            bench.expect(LockerEventKind.CLOSED, 4)
            assert bench.alarms.active() == ()
            assert manager_get(server, f"/v1/kiosks/{KIOSK}/alerts")["alerts"] == [listed]

            # ... until staff mark it handled
            manager_call(server, "POST", f"/v1/kiosks/{KIOSK}/alerts/{listed['id']}/handled")
            assert manager_get(server, f"/v1/kiosks/{KIOSK}/alerts")["alerts"] == []
            assert manager_get(server, "/v1/kiosks")["kiosks"][0]["open_alerts"] == 0
    finally:
        kiosk.close()
