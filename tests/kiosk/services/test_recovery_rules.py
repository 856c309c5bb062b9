"""Start-up recovery does what the domain's rule says (kiosk/services/recovery.py).

``kiosk.domain.transaction.recovery_action`` is the one place that decides what happens to a
transaction a crash left behind; recovery only carries the decision out. Each test hands
recovery a changed rule for one transaction and checks that recovery follows it, against the
real store server on loopback: a recovery that decided from the state on its own would not.
"""

from __future__ import annotations

from kiosk.domain.transaction import (
    Recovery,
    RecoveryAction,
    Transaction,
    TxnKind,
    TxnState,
    new_transaction,
)
from kiosk.domain.txn_receipts import TxnContext
from kiosk.errors import Unreachable
from kiosk.services import recovery
from kiosk.services.txn_steps import Outcome

from .rig import COUPON


def changed_rule(monkeypatch, txn_id: str, action: Recovery) -> None:
    """The domain's rule, but ``action`` for ``txn_id``."""
    real = recovery.recovery_action

    def rule(txn: Transaction) -> RecoveryAction:
        if txn.txn_id == txn_id:
            return RecoveryAction(action, f"{txn_id}: changed rule: {action.value}")
        return real(txn)

    monkeypatch.setattr(recovery, "recovery_action", rule)


def test_a_coupon_hold_the_rule_says_to_capture_is_captured_not_voided(server, kiosk, monkeypatch):
    real = kiosk.client.capture

    def unplugged(txn_id):
        raise Unreachable("store server at 127.0.0.1: connection refused (cable pulled)")

    kiosk.client.capture = unplugged
    held = kiosk.engine.redeem(kiosk.member("M0003"), COUPON)
    kiosk.client.capture = real
    assert held.outcome is Outcome.VOID_PENDING and held.txn.state is TxnState.HELD
    txn_id = held.txn.txn_id
    assert server.redemptions()[txn_id] == "held"  # today's rule: ask, then void
    changed_rule(monkeypatch, txn_id, Recovery.CAPTURE)

    (settled,) = kiosk.engine.settle()

    assert (settled.txn_id, settled.before, settled.after) == (
        txn_id,
        TxnState.HELD,
        TxnState.DONE,
    )
    assert server.redemptions()[txn_id] == "captured"
    assert kiosk.receipts.has(f"{txn_id}:coupon")  # the coupon queued: nobody was there


def test_a_hold_the_rule_says_to_leave_stays_as_it_is(server, kiosk, monkeypatch):
    crashed = new_transaction(
        "crashed-1", TxnKind.REDEEM, "M0002", points=800, at=1.0, sku="GIFT-MUG", compartment=1
    )
    kiosk.engine.steps.save(crashed, TxnContext("M0**2"))  # a crash before the hold call
    changed_rule(monkeypatch, "crashed-1", Recovery.NOTHING)

    (settled,) = kiosk.engine.settle()

    assert (settled.before, settled.after) == (TxnState.NEW, TxnState.NEW)
    assert kiosk.engine.steps.load("crashed-1")[0].state is TxnState.NEW  # today's rule voids it
    assert kiosk.pulses(1) == 0


def test_every_action_the_domain_can_decide_has_its_one_handler():
    assert set(recovery._HANDLERS) == set(Recovery)
