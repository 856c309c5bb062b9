"""SIGKILL at every journal write of a flow, during recovery and at random moments, then
recovery and the invariants (txn_crash.py).

CI runs every write of eight flows (a gift, a paid, a cancelled and a server-expired points +
cash purchase, a wheel spin that wins points and one that wins a gift, an offline redemption and its upload, a restock
counted offline with a tote taken online before the count's upload), a few kills of the
recovery itself, random kills within every flow, and checks that the campaign sees a broken
engine and counts sent without their stamp; the whole campaign (every flow, every recovery write, 1,000 random points) is
``bench/txn_crash.py``, and ``pytest -m slow`` runs it with 200 random points.
"""

from __future__ import annotations

import random

import pytest

from .txn_crash import FLOWS, Campaign, KillPoint, run_campaign

CI_FLOWS = (
    "redeem", "cash", "cash_cancel", "cash_expired", "spin_points", "spin_gift", "offline",
    "restock_reconnect",
)  # fmt: skip
# NEW, HELD, [VOIDING, VOIDED | DOOR_OPENING, DISPENSED, CAPTURED, PRINTED, DONE], receipt put+del
MIN_WRITES = {
    "redeem": 9,
    "cash": 10,
    "cash_cancel": 6,
    "cash_expired": 6,
    "spin_points": 7,  # NEW, HELD, CAPTURED, receipt put+del, PRINTED, DONE
    "spin_gift": 9,
    "offline": 12,
    "restock_reconnect": 18,  # restock: session, door, count, outbox, slip; then the tote
}


def test_kill_before_and_after_every_journal_write_and_in_recovery(tmp_path):
    recovery = (
        ("redeem", "after", "put txn DOOR_OPENING"),
        ("cash", "after", "put txn PAID"),
        ("offline", "after", "put txn DISPENSED"),
        ("restock_reconnect", "after", "put restock_counts"),
    )
    result = run_campaign(
        tmp_path, CI_FLOWS, recovery_crashes=recovery, recovery_writes=2, reference_runs=1
    )
    assert result.violations == []
    for flow, writes in MIN_WRITES.items():
        assert len(result.writes_per_flow[flow]) >= writes, result.writes_per_flow[flow]
    assert "put txn DOOR_OPENING" in result.writes_per_flow["spin_gift"]  # a door, every time
    every = sum(2 * len(w) for w in result.writes_per_flow.values())
    assert result.kill_points["every write"] == result.killed["every write"] == every
    assert result.kill_points["recovery"] == 16  # 4 crashes x before/after x 2 recovery writes
    assert result.recovery_killed == 16  # each recovery really died at its write
    assert result.cabinet_counts > 0 and result.cabinet_gifts > 0  # the stock invariant ran
    assert result.missed == []
    assert result.total_violated == 0


def test_random_kills_land_within_every_flow(tmp_path):
    result = run_campaign(
        tmp_path, FLOWS, random_kills=12, rng=random.Random(11), every_write=False,
        recovery_crashes=(), reference_runs=2,
    )  # fmt: skip
    assert result.violations == []
    assert result.kill_points["random"] == result.killed["random"] == 12
    assert result.random_mid_flow >= 10  # drawn within the measured duration: mid-flow


@pytest.mark.parametrize(
    ("bug", "point"),
    [
        ("no_door_journal", KillPoint("redeem", "before", 3)),  # killed right at the pulse
        ("no_upload", KillPoint("offline", "none")),
        ("unstamped_counts", KillPoint("restock_reconnect", "none")),  # the stock invariant
        ("void_drawn_spins", KillPoint("spin_points", "none")),  # a drawn spin is final
    ],
)
def test_the_campaign_sees_a_broken_engine(tmp_path, bug, point):
    campaign = Campaign(tmp_path, inject=bug)
    try:
        assert campaign.run(point).violations != []
    finally:
        campaign.close()


@pytest.mark.slow
def test_full_campaign_every_flow_and_random_points(tmp_path):
    result = run_campaign(tmp_path, FLOWS, random_kills=200, rng=random.Random(5))
    assert result.violations == []
    assert result.missed == []
