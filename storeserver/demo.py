"""Demo store data: tiers, members in every tier with lots expiring soon and later, a catalog
mapped to locker compartments with pictures (storeserver/demo_pictures.py), a points+cash item,
a coupon item, one lucky wheel and two staff members who restock the lockers."""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3

from . import demo_pictures, staff
from .clock import iso
from .errors import NotFound
from .store import Store

TIERS = [
    ("basic", "普通会员", 0, 10),
    ("silver", "银卡会员", 1000, 12),
    ("gold", "金卡会员", 5000, 15),
    ("diamond", "钻石会员", 20000, 20),
]

# sku, name_zh, name_en, kind, points, cash_cents, coupon_value_cents, store-wide stock (coupons)
ITEMS = [
    ("GIFT-MUG", "保温杯", "Thermal mug", "gift", 800, 0, 0, None),
    ("GIFT-TOTE", "帆布袋", "Canvas tote bag", "gift", 300, 0, 0, None),
    ("GIFT-TEA", "精品茶叶礼盒", "Premium tea gift box", "gift", 1500, 0, 0, None),
    ("GIFT-EARBUDS", "蓝牙耳机", "Bluetooth earbuds", "gift", 2000, 4900, 0, None),
    ("GIFT-UMBRELLA", "晴雨伞", "Umbrella", "gift", 600, 0, 0, None),
    ("CPN-10", "10元代金券", "¥10 off coupon", "coupon", 500, 0, 1000, 200),
]

# kiosk compartment number -> (sku, stock)
COMPARTMENTS = {
    1: ("GIFT-MUG", 3),
    2: ("GIFT-TOTE", 5),
    3: ("GIFT-TEA", 2),
    4: ("GIFT-EARBUDS", 2),
    5: ("GIFT-UMBRELLA", 1),
    6: ("GIFT-MUG", 0),
}

# member id, name, phone, tier reached by its lots, lots as (points, days until expiry)
MEMBERS = [
    ("M0001", "张伟", "13812345678", "basic", [(300, 12), (450, 200)]),
    ("M0002", "李娜", "13923456789", "silver", [(600, 5), (900, 25), (1200, 300)]),
    ("M0003", "王芳", "13734567890", "gold", [(2500, 20), (4000, 330)]),
    ("M0004", "Emily Chen", "+85291234567", "diamond", [(5000, 9), (18000, 360)]),
    ("M0005", "刘洋", "13645678901", "basic", [(80, 3)]),
]

# staff id, name, PIN: sign in at a kiosk with a badge ('storeserver staff-badge S0001') + PIN
STAFF = [
    ("S0001", "王店长 / Manager Wang", "246810"),
    ("S0002", "陈店员 / Clerk Chen", "135791"),
]

WHEEL = ("LUCKY", "幸运大转盘", "Lucky wheel", 100, 3)
# label_zh, label_en, prize_kind, prize_points, prize_sku, weight, stock
SEGMENTS = [
    ("谢谢参与", "Better luck next time", "none", 0, None, 50, None),
    ("50 积分", "50 points", "points", 50, None, 25, None),
    ("200 积分", "200 points", "points", 200, None, 10, 20),
    ("10元代金券", "¥10 coupon", "coupon", 0, "CPN-10", 10, 30),
    ("帆布袋", "Tote bag", "gift", 0, "GIFT-TOTE", 4, 5),
    ("保温杯", "Thermal mug", "gift", 0, "GIFT-MUG", 1, 2),
]


