"""Receipt records: each kind refuses numbers that do not add up, and the wheel proof payload."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from kiosk.domain.receipts import (
    Bilingual,
    CouponReceipt,
    DeviceCheck,
    ExpiringPoints,
    PointsCashReceipt,
    PrizeKind,
    RedemptionReceipt,
    RestockLine,
    RestockSlip,
    SelfTestPage,
    VoucherKind,
    VoucherReceipt,
    WheelReceipt,
)
from kiosk.domain.wheel import proof_url

TZ = dt.timezone(dt.timedelta(hours=8))
COMMON = {
    "store_name_zh": "幸福超市",
    "store_name_en": "Happy Mart",
    "kiosk_id": "kiosk-01",
    "printed_at": dt.datetime(2026, 5, 1, 14, 3, tzinfo=TZ),
}
MEMBER = {"txn_id": "3f2b1c9e-5d4a-4e7b-9c1d-2a3b4c5d6e7f", "member_masked": "138****5678"}
CUP = Bilingual("保温杯", "Thermos")
COMMITMENT = "ab" * 32


def redemption(**changes: object) -> RedemptionReceipt:
    fields = {
        **COMMON,
        **MEMBER,
        "points_before": 5000,
        "points_after": 3800,
        "item": CUP,
        "points_spent": 1200,
    }
    return RedemptionReceipt(**{**fields, **changes})


def wheel(**changes: object) -> WheelReceipt:
    fields = {
        **COMMON,
        **MEMBER,
        "points_before": 1000,
        "points_after": 1400,
        "wheel_id": "spring",
        "day": dt.date(2026, 5, 1),
        "commitment": COMMITMENT,
        "segment_idx": 2,
        "prize": Bilingual("500 积分", "500 points"),
        "prize_kind": PrizeKind.POINTS,
        "cost_points": 100,
        "prize_points": 500,
    }
    return WheelReceipt(**{**fields, **changes})


def test_a_consistent_redemption_is_accepted_and_frozen():
    r = redemption(expiring=ExpiringPoints(300, dt.date(2026, 6, 30)))
    assert r.points_after == r.points_before - r.points_spent
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.points_after = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"points_after": 3900}, "points_before - points_spent"),
        ({"points_spent": -1, "points_after": 5001}, "points_spent"),
        ({"member_masked": "13812345678"}, "masked"),
        ({"txn_id": " "}, "txn_id"),
        ({"printed_at": dt.datetime(2026, 5, 1, 14, 3)}, "timezone-aware"),
        ({"kiosk_id": ""}, "kiosk_id"),
    ],
)
def test_a_redemption_that_does_not_add_up_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        redemption(**changes)


def test_points_cash_needs_cash_and_a_payment_id():
    base = {**COMMON, **MEMBER, "points_before": 2600, "points_after": 600, "item": CUP}
    ok = PointsCashReceipt(**base, points_spent=2000, cash_cents=4950, payment_id="pay_1")
    assert ok.cash_cents == 4950
    with pytest.raises(ValueError, match="cash_cents > 0"):
        PointsCashReceipt(**base, points_spent=2000, cash_cents=0, payment_id="pay_1")
    with pytest.raises(ValueError, match="payment_id"):
        PointsCashReceipt(**base, points_spent=2000, cash_cents=1, payment_id="")


def test_wheel_balance_counts_cost_and_points_prize():
    assert wheel().points_after == 1000 - 100 + 500
    with pytest.raises(ValueError, match="cost_points"):
        wheel(points_after=1500)
    gift = wheel(prize_kind=PrizeKind.GIFT, prize_points=0, points_after=900, compartment=4)
    assert gift.compartment == 4
    with pytest.raises(ValueError, match="prize is gift"):
        wheel(prize_kind=PrizeKind.GIFT)


@pytest.mark.parametrize("bad", ["AB" * 32, "ab" * 31, "zz" * 32, ""])
def test_wheel_commitment_must_be_a_sha256_in_lowercase_hex(bad):
    with pytest.raises(ValueError, match="commitment"):
        wheel(commitment=bad)


def test_wheel_proof_payload_holds_what_a_member_needs_to_recheck():
    payload = wheel().proof_payload()
    assert payload == (
        "WHEEL1;wheel=spring;day=2026-05-01;txn=3f2b1c9e-5d4a-4e7b-9c1d-2a3b4c5d6e7f;"
        f"seg=2;commit={COMMITMENT}"
    )
    assert payload.isascii()


def test_with_the_servers_seed_link_the_qr_code_opens_this_spins_revealed_seed():
    link = "https://store.example/v1/wheels/spring/seeds/2026-05-01?txn=3f2b1c9e"
    assert wheel(verify_url=link).proof_payload() == link
    with pytest.raises(ValueError, match="verify_url"):
        wheel(verify_url="javascript:alert(1)")


def test_a_wheel_receipts_link_is_the_seed_page_of_its_day_and_txn():
    assert proof_url(None, "2026-05-01", "t1") is None  # no public URL: the WHEEL1 text
    assert (
        proof_url("https://s.example/v1/wheels/LUCKY/seeds/", "2026-05-01", "3f2b-1c")
        == "https://s.example/v1/wheels/LUCKY/seeds/2026-05-01?txn=3f2b-1c"
    )


def test_voucher_balance_is_before_plus_returned():
    base = {**COMMON, **MEMBER, "what_happened": Bilingual("柜门未打开", "Door did not open")}
    refund = VoucherReceipt(
        **base, kind=VoucherKind.REFUND, points_before=3800, points_after=5000, points_returned=1200
    )
    assert refund.points_after == 5000
    claim = VoucherReceipt(**base, kind=VoucherKind.CLAIM, points_before=600, points_after=600)
    assert claim.points_returned == 0
    with pytest.raises(ValueError, match="points_returned"):
        VoucherReceipt(
            **base,
            kind=VoucherKind.REFUND,
            points_before=3800,
            points_after=3800,
            points_returned=1200,
        )


def test_coupon_code_must_be_scannable_ascii():
    base = {**COMMON, **MEMBER, "points_before": 10, "points_after": 10}
    coupon = CouponReceipt(
        **base, code="CPN-7K3M9QXA2B", value_cents=1000, valid_until=dt.date(2026, 5, 31)
    )
    assert coupon.points_spent == 0
    for bad in ("CPN 7K3M", "优惠券", ""):
        with pytest.raises(ValueError, match="coupon code"):
            CouponReceipt(**base, code=bad, value_cents=1000, valid_until=dt.date(2026, 5, 31))


def test_restock_slip_totals_and_refuses_a_repeated_compartment():
    slip = RestockSlip(
        **COMMON,
        staff_id="S017",
        lines=[RestockLine(3, CUP, 2, 10), RestockLine(9, None, 1, 0)],  # type: ignore[arg-type]
    )
    assert isinstance(slip.lines, tuple)
    assert [line.added for line in slip.lines] == [8, -1]
    assert slip.total_added == 7
    with pytest.raises(ValueError, match="repeat"):
        RestockSlip(**COMMON, staff_id="S017", lines=(RestockLine(3, CUP, 0, 1),) * 2)
    with pytest.raises(ValueError, match="count_after"):
        RestockLine(3, CUP, 0, -1)


def test_self_test_page_is_ok_only_when_every_device_is():
    ok = DeviceCheck("printer", True, "ok")
    page = SelfTestPage(**COMMON, versions=(), config=(), devices=(ok,))
    assert page.all_ok
    bad = SelfTestPage(
        **COMMON, versions=(), config=(), devices=(ok, DeviceCheck("locker", False, "door 7"))
    )
    assert not bad.all_ok


def test_bilingual_text_needs_both_languages():
    with pytest.raises(ValueError, match="both languages"):
        Bilingual("保温杯", " ")
