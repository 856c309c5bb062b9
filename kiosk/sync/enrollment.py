"""What enrollment leaves on the kiosk, for the store server client (kiosk/sync/client.py):
the store's public keys from the enrollment answer, and the kiosk token file, written once
(:func:`store_enrollment`) and read at start (docs/kiosk-sync.md, "Token and key storage")."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kiosk.domain.member_codes import MAX_KEYS
from kiosk.errors import JournalError
from kiosk.storage.atomic import write_file_atomic
from kiosk.storage.server_keys import write_public_keys

__all__ = ["b64", "enrolled_keys", "read_token", "store_enrollment"]


def enrolled_keys(data: Mapping[str, Any]) -> tuple[bytes, ...]:
    """The raw keys of an enrollment answer, current first: ``public_keys`` when the server
    sends it (it must start with ``public_key``), else ``public_key`` alone (older servers);
    () when any is not a 32-byte key."""
    listed = data.get("public_keys", [data["public_key"]])
    if (
        not isinstance(listed, list)
        or not 1 <= len(listed) <= MAX_KEYS
        or listed[0] != data["public_key"]
    ):
        return ()
    try:
        keys = tuple(base64.b64decode(k, validate=True) for k in listed)
    except (binascii.Error, ValueError, TypeError):
        return ()
    return keys if all(len(k) == 32 for k in keys) else ()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def store_enrollment(
    token: str, keys: Sequence[bytes], token_file: Path | None, public_key_file: Path | None
) -> None:
    """Keep an enrollment's token (0600) and the store's public keys, where the config says."""
    try:
        if token_file is not None:
            token_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_file_atomic(token_file, token.encode("ascii") + b"\n", 0o600)
        if public_key_file is not None:
            write_public_keys(public_key_file, [b64(k) for k in keys])
    except OSError as exc:
        raise JournalError(
            f"enrolled, but cannot store the kiosk token or key ({exc}): make the state "
            "folder writable, then enroll again with a new code"
        ) from None


def read_token(token_file: Path) -> str | None:
    """The kiosk token in ``token_file``, or None when there is none (not enrolled yet)."""
    try:
        return token_file.read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise JournalError(
            f"cannot read the kiosk token {token_file}: {exc}: "
            "check the state folder, or re-enroll the kiosk"
        ) from None