def seed(store: Store, kiosk_ids: list[str]) -> list[dict]:
    """Write the demo store (idempotent: an already seeded database is left as it is, but
    gets the staff and the pictures it lacks)."""
    today = store.today()
    # files first: a catalog never names a picture the folder does not have yet
    pictures = demo_pictures.write_missing(store.pictures.folder)
    with store.db.transaction() as conn:
        _seed_staff(store, conn)  # also into a store seeded before staff existed
        seeded = conn.execute("SELECT COUNT(*) FROM tiers").fetchone()[0]
        if seeded:
            _seed_pictures(conn, pictures)  # a store seeded before pictures existed
            return _members(store)
        conn.executemany("INSERT INTO tiers VALUES (?,?,?,?)", TIERS)
        conn.executemany(
            "INSERT INTO items(sku, name_zh, name_en, kind, points, cash_cents, coupon_value_cents, stock) "
            "VALUES (?,?,?,?,?,?,?,?)",
            ITEMS,
        )
        _seed_pictures(conn, pictures)
        for kiosk_id in kiosk_ids:
            conn.executemany(
                "INSERT INTO compartments(kiosk_id, number, sku, stock) VALUES (?,?,?,?)",
                [(kiosk_id, n, sku, stock) for n, (sku, stock) in COMPARTMENTS.items()],
            )
        conn.execute(
            "INSERT INTO wheels(id, name_zh, name_en, cost_points, daily_limit) VALUES (?,?,?,?,?)",
            WHEEL,
        )
        conn.executemany(
            "INSERT INTO wheel_segments(wheel_id, idx, label_zh, label_en, prize_kind, prize_points, prize_sku, "
            "weight, stock) VALUES (?,?,?,?,?,?,?,?,?)",
            [(WHEEL[0], i, *seg) for i, seg in enumerate(SEGMENTS)],
        )
        for member_id, name, phone, tier, lots in MEMBERS:
            conn.execute(
                "INSERT INTO members(id, name, phone, tier, created_at) VALUES (?,?,?,?,?)",
                (member_id, name, phone, "basic", iso(store.clock.now())),
            )
            for points, days in lots:
                # earning upgrades the tier, so each member lands in the tier its lots add up to
                store.ledger.earn(
                    conn,
                    member_id,
                    points,
                    "purchase",
                    "demo-seed",
                    expires_on=today + dt.timedelta(days=days),
                )
            reached = store.ledger.member_row(conn, member_id)["tier"]
            if reached != tier:  # the tier rules changed: the demo table must follow them
                raise RuntimeError(f"demo member {member_id} reached tier {reached}, not {tier}")
    return _members(store)


def _seed_pictures(conn: sqlite3.Connection, pictures: dict[str, str]) -> None:
    """Name each demo item's picture, unless the store gave it one of its own."""
    conn.executemany(
        "UPDATE items SET picture = ? WHERE sku = ? AND picture IS NULL",
        [(name, sku) for sku, name in pictures.items()],
    )


def _seed_staff(store: Store, conn: sqlite3.Connection) -> None:
    for staff_id, name, pin in STAFF:
        if conn.execute("SELECT 1 FROM staff WHERE id = ?", (staff_id,)).fetchone() is None:
            staff.add_staff(conn, store.clock, staff_id, name, pin, pin_hash=_demo_pin_hash(pin))


@functools.cache
def _demo_pin_hash(pin: str) -> str:
    # Hashing is slow on purpose, and tests seed a store per test: one hash per demo PIN and
    # process. Demo stores of one process share a salt; their PINs are published anyway.
    return staff.hash_pin(pin)


def staff_badges(store: Store, days: int = staff.BADGE_DEFAULT_DAYS) -> list[dict]:
    """A fresh badge for each active demo staff member: staff_id, name, code, expires_at and
    the demo PIN (as seeded; ``add-staff --replace`` may have changed it since)."""
    out = []
    with store.db.transaction() as conn:
        for staff_id, _, pin in STAFF:
            try:
                member = staff.get(conn, staff_id)
            except NotFound:
                continue
            if not member.active:
                continue
            badge = staff.issue_badge(conn, store.clock, store.signing_key, staff_id, days)
            out.append({**badge, "name": member.name, "pin": pin})
    return out


def _members(store: Store) -> list[dict]:
    conn = store.db.connection()
    out = []
    for row in conn.execute("SELECT id, name, tier FROM members ORDER BY id"):
        out.append(
            {
                "id": row["id"],
                "name": row["name"],
                "tier": row["tier"],
                "balance": store.ledger.balance(conn, row["id"], store.today()),
            }
        )
    return out
