"""Holds over real HTTP: redeem, capture, void, idempotency, points+cash, coupons, expiry."""

from __future__ import annotations

import datetime as dt

from .conftest import new_txn


def redeem(
    client,
    member="M0002",
    sku="GIFT-MUG",
    compartment=1,
    points=800,
    cash_cents=0,
    txn=None,
    headers=None,
):
    """A hold as the kiosk makes it: the member's code resolved first, its session sent."""
    body = {
        "txn_id": txn or new_txn(),
        "member_id": member,
        "sku": sku,
        "compartment": compartment,
        "points": points,
        "cash_cents": cash_cents,
    }
    headers = {**client.member_session(member), **(headers or {})}
    return body, client.post("/v1/redemptions", body, headers=headers)


def stock(kiosk, sku):
    return next(i["stock"] for i in kiosk.get("/v1/catalog").json()["items"] if i["sku"] == sku)


def test_redeem_holds_then_capture_commits(kiosk, staff):
    before = staff.get("/v1/members/M0002").json()["balance"]
    body, resp = redeem(kiosk)
    assert resp.status_code == 200, resp.text
    hold = resp.json()
    assert hold["state"] == "held" and hold["balance"] == before - 800
    assert stock(kiosk, "GIFT-MUG") == 2
    done = kiosk.post(f"/v1/redemptions/{body['txn_id']}/capture").json()
    assert done["state"] == "captured"
    assert staff.get("/v1/members/M0002").json()["balance"] == before - 800
    # capture again: same state, no second charge
    assert kiosk.post(f"/v1/redemptions/{body['txn_id']}/capture").json()["state"] == "captured"
    assert staff.get("/v1/members/M0002").json()["balance"] == before - 800


def test_spend_takes_soonest_expiring_lots_first(kiosk, store):
    _, resp = redeem(
        kiosk, member="M0002", sku="GIFT-MUG", points=800
    )  # lots: 600 (5 d), 900 (25 d), 1200
    assert resp.status_code == 200
    conn = store.db.connection()
    remaining = [
        r[0]
        for r in conn.execute(
            "SELECT remaining FROM lots WHERE member_id = 'M0002' ORDER BY expires_on"
        )
    ]
    assert remaining == [0, 700, 1200]


def test_void_returns_points_and_stock(kiosk, staff):
    before = staff.get("/v1/members/M0002").json()["balance"]
    body, _ = redeem(kiosk)
    voided = kiosk.post(f"/v1/redemptions/{body['txn_id']}/void", {"reason": "door jammed"}).json()
    assert voided["state"] == "voided" and voided["void_reason"] == "door jammed"
    assert staff.get("/v1/members/M0002").json()["balance"] == before
    assert stock(kiosk, "GIFT-MUG") == 3
    # void is idempotent; capture after void is refused
    assert (
        kiosk.post(f"/v1/redemptions/{body['txn_id']}/void", {"reason": "again"}).status_code == 200
    )
    resp = kiosk.post(f"/v1/redemptions/{body['txn_id']}/capture")
    assert resp.status_code == 409 and resp.json()["error"] == "hold_voided"


def test_same_request_twice_gives_the_first_answer(kiosk, staff):
    body, first = redeem(kiosk)
    again = kiosk.post("/v1/redemptions", body)  # a retry needs no session: the hold exists
    assert again.status_code == 200 and again.json() == first.json()
    assert staff.get("/v1/members/M0002").json()["balance"] == 2700 - 800
    body2 = {**body, "sku": "GIFT-TOTE", "compartment": 2, "points": 300}
    resp = kiosk.post("/v1/redemptions", body2, headers=kiosk.member_session("M0002"))
    assert resp.status_code == 409 and resp.json()["error"] == "txn_id_reused"


def test_captured_hold_cannot_be_voided(kiosk):
    body, _ = redeem(kiosk)
    kiosk.post(f"/v1/redemptions/{body['txn_id']}/capture")
    resp = kiosk.post(f"/v1/redemptions/{body['txn_id']}/void", {"reason": "late"})
    assert resp.status_code == 409 and resp.json()["error"] == "already_captured"


