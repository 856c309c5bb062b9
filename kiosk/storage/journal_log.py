"""The journal's durable files: an append-only change log and an atomically replaced snapshot.

Both files hold *frames*. A frame is one line::

    <length: 8 hex digits> <crc32: 8 hex digits> <compact JSON payload>\\n

`length` is the payload's size in bytes (UTF-8) and `crc32` its zlib CRC-32. JSON escapes
every control character, so the only newline in a frame is its last byte.

Recovery rules (docs/journal.md explains why):

- A SIGKILL can cut the last `os.write` short, leaving a prefix of a frame at the end of the
  log. Such a *torn tail* holds no newline (a frame's only newline is its last byte), was never
  acknowledged, and is cut off at open. Power loss can leave zero bytes there: also no newline.
- Anything else that does not decode - a bad CRC, a bad header, a wrong terminator, bytes that
  are followed by a newline - is *corruption*, even in the last line: a torn write cannot
  produce it. So is a snapshot that does not decode.

One `append()` is one `os.write` of one frame and one `os.fsync`: atomic (a torn frame is
dropped at replay) and proportional to the change, whatever the size of the journal.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.errors import JournalError
from kiosk.storage.atomic import fsync_dir, write_file_atomic

log = logging.getLogger(__name__)

HEADER_BYTES = 18  # "%08x %08x "
_HEADER = re.compile(rb"([0-9a-f]{8}) ([0-9a-f]{8}) ")
_MAX_FRAME_PAYLOAD = 0xFFFFFFFF


class JournalCorrupt(JournalError):
    """A journal file holds bytes that no crash can explain: it must be moved aside."""

    def __init__(self, path: Path, offset: int, why: str) -> None:
        self.path, self.offset, self.why = path, offset, why
        super().__init__(
            f"journal file {path} is corrupt at byte {offset}: {why}; it was not written by an "
            "interrupted step, so the kiosk cannot trust it (move it aside and call a technician)"
        )


def encode_frame(payload: dict[str, Any]) -> bytes:
    """One frame for `payload`; JournalError if it is not plain JSON (no NaN, str keys)."""
    try:
        body = json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise JournalError(
            f"cannot journal {payload!r:.200}: {exc}; records must be JSON objects of str, int, "
            "float (finite), bool, None, lists and dicts with str keys"
        ) from exc
    if len(body) > _MAX_FRAME_PAYLOAD:
        raise JournalError(f"cannot journal a {len(body)}-byte payload: 4 GB is the frame limit")
    return b"%08x %08x " % (len(body), zlib.crc32(body)) + body + b"\n"


@dataclass
class ScanResult:
    """What decoding a log's bytes found: good payloads, where they end, and a torn tail."""

    payloads: list[dict[str, Any]] = field(default_factory=list)
    good_bytes: int = 0
    torn_tail_bytes: int = 0


def _frame_at(data: bytes, pos: int) -> tuple[dict[str, Any] | None, int, str]:
    """Decode the frame at `pos`: (payload, end, "") if good, else (None, pos, why)."""
    header = _HEADER.match(data, pos)
    if header is None:
        return None, pos, "incomplete" if len(data) - pos < HEADER_BYTES else "bad frame header"
    length, crc = int(header[1], 16), int(header[2], 16)
    start = pos + HEADER_BYTES
    end = start + length
    if end + 1 > len(data):
        return None, pos, "incomplete"
    if data[end : end + 1] != b"\n":
        return None, pos, "frame does not end where its length says"
    body = data[start:end]
    if zlib.crc32(body) != crc:
        return None, pos, "checksum mismatch"
    try:
        payload = json.loads(body)
    except ValueError:
        return None, pos, "checksum matches but the payload is not JSON"
    if not isinstance(payload, dict):
        return None, pos, "payload is not a JSON object"
    return payload, end + 1, ""


def scan_frames(data: bytes, path: Path) -> ScanResult:
    """Decode every frame in `data`; drop a torn tail; raise JournalCorrupt for anything else."""
    result = ScanResult()
    pos = 0
    while pos < len(data):
        payload, end, why = _frame_at(data, pos)
        if payload is None:
            if b"\n" not in data[pos:] and why in ("incomplete", "bad frame header"):
                result.torn_tail_bytes = len(data) - pos
                break
            raise JournalCorrupt(path, pos, why)
        result.payloads.append(payload)
        pos = result.good_bytes = end
    return result


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_snapshot(path: Path, payload: dict[str, Any]) -> int:
    """Replace `path` atomically with one frame: temp file, fsync, os.replace, fsync of folder."""
    frame = encode_frame(payload)
    try:
        write_file_atomic(path, frame)
    except OSError as exc:
        raise JournalError(
            f"cannot write journal snapshot {path} ({exc.strerror}): check free space and the "
            "SD card; the log still holds every step, so the journal is intact"
        ) from exc
    return len(frame)


