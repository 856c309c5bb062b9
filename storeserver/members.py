"""Members: registration, earning at the till, signed member codes and the kiosk's member view."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import sqlite3

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import catalog, codes
from .clock import iso
from .errors import ApiError, BadRequest, Conflict, shown
from .ledger import REFERRAL_BONUS, REGISTRATION_BONUS, TOPUP_POINTS_PER_YUAN_X10, Ledger

EXPIRING_WINDOW_DAYS = 30
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")


def mask_name(name: str) -> str:
    """张三丰 -> 张**, Wei Li -> W*****: enough for the member to recognise, not for others."""
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1) if name else "*"


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


def register(
    ledger: Ledger, conn: sqlite3.Connection, name: str, phone: str, referred_by: str | None
) -> str:
    if not name.strip() or len(name) > 64:
        raise BadRequest("invalid_name", "name must be 1 to 64 characters")
    if not _PHONE.match(phone):
        raise BadRequest(
            "invalid_phone", f"phone {shown(phone)} must be 6 to 15 digits, optional leading +"
        )
    if conn.execute("SELECT 1 FROM members WHERE phone = ?", (phone,)).fetchone():
        # one member per phone: otherwise one phone farms referral and registration bonuses
        raise Conflict("phone_in_use", "this phone number belongs to a member already")
    if referred_by is not None:
        ledger.member_row(conn, referred_by)
    member_id = "M" + secrets.token_hex(4).upper()
    base = ledger.tiers(conn)[0].name
    conn.execute(
        "INSERT INTO members(id, name, phone, tier, referred_by, created_at) VALUES (?,?,?,?,?,?)",
        (member_id, name.strip(), phone, base, referred_by, iso(ledger.clock.now())),
    )
    ledger.earn(conn, member_id, REGISTRATION_BONUS, "registration", None)
    if referred_by is not None:
        ledger.earn(conn, referred_by, REFERRAL_BONUS, "referral", member_id)
    return member_id


def earn_purchase(
    ledger: Ledger, conn: sqlite3.Connection, member_id: str, amount_cents: int, ref: str
) -> int:
    """Points for a purchase at the member's tier rate; returns the points earned."""
    member = ledger.member_row(conn, member_id)
    rate = next(t.points_per_yuan_x10 for t in ledger.tiers(conn) if t.name == member["tier"])
    points = amount_cents * rate // 1000
    record_once(conn, member_id, f"purchase:{ref}")
    if points > 0:
        ledger.earn(conn, member_id, points, "purchase", f"purchase:{ref}")
    return points


def top_up(
    ledger: Ledger, conn: sqlite3.Connection, member_id: str, amount_cents: int, ref: str
) -> int:
    """Add stored value; a top-up earns points too. Returns the points earned."""
    ledger.member_row(conn, member_id)
    record_once(conn, member_id, f"topup:{ref}")
    conn.execute(
        "UPDATE members SET stored_value_cents = stored_value_cents + ? WHERE id = ?",
        (amount_cents, member_id),
    )
    points = amount_cents * TOPUP_POINTS_PER_YUAN_X10 // 1000
    if points > 0:
        ledger.earn(conn, member_id, points, "topup", f"topup:{ref}")
    return points


def record_once(conn: sqlite3.Connection, member_id: str, ref: str) -> None:
    """A till retrying the same receipt must not earn twice."""
    if conn.execute(
        "SELECT 1 FROM points_changes WHERE member_id = ? AND ref = ?", (member_id, ref)
    ).fetchone():
        raise Conflict("already_recorded", f"{ref} was already recorded for member {member_id}")


def issue_code(
    ledger: Ledger, conn: sqlite3.Connection, key: Ed25519PrivateKey, member_id: str
) -> dict:
    ledger.member_row(conn, member_id)
    now = ledger.clock.now()
    code = codes.issue(key, codes.CodeKind.MEMBER, member_id, int(now.timestamp()))
    parsed, _, _ = codes.parse(code)
    return {"code": code, "expires_at": iso(dt.datetime.fromtimestamp(parsed.expires, dt.UTC))}


# A code's nonce is remembered this long after the code expired: an offline redemption made
# with it may be uploaded until then (storeserver/offline.py), and must still find who used it.
NONCE_KEEP = dt.timedelta(days=7)


