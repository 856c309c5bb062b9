"""The kiosk service, started, stopped and watched: the port ``kiosk-provision update`` uses.

Two adapters, chosen by ``--service-manager`` (``choose_manager``), never by "testing":

- ``SystemdService``: ``systemctl restart --no-block kiosk.service``, then ``systemctl show``
  until it is active/running (the unit is Type=notify: active only after the app's READY=1)
  or failed. The default on a machine booted with systemd when there is no ``--root``.
- ``ProcessService``: no systemd as PID 1 (a container, CI, an image folder under --root):
  runs the installed unit's ``ExecStart=`` (ROOT/etc/systemd/system/kiosk.service, its
  absolute paths and those of ``Environment=`` and ``WorkingDirectory=`` mapped into ROOT,
  ``--service-env`` on top) as a detached process, with ``NOTIFY_SOCKET`` naming a datagram
  socket this process listens on: READY=1 is the real sd_notify the app sends systemd
  (kiosk/platform/sdnotify.py). Its pid is in ROOT/run/kiosk/kiosk.pid, its output appended
  to ROOT/var/log/kiosk.log; stop is SIGTERM, then SIGKILL after the unit's TimeoutStopSec.
  ``User=`` is not applied: it runs as whoever runs the update.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from provisioning.target import ProvisionError, Target, run, which

log = logging.getLogger(__name__)

UNIT = "kiosk.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
PIDFILE = "/run/kiosk/kiosk.pid"
LOGFILE = "/var/log/kiosk.log"
POLL_S = 0.2


@dataclass(frozen=True)
class Readiness:
    ready: bool
    detail: str  # what was seen: "READY=1 after 3.1 s", "exited with status 1", ...


class ServiceManager(Protocol):
    name: str

    def check(self) -> None: ...  # ProvisionError when it cannot manage the kiosk at all
    def restart(self) -> None: ...
    def stop(self) -> None: ...
    def wait_ready(self, timeout_s: float) -> Readiness: ...
    def is_running(self) -> bool: ...
    def last_log(self, lines: int = 20) -> str: ...


# ---- systemd ---------------------------------------------------------------------------------


class SystemdService:
    name = "systemd"

    def __init__(self, unit: str = UNIT) -> None:
        self.unit = unit
        self._since = time.time()
        self._old_pid = "0"  # MainPID before the restart: READY must come from a new one

    def check(self) -> None:
        if self._show().get("LoadState") == "not-found":
            raise ProvisionError(f"{self.unit} is not installed: run kiosk-provision first")

    def _show(self) -> dict[str, str]:
        props = "LoadState,ActiveState,SubState,MainPID,NRestarts,Result"
        out = run(["systemctl", "show", "-p", props, self.unit], what="asking systemd").stdout
        return dict(line.partition("=")[::2] for line in out.splitlines())

    def restart(self) -> None:
        self._since = time.time()
        self._old_pid = self._show().get("MainPID", "0")
        run(["systemctl", "restart", "--no-block", self.unit], what=f"restarting {self.unit}")

    def stop(self) -> None:
        run(["systemctl", "stop", self.unit], what=f"stopping {self.unit}", timeout_s=120)

    def is_running(self) -> bool:
        v = self._show()
        return (v.get("ActiveState"), v.get("SubState")) == ("active", "running")

    def wait_ready(self, timeout_s: float) -> Readiness:
        start = time.monotonic()
        time.sleep(POLL_S)  # --no-block: let the job start before the first look
        while True:
            v = self._show()
            state = f"{v.get('ActiveState')}/{v.get('SubState')}"
            took = time.monotonic() - start
            pid = v.get("MainPID", "0")
            if state == "active/running" and pid not in ("0", self._old_pid):
                return Readiness(
                    True, f"{self.unit} active (READY=1) after {took:.1f} s (pid {pid})"
                )
            if v.get("ActiveState") == "failed" or v.get("SubState") == "auto-restart":
                return Readiness(False, f"{self.unit} {state} (result {v.get('Result')})")
            if took > timeout_s:
                return Readiness(False, f"{self.unit} still {state} after {timeout_s:.0f} s")
            time.sleep(POLL_S * 5)

    def last_log(self, lines: int = 20) -> str:
        since = f"@{int(self._since)}"
        argv = ["journalctl", "-u", self.unit, "--since", since, "-n", str(lines), "--no-pager"]
        return run(argv, what="reading the log", check=False).stdout.rstrip()


# ---- a process, as systemd would run it -------------------------------------------------------


@dataclass
class UnitSpec:
    """What the process adapter takes from a unit file's [Service] section."""

    exec_start: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    working_directory: str | None = None
    runtime_directory: str | None = None
    state_directory: str | None = None
    timeout_stop_s: float = 20.0


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def parse_unit(text: str) -> UnitSpec:
    """The [Service] settings the process adapter honours (ProvisionError without ExecStart)."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        key, sep, value = line.partition("=")
        if sep and section == "[Service]":
            values.setdefault(key.strip(), []).append(value.strip())
    if not values.get("ExecStart"):
        raise ProvisionError(f"{UNIT} has no ExecStart= in [Service]: reinstall the units")
    env: dict[str, str] = {}
    for line in values.get("Environment", []):
        env.update(item.partition("=")[::2] for item in shlex.split(line))
    first = lambda key: values.get(key, [None])[-1]  # noqa: E731
    stop = first("TimeoutStopSec")
    return UnitSpec(
        exec_start=shlex.split(values["ExecStart"][-1].lstrip("-@+!")),
        environment=env,
        working_directory=first("WorkingDirectory"),
        runtime_directory=first("RuntimeDirectory"),
        state_directory=first("StateDirectory"),
        timeout_stop_s=_seconds(stop) if stop else 20.0,
    )


def process_state(pid: int) -> str | None:
    """The kernel's state letter of ``pid`` (None: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def alive(pid: int) -> bool:
    return process_state(pid) not in (None, "Z", "X")


