"""Limits on what a caller may make the server store or echo (issue 11): bounded heartbeats and
event payloads, typed per event kind; names without control or bidi characters; refusal
messages that never echo client input at length. Each attack is refused with a 4xx
``{error, message}`` and changes nothing."""

from __future__ import annotations

import pytest

from kiosk.sync.heartbeat import Heartbeat
from storeserver import accounts, staff
from storeserver.errors import MAX_MESSAGE_CHARS, ApiError, BadRequest, shown

from .conftest import db_snapshot, offline_event

AT = "2026-11-23T10:00:00+08:00"


def refused(store, status: int, error: str, call) -> dict:
    before = db_snapshot(store)
    resp = call()
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "message"} and body["error"] == error, body
    assert body["message"].strip() and len(body["message"]) <= MAX_MESSAGE_CHARS
    assert db_snapshot(store) == before, "a refused request changed the database"
    return body


def event(kind: str, payload: dict, event_id: str = "ev-1") -> dict:
    return {"events": [{"event_id": event_id, "kind": kind, "at": AT, "payload": payload}]}


def stored_health(store, kiosk_id: str = "kiosk-01"):
    row = store.db.connection().execute("SELECT health FROM kiosks WHERE id = ?", (kiosk_id,))
    return row.fetchone()["health"]


# ---- heartbeat ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "health",
    [
        {"printer": "x" * 1001},  # one string over 1000 characters
        {"log": ["line"] * 101},  # a list over 100 items
        {f"k{i}": i for i in range(65)},  # over 64 keys
        {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}},  # deeper than 6
        {"sync": {"outbox": -1}},  # the sync worker's figures are typed
        {"sync": {"outbox": "many"}},
        {"health_error": "x" * 301},
        {f"probe{i}": "y" * 900 for i in range(20)},  # 18 KB in all: over 16 KB
    ],
    ids=["string", "list", "keys", "depth", "negative", "text", "error", "total"],
)
def test_an_oversized_or_mistyped_heartbeat_is_refused_and_not_stored(store, kiosk, health):
    body = refused(
        store,
        422,
        "invalid_request",
        lambda: kiosk.post("/v1/kiosks/heartbeat", {"health": health}),
    )
    assert body["message"].startswith("health")
    assert stored_health(store) is None


def test_what_a_kiosk_reports_is_stored_and_listed(store, kiosk, staff) -> None:
    class NoOutbox:
        def __len__(self) -> int:
            return 3

        def alerts(self) -> list:
            return []

    probes = {"printer": {"paper": "near_end"}, "doors": [1, 2], "version": "1.4.0"}
    report = Heartbeat(lambda: probes, NoOutbox(), on_provider_error=lambda: None).report(
        failures=2
    )
    resp = kiosk.post("/v1/kiosks/heartbeat", {"health": report})
    assert resp.status_code == 200, resp.text
    (listed,) = [k for k in staff.get("/v1/kiosks").json()["kiosks"] if k["id"] == "kiosk-01"]
    assert listed["health"] == report  # as sent: nulls kept, nothing added


# ---- events ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("fault", {"detail": "x" * 1001}),
        ("fault", {f"k{i}": 1 for i in range(33)}),
        ("needs_check", {"reason": ["a"] * 101}),
        (
            "door_alarm",
            {
                "note": "z" * 1000,
                "more": "z" * 1000,
                "again": "z" * 1000,
                "x": "z" * 1000,
                "y": "z" * 200,
            },
        ),
    ],
    ids=["string", "keys", "list", "total"],
)
def test_an_oversized_event_payload_is_refused_whole(store, kiosk, kind, payload):
    refused(
        store, 422, "invalid_request", lambda: kiosk.post("/v1/kiosks/events", event(kind, payload))
    )


@pytest.mark.parametrize(
    ("kind", "payload", "field"),
    [
        ("inventory", {"compartment": 2, "sku": "GIFT-TOTE", "count": "4"}, "count"),
        ("inventory", {"compartment": 2, "sku": "GIFT-TOTE", "count": True}, "count"),
        ("inventory", {"compartment": 2, "count": 4, "note": "hi"}, "note"),
        (
            "inventory",
            {"compartment": 2, "count": 4, "after_hold_seq": 0, "open_holds": ["t"] * 51},
            "open_holds",
        ),
        ("fault", {"compartment": 100}, "compartment"),
        ("fault", {"what": "w" * 65}, "what"),
        ("fault", {"extra": {"a": {"b": {"c": 1}}}}, "nested"),
        ("needs_check", {"compartment": 1, "txn_id": "no spaces please"}, "txn_id"),
    ],
    ids=[
        "count-text",
        "count-bool",
        "unknown-key",
        "open-holds",
        "compartment",
        "what",
        "extra-depth",
        "txn-id",
    ],
)
def test_an_event_that_does_not_fit_its_kind_is_rejected_alone(store, kiosk, kind, payload, field):
    good = {"event_id": "ev-ok", "kind": "fault", "at": AT, "payload": {"what": "paper_low"}}
    body = event(kind, payload)
    body["events"].append(good)
    alerts_before = store.db.connection().execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
    stock_before = db_snapshot(store)["compartments"]
    resp = kiosk.post("/v1/kiosks/events", body)
    assert resp.status_code == 200, resp.text
    bad, ok = resp.json()["results"]
    assert (bad["status"], bad["reason"]) == ("rejected", "invalid_payload"), bad
    assert field in bad["message"] or "nested" in bad["message"], bad
    assert ok["status"] == "applied"
    assert db_snapshot(store)["compartments"] == stock_before
    alerts_after = store.db.connection().execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
    assert alerts_after == alerts_before + 1  # only the good fault


