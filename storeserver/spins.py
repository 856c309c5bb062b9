"""Wheel spins: a spin is a hold of its cost, with the prize drawn fairly and its stock reserved.

Capture and void go through ``Redemptions`` like any hold: a gift prize is dispensed through the
locker and captured after the door sensor confirms; points and coupon prizes are awarded on
capture. A drawn spin is final (``wheel.spin_void_refusal``): only a gift whose door failed is
voided, which returns the cost and puts the prize back in stock but not the spin; a stale
spin without a door is captured by expiry.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

from . import catalog, member_sessions, wheel
from .clock import iso
from .errors import Conflict
from .holds import Redemptions, request_hash


def spin(redemptions: Redemptions, kiosk_id: str, body: dict, session: str | None) -> dict:
    """A spin for the member of ``session``; a replay returns its first answer (no session)."""
    txn_id, member_id, wheel_id = body["txn_id"], body["member_id"], body["wheel_id"]
    body_hash = request_hash({"kiosk_id": kiosk_id, "spin": True, **body})
    ledger = redemptions.ledger
    with redemptions.operation() as conn:
        if (first := redemptions.replay(conn, txn_id, body_hash)) is not None:
            return first
        member_sessions.require(conn, redemptions.clock.now(), kiosk_id, member_id, session)
        w = wheel.wheel_row(conn, wheel_id)
        shown = body.get("cost_points")
        if shown is not None and shown != w["cost_points"]:
            raise Conflict(
                "price_changed",
                f"wheel {wheel_id} costs {w['cost_points']} points now: refresh the wheel",
            )
        ledger.member_row(conn, member_id)
        today = ledger.today()
        used = spins_used(conn, member_id, wheel_id, today)
        if used >= w["daily_limit"]:
            raise Conflict(
                "daily_limit_reached",
                f"member {member_id} has used all {w['daily_limit']} spins today",
            )
        candidates = wheel.eligible(conn, wheel_id, kiosk_id)
        if not candidates:
            raise Conflict(
                "wheel_empty", f"wheel {wheel_id} has no prize in stock at kiosk {kiosk_id}"
            )
        pairs = [(seg.idx, seg.weight) for seg, _ in candidates]
        wheel.commit_ahead(conn, wheel_id, today)
        idx = wheel.draw(wheel.seed_for(conn, wheel_id, today), txn_id, pairs)
        seg, compartment = next((s, c) for s, c in candidates if s.idx == idx)
        ledger.allocate(conn, member_id, w["cost_points"], txn_id, "spin")
        wheel.take_prize_stock(conn, wheel_id, idx)
        sku = None
        if seg.prize_kind == "gift" and compartment is not None:
            catalog.take_compartment_stock(conn, kiosk_id, compartment, seg.prize_sku or "")
            sku = seg.prize_sku
        conn.execute(
            "INSERT INTO spins(txn_id, wheel_id, member_id, day, segment_idx, eligible, at) VALUES (?,?,?,?,?,?,?)",
            (
                txn_id,
                wheel_id,
                member_id,
                today.isoformat(),
                idx,
                json.dumps(pairs),
                iso(redemptions.clock.now()),
            ),
        )
        redemptions.insert(
            conn,
            txn_id,
            body_hash,
            "spin",
            kiosk_id,
            member_id,
            sku,
            compartment,
            w["cost_points"],
            0,
        )
        return redemptions.first_response(conn, txn_id)


def spins_left(
    redemptions: Redemptions, kiosk_id: str, member_id: str, wheel_id: str, session: str | None
) -> int:
    """Spins the member of ``session`` has left today (403 without a session for them)."""
    with redemptions.db.transaction() as conn:
        member_sessions.require(conn, redemptions.clock.now(), kiosk_id, member_id, session)
        w = wheel.wheel_row(conn, wheel_id)
        redemptions.ledger.member_row(conn, member_id)
        return max(
            0, w["daily_limit"] - spins_used(conn, member_id, wheel_id, redemptions.ledger.today())
        )


def spins_used(conn: sqlite3.Connection, member_id: str, wheel_id: str, day: dt.date) -> int:
    """Spins that count against the daily limit: every spin drawn that day, voided or expired
    too (a void that gave the spin back let a member re-spin until the prize they wanted)."""
    return conn.execute(
        "SELECT COUNT(*) AS n FROM spins WHERE member_id = ? AND wheel_id = ? AND day = ?",
        (member_id, wheel_id, day.isoformat()),
    ).fetchone()["n"]
