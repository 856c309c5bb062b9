"""The kiosk's side of the member binding (issue 11): holds and spins carry the session of the
member's resolved code, an offline spend carries the code, and without them the member is asked
to scan again; against the real store server on loopback."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kiosk.domain.transaction import TxnKind, TxnState, advance, new_transaction, to_record
from kiosk.domain.txn_receipts import TxnContext
from kiosk.services.transactions import Member
from kiosk.services.txn_messages import MSG_RESCAN
from kiosk.services.txn_steps import TXN_TABLE, Outcome, TransactionRefused
from kiosk.sync.worker import SyncWorker

from .rig import MUG, TOTE


def test_a_hold_carries_the_members_session(server, kiosk):
    who = kiosk.member("M0002")
    assert who.session and who.code
    result = kiosk.engine.redeem(who, MUG)
    assert result.outcome is Outcome.DISPENSED and server.balance("M0002") == 1900


def test_a_member_identified_offline_is_asked_to_scan_again_once_online(server, kiosk):
    offline_view = Member("M0002", "M0**2", 2700, code=server.code("M0002"))  # no session
    for attempt in (
        lambda: kiosk.engine.redeem(offline_view, MUG),
        lambda: kiosk.engine.spin(offline_view, kiosk.wheel()),
    ):
        with pytest.raises(TransactionRefused) as refused:
            attempt()
        assert refused.value.code == "member_session_required"
        assert refused.value.message == MSG_RESCAN
    assert kiosk.journal.all(TXN_TABLE) == {}  # nothing journalled, nothing asked
    assert server.redemptions() == {} and kiosk.pulses(1) == 0


def test_another_members_session_is_refused_by_the_server_and_nothing_held(server, kiosk):
    mine, theirs = kiosk.member("M0005"), kiosk.member("M0004")
    stolen = replace(theirs, session=mine.session)
    result = kiosk.engine.redeem(stolen, MUG)
    assert result.outcome is Outcome.REFUSED and result.message == MSG_RESCAN
    assert result.txn.state is TxnState.VOIDED
    assert result.txn.void_reason == "refused:member_session_invalid"
    spun = kiosk.engine.spin(stolen, kiosk.wheel())
    assert spun.outcome is Outcome.REFUSED and spun.message == MSG_RESCAN
    assert server.balance("M0004") == 23000 and server.stock(1) == 3
    assert kiosk.pulses(1) == 0


def test_an_offline_spend_uploads_the_code_the_kiosk_verified(server, kiosk):
    who = kiosk.member("M0001")
    kiosk.link.cut()
    result = kiosk.engine.redeem(who, TOTE)
    assert result.outcome is Outcome.DISPENSED_UNCONFIRMED
    assert kiosk.engine.steps.load(result.txn.txn_id)[0].member_code == who.code  # journalled
    (event,) = kiosk.outbox.pending(10)
    assert event.payload["member_code"] == who.code
    (answer,) = kiosk.client.send_events([event])
    assert answer.status == "applied" and server.balance("M0001") == 450


def test_offline_without_the_code_is_refused_before_the_door(server, kiosk):
    kiosk.link.cut()
    with pytest.raises(TransactionRefused) as refused:
        kiosk.engine.redeem(Member("M0001", "M0**1", 750), TOTE)
    assert refused.value.code == "member_code_required"
    assert kiosk.pulses(2) == 0 and len(kiosk.outbox) == 0


def test_a_journal_record_from_before_the_code_was_kept_becomes_a_conflict(server, kiosk):
    """A kiosk upgraded mid-outage: its record of a gift dispensed offline has no member_code.
    Recovery captures it (the outbox event, without a code); the server refuses it with a
    clear reason and charges nothing; it reaches staff through the sync alerts."""
    txn = new_transaction(
        "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b",
        TxnKind.REDEEM,
        "M0001",
        points=300,
        at=1.0,
        sku="GIFT-TOTE",
        compartment=2,
        offline=True,
    )
    for state in (TxnState.HELD, TxnState.DOOR_OPENING, TxnState.DISPENSED):
        txn = advance(txn, state, at=2.0)
    record = {k: v for k, v in to_record(txn).items() if k != "member_code"}  # the old shape
    kiosk.journal.put(TXN_TABLE, txn.txn_id, {**record, "ctx": TxnContext("M0**1").to_record()})
    kiosk.engine.settle()
    (event,) = kiosk.outbox.pending(10)
    assert "member_code" not in event.payload
    SyncWorker(kiosk.client, kiosk.outbox).run_once()
    (alert,) = kiosk.outbox.alerts()
    assert alert.status == "conflict" and alert.reason == "member_code_required"
    assert "member code" in alert.message
    assert server.balance("M0001") == 750 and server.stock(2) == 5  # staff count it


def test_the_servers_offline_caps_replace_the_configs(server, kiosk):
    """The store lowers its per-member cap: the catalog brings it, and the kiosk refuses
    offline what the server would refuse on upload."""
    from kiosk.domain.catalog import parse_catalog

    server.store.settings.offline_member_daily_points = 200
    kiosk.engine.use_server_limits(parse_catalog(kiosk.client.catalog()).offline)
    assert kiosk.engine.offline_limits.per_member_daily_points == 200
    who = kiosk.member("M0001")
    kiosk.link.cut()
    with pytest.raises(TransactionRefused) as refused:
        kiosk.engine.redeem(who, TOTE)  # 300 of the store's 200 a day
    assert refused.value.code == "member_limit" and kiosk.pulses(2) == 0
    kiosk.engine.use_server_limits(None)  # a catalog without caps: the config's again
    assert kiosk.engine.offline_limits == kiosk.engine.config_limits
    assert kiosk.engine.redeem(who, TOTE).outcome is Outcome.DISPENSED_UNCONFIRMED