def test_an_offline_redemption_may_carry_the_member_code_within_bounds(store, kiosk):
    good = offline_event(store, "M0002", event_id="off-1")  # a real code: well under 256
    too_long = offline_event(store, "M0002", event_id="off-2", code="LK1.M." + "a" * 251)
    resp = kiosk.post("/v1/kiosks/events", {"events": [good, too_long]})
    assert resp.status_code == 200, resp.text
    first, second = resp.json()["results"]
    assert first["status"] == "applied", first
    assert (second["status"], second["reason"]) == ("conflict", "invalid_payload"), second
    assert "member_code" in second["message"]


# ---- names ----------------------------------------------------------------------------------
HIDDEN = ["\u202e", "\u2066", "\u200f", "\u200b", "\ufeff", "\x07", "\n", "\u2028"]


@pytest.mark.parametrize("hidden", HIDDEN, ids=lambda c: f"U+{ord(c):04X}")
def test_a_member_name_with_a_control_or_bidi_character_is_refused(store, staff, hidden):
    body = refused(
        store,
        422,
        "invalid_request",
        lambda: staff.post("/v1/members", {"name": f"Ali{hidden}ce", "phone": "13500001111"}),
    )
    assert f"U+{ord(hidden):04X}" in body["message"] and body["message"].startswith("name")


def test_a_plain_name_in_any_script_is_kept(store, staff):
    for i, name in enumerate(("赵敏", "Zoë O'Brien", "محمد", "Ана-Мария")):
        resp = staff.post("/v1/members", {"name": name, "phone": f"1350000111{i}"})
        assert resp.status_code == 201, resp.text
        row = store.db.connection().execute(
            "SELECT name FROM members WHERE id = ?", (resp.json()["member_id"],)
        )
        assert row.fetchone()["name"] == name


@pytest.mark.parametrize("hidden", HIDDEN, ids=lambda c: f"U+{ord(c):04X}")
def test_staff_names_and_account_ids_with_hidden_characters_are_refused(store, hidden):
    before = db_snapshot(store)
    with store.db.transaction() as conn, pytest.raises(BadRequest) as caught:
        staff.add_staff(conn, store.clock, "S0009", f"Wa{hidden}ng", "246810")
    assert caught.value.code == "invalid_name" and f"U+{ord(hidden):04X}" in caught.value.message
    with store.db.transaction() as conn, pytest.raises(BadRequest):
        accounts.add_account(conn, store.clock, f"till{hidden}1", "cashier")
    assert db_snapshot(store) == before


def test_a_till_ref_with_a_control_character_is_refused(store, staff):
    refused(
        store,
        422,
        "invalid_request",
        lambda: staff.post("/v1/members/M0001/purchases", {"amount_cents": 100, "ref": "r\u202e1"}),
    )


# ---- messages -------------------------------------------------------------------------------
def test_no_refusal_echoes_a_long_value(store, kiosk, staff):
    long = "W" * 2000
    body = refused(store, 404, "unknown_wheel", lambda: kiosk.get(f"/v1/wheels/{long}"))
    assert "W" * 70 not in body["message"] and "…" in body["message"]
    body = refused(store, 404, "unknown_txn", lambda: kiosk.post(f"/v1/redemptions/{long}/capture"))
    assert "W" * 70 not in body["message"]
    body = refused(store, 404, "unknown_member", lambda: staff.get(f"/v1/members/{long}"))
    assert "W" * 70 not in body["message"]
    key = "k" * 500  # a made-up key is named in the 422's location
    body = refused(
        store, 422, "invalid_request",
        lambda: kiosk.post("/v1/redemptions", {key: 1}),
    )  # fmt: skip
    assert "k" * 70 not in body["message"]


def test_shown_and_the_message_cap():
    assert shown("abc") == "'abc'"
    assert len(shown("x" * 1000)) == 64 and shown("x" * 1000).endswith("…")
    assert len(ApiError("code", "m" * 5000).message) == MAX_MESSAGE_CHARS
