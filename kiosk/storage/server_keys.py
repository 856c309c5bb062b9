"""The store's member-code public keys on disk: ``[server] public_key_file``.

One base64 key (raw 32 bytes) per line, current first: one line normally, two while the store
rotates its signing key. Enrollment writes the file, and the sync worker rewrites it when a
heartbeat answer announces other keys; either way atomically (temp file, fsync, rename), so a
power cut leaves the old keys or the new ones. A file of one line, as enrollment wrote before key
rotation existed, reads as one key.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from pathlib import Path

from kiosk.domain.member_codes import TrustedKeys, load_public_key, load_public_keys
from kiosk.errors import JournalError
from kiosk.storage.atomic import write_file_atomic

__all__ = ["ServerKeyFile", "write_public_keys"]

log = logging.getLogger(__name__)
KEY_FILE_MODE = 0o644  # public keys: the kiosk user and its tools read them


def write_public_keys(path: Path, keys_b64: Sequence[str]) -> None:
    """Replace the key file with ``keys_b64`` (already checked); OSError as it comes."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_file_atomic(path, "".join(k.strip() + "\n" for k in keys_b64).encode(), KEY_FILE_MODE)


class ServerKeyFile:
    """The key file and the :class:`TrustedKeys` read from it, kept in step: ``update`` (the
    sync worker's ``on_keys``) writes the file, then swaps the keys the verifiers use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.trusted: TrustedKeys | None = None

    def load(self) -> TrustedKeys | None:
        """The keys in the file; None when there is none yet (not enrolled). ConfigError
        when it holds no valid keys."""
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise JournalError(
                f"cannot read the store's public keys {self.path} ({exc}): re-enroll the kiosk"
            ) from None
        if not text.strip():
            return None
        self.trusted = TrustedKeys(load_public_keys(text))
        return self.trusted

    def update(self, keys_b64: Sequence[str]) -> None:
        """Trust these keys (current first) from now on: the file first, then memory. A
        heartbeat that announces the same keys writes nothing."""
        keys = [load_public_key(k) for k in keys_b64]
        raw = tuple(k.public_bytes_raw() for k in keys)
        if self.trusted is not None and self.trusted.raw() == raw:
            return
        try:
            write_public_keys(self.path, [base64.b64encode(r).decode("ascii") for r in raw])
        except OSError as exc:
            raise JournalError(
                f"cannot store the store's new public keys in {self.path} ({exc}): make the "
                "state folder writable"
            ) from None
        if self.trusted is None:
            self.trusted = TrustedKeys(keys)
        else:
            self.trusted.replace(keys)
        log.warning("store public keys now %d (current first): %s", len(raw),
                    ", ".join(base64.b64encode(r).decode()[:12] + "..." for r in raw))  # fmt: skip
