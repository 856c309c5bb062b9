"""Signed member, staff and technician codes (Ed25519), as shown in a QR by the member's app.

Format (ASCII, one line, fits a small QR code)::

    LK1.<kind>.<subject>.<issued>.<expires>.<nonce>.<signature>

kind is ``M`` (member), ``S`` (staff badge) or ``T`` (technician); subject is the member or
staff id, or for ``T`` the kiosk id the code opens ([A-Za-z0-9_-], 1-32 chars); issued and expires are Unix seconds; nonce is 16 hex
digits; signature is the unpadded base64url Ed25519 signature of every byte before the last
dot. The kiosk holds only the public key: it can verify codes but never mint them.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import shown

PREFIX = "LK1"
DEFAULT_VALIDITY_S = 60
CLOCK_SKEW_S = 30
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_NONCE = re.compile(r"^[0-9a-f]{16}$")
_INT = re.compile(r"^[0-9]{1,12}$")


class CodeKind(enum.Enum):
    MEMBER = "M"
    STAFF = "S"
    TECHNICIAN = "T"


class CodeError(ValueError):
    """A code that cannot be accepted; ``reason`` is a stable machine-readable word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SignedCode:
    kind: CodeKind
    subject: str
    issued: int
    expires: int
    nonce: str


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    """Strict unpadded base64url: one spelling per signature (the stock decoder skips junk)."""
    raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    if _b64e(raw) != text:
        raise ValueError("not the canonical spelling")
    return raw


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key, base64 (what kiosks receive at enrollment)."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


Keys = Ed25519PrivateKey | Ed25519PublicKey | Iterable[Ed25519PrivateKey | Ed25519PublicKey]


def public_keys(keys: Keys) -> tuple[Ed25519PublicKey, ...]:
    """The public keys to try: one key (private or public) or several, current first."""
    many = [keys] if isinstance(keys, Ed25519PrivateKey | Ed25519PublicKey) else list(keys)
    return tuple(k.public_key() if isinstance(k, Ed25519PrivateKey) else k for k in many)


def public_keys_b64(keys: Keys) -> list[str]:
    """Each key as enrollment and heartbeats send it (raw 32 bytes, base64), current first."""
    return [base64.b64encode(k.public_bytes_raw()).decode("ascii") for k in public_keys(keys)]


def signed_by_any(keys: Keys, signature: bytes, signed: bytes) -> bool:
    """Whether one of ``keys`` made ``signature`` (at most two: current and previous)."""
    for key in public_keys(keys):
        try:
            key.verify(signature, signed)
        except InvalidSignature:
            continue
        return True
    return False


def issue(
    key: Ed25519PrivateKey,
    kind: CodeKind,
    subject: str,
    now_s: int,
    validity_s: int = DEFAULT_VALIDITY_S,
    nonce: str | None = None,
) -> str:
    if not _ID.match(subject):
        raise ValueError(f"subject {subject!r} must match {_ID.pattern}")
    nonce = nonce or secrets.token_hex(8)
    body = f"{PREFIX}.{kind.value}.{subject}.{now_s}.{now_s + validity_s}.{nonce}"
    return f"{body}.{_b64e(key.sign(body.encode('ascii')))}"


def parse(text: str) -> tuple[SignedCode, bytes, bytes]:
    """Split a code into its fields, the signed bytes and the signature; no crypto yet."""
    if not isinstance(text, str) or len(text) > 256 or not text.isascii():
        raise CodeError("malformed", "not a loyalty code (too long or not ASCII)")
    parts = text.strip().split(".")
    if len(parts) != 7 or parts[0] != PREFIX:
        raise CodeError("malformed", f"not a loyalty code (expected {PREFIX}.<7 fields>)")
    _, kind, subject, issued, expires, nonce, sig = parts
    try:
        code_kind = CodeKind(kind)
    except ValueError:
        raise CodeError("malformed", f"unknown code kind {shown(kind)}") from None
    if not _ID.match(subject) or not _INT.match(issued) or not _INT.match(expires):
        raise CodeError("malformed", "code fields are malformed")
    if not _NONCE.match(nonce):
        raise CodeError("malformed", "code nonce is malformed")
    try:
        signature = _b64d(sig)
    except (binascii.Error, ValueError):
        raise CodeError("malformed", "code signature is not base64url") from None
    if len(signature) != 64:
        raise CodeError("malformed", "code signature has the wrong length")
    signed = text.strip().rsplit(".", 1)[0].encode("ascii")
    return SignedCode(code_kind, subject, int(issued), int(expires), nonce), signed, signature


def verify(keys: Keys, text: str, now_s: int) -> SignedCode:
    """Check format, signature (by any of ``keys``) and time window. Replay checking is the
    caller's (it needs state)."""
    code, signed, signature = parse(text)
    if not signed_by_any(keys, signature, signed):
        raise CodeError("forged", "code signature does not verify: not issued by this store")
    if code.expires <= code.issued or code.expires - code.issued > 3600:
        raise CodeError("malformed", "code validity window is not plausible")
    if now_s >= code.expires:
        raise CodeError("expired", "code has expired: ask the member to refresh it in the app")
    if code.issued > now_s + CLOCK_SKEW_S:
        raise CodeError("not_yet_valid", "code is issued in the future: check the kiosk clock")
    return code
