"""``kiosk doctor``'s camera check: the configured camera is there, for each scanner kind.

A USB camera is a /dev/videoN node or a stable /dev/v4l/by-id name (docs/drivers.md); the
check lists the by-id names so a technician can pin ``scanner.device`` to one camera. A CSI
camera module (``kind = "picamera2"``) has no node to look for: the check is that Picamera2
imports in the kiosk's Python (it is apt's python3-picamera2, seen only by a venv made with
--system-site-packages); opening it is ``kiosk selftest``'s job, since the running kiosk holds
it. The doctor does not import drivers (OpenCV, libcamera), so it reads /dev itself.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from kiosk.commands.doctor_base import Check, fail, info, ok
from kiosk.config import ScannerSection

FIX_PICAMERA2 = (
    "sudo apt-get install python3-picamera2, and a kiosk venv that sees system packages "
    '(kiosk-provision --system-site-packages); a USB camera is scanner.kind = "camera"'
)


def importable(module: str) -> bool:
    """Whether ``module`` would import here (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def by_id_names(dev: Path) -> list[str]:
    """The stable USB camera names udev made under ``dev``/v4l/by-id."""
    try:
        return sorted(entry.name for entry in (dev / "v4l" / "by-id").iterdir())
    except OSError:
        return []


def camera_check(
    s: ScannerSection, dev: Path, has_module: Callable[[str], bool] = importable
) -> Check:
    """The "camera" line of the doctor's report for ``[scanner]``."""
    if s.kind == "sim" and s.sim_source is not None and not s.sim_source.exists():
        fix = "point scanner.sim_source at a video file or image folder, or remove the key"
        return fail("camera", f"scanner.sim_source {s.sim_source} not found", fix)
    if s.kind == "sim":
        return info("camera", 'simulated (camera kind = "sim"): fine on a desk, not on a kiosk')
    if s.kind == "picamera2":
        if not has_module("picamera2"):
            what = f'scanner.kind = "picamera2" but {sys.executable} cannot import picamera2'
            return fail("camera", what, FIX_PICAMERA2)
        return ok(
            "camera",
            f"CSI camera {s.device} through Picamera2 (importable); `kiosk selftest` opens it, "
            "`rpicam-hello --list-cameras` lists them",
        )
    path = dev / f"video{s.device}" if isinstance(s.device, int) else Path(s.device)
    names = by_id_names(dev)
    stable = f"{dev}/v4l/by-id has: {', '.join(names)}" if names else ""
    if path.exists():
        pinned = "/by-id/" in str(path)
        hint = f" (stable names for scanner.device: {stable})" if stable and not pinned else ""
        return ok("camera", f"{path} present{hint}")
    fix = f"plug the camera in; `ls {dev}/video*` lists cameras: set scanner.device to one"
    if stable:
        fix += f", best a stable name ({stable})"
    return fail("camera", f"{path} not found", fix)
