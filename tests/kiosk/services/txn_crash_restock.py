"""The restock flows of the crash campaign (run in ``txn_crash_child``): staff count compartment 2
and members take totes around the count, online and offline, with the real sync worker
uploading the count as the kiosk does (woken when a stock event is queued), and a cabinet
counted down to its last gift.

Members choose only what the kiosk's screens would offer: the server's catalog with the
changes it cannot know yet applied (kiosk/domain/local_stock.py, as ``KioskCore.catalog_view``
does), so a door is never opened onto a compartment the kiosk itself counts empty.
"""

from __future__ import annotations

import threading
import time

from kiosk.domain.catalog import parse_catalog
from kiosk.domain.local_stock import catalog_as_it_stands
from kiosk.ports import OutboxEvent
from kiosk.services.restock_service import RestockService
from kiosk.services.staff_auth import StaffSession
from kiosk.services.transactions import Member
from kiosk.storage.outbox import STOCK_EVENT_KINDS
from kiosk.sync.worker import SyncWorker

from .rig import TOTE, KioskSide

TOTES = 2  # the compartment the tote bags are in
STAFF = StaffSession("S0001", "王店长 / Manager Wang", online=False)
# flow -> what it does, in order: ("count", n) staff count compartment 2 at n; "take" a member
# takes a tote if the screens offer one (right away: the count's upload may not have gone yet);
# "later" a member comes once the worker has uploaded and read the catalog again, and takes a
# tote if offered; "offline" / "online" the network drops / comes back (and the worker with it);
# "reconnect" the network is back before the worker's next cycle has noticed
RESTOCK_FLOWS: dict[str, tuple] = {
    "restock_redeem": (("count", 3), "take"),
    "last_gift": (("count", 1), "take", "later"),  # the second finds the cabinet empty
    "restock_offline": ("offline", ("count", 2), "take", "online"),
    "offline_restock": ("offline", "take", ("count", 2), "online"),
    # a gift online before the count staff took in the outage is uploaded: the race
    "restock_reconnect": ("offline", ("count", 2), "reconnect", "take", "online"),
}
# Flows whose first tote is taken before any count: the campaign refills the cabinet for them.
TAKES_FIRST = frozenset({"offline_restock"})
DRAIN_S = 10.0


class Shelf:
    """What the kiosk's screens offer: the last catalog with what it cannot know yet applied,
    as ``KioskCore.catalog_view``; and the sync worker's progress, to wait for it."""

    def __init__(self, kiosk: KioskSide) -> None:
        self.kiosk = kiosk
        self.since = time.time()  # before the read: a hold during it counts as after
        self.catalog = parse_catalog(kiosk.client.catalog())
        self._changed = threading.Condition()
        self._queued = self._cycled = 0.0  # monotonic: the last stock event, the last cycle

    def on_catalog(self, data: dict) -> None:
        self.catalog, self.since = parse_catalog(data), time.time()

    def on_queued(self, kind: str) -> None:
        if kind in STOCK_EVENT_KINDS:
            with self._changed:
                self._queued = time.monotonic()

    def on_cycle(self, _status: object) -> None:
        with self._changed:
            self._cycled = time.monotonic()
            self._changed.notify_all()

    def settled(self, timeout_s: float = DRAIN_S) -> None:
        """Wait until the worker has sent every event and finished a cycle (catalog re-read)
        after the last stock event was queued."""
        with self._changed:
            self._changed.wait_for(
                lambda: not len(self.kiosk.outbox) and self._cycled > self._queued, timeout_s
            )

    def offers(self, number: int) -> bool:
        outbox = self.kiosk.outbox
        pending = [(e.kind, e.payload, e.at) for e in outbox.pending(len(outbox))]
        txns = self.kiosk.engine.transactions()
        view = catalog_as_it_stands(self.catalog, self.since, txns, pending)
        return any(n == number and s > 0 for i in view.items for n, s in i.compartments)


def run_restock_flow(kiosk: KioskSide, flow: str, who: Member) -> str:
    """One restock flow; returns what happened, for the DONE line."""
    shelf = Shelf(kiosk)  # read while online, as before an outage
    service = kiosk.restock_service(catalog=shelf.catalog, poll_s=0.02)

    def on_catalog(data: dict) -> None:
        service.update_catalog(parse_catalog(data))
        shelf.on_catalog(data)

    def on_queued(event: OutboxEvent) -> None:  # as kiosk/wiring.py wires it, and the shelf's
        shelf.on_queued(event.kind)
        if event.kind in STOCK_EVENT_KINDS:
            worker.wake()

    worker = SyncWorker(  # the production timing: only a wake brings a cycle forward
        kiosk.client, kiosk.outbox, on_catalog=on_catalog, on_cycle=shelf.on_cycle
    )
    kiosk.outbox.on_queued(on_queued)
    done = []
    if "offline" not in RESTOCK_FLOWS[flow]:
        worker.start()
    for step in RESTOCK_FLOWS[flow]:
        if step == "offline":
            kiosk.link.cut()
        elif step in ("online", "reconnect"):
            kiosk.link.up = True
            if step == "online":
                worker.start()
        elif step in ("take", "later"):
            if step == "later":
                shelf.settled()
            if not shelf.offers(TOTES):
                done.append("empty")
                continue
            result = kiosk.engine.redeem(who, TOTE)
            done.append(result.outcome.value)
            kiosk.shut(TOTES)
        else:
            _count(kiosk, service, step[1])
            done.append(f"count{step[1]}")
    deadline = time.monotonic() + DRAIN_S  # the worker's upload is part of the flow
    while len(kiosk.outbox) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    return ",".join(done)


def _count(kiosk: KioskSide, service: RestockService, count: int) -> None:
    session = service.start(STAFF)
    kiosk.restocking = True  # the parent tells staff's pulses from members'
    try:
        session.open_compartment(TOTES)
    finally:
        kiosk.restocking = False
    kiosk.shut(TOTES)
    assert session.wait_closed(timeout_s=5)
    session.enter_count(TOTES, TOTE.sku, count)
    session.finish()
