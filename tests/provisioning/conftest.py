"""Fixtures of tests/provisioning: a private sshd on 127.0.0.1 and the store server on loopback
(the fleet and update playbooks' tests)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.provisioning.ssh_rig import IS_ROOT, SSHD, free_port, keygen


@pytest.fixture
def sshd(tmp_path) -> Iterator[dict[str, object]]:
    """A private sshd on 127.0.0.1 accepting the test's own key for the current user."""
    folder = tmp_path / "ssh"
    folder.mkdir()
    host_pub = keygen(folder / "host_key")
    (folder / "authorized_keys").write_text(keygen(folder / "client_key") + "\n")
    if IS_ROOT and not Path("/run/sshd").is_dir():
        Path("/run/sshd").mkdir(mode=0o755)
    log = folder / "sshd.log"
    for _attempt in range(3):  # another process may take the port between choosing and binding
        port = free_port()
        config = folder / "sshd_config"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder}/host_key\n"
            f"PidFile {folder}/sshd.pid\nAuthorizedKeysFile {folder}/authorized_keys\n"
            "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\n"
            "Subsystem sftp internal-sftp\nLogLevel VERBOSE\n"
        )
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        if _wait_for_banner(port, proc):
            break
        _stop(proc)
    else:
        pytest.fail(f"sshd did not start on 127.0.0.1: {log.read_text()[-2000:]}")
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    try:
        yield {"port": port, "folder": folder, "log": log}
    finally:
        _stop(proc)


def _wait_for_banner(port: int, proc: subprocess.Popen, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.settimeout(2)
            if s.recv(64).startswith(b"SSH-2.0-"):
                return True
        time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def store(tmp_path):
    from tests.kiosk.services.rig import ServerSide

    server = ServerSide(tmp_path / "server")
    yield server
    server.stop()
