"""The restock service: starts restock sessions (kiosk/services/restock.py has the session
and the rules), keeps the kiosk's view of each compartment's stock from the catalog and the
counts, and reports sessions a crash interrupted. docs/restock.md.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from kiosk.domain.catalog import Catalog, CatalogItem, ItemKind
from kiosk.domain.count_stamp import CountStamp, count_stamp
from kiosk.domain.transaction import Transaction
from kiosk.domain.txn_receipts import StoreInfo
from kiosk.ports import Locker
from kiosk.services.compartment_flags import CompartmentFlags
from kiosk.services.kiosk_lock import RESTOCK, KioskLock
from kiosk.services.receipt_queue import ReceiptQueue
from kiosk.services.restock import (
    COUNT_TABLE,
    SESSION_TABLE,
    CompartmentStock,
    RestockSession,
    UnfinishedRestock,
    _refused,
)
from kiosk.services.staff_auth import StaffSession
from kiosk.services.txn_steps import EventSink
from kiosk.storage import Query
from kiosk.storage.journal import Journal

log = logging.getLogger(__name__)


class RestockService:
    """Starts restock sessions and reports interrupted ones; one per kiosk, thread-safe.

    Receives what it works with: the kiosk-wide ``lock`` (held for a whole session, so no
    member transaction or recovery runs meanwhile), the needs-check ``flags`` (a count clears
    its compartment's), the journal, outbox, locker, receipt queue and store info, the
    journalled ``transactions`` (the holds a count has seen) and the ``wall_clock`` (records,
    the slip). ``clock`` (monotonic) times the idle timeout.
    """

    def __init__(
        self, *, lock: KioskLock, flags: CompartmentFlags, journal: Journal, outbox: EventSink,
        locker: Locker, receipts: ReceiptQueue, store: StoreInfo,
        transactions: Callable[[], list[Transaction]],
        wall_clock: Callable[[], float] = time.time,
        catalog: Catalog | None = None,
        idle_timeout_s: float = 120.0,
        poll_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:  # fmt: skip
        self.lock, self.flags, self.journal, self.outbox = lock, flags, journal, outbox
        self.locker, self.receipts, self.store = locker, receipts, store
        self.transactions, self.wall_clock = transactions, wall_clock
        self.idle_timeout_s, self.poll_s = idle_timeout_s, poll_s
        self.clock, self.sleep, self.new_id = clock, sleep, new_id
        self._guard = threading.Lock()
        self.items: dict[str, CatalogItem] | None = None  # None: no catalog seen yet
        self._view: dict[int, CompartmentStock] = {}
        self._hold_seq = 0  # the last catalog's latest hold (kiosk/domain/count_stamp.py)
        self._active: RestockSession | None = None
        if catalog is not None:
            self.update_catalog(catalog)

    def update_catalog(self, catalog: Catalog) -> None:
        """A fresh catalog (the sync worker's ``on_catalog``): sku and stock per compartment."""
        gifts = [i for i in catalog.items if i.kind is ItemKind.GIFT]
        view = {n: CompartmentStock(i.sku, stock) for i in gifts for n, stock in i.compartments}
        with self._guard:
            self.items, self._view = {i.sku: i for i in catalog.items}, view
            self._hold_seq = max(self._hold_seq, catalog.hold_seq)

    def stamp(self, number: int) -> CountStamp:
        """What a count of ``number`` taken now had seen of the holds (docs/restock.md)."""
        with self._guard:
            seen = self._hold_seq
        return count_stamp(self.transactions(), seen, number)

    def stock(self) -> dict[int, CompartmentStock]:
        """The kiosk's view of every compartment, by number."""
        with self._guard:
            return dict(self._view)

    def stock_of(self, number: int) -> CompartmentStock:
        with self._guard:
            return self._view.get(number, CompartmentStock(None, 0))

    def start(self, staff: StaffSession) -> RestockSession:
        """Begin a restock for a signed-in staff member (RestockError ``session_open``/``busy``)."""
        active = self._active
        if active is not None:
            active.tick()  # an idle session with its door shut ends here
        with self._guard:
            if self._active is not None:
                staff_id = self._active.staff.staff_id
                raise _refused("session_open", staff=staff_id, idle=self.idle_timeout_s)
            if not self.lock.try_hold(RESTOCK):
                raise _refused("busy")
            try:
                self._active = RestockSession(self, staff, self.new_id())
            except BaseException:
                self.lock.release()
                raise
            return self._active

    def restocking(self, number: int) -> bool:
        """Whether staff opened compartment ``number`` in the running session (so its door
        open, or open long, is their work, not an alarm: kiosk/services/door_alarms.py)."""
        with self._guard:
            active = self._active
        return active is not None and active.summary is None and active.opens(number)

    def unfinished(self) -> list[UnfinishedRestock]:
        """Sessions in the journal other than the running one: crash leftovers."""
        running = self._active.session_id if self._active else None
        out = []
        for sid, r in sorted(self.journal.all(SESSION_TABLE).items()):
            if sid != running:
                fields = {k: r.get(k) for k in ("staff_id", "staff_name", "state", "compartment")}
                counts = sorted(self.counts_of(sid).values(), key=lambda c: c.get("at", 0))
                counted = tuple((c["compartment"], c["sku"], c["count"]) for c in counts)
                out.append(UnfinishedRestock(sid, door=r.get("door"), counts=counted, **fields))
        return out

    def report_unfinished(self) -> list[UnfinishedRestock]:
        """Start-up: log and alert (a "fault" event) each interrupted session, and finish what
        its accepted counts still owed (event queued, flag cleared). Idempotent; the records
        stay until ``acknowledge``."""
        out = self.unfinished()
        flagged = self.flags.flagged()
        for u in out:
            log.warning(
                "restock interrupted, check compartment %s and count it again: %s", u.compartment, u
            )
            for key, c in self.counts_of(u.session_id).items():
                if c.get("requeued"):  # once: the server may forget event ids in time
                    continue
                payload = {k: c[k] for k in ("compartment", "sku", "count")}
                payload |= c.get("stamp") or {}  # counts journalled before stamps: as of now
                self.outbox.add("inventory", payload, event_id=key)
                self.journal.put(COUNT_TABLE, key, {**c, "requeued": True})
                flag = flagged.get(c["compartment"])
                if c.get("flag_txn") and flag and flag.get("txn_id") == c["flag_txn"]:
                    self.flags.clear(c["compartment"], u.staff_id)
            what = {"what": "restock_interrupted", "session": u.session_id}
            what |= {"staff_id": u.staff_id, "compartment": u.compartment, "door": u.door}
            self.outbox.add("fault", what, event_id=f"{u.session_id}:interrupted")
        return out

    def acknowledge(self, session_id: str) -> bool:
        """Staff checked an interrupted session's compartment: forget its records."""
        for key in self.counts_of(session_id):
            self.journal.delete(COUNT_TABLE, key)
        return self.journal.delete(SESSION_TABLE, session_id)

    def counts_of(self, session_id: str) -> dict[str, dict[str, Any]]:
        """The journalled counts of a session, by event id."""
        return self.journal.find(COUNT_TABLE, Query().session == session_id)

    def _counted(self, number: int, stock: CompartmentStock) -> None:
        with self._guard:
            self._view[number] = stock

    def _ended(self, session: RestockSession) -> None:
        with self._guard:
            if self._active is session:
                self._active = None
                self.lock.release()
