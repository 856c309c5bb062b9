"""Offline verification of signed member, staff and technician codes (``LK1.`` format).

The kiosk holds only the store's Ed25519 public keys, so it can check a code but never mint one.
It trusts one key, or two while the store rotates its key (:class:`TrustedKeys`): a code signed
by any of them is accepted.
Format and rules: docs/member-codes.md. Written independently of ``storeserver.codes`` (the
kiosk does not import the server); tests cross-check the two.

Pure: no I/O. Replay state goes through the :class:`NonceStore` protocol; the durable
one is ``kiosk/storage/nonces.py`` (in the journal).
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.errors import ConfigError, KioskError

__all__ = [
    "CLOCK_SKEW_S",
    "MAX_WINDOW_S",
    "CodeKind",
    "CodeRejected",
    "CodeVerifier",
    "MemoryNonceStore",
    "NonceStore",
    "ReplayGuard",
    "TrustedKeys",
    "VerifiedCode",
    "load_public_key",
    "load_public_keys",
    "trusted_keys",
    "verify_code",
]

PREFIX = "LK1"
CLOCK_SKEW_S = 30  # a code "issued" this far in the future is still accepted (phone clocks drift)
MAX_WINDOW_S = 3600  # members' codes live 60 s; anything over an hour was not made by the app
MAX_CODE_LEN = 256
MAX_KEYS = 4  # current and previous; a server that sends more is not this store's
_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_INT = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[0-9a-f]{16}")
_SIG = re.compile(r"[A-Za-z0-9_-]{86}")  # 64 bytes, base64url without padding
_WHITESPACE = " \t\r\n\x0b\x0c"  # what a scanner may add around the payload


class CodeKind(enum.Enum):
    """Who a code identifies; the value is the letter in the code."""

    MEMBER = "M"
    STAFF = "S"
    TECHNICIAN = "T"


class CodeRejected(KioskError):
    """A scanned code cannot be accepted; ``reason`` is stable, the message says what to do.

    Reasons: ``malformed``, ``forged``, ``expired``, ``not_yet_valid`` (as the store server's
    own verifier), plus ``wrong_kind`` and ``replayed``. ``code`` is the code as read when its
    signature verified but a later check refused it (so the caller can tell whose and what
    kind it is); None when it is malformed or forged.
    """

    def __init__(self, reason: str, message: str, code: VerifiedCode | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class VerifiedCode:
    """A code whose format, signature and time window have been checked."""

    kind: CodeKind
    subject: str
    issued: int  # Unix seconds
    expires: int  # Unix seconds
    nonce: str


def load_public_key(key: bytes | str) -> Ed25519PublicKey:
    """The store's public key from its raw 32 bytes or their base64 (as enrollment returns it)."""
    try:
        raw = base64.b64decode(key.strip(), validate=True) if isinstance(key, str) else key
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError, TypeError):
        raise ConfigError(
            "the store's member-code public key is not a 32-byte Ed25519 key: "
            "re-enroll the kiosk to fetch it again"
        ) from None


def load_public_keys(text: str) -> tuple[Ed25519PublicKey, ...]:
    """The store's trusted keys as the public key file holds them: one base64 key per line,
    current first (a file of one line, as enrollment wrote before key rotation, is one key)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not 1 <= len(lines) <= MAX_KEYS:
        raise ConfigError(
            f"the store's public key file holds {len(lines)} keys (1 to {MAX_KEYS} expected): "
            "re-enroll the kiosk to fetch them again"
        )
    return tuple(load_public_key(line) for line in lines)


class TrustedKeys:
    """The store keys a code may be signed with, current first; replaced whole when the store
    announces others (a key rotation). Iterating gives a snapshot, so any thread may read it
    while the sync worker replaces it."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = self._checked(keys)

    @staticmethod
    def _checked(keys: Iterable[Ed25519PublicKey]) -> tuple[Ed25519PublicKey, ...]:
        got = tuple(keys)
        if not 1 <= len(got) <= MAX_KEYS:
            raise ConfigError(f"the store must send 1 to {MAX_KEYS} public keys, not {len(got)}")
        return got

    def __iter__(self) -> Iterator[Ed25519PublicKey]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def raw(self) -> tuple[bytes, ...]:
        return tuple(k.public_bytes_raw() for k in self._keys)

    def replace(self, keys: Iterable[Ed25519PublicKey]) -> bool:
        """Trust ``keys`` from now on; True if they differ from the keys trusted until now."""
        new = self._checked(keys)
        changed = tuple(k.public_bytes_raw() for k in new) != self.raw()
        self._keys = new  # one reference swap: a reader sees the old tuple or the new one
        return changed


