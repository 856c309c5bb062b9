"""Offline redemptions over real HTTP: the attacks of issue 11 on ``offline_redemption`` events
(five made up: 23,000 -> 15,500 points), each a conflict with its reason, a staff alert, and no
point, stock or redemption moved."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storeserver import codes

from .conftest import db_snapshot, member_code, new_txn, offline_event

# what an offline upload must never move when refused (kiosk_events and alerts record it)
MOVED = ("lots", "points_changes", "redemptions", "hold_allocations", "compartments",
         "offline_spends", "spins", "seen_nonces", "items")  # fmt: skip


def upload(kiosk, *events) -> list[dict]:
    resp = kiosk.post("/v1/kiosks/events", {"events": list(events)})
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]


def conflict(store, kiosk, event: dict, reason: str) -> dict:
    before = db_snapshot(store)
    (result,) = upload(kiosk, event)
    assert result["status"] == "conflict" and result["reason"] == reason, result
    assert isinstance(result["message"], str) and result["message"].strip()
    after = db_snapshot(store)
    for table in MOVED:
        assert after[table] == before[table], f"{reason}: {table} changed"
    alerts = store.db.connection().execute("SELECT kind FROM alerts").fetchall()
    assert "offline_conflict" in [a["kind"] for a in alerts]
    return result


def with_payload(event: dict, **changes) -> dict:
    return {**event, "payload": {**event["payload"], **changes}}


def balance(store, member_id: str) -> int:
    return store.ledger.balance(store.db.connection(), member_id, store.today())


def test_a_genuine_code_is_applied_once_and_counted(kiosk, store):
    event = offline_event(store, "M0004")
    assert upload(kiosk, event) == [{"event_id": event["event_id"], "status": "applied"}]
    assert balance(store, "M0004") == 23000 - 300
    row = store.db.connection().execute("SELECT * FROM offline_spends").fetchone()
    assert (row["member_id"], row["kiosk_id"], row["points"]) == ("M0004", "kiosk-01", 300)


def test_five_made_up_redemptions_move_nothing(kiosk, store, other_kiosk):
    """The reported attack, and its variants: no code, a forged code, another member's code,
    beyond the caps, outside the code's window."""
    no_code = offline_event(store, "M0004")
    del no_code["payload"]["member_code"]
    conflict(store, kiosk, no_code, "member_code_required")

    stranger = Ed25519PrivateKey.generate()
    now = int(store.clock.now().timestamp())
    forged = codes.issue(stranger, codes.CodeKind.MEMBER, "M0004", now)
    conflict(store, kiosk, offline_event(store, "M0004", code=forged), "code_forged")

    theirs = offline_event(store, "M0004", code=member_code(store, "M0005"))
    conflict(store, kiosk, theirs, "code_other_member")

    # a real code, stretched: over the member's 500 a day in one go, then bit by bit
    conflict(
        store, kiosk, offline_event(store, "M0004", "GIFT-MUG", 800, 1), "offline_member_limit"
    )
    code = member_code(store, "M0004")
    assert upload(kiosk, offline_event(store, "M0004", code=code))[0]["status"] == "applied"
    conflict(store, kiosk, offline_event(store, "M0004", code=code), "offline_member_limit")

    old = member_code(store, "M0004", age_s=9 * 3600)  # expired 9 h ago: beyond the 8 h window
    conflict(store, kiosk, offline_event(store, "M0004", code=old), "outside_code_window")
    early = offline_event(
        store, "M0004", at=(store.clock.now() - dt.timedelta(minutes=5)).isoformat()
    )
    conflict(store, kiosk, early, "outside_code_window")

    assert balance(store, "M0004") == 23000 - 300  # the one genuine spend


def test_the_kiosk_cap_counts_every_member(kiosk, store):
    store.settings.offline_kiosk_daily_points = 600
    assert upload(kiosk, offline_event(store, "M0002"))[0]["status"] == "applied"
    assert upload(kiosk, offline_event(store, "M0003"))[0]["status"] == "applied"
    conflict(store, kiosk, offline_event(store, "M0004"), "offline_kiosk_limit")


