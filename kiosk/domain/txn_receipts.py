"""What the engine remembers about a transaction besides its state, and the receipts from it.

``TxnContext`` rides in the same journal record as the transaction (key ``ctx``): the names
and balances a receipt or voucher needs, so one printed after a restart says exactly what
the member would have been handed. Pure: no I/O, no clock (callers pass ``printed_at``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from kiosk.domain.receipts import (
    Bilingual,
    CouponReceipt,
    PointsCashReceipt,
    PrizeKind,
    Receipt,
    RedemptionReceipt,
    VoucherKind,
    VoucherReceipt,
    WheelReceipt,
)
from kiosk.domain.transaction import MalformedTransactionRecord, Transaction, TxnKind
from kiosk.domain.wheel import Prize, proof_url

__all__ = ["Prize", "StoreInfo", "TxnContext", "success_receipts", "voucher"]


@dataclass(frozen=True)
class StoreInfo:
    """Who prints: the header of every receipt, and the store's time zone for dates."""

    kiosk_id: str
    name_zh: str
    name_en: str
    tz: dt.tzinfo


@dataclass(frozen=True)
class TxnContext:
    """Facts for receipts and recovery; each field is set once, at the step that learns it."""

    member_masked: str
    item_zh: str | None = None
    item_en: str | None = None
    coupon_value_cents: int = 0
    balance_held: int | None = None  # the member's balance right after the hold
    balance_final: int | None = None  # after capture (a points prize is in it)
    payment_id: str | None = None
    pay_url: str | None = None
    cash_refunded_cents: int = 0
    prize: Prize | None = None
    coupon_code: str | None = None
    coupon_valid_until: str | None = None
    # once the transaction is done only these stay of the coupon code (privacy: kiosk logs)
    coupon_code_sha256: str | None = None
    coupon_code_last4: str | None = None
    capture_refused: str | None = None  # the server refused a capture after dispensing
    points_returned: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # a spin: the commitments of the wheel the member was shown (ISO day -> SHA-256), held
    # before the spin so the answer can be checked, also by recovery (None: journalled before
    # kiosks held them); where its seeds are revealed (the receipt's QR code)
    commitments: dict[str, str] | None = None
    seeds_url: str | None = None

    def redacted(self) -> TxnContext:
        """This context without the coupon code in clear: its SHA-256 and last 4 characters,
        enough to match a coupon the member shows with ``kiosk logs``."""
        code = self.coupon_code
        if code is None:
            return self
        digest = hashlib.sha256(code.encode()).hexdigest()
        return replace(
            self, coupon_code=None, coupon_code_sha256=digest, coupon_code_last4=code[-4:]
        )

    def to_record(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.prize is not None:
            data["prize"]["kind"] = self.prize.kind.value
        return data

    @classmethod
    def from_record(cls, txn_id: str, raw: Any) -> TxnContext:
        if not isinstance(raw, dict) or not isinstance(raw.get("member_masked"), str):
            raise MalformedTransactionRecord(txn_id, "ctx", "must be an object with member_masked")
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in raw.items() if k in known}
        try:
            if data.get("prize") is not None:
                data["prize"] = Prize(**{**data["prize"], "kind": PrizeKind(data["prize"]["kind"])})
            return cls(**data)
        except (TypeError, ValueError, KeyError) as exc:
            raise MalformedTransactionRecord(txn_id, "ctx", f"does not decode: {exc}") from exc


def _head(store: StoreInfo, printed_at: dt.datetime, txn: Transaction, ctx: TxnContext) -> dict:
    return {
        "store_name_zh": store.name_zh,
        "store_name_en": store.name_en,
        "kiosk_id": store.kiosk_id,
        "printed_at": printed_at.astimezone(store.tz),
        "txn_id": txn.txn_id,
        "member_masked": ctx.member_masked,
    }


def _item(ctx: TxnContext, txn: Transaction) -> Bilingual:
    sku = txn.sku or "?"
    return Bilingual(ctx.item_zh or sku, ctx.item_en or sku)


