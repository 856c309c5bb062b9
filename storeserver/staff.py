"""Staff who sign in at a kiosk to restock it: a signed badge (kind ``S``) plus a PIN.

The badge says who (it is a printed card, so it lives for months, not a minute, and it carries
no replay check: the same card is scanned every day); the PIN proves it is them. PINs are kept
only as salted scrypt hashes. Wrong PINs count per staff member across all kiosks: 5 in a row,
each within 15 minutes of the one before, lock the staff member for 5 minutes (423). A right
PIN resets the count. The kiosk-side mirror of these rules is ``kiosk/domain/staff.py``.

A 4-12 digit PIN has too few values for any hash to keep it secret from someone holding the
database; the lockout and the badge are what protect it. The hash keeps PINs out of sight and
makes cracking them in bulk cost something.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import sqlite3
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import codes
from .clock import Clock, iso, parse_iso
from .db import Database
from .errors import ApiError, BadRequest, Conflict, NotFound, shown
from .text import hidden_character

log = logging.getLogger(__name__)

MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=5)
FAILURE_WINDOW = dt.timedelta(minutes=15)  # a quieter gap between wrong PINs starts a new count
BADGE_DEFAULT_DAYS = 365
BADGE_MAX_DAYS = 1098  # three years: longer than any card should live without a reprint
STAFF_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # a code subject (codes.py)
PIN = re.compile(r"^[0-9]{4,12}$")

# scrypt at 32 MiB and about 0.1 s a check; stored with each hash, so it can be raised later
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN = 2**15, 8, 1, 32
_SCRYPT_MAXMEM = 128 * 2**20


class BadBadge(ApiError):
    """The badge is not a valid, current staff badge of an active staff member."""

    status = 403

    def __init__(self, message: str) -> None:
        super().__init__("bad_badge", message)


class BadPin(ApiError):
    status = 403

    def __init__(self, message: str) -> None:
        super().__init__("bad_pin", message)


class StaffLocked(ApiError):
    """Too many wrong PINs; ``retry_after_s`` goes out as the Retry-After header."""

    status = 423

    def __init__(self, staff_id: str, retry_after_s: int) -> None:
        super().__init__(
            "staff_locked",
            f"staff {staff_id} is locked after {MAX_FAILURES} wrong PINs: try again in "
            f"{retry_after_s} s (or reset the PIN with 'storeserver add-staff --replace')",
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class StaffMember:
    staff_id: str
    name: str
    active: bool


# ---- PIN hashes -----------------------------------------------------------------------------


def check_pin_format(pin: str) -> None:
    if not isinstance(pin, str) or not PIN.match(pin):
        raise BadRequest("invalid_pin", "a staff PIN is 4 to 12 digits")


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64 parts) of a PIN; a fresh random salt unless given."""
    check_pin_format(pin)
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = _scrypt(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    return "$".join(
        ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)]
    )


