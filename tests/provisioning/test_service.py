"""The service manager port (provisioning/service.py) and the updater's bookkeeping
(provisioning/update.py) without installs: the unit parsed as the process adapter runs it, a
recycled pid never signalled, systemd's readiness through a stand-in systemctl on PATH (no
systemd here), pruning, and a bad artifact (exit 2, nothing changed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioning.service import ProcessService, SystemdService, parse_unit
from provisioning.target import Target
from provisioning.update import Updater, main

REPO = Path(__file__).parents[2]


def test_the_kiosk_unit_is_read_as_systemd_would_run_it():
    spec = parse_unit((REPO / "systemd/kiosk.service").read_text())
    assert spec.exec_start == ["/opt/kiosk/current/bin/kiosk", "--config", "/etc/kiosk/kiosk.toml", "run"]  # fmt: skip
    assert spec.environment["KIVY_HOME"] == "/var/lib/kiosk/kivy"
    assert spec.environment["SDL_VIDEODRIVER"] == "kmsdrm"
    assert spec.environment["PYTHONUNBUFFERED"] == "1"
    assert (spec.working_directory, spec.runtime_directory, spec.state_directory) == (
        "/var/lib/kiosk",
        "kiosk",
        "kiosk",
    )
    assert spec.timeout_stop_s == 20


def test_the_process_adapter_maps_paths_into_the_root_and_takes_overrides(tmp_path):
    service = ProcessService(Target(tmp_path), {"SDL_VIDEODRIVER": "offscreen"})
    spec = parse_unit((REPO / "systemd/kiosk.service").read_text())
    env = service._environment(spec, "@sock")
    assert env["KIVY_HOME"] == f"{tmp_path}/var/lib/kiosk/kivy"
    assert env["XDG_RUNTIME_DIR"] == f"{tmp_path}/run/kiosk"
    assert env["RUNTIME_DIRECTORY"] == f"{tmp_path}/run/kiosk"
    assert env["SDL_VIDEODRIVER"] == "offscreen" and env["NOTIFY_SOCKET"] == "@sock"
    assert env["KIVY_NO_ARGS"] == "1"


def test_a_pidfile_naming_another_program_is_never_signalled(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        service = ProcessService(Target(tmp_path))
        service.pidfile.parent.mkdir(parents=True)
        service.pidfile.write_text(f"{other.pid}\n")
        assert service.pid() is None and not service.is_running()
        service.stop()
        assert other.poll() is None  # still running
    finally:
        other.kill()
        other.wait()


FAKE_SYSTEMCTL = """#!/bin/sh
# systemctl as a stand-in: records calls; "show" answers from the next line of $STATES
echo "$*" >> "$CALLS"
case "$1" in
  show) n=$(cat "$COUNT" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$COUNT"
        line=$(sed -n "${n}p" "$STATES"); [ -n "$line" ] || line=$(tail -n 1 "$STATES")
        echo "LoadState=loaded"; echo "$line" | tr ' ' '\\n';;
esac
"""


@pytest.fixture
def systemctl(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text(FAKE_SYSTEMCTL)
    fake.chmod(0o755)
    files = {name: tmp_path / name for name in ("CALLS", "STATES", "COUNT")}
    for name, path in files.items():
        monkeypatch.setenv(name, str(path))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return files


def states(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def test_systemd_ready_means_a_new_main_pid_active(systemctl, monkeypatch):
    monkeypatch.setattr("provisioning.service.POLL_S", 0.01)
    systemctl["STATES"].write_text(states(
        "ActiveState=active SubState=running MainPID=100",  # before the restart
        "ActiveState=active SubState=running MainPID=100",  # the job has not started yet
        "ActiveState=activating SubState=start MainPID=200",  # waiting for READY=1
        "ActiveState=active SubState=running MainPID=200",
    ))  # fmt: skip
    service = SystemdService()
    service.restart()
    ready = service.wait_ready(30)
    assert ready.ready and "pid 200" in ready.detail, ready
    calls = systemctl["CALLS"].read_text().splitlines()
    assert "restart --no-block kiosk.service" in calls


def test_systemd_a_start_that_fails_is_not_ready(systemctl, monkeypatch):
    monkeypatch.setattr("provisioning.service.POLL_S", 0.01)
    systemctl["STATES"].write_text(states(
        "ActiveState=active SubState=running MainPID=100",
        "ActiveState=activating SubState=auto-restart MainPID=0 Result=exit-code",
    ))  # fmt: skip
    service = SystemdService()
    service.restart()
    ready = service.wait_ready(30)
    assert not ready.ready and "auto-restart (result exit-code)" in ready.detail


def fake_release(root: Path, version: str) -> None:
    folder = root / "opt/kiosk/releases" / version
    folder.mkdir(parents=True)
    (folder / "release.json").write_text(json.dumps({"version": version}))
    time.sleep(0.01)  # installed_versions orders by the mark's mtime


def test_pruning_keeps_the_newest_and_never_the_current_or_previous(tmp_path, capsys):
    for v in ("1", "2", "3", "4", "5"):
        fake_release(tmp_path, v)
    updater = Updater(Target(tmp_path), ProcessService(Target(tmp_path)), tmp_path / "u.log")
    updater.prune(3, "5", "1")
    left = sorted(p.name for p in (tmp_path / "opt/kiosk/releases").iterdir())
    assert left == ["1", "4", "5"]
    assert "removed old release 2 (keeping 3)" in capsys.readouterr().out


def test_a_bad_artifact_exits_2_and_changes_nothing(tmp_path, capsys):
    junk = tmp_path / "kiosk-9.tar"
    junk.write_bytes(b"not a tar")
    root = tmp_path / "root"
    root.mkdir()
    assert main([str(junk), "--root", str(root)]) == 2
    assert "kiosk-provision update: " in capsys.readouterr().err
    assert list(root.iterdir()) == []
