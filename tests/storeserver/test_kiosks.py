"""Enrollment, tokens, heartbeats and outbox events."""

from __future__ import annotations

import pytest
import requests

from storeserver import kiosks
from storeserver.errors import ApiError

from .conftest import KIOSK, db_snapshot, offline_event


def enroll_with(server, code: str, kiosk_id: str) -> requests.Response:
    return requests.post(
        server.url + "/v1/kiosks/enroll",
        json={"enrollment_code": code, "kiosk_id": kiosk_id},
        timeout=10,
    )


def new_code(store, kiosk_id: str, replace: bool = False) -> str:
    with store.db.transaction() as conn:
        return kiosks.new_enrollment_code(conn, store.clock, kiosk_id, replace=replace)


def test_enrollment_code_is_one_time(server, store):
    with store.db.transaction() as conn:
        code = kiosks.new_enrollment_code(conn, store.clock, "kiosk-09")
    url = server.url + "/v1/kiosks/enroll"
    first = requests.post(url, json={"enrollment_code": code, "kiosk_id": "kiosk-09"}, timeout=10)
    assert first.status_code == 200 and first.json()["public_key"]
    again = requests.post(url, json={"enrollment_code": code, "kiosk_id": "kiosk-10"}, timeout=10)
    assert again.status_code == 401 and again.json()["error"] == "enrollment_code_used"


def test_a_replacement_code_takes_the_id_over_and_the_old_token_stops_at_once(server, kiosk):
    from .conftest import enroll

    fresh = enroll(server, "kiosk-01", replace=True)
    assert fresh.get("/v1/catalog").status_code == 200
    assert kiosk.get("/v1/catalog").status_code == 401


def test_a_code_for_another_kiosk_is_refused_and_changes_nothing(server, store, kiosk):
    code = new_code(store, "kiosk-09")
    before = db_snapshot(store)
    refused = enroll_with(server, code, KIOSK)  # the attacker aims at a live kiosk's id
    assert refused.status_code == 403, refused.text
    assert refused.json() == {
        "error": "enrollment_code_wrong_kiosk",
        "message": "this enrollment code is not for kiosk kiosk-01: make one for it with "
        "'storeserver enroll-code --kiosk kiosk-01'",
    }
    assert db_snapshot(store) == before
    assert kiosk.get("/v1/catalog").status_code == 200  # the real kiosk is not locked out
    assert enroll_with(server, code, "kiosk-09").status_code == 200  # still good for its own


def test_a_spare_code_cannot_take_over_an_enrolled_kiosk(server, store):
    spare = new_code(store, KIOSK)  # made before the kiosk enrolled, so without --replace
    from .conftest import enroll

    kiosk = enroll(server, KIOSK)
    before = db_snapshot(store)
    refused = enroll_with(server, spare, KIOSK)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "kiosk_already_enrolled"
    assert "storeserver enroll-code --kiosk kiosk-01 --replace" in refused.json()["message"]
    assert db_snapshot(store) == before
    assert kiosk.get("/v1/catalog").status_code == 200


def test_a_plain_code_for_an_enrolled_kiosk_is_not_made(store, kiosk):
    before = db_snapshot(store)
    with pytest.raises(ApiError) as refused, store.db.transaction() as conn:
        kiosks.new_enrollment_code(conn, store.clock, KIOSK)
    assert refused.value.code == "kiosk_already_enrolled" and "--replace" in refused.value.message
    assert db_snapshot(store) == before


def test_a_code_made_before_codes_named_their_kiosk_is_refused(server, store):
    code = new_code(store, "kiosk-09")
    with store.db.transaction() as conn:  # as a database from before the column was added
        conn.execute("UPDATE enrollment_codes SET kiosk_id = NULL")
    refused = enroll_with(server, code, "kiosk-09")
    assert refused.status_code == 403 and refused.json()["error"] == "enrollment_code_wrong_kiosk"


def test_heartbeat_shows_in_staff_list(kiosk, staff):
    health = {"printer": "paper_low", "doors": {"1": "closed"}, "outbox": 2, "version": "0.1.0"}
    assert kiosk.post("/v1/kiosks/heartbeat", {"health": health}).status_code == 200
    listed = {k["id"]: k for k in staff.get("/v1/kiosks").json()["kiosks"]}
    assert listed["kiosk-01"]["health"] == health and listed["kiosk-01"]["last_seen"]


