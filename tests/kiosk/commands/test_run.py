"""``kiosk run`` end to end, as systemd starts it: a subprocess with the real app offscreen,
simulated devices, the reference store server on loopback and a fake NOTIFY_SOCKET.

The watchdog test blocks the real Kivy main loop: the kiosk runs through a few lines of test
code around ``kiosk.__main__.main`` (no hook in the product) that, on SIGUSR1, schedule a
Kivy callback that sleeps, marking its start and end on the notify socket. No WATCHDOG=1 may
arrive between the marks, and the pings must come back after.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.commands.run import EX_CONFIG
from kiosk.config import load_config
from kiosk.demo.rig import RigTiming, kiosk_toml
from kiosk.sync.client import StoreServerClient
from tests.kiosk.platform.test_sdnotify import FakeSystemd
from tests.kiosk.services.rig import KIOSK, ServerSide


@pytest.fixture
def systemd() -> Iterator[tuple[FakeSystemd, str]]:
    folder = tempfile.mkdtemp(prefix="sdn-", dir="/tmp")  # AF_UNIX paths are short
    path = os.path.join(folder, "notify")
    fake = FakeSystemd(path)
    try:
        yield fake, path
    finally:
        fake.close()
        shutil.rmtree(folder)


def kiosk_env(tmp_path: Path, notify_socket: str, watchdog_usec: int | None = None) -> dict:
    env = dict(os.environ)
    env.update(
        NOTIFY_SOCKET=notify_socket,
        SDL_VIDEODRIVER="offscreen",
        KIVY_HOME=str(tmp_path / "kivy"),
        KIVY_NO_ARGS="1",
    )
    env.pop("WATCHDOG_PID", None)
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    return env


def receive_until(fake: FakeSystemd, wanted: str, timeout_s: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got += fake.receive(0.5)
        if any(wanted in m for m in got):
            return got
    raise AssertionError(f"no {wanted!r} within {timeout_s} s; got {got}")


def test_a_bad_config_exits_78_and_tells_systemd_why(tmp_path, systemd):
    fake, socket_path = systemd
    bad = tmp_path / "kiosk.toml"
    bad.write_text('[kiosk]\nid = "k"\ncolour = "red"\n')
    run = subprocess.run(
        [sys.executable, "-m", "kiosk", "--config", str(bad), "run"],
        env=kiosk_env(tmp_path, socket_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == EX_CONFIG, run.stderr
    assert "colour" in run.stderr  # the journal line names the bad key
    status = fake.receive(1.0)
    assert any(m.startswith("STATUS=configuration error") and "colour" in m for m in status)
    assert not any("READY=1" in m for m in status)


@pytest.fixture
def enrolled(tmp_path) -> Iterator[Path]:
    """A kiosk config enrolled with the reference store server on loopback."""
    server = ServerSide(tmp_path / "store")
    try:
        config = tmp_path / "kiosk.toml"
        config.write_text(kiosk_toml(tmp_path / "state", server.url, RigTiming()))
        cfg = load_config(config)
        assert cfg.kiosk.id == KIOSK
        client = StoreServerClient.from_config(cfg.server)
        client.enroll(server.enrollment_code(), KIOSK)
        client.close()
        yield config
    finally:
        server.stop()


def start_kiosk(argv: list[str], tmp_path: Path, socket_path: str) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        env={k: v for k, v in kiosk_env(tmp_path, socket_path, 1_000_000).items()
             if k != "ESCPOS_CAPABILITIES_PICKLE_DIR"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def stop_kiosk(proc: subprocess.Popen) -> str:
    """SIGTERM, as systemd stops it; its output. A kiosk that does not stop is killed."""
    try:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_the_kiosk_is_ready_pings_the_watchdog_and_stops_cleanly_on_sigterm(
    tmp_path, systemd, enrolled
):
    fake, socket_path = systemd
    argv = [sys.executable, "-m", "kiosk", "--config", str(enrolled), "run"]
    proc = start_kiosk(argv, tmp_path, socket_path)
    try:
        got = receive_until(fake, "READY=1", 90)
        assert any(m.startswith("STATUS=starting") for m in got)
        # WatchdogSec=1 s: a ping every half second from the UI loop
        got = receive_until(fake, "WATCHDOG=1", 5)
        got += fake.receive(1.5)
        assert sum(m == "WATCHDOG=1\n" for m in got) >= 2, got
    finally:
        out = stop_kiosk(proc)
    assert proc.returncode == 0, out
    assert any("STOPPING=1" in m for m in fake.receive(0.5) + got), got
    assert "signal SIGTERM: stopping" in out and "locker closed: all relays off" in out
    # python-escpos keeps its parsed printer database in the state folder, not in /tmp
    assert list((tmp_path / "state" / "cache").glob("*.capabilities.pickle"))


BLOCK_S = 3.0  # beyond WatchdogSec=1 s: systemd would have killed this kiosk
BLOCKED, FREE = "STATUS=test: UI loop blocked\n", "STATUS=test: UI loop free\n"
# `kiosk run`, plus a SIGUSR1 handler that blocks the Kivy main loop for argv[1] seconds
BLOCKING_KIOSK = f"""
import signal, sys, time
from kiosk.__main__ import main
from kiosk.platform.sdnotify import send

def hang(_dt):
    send({BLOCKED!r})
    time.sleep(float(sys.argv[1]))
    send({FREE!r})

def on_usr1(_signum, _frame):
    from kivy.clock import Clock  # loaded by then: the app is running
    Clock.schedule_once(hang, 0)

signal.signal(signal.SIGUSR1, on_usr1)
sys.exit(main(sys.argv[2:]))
"""


def test_a_blocked_kivy_main_loop_stops_the_watchdog_pings(tmp_path, systemd, enrolled):
    fake, socket_path = systemd
    argv = [sys.executable, "-c", BLOCKING_KIOSK, str(BLOCK_S), "--config", str(enrolled), "run"]
    proc = start_kiosk(argv, tmp_path, socket_path)
    try:
        receive_until(fake, "READY=1", 90)
        got = receive_until(fake, "WATCHDOG=1", 5)
        proc.send_signal(signal.SIGUSR1)
        got += receive_until(fake, FREE, BLOCK_S + 5)
        got += receive_until(fake, "WATCHDOG=1", 3)  # the loop runs again: so do the pings
    finally:
        out = stop_kiosk(proc)
    assert proc.returncode == 0, out
    messages = [m for _, m in fake.messages]
    start, end = messages.index(BLOCKED), messages.index(FREE)
    assert "WATCHDOG=1\n" in messages[:start], messages  # pinging before
    assert "WATCHDOG=1\n" not in messages[start:end], messages  # none while blocked
    assert "WATCHDOG=1\n" in messages[end:], messages  # and again after
    times = [t for t, m in fake.messages if m == "WATCHDOG=1\n"]
    assert max(b - a for a, b in itertools.pairwise(times)) >= BLOCK_S  # systemd's view
