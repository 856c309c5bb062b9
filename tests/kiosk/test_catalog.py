"""The catalog: strict parsing of the server's answer, and what a member can take now."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.domain.catalog import (
    CatalogItem,
    ItemKind,
    Unaffordable,
    affordable,
    parse_catalog,
)
from kiosk.domain.member_view import UnusableAnswer
from kiosk.errors import KioskError
from tests.kiosk.test_member_view import _json, parse

SERVER_CATALOG = {
    "version": "9355e697e00cf225",
    "items": [
        {"sku": "GIFT-TOTE", "name_zh": "帆布袋", "name_en": "Canvas tote bag", "kind": "gift", "points": 300, "cash_cents": 0, "coupon_value_cents": 0, "picture": None, "compartments": [{"number": 2, "stock": 5}], "stock": 5},
        {"sku": "CPN-10", "name_zh": "10元代金券", "name_en": "¥10 off coupon", "kind": "coupon", "points": 500, "cash_cents": 0, "coupon_value_cents": 1000, "picture": None, "compartments": [], "stock": None},
        {"sku": "GIFT-MUG", "name_zh": "保温杯", "name_en": "Thermal mug", "kind": "gift", "points": 800, "cash_cents": 0, "coupon_value_cents": 0, "picture": None, "compartments": [{"number": 1, "stock": 0}, {"number": 6, "stock": 0}], "stock": 0},
        {"sku": "GIFT-EARBUDS", "name_zh": "蓝牙耳机", "name_en": "Bluetooth earbuds", "kind": "gift", "points": 2000, "cash_cents": 4900, "coupon_value_cents": 0, "picture": None, "compartments": [{"number": 4, "stock": 2}], "stock": 2},
        {"sku": "NFT-1", "name_zh": "新品", "name_en": "New thing", "kind": "nft", "points": 1, "cash_cents": 0, "compartments": []},
    ],
}  # fmt: skip


# ---- parsing -----------------------------------------------------------------------------------


def test_the_servers_catalog_parses_and_unknown_kinds_are_skipped():
    cat = parse_catalog(SERVER_CATALOG)
    assert cat.version == "9355e697e00cf225" and cat.skipped == ("NFT-1",)
    tote, coupon, mug, earbuds = cat.items
    assert tote == CatalogItem(
        "GIFT-TOTE", "帆布袋", "Canvas tote bag", ItemKind.GIFT, 300, 0, 5, ((2, 5),)
    )
    assert coupon.kind is ItemKind.COUPON and coupon.stock is None  # unlimited
    assert mug.stock == 0 and earbuds.cash_cents == 4900


def test_a_gift_without_a_stock_total_counts_its_compartments():
    data = copy.deepcopy(SERVER_CATALOG)
    del data["items"][0]["stock"]
    assert parse_catalog(data).items[0].stock == 5


@settings(max_examples=200)
@given(data=_json | st.builds(lambda v: {**SERVER_CATALOG, "items": [v]}, _json))
def test_any_catalog_answer_gives_a_catalog_or_only_an_unusable_answer(data):
    try:
        parse_catalog(data)
    except KioskError as exc:
        assert isinstance(exc, UnusableAnswer) and "catalog" in str(exc)


# ---- affordability -----------------------------------------------------------------------------


def _items(*specs: tuple[str, int, int, int | None]) -> list[CatalogItem]:
    return [
        CatalogItem(sku, sku, sku, ItemKind.GIFT, p, cash, stock) for sku, p, cash, stock in specs
    ]


def test_affordable_items_come_first_each_other_with_its_reason():
    view = parse(balance=700)
    items = _items(
        ("MUG", 800, 0, 3),
        ("TOTE", 300, 0, 5),
        ("EMPTY", 100, 0, 0),
        ("EARBUDS", 2000, 4900, 2),
        ("CAP", 200, 990, 1),
        ("COUPON", 500, 0, None),
    )
    online = affordable(view, items, online=True)
    assert [(a.item.sku, a.reason, a.points_short) for a in online] == [
        ("TOTE", None, 0),
        ("CAP", None, 0),  # the cash part is paid at the kiosk
        ("COUPON", None, 0),  # no stock limit
        ("MUG", Unaffordable.NOT_ENOUGH_POINTS, 100),
        ("EMPTY", Unaffordable.OUT_OF_STOCK, 0),
        ("EARBUDS", Unaffordable.NOT_ENOUGH_POINTS, 1300),
    ]
    offline = {a.item.sku: a for a in affordable(view, items, online=False)}
    assert offline["CAP"].reason is Unaffordable.CASH_NEEDS_ONLINE and not offline["CAP"].ok
    assert offline["TOTE"].ok


def test_out_of_stock_is_the_reason_given_before_points():
    view = parse(balance=0)
    (a,) = affordable(view, _items(("MUG", 800, 990, 0)), online=False)
    assert a.reason is Unaffordable.OUT_OF_STOCK and a.points_short == 0


def test_the_stores_offline_caps_come_with_the_catalog():
    from kiosk.domain.offline import OfflineLimits

    assert parse_catalog(SERVER_CATALOG).offline is None  # an older server: the config's apply
    caps = {"per_member_daily_points": 400, "per_kiosk_daily_points": 2000, "max_offline_hours": 6}
    assert parse_catalog({**SERVER_CATALOG, "offline": caps}).offline == OfflineLimits(400, 2000, 6)
    for bad in ({**caps, "max_offline_hours": -1}, {**caps, "per_member_daily_points": "400"}, []):
        try:
            parse_catalog({**SERVER_CATALOG, "offline": bad})
        except UnusableAnswer:
            continue
        raise AssertionError(f"offline caps {bad!r} accepted")


def test_the_servers_staff_lockout_rule_comes_with_the_catalog():
    from kiosk.domain.staff_lockout import LockoutPolicy

    assert parse_catalog(SERVER_CATALOG).staff_lockout is None  # an older server: keep the own
    rule = {"in_a_row": 3, "lock_steps_s": [60, 600], "daily_cap": 9}
    got = parse_catalog({**SERVER_CATALOG, "staff_lockout": rule}).staff_lockout
    assert got == LockoutPolicy(in_a_row=3, lock_steps_s=(60.0, 600.0), daily_cap=9)
    for bad in (
        {**rule, "in_a_row": 0},
        {**rule, "daily_cap": "9"},
        {**rule, "lock_steps_s": [60, -1]},
        {**rule, "lock_steps_s": "60"},
        [],
    ):
        with pytest.raises(UnusableAnswer):
            parse_catalog({**SERVER_CATALOG, "staff_lockout": bad})
