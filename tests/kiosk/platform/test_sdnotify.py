"""sd_notify against a real AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.platform.sdnotify import WatchdogPinger, notify, watchdog_interval_s


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET: collects each datagram with its arrival time."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.messages: list[tuple[float, str]] = []

    def receive(self, window_s: float) -> list[str]:
        """Everything that arrives within ``window_s`` seconds."""
        got = []
        deadline = time.monotonic() + window_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            self.messages.append((time.monotonic(), data.decode()))
            got.append(data.decode())
        return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd() -> Iterator[tuple[FakeSystemd, dict[str, str]]]:
    # A short folder: an AF_UNIX path must fit in 108 bytes, pytest's tmp_path may not.
    folder = tempfile.mkdtemp(prefix="sdn-", dir="/tmp")
    path = os.path.join(folder, "notify")
    fake = FakeSystemd(path)
    try:
        yield fake, {"NOTIFY_SOCKET": path}
    finally:
        fake.close()
        shutil.rmtree(folder)


class MainLoop:
    """A stand-in for Kivy's loop: a thread calling ``ping`` every 10 ms unless blocked.

    The real app with its Kivy loop blocked: commands/test_run.py's
    test_a_blocked_kivy_main_loop_stops_the_watchdog_pings."""

    def __init__(self, pinger: WatchdogPinger) -> None:
        self.pinger = pinger
        self.running = threading.Event()
        self.running.set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.running.wait()  # "blocked": a long call on the UI thread
            self.pinger.ping()
            time.sleep(0.01)

    def __enter__(self) -> MainLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.running.set()
        self.thread.join(2)


def test_ready_then_watchdog_pings_arrive_and_stop_while_the_loop_is_blocked(systemd):
    fake, env = systemd
    env = {**env, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())}  # 0.1 s
    pinger = WatchdogPinger(env=env)
    assert pinger.interval_s == pytest.approx(0.05)
    with MainLoop(pinger) as loop:
        first = fake.receive(0.35)
        assert first[0] == "READY=1\nSTATUS=serving members\n"
        pings = [m for m in first[1:] if m == "WATCHDOG=1\n"]
        # about one per 50 ms, although ping() ran every 10 ms
        assert 3 <= len(pings) <= 8, first
        assert len(pings) == len(first) - 1

        loop.running.clear()  # the UI thread hangs
        fake.receive(0.02)  # a ping already in flight
        assert fake.receive(0.3) == [], "pings went on while the main loop was blocked"

        loop.running.set()  # it recovers (systemd would have restarted it by now)
        assert "WATCHDOG=1\n" in fake.receive(0.2)
    assert first.count("READY=1\nSTATUS=serving members\n") == 1


def test_blocked_loop_lets_the_watchdog_deadline_pass(systemd):
    """What systemd sees: the gap between two pings exceeds WATCHDOG_USEC only when blocked."""
    fake, env = systemd
    deadline_s = 0.2  # WatchdogSec: pings every 0.1 s
    pinger = WatchdogPinger(env={**env, "WATCHDOG_USEC": "200000"})
    with MainLoop(pinger) as loop:
        fake.receive(0.45)
        healthy = [t for t, m in fake.messages if m.startswith("WATCHDOG")]
        assert len(healthy) >= 2  # (how even the pings are is a timing: not asserted here)
        loop.running.clear()
        time.sleep(0.4)
        loop.running.set()
        fake.receive(0.15)
    times = [t for t, m in fake.messages if m.startswith("WATCHDOG")]
    assert max(b - a for a, b in itertools.pairwise(times)) > deadline_s


def test_abstract_namespace_socket():
    name = f"kiosk-test-{uuid.uuid4().hex}"
    fake = FakeSystemd("\0" + name)
    try:
        assert notify(
            ready=True, status="recovering\ntransactions", env={"NOTIFY_SOCKET": "@" + name}
        )
        assert fake.receive(0.5) == ["READY=1\nSTATUS=recovering transactions\n"]
    finally:
        fake.close()


def test_stopping_and_status(systemd):
    fake, env = systemd
    pinger = WatchdogPinger(env=env)
    pinger.status("safe mode: journal corrupt")
    pinger.stopping()
    assert fake.receive(0.3) == [
        "STATUS=safe mode: journal corrupt\n",
        "STOPPING=1\nSTATUS=stopping\n",
    ]


def test_without_notify_socket_everything_is_a_no_op():
    pinger = WatchdogPinger(env={"WATCHDOG_USEC": "100000"})
    pinger.ping()
    pinger.ping()
    pinger.status("x")
    pinger.stopping()
    assert not pinger.enabled and not pinger.ready_sent and pinger.pings == 0
    assert notify(ready=True, env={}) is False


def test_rate_limit_with_a_fake_clock():
    sent: list[str] = []
    now = [100.0]
    pinger = WatchdogPinger(
        env={"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "10000000"},  # 10 s: ping every 5 s
        clock=lambda: now[0],
        sender=lambda m: sent.append(m) or True,
    )
    for step in range(100):  # 100 frames over 10 s
        now[0] = 100.0 + step * 0.1
        pinger.ping()
    assert sent[0].startswith("READY=1") and sent[1:] == ["WATCHDOG=1\n"]
    now[0] = 110.0
    pinger.ping()
    assert sent[1:] == ["WATCHDOG=1\n"] * 2 and pinger.pings == 2


def test_ready_is_retried_until_systemd_takes_it():
    answers = iter([False, True])
    sent: list[str] = []
    pinger = WatchdogPinger(
        env={"NOTIFY_SOCKET": "/run/x"}, sender=lambda m: sent.append(m) or next(answers)
    )
    pinger.ping()
    assert not pinger.ready_sent
    pinger.ping()
    assert pinger.ready_sent and len(sent) == 2 and all(m.startswith("READY") for m in sent)
    pinger.ping()  # no WATCHDOG_USEC: nothing more to send
    assert len(sent) == 2


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "4242"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, None),  # another process's
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env, expected):
    assert watchdog_interval_s(env, pid=4242) == expected


def test_send_failure_is_logged_not_raised(tmp_path: Path, caplog):
    gone = "/tmp/sdn-missing-" + uuid.uuid4().hex
    assert notify(watchdog=True, env={"NOTIFY_SOCKET": gone}) is False
    assert "sd_notify" in caplog.text
    assert notify(ready=True, env={"NOTIFY_SOCKET": "relative/path"}) is False
