"""A restock count's stamp: the last hold the kiosk had seen and the holds still to void."""

from __future__ import annotations

from kiosk.domain.count_stamp import MAX_OPEN_HOLDS, CountStamp, count_stamp
from kiosk.domain.transaction import (
    TxnKind,
    TxnState,
    advance,
    from_record,
    new_transaction,
    to_record,
)

S = TxnState


def txn(txn_id, *states, compartment=2, kind=TxnKind.REDEEM, seq=None, offline=False, at=1.0):
    sku = None if kind is TxnKind.SPIN else "TOTE"
    compartment = None if kind is TxnKind.SPIN else compartment
    t = new_transaction(txn_id, kind, "M1", points=300, at=at, sku=sku,
                        compartment=compartment, offline=offline)  # fmt: skip
    for state in states:
        facts = {"hold_id": txn_id, "hold_seq": seq} if state is S.HELD else {}
        if state is S.VOIDING:
            facts = {"void_reason": "door_jammed"}
        t = advance(t, state, at=at, **facts)
    return t


DONE = (S.HELD, S.DOOR_OPENING, S.DISPENSED, S.CAPTURED, S.PRINTED, S.DONE)


def test_the_latest_hold_seen_from_answers_or_the_catalog():
    txns = [txn("a", *DONE, seq=7), txn("b", S.HELD, S.VOIDING, S.VOIDED, seq=9)]
    assert count_stamp(txns, 4, 2) == CountStamp(9, ())
    assert count_stamp(txns, 12, 2).after_hold_seq == 12
    assert count_stamp([], 0, 2) == CountStamp(0, ())


def test_holds_still_to_void_are_open_and_dispensed_ones_are_not():
    txns = [
        txn("new", at=5.0),  # the hold call's answer never came
        txn("held", S.HELD, seq=3, at=4.0),
        txn("voiding", S.HELD, S.VOIDING, seq=2, at=3.0),
        txn("jammed", S.HELD, S.DOOR_OPENING, S.NEEDS_CHECK, seq=1, at=2.0),
        txn("out", S.HELD, S.DOOR_OPENING, S.DISPENSED, seq=4),  # capture pending: gift out
        txn("voided", S.HELD, S.VOIDING, S.VOIDED, seq=5),
        txn("elsewhere", S.HELD, compartment=3, seq=6),
        txn("offline", S.HELD, offline=True),
        txn("spin", kind=TxnKind.SPIN),  # the prize's compartment is not known yet
    ]
    stamp = count_stamp(txns, 0, 2)
    assert stamp.open_holds == ("new", "held", "voiding", "jammed", "spin")
    assert stamp.payload() == {"after_hold_seq": 6, "open_holds": list(stamp.open_holds)}


def test_open_holds_are_bounded_newest_first():
    txns = [txn(f"t{i}", at=float(i)) for i in range(MAX_OPEN_HOLDS + 5)]
    stamp = count_stamp(txns, 0, 2)
    assert len(stamp.open_holds) == MAX_OPEN_HOLDS and stamp.open_holds[0] == "t24"


def test_hold_seq_survives_the_journal_record():
    t = txn("a", S.HELD, seq=41)
    assert from_record(to_record(t)).hold_seq == 41
    old = to_record(t)
    del old["hold_seq"]  # a record written before hold_seq existed
    assert from_record(old).hold_seq is None


def test_a_bad_hold_seq_in_the_journal_is_a_malformed_record():
    import pytest

    from kiosk.domain.transaction import MalformedTransactionRecord

    for bad in (-1, "7", 1.5, True):
        record = {**to_record(txn("a", S.HELD, seq=1)), "hold_seq": bad}
        with pytest.raises(MalformedTransactionRecord, match="hold_seq"):
            from_record(record)
