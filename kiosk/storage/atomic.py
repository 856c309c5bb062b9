"""Durable whole-file writes: the one place that does temp file, fsync, rename, folder fsync.

Used for the journal's snapshots and the kiosk's token and key files. Small files only: a
file that changes often belongs in the journal, which appends what changed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a new, renamed or removed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(
    path: Path,
    data: bytes,
    mode: int = 0o600,
    *,
    owner: tuple[int, int] | None = None,
    tmp_name: str | None = None,
) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, whole.

    The temp file is ``<name>.tmp`` beside it, or ``tmp_name`` (one writer per file); it is
    removed on failure. Mode and ``owner`` (uid, gid) are set before the file appears.
    Raises OSError; callers turn it into an error that says what to do.
    """
    tmp = path.with_name(tmp_name or path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
