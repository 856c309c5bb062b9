"""Offline redemptions uploaded by a kiosk: checked against the member's signed code and the
server's own offline caps before any point moves.

A kiosk that lost the server may hand out a gift within its floor limits; it uploads the
spend later as an ``offline_redemption`` event carrying the member code it verified offline
(``member_code``). The server takes nothing on the kiosk's word but the time (``at``), and
bounds that by the code: the signature, the code's member, a nonce no other kiosk used (by a
resolve or an offline upload), ``at`` within the code's validity plus ``max_offline_hours``,
and its own caps per member and per kiosk per store day. Only gifts from a compartment of
that kiosk, for points only; ``txn_id`` a UUID.

A refusal is a ``conflict`` for staff (storeserver/kiosks.py). An :class:`Unverified` one
(no proof that the code's member took the gift there within the caps: a kiosk that keeps to
its synced limits never sends one) leaves the stock alone too: staff count the compartment.
A conflict on points or price came with a genuine code within the caps, so its gift is
counted out of the compartment as before.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from . import catalog, codes, members
from .clock import iso
from .errors import ApiError, Conflict
from .event_payloads import OfflineRedemptionPayload
from .holds import Redemptions, request_hash


class Unverified(Conflict):
    """The upload does not prove that the code's member was at this kiosk: nothing moves."""


@dataclass(frozen=True)
class OfflineRules:
    """What the server checks an offline redemption against (StoreSettings, the store's
    trusted keys: current and previous during a key rotation)."""

    public_key: codes.Keys
    per_member_daily_points: int
    per_kiosk_daily_points: int
    max_offline_hours: int


def redeem(
    redemptions: Redemptions,
    conn: sqlite3.Connection,
    rules: OfflineRules,
    kiosk_id: str,
    at_text: str,
    p: OfflineRedemptionPayload,
) -> dict:
    """Charge one offline redemption (its payload already bounded and typed by
    event_payloads.py; ``at_text`` the event's time), or raise ApiError (the caller makes it a
    conflict)."""
    number, text = _compartment_and_code(p)
    existing = conn.execute("SELECT kiosk_id FROM redemptions WHERE txn_id = ?", (p.txn_id,))
    if (row := existing.fetchone()) is not None:
        if row["kiosk_id"] != kiosk_id:
            raise Unverified("txn_id_reused", f"txn_id {p.txn_id} belongs to another kiosk")
        return {"status": "applied", "note": "txn already known"}
    now = redemptions.clock.now()
    code = _verified(rules, text, p.member_id)
    at = _redeemed_at(at_text, code, now, rules)
    try:
        members.claim_nonce(conn, now, code, kiosk_id)
    except ApiError as exc:
        raise Unverified(exc.code, exc.message) from None
    _own_compartment(conn, kiosk_id, number)
    item = catalog.item_row(conn, p.sku)
    if item["kind"] != "gift":
        raise Unverified("not_offline_item", f"{p.sku} is a coupon: coupons are issued online only")
    if item["cash_cents"]:
        raise Unverified(
            "cash_needs_online", f"{p.sku} costs points + cash: it is never sold offline"
        )
    if item["points"] != p.points:
        raise Conflict(
            "price_changed", f"{p.sku} costs {item['points']} points, kiosk charged {p.points}"
        )
    day = at.astimezone(redemptions.ledger.tz).date().isoformat()
    _within_caps(conn, rules, kiosk_id, p.member_id, day, p.points)
    redemptions.ledger.allocate(conn, p.member_id, p.points, p.txn_id, "offline_redeem")
    gift_out(conn, kiosk_id, number)
    body_hash = request_hash({"kiosk_id": kiosk_id, "offline": p.model_dump(exclude_none=True)})
    redemptions.insert(
        conn, p.txn_id, body_hash, "offline", kiosk_id, p.member_id, p.sku, number, p.points, 0,
        state="captured",
    )  # fmt: skip
    conn.execute(
        "INSERT INTO offline_spends(txn_id, kiosk_id, member_id, nonce, day, points, at) "
        "VALUES (?,?,?,?,?,?,?)",
        (p.txn_id, kiosk_id, p.member_id, code.nonce, day, p.points, iso(at)),
    )
    redemptions.first_response(conn, p.txn_id)
    return {"status": "applied"}


def gift_out(conn: sqlite3.Connection, kiosk_id: str, number: object) -> None:
    """An offline gift is out of the locker whatever the ledger says: count it, even if the
    server thought the compartment empty."""
    if type(number) is int and 1 <= number <= 99:
        conn.execute(
            "UPDATE compartments SET stock = MAX(stock - 1, 0) WHERE kiosk_id = ? AND number = ?",
            (kiosk_id, number),
        )


