"""Where provisioning applies (the machine itself, or a folder with ``--root``) and how it runs tools.

Every step names paths as they are on the kiosk (``/etc/kiosk``) and maps them through
``Target.path``, so the same step provisions a live Pi and an image tree or test folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import KioskError

log = logging.getLogger(__name__)

# Tools live in sbin, which is not on PATH for a non-login SSH command or a plain user.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


class ProvisionError(KioskError):
    """A provisioning step could not be done; the message says what to do."""


@dataclass(frozen=True)
class Target:
    """The system being provisioned: ``/`` (this machine) or an image/test folder."""

    root: Path
    dry_run: bool = False
    as_root: bool = False  # euid 0: may chown and run useradd/systemctl on the system

    @classmethod
    def make(cls, root: Path | None, dry_run: bool) -> Target:
        return cls(Path("/") if root is None else root.resolve(), dry_run, os.geteuid() == 0)

    @property
    def live(self) -> bool:
        """True when provisioning this machine itself (no ``--root``)."""
        return self.root == Path("/")

    def path(self, device_path: str | os.PathLike[str]) -> Path:
        """The file that is ``device_path`` on the kiosk, under ``root``."""
        relative = str(device_path).lstrip("/")
        return self.root / relative if relative else self.root

    def root_args(self, flag: str) -> list[str]:
        """``[flag, root]`` for tools that take one (``systemctl --root``), or nothing when live."""
        return [] if self.live else [flag, str(self.root)]

    def where(self) -> str:
        return "this machine (/)" if self.live else f"{self.root} (--root)"


def which(name: str) -> str | None:
    """The absolute path of a tool, looking in the sbin folders too."""
    found = shutil.which(name)
    if found:
        return found
    for folder in _SBIN:
        candidate = Path(folder) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def need(name: str, package: str) -> str:
    """``which(name)`` or a ProvisionError saying which package provides it."""
    found = which(name)
    if found is None:
        raise ProvisionError(f"{name} not found: install it (apt-get install {package})")
    return found


def run(
    argv: Sequence[str],
    *,
    what: str,
    timeout_s: float = 120,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a tool; with ``check`` a failure is a ProvisionError naming ``what`` and its output."""
    log.info("running %s", " ".join(argv))
    try:
        result = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, "LC_ALL": "C.UTF-8", **(env or {})},
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ProvisionError(
            f"{what}: {argv[0]} did not finish within {timeout_s:.0f} s: check the network "
            "and the tool, then run kiosk-provision again"
        ) from None
    except OSError as exc:
        raise ProvisionError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from None
    if check and result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()[-5:]
        raise ProvisionError(
            f"{what}: `{' '.join(argv)}` exited with status {result.returncode}: "
            + (" / ".join(output) or "no output")
        )
    return result