def pin_matches(stored: str, pin: str) -> bool:
    """Whether ``pin`` hashes to ``stored``, compared in constant time."""
    if not isinstance(pin, str) or not PIN.match(pin):
        return False
    try:
        alg, n, r, p, salt, digest = stored.split("$")
        if alg != "scrypt":
            raise ValueError(f"unknown algorithm {alg!r}")
        want = base64.b64decode(digest, validate=True)
        if len(want) != SCRYPT_DKLEN:  # a cut-short hash would match a cut-short digest
            raise ValueError(f"hash is {len(want)} bytes, not {SCRYPT_DKLEN}")
        got = _scrypt(pin, base64.b64decode(salt, validate=True), int(n), int(r), int(p), len(want))
    except (ValueError, binascii.Error) as exc:
        # a damaged row must not let anyone in, nor crash the request
        log.error("staff PIN hash is unreadable (%s): reset it with add-staff --replace", exc)
        return False
    return hmac.compare_digest(got, want)


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        pin.encode("ascii"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=_SCRYPT_MAXMEM
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# ---- staff records --------------------------------------------------------------------------


def add_staff(
    conn: sqlite3.Connection,
    clock: Clock,
    staff_id: str,
    name: str,
    pin: str,
    *,
    replace: bool = False,
    pin_hash: str | None = None,
) -> StaffMember:
    """Add a staff member (or, with ``replace``, reset their name and PIN, unlock, reactivate).

    ``pin_hash`` is a precomputed ``hash_pin(pin)`` (the demo seed reuses one).
    """
    if not STAFF_ID.match(staff_id):
        raise BadRequest(
            "invalid_staff_id", f"staff id {shown(staff_id)} must match {STAFF_ID.pattern}"
        )
    name = name.strip()
    if not name or len(name) > 64:
        raise BadRequest("invalid_name", "a staff name is 1 to 64 characters")
    if (hidden := hidden_character(name)) is not None:
        raise BadRequest(
            "invalid_name",
            f"the staff name contains the control or formatting character {hidden}: "
            "retype it as plain text",
        )
    check_pin_format(pin)
    exists = conn.execute("SELECT 1 FROM staff WHERE id = ?", (staff_id,)).fetchone()
    if exists and not replace:
        raise Conflict(
            "staff_exists",
            f"staff {staff_id} already exists: pass --replace to set a new name and PIN",
        )
    conn.execute(
        "INSERT INTO staff(id, name, pin_hash, created_at) VALUES (?,?,?,?) "
        "ON CONFLICT(id) DO UPDATE SET name = excluded.name, pin_hash = excluded.pin_hash, "
        "failed_count = 0, last_failed_at = NULL, locked_until = NULL, active = 1",
        (staff_id, name, pin_hash or hash_pin(pin), iso(clock.now())),
    )
    return StaffMember(staff_id, name, True)


def set_active(conn: sqlite3.Connection, staff_id: str, active: bool) -> None:
    """Disable (or enable) a staff member: their badges and cached PINs stop working online."""
    cur = conn.execute("UPDATE staff SET active = ? WHERE id = ?", (int(active), staff_id))
    if cur.rowcount == 0:
        raise NotFound("unknown_staff", f"no staff with id {shown(staff_id)}")


def issue_badge(
    conn: sqlite3.Connection,
    clock: Clock,
    key: Ed25519PrivateKey,
    staff_id: str,
    days: int = BADGE_DEFAULT_DAYS,
) -> dict:
    """A signed badge code for an active staff member, valid ``days`` (for a printed card)."""
    if not 1 <= days <= BADGE_MAX_DAYS:
        raise BadRequest("invalid_days", f"a badge lives 1 to {BADGE_MAX_DAYS} days, not {days}")
    row = conn.execute("SELECT active FROM staff WHERE id = ?", (staff_id,)).fetchone()
    if row is None or not row["active"]:
        raise NotFound(
            "unknown_staff",
            f"no active staff with id {shown(staff_id)}: add them with 'storeserver add-staff'",
        )
    now_s = int(clock.now().timestamp())
    code = codes.issue(key, codes.CodeKind.STAFF, staff_id, now_s, validity_s=days * 86400)
    expires = dt.datetime.fromtimestamp(now_s + days * 86400, dt.UTC)
    return {"staff_id": staff_id, "code": code, "expires_at": iso(expires)}


def badge_subject(key: Ed25519PrivateKey, text: str, now_s: int) -> str:
    """The staff id of a valid staff badge; anything else is :class:`BadBadge`.

    Not ``codes.verify``: that one caps a code's life at an hour (members' codes live 60 s).
    """
    try:
        code, signed, signature = codes.parse(text)
    except codes.CodeError as exc:
        raise BadBadge(f"not a staff badge ({exc}): scan the staff member's badge") from None
    try:
        key.public_key().verify(signature, signed)
    except InvalidSignature:
        raise BadBadge(
            "badge signature does not verify: it was not issued by this store; print a new "
            "one with 'storeserver staff-badge'"
        ) from None
    if code.kind is not codes.CodeKind.STAFF:
        raise BadBadge(
            f"this is a {code.kind.name.lower()} code, not a staff badge: scan the staff badge"
        )
    if not 0 < code.expires - code.issued <= BADGE_MAX_DAYS * 86400:
        raise BadBadge("badge validity window is not plausible: print a new badge")
    if now_s >= code.expires:
        raise BadBadge(
            f"badge of {code.subject} has expired: print a new one with "
            f"'storeserver staff-badge {code.subject}'"
        )
    if code.issued > now_s + codes.CLOCK_SKEW_S:
        raise BadBadge("badge is issued in the future: check the store server's clock")
    return code.subject


# ---- the PIN check --------------------------------------------------------------------------


def verify(
    db: Database,
    clock: Clock,
    key: Ed25519PrivateKey,
    kiosk_id: str,
    badge: str,
    pin: str,
) -> dict:
    """Check a badge and PIN; ``{staff_id, name}`` or BadBadge / BadPin / StaffLocked.

    Unlike other refusals, a wrong PIN changes something: the failure is committed, then
    refused. The slow hash runs outside the write transaction, so other writers do not wait.
    """
    now = clock.now()
    staff_id = badge_subject(key, badge, int(now.timestamp()))
    row = _active_row(db.connection(), staff_id)
    _refuse_if_locked(row, now)
    ok = pin_matches(row["pin_hash"], pin)
    refusal: ApiError | None = None
    with db.transaction() as conn:
        row = _active_row(conn, staff_id)  # another kiosk may have locked it meanwhile
        _refuse_if_locked(row, now)
        if ok:
            conn.execute(
                "UPDATE staff SET failed_count = 0, last_failed_at = NULL, locked_until = NULL "
                "WHERE id = ?",
                (staff_id,),
            )
        else:
            refusal = _count_failure(conn, kiosk_id, row, now)
    if refusal is not None:
        raise refusal
    log.info("staff %s signed in at kiosk %s", staff_id, kiosk_id)
    return {"staff_id": staff_id, "name": row["name"]}


def _active_row(conn: sqlite3.Connection, staff_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM staff WHERE id = ?", (staff_id,)).fetchone()
    if row is None or not row["active"]:
        raise BadBadge(
            f"no active staff {staff_id}: add them with 'storeserver add-staff', or "
            "re-enable them (add-staff --replace)"
        )
    return row


def _refuse_if_locked(row: sqlite3.Row, now: dt.datetime) -> None:
    if row["locked_until"] is None:
        return
    left = (parse_iso(row["locked_until"]) - now).total_seconds()
    if left > 0:
        raise StaffLocked(row["id"], max(1, int(left + 0.999)))


def _count_failure(
    conn: sqlite3.Connection, kiosk_id: str, row: sqlite3.Row, now: dt.datetime
) -> ApiError:
    last = row["last_failed_at"]
    recent = last is not None and now - parse_iso(last) <= FAILURE_WINDOW
    count = (row["failed_count"] if recent else 0) + 1
    if count >= MAX_FAILURES:
        until = now + LOCKOUT
        conn.execute(
            "UPDATE staff SET failed_count = 0, last_failed_at = NULL, locked_until = ? "
            "WHERE id = ?",
            (iso(until), row["id"]),
        )
        detail = {"staff_id": row["id"], "locked_until": iso(until)}
        conn.execute(
            "INSERT INTO alerts(kiosk_id, kind, at, detail) VALUES (?,?,?,?)",
            (kiosk_id, "staff_locked", iso(now), json.dumps(detail)),
        )
        log.warning("staff %s locked after %d wrong PINs at kiosk %s", row["id"], count, kiosk_id)
        return StaffLocked(row["id"], int(LOCKOUT.total_seconds()))
    conn.execute(
        "UPDATE staff SET failed_count = ?, last_failed_at = ? WHERE id = ?",
        (count, iso(now), row["id"]),
    )
    left = MAX_FAILURES - count
    log.info("wrong PIN for staff %s at kiosk %s (%d left)", row["id"], kiosk_id, left)
    return BadPin(
        f"wrong PIN for staff {row['id']}: {left} attempt{'s' if left != 1 else ''} left "
        f"before a {int(LOCKOUT.total_seconds()) // 60}-minute lock"
    )


def get(conn: sqlite3.Connection, staff_id: str) -> StaffMember:
    row = conn.execute("SELECT id, name, active FROM staff WHERE id = ?", (staff_id,)).fetchone()
    if row is None:
        raise NotFound("unknown_staff", f"no staff with id {shown(staff_id)}")
    return StaffMember(row["id"], row["name"], bool(row["active"]))
