"""Offline floor limits: kinds, limits (member and kiosk), store-day boundary, offline time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.config import OfflineSection
from kiosk.domain.offline import (
    OfflineLimits,
    OfflineReason,
    OfflineSpend,
    check_offline_redemption,
    store_day,
)
from kiosk.domain.receipts import Bilingual
from kiosk.domain.text import Text
from kiosk.domain.transaction import TxnKind
from kiosk.i18n import render

SHANGHAI = ZoneInfo("Asia/Shanghai")
LIMITS = OfflineLimits(
    per_member_daily_points=500, per_kiosk_daily_points=1200, max_offline_hours=8
)
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=SHANGHAI)
DAY = date(2024, 5, 1)
SINCE = NOW - timedelta(hours=1)


def check(spends, member="m1", points=100, kind=TxnKind.REDEEM, since=SINCE, now=NOW):
    return check_offline_redemption(LIMITS, spends, member, points, kind, since, now, SHANGHAI)


def spend(member: str, points: int, day: date = DAY, txn: str = "t") -> OfflineSpend:
    return OfflineSpend(txn, member, points, day)


def test_limits_from_config_defaults() -> None:
    limits = OfflineLimits.from_config(OfflineSection())
    assert limits == OfflineLimits(500, 3000, 8)


def test_within_limits_is_allowed() -> None:
    decision = check([spend("m1", 100)], points=200)
    assert decision.allowed and decision.reason is OfflineReason.ALLOWED
    assert (decision.member_left, decision.kiosk_left, decision.day) == (400, 1100, DAY)


def test_exact_member_limit_is_allowed_one_over_is_not() -> None:
    assert check([spend("m1", 300)], points=200).allowed
    decision = check([spend("m1", 300)], points=201)
    assert not decision.allowed and decision.reason is OfflineReason.MEMBER_LIMIT
    assert decision.message == Text("offline.points_left", {"left": 200})
    assert "200" in render(decision.message).zh and "200" in render(decision.message).en


def test_used_up_message() -> None:
    decision = check([spend("m1", 500)], points=1)
    assert decision.reason is OfflineReason.MEMBER_LIMIT
    assert render(decision.message) == Bilingual(
        "离线模式：今日额度已用完", "Offline: today's limit is used up"
    )


def test_exact_kiosk_limit_is_allowed_one_over_is_not() -> None:
    others = [spend("a", 500), spend("b", 500)]  # kiosk: 200 left
    assert check(others, points=200).allowed
    decision = check(others, points=201)
    assert not decision.allowed and decision.reason is OfflineReason.KIOSK_LIMIT
    assert decision.kiosk_left == 200


def test_other_members_are_unaffected_by_one_members_limit() -> None:
    spends = [spend("m1", 500)]
    assert not check(spends, member="m1", points=1).allowed
    decision = check(spends, member="m2", points=500)
    assert decision.allowed and decision.member_left == 500


def test_day_boundary_follows_store_timezone() -> None:
    # 15:59 UTC is 23:59 in Shanghai (day 1); 16:00 UTC is 00:00 on day 2.
    before = datetime(2024, 5, 1, 15, 59, tzinfo=UTC)
    after = datetime(2024, 5, 1, 16, 0, tzinfo=UTC)
    assert store_day(before, SHANGHAI) == date(2024, 5, 1)
    assert store_day(after, SHANGHAI) == date(2024, 5, 2)
    spends = [spend("m1", 500, day=date(2024, 5, 1))]
    assert not check(spends, now=before, since=before - timedelta(hours=1)).allowed
    decision = check(spends, now=after, since=after - timedelta(hours=1))
    assert decision.allowed and decision.day == date(2024, 5, 2)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check([], now=datetime(2024, 5, 1, 12, 0))
    with pytest.raises(ValueError, match="offline_since"):
        check([], since=datetime(2024, 5, 1, 11, 0))


@pytest.mark.parametrize("kind", [TxnKind.POINTS_CASH, TxnKind.SPIN])
def test_points_cash_and_spins_are_refused_offline(kind: TxnKind) -> None:
    decision = check([], points=1, kind=kind)
    assert not decision.allowed and decision.reason is OfflineReason.KIND_NOT_OFFLINE
    text = render(decision.message)
    assert text.zh.startswith("离线模式") and text.en.startswith("Offline")
    assert ("积分加现金" in text.zh) is (kind is TxnKind.POINTS_CASH)


def test_max_offline_hours() -> None:
    assert check([], since=NOW - timedelta(hours=8)).allowed
    decision = check([], since=NOW - timedelta(hours=8, seconds=1))
    assert not decision.allowed and decision.reason is OfflineReason.OFFLINE_TOO_LONG


def test_zero_max_offline_hours_disables_offline_redemption() -> None:
    limits = OfflineLimits(500, 1200, 0)
    decision = check_offline_redemption(limits, [], "m1", 1, TxnKind.REDEEM, NOW, NOW, SHANGHAI)
    assert decision.reason is OfflineReason.OFFLINE_TOO_LONG


@pytest.mark.parametrize("points", [0, -5, True])
def test_bad_points_are_refused(points: int) -> None:
    assert check([], points=points).reason is OfflineReason.BAD_POINTS


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["m1", "m2", "m3", "m4"]),
            st.integers(min_value=-10, max_value=700),
            st.integers(min_value=0, max_value=60 * 60),  # minutes after the start: ~2.5 days
        ),
        max_size=60,
    )
)
def test_allowed_spends_never_exceed_limits(requests: list[tuple[str, int, int]]) -> None:
    start = datetime(2024, 5, 1, 20, 0, tzinfo=SHANGHAI)
    spends: list[OfflineSpend] = []
    for i, (member, points, minutes) in enumerate(sorted(requests, key=lambda r: r[2])):
        now = start + timedelta(minutes=minutes)
        decision = check(spends, member=member, points=points, since=now, now=now)
        if decision.allowed:
            spends.append(OfflineSpend(str(i), member, points, decision.day))
    per_member: dict[tuple[str, date], int] = {}
    per_day: dict[date, int] = {}
    for s in spends:
        per_member[s.member_id, s.day] = per_member.get((s.member_id, s.day), 0) + s.points
        per_day[s.day] = per_day.get(s.day, 0) + s.points
    assert all(total <= LIMITS.per_member_daily_points for total in per_member.values())
    assert all(total <= LIMITS.per_kiosk_daily_points for total in per_day.values())
