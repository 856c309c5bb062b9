"""The technician's commands on sudo's PATH: links in /usr/local/bin to the kiosk's venv.

The guides say ``sudo kiosk doctor``, ``sudo kiosk logs TXN`` and ``sudo kiosk-provision ...``.
The commands live in the release the units run the kiosk from (/opt/kiosk/current/bin, the
current release's venv: provisioning/release.py), which is on
nobody's PATH, and sudo replaces PATH with its ``secure_path`` anyway (Debian's:
/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin). /usr/local/bin is in both, so
the links go there. A link that points elsewhere is pointed back; a file that is not a link
is somebody else's and is left alone (the step fails saying so). Under ``--root`` the links
are made in DIR with the device's absolute targets, like ``systemctl --root enable`` does.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from provisioning.steps import Finding, Step, done, todo
from provisioning.target import ProvisionError, Target

log = logging.getLogger(__name__)

VENV_BIN = "/opt/kiosk/current/bin"  # the units' ExecStart= folder (a test keeps them in step)
LINK_DIR = "/usr/local/bin"
COMMANDS = ("kiosk", "kiosk-provision")


class CommandsStep(Step):
    name = "commands"

    def __init__(self, target: Target, commands: tuple[str, ...] = COMMANDS) -> None:
        self.target = target
        self.links = [(f"{LINK_DIR}/{c}", f"{VENV_BIN}/{c}") for c in commands]

    def _work(self) -> list[str]:
        """What differs, for each link; a non-link in the way is a ProvisionError."""
        work = []
        for link, wanted in self.links:
            path = self.target.path(link)
            if path.is_symlink():
                now = os.readlink(path)
                if now != wanted:
                    work.append(f"point {link} at {wanted} (now -> {now})")
            elif path.exists():
                raise ProvisionError(
                    f"{link} is in the way and is not a link (not kiosk-provision's): look at "
                    f"it, remove it, and run again (the guides' `sudo {Path(link).name}` needs "
                    f"the link to {wanted})"
                )
            else:
                work.append(f"link {link} -> {wanted}")
        return work

    def _notes(self) -> str:
        missing = [w for _, w in self.links if not self.target.path(w).exists()]
        if not missing:
            return ""
        if self.target.live:
            raise ProvisionError(
                f"{', '.join(missing)} not installed: install a release first "
                "(kiosk-provision --release ARTIFACT; docs/provisioning.md)"
            )
        return f"; note: {', '.join(missing)} not in {self.target.root} yet: install a release there (--release ARTIFACT)"  # fmt: skip

    def _summary(self, names: list[str] | None = None) -> str:
        names = names or [Path(link).name for link, _ in self.links]
        return f"{', '.join(names)} in {LINK_DIR} -> {VENV_BIN} (on sudo's PATH)"

    def check(self) -> Finding:
        notes = self._notes()
        work = self._work()
        if not work:
            return done(self._summary() + notes)
        return todo("; ".join(work) + notes)

    def apply(self) -> str:
        made = []
        for link, wanted in self.links:
            path = self.target.path(link)
            if path.is_symlink() and os.readlink(path) == wanted:
                continue
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            tmp = path.with_name(f".{path.name}.provision-tmp")
            tmp.unlink(missing_ok=True)
            os.symlink(wanted, tmp)
            os.replace(tmp, path)  # atomic: the command is never missing, even when relinked
            made.append(Path(link).name)
        return f"linked {self._summary(made)}{self._notes()}"
