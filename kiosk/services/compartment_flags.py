"""Compartments flagged "needs check": a door was pulsed and its sensor never confirmed it
opened (jammed, already open, a locker error, a restart while it opened). A flagged
compartment is never opened for a member again until staff count it (docs/restock.md).

The flags live in the journal (table ``FLAG_TABLE``, key = compartment number), so they
survive a restart; each one also tells staff through the outbox (a ``needs_check`` event).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiosk.domain.transaction import Transaction
from kiosk.storage import tables
from kiosk.storage.journal import Journal

if TYPE_CHECKING:
    from kiosk.services.txn_steps import EventSink

log = logging.getLogger(__name__)

FLAG_TABLE = tables.COMPARTMENT_FLAGS


class CompartmentFlags:
    """The needs-check flags over the journal; thread-safe (the engine and restock share it)."""

    def __init__(
        self, journal: Journal, outbox: EventSink, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.journal, self.outbox, self.clock = journal, outbox, clock
        self._lock = threading.Lock()

    def mark(self, number: int | None, txn: Transaction, reason: str) -> None:
        """Flag compartment ``number`` (durable) and tell staff through the outbox
        (idempotent: the event id is the transaction's). Nothing for no compartment."""
        if number is None:
            return
        with self._lock:
            self.journal.put(
                FLAG_TABLE,
                str(number),
                {"txn_id": txn.txn_id, "reason": reason, "at": self.clock()},
            )
        self.outbox.add(
            "needs_check",
            # the server takes a reason of 1000 characters (a locker error's text is the device's)
            {"compartment": number, "txn_id": txn.txn_id, "sku": txn.sku, "reason": reason[:500]},
            event_id=f"{txn.txn_id}:needs_check",
        )
        log.warning("txn %s: compartment %d flagged needs-check: %s", txn.txn_id, number, reason)

    def get(self, number: int) -> dict[str, Any] | None:
        """The flag of compartment ``number`` (txn_id, reason, at), or None."""
        return self.journal.get(FLAG_TABLE, str(number))

    def flagged(self) -> dict[int, dict[str, Any]]:
        """Every flag, by compartment number."""
        return {int(k): v for k, v in self.journal.all(FLAG_TABLE).items()}

    def clear(self, number: int, staff_id: str) -> bool:
        """Staff checked the compartment; it may be opened again. False if it was not flagged."""
        with self._lock:
            cleared = self.journal.delete(FLAG_TABLE, str(number))
        if cleared:
            log.info("compartment %d needs-check cleared by staff %s", number, staff_id)
        return cleared