def test_other_kiosk_cannot_see_or_touch_a_hold(kiosk, other_kiosk):
    body, _ = redeem(kiosk)
    assert other_kiosk.get(f"/v1/redemptions/{body['txn_id']}").status_code == 404
    assert other_kiosk.post(f"/v1/redemptions/{body['txn_id']}/capture").status_code == 404


def test_insufficient_points_and_empty_compartment(kiosk):
    _, resp = redeem(kiosk, member="M0005", sku="GIFT-TOTE", compartment=2, points=300)
    assert resp.status_code == 409 and resp.json()["error"] == "insufficient_points"
    _, resp = redeem(kiosk, member="M0004", sku="GIFT-MUG", compartment=6, points=800)
    assert resp.status_code == 409 and resp.json()["error"] == "out_of_stock"
    _, resp = redeem(kiosk, member="M0004", sku="GIFT-MUG", compartment=2, points=800)
    assert resp.status_code == 409 and resp.json()["error"] == "wrong_compartment"
    _, resp = redeem(kiosk, member="M0004", sku="GIFT-MUG", compartment=1, points=700)
    assert resp.status_code == 409 and resp.json()["error"] == "price_changed"


def test_hold_expires_and_releases(kiosk, staff, clock):
    body, _ = redeem(kiosk)
    clock.advance(minutes=11)
    got = kiosk.get(f"/v1/redemptions/{body['txn_id']}").json()
    assert got["state"] == "expired"
    assert staff.get("/v1/members/M0002").json()["balance"] == 2700
    assert stock(kiosk, "GIFT-MUG") == 3
    assert kiosk.post(f"/v1/redemptions/{body['txn_id']}/capture").json()["error"] == "hold_expired"


def test_points_plus_cash_paid(kiosk, anon, staff):
    body, resp = redeem(
        kiosk, member="M0003", sku="GIFT-EARBUDS", compartment=4, points=2000, cash_cents=4900
    )
    payment = resp.json()["payment"]
    assert payment["status"] == "pending" and payment["amount_cents"] == 4900
    assert payment["pay_url"].endswith("/pay/" + payment["id"])
    assert anon.get("/pay/" + payment["id"]).status_code == 200
    resp = kiosk.post(f"/v1/redemptions/{body['txn_id']}/capture")
    assert resp.status_code == 409 and resp.json()["error"] == "payment_pending"
    assert anon.post(f"/v1/payments/{payment['id']}/simulate-paid").json()["status"] == "paid"
    assert kiosk.get(f"/v1/redemptions/{body['txn_id']}").json()["payment"]["status"] == "paid"
    assert kiosk.post(f"/v1/redemptions/{body['txn_id']}/capture").json()["state"] == "captured"
    assert staff.get("/v1/members/M0003").json()["balance"] == 6500 - 2000


def test_points_plus_cash_cancelled_refunds_nothing_owed(kiosk, staff):
    body, _ = redeem(
        kiosk, member="M0003", sku="GIFT-EARBUDS", compartment=4, points=2000, cash_cents=4900
    )
    voided = kiosk.post(
        f"/v1/redemptions/{body['txn_id']}/void", {"reason": "member cancelled"}
    ).json()
    assert voided["payment"]["status"] == "cancelled"
    assert staff.get("/v1/members/M0003").json()["balance"] == 6500


def test_paid_then_voided_is_refunded(kiosk, anon):
    body, resp = redeem(
        kiosk, member="M0003", sku="GIFT-EARBUDS", compartment=4, points=2000, cash_cents=4900
    )
    anon.post(f"/v1/payments/{resp.json()['payment']['id']}/simulate-paid")
    voided = kiosk.post(f"/v1/redemptions/{body['txn_id']}/void", {"reason": "door jammed"}).json()
    assert voided["payment"]["status"] == "refunded"


