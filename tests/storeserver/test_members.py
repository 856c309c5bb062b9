"""Members over HTTP: registration, earning, tiers, notifications, the masked kiosk view."""

from __future__ import annotations

import pytest

from storeserver.errors import ApiError
from storeserver.members import mask_name, mask_phone

from .conftest import account


def test_masking():
    assert mask_name("张伟") == "张*"
    assert mask_name("Emily Chen") == "E*********"
    assert mask_phone("13812345678") == "138****5678"


def test_register_with_referral_earns_bonuses(staff, notifier):
    resp = staff.post(
        "/v1/members", {"name": "赵敏", "phone": "13500001111", "referred_by": "M0001"}
    )
    assert resp.status_code == 201, resp.text
    new = resp.json()
    assert new["balance"] == 100 and new["tier"] == "basic"
    assert staff.get("/v1/members/M0001").json()["balance"] == 750 + 200
    kinds = [(n.member_id, n.data.get("kind")) for n in notifier.sent if n.kind == "points_changed"]
    assert (new["member_id"], "registration") in kinds and ("M0001", "referral") in kinds


def test_purchase_earns_at_tier_rate_and_upgrades(staff, notifier):
    # basic earns 1 point per yuan: 300 yuan -> 300 points, lifetime 750+300 crosses silver (1000)
    resp = staff.post("/v1/members/M0001/purchases", {"amount_cents": 30000, "ref": "r-1"}).json()
    assert resp["earned"] == 300 and resp["tier"] == "silver" and resp["balance"] == 1050
    assert any(n.kind == "tier_changed" and n.data["to"] == "silver" for n in notifier.sent)
    # silver earns 1.2 points per yuan
    assert (
        staff.post("/v1/members/M0001/purchases", {"amount_cents": 10000, "ref": "r-2"}).json()[
            "earned"
        ]
        == 120
    )
    # the same receipt again earns nothing more
    again = staff.post("/v1/members/M0001/purchases", {"amount_cents": 10000, "ref": "r-2"})
    assert again.status_code == 409 and again.json()["error"] == "already_recorded"


def test_topup_adds_stored_value_and_points(staff):
    resp = staff.post("/v1/members/M0005/topups", {"amount_cents": 20000, "ref": "t-1"}).json()
    assert resp["stored_value_cents"] == 20000 and resp["earned"] == 200 and resp["balance"] == 280


def test_lots_expire_on_their_date(staff, clock):
    view = staff.get("/v1/members/M0005").json()  # 80 points expiring in 3 days
    assert view["expiring"] == [{"points": 80, "expires_on": view["expiring"][0]["expires_on"]}]
    clock.advance(days=3)
    view = staff.get("/v1/members/M0005").json()
    assert view["balance"] == 0 and view["expiring"] == []
    assert (
        view["recent_changes"][0]["kind"] == "expire" and view["recent_changes"][0]["delta"] == -80
    )


def test_member_view_at_kiosk(server, kiosk):
    code = account(server, "member-app", "M0002").post("/v1/members/M0002/code").json()["code"]
    view = kiosk.post("/v1/members/resolve", {"code": code}).json()
    assert view["name_masked"] == "李*" and view["phone_masked"] == "139****6789"
    assert view["next_tier"] == "gold" and view["points_to_next_tier"] == 5000 - 2700
    # each tier's threshold and names: the kiosk's tier bar counts from silver's 1,000
    assert (view["tier"], view["tier_zh"], view["tier_en"], view["tier_threshold"]) == (
        "silver",
        "银卡会员",
        "Silver",
        1000,
    )
    assert (view["next_tier_zh"], view["next_tier_en"], view["next_tier_threshold"]) == (
        "金卡会员",
        "Gold",
        5000,
    )
    assert [e["points"] for e in view["expiring"]] == [600, 900]  # the 1,200 lot is months away
    assert "GIFT-TEA" in view["affordable_skus"] and "GIFT-MUG" in view["affordable_skus"]
    assert len(view["recent_changes"]) == 3


def test_a_lot_that_would_never_count_is_refused(store):
    with pytest.raises(ApiError) as err, store.db.transaction() as conn:
        store.ledger.earn(conn, "M0001", 10, "purchase", "x", expires_on=store.today())
    assert err.value.code == "invalid_expiry"