def test_the_same_code_twice_at_one_kiosk_within_the_cap_is_fine(kiosk, store):
    store.settings.offline_member_daily_points = 600  # two totes a day
    code = member_code(store, "M0004")
    first, second = (offline_event(store, "M0004", code=code) for _ in "ab")
    assert [r["status"] for r in upload(kiosk, first, second)] == ["applied", "applied"]
    assert balance(store, "M0004") == 23000 - 600
    conflict(store, kiosk, offline_event(store, "M0004", code=code), "offline_member_limit")


def test_a_code_used_by_another_kiosk_is_refused(kiosk, other_kiosk, store):
    code = member_code(store, "M0004")
    assert other_kiosk.post("/v1/members/resolve", {"code": code}).status_code == 200
    conflict(store, kiosk, offline_event(store, "M0004", code=code), "code_replayed")
    # and the other way round: used offline here first, then at another kiosk
    mine = member_code(store, "M0003")
    assert upload(kiosk, offline_event(store, "M0003", code=mine))[0]["status"] == "applied"
    resp = other_kiosk.post("/v1/members/resolve", {"code": mine})
    assert resp.status_code == 409 and resp.json()["error"] == "code_replayed"


def test_a_code_uploaded_by_another_kiosk_offline_is_refused(kiosk, other_kiosk, store):
    code = member_code(store, "M0003")
    assert upload(kiosk, offline_event(store, "M0003", code=code))[0]["status"] == "applied"
    with store.db.transaction() as conn:  # the other kiosk's totes
        conn.execute("UPDATE compartments SET stock = 5 WHERE kiosk_id = 'kiosk-02' AND number = 2")
    conflict(store, other_kiosk, offline_event(store, "M0003", code=code), "code_replayed")


def test_a_points_and_cash_item_is_never_sold_offline(kiosk, store):
    cash = offline_event(store, "M0004", "GIFT-EARBUDS", 2000, 4)
    conflict(store, kiosk, cash, "cash_needs_online")


@pytest.mark.parametrize("compartment", [None, 42], ids=["none", "not-this-kiosks"])
def test_a_gift_needs_a_compartment_of_this_kiosk(kiosk, store, compartment):
    event = offline_event(store, "M0004", compartment=compartment)
    reason = "invalid_payload" if compartment is None else "unknown_compartment"
    conflict(store, kiosk, event, reason)


@pytest.mark.parametrize(
    "txn_id", ["x" * 1000, "not-a-uuid", new_txn().upper()], ids=["1000 chars", "text", "upper"]
)
def test_the_txn_id_must_be_a_uuid(kiosk, store, txn_id):
    event = with_payload(offline_event(store, "M0004"), txn_id=txn_id)
    result = conflict(store, kiosk, event, "invalid_payload")
    assert len(result["message"]) < 200
    rows = store.db.connection().execute("SELECT payload FROM kiosk_events").fetchall()
    assert all(len(r["payload"]) < 5000 for r in rows)


def test_a_1mb_txn_id_is_refused_whole_before_it_is_read(kiosk, store):
    """Found: the server applied an offline redemption with a 1 MB txn_id. Now the body limit
    (api/limits.py) refuses the upload whole: 413, nothing stored or charged."""
    event = with_payload(offline_event(store, "M0004"), txn_id="x" * 1_000_000)
    before = db_snapshot(store)
    resp = kiosk.post("/v1/kiosks/events", {"events": [event]})
    assert (resp.status_code, resp.json()["error"]) == (413, "body_too_large")
    assert db_snapshot(store) == before


def test_a_code_that_is_not_a_member_code_is_refused(kiosk, store):
    now = int(store.clock.now().timestamp())
    badge = codes.issue(store.signing_key, codes.CodeKind.STAFF, "M0004", now)
    conflict(store, kiosk, offline_event(store, "M0004", code=badge), "not_a_member_code")
