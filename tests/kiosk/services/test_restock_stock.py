"""A restock count never erases a redemption (issue 10), with the kiosk's own services and the
demo store server: the count stamped with the holds it had seen (kiosk/domain/count_stamp.py),
uploaded by the real sync worker before or after the gifts that left around it, online and
offline; and a cabinet emptied to the last gift refuses the next member at the server."""

from __future__ import annotations

import pytest

from kiosk.domain.catalog import parse_catalog
from kiosk.services.staff_auth import StaffSession
from kiosk.services.txn_steps import Outcome
from kiosk.sync.worker import SyncWorker

from .rig import TOTE, KioskSide  # server, kiosk: tests/kiosk/conftest.py

WANG = StaffSession("S0001", "王店长 / Manager Wang", online=False)
DEMO_TOTES = 5  # the demo store's compartment 2


def restock(kiosk: KioskSide, catalog: dict | None, count: int) -> None:
    """Staff open compartment 2, fill it and enter what it holds now."""
    service = kiosk.restock_service(
        catalog=parse_catalog(catalog) if catalog else None, poll_s=0.02
    )
    session = service.start(WANG)
    session.open_compartment(2)
    kiosk.shut(2)
    session.enter_count(2, "GIFT-TOTE", count)
    session.finish()


def take_tote(kiosk: KioskSide, member_id: str = "M0004") -> Outcome:
    outcome = kiosk.engine.redeem(kiosk.member(member_id, 10**6), TOTE).outcome
    kiosk.shut(2)
    return outcome


def sync(kiosk: KioskSide) -> None:
    """One cycle of the real sync worker (heartbeat, outbox upload, catalog)."""
    SyncWorker(kiosk.client, kiosk.outbox).run_once()
    assert len(kiosk.outbox) == 0 and kiosk.outbox.alerts() == []


def test_a_count_queued_before_a_redemption_does_not_erase_it(server, kiosk):
    """The issue's four steps: count 6 (5 + 1), a tote redeemed before the upload, the upload;
    then the cabinet emptied: exactly the gifts it holds go out, the next member is refused
    at the server, no door opens onto nothing and no points are taken."""
    restock(kiosk, kiosk.client.catalog(), DEMO_TOTES + 1)
    assert take_tote(kiosk) is Outcome.DISPENSED
    assert server.stock(2) == DEMO_TOTES - 1  # the hold took from the stock before the count
    sync(kiosk)
    assert server.stock(2) == DEMO_TOTES  # 6 counted, one out since
    for _ in range(DEMO_TOTES):
        assert take_tote(kiosk) is Outcome.DISPENSED
    assert server.stock(2) == 0
    pulses, balance = kiosk.pulses(2), server.balance("M0004")
    assert take_tote(kiosk) is Outcome.REFUSED
    assert (kiosk.pulses(2), server.balance("M0004")) == (pulses, balance)
    assert pulses == 1 + DEMO_TOTES + 1  # staff's restock, then six gifts: the cabinet held 6


@pytest.mark.parametrize("count_first", [True, False], ids=["count-then-gift", "gift-then-count"])
def test_offline_counts_and_offline_gifts_in_either_order(server, kiosk, count_first):
    catalog = kiosk.client.catalog()
    kiosk.link.cut()
    if count_first:  # 5 + 1 counted, then one out: 5
        restock(kiosk, catalog, DEMO_TOTES + 1)
        assert take_tote(kiosk, "M0003") is Outcome.DISPENSED_UNCONFIRMED  # offline
        expected = DEMO_TOTES
    else:  # one out (4 left), then staff add 2 and count 6
        assert take_tote(kiosk, "M0003") is Outcome.DISPENSED_UNCONFIRMED  # offline
        restock(kiosk, catalog, DEMO_TOTES + 1)
        expected = DEMO_TOTES + 1
    assert server.stock(2) == DEMO_TOTES  # nothing reached the server yet
    kiosk.link.up = True
    sync(kiosk)
    assert server.stock(2) == expected


def test_a_count_taken_offline_and_a_gift_online_before_its_upload(server, kiosk):
    """The network comes back; a member redeems before the worker's next cycle uploads the
    count staff took during the outage."""
    catalog = kiosk.client.catalog()
    kiosk.link.cut()
    restock(kiosk, catalog, DEMO_TOTES + 1)
    kiosk.link.up = True
    assert take_tote(kiosk) is Outcome.DISPENSED
    sync(kiosk)
    assert server.stock(2) == DEMO_TOTES


def test_a_hold_whose_void_waits_for_the_network_is_counted_as_inside(server, kiosk):
    """Held, then the door jammed and the void could not reach the server: the gift is still
    in the compartment when staff count it, and the void that follows gives one back."""
    kiosk.sim.jam(2)
    real_void = kiosk.client.void

    def unreachable(*args, **kwargs):
        from kiosk.errors import Unreachable

        raise Unreachable("the store server is unreachable (test)")

    kiosk.client.void = unreachable
    assert take_tote(kiosk) is Outcome.VOID_PENDING
    kiosk.sim.jam(2, False)
    assert server.stock(2) == DEMO_TOTES - 1  # still held on the server
    restock(kiosk, kiosk.client.catalog(), DEMO_TOTES)  # the gift never left: 5 counted
    kiosk.client.void = real_void
    sync(kiosk)
    kiosk.engine.settle()  # recovery voids the hold at last
    assert server.stock(2) == DEMO_TOTES
