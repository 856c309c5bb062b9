"""Finish or reverse every transaction a crash (or an outage) left unfinished.

Runs at start-up before the first member is served, and again now and then while the kiosk
runs (a void or capture that could not reach the server is retried here). The rules are
``kiosk.domain.transaction.recovery_action``: there is no pulse anywhere in this module, so a
transaction that crashed at DOOR_OPENING can never open its door a second time.

Nobody stands at the kiosk when this runs, so receipts and vouchers are queued for staff to
reprint, not printed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from kiosk.domain.transaction import (
    TERMINAL,
    Recovery,
    RecoveryAction,
    Transaction,
    TxnState,
    recovery_action,
)
from kiosk.domain.txn_receipts import TxnContext
from kiosk.errors import JournalError, KioskError, Rejected
from kiosk.i18n import bilingual
from kiosk.platform.logctx import txn_context
from kiosk.ports import Redemption, RedemptionState
from kiosk.services.txn_steps import SPEND_TABLE, TXN_TABLE, Outcome, TxnSteps, UnprovenSpin
from kiosk.storage.outbox import OUTBOX_TABLE

log = logging.getLogger(__name__)

S = TxnState

RESTART = bilingual("txn.restart")
RECOVERED = bilingual("txn.recovered")


@dataclass(frozen=True)
class Settled:
    """What recovery did with one transaction (for the log, doctor and tests)."""

    txn_id: str
    before: TxnState
    after: TxnState
    note: str


def settle_unfinished(steps: TxnSteps, *, skip: frozenset[str] = frozenset()) -> list[Settled]:
    """Move every unfinished transaction on as far as it can go now; never raises for one."""
    out: list[Settled] = []
    for txn_id in sorted(steps.journal.all(TXN_TABLE)):
        if txn_id in skip:
            continue
        try:
            loaded = steps.load(txn_id)
        except JournalError as exc:  # a record we cannot read is left for a technician
            log.error("txn %s: unreadable journal record left in place: %s", txn_id, exc)
            continue
        if loaded is None or loaded[0].state in TERMINAL:
            continue
        txn, ctx = loaded
        before = txn.state
        try:
            with txn_context(txn_id):
                after, note = _settle_one(steps, txn, ctx)
        except KioskError as exc:
            after, note = before, f"left for a later try: {exc}"
            log.warning("txn %s: recovery from %s deferred: %s", txn_id, before.name, exc)
        else:
            log.info("txn %s: recovered %s -> %s (%s)", txn_id, before.name, after.name, note)
        out.append(Settled(txn_id, before, after, note))
    return out


def _settle_one(steps: TxnSteps, txn: Transaction, ctx: TxnContext) -> tuple[TxnState, str]:
    """Do what the domain's rule says for ``txn``: one handler per ``Recovery`` action."""
    action = recovery_action(txn)
    return _HANDLERS[action.action](steps, txn, ctx, action)


def _nothing(
    steps: TxnSteps, txn: Transaction, ctx: TxnContext, action: RecoveryAction
) -> tuple[TxnState, str]:
    return txn.state, action.reason


def _void(
    steps: TxnSteps, txn: Transaction, ctx: TxnContext, action: RecoveryAction
) -> tuple[TxnState, str]:
    """Release the hold (idempotent by txn_id). A void already under way keeps its reason; a
    hold with no door is first asked about: its capture may have reached the server just
    before the crash. A claim voucher follows from the NEEDS_CHECK step in the history."""
    if txn.state is S.VOIDING:
        try:
            result = steps.void(txn, ctx, txn.void_reason or "void", RESTART, present=False)
        except Rejected as exc:
            if exc.code == "already_captured":  # only a bug gets here: the server charged it
                log.critical(
                    "txn %s: voiding, but the server captured it: check by hand", txn.txn_id
                )
            raise
        return result.txn.state, action.reason
    if txn.state is not S.NEW and txn.compartment is None and not txn.offline:
        r = steps.server.get_redemption(txn.txn_id)
        if r.state is RedemptionState.CAPTURED:
            return _captured(steps, txn, ctx, r)
    result = steps.void(txn, ctx, "restart_before_door", RESTART, present=False)
    return result.txn.state, action.reason


def _flag_and_void(
    steps: TxnSteps, txn: Transaction, ctx: TxnContext, action: RecoveryAction
) -> tuple[TxnState, str]:
    """The door may have been pulsed without confirmation: never pulse again. Journal
    NEEDS_CHECK (which makes the voucher a claim voucher), flag ``action.compartment`` for
    staff (``alert_staff``), then void."""
    if txn.state is S.DOOR_OPENING:
        reason = "restart_while_door_opening"
        txn = steps.step(txn, ctx, S.NEEDS_CHECK, void_reason=reason)
        if action.alert_staff:
            steps.flags.mark(action.compartment, txn, reason)
    else:  # NEEDS_CHECK: flagged already, unless the crash came between the step and the flag
        reason = txn.void_reason or "needs_check"
        number = action.compartment
        if action.alert_staff and number is not None and steps.flags.get(number) is None:
            steps.flags.mark(number, txn, reason)
    return steps.void(txn, ctx, reason, RESTART, present=False).txn.state, action.reason


def _capture(
    steps: TxnSteps, txn: Transaction, ctx: TxnContext, action: RecoveryAction
) -> tuple[TxnState, str]:
    """Capture (idempotent by txn_id) and queue the receipt; a refused capture waits for staff."""
    return _capture_and_finish(steps, txn, ctx, "try again later")


