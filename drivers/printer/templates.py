"""Receipt templates: pure functions from a receipt dataclass to ESC/POS bytes.

``render_receipt(receipt, paper_mm=58|80, encoding="gb18030"|"gbk")`` picks the template for
the receipt's class. Every receipt has the same frame: store name (zh, en) centred, a title
(Chinese double size), the body, then txn id, time and kiosk, and a cut. Labels are "中文
English" on one line with the value flush right; long values move to their own line.

The bytes are pinned by golden files, ``tests/drivers/golden/<kind>_<58|80>.bin``. After an
intended layout change, regenerate them and review the diff of the rendered text:

    UPDATE_GOLDEN=1 PYTHONPATH=. python -m pytest -q tests/drivers/test_printer_templates.py
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from kiosk.domain.receipts import (
    CouponReceipt,
    MemberReceipt,
    PointsCashReceipt,
    PrizeKind,
    Receipt,
    RedemptionReceipt,
    RestockSlip,
    SelfTestPage,
    VoucherKind,
    VoucherReceipt,
    WheelReceipt,
)

from .builder import BARCODE_MODULE_DOTS, ReceiptBuilder
from .escpos_text import columns_for

log = logging.getLogger(__name__)

SELF_TEST_BARCODE = "TEST-1234"


def points(n: int) -> str:
    return f"{n:,}"


def money(cents: int) -> str:
    """Yuan with the full-width sign Chinese receipts use (GBK has it; "¥" would need 4 bytes)."""
    return f"￥{cents // 100:,}.{cents % 100:02d}"


def when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


# ---- shared parts ------------------------------------------------------------------------------


def _header(b: ReceiptBuilder, r: Receipt, zh: str, en: str) -> None:
    b.center(r.store_name_zh, bold=True)
    b.center(r.store_name_en)
    b.feed()
    b.title(zh, en)
    b.rule()


def _member(b: ReceiptBuilder, r: MemberReceipt) -> None:
    b.pair("会员 Member", r.member_masked)


def _item(b: ReceiptBuilder, zh: str, en: str, compartment: int | None) -> None:
    b.line("商品 Item")
    b.line("  " + zh)
    b.line("  " + en)
    if compartment is not None:
        b.pair("柜门 Door", str(compartment))


def _balance(b: ReceiptBuilder, r: MemberReceipt, before: str = "原有积分 Before") -> None:
    b.pair(before, points(r.points_before))
    b.pair("现有积分 Balance now", points(r.points_after), bold=True)
    if r.expiring is not None:
        b.rule()
        day = r.expiring.on.isoformat()
        b.line(f"提醒：{points(r.expiring.points)}积分将于{day}到期")
        b.line(f"Reminder: {points(r.expiring.points)} points expire on {day}")


def _footer(b: ReceiptBuilder, r: Receipt) -> None:
    b.rule()
    if isinstance(r, MemberReceipt):
        b.pair("交易号 Txn", r.txn_id)
    b.pair("时间 Time", when(r.printed_at))
    b.pair("终端 Kiosk", r.kiosk_id)
    if isinstance(r, MemberReceipt):
        b.feed()
        b.center("谢谢惠顾 Thank you")


# ---- one template per kind ---------------------------------------------------------------------


def _redemption(b: ReceiptBuilder, r: RedemptionReceipt) -> None:
    _header(b, r, "兑换凭证", "REDEMPTION RECEIPT")
    _member(b, r)
    _item(b, r.item.zh, r.item.en, r.compartment)
    b.pair("使用积分 Points used", "-" + points(r.points_spent))
    _balance(b, r)


def _points_cash(b: ReceiptBuilder, r: PointsCashReceipt) -> None:
    _header(b, r, "积分加现金", "POINTS + CASH RECEIPT")
    _member(b, r)
    _item(b, r.item.zh, r.item.en, r.compartment)
    b.pair("使用积分 Points used", "-" + points(r.points_spent))
    b.pair("现金 Cash paid", money(r.cash_cents), bold=True)
    b.pair("支付单号 Payment", r.payment_id)
    _balance(b, r)


def _wheel(b: ReceiptBuilder, r: WheelReceipt) -> None:
    _header(b, r, "幸运转盘", "LUCKY WHEEL")
    _member(b, r)
    b.line("奖品 Prize")
    b.center(r.prize.zh, bold=True)
    b.center(r.prize.en, bold=True)
    if r.prize_kind is PrizeKind.POINTS:
        b.pair("奖励积分 Prize points", "+" + points(r.prize_points))
    if r.compartment is not None:
        b.pair("柜门 Door", str(r.compartment))
    b.pair("抽奖消耗 Spin cost", "-" + points(r.cost_points))
    _balance(b, r)
    b.rule()
    b.center("公平性证明 Fairness proof", bold=True)
    b.pair("转盘 Wheel", r.wheel_id)
    b.pair("日期 Day", r.day.isoformat())
    b.pair("结果 Segment", str(r.segment_idx))
    b.line("承诺值 Commitment (SHA-256):")
    b.line(r.commitment)
    b.qr(r.proof_payload())
    b.line("次日公布种子后可复算结果：")
    b.line("HMAC-SHA256(种子, 交易号)")
    b.line("Recheck once the seed is published tomorrow: HMAC-SHA256(seed, txn id)")


def _voucher(b: ReceiptBuilder, r: VoucherReceipt) -> None:
    if r.kind is VoucherKind.REFUND:
        _header(b, r, "退款凭证", "REFUND VOUCHER")
    else:
        _header(b, r, "领取凭证", "CLAIM VOUCHER")
    _member(b, r)
    b.line("情况 What happened")
    b.line("  " + r.what_happened.zh)
    b.line("  " + r.what_happened.en)
    if r.item is not None:
        _item(b, r.item.zh, r.item.en, r.compartment)
    b.pair("退还积分 Points returned", "+" + points(r.points_returned), bold=True)
    if r.cash_refunded_cents:
        b.pair("退还现金 Cash refunded", money(r.cash_refunded_cents), bold=True)
    _balance(b, r, before="退还前 Before")
    b.rule()
    b.center("请持此凭证到服务台", bold=True)
    b.center("Show this at the service desk", bold=True)
    if r.kind is VoucherKind.CLAIM:
        b.line("工作人员将核实柜门并为您处理礼品。")
        b.line("Staff will check the locker and sort out your gift.")
    if r.cash_refunded_cents:
        b.line("现金将原路退回。Cash goes back the way you paid.")


def _coupon(b: ReceiptBuilder, r: CouponReceipt) -> None:
    _header(b, r, "优惠券", "COUPON")
    _member(b, r)
    b.center(money(r.value_cents), bold=True, big=True)
    b.pair("有效期至 Valid until", r.valid_until.isoformat(), bold=True)
    if r.points_spent:
        b.pair("使用积分 Points used", "-" + points(r.points_spent))
    _balance(b, r)
    b.rule()
    b.qr(r.code, bigger=True)
    _barcode_if_it_fits(b, r.code)
    b.center("结账时出示 Show at the till")


def _restock(b: ReceiptBuilder, r: RestockSlip) -> None:
    _header(b, r, "补货单", "RESTOCK SLIP")
    b.pair("员工 Staff", r.staff_id)
    b.pair("#柜门 商品 Item", "数量 Count")
    b.rule()
    for line in r.lines:
        name = line.item.zh if line.item is not None else "（空）"
        b.pair(f"#{line.compartment} {name}", f"{line.count_before} -> {line.count_after}")
        b.line("    " + (line.item.en if line.item is not None else "(empty)"))
    b.rule()
    b.pair("合计 Total added", f"{r.total_added:+d}", bold=True)
    _footer_sign(b)


def _footer_sign(b: ReceiptBuilder) -> None:
    b.feed()
    b.line("签名 Signature:")
    b.feed()


def _self_test(b: ReceiptBuilder, r: SelfTestPage) -> None:
    _header(b, r, "自检页", "SELF-TEST PAGE")
    b.center("全部正常 ALL OK" if r.all_ok else "有故障 FAULTS FOUND", bold=True)
    for heading, values in (("版本 Versions", r.versions), ("配置 Config", r.config)):
        b.line(heading, bold=True)
        for value in values:
            b.pair(value.name, value.value)
    b.line("设备 Devices", bold=True)
    for check in r.devices:
        b.pair(check.name, "OK" if check.ok else "FAIL")
        b.line("  " + check.detail)
    b.rule()
    b.line("打印测试 Print test: 中文 ABC 123 ￥")
    b.qr(f"SELFTEST;kiosk={r.kiosk_id}")
    _barcode_if_it_fits(b, SELF_TEST_BARCODE)


def _barcode_if_it_fits(b: ReceiptBuilder, code: str) -> None:
    # CODE128 set B: start, one symbol per character, check (11 modules each), stop (13).
    modules = 11 * (len(code) + 2) + 13
    if modules * BARCODE_MODULE_DOTS > columns_for(b.paper_mm) * 12:
        log.warning(  # a coupon's code: never in clear in the log (docs/privacy.md)
            "barcode of a %d-character code (…%s) is too wide for %d mm paper: QR code only",
            len(code), code[-4:], b.paper_mm,
        )  # fmt: skip
        return
    b.barcode128(code)


_TEMPLATES: dict[type[Receipt], Callable[[ReceiptBuilder, Any], None]] = {
    RedemptionReceipt: _redemption,
    PointsCashReceipt: _points_cash,
    WheelReceipt: _wheel,
    VoucherReceipt: _voucher,
    CouponReceipt: _coupon,
    RestockSlip: _restock,
    SelfTestPage: _self_test,
}


def render_receipt(receipt: Receipt, *, paper_mm: int = 58, encoding: str = "gb18030") -> bytes:
    """The printer bytes of ``receipt`` for a ``paper_mm`` roll (58 or 80) in ``encoding``."""
    try:
        template = _TEMPLATES[type(receipt)]
    except KeyError:
        raise TypeError(f"no receipt template for {type(receipt).__name__}") from None
    b = ReceiptBuilder(paper_mm, encoding)
    template(b, receipt)
    _footer(b, receipt)
    return b.finish()
