"""What goes on a printed receipt: one dataclass per kind, no printer commands here.

The printer driver turns these into ESC/POS bytes (``drivers/printer/templates.py``); the
core builds them from transaction records. Money is in cents, points are integers, times are
timezone-aware datetimes. Every receipt prints Chinese first, English second.

Each kind checks its own arithmetic on construction (``ValueError``): a receipt whose points
do not add up would be handed to a member, so it is refused before it reaches the printer.
Member identities arrive already masked ("138****5678"); a value without a ``*`` is refused
so a full phone number cannot end up on paper by mistake.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _non_negative(**values: int) -> None:
    for name, value in values.items():
        _require(
            type(value) is int and value >= 0, f"{name} must be a whole number >= 0, got {value!r}"
        )


@dataclass(frozen=True)
class Bilingual:
    """A text printed in Chinese first, then English (item names, prize labels, reasons)."""

    zh: str
    en: str

    def __post_init__(self) -> None:
        _require(bool(self.zh.strip() and self.en.strip()), f"both languages are needed: {self!r}")


@dataclass(frozen=True)
class ExpiringPoints:
    """The reminder at the foot of a member receipt: ``points`` expire at the end of ``on``."""

    points: int
    on: dt.date

    def __post_init__(self) -> None:
        _non_negative(points=self.points)


@dataclass(frozen=True, kw_only=True)
class Receipt:
    """Common header and footer of every receipt."""

    store_name_zh: str
    store_name_en: str
    kiosk_id: str
    printed_at: dt.datetime

    def __post_init__(self) -> None:
        _require(
            self.printed_at.utcoffset() is not None,
            f"printed_at must be timezone-aware, got {self.printed_at!r}",
        )
        _require(bool(self.kiosk_id.strip()), "kiosk_id must not be empty")


@dataclass(frozen=True, kw_only=True)
class MemberReceipt(Receipt):
    """What every receipt handed to a member shows: who, which transaction, the balance."""

    txn_id: str
    member_masked: str  # already masked by the core, e.g. "138****5678" or "张*"
    points_before: int
    points_after: int
    expiring: ExpiringPoints | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(bool(self.txn_id.strip()), "txn_id must not be empty")
        _require(
            "*" in self.member_masked,
            f"member_masked must be masked (contain '*'), got {len(self.member_masked)} characters",
        )
        _non_negative(points_before=self.points_before, points_after=self.points_after)

    def _balance(self, expected_after: int, how: str) -> None:
        _require(
            self.points_after == expected_after,
            f"points_after is {self.points_after} but {how} gives {expected_after}",
        )


@dataclass(frozen=True, kw_only=True)
class RedemptionReceipt(MemberReceipt):
    """A gift (or coupon item) taken for points only."""

    item: Bilingual
    points_spent: int
    compartment: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative(points_spent=self.points_spent)
        self._balance(self.points_before - self.points_spent, "points_before - points_spent")


@dataclass(frozen=True, kw_only=True)
class PointsCashReceipt(MemberReceipt):
    """A gift bought with points plus a cash part paid through a payment provider."""

    item: Bilingual
    points_spent: int
    cash_cents: int
    payment_id: str
    compartment: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative(points_spent=self.points_spent, cash_cents=self.cash_cents)
        _require(self.cash_cents > 0, "a points+cash receipt needs cash_cents > 0")
        _require(bool(self.payment_id.strip()), "payment_id must not be empty")
        self._balance(self.points_before - self.points_spent, "points_before - points_spent")


class PrizeKind(enum.Enum):
    """What a wheel segment gives (storeserver ``wheel_segments.prize_kind``)."""

    NONE = "none"
    POINTS = "points"
    COUPON = "coupon"
    GIFT = "gift"


@dataclass(frozen=True, kw_only=True)
class WheelReceipt(MemberReceipt):
    """A wheel spin's result with what a member needs to check it was fair.

    The server commits to each day's seed by its SHA-256 (``commitment``) before the day and
    reveals the seed the day after; the outcome is HMAC-SHA256(seed, txn_id), so the receipt
    carries the wheel, the day, the commitment and the txn id (also as a QR code).
    """

    wheel_id: str
    day: dt.date
    commitment: str  # 64 lowercase hex digits
    segment_idx: int
    prize: Bilingual
    prize_kind: PrizeKind
    cost_points: int
    prize_points: int = 0
    compartment: int | None = None
    # the server's page of the revealed seed with this spin (kiosk.domain.wheel.proof_url);
    # None when the store server has no public URL: the QR code then carries the facts
    verify_url: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(
            self.verify_url is None or self.verify_url.startswith(("https://", "http://")),
            f"verify_url must be an http(s) URL, got {self.verify_url!r}",
        )
        _require(
            _HEX64.fullmatch(self.commitment) is not None,
            f"commitment must be 64 lowercase hex digits (a SHA-256), got {self.commitment!r}",
        )
        _non_negative(
            cost_points=self.cost_points,
            prize_points=self.prize_points,
            segment_idx=self.segment_idx,
        )
        _require(
            self.prize_kind is PrizeKind.POINTS or self.prize_points == 0,
            f"prize_points is {self.prize_points} but the prize is {self.prize_kind.value}",
        )
        self._balance(
            self.points_before - self.cost_points + self.prize_points,
            "points_before - cost_points + prize_points",
        )

    def proof_payload(self) -> str:
        """The text of the fairness QR code: the link to the revealed seed and this spin
        (a phone opens it the day after), else enough to recompute the draw once the seed
        is out."""
        if self.verify_url:
            return self.verify_url
        return (
            f"WHEEL1;wheel={self.wheel_id};day={self.day.isoformat()};txn={self.txn_id};"
            f"seg={self.segment_idx};commit={self.commitment}"
        )


class VoucherKind(enum.Enum):
    """Why a voucher is printed instead of a gift."""

    REFUND = "refund"  # failed before the door opened: points (and cash) returned
    CLAIM = "claim"  # the door may or may not have opened: staff check and hand over the gift


@dataclass(frozen=True, kw_only=True)
class VoucherReceipt(MemberReceipt):
    """Printed after a failed dispense: what happened, what came back, what to do next.

    ``points_before`` is the balance while the hold was taken, ``points_after`` the balance
    once ``points_returned`` went back (a claim may return nothing until staff have checked).
    """

    kind: VoucherKind
    what_happened: Bilingual
    item: Bilingual | None = None
    points_returned: int = 0
    cash_refunded_cents: int = 0
    compartment: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative(
            points_returned=self.points_returned, cash_refunded_cents=self.cash_refunded_cents
        )
        self._balance(self.points_before + self.points_returned, "points_before + points_returned")


@dataclass(frozen=True, kw_only=True)
class CouponReceipt(MemberReceipt):
    """A coupon to use at the till: its code as text, QR code and CODE128 barcode."""

    code: str  # e.g. "CPN-7K3M9QXA2B": printable ASCII, scanned at the till
    value_cents: int
    valid_until: dt.date
    points_spent: int = 0  # 0 for a coupon won on the wheel

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(
            re.fullmatch(r"[!-~]{1,40}", self.code) is not None,
            f"coupon code must be 1-40 printable ASCII characters without spaces, got {self.code!r}",
        )
        _non_negative(value_cents=self.value_cents, points_spent=self.points_spent)
        self._balance(self.points_before - self.points_spent, "points_before - points_spent")


@dataclass(frozen=True)
class RestockLine:
    """One compartment on a restock slip: what it holds and how many before and after."""

    compartment: int
    item: Bilingual | None  # None: the compartment was emptied
    count_before: int
    count_after: int

    def __post_init__(self) -> None:
        _non_negative(
            compartment=self.compartment,
            count_before=self.count_before,
            count_after=self.count_after,
        )

    @property
    def added(self) -> int:
        """Items put in (negative when staff took some out)."""
        return self.count_after - self.count_before


@dataclass(frozen=True, kw_only=True)
class RestockSlip(Receipt):
    """Printed for staff after a restock: who did it and every compartment touched."""

    staff_id: str
    lines: tuple[RestockLine, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "lines", tuple(self.lines))
        _require(bool(self.staff_id.strip()), "staff_id must not be empty")
        _require(bool(self.lines), "a restock slip needs at least one compartment")
        numbers = [line.compartment for line in self.lines]
        _require(len(set(numbers)) == len(numbers), f"compartments repeat: {numbers}")

    @property
    def total_added(self) -> int:
        return sum(line.added for line in self.lines)


@dataclass(frozen=True)
class NamedValue:
    """A name and its value on a technician page (a version, a config key)."""

    name: str
    value: str


@dataclass(frozen=True)
class DeviceCheck:
    """One device's self-test result; ``detail`` says what to do when it failed."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class SelfTestPage(Receipt):
    """The technician's self-test page: software versions, config summary, device results.

    It also prints a QR code and a barcode so the technician can check the printer renders
    them and a scanner reads them.
    """

    versions: tuple[NamedValue, ...]
    config: tuple[NamedValue, ...]
    devices: tuple[DeviceCheck, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("versions", "config", "devices"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def all_ok(self) -> bool:
        return all(check.ok for check in self.devices)
