"""The journalled steps every transaction flow and the start-up recovery share.

Each method writes the journal record (one fsync) before the external effect it guards:
the hold, the relay pulse, the capture, the void, the print. A crash between the record
and the effect leaves a state ``recovery.settle`` knows how to finish or reverse. The
transaction engine holds one (``TransactionEngine.steps``) and hands it to recovery.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from kiosk.domain.receipts import Bilingual
from kiosk.domain.transaction import (
    Transaction,
    TxnKind,
    TxnState,
    advance,
    from_record,
    server_void_reason,
    to_record,
)
from kiosk.domain.txn_receipts import Prize, StoreInfo, TxnContext, success_receipts, voucher
from kiosk.domain.wheel import unproven
from kiosk.errors import KioskError, Rejected, Unreachable, UserFacingError
from kiosk.i18n import bilingual, render
from kiosk.platform.logctx import bind_txn
from kiosk.ports import Locker, OutboxEvent, PaymentStatus, Redemption, StoreServer
from kiosk.services.compartment_flags import FLAG_TABLE as FLAG_TABLE  # kiosk logs, doctor
from kiosk.services.compartment_flags import CompartmentFlags
from kiosk.services.receipt_queue import ReceiptQueue
from kiosk.storage import tables
from kiosk.storage.journal import Journal

log = logging.getLogger(__name__)

S = TxnState
TXN_TABLE = tables.TXN
SPEND_TABLE = tables.OFFLINE_SPENDS


class EventSink(Protocol):
    """The outbox as the engine needs it: durable, and idempotent by ``event_id``."""

    def add(
        self, kind: str, payload: Mapping[str, Any], *, event_id: str | None = None
    ) -> OutboxEvent: ...


class Outcome(enum.Enum):
    """How a transaction ended, for the result screen."""

    DISPENSED = "dispensed"  # gift taken and charged
    ISSUED = "issued"  # no door: coupon, points prize or nothing; charged
    DISPENSED_UNCONFIRMED = "dispensed_unconfirmed"  # gift out; the charge is still to sync
    REFUSED = "refused"  # the server refused: nothing was held
    VOIDED = "voided"  # points (and cash) returned
    NEEDS_CHECK = "needs_check"  # door unconfirmed: points returned, claim voucher
    VOID_PENDING = "void_pending"  # server unreachable: the hold is released when it answers


@dataclass(frozen=True)
class TxnResult:
    txn: Transaction
    ctx: TxnContext
    outcome: Outcome
    message: Bilingual
    printed: bool = False  # every receipt of this result came out
    queued: bool = False  # at least one receipt waits in the reprint queue


@dataclass(frozen=True)
class Progress:
    """What the UI shows while a transaction runs (called from the engine's thread)."""

    txn_id: str
    state: TxnState
    pay_url: str | None = None
    amount_cents: int = 0
    seconds_left: float | None = None
    compartment: int | None = None
    prize: Prize | None = None  # a spin's draw, known before its door opens


ProgressFn = Callable[[Progress], None]


def _ignore(_: Progress) -> None:
    return None


class TxnSteps:
    """Journal + server + locker + receipts (+ the needs-check flags), one step at a time."""

    def __init__(
        self,
        *,
        journal: Journal,
        server: StoreServer,
        locker: Locker,
        receipts: ReceiptQueue,
        outbox: EventSink,
        flags: CompartmentFlags,
        store: StoreInfo,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self.server = server
        self.locker = locker
        self.receipts = receipts
        self.outbox = outbox
        self.store = store
        self.flags = flags  # compartments flagged "needs check" (recovery raises them too)
        self.clock = clock

    # ---- the journal record ------------------------------------------------------------------
    def save(self, txn: Transaction, ctx: TxnContext) -> None:
        bind_txn(txn.txn_id)  # names the flow's log lines from its first record on
        if txn.state is S.DONE:  # its receipts printed or queued (with the code): keep no more
            ctx = ctx.redacted()
        self.journal.put(TXN_TABLE, txn.txn_id, {**to_record(txn), "ctx": ctx.to_record()})

    def load(self, txn_id: str) -> tuple[Transaction, TxnContext] | None:
        record = self.journal.get(TXN_TABLE, txn_id)
        if record is None:
            return None
        return from_record(record), TxnContext.from_record(txn_id, record.get("ctx"))

    def transactions(self) -> list[Transaction]:
        """Every transaction in the journal; a damaged record is skipped (recovery reports it)."""
        out = []
        for txn_id in self.journal.all(TXN_TABLE):
            try:
                loaded = self.load(txn_id)
            except KioskError:
                continue
            if loaded is not None:
                out.append(loaded[0])
        return out

    def step(
        self, txn: Transaction, ctx: TxnContext, state: TxnState, progress: ProgressFn = _ignore,
        **facts: Any,
    ) -> Transaction:  # fmt: skip
        """Advance and journal (durable on return), then tell the UI."""
        txn = advance(txn, state, at=self.clock(), **facts)
        self.save(txn, ctx)
        log.info("txn %s %s -> %s", txn.txn_id, txn.history[-2][0].name, state.name)
        progress(Progress(txn.txn_id, state, compartment=txn.compartment, prize=ctx.prize))
        return txn

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), self.store.tz)

    # ---- void ---------------------------------------------------------------------------------
    def void(
        self, txn: Transaction, ctx: TxnContext, reason: str, why: Bilingual, *,
        present: bool, progress: ProgressFn = _ignore,
    ) -> TxnResult:  # fmt: skip
        """VOIDING (journalled) -> release the hold on the server -> VOIDED -> voucher."""
        if txn.state is not S.VOIDING:
            txn = self.step(txn, ctx, S.VOIDING, progress, void_reason=reason)
        if txn.offline:
            ctx = replace(ctx, points_returned=0)  # nothing was charged: the server never saw it
            self.journal.delete(SPEND_TABLE, txn.txn_id)
        else:
            try:
                r = self.server.void(txn.txn_id, server_void_reason(txn, reason))
            except Unreachable as exc:
                log.warning("txn %s: void not confirmed, retried later: %s", txn.txn_id, exc)
                return TxnResult(txn, ctx, Outcome.VOID_PENDING, _VOID_PENDING)
            except Rejected as exc:
                if exc.status != 404:
                    raise
                log.info("txn %s: the server never held it; nothing to release", txn.txn_id)
                ctx = replace(ctx, points_returned=0)
            else:
                pay = r.payment
                refunded = pay is not None and pay.status is PaymentStatus.REFUNDED
                ctx = replace(
                    ctx,
                    points_returned=r.points,
                    balance_held=(r.balance - r.points) if r.balance is not None else None,
                    cash_refunded_cents=pay.amount_cents if pay is not None and refunded else 0,
                )
        txn = self.step(txn, ctx, S.VOIDED, progress)
        outcome = Outcome.NEEDS_CHECK if txn.needs_check else Outcome.VOIDED
        if not (txn.needs_check or ctx.points_returned or ctx.cash_refunded_cents):
            return TxnResult(txn, ctx, outcome, why)  # nothing was taken: no voucher
        slips = self._build(
            txn, lambda: [("voucher", voucher(txn, ctx, self.store, self.now(), why, _CLAIM))]
        )
        printed, queued = self._hand_out(slips, txn, present)
        return TxnResult(txn, ctx, outcome, why, printed, queued)

    # ---- the wheel ------------------------------------------------------------------------------
    def spin_held(
        self, txn: Transaction, ctx: TxnContext, r: Redemption, progress: ProgressFn = _ignore
    ) -> tuple[Transaction, TxnContext]:
        """-> HELD with the server's draw (the UI shows it from here on). Unreachable, with
        nothing journalled, when the answer cannot be used: no prize, or another cost than the
        member was shown; UnprovenSpin when its commitment is not the one the kiosk held."""
        prize = r.prize
        if prize is None:
            raise Unreachable(f"store server answered a spin without a prize (txn {r.txn_id})")
        if r.points != txn.points:
            raise Unreachable(
                f"store server held {r.points} points for a spin shown at {txn.points}"
            )
        # None: a record journalled before kiosks held the wheel's commitments
        why = unproven(prize, ctx.commitments) if ctx.commitments is not None else None
        if why is not None:
            raise UnprovenSpin(txn.txn_id, why)
        ctx = replace(
            ctx, balance_held=r.balance, prize=prize, item_zh=prize.label_zh,
            item_en=prize.label_en,
        )  # fmt: skip
        txn = self.step(
            txn, ctx, S.HELD, progress, hold_id=r.txn_id, sku=r.sku, compartment=r.compartment,
            hold_seq=r.hold_seq,
        )  # fmt: skip
        return txn, ctx

    def void_unproven(
        self, txn: Transaction, ctx: TxnContext, exc: UnprovenSpin, *, present: bool,
        progress: ProgressFn = _ignore,
    ) -> TxnResult:  # fmt: skip
        """A spin whose draw the kiosk cannot prove is never shown: it is voided as a failed
        spin (the server returns its cost and alerts staff; docs/transactions.md)."""
        log.error("txn %s: spin result not shown: %s", txn.txn_id, exc)
        return self.void(txn, ctx, exc.reason, MSG_UNPROVEN, present=present, progress=progress)

    # ---- capture and receipts ---------------------------------------------------------------
    def capture(
        self, txn: Transaction, ctx: TxnContext, progress: ProgressFn = _ignore
    ) -> tuple[Transaction, TxnContext, str | None]:
        """-> CAPTURED. The third value is None once captured, else "unreachable" (ask again
        later) or "refused" (the server will not charge it: see ``capture_refused``)."""
        if txn.offline:
            payload = {
                "txn_id": txn.txn_id,
                "member_id": txn.member_id,
                "sku": txn.sku,
                "points": txn.points,
                "compartment": txn.compartment,
            }
            if txn.member_code is not None:  # a record from before kiosks kept it: the server
                payload["member_code"] = txn.member_code  # says member_code_required
            self.outbox.add("offline_redemption", payload, event_id=txn.txn_id)
            return self.step(txn, ctx, S.CAPTURED, progress), ctx, None
        try:
            r = self.server.capture(txn.txn_id)
        except Unreachable as exc:
            log.warning("txn %s: capture not confirmed, retried later: %s", txn.txn_id, exc)
            return txn, ctx, "unreachable"
        except Rejected as exc:
            ctx = replace(ctx, capture_refused=f"{exc.code}: {exc}")
            self.save(txn, ctx)
            if txn.state is S.DISPENSED or txn.kind is TxnKind.SPIN:
                # The gift is out (or the spin drawn, which is final) and the server will not
                # charge it (e.g. the hold expired while the door was open): never retry
                # blindly, never void; staff settle it.
                self.outbox.add(
                    "fault",
                    {"txn_id": txn.txn_id, "what": "capture_refused", "code": exc.code,
                     "detail": str(exc)},
                    event_id=f"{txn.txn_id}:capture_refused",
                )  # fmt: skip
            log.error("txn %s: capture refused in %s: %s", txn.txn_id, txn.state.name, exc)
            return txn, ctx, "refused"
        ctx = replace(
            ctx,
            balance_final=r.balance,
            coupon_code=r.coupon_code,
            coupon_valid_until=r.raw.get("coupon_valid_until") if r.coupon_code else None,
        )
        return self.step(txn, ctx, S.CAPTURED, progress), ctx, None

    def finish(
        self, txn: Transaction, ctx: TxnContext, outcome: Outcome, message: Bilingual, *,
        present: bool, progress: ProgressFn = _ignore,
    ) -> TxnResult:  # fmt: skip
        """CAPTURED -> receipts (printed, or queued) -> PRINTED -> DONE."""
        slips = self._build(txn, lambda: success_receipts(txn, ctx, self.store, self.now()))
        printed, queued = self._hand_out(slips, txn, present)
        txn = self.step(txn, ctx, S.PRINTED, progress, receipt_queued=queued)
        txn = self.step(txn, ctx, S.DONE, progress)
        return TxnResult(txn, ctx, outcome, message, printed, queued)

    def _build(self, txn: Transaction, make: Callable[[], list]) -> list:
        """The receipts, or none when the server's figures cannot make one (a negative
        balance, a date that is not a date): the transaction still finishes, staff are told."""
        try:
            return make()
        except (ValueError, KioskError) as exc:
            log.error(
                "txn %s: no receipt can be made from the server's answer: %s", txn.txn_id, exc
            )
            self.outbox.add(
                "fault",
                {"txn_id": txn.txn_id, "what": "receipt_unbuildable", "detail": str(exc)[:300]},
                event_id=f"{txn.txn_id}:receipt_unbuildable",
            )
            return []

    def _hand_out(self, slips: list, txn: Transaction, present: bool) -> tuple[bool, bool]:
        """Print while the member stands there; queue when nobody is (recovery)."""
        queued = False
        for suffix, slip in slips:
            key = f"{txn.txn_id}:{suffix}"
            if present:
                queued |= not self.receipts.print_or_queue(key, slip)
            elif not self.receipts.has(key):
                self.receipts.queue(key, slip, "printed after a restart: nobody was at the kiosk")
                queued = True
            else:
                queued = True
        return bool(slips) and not queued, queued


MSG_NETWORK = bilingual("txn.network")
MSG_UNPROVEN = bilingual("txn.spin_unproven")
_VOID_PENDING = bilingual("txn.void_pending")
_CLAIM = bilingual("txn.claim_voucher")  # what a claim voucher says happened


class UnprovenSpin(KioskError):
    """A spin's answer carries another seed commitment than the wheel the kiosk synced:
    the kiosk cannot vouch for the draw. ``reason`` is the void reason sent to the server."""

    def __init__(self, txn_id: str, reason: str) -> None:
        super().__init__(
            f"txn {txn_id}: the store server's answer cannot be proven fair ({reason}): "
            "voided; check the store server (its seed changed?) and the network path to it"
        )
        self.reason = reason


class TransactionRefused(UserFacingError):
    """A transaction that may not start, with a stable ``code``; its text (``key``, ``fields``)
    is what the member sees, ``message`` that text in both languages."""

    def __init__(self, key: str, code: str, **fields: object) -> None:
        super().__init__(key, **fields)
        self.code = code

    @property
    def message(self) -> Bilingual:
        return render(self)
