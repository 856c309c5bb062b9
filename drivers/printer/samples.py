"""One fixed example of every receipt kind: golden files, the bench, tests and demos print these.

Fixed values (no clock, no random): the golden bytes depend on them, so change them only
together with the golden files (see ``templates``).
"""

from __future__ import annotations

import datetime as dt

from kiosk.domain.receipts import (
    Bilingual,
    CouponReceipt,
    DeviceCheck,
    ExpiringPoints,
    NamedValue,
    PointsCashReceipt,
    PrizeKind,
    Receipt,
    RedemptionReceipt,
    RestockLine,
    RestockSlip,
    SelfTestPage,
    VoucherKind,
    VoucherReceipt,
    WheelReceipt,
)

CST = dt.timezone(dt.timedelta(hours=8), "CST")
PRINTED_AT = dt.datetime(2026, 5, 1, 14, 3, 27, tzinfo=CST)
TXN_ID = "3f2b1c9e-5d4a-4e7b-9c1d-2a3b4c5d6e7f"
MEMBER = "138****5678"
COMMITMENT = "9b1c5f0a7e3d2c4b6a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b"
COUPON_CODE = "CPN-7K3M9QXA2B"
THERMOS = Bilingual("不锈钢保温杯", "Stainless Steel Thermos")

_COMMON = {
    "store_name_zh": "幸福超市（人民路店）",
    "store_name_en": "Happy Mart, Renmin Rd",
    "kiosk_id": "kiosk-01",
    "printed_at": PRINTED_AT,
}
_MEMBER = {"txn_id": TXN_ID, "member_masked": MEMBER}
_EXPIRING = ExpiringPoints(300, dt.date(2026, 6, 30))


def sample_receipts() -> dict[str, Receipt]:
    """Every kind by its golden-file name: redemption, points_cash, wheel, refund, ..."""
    return {
        "redemption": RedemptionReceipt(
            **_COMMON,
            **_MEMBER,
            points_before=5000,
            points_after=3800,
            expiring=_EXPIRING,
            item=THERMOS,
            points_spent=1200,
            compartment=3,
        ),
        "points_cash": PointsCashReceipt(
            **_COMMON,
            **_MEMBER,
            points_before=2600,
            points_after=600,
            expiring=_EXPIRING,
            item=Bilingual("蓝牙音箱", "Bluetooth Speaker"),
            points_spent=2000,
            cash_cents=4950,
            payment_id="pay_8c1f2e3d4b5a6978",
            compartment=7,
        ),
        "wheel": WheelReceipt(
            **_COMMON,
            **_MEMBER,
            points_before=5000,
            points_after=5400,
            expiring=_EXPIRING,
            wheel_id="spring-2026",
            day=dt.date(2026, 5, 1),
            commitment=COMMITMENT,
            segment_idx=2,
            prize=Bilingual("500 积分", "500 points"),
            prize_kind=PrizeKind.POINTS,
            cost_points=100,
            prize_points=500,
        ),
        "refund": VoucherReceipt(
            **_COMMON,
            **_MEMBER,
            points_before=3800,
            points_after=5000,
            expiring=_EXPIRING,
            kind=VoucherKind.REFUND,
            what_happened=Bilingual("柜门未能打开，未出货。", "The locker door did not open."),
            item=THERMOS,
            points_returned=1200,
            compartment=3,
        ),
        "claim": VoucherReceipt(
            **_COMMON,
            **_MEMBER,
            points_before=600,
            points_after=600,
            kind=VoucherKind.CLAIM,
            what_happened=Bilingual(
                "出货中断，无法确认柜门是否打开。",
                "Dispensing stopped; we cannot tell whether the door opened.",
            ),
            item=Bilingual("蓝牙音箱", "Bluetooth Speaker"),
            compartment=7,
        ),
        "coupon": CouponReceipt(
            **_COMMON,
            **_MEMBER,
            points_before=3000,
            points_after=2000,
            expiring=_EXPIRING,
            code=COUPON_CODE,
            value_cents=1000,
            valid_until=dt.date(2026, 5, 31),
            points_spent=1000,
        ),
        "restock": RestockSlip(
            **_COMMON,
            staff_id="S017",
            lines=(
                RestockLine(3, THERMOS, 2, 10),
                RestockLine(7, Bilingual("蓝牙音箱", "Bluetooth Speaker"), 0, 4),
                RestockLine(9, None, 1, 0),
            ),
        ),
        "selftest": SelfTestPage(
            **_COMMON,
            versions=(
                NamedValue("kiosk", "0.1.0"),
                NamedValue("python", "3.11.2"),
                NamedValue("python-escpos", "3.1"),
            ),
            config=(
                NamedValue("printer", "serial /dev/ttyUSB0 19200 none"),
                NamedValue("paper", "58 mm gb18030"),
                NamedValue("server", "https://store.example.com"),
            ),
            devices=(
                DeviceCheck("printer", True, "ok, paper ok"),
                DeviceCheck("camera", True, "/dev/video0 640x480 15 fps"),
                DeviceCheck("locker", False, "door 7 sensor reads open: check the door"),
            ),
        ),
    }
