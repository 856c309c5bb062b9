"""Installed releases side by side: /opt/kiosk/releases/<version>, and /opt/kiosk/current.

Each release is its own venv with the release's wheel installed (``pip install -c`` the
release's constraints.txt, plus the ``[pi]`` extra on aarch64). Its release.json is written
into the venv last, so a folder without one is an interrupted install (it is made again).
``/opt/kiosk/current`` is a relative symlink ``releases/<version>``; the units and the
/usr/local/bin command links go through it, so switching it (atomically: a new link renamed
over the old) switches the software.

Which Python makes the venv: live, the system's /usr/bin/python3. Under ``--root DIR`` that
holds a Python (DIR/usr/bin/python3), as root, the venv is made inside DIR with chroot, so it
is right for the device (an arm64 image on an x86 host runs through binfmt/qemu; /proc and
/dev must be mounted in DIR, and pip's settings reach it through the PIP_* environment;
the host's CA-bundle variables do not, since they name this machine's files).
A plain folder (no Python in it, or not root) gets a venv of this machine's Python: good
for tests, not for a device, and the step's report says so.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from provisioning.release_build import MANIFEST_NAME, ReleaseManifest, extract_release
from provisioning.release_build import read_release as read_release
from provisioning.target import ProvisionError, Target, need, run

log = logging.getLogger(__name__)

KIOSK_HOME = "/opt/kiosk"
RELEASES_DIR = f"{KIOSK_HOME}/releases"
CURRENT_LINK = f"{KIOSK_HOME}/current"
PIP_TIMEOUT_S = 1800  # a Pi on a slow link downloads ~100 MB of wheels
# CA bundles named by the environment: requests (pip's HTTP) takes REQUESTS_CA_BUNDLE and
# CURL_CA_BUNDLE over pip's own cert setting, and OpenSSL reads SSL_CERT_*
HOST_FILE_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
_LINK_RE = re.compile(r"^(?:/opt/kiosk/)?releases/([^/]+)/?$")


@dataclass(frozen=True)
class Interpreter:
    """The Python that makes a release's venv, and how its commands see the paths."""

    prefix: tuple[str, ...]  # ("chroot", DIR) or ()
    python: str
    machine: str  # platform.machine() of that Python: aarch64 gets the [pi] extra
    how: str  # for the report
    target: Target

    def seen(self, device_path: str) -> str:
        """``device_path`` as the commands run by this interpreter see it."""
        return device_path if self.prefix else str(self.target.path(device_path))

    def run(self, *argv: str, what: str, timeout_s: float = 300) -> str:
        return run([*self.prefix, *argv], what=what, timeout_s=timeout_s).stdout


def _target(target: Target | Path) -> Target:
    return target if isinstance(target, Target) else Target.make(Path(target), False)


def interpreter(target: Target) -> Interpreter:
    """The Python for ``target``'s venvs (see the module docstring)."""
    if target.live:
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        return Interpreter((), python, platform.machine(), f"system {python}", target)
    inside = target.path("/usr/bin/python3")
    if (inside.exists() or inside.is_symlink()) and target.as_root:
        # the host's CA-file variables name this machine's files, not DIR's, and pip would
        # take them over its configured cert: unset inside the root (PIP_* still pass)
        unset = [arg for name in HOST_FILE_ENV for arg in ("-u", name)]
        prefix = (need("chroot", "coreutils"), str(target.root), "/usr/bin/env", *unset)
        probe = "import platform; print(platform.machine())"
        machine = run([*prefix, "/usr/bin/python3", "-c", probe], what="asking DIR's python3")
        how = f"{target.root}'s own /usr/bin/python3 through chroot"
        return Interpreter(prefix, "/usr/bin/python3", machine.stdout.strip(), how, target)
    why = "not root: no chroot" if inside.exists() else f"no usr/bin/python3 in {target.root}"
    how = f"this machine's {sys.executable} ({why}; the venv runs here, not on a device)"
    return Interpreter((), sys.executable, platform.machine(), how, target)


def release_dir(target: Target | Path, version: str) -> Path:
    return _target(target).path(f"{RELEASES_DIR}/{version}")


def installed_build(target: Target | Path, manifest: ReleaseManifest) -> bool:
    """Whether ``manifest``'s release is installed, from that very build (its files' sha256);
    a ProvisionError when its version is installed from a different build."""
    mark = release_dir(target, manifest.version) / MANIFEST_NAME
    if not mark.is_file():
        return False
    if json.loads(mark.read_text(encoding="utf-8")).get("files") != manifest.files:
        raise ProvisionError(
            f"release {manifest.version} is already installed from a different build "
            f"(the files' sha256 differ): build this one with another --version"
        )
    return True


def _set_system_site(folder: Path, wanted: bool) -> bool:
    """Make pyvenv.cfg's include-system-site-packages ``wanted``; True if it changed."""
    cfg = folder / "pyvenv.cfg"
    text = cfg.read_text(encoding="utf-8")
    line = f"include-system-site-packages = {'true' if wanted else 'false'}"
    new = re.sub(r"^include-system-site-packages\s*=.*$", line, text, flags=re.M)
    if new == text:
        return False
    cfg.write_text(new, encoding="utf-8")
    return True


def system_site_packages(target: Target | Path, version: str) -> bool:
    """Whether the installed release sees the system's packages (apt's python3-picamera2)."""
    cfg = release_dir(target, version) / "pyvenv.cfg"
    found = re.search(r"^include-system-site-packages\s*=\s*(\S+)", cfg.read_text(), re.M)
    return bool(found and found[1].lower() == "true")