def resolve_code(
    ledger: Ledger, conn: sqlite3.Connection, keys: codes.Keys, kiosk_id: str, code: str
) -> codes.SignedCode:
    """Verify a member code (signed by any of ``keys``: the store's trusted keys) and remember
    its nonce; the same kiosk may retry, another may not."""
    now = ledger.clock.now()
    try:
        parsed = codes.verify(keys, code, int(now.timestamp()))
    except codes.CodeError as exc:
        status = 401 if exc.reason == "forged" else 400
        raise ApiError(f"code_{exc.reason}", str(exc), status) from None
    if parsed.kind is not codes.CodeKind.MEMBER:
        raise BadRequest(
            "not_a_member_code", f"this is a {parsed.kind.name.lower()} code, not a member code"
        )
    claim_nonce(conn, now, parsed, kiosk_id)
    ledger.member_row(conn, parsed.subject)
    return parsed


def claim_nonce(
    conn: sqlite3.Connection, now: dt.datetime, parsed: codes.SignedCode, kiosk_id: str
) -> None:
    """Record that ``kiosk_id`` used this code; 409 ``code_replayed`` if another kiosk did."""
    conn.execute("DELETE FROM seen_nonces WHERE expires_at < ?", (iso(now - NONCE_KEEP),))
    seen = conn.execute(
        "SELECT kiosk_id FROM seen_nonces WHERE nonce = ?", (parsed.nonce,)
    ).fetchone()
    if seen is not None and seen["kiosk_id"] != kiosk_id:
        raise Conflict(
            "code_replayed",
            "this member code was already used at another kiosk: refresh it in the app",
        )
    if seen is None:
        expires = dt.datetime.fromtimestamp(parsed.expires, dt.UTC)
        conn.execute(
            "INSERT INTO seen_nonces(nonce, kiosk_id, expires_at) VALUES (?,?,?)",
            (parsed.nonce, kiosk_id, iso(expires)),
        )


def view(ledger: Ledger, conn: sqlite3.Connection, member_id: str, kiosk_id: str | None) -> dict:
    """What the kiosk shows: masked identity, tier progress, balance, expiring lots, affordable items."""
    ledger.sweep(conn, member_id)
    m = ledger.member_row(conn, member_id)
    today = ledger.today()
    balance = ledger.balance(conn, member_id, today)
    tiers = ledger.tiers(conn)
    current = next(t for t in tiers if t.name == m["tier"])
    higher = [t for t in tiers if t.threshold > current.threshold]
    nxt = higher[0] if higher else None
    horizon = today + dt.timedelta(days=EXPIRING_WINDOW_DAYS)
    expiring = [
        {"points": r["p"], "expires_on": r["expires_on"]}
        for r in conn.execute(
            "SELECT expires_on, SUM(remaining) AS p FROM lots WHERE member_id = ? AND remaining > 0 "
            "AND expires_on > ? AND expires_on <= ? GROUP BY expires_on ORDER BY expires_on",
            (member_id, today.isoformat(), horizon.isoformat()),
        )
    ]
    items = catalog.catalog_for(conn, kiosk_id or "")["items"]
    affordable = [
        i["sku"]
        for i in items
        if i["points"] <= balance and (i["kind"] == "coupon" or (i["stock"] or 0) > 0)
    ]
    return {
        "member_id": member_id,
        "name_masked": mask_name(m["name"]),
        "phone_masked": mask_phone(m["phone"]),
        "tier": current.name,
        "tier_zh": current.name_zh,
        "tier_en": current.name_en,
        "tier_threshold": current.threshold,  # the tier bar counts from here
        "next_tier": nxt.name if nxt else None,
        "next_tier_zh": nxt.name_zh if nxt else None,
        "next_tier_en": nxt.name_en if nxt else None,
        "next_tier_threshold": nxt.threshold if nxt else None,
        "points_to_next_tier": max(0, nxt.threshold - m["lifetime_points"]) if nxt else 0,
        "lifetime_points": m["lifetime_points"],
        "balance": balance,
        "expiring": expiring,
        "stored_value_cents": m["stored_value_cents"],
        "recent_changes": ledger.recent_changes(conn, member_id, 10),
        "affordable_skus": affordable,
    }
