"""Purchases, top-ups and manual points are capped per call and per day, and one phone number
is one member (issue 11: a staff token recorded a purchase of 1e8 cents, 1,000,000 points and
diamond tier, added ¥1,000,000 stored value, and farmed referral bonuses)."""

from __future__ import annotations

import pytest

from storeserver.till import TillLimits

from .conftest import account, refused

LIMITS = TillLimits()


def member(staff, member_id: str = "M0001") -> dict:
    return staff.get(f"/v1/members/{member_id}").json()


def test_a_purchase_of_a_million_yuan_is_refused(store, staff):
    before = member(staff)
    body = refused(
        store,
        422,
        "amount_over_limit",
        lambda: staff.post(
            "/v1/members/M0001/purchases", {"amount_cents": 100_000_000, "ref": "r-1"}
        ),
    )
    assert "purchase_cents_per_call" in body["message"]
    after = member(staff)
    assert (
        (after["balance"], after["tier"]) == (before["balance"], before["tier"]) == (750, "basic")
    )


def test_a_million_yuan_of_stored_value_is_refused(store, staff):
    refused(
        store,
        422,
        "amount_over_limit",
        lambda: staff.post("/v1/members/M0001/topups", {"amount_cents": 100_000_000, "ref": "t"}),
    )
    row = store.db.connection().execute("SELECT stored_value_cents FROM members WHERE id='M0001'")
    assert row.fetchone()[0] == 0


@pytest.mark.parametrize(
    ("path", "per_call", "per_day"),
    [
        ("purchases", LIMITS.purchase_cents_per_call, LIMITS.purchase_cents_per_member_day),
        ("topups", LIMITS.topup_cents_per_call, LIMITS.topup_cents_per_member_day),
    ],
)
def test_the_daily_cap_per_member(store, staff, clock, path, per_call, per_day):
    url = f"/v1/members/M0002/{path}"
    spent, n = 0, 0
    while spent + per_call <= per_day:
        n += 1
        assert staff.post(url, {"amount_cents": per_call, "ref": f"r-{n}"}).status_code == 200
        spent += per_call
    body = refused(
        store,
        422,
        "daily_limit_reached",
        lambda: staff.post(url, {"amount_cents": per_day - spent + 1, "ref": "one-too-many"}),
    )
    assert "tomorrow" in body["message"]
    clock.advance(days=1)  # a new store day
    assert staff.post(url, {"amount_cents": per_call, "ref": "next-day"}).status_code == 200


def test_manual_points_by_a_manager_within_the_cap(store, server, staff):
    cashier = account(server, "cashier")
    give = {"points": 100, "reason": "missed receipt", "ref": "m-1"}
    refused(
        store, 403, "forbidden_role", lambda: cashier.post("/v1/members/M0001/adjustments", give)
    )
    assert staff.post("/v1/members/M0001/adjustments", give).json()["balance"] == 850
    refused(
        store,
        409,
        "already_recorded",
        lambda: staff.post("/v1/members/M0001/adjustments", give),
    )
    too_much = {**give, "points": LIMITS.manual_points_per_call + 1, "ref": "m-2"}
    refused(
        store,
        422,
        "amount_over_limit",
        lambda: staff.post("/v1/members/M0001/adjustments", too_much),
    )


def test_manual_points_are_capped_per_account_per_day(store, staff):
    per_call, per_day = LIMITS.manual_points_per_call, LIMITS.manual_points_per_account_day
    members = ["M0001", "M0002", "M0003", "M0004", "M0005"]
    given = 0
    for i in range(per_day // per_call):  # spread over members: the cap is the account's
        body = {"points": per_call, "reason": "goodwill", "ref": f"g-{i}"}
        assert staff.post(f"/v1/members/{members[i % 5]}/adjustments", body).status_code == 200
        given += per_call
    assert given == per_day
    refused(
        store,
        422,
        "daily_limit_reached",
        lambda: staff.post(
            "/v1/members/M0005/adjustments", {"points": 1, "reason": "one more", "ref": "g-x"}
        ),
    )


def test_one_phone_number_is_one_member(store, staff):
    first = staff.post(
        "/v1/members", {"name": "赵敏", "phone": "13500001111", "referred_by": "M0001"}
    )
    assert first.status_code == 201, first.text
    body = refused(
        store,
        409,
        "phone_in_use",
        lambda: staff.post(
            "/v1/members", {"name": "赵敏二", "phone": "13500001111", "referred_by": "M0001"}
        ),
    )
    assert "13500001111" not in body["message"]  # the answer does not echo the number
    assert member(staff)["balance"] == 750 + 200  # one referral bonus, not two


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="topup_cents_per_call"):
        TillLimits(topup_cents_per_call=0)
