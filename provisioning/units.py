"""The systemd units from the project's systemd/ folder, installed and enabled.

Every unit file (``*.service``, ``*.timer``, ...) goes to /etc/systemd/system, every
``<name>.conf.d/*.conf`` (journald, the system manager) to /etc/systemd/<name>.conf.d, and a
unit drop-in folder (``kiosk.service.d``) beside its unit. Units with an [Install] section
are enabled with ``systemctl enable`` (``--root DIR`` under --root: it works offline, making
the same symlinks). Nothing is started: the kiosk starts at the next boot.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from provisioning.files import Wanted, differences, install_file
from provisioning.steps import Finding, Step, done, todo
from provisioning.target import ProvisionError, Target, need, run

log = logging.getLogger(__name__)

UNIT_SUFFIXES = (".service", ".timer", ".socket", ".path", ".target")
UNIT_MODE = 0o644
UNITS_HOME = "/etc/systemd/system"
INSTALLED_UNITS = "share/kiosk/systemd"  # under the venv (sys.prefix)
CURRENT_RELEASE = "/opt/kiosk/current"  # provisioning/release_install.py
EXPECTED_STATE_DIR = "/var/lib/kiosk"  # kiosk.service: StateDirectory=kiosk, ReadWritePaths


def default_units_dir() -> Path:
    """The units of the software this code is: a checkout's systemd/, else the installed
    release's ``<venv>/share/kiosk/systemd`` (the wheel carries them, setup.cfg data_files)."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "setup.cfg").is_file() and (checkout / "systemd").is_dir():
        return checkout / "systemd"  # a development checkout (editable install)
    return Path(sys.prefix) / INSTALLED_UNITS


def target_units_dir(target: Target) -> Path:
    """The units to install on ``target``: its current release's (they match the release
    the units run), else those of the software running this (default_units_dir)."""
    installed = target.path(f"{CURRENT_RELEASE}/{INSTALLED_UNITS}")
    return installed if installed.is_dir() else default_units_dir()


def unit_files(units_dir: Path) -> list[tuple[Path, str]]:
    """(source file, device path) for everything the units folder holds to install."""
    if not units_dir.is_dir():
        raise ProvisionError(
            f"no systemd units: {units_dir} is not a folder; run the kiosk-provision of an "
            "installed release (/opt/kiosk/current/bin) or of a checkout, or pass --units-dir"
        )
    found = []
    for entry in sorted(units_dir.iterdir()):
        if entry.is_file() and entry.suffix in UNIT_SUFFIXES:
            found.append((entry, f"{UNITS_HOME}/{entry.name}"))
        elif entry.is_dir() and entry.name.endswith(".conf.d"):
            found += [
                (f, f"/etc/systemd/{entry.name}/{f.name}") for f in sorted(entry.glob("*.conf"))
            ]
        elif entry.is_dir() and entry.name.endswith(".d"):
            found += [
                (f, f"{UNITS_HOME}/{entry.name}/{f.name}") for f in sorted(entry.glob("*.conf"))
            ]
    if not any(src.suffix in UNIT_SUFFIXES for src, _ in found):
        raise ProvisionError(
            f"no unit files (*.service, *.timer) in {units_dir}: check --units-dir"
        )
    return found


def _exec_binaries(text: str) -> list[str]:
    binaries = []
    for match in re.finditer(r"^ExecStart=\s*(\S+)", text, re.MULTILINE):
        binaries.append(match.group(1).lstrip("-@:+!"))
    return binaries


class UnitsStep(Step):
    name = "units"

    def __init__(self, target: Target, units_dir: Path | None, state_dir: str) -> None:
        """``units_dir`` None: target_units_dir(), looked up when used (after the release
        step has made a release current)."""
        self.target, self.given_dir, self.state_dir = target, units_dir, state_dir

    @property
    def units_dir(self) -> Path:
        return self.given_dir or target_units_dir(self.target)

    def _files(self) -> list[tuple[Wanted, bytes]]:
        return [
            (Wanted(dest, UNIT_MODE), src.read_bytes()) for src, dest in unit_files(self.units_dir)
        ]

    def _to_enable(self, files: list[tuple[Wanted, bytes]]) -> list[str]:
        installable = [
            Path(w.path).name
            for w, data in files
            if Path(w.path).parent == Path(UNITS_HOME) and re.search(rb"^\[Install\]", data, re.M)
        ]
        systemctl = need("systemctl", "systemd")
        pending = []
        for unit in installable:
            state = run(
                [systemctl, *self.target.root_args("--root"), "is-enabled", unit],
                what=f"checking whether {unit} is enabled",
                check=False,
            ).stdout.strip()
            if state != "enabled":
                pending.append(unit)
        return pending

    def _notes(self, files: list[tuple[Wanted, bytes]]) -> str:
        notes = []
        for binary in sorted({b for _, data in files for b in _exec_binaries(data.decode())}):
            if not self.target.path(binary).exists():
                if self.target.live:
                    raise ProvisionError(
                        f"the units run {binary}, which is not installed: install a release "
                        "first (kiosk-provision --release ARTIFACT; docs/provisioning.md)"
                    )
                notes.append(
                    f"{binary} is not in {self.target.root} yet: install a release there "
                    "(--release ARTIFACT)"
                )
        if self.state_dir != EXPECTED_STATE_DIR:
            notes.append(
                f"kiosk.state_dir is {self.state_dir} but kiosk.service may write only to "
                f"{EXPECTED_STATE_DIR}: change both together"
            )
        return "".join(f"; note: {n}" for n in notes)

    def check(self) -> Finding:
        files = self._files()
        notes = self._notes(files)
        stale = [w.path for w, data in files if differences(self.target, w, data)]
        pending = self._to_enable(files)
        if not stale and not pending:
            names = ", ".join(Path(w.path).name for w, _ in files)
            return done(f"installed and enabled: {names}{notes}")
        work = [f"install {', '.join(stale)}"] if stale else []
        work += [f"enable {', '.join(pending)}"] if pending else []
        return todo("; ".join(work) + notes)

    def apply(self) -> str:
        files = self._files()
        stale = [(w, data) for w, data in files if differences(self.target, w, data)]
        for wanted, data in stale:
            install_file(self.target, wanted, data)
        pending = self._to_enable(files)
        systemctl = need("systemctl", "systemd")
        if pending:
            run(
                [systemctl, *self.target.root_args("--root"), "enable", *pending],
                what="enabling the kiosk units",
            )
        if self.target.live and Path("/run/systemd/system").is_dir():
            run([systemctl, "daemon-reload"], what="reloading systemd")
        done_ = [f"installed {', '.join(Path(w.path).name for w, _ in stale)}"] if stale else []
        done_ += [f"enabled {', '.join(pending)}"] if pending else []
        return "; ".join(done_) + "; they start at the next boot" + self._notes(files)