def _capture_and_finish(
    steps: TxnSteps, txn: Transaction, ctx: TxnContext, retry_note: str
) -> tuple[TxnState, str]:
    if ctx.capture_refused:
        return txn.state, f"capture refused earlier ({ctx.capture_refused}): waiting for staff"
    txn, ctx, failed = steps.capture(txn, ctx)
    if failed:
        return txn.state, f"capture {failed}: {retry_note}"
    return _finish(steps, txn, ctx)


def _queue_receipt(
    steps: TxnSteps, txn: Transaction, ctx: TxnContext, action: RecoveryAction
) -> tuple[TxnState, str]:
    return _finish(steps, txn, ctx)


def _mark_done(
    steps: TxnSteps, txn: Transaction, ctx: TxnContext, action: RecoveryAction
) -> tuple[TxnState, str]:
    return steps.step(txn, ctx, S.DONE).state, action.reason


def _settle_spin_action(
    steps: TxnSteps, txn: Transaction, ctx: TxnContext, action: RecoveryAction
) -> tuple[TxnState, str]:
    return _settle_spin(steps, txn, ctx)


Handler = Callable[[TxnSteps, Transaction, TxnContext, RecoveryAction], tuple[TxnState, str]]
# One handler per action of kiosk.domain.transaction.Recovery; none of them pulses a door.
_HANDLERS: dict[Recovery, Handler] = {
    Recovery.NOTHING: _nothing,
    Recovery.VOID: _void,
    Recovery.SETTLE_SPIN: _settle_spin_action,
    Recovery.MARK_NEEDS_CHECK_AND_VOID: _flag_and_void,
    Recovery.CAPTURE: _capture,
    Recovery.REPRINT_OR_QUEUE: _queue_receipt,
    Recovery.MARK_DONE: _mark_done,
}


def _settle_spin(steps: TxnSteps, txn: Transaction, ctx: TxnContext) -> tuple[TxnState, str]:
    """A spin at NEW (the draw may have happened) or HELD with no gift door. A drawn spin is
    final: capture what the server drew, void only what it never drew (or a gift, whose door
    never opened); docs/transactions.md, "The wheel's rule"."""
    try:
        r = steps.server.get_redemption(txn.txn_id)
    except Rejected as exc:
        if exc.status != 404:
            raise
        result = steps.void(txn, ctx, "spin_never_drawn", RESTART, present=False)
        return result.txn.state, "the server never drew it"
    if r.state in (RedemptionState.VOIDED, RedemptionState.EXPIRED):  # released by the server
        result = steps.void(txn, ctx, r.void_reason or r.state.value, RESTART, present=False)
        return result.txn.state, f"released by the server ({r.state.value})"
    if txn.state is S.NEW:
        try:
            txn, ctx = steps.spin_held(txn, ctx, r)  # Unreachable if unusable: tried later
        except UnprovenSpin as exc:  # never shown, and now never kept: voided
            result = steps.void_unproven(txn, ctx, exc, present=False)
            return result.txn.state, "its draw could not be proven: voided"
        if txn.compartment is not None:  # a gift nobody took out: its door never opened
            result = steps.void(txn, ctx, "restart_before_door", RESTART, present=False)
            return result.txn.state, "a gift drawn but never dispensed: voided"
    if r.state is RedemptionState.CAPTURED:
        return _captured(steps, txn, ctx, r)
    return _capture_and_finish(steps, txn, ctx, "the spin stays the member's; try again later")


def _captured(
    steps: TxnSteps, txn: Transaction, ctx: TxnContext, r: Redemption
) -> tuple[TxnState, str]:
    """The server captured it before the crash: journal it and queue the receipt."""
    ctx = replace(
        ctx, balance_final=r.balance, coupon_code=r.coupon_code,
        coupon_valid_until=r.raw.get("coupon_valid_until") if r.coupon_code else None,
    )  # fmt: skip
    txn = steps.step(txn, ctx, S.CAPTURED)
    return _finish(steps, txn, ctx)


def _finish(steps: TxnSteps, txn: Transaction, ctx: TxnContext) -> tuple[TxnState, str]:
    result = steps.finish(txn, ctx, Outcome.DISPENSED, RECOVERED, present=False)
    return result.txn.state, "captured; receipt queued for staff"


def forget_finished(steps: TxnSteps, *, older_than_s: float, now: float) -> int:
    """Drop finished and synced transactions (and old offline spends) from the journal;
    returns how many.

    Kept ``older_than_s`` for ``kiosk logs``, and an offline gift until the server has answered
    its upload (its outbox event has the txn_id as event id); an offline spend leaves with its
    store day.
    """
    gone = 0
    for txn_id, record in steps.journal.all(TXN_TABLE).items():
        history = record.get("history") or [[None, now]]
        if (
            record.get("state") in ("DONE", "VOIDED")
            and now - history[-1][1] > older_than_s
            and steps.journal.get(OUTBOX_TABLE, txn_id) is None
        ):
            steps.journal.delete(TXN_TABLE, txn_id)
            gone += 1
    today = steps.now().date()
    for txn_id, spend in steps.journal.all(SPEND_TABLE).items():
        if str(spend.get("day", "")) < today.isoformat():  # only today's spends count
            steps.journal.delete(SPEND_TABLE, txn_id)
    return gone
