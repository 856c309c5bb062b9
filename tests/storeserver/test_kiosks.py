"""Enrollment, tokens, heartbeats and outbox events."""

from __future__ import annotations

import requests

from storeserver import kiosks

from .conftest import offline_event


def test_enrollment_code_is_one_time(server, store):
    with store.db.transaction() as conn:
        code = kiosks.new_enrollment_code(conn, store.clock)
    url = server.url + "/v1/kiosks/enroll"
    first = requests.post(url, json={"enrollment_code": code, "kiosk_id": "kiosk-09"}, timeout=10)
    assert first.status_code == 200 and first.json()["public_key"]
    again = requests.post(url, json={"enrollment_code": code, "kiosk_id": "kiosk-10"}, timeout=10)
    assert again.status_code == 401 and again.json()["error"] == "enrollment_code_used"


def test_reenrolling_rotates_the_token(server, kiosk):
    from .conftest import enroll

    fresh = enroll(server, "kiosk-01")
    assert fresh.get("/v1/catalog").status_code == 200
    assert kiosk.get("/v1/catalog").status_code == 401


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
