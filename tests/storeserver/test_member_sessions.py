"""Member sessions over real HTTP: the attacks of issue 11 on holds and spins, each refused with
403 ``{error, message}`` and nothing changed (db_snapshot before == after)."""

from __future__ import annotations

import hashlib

import pytest

from storeserver import member_sessions

from .conftest import db_snapshot, new_txn

HEADER = member_sessions.HEADER


def hold(member="M0004", sku="GIFT-MUG", compartment=1, points=800, txn=None) -> dict:
    return {
        "txn_id": txn or new_txn(),
        "member_id": member,
        "sku": sku,
        "compartment": compartment,
        "points": points,
        "cash_cents": 0,
    }


def spin(member="M0004", txn=None) -> dict:
    return {"txn_id": txn or new_txn(), "member_id": member, "wheel_id": "LUCKY"}


def refused_403(store, error: str, call) -> dict:
    before = db_snapshot(store)
    resp = call()
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert set(body) == {"error", "message"} and body["error"] == error, body
    assert body["message"].strip()
    assert db_snapshot(store) == before, "a refused request changed the database"
    return body


def test_resolve_opens_a_session_kept_only_as_its_hash(kiosk, store):
    resp = kiosk.resolve("M0004")
    assert resp.status_code == 200, resp.text
    session = resp.json()["member_session"]
    assert session["header"] == HEADER and session["token"].startswith("ms_")
    assert resp.json()["member_id"] == "M0004" and session["expires_at"]
    rows = store.db.connection().execute("SELECT * FROM member_sessions").fetchall()
    assert [r["member_id"] for r in rows] == ["M0004"]
    assert rows[0]["token_sha256"] == hashlib.sha256(session["token"].encode()).hexdigest()
    assert session["token"] not in str([tuple(r) for r in rows])


@pytest.mark.parametrize("path,body", [("/v1/redemptions", hold()), ("/v1/wheel/spins", spin())])
def test_a_hold_or_spin_for_a_member_whose_code_was_never_resolved(kiosk, store, path, body):
    """The attack: the kiosk token alone spent M0004's points (coupon held and captured)."""
    refused_403(store, "member_session_required", lambda: kiosk.post(path, body))


@pytest.mark.parametrize("path,body", [("/v1/redemptions", hold()), ("/v1/wheel/spins", spin())])
def test_another_members_session_is_refused(kiosk, store, path, body):
    headers = kiosk.member_session("M0005")  # the member at the kiosk: 80 points
    body = refused_403(
        store, "member_session_invalid", lambda: kiosk.post(path, body, headers=headers)
    )
    assert "M0004" not in body["message"]


@pytest.mark.parametrize("path,body", [("/v1/redemptions", hold()), ("/v1/wheel/spins", spin())])
def test_a_session_from_another_kiosk_is_refused(kiosk, other_kiosk, store, path, body):
    headers = other_kiosk.member_session("M0004")
    refused_403(store, "member_session_invalid", lambda: kiosk.post(path, body, headers=headers))


def test_an_expired_session_is_refused_but_a_replay_still_answers(kiosk, store, clock):
    store.settings.member_session_s = 60  # shorter than the hold's 10 minutes
    headers = kiosk.member_session("M0004")
    first_body = hold(sku="CPN-10", compartment=None, points=500)
    first = kiosk.post("/v1/redemptions", first_body, headers=headers)
    assert first.status_code == 200, first.text
    clock.advance(seconds=61)
    # the hold's own retry (a lost answer) is answered as the first time, session or not
    again = kiosk.post("/v1/redemptions", first_body, headers=headers)
    assert again.status_code == 200 and again.json() == first.json()
    # capture and void need none: the hold exists (crash recovery works without a member)
    captured = kiosk.post(f"/v1/redemptions/{first_body['txn_id']}/capture")
    assert captured.status_code == 200 and captured.json()["state"] == "captured"
    # a new hold with the expired session is refused
    refused_403(
        store,
        "member_session_invalid",
        lambda: kiosk.post("/v1/redemptions", hold(), headers=headers),
    )


def test_a_refusal_tells_nothing_about_which_members_exist(kiosk, store):
    """No session, or a session for someone else: the same answer for a real member id and a
    made-up one (it was 404 unknown_member against 200)."""
    mine = kiosk.member_session("M0005")
    answers = set()
    for member in ("M0004", "NOBODY"):
        for headers in ({}, mine):
            for path, body in (
                ("/v1/redemptions", hold(member)),
                ("/v1/wheel/spins", spin(member)),
            ):
                resp = kiosk.post(path, body, headers=headers)
                assert resp.status_code == 403
                answers.add((bool(headers), path, resp.json()["error"], resp.json()["message"]))
            resp = kiosk.get(f"/v1/wheels/LUCKY?member_id={member}", headers=headers)
            assert resp.status_code == 403
            answers.add((bool(headers), "spins_left", resp.json()["error"], resp.json()["message"]))
    assert len(answers) == 6  # per (session or not, call): one answer for both member ids


def test_a_hold_answer_shows_the_balance_of_the_bound_member_only(kiosk, store):
    headers = kiosk.member_session("M0004")
    resp = kiosk.post("/v1/redemptions", hold(), headers=headers)
    assert resp.status_code == 200 and resp.json()["member_id"] == "M0004"
    assert resp.json()["balance"] == 23000 - 800


def test_a_retried_resolve_replaces_the_session_of_that_code(kiosk, store):
    from .conftest import member_code

    code = member_code(store, "M0004")
    first = kiosk.post("/v1/members/resolve", {"code": code}).json()["member_session"]["token"]
    second = kiosk.post("/v1/members/resolve", {"code": code}).json()["member_session"]["token"]
    assert first != second
    refused_403(
        store,
        "member_session_invalid",
        lambda: kiosk.post("/v1/redemptions", hold(), headers={HEADER: first}),
    )
    ok = kiosk.post("/v1/redemptions", hold(), headers={HEADER: second})
    assert ok.status_code == 200, ok.text


def test_an_oversized_session_header_is_refused_like_any_other(kiosk, store):
    refused_403(
        store,
        "member_session_invalid",
        lambda: kiosk.post("/v1/redemptions", hold(), headers={HEADER: "ms_" + "x" * 5000}),
    )
