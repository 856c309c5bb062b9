"""A durable :class:`~kiosk.domain.member_codes.NonceStore`: one small JSON file.

Each change rewrites the whole file atomically (temp file, fsync, ``os.replace``, folder
fsync). That is fine here: nonces live about a minute, so the file holds a handful of entries.
The journal can back the guard instead later through the same protocol.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

from kiosk.errors import JournalError

__all__ = ["FileNonceStore"]

log = logging.getLogger(__name__)
_VERSION = 1


class FileNonceStore:
    """Nonces and their expiry (Unix seconds) in a JSON file, written before ``remember`` returns.

    A file that cannot be parsed is moved aside (never deleted) and the store starts empty;
    ``recovered_from`` then names the moved file so the kiosk can alert staff.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.recovered_from: Path | None = None
        self._lock = threading.Lock()
        self._nonces = self._load()

    def seen(self, nonce: str) -> bool:
        with self._lock:
            return nonce in self._nonces

    def remember(self, nonce: str, expires_s: int) -> None:
        with self._lock:
            nonces = dict(self._nonces)
            nonces[nonce] = max(int(expires_s), nonces.get(nonce, int(expires_s)))
            self._write(nonces)
            self._nonces = nonces  # only once it is on disk

    def forget_expired(self, now_s: int) -> None:
        with self._lock:
            kept = {n: e for n, e in self._nonces.items() if e > now_s}
            if len(kept) != len(self._nonces):
                self._write(kept)
                self._nonces = kept

    def __len__(self) -> int:
        with self._lock:
            return len(self._nonces)

    # ---- file -----------------------------------------------------------------------------
    def _load(self) -> dict[str, int]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise JournalError(
                f"cannot read the member-code nonce cache {self.path}: {exc.strerror or exc}: "
                "check the SD card and the state folder's permissions"
            ) from None
        try:
            data = json.loads(raw)
            nonces = data["nonces"]
            if data.get("version") != _VERSION or not isinstance(nonces, dict):
                raise ValueError("unexpected layout")
            return {
                str(n): int(e)
                for n, e in nonces.items()
                if isinstance(e, int) and not isinstance(e, bool)
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._move_aside()

    def _move_aside(self) -> dict[str, int]:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            raise JournalError(
                f"the member-code nonce cache {self.path} is corrupt and cannot be moved aside: "
                f"{exc.strerror or exc}: check the state folder's permissions"
            ) from None
        log.warning("member-code nonce cache %s was corrupt; moved to %s", self.path, aside)
        self.recovered_from = aside
        return {}

    def _write(self, nonces: dict[str, int]) -> None:
        body = json.dumps({"version": _VERSION, "nonces": nonces}, sort_keys=True).encode()
        folder = self.path.parent
        tmp = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            tmp = None
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the rename itself must survive a power cut
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise JournalError(
                f"cannot write the member-code nonce cache {self.path}: {exc.strerror or exc}: "
                "check free space on the SD card and the state folder's permissions"
            ) from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