def test_inventory_event_sets_stock_once(kiosk):
    event = {
        "event_id": "inv-1",
        "kind": "inventory",
        "at": "2026-11-23T10:00:00+08:00",
        "payload": {"compartment": 6, "sku": "GIFT-MUG", "count": 4},
    }
    first = kiosk.post("/v1/kiosks/events", {"events": [event]}).json()["results"]
    assert first == [{"event_id": "inv-1", "status": "applied", "stock": 4}]
    stock = {i["sku"]: i["stock"] for i in kiosk.get("/v1/catalog").json()["items"]}
    assert stock["GIFT-MUG"] == 3 + 4
    # replay with a different count changes nothing: the event id was applied once
    replay = {**event, "payload": {**event["payload"], "count": 9}}
    assert kiosk.post("/v1/kiosks/events", {"events": [replay]}).json()["results"] == first
    assert {i["sku"]: i["stock"] for i in kiosk.get("/v1/catalog").json()["items"]}["GIFT-MUG"] == 7


def test_offline_redemption_applied_and_conflict(kiosk, staff, store):
    ok = offline_event(store, "M0002", event_id="off-1")
    short = offline_event(store, "M0005", event_id="off-2")

    def tote_stock() -> int:
        row = store.db.connection().execute(
            "SELECT stock FROM compartments WHERE kiosk_id = 'kiosk-01' AND number = 2"
        )
        return row.fetchone()[0]

    before = tote_stock()
    results = kiosk.post("/v1/kiosks/events", {"events": [ok, short]}).json()["results"]
    assert results[0]["status"] == "applied"
    assert results[1]["status"] == "conflict" and results[1]["reason"] == "insufficient_points"
    assert staff.get("/v1/members/M0002").json()["balance"] == 2400
    assert staff.get("/v1/members/M0005").json()["balance"] == 80
    # both totes are out of the locker, charged or not: the stock counts both
    assert tote_stock() == before - 2
    alerts = store.db.connection().execute("SELECT kind FROM alerts").fetchall()
    assert [a[0] for a in alerts] == ["offline_conflict"]
    # uploading the same batch again (the kiosk's outbox retried) changes nothing
    again = kiosk.post("/v1/kiosks/events", {"events": [ok, short]}).json()["results"]
    assert again == results
    assert staff.get("/v1/members/M0002").json()["balance"] == 2400
    assert tote_stock() == before - 2


def test_offline_coupon_is_refused_coupons_need_the_server(kiosk, store):
    event = offline_event(store, "M0002", "CPN-10", 500, 1)
    result = kiosk.post("/v1/kiosks/events", {"events": [event]}).json()["results"][0]
    assert result["status"] == "conflict" and result["reason"] == "not_offline_item"


def test_heartbeat_with_nan_is_refused(kiosk):
    resp = kiosk.session.post(
        kiosk.base_url + "/v1/kiosks/heartbeat",
        timeout=10,
        data=b'{"health": {"temp": NaN}}',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 422 and "NaN" in resp.json()["message"]


def test_wrong_method_says_what_is_allowed(kiosk):
    resp = kiosk.session.delete(kiosk.base_url + "/v1/catalog", timeout=10)
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET"
    assert resp.json()["error"] == "method_not_allowed"


def test_an_older_database_gains_the_codes_kiosk_column(tmp_path):
    import sqlite3

    from storeserver.db import Database
    from storeserver.migrations.runner import migrate

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE enrollment_codes (code_sha256 TEXT PRIMARY KEY, created_at TEXT NOT NULL,"
        " expires_at TEXT NOT NULL, used_by TEXT)"
    )
    old.execute("INSERT INTO enrollment_codes VALUES ('abc', 't0', 't1', NULL)")
    old.commit()
    old.close()
    migrate(str(path), say=lambda _: None)  # revision 0001 runs the old open-time upgrades
    db = Database(path)
    try:
        row = db.connection().execute("SELECT * FROM enrollment_codes").fetchone()
        assert (row["kiosk_id"], row["replace_existing"]) == (None, 0)
    finally:
        db.close()


def test_event_ids_are_each_kiosks_own(kiosk, other_kiosk, store):
    """Kiosk B's event id used to collide with kiosk A's (event_id_reused): now each kiosk's
    ids are its own, and a replay is still answered once per kiosk."""
    counts = {}
    for client, count in ((kiosk, 4), (other_kiosk, 2)):
        event = {
            "event_id": "inv-1",
            "kind": "inventory",
            "at": "2026-11-23T10:00:00+08:00",
            "payload": {"compartment": 6, "sku": "GIFT-MUG", "count": count},
        }
        resp = client.post("/v1/kiosks/events", {"events": [event]})
        assert resp.json()["results"] == [
            {"event_id": "inv-1", "status": "applied", "stock": count}
        ]
        again = {**event, "payload": {**event["payload"], "count": 9}}
        assert client.post("/v1/kiosks/events", {"events": [again]}).json() == resp.json()
        counts[client] = count
    rows = store.db.connection().execute(
        "SELECT kiosk_id, stock FROM compartments WHERE number = 6 ORDER BY kiosk_id"
    )
    assert [tuple(r) for r in rows] == [("kiosk-01", 4), ("kiosk-02", 2)]


DOOR_ALARM = {"compartment": 3, "what": "tamper", "since": "2026-11-23T09:58:00+08:00"}


def door_alarm(event_id: str, payload: dict) -> dict:
    return {"event_id": event_id, "kind": "door_alarm", "at": "2026-11-23T10:00:00+08:00",
            "payload": payload}  # fmt: skip


def test_a_door_alarm_is_listed_as_the_kiosks_alert_newest_first(kiosk, staff, other_kiosk):
    left_open = {**DOOR_ALARM, "what": "left_open", "compartment": 2, "open_s": 130.5}
    batch = [door_alarm("da-1", DOOR_ALARM), door_alarm("da-2", left_open)]
    results = kiosk.post("/v1/kiosks/events", {"events": batch}).json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]
    kiosk.post("/v1/kiosks/events", {"events": batch})  # a retried upload: no second alert

    listed = staff.get("/v1/kiosks/kiosk-01/alerts").json()["alerts"]
    assert [(a["kind"], a["detail"]) for a in listed] == [
        ("door_alarm", left_open), ("door_alarm", DOOR_ALARM),
    ]  # fmt: skip
    assert all(a["at"] and isinstance(a["id"], int) for a in listed)
    assert staff.get("/v1/kiosks/kiosk-02/alerts").json()["alerts"] == []
    counts = {k["id"]: k["open_alerts"] for k in staff.get("/v1/kiosks").json()["kiosks"]}
    assert counts == {"kiosk-01": 2, "kiosk-02": 0}


