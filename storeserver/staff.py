"""Staff who sign in at a kiosk to restock it: a signed badge (kind ``S``) plus a PIN.

The badge says who (it is a printed card, so it lives for months, not a minute, and it carries
no replay check: the same card is scanned every day); the PIN proves it is them. PINs are kept
only as salted scrypt hashes. Wrong PINs count per staff member across all kiosks and lock
them out for longer and longer, then until a manager unlocks them (the rule:
``staff_lockout.py``; the kiosk-side mirror: ``kiosk/domain/staff_lockout.py``).

A new PIN has 6 to 12 digits; a 4- or 5-digit PIN set before that rule still signs in until it
is replaced. A PIN has too few values for any hash to keep it secret from someone holding the
database; the lockout and the badge are what protect it. The hash keeps PINs out of sight and
makes cracking them in bulk cost something.

Staff who may not sign in offline (disabled, or locked until a manager unlocks them) and badges
revoked by ``revoke-badges`` go to the kiosks with every heartbeat answer
(``staff_revocation.py``), so a kiosk refuses them without the server.
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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import codes
from .clock import Clock, iso, parse_iso
from .db import Database
from .errors import ApiError, BadRequest, Conflict, NotFound, shown
from .staff_lockout import Lockout, after_right, after_wrong
from .text import hidden_character

log = logging.getLogger(__name__)

BADGE_DEFAULT_DAYS = 365
BADGE_MAX_DAYS = 1098  # three years: longer than any card should live without a reprint
STAFF_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # a code subject (codes.py)
PIN = re.compile(r"^[0-9]{4,12}$")  # what signs in: PINs set before NEW_PIN still do
NEW_PIN = re.compile(r"^[0-9]{6,12}$")  # what add-staff accepts

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
    """Too many wrong PINs; ``retry_after_s`` goes out as the Retry-After header. None: locked
    until a manager unlocks them (no Retry-After)."""

    status = 423

    def __init__(self, staff_id: str, retry_after_s: int | None) -> None:
        if retry_after_s is None:
            text = (
                f"staff {staff_id} is locked after too many wrong PINs until a manager unlocks "
                f"them ('storeserver unlock-staff {staff_id}')"
            )
        else:
            text = (
                f"staff {staff_id} is locked after too many wrong PINs: try again in "
                f"{retry_after_s} s (or a manager unlocks them: 'storeserver unlock-staff')"
            )
        super().__init__("staff_locked", text)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class StaffMember:
    staff_id: str
    name: str
    active: bool


# ---- PIN hashes -----------------------------------------------------------------------------


def check_new_pin(pin: str) -> None:
    """A PIN being set: 6 to 12 digits (a million values at least)."""
    if not isinstance(pin, str) or not NEW_PIN.match(pin):
        raise BadRequest("invalid_pin", "a new staff PIN is 6 to 12 digits")


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64 parts) of a new PIN; a fresh random salt unless given."""
    check_new_pin(pin)
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
    check_new_pin(pin)
    exists = conn.execute("SELECT 1 FROM staff WHERE id = ?", (staff_id,)).fetchone()
    if exists and not replace:
        raise Conflict(
            "staff_exists",
            f"staff {staff_id} already exists: pass --replace to set a new name and PIN",
        )
    conn.execute(
        "INSERT INTO staff(id, name, pin_hash, created_at) VALUES (?,?,?,?) "
        "ON CONFLICT(id) DO UPDATE SET name = excluded.name, pin_hash = excluded.pin_hash, "
        f"active = 1, {_UNLOCKED}",
        (staff_id, name, pin_hash or hash_pin(pin), iso(clock.now())),
    )
    return StaffMember(staff_id, name, True)


_UNLOCKED = (
    "failed_count = 0, last_failed_at = NULL, locked_until = NULL, lock_level = 0, "
    "last_lock_day = NULL, fail_day = NULL, fail_day_count = 0, until_reset = 0"
)


def unlock(conn: sqlite3.Connection, staff_id: str) -> None:
    """A manager's unlock: every wrong-PIN count and lock of the staff member back to zero."""
    cur = conn.execute(f"UPDATE staff SET {_UNLOCKED} WHERE id = ?", (staff_id,))
    if cur.rowcount == 0:
        raise NotFound("unknown_staff", f"no staff with id {staff_id!r}")
    log.info("staff %s unlocked", staff_id)


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


def badge_subject(keys: codes.Keys, text: str, now_s: int) -> str:
    """The staff id of a valid staff badge; anything else is :class:`BadBadge`."""
    return parse_badge(keys, text, now_s).subject


def parse_badge(keys: codes.Keys, text: str, now_s: int) -> codes.SignedCode:
    """A valid staff badge, signed by any of ``keys`` (current and previous during a key
    rotation); anything else is :class:`BadBadge`.

    Not ``codes.verify``: that one caps a code's life at an hour (members' codes live 60 s).
    """
    try:
        code, signed, signature = codes.parse(text)
    except codes.CodeError as exc:
        raise BadBadge(f"not a staff badge ({exc}): scan the staff member's badge") from None
    if not codes.signed_by_any(keys, signature, signed):
        raise BadBadge(
            "badge signature does not verify: it was not issued by this store; print a new "
            "one with 'storeserver staff-badge'"
        )
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
    return code


