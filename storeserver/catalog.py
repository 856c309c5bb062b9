"""Gift catalog, locker compartments per kiosk, and coupons redeemed at the till."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Sequence

from .clock import Clock, iso, parse_iso
from .errors import Conflict, NotFound, shown
from .pictures import PictureFolder
from .staff_lockout import policy_for_kiosks

_COUPON_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at the till
COUPON_VALID_DAYS = 30  # printed on the receipt; the till refuses the coupon after that day


def coupon_valid_until(issued_at: str, tz: dt.tzinfo) -> dt.date:
    """The last store day a coupon issued at ``issued_at`` can be used."""
    return parse_iso(issued_at).astimezone(tz).date() + dt.timedelta(days=COUPON_VALID_DAYS)


def item_row(conn: sqlite3.Connection, sku: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM items WHERE sku = ? AND active = 1", (sku,)).fetchone()
    if row is None:
        raise NotFound("unknown_item", f"no active catalog item {shown(sku)}")
    return row


def catalog_for(
    conn: sqlite3.Connection,
    kiosk_id: str,
    pictures: PictureFolder | None = None,
    offline: dict[str, int] | None = None,
) -> dict:
    """Items with their stock in this kiosk's compartments, and a version that changes with them.

    ``picture_sha256`` is the named picture's hash in ``pictures`` (None: no usable file), so
    a replaced picture changes the version too and kiosks fetch it again. ``offline`` are the
    store's offline caps (StoreSettings.offline_limits): the kiosk's offline limiter uses them,
    so kiosk and server agree on what an upload may spend; a change reaches kiosks like a
    price change. ``staff_lockout`` is the wrong-PIN rule the kiosk applies offline.
    """
    items = []
    for row in conn.execute("SELECT * FROM items WHERE active = 1 ORDER BY points, sku"):
        compartments = [
            {"number": c["number"], "stock": c["stock"]}
            for c in conn.execute(
                "SELECT number, stock FROM compartments WHERE kiosk_id = ? AND sku = ? ORDER BY number",
                (kiosk_id, row["sku"]),
            )
        ]
        is_gift = row["kind"] == "gift"
        items.append(
            {
                "sku": row["sku"],
                "name_zh": row["name_zh"],
                "name_en": row["name_en"],
                "kind": row["kind"],
                "points": row["points"],
                "cash_cents": row["cash_cents"],
                "coupon_value_cents": row["coupon_value_cents"],
                "picture": row["picture"],
                "picture_sha256": pictures.sha256(row["picture"]) if pictures else None,
                "compartments": compartments,
                "stock": sum(c["stock"] for c in compartments) if is_gift else row["stock"],
            }
        )
    hold_seq = last_hold_seq(conn, kiosk_id)
    lockout = policy_for_kiosks()
    versioned: list = [items, hold_seq, lockout] + ([] if offline is None else [offline])
    body = json.dumps(versioned, sort_keys=True, ensure_ascii=False).encode()
    out = {
        "version": hashlib.sha256(body).hexdigest()[:16],
        "items": items,
        "hold_seq": hold_seq,
        "staff_lockout": lockout,
    }
    if offline is not None:
        out["offline"] = offline
    return out


def last_hold_seq(conn: sqlite3.Connection, kiosk_id: str) -> int:
    """The ``seq`` of this kiosk's latest hold (0: none): a restock count taken after reading
    it has seen every hold up to it."""
    row = conn.execute(
        "SELECT MAX(seq) AS seq FROM redemptions WHERE kiosk_id = ? AND kind != 'offline'",
        (kiosk_id,),
    ).fetchone()
    return row["seq"] or 0


def take_compartment_stock(
    conn: sqlite3.Connection, kiosk_id: str, compartment: int, sku: str
) -> None:
    row = conn.execute(
        "SELECT sku, stock FROM compartments WHERE kiosk_id = ? AND number = ?",
        (kiosk_id, compartment),
    ).fetchone()
    if row is None:
        raise NotFound("unknown_compartment", f"kiosk {kiosk_id} has no compartment {compartment}")
    if row["sku"] != sku:
        raise Conflict(
            "wrong_compartment",
            f"compartment {compartment} holds {shown(row['sku'])}, not {shown(sku)}: refresh the catalog",
        )
    if row["stock"] <= 0:
        raise Conflict("out_of_stock", f"compartment {compartment} of kiosk {kiosk_id} is empty")
    conn.execute(
        "UPDATE compartments SET stock = stock - 1 WHERE kiosk_id = ? AND number = ?",
        (kiosk_id, compartment),
    )


def take_item_stock(conn: sqlite3.Connection, sku: str) -> None:
    """A coupon with a store-wide limit: one fewer left (unlimited ones are untouched)."""
    row = item_row(conn, sku)
    if row["stock"] is None:
        return
    if row["stock"] <= 0:
        raise Conflict("out_of_stock", f"{sku} is sold out in this store")
    conn.execute("UPDATE items SET stock = stock - 1 WHERE sku = ?", (sku,))


def return_item_stock(conn: sqlite3.Connection, sku: str) -> None:
    conn.execute("UPDATE items SET stock = stock + 1 WHERE sku = ? AND stock IS NOT NULL", (sku,))


def return_compartment_stock(conn: sqlite3.Connection, kiosk_id: str, compartment: int) -> None:
    conn.execute(
        "UPDATE compartments SET stock = stock + 1 WHERE kiosk_id = ? AND number = ?",
        (kiosk_id, compartment),
    )


def first_stocked_compartment(conn: sqlite3.Connection, kiosk_id: str, sku: str) -> int | None:
    row = conn.execute(
        "SELECT number FROM compartments WHERE kiosk_id = ? AND sku = ? AND stock > 0 ORDER BY number LIMIT 1",
        (kiosk_id, sku),
    ).fetchone()
    return None if row is None else row["number"]


def holds_after_count(
    conn: sqlite3.Connection,
    kiosk_id: str,
    number: int,
    after_hold_seq: int,
    open_holds: Sequence[str] = (),
) -> int:
    """Holds on this compartment whose gift was still inside when staff counted it: not voided
    or expired, and made after the last hold the kiosk had seen (``seq`` above
    ``after_hold_seq``) or one the kiosk was still to void (``open_holds``). Each took one from
    the stock before the count was applied, and will give it back if voided, so the count
    must take them off. Offline redemptions are not among them: the outbox sends them in
    their order with the count."""
    marks = ",".join("?" * len(open_holds)) or "NULL"
    row = conn.execute(
        "SELECT COUNT(*) AS n FROM redemptions WHERE kiosk_id = ? AND compartment = ? "
        "AND kind != 'offline' AND state IN ('held', 'captured') "
        f"AND (seq > ? OR txn_id IN ({marks}))",
        (kiosk_id, number, after_hold_seq, *open_holds),
    ).fetchone()
    return row["n"]


def set_compartment(
    conn: sqlite3.Connection, kiosk_id: str, number: int, sku: str | None, count: int
) -> None:
    """The compartment now holds ``count`` of ``sku`` (a count less the holds made since)."""
    if sku is not None:
        item_row(conn, sku)
    conn.execute(
        "INSERT INTO compartments(kiosk_id, number, sku, stock) VALUES (?,?,?,?) "
        "ON CONFLICT(kiosk_id, number) DO UPDATE SET sku = excluded.sku, stock = excluded.stock",
        (kiosk_id, number, sku, count),
    )


def issue_coupon(
    conn: sqlite3.Connection, clock: Clock, txn_id: str, member_id: str, value_cents: int
) -> str:
    code = "CPN-" + "".join(secrets.choice(_COUPON_ALPHABET) for _ in range(10))
    conn.execute(
        "INSERT INTO coupons(code, txn_id, member_id, value_cents, issued_at) VALUES (?,?,?,?,?)",
        (code, txn_id, member_id, value_cents, iso(clock.now())),
    )
    return code


def redeem_coupon(
    conn: sqlite3.Connection,
    clock: Clock,
    code: str,
    ref: str | None,
    tz: dt.tzinfo = dt.UTC,
) -> dict:
    row = conn.execute("SELECT * FROM coupons WHERE code = ?", (code,)).fetchone()
    if row is None:
        raise NotFound("unknown_coupon", f"no coupon {shown(code)}: check the code on the receipt")
    valid_until = coupon_valid_until(row["issued_at"], tz)
    if clock.now().astimezone(tz).date() > valid_until:
        raise Conflict("coupon_expired", f"coupon {code} was valid until {valid_until.isoformat()}")
    if row["redeemed_at"] is not None:
        raise Conflict(
            "coupon_already_redeemed", f"coupon {code} was already redeemed at {row['redeemed_at']}"
        )
    now = iso(clock.now())
    conn.execute(
        "UPDATE coupons SET redeemed_at = ?, redeemed_ref = ? WHERE code = ?", (now, ref, code)
    )
    return {
        "code": code,
        "value_cents": row["value_cents"],
        "redeemed_at": now,
        "member_id": row["member_id"],
    }
