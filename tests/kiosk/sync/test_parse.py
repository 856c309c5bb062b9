"""Reading the store server's answers on their own; the client's use of them is test_client*.py."""

from __future__ import annotations

import datetime as dt

import pytest

import kiosk.sync.client
from kiosk import errors
from kiosk.domain.receipts import PrizeKind
from kiosk.domain.wheel import Prize, Wheel
from kiosk.errors import Rejected, RetryLater
from kiosk.ports import Payment, PaymentStatus, RedemptionState
from kiosk.sync import parse
from kiosk.sync.parse import BadResponse, ShapeError


def test_the_client_still_exports_its_errors():
    assert kiosk.sync.client.BadResponse is BadResponse
    assert kiosk.sync.client.RetryLater is errors.RetryLater
    assert issubclass(RetryLater, Rejected) and issubclass(BadResponse, errors.Unreachable)


def test_keys_checks_types_and_json_true_is_not_a_number():
    check = parse.keys(balance=int, tier=str)
    assert check({"balance": 5, "tier": "gold", "x": 1}) == {"balance": 5, "tier": "gold", "x": 1}
    for bad in ({"balance": True, "tier": "gold"}, {"tier": "gold"}, [], {"balance": 1, "tier": 2}):
        with pytest.raises(ShapeError):
            check(bad)


# ---- typed models at the edge: the wheel, a spin's prize, states -------------------------------

COMMIT = "ab" * 32
WHEEL = {
    "id": "LUCKY",
    "name_zh": "幸运转盘",
    "name_en": "Lucky wheel",
    "cost_points": 100,
    "daily_limit": 3,
    "segments": [
        {"idx": 0, "label_zh": "谢谢参与", "label_en": "Try again", "prize_kind": "none",
         "prize_points": 0, "prize_sku": None, "weight": 60, "stock": None, "odds": 0.6},
        {"idx": 1, "label_zh": "50积分", "label_en": "50 points", "prize_kind": "points",
         "prize_points": 50, "prize_sku": None, "weight": 40, "stock": 9, "odds": 0.4},
    ],
    "rules_zh": "规则",
    "rules_en": "Rules",
    "commitments": {"2026-11-28": COMMIT, "2026-11-29": "cd" * 32},
    "seeds_url": "https://store.example/v1/wheels/LUCKY/seeds/",
}  # fmt: skip
PRIZE = {
    "wheel_id": "LUCKY", "segment_idx": 1, "kind": "points", "label_zh": "50积分",
    "label_en": "50 points", "points": 50, "sku": None, "coupon_value_cents": None,
    "day": "2026-11-28", "eligible": [[0, 60], [1, 40]], "commitment": COMMIT,
}  # fmt: skip
SPIN = {
    "txn_id": "t1", "kind": "spin", "state": "held", "member_id": "M0004", "sku": None,
    "compartment": None, "points": 100, "cash_cents": 0, "hold_expires_at": None,
    "void_reason": None, "coupon_code": None, "payment": None, "prize": PRIZE, "balance": 5,
}  # fmt: skip


def test_a_wheel_is_parsed_once_into_typed_values():
    wheel = parse.wheel(WHEEL)
    assert isinstance(wheel, Wheel) and wheel.cost_points == 100 and wheel.spins_left is None
    assert [s.prize_kind for s in wheel.segments] == [PrizeKind.NONE, PrizeKind.POINTS]
    assert wheel.segments[1].label("en") == "50 points" and wheel.segments[1].odds == 0.4
    assert wheel.commitment_on(dt.date(2026, 11, 28)) == COMMIT
    assert parse.wheel({**WHEEL, "spins_left": 2}).spins_left == 2


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        ({"segments": [{**WHEEL["segments"][0], "prize_kind": "car"}]}, "prize_kind"),
        ({"segments": [{**WHEEL["segments"][0], "odds": 1.5}]}, "probability"),
        ({"segments": [WHEEL["segments"][1], WHEEL["segments"][0]]}, "in order"),
        ({"segments": [{k: v for k, v in WHEEL["segments"][0].items() if k != "label_en"}]},
         "label_en"),
        ({"commitments": {"2026-11-28": "not a hash"}}, "SHA-256"),
        ({"commitments": {"tomorrow": COMMIT}}, "not a date"),
        ({"cost_points": -1}, "negative"),
        ({"commitments": None}, "commitments"),
    ],
)  # fmt: skip
def test_a_malformed_wheel_is_a_shape_error_that_says_what(broken, says):
    with pytest.raises(ShapeError, match=says):
        parse.wheel({**WHEEL, **broken})


def test_a_spin_answer_carries_a_typed_prize_and_state():
    r = parse.redemption(SPIN)
    assert r.state is RedemptionState.HELD and r.payment is None
    assert r.prize == Prize("LUCKY", 1, PrizeKind.POINTS, "50积分", "50 points", 50,
                            "2026-11-28", COMMIT)  # fmt: skip


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        ({"prize": None}, "prize"),
        ({"prize": {**PRIZE, "commitment": "zz"}}, "SHA-256"),
        ({"prize": {**PRIZE, "kind": "car"}}, "kind"),
        ({"prize": {**PRIZE, "day": "soon"}}, "not a date"),
        ({"state": "weird"}, "state"),
        ({"payment": {"id": "p", "status": "?", "amount_cents": 1}}, "status"),
    ],
)
def test_a_malformed_spin_or_state_is_a_shape_error(broken, says):
    with pytest.raises(ShapeError, match=says):
        parse.redemption({**SPIN, **broken})


def test_a_cash_part_is_a_typed_payment():
    pay = {"id": "p1", "status": "refunded", "amount_cents": 4900, "pay_url": None}
    r = parse.redemption({**SPIN, "kind": "redeem", "prize": None, "payment": pay})
    assert r.payment == Payment("p1", PaymentStatus.REFUNDED, 4900)


@pytest.mark.parametrize(
    "broken", [{"tier_threshold": "1000"}, {"next_tier_threshold": 5.5}, {"tier_en": 3}]
)
def test_tier_thresholds_and_names_of_the_wrong_type_are_garbage(broken):
    member = {"member_id": "M0002", "tier": "silver", "balance": 2700, "tier_threshold": 1000}
    assert parse.member(member)["tier_threshold"] == 1000
    with pytest.raises(ShapeError):
        parse.member({**member, **broken})
