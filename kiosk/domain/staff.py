"""Staff sign-in rules on the kiosk: the badge check, the PIN lockout and the offline PIN cache.

A staff member restocking the lockers scans their badge (a signed code of kind ``S``, printed
on a card and valid for months) and types a PIN. The store server checks the PIN; when it
cannot be reached, the kiosk checks a salted hash it made itself from the last PIN the server
accepted, if the kiosk may still use it (``cache_days``, and the staff member is not on the
revocation list the server sends with each heartbeat: :class:`RevokedStaff`). Wrong PINs lock
for longer and longer: that rule is kiosk/domain/staff_lockout.py.

Pure: no I/O. Times are Unix seconds passed in by the caller; the salt is random unless given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from kiosk.domain.member_codes import (
    CLOCK_SKEW_S,
    CodeKind,
    CodeRejected,
    Keys,
    VerifiedCode,
    verify_code,
)
from kiosk.errors import UserFacingError

__all__ = [
    "BADGE_MAX_WINDOW_S",
    "CachedPin",
    "PinHash",
    "RevokedStaff",
    "ScryptParams",
    "StaffAuthError",
    "StaffAuthUnavailable",
    "StaffLocked",
    "StaffRejected",
    "check_pin_format",
    "hash_pin",
    "pin_matches",
    "verify_badge",
]

BADGE_MAX_WINDOW_S = 1098 * 86400  # as the server's BADGE_MAX_DAYS: three years
_STAFF_ONLY = frozenset({CodeKind.STAFF})
_PIN = re.compile(r"[0-9]{4,12}")


# ---- errors -------------------------------------------------------------------------------------


class StaffAuthError(UserFacingError):
    """A refused staff sign-in. ``key`` and ``fields`` name its text for the screen
    (``kiosk/locale/staff_auth.toml``); ``str()`` is for the log, with what a technician should
    know (``detail``)."""


class StaffRejected(StaffAuthError):
    """Badge or PIN not accepted. ``reason`` is ``bad_badge`` or ``bad_pin``; ``attempts_left``
    is set for a wrong PIN that was counted."""

    def __init__(
        self,
        reason: str,
        key: str,
        detail: str = "",
        attempts_left: int | None = None,
        **fields: object,
    ) -> None:
        super().__init__(key, detail, **fields)
        self.reason = reason
        self.attempts_left = attempts_left


class StaffLocked(StaffAuthError):
    """Too many wrong PINs: no sign-in for ``seconds_left`` more seconds, or (None) until a
    manager unlocks the staff member on the store server and they sign in online."""

    def __init__(self, seconds_left: int | None, detail: str = "") -> None:
        if seconds_left is None:
            super().__init__("staff.auth.locked_manager", detail)
        elif seconds_left < 60:
            super().__init__("staff.auth.locked_seconds", detail, seconds=seconds_left)
        else:
            minutes = math.ceil(seconds_left / 60)
            super().__init__("staff.auth.locked_minutes", detail, minutes=minutes)
        self.seconds_left = seconds_left


class StaffAuthUnavailable(StaffAuthError):
    """The PIN cannot be checked at all. ``reason``: ``offline_no_cache``,
    ``offline_cache_stale`` or ``journal_safe_mode``."""

    def __init__(self, reason: str, key: str, detail: str = "") -> None:
        super().__init__(key, detail)
        self.reason = reason


# ---- the badge ----------------------------------------------------------------------------------

_BADGE_REFUSALS = {  # reason: its text in kiosk/locale/staff_auth.toml
    "malformed": "staff.auth.badge_malformed",
    "forged": "staff.auth.badge_forged",
    "expired": "staff.auth.badge_expired",
    "not_yet_valid": "staff.auth.badge_not_yet_valid",
    "wrong_kind": "staff.auth.badge_wrong_kind",
}


def verify_badge(
    text: str, public_keys: Keys, now_s: int, *, clock_skew_s: int = CLOCK_SKEW_S
) -> VerifiedCode:
    """Check a scanned staff badge offline: format, signature, kind ``S``, window, expiry.

    ``verify_code`` with a badge's window (up to three years; members' codes get an hour). No
    replay check: a badge is a card scanned every day.
    """
    try:
        return verify_code(
            text,
            public_keys,
            now_s,
            kinds=_STAFF_ONLY,
            clock_skew_s=clock_skew_s,
            max_window_s=BADGE_MAX_WINDOW_S,
        )
    except CodeRejected as exc:
        reason, detail = _badge_refusal(exc)
        raise StaffRejected("bad_badge", _BADGE_REFUSALS[reason], detail=detail) from None


def _badge_refusal(exc: CodeRejected) -> tuple[str, str]:
    """The reason and detail of a refused badge in a badge's words; a code of another kind is
    "wrong_kind" whatever else is wrong with it (as the store server's badge check)."""
    code = exc.code
    if exc.reason == "forged":
        return "forged", (
            "badge signature does not verify: not issued by this store (if every badge "
            "and member code fails, re-enroll the kiosk to refresh the store key)"
        )
    if code is None:  # malformed: nothing in it can be trusted
        return exc.reason, str(exc)
    if code.kind is not CodeKind.STAFF:
        return "wrong_kind", f"a {code.kind.name.lower()} code, not a badge"
    if exc.reason == "expired":
        return "expired", f"badge of {code.subject} expired: print a new one (staff-badge)"
    if exc.reason == "not_yet_valid":
        return "not_yet_valid", "badge issued in the future: check the kiosk clock (NTP)"
    return "malformed", "badge validity window is not plausible"


def check_pin_format(pin: object) -> None:
    """A PIN is 4 to 12 ASCII digits; anything else is refused before it is counted."""
    if not isinstance(pin, str) or not _PIN.fullmatch(pin):
        raise StaffRejected("bad_pin", "staff.auth.pin_format")


# ---- PIN hashes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost. The defaults: 64 MiB and about 0.19 s on an x86_64 server core, so about
    0.9 s on a Raspberry Pi 4 (bench/pin_kdf_bench.py; docs/storeserver.md has the figures and
    what they mean for a stolen SD card). Stored with each hash: raising them later is safe."""

    n: int = 2**16
    r: int = 8
    p: int = 1

    def check(self) -> None:
        # bounds also keep a damaged record from asking for gigabytes
        if not (2**10 <= self.n <= 2**20 and self.n & (self.n - 1) == 0):
            raise ValueError(f"scrypt n={self.n} is not a power of two from 2**10 to 2**20")
        if not (1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise ValueError(f"scrypt r={self.r}, p={self.p} out of range")


_DKLEN = 32
_MAXMEM = 2**30


@dataclass(frozen=True)
class PinHash:
    """A salted scrypt hash of a PIN, with everything needed to check it again."""

    params: ScryptParams
    salt: bytes
    digest: bytes
    alg: str = "scrypt"

    def to_record(self) -> dict[str, Any]:
        return {
            "alg": self.alg,
            "n": self.params.n,
            "r": self.params.r,
            "p": self.params.p,
            "salt": base64.b64encode(self.salt).decode("ascii"),
            "hash": base64.b64encode(self.digest).decode("ascii"),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PinHash:
        """Raises ValueError for anything but a hash this module wrote."""
        if record.get("alg") != "scrypt":
            raise ValueError(f"unknown PIN hash algorithm {record.get('alg')!r}")
        n, r, p = record.get("n"), record.get("r"), record.get("p")
        if not all(type(v) is int for v in (n, r, p)):
            raise ValueError("scrypt parameters are not integers")
        params = ScryptParams(n, r, p)  # type: ignore[arg-type]
        params.check()
        try:
            salt = base64.b64decode(str(record.get("salt")), validate=True)
            digest = base64.b64decode(str(record.get("hash")), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("PIN hash salt or digest is not base64") from None
        if not 16 <= len(salt) <= 64 or len(digest) != _DKLEN:
            raise ValueError("PIN hash salt or digest has the wrong length")
        return cls(params, salt, digest)


def hash_pin(pin: str, params: ScryptParams = ScryptParams(), salt: bytes | None = None) -> PinHash:
    """Hash ``pin`` with a fresh 16-byte salt (or ``salt``); the PIN itself is never kept."""
    check_pin_format(pin)
    params.check()
    salt = salt if salt is not None else secrets.token_bytes(16)
    return PinHash(params, salt, _scrypt(pin, params, salt))


def pin_matches(pin_hash: PinHash, pin: str) -> bool:
    """Whether ``pin`` is the hashed PIN; the digests are compared in constant time."""
    if not isinstance(pin, str) or not _PIN.fullmatch(pin):
        return False
    return hmac.compare_digest(_scrypt(pin, pin_hash.params, pin_hash.salt), pin_hash.digest)


def _scrypt(pin: str, params: ScryptParams, salt: bytes) -> bytes:
    return hashlib.scrypt(
        pin.encode("ascii"),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        dklen=_DKLEN,
        maxmem=_MAXMEM,
    )


@dataclass(frozen=True)
class CachedPin:
    """The kiosk's own hash of the last PIN the server accepted for a staff member."""

    staff_id: str
    name: str
    pin_hash: PinHash
    cached_at: float  # Unix seconds of that online sign-in

    def is_fresh(self, now: float, max_age_s: float) -> bool:
        """Younger than ``max_age_s``; a cache "from the future" (clock set back) is not."""
        age = now - self.cached_at
        return -CLOCK_SKEW_S <= age <= max_age_s

    def to_record(self) -> dict[str, Any]:
        return {"name": self.name, "cached_at": self.cached_at, **self.pin_hash.to_record()}

    @classmethod
    def from_record(cls, staff_id: str, record: dict[str, Any]) -> CachedPin:
        """Raises ValueError for a record this module did not write."""
        name, cached_at = record.get("name"), record.get("cached_at")
        if not isinstance(name, str) or not _opt_time(cached_at) or cached_at is None:
            raise ValueError(f"not a cached staff PIN record for {staff_id}")
        return cls(staff_id, name, PinHash.from_record(record), float(cached_at))


def _opt_time(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


_STAFF_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")  # a badge's subject (storeserver/staff.py)


@dataclass(frozen=True)
class RevokedStaff:
    """What the store server says this kiosk must refuse offline, as of ``version`` (sent with
    every heartbeat answer): ``staff_ids`` may not sign in at all (disabled, or locked until a
    manager unlocks them); badges of staff in ``badges_before`` issued before that Unix second
    are revoked (a lost card)."""

    version: str
    staff_ids: frozenset[str]
    badges_before: dict[str, int] = field(default_factory=dict)

    def refuses(self, badge: VerifiedCode) -> bool:
        """Whether a badge (already verified) must be refused offline."""
        before = self.badges_before.get(badge.subject)
        return badge.subject in self.staff_ids or (before is not None and badge.issued < before)

    def to_record(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "ids": sorted(self.staff_ids),
            "badges_before": dict(sorted(self.badges_before.items())),
        }

    @classmethod
    def from_record(cls, record: object) -> RevokedStaff:
        """From the heartbeat's ``revoked_staff`` or the journal; ValueError for anything else."""
        version = record.get("version") if isinstance(record, dict) else None
        ids = record.get("ids") if isinstance(record, dict) else None
        if not isinstance(version, str) or not 0 < len(version) <= 64:
            raise ValueError(f"revoked staff list without a usable version: {record!r}"[:200])
        if not isinstance(ids, list) or not all(
            isinstance(i, str) and _STAFF_ID.fullmatch(i) for i in ids
        ):
            raise ValueError(f"revoked staff ids are not a list of staff ids: {ids!r}"[:200])
        before = record.get("badges_before", {})  # type: ignore[union-attr]
        if not isinstance(before, dict) or not all(
            isinstance(k, str) and _STAFF_ID.fullmatch(k) and type(v) is int and v >= 0
            for k, v in before.items()
        ):
            raise ValueError(f"revoked badges are not staff ids and times: {before!r}"[:200])
        return cls(version, frozenset(ids), dict(before))