def test_unpaid_payment_expires_and_voids_the_hold(kiosk, anon, staff, clock):
    body, resp = redeem(
        kiosk, member="M0003", sku="GIFT-EARBUDS", compartment=4, points=2000, cash_cents=4900
    )
    clock.advance(minutes=5, seconds=1)
    got = kiosk.get(f"/v1/redemptions/{body['txn_id']}").json()
    assert got["state"] == "voided" and got["void_reason"] == "payment_expired"
    assert got["payment"]["status"] == "expired"
    assert staff.get("/v1/members/M0003").json()["balance"] == 6500
    resp = anon.post(f"/v1/payments/{got['payment']['id']}/simulate-paid")
    assert resp.status_code == 409


def test_coupon_is_issued_on_capture_and_redeemed_once(kiosk, staff):
    body, resp = redeem(kiosk, member="M0002", sku="CPN-10", compartment=None, points=500)
    assert resp.json()["coupon_code"] is None
    code = kiosk.post(f"/v1/redemptions/{body['txn_id']}/capture").json()["coupon_code"]
    assert code.startswith("CPN-")
    first = staff.post(f"/v1/coupons/{code}/redeem", {"ref": "till-7/receipt-99"})
    assert first.status_code == 200 and first.json()["value_cents"] == 1000
    second = staff.post(f"/v1/coupons/{code}/redeem", {})
    assert second.status_code == 409 and second.json()["error"] == "coupon_already_redeemed"


def test_coupon_carries_its_last_valid_day_and_expires_at_the_till(kiosk, staff, clock, store):
    body, _ = redeem(kiosk, member="M0002", sku="CPN-10", compartment=None, points=500)
    got = kiosk.post(f"/v1/redemptions/{body['txn_id']}/capture").json()
    issued_day = clock.now().astimezone(store.ledger.tz).date()
    valid_until = dt.date.fromisoformat(got["coupon_valid_until"])
    assert valid_until == issued_day + dt.timedelta(days=30)
    assert kiosk.get(f"/v1/redemptions/{body['txn_id']}").json()["coupon_valid_until"] == str(
        valid_until
    )
    clock.advance(days=32)
    resp = staff.post(f"/v1/coupons/{got['coupon_code']}/redeem", {})
    assert resp.status_code == 409 and resp.json()["error"] == "coupon_expired"


def test_refused_capture_still_records_the_expiry(kiosk, staff, clock):
    body, _ = redeem(kiosk)
    clock.advance(minutes=11)
    resp = kiosk.post(f"/v1/redemptions/{body['txn_id']}/capture")
    assert resp.status_code == 409 and resp.json()["error"] == "hold_expired"
    # the staff member view does not sweep holds: the points are back because the refusal kept it
    assert staff.get("/v1/members/M0002").json()["balance"] == 2700


def test_a_payment_is_visible_only_to_its_kiosk(kiosk, other_kiosk):
    _, resp = redeem(
        kiosk, member="M0003", sku="GIFT-EARBUDS", compartment=4, points=2000, cash_cents=4900
    )
    pid = resp.json()["payment"]["id"]
    assert kiosk.get(f"/v1/payments/{pid}").json()["status"] == "pending"
    other = other_kiosk.get(f"/v1/payments/{pid}")
    assert other.status_code == 404 and other.json()["error"] == "unknown_payment"


def test_spins_left_needs_the_members_session(kiosk):
    resp = kiosk.get("/v1/wheels/LUCKY?member_id=NOBODY")
    assert resp.status_code == 403 and resp.json()["error"] == "member_session_required"
    headers = kiosk.member_session("M0004")
    got = kiosk.get("/v1/wheels/LUCKY?member_id=M0004", headers=headers)
    assert got.json()["spins_left"] == 3
    other = kiosk.get("/v1/wheels/LUCKY?member_id=M0003", headers=headers)
    assert other.status_code == 403 and other.json()["error"] == "member_session_invalid"