Keys = Ed25519PublicKey | Iterable[Ed25519PublicKey]


def trusted_keys(keys: Keys | bytes | str) -> TrustedKeys:
    """``keys`` as :class:`TrustedKeys`: the same object if it is one already (so a rotation
    the sync worker learns reaches its users), else from a key, keys, raw bytes or the key
    file's text."""
    if isinstance(keys, TrustedKeys):
        return keys
    if isinstance(keys, str):
        return TrustedKeys(load_public_keys(keys))
    if isinstance(keys, bytes):
        return TrustedKeys([load_public_key(keys)])
    if isinstance(keys, Ed25519PublicKey):
        return TrustedKeys([keys])
    return TrustedKeys(keys)


def _signed_by_any(keys: Keys, signature: bytes, signed: bytes) -> bool:
    for key in (keys,) if isinstance(keys, Ed25519PublicKey) else keys:
        try:
            key.verify(signature, signed)
        except InvalidSignature:
            continue
        return True
    return False


def _malformed(detail: str, code: VerifiedCode | None = None) -> CodeRejected:
    return CodeRejected(
        "malformed",
        f"not a valid loyalty code ({detail}): show the code from the member app",
        code,
    )


def _parse(text: object) -> tuple[VerifiedCode, bytes, bytes]:
    """Split a code into its fields, the signed bytes and the signature; no crypto yet."""
    if not isinstance(text, str) or len(text) > MAX_CODE_LEN or not text.isascii():
        raise _malformed("too long or not ASCII")
    text = text.strip(_WHITESPACE)
    parts = text.split(".")
    if len(parts) != 7 or parts[0] != PREFIX:
        raise _malformed(f"expected {PREFIX}. and 7 fields")
    _, kind, subject, issued, expires, nonce, sig = parts
    try:
        code_kind = CodeKind(kind)
    except ValueError:
        raise _malformed(f"unknown kind {kind!r}") from None
    if not _ID.fullmatch(subject):
        raise _malformed("bad subject")
    if not _INT.fullmatch(issued) or not _INT.fullmatch(expires):
        raise _malformed("bad times")
    if not _NONCE.fullmatch(nonce):
        raise _malformed("bad nonce")
    if not _SIG.fullmatch(sig):
        raise _malformed("bad signature encoding")
    signature = base64.urlsafe_b64decode(sig + "==")
    # Only the canonical spelling: the 4 spare bits of the last character must be zero, so one
    # signature has exactly one text form.
    if base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii") != sig:
        raise _malformed("non-canonical signature encoding")
    signed = text.rsplit(".", 1)[0].encode("ascii")
    code = VerifiedCode(code_kind, subject, int(issued), int(expires), nonce)
    return code, signed, signature


