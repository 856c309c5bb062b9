"""The transaction engine: redeem, buy with points + cash, spin — exactly once.

Flows follow the state machine in ``kiosk.domain.transaction`` and ARCHITECTURE.md: the
journal record is durable before every effect, every server call carries the txn_id as its
idempotency key, a door is opened only while points are held, the hold is captured only
once the door sensor saw the door open, and every failure before that voids the hold and
hands the member a voucher. One transaction runs at a time: a second tap while one runs is
refused (``TransactionRefused`` code ``busy``), never queued.

Calls block (server round trips, a door wait, a payment of minutes): the UI runs them on a
worker thread and shows ``Progress`` updates, which arrive on that thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

from kiosk.domain.offline import OfflineLimits, OfflineSpend, check_offline_redemption
from kiosk.domain.receipts import Bilingual
from kiosk.domain.transaction import Transaction, TxnKind, new_transaction
from kiosk.domain.txn_receipts import StoreInfo, TxnContext
from kiosk.domain.wheel import Wheel
from kiosk.errors import BadResponse, LockerError, Rejected, Unreachable
from kiosk.platform.logctx import txn_scope
from kiosk.ports import (
    AlreadyOpen,
    DoorJammed,
    Locker,
    Opened,
    Redemption,
    StoreServer,
)
from kiosk.services.compartment_flags import CompartmentFlags
from kiosk.services.kiosk_lock import RECOVERY, RESTOCK, TRANSACTION, KioskLock
from kiosk.services.payment_wait import PaymentWait
from kiosk.services.receipt_queue import ReceiptQueue
from kiosk.services.recovery import Settled, settle_unfinished
from kiosk.services.txn_messages import (
    MSG_CHECK,
    MSG_ISSUE_UNCONFIRMED,
    MSG_ISSUED,
    MSG_JAMMED,
    MSG_SPIN_UNSETTLED,
    MSG_TAKE_GIFT,
    MSG_UNCONFIRMED,
    refusal_message,
)
from kiosk.services.txn_messages import RESCAN_CODES as RESCAN_CODES  # session.py reads it here
from kiosk.services.txn_steps import (
    MSG_NETWORK,
    SPEND_TABLE,
    EventSink,
    Outcome,
    ProgressFn,
    S,
    TransactionRefused,
    TxnResult,
    TxnSteps,
    UnprovenSpin,
    _ignore,
)
from kiosk.storage.journal import Journal

log = logging.getLogger(__name__)


class Connectivity(Protocol):
    """Whether the store server answers (the sync worker knows) and since when it does not."""

    def online(self) -> bool: ...

    def offline_since(self) -> dt.datetime | None: ...


@dataclass(frozen=True)
class Member:
    """The member at the kiosk, as identified (balance as last seen, for offline checks).

    ``session``: the member session the server opened when it resolved the member's code;
    online holds and spins carry it (None: identified offline, the member scans again).
    ``code``: the signed code scanned, uploaded with an offline redemption."""

    member_id: str
    masked_name: str
    balance: int
    session: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class ItemChoice:
    """A catalog item the member chose; ``compartment`` None for a printed coupon."""

    sku: str
    name: Bilingual
    points: int
    cash_cents: int = 0
    compartment: int | None = None
    coupon_value_cents: int = 0


class TransactionEngine:
    """Redeem, buy and spin; see the module docstring. Start-up recovery is ``recovery``.

    Holds its journalled steps (``steps``, shared with recovery); the kiosk-wide ``lock`` and
    the compartments' needs-check ``flags`` are injected: restock shares both."""

    def __init__(
        self, *, journal: Journal, server: StoreServer, locker: Locker, receipts: ReceiptQueue,
        outbox: EventSink, store: StoreInfo, lock: KioskLock, flags: CompartmentFlags,
        connectivity: Connectivity, offline_limits: OfflineLimits,
        clock: Callable[[], float] = time.time, payment_timeout_s: float = 240.0,
        poll_interval_s: float = 1.0, new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        recovery_wait_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.steps = TxnSteps(
            journal=journal, server=server, locker=locker, receipts=receipts, outbox=outbox,
            flags=flags, store=store, clock=clock,
        )  # fmt: skip
        self.lock = lock  # the kiosk-wide one: restock holds it for a whole session
        self.flags = flags
        self.connectivity = connectivity
        self.config_limits = offline_limits  # [offline] of the kiosk's config
        self.offline_limits = offline_limits  # the server's, once a catalog brought them
        self.payment = PaymentWait(
            server, clock, timeout_s=payment_timeout_s, poll_interval_s=poll_interval_s
        )
        self.new_id = new_id
        self.recovery_wait_s = recovery_wait_s

    def use_server_limits(self, limits: OfflineLimits | None) -> None:
        """The store server's offline caps (from the catalog) replace the config's, so what
        the kiosk allows offline is what the server accepts on upload; None keeps the config's."""
        chosen = limits or self.config_limits
        if chosen != self.offline_limits:
            log.info("offline limits now %s (%s)", chosen, "server" if limits else "config")
        self.offline_limits = chosen

    # ---- public flows -------------------------------------------------------------------------
    def redeem(self, member: Member, item: ItemChoice, progress: ProgressFn = _ignore) -> TxnResult:
        """A gift or coupon for points, or (``item.cash_cents``) for points plus cash."""
        with self._exclusive():
            self._check_compartment(item.compartment)
            kind = TxnKind.POINTS_CASH if item.cash_cents else TxnKind.REDEEM
            if not self.connectivity.online():
                return self._redeem_offline(member, item, kind, progress)
            _require_session(member)
            txn = new_transaction(
                self.new_id(), kind, member.member_id, points=item.points, at=self.steps.clock(),
                cash_cents=item.cash_cents, sku=item.sku, compartment=item.compartment,
            )  # fmt: skip
            ctx = TxnContext(
                member.masked_name, item.name.zh, item.name.en, item.coupon_value_cents
            )
            self.steps.save(txn, ctx)  # NEW, before the hold call
            try:
                r = self.steps.server.create_redemption(
                    txn.txn_id, member.member_id, item.sku, item.points,
                    compartment=item.compartment, cash_cents=item.cash_cents,
                    member_session=member.session,
                )  # fmt: skip
            except Rejected as exc:
                return self._refused(txn, ctx, exc)
            except Unreachable:
                return self.steps.void(txn, ctx, "hold_unreachable", MSG_NETWORK, present=True)
            ctx = replace(ctx, balance_held=r.balance, **_payment(r))
            txn = self.steps.step(txn, ctx, S.HELD, progress, hold_id=r.txn_id, hold_seq=r.hold_seq)
            if kind is TxnKind.POINTS_CASH:
                paid, why, message = self.payment.wait(txn, ctx, progress)
                if not paid:
                    return self.steps.void(txn, ctx, why, message, present=True, progress=progress)
                txn = self.steps.step(txn, ctx, S.PAID, progress, payment_ref=ctx.payment_id)
            return self._dispense(txn, ctx, progress)

    def spin(self, member: Member, wheel: Wheel, progress: ProgressFn = _ignore) -> TxnResult:
        """One spin of ``wheel`` (as synced and shown: its cost and seed commitments); a gift
        prize dispenses like a redemption, a coupon prints."""
        with self._exclusive():
            if not self.connectivity.online():
                raise TransactionRefused("txn.offline", "offline")
            _require_session(member)
            cost = wheel.cost_points
            txn = new_transaction(
                self.new_id(), TxnKind.SPIN, member.member_id, points=cost, at=self.steps.clock()
            )
            # the commitments held before the spin: its answer must carry the same
            ctx = TxnContext(
                member.masked_name, commitments=dict(wheel.commitments), seeds_url=wheel.seeds_url
            )
            self.steps.save(txn, ctx)
            try:
                r = self.steps.server.spin(
                    txn.txn_id, member.member_id, wheel.id, cost_points=cost,
                    member_session=member.session,
                )  # fmt: skip
            except Rejected as exc:  # nothing drawn (another cost is refused before the draw)
                return self._refused(txn, ctx, exc)
            except BadResponse as exc:  # an answer it cannot read (a prize): staff are told
                return self._spin_unsettled(txn, ctx, "spin_answer_unusable", exc)
            except Unreachable:  # it may have been drawn, and a drawn spin is never voided
                return self._spin_unsettled(txn, ctx, "spin_unreachable", None)
            try:
                txn, ctx = self.steps.spin_held(txn, ctx, r, progress)
            except UnprovenSpin as exc:  # no result shown: voided, the points come back
                return self.steps.void_unproven(txn, ctx, exc, present=True, progress=progress)
            except Unreachable as exc:
                return self._spin_unsettled(txn, ctx, "spin_answer_unusable", exc)
            if txn.compartment is not None and self.flags.get(txn.compartment):
                # the gift's door waits for staff: the one kind of spin that is voided
                return self.steps.void(txn, ctx, "compartment_needs_check", MSG_CHECK, present=True)
            return self._dispense(txn, ctx, progress)

    def _spin_unsettled(
        self, txn: Transaction, ctx: TxnContext, what: str, exc: Exception | None
    ) -> TxnResult:
        """The member never saw the draw, but the server may have made it: the spin stays
        NEW and recovery asks the server (a drawn spin is captured: the member keeps it)."""
        if exc is not None:
            log.error("txn %s: %s", txn.txn_id, exc)
            self.steps.outbox.add(
                "fault",
                {"txn_id": txn.txn_id, "what": what, "detail": str(exc)[:300]},
                event_id=f"{txn.txn_id}:{what}",
            )
        else:
            log.warning("txn %s: %s: recovery asks the server", txn.txn_id, what)
        return TxnResult(txn, ctx, Outcome.VOID_PENDING, MSG_SPIN_UNSETTLED)

    def settle(self) -> list[Settled]:
        """Recover or retry unfinished transactions (start-up, then periodically).

        Skipped while a transaction runs or staff restock: the kiosk is theirs.
        """
        if not self.lock.try_hold(RECOVERY):
            return []
        try:
            return settle_unfinished(self.steps)
        finally:
            self.lock.release()

    def cancel_payment(self) -> None:
        """The member tapped cancel on the payment screen (any thread)."""
        self.payment.cancel()

    def transactions(self) -> list[Transaction]:
        """Every transaction in the journal (the local stock view and restock counts read it)."""
        return self.steps.transactions()

    # ---- steps --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self.lock.try_hold(TRANSACTION):
            if self.lock.holder == RESTOCK:
                raise TransactionRefused("txn.restocking", "restocking")
            # Recovery after a sync cycle (a void or capture retried, each call bounded by the
            # client's timeouts) is not a reason to turn a member away: wait for it a little.
            waits = self.lock.holder == RECOVERY
            if not (waits and self.lock.wait_hold(TRANSACTION, self.recovery_wait_s)):
                raise TransactionRefused("txn.busy", "busy")
        self.payment.reset()
        try:
            with txn_scope():  # every log line of the flow carries TXN=<id> once it has one
                yield
        finally:
            self.lock.release()

    def _check_compartment(self, number: int | None) -> None:
        if number is not None and self.flags.get(number):
            raise TransactionRefused("txn.needs_check", "compartment_needs_check")

    def _refused(self, txn: Transaction, ctx: TxnContext, exc: Rejected) -> TxnResult:
        # A refusal is the server's answer for this txn_id: no hold exists, and no other
        # request with this id is sent again, so there is nothing to release.
        txn = self.steps.step(txn, ctx, S.VOIDING, void_reason=f"refused:{exc.code}")
        txn = self.steps.step(txn, ctx, S.VOIDED)
        log.warning("txn %s refused by the store server: %s", txn.txn_id, exc)
        return TxnResult(txn, ctx, Outcome.REFUSED, refusal_message(exc.code))

    def _dispense(self, txn: Transaction, ctx: TxnContext, progress: ProgressFn) -> TxnResult:
        if txn.compartment is None:
            txn, ctx, failed = self.steps.capture(txn, ctx, progress)
            if failed == "refused" and txn.kind is TxnKind.SPIN:  # drawn: staff settle it
                return TxnResult(txn, ctx, Outcome.VOID_PENDING, MSG_ISSUE_UNCONFIRMED)
            if failed == "refused":  # nothing was handed out: release the hold
                return self.steps.void(txn, ctx, "capture_refused", MSG_NETWORK, present=True)
            if failed:  # HELD stays: recovery asks the server what happened, and the
                # capture may have reached it: neither "issued" nor "returned" is known yet
                return TxnResult(txn, ctx, Outcome.VOID_PENDING, MSG_ISSUE_UNCONFIRMED)
            return self.steps.finish(
                txn, ctx, Outcome.ISSUED, MSG_ISSUED, present=True, progress=progress
            )
        txn = self.steps.step(txn, ctx, S.DOOR_OPENING, progress)  # durable BEFORE the pulse
        try:
            opened = self.steps.locker.open(txn.compartment)
        except LockerError as exc:
            opened = exc
        if not isinstance(opened, Opened):
            return self._door_failed(txn, ctx, opened, progress)
        txn = self.steps.step(txn, ctx, S.DISPENSED, progress)
        txn, ctx, failed = self.steps.capture(txn, ctx, progress)
        if failed:
            return TxnResult(txn, ctx, Outcome.DISPENSED_UNCONFIRMED, MSG_UNCONFIRMED)
        outcome = Outcome.DISPENSED_UNCONFIRMED if txn.offline else Outcome.DISPENSED
        message = MSG_UNCONFIRMED if txn.offline else MSG_TAKE_GIFT
        return self.steps.finish(txn, ctx, outcome, message, present=True, progress=progress)

    def _door_failed(
        self, txn: Transaction, ctx: TxnContext, what: object, progress: ProgressFn
    ) -> TxnResult:
        if isinstance(what, DoorJammed):
            reason = f"door_jammed: not open after {what.waited_s:.1f} s"
        elif isinstance(what, AlreadyOpen):
            reason = "door_already_open: the door read open before the pulse"
        else:
            reason = f"locker_error: {what}"
        txn = self.steps.step(txn, ctx, S.NEEDS_CHECK, progress, void_reason=reason)
        self.flags.mark(txn.compartment, txn, reason)
        return self.steps.void(txn, ctx, reason, MSG_JAMMED, present=True, progress=progress)

    def _redeem_offline(
        self, member: Member, item: ItemChoice, kind: TxnKind, progress: ProgressFn
    ) -> TxnResult:
        if item.compartment is None and kind is TxnKind.REDEEM:
            raise TransactionRefused("txn.offline", "offline_coupon")
        if member.balance < item.points:
            raise TransactionRefused("txn.offline_balance", "offline_balance")
        if member.code is None:  # the server charges an offline spend only with the code
            raise TransactionRefused("txn.rescan", "member_code_required")
        since = self.connectivity.offline_since() or self.steps.now()
        decision = check_offline_redemption(
            self.offline_limits, self._offline_spends(), member.member_id, item.points, kind,
            since, self.steps.now(), self.steps.store.tz,
        )  # fmt: skip
        if not decision.allowed:
            text = decision.message
            raise TransactionRefused(text.key, decision.reason.value, **text.fields)
        txn = new_transaction(
            self.new_id(), kind, member.member_id, points=item.points, at=self.steps.clock(),
            sku=item.sku, compartment=item.compartment, offline=True, member_code=member.code,
        )  # fmt: skip
        spend = {"member_id": member.member_id, "points": item.points, "day": str(decision.day)}
        self.steps.journal.put(SPEND_TABLE, txn.txn_id, spend)  # counted before the door opens
        ctx = TxnContext(
            member.masked_name, item.name.zh, item.name.en,
            balance_held=member.balance - item.points,
        )  # fmt: skip
        self.steps.save(txn, ctx)
        txn = self.steps.step(txn, ctx, S.HELD, progress)
        return self._dispense(txn, ctx, progress)

    def _offline_spends(self) -> list[OfflineSpend]:
        out = []
        for txn_id, r in self.steps.journal.all(SPEND_TABLE).items():
            out.append(
                OfflineSpend(txn_id, r["member_id"], r["points"], dt.date.fromisoformat(r["day"]))
            )
        return out


def _require_session(member: Member) -> None:
    """An online hold or spin needs the session of the member's resolved code: a member
    identified offline (no session) scans again once the server is back."""
    if member.session is None:
        raise TransactionRefused("txn.rescan", "member_session_required")


def _payment(r: Redemption) -> dict:
    if r.payment is None:
        return {"payment_id": None, "pay_url": None}
    return {"payment_id": r.payment.id, "pay_url": r.payment.pay_url}
