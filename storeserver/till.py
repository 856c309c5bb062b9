"""What tills and the back office may put on a member: purchases, top-ups and manual points,
each bounded per call and per store day, and recorded with the account that made it.

A stolen or misused till token can then add at most a day's cap to a member, not a million
points (issue 11); the caps are settings (``TillLimits``) and a refusal says which one.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
from dataclasses import dataclass

from . import members
from .clock import iso
from .errors import ApiError
from .ledger import Ledger

log = logging.getLogger(__name__)


class OverLimit(ApiError):
    status = 422


@dataclass(frozen=True)
class TillLimits:
    """Caps on what tills and managers record. Money in cents, manual adjustments in points."""

    purchase_cents_per_call: int = 5_000_000  # ¥50,000
    purchase_cents_per_member_day: int = 10_000_000
    topup_cents_per_call: int = 500_000  # ¥5,000
    topup_cents_per_member_day: int = 1_000_000
    manual_points_per_call: int = 5_000
    manual_points_per_account_day: int = 20_000

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"till limit {name} must be a positive whole number, not {value!r}"
                )


def _check(
    conn: sqlite3.Connection,
    kind: str,
    who_column: str,
    who: str,
    day: str,
    amount: int,
    per_call: int,
    per_day: int,
    unit: str,
) -> None:
    if amount > per_call:
        raise OverLimit(
            "amount_over_limit",
            f"a {kind} of {amount} {unit} is over the {per_call} {unit} allowed in one call "
            f"(setting {kind}_{unit}_per_call)",
        )
    done = conn.execute(
        f"SELECT COALESCE(SUM(amount), 0) FROM till_entries WHERE kind = ? AND {who_column} = ? "
        "AND day = ?",
        (kind, who, day),
    ).fetchone()[0]
    if done + amount > per_day:
        raise OverLimit(
            "daily_limit_reached",
            f"{kind}s of {done} {unit} today plus {amount} would pass the daily {per_day} "
            f"{unit}; a manager can record the rest tomorrow or raise the setting",
        )


def _record(
    conn: sqlite3.Connection,
    ledger: Ledger,
    kind: str,
    member_id: str,
    actor: str,
    amount: int,
    ref: str,
) -> None:
    conn.execute(
        "INSERT INTO till_entries(kind, member_id, actor, day, amount, ref, at) "
        "VALUES (?,?,?,?,?,?,?)",
        (kind, member_id, actor, ledger.today().isoformat(), amount, ref, iso(ledger.clock.now())),
    )


class TillMoney(enum.Enum):
    """Money a till records for a member: each earns points and has its own caps."""

    PURCHASE = "purchase"
    TOPUP = "topup"

    def caps(self, limits: TillLimits) -> tuple[int, int]:
        """(per call, per member per day), in cents."""
        if self is TillMoney.PURCHASE:
            return limits.purchase_cents_per_call, limits.purchase_cents_per_member_day
        return limits.topup_cents_per_call, limits.topup_cents_per_member_day


def record_money(
    ledger: Ledger,
    conn: sqlite3.Connection,
    limits: TillLimits,
    kind: TillMoney,
    member_id: str,
    amount_cents: int,
    ref: str,
    actor: str,
) -> int:
    """A purchase (points at the member's tier rate) or a top-up (stored value and its points)
    within the caps; returns the points earned."""
    per_call, per_day = kind.caps(limits)
    day = ledger.today().isoformat()
    _check(conn, kind.value, "member_id", member_id, day, amount_cents, per_call, per_day, "cents")
    earn = members.earn_purchase if kind is TillMoney.PURCHASE else members.top_up
    earned = earn(ledger, conn, member_id, amount_cents, ref)
    _record(conn, ledger, kind.value, member_id, actor, amount_cents, ref)
    return earned


def manual_points(
    ledger: Ledger,
    conn: sqlite3.Connection,
    limits: TillLimits,
    member_id: str,
    points: int,
    reason: str,
    ref: str,
    actor: str,
) -> int:
    """Points a manager gives by hand (a goodwill gesture, a missed receipt); returns the
    balance. Bounded per call and per account per day; the reason goes in the log."""
    ledger.member_row(conn, member_id)
    members.record_once(conn, member_id, f"manual:{ref}")
    day = ledger.today().isoformat()
    _check(
        conn, "manual", "actor", actor, day, points,
        limits.manual_points_per_call, limits.manual_points_per_account_day, "points",
    )  # fmt: skip
    balance = ledger.earn(conn, member_id, points, "manual", f"manual:{ref}")
    _record(conn, ledger, "manual", member_id, actor, points, ref)
    log.info("manual points: %s gave %s %d points (%s)", actor, member_id, points, reason)
    return balance