def verify_code(
    text: str,
    public_keys: Keys,
    now_s: int,
    *,
    kinds: frozenset[CodeKind] | None = None,
    clock_skew_s: int = CLOCK_SKEW_S,
    max_window_s: int = MAX_WINDOW_S,
) -> VerifiedCode:
    """Check format, signature, window, expiry and issue time, in that order (as the server),
    then the kind. The signature may be by any of ``public_keys`` (one key, or the store's
    current and previous keys: at most two tries).

    ``max_window_s`` is the longest plausible life of a code (issue to expiry): an hour, as
    the server's; a staff badge passes its own (kiosk.domain.staff). Replay is not checked
    here: it needs state (see :class:`ReplayGuard`).
    """
    code, signed, signature = _parse(text)
    if not _signed_by_any(public_keys, signature, signed):
        raise CodeRejected(
            "forged",
            "code signature does not verify: it was not issued by this store "
            "(if every code fails, re-enroll the kiosk to refresh the store key)",
        )
    if code.expires <= code.issued or code.expires - code.issued > max_window_s:
        raise _malformed("validity window is not plausible", code)
    if now_s >= code.expires:
        raise CodeRejected("expired", "code has expired: refresh it in the app", code)
    if code.issued > now_s + clock_skew_s:
        raise CodeRejected(
            "not_yet_valid",
            "code is issued in the future: check the kiosk clock (and the phone's)",
            code,
        )
    if kinds is not None and code.kind not in kinds:
        wanted = " or ".join(sorted(k.name.lower() for k in kinds))
        raise CodeRejected(
            "wrong_kind", f"this is a {code.kind.name.lower()} code; show a {wanted} code", code
        )
    return code


# ---- replay -----------------------------------------------------------------------------------


class NonceStore(Protocol):
    """Where a :class:`ReplayGuard` keeps the nonces it has seen (memory, a file, the journal)."""

    def seen(self, nonce: str) -> bool: ...

    def remember(self, nonce: str, expires_s: int) -> None:
        """Keep ``nonce`` until ``expires_s`` (Unix seconds); durable stores persist it first."""
        ...

    def forget_expired(self, now_s: int) -> None:
        """Drop nonces whose ``expires_s`` is at or before ``now_s``."""
        ...


class MemoryNonceStore:
    """A :class:`NonceStore` in a dict: for tests, and a kiosk without a durable cache."""

    def __init__(self) -> None:
        self._nonces: dict[str, int] = {}

    def seen(self, nonce: str) -> bool:
        return nonce in self._nonces

    def remember(self, nonce: str, expires_s: int) -> None:
        self._nonces[nonce] = max(expires_s, self._nonces.get(nonce, expires_s))

    def forget_expired(self, now_s: int) -> None:
        self._nonces = {n: e for n, e in self._nonces.items() if e > now_s}

    def __len__(self) -> int:
        return len(self._nonces)


class ReplayGuard:
    """Rejects a code whose nonce was seen before, remembering each until its code expires.

    ``grace_s`` keeps a nonce a little past its expiry: if the kiosk clock steps back (an NTP
    correction), an expired code could look valid again, and it must still count as used.
    """

    def __init__(self, store: NonceStore, *, grace_s: int = 2 * CLOCK_SKEW_S) -> None:
        self._store = store
        self._grace_s = grace_s
        self._lock = threading.Lock()  # seen + remember must be one step across threads

    def check(self, code: VerifiedCode, now_s: int) -> None:
        """Accept ``code`` once: raise ``CodeRejected('replayed')`` if its nonce was seen."""
        with self._lock:
            self._store.forget_expired(now_s)
            if self._store.seen(code.nonce):
                raise CodeRejected("replayed", "this code was already used: refresh it in the app")
            self._store.remember(code.nonce, code.expires + self._grace_s)


class CodeVerifier:
    """The store keys, the clock-skew allowance and a replay guard, for the scan use case.

    ``public_keys`` is read at each check: pass :class:`TrustedKeys` to follow rotations."""

    def __init__(
        self,
        public_keys: Keys,
        guard: ReplayGuard,
        *,
        clock_skew_s: int = CLOCK_SKEW_S,
    ) -> None:
        self.public_keys = public_keys
        self.guard = guard
        self.clock_skew_s = clock_skew_s

    def accept(
        self, text: str, now_s: int, *, kinds: frozenset[CodeKind] | None = None
    ) -> VerifiedCode:
        """Verify ``text`` and consume its nonce; any refusal is :class:`CodeRejected`."""
        code = verify_code(
            text, self.public_keys, now_s, kinds=kinds, clock_skew_s=self.clock_skew_s
        )
        self.guard.check(code, now_s)
        return code
