"""What a scanned QR payload is: its text, and which kind of code it looks like.

Pure functions, no I/O. Classification is by prefix only: whether a code is genuine (signature,
expiry, replay) is decided later by the member-code verification, which needs keys and state.
"""

from __future__ import annotations

import enum

__all__ = ["PayloadKind", "classify_payload", "payload_text"]


class PayloadKind(enum.Enum):
    """What a scanned QR payload looks like (signature checks come later, in the core)."""

    MEMBER = "member"
    STAFF = "staff"
    TECHNICIAN = "technician"
    UNKNOWN = "unknown"


# The member-code format is LK1.<M|S|T>.<subject>... (storeserver/codes.py).
_PREFIXES: tuple[tuple[str, PayloadKind], ...] = (
    ("LK1.M.", PayloadKind.MEMBER),
    ("LK1.S.", PayloadKind.STAFF),
    ("LK1.T.", PayloadKind.TECHNICIAN),
)


def classify_payload(text: str) -> PayloadKind:
    """The kind of code ``text`` looks like, from its prefix; anything else is UNKNOWN.

    Surrounding whitespace is ignored, as the code parser ignores it; the prefix is
    case-sensitive, as the format is.
    """
    stripped = text.strip()
    for prefix, kind in _PREFIXES:
        if stripped.startswith(prefix):
            return kind
    return PayloadKind.UNKNOWN


def payload_text(data: bytes) -> str:
    """Decode a QR payload's bytes: UTF-8, else GB18030, else UTF-8 with U+FFFD; never raises."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")