def read_snapshot(path: Path) -> tuple[dict[str, Any] | None, int]:
    """The snapshot's payload and size, or (None, 0) if there is none; JournalCorrupt if bad."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, 0
    except OSError as exc:
        raise JournalError(
            f"cannot read journal snapshot {path} ({exc.strerror}): check its permissions "
            "and the SD card"
        ) from exc
    # A snapshot only ever appears whole (os.replace), so even a torn one is corruption.
    payload, end, why = _frame_at(data, 0)
    if payload is None:
        raise JournalCorrupt(path, 0, f"unreadable snapshot ({why})")
    if end != len(data):
        raise JournalCorrupt(path, end, "unexpected bytes after the snapshot frame")
    return payload, len(data)


class JournalLog:
    """The append-only change log: open() replays it, append() makes one frame durable.

    Not thread-safe on its own: the Journal owner serialises calls under its lock.
    """

    def __init__(self, path: Path, fd: int, payloads: list[dict[str, Any]], size: int) -> None:
        self.path = path
        self._fd: int | None = fd
        self.replayed = payloads  # the payloads found at open, oldest first
        self.size = size  # bytes in the file now
        self.entries = len(payloads)  # frames in the file now
        self.bytes_appended = 0  # since open, for benches and tests

    @classmethod
    def open(cls, path: Path) -> JournalLog:
        """Read and check the log at `path` (created if missing); cut off a torn tail."""
        try:
            data = path.read_bytes()
            existed = True
        except FileNotFoundError:
            data, existed = b"", False
        except OSError as exc:
            raise JournalError(
                f"cannot read journal log {path} ({exc.strerror}): check its permissions "
                "and the SD card"
            ) from exc
        scan = scan_frames(data, path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(
                f"cannot open journal log {path} for writing ({exc.strerror}): make "
                f"{path.parent} writable by the kiosk user"
            ) from exc
        try:
            if scan.torn_tail_bytes:
                # Appending after the torn bytes would turn them into mid-log corruption.
                log.warning(
                    "journal log %s: dropping a torn last frame (%d bytes, never acknowledged)",
                    path,
                    scan.torn_tail_bytes,
                )
                os.ftruncate(fd, scan.good_bytes)
                os.fsync(fd)
            if not existed:
                os.fsync(fd)
                fsync_dir(path.parent)
        except OSError as exc:
            os.close(fd)
            raise JournalError(
                f"cannot repair journal log {path} ({exc.strerror}): check free space and the "
                "SD card"
            ) from exc
        return cls(path, fd, scan.payloads, scan.good_bytes)

    def _require_fd(self) -> int:
        if self._fd is None:
            raise JournalError(f"journal log {self.path} is closed: open the journal again")
        return self._fd

    def append(self, frame: bytes) -> None:
        """Write one encoded frame and fsync it: one write, one fsync, len(frame) bytes."""
        fd = self._require_fd()
        try:
            _write_all(fd, frame)
            os.fsync(fd)
        except OSError as exc:
            # The frame may be half on disk and fsync's error state is not reliable after a
            # failure: stop writing. The next open drops a torn tail.
            self.close()
            raise JournalError(
                f"cannot write journal log {self.path} ({exc.strerror}): the step was not "
                "recorded; check free space and the SD card, then restart the kiosk"
            ) from exc
        self.size += len(frame)
        self.entries += 1
        self.bytes_appended += len(frame)

    def reset(self) -> None:
        """Empty the log (after a snapshot holds everything in it)."""
        fd = self._require_fd()
        try:
            os.ftruncate(fd, 0)
            os.fsync(fd)
        except OSError as exc:
            self.close()
            raise JournalError(
                f"cannot empty journal log {self.path} ({exc.strerror}): check the SD card, "
                "then restart the kiosk (the snapshot and log are still consistent)"
            ) from exc
        self.size = self.entries = 0

    def close(self) -> None:
        """Close the file; later appends raise JournalError."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
