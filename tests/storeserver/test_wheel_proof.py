"""A draw the kiosk cannot prove: the void that returns its cost (and only that), and the
revealed seed a wheel receipt's QR code opens (docs/transactions.md, "The wheel's proof")."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from storeserver import demo
from tests.storeserver.test_wheel import alerts_of, balance, lucky_info, post_spin

OTHER = "f" * 64  # a commitment nobody published


def spin_once(store, kiosk, idx: int) -> tuple[str, dict]:
    """One spin of the demo wheel that can only land on segment ``idx``."""
    with store.db.transaction() as conn:
        conn.execute("UPDATE wheel_segments SET stock = 0 WHERE idx != ?", (idx,))
        conn.execute("UPDATE wheel_segments SET stock = 5 WHERE idx = ? AND stock IS NOT NULL",
                     (idx,))  # fmt: skip
    txn_id = str(uuid.uuid4())
    resp = post_spin(kiosk, txn_id)
    assert resp.status_code == 200, resp.text
    return txn_id, resp.json()["prize"]


def mismatch(prize: dict, *, held: str | None = None, answered: str | None = None) -> str:
    """The reason a kiosk sends (kiosk/domain/wheel.py ``unproven``)."""
    return (
        f"commitment_mismatch: day={prize['day']} held={held or prize['commitment']} "
        f"answered={answered or OTHER}"
    )


@pytest.mark.parametrize("idx", [1, 4], ids=["points prize", "gift prize"])
def test_an_unproven_draw_is_voided_with_its_cost_returned_and_staff_alerted(store, kiosk, idx):
    start = balance(store)
    txn_id, prize = spin_once(store, kiosk, idx)
    assert balance(store) == start - demo.WHEEL[3]
    voided = kiosk.post(f"/v1/redemptions/{txn_id}/void", json={"reason": mismatch(prize)})
    assert voided.status_code == 200, voided.text
    assert voided.json()["state"] == "voided" and voided.json()["points"] == demo.WHEEL[3]
    assert balance(store) == start  # the cost is back, nothing was awarded
    assert alerts_of(store, "spin_commitment_mismatch") == [txn_id]
    assert alerts_of(store, "spin_gift_not_dispensed") == []
    # the spin still counts: voiding cannot buy a second try beyond the day's limit
    assert lucky_info(kiosk)["spins_left"] == demo.WHEEL[4] - 1


@pytest.mark.parametrize(
    "reason",
    [
        "commitment_mismatch",  # says nothing
        "commitment_mismatch: the kiosk did not like it",
        "commitment_mismatch: day={day} held={commitment} answered={commitment}",  # proven
        "commitment_mismatch: day=2001-01-01 held=none answered=" + OTHER,  # another day
    ],
)
def test_a_mismatch_claim_that_does_not_hold_together_is_refused_and_changes_nothing(
    store, kiosk, reason
):
    txn_id, prize = spin_once(store, kiosk, 1)
    after_spin = balance(store)
    void = kiosk.post(f"/v1/redemptions/{txn_id}/void", json={"reason": reason.format(**prize)})
    assert void.status_code == 409, void.text
    assert void.json()["error"] == "spin_not_voidable"
    assert balance(store) == after_spin and alerts_of(store, "spin_commitment_mismatch") == []


def test_a_kiosk_that_held_no_commitment_for_the_day_may_void(store, kiosk):
    txn_id, prize = spin_once(store, kiosk, 0)
    reason = mismatch(prize, held="none", answered=prize["commitment"])
    assert kiosk.post(f"/v1/redemptions/{txn_id}/void", json={"reason": reason}).status_code == 200


def test_the_wheel_names_where_its_seeds_are_revealed_and_the_receipt_link_opens_one_spin(
    store, server, kiosk, anon
):
    info = lucky_info(kiosk)
    assert info["seeds_url"] == f"{server.url}/v1/wheels/{demo.WHEEL[0]}/seeds/"
    mine, prize = spin_once(store, kiosk, 1)
    assert post_spin(kiosk, str(uuid.uuid4())).status_code == 200  # another spin that day
    link = f"/v1/wheels/{demo.WHEEL[0]}/seeds/{prize['day']}"
    assert anon.get(link, params={"txn": mine}).json()["error"] == "seed_not_revealed"
    store.clock.advance(days=1)
    revealed = anon.get(link, params={"txn": mine}).json()
    assert hashlib.sha256(bytes.fromhex(revealed["seed"])).hexdigest() == prize["commitment"]
    assert [s["txn_id"] for s in revealed["spins"]] == [mine]
    assert len(anon.get(link).json()["spins"]) == 2  # without txn: every spin of the day
