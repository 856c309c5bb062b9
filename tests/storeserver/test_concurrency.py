"""Races over real HTTP on loopback: exactly one wins, the other gets a clear 409."""

from __future__ import annotations

import threading

import pytest

from .conftest import new_txn

ROUNDS = range(5)


def race(*calls):
    """Run the calls at the same moment (behind a barrier); return their responses in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def one_winner(a, b, error):
    assert sorted([a.status_code, b.status_code]) == [200, 409], (a.text, b.text)
    loser = a if a.status_code == 409 else b
    assert loser.json()["error"] == error and loser.json()["message"]


@pytest.mark.parametrize("round_", ROUNDS)
def test_two_kiosks_race_for_the_last_coupon_in_stock(store, kiosk, other_kiosk, round_):
    with store.db.transaction() as conn:  # the store's last ¥10 coupon
        conn.execute("UPDATE items SET stock = 1 WHERE sku = 'CPN-10'")
    body = {"sku": "CPN-10", "compartment": None, "points": 500}
    here, there = kiosk.member_session("M0003"), other_kiosk.member_session("M0004")
    a, b = race(
        lambda: kiosk.post(
            "/v1/redemptions", {"txn_id": new_txn(), "member_id": "M0003", **body}, headers=here
        ),
        lambda: other_kiosk.post(
            "/v1/redemptions", {"txn_id": new_txn(), "member_id": "M0004", **body}, headers=there
        ),
    )
    one_winner(a, b, "out_of_stock")
    left = (
        store.db.connection().execute("SELECT stock FROM items WHERE sku = 'CPN-10'").fetchone()[0]
    )
    assert left == 0


@pytest.mark.parametrize("round_", ROUNDS)
def test_two_kiosks_race_for_the_same_members_last_points(store, staff, kiosk, other_kiosk, round_):
    # M0001 has 750 points: enough for one umbrella (600), not two
    body = {"member_id": "M0001", "sku": "GIFT-UMBRELLA", "compartment": 5, "points": 600}
    # two codes of the member (say a screenshot's twin), each resolved at its kiosk
    here, there = kiosk.member_session("M0001"), other_kiosk.member_session("M0001")
    a, b = race(
        lambda: kiosk.post("/v1/redemptions", {"txn_id": new_txn(), **body}, headers=here),
        lambda: other_kiosk.post("/v1/redemptions", {"txn_id": new_txn(), **body}, headers=there),
    )
    one_winner(a, b, "insufficient_points")
    assert staff.get("/v1/members/M0001").json()["balance"] == 150


@pytest.mark.parametrize("round_", ROUNDS)
def test_double_tap_on_one_kiosk_takes_the_last_gift_once(store, kiosk, round_):
    # compartment 5 holds the kiosk's only umbrella; two members' sessions must not both get it
    body = {"sku": "GIFT-UMBRELLA", "compartment": 5, "points": 600}
    first, second = kiosk.member_session("M0003"), kiosk.member_session("M0004")
    a, b = race(
        lambda: kiosk.post(
            "/v1/redemptions", {"txn_id": new_txn(), "member_id": "M0003", **body}, headers=first
        ),
        lambda: kiosk.post(
            "/v1/redemptions", {"txn_id": new_txn(), "member_id": "M0004", **body}, headers=second
        ),
    )
    one_winner(a, b, "out_of_stock")


def test_same_txn_sent_twice_at_once_holds_once(store, staff, kiosk):
    body = {
        "txn_id": new_txn(),
        "member_id": "M0002",
        "sku": "GIFT-MUG",
        "compartment": 1,
        "points": 800,
    }
    headers = kiosk.member_session("M0002")
    a, b = race(
        lambda: kiosk.post("/v1/redemptions", body, headers=headers),
        lambda: kiosk.post("/v1/redemptions", body, headers=headers),
    )
    assert a.status_code == b.status_code == 200 and a.json() == b.json()
    assert staff.get("/v1/members/M0002").json()["balance"] == 2700 - 800