def _make_venv(interp: Interpreter, manifest: ReleaseManifest, staging: str, sss: bool) -> None:
    """The venv, the wheel in it (with the release's constraints), and a check it imports."""
    venv = interp.seen(f"{RELEASES_DIR}/{manifest.version}")
    flags = ["--system-site-packages"] if sss else []
    interp.run(interp.python, "-I", "-m", "venv", *flags, venv, what="making the release's venv")
    extra = "[pi]" if interp.machine == "aarch64" else ""
    pip = [f"{venv}/bin/python", "-I", "-m", "pip", "install", "--no-input"]
    pip += ["-c", f"{staging}/constraints.txt", f"{staging}/{manifest.wheel}{extra}"]
    interp.run(*pip, what=f"installing release {manifest.version}", timeout_s=PIP_TIMEOUT_S)
    probe = "import kiosk; print(kiosk.__version__)"
    said = interp.run(f"{venv}/bin/python", "-I", "-c", probe, what="checking the release")
    if said.strip() != manifest.version:
        raise ProvisionError(
            f"release {manifest.version}: its venv says kiosk {said.strip()}: the artifact's "
            "wheel is not the release it claims; build it again"
        )


def _create(interp: Interpreter, manifest: ReleaseManifest, folder: Path, sss: bool) -> None:
    staging = folder.with_name(f".incoming-{manifest.version}")
    shutil.rmtree(staging, ignore_errors=True)
    umask = os.umask(0o022)  # the kiosk user (not root) must read and run the venv
    try:
        extract_release(manifest.artifact, staging)
        _make_venv(interp, manifest, interp.seen(f"{RELEASES_DIR}/{staging.name}"), sss)
        tmp = folder / f".{MANIFEST_NAME}.tmp"
        tmp.write_text(manifest.to_json(), encoding="utf-8")
        os.replace(tmp, folder / MANIFEST_NAME)  # last: from now on it counts as installed
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # never leave a half venv that looks usable
        raise
    finally:
        os.umask(umask)
        shutil.rmtree(staging, ignore_errors=True)


def install_release(
    target: Target | Path, artifact: Path, *, system_site_packages: bool = False
) -> Path:
    """Install ``artifact`` as ``/opt/kiosk/releases/<version>``; its folder (under the root).

    Idempotent: an installed release of the same build is left as it is (only its
    system-site-packages setting is brought in line). Does not switch ``current``.
    """
    target = _target(target)
    path, _ = install_release_reporting(target, artifact, system_site_packages)
    return path


def install_release_reporting(
    target: Target, artifact: Path, sss: bool = False
) -> tuple[Path, str]:
    """``install_release``, and what it did for the report."""
    manifest = read_release(artifact)
    folder = release_dir(target, manifest.version)
    if installed_build(target, manifest):
        changed = _set_system_site(folder, sss)
        return folder, f"release {manifest.version} already installed" + (
            f"; include-system-site-packages set to {str(sss).lower()}" if changed else ""
        )
    shutil.rmtree(folder, ignore_errors=True)  # an interrupted install
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    interp = interpreter(target)
    log.info("installing release %s into %s with %s", manifest.version, folder, interp.how)
    _create(interp, manifest, folder, sss)
    extra = " with [pi]" if interp.machine == "aarch64" else ""
    return folder, f"installed release {manifest.version}{extra} using {interp.how}"


def installed_versions(target: Target | Path) -> list[str]:
    """The completely installed releases, oldest install first."""
    releases = _target(target).path(RELEASES_DIR)
    if not releases.is_dir():
        return []
    found = [
        (mark.stat().st_mtime_ns, d.name)
        for d in releases.iterdir()
        if not d.name.startswith(".") and (mark := d / MANIFEST_NAME).is_file()
    ]
    return [name for _, name in sorted(found)]


def current_version(target: Target | Path) -> str | None:
    """The version ``/opt/kiosk/current`` points at, or None (no link, or not a release)."""
    link = _target(target).path(CURRENT_LINK)
    if not link.is_symlink():
        return None
    found = _LINK_RE.match(os.readlink(link))
    return found[1] if found else None


def switch_current(target: Target | Path, version: str) -> str | None:
    """Point ``/opt/kiosk/current`` at ``releases/<version>`` atomically; the previous one."""
    target = _target(target)
    if version not in installed_versions(target):
        raise ProvisionError(
            f"release {version} is not installed in {RELEASES_DIR} (installed: "
            f"{', '.join(installed_versions(target)) or 'none'}): install it first"
        )
    link = target.path(CURRENT_LINK)
    if link.exists() and not link.is_symlink():
        raise ProvisionError(f"{CURRENT_LINK} is not a link: move it away, then run again")
    previous = current_version(target)
    tmp = link.with_name(f".current.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(f"releases/{version}", tmp)
    os.replace(tmp, link)
    fd = os.open(link.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)  # the switch survives a power cut
    finally:
        os.close(fd)
    log.info("%s -> releases/%s (was %s)", CURRENT_LINK, version, previous)
    return previous


def remove_release(target: Target | Path, version: str) -> None:
    """Delete an installed release (disk space: each is a few hundred MB); not the current."""
    target = _target(target)
    if version == current_version(target):
        raise ProvisionError(f"release {version} is current: switch to another one first")
    folder = release_dir(target, version)
    if not folder.is_dir() or folder.parent != target.path(RELEASES_DIR):
        raise ProvisionError(f"release {version} is not in {RELEASES_DIR}")
    (folder / MANIFEST_NAME).unlink(missing_ok=True)  # first: a half-deleted one never counts
    shutil.rmtree(folder)