# ---- checks ----------------------------------------------------------------------------------


def _compartment_and_code(p: OfflineRedemptionPayload) -> tuple[int, str]:
    """What an offline gift must carry beyond its typed fields: its compartment and the code."""
    if p.compartment is None:
        raise Unverified(
            "invalid_payload", "payload.compartment: an offline gift comes from a compartment"
        )
    if p.member_code is None:
        raise Unverified(
            "member_code_required",
            "this offline redemption carries no member code (recorded by a kiosk before it "
            "kept them, or made up): nothing was charged; staff check the member and count "
            "the compartment",
        )
    return p.compartment, p.member_code


def _verified(rules: OfflineRules, text: str, member_id: str) -> codes.SignedCode:
    """The code's signature and form, checked as at its issue time (it has expired since)."""
    try:
        parsed, _, _ = codes.parse(text)
        code = codes.verify(rules.public_key, text, parsed.issued)
    except codes.CodeError as exc:
        raise Unverified(f"code_{exc.reason}", str(exc)) from None
    if code.kind is not codes.CodeKind.MEMBER:
        raise Unverified("not_a_member_code", "the offline redemption's code is not a member code")
    if code.subject != member_id:
        raise Unverified(
            "code_other_member", "the member code is not the code of the member charged"
        )
    return code


def _redeemed_at(
    at_text: str, code: codes.SignedCode, now: dt.datetime, rules: OfflineRules
) -> dt.datetime:
    """The event's time, if the code allows it: not before the code was issued (less the
    clock skew a kiosk's code check allows), not after it expired plus the kiosk's offline
    window; and uploaded within NONCE_KEEP of the code's expiry."""
    try:
        at = dt.datetime.fromisoformat(at_text)
    except ValueError:
        raise Unverified("invalid_payload", "event.at must be an ISO 8601 time") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise Unverified("invalid_payload", "event.at must carry its UTC offset")
    skew = dt.timedelta(seconds=codes.CLOCK_SKEW_S)
    issued = dt.datetime.fromtimestamp(code.issued, dt.UTC)
    expires = dt.datetime.fromtimestamp(code.expires, dt.UTC)
    latest = expires + dt.timedelta(hours=rules.max_offline_hours)
    if now > expires + members.NONCE_KEEP:
        raise Unverified(
            "code_too_old",
            f"the member code expired more than {members.NONCE_KEEP.days} days ago",
        )
    # no "not in the future" check against the server's clock: the signed issue time
    # anchors the window, and a kiosk clock a little ahead must not lose a real gift
    if not issued - skew <= at <= latest:
        raise Unverified(
            "outside_code_window",
            f"redeemed at {iso(at)}, outside the code's validity ({iso(issued)} to "
            f"{iso(expires)}) plus the offline window ({rules.max_offline_hours} h)",
        )
    return at


def _own_compartment(conn: sqlite3.Connection, kiosk_id: str, number: int) -> None:
    row = conn.execute(
        "SELECT 1 FROM compartments WHERE kiosk_id = ? AND number = ?", (kiosk_id, number)
    ).fetchone()
    if row is None:
        raise Unverified("unknown_compartment", f"kiosk {kiosk_id} has no compartment {number}")


def _within_caps(
    conn: sqlite3.Connection,
    rules: OfflineRules,
    kiosk_id: str,
    member_id: str,
    day: str,
    points: int,
) -> None:
    def used(where: str, *args: str) -> int:
        row = conn.execute(
            f"SELECT COALESCE(SUM(points), 0) AS n FROM offline_spends WHERE day = ? AND {where}",
            (day, *args),
        ).fetchone()
        return row["n"]

    member_used = used("member_id = ?", member_id)
    if member_used + points > rules.per_member_daily_points:
        raise Unverified(
            "offline_member_limit",
            f"member {member_id} would spend {member_used + points} points offline on {day}, "
            f"over the store's {rules.per_member_daily_points}: nothing charged, staff count "
            "the compartment",
        )
    kiosk_used = used("kiosk_id = ?", kiosk_id)
    if kiosk_used + points > rules.per_kiosk_daily_points:
        raise Unverified(
            "offline_kiosk_limit",
            f"kiosk {kiosk_id} would spend {kiosk_used + points} points offline on {day}, "
            f"over the store's {rules.per_kiosk_daily_points}: nothing charged, staff count "
            "the compartment",
        )
