"""``kiosk demo --tour DIR`` end to end in a subprocess (the real app offscreen, the store server
on loopback, simulated devices), and the relay that cuts the demo's network."""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import threading

import pytest

from kiosk.demo.network import TcpRelay
from kiosk.demo.slowness import scaled, slow_factor

STEPS = 24  # kiosk/demo/tour.py: one screenshot per step
TOUR_TIMEOUT_S = 120  # it takes about 30 s here; the bound keeps a hang from stalling CI
# (times KIOSK_SLOW_FACTOR, which the tour in the subprocess reads too)


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


def test_the_tour_reaches_every_screen_and_keeps_screenshots_and_receipts(tmp_path):
    out = tmp_path / "tour"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["KIVY_HOME"] = str(tmp_path / "kivy-home")
    run = subprocess.run(
        [sys.executable, "-m", "kiosk", "demo", "--tour", str(out), "--state-dir",
         str(tmp_path / "state")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=scaled(TOUR_TIMEOUT_S),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert f"{STEPS} steps, {STEPS} ok" in run.stdout
    rows = [line for line in run.stdout.splitlines() if re.match(r"\d\d-", line)]
    assert len(rows) == STEPS and all(" ok " in row for row in rows), run.stdout
    # the factor it ran with, and per step the wait that came nearest its (scaled) bound
    assert f"slow factor {slow_factor():g} (KIOSK_SLOW_FACTOR" in run.stdout
    assert re.search(
        rf"wheel-landed .* [\d.]+ of {30 * slow_factor():g} s \(\d+%\) the wheel", run.stdout
    )

    shots = sorted(out.glob("[0-9][0-9]-*.png"))
    assert [p.name[:2] for p in shots] == [f"{n:02d}" for n in range(1, STEPS + 1)]
    assert all(png_size(p) == (800, 480) for p in shots)
    names = {p.stem[3:] for p in shots}
    assert {"attract-english", "payment", "payment-expired", "wheel-landed", "paper-out",
            "door-jammed", "offline", "redeemed-offline", "staff-slip", "diagnostics",
            "maintenance"} <= names  # fmt: skip

    texts = sorted((out / "receipts").glob("receipt-*.txt"))
    pictures = sorted((out / "receipts").glob("receipt-*.png"))
    assert len(texts) == len(pictures) >= 8
    printed = "\n".join(p.read_text() for p in texts)
    for kind in ("REDEMPTION RECEIPT", "POINTS + CASH RECEIPT", "REFUND VOUCHER",
                 "CLAIM VOUCHER", "RESTOCK SLIP"):  # fmt: skip
        assert kind in printed, kind


# ---- the relay ---------------------------------------------------------------------------------


@pytest.fixture
def echo_server():
    """A TCP echo server on loopback: what the relay forwards to."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()
    stop.set()
    listener.close()


def echo(port: int, payload: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(payload)
        return conn.recv(4096)


def test_the_relay_forwards_then_refuses_and_breaks_connections_then_comes_back(echo_server):
    relay = TcpRelay(echo_server).start()
    try:
        port = relay.port
        assert echo(port) == b"ping" and relay.up
        kept = socket.create_connection(("127.0.0.1", port), timeout=2)
        kept.sendall(b"one")
        assert kept.recv(16) == b"one"

        relay.cut()
        assert not relay.up
        with pytest.raises(ConnectionRefusedError):
            echo(port)
        try:  # the open connection is broken too: EOF or a reset, never an echo
            kept.sendall(b"two")
            assert kept.recv(16) == b""
        except OSError:
            pass
        kept.close()

        assert relay.toggle() is True
        assert relay.port == port and echo(port, b"back") == b"back"
        assert relay.connections == 3
    finally:
        relay.stop()
