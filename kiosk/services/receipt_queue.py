"""Receipts that could not be printed wait in the journal until staff load paper.

A receipt is queued (durably) before the print is attempted and removed once the printer
took it, so a crash or a paper-out never loses one. The price: after a crash between the
print and the removal, or a stall the printer recovers from, a receipt may come out twice;
it never comes out zero times.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.domain.receipt_codec import MalformedQueuedReceipt, decode_receipt, encode_receipt
from kiosk.domain.receipts import Receipt
from kiosk.errors import HardwareError, JournalError
from kiosk.platform.logctx import txn_context
from kiosk.ports import ReceiptPrinter
from kiosk.storage import tables
from kiosk.storage.journal import Journal

log = logging.getLogger(__name__)

TABLE = tables.RECEIPT_QUEUE


@dataclass(frozen=True)
class QueuedReceipt:
    key: str  # "<txn_id>:<what>", e.g. "3f2b...:receipt" or "3f2b...:voucher"
    receipt: Receipt
    queued_at: float
    reason: str  # why it did not print: the printer's message


@dataclass(frozen=True)
class ReprintResult:
    printed: int
    left: int
    error: str | None  # the printer error that stopped the run, for staff


class ReceiptQueue:
    """Print now or keep for later; thread-safe through the journal's own lock."""

    def __init__(
        self,
        journal: Journal,
        printer: ReceiptPrinter,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._journal = journal
        self._printer = printer
        self._clock = clock

    def print_or_queue(self, key: str, receipt: Receipt) -> bool:
        """Print ``receipt``; on a printer failure keep it queued. True if it printed.

        The record is written before the print (journal before every effect), so a receipt
        whose print was cut by a crash is still queued at the next start.
        """
        self._journal.put(TABLE, key, self._record(receipt, "printing"))
        try:
            self._printer.print_receipt(receipt)
        except HardwareError as exc:
            log.warning("receipt %s queued for reprint: %s", key, exc)
            self._journal.put(TABLE, key, self._record(receipt, str(exc)))
            return False
        self._journal.delete(TABLE, key)
        return True

    def queue(self, key: str, receipt: Receipt, reason: str) -> None:
        """Keep ``receipt`` for a later reprint without trying the printer."""
        self._journal.put(TABLE, key, self._record(receipt, reason))

    def queued(self) -> list[QueuedReceipt]:
        """Waiting receipts, oldest first; undecodable records are logged and skipped."""
        out: list[QueuedReceipt] = []
        for key, record in self._journal.all(TABLE).items():
            try:
                receipt = decode_receipt(record.get("receipt"))
            except MalformedQueuedReceipt as exc:
                log.error("queued receipt %s cannot be decoded, left in the journal: %s", key, exc)
                continue
            out.append(QueuedReceipt(key, receipt, record["queued_at"], record["reason"]))
        return sorted(out, key=lambda q: (q.queued_at, q.key))

    def has(self, key: str) -> bool:
        return self._journal.get(TABLE, key) is not None

    def __len__(self) -> int:
        return len(self._journal.all(TABLE))

    def reprint_all(self) -> ReprintResult:
        """Print every waiting receipt in order; stop at the first printer error.

        A member's receipt is reprinted in its transaction's log context: its lines (the
        printer's too) carry ``TXN=<id>``, so ``kiosk logs`` shows the reprint."""
        printed = 0
        for item in self.queued():
            txn_id = getattr(item.receipt, "txn_id", None)  # MemberReceipt; a restock slip: none
            with txn_context(txn_id) if txn_id else contextlib.nullcontext():
                try:
                    self._printer.print_receipt(item.receipt)
                except HardwareError as exc:
                    left = len(self)
                    log.warning(
                        "reprint stopped after %d receipt(s), %d left: %s", printed, left, exc
                    )
                    return ReprintResult(printed, left, str(exc))
                try:
                    self._journal.delete(TABLE, item.key)
                except JournalError:
                    log.exception(
                        "receipt %s reprinted but still queued (journal read-only)", item.key
                    )
                    raise
                printed += 1
                log.info("receipt %s reprinted", item.key)
        return ReprintResult(printed, len(self), None)

    def _record(self, receipt: Receipt, reason: str) -> dict:
        return {"receipt": encode_receipt(receipt), "queued_at": self._clock(), "reason": reason}
