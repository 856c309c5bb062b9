"""``forget_finished``: the journal's compaction of transactions (kiosk/services/recovery.py).

Finished (DONE, VOIDED) and synced records older than the keep time leave the journal;
unfinished ones, young ones, and an offline gift whose upload the server has not answered
stay; today's offline spends stay (they count towards today's floor limits) and earlier days'
go; what is left reads the same after a restart and a snapshot. Real flows against the store
server on loopback make the records; the engine's clock is a hand-moved one.
"""

from __future__ import annotations

import time

import pytest

from kiosk.domain.receipts import Bilingual
from kiosk.domain.transaction import TxnState
from kiosk.errors import Unreachable
from kiosk.services.recovery import forget_finished
from kiosk.services.transactions import ItemChoice
from kiosk.services.txn_steps import SPEND_TABLE, Outcome, TransactionRefused
from kiosk.sync.worker import SyncWorker

from .rig import COUPON, MUG, TOTE, KioskSide

TEA = ItemChoice("GIFT-TEA", Bilingual("精品茶叶礼盒", "Premium tea gift box"), 1500, compartment=3)
UMBRELLA = ItemChoice("GIFT-UMBRELLA", Bilingual("晴雨伞", "Umbrella"), 600, compartment=5)
HOUR, DAY = 3600.0, 86400.0


class Clock:
    """The engine's clock (journal history times, the store day), moved by hand."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(kiosk) -> Clock:
    c = Clock()
    kiosk.engine.steps.clock = c
    return c


def unplug_capture(kiosk: KioskSide):
    real = kiosk.client.capture

    def unplugged(txn_id):
        raise Unreachable("store server at 127.0.0.1: connection refused (cable pulled)")

    kiosk.client.capture = unplugged
    return real


def forget(kiosk: KioskSide, clock: Clock, after_s: float) -> int:
    return forget_finished(kiosk.engine.steps, older_than_s=HOUR, now=clock.t + after_s)


def make_records(kiosk: KioskSide) -> dict[str, str]:
    """One transaction of each ending; returns name -> txn_id."""
    ids = {}
    r = kiosk.engine.redeem(kiosk.member("M0002"), MUG)
    assert r.outcome is Outcome.DISPENSED and r.txn.state is TxnState.DONE
    ids["done"] = r.txn.txn_id
    r = kiosk.engine.redeem(kiosk.member("M0005"), MUG)  # 80 points: the server refuses
    assert r.outcome is Outcome.REFUSED and r.txn.state is TxnState.VOIDED
    ids["refused"] = r.txn.txn_id
    kiosk.sim.jam(3)
    r = kiosk.engine.redeem(kiosk.member("M0003"), TEA)
    assert r.outcome is Outcome.NEEDS_CHECK and r.txn.state is TxnState.VOIDED
    ids["jammed"] = r.txn.txn_id
    real = unplug_capture(kiosk)
    r = kiosk.engine.redeem(kiosk.member("M0002"), UMBRELLA)  # out of the door, not charged yet
    assert r.outcome is Outcome.DISPENSED_UNCONFIRMED and r.txn.state is TxnState.DISPENSED
    ids["dispensed"] = r.txn.txn_id
    r = kiosk.engine.redeem(kiosk.member("M0003"), COUPON)  # no door: left HELD for recovery to ask
    assert r.outcome is Outcome.VOID_PENDING and r.txn.state is TxnState.HELD
    ids["held"] = r.txn.txn_id
    kiosk.client.capture = real
    return ids


def txn_ids(kiosk: KioskSide) -> set[str]:
    return set(kiosk.journal.all("txn"))


def test_finished_records_leave_after_the_keep_time_and_unfinished_ones_stay(kiosk, clock):
    ids = make_records(kiosk)
    assert txn_ids(kiosk) == set(ids.values())
    receipts_before = len(kiosk.receipts)
    assert forget(kiosk, clock, after_s=HOUR - 60) == 0  # still kept for `kiosk logs`
    assert txn_ids(kiosk) == set(ids.values())

    assert forget(kiosk, clock, after_s=HOUR + 60) == 3
    assert txn_ids(kiosk) == {ids["dispensed"], ids["held"]}
    # what belongs to staff stays: the jammed compartment's flag, the receipts queue
    assert 3 in kiosk.flags.flagged() and len(kiosk.receipts) == receipts_before
    # the unfinished ones are still recovered, and leave once finished and old enough
    settled = {s.txn_id: s.after for s in kiosk.engine.settle()}
    assert settled == {ids["dispensed"]: TxnState.DONE, ids["held"]: TxnState.VOIDED}
    assert forget(kiosk, clock, after_s=60) == 0
    assert forget(kiosk, clock, after_s=HOUR + 60) == 2
    assert txn_ids(kiosk) == set()


def test_an_offline_gift_stays_until_the_server_has_its_upload(server, kiosk, clock):
    kiosk.link.cut()
    r = kiosk.engine.redeem(kiosk.member("M0001"), TOTE)
    assert r.outcome is Outcome.DISPENSED_UNCONFIRMED and r.txn.state is TxnState.DONE
    kiosk.link.up = True
    assert forget(kiosk, clock, after_s=30 * DAY) == 0  # its upload is still in the outbox
    assert txn_ids(kiosk) == {r.txn.txn_id} and len(kiosk.outbox) == 1

    SyncWorker(kiosk.client, kiosk.outbox).run_once()
    assert len(kiosk.outbox) == 0 and server.redemptions()[r.txn.txn_id] == "captured"
    assert forget(kiosk, clock, after_s=HOUR + 60) == 1
    assert txn_ids(kiosk) == set()


def test_todays_offline_spends_stay_and_earlier_days_go(kiosk, clock):
    kiosk.link.cut()
    kiosk.engine.redeem(kiosk.member("M0001"), TOTE)  # 300 of the member's 500 a day
    SyncWorker(kiosk.client, kiosk.outbox).run_once()  # uploaded, so the record may go
    assert forget(kiosk, clock, after_s=HOUR + 60) == 1
    assert len(kiosk.journal.all(SPEND_TABLE)) == 1  # today's spend still counts
    kiosk.sim.close_door(2)
    with pytest.raises(TransactionRefused) as refused:
        kiosk.engine.redeem(kiosk.member("M0001"), TOTE)
    assert refused.value.code == "member_limit"

    clock.t += DAY  # the next store day
    assert forget(kiosk, clock, after_s=0) == 0
    assert kiosk.journal.all(SPEND_TABLE) == {}


def test_the_journal_reads_the_same_after_forgetting_reopening_and_compacting(kiosk, clock):
    ids = make_records(kiosk)
    assert forget(kiosk, clock, after_s=HOUR + 60) == 3
    kept = {t: kiosk.journal.get("txn", t) for t in txn_ids(kiosk)}
    others = {table: kiosk.journal.all(table) for table in kiosk.journal.tables()}

    kiosk.reopen()  # a restart on the same files: replays the log with its deletes
    assert {t: kiosk.journal.get("txn", t) for t in txn_ids(kiosk)} == kept
    assert {table: kiosk.journal.all(table) for table in kiosk.journal.tables()} == others
    kiosk.journal.compact()
    kiosk.reopen()  # from the snapshot alone
    assert {table: kiosk.journal.all(table) for table in kiosk.journal.tables()} == others
    assert set(kept) == {ids["dispensed"], ids["held"]}
    # and the engine on the reopened journal finishes what was left
    settled = {s.txn_id: s.after for s in kiosk.engine.settle()}
    assert settled == {ids["dispensed"]: TxnState.DONE, ids["held"]: TxnState.VOIDED}
