"""The door alarms as the composition root wires them: the core's locker, outbox and sync
worker, the buzzer from ``[alarm] buzzer_pin``, and the restock service's exception."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from drivers.indicator import GpioAlarmOutput
from drivers.printer import make_printer
from drivers.printer.sim_printer import VirtualPrinter
from kiosk.ports import LockerEvent, LockerEventKind
from kiosk.services.door_alarms import AlarmReason
from kiosk.services.staff_auth import StaffSession
from kiosk.sync.client import StoreServerClient
from kiosk.sync.records import SyncSettings
from kiosk.wiring import build_core
from storeserver import kiosks
from tests.kiosk.services.rig import KIOSK, ServerSide
from tests.kiosk.test_wiring import config, wait_for


@pytest.fixture
def core(tmp_path) -> Iterator:
    server = ServerSide(tmp_path / "server")
    cfg = config(tmp_path, server.url, alarm={"buzzer_pin": 12})
    enroller = StoreServerClient.from_config(cfg.server)
    enroller.enroll(server.enrollment_code(), KIOSK)
    enroller.close()
    paper = VirtualPrinter(tmp_path / "paper")
    # the worker's next cycle is an hour away: a door alarm must go out at once anyway
    slow = SyncSettings(heartbeat_s=3600, refresh_s=3600, wheel_ids=("LUCKY",))
    core = build_core(cfg, printer=make_printer(cfg.printer, sim=paper), sync_settings=slow)
    core.server = server
    core.start()
    try:
        wait_for(lambda: core.sync.status().last_ok_at is not None)
        yield core
    finally:
        core.stop()
        paper.stop()
        server.stop()


def server_alerts(core) -> list[dict]:
    return kiosks.list_alerts(core.server.store.db.connection(), KIOSK)


def test_a_forced_door_sounds_the_configured_buzzer_and_reaches_the_server_at_once(core):
    assert isinstance(core.alarms.output, GpioAlarmOutput) and not core.alarms.output.on
    core.locker.sim.force_open(3)
    wait_for(lambda: core.alarms.active() != ())
    (alarm,) = core.alarms.active()
    assert (alarm.compartment, alarm.reason) == (3, AlarmReason.TAMPER)
    assert core.alarms.output.on
    wait_for(lambda: len(server_alerts(core)) == 1)  # within seconds, not the hour
    (listed,) = server_alerts(core)
    assert listed["kind"] == "door_alarm" and listed["detail"]["compartment"] == 3

    core.locker.sim.close_door(3)
    wait_for(lambda: core.alarms.active() == ())
    assert not core.alarms.output.on
    assert server_alerts(core) == [listed]  # the server's alert stays until handled


def test_the_core_tells_the_alarms_which_doors_staff_opened_in_restock(core):
    session = core.restock.start(StaffSession("S0001", "王店长", online=False))
    session.open_compartment(2)
    core.alarms.on_event(_left_open(2))  # as the locker reports it after door_close_timeout_s
    assert core.alarms.active() == ()
    core.alarms.on_event(_left_open(4))  # a door no one in restock opened
    assert [a.compartment for a in core.alarms.active()] == [4]
    core.locker.sim.close_door(2)
    assert session.wait_closed(timeout_s=5)
    session.finish()


def _left_open(n: int) -> LockerEvent:
    return LockerEvent(LockerEventKind.LEFT_OPEN, n, time.monotonic(), {"open_s": 120.0})
