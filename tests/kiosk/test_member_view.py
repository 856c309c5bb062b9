"""The member view: strict parsing of the server's answer, masking, cache records."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.domain.member_view import (
    CACHE_RECORD_MAX_BYTES,
    ExpiringPoints,
    MemberView,
    Tier,
    UnusableAnswer,
    describe_age,
    mask_name,
    mask_phone,
    parse_member_view,
    view_from_record,
    view_to_record,
    with_balance,
)
from kiosk.domain.receipts import Bilingual
from kiosk.errors import JournalError, KioskError, Unreachable
from kiosk.i18n import render
from kiosk.storage import Journal

FETCHED = 1_795_430_568.0

# What storeserver/members.py view() answers for the demo member M0002 (checked against the real
# server in tests/kiosk/services/test_identify.py).
SERVER_VIEW = {
    "member_id": "M0002",
    "name_masked": "李*",
    "phone_masked": "139****6789",
    "tier": "silver",
    "tier_zh": "银卡会员",
    "tier_en": "Silver",
    "tier_threshold": 1000,
    "next_tier": "gold",
    "next_tier_zh": "金卡会员",
    "next_tier_en": "Gold",
    "next_tier_threshold": 5000,
    "points_to_next_tier": 2300,
    "lifetime_points": 2700,
    "balance": 2700,
    "expiring": [
        {"points": 900, "expires_on": "2026-12-18"},
        {"points": 600, "expires_on": "2026-11-28"},
    ],
    "stored_value_cents": 1250,
    "recent_changes": [
        {
            "at": "2026-11-23T02:00:00+00:00",
            "delta": 1200,
            "kind": "purchase",
            "ref": "r",
            "balance_after": 2700,
        },
        {
            "at": "2026-11-22T09:30:00+08:00",
            "delta": -300,
            "kind": "redeem",
            "ref": "t",
            "balance_after": 1500,
        },
    ],
    "affordable_skus": ["GIFT-TOTE"],
}


def answer(**over: object) -> dict:
    data = copy.deepcopy(SERVER_VIEW)
    for key, value in over.items():
        if value is KeyError:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def parse(**over: object) -> MemberView:
    return parse_member_view(answer(**over), FETCHED)


# ---- parsing -----------------------------------------------------------------------------------


def test_the_servers_view_parses_into_what_the_screen_needs():
    v = parse()
    assert (v.member_id, v.name_masked, v.phone_masked) == ("M0002", "李*", "139****6789")
    assert v.tier == Tier("silver", "银卡会员", "Silver", 1000)
    assert v.next_tier == Tier("gold", "金卡会员", "Gold", 5000)
    assert (v.points_to_next_tier, v.lifetime_points, v.balance) == (2300, 2700, 2700)
    assert v.tier_progress == pytest.approx((2700 - 1000) / (5000 - 1000))
    assert v.expiring == (  # soonest first, whatever order the server used
        ExpiringPoints(600, dt.date(2026, 11, 28)),
        ExpiringPoints(900, dt.date(2026, 12, 18)),
    )
    assert v.stored_value_cents == 1250 and v.fetched_at == FETCHED
    first, second = v.recent_changes  # newest first, as sent
    assert (first.delta, first.reason, first.balance_after) == (1200, "purchase", 2700)
    assert first.at == dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
    assert (second.delta, second.reason) == (-300, "redeem")
    assert second.at.utcoffset() == dt.timedelta(hours=8)


def test_tier_thresholds_and_english_names_are_used_when_the_server_sends_them():
    v = parse(tier_en="Silver member", tier_threshold=1000, next_tier_threshold=5000)
    assert v.tier.name_en == "Silver member" and v.tier.threshold == 1000
    assert v.tier_progress == pytest.approx((2700 - 1000) / (5000 - 1000))


def test_an_older_server_without_thresholds_gets_the_way_from_zero():
    gone = dict.fromkeys(("tier_en", "tier_threshold", "next_tier_en", "next_tier_threshold"),
                         KeyError)  # fmt: skip
    v = parse(**gone)
    assert (v.tier, v.next_tier) == (
        Tier("silver", "银卡会员", "Silver"),
        Tier("gold", "金卡会员", "Gold"),
    )
    assert v.tier_progress == pytest.approx(2700 / 5000)


def test_the_top_tier_has_no_next_tier_and_full_progress():
    v = parse(next_tier=None, next_tier_zh=None, points_to_next_tier=0)
    assert v.next_tier is None and v.points_to_next_tier == 0 and v.tier_progress == 1.0


@pytest.mark.parametrize(
    ("field", "sent", "shown"),
    [
        ("name_masked", "张三丰", "张**"),  # the server forgot to mask
        ("name_masked", "张三", "张*"),
        ("name_masked", "  Wei Li ", "W*****"),
        ("name_masked", "张*", "张*"),  # already masked: unchanged
        ("phone_masked", "13812345678", "138****5678"),
        ("phone_masked", "+85291234567", "+85****4567"),
        ("phone_masked", "12345678", "****5678"),
        ("phone_masked", "12345", "****"),
    ],
)
def test_names_and_phones_are_masked_here_whatever_the_server_sent(field, sent, shown):
    got = parse(**{field: sent})
    assert (got.name_masked if field == "name_masked" else got.phone_masked) == shown


def test_an_unmasked_name_field_is_masked_too_and_a_phone_is_optional():
    v = parse(name_masked=KeyError, name="Emily Chen", phone_masked=None)
    assert v.name_masked == "E*********" and v.phone_masked is None


@given(st.text(max_size=80))
def test_masking_shows_one_character_at_most_and_is_idempotent(text):
    masked = mask_name(text)
    assert set(masked[1:]) == {"*"} and mask_name(masked) == masked
    assert 2 <= len(masked) <= 16
    phone = mask_phone(text)
    assert mask_phone(phone) == phone and "****" in phone and len(phone) <= 11
    assert sum(c != "*" for c in phone) <= 7


@pytest.mark.parametrize(
    "over",
    [
        {"balance": True},
        {"balance": -1},
        {"balance": 1.5},
        {"balance": "2700"},
        {"balance": 10**13},
        {"balance": KeyError},
        {"member_id": "../M0002"},
        {"member_id": ""},
        {"tier_zh": KeyError},
        {"next_tier_zh": None},
        {"points_to_next_tier": None},
        {"name_masked": "\ud800"},  # a lone surrogate: JSON allows it, UTF-8 cannot hold it
        {"name_masked": "\x1b[2J"},
        {"name_masked": None, "name": None},
        {"name_masked": "x" * 65},
        {"expiring": {"points": 1}},
        {"expiring": [{"points": 0, "expires_on": "2026-12-01"}]},
        {"expiring": [{"points": 5, "expires_on": "2026-13-01"}]},
        {"expiring": [{"points": 5}]},
        {"expiring": [[5, "2026-12-01"]]},
        {"expiring": [{"points": 1, "expires_on": "2026-12-01"}] * 501},
        {"recent_changes": [{"at": "2026-11-23T02:00:00", "delta": 1, "kind": "x"}]},  # no zone
        {"recent_changes": [{"at": "yesterday", "delta": 1, "kind": "x"}]},
        {"recent_changes": [{"at": "2026-11-23T02:00:00Z", "delta": 1}]},
        {"recent_changes": [{"at": "2026-11-23T02:00:00Z", "delta": False, "kind": "x"}]},
        {"stored_value_cents": None},
    ],
)
def test_an_unusable_view_is_an_unusable_answer_that_says_what_is_wrong(over):
    with pytest.raises(UnusableAnswer) as info:
        parse(**over)
    assert isinstance(info.value, Unreachable)  # the kiosk acts as if offline
    message = str(info.value)
    assert "member view" in message and "check" in message


@pytest.mark.parametrize("data", [None, [], "M0002", 42, {"member_id": "M0002"}])
def test_not_a_view_at_all_is_an_unusable_answer(data):
    with pytest.raises(UnusableAnswer):
        parse_member_view(data, FETCHED)


@pytest.mark.parametrize("fetched", [float("nan"), float("inf"), -1.0, True, "now"])
def test_a_bad_fetch_time_is_refused(fetched):
    with pytest.raises(UnusableAnswer):
        parse_member_view(answer(), fetched)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**14), max_value=10**14)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["2026-11-28", "2026-11-23T02:00:00+00:00", "\ud800", "M0002", "gold"])
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_near_miss = st.builds(
    lambda key, value: answer(**{key: value}),
    st.sampled_from([*sorted(SERVER_VIEW), "name", "tier_threshold", "next_tier_en"]),
    _json,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=_json | _near_miss)
def test_any_answer_gives_a_view_or_only_a_kiosk_error(data):
    try:
        view = parse_member_view(data, FETCHED)
    except KioskError as exc:
        assert isinstance(exc, UnusableAnswer) and str(exc)
        return
    # Whatever was accepted survives the cache: masked, bounded, and read back equal.
    assert set(view.name_masked[1:]) <= {"*"}
    record = view_to_record(view)
    assert len(json.dumps(record, ensure_ascii=False).encode()) <= CACHE_RECORD_MAX_BYTES + 200
    assert view_from_record(json.loads(json.dumps(record))) == view


# ---- the cache record --------------------------------------------------------------------------


def test_a_record_round_trips_through_json_and_the_journal(tmp_path):
    view = parse(tier_en="Silver", tier_threshold=1000, next_tier_threshold=5000)
    with Journal.open(tmp_path) as journal:
        journal.put("member_cache", view.member_id, view_to_record(view))
    with Journal.open(tmp_path) as journal:
        assert view_from_record(journal.get("member_cache", view.member_id)) == view


def _big_view(changes: int, expiring: int) -> MemberView:
    return parse(
        member_id="M" + "9" * 31,
        tier="t" * 32,
        tier_zh="钻" * 64,
        tier_en="D" * 64,
        next_tier="u" * 32,
        next_tier_zh="金" * 64,
        next_tier_en="G" * 64,
        name_masked="张" * 64,
        phone_masked="1" * 32,
        expiring=[
            {
                "points": 10**12,
                "expires_on": (dt.date(2027, 1, 1) + dt.timedelta(days=i)).isoformat(),
            }
            for i in range(expiring)
        ],
        recent_changes=[
            {
                "at": f"2026-11-23T02:00:{i % 60:02d}.123456+05:30",
                "delta": -(10**12) + i,
                "kind": "兑" * 32,
                "balance_after": 10**12,
            }
            for i in range(changes)
        ],
    )


def test_history_is_trimmed_oldest_first_to_fit_a_journal_record(tmp_path):
    view = _big_view(changes=200, expiring=5)
    record = view_to_record(view)
    size = len(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
    assert size <= CACHE_RECORD_MAX_BYTES
    back = view_from_record(record)
    kept = len(back.recent_changes)
    assert 0 < kept < 200
    assert back.recent_changes == view.recent_changes[:kept]  # the newest ones stay
    assert back.expiring == view.expiring  # all of them fit
    with Journal.open(tmp_path) as journal:  # the largest key too: the journal takes it
        journal.put("member_cache", view.member_id, record)


def test_with_hundreds_of_lots_the_latest_expiring_go_after_the_history(tmp_path):
    view = _big_view(changes=10, expiring=500)
    back = view_from_record(view_to_record(view))
    assert back.recent_changes == ()
    assert 0 < len(back.expiring) < 500 and back.expiring == view.expiring[: len(back.expiring)]


def test_a_small_view_is_kept_whole():
    view = parse()
    assert view_from_record(view_to_record(view)) == view


@pytest.mark.parametrize(
    "record",
    [None, [], {}, {"format": 2, "fetched_at": 1.0, "view": SERVER_VIEW}, {"format": 1, "view": SERVER_VIEW}, {"format": 1, "fetched_at": 1.0, "view": {"member_id": "x"}}],
)  # fmt: skip
def test_an_unreadable_record_is_a_journal_error(record):
    with pytest.raises(JournalError, match="dropped"):
        view_from_record(record)


# ---- age of a cached view ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "zh", "en"),
    [
        (-5, "刚刚", "just now"),
        (59, "刚刚", "just now"),
        (61, "1 分钟前", "1 min ago"),
        (3 * 3600 + 5, "3 小时前", "3 h ago"),
        (3 * 86400, "3 天前", "3 days ago"),
    ],
)
def test_the_age_of_a_cached_view_reads_naturally(age, zh, en):
    assert render(describe_age(age)) == Bilingual(zh, en)


def test_points_spent_leave_the_soonest_expiring_lots_first_as_the_server_spends_them():
    v = parse()  # 600 expire 11-28, 900 expire 12-18, balance 2700
    after = with_balance(v, 1900)  # 800 spent: the 600 lot, then 200 of the 900 lot
    assert after.balance == 1900
    assert after.expiring == (ExpiringPoints(700, dt.date(2026, 12, 18)),)
    assert with_balance(v, 2100).expiring == (ExpiringPoints(900, dt.date(2026, 12, 18)),)
    assert with_balance(v, 0).expiring == ()
    won = with_balance(v, 2750)  # a points prize: added, expiry known at the next scan
    assert won.balance == 2750 and won.expiring == v.expiring
    assert (after.member_id, after.tier, after.fetched_at) == (v.member_id, v.tier, v.fetched_at)


def test_the_tier_bar_counts_from_the_current_tiers_threshold_the_server_sends(server, kiosk):
    """M0002 (silver from 1,000 lifetime points, gold at 5,000, 2,700 so far), as the real
    store server answers the kiosk: the bar is (2700 - 1000) / (5000 - 1000), not 2700 / 5000."""
    answer = kiosk.client.resolve_member(server.code("M0002"))
    v = parse_member_view(answer, FETCHED)
    assert (v.tier.threshold, v.next_tier.threshold) == (1000, 5000)
    assert (v.tier.name_en, v.next_tier.name_en) == ("Silver", "Gold")
    assert v.tier_progress == pytest.approx((2700 - 1000) / (5000 - 1000))