def test_alerts_of_a_kiosk_never_enrolled_are_not_found(staff):
    resp = staff.get("/v1/kiosks/kiosk-77/alerts")
    assert resp.status_code == 404 and resp.json()["error"] == "unknown_kiosk"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**DOOR_ALARM, "what": "opened"}, "what"),
        ({k: v for k, v in DOOR_ALARM.items() if k != "compartment"}, "compartment"),
        ({**DOOR_ALARM, "compartment": "3"}, "compartment"),
        ({k: v for k, v in DOOR_ALARM.items() if k != "since"}, "since"),
        ({**DOOR_ALARM, "open_s": -1}, "open_s"),
        ({**DOOR_ALARM, "door": "3"}, "door"),
    ],
    ids=["what", "no-compartment", "compartment-text", "no-since", "open_s", "unknown-key"],
)
def test_a_door_alarm_payload_is_typed(kiosk, store, payload, field):
    (result,) = kiosk.post("/v1/kiosks/events", {"events": [door_alarm("da-x", payload)]}).json()[
        "results"
    ]
    assert result["status"] == "rejected" and result["reason"] == "invalid_payload", result
    assert field in result["message"]
    assert store.db.connection().execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0


def test_an_alert_stays_open_until_staff_mark_it_handled_once(kiosk, staff, other_kiosk, store):
    kiosk.post("/v1/kiosks/events", {"events": [door_alarm("da-1", DOOR_ALARM)]})
    (alert,) = staff.get("/v1/kiosks/kiosk-01/alerts").json()["alerts"]
    assert (alert["handled_at"], alert["handled_by"]) == (None, None)
    path = f"/v1/kiosks/kiosk-01/alerts/{alert['id']}/handled"

    # the other kiosk's path cannot reach it
    wrong = staff.post(f"/v1/kiosks/kiosk-02/alerts/{alert['id']}/handled")
    assert wrong.status_code == 404 and wrong.json()["error"] == "unknown_alert"
    handled = staff.post(path).json()
    assert handled["id"] == alert["id"] and handled["handled_at"] and handled["handled_by"]
    assert staff.get("/v1/kiosks/kiosk-01/alerts").json()["alerts"] == []
    assert staff.get("/v1/kiosks/kiosk-01/alerts?handled=true").json()["alerts"] == [handled]
    counts = {k["id"]: k["open_alerts"] for k in staff.get("/v1/kiosks").json()["kiosks"]}
    assert counts["kiosk-01"] == 0
    store.clock.advance(seconds=60)
    assert staff.post(path).json() == handled  # again: the first mark stays
    missing = staff.post("/v1/kiosks/kiosk-01/alerts/999/handled")
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_alert"


def test_an_older_database_gains_the_alerts_handled_columns(tmp_path):
    import sqlite3

    from storeserver.db import Database
    from storeserver.migrations.runner import migrate

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE alerts (id INTEGER PRIMARY KEY, kiosk_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " at TEXT NOT NULL, detail TEXT NOT NULL)"
    )
    old.execute("INSERT INTO alerts VALUES (1, 'kiosk-01', 'fault', 't0', '{}')")
    old.commit()
    old.close()
    migrate(str(path), say=lambda _: None)  # revision 0001 runs the old open-time upgrades
    db = Database(path)
    try:
        row = db.connection().execute("SELECT * FROM alerts").fetchone()
        assert (row["kind"], row["handled_at"], row["handled_by"]) == ("fault", None, None)
    finally:
        db.close()
