"""Restock counts stamped with the last hold the kiosk had seen (storeserver/kiosks.py _count):
the server takes off the holds made after the count, never erases a gift that left."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

from storeserver.db import Database

from .conftest import KIOSK, OTHER_KIOSK, db_snapshot, offline_event
from .test_redemptions import redeem

TOTE = {"sku": "GIFT-TOTE", "compartment": 2, "points": 300}  # the demo holds 5 in compartment 2


def tote(kiosk, member="M0003", txn=None):
    body, resp = redeem(kiosk, member=member, txn=txn, **TOTE)
    assert resp.status_code == 200, resp.text
    return body["txn_id"], resp.json()


def compartment_stock(store, number=2, kiosk_id=KIOSK) -> int:
    row = (
        store.db.connection()
        .execute(
            "SELECT stock FROM compartments WHERE kiosk_id = ? AND number = ?", (kiosk_id, number)
        )
        .fetchone()
    )
    return row["stock"]


def count(kiosk, event_id, n, **stamp):
    event = {
        "event_id": event_id,
        "kind": "inventory",
        "at": "2026-12-03T10:00:00+08:00",
        "payload": {"compartment": 2, "sku": "GIFT-TOTE", "count": n, **stamp},
    }
    return kiosk.post("/v1/kiosks/events", {"events": [event]}).json()["results"][0]


def seen(kiosk) -> int:
    return kiosk.get("/v1/catalog").json()["hold_seq"]


def test_holds_answer_their_sequence_and_the_catalog_the_latest(kiosk, other_kiosk):
    assert seen(kiosk) == 0
    _, first = tote(kiosk)
    _, second = tote(kiosk)
    assert second["hold_seq"] > first["hold_seq"] > 0
    version = kiosk.get("/v1/catalog").json()["version"]
    assert seen(kiosk) == second["hold_seq"]
    assert seen(other_kiosk) == 0  # another kiosk's holds are not this one's
    redeem(kiosk, sku="CPN-10", compartment=None, points=500)  # no compartment stock changed
    assert kiosk.get("/v1/catalog").json()["version"] != version


def test_a_hold_after_the_count_is_not_erased(kiosk, store):
    """The issue's steps: count 6 (5 + 1 added), a tote held before the upload, then the
    upload: 5 in the cabinet, 5 on the server, not 6."""
    stamp = seen(kiosk)
    txn, _ = tote(kiosk)  # the server takes it from the old stock: 5 -> 4
    kiosk.post(f"/v1/redemptions/{txn}/capture")
    assert count(kiosk, "c-1", 6, after_hold_seq=stamp, open_holds=[]) == {
        "event_id": "c-1",
        "status": "applied",
        "stock": 5,
    }
    assert compartment_stock(store) == 5


def test_holds_the_kiosk_had_seen_are_not_taken_off_again(kiosk, store):
    txn, answer = tote(kiosk)
    kiosk.post(f"/v1/redemptions/{txn}/capture")  # out of the locker before staff counted
    count(kiosk, "c-1", 4, after_hold_seq=answer["hold_seq"])
    assert compartment_stock(store) == 4


def test_a_hold_after_the_count_voided_later_comes_back_to_the_count(kiosk, store):
    stamp = seen(kiosk)
    txn, _ = tote(kiosk)
    count(kiosk, "c-1", 6, after_hold_seq=stamp)
    assert compartment_stock(store) == 5  # held: its gift may still leave
    kiosk.post(f"/v1/redemptions/{txn}/void", {"reason": "door jammed"})
    assert compartment_stock(store) == 6  # the gift stayed: the count stands


def test_a_hold_voided_before_the_count_arrived_is_not_taken_off(kiosk, store):
    stamp = seen(kiosk)
    txn, _ = tote(kiosk)
    kiosk.post(f"/v1/redemptions/{txn}/void", {"reason": "door jammed"})
    count(kiosk, "c-1", 6, after_hold_seq=stamp)
    assert compartment_stock(store) == 6


def test_a_hold_the_kiosk_still_has_to_void_is_taken_off_until_voided(kiosk, store):
    """Held before the count, never dispensed, its void waiting for the network: the gift was
    counted, and the void still to come gives one back."""
    txn, answer = tote(kiosk)
    count(kiosk, "c-1", 6, after_hold_seq=answer["hold_seq"], open_holds=[txn])
    assert compartment_stock(store) == 5
    kiosk.post(f"/v1/redemptions/{txn}/void", {"reason": "recovery"})
    assert compartment_stock(store) == 6


def test_offline_redemptions_follow_the_outbox_order_not_the_stamp(kiosk, store):
    """Uploaded after the count in the same batch, an offline gift is one more out; uploaded
    before it, the count already left it out."""
    stamp = seen(kiosk)
    offline = offline_event(store, "M0003", event_id="off-1")
    inventory = {
        "event_id": "c-1",
        "kind": "inventory",
        "at": "2026-12-03T10:00:00+08:00",
        "payload": {"compartment": 2, "sku": "GIFT-TOTE", "count": 6, "after_hold_seq": stamp},
    }
    kiosk.post("/v1/kiosks/events", {"events": [offline, inventory]})
    assert compartment_stock(store) == 6  # the gift went before the count
    later = offline_event(store, "M0004", event_id="off-2")
    kiosk.post("/v1/kiosks/events", {"events": [{**inventory, "event_id": "c-2"}, later]})
    assert compartment_stock(store) == 5  # after it


def test_another_kiosks_holds_do_not_touch_this_count(kiosk, other_kiosk, store):
    stamp = seen(kiosk)
    tote(other_kiosk)
    count(kiosk, "c-1", 6, after_hold_seq=stamp)
    assert compartment_stock(store) == 6
    assert compartment_stock(store, kiosk_id=OTHER_KIOSK) == 4


def test_more_held_since_than_counted_leaves_none(kiosk, store):
    stamp = seen(kiosk)
    tote(kiosk)
    tote(kiosk, member="M0004")
    assert count(kiosk, "c-1", 1, after_hold_seq=stamp)["stock"] == 0


def test_a_count_without_a_stamp_is_taken_as_of_now(kiosk, store):
    tote(kiosk)
    count(kiosk, "c-1", 6)
    assert compartment_stock(store) == 6


def test_a_bad_stamp_is_refused_and_changes_nothing(kiosk, store):
    for i, stamp in enumerate(
        [
            {"after_hold_seq": -1},
            {"after_hold_seq": "7"},
            {"after_hold_seq": 2**60},
            {"after_hold_seq": 0, "open_holds": "abc"},
            {"after_hold_seq": 0, "open_holds": [1]},
            {"after_hold_seq": 0, "open_holds": ["x' OR 1=1 --"]},
            {"after_hold_seq": 0, "open_holds": [f"t{n}" for n in range(51)]},
        ]
    ):
        before = db_snapshot(store)
        before.pop("kiosk_events")
        result = count(kiosk, f"bad-{i}", 6, **stamp)
        assert result["status"] == "rejected" and result["reason"] == "invalid_payload", result
        after = db_snapshot(store)
        after.pop("kiosk_events")
        assert after == before


def test_a_database_made_before_the_sequence_gets_it_in_order(tmp_path):
    schema = (resources.files("storeserver.migrations") / "baseline.sql").read_text()
    old_schema, n = re.subn(r"first_response TEXT NOT NULL,.*?seq INTEGER", "first_response "
                            "TEXT NOT NULL", schema, flags=re.S)  # fmt: skip
    assert n == 1  # the schema as it was released
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(old_schema)
    conn.execute("INSERT INTO tiers VALUES ('basic', '普通', 0, 10)")
    conn.execute(
        "INSERT INTO members(id, name, phone, tier, created_at) VALUES ('M1','a','1','basic','t')"
    )
    for txn in ("b", "a"):  # rowid order, not txn_id order
        conn.execute(
            "INSERT INTO redemptions(txn_id, request_sha256, kind, kiosk_id, member_id, points, "
            "state, created_at, expires_at, first_response) "
            "VALUES (?, 'h', 'redeem', 'k', 'M1', 1, 'captured', 't', 't', '{}')",
            (txn,),
        )
    conn.commit()
    conn.close()
    from storeserver.migrations.runner import migrate  # Alembic: the [server] extra

    migrate(str(path), say=lambda _: None)  # revision 0001 runs the old open-time upgrades
    db = Database(path)
    rows = db.connection().execute("SELECT txn_id, seq FROM redemptions ORDER BY seq")
    assert [tuple(r) for r in rows] == [("b", 1), ("a", 2)]
    db.close()
