"""USB camera device paths: /dev/videoN, or the stable /dev/v4l/by-id names udev makes.

``/dev/video0`` is whichever camera the kernel found first, and a second video node (the
camera's metadata node, or another camera) can take its number after a reboot. udev's
``/dev/v4l/by-id/usb-<maker>_<model>_<serial>-video-index0`` names one camera wherever it is
plugged in, and is a symlink to its current ``/dev/videoN``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

BY_ID = Path("/dev/v4l/by-id")


def by_id_names(by_id: Path = BY_ID) -> list[str]:
    """The camera names in ``by_id`` (sorted); none when the folder is missing."""
    try:
        return sorted(entry.name for entry in by_id.iterdir())
    except OSError:
        return []


def what_exists(by_id: Path = BY_ID) -> str:
    """For a "not found" message: the stable names a technician can choose from."""
    names = by_id_names(by_id)
    if not names:
        return f"{by_id} lists no camera (none plugged in, or udev has not named it)"
    return f"{by_id} has: " + ", ".join(names)


def resolved(device: str) -> str:
    """``device`` with its symlinks resolved (by-id name to /dev/videoN), for log lines."""
    return os.path.realpath(device)


def is_capture_device(device: str) -> bool:
    """Whether ``device`` (a path, symlinks followed) is a character device, not a file."""
    try:
        return stat.S_ISCHR(os.stat(device).st_mode)
    except OSError:
        return False