# ---- the PIN check --------------------------------------------------------------------------


def verify(
    db: Database,
    clock: Clock,
    keys: codes.Keys,
    kiosk_id: str,
    badge: str,
    pin: str,
    *,
    tz: dt.tzinfo = dt.UTC,
) -> dict:
    """Check a badge and PIN; ``{staff_id, name}`` or BadBadge / BadPin / StaffLocked.

    Unlike other refusals, a wrong PIN changes something: the failure is committed, then
    refused. The slow hash runs outside the write transaction, so other writers do not wait.
    ``tz`` is the store's: its calendar day is the day of the daily cap.
    """
    now = clock.now()
    today = now.astimezone(tz).date()
    code = parse_badge(keys, badge, int(now.timestamp()))
    staff_id = code.subject
    row = _active_row(db.connection(), staff_id)
    _refuse_revoked_badge(row, code)
    _refuse_if_locked(row, now)
    ok = pin_matches(row["pin_hash"], pin)
    refusal: ApiError | None = None
    with db.transaction() as conn:
        row = _active_row(conn, staff_id)  # another kiosk may have locked it meanwhile
        _refuse_revoked_badge(row, code)  # or a manager revoked the badge
        _refuse_if_locked(row, now)
        if ok:
            _save(conn, staff_id, after_right(_lockout(row), today), None)
        else:
            refusal = _count_failure(conn, kiosk_id, row, now, today)
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


def _lockout(row: sqlite3.Row) -> Lockout:
    def day(text: str | None) -> dt.date | None:
        return None if text is None else dt.date.fromisoformat(text)

    until = row["locked_until"]
    return Lockout(
        in_a_row=row["failed_count"],
        level=row["lock_level"],
        last_lock_day=day(row["last_lock_day"]),
        day=day(row["fail_day"]),
        day_count=row["fail_day_count"],
        locked_until=None if until is None else parse_iso(until),
        until_reset=bool(row["until_reset"]),
    )


def _save(
    conn: sqlite3.Connection, staff_id: str, rec: Lockout, failed_at: dt.datetime | None
) -> None:
    def text(day: dt.date | None) -> str | None:
        return None if day is None else day.isoformat()

    conn.execute(
        "UPDATE staff SET failed_count = ?, last_failed_at = COALESCE(?, last_failed_at), "
        "locked_until = ?, lock_level = ?, last_lock_day = ?, fail_day = ?, "
        "fail_day_count = ?, until_reset = ? WHERE id = ?",
        (
            rec.in_a_row,
            None if failed_at is None else iso(failed_at),
            None if rec.locked_until is None else iso(rec.locked_until),
            rec.level,
            text(rec.last_lock_day),
            text(rec.day),
            rec.day_count,
            int(rec.until_reset),
            staff_id,
        ),
    )


def _refuse_revoked_badge(row: sqlite3.Row, code: codes.SignedCode) -> None:
    if row["badges_from"] is not None and code.issued < row["badges_from"]:
        raise BadBadge(
            f"this badge of {row['id']} was revoked ('storeserver revoke-badges'): scan the "
            f"newer one, or print one with 'storeserver staff-badge {row['id']}'"
        )


def _refuse_if_locked(row: sqlite3.Row, now: dt.datetime) -> None:
    rec = _lockout(row)
    if rec.is_locked(now):
        raise StaffLocked(row["id"], rec.seconds_left(now))


def _count_failure(
    conn: sqlite3.Connection, kiosk_id: str, row: sqlite3.Row, now: dt.datetime, today: dt.date
) -> ApiError:
    rec = after_wrong(_lockout(row), now, today)
    _save(conn, row["id"], rec, now)
    if rec.is_locked(now):
        left = rec.seconds_left(now)
        detail = {
            "staff_id": row["id"],
            "locked_until": None if rec.locked_until is None else iso(rec.locked_until),
            "until_unlocked": left is None,
            "level": rec.level,
            "wrong_today": rec.day_count,
        }
        conn.execute(
            "INSERT INTO alerts(kiosk_id, kind, at, detail) VALUES (?,?,?,?)",
            (kiosk_id, "staff_locked", iso(now), json.dumps(detail)),
        )
        log.warning(
            "staff %s locked (%s) after a wrong PIN at kiosk %s: lock %d, %d wrong today",
            row["id"], "until unlocked" if left is None else f"{left} s", kiosk_id,
            rec.level, rec.day_count,
        )  # fmt: skip
        return StaffLocked(row["id"], left)
    left = rec.wrong_left()
    log.info("wrong PIN for staff %s at kiosk %s (%d left)", row["id"], kiosk_id, left)
    return BadPin(
        f"wrong PIN for staff {row['id']}: {left} attempt{'s' if left != 1 else ''} left "
        "before a lock"
    )


def get(conn: sqlite3.Connection, staff_id: str) -> StaffMember:
    row = conn.execute("SELECT id, name, active FROM staff WHERE id = ?", (staff_id,)).fetchone()
    if row is None:
        raise NotFound("unknown_staff", f"no staff with id {shown(staff_id)}")
    return StaffMember(row["id"], row["name"], bool(row["active"]))