def is_kiosk(pid: int) -> bool:
    """``pid`` runs (not a zombie) and is a kiosk: a recycled pid of another program (a
    pidfile left by a crash) is never signalled."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return alive(pid) and b"kiosk" in cmdline


class ProcessService:
    """The kiosk as a plain process of this machine, launched from the unit under ``target``."""

    name = "process"

    def __init__(self, target: Target, env_overrides: Mapping[str, str] | None = None) -> None:
        self.target = target
        self.overrides = dict(env_overrides or {})
        self.pidfile = target.path(PIDFILE)
        self.logfile = target.path(LOGFILE)
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._log_from = 0

    def _mapped(self, value: str) -> str:
        return str(self.target.path(value)) if value.startswith("/") else value

    def check(self) -> None:
        self.spec()

    def spec(self) -> UnitSpec:
        path = self.target.path(UNIT_PATH)
        try:
            return parse_unit(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProvisionError(f"no {path}: install the units first (kiosk-provision)") from None

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if is_kiosk(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def _environment(self, spec: UnitSpec, notify: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
        env.update({k: self._mapped(v) for k, v in spec.environment.items()})
        if spec.runtime_directory:
            env["RUNTIME_DIRECTORY"] = str(self.target.path(f"/run/{spec.runtime_directory}"))
        if spec.state_directory:
            env["STATE_DIRECTORY"] = str(self.target.path(f"/var/lib/{spec.state_directory}"))
        env.update(self.overrides)
        env["NOTIFY_SOCKET"] = notify
        return env

    def restart(self) -> None:
        self.stop()
        spec = self.spec()
        for kind, name in (("run", spec.runtime_directory), ("var/lib", spec.state_directory)):
            if name:
                self.target.path(f"/{kind}/{name}").mkdir(mode=0o700, parents=True, exist_ok=True)
        self.pidfile.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.logfile.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        name = f"@kiosk-update-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # abstract: no length limit
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.bind("\0" + name[1:])
        argv = [self._mapped(a) for a in spec.exec_start]
        cwd = self._mapped(spec.working_directory) if spec.working_directory else None
        with self.logfile.open("ab") as out:
            self._log_from = out.tell()
            out.write(f"---- {time.strftime('%F %T')} starting {' '.join(argv)}\n".encode())
            out.flush()
            self._proc = subprocess.Popen(
                argv, cwd=cwd, env=self._environment(spec, name), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        tmp = self.pidfile.with_name(".kiosk.pid.tmp")
        tmp.write_text(f"{self._proc.pid}\n")
        os.replace(tmp, self.pidfile)
        log.info("started %s as pid %d", argv[0], self._proc.pid)

    def wait_ready(self, timeout_s: float) -> Readiness:
        if self._sock is None or self._proc is None:
            return Readiness(False, "not started by this update")
        start = time.monotonic()
        self._sock.settimeout(POLL_S)
        while (took := time.monotonic() - start) < timeout_s:
            with contextlib.suppress(TimeoutError):
                said = self._sock.recv(4096).decode("utf-8", "replace")
                if "READY=1" in said.splitlines():
                    self._sock.close()
                    return Readiness(True, f"READY=1 after {took:.1f} s (pid {self._proc.pid})")
            code = self._proc.poll()
            if code is not None:
                return Readiness(False, f"the kiosk exited with status {code} before READY=1")
        return Readiness(False, f"no READY=1 within {timeout_s:.0f} s")

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        spec_timeout = self.spec().timeout_stop_s if self.target.path(UNIT_PATH).exists() else 20
        for sig, wait_s in ((signal.SIGTERM, spec_timeout), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.pid == pid:
                    self._proc.poll()  # reap our own child
                if not alive(pid):
                    self.pidfile.unlink(missing_ok=True)
                    return
                time.sleep(POLL_S)
            log.warning("pid %d did not stop on %s", pid, signal.Signals(sig).name)
        raise ProvisionError(f"the kiosk (pid {pid}) does not stop, even on SIGKILL")

    def last_log(self, lines: int = 20) -> str:
        try:
            with self.logfile.open("rb") as f:
                f.seek(self._log_from)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


def systemd_booted() -> bool:
    return Path("/run/systemd/system").is_dir() and which("systemctl") is not None


def choose_manager(
    name: str | None, target: Target, env: Mapping[str, str] | None = None
) -> ServiceManager:
    """``--service-manager``: systemd or process; None: systemd when this machine was booted
    with it and there is no --root, else the process adapter."""
    if name is None:
        name = "systemd" if target.live and systemd_booted() else "process"
    if name == "systemd":
        if not target.live:
            raise ProvisionError("--service-manager systemd manages this machine: not with --root")
        return SystemdService()
    return ProcessService(target, env)