def _after(ctx: TxnContext) -> int:
    for value in (ctx.balance_final, ctx.balance_held):
        if value is not None:
            return value
    return 0


def success_receipts(
    txn: Transaction, ctx: TxnContext, store: StoreInfo, printed_at: dt.datetime
) -> list[tuple[str, Receipt]]:
    """The receipts of a captured transaction, each with its queue key suffix."""
    head = _head(store, printed_at, txn, ctx)
    after = _after(ctx)
    out: list[tuple[str, Receipt]] = []
    if txn.kind is TxnKind.SPIN:
        prize = ctx.prize
        if prize is None:
            raise MalformedTransactionRecord(txn.txn_id, "ctx.prize", "is missing for a spin")
        prize_points = prize.points if prize.kind is PrizeKind.POINTS else 0
        wheel = WheelReceipt(
            **head,
            points_before=after + txn.points - prize_points,
            points_after=after,
            wheel_id=prize.wheel_id,
            day=dt.date.fromisoformat(prize.day),
            commitment=prize.commitment,
            segment_idx=prize.segment_idx,
            prize=Bilingual(prize.label_zh, prize.label_en),
            prize_kind=prize.kind,
            cost_points=txn.points,
            prize_points=prize_points,
            compartment=txn.compartment,
            verify_url=proof_url(ctx.seeds_url, prize.day, txn.txn_id),
        )
        out.append(("receipt", wheel))
        if prize.kind is PrizeKind.COUPON and ctx.coupon_code:
            out.append(("coupon", _coupon(head, ctx, after, 0, prize.coupon_value_cents or 0)))
        return out
    if txn.kind is TxnKind.POINTS_CASH:
        receipt: Receipt = PointsCashReceipt(
            **head,
            points_before=after + txn.points,
            points_after=after,
            item=_item(ctx, txn),
            points_spent=txn.points,
            cash_cents=txn.cash_cents,
            payment_id=ctx.payment_id or "?",
            compartment=txn.compartment,
        )
        return [("receipt", receipt)]
    if ctx.coupon_code:  # a coupon item bought with points
        return [("coupon", _coupon(head, ctx, after, txn.points, ctx.coupon_value_cents))]
    receipt = RedemptionReceipt(
        **head,
        points_before=after + txn.points,
        points_after=after,
        item=_item(ctx, txn),
        points_spent=txn.points,
        compartment=txn.compartment,
    )
    return [("receipt", receipt)]


def _coupon(head: dict, ctx: TxnContext, after: int, spent: int, value: int) -> CouponReceipt:
    if ctx.coupon_valid_until is None:
        raise MalformedTransactionRecord(
            head["txn_id"], "ctx.coupon_valid_until", "is missing: the server sent no validity"
        )
    return CouponReceipt(
        **head,
        points_before=after + spent,
        points_after=after,
        code=ctx.coupon_code or "",
        value_cents=value,
        valid_until=dt.date.fromisoformat(ctx.coupon_valid_until),
        points_spent=spent,
    )


def voucher(
    txn: Transaction,
    ctx: TxnContext,
    store: StoreInfo,
    printed_at: dt.datetime,
    why: Bilingual,
    claim_text: Bilingual,
) -> VoucherReceipt:
    """A refund voucher saying ``why``, or a claim voucher (saying ``claim_text``, from the
    caller's catalog: the domain reads no files) when the door may have opened."""
    before = ctx.balance_held if ctx.balance_held is not None else 0
    claim = txn.needs_check
    return VoucherReceipt(
        **_head(store, printed_at, txn, ctx),
        points_before=before,
        points_after=before + ctx.points_returned,
        kind=VoucherKind.CLAIM if claim else VoucherKind.REFUND,
        what_happened=claim_text if claim else why,
        item=_item(ctx, txn) if txn.sku or ctx.item_zh else None,
        points_returned=ctx.points_returned,
        cash_refunded_cents=ctx.cash_refunded_cents,
        compartment=txn.compartment if claim else None,
    )
