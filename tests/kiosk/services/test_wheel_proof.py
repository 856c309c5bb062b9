"""Wheel receipts the kiosk can vouch for, against the real store server on loopback.

Before a spin the kiosk holds the commitments of the wheel it synced; an answer that carries
another one is never shown: the spin is voided (the points come back), staff are alerted, and
the spin still counts. A proven spin's receipt carries a QR link to its revealed seed
(docs/transactions.md, "The wheel's proof")."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

import pytest
import requests

from kiosk.domain.transaction import TxnState
from kiosk.errors import BadResponse, Unreachable
from kiosk.services.txn_steps import MSG_UNPROVEN, Outcome

from .rig import TOTE_PRIZE

COST = 100  # the demo wheel's


def swap_todays_seed(server) -> str:
    """The store draws today with a seed whose commitment was never published (a database
    restored from a backup, or a seed chosen after the day's first spins); its commitment."""
    seed = secrets.token_bytes(32)
    commitment = hashlib.sha256(seed).hexdigest()
    with server.store.db.transaction() as conn:
        conn.execute(
            "UPDATE wheel_seeds SET seed_hex = ?, commitment = ? WHERE wheel_id = ? AND day = ?",
            (seed.hex(), commitment, "LUCKY", server.store.today().isoformat()),
        )
    return commitment


def alerts(server, kind: str) -> list[dict]:
    rows = server.store.db.connection().execute("SELECT detail FROM alerts WHERE kind = ?", (kind,))
    return [json.loads(r["detail"]) for r in rows]


@pytest.mark.parametrize("prize", [1, TOTE_PRIZE], ids=["points", "gift behind a door"])
def test_an_answer_with_another_commitment_shows_nothing_costs_nothing_and_alerts(
    server, kiosk, prize
):
    server.only_prize(prize)
    who = kiosk.member("M0004")
    wheel = kiosk.wheel()  # as synced and shown: holds today's commitment
    swapped = swap_todays_seed(server)
    assert swapped != wheel.commitment_on(server.store.today())
    seen = []
    result = kiosk.engine.spin(who, wheel, seen.append)

    txn_id = result.txn.txn_id
    assert result.outcome is Outcome.VOIDED and result.message == MSG_UNPROVEN
    assert result.ctx.prize is None and all(p.prize is None for p in seen)  # no result shown
    assert result.txn.state is TxnState.VOIDED and TxnState.HELD not in dict(result.txn.history)
    assert sum(kiosk.pulses(n) for n in range(1, 7)) == 0  # no door for an unproven gift
    # no points lost: the server voided the drawn spin
    assert server.redemptions()[txn_id] == "voided"
    assert server.balance("M0004") == 23000 and result.ctx.points_returned == COST
    reason = server.void_reason(txn_id)
    assert reason.startswith("commitment_mismatch: ") and swapped in reason
    # staff are told, and the member holds a refund voucher, no wheel receipt
    assert [a["txn_id"] for a in alerts(server, "spin_commitment_mismatch")] == [txn_id]
    (paper,) = kiosk.printer.wait_for_receipts(1)
    assert "REFUND VOUCHER" in paper.text and not paper.qr_codes
    # the spin still counts: an unproven draw is no way to a second try
    assert kiosk.client.wheel_info("LUCKY", "M0004", who.session).spins_left == 2


def test_an_unproven_answer_that_was_lost_is_voided_by_recovery_not_kept(server, kiosk):
    """The kiosk journalled the commitments it held with the spin, so recovery (nobody at
    the kiosk, the answer lost) checks the draw it reads back as the flow would have."""
    server.only_prize(1)
    wheel = kiosk.wheel()
    swap_todays_seed(server)
    real_spin = kiosk.client.spin

    def answer_lost(*args, **kwargs):
        real_spin(*args, **kwargs)
        raise Unreachable("the answer was lost on the way back")

    kiosk.client.spin = answer_lost
    result = kiosk.engine.spin(kiosk.member("M0004"), wheel)
    kiosk.client.spin = real_spin
    assert result.outcome is Outcome.VOID_PENDING and result.txn.state is TxnState.NEW
    kiosk.reopen()  # a restart, even: the held commitments are in the journal
    (settled,) = kiosk.engine.settle()
    assert (settled.before, settled.after) == (TxnState.NEW, TxnState.VOIDED)
    assert server.redemptions()[result.txn.txn_id] == "voided"
    assert server.balance("M0004") == 23000
    assert len(alerts(server, "spin_commitment_mismatch")) == 1


def test_a_spin_answer_the_kiosk_cannot_read_waits_for_recovery_and_staff_are_told(server, kiosk):
    """Garbage is not a mismatch: the kiosk cannot even tell what was drawn, so the spin waits
    at NEW (recovery asks again) and a fault event names the field."""
    server.only_prize(1)
    real_spin = kiosk.client.spin

    def garbled(*args, **kwargs):
        real_spin(*args, **kwargs)
        raise BadResponse("store server answered garbage ('commitment' is not a SHA-256)")

    kiosk.client.spin = garbled
    result = kiosk.engine.spin(kiosk.member("M0004"), kiosk.wheel())
    kiosk.client.spin = real_spin
    assert result.outcome is Outcome.VOID_PENDING and result.txn.state is TxnState.NEW
    (event,) = kiosk.outbox.pending(10)
    assert (event.kind, event.payload["what"]) == ("fault", "spin_answer_unusable")
    assert "SHA-256" in event.payload["detail"]
    (settled,) = kiosk.engine.settle()  # the answer reads well now: proven, and kept
    assert settled.after is TxnState.DONE and server.redemptions()[result.txn.txn_id] == "captured"


def test_a_proven_spins_receipt_links_to_its_revealed_seed(server, kiosk):
    server.only_prize(1)  # 50 points
    result = kiosk.engine.spin(kiosk.member("M0004"), kiosk.wheel())
    assert result.outcome is Outcome.ISSUED
    prize, txn_id = result.ctx.prize, result.txn.txn_id
    (paper,) = kiosk.printer.wait_for_receipts(1)
    (link,) = paper.qr_codes
    assert link == f"{server.url}/v1/wheels/LUCKY/seeds/{prize.day}?txn={txn_id}"
    assert requests.get(link, timeout=5).json()["error"] == "seed_not_revealed"
    server.clock.advance(days=1)
    revealed = requests.get(link, timeout=5).json()
    seed = bytes.fromhex(revealed["seed"])
    assert hashlib.sha256(seed).hexdigest() == prize.commitment == revealed["commitment"]
    (spin,) = revealed["spins"]
    assert spin["txn_id"] == txn_id
    assert recompute(seed, txn_id, spin["eligible"]) == spin["segment_idx"] == prize.segment_idx


def recompute(seed: bytes, txn_id: str, eligible: list[list[int]]) -> int:
    """The member's own recomputation of the draw (storeserver/wheel.py's documented rule)."""
    u = int.from_bytes(hmac.new(seed, txn_id.encode(), hashlib.sha256).digest()[:8], "big")
    r, running = u % sum(weight for _, weight in eligible), 0
    for idx, weight in eligible:
        running += weight
        if r < running:
            return idx
    raise AssertionError("r is below the total weight")
