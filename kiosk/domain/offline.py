"""Offline floor limits: may the kiosk redeem while the store server is unreachable?

ARCHITECTURE.md ("Offline"): only plain gift redemptions, only within a per-member and a
per-kiosk daily limit, and not at all once the kiosk has been offline too long. The server may
still reject an offline spend when it is uploaded, so the limits cap what a conflict can cost.

Pure: the caller passes the spends it journalled, the times and the store's time zone.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from kiosk.domain.text import Text
from kiosk.domain.transaction import TxnKind

if TYPE_CHECKING:
    from kiosk.config import OfflineSection

__all__ = [
    "OfflineDecision",
    "OfflineLimits",
    "OfflineReason",
    "OfflineSpend",
    "check_offline_redemption",
    "store_day",
]


@dataclass(frozen=True)
class OfflineLimits:
    """The limits the check needs; points per store day, hours since going offline.

    From the store server's catalog (``Catalog.offline``: the caps it checks uploads against)
    once one arrived, else from the [offline] config (``from_config``)."""

    per_member_daily_points: int
    per_kiosk_daily_points: int
    max_offline_hours: int

    @classmethod
    def from_config(cls, section: OfflineSection) -> OfflineLimits:
        return cls(
            per_member_daily_points=section.per_member_daily_points,
            per_kiosk_daily_points=section.per_kiosk_daily_points,
            max_offline_hours=section.max_offline_hours,
        )


@dataclass(frozen=True)
class OfflineSpend:
    """One redemption made offline, journalled until the server has accepted or rejected it."""

    txn_id: str
    member_id: str
    points: int
    day: date  # the store day (store time zone) it was made on


class OfflineReason(enum.Enum):
    """Why an offline redemption was allowed or refused; the value is a stable code."""

    ALLOWED = "allowed"
    KIND_NOT_OFFLINE = "kind_not_offline"
    OFFLINE_TOO_LONG = "offline_too_long"
    MEMBER_LIMIT = "member_limit"
    KIOSK_LIMIT = "kiosk_limit"
    BAD_POINTS = "bad_points"


@dataclass(frozen=True)
class OfflineDecision:
    """The answer, with what the member sees (its text in kiosk/locale/offline.toml)."""

    allowed: bool
    reason: OfflineReason
    message: Text
    day: date
    member_left: int  # points still allowed today for this member (before this request)
    kiosk_left: int


def store_day(moment: datetime, tz: tzinfo) -> date:
    """The store's calendar day of an aware ``moment``."""
    _require_aware(moment, "now")
    return moment.astimezone(tz).date()


def _require_aware(moment: datetime, name: str) -> None:
    # A naive time would be read in the Pi's zone (often UTC), shifting the day by hours.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")


def check_offline_redemption(
    limits: OfflineLimits,
    spends_today: Iterable[OfflineSpend],
    member_id: str,
    points: int,
    kind: TxnKind,
    offline_since: datetime,
    now: datetime,
    tz: tzinfo,
) -> OfflineDecision:
    """Decide whether ``member_id`` may redeem ``points`` offline now.

    ``spends_today`` may hold older spends too: only those on the store day of ``now`` count.
    Limits are inclusive: a spend that reaches a limit exactly is allowed.
    """
    _require_aware(offline_since, "offline_since")
    day = store_day(now, tz)
    spends = [s for s in spends_today if s.day == day]
    member_used = sum(s.points for s in spends if s.member_id == member_id)
    kiosk_used = sum(s.points for s in spends)
    member_left = max(0, limits.per_member_daily_points - member_used)
    kiosk_left = max(0, limits.per_kiosk_daily_points - kiosk_used)

    def decide(reason: OfflineReason, message: Text) -> OfflineDecision:
        allowed = reason is OfflineReason.ALLOWED
        return OfflineDecision(allowed, reason, message, day, member_left, kiosk_left)

    if kind is not TxnKind.REDEEM:
        cash = kind is TxnKind.POINTS_CASH
        return decide(
            OfflineReason.KIND_NOT_OFFLINE,
            Text("offline.no_points_cash" if cash else "offline.no_wheel"),
        )
    # max_offline_hours = 0 turns offline redemption off; otherwise "longer than" is strict.
    offline_for = now - offline_since
    if limits.max_offline_hours == 0 or offline_for > timedelta(hours=limits.max_offline_hours):
        return decide(
            OfflineReason.OFFLINE_TOO_LONG,
            Text("offline.paused"),
        )
    if type(points) is not int or points <= 0:
        return decide(
            OfflineReason.BAD_POINTS,
            Text("offline.bad_points"),
        )
    if points > member_left:
        return decide(OfflineReason.MEMBER_LIMIT, _limit_message(member_left))
    if points > kiosk_left:
        return decide(OfflineReason.KIOSK_LIMIT, _limit_message(kiosk_left))
    return decide(
        OfflineReason.ALLOWED,
        Text("offline.allowed"),
    )


def _limit_message(left: int) -> Text:
    if left == 0:
        return Text("offline.used_up")
    return Text("offline.points_left", {"left": left})
