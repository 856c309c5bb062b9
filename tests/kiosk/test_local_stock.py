"""The catalog as the compartments stand: the server's stock less what the outbox still owes."""

from __future__ import annotations

from kiosk.domain.catalog import parse_catalog
from kiosk.domain.local_stock import (
    StockChange,
    changes_from_events,
    dispensed_since,
    local_changes,
    with_local_stock,
)
from kiosk.domain.transaction import TxnKind, TxnState, advance, new_transaction

CATALOG = parse_catalog({"version": "v7", "items": [
    {"sku": "MUG", "name_zh": "杯", "name_en": "Mug", "kind": "gift", "points": 800,
     "cash_cents": 0, "stock": None, "compartments": [{"number": 1, "stock": 3},
                                                       {"number": 6, "stock": 0}]},
    {"sku": "TOTE", "name_zh": "袋", "name_en": "Tote", "kind": "gift", "points": 300,
     "cash_cents": 0, "stock": None, "compartments": [{"number": 2, "stock": 1}]},
    {"sku": "CPN", "name_zh": "券", "name_en": "Coupon", "kind": "coupon", "points": 500,
     "cash_cents": 0, "stock": 200, "compartments": []},
]})  # fmt: skip


def stock(catalog, sku):
    item = next(i for i in catalog.items if i.sku == sku)
    return item.stock, item.compartments


def test_no_pending_change_is_the_servers_catalog_itself():
    assert with_local_stock(CATALOG, []) is CATALOG


def test_an_offline_dispense_takes_one_and_never_below_zero():
    view = with_local_stock(CATALOG, [StockChange(2, dispensed=True)] * 2)
    assert stock(view, "TOTE") == (0, ((2, 0),))
    assert stock(view, "MUG") == (3, ((1, 3), (6, 0))) and view.version == "v7"


def test_a_count_sets_the_compartment_and_may_move_it_to_another_gift():
    view = with_local_stock(CATALOG, [StockChange(6, sku="TOTE", count=4),
                                      StockChange(1, dispensed=True)])  # fmt: skip
    assert stock(view, "TOTE") == (5, ((2, 1), (6, 4)))
    assert stock(view, "MUG") == (2, ((1, 2),))


def test_changes_apply_in_their_order():
    refill_then_take = [StockChange(2, sku="TOTE", count=5), StockChange(2, dispensed=True)]
    take_then_refill = list(reversed(refill_then_take))
    assert stock(with_local_stock(CATALOG, refill_then_take), "TOTE")[0] == 4
    assert stock(with_local_stock(CATALOG, take_then_refill), "TOTE")[0] == 5


def test_an_emptied_compartment_leaves_its_gift_and_coupons_are_untouched():
    view = with_local_stock(CATALOG, [StockChange(2, sku=None, count=0)])
    assert stock(view, "TOTE") == (0, ())
    assert stock(view, "CPN") == stock(CATALOG, "CPN")


def test_events_become_changes_and_others_are_skipped():
    events = [
        ("offline_redemption", {"txn_id": "t", "compartment": 2, "sku": "TOTE"}),
        ("inventory", {"compartment": 6, "sku": "MUG", "count": 2}),
        ("inventory", {"compartment": 3, "sku": None, "count": 0}),
        ("needs_check", {"compartment": 1}),
        ("inventory", {"compartment": "1", "count": 2}),  # not a number
        ("inventory", {"compartment": 1, "count": -1}),
        ("offline_redemption", {"compartment": None}),
        ("inventory", {"compartment": True, "count": 1}),
    ]
    assert changes_from_events((k, p, float(n)) for n, (k, p) in enumerate(events)) == [
        StockChange(2, dispensed=True, at=0.0, txn_id="t"),
        StockChange(6, sku="MUG", count=2, at=1.0),
        StockChange(3, sku=None, count=0, at=2.0),
    ]


def txn(txn_id, compartment, states_at, offline=False):
    t = new_transaction(txn_id, TxnKind.REDEEM, "M0002", points=300, at=1.0, sku="TOTE",
                        compartment=compartment, offline=offline)  # fmt: skip
    for state, at in states_at:
        facts = {"void_reason": "test"} if state is TxnState.VOIDING else {}
        t = advance(t, state, at=at, **facts)
    return t


S = TxnState


def test_online_a_gift_counts_when_its_hold_came_after_the_fetch():
    door = [(S.HELD, 10.0), (S.DOOR_OPENING, 11.0), (S.DISPENSED, 12.0)]
    voided = [(S.HELD, 60.0), (S.VOIDING, 61.0), (S.VOIDED, 62.0)]
    txns = [txn("early", 2, door), txn("late", 2, [(s, t + 100) for s, t in door]),
            txn("void", 2, voided),  # the server gave the stock back
            txn("paid-long", 2, [(S.HELD, 40.0), (S.DOOR_OPENING, 55.0), (S.DISPENSED, 56.0)])]  # fmt: skip
    # "paid-long": held before the fetch at 50 (the catalog counts it), out after: once only
    assert dispensed_since(txns, since=50.0) == [
        StockChange(2, dispensed=True, at=110.0, txn_id="late")
    ]


def test_offline_a_gift_counts_when_its_door_opened_after_the_fetch():
    offline = txn("off", 2, [(S.HELD, 40.0), (S.DOOR_OPENING, 55.0), (S.DISPENSED, 56.0)],
                  offline=True)  # fmt: skip
    assert dispensed_since([offline], since=50.0) == [
        StockChange(2, dispensed=True, at=56.0, txn_id="off")
    ]
    assert dispensed_since([offline], since=60.0) == []


def test_an_offline_gift_is_counted_once_as_a_dispense_and_a_pending_upload():
    out = StockChange(2, dispensed=True, at=60.0, txn_id="off")
    upload = StockChange(2, dispensed=True, at=61.0, txn_id="off")
    older = StockChange(2, dispensed=True, at=5.0, txn_id="before-fetch")  # pending upload only
    count = StockChange(2, sku="TOTE", count=4, at=30.0)
    assert local_changes([out], [older, count, upload]) == [older, count, out]
    assert stock(with_local_stock(CATALOG, local_changes([out], [older, count, upload])),
                 "TOTE")[0] == 3  # fmt: skip


def test_the_catalog_as_it_stands_applies_pending_events_by_their_iso_time():
    from kiosk.domain.local_stock import catalog_as_it_stands, event_epoch

    assert event_epoch("garbage") == 0.0 and event_epoch("1970-01-01T00:00:10+00:00") == 10.0
    pending = [  # a count of 4, then an offline tote out: 3 (in time order, not list order)
        ("offline_redemption", {"compartment": 2, "txn_id": "t1"}, "1970-01-01T00:00:20+00:00"),
        ("inventory", {"compartment": 2, "sku": "TOTE", "count": 4}, "1970-01-01T00:00:10+00:00"),
    ]
    view = catalog_as_it_stands(CATALOG, 0.0, [], pending)
    assert stock(view, "TOTE") == (3, ((2, 3),))
