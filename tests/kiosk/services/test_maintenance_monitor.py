"""The maintenance monitor (kiosk/services/maintenance_monitor.py): one worker thread asks the
devices; the answer goes to its callback; a recheck asked while a check runs follows it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from kiosk.domain.receipts import Bilingual
from kiosk.services.maintenance_monitor import MaintenanceMonitor

COVER = Bilingual("打印机机盖打开", "printer cover open")
WAIT_S = 10  # a bound on waiting for the worker, never an assertion about time


class Devices:
    """A check the test steps through: each check waits for ``release`` and answers the next
    reason of ``answers`` (an exception is raised)."""

    def __init__(self, *answers: Bilingual | Exception | None) -> None:
        self.answers = list(answers)
        self.release = threading.Semaphore(0)
        self.started = threading.Semaphore(0)
        self.running = self.most_at_once = 0
        self._lock = threading.Lock()

    def check(self) -> Bilingual | None:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.started.release()
        try:
            assert self.release.acquire(timeout=WAIT_S), "the test never let the check finish"
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        finally:
            with self._lock:
                self.running -= 1


class Results:
    def __init__(self) -> None:
        self.got: list[Bilingual | None] = []
        self.arrived = threading.Semaphore(0)

    def __call__(self, reason: Bilingual | None) -> None:
        self.got.append(reason)
        self.arrived.release()

    def next(self) -> Bilingual | None:
        assert self.arrived.acquire(timeout=WAIT_S), "no result came"
        return self.got[-1]


@pytest.fixture
def results() -> Results:
    return Results()


@pytest.fixture
def monitor_of(results) -> Iterator:
    made: list[MaintenanceMonitor] = []

    def make(devices: Devices) -> MaintenanceMonitor:
        monitor = MaintenanceMonitor(devices.check, results, every_s=None)  # on demand only
        made.append(monitor)
        return monitor

    yield make
    for monitor in made:
        monitor.stop()


def test_start_checks_at_once_and_delivers_the_answer(monitor_of, results):
    devices = Devices(COVER)
    monitor = monitor_of(devices)
    monitor.start()
    assert devices.started.acquire(timeout=WAIT_S)
    assert monitor.checking
    devices.release.release()
    assert results.next() == COVER


def test_a_recheck_asked_during_a_check_follows_it_on_the_same_thread(monitor_of, results):
    devices = Devices(COVER, None)
    monitor = monitor_of(devices)
    monitor.start()
    assert devices.started.acquire(timeout=WAIT_S)
    monitor.check_now()  # the printer's cover was shut meanwhile: ask again
    monitor.check_now()  # asked twice: still one more check
    devices.release.release()
    assert results.next() == COVER
    assert devices.started.acquire(timeout=WAIT_S)  # the second check began after the first
    devices.release.release()
    assert results.next() is None
    assert devices.most_at_once == 1 and results.got == [COVER, None]
    assert not devices.started.acquire(timeout=0.2)  # and no third check was started


def test_a_check_that_crashes_delivers_nothing_and_the_monitor_goes_on(monitor_of, results):
    devices = Devices(RuntimeError("printer driver exploded"), COVER)
    monitor = monitor_of(devices)
    monitor.start()
    devices.release.release()
    assert devices.started.acquire(timeout=WAIT_S)
    monitor.check_now()
    devices.release.release()
    assert results.next() == COVER and results.got == [COVER]


def test_stop_ends_its_thread(monitor_of, results):
    devices = Devices(None)
    monitor = monitor_of(devices)
    monitor.start()
    devices.release.release()
    assert results.next() is None
    threads = [t for t in threading.enumerate() if t.name == "kiosk-maintenance"]
    assert threads
    monitor.stop()
    assert not any(t.is_alive() for t in threads)
